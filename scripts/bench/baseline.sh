#!/usr/bin/env bash
# Builds TARGETS from COMMIT for a side-by-side baseline (scripts/bench_cli.sh,
# scripts/bench_services.sh): a worktree in build/bench-baseline-src (moved to COMMIT when it is
# elsewhere), a Release build without tests in build/bench-baseline. Prints COMMIT's short hash.
#
#   short=$(scripts/bench/baseline.sh d959dba dither)   # build/bench-baseline/src/cli/dither
set -euo pipefail
cd "$(dirname "$0")/../.."
commit=${1:?usage: baseline.sh COMMIT TARGET...}
shift
src=$PWD/build/bench-baseline-src
want=$(git rev-parse --verify "$commit^{commit}")
if [[ ! -d "$src" || "$(git -C "$src" rev-parse HEAD 2>/dev/null)" != "$want" ]]; then
  git worktree remove --force "$src" 2>/dev/null || rm -rf "$src"
  git worktree prune
  git worktree add --detach "$src" "$want" >/dev/null
fi
cmake -S "$src" -B build/bench-baseline -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DDITHER_BUILD_TESTS=OFF >/dev/null
ninja -C build/bench-baseline -j2 "$@" >/dev/null
git rev-parse --short "$want"
