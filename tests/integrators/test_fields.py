"""The field engine: its fields equal the potential's for mixed potentials (fused couplings plus
terms on the general path), its batched image energies equal compute(); the integrators built on
it give the same dynamics as the general path; evaluations travel with the returned State."""

import numpy as np
import pytest

import spinlat as sl
from spinlat import units
from spinlat.errors import InputError
from spinlat.integrators import LLG, DynamicsState, MonteCarlo, SpinLatticeLangevin, SpinLatticeNVE
from spinlat.integrators.fields import SpinFieldEngine
from spinlat.potentials import (EAM, BetheSlaterExchange, CubicAnisotropy, Heisenberg, Landau, SumPotential,
                                UniaxialAnisotropy, Zeeman)

from conftest import EAM_FE, bcc_fe

BS = (3.4, 0.02726, 0.2171, 1.841)


def bcc_unit(moment=2.2):
    a = 2.8665
    return sl.State([[0, 0, 0], [a / 2, a / 2, a / 2]], [26, 26], cell=np.eye(3) * a, pbc=True,
                    moments=[moment, moment])


def state(reps=(3, 3, 3), nonmagnetic=(4,)):
    st = bcc_fe(reps, rattle=0.03, seed=7)
    mom = np.random.default_rng(2).uniform(1.8, 2.4, len(st))
    mom[list(nonmagnetic)] = 0.0
    return st.copy(moments=mom)


def linear_terms(st):
    axes = np.random.default_rng(5).normal(size=(len(st), 3))
    return [Heisenberg.from_neighbors(bcc_unit(), J=[0.01, 0.004], D=[0.002]), BetheSlaterExchange(*BS),
            UniaxialAnisotropy(3e-4, axes), Zeeman([0.5, -1.0, 3.0])]


def mixed(st, lattice=True):
    terms = linear_terms(st) + [CubicAnisotropy(2e-5, 1e-5), Landau(-0.05, 0.01)]
    if lattice and EAM_FE.exists():
        terms.append(EAM(EAM_FE))
    return SumPotential(terms)


def random_spins(n, seed):
    s = np.random.default_rng(seed).normal(size=(n, 3))
    return s / np.linalg.norm(s, axis=1)[:, None]


@pytest.mark.parametrize("fuse", [True, False])
def test_engine_fields_equal_the_potentials(fuse):
    st = state()
    pot = mixed(st)
    nl = pot.neighbor_list(st)
    engine = SpinFieldEngine(pot, fuse=fuse)
    engine.update(st, nl)
    names = [type(t).__name__ for t in engine.fused]
    assert names == (["Heisenberg", "BetheSlaterExchange", "UniaxialAnisotropy", "Zeeman"] if fuse else [])
    assert [type(t).__name__ for t in engine.extra][-2:] == ["CubicAnisotropy", "Landau"]
    assert not engine.complete and "EAM" not in names + [type(t).__name__ for t in engine.extra]
    atoms = np.array([0, 4, 9, 30, 53], dtype=np.int64)
    for seed in (1, 2):
        trial = st.copy(spins=random_spins(len(st), seed))
        ref = pot.compute(trial, nl).magnetic_forces
        scale = np.abs(ref).max()
        assert np.abs(engine.magnetic_forces(trial, nl) - ref).max() <= 1e-12 * scale
        assert np.abs(engine.magnetic_forces(trial, nl, atoms) - ref[atoms]).max() <= 1e-12 * scale
        rot = pot.rotation_fields(trial, nl, atoms)
        assert np.abs(engine.rotation_fields(trial, nl, atoms) - rot).max() <= 1e-12 * np.abs(rot).max()
    with pytest.raises(InputError, match="linear couplings"):
        engine.evaluate_images(st, st.spins[None], nl)


def test_batched_images_give_compute_energies_and_forces():
    if not EAM_FE.exists():
        pytest.skip("EAM file missing")
    st = state((2, 2, 2), nonmagnetic=(3,))
    pot = SumPotential(linear_terms(st) + [EAM(EAM_FE)])
    nl = pot.neighbor_list(st)
    engine = SpinFieldEngine(pot)
    engine.update(st, nl)
    assert engine.complete
    S = np.stack([random_spins(len(st), k) for k in range(4)])
    e, h = engine.evaluate_images(st, S, nl)
    for k in range(4):
        ev = pot.compute(st.copy(spins=S[k]))
        assert e[k] == pytest.approx(ev.energy, rel=1e-12)
        assert np.abs(h[k] - ev.magnetic_forces).max() <= 1e-12 * np.abs(ev.magnetic_forces).max()


class _WrongZeeman(Zeeman):
    """Couplings that do not match the term's own fields: the engine must not fuse them."""

    def spin_couplings(self, state, neighbors=None):
        from spinlat.potentials.couplings import LinearSpinCouplings

        return LinearSpinCouplings(len(state), field=np.full((len(state), 3), 1e-3))


def test_couplings_that_do_not_reproduce_the_fields_are_not_fused():
    st = state((2, 2, 2), nonmagnetic=())
    pot = BetheSlaterExchange(*BS) + _WrongZeeman([0, 0, 1.0])
    engine = SpinFieldEngine(pot)
    engine.update(st, pot.neighbor_list(st))
    assert [type(t).__name__ for t in engine.fused] == ["BetheSlaterExchange"]
    assert [type(t).__name__ for t in engine.extra] == ["_WrongZeeman"]
    ref = pot.compute(st).magnetic_forces
    assert np.allclose(engine.magnetic_forces(st, pot.neighbor_list(st)), ref, rtol=0, atol=1e-15)


def _hidden(term):
    """The same term with its couplings switched off (the general path)."""
    cls = type(f"Hidden{type(term).__name__}", (type(term),), {"spin_couplings": None})
    hidden = cls.__new__(cls)
    hidden.__dict__.update(term.__dict__)
    return hidden


@pytest.mark.parametrize("make", [lambda: SpinLatticeNVE(0.5), lambda: SpinLatticeLangevin(0.5, 300, 0.01, 0.2, seed=5)],
                         ids=["nve", "langevin"])
def test_sweep_kernel_with_self_coupled_spins_matches_the_general_path(make):
    """Heisenberg + per-atom uniaxial anisotropy + Zeeman: the fused sweep (implicit midpoint for
    the anisotropic spins inside the kernel) gives the general per-colour path's dynamics (the
    single-site terms' couplings switched off; Heisenberg's pair table still colours the spins)."""
    st = state((2, 2, 2), nonmagnetic=(3,))
    rng = np.random.default_rng(3)
    st = st.copy(velocities=rng.normal(0, 0.003, (len(st), 3)))
    terms = [Heisenberg.from_neighbors(bcc_unit(), J=[0.02, 0.01], D=[0.004]),
             UniaxialAnisotropy(0.01, rng.normal(size=(len(st), 3))), Zeeman([0, 0.5, 2.0])]
    if EAM_FE.exists():
        terms.append(EAM(EAM_FE))
    fast, slow = SumPotential(terms), SumPotential(terms[:1] + [_hidden(t) for t in terms[1:]])
    a_int, b_int = make(), make()
    a, b = a_int.run(st, fast, 25), b_int.run(st, slow, 25)
    assert a_int._engine.complete and [type(t).__name__ for t in b_int._engine.fused] == ["Heisenberg"]
    assert np.abs(a.spins - b.spins).max() < 1e-11
    assert np.abs(a.positions - b.positions).max() < 1e-12
    assert np.array_equal(a.spins[3], st.spins[3])  # the non-magnetic atom keeps its spin


def test_fused_sweep_conserves_exchange_plus_anisotropy_exactly():
    """On a fixed lattice the symmetric sweep with the implicit midpoint rule for the anisotropic
    spins conserves exchange + DMI + uniaxial anisotropy + Zeeman energy to round-off, at a time
    step where the spins turn by about 0.1 rad per step."""
    st = state((2, 2, 2), nonmagnetic=())
    pot = (Heisenberg.from_neighbors(bcc_unit(), J=[0.02, 0.01], D=[0.004]) + UniaxialAnisotropy(0.02, [1, 1, 0])
           + Zeeman([0, 0, 5.0]))
    integ = SpinLatticeNVE(1.0)
    e0, s = pot.compute(st).energy, st
    for _ in range(4):
        s = integ.run(s, pot, 10)
        assert abs(pot.compute(s).energy - e0) < 1e-13 * len(st)
    assert integ._engine.complete and np.abs(s.spins - st.spins).max() > 0.5


def test_evaluation_travels_with_the_returned_state():
    st = state((2, 2, 2), nonmagnetic=())
    pot = BetheSlaterExchange(*BS) + Zeeman([0, 0, 1.0])
    integ = SpinLatticeNVE(0.5)
    out = integ.run(st, pot, 3)
    run = integ.last_run
    assert isinstance(run, DynamicsState) and run.state is out and run.potential is pot
    ev = integ.evaluation_at(out, pot, forces=True)
    ref = pot.compute(out)
    assert ev is run.evaluation and np.allclose(ev.forces, ref.forces, rtol=0, atol=1e-14)
    assert integ.evaluation_at(out.copy(), pot) is None  # another State object
    assert integ.evaluation_at(out, Zeeman([0, 0, 1.0])) is None  # another potential
    llg = LLG(1.0, damping=0.1)
    out = llg.run(st, pot, 2)
    assert llg.evaluation_at(out, pot, magnetic_forces=True) is not None
    assert llg.evaluation_at(out, pot, forces=True) is None  # LLG does not compute lattice forces
    mc = MonteCarlo(10.0, seed=1)
    out = mc.run(st, pot, 2)
    assert mc.last_run.state is out and mc.evaluation_at(out, pot) is None


def test_with_arrays_shares_and_replaces_without_copies():
    st = state((1, 1, 1), nonmagnetic=())
    spins = random_spins(len(st), 1)
    new = st.with_arrays(spins=spins)
    assert new.spins is spins and new.positions is st.positions and new.moments is st.moments
    assert st.spins is not spins
    with pytest.raises(InputError, match="State.with_arrays: unknown keyword 'spin' \\(did you mean 'spins'\\?\\)"):
        st.with_arrays(spin=spins)


def _boltzmann_mean(f, K, h, T, n=200001):
    """⟨f(x)⟩ over x = cos θ ∈ [−1, 1] with weight exp((K x² + h x)/k_BT) (uniform measure in x)."""
    x = np.linspace(-1, 1, n)
    w = np.exp((K * x * x + h * x - max(K + abs(h), 0.0)) / (units.K_B * T))
    return np.trapezoid(f(x) * w, x) / np.trapezoid(w, x)


def test_monte_carlo_fast_path_with_field_and_onsite_forms_samples_boltzmann():
    """Free spins with E = −K (s·z)² − |m| μB B s_z: the one-kernel Metropolis + over-relaxation
    sweeps (on-site change tested in the reflection) sample ⟨s_z⟩ and ⟨s_z²⟩ of the Boltzmann law."""
    n, mu, B, K, T = 1500, 2.0, 5.0, 4e-4, 8.0
    st = sl.State(np.c_[np.arange(n) * 3.0, np.zeros(n), np.zeros(n)], [26] * n, moments=[mu] * n,
                  spins=random_spins(n, 4), validate=False)
    pot = Zeeman([0, 0, B]) + UniaxialAnisotropy(K, [0, 0, 1])
    mc = MonteCarlo(T, seed=11, overrelax=1)
    st = mc.run(st, pot, 200)
    assert mc._model.table is not None and not mc._model.site and mc._model.onsite.shape[0] == n
    z1, z2 = [], []
    for _ in range(40):
        st = mc.run(st, pot, 5)
        z1.append(st.spins[:, 2].mean())
        z2.append((st.spins[:, 2] ** 2).mean())
    h = mu * units.MU_B * B
    m1, m2 = _boltzmann_mean(lambda x: x, K, h, T), _boltzmann_mean(lambda x: x * x, K, h, T)
    err1 = np.std(z1, ddof=1) / np.sqrt(len(z1)) + 1e-3
    err2 = np.std(z2, ddof=1) / np.sqrt(len(z2)) + 1e-3
    assert abs(np.mean(z1) - m1) < 4 * err1, (np.mean(z1), m1)
    assert abs(np.mean(z2) - m2) < 4 * err2, (np.mean(z2), m2)


def test_minimiser_and_gneb_engine_paths_agree_with_the_compute_path():
    """Spins-only minimisation and GNEB use the engine when every term is fused; hiding one
    term's couplings sends them through compute(): same minimum, same band."""
    unit = sl.State([[0, 0, 0]], [26], cell=np.diag([1.0, 1.0, 10.0]), pbc=[True, True, False], moments=[2.0])
    st = unit.repeat((6, 6, 1))
    terms = [Heisenberg.from_neighbors(unit, J=[0.01], D=[0.006]), UniaxialAnisotropy(1e-3, [0, 0, 1]),
             Zeeman([0, 0, 1.0])]
    fast, slow = SumPotential(terms), SumPotential(terms[:2] + [_hidden(terms[2])])
    start = st.copy(spins=random_spins(len(st), 3))
    a, ra = sl.minimize(start, fast, tmax=1e-8, return_result=True)
    b, rb = sl.minimize(start, slow, tmax=1e-8, return_result=True)
    assert ra.converged and rb.converged
    assert ra.energy == pytest.approx(rb.energy, abs=1e-10)
    up = st.copy(spins=np.tile([0.0, 0.0, 1.0], (len(st), 1)))
    down = st.copy(spins=np.tile([0.0, 0.0, -1.0], (len(st), 1)))
    pa = sl.gneb(up, down, fast, images=7, noise=0.05, seed=1, tol=1e-6)
    pb = sl.gneb(up, down, slow, images=7, noise=0.05, seed=1, tol=1e-6)
    assert pa.converged and pb.converged
    assert pa.barrier == pytest.approx(pb.barrier, rel=1e-6)
    assert np.allclose(pa.energies, pb.energies, rtol=0, atol=1e-6)
