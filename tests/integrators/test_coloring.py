"""Graph colouring of the spin interaction graph."""

import numpy as np
import pytest

import spinlat as sl
from spinlat.errors import InputError
from spinlat.integrators.coloring import (best_coloring, color_classes, color_graph, csr_from_pairs,
                                          spin_color_classes)


def _bcc(reps, a=2.8665):
    return sl.State([[0, 0, 0], [a / 2, a / 2, a / 2]], [26, 26], cell=np.eye(3) * a, pbc=True,
                    moments=[2.2, 2.2]).repeat(reps)


def _assert_proper(classes, nl, state, cutoff):
    color = np.full(len(state), -1)
    for c, members in enumerate(classes):
        color[members] = c
    r = np.linalg.norm(nl.vectors(state.positions), axis=1)
    m = (r < cutoff) & (nl.i != nl.j)
    assert np.all(color[nl.i[m]] != color[nl.j[m]])
    # every magnetic atom exactly once
    allm = np.sort(np.concatenate(classes))
    assert np.array_equal(allm, np.flatnonzero(state.moments > 0))


@pytest.mark.parametrize("reps", [4, 5, 6])
def test_bcc_first_and_second_neighbours(reps):
    st = _bcc(reps)
    nl = sl.NeighborList(2.9, 0.3)
    nl.update(st)
    classes = spin_color_classes(st, nl, cutoff=2.9)
    _assert_proper(classes, nl, st, 2.9)
    # 4 colours are optimal for even periodic sizes; odd periodic cycles need a few more
    assert len(classes) <= (4 if reps % 2 == 0 else 9)


def test_skin_pairs_count_and_nonmagnetic_atoms_are_left_out():
    st = _bcc(4)
    mom = st.moments.copy()
    mom[::3] = 0.0
    st = st.copy(moments=mom)
    nl = sl.NeighborList(2.6, 0.5)
    nl.update(st)
    classes = spin_color_classes(st, nl)  # the whole list, skin included
    color = np.full(len(st), -1)
    for c, members in enumerate(classes):
        color[members] = c
    mag = st.moments > 0
    m = mag[nl.i] & mag[nl.j] & (nl.i != nl.j)
    assert np.all(color[nl.i[m]] != color[nl.j[m]])
    assert np.all(color[~mag] == -1)


def test_random_graph_matches_reference_greedy(rng):
    n = 200
    i = rng.integers(0, n, 1500)
    j = rng.integers(0, n, 1500)
    keep = i != j
    off, nb = csr_from_pairs(i[keep], j[keep], n)
    colors = color_graph(off, nb, n)
    # simple Python greedy reference
    ref = -np.ones(n, dtype=int)
    adj = [set() for _ in range(n)]
    for a, b in zip(i[keep], j[keep]):
        adj[a].add(b)
        adj[b].add(a)
    for a in range(n):
        used = {ref[b] for b in adj[a]}
        c = 0
        while c in used:
            c += 1
        ref[a] = c
    assert np.array_equal(colors, ref)
    best = best_coloring(off, nb, n)
    assert best.max() <= colors.max()
    assert all(best[a] != best[b] for a, b in zip(i[keep], j[keep]))
    classes = color_classes(best)
    assert sum(len(c) for c in classes) == n


def test_bad_csr_raises():
    with pytest.raises(InputError, match="offsets"):
        color_graph(np.array([0, 1]), np.array([0, 1]), 3)
    with pytest.raises(InputError, match="neighbour indices"):
        color_graph(np.array([0, 1, 2]), np.array([1, 5]), 2)


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_symmetric_table_coloured_as_it_is_equals_the_expanded_pairs(dtype):
    """A coupling table that lists every pair in both rows (self-images and repeated partners
    included, as periodic images give) is coloured as it is — no pair arrays — with exactly the
    colours of the CSR rebuilt from its expanded pairs (what the integrators did before)."""
    rng = np.random.default_rng(7)
    n = 300
    i = rng.integers(0, n, 2500)
    j = (i + rng.integers(-12, 13, 2500)) % n  # local pairs, some self-images (j == i)
    i = np.concatenate([i, i[:40]])  # repeated pairs: two images of one partner
    j = np.concatenate([j, j[:40]])
    offsets, nb = csr_from_pairs(i, j, n)  # symmetric: both rows of every pair
    table = nb.astype(dtype)
    pos = rng.uniform(0.0, 20.0, (n, 3))
    direct = best_coloring(offsets, table, n, pos)
    rows = np.repeat(np.arange(n), np.diff(offsets))
    expanded = best_coloring(*csr_from_pairs(rows, table.astype(np.int64), n), n, pos)
    assert np.array_equal(direct, expanded)
    ok = i != j
    assert np.all(direct[i[ok]] != direct[j[ok]])
