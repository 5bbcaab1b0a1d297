"""Memory per atom, component by component: what a single point and an NVE run hold.

System as ``bench_scaling.py`` (bcc Fe, EAM(Fe_mm.eam.fs) + Bethe-Slater exchange + Zeeman 1 T,
random spins, 100 K, dt = 0.1 fs). For each size, in a fresh process: the tracemalloc peak of all
NumPy/Python allocations from building the State to the end (the figure ``bench_scaling.py
--memory`` prints), what is still held at the end, and the bytes of the NumPy arrays each part
holds, found by walking its attributes (each buffer counted once, for the first part that
reaches it, in this order):

- ``neighbour list``: the potential's :class:`~spinlat.neighbors.NeighborList` (partners, shift
  indices, offsets, half-list starts, reference positions);
- ``EAM``: its half-list index (reverse map) and work arrays (per-pair densities, φ and
  derivative cache; none with ``--low-memory``, nor by default from 8 192 atoms:
  ``low_memory="auto"``; ``--tabled`` keeps them);
- ``exchange``: the compact spin pair list (partners, shifts, reverse entries, couplings);
- ``integrator``: colour classes, field engine (merged couplings), last evaluation;
- ``state``: the input and the returned State.

``--transients``: what the peak is made of above what stays held. Every pass of the run is
wrapped (neighbour-list check and build, field-engine update, the sum's and each term's
evaluation, the integrator's sweeps, evaluations, initial forces and returned State); a pass's
transient is the tracemalloc peak during the pass minus the memory traced when it began
(inclusive of the passes inside it, largest over its calls), printed in bytes per atom with the
number of calls, largest first. The run's peak is what was held when the largest pass began
plus that pass's transient.

Usage: python benchmarks/bench_memory_breakdown.py [--sizes 16000,128000] [--low-memory | --tabled] [--mode nve|single]
       [--transients]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, sys, tracemalloc
sys.path.insert(0, sys.argv[1])
import numpy as np
import bench_nve_lammps as base
from bench_memory_breakdown import held_by_part
from spinlat.integrators import SpinLatticeNVE

cells, mode, eam = tuple(json.loads(sys.argv[2])), sys.argv[3], json.loads(sys.argv[4])
TRANSIENTS = sys.argv[5] == "1"
def potential():
    return base.potential("auto" if eam is None else eam)
for warm in (base.build_state((3, 3, 3)), base.build_state((16, 16, 16))):  # serial and threaded kernels
    SpinLatticeNVE(base.DT).run(warm, potential(), 2)
    potential().compute(warm, forces=True, magnetic_forces=True)
del warm
transients = {}
if TRANSIENTS:
    import spinlat.integrators.fields as fields_mod
    import spinlat.integrators.spin_lattice as sl_mod
    import spinlat.neighbors as nb_mod
    import spinlat.potentials.base as base_mod
    import spinlat.potentials.eam as eam_mod
    import spinlat.potentials.exchange as ex_mod
    import spinlat.potentials.single_site as ss_mod
    stack = [["run", 0]]

    def wrapped(name, f):
        def g(*a, **k):
            cur0, pk = tracemalloc.get_traced_memory()
            stack[-1][1] = max(stack[-1][1], pk)
            tracemalloc.reset_peak()
            stack.append([name, cur0])
            try:
                return f(*a, **k)
            finally:
                pk1 = tracemalloc.get_traced_memory()[1]
                nm, mx = stack.pop()
                mx = max(mx, pk1)
                old = transients.get(nm, (0, 0, 0))
                transients[nm] = (max(old[0], mx - cur0), old[1] + 1, cur0 if mx - cur0 >= old[0] else old[2])
                stack[-1][1] = max(stack[-1][1], mx)
                tracemalloc.reset_peak()
        return g

    for cls, meth, label in [(nb_mod.NeighborList, "needs_rebuild", "neighbour list: check"),
                             (nb_mod.NeighborList, "build", "neighbour list: build"),
                             (fields_mod.SpinFieldEngine, "update", "field engine: update"),
                             (base_mod.SumPotential, "_evaluate", "sum: evaluate (terms + accumulate)"),
                             (eam_mod.EAM, "_evaluate", "EAM: evaluate"),
                             (ex_mod.BetheSlaterExchange, "_evaluate", "exchange: evaluate"),
                             (ss_mod.Zeeman, "_evaluate", "Zeeman: evaluate"),
                             (sl_mod._Work, "update_neighbors", "integrator: update neighbours"),
                             (sl_mod._Work, "evaluate", "integrator: forces (+fields)"),
                             (sl_mod._SpinLatticeBase, "_sweep", "integrator: spin sweep"),
                             (sl_mod._SpinLatticeBase, "_initial_forces", "integrator: initial forces"),
                             (sl_mod._SpinLatticeBase, "_finish", "integrator: returned State")]:
        setattr(cls, meth, wrapped(label, getattr(cls, meth)))
tracemalloc.start()
st = base.build_state(cells)
pot = potential()
integ = SpinLatticeNVE(base.DT)
if mode == "single":
    out = pot.compute(st, forces=True, magnetic_forces=True)
else:
    out = integ.run(st, pot, 3)
cur, peak = tracemalloc.get_traced_memory()
if TRANSIENTS:  # the wrappers restart the peak: the run's is the largest they saw
    peak = max(peak, stack[0][1])
tracemalloc.stop()
n = len(st)
eam, exch = pot.terms[0], pot.terms[1]
parts = [("neighbour list", pot._nl), ("EAM", eam), ("exchange", exch), ("integrator", integ),
         ("state", [st, out])]
res = {k: v / n for k, v in held_by_part(parts).items()}
res.update(n=n, peak=peak / n, held=cur / n)
res["transients"] = {k: [v[0] / n, v[1], v[2] / n] for k, v in transients.items()}
print(json.dumps(res))
"""


def _arrays(obj, seen, depth=0):
    """Bytes of the NumPy buffers reachable from ``obj`` through attributes, slots, containers
    and closures (depth ≤ 6), each buffer (its base) counted once across calls (``seen``)."""
    import numpy as np

    if depth > 6 or obj is None or isinstance(obj, (str, bytes, int, float, bool, type)):
        return 0
    if isinstance(obj, np.ndarray):
        base = obj
        while isinstance(base.base, np.ndarray):
            base = base.base
        if id(base) in seen:
            return 0
        seen.add(id(base))
        return base.nbytes
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    total = 0
    if isinstance(obj, dict):
        items = list(obj.values())
    elif isinstance(obj, (list, tuple, set)):
        items = list(obj)
    else:
        items = list(getattr(obj, "__dict__", {}).values())
        for cls in type(obj).__mro__:
            for name in getattr(cls, "__slots__", ()):
                if hasattr(obj, name):
                    items.append(getattr(obj, name))
        if callable(obj) and getattr(obj, "__closure__", None):
            items += [c.cell_contents for c in obj.__closure__ if c.cell_contents is not None]
    for item in items:
        if callable(item) and not hasattr(item, "__closure__") and not isinstance(item, np.ndarray):
            continue
        total += _arrays(item, seen, depth + 1)
    return total


def held_by_part(parts):
    """{name: bytes} of the NumPy arrays each (name, object) holds, in order (shared buffers go to
    the first part that reaches them)."""
    seen = set()
    return {name: _arrays(obj, seen) for name, obj in parts}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="16000,128000")
    p.add_argument("--mode", choices=("nve", "single"), default="nve")
    p.add_argument("--low-memory", action="store_true", help="EAM(low_memory=True)")
    p.add_argument("--tabled", action="store_true", help="EAM(low_memory=False) (default: 'auto')")
    p.add_argument("--transients", action="store_true", help="also the peak above held memory, pass by pass")
    args = p.parse_args()
    eam = True if args.low_memory else False if args.tabled else None
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_scaling import cells_for

    here = str(Path(__file__).resolve().parent)
    cols = ["neighbour list", "EAM", "exchange", "integrator", "state"]
    print(f"bytes per atom, {args.mode}{'' if eam is None else f' (EAM low_memory={eam})'}: tracemalloc peak, "
          "held at the end, and the arrays each part holds")
    print(f"{'N':>8s} {'peak':>7s} {'held':>7s} " + " ".join(f"{c:>14s}" for c in cols))
    for n in (int(s) for s in args.sizes.split(",")):
        r = subprocess.run([sys.executable, "-c", CHILD, here, json.dumps(cells_for(n)), args.mode,
                            json.dumps(eam), "1" if args.transients else "0"], capture_output=True, text=True,
                           cwd=tempfile.gettempdir())
        if r.returncode != 0:
            raise RuntimeError(r.stderr[-3000:])
        res = json.loads(r.stdout.strip().splitlines()[-1])
        print(f"{res['n']:8d} {res['peak']:7.0f} {res['held']:7.0f} " + " ".join(f"{res[c]:14.0f}" for c in cols),
              flush=True)
        if args.transients:
            print(f"{'':8s} transient above the memory held when the pass began (B/atom, largest over calls; "
                  "held at its start; calls):")
            for name, (tr, calls, start) in sorted(res["transients"].items(), key=lambda kv: -kv[1][0]):
                print(f"{'':8s}   {name:40s} {tr:7.0f}   held {start:6.0f}   {calls:4d} calls")


if __name__ == "__main__":
    main()
