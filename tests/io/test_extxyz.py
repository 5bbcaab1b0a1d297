"""extxyz for magnetic data sets: lossless float64 round trips."""

import re

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.singlepoint import SinglePointCalculator

import spinlat as sl
from spinlat.errors import FileFormatError, InputError
from spinlat.io import read_extxyz, write_extxyz

from conftest import bcc_fe


def _config(seed, n_rep=2, stress_shape=(6,)):
    rng = np.random.default_rng(seed)
    atoms = bulk("Fe", "bcc", 2.8665, cubic=True).repeat(n_rep)
    del atoms.arrays["initial_magmoms"]
    n = len(atoms)
    atoms.positions += rng.normal(0, 0.1, (n, 3))
    atoms.cell[0, 1] = 0.1 * rng.random()
    atoms.arrays["magmoms"] = rng.normal(size=(n, 3)) * 2.2
    atoms.arrays["forces"] = rng.normal(size=(n, 3))
    atoms.arrays["magnetic_forces"] = rng.normal(size=(n, 3)) / 3
    atoms.info["energy"] = float(rng.normal() * 100)
    s = rng.normal(size=6) / 7
    atoms.info["stress"] = s if stress_shape == (6,) else sl.potentials.base.voigt_to_matrix(s)
    atoms.info["weight"] = float(rng.random())
    atoms.info["config_type"] = "rattled bcc"
    atoms.info["index"] = seed
    return atoms


def test_round_trip_is_lossless(tmp_path):
    configs = [_config(k) for k in range(4)]
    configs.append(_config(9, stress_shape=(3, 3)))
    path = tmp_path / "d.xyz"
    write_extxyz(path, configs)
    back = read_extxyz(path)
    assert len(back) == len(configs)
    for a, b in zip(configs, back):
        np.testing.assert_array_equal(a.positions, b.positions)
        np.testing.assert_array_equal(a.cell[:], b.cell[:])
        np.testing.assert_array_equal(a.numbers, b.numbers)
        assert b.pbc.all()
        for key in ("magmoms", "forces", "magnetic_forces"):
            assert b.arrays[key].dtype == np.float64
            np.testing.assert_array_equal(a.arrays[key], b.arrays[key], err_msg=key)
        assert b.info["energy"] == a.info["energy"]
        assert b.info["weight"] == a.info["weight"]
        assert b.info["config_type"] == "rattled bcc" and b.info["index"] == a.info["index"]
        stress = np.asarray(a.info["stress"])
        if stress.shape == (3, 3):
            stress = stress[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]
        np.testing.assert_array_equal(b.info["stress"], stress)
        # the moments are also the initial magnetic moments, so State.from_ase sees them
        np.testing.assert_array_equal(b.get_initial_magnetic_moments(), a.arrays["magmoms"])
        assert b.calc is None
    # writing what was read and reading again changes nothing
    write_extxyz(tmp_path / "e.xyz", back)
    again = read_extxyz(tmp_path / "e.xyz")
    for a, b in zip(back, again):
        assert sorted(a.arrays) == sorted(b.arrays) and sorted(a.info) == sorted(b.info)
        for key in a.arrays:
            np.testing.assert_array_equal(a.arrays[key], b.arrays[key], err_msg=key)
        for key in a.info:
            np.testing.assert_array_equal(a.info[key], b.info[key], err_msg=key)
    one = read_extxyz(path, index=2)
    np.testing.assert_array_equal(one.arrays["forces"], configs[2].arrays["forces"])
    assert len(read_extxyz(path, index="1:3")) == 2


def test_singlepoint_calculator_results_are_written(tmp_path):
    """A SinglePointCalculator's results are kept and do not collide with info/arrays."""
    rng = np.random.default_rng(1)
    a = _config(0)
    calc_forces = rng.normal(size=(len(a), 3))
    del a.arrays["forces"], a.info["energy"]
    a.calc = SinglePointCalculator(a, energy=-12.345678901234567, forces=calc_forces,
                                   stress=rng.normal(size=6), magmoms=a.arrays["magmoms"])
    # info already holds a stress: it wins over the calculator's
    b = _config(1)
    b.calc = SinglePointCalculator(b, energy=1.0, forces=np.zeros((len(b), 3)))
    write_extxyz(tmp_path / "c.xyz", [a, b])
    ra, rb = read_extxyz(tmp_path / "c.xyz")
    assert ra.info["energy"] == -12.345678901234567
    np.testing.assert_array_equal(ra.arrays["forces"], calc_forces)
    np.testing.assert_array_equal(ra.info["stress"], a.info["stress"])
    assert rb.info["energy"] == b.info["energy"]
    np.testing.assert_array_equal(rb.arrays["forces"], b.arrays["forces"])


def test_states_round_trip_non_collinear(tmp_path):
    st = bcc_fe((2, 2, 2), seed=4)
    rng = np.random.default_rng(0)
    mom = st.moments * rng.uniform(0.5, 1.5, len(st))
    mom[1] = 0.0
    st = st.copy(moments=mom, velocities=rng.normal(0, 0.02, (len(st), 3)))
    write_extxyz(tmp_path / "s.xyz", [st, st.repeat((1, 1, 2))])
    back = read_extxyz(tmp_path / "s.xyz")
    for ref, atoms in zip([st, st.repeat((1, 1, 2))], back):
        got = sl.State.from_ase(atoms)
        for name in ("positions", "numbers", "cell", "pbc", "spins", "moments", "velocities", "masses"):
            np.testing.assert_array_equal(getattr(got, name), getattr(ref, name), err_msg=name)
        np.testing.assert_array_equal(atoms.arrays["magmoms"], ref.magnetic_moments)


def test_collinear_and_open_boundaries(tmp_path):
    from ase import Atoms

    atoms = Atoms("Fe2Ni", positions=[[0, 0, 0], [2.1, 0.3, 0], [0, 2.2, 0.1]])
    atoms.arrays["magmoms"] = np.array([2.2, -2.1, 0.6])
    atoms.info["energy"] = -3.25
    write_extxyz(tmp_path / "m.xyz", atoms)
    (b,) = read_extxyz(tmp_path / "m.xyz")
    assert not b.pbc.any()
    np.testing.assert_array_equal(b.arrays["magmoms"], [2.2, -2.1, 0.6])
    st = sl.State.from_ase(b)
    np.testing.assert_array_equal(st.moments, [2.2, 2.1, 0.6])
    np.testing.assert_array_equal(st.spins[:, 2], [1, -1, 1])


def test_bad_input(tmp_path):
    with pytest.raises(InputError, match="ase.Atoms or spinlat.State"):
        write_extxyz(tmp_path / "x.xyz", [np.zeros(3)])
    a = _config(0)
    a.info["stress"] = np.zeros(4)
    with pytest.raises(InputError, match="stress"):
        write_extxyz(tmp_path / "x.xyz", [a])
    bad = tmp_path / "bad.xyz"
    bad.write_text("3\nProperties=species:S:1:pos:R:3\nFe 0 0 0\n")
    with pytest.raises(FileFormatError, match="bad.xyz"):
        read_extxyz(bad)
    with pytest.raises(FileNotFoundError):
        read_extxyz(tmp_path / "missing.xyz")
    with pytest.raises(InputError, match=r"read_extxyz path: expected a file path .*got 5"):
        read_extxyz(5)  # open(5) would read file descriptor 5
    with pytest.raises(InputError, match="write_extxyz path: expected a file path"):
        write_extxyz(5, [a])


def _afm_state():
    st = bcc_fe((2, 2, 2), seed=7)
    spins = np.zeros((len(st), 3))
    spins[:, 2] = np.where(np.arange(len(st)) % 2 == 0, 1.0, -1.0)
    mom = np.full(len(st), 2.2)
    mom[3] = 0.0
    return st.copy(spins=spins, moments=mom)


def test_states_read_back_through_plain_ase_with_their_moments(tmp_path):
    """write_extxyz → ase.io.read → State.from_ase keeps spins and moments bit for bit, also
    after another calculator is attached (ASE keeps the initial_magmoms column on the atoms)."""
    import ase.io

    from spinlat.ase import SpinLatticeCalculator
    from spinlat.potentials import Zeeman

    ref = _afm_state()
    write_extxyz(tmp_path / "afm.extxyz", [ref, ref.copy(spins=-ref.spins)])
    frames = ase.io.read(tmp_path / "afm.extxyz", index=":")
    for atoms, spins in zip(frames, (ref.spins, -ref.spins)):
        got = sl.State.from_ase(atoms)
        np.testing.assert_array_equal(got.spins, spins)
        np.testing.assert_array_equal(got.moments, ref.moments)
        np.testing.assert_array_equal(atoms.get_initial_magnetic_moments(), ref.copy(spins=spins).magnetic_moments)
    atoms = frames[0]
    atoms.calc = SpinLatticeCalculator(Zeeman([0, 0, 2.0]))
    expect = -sl.units.MU_B * 2.0 * ref.magnetic_moments[:, 2].sum()  # E = −μB Σ m_i·B
    assert expect != 0 and atoms.get_potential_energy() == pytest.approx(expect, rel=1e-14)
    np.testing.assert_array_equal(atoms.get_magnetic_moments(), ref.magnetic_moments)


def test_trajectory_frames_and_search_results_keep_moments_through_extxyz(tmp_path):
    """Every way a structure leaves spinlat as ase.Atoms keeps the moments."""
    ref = _afm_state()
    with sl.io.TrajectoryWriter(str(tmp_path / "t.h5"), ref) as w:
        w.write(ref, 0, 0.0)
    with sl.io.Trajectory(str(tmp_path / "t.h5")) as t:
        atoms = t.atoms(0)
    write_extxyz(tmp_path / "frame.extxyz", [atoms])
    back = sl.State.from_ase(read_extxyz(tmp_path / "frame.extxyz")[0])
    np.testing.assert_array_equal(back.spins, ref.spins)
    np.testing.assert_array_equal(back.moments, ref.moments)


def test_empty_string_info_does_not_swallow_the_next_key(tmp_path):
    # ASE reads `a= b=3` as a = "b=3": an empty string is left out, the keys after it survive
    atoms = bulk("Fe", "bcc", 2.8665, cubic=True)
    atoms.info.update(a="", blank="  ", b=3, c="x y")
    write_extxyz(tmp_path / "e.extxyz", [atoms])
    back = read_extxyz(tmp_path / "e.extxyz")[0]
    assert "a" not in back.info and "blank" not in back.info
    assert back.info["b"] == 3 and back.info["c"] == "x y"


@pytest.mark.parametrize("where, key", [("info", "with space"), ("info", "x[1]"), ("info", "k=v"),
                                        ("arrays", "with space"), ("arrays", "c_outsp[1]"), ("arrays", "a:b")])
def test_keys_the_header_would_split_or_rename_are_refused(tmp_path, where, key):
    # ASE read 'with space' as two keys (and lost the columns after such an array), 'x[1]' as
    # 'x1', 'k=v' as k = 'v=...'; an array named 'a:b' gave a file it cannot read
    atoms = bulk("Fe", "bcc", 2.8665, cubic=True)
    if where == "info":
        atoms.info[key] = 1.5
    else:
        atoms.arrays[key] = np.array([1.5, 2.5])
    kind = "info key" if where == "info" else "per-atom array"
    with pytest.raises(InputError, match=rf"write_extxyz: {kind} {re.escape(repr(key))} cannot be written to extxyz.*"
                                         r"rename it, e.g. to '"):
        write_extxyz(tmp_path / "k.extxyz", [atoms])
    assert not (tmp_path / "k.extxyz").exists()
    atoms = bulk("Fe", "bcc", 2.8665, cubic=True)
    atoms.info.update({"ok.name": 1.5, "a-b": 2, "REF_energy": -1.0})
    atoms.arrays["c_outsp_1"] = np.array([1.5, 2.5])
    write_extxyz(tmp_path / "k.extxyz", [atoms])
    back = read_extxyz(tmp_path / "k.extxyz")[0]
    assert back.info["ok.name"] == 1.5 and back.info["a-b"] == 2 and back.info["REF_energy"] == -1.0
    assert back.arrays["c_outsp_1"].tolist() == [1.5, 2.5]


def test_none_info_is_left_out_not_read_back_as_true(tmp_path):
    # ASE writes None as a bare key, which it reads back as True (a flag)
    atoms = bulk("Fe", "bcc", 2.8665, cubic=True)
    atoms.info.update(converged=None, flag=True, b=3)
    write_extxyz(tmp_path / "n.extxyz", [atoms])
    back = read_extxyz(tmp_path / "n.extxyz")[0]
    assert "converged" not in back.info
    assert back.info["flag"] is True and back.info["b"] == 3


def test_run_attributes_survive_h5_extxyz_h5_when_the_potential_is_empty(tmp_path):
    # a trajectory converted from a LAMMPS dump has potential "": its integrator and seed were
    # lost (and the potential became "spinlat_integrator=...") on the way through extxyz
    ref = _afm_state()
    with sl.io.TrajectoryWriter(str(tmp_path / "t.h5"), ref, potential="", integrator="LLG(dt=0.1)", seed=7) as w:
        w.write(ref, 0, 0.0)
    sl.io.convert(tmp_path / "t.h5", tmp_path / "t.extxyz")
    sl.io.convert(tmp_path / "t.extxyz", tmp_path / "back.h5")
    with sl.io.Trajectory(str(tmp_path / "back.h5")) as t:
        assert t.attrs["potential"] == "" and t.attrs["integrator"] == "LLG(dt=0.1)" and t.attrs["seed"] == 7
        np.testing.assert_array_equal(t[0].spins, ref.spins)
