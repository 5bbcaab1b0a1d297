#!/usr/bin/env bash
# Install what the tests need (once) and run the whole test suite, peers and slow tests included.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
VENV="${SPINLAT_VENV:-.venv}"
export LD_LIBRARY_PATH="$PWD/$VENV/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export MPLBACKEND=Agg
exec "$VENV/bin/python" -m pytest -q "$@"
