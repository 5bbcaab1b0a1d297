"""SpinLatticeNVE / SpinLatticeLangevin with a fitted mMACE: the implicit (spherical) midpoint spin
step (time reversal, model calls, energy) and adiabatic moment magnitudes."""

import numpy as np
import pytest

from conftest import bcc_fe

torch = pytest.importorskip("torch")
pytest.importorskip("mace")

import spinlat as sl  # noqa: E402
from spinlat import datasets, units  # noqa: E402
from spinlat.integrators import SpinLatticeLangevin, SpinLatticeNVE  # noqa: E402
from spinlat.potentials import Landau, MagneticMACE  # noqa: E402

from _tiny import TINY, _one_thread  # noqa: E402,F401  (autouse fixture)


@pytest.fixture(scope="module")
def fitted():
    """A tiny soc=True model fitted 10 epochs to 8 synthetic bcc Fe teacher configurations."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return MagneticMACE.train(datasets.teacher("Fe", 8, seed=0, soc=True), soc=True, seed=0, epochs=10,
                                  dtype="float64", progress=False, **TINY)


def warm(reps=(2, 2, 2), T=300.0, seed=1):
    """bcc Fe with Maxwell velocities at T and a tilted ferromagnet of spins."""
    rng = np.random.default_rng(seed)
    st = bcc_fe(reps)
    n = len(st)
    sigma = np.sqrt(units.K_B * T / st.masses * units.FORCE_TO_ACCELERATION)
    spins = np.array([0.0, 0.0, 1.0]) + rng.normal(0, 0.4, (n, 3))
    return st.copy(velocities=rng.normal(size=(n, 3)) * sigma[:, None], spins=spins,
                   positions=st.positions + rng.normal(0, 0.02, (n, 3)))


def total_energy(pot, s):
    return pot.compute(s, forces=False, magnetic_forces=False).energy + s.kinetic_energy()


@pytest.mark.slow
def test_implicit_nve_is_time_reversible(fitted):
    """soc=True mMACE is exactly even under m → −m, so (r, v, m) → (r, −v, −m) is the time
    reversal of the dynamics: N steps, reverse, N steps return to the reversed start to the
    solver tolerance (the explicit midpoint misses it by its local error)."""
    st = warm()
    errors = {}
    for step in ("implicit_midpoint", "explicit_midpoint"):
        out = SpinLatticeNVE(1.0, spin_step=step, spin_tolerance=1e-13, max_spin_iterations=20).run(st, fitted, 20)
        back = SpinLatticeNVE(1.0, spin_step=step, spin_tolerance=1e-13, max_spin_iterations=20).run(
            out.copy(velocities=-out.velocities, spins=-out.spins), fitted, 20)
        errors[step] = (np.abs(back.positions - st.positions).max(), np.abs(back.velocities + st.velocities).max(),
                        np.abs(back.spins + st.spins).max())
    dr, dv, ds = errors["implicit_midpoint"]
    assert dr < 1e-10 and dv < 1e-12 and ds < 1e-10, errors
    assert errors["explicit_midpoint"][2] > 1e3 * max(ds, 1e-14), errors


@pytest.mark.slow
def test_reversal_miss_follows_spin_tolerance(fitted):
    """``spin_tolerance`` is the documented price of fewer model calls: N steps, the time reversal,
    N steps back miss the start spins by no more than the per-step tolerance accumulated over the
    2N steps (the tiny model is not chaotic over 20 fs), and a looser tolerance takes fewer calls."""
    st = warm()
    miss, calls = {}, {}
    for tol in (1e-5, 1e-9):
        fwd = SpinLatticeNVE(1.0, spin_tolerance=tol, max_spin_iterations=20)
        out = fwd.run(st, fitted, 20)
        calls[tol] = fwd.calls_per_step
        back = SpinLatticeNVE(1.0, spin_tolerance=tol, max_spin_iterations=20).run(
            out.copy(velocities=-out.velocities, spins=-out.spins), fitted, 20)
        miss[tol] = np.abs(back.spins + st.spins).max()
        np.testing.assert_allclose(np.linalg.norm(back.spins, axis=1), 1.0, atol=1e-13)
    assert miss[1e-9] <= 40 * 1e-9 and miss[1e-5] <= 40 * 1e-5, miss
    assert miss[1e-9] < miss[1e-5], miss
    assert calls[1e-5] < calls[1e-9], calls


@pytest.mark.slow
def test_implicit_nve_calls_spin_lengths_and_bounded_energy(fitted):
    """At dt = 1 fs: ≤ 3 model calls per step on average (the end-of-step evaluation included;
    a count, the Anderson solver's), spin lengths exact, and an energy error that stays bounded:
    no secular drift beyond the fluctuation."""
    st = warm()
    integ = SpinLatticeNVE(1.0)
    e0 = total_energy(fitted, st)
    s, calls, steps, err = st, 0, 0, []
    for chunk in range(8):
        s = integ.run(s, fitted, 10)
        assert integ.initial_calls == (1 if chunk == 0 else 0)
        calls += integ.calls_per_step * 10
        steps += 10
        assert integ.call_equivalents_per_step == integ.calls_per_step  # Anderson: no Jacobian products
        err.append(total_energy(fitted, s) - e0)
    assert integ.statistics["unconverged_steps"] == 0
    assert calls / steps <= 3.0, (calls, steps)
    assert np.abs(np.linalg.norm(s.spins, axis=1) - 1).max() < 1e-13
    err = np.abs(np.array(err)) / len(st)
    assert err.max() < 1e-6, err  # eV/atom
    assert err[4:].max() < 3 * err[:4].max() + 1e-9, err  # no growth from the first half to the second


def test_adiabatic_magnitudes_equal_minimize(fitted):
    """After each step the magnitudes are those of ``minimize(magnitudes=True)`` at the step's
    positions and directions; NVE and Langevin alike."""
    pot = fitted + Landau(a=-0.5, b=0.05)  # a bounded longitudinal energy around the fitted one
    st = warm()
    for integ in (SpinLatticeNVE(0.5, adiabatic_magnitudes=True, magnitude_tolerance=1e-9),
                  SpinLatticeLangevin(0.5, 300.0, 0.01, 0.1, seed=3, adiabatic_magnitudes=True,
                                      magnitude_tolerance=1e-9)):
        out = integ.run(st, pot, 3)
        ref = sl.minimize(out.copy(moments=st.moments), pot, spins=False, magnitudes=True, hmax=1e-10,
                          max_steps=500)
        assert np.abs(out.moments - ref.moments).max() < 1e-7, np.abs(out.moments - ref.moments).max()
        assert np.abs(np.linalg.norm(out.spins, axis=1) - 1).max() < 1e-13
        assert integ.last_evaluation.forces is not None
        np.testing.assert_allclose(integ.last_evaluation.forces, pot.compute(out).forces, atol=1e-10)


@pytest.mark.slow
def test_adiabatic_nve_conserves_the_relaxed_energy(fitted):
    """E(r, s, |m|*(r, s)) + kinetic energy: bounded error, second order in dt."""
    pot = fitted + Landau(a=-0.5, b=0.05)
    st = warm()
    errs = []
    for dt in (1.0, 0.5):
        integ = SpinLatticeNVE(dt, adiabatic_magnitudes=True, magnitude_tolerance=1e-9)
        s = integ.run(st, pot, 0)
        e0 = total_energy(pot, s)
        err = 0.0
        for _ in range(3):
            s = integ.run(s, pot, int(round(6.0 / dt)))
            err = max(err, abs(total_energy(pot, s) - e0))
        errs.append(err / len(st))
    assert errs[0] < 1e-5, errs
    assert 2.5 < errs[0] / errs[1] < 6.0, errs


@pytest.mark.slow
def test_newton_spin_solver_same_step_reversible_restartable(fitted):
    """``spin_solver="newton"`` (Newton-Krylov with the model's field-Jacobian products) solves the
    Anderson solver's equation: over 20 steps at 1 fs the trajectories agree to about the
    tolerance; spin lengths stay 1 to round-off; (r, −v, −m) returns to the start to the tolerance;
    a restored checkpoint continues bit for bit; the statistics count the products and their
    call equivalents."""
    from spinlat.integrators.spin_lattice import JVP_COST

    st = warm()
    out, stats = {}, {}
    for solver in ("anderson", "newton"):
        integ = SpinLatticeNVE(1.0, spin_tolerance=1e-12, max_spin_iterations=30, spin_solver=solver)
        out[solver] = integ.run(st, fitted, 20)
        stats[solver] = integ.statistics
        assert integ.statistics["unconverged_steps"] == 0
    a, nt = out["anderson"], out["newton"]
    assert np.abs(a.spins - nt.spins).max() < 1e-9 and np.abs(a.positions - nt.positions).max() < 1e-10
    assert np.abs(np.linalg.norm(nt.spins, axis=1) - 1).max() < 1e-14
    s = stats["newton"]
    assert stats["anderson"]["jvp_calls"] == 0 and s["jvp_calls"] > 0
    assert s["call_equivalents_per_step"] == pytest.approx(s["calls_per_step"] + JVP_COST * s["jvp_calls"] / 20,
                                                           rel=1e-15)
    # time reversal
    fwd = SpinLatticeNVE(1.0, spin_tolerance=1e-13, max_spin_iterations=30, spin_solver="newton").run(st, fitted, 20)
    back = SpinLatticeNVE(1.0, spin_tolerance=1e-13, max_spin_iterations=30, spin_solver="newton").run(
        fwd.copy(velocities=-fwd.velocities, spins=-fwd.spins), fitted, 20)
    dr, dv, ds = (np.abs(back.positions - st.positions).max(), np.abs(back.velocities + st.velocities).max(),
                  np.abs(back.spins + st.spins).max())
    assert dr < 1e-10 and dv < 1e-12 and ds < 1e-10, (dr, dv, ds)
    # checkpoint and restart: bit for bit
    integ = SpinLatticeNVE(1.0, spin_solver="newton")
    mid = integ.run(st, fitted, 6)
    ck = integ.checkpoint(fitted)
    ref = integ.run(mid, fitted, 6)
    fresh = SpinLatticeNVE(1.0, spin_solver="newton")
    fresh.restore(ck, mid, fitted)
    again = fresh.run(mid, fitted, 6)
    for k in ("positions", "velocities", "spins"):
        assert np.array_equal(getattr(again, k), getattr(ref, k)), k
    for k in ("spin_iterations", "jvp_calls", "unconverged_steps"):  # the restored run evaluates its start once
        assert fresh.statistics[k] == integ.statistics[k], k


def test_monte_carlo_refuses_mmace_at_once_naming_what_to_use():
    """MonteCarlo moves one spin with a local energy change; an mMACE model (alone or in a sum)
    is refused before any model call (the probe took minutes on a small cell to refuse it)."""
    from spinlat.errors import InputError
    from spinlat.integrators import MonteCarlo

    model = MagneticMACE.create(elements=["Fe"], seed=0, **TINY)
    calls = []
    model.compute = lambda *a, **k: calls.append(1)
    st = bcc_fe((1, 1, 1), seed=0)
    for pot in (model, Landau(-0.5, 0.05) + model):
        with pytest.raises(InputError, match="MagneticMACE.*many-body.*LLG"):
            MonteCarlo(100.0, seed=0).check(st, pot)
    assert calls == []
