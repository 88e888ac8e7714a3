#!/usr/bin/env bash
# The load generator of scripts/soak.sh and scripts/load.sh: vegeta, pinned, built from its Go
# module by the machine's Go toolchain into build/tools/bin once (remade when the pinned version
# changes). Prints the binary's path.
#
#   vegeta=$(scripts/bench/vegeta.sh)
set -euo pipefail
cd "$(dirname "$0")/../.."
vegeta_module=github.com/tsenart/vegeta/v12
vegeta_version=v12.13.0
tools=$PWD/build/tools/bin
vegeta=$tools/vegeta
stamp=$tools/.vegeta-module  # what the binary was built from
if [[ ! -x $vegeta || "$(cat "$stamp" 2>/dev/null)" != "$vegeta_module@$vegeta_version" ]]; then
  printf '\n== %s\n' "vegeta $vegeta_version (go install into build/tools/bin)" >&2
  if ! command -v go >/dev/null && [[ -x /usr/local/go/bin/go ]]; then
    PATH=$PATH:/usr/local/go/bin
  fi
  command -v go >/dev/null ||
    { echo "vegeta: the Go toolchain (go) is needed to build vegeta; it is not on PATH" >&2; exit 2; }
  mkdir -p "$tools"
  rm -f "$stamp"
  GOBIN=$tools GOTOOLCHAIN=local go install "$vegeta_module@$vegeta_version" >&2
  echo "$vegeta_module@$vegeta_version" >"$stamp"
fi
echo "$vegeta"
