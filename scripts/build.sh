#!/usr/bin/env bash
# Configures and builds one build type into build/<type>: release (default), sanitize or debug.
#   scripts/build.sh [release|sanitize|debug] [ninja targets...]
set -euo pipefail
cd "$(dirname "$0")/.."

kind=${1:-release}
shift || true
case "$kind" in
  release) type=Release ;;
  sanitize) type=Sanitize ;;
  debug) type=Debug ;;
  *) echo "build.sh: unknown build '$kind' (release, sanitize or debug)" >&2; exit 2 ;;
esac

dir=build/$kind
compiler=()
extra=()
if [[ $kind == sanitize ]]; then
  # The sanitizer build is made with clang and holds the libFuzzer targets too (fuzz/,
  # scripts/fuzz.sh): one instrumented build serves the tests and the fuzzers, and clang compiles
  # the instrumented engine in half GCC's time. It runs the tests only: no benchmarks.
  if ! command -v clang++ >/dev/null ||
    [[ -z "$(clang++ -print-file-name=libclang_rt.fuzzer-x86_64.a 2>/dev/null | grep /)" ]]; then
    scripts/setup.sh
  fi
  compiler=(CC=clang CXX=clang++)
  extra=(-DDITHER_FUZZ=ON -DDITHER_BUILD_BENCHMARKS=OFF)
  # A sanitizer build configured by an older script with GCC is made again from scratch.
  if [[ -f $dir/CMakeCache.txt ]] && ! grep -q '^CMAKE_CXX_COMPILER:.*clang' "$dir/CMakeCache.txt"; then
    rm -rf "$dir"
  fi
fi
if [[ ! -f $dir/build.ninja ]]; then
  env "${compiler[@]}" cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE="$type" "${extra[@]}" >/dev/null
fi
jobs=${DITHER_BUILD_JOBS:-$(nproc)}
ninja -C "$dir" -j "$jobs" "$@"
