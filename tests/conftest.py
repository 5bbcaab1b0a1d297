"""Shared fixtures and finite-difference checks for the test suite."""

import os
from pathlib import Path

import numpy as np
import pytest

import spinlat as sl

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
if not SHARED.exists():  # CI clones beside a copy of shared/
    SHARED = Path(os.environ.get("SPINLAT_SHARED", "../shared")).resolve()
DATA = SHARED / "data"
EAM_FE = DATA / "eam" / "Fe_mm.eam.fs"
TB2J_FE = DATA / "tb2j" / "bccFe" / "exchange.out"


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def bcc_fe(reps=(3, 3, 3), a=2.8665, moment=2.2, rattle=0.05, seed=0, random_spins=True):
    """bcc Fe supercell with random spins and small random displacements."""
    rng = np.random.default_rng(seed)
    st = sl.State([[0, 0, 0], [a / 2, a / 2, a / 2]], [26, 26], cell=np.eye(3) * a, pbc=True,
                  moments=[moment, moment]).repeat(reps)
    n = len(st)
    spins = rng.normal(size=(n, 3)) if random_spins else st.spins
    return st.copy(positions=st.positions + rng.normal(0, rattle, (n, 3)), spins=spins)


def funcfl_writer():
    """``write_funcfl`` of tests/potentials/test_eam.py (DYNAMO funcfl files of analytic tables)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("_eam_tests", Path(__file__).parent / "potentials" / "test_eam.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.write_funcfl


def fd_forces(pot, st, atoms=(0, 1), eps=1e-5):
    """Central-difference −∂E/∂r for the given atoms, (len(atoms), 3) eV/Å."""
    out = np.zeros((len(atoms), 3))
    for a, i in enumerate(atoms):
        for k in range(3):
            e = []
            for sgn in (1, -1):
                p = st.positions.copy()
                p[i, k] += sgn * eps
                e.append(pot.compute(st.copy(positions=p), forces=False, magnetic_forces=False).energy)
            out[a, k] = -(e[0] - e[1]) / (2 * eps)
    return out


def fd_magnetic_forces(pot, st, atoms=(0, 1), eps=1e-6):
    """Central-difference −∂E/∂m (m = moment·spin, Cartesian) for the given atoms, eV/μB."""
    out = np.zeros((len(atoms), 3))
    m0 = st.magnetic_moments
    for a, i in enumerate(atoms):
        for k in range(3):
            e = []
            for sgn in (1, -1):
                m = m0.copy()
                m[i, k] += sgn * eps
                mom = np.linalg.norm(m, axis=1)
                e.append(pot.compute(st.copy(spins=m, moments=mom), forces=False, magnetic_forces=False).energy)
            out[a, k] = -(e[0] - e[1]) / (2 * eps)
    return out


def fd_stress(pot, st, eps=1e-6):
    """Central-difference (1/V) ∂E/∂ε, Voigt (6,), eV/Å³."""
    pairs = [(0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)]
    out = np.zeros(6)
    v = st.volume
    for a, (p, q) in enumerate(pairs):
        e = []
        for sgn in (1, -1):
            strain = np.eye(3)
            strain[p, q] += sgn * eps / (1 if p == q else 2)
            strain[q, p] += sgn * eps / (1 if p == q else 2) if p != q else 0
            s2 = st.copy(positions=st.positions @ strain.T, cell=st.cell @ strain.T)
            e.append(pot.compute(s2, forces=False, magnetic_forces=False).energy)
        out[a] = (e[0] - e[1]) / (2 * eps) / v
    return out


@pytest.fixture
def default_signal_handlers():
    """SIGINT and SIGTERM as an interactive Python has them (default_int_handler, SIG_DFL) for
    tests that send them to the test process: a test run started in the background of a
    non-interactive shell ignores SIGINT, which spinlat.interrupts.deferred rightly leaves alone."""
    import signal

    before = signal.signal(signal.SIGINT, signal.default_int_handler), signal.signal(signal.SIGTERM, signal.SIG_DFL)
    yield
    signal.signal(signal.SIGINT, before[0])
    signal.signal(signal.SIGTERM, before[1])


@pytest.fixture
def one_call_per_chunk(monkeypatch):
    """Every chunk of steps of a Simulation is one call of its integrator's ``run``, whatever the
    machine's speed: for tests whose integrator acts at its k-th call (a signal, a blow-up) and
    means the k-th chunk. A chunk runs in pieces of about ``SIGNAL_LATENCY_S`` (1 s) at the speed
    measured on the piece before; a first piece slowed by numba compiling (a clean clone) or by
    a loaded machine made the next chunk several calls, and the k-th call fell in an earlier
    chunk. The latency set here makes every chunk one piece (no measured speed is that slow)."""
    from spinlat import simulation

    monkeypatch.setattr(simulation, "SIGNAL_LATENCY_S", 1e9)


TB2J_FE = Path(__file__).parent.parent / "spinlat" / "data" / "bccFe_TB2J_exchange.out"


def assert_matches_tb2j(state, ham, rel, repeat=3, seeds=(0, 1, 2)):
    """``state``/``ham`` read from files written for the TB2J run TB2J_FE (UppASD, VAMPIRE):
    the unit cell of sl.io.read_tb2j and its energies of random spins on a supercell (``rel``)."""
    ref_state, ref = sl.io.read_tb2j(TB2J_FE)
    np.testing.assert_allclose(state.positions, ref_state.positions, rtol=0, atol=1e-12)
    np.testing.assert_allclose(state.cell, ref_state.cell, rtol=0, atol=1e-12)
    np.testing.assert_allclose(state.moments, ref_state.moments, rtol=1e-12)
    big = state.repeat(repeat)
    for seed in seeds:
        s = np.random.default_rng(seed).normal(size=(len(big), 3))
        s = big.copy(spins=s / np.linalg.norm(s, axis=1)[:, None])
        assert ham.compute(s).energy == pytest.approx(ref.compute(s).energy, rel=rel)
