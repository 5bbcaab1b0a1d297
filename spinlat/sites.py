"""Atoms of a state identified with the sites of a template crystal, and followed as they move.

A *template* is a reference structure: a cell, periodic directions and T sites (positions,
atomic numbers). A state *matches* the template when its periodic cell is an integer supercell of
the template's (up to a small homogeneous strain) and every atom sits near a template site of its
species, up to one global translation, each site of the supercell taken by exactly one atom.
The match gives every atom its template site ``site[a]`` and its lattice coordinates
``lattice[a]`` (integers along periodic directions, in units of the template cell), which is what
a model defined on the template (e.g. :class:`~spinlat.potentials.Heisenberg` pairs) needs.

Rules (what makes the result independent of where the crystal sits):

- Only periodic directions have lattice vectors. Cell vectors along non-periodic directions (a
  vacuum box, a zero vector as ASE writes for 2D systems, no cell at all for a cluster) are
  never used: along them the template's and the state's coordinates are Cartesian distances along
  unit vectors orthogonal to the periodic ones (the template's *completed basis*).
- Fresh match: if every atom is within ``tolerance`` of a site without any translation (the state
  sits in the template's own frame, e.g. built with ``State.repeat`` of the template), that
  assignment is taken: it is independent of the atom order. Otherwise the global translation is
  found: atom 0 is put on each template site of its species in increasing site order, the
  translation is refined with the median residual of a sample of atoms, and the first translation
  under which every atom fits is taken. The result is exactly invariant under rigid translation,
  wrapping into the cell and a change of vacuum; it is independent of the atom order as well
  unless the structure maps onto itself under a translation that the model does not share
  (same-species sites that only the model distinguishes, e.g. the two sites of an AFM conventional
  cell): then atom 0 decides, and :meth:`SiteTemplate.structure_translations` lets the owner
  detect and report that case.
- Following (:meth:`SiteMap.follows`): a match is kept for a later state, without matching again,
  while the state has the same atom count, atomic numbers and pbc, its periodic cell is the same
  integer supercell (within the strain tolerance), and every atom moved by less than
  ``tolerance`` relative to atom 0 since the previous state seen (in template units, minimum image
  along periodic directions). So the identities follow the atoms through any dynamics (drift of the
  centre of mass, diffusion of one atom far from its site, wrapping), and a rigidly moved copy of
  the same state keeps them too. A state whose atoms were reordered fails the test (an atom would
  have to move onto another atom's place, farther than ``tolerance``) and is matched afresh.

- Orientation: a fully periodic state may also be the template crystal turned by a rotation Q
  (r_state = Q r_template; :meth:`SiteTemplate.oriented_supercell` finds it from the bonds around
  atom 0 when the template's own orientation does not fit); matching then runs in fractional
  coordinates, which do not see Q, and ``SiteMap.rotation`` carries it for the owner (whose
  vector and tensor quantities live in the template's frame).
The default ``tolerance`` is 0.4 × the smallest distance between template sites: each atom is then
closer to its own site than to any other. Errors: :class:`~spinlat.errors.CellError` when the cell
or pbc cannot be a supercell of the template, :class:`~spinlat.errors.InputError` when atom counts,
species or positions do not fit; the message names the atom and the distance.
"""

from __future__ import annotations

import numba
import numpy as np

from .errors import CellError, InputError

# --------------------------------------------------------------------------------- integer lattices


def hermite_normal_form(m: np.ndarray) -> np.ndarray:
    """Upper-triangular H with positive diagonal whose rows span the same integer lattice as the
    rows of the integer matrix ``m`` (3, 3). Raises :class:`CellError` if ``m`` is singular."""
    h = [[int(x) for x in row] for row in m]
    n = 3
    for c in range(n):
        # Euclid on column c among rows c..2 until only row c is non-zero there
        while True:
            nz = [r for r in range(c, n) if h[r][c] != 0]
            if not nz:
                raise CellError("singular cell matrix")
            piv = min(nz, key=lambda r: abs(h[r][c]))
            h[c], h[piv] = h[piv], h[c]
            done = True
            for r in range(c + 1, n):
                if h[r][c]:
                    q = h[r][c] // h[c][c]
                    h[r] = [a - q * b for a, b in zip(h[r], h[c])]
                    if h[r][c]:
                        done = False
            if done:
                break
        if h[c][c] < 0:
            h[c] = [-a for a in h[c]]
    return np.array(h, dtype=np.int64)


def reduce_lattice(n: np.ndarray, hnf: np.ndarray) -> np.ndarray:
    """Integer key in [0, det) of lattice vectors ``n`` (K, 3) modulo the lattice of ``hnf``'s rows."""
    n = n.copy()
    for k in range(3):
        q = np.floor_divide(n[:, k], hnf[k, k])
        n -= q[:, None] * hnf[k][None, :]
    return (n[:, 0] * hnf[1, 1] + n[:, 1]) * hnf[2, 2] + n[:, 2]


def completed_basis(cell, pbc, normals=None) -> np.ndarray:
    """(3, 3) rows: ``cell``'s rows along periodic directions, and along the non-periodic ones
    ``normals`` (rows, in order) or, by default, unit vectors orthogonal to the periodic rows and to
    each other (for two periodic rows a, b: (a × b)/|a × b|). Raises :class:`CellError` if the
    periodic rows are zero or linearly dependent."""
    cell = np.asarray(cell, dtype=np.float64)
    pbc = np.asarray(pbc, dtype=bool)
    per = cell[pbc]
    if len(per):
        lengths = np.linalg.norm(per, axis=1)
        sv = np.linalg.svd(per, compute_uv=False)
        if np.any(lengths == 0) or sv.min() <= 1e-8 * max(1.0, float(lengths.max())):
            raise CellError(f"the cell vectors along the periodic directions {np.flatnonzero(pbc).tolist()} "
                            f"are zero or linearly dependent: {np.round(per, 6).tolist()}")
    out = cell.copy()
    if normals is None:
        if len(per) == 2:
            n = np.cross(per[0], per[1])
            normals = (n / np.linalg.norm(n))[None, :]
        elif len(per) == 0:
            normals = np.eye(3)
        else:
            q, _ = np.linalg.qr(per.T, mode="complete")
            normals = q[:, len(per):].T
    out[~pbc] = normals
    return out


def _kabsch(src, dst):
    """Proper rotation Q (3, 3) that best maps the rows of ``src`` onto those of ``dst`` (K, 3),
    dst_k ≈ Q src_k, by least squares (Kabsch, Acta Cryst. A 32, 922 (1976)); for two vectors
    their cross product is added so that the rotation is fixed."""
    src, dst = np.asarray(src, dtype=np.float64), np.asarray(dst, dtype=np.float64)
    if len(src) == 2:
        src = np.vstack([src, np.cross(src[0], src[1]) / max(np.linalg.norm(src[0]), 1e-300)])
        dst = np.vstack([dst, np.cross(dst[0], dst[1]) / max(np.linalg.norm(dst[0]), 1e-300)])
    u, _, vt = np.linalg.svd(dst.T @ src)
    d = np.sign(np.linalg.det(u @ vt)) or 1.0
    return u @ np.diag([1.0, 1.0, d]) @ vt


def _refine_rotation(q, bt, zt, bs, zs, tol):
    """(``q`` refitted by :func:`_kabsch` on the state bonds ``bs`` paired with template bonds
    ``bt`` (rows), whether every state bond paired up): a state bond pairs up when, rotated back by
    ``q``, it lies within ``tol`` Å of a template bond of the same species. A rotation that leaves
    a bond of atom 0 without a partner does not put the crystal on the template (e.g. a
    coincidence-site rotation, which maps the supercell's lattice, but not the sites, into the
    template's)."""
    back = bs @ q  # Q⁻¹ b as rows
    d = np.linalg.norm(back[:, None, :] - bt[None, :, :], axis=2)
    d[zs[:, None] != zt[None, :]] = np.inf
    near = np.argmin(d, axis=1)
    ok = d[np.arange(len(bs)), near] <= tol
    if not ok.all():
        return q, False
    return _kabsch(bt[near], bs), True


# --------------------------------------------------------------------------------- following kernel


@numba.njit(cache=True)
def _follow_kernel(positions, numbers, pbc, cell, ref_numbers, ref_pbc, ref_cell, ref_positions, to_frac, basis,
                   ref, limit2, shortcut):
    """1 if the atomic numbers, pbc and cell equal the reference ones and every atom moved by
    less than sqrt(limit2) Å relative to atom 0 since the reference (then ``ref_positions`` ←
    positions, ``ref`` ← fractional positions); else the references are untouched and the result
    is −1 (numbers or pbc differ), −2 (cell differs) or 0 (an atom moved too far). Fractional
    coordinates are those of the state's own (completed) cell, ``to_frac`` its inverse, so the
    minimum image is taken over the state's periodic lattice; ``basis`` turns them into Å with
    the strain removed. With ``shortcut``, unmoved positions (the common case between two position
    updates of an integrator) cost one comparison pass."""
    n = positions.shape[0]
    for k in range(3):
        if pbc[k] != ref_pbc[k]:
            return -1
    for a in range(3):
        for k in range(3):
            if cell[a, k] != ref_cell[a, k]:
                return -2
    same = shortcut
    for a in range(n):
        if numbers[a] != ref_numbers[a]:
            return -1
        if same and (positions[a, 0] != ref_positions[a, 0] or positions[a, 1] != ref_positions[a, 1]
                     or positions[a, 2] != ref_positions[a, 2]):
            same = False
    if same:
        return 1
    d0 = np.empty(3)
    for k in range(3):
        d0[k] = (positions[0, 0] * to_frac[0, k] + positions[0, 1] * to_frac[1, k]
                 + positions[0, 2] * to_frac[2, k]) - ref[0, k]
    e = np.empty(3)
    for a in range(n):
        for k in range(3):
            f = positions[a, 0] * to_frac[0, k] + positions[a, 1] * to_frac[1, k] + positions[a, 2] * to_frac[2, k]
            x = f - ref[a, k] - d0[k]
            if ref_pbc[k]:
                x -= np.floor(x + 0.5)
            e[k] = x
        dd = 0.0
        for k in range(3):
            c = e[0] * basis[0, k] + e[1] * basis[1, k] + e[2] * basis[2, k]
            dd += c * c
        if dd > limit2:
            return 0
    for a in range(n):
        for k in range(3):
            ref_positions[a, k] = positions[a, k]
            ref[a, k] = positions[a, 0] * to_frac[0, k] + positions[a, 1] * to_frac[1, k] \
                + positions[a, 2] * to_frac[2, k]
    return 1


# --------------------------------------------------------------------------------- template


class SiteMap:
    """The atoms of one state identified with template sites (see the module docstring).

    Attributes: ``site`` (N,) template site of each atom; ``lattice`` (N, 3) integer lattice
    coordinates (template cell units, zero along non-periodic directions): atom a sits at
    template site ``site[a]`` wrapped into the template cell, plus ``lattice[a]``, plus the global
    ``translation`` (Å); ``hnf`` the Hermite normal form of the supercell matrix and ``ncell`` its
    determinant (number of template cells); ``anchored`` True when the translation was decided by
    atom 0 (the state did not sit in the template's frame); ``rotation`` None, or the rotation Q
    (3, 3) with r_state = Q r_template when the state is the template crystal turned
    (:meth:`SiteTemplate.oriented_supercell`; ``translation`` is then in the template's frame);
    ``rotation_choices`` the number of distinct rotations that fit (more than one when the
    lattice's symmetry makes orientations indistinguishable by positions; the smallest was taken)."""

    __slots__ = ("template", "n", "numbers", "pbc", "cell", "mint", "to_frac", "metric", "positions", "ref",
                 "site", "lattice", "hnf", "ncell", "translation", "anchored", "rotation", "rotation_choices")

    def follows(self, state) -> bool:
        """True if ``state`` is a continuation of the state last matched or followed (module
        docstring); then the identities are kept and ``state`` becomes the reference. One O(N)
        pass (numba)."""
        if len(state) != self.n:
            return False
        t = self.template
        pos = np.ascontiguousarray(state.positions, dtype=np.float64)
        cell = np.ascontiguousarray(state.cell, dtype=np.float64)
        code = _follow_kernel(pos, state.numbers, state.pbc, cell, self.numbers, self.pbc, self.cell, self.positions,
                              self.to_frac, self.metric, self.ref, t.tolerance ** 2, True)
        if code != -2:
            return code == 1
        try:  # a new cell: still the same supercell (strain within tolerance)?
            mint, to_frac, rotation = t.oriented_supercell(state)
        except CellError:
            return False
        if not np.array_equal(mint, self.mint) or (rotation is None) != (self.rotation is None) or (
                rotation is not None and np.max(np.abs(rotation - self.rotation)) > 1e-9):
            return False
        if _follow_kernel(pos, state.numbers, state.pbc, cell, self.numbers, self.pbc, cell, self.positions, to_frac,
                          self.metric, self.ref, t.tolerance ** 2, False) != 1:
            return False
        self.cell, self.to_frac = cell.copy(), to_frac
        return True


class SiteTemplate:
    """Reference sites that states are matched to (module docstring).

    Parameters
    ----------
    cell : (3, 3) rows, Å; only the rows along periodic directions are used.
    positions : (T, 3) Cartesian site positions, Å.
    numbers : (T,) atomic numbers.
    pbc : (3,) periodic directions.
    strain_tolerance : largest homogeneous strain (max |ε_ab|) between a state's periodic cell and
        an integer supercell of the template's.
    tolerance : largest distance (Å) of an atom from its site in a fresh match, and largest move
        (relative to atom 0) between two states that are followed; default 0.4 × the smallest
        distance between sites (1 Å for a single-site cluster), at most 0.49 × the smallest
        height of the periodic cell.
    name : what the template belongs to, for error messages.
    """

    def __init__(self, cell, positions, numbers, pbc, strain_tolerance=0.05, tolerance=None,
                 name="template"):
        self.pbc = np.array(np.broadcast_to(np.asarray(pbc, dtype=bool), (3,)))
        self.cell = np.asarray(cell, dtype=np.float64)
        self.basis = completed_basis(self.cell, self.pbc)
        self.positions = np.asarray(positions, dtype=np.float64)
        self.numbers = np.asarray(numbers, dtype=np.int64)
        self.name = name
        self.strain_tolerance = float(strain_tolerance)
        self._inv_basis = np.linalg.inv(self.basis)
        frac = self.positions @ self._inv_basis
        #: integer offset of each site from its wrapped copy (periodic axes), and the wrapped sites
        self.offset = np.where(self.pbc, np.floor(frac), 0.0).astype(np.int64)
        self.frac0 = frac - self.offset
        self._tree = None
        heights = 1.0 / np.linalg.norm(self._inv_basis, axis=0)[self.pbc]
        self.min_separation = self._min_separation()
        if self.min_separation < 1e-3:
            raise InputError(f"{name}: two sites coincide (closest pair {self.min_separation:.2g} Å apart)")
        if tolerance is None:
            tolerance = 0.4 * self.min_separation if np.isfinite(self.min_separation) else 1.0
            if len(heights):
                tolerance = min(tolerance, 0.49 * float(heights.min()))
        if not tolerance > 0:
            raise InputError(f"{name}: position tolerance must be positive (Å), got {tolerance}")
        self.tolerance = float(tolerance)
        if len(heights) and self.tolerance >= 0.5 * heights.min():
            raise InputError(f"{name}: position tolerance {self.tolerance:.3g} Å must be below half the "
                             f"smallest height of the periodic cell ({heights.min():.3g} Å)")

    # ----------------------------------------------------------------- geometry
    def _min_separation(self) -> float:
        """Smallest distance (Å) between two sites, periodic images included (inf for one site
        without periodic directions)."""
        from .neighbors import point_pairs

        if len(self.positions) < 2 and not self.pbc.any():
            return float("inf")
        scale = max(float(np.abs(self.basis[self.pbc]).max(initial=0.0)), 1.0)
        cutoff = 1.0
        while True:
            _, _, _, d = point_pairs(self.positions, self.basis, self.pbc, cutoff)
            if len(d):
                return float(d.min())
            if cutoff > 10 * scale + 1e3:  # pragma: no cover - sites always have a neighbour by then
                return float("inf")
            cutoff *= 2.0

    def _images(self):
        """KD-tree over the wrapped sites and their images shifted by −1, 0, 1 along periodic
        axes (enough for points within half a cell height of a site), with site index and shift."""
        if self._tree is None:
            from scipy.spatial import cKDTree

            ranges = [(-1, 0, 1) if p else (0,) for p in self.pbc]
            shifts = np.array(np.meshgrid(*ranges, indexing="ij")).reshape(3, -1).T
            pts = (self.frac0[None, :, :] + shifts[:, None, :]).reshape(-1, 3) @ self.basis
            site = np.tile(np.arange(len(self.frac0)), len(shifts))
            self._tree = (cKDTree(pts), site, np.repeat(shifts, len(self.frac0), axis=0).astype(np.int64))
        return self._tree

    def nearest(self, g):
        """Nearest site of fractional points ``g`` (K, 3) (template units): (distance Å, site,
        lattice coordinates (K, 3) int, residual g − (wrapped site + lattice) in template units)."""
        tree, site, shift = self._images()
        floor = np.where(self.pbc, np.floor(g), 0.0)
        dist, idx = tree.query((g - floor) @ self.basis)
        k = site[idx]
        lattice = floor.astype(np.int64) + shift[idx]
        return dist, k, lattice, g - self.frac0[k] - lattice

    def supercell(self, state):
        """(M, to_frac) of :meth:`oriented_supercell` (without the rotation)."""
        return self._oriented(state)[:2]

    def oriented_supercell(self, state):
        """(M, to_frac, rotation) for ``state``: the integer matrix M (3, 3) with state periodic
        cell ≈ M · template cell (identity rows along non-periodic axes), up to a rotation, the
        (3, 3) inverse of the state's completed cell, taking Cartesian positions to the state's
        fractional coordinates (``@ M`` then gives template units with the strain and rotation
        removed), and the rotation Q (3, 3), r_state = Q r_template (column vectors), or None
        when the state has the template's orientation.

        The template's orientation is tried first: M = round(cell · template cell⁻¹), the
        deviation counted as strain (small rotations within ``strain_tolerance`` included, as
        before rotations were matched). If that fails and every direction is periodic, the state
        may be the template crystal turned (e.g. an ASE cubic cell against the primitive cell of a
        TB2J file, in the DFT code's own orientation): rotations are proposed by aligning the
        bonds around atom 0 with those around each template site of its species (two
        non-collinear bonds, Kabsch, refined on all bonds within the shell), M is the rounded
        cell in the rotated frame, and the polar decomposition of the remaining deformation gives
        the strain (symmetric part) and the exact rotation; of the proper rotations that fit with
        the least strain (other lattice vectors of similar lengths may fit a loose tolerance with a
        percent or more of strain), the one by the smallest angle is taken (symmetry-equivalent orientations of the lattice give
        the same sites; for anisotropic exchange the owner rotates its tensors by it).

        Raises :class:`CellError` if the pbc differ or the cell is not a supercell in any
        orientation within the strain tolerance; the message gives the volume per template cell
        against the template's (a different lattice constant shows there)."""
        return self._oriented(state)[:3]

    def _oriented(self, state):
        """:meth:`oriented_supercell`'s (M, to_frac, rotation) and the number of distinct
        rotations that fit (1 without a rotation)."""
        if not np.array_equal(state.pbc, self.pbc):
            raise CellError(f"state pbc {state.pbc.tolist()} differs from the {self.name}'s {self.pbc.tolist()}")
        cs = completed_basis(state.cell, self.pbc, normals=self.basis[~self.pbc])
        mf = cs @ self._inv_basis
        mint = np.round(mf).astype(np.int64)
        integral = abs(round(np.linalg.det(mint))) >= 1 and np.max(np.abs(mf - mint)) <= 0.25
        if integral:
            strain = np.max(np.abs(np.linalg.solve(mint @ self.basis, cs) - np.eye(3)))
            if strain <= self.strain_tolerance:
                return mint, np.linalg.inv(cs), None, 1
        rotated = self._rotated_supercell(state, cs) if self.pbc.all() else None
        if rotated is not None:
            return rotated
        if integral:
            raise CellError(f"state cell is a supercell of the {self.name} strained by {strain:.3g}, "
                            f"more than strain_tolerance={self.strain_tolerance}{self._volume_note(state, cs)}")
        how = " in any orientation" if self.pbc.all() else ""
        raise CellError(f"state is not a supercell of the {self.name}: its periodic cell vectors are not "
                        f"integer combinations of the template's{how} (cell matrix {np.round(mf, 3).tolist()})"
                        f"{self._volume_note(state, cs)}")

    def _volume_note(self, state, cs):
        """Text comparing the state's volume per template cell (N/T cells) with the template's."""
        if not self.pbc.all() or len(state) % len(self.numbers):
            return ""
        ncell = len(state) // len(self.numbers)
        v_state = abs(np.linalg.det(cs)) / ncell
        v_tpl = abs(np.linalg.det(self.basis))
        ratio = (v_state / v_tpl) ** (1.0 / 3.0) - 1.0
        if abs(ratio) < 1e-3:
            return ""
        return (f"; the state has {v_state:.4g} Å³ per template cell ({ncell} cells for {len(state)} atoms) against "
                f"the template's {v_tpl:.4g} Å³: lattice constants differ by {100 * ratio:+.2f} %")

    def _bonds(self, positions, cell, numbers, atom, radius):
        """Bond vectors (K, 3) Å from ``atom`` to the points within ``radius`` (periodic images
        included, every direction periodic) and the atomic numbers (K,) at their ends, by length."""
        from .neighbors import point_pairs

        heights = 1.0 / np.linalg.norm(np.linalg.inv(cell), axis=0)
        if radius < 0.5 * heights.min():  # minimum image of the differences: no list needed
            frac = (positions - positions[atom]) @ np.linalg.inv(cell)
            vec = (frac - np.round(frac)) @ cell
            d = np.linalg.norm(vec, axis=1)
            keep = (d <= radius) & (d > 0)
            vec, z = vec[keep], numbers[keep]
        else:
            i, j, S, _ = point_pairs(positions, cell, np.ones(3, bool), radius, full=True)
            sel = i == atom
            vec = positions[j[sel]] + S[sel] @ cell - positions[atom]
            z = numbers[j[sel]]
        order = np.argsort(np.linalg.norm(vec, axis=1), kind="stable")
        return vec[order], z[order]

    def _rotated_supercell(self, state, cs):
        """(M, to_frac, Q, number of distinct rotations that fit) of a rotated template that
        ``state``'s cell is a supercell of, or None (see :meth:`oriented_supercell`)."""
        if not np.isfinite(self.min_separation) or len(state) == 0:
            return None
        radius = 1.75 * self.min_separation
        pos = np.asarray(state.positions, dtype=np.float64)
        bs, zs = self._bonds(pos, cs, state.numbers, 0, radius)
        if len(bs) < 2:
            return None
        lb = np.linalg.norm(bs, axis=1)
        b0 = 0
        cross = np.linalg.norm(np.cross(bs[b0], bs), axis=1) / (lb[b0] * lb)
        noncol = np.flatnonzero(cross > 0.3)
        if not len(noncol):
            return None
        b1 = int(noncol[0])
        slack = self.strain_tolerance + self.tolerance / self.min_separation  # relative, thermal motion included
        inv_basis = self._inv_basis
        found = []
        for k in np.flatnonzero(self.numbers == state.numbers[0]):
            bt, zt = self._bonds(self.positions, self.basis, self.numbers, int(k), radius * (1 + slack))
            lt = np.linalg.norm(bt, axis=1)
            ca = np.flatnonzero((zt == zs[b0]) & (np.abs(lt - lb[b0]) <= slack * lb[b0]))
            cb = np.flatnonzero((zt == zs[b1]) & (np.abs(lt - lb[b1]) <= slack * lb[b1]))
            cos_s = bs[b0] @ bs[b1] / (lb[b0] * lb[b1])
            for a in ca:
                for b in cb:
                    if a == b or abs(bt[a] @ bt[b] / (lt[a] * lt[b]) - cos_s) > 2 * slack:
                        continue
                    q = _kabsch(bt[[a, b]], bs[[b0, b1]])
                    q, fits = _refine_rotation(q, bt, zt, bs, zs, self.tolerance)
                    if not fits:
                        continue
                    q, fits = _refine_rotation(q, bt, zt, bs, zs, self.tolerance)
                    if not fits:
                        continue
                    mf = cs @ q @ inv_basis  # state cell in the template's frame, template units
                    mint = np.round(mf).astype(np.int64)
                    if abs(round(np.linalg.det(mint))) < 1 or np.max(np.abs(mf - mint)) > 0.25:
                        continue
                    f = np.linalg.solve(mint @ self.basis, cs)  # rows: state = template-frame rows @ f
                    w, sig, vt = np.linalg.svd(f)
                    r = w @ vt
                    if np.linalg.det(r) < 0:
                        continue
                    strain = float(np.max(np.abs(w @ np.diag(sig) @ w.T - np.eye(3))))
                    if strain > self.strain_tolerance:
                        continue
                    angle = float(np.arccos(np.clip((np.trace(r) - 1.0) / 2.0, -1.0, 1.0)))
                    found.append((round(angle, 9), strain, len(found), mint, r.T))
        if not found:
            return None
        # the least strained fits (other lattice vectors of about the same lengths can fit within a
        # loose strain tolerance too, strained by a percent or more), then the smallest rotation
        least = min(c[1] for c in found)
        found = [c for c in found if c[1] <= least + 1e-6]
        angle, _, _, mint, q = min(found, key=lambda c: c[:3])
        distinct = []
        for c in found:
            if not any(np.max(np.abs(c[4] - d)) < 1e-6 for d in distinct):
                distinct.append(c[4])
        return mint, np.linalg.inv(cs), (None if angle == 0.0 else q), len(distinct)

    # ----------------------------------------------------------------- matching
    def match(self, state) -> SiteMap:
        """A fresh :class:`SiteMap` of ``state`` (module docstring); raises :class:`CellError` or
        :class:`InputError` when the state is not a supercell (or cluster) of the template."""
        mint, to_frac, rotation, choices = self._oriented(state)
        hnf = hermite_normal_form(mint)
        ncell = int(hnf[0, 0] * hnf[1, 1] * hnf[2, 2])
        nt, n = len(self.numbers), len(state)
        what = f"state is not a supercell of the {self.name}" if self.pbc.any() else \
            f"state is not a copy of the {self.name} cluster"
        if n != nt * ncell:
            raise InputError(f"{what}: a {ncell}-cell supercell of the {nt}-atom template has {nt * ncell} atoms, "
                             f"the state has {n}" if self.pbc.any() else
                             f"{what}: the template has {nt} atoms, the state has {n}")
        zs, counts = np.unique(state.numbers, return_counts=True)
        zt, tcounts = np.unique(self.numbers, return_counts=True)
        if not (np.array_equal(zs, zt) and np.array_equal(counts, tcounts * ncell)):
            from ase.data import chemical_symbols as sym

            have = ", ".join(f"{c} {sym[z]}" for z, c in zip(zs, counts))
            want = ", ".join(f"{c * ncell} {sym[z]}" for z, c in zip(zt, tcounts))
            raise InputError(f"{what}: the state has {have}, the template needs {want}")
        fs = state.positions @ to_frac
        f = fs @ mint
        numbers = state.numbers
        tol = self.tolerance

        def fits(u, atoms):
            dist, k, lattice, res = self.nearest(f[atoms] - u)
            good = (dist <= tol) & (self.numbers[k] == numbers[atoms])
            return good, dist, k, lattice, res

        def complete(u):
            good, dist, k, lattice, _ = fits(u, slice(None))
            if not good.all():
                return None
            key = k * ncell + reduce_lattice(lattice, hnf)
            if len(np.unique(key)) != n:
                return None
            return k, lattice

        anchored = False
        u = np.zeros(3)
        found = complete(u)
        if found is None:  # not in the template's frame: find the global translation
            anchored = True
            sample = np.unique(np.linspace(0, n - 1, min(n, 64)).astype(np.int64))
            best, best_fit = None, -1
            for k0 in np.flatnonzero(self.numbers == numbers[0]):
                u = f[0] - self.frac0[k0]
                for _ in range(2):  # refine by the median residual (robust to a few displaced atoms)
                    res = fits(u, sample)[4]
                    u = u + np.median(res, axis=0)
                nfit = int(fits(u, sample)[0].sum())
                if nfit > best_fit:
                    best, best_fit = u, nfit
                if nfit == len(sample):
                    found = complete(u)
                    if found is not None:
                        break
            if found is None:
                self._explain_failure(what, state, f, best, hnf, ncell)
        m = SiteMap()
        m.template, m.n, m.numbers, m.pbc = self, n, state.numbers.copy(), state.pbc.copy()
        m.cell, m.mint, m.to_frac = np.array(state.cell, dtype=np.float64), mint, to_frac
        m.metric = np.ascontiguousarray(mint @ self.basis, dtype=np.float64)
        m.positions = np.array(state.positions, dtype=np.float64, order="C")
        m.ref = np.ascontiguousarray(fs)
        m.site, m.lattice = found
        m.hnf, m.ncell = hnf, ncell
        m.translation = (u - np.where(self.pbc, np.round(u), 0.0)) @ self.basis
        m.anchored = anchored
        m.rotation, m.rotation_choices = rotation, choices
        return m

    def _explain_failure(self, what, state, f, u, hnf, ncell):
        dist, k, lattice, _ = self.nearest(f - u)
        shift = np.round((u - np.where(self.pbc, np.round(u), 0.0)) @ self.basis, 3).tolist()
        far = dist > self.tolerance
        if far.any():
            a = int(np.argmax(dist))
            raise InputError(f"{what}: atom {a} at {np.round(state.positions[a], 4).tolist()} Å is {dist[a]:.3f} Å "
                             f"from the nearest template site (tolerance {self.tolerance:.3f} Å; best global "
                             f"translation {shift} Å)")
        wrong = self.numbers[k] != state.numbers
        if wrong.any():
            a = int(np.argmax(wrong))
            raise InputError(f"{what}: atom {a} has Z={state.numbers[a]} but sits on a template site of "
                             f"Z={self.numbers[k[a]]} (best global translation {shift} Å)")
        key = k * ncell + reduce_lattice(lattice, hnf)
        _, first, counts = np.unique(key, return_index=True, return_counts=True)
        a = int(first[np.argmax(counts > 1)])
        b = int(np.flatnonzero(key == key[a])[1])
        raise InputError(f"{what}: atoms {a} and {b} sit on the same site (template site {k[a]}), so another "
                         f"site is empty")

    # ----------------------------------------------------------------- symmetry
    def structure_translations(self, symmetric=None):
        """Translations that map the template's sites onto themselves (same species) without being
        lattice vectors: yields (τ Å (3,), perm (T,), shift (T, 3)) with site a + τ = site perm[a]
        + shift[a] (template units), for a generating set of that group. ``symmetric(perm,
        shift)``, if given, decides whether the owner's model is invariant under a translation;
        generators it accepts are combined so that every group element is covered, and the first
        one it rejects is yielded (then the caller can stop). Without it every group element is
        yielded."""
        nt = len(self.numbers)
        covered = np.zeros(nt, dtype=bool)
        covered[0] = True
        gens = []
        probe = np.unique(np.linspace(0, nt - 1, min(nt, 8)).astype(np.int64))
        eps = 1e-3  # Å: sites read from text files agree to this
        for k in np.flatnonzero(self.numbers == self.numbers[0]):
            if covered[k]:
                continue
            tau = self.frac0[k] - self.frac0[0]
            if np.any(np.abs(tau[~self.pbc]) > eps):  # Å along non-periodic axes
                continue
            dist, perm, _, _ = self.nearest(self.frac0[probe] + tau)
            if np.any(dist > eps) or np.any(self.numbers[perm] != self.numbers[probe]):
                continue
            dist, perm, lattice, _ = self.nearest(self.frac0 + tau)
            if np.any(dist > eps) or np.any(self.numbers[perm] != self.numbers) or len(np.unique(perm)) != nt:
                continue
            item = (tau @ self.basis, perm, lattice)
            if symmetric is None:
                covered[k] = True
                yield item
                continue
            if not symmetric(perm, lattice):
                yield item
                return
            gens.append(perm)
            # elements of the group generated so far, by where they send site 0
            stack = list(np.flatnonzero(covered))
            while stack:
                e = stack.pop()
                for g in gens:
                    x = g[e]
                    if not covered[x]:
                        covered[x] = True
                        stack.append(x)


__all__ = ["SiteTemplate", "SiteMap", "completed_basis", "hermite_normal_form", "reduce_lattice"]
