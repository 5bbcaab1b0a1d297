"""Minimisers: spins on spheres, positions, cell and moment magnitudes against analytic minima."""

import numpy as np
import pytest

import spinlat as sl
from conftest import EAM_FE, bcc_fe
from spinlat.errors import InputError
from spinlat.search import ground_state
from spinlat.potentials import EAM, Landau, UniaxialAnisotropy, Zeeman


def _single_spins(n=5, moment=2.0, seed=1):
    rng = np.random.default_rng(seed)
    pos = np.arange(n)[:, None] * np.array([10.0, 0, 0])
    return sl.State(pos, ["Fe"] * n, spins=rng.normal(size=(n, 3)), moments=np.full(n, moment))


@pytest.mark.parametrize("method", ["lbfgs", "precession"])
def test_spin_in_field_and_anisotropy_reaches_analytic_angle(method):
    # E(θ) = −μ μB B cosθ − K cos²θ' with the easy axis x and field along z:
    # spins on the x-z plane at angle θ from z with sinθ = ... solve numerically from dE/dθ = 0
    B, K, mu = 2.0, 2e-4, 2.0
    pot = Zeeman([0, 0, B]) + UniaxialAnisotropy(K, [1, 0, 0])
    st = _single_spins(moment=mu)
    out, res = sl.minimize(st, pot, method=method, tmax=1e-9, max_steps=5000, return_result=True)
    assert res.converged, res.reason
    assert res.max_torque <= 1e-9
    h = mu * sl.units.MU_B * B
    # E = −h cosθ − K sin²θ (θ from z toward x): dE/dθ = h sinθ − 2K sinθ cosθ → cosθ = h/(2K) if < 1
    cos_expected = min(1.0, h / (2 * K))
    assert np.allclose(np.abs(out.spins[:, 2]), cos_expected, atol=1e-6)
    assert np.allclose(np.linalg.norm(out.spins, axis=1), 1.0, atol=1e-14)


def test_lbfgs_and_precession_reach_the_same_minimum():
    pot = Zeeman([0, 0, 1.0]) + UniaxialAnisotropy(1e-4, [1, 1, 0])
    st = _single_spins(n=20, seed=3)
    _, r1 = sl.minimize(st, pot, tmax=1e-9, return_result=True)
    _, r2 = sl.minimize(st, pot, tmax=1e-9, method="precession", return_result=True, max_steps=20000)
    assert r1.converged and r2.converged
    assert r1.energy == pytest.approx(r2.energy, abs=1e-12)
    assert r1.history[-1] <= r1.history[0] and np.all(np.diff(r1.history) <= 1e-15)


def test_landau_magnitudes_relax_to_analytic_minimum():
    a, b = -0.1, 0.01
    pot = Landau(a, b)
    st = _single_spins(n=3, moment=1.0)
    out, res = sl.minimize(st, pot, spins=False, magnitudes=True, hmax=1e-10, return_result=True)
    assert res.converged, res.reason
    assert np.allclose(out.moments, np.sqrt(-a / (2 * b)), rtol=1e-6)


def test_eam_cell_and_positions_relax_to_equilibrium_lattice():
    # Mendelev Fe: the relaxed bcc lattice constant is 2.8553 Å
    st = bcc_fe((2, 2, 2), a=2.90, rattle=0.03, random_spins=False)
    pot = EAM(EAM_FE)
    out, res = sl.minimize(st, pot, spins=False, positions=True, cell=True, fmax=1e-4, smax=1e-6,
                           max_steps=500, return_result=True)
    assert res.converged, res.reason
    a = np.cbrt(out.volume / len(out) * 2)
    assert a == pytest.approx(2.8553, abs=2e-3)
    assert np.max(np.abs(pot.compute(out, stress=True).stress)) < 1e-5


def test_bad_requests():
    st = _single_spins()
    with pytest.raises(InputError, match="nothing to relax"):
        sl.minimize(st, Zeeman([0, 0, 1]), spins=False)
    with pytest.raises(InputError, match="magnitudes"):
        sl.minimize(st, Zeeman([0, 0, 1]), magnitudes=True)
    with pytest.raises(InputError, match="method"):
        sl.minimize(st, Zeeman([0, 0, 1]), method="newton")


def test_unconverged_minimisation_warns_when_no_result_is_asked_for():
    """sl.minimize returned a State that is no minimum without a word when it stopped at
    max_steps (e.g. from overlapping atoms): now a ConvergenceWarning names the reason and the
    residuals; with return_result=True the result says it and no warning is given."""
    import warnings

    from spinlat.errors import ConvergenceWarning

    st = bcc_fe((2, 2, 2), rattle=0.0, random_spins=False)
    pos = st.positions.copy()
    pos[1] = pos[0] + [0.3, 0.0, 0.0]  # overlapping atoms: forces ~1e13 eV/Å
    st = st.copy(positions=pos)
    with pytest.warns(ConvergenceWarning, match=r"minimize: not converged \(max_steps reached after 5 iterations"):
        out = sl.minimize(st, EAM(EAM_FE), spins=False, positions=True, max_steps=5)
    assert np.all(np.isfinite(out.positions))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, res = sl.minimize(st, EAM(EAM_FE), spins=False, positions=True, max_steps=5, return_result=True)
        assert not res.converged and res.iterations == 5
        sl.minimize(_single_spins(), Zeeman([0, 0, 1]))  # a converged minimisation stays silent


@pytest.mark.usefixtures("default_signal_handlers")
def test_an_interrupted_minimisation_stops_between_iterations_with_the_state_reached():
    """Ctrl-C / SIGTERM during a long relaxation lost it; now the signal waits for the iteration
    under way and comes with the MinimizeResult reached (``partial_result``), which continues."""
    import os
    import signal

    from spinlat.interrupts import Terminated

    st = bcc_fe((2, 2, 2), a=2.90, rattle=0.03, random_spins=False)
    pot = EAM(EAM_FE)
    compute, calls = pot.compute, []

    def counting(*args, **kw):
        calls.append(1)
        if len(calls) == 6:
            os.kill(os.getpid(), signal.SIGTERM)
        return compute(*args, **kw)

    pot.compute = counting
    with pytest.raises(Terminated) as info:
        sl.minimize(st, pot, spins=False, positions=True, cell=True, fmax=1e-4, smax=1e-6, max_steps=500)
    part = info.value.partial_result
    assert part.reason == "interrupted" and not part.converged and 1 <= part.iterations < 6
    assert part.energy == pytest.approx(compute(part.state).energy, abs=1e-12) and part.energy < compute(st).energy
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    out, res = sl.minimize(part.state, pot, spins=False, positions=True, cell=True, fmax=1e-4, smax=1e-6,
                           max_steps=500, return_result=True)
    assert res.converged and np.cbrt(out.volume / len(out) * 2) == pytest.approx(2.8553, abs=2e-3)


class _Recording(EAM):
    """EAM that records the energy of each evaluation and sends SIGTERM during the ``at``-th."""

    def __init__(self, path, at=None):
        super().__init__(path)
        self.at, self.energies = at, []

    def _evaluate(self, state, neighbors, forces, magnetic_forces, stress):
        import os
        import signal

        ev = super()._evaluate(state, neighbors, forces, magnetic_forces, stress)
        self.energies.append(ev.energy)
        if len(self.energies) == self.at:
            os.kill(os.getpid(), signal.SIGTERM)
        return ev


@pytest.mark.usefixtures("default_signal_handlers")
def test_a_stop_inside_a_line_search_comes_at_its_next_model_call():
    """A stop waited for the line search under way (up to 20 model calls: minutes with a big
    mMACE model). Now the next model call of the line search raises it, with the state of the
    last whole iteration as the partial result."""
    from spinlat.interrupts import Terminated

    st = bcc_fe((2, 2, 2), a=2.90, rattle=0.03, random_spins=False)
    options = dict(spins=False, positions=True, cell=True, fmax=1e-4, smax=1e-6, max_steps=500)
    probe = _Recording(EAM_FE)
    sl.minimize(st, probe, **options)
    e = np.array(probe.energies)
    rejected = [k for k in range(1, len(e)) if e[k] > e[:k].min() + 1e-12]  # trials the line search refused
    assert rejected, "no backtracking line search in this relaxation: the test needs one"
    at = rejected[0] + 1  # (1-based) SIGTERM during a refused trial: the line search would go on
    pot = _Recording(EAM_FE, at=at)
    with pytest.raises(Terminated) as info:
        sl.minimize(st, pot, **options)
    assert len(pot.energies) == at  # no model call after the signal (before: the rest of the line search)
    part = info.value.partial_result
    assert part.reason == "interrupted" and part.energy == e[:at - 1].min()


@pytest.mark.parametrize("compiled", [True, False])
def test_a_spin_on_the_concave_side_of_its_anisotropy_does_not_crawl(compiled):
    """A spin tilted 79° from a 1 meV easy axis in 1 T: along its path E(θ) curves downward (θ >
    45°), every curvature pair is rejected, and the minimiser took steepest steps of 1 rad per eV
    of torque (~1e-3 rad): 500 iterations without converging. Now the steepest step grows while
    no pair is kept (spin_lbfgs.SD_GROWTH), in the compiled kernel and the Python loop alike."""
    K, B, mu = 1e-3, 1.0, 2.2
    st = sl.State([[0.0, 0.0, 0.0]], ["Fe"], spins=[[1.0, 0.0, 0.2]], moments=[mu])
    pot = UniaxialAnisotropy(K, [0, 0, 1]) + Zeeman([0, 0, B])
    out, res = sl.minimize(st, pot, max_steps=100, tmax=1e-8, return_result=True, compiled=compiled)
    assert res.converged and res.iterations <= 40, (res.iterations, res.reason)
    assert out.spins[0] == pytest.approx([0.0, 0.0, 1.0], abs=1e-5)
    assert res.energy == pytest.approx(-K - mu * sl.units.MU_B * B, rel=1e-9)
    other, res2 = sl.minimize(st, pot, max_steps=100, tmax=1e-8, return_result=True, compiled=not compiled)
    assert np.allclose(other.spins, out.spins, atol=1e-9) and abs(res2.iterations - res.iterations) <= 1


def test_ground_state_of_a_spin_in_a_field_converges_from_every_start():
    """ground_state on one spin in 1 T: starts near the hard direction (antiparallel, E concave)
    crawled and one of 8 was still unconverged after 2000 steps."""
    st = sl.State([[0.0, 0.0, 0.0]], ["Fe"], spins=[[1.0, 0.0, 0.0]], moments=[2.2])
    minima = ground_state(st, Zeeman([0, 0, 1.0]), starts=8, seed=3)
    assert len(minima) == 1 and minima[0].converged and minima[0].count == 8
    assert minima[0].energy == pytest.approx(-2.2 * sl.units.MU_B, rel=1e-9)


@pytest.mark.parametrize("how", [dict(compiled=True), dict(compiled=False), dict(method="precession"),
                                 dict(spins=False, magnitudes=True)])
def test_minimised_states_come_out_at_rest(how):
    """A minimum is a configuration at rest: the State minimize returns has zero velocities,
    whatever the input carried (compiled kernel, Python loop, each method), and the input keeps
    its own."""
    pot = (Landau(-0.1, 0.01) if how.get("magnitudes") else Zeeman([0, 0, 1.0]) + UniaxialAnisotropy(1e-4, [1, 1, 0]))
    st = _single_spins(n=4, seed=2)
    v = np.random.default_rng(0).normal(size=(4, 3)) * 0.01
    st = st.copy(velocities=v)
    out, res = sl.minimize(st, pot, return_result=True, max_steps=20000, **how)
    assert res.converged
    assert np.array_equal(out.velocities, np.zeros((4, 3))) and out.kinetic_energy() == 0.0
    assert np.array_equal(st.velocities, v)


def test_relaxed_positions_and_ground_state_minima_come_out_at_rest():
    st = bcc_fe((2, 2, 2), a=2.87, rattle=0.02, random_spins=False)
    st = st.copy(velocities=np.full((len(st), 3), 0.01))
    out = sl.minimize(st, EAM(EAM_FE), spins=False, positions=True, fmax=1e-2, max_steps=300)
    assert not np.any(out.velocities)
    single = _single_spins(n=3).copy(velocities=np.ones((3, 3)) * 0.01)
    minima = ground_state(single, Zeeman([0, 0, 1.0]), starts=3, seed=0)
    assert all(not np.any(m.state.velocities) for m in minima)
