"""A crystal turned against the Heisenberg template is the same crystal: E(Q r, Q s) = E(r, s) and
h(Q r, Q s) = Q h(r, s) for any rotation Q, DMI and single-ion anisotropy included (the tensors
turn with the crystal, J → Q J Qᵀ); an ASE cubic cell matches the primitive cell of a TB2J file
written in another orientation; a lattice-constant mismatch beyond the strain tolerance is named.
Reference values: the same state in the template's own orientation."""

import warnings

import numpy as np
import pytest
from ase.build import bulk
from scipy.spatial.transform import Rotation

import spinlat as sl
from spinlat.errors import CellError
from spinlat.integrators import LLG
from spinlat.potentials import Heisenberg
from spinlat.potentials.heisenberg import OrientationAmbiguityWarning

from conftest import TB2J_FE

A = 2.8665
#: a general orientation (no lattice symmetry), and the template's primitive cell in it
TURN = Rotation.from_rotvec([0.41, -0.93, 0.27]).as_matrix()


def chiral_template(lattice="triclinic"):
    """A template with Bloch DMI on the first shell, isotropic exchange on three shells and an
    easy-axis on-site tensor along a general direction: a triclinic two-species cell (Fe, Co),
    whose positions fix the orientation of a turned copy, or primitive bcc Fe (``"bcc"``, a
    DFT-like lower-triangular cell) whose positions fit 24 orientations."""
    if lattice == "bcc":
        unit = sl.State.from_ase(bulk("Fe", "bcc", a=A)).copy(moments=[2.2])
    else:
        cell = np.array([[3.0, 0.0, 0.0], [0.7, 3.3, 0.0], [0.4, 0.9, 3.6]])
        unit = sl.State(np.array([[0.0, 0.0, 0.0], [0.45, 0.3, 0.55]]) @ cell, ["Fe", "Co"], cell=cell, pbc=True,
                        moments=[2.2, 1.6])
    shells = Heisenberg.from_neighbors(unit, J=[0.02, 0.008, 0.004], D=[0.003])
    axis = np.array([0.3, -0.5, 0.81])
    axis /= np.linalg.norm(axis)
    K = 0.0007 * np.outer(axis, axis)
    ham = Heisenberg(shells.cell, shells.positions, shells.numbers, np.r_[shells.i, 0], np.r_[shells.j, 0],
                     np.vstack([shells.R, [0, 0, 0]]), np.concatenate([shells.J, K[None]]))
    return unit, ham


def fresh(ham):
    return Heisenberg(ham.cell, ham.positions, ham.numbers, ham.i, ham.j, ham.R, ham.J)


def turned(st, q, shift=(0.0, 0.0, 0.0)):
    """``st`` rotated by q (positions, cell and spins: spins are axial, q proper) and shifted."""
    return st.copy(positions=st.positions @ q.T + np.asarray(shift), cell=st.cell @ q.T, spins=st.spins @ q.T)


def random_state(unit, reps, seed, rattle=0.05):
    st = unit.repeat(reps)
    rng = np.random.default_rng(seed)
    return st.copy(spins=rng.normal(size=(len(st), 3)), positions=st.positions + rng.normal(0, rattle, (len(st), 3)))


@pytest.mark.parametrize("reps", [(1, 1, 1), (3, 3, 3), (6, 6, 6)])
def test_energy_and_fields_turn_with_the_crystal(reps):
    """2 atoms (bond shell through periodic images), 54 and 432 atoms (minimum image): energy to
    1e-12 relative, fields rotated to 1e-12 eV/μB, the rotation found exactly, no warning (one
    orientation fits a triclinic crystal)."""
    unit, ham = chiral_template()
    assert not ham.spin_rotation_invariant
    ref = random_state(unit, reps, seed=1)
    rot = turned(ref, TURN, shift=(0.7, -1.1, 0.4))
    e0 = ham.compute(ref, magnetic_forces=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        e1 = fresh(ham).compute(rot, magnetic_forces=True)
    assert e1.energy == pytest.approx(e0.energy, rel=1e-12, abs=1e-14)
    np.testing.assert_allclose(e1.magnetic_forces, e0.magnetic_forces @ TURN.T, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ham.tensors_on(rot), np.einsum("ab,pbc,dc->pad", TURN, ham.J, TURN), atol=1e-12)
    np.testing.assert_array_equal(ham.tensors_on(ref), ham.J)


def test_without_turning_the_tensors_the_energy_would_differ():
    """The rotation matters for anisotropic tensors: the turned state's energy with the tensors
    left in the template's frame is another number (so the test above is not vacuous)."""
    unit, ham = chiral_template()
    ref = random_state(unit, (3, 3, 3), seed=2)
    rot = turned(ref, TURN)
    i, j, J = ham.pairs(rot)
    s = rot.spins / np.linalg.norm(rot.spins, axis=1)[:, None]
    e_turned = -np.einsum("pa,pab,pb->", s[i], J, s[j])
    assert e_turned == pytest.approx(ham.compute(rot).energy, rel=1e-12)
    J0 = ham.J[np.argmin(np.abs(J[:, None] - ham.J[None]).sum(axis=(2, 3)), axis=1)]  # unturned tensors
    e_unturned = -np.einsum("pa,pab,pb->", s[i], J0, s[j])
    assert abs(e_unturned - e_turned) > 1e-4


def test_dynamics_of_a_turned_crystal_is_the_turned_dynamics():
    """LLG with damping, 30 steps: the pair table follows the turned atoms and the spins stay the
    turned spins of the reference run to 1e-10."""
    unit, ham = chiral_template()
    ref = random_state(unit, (3, 3, 3), seed=3, rattle=0.0)
    rot = turned(ref, TURN)
    a = LLG(0.5, damping=0.1).run(ref, ham, 30)
    b = LLG(0.5, damping=0.1).run(rot, fresh(ham), 30)
    np.testing.assert_allclose(b.spins, a.spins @ TURN.T, atol=1e-10)


def test_hot_turned_crystal_matches():
    """Atoms displaced by 0.12 Å (thermal): the rotation is refined on all bonds of atom 0 and
    the turned state still gets the reference's energy."""
    unit, ham = chiral_template()
    ref = random_state(unit, (4, 4, 4), seed=4, rattle=0.12)
    rot = turned(ref, TURN)
    assert ham.compute(rot).energy == pytest.approx(ham.compute(ref).energy, rel=1e-12)


@pytest.mark.parametrize("a", [2.8487, 2.87])
def test_ase_cubic_cell_against_the_tb2j_primitive_cell(a):
    """The shipped TB2J bcc Fe file has a primitive cell in a lower-triangular orientation; an ASE
    cubic 3×3×3 cell (a = 2.8487 Å, the file's, or 2.87 Å, 0.7 % strained) is the same crystal
    turned: ferromagnetic energy per atom equal to the file's own supercell's, to 1e-12."""
    unit, ham = sl.io.read_tb2j(TB2J_FE)
    own = unit.repeat((3, 3, 3))
    own = own.copy(spins=np.tile([0.0, 0.0, 1.0], (len(own), 1)))
    cubic = sl.State.from_ase(bulk("Fe", "bcc", a=a, cubic=True) * (3, 3, 3))
    cubic = cubic.copy(moments=np.full(len(cubic), 2.2), spins=np.tile([0.0, 0.0, 1.0], (len(cubic), 1)))
    assert ham.spin_rotation_invariant  # isotropic file: the orientation does not change J
    e_own = ham.compute(own).energy / len(own)
    assert ham.compute(cubic).energy / len(cubic) == pytest.approx(e_own, rel=1e-12)


def test_a_different_lattice_constant_is_named():
    unit, ham = sl.io.read_tb2j(TB2J_FE)
    cubic = sl.State.from_ase(bulk("Fe", "bcc", a=3.1, cubic=True) * (2, 2, 2))
    with pytest.raises(CellError, match=r"in any orientation.*lattice constants differ by \+8\.8"):
        ham.compute(cubic.copy(moments=np.full(len(cubic), 2.2)))


def test_orientations_a_lattice_cannot_tell_apart_are_named():
    """bcc with an anisotropic template: 24 proper rotations fit a turned copy; the smallest is
    taken and a warning names the choice; the result is the reference state turned by that
    rotation (energy of the reference with the tensors turned back)."""
    unit, ham = chiral_template("bcc")
    ref = random_state(unit, (3, 3, 3), seed=5)
    rot = turned(ref, TURN)
    with pytest.warns(OrientationAmbiguityWarning, match="fit 24 orientations"):
        e = ham.compute(rot).energy
    i, j, J = ham.pairs(rot)
    s = rot.spins / np.linalg.norm(rot.spins, axis=1)[:, None]
    assert -np.einsum("pa,pab,pb->", s[i], J, s[j]) == pytest.approx(e, rel=1e-12)
    iso, _ = chiral_template("bcc")
    isotropic = Heisenberg.from_neighbors(iso, J=[0.02, 0.008])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # isotropic exchange: the orientation does not matter, no warning
        assert isotropic.compute(rot).energy == pytest.approx(isotropic.compute(ref).energy, rel=1e-12)
