"""Curie-temperature workflow: mean-field T_c, exchange truncation, the Binder-crossing search,
and Monte Carlo sweeps whose U4 crossing reproduces the known classical bcc Heisenberg T_c."""

from pathlib import Path

import numpy as np
import pytest

import spinlat as sl
from spinlat import units
from spinlat.errors import InputError
from spinlat.workflows import curie as cw

DATA = Path(__file__).resolve().parent / "data" / "tb2j"
NEW = DATA / "bccFe_new_format.out"
A = 2.87


def bcc_nn(J, mu=2.2, cubic=False):
    if cubic:
        st = sl.State([[0, 0, 0], [A / 2] * 3], [26, 26], cell=A * np.eye(3), pbc=True, moments=[mu, mu])
    else:
        st = sl.State([[0, 0, 0]], [26], cell=0.5 * A * np.array([[-1, 1, 1], [1, -1, 1], [1, 1, -1]]), pbc=True,
                      moments=[mu])
    return st, sl.potentials.Heisenberg.from_neighbors(st, J=J)


def test_mean_field_tc_nearest_neighbours_and_sublattices():
    J = 0.01
    for cubic in (False, True):
        st, ham = bcc_nn([J, 0.4 * J], cubic=cubic)
        assert cw.mean_field_tc(ham, st.moments) == pytest.approx((8 * J + 6 * 0.4 * J) / (3 * units.K_B), rel=1e-12)


def test_mean_field_tc_of_the_tb2j_file_is_minus_two_thirds_of_the_ferromagnetic_energy():
    st, ham = sl.io.read_tb2j(NEW)
    e_fm = ham.compute(st).energy  # −J(0)/2 per atom
    assert cw.mean_field_tc(ham) == pytest.approx(-2 * e_fm / (3 * units.K_B), rel=1e-12)
    assert 1500 < cw.mean_field_tc(ham) < 1750


def test_truncate_keeps_the_first_shells():
    st, ham = sl.io.read_tb2j(NEW)
    two = cw.truncate(ham, 3.0)  # 8 nearest (2.47 Å) + 6 next (2.85 Å) neighbours, each pair once
    d = np.linalg.norm(two.R @ two.cell, axis=1)
    assert sorted(np.round(d, 1)) == [2.5] * 4 + [2.8] * 3 or sorted(np.round(d, 1)) == [2.5] * 4 + [2.9] * 3
    big = st.repeat(3)
    i, _, _ = two.pairs(big)
    assert len(i) == 7 * len(big)
    assert two.compute(st).energy == pytest.approx(-np.sum(two.J[:, 0, 0]), rel=1e-12)
    with pytest.raises(InputError, match="cutoff"):
        cw.truncate(ham, 1.0)


def test_binder_crossing_skips_noise_crossings_in_the_ordered_phase():
    T = np.arange(10.0)
    small = np.array([0.6660, 0.6650, 0.6655, 0.660, 0.64, 0.60, 0.55, 0.50, 0.48, 0.46])
    large = np.array([0.6655, 0.6657, 0.6651, 0.664, 0.65, 0.58, 0.50, 0.46, 0.45, 0.445])
    # a naive first crossing is at the noise (T ≈ 0.5); the transition crossing lies in 4..5, after
    # which the larger system stays below
    assert sl.analysis.crossing(T, small, large) < 1.0
    tc = cw.binder_crossing(T, small, large)
    assert 4.0 < tc < 5.0
    assert np.isnan(cw.binder_crossing(T, small, small + 0.01))


def test_curie_sweep_rejects_bad_input():
    st, ham = bcc_nn([0.01])
    with pytest.raises(InputError, match="temperatures"):
        cw.curie_sweep(st, ham, [300.0, 200.0], [4], 10)
    with pytest.raises(InputError, match="sizes"):
        cw.curie_sweep(st, ham, [300.0], [0], 10)
    with pytest.raises(InputError, match="cell"):
        cw.curie_sweep(st, ham, [300.0], [4], 10, cell="hexagonal", workers=1)


@pytest.mark.slow
def test_nearest_neighbour_bcc_heisenberg_tc(tmp_path):
    """Classical bcc Heisenberg with nearest-neighbour J: k_B T_c = 2.054 J (high-precision MC,
    e.g. Chen, Ferrenberg and Landau), i.e. T_c/T_MF = 0.770."""
    J = 0.01
    st, ham = bcc_nn([J], cubic=True)
    tc_exact = 2.0542 * J / units.K_B
    temps = tc_exact * np.linspace(0.85, 1.15, 7)
    res = cw.curie_sweep(st, ham, temps, [4, 6], sweeps=2500, thermalize=500, overrelax=1, seed=3, workers=2)
    res.t_mf = cw.mean_field_tc(ham, st.moments)
    assert list(res.n_spins) == [128, 432]
    # M(T) falls, faster for the larger system above T_c; U4 from near 2/3 towards 4/9
    assert np.all(np.diff(res.m, axis=1) < 0)
    assert res.m[1, -1] < res.m[0, -1]
    assert np.all(res.u4[:, 0] > 0.65) and np.all(res.u4[:, -1] < 0.56)
    assert np.all(res.chi > 0) and np.all(res.c > 0)
    tc = res.tc
    assert tc == pytest.approx(tc_exact, rel=0.04)
    assert 0.72 < tc / res.t_mf < 0.82
    png = res.plot(tmp_path / "curie.png")
    assert Path(png).stat().st_size > 10_000
    assert "L = 6" in res.table()


@pytest.mark.slow
def test_tb2j_first_two_shells_curie_sweep():
    """bcc Fe TB2J exchange cut to its first two shells: M(T) drops, U4 goes from ≈ 2/3 towards
    4/9 and the crossing lies between 0.6 and 0.9 T_MF."""
    st, ham = sl.io.read_tb2j(NEW)
    two = cw.truncate(ham, 3.0)
    t_mf = cw.mean_field_tc(two)
    temps = t_mf * np.array([0.5, 0.65, 0.72, 0.78, 0.84, 0.95, 1.1])
    res = cw.curie_sweep(st, two, temps, [4, 6], sweeps=1200, thermalize=300, overrelax=1, cell="cubic", seed=5,
                         workers=2)
    assert np.all(np.diff(res.m, axis=1) < 0)
    assert res.m[1, 0] > 0.7 and res.m[1, -1] < 0.2
    assert np.all(res.u4[:, 0] > 0.66) and np.all(res.u4[:, -1] < 0.55)
    assert 0.6 * t_mf < res.tc < 0.9 * t_mf



def test_tb2j_shells_complete_to_7_4_angstrom_only():
    """TB2J lists the pairs of a box of lattice vectors, not of a sphere: the shells of the bcc Fe
    file are complete up to 7.40 Å (10 shells, 168 neighbours) and partial beyond. The partial
    shells break the cubic symmetry of J(q) and make J(q) exceed J(0) near Γ along one [110]
    (a spurious long-wavelength spiral instability of the ferromagnet); cut at 7.7 Å, J(q) is
    cubic and the ferromagnet stable."""
    from spinlat.workflows.magnons import cubic_supercell, exchange_fourier

    st, ham = sl.io.read_tb2j(NEW)
    axes = cubic_supercell(st, 1).cell
    axes = axes / np.linalg.norm(axes, axis=1)[:, None]
    q = 0.2 / np.sqrt(2) * np.array([[0, 0, 0], [1, 1, 0], [1, -1, 0]]) @ axes  # two equivalent [110]
    full = exchange_fourier(ham, q, st.moments)[:, 0, 0].real
    assert full[1] > full[0] and abs(full[1] - full[2]) > 1e-2  # eV: asymmetric, unstable
    cut = cw.truncate(ham, 7.7)
    d = np.linalg.norm(cut.positions[cut.j] + cut.R @ cut.cell - cut.positions[cut.i], axis=1)
    assert 2 * cut.n_pairs == 168 and d.max() < 7.45
    j = exchange_fourier(cut, q, st.moments)[:, 0, 0].real
    assert j[1] < j[0] - 0.02 and abs(j[1] - j[2]) < 1e-3 * abs(j[0])


def test_complete_shell_tb2j_exchange_orders_below_and_disorders_above_tc():
    """TB2J exchange cut to its complete shells (84 pairs per atom, to 7.4 Å) on 5 × 5 × 5 cubic
    cells (250 spins, the scalar isotropic Monte Carlo kernel): ordered at 800 K, disordered at
    1700 K, either side of the Binder-crossing T_c of examples/curie_bccfe_tb2j.py."""
    st, ham = sl.io.read_tb2j(NEW)
    res = cw.curie_sweep(st, cw.truncate(ham, 7.7), [800.0, 1700.0], [5], sweeps=300, thermalize=100, overrelax=1,
                         cell="cubic", seed=1, workers=1)
    assert res.n_spins[0] == 250
    assert res.m[0, 0] > 0.75 and res.u4[0, 0] > 0.65
    assert res.m[0, 1] < 0.3 and res.u4[0, 1] < 0.6
    assert res.chi[0, 1] > 0


def sc_nn(J=1e-3):
    unit = sl.State([[0, 0, 0]], [26], cell=np.eye(3) * 2.5, pbc=True, moments=[1.0])
    return unit, sl.potentials.Heisenberg.from_neighbors(unit, J=[J])


def test_curie_sweep_gives_errors_and_a_bootstrap_tc_error():
    """Classical nearest-neighbour Heisenberg ferromagnet on sc (k_B T_c = 1.443 J), L = 4 and 6:
    every observable carries an error, the T_c error comes from the block bootstrap of the
    runs (not from the spread of crossings: one pair of sizes has no spread), and T_c agrees
    with 1.443 J within that error plus the small-size shift (≈ 1 %)."""
    J = 1e-3
    unit, ham = sc_nn(J)
    tc_exact = 1.443 * J / units.K_B
    temps = tc_exact * np.linspace(0.92, 1.08, 7)
    res = cw.curie_sweep(unit, ham, temps, [4, 6], sweeps=3000, thermalize=500, overrelax=1, seed=2, workers=1,
                         n_boot=400)
    for name in ("m", "chi", "u4", "c"):
        err = getattr(res, name + "_error")
        assert err.shape == res.m.shape and np.all(np.isfinite(err)) and np.all(err > 0), name
        assert np.all(err < 0.2 * np.abs(getattr(res, name))), name
    assert res.tc_replicas.shape == (400,) and res.crossing_replicas.shape == (400, 1)
    assert np.isfinite(res.tc_replicas).mean() > 0.95
    assert 0.001 * tc_exact < res.tc_error < 0.03 * tc_exact
    assert res.crossing_errors()[0] == pytest.approx(res.tc_error)
    assert abs(res.tc - tc_exact) < 3 * res.tc_error + 0.02 * tc_exact
    text = res.table()
    assert "±" in text and f"T_c = {cw.format_error(res.tc, res.tc_error)} K" in text
    assert cw.format_error(16.6904, 0.0451) == "16.690 ± 0.045" and cw.format_error(1469.9, 11.0) == "1470 ± 11"
    # without replicas the error is NaN, the observables unchanged
    plain = cw.curie_sweep(unit, ham, temps[:2], [4], sweeps=200, thermalize=50, seed=2, workers=1, n_boot=0)
    assert plain.crossing_replicas is None and np.isnan(plain.tc_error) and np.isnan(plain.tc)


@pytest.mark.slow
def test_bootstrap_tc_error_matches_the_spread_over_independent_sweeps():
    """Eight independent sweeps (different seeds) of the sc Heisenberg model, L = 4/6: the spread
    of their T_c equals the root-mean-square bootstrap error within a factor 1.6 (the spread of
    8 values is itself uncertain by 27 %)."""
    J = 1e-3
    unit, ham = sc_nn(J)
    temps = 1.443 * J / units.K_B * np.linspace(0.92, 1.08, 7)
    tcs, errs = [], []
    for seed in range(8):
        res = cw.curie_sweep(unit, ham, temps, [4, 6], sweeps=3000, thermalize=500, overrelax=1, seed=100 + seed,
                             workers=1, n_boot=300)
        tcs.append(res.tc)
        errs.append(res.tc_error)
    ratio = np.std(tcs, ddof=1) / np.sqrt(np.mean(np.square(errs)))
    assert 1 / 1.6 < ratio < 1.6, (tcs, errs)


def test_curie_sweep_over_processes_and_dask_equals_the_serial_run():
    """Each (L, T) task has its own seed: two worker processes, or a Dask cluster, give the serial
    samples bit for bit."""
    st, ham = bcc_nn([0.01])
    kw = dict(temperatures=[400.0, 900.0, 1400.0], sizes=[2, 3], sweeps=40, thermalize=10, seed=4, n_boot=20)
    serial = cw.curie_sweep(st, ham, **kw)
    runs = [cw.curie_sweep(st, ham, workers=2, **kw)]
    distributed = None
    try:
        import dask.distributed as distributed
    except ImportError:
        pass
    if distributed is not None:
        with distributed.LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster, \
                distributed.Client(cluster) as client:
            runs.append(cw.curie_sweep(st, ham, scheduler=client, **kw))
    for other in runs:
        assert serial.samples.keys() == other.samples.keys()
        for key, a in serial.samples.items():
            b = other.samples[key]
            np.testing.assert_array_equal(a["magnetization"], b["magnetization"])
            np.testing.assert_array_equal(a["energies"], b["energies"])
        for name in ("m", "chi", "u4", "c", "m_error", "u4_error"):
            np.testing.assert_array_equal(getattr(serial, name), getattr(other, name))


def test_an_interrupted_curie_sweep_keeps_the_runs_finished_by_size_and_temperature(monkeypatch):
    """An interrupted curie_sweep passed on sweep's partial result numbered in its own
    (largest-size-first) order, which the caller could not map back; now it is {(L, T): run}."""
    import os
    import signal

    st, ham = bcc_nn([0.01])
    real, calls = cw._run_point, []

    def interrupting(task, **kw):
        calls.append(task)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGINT)  # a serial sweep: raised here, during the third run
        return real(task, **kw)

    monkeypatch.setattr(cw, "_run_point", interrupting)
    prev = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt) as info:
            cw.curie_sweep(st, ham, [200.0, 400.0], [2, 3], sweeps=4, n_boot=0)
    finally:
        signal.signal(signal.SIGINT, prev)
    done = info.value.partial_result
    assert sorted(done) == [(3, 200.0), (3, 400.0)]  # the larger size runs first
    assert all(r["magnetization"].shape == (4, 3) and r["n_spins"] == 27 * len(st) for r in done.values())


def test_an_antiferromagnet_has_no_curie_temperature():
    """The U4 of M of a simple-cubic antiferromagnet hovers about 4/9 at every temperature and its
    curves for L = 4 and 6 crossed by chance: the sweep reported "T_c = 17.6 ± 2.2 K". A crossing
    now needs the larger system ordered below it (U4 ≥ 5/9), and the unordered start is named."""
    J = -1e-3
    unit = sl.State([[0, 0, 0]], [26], cell=np.eye(3) * 2.5, pbc=True, moments=[2.0])
    ham = sl.potentials.Heisenberg.from_neighbors(unit, J=[J])
    temps = [8.0, 12.0, 14.0, 16.0, 18.0, 20.0, 25.0]
    with pytest.warns(UserWarning, match="not ferromagnetically ordered at the lowest temperature"):
        res = cw.curie_sweep(unit, ham, temps, [4, 6], sweeps=1000, seed=0, workers=1, n_boot=50)
    assert np.all(res.m < 0.1) and np.all(np.abs(res.u4 - cw.U4_DISORDERED) < 0.08)
    assert np.isnan(res.tc) and np.isnan(res.tc_replicas).mean() > 0.9
    assert "T_c: not found (no U4 crossing in this temperature window)" in res.table() and "nan" not in res.table()
    # the same noise without the ordered side: no crossing; with it (a ferromagnet's curves): found
    T = np.arange(4.0)
    assert np.isnan(cw.binder_crossing(T, [0.40, 0.43, 0.42, 0.45], [0.41, 0.44, 0.40, 0.44]))
    assert 1.0 < cw.binder_crossing(T, [0.64, 0.60, 0.52, 0.46], [0.66, 0.62, 0.48, 0.45]) < 2.0


def test_a_run_whose_magnetisation_still_relaxes_is_named(monkeypatch):
    """A run too short to thermalise (|M| still relaxing from the ferromagnetic start through its
    first sweeps) biased ⟨|M|⟩, χ and U4 without a word; the sweep now names those runs."""
    rng = np.random.default_rng(0)

    def fake_run(task, state, potential, sweeps, thermalize, every, overrelax, cell):
        L, T, seed = task
        n = 2000
        m = 0.8 + 0.01 * rng.normal(size=n)
        if T > 15:
            m += 0.15 * np.exp(-np.arange(n) / 100.0)  # still relaxing
        mag = np.zeros((n, 3))
        mag[:, 2] = m
        return dict(L=L, T=T, seed=seed, n_spins=L**3, moment=1.0, magnetization=mag,
                    energies=rng.normal(size=n // every), n_atoms=L**3, acceptance=0.5, seconds=0.0)

    monkeypatch.setattr(cw, "_run_point", fake_run)
    unit = sl.State([[0, 0, 0]], [26], cell=np.eye(3) * 2.5, pbc=True, moments=[1.0])
    ham = sl.potentials.Heisenberg.from_neighbors(unit, J=[1e-3])
    with pytest.warns(UserWarning, match=r"still drifts in 2 of 4 runs \(L, T K\) \[\(4, 20\.0\), \(6, 20\.0\)\]"):
        cw.curie_sweep(unit, ham, [10.0, 20.0], [4, 6], sweeps=2000, thermalize=0, n_boot=0)


def test_a_film_is_repeated_in_plane_only():
    """curie_sweep's L × L × L repeat of a film (vacuum along z) stacked L separate films: a
    Heisenberg template refused it ("a 16-cell supercell ... the state has 64"), and a potential
    without a template took the sum of L independent layers as the order parameter (n_spins L³).
    A film now grows L × L × 1; a cluster (no periodic direction) is refused."""
    unit = sl.State([[0, 0, 5.0]], [26], cell=np.diag([2.5, 2.5, 15.0]), pbc=[True, True, False], moments=[2.0])
    ham = sl.potentials.Heisenberg.from_neighbors(unit, J=[1e-3]) + sl.potentials.UniaxialAnisotropy(5e-4, [0, 0, 1])
    res = cw.curie_sweep(unit, ham, [2.0], [3, 4], sweeps=40, thermalize=10, n_boot=0)
    assert res.n_spins.tolist() == [9, 16]
    # deep in the ordered phase each film is saturated: ⟨|M|⟩ ≈ 1 (stacked independent films gave less
    # only near T_c, but the spin count was L³)
    assert np.all(res.m > 0.95)
    cluster = sl.State([[0, 0, 0], [2.5, 0, 0]], [26, 26], moments=[2.0, 2.0])
    with pytest.raises(InputError, match="no periodic direction"):
        cw.curie_sweep(cluster, sl.potentials.Heisenberg.from_neighbors(cluster, J=[1e-3]), [2.0], [2], sweeps=10)
