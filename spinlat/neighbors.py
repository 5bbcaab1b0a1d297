"""Neighbour lists for periodic (triclinic) and open cells.

Pairs are built in O(N) by vesin (cell lists, any cutoff, including cutoffs larger than half
the box) and stored as plain arrays that numba kernels consume:

- ``i``, ``j``: atom indices of each ordered pair (full list: both i→j and j→i), sorted by ``i``
  (int32, int64 beyond 2³¹ atoms; ``shifts`` likewise);
- ``offsets``: CSR pointer, the neighbours of atom a are ``j[offsets[a]:offsets[a+1]]``;
- ``shifts``: integer cell shifts S so that the vector from i to j is r_j − r_i + S·cell;
- ``half``: indices into the full list that pick each unordered pair once.

Only the cell vectors along periodic directions are used: along non-periodic ones any vector,
zero included (ASE's 2D cells), gives the same pairs.

A :class:`NeighborList` is built with ``cutoff + skin`` and rebuilt only when some atom has
moved more than half the skin, or when the cell, pbc or atoms changed.
"""

from __future__ import annotations

import numba
import numpy as np

from .errors import InputError


def _vesin_pairs(positions, cell, pbc, cutoff, full=True, sort=False, index_dtype=np.int64, distances=True):
    """(i, j, S, d) of the pairs closer than ``cutoff`` (d None unless ``distances``); indices
    and shifts as ``index_dtype``."""
    from vesin import NeighborList as _VesinNL

    if cutoff <= 0:
        raise InputError(f"neighbour cutoff must be positive, got {cutoff} Å")
    pbc = np.asarray(pbc, dtype=bool)
    box = np.array(cell, dtype=np.float64)
    pos = np.ascontiguousarray(positions, dtype=np.float64)
    mixed = bool(pbc.any() and not pbc.all())
    if not pbc.any():  # nothing periodic: the cell is not used
        box = np.zeros((3, 3))
    if mixed:
        # vesin 0.6 is very slow for mixed pbc (seconds for a few atoms at small cutoffs):
        # solve the equivalent fully periodic problem whose open directions have images too
        # far away to interact
        box = _far_image_cell(pos, box, pbc, cutoff)
    calc = _VesinNL(cutoff=float(cutoff), full_list=full, sorted=sort)
    out = calc.compute(pos, box, [True] * 3 if mixed else pbc.tolist(), quantities="ijSd" if distances else "ijS")
    i, j, S = out[:3]
    d = out[3] if distances else None
    S = S.astype(index_dtype, copy=False)
    if mixed and np.any(S[:, ~pbc]):  # pragma: no cover - excluded by the construction
        raise RuntimeError("neighbour search found an image across an open boundary")
    return i.astype(index_dtype), j.astype(index_dtype), S, d


def _far_image_cell(positions, cell, pbc, cutoff):
    """Cell equal to ``cell`` along periodic directions, each open direction replaced by a vector
    orthogonal to the periodic ones and longer than the atoms' extent plus the cutoff: no image
    across it comes within the cutoff, so every pair found has zero shift along it."""
    periodic = cell[pbc]
    q, _ = np.linalg.qr(periodic.T, mode="complete")
    normals = q[:, len(periodic):].T
    out = cell.copy()
    for row, k in zip(normals, np.flatnonzero(~pbc)):
        proj = positions @ row
        extent = float(proj.max() - proj.min()) if len(proj) else 0.0
        out[k] = row * (extent + float(cutoff) + 1.0)
    return out


@numba.njit(cache=True)
def _shift_vectors_kernel(shifts, cell, out):
    for p in range(shifts.shape[0]):
        a, b, c = shifts[p, 0], shifts[p, 1], shifts[p, 2]
        for k in range(3):
            out[p, k] = a * cell[0, k] + b * cell[1, k] + c * cell[2, k]


def shift_vectors(shifts, cell):
    """Cartesian vectors (P, 3) Å of integer cell shifts (P, 3)."""
    out = np.empty((len(shifts), 3))
    _shift_vectors_kernel(np.ascontiguousarray(shifts), np.ascontiguousarray(cell, dtype=np.float64), out)
    return out


def neighbor_pairs(state, cutoff, full=False):
    """Pairs closer than ``cutoff`` Å: (i, j, shifts, distances), each unordered pair once
    unless ``full``."""
    return _vesin_pairs(state.positions, state.cell, state.pbc, cutoff, full=full)


def point_pairs(positions, cell, pbc, cutoff, full=False):
    """:func:`neighbor_pairs` of plain arrays: points ``positions`` (N, 3) Å in ``cell`` (3, 3)
    rows with periodic directions ``pbc`` (vectors along non-periodic directions are not used
    and may be zero). Returns (i, j, shifts, distances)."""
    return _vesin_pairs(positions, cell, pbc, cutoff, full=full)


def _half_mask(i, j, S):
    """Pick each unordered pair once from a full list: i < j, or i == j with S > 0 lexically."""
    lex = np.where(S[:, 0] != 0, S[:, 0], np.where(S[:, 1] != 0, S[:, 1], S[:, 2]))
    return (i < j) | ((i == j) & (lex > 0))


class NeighborList:
    """Full neighbour list with a skin and rebuild detection.

    Parameters
    ----------
    cutoff : interaction cutoff, Å.
    skin : extra distance, Å; the list stays valid until an atom moves by more than skin/2.
    """

    def __init__(self, cutoff: float, skin: float = 0.3):
        if not cutoff > 0:
            raise InputError(f"neighbour cutoff must be positive, got {cutoff} Å")
        if skin < 0:
            raise InputError(f"skin must be non-negative, got {skin} Å")
        self.cutoff = float(cutoff)
        self.skin = float(skin)
        self.n_builds = 0
        self._ref_positions = None
        self._ref_cell = None
        self._ref_pbc = None
        self._ref_numbers = None

    def needs_rebuild(self, state) -> bool:
        """True when the list built last cannot be trusted for ``state``."""
        if self._ref_positions is None or len(state) != len(self._ref_positions):
            return True
        if not np.array_equal(state.cell, self._ref_cell) or not np.array_equal(state.pbc, self._ref_pbc):
            return True
        if not np.array_equal(state.numbers, self._ref_numbers):
            return True
        if self.skin == 0:
            return not np.array_equal(state.positions, self._ref_positions)
        disp2 = np.max(np.sum((state.positions - self._ref_positions) ** 2, axis=1), initial=0.0)
        return disp2 > (0.5 * self.skin) ** 2

    def update(self, state) -> bool:
        """Rebuild if needed; return whether a rebuild happened."""
        if not self.needs_rebuild(state):
            return False
        self.build(state)
        return True

    def build(self, state) -> None:
        """Build the list for ``state`` with cutoff + skin."""
        n = len(state)
        # int32 indices and shifts (half the memory of int64) while they fit
        itype = np.int32 if n < 2**31 - 1 else np.int64
        self.i, self.j, self.shifts, _ = _vesin_pairs(state.positions, state.cell, state.pbc,
                                                      self.cutoff + self.skin, full=True, sort=True,
                                                      index_dtype=itype, distances=False)
        self.offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(self.i, minlength=n), out=self.offsets[1:])
        self.half = np.flatnonzero(_half_mask(self.i, self.j, self.shifts)).astype(np.int64)
        self.shift_vectors = shift_vectors(self.shifts, state.cell)
        self._ref_positions = state.positions.copy()
        self._ref_cell = state.cell.copy()
        self._ref_pbc = state.pbc.copy()
        self._ref_numbers = state.numbers.copy()
        self.n_builds += 1

    @property
    def reference_positions(self):
        """Positions (N, 3) Å the list was last built at (None before the first build); the list
        holds every pair closer than cutoff + skin there, and stays valid while no atom moves
        more than skin/2 from them. Read only."""
        ref = self._ref_positions
        if ref is not None:
            ref = ref.view()
            ref.flags.writeable = False
        return ref

    def vectors(self, positions) -> np.ndarray:
        """(P, 3) vectors from atom i to atom j of every pair, Å."""
        return positions[self.j] - positions[self.i] + self.shift_vectors

    def __len__(self) -> int:
        return len(self.i)
