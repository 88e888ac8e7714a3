#!/usr/bin/env bash
# Benchmarks the engine against Pillow and ImageMagick on one real photo, in one run, and
# measures the quality figure. See docs/BENCHMARKS.md.
#
#   scripts/bench.sh                 # full run (3-7 minutes on 2 cores, depending on other load)
#   scripts/bench.sh --quick         # one round, target cases only (about 1 minute once built)
#   scripts/bench.sh --smoke         # a small generated image, one round, nothing judged (CI;
#                                    # seconds once built): checks that every step runs
#   scripts/bench.sh --update-docs   # also paste the results into docs/BENCHMARKS.md
#
# Environment: BENCH_ROUNDS (default 4), BENCH_MEGAPIXELS (default 12; "native" keeps the photo's
# size when it is at least 12 MP), BENCH_QUIET_WAIT (seconds to wait for idle CPUs before each
# round, default 30), PILLOW_VERSION (default 13.0.0). --smoke ignores the first three.
#
# Steps: system packages (scripts/setup.sh); the photo (Debian's mate-backgrounds, downloaded and
# cached in build/bench-data, never committed); a Python venv with Pillow and numpy
# (build/bench-venv); a Release build (build/release); rounds, each timing our engine (Google
# Benchmark, JSON) and then the peers on the same image and palettes; the quality figure; the
# report, printed and written to build/bench-results.md.
#
# --smoke: a 320x240 image generated with ImageMagick instead of the photo (nothing downloaded),
# every engine benchmark for a few milliseconds, the peers and the quality figure once, in
# build/bench-smoke-run; the report goes to build/bench-smoke-results.md and never into the docs.
# Its figures mean nothing; it fails when any step fails or any benchmark reports an error.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD
data=$root/build/bench-data
venv=$root/build/bench-venv
build=$root/build/release
run=$root/build/bench-run
megapixels=${BENCH_MEGAPIXELS:-12}
rounds=${BENCH_ROUNDS:-4}
quiet_wait=${BENCH_QUIET_WAIT:-30}
pillow_version=${PILLOW_VERSION:-13.0.0}
results=$root/build/bench-results.md
quick=0
smoke=0
update_docs=0
for arg in "$@"; do
  case $arg in
    --quick) quick=1; rounds=1 ;;
    --smoke) smoke=1 ;;
    --update-docs) update_docs=1 ;;
    -h | --help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "bench: unknown argument $arg" >&2; exit 2 ;;
  esac
done
if ((smoke)); then
  if ((update_docs || quick)); then
    echo "bench: --smoke goes alone: its figures mean nothing (no --update-docs) and it already" \
      "runs one short round (no --quick)" >&2
    exit 2
  fi
  run=$root/build/bench-smoke-run
  results=$root/build/bench-smoke-results.md
  rounds=1
fi
command_line="scripts/bench.sh${*:+ $*}"
for v in BENCH_ROUNDS BENCH_MEGAPIXELS BENCH_QUIET_WAIT PILLOW_VERSION; do
  [[ -n "${!v:-}" ]] && command_line="$v=${!v} $command_line"
done
step() { printf '\n== %s\n' "$*" >&2; }
SECONDS=0

step "system packages"
scripts/setup.sh

if ((smoke)); then
  step "a small test image (ImageMagick)"
  width=320 height=240
  rm -rf "$run"
  mkdir -p "$run"
  convert -seed 3 -size "${width}x${height}" plasma:fractal -alpha off -colorspace sRGB -depth 8 \
    "rgb:$run/photo.rgb"
  convert -size "${width}x${height}" -depth 8 "rgb:$run/photo.rgb" "$run/photo.ppm"
  bytes=$(stat -c %s "$run/photo.rgb")
  if ((bytes != width * height * 3)); then
    echo "bench: the test image is $bytes bytes, not ${width}x${height} RGB" >&2
    exit 1
  fi
  image_note="Smoke run: a ${width}x${height} image generated with ImageMagick (plasma:fractal), one round, each benchmark for a few milliseconds; the figures mean nothing."
else
  step "photo"
  mkdir -p "$data" "$run"
  read -r photos deb < <(scripts/bench/photos.sh "$data")
  # The largest JPEG or PNG by pixel count.
  largest=$(find "$photos" -type f \( -iname '*.jpg' -o -iname '*.jpeg' -o -iname '*.png' \) \
    -exec identify -ping -format '%w %h %i\n' {} \; 2>/dev/null | awk '{print $1 * $2, $0}' | sort -n | tail -1)
  read -r _ src_w src_h src <<<"$largest"
  [[ -n "${src:-}" ]] || { echo "bench: no photo found in $deb" >&2; exit 1; }
  # Target size: BENCH_MEGAPIXELS (at least 12 MP), aspect ratio kept, rounded up.
  read -r width height note < <(python3 - "$src_w" "$src_h" "$megapixels" <<'PY'
import math, sys
w, h, mp = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
floor = 12e6
if mp == "native":
    area = max(w * h, floor)
else:
    area = max(float(mp) * 1e6, floor)
if mp == "native" and w * h >= floor:
    print(w, h, "native size")
else:
    s = math.sqrt(area / (w * h))
    W, H = math.ceil(w * s), math.ceil(h * s)
    verb = "downscaled" if W < w else "UPSCALED"
    why = "" if W < w else " (no photo in the package has 12 MP)"
    print(W, H, f"{verb} from {w}x{h} ({w * h / 1e6:.1f} MP){why}")
PY
  )
  image_note="Photo: $(basename "$src") from Debian's mate-backgrounds ($(basename "$deb")), ${note}."
  echo "bench: $image_note -> ${width}x${height}" >&2
  [[ "$note" == UPSCALED* ]] && echo "bench: WARNING: the photo was upscaled to reach 12 MP" >&2
  stamp="$src $width $height"
  if [[ ! -f "$run/photo.stamp" || "$(cat "$run/photo.stamp")" != "$stamp" ||
        ! -f "$run/photo.rgb" || ! -f "$run/photo.ppm" ]]; then
    convert "$src" -auto-orient -alpha off -colorspace sRGB -resize "${width}x${height}!" \
      -depth 8 "rgb:$run/photo.rgb"
    convert -size "${width}x${height}" -depth 8 "rgb:$run/photo.rgb" "$run/photo.ppm"
    echo "$stamp" >"$run/photo.stamp"
  fi
fi

step "Python venv (Pillow $pillow_version, numpy)"
py=$(scripts/bench/venv.sh "$venv")

step "Release build"
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DDITHER_BUILD_BENCHMARKS=ON >/dev/null
ninja -C "$build" -j2 engine_benchmark bench_dither_file
cli=""
# (grep without -q: with -q it can stop reading early and pipefail then reports ninja's SIGPIPE)
if ninja -C "$build" -t targets all 2>/dev/null | grep '^dither:' >/dev/null; then
  if ninja -C "$build" -j2 dither >/dev/null 2>&1; then
    cli=$build/src/cli/dither
  elif ((smoke)); then
    echo "bench: the dither CLI does not build (ninja -C $build dither)" >&2
    exit 1
  else
    echo "bench: the dither CLI does not build; the quality figure uses bench_dither_file only" >&2
  fi
fi
"$build/bench/bench_dither_file" --print-palette levels:2 >"$run/palette-8.txt"
"$build/bench/bench_dither_file" --print-palette ega >"$run/palette-ega.txt"

filter='.'
pillow_repeat=3
min_time=() quality_args=() report_args=()
quiet_args=(--max-wait "$quiet_wait")
if ((quick)); then
  filter='^(floyd-steinberg/(levels:2|ega)/srgb|bayer/levels:2/srgb)/'
fi
if ((smoke)); then
  # Every benchmark, each for a few milliseconds (a bare number of seconds: what Debian 12's
  # Google Benchmark 1.7 reads; later versions read it too).
  min_time=(--benchmark_min_time=0.005)
  pillow_repeat=1
  quiet_args=(--max-wait 0 --interval 0.2)
  quality_args=(--strict)  # a failing `dither` CLI is an error, not a note
  report_args=(--smoke)    # no verdicts; a benchmark that reports an error fails the run
fi
rm -f "$run"/round-*
engine_args=() peers_args=() busy_list="" others_engine="" others_peers=""
for ((r = 1; r <= rounds; r++)); do
  step "round $r of $rounds: waiting up to ${quiet_args[1]}s for idle CPUs"
  busy=$(python3 scripts/bench/quiet.py wait --below 15 "${quiet_args[@]}")
  echo "bench: CPU busy ${busy}%" >&2
  busy_list+="${busy_list:+,}$busy"
  step "round $r of $rounds: our engine"
  DITHER_BENCH_RGB=$run/photo.rgb DITHER_BENCH_WIDTH=$width DITHER_BENCH_HEIGHT=$height \
    python3 scripts/bench/quiet.py run --record "$run/round-$r-engine.others" -- \
    "$build/bench/engine_benchmark" --benchmark_filter="$filter" "${min_time[@]}" \
    --benchmark_out="$run/round-$r-engine.json" --benchmark_out_format=json \
    --benchmark_counters_tabular=false
  step "round $r of $rounds: peers (Pillow, ImageMagick)"
  python3 scripts/bench/quiet.py run --record "$run/round-$r-peers.others" -- \
    "$py" scripts/bench/peers.py --ppm "$run/photo.ppm" --palette "8=$run/palette-8.txt" \
    --palette "ega=$run/palette-ega.txt" --workdir "$run" --repeat "$pillow_repeat" \
    --magick-repeat 1 --magick-warmup "$((r == 1))" --out "$run/round-$r-peers.json"
  engine_args+=(--engine "$run/round-$r-engine.json")
  peers_args+=(--peers "$run/round-$r-peers.json")
  others_engine+="${others_engine:+,}$(cat "$run/round-$r-engine.others")"
  others_peers+="${others_peers:+,}$(cat "$run/round-$r-peers.others")"
done

step "quality"
"$py" scripts/bench/quality.py --rgb "$run/photo.rgb" --width "$width" --height "$height" \
  --ditherer "$build/bench/bench_dither_file" ${cli:+--cli "$cli"} \
  --palette "levels:2=$run/palette-8.txt" --palette "ega=$run/palette-ega.txt" \
  --workdir "$run/quality" --out "$run/quality.md" --json "$run/quality.json" \
  "${quality_args[@]}" >/dev/null

step "report"
"$py" scripts/bench/report.py "${engine_args[@]}" "${peers_args[@]}" --busy "$busy_list" \
  --others-engine "$others_engine" --others-peers "$others_peers" \
  --quality "$run/quality.md" --image-note "$image_note" --command "$command_line" \
  --out "$results" --chart-json "$run/engine-chart.json" "${report_args[@]}"
# The engine chart: into the docs with --update-docs, else beside the run's outputs.
chart=$run/engine.svg
((update_docs)) && chart=$root/docs/img/engine.svg
"$py" scripts/bench/charts.py engine --json "$run/engine-chart.json" --out "$chart"

if ((update_docs)); then
  python3 scripts/bench/paste_docs.py bench-results "$root/docs/BENCHMARKS.md" "$results"
fi
echo "bench: results in ${results#"$root"/} (crops and outputs in $run) after ${SECONDS}s" >&2
