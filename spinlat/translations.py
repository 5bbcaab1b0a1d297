"""Pure lattice translations of a structure onto itself, as a group (spinlat.search merges
ground-state minima related by them; :mod:`spinlat.symmetry` adds the crystal's rotations and
mirrors).

:class:`Translations` finds the translations t that carry every atom (modulo the periodic cell)
onto an atom of the same element and moment magnitude, as the finite abelian group
Z_d1 × Z_d2 × Z_d3 (its Smith normal form, :func:`_smith`; Newman, *Integral Matrices*, Academic
Press 1972, ch. II), and compares spin configurations modulo all of them at once by FFT
correlation over the group. :func:`periodic_cell` pads the open directions of films, wires and
clusters so that their translations are those of the periodic directions only.
"""

from __future__ import annotations

import math

import numpy as np

from .errors import InputError
from .keywords import refuse_other_names

def _smith(a):
    """Diagonalise an integer matrix by unimodular row and column operations (Smith normal form
    without the divisibility ordering, which is not needed here).

    Returns ``(d, U, V, Vinv)`` with ``U @ a @ V`` diagonal, its diagonal ``d`` (non-negative,
    min(rows, cols) entries), U and V integer and unimodular, ``Vinv`` = V⁻¹ (all as int64 arrays;
    the arithmetic runs on Python integers, so nothing overflows on the way)."""
    A = [[int(x) for x in row] for row in np.asarray(a)]
    k, c = len(A), len(A[0])
    U = [[int(i == j) for j in range(k)] for i in range(k)]
    V = [[int(i == j) for j in range(c)] for i in range(c)]
    W = [[int(i == j) for j in range(c)] for i in range(c)]  # V⁻¹

    def swap_cols(M, i, j):
        for row in M:
            row[i], row[j] = row[j], row[i]

    def add_col(M, dst, src, q):  # col_dst -= q col_src
        for row in M:
            row[dst] -= q * row[src]

    for t in range(min(k, c)):
        while True:
            nz = [(abs(A[i][j]), i, j) for i in range(t, k) for j in range(t, c) if A[i][j]]
            if not nz:
                break
            _, i, j = min(nz)
            A[t], A[i] = A[i], A[t]
            U[t], U[i] = U[i], U[t]
            if j != t:
                swap_cols(A, t, j)
                swap_cols(V, t, j)
                W[t], W[j] = W[j], W[t]
            p = A[t][t]
            clean = True
            for i in range(t + 1, k):
                q = A[i][t] // p
                if q:
                    A[i] = [x - q * y for x, y in zip(A[i], A[t])]
                    U[i] = [x - q * y for x, y in zip(U[i], U[t])]
                clean &= A[i][t] == 0
            for j in range(t + 1, c):
                q = A[t][j] // p
                if q:
                    add_col(A, j, t, q)
                    add_col(V, j, t, q)
                    W[t] = [x + q * y for x, y in zip(W[t], W[j])]
                clean &= A[t][j] == 0
            if clean:
                break
        if t < k and A[t][t] < 0:
            A[t] = [-x for x in A[t]]
            U[t] = [-x for x in U[t]]
    d = [A[i][i] for i in range(min(k, c))]
    return (np.array(d, dtype=np.int64), np.array(U, dtype=np.int64), np.array(V, dtype=np.int64),
            np.array(W, dtype=np.int64))


def periodic_cell(state):
    """The state's cell ((3, 3) Å, rows) with every open direction replaced by a vector orthogonal to the periodic
    ones and longer than the atoms' extent plus 10 Å: translations of the resulting fully
    periodic structure are exactly those of the original along its periodic directions."""
    cell = np.array(state.cell, dtype=float)
    pbc = np.asarray(state.pbc, dtype=bool)
    if pbc.all():
        return cell
    periodic = cell[pbc]
    if len(periodic):
        q, _ = np.linalg.qr(periodic.T, mode="complete")
        normals = q[:, len(periodic):].T
    else:
        normals = np.eye(3)
    for row, k in zip(normals, np.flatnonzero(~pbc)):
        proj = state.positions @ row
        extent = float(np.ptp(proj)) if len(proj) else 0.0
        cell[k] = row * (extent + 10.0)
    return cell


@refuse_other_names()
class Translations:
    """Pure translations of a structure onto itself, modulo its cell, as a group Z_d1 × Z_d2 × Z_d3.

    A translation t is a symmetry when every atom moved by t (modulo the periodic cell vectors)
    lands within ``tol`` Å of an atom of the same element and moment magnitude. For a supercell
    these are the lattice vectors of the structure's primitive cell (modulo the supercell); along
    open directions nothing is periodic, so a slab keeps its in-plane translations and a cluster
    only the identity.

    Attributes
    ----------
    order : |T|, the number of translations (1 = identity only).
    shape : (d1, d2, d3), the cyclic factors of T (Smith normal form); prod(shape) = order.
    sites : (N,) orbit of each atom under T (atoms related by a translation share a site).
    coords : (N, 3) integer group coordinates: translation τ ∈ Z_d1×Z_d2×Z_d3 moves atom
        (sites[i], coords[i]) onto the atom (sites[i], coords[i] + τ mod shape).
    gens : permutations generating T (atom p[i] at r_i + t).

    ``identity_only``: the trivial group, whatever the structure (a potential that is not
    translation invariant, :class:`~spinlat.symmetry.SpinSymmetry`).
    """

    #: neighbours in the translation-invariant fingerprint of each atom
    FINGERPRINT = 12

    def __init__(self, state, tol=1e-3, identity_only=False):
        from scipy.spatial import cKDTree

        if not tol > 0:
            raise InputError(f"translation tolerance must be positive (Å), got {tol!r}")
        self.tol = float(tol)
        n = len(state)
        self.n_atoms = n
        self._cell = periodic_cell(state)
        inv = np.linalg.inv(self._cell)
        frac = state.positions @ inv
        frac -= np.floor(frac)
        frac[frac >= 1.0] = 0.0
        self._frac = frac
        key = np.column_stack([state.numbers.astype(float), np.round(state.moments, 6)])
        self._types = np.unique(key, axis=0, return_inverse=True)[1].reshape(-1) if n else np.zeros(0, int)
        # a Cartesian displacement of tol moves fractional coordinates by at most ftol
        self._ftol = self.tol * float(np.linalg.norm(inv, 2))
        gens = []
        self._tree = cKDTree(frac, boxsize=1.0) if n else None
        if n > 1 and not identity_only:  # (identity_only: the trivial group, for a potential without translations)
            gens = self._generators()
        self._group(gens)

    @property
    def cell(self):
        """(3, 3) Å: the periodic cell the fractional coordinates refer to
        (:func:`periodic_cell`: open directions padded)."""
        return self._cell

    @property
    def fractional_positions(self):
        """(N, 3) fractional coordinates of the atoms in :attr:`cell`, wrapped into [0, 1)."""
        return self._frac

    @property
    def site_types(self):
        """(N,) int from 0: atoms of one (element, moment magnitude) share a type."""
        return self._types

    def site_permutation(self, points):
        """The atoms at fractional ``points`` (N, 3), one point per atom i (e.g. the image of atom
        i under a space-group operation): indices j (N,) with atom j of atom i's type within
        ``tol`` Å (Cartesian, minimum image) of point i, or None when some point has no such
        atom or two points share one."""
        p = self._match(np.asarray(points, dtype=float), np.arange(self.n_atoms))
        if p is None or len(np.unique(p)) != self.n_atoms:
            return None
        return p

    # -------------------------------------------------------------- finding the group
    def _image(self, shift, atoms):
        """Indices of the atoms at frac[atoms] + shift (same type, within tol Å), or None."""
        return self._match(self._frac[atoms] + shift, atoms)

    def _match(self, q, atoms):
        """Indices of the atoms at the fractional points q (one per atom of ``atoms``, of its type,
        within tol Å), or None."""
        n = self.n_atoms
        q = q - np.floor(q)
        q[q >= 1.0] = 0.0
        k = min(4, n)
        _, jj = self._tree.query(q, k=k, distance_upper_bound=self._ftol * (1 + 1e-9) + 1e-12)
        jj = jj.reshape(len(q), k)
        found = jj < n
        jc = np.where(found, jj, 0)
        d = self._frac[jc] - q[:, None, :]
        d -= np.round(d)
        dist = np.linalg.norm(d @ self._cell, axis=2)
        dist[~found] = np.inf
        best = np.argmin(dist, axis=1)
        rows = np.arange(len(q))
        j = jc[rows, best]
        if not np.all(dist[rows, best] < self.tol) or not np.array_equal(self._types[j], self._types[atoms]):
            return None
        return j

    def _permutation_of(self, shift):
        """Permutation p (atom p[i] sits at r_i + t) of the translation ``shift`` (fractional), or
        None when it is not a symmetry. A few atoms are tried first: most non-symmetries fail there."""
        n = self.n_atoms
        probe = self._probe
        if self._image(shift, probe) is None:
            return None
        p = self._image(shift, np.arange(n))
        if p is None or len(np.unique(p)) != n:
            return None
        return p

    def _generators(self):
        """Permutations generating T. Candidates are the translations from a reference atom a0 to
        atoms with the same type and fingerprint (sorted distances to the nearest neighbours in the
        fractional metric, which translations preserve exactly); a0 is taken from the rarest
        fingerprint. Candidates are tried shortest first; each accepted one closes the known
        group, each rejected one rules out its whole coset."""
        n, ftol = self.n_atoms, self._ftol
        self._probe = np.random.default_rng(0).permutation(n)[:32]
        kfp = min(self.FINGERPRINT, n - 1)
        dist, _ = self._tree.query(self._frac, k=kfp + 1)
        fp = dist[:, 1:]
        grid = 8.0 * ftol + 1e-12
        keys = np.column_stack([self._types, np.floor(fp / grid)])
        _, cls, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
        cls = cls.reshape(-1)
        a0 = int(np.flatnonzero(counts[cls] == counts.min())[0])
        same = (self._types == self._types[a0]) & (np.max(np.abs(fp - fp[a0]), axis=1) <= 4.0 * ftol + 1e-12)
        cand = np.flatnonzero(same)
        d = self._frac[cand] - self._frac[a0]
        d -= np.round(d)
        cand = cand[np.argsort(np.linalg.norm(d @ self._cell, axis=1), kind="stable")]
        valid = np.zeros(n, dtype=bool)
        invalid = np.zeros(n, dtype=bool)
        valid[a0] = True
        gens = []
        for k in cand:
            if valid[k] or invalid[k]:
                continue
            shift = self._frac[k] - self._frac[a0]
            p = self._permutation_of(shift - np.round(shift))
            if p is None:
                invalid[k] = True
                _close(invalid, gens, np.array([k]))
            else:
                gens.append(p)
                _close(valid, gens, np.flatnonzero(valid))
                _close(invalid, gens, np.flatnonzero(invalid))
        self._a0 = a0
        return gens

    def _group(self, gens):
        """Orbits, the Smith normal form of T and every atom's group coordinates."""
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components

        n = self.n_atoms
        self.gens = gens
        if not gens:
            self.shape = (1, 1, 1)
            self.sites = np.arange(n)
            self.coords = np.zeros((n, 3), dtype=np.int64)
            self._index = np.arange(n).reshape(n, 1, 1, 1)
            return
        # translation vectors of the generators as exact fractions: order o_j, o_j · f_j integer
        a0 = self._a0
        orders, fracs = [], []
        for p in gens:
            o, k = 1, int(p[a0])
            while k != a0:
                k, o = int(p[k]), o + 1
            f = self._frac[p[a0]] - self._frac[a0]
            f -= np.round(f)
            of = o * f
            if np.max(np.abs(of - np.round(of))) > 0.25:  # pragma: no cover - tol far too large for the cell
                raise InputError(f"translation tolerance {self.tol} Å is too large for this cell")
            orders.append(o)
            fracs.append(np.round(of).astype(np.int64))
        big = math.lcm(*orders)
        u = np.array([f * (big // o) for f, o in zip(fracs, orders)], dtype=np.int64) % big
        # group elements of every atom relative to the first atom of its orbit, by breadth-first
        # search over the generators (exact integer arithmetic, vectors in (Z/big)³)
        rows = np.concatenate([np.arange(n)] * len(gens))
        cols = np.concatenate(gens)
        n_sites, sites = connected_components(coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n)),
                                              directed=True, connection="weak")
        _, reps = np.unique(sites, return_index=True)
        x = np.zeros((n, 3), dtype=np.int64)
        seen = np.zeros(n, dtype=bool)
        seen[reps] = True
        front = reps
        while front.size:
            new = []
            for p, uj in zip(gens, u):
                tgt = p[front]
                fresh = ~seen[tgt]
                tgt, src = tgt[fresh], front[fresh]
                tgt, first = np.unique(tgt, return_index=True)
                x[tgt] = (x[src[first]] + uj) % big
                seen[tgt] = True
                new.append(tgt)
            front = np.concatenate(new)
        # lattice Λ ⊂ Z³ spanned by the generators and big·Z³; T ≅ Λ / big·Z³
        d1, _, v1, _ = _smith(np.vstack([u, big * np.eye(3, dtype=np.int64)]))
        c = x @ v1
        if np.any(c % d1):  # pragma: no cover - excluded by construction
            raise RuntimeError("translation group: atom coordinates outside the lattice")
        c //= d1
        m = (big * v1) // d1  # big · B⁻¹, B = diag(d1) V1⁻¹ the basis of Λ
        d2, _, v2, _ = _smith(m)
        shape = tuple(int(v) for v in d2)
        g = (c @ v2) % d2
        index = np.full((n_sites,) + shape, -1, dtype=np.int64)
        index[sites, g[:, 0], g[:, 1], g[:, 2]] = np.arange(n)
        order = int(np.prod(shape))
        if np.any(index < 0) or n_sites * order != n:  # pragma: no cover - excluded by construction
            raise RuntimeError("translation group: orbits do not fill the group")
        self.shape, self.sites, self.coords, self._index = shape, sites.astype(np.int64), g, index

    # ---------------------------------------------------------------------- using it
    @property
    def order(self) -> int:
        return int(np.prod(self.shape))

    def permutation(self, tau) -> np.ndarray:
        """Permutation p (N,) of the translation with group coordinates ``tau``: atom p[i] sits at
        r_i + t."""
        g = (self.coords + np.asarray(tau, dtype=np.int64)) % np.array(self.shape)
        return self._index[self.sites, g[:, 0], g[:, 1], g[:, 2]]

    def permutations(self) -> list:
        """All |T| permutations (O(N·|T|) memory: for small structures and tests)."""
        return [self.permutation(tau) for tau in np.ndindex(*self.shape)]

    def spectrum(self, spins):
        """Fourier transform over the group of spin vectors (N, 3): the input of :meth:`same`."""
        spins = np.asarray(spins, dtype=float)
        if spins.shape != (self.n_atoms, 3):
            raise InputError(f"spins must be ({self.n_atoms}, 3), got {spins.shape}")
        a = np.zeros(self._index.shape + (3,))
        a[self.sites, self.coords[:, 0], self.coords[:, 1], self.coords[:, 2]] = spins
        return np.fft.rfftn(a, axes=(1, 2, 3))

    def same(self, a, b, spin_rotations=False, tol=1e-3, spectra=None, time_reversal=True) -> bool:
        """True when spin configurations ``a`` and ``b`` ((N,3) unit vectors, zero rows for
        non-magnetic atoms) are equal up to a translation, time reversal (unless
        ``time_reversal`` is False) and, if ``spin_rotations``, a global spin rotation (any
        orthogonal map, time reversal included): some combination brings every spin of ``b``
        within ``tol`` (an angle-like distance, rad) of ``a``. ``spectra``: the :meth:`spectrum`
        of a and b when already computed.

        The overlaps Σ_i a_i ⊗ b_{t(i)} of all translations t come from one FFT correlation;
        only translations whose summed squared deviation could be below N·tol² are checked
        spin by spin."""
        return self.matches(a, b, spin_rotations, tol, spectra, time_reversal, first=True) > 0

    def matches(self, a, b, spin_rotations=False, tol=1e-3, spectra=None, time_reversal=True, first=False) -> int:
        """How many of the translations t (each with time reversal, counted apart, when
        ``time_reversal``; with the best orthogonal spin map when ``spin_rotations``) bring every
        spin of ``b`` within ``tol`` of ``a`` (arguments as :meth:`same`; ``first``: stop at the
        first, returning 0 or 1). A summed squared deviation below tol² needs no spin-by-spin
        check (no single spin can then be further than tol)."""
        a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
        fa, fb = spectra if spectra is not None else (self.spectrum(a), self.spectrum(b))
        n = self.n_atoms
        if n == 0:
            return 1
        norms = float(np.sum(a * a) + np.sum(b * b))
        if spin_rotations:  # best orthogonal map (rotation, or rotation × time reversal) per translation
            cov = np.fft.irfftn(np.einsum("s...c,s...e->...ce", fa.conj(), fb), s=self.shape, axes=(0, 1, 2))
            scores = [(np.linalg.svd(cov.reshape(-1, 3, 3), compute_uv=False).sum(axis=1), None)]
        else:
            corr = np.fft.irfftn(np.einsum("s...c,s...c->...", fa.conj(), fb), s=self.shape, axes=(0, 1, 2))
            corr = corr.reshape(-1)
            scores = [(corr, 1.0)] + ([(-corr, -1.0)] if time_reversal else [])
        limit = n * tol * tol + 1e-9 * max(norms, 1.0)
        count = 0
        for score, sign in scores:
            residual = norms - 2.0 * score
            sure = residual <= tol * tol * (1.0 - 1e-9)
            if first and sure.any():
                return 1
            count += int(sure.sum())
            maybe = np.flatnonzero((residual <= limit) & ~sure)
            for flat in maybe[np.argsort(residual[maybe], kind="stable")]:
                bp = b[self.permutation(np.unravel_index(flat, self.shape))]
                if _same_aligned(a, bp, spin_rotations, tol, (sign,)):
                    if first:
                        return 1
                    count += 1
        return count


def _close(mask, gens, start):
    """Extend the boolean ``mask`` (in place) by the images of ``start`` under the group
    generated by the permutations ``gens``."""
    front = np.asarray(start, dtype=np.int64)
    while front.size and gens:
        new = []
        for p in gens:
            t = p[front]
            t = t[~mask[t]]
            mask[t] = True
            new.append(t)
        front = np.unique(np.concatenate(new))


def _same_aligned(a, bp, spin_rotations, tol, signs=(1.0, -1.0)):
    """``a`` and the already translated ``bp`` agree spin by spin within ``tol`` after one of
    ``signs`` (−1: time reversal) or, if ``spin_rotations``, the best orthogonal map (Kabsch)."""
    if spin_rotations:
        u, _, vt = np.linalg.svd(bp.T @ a)
        r = u @ vt
        return bool(np.max(np.linalg.norm(a @ r.T - bp, axis=1)) < tol)
    return any(bool(np.max(np.linalg.norm(sign * a - bp, axis=1)) < tol) for sign in signs)
