#!/usr/bin/env bash
# Sets up, builds and starts the whole system in one process on its embedded defaults: the API
# gateway on http://127.0.0.1:8080 (the upload and dithering services on loopback ports 8081 and
# 8082), SQLite databases and stored files under ./data, the in-process message bus. Open the
# address in a browser and upload a photo. Ctrl-C stops it; everything accepted is kept in ./data
# and resumed at the next start.
#   scripts/run.sh                          start the system (environment variables: README.md)
#   DITHER_PORT=9000 scripts/run.sh         ... on another port
#   scripts/run.sh dither IN OUT [options]  run the command-line tool instead
#   scripts/run.sh keys create --name me    an API key for curl and programs (docs/SECURITY.md);
#                                           `keys list`, `keys revoke ID`; same DITHER_DATA_DIR
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
if [[ ${1:-} == dither ]]; then
  shift
  scripts/build.sh release dither >/dev/null
  exec build/release/src/cli/dither "$@"
fi
if [[ ${1:-} == keys ]]; then
  shift
  scripts/build.sh release dither-keys >/dev/null
  exec build/release/src/app/dither-keys "$@"
fi
scripts/build.sh release ditherd dither-keys >/dev/null
exec build/release/src/app/ditherd
