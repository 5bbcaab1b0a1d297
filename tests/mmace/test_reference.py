"""Models of the reference magnetic MACE (mace-torch pull request 1244) run by spinlat.

The peers tests install the reference from ``../shared/peers`` (or ``$SPINLAT_SHARED/peers``) into
``.venv-maceref`` (``scripts/setup_maceref.sh``; skipped with the reason when the archive is not
there), build and briefly train (``mace_run_train --model MagneticScaleShiftMACE`` with its
magnetic options) small float64 models there in a subprocess, and compare spinlat's energies,
forces, magnetic forces and stress with the reference's calculator and module to 1e-10."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("mace")

import spinlat as sl  # noqa: E402
from spinlat.errors import FileFormatError, InputError  # noqa: E402
from spinlat.potentials.mmace.reference import ReferenceMagneticMACE  # noqa: E402

from _tiny import _one_thread  # noqa: E402,F401

ROOT = Path(__file__).resolve().parents[2]
TOL = 1e-10


def _shared() -> Path:
    return Path(os.environ.get("SPINLAT_SHARED", ROOT.parent / "shared"))


@pytest.fixture(scope="module")
def reference_python():
    archive = _shared() / "peers" / "mace-magnetic-pr1244.tar.gz"
    if not archive.is_file():
        pytest.skip(f"reference archive {archive} not found")
    env = dict(os.environ, SPINLAT_SHARED=str(_shared()))
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "setup_maceref.sh")], env=env, capture_output=True,
                          text=True, timeout=1800)
    assert proc.returncode == 0, f"setting up the reference environment failed:\n{proc.stderr[-3000:]}"
    venv = Path(os.environ.get("SPINLAT_MACEREF_VENV", ROOT / ".venv-maceref"))
    if not venv.is_absolute():
        venv = ROOT / venv
    return venv / "bin" / "python"


@pytest.fixture(scope="module")
def reference_run(reference_python, tmp_path_factory):
    out = tmp_path_factory.mktemp("maceref")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "LD_LIBRARY_PATH")}
    proc = subprocess.run([str(reference_python), str(Path(__file__).with_name("reference_side.py")), str(out),
                           "--train"], env=env, capture_output=True, text=True, timeout=2400)
    assert proc.returncode == 0, f"reference run failed:\n{proc.stderr[-3000:]}"
    return out, json.loads((out / "reference.json").read_text())


def state_of(case):
    m = np.array(case["magmoms"])
    mom = np.linalg.norm(m, axis=1)
    spins = np.where(mom[:, None] > 0, m / np.where(mom > 0, mom, 1)[:, None], [0.0, 0.0, 1.0])
    return sl.State(np.array(case["positions"]), case["numbers"], cell=np.array(case["cell"]), pbc=True, spins=spins,
                    moments=mom)


def assert_matches(pot, cases):
    for case in cases:
        ev = pot.compute(state_of(case), stress=True)
        scale = max(1.0, abs(case["energy"]))
        assert abs(ev.energy - case["energy"]) <= TOL * scale
        np.testing.assert_allclose(ev.energies, case["node_energy"], rtol=0, atol=TOL * scale)
        np.testing.assert_allclose(ev.forces, case["forces"], rtol=0, atol=TOL)
        # non-magnetic atoms (moment 0) get h = 0 in spinlat (the contract of every potential,
        # spinlat.potentials.base); the reference returns its −∂E/∂m there
        magnetic = state_of(case).moments > 0
        np.testing.assert_allclose(ev.magnetic_forces[magnetic], np.asarray(case["magnetic_forces"])[magnetic],
                                   rtol=0, atol=TOL)
        assert np.all(ev.magnetic_forces[~magnetic] == 0)
        xx, yy, zz, yz, xz, xy = ev.stress
        np.testing.assert_allclose([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]], case["stress"], rtol=0, atol=TOL)
        assert np.abs(ev.magnetic_forces).max() > 1e-3 and np.abs(ev.forces).max() > 1e-3


@pytest.mark.peers
def test_reference_was_trained(reference_run):
    out, data = reference_run
    assert data["trained"], (out / "train.log").read_text()[-3000:] if (out / "train.log").exists() else "no log"


@pytest.mark.peers
@pytest.mark.parametrize("name", ["built", "trained"])
def test_safe_file_matches_reference(reference_run, name):
    out, data = reference_run
    if name not in data["models"]:
        pytest.fail("mace_run_train did not produce a model (see test_reference_was_trained)")
    pot = ReferenceMagneticMACE.load(out / f"{name}.safetensors")
    assert_matches(pot, data["models"][name])


@pytest.mark.peers
def test_pickle_needs_trust_and_the_reference_package(reference_run, reference_python, tmp_path):
    out, data = reference_run
    model = out / "built.model"
    with pytest.raises(InputError, match="trust"):
        ReferenceMagneticMACE.from_reference_model(model)
    # this interpreter has PyPI's mace-torch, which lacks the reference classes
    with pytest.raises(InputError, match="reference"):
        ReferenceMagneticMACE.from_reference_model(model, trust=True, python=sys.executable)
    pot = ReferenceMagneticMACE.from_reference_model(model, trust=True, python=reference_python)
    assert_matches(pot, data["models"]["built"])
    # convert → save → load round trip keeps every number
    safe = ReferenceMagneticMACE.convert(model, tmp_path / "m.safetensors", trust=True, python=reference_python)
    pot.save(tmp_path / "again.safetensors")
    for path in (safe, tmp_path / "again.safetensors"):
        assert_matches(ReferenceMagneticMACE.load(path), data["models"]["built"])


@pytest.mark.peers
def test_reference_symmetry_is_reproduced(reference_run):
    """The reference labels moments like bond vectors: r → −r with m → −m together is exact, time
    reversal alone is not; spinlat's re-implementation reproduces both facts."""
    out, data = reference_run
    pot = ReferenceMagneticMACE.load(out / "built.safetensors")
    st = state_of(data["models"]["built"][1])
    e = pot.compute(st).energy
    both = st.copy(positions=-st.positions, cell=-st.cell, spins=-st.spins)
    assert abs(pot.compute(both).energy - e) <= 1e-12 * abs(e)
    assert abs(pot.compute(st.copy(spins=-st.spins)).energy - e) > 1e-8 * abs(e)


@pytest.mark.peers
def test_reference_model_runs_spinlat_dynamics_and_batches(reference_run):
    out, data = reference_run
    pot = ReferenceMagneticMACE.load(out / "trained.safetensors" if data["trained"] else out / "built.safetensors")
    states = [state_of(c) for c in data["models"]["built"]]
    states.append(states[0].repeat((1, 1, 2)))                          # replicas of different sizes
    pot.batch_edges = None                                              # all in one model call
    batch = pot.compute_many(states, stress=True)
    for st, ev in zip(states, batch):
        one = pot.compute(st, stress=True)
        assert abs(ev.energy - one.energy) <= 1e-12 * abs(one.energy)
        for key in ("forces", "magnetic_forces", "stress", "energies"):
            np.testing.assert_allclose(getattr(ev, key), getattr(one, key), rtol=0, atol=1e-12, err_msg=key)
    st = states[2].copy(velocities=np.zeros((len(states[2]), 3)))
    # a barely trained model has fields of tens of eV/μB (precession ~100 rad/fs): a tiny step
    integ = sl.integrators.SpinLatticeNVE(1e-3)
    e0 = pot.compute(st).energy
    end = integ.run(st, pot, 4)
    assert np.all(np.isfinite(end.positions)) and np.allclose(np.linalg.norm(end.spins, axis=1), 1)
    assert np.abs(end.spins - st.spins).max() > 1e-3                   # the spins did move
    assert abs(pot.compute(end).energy + end.kinetic_energy() - e0) < 1e-5


def test_safe_loader_refuses_other_files(tmp_path):
    from safetensors.torch import save_file

    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file")
    with pytest.raises(FileFormatError):
        ReferenceMagneticMACE.load(junk)
    other = tmp_path / "other.safetensors"
    save_file({"x": torch.zeros(2)}, str(other), metadata={"format": "spinlat-mmace", "version": "2"})
    with pytest.raises(FileFormatError, match="format marker"):
        ReferenceMagneticMACE.load(other)
    bad = tmp_path / "bad.safetensors"
    save_file({"x": torch.zeros(2)}, str(bad), metadata={"format": "spinlat-mmace-reference", "version": "1",
                                                           "architecture": "{}"})
    with pytest.raises(FileFormatError):
        ReferenceMagneticMACE.load(bad)


def test_pickle_refused_without_trust(tmp_path):
    p = tmp_path / "x.model"
    p.write_bytes(b"\x80\x04K\x01.")
    with pytest.raises(InputError, match="trust=True"):
        ReferenceMagneticMACE.convert(p, tmp_path / "out.safetensors")
    with pytest.raises(InputError, match="trust=True"):
        ReferenceMagneticMACE.from_reference_model(p, trust=False)
