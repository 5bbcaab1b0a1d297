"""Biquadratic exchange E = −Σ_<ij> B_ij (s_i·s_j)²: energy against a NumPy loop over the pairs
of a supercell, magnetic forces and spin curvatures against finite differences."""

import numpy as np
import pytest

import spinlat as sl
from spinlat.potentials import Biquadratic


def _unit(n, seed):
    s = np.random.default_rng(seed).normal(size=(n, 3))
    return s / np.linalg.norm(s, axis=1)[:, None]


def _chain_pair():
    """Two sites in a 2.5 × 5 × 5 Å cell: B1 between them in the cell, B2 from site 0 to
    site 1 of the next cell along x, B3 from site 0 to its own image along x."""
    cell = np.diag([2.5, 5.0, 5.0])
    pos = np.array([[0.0, 0.0, 0.0], [1.25, 0.0, 0.0]])
    B = np.array([2e-3, -1e-3, 0.5e-3])
    pot = Biquadratic(cell, pos, [26, 26], [0, 1, 0], [1, 0, 0], [[0, 0, 0], [1, 0, 0], [1, 0, 0]], B)
    return sl.State(pos, [26, 26], cell=cell, pbc=True, moments=[2.2, 1.5]), pot, B


def test_energy_matches_a_loop_over_the_supercell_pairs():
    unit, pot, (b1, b2, b3) = _chain_pair()
    st = unit.repeat((4, 1, 1))   # sites 2c, 2c+1 of cell c
    s = _unit(len(st), 1)
    e = 0.0
    for c in range(4):
        a, b, a_next, b_prev = 2 * c, 2 * c + 1, 2 * ((c + 1) % 4), 2 * ((c - 1) % 4) + 1
        e -= b1 * (s[a] @ s[b]) ** 2 + b2 * (s[b] @ s[a_next]) ** 2 + b3 * (s[a] @ s[a_next]) ** 2
    ev = pot.compute(st.copy(spins=s))
    assert ev.energy == pytest.approx(e, rel=1e-13)
    assert ev.energies.sum() == pytest.approx(e, rel=1e-13)
    np.testing.assert_array_equal(ev.forces, 0.0)


def test_magnetic_forces_and_curvatures_are_finite_differences():
    """h_i = −∂E/∂m_i (transverse: E depends on directions only) and c_i = tr H − sᵀHs of
    E(s_i) on ℝ³, both by central differences."""
    unit, pot, _ = _chain_pair()
    st = unit.repeat((3, 1, 1))
    s = _unit(len(st), 2)
    st = st.copy(spins=s)
    ev = pot.compute(st)

    def energy_of(i, v):   # v: the vector of spin i on ℝ³ (not normalised), others fixed
        sp = s.copy()
        sp[i] = v
        i_, j_, B = pot.pair_table(st)
        c = np.einsum("pa,pa->p", sp[i_], sp[j_])
        return -np.sum(B * c * c)

    h, d = 1e-5, np.eye(3)
    for i in (0, 3):
        grad = np.array([(energy_of(i, s[i] + h * d[a]) - energy_of(i, s[i] - h * d[a])) / (2 * h) for a in range(3)])
        hess = np.array([[(energy_of(i, s[i] + h * d[a] + h * d[b]) - energy_of(i, s[i] + h * d[a] - h * d[b])
                           - energy_of(i, s[i] - h * d[a] + h * d[b]) + energy_of(i, s[i] - h * d[a] - h * d[b]))
                          / (4 * h * h) for b in range(3)] for a in range(3)])
        field = -(grad - (grad @ s[i]) * s[i]) / st.moments[i]
        np.testing.assert_allclose(ev.magnetic_forces[i], field, rtol=0, atol=1e-9)
        curv = np.trace(hess) - s[i] @ hess @ s[i]
        assert pot.spin_curvatures(st, None, [i])[0] == pytest.approx(curv, abs=1e-6)
        # the energy as the full potential gives it, with spin i moved on the sphere
        t = _unit(1, 10 + i)[0]
        moved = s.copy()
        moved[i] = t
        assert pot.compute(st.copy(spins=moved)).energy == pytest.approx(energy_of(i, t), rel=1e-13)


def test_non_magnetic_atoms_and_bad_shapes():
    unit, pot, (b1, b2, b3) = _chain_pair()
    st = unit.copy(moments=[2.2, 0.0], spins=_unit(2, 3))
    ev = pot.compute(st)
    assert ev.energy == pytest.approx(-b3, rel=1e-13)   # only site 0 with its own image: (s·s)² = 1
    np.testing.assert_array_equal(ev.magnetic_forces[1], 0.0)
    with pytest.raises(sl.errors.ShapeError, match="one value per pair"):
        Biquadratic(unit.cell, unit.positions, [26, 26], [0], [1], [[0, 0, 0]], [1.0, 2.0])
