"""``spinlat convert``: HDF5 trajectories to extxyz (OVITO) and any ASE format and back, frame
selections, recompression; exact round trips."""

import h5py
import numpy as np
import pytest

import spinlat as sl
from spinlat.cli import main
from spinlat.errors import FileFormatError, InputError
from spinlat.integrators import SpinLatticeLangevin
from spinlat.io import Trajectory, convert
from spinlat.io.conversion import parse_frames
from spinlat.potentials import BetheSlaterExchange, Zeeman

A = 2.8665
_PER_FRAME = ("step", "time", "cell", "positions", "velocities", "spins", "moments", "potential_energy",
              "kinetic_energy", "total_energy", "temperature", "magnetization", "forces", "magnetic_forces")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A thermostatted run with forces: 6 frames, unequal moments, a non-magnetic atom."""
    d = tmp_path_factory.mktemp("convert")
    st = sl.State([[0, 0, 0], [A / 2] * 3], [26, 26], cell=np.eye(3) * A, pbc=True, moments=[2.2, 2.0]).repeat(2)
    moments = st.moments.copy()
    moments[3] = 0.0
    st = st.copy(moments=moments, spins=np.random.default_rng(1).normal(size=(len(st), 3)))
    pot = BetheSlaterExchange(3.4, 0.02726, 0.2171, 1.841) + Zeeman([0, 0, 1.0])
    path = d / "t.h5"
    with sl.Simulation(st, pot, SpinLatticeLangevin(1.0, 300.0, 0.01, 0.1, seed=4), trajectory=str(path), every=4,
                       store_forces=True, progress=False) as sim:
        sim.run(20)
    return path


def _arrays(path):
    with h5py.File(path, "r") as f:
        return {name: f[name][()] for name in (*_PER_FRAME, "numbers", "masses", "pbc") if name in f}


def _assert_same_run(run, back):
    """Every per-frame array and the run attributes of ``back`` are those of ``run``, bit for bit."""
    a, b = _arrays(run), _arrays(back)
    assert set(a) == set(b)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    with Trajectory(run) as t1, Trajectory(back) as t2:
        for key in ("potential", "integrator", "seed"):
            assert t1.attrs[key] == t2.attrs[key], key


def test_h5_extxyz_h5_round_trip_is_exact(run, tmp_path, capsys):
    xyz, back = tmp_path / "t.extxyz", tmp_path / "back.h5"
    assert main(["convert", str(run), str(xyz)]) == 0
    assert capsys.readouterr().out == f"wrote 6 frames to {xyz}\n"
    assert main(["convert", str(xyz), str(back)]) == 0
    _assert_same_run(run, back)
    with Trajectory(back) as t2:
        meta = t2.attrs["metadata"]
        assert meta["converted_from"] == str(xyz) and meta["time_unit"] == "fs" and meta["every"] == 4
        assert sl.analysis.summary(back)["energy_conserving"] is False


@pytest.mark.parametrize("name", ["t.extxyz.gz", "t.xyz.bz2", "t.extxyz.xz"])
def test_compressed_extxyz_round_trip_is_exact(run, tmp_path, name):
    """t.extxyz.gz went through ASE's extxyz writer (8 decimals: positions off by 5e-9 Å, the stored
    spin of the non-magnetic atom lost); it is spinlat's writer, compressed."""
    import importlib

    import ase.io

    path, back = tmp_path / name, tmp_path / "back.h5"
    assert convert(run, path) == 6
    module = {".gz": "gzip", ".bz2": "bz2", ".xz": "lzma"}[path.suffix]
    with importlib.import_module(module).open(path, "rt") as fh:   # really compressed, full precision
        assert fh.readline().strip() == "16" and "spinlat_spins:R:3" in fh.readline()
    assert len(ase.io.read(path, ":")) == 6
    assert convert(path, back) == 6
    _assert_same_run(run, back)
    if module == "gzip":   # the stream names the file, not the temporary one it was written as
        assert path.read_bytes()[10:10 + len(path.stem) + 1] == path.stem.encode() + b"\0"
    sl.io.write_extxyz(path, ase.io.read(path, "0"), append=True)   # appending adds a stream
    assert len(sl.io.read_extxyz(path)) == 7


@pytest.mark.parametrize("ext", ["json", "db", "traj"])
def test_ase_database_and_traj_round_trips_keep_steps_times_and_run_attributes(run, tmp_path, ext):
    """ASE's JSON and SQLite databases: ase.io.write keeps no atoms.info, so steps, times, energies
    and the run's attributes were lost (steps became frame indices, times NaN); spinlat writes them
    as key-value pairs and data of each row and reads them back, every array bit for bit."""
    path, back = tmp_path / f"t.{ext}", tmp_path / f"back_{ext}.h5"
    assert convert(run, path) == 6
    assert convert(path, back) == 6
    _assert_same_run(run, back)
    with Trajectory(back) as t2:
        assert t2.attrs["metadata"]["every"] == 4
    if ext == "json":  # plain ASE reads the moments and the frame values too
        import ase.db

        row = next(ase.db.connect(str(path)).select(id=2))
        with Trajectory(run) as t:
            assert row.step == int(t["step"][1]) and row.time == float(t["time"][1])
            np.testing.assert_array_equal(row.toatoms().get_initial_magnetic_moments(), t[1].magnetic_moments)


def test_extxyz_holds_the_magnetic_per_atom_columns(run, tmp_path):
    import ase.io

    xyz = tmp_path / "t.extxyz"
    assert convert(run, xyz) == 6
    header = xyz.read_text().splitlines()[1]
    props = header.split("Properties=")[1].split()[0].split(":")
    columns = dict(zip(props[0::3], zip(props[1::3], props[2::3])))
    for name, width in (("initial_magmoms", "3"), ("magmoms", "3"), ("spinlat_spins", "3"),
                        ("spinlat_moments", "1"), ("spinlat_velocities", "3"), ("forces", "3"),
                        ("magnetic_forces", "3")):
        assert columns[name] == ("R", width), name
    frames = ase.io.read(xyz, index=":")  # plain ASE, as OVITO-side scripts would read it
    with Trajectory(run) as traj:
        for k, atoms in enumerate(frames):
            st = traj[k]
            np.testing.assert_array_equal(atoms.arrays["spinlat_spins"], st.spins)
            np.testing.assert_array_equal(atoms.arrays["spinlat_moments"], st.moments)
            np.testing.assert_array_equal(atoms.arrays["initial_magmoms"], st.magnetic_moments)
            np.testing.assert_array_equal(atoms.arrays["magnetic_forces"], traj["magnetic_forces"][k])
            assert atoms.info["step"] == traj["step"][k]


def test_ovito_reads_the_columns(run, tmp_path):
    ovito_io = pytest.importorskip("ovito.io")
    xyz = tmp_path / "t.extxyz"
    convert(run, xyz)
    data = ovito_io.import_file(str(xyz)).compute(2)
    with Trajectory(run) as traj:
        np.testing.assert_allclose(np.asarray(data.particles["spinlat_spins"]), traj[2].spins, rtol=1e-12)
        np.testing.assert_allclose(np.asarray(data.particles["Force"]), traj["forces"][2], rtol=1e-12)
    assert "spinlat_moments" in data.particles and "magnetic_forces" in data.particles


def test_frame_selection(run, tmp_path):
    with Trajectory(run) as traj:
        steps = traj["step"]
    for spec, picked in (("1::2", [1, 3, 5]), ("-1", [5]), ("2:4", [2, 3]), (":", list(range(6))),
                         ("::-2", [5, 3, 1])):
        out = tmp_path / f"sel{len(picked)}{spec.replace(':', 'c')}.h5"
        assert convert(run, out, frames=spec) == len(picked)
        with Trajectory(out) as t:
            np.testing.assert_array_equal(t["step"], steps[picked])
    assert parse_frames("5") == 5 and parse_frames(" 1:9:2 ") == slice(1, 9, 2) and parse_frames(None) == slice(None)
    for bad in ("a:b", "1:2:3:4", "::0", "1.5", [1]):
        with pytest.raises(InputError, match="frames"):
            parse_frames(bad)
    with pytest.raises(InputError, match="out of range"):
        convert(run, tmp_path / "x.extxyz", frames="6")
    with pytest.raises(InputError, match="selects no frame"):
        convert(run, tmp_path / "x.extxyz", frames="4:2")
    # on the command line too, negative slices after the option (argparse alone stops at '-3:')
    for spec, picked in (("-3:", [3, 4, 5]), ("-1", [5]), ("-5:-1:2", [1, 3]), ("::-2", [5, 3, 1])):
        out = tmp_path / f"cli{spec.replace(':', 'c')}.h5"
        assert main(["convert", str(run), str(out), "--frames", spec]) == 0
        with Trajectory(out) as t:
            np.testing.assert_array_equal(t["step"], steps[picked])
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "spinlat", "convert", str(run), str(tmp_path / "m.extxyz"),
                           "--frames", "-2:"], capture_output=True, text=True)
    assert done.returncode == 0 and "wrote 2 frames" in done.stdout, done.stderr  # python -m spinlat


def test_other_ase_formats_and_errors(run, tmp_path, capsys):
    import ase.io

    assert main(["convert", str(run), str(tmp_path / "last.vasp"), "--frames", "-1"]) == 0
    atoms = ase.io.read(tmp_path / "last.vasp")
    with Trajectory(run) as traj:
        np.testing.assert_allclose(atoms.positions, traj[-1].positions, atol=1e-6)
    capsys.readouterr()
    assert main(["convert", str(run), str(tmp_path / "all.vasp")]) == 1
    assert "--frames -1" in capsys.readouterr().err
    assert main(["convert", str(run), str(tmp_path / "last.vasp"), "--frames", "-1"]) == 1
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert main(["convert", str(run), str(tmp_path / "last.vasp"), "--frames", "0", "--overwrite"]) == 0
    # an ASE trajectory file (binary float64: positions, cell, moments, info) back to spinlat
    assert convert(run, tmp_path / "t.traj") == 6
    back = tmp_path / "from_traj.h5"
    assert convert(tmp_path / "t.traj", back) == 6
    with Trajectory(run) as t1, Trajectory(back) as t2:
        for name in ("positions", "cell", "step", "time", "potential_energy", "forces"):
            np.testing.assert_array_equal(t2[name], t1[name], err_msg=name)
        np.testing.assert_allclose(t2["spins"] * t2["moments"][..., None], t1["spins"] * t1["moments"][..., None],
                                   atol=1e-14)
    # a file without steps and times (a plain xyz): the frame index and NaN
    import ase.io

    ase.io.write(tmp_path / "plain.xyz", [traj_atoms.copy() for traj_atoms in ase.io.read(tmp_path / "t.traj", ":")],
                 format="xyz")
    plain = tmp_path / "plain.h5"
    assert convert(tmp_path / "plain.xyz", plain, format="xyz") == 6
    with Trajectory(plain) as t:
        np.testing.assert_array_equal(t["step"], np.arange(6))
        assert np.all(np.isnan(t["time"])) and np.all(np.isnan(t["potential_energy"]))
    capsys.readouterr()
    assert main(["convert", str(tmp_path / "t.traj"), str(tmp_path / "x.extxyz")]) == 1
    assert "one side of a conversion must be a spinlat HDF5 trajectory" in capsys.readouterr().err
    assert main(["convert", str(tmp_path / "missing.h5"), str(tmp_path / "y.extxyz")]) == 1
    assert main(["convert", str(run), str(run), "--overwrite"]) == 1
    assert "same file" in capsys.readouterr().err
    # a directory as the target: "[Errno 21] Is a directory" with --overwrite before
    (tmp_path / "d.extxyz").mkdir()
    for extra in ([], ["--overwrite"]):
        assert main(["convert", str(run), str(tmp_path / "d.extxyz"), *extra]) == 1
        assert "d.extxyz: it is a directory; give a file name" in capsys.readouterr().err
    assert (tmp_path / "d.extxyz").is_dir()


def test_unwritable_targets_are_named_and_a_failed_conversion_keeps_the_old_target(run, tmp_path, capsys):
    """A target extension ASE does not write (.lammpstrj, .foo) gave a traceback
    (UnknownFileTypeError); with --overwrite a conversion that failed had deleted the existing
    target first (a 6-frame run to a one-frame format; an unusable frame into an .h5)."""
    for name in ("t.lammpstrj", "t.foo"):
        assert main(["convert", str(run), str(tmp_path / name)]) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"spinlat convert: error: cannot write {tmp_path / name}: no format known for its "
                              f"extension '.{name.split('.')[1]}'") and "Traceback" not in err
    assert "spinlat export CONFIG --lammps DIR" in str(pytest.raises(InputError, convert, run,
                                                                    tmp_path / "t.lammpstrj").value)
    with pytest.raises(InputError, match="ASE has no format 'nonsense'"):
        convert(run, tmp_path / "t.out", format="nonsense")
    assert not list(tmp_path.iterdir())
    # a format that holds one frame: the existing POSCAR stays
    old = tmp_path / "old.vasp"
    assert convert(run, old, frames=-1) == 1
    before = old.read_bytes()
    with pytest.raises(InputError, match="one frame"):
        convert(run, old, overwrite=True)
    assert old.read_bytes() == before
    # an unusable frame (NaN position) into an existing trajectory: the trajectory stays
    import ase.io

    frames = ase.io.read(tmp_path / "old.vasp", ":") * 3
    frames[2] = frames[2].copy()
    frames[2].positions[0, 0] = np.nan
    ase.io.write(tmp_path / "bad.traj", frames)
    h5 = tmp_path / "kept.h5"
    assert convert(run, h5, frames="0:2") == 2
    before = _arrays(h5)
    with pytest.raises(FileFormatError, match="frame 2"):
        convert(tmp_path / "bad.traj", h5, overwrite=True)
    after = _arrays(h5)
    assert set(after) == set(before) and all(np.array_equal(after[k], before[k]) for k in before)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.traj", "kept.h5", "old.vasp"]


def test_lammps_data_target_keeps_elements_and_velocities(run, tmp_path, capsys):
    """--format lammps-data wrote ASE's default data file: no Masses (spinlat's and LAMMPS's readers
    could not tell the elements) and no velocities; a bare .data target became a RuNNer file. Then
    it wrote atom_style atomic, without the spins and moments (atom_style spin needed spinlat
    export and a potential): a magnetic frame is now atom_style spin, read back bit for bit."""
    assert main(["convert", str(run), str(tmp_path / "final.data"), "--frames", "-1"]) == 1
    assert "ASE takes .data for RuNNer's format; pass --format lammps-data" in capsys.readouterr().err
    assert main(["convert", str(run), str(tmp_path / "final.data"), "--format", "lammps-data"]) == 1
    assert "a LAMMPS data file holds one frame" in capsys.readouterr().err
    assert main(["convert", str(run), str(tmp_path / "final.data"), "--frames", "-1", "--format", "lammps-data"]) == 0
    assert "note" not in capsys.readouterr().err
    assert "Atoms # spin" in (tmp_path / "final.data").read_text()
    back = sl.io.read_lammps_data(tmp_path / "final.data")
    with Trajectory(run) as t:
        st = t[-1]
    assert np.any(st.moments > 0) and np.any(st.velocities != 0)
    for name in ("numbers", "masses", "positions", "cell", "spins", "moments"):
        np.testing.assert_array_equal(getattr(back, name), getattr(st, name), err_msg=name)
    np.testing.assert_allclose(back.velocities, st.velocities, rtol=1e-15, atol=0)   # Å/fs -> Å/ps -> Å/fs
    # a non-magnetic frame: ASE's atom_style atomic, as before
    plain = tmp_path / "plain.h5"
    with sl.io.TrajectoryWriter(plain, st.copy(moments=np.zeros(len(st)))) as w:
        w.write(st.copy(moments=np.zeros(len(st))), 0, 0.0)
    assert main(["convert", str(plain), str(tmp_path / "plain.data"), "--format", "lammps-data"]) == 0
    assert "Atoms # atomic" in (tmp_path / "plain.data").read_text()
    np.testing.assert_allclose(sl.io.read_lammps_data(tmp_path / "plain.data").positions, st.positions, atol=1e-14)


def test_formats_that_drop_moments_say_so(run, tmp_path, capsys):
    """POSCAR and CIF keep no moments: writing one from a magnetic run, or reading one into a
    trajectory, says so on stderr (a UserWarning from the library); extxyz and .traj do not."""
    # ... nor the velocities (CIF) and forces (POSCAR, CIF) of a run that had them: named too
    for name, lost in (("last.vasp", "no forces"), ("last.cif", "no velocities, no forces")):
        assert main(["convert", str(run), str(tmp_path / name), "--frames", "-1"]) == 0
        err = capsys.readouterr().err
        assert (f"spinlat convert: note: {tmp_path / name}: its format keeps no magnetic moments (the moments and "
                f"spins), {lost}, so they are not in it") in err
    assert main(["convert", str(tmp_path / "last.vasp"), str(tmp_path / "p.h5"), "--format", "vasp"]) == 0
    assert "last.vasp holds no magnetic moments" in capsys.readouterr().err
    with Trajectory(tmp_path / "p.h5") as t:
        np.testing.assert_array_equal(t["moments"], 0.0)
    with pytest.warns(UserWarning, match="holds no magnetic moments"):
        convert(tmp_path / "last.vasp", tmp_path / "q.h5", format="vasp")
    for name in ("t.extxyz", "t.traj"):
        assert main(["convert", str(run), str(tmp_path / name)]) == 0
        assert "note" not in capsys.readouterr().err
        assert main(["convert", str(tmp_path / name), str(tmp_path / f"{name}.h5")]) == 0
        assert "note" not in capsys.readouterr().err


def test_lammps_files_convert_with_their_spins(run, tmp_path, capsys):
    """A LAMMPS spin dump or data file → HDF5 goes through spinlat's LAMMPS readers (ASE's keep no
    spins or moments): spins, moments and velocities (Å/ps in the file) of every frame come back."""
    with Trajectory(run) as traj:
        states = [traj[0], traj[-1]]
        steps = [int(traj["step"][0]), int(traj["step"][-1])]
    text = ""
    for st, step in zip(states, steps):
        rows = "\n".join(f"{i + 1} 1 Fe " + " ".join(repr(float(c)) for c in (*x, *(v * 1000.0), *sp, m))
                         for i, (x, v, sp, m) in enumerate(zip(st.positions, st.velocities, st.spins, st.moments)))
        box = "\n".join(f"0 {float(L)!r}" for L in np.diag(st.cell))
        text += (f"ITEM: TIMESTEP\n{step}\nITEM: NUMBER OF ATOMS\n{len(st)}\nITEM: BOX BOUNDS pp pp pp\n{box}\n"
                 f"ITEM: ATOMS id type element x y z vx vy vz spx spy spz sp\n{rows}\n")
    (tmp_path / "traj.lammpstrj").write_text(text)
    assert main(["convert", str(tmp_path / "traj.lammpstrj"), str(tmp_path / "d.h5")]) == 0
    assert "note" not in capsys.readouterr().err
    with Trajectory(tmp_path / "d.h5") as t:
        assert list(t["step"]) == steps
        for k, st in enumerate(states):
            np.testing.assert_allclose(t["spins"][k], st.spins, atol=1e-15)
            np.testing.assert_allclose(t["moments"][k], st.moments, rtol=1e-15)
            np.testing.assert_allclose(t["velocities"][k], st.velocities, rtol=1e-13, atol=1e-18)
    assert convert(tmp_path / "traj.lammpstrj", tmp_path / "last.h5", frames="-1") == 1
    sl.io.write_lammps(tmp_path / "lmp", states[1], Zeeman([0, 0, 1.0]))
    assert convert(tmp_path / "lmp" / "data.spinlat", tmp_path / "data.h5") == 1
    for path in ("last.h5", "data.h5"):
        with Trajectory(tmp_path / path) as t:
            np.testing.assert_allclose(t["spins"][0], states[1].spins, atol=1e-15, err_msg=path)
            np.testing.assert_allclose(t["moments"][0], states[1].moments, rtol=1e-15, err_msg=path)

    # a dump of compute columns without an element column: --columns and --elements name them
    text = text.replace(" Fe ", " ").replace("element ", "").replace("spx spy spz sp", "c_s[2] c_s[3] c_s[4] c_s[1]")
    (tmp_path / "c.lammpstrj").write_text(text)  # as from `compute s all property/atom sp spx spy spz`
    argv = ["convert", str(tmp_path / "c.lammpstrj"), str(tmp_path / "c.h5")]
    assert main(argv) == 1
    assert "spx spy spz sp" in capsys.readouterr().err
    assert main(argv + ["--columns", "c_s[1]=sp,c_s[2]=spx,c_s[3]=spy,c_s[4]=spz", "--elements", "Fe"]) == 0
    with Trajectory(tmp_path / "c.h5") as t, Trajectory(tmp_path / "d.h5") as ref:
        for name in ("spins", "moments", "positions", "velocities", "step"):
            np.testing.assert_array_equal(t[name], ref[name], err_msg=name)
        np.testing.assert_array_equal(t[0].numbers, 26)
    assert main(argv[:2] + [str(tmp_path / "c2.h5"), "--columns", "c_s[1]"]) == 1
    assert "--columns: expected OLD=NEW pairs" in capsys.readouterr().err
    with pytest.raises(InputError, match="options of LAMMPS"):
        convert(run, tmp_path / "x.extxyz", elements=["Fe"])


def test_recompress_an_lzf_trajectory_for_other_hdf5_tools(run, tmp_path):
    lzf, gz = tmp_path / "lzf.h5", tmp_path / "gz.h5"
    assert convert(run, lzf, compression="lzf") == 6
    with h5py.File(lzf, "r") as f:
        assert f["spins"].compression == "lzf"
    assert main(["convert", str(lzf), str(gz), "--compression", "gzip"]) == 0
    with h5py.File(gz, "r") as f:
        assert all(f[name].compression == "gzip" for name in _PER_FRAME)
    a, b = _arrays(run), _arrays(gz)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_constraints_of_an_ase_file_are_reported_as_dropped(tmp_path, capsys):
    from ase.build import bulk
    from ase.constraints import FixAtoms
    from ase.io import write

    atoms = bulk("Fe", "bcc", 2.8665, cubic=True).repeat(2)
    atoms.set_initial_magnetic_moments([2.2] * len(atoms))
    atoms.set_constraint(FixAtoms(indices=[1]))
    write(tmp_path / "fixed.traj", atoms)
    assert main(["convert", str(tmp_path / "fixed.traj"), str(tmp_path / "fixed.h5")]) == 0
    assert "FixAtoms on atoms [1] (1 atoms)) are not kept" in capsys.readouterr().err
    with Trajectory(tmp_path / "fixed.h5") as t:
        np.testing.assert_array_equal(t["moments"][0], 2.2)


def test_stress_of_the_source_is_named_as_lost(tmp_path):
    """A DFT trajectory (.traj, extxyz) with stresses: a spinlat trajectory holds none, so convert
    says it leaves them out (they were dropped silently); energies, forces and moments are kept."""
    import ase.io
    from ase.build import bulk
    from ase.calculators.singlepoint import SinglePointCalculator

    frames = []
    for k in range(2):
        a = bulk("Fe", "bcc", 2.8665 + 0.01 * k, cubic=True)
        a.set_initial_magnetic_moments([2.0, 2.0])
        a.calc = SinglePointCalculator(a, energy=-16.0 - k, forces=np.full((2, 3), 0.1 * k),
                                       stress=np.array([0.01, 0.01, 0.01, 0, 0, 0]), magmoms=np.array([2.2, 2.2]))
        frames.append(a)
    for name in ("dft.traj", "dft.extxyz"):
        ase.io.write(tmp_path / name, frames)
        with pytest.warns(UserWarning, match=rf"{name}: 2 of the 2 frames carry a stress, which a spinlat trajectory "
                                             "does not hold"):
            convert(tmp_path / name, tmp_path / f"{name}.h5")
        with Trajectory(tmp_path / f"{name}.h5") as t:
            np.testing.assert_array_equal(t["potential_energy"], [-16.0, -17.0])
            np.testing.assert_array_equal(t["moments"], 2.2)


def test_unusable_frame_names_the_file_and_frame(tmp_path, capsys):
    """NaN in an extxyz source: the error names the file and frame (was a State error alone)."""
    head = 'Lattice="2.8665 0 0 0 2.8665 0 0 0 2.8665" Properties=species:S:1:pos:R:3:magmoms:R:3 pbc="T T T"'
    good = "2\n" + head + "\nFe 0 0 0 0 0 2.2\nFe 1.43325 1.43325 1.43325 0 0 2.2\n"
    (tmp_path / "m.xyz").write_text(good + good.replace("0 0 2.2\nFe 1", "0 0 nan\nFe 1"))
    with pytest.raises(FileFormatError, match=r"m.xyz: frame 1 holds an unusable structure: magnetic moments .*NaN"):
        convert(tmp_path / "m.xyz", tmp_path / "m.h5")
    (tmp_path / "p.xyz").write_text(good + good.replace("Fe 0 0 0 0 0", "Fe 0 0 inf 0 0"))
    assert main(["convert", str(tmp_path / "p.xyz"), str(tmp_path / "p.h5")]) == 1
    assert "p.xyz: frame 1 holds an unusable structure: positions" in capsys.readouterr().err


def test_pbc_of_a_2d_lammps_data_file(tmp_path, capsys):
    """spinlat convert of a LAMMPS data file of a 2D run needed its log.lammps beside it (the data
    file cannot say that it is 2D; read periodic in z, a stack of layers); --pbc says it."""
    rows = [f"{k + 1} 1 {2.5 * (k % 4)} {2.5 * (k // 4)} 0 0 0 1 2.2" for k in range(16)]
    data = ["LAMMPS data file via write_data, version 22 Jul 2025, timestep = 0, units = metal", "", "16 atoms",
            "1 atom types", "", "0 10 xlo xhi", "0 10 ylo yhi", "-1.25 1.25 zlo zhi", "", "Masses", "", "1 55.845", "",
            "Atoms # spin", ""] + rows
    (tmp_path / "sq.data").write_text("\n".join(data) + "\n")
    assert main(["convert", str(tmp_path / "sq.data"), str(tmp_path / "a.h5")]) == 0
    assert "every atom lies at z = 0" in capsys.readouterr().err
    with sl.io.Trajectory(str(tmp_path / "a.h5")) as t:
        assert t[0].pbc.tolist() == [True, True, True]
    assert main(["convert", str(tmp_path / "sq.data"), str(tmp_path / "b.h5"), "--pbc", "T,T,F"]) == 0
    assert "every atom lies" not in capsys.readouterr().err
    with sl.io.Trajectory(str(tmp_path / "b.h5")) as t:
        assert t[0].pbc.tolist() == [True, True, False]
    assert main(["convert", str(tmp_path / "b.h5"), str(tmp_path / "c.extxyz"), "--pbc", "T"]) == 1
    assert "pbc sets the periodic directions" in capsys.readouterr().err
    assert main(["convert", str(tmp_path / "sq.data"), str(tmp_path / "d.h5"), "--pbc", "T,F"]) == 1
    assert "--pbc: expected one or three of T/F" in capsys.readouterr().err


def test_h5_to_ovf_writes_one_segment_per_frame_in_spirits_order(run, tmp_path, capsys):
    """Fault (round 12): `spinlat convert t.h5 t.ovf` said 'no format known for .ovf' although
    spinlat writes OVF; an OVF source gave ASE's unreadable-file error."""
    pytest.importorskip("ovf")
    target = tmp_path / "t.ovf"
    assert main(["convert", str(run), str(target), "--frames", "1::2"]) == 0
    out = capsys.readouterr()
    assert out.out == f"wrote 3 frames to {target}\n"
    assert "OVF holds the unit spin directions only" in out.err and "repeat=(2, 2, 2)" in out.err
    with Trajectory(run) as t:
        for k, i in enumerate((1, 3, 5)):
            back = sl.io.read_ovf(target, t[0], segment=k, repeat=(2, 2, 2))
            np.testing.assert_array_equal(back.spins[t[i].moments > 0], t[i].spins[t[i].moments > 0])
        rows = sl.io.read_ovf(target, segment=1).vectors  # Spirit's row order: cells along a fastest
        np.testing.assert_array_equal(rows, t[3].spins[sl.io.spirit_order((2, 2, 2), 2)])
    with pytest.raises(InputError, match="holds spin vectors only, no atoms"):
        convert(target, tmp_path / "x.h5")
    assert main(["analyze", str(target)]) == 1  # it suggested `spinlat convert t.ovf t.h5`, which refuses it
    assert "it is an OVF spin file (spin vectors, no atoms); sl.io.read_ovf" in capsys.readouterr().err


def test_a_lammps_dump_converts_one_frame_at_a_time(run, tmp_path, monkeypatch):
    """Fault (round 12): converting a LAMMPS dump built the ase.Atoms of every frame first (a dump of
    10⁵ atoms × 1000 frames: tens of GB) and read the file four more times to check them."""
    from spinlat.io.lammps_read import LammpsDump

    with Trajectory(run) as traj:
        states, steps = list(traj), [int(s) for s in traj["step"]]
    text = ""
    for st, step in zip(states, steps):
        rows = "\n".join(f"{i + 1} 1 Fe " + " ".join(repr(float(c)) for c in (*x, *f, *sp, m))
                         for i, (x, f, sp, m) in enumerate(zip(st.positions, st.velocities, st.spins, st.moments)))
        box = "\n".join(f"0 {float(L)!r}" for L in np.diag(st.cell))
        text += (f"ITEM: TIMESTEP\n{step}\nITEM: NUMBER OF ATOMS\n{len(st)}\nITEM: BOX BOUNDS pp pp pp\n{box}\n"
                 f"ITEM: ATOMS id type element x y z fx fy fz spx spy spz sp\n{rows}\n")
    (tmp_path / "traj.lammpstrj").write_text(text)
    alive, most, parsed = [0], [0], [0]
    atoms_of = LammpsDump.atoms

    def atoms(self, i):
        import weakref

        a = atoms_of(self, i)
        parsed[0] += 1
        alive[0] += 1
        most[0] = max(most[0], alive[0])
        weakref.finalize(a, lambda: alive.__setitem__(0, alive[0] - 1))
        return a

    monkeypatch.setattr(LammpsDump, "atoms", atoms)
    with pytest.warns(UserWarning, match="no velocities"):
        assert convert(tmp_path / "traj.lammpstrj", tmp_path / "d.h5") == 6
    assert most[0] <= 2 and parsed[0] == 7  # one frame at a time, each read once (the first twice: its header)
    with Trajectory(tmp_path / "d.h5") as t:
        assert "forces" in t.names
        np.testing.assert_allclose(t["forces"], [st.velocities for st in states], rtol=1e-15)
        np.testing.assert_array_equal(t["step"], steps)


def test_trajectories_join_with_their_runs(tmp_path, capsys):
    """Joining trajectories had no tool (convert took one source): `spinlat convert A.h5 B.h5 OUT.h5`
    joins them, the second a new run, its repeated first frame (a restart's) written once."""
    from spinlat.integrators import LLG

    st = sl.State([[0, 0, 0], [A / 2] * 3], [26, 26], cell=np.eye(3) * A, pbc=True, moments=[2.2, 2.0]).repeat(2)
    st = st.copy(spins=np.random.default_rng(2).normal(size=(len(st), 3)))
    pot = BetheSlaterExchange(3.4, 0.02726, 0.2171, 1.841) + Zeeman([0, 0, 1.0])
    a, b, out = tmp_path / "a.h5", tmp_path / "b.h5", tmp_path / "ab.h5"
    with sl.Simulation(st, pot, LLG(1.0, damping=0.1, seed=1), trajectory=str(a), every=5, progress=False) as sim:
        last = sim.run(10)
    with sl.Simulation(last, pot, LLG(1.0, damping=0.0, seed=1), trajectory=str(b), every=5, progress=False) as sim:
        sim.step, sim.time = 10, 10.0  # continues a's clock, from a's last frame
        sim.run(10)
    assert main(["convert", str(a), str(b), str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.out == f"wrote 5 frames to {out}\n" and "written once" in captured.err
    with Trajectory(a) as ta, Trajectory(b) as tb, Trajectory(out) as t:
        np.testing.assert_array_equal(t["step"], [0, 5, 10, 15, 20])
        np.testing.assert_array_equal(t["spins"], np.concatenate([ta["spins"], tb["spins"][1:]]))
        assert [(r["first_frame"], r["integrator"]) for r in t.runs] == [(0, ta.attrs["integrator"]),
                                                                         (3, tb.attrs["integrator"])]
        assert t.attrs["metadata"]["converted_from"] == [str(a), str(b)]
    assert sl.analysis.summary(out)["run"] == 1
    with pytest.warns(UserWarning, match=r"b.h5 starts at step 10, not after the step 20 .* go back there"):
        assert convert([a, b, b], tmp_path / "abb.h5") == 8
    other = tmp_path / "o.h5"
    with sl.Simulation(st.repeat((2, 1, 1)), pot, LLG(1.0), trajectory=str(other), every=5, progress=False) as sim:
        sim.run(5)
    with pytest.raises(InputError, match="holds other atoms"):
        convert([a, other], tmp_path / "x.h5")
    with pytest.raises(InputError, match="takes no frames"):
        convert([a, b], tmp_path / "x.h5", frames="1:")
    assert not (tmp_path / "x.h5").exists()


def test_an_extxyz_converts_one_frame_at_a_time(run, tmp_path, monkeypatch):
    """Fault (round 12): an extxyz source was read whole (ase.io.read(index=':')) before converting,
    so a file larger than memory could not be converted; now frames are streamed (a counting pass,
    then a writing pass), and selections that run backwards still read the whole file."""
    import ase.io

    xyz = tmp_path / "t.extxyz"
    assert convert(run, xyz) == 6
    whole = []
    read = ase.io.read

    def spy(*args, **kwargs):
        whole.append(kwargs.get("index"))
        return read(*args, **kwargs)

    monkeypatch.setattr(ase.io, "read", spy)
    assert convert(xyz, tmp_path / "a.h5") == 6
    assert convert(xyz, tmp_path / "b.h5", frames="-4::2", pbc=[True, True, False]) == 2
    assert whole == []  # streamed, never read whole
    _assert_same_run(run, tmp_path / "a.h5")
    with Trajectory(run) as t, Trajectory(tmp_path / "b.h5") as b:
        np.testing.assert_array_equal(b["step"], t["step"][[2, 4]])
        np.testing.assert_array_equal(b["spins"], t["spins"][[2, 4]])
        assert b.array("pbc").tolist() == [True, True, False]
    assert convert(xyz, tmp_path / "r.h5", frames="::-1") == 6  # backwards: read whole
    with Trajectory(run) as t, Trajectory(tmp_path / "r.h5") as r:
        np.testing.assert_array_equal(r["step"], t["step"][::-1])


def test_joining_opens_each_source_once(tmp_path, monkeypatch):
    """Duplication (round 13): concatenate opened the first source three times and the others twice
    (atoms and run header, a pass for forces, the copy); now each source file is opened once, the
    same file given twice included, and the joined file is unchanged."""
    from spinlat.integrators import LLG
    from spinlat.io import hdf5

    st = sl.State([[0, 0, 0], [A / 2] * 3], [26, 26], cell=np.eye(3) * A, pbc=True, moments=[2.2, 2.0])
    st = st.copy(spins=np.random.default_rng(3).normal(size=(len(st), 3)))
    pot = BetheSlaterExchange(3.4, 0.02726, 0.2171, 1.841) + Zeeman([0, 0, 1.0])
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    for path, seed in ((a, 1), (b, 2)):
        with sl.Simulation(st, pot, LLG(1.0, damping=0.1, seed=seed), trajectory=str(path), every=5,
                           store_forces=path == b, progress=False) as sim:
            sim.run(10)
    opened = []
    init = hdf5.Trajectory.__init__

    def counting(self, path, *args, **kwargs):
        opened.append(str(path))
        init(self, path, *args, **kwargs)

    monkeypatch.setattr(hdf5.Trajectory, "__init__", counting)
    with pytest.warns(UserWarning, match="go back there"):
        assert sl.io.concatenate([a, b, b], tmp_path / "abb.h5") == 9
    assert sorted(opened) == [str(a), str(b)]
    monkeypatch.setattr(hdf5.Trajectory, "__init__", init)
    with Trajectory(a) as ta, Trajectory(b) as tb, Trajectory(tmp_path / "abb.h5") as t:
        np.testing.assert_array_equal(t["spins"], np.concatenate([ta["spins"], tb["spins"], tb["spins"]]))
        assert "forces" in t.names and np.all(np.isnan(t["forces"][:3])) and np.all(np.isfinite(t["forces"][3:]))
