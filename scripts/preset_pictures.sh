#!/usr/bin/env bash
# The pictures of the built-in presets in docs/PRESETS.md: one photo (Debian's mate-backgrounds,
# scripts/bench/photos.sh), made small, dithered with each preset by the command line.
#   scripts/preset_pictures.sh [path/to/dither]      (default build/release/src/cli/dither)
set -euo pipefail
cd "$(dirname "$0")/.."
dither=${1:-build/release/src/cli/dither}
out=docs/img/presets
width=360
read -r photos _ < <(scripts/bench/photos.sh build/bench-data)
photo=$(find "$photos" -name 'LadyBird.jpg' | head -1)
[[ -n $photo ]] || { echo "preset_pictures: no LadyBird.jpg in $photos" >&2; exit 1; }
mkdir -p "$out"
rm -f "$out"/*.png "$out"/*.jpg
# The original at the same size (ImageMagick, a small JPEG).
convert "$photo" -resize "${width}x" -quality 82 "$out/original.jpg"
# The preset names: the indented lines after "presets" in `dither --list`.
presets=$("$dither" --list | awk '/^presets/ {on=1; next} on && /^  [a-z0-9]/ {print $1}')
for name in $presets; do
  "$dither" "$photo" "$out/$name.png" --preset "$name" --width "$width"
  echo "$out/$name.png: $(stat -c %s "$out/$name.png") bytes"
done
