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
# The sanitizer build runs the tests only (scripts/test.sh): the benchmarks are left out of it.
extra=()
[[ $kind == sanitize ]] && extra=(-DDITHER_BUILD_BENCHMARKS=OFF)
if [[ ! -f $dir/build.ninja ]]; then
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE="$type" "${extra[@]}" >/dev/null
fi
jobs=${DITHER_BUILD_JOBS:-$(nproc)}
ninja -C "$dir" -j "$jobs" "$@"
