#!/usr/bin/env bash
# The load test (issue 14, item 6; docs/BENCHMARKS.md, "Load test"): a benchmark, not a timed
# test. On 127.0.0.1 only, a third-party load generator (vegeta) uploads generated 1 MP JPEGs to
# POST /api/images at a steady rate near the machine's capacity, each dithered automatically,
# first to an embedded ditherd, then to the distributed stack (scripts/stack.sh) with two
# dithering-service workers. Then it checks that every accepted upload is FINISHED with exactly
# one automatic dither and that nothing is duplicated, and reports latency p50/p99 per 10 s and
# the RSS of every process of the mode over time. Exits non-zero when a goal is missed: every
# upload accepted and vegeta's rate kept, every accepted upload FINISHED, no duplicates, every
# process up to the end, and (not with --smoke) no process's RSS more than 10 % higher over the
# last 30 % of the run than right after warm-up (20 %-50 %; the first 20 % is warm-up). Bounded in
# time: at most 2 x LOAD_DURATION + 15 minutes per mode, then everything is stopped.
#
#   scripts/load.sh                 # full run: 5 minutes per mode, about 12-14 minutes in all
#   scripts/load.sh --smoke         # 8 s per mode at 2 uploads/s, about a minute: for CI;
#                                   # judges correctness only (memory and latency are reported)
#   scripts/load.sh --update-docs   # also paste the report into docs/BENCHMARKS.md ("Load test")
#                                   # and draw docs/img/load-<mode>.svg (matplotlib, build/bench-venv)
#
# Environment: LOAD_DURATION (seconds of load per mode, 5..1800; default 300, 8 with --smoke);
# LOAD_RATE (uploads a second, both modes; default: 80 % of the capacity a short probe measures on
# each mode just before its run, 2 with --smoke); LOAD_MODES (embedded,distributed: both, in that
# order); LOAD_QUIET_WAIT (seconds to wait at most for idle CPUs before the probe and the attack,
# default 10, 3 with --smoke); LOAD_CHARTS=1 (draw the charts into build/load-run without
# --update-docs); BENCH_PORT_BASE (default 28000: the stack's gateway +80, upload-service +81,
# workers +82/+83, notification-service +84, SMTP +25, S3 +70, Kafka +92/+93, PostgreSQL +432;
# ditherd +180..+183. Not 27000: the S3 server's default port is 27070, nor bench_distributed.sh's
# 26000, nor the tests' 30000); DITHERD_BIN_DIR (the Release programs, default
# build/release/src/app; built with scripts/build.sh when one is missing).
#
# vegeta v12.13.0 is built with the machine's Go toolchain (`go install`) into build/tools/bin on
# first use (shared with scripts/soak.sh). The programs are copied to a temp dir first (a rebuild
# meanwhile does not matter). The stack's state lives in build/load-stack while it runs (removed at
# the end). Report: build/load-results.md; raw figures, vegeta's results (CSV) and every process's
# log: build/load-run/. Everything started is stopped on exit, Ctrl-C included. API keys are made
# with dither-keys and live only in the temp dir (vegeta's targets file); none is written to the
# results or logs.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD
smoke=0
update_docs=0
for arg in "$@"; do
  case $arg in
    --smoke) smoke=1 ;;
    --update-docs) update_docs=1 ;;
    -h | --help) sed -n '2,/^set -euo/{/^#/p}' "$0"; exit 0 ;;
    *) echo "load: unknown argument $arg" >&2; exit 2 ;;
  esac
done
duration=${LOAD_DURATION:-$( ((smoke)) && echo 8 || echo 300)}
[[ $duration =~ ^[0-9]+$ ]] && ((10#$duration >= 5 && 10#$duration <= 1800)) ||
  { echo "load: LOAD_DURATION takes whole seconds, 5..1800 (got '$duration')" >&2; exit 2; }
duration=$((10#$duration))
rate=${LOAD_RATE:-}
if [[ -n $rate ]]; then
  [[ $rate =~ ^[0-9]+([.][0-9]+)?$ ]] && python3 -c "import sys; sys.exit(not 0 < float('$rate') <= 1000)" ||
    { echo "load: LOAD_RATE takes uploads a second, 0 < R <= 1000 (got '$rate')" >&2; exit 2; }
fi
modes=${LOAD_MODES:-embedded,distributed}
[[ $modes =~ ^(embedded|distributed)(,(embedded|distributed))?$ ]] ||
  { echo "load: LOAD_MODES takes embedded and/or distributed, comma-separated" >&2; exit 2; }
port_base=${BENCH_PORT_BASE:-28000}
[[ $port_base =~ ^[0-9]+$ ]] && ((port_base >= 1024 && port_base <= 65000)) ||
  { echo "load: BENCH_PORT_BASE takes 1024..65000" >&2; exit 2; }
quiet_wait=${LOAD_QUIET_WAIT:-$( ((smoke)) && echo 3 || echo 10)}
charts=$( ((update_docs)) || [[ ${LOAD_CHARTS:-0} == 1 ]] && echo 1 || echo 0)
command_line="scripts/load.sh${*:+ $*}"
for v in LOAD_DURATION LOAD_RATE LOAD_MODES BENCH_PORT_BASE; do
  [[ -n "${!v:-}" ]] && command_line="$v=${!v} $command_line"
done
step() { printf '\n== load: %s\n' "$*" >&2; }
SECONDS=0

step "system packages (ImageMagick, psql, Java for Kafka)"
scripts/setup.sh

bin_dir=${DITHERD_BIN_DIR:-$root/build/release/src/app}
programs=(ditherd api-gateway upload-service dithering-service notification-service dither-keys)
missing=0
for p in "${programs[@]}"; do [[ -x $bin_dir/$p ]] || missing=1; done
if ((missing)); then
  step "Release build (${programs[*]})"
  DITHER_BUILD_JOBS=${DITHER_BUILD_JOBS:-2} scripts/build.sh release "${programs[@]}"
  bin_dir=$root/build/release/src/app
fi

# The load generator: vegeta, pinned (scripts/bench/vegeta.sh).
vegeta=$(scripts/bench/vegeta.sh)
vegeta_version=$(sed 's/.*@//' "$(dirname "$vegeta")/.vegeta-module")  # its stamp

# The charts' Python: the benchmarks' venv (scripts/bench/venv.sh: Pillow, numpy, matplotlib).
chart_py=""
if ((charts)); then
  step "the benchmarks' Python venv (matplotlib, for the charts)"
  chart_py=$(scripts/bench/venv.sh "$root/build/bench-venv")
fi

mkdir -p "$root/build"
stack_dir=$root/build/load-stack
run=$root/build/load-run
tmp=$(mktemp -d "${TMPDIR:-/tmp}/load.XXXXXX")
pidfile=$tmp/pids
: >"$pidfile"
py_pid=""
stack_env() {
  env DITHER_STACK_DIR="$stack_dir" DITHER_STACK_NO_BUILD=1 DITHER_STACK_WORKERS=2 \
    DITHERD_BIN_DIR="$tmp/bin" DITHER_PORT=$((port_base + 80)) \
    UPLOAD_SERVICE_PORT=$((port_base + 81)) DITHER_SERVICE_PORT=$((port_base + 82)) \
    NOTIFY_SERVICE_PORT=$((port_base + 84)) SMTP_PORT=$((port_base + 25)) \
    POSTGRES_PORT=$((port_base + 432)) KAFKA_PORT=$((port_base + 92)) S3_PORT=$((port_base + 70)) \
    "$@"
}
cleanup() {
  trap '' INT TERM
  # The Python side stops what it started; this is the backstop (Ctrl-C, a crash, the time
  # bound): the processes it recorded while they are still ours, then the stack (a no-op when it
  # is already down).
  if [[ -n $py_pid ]] && kill -0 "$py_pid" 2>/dev/null; then
    kill -TERM "$py_pid" 2>/dev/null || true
    wait "$py_pid" 2>/dev/null || true
  fi
  local stopped=() pid alive _
  while read -r pid; do
    [[ -n $pid ]] || continue
    ours='ditherd|api-gateway|upload-service|dithering-service|notification-service|psql|vegeta'
    if grep -qaE "$ours" "/proc/$pid/cmdline" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      stopped+=("$pid")
    fi
  done <"$pidfile"
  mkdir -p "$run"
  if [[ -f $stack_dir-script.log ]]; then # what the Python side ran: scripts/stack.sh up, key, down
    cat "$stack_dir-script.log" >>"$run/stack-script.log" && rm -f "$stack_dir-script.log"
  fi
  if [[ -d $stack_dir ]]; then
    stack_env scripts/stack.sh down >>"$run/stack-script.log" 2>&1 || true
    rm -rf "$stack_dir"
  fi
  # Not our children: wait (up to 15 s) until they are gone before removing their files.
  for _ in $(seq 150); do
    alive=0
    for pid in "${stopped[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    ((alive)) || break
    sleep 0.1
  done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$tmp/bin"
for p in "${programs[@]}"; do cp "$bin_dir/$p" "$tmp/bin/$p"; done

rm -rf "$run" "$stack_dir-script.log"
mkdir -p "$run"
n_modes=$(tr ',' '\n' <<<"$modes" | wc -l)
bound=$((n_modes * (2 * duration + 900)))
step "$modes: ${duration} s each (ports from $port_base; at most ${bound} s in all)"
args=(--bin-dir "$tmp/bin" --vegeta "$vegeta" --workdir "$tmp/work" --stack-dir "$stack_dir"
      --keep-dir "$run" --out "$tmp/results.json" --pidfile "$pidfile" --modes "$modes"
      --duration "$duration" --port-base "$port_base" --quiet-wait "$quiet_wait")
((smoke)) && args+=(--smoke)
[[ -n $rate ]] && args+=(--rate "$rate")
status=0
timeout -s TERM -k 30 "$bound" python3 scripts/bench/load.py "${args[@]}" &
py_pid=$!
wait "$py_pid" || status=$?
py_pid=""
((status == 124)) && echo "load: stopped after ${bound} s (the time bound)" >&2
if [[ ! -f $tmp/results.json ]]; then
  echo "load: no results (the run failed before the end; logs in $run)" >&2
  exit "$((status ? status : 3))"
fi
cp "$tmp/results.json" "$run/results.json"
cp "$tmp/work"/*.vegeta.stderr "$run/" 2>/dev/null || true

step "report"
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]]; then
  commit="commit $commit plus uncommitted changes in the work tree"
else
  commit="commit $commit"
fi
versions="vegeta $vegeta_version"
if [[ $modes == *distributed* ]]; then
  pg_version=$(ls /usr/lib/postgresql/*/bin/postgres 2>/dev/null | sort -V | tail -1)
  pg_version=$([[ -n $pg_version ]] && "$pg_version" --version | awk '{print $3}' || echo "?")
  versions+=", PostgreSQL $pg_version, Kafka $(sed -n 's/^VERSION=//p' scripts/infra/kafka.sh)"
  versions+=", versitygw $(sed -n 's/^VERSION=//p' scripts/infra/s3.sh)"
fi
report_args=(--results "$run/results.json" --command "$command_line" --commit "$commit"
             --versions "$versions" --out "$root/build/load-results.md")
if [[ -n $chart_py ]]; then
  "$chart_py" scripts/bench/load_chart.py --results "$run/results.json" --out-dir "$run"
  if ((update_docs)); then
    mkdir -p docs/img
    for svg in "$run"/load-*.svg; do [[ -e $svg ]] && cp "$svg" docs/img/; done
    report_args+=(--charts-dir img)
  fi
fi
report_status=0
python3 scripts/bench/load_report.py "${report_args[@]}" || report_status=$?

if ((update_docs)); then
  python3 scripts/bench/paste_docs.py load-test "$root/docs/BENCHMARKS.md" "$root/build/load-results.md"
fi
echo "load: report in build/load-results.md, raw figures and logs in $run, after ${SECONDS}s" >&2
if ((status || report_status)); then
  echo "load: FAILED: a goal was missed or a mode did not run to its end (see above)" >&2
  exit 1
fi
echo "load: every judged goal met" >&2
