"""SpinLatticeNVE with Heisenberg (J + DMI), uniaxial and cubic anisotropy: exact rotation fields,
colouring of table pairs, and energy errors that are round-off or second order in dt."""

import numpy as np
import pytest

from conftest import EAM_FE, bcc_fe
from spinlat.integrators import SpinLatticeNVE
from spinlat.integrators.spin_lattice import _Work
from spinlat.potentials import CubicAnisotropy, Heisenberg, UniaxialAnisotropy, Zeeman


def total_energy(st, pot):
    return pot.compute(st, forces=False).energy + st.kinetic_energy()


def max_energy_error(pot, st, dt, t_total=20.0, chunks=4):
    integ = SpinLatticeNVE(dt)
    e0 = total_energy(st, pot)
    n = int(round(t_total / dt / chunks))
    err, s = 0.0, st
    for _ in range(chunks):
        s = integ.run(s, pot, n)
        err = max(err, abs(total_energy(s, pot) - e0))
    return err, s


@pytest.fixture(scope="module")
def state():
    return bcc_fe((3, 3, 3), rattle=0.03, seed=2)  # zero velocities


def heisenberg(st):
    return Heisenberg.from_neighbors(st, J=[0.02, 0.01], D=[0.005])


def terms(st):
    rng = np.random.default_rng(0)
    axes = np.linalg.qr(np.random.default_rng(1).normal(size=(3, 3)))[0]
    return {
        "cubic K1": CubicAnisotropy(0.05, 0.0, axes=axes),
        "cubic K2": CubicAnisotropy(0.0, 0.02, axes=axes),
        "uniaxial": UniaxialAnisotropy(0.05, [1, 1, 1]),
        "uniaxial per-atom": UniaxialAnisotropy(0.05, rng.normal(size=(len(st), 3))),
        "cubic": CubicAnisotropy(0.05, 0.02, axes=axes),
        "heisenberg": heisenberg(st),
    }


@pytest.mark.parametrize("name, degree", [("uniaxial", 2), ("uniaxial per-atom", 2), ("cubic K1", 4),
                                          ("cubic K2", 6), ("heisenberg", 2)])
def test_rotation_fields_are_unprojected_gradients(state, name, degree):
    """Projected, they are the magnetic forces; along s_i they carry −(1/|m_i|) s_i·∂E/∂s_i,
    which Euler's theorem fixes for energies homogeneous of degree k in s: s·h = −k E_i/|m_i|."""
    pot = terms(state)[name]
    atoms = np.arange(len(state))
    h = pot.rotation_fields(state, None, atoms)
    ev = pot.compute(state)
    s = state.spins
    par = np.sum(h * s, axis=1)
    np.testing.assert_allclose(h - par[:, None] * s, ev.magnetic_forces, atol=1e-15)
    np.testing.assert_allclose(par, -degree * ev.energies / state.moments, atol=1e-15)
    sub = atoms[::5]
    np.testing.assert_allclose(pot.rotation_fields(state, None, sub), h[sub], atol=0)


def test_heisenberg_pairs_are_never_in_one_colour(state):
    pot = heisenberg(state) + UniaxialAnisotropy(0.01, [0, 0, 1])
    ws = _Work(state, pot)
    color = np.full(len(state), -1)
    for c, atoms in enumerate(ws.classes):
        color[atoms] = c
    i, j, _ = pot.terms[0].pairs(state)
    other = i != j
    assert len(ws.classes) > 1
    assert np.all(color[i[other]] != color[j[other]])


@pytest.mark.parametrize("name", ["heisenberg", "uniaxial", "uniaxial per-atom", "heisenberg+uniaxial+zeeman"])
def test_frozen_lattice_energy_conserved_to_round_off(state, name):
    """Fields linear in s_i (Heisenberg, Zeeman) rotate exactly; a uniaxial term alone rotates
    exactly about (2K/μ)(s·n)n; combined, the implicit-midpoint rotation conserves this
    quadratic energy exactly. So on a frozen lattice the energy stays put to round-off."""
    t = terms(state)
    pot = (t["heisenberg"] + t["uniaxial"] + Zeeman([0, 0, 20.0]) if name == "heisenberg+uniaxial+zeeman"
           else t[name])
    err, s = max_energy_error(pot, state, 0.4)
    assert err < 1e-12, err
    assert np.abs(np.linalg.norm(s.spins, axis=1) - 1).max() < 1e-13
    assert not np.allclose(s.spins, state.spins, atol=1e-3)  # the spins did move


@pytest.mark.parametrize("name", ["cubic", "heisenberg+cubic"])
def test_frozen_lattice_cubic_energy_error_second_order(state, name):
    t = terms(state)
    pot = t["cubic"] if name == "cubic" else t["heisenberg"] + t["cubic"]
    e1, _ = max_energy_error(pot, state, 0.4)
    e2, _ = max_energy_error(pot, state, 0.2)
    assert e1 > 1e-10
    assert 3.2 < e1 / e2 < 5.0, (e1, e2)


def test_coupled_lattice_with_heisenberg_and_anisotropies_second_order(state):
    from spinlat.potentials import EAM

    if not EAM_FE.exists():
        pytest.skip("EAM file missing")
    t = terms(state)
    pot = EAM(EAM_FE) + t["heisenberg"] + t["uniaxial"] + t["cubic"]
    e1, _ = max_energy_error(pot, state, 0.4, t_total=16)
    e2, _ = max_energy_error(pot, state, 0.2, t_total=16)
    assert 3.2 < e1 / e2 < 5.0, (e1, e2)
