"""The simulation driver: trajectory frames, restart, early errors, explosion detection."""

import os
import sys
from pathlib import Path

import numpy as np
import pytest

import spinlat as sl
from spinlat.errors import InputError, SimulationError
from spinlat.integrators import SpinLatticeLangevin, SpinLatticeNVE

sys.path.insert(0, str(Path(__file__).parent / "integrators"))
from test_spin_lattice import Field, PairSpin, crystal  # noqa: E402


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
    sl.Simulation(st, pot, SpinLatticeNVE(1.0), trajectory=path, every=4, progress=False).run(8)
    sim = sl.Simulation.restart(path, pot, SpinLatticeNVE(1.0), every=4, progress=False)
    assert sim.step == 8
    out = sim.run(8)
    with sl.io.Trajectory(path) as traj:
        assert list(traj.array("step")) == [0, 4, 8, 12, 16]
    ref = SpinLatticeNVE(1.0).run(st, pot, 16)
    # a restart rebuilds the neighbour list, and with it the spin colouring (the order of the
    # sequential spin updates), at another step: same dynamics up to the O(dt^3) splitting error
    assert np.allclose(out.positions, ref.positions, atol=1e-8)
    assert np.allclose(out.spins, ref.spins, atol=1e-6)
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
    with pytest.raises(InputError):
        sl.Simulation(st, pot, Counting(1.0), progress=False).run(-1)

    class NoSpin(PairSpin):
        provides_magnetic_forces = False

    with pytest.raises(InputError, match="magnetic forces"):
        sl.Simulation(st, NoSpin(), Counting(1.0), trajectory=tmp_path / "y.h5", progress=False).run(10)
    assert not (tmp_path / "y.h5").exists()
    assert Counting.calls == 0


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
