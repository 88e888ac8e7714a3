#!/usr/bin/env bash
# The abuse soak (issue 13, item 10; docs/BENCHMARKS.md, "Abuse soak"): a benchmark, not a timed
# test. On 127.0.0.1 only, for two phases of equal length, well-behaved clients upload, dither and
# read, first alone (baseline) and then while an abusive client floods previews, uploads past its
# quota, floods dither requests, holds many connections and sends slow bodies. Prints a table and
# exits non-zero when a goal is missed: the well-behaved clients' success rate at least 99%, their
# p99 latency within 2x of the baseline's, nothing accepted lost (every accepted upload and dither
# listed and FINISHED), and the abuser refused by every limit it tries. With --smoke the p99 ratio
# is reported but not judged (a p99 of ~200 requests is their third slowest: noise, not a figure).
#
#   scripts/soak.sh [--seconds N] [--smoke] [--update-docs] [path/to/ditherd]
#
#   --seconds N     length of each phase (default 60: two minutes of load, plus set-up and drain)
#   --smoke         short bounded run for CI: 11 s phases, about 35 s in all once built
#   --update-docs   paste the report into docs/BENCHMARKS.md (between the soak-bench markers)
#   path/to/ditherd the server (default build/release/src/app/ditherd, built when missing);
#                   dither-keys is taken from the same directory
#
# Environment: SOAK_FLOOD_RATE (the abuser's preview GETs a second, default 5000);
# SOAK_QUIET_WAIT (seconds to wait at most for idle CPUs before each phase, default 60, 15 with
# --smoke); SOAK_ATTACKS (for diagnosis: only these of the abuser's attacks, comma-separated, of
# previews,uploads,dithers,connections,slow_bodies; the goal on the abuser then covers only them).
#
# Uses a third-party load generator, vegeta v12.13.0, built with the machine's Go toolchain
# (`go install`) into build/tools/bin on first use; ImageMagick makes the test images (through
# scripts/setup.sh). Starts ditherd itself on a free loopback port with a temp data directory (a
# copy of the binaries, so a rebuild meanwhile does not matter), stops everything on exit (Ctrl-C
# included). Report: build/soak-results.md; raw figures, vegeta's logs and ditherd's log:
# build/soak-run/.
set -euo pipefail

caller_dir=$PWD
cd "$(dirname "$0")/.."
root=$PWD
seconds=60
smoke=0
update_docs=0
binary=""
while (($#)); do
  case $1 in
    --seconds)
      [[ ${2:-} =~ ^[0-9]+$ ]] && ((10#$2 >= 5 && 10#$2 <= 600)) ||
        { echo "soak: --seconds takes 5..600" >&2; exit 2; }
      seconds=$((10#$2))
      shift
      ;;
    --seconds=*) set -- --seconds "${1#--seconds=}" "${@:2}"; continue ;;
    --smoke) smoke=1 ;;
    --update-docs) update_docs=1 ;;
    -h | --help) sed -n '2,31p' "$0"; exit 0 ;;
    -*) echo "soak: unknown argument $1" >&2; exit 2 ;;
    /*) binary=$1 ;;
    *) binary=$caller_dir/$1 ;;
  esac
  shift
done
((smoke)) && seconds=11
command_line="scripts/soak.sh$( ((smoke)) && echo " --smoke" || echo " --seconds $seconds")"
((update_docs)) && command_line+=" --update-docs"
for v in SOAK_FLOOD_RATE SOAK_ATTACKS; do
  [[ -n "${!v:-}" ]] && command_line="$v=${!v} $command_line"
done
quiet_wait=${SOAK_QUIET_WAIT:-$( ((smoke)) && echo 15 || echo 60)}
step() { printf '\n== soak: %s\n' "$*" >&2; }
SECONDS=0

step "system packages (ImageMagick for the test images)"
scripts/setup.sh

if [[ -z $binary ]]; then
  binary=build/release/src/app/ditherd
  if [[ ! -x $binary || ! -x build/release/src/app/dither-keys ]]; then
    step "Release build of ditherd and dither-keys (missing)"
    DITHER_BUILD_JOBS=2 scripts/build.sh release ditherd dither-keys
  fi
fi
[[ -x $binary ]] || { echo "soak: $binary is not an executable" >&2; exit 2; }
keys=$(dirname "$binary")/dither-keys
[[ -x $keys ]] || keys=build/release/src/app/dither-keys
[[ -x $keys ]] || { echo "soak: no dither-keys next to $binary nor in build/release" >&2; exit 2; }

# The load generator: vegeta, pinned (scripts/bench/vegeta.sh).
vegeta=$(scripts/bench/vegeta.sh)
vegeta_version=$(sed 's/.*@//' "$(dirname "$vegeta")/.vegeta-module")  # its stamp

tmp=$(mktemp -d "${TMPDIR:-/tmp}/soak.XXXXXX")
pidfile=$tmp/pids
: >"$pidfile"
py_pid=""
cleanup() {
  # The Python side stops what it started; this is the backstop (Ctrl-C, a crash): only the
  # processes it recorded, and only while they are still ditherd or vegeta.
  if [[ -n $py_pid ]] && kill -0 "$py_pid" 2>/dev/null; then
    kill -TERM "$py_pid" 2>/dev/null || true
    wait "$py_pid" 2>/dev/null || true
  fi
  local stopped=() pid alive _
  while read -r pid; do
    [[ -n $pid ]] || continue
    if grep -qaE 'ditherd|vegeta' "/proc/$pid/cmdline" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      stopped+=("$pid")
    fi
  done <"$pidfile"
  # They are not our children: wait (up to 15 s) until they are gone before removing their files.
  for _ in $(seq 150); do
    alive=0
    for pid in "${stopped[@]}"; do
      kill -0 "$pid" 2>/dev/null && alive=1
    done
    ((alive)) || break
    sleep 0.1
  done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$tmp/bin"
cp "$binary" "$tmp/bin/ditherd"
cp "$keys" "$tmp/bin/dither-keys"

step "baseline ${seconds} s, then with the abuser ${seconds} s"
args=(--ditherd "$tmp/bin/ditherd" --keys "$tmp/bin/dither-keys" --vegeta "$vegeta"
      --workdir "$tmp" --out "$tmp/results.json" --pidfile "$pidfile" --seconds "$seconds"
      --quiet-wait "$quiet_wait")
((smoke)) && args+=(--smoke)
[[ -n "${SOAK_ATTACKS:-}" ]] && args+=(--attacks "$SOAK_ATTACKS")
status=0
python3 bench/soak/soak.py "${args[@]}" &
py_pid=$!
wait "$py_pid" || status=$?
py_pid=""

run=$root/build/soak-run
rm -rf "$run"
mkdir -p "$run"
cp "$tmp/ditherd/stdout.log" "$run/ditherd.stdout.log" 2>/dev/null || true
cp "$tmp/ditherd/stderr.log" "$run/ditherd.stderr.log" 2>/dev/null || true
cp "$tmp"/*.stderr "$tmp"/*.csv "$run/" 2>/dev/null || true
if [[ ! -f $tmp/results.json ]]; then
  echo "soak: no results (the soak failed before the end; logs in $run)" >&2
  exit "$((status ? status : 3))"
fi
cp "$tmp/results.json" "$run/results.json"

step "report"
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]]; then
  commit="commit $commit plus uncommitted changes in the work tree"
else
  commit="commit $commit"
fi
report_status=0
python3 bench/soak/report.py --results "$run/results.json" --command "$command_line" \
  --commit "$commit" --versions "vegeta $vegeta_version" \
  --out "$root/build/soak-results.md" || report_status=$?

if ((update_docs)); then
  python3 scripts/bench/paste_docs.py soak-bench "$root/docs/BENCHMARKS.md" "$root/build/soak-results.md"
fi
echo "soak: report in build/soak-results.md, raw figures and logs in $run, after ${SECONDS}s" >&2
if ((status || report_status)); then
  echo "soak: FAILED: a goal was missed (see the table above)" >&2
  exit 1
fi
echo "soak: every goal met" >&2
