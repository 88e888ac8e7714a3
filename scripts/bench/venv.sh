#!/usr/bin/env bash
# The benchmarks' Python venv with Pillow (PILLOW_VERSION, default 13.0.0), numpy and matplotlib
# (MATPLOTLIB_VERSION, default 3.11.2; the charts of docs/BENCHMARKS.md), made once in DIR (default
# build/bench-venv) and remade when a version differs. Prints its python.
#
#   py=$(scripts/bench/venv.sh build/bench-venv)
set -euo pipefail
venv=${1:-build/bench-venv}
pillow_version=${PILLOW_VERSION:-13.0.0}
matplotlib_version=${MATPLOTLIB_VERSION:-3.11.2}
if ! "$venv/bin/python" -c "import PIL, numpy, matplotlib, sys
sys.exit(PIL.__version__ != '$pillow_version' or matplotlib.__version__ != '$matplotlib_version')" \
  2>/dev/null; then
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install -q "pillow==$pillow_version" numpy "matplotlib==$matplotlib_version" >&2
fi
echo "$venv/bin/python"
