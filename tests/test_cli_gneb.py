"""``spinlat gneb CONFIG``: endpoints from files and from search results, outputs, config errors."""

import json

import pytest
import yaml

import spinlat as sl
from spinlat.cli import main
from spinlat.config import check_gneb_config
from spinlat.errors import ConfigError

K, B, MU = 1e-3, 3.0, 2.2  # eV, T (along −z), μB
POTENTIAL = [{"type": "UniaxialAnisotropy", "K": K, "axis": [0, 0, 1]}, {"type": "Zeeman", "B": [0, 0, -B]}]


def _write(tmp_path, cfg, name="gneb.yaml"):
    p = tmp_path / name
    p.write_text(yaml.safe_dump(cfg))
    return str(p)


def _endpoints(tmp_path):
    a = sl.State([[0, 0, 0]], ["Fe"], moments=[MU], spins=[[0, 0, 1]])
    sl.io.write_extxyz(tmp_path / "up.extxyz", [a])
    sl.io.write_extxyz(tmp_path / "down.extxyz", [a.copy(spins=[[0, 0, -1]])])


def test_gneb_from_files_writes_path_plot_and_summary(tmp_path, capsys):
    _endpoints(tmp_path)
    cfg = {"potential": POTENTIAL, "output": "run",
           "gneb": {"initial": "up.extxyz", "final": {"file": "down.extxyz", "index": 0}, "images": 7,
                    "tol": 1e-9}}
    path = _write(tmp_path, cfg)
    assert main(["gneb", path]) == 0
    run = tmp_path / "run"
    for f in ("path.h5", "path.extxyz", "energy.png", "summary.json", "log.txt", "config.yaml"):
        assert (run / f).exists(), f
    h = MU * sl.units.MU_B * B / (2 * K)
    s = json.loads((run / "summary.json").read_text())
    assert s["converged"] and s["barrier_eV"] == pytest.approx(K * (1 - h) ** 2, rel=1e-6)
    assert s["max_force_units"] == {"spins": "eV/rad"}
    with sl.io.Trajectory(run / "path.h5") as tr:
        assert len(tr) == 7 and tr.attrs["integrator"] == "gneb"
        assert tr.attrs["metadata"]["gneb"]["saddle"] == s["saddle"]
    assert len(sl.io.read_extxyz(run / "path.extxyz")) == 7
    assert "barrier" in (run / "log.txt").read_text()
    # a second run does not replace the first unless asked
    assert main(["gneb", path]) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert main(["gneb", path, "--overwrite"]) == 0
    # restart from the written band
    cfg["gneb"] = {"path": "run/path.h5", "tol": 1e-9}
    assert main(["gneb", _write(tmp_path, cfg, "again.yaml"), "-o", str(tmp_path / "again")]) == 0
    s2 = json.loads((tmp_path / "again" / "summary.json").read_text())
    assert s2["iterations"] <= 2 and s2["barrier_eV"] == pytest.approx(s["barrier_eV"], rel=1e-9)


def test_gneb_between_search_minima(tmp_path):
    # spinlat search finds the two minima (along and against the field); gneb joins rank 1 → rank 0
    search = {"structure": {"crystal": "sc", "element": "Fe", "a": 3.0, "repeat": 1, "moments": MU,
                            "spins": "random"},
              "potential": POTENTIAL, "output": str(tmp_path / "search"), "seed": 0,
              "search": {"starts": 6, "seed": 0, "workers": 1, "tmax": 1e-9}}
    assert main(["search", _write(tmp_path, search, "search.yaml")]) == 0
    cfg = {"potential": POTENTIAL, "output": str(tmp_path / "gneb"),
           "gneb": {"initial": {"search": "search", "rank": 1}, "final": {"search": "search/minima.extxyz"},
                    "images": 7, "tol": 1e-8}}
    assert main(["gneb", _write(tmp_path, cfg)]) == 0
    s = json.loads((tmp_path / "gneb" / "summary.json").read_text())
    h = MU * sl.units.MU_B * B / (2 * K)
    assert s["barrier_eV"] == pytest.approx(K * (1 - h) ** 2, rel=1e-6)
    assert s["energies_eV"][0] > s["energies_eV"][-1]  # from the metastable to the lowest minimum


@pytest.mark.parametrize("section, message", [
    ({"final": "down.extxyz"}, "gneb.initial"),
    ({"initial": "up.extxyz", "final": "missing.extxyz"}, "missing.extxyz"),
    ({"initial": "up.extxyz", "final": "down.extxyz", "images": 2}, "gneb.images"),
    ({"initial": ".", "final": "down.extxyz"}, "gneb.initial: file .* is a directory, not a file"),
    ({"initial": "up.extxyz", "final": "down.extxyz", "climbing": "yes"}, "gneb.climbing"),
    ({"initial": "up.extxyz", "final": "down.extxyz", "tol": -1}, "gneb.tol"),
    ({"initial": "up.extxyz", "final": "down.extxyz", "weights": {"spins": 2}}, "gneb.weights"),
    ({"initial": "up.extxyz", "final": "down.extxyz", "method": "newton"}, "gneb.method"),
    ({"initial": "up.extxyz", "final": "down.extxyz", "colour": 1}, "colour"),
    ({"initial": {"search": "s", "rank": -1}, "final": "down.extxyz"}, "gneb.initial.rank"),
    ({"initial": {"file": "up.extxyz", "frame": 1}, "final": "down.extxyz"}, "gneb.initial"),
])
def test_bad_gneb_config_names_the_key(tmp_path, section, message):
    _endpoints(tmp_path)
    with pytest.raises(ConfigError, match=message):
        check_gneb_config({"gneb": section}, tmp_path)
    assert main(["gneb", _write(tmp_path, {"potential": POTENTIAL, "gneb": section})]) == 1


def test_bad_endpoint_frame_is_named(tmp_path, capsys):
    _endpoints(tmp_path)
    cfg = {"potential": POTENTIAL, "output": str(tmp_path / "run"),
           "gneb": {"initial": {"file": "up.extxyz", "index": 3}, "final": "down.extxyz"}}
    assert main(["gneb", _write(tmp_path, cfg)]) == 1
    err = capsys.readouterr().err
    assert "gneb.initial" in err and "index 3" in err


def test_a_rank_beyond_the_minima_of_the_search_names_the_rank_and_the_minima(tmp_path, capsys):
    """{search: DIR, rank: 1} on a search that found one minimum said "frame index 1 is out of
    range" (of a file the user never named); now the rank and the number of minima are named."""
    _endpoints(tmp_path)
    (tmp_path / "s").mkdir()
    sl.io.write_extxyz(tmp_path / "s" / "minima.extxyz", [sl.State([[0, 0, 0]], ["Fe"], moments=[MU], spins=[[0, 0, 1]])])
    cfg = {"potential": POTENTIAL, "output": str(tmp_path / "run"),
           "gneb": {"initial": {"search": "s", "rank": 1}, "final": "down.extxyz"}}
    assert main(["gneb", _write(tmp_path, cfg)]) == 1
    err = capsys.readouterr().err
    assert "gneb.initial.rank: rank 1 asked, but the search found 1 minimum (rank 0)" in err
    assert "out of range" not in err
    cfg["gneb"]["initial"]["rank"] = 0  # the one minimum is read
    cfg["gneb"].update(images=7, tol=1e-8)
    assert main(["gneb", _write(tmp_path, cfg)]) == 0


def test_an_endpoint_from_an_interrupted_search_is_named_so(tmp_path, capsys):
    """`spinlat search` stopped by SIGTERM writes the minima of the starts finished (minima.txt
    says "# interrupted after k of n starts"); gneb took rank 0 of it as the lowest minimum without
    a word, and an empty result (no start finished) read as an unreadable file."""
    _endpoints(tmp_path)
    (tmp_path / "s").mkdir()
    sl.io.write_extxyz(tmp_path / "s" / "minima.extxyz", [])
    (tmp_path / "s" / "minima.txt").write_text("# interrupted after 0 of 8 starts: minima of the finished starts "
                                               "only\n")
    cfg = {"potential": POTENTIAL, "output": str(tmp_path / "run"),
           "gneb": {"initial": {"search": "s"}, "final": "down.extxyz", "images": 7, "tol": 1e-8}}
    assert main(["gneb", _write(tmp_path, cfg)]) == 1
    err = capsys.readouterr().err
    assert ("gneb.initial.rank: rank 0 asked, but the search found no minimum in" in err
            and "(it was interrupted after 0 of 8 starts)" in err)
    sl.io.write_extxyz(tmp_path / "s" / "minima.extxyz", [sl.State([[0, 0, 0]], ["Fe"], moments=[MU],
                                                                   spins=[[0, 0, 1]])])
    (tmp_path / "s" / "minima.txt").write_text("# interrupted after 1 of 8 starts: minima of the finished starts "
                                               "only\n")
    assert main(["gneb", _write(tmp_path, cfg), "--overwrite"]) == 0
    err = capsys.readouterr().err
    assert "warning: gneb.initial: the search in" in err and "was interrupted after 1 of 8 starts" in err
    assert "interrupted after 1 of 8 starts" in (tmp_path / "run" / "log.txt").read_text()


@pytest.mark.usefixtures("default_signal_handlers")
def test_gneb_interrupted_keeps_the_band_and_says_how_to_continue(tmp_path, capsys, monkeypatch):
    """SIGTERM (a batch scheduler's time limit) during `spinlat gneb` lost the band: now the
    band of the iteration reached is written (path.h5, summary.json with reason "interrupted"),
    the command exits with 143, and the written band continues to the converged barrier."""
    import os
    import signal

    from spinlat import transitions

    real = transitions.gneb

    def gneb_stopped_at_3(*args, callback=None, **kw):
        def cb(info):
            callback(info)
            if info["iteration"] == 3:
                os.kill(os.getpid(), signal.SIGTERM)
        return real(*args, callback=cb, **kw)

    monkeypatch.setattr(transitions, "gneb", gneb_stopped_at_3)
    _endpoints(tmp_path)
    cfg = {"potential": POTENTIAL, "output": "run",
           "gneb": {"initial": "up.extxyz", "final": "down.extxyz", "images": 7, "tol": 1e-9}}
    assert main(["gneb", _write(tmp_path, cfg), "--every", "1"]) == 128 + signal.SIGTERM
    err = capsys.readouterr().err
    assert "interrupted at iteration 3" in err and "terminated (SIGTERM)" in err, err
    s = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert s["reason"].startswith("interrupted") and s["iterations"] == 3 and not s["converged"]
    with sl.io.Trajectory(tmp_path / "run" / "path.h5") as tr:
        assert len(tr) == 7
    monkeypatch.setattr(transitions, "gneb", real)
    cfg["gneb"] = {"path": "run/path.h5", "tol": 1e-9}
    assert main(["gneb", _write(tmp_path, cfg, "again.yaml"), "--overwrite"]) == 0
    s2 = json.loads((tmp_path / "run" / "summary.json").read_text())
    h = MU * sl.units.MU_B * B / (2 * K)
    assert s2["converged"] and s2["barrier_eV"] == pytest.approx(K * (1 - h) ** 2, rel=1e-6)


def test_every_command_that_runs_a_config_accepts_no_progress(tmp_path, capsys):
    """A batch script passing --no-progress to every command stopped at gneb, minimize and search
    (argparse: unrecognized arguments)."""
    _endpoints(tmp_path)
    cfg = {"potential": POTENTIAL, "output": "run",
           "gneb": {"initial": "up.extxyz", "final": "down.extxyz", "images": 7, "tol": 1e-9}}
    assert main(["gneb", _write(tmp_path, cfg), "--every", "1", "--no-progress"]) == 0
    out = capsys.readouterr()
    assert "iteration " not in out.err and "barrier" in out.out
    cfg = {"structure": {"file": "up.extxyz"}, "potential": POTENTIAL, "output": "relax",
           "minimize": {"tmax": 1e-8}, "search": {"starts": 2, "workers": 1}}
    path = _write(tmp_path, cfg, "relax.yaml")
    assert main(["minimize", path, "--no-progress"]) == 0
    assert main(["search", path, "--no-progress"]) == 0


@pytest.mark.parametrize("change, named", [
    ({"gneb": {"spring_constant": 2e-3}}, "spring_constant 0.002 (the file records 0.001)"),
    ({"gneb": {"images": 9}}, "images 9 (the file records 7)"),
    ({"gneb": {"weights": {"positions": 2.0}}}, "weights"),
    ({"potential": [{**POTENTIAL[0], "K": 2 * K}, POTENTIAL[1]]}, "another potential"),
])
def test_a_gneb_restart_with_other_parameters_is_refused_naming_them(tmp_path, capsys, change, named):
    """path.h5 recorded no parameters: a restart with another spring constant, image count or
    potential silently continued (images were even replaced by the band's). Now it is refused,
    before anything is written, naming what differs; climbing and tol may change."""
    _endpoints(tmp_path)
    cfg = {"potential": POTENTIAL, "output": "run",
           "gneb": {"initial": "up.extxyz", "final": "down.extxyz", "images": 7, "tol": 1e-9, "climbing": False}}
    assert main(["gneb", _write(tmp_path, cfg)]) == 0
    with sl.io.Trajectory(tmp_path / "run" / "path.h5") as tr:
        meta = tr.attrs["metadata"]
    assert meta["gneb"]["parameters"] == {"images": 7, "spring_constant": 1e-3, "spins": True, "positions": False,
                                          "magnitudes": False, "weights": {"positions": 1.0, "magnitudes": 1.0}}
    assert len(meta["potential_digests"]) == 2
    again = {**cfg, "output": "again", "gneb": {"path": "run/path.h5", "tol": 1e-9, "climbing": True}}
    assert main(["gneb", _write(tmp_path, again, "same.yaml")]) == 0  # climbing and tol may change
    capsys.readouterr()
    bad = {**again, "output": "bad", **{k: v for k, v in change.items() if k != "gneb"}}
    bad["gneb"] = {**again["gneb"], **change.get("gneb", {})}
    assert main(["gneb", _write(tmp_path, bad, "bad.yaml")]) == 1
    err = capsys.readouterr().err
    assert "gneb.path" in err and named in err
    assert not (tmp_path / "bad").exists()


def test_gneb_refuses_an_image_count_that_contradicts_the_path():
    one = sl.State([[0, 0, 0]], ["Fe"], moments=[MU], spins=[[0, 0, 1]])
    pot = sl.potentials.UniaxialAnisotropy(K, [0, 0, 1])
    band = sl.gneb(one, one.copy(spins=[[0, 0, -1]]), pot, images=5, tol=1e-6)
    with pytest.raises(sl.errors.InputError, match="images=7 but the starting path has 5 images"):
        sl.gneb(None, None, pot, images=7, path=band.states)
    assert len(sl.gneb(None, None, pot, path=band.states, tol=1e-6).states) == 5


@pytest.mark.usefixtures("default_signal_handlers")
@pytest.mark.parametrize("command", ["gneb", "minimize", "search"])
def test_a_signal_while_the_results_are_written_keeps_them_whole(tmp_path, capfd, monkeypatch, command):
    """SIGTERM while `spinlat gneb` saved a band that had converged left no path.h5 (the write
    was cut at once) and the command exited 143 with nothing; `minimize` and `search` lost their
    relaxed.extxyz / minima the same way. Now the write completes, then the command exits 143."""
    import os
    import signal

    from spinlat import io as sio
    from spinlat import transitions

    sent = []

    def signalling(real):
        def first_write(*args, **kw):  # SIGTERM as the first output is being written
            if not sent:
                sent.append(1)
                os.kill(os.getpid(), signal.SIGTERM)
            return real(*args, **kw)
        return first_write

    _endpoints(tmp_path)
    if command == "gneb":
        monkeypatch.setattr(transitions.GNEBResult, "write", signalling(transitions.GNEBResult.write))
        cfg = {"potential": POTENTIAL, "output": "run",
               "gneb": {"initial": "up.extxyz", "final": "down.extxyz", "images": 7, "tol": 1e-9}}
        outputs = ["path.h5", "path.extxyz", "energy.png", "summary.json"]
    else:
        monkeypatch.setattr(sio, "write_extxyz", signalling(sio.write_extxyz))
        cfg = {"structure": {"file": "up.extxyz"}, "potential": POTENTIAL, "output": "run",
               command: {"tmax": 1e-8} if command == "minimize" else {"starts": 2, "tmax": 1e-8}}
        outputs = ["relaxed.extxyz"] if command == "minimize" else ["minima.txt", "minima.extxyz"]
    assert main([command, _write(tmp_path, cfg)]) == 128 + signal.SIGTERM
    assert sent
    out, err = capfd.readouterr()
    assert "terminated (SIGTERM)" in err and "stopping once the " in err, err
    for name in outputs:
        assert (tmp_path / "run" / name).stat().st_size > 0, name
        assert str(tmp_path / "run" / name) in out  # the lines naming them were printed
    if command == "gneb":
        s = json.loads((tmp_path / "run" / "summary.json").read_text())
        assert s["converged"] and s["barrier_eV"] > 0
        with sl.io.Trajectory(tmp_path / "run" / "path.h5") as tr:
            assert len(tr) == 7
    else:  # a minimum: the spin along the easy axis (up is metastable in this field)
        got = sl.State.from_ase(sl.io.read_extxyz(str(tmp_path / "run" / outputs[-1]))[0])
        assert abs(got.spins[0][2]) == pytest.approx(1.0, abs=1e-9)


@pytest.mark.usefixtures("default_signal_handlers")
def test_a_band_that_converged_as_the_signal_came_is_not_called_interrupted(tmp_path, capsys, monkeypatch):
    """A SIGTERM during the last band iteration: gneb raises it with the converged band (its
    check after the loop); `spinlat gneb` said "interrupted at iteration N: the band so far ...,
    continue from it". Now it says the band had converged (summary: converged), and exits 143."""
    import signal

    from spinlat import transitions
    from spinlat.interrupts import Terminated

    real = transitions.gneb

    def converged_then_terminated(*args, **kw):  # what check(result) raises after a converged last iteration
        exc = Terminated()
        exc.partial_result = real(*args, **kw)
        raise exc

    monkeypatch.setattr(transitions, "gneb", converged_then_terminated)
    _endpoints(tmp_path)
    cfg = {"potential": POTENTIAL, "output": "run",
           "gneb": {"initial": "up.extxyz", "final": "down.extxyz", "images": 7, "tol": 1e-9}}
    assert main(["gneb", _write(tmp_path, cfg)]) == 128 + signal.SIGTERM
    err = capsys.readouterr().err
    assert "the band had converged when the interrupt took effect" in err and "so far" not in err, err
    s = json.loads((tmp_path / "run" / "summary.json").read_text())
    h = MU * sl.units.MU_B * B / (2 * K)
    assert s["converged"] and s["barrier_eV"] == pytest.approx(K * (1 - h) ** 2, rel=1e-6)


def test_an_endpoint_off_its_minimum_is_named_in_the_log_and_summary(tmp_path, capsys):
    a = sl.State([[0, 0, 0]], ["Fe"], moments=[MU], spins=[[0.6, 0, 0.8]])   # 0.64 rad off the axis
    sl.io.write_extxyz(tmp_path / "tilted.extxyz", [a])
    sl.io.write_extxyz(tmp_path / "down.extxyz", [a.copy(spins=[[0, 0, -1]])])
    cfg = {"potential": POTENTIAL, "output": "run",
           "gneb": {"initial": "tilted.extxyz", "final": "down.extxyz", "images": 7, "tol": 1e-7}}
    assert main(["gneb", _write(tmp_path, cfg)]) == 0
    err = capsys.readouterr().err
    assert "spinlat gneb: warning: gneb: the initial endpoint is not a local minimum" in err
    assert "initial endpoint is not a local minimum" in (tmp_path / "run" / "log.txt").read_text()
    s = json.loads((tmp_path / "run" / "summary.json").read_text())
    # torque on the tilted spin: E = −K cos²θ + μ μB B cosθ (field along −z),
    # |dE/dθ| = 2K sinθ cosθ − μ μB B sinθ
    sin, cos = 0.6, 0.8
    assert s["endpoint_forces"][0]["spins"] == pytest.approx(2 * K * sin * cos - MU * sl.units.MU_B * B * sin,
                                                              rel=1e-9)
    assert s["endpoint_forces"][1]["spins"] < 1e-12


def test_saddle_modes_in_the_config_name_a_first_order_saddle_and_a_symmetric_band(tmp_path, capsys):
    # one spin: E(θ) = −K cos²θ + μ μB B cosθ, a first-order saddle at cosθ = h. Two independent
    # spins: the coherent starting band stays on coherent reversal (barrier 2 K (1 − h)², both at
    # the saddle at once: two unstable modes) while one spin after the other costs half
    _endpoints(tmp_path)
    cfg = {"potential": POTENTIAL, "output": "one",
           "gneb": {"initial": "up.extxyz", "final": "down.extxyz", "images": 7, "tol": 1e-9, "saddle_modes": 4}}
    assert main(["gneb", _write(tmp_path, cfg)]) == 0
    s = json.loads((tmp_path / "one" / "summary.json").read_text())
    h = MU * sl.units.MU_B * B / (2 * K)
    # curvature d²E/dθ² at the saddle −2K sin²θ (k clamped to the 2 dimensions)
    assert s["saddle_negative_modes"] == 1 and len(s["saddle_eigenvalues"]) == 2
    assert s["saddle_eigenvalues"][0] == pytest.approx(-2 * K * (1 - h * h), rel=1e-6)
    assert "first-order saddle" in (tmp_path / "one" / "log.txt").read_text()
    pair = sl.State([[0, 0, 0], [10, 0, 0]], ["Fe", "Fe"], moments=[MU, MU], spins=[[0, 0, 1]] * 2)
    sl.io.write_extxyz(tmp_path / "pair_up.extxyz", [pair])
    sl.io.write_extxyz(tmp_path / "pair_down.extxyz", [pair.copy(spins=[[0, 0, -1]] * 2)])
    cfg = {"potential": POTENTIAL, "output": "pair",
           "gneb": {"initial": "pair_up.extxyz", "final": "pair_down.extxyz", "images": 7, "tol": 1e-9,
                    "saddle_modes": 3}}
    assert main(["gneb", _write(tmp_path, cfg, "pair.yaml")]) == 0
    err = capsys.readouterr().err
    assert "spinlat gneb: warning: saddle image 3: lowest Hessian eigenvalues" in err
    assert ": 2 negative: the band lies on a higher-order saddle" in err and "noise" in err
    s = json.loads((tmp_path / "pair" / "summary.json").read_text())
    assert s["saddle_negative_modes"] == 2 and s["barrier_eV"] == pytest.approx(2 * K * (1 - h) ** 2, rel=1e-6)
    assert s["saddle_eigenvalues"][:2] == pytest.approx([-2 * K * (1 - h * h)] * 2, rel=1e-6)
    with pytest.raises(ConfigError, match="gneb.saddle_modes: expected at least 2"):
        check_gneb_config({"gneb": {"initial": "up.extxyz", "final": "down.extxyz", "saddle_modes": 1}}, tmp_path)
    with pytest.raises(ConfigError, match="gneb.max_step"):
        check_gneb_config({"gneb": {"initial": "up.extxyz", "final": "down.extxyz", "max_step": {"spins": -1}}},
                          tmp_path)


def test_zero_modes_at_a_saddle_are_not_counted_unstable():
    # Mn3Pt T1 → −T1 at tol 1e-6 eV/rad: lowest eigenvalues −1.0e-3, −2.2e-7, 2.2e-7 eV/rad² (a
    # Goldstone pair, off zero by the band's residual force) were counted as a second unstable mode
    from spinlat.transitions import saddle_verdict

    assert saddle_verdict([-1.0e-3, -2.2e-7, 2.2e-7]) == (1, "a first-order saddle (2 zero modes)")
    assert saddle_verdict([-2e-3, -8.3e-4, -8.3e-4])[0] == 3
    assert saddle_verdict([-2e-3, -8.3e-4, -8.3e-4])[1].startswith("at least 3 negative")
    assert saddle_verdict([-2e-3, -1.7e-3, 1e-3])[1].startswith("2 negative")
    assert saddle_verdict([1e-9, 1e-3])[0] == 0


def test_the_same_state_at_both_ends_is_refused(tmp_path, capsys):
    # the same search minimum (rank 0) at both ends "converged" with barrier 0 and status 0
    _endpoints(tmp_path)
    cfg = {"potential": POTENTIAL, "output": str(tmp_path / "run"),
           "gneb": {"initial": "up.extxyz", "final": {"file": "up.extxyz", "index": 0}, "images": 5}}
    assert main(["gneb", _write(tmp_path, cfg)]) == 1
    assert "initial and final are the same configuration" in capsys.readouterr().err
    assert not (tmp_path / "run" / "path.h5").exists()
