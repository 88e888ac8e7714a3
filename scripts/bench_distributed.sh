#!/usr/bin/env bash
# Benchmarks distributed mode beside embedded mode, side by side in one run (docs/BENCHMARKS.md,
# "Distributed mode"): upload -> FINISHED latency of 1 MP and 4 MP JPEGs, alternating an embedded
# ditherd and the distributed stack (scripts/stack.sh); images per minute from 4 concurrent
# clients on each; and the stack with 1 dithering worker against 2 (how the work was split).
#
#   scripts/bench_distributed.sh                 # full run: about 4-6 minutes on 2 cores
#   scripts/bench_distributed.sh --quick         # fewer images, one round: about 2 minutes
#   scripts/bench_distributed.sh --smoke         # every step with 1-2 small uploads each, nothing
#                                                # judged (CI; about 45 s, mostly stack start/stop)
#   scripts/bench_distributed.sh --update-docs   # also paste the report into docs/BENCHMARKS.md
#
# Environment: BENCH_PORT_BASE (default 26000: the stack's gateway on +80, upload-service +81,
# workers +82/+83, notification-service +84, SMTP +25, S3 +70, Kafka +92/+93, PostgreSQL +432;
# ditherd +180..+183, its notification service's port included),
# BENCH_QUIET_WAIT (seconds to wait for idle CPUs before each measurement, default 10),
# DITHERD_BIN_DIR (the Release programs, default build/release/src/app; built with
# scripts/build.sh when one is missing).
#
# The stack's state lives in build/bench-distributed-stack while it runs (removed at the end); the
# report goes to build/bench-distributed-results.md, the raw figures and every process's log to
# build/bench-distributed-run/. Everything started is stopped on exit, Ctrl-C included.
#
# --smoke: the stack up, the keys, the warm-ups, latency (one 1 MP and one 0.25 MP upload per
# mode), throughput (2 uploads from 2 clients per mode), the scale step (2 workers, a restart with
# 1, the embedded ditherd) and the report, with no waits for idle CPUs; the report goes to
# build/bench-distributed-smoke-results.md (never into the docs), the rest to
# build/bench-distributed-smoke-run/. Its figures mean nothing; it fails when any step fails.
#
# Authentication (docs/SECURITY.md): before any load an API key is made for each mode with
# dither-keys (the stack's through `scripts/stack.sh key create`, the embedded ditherd's with its
# DITHER_DATA_DIR) and every request carries it; the stack's secrets are its own
# (<stack dir>/secrets.env, removed with the stack), the embedded ditherd gets its own service
# token. No key is written to the results or logs.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD
run=$root/build/bench-distributed-run
stack_dir=$root/build/bench-distributed-stack
bin_dir=${DITHERD_BIN_DIR:-$root/build/release/src/app}
port_base=${BENCH_PORT_BASE:-26000}
results=$root/build/bench-distributed-results.md
quick=0
smoke=0
update_docs=0
for arg in "$@"; do
  case $arg in
    --quick) quick=1 ;;
    --smoke) smoke=1 ;;
    --update-docs) update_docs=1 ;;
    -h | --help) sed -n '2,34p' "$0"; exit 0 ;;
    *) echo "bench_distributed: unknown argument $arg" >&2; exit 2 ;;
  esac
done
if ((smoke)); then
  if ((update_docs || quick)); then
    echo "bench_distributed: --smoke goes alone: its figures mean nothing (no --update-docs) and" \
      "it is already the shortest run (no --quick)" >&2
    exit 2
  fi
  run=$root/build/bench-distributed-smoke-run
  results=$root/build/bench-distributed-smoke-results.md
fi
command_line="scripts/bench_distributed.sh${*:+ $*}"
for v in BENCH_PORT_BASE BENCH_QUIET_WAIT; do
  [[ -n "${!v:-}" ]] && command_line="$v=${!v} $command_line"
done
step() { printf '\n== %s\n' "$*" >&2; }
SECONDS=0

programs=(ditherd api-gateway upload-service dithering-service notification-service dither-keys)
missing=0
for p in "${programs[@]}"; do [[ -x $bin_dir/$p ]] || missing=1; done
if ((missing)); then
  step "Release build (${programs[*]})"
  scripts/build.sh release "${programs[@]}"
  bin_dir=$root/build/release/src/app
fi
for tool in convert psql kcat java; do
  command -v "$tool" >/dev/null || {
    echo "bench_distributed: $tool is missing (scripts/setup.sh installs it)" >&2
    exit 1
  }
done

mkdir -p "$root/build"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/bench-distributed.XXXXXX")
pidfile=$tmp/pids
: >"$pidfile"
py_pid=""
stack_env() {
  env DITHER_STACK_DIR="$stack_dir" DITHER_STACK_NO_BUILD=1 DITHER_STACK_WORKERS=2 \
    DITHERD_BIN_DIR="$bin_dir" DITHER_PORT=$((port_base + 80)) \
    UPLOAD_SERVICE_PORT=$((port_base + 81)) DITHER_SERVICE_PORT=$((port_base + 82)) \
    POSTGRES_PORT=$((port_base + 432)) KAFKA_PORT=$((port_base + 92)) S3_PORT=$((port_base + 70)) \
    "$@"
}
cleanup() {
  trap '' INT TERM
  # The Python side stops what it started; this is the backstop (Ctrl-C, a crash): the processes
  # it recorded while they are still ours, then the stack (a no-op when it is already down).
  if [[ -n $py_pid ]] && kill -0 "$py_pid" 2>/dev/null; then
    kill -TERM "$py_pid" 2>/dev/null || true
    wait "$py_pid" 2>/dev/null || true
  fi
  while read -r pid; do
    [[ -n $pid ]] || continue
    ours='ditherd|api-gateway|upload-service|dithering-service|notification-service|psql'
    if grep -qaE "$ours" "/proc/$pid/cmdline" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
    fi
  done <"$pidfile"
  if [[ -d $stack_dir ]]; then
    stack_env scripts/stack.sh down >>"$stack_dir-script.log" 2>&1 || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step "measurements (stack and ditherd on ports from $port_base; bin dir $bin_dir)"
rm -f "$stack_dir-script.log"
args=(--bin-dir "$bin_dir" --workdir "$tmp" --stack-dir "$stack_dir" --out "$tmp/results.json"
      --pidfile "$pidfile" --port-base "$port_base" --quiet-wait "${BENCH_QUIET_WAIT:-10}")
((quick)) && args+=(--quick)
((smoke)) && args+=(--smoke)
python3 scripts/bench/distributed.py "${args[@]}" &
py_pid=$!
wait "$py_pid"
py_pid=""
rm -rf "$run"
mkdir -p "$run"
cp "$tmp/results.json" "$run/results.json"
cp "$tmp"/ditherd/stderr.log "$run/ditherd.stderr.log" 2>/dev/null || true
cp "$stack_dir"/*.log "$run/" 2>/dev/null || true
cp "$stack_dir-script.log" "$run/stack-script.log" 2>/dev/null || true
# The stack's data (hundreds of MB of Kafka log, database and bucket) are not kept.
stack_env scripts/stack.sh down >>"$stack_dir-script.log" 2>&1 && rm -rf "$stack_dir"

step "report"
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]] ||
   [[ -n "$(git status --porcelain 2>/dev/null | grep '^??' | grep -v '^?? build/')" ]]; then
  commit="commit $commit plus uncommitted changes in the work tree"
else
  commit="commit $commit"
fi
pg_version=$(ls /usr/lib/postgresql/*/bin/postgres 2>/dev/null | sort -V | tail -1)
pg_version=$([[ -n $pg_version ]] && "$pg_version" --version | awk '{print $3}' || echo "?")
kafka_version=$(sed -n 's/^VERSION=//p' scripts/infra/kafka.sh)
s3_version=$(sed -n 's/^VERSION=//p' scripts/infra/s3.sh)
python3 scripts/bench/distributed_report.py --results "$run/results.json" \
  --command "$command_line" --commit "$commit" \
  --versions "PostgreSQL $pg_version, Kafka $kafka_version, versitygw $s3_version" \
  --out "$results"

if ((update_docs)); then
  python3 scripts/bench/paste_docs.py distributed-bench "$root/docs/BENCHMARKS.md" "$results"
fi
echo "bench_distributed: report in ${results#"$root"/}, raw data and logs in $run, after ${SECONDS}s" >&2
