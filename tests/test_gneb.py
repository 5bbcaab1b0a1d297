"""Geodesic nudged elastic band: analytic barriers, saddle Hessians, spin-lattice and mMACE paths,
and Spirit 2.2's GNEB on the same skyrmion collapse."""

import os
import signal
import warnings

import numpy as np
import pytest

import spinlat as sl
from conftest import EAM_FE
from spinlat.errors import InputError
from spinlat.interrupts import Terminated
from spinlat.potentials import EAM, BetheSlaterExchange, Heisenberg, Landau, UniaxialAnisotropy, Zeeman
from spinlat.transitions import geodesic_path, hermite_curve

MU_B = sl.units.MU_B


def _single_spin(spin=(0, 0, 1), moment=2.0):
    return sl.State([[0, 0, 0]], ["Fe"], moments=[moment], spins=[spin])


def _chain(n=4, a=2.5, moment=2.0):
    """Periodic ring of n spins along x (one atom per cell of the template)."""
    unit = sl.State([[0, 0, 0]], ["Fe"], cell=np.diag([a, 20.0, 20.0]), pbc=[True, False, False],
                    moments=[moment])
    return unit, unit.repeat((n, 1, 1))


def _tangent_basis(s):
    """Two orthonormal vectors ⊥ s (rows), per spin: (N, 2, 3)."""
    e = np.eye(3)[np.argmin(np.abs(s), axis=1)]
    u = np.cross(s, e)
    u /= np.linalg.norm(u, axis=1)[:, None]
    return np.stack([u, np.cross(s, u)], axis=1)


def fd_sphere_hessian(pot, st, h=1e-3):
    """Hessian of E on the product of spheres at ``st`` (2N × 2N, eV/rad²) by central differences of
    energies in exponential-map coordinates s_i(v) = cos|v| s_i + sin|v| v̂ (v in the tangent plane)."""
    n = len(st)
    basis = _tangent_basis(st.spins)

    def energy(v):
        v = v.reshape(n, 2)
        t = np.einsum("ia,iak->ik", v, basis)
        ang = np.linalg.norm(t, axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            dirn = np.where(ang[:, None] > 0, t / ang[:, None], 0.0)
        s = np.cos(ang)[:, None] * st.spins + np.sin(ang)[:, None] * dirn
        return pot.compute(st.copy(spins=s), forces=False, magnetic_forces=False).energy

    dim = 2 * n
    H = np.zeros((dim, dim))
    e0 = energy(np.zeros(dim))
    for a in range(dim):
        for b in range(a, dim):
            if a == b:
                v = np.zeros(dim)
                v[a] = h
                H[a, a] = (energy(v) - 2 * e0 + energy(-v)) / h**2
            else:
                vals = []
                for sa, sb in ((1, 1), (1, -1), (-1, 1), (-1, -1)):
                    v = np.zeros(dim)
                    v[a], v[b] = sa * h, sb * h
                    vals.append(energy(v))
                H[a, b] = H[b, a] = (vals[0] - vals[1] - vals[2] + vals[3]) / (4 * h**2)
    return H


def _monotonic_each_side(energies, saddle):
    e = np.asarray(energies)
    return bool(np.all(np.diff(e[:saddle + 1]) > 0) and np.all(np.diff(e[saddle:]) < 0))


# ------------------------------------------------------------------------------ single spin
def test_single_spin_barrier_in_opposing_field_is_analytic():
    # E(θ) = −K cos²θ + μ μB B cosθ (field B along −z, initial spin +z): saddle at cosθ = h,
    # h = μ μB B / (2K); forward barrier K(1 − h)², backward K(1 + h)²
    K, mu, B = 1e-3, 2.0, 3.0
    h = mu * MU_B * B / (2 * K)
    pot = UniaxialAnisotropy(K, [0, 0, 1]) + Zeeman([0, 0, -B])
    a, b = _single_spin((0, 0, 1), mu), _single_spin((0, 0, -1), mu)
    res = sl.gneb(a, b, pot, images=9, tol=1e-10)
    assert res.converged, res.reason
    assert res.climbing == res.saddle
    assert res.barrier == pytest.approx(K * (1 - h) ** 2, rel=1e-6)
    assert res.reverse_barrier == pytest.approx(K * (1 + h) ** 2, rel=1e-6)
    assert res.states[res.saddle].spins[0, 2] == pytest.approx(h, abs=1e-6)
    # the path is the great circle: length π, energies from compute, endpoints untouched
    assert res.reaction_coordinate[-1] == pytest.approx(np.pi, rel=1e-12)
    assert np.all(np.diff(res.reaction_coordinate) > 0)
    for st, e in zip(res.states, res.energies):
        assert pot.compute(st).energy == pytest.approx(e, abs=1e-15)
    assert np.array_equal(res.states[0].spins, a.spins) and np.array_equal(res.states[-1].spins, b.spins)
    assert _monotonic_each_side(res.energies, res.saddle)
    # the interpolated curve passes through the images and peaks at the saddle energy
    x, e = res.curve(10)
    assert np.allclose(x[::10], res.reaction_coordinate) and np.allclose(e[::10], res.energies)
    assert res.barrier_interpolated == pytest.approx(res.barrier, rel=1e-6)


def test_without_climbing_image_the_band_stays_below_the_saddle():
    K, mu, B = 1e-3, 2.0, 3.0
    h = mu * MU_B * B / (2 * K)
    pot = UniaxialAnisotropy(K, [0, 0, 1]) + Zeeman([0, 0, -B])
    res = sl.gneb(_single_spin((0, 0, 1)), _single_spin((0, 0, -1)), pot, images=8, climbing=False, tol=1e-9)
    assert res.converged and res.climbing is None
    exact = K * (1 - h) ** 2
    assert res.barrier < exact
    # equally spaced images (springs) along the great circle
    assert np.allclose(np.diff(res.reaction_coordinate), np.pi / 7, rtol=1e-6)
    # the Hermite curve with tangential slopes recovers the barrier between the images
    assert abs(res.barrier_interpolated - exact) < 0.1 * abs(res.barrier - exact)


# ------------------------------------------------------------------------- coherent chain
def test_chain_coherent_rotation_barrier_and_saddle_hessian():
    # ring of N spins, E = −J Σ s_i·s_{i+1} − K Σ s_z² + K2 Σ s_y² (hard axis y): for J λ₁ > 2K
    # (λ₁ = 2 − 2cos(2π/N)) coherent rotation through ±x is the minimum-energy path, barrier N K;
    # the saddle Hessian on the spheres has eigenvalues J λ_k − 2K (towards z) and J λ_k + 2K2
    # (towards y), λ_k = 2 − 2cos(2πk/N): exactly one negative, −2K
    n, J, K, K2 = 4, 0.010, 0.001, 0.0005
    unit, st = _chain(n)
    pot = Heisenberg.from_neighbors(unit, J=[J]) + UniaxialAnisotropy(K, [0, 0, 1]) + UniaxialAnisotropy(-K2, [0, 1, 0])
    a = st.copy(spins=np.tile([0, 0, 1.0], (n, 1)))
    b = st.copy(spins=np.tile([0, 0, -1.0], (n, 1)))
    res = sl.gneb(a, b, pot, images=11, tol=1e-10)
    assert res.converged, res.reason
    assert res.barrier == pytest.approx(n * K, rel=1e-9)
    sad = res.states[res.saddle]
    assert np.allclose(np.abs(sad.spins[:, 0]), 1.0, atol=1e-6)
    assert _monotonic_each_side(res.energies, res.saddle)
    assert res.reaction_coordinate[-1] == pytest.approx(np.pi * np.sqrt(n), rel=1e-9)
    ev = np.linalg.eigvalsh(fd_sphere_hessian(pot, sad))
    lam = 2 - 2 * np.cos(2 * np.pi * np.arange(n) / n)
    expected = np.sort(np.concatenate([J * lam - 2 * K, J * lam + 2 * K2]))
    assert np.sum(ev < 0) == 1
    assert np.allclose(ev, expected, atol=1e-7)


def test_domain_wall_path_of_a_long_chain_beats_coherent_rotation():
    # the same ring with weak exchange (J λ₁ < 2K): the band leaves coherent rotation for a
    # non-uniform path with a lower saddle, which still has exactly one unstable mode
    n, J, K, K2 = 8, 0.002, 0.001, 0.0005
    unit, st = _chain(n)
    pot = Heisenberg.from_neighbors(unit, J=[J]) + UniaxialAnisotropy(K, [0, 0, 1]) + UniaxialAnisotropy(-K2, [0, 1, 0])
    rng = np.random.default_rng(0)
    a = st.copy(spins=np.tile([0, 0, 1.0], (n, 1)))
    b = st.copy(spins=np.tile([0, 0, -1.0], (n, 1)))
    S, R, MU = geodesic_path(a, b, 12)
    S[1:-1] += 0.02 * rng.normal(size=S[1:-1].shape)  # break the symmetry of the coherent band
    path = [st.copy(spins=s) for s in S]
    res = sl.gneb(a, b, pot, path=path, tol=1e-8, max_iterations=5000)
    assert res.converged, res.reason
    assert res.barrier < 0.9 * n * K
    assert _monotonic_each_side(res.energies, res.saddle)
    ev = np.linalg.eigvalsh(fd_sphere_hessian(pot, res.states[res.saddle]))
    assert np.sum(ev < -1e-7) == 1


def test_mn3pt_reversal_goes_through_the_other_chirality():
    # Mn3Pt model (spinlat.workflows.mn3pt), one cell: T1 (s_X = n_X) → its time reverse. With
    # |J1| ≫ K the 120° triad turns rigidly: a rotation R by ψ about the easy axis n_A gives
    # E − E_T1 = K [3 − 1 − 2((3 cos ψ + 1)/4)²] per cell, highest (2K) at cos ψ = −1/3 and a
    # minimum 1.5K at ψ = π, the opposite vector chirality (s_A = n_A, s_B = n_C, s_C = n_B), whose
    # in-plane rotations cost nothing: a flat intermediate valley that L-BFGS alone stalls in
    from spinlat.workflows import mn3pt as M

    st = M.mn3pt(reps=1)
    pot = M.mn3pt_potential(st)
    axes = M.mn3pt_local_axes(st)
    mn = st.moments > 0
    t1 = st.copy(spins=np.where(mn[:, None], axes, st.spins))
    res = sl.gneb(t1, t1.copy(spins=np.where(mn[:, None], -axes, st.spins)), pot, images=13, tol=1e-5,
                  max_iterations=3000)
    assert res.converged, res.reason
    K = M.K_MN3PT
    assert res.barrier == pytest.approx(2 * K, rel=5e-3)  # corrections O(K/|J1|) to the rigid limit
    e = res.energies - res.energies[0]
    valley = int(np.argmin(e[3:-3])) + 3  # the band passes the opposite-chirality valley ...
    assert 1.3 * K < e[valley] < 1.55 * K
    assert e[valley] < e[valley - 2] and e[valley] < e[valley + 2]  # ... between two barriers


def test_fire_reaches_the_same_saddle():
    K, mu, B = 1e-3, 2.0, 3.0
    h = mu * MU_B * B / (2 * K)
    pot = UniaxialAnisotropy(K, [0, 0, 1]) + Zeeman([0, 0, -B])
    res = sl.gneb(_single_spin((0, 0, 1)), _single_spin((0, 0, -1)), pot, images=7, tol=1e-9, method="fire",
                  max_iterations=5000)
    assert res.converged, res.reason
    assert res.barrier == pytest.approx(K * (1 - h) ** 2, rel=1e-6)


# ----------------------------------------------------------------------- moment magnitudes
def test_magnitudes_move_along_the_path_to_the_analytic_saddle():
    # one moment m = μ s: E = aμ² + bμ⁴ − K (s·z)² + μB μ B (s·z) (field along −z); the saddle
    # solves ∂E/∂θ = ∂E/∂μ = 0 with the polar angle θ of s (one unstable direction)
    from scipy.optimize import brentq

    a_, b_, K, B = -0.1, 0.01, 0.01, 50.0
    pot = Landau(a_, b_) + UniaxialAnisotropy(K, [0, 0, 1]) + Zeeman([0, 0, -B])
    mu0 = np.sqrt(-a_ / (2 * b_))

    def mu_at(c):  # ∂E/∂μ = 2aμ + 4bμ³ + μB B c = 0 near the Landau minimum
        return brentq(lambda m: 2 * a_ * m + 4 * b_ * m**3 + MU_B * B * c, 0.5 * mu0, 1.5 * mu0)

    def energy(c, m):
        return a_ * m**2 + b_ * m**4 - K * c**2 + MU_B * m * B * c

    # ∂E/∂θ = −sinθ (2Kc − μB μ B) = 0 → c = μB μ(c) B / (2K), solved by fixed-point iteration
    c = 0.0
    for _ in range(100):
        c = MU_B * mu_at(c) * B / (2 * K)
    e_saddle = energy(c, mu_at(c))
    ends = [mu_at(1.0), mu_at(-1.0)]
    a = sl.State([[0, 0, 0]], ["Fe"], moments=[ends[0]], spins=[[0, 0, 1]])
    b = sl.State([[0, 0, 0]], ["Fe"], moments=[ends[1]], spins=[[0, 0, -1]])
    res = sl.gneb(a, b, pot, images=9, magnitudes=True, tol=1e-10, max_iterations=5000)
    assert res.converged, res.reason
    assert res.barrier == pytest.approx(e_saddle - energy(1.0, ends[0]), rel=1e-8)
    sad = res.states[res.saddle]
    assert sad.moments[0] == pytest.approx(mu_at(c), abs=1e-8)
    assert sad.spins[0, 2] == pytest.approx(c, abs=1e-7)
    assert set(res.max_force) == {"spins", "magnitudes"}
    # Hessian in (θ, μ) (rad, μB; w_m = 1) at the saddle, and the azimuth's zero mode
    mu, th = mu_at(c), np.arccos(c)
    h = np.array([[2 * K * np.cos(2 * th) - MU_B * mu * B * c, -MU_B * B * np.sin(th)],
                  [-MU_B * B * np.sin(th), 2 * a_ + 12 * b_ * mu**2]])
    values, modes = res.saddle_modes(pot, k=3)
    assert np.allclose(values, np.sort(np.append(np.linalg.eigvalsh(h), 0.0)), rtol=0, atol=1e-7)
    assert values[0] < 0 and set(modes[0]) == {"spins", "magnitudes"}


# ------------------------------------------------------------------------- spin-lattice path
@pytest.fixture(scope="module")
def fe4_cluster():
    """Fe tetrahedron (EAM + Bethe-Slater exchange + strong uniaxial anisotropy): the
    ferromagnet and the state with one spin reversed, both relaxed in spins and positions."""
    pot = EAM(EAM_FE) + BetheSlaterExchange(3.4, 0.02726, 0.2171, 1.841) + UniaxialAnisotropy(0.06, [0, 0, 1])
    pos = [[0, 0, 0], [2.4, 0, 0], [1.2, 2.078, 0], [1.2, 0.693, 1.96]]
    st = sl.State(pos, ["Fe"] * 4, moments=[2.2] * 4, spins=[[0, 0, 1]] * 4)
    kw = dict(spins=True, positions=True, fmax=1e-7, tmax=1e-9, max_steps=5000)
    a = sl.minimize(st, pot, **kw)
    s = a.spins.copy()
    s[3] = [0.01, 0.01, -1]
    b = sl.minimize(a.copy(spins=s), pot, **kw)
    assert b.spins[3, 2] < -0.99 and np.all(b.spins[:3, 2] > 0.99)
    return pot, a, b


def test_positions_move_with_the_spins_and_lower_the_barrier(fe4_cluster):
    pot, a, b = fe4_cluster
    tol = 1e-6
    res = sl.gneb(a, b, pot, images=10, positions=True, tol=tol, max_iterations=3000)
    assert res.converged, res.reason
    assert set(res.max_force) == {"spins", "positions"}
    assert max(res.max_force.values()) <= tol and np.all(res.image_forces <= tol)
    # the climbing image is a saddle of E(r, s): every force and torque vanishes there
    sad = res.states[res.saddle]
    ev = pot.compute(sad)
    assert ev.energy == pytest.approx(res.energies[res.saddle], abs=1e-12)
    assert np.max(np.linalg.norm(ev.forces, axis=1)) <= tol
    assert np.max(np.linalg.norm(sl.potentials.spin_torques(sad, ev), axis=1)) <= tol
    assert _monotonic_each_side(res.energies, res.saddle)
    # a first-order saddle of E(r, s): one unstable mode; the free cluster's translations and
    # rotations of the positions alone (the anisotropy acts on spins) and the turn of all spins
    # about the anisotropy axis are zero modes
    values, modes = res.saddle_modes(pot, k=9)
    assert values[0] < -1e-3 and np.all(np.abs(values[1:8]) < 1e-5) and values[8] > 1e-3
    assert set(modes[0]) == {"spins", "positions"}
    # the atoms move along the path, the endpoints stay as given
    assert np.max(np.linalg.norm(sad.positions - a.positions, axis=1)) > 1e-3
    assert np.array_equal(res.states[0].positions, a.positions)
    assert np.array_equal(res.states[-1].positions, b.positions)
    # with the lattice frozen at the initial positions the saddle is higher: relaxing more
    # degrees of freedom can only lower the highest point of the best path
    b_frozen = sl.minimize(b.copy(positions=a.positions), pot, tmax=1e-9)
    frozen = sl.gneb(a, b_frozen, pot, images=10, tol=tol)
    assert frozen.converged
    assert res.energies[res.saddle] < frozen.energies[frozen.saddle] - 1e-4


def test_mmace_path_with_magnitudes_and_positions_stays_finite():
    pytest.importorskip("mace")
    import torch
    from mmace._tiny import TINY

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny graphs: one thread avoids oversubscription
    try:
        _mmace_path(TINY)
    finally:
        torch.set_num_threads(threads)


def _mmace_path(tiny):
    model = sl.potentials.MagneticMACE.create(elements=["Fe"], soc=True, seed=0, **tiny)
    pos = [[0, 0, 0], [2.3, 0, 0], [1.15, 2.0, 0]]
    a = sl.State(pos, ["Fe"] * 3, moments=[2.2, 2.0, 2.1], spins=[[0, 0, 1]] * 3)
    b = a.copy(spins=[[0, 0, 1], [1, 0, 0], [0, 0, -1]], moments=[2.0, 2.3, 1.9],
               positions=np.array(pos) + [[0, 0, 0], [0.05, 0, 0], [0, -0.05, 0.02]])
    with pytest.warns(UserWarning, match="endpoint is not a local minimum"):  # the ends are on slopes
        res = sl.gneb(a, b, model, images=5, magnitudes=True, positions=True, tol=1e-6, max_iterations=3)
    assert not res.converged and res.iterations == 3
    assert np.all(np.isfinite(res.energies)) and np.all(np.isfinite(res.reaction_coordinate))
    for st in res.states:
        assert np.all(np.isfinite(st.positions)) and np.all(st.moments > 0)
        assert np.allclose(np.linalg.norm(st.spins, axis=1), 1.0, atol=1e-12)
    for k, end in ((0, a), (-1, b)):
        st = res.states[k]
        assert np.array_equal(st.positions, end.positions) and np.array_equal(st.moments, end.moments)
        assert np.array_equal(st.spins, end.spins)
    assert set(res.max_force) == {"spins", "positions", "magnitudes"}
    assert res.forces.shape == (5, 3, 3) and res.magnetic_forces.shape == (5, 3, 3)


# ---------------------------------------------------------------------------- pieces and I/O
def test_geodesic_path_is_great_circle_and_linear_elsewhere():
    rng = np.random.default_rng(3)
    a = sl.State(rng.normal(size=(5, 3)) * 3, ["Fe"] * 5, moments=[2.0] * 5, spins=rng.normal(size=(5, 3)),
                 validate=False)
    b = a.copy(spins=rng.normal(size=(5, 3)), moments=[2.5] * 5, positions=a.positions + 0.1)
    S, R, MU = geodesic_path(a, b, 7, spins=True, positions=True, magnitudes=True)

    def angle(u, v):
        return np.arctan2(np.linalg.norm(np.cross(u, v), axis=1), np.einsum("ij,ij->i", u, v))

    ang = angle(a.spins, b.spins)
    for k in range(7):
        t = k / 6
        assert np.allclose(angle(a.spins, S[k]), t * ang, atol=1e-12)
        assert np.allclose(angle(S[k], b.spins), (1 - t) * ang, atol=1e-12)
        # on the great circle through both: S[k] lies in the plane of a and b
        assert np.allclose(np.einsum("ij,ij->i", S[k], np.cross(a.spins, b.spins)), 0, atol=1e-12)
        assert np.allclose(R[k], a.positions + 0.1 * t) and np.allclose(MU[k], 2.0 + 0.5 * t)
    # antiparallel spins turn through a fixed perpendicular axis (z turns through +x)
    S, _, _ = geodesic_path(_single_spin((0, 0, 1)), _single_spin((0, 0, -1)), 3)
    assert np.allclose(S[1, 0], [1, 0, 0], atol=1e-15)


def test_positions_use_the_minimum_image():
    st = sl.State([[0.1, 0, 0]], ["Fe"], cell=np.eye(3) * 5, pbc=True, moments=[2.0])
    far = st.copy(positions=[[4.9, 0, 0]])
    _, R, _ = geodesic_path(st, far, 3, spins=False, positions=True)
    # through the boundary (0.2 Å), not across the cell (4.8 Å); the endpoint stays as given
    assert np.allclose(R[:, 0, 0], [0.1, 0.0, 4.9], atol=1e-14)


def test_hermite_curve_is_exact_for_cubics():
    x = np.array([0.0, 0.7, 1.5, 2.0])
    f = lambda t: 1 - 2 * t + 0.5 * t**2 - 0.3 * t**3  # noqa: E731
    df = lambda t: -2 + t - 0.9 * t**2  # noqa: E731
    xs, es = hermite_curve(x, f(x), df(x), 17)
    assert np.allclose(es, f(xs), atol=1e-14)


def test_result_writes_trajectory_and_extxyz(tmp_path):
    K, B = 1e-3, 3.0
    pot = UniaxialAnisotropy(K, [0, 0, 1]) + Zeeman([0, 0, -B])
    res = sl.gneb(_single_spin((0, 0, 1)), _single_spin((0, 0, -1)), pot, images=5, tol=1e-8)
    res.write(tmp_path / "path.h5", potential=pot)
    with sl.io.Trajectory(tmp_path / "path.h5") as tr:
        assert len(tr) == 5
        assert np.allclose(tr["potential_energy"], res.energies)
        assert np.allclose(tr["spins"], [s.spins for s in res.states])
        meta = tr.attrs["metadata"]["gneb"]
        assert meta["saddle"] == res.saddle and np.allclose(meta["reaction_coordinate"], res.reaction_coordinate)
    sl.io.write_extxyz(tmp_path / "path.extxyz", res.to_atoms())
    back = sl.io.read_extxyz(tmp_path / "path.extxyz")
    assert [at.info["energy"] for at in back] == pytest.approx(list(res.energies), abs=1e-15)
    assert [at.info["image"] for at in back] == list(range(5))


def test_bad_input_is_named():
    pot = UniaxialAnisotropy(1e-3, [0, 0, 1])
    a, b = _single_spin((0, 0, 1)), _single_spin((0, 0, -1))
    with pytest.raises(InputError, match="images"):
        sl.gneb(a, b, pot, images=2)
    with pytest.raises(InputError, match="nothing moves"):
        sl.gneb(a, b, pot, spins=False)
    with pytest.raises(InputError, match="spins=False"):
        sl.gneb(a, b, pot, spins=False, positions=True)
    with pytest.raises(InputError, match="positions=False"):
        sl.gneb(a, b.copy(positions=[[0.5, 0, 0]]), pot)
    with pytest.raises(InputError, match="magnitudes=False"):
        sl.gneb(a, b.copy(moments=[2.5]), pot)
    with pytest.raises(InputError, match="does not depend on moment magnitudes"):
        sl.gneb(a, b, pot, magnitudes=True)
    with pytest.raises(InputError, match="magnetic in initial but not in final"):
        sl.gneb(a, b.copy(moments=[0.0]), pot)
    with pytest.raises(InputError, match="atoms"):
        sl.gneb(a, sl.State([[0, 0, 0], [3, 0, 0]], ["Fe"] * 2, moments=[2, 2]), pot)
    with pytest.raises(InputError, match="weights"):
        sl.gneb(a, b, pot, weights={"position": 1.0})
    with pytest.raises(InputError, match="tol"):
        sl.gneb(a, b, pot, tol=-1)
    with pytest.raises(InputError, match="EAM"):
        sl.gneb(a, b, EAM(EAM_FE))
    with pytest.raises(InputError, match=r"path\[0\] must be a spinlat.State, got Atoms: convert it with "
                                         r"spinlat.State.from_ase"):
        sl.gneb(None, None, pot, path=[st.to_ase() for st in (a, a, b)])
    # cells: which vector and component differ, and by how much (was "different cells or periodicity")
    box = sl.State([[0, 0, 0]], ["Fe"], cell=np.eye(3) * 2.87, pbc=True, moments=[2.0], spins=[[0, 0, 1]])
    strained = sl.State([[0, 0, 0]], ["Fe"], cell=np.diag([2.87, 2.87, 3.1]), pbc=True, moments=[2.0],
                        spins=[[0, 0, -1]])
    with pytest.raises(InputError, match=r"different cells \(cell vector 2, component z: 2.87 Å and 3.1 Å\).*"
                                         r"bain_path"):
        sl.gneb(box, strained, pot)
    with pytest.raises(InputError, match=r"initial is periodic along \[True, True, True\] but final along "
                                         r"\[True, True, False\]"):
        sl.gneb(box, sl.State([[0, 0, 0]], ["Fe"], cell=np.eye(3) * 2.87, pbc=[True, True, False], moments=[2.0],
                              spins=[[0, 0, -1]]), pot)


# ------------------------------------------------------------------------------------ peers
@pytest.mark.peers
def test_skyrmion_collapse_barrier_matches_spirit():
    pytest.importorskip("spirit")
    from spinlat.workflows import skyrmion as sk

    L, M, tol = 20, 12, 1e-5
    pars = sk.spirit_parameters()
    pot = sk.skyrmion_potential(*pars)
    sky, fm = sk.relaxed_skyrmion(L, pot)
    assert np.sum(sky.spins[:, 2] < 0) > 10
    S, _, _ = geodesic_path(sky, fm, M)
    res = sl.gneb(sky, fm, pot, images=M, tol=tol, climb_after=10 * tol)
    assert res.converged, res.reason
    sp = sk.spirit_gneb(S, L, *pars, tol=tol)
    assert np.allclose(sp["positions"], fm.positions)  # the same site order
    assert sp["max_torque"] < tol and sp["climbing"] == res.saddle
    e_sp = np.array([pot.compute(fm.copy(spins=s), forces=False).energy for s in sp["spins"]])
    b_sp = e_sp[sp["climbing"]] - e_sp[0]
    assert res.barrier == pytest.approx(b_sp, rel=1e-5)  # Spirit's saddle in double precision
    assert res.barrier == pytest.approx(sp["energies"][sp["climbing"]] - sp["energies"][0], rel=1e-3)  # float32
    # the same saddle configuration (the collapsing skyrmion core)
    cosang = np.einsum("ij,ij->i", res.states[res.saddle].spins, sp["spins"][sp["climbing"]])
    assert np.min(cosang) > np.cos(0.02)
    assert _monotonic_each_side(res.energies, res.saddle)


def test_barrierless_path_gets_no_climbing_image():
    # downhill all the way (field along −z, no anisotropy): no interior maximum, no climbing image,
    # the barrier is 0
    pot = Zeeman([0, 0, -1.0])
    with pytest.warns(UserWarning, match="endpoint is not a local minimum"):  # the ends are on slopes
        res = sl.gneb(_single_spin((0, 0.1, 1)), _single_spin((0, -0.1, -1)), pot, images=7, tol=1e-9)
    assert res.converged and res.climbing is None and "no interior energy maximum, so no climbing" in res.reason
    assert res.saddle == 0 and res.barrier == 0.0
    assert np.all(np.diff(res.energies) < 0)


def test_a_band_stopped_before_climbing_does_not_claim_it_has_no_maximum():
    # stopped at max_iterations before the climbing image started, the reason read "no interior
    # energy maximum, so no climbing image" beside a band with a clear interior maximum
    unit, st = _chain(8)
    pot = Heisenberg.from_neighbors(unit, J=[0.002]) + UniaxialAnisotropy(1e-3, [0, 0, 1])
    a, b = st.copy(spins=np.tile([0, 0, 1.0], (8, 1))), st.copy(spins=np.tile([0, 0, -1.0], (8, 1)))
    res = sl.gneb(a, b, pot, images=9, noise=0.05, seed=1, max_iterations=3)
    assert res.climbing is None and 0 < res.saddle < 8 and res.energies[res.saddle] > res.energies[0] + 5e-3
    assert res.reason.startswith("max_iterations reached; no climbing image yet (it starts once the largest "
                                 "perpendicular force")
    assert "no interior energy maximum" not in res.reason


def test_starting_path_and_endpoint_relaxation():
    K, B = 1e-3, 3.0
    pot = UniaxialAnisotropy(K, [0, 0, 1]) + Zeeman([0, 0, -B])
    a, b = _single_spin((0.05, 0, 1)), _single_spin((0.05, 0.02, -1))  # not quite minima
    res = sl.gneb(a, b, pot, images=7, tol=1e-9, relax_endpoints=True)
    assert np.allclose(np.abs(res.states[0].spins[0, 2]), 1, atol=1e-9)
    assert np.allclose(np.abs(res.states[-1].spins[0, 2]), 1, atol=1e-9)
    again = sl.gneb(None, None, pot, path=res.states, tol=1e-9)
    assert again.converged and again.iterations <= 2
    assert again.barrier == pytest.approx(res.barrier, rel=1e-9)
    with pytest.raises(InputError, match="differs from the first image"):
        sl.gneb(a, None, pot, path=res.states)


# ------------------------------------------------------------------- kernels vs NumPy references
def test_band_kernels_match_numpy_references():
    from spinlat.transitions import _band_forces, _block_max, _rotate_images, _rotation_vectors, _spin_logs

    rng = np.random.default_rng(7)
    m, n = 6, 5
    S = rng.normal(size=(m, n, 3))
    S /= np.linalg.norm(S, axis=2)[..., None]
    mag = np.array([True, True, False, True, True])
    # great-circle log maps: length = angle, direction = the great circle towards the next image
    fwd, bwd, th2 = np.empty((m - 1, n, 3)), np.empty((m - 1, n, 3)), np.zeros(m - 1)
    _spin_logs(S, mag, fwd, bwd, th2)
    a, b = S[:-1], S[1:]
    ang = np.arccos(np.clip(np.einsum("kij,kij->ki", a, b), -1, 1)) * mag
    t = b - np.einsum("kij,kij->ki", a, b)[..., None] * a
    ref = t / np.linalg.norm(t, axis=2)[..., None] * ang[..., None]
    assert np.allclose(fwd, ref, atol=1e-12) and np.allclose(th2, np.sum(ang**2, axis=1))
    assert np.allclose(np.linalg.norm(bwd, axis=2), ang) and np.allclose(np.einsum("kij,kij->ki", bwd, b), 0)
    # rotation vectors s × v move s along v; rotating by them reaches the next image
    theta = np.empty_like(fwd)
    _rotation_vectors(np.ascontiguousarray(a), fwd, theta)
    assert np.allclose(theta, np.cross(a, fwd))
    moved = a.copy()
    _rotate_images(moved, theta)
    assert np.allclose(moved[:, mag], b[:, mag], atol=1e-12)
    # band forces: improved tangent, perpendicular force, springs, climbing image
    size = 3 * n
    fw, bw = rng.normal(size=(m - 1, size)), rng.normal(size=(m - 1, size))
    dist, E, G = rng.uniform(0.5, 1, m - 1), np.array([0.0, 1.0, 2.0, 1.5, 1.7, 0.2]), rng.normal(size=(m, size))
    F, T, P = np.zeros((m, size)), np.empty((m, size)), np.zeros((m, size))
    _band_forces(fw, bw, dist, E, G, 2, 0.3, F, T, P)
    for k in range(1, m - 1):
        tp, tm = fw[k], -bw[k - 1]
        ep, e0, em = E[k + 1], E[k], E[k - 1]
        if ep > e0 > em:
            tau = tp
        elif ep < e0 < em:
            tau = tm
        else:
            big, small = max(abs(ep - e0), abs(em - e0)), min(abs(ep - e0), abs(em - e0))
            tau = tp * big + tm * small if ep > em else tp * small + tm * big
        tau = tau / np.linalg.norm(tau)
        assert np.allclose(T[k], tau)
        perp = -(G[k] - (G[k] @ tau) * tau)
        assert np.allclose(P[k], perp)
        want = -G[k] + 2 * (G[k] @ tau) * tau if k == 2 else perp + 0.3 * (dist[k] - dist[k - 1]) * tau
        assert np.allclose(F[k], want)
    assert np.allclose(T[0], fw[0] / np.linalg.norm(fw[0])) and np.allclose(T[-1], -bw[-1] / np.linalg.norm(bw[-1]))
    out = np.zeros((m, 2))
    _block_max(F, 0, 3 * n, 3, out, 0)
    _block_max(F, 0, 3 * n, 1, out, 1)
    assert np.allclose(out[:, 0], np.linalg.norm(F.reshape(m, n, 3), axis=2).max(axis=1))
    assert np.allclose(out[:, 1], np.abs(F).max(axis=1))


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
@pytest.mark.usefixtures("default_signal_handlers")
def test_an_interrupted_band_is_kept_and_continues_to_the_same_saddle(signum):
    """Ctrl-C or a batch scheduler's SIGTERM during a long GNEB lost every iteration. Now the
    signal is held back to the end of the iteration under way and raised with the band so far
    (``partial_result``), which starts a new call as ``path``."""
    n, J, K, K2 = 4, 0.010, 0.001, 0.0005
    unit, st = _chain(n)
    pot = Heisenberg.from_neighbors(unit, J=[J]) + UniaxialAnisotropy(K, [0, 0, 1]) + UniaxialAnisotropy(-K2, [0, 1, 0])
    a = st.copy(spins=np.tile([0, 0, 1.0], (n, 1)))
    b = st.copy(spins=np.tile([0, 0, -1.0], (n, 1)))
    seen = []

    def stop_at_5(info):
        seen.append(info["iteration"])
        if info["iteration"] == 5:
            os.kill(os.getpid(), signum)  # held back: this iteration still finishes
            seen.append("after the signal")

    kind = Terminated if signum == signal.SIGTERM else KeyboardInterrupt
    with pytest.raises(kind) as info:
        sl.gneb(a, b, pot, images=11, tol=1e-10, noise=0.3, seed=1, callback=stop_at_5)  # 109 iterations
    assert seen == [0, 1, 2, 3, 4, 5, "after the signal"]
    part = info.value.partial_result
    assert isinstance(part, sl.transitions.GNEBResult) and part.reason.startswith("interrupted")
    assert part.iterations == 5 and not part.converged and len(part.states) == 11
    for s, e in zip(part.states, part.energies):  # the band as it stood, energies its own
        assert pot.compute(s).energy == pytest.approx(e, abs=1e-14)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    res = sl.gneb(None, None, pot, path=part.states, tol=1e-10)
    assert res.converged and res.barrier == pytest.approx(n * K, rel=1e-9)


def test_a_restart_from_a_band_file_trajectory_or_result_is_refused_with_other_parameters(tmp_path):
    """gneb(path=...) took a list of States only, so a Python restart could not check the band's
    parameters (the CLI did, for path.h5). Now a band file, an open Trajectory or a GNEBResult
    continues the same band: the same potential and band parameters go on (same barrier), another
    spring constant, weights, moving part or potential parameter is refused, named."""
    K, B = 1e-3, 3.0
    pot = UniaxialAnisotropy(K, [0, 0, 1]) + Zeeman([0, 0, -B])
    a, b = _single_spin((0, 0, 1)), _single_spin((0, 0, -1))
    res = sl.gneb(a, b, pot, images=7, tol=1e-9, noise=0.2, seed=1)
    assert res.potential == str(pot) and res.potential_digests == pot.term_digests()
    res.write(tmp_path / "by_result.h5")  # the potential this result records
    res.write(tmp_path / "path.h5", potential=pot)
    for start in (res, tmp_path / "path.h5", str(tmp_path / "by_result.h5")):
        again = sl.gneb(None, None, pot, path=start, tol=1e-9)
        assert again.converged and again.iterations <= 2 and again.barrier == pytest.approx(res.barrier, rel=1e-9)
    with sl.io.Trajectory(tmp_path / "path.h5") as tr:
        assert sl.gneb(None, None, pot, path=tr, tol=1e-9).converged
    other = UniaxialAnisotropy(2 * K, [0, 0, 1]) + Zeeman([0, 0, -B])
    for start, where, source in ((res, "that GNEBResult", "result"), (tmp_path / "path.h5", "path.h5", "file"),
                                 (tmp_path / "by_result.h5", "by_result.h5", "file")):
        with pytest.raises(InputError, match=rf"gneb: path: the band .*{where} was made with other parameters: "
                                             rf"another potential UniaxialAnisotropy\(K=0.002 .*\(the {source} records "
                                             r"UniaxialAnisotropy\(K=0.001"):
            sl.gneb(None, None, other, path=start)
        with pytest.raises(InputError, match=rf"spring_constant 0\.002 \(the {source} records 0\.001\)"):
            sl.gneb(None, None, pot, path=start, spring_constant=2e-3)
        with pytest.raises(InputError, match=rf"positions True \(the {source} records False\)"):
            sl.gneb(None, None, pot, path=start, positions=True)
    plain = sl.gneb(None, None, other, path=res.states, tol=1e-9)  # a list of States records nothing
    fresh = sl.gneb(a, b, other, images=7, tol=1e-9, noise=0.2, seed=1)  # ... and is another band
    assert plain.converged and plain.barrier == pytest.approx(fresh.barrier, rel=1e-6) and fresh.barrier > res.barrier


def test_a_band_written_over_its_own_file_is_never_lost(tmp_path, monkeypatch):
    """GNEBResult.write truncated path.h5 first: a band restarted from a file and written back
    there (spinlat gneb --overwrite with path: in its own run directory) was lost when the write
    stopped midway (a second SIGTERM, the scheduler's SIGKILL, a full disk). Now the old file
    stays whole until the new one is complete."""
    from spinlat.io import hdf5

    K, B = 1e-3, 3.0
    pot = UniaxialAnisotropy(K, [0, 0, 1]) + Zeeman([0, 0, -B])
    res = sl.gneb(_single_spin((0, 0, 1)), _single_spin((0, 0, -1)), pot, images=7, tol=1e-9, noise=0.2, seed=1)
    res.write(tmp_path / "path.h5", potential=pot)
    real, calls = hdf5.TrajectoryWriter.write, []

    def failing(self, *args, **kw):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt  # a second Ctrl-C while the band is written
        return real(self, *args, **kw)

    monkeypatch.setattr(hdf5.TrajectoryWriter, "write", failing)
    with pytest.raises(KeyboardInterrupt):
        res.write(tmp_path / "path.h5", potential=pot)
    monkeypatch.undo()
    with sl.io.Trajectory(tmp_path / "path.h5") as tr:
        assert len(tr) == 7 and tr.array("potential_energy").tolist() == pytest.approx(res.energies.tolist())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["path.h5"]  # no temporary file left
    (tmp_path / "notes.h5").write_text("my notes")
    with pytest.raises(InputError, match="refusing to overwrite .*notes.h5: it exists and is not a spinlat"):
        res.write(tmp_path / "notes.h5")
    assert (tmp_path / "notes.h5").read_text() == "my notes"


def test_skyrmion_profile_in_a_triangular_film_sits_in_the_middle_and_stays_whole_at_an_edge():
    """The default centre was cell.diagonal()/2 − 0.5 (the square lattice's middle), off the middle
    of a triangular cell, and distances ignored the periodic images, so a skyrmion placed near an
    edge was cut in half. The centre is now the sites' centroid (the square lattice's unchanged)
    and distances are minimum-image; a single-spin GNEB against the analytic barrier K(1 − h)²
    checks the band on a film with vacuum, a non-orthogonal cell and a non-magnetic atom."""
    from spinlat import units
    from spinlat.workflows import skyrmion as sk

    sq = sk.square_lattice(8)
    old = np.array([3.5, 3.5])  # the square lattice's former default
    np.testing.assert_array_equal(sk.skyrmion_profile(sq, 2.5).spins,
                                  sk.skyrmion_profile(sq, 2.5, center=old).spins)
    L = 8
    unit = sl.State([[0, 0, 0]], ["Fe"], cell=np.array([[1.0, 0, 0], [0.5, np.sqrt(3) / 2, 0], [0, 0, 10.0]]),
                    pbc=[True, True, False], moments=[2.0])
    tri = unit.repeat((L, L, 1))
    middle = 0.5 * (tri.cell[0] + tri.cell[1]) - 0.5 * (unit.cell[0] + unit.cell[1])  # centroid of the sites
    core = np.argmin(sk.skyrmion_profile(tri, 2.5).spins[:, 2])
    assert np.linalg.norm(tri.positions[core, :2] - middle[:2]) < 0.6
    mid_site = (4 * (tri.cell[0] + tri.cell[1]) / L)[:2]  # a lattice site near the middle
    inside = np.sum(sk.skyrmion_profile(tri, 2.5, center=mid_site).spins[:, 2] < 0)
    assert inside == 7  # the site and its six neighbours (r = 1 Å < 2.5 Å / 2)
    edge = sk.skyrmion_profile(tri, 2.5, center=tri.positions[0, :2])  # on a corner site
    assert np.sum(edge.spins[:, 2] < 0) == inside and edge.spins[0, 2] == pytest.approx(-1.0)
    # a free moment with easy axis K and field B along it, reversing: barrier K(1 − h)², h = μ μB B / 2K
    K, B, mu = 1e-3, 5.0, 2.0
    film = sl.State([[0, 0, 5], [1.5, 0.8, 6.5]], ["Fe", "Pt"], cell=[[3.0, 0, 0], [1.5, 2.6, 0], [0, 0, 20.0]],
                    pbc=[True, True, False], moments=[mu, 0.0])
    pot = UniaxialAnisotropy(K, [0, 0, 1]) + Zeeman([0, 0, B])
    res = sl.gneb(film.copy(spins=[[0, 0, -1], [0, 0, 1]]), film.copy(spins=[[0, 0, 1], [0, 0, 1]]), pot, images=9,
                  tol=1e-9)
    h = mu * units.MU_B * B / (2 * K)
    assert res.barrier == pytest.approx(K * (1 - h) ** 2, rel=1e-9)


def test_an_endpoint_off_its_minimum_is_named_and_its_force_recorded():
    # E(θ) = −K cos²θ: an initial spin tilted by 0.5 rad feels the torque K sin(2θ) (eV/rad); the
    # band converged and reported a "barrier" from that slope without a word
    K = 1e-3
    pot = UniaxialAnisotropy(K, [0, 0, 1])
    up, down = _single_spin(), _single_spin((0, 0, -1))
    tilted = _single_spin((np.sin(0.5), 0, np.cos(0.5)))
    with pytest.warns(UserWarning, match="initial endpoint is not a local minimum.*spins 0.000841 eV/rad"):
        res = sl.gneb(tilted, down, pot, images=9, tol=1e-8)
    assert res.converged and res.barrier == pytest.approx(K * np.cos(0.5) ** 2, rel=1e-6)  # from the slope
    assert res.endpoint_forces[0]["spins"] == pytest.approx(K * np.sin(1.0), rel=1e-9)
    assert res.endpoint_forces[1] == {"spins": 0.0}
    assert res.summary()["endpoint_forces"] == res.endpoint_forces
    # relaxed first: the true barrier K, and no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = sl.gneb(tilted, down, pot, images=9, tol=1e-8, relax_endpoints=True)
        assert res.barrier == pytest.approx(K, rel=1e-6)
        assert sl.gneb(up, down, pot, images=9).endpoint_forces == [{"spins": 0.0}, {"spins": 0.0}]


def test_endpoints_with_atoms_in_another_order_are_refused_naming_the_atoms():
    # the final state of a file written in another atom order: the band joined atom k to atom k and
    # dragged atoms through each other (3.3 eV "barrier" on the Fe tetrahedron, after 3000
    # iterations), or with positions fixed was refused as "positions differ: pass positions=True"
    pot = BetheSlaterExchange(3.4, 0.02726, 0.2171, 1.841)
    pos = np.array([[0, 0, 0], [2.4, 0, 0], [1.2, 2.078, 0], [1.2, 0.693, 1.96]])
    a = sl.State(pos, ["Fe"] * 4, moments=[2.2] * 4, spins=[[0, 0, 1]] * 4)
    s = a.spins.copy()
    s[3] = [0, 0, -1]
    perm = [3, 1, 2, 0]
    b = sl.State(pos[perm] + 0.01, ["Fe"] * 4, moments=[2.2] * 4, spins=s[perm])
    for positions in (True, False):
        with pytest.raises(InputError, match=r"different orders: atom 3 of final sits 0.0173 Å from atom 0 of "
                                             r"initial, while atom 0 of final is 2.42 Å away \(2 atoms"):
            sl.gneb(a, b, pot, images=5, positions=positions)
    # an interstitialcy move (atom 3 pushes atom 0 off its site onto another place) is a path
    push = a.copy(positions=np.vstack([[[3.6, 2.078, 0]], pos[1:3], [[0, 0, 0]]]))
    with pytest.warns(UserWarning, match="endpoint is not a local minimum"):  # refused as relabelled before
        res = sl.gneb(a, push, pot, images=5, positions=True, max_iterations=0)
    assert np.allclose(res.states[2].positions[3], pos[3] / 2)  # halfway from its place to atom 0's
    # an atom hopping into a vacancy (its old site left empty) is a path, not a relabelling
    hop = a.copy(positions=np.vstack([pos[:3], [[1.2, 0.693, -1.96]]]))
    with pytest.warns(UserWarning, match="endpoint is not a local minimum"):  # neither is relaxed here
        res = sl.gneb(a, hop, pot, images=5, spins=False, positions=True, max_iterations=0)
    assert np.allclose(res.states[2].positions[3], [1.2, 0.693, 0.0])


def test_a_written_band_reads_back_as_the_same_result(tmp_path):
    # GNEBResult.write had no reader: the barrier, curve, saddle and convergence of a path.h5 were
    # only reachable by decoding the metadata JSON by hand
    from spinlat.errors import FileFormatError
    from spinlat.transitions import GNEBResult

    K, B = 1e-3, 3.0
    pot = UniaxialAnisotropy(K, [0, 0, 1]) + Zeeman([0, 0, -B])
    res = sl.gneb(_single_spin(), _single_spin((0, 0, -1)), pot, images=7, tol=1e-9)
    res.write(tmp_path / "band.h5", pot)
    back = GNEBResult.read(tmp_path / "band.h5")
    h = 2.0 * MU_B * B / (2 * K)
    assert back.barrier == res.barrier == pytest.approx(K * (1 - h) ** 2, rel=1e-9)
    assert back.reverse_barrier == res.reverse_barrier
    for name in ("energies", "reaction_coordinate", "slopes", "image_forces", "magnetic_forces"):
        assert np.array_equal(getattr(back, name), getattr(res, name)), name
    for name in ("saddle", "climbing", "converged", "reason", "iterations", "n_evaluations", "max_force",
                 "weights", "parameters", "potential", "potential_digests", "endpoint_forces"):
        assert getattr(back, name) == getattr(res, name), name
    assert back.forces is None  # positions did not move: no forces stored, none invented
    assert np.array_equal(back.curve(10)[1], res.curve(10)[1])
    assert all(np.array_equal(a.spins, b.spins) for a, b in zip(back.states, res.states))
    # and it continues as the result itself would
    again = sl.gneb(None, None, pot, path=back, tol=1e-9)
    assert again.converged and again.iterations <= 1
    # a band that moved atoms keeps its forces
    chain = BetheSlaterExchange(3.4, 0.02726, 0.2171, 1.841)
    pos = np.array([[0, 0, 0], [2.4, 0, 0], [1.2, 2.078, 0]])
    a = sl.State(pos, ["Fe"] * 3, moments=[2.2] * 3, spins=[[0, 0, 1]] * 3)
    with pytest.warns(UserWarning, match="not a local minimum"):
        moved = sl.gneb(a, a.copy(positions=pos * 1.05), chain, images=4, spins=False, positions=True,
                        max_iterations=3, tol=1e-12)
    moved.write(tmp_path / "moved.h5")
    back = GNEBResult.read(tmp_path / "moved.h5")
    assert np.array_equal(back.forces, moved.forces) and back.magnetic_forces is None
    assert not back.converged and back.reason.startswith("max_iterations reached")
    # two bands in one file (the second written with mode="a") are not read as one
    moved.write(tmp_path / "moved.h5", mode="a")
    with pytest.raises(FileFormatError, match=r"does not match its 8 images: .*several bands \(written with "
                                              r"mode='a'\)"):
        GNEBResult.read(tmp_path / "moved.h5")
    # a run's trajectory is named as no band
    sim = sl.Simulation(_single_spin((1, 0, 0)), pot, sl.integrators.LLG(1.0), trajectory=str(tmp_path / "run.h5"),
                        every=1)
    sim.run(2)
    with pytest.raises(FileFormatError, match=r"run.h5: a spinlat trajectory \(LLG.* but no GNEB band"):
        GNEBResult.read(tmp_path / "run.h5")


def test_saddle_modes_tell_a_first_order_saddle_from_a_symmetric_band_stuck_higher():
    # the ring of the two tests above started on exact coherent rotation: its perpendicular forces
    # vanish by symmetry, so the band "converges" there (barrier N K) even where domain walls give
    # a lower path; the Hessian at its saddle, J λ_k − 2K and J λ_k + 2K2, shows the extra
    # unstable modes (λ_k = 2 − 2cos(2πk/N)): dense for N = 8, Lanczos for N = 40
    K, K2 = 0.001, 0.0005
    for n, J, unstable in ((4, 0.010, 1), (8, 0.002, 3), (40, 0.010, 5)):
        unit, st = _chain(n)
        pot = Heisenberg.from_neighbors(unit, J=[J]) + UniaxialAnisotropy(K, [0, 0, 1]) + \
            UniaxialAnisotropy(-K2, [0, 1, 0])
        a, b = st.copy(spins=np.tile([0, 0, 1.0], (n, 1))), st.copy(spins=np.tile([0, 0, -1.0], (n, 1)))
        res = sl.gneb(a, b, pot, images=7, tol=1e-10)
        assert res.converged and res.barrier == pytest.approx(n * K, rel=1e-9)
        lam = 2 - 2 * np.cos(2 * np.pi * np.arange(n) / n)
        exact = np.sort(np.concatenate([J * lam - 2 * K, J * lam + 2 * K2]))
        k = min(unstable + 1, 2 * n)
        values, modes = res.saddle_modes(pot, k=k)
        assert np.allclose(values, exact[:k], rtol=0, atol=1e-8)
        assert np.sum(values < 0) == min(unstable, k)
        # the unstable mode along the path: every spin turns towards −z alike, unit length
        s = modes[0]["spins"]
        assert np.allclose(s, s[0]) and abs(s[0, 2]) == pytest.approx(1 / np.sqrt(n), rel=1e-6)
    with pytest.raises(InputError, match="k must be an integer from 1 to 80"):
        res.saddle_modes(pot, k=81)
    # another potential's Hessian is not this band's saddle (a stronger anisotropy: another digest)
    other = Heisenberg.from_neighbors(unit, J=[J]) + UniaxialAnisotropy(2 * K, [0, 0, 1]) + \
        UniaxialAnisotropy(-K2, [0, 1, 0])
    with pytest.raises(InputError, match="saddle_modes: not the potential of this band"):
        res.saddle_modes(other)
    with pytest.raises(InputError, match="image must be an index of the 7 images"):
        res.saddle_modes(pot, image=7)


def test_a_band_resampled_to_more_images_starts_on_the_path_and_keeps_the_barrier(tmp_path):
    # a converged band of 5 images could not be refined: a restart with images=13 was refused and
    # nothing offered the path at other image counts
    from spinlat.transitions import GNEBResult

    K, B = 1e-3, 3.0
    pot = UniaxialAnisotropy(K, [0, 0, 1]) + Zeeman([0, 0, -B])
    res = sl.gneb(_single_spin(), _single_spin((0, 0, -1)), pot, images=5, tol=1e-9)
    res.write(tmp_path / "band.h5", pot)
    with pytest.raises(InputError, match=r"images 13 \(the file records 5\).*resampled\(images\)"):
        sl.gneb(None, None, pot, path=tmp_path / "band.h5", images=13)
    states = GNEBResult.read(tmp_path / "band.h5").resampled(13)
    assert len(states) == 13 and states[0].spins.tolist() == res.states[0].spins.tolist()
    assert states[-1].spins.tolist() == res.states[-1].spins.tolist()
    # on a one-spin band the path is a great circle: equal steps are equal polar angles
    theta = np.arccos(np.clip([st.spins[0, 2] for st in states], -1, 1))
    assert np.allclose(np.diff(theta), np.pi / 12, atol=1e-12)
    fine = sl.gneb(None, None, pot, path=states, tol=1e-9)
    assert fine.converged and fine.barrier == pytest.approx(res.barrier, rel=1e-9)
    assert fine.reaction_coordinate[-1] == pytest.approx(np.pi, rel=1e-9) and fine.iterations < res.iterations + 50
    fewer = res.resampled(3)
    assert len(fewer) == 3 and np.allclose(np.abs(fewer[1].spins[0, 2]), 0.0, atol=1e-12)
    with pytest.raises(InputError, match="images must be an integer >= 3"):
        res.resampled(2)


def test_transitions_and_workflows_are_reachable_from_the_package():
    # `import spinlat as sl; sl.transitions.GNEBResult.read(...)` (or sl.workflows.bain_path) raised
    # AttributeError in a fresh interpreter unless something had imported the module before
    import subprocess
    import sys

    code = ("import spinlat as sl; from spinlat.transitions import GNEBResult; from spinlat.workflows.bain import "
            "bain_path; assert sl.GNEBResult is GNEBResult and sl.transitions.GNEBResult is GNEBResult; "
            "assert sl.bain_path is bain_path and sl.workflows.bain_path is bain_path")
    # the check runs first in its own interpreter: attributes before any import of the modules
    fresh = code.split("; ", 3)[0] + "; " + "; ".join(
        ["t = sl.transitions", "w = sl.workflows", "g = sl.GNEBResult", "b = sl.bain_path"]) + "; " + code
    done = subprocess.run([sys.executable, "-c", fresh], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_a_film_whose_cell_has_no_third_vector_takes_minimum_images_in_plane():
    # a film read with cell [[a,0,0],[0,a,0],[0,0,0]] (pbc T T F): every gneb on it, spins only
    # included, failed with numpy's LinAlgError "Singular matrix" (the minimum image inverted the cell)
    K = 1e-3
    film = sl.State([[0.1, 0, 0]], ["Fe"], cell=[[2.87, 0, 0], [0, 2.87, 0], [0, 0, 0]], pbc=[True, True, False],
                    moments=[2.0], spins=[[0, 0, 1]])
    res = sl.gneb(film, film.copy(spins=[[0, 0, -1]]), UniaxialAnisotropy(K, [0, 0, 1]), images=5, tol=1e-9)
    assert res.barrier == pytest.approx(K, rel=1e-9)
    # an atom moved across the periodic boundary goes the short way (0.2 Å, through x = 0)
    S, R, MU = geodesic_path(film, film.copy(positions=[[2.77, 0, 0]]), 3, spins=False, positions=True)
    assert R[1, 0] == pytest.approx([0.0, 0, 0], abs=1e-12)


def test_band_images_carry_no_velocities_of_an_md_endpoint(tmp_path):
    # an endpoint taken from an MD snapshot gave its velocities to every image: path.h5 recorded a
    # kinetic energy of 0.29 eV and 2239 K per image and a total energy off the path's
    pot = UniaxialAnisotropy(1e-3, [0, 0, 1])
    a = sl.State([[0, 0, 0]], ["Fe"], moments=[2.0], spins=[[0, 0, 1]], velocities=[[0.01, 0, 0]])
    res = sl.gneb(a, a.copy(spins=[[0, 0, -1]]), pot, images=5)
    assert all(not st.velocities.any() for st in res.states)
    res.write(tmp_path / "band.h5", pot)
    with sl.io.Trajectory(tmp_path / "band.h5") as tr:
        assert not tr.array("kinetic_energy").any() and not tr.array("temperature").any()
        assert np.array_equal(tr.array("total_energy"), res.energies)


def test_endpoints_that_relax_into_one_minimum_are_refused():
    # a final spin 0.5 rad off the easy axis relaxes back onto it, as the initial one: the band
    # "converged" with a barrier of 1e-9 eV between two copies of the same minimum
    pot = UniaxialAnisotropy(1e-3, [0, 0, 1])
    tilted = _single_spin((np.sin(0.5), 0, np.cos(0.5)))
    with pytest.raises(InputError, match=r"relax_endpoints: initial and final relaxed into the same minimum \(they "
                                         r"differ by at most 0.00\d+ rad, 0 Å, 0 μB\)"):
        sl.gneb(_single_spin(), tilted, pot, images=5, relax_endpoints=True)
    # a final state past the equator relaxes into the other minimum: the barrier K
    past = _single_spin((np.sin(2.0), 0, np.cos(2.0)))
    assert sl.gneb(_single_spin(), past, pot, images=5, relax_endpoints=True, tol=1e-9).barrier == pytest.approx(
        1e-3, rel=1e-6)


def test_vacancy_migration_in_bcc_fe_matches_the_published_barrier():
    # Mendelev et al., Phil. Mag. 83, 3977 (2003), the potential of Fe_mm.eam.fs: vacancy migration
    # energy 0.64 eV; a 3×3×3 cubic cell (53 atoms) with relaxed endpoints gives 0.654 eV. The
    # saddle is first order, with the three translations of the periodic crystal as zero modes
    from ase.build import bulk

    pot = EAM(EAM_FE)
    full = sl.State.from_ase(bulk("Fe", "bcc", a=2.8553, cubic=True).repeat((3, 3, 3)))
    j = int(np.argsort(np.linalg.norm(full.positions - full.positions[0], axis=1))[1])  # a nearest neighbour
    pos = full.positions[1:]
    ini = sl.State(pos, full.numbers[1:], cell=full.cell, pbc=True, moments=np.full(len(pos), 2.2))
    hop = pos.copy()
    hop[j - 1] = full.positions[0]  # the neighbour jumps into the vacancy
    res = sl.gneb(ini, ini.copy(positions=hop), pot, images=7, spins=False, positions=True, relax_endpoints=True,
                  tol=1e-3)
    assert res.converged and res.barrier == pytest.approx(0.64, abs=0.03)
    values, _ = res.saddle_modes(pot, k=5)
    assert values[0] < -1.0 and np.all(np.abs(values[1:4]) < 1e-4) and values[4] > 1e-2
    # this potential's path has two humps around a shallow midpoint minimum (0.557 eV). On 9 images
    # with the weak default springs the images drifted along the crystal's rigid translations (a zero
    # mode the tangent leaked into, which L-BFGS, seeing no curvature there, amplified): whole images
    # moved by up to 5.4 Å, the "path" was 320 Å long and the climbing image sat in the midpoint
    # minimum, 0.557 eV. Positions are now taken modulo a rigid translation: each image keeps the
    # mean position it started with and the band finds the higher hump
    finer = res.resampled(9)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        weak = sl.gneb(None, None, pot, path=finer, spins=False, positions=True, tol=1e-3)
        stiff = sl.gneb(None, None, pot, path=finer, spins=False, positions=True, tol=1e-3, spring_constant=1.0)
    for band in (weak, stiff):
        assert band.converged and band.barrier == pytest.approx(res.barrier, abs=1e-3)
        np.testing.assert_allclose([st.positions.mean(axis=0) for st in band.states],
                                   [st.positions.mean(axis=0) for st in finer], rtol=0, atol=1e-9)
        assert band.reaction_coordinate[-1] < 3.0  # Å: one atom hops 2.5 Å, its neighbours relax


def test_spacing_check_names_collapsed_images_and_spares_an_even_band():
    # two images on one point (a zero segment) escaped the check (it needed every segment > 0)
    from spinlat.transitions import spacing_problems

    band = sl.gneb(_single_spin(), _single_spin((0, 0, -1)), UniaxialAnisotropy(1e-3, [0, 0, 1]), images=7)
    assert band.converged and spacing_problems(band, 1e-3, 1e-5) == []
    band.reaction_coordinate = np.array([0.0, 0.5, 0.5, 1.0, 1.5, 2.0, 2.5])
    band.climbing = None
    assert spacing_problems(band, 1e-3, 1e-5)[0].startswith("gneb: the converged band's images are unevenly spaced "
                                                            "(segments from 0 to 0.5 rad")


class _SignalAtEvaluation(sl.potentials.Potential):
    """``inner`` without its spin couplings (GNEB evaluates the images through compute_many, as
    for mMACE) that sends ``signum`` to this process during its ``at``-th image evaluation."""

    def __init__(self, inner, signum=None, at=None):
        self.inner, self.signum, self.at, self.calls = inner, signum, at, 0
        self.cutoff, self.skin = inner.cutoff, inner.skin

    def _evaluate(self, state, neighbors, forces, magnetic_forces, stress):
        self.calls += 1
        if self.calls == self.at:
            os.kill(os.getpid(), self.signum)
        return self.inner._evaluate(state, neighbors, forces, magnetic_forces, stress)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
@pytest.mark.usefixtures("default_signal_handlers")
def test_a_stop_inside_a_band_step_comes_at_the_next_image_evaluation(signum):
    """A stop waited for the whole band step: every inner image evaluated (a big mMACE model: a
    long wait). Now it comes at the next image evaluation, and the band is put back as it stood
    at the last whole iteration: the partial result is that band, bit for bit."""
    n, J, K, K2 = 4, 0.010, 0.001, 0.0005
    unit, st = _chain(n)
    inner = Heisenberg.from_neighbors(unit, J=[J]) + UniaxialAnisotropy(K, [0, 0, 1]) + \
        UniaxialAnisotropy(-K2, [0, 1, 0])
    a = st.copy(spins=np.tile([0, 0, 1.0], (n, 1)))
    b = st.copy(spins=np.tile([0, 0, -1.0], (n, 1)))
    options = dict(images=11, tol=1e-10, noise=0.3, seed=1)
    probe = _SignalAtEvaluation(inner)
    whole = sl.gneb(a, b, probe, max_iterations=5, **options)  # the band of iteration 5
    at = probe.calls + 3  # inside the step after iteration 5: its 3rd image of 9
    pot = _SignalAtEvaluation(inner, signum, at)
    kind = Terminated if signum == signal.SIGTERM else KeyboardInterrupt
    with pytest.raises(kind) as info:
        sl.gneb(a, b, pot, **options)
    assert pot.calls == at  # no evaluation after the signal (before: the other 6 images of the step)
    part = info.value.partial_result
    assert part.reason.startswith("interrupted") and part.iterations == 5
    assert np.array_equal(part.energies, whole.energies)
    for s, w in zip(part.states, whole.states):
        assert np.array_equal(s.spins, w.spins)
    res = sl.gneb(None, None, inner, path=part.states, tol=1e-10)  # (part records the wrapper potential)
    assert res.converged and res.barrier == pytest.approx(n * K, rel=1e-9)
