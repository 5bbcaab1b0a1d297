"""Heisenberg exchange does not depend on where the crystal sits: rigid translation, centring,
wrapping, atom order and vacuum leave the energy unchanged; pairs follow the atoms as they move
(drifting crystals, hot atoms far from their sites); structures that are not supercells still
raise clear errors. Reference values: the energy of the unmoved state (and its fields, permuted)."""

import warnings

import numpy as np
import pytest
from ase.cluster import BodyCenteredCubic

import spinlat as sl
from spinlat.errors import CellError, InputError
from spinlat.potentials import Heisenberg
from spinlat.potentials.heisenberg import SublatticeAmbiguityWarning

from conftest import EAM_FE, TB2J_FE, bcc_fe

A = 2.8665
SHIFT = np.array([0.31, 0.77, 1.13])


def tb2j_supercell(seed=0, reps=(3, 3, 3)):
    unit, ham = sl.io.read_tb2j(TB2J_FE)
    st = unit.repeat(reps)
    rng = np.random.default_rng(seed)
    return ham, st.copy(spins=rng.normal(size=(len(st), 3)), positions=st.positions + rng.normal(0, 0.05, (len(st), 3)))


def shifted(st):
    return st.copy(positions=st.positions + SHIFT)


def centred(st):
    atoms = st.to_ase()
    atoms.center()
    return sl.State.from_ase(atoms)


def wrapped(st):
    atoms = st.to_ase()
    atoms.positions += SHIFT
    atoms.wrap()
    return sl.State.from_ase(atoms)


def far_images(st):
    """Each atom moved by its own random lattice vector (positions far outside the cell)."""
    k = np.random.default_rng(7).integers(-3, 4, (len(st), 3))
    return st.copy(positions=st.positions + SHIFT + k @ st.cell)


def reordered(st):
    perm = np.random.default_rng(11).permutation(len(st))
    return st.copy(positions=st.positions[perm] + SHIFT, spins=st.spins[perm], moments=st.moments[perm],
                   numbers=st.numbers[perm]), perm


TRANSFORMS = {"shift": shifted, "center": centred, "wrap": wrapped, "far_images": far_images}


@pytest.mark.parametrize("name", list(TRANSFORMS))
@pytest.mark.parametrize("fresh", [True, False])
def test_tb2j_energy_is_invariant_under_rigid_moves(name, fresh):
    """The issue's shift (0.31, 0.77, 1.13) Å, ase's center(), wrapping: the same pair table, so
    the energy is bit for bit the same, whether a fresh Heisenberg sees the moved state or the one
    that evaluated the original."""
    ham, st = tb2j_supercell()
    ev0 = ham.compute(st)
    moved = TRANSFORMS[name](st)
    assert np.abs(moved.positions - st.positions).max() > 0.3
    h = Heisenberg.from_tb2j(TB2J_FE) if fresh else ham
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ev = h.compute(moved)
    assert ev.energy == ev0.energy
    np.testing.assert_array_equal(ev.magnetic_forces, ev0.magnetic_forces)


@pytest.mark.parametrize("fresh", [True, False])
def test_tb2j_energy_is_invariant_under_reordering(fresh):
    ham, st = tb2j_supercell(seed=1)
    ev0 = ham.compute(st)
    moved, perm = reordered(st)
    ev = (Heisenberg.from_tb2j(TB2J_FE) if fresh else ham).compute(moved)
    assert ev.energy == pytest.approx(ev0.energy, rel=1e-13, abs=1e-13)
    np.testing.assert_allclose(ev.magnetic_forces, ev0.magnetic_forces[perm], rtol=0, atol=1e-14)
    np.testing.assert_allclose(ev.energies, ev0.energies[perm], rtol=0, atol=1e-14)
    # back to the original order: the original table again
    assert ham.compute(st).energy == ev0.energy


def test_from_neighbors_conventional_cell_shift_reorder_and_strain():
    """Two-site conventional bcc template (from_neighbors, with DMI): the exchange is the same on
    both sites, so no assignment is ambiguous even for a shifted, reordered, strained state."""
    unit = sl.State([[0, 0, 0], [A / 2] * 3], [26, 26], cell=np.eye(3) * A, pbc=True, moments=[2.2, 2.2])
    ham = Heisenberg.from_neighbors(unit, J=[0.01, 0.004, -0.001], D=[0.002, 0.001])
    assert ham.sublattice_ambiguity() is None
    st = bcc_fe((3, 3, 3), seed=3, rattle=0.08)
    ev0 = ham.compute(st)
    moved, perm = reordered(st)
    strain = np.eye(3) + [[0.01, 0.003, 0], [0.003, -0.008, 0], [0, 0, 0.005]]
    moved = moved.copy(positions=moved.positions @ strain, cell=moved.cell @ strain)
    for h in (ham, Heisenberg.from_neighbors(unit, J=[0.01, 0.004, -0.001], D=[0.002, 0.001])):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            ev = h.compute(moved)
        assert ev.energy == pytest.approx(ev0.energy, abs=1e-13)
        np.testing.assert_allclose(ev.magnetic_forces, ev0.magnetic_forces[perm], rtol=0, atol=1e-14)


def test_exchange_that_distinguishes_sublattices():
    """Random tensors on the two bcc sites: the structure maps onto itself under (½,½,½)a, the
    exchange does not. In the template's frame any atom order works; a translated state is
    assigned by atom 0 (with a warning), and a state that was followed keeps its assignment."""
    rng = np.random.default_rng(0)
    unit = sl.State([[0, 0, 0], [A / 2] * 3], [26, 26], cell=np.eye(3) * A, pbc=True)
    i, j = rng.integers(0, 2, 12), rng.integers(0, 2, 12)
    R = rng.integers(-1, 2, (12, 3))
    R[(i == j) & ~R.any(axis=1), 0] = 1
    ham = Heisenberg(unit.cell, unit.positions, unit.numbers, i, j, R, rng.normal(0, 0.01, (12, 3, 3)))
    tau = ham.sublattice_ambiguity()
    assert tau is not None
    frac = tau / A
    np.testing.assert_allclose(np.abs(frac - np.round(frac)), 0.5, atol=1e-12)
    st = bcc_fe((2, 2, 2), seed=4, rattle=0.05)
    e0 = ham.compute(st).energy
    fresh = Heisenberg(unit.cell, unit.positions, unit.numbers, i, j, R, ham.J)
    with pytest.warns(SublatticeAmbiguityWarning, match="atom 0 on template site 0"):
        assert fresh.compute(shifted(st)).energy == e0  # atom 0 of bcc_fe is on site 0
    # followed: a rigid shift of the same state keeps the table, no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ham.compute(shifted(st)).energy == e0
    # the other assignment is a genuinely different energy (why the warning exists)
    body = st.copy(positions=np.roll(st.positions, 1, axis=0) + SHIFT, spins=np.roll(st.spins, 1, axis=0))
    with pytest.warns(SublatticeAmbiguityWarning, match="atom 0 on template site 0"):
        e_other = Heisenberg(unit.cell, unit.positions, unit.numbers, i, j, R, ham.J).compute(body).energy
    assert abs(e_other - e0) > 1e-4


def bcc_cluster():
    atoms = BodyCenteredCubic("Fe", [(1, 0, 0)], [3], latticeconstant=A)
    atoms.center(vacuum=4.0)
    atoms.pbc = False
    n = len(atoms)
    rng = np.random.default_rng(2)
    return sl.State.from_ase(atoms).copy(moments=np.full(n, 2.2), spins=rng.normal(size=(n, 3)))


def test_cluster_in_another_box_or_without_cell():
    cl = bcc_cluster()
    assert len(cl) == 91
    ham = Heisenberg.from_neighbors(cl, J=[0.01, 0.005], D=[0.002])
    ev0 = ham.compute(cl)
    bigger = cl.to_ase()
    bigger.center(vacuum=15.0)
    perm = np.random.default_rng(3).permutation(len(cl))
    variants = {
        "bigger box": (sl.State.from_ase(bigger), np.arange(len(cl))),
        "no cell": (sl.State(cl.positions - 7.0, cl.numbers, spins=cl.spins, moments=cl.moments), np.arange(len(cl))),
        "reordered, no cell": (sl.State(cl.positions[perm] + SHIFT, cl.numbers, spins=cl.spins[perm],
                                        moments=cl.moments[perm]), perm),
    }
    for name, (st, p) in variants.items():
        for h in (ham, Heisenberg.from_neighbors(cl, J=[0.01, 0.005], D=[0.002])):
            ev = h.compute(st)
            assert ev.energy == pytest.approx(ev0.energy, abs=1e-14), name
            np.testing.assert_allclose(ev.magnetic_forces, ev0.magnetic_forces[p], rtol=0, atol=1e-15, err_msg=name)
    # a template made without a cell applies to the cluster in its box
    h_nocell = Heisenberg.from_neighbors(variants["no cell"][0], J=[0.01, 0.005], D=[0.002])
    assert h_nocell.compute(cl).energy == pytest.approx(ev0.energy, abs=1e-14)
    with pytest.raises(InputError, match="the template has 91 atoms, the state has 90"):
        ham.compute(sl.State(cl.positions[:-1], cl.numbers[:-1]))


def test_displaced_atom_keeps_its_pairs():
    """An atom moved step by step 1.5 Å away from its site (far beyond any matching tolerance)
    keeps its pairs; a 0.8 Å displacement is also matched correctly from scratch."""
    ham, st = tb2j_supercell(seed=2)
    i0, j0, J0 = ham.pairs(st)
    pos = st.positions.copy()
    direction = np.array([1.0, 0.4, -0.3]) / np.linalg.norm([1.0, 0.4, -0.3])
    for step in range(1, 16):
        pos[5] = st.positions[5] + 0.1 * step * direction
        moved = st.copy(positions=pos + 0.02 * step)  # and a slow drift of everything
        i, j, J = ham.pairs(moved)
        np.testing.assert_array_equal(i, i0)
        np.testing.assert_array_equal(j, j0)
        if step == 8:  # 0.8 Å: a fresh match gives the same pairs
            fresh = Heisenberg.from_tb2j(TB2J_FE).pairs(moved)
            np.testing.assert_array_equal(fresh[0], i0)
            np.testing.assert_array_equal(fresh[1], j0)
    assert ham._expansion.sites.n == len(st)
    with pytest.raises(InputError, match="atom 5 .* from the nearest template site"):
        Heisenberg.from_tb2j(TB2J_FE).compute(moved)  # 1.5 Å away: not a crystal site any more


def test_following_costs_no_rematch():
    ham, st = tb2j_supercell(seed=3)
    ham.compute(st)
    ex = ham._expansion
    pos = st.positions.copy()
    rng = np.random.default_rng(0)
    for _ in range(200):  # a random walk of the whole crystal and of each atom
        pos += 0.05 + rng.normal(0, 0.03, pos.shape)
        ham.compute(st.copy(positions=pos))
    assert ham._expansion is ex and np.abs(pos - st.positions).max() > 5.0
    # a homogeneous strain of the cell (as in a cell relaxation) keeps the table too
    e = ham.compute(st).energy  # back to the start: too far from the last state, matched afresh
    ex = ham._expansion
    for eps in (0.005, 0.01, 0.02):
        strain = np.eye(3) + eps * np.array([[1.0, 0.2, 0.0], [0.2, -0.5, 0.1], [0.0, 0.1, 0.3]])
        assert ham.compute(st.copy(positions=st.positions @ strain, cell=st.cell @ strain)).energy == e
    assert ham._expansion is ex
    with pytest.raises(CellError, match="not a supercell"):  # 10 % strain: matched afresh, refused
        ham.compute(st.copy(positions=st.positions * 1.1, cell=st.cell * 1.1))
    # states of another size in between do not evict this one
    ham.compute(tb2j_supercell(reps=(2, 2, 2))[1])
    ham.compute(st)
    assert ham._expansion is ex


def test_not_a_supercell_of_the_template():
    ham, st = tb2j_supercell(seed=4, reps=(2, 2, 2))
    with pytest.raises(InputError, match="the state has 7 Fe, 1 Co, the template needs 8 Fe"):
        ham.compute(st.copy(numbers=[26] * 7 + [27]))
    with pytest.raises(InputError, match="has 8 atoms, the state has 7"):
        ham.compute(sl.State(st.positions[:7], st.numbers[:7], cell=st.cell, pbc=True))
    fcc = sl.State([[0, 0, 0], [0, 1.8, 1.8], [1.8, 0, 1.8], [1.8, 1.8, 0]], [26] * 4, cell=np.eye(3) * 3.6, pbc=True)
    with pytest.raises(CellError, match="not a supercell"):
        ham.compute(fcc)
    with pytest.raises(CellError, match="pbc"):
        ham.compute(st.copy(pbc=(True, True, False)))


def _drift_run(ham, integ, st, steps, chunks):
    pot = sl.potentials.EAM(EAM_FE) + ham
    e = [pot.compute(st).energy + st.kinetic_energy()]
    s = st
    for _ in range(chunks):
        s = integ.run(s, pot, steps // chunks)
        e.append(pot.compute(s).energy + s.kinetic_energy())
    return np.array(e), s


def test_nve_with_a_drifting_centre_of_mass():
    """EAM + TB2J Heisenberg, NVE, with a centre-of-mass velocity that carries the crystal 4 cells
    away: no error, and the energy is conserved as well as without the drift (Galilean
    invariance: the same relative motion)."""
    from spinlat.workflows.curie import truncate
    from spinlat.workflows.magnons import cubic_supercell

    unit, full = sl.io.read_tb2j(TB2J_FE)
    ham = truncate(full, 4.2)
    st = cubic_supercell(unit, 2)
    rng = np.random.default_rng(5)
    v = rng.normal(0, 0.01, (len(st), 3))
    v -= v.mean(axis=0)
    st = st.copy(velocities=v, spins=st.spins + rng.normal(0, 0.2, (len(st), 3)))
    v_com = np.array([0.03, -0.02, 0.01])  # Å/fs
    integ = sl.integrators.SpinLatticeNVE(1.0)
    e_ref, s_ref = _drift_run(ham, integ, st, 800, 8)
    e_drift, s_drift = _drift_run(ham, integ, st.copy(velocities=v + v_com), 800, 8)
    moved = (s_drift.positions - st.positions).mean(axis=0)
    np.testing.assert_allclose(moved, 800 * v_com, atol=1e-6)
    assert np.linalg.norm(moved) > 4 * A
    err_ref = np.abs(e_ref - e_ref[0]).max()
    err_drift = np.abs((e_drift - e_drift[0])).max()
    print(f"max energy error: {err_ref:.3e} eV at rest, {err_drift:.3e} eV drifting")
    assert err_drift < 1.1 * err_ref + 1e-6, (err_ref, err_drift)
    assert err_ref / len(st) < 5e-4  # eV/atom over 0.8 ps at dt = 1 fs
    # the Heisenberg energy of the drifted final state is what a fresh match gives
    assert ham.compute(s_drift).energy == pytest.approx(truncate(full, 4.2).compute(s_drift).energy, abs=1e-13)


@pytest.mark.slow
def test_hot_spin_lattice_langevin_keeps_running():
    """bcc Fe, EAM + TB2J exchange (first two shells, ``curie.truncate``), SpinLatticeLangevin at
    1000 K for 20 000 steps (16 atoms, ~30 s on one core): the Langevin noise makes the crystal
    drift (2.3 Å here, far beyond the old 0.5 Å matching tolerance); the run never stops, lattice
    and spin temperatures are 1000 K, and the pair table the run followed is the one a fresh match
    of the final state gives."""
    from spinlat.observables import spin_temperature
    from spinlat.workflows.curie import truncate
    from spinlat.workflows.magnons import cubic_supercell

    unit, full = sl.io.read_tb2j(TB2J_FE)
    ham = truncate(full, 3.0)
    st = cubic_supercell(unit, 2)
    pot = sl.potentials.EAM(EAM_FE) + ham
    integ = sl.integrators.SpinLatticeLangevin(1.0, 1000.0, friction=0.02, damping=0.1, seed=3)
    s = integ.run(st, pot, 2000)
    temps, spin_temps, start = [], [], s
    for _ in range(36):
        s = integ.run(s, pot, 500)
        temps.append(s.temperature())
        spin_temps.append(spin_temperature(s, pot))
    print(f"lattice {np.mean(temps):.0f} K, spins {np.mean(spin_temps):.0f} K, largest displacement "
          f"{np.linalg.norm(s.positions - st.positions, axis=1).max():.2f} Å, centre of mass moved "
          f"{np.linalg.norm((s.positions - st.positions).mean(axis=0)):.3f} Å")
    # 16 atoms: σ(T)/T ≈ 0.2 per sample, samples 500 fs apart ≫ 1/friction = 50 fs
    assert abs(np.mean(temps) / 1000.0 - 1) < 0.12, np.mean(temps)
    assert abs(np.mean(spin_temps) / 1000.0 - 1) < 0.12, np.mean(spin_temps)
    displacement = np.linalg.norm(s.positions - st.positions, axis=1)
    assert displacement.max() > 0.5  # beyond the old 0.5 Å matching tolerance
    followed = ham.pairs(s)
    fresh = truncate(full, 3.0).pairs(s)
    np.testing.assert_array_equal(followed[0], fresh[0])
    np.testing.assert_array_equal(followed[1], fresh[1])
    assert np.all(np.isfinite(s.spins)) and np.allclose(np.linalg.norm(s.spins, axis=1), 1.0, atol=1e-12)
