"""HDF5 trajectories: layout, round trips, appending, crash safety."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import h5py
import numpy as np
import pytest

import spinlat as sl
from spinlat import units
from spinlat.errors import FileFormatError, InputError
from spinlat.io import Trajectory, TrajectoryWriter

from conftest import bcc_fe


def _frames(n=7, seed=0):
    rng = np.random.default_rng(seed)
    st = bcc_fe((2, 2, 2), seed=seed)
    st = st.copy(velocities=rng.normal(0, 0.01, (len(st), 3)))
    out = []
    for k in range(n):
        cell = st.cell * (1 + 0.001 * k)
        out.append(st.copy(positions=st.positions + 0.01 * k * rng.normal(size=(len(st), 3)),
                           spins=rng.normal(size=(len(st), 3)), cell=cell,
                           moments=st.moments * (1 + 0.01 * k),
                           velocities=rng.normal(0, 0.01, (len(st), 3))))
    return out


def _write(path, frames, **kw):
    with TrajectoryWriter(path, frames[0], potential="EAM + Zeeman", integrator="NVE(dt=1)", seed=42,
                          metadata={"note": "test", "dt": 1.0}, **kw) as w:
        for k, st in enumerate(frames):
            w.write(st, step=10 * k, time=1.5 * k, potential_energy=-1.0 - k,
                    forces=np.full((len(st), 3), float(k)), magnetic_forces=np.full((len(st), 3), -float(k)))
        assert len(w) == len(frames)
    return path


def assert_same_state(a, b):
    for name in ("positions", "numbers", "cell", "pbc", "spins", "moments", "velocities", "masses"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


def test_layout_matches_design(tmp_path):
    frames = _frames(5)
    path = _write(tmp_path / "t.h5", frames, store_forces=True, flush_every=2)
    n = len(frames[0])
    with h5py.File(path, "r") as f:
        assert f.attrs["format"] == "spinlat-trajectory"
        assert int(f.attrs["version"]) == 1
        assert json.loads(f.attrs["units"]) == units.UNITS
        assert f.attrs["spinlat_version"] == sl.__version__
        assert f.attrs["potential"] == "EAM + Zeeman"
        assert f.attrs["integrator"] == "NVE(dt=1)"
        assert int(f.attrs["seed"]) == 42
        assert f["numbers"].shape == (n,) and f["masses"].shape == (n,)
        shapes = {"step": (5,), "time": (5,), "cell": (5, 3, 3), "positions": (5, n, 3),
                  "velocities": (5, n, 3), "spins": (5, n, 3), "moments": (5, n),
                  "potential_energy": (5,), "kinetic_energy": (5,), "total_energy": (5,),
                  "temperature": (5,), "magnetization": (5, 3), "forces": (5, n, 3), "magnetic_forces": (5, n, 3)}
        for name, shape in shapes.items():
            ds = f[name]
            assert ds.shape == shape, name
            assert ds.maxshape[0] is None and ds.chunks is not None, name
        for name in ("positions", "spins", "velocities", "moments", "forces"):
            assert f[name].compression is not None, name


def test_round_trip_states_arrays_atoms(tmp_path):
    frames = _frames(7)
    path = _write(tmp_path / "t.h5", frames, store_forces=True, flush_every=3)
    with Trajectory(path) as traj:
        assert len(traj) == 7
        for k, st in enumerate(traj):
            assert_same_state(st, frames[k])
        assert_same_state(traj[-1], frames[-1])
        assert_same_state(traj.last(), frames[-1])
        assert [s.cell[0, 0] for s in traj[1:6:2]] == [frames[k].cell[0, 0] for k in (1, 3, 5)]
        with pytest.raises(IndexError):
            traj[7]
        np.testing.assert_array_equal(traj["step"], 10 * np.arange(7))
        np.testing.assert_array_equal(traj.array("time"), 1.5 * np.arange(7))
        pe = traj["potential_energy"]
        ke = np.array([st.kinetic_energy() for st in frames])
        np.testing.assert_array_equal(pe, -1.0 - np.arange(7))
        np.testing.assert_allclose(traj["kinetic_energy"], ke, rtol=1e-15)
        np.testing.assert_allclose(traj["total_energy"], pe + ke, rtol=1e-15)
        np.testing.assert_allclose(traj["temperature"], [st.temperature() for st in frames], rtol=1e-15)
        np.testing.assert_allclose(traj["magnetization"], [st.magnetization() for st in frames], rtol=1e-14)
        np.testing.assert_array_equal(traj["forces"][:, 0, 0], np.arange(7.0))
        assert traj["positions"].shape == (7, len(frames[0]), 3)
        attrs = traj.attrs
        assert attrs["units"] == units.UNITS and attrs["seed"] == 42
        assert attrs["metadata"] == {"note": "test", "dt": 1.0}
        atoms = traj.atoms(2)
        np.testing.assert_array_equal(atoms.get_initial_magnetic_moments(), frames[2].magnetic_moments)
        assert atoms.get_potential_energy() == -3.0
        np.testing.assert_array_equal(atoms.get_forces(), 2.0)
        np.testing.assert_array_equal(atoms.arrays["magnetic_forces"], -2.0)
        np.testing.assert_allclose(atoms.get_velocities() * __import__("ase").units.fs, frames[2].velocities,
                                   rtol=1e-14, atol=1e-18)
        assert_same_state(sl.State.from_ase(atoms), frames[2])


def test_defaults_and_no_forces(tmp_path):
    frames = _frames(3)
    with TrajectoryWriter(tmp_path / "t.h5", frames[0]) as w:
        for k, st in enumerate(frames):
            w.write(st, step=k, time=float(k), forces=np.zeros((len(st), 3)))
    with Trajectory(tmp_path / "t.h5") as traj:
        assert np.all(np.isnan(traj["potential_energy"])) and np.all(np.isnan(traj["total_energy"]))
        assert "forces" not in traj.names
        assert traj.attrs["seed"] is None
        with pytest.raises(KeyError, match="forces"):
            traj["forces"]


def test_total_energy_given_explicitly(tmp_path):
    st = _frames(1)[0]
    with TrajectoryWriter(tmp_path / "t.h5", st) as w:
        w.write(st, step=0, time=0.0, potential_energy=-2.0, kinetic_energy=0.5, temperature=300.0,
                total_energy=-1.25)
    with Trajectory(tmp_path / "t.h5") as traj:
        assert traj.scalars(0) == {"step": 0, "time": 0.0, "potential_energy": -2.0, "kinetic_energy": 0.5,
                                   "total_energy": -1.25, "temperature": 300.0}


def test_append_mode(tmp_path):
    frames = _frames(6)
    path = tmp_path / "t.h5"
    _write(path, frames[:4], flush_every=10)
    with TrajectoryWriter(path, frames[0], mode="a") as w:
        assert len(w) == 4
        w.write(frames[4], step=40, time=6.0)
        w.write(frames[5], step=50, time=7.5)
    with Trajectory(path) as traj:
        assert len(traj) == 6
        assert_same_state(traj[5], frames[5])
        np.testing.assert_array_equal(traj["step"], 10 * np.arange(6))
        assert traj.attrs["potential"] == "EAM + Zeeman"  # metadata of the first run kept
    # a different system cannot be appended
    with pytest.raises(InputError, match="atoms"):
        TrajectoryWriter(path, bcc_fe((1, 1, 1)), mode="a")
    other = frames[0].copy(numbers=np.where(np.arange(len(frames[0])) == 3, 28, 26))
    with pytest.raises(InputError, match="atomic numbers"):
        TrajectoryWriter(path, other, mode="a")
    # mode="a" on a missing file creates it
    with TrajectoryWriter(tmp_path / "new.h5", frames[0], mode="a") as w:
        w.write(frames[0], 0, 0.0)
    assert len(Trajectory(tmp_path / "new.h5")) == 1


def test_interrupted_flush_is_trimmed(tmp_path):
    """Datasets of unequal length (a kill during a flush) read as the complete frames only."""
    frames = _frames(4)
    path = _write(tmp_path / "t.h5", frames[:3])
    with h5py.File(path, "a") as f:
        for name in ("step", "time", "positions"):
            f[name].resize(4, axis=0)
    with Trajectory(path) as traj:
        assert len(traj) == 3
        assert traj["positions"].shape[0] == 3
    with TrajectoryWriter(path, frames[0], mode="a") as w:
        assert len(w) == 3
        w.write(frames[3], step=30, time=4.5)
    with Trajectory(path) as traj:
        assert len(traj) == 4
        assert_same_state(traj[3], frames[3])
        np.testing.assert_array_equal(traj["step"], [0, 10, 20, 30])


def test_bad_files_and_paths(tmp_path):
    st = _frames(1)[0]
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(FileFormatError, match="notes.txt"):
        Trajectory(text)
    with pytest.raises(FileFormatError):
        TrajectoryWriter(text, st, mode="a")
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f.attrs["format"] = "something-else"
        f["x"] = np.arange(3)
    with pytest.raises(FileFormatError, match="not a spinlat trajectory"):
        Trajectory(other)
    with pytest.raises(FileNotFoundError):
        Trajectory(tmp_path / "missing.h5")
    with pytest.raises(InputError, match="does not exist"):
        TrajectoryWriter(tmp_path / "no" / "such" / "dir" / "t.h5", st)
    with pytest.raises(InputError, match="directory"):
        TrajectoryWriter(tmp_path, st)
    with TrajectoryWriter(tmp_path / "t.h5", st) as w:
        with pytest.raises(sl.errors.ShapeError):
            w.write(bcc_fe((1, 1, 1)), 0, 0.0)
    with pytest.raises(InputError, match="closed"):
        w.write(st, 1, 1.0)
    with pytest.raises(InputError, match="flush_every"):
        TrajectoryWriter(tmp_path / "t2.h5", st, flush_every=0)


_WRITER = textwrap.dedent("""
    import sys
    import numpy as np
    import spinlat as sl
    from spinlat.io import TrajectoryWriter
    path, flush_every = sys.argv[1], int(sys.argv[2])
    st = sl.State([[0, 0, 0], [1.4, 1.4, 1.4]], [26, 26], cell=np.eye(3) * 2.8, pbc=True,
                  moments=[2.2, 2.2]).repeat(4)
    n = len(st)
    with TrajectoryWriter(path, st, flush_every=flush_every, store_forces=True, seed=7) as w:
        step = 0
        while True:
            pos = st.positions + 1e-4 * step
            w.write(st.copy(positions=pos), step=step, time=0.5 * step, potential_energy=float(step),
                    forces=np.full((n, 3), float(step)))
            step += 1
            if len(w) % flush_every == 0:
                print(len(w), flush=True)
            if step % 50 == 0:
                sum(range(20000))  # some work between frames
""")


@pytest.mark.parametrize("trial", range(3))
def test_kill_minus_nine_keeps_flushed_frames(tmp_path, trial):
    script = tmp_path / "writer.py"
    script.write_text(_WRITER)
    path = tmp_path / "killed.h5"
    proc = subprocess.Popen([sys.executable, str(script), str(path), "5"], stdout=subprocess.PIPE, text=True)
    reported = 0
    target = 20 + 80 * trial
    try:
        deadline = time.time() + 1800  # a hang guard only: on a loaded machine the writer may start slowly
        while reported < target and time.time() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            reported = int(line)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    rest = proc.stdout.read().split()
    if rest:
        reported = int(rest[-1])
    assert proc.returncode == -signal.SIGKILL
    assert reported >= target
    with Trajectory(path) as traj:
        n = len(traj)
        assert n >= reported
        np.testing.assert_array_equal(traj["step"], np.arange(n))
        np.testing.assert_array_equal(traj["potential_energy"], np.arange(n, dtype=float))
        np.testing.assert_array_equal(traj["forces"][:, 5, 1], np.arange(n, dtype=float))
        first = traj[0]
        last = traj.last()
        np.testing.assert_allclose(last.positions, first.positions + 1e-4 * (n - 1), rtol=0, atol=1e-12)
    # the run can restart from its last frame and append
    with TrajectoryWriter(path, last, mode="a", store_forces=True) as w:
        w.write(last, step=n, time=0.5 * n, potential_energy=float(n), forces=np.full((len(last), 3), float(n)))
    with Trajectory(path) as traj:
        assert len(traj) == n + 1
        np.testing.assert_array_equal(traj["step"], np.arange(n + 1))


@pytest.mark.parametrize("compression", ["gzip", None])
def test_other_compressions(tmp_path, compression):
    frames = _frames(3)
    path = _write(tmp_path / "t.h5", frames, compression=compression)
    with h5py.File(path, "r") as f:
        assert f["positions"].compression == compression
    with Trajectory(path) as traj:
        for k, st in enumerate(traj):
            assert_same_state(st, frames[k])
