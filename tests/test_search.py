"""Ground-state search: merging of equivalent minima, ranking, parallel and Dask execution, sweeps."""

import functools
import math
from pathlib import Path

import numpy as np
import pytest

import spinlat as sl
from conftest import bcc_fe
from spinlat.errors import InputError
from spinlat.potentials import BetheSlaterExchange, UniaxialAnisotropy
from spinlat.search import Translations, ground_state, same_configuration
from spinlat.translations import _smith
from spinlat.workflows import mn3pt as M

from _reference_search import (cubic_operations, reference_same, reference_same_symmetric, reference_symmetries,
                               reference_translations)

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


# ---------------------------------------------------------------- symmetry merging
def _bcc(reps, a=2.8665, numbers=(26, 26)):
    return sl.State([[0, 0, 0], [a / 2, a / 2, a / 2]], list(numbers), cell=np.eye(3) * a, pbc=True,
                    moments=[2.2, 2.2]).repeat(reps)


def _structures():
    """Periodic structures with rich, poor and no translation symmetry."""
    from ase.build import bulk, make_supercell

    rng = np.random.default_rng(7)
    out = {"bcc 3x3x3": _bcc(3), "bcc 2x3x4": _bcc((2, 3, 4)), "Mn3Pt 2x2x2": M.mn3pt(reps=2)}
    # a non-diagonal supercell of the fcc primitive cell (T is not a product of the cell's axes)
    fcc = make_supercell(bulk("Ni", "fcc", a=3.52), [[2, 1, 0], [0, 2, 1], [1, 0, 2]])
    out["fcc skew"] = sl.State.from_ase(fcc).copy(moments=np.full(len(fcc), 0.6))
    # a hexagonal cell (60° between a and b)
    hcp = bulk("Co", "hcp", a=2.507, c=4.07).repeat((3, 3, 2))
    out["hcp 3x3x2"] = sl.State.from_ase(hcp).copy(moments=np.full(len(hcp), 1.6))
    # random B2-like alloy: the species break most translations
    alloy = _bcc(3)
    out["FeCo random"] = alloy.copy(numbers=np.where(rng.random(len(alloy)) < 0.5, 26, 27))
    # a vacancy: no translation is left
    vac = _bcc(3)
    keep = np.arange(len(vac)) != 5
    out["bcc vacancy"] = sl.State(vac.positions[keep], vac.numbers[keep], cell=vac.cell, pbc=True,
                                  moments=vac.moments[keep])
    # positions off the lattice by less than the tolerance still count as symmetric
    noisy = _bcc(3)
    out["bcc noisy"] = noisy.copy(positions=noisy.positions + rng.uniform(-2e-4, 2e-4, noisy.positions.shape))
    return out


@pytest.mark.parametrize("name", list(_structures()))
def test_translation_group_equals_the_reference(name):
    st = _structures()[name]
    group = Translations(st)
    got = {tuple(p) for p in group.permutations()}
    want = {tuple(p) for p in reference_translations(st)}
    assert got == want
    assert group.order == len(want) and int(np.prod(group.shape)) == group.order
    # every permutation moves the structure onto itself by one rigid translation
    frac = st.positions @ np.linalg.inv(st.cell)
    for p in group.permutations():
        d = frac[p] - frac
        d -= np.round(d - d[0])
        assert np.max(np.abs((d - d[0]) @ st.cell)) < 2e-3
        assert np.array_equal(st.numbers[p], st.numbers)


def test_translation_groups_of_open_structures():
    bulk = _bcc((3, 3, 2))
    slab = sl.State(bulk.positions, bulk.numbers, cell=bulk.cell, pbc=[True, True, False], moments=bulk.moments)
    group = Translations(slab)
    assert group.order == 9  # the in-plane lattice vectors of the 3×3 conventional cells
    for p in group.permutations():
        dz = slab.positions[p, 2] - slab.positions[:, 2]
        assert np.max(np.abs(dz)) < 1e-9  # never out of the plane
    cluster = sl.State(bulk.positions, bulk.numbers, moments=bulk.moments)
    assert Translations(cluster).order == 1
    # Mn3Pt: the translations of a 2×2×2 supercell are the 8 lattice vectors of the small cell
    assert Translations(M.mn3pt(reps=2)).order == 8


def test_smith_normal_form_is_unimodular():
    rng = np.random.default_rng(0)
    for _ in range(300):
        a = rng.integers(-12, 13, size=(int(rng.integers(1, 7)), 3))
        d, u, v, vinv = _smith(a)
        prod = u @ a @ v
        assert np.array_equal(prod[:len(d), :len(d)], np.diag(d)) and np.count_nonzero(prod) == np.count_nonzero(d)
        assert np.all(d >= 0)
        assert np.array_equal(v @ vinv, np.eye(3, dtype=np.int64))
        assert round(abs(np.linalg.det(u))) == 1 and round(abs(np.linalg.det(v))) == 1


def _rotation(axis, angle):
    from scipy.spatial.transform import Rotation

    return Rotation.from_rotvec(np.asarray(axis, float) / np.linalg.norm(axis) * angle).as_matrix()


def _tilt(s, angle):
    """``s`` turned by ``angle`` (rad) about an axis perpendicular to it."""
    return _rotation(np.cross(s, [0.3, -0.5, 0.8]), angle) @ s


@pytest.mark.parametrize("name", ["bcc 2x3x4", "Mn3Pt 2x2x2", "fcc skew", "FeCo random"])
def test_same_configuration_decides_like_the_reference(name):
    st = _structures()[name]
    group = Translations(st)
    perms = group.permutations()
    rng = np.random.default_rng(11)
    n = len(st)
    a = rng.normal(size=(n, 3))
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    tol = 1e-2
    rot = _rotation([1, 2, 3], 0.7)
    cases = []
    for p in perms[:: max(1, len(perms) // 4)]:
        b = np.empty_like(a)
        b[p] = a  # b is a translated by p: b[p] == a
        cases += [(b, False, True), (-b, False, True),              # translation, × time reversal
                  (b @ rot.T, False, False), (b @ rot.T, True, True),  # global rotation: only with spin rotations
                  (-(b @ rot.T), True, True)]                          # rotation × time reversal
        one = b.copy()
        one[3] = _tilt(one[3], 0.5 * tol)  # within tolerance
        cases.append((one, False, True))
        one = b.copy()
        one[3] = _tilt(one[3], 2.0 * tol)  # one spin beyond it
        cases += [(one, False, False), (one @ rot.T, True, False)]
    other = rng.normal(size=(n, 3))
    cases.append((other / np.linalg.norm(other, axis=1, keepdims=True), True, False))
    for b, rotations, expected in cases:
        assert group.same(a, b, rotations, tol) is expected
        assert same_configuration(a, b, group, rotations, tol) is expected
        assert reference_same(a, b, reference_translations(st), rotations, tol) is expected


def test_same_configuration_with_translation_symmetric_orders():
    # a chain of 6 sites along x with the period-3 pattern ↑↑↓: many translations give equal overlaps
    a = 2.5
    st = sl.State(np.arange(6)[:, None] * [a, 0, 0], ["Fe"] * 6, cell=np.diag([6 * a, 10, 10]), pbc=True,
                  moments=np.full(6, 2.0))
    group = Translations(st)
    assert group.order == 6  # every site can be moved onto site 0
    up, down = [0, 0, 1.0], [0, 0, -1.0]
    pattern = np.array([up, up, down] * 2)
    shifted = np.roll(pattern, 1, axis=0)  # ↓↑↑: a translation of ↑↑↓
    assert same_configuration(pattern, shifted, group)
    assert same_configuration(pattern, -shifted, group)  # time reversal × translation
    tilted = shifted @ _rotation([0, 1, 0], 0.05).T  # a global spin rotation by 0.05 rad
    assert not same_configuration(pattern, tilted, group, tol=1e-3)
    assert same_configuration(pattern, tilted, group, spin_rotations=True, tol=1e-3)
    assert not same_configuration(pattern, np.array([up, up, up, up, down, down]), group)
    ferro = np.tile(up, (6, 1))
    almost = ferro.copy()
    almost[4] = [0, np.sin(0.02), np.cos(0.02)]
    assert not same_configuration(ferro, almost, group, tol=1e-2)  # every translation is a candidate
    assert same_configuration(ferro, almost, group, tol=3e-2)
    with pytest.raises(InputError, match="Translations"):
        same_configuration(pattern, shifted, [np.arange(6)])


def test_search_merges_like_the_reference(mn3pt_search):
    """Each start's minimum belongs to the merged minimum the reference decision gives (translations,
    the cubic operations the potential keeps, time reversal: brute force)."""
    from spinlat.search import _directions, _Start

    st, pot, minima = mn3pt_search
    perms = reference_translations(st)
    syms = reference_symmetries(st, pot, cubic_operations(st))
    job = _Start(st, pot, None, {})
    for k, (e, fin, _) in enumerate(job(tuple(3 + k for k in range(6)))):
        owner = [m for m in minima if k in m.starts]
        assert len(owner) == 1
        assert reference_same_symmetric(_directions(owner[0].state), _directions(fin), syms, perms)
    for i, m in enumerate(minima):
        for other in minima[i + 1:]:
            if abs(m.energy - other.energy) <= 1e-5 * len(st):
                assert not reference_same_symmetric(_directions(m.state), _directions(other.state), syms, perms)


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
        viaclient = ground_state(st, pot, starts=6, seed=3, scheduler=client)
        byaddress = sl.sweep(functools.partial(math.pow, 2.0), [1, 2, 3], scheduler=cluster.scheduler_address)
    assert _summary(viaclient) == _summary(serial)
    assert byaddress == [2.0, 4.0, 8.0]


def test_sweep_over_processes_keeps_order():
    values = [0.5, 3.0, 1.0, 2.0]
    assert sl.sweep(functools.partial(math.pow, 3.0), values, workers=2) == [3.0 ** v for v in values]
    assert sl.sweep(abs, [-1, 2], workers=1) == [1, 2]



def test_sweep_of_an_unpicklable_function_over_processes_is_refused_clearly():
    """A lambda with workers=2 raised a bare PicklingError from the process pool; now an
    InputError names the function and the remedies. Serially it runs."""
    def local(x):
        return x + 1

    for fn, name in ((lambda x: 2 * x, "<lambda>"), (local, "local")):
        with pytest.raises(InputError, match=f"workers=2: the function .*{name}.* cannot be sent to worker processes.*"
                                             "module-level function"):
            sl.sweep(fn, [1, 2, 3], workers=2)
        assert sl.sweep(fn, [1, 2]) == [fn(1), fn(2)]


def test_sweep_reuses_its_worker_pool_until_shut_down():
    """A second call with the same worker count reuses the processes of the first (forked where
    this process runs one thread, spawned otherwise: the same values either way); another count
    replaces them; shutdown_workers ends them."""
    from spinlat import search

    search.shutdown_workers()
    values = [1.0, 2.0, 3.0]
    expect = [2.0 ** v for v in values]
    assert sl.sweep(functools.partial(math.pow, 2.0), values, workers=2) == expect
    pool = search._POOL
    assert pool[0] == 2 and pool[1] in ("fork", "spawn")
    pids = set(pool[2]._processes)
    assert sl.sweep(functools.partial(math.pow, 2.0), values[::-1], workers=2) == expect[::-1]
    assert search._POOL is pool and set(pool[2]._processes) == pids
    assert sl.sweep(functools.partial(math.pow, 2.0), values, workers=3) == expect
    assert search._POOL[0] == 3 and search._POOL[2] is not pool[2]
    search.shutdown_workers()
    assert search._POOL is None
    search.shutdown_workers()  # harmless when none run


def test_bad_search_requests():
    st = _fe()
    with pytest.raises(InputError, match="at least one start"):
        ground_state(st, BetheSlaterExchange(*EXCHANGE), starts=0)
    # no magnetic atoms: 'spinlat search' ran its starts and ranked identical "minima"
    with pytest.raises(InputError, match="ground_state: the state has no magnetic atoms"):
        ground_state(st.copy(moments=np.zeros(len(st))), BetheSlaterExchange(*EXCHANGE), starts=2)


def test_bad_parallel_requests():
    st = _fe()
    pot = BetheSlaterExchange(*EXCHANGE)
    for bad in (0, -2, "many", 1.5, True):
        with pytest.raises(InputError, match="workers"):
            ground_state(st, pot, starts=2, workers=bad)
        with pytest.raises(InputError, match="workers"):
            sl.sweep(abs, [1, 2], workers=bad)
    with pytest.raises(InputError, match="scheduler"):
        sl.sweep(abs, [1, 2], scheduler=5)
    with pytest.raises(InputError, match="either"):
        sl.sweep(abs, [1, 2], workers=2, scheduler="tcp://127.0.0.1:1")
    for key, bad in (("starts", 2.5), ("seed", "abc"), ("seed", -1), ("energy_tol", -1.0), ("angle_tol", float("nan"))):
        with pytest.raises(InputError, match=key):
            ground_state(st, pot, **{"starts": 2, key: bad})


_SCRIPT_SETUP = """
import functools, math
import numpy as np
import spinlat as sl
from spinlat.potentials import BetheSlaterExchange, UniaxialAnisotropy

a = 2.8665
st = sl.State([[0, 0, 0], [a / 2, a / 2, a / 2]], [26, 26], cell=np.eye(3) * a, pbc=True,
              moments=[2.2, 2.2]).repeat(2)
pot = BetheSlaterExchange(3.4, 0.02726, 0.2171, 1.841) + UniaxialAnisotropy(1e-3, [0, 0, 1])
"""


def _run_script(path, text):
    import os
    import subprocess
    import sys

    path.write_text(text)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parents[1]),
                                                       os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, str(path)], capture_output=True, text=True, env=env, timeout=900,
                          cwd=path.parent)


@pytest.mark.slow
def test_plain_scripts_run_serially_and_ask_for_the_main_guard_before_spawning(tmp_path):
    """A script without `if __name__ == "__main__":` works serially (the default); asking it for
    worker processes gives one clear error before any process starts; guarded, workers work."""
    text = _SCRIPT_SETUP + """
minima = sl.search.ground_state(st, pot, starts=3, seed=0, tmax=1e-8)
print("serial", [(round(m.energy, 8), m.count, m.starts) for m in minima])
print("sweep", sl.sweep(functools.partial(math.pow, 2.0), [1, 2, 3]))
sl.sweep(functools.partial(math.pow, 2.0), [1, 2, 3], workers=2)
print("not reached")
"""
    plain = _run_script(tmp_path / "plain.py", text)
    call = 1 + text.splitlines().index("sl.sweep(functools.partial(math.pow, 2.0), [1, 2, 3], workers=2)")
    assert plain.returncode == 1, plain.stderr
    lines = plain.stdout.splitlines()
    assert lines[0].startswith("serial [(") and lines[1] == "sweep [2.0, 4.0, 8.0]" and len(lines) == 2
    last = plain.stderr.strip().splitlines()[-1]
    assert last.startswith("spinlat.errors.WorkerError") and 'if __name__ == "__main__":' in last and f"line {call} " in last
    assert "BrokenProcessPool" not in plain.stderr and "bootstrapping" not in plain.stderr
    guarded = _run_script(tmp_path / "guarded.py", _SCRIPT_SETUP + """
def main():
    minima = sl.search.ground_state(st, pot, starts=3, seed=0, tmax=1e-8, workers=2)
    print("serial", [(round(m.energy, 8), m.count, m.starts) for m in minima])
    print("sweep", sl.sweep(functools.partial(math.pow, 2.0), [1, 2, 3], workers=2))


if __name__ == "__main__":
    main()
""")
    assert guarded.returncode == 0, guarded.stderr
    assert guarded.stdout.splitlines() == lines  # the same minima as the serial run, the same sweep


def test_unconverged_starts_are_flagged_not_listed_as_minima():
    """A start whose minimisation stops at max_steps is not a minimum: ground_state warns (naming
    how many starts) and its Minimum has converged=False; converged ones keep converged=True."""
    from spinlat.errors import ConvergenceWarning

    st = _fe()
    pot = BetheSlaterExchange(*EXCHANGE) + UniaxialAnisotropy(1e-3, [0, 0, 1])
    with pytest.warns(ConvergenceWarning, match=r"ground_state: 4 of 4 starts did not converge .* are not minima"):
        stuck = ground_state(st, pot, starts=4, seed=0, max_steps=2)
    assert stuck and not any(m.converged for m in stuck)
    for m in stuck:  # indeed not minima: torques far above the tolerance
        tq = sl.potentials.spin_torques(m.state, pot.compute(m.state, magnetic_forces=True))
        assert np.abs(tq).max() > 1e-3
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        done = ground_state(st, pot, starts=4, seed=0, tmax=1e-8)
    assert all(m.converged for m in done)


def test_a_flat_direction_does_not_list_one_minimum_many_times():
    """16 spins, J = 10 meV, B = 0.05 T along z: the Zeeman torque (≤ 5.8e-6 eV) is below the default
    tmax (1e-5 eV), so every ferromagnetic direction within ~60° of z passed as converged and 12
    starts gave 7 'distinct minima'. Near-degenerate minima are now polished before they are told
    apart: one minimum, along the field, reached by every start."""
    from spinlat.potentials import Heisenberg, Zeeman

    unit = sl.State([[0, 0, 0]], ["Fe"], cell=np.diag([2.5, 2.5, 2.5]), pbc=True, moments=[2.0])
    st = unit.repeat((4, 4, 1))
    pot = Heisenberg.from_neighbors(unit, J=[0.01]) + Zeeman([0, 0, 0.05])
    minima = sl.search.ground_state(st, pot, starts=12, seed=0)
    assert len(minima) == 1 and minima[0].count == 12 and minima[0].starts == tuple(range(12))
    assert minima[0].converged
    np.testing.assert_allclose(minima[0].state.spins[:, 2], 1.0, atol=1e-4)
    ev = pot.compute(minima[0].state, magnetic_forces=True)
    assert minima[0].energy == pytest.approx(ev.energy, abs=1e-12)


def test_a_potential_used_in_this_process_still_goes_to_worker_processes():
    """ground_state(workers=2) after the same potential ran here (a serial search, a compute)
    raised "cannot be sent to worker processes (Can't pickle local object
    'BetheSlaterExchange._couplings.<locals>.offset')": the potential was pickled with its
    caches. Now a pickled potential holds its parameters only, and gives the same energies."""
    import pickle

    st, pot = _fe(), BetheSlaterExchange(*EXCHANGE) + UniaxialAnisotropy(1e-3, [0, 0, 1])
    fresh = len(pickle.dumps(pot))
    serial = ground_state(st, pot, starts=4, seed=1, tmax=1e-8)
    ev = pot.compute(st)
    assert len(pickle.dumps(pot)) == fresh  # no neighbour or pair list travels
    clone = pickle.loads(pickle.dumps(pot))
    again = clone.compute(st)
    assert again.energy == pytest.approx(ev.energy, abs=1e-12)
    np.testing.assert_allclose(again.magnetic_forces, ev.magnetic_forces, atol=1e-12)
    parallel = ground_state(st, pot, starts=4, seed=1, tmax=1e-8, workers=2)
    assert _summary(parallel) == _summary(serial)
    sl.search.shutdown_workers()


def test_site_classes_of_a_film_stored_without_its_third_cell_vector():
    # cell [[a,0,0],[0,a,0],[0,0,0]] (pbc T T F): start_cell=(2, 2, 1) was refused as "not a
    # non-singular (3,3) cell or three integers"; the classes are those of the same film with vacuum
    from spinlat.search import site_classes

    unit = dict(positions=[[0, 0, 0], [1.435, 1.435, 0]], numbers=["Fe"] * 2, pbc=[True, True, False],
                moments=[2.2] * 2)
    flat = sl.State(cell=[[2.87, 0, 0], [0, 2.87, 0], [0, 0, 0]], **unit).repeat((2, 2, 1))
    vacuum = sl.State(cell=[[2.87, 0, 0], [0, 2.87, 0], [0, 0, 10]], **unit).repeat((2, 2, 1))
    classes = site_classes(flat, (2, 2, 1))
    assert classes.tolist() == site_classes(vacuum, (2, 2, 1)).tolist()
    assert sorted(set(classes.tolist())) == [0, 1] and classes.tolist() == [0, 1] * 4
