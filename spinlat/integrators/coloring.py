"""Graph colouring of the spin interaction graph.

Integrators that update spins one at a time with their freshly computed local field (the
symplectic spin sweep, Metropolis Monte Carlo) become parallel when the spins are split into
colour classes: no two spins of one class interact, so all spins of a class can be updated at
once and the result is the same as updating them one after another.

The graph is given in CSR form (``offsets``, ``neighbors``), as a
:class:`~spinlat.neighbors.NeighborList` stores it: the neighbours of atom ``a`` are
``neighbors[offsets[a]:offsets[a + 1]]``. Self-images (``neighbors[k] == a``) are ignored.
"""

from __future__ import annotations

import numba
import numpy as np

from ..errors import InputError


@numba.njit(cache=True)
def _greedy_color(offsets, neighbors, order, n):
    colors = np.full(n, -1, dtype=np.int64)
    maxdeg = 0
    for a in range(n):
        d = offsets[a + 1] - offsets[a]
        if d > maxdeg:
            maxdeg = d
    # stamp[c] == a+1 marks colour c as taken by a neighbour of a (no clearing needed)
    stamp = np.zeros(maxdeg + 2, dtype=np.int64)
    for t in range(order.shape[0]):
        a = order[t]
        for k in range(offsets[a], offsets[a + 1]):
            b = neighbors[k]
            if b != a:
                c = colors[b]
                if c >= 0:
                    stamp[c] = a + 1
        c = 0
        while stamp[c] == a + 1:
            c += 1
        colors[a] = c
    return colors


def color_graph(offsets, neighbors, n, order=None) -> np.ndarray:
    """Greedy colouring of an undirected graph in CSR form.

    Parameters
    ----------
    offsets : (n + 1,) int CSR pointer.
    neighbors : (P,) int neighbour indices (the list should be symmetric: if b is a neighbour
        of a, a is a neighbour of b; a neighbour listed twice changes nothing); int32 and int64
        are used without a copy.
    n : number of vertices (atoms).
    order : optional visiting order (permutation of range(n)); default natural order.

    Returns
    -------
    colors : (n,) int64, colours 0, 1, ..., with colors[a] != colors[b] for every edge a–b
        (a ≠ b). At most max degree + 1 colours are used.
    """
    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    neighbors = np.ascontiguousarray(neighbors)
    if neighbors.dtype not in (np.int32, np.int64):  # int32 tables are coloured as they are: no copy
        neighbors = neighbors.astype(np.int64)
    n = int(n)
    if offsets.shape != (n + 1,):
        raise InputError(f"offsets must have shape ({n + 1},), got {offsets.shape}")
    if n and (offsets[0] != 0 or offsets[-1] != len(neighbors) or np.any(np.diff(offsets) < 0)):
        raise InputError("offsets is not a valid CSR pointer for neighbors")
    if len(neighbors) and (neighbors.min() < 0 or neighbors.max() >= n):
        raise InputError(f"neighbour indices must lie in [0, {n})")
    order = np.arange(n, dtype=np.int64) if order is None else np.ascontiguousarray(order, dtype=np.int64)
    if order.shape != (n,) or not np.array_equal(np.sort(order), np.arange(n)):
        raise InputError("order must be a permutation of range(n)")
    return _greedy_color(offsets, neighbors, order, n)


def best_coloring(offsets, neighbors, n, positions=None, passes=4) -> np.ndarray:
    """Greedy colourings from a few vertex orders, improved by Culberson's iterated greedy
    (re-colouring class by class, which never adds colours); returns the one with the
    fewest colours (see :func:`color_graph`). ``positions`` (n, 3) Å adds a spatial
    (z, y, x lexicographic) order, which finds 2 colours for even periodic simple-cubic
    lattices and 4 for bcc with first and second neighbours."""
    n = int(n)
    orders = [np.arange(n, dtype=np.int64)]
    if positions is not None and n:
        p = np.round(np.asarray(positions, dtype=float), 6)
        orders.append(np.lexsort((p[:, 0], p[:, 1], p[:, 2])).astype(np.int64))
    best = None
    for order in orders:
        c = color_graph(offsets, neighbors, n, order)
        for _ in range(passes):
            # classes visited as blocks, highest colour first: never more colours
            c = color_graph(offsets, neighbors, n, np.lexsort((np.arange(n), -c)).astype(np.int64))
        if best is None or c.max(initial=-1) < best.max(initial=-1):
            best = c
    return best


def color_classes(colors, mask=None) -> list[np.ndarray]:
    """Atom indices of each colour, as a list of sorted int64 arrays (empty classes dropped).

    ``mask`` (N,) bool keeps only the selected atoms (e.g. magnetic atoms)."""
    colors = np.asarray(colors)
    idx = np.arange(len(colors), dtype=np.int64)
    if mask is not None:
        idx = idx[np.asarray(mask, dtype=bool)]
    out = []
    for c in range(int(colors.max(initial=-1)) + 1):
        members = idx[colors[idx] == c]
        if len(members):
            out.append(members)
    return out


@numba.njit(cache=True)
def _symmetric_csr(i, j, n):
    offsets = np.zeros(n + 1, dtype=np.int64)
    for k in range(i.shape[0]):
        offsets[i[k] + 1] += 1
        offsets[j[k] + 1] += 1
    for a in range(n):
        offsets[a + 1] += offsets[a]
    fill = offsets[:-1].copy()
    nb = np.empty(offsets[n], dtype=np.int64)
    for k in range(i.shape[0]):
        a, b = i[k], j[k]
        nb[fill[a]] = b
        fill[a] += 1
        nb[fill[b]] = a
        fill[b] += 1
    for a in range(n):
        nb[offsets[a]:offsets[a + 1]] = np.sort(nb[offsets[a]:offsets[a + 1]])
    return offsets, nb


def csr_from_pairs(i, j, n):
    """Symmetric CSR (offsets, neighbors) from pair index arrays (each pair once or twice; a pair
    given twice appears twice in its rows), rows sorted. Built in place by counting: no temporary
    beyond the result (the colouring of a million-atom coupling table stays within its size)."""
    i = np.asarray(i)
    j = np.asarray(j)
    if len(i) != len(j):
        raise InputError(f"csr_from_pairs: {len(i)} first and {len(j)} second atoms")
    if len(i) and (min(i.min(), j.min()) < 0 or max(i.max(), j.max()) >= n):
        raise InputError(f"csr_from_pairs: atom indices must lie in [0, {n})")
    return _symmetric_csr(i, j, int(n))


def spin_color_classes(state, neighbors, cutoff=None) -> list[np.ndarray]:
    """Colour classes of the magnetic atoms of ``state`` for a neighbour list.

    Parameters
    ----------
    state : :class:`~spinlat.state.State`.
    neighbors : :class:`~spinlat.neighbors.NeighborList` up to date for ``state``; pairs of
        the list count as interacting (skin included, which only makes colouring
        conservative), unless ``cutoff`` (Å) is given, then only pairs closer than it.

    Returns the list of int64 atom-index arrays of each colour; only magnetic atoms (moment
    > 0) appear, and no two atoms of one class are neighbours.
    """
    n = len(state)
    mag = state.moments > 0
    i, j = neighbors.i, neighbors.j
    keep = mag[i] & mag[j]
    if cutoff is not None:
        r = np.linalg.norm(neighbors.vectors(state.positions), axis=1)
        keep &= r < cutoff
    offsets, nb = csr_from_pairs(i[keep], j[keep], n)
    return color_classes(best_coloring(offsets, nb, n, state.positions), mask=mag)
