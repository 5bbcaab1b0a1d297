#!/usr/bin/env bash
# Install what the demo needs (once) and run it: a short bcc Fe spin-lattice run through the CLI
# that writes runs/demo/trajectory.h5, overview.png (energy, temperature, magnetisation) and a log.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
VENV="${SPINLAT_VENV:-.venv}"
export LD_LIBRARY_PATH="$PWD/$VENV/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export MPLBACKEND=Agg
exec "$VENV/bin/spinlat" run examples/demo_bccfe.yaml --output runs/demo "$@"
