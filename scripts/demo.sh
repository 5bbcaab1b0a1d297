#!/usr/bin/env bash
# Install what the demo needs (once) and run it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
VENV="${SPINLAT_VENV:-.venv}"
export LD_LIBRARY_PATH="$PWD/$VENV/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export MPLBACKEND=Agg
exec "$VENV/bin/python" examples/demo.py "$@"
