"""Where a step of SpinLatticeNVE / SpinLatticeLangevin spends its time, pass by pass, on 1 and 2
numba threads (the system of ``bench_scaling.py``: bcc Fe, EAM + Bethe-Slater exchange + Zeeman).

After a warm-up on both thread counts (every kernel compiled), every numba kernel called from
Python in the integrator's modules (``spinlat.integrators.*``, ``spinlat.potentials.*``,
``spinlat.neighbors``) and the Python-level passes around them (neighbour-list check and build,
field-engine update, noise fill, potential terms) are wrapped with timers; a pass's time is
exclusive (kernels inside a Python pass are counted apart), and "python" is the rest of the run
(the integrator loop, array allocations, small NumPy operations). Windows of ``--steps`` steps
alternate between 1 and 2 threads; each pass's best window is printed in ms/step with the ratio
1t/2t (> 1: the pass speeds up on 2 threads). The timers add ~1 µs per call.

Usage: python benchmarks/profile_step.py [--sizes 16384,131072] [--kinds nve,langevin] [--steps 20] [--repeats 3]
"""

from __future__ import annotations

import argparse
import importlib
import math
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

import numba
from numba.core.registry import CPUDispatcher

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_scaling  # noqa: E402
import bench_nve_lammps as base  # noqa: E402

MODULES = ["spinlat.integrators.spin_lattice", "spinlat.integrators.fields", "spinlat.integrators.noise",
           "spinlat.integrators.rotation", "spinlat.integrators.coloring", "spinlat.potentials.eam",
           "spinlat.potentials.exchange", "spinlat.potentials.couplings", "spinlat.potentials.single_site",
           "spinlat.neighbors"]


class Timers:
    def __init__(self):
        self.acc = defaultdict(float)
        self.calls = defaultdict(int)
        self.stack = []  # [name, start, time of the children]

    def wrap(self, name, f):
        timers = self

        def timed(*a, **k):
            timers.stack.append([name, time.perf_counter(), 0.0])
            try:
                return f(*a, **k)
            finally:
                nm, t0, child = timers.stack.pop()
                dt = time.perf_counter() - t0
                timers.acc[nm] += dt - child
                timers.calls[nm] += 1
                if timers.stack:
                    timers.stack[-1][2] += dt

        timed.__wrapped__ = f
        return timed


def short(name):
    for suffix in ("_parallel", "_serial"):
        name = name.replace(suffix, "")
    return name


def instrument(t):
    """Wrap the kernels and passes (after compilation: numba callers keep their compiled calls)."""
    for modname in MODULES:
        mod = importlib.import_module(modname)
        tail = modname.rsplit(".", 1)[1]
        for attr, val in list(vars(mod).items()):
            if isinstance(val, CPUDispatcher):
                setattr(mod, attr, t.wrap(f"{tail}.{short(attr)}", val))
    from spinlat.integrators import spin_lattice as sl
    from spinlat.integrators.fields import SpinFieldEngine
    from spinlat.integrators.noise import PhiloxNoise
    from spinlat.neighbors import NeighborList
    from spinlat.potentials.base import Potential
    for cls, meth, name in [(NeighborList, "needs_rebuild", "nl.needs_rebuild (numpy)"),
                            (NeighborList, "build", "nl.build (python)"),
                            (SpinFieldEngine, "update", "engine.update (python)"),
                            (PhiloxNoise, "normals", "noise.normals (python)"),
                            (Potential, "compute", "potential.compute (python)"),
                            (sl._Work, "update_neighbors", "update_neighbors (python)"),
                            (sl._SpinLatticeBase, "_sweep", "_sweep (python)")]:
        setattr(cls, meth, t.wrap(name, getattr(cls, meth)))
    for mod, attr in [(sl, "_kick"), (sl, "_drift"), (sl, "_drift_o_drift")]:
        setattr(mod, attr, t.wrap(f"spin_lattice.{attr} (python)", getattr(mod, attr)))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="16384,131072")
    p.add_argument("--kinds", default="nve,langevin")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    threads = sorted({1, a.threads})
    setups = []
    for n in (int(s) for s in a.sizes.split(",")):
        st = base.build_state(bench_scaling.cells_for(n))
        for kind in a.kinds.split(","):
            pot, integ = base.potential(), bench_scaling.make_integrator(kind)
            for nt in threads:
                numba.set_num_threads(nt)
                st = integ.run(st, pot, 2)
            setups.append([n, kind, pot, integ, st])
    t = Timers()
    instrument(t)
    best = {}
    loads = []
    for _ in range(a.repeats):
        for s in setups:
            n, kind, pot, integ, st = s
            for nt in threads:
                numba.set_num_threads(nt)
                t.acc.clear()
                t.calls.clear()
                t0 = time.perf_counter()
                s[4] = st = integ.run(st, pot, a.steps)
                total = time.perf_counter() - t0
                rec = dict(t.acc)
                rec["python (rest)"] = total - sum(rec.values())
                rec["TOTAL"] = total
                calls = dict(t.calls)
                for k, v in rec.items():
                    key = (n, kind, nt, k)
                    best[key] = min(best.get(key, math.inf), v / a.steps)
                    best[(n, kind, nt, k, "calls")] = calls.get(k, 0) / a.steps
        loads.append(os.getloadavg()[0])
    print(f"ms/step, best of {a.repeats} windows of {a.steps} steps; load {min(loads):.2f}-{max(loads):.2f}")
    for n, kind, *_ in setups:
        names = sorted({k[3] for k in best if k[0] == n and k[1] == kind and len(k) == 4},
                       key=lambda k: -best[(n, kind, 1, k)] if (n, kind, 1, k) in best else 0)
        print(f"\n{n} atoms, {kind}: {'pass':42s} " + " ".join(f"{nt}t ms  calls" for nt in threads) + "   1t/2t")
        for k in names:
            row = [best.get((n, kind, nt, k), float('nan')) * 1e3 for nt in threads]
            cl = [best.get((n, kind, nt, k, "calls"), 0) for nt in threads]
            ratio = row[0] / row[-1] if row[-1] > 0 else float("nan")
            print(f"  {k:60s} " + " ".join(f"{r:8.3f} {c:5.1f}" for r, c in zip(row, cl)) + f"  {ratio:6.2f}")


if __name__ == "__main__":
    main()
