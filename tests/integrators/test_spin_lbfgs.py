"""The compiled L-BFGS (orthogonal spin rotations): its evaluation against the NumPy reference of
the coupling table, and the whole minimisation against the Python L-BFGS loop of ``minimize``
(same minima, energies, iteration counts), batched starts against separate calls."""

import numpy as np
import pytest

import spinlat as sl
from spinlat.errors import InputError
from spinlat.integrators.fields import SpinFieldEngine
from spinlat.integrators.spin_lbfgs import oso_evaluate, reference_torques
from spinlat.minimization import _kernel_couplings, minimize_starts
from spinlat.potentials import CubicAnisotropy, Heisenberg, UniaxialAnisotropy, Zeeman
from spinlat.workflows import mn3pt as M


def _chiral_chain(n=24, seed=0):
    """A chain with exchange J, a DMI vector along z and a field: a tensor coupling table, an
    on-site form, a field, and one non-magnetic atom (moment 0)."""
    a = 2.5
    cell = np.diag([a, 20.0, 20.0])
    J, D = 0.01, 0.004
    tensor = J * np.eye(3) + np.array([[0, D, 0], [-D, 0, 0], [0, 0, 0]])  # s_iᵀ[D]s_j = D·(s_i × s_j)
    heis = Heisenberg(cell, [[0, 0, 0]], [26], [0], [0], [[1, 0, 0]], [tensor], pbc=[True, False, False])
    pot = heis + UniaxialAnisotropy(2e-4, [0, 0, 1]) + Zeeman([0.3, 0, 2.0])
    rng = np.random.default_rng(seed)
    moments = np.full(n, 2.0)
    moments[5] = 0.0
    st = sl.State(np.arange(n)[:, None] * [a, 0, 0], [26] * n, cell=np.diag([n * a, 20, 20]), pbc=[True, False, False],
                  spins=rng.normal(size=(n, 3)), moments=moments)
    return st, pot


def _mn3pt():
    st = M.mn3pt(reps=2)
    return st, M.mn3pt_potential(st)


@pytest.mark.parametrize("case", [_chiral_chain, _mn3pt])
def test_kernel_energy_and_torques_match_the_numpy_reference(case):
    st, pot = case()
    eng = SpinFieldEngine(pot)
    eng.update(st, pot.neighbor_list(st) if pot.cutoff > 0 else None)
    assert eng.complete
    rng = np.random.default_rng(1)
    spins = rng.normal(size=(len(st), 3))
    spins /= np.linalg.norm(spins, axis=1)[:, None]
    e_ref, tq_ref = reference_torques(eng.couplings, spins, st.moments)
    off = eng.couplings.offset
    for c in (eng.couplings.kernel_arrays(), _kernel_couplings(eng.couplings)):
        g, tq = np.empty((1, len(st), 3)), np.empty_like(spins)
        e, tmax = oso_evaluate(c, st.moments, spins, np.arange(len(st)), g, tq)
        e += 0.0 if off is None else off.sum()
        assert e == pytest.approx(e_ref, abs=1e-12 * max(1.0, abs(e_ref)))
        np.testing.assert_allclose(tq, tq_ref, atol=1e-13)
        assert tmax == pytest.approx(np.max(np.linalg.norm(tq_ref, axis=1)), rel=1e-12)
        assert np.all(tq[st.moments == 0] == 0)
    # the energy is the potential's own
    assert e_ref == pytest.approx(pot.compute(st.copy(spins=spins), forces=False).energy, abs=1e-12)


@pytest.mark.parametrize("case,seed", [(_chiral_chain, 0), (_chiral_chain, 7), (_mn3pt, 3), (_mn3pt, 4)])
def test_compiled_lbfgs_follows_the_python_loop(case, seed):
    st, pot = case()
    st = st.copy(spins=np.random.default_rng(seed).normal(size=(len(st), 3)))
    fast, rf = sl.minimize(st, pot, tmax=1e-8, return_result=True)
    slow, rs = sl.minimize(st, pot, tmax=1e-8, return_result=True, compiled=False)
    assert rf.converged and rs.converged, (rf.reason, rs.reason)
    assert rf.max_torque <= 1e-8 and rs.max_torque <= 1e-8
    # the same algorithm: the same path up to round-off in the last bits. The energies agree along
    # the whole common path; where the torque creeps across tmax on a flat stretch, round-off of
    # the order of the last bits decides the stopping iteration (seen: 190 vs 186 after 186 steps
    # equal to 1e-12 eV, with numba 0.68 / NumPy 2.4), so the counts agree to a few per cent.
    assert abs(rf.iterations - rs.iterations) <= max(2, 0.05 * rs.iterations)
    assert rf.energy == pytest.approx(rs.energy, abs=1e-10)
    # two states with torques ≤ tmax lie within 2·tmax/k of each other along the softest mode; in the
    # chain that is the uniaxial one, k ≈ 2K = 4e-4 eV/rad² (seen: 1.5e-5 apart at equal energies)
    np.testing.assert_allclose(fast.spins, slow.spins, atol=2 * 1e-8 / 4e-4)
    n = min(len(rf.history), len(rs.history))
    np.testing.assert_allclose(rf.history[:n], rs.history[:n], atol=1e-10)
    assert np.all(np.diff(rf.history) <= 1e-12 * np.abs(rf.history[1:]) + 1e-15)
    # the reported torque and energy are those of the returned state
    ev = pot.compute(fast)
    assert rf.energy == pytest.approx(ev.energy, abs=1e-12)
    assert rf.max_torque == pytest.approx(np.max(np.linalg.norm(sl.potentials.spin_torques(fast, ev), axis=1)),
                                          rel=1e-6)
    np.testing.assert_allclose(np.linalg.norm(fast.spins, axis=1), 1.0, atol=1e-14)
    assert np.array_equal(fast.positions, st.positions) and fast.positions is not st.positions


def test_batched_starts_equal_separate_calls():
    st, pot = _mn3pt()
    rng = np.random.default_rng(2)
    starts = rng.normal(size=(3, len(st), 3))
    starts /= np.linalg.norm(starts, axis=2)[..., None]
    batch = minimize_starts(st, pot, starts, tmax=1e-7)
    for s, r in zip(starts, batch):
        _, alone = sl.minimize(st.copy(spins=s), pot, tmax=1e-7, return_result=True)
        assert np.array_equal(r.state.spins, alone.state.spins)
        assert r.energy == alone.energy and r.iterations == alone.iterations
    # the Python path (a term without couplings) gives the same as separate calls too
    pot2 = pot + CubicAnisotropy(1e-5)
    batch2 = minimize_starts(st, pot2, starts[:2], tmax=1e-6, max_steps=300)
    for s, r in zip(starts, batch2):
        _, alone = sl.minimize(st.copy(spins=s), pot2, tmax=1e-6, max_steps=300, return_result=True)
        assert np.array_equal(r.state.spins, alone.state.spins)


def test_max_steps_and_bad_requests():
    st, pot = _chiral_chain()
    _, r = sl.minimize(st, pot, tmax=1e-12, max_steps=3, return_result=True)
    assert not r.converged and r.iterations == 3 and r.reason == "max_steps reached"
    with pytest.raises(InputError, match="compiled=True"):
        sl.minimize(st, pot + CubicAnisotropy(1e-5), compiled=True)
    with pytest.raises(InputError, match="compiled=True"):
        sl.minimize(st, pot, compiled=True, method="precession")
    with pytest.raises(InputError, match="compiled must be"):
        sl.minimize(st, pot, compiled="yes")
    with pytest.raises(InputError, match="starts must have shape"):
        minimize_starts(st, pot, st.spins)
    with pytest.raises(InputError, match="unit spin"):
        minimize_starts(st, pot, 2 * st.spins[None])
    with pytest.raises(InputError, match="unknown keyword 'tmx' \\(did you mean 'tmax'\\?\\)"):
        minimize_starts(st, pot, st.spins[None], tmx=1e-3)


@pytest.mark.parametrize("case", [_chiral_chain, _mn3pt])
def test_the_kernel_in_chunks_gives_the_one_call_result_bit_for_bit(case):
    """lbfgs_oso_steps carries the L-BFGS history, energy, torques and counters from one chunk of
    iterations to the next (a caller looks for Ctrl-C / SIGTERM between chunks): any budgets give
    exactly the arrays of one uninterrupted lbfgs_oso call, also over several starts."""
    from spinlat.integrators import spin_lbfgs as K
    from spinlat.minimization import _MAX_ROTATION

    st, pot = case()
    eng = SpinFieldEngine(pot)
    eng.update(st, pot.neighbor_list(st) if pot.cutoff > 0 else None)
    c = _kernel_couplings(eng.couplings)
    rng = np.random.default_rng(3)
    starts = rng.normal(size=(3, len(st), 3))
    starts /= np.linalg.norm(starts, axis=-1, keepdims=True)
    moments = np.ascontiguousarray(st.moments, dtype=np.float64)
    max_steps, memory = 400, 7

    def outputs():
        m = len(starts)
        return [starts.copy(), np.empty(m), np.empty(m, np.int64), np.empty(m, np.int64), np.empty(m),
                np.empty(m, np.int64), np.full((m, max_steps + 1), np.nan)]

    one = outputs()
    s1, e1, i1, c1, t1, n1, h1 = one
    K.lbfgs_oso(c, moments, -1.25, s1, 1e-9, max_steps, memory, _MAX_ROTATION, e1, i1, c1, t1, n1, h1)
    assert i1.max() > 30  # many chunks below
    for budgets in ([1], [0, 5, 2, 13], [37]):
        out = outputs()
        sp, e, it, code, tq, nev, hist = out
        carry = K.new_carry(len(st), memory)
        calls = 0
        while not K.lbfgs_oso_steps(c, moments, -1.25, sp, 1e-9, max_steps, memory, _MAX_ROTATION, e, it, code, tq,
                                    nev, hist, *carry, budgets[calls % len(budgets)]):
            calls += 1
        assert calls >= i1.sum() // max(budgets) - len(starts)  # the kernel paused that often
        for a, b in zip(one, out):
            np.testing.assert_array_equal(a, b)


def test_an_interrupted_compiled_minimisation_returns_the_state_reached(monkeypatch):
    """`sl.minimize` on linear couplings ran the compiled kernel to convergence, deaf to Ctrl-C /
    SIGTERM (longer than a batch system's grace time on a large system). Now the kernel runs in
    chunks; the interrupt's partial_result is the state reached, labelled "interrupted", bit for
    bit the state after the same number of iterations of an uninterrupted run."""
    import os
    import signal

    from spinlat import minimization
    from spinlat.integrators import spin_lbfgs as K
    from spinlat.interrupts import Terminated

    st, pot = _mn3pt()
    st = st.copy(spins=np.random.default_rng(5).normal(size=(len(st), 3)))
    monkeypatch.setattr(minimization, "_FIRST_CHUNK", 4 * len(st))  # chunks of 4 iterations, then of 1
    monkeypatch.setattr(minimization, "_CHUNK_S", 0.0)
    kernel, calls = K.lbfgs_oso_steps, []

    def signalling(*args):
        finished = kernel(*args)
        calls.append(args[-1])
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGTERM)
        return finished

    monkeypatch.setattr(K, "lbfgs_oso_steps", signalling)
    with pytest.raises(Terminated) as info:
        sl.minimize(st, pot, tmax=1e-9)
    assert calls == [4, 1, 1, 0]  # the last call: no iteration, the state reached
    part = info.value.partial_result
    assert part.reason == "interrupted" and not part.converged and part.iterations == 6
    monkeypatch.undo()
    ref, res = sl.minimize(st, pot, tmax=1e-9, max_steps=6, return_result=True)
    assert res.reason == "max_steps reached"
    np.testing.assert_array_equal(part.state.spins, ref.spins)
    assert part.energy == res.energy and part.max_torque == res.max_torque and part.history == res.history
    assert part.n_evaluations == res.n_evaluations
