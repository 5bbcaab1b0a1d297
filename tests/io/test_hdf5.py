"""HDF5 trajectories: layout, round trips, appending, crash safety, one writer at a time, full
disks and file-size limits, integrator checkpoints."""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest

import spinlat as sl
from spinlat import units
from spinlat.errors import FileFormatError, InputError, StorageError
from spinlat.io import Trajectory, TrajectoryWriter
from spinlat.io import hdf5

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
    with pytest.raises(InputError, match="refusing to overwrite"):
        TrajectoryWriter(text, st)
    assert text.read_text() == "hello"
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
    with pytest.raises(InputError, match="no atoms"):
        TrajectoryWriter(tmp_path / "t3.h5", sl.State(np.zeros((0, 3)), [], cell=np.eye(3) * 3, pbc=True))
    with pytest.raises(InputError, match="State"):
        TrajectoryWriter(tmp_path / "t4.h5", st.to_ase())
    assert not (tmp_path / "t3.h5").exists() and not (tmp_path / "t4.h5").exists()


_WRITER = textwrap.dedent("""
    import sys
    import numpy as np
    import spinlat as sl
    from spinlat.io import TrajectoryWriter
    path, flush_every = sys.argv[1], int(sys.argv[2])
    st = sl.State([[0, 0, 0], [1.4, 1.4, 1.4]], [26, 26], cell=np.eye(3) * 2.8, pbc=True,
                  moments=[2.2, 2.2]).repeat(4)
    n = len(st)
    with TrajectoryWriter(path, st, flush_every=flush_every, store_forces=True, seed=7, flush_seconds=None) as w:
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


# ------------------------------------------------------------------ compression
_PER_FRAME = [*hdf5._FRAME_FIELDS, *hdf5._OPTIONAL_FIELDS]


def _filters(ds):
    plist = ds.id.get_create_plist()
    return [plist.get_filter(i)[:3] for i in range(plist.get_nfilters())]


def test_every_per_frame_dataset_is_gzip_compressed_by_default(tmp_path):
    """DESIGN: per-frame datasets chunked and compressed; the default filter is deflate (gzip,
    id 1) after byte shuffle (id 2), both built into every HDF5 library: no plugin needed."""
    frames = _frames(7)
    path = _write(tmp_path / "t.h5", frames, store_forces=True, flush_every=3)
    with h5py.File(path, "r") as f:
        for name in _PER_FRAME:
            ds = f[name]
            assert ds.compression == "gzip" and ds.compression_opts == hdf5.GZIP_LEVEL and ds.shuffle, name
            assert [flt[0] for flt in _filters(ds)] == [2, 1], name  # shuffle, deflate
            assert ds.chunks[0] == (1 if ds.ndim > 1 and ds.shape[1] == len(frames[0]) else 66), name
        for name in ("numbers", "masses", "pbc"):
            assert f[name].compression is None  # static, tiny
    with Trajectory(path) as traj:
        for k, st in enumerate(traj):
            assert_same_state(st, frames[k])


@pytest.mark.parametrize("compression, expect", [("gzip", ("gzip", 1)), (6, ("gzip", 6)), (0, ("gzip", 0)),
                                                 ("lzf", ("lzf", None)), (None, (None, None)),
                                                 ("none", (None, None))])
def test_compression_choices_round_trip(tmp_path, compression, expect):
    frames = _frames(5)
    path = _write(tmp_path / "t.h5", frames, compression=compression, store_forces=True, flush_every=2)
    with h5py.File(path, "r") as f:
        for name in _PER_FRAME:
            assert (f[name].compression, f[name].compression_opts) == expect, name
    with Trajectory(path) as traj:
        for k, st in enumerate(traj):
            assert_same_state(st, frames[k])
        np.testing.assert_array_equal(traj["forces"][:, 0, 0], np.arange(5.0))
    # appending keeps the file's settings, whatever the new writer is given
    with TrajectoryWriter(path, frames[0], mode="a", compression="gzip") as w:
        w.write(frames[1], step=99, time=0.0)
    with h5py.File(path, "r") as f:
        assert (f["spins"].compression, f["spins"].compression_opts) == expect
    with Trajectory(path) as traj:
        assert len(traj) == 6
        assert_same_state(traj[5], frames[1])


@pytest.mark.parametrize("bad", ["zstd", "gzip9", 10, -1, True, 1.5])
def test_unknown_compression_is_refused(tmp_path, bad):
    with pytest.raises(InputError, match="compression"):
        TrajectoryWriter(tmp_path / "t.h5", _frames(1)[0], compression=bad)
    assert not (tmp_path / "t.h5").exists()
    with pytest.raises(InputError, match="compression"):
        sl.Simulation(_frames(1)[0], None, None, compression=bad)


@pytest.mark.parametrize("level", [1, 5])
def test_chunks_deflated_by_spinlat_are_what_hdf5_reads(tmp_path, level):
    """Per-atom chunks are shuffled and deflated by spinlat (in parallel threads) and written as
    they are: HDF5 must read them through its own filters, and unshuffling the raw zlib stream
    by hand must give the data (the HDF5 shuffle layout: byte j of element i at j·n + i)."""
    import zlib

    frames = _frames(4)
    path = _write(tmp_path / "t.h5", frames, compression=level, flush_every=3)
    with h5py.File(path, "r") as f:
        ds = f["spins"]
        for k, st in enumerate(frames):
            mask, raw = ds.id.read_direct_chunk((k, 0, 0))
            assert mask == 0  # both filters applied
            data = np.frombuffer(zlib.decompress(raw), np.uint8).reshape(8, -1).T.copy().view(np.float64)
            np.testing.assert_array_equal(data.reshape(-1, 3), st.spins)
            np.testing.assert_array_equal(ds[k], st.spins)
    # the chunks HDF5 deflates itself (small per-frame datasets) read the same way
    with h5py.File(path, "r") as f:
        np.testing.assert_array_equal(f["step"][()], 10 * np.arange(4))


def test_rewritten_small_chunks_never_overwrite_committed_bytes(tmp_path):
    """A flush rewrites the compressed chunk of each small per-frame dataset it adds rows to.
    With the files' "aggregate" file-space strategy the new copy never lands on bytes that the
    chunk index committed by the previous flush still points to (HDF5's default strategy does
    reuse them within a session: a kill between the data and the index would lose frames)."""
    frames = _frames(3)
    path = tmp_path / "t.h5"

    def extents(f):
        out = {}
        for name in _frame_fields(f):
            ds = f[name]
            for i in range(ds.id.get_num_chunks()):
                info = ds.id.get_chunk_info(i)
                out[(name, info.chunk_offset)] = (info.byte_offset, info.size)
        return out

    with TrajectoryWriter(path, frames[0], flush_every=1000, store_forces=True, flush_seconds=None) as w:
        committed = None
        rewrites = 0
        for k in range(40):
            w.write(frames[k % 3], step=k, time=float(k))
            if k % 3 == 2 or k % 7 == 6:  # flushes of 3 frames, and some of other lengths
                w.flush()
                now = extents(w._file)  # the writer's open file (white-box)
                if committed is not None:
                    for key, (off, size) in now.items():
                        if committed.get(key) == (off, size):
                            continue
                        rewrites += key in committed
                        for other, (o2, s2) in committed.items():
                            assert not (off < o2 + s2 and o2 < off + size), (key, other)
                committed = now
    assert rewrites > 0  # the case was exercised
    with Trajectory(path) as traj:
        np.testing.assert_array_equal(traj["step"], np.arange(40))


def _frame_fields(f):
    return [k for k in _PER_FRAME if k in f]


def _h5dump():
    exe = shutil.which("h5dump")
    if exe is None:
        pytest.skip("h5dump (Debian/Ubuntu: apt-get install hdf5-tools) is not installed")
    return exe


def _dump_values(exe, path, name):
    r = subprocess.run([exe, "-m", "%.17g", "-d", name, str(path)], capture_output=True, text=True)
    text = r.stdout + r.stderr
    if r.returncode != 0 or "unable to print" in text or "error" in text.lower():
        return None
    body = text[text.index("DATA {") + 6:]
    values = []
    for line in body.splitlines():
        if "):" in line:
            values += [float(x) for x in line.split("):", 1)[1].replace(",", " ").split()]
    return np.array(values)


def test_gzip_files_are_read_by_the_hdf5_command_line_tools(tmp_path):
    """h5dump (HDF5's own tool, no h5py, no plugins) reads every per-frame dataset of a default
    file, value for value; an LZF file it cannot read (the reason gzip is the default)."""
    exe = _h5dump()
    frames = _frames(4)
    path = _write(tmp_path / "t.h5", frames, store_forces=True, flush_every=3)
    with h5py.File(path, "r") as f:
        expected = {name: f[name][()] for name in _PER_FRAME}
    for name, values in expected.items():
        got = _dump_values(exe, path, "/" + name)
        assert got is not None, name
        np.testing.assert_array_equal(got, np.ravel(values).astype(float), err_msg=name)
    ls = subprocess.run([shutil.which("h5ls") or "h5ls", "-v", f"{path}/spins"], capture_output=True, text=True)
    assert "deflate" in ls.stdout and "shuffle" in ls.stdout
    lzf = _write(tmp_path / "lzf.h5", frames, compression="lzf")
    assert _dump_values(exe, lzf, "/moments") is None


def _old_layout_copy(src, dst):
    """A copy of a trajectory in the layout of earlier spinlat versions: LZF per-atom data, the
    small per-frame datasets uncompressed in chunks of 1024 frames, HDF5's default file space."""
    with h5py.File(src, "r") as a, h5py.File(dst, "w") as b:
        for key, val in a.attrs.items():
            b.attrs[key] = val
        for name in a:
            d = a[name]
            if not isinstance(d, h5py.Dataset):
                continue
            if name not in _PER_FRAME:
                b.create_dataset(name, data=d[()])
                continue
            per_atom = d.chunks[0] == 1
            b.create_dataset(name, data=d[()], maxshape=(None, *d.shape[1:]),
                             chunks=d.chunks if per_atom else (1024, *d.shape[1:]),
                             compression="lzf" if per_atom else None, shuffle=per_atom,
                             fillvalue=d.fillvalue)


def test_files_of_earlier_versions_read_and_append(tmp_path):
    frames = _frames(5)
    new = _write(tmp_path / "new.h5", frames, flush_every=2)
    old = tmp_path / "old.h5"
    _old_layout_copy(new, old)
    with Trajectory(old) as traj:
        assert len(traj) == 5
        for k, st in enumerate(traj):
            assert_same_state(st, frames[k])
    with TrajectoryWriter(old, frames[0], mode="a") as w:
        for k in range(3):
            w.write(frames[k], step=100 + k, time=0.0)
    with Trajectory(old) as traj:
        assert len(traj) == 8 and traj["step"][-1] == 102
        assert_same_state(traj[7], frames[2])
    with h5py.File(old, "r") as f:
        assert f["spins"].compression == "lzf" and f["step"].compression is None


# ------------------------------------------------------------------ one writer at a time
def _digest(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_second_writer_is_refused_before_touching_the_file(tmp_path):
    frames = _frames(6)
    path = tmp_path / "t.h5"
    first = TrajectoryWriter(path, frames[0], flush_every=1)
    for k in range(3):
        first.write(frames[k], step=k, time=float(k))
    before = _digest(path)
    for mode in ("w", "a"):
        with pytest.raises(InputError, match="in use by another writer"):
            TrajectoryWriter(path, frames[0], mode=mode)
        assert _digest(path) == before
    with Trajectory(path) as traj:  # readers are welcome meanwhile
        assert len(traj) == 3
    for k in range(3, 6):
        first.write(frames[k], step=k, time=float(k))
    first.close()
    with Trajectory(path) as traj:
        assert len(traj) == 6
        assert_same_state(traj[5], frames[5])
    with TrajectoryWriter(path, frames[0], mode="a") as w:  # the lock went with the first writer
        assert len(w) == 6


def test_mode_w_replaces_only_trajectories(tmp_path):
    st = _frames(1)[0]
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["data"] = np.arange(5)
    binary = tmp_path / "data.bin"
    binary.write_bytes(bytes(range(256)) * 4)
    for path in (other, binary):
        before = _digest(path)
        with pytest.raises(InputError, match="not a spinlat trajectory"):
            TrajectoryWriter(path, st)
        assert _digest(path) == before
    old = _write(tmp_path / "old.h5", _frames(3))
    with Trajectory(old):  # ... but not while this process reads it
        with pytest.raises(InputError, match="close it first"):
            TrajectoryWriter(old, st)
    with TrajectoryWriter(old, st) as w:  # an earlier run's trajectory is replaced
        w.write(st, 0, 0.0)
    empty = tmp_path / "empty.h5"
    empty.touch()
    with TrajectoryWriter(empty, st) as w:
        w.write(st, 0, 0.0)
    for path in (old, empty):
        with Trajectory(path) as traj:
            assert len(traj) == 1
    # a writer that fails while setting up leaves no file behind
    with pytest.raises(InputError, match="JSON"):
        TrajectoryWriter(tmp_path / "new.h5", st, metadata={"x": object()})
    assert not (tmp_path / "new.h5").exists()


# ------------------------------------------------------------------ frames count once on disk
def test_checkpoint_is_stored_with_the_last_flushed_frame(tmp_path):
    frames = _frames(7)
    path = tmp_path / "t.h5"
    rng = np.random.default_rng(1)
    saved = []
    with TrajectoryWriter(path, frames[0], flush_every=3, flush_seconds=None) as w:
        for k, st in enumerate(frames):
            ckpt = {"integrator": "Test", "rng": {"state": 2**100 + k, "key": rng.integers(0, 2**32, 8)},
                    "reference_positions": st.positions + k, "cone": 0.1 * k}
            saved.append(ckpt)
            w.write(st, step=k, time=float(k), checkpoint=ckpt)
            if k == 4:  # flushed frames 0-2 so far: the record is that of frame 2
                with Trajectory(path) as traj:
                    assert len(traj) == 3 and traj.checkpoint()["integrator_state"]["cone"] == 0.2
    with Trajectory(path) as traj:
        rec = traj.checkpoint()
        assert rec["n_frames"] == 7 and rec["step"] == 6
        state = rec["integrator_state"]
        assert state["integrator"] == "Test" and state["cone"] == pytest.approx(0.6)
        assert state["rng"]["state"] == 2**100 + 6
        np.testing.assert_array_equal(state["rng"]["key"], saved[6]["rng"]["key"])
        np.testing.assert_array_equal(state["reference_positions"], saved[6]["reference_positions"])
    with h5py.File(path, "r") as f:  # the two slots alternate: the free one is written first
        assert {"0", "1"} <= set(f["checkpoint"])
        assert len(f.attrs["checkpoint"]) == 4096
    # appending keeps counting; a frame without checkpoint stores none
    with TrajectoryWriter(path, frames[0], mode="a") as w:
        w.write(frames[0], step=7, time=7.0)
    with Trajectory(path) as traj:
        assert len(traj) == 8 and traj.checkpoint() is None


_KILLED_BETWEEN_PHASES = textwrap.dedent("""
    import os, signal, sys
    import numpy as np
    import spinlat as sl
    from spinlat.io import TrajectoryWriter, hdf5
    calls = [0]
    real_fsync = os.fsync
    def fsync(fd):  # the data of the third flush is on disk, its frames are not counted yet
        calls[0] += 1
        real_fsync(fd)
        if calls[0] == 3:
            os.kill(os.getpid(), signal.SIGKILL)
    hdf5.os.fsync = fsync
    st = sl.State([[0, 0, 0], [1.4, 1.4, 1.4]], [26, 26], cell=np.eye(3) * 2.8, pbc=True,
                  moments=[2.2, 2.2]).repeat(3)
    with TrajectoryWriter(sys.argv[1], st, flush_every=4, flush_seconds=None) as w:
        for step in range(100):
            w.write(st.copy(positions=st.positions + 1e-3 * step), step=step, time=float(step),
                    checkpoint={"frame": step})
""")


def test_frames_count_only_once_their_data_is_on_disk(tmp_path):
    """Killed after the third flush wrote its rows but before it counted them: the file holds 12
    rows per dataset, the reader and an appending writer see the 8 counted frames."""
    script = tmp_path / "writer.py"
    script.write_text(_KILLED_BETWEEN_PHASES)
    path = tmp_path / "t.h5"
    proc = subprocess.run([sys.executable, str(script), str(path)])
    assert proc.returncode == -signal.SIGKILL
    with h5py.File(path, "r") as f:
        assert f["positions"].shape[0] == 12 and f["step"][11] == 11
    with Trajectory(path) as traj:
        assert len(traj) == 8
        assert traj.checkpoint()["integrator_state"] == {"frame": 7}
        last = traj.last()
    with TrajectoryWriter(path, last, mode="a") as w:
        assert len(w) == 8
        w.write(last, step=8, time=8.0)
    with Trajectory(path) as traj:
        np.testing.assert_array_equal(traj["step"], np.arange(9))


def test_frames_that_do_not_read_back_are_left_out(tmp_path):
    """Rows never written (fill value NaN, or 0 in files of earlier versions) are not frames."""
    frames = _frames(4)
    path = _write(tmp_path / "t.h5", frames)
    with h5py.File(path, "a") as f:
        del f.attrs["checkpoint"]  # as written by earlier versions: the shortest dataset counts
        for name in hdf5._frame_fields(f):
            f[name].resize(6, axis=0)
        f["spins"][4] = 0.0  # zero-filled
    with Trajectory(path) as traj:
        assert len(traj) == 4
    with TrajectoryWriter(path, frames[0], mode="a") as w:
        assert len(w) == 4


# ------------------------------------------------------------------ full disk, file-size limit
FAULTS = Path(__file__).with_name("_storage_faults.py")
_MOUNT = 'mount -t tmpfs -o size=3m tmpfs "$1" && shift && exec "$@"'


def _small_tmpfs_prefix(mountpoint):
    """(argv prefix running a command with a fresh 3 MB tmpfs mounted at ``mountpoint``, cleanup),
    or (None, why not)."""
    unshare = shutil.which("unshare")
    if unshare:  # a private mount namespace: no root needed where user namespaces are enabled
        prefix = [unshare, "--user", "--map-root-user", "--mount", "sh", "-c", _MOUNT, "sh", str(mountpoint)]
        probe = subprocess.run(prefix + ["true"], capture_output=True, text=True)
        if probe.returncode == 0:
            return prefix, None
        why = f"unshare: {probe.stderr.strip()}"
    else:
        why = "no unshare command"
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        probe = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mountpoint)],
                               capture_output=True, text=True)
        if probe.returncode == 0:
            return [], lambda: subprocess.run(["umount", str(mountpoint)], check=False)
        why += f"; mount: {probe.stderr.strip()}"
    return None, why


def _run_faults(tmp_path, case, limit=None):
    disk, refs = tmp_path / "disk", tmp_path / "refs"
    disk.mkdir()
    refs.mkdir()
    prefix, cleanup = [], None
    if limit is None:
        prefix, cleanup = _small_tmpfs_prefix(disk)
        if prefix is None:
            pytest.skip(f"cannot mount a 3 MB tmpfs here ({cleanup}); the file-size-limit test covers the "
                        f"same writer paths")
    try:
        args = [sys.executable, str(FAULTS), case, str(disk), str(refs)] + ([str(limit)] if limit else [])
        proc = subprocess.run(prefix + args, capture_output=True, text=True, timeout=600)
    finally:
        if cleanup is not None:
            cleanup()
    assert proc.returncode == 0, proc.stderr  # no crash (the faults used to end in a segfault)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _check_fault(result, reason):
    error, fault, restart = result["error"], result["after_fault"], result["after_restart"]
    assert error["type"] == "StorageError" and reason in error["message"], error
    n = fault["frames"]
    assert n >= 50 and f"keeps its {n} complete frames up to step {n - 1}" in error["message"]
    # every frame flushed before the fault is there, counted, and the reference run's bit for bit
    assert fault["steps_consecutive"] and fault["same_as_reference"] and fault["zero_frames"] == 0
    assert fault["checkpoint_step"] == n - 1
    assert error["sim_step"] >= n  # the run had gone on: only the frames of the failed flush are lost
    # once there is room again, the restart continues the same stream from the last frame
    assert restart["resumed"] and restart["restart_step"] == n - 1
    assert restart["frames"] == n + 25 and restart["steps_consecutive"] and restart["same_as_reference"]
    assert restart["zero_frames"] == 0 and restart["plain_h5py_opens"] and not restart["recovered"]


@pytest.mark.slow
def test_full_disk_keeps_every_flushed_frame_and_restarts(tmp_path):
    """A 3 MB tmpfs fills up: once foreseen by the writer's free-space check (nothing written),
    once with the check off so that a write really fails with ENOSPC."""
    res = _run_faults(tmp_path, "disk")
    _check_fault(res["foreseen"], "its filesystem has")
    _check_fault(res["write_failed"], "No space left on device")
    for r in res.values():
        assert r["after_fault"]["plain_h5py_opens"]


@pytest.mark.slow
def test_file_size_limit_keeps_every_flushed_frame_and_restarts(tmp_path):
    """ulimit -f of 3 MB (RLIMIT_FSIZE, SIGXFSZ ignored): foreseen, and with a write failing with
    EFBIG, which leaves a file HDF5 refuses (cut short): read through the zero-padded view."""
    res = _run_faults(tmp_path, "fsize", limit=3_000_000)
    _check_fault(res["foreseen"], "file-size limit")
    _check_fault(res["write_failed"], "File too large")
    assert res["foreseen"]["after_fault"]["plain_h5py_opens"]
    failed = res["write_failed"]["after_fault"]
    assert failed["recovered"] == (not failed["plain_h5py_opens"])
    if failed["recovered"]:
        assert "truncated file" in failed["plain_h5py_error"] and "cut short" in failed["warnings"][0]


@pytest.mark.slow
def test_cli_on_a_full_disk_exits_with_one_line(tmp_path):
    res = _run_faults(tmp_path, "cli")
    for r in res.values():
        assert r["returncode"] == 1
        assert "Traceback" not in r["stderr"]
        last = r["stderr"].strip().splitlines()[-1]
        assert last.startswith("spinlat run: error: ") and "complete frames" in last
        f = r["file"]
        assert f["frames"] > 50 and f["steps_consecutive"] and f["zero_frames"] == 0


def test_room_check_bounds_what_a_flush_adds(tmp_path, monkeypatch):
    """The bytes a flush may add (checked against free space and RLIMIT_FSIZE before writing)
    bound what it really adds, for incompressible frames, with and without forces."""
    rng = np.random.default_rng(0)
    needs = []
    check = TrajectoryWriter._check_room
    monkeypatch.setattr(TrajectoryWriter, "_check_room", lambda self, need: (needs.append(need), check(self, need)))
    # (the last case crosses the 1024-row chunks of the per-frame scalars)
    for reps, store_forces, flush_every, n_frames in (((2, 2, 2), True, 1, 40), ((6, 6, 6), False, 10, 40),
                                                      ((6, 6, 6), True, 3, 40), ((1, 1, 1), False, 50, 1100)):
        st = bcc_fe(reps)
        path = tmp_path / f"t{len(needs)}.h5"
        with TrajectoryWriter(path, st, flush_every=flush_every, store_forces=store_forces) as w:
            for k in range(n_frames):
                size = path.stat().st_size
                n = len(needs)
                frame = st.copy(positions=st.positions + rng.normal(0, 0.1, (len(st), 3)),
                                spins=rng.normal(size=(len(st), 3)), velocities=rng.normal(size=(len(st), 3)))
                w.write(frame, k, float(k), forces=rng.normal(size=(len(st), 3)),
                        checkpoint={"reference_positions": frame.positions, "rng": {"state": 2**120}})
                if len(needs) > n:
                    assert path.stat().st_size - size <= needs[-1], (reps, store_forces, k)
    assert len(needs) > 20


def test_stored_end_and_the_zero_padded_view(tmp_path):
    path = _write(tmp_path / "t.h5", _frames(4))
    size = path.stat().st_size
    assert hdf5.stored_end_of_file(path) == size
    data = path.read_bytes()
    view = hdf5._ZeroPaddedFile(path, size + 1000)
    assert view.seek(0, 2) == size + 1000
    view.seek(size - 10)
    buf = bytearray(50)
    assert view.readinto(buf) == 50 and bytes(buf) == data[-10:] + bytes(40)
    view.seek(-5, 2)
    assert view.readinto(buf) == 5 and view.tell() == size + 1000
    view.close()
    assert hdf5.stored_end_of_file(tmp_path / "t.h5") is not None
    text = tmp_path / "x.txt"
    text.write_text("not hdf5" * 20)
    assert hdf5.stored_end_of_file(text) is None


def _lookup3(data: bytes) -> int:
    """Bob Jenkins' lookup3 ``hashlittle`` with initial value 0: the checksum of HDF5's version 2
    superblock (HDF5 file format specification, "Disk Format: Level 0A"; H5_checksum_lookup3)."""
    mask = 0xFFFFFFFF

    def rot(x, k):
        return ((x << k) | (x >> (32 - k))) & mask

    n = len(data)
    a = b = c = (0xDEADBEEF + n) & mask
    k = 0
    while n > 12:
        a = (a + int.from_bytes(data[k:k + 4], "little")) & mask
        b = (b + int.from_bytes(data[k + 4:k + 8], "little")) & mask
        c = (c + int.from_bytes(data[k + 8:k + 12], "little")) & mask
        for x, y, z, r in ((0, 2, 1, 4), (1, 0, 2, 6), (2, 1, 0, 8), (0, 2, 1, 16), (1, 0, 2, 19), (2, 1, 0, 4)):
            v = [a, b, c]
            v[x] = ((v[x] - v[y]) & mask) ^ rot(v[y], r)
            v[y] = (v[y] + v[z]) & mask
            a, b, c = v
        n -= 12
        k += 12
    if n == 0:
        return c
    tail = data[k:k + n] + bytes(12 - n)
    a = (a + int.from_bytes(tail[0:4], "little")) & mask
    b = (b + int.from_bytes(tail[4:8], "little")) & mask
    c = (c + int.from_bytes(tail[8:12], "little")) & mask
    for x, y, r in ((2, 1, 14), (0, 2, 11), (1, 0, 25), (2, 1, 16), (0, 2, 4), (1, 0, 14), (2, 1, 24)):
        v = [a, b, c]
        v[x] = ((v[x] ^ v[y]) - rot(v[y], r)) & mask
        a, b, c = v
    return c


def _record_end_beyond(data: bytes, extra: int) -> bytearray:
    """The bytes of an HDF5 file whose superblock records an end ``extra`` bytes beyond the real
    one (version 0: end-of-file address at 24 + 2·8; version 2: at 12 + 2·8, then the
    superblock's lookup3 checksum after the root-group address)."""
    data = bytearray(data)
    if data[8] == 0:
        at, check = 40, None
    else:
        assert data[8] == 2 and data[9] == 8, (data[8], data[9])  # spinlat's files: version 2, 8-byte offsets
        at, check = 28, 12 + 4 * 8
        assert _lookup3(bytes(data[:check])) == int.from_bytes(data[check:check + 4], "little")
    end = int.from_bytes(data[at:at + 8], "little")
    data[at:at + 8] = (end + extra).to_bytes(8, "little")
    if check is not None:
        data[check:check + 4] = _lookup3(bytes(data[:check])).to_bytes(4, "little")
    return data


def test_file_cut_short_is_read_and_repaired(tmp_path):
    """A file whose superblock records an end beyond its real end (what an interrupted write at a
    size limit leaves): HDF5 refuses it; the reader recovers its frames, an appending writer
    repairs it first."""
    frames = _frames(5)
    path = _write(tmp_path / "t.h5", frames, flush_every=2, store_forces=True)
    data = _record_end_beyond(path.read_bytes(), 4096)
    path.write_bytes(bytes(data))
    with pytest.raises(OSError, match="truncated file"):
        h5py.File(path, "r")
    with pytest.warns(UserWarning, match="cut short"):
        traj = Trajectory(path)
    with traj:
        assert traj.recovered and len(traj) == 5
        for k in range(5):
            assert_same_state(traj[k], frames[k])
    assert path.read_bytes() == bytes(data)  # the reader changed nothing
    with pytest.warns(UserWarning, match="rewrote its 5 complete frames"):
        w = TrajectoryWriter(path, frames[0], mode="a", store_forces=True)
    with w:
        w.write(frames[0], step=50, time=7.5)
    h5py.File(path, "r").close()
    with Trajectory(path) as traj:
        assert not traj.recovered and len(traj) == 6
        np.testing.assert_array_equal(traj["step"], [0, 10, 20, 30, 40, 50])
        np.testing.assert_array_equal(traj["forces"][:5, 0, 0], np.arange(5.0))


_HOLD_WITH_HDF5_LOCK = textwrap.dedent("""
    import sys, time, h5py
    with h5py.File(sys.argv[1], "r", locking=True) as f:   # HDF5's shared lock, as h5dump takes it
        print(f["step"].shape[0], flush=True)
        sys.stdin.readline()
""")


def test_suspended_writer_lets_readers_in_and_keeps_writers_out(tmp_path):
    """Between two runs (suspend): HDF5 readers with their lock may open the file, writers may
    not; a reader holding it makes resume fail without touching the file."""
    frames = _frames(6)
    path = tmp_path / "t.h5"
    w = TrajectoryWriter(path, frames[0], flush_every=10, flush_seconds=None)
    for k in range(3):
        w.write(frames[k], step=k, time=float(k))
    w.suspend()
    assert not w.closed
    with h5py.File(path, "r", locking=True) as f:  # every frame is on disk
        assert f["step"].shape[0] == 3
    with pytest.raises(InputError, match="in use by another writer"):
        TrajectoryWriter(path, frames[0], mode="a")
    script = tmp_path / "hold.py"
    script.write_text(_HOLD_WITH_HDF5_LOCK)
    reader = subprocess.Popen([sys.executable, str(script), str(path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert reader.stdout.readline().strip() == "3"
        before = _digest(path)
        with pytest.raises(InputError, match="open in another program"):
            w.resume()
        assert _digest(path) == before
        with pytest.raises(InputError, match="in use by another writer"):  # still reserved
            TrajectoryWriter(path, frames[0], mode="a")
    finally:
        reader.communicate("\n", timeout=600)
    for k in range(3, 6):  # write() resumes by itself
        w.write(frames[k], step=k, time=float(k))
    w.close()
    assert w.closed
    with Trajectory(path) as traj:
        assert len(traj) == 6
        assert_same_state(traj[5], frames[5])
    # a file replaced while the writer was suspended is not written into
    w = TrajectoryWriter(path, frames[0], mode="a")
    w.suspend()
    os.replace(_write(tmp_path / "other.h5", frames[:2]), path)
    with pytest.raises(InputError, match="removed or replaced"):
        w.resume()
    w.close()
    with Trajectory(path) as traj:
        assert len(traj) == 2


# ------------------------------------------------------------------ parts of large files, runs
def test_array_reads_only_the_frames_asked(tmp_path):
    frames = _frames(7)
    path = _write(tmp_path / "t.h5", frames, store_forces=True, flush_every=3)
    with Trajectory(path) as t:
        full = t["spins"]
        np.testing.assert_array_equal(t.array("spins", frames=-1), full[-1])
        np.testing.assert_array_equal(t.array("spins", frames=2), full[2])
        np.testing.assert_array_equal(t.array("moments", frames=slice(1, 6, 2)), t["moments"][1:6:2])
        np.testing.assert_array_equal(t.array("forces", frames=[5, 0, 5]), t["forces"][[5, 0, 5]])
        np.testing.assert_array_equal(t.array("step", frames=slice(None)), 10 * np.arange(7))
        assert t.array("time", frames=[]).shape == (0,)
        blocks = list(t.blocks("positions", max_bytes=2 * 16 * 3 * 8))
        assert [b[0] for b in blocks] == [0, 2, 4, 6] and [len(b[1]) for b in blocks] == [2, 2, 2, 1]
        np.testing.assert_array_equal(np.concatenate([b[1] for b in blocks]), t["positions"])
        with pytest.raises(IndexError, match="out of range"):
            t.array("spins", frames=7)
        with pytest.raises(InputError, match="not a per-frame dataset"):
            t.array("numbers", frames=0)
        with pytest.raises(InputError, match="frame indices"):
            t.array("spins", frames=[[0, 1]])
        with pytest.raises(KeyError, match="no dataset 'nope'"):
            t.array("nope", frames=0)


def test_names_are_the_datasets_and_each_reads(tmp_path):
    """Fault (round 12): ``names`` listed the ``checkpoint`` group of a run whose integrator keeps
    arrays, and ``traj["checkpoint"]`` raised h5py's TypeError ('Accessing a group is done with bytes
    or str')."""
    frames = _frames(3)
    path = tmp_path / "t.h5"
    with TrajectoryWriter(path, frames[0]) as w:
        for k, st in enumerate(frames):
            w.write(st, k, float(k), checkpoint={"integrator": "X", "rng": np.arange(4.0)})
    with Trajectory(path) as t:
        assert "checkpoint" not in t.names and "spins" in t.names
        for name in t.names:
            assert len(np.atleast_1d(t[name]))
        with pytest.raises(KeyError, match=r"Trajectory.checkpoint\(\)"):
            t["checkpoint"]
        np.testing.assert_array_equal(t.checkpoint()["integrator_state"]["rng"], np.arange(4.0))


def test_a_continuation_records_a_run_only_when_the_run_differs(tmp_path):
    frames = _frames(6)
    path = tmp_path / "t.h5"
    kw = dict(potential="P", integrator="LLG(dt=1.0, temperature=10.0)", seed=3, metadata={"every": 1})
    with TrajectoryWriter(path, frames[0], **kw) as w:
        for k in range(2):
            w.write(frames[k], step=k, time=k)
    with TrajectoryWriter(path, frames[0], mode="a", **kw) as w:  # the same run, continued
        w.write(frames[2], step=2, time=2)
    with TrajectoryWriter(path, frames[0], mode="a", **{**kw, "integrator": "LLG(dt=1.0, temperature=50.0)"}) as w:
        pass  # a run that wrote no frame is not listed
    with Trajectory(path) as t:
        assert len(t.runs) == 1 and t.runs[0]["frames"] == 3 and t.runs[0]["seed"] == 3
    with TrajectoryWriter(path, frames[0], mode="a", **{**kw, "integrator": "LLG(dt=1.0, temperature=50.0)"}) as w:
        for k in range(3, 5):
            w.write(frames[k], step=k, time=k)
    with TrajectoryWriter(path, frames[0], mode="a") as w:  # no description given: the same run goes on
        w.write(frames[5], step=5, time=5)
    with Trajectory(path) as t:
        runs = t.runs
        assert [(r["first_frame"], r["frames"], r["first_step"]) for r in runs] == [(0, 3, None), (3, 3, 2)]
        assert runs[1]["integrator"] == "LLG(dt=1.0, temperature=50.0)" and runs[1]["metadata"] == {"every": 1}
        assert t.attrs["integrator"] == "LLG(dt=1.0, temperature=10.0)"  # the root attributes: the first run


def test_convert_copies_the_runs_and_reads_one_frame_of_forces_at_a_time(tmp_path, monkeypatch):
    """Fault (round 12): spinlat convert A.h5 B.h5 read the whole (F, N, 3) forces and magnetic
    forces once per frame (F² N memory traffic), and the copy described every frame by the
    first run."""
    from spinlat.io.conversion import convert

    frames = _frames(6)
    path = tmp_path / "t.h5"
    with TrajectoryWriter(path, frames[0], integrator="A", store_forces=True) as w:
        for k in range(3):
            w.write(frames[k], step=k, time=k, forces=np.full((16, 3), k), magnetic_forces=np.full((16, 3), -k))
    with TrajectoryWriter(path, frames[0], integrator="B", mode="a") as w:
        for k in range(3, 6):
            w.write(frames[k], step=k, time=k, forces=np.full((16, 3), k), magnetic_forces=np.full((16, 3), -k))
    reads = []
    full = Trajectory.array

    def array(self, name, frames=None):
        out = full(self, name, frames)
        reads.append((name, np.shape(out)))
        return out

    monkeypatch.setattr(Trajectory, "array", array)
    assert convert(path, tmp_path / "c.h5", frames="1::2") == 3
    assert {shape for name, shape in reads if "forces" in name} == {(16, 3)}
    with Trajectory(tmp_path / "c.h5") as c:
        assert [(r["first_frame"], r["integrator"]) for r in c.runs] == [(0, "A"), (1, "B")]
        np.testing.assert_array_equal(c.array("forces", frames=slice(None))[:, 0, 0], [1, 3, 5])
        assert c.attrs["metadata"]["converted_from"] == str(path)
    assert convert(path, tmp_path / "d.h5", frames="4:") == 2  # frames of the second run only
    with Trajectory(tmp_path / "d.h5") as d:
        assert [(r["first_frame"], r["integrator"]) for r in d.runs] == [(0, "B")]
    # through extxyz and back: the first frame of each run carries the run's attributes
    assert convert(path, tmp_path / "t.extxyz", frames="1:") == 5
    assert convert(tmp_path / "t.extxyz", tmp_path / "e.h5") == 5
    with Trajectory(tmp_path / "e.h5") as e:
        assert [(r["first_frame"], r["frames"], r["integrator"]) for r in e.runs] == [(0, 2, "A"), (2, 3, "B")]


def test_begin_run_joins_runs_into_one_file(tmp_path):
    frames = _frames(4)
    path = tmp_path / "j.h5"
    with TrajectoryWriter(path, frames[0], integrator="LLG(temperature=10.0)", flush_every=5) as w:
        w.write(frames[0], 0, 0.0)
        w.write(frames[1], 1, 1.0)
        w.begin_run(integrator="LLG(temperature=10.0)")  # the same run: nothing recorded
        w.begin_run(integrator="LLG(temperature=20.0)", seed=7, metadata={"every": 1})
        w.write(frames[2], 2, 2.0)
        w.write(frames[3], 3, 3.0)
        with pytest.raises(InputError, match="JSON-serialisable"):
            w.begin_run(metadata={"x": object()})
    with Trajectory(path) as t:
        assert [(r["first_frame"], r["frames"], r["integrator"], r["seed"]) for r in t.runs] == [
            (0, 2, "LLG(temperature=10.0)", None), (2, 2, "LLG(temperature=20.0)", 7)]


def test_frames_with_other_masses_or_pbc_than_the_file_are_refused(tmp_path):
    """Fault (round 12): masses and pbc are stored once, so a frame (or an appended run) with its
    own was written without a word and read back with the file's."""
    frames = _frames(3)
    st = frames[0]
    path = tmp_path / "t.h5"
    with TrajectoryWriter(path, st) as w:
        w.write(st, 0, 0.0)
        with pytest.raises(InputError, match=r"periodic directions differ \(frame \[True, True, False\], file "
                                             r"\[True, True, True\]\)"):
            w.write(st.copy(pbc=[True, True, False]), 1, 1.0)
        masses = st.masses.copy()
        masses[4] = 2.0
        with pytest.raises(InputError, match=r"masses differ \(atom 4: frame 2 amu, file 55.845 amu\)"):
            w.write(st.copy(masses=masses), 1, 1.0)
        w.write(frames[1], 1, 1.0)  # the writer goes on
    with pytest.raises(InputError, match="cannot append to .*periodic directions differ"):
        TrajectoryWriter(path, st.copy(pbc=False), mode="a")
    with Trajectory(path) as t:
        assert len(t) == 2 and t[-1].pbc.all() and t[-1].masses[4] == pytest.approx(55.845)


_WRITER_BEFORE_FLUSH = textwrap.dedent("""
    import sys
    import numpy as np
    import spinlat as sl
    from spinlat.io import TrajectoryWriter
    st = sl.State([[0, 0, 0], [1.4, 1.4, 1.4]], [26, 26], cell=np.eye(3) * 2.8, pbc=True, moments=[2.2, 2.2])
    with TrajectoryWriter(sys.argv[1], st, flush_every=100, flush_seconds=None) as w:
        w.write(st, step=0, time=0.0)  # buffered: not in the file yet
        print("written", flush=True)
        sys.stdin.readline()
""")


def test_a_reader_of_a_live_file_without_frames_is_told_a_run_is_writing_it(tmp_path):
    """Fault (round 12): `spinlat analyze` on the file of a run that had not flushed yet said only
    'holds no frame (nothing to analyse)'; it now says that a simulation is writing it."""
    from spinlat import analysis
    from spinlat.cli import main

    script = tmp_path / "writer.py"
    script.write_text(_WRITER_BEFORE_FLUSH)
    path = tmp_path / "live.h5"
    proc = subprocess.Popen([sys.executable, str(script), str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout.readline().strip() == "written"
        assert hdf5.writer_holds(path) is True
        with Trajectory(path) as t:
            assert len(t) == 0 and t.being_written is True
        with pytest.raises(InputError, match="holds no frame: a simulation is writing it and has not flushed"):
            analysis.summary(path)
        assert main(["analyze", str(path)]) == 1
    finally:
        proc.communicate("\n", timeout=600)
    assert proc.returncode == 0
    assert hdf5.writer_holds(path) is False
    with Trajectory(path) as t:
        assert len(t) == 1 and t.being_written is False
        assert "stopped before the first frame" in t.no_frame_reason()


def test_reader_in_this_process_does_not_stop_the_writer(tmp_path):
    """A notebook habit: run, open the trajectory with ``Trajectory`` to look at it, run again (or
    restart). HDF5 opens a file read-write only when this process holds no read-only handle of
    it, so the next run failed with h5py's "file is already open for read-only" (an OSError; a
    restart with a FileFormatError saying the file was no HDF5 trajectory). Now the writer
    closes this process's readers of the file; they reopen it at their next access and keep
    reading the frames they counted when opened."""
    frames = _frames(6)
    path = tmp_path / "t.h5"
    w = TrajectoryWriter(path, frames[0], flush_every=1)
    for k in range(2):
        w.write(frames[k], step=k, time=float(k))
    w.suspend()  # between two Simulation.run calls
    reader = Trajectory(path)
    assert len(reader) == 2
    for k in range(2, 4):  # resumes by itself
        w.write(frames[k], step=k, time=float(k))
    w.flush()
    assert len(reader) == 2  # the frames it counted when opened
    assert_same_state(reader[1], frames[1])
    np.testing.assert_array_equal(reader.array("step"), [0, 1])
    assert [k for k, _ in reader.blocks("spins", max_bytes=1)] == [0, 1]
    w.close()
    # appending (Simulation.restart) while a reader is open, and reading during the append
    reader2 = Trajectory(path)
    with TrajectoryWriter(path, frames[0], mode="a", flush_every=1) as w:
        w.write(frames[4], step=4, time=4.0)
        assert_same_state(reader2[3], frames[3])
        w.write(frames[5], step=5, time=5.0)
    assert len(reader2) == 4 and len(Trajectory(path)) == 6
    assert_same_state(reader[0], frames[0])
    reader.close()
    with pytest.raises(InputError, match="closed"):  # a reader closed by its user stays closed
        reader.array("step")
    reader2.close()
    # a reader released to an append, then the file replaced in place (overwrite): it refuses to
    # read the new file's frames as its own
    reader3 = Trajectory(path)
    with TrajectoryWriter(path, frames[0], mode="a", flush_every=1) as w:
        w.write(frames[0], step=6, time=6.0)
    _write(path, frames[:2])  # mode "w": the same inode rewritten
    with pytest.raises(InputError, match="replaced since this reader opened it"):
        reader3.array("step")
    reader3.close()
    with Trajectory(path) as t:
        assert len(t) == 2


def test_simulation_runs_on_while_its_trajectory_is_read(tmp_path):
    """Simulation.run, a look at the file with Trajectory, Simulation.run again: the second
    run appends (it raised h5py's OSError), and so does Simulation.restart."""
    st = sl.State([[0, 0, 0]], ["Fe"], cell=np.eye(3) * 2.5, pbc=True, moments=[2.0], spins=[[1, 0, 0]])
    pot = sl.potentials.Zeeman([0, 0, 1.0])
    path = tmp_path / "run.h5"
    sim = sl.Simulation(st, pot, sl.integrators.LLG(1.0), trajectory=path, every=5, progress=False)
    sim.run(10)
    traj = Trajectory(path)
    assert len(traj) == 3
    sim.run(10)
    sim.close()
    assert len(traj) == 3 and len(Trajectory(path)) == 5
    sl.Simulation.restart(path, pot, sl.integrators.LLG(1.0), progress=False).run(10)
    with Trajectory(path) as t:
        np.testing.assert_array_equal(t.array("step"), [0, 5, 10, 15, 20, 25, 30])
    np.testing.assert_array_equal(traj.array("step"), [0, 5, 10])
    traj.close()
def test_a_reader_sees_each_frame_when_write_returns_with_flush_seconds_0(tmp_path):
    """Fault (round 13): a program reading a live trajectory trailed the run by up to flush_every
    frames (held in memory). With flush_seconds=0 every frame is on disk when write returns, while
    flush_seconds=None keeps the flush_every buffering (the default, 1 s, flushes a frame that comes
    a second or more after the last flush). No wall-clock dependence: 0 and None only."""
    frames = _frames(5)
    live, held = tmp_path / "live.h5", tmp_path / "held.h5"
    with TrajectoryWriter(live, frames[0], flush_every=100, flush_seconds=0) as w, \
            TrajectoryWriter(held, frames[0], flush_every=100, flush_seconds=None) as h:
        for k, st in enumerate(frames):
            w.write(st, step=k, time=float(k))
            h.write(st, step=k, time=float(k))
            with Trajectory(live) as traj:
                assert len(traj) == k + 1 and traj["step"].tolist() == list(range(k + 1))
                assert_same_state(traj[-1], st)
            with Trajectory(held) as traj:
                assert len(traj) == 0
    with Trajectory(held) as traj:
        assert len(traj) == 5
    assert hdf5.FLUSH_SECONDS == 1.0 and TrajectoryWriter(tmp_path / "d.h5", frames[0]).flush_seconds == 1.0
    with pytest.raises(InputError, match="flush_seconds"):
        TrajectoryWriter(tmp_path / "bad.h5", frames[0], flush_seconds=-1)


def test_a_simulation_passes_flush_seconds_to_its_writer(tmp_path):
    """Simulation(flush_seconds=0): the frames of a run are in the file as they are written (read
    here from inside the run, by the potential, between two steps)."""
    from spinlat.potentials import Zeeman

    class Watching(Zeeman):
        seen = []

        def compute(self, state, neighbors=None, **kw):
            if path.exists():
                with Trajectory(path) as traj:
                    self.seen.append(len(traj))
            return super().compute(state, neighbors, **kw)

    path = tmp_path / "run.h5"
    st = sl.State([[0, 0, 0]], ["Fe"], moments=[2.0], spins=[[1, 0, 0]])
    sim = sl.Simulation(st, Watching([0, 0, 1.0]), sl.integrators.LLG(1.0, damping=0.1), trajectory=path, every=1,
                        progress=False, flush_every=1000, flush_seconds=0)
    sim.run(4)
    sim.close()
    assert max(Watching.seen) >= 3  # frames 0..2 seen during the run, none held back
    with pytest.raises(InputError, match="flush_seconds"):
        sl.Simulation(st, Zeeman([0, 0, 1.0]), sl.integrators.LLG(1.0), flush_seconds=-0.5)
