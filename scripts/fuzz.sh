#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/, docs/FUZZING.md) with Debian's clang in the sanitizer build
# (build/sanitize, which scripts/build.sh makes with clang), makes their seed corpora, and runs
# each target for a bounded time. Corpora are kept in build/fuzz/corpus/<target> (they grow from
# run to run); a crash leaves its reproducer in build/fuzz/crashes/<target>/ and fails the run.
#   scripts/fuzz.sh                      every target for 2 minutes
#   scripts/fuzz.sh --minutes N          every target for N minutes
#   scripts/fuzz.sh --target NAME        one target (multipart, http_request, options, messages,
#                                        decode, auth, mail); may be given more than once
#   scripts/fuzz.sh --smoke              every target for 20 seconds (what scripts/test.sh runs)
#   scripts/fuzz.sh --jobs N             targets run at once (default: the number of cores)
#   scripts/fuzz.sh --build-only         build the targets, run nothing (scripts/test.sh builds
#                                        them early, in the background)
# Replay a reproducer: build/sanitize/fuzz/fuzz_<target> build/fuzz/crashes/<target>/crash-...
set -euo pipefail
cd "$(dirname "$0")/.."

all_targets=(multipart http_request options messages decode auth mail)
seconds=120
jobs=$(nproc)
targets=()
build_only=0
while (($# > 0)); do
  case "$1" in
    --minutes)
      [[ ${2:-} =~ ^[0-9]+([.][0-9]+)?$ ]] || { echo "fuzz.sh: --minutes needs a number" >&2; exit 2; }
      seconds=$(awk -v m="$2" 'BEGIN { s = int(m * 60); print (s < 1 ? 1 : s) }')
      shift 2 ;;
    --smoke) seconds=20; shift ;;
    --build-only) build_only=1; shift ;;
    --target)
      [[ " ${all_targets[*]} " == *" ${2:-} "* ]] ||
        { echo "fuzz.sh: unknown target '${2:-}' (${all_targets[*]})" >&2; exit 2; }
      targets+=("$2"); shift 2 ;;
    --jobs)
      [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || { echo "fuzz.sh: --jobs needs a positive number" >&2; exit 2; }
      jobs=$2; shift 2 ;;
    *) echo "fuzz.sh: unknown argument '$1' (--minutes N, --target NAME, --smoke, --jobs N, --build-only)" >&2; exit 2 ;;
  esac
done
((${#targets[@]} > 0)) || targets=("${all_targets[@]}")

dir=build/fuzz  # seeds, corpora, crashes and logs; the programs are in $bin
bin=build/sanitize/fuzz
mkdir -p "$dir"
echo "== fuzz: building ${targets[*]} in build/sanitize"
if ! DITHER_BUILD_JOBS=${DITHER_BUILD_JOBS:-$(nproc)} scripts/build.sh sanitize fuzz_make_seeds \
  "${targets[@]/#/fuzz_}" >"$dir/build.log" 2>&1; then
  tail -n 60 "$dir/build.log" >&2
  echo "fuzz.sh: the build failed (all of it in $dir/build.log)" >&2
  exit 1
fi
((build_only)) && exit 0

# Sanitizer settings as in the Sanitize build's tests; glib/libvips process-lifetime caches are
# not leaks of ours (scripts/lsan.supp).
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1"
export LSAN_OPTIONS="suppressions=$PWD/scripts/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"

rm -rf "$dir/seeds"
ASAN_OPTIONS=detect_leaks=0 "$bin/fuzz_make_seeds" "$dir/seeds"

# Per target: extra libFuzzer flags.
extra_flags() {
  case "$1" in
    decode) echo "-max_len=65536 -timeout=30" ;;
    http_request | multipart) echo "-max_len=16384 -timeout=10" ;;
    *) echo "-max_len=4096 -timeout=10" ;;
  esac
}

run_target() {
  local t=$1 rc
  mkdir -p "$dir/corpus/$t" "$dir/crashes/$t" "$dir/logs"
  # shellcheck disable=SC2046
  "$bin/fuzz_$t" -max_total_time="$seconds" -print_final_stats=1 \
    -artifact_prefix="$dir/crashes/$t/" $(extra_flags "$t") \
    "$dir/corpus/$t" "$dir/seeds/$t" >"$dir/logs/$t.log" 2>&1 && rc=0 || rc=$?
  echo "$rc" >"$dir/logs/$t.rc"
}

rm -f "$dir"/logs/*.rc
echo "== fuzz: ${#targets[@]} targets, ${seconds} s each, ${jobs} at once (logs in $dir/logs)"
running=0
for t in "${targets[@]}"; do
  run_target "$t" &
  running=$((running + 1))
  if ((running >= jobs)); then
    wait -n || true
    running=$((running - 1))
  fi
done
wait

failed=0
printf '%-13s %10s %9s %7s %7s %8s  %s\n' target runs "exec/s" cov ft corpus result
for t in "${targets[@]}"; do
  log=$dir/logs/$t.log
  rc=$(cat "$dir/logs/$t.rc" 2>/dev/null || echo 1)
  runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | tail -1 | grep -oE '[0-9]+$' || true)
  speed=$(grep -oE 'stat::average_exec_per_sec: *[0-9]+' "$log" | tail -1 | grep -oE '[0-9]+$' || true)
  last=$(grep -E '^#[0-9]+.*cov: [0-9]+' "$log" | tail -1 || true)
  cov=$(grep -oE 'cov: [0-9]+' <<<"$last" | grep -oE '[0-9]+' || true)
  ft=$(grep -oE 'ft: [0-9]+' <<<"$last" | grep -oE '[0-9]+' || true)
  corpus=$(find "$dir/corpus/$t" -type f | wc -l)
  result=ok
  mapfile -t crashes < <(find "$dir/crashes/$t" -type f -newer "$dir/seeds" 2>/dev/null)
  if [[ $rc != 0 || ${#crashes[@]} -gt 0 ]]; then
    result="FAILED (exit $rc) ${crashes[*]:-see $log}"
    failed=1
  fi
  printf '%-13s %10s %9s %7s %7s %8s  %s\n' "$t" "${runs:--}" "${speed:--}" "${cov:--}" "${ft:--}" \
    "$corpus" "$result"
done
if ((failed)); then
  echo "fuzz: a target failed; its log is in $dir/logs/, the input that failed in $dir/crashes/." >&2
  echo "fuzz: replay with $bin/fuzz_<target> <file>" >&2
  exit 1
fi
echo "fuzz: no crash"
