#!/usr/bin/env bash
# Static checks: clang-format (must be clean) and clang-tidy (.clang-tidy at the root).
#   scripts/lint.sh            format check + clang-tidy
#   scripts/lint.sh --format   format check only (fast; part of scripts/test.sh)
set -euo pipefail
cd "$(dirname "$0")/.."

mapfile -t files < <(git ls-files 'src/*.cc' 'src/*.h' 'bench/*.cc' 'bench/*.h' 'fuzz/*.cc' 'fuzz/*.h')
if ! clang-format --dry-run --Werror "${files[@]}" 2>/tmp/dither-format.log; then
  echo "lint: these files need clang-format -i:" >&2
  grep -oE '^[^: ]+\.(cc|h):[0-9]+' /tmp/dither-format.log | cut -d: -f1 | sort -u >&2
  exit 1
fi
echo "lint: formatting clean (${#files[@]} files)"
[[ ${1:-} == --format ]] && exit 0

scripts/build.sh release >/dev/null
mapfile -t sources < <(git ls-files 'src/*.cc')
clang-tidy -p build/release --quiet --extra-arg=-Wno-unknown-warning-option "${sources[@]}"
echo "lint: clang-tidy clean"
