#!/usr/bin/env bash
# Create .venv (if needed) and install spinlat with its test, peer and interop extras.
# Installs the CPU build of torch first so that no CUDA build is pulled in.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${SPINLAT_VENV:-.venv}"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
fi
stamp="$VENV/.spinlat-installed"
want="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    "$VENV/bin/python" -m pip install -q --upgrade pip
    "$VENV/bin/python" -m pip install -q "torch==2.13.0"
    "$VENV/bin/python" -m pip install -q -e ".[dev,peers,interop]"
    echo "$want" > "$stamp"
fi
# the reference magnetic MACE for the peers tests (only where ../shared/peers has its archive)
bash scripts/setup_maceref.sh
