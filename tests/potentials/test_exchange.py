"""BetheSlaterExchange: NumPy reference, finite differences, analytic bcc shells, local fields."""

import numpy as np
import pytest
from ase.neighborlist import neighbor_list

import spinlat as sl
from spinlat.errors import InputError, UnknownElementError
from spinlat.potentials import BetheSlaterExchange, Zeeman
from spinlat.potentials.exchange import bethe_slater

from conftest import bcc_fe, fd_forces, fd_magnetic_forces, fd_stress

PARAMS = (3.4, 0.02726, 0.2171, 1.841)
A = 2.8665


def reference_energy(st, cutoff, J1, J2, J3, offset=False, active=None):
    """Plain NumPy: E = −Σ_{i<j} J(r)(s_i·s_j − δ) from ASE's full neighbour list (½ per ordered pair)."""
    i, j, d = neighbor_list("ijd", st.to_ase(), cutoff)
    if active is None:
        active = st.moments > 0
    keep = active[i] & active[j]
    i, j, d = i[keep], j[keep], d[keep]
    sd = np.sum(st.spins[i] * st.spins[j], axis=1) - (1.0 if offset else 0.0)
    return -0.5 * np.sum(bethe_slater(d, J1, J2, J3) * sd)


@pytest.mark.parametrize("offset", [False, True])
def test_energy_matches_numpy_reference(offset):
    st = bcc_fe((3, 3, 3), seed=1)
    pot = BetheSlaterExchange(*PARAMS, offset=offset)
    ev = pot.compute(st)
    assert ev.energy == pytest.approx(reference_energy(st, *PARAMS, offset=offset), abs=1e-12)
    assert ev.energies.sum() == pytest.approx(ev.energy, abs=1e-12)


def test_cutoff_beyond_half_box_counts_self_images():
    # the 2-atom bcc cell (2.87 Å) with a 6 Å cutoff: each atom sees many of its own images
    st = bcc_fe((1, 1, 1), seed=3, rattle=0.03)
    pot = BetheSlaterExchange(6.0, 0.02726, 0.2171, 1.841)
    assert pot.compute(st).energy == pytest.approx(reference_energy(st, 6.0, 0.02726, 0.2171, 1.841), abs=1e-12)
    big = pot.compute(st.repeat((3, 3, 3))).energy
    assert big == pytest.approx(27 * pot.compute(st).energy, abs=1e-10)


@pytest.mark.parametrize("offset", [False, True])
def test_ferromagnetic_bcc_energy_by_shells(offset):
    st = bcc_fe((3, 3, 3), rattle=0.0, random_spins=False)
    pot = BetheSlaterExchange(*PARAMS, offset=offset)
    ev = pot.compute(st, stress=True)
    # shells inside 3.4 Å: 8 at a√3/2, 6 at a (the next, 12 at a√2 = 4.05 Å, is outside)
    per_atom = -0.5 * (8 * bethe_slater(A * np.sqrt(3) / 2, *PARAMS[1:]) + 6 * bethe_slater(A, *PARAMS[1:]))
    expected = 0.0 if offset else per_atom
    assert ev.energy / len(st) == pytest.approx(expected, abs=1e-14)
    np.testing.assert_allclose(ev.energies, expected, atol=1e-14)
    np.testing.assert_allclose(ev.forces, 0.0, atol=1e-13)
    np.testing.assert_allclose(ev.magnetic_forces, 0.0, atol=1e-13)
    np.testing.assert_allclose(ev.stress[3:], 0.0, atol=1e-13)  # cubic: no shear stress


@pytest.mark.parametrize("offset", [False, True])
def test_magnetic_forces_match_finite_differences(offset):
    st = bcc_fe((2, 2, 2), seed=2)
    pot = BetheSlaterExchange(*PARAMS, offset=offset)
    ev = pot.compute(st)
    atoms = (0, 5, 11)
    np.testing.assert_allclose(ev.magnetic_forces[list(atoms)], fd_magnetic_forces(pot, st, atoms), atol=1e-8)
    # the term depends only on directions: h is transverse
    np.testing.assert_allclose(np.sum(ev.magnetic_forces * st.spins, axis=1), 0.0, atol=1e-14)


@pytest.mark.parametrize("offset", [False, True])
def test_lattice_forces_match_finite_differences(offset):
    st = bcc_fe((2, 2, 2), seed=4, rattle=0.08)
    pot = BetheSlaterExchange(*PARAMS, offset=offset)
    ev = pot.compute(st)
    atoms = (0, 3, 9)
    np.testing.assert_allclose(ev.forces[list(atoms)], fd_forces(pot, st, atoms), atol=1e-8)
    np.testing.assert_allclose(ev.forces.sum(axis=0), 0.0, atol=1e-12)  # Newton's third law


@pytest.mark.parametrize("offset", [False, True])
def test_stress_matches_finite_differences(offset):
    st = bcc_fe((2, 2, 2), seed=5, rattle=0.08)
    pot = BetheSlaterExchange(*PARAMS, offset=offset)
    ev = pot.compute(st, stress=True)
    np.testing.assert_allclose(ev.stress, fd_stress(pot, st), atol=1e-9)


def test_local_fields_equal_full_rows():
    st = bcc_fe((3, 3, 3), seed=6)
    pot = BetheSlaterExchange(*PARAMS)
    h = pot.compute(st).magnetic_forces
    nl = pot.neighbor_list(st)
    for atoms in (np.arange(0, len(st), 2), np.array([7]), np.array([], dtype=int), np.array([40, 3, 3])):
        np.testing.assert_allclose(pot.local_fields(st, nl, atoms), h[atoms], atol=1e-15)
    # the same through a sum of terms
    tot = pot + Zeeman([0.3, 0.0, 2.0])
    np.testing.assert_allclose(tot.local_fields(st, tot.neighbor_list(st), [1, 2, 30]),
                               tot.compute(st).magnetic_forces[[1, 2, 30]], atol=1e-15)


def test_non_magnetic_and_other_species_do_not_take_part():
    st = bcc_fe((2, 2, 2), seed=7)
    moments = st.moments.copy()
    moments[[0, 4]] = 0.0
    numbers = st.numbers.copy()
    numbers[[1, 9]] = 28  # Ni
    st = st.copy(moments=moments, numbers=numbers)
    pot = BetheSlaterExchange(*PARAMS, elements=["Fe"])
    ev = pot.compute(st)
    active = (moments > 0) & (numbers == 26)
    assert ev.energy == pytest.approx(reference_energy(st, *PARAMS, active=active), abs=1e-12)
    np.testing.assert_array_equal(ev.magnetic_forces[~active], 0.0)
    np.testing.assert_array_equal(ev.energies[~active], 0.0)
    np.testing.assert_allclose(ev.magnetic_forces[[2, 3]], fd_magnetic_forces(pot, st, (2, 3)), atol=1e-8)
    # with every species, Ni takes part as well
    ev_all = BetheSlaterExchange(*PARAMS).compute(st)
    assert ev_all.energy == pytest.approx(reference_energy(st, *PARAMS), abs=1e-12)


def test_global_spin_rotation_leaves_energy_unchanged():
    st = bcc_fe((2, 2, 2), seed=8)
    from scipy.spatial.transform import Rotation

    R = Rotation.random(random_state=3).as_matrix()
    pot = BetheSlaterExchange(*PARAMS)
    assert pot.compute(st.copy(spins=st.spins @ R.T)).energy == pytest.approx(pot.compute(st).energy, abs=1e-12)


def test_threaded_kernel_equals_serial_kernel():
    from spinlat.potentials import exchange

    st = bcc_fe((3, 3, 3), seed=10)
    pot = BetheSlaterExchange(*PARAMS, offset=True)
    nl = pot.neighbor_list(st)
    n = len(st)
    atoms = np.arange(n, dtype=np.int64)
    outs = []
    for kernel in (exchange._exchange_serial, exchange._exchange_parallel):
        arrays = (np.zeros(n), np.zeros((n, 3)), np.zeros((n, 3)), np.zeros((n, 9)))
        kernel(atoms, st.positions, st.spins, st.moments > 0, nl.offsets, nl.j, nl.shift_index, nl.unique_vectors,
               3.4 ** 2, PARAMS[1], PARAMS[2], PARAMS[3] ** 2, 1.0, True, True, *arrays)
        outs.append(arrays)
    for a, b in zip(*outs):
        np.testing.assert_array_equal(a, b)


def test_bad_parameters_raise():
    with pytest.raises(InputError, match="J3"):
        BetheSlaterExchange(3.4, 0.02, 0.2, 0.0)
    with pytest.raises(InputError, match="cutoff"):
        BetheSlaterExchange(float("nan"), 0.02, 0.2, 1.8)
    with pytest.raises(InputError, match="cutoff"):
        BetheSlaterExchange(-1.0, 0.02, 0.2, 1.8)
    with pytest.raises(InputError, match="J1"):
        BetheSlaterExchange(3.4, "x", 0.2, 1.8)
    with pytest.raises(InputError, match="offset"):
        BetheSlaterExchange(3.4, 0.02, 0.2, 1.8, offset="yes")
    with pytest.raises(UnknownElementError):
        BetheSlaterExchange(3.4, 0.02, 0.2, 1.8, elements=["Xx"])
    st = bcc_fe((2, 2, 2))
    with pytest.raises(InputError, match="atom indices"):
        BetheSlaterExchange(*PARAMS).local_fields(st, None, [0, 99])


def test_open_boundaries():
    st = bcc_fe((2, 2, 2), seed=9)
    st = sl.State(st.positions, st.numbers, spins=st.spins, moments=st.moments)
    pot = BetheSlaterExchange(*PARAMS)
    ev = pot.compute(st)
    assert ev.energy == pytest.approx(reference_energy(st, *PARAMS), abs=1e-12)
    np.testing.assert_allclose(ev.forces[[0, 7]], fd_forces(pot, st, (0, 7)), atol=1e-8)


def test_cached_pair_kernels_match_direct_kernel_serial_and_threaded():
    """The compact pair list used for forces without stress (J and dJ/dr evaluated per entry)
    gives the direct kernel's energies, forces and fields, and the couplings of the geometry
    pass are J(r) (0 for self-images); their threaded variants give the serial results bit for
    bit."""
    from spinlat.potentials import exchange

    st = bcc_fe((3, 3, 3), seed=11, rattle=0.08)
    pot = BetheSlaterExchange(*PARAMS, offset=True)
    nl = pot.neighbor_list(st)
    n = len(st)
    atoms = np.arange(n, dtype=np.int64)
    active, e_ref, g_ref, f_ref, _ = pot._run(st, nl, atoms, True, False)
    c = pot._pair_cache(st, nl)
    assert np.all(c.rev[c.rev] == np.arange(len(c.rev)))
    assert c.cs.dtype == np.int16
    outs = []
    for geometry, forces in ((exchange._exchange_geometry, exchange._exchange_from_geometry),
                             (exchange._exchange_geometry_parallel, exchange._exchange_from_geometry_parallel)):
        w = np.empty_like(c.jc)
        geometry(st.positions, c.off, c.cj, c.cs, c.svec, c.rev, 3.4 ** 2, *PARAMS[1:3], PARAMS[3] ** 2, w)
        arrays = (np.empty(n), np.empty((n, 3)), np.empty((n, 3)))
        forces(st.positions, st.spins, c.off, c.cj, c.cs, c.svec, 3.4 ** 2, *PARAMS[1:3], PARAMS[3] ** 2, 1.0, True,
               *arrays)
        outs.append((w,) + arrays)
    for a, b in zip(*outs):
        np.testing.assert_array_equal(a, b)
    w, e, g, f = outs[0]
    rows = np.repeat(np.arange(n), np.diff(c.off))
    r = np.linalg.norm(st.positions[c.cj] - st.positions[rows] + c.svec[c.cs], axis=1)
    np.testing.assert_allclose(w, np.where((r <= 3.4) & (c.cj != rows), bethe_slater(r, *PARAMS[1:]), 0.0),
                               rtol=1e-14, atol=1e-18)
    np.testing.assert_allclose(e, e_ref, atol=1e-15)
    np.testing.assert_allclose(g, g_ref, atol=1e-15)
    np.testing.assert_allclose(f, f_ref, atol=1e-14)


# ------------------------------------------------------------------------------------------
# the reverse-pair search of the compact pair list, and one atom in a tiny periodic cell
# ------------------------------------------------------------------------------------------


def _reverse_reference(off, cj, cs, svec):
    """Reverse entry of every directed entry by the plain definition (j → i with the opposite
    shift vector), as the former row scan did: −1 when there is none."""
    rev = np.full(len(cj), -1)
    for i in range(len(off) - 1):
        for p in range(off[i], off[i + 1]):
            j = cj[p]
            for t in range(off[j], off[j + 1]):
                if cj[t] == i and np.array_equal(svec[cs[t]], -svec[cs[p]]):
                    rev[p] = t
                    break
    return rev


@pytest.mark.parametrize("case", ["bcc_3x3x3", "self_images", "partly_active"])
def test_pair_search_gives_the_same_table_as_the_row_scan(case):
    """_compact_spin_list's bisection search for reverse entries gives exactly the table of the
    quadratic row scan it replaced, on a normal system, a small cell with many self-images and
    with non-magnetic atoms left out; every entry's reverse points back to it."""
    from spinlat.potentials.exchange import _compact_spin_list

    if case == "bcc_3x3x3":
        st, cut = bcc_fe((3, 3, 3), seed=21, rattle=0.08), 3.4
    elif case == "self_images":
        st, cut = bcc_fe((1, 1, 1), seed=22, rattle=0.05), 6.0
    else:
        st = bcc_fe((2, 2, 3), seed=23, rattle=0.05)
        st, cut = st.copy(moments=np.where(np.arange(len(st)) % 3 == 0, 0.0, 2.2)), 3.4
    pot = BetheSlaterExchange(cut, *PARAMS[1:])
    nl = pot.neighbor_list(st)
    active = st.moments > 0
    off, cj, cs, svec, rev = _compact_spin_list(st.positions, active, nl.offsets, nl.j, nl.shift_index,
                                                nl.unique_shifts, nl.unique_vectors, np.inf)
    np.testing.assert_array_equal(rev, _reverse_reference(off, cj, cs, svec))
    assert np.all(rev >= 0)  # a full list: every entry has its reverse
    p = np.arange(len(cj))
    np.testing.assert_array_equal(rev[rev], p)
    row = np.repeat(np.arange(len(st)), np.diff(off))
    np.testing.assert_array_equal(cj[rev], row)
    np.testing.assert_array_equal(svec[cs[rev]], -svec[cs])
    assert active[row].all() and active[cj].all() and len(cj) > 0


def test_one_atom_in_a_tiny_cell_is_refused_or_summed_over_its_images():
    """One atom in a periodic cell: State refuses cells where it overlaps its own images (before
    any neighbour search for cells far too small), and in a small valid cell the exchange is the
    lattice sum over the ~10⁵ self-images, E = −½ Σ_{R≠0, |R|≤rc} J(|R|) for aligned spins."""
    from spinlat.errors import OverlappingAtomsError

    with pytest.raises(OverlappingAtomsError, match="too small"):
        sl.State([[0, 0, 0]], [26], cell=np.eye(3) * 0.05, pbc=True, moments=[2.2])
    with pytest.raises(OverlappingAtomsError, match="own periodic image"):
        sl.State([[0, 0, 0]], [26], cell=np.eye(3) * 0.09, pbc=True, moments=[2.2])
    a = 0.13
    st = sl.State([[0.01, 0.02, 0.03]], [26], cell=np.eye(3) * a, pbc=True, moments=[2.2])
    pot = BetheSlaterExchange(*PARAMS)
    ev = pot.compute(st, forces=True)
    m = int(np.ceil(PARAMS[0] / a))
    g = np.arange(-m, m + 1) * a
    r = np.sqrt(g[:, None, None] ** 2 + g[None, :, None] ** 2 + g[None, None, :] ** 2).ravel()
    r = r[(r > 0) & (r <= PARAMS[0])]
    assert len(r) > 50_000
    assert ev.energy == pytest.approx(-0.5 * bethe_slater(r, *PARAMS[1:]).sum(), rel=1e-12)
    np.testing.assert_allclose(ev.forces, 0.0, atol=1e-9 * np.abs(bethe_slater(r, *PARAMS[1:])).sum())


def test_two_neighbour_lists_in_turn_keep_their_pair_lists(monkeypatch):
    """A run's own list and a second one used alongside (Simulation's thermo lines compute the
    spin temperature on a list of their own) each keep their compact pair list: alternating
    between them rebuilt both at every turn (3x the cost of a step with a thermo line per step);
    the results are the same bits as with fresh lists, and a third list evicts the least
    recently used one."""
    from spinlat.neighbors import NeighborList
    from spinlat.potentials import exchange

    calls = []
    build = exchange._compact_spin_list
    monkeypatch.setattr(exchange, "_compact_spin_list", lambda *a: calls.append(1) or build(*a))
    st = bcc_fe((3, 3, 3), seed=5, rattle=0.05)
    pot = BetheSlaterExchange(*PARAMS)
    lists = [NeighborList(pot.cutoff, pot.skin) for _ in range(3)]
    for nl in lists:
        nl.update(st)
    first = [pot.compute(st, nl, magnetic_forces=True) for nl in lists[:2]]
    assert len(calls) == 2
    for _ in range(3):
        again = [pot.compute(st, nl, magnetic_forces=True) for nl in lists[:2]]
    assert len(calls) == 2  # no rebuild while two lists alternate
    fresh = BetheSlaterExchange(*PARAMS).compute(st, lists[0], magnetic_forces=True)
    calls.pop()  # the fresh potential's own list
    for ev in (*first, *again):
        assert ev.energy == fresh.energy and np.array_equal(ev.magnetic_forces, fresh.magnetic_forces)
        assert np.array_equal(ev.forces, fresh.forces)
    pot.compute(st, lists[2])  # a third list: lists[0], used least recently, goes
    pot.compute(st, lists[1])
    assert len(calls) == 3
    pot.compute(st, lists[0])
    assert len(calls) == 4


def test_parameters_cannot_be_changed_after_construction():
    """``exchange.J1 = 0.05`` after a run: some kernels read J1 live, the cached pair couplings
    (the integrators' path) kept the old value, so compute() and the dynamics disagreed
    silently. Assigning a parameter is refused, naming it."""
    from spinlat.errors import FixedParameterError

    st = bcc_fe((2, 2, 2), seed=1)
    pot = BetheSlaterExchange(3.4, 0.02726, 0.2171, 1.841)
    e = pot.compute(st).energy
    for name in ("J1", "J2", "J3", "cutoff", "offset"):
        with pytest.raises(FixedParameterError, match=rf"BetheSlaterExchange\.{name} is fixed"):
            setattr(pot, name, 1.0)
    assert pot.J1 == 0.02726 and pot.compute(st).energy == e
