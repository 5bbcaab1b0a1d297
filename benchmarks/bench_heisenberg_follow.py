"""What following the atoms costs the Heisenberg term (pairs bound to atoms, spinlat.sites).

System: bcc Fe supercells (2 000 / 16 000 / 128 000 atoms), thermal displacements σ = 0.05 Å,
random spins; ``Heisenberg.from_neighbors`` of the two-atom cubic cell, three shells of J and
two of DMI (14 pairs per atom).

Printed per size (one core, best of several repetitions):

- ``match``: a fresh match of a rigidly shifted crystal (the global translation found from atom 0,
  O(N log T)), ``table``: the pair table built from it (O(N × pairs per atom)); both happen once
  per run, or when a state is reordered;
- ``follow``: the O(N) check done on every call that the state continues the previous one
  (same atoms, each moved < tolerance relative to atom 0), after a small random move; ``same``:
  the check when the positions did not change since the previous call (one comparison pass: what
  the colour-by-colour spin updates between two position updates of an integrator meet);
- ``eval``: one ``compute`` (energy + magnetic forces) on a followed state, and ``colour``:
  ``rotation_fields`` of one eighth of the atoms (what a spin-lattice integrator calls per colour);
- ratios follow/eval and same/colour: the share of the hot path spent on following.

Run: python benchmarks/bench_heisenberg_follow.py [--sizes 2000 16000 128000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np  # noqa: E402

import spinlat as sl  # noqa: E402
from spinlat.potentials import Heisenberg  # noqa: E402

A = 2.8665


def best(fn, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[2000, 16000, 128000])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    unit = sl.State([[0, 0, 0], [A / 2] * 3], [26, 26], cell=np.eye(3) * A, pbc=True, moments=[2.2, 2.2])
    kw = dict(J=[0.01, 0.004, -0.001], D=[0.002, 0.001])
    print(f"{'atoms':>8} {'match s':>9} {'table s':>9} {'follow ms':>10} {'eval ms':>9} {'colour ms':>10} "
          f"{'same ms':>8} {'follow/eval':>12} {'same/colour':>12}")
    for size in args.sizes:
        L = max(1, round((size / 2) ** (1 / 3)))
        rng = np.random.default_rng(0)
        st = unit.repeat(L)
        st = st.copy(positions=st.positions + rng.normal(0, 0.05, (len(st), 3)) + [0.31, 0.77, 1.13],
                     spins=rng.normal(size=(len(st), 3)))
        ham = Heisenberg.from_neighbors(unit, **kw)
        ham.compute(st)  # compile kernels
        template = ham._sites
        t_match = best(lambda: template.match(st), max(1, args.repeat // 2))
        sites = template.match(st)
        t_table = best(lambda: ham._build_expansion(sites), max(1, args.repeat // 2))
        ham.compute(st)
        ex = ham._expansion
        moves = [st.copy(positions=st.positions + rng.normal(0, 0.01, (len(st), 3))) for _ in range(args.repeat)]
        k = iter(range(10**9))
        t_follow = best(lambda: ex.sites.follows(moves[next(k) % len(moves)]), args.repeat)
        t_eval = best(lambda: ham.compute(moves[-1], forces=False), args.repeat)
        t_same = best(lambda: ex.sites.follows(moves[-1]), args.repeat)
        atoms = np.arange(0, len(st), 8)
        t_colour = best(lambda: ham.rotation_fields(moves[-1], None, atoms), args.repeat)
        assert ham._expansion is ex
        print(f"{len(st):>8} {t_match:>9.3f} {t_table:>9.3f} {t_follow * 1e3:>10.3f} {t_eval * 1e3:>9.2f} "
              f"{t_colour * 1e3:>10.2f} {t_same * 1e3:>8.3f} {t_follow / t_eval:>12.3f} {t_same / t_colour:>12.3f}")


if __name__ == "__main__":
    main()
