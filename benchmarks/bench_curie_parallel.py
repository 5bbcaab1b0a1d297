"""Curie sweeps in parallel: ``curie_sweep`` serially and over 2 (or more) worker processes, and a
Dask cluster when ``dask.distributed`` is installed; wall time, speed-up, parallel efficiency, the
CPU time of every worker, and a check that every run gives the serial samples bit for bit (each
(L, T) task has its own seed).

System: bcc Fe, nearest-neighbour Heisenberg J = 10 meV (+ second shell 4 meV), moments 2.2 μB,
Metropolis + 1 over-relaxation sweep per sweep, ``--sizes`` × ``--temperatures`` tasks (the
largest first, for load balance: the workers take the next task when free). Worker processes
belong to the pool :func:`spinlat.sweep` keeps between calls (forked where safe, else spawned;
``--spawn`` forces spawning): the first call with workers ("cold") pays their start-up inside the
measured wall time, as a user's first sweep does; the next calls ("warm") reuse them. Settings
are repeated ``--repeat`` times, interleaved, the best wall time kept; the load average is
printed — on a shared machine the speed-up is bounded by the cores actually free, which the
workers' CPU times show (a worker that had its core to itself has CPU ≈ wall).

Run: python benchmarks/bench_curie_parallel.py [--workers 2] [--sizes 8 12] [--temperatures 16]
     [--sweeps 1200] [--repeat 1] [--spawn] [--dask]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

import spinlat as sl
from spinlat import search
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


def _cpu_seconds(pids):
    """{pid: user + system CPU seconds} of the given processes (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            out[pid] = (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            out[pid] = float("nan")
    return out


def _pool_pids():
    pool = search._POOL
    return sorted(pool[2]._processes) if pool is not None else []


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, nargs="+", default=[2])
    ap.add_argument("--sizes", type=int, nargs="+", default=[8, 12])
    ap.add_argument("--temperatures", type=int, default=16)
    ap.add_argument("--sweeps", type=int, default=1200)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--spawn", action="store_true", help="spawn the workers even where forking is safe")
    ap.add_argument("--dask", action="store_true", help="also a dask.distributed LocalCluster of max(--workers)")
    args = ap.parse_args()
    if args.spawn:
        search._fork_is_safe = lambda: False
    n_tasks = len(args.sizes) * args.temperatures
    print(f"curie_sweep: sizes {args.sizes} (cubic cells, 2 L³ spins) × {args.temperatures} temperatures = {n_tasks} "
          f"tasks, {args.sweeps} sweeps (+{args.sweeps // 4} thermalisation) each; {os.cpu_count()} CPUs; best of "
          f"{args.repeat} interleaved repeats; load average {os.getloadavg()[0]:.2f}")
    warm = argparse.Namespace(**{**vars(args), "sweeps": 8})
    run(warm, workers=None)  # compile / load caches in this process
    rows, loads = [], []
    serial = None
    for rep in range(max(1, args.repeat)):
        loads.append(os.getloadavg()[0])
        c0 = time.process_time()
        wall, res = run(args, workers=None)
        rows.append(("serial", 1, wall, {"this process": time.process_time() - c0}, res))
        serial = serial or res
        for w in args.workers:
            for label in (("cold", "warm") if rep == 0 else ("warm",)):
                if label == "cold":
                    search.shutdown_workers()
                before = _cpu_seconds(_pool_pids())
                loads.append(os.getloadavg()[0])
                wall, res = run(args, workers=w)
                after = _cpu_seconds(_pool_pids())
                cpu = {pid: after[pid] - before.get(pid, 0.0) for pid in after}
                method = search._POOL[1] if search._POOL else "?"
                rows.append((f"{w} workers ({method}, {label})", w, wall, cpu, res))
    search.shutdown_workers()
    if args.dask:
        try:
            import dask.distributed as dd
        except ImportError:
            print("dask.distributed is not installed: the Dask row is skipped")
        else:
            w = max(args.workers)
            with dd.LocalCluster(n_workers=w, threads_per_worker=1, processes=True, dashboard_address=None) as cl, \
                    dd.Client(cl) as client:
                loads.append(os.getloadavg()[0])
                wall, res = run(args, scheduler=client)
                rows.append((f"Dask LocalCluster ({w} procs)", w, wall, {}, res))
    best = {}
    for name, procs, wall, cpu, res in rows:
        if name not in best or wall < best[name][1]:
            best[name] = (procs, wall, cpu, res)
    base = best["serial"][1]
    task_seconds = float(np.sum(serial.seconds))
    print(f"\n{'setting':30s} {'wall (s)':>9} {'speed-up':>9} {'ideal':>6} {'efficiency':>10} {'= serial':>9}  "
          f"CPU s per process")
    for name, (procs, wall, cpu, res) in best.items():
        s = base / wall
        ideal = min(procs, n_tasks)
        cpus = " ".join(f"{v:.1f}" for v in cpu.values())
        print(f"{name:30s} {wall:9.2f} {s:9.2f} {ideal:6d} {s / ideal:10.0%} {str(same(serial, res)):>9}  {cpus}")
    print(f"\nsum of the per-task times of the serial run: {task_seconds:.2f} s. Load average during the runs "
          f"{min(loads):.2f}-{max(loads):.2f} on {os.cpu_count()} CPUs (other processes share the cores: a speed-up "
          f"below the worker count there measures the free cores, not the scheme; a worker's CPU seconds "
          f"well below the wall time mean it waited for a core).")


if __name__ == "__main__":
    main()
