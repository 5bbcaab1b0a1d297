"""The field engine: magnetic forces and rotation fields of a potential for spin integrators.

Every spin integrator (SpinLatticeNVE/Langevin sweeps, LLG, Monte Carlo, the minimiser, GNEB)
asks one :class:`SpinFieldEngine` for the fields of all atoms or of one colour class. The engine
splits the potential's magnetic terms in two:

- the *fused* terms, whose :meth:`~spinlat.potentials.base.Potential.spin_couplings` gives
  :class:`~spinlat.potentials.couplings.LinearSpinCouplings` (Heisenberg, Bethe-Slater exchange
  on a frozen lattice, Zeeman, uniaxial anisotropy), merged into one coupling table that one
  numba kernel evaluates;
- the other terms (``extra``: cubic anisotropy, Landau, mMACE, any term without couplings),
  asked through their public ``local_fields`` / ``rotation_fields``.

Terms with ``magnetic = False`` (EAM) do not depend on the spins and are skipped. Each fused
term's couplings are checked once per engine, on random spins, against the term's own
``local_fields`` (largest deviation ≤ 1e-12 of the largest field); a term that fails stays on
the general path. The engine never reads a potential's private attributes nor tests its class.

The module also holds the table forms of couplings that the integrators' kernels read: a CSR
table of per-moment 3×3 fields summed over equal (i, j) (:func:`merge_entries`) and its
compressed form with the distinct matrices (:func:`compress_couplings`,
:func:`isotropic_couplings`).
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..potentials.base import term_couplings
from ..potentials.couplings import LinearSpinCouplings

#: largest deviation of a term's couplings from its local_fields, relative to the largest field
_REPRODUCE_TOLERANCE = 1e-12


class SpinFieldEngine:
    """Magnetic forces h = −∂E/∂m (eV/μB) and rotation fields of ``potential`` for spin integrators.

    Parameters
    ----------
    potential : any :class:`~spinlat.potentials.base.Potential`.
    fuse : use the terms' couplings (False: every magnetic term through ``local_fields``, the
        general path, e.g. to test the fused one).

    Call :meth:`update` with the state (and the neighbour list the integrator keeps) whenever
    the positions, atomic numbers or magnetic atoms may have changed; it is cheap when they have
    not (the terms cache their couplings). Then ``couplings`` holds the merged couplings of the
    fused terms (an empty table when there are none), ``fused`` and ``extra`` the two kinds of
    terms, and the field methods read the spins and moments of the state they are given.
    """

    def __init__(self, potential, fuse=True):
        self.potential = potential
        self.terms = [t for t in potential.terms if t.magnetic]
        self.fuse = bool(fuse)
        self._ok = {}  # id(term) -> its couplings reproduce its local_fields
        self.couplings = None
        self.fused, self.extra = [], list(self.terms)
        self._lattice = None  # (state arrays, neighbour list, energy of the non-magnetic terms)

    @property
    def complete(self) -> bool:
        """Every magnetic term is fused: the couplings alone give all magnetic forces."""
        return not self.extra

    def update(self, state, neighbors=None) -> LinearSpinCouplings:
        """The couplings of the fused terms for the lattice of ``state`` (positions, numbers,
        magnetic atoms; ``neighbors``: the potential's neighbour list, up to date for ``state``,
        or None); also sets ``couplings``, ``fused`` and ``extra``."""
        parts, fused, extra = [], [], []
        for t in self.terms:
            c = None
            if self.fuse and self._ok.get(id(t), True):
                c = term_couplings(t, state, neighbors)
                if c is not None and id(t) not in self._ok:
                    self._ok[id(t)] = _reproduces(t, c, state, neighbors)
                    if not self._ok[id(t)]:
                        c = None
            if c is None:
                extra.append(t)
            else:
                parts.append(c)
                fused.append(t)
        self.fused, self.extra = fused, extra
        self.couplings = LinearSpinCouplings.merge(parts) if parts else LinearSpinCouplings(len(state))
        return self.couplings

    # ------------------------------------------------------------------ fields
    def magnetic_forces(self, state, neighbors=None, atoms=None) -> np.ndarray:
        """h = −∂E/∂m (eV/μB) of ``atoms`` (default all) at ``state``'s spins and moments,
        (len(atoms), 3): what ``potential.local_fields`` gives."""
        h = self.couplings.magnetic_forces(state.spins, state.moments, atoms)
        if self.extra:
            atoms = np.arange(len(state), dtype=np.int64) if atoms is None else np.asarray(atoms, dtype=np.int64)
            for t in self.extra:
                h = h + t.local_fields(state, neighbors if t.cutoff > 0 else None, atoms)
        return h

    def rotation_fields(self, state, neighbors, atoms) -> np.ndarray:
        """Unprojected fields (eV/μB, (len(atoms), 3)) about which integrators rotate the spins
        ``atoms``: the couplings' H_i = g_i/|m_i| + b_i plus the other terms' ``rotation_fields``
        (see :meth:`Potential.rotation_fields <spinlat.potentials.base.Potential.rotation_fields>`)."""
        h = self.couplings.rotation_fields(state.spins, state.moments, atoms)
        for t in self.extra:
            h = h + t.rotation_fields(state, neighbors if t.cutoff > 0 else None, atoms)
        return h

    def self_dependent(self) -> bool:
        """Whether some spin's rotation field depends on that spin itself (an on-site form or a
        self-image coupling in the couplings, or any term of the general path): a fixed-axis
        rotation is then not its exact motion."""
        return bool(self.extra) or self.couplings.self_coupled

    def lattice_energy(self, state, neighbors=None) -> float:
        """Energy (eV) of the terms that do not depend on spins (``magnetic = False``) at the
        positions of ``state``, kept while the positions, cell and numbers stay the same."""
        lat = self._lattice
        if lat is not None and lat[0] is state.positions and lat[1] is state.cell and lat[2] is state.numbers:
            return lat[3]
        e = 0.0
        for t in self.potential.terms:
            if not t.magnetic:
                e += t.compute(state, neighbors if t.cutoff > 0 else None, forces=False,
                               magnetic_forces=False).energy
        self._lattice = (state.positions, state.cell, state.numbers, e)
        return e

    def evaluate_images(self, state, spins, neighbors=None):
        """Total energies (eV, (M,)) and magnetic forces (eV/μB, (M, N, 3)) of the potential for
        the spin configurations ``spins`` (M, N, 3) on the lattice and moments of ``state``, in
        one kernel call over all images. Needs :attr:`complete` (call :meth:`update` first);
        raises InputError otherwise."""
        if not self.complete:
            raise InputError("SpinFieldEngine.evaluate_images: some magnetic term has no linear couplings")
        e, h = self.couplings.evaluate(spins, state.moments)
        return e.sum(axis=1) + self.lattice_energy(state, neighbors), h


def _reproduces(term, couplings, state, neighbors, chunk=1024) -> bool:
    """Whether ``couplings`` give the magnetic forces of ``term``'s own ``local_fields`` on random
    spins (fixed seed), to :data:`_REPRODUCE_TOLERANCE` of the largest field; compared ``chunk``
    atoms at a time (bounded temporaries on large systems)."""
    n = len(state)
    probe = np.random.default_rng(0).normal(size=(n, 3))
    probe /= np.linalg.norm(probe, axis=1)[:, None]
    trial = state.with_arrays(spins=probe)
    nl = neighbors if term.cutoff > 0 else None
    worst = scale = 0.0
    for start in range(0, n, chunk):
        atoms = np.arange(start, min(start + chunk, n), dtype=np.int64)
        ref = np.asarray(term.local_fields(trial, nl, atoms), dtype=np.float64)
        if ref.shape != (len(atoms), 3):
            return False
        got = couplings.magnetic_forces(probe, state.moments, atoms)
        worst = max(worst, float(np.abs(got - ref).max(initial=0.0)))
        scale = max(scale, float(np.abs(ref).max(initial=0.0)))
    return worst <= _REPRODUCE_TOLERANCE * scale


# ------------------------------------------------------------------------------------- table forms
def merge_entries(n, rows, cols, mats):
    """Sum (i, j, 3×3) entries with equal (i, j) into a CSR table ``(offs, nbr, jmat)``: lists
    ``rows``, ``cols`` of int arrays and ``mats`` of (E, 3, 3) arrays (eV/μB fields per spin),
    sorted by (i, j)."""
    if rows:
        i = np.concatenate(rows)
        j = np.concatenate(cols)
        m = np.concatenate(mats)
    else:
        i = j = np.zeros(0, np.int64)
        m = np.zeros((0, 3, 3))
    order = np.lexsort((j, i))
    i, j, m = i[order], j[order], m[order]
    if len(i):
        first = np.ones(len(i), dtype=bool)
        first[1:] = (i[1:] != i[:-1]) | (j[1:] != j[:-1])
        starts = np.flatnonzero(first)
        m = np.add.reduceat(m, starts, axis=0)
        i, j = i[starts], j[starts]
    offs = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(i, minlength=n), out=offs[1:])
    return offs, np.ascontiguousarray(j, dtype=np.int64), np.ascontiguousarray(m)


def per_moment_table(couplings: LinearSpinCouplings, moments):
    """CSR table ``(offs, nbr, jmat)`` of the rotation fields per moment of ``couplings``
    (:meth:`LinearSpinCouplings.per_moment_entries`, equal (i, j) summed) and the field b (N, 3),
    eV/μB: H_i = Σ_{p in row i} jmat[p] s_nbr[p] + b_i."""
    rows, cols, mats, b = couplings.per_moment_entries(moments)
    return merge_entries(couplings.n_atoms, [rows], [cols], [mats]), b


def compress_couplings(offs, nbr, jmat):
    """Compressed coupling table (offs, nbr, tidx, tens) of a CSR table (offs, nbr, jmat): the
    distinct 3×3 matrices ``tens`` (T, 3, 3) and, per entry, ``tidx`` (int32) with
    jmat[p] == tens[tidx[p]]; ``nbr`` as int32. A periodic crystal has a handful of distinct
    matrices, so the kernels read 8 bytes per coupling instead of 80."""
    nbr = np.asarray(nbr)
    if len(nbr) and int(nbr.max()) >= 2**31 - 1:
        raise InputError("coupling table: more than 2**31 atoms are not supported")
    if len(jmat):
        tens, tidx = np.unique(np.asarray(jmat, np.float64).reshape(-1, 9), axis=0, return_inverse=True)
    else:
        tens, tidx = np.zeros((1, 9)), np.zeros(0, np.int64)
    return (np.ascontiguousarray(offs, dtype=np.int64), np.ascontiguousarray(nbr, dtype=np.int32),
            np.ascontiguousarray(tidx.reshape(-1), dtype=np.int32), np.ascontiguousarray(tens.reshape(-1, 3, 3)))


def isotropic_couplings(tens):
    """Scalar couplings jiso (T,) (eV/μB) if every matrix of ``tens`` (T, 3, 3) is exactly
    jiso[t]·1 (isotropic Heisenberg exchange: zero off-diagonal, equal diagonal elements), else
    None. The scalar kernels then read one number per coupling instead of a 3×3 matrix."""
    t = np.asarray(tens, np.float64).reshape(-1, 9)
    if not len(t):
        return None
    if np.any(t[:, [1, 2, 3, 5, 6, 7]] != 0) or np.any(t[:, 4] != t[:, 0]) or np.any(t[:, 8] != t[:, 0]):
        return None
    return np.ascontiguousarray(t[:, 0])


__all__ = ["SpinFieldEngine", "compress_couplings", "isotropic_couplings", "merge_entries", "per_moment_table"]
