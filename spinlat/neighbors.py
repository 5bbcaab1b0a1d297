"""Neighbour lists for periodic (triclinic) and open cells.

:class:`NeighborList` builds its pairs in O(N) with its own cell lists (:func:`build_compact`:
any cutoff, including cutoffs larger than the box; one pass counts every atom's neighbours,
a second writes them into the final arrays, so a build holds no pair buffer beyond the list)
and stores them as plain arrays that numba kernels consume. What a :class:`NeighborList`
holds (about 6 bytes per ordered pair; 58 pairs per atom for bcc Fe at 5.6 Å):

- ``offsets``: CSR pointer (int64), the neighbours of atom a are ``j[offsets[a]:offsets[a+1]]``,
  each row sorted by (partner, shift in lexical order): the full list, both i→j and j→i;
- ``j``: partner of each ordered pair (int32, int64 beyond 2³¹ atoms);
- ``shift_index``: per pair the row of ``unique_shifts`` (int16 while there are at most 32 768
  distinct shifts, else int32), the distinct integer cell shifts S (K, 3) so that the vector
  from i to j is r_j − r_i + S·cell; ``unique_vectors`` (K, 3) Å are S·cell (odd: the vector
  of −S is exactly minus that of S);
- ``half_start`` (made on first use, 8 bytes per atom): the half list (each unordered pair
  once, in the row of its smaller atom) is the tail ``half_start[a]:offsets[a+1]`` of every row.

The per-pair arrays of the expanded form, ``i`` (the row of each pair, sorted), ``shifts``
(P, 3), ``shift_vectors`` (P, 3) Å and ``half`` (indices that pick each unordered pair once),
are made on first use and kept until the next build: kernels that read the compact form never
pay their memory (44 bytes per pair).

Only the cell vectors along periodic directions are used: along non-periodic ones any vector,
zero included (ASE's 2D cells), gives the same pairs. :func:`neighbor_pairs` and
:func:`point_pairs` (pair arrays for one-off uses) come from the same cell-list build.

A :class:`NeighborList` is built with ``cutoff + skin`` and rebuilt only when some atom has
moved more than half the skin, or when the cell, pbc or atoms changed.
"""

from __future__ import annotations

import numba
import numpy as np

from .errors import InputError


def _pair_arrays(positions, cell, pbc, cutoff, full=True):
    """(i, j, S, d) of the pairs closer than ``cutoff`` Å: indices (P,) int64, integer cell
    shifts S (P, 3) int64 and distances d (P,) Å of r_j − r_i + S·cell, from the cell-list build
    (:func:`build_compact`; rows in order of i, each sorted by (j, S)). ``full``: every ordered
    pair; else each unordered pair once, as (i, j, S) with i < j, or i = j and S > 0 in lexical
    order (the image pairs of an atom with itself). Raises InputError as :func:`build_compact`.

    This was vesin's search until 2026-12-02: vesin imports torch when it is installed (2-7 s
    and ~300 MB in every process that checked a State's distances); the pairs are the same
    (tests/test_neighbors.py checks the build against a brute-force search)."""
    offsets, partners, sidx, shifts = build_compact(positions, cell, pbc, cutoff, index_dtype=np.int64)
    i = np.repeat(np.arange(len(offsets) - 1, dtype=np.int64), np.diff(offsets))
    j = partners
    if not full:
        keep = (i < j) | ((i == j) & positive_shifts(shifts)[sidx])  # self-images once: S lexically > 0
        i, j, sidx = i[keep], j[keep], sidx[keep]
    S = shifts[sidx]
    pos = np.asarray(positions, dtype=np.float64)
    vec = pos[j] - pos[i] + S @ np.asarray(cell, dtype=np.float64)
    return i, j, S, np.sqrt(np.einsum("pk,pk->p", vec, vec))


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
    unless ``full`` (see :func:`_pair_arrays` for the shapes and which of (i, j, S) and
    (j, i, −S) is kept)."""
    return _pair_arrays(state.positions, state.cell, state.pbc, cutoff, full=full)


def point_pairs(positions, cell, pbc, cutoff, full=False):
    """:func:`neighbor_pairs` of plain arrays: points ``positions`` (N, 3) Å in ``cell`` (3, 3)
    rows with periodic directions ``pbc`` (vectors along non-periodic directions are not used
    and may be zero). Returns (i, j, shifts, distances)."""
    return _pair_arrays(positions, cell, pbc, cutoff, full=full)


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



# --------------------------------------------------------------------------------------
# the cell-list build of the compact full list (no intermediate pair buffers)
# --------------------------------------------------------------------------------------

#: bins are at least cutoff / _BINS_PER_CUTOFF high (perpendicular to the other two cell vectors):
#: each atom then scans (2·2 + 1)³ bins of volume (cutoff/2)³, 15.6 cutoff³ of space, against
#: 27 cutoff³ with bins of one cutoff
_BINS_PER_CUTOFF = 2


def _search_cell(positions, cell, pbc, cutoff):
    """(box, bins, reach): the cell the search wraps atoms into (``cell`` along periodic
    directions, :func:`_far_image_cell` along open ones, so that every pair found has a zero
    shift along them), the number of bins along each cell vector (each bin at least
    cutoff/_BINS_PER_CUTOFF high, ≤ about 2 N + 8 bins in all) and the number of neighbouring bins
    each atom scans along each vector (any cutoff, also larger than the cell)."""
    pbc = np.asarray(pbc, dtype=bool)
    box = np.array(cell, dtype=np.float64)
    if not pbc.all():
        box = _far_image_cell(positions, box if pbc.any() else np.zeros((3, 3)), pbc, cutoff)
    vol = abs(float(np.linalg.det(box)))
    heights = np.array([vol / np.linalg.norm(np.cross(box[(k + 1) % 3], box[(k + 2) % 3])) for k in range(3)])
    bins = np.maximum(np.floor(heights * _BINS_PER_CUTOFF / cutoff), 1.0)
    cap = 2.0 * len(positions) + 8.0
    while np.prod(bins) > cap:  # sparse atoms in a large box: fewer, larger bins
        bins = np.maximum(np.floor(bins * 0.8), 1.0)
    reach = np.ceil(cutoff * bins / heights)
    return box, bins.astype(np.int64), reach.astype(np.int64)


@numba.njit(cache=True, inline="always")
def _visit_bins(i, positions, box, img, bins, reach, bin_of, bin_start, bin_atoms, cut2, write, keys, rmax_row):
    """Scan the bins around atom i; count (``write`` False) or write the keys (partner,
    shift) of its neighbours; returns the count and the largest |shift| component."""
    nb0, nb1, nb2 = bins[0], bins[1], bins[2]
    b = bin_of[i]
    b0 = b // (nb1 * nb2)
    b1 = (b // nb2) % nb1
    b2 = b % nb2
    xi, yi, zi = positions[i, 0], positions[i, 1], positions[i, 2]
    c = 0
    smax = 0
    for d0 in range(-reach[0], reach[0] + 1):
        t0 = b0 + d0
        w0 = t0 % nb0
        s0 = (t0 - w0) // nb0
        for d1 in range(-reach[1], reach[1] + 1):
            t1 = b1 + d1
            w1 = t1 % nb1
            s1 = (t1 - w1) // nb1
            for d2 in range(-reach[2], reach[2] + 1):
                t2 = b2 + d2
                w2 = t2 % nb2
                s2 = (t2 - w2) // nb2
                bb = (w0 * nb1 + w1) * nb2 + w2
                for q in range(bin_start[bb], bin_start[bb + 1]):
                    j = bin_atoms[q]
                    # the shift of the original positions: r_j − r_i + S·box
                    S0 = s0 + img[i, 0] - img[j, 0]
                    S1 = s1 + img[i, 1] - img[j, 1]
                    S2 = s2 + img[i, 2] - img[j, 2]
                    if j == i and S0 == 0 and S1 == 0 and S2 == 0:
                        continue
                    dx = positions[j, 0] - xi + S0 * box[0, 0] + S1 * box[1, 0] + S2 * box[2, 0]
                    dy = positions[j, 1] - yi + S0 * box[0, 1] + S1 * box[1, 1] + S2 * box[2, 1]
                    dz = positions[j, 2] - zi + S0 * box[0, 2] + S1 * box[1, 2] + S2 * box[2, 2]
                    if dx * dx + dy * dy + dz * dz < cut2:
                        if write:
                            keys[c, 0] = j
                            keys[c, 1] = S0
                            keys[c, 2] = S1
                            keys[c, 3] = S2
                        smax = max(smax, abs(S0), abs(S1), abs(S2))
                        c += 1
    rmax_row[0] = smax
    return c


def _builder_kernels(threaded):
    """The two passes of the build, serial or with threads over the atoms (the same result: every
    atom's row is written by one thread, in a fixed order). The kernels capture only the flag: a
    captured dispatcher (such as a helper defined here) would change the numba cache key in every
    process, so every process would compile them again (and add a cache file)."""

    @numba.njit(cache=True, parallel=threaded)
    def count(positions, box, img, bins, reach, bin_of, bin_start, bin_atoms, cut2, counts, smax):
        """Neighbours of every atom (``counts``) and the largest |shift| component of its pairs."""
        _ = threaded
        nokeys = np.empty((0, 4), dtype=np.int64)
        for i in numba.prange(positions.shape[0]):
            r = np.zeros(1, dtype=np.int64)
            counts[i] = _visit_bins(i, positions, box, img, bins, reach, bin_of, bin_start, bin_atoms, cut2,
                                    False, nokeys, r)
            smax[i] = r[0]

    @numba.njit(cache=True, parallel=threaded)
    def fill(positions, box, img, bins, reach, bin_of, bin_start, bin_atoms, cut2, offsets, rmax, nbr, code):
        """Row i of the list: partners ``nbr`` and shift codes ``code`` ((S + rmax) in base
        2 rmax + 1), sorted by (partner, code)."""
        _ = threaded
        w = 2 * rmax + 1
        w3 = w * w * w
        for i in numba.prange(positions.shape[0]):
            p0 = offsets[i]
            m = offsets[i + 1] - p0
            keys = np.empty((m, 4), dtype=np.int64)
            r = np.zeros(1, dtype=np.int64)
            _visit_bins(i, positions, box, img, bins, reach, bin_of, bin_start, bin_atoms, cut2, True, keys, r)
            flat = np.empty(m, dtype=np.int64)
            for q in range(m):
                flat[q] = keys[q, 0] * w3 + ((keys[q, 1] + rmax) * w + keys[q, 2] + rmax) * w + keys[q, 3] + rmax
            flat.sort()
            for q in range(m):
                j = flat[q] // w3
                nbr[p0 + q] = j
                code[p0 + q] = flat[q] - j * w3

    return count, fill


_count_serial, _fill_serial = _builder_kernels(False)
_count_parallel, _fill_parallel = _builder_kernels(True)

#: below this many atoms the build runs on one thread (a module parameter: the list does not
#: change by a bit)
PARALLEL_MIN_ATOMS = 8192


@numba.njit(cache=True)
def _bin_atoms(frac, bins):
    """Bin of every atom (wrapped fractional coordinates ``frac`` (N, 3) in [0, 1)) and the atoms of
    every bin, CSR (bin_start, bin_atoms int32), atoms in increasing order."""
    n = frac.shape[0]
    nb0, nb1, nb2 = bins[0], bins[1], bins[2]
    bin_of = np.empty(n, dtype=np.int64)
    start = np.zeros(nb0 * nb1 * nb2 + 1, dtype=np.int64)
    for a in range(n):
        b0 = min(int(frac[a, 0] * nb0), nb0 - 1)
        b1 = min(int(frac[a, 1] * nb1), nb1 - 1)
        b2 = min(int(frac[a, 2] * nb2), nb2 - 1)
        b = (b0 * nb1 + b1) * nb2 + b2
        bin_of[a] = b
        start[b + 1] += 1
    for b in range(nb0 * nb1 * nb2):
        start[b + 1] += start[b]
    fill = start[:-1].copy()
    atoms = np.empty(n, dtype=np.int32)
    for a in range(n):
        b = bin_of[a]
        atoms[fill[b]] = a
        fill[b] += 1
    return bin_of, start, atoms


@numba.njit(cache=True)
def _number_shifts(code, rmax, out):
    """Replace the shift codes by the index of their shift among the distinct shifts, numbered in
    order of first appearance (written to ``out``, which may be ``code`` itself); returns the
    distinct shifts (K, 3) int64."""
    w = 2 * rmax + 1
    lookup = np.full(w * w * w, -1, dtype=np.int64)
    uniq = np.empty((min(w * w * w, max(code.shape[0], 1)), 3), dtype=np.int64)
    nu = 0
    for p in range(code.shape[0]):
        c = code[p]
        u = lookup[c]
        if u < 0:
            u = nu
            lookup[c] = u
            uniq[u, 0] = c // (w * w) - rmax
            uniq[u, 1] = (c // w) % w - rmax
            uniq[u, 2] = c % w - rmax
            nu += 1
        out[p] = u
    return uniq[:nu].copy()


#: the largest shift component the build accepts: codes (2 rmax + 1)³ must fit int32
_MAX_SHIFT = 600


def build_compact(positions, cell, pbc, cutoff, index_dtype=np.int32):
    """The compact full neighbour list of points ``positions`` (N, 3) Å in ``cell`` with periodic
    directions ``pbc``: every ordered pair (i, j, S) with |r_j − r_i + S·cell| < ``cutoff``, i ≠ j
    or S ≠ 0. Returns (offsets (N+1,) int64, partners (P,) ``index_dtype``, shift index (P,)
    int16 (int32 when there are more than 32 767 distinct shifts), distinct shifts (K, 3) int64):
    rows sorted by (partner, shift in lexical order), the distinct shifts numbered in order of first
    appearance. Cell lists over the cell (periodic directions) with distant images along open
    directions (their vectors are not used, zero allowed); the two passes (count, then write)
    hold no pair buffer beyond the result. Raises InputError for a non-positive cutoff, and for
    positions so far outside the cell that a shift exceeds ±600 cells (wrap them)."""
    if not cutoff > 0:
        raise InputError(f"neighbour cutoff must be positive, got {cutoff} Å")
    pos = np.ascontiguousarray(positions, dtype=np.float64)
    n = len(pos)
    box, bins, reach = _search_cell(pos, cell, pbc, float(cutoff))
    frac = np.linalg.solve(box.T, pos.T).T if n else np.zeros((0, 3))
    img = np.floor(frac)
    frac -= img
    wrap = frac >= 1.0  # −1e-17 − (−1) rounds to 1.0: it is 0 in the next image
    frac[wrap] = 0.0
    img[wrap] += 1.0
    img = img.astype(np.int64)
    bin_of, bin_start, bin_atoms = _bin_atoms(frac, bins)
    del frac
    threaded = n >= PARALLEL_MIN_ATOMS and numba.get_num_threads() > 1
    count, fill = (_count_parallel, _fill_parallel) if threaded else (_count_serial, _fill_serial)
    counts = np.empty(n, dtype=np.int64)
    smax = np.empty(n, dtype=np.int64)
    cut2 = float(cutoff) ** 2
    count(pos, box, img, bins, reach, bin_of, bin_start, bin_atoms, cut2, counts, smax)
    rmax = int(smax.max(initial=0))
    del smax
    if rmax > _MAX_SHIFT:
        raise InputError(f"neighbour list: a pair's cell shift is {rmax} cells; wrap the positions into the cell "
                         f"(shifts up to ±{_MAX_SHIFT} are supported)")
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    del counts
    w3 = (2 * rmax + 1) ** 3
    nbr = np.empty(int(offsets[-1]), dtype=index_dtype)
    code = np.empty(len(nbr), dtype=np.int16 if w3 <= 2**15 else np.int32)
    fill(pos, box, img, bins, reach, bin_of, bin_start, bin_atoms, cut2, offsets, rmax, nbr, code)
    uniq = _number_shifts(code, rmax, code)
    if code.dtype != np.int16 and len(uniq) <= 2**15:
        code = code.astype(np.int16)
    if np.any(uniq[:, ~np.asarray(pbc, dtype=bool)]):  # pragma: no cover - excluded by the construction
        raise RuntimeError("neighbour search found an image across an open boundary")
    return offsets, nbr, code, uniq


def _displacement_kernels(threaded):
    """The largest squared displacement max_i |r_i − ref_i|² (Å²) of positions (N, 3) from ref
    (N, 3), serial or with threads over blocks of rows (the same value: a maximum does not depend
    on the order; each |d|² is summed x + y + z in that order, as NumPy's row sum)."""

    @numba.njit(cache=True, parallel=threaded)
    def largest(pos, ref):
        _ = threaded  # a closure constant: keeps the numba cache entries of the two variants apart
        n = pos.shape[0]
        blocks = 64 if threaded else 1
        part = np.zeros(blocks)
        for b in numba.prange(blocks):
            m = 0.0
            for i in range(b * n // blocks, (b + 1) * n // blocks):
                dx = pos[i, 0] - ref[i, 0]
                dy = pos[i, 1] - ref[i, 1]
                dz = pos[i, 2] - ref[i, 2]
                d = dx * dx + dy * dy + dz * dz
                if d > m or d != d:  # a NaN propagates, as in np.max
                    m = d
            part[b] = m
        m = 0.0
        for b in range(blocks):
            if part[b] > m or part[b] != part[b]:
                m = part[b]
        return m

    return largest


_largest_displacement2 = _displacement_kernels(False)
_largest_displacement2_parallel = _displacement_kernels(True)


#: from this many atoms the displacement check runs on threads (a module parameter: the value
#: does not change). It reads 48 bytes per atom, ~20 µs for 16 384 atoms, less than waking the
#: threads costs on a busy machine, hence a threshold far above :data:`PARALLEL_MIN_ATOMS`
DISPLACEMENT_PARALLEL_MIN_ATOMS = 262144


def largest_displacement2(positions, reference):
    """max_i |r_i − ref_i|² (Å²) of positions and reference (N, 3) float64 (0 for N = 0; NaN if a
    position is NaN); threads from :data:`DISPLACEMENT_PARALLEL_MIN_ATOMS` atoms (the same
    value)."""
    pos = np.ascontiguousarray(positions, dtype=np.float64)
    ref = np.ascontiguousarray(reference, dtype=np.float64)
    threaded = len(pos) >= DISPLACEMENT_PARALLEL_MIN_ATOMS and numba.get_num_threads() > 1
    return (_largest_displacement2_parallel if threaded else _largest_displacement2)(pos, ref)


@numba.njit(cache=True)
def _half_starts(offsets, nbr, sidx, positive):
    """First entry of every row's half-list tail (see :attr:`NeighborList.half_start`)."""
    n = offsets.shape[0] - 1
    out = np.empty(n, dtype=np.int64)
    for a in range(n):
        p = offsets[a]
        end = offsets[a + 1]
        while p < end and (nbr[p] < a or (nbr[p] == a and not positive[sidx[p]])):
            p += 1
        out[a] = p
    return out


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
        self.offsets = self.j = self.shift_index = self._half_start = None

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
        disp2 = largest_displacement2(state.positions, self._ref_positions)
        return disp2 > (0.5 * self.skin) ** 2

    def update(self, state) -> bool:
        """Rebuild if needed; return whether a rebuild happened."""
        if not self.needs_rebuild(state):
            return False
        self.build(state)
        return True

    def build(self, state) -> None:
        """Build the list for ``state`` with cutoff + skin (:func:`build_compact`: cell lists
        that write the compact full list directly; the peak memory of a build is the list itself
        plus ~80 bytes per atom)."""
        n = len(state)
        # int32 indices (half the memory of int64) while they fit
        itype = np.int32 if n < 2**31 - 1 else np.int64
        for name in _EXPANDED:
            self.__dict__.pop(name, None)
        self.offsets = self.j = self.shift_index = self._half_start = None  # let the old list go first
        offsets, nbr, sidx, uniq = build_compact(state.positions, state.cell, state.pbc, self.cutoff + self.skin,
                                                 itype)
        self.offsets, self.j, self.shift_index = offsets, nbr, sidx
        self.unique_shifts = uniq.astype(itype)
        self.unique_vectors = shift_vectors(uniq, state.cell)  # odd: the vector of −S is exactly minus that of S
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
    def half_start(self):
        """(N,) int64: where the half list starts in every row. Rows are sorted by (partner,
        shift in lexical order), so the pairs of row a with partner j > a, or j = a and a
        lexically positive shift, are its tail ``half_start[a]:offsets[a+1]``: the tails hold every
        unordered pair once (what :attr:`half` indexes), the heads ``offsets[a]:half_start[a]`` the
        reverse entries. Made on first use (8 bytes per atom)."""
        if self._half_start is None:
            self._half_start = _half_starts(self.offsets, self.j, self.shift_index,
                                            positive_shifts(self.unique_shifts))
        return self._half_start

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
