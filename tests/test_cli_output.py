"""Where the command line writes: results to stdout, diagnostics (config, thermo lines, notes) to
stderr, both to the run's log; the run config's ``compression`` and ``thermo`` keys; Monte Carlo
runs summarised in sweeps without an energy drift."""

import json
import subprocess
import sys

import h5py
import pytest

from spinlat.cli import main
from spinlat.errors import ConfigError

from test_cli import _base, _write


def _exchange_only(tmp_path, **extra):
    cfg = _base(tmp_path, **extra)
    cfg["potential"] = [{"type": "BetheSlaterExchange", "cutoff": 3.4, "J1": 0.02726, "J2": 0.2171, "J3": 1.841}]
    return cfg


def test_run_results_to_stdout_diagnostics_to_stderr(tmp_path, capsys):
    cfg = _exchange_only(tmp_path, thermo=20)
    assert main(["run", _write(tmp_path, cfg)]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0] == "frames = 5" and "energy_drift_eV_per_atom_per_ps = " in out
    assert lines[-3:] == [f"trajectory: {tmp_path / 'run' / 'trajectory.h5'}",
                          f"summary: {tmp_path / 'run' / 'summary.json'}", f"plot: {tmp_path / 'run' / 'overview.png'}"]
    assert "Step" not in out and "integrator:" not in out
    assert "integrator: SpinLatticeNVE(dt=0.2)" in err
    thermo = [line.split() for line in err.splitlines() if line.split() and line.split()[0].isdigit()]
    assert [int(row[0]) for row in thermo] == [0, 20, 40]
    assert "frames = 5" not in err
    log = (tmp_path / "run" / "log.txt").read_text()
    assert "integrator: SpinLatticeNVE" in log and "Etot_eV/at" in log and "frames = 5" in log
    assert "trajectory: " in log
    with h5py.File(tmp_path / "run" / "trajectory.h5", "r") as f:
        assert f["spins"].compression == "gzip" and f["time"].compression == "gzip"


def test_run_config_compression_and_thermo_keys(tmp_path, capsys):
    cfg = _exchange_only(tmp_path, compression="lzf", thermo=0)
    assert main(["run", _write(tmp_path, cfg)]) == 0
    err = capsys.readouterr().err
    assert "Step" not in err
    with h5py.File(tmp_path / "run" / "trajectory.h5", "r") as f:
        assert f["positions"].compression == "lzf"
    cfg = _exchange_only(tmp_path, compression=4, output=str(tmp_path / "run4"))
    assert main(["run", _write(tmp_path, cfg), "--thermo", "10"]) == 0
    err = capsys.readouterr().err
    assert [int(r.split()[0]) for r in err.splitlines() if r.split() and r.split()[0].isdigit()] == [0, 10, 20, 30, 40]
    with h5py.File(tmp_path / "run4" / "trajectory.h5", "r") as f:
        assert (f["positions"].compression, f["positions"].compression_opts) == ("gzip", 4)
    for bad in ("zstd", 12, True):
        cfg = _exchange_only(tmp_path, compression=bad, output=str(tmp_path / "bad"))
        assert main(["run", _write(tmp_path, cfg, "bad.yaml")]) == 1
        assert "compression:" in capsys.readouterr().err
    from spinlat import config as C

    assert C.load({**_exchange_only(tmp_path), "compression": "none"})["compression"] is None
    with pytest.raises(ConfigError, match="thermo"):
        C.load({**_exchange_only(tmp_path), "thermo": -5})


def test_monte_carlo_run_is_summarised_in_sweeps(tmp_path, capsys):
    cfg = _exchange_only(tmp_path, integrator={"type": "MonteCarlo", "temperature": 300.0}, steps=30, every=3)
    assert main(["run", _write(tmp_path, cfg)]) == 0
    out, err = capsys.readouterr()
    assert "time_unit = sweep" in out and "sweeps = 30" in out and "drift" not in out
    assert "total_energy_fluctuation_eV_per_atom = " in out and "atom_sweeps_per_s = " in out
    assert "Sweep" in err
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["sweeps"] == 30 and "time_fs" not in summary and summary["energy_conserving"] is False
    assert main(["analyze", str(tmp_path / "run" / "trajectory.h5"), "--format", "text"]) == 0
    out = capsys.readouterr().out
    assert "sweeps = 30" in out and "drift" not in out
    assert main(["analyze", str(tmp_path / "run" / "trajectory.h5"), "--energy-conserving", "yes"]) == 0
    assert "energy_drift_eV_per_atom_per_ps" in json.loads(capsys.readouterr().out)


def test_minimize_and_search_results_go_to_stdout(tmp_path, capsys):
    cfg = _exchange_only(tmp_path, minimize={"spins": True, "tmax": 1e-6}, search={"starts": 2, "seed": 0})
    path = _write(tmp_path, cfg)
    assert main(["minimize", path]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("minimize: ") and "relaxed structure: " in out and "state: " in err
    assert main(["search", path]) == 0
    out, err = capsys.readouterr()
    assert "rank" in out and "distinct minima" in out and "potential: " in err and "rank" not in err


def test_importing_mace_prints_nothing_to_stdout():
    """mace-torch prints a note about cuequivariance at import; the commands' stdout stays clean."""
    code = "import spinlat.potentials.mmace.safe_imports"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "" and "cuequivariance" not in r.stderr.lower()


def test_yaml_example_keys_are_in_the_schema():
    from spinlat import config as C

    assert {"compression", "thermo"} <= set(C.RUN)
    text = C.__doc__[C.__doc__.index(".. code-block:: yaml"):]
    assert "compression: gzip" in text and "thermo: 100" in text


def test_train_results_to_stdout_epoch_table_to_stderr(tmp_path, capsys):
    import yaml

    model = dict(soc=False, r_max=3.5, max_ell=1, hidden_irreps="2x0e+2x1o", radial_MLP=[4], num_bessel=3,
                 correlation=1, MLP_irreps="2x0e")
    teacher = [{"teacher": {"system": "Fe", "n_configs": n, "seed": seed}} for n, seed in ((4, 1), (2, 2))]
    cfg = tmp_path / "train.yaml"
    cfg.write_text(yaml.safe_dump({"train": teacher[0], "test": teacher[1], "model": model, "output": "m.mmace",
                                   "training": {"epochs": 1, "batch_size": 2, "seed": 0}}))
    assert main(["train", str(cfg)]) == 0  # with progress: the epoch table is printed
    out, err = capsys.readouterr()
    assert out.splitlines() == [out.splitlines()[0], f"model written to {tmp_path / 'm.mmace'}"]
    assert out.startswith("test: E ") and "epoch" in err.lower() and "epoch" not in out.lower()


def test_train_names_the_model_without_dot_dot(tmp_path, capsys):
    """examples/train_config.yaml writes ``output: ../runs/fe_teacher.mmace``; spinlat train said
    ``model written to /repo/examples/../runs/fe_teacher.mmace``, and its refusal to overwrite named
    the same unresolved path."""
    import yaml

    model = dict(soc=False, r_max=3.5, max_ell=1, hidden_irreps="2x0e+2x1o", radial_MLP=[4], num_bessel=3,
                 correlation=1, MLP_irreps="2x0e")
    (tmp_path / "examples").mkdir()
    cfg = tmp_path / "examples" / "train.yaml"
    cfg.write_text(yaml.safe_dump({"train": {"teacher": {"system": "Fe", "n_configs": 2, "seed": 1}}, "model": model,
                                   "output": "../runs/m.mmace", "training": {"epochs": 1, "batch_size": 2, "seed": 0}}))
    assert main(["train", str(cfg), "--no-progress"]) == 0
    out, _ = capsys.readouterr()
    assert out.splitlines()[-1] == f"model written to {(tmp_path / 'runs' / 'm.mmace').resolve()}"
    assert (tmp_path / "runs" / "m.mmace").is_file() and (tmp_path / "runs" / "m.mmace.metrics.json").is_file()
    assert main(["train", str(cfg)]) == 1
    err = capsys.readouterr().err
    assert f"{(tmp_path / 'runs' / 'm.mmace').resolve()} already exists" in err and ".." not in err


def test_a_reader_that_leaves_the_pipe_early_gets_no_error(tmp_path, capsys):
    """``spinlat analyze X.h5 | head`` ended with ``spinlat analyze: error: [Errno 32] Broken pipe``;
    like other Unix tools it now stops quietly, status 141 (128 + SIGPIPE). The pipe's reader
    is closed before the command starts: every write meets it."""
    import os

    assert main(["run", _write(tmp_path, _exchange_only(tmp_path))]) == 0
    capsys.readouterr()
    read, write = os.pipe()
    os.close(read)
    try:
        out = subprocess.run([sys.executable, "-m", "spinlat", "analyze", str(tmp_path / "run" / "trajectory.h5")],
                             stdout=write, stderr=subprocess.PIPE, text=True, timeout=600)
    finally:
        os.close(write)
    assert out.returncode == 141 and out.stderr == "", out.stderr
