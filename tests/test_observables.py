"""Observables: energies, temperatures (lattice, Nurdin spin temperature), the forms of the
magnetisation (one definition each, used by State, analysis and Monte Carlo), energy drift."""

import sys
from pathlib import Path

import numpy as np
import pytest

import spinlat as sl
from spinlat import analysis, units
from spinlat import observables as obs
from spinlat.errors import InputError
from spinlat.integrators import SpinLatticeNVE

sys.path.insert(0, str(Path(__file__).parent / "integrators"))
from test_spin_lattice import Field, PairSpin, crystal  # noqa: E402


def test_energies_and_magnetization():
    st = crystal(2, T=300.0)
    pot = PairSpin() + Field([0, 0, 1.0])
    ev = pot.compute(st)
    assert np.isclose(obs.potential_energy(st, pot), ev.energy)
    assert np.isclose(obs.total_energy(st, evaluation=ev), ev.energy + st.kinetic_energy())
    assert np.isclose(obs.lattice_temperature(st), st.temperature())
    assert np.allclose(obs.magnetization(st), (st.spins * st.moments[:, None]).sum(0))
    assert np.isclose(obs.magnetization_norm(st, reduced=True),
                      np.linalg.norm(st.magnetization()) / st.moments.sum())
    # spin energy = exchange + Zeeman; the Zeeman part alone is −μB Σ m s·B
    zeeman = -units.MU_B * np.sum(st.moments * st.spins[:, 2])
    assert np.isclose(obs.spin_energy(st, Field([0, 0, 1.0])), zeeman)


def test_spin_energy_skips_lattice_terms():
    class Lattice(PairSpin):
        magnetic = False

    st = crystal(2)
    pot = Lattice() + Field([0, 0, 3.0])
    assert np.isclose(obs.spin_energy(st, pot), Field([0, 0, 3.0]).compute(st).energy)


def test_spin_temperature_of_boltzmann_spins_in_field():
    # sample free spins from the exact Boltzmann distribution in a field along z
    rng = np.random.default_rng(0)
    n, moment, B, T = 200_000, 2.0, 50.0, 40.0
    x = moment * units.MU_B * B / (units.K_B * T)
    u = rng.random(n)
    c = 1 + np.log(u + (1 - u) * np.exp(-2 * x)) / x  # inverse CDF of cos θ ∝ exp(x cos θ)
    phi = rng.random(n) * 2 * np.pi
    s = np.stack([np.sqrt(1 - c**2) * np.cos(phi), np.sqrt(1 - c**2) * np.sin(phi), c], 1)
    st = sl.State(np.zeros((n, 3)), [26] * n, spins=s, moments=[moment] * n, validate=False)
    ts = obs.spin_temperature(st, Field([0, 0, B]))
    assert abs(ts / T - 1) < 0.01, ts
    assert obs.spin_temperature(st.copy(moments=np.zeros(n))) == 0.0


def _boltzmann_unit_vectors(log_weight, log_weight_max, n, rng):
    """n unit vectors with density ∝ exp(log_weight(s)) on the sphere (rejection from uniform)."""
    out, have = [], 0
    while have < n:
        s = rng.normal(size=(n, 3))
        s /= np.linalg.norm(s, axis=1)[:, None]
        s = s[rng.random(n) < np.exp(log_weight(s) - log_weight_max)]
        out.append(s)
        have += len(s)
    return np.concatenate(out)[:n]


def _block_spin_temperature(spins, moment, pot, blocks=20):
    """Spin temperature of ``blocks`` independent groups of free spins: mean and standard error."""
    ts = [obs.spin_temperature(sl.State(np.zeros((len(b), 3)), [26] * len(b), spins=b, moments=[moment] * len(b),
                                        validate=False), pot)
          for b in np.array_split(spins, blocks)]
    return np.mean(ts), np.std(ts, ddof=1) / np.sqrt(blocks)


@pytest.mark.parametrize("case", ["uniaxial", "uniaxial_weak_with_field", "easy_plane", "cubic"])
def test_spin_temperature_of_boltzmann_spins_with_anisotropy(case):
    """Nurdin's estimator with terms quadratic and quartic in a spin: the denominator is the
    spherical Laplacian 2 s·ω + c (c = tr H − sᵀHs). Without c it read 3.7 K for 20 K at
    K = kT/2 and 11 K at K = 2kT (free spins, uniaxial anisotropy)."""
    from spinlat.potentials import CubicAnisotropy, UniaxialAnisotropy, Zeeman

    rng = np.random.default_rng(5)
    n, moment, T = 100_000, 2.0, 20.0
    kT = units.K_B * T
    n_axis = np.array([1.0, 2.0, 2.0]) / 3.0
    if case == "uniaxial":
        pot = UniaxialAnisotropy(2 * kT, n_axis)
        s = _boltzmann_unit_vectors(lambda s: 2 * (s @ n_axis) ** 2, 2.0, n, rng)
    elif case == "uniaxial_weak_with_field":
        B = 10.0
        x = moment * units.MU_B * B / kT
        pot = Zeeman([0, 0, B]) + UniaxialAnisotropy(0.5 * kT, [1, 0, 0])
        s = _boltzmann_unit_vectors(lambda s: x * s[:, 2] + 0.5 * s[:, 0] ** 2, x + 0.5, n, rng)
    elif case == "easy_plane":
        pot = UniaxialAnisotropy(-3 * kT, [0, 0, 1])
        s = _boltzmann_unit_vectors(lambda s: -3 * s[:, 2] ** 2, 0.0, n, rng)
    else:
        k1, k2 = 2 * kT, -5 * kT
        pot = CubicAnisotropy(k1, k2)

        def log_w(s):
            a2 = s**2
            return -(k1 * (a2[:, 0] * a2[:, 1] + a2[:, 1] * a2[:, 2] + a2[:, 2] * a2[:, 0])
                     + k2 * a2[:, 0] * a2[:, 1] * a2[:, 2]) / kT

        s = _boltzmann_unit_vectors(log_w, 5.0 / 27.0, n, rng)
    t, err = _block_spin_temperature(s, moment, pot)
    assert abs(t - T) < 4 * err, (t, err)
    assert err < 0.05 * T  # the test resolves a few-per-cent error


def test_spin_temperature_from_given_fields_needs_the_curvatures():
    """spin_temperature(fields=...) used 2 Σ s·ω alone: 3.7 K for free spins thermalised at 20 K
    with uniaxial anisotropy K = kT/2. Now the curvatures come with the fields (given, or
    computed from a potential), and fields alone are refused."""
    from spinlat.errors import InputError
    from spinlat.potentials import UniaxialAnisotropy

    rng = np.random.default_rng(11)
    n, moment, T = 100_000, 2.0, 20.0
    kT = units.K_B * T
    axis = np.array([0.0, 0.6, 0.8])
    pot = UniaxialAnisotropy(0.5 * kT, axis)
    spins = _boltzmann_unit_vectors(lambda s: 0.5 * (s @ axis) ** 2, 0.5, n, rng)
    ts = {"given": [], "potential": []}
    for b in np.array_split(spins, 20):
        st = sl.State(np.zeros((len(b), 3)), [26] * len(b), spins=b, moments=[moment] * len(b), validate=False)
        every = np.arange(len(b))
        h, c = pot.rotation_fields(st, None, every), pot.spin_curvatures(st, None, every)
        ts["given"].append(obs.spin_temperature(st, fields=h, curvatures=c))
        ts["potential"].append(obs.spin_temperature(st, pot, fields=h))
        assert ts["given"][-1] == pytest.approx(obs.spin_temperature(st, pot), rel=1e-12)
    for read in ts.values():
        t, err = np.mean(read), np.std(read, ddof=1) / np.sqrt(len(read))
        assert abs(t - T) < 4 * err and err < 0.05 * T, (t, err)
    with pytest.raises(InputError, match=r"fields=.*needs curvatures="):
        obs.spin_temperature(st, fields=h)
    with pytest.raises(InputError, match=r"curvatures must have shape"):
        obs.spin_temperature(st, fields=h, curvatures=c[:3])
    free = sl.State(np.zeros((2, 3)), [26] * 2, spins=[[1, 0, 0], [0, 0, 1]], moments=[2.0, 2.0], validate=False)
    # linear energies: curvatures=0 (one number) is the old form 2 Σ s·ω
    assert obs.spin_temperature(free, fields=[[0, 1.0, 0], [0, 0, 1.0]], curvatures=0.0) == pytest.approx(
        (2.0 ** 2) / (units.K_B * 2 * 2.0))


def _sphere_laplacians(state, pot, t=1e-3):
    """Laplace–Beltrami operator of the energy on each magnetic spin's unit sphere, by second
    differences along two orthogonal great circles (geodesic normal coordinates)."""
    e0 = pot.compute(state).energy
    out = []
    for i in np.flatnonzero(state.moments > 0):
        s = state.spins[i]
        e1 = np.cross(s, [0.3, -0.5, 0.8])
        e1 /= np.linalg.norm(e1)
        lap = 0.0
        for e in (e1, np.cross(s, e1)):
            d2 = -2.0 * e0
            for sign in (1, -1):
                spins = state.spins.copy()
                spins[i] = np.cos(t) * s + sign * np.sin(t) * e
                d2 += pot.compute(state.copy(spins=spins)).energy
            lap += d2 / t**2
        out.append(lap)
    return np.array(out)


def test_spin_curvatures_give_the_laplacian_of_the_energy_on_each_spin():
    """2 s·ω + c equals the numerical spherical Laplacian of E for exchange on a cell small
    enough that atoms couple to their own images (E quadratic in s_i), DMI, uniaxial and cubic
    anisotropy and a field."""
    from spinlat.potentials import CubicAnisotropy, Heisenberg, UniaxialAnisotropy, Zeeman

    rng = np.random.default_rng(3)
    st = sl.State([[0, 0, 0], [1.4, 1.4, 1.4]], [26, 26], cell=np.eye(3) * 2.8, pbc=True,
                  moments=[2.2, 1.7]).repeat((1, 1, 2))
    st = st.copy(spins=rng.normal(size=(len(st), 3)))
    ham = Heisenberg.from_neighbors(st, J=[0.02, 0.01], D=[0.003])
    pot = ham + UniaxialAnisotropy(0.004, [1, 1, 0]) + CubicAnisotropy(0.003, -0.002) + Zeeman([0.3, 0, 2.0])
    mag = np.flatnonzero(st.moments > 0)
    assert ham.spin_couplings(st).self_coupled_atoms().all()
    nl = pot.neighbor_list(st) if pot.cutoff > 0 else None
    w = st.moments[mag, None] * pot.rotation_fields(st, nl, mag)
    ours = 2 * np.sum(st.spins[mag] * w, axis=1) + pot.spin_curvatures(st, nl, mag)
    np.testing.assert_allclose(ours, _sphere_laplacians(st, pot), rtol=1e-5, atol=1e-8)
    from spinlat.potentials import Landau

    assert (Zeeman([0, 0, 1.0]) + Landau(-0.5, 0.1)).spin_curvatures(st, None, mag) is None


def test_trajectory_observables(tmp_path):
    st = crystal(2, T=300.0)
    pot = PairSpin() + Field([0, 0, 1.0])
    path = tmp_path / "t.h5"
    sl.Simulation(st, pot, SpinLatticeNVE(1.0), trajectory=path, every=5, progress=False).run(20)
    out = sl.analysis.trajectory_observables(path, pot)
    assert out["total_energy"].shape == (5,)
    assert out["magnetization"].shape == (5, 3)
    assert np.allclose(out["magnetization_norm"], np.linalg.norm(out["magnetization"], axis=1))
    slope, dev = out["energy_drift"]
    assert abs(dev) < 1e-3
    assert np.all(np.isfinite(out["spin_temperature"]))
    assert np.isclose(out["spin_energy"][0], obs.spin_energy(st, pot))
    d = obs.state_observables(st, pot)
    assert np.isclose(d["total_energy"], out["total_energy"][0])


# ------------------------------------------------------------------ magnetisation: one definition
def _magnet(rng, n=40, nonmagnetic=7):
    """A state with non-magnetic atoms and unequal moments."""
    st = crystal(2)
    n = len(st)
    moments = rng.uniform(0.5, 3.0, n)
    moments[rng.choice(n, nonmagnetic, replace=False)] = 0.0
    return st.copy(spins=rng.normal(size=(n, 3)), moments=moments)


def test_magnetisation_forms_by_hand():
    rng = np.random.default_rng(3)
    st = _magnet(rng)
    m = st.spins * st.moments[:, None]
    total = m.sum(axis=0)
    n_mag = np.count_nonzero(st.moments)
    np.testing.assert_allclose(obs.total_moment(st), total, rtol=1e-14)
    np.testing.assert_allclose(obs.total_moment(st.spins, st.moments), total, rtol=1e-14)
    np.testing.assert_array_equal(st.magnetization(), obs.total_moment(st))
    np.testing.assert_array_equal(obs.magnetization(st), obs.total_moment(st))
    np.testing.assert_allclose(obs.magnetization_per_atom(st), total / len(st), rtol=1e-14)
    np.testing.assert_allclose(obs.magnetization_per_magnetic_atom(st), total / n_mag, rtol=1e-14)
    np.testing.assert_allclose(obs.reduced_magnetization(st), total / st.moments.sum(), rtol=1e-14)
    assert obs.magnetization_norm(st) == pytest.approx(np.linalg.norm(total), rel=1e-14)
    assert obs.magnetization_norm(st, reduced=True) == pytest.approx(np.linalg.norm(total) / st.moments.sum(),
                                                                     rel=1e-14)
    # saturated ferromagnet: m = 1 whatever the moments; unit moments by default
    sat = st.copy(spins=np.tile([0.0, 0.6, 0.8], (len(st), 1)))
    np.testing.assert_allclose(obs.reduced_magnetization(sat), [0, 0.6, 0.8], rtol=1e-14)
    np.testing.assert_allclose(obs.total_moment(sat.spins), [0, 0.6 * len(st), 0.8 * len(st)], rtol=1e-14)
    # no magnetic atom: zero, not NaN
    none = st.copy(moments=np.zeros(len(st)))
    np.testing.assert_array_equal(obs.reduced_magnetization(none), 0.0)
    np.testing.assert_array_equal(obs.magnetization_per_magnetic_atom(none), 0.0)
    with pytest.raises(InputError):
        obs.total_moment(st.spins, st.moments[:-1])
    with pytest.raises(InputError):
        obs.total_moment(st, st.moments)


def test_magnetisation_of_frames_is_that_of_each_frame():
    rng = np.random.default_rng(4)
    frames = [_magnet(rng) for _ in range(5)]
    spins = np.stack([f.spins for f in frames])
    moments = np.stack([f.moments for f in frames])
    for func in (obs.total_moment, obs.reduced_magnetization, obs.magnetization_per_atom,
                 obs.magnetization_per_magnetic_atom):
        per_frame = np.array([func(f) for f in frames])
        np.testing.assert_allclose(func(spins, moments), per_frame, rtol=1e-14, err_msg=func.__name__)
    np.testing.assert_allclose(obs.reduced_from_total(obs.total_moment(spins, moments), moments),
                               obs.reduced_magnetization(spins, moments), rtol=1e-15)
    # analysis keeps its signature on top of the same definitions
    np.testing.assert_array_equal(analysis.magnetization(spins, moments), obs.reduced_magnetization(spins, moments))
    np.testing.assert_array_equal(analysis.magnetization(spins, moments, normalized=False),
                                  obs.total_moment(spins, moments))


def test_reduced_magnetisation_kernel_matches_numpy():
    rng = np.random.default_rng(5)
    st = _magnet(rng)
    atoms = np.flatnonzero(st.moments > 0).astype(np.int64)
    got = obs.reduced_magnetization_kernel(st.spins, st.moments, atoms)
    np.testing.assert_allclose(got, obs.reduced_magnetization(st), rtol=1e-13)
    assert obs.reduced_magnetization_kernel(st.spins, np.zeros(len(st)), atoms) == (0.0, 0.0, 0.0)


@pytest.mark.parametrize("site_term", [False, True])
def test_monte_carlo_records_the_reduced_magnetisation(site_term):
    """MonteCarlo.magnetization (both its compiled and its general sweep) is the reduced
    magnetisation of the spins after each sweep."""
    from spinlat.integrators import MonteCarlo
    from spinlat.potentials import BetheSlaterExchange, UniaxialAnisotropy

    rng = np.random.default_rng(6)
    st = _magnet(rng, nonmagnetic=3)
    pot = BetheSlaterExchange(3.4, 0.02726, 0.2171, 1.841)
    if site_term:
        pot = pot + UniaxialAnisotropy(1e-4, [0, 0, 1])
    mc = MonteCarlo(400.0, seed=2)
    out = mc.run(st, pot, 3)
    np.testing.assert_allclose(mc.magnetization[-1], obs.reduced_magnetization(out), rtol=1e-12, atol=1e-15)
    one = MonteCarlo(400.0, seed=2)
    first = one.run(st, pot, 1)
    np.testing.assert_allclose(mc.magnetization[0], obs.reduced_magnetization(first), rtol=1e-12, atol=1e-15)


def test_energy_drift_and_fluctuation_are_defined_once():
    t = np.linspace(0, 1000, 11)
    e = 2.0 * t * 1e-3 + 0.5
    slope, dev = obs.energy_drift(t, e, n_atoms=2)
    assert slope == pytest.approx(1.0) and dev == pytest.approx(1.0)
    assert obs.energy_drift([0.0], [1.0]) == (0.0, 0.0)
    assert obs.energy_fluctuation([1.0, 3.0, 1.0, 3.0], n_atoms=2) == pytest.approx(0.5)
    assert analysis.energy_drift is obs.energy_drift
    assert analysis.energy_fluctuation is obs.energy_fluctuation


def test_spin_temperature_is_undefined_where_the_estimator_does_not_hold():
    """Nurdin's estimator needs energies linear in each spin; a term that depends on moment
    magnitudes (Landau here, mMACE alike) gives only projected rotation fields: nan, not inf."""
    from spinlat.potentials import Landau

    st = crystal(2, T=300.0)
    assert np.isnan(obs.spin_temperature(st, Landau(-0.5, 0.1)))
    assert np.isnan(obs.spin_temperature(st, PairSpin() + Landau(-0.5, 0.1)))
    assert np.isfinite(obs.spin_temperature(st, PairSpin()))
