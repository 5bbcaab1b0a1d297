"""Metropolis Monte Carlo: kernels, Langevin function, Binder-cumulant T_c, determinism, bad input."""

import numpy as np
import pytest

import spinlat as sl
from spinlat import units
from spinlat.errors import InputError
from spinlat.integrators import MonteCarlo
from spinlat.integrators.monte_carlo import (compress_couplings, cone_trials, coupling_table, isotropic_couplings,
                                            table_fields, table_fields_iso)
from spinlat.potentials import Potential, UniaxialAnisotropy, Zeeman

from _nn_heisenberg import NNHeisenberg, simple_cubic


def free_spins(n, moment=2.0, seed=1):
    rng = np.random.default_rng(seed)
    return sl.State(np.c_[np.arange(n) * 3.0, np.zeros(n), np.zeros(n)], [26] * n, moments=[moment] * n,
                    spins=rng.normal(size=(n, 3)), validate=False)


def test_cone_trials_uniform_on_cap(rng):
    n = 20000
    spins = np.tile([0.0, 0.6, 0.8], (n, 1))
    atoms = np.arange(n, dtype=np.int64)
    trial = np.empty((n, 3))
    cone_trials(spins, atoms, rng.random((n, 3)), np.cos(0.7), trial)
    c = trial @ spins[0]
    assert np.allclose(np.linalg.norm(trial, axis=1), 1.0)
    assert c.min() >= np.cos(0.7) - 1e-12
    # uniform on the cap: cos θ uniform in [cos θc, 1], mean transverse part zero
    assert abs(c.mean() - (1 + np.cos(0.7)) / 2) < 3e-3
    assert np.abs((trial - c[:, None] * spins[0]).mean(axis=0)).max() < 5e-3


def test_coupling_table_reproduces_fields():
    st = simple_cubic(4)
    pot = NNHeisenberg(2e-3, 2.6)
    nl = pot.neighbor_list(st)
    offs, nbr, jmat = coupling_table(st, [pot], nl, 2.6)
    assert np.all(np.diff(offs) == 6)
    assert np.allclose(jmat, 2e-3 * np.eye(3) / st.moments[0], atol=1e-15)


def test_compressed_table_reproduces_the_full_one(rng):
    offs = np.array([0, 2, 3, 5], dtype=np.int64)
    nbr = np.array([1, 2, 0, 0, 1])
    jmat = rng.normal(size=(3, 3, 3))[[0, 1, 0, 2, 1]]
    o, n, tidx, tens = compress_couplings(offs, nbr, jmat)
    assert len(tens) == 3 and tidx.dtype == np.int32 and n.dtype == np.int32
    assert np.array_equal(tens[tidx], jmat)
    spins = rng.normal(size=(3, 3))
    got = np.empty((3, 3))
    table_fields(spins, np.arange(3), o, n, tidx, tens, got)
    ref = np.array([sum(jmat[p] @ spins[nbr[p]] for p in range(offs[i], offs[i + 1])) for i in range(3)])
    assert np.allclose(got, ref, rtol=1e-14, atol=1e-15)


def test_isotropic_scalar_table_matches_the_tensor_table(rng):
    offs = np.array([0, 3, 4, 6], dtype=np.int64)
    nbr = np.array([1, 2, 1, 0, 0, 1])
    jmat = np.array([0.3, -0.1, 0.3, 0.2, 0.2, 0.05])[:, None, None] * np.eye(3)
    o, n, tidx, tens = compress_couplings(offs, nbr, jmat)
    jiso = isotropic_couplings(tens)
    assert jiso is not None and np.array_equal(jiso[tidx], jmat[:, 0, 0])
    spins = rng.normal(size=(3, 3))
    ref, got = np.empty((3, 3)), np.empty((3, 3))
    table_fields(spins, np.arange(3), o, n, tidx, tens, ref)
    table_fields_iso(spins, np.arange(3), o, n, tidx, jiso, got)
    assert np.allclose(got, ref, rtol=1e-14, atol=1e-15)
    # any off-diagonal element or unequal diagonal keeps the 3×3 kernel
    for a, b in [(0, 1), (2, 2)]:
        t = tens.copy()
        t[1, a, b] += 1e-3
        assert isotropic_couplings(t) is None


def test_heisenberg_scalar_path_is_exact_and_reproducible():
    # a Heisenberg term (pair table) on bcc Fe: isotropic, so Monte Carlo uses the scalar kernel
    st = sl.State([[0, 0, 0], [1.435] * 3], [26, 26], cell=2.87 * np.eye(3), pbc=True, moments=[2.2, 2.2])
    pot = sl.potentials.Heisenberg.from_neighbors(st, J=[0.02, 0.01, -0.002])
    st = st.repeat(3)
    mc = MonteCarlo(800.0, seed=2, overrelax=1)
    a = mc.run(st, pot, 20)
    assert mc._table is not None and len(mc._table[4]) > 0  # verified scalar table in use
    b = MonteCarlo(800.0, seed=2, overrelax=1).run(st, pot, 20)
    assert np.array_equal(a.spins, b.spins)
    # the scalar table's fields equal the potential's (H = h + (H·s)s, from its magnetic forces)
    from spinlat.integrators.monte_carlo import _table_fields

    atoms = np.arange(len(a), dtype=np.int64)
    H = np.zeros((len(a), 3))
    _table_fields(a.spins, atoms, mc._table, H)
    h = pot.compute(a).magnetic_forces
    perp = H - np.sum(H * a.spins, axis=1)[:, None] * a.spins
    assert np.allclose(perp, h, rtol=0, atol=1e-12 * np.abs(h).max())
    # energy: E = −½ Σ |m_i| H_i·s_i for a pure pair Hamiltonian
    e = -0.5 * np.sum(a.moments[:, None] * H * a.spins)
    assert e == pytest.approx(pot.compute(a).energy, rel=1e-12)


@pytest.mark.parametrize("with_anisotropy", [False, True])
def test_thermal_spins_follow_langevin_function(with_anisotropy):
    n, B, x = 2000, 10.0, 2.0
    T = units.MU_B * 2.0 * B / (x * units.K_B)
    pot = Zeeman([0, 0, B])
    if with_anisotropy:  # a zero anisotropy exercises the general on-site path with a second term
        pot = pot + UniaxialAnisotropy(0.0, [1, 0, 0])
    mc = MonteCarlo(T, seed=3)
    st = mc.run(free_spins(n), pot, 100)
    st = mc.run(st, pot, 1000)
    m = mc.magnetization[:, 2]
    langevin = 1 / np.tanh(x) - 1 / x
    blocks = m.reshape(20, -1).mean(axis=1)
    err = blocks.std(ddof=1) / np.sqrt(len(blocks))
    assert abs(m.mean() - langevin) < 4 * err + 1e-4, (m.mean(), langevin, err)
    assert 0.3 < mc.acceptance < 0.7


def test_local_energy_changes_are_exact_with_anisotropy():
    # the check probes single-spin moves against full energy differences
    st = simple_cubic(3)
    pot = NNHeisenberg(1e-3, 2.6) + Zeeman([0, 0, 3.0]) + UniaxialAnisotropy(2e-4, [1, 1, 0])
    mc = MonteCarlo(5.0, seed=0, overrelax=1)
    mc.check(st, pot)
    # zero temperature with over-relaxation never raises the energy
    cold = MonteCarlo(0.0, seed=0, overrelax=1)
    e0 = pot.compute(st).energy
    e = [e0]
    s = st
    for _ in range(5):
        s = cold.run(s, pot, 2)
        e.append(pot.compute(s).energy)
    assert np.all(np.diff(e) <= 1e-12)
    assert np.abs(np.linalg.norm(s.spins, axis=1) - 1).max() < 1e-12


def test_same_seed_same_result():
    st = simple_cubic(4)
    pot = NNHeisenberg(1e-3, 2.6)
    a = MonteCarlo(10.0, seed=4, overrelax=1).run(st, pot, 30)
    mc = MonteCarlo(10.0, seed=4, overrelax=1)
    b = mc.run(st, pot, 30)
    c = MonteCarlo(10.0, seed=5, overrelax=1).run(st, pot, 30)
    assert np.array_equal(a.spins, b.spins)
    assert not np.array_equal(a.spins, c.spins)
    pot2 = NNHeisenberg(1e-3, 2.6) + Zeeman([0, 0, 0.5])
    a = MonteCarlo(10.0, seed=4).run(st, pot2, 10)
    b = MonteCarlo(10.0, seed=4).run(st, pot2, 10)
    assert np.array_equal(a.spins, b.spins)


class _Biquadratic(Potential):
    """E = −B Σ_pairs (s_i·s_j)²: not linear in each spin."""

    cutoff = 2.6

    def _evaluate(self, state, neighbors, forces, magnetic_forces, stress):
        from spinlat.potentials.base import Evaluation, magnetic_forces_from_gradients

        if neighbors is None:
            neighbors = self.neighbor_list(state)
        r = np.linalg.norm(neighbors.vectors(state.positions), axis=1)
        k = neighbors.half[r[neighbors.half] < self.cutoff]
        i, j = neighbors.i[k], neighbors.j[k]
        d = np.sum(state.spins[i] * state.spins[j], axis=1)
        g = np.zeros((len(state), 3))
        np.add.at(g, i, -2e-3 * d[:, None] * state.spins[j])
        np.add.at(g, j, -2e-3 * d[:, None] * state.spins[i])
        n = len(state)
        return Evaluation(float(-1e-3 * np.sum(d**2)), np.zeros((n, 3)),
                          magnetic_forces_from_gradients(state, grad_s=g), None, np.zeros(n))


class _NoMagnetic(Potential):
    provides_magnetic_forces = False


def test_bad_input():
    with pytest.raises(InputError, match="temperature"):
        MonteCarlo(-1.0)
    with pytest.raises(InputError, match="cone"):
        MonteCarlo(1.0, cone=4.0)
    with pytest.raises(InputError, match="overrelax"):
        MonteCarlo(1.0, overrelax=-1)
    st = simple_cubic(3)
    with pytest.raises(InputError, match="linear in each spin"):
        MonteCarlo(10.0).run(st, _Biquadratic(), 1)
    with pytest.raises(InputError, match="magnetic forces"):
        MonteCarlo(10.0).run(st, _NoMagnetic(), 1)
    with pytest.raises(InputError, match="no magnetic atoms"):
        MonteCarlo(10.0).run(sl.State([[0, 0, 0]], [26]), Zeeman([0, 0, 1.0]), 1)


def binder_sweep(sizes, ratios, sweeps, J=1e-3, seed=0, overrelax=2, therm=500):
    """U4 and |m| of the sc nearest-neighbour Heisenberg ferromagnet at T = ratio · 1.443 J/k_B."""
    pot = NNHeisenberg(J, 2.6)
    tc = 1.443 * J / units.K_B
    out = {}
    for L in sizes:
        for r in ratios:
            mc = MonteCarlo(r * tc, seed=seed, overrelax=overrelax)
            st = mc.run(simple_cubic(L, seed=seed), pot, therm)
            mc.adapt = False  # fixed proposal while measuring: exact detailed balance
            mc.run(st, pot, sweeps)
            m2 = np.sum(mc.magnetization**2, axis=1)
            out[L, r] = (1 - np.mean(m2**2) / (3 * np.mean(m2) ** 2), np.mean(np.sqrt(m2)))
    return out


def crossing_temperature(u, small, large, ratios):
    """T/T_c where U4(small) and U4(large) cross: root of the difference fitted by a polynomial
    of degree len(ratios) − 1 (the difference is convex, a straight line over a wide range
    biases the root low)."""
    r = np.asarray(ratios, float)
    d = np.array([u[small, x][0] - u[large, x][0] for x in ratios])
    roots = np.roots(np.polyfit(r - 1, d, len(r) - 1)) + 1
    roots = roots[np.isreal(roots)].real
    roots = roots[(roots > r.min() - 0.02) & (roots < r.max() + 0.02)]
    return float(roots[np.argmin(np.abs(roots - 1))]) if len(roots) else float("nan")


@pytest.mark.slow
def test_binder_crossing_sc_heisenberg():
    ratios = (0.98, 1.0, 1.02)
    u = binder_sweep((8, 12), ratios, sweeps=30000)
    # ordered side: the larger lattice has the larger U4; disordered side: the smaller
    assert u[12, 0.98][0] > u[8, 0.98][0] and u[12, 1.02][0] < u[8, 1.02][0]
    t = crossing_temperature(u, 8, 12, ratios)
    assert abs(t - 1) < 0.01, t


def test_uniform_blocks_do_not_change_the_stream():
    """The compiled path draws its uniforms in blocks of bounded size: any block size gives the
    same sweeps bit for bit (NumPy fills a (k, M, w) draw in stream order)."""
    unit = sl.State([[0, 0, 0]], [26], cell=np.eye(3) * 2.5, pbc=True, moments=[2.0])
    st = unit.repeat((4, 4, 4))
    pot = sl.potentials.Heisenberg.from_neighbors(unit, J=[0.01]) + sl.potentials.UniaxialAnisotropy(1e-4, [0, 0, 1])
    runs = []
    for per_block in (MonteCarlo._UNIFORMS_PER_BLOCK, 64 * 3 * 3, 1):
        mc = MonteCarlo(300.0, seed=5, overrelax=1)
        mc._UNIFORMS_PER_BLOCK = per_block
        runs.append((mc.run(st, pot, 20).spins, mc.magnetization.copy(), mc.cone))
    for spins, mag, cone in runs[1:]:
        assert np.array_equal(spins, runs[0][0]) and np.array_equal(mag, runs[0][1]) and cone == runs[0][2]


def _sc_table(L, kind, rng, n_types=3):
    """Compressed table (offs, nbr, tidx, tens, jiso) of the periodic L³ simple-cubic lattice,
    six neighbours each, with ``n_types`` matrices of ``kind`` (iso, dmi or tensor)."""
    idx = np.arange(L**3).reshape(L, L, L)
    nbrs = [np.roll(idx, s, axis=a).ravel() for a in range(3) for s in (1, -1)]
    nbr = np.stack(nbrs, axis=1).ravel().astype(np.int64)
    offs = np.arange(0, 6 * L**3 + 1, 6, dtype=np.int64)
    tidx = rng.integers(0, n_types, len(nbr)).astype(np.int64)
    j = 0.01 * (1 + rng.random(n_types))
    tens = j[:, None, None] * np.eye(3)
    if kind == "dmi":
        d = 0.003 * rng.normal(size=(n_types, 3))
        tens = tens + np.cross(np.eye(3)[None, :, :], d[:, None, :])  # J·1 + [D]_×
    elif kind == "tensor":
        tens = tens + 0.002 * rng.normal(size=(n_types, 3, 3))
    jiso = j if kind == "iso" else np.zeros(0)
    return offs, nbr, tidx, np.ascontiguousarray(tens), jiso


@pytest.mark.parametrize("kind, field, onsite", [
    ("iso", "none", "none"), ("iso", "none", "uniform"), ("iso", "uniform", "per_atom"), ("iso", "per_atom", "none"),
    ("dmi", "none", "none"), ("dmi", "per_atom", "uniform"), ("tensor", "uniform", "none"),
    ("tensor", "per_atom", "per_atom")])
def test_specialised_sweep_kernels_give_the_general_kernels_bits(kind, field, onsite):
    """Every compiled variant of the Metropolis sweep (pair-table kind × field × on-site form)
    gives the same spins, magnetisation, cone and acceptance, bit for bit, as the general kernel
    that decides at run time (the one spinlat had before the variants)."""
    from spinlat.integrators import monte_carlo as mc

    rng = np.random.default_rng(11)
    L = 4
    n = L**3
    table = _sc_table(L, kind, rng)
    if kind == "dmi":
        assert mc.dmi_couplings(table[3]) is not None
    b = {"none": np.zeros((0, 3)), "uniform": np.tile([0.01, -0.02, 0.03], (n, 1)),
         "per_atom": 0.02 * rng.normal(size=(n, 3))}[field]
    a = rng.normal(size=(n, 3, 3)) * 1e-3
    A = {"none": np.zeros((0, 3, 3)), "uniform": np.tile(2e-3 * np.outer([0, 0.6, 0.8], [0, 0.6, 0.8]), (n, 1, 1)),
         "per_atom": a + a.transpose(0, 2, 1)}[onsite]
    parity = np.indices((L, L, L)).sum(axis=0).ravel() % 2
    flat = np.concatenate([np.flatnonzero(parity == 0), np.flatnonzero(parity == 1)]).astype(np.int64)
    ptr = np.array([0, n // 2, n], dtype=np.int64)
    moments = 2.0 + rng.random(n)
    s0 = rng.normal(size=(n, 3))
    s0 /= np.linalg.norm(s0, axis=1)[:, None]
    overrelax = 2
    u = rng.random((6, n, 3 + overrelax))
    beta = 1.0 / (units.K_B * 150.0)
    out = []
    for specialise in (False, True):
        spins, mag = s0.copy(), np.zeros((6, 3))
        cone, acc = mc.sweep_block(spins, moments, flat, ptr, table, b, A, u, beta, 0.8, 0.5, True, overrelax, mag,
                                   specialise=specialise)
        out.append((spins, mag, cone, acc))
    (s1, m1, c1, a1), (s2, m2, c2, a2) = out
    assert np.array_equal(s1.view(np.int64), s2.view(np.int64)) and np.array_equal(m1, m2)
    assert c1 == c2 and a1 == a2 and 0 < a1 < 1
    assert not np.array_equal(s1, s0)


def test_integrator_takes_the_specialised_variant():
    """Heisenberg + uniaxial anisotropy (the Spirit benchmark's Hamiltonian) runs the isotropic
    variant with one on-site form for all atoms; the general kernel gives the same bits."""
    from spinlat.integrators import monte_carlo as mc

    unit = sl.State([[0, 0, 0]], [26], cell=np.eye(3) * 2.5, pbc=True, moments=[2.0])
    st = unit.repeat((4, 4, 4))
    pot = sl.potentials.Heisenberg.from_neighbors(unit, J=[0.01]) + UniaxialAnisotropy(1e-4, [0, 0, 1])
    fast = MonteCarlo(300.0, seed=5, overrelax=1)
    a = fast.run(st, pot, 15)
    kernel, arrays = fast._model.plan
    assert kernel is mc._sweep_variant(mc._ISO, mc._ABSENT, mc._UNIFORM) and arrays[7].shape == (1, 3, 3)
    slow = MonteCarlo(300.0, seed=5, overrelax=1)
    slow.check(st, pot)
    model = slow._prepare(st, pot)
    model.plan = mc.sweep_plan(model.table, model.field, model.onsite, specialise=False)
    b = slow.run(st, pot, 15)
    assert np.array_equal(a.spins, b.spins) and np.array_equal(fast.magnetization, slow.magnetization)
    assert fast.cone == slow.cone and fast.acceptance == slow.acceptance


def test_cell_smaller_than_the_coupling_range_couples_spins_to_their_own_images():
    """A 1-atom cell (or any cell smaller than twice the exchange range) couples each spin to its
    own periodic images: −s_iᵀ J s_i is quadratic in s_i, an on-site form. Monte Carlo used to
    take it as a field of the old spin and refused the potential ("local energy change ... but the
    full energy changes by ..."); now its ΔE are exact: the run passes the check, a zero-
    temperature run never raises the energy, and the anisotropic self-image exchange
    diag(1, 1, 3) meV orders the spin along z like UniaxialAnisotropy(2 meV, z), with the same
    random stream and the same accepted moves."""
    from spinlat.potentials import Heisenberg

    unit = sl.State([[0, 0, 0]], [26], cell=np.eye(3) * 2.5, pbc=True, moments=[1.0], spins=[[1, 0, 0.1]])
    iso = Heisenberg.from_neighbors(unit, J=[1e-3])  # six images: a constant energy
    MonteCarlo(10.0, seed=1).run(unit, iso, 5)
    J = np.diag([1e-3, 1e-3, 3e-3])[None]
    aniso = Heisenberg(np.eye(3) * 2.5, [[0, 0, 0]], [26], [0], [0], [[1, 0, 0]], J)
    # two atoms along y, coupled to each other along y and to their own images along x
    mixed = Heisenberg(np.eye(3) * 2.5, [[0, 0, 0]], [26], [0, 0], [0, 0], [[1, 0, 0], [0, 1, 0]],
                       np.concatenate([J, 1e-3 * np.eye(3)[None]]))
    s = unit.repeat((1, 2, 1)).copy(spins=[[1, 0, 0.1], [0, 1, 0.2]])
    e = [mixed.compute(s).energy]
    for _ in range(5):
        s = MonteCarlo(0.0, seed=3).run(s, mixed, 2)
        e.append(mixed.compute(s).energy)
    assert np.all(np.diff(e) <= 1e-15)
    a = MonteCarlo(2.0, seed=7).run(unit, aniso, 200)
    b = MonteCarlo(2.0, seed=7).run(unit, UniaxialAnisotropy(2e-3, [0, 0, 1]), 200)
    assert np.allclose(a.spins, b.spins, atol=1e-9)
    assert abs(a.spins[0, 2]) > 0.9


def test_public_heisenberg_sc_energy_follows_the_high_temperature_series():
    """The J convention of ``Heisenberg.from_neighbors`` (E = −J Σ_<ij> s_i·s_j, each pair once,
    DESIGN.md; the convention of Chen, Ferrenberg & Landau's T_c = 1.443 J/k_B): at K = J/k_BT = 0.2
    the sc ferromagnet's energy per spin is −3J ⟨s_i·s_j⟩ with ⟨s_i·s_j⟩ = u + 4u³ + O(u⁵),
    u = coth K − 1/K (one bond, then the four plaquettes through it; O(u⁵) ≈ 0.1 % here). A pair
    counted twice would double E/N. Tolerance 4σ (blocked error of the sampled series)."""
    from spinlat.potentials import Heisenberg
    from spinlat.statistics import average

    J, K = 1e-3, 0.2
    st = simple_cubic(6, moment=2.0, seed=1)
    pot = Heisenberg.from_neighbors(st, J=[J])
    mc = MonteCarlo(J / (K * units.K_B), seed=4)
    st = mc.run(st, pot, 300)
    mc.adapt = False
    e = []
    for _ in range(1000):
        st = mc.run(st, pot, 10)
        e.append(pot.compute(st, forces=False, magnetic_forces=False).energy / (len(st) * J))
    est = average(e)
    u = 1 / np.tanh(K) - 1 / K
    assert est.reliable and est.error < 0.02 * 3 * u
    assert abs(est.value + 3 * (u + 4 * u**3)) < 4 * est.error, (est, -3 * (u + 4 * u**3))


@pytest.mark.parametrize("name, value, message", [
    ("temperature", -5.0, "temperature: expected a non-negative number"),
    ("temperature", np.nan, "temperature"),
    ("overrelax", -1, "overrelax"),
    ("target_acceptance", 1.5, "target_acceptance must lie in"),
    ("cone", 0.0, "cone"),
])
def test_parameters_changed_after_construction_are_checked_at_run(name, value, message):
    """``mc.temperature = T`` between runs is taken live (a Curie sweep by hand); a negative T
    sampled exp(+ΔE/k_B|T|) without a word (spins turned against the field). The run now checks
    the parameters as the constructor does."""
    st = sl.State([[0, 0, 0], [5.0, 0, 0]], ["Fe", "Fe"], moments=[2.0, 2.0])
    mc = MonteCarlo(1.0, seed=1)
    setattr(mc, name, value)
    with pytest.raises(InputError, match=message):
        mc.run(st, Zeeman([0, 0, 1.0]), 5)
