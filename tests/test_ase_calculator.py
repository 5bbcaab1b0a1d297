"""SpinLatticeCalculator: spinlat potentials inside ASE."""

import numpy as np
import pytest
from ase.calculators.fd import calculate_numerical_forces, calculate_numerical_stress

import spinlat as sl
from spinlat import units
from spinlat.ase import SpinLatticeCalculator
from spinlat.potentials.base import Evaluation, Potential, virial_to_voigt

from conftest import bcc_fe, fd_forces, fd_magnetic_forces, fd_stress


class PairSpin(Potential):
    """Test potential: E = Σ_{i<j} [A (rc−r)³ − J0 (rc−r)² m_i·m_j] − μB Σ_i m_i·B."""

    depends_on_magnitudes = True

    def __init__(self, A=0.05, J0=0.004, rc=3.6, B=(0.3, -0.2, 1.0)):
        self.A, self.J0, self.cutoff, self.B = A, J0, rc, np.asarray(B, dtype=float)

    def _evaluate(self, state, nl, forces, magnetic_forces, stress):
        n = len(state)
        m = state.magnetic_moments
        h = np.zeros((n, 3))
        h[:] = units.MU_B * self.B
        energies = -units.MU_B * m @ self.B
        f = np.zeros((n, 3))
        virial = np.zeros((3, 3))
        d = nl.vectors(state.positions)[nl.half]
        i, j = nl.i[nl.half], nl.j[nl.half]
        r = np.linalg.norm(d, axis=1)
        keep = r < self.cutoff
        d, i, j, r = d[keep], i[keep], j[keep], r[keep]
        x = self.cutoff - r
        mm = np.sum(m[i] * m[j], axis=1)
        u = self.A * x**3 - self.J0 * x**2 * mm
        du = -3 * self.A * x**2 + 2 * self.J0 * x * mm
        np.add.at(energies, i, 0.5 * u)
        np.add.at(energies, j, 0.5 * u)
        np.add.at(h, i, self.J0 * (x**2)[:, None] * m[j])
        np.add.at(h, j, self.J0 * (x**2)[:, None] * m[i])
        fij = (du / r)[:, None] * d
        np.add.at(f, i, fij)
        np.add.at(f, j, -fij)
        virial = (fij.T @ d)
        h[~state.magnetic] = 0.0
        return Evaluation(float(energies.sum()), f if forces else None, h if magnetic_forces else None,
                          virial_to_voigt(virial, state.volume) if stress else None, energies)


@pytest.fixture
def system():
    st = bcc_fe((2, 2, 2), rattle=0.08, seed=3)
    # one non-magnetic atom and a sheared cell
    mom = st.moments.copy()
    mom[3] = 0.0
    cell = st.cell + np.array([[0, 0.1, 0], [0.05, 0, 0], [0, 0.08, 0]])
    return st.copy(moments=mom, cell=cell, positions=st.positions @ np.linalg.solve(st.cell, cell))


def test_dummy_potential_matches_finite_differences(system):
    pot = PairSpin()
    ev = pot.compute(system, stress=True)
    assert np.isclose(ev.energies.sum(), ev.energy)
    np.testing.assert_allclose(ev.forces[[0, 5]], fd_forces(pot, system, atoms=(0, 5)), atol=1e-7)
    np.testing.assert_allclose(ev.magnetic_forces[[0, 5]], fd_magnetic_forces(pot, system, atoms=(0, 5)),
                               atol=1e-7)
    np.testing.assert_allclose(ev.stress, fd_stress(pot, system), atol=1e-8)


def test_calculator_results_and_numerical_derivatives(system):
    pot = PairSpin()
    atoms = system.to_ase()
    calc = SpinLatticeCalculator(pot)
    atoms.calc = calc
    ev = pot.compute(system, stress=True)
    assert atoms.get_potential_energy() == pytest.approx(ev.energy, abs=1e-12)
    assert atoms.get_potential_energy(force_consistent=True) == pytest.approx(ev.energy, abs=1e-12)
    np.testing.assert_allclose(atoms.get_forces(), ev.forces, atol=1e-12)
    np.testing.assert_allclose(atoms.get_stress(), ev.stress, atol=1e-12)
    np.testing.assert_allclose(calc.get_property("energies", atoms), ev.energies, atol=1e-12)
    h = calc.get_magnetic_forces(atoms)
    assert h.shape == (len(atoms), 3)
    np.testing.assert_allclose(h, ev.magnetic_forces, atol=1e-12)
    np.testing.assert_array_equal(calc.results["magnetic_forces"][3], 0.0)  # non-magnetic atom
    # ASE's own finite differences
    num_f = calculate_numerical_forces(atoms, eps=1e-5)
    np.testing.assert_allclose(atoms.get_forces(), num_f, atol=1e-7)
    num_s = calculate_numerical_stress(atoms, eps=1e-6)
    np.testing.assert_allclose(atoms.get_stress(), num_s, atol=1e-8)


def test_changing_magmoms_triggers_recalculation(system):
    atoms = system.to_ase()
    atoms.calc = SpinLatticeCalculator(PairSpin())
    e0 = atoms.get_potential_energy()
    m = atoms.get_initial_magnetic_moments().copy()
    m[0] = -m[0]
    atoms.set_initial_magnetic_moments(m)
    e1 = atoms.get_potential_energy()
    assert e1 != e0
    st = sl.State.from_ase(atoms)
    assert e1 == pytest.approx(PairSpin().compute(st).energy, abs=1e-12)


def test_changing_the_spins_or_magmoms_array_triggers_recalculation(system):
    """The 'spins' directions and a 'magmoms' array are inputs (State.from_ase) that ASE's own
    change check does not track: changing them in place gave the cached, stale energy."""
    atoms = system.to_ase()
    for k in ("spinlat_spins", "spinlat_moments", "initial_magmoms"):
        del atoms.arrays[k]
    atoms.set_initial_magnetic_moments(np.full(len(atoms), 2.2))
    atoms.arrays["spins"] = np.tile([0.0, 0.0, 1.0], (len(atoms), 1))
    atoms.calc = SpinLatticeCalculator(PairSpin())
    e0 = atoms.get_potential_energy()
    atoms.arrays["spins"][0] = [1.0, 0.0, 0.0]                     # in place
    e1 = atoms.get_potential_energy()
    assert e1 == pytest.approx(PairSpin().compute(sl.State.from_ase(atoms)).energy, abs=1e-12)
    assert e1 != e0
    np.testing.assert_allclose(atoms.get_magnetic_moments()[0], [2.2, 0.0, 0.0])
    del atoms.arrays["spins"], atoms.arrays["initial_magmoms"]
    atoms.arrays["magmoms"] = np.tile([0.0, 2.2, 0.0], (len(atoms), 1))
    e2 = atoms.get_potential_energy()
    atoms.arrays["magmoms"][1] = [0.0, 0.0, 2.2]
    e3 = atoms.get_potential_energy()
    assert e3 == pytest.approx(PairSpin().compute(sl.State.from_ase(atoms)).energy, abs=1e-12)
    assert e3 != e2


def test_collinear_magmoms():
    st = bcc_fe((2, 2, 2), random_spins=False, seed=1)
    atoms = st.to_ase()
    for k in ("spinlat_spins", "spinlat_moments", "initial_magmoms"):
        del atoms.arrays[k]
    coll = np.full(len(atoms), 2.2)
    coll[::2] *= -1
    atoms.set_initial_magnetic_moments(coll)
    atoms.calc = SpinLatticeCalculator(PairSpin(B=(0, 0, 1.0)))
    spins = np.zeros((len(atoms), 3))
    spins[:, 2] = np.sign(coll)
    ref = PairSpin(B=(0, 0, 1.0)).compute(st.copy(spins=spins))
    assert atoms.get_potential_energy() == pytest.approx(ref.energy, abs=1e-12)
    np.testing.assert_allclose(atoms.calc.results["magnetic_forces"], ref.magnetic_forces, atol=1e-12)


def test_stress_without_pbc_is_an_error():
    st = sl.State([[0, 0, 0], [2.5, 0, 0]], [26, 26], moments=[2.0, 2.0])
    atoms = st.to_ase()
    atoms.calc = SpinLatticeCalculator(PairSpin())
    assert np.isfinite(atoms.get_potential_energy())
    with pytest.raises(sl.errors.InputError, match="periodic"):
        atoms.get_stress()


def test_magnetic_moments_as_ase_reports_them(system):
    """Non-collinear input: ``magmoms`` (N, 3) and the total ``magmom`` (3,), as ASE's
    non-collinear DFT results; collinear input: (N,) signed moments and a number."""
    atoms = system.to_ase()
    atoms.calc = SpinLatticeCalculator(PairSpin())
    np.testing.assert_array_equal(atoms.get_magnetic_moments(), system.magnetic_moments)
    np.testing.assert_allclose(atoms.get_magnetic_moment(), system.magnetization(), rtol=1e-14)
    assert atoms.calc.get_magnetic_forces(atoms).shape == (len(atoms), 3)
    coll = np.where(np.arange(len(atoms)) % 2 == 0, 2.2, -1.1)
    plain = atoms.copy()
    for k in ("spinlat_spins", "spinlat_moments", "initial_magmoms"):
        del plain.arrays[k]
    plain.set_initial_magnetic_moments(coll)
    plain.calc = SpinLatticeCalculator(PairSpin())
    np.testing.assert_array_equal(plain.get_magnetic_moments(), coll)
    assert plain.get_magnetic_moment() == pytest.approx(coll.sum(), abs=1e-13)


def test_constraints_are_applied_by_ase_not_refused():
    """Like every ASE calculator: raw results, ASE applies FixAtoms to the forces it returns."""
    from ase.constraints import FixAtoms

    from spinlat.potentials import EAM
    from conftest import EAM_FE

    st = bcc_fe(2, rattle=0.05, seed=1)
    atoms = st.to_ase()
    atoms.calc = SpinLatticeCalculator(EAM(EAM_FE))
    free = atoms.get_forces().copy()
    atoms.set_constraint(FixAtoms(indices=[0, 2]))
    fixed = atoms.get_forces()
    np.testing.assert_array_equal(fixed[[0, 2]], 0.0)
    np.testing.assert_array_equal(np.delete(fixed, [0, 2], axis=0), np.delete(free, [0, 2], axis=0))
    np.testing.assert_array_equal(atoms.get_forces(apply_constraint=False), free)


def test_another_potential_gives_new_results():
    """``atoms.calc.potential = other`` (or ``calc.set(potential=other)``) kept the results of the
    first potential: ASE reuses results until the atoms change, and neither way told it the
    model had changed, so the old energy came back. Now both reset the results; anything but a
    spinlat Potential is refused, naming what was given."""
    from ase.build import bulk
    from spinlat.errors import InputError
    from spinlat.potentials import Zeeman

    at = bulk("Fe", "bcc", a=2.87)
    at.set_initial_magnetic_moments([2.2])
    at.calc = SpinLatticeCalculator(Zeeman([0, 0, 1.0]))
    e1 = at.get_potential_energy()
    assert e1 == pytest.approx(-2.2 * units.MU_B)
    at.calc.potential = Zeeman([0, 0, 2.0])
    assert at.get_potential_energy() == pytest.approx(2 * e1, rel=1e-14)
    at.calc.set(potential=Zeeman([0, 0, 3.0]))
    assert at.get_potential_energy() == pytest.approx(3 * e1, rel=1e-14)
    for bad in ("EAM", 5, None):
        with pytest.raises(InputError, match="SpinLatticeCalculator.*spinlat Potential"):
            SpinLatticeCalculator(bad)
        with pytest.raises(InputError, match="SpinLatticeCalculator.*spinlat Potential"):
            at.calc.potential = bad
    assert at.get_potential_energy() == pytest.approx(3 * e1, rel=1e-14)
