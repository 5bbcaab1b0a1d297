"""General bilinear (Heisenberg) exchange between unit spins.

Energy, per unordered pair counted once (DESIGN.md)::

    E = − Σ_{pairs (i, j)} s_iᵀ J_ij s_j

with J_ij a 3×3 tensor in eV. Its parts:

- isotropic exchange J·1 (J > 0 ferromagnetic);
- Dzyaloshinskii-Moriya interaction, the antisymmetric part: for a DMI vector D,
  s_iᵀ [D] s_j = D·(s_i × s_j) with [D] = [[0, D_z, −D_y], [−D_z, 0, D_x], [D_y, −D_x, 0]],
  so the pair energy is −D·(s_i × s_j);
- symmetric anisotropic exchange (the symmetric traceless part).

The pair (j, i) with tensor J_ijᵀ is the same pair: it is never added a second time. A pair with
i = j and R = 0 is an on-site term −s_iᵀ A s_i (single-ion anisotropy written as a tensor).

The Hamiltonian is stored as a *template*: a reference cell with its atoms (cell rows, positions,
atomic numbers) and pairs (i0, j0, R, J) where i0, j0 index the template's atoms and R is an integer
lattice vector of the template cell: atom j0 sits at ``positions[j0] + R @ cell``. ``compute``
maps the template onto any supercell of the template cell (an integer matrix between the cells,
up to a small homogeneous strain), identifying every atom of the state with a template atom by its
fractional position modulo the template cell. The expanded pair table is cached, so repeated
evaluations on the same supercell cost only the kernel.

J does not depend on interatomic distances here: lattice forces and stress are exactly zero, and
the term needs no distance neighbour list (``cutoff = 0``). Spin terms act only on magnetic atoms
(moment > 0); magnetic forces are h_i = −∂E/∂m_i = −(1/|m_i|)(1 − s_i s_iᵀ) ∂E/∂s_i in eV/μB.
"""

from __future__ import annotations

import numba
import numpy as np

from ..errors import CellError, InputError, ShapeError
from .base import Evaluation, Potential

# --------------------------------------------------------------------------------- helpers


def dmi_matrix(d) -> np.ndarray:
    """3×3 antisymmetric matrix [D] with s_iᵀ [D] s_j = D·(s_i × s_j); ``d`` in eV, (3,) or (P, 3)."""
    d = np.asarray(d, dtype=np.float64)
    out = np.zeros(d.shape[:-1] + (3, 3))
    out[..., 0, 1], out[..., 0, 2] = d[..., 2], -d[..., 1]
    out[..., 1, 0], out[..., 1, 2] = -d[..., 2], d[..., 0]
    out[..., 2, 0], out[..., 2, 1] = d[..., 1], -d[..., 0]
    return out


def dmi_vector(tensor) -> np.ndarray:
    """DMI vector D (eV) of the antisymmetric part of a pair tensor (inverse of :func:`dmi_matrix`)."""
    a = 0.5 * (np.asarray(tensor) - np.swapaxes(tensor, -1, -2))
    return np.stack([a[..., 1, 2], -a[..., 0, 2], a[..., 0, 1]], axis=-1)


def _hermite_normal_form(m: np.ndarray) -> np.ndarray:
    """Upper-triangular H with positive diagonal whose rows span the same integer lattice as ``m``'s."""
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


def _reduce(n: np.ndarray, hnf: np.ndarray) -> np.ndarray:
    """Integer key in [0, det) of lattice vectors ``n`` (K, 3) modulo the lattice of ``hnf``'s rows."""
    n = n.copy()
    for k in range(3):
        q = np.floor_divide(n[:, k], hnf[k, k])
        n -= q[:, None] * hnf[k][None, :]
    return (n[:, 0] * hnf[1, 1] + n[:, 1]) * hnf[2, 2] + n[:, 2]


def _effective_cell(cell, pbc):
    """The cell used for fractional coordinates: the identity when no direction is periodic and
    the cell is singular (clusters)."""
    cell = np.asarray(cell, dtype=np.float64)
    if not np.any(pbc) and abs(np.linalg.det(cell)) < 1e-12:
        return np.eye(3)
    return cell


# --------------------------------------------------------------------------------- numba kernel


@numba.njit(cache=True)
def _gradient_kernel(offsets, dst, tidx, tensors, spins, magnetic, atoms, grad):
    """∂E/∂s_a (eV) for a in ``atoms`` (written to ``grad[k]`` for atoms[k]) over a directed CSR
    table: E = −Σ_pairs s_iᵀ J s_j, so ∂E/∂s_a = −Σ_(a→b) T_e s_b with T_e = J or Jᵀ."""
    for k in range(atoms.shape[0]):
        a = atoms[k]
        g0 = 0.0
        g1 = 0.0
        g2 = 0.0
        if magnetic[a]:
            for e in range(offsets[a], offsets[a + 1]):
                b = dst[e]
                if not magnetic[b]:
                    continue
                t = tidx[e]
                s0 = spins[b, 0]
                s1 = spins[b, 1]
                s2 = spins[b, 2]
                g0 -= tensors[t, 0, 0] * s0 + tensors[t, 0, 1] * s1 + tensors[t, 0, 2] * s2
                g1 -= tensors[t, 1, 0] * s0 + tensors[t, 1, 1] * s1 + tensors[t, 1, 2] * s2
                g2 -= tensors[t, 2, 0] * s0 + tensors[t, 2, 1] * s1 + tensors[t, 2, 2] * s2
        grad[k, 0] = g0
        grad[k, 1] = g1
        grad[k, 2] = g2


@numba.njit(cache=True)
def _fields_kernel(spins, moments, grad, h):
    """h_i = −(1/|m_i|)(g_i − (g_i·s_i) s_i) (eV/μB); zero where the moment is zero."""
    for i in range(spins.shape[0]):
        m = moments[i]
        if m > 0:
            gs = grad[i, 0] * spins[i, 0] + grad[i, 1] * spins[i, 1] + grad[i, 2] * spins[i, 2]
            for c in range(3):
                h[i, c] = -(grad[i, c] - gs * spins[i, c]) / m
        else:
            h[i, 0] = h[i, 1] = h[i, 2] = 0.0


def _fields_from_gradient(spins, moments, grad):
    """h = −(1/|m|)(1 − ssᵀ) g (eV/μB); zero where the moment is zero."""
    h = np.empty_like(grad)
    _fields_kernel(np.ascontiguousarray(spins), np.ascontiguousarray(moments), np.ascontiguousarray(grad), h)
    return h


class _Expansion:
    """The template mapped onto one state: directed CSR table over the state's atoms."""

    __slots__ = ("n", "cell", "numbers", "pbc", "positions", "offsets", "dst", "tidx", "pair_i", "pair_j",
                 "pair_t", "tolerance")


# --------------------------------------------------------------------------------- the potential


class Heisenberg(Potential):
    """Bilinear exchange E = −Σ_{pairs} s_iᵀ J_ij s_j (eV), each unordered pair once, J > 0
    ferromagnetic; lattice forces and stress are zero (J does not depend on distance).

    Parameters
    ----------
    cell : (3, 3) template cell, rows, Å.
    positions : (T, 3) template atom positions, Å (Cartesian), or fractional if ``scaled``.
    numbers : (T,) atomic numbers of the template atoms.
    i, j : (P,) template atom indices of each pair.
    R : (P, 3) integer lattice vectors: atom j of the pair sits at ``positions[j] + R @ cell``.
    J : (P, 3, 3) pair tensors in eV, or (P,) isotropic couplings (J·1) in eV.
    pbc : periodic directions of the template (default all).
    scaled : ``positions`` are fractional coordinates.
    strain_tolerance : largest homogeneous strain (max |ε_ab|) accepted between the state's cell
        and an integer supercell of the template cell (default 0.05).
    position_tolerance : largest distance (Å) between a state atom and its template site; default
        0.3 × the smallest distance between template sites, at most 0.5 Å.
    """

    cutoff = 0.0

    def __init__(self, cell, positions, numbers, i, j, R, J, pbc=True, scaled=False,
                 strain_tolerance=0.05, position_tolerance=None):
        from ..state import _as_array, _numbers

        numbers = _numbers(numbers)
        nt = len(numbers)
        if nt == 0:
            raise InputError("Heisenberg template needs at least one atom")
        self.pbc = np.array(np.broadcast_to(np.asarray(pbc, dtype=bool), (3,)))
        self.cell = _effective_cell(_as_array(cell, "cell", (3, 3)), self.pbc)
        if abs(np.linalg.det(self.cell)) < 1e-10:
            raise CellError("Heisenberg template cell is singular")
        pos = _as_array(positions, "positions", (nt, 3))
        self.positions = pos @ self.cell if scaled else pos
        self.numbers = numbers
        i = np.atleast_1d(np.asarray(i))
        p = len(i)
        self.i = _as_array(i, "i", (p,), np.int64)
        self.j = _as_array(j, "j", (p,), np.int64)
        self.R = _as_array(R, "R", (p, 3), np.float64)
        if np.any(self.R != np.round(self.R)):
            raise InputError("pair lattice vectors R must be integers")
        self.R = self.R.astype(np.int64)
        J = np.asarray(J, dtype=np.float64)
        if J.shape == (p,):
            J = J[:, None, None] * np.eye(3)[None]
        self.J = _as_array(J, "J", (p, 3, 3))
        for name, idx in (("i", self.i), ("j", self.j)):
            if p and (idx.min() < 0 or idx.max() >= nt):
                raise InputError(f"pair index {name} out of range 0..{nt - 1}")
        if p and np.any(self.R[:, ~self.pbc] != 0):
            raise InputError("pairs cross a non-periodic direction of the template (R ≠ 0 there)")
        self.strain_tolerance = float(strain_tolerance)
        if position_tolerance is None:
            position_tolerance = min(0.5, 0.3 * self._min_site_separation())
        self.position_tolerance = float(position_tolerance)
        self._expansion = None

    # ----------------------------------------------------------------- constructors
    @classmethod
    def from_tb2j(cls, path) -> "Heisenberg":
        """The Heisenberg Hamiltonian of a TB2J ``exchange.out`` file (old 0.2.x or newer text
        format), converted to the per-pair-once convention; see :mod:`spinlat.io.tb2j`. Applies
        to any supercell of the file's cell."""
        from ..io.tb2j import read_tb2j

        return read_tb2j(path)[1]

    @classmethod
    def from_neighbors(cls, state, J=(), D=(), dmi="bloch", normal=(0.0, 0.0, 1.0),
                       shell_tolerance=1e-3, **kwargs) -> "Heisenberg":
        """Exchange and DMI by neighbour shells of ``state`` (which becomes the template).

        Shells are the distinct pair distances (grouped within ``shell_tolerance`` Å), nearest
        first, over all atom pairs. Every unordered pair in shell k gets the isotropic coupling
        ``J[k]`` (eV) and a DMI vector of magnitude ``D[k]`` (eV):

        - ``dmi="bloch"``: D_ij = D r̂_ij, along the bond from i to j (bulk/B20 chirality);
        - ``dmi="interfacial"``: D_ij = D (n̂ × r̂_ij) with n̂ = ``normal`` (default ẑ, the film
          normal), the Néel-type DMI of thin films.

        Pair energy: −J s_i·s_j − D_ij·(s_i × s_j). This is Spirit's Heisenberg Hamiltonian with
        its per-unique-pair sums: Spirit's ``J`` and ``D`` (meV) equal ``J``, ``D`` here times
        1000; Spirit's Bloch chirality (1) is ``"bloch"`` (inverse Bloch, −1: ``"bloch"`` with −D);
        Spirit's Néel chirality (2) uses D_ij = D r̂_ij × ẑ, which is ``"interfacial"`` with −D
        (Spirit's inverse Néel, −2, is ``"interfacial"`` with +D). Checked against Spirit 2.2 in
        tests/potentials/test_heisenberg.py (peers).
        """
        from ..neighbors import neighbor_pairs

        J = np.atleast_1d(np.asarray(J, dtype=np.float64))
        D = np.atleast_1d(np.asarray(D, dtype=np.float64))
        if J.ndim != 1 or D.ndim != 1:
            raise ShapeError("J and D must be sequences of per-shell values (eV)")
        if not (np.all(np.isfinite(J)) and np.all(np.isfinite(D))):
            raise InputError("J and D must be finite")
        if dmi not in ("bloch", "interfacial"):
            raise InputError(f"dmi must be 'bloch' or 'interfacial', got {dmi!r}")
        nshell = max(len(J), len(D))
        normal = np.asarray(normal, dtype=np.float64)
        if normal.shape != (3,) or not np.linalg.norm(normal) > 0:
            raise InputError("normal must be a non-zero 3-vector")
        normal = normal / np.linalg.norm(normal)
        if nshell == 0 or len(state) < 1:
            ii = np.zeros(0, np.int64)
            return cls(state.cell, state.positions, state.numbers, ii, ii, np.zeros((0, 3)),
                       np.zeros((0, 3, 3)), pbc=state.pbc, **kwargs)
        cutoff = 3.0
        while True:
            i, j, S, d = neighbor_pairs(state, cutoff)
            shells = _shells(d, shell_tolerance)
            complete = [s for s in shells if s < cutoff - 2 * shell_tolerance]
            if len(complete) >= nshell:
                break
            if cutoff > 200.0:
                raise InputError(f"found only {len(complete)} neighbour shells within {cutoff:.0f} Å; "
                                 f"{nshell} asked for")
            cutoff *= 1.5
        radii = np.array(complete[:nshell])
        shell = np.argmin(np.abs(d[:, None] - radii[None, :]), axis=1)
        keep = np.abs(d - radii[shell]) <= shell_tolerance
        i, j, S, d, shell = i[keep], j[keep], S[keep], d[keep], shell[keep]
        vec = state.positions[j] - state.positions[i] + S @ state.cell
        rhat = vec / d[:, None]
        Jp = np.concatenate([J, np.zeros(nshell - len(J))])[shell]
        Dp = np.concatenate([D, np.zeros(nshell - len(D))])[shell]
        dvec = rhat if dmi == "bloch" else np.cross(normal[None, :], rhat)
        tensors = Jp[:, None, None] * np.eye(3)[None] + dmi_matrix(Dp[:, None] * dvec)
        ham = cls(state.cell, state.positions, state.numbers, i, j, S, tensors, pbc=state.pbc, **kwargs)
        ham.shell_radii = radii
        return ham

    # ----------------------------------------------------------------- template facts
    def _min_site_separation(self) -> float:
        from scipy.spatial import cKDTree

        pts = self._site_images(self.positions @ np.linalg.inv(self.cell))[0]
        if len(pts) < 2:
            return float("inf")
        d, _ = cKDTree(pts).query(pts, k=2)
        return float(d[:, 1].min())

    def _site_images(self, frac):
        """Cartesian points of the template sites (fractional ``frac`` wrapped into [0,1) along
        periodic axes) and their images shifted by −1, 0, 1 along periodic axes."""
        f = frac.copy()
        f[:, self.pbc] -= np.floor(f[:, self.pbc])
        ranges = [(-1, 0, 1) if p else (0,) for p in self.pbc]
        shifts = np.array(np.meshgrid(*ranges, indexing="ij")).reshape(3, -1).T
        pts = (f[None, :, :] + shifts[:, None, :]).reshape(-1, 3) @ self.cell
        site = np.tile(np.arange(len(f)), len(shifts))
        return pts, site, np.repeat(shifts, len(f), axis=0)

    @property
    def n_pairs(self) -> int:
        """Number of template pairs (each unordered pair once)."""
        return len(self.i)

    # ----------------------------------------------------------------- mapping onto a state
    def _expand(self, state) -> _Expansion:
        ex = self._expansion
        if ex is not None and ex.n == len(state) and np.array_equal(ex.cell, state.cell) and \
                np.array_equal(ex.pbc, state.pbc) and np.array_equal(ex.numbers, state.numbers):
            if np.array_equal(state.positions, ex.positions):  # fast path: the lattice did not move
                return ex
            d = state.positions - ex.positions
            if len(d):
                f = d @ np.linalg.inv(_effective_cell(state.cell, state.pbc))
                f[:, state.pbc] -= np.round(f[:, state.pbc])
                d = f @ _effective_cell(state.cell, state.pbc)
            if not len(d) or np.max(np.einsum("ij,ij->i", d, d)) < (0.5 * ex.tolerance) ** 2:
                return ex
        self._expansion = ex = self._build_expansion(state)
        return ex

    def _build_expansion(self, state) -> _Expansion:
        from scipy.spatial import cKDTree

        if not np.array_equal(state.pbc, self.pbc):
            raise CellError(f"state pbc {state.pbc.tolist()} differs from the Heisenberg template's "
                            f"{self.pbc.tolist()}")
        cs = _effective_cell(state.cell, state.pbc)
        if abs(np.linalg.det(cs)) < 1e-10:
            raise CellError("state cell is singular; Heisenberg needs the state to be a supercell of its template")
        mf = cs @ np.linalg.inv(self.cell)
        mint = np.round(mf).astype(np.int64)
        if abs(round(np.linalg.det(mint))) < 1 or np.max(np.abs(mf - mint)) > 0.25:
            raise CellError("state is not a supercell of the Heisenberg template: its cell is not an integer "
                            f"combination of the template cell vectors (cell matrix {np.round(mf, 3).tolist()})")
        strain = np.linalg.solve(mint @ self.cell, cs) - np.eye(3)
        if np.max(np.abs(strain)) > self.strain_tolerance:
            raise CellError(f"state cell is a supercell of the Heisenberg template strained by "
                            f"{np.max(np.abs(strain)):.3g}, more than strain_tolerance={self.strain_tolerance}")
        for k in np.flatnonzero(~self.pbc):
            if not np.array_equal(mint[k], np.eye(3, dtype=np.int64)[k]):
                raise CellError(f"state cell differs from the template cell along non-periodic direction {k}")
        hnf = _hermite_normal_form(mint)
        ncell = int(hnf[0, 0] * hnf[1, 1] * hnf[2, 2])
        nt = len(self.numbers)
        n = len(state)
        if n != nt * ncell:
            raise InputError(f"state is not a supercell of the Heisenberg template: a {ncell}-cell supercell of "
                             f"the {nt}-atom template has {nt * ncell} atoms, the state has {n}")
        # fractional coordinates of state atoms in units of the (strained) template cell
        f_state = state.positions @ np.linalg.inv(cs) @ mint
        f_tmpl = self.positions @ np.linalg.inv(self.cell)
        pts, site, shift = self._site_images(f_tmpl)
        fw = f_state.copy()
        fw[:, self.pbc] -= np.floor(fw[:, self.pbc])
        dist, idx = cKDTree(pts).query(fw @ self.cell)
        tol = self.position_tolerance
        bad = dist > tol
        if np.any(bad):
            a = int(np.argmax(bad))
            raise InputError(f"state is not a supercell of the Heisenberg template: atom {a} at "
                             f"{np.round(state.positions[a], 4).tolist()} Å is {dist[a]:.3f} Å from the nearest "
                             f"template site (tolerance {tol:.3f} Å)")
        k_of = site[idx]
        if not np.array_equal(state.numbers, self.numbers[k_of]):
            a = int(np.argmax(state.numbers != self.numbers[k_of]))
            raise InputError(f"state is not a supercell of the Heisenberg template: atom {a} has Z="
                             f"{state.numbers[a]} but sits on a template site of Z={self.numbers[k_of[a]]}")
        f0 = f_tmpl.copy()
        f0[:, self.pbc] -= np.floor(f0[:, self.pbc])
        # lattice vector of each atom relative to its wrapped template site f0
        ncoord = np.round(f_state - f0[k_of]).astype(np.int64)
        ncoord[:, ~self.pbc] = 0
        key = k_of * ncell + _reduce(ncoord, hnf)
        lookup = np.full(nt * ncell, -1, dtype=np.int64)
        lookup[key] = np.arange(n)
        if np.any(lookup < 0):
            missing = int(np.argmax(lookup < 0))
            raise InputError("state is not a supercell of the Heisenberg template: two atoms sit on the same "
                             f"site and template atom {missing // ncell} is missing from one cell")
        # template-atom bond lists: (tensor index, target template atom, lattice shift in f0 units)
        pshift = self.R + np.floor(f_tmpl[self.j] * self.pbc).astype(np.int64) \
            - np.floor(f_tmpl[self.i] * self.pbc).astype(np.int64)
        # between wrapped sites: atom j of a pair sits at f0[j] + pshift when atom i sits at f0[i]
        npair = len(self.i)
        bt = np.concatenate([np.arange(npair), npair + np.arange(npair)])
        bsrc = np.concatenate([self.i, self.j])
        btgt = np.concatenate([self.j, self.i])
        bR = np.concatenate([pshift, -pshift])
        order = np.argsort(bsrc, kind="stable")
        bt, bsrc, btgt, bR = bt[order], bsrc[order], btgt[order], bR[order]
        nb = np.bincount(bsrc, minlength=nt)
        bstart = np.concatenate([[0], np.cumsum(nb)])
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(nb[k_of], out=offsets[1:])
        itype = np.int32 if n < 2**31 - 1 else np.int64
        dst = np.empty(offsets[-1], dtype=itype)
        tidx = np.empty(offsets[-1], dtype=np.int32)
        for k in range(nt):
            atoms = np.flatnonzero(k_of == k)
            sl = slice(bstart[k], bstart[k + 1])
            if nb[k] == 0 or len(atoms) == 0:
                continue
            chunk = max(1, 2**20 // int(nb[k]))  # bounded temporaries on large supercells
            for c in range(0, len(atoms), chunk):
                at = atoms[c:c + chunk]
                cells = ncoord[at][:, None, :] + bR[sl][None, :, :]
                tgt = btgt[sl][None, :] * ncell + _reduce(cells.reshape(-1, 3), hnf).reshape(len(at), nb[k])
                rows = offsets[at][:, None] + np.arange(nb[k])[None, :]
                dst[rows] = lookup[tgt]
                tidx[rows] = bt[sl][None, :]
        ex = _Expansion()
        ex.n, ex.cell, ex.numbers, ex.pbc = n, state.cell.copy(), state.numbers.copy(), state.pbc.copy()
        ex.positions = state.positions.copy()
        ex.offsets, ex.dst, ex.tidx = offsets, dst, tidx
        ex.tolerance = tol
        # each unordered expanded pair once: directed entries with tensor index < P
        src = np.repeat(np.arange(n), np.diff(offsets))
        first = tidx < npair
        ex.pair_i, ex.pair_j, ex.pair_t = src[first], dst[first].astype(np.int64), tidx[first].astype(np.int64)
        return ex

    def pairs(self, state):
        """Expanded pair table on ``state``: (i, j, J) with J (E, 3, 3) in eV, each pair once
        (a template pair that maps onto the same atoms twice in a small supercell appears twice)."""
        ex = self._expand(state)
        return ex.pair_i, ex.pair_j, self.J[ex.pair_t]

    # ----------------------------------------------------------------- evaluation
    def _tensors(self):
        t = getattr(self, "_tensor_table", None)
        if t is None or t.shape[0] != 2 * len(self.J):
            t = self._tensor_table = np.ascontiguousarray(
                np.concatenate([self.J, np.swapaxes(self.J, 1, 2)]))
        return t

    def _gradient(self, state, atoms):
        ex = self._expand(state)
        grad = np.zeros((len(atoms), 3))
        if len(atoms) and len(ex.dst):
            _gradient_kernel(ex.offsets, ex.dst, ex.tidx, self._tensors(), np.ascontiguousarray(state.spins),
                             state.moments > 0, np.ascontiguousarray(atoms, dtype=np.int64), grad)
        return grad

    def _evaluate(self, state, neighbors, forces, magnetic_forces, stress) -> Evaluation:
        """Energy (eV), per-atom energies (each pair split half/half), zero forces (eV/Å) and
        stress (eV/Å³), magnetic forces −∂E/∂m (eV/μB)."""
        n = len(state)
        grad = self._gradient(state, np.arange(n))
        energies = 0.5 * np.einsum("ij,ij->i", state.spins, grad)
        ev = Evaluation(float(energies.sum()), np.zeros((n, 3)) if forces else None,
                        _fields_from_gradient(state.spins, state.moments, grad) if magnetic_forces else None,
                        np.zeros(6) if stress else None, energies)
        return ev

    def local_fields(self, state, neighbors, atoms) -> np.ndarray:
        """Magnetic forces −∂E/∂m (eV/μB) of the atoms ``atoms`` only, touching only their pairs."""
        atoms = np.asarray(atoms, dtype=np.int64)
        grad = self._gradient(state, atoms)
        return _fields_from_gradient(state.spins[atoms], state.moments[atoms], grad)

    def rotation_fields(self, state, neighbors, atoms) -> np.ndarray:
        """Unprojected fields −(1/|m_i|) ∂E/∂s_i = Σ_j J_ij s_j / |m_i| (eV/μB) of ``atoms`` (0 on
        non-magnetic atoms): E is linear in each s_i, so rotating s_i about this field is the
        exact motion of s_i (see ``Potential.rotation_fields``)."""
        atoms = np.asarray(atoms, dtype=np.int64)
        grad = self._gradient(state, atoms)
        mom = state.moments[atoms]
        mag = mom > 0
        h = np.zeros_like(grad)
        h[mag] = -grad[mag] / mom[mag, None]
        return h

    @property
    def spin_rotation_invariant(self) -> bool:
        """True when every pair tensor is isotropic (J·1): no DMI, no anisotropic exchange."""
        iso = np.trace(self.J, axis1=1, axis2=2)[:, None, None] / 3.0 * np.eye(3)[None]
        return bool(np.allclose(self.J, iso, rtol=0.0, atol=1e-12 * max(1.0, float(np.abs(self.J).max(initial=0.0)))))

    def __repr__(self):
        return f"Heisenberg(n_sites={len(self.numbers)}, n_pairs={self.n_pairs})"


def _shells(d, tol):
    """Distinct distances (Å) grouped within ``tol``, ascending (each group's smallest member)."""
    if len(d) == 0:
        return []
    u = np.sort(d)
    starts = np.concatenate([[True], np.diff(u) > tol])
    return [float(x) for x in u[starts]]


__all__ = ["Heisenberg", "dmi_matrix", "dmi_vector"]
