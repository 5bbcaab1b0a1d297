"""Scaling of LLG and Monte Carlo with the number of spins N: spinlat and Spirit 2.2 side by side,
throughput and memory per spin (the LLG and MC rows of README's scaling table).

- LLG: the square-lattice model of ``bench_llg_spirit.py`` (J = 10 meV, Bloch D = 6 meV,
  K = 0.1 meV, B = 5 T, 2 μB, α = 0.1, dt = 1 fs), SIB solver, T = 0, from the same random spins;
  spin-steps/s = N · steps / wall time.
- MC: the simple-cubic model of ``bench_mc_spirit.py`` (J = 10 meV, K = 0.1 meV, 2 μB, T = 100 K,
  fixed 40° cap, no over-relaxation); spin-moves/s = N · sweeps / wall time (Spirit proposes N
  moves per iteration at random sites, spinlat one per spin per sweep).

Each (code, method, N) runs in its own process with one thread (NUMBA_NUM_THREADS=1,
OMP_NUM_THREADS=1), best of ``--repeat`` timed batches after a warm-up batch. Memory per spin =
(peak RSS of the process − its RSS after imports and after compiling on a tiny system) / N: all
that the run itself holds (spins, tables, solver buffers, Python objects), measured the same way
for both codes (``resource.getrusage`` max RSS). The load average is printed with each row.

Run: python benchmarks/bench_scaling_llg_mc.py [--llg 64 128 256 512] [--mc 16 32 64] [--steps 100]
     [--sweeps 20] [--repeat 2] [--markdown]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

HERE = os.path.abspath(__file__)


def _rss():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _best(fn, repeat):
    fn()  # warm-up batch
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def child(code, method, L, steps, repeat):
    import numpy as np

    sys.path.insert(0, os.path.dirname(HERE))
    if method == "llg":
        from spinlat.workflows.skyrmion import skyrmion_potential, spirit_model

        J, D, K, B, MU = 0.010, 0.006, 0.0001, 5.0, 2.0
        n = L * L
        if code == "spinlat":
            import spinlat as sl
            from spinlat.integrators import LLG

            def build(m):
                unit = sl.State([[0, 0, 0]], [26], cell=np.diag([1.0, 1.0, 10.0]), pbc=[True, True, False],
                                moments=[MU])
                st = unit.repeat((m, m, 1))
                s = np.random.default_rng(0).normal(size=(m * m, 3))
                return st.copy(spins=s / np.linalg.norm(s, axis=1)[:, None]), skyrmion_potential(J, D, K, B)

            st, pot = build(4)
            LLG(1.0, damping=0.1, solver="sib").run(st, pot, 3)  # compile on a tiny system
            base = _rss()
            st, pot = build(L)
            integ = LLG(1.0, damping=0.1, solver="sib")
            box = [st]

            def go():
                box[0] = integ.run(box[0], pot, steps)

            wall = _best(go, repeat)
        else:
            from spirit import parameters, simulation, system

            base = _rss()
            with spirit_model(L, J, D, K, B, MU) as p:
                parameters.llg.set_timestep(p, 1e-3)
                parameters.llg.set_damping(p, 0.1)
                parameters.llg.set_output_general(p, any=False, initial=False, final=False)
                s = np.random.default_rng(0).normal(size=(n, 3))
                system.get_spin_directions(p)[:] = s / np.linalg.norm(s, axis=1)[:, None]
                system.update_data(p)
                wall = _best(lambda: simulation.start(p, simulation.METHOD_LLG, simulation.SOLVER_SIB,
                                                      n_iterations=steps, n_iterations_log=steps), repeat)
    else:
        import bench_mc_spirit as M

        n = L ** 3
        T, cone = 100.0, 40.0
        if code == "spinlat":
            M.SpinlatRun(2, T, np.radians(cone)).sweeps(3)  # compile on a tiny system
            base = _rss()
            run = M.SpinlatRun(L, T, np.radians(cone))
        else:
            base = _rss()
            run = M.SpiritRun(L, T, cone)
        wall = _best(lambda: run.sweeps(steps), repeat)
    return {"code": code, "method": method, "n": n, "rate": n * steps / wall, "bytes_per_spin": (_rss() - base) / n,
            "load": os.getloadavg()[0]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--llg", type=int, nargs="*", default=[64, 128, 256, 512], help="L of the L×L LLG lattices")
    ap.add_argument("--mc", type=int, nargs="*", default=[16, 32, 64], help="L of the L³ Monte Carlo lattices")
    ap.add_argument("--steps", type=int, default=100, help="LLG steps per timed batch")
    ap.add_argument("--sweeps", type=int, default=20, help="MC sweeps per timed batch")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--markdown", action="store_true", help="also print the README table rows")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        code, method, L = args.child[0], args.child[1], int(args.child[2])
        print(json.dumps(child(code, method, L, args.steps if method == "llg" else args.sweeps, args.repeat)))
        return
    env = dict(os.environ, NUMBA_NUM_THREADS="1", OMP_NUM_THREADS="1")
    rows = []
    print(f"one thread per process; best of {args.repeat} batches ({args.steps} LLG steps / {args.sweeps} MC sweeps); "
          f"{os.cpu_count()} CPUs")
    print(f"{'method':6s} {'N':>8} {'spinlat /s':>12} {'Spirit /s':>12} {'ratio':>6} {'B/spin ours':>11} "
          f"{'B/spin Spirit':>13} {'load':>5}")
    for method, sizes in (("llg", args.llg), ("mc", args.mc)):
        for L in sizes:
            res = {}
            for code in ("spinlat", "spirit"):
                cmd = [sys.executable, HERE, "--child", code, method, str(L), "--steps", str(args.steps), "--sweeps",
                       str(args.sweeps), "--repeat", str(args.repeat)]
                out = subprocess.run(cmd, env=env, capture_output=True, text=True)
                if out.returncode:
                    raise RuntimeError(f"{code} {method} L={L} failed:\n{out.stderr[-2000:]}")
                res[code] = json.loads(out.stdout.strip().splitlines()[-1])
            a, b = res["spinlat"], res["spirit"]
            rows.append((method, a, b))
            print(f"{method:6s} {a['n']:8d} {a['rate']:12.3e} {b['rate']:12.3e} {a['rate'] / b['rate']:6.2f} "
                  f"{a['bytes_per_spin']:11.0f} {b['bytes_per_spin']:13.0f} {max(a['load'], b['load']):5.2f}",
                  flush=True)
    print("rates: LLG spin-steps/s, MC spin-moves/s (sweeps/s = rate / N)")
    if args.markdown:
        print("\n| method | N | spinlat (/s) | Spirit (/s) | ratio | bytes/spin spinlat | bytes/spin Spirit |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        for method, a, b in rows:
            unit = "spin-steps" if method == "llg" else "spin-moves"
            print(f"| {'LLG SIB' if method == 'llg' else 'MC Metropolis'} ({unit}) | {a['n']:,} | {a['rate']:.3g} | "
                  f"{b['rate']:.3g} | {a['rate'] / b['rate']:.2f}× | {a['bytes_per_spin']:.0f} | "
                  f"{b['bytes_per_spin']:.0f} |")


if __name__ == "__main__":
    main()
