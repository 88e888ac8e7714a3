#!/usr/bin/env python3
"""Builds the benchmark report (Markdown) from one run of scripts/bench.sh: our engine's Google
Benchmark JSON and peers.py's JSON from each round, and quality.py's Markdown. Prints it and
writes --out.

Rounds: bench.sh alternates our engine and the peers, round after round, so each ratio can be
taken within one round (ours and theirs measured close together in time) and the median of those
per-round ratios reported; on a shared, noisy machine that is steadier than comparing medians
taken minutes apart. MP/s figures are medians over the rounds too.

  report.py --engine r1/engine.json --engine r2/engine.json --peers r1/peers.json
            --peers r2/peers.json --quality quality.md --out build/bench-results.md

With --smoke (scripts/bench.sh --smoke, in CI): no verdicts, since the figures of a tiny image
mean nothing; instead the exit status is 1 when a benchmark reported an error, a round has no
engine figures, or a peer measurement is missing, so that a broken benchmark fails the run.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

ORDERED = ["bayer", "halftone", "blue-noise", "random", "threshold"]
ERROR_DIFFUSION = ["floyd-steinberg", "false-floyd-steinberg", "jarvis-judice-ninke", "stucki",
                   "burkes", "sierra", "two-row-sierra", "sierra-lite", "atkinson",
                   "stevenson-arce", "shiau-fan", "shiau-fan-2"]

Series = list  # one value (or None) per round


UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}


def load_engine(path: str, errors: list[str] | None = None) -> tuple[dict, dict, dict]:
    """For one round: {(algorithm, palette, space, threads): MP/s} from wall-clock time, the same
    from the main thread's CPU time (meaningful for threads=1 only), and the benchmark context.
    Medians if a round has several repetitions. Benchmarks that reported an error are left out,
    and named in `errors` when given."""
    data = json.loads(Path(path).read_text())
    wall: dict[tuple, list[float]] = {}
    cpu: dict[tuple, list[float]] = {}
    for b in data["benchmarks"]:
        if b.get("run_type") != "iteration":
            continue
        if b.get("error_occurred"):
            print(f"report: {b['name']}: {b.get('error_message')}", file=sys.stderr)
            if errors is not None:
                errors.append(f"{path}: {b['name']}: {b.get('error_message')}")
            continue
        parts = b["run_name"].split("/")
        key = (parts[0], parts[1], parts[2], parts[3].removeprefix("threads="))
        wall.setdefault(key, []).append(b["items_per_second"] / 1e6)
        cpu_s = b["cpu_time"] * UNIT_SECONDS[b.get("time_unit", "ns")]
        if cpu_s > 0 and "MP" in b:
            cpu.setdefault(key, []).append(b["MP"] / cpu_s)
    return ({k: statistics.median(v) for k, v in wall.items()},
            {k: statistics.median(v) for k, v in cpu.items()}, data.get("context", {}))


def med(s: Series) -> float | None:
    v = [x for x in s if x is not None]
    return statistics.median(v) if v else None


def spread(s: Series) -> str:
    v = [x for x in s if x is not None]
    if len(v) < 2:
        return ""
    digits = 2 if max(v) < 10 else 1
    return f" ({min(v):.{digits}f}-{max(v):.{digits}f})"


def div(a: Series, b: Series) -> Series:
    return [x / y if x is not None and y else None for x, y in zip(a, b)]


def fmt(v: float | None, digits: int = 1) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def mem_gib() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 2**20:.0f}"
    except OSError:
        pass
    return "?"


def command_output(argv: list[str]) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--engine", action="append", required=True, help="one per round")
    ap.add_argument("--peers", action="append", required=True, help="one per round")
    ap.add_argument("--busy", default="", help="comma-separated CPU busy %% before each round")
    ap.add_argument("--others-engine", default="",
                    help="comma-separated %% of the CPUs other processes used during each round's "
                    "engine run")
    ap.add_argument("--others-peers", default="", help="the same during each round's peers run")
    ap.add_argument("--quality")
    ap.add_argument("--image-note", default="")
    ap.add_argument("--command", default="scripts/bench.sh")
    ap.add_argument("--out", required=True)
    ap.add_argument("--chart-json", help="write the chart's figures here (charts.py engine)")
    ap.add_argument("--smoke", action="store_true",
                    help="a smoke run: no verdicts; exit 1 when anything was not measured")
    args = ap.parse_args()
    if len(args.engine) != len(args.peers):
        sys.exit("report: as many --engine as --peers files, one of each per round")

    errors: list[str] = []
    loaded = [load_engine(p, errors) for p in args.engine]
    ours_rounds = [r for r, _, _ in loaded]
    ours_cpu_rounds = [c for _, c, _ in loaded]
    context = loaded[-1][2]
    peer_rounds = [json.loads(Path(p).read_text()) for p in args.peers]
    img = peer_rounds[0]["image"]
    versions = peer_rounds[0]["versions"]
    mp = img["width"] * img["height"] / 1e6
    rounds = len(ours_rounds)

    def our(alg: str, pal: str = "levels:2", space: str = "srgb", thr: str = "1") -> Series:
        return [r.get((alg, pal, space, thr)) for r in ours_rounds]

    def our_cpu(alg: str, pal: str = "levels:2") -> Series:
        """Single-thread MP/s from CPU time."""
        return [r.get((alg, pal, "srgb", "1")) for r in ours_cpu_rounds]

    def peer_run(rnd: dict, name: str, case: str, pal: str, thr: str) -> dict | None:
        for r in rnd["runs"]:
            if (r["peer"], r["case"], r["palette"], r["threads"]) == (name, case, pal, thr):
                return r
        return None

    def peer(name: str, case: str, pal: str, thr: str, field: str = "median_s") -> Series:
        """MP/s per round, from wall-clock time (median_s) or CPU time (median_cpu_s)."""
        out = []
        for rnd in peer_rounds:
            r = peer_run(rnd, name, case, pal, thr)
            out.append(mp / r[field] if r and r.get(field) else None)
        return out

    def magick(case: str, pal: str, thr: str, field: str = "median_s") -> tuple[Series, Series]:
        """ImageMagick MP/s per round: whole command, and net of `convert IN null:`."""
        raw, net = [], []
        for rnd in peer_rounds:
            r = peer_run(rnd, "imagemagick", case, pal, thr)
            d = peer_run(rnd, "imagemagick", "decode", "-", thr)
            raw.append(mp / r[field] if r and r.get(field) else None)
            net_s = r[field] - d[field] if r and d and field in r else None
            net.append(mp / net_s if net_s and net_s > 0 else None)
        return raw, net

    pil8 = peer("pillow", "floyd-steinberg", "8", "1")
    pilega = peer("pillow", "floyd-steinberg", "ega", "1")
    im_o8_raw, im_o8_net = magick("ordered-o8x8", "8", "1")

    # CPU-time cross-checks of the single-thread ratios.
    pil8_cpu = peer("pillow", "floyd-steinberg", "8", "1", "median_cpu_s")
    pilega_cpu = peer("pillow", "floyd-steinberg", "ega", "1", "median_cpu_s")
    _, im_o8_net_cpu = magick("ordered-o8x8", "8", "1", "median_cpu_s")

    # (description, ours, reference, reference name, required ratio, CPU-time ratio or None)
    targets = [
        ("Floyd-Steinberg levels:2 (8 colours), 1 thread, vs Pillow FS", our("floyd-steinberg"),
         pil8, "Pillow", 4.0, div(our_cpu("floyd-steinberg"), pil8_cpu)),
        ("Floyd-Steinberg EGA 16, 1 thread, vs Pillow FS", our("floyd-steinberg", "ega"), pilega,
         "Pillow", 2.5, div(our_cpu("floyd-steinberg", "ega"), pilega_cpu)),
        ("Bayer 8x8 levels:2, 1 thread, vs ImageMagick `-ordered-dither o8x8`, 1 thread, net of "
         "decode", our("bayer"), im_o8_net, "ImageMagick", 15.0,
         div(our_cpu("bayer"), im_o8_net_cpu)),
        ("Bayer 8x8 levels:2: all threads vs 1 thread", our("bayer", thr="all"), our("bayer"),
         "ours, 1 thread", 1.8, None),
        ("Floyd-Steinberg levels:2: all threads vs 1 thread", our("floyd-steinberg", thr="all"),
         our("floyd-steinberg"), "ours, 1 thread", 1.5, None),
    ]

    # "Every ordered algorithm / error-diffusion kernel": the one whose median speed-up is the
    # smallest; in the quietest round, the smallest speed-up of the family in that round.
    for names, kind, need in ((ORDERED, "ordered algorithm", 1.8),
                              (ERROR_DIFFUSION, "error-diffusion kernel", 1.5)):
        speedups = {n: div(our(n, thr="all"), our(n)) for n in names}
        speedups = {n: s for n, s in speedups.items() if med(s) is not None}
        if len(speedups) < len(names):
            continue  # a filtered run (--quick) does not have the whole family
        worst = min(speedups, key=lambda n: med(speedups[n]))
        per_round = [min((s[i] for s in speedups.values() if s[i] is not None), default=None)
                     for i in range(rounds)]
        targets.append((f"Every {kind}, all threads vs 1 thread (the smallest speed-up: {worst})",
                        our(worst, thr="all"), our(worst), "ours, 1 thread", need, None,
                        speedups[worst], per_round))

    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    busy = [b for b in args.busy.split(",") if b]
    others_engine = [b for b in args.others_engine.split(",") if b]
    others_peers = [b for b in args.others_peers.split(",") if b]
    lines = [
        f"Run of `{args.command}` on {now}: {rounds} round(s), each running our engine and then "
        "the peers.", "",
        f"- Machine: {os.cpu_count()} CPUs (nproc {command_output(['nproc'])}), {cpu_model()}, "
        f"{mem_gib()} GiB, "
        f"{platform.system()} {platform.release()}; shared with other work."
        + (f" CPU busy just before each round: {', '.join(b + '%' for b in busy)}." if busy else "")
        + (f" Share of the CPUs that other processes used during our engine's runs: "
           f"{', '.join(b + '%' for b in others_engine)}; during the peers' runs: "
           f"{', '.join(b + '%' for b in others_peers)}." if others_engine else ""),
        f"- Build: GCC {command_output(['c++', '-dumpfullversion'])}, Release (-O3), "
        f"Google Benchmark {command_output(['dpkg-query', '-W', '-f=${Version}', 'libbenchmark-dev'])}"
        f" (Debian), commit {command_output(['git', 'rev-parse', '--short', 'HEAD'])} plus the "
        "work tree's uncommitted changes. Error diffusion ran its "
        f"{context.get('engine_isa', 'build')} copy (`src/engine/isa.h`; \"build\": the "
        "instruction set the build targets, DITHER_MARCH).",
        f"- Image: {img['width']}x{img['height']} ({mp:.2f} MP) RGB. {args.image_note}".rstrip(),
        f"- Peers: Pillow {versions['pillow']} (Python {versions['python']}), "
        f"{versions['imagemagick']}.",
        "- Ours: Google Benchmark, wall-clock time. Pillow: median of timed `quantize` calls on an "
        "image already in memory. ImageMagick: whole `convert photo.ppm ... null:` commands; "
        "*net* subtracts `convert photo.ppm null:` (process start and PPM decode). Figures are "
        "medians over the rounds, with the range in brackets; ratios are medians of the "
        "per-round ratios. Verdicts use wall-clock time. *Ratio by CPU time* compares the "
        "single-thread runs by CPU seconds instead (ours: the benchmark thread's; Pillow: the "
        "process's; ImageMagick: the child process's, net of decode), which other work on the "
        "machine disturbs far less: where the two disagree, the machine was busy. *Ratio in the "
        "quietest round* is the ratio in the one round in which other processes used the least "
        "CPU, given only when that round was markedly quieter than the others; it is then the "
        "best guide to the all-threads speed-ups on a shared machine.",
        "", "### Targets", "",
        "| Target | Ours MP/s | Reference MP/s | Ratio (range) | Ratio by CPU time "
        "| Ratio in the quietest round | Required | Verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    # The round in which other processes took the least CPU (engine and peers runs together).
    quiet = None
    if len(others_engine) == rounds:
        load = [float(e) + (float(p) if len(others_peers) == rounds else 0.0)
                for e, p in zip(others_engine, others_peers or others_engine)]
        quiet = min(range(rounds), key=lambda i: load[i])
        if max(load) - load[quiet] < 10.0:
            quiet = None  # every round about as quiet (or as busy) as the others: use the medians
    met = 0
    for desc, a, b, ref, need, by_cpu, *given in targets:
        r = given[0] if given else div(a, b)
        r_quiet = given[1] if given else r
        m = med(r)
        verdict = "n/a" if m is None else ("met" if m >= need else "**NOT met**")
        if args.smoke:
            verdict = "not judged (smoke run)"
        met += verdict == "met"
        mc = med(by_cpu) if by_cpu else None
        mq = r_quiet[quiet] if quiet is not None else None
        notes = []
        if mc is not None and m is not None and (mc >= need) != (m >= need):
            notes.append(f"by CPU time: {'met' if mc >= need else 'not met'}")
        if mq is not None and m is not None and (mq >= need) != (m >= need):
            notes.append(f"quietest round: {'met' if mq >= need else 'not met'}")
        if notes and not args.smoke:
            verdict += f" ({'; '.join(notes)})"
        lines.append(f"| {desc} | {fmt(med(a))} | {fmt(med(b))} ({ref}) | {fmt(m, 2)}x{spread(r)} "
                     f"| {(fmt(mc, 2) + 'x') if mc is not None else ('n/a' if by_cpu else '-')} "
                     f"| {(fmt(mq, 2) + 'x') if mq is not None else '-'} "
                     f"| >= {need:g}x | {verdict} |")
    if quiet is not None:
        lines += ["", f"Quietest round: round {quiet + 1}, in which other processes used "
                  f"{others_engine[quiet]}% of the CPUs during our engine's run and "
                  f"{(others_peers or others_engine)[quiet]}% during the peers' run."]
    elif len(others_engine) == rounds and rounds > 1:
        lines += ["", "No round was markedly quieter than the others (other processes' share of "
                  "the CPUs within 10 points across rounds), so no quietest-round figures: the "
                  "medians stand."]
    verdicts = ("Smoke run: no target is judged, the figures of a tiny image mean nothing."
                if args.smoke else f"{met} of {len(targets)} met.")
    lines += ["", f"{verdicts} Bayer vs ImageMagick counting the whole command "
              f"(decode and process start included): {fmt(med(div(our('bayer'), im_o8_raw)), 2)}x.",
              "", "### Side by side (MP/s, same image and palette)", "",
              "![Engine speed per algorithm, ours beside Pillow and ImageMagick](img/engine.svg)",
              "",
              "| Case | Ours, 1 thread | Ours, all threads | Pillow | ImageMagick, 1 thread, "
              "net / raw | ImageMagick, all threads, net / raw |", "|---|---|---|---|---|---|"]
    side = [("Floyd-Steinberg, 8 colours", "floyd-steinberg", "levels:2", "8",
             "floyd-steinberg-remap"),
            ("Floyd-Steinberg, EGA 16", "floyd-steinberg", "ega", "ega", "floyd-steinberg-remap"),
            ("Ordered 8x8, 8 colours", "bayer", "levels:2", "8", "ordered-o8x8")]
    chart_rows = []
    for label, alg, pal, ppal, mcase in side:
        p = peer("pillow", "floyd-steinberg", ppal, "1") if alg == "floyd-steinberg" else None
        r1, n1 = magick(mcase, ppal, "1")
        ra, na = magick(mcase, ppal, "all")
        chart_rows.append({"case": label, "ours": med(our(alg, pal)),
                           "Pillow": med(p) if p else None, "ImageMagick": med(n1)})
        lines.append(f"| {label} | {fmt(med(our(alg, pal)))} | {fmt(med(our(alg, pal, thr='all')))}"
                     f" | {fmt(med(p)) if p else '-'} | {fmt(med(n1))} / {fmt(med(r1))} "
                     f"| {fmt(med(na))} / {fmt(med(ra))} |")

    lines += ["", "### Every algorithm (ours, MP/s)", "",
              "| Algorithm | Palette | Space | 1 thread | 1 thread by CPU time | All threads "
              "| Speed-up |",
              "|---|---|---|---|---|---|---|"]
    cases = []
    for r in ours_rounds:
        for (alg, pal, space, _thr) in r:
            if (alg, pal, space) not in cases:
                cases.append((alg, pal, space))
    for alg, pal, space in cases:
        if pal == "levels:2" and space == "srgb" and alg not in ("floyd-steinberg", "bayer"):
            chart_rows.append({"case": f"{alg}, 8 colours", "ours": med(our(alg, pal, space))})
        one, allt = our(alg, pal, space, "1"), our(alg, pal, space, "all")
        one_cpu = [r.get((alg, pal, space, "1")) for r in ours_cpu_rounds]
        lines.append(f"| {alg} | {pal} | {space} | {fmt(med(one))}{spread(one)} "
                     f"| {fmt(med(one_cpu))} | {fmt(med(allt))}{spread(allt)} "
                     f"| {fmt(med(div(allt, one)), 2)}x |")

    lines += ["", "### Peers (medians over the rounds)", "",
              "| Peer | Case | Palette | Threads | Time | MP/s | MP/s by CPU time | Command |",
              "|---|---|---|---|---|---|---|---|"]
    for r in peer_rounds[0]["runs"]:
        key = (r["peer"], r["case"], r["palette"], r["threads"])
        secs = [x["median_s"] for rnd in peer_rounds for x in rnd["runs"]
                if (x["peer"], x["case"], x["palette"], x["threads"]) == key]
        rates = peer(*key)
        cpu_rates = peer(*key, field="median_cpu_s")
        lines.append(f"| {r['peer']} | {r['case']} | {r['palette']} | {r['threads']} "
                     f"| {statistics.median(secs) * 1000:.0f} ms | {fmt(med(rates))}{spread(rates)} "
                     f"| {fmt(med(cpu_rates))} | `{r['command']}` |")

    if args.quality and Path(args.quality).exists():
        lines += ["", "### Quality", "", Path(args.quality).read_text().rstrip()]

    md = "\n".join(lines) + "\n"
    Path(args.out).write_text(md)
    if args.chart_json:
        Path(args.chart_json).write_text(json.dumps(
            {"machine": cpu_model(), "rows": [r for r in chart_rows if r.get("ours")]}, indent=1))
    print(md)
    if context.get("library_build_type") == "debug":
        print("report: note: Debian's libbenchmark reports a debug build of the library itself; "
              "it does not affect the code measured.", file=sys.stderr)
    if args.smoke:
        return smoke_check(errors, ours_rounds, peer_rounds)
    return 0


def smoke_check(errors: list[str], ours_rounds: list[dict], peer_rounds: list[dict]) -> int:
    """What a smoke run asserts: everything was measured (no figure is judged)."""
    problems = list(errors)
    for i, r in enumerate(ours_rounds, 1):
        if not r:
            problems.append(f"round {i}: no engine benchmark produced a figure")
    expected = {(p["peer"], p["case"], p["palette"], p["threads"])
                for rnd in peer_rounds for p in rnd["runs"]}
    for i, rnd in enumerate(peer_rounds, 1):
        runs = {(p["peer"], p["case"], p["palette"], p["threads"]): p for p in rnd["runs"]}
        for peer in ("pillow", "imagemagick"):
            if not any(k[0] == peer for k in runs):
                problems.append(f"round {i}: no {peer} measurement")
        for key in sorted(expected - runs.keys()):
            problems.append(f"round {i}: no peer measurement {'/'.join(key)}")
        for key, p in runs.items():
            if not p.get("median_s") or p["median_s"] <= 0:
                problems.append(f"round {i}: peer measurement {'/'.join(key)} has no time")
    for p in problems:
        print(f"report: smoke run: {p}", file=sys.stderr)
    if problems:
        print(f"report: smoke run FAILED: {len(problems)} problem(s) above", file=sys.stderr)
        return 1
    print("report: smoke run: every benchmark and peer measurement ran (figures not judged)",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
