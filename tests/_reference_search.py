"""The former symmetry merging of ground-state-search minima, kept as the NumPy reference that
``spinlat.translations.Translations`` is tested against (tests/test_search.py) and timed against
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


def cubic_operations(state):
    """The 48 operations of the cube about the origin (signed permutation matrices), each with the
    atom map it induces on the cubic ``state`` (found by brute force): [(R, p)], atom p[i] at R r_i
    (modulo the cell). A reference independent of spglib, for cubic cells with an atom at the
    origin (Mn3Pt: Pt)."""
    import itertools

    cell = np.asarray(state.cell, dtype=float)
    frac = state.positions @ np.linalg.inv(cell)
    ops = []
    for perm in itertools.permutations(range(3)):
        for signs in itertools.product((1.0, -1.0), repeat=3):
            r = np.zeros((3, 3))
            r[np.arange(3), perm] = signs
            q = (state.positions @ r.T) @ np.linalg.inv(cell)
            d = q[:, None, :] - frac[None, :, :]
            d -= np.round(d)
            dist = np.linalg.norm(d @ cell, axis=2)
            p = np.argmin(dist, axis=1)
            assert np.all(dist[np.arange(len(p)), p] < 1e-6) and len(set(p)) == len(p)
            assert np.array_equal(state.numbers[p], state.numbers)
            ops.append((r, p))
    return ops


def reference_symmetries(state, potential, ops, spin_rotations=False, probes=3, rtol=1e-9):
    """The (M, p, sign) of ``ops`` (from :func:`cubic_operations`) that leave the energy of
    ``potential`` unchanged on random spins: M = det(R) R (axial vector; the identity when
    ``spin_rotations``), sign −1 = with time reversal. Unchanged: within ``rtol`` × |E|, far
    above float64 round-off and far below any spin term of the tests (a criterion of its own,
    not spinlat.symmetry's)."""
    rng = np.random.default_rng(7)
    configs = [s / np.linalg.norm(s, axis=1, keepdims=True) for s in rng.normal(size=(probes, len(state), 3))]

    def energy(s):
        return potential.compute(state.copy(spins=s), forces=False, magnetic_forces=False).energy

    e0 = np.array([energy(s) for s in configs])
    limit = rtol * np.max(np.abs(e0)) + 1e-12
    kept = []
    for r, p in ops:
        m = np.eye(3) if spin_rotations else np.linalg.det(r) * r
        for sign in ((1.0,) if spin_rotations else (1.0, -1.0)):
            moved = []
            for s in configs:
                out = np.empty_like(s)
                out[p] = sign * s @ m.T
                moved.append(energy(out))
            if np.max(np.abs(np.array(moved) - e0)) <= limit:
                kept.append((m, p, sign))
    return kept


def reference_same_symmetric(a, b, symmetries, translations, spin_rotations=False, tol=1e-2):
    """Brute force: is ``b`` carried onto ``a`` (every spin within ``tol``) by some element of
    ``symmetries`` (:func:`reference_symmetries`) followed by some permutation of
    ``translations`` (:func:`reference_translations`)?"""
    for m, p, sign in symmetries:
        g = np.empty_like(b)
        g[p] = sign * b @ m.T
        if reference_same(a, g, translations, spin_rotations, tol) if spin_rotations else \
                _signed_same(a, g, translations, tol):
            return True
    return False


def _signed_same(a, g, perms, tol):
    """Some translation of ``perms`` brings ``g`` onto ``a`` without time reversal."""
    return any(np.max(np.linalg.norm(a - g[t], axis=1)) < tol for t in perms)
