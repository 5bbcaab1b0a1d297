"""Frozen-lattice LLG: rotation kernels, precession, damping, thermal equilibrium, bad input."""

import numpy as np
import pytest

import spinlat as sl
from spinlat import units
from spinlat.errors import InputError
from spinlat.integrators import LLG
from spinlat.integrators.rotation import angle_factor, rotate_all, rotate_reference, rotate_spins
from spinlat.potentials import Potential, Zeeman

SOLVERS = ["sib", "depondt", "heun"]


def one_spin(spin, moment=2.0):
    return sl.State([[0, 0, 0]], [26], moments=[moment], spins=[spin])


def free_spins(n, moment=2.0, seed=1):
    rng = np.random.default_rng(seed)
    return sl.State(np.c_[np.arange(n) * 3.0, np.zeros(n), np.zeros(n)], [26] * n, moments=[moment] * n,
                    spins=rng.normal(size=(n, 3)), validate=False)


@pytest.mark.parametrize("damping", [0.0, 0.3])
def test_rotation_kernel_matches_numpy_reference(rng, damping):
    s = rng.normal(size=(50, 3))
    s /= np.linalg.norm(s, axis=1)[:, None]
    h = rng.normal(size=(50, 3)) * 1e-2
    h[3] = 0.0
    fac = angle_factor(2.0, damping)
    a = s.copy()
    rotate_all(a, h, fac, damping)
    assert np.allclose(a, rotate_reference(s, h, fac, damping), atol=1e-13)
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-15)
    assert np.array_equal(a[3], s[3])
    b = s.copy()
    atoms = np.array([5, 7, 11], dtype=np.int64)
    rotate_spins(b, np.ascontiguousarray(h[atoms]), atoms, fac, damping)
    assert np.array_equal(b[atoms], a[atoms])
    others = np.setdiff1d(np.arange(50), atoms)
    assert np.array_equal(b[others], s[others])


def test_rotation_sense_follows_design():
    # ds/dt = −γ s × B: a spin along x in B along z turns towards +y
    s = np.array([[1.0, 0, 0]])
    rotate_all(s, np.array([[0, 0, units.MU_B]]), angle_factor(100.0), 0.0)
    assert s[0, 1] > 0 and np.isclose(s[0, 1], np.sin(units.GAMMA * 100.0), rtol=1e-12)


@pytest.mark.parametrize("solver", SOLVERS)
def test_precession_frequency_28_ghz(solver):
    st = one_spin([1, 0, 0])
    integ = LLG(5.0, solver=solver)
    pot = Zeeman([0, 0, 1.0])
    xs = []
    for _ in range(16):
        st = integ.run(st, pot, 500)
        xs.append(st.spins[0].copy())
    xs = np.array(xs)
    t = np.arange(1, 17) * 500 * 5.0  # fs
    phase = np.unwrap(np.arctan2(xs[:, 1], xs[:, 0]))
    f_ghz = np.polyfit(t, phase, 1)[0] / (2 * np.pi) * 1e6
    expected = units.GAMMA_SI / (2 * np.pi) / 1e9
    assert abs(f_ghz / expected - 1) < 1e-6
    assert abs(expected - 28.0) < 0.03
    assert np.allclose(xs[:, 2], 0.0, atol=1e-12)
    assert np.abs(np.linalg.norm(xs, axis=1) - 1).max() < 1e-12


@pytest.mark.parametrize("solver", SOLVERS)
def test_damped_relaxation_rate(solver):
    alpha, B, theta0 = 0.2, 10.0, 3.0
    st = one_spin([np.sin(theta0), 0, np.cos(theta0)])
    integ = LLG(1.0, damping=alpha, solver=solver)
    pot = Zeeman([0, 0, B])
    z = []
    for _ in range(20):
        st = integ.run(st, pot, 500)
        z.append(st.spins[0, 2])
    t = np.arange(1, 21) * 500.0
    rate = alpha * units.GAMMA * B / (1 + alpha**2)
    # s_z(t) = tanh(rate t + artanh s_z(0))
    assert np.abs(np.array(z) - np.tanh(rate * t + np.arctanh(np.cos(theta0)))).max() < 1e-5
    fitted = np.polyfit(t, np.arctanh(np.array(z)), 1)[0]
    assert abs(fitted / rate - 1) < 1e-4
    assert abs(np.linalg.norm(st.spins[0]) - 1) < 1e-12


@pytest.mark.slow
@pytest.mark.parametrize("solver", SOLVERS)
def test_thermal_spins_follow_langevin_function(solver):
    n, B, x = 1000, 10.0, 2.0
    T = units.MU_B * 2.0 * B / (x * units.K_B)
    st = free_spins(n)
    pot = Zeeman([0, 0, B])
    integ = LLG(1.0, damping=1.0, temperature=T, solver=solver, seed=11)
    st = integ.run(st, pot, 3000)
    m = []
    for _ in range(40):
        st = integ.run(st, pot, 400)
        m.append(st.spins[:, 2].mean())
    m = np.array(m)
    langevin = 1 / np.tanh(x) - 1 / x
    err = m.std(ddof=1) / np.sqrt(len(m))
    # samples 400 fs apart are nearly independent (relaxation time 1/(αγ'B) ≈ 1.1 ps, here
    # diffusion dominates); allow 4 standard errors plus the O(dt) bias (~2e-3 at dt = 1 fs)
    assert abs(m.mean() - langevin) < 4 * err + 3e-3, (m.mean(), langevin, err)
    assert np.abs(np.linalg.norm(st.spins, axis=1) - 1).max() < 1e-12


@pytest.mark.parametrize("solver", SOLVERS)
def test_same_seed_same_trajectory(solver):
    st = free_spins(20)
    pot = Zeeman([0.3, 0, 2.0])
    a = LLG(1.0, damping=0.1, temperature=50.0, solver=solver, seed=5).run(st, pot, 50)
    b_int = LLG(1.0, damping=0.1, temperature=50.0, solver=solver, seed=5)
    b = b_int.run(b_int.run(st, pot, 20), pot, 30)
    c = LLG(1.0, damping=0.1, temperature=50.0, solver=solver, seed=6).run(st, pot, 50)
    assert np.array_equal(a.spins, b.spins)
    assert not np.array_equal(a.spins, c.spins)
    assert np.array_equal(st.positions, a.positions)


def test_last_evaluation_and_input_not_modified():
    st = free_spins(5)
    before = st.spins.copy()
    integ = LLG(1.0, damping=0.1)
    out = integ.run(st, Zeeman([0, 0, 1.0]), 10)
    assert np.array_equal(st.spins, before)
    ev = integ.last_evaluation
    assert np.isclose(ev.energy, Zeeman([0, 0, 1.0]).compute(out).energy, rtol=1e-14)


class _NoMagnetic(Potential):
    provides_magnetic_forces = False


@pytest.mark.parametrize("kwargs,match", [
    (dict(dt=0.0), "time step"), (dict(dt=-1.0), "time step"), (dict(dt=1e4), "absurdly"),
    (dict(dt=float("nan")), "time step"), (dict(dt=1.0, damping=-0.1), "damping"),
    (dict(dt=1.0, damping=0.1, temperature=-1.0), "temperature"),
    (dict(dt=1.0, temperature=10.0), "damping > 0"), (dict(dt=1.0, solver="rk4"), "unknown LLG solver"),
])
def test_bad_parameters(kwargs, match):
    with pytest.raises(InputError, match=match):
        LLG(**kwargs)


def test_bad_potential_and_state():
    integ = LLG(1.0)
    with pytest.raises(InputError, match="magnetic forces"):
        integ.run(free_spins(3), _NoMagnetic(), 1)
    st = sl.State([[0, 0, 0]], [26])
    with pytest.raises(InputError, match="no magnetic atoms"):
        integ.run(st, Zeeman([0, 0, 1.0]), 1)


# ------------------------------------------------------------------ fused field path
def _mixed_system(n_cells=3, nonmagnetic=True):
    """bcc Fe with exchange + DMI (Heisenberg), Bethe-Slater exchange, per-atom uniaxial axes,
    a species-restricted Zeeman field and a cubic anisotropy (not fused); one atom non-magnetic."""
    from spinlat.potentials import BetheSlaterExchange, CubicAnisotropy, Heisenberg, UniaxialAnisotropy

    from conftest import bcc_fe

    unit = sl.State([[0, 0, 0], [1.43, 1.43, 1.43]], [26, 26], cell=np.eye(3) * 2.8665, pbc=True,
                    moments=[2.2, 2.2])
    st = bcc_fe((n_cells,) * 3, rattle=0.0)
    if nonmagnetic:
        mom = st.moments.copy()
        mom[4] = 0.0
        st = st.copy(moments=mom)
    rng = np.random.default_rng(3)
    axes = rng.normal(size=(len(st), 3))
    pot = (Heisenberg.from_neighbors(unit, J=[0.01, 0.004], D=[0.002, 0.0])
           + BetheSlaterExchange(3.4, 0.02726, 0.2171, 1.841)
           + UniaxialAnisotropy(3e-4, axes) + Zeeman([0.5, -1.0, 3.0], elements=["Fe"])
           + CubicAnisotropy(2e-5))
    return st, pot


def test_fused_fields_match_local_fields():
    from spinlat.integrators.llg import SpinFields

    st, pot = _mixed_system()
    f = SpinFields(st, pot)
    assert [type(t).__name__ for t in f.fused] == ["Heisenberg", "BetheSlaterExchange", "UniaxialAnisotropy",
                                                   "Zeeman"]
    assert [type(t).__name__ for t in f.extra] == ["CubicAnisotropy"]
    # a handful of distinct 3×3 couplings for the whole crystal, plus one self term per atom axis
    assert len(f.linear[-2]) < len(st) + 30
    rng = np.random.default_rng(8)
    for _ in range(3):
        s = rng.normal(size=(len(st), 3))
        s /= np.linalg.norm(s, axis=1)[:, None]
        trial = st.copy(spins=s)
        ref = pot.local_fields(trial, pot.neighbor_list(trial), np.arange(len(st)))
        got = f(trial.spins)
        assert np.abs(got - ref).max() <= 1e-12 * np.abs(ref).max()
        assert np.array_equal(got[4], np.zeros(3))
        general = SpinFields(st, pot, fuse=False)
        assert not general.fused
        assert np.abs(general(trial.spins) - ref).max() <= 1e-14 * np.abs(ref).max()


@pytest.mark.parametrize("solver", SOLVERS)
def test_fused_and_general_paths_agree(solver):
    from spinlat.integrators.llg import SpinFields

    st, pot = _mixed_system(2)
    runs = []
    for fuse in (True, False):
        integ = LLG(1.0, damping=0.2, temperature=30.0, solver=solver, seed=4)
        integ._fields = SpinFields(st, pot, fuse=fuse)
        runs.append(integ.run(st, pot, 40).spins)
        assert bool(integ._fields.fused) == fuse
    assert np.abs(runs[0] - runs[1]).max() < 1e-11
    assert np.array_equal(runs[0][4], st.spins[4])  # the non-magnetic atom does not move
    # without the cubic term every term is fused: the whole run is one numba call
    pure = sl.potentials.SumPotential(pot.terms[:-1])
    integ = LLG(1.0, damping=0.2, solver=solver)
    out = integ.run(st, pure, 40)
    assert not integ._fields.extra
    integ_g = LLG(1.0, damping=0.2, solver=solver)
    integ_g._fields = SpinFields(st, pure, fuse=False)
    assert np.abs(out.spins - integ_g.run(st, pure, 40).spins).max() < 1e-11


def test_noise_blocks_do_not_change_the_stream(monkeypatch):
    st = free_spins(30)
    pot = Zeeman([0.3, 0, 2.0])
    ref = LLG(1.0, damping=0.1, temperature=50.0, seed=9).run(st, pot, 37)
    monkeypatch.setattr(LLG, "_NOISE_BLOCK", 90 * 5)  # 5 steps per block, drawn in the calling thread
    got = LLG(1.0, damping=0.1, temperature=50.0, seed=9).run(st, pot, 37)
    assert np.array_equal(ref.spins, got.spins)
    monkeypatch.setattr(LLG, "_OVERLAP_MIN", 0)  # ... and in a helper thread
    got = LLG(1.0, damping=0.1, temperature=50.0, seed=9).run(st, pot, 37)
    assert np.array_equal(ref.spins, got.spins)


def test_short_thermal_runs_start_no_noise_thread(monkeypatch):
    """A run of few noise numbers (a sample-every-few-steps loop) draws its noise in the calling
    thread: a helper thread per call cost 3-5 ms, 10x the whole call for 64 spins and 10 steps.
    Long runs still overlap the draw with the integration; both give the same stream."""
    import spinlat.integrators.llg as llg_module

    st = free_spins(64)
    pot = Zeeman([0.3, 0, 2.0])
    ref = LLG(1.0, damping=0.1, temperature=50.0, seed=4).run(st, pot, 40)
    started = []

    class Recording(llg_module.ThreadPoolExecutor):
        def __init__(self, *args, **kwargs):
            started.append(1)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(llg_module, "ThreadPoolExecutor", Recording)
    integ = LLG(1.0, damping=0.1, temperature=50.0, seed=4)
    s = st
    for _ in range(4):
        s = integ.run(s, pot, 10)
    assert started == [] and np.array_equal(s.spins, ref.spins)
    monkeypatch.setattr(LLG, "_OVERLAP_MIN", 3 * 64 * 40)
    assert np.array_equal(LLG(1.0, damping=0.1, temperature=50.0, seed=4).run(st, pot, 40).spins, ref.spins)
    assert started == [1]


def test_rotation_series_matches_trigonometric_rotation(rng):
    from spinlat.integrators.rotation import SERIES_LIMIT, rotate_series, rotate_vector

    for _ in range(200):
        s = rng.normal(size=3)
        s /= np.linalg.norm(s)
        w = rng.normal(size=3)
        dt = rng.uniform(0.0, 1.0) * np.sqrt(SERIES_LIMIT) / np.linalg.norm(w)
        *a, x = rotate_series(*s, *w, dt)
        assert np.isclose(x, np.dot(w, w) * dt * dt, rtol=1e-14)
        assert np.allclose(a, rotate_vector(*s, *w, dt, 0.0), rtol=0, atol=2e-15)


@pytest.mark.parametrize("solver", ["sib", "depondt"])
def test_large_rotation_angles(solver):
    # 1000 T and dt = 10 fs: 1.76 rad per step. Depondt is exact for a fixed field (beyond the
    # series' range the trigonometric rotation takes over); SIB's Cayley step turns by 2 atan(φ/2).
    B, dt = 1000.0, 10.0
    phi = units.GAMMA * B * dt
    assert phi**2 > 1.0
    st = LLG(dt, solver=solver).run(one_spin([1, 0, 0]), Zeeman([0, 0, B]), 7)
    angle = np.arctan2(st.spins[0, 1], st.spins[0, 0])
    expected = 7 * (phi if solver == "depondt" else 2 * np.arctan(phi / 2))
    assert np.isclose(angle, np.angle(np.exp(1j * expected)), atol=1e-12)


def test_slot_table_fields_match_numpy_reference(rng):
    from spinlat.integrators.llg import _linear_fields_aos, slot_table
    from spinlat.integrators.monte_carlo import compress_couplings

    # ring of 40 atoms, couplings to ±1 and ±2 with 3 distinct matrices; atoms 7 and 30 have
    # fewer couplings and atom 12 none, so the classes have gaps (non-contiguous path)
    n = 40
    mats = rng.normal(size=(3, 3, 3))
    rows, cols, jm = [], [], []
    for i in range(n):
        for d, t in ((1, 0), (-1, 1), (2, 2), (-2, 2)):
            if i == 12 or (i in (7, 30) and d == 2):
                continue
            rows.append(i)
            cols.append((i + d) % n)
            jm.append(mats[t])
    offs = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=offs[1:])
    table = slot_table(*compress_couplings(offs, np.array(cols), np.array(jm)))
    cptr, catoms = table[0], table[1]
    assert len(cptr) - 1 == 2 and sorted(catoms.tolist()) == sorted(set(range(n)) - {12})
    b = rng.normal(size=(n, 3))
    s = rng.normal(size=(n, 3))
    s /= np.linalg.norm(s, axis=1)[:, None]
    got = _linear_fields_aos(s, (*table, np.ascontiguousarray(b.T)))
    raw = np.zeros((n, 3))
    for i, j, m in zip(rows, cols, jm):
        raw[i] += m @ s[j]
    ref = raw - np.sum(raw * s, axis=1)[:, None] * s + b
    assert np.allclose(got, ref, rtol=0, atol=1e-14)


@pytest.mark.parametrize("solver", SOLVERS)
def test_uniaxial_anisotropy_precession_frequency(solver):
    """E = −K (s·z)²: a spin tilted by θ precesses about +z at ω = (2Kγ/(μ μB)) cos θ
    (field B = (2K/(μ μB)) s_z ẑ), positive sense for s_z > 0, negative for s_z < 0."""
    from spinlat.potentials import UniaxialAnisotropy

    mu, K, theta, dt = 2.0, 1e-3, 0.3, 1.0
    w = 2 * K * units.GAMMA / (mu * units.MU_B) * np.cos(theta)
    for sign in (1, -1):
        st = one_spin([np.sin(theta), 0, sign * np.cos(theta)], moment=mu)
        integ = LLG(dt, solver=solver)
        phase = []
        for _ in range(40):
            st = integ.run(st, UniaxialAnisotropy(K, [0, 0, 1]), 50)
            phase.append(np.arctan2(st.spins[0, 1], st.spins[0, 0]))
        fitted = np.polyfit(np.arange(1, 41) * 50 * dt, np.unwrap(phase), 1)[0]
        assert fitted == pytest.approx(sign * w, rel=(w * dt) ** 2)
        assert st.spins[0, 2] == pytest.approx(sign * np.cos(theta), abs=1e-6)  # energy kept to O(dt²)


def _thermal_free_spins(make, dt, n, B, K, T, seed, samples=400, every_fs=10.0, warmup_fs=1000.0):
    """⟨s_z⟩ and the spin temperature of n free spins (μ = 2 μB) in B ẑ with uniaxial K about ẑ,
    sampled every ``every_fs`` after ``warmup_fs`` by the integrator ``make(dt)``. ⟨s_z⟩: the
    per-spin time averages are independent across spins (statistics.average of them); T_s: a
    time series (blocked error). Returns (Estimate of s_z, Estimate of T_s)."""
    from spinlat.observables import spin_temperature
    from spinlat.potentials import UniaxialAnisotropy
    from spinlat.statistics import average

    pot = Zeeman([0, 0, B]) + UniaxialAnisotropy(K, [0, 0, 1])
    st = free_spins(n, seed=seed).copy(spins=np.tile([0, 0, 1.0], (n, 1)))
    integ = make(dt)
    st = integ.run(st, pot, int(round(warmup_fs / dt)))
    sz, ts = np.zeros(n), []
    for _ in range(samples):
        st = integ.run(st, pot, int(round(every_fs / dt)))
        sz += st.spins[:, 2]
        ts.append(spin_temperature(st, pot))
    m, t = average(sz / samples), average(ts)
    assert m.reliable and t.reliable
    return m, t


@pytest.mark.parametrize("kind", ["sib", "langevin"])
def test_thermal_spins_with_anisotropy_sample_boltzmann_and_read_their_temperature(kind):
    """Free spins, field + uniaxial anisotropy (x = μ μB B/kT = 1.34, K = kT): ⟨s_z⟩ equals the
    Boltzmann average ∫c e^{xc + c²} / ∫e^{xc + c²} and the spin temperature estimator reads T.
    The stochastic schemes are weakly first order (LLG: T_s reads −1.4 % at γB dt = 0.018 rad,
    −2.7 % at twice that): Richardson extrapolation 2 X(dt/2) − X(dt) removes the O(dt) bias;
    tolerance 4σ of it."""
    from scipy.integrate import quad

    from spinlat.integrators import SpinLatticeLangevin

    mu, B, T = 2.0, 100.0, 100.0
    kT = units.K_B * T
    x = mu * units.MU_B * B / kT
    exact = quad(lambda c: c * np.exp(x * c + c * c), -1, 1)[0] / quad(lambda c: np.exp(x * c + c * c), -1, 1)[0]
    if kind == "langevin":
        n, every, dt, make = 150, 20.0, 2.0, lambda dt: SpinLatticeLangevin(dt, 0.0, friction=0.0, damping=0.5,
                                                                            spin_temperature=T, seed=5)
    else:
        n, every, dt, make = 300, 10.0, 1.0, lambda dt: LLG(dt, damping=0.5, temperature=T, solver=kind, seed=5)
    (m1, t1), (m2, t2) = (_thermal_free_spins(make, h, n, B, kT, T, seed=2, every_fs=every) for h in (dt, dt / 2))
    m, m_err = 2 * m2.value - m1.value, np.hypot(2 * m2.error, m1.error)
    t, t_err = 2 * t2.value - t1.value, np.hypot(2 * t2.error, t1.error)
    assert abs(m - exact) < 4 * m_err, (m1, m2, exact)
    assert abs(t - T) < 4 * t_err, (t1, t2)
    assert m_err < 0.03 and t_err < 0.03 * T  # resolves a few per cent


def test_stochastic_llg_and_monte_carlo_give_the_same_heisenberg_energy():
    """sc Heisenberg ferromagnet (4³, J = 10 meV, public ``Heisenberg.from_neighbors``) plus
    uniaxial anisotropy 0.3 J at T = 2 J/k_B: the equilibrium energy per spin of stochastic LLG
    (SIB, α = 1; Richardson-extrapolated from dt = 1 and 0.5 fs: the scheme's O(dt) bias is
    −0.04 J at 1 fs) equals Metropolis Monte Carlo's within 4σ (blocked errors)."""
    from _nn_heisenberg import simple_cubic

    from spinlat.integrators import MonteCarlo
    from spinlat.potentials import Heisenberg, UniaxialAnisotropy
    from spinlat.statistics import average

    J = 10e-3
    st0 = simple_cubic(4, moment=2.0, seed=1)
    pot = Heisenberg.from_neighbors(st0, J=[J]) + UniaxialAnisotropy(0.3 * J, [0, 0, 1])
    T = 2 * J / units.K_B

    def energy(s):
        return pot.compute(s, forces=False, magnetic_forces=False).energy / (len(s) * J)

    mc = MonteCarlo(T, seed=1)
    st = mc.run(st0, pot, 300)
    mc.adapt = False
    e = []
    for _ in range(500):
        st = mc.run(st, pot, 20)
        e.append(energy(st))
    ref = average(e)
    llg = []
    for dt in (1.0, 0.5):
        integ = LLG(dt, damping=1.0, temperature=T, seed=2)
        st = integ.run(st0, pot, int(300 / dt))
        e = []
        for _ in range(750):
            st = integ.run(st, pot, int(20 / dt))
            e.append(integ.last_evaluation.energy / (len(st) * J))  # the energy of st
        llg.append(average(e))
    assert ref.reliable and all(x.reliable for x in llg)
    value, error = 2 * llg[1].value - llg[0].value, np.hypot(2 * llg[1].error, llg[0].error)
    assert error < 0.05 * abs(ref.value)
    assert abs(value - ref.value) < 4 * np.hypot(error, ref.error), (ref, llg)


@pytest.mark.parametrize("name, value, message", [
    ("temperature", -5.0, "temperature: expected a non-negative number"),
    ("temperature", np.nan, "temperature"),
    ("dt", -1.0, "time step dt: expected a positive number"),
    ("damping", -1.0, "damping: expected a non-negative number"),
    ("damping", 0.0, "temperature > 0 needs damping > 0"),
    ("solver", "rk4", "unknown LLG solver 'rk4'"),
])
def test_parameters_changed_after_construction_are_checked_at_run(name, value, message):
    """``llg.temperature = T`` between runs (a temperature sweep) is taken live; a bad value was
    not checked: T < 0 ran silently (NaN noise amplitudes dropped: no thermal field at all), a
    negative dt or damping ran into NaN spins several steps later, an unknown solver raised
    a bare ValueError of tuple.index. The run now checks them as the constructor does."""
    st = sl.State([[0, 0, 0], [5.0, 0, 0]], ["Fe", "Fe"], moments=[2.0, 2.0])
    integ = LLG(1.0, 0.5, 1.0, seed=1)
    setattr(integ, name, value)
    with pytest.raises(InputError, match=message):
        integ.run(st, Zeeman([0, 0, 1.0]), 5)


def test_parameters_changed_after_construction_are_kept_as_the_constructor_keeps_them():
    """The check at run validated a changed parameter and threw the result away: ``llg.solver =
    "SIB"`` was refused though the constructor takes it (lower case); MonteCarlo's ``overrelax =
    2.0`` passed the check and then failed inside the run (a float where an int is counted)."""
    from spinlat.integrators import MonteCarlo

    st = sl.State([[0, 0, 0], [5.0, 0, 0]], ["Fe", "Fe"], moments=[2.0, 2.0])
    integ = LLG(1.0, 0.5, 0.0, seed=1)
    integ.solver = "SIB"
    reference = LLG(1.0, 0.5, 0.0, solver="sib", seed=1).run(st, Zeeman([0, 0, 1.0]), 5)
    assert np.array_equal(integ.run(st, Zeeman([0, 0, 1.0]), 5).spins, reference.spins) and integ.solver == "sib"
    mc = MonteCarlo(10.0, seed=1)
    mc.overrelax = 2.0
    mc.run(st, Zeeman([0, 0, 1.0]), 2)
    assert mc.overrelax == 2 and isinstance(mc.overrelax, int)
