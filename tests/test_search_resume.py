"""`spinlat search --restart`: an interrupted ground-state search (Ctrl-C / SIGTERM, or a kill -9)
continues from the starts it saved, with the same seeds, and ends with the minima of the
uninterrupted search; a config of another search is refused (fault of round 13: a killed search
had to start over)."""

from pathlib import Path

import numpy as np
import pytest
import yaml
from ase.io import read

from spinlat.cli import main
from spinlat.cli import search as cli_search

_SAVE = cli_search._save_start


def _config(tmp_path, out, **search):
    cfg = {"structure": {"crystal": "bcc", "element": "Fe", "a": 2.8665, "repeat": [2, 2, 2], "moments": 2.2},
           "potential": [{"type": "BetheSlaterExchange", "cutoff": 3.4, "J1": 0.02726, "J2": 0.2171, "J3": 1.841},
                         {"type": "UniaxialAnisotropy", "K": 1e-4, "axis": [0, 0, 1]},
                         {"type": "Zeeman", "B": [0, 0, 0.5]}],
           "output": str(tmp_path / out), "search": {"starts": 6, "seed": 3, "tmax": 1e-8, **search}}
    path = tmp_path / f"{out}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


class _Killed(BaseException):
    """What a kill -9 does to the search: it stops where it is, nothing else runs (not an
    Exception, so that nothing catches it on the way out)."""


def _stopping_after(monkeypatch, n, raise_):
    """Save starts as the CLI does, then raise ``raise_`` once ``n`` are saved; returns the list
    of the starts saved."""
    saved = []

    def save(progress, k, r):
        _SAVE(progress, k, r)
        saved.append(k)
        if len(saved) == n:
            raise raise_

    monkeypatch.setattr(cli_search, "_save_start", save)
    return saved


def _result(out):
    table = [line for line in (out / "minima.txt").read_text().splitlines() if not line.startswith("#")]
    frames = read(out / "minima.extxyz", index=":")
    return table, [f.get_initial_magnetic_moments() for f in frames]


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    """The uninterrupted search's minima (table and moments)."""
    tmp = tmp_path_factory.mktemp("whole")
    assert main(["search", _config(tmp, "whole")]) == 0
    assert not (tmp / "whole" / cli_search.PROGRESS).exists()  # nothing left to resume
    return _result(tmp / "whole")


@pytest.mark.parametrize("stop", [_Killed(), KeyboardInterrupt()], ids=["kill -9", "Ctrl-C"])
def test_an_interrupted_search_resumes_to_the_uninterrupted_result(tmp_path, monkeypatch, capsys, whole, stop):
    cfg = _config(tmp_path, "s")
    saved = _stopping_after(monkeypatch, 2, stop)
    if isinstance(stop, _Killed):
        with pytest.raises(_Killed):
            main(["search", cfg])
        assert not (tmp_path / "s" / "minima.txt").exists()
    else:
        assert main(["search", cfg]) == 130
        assert (tmp_path / "s" / "minima.txt").read_text().startswith("# interrupted after 2 of 6 starts")
    assert saved == [0, 1]
    capsys.readouterr()
    assert main(["search", cfg]) == 1  # a new search would replace the interrupted one
    assert "or --restart to continue an interrupted search" in capsys.readouterr().err
    resumed = _stopping_after(monkeypatch, 100, RuntimeError())
    assert main(["search", cfg, "--restart"]) == 0
    assert resumed == [2, 3, 4, 5]  # the finished starts are not run again
    table, moments = _result(tmp_path / "s")
    assert table == whole[0]
    assert len(moments) == len(whole[1]) and all(np.array_equal(a, b) for a, b in zip(moments, whole[1]))
    assert not (tmp_path / "s" / cli_search.PROGRESS).exists()
    assert main(["search", cfg, "--restart"]) == 1  # a finished search has nothing to continue
    assert "holds no interrupted search" in capsys.readouterr().err


def test_a_restart_with_another_search_is_refused(tmp_path, monkeypatch, capsys):
    _stopping_after(monkeypatch, 1, _Killed())
    with pytest.raises(_Killed):
        main(["search", _config(tmp_path, "s")])
    for change, message in (({"seed": 4}, "search.seed: 4 differs from the search being restarted (3"),
                            ({"tmax": 1e-7}, "search.tmax")):
        assert main(["search", _config(tmp_path, "s", **change), "--restart"]) == 1
        assert message in capsys.readouterr().err
    cfg = yaml.safe_load(open(_config(tmp_path, "s")))
    cfg["potential"][2]["B"] = [0, 0, 0.6]
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump(cfg))
    assert main(["search", str(other), "--restart"]) == 1
    assert "potential: differs from the search being restarted" in capsys.readouterr().err
    cfg["potential"][2]["B"] = [0, 0, 0.5]
    cfg["structure"]["a"] = 2.87
    other.write_text(yaml.safe_dump(cfg))
    assert main(["search", str(other), "--restart"]) == 1
    assert "structure: differs from the search being restarted" in capsys.readouterr().err
    assert main(["search", _config(tmp_path, "s"), "--restart", "--overwrite"]) == 1
    assert "exclude each other" in capsys.readouterr().err
    monkeypatch.setattr(cli_search, "_save_start", _SAVE)
    assert main(["search", _config(tmp_path, "s", workers=1, starts=7), "--restart"]) == 0  # free options


def test_ground_state_takes_the_finished_starts_and_records_the_others():
    """The library side: finished starts are not run again, the result is the whole search's."""
    import spinlat as sl
    from spinlat.errors import InputError
    from spinlat.potentials import UniaxialAnisotropy, Zeeman
    from spinlat.search import ground_state

    st = sl.State(np.arange(3)[:, None] * [10.0, 0, 0], ["Fe"] * 3, moments=[2.0] * 3)
    pot = Zeeman([0, 0, 0.3]) + UniaxialAnisotropy(1e-4, [1, 0, 0])
    seen = {}
    whole = ground_state(st, pot, starts=5, seed=1, record=lambda k, r: seen.__setitem__(k, r))
    assert sorted(seen) == list(range(5))
    rest = []
    again = ground_state(st, pot, starts=5, seed=1, finished={k: seen[k] for k in (0, 3)},
                         record=lambda k, r: rest.append(k))
    assert rest == [1, 2, 4]
    assert [(m.energy, m.count, m.starts) for m in again] == [(m.energy, m.count, m.starts) for m in whole]
    assert all(np.array_equal(a.state.spins, b.state.spins) for a, b in zip(again, whole))
    with pytest.raises(InputError, match="finished start 7 is not a start index"):
        ground_state(st, pot, starts=5, finished={7: seen[0]})


_KILLED_RUNNER = """
import sys
from spinlat.cli import main
from spinlat.cli import search as cli_search

save = cli_search._save_start


def save_then_wait(progress, k, r):
    save(progress, k, r)
    if k == 2:  # three starts on disk: say so, and wait to be killed
        print("three saved", flush=True)
        sys.stdin.readline()


cli_search._save_start = save_then_wait
main(["search", sys.argv[1]])
"""


def test_a_search_killed_with_sigkill_resumes(tmp_path, whole):
    """A real kill -9 (no handler runs): the three starts saved are kept and not run again."""
    import os
    import subprocess
    import sys

    cfg = _config(tmp_path, "s")
    script = tmp_path / "runner.py"
    script.write_text(_KILLED_RUNNER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1]),
                                                        os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, str(script), cfg], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env=env, text=True)
    try:
        line = proc.stdout.readline()  # blocks until the runner has saved three starts (or ended)
        assert line.strip() == "three saved", line
        proc.kill()  # SIGKILL
    finally:
        proc.wait()
        proc.stdout.close()
        proc.stdin.close()
    progress = tmp_path / "s" / cli_search.PROGRESS
    assert sorted(p.name for p in progress.iterdir()) == ["search.json", "start-000000.npz", "start-000001.npz",
                                                          "start-000002.npz"]
    assert not (tmp_path / "s" / "minima.txt").exists()
    assert main(["search", cfg, "--restart"]) == 0
    table, moments = _result(tmp_path / "s")
    assert table == whole[0] and all(np.array_equal(a, b) for a, b in zip(moments, whole[1]))
