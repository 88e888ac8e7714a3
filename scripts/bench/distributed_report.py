#!/usr/bin/env python3
"""Markdown report of the distributed-mode benchmark (scripts/bench_distributed.sh), from the JSON
written by scripts/bench/distributed.py.

  distributed_report.py --results RESULTS.json --command "scripts/bench_distributed.sh ..." \
      --commit "commit abc1234" --versions "PostgreSQL 15.x, ..." --out OUT.md

For a smoke run (distributed.py --smoke) nothing is judged, but the exit status is 1 when the
scale step's lease sampler failed or a burst's dithers were not all found FINISHED in the
stack's database, so that a broken benchmark fails CI.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from services_report import ms, parse_ts, pct  # noqa: E402

MODES = ("embedded", "distributed")


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def server_ms(runs):
    out = []
    for r in runs:
        a, b = parse_ts(r.get("created_at")), parse_ts(r.get("updated_at"))
        if a and b:
            out.append(1e3 * (b - a).total_seconds())
    return out


def latency_section(r: dict) -> list[str]:
    out = []
    for size, lat in r["latency"].items():
        ph = r["photos"][size]
        runs = lat["runs"]
        n = len(runs["embedded"])
        out.append(f"#### {size}: {ph['width']}x{ph['height']} JPEG ({ph['bytes'] / 1e3:.0f} kB), "
                   f"{n} uploads per mode\n")
        out.append("| Mode | p50 | p90 | max | POST answered, p50 | server's created -> "
                   "updated, p50 |")
        out.append("|---|---|---|---|---|---|")
        stats = {}
        for mode in MODES:
            total = [1e3 * x["finished_s"] for x in runs[mode]]
            post = [1e3 * x["post_s"] for x in runs[mode]]
            srv = server_ms(runs[mode])
            stats[mode] = (statistics.median(total), pct(total, 90), max(total),
                           statistics.median(post), med(srv))
            out.append(f"| {mode} | {ms(stats[mode][0])} | {ms(stats[mode][1])} | "
                       f"{ms(stats[mode][2])} | {ms(stats[mode][3])} | {ms(stats[mode][4])} |")
        e, d = stats["embedded"], stats["distributed"]
        cells = [f"**{d[i] / e[i]:.2f}x**" if i == 0 else f"{d[i] / e[i]:.2f}x"
                 for i in range(4)]
        cells.append(f"{d[4] / e[4]:.2f}x" if d[4] and e[4] else "-")
        out.append("| distributed / embedded | " + " | ".join(cells) + " |")
        out.append("")
        if "others_share" in lat:
            out.append(f"Others' CPU during these uploads (the client included): "
                       f"{100 * lat['others_share']:.0f}% of the machine.\n")
    return out


def others(b: dict, cores: int) -> str:
    """Share of the machine's CPU during a burst not charged to the measured mode's processes:
    the client, the other (idle) mode, anything else running on the machine."""
    rest = max(0.0, b["machine_cpu_s"] - sum(b["cpu_s"].values()))
    return f"{100 * rest / (b['all_finished_s'] * cores):.0f}%"


def cpu_per_image(b: dict) -> dict[str, float]:
    return {k: 1e3 * v / b["uploads"] for k, v in b["cpu_s"].items()}


def throughput_section(r: dict) -> list[str]:
    rounds = r["throughput"]
    cores = r["machine"]["cpus"]
    out = ["| Round (order) | embedded, images/min | distributed, images/min | "
           "distributed / embedded | all POSTs answered (emb. / dist.) | others' CPU "
           "(emb. / dist.) |",
           "|---|---|---|---|---|---|"]
    ratios, rates = [], {m: [] for m in MODES}
    for i, rnd in enumerate(rounds, 1):
        e, d = rnd["embedded"], rnd["distributed"]
        ratio = d["images_per_minute"] / e["images_per_minute"]
        ratios.append(ratio)
        for m in MODES:
            rates[m].append(rnd[m]["images_per_minute"])
        out.append(f"| {i} ({' then '.join(rnd)}) | {e['images_per_minute']:.0f} | "
                   f"{d['images_per_minute']:.0f} | {ratio:.2f}x | "
                   f"{e['all_posted_s']:.1f} s / {d['all_posted_s']:.1f} s | "
                   f"{others(e, cores)} / {others(d, cores)} |")
    if len(rounds) > 1:
        out.append(f"| **median** | **{med(rates['embedded']):.0f}** | "
                   f"**{med(rates['distributed']):.0f}** | **{med(ratios):.2f}x** | | |")
    out.append("")

    # CPU per image, by process, medians over the rounds.
    def per(mode):
        keys = rounds[0][mode]["cpu_s"].keys()
        return {k: med([cpu_per_image(rnd[mode])[k] for rnd in rounds]) for k in keys}

    emb, dist = per("embedded"), per("distributed")
    machine = {m: med([1e3 * rnd[m]["machine_cpu_s"] / rnd[m]["uploads"] for rnd in rounds])
               for m in MODES}
    parts = ", ".join(f"{k} {v:.0f}" for k, v in sorted(dist.items(), key=lambda kv: -kv[1])
                      if v >= 0.5)
    dist_sum = sum(dist.values())
    # A tiny burst can take less than one clock tick of ditherd's CPU time.
    dist_vs_emb = f"{dist_sum / emb['ditherd']:.2f}x" if emb["ditherd"] else "n/a"
    busy = {m: med([sum(rnd[m]["cpu_s"].values()) / rnd[m]["all_finished_s"] for rnd in rounds])
            for m in MODES}
    out.append(f"CPU time per image during the bursts (ms, medians over the rounds): embedded "
               f"ditherd **{emb['ditherd']:.0f}**; distributed, all its processes "
               f"**{dist_sum:.0f}** ({dist_vs_emb}): {parts}. Whole machine "
               f"(both modes' idle processes, the client and anything else included): "
               f"{machine['embedded']:.0f} ms per image in the embedded bursts, "
               f"{machine['distributed']:.0f} ms in the distributed ones. Cores the mode kept "
               f"busy on average during a burst (its CPU time / the burst's time): embedded "
               f"{busy['embedded']:.2f}, distributed {busy['distributed']:.2f}, of "
               f"{r['machine']['cpus']}.\n")
    return out


def scale_section(r: dict) -> list[str]:
    scale = r["scale"]
    cores = r["machine"]["cpus"]
    out = ["| Burst | Runs | images/min | all POSTs answered | all FINISHED | dithers per "
           "worker (sampled leases) | worker CPU, s | others' CPU |",
           "|---|---|---|---|---|---|---|---|"]
    rates: dict[int, list[float]] = {}
    checks = []
    for i, s in enumerate(scale, 1):
        w = s["workers"]
        rates.setdefault(w, []).append(s["images_per_minute"])
        sp = s.get("split", {})
        if w == 0:
            what, split = "embedded ditherd", "-"
            cpu = f"{s['cpu_s']['ditherd']:.1f} (all of ditherd)"
        else:
            what = f"stack, {w} dithering worker{'s' if w > 1 else ''}"
            split = " / ".join(f"{sp['per_worker'].get(f'dithering-service-{k}', 0)}"
                               for k in range(1, w + 1)) if sp else "-"
            if sp and sp.get("not_seen"):
                split += f" ({sp['not_seen']} not seen)"
            cpu = " / ".join(f"{s['cpu_s'].get(f'dithering-service-{k}', 0):.1f}"
                             for k in range(1, w + 1))
        out.append(f"| {i} | {what} | {s['images_per_minute']:.0f} | {s['all_posted_s']:.1f} s | "
                   f"{s['all_finished_s']:.1f} s | {split} | {cpu} | {others(s, cores)} |")
        if sp:
            checks.append(sp)
    out.append("")
    r0, r1, r2 = (med(rates.get(k, [])) for k in (0, 1, 2))
    if r1 and r2:
        out.append(f"**2 workers / 1 worker: {r2 / r1:.2f}x** ({r2:.0f} vs {r1:.0f} images per "
                   f"minute, medians over {len(rates[2])} and {len(rates[1])} bursts).")
    if r0 and r1:
        out.append(f"Like for like, one dither at a time in both: **stack with 1 worker / "
                   f"embedded: {r1 / r0:.2f}x** ({r1:.0f} vs {r0:.0f} images per minute).")
    out.append("")
    if checks:
        dithers = sum(c["dithers"] for c in checks)
        images = sum(c["images"] for c in checks)
        one = sum(c["images_with_one_dither"] for c in checks)
        finished = sum(c["finished"] for c in checks)
        twice = sum(c["held_by_two_workers"] for c in checks)
        unseen = sum(c["not_seen"] for c in checks)
        interval = checks[0]["sample_interval_s"] * 1e3
        errs = [c["sampler_error"] for c in checks if c.get("sampler_error")]
        out.append(
            f"Who did what: a worker thread leases a dither by writing its name "
            f"(`<host>:<pid>:<thread>`) into `dither.dithers.claimed_by` and clears it when "
            f"the dither is finished, so no column keeps the worker afterwards and the services "
            f"log no line per dither; the benchmark reads the leased rows every "
            f"{interval:.0f} ms during each burst (one long-lived `psql` session) and maps the "
            f"pid to the process. Over the {len(checks)} bursts: {images} images, {dithers} "
            f"dither rows ({one} images with exactly one), {finished} `FINISHED`; "
            f"**{twice} dithers leased by more than one worker**, {unseen} never caught "
            f"leased (a dither takes hundreds of ms)."
            + (f" Sampler errors: {'; '.join(errs)}." if errs else "") + "\n")
    return out


def disturbed_note(r: dict) -> list[str]:
    bursts = [b for rnd in r["throughput"] for b in rnd.values()] + r["scale"]
    again = [s for b in bursts for s in b.get("disturbed_attempts", [])]
    if not again:
        return []
    return [f"{len(again)} burst{'s were' if len(again) > 1 else ' was'} run again because other "
            f"work took more than 15% of the machine meanwhile ("
            + ", ".join(f"{100 * s:.0f}%" for s in again) + "); only the repeat is shown.", ""]


def render(r: dict, command: str, commit: str, versions: str) -> str:
    m = r["machine"]
    cfg = r.get("ditherd_config", {})
    t = r.get("stack_timings_s", {})
    restarts = t.get("restarts", [])
    out = [
        f"Produced by `{command}` on {r['date']}, {commit}; {versions}. Machine: {m['cpus']} "
        f"cores ({m['model']}, Linux {m['kernel']}) **shared by everything**: the client, "
        "ditherd, the five service processes, PostgreSQL, Kafka and versitygw (nothing is "
        "pinned). Read the ratios, not the absolute figures."
        + (" **Quick run** (`--quick`): few samples, indicative only." if r.get("quick") else "")
        + (" **Smoke run** (`--smoke`): every step with one or two uploads of small photos, to "
           "check that the benchmark runs; the figures mean nothing." if r.get("smoke") else ""),
        "",
        f"*Embedded*: one `ditherd` with its defaults (`IO_THREADS={cfg.get('IO_THREADS', '0')}`, "
        f"`DITHER_WORKERS={cfg.get('DITHER_WORKERS', '1')}`) on a fresh data directory: SQLite, "
        "in-process bus, files. *Distributed*: `scripts/stack.sh` (PostgreSQL, Kafka in KRaft "
        "mode, versitygw as S3, an SMTP server; then api-gateway, upload-service, "
        "notification-service and two dithering-service processes in one consumer group), "
        "started fresh. Both get the same generated JPEGs "
        "(ImageMagick `plasma:fractal`, quality 90) as raw `POST /api/images` through their "
        "gateway, and both stay up during the latency and throughput runs (the idle one idles). "
        "Every request carries an API key made for the run with `dither-keys` (docs/SECURITY.md), "
        "which each gateway checks: the embedded one in its SQLite store on every request, the "
        "stack's in PostgreSQL, cached for `AUTH_CACHE_SECONDS`. "
        f"Stack start-up: {t.get('first_up', 0):.0f} s the first time"
        + (f", restarts (down + up) {min(x['down'] + x['up'] for x in restarts):.0f}-"
           f"{max(x['down'] + x['up'] for x in restarts):.0f} s" if restarts else "") + ".",
        "",
        "### Upload -> FINISHED, one at a time",
        "",
        f"Each upload is polled with `GET /api/images/{{uuid}}` every "
        f"{r['poll_interval_s'] * 1e3:.0f} ms until `FINISHED`, timed from the start of the POST; "
        "the modes alternate upload by upload (and which one goes first alternates too). p90 is "
        "nearest-rank. *Server's created -> updated* is the record's own timestamps (the dither "
        "service's work plus the hop back to the upload service).",
        "",
    ]
    out += latency_section(r)
    burst_photo = r.get("burst_photo", "4MP").replace("MP", " MP")
    out += [f"### Throughput: {r['burst']} uploads of {burst_photo} from {r['clients']} clients",
            "",
            f"{r['clients']} clients upload back to back (keep-alive connections); the time runs "
            "from the first POST until the list (`GET /api/images?limit=1000`, every 20 ms) "
            "shows the last of them `FINISHED`. Rounds alternate which mode goes first. *Others' "
            "CPU*: the share of the machine's CPU time during the burst that the measured mode's "
            "processes did not use (the client, the other mode idling, anything else on the "
            "machine); more than a few percent means the burst was disturbed.", ""]
    out += throughput_section(r)
    out += ["Both run their defaults: the embedded `ditherd` dithers one image at a time "
            "(`DITHER_WORKERS=1`), the stack has two dithering-service processes, so two images "
            "at a time. The like-for-like figure (the stack with one worker) is in the next "
            "part.", ""]
    order = ", ".join(str(s["workers"]) for s in r["scale"] if s["workers"])
    warmups = r.get("warmups_after_restart")
    warmups = ("one warm-up upload" if warmups in (None, 1) else f"{warmups} warm-up uploads")
    out += ["### Scale: 1 dithering worker vs 2", "",
            "The same burst on the stack restarted with `DITHER_STACK_WORKERS=1` and `=2` (both "
            "workers in one consumer group, on one topic with 2 partitions, claiming from one "
            f"database), in the order {order} (the stack is first started with 2), {warmups} "
            "after each restart; the embedded `ditherd` (still up, idle in between) gets the same "
            "burst next to each 1-worker one.", ""]
    out += scale_section(r)
    out += disturbed_note(r)
    out += ["On this machine each dithering worker already uses every core for the dither itself "
            "(as many threads as cores), so a second worker on the same 2 cores cannot be "
            "expected to double throughput: all it can gain is the time one worker leaves cores "
            "idle (decode, PNG encode, store, database: see *cores kept busy* above), and "
            "otherwise it competes for the same cores. The point of this part is that the work "
            "is shared between the processes and nothing is done twice; a second worker on a "
            "machine of its own is where throughput would add up.", ""]
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--results", type=Path, required=True)
    ap.add_argument("--command", required=True)
    ap.add_argument("--commit", default="")
    ap.add_argument("--versions", default="")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    results = json.loads(args.results.read_text())
    text = render(results, args.command, args.commit, args.versions)
    if args.out:
        args.out.write_text(text)
    print(text)
    return smoke_check(results) if results.get("smoke") else 0


def smoke_check(r: dict) -> int:
    """What a smoke run asserts (no figure is judged): the scale step saw its dithers through."""
    problems = []
    splits = [s["split"] for s in r["scale"] if s.get("split")]
    if not splits:
        problems.append("the scale step has no lease samples (no stack burst was sampled)")
    for sp in splits:
        if sp.get("sampler_error"):
            problems.append(f"lease sampler: {sp['sampler_error']}")
        if sp["dithers"] < sp["images"] or sp["finished"] < sp["dithers"]:
            problems.append(f"{sp['images']} images, {sp['dithers']} dither rows, "
                            f"{sp['finished']} FINISHED in the stack's database")
    for p in problems:
        print(f"distributed_report: smoke run: {p}", file=sys.stderr)
    if problems:
        print(f"distributed_report: smoke run FAILED: {len(problems)} problem(s) above",
              file=sys.stderr)
        return 1
    print("distributed_report: smoke run: every step ran (figures not judged)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
