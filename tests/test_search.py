"""Ground-state search: merging of equivalent minima, ranking, parallel and Dask execution, sweeps."""

import functools
import math
import time

import numpy as np
import pytest

import spinlat as sl
from conftest import bcc_fe
from spinlat.errors import InputError
from spinlat.potentials import BetheSlaterExchange, UniaxialAnisotropy
from spinlat.search import _translations, ground_state, same_configuration
from spinlat.workflows import mn3pt as M

EXCHANGE = (3.4, 0.02726, 0.2171, 1.841)  # bcc Fe, LAMMPS spin/exchange parameters (ferromagnetic)


def _fe():
    return bcc_fe((2, 2, 2), rattle=0.0, seed=4)


def test_isotropic_exchange_minima_merge_by_global_spin_rotation():
    st = _fe()
    pot = BetheSlaterExchange(*EXCHANGE)
    assert pot.spin_rotation_invariant and (pot + pot).spin_rotation_invariant
    minima = ground_state(st, pot, starts=5, seed=1, workers=1, tmax=1e-8)
    assert len(minima) == 1 and minima[0].count == 5 and minima[0].starts == (0, 1, 2, 3, 4)
    # the ferromagnet, pointing wherever its start took it
    s = minima[0].state.spins
    assert np.min(s @ s[0]) > 1 - 1e-8
    # without the rotation merging, the same five minima are five different directions
    apart = ground_state(st, pot, starts=5, seed=1, workers=1, tmax=1e-8, spin_rotations=False)
    assert len(apart) == 5
    assert max(m.energy for m in apart) - min(m.energy for m in apart) < 1e-9 * len(st)


def test_anisotropic_minima_merge_by_time_reversal():
    st = _fe()
    pot = BetheSlaterExchange(*EXCHANGE) + UniaxialAnisotropy(1e-3, [0, 0, 1])
    assert not pot.spin_rotation_invariant
    minima = ground_state(st, pot, starts=6, seed=0, workers=1, tmax=1e-8)
    assert len(minima) == 1 and minima[0].count == 6
    finals = [abs(minima[0].state.spins[:, 2])]
    np.testing.assert_allclose(finals[0], 1.0, atol=1e-6)
    # both signs were reached: the merge used time reversal
    signs = set()
    for k in range(6):
        one = ground_state(st, pot, starts=1, seed=k, workers=1, tmax=1e-8)[0]
        signs.add(int(np.sign(one.state.spins[0, 2])))
    assert signs == {-1, 1}


def test_translations_and_same_configuration():
    # a chain of 6 sites along x with the period-3 pattern ↑↑↓
    a = 2.5
    st = sl.State(np.arange(6)[:, None] * [a, 0, 0], ["Fe"] * 6, cell=np.diag([6 * a, 10, 10]), pbc=True,
                  moments=np.full(6, 2.0))
    perms = _translations(st)
    assert len(perms) == 6  # every site can be moved onto site 0
    up, down = [0, 0, 1.0], [0, 0, -1.0]
    pattern = np.array([up, up, down] * 2)
    shifted = np.roll(pattern, 1, axis=0)  # ↓↑↑: a translation of ↑↑↓
    assert same_configuration(pattern, shifted, perms)
    assert not same_configuration(pattern, shifted, [np.arange(6)])  # not without translations
    assert same_configuration(pattern, -shifted, perms)  # time reversal × translation
    c, s = np.cos(0.05), np.sin(0.05)
    tilted = shifted @ np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]).T  # a global spin rotation by 0.05 rad
    assert not same_configuration(pattern, tilted, perms, tol=1e-3)
    assert same_configuration(pattern, tilted, perms, spin_rotations=True, tol=1e-3)
    # a different pattern is never the same
    assert not same_configuration(pattern, np.array([up, up, up, up, down, down]), perms)
    # Mn3Pt: the translations of a 2×2×2 supercell are the 8 lattice vectors of the small cell
    assert len(_translations(M.mn3pt(reps=2))) == 8


@pytest.fixture(scope="module")
def mn3pt_search():
    st = M.mn3pt(reps=2)
    pot = M.mn3pt_potential(st)
    return st, pot, ground_state(st, pot, starts=6, seed=3, workers=1)


def _summary(minima):
    return [(round(m.energy, 8), m.count, m.starts) for m in minima]


def test_minima_are_ranked_and_counted(mn3pt_search):
    st, pot, minima = mn3pt_search
    e = [m.energy for m in minima]
    assert e == sorted(e) and len(set(np.round(e, 8))) >= 1
    assert sum(m.count for m in minima) == 6
    assert sorted(k for m in minima for k in m.starts) == list(range(6))
    for m in minima:  # each minimum's energy is its state's energy; unpacks as (energy, state)
        energy, state = m
        assert pot.compute(state, forces=False, magnetic_forces=False).energy == pytest.approx(energy, abs=1e-12)


def test_parallel_workers_give_the_serial_minima(mn3pt_search):
    st, pot, serial = mn3pt_search
    parallel = ground_state(st, pot, starts=6, seed=3, workers=2)
    assert _summary(parallel) == _summary(serial)
    for a, b in zip(serial, parallel):
        np.testing.assert_allclose(a.state.spins, b.state.spins, atol=1e-10)


def test_dask_local_cluster_gives_the_serial_minima(mn3pt_search):
    distributed = pytest.importorskip("dask.distributed")
    st, pot, serial = mn3pt_search
    with distributed.LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        t = time.perf_counter()
        viaclient = ground_state(st, pot, starts=6, seed=3, scheduler=client)
        byaddress = sl.sweep(functools.partial(math.pow, 2.0), [1, 2, 3], scheduler=cluster.scheduler_address)
        assert time.perf_counter() - t < 60
    assert _summary(viaclient) == _summary(serial)
    assert byaddress == [2.0, 4.0, 8.0]


def test_sweep_over_processes_keeps_order():
    values = [0.5, 3.0, 1.0, 2.0]
    assert sl.sweep(functools.partial(math.pow, 3.0), values, workers=2) == [3.0 ** v for v in values]
    assert sl.sweep(abs, [-1, 2], workers=1) == [1, 2]


def test_bad_search_requests():
    st = _fe()
    with pytest.raises(InputError, match="at least one start"):
        ground_state(st, BetheSlaterExchange(*EXCHANGE), starts=0)
