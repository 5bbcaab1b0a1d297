"""Linear spin-wave theory about any ground state (spinlat.workflows.lswt): our classical LSWT and
magnopy's through the converter, against the analytic antiferromagnet with anisotropy gap, the
analytic DMI spiral, the ferromagnetic bcc Fe (TB2J) dispersion, and LLG dynamics."""

from pathlib import Path

import numpy as np
import pytest

import spinlat as sl
from spinlat import units
from spinlat.errors import InputError
from spinlat.potentials import CubicAnisotropy, Heisenberg, UniaxialAnisotropy, Zeeman
from spinlat.workflows import lswt
from spinlat.workflows import magnons as mg

NEW = Path(__file__).resolve().parent / "data" / "tb2j" / "bccFe_new_format.out"
A, MU = 2.87, 2.2


def bcc_afm(J=-0.01, K=0.001, field=None):
    """CsCl-type antiferromagnet of bcc: corner ↑, centre ↓ (8 antiparallel neighbours), easy axis z."""
    st = sl.State([[0, 0, 0], [A / 2] * 3], [26, 26], cell=A * np.eye(3), pbc=True, moments=[MU, MU],
                  spins=[[0, 0, 1], [0, 0, -1]])
    pot = Heisenberg.from_neighbors(st, J=[J]) + UniaxialAnisotropy(K, [0, 0, 1])
    if field is not None:
        pot = pot + Zeeman(field)
    return st, pot


def afm_analytic(q, J, K):
    """ħω(q) = (g_γ/μ) √((z|J| + 2K)² − (z|J| γ_q)²), z = 8, γ_q = Π cos(q_k a/2), meV."""
    gq = np.prod(np.cos(0.5 * A * np.asarray(q)), axis=1)
    return mg.G_GAMMA / MU * np.sqrt((8 * abs(J) + 2 * K) ** 2 - (8 * abs(J) * gq) ** 2) / units.MEV


def dmi_chain(n=8, J=0.01, a=3.0, mu=2.0):
    """Chain along x with J and Bloch DMI D ∥ bond: the ground state is a flat spiral in the yz
    plane turning by θ per bond, tan θ = D/J; D = J tan(2π/n) makes it commensurate with n sites."""
    D = J * np.tan(2 * np.pi / n)
    unit = sl.State([[0, 0, 0]], [26], cell=np.diag([a, 10.0, 10.0]), pbc=[True, False, False], moments=[mu])
    return unit, Heisenberg.from_neighbors(unit, J=[J], D=[D], dmi="bloch"), D


def spiral_analytic(k, J, D, a, mu, n):
    """Flat-spiral LSWT of the chain, unfolded: with Λ(k) = 2J cos ka + 2D sin ka (in-plane) and
    Λ_x(k) = 2J cos ka (out of plane), ħω(k) = (g_γ/μ) √{[Λ(Q) − Λ_x(k)] [Λ(Q) − ½(Λ(Q+k) + Λ(Q−k))]},
    Q = 2π/(n a) (the classical helimagnet result, e.g. Toth & Lake 2015, in the rotating frame)."""
    lam = lambda x: 2 * J * np.cos(x * a) + 2 * D * np.sin(x * a)  # noqa: E731
    Q = 2 * np.pi / (n * a)
    w2 = (lam(Q) - 2 * J * np.cos(k * a)) * (lam(Q) - 0.5 * (lam(Q + k) + lam(Q - k)))
    return mg.G_GAMMA / mu * np.sqrt(np.clip(w2, 0, None)) / units.MEV


@pytest.fixture(scope="module")
def spiral():
    n, J, a, mu = 8, 0.01, 3.0, 2.0
    unit, ham, D = dmi_chain(n, J, a, mu)
    big = unit.repeat((n, 1, 1))
    rng = np.random.default_rng(3)
    best = None
    for _ in range(3):
        st = sl.minimize(big.copy(spins=rng.normal(size=(n, 3))), ham, tmax=1e-10, max_steps=5000)
        e = ham.compute(st).energy / n
        if best is None or e < best[0]:
            best = (e, st)
    return dict(n=n, J=J, D=D, a=a, mu=mu, ham=ham, state=best[1], energy=best[0])


def test_spin_model_of_a_supercell_reproduces_the_energy():
    st, pot = bcc_afm(field=[0.1, 0.2, 1.0])
    big = st.repeat((2, 1, 1))
    big = big.copy(spins=np.random.default_rng(0).normal(size=(len(big), 3)))
    with pytest.raises(InputError, match="not a stationary point"):
        lswt.spin_model(big, pot)
    model = lswt.spin_model(st, pot, torque_tolerance=np.inf)  # a tilted field: not stationary, energies still exact
    assert model.energy() == pytest.approx(pot.compute(st).energy, rel=1e-12)
    s = np.random.default_rng(1).normal(size=(2, 3))
    s /= np.linalg.norm(s, axis=1)[:, None]
    per_cell = pot.compute(st.repeat(3).copy(spins=np.tile(s, (27, 1)))).energy / 27
    assert model.energy(s) == pytest.approx(per_cell, rel=1e-12)


def test_afm_with_easy_axis_anisotropy_is_the_analytic_dispersion():
    """Classical LSWT of the two-sublattice antiferromagnet: two degenerate branches
    ħω = (g_γ/μ)√((8|J| + 2K)² − (8|J|γ_q)²), gap (g_γ/μ)√(2K(16|J| + 2K)) at Γ."""
    J, K = -0.01, 0.001
    st, pot = bcc_afm(J, K)
    q = np.vstack([np.zeros(3), np.random.default_rng(0).normal(size=(8, 3)), [np.pi / A] * 3])
    ours = lswt.lswt_energies(st, pot, q)
    ref = afm_analytic(q, J, K)
    np.testing.assert_allclose(ours, np.stack([ref, ref], axis=1), rtol=1e-10, atol=1e-9)
    gap = mg.G_GAMMA / MU * np.sqrt(2 * K * (16 * abs(J) + 2 * K)) / units.MEV
    assert ours[0, 0] == pytest.approx(gap, rel=1e-12) and gap > 10.0  # meV
    # a field along the easy axis splits the branches by ± g_γ μB B
    B = 2.0
    st_b, pot_b = bcc_afm(J, K, field=[0, 0, B])
    split = lswt.lswt_energies(st_b, pot_b, q)
    zeeman = mg.G_GAMMA * units.MU_B * B / units.MEV
    np.testing.assert_allclose(split, np.stack([ref - zeeman, ref + zeeman], axis=1), rtol=1e-9, atol=1e-9)


def test_afm_without_anisotropy_has_goldstone_modes_and_a_rejected_unstable_state():
    st, pot = bcc_afm(-0.01, 0.0)
    w = lswt.lswt_energies(st, pot, np.zeros((1, 3)))
    assert np.all(np.abs(w) < 1e-5)
    # the ferromagnetic state of an antiferromagnet is stationary but not a minimum: NaN rows
    fm = st.copy(spins=[[0, 0, 1], [0, 0, 1]])
    assert np.all(np.isnan(lswt.lswt_energies(fm, pot, np.zeros((1, 3)))))


def test_general_lswt_is_the_ferromagnetic_formula_on_bcc_fe():
    """Full TB2J file: equal to the ferromagnetic formula wherever the ferromagnet is stable, NaN
    exactly where that formula goes negative (the file's partial shells make the ferromagnet
    unstable near Γ along one [110], see tests/test_workflows_curie.py)."""
    st, ham = sl.io.read_tb2j(NEW)
    kp = mg.kpath_bcc(st.cell, 12)
    ours, ref = lswt.lswt_energies(st, ham, kp.qpoints), mg.lswt_dispersion(ham, kp.qpoints, st.moments)
    unstable = ref[:, 0] < -1e-6
    assert 0 < unstable.sum() < 3
    np.testing.assert_array_equal(np.isnan(ours[:, 0]), unstable)
    np.testing.assert_allclose(ours[~unstable], ref[~unstable], rtol=1e-9, atol=1e-9)
    # and on the two-atom cubic cell: the one-atom branch and its fold by (2π/a)(1, 0, 0)
    cube = mg.cubic_supercell(st, 1)
    g = 2 * np.pi * np.linalg.inv(cube.cell).T[0]
    q = kp.qpoints[~unstable]
    ref = np.sort(np.concatenate([mg.lswt_dispersion(ham, q, st.moments),
                                  mg.lswt_dispersion(ham, q + g, st.moments)], axis=1))
    np.testing.assert_allclose(lswt.lswt_energies(cube, ham, q), ref, rtol=1e-9, atol=1e-8)


def test_dmi_spiral_ground_state_and_its_spin_waves(spiral):
    """sl.minimize finds the commensurate flat spiral (E = −√(J² + D²) per site, turning 2π/n per
    bond in the plane ⊥ D); our LSWT on the n-site cell equals the analytic spiral dispersion
    folded into the supercell zone, with the Goldstone zero at Γ."""
    s = spiral
    st, n, J, D = s["state"], s["n"], s["J"], s["D"]
    assert s["energy"] == pytest.approx(-np.hypot(J, D), rel=1e-10)
    np.testing.assert_allclose(st.spins[:, 0], 0.0, atol=1e-6)  # in the yz plane
    turn = np.arccos(np.clip(np.sum(st.spins * np.roll(st.spins, -1, axis=0), axis=1), -1, 1))
    np.testing.assert_allclose(turn, 2 * np.pi / n, atol=1e-5)
    q = np.linspace(0, 2 * np.pi / (n * s["a"]), 6)[:, None] * np.array([[1.0, 0, 0]])
    ours = lswt.lswt_energies(st, s["ham"], q)
    for row, k in zip(ours, q[:, 0]):
        ref = np.sort([spiral_analytic(k + 2 * np.pi * m / (n * s["a"]), J, D, s["a"], s["mu"], n) for m in range(n)])
        np.testing.assert_allclose(row, ref, rtol=1e-8, atol=1e-6)
    assert abs(ours[0, 0]) < 1e-4 and ours[0, 1] > 5.0


@pytest.mark.peers
def test_converter_energy_equals_magnopy_energy():
    """magnopy's classical energy of the converted model (DMI, anisotropy, field, non-collinear
    cell) equals spinlat's for random spins repeated in every cell, in meV."""
    magnopy = pytest.importorskip("magnopy")
    unit, ham, _ = dmi_chain(4)
    pot = ham + UniaxialAnisotropy(0.002, [0.3, 0.0, 1.0]) + Zeeman([0.5, -1.0, 2.0])
    big = unit.repeat((4, 1, 1))
    rng = np.random.default_rng(2)
    for _ in range(5):
        s = rng.normal(size=(4, 3))
        s /= np.linalg.norm(s, axis=1)[:, None]
        st = big.copy(spins=s)
        model = lswt.spin_model(st, pot, torque_tolerance=np.inf)  # energies need no stationary state
        assert len(model.i) == 4  # the chain's 4 bonds, the last across the boundary
        ours = pot.compute(st).energy / units.MEV
        assert model.energy() / units.MEV == pytest.approx(ours, rel=1e-12)
        theirs = magnopy.Energy(lswt.to_magnopy(model))(s)
        assert theirs == pytest.approx(ours, rel=1e-12, abs=1e-9)


@pytest.mark.peers
def test_magnopy_lswt_of_the_afm_with_anisotropy():
    pytest.importorskip("magnopy")
    J, K = -0.01, 0.001
    st, pot = bcc_afm(J, K)
    q = np.vstack([np.zeros(3), np.random.default_rng(4).normal(size=(8, 3))])
    w, im = lswt.magnopy_energies(st, pot, q, complex_parts=True)
    ref = afm_analytic(q, J, K)
    np.testing.assert_allclose(w, np.stack([ref, ref], axis=1), rtol=1e-10, atol=1e-9)
    assert np.abs(im).max() < 1e-9
    np.testing.assert_allclose(w, lswt.lswt_energies(st, pot, q), rtol=1e-10, atol=1e-9)


@pytest.mark.peers
def test_magnopy_lswt_of_the_dmi_spiral_is_real_positive_and_ours(spiral):
    pytest.importorskip("magnopy")
    s = spiral
    q = np.linspace(0, 2 * np.pi / (s["n"] * s["a"]), 6)[:, None] * np.array([[1.0, 0, 0]])
    w, im = lswt.magnopy_energies(s["state"], s["ham"], q, complex_parts=True)
    assert np.abs(im).max() < 1e-9 and w.min() > -1e-6  # real, non-negative
    assert abs(w[0, 0]) < 1e-4 and w[0, 1] > 5.0  # Goldstone zero at Γ only
    np.testing.assert_allclose(w, lswt.lswt_energies(s["state"], s["ham"], q), rtol=1e-7, atol=1e-4)


@pytest.mark.peers
def test_converted_tb2j_ferromagnet_equals_magnopys_own_tb2j_reader():
    """The converter on the bcc Fe TB2J Heisenberg and magnopy's own TB2J reader (both with
    S = μ/g_γ) give the same LSWT, and both equal spinlat's ferromagnetic formula to 1e-6."""
    pytest.importorskip("magnopy")
    st, ham = sl.io.read_tb2j(NEW)
    kp = mg.kpath_bcc(st.cell, 10)
    conv = lswt.magnopy_energies(st, ham, kp.qpoints)
    own = mg.magnopy_dispersion(NEW, kp.qpoints)
    ours = mg.lswt_dispersion(ham, kp.qpoints, st.moments)
    np.testing.assert_allclose(conv, own, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(conv, ours, rtol=1e-6, atol=1e-6 * ours.max())


def test_unsupported_terms_are_named():
    st, pot = bcc_afm()
    with pytest.raises(InputError, match="CubicAnisotropy"):
        lswt.spin_model(st, pot + CubicAnisotropy(0.001))
    with pytest.raises(InputError, match="no magnetic atom"):
        lswt.spin_model(st.copy(moments=[0.0, 0.0]), pot)


def test_llg_precession_of_an_afm_spin_wave_is_the_lswt_frequency():
    """Undamped LLG of the anisotropic antiferromagnet on a 4×4×4 cubic supercell, started from a
    small random deviation: the S(q, ω) peak at q = (2π/a)(¼, 0, 0) sits at the LSWT energy."""
    J, K = -0.01, 0.002
    st, pot = bcc_afm(J, K)
    big = st.repeat(4)
    rng = np.random.default_rng(5)
    s = big.spins + 0.02 * rng.normal(size=big.spins.shape)
    big = big.copy(spins=s / np.linalg.norm(s, axis=1)[:, None])
    q = np.array([[0.25 * 2 * np.pi / A, 0, 0]])
    ref = lswt.lswt_energies(st, pot, q)[0, 0]
    dt, every = 0.2, 5
    _, spins, _ = mg.llg_spins(big, pot, 6000, every=every, dt=dt)
    _, mev, sqw = sl.analysis.structure_factor(spins, big.positions, q, dt * every)
    assert mg.peak_energy(mev, sqw[0]) == pytest.approx(ref, rel=0.005)  # measured 3e-4
