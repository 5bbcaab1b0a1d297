"""Cross-validation against LAMMPS's SPIN package (pair_style spin/exchange, fix precession/spin).

Conventions of LAMMPS (metal units) and how they map onto spinlat, all checked below:

- ``spin/exchange``: E = −Σ_{i<j} J(r_ij)(s_i·s_j − δ), each unordered pair once (LAMMPS tallies
  −½ J (s_i·s_j − δ) per ordered pair of its full list), δ = 1 with ``offset yes``. Same as
  ``BetheSlaterExchange(rc, J1, J2, J3, offset)``.
- LAMMPS's magnetic force ``fm`` is an angular frequency (rad/ps): fm_i = −(1/ħ) ∂E/∂s_i with
  ħ = hplanck/2π in eV·ps. So the spin torque s_i × ∂E/∂s_i = −ħ s_i × fm_i, which spinlat gives
  as ``spin_torques(state, ev)`` = −|m_i| s_i × h_i (eV).
- ``fix precession/spin zeeman H nx ny nz``: E = −2 μB' Σ moments_i s_i·H n̂ with μB' = 5.78901e-5
  eV/T (g = 2 and a rounded Bohr magneton), while spinlat's ``Zeeman(B)`` is E = −μB Σ m_i·B. So
  ``Zeeman([0, 0, 1])`` is LAMMPS ``zeeman H 0 0 1`` with H = μB / (2 μB') ≈ 0.49994 T, and LAMMPS
  ``zeeman 1.0 0 0 1`` is ``Zeeman.from_lammps(1.0, [0, 0, 1])``. LAMMPS puts the fix energy into
  ``pe`` (``fix_modify energy yes``) but not into ``pe/atom``.
- ``fix precession/spin anisotropy K n`` = ``UniaxialAnisotropy(K, n)``; ``cubic K1 K2 axes`` =
  ``CubicAnisotropy(−K1, −K2, axes)``.
"""

import numpy as np
import pytest
from conftest import EAM_FE, bcc_fe

from spinlat import units
from spinlat.potentials import BetheSlaterExchange, CubicAnisotropy, UniaxialAnisotropy, Zeeman, spin_torques

lammps_runner = pytest.importorskip("lammps_runner")

pytestmark = [
    pytest.mark.peers,
    pytest.mark.skipif(not lammps_runner.lammps_available(), reason="LAMMPS (pip install lammps mpich) not usable"),
]

EXCHANGE = (3.4, 0.02726, 0.2171, 1.841)
# the LAMMPS field that equals spinlat's Zeeman([0, 0, 1])
H_ONE_TESLA = units.MU_B / (2.0 * units.LAMMPS_MU_B)


@pytest.fixture(scope="module")
def fe():
    """bcc Fe, a = 2.8665 Å, 5×5×5 cells (250 atoms), random spins of 2.2 μB, ~0.05 Å displacements."""
    return bcc_fe((5, 5, 5), a=2.8665, moment=2.2, rattle=0.05, seed=2024)


def _lammps(st, pair, fixes=()):
    # fix nve/spin sets lattice_flag, so spin/exchange also computes its lattice forces
    return lammps_runner.run_lammps(st.positions, st.cell, st.numbers, pair,
                                    ["fix spinlat_nve all nve/spin lattice moving", *fixes],
                                    spins=st.spins, moments=st.moments)


def _exchange_coeff(offset):
    rc, j1, j2, j3 = EXCHANGE
    return f"pair_coeff * * spin/exchange exchange {rc} {j1} {j2} {j3} offset {'yes' if offset else 'no'}"


def _compare(st, ev, ref, energies=False):
    n = len(st)
    de = abs(ev.energy - ref["energy"]) / n
    df = np.abs(ev.forces - ref["forces"]).max()
    torque_lmp = -ref["hbar"] * np.cross(st.spins, ref["magnetic_forces"])
    dt = np.abs(spin_torques(st, ev) - torque_lmp).max()
    ds = np.abs(ev.stress - ref["stress"]).max()
    print(f"|dE|/N = {de:.2e} eV, max|dF| = {df:.2e} eV/Å, max|d torque| = {dt:.2e} eV, "
          f"max|d stress| = {ds:.2e} eV/Å³ (|torque| up to {np.abs(torque_lmp).max():.3f} eV)")
    assert de < 1e-6
    assert df < 1e-5
    assert dt < 1e-6
    assert ds < 1e-7
    if energies:
        assert np.abs(ev.energies - ref["energies"]).max() < 1e-6


@pytest.mark.parametrize("offset", [False, True], ids=["offset-no", "offset-yes"])
def test_exchange_alone(fe, offset):
    ref = _lammps(fe, [f"pair_style spin/exchange {EXCHANGE[0]}", _exchange_coeff(offset).replace(" spin/exchange", "")])
    ev = BetheSlaterExchange(*EXCHANGE, offset=offset).compute(fe, stress=True)
    _compare(fe, ev, ref, energies=True)


@pytest.mark.parametrize("convention", ["Zeeman([0,0,1])", "from_lammps(1.0)"])
def test_exchange_and_zeeman(fe, convention):
    if convention == "Zeeman([0,0,1])":
        zeeman, H = Zeeman([0.0, 0.0, 1.0]), H_ONE_TESLA
    else:
        zeeman, H = Zeeman.from_lammps(1.0, [0, 0, 1]), 1.0
    ref = _lammps(fe, [f"pair_style spin/exchange {EXCHANGE[0]}", _exchange_coeff(False).replace(" spin/exchange", "")],
                  [f"fix zee all precession/spin zeeman {H:.17g} 0.0 0.0 1.0", "fix_modify zee energy yes"])
    ev = (BetheSlaterExchange(*EXCHANGE) + zeeman).compute(fe, stress=True)
    _compare(fe, ev, ref)


@pytest.mark.parametrize("offset", [False, True], ids=["offset-no", "offset-yes"])
def test_eam_exchange_zeeman(fe, offset):
    from spinlat.potentials import EAM

    ref = _lammps(fe, [f"pair_style hybrid/overlay eam/fs spin/exchange {EXCHANGE[0]}",
                       f"pair_coeff * * eam/fs {EAM_FE} Fe", _exchange_coeff(offset)],
                  [f"fix zee all precession/spin zeeman {H_ONE_TESLA:.17g} 0.0 0.0 1.0", "fix_modify zee energy yes"])
    pot = EAM(EAM_FE) + BetheSlaterExchange(*EXCHANGE, offset=offset) + Zeeman([0.0, 0.0, 1.0])
    ev = pot.compute(fe, stress=True)
    _compare(fe, ev, ref)


def test_anisotropy_conventions(fe):
    """LAMMPS ``anisotropy K n`` = UniaxialAnisotropy(K, n); ``cubic K1 K2`` = CubicAnisotropy(−K1, −K2)."""
    n = np.array([1.0, 1.0, 0.0]) / np.sqrt(2.0)
    ref = _lammps(fe, [f"pair_style spin/exchange {EXCHANGE[0]}", _exchange_coeff(False).replace(" spin/exchange", "")],
                  ["fix ani all precession/spin anisotropy 0.002 1.0 1.0 0.0 cubic 0.003 -0.001 1 0 0 0 1 0 0 0 1",
                   "fix_modify ani energy yes"])
    pot = BetheSlaterExchange(*EXCHANGE) + UniaxialAnisotropy(0.002, n) + CubicAnisotropy(-0.003, 0.001)
    _compare(fe, pot.compute(fe, stress=True), ref)
