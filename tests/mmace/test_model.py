"""mMACE network: exact symmetries, continuity at |m| → 0, derivatives against finite differences."""

import numpy as np
import pytest

from conftest import bcc_fe, fd_forces, fd_magnetic_forces, fd_stress

torch = pytest.importorskip("torch")
pytest.importorskip("mace")

from spinlat.potentials import MagneticMACE  # noqa: E402

from _tiny import TINY, _one_thread  # noqa: E402,F401  (autouse fixture)

@pytest.fixture(scope="module", params=[True, False], ids=["soc", "nosoc"])
def pot(request):
    p = MagneticMACE.create(["Fe", "Ni"], soc=request.param, seed=1, **TINY)
    # non-trivial one-body term and moment-dependent weights
    with torch.no_grad():
        p.model.landau.copy_(torch.tensor([[-0.3, 0.1, 0.01], [-0.2, 0.05, 0.0]]))
    return p


def fe_ni(reps=(2, 2, 2), seed=0):
    st = bcc_fe(reps, seed=seed)
    numbers = st.numbers.copy()
    numbers[::3] = 28
    return st.copy(numbers=numbers, moments=np.where(numbers == 28, 0.6, 2.2))


def random_rotation(rng):
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q @ np.diag(np.sign(np.diag(r)))
    return q if np.linalg.det(q) > 0 else -q


def rotated(st, R, lattice=True, spins=True):
    kw = {}
    if lattice:
        kw.update(positions=st.positions @ R.T, cell=st.cell @ R.T)
    if spins:
        kw.update(spins=st.spins @ R.T)
    return st.copy(**kw)


def test_joint_rotation_invariance(pot):
    rng = np.random.default_rng(3)
    st = fe_ni()
    R = random_rotation(rng)
    a = pot.compute(st, stress=True)
    b = pot.compute(rotated(st, R), stress=True)
    assert abs(b.energy - a.energy) <= 1e-10 * abs(a.energy)
    np.testing.assert_allclose(b.forces, a.forces @ R.T, atol=1e-10 * np.abs(a.forces).max())
    np.testing.assert_allclose(b.magnetic_forces, a.magnetic_forces @ R.T,
                               atol=1e-10 * np.abs(a.magnetic_forces).max())
    np.testing.assert_allclose(b.energies, a.energies, atol=1e-10 * np.abs(a.energies).max())


def test_spin_only_rotation(pot):
    rng = np.random.default_rng(4)
    st = fe_ni()
    R = random_rotation(rng)
    a = pot.compute(st)
    b = pot.compute(rotated(st, R, lattice=False))
    if pot.soc:
        # spin-orbit variant can learn anisotropy: spins alone rotating changes E (and does here)
        assert abs(b.energy - a.energy) > 1e-6 * abs(a.energy)
    else:
        assert abs(b.energy - a.energy) <= 1e-10 * abs(a.energy)
        np.testing.assert_allclose(b.forces, a.forces, atol=1e-10 * np.abs(a.forces).max())
        np.testing.assert_allclose(b.magnetic_forces, a.magnetic_forces @ R.T,
                                   atol=1e-10 * np.abs(a.magnetic_forces).max())


def test_time_reversal_exact(pot):
    st = fe_ni(seed=5)
    a = pot.compute(st, stress=True)
    b = pot.compute(st.copy(spins=-st.spins), stress=True)
    assert abs(b.energy - a.energy) <= 1e-12 * abs(a.energy)
    np.testing.assert_allclose(b.forces, a.forces, rtol=0, atol=1e-12 * np.abs(a.forces).max())
    np.testing.assert_allclose(b.magnetic_forces, -a.magnetic_forces, rtol=0,
                               atol=1e-12 * np.abs(a.magnetic_forces).max())
    # reversing a single moment is not a symmetry
    s = st.spins.copy()
    s[0] *= -1
    assert abs(pot.compute(st.copy(spins=s)).energy - a.energy) > 1e-9


def test_permutation_and_translation(pot):
    rng = np.random.default_rng(6)
    st = fe_ni(seed=6)
    a = pot.compute(st)
    p = rng.permutation(len(st))
    b = pot.compute(st.copy(positions=st.positions[p], numbers=st.numbers[p], spins=st.spins[p],
                            moments=st.moments[p], masses=st.masses[p], velocities=st.velocities[p]))
    assert abs(b.energy - a.energy) <= 1e-10 * abs(a.energy)
    np.testing.assert_allclose(b.forces, a.forces[p], atol=1e-12)
    np.testing.assert_allclose(b.magnetic_forces, a.magnetic_forces[p], atol=1e-12)
    c = pot.compute(st.copy(positions=st.positions + np.array([0.7, -1.3, 2.1])))
    assert abs(c.energy - a.energy) <= 1e-10 * abs(a.energy)
    np.testing.assert_allclose(c.forces, a.forces, atol=1e-12)


def test_derivatives_match_finite_differences(pot):
    st = fe_ni(seed=7)
    ev = pot.compute(st, stress=True)
    atoms = (0, 3)
    fd_f = fd_forces(pot, st, atoms=atoms)
    np.testing.assert_allclose(ev.forces[list(atoms)], fd_f, atol=1e-7)
    fd_h = fd_magnetic_forces(pot, st, atoms=atoms)
    np.testing.assert_allclose(ev.magnetic_forces[list(atoms)], fd_h, atol=1e-7)
    np.testing.assert_allclose(ev.stress, fd_stress(pot, st), atol=1e-8)
    assert np.isclose(ev.energies.sum(), ev.energy, rtol=1e-12)
    assert np.abs(ev.forces).max() > 1e-4 and np.abs(ev.magnetic_forces).max() > 1e-4


def test_continuity_as_moment_vanishes(pot):
    st = fe_ni(seed=8)
    energies, fields = [], []
    for mu in (1e-2, 1e-4, 1e-6, 0.0):
        moments = st.moments.copy()
        moments[1] = mu
        ev = pot.compute(st.copy(moments=moments))
        assert np.all(np.isfinite(ev.forces)) and np.all(np.isfinite(ev.magnetic_forces))
        energies.append(ev.energy)
        fields.append(ev.magnetic_forces[1])
    energies, fields = np.array(energies), np.array(fields)
    # smooth: E(μ) − E(0) = O(μ) at most, the fields converge as μ → 0 (to the model's −∂E/∂m at
    # m = 0); at μ = 0 itself the atom is non-magnetic and gets h = 0 (spinlat.potentials.base)
    assert np.all(np.abs(energies[:-1] - energies[-1]) <= 10 * np.array([1e-2, 1e-4, 1e-6]))
    assert np.all(np.abs(fields[:-2] - fields[-2]).max(axis=1) <= 10 * np.array([1e-2, 1e-4]))
    assert np.all(fields[-1] == 0)


def test_open_boundaries_and_isolated_atom(pot):
    import spinlat as sl

    st = sl.State([[0, 0, 0], [2.4, 0, 0], [0, 2.5, 0.3]], [26, 28, 26], spins=[[0, 0, 1], [1, 0, 0], [0, 1, 1]],
                  moments=[2.2, 0.6, 1.0])
    ev = pot.compute(st)
    np.testing.assert_allclose(ev.forces.sum(axis=0), 0, atol=1e-12)
    one = pot.compute(sl.State([[0, 0, 0]], [26], moments=[0.0]))
    assert np.isfinite(one.energy) and np.all(one.forces == 0)
