"""Neighbour lists against ase.neighborlist; skin and rebuild detection; half lists and CSR."""

import numpy as np
import pytest
from ase import Atoms
from ase.neighborlist import neighbor_list as ase_neighbor_list

import spinlat as sl
from spinlat.errors import InputError
from spinlat.neighbors import NeighborList, neighbor_pairs


def random_state(seed, n=20, pbc=True, scale=6.0, min_dist=0.8):
    """Random atoms in a random triclinic cell, no two closer than ``min_dist`` Å."""
    rng = np.random.default_rng(seed)
    cell = scale * (np.eye(3) + 0.3 * rng.uniform(-1, 1, (3, 3)))
    pbc = np.broadcast_to(pbc, (3,))
    frac = np.empty((0, 3))
    while len(frac) < n:
        cand = np.vstack([frac, rng.random(3)])
        st = sl.State(cand @ cell, [26] * len(cand), cell=cell, pbc=pbc, validate=False)
        if len(cand) < 2 or len(neighbor_pairs(st, min_dist)[0]) == 0:
            frac = cand
    return sl.State(frac @ cell, [26] * n, cell=cell, pbc=pbc)


def pair_set(i, j, S):
    return {(int(a), int(b), *map(int, s)) for a, b, s in zip(i, j, S)}


def ase_pairs(st, cutoff):
    atoms = Atoms(numbers=st.numbers, positions=st.positions, cell=st.cell, pbc=st.pbc)
    i, j, S = ase_neighbor_list("ijS", atoms, cutoff, self_interaction=False)
    return pair_set(i, j, S)


CASES = [
    (0, True, 3.0), (1, True, 4.5), (2, (True, False, True), 3.5), (3, (False, False, True), 4.0),
    (4, False, 3.0), (5, True, 7.0),   # cutoff larger than half the box
    (6, True, 9.5),                      # cutoff larger than the box
    (7, (True, True, False), 8.0),
]


@pytest.mark.parametrize("seed, pbc, cutoff", CASES)
def test_matches_ase(seed, pbc, cutoff):
    st = random_state(seed, n=12 if cutoff > 6 else 20, pbc=pbc)
    nl = NeighborList(cutoff, skin=0.0)
    nl.build(st)
    assert pair_set(nl.i, nl.j, nl.shifts) == ase_pairs(st, cutoff)
    # distances from the stored vectors
    d = np.linalg.norm(nl.vectors(st.positions), axis=1)
    assert np.all(d < cutoff) and np.all(d > 0)
    np.testing.assert_allclose(nl.shift_vectors, nl.shifts @ st.cell, atol=1e-12)
    nonperiodic = ~np.asarray(st.pbc)
    assert np.all(nl.shifts[:, nonperiodic] == 0)


@pytest.mark.parametrize("seed, pbc, cutoff", CASES[:6])
def test_skin_includes_pairs_up_to_cutoff_plus_skin(seed, pbc, cutoff):
    st = random_state(seed, pbc=pbc)
    nl = NeighborList(cutoff, skin=0.4)
    nl.build(st)
    assert pair_set(nl.i, nl.j, nl.shifts) == ase_pairs(st, cutoff + 0.4)


@pytest.mark.parametrize("seed, pbc, cutoff", CASES)
def test_csr_and_half_list(seed, pbc, cutoff):
    st = random_state(seed, n=12 if cutoff > 6 else 20, pbc=pbc)
    nl = NeighborList(cutoff, skin=0.2)
    nl.build(st)
    n = len(st)
    assert nl.offsets.shape == (n + 1,) and nl.offsets[0] == 0 and nl.offsets[-1] == len(nl)
    assert np.all(np.diff(nl.offsets) >= 0) and np.all(np.diff(nl.i) >= 0)
    for a in range(n):
        sl_ = slice(nl.offsets[a], nl.offsets[a + 1])
        assert np.all(nl.i[sl_] == a)
    # the full list holds both directions of every pair
    full = pair_set(nl.i, nl.j, nl.shifts)
    assert all((j, i, -a, -b, -c) in full for (i, j, a, b, c) in full)
    # the half list picks each unordered pair exactly once
    half = pair_set(nl.i[nl.half], nl.j[nl.half], nl.shifts[nl.half])
    assert len(half) == len(nl.half) == len(full) // 2
    for (i, j, a, b, c) in full:
        assert ((i, j, a, b, c) in half) != ((j, i, -a, -b, -c) in half)
    # neighbor_pairs gives the same unordered pairs (compared through their distances)
    i, j, S, d = neighbor_pairs(st, cutoff + 0.2)
    assert len(i) == len(nl.half)
    d_half = np.linalg.norm(nl.vectors(st.positions)[nl.half], axis=1)
    np.testing.assert_allclose(np.sort(d), np.sort(d_half), rtol=1e-12)


def test_rebuild_detection():
    st = random_state(11, pbc=True)
    nl = NeighborList(3.0, skin=0.4)
    assert nl.needs_rebuild(st)
    assert nl.update(st) and nl.n_builds == 1
    assert not nl.update(st)
    rng = np.random.default_rng(0)
    # every atom moved by less than skin/2: no rebuild
    step = rng.normal(size=(len(st), 3))
    step *= 0.19 / np.linalg.norm(step, axis=1)[:, None]
    small = st.copy(positions=st.positions + step)
    assert not nl.needs_rebuild(small) and not nl.update(small)
    # the list built for st still holds every pair of `small` within the cutoff
    d = np.linalg.norm(nl.vectors(small.positions), axis=1)
    ref = ase_pairs(small, 3.0)
    kept = pair_set(nl.i[d < 3.0], nl.j[d < 3.0], nl.shifts[d < 3.0])
    assert kept == ref
    # one atom moved by more than skin/2: rebuild
    p = st.positions.copy()
    p[3] += [0.21, 0, 0]
    assert nl.needs_rebuild(st.copy(positions=p))
    assert nl.update(st.copy(positions=p)) and nl.n_builds == 2
    # cell change, pbc change, other atoms: rebuild
    moved = st.copy(positions=p)
    assert nl.needs_rebuild(moved.copy(cell=moved.cell * 1.0001))
    assert nl.needs_rebuild(moved.copy(pbc=[True, True, False]))
    assert nl.needs_rebuild(moved.copy(numbers=np.where(np.arange(len(st)) == 0, 28, 26)))
    assert nl.needs_rebuild(sl.State(moved.positions[:-1], moved.numbers[:-1], cell=moved.cell, pbc=True))
    # skin 0: any move rebuilds
    nl0 = NeighborList(3.0, skin=0.0)
    nl0.update(st)
    assert nl0.needs_rebuild(st.copy(positions=st.positions + 1e-9))


def test_bad_parameters():
    with pytest.raises(InputError, match="cutoff"):
        NeighborList(0.0)
    with pytest.raises(InputError, match="cutoff"):
        NeighborList(-1.0)
    with pytest.raises(InputError, match="skin"):
        NeighborList(3.0, skin=-0.1)


def test_bcc_shell_counts():
    """bcc: 8 first and 6 second neighbours at a√3/2 and a."""
    a = 2.8665
    st = sl.State([[0, 0, 0], [a / 2] * 3], [26, 26], cell=np.eye(3) * a, pbc=True)
    nl = NeighborList(a * 1.05, skin=0.0)
    nl.build(st)
    d = np.linalg.norm(nl.vectors(st.positions), axis=1)
    for atom in range(2):
        da = d[nl.offsets[atom]:nl.offsets[atom + 1]]
        assert np.sum(np.isclose(da, a * np.sqrt(3) / 2)) == 8
        assert np.sum(np.isclose(da, a)) == 6


@pytest.mark.parametrize("pbc", [True, (True, True, False), (False, True, False)])
def test_atoms_outside_the_cell(pbc):
    """Positions outside the cell (unwrapped) keep their meaning: vectors are r_j − r_i + S·cell."""
    st = random_state(21, pbc=pbc)
    rng = np.random.default_rng(2)
    frac_shift = rng.integers(-2, 3, (len(st), 3)).astype(float)
    frac_shift[:, ~np.asarray(st.pbc)] *= 0.7  # arbitrary offsets along open directions
    moved = st.copy(positions=st.positions + frac_shift @ st.cell)
    nl = NeighborList(3.5, skin=0.0)
    nl.build(moved)
    assert pair_set(nl.i, nl.j, nl.shifts) == ase_pairs(moved, 3.5)
    assert np.all(np.linalg.norm(nl.vectors(moved.positions), axis=1) < 3.5)


def test_slab_far_image_cell():
    """Mixed pbc (solved as a fully periodic problem with distant images along open directions)
    finds no pair across an open boundary even for atoms far outside the cell."""
    a = 2.8665
    st = sl.State([[0, 0, 0], [a / 2] * 3], [26, 26], cell=np.eye(3) * a, pbc=True).repeat((2, 2, 3))
    slab = sl.State(st.positions + [0, 0, 40.0], st.numbers, cell=st.cell, pbc=(True, True, False))
    nl = NeighborList(a * 1.05, skin=0.0)
    nl.build(slab)
    assert pair_set(nl.i, nl.j, nl.shifts) == ase_pairs(slab, a * 1.05)
    assert np.all(nl.shifts[:, 2] == 0)
    counts = np.diff(nl.offsets)
    z = slab.positions[:, 2]
    # surface atoms have fewer neighbours than bulk ones (8 + 6 in bulk bcc)
    assert counts[z == z.min()].max() < 14 and counts[np.isclose(z, z.min() + 1.5 * a)].min() == 14


def test_compact_list_keeps_no_expanded_arrays_in_spin_lattice_evaluations():
    """The list holds ~6 bytes per pair (partner int32 + shift index int16); the expanded per-pair
    arrays (i, shifts, shift_vectors, half: 44 bytes per pair) are made only when something asks
    for them, and EAM and the Bethe-Slater exchange never do. Rows are sorted by partner, and the
    compact form gives the same pairs and vectors as the expanded one."""
    from spinlat.potentials import EAM, BetheSlaterExchange

    from conftest import EAM_FE, bcc_fe

    st = bcc_fe((3, 3, 3), seed=3, rattle=0.05)
    pot = EAM(EAM_FE) + BetheSlaterExchange(3.4, 0.02726, 0.2171, 1.841)
    pot.compute(st, forces=True, magnetic_forces=True)
    nl = pot.terms[0].neighbor_list(st)
    assert nl.j.dtype == np.int32 and nl.shift_index.dtype == np.int16
    assert not {"i", "shifts", "shift_vectors", "half"} & set(vars(nl))
    for a in range(len(st)):
        row = nl.j[nl.offsets[a]:nl.offsets[a + 1]]
        assert np.all(np.diff(row) >= 0)
    np.testing.assert_array_equal(nl.shifts, nl.unique_shifts[nl.shift_index])
    np.testing.assert_allclose(nl.shift_vectors, nl.shifts @ st.cell, atol=1e-12)
    assert pair_set(nl.i, nl.j, nl.shifts) == ase_pairs(st, nl.cutoff + nl.skin)
    nl.build(st)  # a rebuild drops the expanded arrays again
    assert not {"i", "shifts", "shift_vectors", "half"} & set(vars(nl))


# ------------------------------------------------------------------------------------------
# the cell-list build (build_compact) against vesin and a brute-force search
# ------------------------------------------------------------------------------------------


def brute_force_pairs(positions, cell, pbc, cutoff):
    """Every (i, j, S) with |r_j − r_i + S·cell| < cutoff, trying every shift in range (atoms
    inside the 3D cell ``cell``; shifts only along periodic directions)."""
    cell = np.asarray(cell, float)
    vol = abs(np.linalg.det(cell))
    heights = [vol / np.linalg.norm(np.cross(cell[(k + 1) % 3], cell[(k + 2) % 3])) for k in range(3)]
    reach = [int(np.ceil(cutoff / h)) + 1 if p else 0 for h, p in zip(heights, np.broadcast_to(pbc, (3,)))]
    shifts = np.array([(a, b, c) for a in range(-reach[0], reach[0] + 1) for b in range(-reach[1], reach[1] + 1)
                       for c in range(-reach[2], reach[2] + 1)])
    vec = shifts @ cell
    out = set()
    for i in range(len(positions)):
        d = positions[None, :, :] - positions[i] + vec[:, None, :]
        for s, j in zip(*np.nonzero(np.linalg.norm(d, axis=2) < cutoff)):
            if j != i or np.any(shifts[s]):
                out.add((i, int(j), *map(int, shifts[s])))
    return out


def vesin_full_list(st, cutoff):
    """vesin's full list (the former build, an independent library) as rows sorted by (partner,
    shift); mixed pbc as a fully periodic cell whose open directions are too long to matter."""
    from vesin import NeighborList as VesinNeighborList

    from spinlat.neighbors import _far_image_cell

    pbc = np.asarray(st.pbc, dtype=bool)
    box, periodic = np.array(st.cell, dtype=np.float64), pbc.tolist()
    if not pbc.any():
        box = np.zeros((3, 3))
    elif not pbc.all():
        box, periodic = _far_image_cell(st.positions, box, pbc, cutoff), [True] * 3
    i, j, S = VesinNeighborList(cutoff=float(cutoff), full_list=True).compute(st.positions, box, periodic,
                                                                              quantities="ijS")
    i, j, S = i.astype(np.int64), j.astype(np.int64), S.astype(np.int64)
    order = np.lexsort((S[:, 2], S[:, 1], S[:, 0], j, i))
    return i[order], j[order], S[order]


BUILD_CASES = CASES + [
    (8, True, 2.0), (9, (False, True, True), 6.0), (10, True, 14.0),  # many images of every pair
    (11, (True, False, False), 5.0), (12, (False, False, False), 50.0),
]


@pytest.mark.parametrize("seed, pbc, cutoff", BUILD_CASES)
def test_build_matches_vesin_and_brute_force(seed, pbc, cutoff):
    """The cell-list build gives the pairs of vesin's search (the former build) and of a brute
    force over all shifts, rows sorted by (partner, shift) exactly as before."""
    st = random_state(seed, n=8 if cutoff > 10 else (12 if cutoff > 6 else 20), pbc=pbc)
    nl = NeighborList(cutoff, skin=0.0)
    nl.build(st)
    i, j, S = vesin_full_list(st, cutoff)
    np.testing.assert_array_equal(nl.i, i)
    np.testing.assert_array_equal(nl.j, j)
    np.testing.assert_array_equal(nl.shifts, S)
    assert pair_set(nl.i, nl.j, nl.shifts) == brute_force_pairs(st.positions, st.cell, st.pbc, cutoff)
    assert nl.j.dtype == np.int32 and nl.shift_index.dtype == np.int16


@pytest.mark.parametrize("pbc", [True, (True, True, False), (False, True, False), False])
def test_build_of_unwrapped_positions_far_outside_the_cell(pbc):
    """Atoms tens of cells away from the cell (unwrapped trajectories) keep their shifts; a shift
    beyond ±600 cells is a clear error."""
    st = random_state(31, pbc=pbc)
    rng = np.random.default_rng(4)
    far = rng.integers(-40, 41, (len(st), 3)).astype(float)
    moved = st.copy(positions=st.positions + far @ st.cell, validate=False)
    nl = NeighborList(3.5, skin=0.0)
    nl.build(moved)
    assert pair_set(nl.i, nl.j, nl.shifts) == ase_pairs(moved, 3.5)
    if np.all(pbc):
        too_far = st.positions.copy()
        too_far[0] += 700 * st.cell[0]
        with pytest.raises(InputError, match="wrap the positions"):
            NeighborList(3.5, skin=0.0).build(st.copy(positions=too_far, validate=False))


def test_build_of_a_flat_cell_with_a_zero_vector():
    """A 2D cell whose non-periodic vector is zero (ASE's 2D builders): the same pairs as with a
    vacuum vector, every shift zero along the open direction."""
    a = 2.5
    cell = np.array([[a, 0, 0], [a / 2, a * np.sqrt(3) / 2, 0], [0, 0, 0]])
    flat = sl.State([[0, 0, 0]], [26], cell=cell, pbc=(True, True, False)).repeat((5, 4, 1))
    rng = np.random.default_rng(1)
    flat = flat.copy(positions=flat.positions + rng.normal(0, 0.1, (len(flat), 3)))
    vac = flat.copy(cell=[*flat.cell[:2], [0, 0, 30.0]])
    for cutoff in (2.6, 7.3):
        lists = []
        for st in (flat, vac):
            nl = NeighborList(cutoff, skin=0.0)
            nl.build(st)
            lists.append((nl.i, nl.j, nl.shifts))
        for x, y in zip(*lists):
            np.testing.assert_array_equal(x, y)
        assert np.all(lists[0][2][:, 2] == 0)
        assert pair_set(*lists[1]) == ase_pairs(vac, cutoff)


def test_build_threaded_equals_serial(monkeypatch):
    """The threaded passes of the build give the serial list bit for bit."""
    import spinlat.neighbors as neighbors

    st = random_state(3, n=60, pbc=True, scale=10.0)
    nl = NeighborList(4.0, skin=0.3)
    nl.build(st)
    monkeypatch.setattr(neighbors, "PARALLEL_MIN_ATOMS", 1)
    other = NeighborList(4.0, skin=0.3)
    other.build(st)
    for name in ("offsets", "j", "shift_index", "unique_shifts", "unique_vectors"):
        np.testing.assert_array_equal(getattr(nl, name), getattr(other, name))


@pytest.mark.parametrize("seed, pbc, cutoff", BUILD_CASES)
def test_half_start_splits_every_row_into_reverse_entries_and_the_half_list(seed, pbc, cutoff):
    st = random_state(seed, n=8 if cutoff > 10 else (12 if cutoff > 6 else 20), pbc=pbc)
    nl = NeighborList(cutoff, skin=0.1)
    nl.build(st)
    tail = np.concatenate([np.arange(nl.half_start[a], nl.offsets[a + 1]) for a in range(len(st))])
    np.testing.assert_array_equal(tail, nl.half)
    # shift vectors are odd: the vector of (j, i, −S) is exactly minus that of (i, j, S)
    neg = {tuple(s): k for k, s in enumerate(nl.unique_shifts)}
    for k, s in enumerate(nl.unique_shifts):
        assert np.array_equal(nl.unique_vectors[neg[tuple(-s)]], -nl.unique_vectors[k])


def test_build_with_atoms_a_rounding_error_below_a_cell_face():
    """Fractional coordinates of −1e-17 wrap to 1.0 in floating point: such atoms belong to bin 0
    of the next image, and no pair of theirs is lost (bcc at dt-sized displacements)."""
    a = 2.8665
    st = sl.State([[0, 0, 0], [a / 2] * 3], [26, 26], cell=np.eye(3) * a, pbc=True).repeat((2, 2, 2))
    p = st.positions.copy()
    p[p == 0.0] = -1e-17
    tiny = st.copy(positions=p)
    for cutoff in (2.6, 5.9):
        nl = NeighborList(cutoff, skin=0.0)
        nl.build(tiny)
        assert pair_set(nl.i, nl.j, nl.shifts) == ase_pairs(tiny, cutoff)


def test_largest_displacement_threaded_and_serial_equal_numpy(monkeypatch):
    import numba

    import spinlat.neighbors as nbmod

    rng = np.random.default_rng(3)
    for n in (0, 1, 7, 1000):
        pos, ref = rng.normal(size=(n, 3)), rng.normal(size=(n, 3))
        expect = np.max(np.sum((pos - ref) ** 2, axis=1), initial=0.0)
        assert nbmod._largest_displacement2(pos, ref) == expect
        assert nbmod._largest_displacement2_parallel(pos, ref) == expect
        monkeypatch.setattr(nbmod, "DISPLACEMENT_PARALLEL_MIN_ATOMS", 1)
        for t in sorted({1, numba.config.NUMBA_NUM_THREADS}):
            numba.set_num_threads(t)
            assert nbmod.largest_displacement2(pos, ref) == expect
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    pos[5, 1] = np.nan  # a NaN comes out as NumPy's maximum gives it
    assert np.isnan(nbmod._largest_displacement2_parallel(pos, ref)) and np.isnan(nbmod._largest_displacement2(pos, ref))
