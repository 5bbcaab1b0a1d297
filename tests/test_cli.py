"""The spinlat command line: run, minimize, search, analyze; configs validated up front."""

import json

import numpy as np
import pytest
import yaml

import spinlat as sl
from conftest import EAM_FE
from spinlat.cli import main


def _write(tmp_path, cfg, name="c.yaml"):
    p = tmp_path / name
    p.write_text(yaml.safe_dump(cfg))
    return str(p)


def _base(tmp_path, **extra):
    cfg = {
        "structure": {"crystal": "bcc", "element": "Fe", "a": 2.8665, "repeat": [2, 2, 2], "moments": 2.2,
                      "spins": "random", "temperature": 100},
        "potential": [{"type": "EAM", "path": str(EAM_FE)},
                      {"type": "BetheSlaterExchange", "cutoff": 3.4, "J1": 0.02726, "J2": 0.2171, "J3": 1.841},
                      {"type": "Zeeman", "B": [0, 0, 1.0]}],
        "integrator": {"type": "SpinLatticeNVE", "dt": 0.2},
        "steps": 40, "every": 10, "seed": 1, "output": str(tmp_path / "run"),
    }
    cfg.update(extra)
    return cfg


def test_run_writes_trajectory_log_plot_and_summary(tmp_path):
    assert main(["run", _write(tmp_path, _base(tmp_path)), "--no-progress"]) == 0
    run = tmp_path / "run"
    for f in ("trajectory.h5", "overview.png", "log.txt", "config.yaml", "summary.json"):
        assert (run / f).exists(), f
    with sl.io.Trajectory(str(run / "trajectory.h5")) as t:
        assert len(t) == 5
        assert t.attrs["integrator"].startswith("SpinLatticeNVE")
        e = t.array("total_energy")
    assert np.max(np.abs(e - e[0])) / 16 < 1e-3  # NVE: energy conserved
    s = json.loads((run / "summary.json").read_text())
    assert s["frames"] == 5 and s["n_atoms"] == 16
    assert main(["analyze", str(run / "trajectory.h5"), "--plot"]) == 0
    assert (run / "trajectory.png").exists()


@pytest.mark.parametrize("change, message", [
    ({"bogus": 1}, "bogus"),
    ({"structure": {"element": "Fe", "colour": "red"}}, "colour"),
    ({"integrator": {"type": "Verlet", "dt": 1.0}}, "Verlet"),
    ({"integrator": {"type": "SpinLatticeNVE", "dt": -1.0}}, "dt"),
    ({"potential": [{"type": "Zeeman", "Bfield": [0, 0, 1]}]}, "Bfield"),
    ({"steps": "many"}, "steps"),
])
def test_bad_config_names_the_key(tmp_path, capsys, change, message):
    cfg = _base(tmp_path)
    cfg.update(change)
    assert main(["run", _write(tmp_path, cfg)]) == 1
    err = capsys.readouterr().err
    assert message in err
    assert not (tmp_path / "run" / "trajectory.h5").exists()


def test_minimize_and_search(tmp_path):
    cfg = _base(tmp_path, minimize={"spins": True, "tmax": 1e-6})
    cfg["potential"] = cfg["potential"][1:]
    assert main(["minimize", _write(tmp_path, cfg)]) == 0
    relaxed = sl.io.read_extxyz(str(tmp_path / "run" / "relaxed.extxyz"))[0]
    st = sl.State.from_ase(relaxed)
    assert np.allclose(st.spins[:, 2], 1.0, atol=1e-6)  # ferromagnet along the field
    cfg = _base(tmp_path, search={"starts": 3, "seed": 0, "workers": 1})
    cfg["potential"] = cfg["potential"][1:]
    assert main(["search", _write(tmp_path, cfg)]) == 0
    assert "rank" in (tmp_path / "run" / "minima.txt").read_text()
