"""Linear spin couplings: the energy of magnetic terms that are at most quadratic in each spin.

Pair exchange (isotropic, DMI, anisotropic: any 3×3 tensor), single-ion anisotropy written as a
quadratic form and a Zeeman-like field all share one form on a frozen lattice (positions and
moment magnitudes fixed). :class:`LinearSpinCouplings` holds it; potentials give theirs through
:meth:`Potential.spin_couplings <spinlat.potentials.base.Potential.spin_couplings>` and sums of
potentials merge them, so that spin integrators (NVE/Langevin sweeps, LLG, Monte Carlo, the
minimiser, GNEB) evaluate one numba kernel for all such terms instead of asking each term in turn.

Energy, in eV, with unit spins s_i and moment magnitudes |m_i| (μB)::

    E(s) = − ½ Σ_i Σ_{p ∈ row i} s_iᵀ J_p s_{j_p}  −  Σ_i s_iᵀ A_i s_i  −  Σ_i |m_i| b_i·s_i  +  Σ_i c_i

- pair couplings J_p (eV) in a directed CSR table: row i lists the couplings p of atom i with its
  partners j_p (``offsets``, ``neighbors``). Every unordered pair appears in both rows, as (i → j,
  J) and (j → i, Jᵀ), so the ½ counts it once: the pair energy is −s_iᵀ J_ij s_j, DESIGN.md's
  Heisenberg convention (J > 0 ferromagnetic, each pair once; DMI as the antisymmetric part,
  s_iᵀ [D] s_j = D·(s_i × s_j)). A partner j_p = i is a periodic image of atom i itself (its
  energy is then quadratic in s_i). Couplings are scalars (isotropic J·1, ``exchange`` (P,)) or
  3×3 tensors (``tensors[tensor_index[p]]``, a table of the distinct tensors);
- on-site quadratic forms A_i (eV, symmetric 3×3, ``onsite`` (N, 3, 3)), e.g. uniaxial
  anisotropy −K (s·n)² as A = K n nᵀ;
- an on-site field b_i (eV/μB, ``field`` (N, 3)) acting on the moment vector m_i = |m_i| s_i: the
  Zeeman energy −μB m_i·B has b_i = μB B;
- spin-independent per-atom energies c_i (eV, ``offset`` (N,)), e.g. the offset of Bethe-Slater
  exchange or the energy of an atom's coupling to its own periodic image when it is a constant.

What it gives, with g_i = Σ_{p ∈ row i} J_p s_{j_p} + 2 A_i s_i = −∂E/∂s_i − |m_i| b_i (eV):

- per-atom energies e_i = −½ s_i·g_i − |m_i| b_i·s_i + c_i (each pair split half/half), summing
  to E;
- magnetic forces h_i = −∂E/∂m_i = (1 − s_i s_iᵀ) g_i / |m_i| + b_i (eV/μB; DESIGN.md's
  convention: the unit-spin terms give only a transverse part, the field term, linear in m_i, its
  whole vector), 0 on non-magnetic atoms;
- rotation fields H_i = g_i/|m_i| + b_i (eV/μB), the unprojected fields about which spin
  integrators rotate s_i (:meth:`Potential.rotation_fields
  <spinlat.potentials.base.Potential.rotation_fields>`): for an energy linear in s_i, rotating
  s_i about H_i is its exact motion.

Only magnetic atoms (moment > 0) take part: their rows, fields and forms are the only non-zero
ones, and no row points at a non-magnetic atom. The couplings depend on the positions (J(r) of
distance-dependent exchange), the atomic numbers and which atoms are magnetic, never on the
moment magnitudes: those enter through the methods' ``moments`` argument.

The numba kernels (:func:`coupled_rows`) run on one thread, over one state (spins (N, 3)) or a
stack of images (M, N, 3) at once; :func:`reference_evaluate` is their NumPy reference (tests).
"""

from __future__ import annotations

import numba
import numpy as np

from ..errors import InputError, ShapeError
from ..keywords import refuse_other_names

#: fused multiply-add in the kernels (more accurate and faster; no other fast-math liberties)
_FMA = {"contract"}

_EMPTY_F = np.zeros(0)
_EMPTY_I = np.zeros(0, dtype=np.int32)
_EMPTY_T = np.zeros((0, 3, 3))
_EMPTY_V = np.zeros((0, 3))


@refuse_other_names()
class LinearSpinCouplings:
    """Linear spin couplings of ``n_atoms`` atoms (module docstring for the energy and its units).

    Parameters
    ----------
    n_atoms : N.
    offsets : (N + 1,) int64 CSR row pointer; ``None`` for no pair couplings.
    neighbors : (P,) int32 (int64 beyond 2³¹ atoms) partner atom of each coupling.
    exchange : (P,) scalar couplings J_p, eV (isotropic: J_p·1), or ``None``.
    tensor_index, tensors : (P,) int32 and (T, 3, 3) eV: coupling p is ``tensors[tensor_index[p]]``;
        or ``None`` (exactly one of ``exchange`` and the tensors when there are couplings).
    field : (N, 3) on-site field b_i, eV/μB, or ``None``.
    onsite : (N, 3, 3) symmetric on-site forms A_i, eV, or ``None``.
    offset : (N,) spin-independent per-atom energies c_i, eV, or a function of no argument that
        returns them (called on first use: terms whose constant costs a pass of its own), or
        ``None``.
    self_coupled : what :meth:`self_coupled_atoms` returns, when the producer knows it (saves a
        pass over the table): ``False`` for none, an (N,) bool array; ``None``: found on first use.

    The arrays are taken as they are (no copies) and must not be changed afterwards; the pair
    table must be symmetric (every (i → j, J) has its (j → i, Jᵀ)). Raises
    :class:`~spinlat.errors.ShapeError` for arrays of the wrong shape.
    """

    __slots__ = ("n_atoms", "offsets", "neighbors", "exchange", "tensor_index", "tensors", "field", "onsite",
                 "_offset", "_self")

    def __init__(self, n_atoms, offsets=None, neighbors=None, exchange=None, tensor_index=None, tensors=None,
                 field=None, onsite=None, offset=None, self_coupled=None):
        n = int(n_atoms)
        self.n_atoms = n
        if offsets is None:
            offsets, neighbors = np.zeros(n + 1, dtype=np.int64), _EMPTY_I
            exchange, tensor_index, tensors = _EMPTY_F, None, None
        offsets = np.ascontiguousarray(offsets, dtype=np.int64)
        if offsets.shape != (n + 1,):
            raise ShapeError(f"LinearSpinCouplings: offsets must have shape ({n + 1},), got {offsets.shape}")
        neighbors = np.ascontiguousarray(neighbors)
        p = int(offsets[-1])
        if neighbors.shape != (p,) or neighbors.dtype.kind not in "iu":
            raise ShapeError(f"LinearSpinCouplings: neighbors must be ({p},) integers, got {neighbors.shape} "
                             f"{neighbors.dtype}")
        if (exchange is None) == (tensors is None):
            if p or exchange is not None:
                raise InputError("LinearSpinCouplings: give either scalar exchange or tensor_index + tensors")
            exchange = _EMPTY_F
        if exchange is not None:
            exchange = np.ascontiguousarray(exchange, dtype=np.float64)
            if exchange.shape != (p,):
                raise ShapeError(f"LinearSpinCouplings: exchange must have shape ({p},), got {exchange.shape}")
        else:
            tensors = np.ascontiguousarray(tensors, dtype=np.float64)
            tensor_index = np.ascontiguousarray(tensor_index)
            if tensors.ndim != 3 or tensors.shape[1:] != (3, 3) or tensor_index.shape != (p,):
                raise ShapeError(f"LinearSpinCouplings: tensors must be (T, 3, 3) and tensor_index ({p},), got "
                                 f"{tensors.shape} and {tensor_index.shape}")
        if field is not None:
            field = np.ascontiguousarray(field, dtype=np.float64)
            if field.shape != (n, 3):
                raise ShapeError(f"LinearSpinCouplings: field must have shape ({n}, 3), got {field.shape}")
        if onsite is not None:
            onsite = np.ascontiguousarray(onsite, dtype=np.float64)
            if onsite.shape != (n, 3, 3):
                raise ShapeError(f"LinearSpinCouplings: onsite must have shape ({n}, 3, 3), got {onsite.shape}")
        if offset is not None and not callable(offset):
            offset = np.ascontiguousarray(offset, dtype=np.float64)
            if offset.shape != (n,):
                raise ShapeError(f"LinearSpinCouplings: offset must have shape ({n},), got {offset.shape}")
        self.offsets, self.neighbors = offsets, neighbors
        self.exchange, self.tensor_index, self.tensors = exchange, tensor_index, tensors
        self.field, self.onsite, self._offset = field, onsite, offset
        if self_coupled is None and offsets[-1] == 0 and onsite is None:
            self_coupled = False
        self._self = self_coupled

    # ------------------------------------------------------------------ facts
    @property
    def n_couplings(self) -> int:
        """P, the number of directed pair couplings (each unordered pair twice)."""
        return int(self.offsets[-1])

    @property
    def isotropic(self) -> bool:
        """The pair couplings are scalars (``exchange``)."""
        return self.exchange is not None

    @property
    def offset(self):
        """(N,) spin-independent per-atom energies c_i, eV, or None."""
        if callable(self._offset):
            self._offset = np.ascontiguousarray(self._offset(), dtype=np.float64)
        return self._offset

    @property
    def self_coupled(self) -> bool:
        """Some atom's field depends on its own spin: an on-site form, or a non-zero coupling to
        its own periodic image. Then rotating a spin about its field is not its exact motion."""
        return self.self_coupled_mask() is not False

    def self_coupled_mask(self):
        """``False`` when no atom is self-coupled, else (N,) bool of the atoms that are (computed
        once)."""
        m = self._self
        if m is None:
            out = np.zeros(self.n_atoms, dtype=np.bool_)
            _self_coupled(self.kernel_arrays(), out)
            m = out if out.any() else False
        elif callable(m):
            m = m()
        self._self = m
        return m

    def pair_tensors(self) -> np.ndarray:
        """(P, 3, 3) coupling tensors J_p, eV (scalars as J_p·1); a new array."""
        if self.isotropic:
            return self.exchange[:, None, None] * np.eye(3)[None]
        return self.tensors[self.tensor_index]

    def __repr__(self):
        parts = [f"{self.n_couplings} {'scalar' if self.isotropic else 'tensor'} couplings"]
        parts += [name for name in ("field", "onsite") if getattr(self, name) is not None]
        if self._offset is not None:
            parts.append("offset")
        return f"LinearSpinCouplings(n_atoms={self.n_atoms}, {', '.join(parts)})"

    # ------------------------------------------------------------------ evaluation
    def kernel_arrays(self) -> tuple:
        """The couplings as the tuple the numba kernels take (:func:`coupled_rows`): ``(offsets,
        neighbors, exchange, tensor_index, tensors, isotropic, field, onsite)``, absent parts as
        empty arrays (exchange (0,) for tensor tables, tensor_index (0,) and tensors (0, 3, 3) for
        scalar ones, field (0, 3), onsite (0, 3, 3))."""
        iso = self.isotropic
        return (self.offsets, self.neighbors, self.exchange if iso else _EMPTY_F,
                _EMPTY_I if iso else self.tensor_index, _EMPTY_T if iso else self.tensors, iso,
                _EMPTY_V if self.field is None else self.field, _EMPTY_T if self.onsite is None else self.onsite)

    def self_coupled_atoms(self) -> np.ndarray:
        """(N,) bool: atoms whose field depends on their own spin (a non-zero on-site form or a
        non-zero coupling with a periodic image of themselves)."""
        m = self.self_coupled_mask()
        return np.zeros(self.n_atoms, dtype=np.bool_) if m is False else m.copy()

    def _spins(self, spins):
        s = np.asarray(spins, dtype=np.float64)
        if s.shape[-2:] != (self.n_atoms, 3) or s.ndim not in (2, 3):
            raise ShapeError(f"spins must have shape ({self.n_atoms}, 3) or (M, {self.n_atoms}, 3), got {s.shape}")
        return np.ascontiguousarray(s)

    def evaluate(self, spins, moments, energies=True, magnetic_forces=True):
        """Per-atom energies (eV) and magnetic forces h = −∂E/∂m (eV/μB) of one spin configuration
        (spins (N, 3) → energies (N,), h (N, 3)) or of M at once ((M, N, 3) → (M, N), (M, N, 3)).
        ``moments`` (N,) μB. Returns ``(energies, h)``; a part not asked for is None."""
        s = self._spins(spins)
        moments = np.ascontiguousarray(moments, dtype=np.float64)
        one = s.ndim == 2
        s3 = s[None] if one else s
        e = np.empty(s3.shape[:2]) if energies else np.empty((0, 0))
        h = np.empty(s3.shape) if magnetic_forces else np.empty((0, 0, 3))
        c = self.kernel_arrays()
        g = np.empty(s3.shape)
        coupled_rows(c, s3, np.arange(self.n_atoms, dtype=np.int64), g)
        off = self.offset
        _energies_and_forces(c[6], _EMPTY_F if off is None else off, s3, moments, g, bool(energies),
                             bool(magnetic_forces), e, h)
        e = (e[0] if one else e) if energies else None
        h = (h[0] if one else h) if magnetic_forces else None
        return e, h

    def energy(self, spins, moments):
        """Total energy, eV: a float for spins (N, 3), (M,) for (M, N, 3)."""
        e, _ = self.evaluate(spins, moments, magnetic_forces=False)
        return float(e.sum()) if e.ndim == 1 else e.sum(axis=1)

    def energies(self, spins, moments) -> np.ndarray:
        """Per-atom energies e_i, eV, (N,) or (M, N)."""
        return self.evaluate(spins, moments, magnetic_forces=False)[0]

    def magnetic_forces(self, spins, moments, atoms=None) -> np.ndarray:
        """h_i = (1 − s_i s_iᵀ) g_i/|m_i| + b_i (eV/μB), 0 on non-magnetic atoms: (N, 3) or (M, N, 3)
        for spins (N, 3) or (M, N, 3), or (len(atoms), 3) of the atoms ``atoms`` of spins (N, 3)."""
        if atoms is None:
            return self.evaluate(spins, moments, energies=False)[1]
        atoms = np.ascontiguousarray(atoms, dtype=np.int64)
        g = self.coupled_fields(spins, atoms)
        s = np.asarray(spins, dtype=np.float64)[atoms]
        mom = np.asarray(moments, dtype=np.float64)[atoms]
        mag = mom > 0
        h = np.zeros_like(g)
        proj = g - np.einsum("ij,ij->i", g, s)[:, None] * s
        h[mag] = proj[mag] / mom[mag, None]
        if self.field is not None:
            h[mag] += self.field[atoms[mag]]
        return h

    def coupled_fields(self, spins, atoms=None) -> np.ndarray:
        """g_i = Σ_p J_p s_{j_p} + 2 A_i s_i (eV; −∂E/∂s_i without the field term) of the atoms
        ``atoms`` (default all), (len(atoms), 3); spins (N, 3)."""
        s = self._spins(spins)
        if s.ndim != 2:
            raise ShapeError(f"coupled_fields takes spins of shape ({self.n_atoms}, 3), got {s.shape}")
        atoms = np.arange(self.n_atoms, dtype=np.int64) if atoms is None else np.ascontiguousarray(atoms,
                                                                                                     dtype=np.int64)
        out = np.empty((1, len(atoms), 3))
        coupled_rows(self.kernel_arrays(), s[None], atoms, out)
        return out[0]

    def rotation_fields(self, spins, moments, atoms=None) -> np.ndarray:
        """Unprojected fields H_i = g_i/|m_i| + b_i (eV/μB) of ``atoms`` (default all), (len(atoms), 3);
        0 on non-magnetic atoms."""
        atoms = np.arange(self.n_atoms, dtype=np.int64) if atoms is None else np.ascontiguousarray(atoms,
                                                                                                     dtype=np.int64)
        g = self.coupled_fields(spins, atoms)
        mom = np.asarray(moments, dtype=np.float64)[atoms]
        mag = mom > 0
        h = np.zeros_like(g)
        h[mag] = g[mag] / mom[mag, None]
        if self.field is not None:
            h[mag] += self.field[atoms[mag]]
        return h

    def spin_curvatures(self, spins, atoms=None) -> np.ndarray:
        """c_i = tr H_i − s_iᵀ H_i s_i (eV) of ``atoms`` (default all), (len(atoms),), with
        H_i = ∂²E/∂s_i∂s_iᵀ = −2 A_i − Σ_{p ∈ row i, j_p = i} J_p the Hessian of the energy in the
        ambient components of spin i's own vector (on-site forms and couplings to its own periodic
        images; the other terms are linear in s_i). The spherical Laplacian of E in s_i is
        −2 s_i·∂E/∂s_i + c_i (:meth:`Potential.spin_curvatures
        <spinlat.potentials.base.Potential.spin_curvatures>`); 0 for atoms without self-coupling."""
        s = np.asarray(spins, dtype=np.float64)
        n = self.n_atoms
        atoms = np.arange(n, dtype=np.int64) if atoms is None else np.ascontiguousarray(atoms, dtype=np.int64)
        self_coupled = self.n_couplings and self.self_coupled_mask() is not False
        if self.onsite is None and not self_coupled:  # linear in every spin (pairs, fields): no curvature
            return np.zeros(len(atoms))
        hess = np.zeros((len(atoms), 3, 3))
        if self.onsite is not None:
            hess -= 2.0 * self.onsite[atoms]
        if self_coupled:
            rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(self.offsets))
            own = np.flatnonzero(self.neighbors == rows)
            where = np.full(n, -1, dtype=np.int64)
            where[atoms] = np.arange(len(atoms))
            own = own[where[rows[own]] >= 0]
            tensors = (self.exchange[own, None, None] * np.eye(3)[None] if self.isotropic
                       else self.tensors[self.tensor_index[own]])
            np.add.at(hess, where[rows[own]], -tensors)
        si = s[atoms]
        return np.trace(hess, axis1=1, axis2=2) - np.einsum("ai,aij,aj->a", si, hess, si)

    # ------------------------------------------------------------------ tables for integrators
    def per_moment_entries(self, moments, onsite=True):
        """The couplings as fields per moment, for integrators that build their own tables:
        ``(rows, cols, mats, b)`` with rotation fields H_i = Σ_{e: rows[e] = i} mats[e] s_{cols[e]} + b_i
        (eV/μB): rows, cols (E,) int64, mats (E, 3, 3) = J_p/|m_i| for every pair coupling and (with
        ``onsite``) 2 A_i/|m_i| on the diagonal (i, i) of atoms with an on-site form, b (N, 3) the
        field (zeros if none). Non-magnetic atoms have no entries."""
        moments = np.asarray(moments, dtype=np.float64)
        n = self.n_atoms
        rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(self.offsets))
        inv = np.zeros(n)
        np.divide(1.0, moments, out=inv, where=moments > 0)
        mats = self.pair_tensors() * inv[rows, None, None]
        cols = np.asarray(self.neighbors, dtype=np.int64)
        if onsite and self.onsite is not None:
            at = np.flatnonzero((moments > 0) & np.any(self.onsite.reshape(n, 9) != 0, axis=1))
            rows = np.concatenate([rows, at])
            cols = np.concatenate([cols, at])
            mats = np.concatenate([mats, 2.0 * self.onsite[at] * inv[at, None, None]])
        b = np.zeros((n, 3)) if self.field is None else self.field.copy()
        return rows, cols, mats, b

    # ------------------------------------------------------------------ sums
    def __add__(self, other: "LinearSpinCouplings") -> "LinearSpinCouplings":
        if not isinstance(other, LinearSpinCouplings):
            return NotImplemented
        return LinearSpinCouplings.merge([self, other])

    @staticmethod
    def merge(parts) -> "LinearSpinCouplings":
        """The couplings of a sum of terms: pair tables joined row by row (each row lists the
        first part's couplings, then the next part's; scalar and tensor tables give a tensor table),
        fields, on-site forms and offsets added. Parts without pair couplings cost no copy of the
        others' tables. Raises :class:`~spinlat.errors.ShapeError` for different atom counts."""
        parts = list(parts)
        if not parts:
            raise InputError("LinearSpinCouplings.merge needs at least one part")
        n = parts[0].n_atoms
        for c in parts:
            if c.n_atoms != n:
                raise ShapeError(f"cannot merge couplings of {n} and {c.n_atoms} atoms")
        if len(parts) == 1:
            return parts[0]
        paired = [c for c in parts if c.n_couplings]
        field = _sum_arrays([c.field for c in parts])
        onsite = _sum_arrays([c.onsite for c in parts])
        if any(c._offset is not None for c in parts):
            lazy = [c for c in parts if c._offset is not None]
            offset = lazy[0]._offset if len(lazy) == 1 else (lambda: _sum_arrays([c.offset for c in lazy]))
        else:
            offset = None
        if all(c._self is False for c in parts):
            selfc = False
        else:
            def selfc():
                masks = [m for m in (c.self_coupled_mask() for c in parts) if m is not False]
                return np.logical_or.reduce(masks) if masks else False
        if not paired:
            return LinearSpinCouplings(n, field=field, onsite=onsite, offset=offset, self_coupled=selfc)
        if len(paired) == 1:
            c = paired[0]
            return LinearSpinCouplings(n, c.offsets, c.neighbors, c.exchange, c.tensor_index, c.tensors, field, onsite,
                                       offset, selfc)
        rows = np.concatenate([np.repeat(np.arange(n, dtype=np.int64), np.diff(c.offsets)) for c in paired])
        order = np.argsort(rows, kind="stable")
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=n), out=offsets[1:])
        itype = np.int64 if any(c.neighbors.dtype == np.int64 for c in paired) else np.int32
        nbr = np.concatenate([c.neighbors.astype(itype, copy=False) for c in paired])[order]
        if all(c.isotropic for c in paired):
            ex = np.concatenate([c.exchange for c in paired])[order]
            return LinearSpinCouplings(n, offsets, nbr, exchange=ex, field=field, onsite=onsite, offset=offset,
                                       self_coupled=selfc)
        tables, index, base = [], [], 0
        for c in paired:
            if c.isotropic:
                values, idx = np.unique(c.exchange, return_inverse=True)
                tab = values[:, None, None] * np.eye(3)[None]
            else:
                tab, idx = c.tensors, c.tensor_index
            tables.append(tab)
            index.append(np.asarray(idx, dtype=np.int64).reshape(-1) + base)
            base += len(tab)
        tidx = np.concatenate(index)[order].astype(np.int32)
        return LinearSpinCouplings(n, offsets, nbr, tensor_index=tidx, tensors=np.concatenate(tables), field=field,
                                   onsite=onsite, offset=offset, self_coupled=selfc)


def _sum_arrays(arrays):
    present = [a for a in arrays if a is not None]
    if not present:
        return None
    if len(present) == 1:
        return present[0]
    out = present[0].copy()
    for a in present[1:]:
        out += a
    return out


# ------------------------------------------------------------------------------------- kernels
@numba.njit(cache=True)
def _self_coupled(c, out):
    """out[i] = atom i has a non-zero on-site form or a non-zero coupling with itself."""
    offsets, neighbors, exchange, tensor_index, tensors, iso, field, onsite = c
    for i in range(offsets.shape[0] - 1):
        hit = False
        if onsite.shape[0] > 0:
            for a in range(3):
                for b in range(3):
                    if onsite[i, a, b] != 0.0:
                        hit = True
        for p in range(offsets[i], offsets[i + 1]):
            if neighbors[p] != i:
                continue
            if iso:
                if exchange[p] != 0.0:
                    hit = True
            else:
                t = tensor_index[p]
                for a in range(3):
                    for b in range(3):
                        if tensors[t, a, b] != 0.0:
                            hit = True
        out[i] = hit


@numba.njit(cache=True, fastmath=_FMA, inline="always")
def coupled_row(c, s, i):
    """g_i = Σ_{p ∈ row i} J_p s_{j_p} + 2 A_i s_i (eV) of atom i for spins ``s`` (N, 3), ``c`` the
    couplings as :meth:`LinearSpinCouplings.kernel_arrays` gives them (the field is not
    included); the pair sum runs in the row's order. Inlined into the kernels that call it
    (:func:`coupled_rows`, the spin integrators' colour sweep): no call, and the same operations
    in each, so the same bits."""
    offsets, neighbors, exchange, tensor_index, tensors, iso, field, onsite = c
    gx = gy = gz = 0.0
    if iso:
        for p in range(offsets[i], offsets[i + 1]):
            j = neighbors[p]
            w = exchange[p]
            gx += w * s[j, 0]
            gy += w * s[j, 1]
            gz += w * s[j, 2]
    else:
        for p in range(offsets[i], offsets[i + 1]):
            j = neighbors[p]
            t = tensor_index[p]
            x, y, z = s[j, 0], s[j, 1], s[j, 2]
            gx += tensors[t, 0, 0] * x + tensors[t, 0, 1] * y + tensors[t, 0, 2] * z
            gy += tensors[t, 1, 0] * x + tensors[t, 1, 1] * y + tensors[t, 1, 2] * z
            gz += tensors[t, 2, 0] * x + tensors[t, 2, 1] * y + tensors[t, 2, 2] * z
    if onsite.shape[0] > 0:
        x, y, z = s[i, 0], s[i, 1], s[i, 2]
        gx += 2.0 * (onsite[i, 0, 0] * x + onsite[i, 0, 1] * y + onsite[i, 0, 2] * z)
        gy += 2.0 * (onsite[i, 1, 0] * x + onsite[i, 1, 1] * y + onsite[i, 1, 2] * z)
        gz += 2.0 * (onsite[i, 2, 0] * x + onsite[i, 2, 1] * y + onsite[i, 2, 2] * z)
    return gx, gy, gz


def _rows_kernel(threaded):
    """:func:`coupled_rows`, serial (``threaded`` False) or with threads over the atoms (True): one
    Python function compiled twice, so that both give the same bits (the flag, a closure constant,
    also keeps their numba cache entries apart)."""

    @numba.njit(cache=True, fastmath=_FMA, parallel=threaded)
    def rows(c, spins, atoms, g):
        """g[k, a] = :func:`coupled_row` of atom atoms[a] in every image k of spins (M, N, 3), g
        (M, len(atoms), 3)."""
        _ = threaded  # a closure constant: it keeps the numba cache entries of the two variants apart
        for k in range(spins.shape[0]):
            s = spins[k]
            for a in numba.prange(atoms.shape[0]):
                gx, gy, gz = coupled_row(c, s, atoms[a])
                g[k, a, 0] = gx
                g[k, a, 1] = gy
                g[k, a, 2] = gz

    return rows


#: g = −∂E/∂s − |m| b of listed atoms, one thread (see :func:`_rows_kernel`)
coupled_rows = _rows_kernel(False)
#: the same with threads over the atoms (the same bits)
coupled_rows_parallel = _rows_kernel(True)


@numba.njit(cache=True, fastmath=_FMA)
def _energies_and_forces(field, offset, spins, moments, g, want_e, want_h, energies, h):
    """From g of :func:`coupled_rows` (all atoms): per-atom energies e (eV) and magnetic forces h
    (eV/μB) of every image of spins (M, N, 3) (module docstring), written when asked for;
    ``field`` (N, 3) or (0, 3), ``offset`` (N,) or (0,)."""
    has_field = field.shape[0] > 0
    has_offset = offset.shape[0] > 0
    for k in range(spins.shape[0]):
        for i in range(spins.shape[1]):
            m = moments[i]
            gx, gy, gz = g[k, i, 0], g[k, i, 1], g[k, i, 2]
            sx, sy, sz = spins[k, i, 0], spins[k, i, 1], spins[k, i, 2]
            gs = gx * sx + gy * sy + gz * sz
            bx = by = bz = 0.0
            if has_field:
                bx, by, bz = field[i, 0], field[i, 1], field[i, 2]
            if want_e:
                e = -0.5 * gs - m * (bx * sx + by * sy + bz * sz)
                if has_offset:
                    e += offset[i]
                energies[k, i] = e
            if want_h:
                if m > 0.0:
                    inv = 1.0 / m
                    h[k, i, 0] = (gx - gs * sx) * inv + bx
                    h[k, i, 1] = (gy - gs * sy) * inv + by
                    h[k, i, 2] = (gz - gs * sz) * inv + bz
                else:
                    h[k, i, 0] = h[k, i, 1] = h[k, i, 2] = 0.0


def reference_evaluate(couplings: LinearSpinCouplings, spins, moments):
    """NumPy reference of :meth:`LinearSpinCouplings.evaluate` for spins (N, 3): per-atom energies
    (N,) eV and magnetic forces (N, 3) eV/μB, written from the energy of the module docstring
    term by term (no kernel shared)."""
    c = couplings
    s = np.asarray(spins, dtype=np.float64)
    mom = np.asarray(moments, dtype=np.float64)
    n = c.n_atoms
    rows = np.repeat(np.arange(n), np.diff(c.offsets))
    J = c.pair_tensors()
    g = np.zeros((n, 3))
    np.add.at(g, rows, np.einsum("pab,pb->pa", J, s[c.neighbors]))
    if c.onsite is not None:
        g += 2.0 * np.einsum("iab,ib->ia", c.onsite, s)
    b = np.zeros((n, 3)) if c.field is None else c.field
    e = -0.5 * np.einsum("ia,ia->i", s, g) - mom * np.einsum("ia,ia->i", b, s)
    if c.offset is not None:
        e = e + c.offset
    mag = mom > 0
    h = np.zeros((n, 3))
    proj = g - np.einsum("ia,ia->i", g, s)[:, None] * s
    h[mag] = proj[mag] / mom[mag, None] + b[mag]
    return e, h


__all__ = ["LinearSpinCouplings", "coupled_row", "coupled_rows", "coupled_rows_parallel", "reference_evaluate"]
