#!/usr/bin/env bash
# The whole job on the command line, against Pillow and ImageMagick (and our own previous build),
# file in and file out, in one run. See docs/BENCHMARKS.md, "Command line, whole process".
#
#   scripts/bench_cli.sh                # the 17.9 MP photo, 5 rounds (3-6 minutes on 2 cores)
#   scripts/bench_cli.sh --smoke        # a tiny generated image, one round, nothing judged (CI)
#   scripts/bench_cli.sh --update-docs  # full run, then paste the report into docs/BENCHMARKS.md
#
# Environment: BENCH_ROUNDS (5), BENCH_QUIET_WAIT (seconds to wait for idle CPUs before each
# round, 30), PILLOW_VERSION (13.0.0), BENCH_BASELINE (the commit whose `dither` is timed beside
# ours, built in a worktree under build/; default d959dba, the last commit before the whole-job
# work of issue 14; "none" to skip).
set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD
run=$root/build/bench-cli-run
venv=$root/build/bench-venv
rounds=${BENCH_ROUNDS:-5}
quiet_wait=${BENCH_QUIET_WAIT:-30}
pillow_version=${PILLOW_VERSION:-13.0.0}
baseline=${BENCH_BASELINE:-d959dba}
smoke=0
update_docs=0
for arg in "$@"; do
  case $arg in
    --smoke) smoke=1 ;;
    --update-docs) update_docs=1 ;;
    -h | --help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "bench_cli: unknown argument $arg" >&2; exit 2 ;;
  esac
done
command_line="scripts/bench_cli.sh${*:+ $*}"
for v in BENCH_ROUNDS BENCH_QUIET_WAIT PILLOW_VERSION BENCH_BASELINE; do
  [[ -n "${!v:-}" ]] && command_line="$v=${!v} $command_line"
done
step() { printf '\n== %s\n' "$*" >&2; }
SECONDS=0

step "system packages"
scripts/setup.sh

rm -rf "$run"
mkdir -p "$run"
if ((smoke)); then
  step "a tiny test image (ImageMagick)"
  photo=$run/smoke.jpg
  convert -seed 3 -size 96x64 plasma:fractal "$photo"
  note="Smoke run: a 96x64 generated JPEG, one round; the figures mean nothing."
  baseline=none
else
  step "photo"
  read -r photos deb < <(scripts/bench/photos.sh "$root/build/bench-data")
  photo=$(find "$photos" -name 'Elephants_5640x3172.jpg' | head -1)
  [[ -n "$photo" ]] || { echo "bench_cli: no Elephants_5640x3172.jpg in $deb" >&2; exit 1; }
  note="Photo: $(basename "$photo") (5640x3172, 17.9 MP, $(stat -c %s "$photo") bytes) from $(basename "$deb")."
fi

step "Python venv (Pillow $pillow_version, numpy)"
py=$(scripts/bench/venv.sh "$venv")

step "Release build"
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
ninja -C build/release -j2 dither >/dev/null
baseline_args=()
if [[ "$baseline" != none ]]; then
  step "baseline build ($baseline, in a worktree)"
  short=$(scripts/bench/baseline.sh "$baseline" dither)
  baseline_args=(--baseline build/bench-baseline/src/cli/dither --baseline-name "ours at $short")
  note="$note Baseline: the same \`dither\` command built from $short."
fi

step "rounds"
args=(--photo "$photo" --ours build/release/src/cli/dither --pillow-python "$py"
      --run "$run" --out "$root/build/bench-cli-results.md" --rounds "$rounds"
      --quiet-wait "$quiet_wait" --command-line "$command_line" --note "$note"
      --stages-json "$run/stages.json")
((smoke)) && args+=(--smoke)
status=0
python3 scripts/bench/cli.py "${args[@]}" "${baseline_args[@]}" || status=$?
# The stage chart (matplotlib, in the venv): into the docs with --update-docs, else beside the
# run's outputs (a smoke run checks that it draws).
chart=$run/cli-stages.svg
((update_docs)) && chart=docs/img/cli-stages.svg
"$py" scripts/bench/charts.py cli-stages --json "$run/stages.json" --out "$chart"
if ((update_docs)); then
  python3 scripts/bench/paste_docs.py cli-bench docs/BENCHMARKS.md build/bench-cli-results.md
fi
echo "bench_cli: report in build/bench-cli-results.md, outputs in $run, after ${SECONDS}s" >&2
exit $status
