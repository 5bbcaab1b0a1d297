"""The magnetic symmetry group of each mMACE variant, exactly (float64, 1e-12 relative).

soc=True: E(R r, det(R) R m) = E(r, m) for every R in O(3) (moments are axial vectors) and
E(r, −m) = E(r, m) (time reversal), separately; soc=False: E(R r, Q m) = E(r, m) for any two R, Q
in O(3). Both: translations and permutations of atoms. Forces, magnetic forces and stress
transform as the derivatives of an invariant must."""

import numpy as np
import pytest

from conftest import bcc_fe

torch = pytest.importorskip("torch")
pytest.importorskip("mace")

from spinlat.potentials import MagneticMACE  # noqa: E402

from _tiny import TINY, _one_thread  # noqa: E402,F401  (autouse fixture)

TOL = 1e-12


@pytest.fixture(scope="module", params=[True, False], ids=["soc", "nosoc"])
def pot(request):
    # moment harmonics up to l = 2 and time-reversal-odd messages up to l = 2 exercise every grading
    extra = dict(max_ell_m=2, max_ell_odd=2) if request.param else {}
    p = MagneticMACE.create(["Fe", "Ni"], soc=request.param, seed=11, **TINY, **extra)
    with torch.no_grad():
        p.model.landau.copy_(torch.tensor([[-0.3, 0.1, 0.01], [-0.2, 0.05, 0.0]]))
        # break the initial zero of the readouts so every layer contributes
        for par in p.model.parameters():
            par.add_(0.05 * torch.randn_like(par, generator=torch.Generator().manual_seed(3)))
    return p


def fe_ni(seed=0):
    st = bcc_fe((2, 2, 2), seed=seed)
    numbers = st.numbers.copy()
    numbers[::3] = 28
    rng = np.random.default_rng(seed)
    return st.copy(numbers=numbers, moments=np.where(numbers == 28, 0.6, 2.2) * rng.uniform(0.7, 1.2, len(st)))


def transform(st, R, Q):
    """Positions and cell by R, moment vectors by Q (spins by Q / sign(...) so that m = moment·spin)."""
    return st.copy(positions=st.positions @ R.T, cell=st.cell @ R.T, spins=st.spins @ Q.T)


def random_orthogonal(rng, det):
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q @ np.diag(np.sign(np.diag(r)))
    return q if np.linalg.det(q) * det > 0 else -q


def check(a, b, R, Q, what):
    """b = E at the transformed configuration; derivatives transform with R (positions), Q (moments)."""
    assert abs(b.energy - a.energy) <= TOL * abs(a.energy), (what, b.energy, a.energy)
    np.testing.assert_allclose(b.energies, a.energies, rtol=0, atol=TOL * np.abs(a.energies).max(), err_msg=what)
    np.testing.assert_allclose(b.forces, a.forces @ R.T, rtol=0, atol=TOL * np.abs(a.forces).max(), err_msg=what)
    np.testing.assert_allclose(b.magnetic_forces, a.magnetic_forces @ Q.T, rtol=0,
                               atol=TOL * np.abs(a.magnetic_forces).max(), err_msg=what)
    sa, sb = voigt_to_matrix(a.stress), voigt_to_matrix(b.stress)
    np.testing.assert_allclose(sb, R @ sa @ R.T, rtol=0, atol=TOL * np.abs(sa).max(), err_msg=what)


def voigt_to_matrix(v):
    xx, yy, zz, yz, xz, xy = v
    return np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])


def test_inversion_alone(pot):
    st = fe_ni(1)
    a = pot.compute(st, stress=True)
    check(a, pot.compute(transform(st, -np.eye(3), np.eye(3)), stress=True), -np.eye(3), np.eye(3), "r -> -r")


def test_time_reversal_alone(pot):
    st = fe_ni(2)
    a = pot.compute(st, stress=True)
    check(a, pot.compute(transform(st, np.eye(3), -np.eye(3)), stress=True), np.eye(3), -np.eye(3), "m -> -m")
    assert np.abs(a.magnetic_forces).max() > 1e-3 and np.abs(a.forces).max() > 1e-3


def test_improper_rotation_with_axial_moments(pot):
    rng = np.random.default_rng(3)
    st = fe_ni(3)
    a = pot.compute(st, stress=True)
    R = random_orthogonal(rng, det=-1)
    check(a, pot.compute(transform(st, R, np.linalg.det(R) * R), stress=True), R, np.linalg.det(R) * R,
          "r -> R r, m -> det(R) R m")


def test_proper_rotation(pot):
    rng = np.random.default_rng(4)
    st = fe_ni(4)
    a = pot.compute(st, stress=True)
    R = random_orthogonal(rng, det=1)
    check(a, pot.compute(transform(st, R, R), stress=True), R, R, "joint rotation")


def test_permutation_and_translation_exact(pot):
    rng = np.random.default_rng(5)
    st = fe_ni(5)
    a = pot.compute(st, stress=True)
    p = rng.permutation(len(st))
    b = pot.compute(st.copy(positions=st.positions[p], numbers=st.numbers[p], spins=st.spins[p],
                            moments=st.moments[p], masses=st.masses[p], velocities=st.velocities[p]), stress=True)
    assert abs(b.energy - a.energy) <= TOL * abs(a.energy)
    np.testing.assert_allclose(b.forces, a.forces[p], rtol=0, atol=TOL * np.abs(a.forces).max())
    np.testing.assert_allclose(b.magnetic_forces, a.magnetic_forces[p], rtol=0,
                               atol=TOL * np.abs(a.magnetic_forces).max())
    c = pot.compute(st.copy(positions=st.positions + np.array([0.7, -1.3, 2.1])), stress=True)
    check(a, c, np.eye(3), np.eye(3), "translation")


def test_spin_rotation_group(pot):
    """soc=False: any O(3) on the moments alone (lattice fixed) is a symmetry; soc=True: not."""
    rng = np.random.default_rng(6)
    st = fe_ni(6)
    a = pot.compute(st, stress=True)
    for det in (1, -1):
        Q = random_orthogonal(rng, det=det)
        b = pot.compute(transform(st, np.eye(3), Q), stress=True)
        if pot.soc:
            assert abs(b.energy - a.energy) > 1e-6 * abs(a.energy)
        else:
            check(a, b, np.eye(3), Q, f"spin rotation det {det}")
    if not pot.soc:
        # and the lattice may rotate improperly on its own
        R = random_orthogonal(rng, det=-1)
        check(a, pot.compute(transform(st, R, np.eye(3)), stress=True), R, np.eye(3), "lattice alone")


def test_reversing_one_moment_is_not_a_symmetry(pot):
    st = fe_ni(7)
    s = st.spins.copy()
    s[0] *= -1
    assert abs(pot.compute(st.copy(spins=s)).energy - pot.compute(st).energy) > 1e-9
