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


def test_minimize_and_search(tmp_path, capsys):
    cfg = _base(tmp_path, minimize={"spins": True, "tmax": 1e-6})
    cfg["potential"] = cfg["potential"][1:]
    assert main(["minimize", _write(tmp_path, cfg)]) == 0
    relaxed = sl.io.read_extxyz(str(tmp_path / "run" / "relaxed.extxyz"))[0]
    st = sl.State.from_ase(relaxed)
    assert np.allclose(st.spins[:, 2], 1.0, atol=1e-6)  # ferromagnet along the field
    cfg = _base(tmp_path, search={"starts": 3, "seed": 0, "workers": 1})
    cfg["potential"] = cfg["potential"][1:]
    assert main(["search", _write(tmp_path, cfg)]) == 0
    table = (tmp_path / "run" / "minima.txt").read_text().splitlines()
    assert table[0].split()[-1] == "degeneracy" and "rank" in table[0]
    # the field along z keeps no time reversal alone: the ferromagnet along it has no symmetry copy
    assert [int(line.split()[-1]) for line in table[1:]] == [1]
    cfg = _base(tmp_path, search={"starts": 3, "seed": 0, "workers": 1, "symmetry": "yes"})
    cfg["potential"] = cfg["potential"][1:]
    capsys.readouterr()
    assert main(["search", _write(tmp_path, cfg), "--overwrite"]) == 1
    assert "search.symmetry" in capsys.readouterr().err


# ------------------------------------------------------------------ no silent overwrite, restart
def _frames(path):
    with sl.io.Trajectory(str(path)) as t:
        return {k: t.array(k) for k in ("step", "positions", "velocities", "spins", "total_energy")}


def test_a_second_run_into_the_same_directory_is_refused(tmp_path, capsys):
    cfg = _write(tmp_path, _base(tmp_path))
    assert main(["run", cfg, "--no-progress"]) == 0
    traj = tmp_path / "run" / "trajectory.h5"
    before = traj.read_bytes()
    capsys.readouterr()
    assert main(["run", cfg, "--steps", "5", "--no-progress"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "already holds trajectory.h5" in err and "--overwrite" in err and "--restart" in err
    assert traj.read_bytes() == before  # the first run's data are intact
    assert main(["run", cfg, "--steps", "5", "--overwrite", "--no-progress"]) == 0
    assert _frames(traj)["step"].tolist() == [0, 5]
    assert main(["run", cfg, "--overwrite", "--restart"]) == 1


def test_overwrite_stopped_before_its_first_frame_puts_the_old_run_back(tmp_path, capsys, monkeypatch):
    """--overwrite deleted the old trajectory, summary and plot before the new run had set up: a
    Ctrl-C while its kernels compiled (a minute in a fresh clone) or an error in its set-up left
    neither run. The old outputs now wait in .replaced until the new run's first frame is on disk."""
    cfg = _write(tmp_path, _base(tmp_path))
    assert main(["run", cfg, "--no-progress"]) == 0
    run = tmp_path / "run"
    names = ("trajectory.h5", "summary.json", "overview.png", "log.txt", "config.yaml", "inputs.json")
    old = {name: (run / name).read_bytes() for name in names}

    def stopped(self, steps):
        raise KeyboardInterrupt   # before step 0: nothing written yet

    with monkeypatch.context() as m:
        m.setattr(sl.Simulation, "run", stopped)
        assert main(["run", cfg, "--steps", "5", "--overwrite", "--no-progress"]) == 130
    assert {name: (run / name).read_bytes() for name in names} == old
    assert not (run / ".replaced").exists()
    assert "the outputs --overwrite was to replace are back" in capsys.readouterr().err
    assert main(["run", cfg, "--steps", "5", "--overwrite", "--no-progress"]) == 0   # a run that ends replaces
    assert _frames(run / "trajectory.h5")["step"].tolist() == [0, 5] and not (run / ".replaced").exists()


def test_restart_continues_to_the_total_steps_like_an_uninterrupted_run(tmp_path, capsys):
    """NVE is deterministic: 20 steps, then --restart to the config's 40, equals 40 steps in one
    go (up to the round-off of rebuilt neighbour lists)."""
    cfg = _write(tmp_path, _base(tmp_path))
    whole = _base(tmp_path, output=str(tmp_path / "whole"))
    assert main(["run", _write(tmp_path, whole, "whole.yaml"), "--no-progress"]) == 0
    assert main(["run", cfg, "--steps", "20", "--no-progress"]) == 0
    assert _frames(tmp_path / "run" / "trajectory.h5")["step"].tolist() == [0, 10, 20]
    assert main(["run", cfg, "--restart", "--no-progress"]) == 0
    a, b = _frames(tmp_path / "run" / "trajectory.h5"), _frames(tmp_path / "whole" / "trajectory.h5")
    assert a["step"].tolist() == b["step"].tolist() == [0, 10, 20, 30, 40]
    for k in ("positions", "velocities", "spins"):
        np.testing.assert_allclose(a[k], b[k], rtol=0, atol=1e-10, err_msg=k)
    np.testing.assert_allclose(a["total_energy"], b["total_energy"], rtol=0, atol=1e-9)
    log = (tmp_path / "run" / "log.txt").read_text()
    assert "restart from step 20" in log and log.count("spinlat run:") == 2  # the log is appended to
    # at the total already: nothing to do (the last run's timing stays in the summary); a changed
    # integrator is refused; no run: refused
    timing = {k: v for k, v in json.loads((tmp_path / "run" / "summary.json").read_text()).items()
              if k in ("wall_s", "atom_steps_per_s")}
    assert len(timing) == 2 and timing["atom_steps_per_s"] > 0
    assert main(["run", cfg, "--restart", "--no-progress"]) == 0
    assert _frames(tmp_path / "run" / "trajectory.h5")["step"].tolist() == [0, 10, 20, 30, 40]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert {k: summary[k] for k in timing} == timing
    # steps below the file's: it said "0 steps to reach 20", as if step 20 were ahead
    assert main(["run", cfg, "--restart", "--steps", "20", "--no-progress"]) == 0
    assert _frames(tmp_path / "run" / "trajectory.h5")["step"].tolist() == [0, 10, 20, 30, 40]
    assert "is at step 40, past steps: 20; nothing to run" in (tmp_path / "run" / "log.txt").read_text()
    capsys.readouterr()
    changed = _base(tmp_path, integrator={"type": "SpinLatticeNVE", "dt": 0.1})
    assert main(["run", _write(tmp_path, changed), "--restart", "--steps", "60"]) == 1
    assert "integrator: differs from the run being restarted" in capsys.readouterr().err
    assert main(["run", cfg, "--restart", "-o", str(tmp_path / "none")]) == 1
    assert "--restart:" in capsys.readouterr().err


def test_restart_refuses_a_potential_file_that_changed_since_the_run_started(tmp_path, capsys):
    """A retrained model or an edited EAM table under the same path: --restart continued the run
    with another potential, silently. inputs.json keeps the SHA-256 of the files; a changed one
    is refused naming the key and the file, an unchanged one restarts."""
    import shutil

    eam = tmp_path / "Fe.eam.fs"
    shutil.copyfile(EAM_FE, eam)
    cfg = _base(tmp_path, steps=4, every=2)
    cfg["potential"][0]["path"] = "Fe.eam.fs"           # relative to the config
    cfg = _write(tmp_path, cfg)
    assert main(["run", cfg, "--steps", "2", "--no-progress"]) == 0
    inputs = json.loads((tmp_path / "run" / "inputs.json").read_text())
    assert inputs["potential[0].path"]["path"] == str(eam)
    assert main(["run", cfg, "--restart", "--steps", "4", "--no-progress"]) == 0
    eam.write_text(eam.read_text() + "\n")                # same path, other content
    capsys.readouterr()
    assert main(["run", cfg, "--restart", "--steps", "6", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "potential[0].path" in err and str(eam) in err and "changed" in err
    assert _frames(tmp_path / "run" / "trajectory.h5")["step"].tolist() == [0, 2, 4]


def test_a_run_killed_before_its_first_frame_says_how_to_start_again(tmp_path, capsys):
    """A SIGKILL before the first flush leaves a trajectory with no frame: plain run refuses to
    replace it, --restart said only 'holds no frame' (now: start afresh with --overwrite), and
    --overwrite runs."""
    cfg = _write(tmp_path, _base(tmp_path))
    (tmp_path / "run").mkdir()
    st = sl.State([[0, 0, 0]], ["Fe"], moments=[2.0])
    sl.io.TrajectoryWriter(str(tmp_path / "run" / "trajectory.h5"), st).close()  # what the kill leaves
    capsys.readouterr()
    assert main(["run", cfg, "--restart", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds no frame" in err and "spinlat run --overwrite" in err, err
    assert main(["run", cfg, "--overwrite", "--no-progress"]) == 0
    assert _frames(tmp_path / "run" / "trajectory.h5")["step"].tolist() == [0, 10, 20, 30, 40]


def test_restart_after_a_potential_file_changed_is_refused(tmp_path, capsys):
    """The config names the same EAM file, but its tables were edited since the run started: the
    trajectory's parameter digests tell, and --restart refuses (as for a changed config) instead
    of appending frames of another model; with the file put back it continues."""
    eam = tmp_path / "Fe.eam.fs"
    text = EAM_FE.read_text() if hasattr(EAM_FE, "read_text") else open(EAM_FE).read()
    eam.write_text(text)
    cfg = _base(tmp_path, steps=20)
    cfg["potential"] = [{"type": "EAM", "path": str(eam)}] + cfg["potential"][1:]
    path = _write(tmp_path, cfg)
    assert main(["run", path, "--steps", "10", "--no-progress"]) == 0
    old = "-1.73205399300000E-0001"
    assert text.count(old) == 1
    eam.write_text(text.replace(old, "-1.73205399300001E-0001"))
    capsys.readouterr()
    assert main(["run", path, "--restart", "--no-progress"]) == 1
    err = capsys.readouterr().err  # inputs.json's SHA-256 of the file tells first, naming the file
    assert err.count("\n") == 1 and f"spinlat run: error: potential[0].path: {eam} is not the file" in err, err
    (tmp_path / "run" / "inputs.json").unlink()  # a run directory from before inputs.json
    assert main(["run", path, "--restart", "--no-progress"]) == 1
    err = capsys.readouterr().err  # the trajectory's parameter digests tell then
    assert err.count("\n") == 1 and "spinlat run: error: potential: the run being restarted" in err
    assert "other parameters in potential term 1, EAM('Fe.eam.fs', format='fs')" in err
    assert _frames(tmp_path / "run" / "trajectory.h5")["step"].tolist() == [0, 10]  # untouched
    eam.write_text(text)
    assert main(["run", path, "--restart", "--no-progress"]) == 0
    assert _frames(tmp_path / "run" / "trajectory.h5")["step"].tolist() == [0, 10, 20]


def test_sigterm_flushes_every_frame_reached_and_the_run_restarts(tmp_path):
    """A batch scheduler ends a job with SIGTERM: the process died at once (status -15), losing the
    up to flush_every frames held in memory. Now SIGTERM is handled like Ctrl-C: every frame
    reached is on disk, one line says so, status 143, and --restart continues from the last."""
    import os
    import signal
    import subprocess
    import sys

    cfg = _write(tmp_path, _base(tmp_path, steps=100000, every=1))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "spinlat", "run", cfg, "--no-progress", "--thermo", "1"],
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
    reached, seen = -1, []
    try:
        for line in proc.stderr:
            seen.append(line)
            fields = line.split()
            if fields and fields[0].isdigit():
                reached = int(fields[0])
                if reached >= 25:  # frames 0..25 reached; the writer flushes every 10 frames
                    break
        assert reached >= 25, "".join(seen[-20:])
        proc.send_signal(signal.SIGTERM)
        rest = proc.stderr.read()
        assert proc.wait(timeout=600) == 143, "".join(seen[-5:]) + rest
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "spinlat run: terminated (SIGTERM)" in rest
    steps = _frames(tmp_path / "run" / "trajectory.h5")["step"].tolist()
    assert (f"run: interrupted; {tmp_path / 'run' / 'trajectory.h5'} holds {len(steps)} frames up to step {steps[-1]} "
            f"({len(steps)} written by this run): --restart continues from the last") in rest
    assert steps[-1] >= reached and steps == list(range(steps[-1] + 1))
    assert main(["run", _write(tmp_path, _base(tmp_path, steps=steps[-1] + 3, every=1)), "--restart",
                 "--no-progress"]) == 0
    assert _frames(tmp_path / "run" / "trajectory.h5")["step"].tolist() == list(range(steps[-1] + 4))


def test_a_failed_minimize_or_search_does_not_block_the_next_attempt(tmp_path, capsys):
    """minimize/search open their log and copy the config before the work; when the work then
    failed, the next attempt was refused ('already holds minimize.log from an earlier run') though
    no result existed. Only results block now; they still do."""
    bad = _write(tmp_path, _base(tmp_path, minimize={"spins": False}), "bad.yaml")
    assert main(["minimize", bad]) == 1
    assert "nothing to relax" in capsys.readouterr().err
    assert (tmp_path / "run" / "minimize.log").exists()
    good = _write(tmp_path, _base(tmp_path, minimize={"spins": True, "max_steps": 5}), "good.yaml")
    assert main(["minimize", good]) in (0, 1)  # converged or not: it ran and wrote its result
    assert (tmp_path / "run" / "relaxed.extxyz").exists()
    assert "minimize.config.yaml" in {p.name for p in (tmp_path / "run").iterdir()}
    capsys.readouterr()
    assert main(["minimize", good]) == 1  # a result is there: refused
    assert "already holds relaxed.extxyz" in capsys.readouterr().err
    nonmag = _base(tmp_path, search={"starts": 2})
    nonmag["structure"]["moments"] = 0
    assert main(["search", _write(tmp_path, nonmag, "s0.yaml")]) == 1
    assert "ground_state: the state has no magnetic atoms" in capsys.readouterr().err
    assert main(["search", _write(tmp_path, _base(tmp_path, search={"starts": 2}), "s.yaml")]) == 0
    assert (tmp_path / "run" / "minima.txt").exists()


def test_minimize_and_search_keep_the_run_files_and_write_their_own(tmp_path, capsys):
    cfg = _base(tmp_path, minimize={"spins": True, "tmax": 1e-6}, search={"starts": 2, "seed": 0, "workers": 1})
    cfg["potential"] = cfg["potential"][1:]
    cfg["integrator"] = {"type": "LLG", "dt": 1.0, "damping": 0.1}
    path = _write(tmp_path, cfg)
    assert main(["run", path, "--no-progress"]) == 0
    run = tmp_path / "run"
    kept = {f: (run / f).read_bytes() for f in ("trajectory.h5", "log.txt", "config.yaml", "summary.json")}
    assert main(["minimize", path]) == 0
    assert main(["search", path]) == 0
    for f in ("relaxed.extxyz", "minimize.log", "minimize.config.yaml", "minima.txt", "minima.extxyz",
              "search.log", "search.config.yaml"):
        assert (run / f).exists(), f
    assert {f: (run / f).read_bytes() for f in kept} == kept
    capsys.readouterr()
    assert main(["minimize", path]) == 1
    assert "already holds relaxed.extxyz" in capsys.readouterr().err
    assert main(["search", path]) == 1
    assert main(["minimize", path, "--overwrite"]) == 0


def test_a_relaxed_structure_runs_with_its_moments(tmp_path):
    """minimize → relaxed.extxyz → run with structure: {file: ...}: the spins come from the file."""
    cfg = _base(tmp_path, minimize={"spins": True, "tmax": 1e-8})
    cfg["potential"] = [{"type": "BetheSlaterExchange", "cutoff": 3.4, "J1": -0.02726, "J2": 0.2171, "J3": 1.841},
                        {"type": "Zeeman", "B": [1.0, 0, 0]}]
    cfg["structure"]["temperature"] = 0
    assert main(["minimize", _write(tmp_path, cfg)]) == 0
    relaxed = sl.State.from_ase(sl.io.read_extxyz(tmp_path / "run" / "relaxed.extxyz")[0])
    assert relaxed.magnetic.all()
    follow = _base(tmp_path, structure={"file": str(tmp_path / "run" / "relaxed.extxyz")},
                   output=str(tmp_path / "follow"), steps=10)
    follow["integrator"] = {"type": "LLG", "dt": 0.5, "damping": 0.1}
    follow["potential"] = cfg["potential"]
    assert main(["run", _write(tmp_path, follow, "follow.yaml"), "--no-progress"]) == 0
    assert "magnetic=16" in (tmp_path / "follow" / "log.txt").read_text()
    with sl.io.Trajectory(str(tmp_path / "follow" / "trajectory.h5")) as t:
        first = t[0]
    np.testing.assert_array_equal(first.spins, relaxed.spins)
    np.testing.assert_array_equal(first.moments, relaxed.moments)


# -------------------------------------------------------------------------- one-line errors
def _error_cases(tmp_path):
    (tmp_path / "bad.yaml").write_text("structure: {element: Fe\n")
    (tmp_path / "text.h5").write_text("not hdf5\n")
    st = sl.State([[0, 0, 0]], ["Fe"], moments=[2.0])
    sl.io.TrajectoryWriter(str(tmp_path / "empty.h5"), st).close()
    eam5 = _base(tmp_path)
    eam5["potential"] = [{"type": "EAM", "path": 5}]
    nofile = _base(tmp_path, structure={"file": "nowhere.extxyz"})
    return [
        ["analyze", str(tmp_path / "missing.h5")],
        ["analyze", str(tmp_path / "empty.h5")],
        ["analyze", str(tmp_path / "text.h5")],
        ["analyze", str(tmp_path)],
        ["run", str(tmp_path / "missing.yaml")],
        ["run", str(tmp_path / "bad.yaml")],
        ["run", _write(tmp_path, eam5, "eam5.yaml")],
        ["run", _write(tmp_path, nofile, "nofile.yaml")],
        ["run", _write(tmp_path, _base(tmp_path), "ok.yaml"), "--steps", "-1"],
        ["minimize", _write(tmp_path, _base(tmp_path, minimize={"fmax": "small"}), "m.yaml")],
        ["search", _write(tmp_path, _base(tmp_path, search={"workers": "many"}), "s.yaml")],
        ["train", str(tmp_path / "missing.yaml")],
        ["train", _write(tmp_path, {"train": "x.extxyz", "output": "m.mmace", "training": {"epochs": -1.5}}, "t.yaml")],
    ]


def test_every_user_error_is_one_line(tmp_path, capsys):
    for argv in _error_cases(tmp_path):
        capsys.readouterr()
        assert main(argv) == 1, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith(f"spinlat {argv[0]}: error: "), (argv, err)
        assert "Traceback" not in err


def test_usage_errors_are_one_line(capsys):
    for argv in (["run"], ["bogus"], ["analyze", "a.h5", "--bogus"], ["run", "c.yaml", "--steps", "many"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "error:" in err and "--help" in err, err


def test_an_unknown_option_is_named_by_its_subcommand(capsys):
    # was "spinlat: error: unrecognized arguments: --thermo (see spinlat --help)"
    for argv in (["minimize", "c.yaml", "--thermo"], ["analyze", "a.h5", "--bogus", "x"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
        extra = " ".join(argv[2:])
        assert capsys.readouterr().err == (f"spinlat {argv[0]}: error: unrecognized arguments: {extra} "
                                           f"(see spinlat {argv[0]} --help)\n")
    with pytest.raises(SystemExit):
        main(["--bogus", "run", "c.yaml"])
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error: unrecognized arguments: --bogus" in err, err


def test_debug_shows_the_traceback_and_bugs_are_not_hidden(tmp_path):
    from spinlat.cli import COMMANDS, register
    from spinlat.errors import InputError

    with pytest.raises(InputError, match="missing.h5 does not exist"):
        main(["--debug", "analyze", str(tmp_path / "missing.h5")])
    with pytest.raises(InputError):
        main(["analyze", str(tmp_path / "missing.h5"), "--debug"])

    def add_arguments(parser):
        parser.add_argument("x")

    def run(args):
        return 1 // 0

    register("crash", "a command with a bug", add_arguments, run)
    try:
        with pytest.raises(ZeroDivisionError):
            main(["crash", "1"])
    finally:
        COMMANDS.pop("crash")


def test_register_adds_a_command_as_documented(capsys):
    from spinlat.cli import COMMANDS, register

    def add_arguments(parser):
        parser.add_argument("path")

    def run(args) -> int:
        print(f"hello {args.path}")
        return 0

    register("hello", "say hello", add_arguments, run)
    try:
        assert main(["hello", "world"]) == 0
        assert capsys.readouterr().out == "hello world\n"
    finally:
        COMMANDS.pop("hello")


def test_the_installed_command_prints_one_line(tmp_path):
    import os
    import subprocess
    import sys

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    res = subprocess.run([sys.executable, "-m", "spinlat.cli", "analyze", str(tmp_path / "missing.h5")],
                         capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode == 1
    assert res.stderr == f"spinlat analyze: error: trajectory {tmp_path / 'missing.h5'} does not exist\n"


def test_analyze_of_a_file_that_is_no_trajectory_says_how_to_make_one(tmp_path, capsys):
    st = sl.State([[0, 0, 0], [1.4, 1.4, 1.4]], ["Fe", "Fe"], cell=np.eye(3) * 2.8, pbc=True, moments=[2.2, 2.2])
    sl.io.write_extxyz(tmp_path / "run.extxyz", [st])
    sl.io.write_lammps(tmp_path / "lmp", st, sl.potentials.EAM(EAM_FE))
    (tmp_path / "d.lammpstrj").write_text("ITEM: TIMESTEP\n0\n")
    (tmp_path / "text.h5").write_text("not hdf5\n")
    for name, what in [("run.extxyz", "not an HDF5 file"), ("lmp/data.spinlat", "a LAMMPS data file"),
                       ("d.lammpstrj", "a LAMMPS dump file")]:
        capsys.readouterr()
        assert main(["analyze", str(tmp_path / name)]) == 1
        err = capsys.readouterr().err
        stem = name.split("/")[-1].rsplit(".", 1)[0]
        assert f"cannot be opened as an HDF5 trajectory: it is {what}; `spinlat convert " in err, err
        assert f" {stem}.h5` turns a LAMMPS spin dump" in err, err
    assert main(["analyze", str(tmp_path / "text.h5")]) == 1
    assert capsys.readouterr().err.endswith("cannot be opened as an HDF5 trajectory: it is not an HDF5 file\n")


@pytest.mark.usefixtures("default_signal_handlers")
def test_minimize_interrupted_writes_the_structure_reached(tmp_path, capsys, monkeypatch):
    """SIGTERM during `spinlat minimize` (positions and spins: the Python loop) lost the relaxation;
    now the structure of the iteration reached is written to interrupted.extxyz, status 143."""
    import os
    import signal

    from spinlat.potentials import EAM

    compute, calls = EAM.compute, []

    def counting(self, *args, **kw):
        calls.append(1)
        if len(calls) == 5:
            os.kill(os.getpid(), signal.SIGTERM)
        return compute(self, *args, **kw)

    monkeypatch.setattr(EAM, "compute", counting)
    cfg = _base(tmp_path, minimize={"spins": False, "positions": True, "cell": True, "smax": 1e-8})
    cfg["potential"] = cfg["potential"][:1]
    assert main(["minimize", _write(tmp_path, cfg)]) == 128 + signal.SIGTERM
    err = capsys.readouterr().err
    assert "interrupted after" in err and "interrupted.extxyz" in err and "terminated (SIGTERM)" in err, err
    reached = sl.State.from_ase(sl.io.read_extxyz(str(tmp_path / "run" / "interrupted.extxyz"))[0])
    assert len(reached) == 16 and not (tmp_path / "run" / "relaxed.extxyz").exists()


@pytest.mark.usefixtures("default_signal_handlers")
def test_a_minimisation_that_converged_before_the_interrupt_is_written_as_relaxed(tmp_path, capsys, monkeypatch):
    """Spins only: the compiled kernel runs a chunk of iterations (here the whole minimisation),
    so a SIGTERM during it stops the command after a converged minimisation; `spinlat minimize` wrote it as interrupted.extxyz, "not a
    minimum". Now it is relaxed.extxyz, and the command still exits with 143."""
    import os
    import signal

    from spinlat.integrators import spin_lbfgs

    kernel = spin_lbfgs.lbfgs_oso_steps

    def signalling(*args):
        os.kill(os.getpid(), signal.SIGTERM)  # held back until the kernel returns
        return kernel(*args)

    monkeypatch.setattr(spin_lbfgs, "lbfgs_oso_steps", signalling)
    cfg = _base(tmp_path, minimize={"tmax": 1e-6})
    cfg["potential"] = cfg["potential"][1:]  # exchange and field: the compiled kernel
    assert main(["minimize", _write(tmp_path, cfg)]) == 128 + signal.SIGTERM
    err = capsys.readouterr().err
    assert "the minimisation had converged when the interrupt took effect" in err, err
    relaxed = sl.State.from_ase(sl.io.read_extxyz(str(tmp_path / "run" / "relaxed.extxyz"))[0])
    assert not (tmp_path / "run" / "interrupted.extxyz").exists()
    pot = sl.potentials.BetheSlaterExchange(3.4, 0.02726, 0.2171, 1.841) + sl.potentials.Zeeman([0, 0, 1.0])
    assert np.max(np.linalg.norm(sl.potentials.spin_torques(relaxed, pot.compute(relaxed)), axis=1)) < 2e-6


def test_minimize_reports_the_longitudinal_residual_of_relaxed_magnitudes(tmp_path, capsys):
    """With magnitudes: true the residual that decides convergence is the longitudinal field
    h·s (eV/μB): the summary and the not-converged warning name it with its value (before,
    only the torque and the force were printed: 0 and 0 for a stuck magnitude relaxation)."""
    cfg = _base(tmp_path, minimize={"spins": False, "magnitudes": True, "max_steps": 1})
    cfg["structure"].update(spins=[0, 0, 1], repeat=[1, 1, 1])
    cfg["potential"] = [{"type": "Landau", "a": -0.5, "b": 0.05}]   # minimum at |m| = sqrt(5) μB
    assert main(["minimize", _write(tmp_path, cfg)]) == 1
    out = capsys.readouterr().out
    line = next(s for s in out.splitlines() if "max longitudinal field" in s)
    value = float(line.split("max longitudinal field ")[1].split()[0])
    st = sl.State.from_ase(sl.io.read_extxyz(str(tmp_path / "run" / "relaxed.extxyz"))[0])
    h = sl.potentials.Landau(-0.5, 0.05).compute(st, magnetic_forces=True).magnetic_forces
    assert value == pytest.approx(np.max(np.abs(np.sum(h * st.spins, axis=1))), rel=2e-3)
    assert value > 1e-3 and "eV/μB" in line


def test_warnings_are_one_line_naming_the_command(capsys, monkeypatch):
    """Warnings printed in Python's form (library file, line number and source line) looked like a
    crash; now one line 'spinlat COMMAND: warning: ...', the category named unless a plain
    UserWarning; --debug keeps Python's form."""
    import warnings

    from spinlat import cli
    from spinlat.errors import ConvergenceWarning

    def warns(args):
        warnings.warn("the structure has\ntwo lines", UserWarning)
        warnings.warn("not converged", ConvergenceWarning)
        return 0

    monkeypatch.setattr(cli, "COMMANDS", {})
    cli.register("warns", "warns twice", lambda p: None, warns)
    assert cli.main(["warns"]) == 0
    err = capsys.readouterr().err
    assert err.splitlines() == ["spinlat warns: warning: the structure has two lines",
                                "spinlat warns: warning: not converged (ConvergenceWarning)"], err
    with pytest.warns(UserWarning, match="two lines"):  # --debug: Python's own warning machinery
        assert cli.main(["--debug", "warns"]) == 0
    assert "spinlat warns: warning" not in capsys.readouterr().err


def test_a_relative_output_is_printed_without_dot_dot(tmp_path, capsys):
    """`output: ../runs/x` of a config in examples/ was printed as examples/../runs/x."""
    (tmp_path / "examples").mkdir()
    cfg = _base(tmp_path, minimize={"spins": True, "tmax": 1e-6})
    cfg["potential"] = cfg["potential"][1:]
    cfg["output"] = "../runs/relaxed"
    path = tmp_path / "examples" / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["minimize", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"relaxed structure: {tmp_path / 'runs' / 'relaxed' / 'relaxed.extxyz'}" in out and ".." not in out


@pytest.mark.parametrize("argv, message", [
    (["run", "{h5}"], "{h5} is an HDF5 file (a trajectory), not a YAML config: `spinlat analyze {h5}`"),
    (["minimize", "{h5}"], "{h5} is an HDF5 file (a trajectory), not a YAML config"),
    (["export", "{h5}", "--lammps", "lmp"], "{h5} is an HDF5 file (a trajectory), not a YAML config"),
    (["analyze", "{yaml}"], "{yaml} is a YAML config, not a trajectory: `spinlat run {yaml}` runs it"),
    (["convert", "{yaml}", "out.extxyz"], "{yaml} is a YAML config, not a trajectory: `spinlat run {yaml}`"),
])
def test_a_trajectory_for_a_config_and_the_reverse_are_named(tmp_path, capsys, argv, message):
    """`spinlat run runs/demo/trajectory.h5` said "cannot be read ('utf-8' codec can't decode byte
    0x89 ...)"; `spinlat analyze examples/demo_bccfe.yaml` suggested `spinlat convert
    demo_bccfe.yaml demo_bccfe.h5`; `spinlat convert CONFIG.yaml OUT.extxyz` that one side must be
    a trajectory. Each now names what the file is and the command that reads it."""
    import h5py

    h5, yml = tmp_path / "trajectory.h5", tmp_path / "demo.yaml"
    with h5py.File(h5, "w") as f:
        f["x"] = 1
    yml.write_text("steps: 10\n")
    fill = {"h5": str(h5), "yaml": str(yml)}
    assert main([a.format(**fill) for a in argv]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"spinlat {argv[0]}: error: " + message.format(**fill)), err
    assert err.count("\n") == 1
    assert not (tmp_path / "out.extxyz").exists() and not (tmp_path / "lmp").exists()
