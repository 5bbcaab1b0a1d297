"""State: validation, ASE round trips, supercells, copies."""

import re
import warnings

import numpy as np
import pytest
from ase import Atoms
from ase import units as ase_units

import spinlat as sl
from spinlat import errors

from conftest import bcc_fe

POS = [[0, 0, 0], [1.4, 1.4, 1.4]]
CELL = np.eye(3) * 2.8


def test_defaults():
    st = sl.State(POS, ["Fe", "Fe"], cell=CELL, pbc=True)
    assert len(st) == 2 and st.numbers.tolist() == [26, 26]
    np.testing.assert_array_equal(st.spins, [[0, 0, 1], [0, 0, 1]])
    np.testing.assert_array_equal(st.moments, 0.0)
    np.testing.assert_array_equal(st.velocities, 0.0)
    np.testing.assert_allclose(st.masses, 55.845)
    assert st.volume == pytest.approx(2.8**3)
    st2 = sl.State(POS, [26, 26], cell=[2.8, 2.8, 2.8], pbc=[True, True, False])
    np.testing.assert_array_equal(st2.cell, CELL)
    assert st2.pbc.tolist() == [True, True, False]


def test_spins_are_normalised():
    st = sl.State(POS, [26, 26], spins=[[0, 0, 3.0], [1, 1, 0]], moments=[2, 2])
    np.testing.assert_allclose(np.linalg.norm(st.spins, axis=1), 1.0, rtol=1e-15)
    np.testing.assert_allclose(st.spins[1], [2**-0.5, 2**-0.5, 0])
    np.testing.assert_allclose(st.magnetic_moments, [[0, 0, 2], [2 * 2**-0.5, 2 * 2**-0.5, 0]])
    np.testing.assert_allclose(st.magnetization(), [2**0.5, 2**0.5, 2])
    # zero spin on a non-magnetic atom is allowed and becomes +z
    st = sl.State(POS, [26, 26], spins=[[0, 0, 0], [1, 0, 0]], moments=[0, 1])
    np.testing.assert_array_equal(st.spins[0], [0, 0, 1])
    assert st.magnetic.tolist() == [False, True]


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(positions=[[0, 0, 0]]), errors.ShapeError, "positions"),
    (dict(positions=[[0, 0, 0, 0], [1, 1, 1, 1]]), errors.ShapeError, "positions"),
    (dict(positions=[[0, 0, np.nan], [1.4, 1.4, 1.4]]), errors.NonFiniteError, "positions"),
    (dict(positions=[[0, 0, np.inf], [1.4, 1.4, 1.4]]), errors.NonFiniteError, "positions"),
    (dict(positions=[["a", 0, 0], [1.4, 1.4, 1.4]]), errors.InputError, "positions"),
    (dict(numbers=[26, 0]), errors.UnknownElementError, "atomic number 0"),
    (dict(numbers=[26, 119]), errors.UnknownElementError, "119"),
    (dict(numbers=[26, 2.5]), errors.UnknownElementError, "integers"),
    (dict(numbers=["Fe", "Xx"]), errors.UnknownElementError, "Xx"),
    (dict(numbers=[[26, 26]]), errors.ShapeError, "numbers"),
    (dict(spins=[[0, 0, 0], [0, 0, 1]], moments=[2.2, 2.2]), errors.ZeroSpinError, "atom 0"),
    (dict(spins=[[0, 0, 1]], moments=[2.2, 2.2]), errors.ShapeError, "spins"),
    (dict(spins=[[0, 0, np.nan], [0, 0, 1]]), errors.NonFiniteError, "spins"),
    (dict(moments=[2.2, -0.1]), errors.InputError, "non-negative"),
    (dict(moments=[2.2]), errors.ShapeError, "moments"),
    (dict(moments=[2.2, np.inf]), errors.NonFiniteError, "moments"),
    (dict(velocities=[[0, 0, np.nan], [0, 0, 0]]), errors.NonFiniteError, "velocities"),
    (dict(masses=[55.8, 0.0]), errors.InputError, "masses"),
    (dict(positions=[[0, 0, 0], [0.05, 0, 0]]), errors.OverlappingAtomsError, "0.0500"),
    (dict(cell=[[2.8, 0, 0], [0, 2.8, 0], [2.8, 2.8, 0]], pbc=True), errors.CellError, "singular"),
    (dict(cell=np.diag([2.8, 2.8, 0.0]), pbc=True), errors.CellError, "singular"),
    (dict(cell=None, pbc=True), errors.CellError, "cell"),
    (dict(cell=[[2.8, 0, 0], [0, 2.8, 0]], pbc=True), errors.ShapeError, "cell"),
    (dict(cell=np.eye(3) * np.nan, pbc=True), errors.NonFiniteError, "cell"),
])
def test_validation(kwargs, error, match):
    args = dict(positions=POS, numbers=[26, 26], cell=CELL, pbc=False)
    args.update(kwargs)
    with pytest.raises(error, match=match):
        sl.State(**args)


def test_errors_share_one_base():
    with pytest.raises(errors.SpinlatError):
        sl.State(POS, [26, 200])
    with pytest.raises(ValueError):  # InputError is also a ValueError
        sl.State(POS, [26, 26], moments=[-1, 1])


def test_overlap_across_periodic_boundary():
    with pytest.raises(errors.OverlappingAtomsError):
        sl.State([[0.02, 0, 0], [2.76, 0, 0]], [26, 26], cell=CELL, pbc=True)
    # the same atoms without pbc are 2.74 Å apart
    sl.State([[0.02, 0, 0], [2.76, 0, 0]], [26, 26], cell=CELL, pbc=False)
    # a singular cell is fine when nothing is periodic
    sl.State(POS, [26, 26], cell=np.zeros((3, 3)), pbc=False)


def test_validate_false_skips_distance_check():
    st = sl.State([[0, 0, 0], [0.01, 0, 0]], [26, 26], validate=False)
    with pytest.raises(errors.OverlappingAtomsError):
        st.check_distances()


def _assert_same(a, b):
    for name in ("positions", "numbers", "cell", "pbc", "spins", "moments", "velocities", "masses"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


def test_ase_round_trip_non_collinear_is_lossless():
    rng = np.random.default_rng(1)
    st = bcc_fe((2, 2, 2), seed=2)
    mom = rng.uniform(0.3, 2.5, len(st))
    mom[[2, 5]] = 0.0
    st = st.copy(moments=mom, velocities=rng.normal(0, 0.03, (len(st), 3)),
                 masses=rng.uniform(50, 60, len(st)))
    atoms = st.to_ase()
    assert atoms.get_initial_magnetic_moments().shape == (len(st), 3)
    np.testing.assert_allclose(atoms.get_initial_magnetic_moments(), st.magnetic_moments, rtol=1e-15)
    np.testing.assert_allclose(atoms.get_velocities() * ase_units.fs, st.velocities, rtol=1e-13, atol=1e-18)
    _assert_same(sl.State.from_ase(atoms), st)
    # plain ASE atoms (no spinlat extras) still round-trip to machine precision
    plain = atoms.copy()
    for k in ("spinlat_spins", "spinlat_moments", "spinlat_velocities"):
        del plain.arrays[k]
    back = sl.State.from_ase(plain)
    np.testing.assert_allclose(back.magnetic_moments, st.magnetic_moments, rtol=0, atol=1e-14)
    np.testing.assert_allclose(back.velocities, st.velocities, rtol=1e-13, atol=1e-18)
    np.testing.assert_array_equal(back.moments == 0, st.moments == 0)
    # moments changed in ASE after to_ase win over the stored exact arrays
    m = atoms.get_initial_magnetic_moments()
    m[0] = [0.0, 3.0, 0.0]
    atoms.set_initial_magnetic_moments(m)
    changed = sl.State.from_ase(atoms)
    np.testing.assert_allclose(changed.spins[0], [0, 1, 0])
    assert changed.moments[0] == 3.0


def test_ase_collinear_magmoms():
    atoms = Atoms("Fe3", positions=[[0, 0, 0], [2.5, 0, 0], [0, 2.5, 0]], magmoms=[2.2, -1.5, 0.0])
    atoms.set_velocities([[0.1, 0, 0], [0, 0.2, 0], [0, 0, -0.3]])
    st = sl.State.from_ase(atoms)
    np.testing.assert_array_equal(st.moments, [2.2, 1.5, 0.0])
    np.testing.assert_array_equal(st.spins, [[0, 0, 1], [0, 0, -1], [0, 0, 1]])
    np.testing.assert_allclose(st.velocities, atoms.get_velocities() * ase_units.fs, rtol=1e-15)
    back = st.to_ase()
    np.testing.assert_array_equal(back.get_initial_magnetic_moments()[:, 2], [2.2, -1.5, 0.0])
    np.testing.assert_allclose(back.get_velocities(), atoms.get_velocities(), rtol=1e-14)
    _assert_same(sl.State.from_ase(back), st)


def test_repeat():
    st = sl.State(POS, [26, 28], cell=CELL + np.array([[0, 0.2, 0], [0, 0, 0], [0.1, 0, 0]]), pbc=True,
                  spins=[[1, 0, 0], [0, 1, 0]], moments=[2.2, 0.6], velocities=[[0.01, 0, 0], [0, 0, 0.02]])
    sup = st.repeat((2, 3, 1))
    assert len(sup) == 12
    np.testing.assert_allclose(sup.cell, st.cell * np.array([2, 3, 1])[:, None])
    np.testing.assert_array_equal(sup.numbers, np.tile([26, 28], 6))
    np.testing.assert_array_equal(sup.moments, np.tile([2.2, 0.6], 6))
    np.testing.assert_array_equal(sup.spins, np.tile(st.spins, (6, 1)))
    assert sup.volume == pytest.approx(6 * st.volume)
    assert sup.kinetic_energy() == pytest.approx(6 * st.kinetic_energy())
    np.testing.assert_allclose(sup.magnetization(), 6 * st.magnetization())
    # agrees with ASE's repeat up to atom order
    ref = st.to_ase().repeat((2, 3, 1))
    key = lambda p: np.lexsort(np.round(p, 8).T)  # noqa: E731
    np.testing.assert_allclose(sup.positions[key(sup.positions)], ref.positions[key(ref.positions)], atol=1e-12)
    assert st.repeat(2).n_atoms == 16
    sup.check_distances()
    with pytest.raises(errors.InputError, match="repeat"):
        st.repeat((0, 1, 1))


def test_copy():
    st = bcc_fe((2, 2, 2))
    c = st.copy()
    _assert_same(c, st)
    c.positions[0, 0] += 1.0
    assert c.positions[0, 0] != st.positions[0, 0]  # deep copy
    s2 = st.copy(spins=-st.spins)
    np.testing.assert_array_equal(s2.spins, -st.spins)
    np.testing.assert_array_equal(s2.positions, st.positions)
    with pytest.raises(errors.KeywordError, match=r"State.copy: unknown keyword .spin. \(did you mean .spins.\?\)"):
        st.copy(spin=st.spins)
    with pytest.raises(errors.NonFiniteError):
        st.copy(spins=np.full((len(st), 3), np.nan))
    with pytest.raises(errors.OverlappingAtomsError):
        p = st.positions.copy()
        p[1] = p[0] + 0.01
        st.copy(positions=p)


def test_kinetic_energy_and_temperature():
    st = sl.State(POS, [26, 26], velocities=[[0.01, 0, 0], [0, -0.02, 0]])
    m = st.masses[0]
    ke = 0.5 * m * (0.01**2 + 0.02**2) * sl.units.AMU_A2_PER_FS2_IN_EV
    assert st.kinetic_energy() == pytest.approx(ke, rel=1e-14)
    assert st.temperature() == pytest.approx(2 * ke / (6 * sl.units.K_B), rel=1e-14)
    # agrees with ASE
    atoms = st.to_ase()
    assert atoms.get_kinetic_energy() == pytest.approx(ke, rel=1e-7)  # ASE uses other CODATA values


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(pbc="False"), errors.InputError, "pbc: expected True/False or three of them"),
    (dict(pbc=[True, False]), errors.InputError, r"pbc: expected .* got \[True, False\]"),
    (dict(pbc=(1, 1, 1)), errors.InputError, "pbc: expected"),
    (dict(pbc=None), errors.InputError, "pbc: expected"),
    (dict(numbers=["Fe", "X"]), errors.UnknownElementError, "unknown element symbol 'X' at index 1"),
    (dict(numbers=[True, True]), errors.UnknownElementError, "numbers: expected atomic numbers"),
    (dict(numbers=[26, 26 + 0j]), errors.UnknownElementError, "numbers: expected atomic numbers"),
    (dict(numbers=["Fe", None]), errors.UnknownElementError, "None"),
    (dict(positions=np.array(POS) + 0j), errors.InputError, "positions: .* complex numbers"),
    (dict(positions=np.ones((2, 3), bool)), errors.InputError, "positions: .* booleans"),
    (dict(positions=[[0, 0, 0], [1.4, 1.4, True]]), errors.InputError, "positions: .* True at flat index 5"),
    (dict(positions=[["0", "0", "0"], ["1.4", "1.4", "1.4"]]), errors.InputError, "positions: .* strings"),
    (dict(positions=[[0, 0, 0], [1.4, 1.4, None]]), errors.InputError, "positions: .* None"),
    (dict(cell=[["2.8", 0, 0], [0, 2.8, 0], [0, 0, 2.8]]), errors.InputError, "cell: .* strings"),
    (dict(cell=np.eye(3, dtype=bool)), errors.InputError, "cell: .* booleans"),
    (dict(spins=[[0, 0, 1j], [0, 0, 1]]), errors.InputError, "spins: .* complex numbers"),
    (dict(moments=[True, True]), errors.InputError, "moments: .* booleans"),
    (dict(moments="2.2"), errors.InputError, "moments: .* strings"),
    (dict(velocities=[[0, 0, 0], [0, 0, False]]), errors.InputError, "velocities: .* False"),
    (dict(masses=["55.8", "55.8"]), errors.InputError, "masses: .* strings"),
    (dict(validate="no"), errors.InputError, "validate: expected true or false"),
])
def test_types_are_checked_strictly(kwargs, error, match):
    """A bool is not a number, a string is not a number or a bool, complex is not real."""
    args = dict(positions=POS, numbers=[26, 26], cell=CELL, pbc=True)
    args.update(kwargs)
    with pytest.raises(error, match=match):
        sl.State(**args)


def test_numbers_and_bools_that_are_fine():
    st = sl.State(np.array(POS, dtype=np.float32), np.array([26.0, 28.0]), cell=np.eye(3, dtype=int) * 3,
                  pbc=np.array([True, False, True]), moments=np.array([2, 1], dtype=np.int8))
    assert st.positions.dtype == np.float64 and st.numbers.tolist() == [26, 28]
    assert st.pbc.tolist() == [True, False, True] and st.moments.tolist() == [2.0, 1.0]
    assert sl.State(POS, ["Fe", "Ni"], pbc=np.False_).numbers.tolist() == [26, 28]


def test_from_ase_finds_moments_where_ase_puts_them():
    """ase.io.read puts a ``magmoms`` column into the calculator results; DFT readers put
    computed moments there; data sets keep ``arrays["magmoms"]``."""
    from ase.calculators.singlepoint import SinglePointCalculator

    st = bcc_fe((2, 1, 1), seed=5)
    m = st.magnetic_moments
    for put in ("arrays", "calc", "calc_collinear"):
        atoms = Atoms(numbers=st.numbers, positions=st.positions, cell=st.cell, pbc=True)
        if put == "arrays":
            atoms.arrays["magmoms"] = m.copy()
        elif put == "calc":
            atoms.calc = SinglePointCalculator(atoms, energy=0.0, magmoms=m.copy())
        else:
            atoms.calc = SinglePointCalculator(atoms, energy=0.0, magmoms=np.array([2.0, -2.0, 1.0, 0.0]))
        got = sl.State.from_ase(atoms)
        if put == "calc_collinear":
            np.testing.assert_array_equal(got.moments, [2.0, 2.0, 1.0, 0.0])
            np.testing.assert_array_equal(got.spins[:, 2], [1, -1, 1, 1])
        else:
            np.testing.assert_allclose(got.magnetic_moments, m, rtol=0, atol=1e-15)
    # computed moments (here the collinear calculator result) win over the initial ones (a DFT
    # run's starting guess), unless prefer_moments="initial"
    atoms.set_initial_magnetic_moments(np.full(len(atoms), 1.5))
    np.testing.assert_array_equal(sl.State.from_ase(atoms).moments, [2.0, 2.0, 1.0, 0.0])
    np.testing.assert_array_equal(sl.State.from_ase(atoms, prefer_moments="initial").moments, 1.5)
    atoms.set_initial_magnetic_moments(None)
    atoms.calc = SinglePointCalculator(atoms, energy=0.0, magmoms=np.zeros((3, 3)))
    with pytest.raises(errors.ShapeError, match="magnetic moments of the ase.Atoms"):
        sl.State.from_ase(atoms)


def test_from_ase_refuses_constraints_unless_told_to_ignore_them():
    """FixAtoms (or a POSCAR's selective dynamics) on the atoms: a State cannot hold them and
    spinlat's dynamics would move the fixed atoms, so from_ase refuses by default."""
    from ase.build import bulk
    from ase.constraints import FixAtoms, FixCartesian

    atoms = bulk("Fe", "bcc", 2.8665, cubic=True).repeat(2)
    atoms.set_initial_magnetic_moments([2.2] * len(atoms))
    atoms.set_constraint([FixAtoms(indices=[0, 3]), FixCartesian(5, mask=(1, 0, 0))])
    with pytest.raises(errors.InputError, match=r"constraints \(FixAtoms on atoms \[0, 3\] \(2 atoms\); FixCartesian "
                                                r"on atoms \[5\] \(1 atoms\)\).*constraints='ignore'"):
        sl.State.from_ase(atoms)
    st = sl.State.from_ase(atoms, constraints="ignore")
    np.testing.assert_array_equal(st.positions, atoms.positions)
    with pytest.raises(errors.InputError, match="constraints: expected one of 'error', 'ignore'"):
        sl.State.from_ase(atoms, constraints="warn")
    atoms.set_constraint(FixAtoms(mask=[True] + [False] * 15))
    with pytest.raises(errors.InputError, match=r"FixAtoms on atoms \[0\]"):
        sl.State.from_ase(atoms)


def test_from_ase_names_the_tags_and_charges_it_drops(tmp_path):
    """ASE's surface builders number the layers with tags; a State has no place for them, so
    from_ase warns once naming them (never for all-zero tags, ASE's default), also through a
    run config and spinlat convert, and not from the ASE calculator (the tags stay on its atoms)."""
    import warnings

    import ase.io
    from ase.build import bcc110, bulk

    from spinlat import config as C
    from spinlat.ase import SpinLatticeCalculator
    from spinlat.potentials import Zeeman

    slab = bcc110("Fe", (2, 2, 3), a=2.8665, vacuum=6.0)
    slab.set_initial_magnetic_moments([2.2] * len(slab))
    assert slab.get_tags().tolist() == [3] * 4 + [2] * 4 + [1] * 4
    with pytest.warns(UserWarning, match=r"tags \(non-zero on 12 of 12 atoms; ASE's surface.*not kept") as rec:
        st = sl.State.from_ase(slab)
    assert len([w for w in rec if "tags" in str(w.message)]) == 1
    np.testing.assert_array_equal(st.positions, slab.positions)   # the order is kept
    slab.set_initial_charges([0.5] + [0.0] * 11)
    with pytest.warns(UserWarning, match=r"tags .* and initial_charges \(non-zero on 1 of 12 atoms"):
        sl.State.from_ase(slab)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sl.State.from_ase(slab, warn_dropped=False)
        plain = bulk("Fe", "bcc", 2.8665, cubic=True)
        plain.set_tags([0, 0])                                     # all zero: nothing to say
        sl.State.from_ase(plain)
        slab.calc = SpinLatticeCalculator(Zeeman([0, 0, 1.0]))
        slab.get_potential_energy()
    ase.io.write(tmp_path / "slab.traj", [slab, slab])
    with pytest.warns(UserWarning, match="tags"):
        C.read_structure(tmp_path / "slab.traj")
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        sl.io.convert(tmp_path / "slab.traj", tmp_path / "slab.h5")
    assert len([w for w in rec if "tags" in str(w.message)]) == 1  # once, not per frame


@pytest.mark.parametrize("column", ["magmom:R:3", "magmom:R:1", "magnetic_moments:R:1", "moments:R:3",
                                    "REF_magmom:R:3", "REF_magmoms:R:1", "dft_magmoms:R:3"])
def test_moments_under_other_names_are_read(tmp_path, column):
    """Per-atom moments under the names other codes and MLIP projects give them — an extxyz column
    'magmom' (ASE makes it a calculator result named like the total moment), 'magnetic_moments',
    the reference magnetic MACE's 'REF_magmom' (mace-torch PR 1244's magmom_key) — were not read:
    the atoms came out non-magnetic (with a warning). They are read by from_ase, after
    read_extxyz (which put a 'magmom' column into info) and as training inputs."""
    import warnings

    import ase.io

    from spinlat.potentials.mmace.labels import input_moments
    from spinlat.state import unread_moment_arrays

    name, _, width = column.split(":")
    rows = ["0 0 2.2", "0 0 -2.2"] if width == "3" else ["2.2", "-2.2"]
    (tmp_path / "m.xyz").write_text(
        f'2\nLattice="2.8665 0 0 0 2.8665 0 0 0 2.8665" Properties=species:S:1:pos:R:3:{column} pbc="T T T"\n'
        f"Fe 0 0 0 {rows[0]}\nFe 1.43325 1.43325 1.43325 {rows[1]}\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for atoms in (ase.io.read(tmp_path / "m.xyz"), sl.io.read_extxyz(tmp_path / "m.xyz")[0]):
            assert unread_moment_arrays(atoms) == []
            st = sl.State.from_ase(atoms)
            assert st.moments.tolist() == [2.2, 2.2] and st.spins[:, 2].tolist() == [1.0, -1.0]
            np.testing.assert_array_equal(input_moments(atoms), [[0, 0, 2.2], [0, 0, -2.2]])
    # two different sets: the warning names both
    atoms = ase.io.read(tmp_path / "m.xyz")
    atoms.arrays["magmoms"] = np.array([[0, 0, 2.0], [0, 0, -2.0]])
    with pytest.warns(UserWarning, match=r"two different sets of magnetic moments, the 'magmoms' array and "):
        assert sl.State.from_ase(atoms).moments.tolist() == [2.0, 2.0]


def test_per_atom_moments_in_info_are_named_not_silently_dropped():
    """Per-atom data named like moments where spinlat does not read them (info): non-magnetic atoms,
    with a warning naming them; a (3,) total of a 3-atom structure is not per-atom."""
    import warnings

    from spinlat.state import unread_moment_arrays

    atoms = sl.State(np.array([[0, 0, 0], [2.0, 0, 0]]), [26, 26]).to_ase()
    atoms.set_initial_magnetic_moments(None)
    atoms.info["magnetic_moments"] = np.array([2.2, -2.2])
    assert unread_moment_arrays(atoms) == ["info['magnetic_moments']"]
    with pytest.warns(UserWarning, match=re.escape("info['magnetic_moments']") + r" looks like per-atom moments: the "
                                         r"atoms are read as non-magnetic.*store it as a per-atom array"):
        st = sl.State.from_ase(atoms)
    np.testing.assert_array_equal(st.moments, 0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        total = sl.State(np.zeros((3, 3)) + np.arange(3)[:, None] * 2.0, [26] * 3).to_ase()
        total.info["magmom"] = np.array([0.0, 0.0, 6.6])              # a (3,) total of 3 atoms: not per atom
        total.set_initial_magnetic_moments(None)
        assert unread_moment_arrays(total) == []


def test_a_lammps_spin_dump_read_by_ase_is_named():
    """ase.io.read of a LAMMPS spin dump gives H atoms (type 1) with the spin columns as arrays
    c_outsp[1] ...; State.from_ase made a non-magnetic hydrogen crystal of it without a word."""
    from pathlib import Path

    import ase.io

    dump = Path(__file__).parent / "data" / "lammps" / "spin_styles" / "dump.lammpstrj"
    atoms = ase.io.read(dump, format="lammps-dump-text", index=0)
    assert set(atoms.get_chemical_symbols()) == {"H"}
    with pytest.warns(UserWarning, match=r"look like ASE's reading of a LAMMPS dump \(a 'type' array and the columns "
                                         r"c_outsp\[1\], c_outsp\[2\], c_outsp\[3\], c_outsp\[4\] \.\.\.\): ASE keeps "
                                         r"neither the spins and moments.*spinlat.io.read_lammps_dump"):
        sl.State.from_ase(atoms)
    st = sl.io.read_lammps_dump(dump, elements=["Fe"], columns={f"c_outsp[{k}]": n for k, n in
                                                                  zip((1, 2, 3, 4), ("sp", "spx", "spy", "spz"))})[0]
    np.testing.assert_array_equal(st.moments, 2.2)


def test_a_total_moment_without_moments_per_atom_is_named():
    """A DFT result with only the cell's total moment (VASP without LORBIT) cannot be split into
    atoms: the atoms are read as non-magnetic, and from_ase says why."""
    from ase.build import bulk
    from ase.calculators.singlepoint import SinglePointCalculator

    a = bulk("Fe", "bcc", 2.8665, cubic=True)
    a.set_initial_magnetic_moments(None)
    a.calc = SinglePointCalculator(a, energy=-16.5, magmom=4.62)
    with pytest.warns(UserWarning, match=r"total magnetic moment 4.62 μB but no moment per atom \(VASP prints them "
                                         r"with LORBIT = 11"):
        st = sl.State.from_ase(a)
    np.testing.assert_array_equal(st.moments, 0.0)
    a.calc = SinglePointCalculator(a, energy=-16.5, magmom=4.62, magmoms=np.array([2.31, 2.31]))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert sl.State.from_ase(a).moments.tolist() == [2.31, 2.31]


def test_dft_output_gives_the_computed_moments_not_the_starting_guess(tmp_path):
    """An ASE .traj of a DFT run keeps INCAR's MAGMOM guess as initial magmoms and the converged
    moments as calculator results: State.from_ase, the run config and spinlat convert take the
    computed ones (prefer_moments="computed", the default)."""
    import ase.io
    from ase.build import bulk
    from ase.calculators.singlepoint import SinglePointCalculator

    from spinlat import config as C

    a = bulk("Fe", "bcc", a=2.8665, cubic=True)
    a.set_initial_magnetic_moments([3.0, -3.0])
    a.calc = SinglePointCalculator(a, energy=-16.5, forces=np.zeros((2, 3)), magmoms=np.array([2.31, -2.29]))
    ase.io.write(tmp_path / "dft.traj", a)
    back = ase.io.read(tmp_path / "dft.traj")
    st = sl.State.from_ase(back)
    np.testing.assert_array_equal(st.moments, [2.31, 2.29])
    np.testing.assert_array_equal(st.spins[:, 2], [1, -1])
    np.testing.assert_array_equal(sl.State.from_ase(back, prefer_moments="initial").moments, [3.0, 3.0])
    with pytest.raises(errors.InputError, match="prefer_moments: expected one of 'computed', 'initial'"):
        sl.State.from_ase(back, prefer_moments="dft")
    cfg = {"structure": {"file": "dft.traj"}, "potential": [{"type": "Zeeman", "B": [0, 0, 1.0]}],
           "integrator": {"type": "LLG", "dt": 0.1}, "steps": 1, "_base": str(tmp_path)}
    np.testing.assert_array_equal(C.build_structure(C.load(cfg)).moments, [2.31, 2.29])
    cfg["structure"]["prefer_moments"] = "initial"
    np.testing.assert_array_equal(C.build_structure(C.load(cfg)).moments, [3.0, 3.0])
    assert sl.io.convert(tmp_path / "dft.traj", tmp_path / "dft.h5") == 1
    with sl.io.Trajectory(tmp_path / "dft.h5") as t:
        np.testing.assert_array_equal(t["moments"][0], [2.31, 2.29])
        assert t["potential_energy"][0] == -16.5


def test_from_ase_takes_spin_directions_from_a_spins_column(tmp_path):
    """An extxyz with a ``spins`` column: its directions are kept, not replaced by ±z."""
    import ase.io
    from ase.build import bulk

    atoms = bulk("Fe", "bcc", 2.8665, cubic=True).repeat(2)
    n = len(atoms)
    rng = np.random.default_rng(4)
    s = rng.normal(size=(n, 3))
    s /= np.linalg.norm(s, axis=1)[:, None]
    m = np.linspace(-2.2, 2.2, n)
    m[3] = 0.0
    atoms.arrays["spins"] = s
    atoms.set_initial_magnetic_moments(m)  # collinear magnitudes, signed
    ase.io.write(tmp_path / "scalar.extxyz", atoms)
    st = sl.State.from_ase(ase.io.read(tmp_path / "scalar.extxyz"))
    np.testing.assert_allclose(st.moments, np.abs(m), rtol=0, atol=1e-8)
    sign = np.where(m < 0, -1.0, 1.0)[:, None]
    np.testing.assert_allclose(st.spins, sign * s, rtol=0, atol=1e-7)   # ASE writes 8 decimals
    np.testing.assert_allclose(st.magnetic_moments, m[:, None] * s, rtol=0, atol=1e-6)
    # non-collinear moments along the column: the same state; against it: refused, naming the atom
    atoms.set_initial_magnetic_moments(None)
    atoms.set_initial_magnetic_moments(np.abs(m)[:, None] * s)
    np.testing.assert_allclose(sl.State.from_ase(atoms).magnetic_moments, np.abs(m)[:, None] * s, rtol=0,
                               atol=1e-15)
    bad = atoms.copy()
    bad.arrays["spins"][5] *= -1
    with pytest.raises(errors.InputError, match="'spins' array and its magnetic moments disagree: atom 5"):
        sl.State.from_ase(bad)
    # a spins column alone: directions kept, moments 0
    del atoms.arrays["initial_magmoms"]
    st = sl.State.from_ase(atoms)
    np.testing.assert_array_equal(st.moments, 0.0)
    np.testing.assert_allclose(st.spins, s, rtol=0, atol=1e-15)
    atoms.arrays["spins"] = s[:, :2].copy()
    with pytest.raises(errors.ShapeError, match=r"'spins' array .* shape \(16, 3\), got \(16, 2\)"):
        sl.State.from_ase(atoms)


def test_calculator_reports_moments_along_a_spins_column():
    from ase.build import bulk

    from spinlat.ase import SpinLatticeCalculator
    from spinlat.potentials import Zeeman

    atoms = bulk("Fe", "bcc", 2.8665, cubic=True)
    atoms.set_initial_magnetic_moments([2.0, 2.0])
    atoms.arrays["spins"] = np.array([[1.0, 0, 0], [0, 0, -1.0]])
    atoms.calc = SpinLatticeCalculator(Zeeman([1.0, 0, 0]))
    np.testing.assert_array_equal(atoms.get_magnetic_moments(), [[2.0, 0, 0], [0, 0, -2.0]])
    # E = −μB Σ m·B: only the first moment lies along B
    assert atoms.get_potential_energy() == pytest.approx(-sl.units.MU_B * 2.0, rel=1e-14)


def test_from_ase_says_when_a_velocity_column_is_not_read(tmp_path):
    """An extxyz with a ``vel`` column (GPUMD, OVITO) but no momenta: not read (units unknown), said."""
    import ase.io
    from ase.build import bulk

    atoms = bulk("Fe", "bcc", 2.8665, cubic=True)
    atoms.arrays["vel"] = np.full((2, 3), 0.01)
    ase.io.write(tmp_path / "v.extxyz", atoms)
    with pytest.warns(UserWarning, match="no momenta but a per-atom array 'vel'.*atoms start at rest"):
        st = sl.State.from_ase(ase.io.read(tmp_path / "v.extxyz"))
    np.testing.assert_array_equal(st.velocities, 0.0)
    atoms.set_velocities(atoms.arrays["vel"] / ase_units.fs)  # as the warning says
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_allclose(sl.State.from_ase(atoms).velocities, 0.01, rtol=1e-14)


def test_training_inputs_and_from_ase_read_moments_by_one_rule_and_warn_when_they_disagree():
    """input_moments (training) preferred a 'magmoms' array over a calculator's moments, while
    State.from_ase preferred the calculator's: the same atoms gave the model other moments than
    a simulation of them. One rule now (spinlat.state.ase_magnetic_moments), and two different
    sets say so."""
    import warnings

    from ase.calculators.singlepoint import SinglePointCalculator

    from spinlat.potentials.mmace.labels import input_moments

    atoms = sl.State(np.array([[0.0, 0, 0], [1.4, 1.4, 1.4]]), [26, 26], cell=np.eye(3) * 2.8665, pbc=True).to_ase()
    atoms.set_initial_magnetic_moments(None)
    computed = np.array([2.2, -2.1])
    atoms.calc = SinglePointCalculator(atoms, magmoms=computed, energy=-8.0)
    atoms.arrays["magmoms"] = np.array([[0.0, 0, 2.0], [0, 0, 2.0]])  # stale: the starting guess of the data set
    with pytest.warns(UserWarning, match=r"two different sets of magnetic moments, the 'magmoms' array and the "
                                         r"calculator's magmoms \(largest difference 4.1 μB\); the calculator's "
                                         r"magmoms are read"):
        st = sl.State.from_ase(atoms)
    with pytest.warns(UserWarning, match="two different sets of magnetic moments"):
        m = input_moments(atoms)
    np.testing.assert_array_equal(m, [[0, 0, 2.2], [0, 0, -2.1]])
    np.testing.assert_array_equal(st.moments, [2.2, 2.1])
    np.testing.assert_array_equal(st.spins[:, 2], [1.0, -1.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the same moments in both places: nothing to say
        atoms.arrays["magmoms"] = np.array([[0.0, 0, 2.2], [0, 0, -2.1]])
        np.testing.assert_array_equal(input_moments(atoms), m)
        sl.State.from_ase(atoms)
        del atoms.arrays["magmoms"]  # one source: read by both
        np.testing.assert_array_equal(input_moments(atoms), m)


_PW_IN_AFM = """&control
  calculation = 'scf'
/
&system
  ibrav = 0, nat = 3, ntyp = 3, ecutwfc = 40, nspin = 2,
  starting_magnetization(1) = 0.5
  starting_magnetization(2) = -0.5
  starting_magnetization(3) = 0.0
/
&electrons
/
ATOMIC_SPECIES
Fe1 55.845 Fe.pbe.UPF
Fe2 55.845 Fe.pbe.UPF
O 15.999 O.pbe.UPF
CELL_PARAMETERS angstrom
2.8665 0 0
0 2.8665 0
0 0 5.0
ATOMIC_POSITIONS angstrom
Fe1 0 0 0
Fe2 1.43325 1.43325 1.43325
O 0 0 2.5
K_POINTS automatic
8 8 8 0 0 0
"""


def test_from_ase_names_quantum_espresso_starting_magnetization(tmp_path):
    """sl.State.from_ase(ase.io.read("pw.in")) took pw.x's starting_magnetization fractions (per
    species, the last one per element: Fe1 +0.5 / Fe2 -0.5 became -0.5, -0.5) as moments in μB
    without a word. The atoms carry no trace of the file and a Ni ferromagnet set to 0.6 μB by
    hand looks the same, so they are read with a warning naming both readings by default;
    initial_fractions='drop' leaves them out (as spinlat convert and run configs do for the
    file), 'keep' reads them silently; moments beyond 1, unequal per element or unit moments of
    a spin model give no warning."""
    import ase.io

    (tmp_path / "pw.in").write_text(_PW_IN_AFM)
    atoms = ase.io.read(tmp_path / "pw.in")
    np.testing.assert_array_equal(atoms.get_initial_magnetic_moments(), [-0.5, -0.5, 0.0])
    with pytest.warns(UserWarning, match=r"read as moments in μB; if the atoms come from a pw.x input they are "
                                         r"pw.x's starting_magnetization \(a fraction of the valence charge.*"
                                         r"initial_fractions='drop'"):
        st = sl.State.from_ase(atoms)
    np.testing.assert_array_equal(st.moments, [0.5, 0.5, 0.0])
    with pytest.warns(UserWarning, match=r"the ase.Atoms: its initial magnetic moments are pw.x's "
                                         r"starting_magnetization \(a fraction of the valence charge"):
        st = sl.State.from_ase(atoms, initial_fractions="drop")
    np.testing.assert_array_equal(st.moments, 0.0)
    np.testing.assert_array_equal(atoms.get_initial_magnetic_moments(), [-0.5, -0.5, 0.0])  # caller's atoms kept
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(sl.State.from_ase(atoms, initial_fractions="keep").moments, [0.5, 0.5, 0.0])
        atoms.set_initial_magnetic_moments([2.2, -2.2, 0.0])     # moments in μB
        np.testing.assert_array_equal(sl.State.from_ase(atoms).moments, [2.2, 2.2, 0.0])
        atoms.set_initial_magnetic_moments([0.6, -0.6, 0.0])     # unequal on one element: not a pw.x file
        np.testing.assert_array_equal(sl.State.from_ase(atoms).moments, [0.6, 0.6, 0.0])
        atoms.set_initial_magnetic_moments([1.0, -1.0, 0.0])     # unit moments of a spin model
        np.testing.assert_array_equal(sl.State.from_ase(atoms).moments, [1.0, 1.0, 0.0])
        from ase.build import bulk

        np.testing.assert_array_equal(sl.State.from_ase(bulk("Ni", cubic=True)).moments, 0.6)  # ASE's own moments
    with pytest.raises(errors.InputError, match="initial_fractions"):
        sl.State.from_ase(atoms, initial_fractions="yes")


_ELK_GEOMETRY = """
scale
 1.0

avec
  5.41 0.0 0.0
  0.0 5.41 0.0
  0.0 0.0 5.41

atoms
   1                                    : nspecies
'Fe.in'                                 : spfname
   2                                    : natoms; atpos, bfcmt below
    0.0 0.0 0.0    0.0 0.0 -0.01
    0.5 0.5 0.5    0.0 0.0 0.01
"""


def test_elk_bfcmt_is_not_read_as_moments(tmp_path):
    """ASE's Elk reader (GEOMETRY.OUT, elk.in layout) puts bfcmt, the muffin-tin magnetic field
    that breaks the symmetry (Hartree atomic units, its z component), into the initial magmoms:
    an antiferromagnet started with ∓0.01 came out with moments 0.01 μB. spinlat convert and run
    configs drop them with a warning naming the file, as for pw.x's starting_magnetization."""
    import ase.io

    from spinlat.config import read_structure

    (tmp_path / "GEOMETRY.OUT").write_text(_ELK_GEOMETRY)
    np.testing.assert_array_equal(ase.io.read(tmp_path / "GEOMETRY.OUT").get_initial_magnetic_moments(),
                                  [-0.01, 0.01])
    with pytest.warns(UserWarning, match=r"GEOMETRY.OUT: its initial magnetic moments are Elk's bfcmt \(the z "
                                         r"component of the muffin-tin magnetic field"):
        st = read_structure(tmp_path / "GEOMETRY.OUT")
    np.testing.assert_array_equal(st.moments, 0.0)
    with pytest.warns(UserWarning, match="Elk's bfcmt"):
        sl.io.convert(tmp_path / "GEOMETRY.OUT", tmp_path / "g.h5")
    with sl.io.Trajectory(tmp_path / "g.h5") as t:
        np.testing.assert_array_equal(t["moments"], 0.0)


def test_files_of_known_format_keep_small_moments(tmp_path):
    """The from_ase guard against pw.x fractions is for ase.Atoms of unknown origin: a run config
    or spinlat convert knows the file's format (and drops pw.x's and Elk's values itself), so an
    extxyz Ni ferromagnet at 0.6 μB keeps its moments, with no warning."""
    import ase.io
    from ase.build import bulk

    from spinlat.config import read_structure

    atoms = bulk("Ni", cubic=True)
    atoms.set_initial_magnetic_moments([0.6] * len(atoms))
    ase.io.write(tmp_path / "ni.extxyz", atoms)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(read_structure(tmp_path / "ni.extxyz").moments, 0.6)
        sl.io.convert(tmp_path / "ni.extxyz", tmp_path / "ni.h5")
    with sl.io.Trajectory(tmp_path / "ni.h5") as t:
        np.testing.assert_array_equal(t["moments"], 0.6)
    read_back = ase.io.read(tmp_path / "ni.extxyz")
    with warnings.catch_warnings():  # 0.6 μB on Ni: the moments ase.build.bulk gives it, not a pw.x fraction
        warnings.simplefilter("error")
        sl.State.from_ase(read_back)
    read_back.set_initial_magnetic_moments([0.5] * len(read_back))
    with pytest.warns(UserWarning, match="starting_magnetization"):  # the bare ase.Atoms: unknown origin
        sl.State.from_ase(read_back)


def test_assigning_a_field_is_checked_like_the_constructor():
    """``st.spins = rng.normal(size=(n, 3))`` (a scripting habit) kept the vectors as given: the
    Zeeman energy of a spin of length 5 was 5× too large, the magnetisation 5× too, and
    ``st.moments = [-2]`` made a magnetic atom silently non-magnetic. A field assigned on a
    State is now checked and normalised as ``State(...)`` and ``copy`` do."""
    from spinlat.errors import CellError, NonFiniteError, OverlappingAtomsError, ShapeError
    from spinlat.potentials import Zeeman

    st = sl.State([[0, 0, 0], [2.0, 0, 0]], ["Fe", "Fe"], cell=np.eye(3) * 4.0, pbc=True, moments=[2.0, 2.0])
    e_unit = Zeeman([0, 0, 1]).compute(st).energy
    st.spins = [[0, 0, 5.0], [0, 0, 0.5]]
    np.testing.assert_allclose(st.spins, [[0, 0, 1], [0, 0, 1]])
    assert Zeeman([0, 0, 1]).compute(st).energy == pytest.approx(e_unit, rel=1e-15)
    np.testing.assert_allclose(st.magnetization(), [0, 0, 4.0])
    with pytest.raises(errors.InputError, match="moments must be non-negative.*atom 0"):
        st.moments = np.array([-2.0, 2.0])
    with pytest.raises(NonFiniteError, match="spins"):
        st.spins = [[np.nan, 0, 1], [0, 0, 1]]
    with pytest.raises(ShapeError, match="positions"):
        st.positions = np.zeros((3, 3))
    with pytest.raises(OverlappingAtomsError, match="atoms 0 and 1"):
        st.positions = [[0, 0, 0], [0.05, 0, 0]]
    with pytest.raises(CellError):
        st.cell = np.zeros((3, 3))
    np.testing.assert_array_equal(st.moments, [2.0, 2.0])  # a refused assignment leaves the field
    np.testing.assert_array_equal(st.positions, [[0, 0, 0], [2.0, 0, 0]])
    st.moments = [1, 3]  # ints and lists become float64 arrays, as in the constructor
    assert st.moments.dtype == np.float64 and st.moments.tolist() == [1.0, 3.0]
    st.numbers = ["Ni", "Fe"]
    assert st.symbols == ["Ni", "Fe"]
