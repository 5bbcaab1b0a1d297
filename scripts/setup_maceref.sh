#!/usr/bin/env bash
# Create .venv-maceref: the reference magnetic MACE (mace-torch pull request 1244) for the peers
# tests, from the archive in ../shared/peers (or $SPINLAT_SHARED/peers). Skipped when the archive
# is not there; idempotent and cheap once installed (a stamp holds the archive's checksum).
# The reference needs sphericart-torch (its moment harmonics) without declaring it: installed here.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED="${SPINLAT_SHARED:-../shared}"
ARCHIVE="$SHARED/peers/mace-magnetic-pr1244.tar.gz"
VENV="${SPINLAT_MACEREF_VENV:-.venv-maceref}"
PY="${PYTHON:-python3}"
if [ ! -f "$ARCHIVE" ]; then
    echo "setup_maceref: no $ARCHIVE, reference environment skipped"
    exit 0
fi
stamp="$VENV/.maceref-installed"
want="$(sha256sum "$ARCHIVE" | cut -c1-16)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    exit 0
fi
if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q "torch==2.13.0"
"$VENV/bin/python" -m pip install -q "$ARCHIVE" sphericart-torch
echo "$want" > "$stamp"
