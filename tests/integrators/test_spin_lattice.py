"""Coupled spin-lattice integrators: energy conservation, thermostats, reproducibility, bad input."""

import numpy as np
import pytest

import spinlat as sl
from spinlat import units
from spinlat.errors import InputError
from spinlat.integrators import SpinLatticeLangevin, SpinLatticeNVE
from spinlat.potentials.base import Evaluation, Potential
from spinlat.statistics import average


# ------------------------------------------------------------------ small test potentials
class PairSpin(Potential):
    """Smooth pair potential + distance-dependent exchange (NumPy, exact derivatives):

    E = Σ_{i<j} [ε ((σ/r)^12 − 2 (σ/r)^6) − J(r) s_i·s_j] c(r),  J(r) = J0 exp(−(r/r0)²),
    c(r) = (1 − (r/rc)²)² smooth cutoff."""

    def __init__(self, eps=0.4, sigma=2.5, J0=0.05, r0=2.5, rc=4.0):
        self.eps, self.sigma, self.J0, self.r0, self.cutoff = eps, sigma, J0, r0, rc

    def _pairs(self, state, nl):
        d = nl.vectors(state.positions)[nl.half]
        i, j = nl.i[nl.half], nl.j[nl.half]
        r = np.linalg.norm(d, axis=1)
        keep = r < self.cutoff
        return i[keep], j[keep], d[keep], r[keep]

    def _radial(self, r):
        x = self.sigma / r
        lj = self.eps * (x**12 - 2 * x**6)
        dlj = self.eps * (-12 * x**12 + 12 * x**6) / r
        J = self.J0 * np.exp(-(r / self.r0) ** 2)
        dJ = -2 * r / self.r0**2 * J
        c = (1 - (r / self.cutoff) ** 2) ** 2
        dc = -4 * r / self.cutoff**2 * (1 - (r / self.cutoff) ** 2)
        return lj, dlj, J, dJ, c, dc

    def _evaluate(self, state, nl, forces, magnetic_forces, stress):
        n = len(state)
        i, j, d, r = self._pairs(state, nl)
        lj, dlj, J, dJ, c, dc = self._radial(r)
        mag = state.moments > 0
        J = J * (mag[i] & mag[j])
        dJ = dJ * (mag[i] & mag[j])
        s = state.spins
        sd = np.sum(s[i] * s[j], axis=1)
        e_pair = (lj - J * sd) * c
        energies = np.zeros(n)
        np.add.at(energies, i, 0.5 * e_pair)
        np.add.at(energies, j, 0.5 * e_pair)
        ev = Evaluation(float(e_pair.sum()), energies=energies)
        if forces:
            de = (dlj - dJ * sd) * c + (lj - J * sd) * dc
            fij = (de / r)[:, None] * d  # dE/dr_j
            f = np.zeros((n, 3))
            np.add.at(f, i, fij)
            np.add.at(f, j, -fij)
            ev.forces = f
        if magnetic_forces:
            ev.magnetic_forces = self._fields(state, i, j, J * c, project=True)
        return ev

    def _fields(self, state, i, j, w, project):
        n = len(state)
        g = np.zeros((n, 3))  # -dE/ds
        np.add.at(g, i, w[:, None] * state.spins[j])
        np.add.at(g, j, w[:, None] * state.spins[i])
        if project:
            g -= np.sum(g * state.spins, axis=1)[:, None] * state.spins
        mom = np.where(state.moments > 0, state.moments, 1.0)
        return np.where(state.moments[:, None] > 0, g / mom[:, None], 0.0)

    def rotation_fields(self, state, nl, atoms):
        i, j, _, r = self._pairs(state, nl)
        _, _, J, _, c, _ = self._radial(r)
        mag = state.moments > 0
        return self._fields(state, i, j, J * c * (mag[i] & mag[j]), project=False)[atoms]


class Field(Potential):
    """Zeeman-like E = −μB Σ moments_i s_i·B (B tesla)."""

    cutoff = 0.0

    def __init__(self, B):
        self.B = np.asarray(B, float)

    def _evaluate(self, state, nl, forces, magnetic_forces, stress):
        n = len(state)
        e = -units.MU_B * state.moments * (state.spins @ self.B)
        h = np.where(state.moments[:, None] > 0, units.MU_B * self.B, 0.0)
        return Evaluation(float(e.sum()), np.zeros((n, 3)) if forces else None, h if magnetic_forces else None,
                          None, e)


class LandauTest(Potential):
    """E = Σ a μ² + b μ⁴ on moment magnitudes μ (eV)."""

    cutoff = 0.0
    depends_on_magnitudes = True

    def __init__(self, a, b):
        self.a, self.b = a, b

    def _evaluate(self, state, nl, forces, magnetic_forces, stress):
        n = len(state)
        m = state.moments
        e = self.a * m**2 + self.b * m**4
        h = -(2 * self.a * m + 4 * self.b * m**3)[:, None] * state.spins
        return Evaluation(float(e.sum()), np.zeros((n, 3)) if forces else None, h if magnetic_forces else None,
                          None, e)


class NonLocal(PairSpin):
    local = False


def crystal(reps=3, a=3.6, moment=2.0, T=300.0, seed=0, rattle=0.05):
    """fcc-like cluster in a periodic box with random spins and Maxwell velocities at T."""
    rng = np.random.default_rng(seed)
    basis = np.array([[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]) * a
    st = sl.State(basis, [26] * 4, cell=np.eye(3) * a, pbc=True, moments=[moment] * 4).repeat(reps)
    n = len(st)
    v = rng.normal(size=(n, 3)) * np.sqrt(units.K_B * T * units.FORCE_TO_ACCELERATION / st.masses[:, None])
    return st.copy(positions=st.positions + rng.normal(0, rattle, (n, 3)), spins=rng.normal(size=(n, 3)),
                   velocities=v)


def total_energy(st, pot):
    return pot.compute(st, forces=False).energy + st.kinetic_energy()


def max_energy_error(integ_cls, pot, st, dt, t_total=60.0, chunks=6):
    integ = integ_cls(dt)
    e0 = total_energy(st, pot)
    n = int(round(t_total / dt / chunks))
    err = 0.0
    s = st
    for _ in range(chunks):
        s = integ.run(s, pot, n)
        err = max(err, abs(total_energy(s, pot) - e0))
    return err, s


# ------------------------------------------------------------------ NVE
def test_nve_energy_error_second_order():
    pot = PairSpin() + Field([0, 0, 2.0])
    st = crystal(2, T=600.0)
    e1, s1 = max_energy_error(SpinLatticeNVE, pot, st, 2.0)
    e2, s2 = max_energy_error(SpinLatticeNVE, pot, st, 1.0)
    ratio = e1 / e2
    assert 3.2 < ratio < 5.0, (e1, e2, ratio)
    assert np.abs(np.linalg.norm(s2.spins, axis=1) - 1).max() < 1e-13
    assert np.array_equal(s2.moments, st.moments)


@pytest.mark.parametrize("spin_step", ["implicit_midpoint", "explicit_midpoint"])
def test_nve_nonlocal_scheme_second_order(spin_step):
    pot = NonLocal() + Field([0, 0, 2.0])
    assert pot.local is False
    st = crystal(2, T=600.0)

    def integ(dt):
        return SpinLatticeNVE(dt, spin_step=spin_step)

    e1, _ = max_energy_error(integ, pot, st, 2.0, t_total=40)
    e2, s2 = max_energy_error(integ, pot, st, 1.0, t_total=40)
    assert 3.0 < e1 / e2 < 5.5, (e1, e2)
    assert np.abs(np.linalg.norm(s2.spins, axis=1) - 1).max() < 1e-13


def _reversal_error(pot, pot_reversed, st, dt, steps, **options):
    """Run ``steps`` forward, apply time reversal (v → −v, m → −m; ``pot_reversed`` is ``pot``
    with its time-odd parameters reversed), run ``steps`` forward again: the largest difference
    from the time-reversed start (positions Å, velocities Å/fs, spins)."""
    out = SpinLatticeNVE(dt, **options).run(st, pot, steps)
    flipped = out.copy(velocities=-out.velocities, spins=-out.spins)
    back = SpinLatticeNVE(dt, **options).run(flipped, pot_reversed, steps)
    return (np.abs(back.positions - st.positions).max(), np.abs(back.velocities + st.velocities).max(),
            np.abs(back.spins + st.spins).max(), back)


@pytest.mark.parametrize("solver", ["anderson", "fixed_point"])
def test_nve_nonlocal_implicit_step_is_time_reversible(solver):
    """Forward N steps, reverse velocities and moments (and the Zeeman field, the time-odd
    parameter), forward N steps: the implicit spin step returns to the start to its solver
    tolerance, with either solver; the explicit midpoint does not."""
    pot, pot_reversed = NonLocal() + Field([0, 0, 2.0]), NonLocal() + Field([0, 0, -2.0])
    st = crystal(2, T=600.0)
    dr, dv, ds, back = _reversal_error(pot, pot_reversed, st, 1.0, 40, spin_tolerance=1e-13,
                                       max_spin_iterations=30, spin_solver=solver)
    assert dr < 1e-10 and dv < 1e-12 and ds < 1e-10, (dr, dv, ds)
    assert np.abs(np.linalg.norm(back.spins, axis=1) - 1).max() < 1e-13
    # at the default tolerance (1e-10) the return is to about that tolerance
    dr1, dv1, ds1, _ = _reversal_error(pot, pot_reversed, st, 1.0, 40, spin_solver=solver)
    assert ds1 < 1e-8 and ds1 > ds, (ds1, ds)
    if solver == "fixed_point":
        return
    # the old scheme: off by the size of its local error, many orders of magnitude more
    er, ev_, es, _ = _reversal_error(pot, pot_reversed, st, 1.0, 40, spin_step="explicit_midpoint")
    assert es > 1e4 * max(ds, 1e-14), (es, ds)


@pytest.mark.parametrize("solver", ["anderson", "fixed_point"])
def test_nve_nonlocal_implicit_step_statistics_and_warning(solver):
    pot = NonLocal()
    st = crystal(2, T=300.0)
    integ = SpinLatticeNVE(0.5, spin_solver=solver)
    out = integ.run(st, pot, 10)
    stats = integ.statistics
    assert stats["steps"] == 10 and stats["unconverged_steps"] == 0
    assert stats["model_calls"] == 1 + 10 + stats["spin_iterations"]
    assert integ.initial_calls == stats["initial_calls"] == 1
    assert integ.calls_per_step == stats["calls_per_step"] == (stats["model_calls"] - 1) / 10
    # continuing from the returned State predicts from the kept midpoint fields: ≤ 2 field calls
    integ.run(out, pot, 10)
    assert integ.statistics["model_calls"] <= 3 * 10, integ.statistics
    assert integ.initial_calls == 0  # the State it returned: forces and fields kept
    assert "midpoint_fields" in integ.checkpoint(pot)
    with pytest.warns(sl.errors.ConvergenceWarning, match="max_spin_iterations=1"):
        SpinLatticeNVE(1.0, spin_tolerance=1e-15, max_spin_iterations=1, spin_solver=solver).run(st, pot, 3)
    for bad in (dict(spin_step="rk4"), dict(spin_tolerance=0.0), dict(max_spin_iterations=0),
                dict(spin_solver="broyden")):
        with pytest.raises(InputError):
            SpinLatticeNVE(1.0, **bad)


def test_nve_nonlocal_anderson_and_fixed_point_solve_the_same_step_with_fewer_calls():
    """Both solvers converge to the same implicit step (trajectories agree to about the
    tolerance); Anderson's carried secant pairs and start-field predictor need fewer calls."""
    pot = NonLocal() + Field([0, 0, 2.0])
    st = crystal(2, T=600.0)
    out, calls = {}, {}
    for solver in ("anderson", "fixed_point"):
        integ = SpinLatticeNVE(1.0, spin_tolerance=1e-12, max_spin_iterations=30, spin_solver=solver)
        out[solver] = integ.run(st, pot, 30)
        calls[solver] = integ.statistics["model_calls"]
        assert integ.statistics["unconverged_steps"] == 0
    a, f = out["anderson"], out["fixed_point"]
    assert np.abs(a.spins - f.spins).max() < 1e-9 and np.abs(a.positions - f.positions).max() < 1e-10
    assert np.abs(np.linalg.norm(a.spins, axis=1) - 1).max() < 1e-13
    assert calls["anderson"] < 0.8 * calls["fixed_point"], calls


def test_nve_nonlocal_anderson_checkpoint_old_checkpoint_and_bad_memory():
    """The Anderson state (secant pairs, increments, Lipschitz estimate) is in the checkpoint: a
    restored integrator continues bit for bit. A checkpoint without it (written before it
    existed) restarts with a new memory, and a memory of nonsense is caught by the safeguard:
    both continue the same trajectory to about the solver tolerance."""
    pot = NonLocal() + Field([0, 0, 2.0])
    st = crystal(2, T=600.0)
    integ = SpinLatticeNVE(1.0)
    mid = integ.run(st, pot, 12)
    ck = integ.checkpoint(pot)
    assert {"anderson_dx", "anderson_df", "midpoint_increments", "spin_lipschitz"} <= set(ck)
    assert ck["anderson_dx"].shape[1:] == (len(st), 3) and 1 <= len(ck["anderson_dx"]) <= 5
    ref = integ.run(mid, pot, 12)

    def resumed(checkpoint):
        fresh = SpinLatticeNVE(1.0)
        fresh.restore(checkpoint, mid, pot)
        out = fresh.run(mid, pot, 12)
        assert fresh.statistics["unconverged_steps"] == 0
        return out, fresh.statistics

    again, _ = resumed(ck)
    for k in ("positions", "velocities", "spins"):
        assert np.array_equal(getattr(again, k), getattr(ref, k)), k
    old = {k: v for k, v in ck.items() if k not in ("anderson_dx", "anderson_df", "midpoint_increments",
                                                    "spin_lipschitz")}
    rng = np.random.default_rng(0)
    bad = dict(ck, anderson_dx=rng.normal(size=ck["anderson_dx"].shape),
               anderson_df=rng.normal(size=ck["anderson_df"].shape))
    for checkpoint in (old, bad):
        out, stats = resumed(checkpoint)
        assert np.abs(out.spins - ref.spins).max() < 1e-8, np.abs(out.spins - ref.spins).max()
        assert np.abs(np.linalg.norm(out.spins, axis=1) - 1).max() < 1e-13
        assert stats["calls_per_step"] < 5, stats


def test_anderson_coefficients_kernel_is_the_least_squares_fit():
    """NumPy reference: γ = argmin ‖f − Σ γ_j df_j‖; a column dependent on the newer ones is dropped."""
    from spinlat.integrators.spin_lattice import _anderson_coefficients

    rng = np.random.default_rng(1)
    dfs = rng.normal(size=(4, 30))
    f = rng.normal(size=30)
    gamma = _anderson_coefficients(dfs, f, 1e-8)
    ref = np.linalg.lstsq(dfs.T, f, rcond=None)[0]
    np.testing.assert_allclose(gamma, ref, rtol=1e-10, atol=1e-12)
    dep = np.vstack([dfs[1:2] * 0.5 + dfs[2:3] * 0.25, dfs[1:]])  # oldest = combination of newer ones
    gamma = _anderson_coefficients(dep, f, 1e-8)
    assert gamma[0] == 0.0
    np.testing.assert_allclose(gamma[1:], np.linalg.lstsq(dfs[1:].T, f, rcond=None)[0], rtol=1e-10, atol=1e-12)


def test_transverse_midpoint_solve_kernel():
    """NumPy check: out is the spherical-midpoint step in the part of h transverse to the
    iterate's midpoint m̂_x, consistent with its own midpoint: out − s0 = (fac/ρ) g⊥ × (s0 + out)
    with ρ = |s0 + out|, g = h − (h·m̂_x) m̂_x and g⊥ ⊥ (s0 + out); unit length; the returned
    residual is max |out − x|; a longitudinal field (along m̂_x) does nothing."""
    from spinlat.integrators.spin_lattice import _transverse_midpoint_solve

    rng = np.random.default_rng(2)
    s0 = rng.normal(size=(40, 3))
    s0 /= np.linalg.norm(s0, axis=1)[:, None]
    x = s0 + 0.1 * rng.normal(size=(40, 3))
    x /= np.linalg.norm(x, axis=1)[:, None]
    h = 0.5 * rng.normal(size=(40, 3))
    fac = 0.3
    out = np.empty_like(s0)
    res = _transverse_midpoint_solve(s0, x, h, fac, out, 1e-15)
    mx = (s0 + x) / np.linalg.norm(s0 + x, axis=1)[:, None]
    g = h - np.sum(h * mx, axis=1)[:, None] * mx
    a = s0 + out
    rho = np.linalg.norm(a, axis=1)
    m = a / rho[:, None]
    gp = g - np.sum(g * m, axis=1)[:, None] * m
    np.testing.assert_allclose(out - s0, (fac / rho)[:, None] * np.cross(gp, a), atol=1e-13)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-14)
    assert res == np.abs(out - x).max()
    out2 = np.empty_like(s0)
    _transverse_midpoint_solve(s0, x, h + 3.0 * mx, fac, out2, 1e-15)
    np.testing.assert_allclose(out2, out, atol=1e-14)


def test_nve_single_spin_precesses_at_larmor_frequency():
    B = 1.0
    st = sl.State([[0, 0, 0]], [26], moments=[2.0], spins=[[1, 0, 0]])
    integ = SpinLatticeNVE(1.0)
    out = integ.run(st, Field([0, 0, B]), 100)
    phi = units.GAMMA * B * 100.0  # rad; positive sense about +B (DESIGN.md)
    assert np.allclose(out.spins[0], [np.cos(phi), np.sin(phi), 0.0], atol=1e-12)


def test_nve_does_not_modify_input_and_sets_last_evaluation():
    pot = PairSpin()
    st = crystal(2)
    before = {k: getattr(st, k).copy() for k in ("positions", "spins", "velocities", "moments")}
    integ = SpinLatticeNVE(1.0)
    out = integ.run(st, pot, 5)
    for k, v in before.items():
        assert np.array_equal(getattr(st, k), v)
    ev = pot.compute(out, forces=True)
    assert np.isclose(integ.last_evaluation.energy, ev.energy, rtol=0, atol=1e-12)
    assert np.allclose(integ.last_evaluation.forces, ev.forces, atol=1e-12)
    # continuing a run equals one long run (cached forces give the same numbers)
    again = integ.run(out, pot, 5)
    once = SpinLatticeNVE(1.0).run(st, pot, 10)
    assert np.allclose(again.positions, once.positions, atol=1e-13)
    assert np.allclose(again.spins, once.spins, atol=1e-13)


def test_nve_with_real_potentials_conserves_energy():
    eam_mod = pytest.importorskip("spinlat.potentials.eam")
    from conftest import EAM_FE, bcc_fe

    if not EAM_FE.exists():
        pytest.skip("EAM file missing")
    from spinlat.potentials import BetheSlaterExchange, Zeeman

    pot = eam_mod.EAM(EAM_FE) + BetheSlaterExchange(3.4, 0.02726, 0.2171, 1.841) + Zeeman([0, 0, 1.0])
    st = bcc_fe((3, 3, 3), rattle=0.05, seed=2)
    e1, _ = max_energy_error(SpinLatticeNVE, pot, st, 0.4, t_total=16, chunks=4)
    e2, _ = max_energy_error(SpinLatticeNVE, pot, st, 0.2, t_total=16, chunks=4)
    assert 3.2 < e1 / e2 < 5.0, (e1, e2)



def test_nve_isotropic_exchange_keeps_total_moment_to_second_order_and_momentum_exactly():
    """EAM + Bethe-Slater exchange (no field, no anisotropy): the energy is invariant under a
    global spin rotation, so the total moment M = Σ m_i is a constant of motion. The colour-class
    spin sweeps rotate one class at a time, so M is kept to O(dt²) (bounded), the total momentum
    to round-off (pair forces)."""
    eam_mod = pytest.importorskip("spinlat.potentials.eam")
    from conftest import EAM_FE, bcc_fe

    if not EAM_FE.exists():
        pytest.skip("EAM file missing")
    from spinlat.potentials import BetheSlaterExchange

    pot = eam_mod.EAM(EAM_FE) + BetheSlaterExchange(3.4, 0.02726, 0.2171, 1.841)
    st = bcc_fe((3, 3, 3), rattle=0.05, seed=2)
    s = np.array([0, 0, 1.0]) + 0.5 * np.random.default_rng(0).normal(size=(len(st), 3))
    st = st.copy(spins=s)
    m0 = st.magnetization()
    errors = []
    for dt in (0.5, 0.25):
        x, err, integ = st, 0.0, SpinLatticeNVE(dt)
        for _ in range(5):
            x = integ.run(x, pot, int(10 / dt))
            err = max(err, np.abs(x.magnetization() - m0).max())
        errors.append(err)
        assert np.abs((x.velocities * x.masses[:, None]).sum(axis=0)).max() < 1e-12
    assert 3.2 < errors[0] / errors[1] < 5.0, errors
    assert errors[0] < 1e-4 * np.linalg.norm(m0)

# ------------------------------------------------------------------ Langevin
def test_langevin_lattice_equipartition():
    st = crystal(2, moment=0.0, T=50.0, seed=3)
    pot = PairSpin()
    T = 300.0
    integ = SpinLatticeLangevin(2.0, T, friction=0.02, damping=0.0, seed=1)
    s = integ.run(st, pot, 300)
    temps = []
    for _ in range(300):
        s = integ.run(s, pot, 5)
        temps.append(s.temperature())
    # the friction acts on every atom (no conserved momentum): ⟨E_kin⟩ = 3N k_B T/2, the count
    # of degrees of freedom State.temperature (and the thermo lines, the trajectory) divide by
    est = average(temps)
    assert est.reliable and est.error < 0.03 * T
    assert abs(est.value - T) < 4 * est.error, est


def langevin_function(x):
    return 1 / np.tanh(x) - 1 / x


def test_langevin_spins_in_field_reach_langevin_function():
    n = 400
    moment, B, T = 2.0, 100.0, 150.0
    st = sl.State(np.zeros((n, 3)) + np.arange(n)[:, None] * [1.0, 0, 0], [26] * n, moments=[moment] * n,
                  spins=np.tile([1.0, 0, 0], (n, 1)))
    pot = Field([0, 0, B])
    integ = SpinLatticeLangevin(1.0, 0.0, friction=0.0, damping=0.5, spin_temperature=T, seed=7)
    s = integ.run(st, pot, 600)
    mz = []
    for _ in range(100):
        s = integ.run(s, pot, 20)
        mz.append(s.spins[:, 2].mean())
    x = moment * units.MU_B * B / (units.K_B * T)
    expected = langevin_function(x)
    err = np.std(mz) / np.sqrt(len(mz) / 3)
    assert abs(np.mean(mz) - expected) < max(4 * err, 0.01), (np.mean(mz), expected, err)


def test_langevin_longitudinal_boltzmann_distribution():
    from scipy.integrate import quad

    a, b, T = -0.05, 0.01, 300.0
    n = 400
    st = sl.State(np.arange(n)[:, None] * [2.0, 0, 0], [26] * n, moments=[1.5] * n)
    pot = LandauTest(a, b)
    integ = SpinLatticeLangevin(0.5, 0.0, friction=0.0, damping=0.05, spin_temperature=T, seed=3)
    s = integ.run(st, pot, 1000)
    m1, m2 = np.zeros(n), np.zeros(n)
    for _ in range(200):
        s = integ.run(s, pot, 10)
        m1 += s.moments / 200
        m2 += s.moments**2 / 200
    kT = units.K_B * T

    def w(m):  # the measure the docstring names: μ² exp(−E/k_B T)
        return m**2 * np.exp(-(a * m**2 + b * m**4) / kT)

    z = quad(w, 0, 20)[0]
    # per-spin time averages are independent across the free spins
    for avg, power in ((average(m1), 1), (average(m2), 2)):
        expected = quad(lambda m: m**power * w(m), 0, 20)[0] / z
        assert avg.reliable and avg.error < 0.01 * expected
        assert abs(avg.value - expected) < 4 * avg.error, (power, avg, expected)
    assert np.all(s.moments > 0)


def test_langevin_same_seed_bitwise_identical():
    pot = PairSpin() + Field([0, 0, 1.0])
    st = crystal(2)
    runs = [SpinLatticeLangevin(1.0, 300.0, 0.01, 0.1, seed=42).run(st, pot, 20) for _ in range(2)]
    for k in ("positions", "velocities", "spins", "moments"):
        assert np.array_equal(getattr(runs[0], k), getattr(runs[1], k))
    other = SpinLatticeLangevin(1.0, 300.0, 0.01, 0.1, seed=43).run(st, pot, 20)
    assert not np.array_equal(other.spins, runs[0].spins)


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("dt", [0.0, -1.0, 11.0, np.nan])
def test_bad_dt(dt):
    with pytest.raises(InputError, match="dt"):
        SpinLatticeNVE(dt)
    with pytest.raises(InputError, match="dt"):
        SpinLatticeLangevin(dt, 300, 0.01, 0.1)


@pytest.mark.parametrize("kw, name", [({"temperature": -1}, "temperature"), ({"friction": -0.1}, "friction"),
                                      ({"damping": -0.1}, "damping"), ({"spin_temperature": -5}, "spin_temperature")])
def test_bad_langevin_parameters(kw, name):
    args = {"dt": 1.0, "temperature": 300.0, "friction": 0.01, "damping": 0.1}
    args.update(kw)
    with pytest.raises(InputError, match=name):
        SpinLatticeLangevin(**args)


def test_potential_without_magnetic_forces_rejected_before_work():
    class NoSpin(PairSpin):
        provides_magnetic_forces = False

        def _evaluate(self, *a, **k):  # pragma: no cover - must not be reached
            raise AssertionError("evaluated before the check")

    st = crystal(2)
    for integ in (SpinLatticeNVE(1.0), SpinLatticeLangevin(1.0, 300, 0.01, 0.1)):
        with pytest.raises(InputError, match="magnetic forces"):
            integ.check(st, NoSpin())
        with pytest.raises(InputError, match="magnetic forces"):
            integ.run(st, NoSpin(), 3)


def test_linear_fast_path_matches_generic_sweep():
    """EAM + exchange + Zeeman take the fused linear-field sweep; hiding ``spin_couplings``
    forces the generic per-colour path: same dynamics (NVE and Langevin, same noise)."""
    eam_mod = pytest.importorskip("spinlat.potentials.eam")
    from conftest import EAM_FE, bcc_fe

    if not EAM_FE.exists():
        pytest.skip("EAM file missing")
    from spinlat.integrators.spin_lattice import _Work
    from spinlat.potentials import BetheSlaterExchange, Zeeman

    class Hidden(BetheSlaterExchange):
        spin_couplings = None

    def pots(cls):
        return eam_mod.EAM(EAM_FE) + cls(3.4, 0.02726, 0.2171, 1.841) + Zeeman([0, 0, 2.0])

    st = bcc_fe((3, 3, 3), rattle=0.05, seed=4)
    fast, slow = pots(BetheSlaterExchange), pots(Hidden)
    assert _Work(st, fast).linear and not _Work(st, slow).linear
    a = SpinLatticeNVE(0.5).run(st, fast, 20)
    b = SpinLatticeNVE(0.5).run(st, slow, 20)
    assert np.allclose(a.spins, b.spins, atol=1e-12) and np.allclose(a.positions, b.positions, atol=1e-12)
    a = SpinLatticeLangevin(0.5, 300, 0.01, 0.2, seed=5).run(st, fast, 20)
    b = SpinLatticeLangevin(0.5, 300, 0.01, 0.2, seed=5).run(st, slow, 20)
    assert np.allclose(a.spins, b.spins, atol=1e-10) and np.allclose(a.velocities, b.velocities, atol=1e-12)


# ------------------------------------------------------------------ adiabatic magnitudes
class MagnitudeExchange(PairSpin):
    """PairSpin whose exchange acts on the moments, E_x = −Σ J(r) c(r) m_i·m_j, plus a Landau
    term a|m|² + b|m|⁴ per atom: the relaxed magnitudes depend on the spins and positions."""

    depends_on_magnitudes = True

    def __init__(self, a=-0.4, b=0.05, **kw):
        super().__init__(**kw)
        self.a, self.b = a, b

    def _evaluate(self, state, nl, forces, magnetic_forces, stress):
        n, m = len(state), state.moments
        i, j, d, r = self._pairs(state, nl)
        lj, dlj, J, dJ, c, dc = self._radial(r)
        mv = state.spins * m[:, None]
        md = np.sum(mv[i] * mv[j], axis=1)
        e_pair = (lj - J * md) * c
        e_l = self.a * m**2 + self.b * m**4
        energies = e_l.copy()
        np.add.at(energies, i, 0.5 * e_pair)
        np.add.at(energies, j, 0.5 * e_pair)
        ev = Evaluation(float(energies.sum()), energies=energies)
        if forces:
            de = (dlj - dJ * md) * c + (lj - J * md) * dc
            fij = (de / r)[:, None] * d
            f = np.zeros((n, 3))
            np.add.at(f, i, fij)
            np.add.at(f, j, -fij)
            ev.forces = f
        if magnetic_forces:
            g = np.zeros((n, 3))
            np.add.at(g, i, (J * c)[:, None] * mv[j])
            np.add.at(g, j, (J * c)[:, None] * mv[i])
            ev.magnetic_forces = g - (2 * self.a * m + 4 * self.b * m**3)[:, None] * state.spins
        return ev

    def rotation_fields(self, state, nl, atoms):
        return self.compute(state, nl, forces=False, magnetic_forces=True).magnetic_forces[atoms]


def test_adiabatic_magnitudes_local_potential_matches_minimize_and_conserves_energy():
    pot = MagnitudeExchange()
    st = crystal(2, T=300.0)
    # magnetic forces are −∂E/∂m (finite differences)
    ev = pot.compute(st)
    k, eps = 3, 1e-6
    for d in range(3):
        m = st.spins * st.moments[:, None]
        for sgn in (1, -1):
            mm = m.copy()
            mm[k, d] += sgn * eps
            e = pot.compute(st.copy(spins=mm / np.linalg.norm(mm, axis=1)[:, None],
                                    moments=np.linalg.norm(mm, axis=1)), forces=False).energy
            m_e = e if sgn == 1 else m_e - e  # noqa: F821
        assert abs(-m_e / (2 * eps) - ev.magnetic_forces[k, d]) < 1e-6
    integ = SpinLatticeNVE(1.0, adiabatic_magnitudes=True, magnitude_tolerance=1e-10)
    out = integ.run(st, pot, 5)
    ref = sl.minimize(out.copy(moments=st.moments), pot, spins=False, magnitudes=True, hmax=1e-11, max_steps=500)
    assert np.abs(out.moments - ref.moments).max() < 1e-8
    assert np.ptp(out.moments) > 1e-3  # the relaxed magnitudes differ from atom to atom
    # the Born-Oppenheimer-like energy E(r, s, |m|*) + kinetic energy: second-order, bounded error
    errs = []
    for dt in (1.0, 0.5):
        integ = SpinLatticeNVE(dt, adiabatic_magnitudes=True, magnitude_tolerance=1e-10)
        s = integ.run(st, pot, 0)
        e0 = total_energy(s, pot)
        err = 0.0
        for _ in range(4):
            s = integ.run(s, pot, int(round(10 / dt)))
            err = max(err, abs(total_energy(s, pot) - e0))
        errs.append(err)
    assert 3.0 < errs[0] / errs[1] < 5.5, errs
    lang = SpinLatticeLangevin(0.5, 300.0, 0.01, 0.1, seed=1, adiabatic_magnitudes=True, magnitude_tolerance=1e-10)
    out = lang.run(st, pot, 3)
    ref = sl.minimize(out.copy(moments=st.moments), pot, spins=False, magnitudes=True, hmax=1e-11, max_steps=500)
    assert np.abs(out.moments - ref.moments).max() < 1e-8


def test_magnitude_relaxation_warm_started_from_earlier_pairs():
    """relax_magnitudes with the L-BFGS pairs of a relaxation at nearby positions (as the NVE
    step carries them): the same magnitudes to the tolerance, in no more evaluations (this
    nearly diagonal Landau problem converges in a few either way; the saving with mMACE is
    in tests/mmace/test_dynamics.py)."""
    from spinlat.minimization import relax_magnitudes

    pot = MagnitudeExchange()
    st = crystal(2, T=300.0)
    pairs = ([], [])
    first, _, _ = relax_magnitudes(st, pot, hmax=1e-10, pairs=pairs)
    assert 0 < len(pairs[0]) == len(pairs[1]) <= 10 and pairs[0][0].shape == (len(st),)
    rng = np.random.default_rng(4)
    moved = first.copy(positions=first.positions + rng.normal(0, 0.01, (len(st), 3)))
    cold, _, rc = relax_magnitudes(moved, pot, hmax=1e-10)
    warm, _, rw = relax_magnitudes(moved, pot, hmax=1e-10, pairs=pairs)
    assert rc.converged and rw.converged
    assert np.abs(warm.moments - cold.moments).max() < 1e-9
    assert rw.n_evaluations <= rc.n_evaluations, (rw.n_evaluations, rc.n_evaluations)
    bad = ([np.ones(3)], [np.ones(3)])  # pairs of another problem size are dropped
    again, _, _ = relax_magnitudes(moved, pot, hmax=1e-10, pairs=bad)
    assert np.abs(again.moments - cold.moments).max() < 1e-9


def test_adiabatic_magnitudes_need_a_magnitude_dependent_potential():
    with pytest.raises(InputError, match="does not depend on moment magnitudes"):
        SpinLatticeNVE(1.0, adiabatic_magnitudes=True).run(crystal(2), PairSpin(), 1)
    with pytest.raises(InputError, match="adiabatic_magnitudes"):
        SpinLatticeNVE(1.0, adiabatic_magnitudes=1)


class NonLocalMagnitudeExchange(MagnitudeExchange):
    local = False


@pytest.mark.parametrize("pot, options", [(NonLocal(), {}), (NonLocal(), dict(spin_solver="fixed_point")),
                                          (MagnitudeExchange(), dict(adiabatic_magnitudes=True)),
                                          (NonLocalMagnitudeExchange(), dict(adiabatic_magnitudes=True))],
                         ids=["implicit-spin-step", "fixed-point-solver", "adiabatic-magnitudes",
                              "implicit-adiabatic"])
def test_implicit_and_adiabatic_runs_split_and_restarted_bit_for_bit(tmp_path, pot, options):
    """The implicit spin step's field predictor and Anderson memory, the previous relaxed
    magnitudes and the relaxations' L-BFGS pairs travel with the returned State and in the
    trajectory's checkpoint: split or restarted runs are one run."""
    st = crystal(2, T=300.0)
    once = SpinLatticeNVE(0.5, **options).run(st, pot, 12)
    integ = SpinLatticeNVE(0.5, **options)
    split = integ.run(integ.run(st, pot, 5), pot, 7)
    sim = sl.Simulation(st, pot, SpinLatticeNVE(0.5, **options), trajectory=str(tmp_path / "t.h5"), every=3,
                        progress=False)
    sim.run(6)
    sim.close()
    again = sl.Simulation(None, pot, SpinLatticeNVE(0.5, **options), trajectory=str(tmp_path / "t.h5"), every=3,
                          restart=True, progress=False)
    assert again.resumed
    restarted = again.run(6)
    again.close()
    for out in (split, restarted):
        for k in ("positions", "velocities", "spins", "moments"):
            assert np.array_equal(getattr(out, k), getattr(once, k)), k


def test_spherical_midpoint_kernel_solves_the_cayley_equation():
    """NumPy check of the kernel: out − s0 = (fac/ρ) h⊥ × (s0 + out), ρ = |s0 + s1|, h⊥ ⊥ m̂ =
    (s0 + s1)/ρ, |out| = 1; zero field leaves s0; the returned residual is max |out − s1|."""
    from spinlat.integrators.spin_lattice import _spherical_midpoint

    rng = np.random.default_rng(5)
    s0 = rng.normal(size=(50, 3))
    s0 /= np.linalg.norm(s0, axis=1)[:, None]
    s1 = s0 + 0.1 * rng.normal(size=(50, 3))
    s1 /= np.linalg.norm(s1, axis=1)[:, None]
    h = rng.normal(size=(50, 3)) * 0.5
    h[7] = 0.0
    fac = 0.3
    out = np.empty_like(s0)
    res = _spherical_midpoint(s0, s1, h, fac, out)
    a = s0 + s1
    rho = np.linalg.norm(a, axis=1)
    m = a / rho[:, None]
    hp = h - np.sum(h * m, axis=1)[:, None] * m
    rhs = (fac / rho)[:, None] * np.cross(hp, s0 + out)
    np.testing.assert_allclose(out - s0, rhs, atol=1e-14)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-15)
    assert np.array_equal(out[7], s0[7])
    assert res == np.abs(out - s1).max()


def test_nve_nonlocal_newton_without_field_jacobian_takes_anderson():
    """A non-local potential without ``field_linearization`` (no field-Jacobian products) runs
    ``spin_solver="newton"`` as the Anderson solver: the same trajectory bit for bit, no products."""
    pot = NonLocal() + Field([0, 0, 2.0])
    st = crystal(2, T=600.0)
    out = {}
    for solver in ("anderson", "newton"):
        integ = SpinLatticeNVE(1.0, spin_solver=solver)
        out[solver] = integ.run(st, pot, 8)
        assert integ.statistics["jvp_calls"] == 0
        assert integ.call_equivalents_per_step == integ.calls_per_step
    for k in ("positions", "velocities", "spins"):
        assert np.array_equal(getattr(out["anderson"], k), getattr(out["newton"], k)), k


@pytest.mark.parametrize("name, value", [("spin_tolerance", -1.0), ("max_spin_iterations", 0), ("spin_step", "rk4"),
                                         ("spin_solver", "broyden"), ("magnitude_tolerance", np.nan),
                                         ("max_magnitude_iterations", 0)])
def test_nve_options_changed_after_construction_are_checked_at_run(name, value):
    """As LLG and MonteCarlo: an option set on the integrator after construction
    (``nve.spin_tolerance = -1``) ran unchecked; the run now checks it as the constructor does."""
    st = crystal(1)
    nve = SpinLatticeNVE(0.5)
    setattr(nve, name, value)
    with pytest.raises(InputError, match=name):
        nve.run(st, NonLocal(), 1)


def test_nve_options_changed_after_construction_are_kept_as_the_constructor_keeps_them():
    """``nve.max_spin_iterations = 10.0`` passed the check at run, which threw the normalised
    value away, and the run then failed with Python's TypeError (range of a float)."""
    st = crystal(1)
    nve = SpinLatticeNVE(0.5)
    nve.max_spin_iterations = 10.0
    nve.run(st, NonLocal(), 1)
    assert nve.max_spin_iterations == 10 and isinstance(nve.max_spin_iterations, int)
