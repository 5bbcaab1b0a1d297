"""Exchange pair-list setup: the reverse-pair search of ``BetheSlaterExchange``, before and after,
with LAMMPS ``spin/exchange`` (its ``run 0``) beside it.

``_compact_spin_list`` builds the directed pair list of the exchange term once per neighbour-list
build and links every entry i → j (shift S) to its reverse j → i (−S). It used to scan row j for
every entry (O(P · degree)); it now sorts every row once and bisects (O(P log degree)). The
difference shows where atoms have many neighbours: one atom in a small periodic cell, whose
~10⁵ self-images within the cutoff are all its neighbours (issue 9.9: > 150 s).

Systems (``BetheSlaterExchange(3.4, 0.02726, 0.2171, 1.841)``, neighbour list with 0.3 Å skin):
bcc Fe 20×20×20 (16 000 atoms, 14 neighbours each) and one Fe atom in simple-cubic cells of
0.3, 0.2 and 0.15 Å. Printed per system: pairs, the former row scan, the new search (both numba,
compiled beforehand, best of 3), their ratio, the whole new pair-list build, and LAMMPS's
``run 0`` (neighbour lists + one evaluation, for scale; "n/a" where LAMMPS is not available or
cannot set the system up: for the one-atom cells it stops with "Neighbor list overflow, boost
neigh_modify one").

Run: python benchmarks/bench_pair_search.py [--repeat N] [--cells A ...] [--no-lammps] (``--help``)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numba
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import spinlat as sl  # noqa: E402
from spinlat.potentials import BetheSlaterExchange  # noqa: E402
from spinlat.potentials.exchange import _compact_spin_list, _reverse_entries  # noqa: E402

PARAMS = (3.4, 0.02726, 0.2171, 1.841)


@numba.njit(cache=True)
def _row_scan(off, cj, cs, svec):
    """The former search: for every entry scan the partner's row for the opposite shift."""
    rev = np.full(cj.shape[0], -1, dtype=np.int32)
    for i in range(off.shape[0] - 1):
        for p in range(off[i], off[i + 1]):
            j = cj[p]
            for t in range(off[j], off[j + 1]):
                if cj[t] == i and svec[cs[t], 0] == -svec[cs[p], 0] and svec[cs[t], 1] == -svec[cs[p], 1] \
                        and svec[cs[t], 2] == -svec[cs[p], 2]:
                    rev[p] = t
                    break
    return rev


def _codes(svec, cell, shifts):
    """(code_of, lookup, top) of the distinct shifts, as _compact_spin_list encodes them."""
    rmax = int(np.abs(shifts).max())
    w = 2 * rmax + 1
    m = np.rint(svec @ np.linalg.inv(cell)).astype(np.int64) + rmax
    code_of = (m[:, 0] * w + m[:, 1]) * w + m[:, 2]
    lookup = np.full(w ** 3, -1, dtype=np.int64)
    lookup[code_of] = np.arange(len(code_of))
    return code_of, lookup, w ** 3 - 1


def best(f, n=3):
    out = []
    for _ in range(n):
        t = time.perf_counter()
        f()
        out.append(time.perf_counter() - t)
    return min(out)


def systems(repeat=20, cells=(0.3, 0.2, 0.15)):
    a = 2.8665
    bcc = sl.State([[0, 0, 0], [a / 2] * 3], [26, 26], cell=np.eye(3) * a, pbc=True, moments=[2.2, 2.2])
    yield f"bcc Fe {repeat}x{repeat}x{repeat}", bcc.repeat(repeat)
    for c in cells:
        yield f"1 atom, {c} Å cell", sl.State([[0, 0, 0]], [26], cell=np.eye(3) * c, pbc=True, moments=[2.2])


def lammps_run0(st):
    try:
        sys.path.insert(0, str(ROOT / "tests"))
        from lammps_runner import lammps_available, run_lammps

        if not lammps_available():
            return None
        t = time.perf_counter()
        run_lammps(st.positions, st.cell, st.numbers,
                   [f"pair_style spin/exchange {PARAMS[0]}", "pair_coeff * * exchange " + " ".join(map(str, PARAMS))],
                   spins=st.spins, moments=st.moments, isolate=True, timeout=600)
        return time.perf_counter() - t
    except Exception:  # noqa: BLE001 - LAMMPS could not set the system up
        return None


def main(repeat=20, cells=(0.3, 0.2, 0.15), lammps=True):
    print(f"{'system':22s} {'pairs':>9s} {'row scan':>10s} {'new search':>10s} {'ratio':>7s} {'whole build':>12s} "
          f"{'LAMMPS run 0':>13s}")
    for name, st in systems(repeat, cells):
        pot = BetheSlaterExchange(*PARAMS)
        nl = pot.neighbor_list(st)
        args = (st.positions, st.moments > 0, nl.offsets, nl.j, nl.shift_index, nl.unique_shifts, nl.unique_vectors,
                np.inf)
        off, cj, cs, svec, rev = _compact_spin_list(*args)
        assert np.array_equal(rev, _row_scan(off, cj, cs, svec))
        t_build = best(lambda: _compact_spin_list(*args))
        t_old = best(lambda: _row_scan(off, cj, cs, svec))
        codes = _codes(svec, st.cell, nl.unique_shifts)
        assert np.array_equal(_reverse_entries(off, cj, cs, *codes), rev)
        t_new = best(lambda: _reverse_entries(off, cj, cs, *codes))
        t_lmp = lammps_run0(st) if lammps else None
        lmp = f"{t_lmp:12.3f}s" if t_lmp is not None else f"{'n/a':>13s}"
        print(f"{name:22s} {len(cj):9d} {t_old:9.4f}s {t_new:9.4f}s {t_old / t_new:6.1f}× {t_build:11.4f}s {lmp}")


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="Reverse-pair search of the exchange pair list, former row scan vs "
                                             "sorted search, LAMMPS run 0 beside it (module docstring).")
    ap.add_argument("--repeat", type=int, default=20, help="bcc Fe supercell edge in cubic cells (default 20: "
                                                           "16 000 atoms)")
    ap.add_argument("--cells", type=float, nargs="*", default=[0.3, 0.2, 0.15],
                    help="edges (Å) of the one-atom simple-cubic cells (default 0.3 0.2 0.15)")
    ap.add_argument("--no-lammps", action="store_true", help="skip the LAMMPS column")
    args = ap.parse_args()
    if args.repeat < 1 or any(c <= 0 for c in args.cells):
        ap.error("--repeat must be positive and --cells edges positive")
    main(args.repeat, tuple(args.cells), not args.no_lammps)
