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
