#!/usr/bin/env python3
"""Times the peers on one image: Pillow's Floyd-Steinberg and ImageMagick's ordered dither and
Floyd-Steinberg -remap, single-threaded and with all threads. Writes JSON for report.py.

Pillow is timed in-process on an image already decoded (Image.load()), median of --repeat runs.
ImageMagick is timed as whole `convert` commands writing to `null:`; `convert IN null:` (process
start plus PPM decode) is timed as well, so the report can give both the raw and the net figure.

  peers.py --ppm photo.ppm --palette 8=pal8.txt --palette ega=ega.txt --workdir DIR --out peers.json

scripts/bench.sh runs it once per round, between runs of our engine, so that ours and theirs are
measured close together in time on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import PIL
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402


def magick_env(threads: int | None) -> dict:
    env = dict(os.environ)
    for k in ("MAGICK_THREAD_LIMIT", "OMP_NUM_THREADS"):
        env.pop(k, None)
    if threads is not None:
        env["MAGICK_THREAD_LIMIT"] = str(threads)
        env["OMP_NUM_THREADS"] = str(threads)
    return env


def magick_version() -> str:
    out = subprocess.run(["convert", "-version"], capture_output=True, text=True, check=True).stdout
    first = out.splitlines()[0]
    return first.replace("Version: ", "").split(" https")[0]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ppm", required=True, help="the photo as binary PPM")
    ap.add_argument("--palette", action="append", default=[], metavar="LABEL=FILE",
                    help="a palette (hex colours, one a line); repeatable")
    ap.add_argument("--workdir", required=True, help="where palette PNGs are written")
    ap.add_argument("--repeat", type=int, default=5, help="timed Pillow runs (median)")
    ap.add_argument("--magick-repeat", type=int, default=3, help="timed ImageMagick runs (median)")
    ap.add_argument("--magick-warmup", type=int, default=1, help="untimed ImageMagick runs first")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    palettes = {}
    for item in args.palette:
        label, _, path = item.partition("=")
        palettes[label] = common.read_hex_palette(path)

    image = Image.open(args.ppm).convert("RGB")
    image.load()
    pixels = image.width * image.height
    results = {
        "image": {"path": args.ppm, "width": image.width, "height": image.height},
        "versions": {"pillow": PIL.__version__, "imagemagick": magick_version(),
                     "python": sys.version.split()[0]},
        "runs": [],
    }

    def record(peer, case, palette, threads, times, command):
        wall, cpu = times
        med, med_cpu = common.median(wall), common.median(cpu)
        results["runs"].append({
            "peer": peer, "case": case, "palette": palette, "threads": threads,
            "seconds": wall, "median_s": med, "mp_per_s": pixels / med / 1e6,
            "cpu_seconds": cpu, "median_cpu_s": med_cpu, "command": command,
        })
        print(f"  {peer:12s} {case:22s} {palette:4s} threads={threads:3s} "
              f"{med * 1000:8.1f} ms  {pixels / med / 1e6:7.1f} MP/s  (CPU {med_cpu * 1000:.1f} ms)",
              file=sys.stderr, flush=True)

    # Pillow: single-threaded by design.
    for label, colours in palettes.items():
        pal = common.pillow_palette_image(colours)
        times = common.time_call(
            lambda pal=pal: image.quantize(palette=pal, dither=Image.Dither.FLOYDSTEINBERG),
            args.repeat)
        record("pillow", "floyd-steinberg", label, "1", times,
               "Image.quantize(palette=P, dither=Image.Dither.FLOYDSTEINBERG)")

    # ImageMagick: whole commands; decode-only baseline for the net figures.
    palette_pngs = {}
    for label, colours in palettes.items():
        palette_pngs[label] = workdir / f"palette-{label}.png"
        common.write_palette_png(colours, palette_pngs[label])
    # The PPM in the page cache before anything is timed.
    subprocess.run(["convert", args.ppm, "null:"], check=True)
    for threads in ("1", "all"):
        env = magick_env(1 if threads == "1" else None)
        cases = [("decode", "-", ["convert", args.ppm, "null:"]),
                 ("ordered-o8x8", "8", ["convert", args.ppm, "-ordered-dither", "o8x8", "null:"])]
        for label, png in palette_pngs.items():
            cases.append(("floyd-steinberg-remap", label,
                          ["convert", args.ppm, "-dither", "FloydSteinberg", "-remap", str(png),
                           "null:"]))
        for case, label, argv in cases:
            times = common.time_command(argv, env, args.magick_repeat, args.magick_warmup)
            prefix = "MAGICK_THREAD_LIMIT=1 OMP_NUM_THREADS=1 " if threads == "1" else ""
            record("imagemagick", case, label, threads, times,
                   prefix + " ".join(Path(a).name if "/" in a else a for a in argv))

    Path(args.out).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
