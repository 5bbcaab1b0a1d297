"""Speed cost of ``EAM(low_memory=True)`` against the tabled EAM, A/B in one process.

System as ``bench_scaling.py`` (bcc Fe, EAM(Fe_mm.eam.fs) + Bethe-Slater exchange + Zeeman 1 T,
random spins, 100 K, dt = 0.1 fs). For each size, one potential of each kind and one integrator
each; windows of the EAM term alone (energy + forces) and of ``SpinLatticeNVE`` steps alternate
between the two kinds and between 1 and 2 numba threads (interleaved, same load), the best of
``--repeats`` windows kept. Prints atom-steps/s, the ratio low_memory / tabled (< 1: slower) and
the load average. Also checks that both kinds give the same energy and forces (to round-off).

Usage: python benchmarks/bench_eam_low_memory.py [--sizes 16384,131072] [--threads 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_nve_lammps as base  # noqa: E402
from bench_scaling import cells_for  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="16384,131072")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--atom-steps", type=float, default=4e5, help="atom-steps per timed window")
    args = p.parse_args()
    import numba

    from spinlat.integrators import SpinLatticeNVE

    threads = sorted({1, args.threads})
    print(f"EAM low_memory vs tabled: best of {args.repeats} interleaved windows; atom-steps/s")
    print(f"{'N':>8s} {'what':>10s} {'thr':>4s} {'tabled':>10s} {'low_memory':>11s} {'low/tabled':>11s} {'load':>5s}")
    for n in (int(s) for s in args.sizes.split(",")):
        st = base.build_state(cells_for(n))
        pots = {k: base.potential(low_memory=k == "low") for k in ("tab", "low")}
        integs = {k: SpinLatticeNVE(base.DT) for k in pots}
        states = dict.fromkeys(pots, st)
        ev = {k: pots[k].terms[0].compute(st, forces=True, magnetic_forces=False) for k in pots}
        de = abs(ev["tab"].energy - ev["low"].energy) / n
        df = float(np.abs(ev["tab"].forces - ev["low"].forces).max())
        for t in threads:  # compile and warm up
            numba.set_num_threads(t)
            for k in pots:
                states[k] = integs[k].run(states[k], pots[k], 2)
        steps = max(2, int(args.atom_steps / n))
        best = {}
        loads = []
        for _ in range(args.repeats):
            for t in threads:
                numba.set_num_threads(t)
                loads.append(os.getloadavg()[0])
                for k in pots:
                    eam = pots[k].terms[0]
                    t0 = time.perf_counter()
                    for _ in range(steps):
                        eam.compute(states[k], forces=True, magnetic_forces=False)
                    dt = time.perf_counter() - t0
                    best[("eam", t, k)] = min(best.get(("eam", t, k), np.inf), dt)
                    t0 = time.perf_counter()
                    states[k] = integs[k].run(states[k], pots[k], steps)
                    dt = time.perf_counter() - t0
                    best[("nve", t, k)] = min(best.get(("nve", t, k), np.inf), dt)
        for what in ("eam", "nve"):
            for t in threads:
                a, b = n * steps / best[(what, t, "tab")], n * steps / best[(what, t, "low")]
                print(f"{n:8d} {what:>10s} {t:4d} {a:10.3e} {b:11.3e} {b / a:11.2f} {np.mean(loads):5.1f}", flush=True)
        print(f"{n:8d} same point: |ΔE|/atom {de:.1e} eV, max |ΔF| {df:.1e} eV/Å")
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)


if __name__ == "__main__":
    main()
