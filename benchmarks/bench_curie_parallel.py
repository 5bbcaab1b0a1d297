"""Curie sweeps in parallel: ``curie_sweep`` over 1 and 2 (or more) worker processes, and a Dask
cluster when ``dask.distributed`` is installed; wall time, speed-up, parallel efficiency, and a
check that every run gives the serial samples bit for bit (each (L, T) task has its own seed).

System: bcc Fe, nearest-neighbour Heisenberg J = 10 meV (+ second shell 4 meV), moments 2.2 μB,
Metropolis + 1 over-relaxation sweep per sweep, ``--sizes`` × ``--temperatures`` tasks (the
largest first, for load balance). Worker processes are spawned (``spinlat.sweep``): their start-up
(imports, numba cache loads) is inside the measured wall time, as a user sees it. Each setting is
repeated ``--repeat`` times, interleaved, and the best wall time kept; the load average is
printed — on a shared machine the speed-up is bounded by the cores actually free.

Run: python benchmarks/bench_curie_parallel.py [--workers 1 2] [--sizes 8 12] [--sweeps 1200] [--repeat 2]
     [--dask]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

import spinlat as sl
from spinlat.workflows import curie as cw

A = 2.87


def system():
    st = sl.State([[0, 0, 0]], [26], cell=0.5 * A * np.array([[-1, 1, 1], [1, -1, 1], [1, 1, -1]]), pbc=True,
                  moments=[2.2])
    return st, sl.potentials.Heisenberg.from_neighbors(st, J=[0.010, 0.004])


def run(args, **parallel):
    st, ham = system()
    t_mf = cw.mean_field_tc(ham)
    temps = t_mf * np.linspace(0.5, 1.1, args.temperatures)
    t = time.perf_counter()
    res = cw.curie_sweep(st, ham, temps, args.sizes, sweeps=args.sweeps, thermalize=args.sweeps // 4, overrelax=1,
                         cell="cubic", seed=3, n_boot=0, **parallel)
    return time.perf_counter() - t, res


def same(a, b):
    return all(np.array_equal(a.samples[k]["magnetization"], b.samples[k]["magnetization"])
               and np.array_equal(a.samples[k]["energies"], b.samples[k]["energies"]) for k in a.samples)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--sizes", type=int, nargs="+", default=[8, 12])
    ap.add_argument("--temperatures", type=int, default=4)
    ap.add_argument("--sweeps", type=int, default=1200)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--dask", action="store_true", help="also a dask.distributed LocalCluster of max(--workers)")
    args = ap.parse_args()
    n_tasks = len(args.sizes) * args.temperatures
    print(f"curie_sweep: sizes {args.sizes} (cubic cells, 2 L³ spins) × {args.temperatures} temperatures = {n_tasks} "
          f"tasks, {args.sweeps} sweeps (+{args.sweeps // 4} thermalisation) each; {os.cpu_count()} CPUs; best of "
          f"{args.repeat} interleaved repeats")
    run(args, workers=None)  # compile / load caches
    settings = [(f"{w} worker{'s' if w > 1 else ''}", dict(workers=w)) for w in args.workers]
    cluster = client = None
    if args.dask:
        try:
            import dask.distributed as dd
        except ImportError:
            print("dask.distributed is not installed: the Dask row is skipped")
        else:
            w = max(args.workers)
            cluster = dd.LocalCluster(n_workers=w, threads_per_worker=1, processes=True, dashboard_address=None)
            client = dd.Client(cluster)
            settings.append((f"Dask LocalCluster ({w} procs)", dict(scheduler=client)))
    best, results, loads = {}, {}, []
    try:
        for _ in range(max(1, args.repeat)):
            for name, kw in settings:
                loads.append(os.getloadavg()[0])
                wall, res = run(args, **kw)
                if name not in best or wall < best[name]:
                    best[name], results[name] = wall, res
    finally:
        if client is not None:
            client.close()
            cluster.close()
    base_name = settings[0][0]
    base = best[base_name]
    serial = results[base_name]
    task_seconds = float(np.sum(serial.seconds))
    print(f"\n{'setting':30s} {'wall (s)':>9} {'speed-up':>9} {'efficiency':>10} {'= serial':>9}")
    for name, kw in settings:
        procs = kw.get("workers") or max(args.workers)
        s = base / best[name]
        print(f"{name:30s} {best[name]:9.2f} {s:9.2f} {s / procs:10.0%} {str(same(serial, results[name])):>9}")
    print(f"\nsum of the per-task times of the serial run: {task_seconds:.2f} s. Load average during the runs "
          f"{min(loads):.2f}-{max(loads):.2f} on {os.cpu_count()} CPUs (other processes share the cores: a speed-up "
          f"below the worker count there measures the free cores, not the scheme).")


if __name__ == "__main__":
    main()
