"""Monte Carlo sweep speed on bcc Fe with the TB2J exchange (171 pairs per atom, to 14.2 Å):
the scalar isotropic coupling kernel against the 3×3-matrix kernel, side by side.

System: L × L × L conventional cubic cells of the TB2J primitive cell (2 L³ spins), started
ferromagnetic, T = 1100 K, Metropolis + 1 over-relaxation sweep per sweep (what
examples/curie_bccfe_tb2j.py runs). Both kernels read the same compressed coupling table
(int32 neighbour and matrix indices); the 3×3 kernel is forced by emptying the scalar table.
Timing: best of ``--repeat`` batches of ``--sweeps`` sweeps in one ``MonteCarlo.run`` each,
after a warm-up run (compilation and table set-up excluded); the two kernels interleaved.

Run: python benchmarks/bench_mc_curie.py [--sizes 6 8 10 12] [--sweeps 100] [--repeat 5]
"""

import argparse
import time
from pathlib import Path

import numpy as np

import spinlat as sl
from spinlat.integrators import MonteCarlo
from spinlat.workflows.magnons import cubic_supercell

TB2J = Path(__file__).resolve().parents[1] / "spinlat" / "data" / "bccFe_TB2J_exchange.out"  # shipped with spinlat


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tb2j", default=str(TB2J))
    p.add_argument("--sizes", type=int, nargs="+", default=[6, 8, 10, 12])
    p.add_argument("--sweeps", type=int, default=100)
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args()
    cell, ham = sl.io.read_tb2j(args.tb2j)
    print(f"{'L':>3} {'spins':>6} {'couplings':>10} {'scalar ms/sweep':>16} {'3x3 ms/sweep':>13} {'ratio':>6}")
    for L in args.sizes:
        st = cubic_supercell(cell, L)
        st = st.copy(spins=np.tile([0.0, 0.0, 1.0], (len(st), 1)))
        runs = {}
        for name in ("scalar", "3x3"):
            mc = MonteCarlo(1100.0, seed=1, overrelax=1)
            s = mc.run(st, ham, 5)  # set-up, compile, verify the table
            if name == "3x3":
                mc._model.table = (*mc._model.table[:4], np.zeros(0))  # the kept model, without its scalar table
            runs[name] = [mc, s, []]
        for _ in range(args.repeat):
            for name, r in runs.items():
                t0 = time.perf_counter()
                r[1] = r[0].run(r[1], ham, args.sweeps)
                r[2].append((time.perf_counter() - t0) / args.sweeps * 1e3)
        a, b = min(runs["scalar"][2]), min(runs["3x3"][2])
        print(f"{L:3d} {len(st):6d} {len(runs['scalar'][0]._table[1]):10d} {a:16.2f} {b:13.2f} {b / a:6.2f}",
              flush=True)


if __name__ == "__main__":
    main()
