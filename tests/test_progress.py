"""Progress of long runs: a tqdm.auto bar when someone watches, LAMMPS-like thermo lines in batch
jobs, nothing on stdout; the lines leave the run's results untouched."""

import logging
import re
import sys
import types

import numpy as np
import pytest

import spinlat as sl
from spinlat import observables as obs
from spinlat import simulation
from spinlat.errors import InputError
from spinlat.integrators import MonteCarlo, SpinLatticeNVE
from spinlat.potentials import BetheSlaterExchange, Zeeman

A = 2.8665


@pytest.fixture
def system():
    st = sl.State([[0, 0, 0], [A / 2] * 3], [26, 26], cell=np.eye(3) * A, pbc=True, moments=[2.2, 2.2]).repeat(2)
    rng = np.random.default_rng(0)
    st = st.copy(spins=np.array([0, 0, 1.0]) + 0.3 * rng.normal(size=(len(st), 3)),
                 velocities=rng.normal(0, 0.005, (len(st), 3)))
    return st, BetheSlaterExchange(3.4, 0.02726, 0.2171, 1.841) + Zeeman([0, 0, 2.0])


def _rows(text):
    """The numeric rows of thermo output (header and anything else skipped)."""
    rows = []
    for line in re.split(r"[\r\n]", text):
        parts = line.split()
        if not parts:
            continue
        try:
            rows.append([float(x) for x in parts])
        except ValueError:
            continue
    return rows


def test_batch_run_writes_thermo_lines_to_stderr_only(system, capsys):
    st, pot = system
    sim = sl.Simulation(st, pot, SpinLatticeNVE(0.5), every=2)
    final = sim.run(100)
    out, err = capsys.readouterr()
    assert out == ""
    header = [line for line in err.splitlines() if "Step" in line]
    assert len(header) == 1 and header[0].split() == ["Step", "Time_ps", "T_lat_K", "T_spin_K", "Epot_eV/at",
                                                      "Ekin_eV/at", "Etot_eV/at", "|M|/Σ|m|", "steps/s"]
    rows = _rows(err)
    steps = [int(r[0]) for r in rows]
    assert steps[0] == 0 and steps[-1] == 100 and 20 <= len(rows) <= 30  # about 25 lines per run
    assert all(s % 2 == 0 for s in steps)  # at frame steps
    last = rows[-1]
    n = len(final)
    assert last[1] == pytest.approx(50e-3)  # time in ps
    assert last[2] == pytest.approx(final.temperature(), abs=0.01)
    assert last[3] == pytest.approx(obs.spin_temperature(final, pot), abs=0.01)
    epot = pot.compute(final, forces=False, magnetic_forces=False).energy / n
    assert last[4] == pytest.approx(epot, abs=1e-6) and last[5] == pytest.approx(final.kinetic_energy() / n, abs=1e-6)
    assert last[6] == pytest.approx(last[4] + last[5], abs=2e-6)
    assert last[7] == pytest.approx(obs.magnetization_norm(final, reduced=True), abs=1e-5)


def test_thermo_interval_off_and_explicit(system, capsys):
    st, pot = system
    sl.Simulation(st, pot, SpinLatticeNVE(0.5), every=5, progress=False).run(20)
    sl.Simulation(st, pot, SpinLatticeNVE(0.5), every=5, thermo=0).run(20)
    assert capsys.readouterr() == ("", "")
    sl.Simulation(st, pot, SpinLatticeNVE(0.5), every=5, progress=False, thermo=7).run(20)
    out, err = capsys.readouterr()
    assert out == "" and [int(r[0]) for r in _rows(err)] == [0, 7, 14, 20]
    with pytest.raises(InputError, match="thermo"):
        sl.Simulation(st, pot, SpinLatticeNVE(0.5), thermo=-1)


def test_thermo_lines_leave_the_trajectory_unchanged(system, tmp_path, capsys):
    """Lines at steps that are not frame steps split the integration differently and compute
    spin temperatures on a neighbour list of their own: the frames stay bit for bit the same."""
    st, pot = system
    arrays = []
    for k, thermo in enumerate((0, 3)):
        path = tmp_path / f"t{k}.h5"
        with sl.Simulation(st, pot, SpinLatticeNVE(0.5), trajectory=str(path), every=5, thermo=thermo) as sim:
            sim.run(30)
        with sl.io.Trajectory(path) as traj:
            arrays.append({name: traj.array(name) for name in ("positions", "velocities", "spins", "total_energy")})
    for name in arrays[0]:
        np.testing.assert_array_equal(arrays[0][name], arrays[1][name], err_msg=name)
    assert len(_rows(capsys.readouterr().err)) == 11


def test_monte_carlo_thermo_lines_count_sweeps(system, capsys):
    st, pot = system
    sl.Simulation(st, pot, MonteCarlo(300.0, seed=1), every=1, thermo=5).run(10)
    err = capsys.readouterr().err
    assert err.splitlines()[0].split() == ["Sweep", "T_spin_K", "E_eV/at", "|M|/Σ|m|", "sweeps/s"]
    assert [int(r[0]) for r in _rows(err)] == [0, 5, 10]


def test_thermo_lines_go_to_the_log_when_logging_is_configured(system, capsys, caplog):
    st, pot = system
    with caplog.at_level(logging.INFO, logger="spinlat.simulation"):
        sl.Simulation(st, pot, SpinLatticeNVE(0.5), every=5, thermo=10).run(20)
    assert capsys.readouterr() == ("", "")
    lines = [r.getMessage() for r in caplog.records if r.name == "spinlat.simulation"]
    assert "Step" in lines[0] and [int(r[0]) for r in _rows("\n".join(lines))] == [0, 10, 20]


def test_progress_bar_when_watched(system, capsys, monkeypatch):
    st, pot = system
    monkeypatch.setattr(simulation, "_interactive", lambda: True)
    sl.Simulation(st, pot, SpinLatticeNVE(0.5), every=5).run(20)
    out, err = capsys.readouterr()
    assert out == ""
    assert "20/20" in err and "step" in err and "Step" not in err  # a bar, no thermo lines
    sl.Simulation(st, pot, SpinLatticeNVE(0.5), every=5, thermo=10).run(20)
    err = capsys.readouterr().err
    assert "20/20" in err and [int(r[0]) for r in _rows(err)] == [0, 10, 20]  # both, the lines above the bar


def test_a_jupyter_kernel_counts_as_watched(monkeypatch):
    class ZMQInteractiveShell:
        pass

    monkeypatch.setattr(sys, "stderr", types.SimpleNamespace(isatty=lambda: False, write=lambda s: None))
    assert not simulation._interactive()
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: ZMQInteractiveShell()))
    monkeypatch.setitem(sys.modules, "ipykernel", types.ModuleType("ipykernel"))
    assert simulation._interactive()
