"""``spinlat export CONFIG --lammps DIR``."""

import json

import numpy as np
import pytest
from conftest import EAM_FE

import spinlat as sl
from spinlat import config as C
from spinlat.cli import main

CONFIG = f"""
structure: {{crystal: bcc, element: Fe, a: 2.8665, repeat: [4, 4, 4], moments: 2.2, spins: random, temperature: 100}}
potential:
  - {{type: EAM, path: {EAM_FE}}}
  - {{type: BetheSlaterExchange, cutoff: 3.4, J1: 0.02726, J2: 0.2171, J3: 1.841}}
  - {{type: Zeeman, B: [0, 0, 1.0]}}
integrator: {{type: SpinLatticeLangevin, dt: 0.2, temperature: 300, friction: 0.01, damping: 0.1}}
steps: 100
every: 20
seed: 3
"""


def test_export_writes_lammps_input(tmp_path, capsys):
    cfg = tmp_path / "run.yaml"
    cfg.write_text(CONFIG)
    out = tmp_path / "lmp"
    assert main(["export", str(cfg), "--lammps", str(out)]) == 0
    captured = capsys.readouterr()
    assert "lmp -in in.spinlat" in captured.out
    assert "times faster" in captured.err  # the spin time-scale note goes to stderr
    text = (out / "in.spinlat").read_text()
    assert "run 100" in text and "thermo 20" in text and "langevin/spin" in text and "timestep 0.0002" in text
    assert (out / "Fe_mm.eam.fs").exists()
    meta = json.loads((out / "spinlat-export.json").read_text())
    assert meta["n_atoms"] == 128 and meta["dt_fs"] == 0.2
    # the data file holds the config's state
    st = C.build_structure(C.load(str(cfg)))
    back = sl.io.read_lammps_data(out / "data.spinlat")
    np.testing.assert_allclose(back.positions, st.positions, atol=1e-12)
    np.testing.assert_allclose(back.spins, st.spins, atol=1e-15)
    np.testing.assert_allclose(back.velocities, st.velocities, atol=1e-17)
    # an existing export is kept unless --overwrite
    assert main(["export", str(cfg), "--lammps", str(out), "--steps", "5"]) == 1
    assert "spinlat export --overwrite" in capsys.readouterr().err
    assert main(["export", str(cfg), "--lammps", str(out), "--steps", "0", "--overwrite"]) == 0
    assert "run 0" in (out / "in.spinlat").read_text()
    # a file given as the directory was a raw "[Errno 17] File exists" (with --overwrite too)
    capsys.readouterr()
    for extra in ([], ["--overwrite"]):
        assert main(["export", str(cfg), "--lammps", str(out / "in.spinlat"), *extra]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "in.spinlat is a file; the export needs a directory" in err, err
    assert "run 0" in (out / "in.spinlat").read_text()  # untouched


def test_export_names_the_term_lammps_cannot_express(tmp_path, capsys):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(CONFIG.replace("  - {type: Zeeman, B: [0, 0, 1.0]}", "  - {type: Landau, a: -0.1, b: 0.01}"))
    assert main(["export", str(cfg), "--lammps", str(tmp_path / "x")]) == 1
    err = capsys.readouterr().err
    assert "cannot be exported to LAMMPS" in err and "Landau" in err and len(err.strip().splitlines()) == 1


@pytest.mark.peers
def test_exported_config_runs_in_lammps(tmp_path):
    lammps_runner = pytest.importorskip("lammps_runner")
    if lammps_runner.lmp_executable() is None:
        pytest.skip("lmp of the LAMMPS wheel not usable")
    cfg = tmp_path / "run.yaml"
    cfg.write_text(CONFIG)
    out = tmp_path / "lmp"
    assert main(["export", str(cfg), "--lammps", str(out), "--steps", "20", "--every", "10"]) == 0
    lammps_runner.run_input(out)
    c = C.load(str(cfg))
    st, pot = C.build_structure(c), C.build_potential(c)
    dump = sl.io.read_lammps_dump(out / "traj.lammpstrj")
    assert len(dump) == 3
    assert dump["potential_energy"][0] == pytest.approx(pot.compute(st).energy, abs=1e-8 * len(st))
    for k, frame in enumerate(dump):  # every frame LAMMPS wrote has the energy spinlat computes
        assert pot.compute(frame).energy == pytest.approx(dump["potential_energy"][k], abs=1e-8 * len(st))


@pytest.mark.parametrize("term, integrator, message", [
    ("{type: MagneticMACE, path: model.safetensors}", None,
     "write_lammps: MagneticMACE cannot be exported to LAMMPS: the machine-learned mMACE potential has no LAMMPS pair "
     "style (term potential[2])"),
    ("{type: Landau, a: -0.1, b: 0.01}", None, "write_lammps: Landau cannot be exported to LAMMPS"),
    ("{type: Zeeman, B: [0, 0, 1.0]}", "{type: MonteCarlo, temperature: 300}",
     "write_lammps: the integrator (MonteCarlo) cannot be exported to LAMMPS; supported: SpinLatticeNVE"),
])
def test_export_refuses_before_loading_the_model_or_building_anything(tmp_path, capsys, monkeypatch, term, integrator,
                                                                      message):
    """spinlat export loaded an mMACE model (seconds to minutes, a GPU's memory) and built the
    structure before write_lammps refused the model; now the config's types are checked first."""
    (tmp_path / "model.safetensors").write_bytes(b"not a model: loading it would fail otherwise")
    text = CONFIG.replace("  - {type: Zeeman, B: [0, 0, 1.0]}", f"  - {term}")
    if integrator is not None:
        text = text.replace("integrator: {type: SpinLatticeLangevin, dt: 0.2, temperature: 300, friction: 0.01, "
                            "damping: 0.1}", f"integrator: {integrator}")
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(text)

    def never(*args, **kw):
        raise AssertionError("built before the export was refused")

    monkeypatch.setattr(C, "build_structure", never)
    monkeypatch.setattr(C, "build_potential", never)
    assert main(["export", str(cfg), "--lammps", str(tmp_path / "x")]) == 1
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "x").exists()


def test_export_minimize_writes_a_spin_relaxation(tmp_path, capsys):
    """``--minimize``: the config's minimize: section as min_style spin/lbfgs instead of its run
    (it wrote the Langevin run; a config for `spinlat minimize` wrote one evaluation, run 0)."""
    cfg = tmp_path / "run.yaml"
    cfg.write_text(CONFIG + "minimize: {tmax: 1.0e-6, max_steps: 500}\n")
    out = tmp_path / "lmp"
    assert main(["export", str(cfg), "--lammps", str(out), "--minimize", "--every", "10"]) == 0
    text = (out / "in.spinlat").read_text()
    assert "minimize 0.0 1e-06 500 5000" in text and "langevin" not in text and "\nrun " not in text
    assert "dump spinlat_dump all custom 10 " in text
    capsys.readouterr()
    assert main(["export", str(cfg), "--lammps", str(out), "--minimize", "--steps", "5", "--overwrite"]) == 1
    assert "--steps 5 with --minimize" in capsys.readouterr().err
    cfg.write_text(CONFIG + "minimize: {positions: true}\n")
    assert main(["export", str(cfg), "--lammps", str(out), "--minimize", "--overwrite"]) == 1
    assert "relax only the spin directions, not positions" in capsys.readouterr().err
