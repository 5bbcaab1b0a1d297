"""Mn3Pt: the ground-state search finds the triangular T1 state below every collinear state."""

import numpy as np
import pytest

from spinlat.errors import InputError, ShapeError
from spinlat.search import ground_state
from spinlat.workflows import mn3pt as M

REPS = 2  # 2×2×2 cells, 24 Mn: room for non-uniform (metastable) minima


@pytest.fixture(scope="module")
def search():
    st = M.mn3pt(reps=REPS)
    pot = M.mn3pt_potential(st)
    return st, pot, ground_state(st, pot, starts=8, seed=0, workers=1, tmax=1e-7)


def test_local_axes_are_the_112_directions_in_111():
    st = M.mn3pt()
    ax = M.mn3pt_local_axes(st)
    np.testing.assert_array_equal(ax[0], 0.0)  # Pt
    np.testing.assert_allclose(ax[1:] * np.sqrt(6), [[1, 1, -2], [-2, 1, 1], [1, -2, 1]], atol=1e-14)
    # in the (111) plane, 120° apart, summing to zero; along the projection of (site − cube centre)
    np.testing.assert_allclose(ax[1:] @ np.ones(3), 0.0, atol=1e-15)
    np.testing.assert_allclose(ax[1:].sum(axis=0), 0.0, atol=1e-15)
    w = np.ones(3) / np.sqrt(3)
    rel = M.FRACTIONAL[1:] - 0.5
    proj = rel - np.outer(rel @ w, w)
    np.testing.assert_allclose(ax[1:], proj / np.linalg.norm(proj, axis=1)[:, None], atol=1e-14)
    # supercells: the same axes per sublattice, for any repeat
    big = M.mn3pt(reps=(2, 1, 3))
    np.testing.assert_allclose(M.mn3pt_local_axes(big), np.tile(ax, (6, 1)), atol=1e-14)
    with pytest.raises(ShapeError, match="per-atom axes"):
        M.mn3pt_potential(st).compute(big)


def test_search_finds_the_triangular_t1_state(search):
    st, pot, minima = search
    energies = [m.energy for m in minima]
    assert energies == sorted(energies)
    best = minima[0]
    assert best.count >= 2  # reached from several starts (merged by time reversal/translation)
    n_cells = REPS ** 3
    # analytic T1 energy: −6|J1| − 3K per cell
    assert best.energy / n_cells == pytest.approx(-6 * abs(M.J1_MN3PT) - 3 * M.K_MN3PT, abs=1e-9)
    o = M.triangular_order(best.state)
    assert 119.9 < o["nn_angle_min"] <= o["nn_angle_max"] < 120.1  # every NN Mn-Mn pair at 120°
    assert o["net_moment"] < 1e-4  # the three sublattice moments sum to zero
    assert o["coherence"] > 0.9999  # each sublattice uniform (q = 0)
    assert o["normal_to_111"] < 0.1  # in a {111} plane: the (111) of the local axes
    assert abs(o["plane_normal"] @ np.ones(3)) / np.sqrt(3) > 0.99999
    assert o["along_local_axes"] > 0.9999  # each moment along its local ⟨112⟩ easy axis
    np.testing.assert_allclose(np.linalg.norm(o["sublattice_moments"], axis=1), M.MOMENT_MN, rtol=1e-4)


def test_t1_is_below_every_collinear_state(search):
    st, pot, minima = search
    rows = M.collinear_states(st, pot)
    assert len(rows) == 4 * (len(M.COLLINEAR_AXES) + 1)
    n_cells = REPS ** 3
    gap = (rows[0]["energy"] - minima[0].energy) / n_cells
    assert gap > 0
    # best collinear: two sublattices up, one down (−4|J1|), common axis in (111) (−3K/2)
    assert gap == pytest.approx(2 * abs(M.J1_MN3PT) + 1.5 * M.K_MN3PT, abs=1e-9)
    assert sorted(rows[0]["signs"]).count(-1) == 1
    assert abs(rows[0]["u"] @ np.ones(3)) < 1e-3
    # the ferromagnetic arrangement is the highest
    assert rows[-1]["signs"] == (1, 1, 1)


def test_metastable_minima_are_above_t1_and_not_collinear(search):
    st, pot, minima = search
    col = M.collinear_states(st, pot, relax_axis=False)[0]["energy"]
    for m in minima[1:]:
        assert m.energy > minima[0].energy + 1e-6
        assert m.energy < col  # every local minimum found lies far below the collinear states


def test_bad_structure():
    st = M.mn3pt(reps=1)
    with pytest.raises(InputError, match="L1"):
        M.sublattices(st.copy(positions=st.positions + [0.3, 0, 0.1] * (np.arange(4)[:, None] == 1)))


@pytest.mark.peers
def test_spirit_gives_the_same_energies_with_per_site_anisotropy_axes(tmp_path):
    pytest.importorskip("spirit")
    from scipy.spatial import cKDTree
    from spirit import geometry, state, system

    reps = 2
    st = M.mn3pt(reps=reps)
    pot = M.mn3pt_potential(st)
    cfg = tmp_path / "mn3pt.cfg"
    M.write_spirit_config(cfg, reps)
    mn = np.flatnonzero(st.numbers == 25)
    L = M.A_MN3PT * reps
    rng = np.random.default_rng(2)
    with state.State(str(cfg), quiet=True) as p:
        pos = np.array(geometry.get_positions(p)).reshape(-1, 3)
        d, k = cKDTree(st.positions[mn] % L, boxsize=[L] * 3).query(pos % L)
        assert len(pos) == len(mn) and d.max() < 1e-6
        for _ in range(3):
            s = rng.normal(size=(len(pos), 3))
            s /= np.linalg.norm(s, axis=1)[:, None]
            system.get_spin_directions(p)[:] = s
            system.update_data(p)
            spins = st.spins.copy()
            spins[mn[k]] = s
            e = pot.compute(st.copy(spins=spins), forces=False, magnetic_forces=False).energy
            assert system.get_energy(p) * 1e-3 == pytest.approx(e, abs=2e-7)  # Spirit: float32 energies


def test_commensurate_starts_find_t1_on_a_larger_supercell():
    # fully random starts on 3x3x3 get stuck in 120° domains; starts repeated from the 1x1x1
    # magnetic cell (start_cell) reach T1
    st = M.mn3pt(reps=3)
    pot = M.mn3pt_potential(st)
    minima = ground_state(st, pot, starts=6, seed=0, workers=1, start_cell=(3, 3, 3), tmax=1e-6)
    order = M.triangular_order(minima[0].state)
    n_cells = 27
    assert minima[0].energy / n_cells == pytest.approx(6 * M.J1_MN3PT - 3 * M.K_MN3PT, abs=1e-7)
    assert order["nn_angle_min"] == pytest.approx(120.0, abs=0.01)
    assert order["nn_angle_max"] == pytest.approx(120.0, abs=0.01)
    assert order["normal_to_111"] < 0.01
