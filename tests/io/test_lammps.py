"""spinlat.io.lammps without LAMMPS: the exported script's mapping, errors, and the readers on
files written here (LAMMPS itself runs in test_lammps_peers.py)."""

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import EAM_FE, bcc_fe

import spinlat as sl
from spinlat import units
from spinlat.errors import ExportError, FileFormatError, InputError
from spinlat.integrators import LLG, MonteCarlo, SpinLatticeLangevin, SpinLatticeNVE
from spinlat.potentials import (EAM, BetheSlaterExchange, CubicAnisotropy, Heisenberg, Landau, UniaxialAnisotropy,
                                Zeeman)

EXCHANGE = (3.4, 0.02726, 0.2171, 1.841)


def script(tmp_path, state, pot, integrator=None, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ex = sl.io.write_lammps(tmp_path / "x", state, pot, integrator, **kw)
    return ex, ex.input.read_text()


def test_model_mapping_in_script(tmp_path):
    st = bcc_fe((2, 2, 2))
    pot = (EAM(EAM_FE) + BetheSlaterExchange(*EXCHANGE, offset=True) + Zeeman([0, 0, 2.0])
           + UniaxialAnisotropy(0.002, [0, 0, 3]) + CubicAnisotropy(0.003, -0.001))
    ex, text = script(tmp_path, st, pot)
    assert "pair_style hybrid/overlay eam/fs spin/exchange 3.4" in text
    assert "pair_coeff * * eam/fs Fe_mm.eam.fs Fe" in text
    assert "pair_coeff * * spin/exchange exchange 3.4 0.02726 0.2171 1.841 offset yes" in text
    h = 2.0 * units.MU_B / (2 * units.LAMMPS_MU_B)
    assert f"precession/spin zeeman {h!r} 0.0 0.0 1.0" in text
    assert Zeeman.from_lammps(h, [0, 0, 1]).B == pytest.approx([0, 0, 2.0], rel=1e-15)
    assert "precession/spin anisotropy 0.002 0.0 0.0 1.0" in text
    assert "precession/spin cubic -0.003 0.001 1.0 0.0 0.0 0.0 1.0 0.0 0.0 0.0 1.0" in text
    assert text.count("energy yes") == 3
    assert (tmp_path / "x" / "Fe_mm.eam.fs").read_bytes() == EAM_FE.read_bytes()
    assert "fix spinlat_nve all nve/spin lattice moving" in text and "run 0" in text


def test_potential_copies_of_the_same_name_stay_one_word(tmp_path):
    """Two EAM tables called 'Fe mm.eam.fs' in two folders: the second copy was named from the
    unsanitised stem ('Fe mm.eam_1.fs', a blank that LAMMPS splits the pair_coeff line at). Both
    copies now get one-word names, each holding its own table."""
    import shutil

    names = []
    for k in range(2):
        (tmp_path / f"d{k}").mkdir()
        names.append(tmp_path / f"d{k}" / "Fe mm.eam.fs")
        shutil.copyfile(EAM_FE, names[-1])
    names[1].write_text(names[1].read_text().replace("Mendelev", "Mendelev (copy)", 1))
    ex, text = script(tmp_path, bcc_fe((2, 2, 2)), EAM(names[0]) + EAM(names[1]))
    assert [p.name for p in ex.potential_files] == ["Fe_mm.eam.fs", "Fe_mm_1.eam.fs"]
    assert "pair_coeff * * eam/fs 1 Fe_mm.eam.fs Fe" in text and "pair_coeff * * eam/fs 2 Fe_mm_1.eam.fs Fe" in text
    for src, copy in zip(names, ex.potential_files):
        assert copy.read_bytes() == src.read_bytes()


def test_spin_relaxation_options(tmp_path):
    """minimize={...}: min_style spin/lbfgs with spinlat's tmax as LAMMPS's torque tolerance; what
    LAMMPS's spin minimizers cannot do is refused, named."""
    st = bcc_fe((2, 2, 2))
    pot = BetheSlaterExchange(*EXCHANGE) + Zeeman([0, 0, 1.0])
    ex, text = script(tmp_path, st, pot, minimize={"tmax": 2e-6, "max_steps": 300}, every=5)
    assert "min_style spin/lbfgs\nmin_modify norm max\nminimize 0.0 2e-06 300 3000\n" in text
    assert "nve/spin" not in text and "\nrun " not in text and " time yes " not in text
    assert "thermo_style custom step temp pe" in text
    assert json.loads(ex.metadata.read_text())["minimize"] == {"tmax": 2e-6, "max_steps": 300, "method": "lbfgs"}
    for opts, match in [({"positions": True}, "relax only the spin directions, not positions"),
                        ({"cell": True, "positions": True}, "not positions, cell"),
                        ({"spins": False}, r"not anything else \(spins=False\)"),
                        ({"method": "precession"}, "method 'precession' has no LAMMPS form")]:
        with pytest.raises(ExportError, match=match):
            sl.io.write_lammps(tmp_path / "y", st, pot, minimize=opts)
    for kwargs, match in [(dict(minimize={"tmx": 1e-6}), r"unknown minimize option\(s\) \['tmx'\]"),
                          (dict(minimize={"tmax": -1.0}), "tmax: expected a positive number"),
                          (dict(minimize={"max_steps": 0}), "max_steps must be a positive integer"),
                          (dict(minimize={}, integrator=SpinLatticeNVE(0.1), steps=5), "give no integrator"),
                          (dict(minimize=1e-6), "minimize must be a dict")]:
        with pytest.raises(InputError, match=match):
            sl.io.write_lammps(tmp_path / "y", st, pot, **kwargs)
    assert not (tmp_path / "y").exists()


def test_integrator_mapping(tmp_path):
    st = bcc_fe((2, 2, 2), moment=units.G_GAMMA)
    pot = BetheSlaterExchange(*EXCHANGE)
    _, text = script(tmp_path, st, pot, SpinLatticeLangevin(0.5, 300.0, friction=0.01, damping=0.1,
                                                              spin_temperature=200.0, seed=4), steps=100, every=10,
                     overwrite=True)
    t = 300.0 * units.K_B / units.LAMMPS_BOLTZ_METAL
    ts = 200.0 * units.K_B / units.LAMMPS_BOLTZ_METAL
    assert f"fix spinlat_lattice_bath all langevin {t!r} {t!r} 0.1 " in text  # damp = 1/0.01 fs = 0.1 ps
    assert f"langevin/spin {ts!r} 0.1 " in text
    assert "timestep 0.0005" in text and "run 100" in text and "thermo 10" in text
    lines = text.splitlines()
    assert lines.index(next(l for l in lines if "langevin/spin" in l)) < lines.index(
        "fix spinlat_nve all nve/spin lattice moving")
    # the seed makes the script reproducible
    _, again = script(tmp_path, st, pot, SpinLatticeLangevin(0.5, 300.0, friction=0.01, damping=0.1,
                                                               spin_temperature=200.0, seed=4), steps=100, every=10,
                      overwrite=True)
    assert again == text
    _, text = script(tmp_path, st, pot, LLG(1.0, damping=0.2, temperature=10.0), steps=5, overwrite=True)
    assert "nve/spin lattice frozen" in text and "langevin/spin" in text and "timestep 0.001" in text
    _, text = script(tmp_path, st, pot, SpinLatticeNVE(0.1), steps=5, overwrite=True)
    assert "langevin" not in text and "nve/spin lattice moving" in text


def test_species_types_and_groups(tmp_path):
    st = bcc_fe((2, 2, 2))
    numbers = np.where(np.arange(len(st)) % 2, 28, 26)
    moments = np.where(numbers == 28, 0.6, 2.2)
    moments[0] = 0.0  # one non-magnetic Fe: a type of its own, left out of the spin terms
    st = st.copy(numbers=numbers, moments=moments)
    pot = (BetheSlaterExchange(*EXCHANGE, elements=["Fe"]) + BetheSlaterExchange(3.0, 0.01, 0.3, 1.9)
           + Zeeman([0, 0, 1.0], elements=["Ni"]) + UniaxialAnisotropy({"Ni": 0.001}, [1, 0, 0]))
    ex, text = script(tmp_path, st, pot)
    symbols = {r["type"]: (r["symbol"], r["magnetic"]) for r in ex.types}
    assert sorted(symbols.values()) == [("Fe", False), ("Fe", True), ("Ni", True)]
    fe_mag = next(t for t, v in symbols.items() if v == ("Fe", True))
    ni = next(t for t, v in symbols.items() if v == ("Ni", True))
    fe0 = next(t for t, v in symbols.items() if v == ("Fe", False))
    assert "pair_style hybrid/overlay spin/exchange 3.4 spin/exchange 3.0" in text
    assert f"pair_coeff {fe_mag} {fe_mag} spin/exchange 1 exchange 3.4" in text
    assert f"pair_coeff {fe0} {fe0} none" in text
    assert f"group spinlat_g1 type {ni}" in text
    assert "fix spinlat_zeeman1 spinlat_g1 precession/spin zeeman" in text
    assert "spinlat_g1 precession/spin anisotropy 0.001 1.0 0.0 0.0" in text


@pytest.mark.parametrize("term, name", [
    (lambda st: Heisenberg.from_neighbors(st, J=[0.01]), "Heisenberg"),
    (lambda st: Landau(-0.1, 0.01), "Landau"),
])
def test_terms_lammps_cannot_express(tmp_path, term, name):
    st = bcc_fe((2, 2, 2))
    with pytest.raises(ExportError, match=name):
        sl.io.write_lammps(tmp_path / "x", st, BetheSlaterExchange(*EXCHANGE) + term(st))
    assert not (tmp_path / "x" / "in.spinlat").exists()


def test_bad_arguments(tmp_path):
    st = bcc_fe((2, 2, 2))
    pot = BetheSlaterExchange(*EXCHANGE)
    with pytest.raises(ExportError, match="MonteCarlo"):
        sl.io.write_lammps(tmp_path / "a", st, pot, MonteCarlo(100.0), steps=10)
    with pytest.raises(InputError, match="needs an integrator"):
        sl.io.write_lammps(tmp_path / "b", st, pot, steps=10)
    with pytest.raises(InputError, match="steps"):
        sl.io.write_lammps(tmp_path / "b", st, pot, SpinLatticeNVE(0.1), steps=-1)
    sl.io.write_lammps(tmp_path / "c", st, pot)
    with pytest.raises(InputError, match="overwrite"):
        sl.io.write_lammps(tmp_path / "c", st, pot)
    sl.io.write_lammps(tmp_path / "c", st, pot, overwrite=True)


def test_time_scale_warning(tmp_path):
    pot = BetheSlaterExchange(*EXCHANGE)
    with pytest.warns(UserWarning, match=r"1\.099 times faster"):
        sl.io.write_lammps(tmp_path / "a", bcc_fe((2, 2, 2), moment=2.2), pot, SpinLatticeNVE(0.1), steps=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sl.io.write_lammps(tmp_path / "b", bcc_fe((2, 2, 2), moment=units.G_GAMMA), pot, SpinLatticeNVE(0.1), steps=1)
        sl.io.write_lammps(tmp_path / "c", bcc_fe((2, 2, 2), moment=2.2), pot)  # no dynamics, no note
        # LLG with one moment: LAMMPS's time step is rescaled instead (same spin motion per step)
        ex = sl.io.write_lammps(tmp_path / "d", bcc_fe((2, 2, 2), moment=2.2), pot, LLG(0.5, damping=0.1), steps=4,
                                every=2)
    text = ex.input.read_text()
    dt_ps = float(text.split("\ntimestep ")[1].split()[0])
    assert dt_ps == pytest.approx(0.5e-3 * units.G_GAMMA / 2.2, rel=1e-15) and "timestep = dt·g_γ/|m|" in text
    assert "thermo_style custom step temp" in text and " time yes " not in text  # LAMMPS's time is not spinlat's
    assert json.loads(ex.metadata.read_text())["dt_fs"] == 0.5
    mixed = bcc_fe((2, 2, 2), moment=2.2)
    mixed = mixed.copy(moments=np.where(np.arange(len(mixed)) % 2, 2.2, 1.1))
    with pytest.warns(UserWarning, match=r"0\.5494–1\.099 times faster"):  # several moments: no single scale
        ex = sl.io.write_lammps(tmp_path / "e", mixed, pot, LLG(0.5, damping=0.1), steps=4)
    assert "timestep 0.0005\n" in ex.input.read_text()


def _states():
    st = bcc_fe((3, 3, 3), seed=4)
    rng = np.random.default_rng(1)
    st = st.copy(velocities=rng.normal(0, 0.003, (len(st), 3)))
    from scipy.spatial.transform import Rotation

    r = Rotation.random(random_state=2).as_matrix()
    rot = st.copy(positions=st.positions @ r.T, cell=st.cell @ r.T, spins=st.spins @ r.T,
                  velocities=st.velocities @ r.T)
    m = r @ np.diag([1, 1, -1.0])
    left = st.copy(positions=st.positions @ m.T, cell=st.cell @ m.T, spins=-(st.spins @ m.T),
                   velocities=st.velocities @ m.T)
    cluster = sl.State(st.positions - 3.0, st.numbers, spins=st.spins, moments=st.moments, velocities=st.velocities)
    slab = st.copy(pbc=[True, False, True])
    c = st.cell.copy()
    c[1:] = 0.0  # an open system with a partial cell
    partial = sl.State(st.positions, st.numbers, cell=c, spins=st.spins, moments=st.moments)
    return {"cubic": st, "rotated": rot, "left-handed": left, "cluster": cluster, "slab": slab,
            "open-partial-cell": partial}


@pytest.mark.parametrize("name", list(_states()))
def test_data_file_round_trip(tmp_path, name):
    st = _states()[name]
    pot = BetheSlaterExchange(*EXCHANGE) + Zeeman([0.1, 0.2, 1.0])
    ex, _ = script(tmp_path, st, pot)
    back = sl.io.read_lammps_data(ex.data)
    np.testing.assert_allclose(back.positions, st.positions, rtol=0, atol=1e-12)
    np.testing.assert_allclose(back.spins, st.spins, rtol=0, atol=1e-15)
    np.testing.assert_allclose(back.velocities, st.velocities, rtol=0, atol=1e-17)
    np.testing.assert_allclose(back.cell, st.cell, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(back.pbc, st.pbc)
    np.testing.assert_array_equal(back.numbers, st.numbers)
    np.testing.assert_array_equal(back.moments, st.moments)
    np.testing.assert_array_equal(back.masses, st.masses)
    e0, e1 = pot.compute(st), pot.compute(back)
    assert e1.energy == pytest.approx(e0.energy, abs=1e-12)
    # in the LAMMPS frame (no metadata): the box is lower triangular, energies are the same
    raw = sl.io.read_lammps_data(ex.data, metadata=None, pbc=st.pbc)
    assert raw.cell[0, 1] == raw.cell[0, 2] == raw.cell[1, 2] == 0
    if name == "cubic":
        np.testing.assert_array_equal(raw.positions, st.positions)
    else:
        rotated_pot = BetheSlaterExchange(*EXCHANGE) + Zeeman(
            np.linalg.det(ex.rotation) * (np.array([0.1, 0.2, 1.0]) @ ex.rotation))
        assert rotated_pot.compute(raw).energy == pytest.approx(e0.energy, abs=1e-12)


DUMP = """ITEM: UNITS
metal
ITEM: TIME
0.0015
ITEM: TIMESTEP
15
ITEM: NUMBER OF ATOMS
3
ITEM: BOX BOUNDS xy xz yz pp pp ss
-0.5 10.5 1.0
0.0 8.0 -0.5
0.0 7.0 0.0
ITEM: ATOMS id type x y z ix iy iz vx vy vz c_s[1] c_s[2] c_s[3] c_s[4] c_s[5] c_s[6] c_s[7]
3 2 1.0 2.0 3.0 0 0 0 0 0 0 0 0 1 0 0 0 0
1 1 0.5 0.5 0.5 1 -1 0 1000 0 -2000 1 0 0 2.0 0 3 4
2 1 5.0 5.0 5.0 0 0 0 0 0 0 0.6 0.8 0 1.5 0 0 10
"""


def test_dump_reader(tmp_path):
    p = tmp_path / "d.lammpstrj"
    p.write_text(DUMP + DUMP.replace("TIMESTEP\n15", "TIMESTEP\n16") + DUMP[: DUMP.index("3 2 1.0")] + "3 2 1.0 2.0\n")
    cols = {f"c_s[{k + 1}]": n for k, n in enumerate(["spx", "spy", "spz", "sp", "fmx", "fmy", "fmz"])}
    d = sl.io.read_lammps_dump(p, elements=["Fe", "Ni"], columns=cols)
    assert len(d) == 2  # the truncated third frame is dropped
    np.testing.assert_array_equal(d["step"], [15, 16])
    np.testing.assert_allclose(d["time"], [1.5, 1.5])  # ps → fs
    st = d[0]
    np.testing.assert_array_equal(st.numbers, [26, 26, 28])  # sorted by id
    # box: xlo = -0.5 - min(0, xy, xz, xy+xz) = 0, xhi = 10.5 - max(...) = 9.5; y and z as given (yz = 0)
    np.testing.assert_allclose(st.cell, [[9.5, 0, 0], [1.0, 8.0, 0], [-0.5, 0.0, 7.0]])
    np.testing.assert_array_equal(st.pbc, [True, True, False])
    # unwrapped with the image flags: x + 1·a − 1·b
    np.testing.assert_allclose(st.positions[0], [0.5 + 9.5 - 1.0, 0.5 - 8.0, 0.5])
    np.testing.assert_allclose(st.velocities[0], [1.0, 0, -2.0])  # Å/ps → Å/fs
    np.testing.assert_allclose(st.moments, [2.0, 1.5, 0.0])
    h = d["magnetic_forces"][0]
    hbar = units.LAMMPS_HPLANCK_METAL / (2 * np.pi)
    # h = (ħ/|m|)(fm − (fm·s)s): the part of fm along s is dropped; zero on non-magnetic atoms
    np.testing.assert_allclose(h[0], hbar / 2.0 * np.array([0, 3, 4]), rtol=1e-15)
    np.testing.assert_allclose(h[1], hbar / 1.5 * np.array([0, 0, 10]), rtol=1e-15)
    np.testing.assert_array_equal(h[2], 0.0)
    assert "forces" not in d.names and "potential_energy" not in d.names
    atoms = d.atoms(1)
    assert atoms.info["step"] == 16 and atoms.get_initial_magnetic_moments().shape == (3, 3)


def test_dump_reader_errors(tmp_path):
    p = tmp_path / "d.lammpstrj"
    p.write_text(DUMP)
    with pytest.raises(FileFormatError, match="spx spy spz sp"):
        sl.io.read_lammps_dump(p, elements=["Fe", "Ni"])
    cols = {f"c_s[{k + 1}]": n for k, n in enumerate(["spx", "spy", "spz", "sp", "fmx", "fmy", "fmz"])}
    with pytest.raises(FileFormatError, match="elements="):
        sl.io.read_lammps_dump(p, columns=cols)
    p.write_text(DUMP.replace("metal", "real"))
    with pytest.raises(FileFormatError, match="units 'real'"):
        sl.io.read_lammps_dump(p, elements=["Fe", "Ni"], columns=cols)
    p.write_text("hello\n")
    with pytest.raises(FileFormatError, match="line 1"):
        sl.io.read_lammps_dump(p, elements=["Fe"])


LOG = """LAMMPS (22 Jul 2025)
   Step          Time           Temp          PotEng
         0   0                0             -10.5
WARNING: something (src/x.cpp:1)
        10   0.001            1.5           -10.25
Loop time of 0.1 on 1 procs for 10 steps with 2 atoms
   Step          Time           Temp          PotEng
        10   0.001            1.5           -10.25
        20   0.002            2.5           -10.0
"""


def test_log_reader(tmp_path):
    p = tmp_path / "log.lammps"
    p.write_text(LOG)
    blocks = sl.io.read_lammps_log(p)
    assert len(blocks) == 2
    np.testing.assert_array_equal(blocks[0]["Step"], [0, 10])
    np.testing.assert_array_equal(blocks[0]["PotEng"], [-10.5, -10.25])
    np.testing.assert_array_equal(blocks[1]["Temp"], [1.5, 2.5])


def test_data_reader_elements_and_errors(tmp_path):
    p = tmp_path / "a.data"
    base = """title

2 atoms
2 atom types

0 4 xlo xhi
0 4 ylo yhi
0 4 zlo zhi

Masses

1 55.845
2 58.6934

Atoms # spin

2 2 1 1 1 0 0 1 0.6
1 1 0 0 0 1 0 0 2.2
"""
    p.write_text(base)
    st = sl.io.read_lammps_data(p)  # element from the mass
    np.testing.assert_array_equal(st.numbers, [26, 28])
    np.testing.assert_array_equal(st.moments, [2.2, 0.6])
    p.write_text(base.replace("58.6934", "58.6934 # Co"))  # a comment names the element
    assert list(sl.io.read_lammps_data(p).numbers) == [26, 27]
    assert list(sl.io.read_lammps_data(p, elements={1: "Mn", 2: "Pt"}).numbers) == [25, 78]
    p.write_text(base.replace("58.6934", "57.3"))
    with pytest.raises(FileFormatError, match="atom type 2"):
        sl.io.read_lammps_data(p)
    p.write_text(base.replace("2 atoms", "3 atoms"))
    with pytest.raises(FileFormatError, match="3 atoms"):
        sl.io.read_lammps_data(p)
    p.write_text(base.replace("1 0 0 1 0.6", "1 0 0 x 0.6"))
    with pytest.raises(FileFormatError, match="line 17"):
        sl.io.read_lammps_data(p)


def test_dump_thermo_from_log_is_checked(tmp_path):
    p = tmp_path / "d.lammpstrj"
    p.write_text(DUMP)
    cols = {f"c_s[{k + 1}]": n for k, n in enumerate(["spx", "spy", "spz", "sp", "fmx", "fmy", "fmz"])}
    ke = sl.io.read_lammps_dump(p, elements=["Fe", "Ni"], columns=cols, thermo=None)[0].kinetic_energy()
    log = tmp_path / "log.lammps"
    log.write_text(f"   Step PotEng KinEng\n  15  -3.25  {ke * (1 + 6.3e-8)!r}\nLoop time of 1\n")
    d = sl.io.read_lammps_dump(p, elements=["Fe", "Ni"], columns=cols)  # finds log.lammps beside it
    assert d["potential_energy"][0] == -3.25
    assert d.scalars(0)["total_energy"] == pytest.approx(-3.25 + ke)
    log.write_text("   Step PotEng KinEng\n  15  -3.25  1.0\nLoop time of 1\n")
    with pytest.raises(FileFormatError, match="does not belong"):
        sl.io.read_lammps_dump(p, elements=["Fe", "Ni"], columns=cols)["potential_energy"]
    assert "potential_energy" not in sl.io.read_lammps_dump(p, elements=["Fe", "Ni"], columns=cols,
                                                            thermo=None).names


# A real LAMMPS (22 Jul 2025, SPIN package) log and dump of 16 bcc Fe atoms: four runs of 10 steps of
# 1e-4 ps with thermo styles custom (with Time), multi, yaml, and custom with `thermo_modify norm yes`
# (in.spin beside them); the dump names the spin columns c_outsp[k] of `compute outsp all
# property/atom sp spx spy spz fmx fmy fmz`.
SPIN_STYLES = Path(__file__).parent.parent / "data" / "lammps" / "spin_styles"


def test_log_reader_reads_every_thermo_style_and_the_normalisation():
    blocks = sl.io.read_lammps_log(SPIN_STYLES / "log.lammps")
    assert [b.style for b in blocks] == ["one", "multi", "yaml", "one"]
    assert [b.norm for b in blocks] == [False, False, False, True]
    assert all(b.natoms == 16 and b.units == "metal" and b.timestep == 1e-4 for b in blocks)
    np.testing.assert_array_equal(blocks[0]["Time"], [0, 0.0005, 0.001])
    np.testing.assert_array_equal(blocks[1]["Step"], [10, 15, 20])  # multi: "---- Step 10 ----", Name = value
    np.testing.assert_array_equal(blocks[1]["PotEng"], [-67.7230, -67.7225, -67.7219])
    np.testing.assert_array_equal(blocks[1]["Press"], [-37602.5957, -37610.2961, -37620.9737])
    np.testing.assert_array_equal(blocks[2]["Step"], [20, 25, 30])  # yaml: keywords + data rows
    np.testing.assert_array_equal(blocks[2]["PotEng"], [-67.7218845020252, -67.721042847514, -67.7200179447646])
    # norm yes: per-atom energies as printed; extensive() gives the totals
    np.testing.assert_array_equal(blocks[3]["PotEng"], [-4.2325011, -4.2324258, -4.2323392])
    np.testing.assert_allclose(blocks[3].extensive("PotEng"), 16 * np.array([-4.2325011, -4.2324258, -4.2323392]),
                               rtol=1e-15)
    # the same state (step 30) printed by the yaml run and the normalised run: one energy
    assert blocks[3].extensive("PotEng")[0] == pytest.approx(blocks[2]["PotEng"][2], rel=1e-8)
    assert blocks[0]["PotEng"][2] == pytest.approx(blocks[1]["PotEng"][0], abs=0.5e-4)  # step 10, 4 decimals
    np.testing.assert_array_equal(blocks[0].extensive("PotEng"), blocks[0]["PotEng"])  # not normalised


def test_log_reader_follows_lammps_rules_for_norm_and_headers(tmp_path):
    p = tmp_path / "log.lammps"
    run = "Per MPI rank memory allocation (min/avg/max) = 5.6 | 5.6 | 5.6 Mbytes\n{h}\n{r}\nLoop time of 1 on 1 procs " \
          "for 10 steps with 4 atoms\n"
    p.write_text("units lj\n" + run.format(h="Step PotEng", r="0 -1.5")  # lj: per atom by default
                 + "units metal\nthermo_modify norm yes\n" + run.format(h="Step PotEng", r="0 -1.5")
                 + "thermo_style custom time step pe\n"  # thermo_style restores norm no
                 + run.format(h="   Time   Step   PotEng", r="0.1 100 -6.0")
                 + "Memory usage per processor = 1.2 Mbytes\nWARNING: x (src/y.cpp:1)\n   Time Step PotEng\n 0 5 -7\n")
    blocks = sl.io.read_lammps_log(p)
    assert [b.norm for b in blocks] == [True, True, False, False]
    np.testing.assert_array_equal([b["Step"][0] for b in blocks], [0, 0, 100, 5])  # Step anywhere in the header
    assert blocks[0].extensive("PotEng")[0] == -6.0 and blocks[2].extensive("PotEng")[0] == -6.0
    assert blocks[3].natoms is None  # cut short: complete rows kept
    blocks[3].norm = True
    with pytest.raises(FileFormatError, match="per atom .* atom count is unknown"):
        blocks[3].extensive("PotEng")


def test_dump_energies_and_times_from_a_log_of_every_style():
    d = sl.io.read_lammps_dump(SPIN_STYLES / "dump.lammpstrj", elements=["Fe"])
    np.testing.assert_array_equal(d["step"], np.arange(0, 45, 5))
    # Time column (steps 0-10), then step × the log's timestep 1e-4 ps; ps → fs
    np.testing.assert_allclose(d["time"], np.arange(0, 45, 5) * 0.1, rtol=1e-12, atol=1e-15)
    pe = d["potential_energy"]
    blocks = sl.io.read_lammps_log(SPIN_STYLES / "log.lammps")
    np.testing.assert_array_equal(pe[:3], blocks[0]["PotEng"])          # first line of a repeated step
    np.testing.assert_array_equal(pe[3:5], blocks[1]["PotEng"][1:])     # multi
    np.testing.assert_array_equal(pe[5:7], blocks[2]["PotEng"][1:])     # yaml
    np.testing.assert_allclose(pe[7:], 16 * blocks[3]["PotEng"][1:], rtol=1e-15)  # norm yes → extensive
    assert np.ptp(d["total_energy"]) < 1e-4  # NVE: conserved across the four runs (none is per atom)


def _spin_dump_copy(tmp_path, with_log=True, n_frames=None, drop_atom_in=None):
    """The spin_styles dump (first ``n_frames``; one atom fewer in frame ``drop_atom_in``) in
    tmp_path, with its log.lammps beside it when ``with_log``."""
    import shutil

    frames = ["ITEM: TIMESTEP" + f for f in (SPIN_STYLES / "dump.lammpstrj").read_text().split("ITEM: TIMESTEP")[1:]]
    frames = frames[:n_frames]
    if drop_atom_in is not None:
        lines = frames[drop_atom_in].splitlines()
        lines[lines.index("16")] = "15"
        frames[drop_atom_in] = "\n".join(lines[:-1]) + "\n"
    (tmp_path / "dump.lammpstrj").write_text("".join(frames))
    if with_log:
        shutil.copy(SPIN_STYLES / "log.lammps", tmp_path / "log.lammps")
    return tmp_path / "dump.lammpstrj"


def test_dump_spin_columns_and_elements_from_the_log_beside_it(tmp_path):
    p = _spin_dump_copy(tmp_path)
    d = sl.io.read_lammps_dump(p)  # compute outsp all property/atom sp spx spy spz fmx fmy fmz; mass 1 55.845
    st = d[0]
    np.testing.assert_array_equal(st.numbers, 26)
    np.testing.assert_array_equal(st.moments, 2.2)
    np.testing.assert_array_equal(st.spins, np.tile([0, 0, 1.0], (16, 1)))
    # c_outsp[7] = fmz = 338.167 rad/ps along s: no transverse part, h = 0
    np.testing.assert_array_equal(d["magnetic_forces"][0], 0.0)
    # explicit renames win over the log's (here: a deliberately wrong one)
    swapped = sl.io.read_lammps_dump(p, columns={"c_outsp[1]": "spx", "c_outsp[2]": "sp"})
    np.testing.assert_array_equal(swapped[0].moments, 0.0)
    np.testing.assert_allclose(swapped[0].spins[:, 0], 2.2 / np.hypot(2.2, 1.0), rtol=1e-15)  # (sp, 0, spz)
    with pytest.raises(FileFormatError, match="column spx appears twice"):
        sl.io.read_lammps_dump(p, columns={"c_outsp[1]": "spx", "c_outsp[2]": "spx"})
    with pytest.raises(FileFormatError, match="spx spy spz sp"):
        sl.io.read_lammps_dump(p, thermo=None)  # no log: nothing names the c_outsp columns
    p = _spin_dump_copy(tmp_path / "alone", with_log=False) if (tmp_path / "alone").mkdir() is None else None
    cols = {"c_outsp[1]": "sp", "c_outsp[2]": "spx", "c_outsp[3]": "spy", "c_outsp[4]": "spz"}
    with pytest.raises(FileFormatError, match="no element column, and neither export metadata nor a log.lammps"):
        sl.io.read_lammps_dump(p, columns=cols)
    log = (SPIN_STYLES / "log.lammps").read_text()
    (tmp_path / "alone" / "log.lammps").write_text(log.replace("mass 1 55.845", "mass 1 1.0")
                                                   .replace("Fe_mm.eam.fs Fe", "Fe_mm.eam.fs Ni"))
    assert sl.io.read_lammps_dump(p)[0].numbers[0] == 28  # pair_coeff * * eam/fs FILE Ni
    (tmp_path / "alone" / "log.lammps").write_text(log.replace("units metal", "units real"))
    with pytest.raises(FileFormatError, match="units 'real'"):
        sl.io.read_lammps_dump(p)


def test_dump_with_a_changing_atom_count_names_the_frame(tmp_path):
    p = _spin_dump_copy(tmp_path, n_frames=3, drop_atom_in=2)
    d = sl.io.read_lammps_dump(p)
    assert len(d[2]) == 15 and len(d[0]) == 16  # frames one by one
    np.testing.assert_array_equal(d["step"], [0, 5, 10])
    with pytest.raises(FileFormatError, match=r"frame 2 \(step 10, line 59\) holds 15 atoms, frame 0 \(step 0\) "
                                              "holds 16"):
        d["positions"]
    assert d.check_atom_count([0, 1]) == 16
    with pytest.raises(FileFormatError, match="frame 2 .* holds 15 atoms"):
        sl.io.convert(p, tmp_path / "t.h5")
    assert not (tmp_path / "t.h5").exists()
    assert sl.io.convert(p, tmp_path / "t.h5", frames=":2") == 2


def test_dump_with_a_log_of_lammps_default_thermo_style_converts_without_energies(tmp_path):
    # `thermo N` alone prints LAMMPS's default style one: Step Temp E_pair E_mol TotEng Press,
    # without PotEng (E_pair leaves out the fixes' energies): no potential energy, not a KeyError
    (tmp_path / "d.lammpstrj").write_text(DUMP + DUMP.replace("TIMESTEP\n15", "TIMESTEP\n16"))
    (tmp_path / "log.lammps").write_text(
        "units metal\n   Step          Temp          E_pair         E_mol          TotEng         Press\n"
        "        15   300           -0.22891825     0              57.938147      146764.03\n"
        "        16   301           -0.23027333     0              57.939341      146793.1\n"
        "Loop time of 0.1 on 1 procs for 1 steps with 3 atoms\n")
    cols = {f"c_s[{k + 1}]": n for k, n in enumerate(["spx", "spy", "spz", "sp", "fmx", "fmy", "fmz"])}
    d = sl.io.read_lammps_dump(tmp_path / "d.lammpstrj", elements=["Fe", "Ni"], columns=cols)
    assert "potential_energy" not in d.names and "potential_energy" not in d.scalars(0)
    assert d.scalars(1)["step"] == 16 and "energy" not in d.atoms(1).info
    assert d.atoms(1).calc is None
    assert sl.io.convert(tmp_path / "d.lammpstrj", tmp_path / "t.h5", elements=["Fe", "Ni"], columns=cols) == 2
    with sl.io.Trajectory(tmp_path / "t.h5") as t:
        assert np.isnan(t["potential_energy"]).all()
        np.testing.assert_allclose(t[1].moments, [2.0, 1.5, 0.0])


def test_dump_whose_columns_change_between_frames_names_the_frame(tmp_path):
    # a dump appended to by a later run that dumped other columns (no spin columns in frame 2)
    second = DUMP.replace("TIMESTEP\n15", "TIMESTEP\n16")
    head, rows = second.split("ITEM: ATOMS")
    rows = rows.splitlines()
    second = head + "ITEM: ATOMS id type x y z\n" + "".join(" ".join(r.split()[:5]) + "\n" for r in rows[1:])
    p = tmp_path / "d.lammpstrj"
    p.write_text(DUMP + second)
    cols = {f"c_s[{k + 1}]": n for k, n in enumerate(["spx", "spy", "spz", "sp", "fmx", "fmy", "fmz"])}
    with pytest.raises(FileFormatError, match=r"line 29: the dump \(frame at step 16\) lacks spx spy spz sp"):
        sl.io.read_lammps_dump(p, elements=["Fe", "Ni"], columns=cols)
    # columns in another order in a later frame are read by name
    rows = DUMP.split("ITEM: ATOMS")[1].splitlines()
    names = rows[0].split()
    perm = [7, 0, 4, 3, 2, 1, 5, 6, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17]
    body = "".join(" ".join(r.split()[k] for k in perm) + "\n" for r in rows[1:])
    third = DUMP.split("ITEM: ATOMS")[0].replace("TIMESTEP\n15", "TIMESTEP\n17") + "ITEM: ATOMS " + " ".join(
        names[k] for k in perm) + "\n" + body
    p.write_text(DUMP + third)
    d = sl.io.read_lammps_dump(p, elements=["Fe", "Ni"], columns=cols)
    for name in ("positions", "spins", "moments", "velocities", "magnetic_forces"):
        np.testing.assert_array_equal(d[name][1], d[name][0])


def test_data_file_of_other_units_is_refused(tmp_path):
    # write_data names the units in its title; a units real file (velocities Å/fs, masses g/mol)
    # was read as metal: velocities 1000 times too small, 300 K became 3e-4 K
    body = """
2 atoms
1 atom types

0 4 xlo xhi
0 4 ylo yhi
0 4 zlo zhi

Masses

1 55.845

Atoms # spin

1 1 0 0 0 1 0 0 2.2 0 0 0
2 1 2 2 2 0 1 0 2.2 0 0 0

Velocities

1 0.5 0 0
2 0 0 -0.5
"""
    p = tmp_path / "a.data"
    p.write_text("LAMMPS data file via write_data, version 22 Jul 2025, timestep = 0, units = metal\n" + body)
    np.testing.assert_array_equal(sl.io.read_lammps_data(p).velocities[:, 0], [5e-4, 0])  # Å/ps → Å/fs
    p.write_text("LAMMPS data file via write_data, version 22 Jul 2025, timestep = 0, units = real\n" + body)
    with pytest.raises(FileFormatError, match=r"a.data: line 1: units 'real' .* only LAMMPS units metal"):
        sl.io.read_lammps_data(p)
    from spinlat import config as C
    from spinlat.errors import ConfigError

    with pytest.raises(ConfigError, match=r"structure.file: cannot read LAMMPS data file .*units 'real'"):
        C.read_structure(p)


def test_data_file_with_type_labels_in_its_atoms_section(tmp_path):
    # `labelmap atom 1 Fe 2 Ni` + `write_data FILE types labels` (LAMMPS 2023+): the Atoms and
    # Masses sections name the types by their labels
    numeric = """LAMMPS data file via write_data, version 22 Jul 2025, timestep = 0, units = metal

3 atoms
2 atom types

0 4 xlo xhi
0 4 ylo yhi
0 4 zlo zhi

Atom Type Labels

1 Fe
2 Ni

Masses

1 55.845
2 58.6934

Atoms # spin

3 1 1 1 1 0 0 1 2.2 0 0 0
1 2 0 0 0 1 0 0 0.6 0 0 0
2 1 2 2 2 0 1 0 2.2 1 0 0
"""
    labelled = numeric.replace("\n1 55.845", "\nFe 55.845").replace("\n2 58.6934", "\nNi 58.6934")
    for k in (1, 2, 3):
        labelled = labelled.replace(f"\n{k} 1 ", f"\n{k} Fe ").replace(f"\n{k} 2 ", f"\n{k} Ni ")
    assert "1 Ni 0 0 0" in labelled and "Fe 55.845" in labelled
    (tmp_path / "n.data").write_text(numeric)
    (tmp_path / "l.data").write_text(labelled)
    a, b = sl.io.read_lammps_data(tmp_path / "n.data"), sl.io.read_lammps_data(tmp_path / "l.data")
    np.testing.assert_array_equal(b.numbers, [28, 26, 26])
    for name in ("positions", "numbers", "masses", "spins", "moments", "cell"):
        np.testing.assert_array_equal(getattr(b, name), getattr(a, name))
    np.testing.assert_array_equal(b.positions[1], [6.0, 2.0, 2.0])  # image flag 1 along x
    (tmp_path / "l.data").write_text(labelled.replace("2 Fe 2 2 2", "2 Co 2 2 2"))
    with pytest.raises(FileFormatError, match=r"l.data: line 24: atom type 'Co' is neither a number nor a label .*Fe, Ni"):
        sl.io.read_lammps_data(tmp_path / "l.data")


def _dump_with_symbols(column):
    """(DUMP with named spin columns, the same dump whose type column is ``column`` holding Fe / Ni)."""
    numeric = DUMP.replace("c_s[1] c_s[2] c_s[3] c_s[4] c_s[5] c_s[6] c_s[7]", "spx spy spz sp fmx fmy fmz")
    rows = numeric.split("ITEM: ATOMS id type ")
    body = rows[1].splitlines()
    return numeric, rows[0] + f"ITEM: ATOMS id {column} " + body[0] + "\n" + "".join(
        " ".join([r.split()[0], {"1": "Fe", "2": "Ni"}[r.split()[1]]] + r.split()[2:]) + "\n" for r in body[1:])


def test_dump_with_a_typelabel_column(tmp_path):
    # `dump custom ... id typelabel x y z ...` (LAMMPS type labels, `labelmap atom 1 Fe 2 Ni`)
    numeric, labelled = _dump_with_symbols("typelabel")
    (tmp_path / "n.dump").write_text(numeric)
    (tmp_path / "l.dump").write_text(labelled)
    a = sl.io.read_lammps_dump(tmp_path / "n.dump", elements=["Fe", "Ni"])[0]
    b = sl.io.read_lammps_dump(tmp_path / "l.dump")[0]  # the labels are element symbols
    for name in ("positions", "numbers", "masses", "spins", "moments", "velocities", "cell"):
        np.testing.assert_array_equal(getattr(b, name), getattr(a, name))
    (tmp_path / "l.dump").write_text(labelled.replace(" Ni ", " B2 "))
    with pytest.raises(InputError, match="typelabel column .*'B2' is not a chemical element"):
        sl.io.read_lammps_dump(tmp_path / "l.dump")[0]
    # with the log's labelmap the labels give the types, and elements= names them
    (tmp_path / "log.lammps").write_text("units metal\nlabelmap atom 1 A1 2 B2\n")
    (tmp_path / "l.dump").write_text(labelled.replace(" Ni ", " B2 ").replace(" Fe ", " A1 "))
    c = sl.io.read_lammps_dump(tmp_path / "l.dump", elements=["Fe", "Ni"])[0]
    np.testing.assert_array_equal(c.numbers, a.numbers)


def test_dump_with_an_element_column_and_no_type(tmp_path):
    # `dump custom ... id element xs ys zs ...` + `dump_modify element Fe Ni` (as for OVITO): the
    # element column names the atoms, and the dump was refused for lacking 'type'
    numeric, named = _dump_with_symbols("element")
    (tmp_path / "n.dump").write_text(numeric)
    (tmp_path / "e.dump").write_text(named)
    a = sl.io.read_lammps_dump(tmp_path / "n.dump", elements=["Fe", "Ni"])
    b = sl.io.read_lammps_dump(tmp_path / "e.dump")
    for name in ("positions", "numbers", "masses", "spins", "moments", "velocities", "cell"):
        np.testing.assert_array_equal(getattr(b[0], name), getattr(a[0], name))
    np.testing.assert_array_equal(b["magnetic_forces"], a["magnetic_forces"])
    np.testing.assert_array_equal(b[0].numbers, [26, 26, 28])
    # elements= maps atom types, which this dump does not have
    with pytest.raises(FileFormatError, match="e.dump: line 13: elements= names the element of each atom type, but "
                                              "the dump has no type column"):
        sl.io.read_lammps_dump(tmp_path / "e.dump", elements=["Fe", "Ni"])
    assert sl.io.convert(tmp_path / "e.dump", tmp_path / "e.h5") == 1
    with sl.io.Trajectory(tmp_path / "e.h5") as t:
        np.testing.assert_array_equal(t["spins"][0], a[0].spins)


@pytest.mark.parametrize("module, suffix", [("gzip", ".gz"), ("bz2", ".bz2"), ("lzma", ".xz")])
def test_compressed_dumps_and_data_files_keep_their_spins(tmp_path, module, suffix):
    # `dump ... dump.lammpstrj.gz`: ASE decompresses it and reads it without spins or moments,
    # so such files were read as non-magnetic; spinlat's readers now read them
    import importlib

    from spinlat import config as C

    compress = importlib.import_module(module).compress
    cols = {f"c_s[{k + 1}]": n for k, n in enumerate(["spx", "spy", "spz", "sp", "fmx", "fmy", "fmz"])}
    text = DUMP + DUMP.replace("TIMESTEP\n15", "TIMESTEP\n16")
    (tmp_path / "d.lammpstrj").write_text(text)
    (tmp_path / f"d.lammpstrj{suffix}").write_bytes(compress(text.encode()))
    plain = sl.io.read_lammps_dump(tmp_path / "d.lammpstrj", elements=["Fe", "Ni"], columns=cols)
    packed = sl.io.read_lammps_dump(tmp_path / f"d.lammpstrj{suffix}", elements=["Fe", "Ni"], columns=cols)
    assert len(packed) == 2
    for name in ("step", "time", "positions", "spins", "moments", "velocities", "magnetic_forces", "cell"):
        np.testing.assert_array_equal(packed[name], plain[name])
    for i in (1, 0, 1):  # one handle read forward, reopened to go back
        np.testing.assert_array_equal(packed[i].spins, plain[i].spins)
    st = C.read_structure(tmp_path / f"d.lammpstrj{suffix}", index=0, elements=["Fe", "Ni"], columns=cols)
    np.testing.assert_array_equal(st.moments, [2.0, 1.5, 0.0])
    data = tmp_path / "a.data"
    sl.io.write_lammps(tmp_path / "export", bcc_fe(2), EAM(EAM_FE))
    raw = (tmp_path / "export" / "data.spinlat").read_bytes()
    data.write_bytes(compress(raw))
    ref = sl.io.read_lammps_data(tmp_path / "export" / "data.spinlat", metadata=None)
    back = C.read_structure(data, elements=["Fe"])
    for name in ("positions", "spins", "moments", "velocities", "cell", "numbers"):
        np.testing.assert_array_equal(getattr(back, name), getattr(ref, name))


def test_dump_mass_column_gives_the_masses(tmp_path):
    # `dump custom ... id type mass ...` of a run with non-standard masses (`mass 1 50.0`), read
    # without its log: the dumped masses, not the elements' standard ones
    text = DUMP.replace("ITEM: ATOMS id type ", "ITEM: ATOMS id type mass ")
    rows = text.split("ITEM: ATOMS")[1].splitlines()[1:]
    for r in rows:
        t = r.split()
        text = text.replace(r, " ".join(t[:2] + [{"1": "50.0", "2": "2.5e1"}[t[1]]] + t[2:]))
    (tmp_path / "d.lammpstrj").write_text(text)
    cols = {f"c_s[{k + 1}]": n for k, n in enumerate(["spx", "spy", "spz", "sp", "fmx", "fmy", "fmz"])}
    d = sl.io.read_lammps_dump(tmp_path / "d.lammpstrj", elements=["Fe", "Ni"], columns=cols)
    np.testing.assert_array_equal(d[0].masses, [50.0, 50.0, 25.0])  # sorted by id: Fe Fe Ni
    np.testing.assert_array_equal(d[0].numbers, [26, 26, 28])
    # the kinetic energy uses them: ½ m v² with v = (1, 0, −2) Å/fs for atom 1 (the others at rest)
    assert d[0].kinetic_energy() == pytest.approx(0.5 * 50.0 * 5.0 * units.AMU_A2_PER_FS2_IN_EV, rel=1e-14)


def test_summary_of_a_dump_without_potential_energies(tmp_path):
    # sl.analysis.summary(dump) raised KeyError 'total_energy' for a dump without a log, or with
    # a log of LAMMPS's default thermo style (no PotEng): the energies are missing, as for a
    # trajectory converted from a file without them
    p = _spin_dump_copy(tmp_path, with_log=False, n_frames=4)
    cols = {"c_outsp[1]": "sp", "c_outsp[2]": "spx", "c_outsp[3]": "spy", "c_outsp[4]": "spz"}
    d = sl.io.read_lammps_dump(p, elements=["Fe"], columns=cols)
    assert "potential_energy" not in d.names
    assert np.isnan(d["potential_energy"]).all() and np.isnan(d["total_energy"]).all()
    s = sl.analysis.summary(d)
    assert s["frames"] == 4 and "potential_energy" in s["missing"] and "total_energy" in s["missing"]
    assert s["temperature_mean_K"] == pytest.approx(np.mean(d["temperature"]), rel=1e-12)
    # a log printing PotEng at some dump steps only: NaN at the others
    (tmp_path / "log.lammps").write_text("units metal\n   Step          PotEng\n         5   -67.5\n"
                                         "Loop time of 0.1 on 1 procs for 5 steps with 16 atoms\n")
    d = sl.io.read_lammps_dump(p, elements=["Fe"], columns=cols)
    np.testing.assert_array_equal(d["potential_energy"], [np.nan, -67.5, np.nan, np.nan])
    assert sl.analysis.summary(d)["potential_energy_mean_eV_per_atom"] == -67.5 / 16


def test_another_runs_log_beside_a_data_file_or_dump_is_not_used(tmp_path):
    """Several LAMMPS runs in one directory leave the last run's log.lammps beside every file: the
    data file of a bulk run (boundary p p p) beside the log of a film run (boundary p p f) was read
    with z non-periodic, and a dump without velocities (nothing to check the log's KinEng against)
    took the potential energies of another run at the steps the two share. A log is used only
    when its read_data / write_data (dump / write_dump) commands name the file, or when it
    echoes no such command (nothing can be said)."""
    st = bcc_fe(2)
    sl.io.write_lammps_data(tmp_path / "bulk.data", st)
    log = tmp_path / "log.lammps"
    log.write_text("units metal\nboundary p p f\ncreate_box 1 box\nrun 0\nwrite_data film.data\n")
    with pytest.warns(UserWarning, match=r"log.lammps beside .*bulk.data is another run's log: none of its "
                                         r"read_data or write_data commands names bulk.data"):
        assert sl.io.read_lammps_data(tmp_path / "bulk.data").pbc.tolist() == [True, True, True]
    assert sl.io.lammps_read.log_names_file(log, tmp_path / "film.data", "data") is True
    for own in ("write_data bulk.data", "read_data ./bulk.data", "write_data b${x}.data", "write_data bulk.*"):
        log.write_text(f"units metal\nboundary p p f\ncreate_box 1 box\nrun 0\n{own}  # the run's file\n")
        assert sl.io.read_lammps_data(tmp_path / "bulk.data").pbc.tolist() == [True, True, False], own
    log.write_text("units metal\nboundary p p f\n")   # no file command echoed: cannot tell, used
    assert sl.io.read_lammps_data(tmp_path / "bulk.data").pbc.tolist() == [True, True, False]
    # a dump without velocities beside the log of a run that dumped another file
    p = _spin_dump_copy(tmp_path, with_log=False, n_frames=4)
    cols = {"c_outsp[1]": "sp", "c_outsp[2]": "spx", "c_outsp[3]": "spy", "c_outsp[4]": "spz"}
    thermo = ("   Step          PotEng\n         5   -67.5\n"
              "Loop time of 0.1 on 1 procs for 5 steps with 16 atoms\n")
    log.write_text("units metal\ndump 1 all custom 5 other.lammpstrj id type x y z\n" + thermo)
    with pytest.warns(UserWarning, match=rf"another run's log: none of its dump or write_dump commands names {p.name}"):
        d = sl.io.read_lammps_dump(p, elements=["Fe"], columns=cols)
    assert np.isnan(d["potential_energy"]).all()
    log.write_text(f"units metal\ndump 1 all custom 5 {p.name.split('.')[0]}.*.lammpstrj id type x y z\n"
                   f"write_dump all custom {p.name} id type x y z\n" + thermo)
    d = sl.io.read_lammps_dump(p, elements=["Fe"], columns=cols)
    np.testing.assert_array_equal(d["potential_energy"], [np.nan, -67.5, np.nan, np.nan])
    log.write_text(f"units metal\ndump 1 all custom 5 other.lammpstrj id type x y z\nrerun {p.name} dump x y z\n"
                   + thermo)   # a rerun over the dump's frames: its thermo is theirs
    d = sl.io.read_lammps_dump(p, elements=["Fe"], columns=cols)
    np.testing.assert_array_equal(d["potential_energy"], [np.nan, -67.5, np.nan, np.nan])


def test_data_file_cut_or_doubled_in_its_velocities_or_atoms_is_refused(tmp_path):
    # a file cut inside its Velocities section gave the missing atoms velocity 0 silently
    sl.io.write_lammps(tmp_path / "x", bcc_fe(2).copy(velocities=np.full((16, 3), 0.01)), EAM(EAM_FE))
    text = (tmp_path / "x" / "data.spinlat").read_text().rstrip("\n").splitlines()
    p = tmp_path / "a.data"
    p.write_text("\n".join(text) + "\n")
    np.testing.assert_allclose(sl.io.read_lammps_data(p, metadata=None).velocities, 0.01, rtol=1e-14)
    p.write_text("\n".join(text[:-2]) + "\n")
    with pytest.raises(FileFormatError, match=r"Velocities section \(line \d+\) holds 14 lines for 16 atoms"):
        sl.io.read_lammps_data(p, metadata=None)
    vel = text.index("Velocities")
    doubled = text[:-1] + [text[-1].replace(text[-1].split()[0], text[vel + 2].split()[0], 1)]
    p.write_text("\n".join(doubled) + "\n")
    with pytest.raises(FileFormatError, match=rf"line {len(text)}: a second Velocities line for atom"):
        sl.io.read_lammps_data(p, metadata=None)
    first = next(k for k, line in enumerate(text) if line.startswith("Atoms")) + 2
    doubled = list(text)
    doubled[first + 1] = doubled[first + 1].replace(doubled[first + 1].split()[0], doubled[first].split()[0], 1)
    p.write_text("\n".join(doubled) + "\n")
    with pytest.raises(FileFormatError, match=r"Atoms section \(line \d+\) holds atom id 1 twice"):
        sl.io.read_lammps_data(p, metadata=None)


def test_dump_of_a_2d_run_has_no_periodic_images_along_z(tmp_path):
    # `dimension 2`, `lattice sq 2.5`, 4×4 cells, box z −1.25..1.25 (boundary p p p, as LAMMPS
    # requires): LAMMPS's PotEng with spin/exchange 3.4 0.02726 0.2171 1.841 is −0.61031055 eV.
    # Read with a periodic z, the 2.5 Å thick box put images in range (−0.915 eV)
    rows = [f"{k + 1} 1 {2.5 * (k % 4)} {2.5 * (k // 4)} 0 2.2 0 0 1" for k in range(16)]
    dump = ("ITEM: TIMESTEP\n0\nITEM: NUMBER OF ATOMS\n16\nITEM: BOX BOUNDS pp pp pp\n0 10\n0 10\n-1.25 1.25\n"
            "ITEM: ATOMS id type x y z c_s[1] c_s[2] c_s[3] c_s[4]\n" + "\n".join(rows) + "\n")
    (tmp_path / "sq.dump").write_text(dump)
    log = ("units metal\ndimension 2\nboundary p p p\nmass 1 55.845\ncompute s all property/atom sp spx spy spz\n"
           "   Step         PotEng    \n         0  -0.61031055   \n"
           "Loop time of 1e-06 on 1 procs for 0 steps with 16 atoms\n")
    (tmp_path / "log.lammps").write_text(log)
    d = sl.io.read_lammps_dump(tmp_path / "sq.dump")
    st = d[0]
    np.testing.assert_array_equal(st.pbc, [True, True, False])
    e = BetheSlaterExchange(3.4, 0.02726, 0.2171, 1.841).compute(st).energy
    assert e == pytest.approx(d["potential_energy"][0], abs=1e-8)
    # the data file written by that run (`write_data sq.data`), with its log beside it
    data = ["LAMMPS data file via write_data, version 22 Jul 2025, timestep = 0, units = metal", "", "16 atoms",
            "1 atom types", "", "0 10 xlo xhi", "0 10 ylo yhi", "-1.25 1.25 zlo zhi", "", "Masses", "", "1 55.845", "",
            "Atoms # spin", ""] + [r.split(" ", 2)[0] + " 1 " + " ".join(r.split()[2:5]) + " 0 0 1 2.2 0 0 0"
                                   for r in rows]
    (tmp_path / "sq.data").write_text("\n".join(data) + "\n")
    st = sl.io.read_lammps_data(tmp_path / "sq.data")
    np.testing.assert_array_equal(st.pbc, [True, True, False])
    assert BetheSlaterExchange(3.4, 0.02726, 0.2171, 1.841).compute(st).energy == pytest.approx(-0.61031055, abs=1e-8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the log decides: nothing to warn about
        (tmp_path / "log.lammps").write_text(log.replace("dimension 2\n", ""))  # a 3D run: z periodic
        np.testing.assert_array_equal(sl.io.read_lammps_dump(tmp_path / "sq.dump")[0].pbc, [True, True, True])
        np.testing.assert_array_equal(sl.io.read_lammps_data(tmp_path / "sq.data").pbc, [True, True, True])
    # without the log nothing says the run was 2D: read periodic in z (the 3D stack LAMMPS would
    # build from the file), with a warning naming the layer spacing and the remedy
    (tmp_path / "log.lammps").unlink()
    with pytest.warns(UserWarning, match=r"sq.data: every atom lies at z = 0 in a z box \[-1.25, 1.25\].*layers 2.5 Å "
                                         r"apart; for a 2D system pass pbc=\(True, True, False\)"):
        st = sl.io.read_lammps_data(tmp_path / "sq.data")
    np.testing.assert_array_equal(st.pbc, [True, True, True])
    with pytest.warns(UserWarning, match=r"sq.dump: every atom lies at z = 0.*log.lammps beside the dump"):
        renames = {f"c_s[{k + 1}]": c for k, c in enumerate(("sp", "spx", "spy", "spz"))}
        dump = sl.io.read_lammps_dump(tmp_path / "sq.dump", elements=["Fe"], columns=renames)
        assert dump[0].pbc.tolist() == [True, True, True]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert sl.io.read_lammps_data(tmp_path / "sq.data", pbc=(True, True, False)).pbc.tolist() == [True, True, False]
        lifted = "\n".join(data).replace(" 0 0 0 1 2.2", " 0.1 0 0 1 2.2", 1)   # not all at z = 0: a 3D file
        (tmp_path / "lifted.data").write_text(lifted + "\n")
        sl.io.read_lammps_data(tmp_path / "lifted.data")


def test_data_file_of_a_shrink_wrapped_film_is_not_read_as_bulk(tmp_path):
    """A film's final.data from LAMMPS (boundary p p s): the box ends 1e-4 of its extent beyond the
    outermost atoms on both sides of z (write_data's shrink-wrap), and the reader took it periodic:
    the two surfaces 1.9e-3 Å apart, joined as bulk (bcc Fe slab: −109.6 eV instead of −204.9 eV).
    Now the log's ``boundary`` decides; without a log the shrink-wrapped box is refused, naming
    the direction and the pbc to pass."""
    from spinlat.io import lammps_read

    z = np.array([-0.12149356032608143, 1.3, 2.8, 4.3, 5.7, 7.231861065374486])
    margin = float(1e-4 * (z[-1] - z[0] + 2e-3))
    lo, hi = float(z[0] - margin), float(z[-1] + margin)
    atoms = [f"{k + 1} 1 {1.43 * (k % 2)!r} {1.43 * (k % 2)!r} {zk!r} 0 0 1 2.2 0 0 0" for k, zk in enumerate(z.tolist())]
    data = ["LAMMPS data file via write_data, version 22 Jul 2025, timestep = 10, units = metal", "", "6 atoms",
            "1 atom types", "", "0 2.866 xlo xhi", "0 2.866 ylo yhi", f"{lo!r} {hi!r} zlo zhi", "", "Masses", "",
            "1 55.845", "", "Atoms # spin", "", *atoms]
    (tmp_path / "final.data").write_text("\n".join(data) + "\n")
    with pytest.raises(FileFormatError, match=r"final.data: the box ends 0.0001 of its length beyond the outermost "
                                              r"atoms on both sides along z.*pass pbc=\(True, True, False\)"):
        sl.io.read_lammps_data(tmp_path / "final.data")
    assert sl.io.read_lammps_data(tmp_path / "final.data", pbc=(True, True, False)).pbc.tolist() == [True, True, False]
    (tmp_path / "log.lammps").write_text("LAMMPS (22 Jul 2025)\nunits metal\nboundary p fs s  # a film\n"
                                         "read_data data.spinlat\nrun 10\nwrite_data final.data\n")
    assert sl.io.read_lammps_data(tmp_path / "final.data").pbc.tolist() == [True, False, False]
    assert lammps_read.log_periodicity(tmp_path / "log.lammps") == [True, False, False]
    (tmp_path / "log.lammps").write_text("units metal\ndimension 2\nboundary p s p\nrun 0\nboundary s s s\n")
    assert lammps_read.log_periodicity(tmp_path / "log.lammps") == [True, False, False]
    (tmp_path / "log.lammps").write_text("boundary p p s\nread_data f.data\nchange_box all boundary p p p\nrun 0\n")
    assert lammps_read.log_periodicity(tmp_path / "log.lammps") == [True, True, True]  # made periodic before the run
    (tmp_path / "log.lammps").write_text("units metal\nrun 0\n")
    assert lammps_read.log_periodicity(tmp_path / "log.lammps") is None
    assert sl.io.read_lammps_data(tmp_path / "final.data").pbc.tolist() == [True, True, True]  # a log: it was 3D
    # a periodic box whose atoms sit on its faces is not taken for a shrink-wrapped one
    (tmp_path / "log.lammps").unlink()
    data[7] = f"{z[0]!r} {z[-1] + 1.43!r} zlo zhi".replace("np.float64(", "").replace(")", "")
    (tmp_path / "bulk.data").write_text("\n".join(data) + "\n")
    assert sl.io.read_lammps_data(tmp_path / "bulk.data").pbc.tolist() == [True, True, True]


def test_data_file_reads_only_the_commands_of_its_log(tmp_path, monkeypatch):
    """`dimension` is known before the first run: the data reader reads the log's commands up to
    the first run/minimize, never the thermo output of a long run."""
    from spinlat.io import lammps_read

    head = "LAMMPS (22 Jul 2025)\nunits metal\ndimension 2\nboundary p p p\nread_data sq.data\n"
    log = tmp_path / "log.lammps"
    log.write_text(head + "run 10\n   Step   PotEng\n  0  -1.0\nclear\ndimension 3\nrun 5\n")
    assert lammps_read.log_dimension(log) == 2                       # the later 3D input is not read
    log.write_text("units metal\nminimize 1e-8 1e-8 100 100\ndimension 2\n")
    assert lammps_read.log_dimension(log) == 3
    log.write_text("units metal\n")
    assert lammps_read.log_dimension(log) == 3
    data = ["LAMMPS data file via write_data, version 22 Jul 2025, timestep = 0, units = metal", "", "2 atoms",
            "1 atom types", "", "0 5 xlo xhi", "0 2.5 ylo yhi", "-1.25 1.25 zlo zhi", "", "Masses", "", "1 55.845", "",
            "Atoms # spin", "", "1 1 0 0 0 0 0 1 2.2", "2 1 2.5 0 0 0 0 1 2.2"]
    (tmp_path / "sq.data").write_text("\n".join(data) + "\n")
    log.write_text(head + "run 1000000\n" + "   Step   PotEng\n" + "".join(f"{k} -1.0\n" for k in range(2000)))

    def whole_log(*args, **kwargs):
        raise AssertionError("the whole log was parsed")

    monkeypatch.setattr(lammps_read, "_read_log", whole_log)
    assert sl.io.read_lammps_data(tmp_path / "sq.data").pbc.tolist() == [True, True, False]


def test_dump_without_atom_ids_is_refused_with_the_reason(tmp_path):
    """LAMMPS's own SPIN examples dump `type x y z c_outsp[1] ...` without id: the row order then
    changes between frames (spatial sorting), so the reader refuses and says to add id."""
    rows = "\n".join(f"1 {1.43325 * k} 0 0 0 0 1 2.2" for k in range(2))
    (tmp_path / "noid.dump").write_text("ITEM: TIMESTEP\n0\nITEM: NUMBER OF ATOMS\n2\nITEM: BOX BOUNDS pp pp pp\n"
                                        "0 2.8665\n0 2.8665\n0 2.8665\nITEM: ATOMS type x y z spx spy spz sp\n"
                                        + rows + "\n")
    with pytest.raises(FileFormatError, match=r"noid.dump: line 9: the dump lacks id \(without it LAMMPS writes the "
                                              r"atoms in its internal order.*add id to the dump custom columns\)"):
        sl.io.read_lammps_dump(tmp_path / "noid.dump", elements=["Fe"])


def test_dump_without_velocities_gives_no_made_up_temperature(tmp_path):
    """A dump without vx vy vz (LAMMPS's SPIN examples dump none) of a 200 K run: its States are at
    rest for want of velocities, but its kinetic energy, temperature and total energy are the
    log's KinEng where printed, else NaN, never the 0 K of the missing velocities; convert stores
    the same and says so."""
    import math

    rows = "\n".join(f"{k + 1} 1 {1.43325 * k} 0 0 0 0 1 2.2" for k in range(2))
    frame = ("ITEM: TIMESTEP\n{step}\nITEM: NUMBER OF ATOMS\n2\nITEM: BOX BOUNDS pp pp pp\n0 2.8665\n0 2.8665\n"
             "0 2.8665\nITEM: ATOMS id type x y z spx spy spz sp\n" + rows + "\n")
    (tmp_path / "d.dump").write_text(frame.format(step=0) + frame.format(step=10))
    log = ("units metal\nmass 1 55.845\ntimestep 0.0001\n   Step   PotEng   KinEng   Temp\n"
           "  0  -8.0  0.0517  200.0\n  10  -7.9  0.0400  154.7\nLoop time of 1 on 1 procs for 10 steps with 2 atoms\n")
    (tmp_path / "log.lammps").write_text(log)
    d = sl.io.read_lammps_dump(tmp_path / "d.dump")
    assert not d.has_velocities(0)
    np.testing.assert_array_equal(d[0].velocities, 0.0)
    np.testing.assert_array_equal(d["kinetic_energy"], [0.0517, 0.04])
    np.testing.assert_allclose(d["temperature"], 2 * np.array([0.0517, 0.04]) / (6 * units.K_B), rtol=1e-12)
    np.testing.assert_allclose(d["total_energy"], [-8.0 + 0.0517, -7.9 + 0.04], rtol=1e-12)
    assert d.scalars(1)["kinetic_energy"] == 0.04
    (tmp_path / "log.lammps").write_text(log.replace("KinEng", "TotEng"))   # no KinEng: unknown
    d = sl.io.read_lammps_dump(tmp_path / "d.dump")
    assert all(math.isnan(x) for x in d["kinetic_energy"].tolist() + d["temperature"].tolist())
    assert math.isnan(d.scalars(0)["total_energy"]) and d.scalars(0)["potential_energy"] == -8.0
    with pytest.warns(UserWarning, match=r"d.dump: the dump holds no velocities \(vx vy vz\) at 2 of the 2 frames"):
        sl.io.convert(tmp_path / "d.dump", tmp_path / "d.h5")
    with sl.io.Trajectory(tmp_path / "d.h5") as t:
        assert np.isnan(t["temperature"]).all() and np.isnan(t["kinetic_energy"]).all()
        np.testing.assert_array_equal(t["potential_energy"], [-8.0, -7.9])


@pytest.mark.parametrize("row, message", [
    ("2 1 2.8665 0 0 0 0 1 -2.2", r"atom with a negative moment sp \(LAMMPS's sp is the magnitude"),
    ("2 1 2.8665 0 0 0 0 0 2.2", r"atom with a zero spin direction spx spy spz with a non-zero moment"),
    ("2 1 nan 0 0 0 0 1 2.2", r"atom with a position that is NaN or infinite"),
    ("2 1 2.8665 0 0 inf 0 1 2.2", r"atom with a spin value that is NaN or infinite"),
])
def test_bad_atom_values_name_the_file_and_line(tmp_path, row, message):
    """A negative sp, a zero spin direction of a magnetic atom, NaN or inf: the data and dump
    readers name the file and line (were State errors naming only an atom index)."""
    lines = ["LAMMPS data file", "", "2 atoms", "1 atom types", "", "0 5.733 xlo xhi", "0 5.733 ylo yhi",
             "0 5.733 zlo zhi", "", "Atoms # spin", "", "1 1 0 0 0 0 0 1 2.2", row]
    (tmp_path / "bad.data").write_text("\n".join(lines) + "\n")
    with pytest.raises(FileFormatError, match=r"bad.data: line 13: " + message):
        sl.io.read_lammps_data(tmp_path / "bad.data", elements=["Fe"], metadata=None)
    dump = ["ITEM: TIMESTEP", "0", "ITEM: NUMBER OF ATOMS", "2", "ITEM: BOX BOUNDS pp pp pp", "0 5.733", "0 5.733",
            "0 5.733", "ITEM: ATOMS id type x y z spx spy spz sp", row, "1 1 0 0 0 0 0 1 2.2"]
    (tmp_path / "bad.dump").write_text("\n".join(dump) + "\n")
    with pytest.raises(FileFormatError, match=r"bad.dump: line 10: " + message):
        sl.io.read_lammps_dump(tmp_path / "bad.dump", elements=["Fe"])[0]


GENERAL = Path(__file__).parent.parent / "data" / "lammps" / "general_triclinic"


def test_general_triclinic_data_files_and_dumps(tmp_path):
    """LAMMPS ≥ 2024 writes general triclinic boxes (`write_data ... triclinic/general`: avec, bvec,
    cvec, abc origin lines; `dump_modify triclinic/general yes`: BOX BOUNDS abc origin). The data
    file was misread as a zero cell ("cell is singular"), the dump refused. Files written by LAMMPS
    22 Jul 2025 from one state (in.general): the general frame is the restricted one turned by R."""
    gen = sl.io.read_lammps_data(GENERAL / "data.general")
    res = sl.io.read_lammps_data(GENERAL / "data.restricted")
    a = 1.4
    np.testing.assert_allclose(gen.cell, [[2 * a, 2 * a, -2 * a], [-2 * a, 2 * a, 2 * a], [2 * a, -2 * a, 2 * a]],
                               rtol=0, atol=1e-14)
    rot = sl.io.lammps_read.general_rotation(gen.cell)
    np.testing.assert_allclose(rot @ rot.T, np.eye(3), rtol=0, atol=1e-15)
    np.testing.assert_allclose(res.cell @ rot, gen.cell, rtol=0, atol=1e-14)
    for name in ("positions", "spins", "velocities"):  # image flags unwrap along the general edges
        np.testing.assert_allclose(getattr(res, name) @ rot, getattr(gen, name), rtol=0, atol=1e-14, err_msg=name)
    np.testing.assert_array_equal(gen.moments, res.moments)
    pot = BetheSlaterExchange(*EXCHANGE)
    assert pot.compute(gen).energy == pytest.approx(pot.compute(res).energy, rel=1e-13)
    # the dumps: x, v, f turned by LAMMPS, the compute's spin and fm columns not (turned on reading)
    cols = {f"c_outsp[{k + 1}]": n for k, n in enumerate(["spx", "spy", "spz", "sp", "fmx", "fmy", "fmz"])}
    dg, dr = (sl.io.read_lammps_dump(GENERAL / f"dump.{kind}", elements=["Fe"], columns=cols)
              for kind in ("general", "restricted"))
    g, r = dg[0], dr[0]
    np.testing.assert_allclose(g.cell, gen.cell, rtol=0, atol=1e-14)
    np.testing.assert_allclose(r.spins @ rot, g.spins, rtol=0, atol=1e-15)
    np.testing.assert_allclose(dr["magnetic_forces"][0] @ rot, dg["magnetic_forces"][0], rtol=0, atol=1e-16)
    np.testing.assert_allclose(r.positions @ rot, g.positions, rtol=0, atol=2e-5)   # 6 digits in a dump
    np.testing.assert_allclose(r.velocities @ rot, g.velocities, rtol=0, atol=1e-7)
    np.testing.assert_allclose(dr.atoms(0).calc.results["forces"] @ rot, dg.atoms(0).calc.results["forces"],
                               rtol=0, atol=1e-7)
    # the same state as the general data file, and the scaled dump with image flags
    d = (g.positions - gen.positions) @ np.linalg.inv(gen.cell)   # the dump's x y z are wrapped
    assert np.any(np.abs(d) > 0.5) and np.max(np.abs((d - np.round(d)) @ gen.cell)) < 1e-5
    np.testing.assert_allclose(g.spins, gen.spins, rtol=0, atol=1e-6)
    # spin columns named spx ... by dump_modify colname: still the compute's values, turned too
    named = sl.io.read_lammps_dump(GENERAL / "dump.general_colname", elements=["Fe"])
    np.testing.assert_array_equal(named[0].spins, g.spins)
    np.testing.assert_array_equal(named["magnetic_forces"], dg["magnetic_forces"])
    scaled = sl.io.read_lammps_dump(GENERAL / "dump.general_scaled", elements=["Fe"], columns=cols)[0]
    np.testing.assert_allclose(scaled.positions, gen.positions, rtol=0, atol=1e-5)
    np.testing.assert_allclose(scaled.spins, gen.spins, rtol=0, atol=1e-6)
    # a general box lacking a vector is named
    text = (GENERAL / "data.general").read_text()
    (tmp_path / "cut.data").write_text("\n".join(ln for ln in text.splitlines() if not ln.endswith("bvec")))
    with pytest.raises(FileFormatError, match="cut.data: a general triclinic box needs the avec, bvec and cvec lines "
                                              r".*\(missing bvec\)"):
        sl.io.read_lammps_data(tmp_path / "cut.data")


def test_data_file_and_dump_with_tabs_between_words(tmp_path):
    """A data file whose header words are separated by tabs ('54<TAB>atoms', '0<TAB>8.6<TAB>xlo<TAB>xhi',
    as LAMMPS's read_data accepts) was refused: "no 'N atoms' header line"; a dump so written:
    "unknown item 'BOX\tBOUNDS ...'"."""
    st = bcc_fe(2, seed=3).copy(velocities=np.full((16, 3), 0.01))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        sl.io.write_lammps(tmp_path / "x", st, BetheSlaterExchange(*EXCHANGE))
    text = (tmp_path / "x" / "data.spinlat").read_text()
    (tmp_path / "tabs.data").write_text(text.replace(" ", "\t"))
    (tmp_path / "blanks.data").write_text(text.replace(" ", "  "))
    ref = sl.io.read_lammps_data(tmp_path / "x" / "data.spinlat", metadata=None)
    for name in ("tabs.data", "blanks.data"):
        back = sl.io.read_lammps_data(tmp_path / name)
        for field in ("positions", "spins", "moments", "velocities", "cell", "numbers", "masses"):
            np.testing.assert_array_equal(getattr(back, field), getattr(ref, field), err_msg=f"{name} {field}")
    cols = {f"c_s[{k + 1}]": n for k, n in enumerate(["spx", "spy", "spz", "sp", "fmx", "fmy", "fmz"])}
    (tmp_path / "d.lammpstrj").write_text(DUMP)
    (tmp_path / "tabs.lammpstrj").write_text(DUMP.replace(" ", "\t"))
    plain = sl.io.read_lammps_dump(tmp_path / "d.lammpstrj", elements=["Fe", "Ni"], columns=cols)
    tabbed = sl.io.read_lammps_dump(tmp_path / "tabs.lammpstrj", elements=["Fe", "Ni"], columns=cols)
    for name in ("step", "time", "cell", "positions", "spins", "moments", "velocities", "magnetic_forces"):
        np.testing.assert_array_equal(tabbed[name], plain[name], err_msg=name)


def _data_file(path, style_comment, rows):
    lines = ["hand-written data file", "", f"{len(rows)} atoms", "1 atom types", "", "0 5 xlo xhi", "0 5 ylo yhi",
             "0 5 zlo zhi", "", "Masses", "", "1 55.845", "", f"Atoms{style_comment}", ""] + rows
    path.write_text("\n".join(lines) + "\n")
    return path


def test_an_atoms_section_without_a_style_is_read_as_spin_only_when_it_looks_like_one(tmp_path):
    """Without '# style' after 'Atoms', 9 columns were read as atom_style spin whatever they were:
    atom_style charge with image flags (id type q x y z ix iy iz) gave positions (q, x, y) and
    spins (z, ix, iy) with moment iz, silently; dipole (id type q x y z mux muy muz) the same.
    Now such files are refused naming the ambiguity; a spin file without the comment (unit
    directions, as LAMMPS writes them) reads as with it."""
    from spinlat.errors import FileFormatError

    charge = ["1 1 0.5 0.1 0.2 0.3 0 0 1", "2 1 -0.5 2.5 2.5 2.5 0 0 0"]
    flat = ["1 1 0.5 0.1 0.2 0.0 1 0 0", "2 1 -0.5 2.5 2.5 0.0 0 0 0"]  # z = 0: "directions" (0 1 0), (0 0 0) sp 0
    for name, rows in (("charge", charge), ("flat", flat)):
        with pytest.raises(FileFormatError, match=r"every row ends in three integers, as image flags do"):
            sl.io.read_lammps_data(_data_file(tmp_path / f"{name}.data", "", rows))
    dipole = ["1 1 0.5 0.1 0.2 0.3 0.0 0.0 1.5", "2 1 -0.5 2.5 2.5 2.5 0.0 0.0 -1.5"]
    with pytest.raises(FileFormatError, match=r"line 16 has a spin direction spx spy spz of length 0\.3 "):
        sl.io.read_lammps_data(_data_file(tmp_path / "dipole.data", "", dipole))
    with pytest.raises(FileFormatError, match=r"atom style charge"):  # named: refused as before
        sl.io.read_lammps_data(_data_file(tmp_path / "named.data", " # charge", charge))
    spin = ["1 1 0.0 0.0 0.0 0.0 0.0 1.0 2.2", "2 1 1.43325 1.43325 1.43325 0.6 0.0 -0.8 2.2",
            "3 1 2.5 2.5 0.0 0.0 0.0 0.0 0.0"]
    bare = sl.io.read_lammps_data(_data_file(tmp_path / "bare.data", "", spin))
    named = sl.io.read_lammps_data(_data_file(tmp_path / "spin.data", " # spin", spin))
    np.testing.assert_array_equal(bare.positions, named.positions)
    np.testing.assert_array_equal(bare.spins, named.spins)
    np.testing.assert_array_equal(bare.moments, [2.2, 2.2, 0.0])
    with_images = [r + " 0 0 1" for r in spin]  # 12 columns: spin with image flags
    np.testing.assert_allclose(sl.io.read_lammps_data(_data_file(tmp_path / "img.data", "", with_images)).positions,
                               named.positions + [0, 0, 5])
    loose = ["1 1 0.0 0.0 0.0 0.0 0.0 2.0 2.2"]  # LAMMPS normalises such a direction: with the comment it reads
    with pytest.raises(FileFormatError, match=r"length 2 \(LAMMPS writes unit vectors\)"):
        sl.io.read_lammps_data(_data_file(tmp_path / "loose.data", "", loose))
    with pytest.warns(UserWarning, match=r"line 16: the spin direction spx spy spz of 1 magnetic atom\(s\) is not a unit "
                                         r"vector \(\|s\| = 2, sp = 2.2\); LAMMPS normalises it"):
        loose2 = sl.io.read_lammps_data(_data_file(tmp_path / "loose2.data", " # spin", loose))
    np.testing.assert_allclose(loose2.spins, [[0, 0, 1]])
    # a file in another column order (sp before the direction) reads as LAMMPS reads it, but said
    swapped = ["1 1 0.0 0.0 0.0 2.2 0.0 0.0 1.0"]
    with pytest.warns(UserWarning, match=r"\|s\| = 2.2, sp = 1\).*If the columns are not LAMMPS's atom_style spin order"):
        sl.io.read_lammps_data(_data_file(tmp_path / "swapped.data", " # spin", swapped))
