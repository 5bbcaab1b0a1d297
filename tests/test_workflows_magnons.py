"""Magnon workflow: bcc k-paths and supercells, classical LSWT against magnopy, and the LLG
precession frequency of a single spin wave against LSWT."""

from pathlib import Path

import numpy as np
import pytest

import spinlat as sl
from spinlat import units
from spinlat.errors import CellError, InputError
from spinlat.workflows import magnons as mg

DATA = Path(__file__).resolve().parent / "data" / "tb2j"
NEW = DATA / "bccFe_new_format.out"
TB2J_FE = Path(__file__).resolve().parents[2] / "shared" / "data" / "tb2j" / "bccFe" / "exchange.out"


@pytest.fixture(scope="module")
def fe():
    return sl.io.read_tb2j(NEW)


def test_g_gamma_is_ħγ_over_μB():
    assert mg.G_GAMMA == pytest.approx(2.0023, abs=1e-4)


def test_cubic_cell_of_rotated_primitive(fe):
    st, _ = fe
    cube = mg.bcc_cubic_cell(st.cell)
    a = (2 * abs(np.linalg.det(st.cell))) ** (1 / 3)
    assert np.linalg.det(cube) > 0
    np.testing.assert_allclose(cube @ cube.T, a**2 * np.eye(3), atol=2e-3 * a**2)  # the file's cell is rounded
    frac = cube @ np.linalg.inv(st.cell)
    np.testing.assert_allclose(frac, np.round(frac), atol=1e-9)
    # the cubic cell of the cubic cell is itself (up to order/sign of edges)
    np.testing.assert_allclose(np.abs(np.linalg.det(mg.bcc_cubic_cell(cube))), np.abs(np.linalg.det(cube)))
    with pytest.raises(CellError, match="neither a primitive bcc"):
        mg.bcc_cubic_cell(np.diag([2.0, 3.0, 4.0]))


def test_cubic_supercell_is_the_same_ferromagnet(fe):
    st, ham = fe
    big = mg.cubic_supercell(st, 3)
    assert len(big) == 2 * 27
    e = ham.compute(big).energy / len(big)
    assert e == pytest.approx(ham.compute(st).energy, rel=1e-12)
    np.testing.assert_allclose(big.moments, st.moments[0])


def test_kpath_points_are_commensurate_with_the_cubic_supercell(fe):
    st, _ = fe
    L = 4
    kp = mg.kpath_bcc(st.cell, L)
    big = mg.cubic_supercell(st, L)
    n = kp.qpoints @ big.cell.T / (2 * np.pi)  # integers for reciprocal vectors of the supercell
    np.testing.assert_allclose(n, np.round(n), atol=1e-9)
    assert kp.labels == ["Γ", "H", "N", "Γ", "P"]
    assert len(kp) == 1 + L + L // 2 + L // 2 + L // 2
    # standard orientation: H = 2π/a ẑ, N = (π/a)(1, 1, 0), P = (π/a)(1, 1, 1)
    a = 2.87
    k = mg.kpath_bcc(a, 2)
    np.testing.assert_allclose(k.qpoints[2], [0, 0, 2 * np.pi / a])
    np.testing.assert_allclose(k.qpoints[-1], [np.pi / a] * 3)
    np.testing.assert_allclose(np.diff(k.ticks), [2 * np.pi / a, np.sqrt(1.5) * 2 * np.pi / a,
                                                  np.sqrt(0.5) * 2 * np.pi / a, np.sqrt(0.75) * 2 * np.pi / a])
    with pytest.raises(InputError):
        mg.kpath_bcc(a, 4, path=("Γ", "X"))


def test_lswt_nearest_neighbour_analytic():
    """bcc with only nearest-neighbour J: J(q) = 8 J cos(qx a/2) cos(qy a/2) cos(qz a/2)."""
    a, J, mu = 2.87, 0.01, 2.2
    st = sl.State([[0, 0, 0]], [26], cell=0.5 * a * np.array([[-1, 1, 1], [1, -1, 1], [1, 1, -1]]), pbc=True,
                  moments=[mu])
    ham = sl.potentials.Heisenberg.from_neighbors(st, J=[J])
    kp = mg.kpath_bcc(a, 8)
    w = mg.lswt_dispersion(ham, kp.qpoints, mu)[:, 0]
    qx, qy, qz = (0.5 * a * kp.qpoints).T
    ref = mg.G_GAMMA * 8 * J * (1 - np.cos(qx) * np.cos(qy) * np.cos(qz)) / mu / units.MEV
    np.testing.assert_allclose(w, ref, rtol=1e-12, atol=1e-10)


def test_lswt_two_sublattices_equals_one():
    """The same bcc ferromagnet described by a two-atom cubic cell has the one-atom branch
    branch ω(q) and its copy folded by (2π/a)(1, 0, 0) as its two branches."""
    a, J, mu = 2.87, 0.01, 2.2
    prim = sl.State([[0, 0, 0]], [26], cell=0.5 * a * np.array([[-1, 1, 1], [1, -1, 1], [1, 1, -1]]), pbc=True,
                    moments=[mu])
    cub = sl.State([[0, 0, 0], [a / 2] * 3], [26, 26], cell=a * np.eye(3), pbc=True, moments=[mu, mu])
    h1 = sl.potentials.Heisenberg.from_neighbors(prim, J=[J, 0.3 * J])
    h2 = sl.potentials.Heisenberg.from_neighbors(cub, J=[J, 0.3 * J])
    q = np.random.default_rng(0).normal(size=(6, 3))
    g = np.array([2 * np.pi / a, 0, 0])  # a reciprocal vector of the cubic cell, not of bcc
    ref = np.sort(np.concatenate([mg.lswt_dispersion(h1, q, mu), mg.lswt_dispersion(h1, q + g, mu)], axis=1))
    np.testing.assert_allclose(mg.lswt_dispersion(h2, q, mu), ref, rtol=1e-10, atol=1e-9)


def test_lswt_rejects_anisotropic_exchange():
    with pytest.raises(InputError, match="isotropic"):
        mg.lswt_dispersion(DATA / "bccFe_dmi_new_format.out", np.zeros((1, 3)))
    _, ham = sl.io.read_tb2j(NEW)
    with pytest.raises(InputError, match="moment"):
        mg.lswt_dispersion(ham, np.zeros((1, 3)))


@pytest.mark.peers
def test_lswt_equals_magnopy_along_the_path(fe):
    """magnopy (quantum LSWT, spin S = μ/g_γ) and our classical formula agree to 1e-6; with
    magnopy's default S = μ/2 its energies are lower by exactly 2/g_γ."""
    pytest.importorskip("magnopy")
    st, ham = fe
    kp = mg.kpath_bcc(st.cell, 20)
    ours = mg.lswt_dispersion(NEW, kp.qpoints)
    theirs = mg.magnopy_dispersion(NEW, kp.qpoints)
    assert ours.shape == theirs.shape == (len(kp), 1)
    assert ours.max() > 400.0  # meV: bcc Fe magnons reach ~0.5 eV at P
    np.testing.assert_allclose(theirs, ours, rtol=1e-6, atol=1e-6 * ours.max())
    default = mg.magnopy_dispersion(NEW, kp.qpoints[1:4], spin_values=st.moments / 2.0)
    np.testing.assert_allclose(default / ours[1:4], 2.0 / mg.G_GAMMA, rtol=1e-9)
    # the old-layout file (converted on the fly) gives the same dispersion
    if TB2J_FE.exists():
        np.testing.assert_allclose(mg.magnopy_dispersion(TB2J_FE, kp.qpoints[:5]), theirs[:5], rtol=1e-6,
                                   atol=1e-6 * ours.max())


@pytest.mark.parametrize("frac", [(0.0, 0.0, 0.5), (0.5, 0.5, 0.0)])
def test_llg_spin_wave_precesses_at_the_lswt_frequency(fe, frac):
    """A small circular spin wave at a wave vector of a 2×2×2 cubic cell precesses, under
    undamped LLG, at the LSWT frequency (S(q, ω) peak)."""
    st, ham = fe
    big = mg.cubic_supercell(st, 2)
    q = np.asarray(frac) @ (2 * np.pi * np.linalg.inv(mg.bcc_cubic_cell(st.cell)).T)
    ref = mg.lswt_dispersion(ham, q[None], st.moments)[0, 0]
    w = mg.spin_wave_frequency(big, ham, q, steps=5000, dt=0.1, every=5, amplitude=0.01)
    assert w == pytest.approx(ref, rel=0.01)


# ------------------------------------------------------------------------------ k-paths of any lattice
def test_kpath_fcc_hcp_and_2d_labels_and_points():
    """ASE's standard paths and special points, turned into Cartesian wave vectors with the 2π:
    fcc |X| = 2π/a, |L| = √3 π/a, |K| = 3√2 π/(2a), |W| = √5 π/a; hcp |M| = 2π/(√3 a),
    |K| = 4π/(3a), |A| = π/c; the triangular (2D) lattice |M| = 2π/(√3 a), |K| = 4π/(3a) in plane."""
    from ase.build import bulk, graphene

    a = 3.52
    kp = mg.kpath(bulk("Ni", "fcc", a=a).cell, n=80)
    assert kp.labels == ["Γ", "X", "W", "K", "Γ", "L", "U", "W", "L", "K|U", "X"]
    at = {lab: np.linalg.norm(kp.qpoints[np.searchsorted(kp.distance, t)]) for lab, t in zip(kp.labels, kp.ticks)}
    assert at["X"] == pytest.approx(2 * np.pi / a) and at["L"] == pytest.approx(np.sqrt(3) * np.pi / a)
    assert at["K|U"] == pytest.approx(3 * np.sqrt(2) * np.pi / (2 * a)) and at["W"] == pytest.approx(np.sqrt(5) * np.pi / a)
    assert np.all(np.diff(kp.distance) >= 0) and 70 <= len(kp) <= 90
    # the break K|U: two points at one distance
    k = np.searchsorted(kp.distance, kp.ticks[9])
    assert kp.distance[k] == kp.distance[k + 1] and not np.allclose(kp.qpoints[k], kp.qpoints[k + 1])
    # fractions are coordinates in the reciprocal basis of the cell
    cell = bulk("Ni", "fcc", a=a).cell[:]
    np.testing.assert_allclose(kp.fractions @ (2 * np.pi * np.linalg.inv(cell).T), kp.qpoints, atol=1e-12)

    a, c = 2.5, 4.06
    kp = mg.kpath(bulk("Co", "hcp", a=a, c=c).cell, n=60)
    assert kp.labels == ["Γ", "M", "K", "Γ", "A", "L", "H", "A|L", "M|K", "H"]
    at = {lab: np.linalg.norm(kp.qpoints[np.searchsorted(kp.distance, t)]) for lab, t in zip(kp.labels, kp.ticks)}
    assert at["M"] == pytest.approx(2 * np.pi / (np.sqrt(3) * a))
    assert at["K"] == pytest.approx(4 * np.pi / (3 * a)) and at["A"] == pytest.approx(np.pi / c)

    g = sl.State.from_ase(graphene(a=2.46, vacuum=5.0))  # 2D: pbc (T, T, F)
    kp = mg.kpath(g, n=30)
    assert kp.labels == ["Γ", "M", "K", "Γ"]
    np.testing.assert_allclose(kp.qpoints[:, 2], 0.0)
    assert np.linalg.norm(kp.qpoints[np.searchsorted(kp.distance, kp.ticks[2])]) == pytest.approx(4 * np.pi / (3 * 2.46))
    chain = mg.kpath(np.diag([3.0, 0.0, 0.0]), pbc=[True, False, False], n=10)  # 1D, zero vectors elsewhere
    assert chain.labels == ["Γ", "X"] and chain.qpoints[-1] == pytest.approx([np.pi / 3.0, 0, 0])
    with pytest.raises(InputError, match="unknown special point 'Q'"):
        mg.kpath(bulk("Ni", "fcc", a=3.52).cell, path="GQ")


def test_kpath_commensurate_with_a_supercell():
    from ase.build import bulk

    prim = sl.State.from_ase(bulk("Ni", "fcc", a=3.52))
    kp = mg.kpath(prim, path="GXWKGL", commensurate=8)  # K = (3/8, 3/8, 3/4) needs multiples of 1/8
    big = prim.repeat(8)
    m = kp.qpoints @ big.cell.T / (2 * np.pi)
    np.testing.assert_allclose(m, np.round(m), atol=1e-9)
    assert len(kp) == 1 + 4 + 2 + 1 + 3 + 4  # steps: gcd of 8Δ on each segment (Γ-X: 8Δ = (4, 0, 4), ...)
    with pytest.raises(InputError, match="K = .* is not a wave vector of the \\[4, 4, 4\\] supercell"):
        mg.kpath(prim, path="GXWKGL", commensurate=4)


def test_lswt_on_fcc_and_triangular_paths_is_the_analytic_ferromagnet():
    """Nearest-neighbour ferromagnets along the ASE paths: fcc J(q) = 4J Σ_{i<j} cos(q_i a/2) cos(q_j a/2)
    (12 neighbours), the triangular lattice J(q) = 2J Σ_k cos(q·a_k) (6 neighbours): ħω at K is
    g_γ 9J/μ."""
    from ase.build import bulk

    J, mu, a = 0.01, 2.0, 3.52
    fcc = sl.State.from_ase(bulk("Ni", "fcc", a=a)).copy(moments=[mu])
    kp = mg.kpath(fcc, n=60)
    w = mg.lswt_dispersion(sl.potentials.Heisenberg.from_neighbors(fcc, J=[J]), kp.qpoints, mu)[:, 0]
    c = np.cos(0.5 * a * kp.qpoints)
    jq = 4 * J * (c[:, 0] * c[:, 1] + c[:, 1] * c[:, 2] + c[:, 2] * c[:, 0])
    np.testing.assert_allclose(w, mg.G_GAMMA * (12 * J - jq) / mu / units.MEV, rtol=1e-10, atol=1e-9)
    b = 2.5
    tri = sl.State([[0, 0, 0]], [26], cell=[[b, 0, 0], [-b / 2, b * np.sqrt(3) / 2, 0], [0, 0, 0]],
                   pbc=[True, True, False], moments=[mu])
    kp = mg.kpath(tri, n=40)
    w = mg.lswt_dispersion(sl.potentials.Heisenberg.from_neighbors(tri, J=[J]), kp.qpoints, mu)[:, 0]
    k_index = np.searchsorted(kp.distance, kp.ticks[kp.labels.index("K")])
    assert w[k_index] == pytest.approx(mg.G_GAMMA * 9 * J / mu / units.MEV, rel=1e-10)


def test_llg_spins_keeps_an_existing_trajectory_unless_told(fe, tmp_path):
    """Running the magnon sampling twice on one trajectory path: the second run is refused and
    the first run's frames stay; with overwrite=True it replaces them with the same frames."""
    st, ham = fe
    big = mg.cubic_supercell(st, 2)
    path = tmp_path / "magnons.h5"
    t1, s1, _ = mg.llg_spins(big, ham, 8, every=4, dt=0.5, trajectory=path)
    with pytest.raises(InputError, match="overwrite"):
        mg.llg_spins(big, ham, 8, every=4, dt=0.5, trajectory=path)
    with sl.io.Trajectory(path) as traj:
        assert np.array_equal(traj.array("spins"), s1)
    t2, s2, _ = mg.llg_spins(big, ham, 8, every=4, dt=0.5, trajectory=path, overwrite=True)
    assert np.array_equal(s2, s1) and np.array_equal(t2, t1)


# ------------------------------------------------------------------------------ analytic sc dispersion
@pytest.mark.parametrize("n", [(1, 0, 0), (1, 1, 0), (2, 2, 2), (3, 0, 0)])
@pytest.mark.parametrize("integrator", ["llg", "nve"])
def test_sc_ferromagnet_spin_wave_frequency_is_the_analytic_dispersion(n, integrator):
    """Nearest-neighbour sc ferromagnet, E = −J Σ_<ij> s_i·s_j (each pair once, DESIGN.md):
    a single circular spin wave of tilt θ precesses (positive sense about the magnetisation) at
    ω(q) = (γJ/(μ μB)) 2 Σ_α (1 − cos q_α a) · cos θ (the exact frequency of the uniformly tilted
    wave). Undamped LLG and frozen-lattice SpinLatticeNVE; energy and total spin conserved.
    The classical LSWT of spinlat (and magnopy's, when installed) give the θ → 0 value."""
    from spinlat.integrators import LLG, SpinLatticeNVE
    from spinlat.potentials import Heisenberg

    a, L, J, mu, theta, dt = 2.5, 6, 1e-3, 2.0, 0.01, 0.5
    unit = sl.State([[0, 0, 0]], [26], cell=np.eye(3) * a, pbc=True, moments=[mu])
    st = unit.repeat((L, L, L))
    ham = Heisenberg.from_neighbors(unit, J=[J])
    q = 2 * np.pi * np.array(n) / (L * a)
    w0 = units.GAMMA * J * 2 * np.sum(1 - np.cos(q * a)) / (mu * units.MU_B)  # rad/fs
    assert mg.lswt_dispersion(ham, q[None], [mu])[0, 0] * units.MEV / units.HBAR == pytest.approx(w0, rel=1e-12)
    s = st.copy(spins=mg.tilted_spin_wave(st, q, theta))
    e0, total0 = ham.compute(s).energy, s.spins.sum(axis=0)
    integ = LLG(dt) if integrator == "llg" else SpinLatticeNVE(dt)
    every = max(1, int(2 * np.pi / w0 / dt / 20))
    phase, t = [], []
    for k in range(40):
        s = integ.run(s, ham, every)
        t.append((k + 1) * every * dt)
        phase.append(np.angle(np.sum((s.spins[:, 0] + 1j * s.spins[:, 1]) * np.exp(1j * (s.positions @ q)))))
    w = np.polyfit(t, np.unwrap(phase), 1)[0]
    # the schemes' own phase error is O((ω dt)²) ≤ 2e-5 here
    assert w == pytest.approx(w0 * np.cos(theta), rel=3e-6 + (w0 * dt) ** 2)
    assert abs(ham.compute(s).energy - e0) < 1e-9 * abs(e0)
    np.testing.assert_allclose(s.spins.sum(axis=0), total0, atol=1e-8)


def test_sc_ferromagnet_lswt_equals_magnopy():
    pytest.importorskip("magnopy")
    from spinlat.potentials import Heisenberg
    from spinlat.workflows import lswt

    a, J, mu = 2.5, 1e-3, 2.0
    unit = sl.State([[0, 0, 0]], [26], cell=np.eye(3) * a, pbc=True, moments=[mu], spins=[[0, 0, 1.0]])
    ham = Heisenberg.from_neighbors(unit, J=[J])
    q = 2 * np.pi / a * np.array([[0.1, 0, 0], [0.25, 0.25, 0], [0.5, 0.5, 0.5], [0.3, 0.1, 0.2]])
    ours = mg.lswt_dispersion(ham, q, [mu])[:, 0]
    analytic = units.G_GAMMA * J * 2 * np.sum(1 - np.cos(q * a), axis=1) / mu / units.MEV
    np.testing.assert_allclose(ours, analytic, rtol=1e-12)
    np.testing.assert_allclose(lswt.magnopy_energies(unit, ham, q)[:, 0], analytic, rtol=1e-6)


def test_lswt_of_a_ferromagnet_that_is_no_minimum_warns():
    """Two sublattices of unequal moments (Fe 2.2, Co 1.6 μB) and a non-magnetic Pt in a triclinic
    cell: with ferromagnetic couplings the two LSWT codes agree (the isotropic formula and the
    general one about the ground state); with Fe-Co coupled antiparallel the ferromagnetic
    'dispersion' came out negative without a word — now a UserWarning naming it, while the
    general code (about the same, unstable, state) gives NaN."""
    from spinlat.workflows import lswt

    a = 2.9
    cell = np.array([[a, 0, 0], [0.3, a, 0], [0.2, 0.1, a * 1.1]])
    unit = sl.State([[0, 0, 0], cell.sum(axis=0) / 2, (cell[0] + cell[2]) / 2], ["Fe", "Co", "Pt"], cell=cell,
                    pbc=True, moments=[2.2, 1.6, 0.0], spins=[[0, 0, 1.0]] * 3)
    q = np.array([[0, 0, 0], [0.5, 0, 0], [0.3, 0.2, 0.1]]) @ (2 * np.pi * np.linalg.inv(cell).T)
    # shells 4-7: Fe-Co (2.50-2.77 Å); 8-9: Fe-Fe and Co-Co (2.90, 2.92 Å); 1-3 hold Pt
    fm = sl.potentials.Heisenberg.from_neighbors(unit, J=[0, 0, 0] + [0.01] * 4 + [0.004] * 2)
    np.testing.assert_allclose(mg.lswt_dispersion(fm, q, unit.moments), lswt.lswt_energies(unit, fm, q),
                               rtol=1e-10, atol=1e-9)
    afm = sl.potentials.Heisenberg.from_neighbors(unit, J=[0, 0, 0] + [-0.01] * 4 + [0.004] * 2)
    with pytest.warns(UserWarning, match=r"ferromagnetic state is not a minimum .* at 3 of 3 q-points"):
        w = mg.lswt_dispersion(afm, q, unit.moments)
    assert w.min() < -100.0
    assert np.isnan(lswt.lswt_energies(unit, afm, q)).all()
