#!/usr/bin/env bash
# Sets up and builds the project, then runs the `dither` tool with your arguments.
#   scripts/run.sh photo.jpg out.png --palette pico8 --serpentine
# Without arguments it dithers a generated sample picture to build/sample-dithered.png.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
scripts/build.sh release dither >/dev/null

if (($# == 0)); then
  mkdir -p build
  convert -size 640x400 plasma:fractal -seed 7 build/sample.png 2>/dev/null ||
    convert -size 640x400 gradient:navy-orange build/sample.png
  build/release/src/cli/dither build/sample.png build/sample-dithered.png --palette pico8
  echo "Dithered build/sample.png to build/sample-dithered.png (PICO-8 palette, Floyd-Steinberg)."
  echo "Try: scripts/run.sh YOUR_PHOTO.jpg out.png --palette gameboy --algorithm atkinson"
  echo "     build/release/src/cli/dither --help"
  exit 0
fi
exec build/release/src/cli/dither "$@"
