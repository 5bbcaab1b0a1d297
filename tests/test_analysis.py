import numpy as np
import pytest

import spinlat as sl
from spinlat import analysis, units
from spinlat.errors import InputError


def test_binder_limits(rng):
    ordered = np.tile([0.0, 0.0, 0.8], (1000, 1))
    assert analysis.binder_cumulant(ordered) == pytest.approx(2 / 3)
    # paramagnet: Gaussian 3-vector → U4 = 1 − 5/9 = 4/9 ... for |M|^2 of a 3D Gaussian <m^4>/<m^2>^2 = 5/3
    gauss = rng.normal(size=(200_000, 3))
    assert analysis.binder_cumulant(gauss) == pytest.approx(1 - 5 / 9, abs=0.01)


def test_crossing():
    x = np.linspace(0, 1, 11)
    assert analysis.crossing(x, x, 1 - x) == pytest.approx(0.5)
    assert np.isnan(analysis.crossing(x, x, x + 1))


def test_specific_heat_and_susceptibility(rng):
    t = 300.0
    e = rng.normal(0, 0.01, 10000)
    c = analysis.specific_heat(e, t, 10)
    assert c == pytest.approx(np.var(e) / (10 * (units.K_B * t) ** 2))
    m = np.abs(rng.normal(0.5, 0.05, 10000))
    chi = analysis.susceptibility(m, t, 100)
    assert chi == pytest.approx(100 * np.var(m) / (units.K_B * t), rel=1e-10)
    with pytest.raises(InputError):
        analysis.specific_heat(e, 0.0, 10)


def test_structure_factor_finds_precession_frequency():
    # uniform precession at 28 GHz about z: q = 0 peak at 0.028 THz; a spin wave at q=(k,0,0)
    n, f, dt = 16, 2048, 10.0
    pos = np.stack([np.arange(n) * 2.5, np.zeros(n), np.zeros(n)], axis=1)
    t = np.arange(f) * dt
    k = 2 * np.pi / (n * 2.5) * 2
    nu = 0.5e-3  # 1/fs = 0.5 THz
    phase = 2 * np.pi * nu * t[:, None] - k * pos[None, :, 0]
    spins = np.stack([0.1 * np.cos(phase), 0.1 * np.sin(phase), np.full_like(phase, np.sqrt(1 - 0.01))], axis=2)
    thz, mev, s = analysis.structure_factor(spins, pos, np.array([[k, 0, 0], [0, 0, 0]]), dt)
    assert thz[np.argmax(s[0])] == pytest.approx(0.5, abs=1.5 / (f * dt) * 1e3)
    assert s[0].max() > 100 * s[1].max()
    assert mev[1] == pytest.approx(thz[1] * 4.135667696, rel=1e-6)


def test_rdf_and_correlation_fcc():
    a = 3.52
    from ase.build import bulk

    st = sl.State.from_ase(bulk("Ni", "fcc", a=a, cubic=True).repeat(3))
    st = st.copy(moments=np.full(len(st), 0.6))
    r, g = analysis.radial_distribution(st, 3.0, 60)
    assert r[np.argmax(g)] == pytest.approx(a / np.sqrt(2), abs=0.05)
    r, c, counts = analysis.spin_correlation(st, 3.0, 30)
    assert np.nansum(counts) == 12 * len(st) // 2
    assert np.allclose(c[counts > 0], 1.0)


def test_energy_drift():
    t = np.linspace(0, 1000, 11)
    slope, dev = analysis.energy_drift(t, 2.0 * t * 1e-3, n_atoms=2)
    assert slope == pytest.approx(1.0)
    assert dev == pytest.approx(1.0)


def test_structure_factor_sees_both_precession_senses():
    n, f, dt = 4, 512, 10.0
    pos = np.zeros((n, 3))
    t = np.arange(f) * dt
    nu = 25 / (f * dt)  # on the frequency grid: 0.488 THz
    for sense in (1, -1):
        ph = sense * 2 * np.pi * nu * t[:, None] + np.zeros((1, n))
        spins = np.stack([0.1 * np.cos(ph), 0.1 * np.sin(ph), np.full_like(ph, -0.99)], axis=2)
        thz, _, s = analysis.structure_factor(spins, pos, np.zeros((1, 3)), dt)
        assert thz[np.argmax(s[0])] == pytest.approx(nu * 1e3, abs=1e-9)


def test_with_errors_keeps_the_values_and_gives_jackknife_errors(rng):
    """with_errors=True returns an Estimate whose value is the plain function's float; for
    independent Gaussian energies the error of C = Var(E)/(N k_B² T²) is the analytic
    √(2/n) C, for |M| the blocking error is σ/√n."""
    from spinlat.statistics import Estimate

    t, n = 300.0, 20000
    e = rng.normal(-1000.0, 0.02, n)  # a large offset: no cancellation in the error
    c = analysis.specific_heat(e, t, 10, with_errors=True)
    assert isinstance(c, Estimate) and c.method == "jackknife"
    assert c.value == pytest.approx(analysis.specific_heat(e, t, 10), rel=1e-9)
    assert c.error == pytest.approx(np.sqrt(2 / n) * c.value, rel=0.2)
    m = rng.normal(size=(n, 3)) * 0.1 + [0, 0, 0.5]
    u = analysis.binder_cumulant(m, with_errors=True)
    assert u.value == pytest.approx(analysis.binder_cumulant(m), rel=1e-12)
    chi = analysis.susceptibility(m, t, 64, moment=2.0, with_errors=True)
    assert chi.value == pytest.approx(analysis.susceptibility(m, t, 64, moment=2.0), rel=1e-12)
    assert 0 < chi.error < 0.05 * chi.value and 0 < u.error < 0.05
    norm = np.linalg.norm(m, axis=1)
    a = analysis.average(norm, with_errors=True)
    assert a.value == pytest.approx(analysis.average(norm)) and a.error == pytest.approx(norm.std() / np.sqrt(n), rel=0.2)
    assert analysis.average(norm, with_errors=True, method="autocorrelation").tau_int == pytest.approx(1.0, abs=0.1)


def test_binder_and_chi_errors_agree_with_the_spread_of_independent_runs():
    """Metropolis Monte Carlo of a small Ising-like Heisenberg ferromagnet (sc 4×4×4, J plus an
    easy-axis anisotropy K = J, near its transition where τ_int ≈ 20 sweeps): over 32 seeds the
    spread of U4, χ and ⟨|M_z|⟩ equals the root-mean-square of the estimated errors within a
    factor 1.5 (the spread itself is uncertain by 1/√(2·31) = 13 %)."""
    from spinlat.integrators import MonteCarlo
    from spinlat.potentials import Heisenberg, UniaxialAnisotropy

    J = 1e-3
    unit = sl.State([[0, 0, 0]], [26], cell=np.eye(3) * 2.5, pbc=True, moments=[1.0])
    pot = Heisenberg.from_neighbors(unit, J=[J]) + UniaxialAnisotropy(J, [0, 0, 1])
    st = unit.repeat(4)
    t = 1.9 * J / units.K_B
    rows = []
    for seed in range(32):
        mc = MonteCarlo(t, seed=seed)
        mc.run(mc.run(st, pot, 500), pot, 5000)
        mz = mc.magnetization[:, 2]
        rows.append([analysis.binder_cumulant(mz, with_errors=True), analysis.susceptibility(mz, t, 64, with_errors=True),
                     analysis.average(np.abs(mz), with_errors=True)])
    for k in range(3):
        est = [r[k] for r in rows]
        spread = np.std([e.value for e in est], ddof=1)
        rms = np.sqrt(np.mean([e.error**2 for e in est]))
        assert 1 / 1.5 < spread / rms < 1.5, (k, spread, rms)
        assert all(e.reliable for e in est)
    assert np.mean([r[2].tau_int for r in rows]) > 5  # correlated samples: the naive error would be too small


def test_summary_gives_errors_of_the_means(tmp_path):
    from spinlat.cli import main
    from spinlat.cli.analyze import format_summary
    from spinlat.integrators import SpinLatticeLangevin
    from spinlat.potentials import Heisenberg

    a = 2.87
    st = sl.State([[0, 0, 0], [a / 2] * 3], [26, 26], cell=np.eye(3) * a, pbc=True, moments=[2.2, 2.2]).repeat(2)
    pot = Heisenberg.from_neighbors(st, J=[0.01])
    path = tmp_path / "t.h5"
    sim = sl.Simulation(st, pot, SpinLatticeLangevin(1.0, 300.0, 0.01, 0.1, seed=1), trajectory=str(path), every=2,
                        progress=False)
    sim.run(200)
    s = analysis.summary(str(path))
    with sl.io.Trajectory(str(path)) as traj:
        temp = traj.array("temperature")
    assert s["temperature_mean_K"] == pytest.approx(np.mean(temp))
    assert s["temperature_mean_K_error"] == pytest.approx(sl.statistics.average(temp).error)
    assert s["temperature_mean_K_tau_int"] >= 0.5
    for key in ("reduced_magnetization_mean", "potential_energy_mean_eV_per_atom"):
        assert s[key + "_error"] > 0 and isinstance(s[key + "_reliable"], bool)
    text = format_summary(s)
    assert "temperature_mean_K = " in text and "±" in text and "τ_int" in text
    assert main(["analyze", str(path), "--format", "text"]) == 0


# ------------------------------------------------------------------ kinds of runs: sweeps, drift
def test_energy_conserving_and_time_unit_of_integrators_and_their_descriptions():
    from spinlat.integrators import LLG, MonteCarlo, SpinLatticeLangevin, SpinLatticeNVE

    cases = [(SpinLatticeNVE(1.0), True, "fs"), (LLG(1.0), True, "fs"), (LLG(1.0, damping=0.1), False, "fs"),
             (LLG(1.0, damping=0.1, temperature=10.0, seed=1), False, "fs"),
             (SpinLatticeLangevin(1.0, 300.0, 0.01, 0.1, seed=1), False, "fs"),
             (SpinLatticeLangevin(1.0, 300.0, 0.0, 0.0, seed=1), True, "fs"),
             (MonteCarlo(300.0, seed=1), False, "sweep")]
    for integ, conserving, unit in cases:
        assert analysis.energy_conserving(integ) is conserving, integ
        assert analysis.energy_conserving(integ.describe()) is conserving, integ.describe()
        assert analysis.time_unit(integ) == unit and analysis.time_unit(integ.describe()) == unit
    assert analysis.energy_conserving("gneb") is None and analysis.energy_conserving("") is None

    class Declared:
        dt = 1.0
        conserves_energy = True

    assert analysis.energy_conserving(Declared()) is True


def _fe_run(tmp_path, integrator, steps, every=5, name="t.h5", **kw):
    from spinlat.potentials import BetheSlaterExchange

    a = 2.8665
    st = sl.State([[0, 0, 0], [a / 2] * 3], [26, 26], cell=np.eye(3) * a, pbc=True, moments=[2.2, 2.2]).repeat(2)
    st = st.copy(spins=np.random.default_rng(0).normal(size=(len(st), 3)))
    path = tmp_path / name
    with sl.Simulation(st, BetheSlaterExchange(3.4, 0.02726, 0.2171, 1.841), integrator, trajectory=str(path),
                       every=every, progress=False, **kw) as sim:
        sim.run(steps)
    return path


def test_monte_carlo_summary_counts_sweeps_and_reports_no_drift(tmp_path):
    from spinlat.integrators import MonteCarlo

    path = _fe_run(tmp_path, MonteCarlo(500.0, seed=3), 40, every=2)
    s = analysis.summary(path)
    with sl.io.Trajectory(path) as traj:
        etot, n = traj.array("total_energy"), traj.n_atoms
        assert traj.attrs["metadata"]["time_unit"] == "sweep"
        np.testing.assert_array_equal(traj.array("time"), np.arange(0, 41, 2.0))
    assert s["time_unit"] == "sweep" and s["sweeps"] == 40 and "time_fs" not in s
    assert s["energy_conserving"] is False and s["temperature_K"] == 500.0
    assert not any(k.startswith("energy_drift") or k.startswith("energy_max_deviation") for k in s)
    assert "temperature_mean_K" not in s  # the lattice is frozen
    assert s["total_energy_mean_eV_per_atom"] == pytest.approx(np.mean(etot) / n)
    assert s["total_energy_fluctuation_eV_per_atom"] == pytest.approx(np.std(etot / n))
    fig = analysis.overview_figure(path)
    assert fig.axes[-1].get_xlabel() == "Monte Carlo sweeps" and len(fig.axes) == 2


def test_thermostatted_run_reports_fluctuation_nve_reports_drift(tmp_path):
    from spinlat.integrators import LLG, SpinLatticeNVE

    damped = analysis.summary(_fe_run(tmp_path, LLG(1.0, damping=0.1, temperature=100.0, seed=1), 20, name="d.h5"))
    assert damped["energy_conserving"] is False and damped["time_fs"] == 20.0
    assert "energy_drift_eV_per_atom_per_ps" not in damped and "total_energy_fluctuation_eV_per_atom" in damped
    nve_path = _fe_run(tmp_path, SpinLatticeNVE(0.5), 20, name="n.h5")
    nve = analysis.summary(nve_path)
    assert nve["energy_conserving"] is True and nve["time_fs"] == 10.0
    assert abs(nve["energy_drift_eV_per_atom_per_ps"]) < 1e-3 and nve["energy_max_deviation_eV_per_atom"] < 1e-5
    assert "total_energy_fluctuation_eV_per_atom" not in nve
    assert analysis.overview_figure(nve_path).axes[-1].get_xlabel() == "time (ps)"
    # the caller may say otherwise (files of other codes)
    assert "energy_drift_eV_per_atom_per_ps" in analysis.summary(tmp_path / "d.h5", energy_conserving=True)


def test_summary_of_files_without_run_metadata_reads_the_integrator(tmp_path):
    """Trajectories written before the metadata said the time unit: the integrator attribute tells."""
    from spinlat.io import TrajectoryWriter

    a = 2.8665
    st = sl.State([[0, 0, 0], [a / 2] * 3], [26, 26], cell=np.eye(3) * a, pbc=True, moments=[2.2, 2.2])
    path = tmp_path / "old.h5"
    with TrajectoryWriter(path, st, integrator="MonteCarlo(temperature=300.0, seed=1, overrelax=0, "
                                               "target_acceptance=0.5)", metadata={"every": 1}) as w:
        for k in range(4):
            w.write(st, step=k, time=float(k), potential_energy=-1.0 - 0.01 * k)
    s = analysis.summary(path)
    assert s["time_unit"] == "sweep" and s["sweeps"] == 3 and s["energy_conserving"] is False
    with TrajectoryWriter(path, st, integrator="", metadata={}) as w:
        w.write(st, step=0, time=0.0, potential_energy=-1.0)
        w.write(st, step=1, time=0.5, potential_energy=-1.0)
    s = analysis.summary(path)
    assert s["time_unit"] == "fs" and s["energy_conserving"] is None
    assert "total_energy_fluctuation_eV_per_atom" in s


def test_summary_of_a_trajectory_without_energies_or_times_is_valid_json(tmp_path, capsys):
    """A trajectory converted from frames that carry no energies and no times (an extxyz of ASE
    Atoms): the summary leaves those out (listed under ``missing``), never NaN, and ``spinlat
    analyze`` prints strict JSON; energies present in some frames are averaged over those."""
    import json

    import ase.io
    from ase.build import bulk

    from spinlat.cli import main

    frames = []
    for k in range(6):
        a = bulk("Fe", "bcc", a=2.8665, cubic=True).repeat(2)
        a.set_initial_magnetic_moments([2.2] * len(a))
        a.rattle(0.01, seed=k)
        frames.append(a)
    ase.io.write(tmp_path / "plain.extxyz", frames)
    sl.io.convert(tmp_path / "plain.extxyz", tmp_path / "plain.h5")
    s = analysis.summary(str(tmp_path / "plain.h5"))
    assert s["missing"] == ["time", "potential_energy", "total_energy"]
    assert s["time_fs"] is None and s["frames"] == 6 and s["reduced_magnetization_mean"] == pytest.approx(1.0)
    assert not any(k.startswith(("potential_energy", "total_energy", "energy_drift", "energy_max")) for k in s)
    json.dumps(s, allow_nan=False)
    assert main(["analyze", str(tmp_path / "plain.h5")]) == 0
    assert json.loads(capsys.readouterr().out)["missing"] == ["time", "potential_energy", "total_energy"]
    assert main(["analyze", str(tmp_path / "plain.h5"), "--format", "text"]) == 0
    assert "not in the trajectory: time, potential_energy, total_energy" in capsys.readouterr().out
    # energies in frames 1, 3, 5 only: means over those three frames, counted
    for k, a in enumerate(frames):
        a.info.update(step=10 * k, time=0.5 * k)
        if k % 2:
            a.info["energy"] = -8.0 * k
    ase.io.write(tmp_path / "some.extxyz", frames)
    sl.io.convert(tmp_path / "some.extxyz", tmp_path / "some.h5")
    s = analysis.summary(str(tmp_path / "some.h5"))
    assert s["potential_energy_mean_eV_per_atom_frames"] == 3
    assert s["potential_energy_mean_eV_per_atom"] == pytest.approx(-8.0 * 3 / 16)
    assert s["time_fs"] == 2.5 and "missing" not in s
    json.dumps(s, allow_nan=False)


def test_trajectories_with_no_frame_or_one_frame(tmp_path, capsys):
    """A run killed before its first flush leaves a trajectory of 0 frames: the summary, the plot
    and the conversion say so (an IndexError 'frame 0 out of range' before, and convert named
    'frames: None'); a single frame gives means without errors and a plot."""
    from spinlat.cli import main

    st = sl.State([[0, 0, 0]], ["Fe"], cell=np.eye(3) * 2.5, pbc=True, moments=[2.0]).repeat(2)
    empty = tmp_path / "empty.h5"
    sl.io.TrajectoryWriter(empty, st).close()
    for call in (lambda: analysis.summary(str(empty)), lambda: analysis.plot_overview(empty, tmp_path / "e.png"),
                 lambda: sl.io.convert(empty, tmp_path / "e.extxyz")):
        with pytest.raises(InputError, match="empty.h5 holds no frame"):
            call()
    assert not (tmp_path / "e.png").exists() and not (tmp_path / "e.extxyz").exists()
    assert main(["convert", str(empty), str(tmp_path / "e.extxyz")]) == 1
    assert "holds no frame (nothing to convert)" in capsys.readouterr().err
    one = tmp_path / "one.h5"
    pot = sl.potentials.Zeeman([0, 0, 1.0])
    with sl.Simulation(st, pot, sl.integrators.LLG(1.0, damping=0.1, seed=1), trajectory=one, progress=False) as sim:
        sim.run(0)
    s = analysis.summary(str(one))
    assert s["frames"] == 1 and s["reduced_magnetization_mean"] == pytest.approx(1.0)
    assert s["reduced_magnetization_mean_error"] is None
    assert s["potential_energy_mean_eV_per_atom"] == pytest.approx(-float(units.MU_B) * 2.0, rel=1e-12)
    assert analysis.plot_overview(one, tmp_path / "one.png") is not None and (tmp_path / "one.png").stat().st_size > 0
    # one frame measures no fluctuation nor drift: None, not 0 ("no drift")
    assert s["total_energy_fluctuation_eV_per_atom"] is None
    nve = tmp_path / "nve.h5"
    with sl.Simulation(st, pot, sl.integrators.SpinLatticeNVE(1.0), trajectory=nve, progress=False) as sim:
        sim.run(0)
    s = analysis.summary(str(nve))
    assert s["energy_drift_eV_per_atom_per_ps"] is None and s["energy_max_deviation_eV_per_atom"] is None
    capsys.readouterr()
    assert main(["analyze", str(nve), "--format", "text"]) == 0
    assert "energy_drift_eV_per_atom_per_ps = undefined (fewer than 2 frames)" in capsys.readouterr().out
    with sl.Simulation.restart(nve, pot, sl.integrators.SpinLatticeNVE(1.0), progress=False) as sim:
        sim.run(3)
    s = analysis.summary(str(nve))
    assert s["energy_drift_eV_per_atom_per_ps"] is not None and abs(s["energy_max_deviation_eV_per_atom"]) < 1e-12


def test_summary_of_a_gneb_band_reports_the_barrier_not_means(tmp_path, capsys):
    """A band written by GNEBResult.write is images along a reaction coordinate (time 0 for all):
    `spinlat analyze path.h5` gave means ± errors over the images and a τ_int; now it gives the
    barrier, the saddle and the energy profile."""
    from spinlat.cli import main
    from spinlat.potentials import UniaxialAnisotropy

    one = sl.State([[0, 0, 0]], ["Fe"], cell=np.eye(3) * 2.5, pbc=True, moments=[2.0])
    pot = UniaxialAnisotropy(1e-3, [0, 0, 1])
    band = sl.gneb(one.copy(spins=[[0, 0, 1]]), one.copy(spins=[[0, 0, -1]]), pot, images=5, tol=1e-7)
    band.write(tmp_path / "path.h5", potential=pot)
    s = sl.analysis.summary(str(tmp_path / "path.h5"))
    assert s["frames"] == 5 and s["saddle"] == 2 and s["converged"] is True
    assert s["barrier_eV"] == pytest.approx(1e-3, rel=1e-6)
    np.testing.assert_allclose(s["energies_relative_eV"], [0, 5e-4, 1e-3, 5e-4, 0], atol=1e-9)
    assert s["reason"] == "converged" and s["climbing"] == 2
    assert s["endpoint_forces"] == [{"spins": 0.0}, {"spins": 0.0}]
    assert not any(k.endswith(("_tau_int", "_error")) for k in s)
    # a band from a point on a slope says so (E = −K cos²θ, torque K sin 2θ at θ = 0.5 rad)
    with pytest.warns(UserWarning, match="initial endpoint is not a local minimum"):
        tilted = sl.gneb(one.copy(spins=[[np.sin(0.5), 0, np.cos(0.5)]]), one.copy(spins=[[0, 0, -1]]), pot, images=5,
                         tol=1e-7)
    tilted.write(tmp_path / "tilted.h5")
    assert sl.analysis.summary(str(tmp_path / "tilted.h5"))["endpoint_forces"][0]["spins"] == pytest.approx(
        1e-3 * np.sin(1.0), rel=1e-9)
    with pytest.raises(InputError, match="is a GNEB band .* nothing to discard"):  # it was ignored silently
        sl.analysis.summary(str(tmp_path / "path.h5"), discard=10.0)
    assert main(["analyze", str(tmp_path / "path.h5"), "--format", "text"]) == 0
    out = capsys.readouterr().out
    assert "barrier_eV = 0.001" in out and "kind = gneb band" in out and "±" not in out
    fig = sl.analysis.overview_figure(str(tmp_path / "path.h5"))  # the profile, not a time axis
    (ax,) = fig.axes
    assert ax.get_xlabel() == "reaction coordinate (rad)"
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [0, 0.5, 1, 0.5, 0], atol=1e-6)
    # a second band appended to the file (mode="a", 7 images): the summary is of it, not of both
    band7 = sl.gneb(one.copy(spins=[[0, 0, 1]]), one.copy(spins=[[0, 0, -1]]), pot, images=7, tol=1e-7)
    band7.write(tmp_path / "path.h5", potential=pot, mode="a")
    s = sl.analysis.summary(str(tmp_path / "path.h5"))
    assert s["frames"] == 7 and s["bands_in_file"] == 2 and s["saddle"] == 3
    assert len(s["energies_relative_eV"]) == len(s["reaction_coordinate_rad"]) == 7  # were 12 energies, 7 x
    assert len(sl.analysis.overview_figure(str(tmp_path / "path.h5")).axes[0].lines[0].get_ydata()) == 7


def test_averages_refuse_nan_empty_samples_and_total_moments(rng):
    """A NaN sample made ⟨x⟩, χ, C and U4 NaN without a word, an empty series gave NaN with a
    RuntimeWarning, and a total moment in μB (the HDF5 ``magnetization`` dataset) passed as ``m``
    scaled χ by (Σ|m_i|)² silently: each is an InputError naming the problem."""
    m = rng.normal(size=(200, 3)) * 0.05 + [0, 0, 0.8]
    bad = m.copy()
    bad[7, 1] = np.nan
    for call in (lambda x: analysis.binder_cumulant(x), lambda x: analysis.susceptibility(x, 100.0, 16),
                 lambda x: analysis.average(np.linalg.norm(x, axis=1)),
                 lambda x: analysis.specific_heat(x[:, 1], 100.0, 16)):
        with pytest.raises(InputError, match=r"NaN or infinite values in 1 of 200 samples \(first at index 7\)"):
            call(bad)
        with pytest.raises(InputError, match="holds no sample"):
            call(np.zeros((0, 3)))
    total = m * 16 * 2.2  # 16 moments of 2.2 μB: the total moment
    with pytest.raises(InputError, match="reduced magnetisation"):
        analysis.susceptibility(total, 100.0, 16, moment=2.2)
    # the reduced form gives χ = N μ² Var(|m|)/(k_B T)
    chi = analysis.susceptibility(m, 100.0, 16, moment=2.2)
    assert chi == pytest.approx(16 * 2.2**2 * np.var(np.linalg.norm(m, axis=1)) / (units.K_B * 100.0), rel=1e-12)
    # U4 does not depend on the scale of M
    assert analysis.binder_cumulant(total) == pytest.approx(analysis.binder_cumulant(m), rel=1e-12)


def test_summary_of_a_restart_with_another_every_averages_on_one_grid_and_flags_the_equilibration(tmp_path, capsys):
    """A run written every step, restarted with every=10: the summary's means weighted the first
    stretch ten times more than the rest (a frame-weighted, not a time-weighted mean), silently.
    They now use the frames on the 10-step grid; a relaxing start is flagged as not stationary
    and ``discard`` leaves it out."""
    from spinlat.cli import main

    st = sl.State([[0, 0, 0]], ["Fe"], cell=np.eye(3) * 2.5, pbc=True, moments=[2.0]).repeat(2)
    st = st.copy(spins=np.tile([1.0, 0, 0], (len(st), 1)))  # relaxes from x towards the field along z
    pot = sl.potentials.Heisenberg.from_neighbors(st, J=[0.01]) + sl.potentials.Zeeman([0, 0, 50.0])
    path = tmp_path / "mixed.h5"

    def llg():
        return sl.integrators.LLG(1.0, damping=0.5, temperature=10.0, seed=1)  # relaxes in ~0.3 ps

    with sl.Simulation(st, pot, llg(), trajectory=path, every=1, progress=False) as sim:
        sim.run(100)
    with sl.Simulation.restart(path, pot, llg(), every=10, progress=False) as sim:
        sim.run(1000)
    with sl.io.Trajectory(path) as t:
        step, time = t.array("step"), t.array("time")
        red = np.linalg.norm(sl.observables.reduced_from_total(t.array("magnetization"), t.array("moments")), axis=1)
        epot = t.array("potential_energy") / len(st)
    grid = step % 10 == 0
    assert len(step) == 201 and grid.sum() == 111
    s = analysis.summary(path)
    assert s["frames"] == 201 and s["frames_averaged"] == 111 and s["frame_spacing"] == 10.0
    assert s["reduced_magnetization_mean"] == pytest.approx(red[grid].mean(), rel=1e-14)
    assert abs(red.mean() - red[grid].mean()) > 1e-3  # what the frame-weighted mean read
    assert s["potential_energy_mean_eV_per_atom"] == pytest.approx(epot[grid].mean(), rel=1e-14)
    assert s["potential_energy_mean_eV_per_atom_stationary"] is False  # the relaxation from x is in it
    d = analysis.summary(path, discard=600.0)
    late = grid & (time >= 600.0)
    assert d["discarded_frames"] == int(np.sum(time < 600.0))
    assert d["potential_energy_mean_eV_per_atom_stationary"] is True
    assert d["reduced_magnetization_mean"] == pytest.approx(red[late].mean(), rel=1e-14)
    capsys.readouterr()
    assert main(["analyze", str(path), "--format", "text"]) == 0
    assert "NOT EQUILIBRATED" in capsys.readouterr().out
    assert main(["analyze", str(path), "--format", "text", "--discard", "600"]) == 0
    assert "NOT EQUILIBRATED" not in capsys.readouterr().out
    assert main(["analyze", str(path), "--discard", "5000"]) == 1
    assert "discard=5000 fs leaves no frame: the run spans 1100 fs" in capsys.readouterr().err


def test_frame_grid_of_irregular_spacings():
    """The regular grid behind the summary's means: the last step of a run call is left out,
    restarts with every 30 then 20 meet on 60, and frames on no grid keep every frame."""
    grid = analysis._spacing_grid
    idx, g = grid([0, 10, 15, 20, 30, 40])  # run(15), run(25) with every=10
    assert g == 10 and idx.tolist() == [0, 1, 3, 4, 5]
    idx, g = grid(list(range(0, 1001, 10)) + [1007])
    assert g == 10 and len(idx) == 101
    idx, g = grid([0, 30, 60, 80, 100, 120, 140, 160, 180])
    assert g == 60 and idx.tolist() == [0, 2, 5, 8]
    idx, g = grid([0.0, 0.1, 0.2, 0.30000000000000004, 0.4])  # float times
    assert len(idx) == 5 and g == pytest.approx(0.1)
    idx, g = grid([0, 1, 3, 7, 8])
    assert g is None and len(idx) == 5


def test_trajectory_observables_of_one_frame_and_of_frames_without_energies(tmp_path):
    """One frame measures no drift (it read (0, 0): "no drift"); a trajectory whose frames hold no
    energy (converted from plain xyz) gave a NaN drift, or a LinAlgError; the drift is now over the
    frames that hold one, NaN when fewer than 2 do; energy_drift itself refuses NaN and series of
    two lengths (a TypeError before)."""
    import ase.io
    from ase.build import bulk

    st = sl.State([[0, 0, 0]], ["Fe"], cell=np.eye(3) * 2.5, pbc=True, moments=[2.0]).repeat(2)
    pot = sl.potentials.Zeeman([0, 0, 1.0])
    one = tmp_path / "one.h5"
    with sl.Simulation(st, pot, sl.integrators.SpinLatticeNVE(1.0), trajectory=one, progress=False) as sim:
        sim.run(0)
    out = analysis.trajectory_observables(one)
    assert np.isnan(out["energy_drift"]).all() and np.isnan(out["energy_fluctuation"])
    frames = []
    for k in range(4):
        a = bulk("Fe", "bcc", a=2.8665, cubic=True)
        a.set_initial_magnetic_moments([2.2] * len(a))
        a.info.update(step=10 * k, time=1.0 * k)
        if k:  # frames 1..3: E = 0.5, 1.0, 1.5 eV at 1, 2, 3 fs: 0.25 eV/atom per fs
            a.info["energy"] = 0.5 * k
        frames.append(a)
    ase.io.write(tmp_path / "e.extxyz", frames)
    sl.io.convert(tmp_path / "e.extxyz", tmp_path / "e.h5")
    out = analysis.trajectory_observables(tmp_path / "e.h5")
    slope, dev = out["energy_drift"]
    assert slope == pytest.approx(0.25 * 1e3, rel=1e-10) and dev == pytest.approx(0.5, rel=1e-12)
    assert out["energy_fluctuation"] == pytest.approx(np.std([0.5, 1.0, 1.5]) / 2, rel=1e-12)
    with pytest.raises(InputError, match="NaN"):
        analysis.energy_drift([0.0, 1.0, 2.0], [1.0, np.nan, 1.0])
    with pytest.raises(InputError, match="one length"):
        analysis.energy_drift([0.0, 1.0, 2.0], [1.0, 1.0])
    with pytest.raises(InputError, match="NaN"):
        analysis.energy_fluctuation([1.0, np.nan])


def test_summary_of_frames_with_steps_but_no_times_uses_the_step_grid(tmp_path):
    """Frames converted from a format with steps and no times (extxyz with ``step`` only), written
    every 5 steps and then every 10: averaged on the 10-step grid, said as ``frame_spacing_steps``."""
    import ase.io
    from ase.build import bulk

    steps = [0, 5, 10, 15, 20, 30, 40, 50, 60]
    frames = []
    for k, step in enumerate(steps):
        a = bulk("Fe", "bcc", a=2.8665, cubic=True)
        a.set_initial_magnetic_moments([2.2] * len(a))
        a.info.update(step=step, energy=-1.0 * k)
        frames.append(a)
    ase.io.write(tmp_path / "s.extxyz", frames)
    sl.io.convert(tmp_path / "s.extxyz", tmp_path / "s.h5")
    s = analysis.summary(tmp_path / "s.h5")
    assert s["time_fs"] is None and s["frames_averaged"] == 7 and s["frame_spacing_steps"] == 10
    on_grid = [k for k, step in enumerate(steps) if step % 10 == 0]
    assert s["potential_energy_mean_eV_per_atom"] == pytest.approx(-np.mean(on_grid) / 2, rel=1e-12)


def test_structure_factor_refuses_one_frame_nan_spins_and_flat_qpoints():
    """One frame read S(q, ω) = 0 at every q, a NaN spin made the whole spectrum NaN, and q given as
    a flat (3,) vector made a wrong shape downstream: each is an InputError naming it."""
    pos = np.arange(8.0)[:, None] * [2.5, 0, 0]
    spins = np.tile([0.0, 0.0, 1.0], (4, 8, 1))
    spins[:, :, 0] = 0.1 * np.cos(np.arange(4))[:, None]
    q = np.array([[0.3, 0, 0]])
    assert analysis.structure_factor(spins, pos, q, 1.0)[2].shape == (1, 3)
    with pytest.raises(InputError, match="at least 2 frames"):
        analysis.structure_factor(spins[:1], pos, q, 1.0)
    bad = spins.copy()
    bad[2, 5, 1] = np.nan
    with pytest.raises(InputError, match=r"NaN or infinite values in 1 of 4 frames \(first: frame 2\)"):
        analysis.structure_factor(bad, pos, q, 1.0)
    with pytest.raises(InputError, match=r"shape \(K, 3\)"):
        analysis.structure_factor(spins, pos, [0.3, 0, 0], 1.0)


def test_frozen_lattice_llg_reports_its_bath_temperature_not_a_lattice_at_0_K(tmp_path):
    """An LLG run at 100 K reported ``temperature_mean_K = 0 ± 0`` (its frozen lattice), read as the
    run's temperature; it now reports the bath ``temperature_K`` as Monte Carlo does, also for files
    written without the ``moves_lattice`` metadata, and its plot has no lattice-temperature panel."""
    from spinlat.integrators import LLG

    path = _fe_run(tmp_path, LLG(1.0, damping=0.1, temperature=100.0, seed=1), 20, name="llg.h5")
    s = analysis.summary(path)
    assert "temperature_mean_K" not in s and s["temperature_K"] == 100.0
    assert len(analysis.overview_figure(path).axes) == 2
    import h5py
    import json

    with h5py.File(path, "r+") as f:  # a file of an earlier version: no moves_lattice
        meta = json.loads(f.attrs["metadata"])
        assert meta.pop("moves_lattice") is False
        f.attrs["metadata"] = json.dumps(meta)
    s = analysis.summary(path)
    assert "temperature_mean_K" not in s and s["temperature_K"] == 100.0


# ------------------------------------------------------------------ trajectories of several runs
def _two_temperature_mc(path):
    """A Monte Carlo trajectory run at 100 K, then restarted at 900 K (as spinlat run --restart
    with another temperature does)."""
    from spinlat.integrators import MonteCarlo
    from spinlat.potentials import Heisenberg

    from conftest import bcc_fe

    st = bcc_fe((2, 2, 2), rattle=0.0, random_spins=False)
    pot = Heisenberg.from_neighbors(st, J=[0.02])
    with sl.Simulation(st, pot, MonteCarlo(temperature=100.0, seed=1), trajectory=str(path), every=2,
                       progress=False) as sim:
        sim.run(20)
    with pytest.warns(UserWarning, match="new run"):
        sim = sl.Simulation.restart(str(path), pot, MonteCarlo(temperature=900.0, seed=1), progress=False)
    with sim:
        sim.run(30)
    return path


def test_summary_of_a_run_continued_at_another_temperature_is_of_one_run(tmp_path):
    """Fault (round 12): a Monte Carlo run restarted at 900 K in the 100 K run's file was
    summarised as 'temperature_K: 100' with the means over both temperatures."""
    path = _two_temperature_mc(tmp_path / "mc.h5")
    with sl.io.Trajectory(path) as t:
        runs = t.runs
        assert [r["first_frame"] for r in runs] == [0, 11] and [r["frames"] for r in runs] == [11, 15]
        assert "temperature=900.0" in runs[1]["integrator"] and runs[1]["first_step"] == 20
        m = np.linalg.norm(sl.analysis.magnetization(t["spins"], t["moments"]), axis=1)
    last = analysis.summary(path)
    assert last["temperature_K"] == 900.0 and last["run"] == 1 and last["frames"] == 15
    assert last["frames_in_file"] == 26 and len(last["runs"]) == 2
    assert last["sweeps"] == pytest.approx(28.0)  # frames at steps 22 .. 50 (the restart continued from step 20)
    assert last["reduced_magnetization_mean"] == pytest.approx(np.mean(m[11:]), rel=1e-12)
    first = analysis.summary(path, run=0)
    assert first["temperature_K"] == 100.0 and first["frames"] == 11
    assert first["reduced_magnetization_mean"] == pytest.approx(np.mean(m[:11]), rel=1e-12)
    assert analysis.summary(path, run=-2)["temperature_K"] == 100.0
    obs = analysis.trajectory_observables(path)
    np.testing.assert_array_equal(obs["run"], [0] * 11 + [1] * 15)
    fig = analysis.overview_figure(path)  # a dotted line where the 900 K run begins
    assert [line.get_xdata()[0] for line in fig.axes[0].lines if line.get_linestyle() == ":"] == [22.0]
    with pytest.raises(InputError, match="holds 2 runs"):
        analysis.summary(path, run=2)


def test_analyze_cli_names_the_runs_and_picks_one(tmp_path, capsys):
    import json

    from spinlat.cli import main

    path = _two_temperature_mc(tmp_path / "mc.h5")
    assert main(["analyze", str(path), "--run", "0"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["temperature_K"] == 100.0 and out["run"] == 0
    assert main(["analyze", str(path), "--format", "text"]) == 0
    text = capsys.readouterr().out
    assert "run 1: frames 11-25, MonteCarlo(temperature=900.0" in text and "<- summarised below" in text
    assert "temperature_K = 900" in text


def test_summary_reads_the_moments_block_by_block(tmp_path, monkeypatch):
    """Fault (round 12): summary, trajectory_observables and the overview read the (F, N)
    moments of every frame at once (8 GB for 1000 frames of 1e6 atoms)."""
    path = _two_temperature_mc(tmp_path / "mc.h5")
    expected = analysis.summary(path, run=0)
    full = sl.io.Trajectory.array

    def array(self, name, frames=None):
        if name in ("moments", "spins", "positions", "velocities") and frames is None:
            raise AssertionError(f"whole {name} array read")
        return full(self, name, frames)

    monkeypatch.setattr(sl.io.Trajectory, "array", array)
    monkeypatch.setattr(sl.io.Trajectory, "blocks", lambda self, name, max_bytes=0, frames=None:
                        _blocks(self, name, frames))
    assert analysis.summary(path, run=0) == expected
    obs = analysis.trajectory_observables(path)
    assert obs["reduced_magnetization_norm"][:11].mean() == pytest.approx(expected["reduced_magnetization_mean"])


def _blocks(traj, name, frames=None):
    """Trajectory.blocks with blocks of 2 frames (as a large trajectory would be read)."""
    lo, hi, _ = (frames or slice(None)).indices(len(traj))
    for start in range(lo, hi, 2):
        yield start, traj.array(name, frames=slice(start, min(hi, start + 2)))


# ------------------------------------------------------------------ S(q, ω) of trajectories
def _precessing_llg(path, field=50.0, steps=(1003, 1003)):
    """Undamped LLG of tilted spins in ``field`` T along z (uniform precession at γB), written every
    5 fs by runs of ``steps`` (1003: each run's last step is off the 5 fs grid)."""
    from spinlat.integrators import LLG
    from spinlat.potentials import Heisenberg, Zeeman

    from conftest import bcc_fe

    st = bcc_fe((2, 2, 2), rattle=0.0, random_spins=False)
    st = st.copy(spins=np.tile([np.sin(0.3), 0.0, np.cos(0.3)], (len(st), 1)))
    pot = Heisenberg.from_neighbors(st, J=[0.02]) + Zeeman([0, 0, field])
    with sl.Simulation(st, pot, LLG(1.0), trajectory=str(path), every=5, progress=False) as sim:
        for n in steps:
            sim.run(n)
    return path


def test_structure_factor_takes_the_frame_times_and_leaves_out_frames_off_the_grid(tmp_path):
    """Fault (round 12): frames of a trajectory are not all equally spaced (the last step of each
    run call is written: steps 0, 5, ..., 1000, 1003, 1005, ...), but structure_factor took one
    dt and Fourier-transformed them as if they were: a wrong spectrum without a word."""
    path = _precessing_llg(tmp_path / "llg.h5")
    with sl.io.Trajectory(path) as t:
        spins, times, pos = t["spins"], t["time"], t[0].positions
    assert 1003.0 in times and 2006.0 in times
    q = np.array([[0.0, 0.0, 0.0]])
    with pytest.warns(UserWarning, match=r"2 of the 404 frames are off the regular grid of 5 fs"):
        thz, _, s = analysis.structure_factor(spins, pos, q, times)
    on_grid = times % 5 == 0
    ref = analysis.structure_factor(spins[on_grid], pos, q, 5.0)
    np.testing.assert_allclose(s, ref[2], rtol=1e-12)
    gamma_b = units.GAMMA * 50.0 / (2 * np.pi) * 1e3  # THz (GAMMA in rad/(fs T)): 1.40 THz
    assert abs(thz[np.argmax(s[0])] - gamma_b) <= thz[1]  # the precession, within one frequency bin
    # the same from the file, read block by block, with the sites of each frame
    with pytest.warns(UserWarning, match="off the regular grid"):
        thz2, _, s2 = analysis.trajectory_structure_factor(path, q, positions="frame")
    np.testing.assert_allclose(s2, s, rtol=1e-10)
    with pytest.raises(InputError, match="no regular grid"):
        analysis.structure_factor(spins[:5], pos, q, [0.0, 1.0, 3.0, 7.0, 15.0])
    with pytest.raises(InputError, match="the 404 frame times"):
        analysis.structure_factor(spins, pos, q, times[:-1])


def test_structure_factor_positions_are_checked_and_may_move():
    pos = np.arange(8.0)[:, None] * [2.5, 0, 0]
    spins = np.tile([0.0, 0.0, 1.0], (6, 8, 1))
    spins[:, :, 0] = 0.1 * np.cos(np.arange(6))[:, None]
    q = np.array([[0.3, 0, 0], [0.0, 0.0, 0.0]])
    ref = analysis.structure_factor(spins, pos, q, 1.0)[2]
    moving = np.stack([pos + [0, 0, 0.7 * k] for k in range(6)])  # moves along z: q·r unchanged
    np.testing.assert_allclose(analysis.structure_factor(spins, moving, q, 1.0)[2], ref, rtol=1e-12)
    shifted = np.stack([pos + [0.4 * k, 0, 0] for k in range(6)])  # along q: the q = 0 part unchanged only
    out = analysis.structure_factor(spins, shifted, q, 1.0)[2]
    np.testing.assert_allclose(out[1], ref[1], rtol=1e-12)
    assert not np.allclose(out[0], ref[0])
    with pytest.raises(InputError, match=r"positions must be the sites \(N, 3\) = \(8, 3\)"):
        analysis.structure_factor(spins, pos[:7], q, 1.0)
    bad = pos.copy()
    bad[3, 0] = np.nan
    with pytest.raises(InputError, match="positions hold NaN"):  # it gave NaN at every q
        analysis.structure_factor(spins, bad, q, 1.0)


def test_trajectory_structure_factor_refuses_sweeps_and_mixed_runs(tmp_path):
    mc = _two_temperature_mc(tmp_path / "mc.h5")
    with pytest.raises(InputError, match="span several runs"):
        analysis.trajectory_structure_factor(mc, [[0.0, 0.0, 0.0]])
    with pytest.raises(InputError, match="Monte Carlo run"):
        analysis.trajectory_structure_factor(mc, [[0.0, 0.0, 0.0]], frames=slice(11, None))


def test_binder_of_zero_samples_and_empty_histograms_are_refused():
    """binder_cumulant of all-zero samples (no magnetic atom) returned NaN with a RuntimeWarning;
    spin_correlation and radial_distribution with n_bins=0 returned empty arrays."""
    from conftest import bcc_fe

    with pytest.raises(InputError, match="every one of the 4 magnetisation samples is 0"):
        analysis.binder_cumulant(np.zeros((4, 3)))
    assert analysis.binder_cumulant([[0, 0, 0], [0, 0, 0.5]]) == pytest.approx(1 - 2 / 3 * 1)  # one nonzero: defined
    st = bcc_fe((2, 2, 2))
    for f in (analysis.spin_correlation, analysis.radial_distribution):
        with pytest.raises(InputError, match="n_bins: expected a positive integer, got 0"):
            f(st, 3.0, 0)


def test_fluctuation_quantities_of_one_sample_are_refused():
    """specific_heat and susceptibility of one sample read 0 and binder_cumulant 2/3 (the ordered
    phase's value), as if measured."""
    with pytest.raises(InputError, match="specific_heat: energies holds 1 sample: .* needs at least 2"):
        analysis.specific_heat([-1.0], 300.0, 16)
    with pytest.raises(InputError, match="holds 1 sample"):
        analysis.susceptibility([[0.0, 0.0, 0.5]], 300.0, 16)
    with pytest.raises(InputError, match="holds 1 sample"):
        analysis.binder_cumulant([[0.0, 0.0, 0.5]])
    assert analysis.specific_heat([-1.0, -1.0], 300.0, 16) == 0.0  # two equal samples: a measured 0


def test_structure_factor_of_moments_sees_longitudinal_fluctuations(tmp_path):
    """Moments that change length (mMACE, Landau) fluctuate along the spins: the unit spins of a
    trajectory show none of it, the moment vectors do, at the frequency they breathe at."""
    from spinlat.io import TrajectoryWriter

    from conftest import bcc_fe

    st = bcc_fe((2, 2, 2), rattle=0.0, random_spins=False)
    n, f, dt = len(st), 64, 2.0
    nu = 8 / (f * dt)  # 1/fs, on the frequency grid
    path = tmp_path / "breathing.h5"
    with TrajectoryWriter(path, st, integrator="SpinLatticeNVE(dt=1.0)") as w:
        for k in range(f):
            w.write(st.copy(moments=2.2 + 0.1 * np.cos(2 * np.pi * nu * k * dt) * np.ones(n)), k, k * dt)
    q = [[0.0, 0.0, 0.0]]
    thz, _, s_spins = analysis.trajectory_structure_factor(path, q)
    assert np.max(s_spins) < 1e-20  # fixed directions: nothing moves
    thz, _, s_mom = analysis.trajectory_structure_factor(path, q, vectors="moments", window=False)
    assert thz[np.argmax(s_mom[0])] == pytest.approx(nu * 1e3)
    with sl.io.Trajectory(path) as t:
        ref = analysis.structure_factor(t["spins"], t[0].positions, q, t["time"], window=False, moments=t["moments"])
    np.testing.assert_allclose(s_mom, ref[2], rtol=1e-12)
    with pytest.raises(InputError, match=r"moments must be finite magnitudes \(μB\) of shape \(F, N\)"):
        analysis.structure_factor(np.ones((4, n, 3)), st.positions, q, 1.0, moments=np.ones(n + 1))
    with pytest.raises(InputError, match="run forward"):
        analysis.trajectory_structure_factor(path, q, frames=slice(None, None, -1))


def test_a_second_continuation_compares_with_the_last_run(tmp_path):
    """Fault (round 12): a restart compared its integrator with the file's first run and took that
    run's every: continuing the 900 K run at 900 K warned 'another integrator' (100 K), and a run
    continued with every=4 went on with the first run's every=2."""
    import warnings

    from spinlat.integrators import MonteCarlo
    from spinlat.potentials import Heisenberg

    path = _two_temperature_mc(tmp_path / "mc.h5")
    st = sl.io.Trajectory(path).last()
    pot = Heisenberg.from_neighbors(st, J=[0.02])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no 'another integrator' warning
        sim = sl.Simulation.restart(str(path), pot, MonteCarlo(temperature=900.0, seed=1), progress=False)
    assert sim.every == 2
    with sim:
        sim.run(4)
    with pytest.warns(UserWarning, match="new run"):
        sim = sl.Simulation.restart(str(path), pot, MonteCarlo(temperature=300.0, seed=1), every=4, progress=False)
    with sim:
        sim.run(8)
    sim = sl.Simulation.restart(str(path), pot, MonteCarlo(temperature=300.0, seed=1), progress=False)
    assert sim.every == 4  # the last run's
    sim.close()
    with sl.io.Trajectory(path) as t:
        assert [r["frames"] for r in t.runs] == [11, 17, 3]  # steps 56, 60 (every 4) and 62 (the last)
