#!/usr/bin/env bash
# mMACE on a GPU, one prepared run within a 10-minute budget: atoms/s of energy + forces + magnetic
# forces at 1 000 – 100 000 atoms (bcc Fe, float32), one system and N/128 replicas of 128 atoms
# (compute_many batched and compute one by one), against the reference magnetic MACE (mace-torch
# pull request 1244) and mace-torch's plain ScaleShiftMACE with the same hyperparameters on the
# same GPU, printing the ratios; before that, the K × n replica table (bench_mmace_batched.py's
# replicas section) on the GPU. Installs nothing.
#
#   benchmarks/gpu_mmace.sh                          # a machine with a CUDA GPU
#   benchmarks/gpu_mmace.sh --device cpu --quick     # checks this script without a GPU (2-15 minutes)
#
# Needs in the Python that runs it ($PYTHON, default python3): a CUDA build of torch and spinlat's
# dependencies (pyproject.toml: numpy, numba, ase, e3nn, mace-torch, safetensors, h5py, ...),
# with this checkout importable (PYTHONPATH is set to it here). The reference is measured when a
# Python that has it is found: $SPINLAT_MACEREF_PYTHON, else .venv-maceref/bin/python
# (scripts/setup_maceref.sh; its torch must see the GPU too); otherwise its rows say "not measured".
# Output on stdout, and in $OUT/gpu_mmace.log when $OUT is set (the device tool's result folder).
set -uo pipefail
cd "$(dirname "$0")/.."
DEVICE=cuda
QUICK=
while [ $# -gt 0 ]; do
    case "$1" in
        --device) DEVICE="$2"; shift 2 ;;
        --quick) QUICK=--quick; shift ;;
        *) echo "gpu_mmace.sh: unknown argument $1 (use --device cuda|cpu, --quick)" >&2; exit 2 ;;
    esac
done
PY="${PYTHON:-python3}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 MPLBACKEND=Agg
if [ -n "${OUT:-}" ] && [ -d "$OUT" ]; then
    exec > >(tee -a "$OUT/gpu_mmace.log") 2>&1
fi
echo "== gpu_mmace.sh: device $DEVICE ${QUICK:+(quick)}, $(date -u +%FT%TZ), $(git rev-parse --short HEAD 2>/dev/null || echo '?') =="
missing=$("$PY" - <<'EOF'
import importlib
names = ["torch", "numpy", "numba", "ase", "e3nn", "mace", "safetensors", "spinlat"]
bad = []
for n in names:
    try:
        importlib.import_module(n)
    except Exception as exc:  # noqa: BLE001
        bad.append(f"{n} ({type(exc).__name__})")
print(", ".join(bad))
EOF
)
if [ -n "$missing" ]; then
    echo "gpu_mmace.sh: $PY lacks: $missing -- nothing measured (this script installs nothing)"
    exit 3
fi
if [ "$DEVICE" = cuda ]; then
    "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" || {
        echo "gpu_mmace.sh: torch sees no CUDA GPU; run with --device cpu --quick to check the script"; exit 4; }
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
fi
REF="${SPINLAT_MACEREF_PYTHON:-.venv-maceref/bin/python}"
REF_ARGS=()
if [ -x "$REF" ]; then
    REF_ARGS=(--reference-python "$REF")
    if [ "$DEVICE" = cuda ] && ! env -u PYTHONPATH "$REF" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
        echo "reference: $REF has no CUDA torch (scripts/setup_maceref.sh installs the CPU wheel): its rows will be errors"
    fi
fi

if [ -z "${REF_ARGS[*]:-}" ]; then
    echo "reference: no Python with the reference magnetic MACE ($REF): its rows are not measured"
fi

BENCH=benchmarks/bench_mmace_batched.py
if [ -n "$QUICK" ]; then
    # the same two runs, grids shrunk to seconds of compute (minutes on a loaded 2-core machine,
    # most of them imports and model builds)
    timeout 300 "$PY" $BENCH --device "$DEVICE" --section replicas --quick --budget-s 100
    rc1=$?
    timeout 660 "$PY" $BENCH --device "$DEVICE" --section large --quick --budget-s 600 ${REF_ARGS[@]+"${REF_ARGS[@]}"}
    rc2=$?
else
    # 10 minutes in all: ~2.5 for the replica table, ~6 for the large systems (ours and plain MACE
    # first, the reference with the time left), the rest for imports and model builds
    timeout 170 "$PY" $BENCH --device "$DEVICE" --section replicas --models standard small \
        --atoms 16 128 --counts 1 8 32 128 --max-atoms 16384 --repeats 3 --budget-s 140
    rc1=$?
    timeout 390 "$PY" $BENCH --device "$DEVICE" --section large --sizes 1000 10000 100000 \
        --replica-atoms 128 --repeats 3 --budget-s 350 ${REF_ARGS[@]+"${REF_ARGS[@]}"}
    rc2=$?
fi
echo "== gpu_mmace.sh done: replicas exit $rc1, large exit $rc2 (124: stopped at its time limit) =="
[ "$rc1" -eq 0 ] && [ "$rc2" -eq 0 ]
