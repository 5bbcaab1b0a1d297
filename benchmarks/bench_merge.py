"""Merging of ground-state-search minima by symmetry: time against system size, old vs new.

What is timed is what ``sl.search.ground_state`` does after its starts have finished: find the
structure's translations, then merge 8 spin configurations of equal energy (4 distinct random
configurations, each also present as a translated, time-reversed copy) into distinct minima,
with spin-rotation merging off (time reversal × translations) and on (× global rotations).

- old: the former implementation (kept only as the tests' reference, tests/_reference_search.py): the translation permutations from an N×N
  distance matrix per candidate translation (O(N³)), then a spin-by-spin comparison for every
  translation (O(N·|T|) = O(N²) per pair);
- new: ``spinlat.translations.Translations`` (k-d tree over fractional positions, group closure, Smith
  normal form of the translation group) and FFT correlations over the group (O(N log N) per pair).

Structures: bcc Fe L×L×L conventional supercells (N = 2L³), plus, at the largest size run by
both, the cases without a full translation group (one vacancy, a random Fe-Co alloy, positions
perturbed by less than the 1e-3 Å tolerance). Both algorithms must give the same minima (checked).

Run: python benchmarks/bench_merge.py [--sizes 4 6 8 10 12 16] [--old-max 1024]
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

import spinlat as sl
from spinlat.translations import Translations


# the former algorithm, kept only as the tests' NumPy reference
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _reference_search import reference_same as old_same  # noqa: E402
from _reference_search import reference_translations as old_translations  # noqa: E402


def merge(configs, same):
    """Group labels of configs in ground_state's order (each compared with the minima so far)."""
    reps, labels = [], []
    for c in configs:
        for k, r in enumerate(reps):
            if same(r, c):
                labels.append(k)
                break
        else:
            labels.append(len(reps))
            reps.append(c)
    return labels


def configurations(state, rng):
    """4 random configurations and a translated (if possible), time-reversed copy of each."""
    n = len(state)
    perms = Translations(state)
    out = []
    for _ in range(4):
        a = rng.normal(size=(n, 3))
        a /= np.linalg.norm(a, axis=1, keepdims=True)
        p = perms.permutation(rng.integers(0, perms.shape))
        b = np.empty_like(a)
        b[p] = -a
        out += [a, b]
    return [out[k] for k in rng.permutation(len(out))]


def run_old(state, configs, rotations):
    t = time.perf_counter()
    perms = old_translations(state)
    t_group = time.perf_counter() - t
    labels = merge(configs, lambda a, b: old_same(a, b, perms, rotations, 1e-2))
    return t_group, time.perf_counter() - t - t_group, labels


def run_new(state, configs, rotations):
    t = time.perf_counter()
    group = Translations(state)
    t_group = time.perf_counter() - t
    spectra = {id(c): group.spectrum(c) for c in configs}
    labels = merge(configs, lambda a, b: group.same(a, b, rotations, 1e-2, spectra=(spectra[id(a)], spectra[id(b)])))
    return t_group, time.perf_counter() - t - t_group, labels


def bcc(L, a=2.8665):
    return sl.State([[0, 0, 0], [a / 2, a / 2, a / 2]], [26, 26], cell=np.eye(3) * a, pbc=True,
                    moments=[2.2, 2.2]).repeat(L)


def variants(L, rng):
    st = bcc(L)
    keep = np.arange(len(st)) != 7
    yield "vacancy", sl.State(st.positions[keep], st.numbers[keep], cell=st.cell, pbc=True, moments=st.moments[keep])
    yield "Fe-Co random", st.copy(numbers=np.where(rng.random(len(st)) < 0.5, 26, 27))
    yield "noisy (<tol)", st.copy(positions=st.positions + rng.uniform(-2e-4, 2e-4, st.positions.shape))


def row(name, n, order, old, new):
    def fmt(r):
        return "—" if r is None else f"{r[0]:9.3f} {r[1]:9.3f}"

    ratio = "" if old is None else f"{(old[0] + old[1]) / (new[0] + new[1]):8.1f}×"
    print(f"{name:<14} {n:>6} {order:>6}  {fmt(old):>19}  {fmt(new):>19} {ratio}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[4, 6, 8, 10, 12, 16], help="bcc L (N = 2L³)")
    ap.add_argument("--old-max", type=int, default=1024, help="largest N run with the old algorithm")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    for rotations in (False, True):
        print(f"\nspin rotations {'on' if rotations else 'off'}: seconds for the translations, then the merge "
              f"of 8 configurations")
        print(f"{'structure':<14} {'N':>6} {'|T|':>6}  {'old: group   merge':>19}  {'new: group   merge':>19}  old/new")
        last_both = None
        for L in args.sizes:
            st = bcc(L)
            configs = configurations(st, rng)
            new = run_new(st, configs, rotations)
            old = run_old(st, configs, rotations) if len(st) <= args.old_max else None
            if old is not None:
                assert old[2] == new[2], "old and new merges differ"
                last_both = L
            assert len(set(new[2])) == 4
            row("bcc Fe", len(st), Translations(st).order, old, new)
        if last_both is None:
            continue
        for name, st in variants(last_both, rng):
            configs = configurations(st, rng)
            new, old = run_new(st, configs, rotations), run_old(st, configs, rotations)
            assert old[2] == new[2], f"old and new merges differ ({name})"
            row(name, len(st), Translations(st).order, old, new)


if __name__ == "__main__":
    main()
