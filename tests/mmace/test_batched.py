"""Batched replicas: ``compute_many`` evaluates K configurations in one mMACE model call and
equals K single evaluations to round-off (float64, 1e-12 relative): replicas of different sizes,
species, cells (bulk, triclinic, slab, cluster, a lone atom) and moments (all zero, some zero),
with and without the caller's neighbour lists, alone and inside a SumPotential with analytic
terms; every other potential's default loops over its own kernels; GNEB evaluates its moving
images in one model call."""

import numpy as np
import pytest

from conftest import bcc_fe

torch = pytest.importorskip("torch")
pytest.importorskip("mace")

import spinlat as sl  # noqa: E402
from spinlat.errors import InputError, UnknownElementError  # noqa: E402
from spinlat.neighbors import NeighborList  # noqa: E402
from spinlat.potentials import BetheSlaterExchange, MagneticMACE, Potential, UniaxialAnisotropy, Zeeman  # noqa: E402
from spinlat.potentials.mmace import potential as mmace_potential  # noqa: E402
from spinlat.potentials.mmace.potential import edge_groups  # noqa: E402

from _tiny import TINY, _one_thread  # noqa: E402,F401  (autouse fixture)

FIELDS = ("forces", "magnetic_forces", "energies")


def fe_ni_bulk(reps, seed, cell_shear=0.0):
    """bcc Fe–Ni supercell, displaced, ~30 % Ni, random spins and moment lengths."""
    rng = np.random.default_rng(seed)
    st = bcc_fe(reps, seed=seed)
    n = len(st)
    numbers = np.where(rng.random(n) < 0.3, 28, 26)
    moments = np.where(numbers == 28, 0.6, 2.2) * rng.uniform(0.7, 1.3, n)
    cell = st.cell.copy()
    cell[1, 0] += cell_shear * cell[1, 1]
    frac = np.linalg.solve(st.cell.T, st.positions.T).T
    return sl.State(frac @ cell, numbers, cell=cell, pbc=True, spins=st.spins, moments=moments)


def replicas():
    """Seven replicas of 1–16 atoms covering the kinds of systems a batch must keep apart."""
    rng = np.random.default_rng(7)
    bulk = fe_ni_bulk((2, 2, 2), seed=1)                                        # 16 atoms, periodic
    tric = fe_ni_bulk((1, 2, 2), seed=2, cell_shear=0.3)                        # 8 atoms, triclinic cell
    slab = fe_ni_bulk((2, 2, 1), seed=3)
    slab = slab.copy(pbc=[True, True, False])                                   # 8 atoms, open along z
    cluster_pos = np.array([[0, 0, 0], [2.4, 0, 0], [0, 2.4, 0], [0, 0, 2.4], [1.3, 1.3, 1.3]]) \
        + rng.normal(0, 0.05, (5, 3))
    cluster = sl.State(cluster_pos, [26, 28, 26, 26, 28], spins=rng.normal(size=(5, 3)),
                       moments=[2.1, 0.6, 2.3, 0.0, 0.5])                       # open, one moment zero
    zero = fe_ni_bulk((2, 1, 1), seed=4)
    zero = zero.copy(moments=np.zeros(len(zero)))                               # 4 atoms, all moments zero
    lone = sl.State([[0.0, 0.0, 0.0]], [26], spins=[[0, 0, 1]], moments=[2.2])  # no edges at all
    pair = sl.State([[0, 0, 0], [2.3, 0.2, 0.1]], [28, 26], spins=[[1, 0, 0], [0, 1, 1]], moments=[0.6, 2.0])
    return [bulk, tric, slab, cluster, zero, lone, pair]


@pytest.fixture(scope="module", params=[True, False], ids=["soc", "nosoc"])
def pot(request):
    return MagneticMACE.create(["Fe", "Ni"], soc=request.param, seed=3, m_max={"Fe": 3.0, "Ni": 1.0}, **TINY)


def assert_same(ev, one, stress=False, tol=1e-12):
    """Equal to round-off: energy relative, arrays relative to their largest entry."""
    assert abs(ev.energy - one.energy) <= tol * max(1.0, abs(one.energy))
    for key in FIELDS + (("stress",) if stress else ()):
        a, b = getattr(ev, key), getattr(one, key)
        assert a.shape == b.shape, key
        np.testing.assert_allclose(a, b, rtol=0, atol=tol * max(1.0, np.abs(b).max()), err_msg=key)


def count_calls(monkeypatch, pot):
    """Counters of model calls and of graph builds of ``pot``."""
    calls = {"model": 0, "graphs": 0}
    forward, build = pot.model.forward, mmace_potential.build_batch

    def counted_forward(*a, **k):
        calls["model"] += 1
        return forward(*a, **k)

    def counted_build(*a, **k):
        calls["graphs"] += 1
        return build(*a, **k)

    monkeypatch.setattr(pot.model, "forward", counted_forward)
    monkeypatch.setattr(mmace_potential, "build_batch", counted_build)
    return calls


def test_many_replicas_equal_single_evaluations(pot, monkeypatch):
    states = replicas()
    singles = [pot.compute(st) for st in states]
    monkeypatch.setattr(pot, "batch_edges", None)
    calls = count_calls(monkeypatch, pot)
    evs = pot.compute_many(states)
    assert calls == {"model": 1, "graphs": 1}                     # one graph, one model call for all seven
    assert len(evs) == len(states)
    for st, ev, one in zip(states, evs, singles):
        assert ev.forces.shape == (len(st), 3) and ev.energies.shape == (len(st),) and ev.stress is None
        assert_same(ev, one)
        assert abs(ev.energies.sum() - ev.energy) <= 1e-12 * max(1.0, abs(ev.energy))
    # the test has teeth: forces and magnetic forces are far from zero
    assert all(np.abs(ev.forces).max() > 1e-4 for ev, st in zip(evs, states) if len(st) > 1)
    assert np.abs(evs[0].magnetic_forces).max() > 1e-4 and np.abs(evs[3].magnetic_forces).max() > 1e-4
    assert np.all(np.isfinite(evs[4].magnetic_forces))
    np.testing.assert_array_equal(evs[5].forces, 0.0)             # a lone atom in vacuum feels no force
    # no mixing of graphs: the reversed order gives the reversed results
    back = pot.compute_many(states[::-1])
    for ev, one in zip(back[::-1], singles):
        assert_same(ev, one)


def test_caller_neighbor_lists_are_used(pot, monkeypatch):
    """neighbors=[NeighborList or None per replica]: the given lists (larger cutoff, skin) give the
    same results; a list that does not reach the cutoff, or the wrong count, is refused."""
    states = replicas()[:4]
    lists = []
    for st in states[:3]:
        nl = NeighborList(pot.cutoff + 0.7, 0.3)
        nl.update(st)
        lists.append(nl)
    lists.append(None)
    monkeypatch.setattr(pot, "batch_edges", None)
    evs = pot.compute_many(states, lists, stress=False)
    for st, ev in zip(states, evs):
        assert_same(ev, pot.compute(st))
    short = NeighborList(pot.cutoff - 1.0, 0.3)
    short.update(states[0])
    with pytest.raises(InputError, match=r"neighbors\[0\].*cutoff"):
        pot.compute_many(states, [short, None, None, None])
    with pytest.raises(InputError, match="one NeighborList"):
        pot.compute_many(states, lists[:2])
    with pytest.raises(InputError, match=r"neighbors\[1\] must be a spinlat NeighborList"):
        pot.compute_many(states[:2], [None, True])


def test_stress_of_periodic_replicas_and_refusal_of_open_ones(pot):
    states = [fe_ni_bulk((2, 2, 2), seed=5), fe_ni_bulk((1, 2, 2), seed=6, cell_shear=0.2),
              fe_ni_bulk((2, 1, 1), seed=8)]
    evs = pot.compute_many(states, stress=True)
    for st, ev in zip(states, evs):
        one = pot.compute(st, stress=True)
        assert ev.stress.shape == (6,) and np.abs(ev.stress).max() > 1e-5
        assert_same(ev, one, stress=True)
    with pytest.raises(InputError, match=r"states\[1\].*periodic"):
        pot.compute_many([states[0], replicas()[3]], stress=True)


def test_output_selection_and_trivial_inputs(pot):
    states = replicas()[:3]
    full = pot.compute_many(states)
    none = pot.compute_many(states, forces=False, magnetic_forces=False)
    only_h = pot.compute_many(iter(states), forces=False)         # any iterable
    for a, b, c in zip(full, none, only_h):
        assert b.forces is None and b.magnetic_forces is None and b.stress is None
        assert c.forces is None
        assert abs(a.energy - b.energy) <= 1e-12 * abs(a.energy)
        np.testing.assert_allclose(c.magnetic_forces, a.magnetic_forces, rtol=0, atol=1e-12)
    assert pot.compute_many([]) == []
    assert_same(pot.compute_many([states[0]])[0], pot.compute(states[0]))
    # the former name stays
    for a, b in zip(pot.compute_batch(states), full):
        assert_same(a, b)


def test_edge_budget_groups_replicas_in_order(pot, monkeypatch):
    states = replicas()
    singles = [pot.compute(st) for st in states]
    calls = count_calls(monkeypatch, pot)
    monkeypatch.setattr(pot, "batch_edges", 1)                   # every replica its own call
    for ev, one in zip(pot.compute_many(states), singles):
        assert_same(ev, one)
    assert calls["model"] == calls["graphs"] == len(states)
    calls.update(model=0, graphs=0)
    monkeypatch.setattr(pot, "batch_edges", 400)                 # a few calls of ≤ 400 edges (or one big replica)
    evs = pot.compute_many(states)
    n_edges = [len(mmace_potential.edges(st.positions, st.cell, st.pbc, pot.cutoff)[0]) for st in states]
    groups = edge_groups(n_edges, 400)
    assert 1 < calls["model"] == calls["graphs"] == len(groups) < len(states)
    for ev, one in zip(evs, singles):
        assert_same(ev, one)
    monkeypatch.setattr(pot, "batch_edges", 0)
    with pytest.raises(InputError, match="batch_edges"):
        pot.compute_many(states)


def testedge_groups():
    assert edge_groups([5, 5, 20, 1, 0, 3], 10) == [[0, 1], [2], [3, 4, 5]]
    assert edge_groups([5, 5, 20], None) == [[0, 1, 2]]
    assert edge_groups([], 10) == [] and edge_groups([], None) == []
    assert edge_groups([0, 0], 1) == [[0, 1]]
    for bad in (0, -3, 2.5, True, "10"):
        with pytest.raises(InputError, match="batch_edges"):
            edge_groups([1], bad)


def test_bad_replicas_are_named(pot):
    good = replicas()[0]
    co = sl.State([[0, 0, 0], [2.5, 0, 0]], [26, 27], moments=[2.2, 1.6])
    with pytest.raises(UnknownElementError, match=r"states\[2\].*Co"):
        pot.compute_many([good, good, co])
    with pytest.raises(InputError, match=r"states\[1\] is a Atoms"):
        pot.compute_many([good, good.to_ase()])


def analytic_terms():
    return [BetheSlaterExchange(3.4, 0.02726, 0.2171, 1.841), Zeeman([0.1, 0.0, 1.0]),
            UniaxialAnisotropy(2e-3, [0.0, 0.3, 1.0])]


def test_sum_of_mmace_and_analytic_terms(pot, monkeypatch):
    """mMACE + exchange (with its own cutoff) + Zeeman + anisotropy: one model call for all
    replicas, the analytic terms replica by replica on the sum's neighbour list; equal to single
    sums, with and without stress, with and without the caller's lists."""
    exchange, zeeman, aniso = analytic_terms()
    total = exchange + pot + zeeman + aniso
    assert total.batches_replicas and not (exchange + zeeman).batches_replicas
    states = replicas()
    singles = [total.compute(st) for st in states]
    monkeypatch.setattr(pot, "batch_edges", None)
    calls = count_calls(monkeypatch, pot)
    evs = total.compute_many(states)
    assert calls["model"] == 1
    for st, ev, one in zip(states, evs, singles):
        assert_same(ev, one)
        # the analytic part is really there: the sum differs from mMACE alone
        assert abs(ev.energy - pot.compute(st).energy) > 1e-6 or not np.any(st.moments > 0)
    periodic = [fe_ni_bulk((2, 2, 2), seed=11), fe_ni_bulk((1, 2, 2), seed=12, cell_shear=0.1)]
    lists = []
    for st in periodic:
        nl = NeighborList(total.cutoff, 0.3)
        nl.update(st)
        lists.append(nl)
    for ev, st in zip(total.compute_many(periodic, lists, stress=True), periodic):
        assert_same(ev, total.compute(st, stress=True), stress=True)


def test_default_of_other_potentials_loops_over_their_kernels():
    """Potential.compute_many: analytic potentials and their sums equal compute bit for bit."""
    exchange, zeeman, aniso = analytic_terms()
    for p in (exchange + zeeman + aniso, zeeman, exchange):
        assert not p.batches_replicas and type(p)._evaluate_many in (Potential._evaluate_many,
                                                                     sl.potentials.SumPotential._evaluate_many)
        states = [bcc_fe((2, 2, 2), seed=1), bcc_fe((3, 2, 2), seed=2), bcc_fe((2, 2, 2), seed=3)]
        evs = p.compute_many(states, stress=True)
        for st, ev in zip(states, evs):
            one = p.compute(st, stress=True)
            assert ev.energy == one.energy
            for key in ("forces", "magnetic_forces", "stress", "energies"):
                np.testing.assert_array_equal(getattr(ev, key), getattr(one, key))
    open_state = sl.State([[0, 0, 0], [2.4, 0, 0]], [26, 26], moments=[2.2, 2.2])
    with pytest.raises(InputError, match=r"states\[1\].*periodic"):
        exchange.compute_many([states[0], open_state], stress=True)


class _OneByOne(MagneticMACE):
    """The same model evaluated image by image (the base class's compute_many)."""

    batches_replicas = False
    _evaluate_many = Potential._evaluate_many


@pytest.mark.parametrize("dofs", [dict(magnitudes=True), dict(positions=True)], ids=["magnitudes", "positions"])
def test_gneb_evaluates_moving_images_in_one_model_call(monkeypatch, dofs):
    model = MagneticMACE.create(["Fe"], soc=True, seed=0, **TINY)
    a = bcc_fe((2, 1, 1), seed=2, random_spins=False)
    spins = a.spins.copy()
    spins[1] = [0.3, 0.0, -1.0]
    spins[3] = [1.0, 0.2, 0.0]
    b = a.copy(spins=spins)
    kw = dict(images=6, tol=1e-8, max_iterations=4, climbing=False, **dofs)
    calls = count_calls(monkeypatch, model)
    res = sl.gneb(a, b, model, **kw)
    assert res.iterations == 4 and not res.converged
    assert calls["model"] == calls["graphs"] == 1 + 4             # the band once, then the 4 inner images per step
    assert res.n_evaluations == 6 + 4 * 4
    monkeypatch.undo()
    ref = sl.gneb(a, b, _OneByOne(model.model, model.hyperparameters), **kw)
    np.testing.assert_allclose(res.energies, ref.energies, rtol=0, atol=1e-10 * np.abs(ref.energies).max())
    for s1, s2 in zip(res.states, ref.states):
        np.testing.assert_allclose(s1.spins, s2.spins, rtol=0, atol=1e-10)
        np.testing.assert_allclose(s1.moments, s2.moments, rtol=0, atol=1e-10)
        np.testing.assert_allclose(s1.positions, s2.positions, rtol=0, atol=1e-10)
    S0, R0, MU0 = sl.transitions.geodesic_path(a, b, 6, spins=True, **dofs)
    assert np.abs(res.states[2].spins - S0[2]).max() > 1e-4      # the band did move
