"""Quadruplet (four-spin) term E = −Σ_q K_q (s_i·s_j)(s_k·s_l): energy against a loop, fields
against finite differences, non-magnetic atoms, and the system it is defined on."""

import numpy as np
import pytest

import spinlat as sl
from spinlat.errors import ShapeError
from spinlat.potentials import Quadruplet


def _state(n, seed, moments=None):
    s = np.random.default_rng(seed).normal(size=(n, 3))
    s /= np.linalg.norm(s, axis=1)[:, None]
    pos = np.arange(n)[:, None] * np.array([2.5, 0.0, 0.0])
    return sl.State(pos, [26] * n, cell=np.diag([2.5 * n, 5.0, 5.0]), pbc=True, spins=s,
                    moments=np.full(n, 2.0) if moments is None else moments)


QUADS = np.array([[0, 1, 2, 3], [1, 2, 3, 4], [4, 0, 0, 2]])   # atom 0 twice in the last one
K = np.array([2e-3, -1e-3, 0.5e-3])


def _energy(s, quads=QUADS, k=K):
    return -sum(kk * (s[i] @ s[j]) * (s[a] @ s[b]) for (i, j, a, b), kk in zip(quads, k))


def test_energy_and_fields():
    st = _state(5, 1)
    pot = Quadruplet(st.numbers, QUADS, K)
    ev = pot.compute(st)
    assert ev.energy == pytest.approx(_energy(st.spins), rel=1e-13)
    assert ev.energies.sum() == pytest.approx(ev.energy, rel=1e-13)
    h = 1e-6
    for atom in (0, 2, 4):
        g = np.zeros(3)
        for c in range(3):
            sp, sm = st.spins.copy(), st.spins.copy()
            sp[atom, c] += h
            sm[atom, c] -= h
            g[c] = (_energy(sp) - _energy(sm)) / (2 * h)
        s = st.spins[atom]
        np.testing.assert_allclose(ev.magnetic_forces[atom], -(g - (g @ s) * s) / 2.0, rtol=0, atol=1e-9)


def test_non_magnetic_atoms_and_other_systems():
    st = _state(5, 2, moments=[2.0, 2.0, 2.0, 2.0, 0.0])
    pot = Quadruplet(st.numbers, QUADS, K)
    ev = pot.compute(st)
    assert ev.energy == pytest.approx(_energy(st.spins, QUADS[:1], K[:1]), rel=1e-13)   # only the first
    np.testing.assert_array_equal(ev.magnetic_forces[4], 0.0)
    with pytest.raises(ShapeError, match="defined on a system of 5 atoms"):
        pot.compute(_state(6, 3))
    with pytest.raises(ShapeError, match="one value per quadruplet"):
        Quadruplet(st.numbers, QUADS, K[:2])
    with pytest.raises(ShapeError, match="indices must lie in 0..4"):
        Quadruplet(st.numbers, [[0, 1, 2, 5]], [1.0])
