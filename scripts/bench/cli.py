#!/usr/bin/env python3
"""The whole job on the command line, side by side (issue 14, item 1), run by scripts/bench_cli.sh:

  cli.py --photo IN.jpg --ours BIN [--baseline BIN] --pillow-python PY --run DIR --out REPORT.md
         [--rounds 5] [--quiet-wait 30] [--command-line TEXT] [--note TEXT] [--smoke]

Each case is one whole process, file in and file out, as a user runs it: ours (`dither IN OUT
...`, all defaults but what the case names), ours at the baseline commit (the same command built
from the commit before this work, when --baseline is given), Pillow (scripts/bench/pillow_job.py:
open, quantize with Floyd-Steinberg to the same palette, save) and ImageMagick (`convert IN
-dither FloydSteinberg -remap PALETTE OUT`, or `-ordered-dither o8x8,2`). Rounds run the tools in
turn on the same file, so that a noisy machine slows all of them alike, each round after a wait
for idle CPUs and one untimed run of every tool's first case; the report gives medians
of wall-clock time, peak memory (the process's maximum resident set) and output size, and the
ratios within the run. With --smoke: one round, no judgement (CI checks that it runs).
Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quiet import wait_until_quiet  # noqa: E402

HERE = Path(__file__).resolve().parent
GOAL_PILLOW_RATIO = 4.0  # FS levels:2 to PNG: at least 4x Pillow's whole-process time

# name, our extra arguments, output extension, palette (for Pillow and ImageMagick: "levels2" or
# "ega"), ImageMagick's dithering arguments (None: the palette's -remap with Floyd-Steinberg),
# whether Pillow can do it.
CASES = [
    ("Floyd-Steinberg, levels:2 (8 colours) -> PNG", [], "png", "levels2", None, True),
    ("Floyd-Steinberg, EGA (16 colours) -> PNG", ["--palette", "ega"], "png", "ega", None, True),
    ("Bayer 8x8, levels:2 -> PNG", ["--algorithm", "bayer"], "png", "levels2",
     ["-ordered-dither", "o8x8,2"], False),
    ("Floyd-Steinberg, levels:2 -> GIF", [], "gif", "levels2", None, True),
    ("Floyd-Steinberg, levels:2 -> WebP (lossless)", [], "webp", "levels2", None, True),
]


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def run_once(argv: list[str]) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds and peak resident KiB of one whole process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"cli bench: {' '.join(argv)} failed ({proc.returncode}): {err[:500]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss


def deflate_levels(png: Path, job: str) -> list[str]:
    """Size and time of libdeflate's levels, and of zlib's level 6 (what libpng used), on the image
    data of our PNG (its IDAT, inflated): the table the PNG writer's level is chosen from."""
    import ctypes
    import struct
    import zlib

    data, i, idat = png.read_bytes(), 8, b""
    while i < len(data):
        (n,) = struct.unpack(">I", data[i:i + 4])
        if data[i + 4:i + 8] == b"IDAT":
            idat += data[i + 8:i + 8 + n]
        i += 12 + n
    raw = zlib.decompress(idat)
    lib = ctypes.CDLL("libdeflate.so.0")
    lib.libdeflate_alloc_compressor.restype = ctypes.c_void_p
    lib.libdeflate_alloc_compressor.argtypes = [ctypes.c_int]
    lib.libdeflate_free_compressor.argtypes = [ctypes.c_void_p]
    lib.libdeflate_zlib_compress.restype = ctypes.c_size_t
    lib.libdeflate_zlib_compress.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t,
                                             ctypes.c_char_p, ctypes.c_size_t]
    out = ctypes.create_string_buffer(len(raw) + len(raw) // 10 + 4096)

    def best_of(fn, n=3):
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            size = fn()
            times.append(time.perf_counter() - t0)
        return size, min(times)

    z_size, z_time = best_of(lambda: len(zlib.compress(raw, 6)))
    rows = [f"PNG compression of the image data of \"{job}\" ({len(raw):,} bytes of filtered rows), "
            f"fastest of 3, one thread: zlib level 6 (libpng's default before) {z_size:,} B in "
            f"{z_time * 1000:.0f} ms.", "", "| libdeflate level | bytes | vs zlib 6 | ms |",
            "|---|---|---|---|"]
    for level in (1, 2, 3, 4, 5, 6, 8, 10, 12):
        c = lib.libdeflate_alloc_compressor(level)
        size, secs = best_of(lambda: lib.libdeflate_zlib_compress(c, raw, len(raw), out, len(out)))
        lib.libdeflate_free_compressor(c)
        rows.append(f"| {level} | {size:,} | {100 * size / z_size:.1f}% | {secs * 1000:.0f} |")
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--photo", required=True)
    ap.add_argument("--ours", required=True)
    ap.add_argument("--baseline")
    ap.add_argument("--baseline-name", default="baseline")
    ap.add_argument("--pillow-python", required=True)
    ap.add_argument("--run", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--quiet-wait", type=float, default=30)
    ap.add_argument("--command-line", default="scripts/bench_cli.sh")
    ap.add_argument("--note", default="")
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--stages-json", help="write the stage breakdown here (for charts.py)")
    a = ap.parse_args()
    run = Path(a.run)
    run.mkdir(parents=True, exist_ok=True)
    rounds = 1 if a.smoke else a.rounds

    # The palettes, as our engine spells them (the CLI prints nothing of the kind: write them).
    palettes = {
        "levels2": ["#000000", "#0000ff", "#00ff00", "#00ffff", "#ff0000", "#ff00ff", "#ffff00",
                    "#ffffff"],
        "ega": ["#000000", "#0000aa", "#00aa00", "#00aaaa", "#aa0000", "#aa00aa", "#aa5500",
                "#aaaaaa", "#555555", "#5555ff", "#55ff55", "#55ffff", "#ff5555", "#ff55ff",
                "#ffff55", "#ffffff"],
    }
    for name, colours in palettes.items():
        (run / f"{name}.txt").write_text("\n".join(colours) + "\n")
        # An N x 1 palette image for ImageMagick's -remap, written by ImageMagick itself.
        subprocess.run(["convert", "-size", "1x1"] + [f"xc:{c}" for c in colours] +
                       ["+append", "-define", "png:color-type=2", str(run / f"{name}.png")],
                       check=True)

    tools = ["ours"] + (["baseline"] if a.baseline else []) + ["Pillow", "ImageMagick"]
    figures: dict[tuple[str, str], list[tuple[float, float, int]]] = {}
    sizes: dict[tuple[str, str], int] = {}
    busy_before = []
    def argv_for(ci: int, tool: str, out: Path) -> list[str] | None:
        _name, ours_args, ext, palette, magick_args, pillow_can = CASES[ci]
        if tool in ("ours", "baseline"):
            binary = a.ours if tool == "ours" else a.baseline
            return [binary, a.photo, str(out)] + ours_args
        if tool == "Pillow":
            if not pillow_can:
                return None
            return [a.pillow_python, str(HERE / "pillow_job.py"), a.photo, str(out),
                    str(run / f"{palette}.txt")]
        dither = magick_args or ["-dither", "FloydSteinberg", "-remap", str(run / f"{palette}.png")]
        extra = ["-define", "webp:lossless=true"] if ext == "webp" else []
        return ["convert", a.photo] + dither + extra + [str(out)]

    for r in range(rounds):
        busy_before.append(wait_until_quiet(15.0, 0 if a.smoke else a.quiet_wait))
        # One untimed run of every tool's first case after the wait, as hyperfine's --warmup: here
        # the first process after an idle spell ran up to 0.1 s slower than the next, and without
        # this it would always be ours, in the headline case.
        if not a.smoke:
            for tool in tools:
                argv = argv_for(0, tool, run / f"warmup-{tool}.{CASES[0][2]}")
                if argv:
                    run_once(argv)
        for ci, (name, _ours_args, ext, *_rest) in enumerate(CASES):
            for tool in tools:
                out = run / f"case{ci}-{tool}.{ext}"
                argv = argv_for(ci, tool, out)
                if argv is None:
                    continue
                figures.setdefault((name, tool), []).append(run_once(argv))
                sizes[(name, tool)] = out.stat().st_size
        print(f"cli bench: round {r + 1} of {rounds} done", file=sys.stderr)

    # Where our time goes: each case again with --timings (separate runs, so that the timed runs
    # above stay exactly what a user runs), and the floor: Pillow decoding the photo alone.
    stage_names = ["read", "decode", "dither", "waited", "encode", "write"]
    stages: dict[str, dict[str, float]] = {}
    for ci, (name, ours_args, ext, *_rest) in enumerate(CASES):
        runs = []
        for _ in range(rounds):
            out = run / f"case{ci}-stages.{ext}"
            t0 = time.perf_counter()
            proc = subprocess.run([a.ours, a.photo, str(out), "--timings"] + ours_args,
                                  capture_output=True, text=True)
            wall = time.perf_counter() - t0
            if proc.returncode != 0:
                raise SystemExit(f"cli bench: --timings run failed: {proc.stderr[:500]}")
            t = json.loads(proc.stderr.strip().splitlines()[-1])
            t["process"] = wall
            runs.append(t)
        stages[name] = {k: statistics.median(r[k] for r in runs)
                        for k in stage_names + ["process"]}
    floor_runs = []
    for _ in range(rounds):
        proc = subprocess.run(
            [a.pillow_python, "-c",
             "import sys, time; from PIL import Image; t = time.perf_counter(); "
             "Image.open(sys.argv[1]).load(); print(time.perf_counter() - t)", a.photo],
            capture_output=True, text=True, check=True)
        floor_runs.append(float(proc.stdout.strip()))
    pillow_decode = statistics.median(floor_runs)

    def med(name: str, tool: str, i: int) -> float | None:
        values = figures.get((name, tool))
        return statistics.median(v[i] for v in values) if values else None

    w: list[str] = []
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    w.append(f"Produced by `{a.command_line}` on {stamp}; {rounds} round(s), medians. Machine: "
             f"{os.cpu_count()} cores ({cpu_model()}), shared; CPUs busy before each round: "
             f"{', '.join(f'{b:.0f}%' for b in busy_before)}. {a.note}".rstrip())
    w.append("")
    w.append("Whole process, file in and file out (process start to exit, as a user runs it). "
             "Ratios are the peer's time over ours: above 1, ours is faster.")
    w.append("")
    head = "| Job | ours | " + (f"{a.baseline_name} | " if a.baseline else "") + \
           "Pillow | ImageMagick | Pillow / ours | ImageMagick / ours |"
    w.append(head)
    w.append("|" + "---|" * (head.count("|") - 1))
    goal = None
    for name, *_ in CASES:
        ours = med(name, "ours", 0)
        cells = [f"{ours:.2f} s"]
        if a.baseline:
            b = med(name, "baseline", 0)
            cells.append(f"{b:.2f} s ({b / ours:.2f}x ours)")
        p = med(name, "Pillow", 0)
        m = med(name, "ImageMagick", 0)
        cells.append(f"{p:.2f} s" if p else "n/a (no ordered dither to a palette)")
        cells.append(f"{m:.2f} s")
        cells.append(f"**{p / ours:.2f}x**" if p else "")
        cells.append(f"**{m / ours:.2f}x**")
        w.append(f"| {name} | " + " | ".join(cells) + " |")
        if name == CASES[0][0] and p:
            goal = p / ours
    w.append("")
    w.append("Peak memory (maximum resident set, MiB) and output size (bytes):")
    w.append("")
    head = "| Job | ours | " + (f"{a.baseline_name} | " if a.baseline else "") + \
           "Pillow | ImageMagick |"
    w.append(head)
    w.append("|" + "---|" * (head.count("|") - 1))
    for name, *_ in CASES:
        cells = []
        for tool in tools:
            rss = med(name, tool, 2)
            if rss is None:
                cells.append("n/a")
                continue
            cells.append(f"{rss / 1024:.0f} MiB, {sizes[(name, tool)]:,} B")
        w.append(f"| {name} | " + " | ".join(cells) + " |")
    w.append("")
    w.append("CPU seconds (user + system, median), to see where both cores helped: " + "; ".join(
        f"{tool} {med(CASES[0][0], tool, 1):.2f} s" for tool in tools
        if med(CASES[0][0], tool, 1) is not None) + f" (for \"{CASES[0][0]}\").")
    if goal is not None and not a.smoke:
        w.append("")
        status = "met" if goal >= GOAL_PILLOW_RATIO else "**not met**"
        w.append(f"Goal: Floyd-Steinberg levels:2 to PNG at least {GOAL_PILLOW_RATIO:.0f}x "
                 f"Pillow's whole-process time: {goal:.2f}x, {status}.")
    w.append("")
    w.append("Where our time goes (`dither --timings`, the same cases run again, medians; seconds "
             "of wall time). With error diffusion the dither follows the decoder on a second "
             "thread: *waited* is the dither waiting for decoded rows, overlapping *decode*, "
             "which also counts the decoder's own waits when it is 128 rows ahead of the dither "
             "(it gives rows back as it goes). "
             "*Other* is the process's wall time not in a stage (start-up, libvips, exit).")
    w.append("")
    w.append("![Where the command line's time goes, beside Pillow](img/cli-stages.svg)")
    w.append("")
    w.append("| Job | read | decode | dither | waited | encode | write | other | process |")
    w.append("|---|---|---|---|---|---|---|---|---|")
    for name, *_ in CASES:
        t = stages[name]
        # Decode runs beside the dither (which waits for its rows, and which the decoder waits
        # for when it is too far ahead): the longer of the two threads counts once.
        serial = t["read"] + max(t["decode"], t["waited"] + t["dither"]) + t["encode"] + \
            t["write"]
        t["other"] = max(0.0, t["process"] - serial)
        w.append(f"| {name} | " + " | ".join(f"{t[k]:.3f}" for k in
                                               stage_names + ["other", "process"]) + " |")
    # Our decoder alone: the shortest decode stage (beside error diffusion the decoder also
    # waits for the dither, which gives rows back as it goes).
    decode_alone = min(stages[name]["decode"] for name, *_ in CASES)
    p0 = med(CASES[0][0], "Pillow", 0)
    w.append("")
    w.append(f"The floor: Pillow decodes the photo alone (open + load, in-process) in "
             f"{pillow_decode:.3f} s; our decoder alone (the shortest decode stage above) takes "
             f"{decode_alone:.3f} s. "
             + (f"Pillow's whole job takes {p0:.2f} s, so a process that did nothing but decode "
                f"would be at most {p0 / decode_alone:.1f}x Pillow (4x needs "
                f"{p0 / 4:.3f} s for everything)." if p0 and decode_alone > 0 else ""))
    if a.stages_json:
        Path(a.stages_json).write_text(json.dumps(
            {"cases": stages, "pillow_decode": pillow_decode, "pillow_whole": p0,
             "ours_whole": med(CASES[0][0], "ours", 0), "machine": cpu_model(),
             "photo": Path(a.photo).name}, indent=1))
    if not a.smoke:
        for case in (0, 2):  # error diffusion and an ordered dither compress differently
            w += [""] + deflate_levels(run / f"case{case}-ours.png", CASES[case][0])
    Path(a.out).write_text("\n".join(w) + "\n")
    print("\n".join(w))
    if a.smoke:
        return 0
    return 0 if goal is None or goal >= GOAL_PILLOW_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
