#!/usr/bin/env bash
# Quality of every algorithm and of adaptive palettes against Pillow, ImageMagick, GEGL and
# pngquant, on four photos of Debian's mate-backgrounds and a grey ramp. See docs/BENCHMARKS.md,
# "Quality of every algorithm" and "Adaptive palettes against pngquant".
#
#   scripts/quality.sh                # 1024 px wide photos (about 15 minutes on 2 cores)
#   scripts/quality.sh --smoke        # 96 px wide, one run each; the figures mean nothing (CI)
#   scripts/quality.sh --update-docs  # full run, then paste the tables and the pictures into docs
#
# Environment: QUALITY_WIDTH (1024), QUALITY_REPEAT (3: timed runs of each palette job).
set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD
run=$root/build/quality-run
width=${QUALITY_WIDTH:-1024}
repeat=${QUALITY_REPEAT:-3}
update_docs=0
for arg in "$@"; do
  case $arg in
    --smoke) width=96 repeat=1 ;;
    --update-docs) update_docs=1 ;;
    -h | --help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "quality: unknown argument $arg" >&2; exit 2 ;;
  esac
done
step() { printf '\n== %s\n' "$*" >&2; }
SECONDS=0

step "system packages, the dither program, photos, Python venv"
scripts/setup.sh
scripts/build.sh release dither >/dev/null
read -r photos deb < <(scripts/bench/photos.sh "$root/build/bench-data")
py=$(scripts/bench/venv.sh "$root/build/bench-venv")

rm -rf "$run"
mkdir -p "$run"
step "every algorithm and adaptive palette, ${width} px wide"
"$py" scripts/bench/quality_table.py --cli build/release/src/cli/dither \
  --photos "$photos/usr/share/backgrounds/mate" --width "$width" --repeat "$repeat" \
  --algorithms --palettes --workdir "$run" --out "$run/quality-table.md"
{
  echo "Made by \`scripts/quality.sh${*:+ $*}\` on $(date -u +%Y-%m-%d), $(grep -m1 'model name' \
    /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), from $(basename "$deb"); GEGL $(dpkg-query -W -f '${Version}' gegl \
    2>/dev/null | sed 's/^[0-9]*://'), $(pngquant --version | head -1 | sed 's/^/pngquant /'), \
$(convert -version | head -1 | cut -d' ' -f2-3)."
  echo
  cat "$run/quality-table.md"
  echo
  echo "Centre crops of LadyBird (2x, nearest neighbour), \`levels:2\` and \`ega\`:"
  echo
  echo "![levels:2](img/quality/mosaic-levels2.png)"
  echo "![ega](img/quality/mosaic-ega.png)"
} >"$run/report.md"
cat "$run/report.md"

if ((update_docs)); then
  mkdir -p docs/img/quality
  cp "$run"/mosaic-*.png docs/img/quality/
  "$py" scripts/bench/paste_docs.py quality-table docs/BENCHMARKS.md "$run/report.md"
fi
echo "quality: done in ${SECONDS}s; results in $run" >&2
