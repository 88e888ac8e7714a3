#!/usr/bin/env bash
# Runs the distributed-mode tests (tests/distributed: pytest) against built programs: they bring
# up PostgreSQL, Kafka, versitygw and one process per service with scripts/stack.sh on ports of
# their own (30000 and up, below the ephemeral port range), and bring everything down at the end.
#   scripts/distributed.sh [bin dir, default build/release/src/app] [pytest arguments...]
set -euo pipefail
cd "$(dirname "$0")/.."

bin_dir=${1:-build/release/src/app}
shift || true
scripts/functional.sh --venv-only
DITHERD_BIN_DIR=$PWD/$bin_dir exec build/test-venv/bin/python -m pytest -q tests/distributed "$@"
