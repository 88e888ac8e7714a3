#!/usr/bin/env bash
# Benchmarks the running services of ditherd, side by side in one run (docs/BENCHMARKS.md,
# "Services"): the gateway against the upload service called directly and against nginx as a
# reverse proxy (wrk, GET of one image record), and the time from upload to FINISHED of a 4 MP
# JPEG against the dither CLI on the same file, plus sustained images per minute.
#
#   scripts/bench_services.sh                 # full run: about 4-5 minutes on 2 cores once built
#   scripts/bench_services.sh --quick         # one round, short durations: about 1 minute
#   scripts/bench_services.sh --update-docs   # also paste the report into docs/BENCHMARKS.md
#
# Environment: BENCH_ROUNDS (wrk rounds, default 3; 1 with --quick), BENCH_QUIET_WAIT (seconds
# to wait for idle CPUs before each round, default 10), BENCH_BASELINE (the commit whose ditherd
# the sustained throughput is compared with, built in a worktree; default d959dba; none: skip;
# never in --quick runs).
#
# Steps: system packages (scripts/setup.sh: wrk, nginx-light, ImageMagick); a Release build of
# ditherd, api-gateway, dither-keys and dither; a temp directory with two ditherd instances
# (defaults, and GATEWAY_UPSTREAM=http), each on free ports of its own (gateway and all three
# services' ports, notification service included) with a service token of its own and an API key
# made with dither-keys before the load (docs/SECURITY.md: every request of the benchmark carries
# it, files are fetched through the answers' signed links); in front of the first one's upload
# service, two nginx (worker_processes auto and 1) whose whole configuration, pid file, logs and
# temp paths live there (they add X-Service-Token and X-Dither-Owner as the gateway does) and an
# api-gateway process (the distributed mode's gateway); the measurements (scripts/bench/services.py, Python standard library only);
# everything stopped on exit; the report (scripts/bench/services_report.py), printed and
# written to build/bench-services-results.md. Raw data: build/bench-services-run/results.json
# (no key or token in it: the kept nginx.conf includes its secret headers from a file that is
# removed with the temp directory).
set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD
run=$root/build/bench-services-run
quick=0
update_docs=0
for arg in "$@"; do
  case $arg in
    --quick) quick=1 ;;
    --update-docs) update_docs=1 ;;
    -h | --help) sed -n '2,26p' "$0"; exit 0 ;;
    *) echo "bench_services: unknown argument $arg" >&2; exit 2 ;;
  esac
done
command_line="scripts/bench_services.sh${*:+ $*}"
for v in BENCH_ROUNDS BENCH_QUIET_WAIT BENCH_BASELINE; do
  [[ -n "${!v:-}" ]] && command_line="$v=${!v} $command_line"
done
step() { printf '\n== %s\n' "$*" >&2; }
SECONDS=0

step "system packages"
scripts/setup.sh

step "Release build (ditherd, api-gateway, dither-keys, dither)"
scripts/build.sh release ditherd api-gateway dither-keys dither

# The baseline for the sustained throughput (not in --quick runs): ditherd and dither-keys built
# from BENCH_BASELINE (default d959dba, the commit before the "whole job fast" work) in a
# worktree (scripts/bench/baseline.sh); BENCH_BASELINE=none skips it.
baseline=${BENCH_BASELINE:-d959dba}
baseline_args=()
if ((quick == 0)) && [[ "$baseline" != none ]]; then
  step "baseline build ($baseline, in a worktree: ditherd, dither-keys)"
  short=$(scripts/bench/baseline.sh "$baseline" ditherd dither-keys)
  baseline_args=(--baseline-bin build/bench-baseline/src/app --baseline-name "ours at $short")
fi

mkdir -p "$root/build"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/bench-services.XXXXXX")
pidfile=$tmp/pids
: >"$pidfile"
py_pid=""
cleanup() {
  # The Python side stops what it started; this is the backstop (Ctrl-C, a crash): only the
  # processes it recorded, and only while they are still ditherd or nginx.
  if [[ -n $py_pid ]] && kill -0 "$py_pid" 2>/dev/null; then
    kill -TERM "$py_pid" 2>/dev/null || true
    wait "$py_pid" 2>/dev/null || true
  fi
  while read -r pid; do
    [[ -n $pid ]] || continue
    if grep -qaE 'ditherd|api-gateway|nginx' "/proc/$pid/cmdline" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
    fi
  done <"$pidfile"
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step "measurements"
# The nginx in front runs with `access_log off`: ditherd and api-gateway do too (ACCESS_LOG,
# docs/LOGGING.md), so that both sides write no line per request.
export ACCESS_LOG=off
args=(--ditherd build/release/src/app/ditherd --keys build/release/src/app/dither-keys
      --cli build/release/src/cli/dither
      --workdir "$tmp" --out "$tmp/results.json" --pidfile "$pidfile"
      --quiet-wait "${BENCH_QUIET_WAIT:-10}")
((quick)) && args+=(--quick)
[[ -n "${BENCH_ROUNDS:-}" ]] && args+=(--rounds "$BENCH_ROUNDS")
python3 scripts/bench/services.py "${args[@]}" "${baseline_args[@]}" &
py_pid=$!
wait "$py_pid"
py_pid=""
rm -rf "$run"
mkdir -p "$run"
cp "$tmp/results.json" "$run/results.json"
# Keep the generated nginx configuration and the ditherd logs next to the raw results.
cp "$tmp"/nginx-*/nginx.conf "$run/nginx.conf" 2>/dev/null || true
for d in ditherd ditherd-http ditherd-baseline api-gateway; do
  [[ -f $tmp/$d/stderr.log ]] && cp "$tmp/$d/stderr.log" "$run/$d.stderr.log"
done

step "report"
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]] ||
   [[ -n "$(git status --porcelain 2>/dev/null | grep '^??' | grep -v '^?? build/')" ]]; then
  commit="commit $commit plus uncommitted changes in the work tree"
else
  commit="commit $commit"
fi
wrk_version=$(wrk -v 2>&1 | head -1 | awk '{print $2}' || true)
nginx_version=$(nginx -v 2>&1 | sed 's|.*nginx/||' || true)
python3 scripts/bench/services_report.py --results "$run/results.json" \
  --command "$command_line" --commit "$commit" \
  --versions "wrk ${wrk_version:-?}, nginx ${nginx_version:-?}" \
  --out "$root/build/bench-services-results.md"
# The stage chart (matplotlib, the benchmarks' venv): into the docs with --update-docs, else beside
# the raw data (a quick run checks that it draws).
chart=$run/service-stages.svg
((update_docs)) && chart=$root/docs/img/service-stages.svg
py=$(scripts/bench/venv.sh "$root/build/bench-venv")
"$py" scripts/bench/charts.py service-stages --json "$run/results.json" --out "$chart"

if ((update_docs)); then
  python3 scripts/bench/paste_docs.py services-bench "$root/docs/BENCHMARKS.md" "$root/build/bench-services-results.md"
fi
echo "bench_services: report in build/bench-services-results.md, raw data in $run, after ${SECONDS}s" >&2
