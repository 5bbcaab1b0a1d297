"""Neighbour lists for periodic (triclinic) and open cells.

Pairs are built in O(N) by vesin (cell lists, any cutoff, including cutoffs larger than half
the box) and stored as plain arrays that numba kernels consume. What a :class:`NeighborList`
holds (about 6 bytes per ordered pair; 58 pairs per atom for bcc Fe at 5.6 Å):

- ``offsets``: CSR pointer (int64), the neighbours of atom a are ``j[offsets[a]:offsets[a+1]]``,
  each row sorted by (partner, shift): the full list, both i→j and j→i;
- ``j``: partner of each ordered pair (int32, int64 beyond 2³¹ atoms);
- ``shift_index``: per pair the row of ``unique_shifts`` (int16 while every shift is within ±15
  cells, else int32), the distinct integer cell shifts S (K, 3) so that the vector from i to
  j is r_j − r_i + S·cell; ``unique_vectors`` (K, 3) Å are S·cell.

The per-pair arrays of the expanded form, ``i`` (the row of each pair, sorted), ``shifts``
(P, 3), ``shift_vectors`` (P, 3) Å and ``half`` (indices that pick each unordered pair once),
are made on first use and kept until the next build: kernels that read the compact form never
pay their memory (44 bytes per pair).

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
    and shifts as ``index_dtype`` (None: as vesin gives them)."""
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
    if mixed and np.any(S[:, ~pbc]):  # pragma: no cover - excluded by the construction
        raise RuntimeError("neighbour search found an image across an open boundary")
    if index_dtype is None:  # as vesin gives them
        return i, j, S, d
    return i.astype(index_dtype), j.astype(index_dtype), S.astype(index_dtype, copy=False), d


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


@numba.njit(cache=True)
def shift_range(S):
    """Largest |component| of the integer lattice shifts S (K, 3) (0 when K = 0)."""
    rmax = 0
    for k in range(S.shape[0]):
        for a in range(3):
            v = abs(S[k, a])
            if v > rmax:
                rmax = v
    return rmax


@numba.njit(cache=True)
def _full_from_half(n, hi, hj, S, rmax, nbr, sidx):
    """Full CSR list from a half list (each unordered pair once: atoms ``hi``, ``hj``, shifts
    ``S`` (H, 3), |S| ≤ ``rmax``), written to ``nbr`` (2H,) partners and ``sidx`` (2H,) shift
    indices (any integer dtypes wide enough); returns offsets (n+1,) int64 and the distinct
    shifts (K, 3) int64 ``sidx`` points into. Each row is sorted by (partner, shift code); the
    distinct shifts are numbered in order of first appearance in the sorted list."""
    h = hi.shape[0]
    w = 2 * rmax + 1
    w3 = w * w * w
    offsets = np.zeros(n + 1, dtype=np.int64)
    for k in range(h):
        offsets[hi[k] + 1] += 1
        offsets[hj[k] + 1] += 1
    for a in range(n):
        offsets[a + 1] += offsets[a]
    # scatter (partner, shift code) into the rows: nbr holds the partner, sidx the code for now
    fill = offsets[:-1].copy()
    for k in range(h):
        code = ((S[k, 0] + rmax) * w + S[k, 1] + rmax) * w + S[k, 2] + rmax
        a, b = hi[k], hj[k]
        nbr[fill[a]] = b
        sidx[fill[a]] = code
        fill[a] += 1
        nbr[fill[b]] = a
        sidx[fill[b]] = w3 - 1 - code  # the reverse pair: shift −S
        fill[b] += 1
    lookup = np.full(w3, -1, dtype=np.int64)
    uniq = np.empty((min(w3, max(2 * h, 1)), 3), dtype=np.int64)
    nu = 0
    maxrow = 0
    for a in range(n):
        maxrow = max(maxrow, offsets[a + 1] - offsets[a])
    keys = np.empty(maxrow, dtype=np.int64)
    for a in range(n):
        p0 = offsets[a]
        m = offsets[a + 1] - p0
        for q in range(m):
            keys[q] = np.int64(nbr[p0 + q]) * w3 + sidx[p0 + q]
        row = np.sort(keys[:m])
        for q in range(m):
            key = row[q]
            j = key // w3
            code = key - j * w3
            u = lookup[code]
            if u < 0:
                u = nu
                lookup[code] = u
                uniq[u, 0] = code // (w * w) - rmax
                uniq[u, 1] = (code // w) % w - rmax
                uniq[u, 2] = code % w - rmax
                nu += 1
            nbr[p0 + q] = j
            sidx[p0 + q] = u
    return offsets, uniq[:nu].copy()


def positive_shifts(unique_shifts):
    """Per distinct shift: whether it is lexically positive (first non-zero component > 0)."""
    S = np.asarray(unique_shifts)
    lex = np.where(S[:, 0] != 0, S[:, 0], np.where(S[:, 1] != 0, S[:, 1], S[:, 2]))
    return lex > 0


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
        """Build the list for ``state`` with cutoff + skin (vesin's half list, expanded here to
        the compact full list: the peak memory of a build is that of the half list)."""
        n = len(state)
        # int32 indices (half the memory of int64) while they fit
        itype = np.int32 if n < 2**31 - 1 else np.int64
        for name in _EXPANDED:
            self.__dict__.pop(name, None)
        self.offsets = self.j = self.shift_index = None  # let the old list go first
        hi, hj, S, _ = _vesin_pairs(state.positions, state.cell, state.pbc, self.cutoff + self.skin, full=False,
                                    index_dtype=None, distances=False)
        rmax = int(shift_range(S))
        # the shift codes (and later the shift indices) fit int16 when (2 rmax + 1)³ < 2¹⁵
        nbr = np.empty(2 * len(hi), dtype=itype)
        sidx = np.empty(2 * len(hi), dtype=np.int16 if (2 * rmax + 1) ** 3 < 2**15 else np.int32)
        offsets, uniq = _full_from_half(n, hi, hj, S, rmax, nbr, sidx)
        del hi, hj, S
        self.offsets, self.j, self.shift_index = offsets, nbr, sidx
        self.unique_shifts = uniq.astype(itype)
        self.unique_vectors = np.ascontiguousarray(uniq.astype(np.float64) @ np.asarray(state.cell, np.float64))
        self._itype = itype
        self._ref_positions = state.positions.copy()
        self._ref_cell = state.cell.copy()
        self._ref_pbc = state.pbc.copy()
        self._ref_numbers = state.numbers.copy()
        self.n_builds += 1

    # the expanded per-pair arrays, made on first use (see the module docstring)
    @property
    def i(self):
        """Row (atom) of every ordered pair, (P,) int32 (int64 beyond 2³¹ atoms), sorted."""
        if "i" not in self.__dict__:
            n = len(self.offsets) - 1
            self.__dict__["i"] = np.repeat(np.arange(n, dtype=self._itype), np.diff(self.offsets))
        return self.__dict__["i"]

    @property
    def shifts(self):
        """Integer cell shift S of every pair, (P, 3) (the vector from i to j is r_j − r_i + S·cell)."""
        if "shifts" not in self.__dict__:
            self.__dict__["shifts"] = self.unique_shifts[self.shift_index]
        return self.__dict__["shifts"]

    @property
    def shift_vectors(self):
        """S·cell of every pair, (P, 3) Å."""
        if "shift_vectors" not in self.__dict__:
            self.__dict__["shift_vectors"] = self.unique_vectors[self.shift_index]
        return self.__dict__["shift_vectors"]

    @property
    def half(self):
        """Indices (int64) into the full list that pick each unordered pair once: i < j, or
        i == j with a lexically positive shift."""
        if "half" not in self.__dict__:
            i, j = self.i, self.j
            self.__dict__["half"] = np.flatnonzero(
                (i < j) | ((i == j) & positive_shifts(self.unique_shifts)[self.shift_index])).astype(np.int64)
        return self.__dict__["half"]

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
        return positions[self.j] - positions[self.i] + self.unique_vectors[self.shift_index]

    def __len__(self) -> int:
        return len(self.j)


_EXPANDED = ("i", "shifts", "shift_vectors", "half")
