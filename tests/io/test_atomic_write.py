"""Crash-safe writers (spinlat.files): a writer that fails or is killed part-way leaves the previous
file byte-for-byte intact and no temporary file behind (after an exception), for every writer of a
user file: models, extxyz, OVF, TB2J, LAMMPS export, conversions, tables, plots, checkpoints."""

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import spinlat.files
import spinlat.io as sio
from spinlat import potentials as P
from spinlat.errors import SpinlatError, StorageError
from spinlat.files import atomic_path, atomic_write
from spinlat.state import State


def _state(seed=0):
    rng = np.random.default_rng(seed)
    s = rng.normal(size=(2, 3))
    return State([[0, 0, 0], [1.43, 1.43, 1.43]], [26, 26], cell=np.eye(3) * 2.8665, spins=s / np.linalg.norm(s, axis=1)[:, None],
                 moments=[2.2, 2.2])


def _heisenberg():
    return P.Heisenberg(np.eye(3) * 2.8665, [[0, 0, 0], [1.43325, 1.43325, 1.43325]], [26, 26], [0], [1],
                        [[0, 0, 0]], [np.eye(3) * 0.01])


def test_an_exception_inside_the_block_keeps_the_old_file(tmp_path):
    p = tmp_path / "table.csv"
    p.write_text("old\n")
    with pytest.raises(RuntimeError):
        with atomic_write(p) as fh:
            fh.write("new, half written")
            raise RuntimeError("crash mid-write")
    assert p.read_text() == "old\n"
    assert sorted(os.listdir(tmp_path)) == ["table.csv"]
    with atomic_write(p, "a") as fh:     # appending writes a copy, then replaces
        fh.write("more\n")
    assert p.read_text() == "old\nmore\n"
    assert sorted(os.listdir(tmp_path)) == ["table.csv"]


def test_permissions_of_the_old_file_are_kept(tmp_path):
    p = tmp_path / "x.txt"
    p.write_text("old")
    os.chmod(p, 0o640)
    spinlat.files.atomic_write_text(p, "new")
    assert p.read_text() == "new" and (os.stat(p).st_mode & 0o777) == 0o640


def test_a_missing_directory_is_a_storage_error(tmp_path):
    with pytest.raises(StorageError, match="does not exist"):
        with atomic_write(tmp_path / "no" / "x.txt") as fh:
            fh.write("x")


def test_a_killed_writer_leaves_the_old_file(tmp_path):
    """SIGKILL in the middle of a large write (no Python clean-up runs): the target still holds
    the previous content."""
    p = tmp_path / "big.extxyz"
    p.write_text("previous content\n")
    code = textwrap.dedent(f"""
        import os, signal
        from spinlat.files import atomic_write
        with atomic_write({str(p)!r}) as fh:
            for k in range(1000):
                fh.write("x" * 10000 + "\\n")
                if k == 500:
                    fh.flush()
                    os.kill(os.getpid(), signal.SIGKILL)
        """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert r.returncode == -signal.SIGKILL, r.stderr
    assert p.read_text() == "previous content\n"


# --------------------------------------------------------------------- every writer, failing
def _write_model(path, k):
    P.MagneticMACE.create(["Fe"], seed=k, hidden_irreps="4x0e+4x1o", radial_MLP=[8], MLP_irreps="4x0e",
                          max_ell=1, correlation=2, num_interactions=1).save(path)


def _write_checkpoint(path, k):
    import torch

    from spinlat.training.checkpoint import save_checkpoint

    model = torch.nn.Linear(2, 2)
    torch.manual_seed(k)
    opt = torch.optim.Adam(model.parameters())

    class _Ema:
        def state_dict(self):
            return {"w": torch.full((2,), float(k))}

    os.makedirs(path, exist_ok=True)
    save_checkpoint(path, model=model, optimizer=opt, scheduler=None, ema=_Ema(), epoch=k, history=[], best=None,
                    best_state=None, meta={"k": k})


def _write_lammps(path, k):
    sio.write_lammps(path, _state(k), P.Zeeman([0, 0, 1.0 + k]), overwrite=True)


def _write_plot(path, k):
    from spinlat.workflows.bain import plot_bain

    rows = [{"order": "FM", "ca": 1.0 + 0.1 * j, "volume": 11.5, "a": 2.8, "c": 2.8, "energy": -4.0 + k * 0.01 * j,
             "moment": 2.2, "magnetization": 2.2} for j in range(3)]
    plot_bain(rows, path)


def _write_table(path, k):
    from spinlat.workflows.bain import write_table

    write_table([{"order": "FM", "ca": 1.0, "volume": 11.5, "a": 2.8, "c": 2.8, "energy": -4.0 + k,
                  "moment": 2.2, "magnetization": 2.2}], path)


def _write_convert(path, k, tmp):
    src = tmp / f"src{k}.h5"
    w = sio.TrajectoryWriter(src, _state(k))
    for step in range(2):
        w.write(_state(k + step), step, float(step))
    w.close()
    sio.convert(src, path, overwrite=True)


WRITERS = {
    "MagneticMACE.save": ("model.safetensors", _write_model),
    "write_extxyz": ("x.extxyz", lambda p, k: sio.write_extxyz(p, [_state(k)])),
    "write_extxyz append": ("x.extxyz", lambda p, k: sio.write_extxyz(p, [_state(k)], append=k > 0)),
    "write_ovf": ("x.ovf", lambda p, k: sio.write_ovf(p, [_state(k), _state(k + 1)])),
    "write_tb2j": ("exchange.out", lambda p, k: __import__("spinlat.io.tb2j").io.tb2j.write_tb2j(p, _state(k),
                                                                                                 _heisenberg())),
    "write_lammps": ("lammps", _write_lammps),
    "plot_bain": ("bain.png", _write_plot),
    "write_table": ("bain.csv", _write_table),
    "training checkpoint": ("ckpt", _write_checkpoint),
}


def _snapshot(path):
    if os.path.isdir(path):
        return {name: open(os.path.join(path, name), "rb").read() for name in sorted(os.listdir(path))}
    return open(path, "rb").read()


@pytest.mark.parametrize("writer", sorted(WRITERS) + ["convert extxyz", "convert xyz"])
def test_a_writer_failing_mid_write_keeps_the_previous_file(writer, tmp_path, monkeypatch):
    """Each writer writes once; the second write fails at the fsync (as a full disk or an I/O
    error would, after the data went out): the error is a spinlat error and the files on disk
    are the first write's, byte for byte, with no temporary file left."""
    if writer.startswith("convert"):
        name = "out.extxyz" if writer.endswith("extxyz") else "out.xyz"

        def write(p, k):
            return _write_convert(p, k, tmp_path / "src")
        os.makedirs(tmp_path / "src")
    else:
        name, write = WRITERS[writer]
    out = tmp_path / "out"
    out.mkdir()
    path = out / name
    write(path, 0)
    before = _snapshot(path)
    listing = sorted(os.listdir(out)) if not os.path.isdir(path) else None

    def broken_fsync(fd):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(SpinlatError) as info:
        write(path, 1)
    monkeypatch.undo()
    assert "intact" in str(info.value) or isinstance(info.value, StorageError)
    assert _snapshot(path) == before
    if listing is not None:
        assert sorted(os.listdir(out)) == listing          # no temporary file left behind
    else:
        assert not [f for f in os.listdir(path) if f.startswith(".spinlat-tmp-")]
    write(path, 2)                                         # and the writer works again
    assert _snapshot(path) != before


def test_atomic_path_keeps_the_extension_for_libraries_that_read_it(tmp_path):
    with atomic_path(tmp_path / "fig.png") as tmp:
        assert tmp.endswith("fig.png") and os.path.dirname(tmp) == str(tmp_path)
        open(tmp, "wb").write(b"png")
    assert (tmp_path / "fig.png").read_bytes() == b"png"


def test_a_training_checkpoint_is_never_a_mix_of_two_epochs(tmp_path, monkeypatch):
    """Killed between its two files, the checkpoint still reads as one epoch: the tensors file
    carries the state that names them."""
    from spinlat.training.checkpoint import load_checkpoint

    _write_checkpoint(tmp_path, 1)
    old_json = (tmp_path / "checkpoint.json").read_text()
    _write_checkpoint(tmp_path, 2)
    (tmp_path / "checkpoint.json").write_text(old_json)     # as if killed before the JSON was replaced
    ck = load_checkpoint(tmp_path)
    assert ck["epoch"] == 2 and float(ck["ema"]["w"][0]) == 2.0
