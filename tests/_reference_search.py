"""The former symmetry merging of ground-state-search minima, kept as the NumPy reference that
``spinlat.search.Translations`` is tested against (tests/test_search.py) and timed against
(benchmarks/bench_merge.py): O(N³) to find the translations, O(N·|T|) per comparison."""

import numpy as np


def reference_translations(state, tol=1e-3):
    """The former O(N³) search (kept as the NumPy reference): permutations p with atom p[i] at
    r_i + t for every t = r_k − r_0 that maps the periodic structure onto itself."""
    if not state.pbc.all():
        return [np.arange(len(state))]
    frac = state.positions @ np.linalg.inv(state.cell)
    perms = []
    for k in np.flatnonzero(state.numbers == state.numbers[0]):
        d = (frac + frac[k] - frac[0])[:, None, :] - frac[None, :, :]
        d -= np.round(d)
        dist = np.linalg.norm(d @ state.cell, axis=2)
        p = np.argmin(dist, axis=1)
        if np.all(dist[np.arange(len(state)), p] < tol) and np.all(state.numbers[p] == state.numbers) and \
                len(np.unique(p)) == len(p):
            perms.append(p)
    return perms


def reference_same(a, b, perms, spin_rotations=False, tol=1e-3):
    """The former O(N·|T|) comparison, translation by translation (NumPy reference)."""
    for p in perms:
        bp = b[p]
        if spin_rotations:
            u, _, vt = np.linalg.svd(bp.T @ a)
            if np.max(np.linalg.norm(a @ (u @ vt).T - bp, axis=1)) < tol:
                return True
        elif any(np.max(np.linalg.norm(s * a - bp, axis=1)) < tol for s in (1.0, -1.0)):
            return True
    return False
