"""The simulation driver: trajectory frames, restart, early errors, explosion detection,
reproducibility however a run is split or restarted, one writer per trajectory."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import spinlat as sl
from spinlat.errors import InputError, SimulationError
from spinlat.integrators import SpinLatticeLangevin, SpinLatticeNVE

sys.path.insert(0, str(Path(__file__).parent / "integrators"))
from test_spin_lattice import Field, NonLocal, PairSpin, crystal  # noqa: E402
from _restart_cases import CASES, EVERY  # noqa: E402


@pytest.fixture
def setup():
    return crystal(2, T=300.0), PairSpin() + Field([0, 0, 1.0])


def test_frames_and_energies(tmp_path, setup):
    st, pot = setup
    path = tmp_path / "run.h5"
    sim = sl.Simulation(st, pot, SpinLatticeNVE(1.0), trajectory=path, every=5, progress=False)
    final = sim.run(23)
    assert sim.step == 23
    traj = sl.io.Trajectory(path)
    assert list(traj.array("step")) == [0, 5, 10, 15, 20, 23]
    assert np.allclose(traj.array("time"), traj.array("step") * 1.0)
    last = traj.last()
    assert np.allclose(last.positions, final.positions) and np.allclose(last.spins, final.spins)
    e = pot.compute(final).energy
    assert np.isclose(traj.array("potential_energy")[-1], e, atol=1e-10)
    assert np.isclose(traj.array("total_energy")[-1], e + final.kinetic_energy(), atol=1e-10)
    assert np.allclose(traj.array("magnetization")[-1], final.magnetization())
    # NVE: total energy nearly constant over frames
    etot = traj.array("total_energy")
    assert np.ptp(etot) < 1e-3 * len(st)
    traj.close()
    # a second run appends
    sim.run(7)
    traj = sl.io.Trajectory(path)
    assert list(traj.array("step"))[-2:] == [25, 30]


def test_restart_continues_file(tmp_path, setup):
    st, pot = setup
    path = tmp_path / "run.h5"
    with sl.Simulation(st, pot, SpinLatticeNVE(1.0), trajectory=path, every=4, progress=False) as first:
        first.run(8)  # closed here, not when the garbage collector gets to it
    sim = sl.Simulation.restart(path, pot, SpinLatticeNVE(1.0), every=4, progress=False)
    assert sim.step == 8
    out = sim.run(8)
    sim.close()
    with sl.io.Trajectory(path) as traj:
        assert list(traj.array("step")) == [0, 4, 8, 12, 16]
    ref = SpinLatticeNVE(1.0).run(st, pot, 16)
    # the checkpoint restores the neighbour list where the run had built it, and with it the
    # spin colouring (the order of the sequential spin updates): the same numbers bit for bit
    assert sim.resumed
    assert np.array_equal(out.positions, ref.positions)
    assert np.array_equal(out.spins, ref.spins)
    # the keyword form does the same
    sim2 = sl.Simulation(None, pot, SpinLatticeNVE(1.0), trajectory=path, restart=True, progress=False)
    assert sim2.step == 16


def test_store_forces(tmp_path, setup):
    st, pot = setup
    path = tmp_path / "f.h5"
    sl.Simulation(st, pot, SpinLatticeLangevin(1.0, 300, 0.01, 0.1, seed=1), trajectory=path, every=2,
                  progress=False, store_forces=True).run(4)
    traj = sl.io.Trajectory(path)
    f = traj.array("forces")
    assert f.shape == (3, len(st), 3) and np.all(np.isfinite(f))
    ev = pot.compute(traj.last())
    assert np.allclose(f[-1], ev.forces, atol=1e-10)
    assert np.allclose(traj.array("magnetic_forces")[-1], ev.magnetic_forces, atol=1e-10)


def test_errors_before_any_work(tmp_path, setup):
    st, pot = setup

    class Counting(SpinLatticeNVE):
        calls = 0

        def run(self, *a, **k):
            Counting.calls += 1
            return super().run(*a, **k)

    bad = tmp_path / "missing_dir" / "x.h5"
    with pytest.raises(InputError, match="trajectory"):
        sl.Simulation(st, pot, Counting(1.0), trajectory=bad, progress=False).run(10)
    if os.geteuid() != 0:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        with pytest.raises(InputError):
            sl.Simulation(st, pot, Counting(1.0), trajectory=ro / "x.h5", progress=False).run(10)
    with pytest.raises(InputError):
        sl.Simulation(st, pot, Counting(1.0), every=0)
    # a directory given as the trajectory was called "already exists (an earlier run?)"
    for kw in ({}, {"overwrite": True}):
        with pytest.raises(InputError, match=r"is a directory; give the path of an HDF5 file in it \(e.g. .*trajectory.h5"):
            sl.Simulation(st, pot, Counting(1.0), trajectory=tmp_path, **kw)
    # strict types: a string is not a bool, a bool or a float is not a count
    for kw, name in ((dict(flush_every=2.5), "flush_every"), (dict(flush_every=True), "flush_every"),
                     (dict(every=5.5), "every"), (dict(progress="no"), "progress"),
                     (dict(store_forces="false"), "store_forces"), (dict(restart=1), "restart"),
                     (dict(max_energy_change=True), "max_energy_change"),
                     (dict(max_energy_change="big"), "max_energy_change"),
                     (dict(max_energy_change=float("nan")), "max_energy_change"), (dict(trajectory=5), "trajectory")):
        with pytest.raises(InputError, match=name):
            sl.Simulation(st, pot, Counting(1.0), **kw)
    with pytest.raises(InputError):
        sl.Simulation(st, pot, Counting(1.0), progress=False).run(-1)

    class NoSpin(PairSpin):
        provides_magnetic_forces = False

    with pytest.raises(InputError, match="magnetic forces"):
        sl.Simulation(st, NoSpin(), Counting(1.0), trajectory=tmp_path / "y.h5", progress=False).run(10)
    assert not (tmp_path / "y.h5").exists()
    assert Counting.calls == 0


@pytest.mark.usefixtures("one_call_per_chunk")  # the integrator's third call must be the third chunk
def test_explosion_stops_and_keeps_good_frames(tmp_path, setup):
    st, pot = setup

    class Exploding(SpinLatticeNVE):
        n = 0

        def run(self, state, potential, steps):
            out = super().run(state, potential, steps)
            Exploding.n += 1
            if Exploding.n == 3:  # third chunk: velocities blow up
                self.last_evaluation = None
                return out.copy(velocities=out.velocities * 1e4)
            return out

    path = tmp_path / "boom.h5"
    sim = sl.Simulation(st, pot, Exploding(1.0), trajectory=path, every=2, progress=False)
    with pytest.raises(SimulationError, match="eV/atom"):
        sim.run(20)
    traj = sl.io.Trajectory(path)
    assert list(traj.array("step")) == [0, 2, 4]

    class NaNPot(PairSpin):
        def _evaluate(self, state, nl, *a):
            ev = super()._evaluate(state, nl, *a)
            if np.abs(state.positions - st.positions).max() > 0:
                ev.energy = float("nan")
            return ev

    path2 = tmp_path / "nan.h5"
    with pytest.raises(SimulationError, match="nan"):
        sl.Simulation(st, NaNPot(), SpinLatticeNVE(1.0), trajectory=path2, every=2, progress=False).run(6)
    assert list(sl.io.Trajectory(path2).array("step")) == [0]


# ------------------------------------------------------------------ reproducibility
CASES_SCRIPT = Path(__file__).parent / "_restart_cases.py"
_FIELDS = ("step", "positions", "velocities", "spins", "moments", "potential_energy")


def _frames(path):
    with sl.io.Trajectory(path) as traj:
        return {k: traj[k] for k in _FIELDS}


def _assert_same_frames(a, b, steps=None):
    """Frames of two trajectories at the steps of ``steps`` (default: all of b's) are identical."""
    steps = b["step"] if steps is None else steps
    ia = np.searchsorted(a["step"], steps)
    ib = np.searchsorted(b["step"], steps)
    assert np.array_equal(a["step"][ia], steps) and np.array_equal(b["step"][ib], steps)
    for k in _FIELDS[1:]:
        assert np.array_equal(a[k][ia], b[k][ib], equal_nan=True), k


def _assert_same_state(a, b):
    for k in ("positions", "velocities", "spins", "moments"):
        assert np.array_equal(getattr(a, k), getattr(b, k)), k


@pytest.mark.parametrize("name", sorted(CASES))
def test_same_trajectory_however_the_run_is_split_written_or_restarted(tmp_path, monkeypatch, name):
    """run(100) = run(47) + run(53) = frames every 5 or every 10 steps = 47 steps, then a restart
    from the file with new potential and integrator objects (as in a new process) = every chunk in
    pieces of one step (what a slow chunk does to stay responsive to signals): bit for bit."""
    make_state, make_potential, make_integrator = CASES[name]
    st = make_state()
    sim = sl.Simulation(st, make_potential(), make_integrator(), trajectory=tmp_path / "ref.h5", every=EVERY,
                        progress=False)
    ref = sim.run(100)
    _assert_same_state(make_integrator().run(st, make_potential(), 100), ref)  # one integrator call

    sim = sl.Simulation(st, make_potential(), make_integrator(), trajectory=tmp_path / "split.h5", every=EVERY,
                        progress=False)
    sim.run(47)
    _assert_same_state(sim.run(53), ref)
    sim = sl.Simulation(st, make_potential(), make_integrator(), trajectory=tmp_path / "ten.h5", every=10,
                        progress=False)
    _assert_same_state(sim.run(100), ref)

    sl.Simulation(st, make_potential(), make_integrator(), trajectory=tmp_path / "restart.h5", every=EVERY,
                  progress=False).run(47)
    with sl.io.Trajectory(tmp_path / "restart.h5") as traj:
        saved = traj.checkpoint()["integrator_state"]
        at_47 = traj.last()
    if "reference_positions" in saved:  # a list built before step 47 is what the restart must rebuild
        assert not np.array_equal(saved["reference_positions"], at_47.positions)
    sim = sl.Simulation.restart(tmp_path / "restart.h5", make_potential(), make_integrator(), every=EVERY,
                                progress=False)
    assert sim.resumed and sim.step == 47
    _assert_same_state(sim.run(53), ref)

    frames = _frames(tmp_path / "ref.h5")
    assert list(frames["step"]) == list(range(0, 101, 5))
    for other in ("split.h5", "restart.h5"):
        got = _frames(tmp_path / other)
        assert list(got["step"]) == sorted([*range(0, 101, EVERY), 47])
        _assert_same_frames(got, frames, steps=frames["step"])
    _assert_same_frames(_frames(tmp_path / "ten.h5"), frames, steps=np.arange(0, 101, 10))

    from spinlat import simulation

    monkeypatch.setattr(simulation, "SIGNAL_LATENCY_S", 0.0)  # pieces of one step
    sim = sl.Simulation(st, make_potential(), make_integrator(), trajectory=tmp_path / "pieces.h5", every=10,
                        progress=False)
    _assert_same_state(sim.run(100), ref)
    _assert_same_frames(_frames(tmp_path / "pieces.h5"), frames, steps=np.arange(0, 101, 10))


def test_restart_with_another_seed_starts_a_new_stream(tmp_path):
    make_state, make_potential, make_integrator = CASES["llg"]
    st = make_state()
    path = tmp_path / "run.h5"
    sl.Simulation(st, make_potential(), make_integrator(), trajectory=path, every=EVERY, progress=False).run(20)
    same = sl.Simulation.restart(path, make_potential(), make_integrator(), progress=False, every=EVERY)
    other = sl.Simulation.restart(path, make_potential(), make_integrator(seed=8), progress=False, every=EVERY)
    a, b = same.integrator.run(same.state, same.potential, 10), other.integrator.run(other.state, other.potential, 10)
    ref = make_integrator().run(st, make_potential(), 30)
    assert np.array_equal(a.spins, ref.spins)
    assert not np.array_equal(b.spins, ref.spins)
    # another integrator class does not take the checkpoint over (and is named in a warning)
    with pytest.warns(UserWarning, match="another integrator SpinLatticeNVE"):
        nve = sl.Simulation.restart(path, make_potential(), SpinLatticeNVE(0.5), progress=False)
    assert not nve.resumed


def test_restart_keeps_the_files_every_and_time_unit(tmp_path, setup):
    """Simulation.restart without ``every`` continues with the file's spacing (it took 10 and
    left a frame gap before); an integrator counting sweeps cannot append to a file counting fs
    (nor the reverse), and another potential is named in a warning."""
    st, pot = setup
    path = tmp_path / "run.h5"
    with sl.Simulation(st, pot, SpinLatticeNVE(1.0), trajectory=path, every=5, progress=False) as sim:
        sim.run(10)
    with sl.Simulation.restart(path, pot, SpinLatticeNVE(1.0), progress=False) as sim:
        assert sim.every == 5
        sim.run(10)
    with sl.io.Trajectory(path) as traj:
        assert list(traj["step"]) == [0, 5, 10, 15, 20]
        assert list(traj["time"]) == [0.0, 5.0, 10.0, 15.0, 20.0]
    with pytest.raises(InputError, match="counts time in fs, this integrator time in Monte Carlo sweeps"):
        sl.Simulation.restart(path, pot, sl.integrators.MonteCarlo(300.0, seed=7), progress=False)
    with pytest.warns(UserWarning, match=r"another potential .* \(the file records"):
        sl.Simulation.restart(path, PairSpin(), SpinLatticeNVE(1.0), progress=False)
    mc_path = tmp_path / "mc.h5"
    with sl.Simulation(st, pot, sl.integrators.MonteCarlo(300.0, seed=7), trajectory=mc_path, progress=False) as sim:
        sim.run(2)
    with pytest.raises(InputError, match="counts time in Monte Carlo sweeps, this integrator time in fs"):
        sl.Simulation.restart(mc_path, pot, SpinLatticeNVE(1.0), progress=False)
    with sl.io.Trajectory(mc_path) as traj:
        assert list(traj["step"]) == [0, 2]  # untouched by the refused restarts


def _run_until(proc, target, timeout=1200):  # a guard against a hung child only, never reached under load
    reached = 0
    deadline = time.monotonic() + timeout
    while reached < target and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        reached = int(line)
    return reached


@pytest.mark.slow
@pytest.mark.parametrize("name", ["langevin_eam_bs", "llg", "monte_carlo"])
def test_killed_and_restarted_run_continues_bit_for_bit(tmp_path, name):
    """A run killed with SIGKILL at a random moment (perhaps mid-flush) and restarted from its
    file gives the file of the uninterrupted run, every frame bit for bit."""
    path = tmp_path / "killed.h5"
    proc = subprocess.Popen([sys.executable, str(CASES_SCRIPT), name, str(path)], stdout=subprocess.PIPE,
                            text=True)
    try:
        reached = _run_until(proc, 45)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert reached >= 45, proc.stdout.read()
    make_state, make_potential, make_integrator = CASES[name]
    sim = sl.Simulation.restart(path, make_potential(), make_integrator(), every=EVERY, progress=False)
    assert sim.resumed
    start = sim.step
    assert start >= 30 and start % EVERY == 0
    out = sim.run(20)
    ref = sl.Simulation(make_state(), make_potential(), make_integrator(), trajectory=tmp_path / "ref.h5",
                        every=EVERY, progress=False).run(start + 20)
    _assert_same_state(out, ref)
    got, want = _frames(path), _frames(tmp_path / "ref.h5")
    assert list(got["step"]) == list(want["step"]) == list(range(0, start + 21, EVERY))
    _assert_same_frames(got, want)


def test_second_simulation_on_a_live_trajectory_is_refused(tmp_path):
    """Another process is writing the file: a Simulation on the same path is refused before it
    touches the file, and every frame of the first run stays readable."""
    path = tmp_path / "live.h5"
    proc = subprocess.Popen([sys.executable, str(CASES_SCRIPT), "llg", str(path)], stdout=subprocess.PIPE,
                            text=True)
    try:
        assert _run_until(proc, 30) >= 30
        make_state, make_potential, make_integrator = CASES["llg"]
        for restart in (False, True):
            with pytest.raises(InputError, match="in use by another writer"):
                if restart:
                    sl.Simulation.restart(path, make_potential(), make_integrator(), progress=False).run(5)
                else:
                    sl.Simulation(make_state(), make_potential(), make_integrator(), trajectory=path,
                                  progress=False, overwrite=True).run(5)
        reached = _run_until(proc, 60)
    finally:
        proc.kill()
        proc.wait()
    with sl.io.Trajectory(path) as traj:
        assert len(traj) >= reached // EVERY  # frames flushed at the end of each run
        assert list(traj["step"]) == list(range(0, EVERY * len(traj), EVERY))
        assert np.all(traj["moments"] > 0)


def test_trajectory_stays_locked_between_runs_until_closed(tmp_path, setup):
    import gc

    st, pot = setup
    path = tmp_path / "run.h5"
    first = sl.Simulation(st, pot, SpinLatticeNVE(1.0), trajectory=path, every=2, progress=False)
    first.run(4)
    with sl.io.Trajectory(path) as traj:  # every frame of the run is on disk, readers welcome
        assert list(traj["step"]) == [0, 2, 4]
    second = sl.Simulation(st, pot, SpinLatticeNVE(1.0), trajectory=path, every=2, progress=False, overwrite=True)
    with pytest.raises(InputError, match="close"):
        second.run(2)
    first.run(2)  # the owner goes on appending
    first.close()
    with sl.io.Trajectory(path) as traj:
        assert list(traj["step"]) == [0, 2, 4, 6]
    second.run(2)  # now free: the second run replaces the file
    with sl.io.Trajectory(path) as traj:
        assert list(traj["step"]) == [0, 2]
    del second
    gc.collect()  # a collected Simulation releases its file
    with sl.Simulation.restart(path, pot, SpinLatticeNVE(1.0), every=2, progress=False) as sim:
        sim.run(2)
    with sl.io.Trajectory(path) as traj:
        assert list(traj["step"]) == [0, 2, 4]


def test_an_existing_trajectory_is_never_replaced_unasked(tmp_path, setup):
    """As `spinlat run` without --overwrite: a second Simulation on the path of an earlier run is
    refused before it touches the file; overwrite=True replaces it, restart=True continues it."""
    st, pot = setup
    path = tmp_path / "run.h5"
    with sl.Simulation(st, pot, SpinLatticeNVE(1.0), trajectory=path, every=2, progress=False) as sim:
        sim.run(6)
    before = path.read_bytes()
    with pytest.raises(InputError, match=r"run.h5 already exists .*restart=True.*overwrite=True"):
        sl.Simulation(st, pot, SpinLatticeNVE(1.0), trajectory=path, every=2, progress=False)
    with pytest.raises(InputError, match="give one"):
        sl.Simulation(st, pot, SpinLatticeNVE(1.0), trajectory=path, restart=True, overwrite=True)
    assert path.read_bytes() == before
    with sl.Simulation(st, pot, SpinLatticeNVE(1.0), trajectory=path, every=2, progress=False,
                       overwrite=True) as sim:
        sim.run(2)
    with sl.io.Trajectory(path) as traj:
        assert list(traj["step"]) == [0, 2]


def test_largest_seed_is_stored_and_restarts(tmp_path):
    """A seed of 2**64 - 1 (the largest the trajectory's attribute holds) runs, is stored and
    restarts bit for bit; a larger one is refused by the integrator, not by h5py mid-run."""
    make_state, make_potential, make_integrator = CASES["llg"]
    st, path = make_state(), tmp_path / "run.h5"
    with sl.Simulation(st, make_potential(), make_integrator(seed=2**64 - 1), trajectory=path, every=EVERY,
                       progress=False) as sim:
        sim.run(10)
    with sl.Simulation.restart(path, make_potential(), make_integrator(seed=2**64 - 1), progress=False) as sim:
        assert sim.resumed
        out = sim.run(10)
    with sl.io.Trajectory(path) as traj:
        assert traj.attrs["seed"] == 2**64 - 1
    assert np.array_equal(out.spins, make_integrator(seed=2**64 - 1).run(st, make_potential(), 20).spins)
    with pytest.raises(InputError, match="seed: expected a non-negative integer up to 2"):
        make_integrator(seed=2**64)


def test_overlapping_atoms_stop_the_run_before_the_first_step(tmp_path, setup):
    """Two atoms 0.3 Å apart: the first step moved them ~1e8 Å and the run died in the neighbour
    list with 'a pair's cell shift is ... cells; wrap the positions into the cell'. Now the forces
    of the initial frame are checked: SimulationError naming the atom and the force, nothing
    written; a frozen lattice (LLG) is not concerned."""
    st, pot = setup
    pos = st.positions.copy()
    pos[1] = pos[0] + [0.3, 0.0, 0.0]
    bad = st.copy(positions=pos)
    path = tmp_path / "run.h5"
    with pytest.raises(SimulationError, match=r"the force on atom [01] at step 0 is .* eV/Å: one step of 1.0 fs "
                                              r"would move it .* Å \(atoms overlapping\?\)"):
        sl.Simulation(bad, pot, SpinLatticeNVE(1.0), trajectory=path, progress=False).run(5)
    with sl.io.Trajectory(path) as traj:
        assert len(traj) == 0
    # the same forces are harmless when the lattice does not move
    out = sl.Simulation(bad, pot, sl.integrators.LLG(1.0, damping=0.1), progress=False).run(2)
    assert np.all(np.isfinite(out.spins))
    # an ordinary hot run is not stopped
    sl.Simulation(st, pot, SpinLatticeLangevin(2.0, 3000.0, 0.01, 0.1, seed=1), progress=False).run(5)


def test_restart_with_other_exchange_values_is_named(tmp_path):
    """Two Heisenberg Hamiltonians with the same counts but another J print the same description;
    the per-term parameter digests in the file's metadata tell them apart: a restart with another
    J warns naming the term, the same J (pairs given in another order) does not, and a file
    written before digests were recorded compares descriptions only."""
    import json
    import warnings

    import h5py

    from spinlat.potentials import Heisenberg, Zeeman

    st = sl.State(np.zeros((1, 3)), [26], cell=np.eye(3) * 2.5, pbc=True, moments=[2.2]).repeat(3)
    st = st.copy(spins=np.random.default_rng(3).normal(size=(len(st), 3)))
    cell, pos = np.eye(3) * 2.5, np.zeros((1, 3))
    R = np.eye(3, dtype=int)

    def model(J, order=slice(None)):
        return Heisenberg(cell, pos, [26], [0, 0, 0], [0, 0, 0], R[order], np.asarray(J)[order]) + Zeeman([0, 0, 1.0])

    pot = model([0.01, 0.01, 0.02])
    path = tmp_path / "run.h5"
    with sl.Simulation(st, pot, sl.integrators.LLG(1.0, damping=0.1), trajectory=path, every=2,
                       progress=False) as sim:
        sim.run(2)
    same = model([0.01, 0.01, 0.02], order=[2, 0, 1])
    other = model([0.01, 0.01, 0.03])
    assert repr(other) == repr(pot) and other.parameter_digest() != pot.parameter_digest()
    assert same.parameter_digest() == pot.parameter_digest()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sl.Simulation.restart(path, same, sl.integrators.LLG(1.0, damping=0.1), progress=False).close()
    with pytest.warns(UserWarning, match=r"other parameters in potential term 1, Heisenberg\(n_sites=1, n_pairs=3\) "
                                         r"\(digest [0-9a-f]{16}; the file records [0-9a-f]{16}\)") as rec:
        sl.Simulation.restart(path, other, sl.integrators.LLG(1.0, damping=0.1), progress=False).close()
    assert "Zeeman" not in str(rec[0].message)  # only the term that differs is named
    with h5py.File(path, "r+") as f:  # as written by a version without digests
        meta = json.loads(f.attrs["metadata"])
        del meta["potential_digests"]
        f.attrs["metadata"] = json.dumps(meta)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sl.Simulation.restart(path, other, sl.integrators.LLG(1.0, damping=0.1), progress=False).close()


@pytest.mark.parametrize("signum", ["SIGINT", "SIGTERM"])
def test_a_signal_inside_a_long_chunk_stops_at_the_next_piece(tmp_path, monkeypatch, default_signal_handlers,
                                                               signum):
    """Simulation.run held a signal back to the end of the chunk of steps under way: with a large
    ``every`` on a large system that outlasts a batch system's grace period (SIGTERM, then SIGKILL
    ~30 s later). A chunk now runs in pieces (SIGNAL_LATENCY_S each, here one step): a signal
    stops the run after the piece under way; the Simulation and the file stay at the last whole
    chunk, and a restart from the file gives the uninterrupted run's bits."""
    from spinlat import simulation
    from spinlat.interrupts import Terminated

    make_state, make_potential, make_integrator = CASES["langevin_eam_bs"]
    st = make_state()
    ref = sl.Simulation(st, make_potential(), make_integrator(), trajectory=tmp_path / "ref.h5", every=10,
                        progress=False).run(30)
    monkeypatch.setattr(simulation, "SIGNAL_LATENCY_S", 0.0)
    integrator, calls = make_integrator(), []
    real_run = integrator.run

    def run(state, potential, steps):
        calls.append(steps)
        if len(calls) == 14:  # the 4th step of the second chunk
            os.kill(os.getpid(), getattr(signal, signum))
        return real_run(state, potential, steps)

    monkeypatch.setattr(integrator, "run", run)
    sim = sl.Simulation(st, make_potential(), integrator, trajectory=tmp_path / "cut.h5", every=10, progress=False)
    with pytest.raises(Terminated if signum == "SIGTERM" else KeyboardInterrupt):
        sim.run(30)
    assert calls == [1] * 14  # stopped after the piece under way, 6 steps before the chunk's end
    assert sim.step == 10 and np.array_equal(sim.state.spins, _frames(tmp_path / "cut.h5")["spins"][-1])
    assert list(_frames(tmp_path / "cut.h5")["step"]) == [0, 10]
    sim.close()
    monkeypatch.undo()
    again = sl.Simulation.restart(tmp_path / "cut.h5", make_potential(), make_integrator(), progress=False)
    _assert_same_state(again.run(20), ref)


class _SignalOnModelCall(NonLocal):
    """A non-local pair potential (SpinLatticeNVE/Langevin take implicit midpoint spin steps:
    several model calls per step, as with mMACE) that sends ``signum`` to this process during
    its ``at``-th evaluation, standing for a model whose step lasts longer than a second."""

    def __init__(self, signum=None, at=None):
        super().__init__()
        self.signum, self.at, self.calls = signum, at, 0

    def _evaluate(self, state, nl, forces, magnetic_forces, stress):
        self.calls += 1
        if self.calls == self.at:
            os.kill(os.getpid(), self.signum)
        return super()._evaluate(state, nl, forces, magnetic_forces, stress)


@pytest.mark.parametrize("signum", ["SIGINT", "SIGTERM"])
def test_a_signal_inside_one_slow_step_stops_at_the_next_model_call(tmp_path, monkeypatch, default_signal_handlers,
                                                                    signum):
    """A stop waited for the whole step under way: with a big mMACE model and the implicit
    midpoint's several model calls per step, many seconds. The Simulation drops the steps since
    its last frame on a stop anyway, so the step is now abandoned at the next model call (no
    evaluation after the signal), and the integrator is put back to the chunk's start: a later
    run of the same Simulation, and a restart from the file, give the uninterrupted run's bits."""
    from spinlat.interrupts import Terminated

    st = crystal(2, T=300.0)
    make = lambda: SpinLatticeLangevin(0.5, 300.0, 0.01, 0.1, seed=3)  # noqa: E731
    ref = sl.Simulation(st, _SignalOnModelCall(), make(), trajectory=tmp_path / "ref.h5", every=3,
                        progress=False).run(9)
    probe = _SignalOnModelCall()
    sl.Simulation(st, probe, make(), progress=False, every=3).run(4)
    at = probe.calls - 2  # inside step 4 (the second chunk), between two calls of its implicit midpoint
    from spinlat import simulation

    monkeypatch.setattr(simulation, "SIGNAL_LATENCY_S", 0.0)  # every step counts as slower than the latency
    pot = _SignalOnModelCall(getattr(signal, signum), at)
    sim = sl.Simulation(st, pot, make(), trajectory=tmp_path / "cut.h5", every=3, progress=False)
    with pytest.raises(Terminated if signum == "SIGTERM" else KeyboardInterrupt):
        sim.run(9)
    assert pot.calls == at  # no model call after the signal (before: the rest of the step and its chunk)
    assert sim.step == 3 and list(_frames(tmp_path / "cut.h5")["step"]) == [0, 3]
    _assert_same_state(sim.run(6), ref)  # the same Simulation goes on with the uninterrupted bits
    sim.close()
    _assert_same_frames(_frames(tmp_path / "cut.h5"), _frames(tmp_path / "ref.h5"), steps=[0, 3, 6, 9])


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_simulation_stopped_inside_a_chunk_continues_with_the_uninterrupted_bits(tmp_path, monkeypatch,
                                                                                   default_signal_handlers, name):
    """A stop inside a chunk drops the pieces done since its last frame; the integrator had
    moved on with them (random stream, neighbour list, Monte Carlo cone), so a later run of the
    same Simulation (a notebook user who pressed Ctrl-C and runs again) left the uninterrupted
    trajectory. Now the integrator is put back to the chunk's start: every integrator continues
    bit for bit."""
    from spinlat import simulation

    make_state, make_potential, make_integrator = CASES[name]
    st = make_state()
    ref = sl.Simulation(st, make_potential(), make_integrator(), every=10, progress=False).run(30)
    monkeypatch.setattr(simulation, "SIGNAL_LATENCY_S", 0.0)  # pieces of one step
    integrator, calls = make_integrator(), []
    real_run = integrator.run

    def run(state, potential, steps):
        calls.append(steps)
        out = real_run(state, potential, steps)
        if len(calls) == 16:  # after the 6th step of the second chunk
            os.kill(os.getpid(), signal.SIGINT)
        return out

    monkeypatch.setattr(integrator, "run", run)
    sim = sl.Simulation(st, make_potential(), integrator, every=10, progress=False)
    with pytest.raises(KeyboardInterrupt):
        sim.run(30)
    assert sim.step == 10 and len(calls) == 16
    _assert_same_state(sim.run(20), ref)


def test_statistics_cover_the_whole_run(tmp_path):
    """SpinLatticeNVE's ``statistics`` (model calls per step, implicit-step iterations,
    unconverged steps) describe one ``integrator.run``; a Simulation runs the integrator once per
    chunk of ``every`` steps (or shorter pieces), so after ``sim.run(12)`` with ``every=4`` they
    counted the last 4 steps only (an unconverged step in an earlier chunk vanished from them).
    ``Simulation.statistics`` now holds the whole run's: counts summed, per-step figures over
    every step, equal to one integrator.run of the same steps."""
    st = crystal(2, T=300.0)
    pot = NonLocal() + Field([0, 0, 1.0])  # implicit midpoint spin step: several calls per step
    sim = sl.Simulation(st, pot, SpinLatticeNVE(1.0), trajectory=tmp_path / "a.h5", every=4, progress=False)
    sim.run(12)
    assert sim.integrator.statistics["steps"] <= 4  # one chunk
    stats = sim.statistics
    one = SpinLatticeNVE(1.0)
    one.run(st, pot, 12)
    ref = one.statistics
    assert stats["steps"] == 12
    for key in ("spin_iterations", "unconverged_steps", "jvp_calls"):
        assert stats[key] == ref[key], key
    assert stats["model_calls"] - stats["initial_calls"] == ref["model_calls"] - ref["initial_calls"]
    assert stats["calls_per_step"] == pytest.approx(ref["calls_per_step"], rel=1e-12)
    assert stats["call_equivalents_per_step"] == pytest.approx(ref["call_equivalents_per_step"], rel=1e-12)
    sim.run(3)  # the next run's own
    assert sim.statistics["steps"] == 3
    sim.close()
    # integrators without statistics: an empty dict
    sim = sl.Simulation(st, pot, sl.integrators.LLG(1.0), progress=False)
    sim.run(2)
    assert sim.statistics == {}


def test_changing_the_model_between_runs_starts_a_new_run_in_the_file(tmp_path):
    """A notebook habit: ``sim.run(n)``, then ``integ.temperature = 300`` (or ``sim.potential =
    other``) and ``sim.run(n)`` again. The file recorded one run with the first description, so
    ``summary`` reported 10 K for frames run at 300 K and averaged over both; the first frame of
    the second run was checked against the old potential's energy. Each run now records its
    description (a new entry of ``Trajectory.runs`` when it differs), and a Monte Carlo
    integrator cannot continue a file counting fs."""
    st = sl.State([[0, 0, 0]], ["Fe"], cell=np.eye(3) * 3, pbc=True, moments=[2.0], spins=[[1, 0, 1]])
    integ = sl.integrators.LLG(1.0, 0.1, 10.0, seed=1)
    path = tmp_path / "t.h5"
    sim = sl.Simulation(st, sl.potentials.Zeeman([0, 0, 1.0]), integ, trajectory=path, every=5, progress=False)
    sim.run(10)
    sim.run(5)  # nothing changed: the same run
    integ.temperature = 300.0
    sim.run(10)
    sim.potential = sl.potentials.Zeeman([0, 0, 5.0])
    final = sim.run(5)
    with pytest.raises(InputError, match="fs.*sweeps"):
        sim.integrator = sl.integrators.MonteCarlo(10.0)
        sim.run(2)
    sim.close()
    with sl.io.Trajectory(path) as t:
        runs = t.runs
        assert [r["frames"] for r in runs] == [4, 2, 1]
        assert "temperature=10.0" in runs[0]["integrator"] and "temperature=300.0" in runs[1]["integrator"]
        assert "5.0" in runs[2]["potential"] and "1.0" in runs[1]["potential"]
        assert sl.analysis.summary(t, run=1)["temperature_K"] == 300.0
        assert t.array("potential_energy")[-1] == pytest.approx(sl.potentials.Zeeman([0, 0, 5.0]).compute(final).energy,
                                                               rel=1e-12)
        assert len(t) == 7
    with pytest.raises(InputError, match="Simulation: potential: expected a spinlat Potential"):
        sim.potential = "EAM"
    # the same on a Simulation restarted from the file: its first run checks the integrator assigned
    # against the file's time unit (it took the new one as the file's: fs appended to sweeps, or here
    # sweeps to fs)
    again = sl.Simulation(None, sl.potentials.Zeeman([0, 0, 5.0]), sl.integrators.LLG(1.0, 0.1, 300.0, seed=1),
                          trajectory=path, restart=True, progress=False)
    again.integrator = sl.integrators.MonteCarlo(10.0)
    with pytest.raises(InputError, match="fs.*sweeps"):
        again.run(2)
    again.close()
    with sl.io.Trajectory(path) as t:
        assert len(t) == 7
