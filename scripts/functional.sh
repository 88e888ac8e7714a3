#!/usr/bin/env bash
# Runs the functional tests (tests/functional: Python, pytest) against a built ditherd. They
# start the real program themselves, on free ports with a fresh data directory per test, on two
# pytest-xdist workers per core (FUNCTIONAL_WORKERS sets the number; 0: one process).
#   scripts/functional.sh [path/to/ditherd] [pytest arguments...]
#   scripts/functional.sh --venv-only     only create/refresh the test virtualenv
set -euo pipefail
cd "$(dirname "$0")/.."

venv_only=0
if [[ ${1:-} == --venv-only ]]; then venv_only=1; shift; fi
binary=${1:-build/release/src/app/ditherd}
shift || true
venv=build/test-venv
stamp=$venv/.requirements
if [[ ! -x $venv/bin/python || ! -f $stamp ]] || ! cmp -s tests/functional/requirements.txt "$stamp"; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r tests/functional/requirements.txt
  cp tests/functional/requirements.txt "$stamp"
fi
((venv_only == 0)) || exit 0
# On pytest-xdist workers, two per core: most of a test's time is waiting for a server to start,
# answer or stop, and each test has its own server, data directory and ports (each worker draws
# ports from its own range, harness.free_ports). Tests are handed out one by one, except those of
# a module marked with an xdist_group (--dist loadgroup), which one worker runs. FUNCTIONAL_WORKERS=0
# runs them all in one process (as --pdb and -s need).
workers=${FUNCTIONAL_WORKERS:-$((2 * $(nproc)))}
DITHERD=$PWD/$binary exec "$venv/bin/python" -m pytest -q -n "$workers" --dist loadgroup \
  tests/functional "$@"
