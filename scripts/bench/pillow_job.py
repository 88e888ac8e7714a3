#!/usr/bin/env python3
"""One whole job with Pillow, as a user would script it (scripts/bench/cli.py times the process):

  pillow_job.py IN OUT PALETTE_FILE [--lossless]

opens IN, dithers it with Floyd-Steinberg to the colours of PALETTE_FILE (one #rrggbb a line) with
Image.quantize, and saves OUT in the format its extension names (PNG, GIF; WebP lossless).
"""

import sys

from PIL import Image


def main() -> int:
    src, out, palette_file = sys.argv[1:4]
    colours = []
    for line in open(palette_file).read().split():
        h = line.strip().lstrip("#")
        colours += [int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)]
    palette = Image.new("P", (1, 1))
    palette.putpalette(colours)
    image = Image.open(src).convert("RGB")
    dithered = image.quantize(palette=palette, dither=Image.Dither.FLOYDSTEINBERG)
    if out.lower().endswith(".webp"):
        dithered.convert("RGB").save(out, lossless=True)
    else:
        dithered.save(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
