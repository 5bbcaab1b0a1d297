"""How steady this machine's cores are: the same single-threaded kernel timed on each core in
turn, window after window, beside the same kernel on two threads.

Why: ``bench_scaling.py`` takes the best window of 1 and 2 numba threads. A threaded pass splits
the atoms into equal halves (numba's static schedule), so a 2-thread window runs at the speed of
the slower core of that moment, while a 1-thread window is fast whenever its one core is. Where
cores change speed independently (virtual machines whose vCPUs share physical cores or caches
with other tenants), the best 2-thread window then falls short of twice the best 1-thread one
even for a perfectly parallel pass. This benchmark measures that directly.

System: the 16 384-atom bcc Fe box of ``bench_scaling.py`` (EAM Fe_mm.eam.fs, positions
displaced by 0.05 Å), kernel: ``EAM.densities`` (the EAM density pass; full rows above
``eam.LOW_MEMORY_MIN_ATOMS``, the pass that scaled worst in ``profile_step.py``). Each window
times ``--calls`` calls with the main thread pinned to core 0, then to core 1 (one numba thread;
``os.sched_setaffinity`` of the calling thread), then unpinned on two numba threads. Printed per
window: ns/atom on core 0, core 1, and on 2 threads, with the 2-thread time predicted by the
slower core (max(t0, t1)/2); then min / median / max per column and the ratios best-1-core /
best-2-thread and median / median.

Usage: python benchmarks/bench_core_speed.py [--size 16384] [--windows 12] [--calls 10]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_scaling  # noqa: E402
import bench_nve_lammps as base  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=16384)
    p.add_argument("--windows", type=int, default=12)
    p.add_argument("--calls", type=int, default=10)
    args = p.parse_args(argv)
    import numba

    from spinlat.potentials import EAM

    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2 or numba.config.NUMBA_NUM_THREADS < 2:
        raise SystemExit("needs two cores and two numba threads")
    n = args.size
    st = base.build_state(bench_scaling.cells_for(n))
    rng = np.random.default_rng(1)
    st = st.copy(positions=st.positions + rng.normal(0.0, 0.05, st.positions.shape))
    eam = EAM(base.EAM_FILE)
    numba.set_num_threads(2)
    eam.densities(st)  # the thread pool starts here, unpinned: its workers stay on any core
    numba.set_num_threads(1)
    eam.densities(st)

    def window(threads, cpu=None):
        numba.set_num_threads(threads)
        os.sched_setaffinity(0, {cpu} if cpu is not None else set(cpus))
        eam.densities(st)
        t0 = time.perf_counter()
        for _ in range(args.calls):
            eam.densities(st)
        return (time.perf_counter() - t0) / args.calls / n * 1e9

    print(f"{n} atoms, EAM density pass, {args.calls} calls per window, cores {cpus[0]} and {cpus[1]}; "
          f"load {os.getloadavg()[0]:.2f}")
    print(f"{'window':>6} {'core ' + str(cpus[0]):>8} {'core ' + str(cpus[1]):>8} {'2 thr':>8} "
          f"{'slower/2':>8}   (ns/atom)")
    rows = []
    for w in range(args.windows):
        a = window(1, cpus[0])
        b = window(1, cpus[1])
        c = window(2)
        rows.append((a, b, c, max(a, b) / 2))
        print(f"{w:6d} {a:8.0f} {b:8.0f} {c:8.0f} {max(a, b) / 2:8.0f}", flush=True)
    os.sched_setaffinity(0, set(cpus))
    r = np.array(rows)
    for name, f in (("min", np.min), ("median", np.median), ("max", np.max)):
        v = f(r, axis=0)
        print(f"{name:>6} {v[0]:8.0f} {v[1]:8.0f} {v[2]:8.0f} {v[3]:8.0f}")
    one = r[:, :2]
    print(f"spread of one core over the windows (max/min): {one[:, 0].max() / one[:, 0].min():.2f}, "
          f"{one[:, 1].max() / one[:, 1].min():.2f}")
    print(f"2-thread speed-up, best window / best window: {one.min() / r[:, 2].min():.2f}; "
          f"median / median: {np.median(one) / np.median(r[:, 2]):.2f}; "
          f"per window, against its slower core: {np.median(np.max(one, axis=1) / r[:, 2]):.2f} (median)")
    print(f"load at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
