"""Coupled spin-lattice dynamics: symplectic NVE and Langevin (lattice + stochastic LLG).

Equations of motion (units Å, fs, eV, amu, μB, T; DESIGN.md's LLG convention)::

    dr_i/dt = v_i,      m_i dv_i/dt = F_i = −∂E/∂r_i,
    ds_i/dt = γ/(1+α²) [ B_i × s_i + α (s_i × B_i) × s_i ],     B_i = h_i / μB,  h_i = −∂E/∂m_i.

:class:`SpinLatticeNVE` (α = 0) integrates them with the symmetric Suzuki-Trotter splitting of
Tranchida et al., J. Comput. Phys. 372, 406 (2018) (what LAMMPS ``fix nve/spin lattice
moving`` does)::

    v ← v + (dt/2) F/m
    spins: half step dt/2 = colour sweep forward (dt/4 each) then backward (dt/4 each)
    r ← r + dt v
    spins: half step dt/2, same sweep
    F ← F(r, s);  v ← v + (dt/2) F/m

Each spin is rotated *exactly* about its current effective field (the field of one spin
does not depend on the spin itself for pair terms and Zeeman, so the rotation is the exact flow
of that spin's sub-Hamiltonian; :meth:`Potential.rotation_fields` gives the unprojected field
that makes it so). Sequential updates become parallel by colouring the spin graph: spins of one
colour are never neighbours, so one colour is rotated at once. The forward sweep followed by
the backward sweep is a symmetric composition, so the whole step is symplectic, time-reversible
and second order; the spin lengths stay 1 to round-off. The two rotations of the last colour
in a sweep are merged into one of dt/2 (its field does not change in between).

When the rotation field of a spin depends on that spin itself (anisotropies, a coupling with its
own periodic image, or any term without linear couplings), a fixed-axis rotation is only a
first-order approximation of its motion; such spins take the symmetric implicit-midpoint
rotation s' = R(τ h((s + s')/2)) s instead (fixed-point iteration to 1e-14), which keeps the
composition symmetric (energy error O(dt²)) and conserves quadratic single-spin energies such
as uniaxial anisotropy plus exchange exactly.

The fields come from the field engine (:class:`~spinlat.integrators.fields.SpinFieldEngine`).
Fast path: when every magnetic term gives
:class:`~spinlat.potentials.couplings.LinearSpinCouplings` (Heisenberg, Bethe-Slater exchange,
Zeeman, uniaxial anisotropy), their merged coupling table is refreshed once per position update
and a whole sweep runs in one numba kernel (no Python per colour, no distances or J(r)
recomputed per colour; the implicit midpoint per spin where needed). Otherwise each colour asks
the engine for its rotation fields (the couplings' plus the other terms' ``rotation_fields``).
The spin graph colouring is that of the coupling table plus, for terms without couplings, the
neighbour-list pairs within their cutoff.

For potentials whose ``local`` flag is False (they give all fields at once, e.g. mMACE), NVE uses
the Strang splitting ``kick dt/2 · drift dt/2 · spins dt · drift dt/2 · kick dt/2`` and moves all
spins together by the spherical midpoint rule (McLachlan, Modin & Verdier, Phys. Rev. E 89,
061301 (2014)): s_i' − s_i = τ (γ/μB) h_i(m̂) × m̂_i with m̂_i = (s_i + s_i')/|s_i + s_i'|, i.e. s_i
rotated about the transverse midpoint field by 2 atan(τγ|h⊥|/(μB|s_i + s_i'|)) (a Cayley
rotation: spin lengths exact). The rule is symplectic on the product of spheres and symmetric,
so with the symmetric splitting the whole step is time-reversible: (r, v, m) → (r, −v, −m) runs the
trajectory back (for a time-reversal-even energy, e.g. mMACE) to the solver tolerance, and the
energy error stays bounded, O(dt²), with no secular drift. By default (``spin_solver=
"anderson"``) the implicit equation is solved by Anderson acceleration (Walker & Ni, SIAM J.
Numer. Anal. 49, 1715 (2011)) of the fixed-point iteration on the end spins, each iterate one
model call for the midpoint fields, the single-spin part of the equation solved exactly inside
an iterate, the secant pairs (depth 5) carried from step to step and checkpointed, the first
iterate predicted from the fields of the evaluation that ended the previous step plus the
extrapolated midpoint-minus-start increments, and a damped fixed-point fallback when a residual
grows (:meth:`_SpinLatticeBase._anderson_spin_step`); it stops at the same estimated error.
``spin_solver="fixed_point"`` keeps the plain fixed-point iteration on the field (contraction
∝ τ γ|∂h/∂m|, ≈ 5e-3 for mMACE bcc Fe at 0.5 fs): the first iterate comes without a model call from the midpoint fields of the last four steps
(cubic extrapolation, or the fields of the evaluation that ended the previous step at the start
of a run), each further iterate costs one model call; it stops when the estimated error of the
spins (Ostrowski: change × q/(1 − q), q the observed contraction) is ≤ ``spin_tolerance`` (1e-10
by default), and warns (:class:`~spinlat.errors.ConvergenceWarning`) after
``max_spin_iterations`` calls (8). Model calls per step (the end-of-step evaluation of forces and
fields included; ``calls_per_step``) depend on how fast the fields change over dt: at 1 fs 2.2
(Anderson) vs 3.3 (fixed point) for the tiny model of ``tests/mmace/test_dynamics.py``, 9.6 vs
14 for the 20-epoch model of ``benchmarks/bench_mmace_nve_drift.py``. ``spin_solver="newton"``
solves the same equation by inexact Newton-Krylov (:meth:`_SpinLatticeBase._newton_spin_step`): each
iterate one model call that also keeps the graph of the field
(``MagneticMACE.field_linearization``), GMRES on the Newton equation with one field-Jacobian product
(a double backward) per Krylov vector; it converges quadratically (1 fs, 20-epoch model:
predicted-iterate error ~5e-3 → ~1e-6 → ~1e-12) but each product costs about one model call
(``JVP_COST``; statistics ``jvp_calls`` and ``call_equivalents_per_step``), so it is not cheaper:
4.1 calls + 10.6 products per step at 1 fs for the 20-epoch model (≈ 14.7 call equivalents vs
Anderson's 9.7; 9.8 vs 6.1 at 0.5 fs, 26.6 vs 16.0 at 2 fs), 2.0-4.5 vs 2.0-3.0 for the tiny model;
potentials without ``field_linearization`` fall back to Anderson. No solver reaches 3 calls per step
at 1 fs on the 20-epoch model: its spins turn ~0.35 rad per fs, the predicted first iterate is off
by ~5e-3, and one further model call can at best square that error (Newton). A looser
``spin_tolerance`` keeps the energy (1 fs, 0.2 ps: drift and max |ΔE| equal to the digits printed at
1e-10, 1e-8, 1e-6) but not the reversibility, which chaos amplifies (200 steps forward and back:
spins off by 1.5e-5, 3e-3, 0.18) at 9.5, 7.2, 5.1 calls per step; over 10 ps at 1 fs, 1e-6 (4.9 calls
per step) lets the energy wander (max |ΔE| 0.14 against 0.042 meV/atom at 1e-10). At dt = 0.5 fs (half the turn
per step to predict) ``spin_tolerance=1e-6`` takes **2.94 calls per step** (two
solver calls and the end-of-step evaluation) with a bounded energy over 10 ps (20 000 steps: drift
1.3e-3 meV/atom/ps, fluctuation 0.004, max |ΔE| 0.018 meV/atom; the explicit midpoint drifts 6.5
meV/atom/ps at the same dt with 2 calls), reversible to the tolerance (100 steps forward and back:
spins off by 2.0e-5, against 3.2e-9 at 1e-10 and 6.1 calls per step): the setting for runs that
must cost ≤ 3 model calls per step (``benchmarks/bench_mmace_nve_drift.py``, README).
``spin_step="explicit_midpoint"`` keeps the earlier scheme (rotate by τ/2 about the latest fields, evaluate, rotate the start spins by τ about those
midpoint fields: two model calls per step, second order but neither symplectic nor reversible:
the energy drifts, 2.6 meV/atom over 2 ps at dt = 0.5 fs in ``examples/mmace_train_nve.py``).
:class:`SpinLatticeLangevin` (not reversible anyway) uses the explicit midpoint with the damped
rotations and noise for non-local potentials.

Moment magnitudes stay fixed in NVE unless ``adiabatic_magnitudes=True``; then, for potentials
with ``depends_on_magnitudes``, both integrators relax |m_i| at fixed positions and directions
after every step (:func:`spinlat.minimization.relax_magnitudes`: the minimiser's L-BFGS on |m|
with the longitudinal force −∂E/∂|m_i| = s_i·h_i, to ``magnitude_tolerance`` eV/μB, warm-started,
its last evaluation giving the step's forces), so the dynamics runs on the Born-Oppenheimer-like
surface E_BO(r, s) = min_|m| E(r, s, |m|), whose forces and transverse fields are E's at the
relaxed magnitudes (∂E/∂|m| = 0 there). During a step the spins precess at magnitudes
extrapolated to the middle of the step (μ_n + (μ_n − μ_{n−1})/2), which keeps E_BO + kinetic
energy conserved to second order (magnitudes held at μ_n would lose O(dt²) per step to each
relaxation, a drift ∝ dt). Without the option :class:`SpinLatticeLangevin` makes the magnitudes
dynamical (overdamped Langevin on |m|).

Reproducibility (see :mod:`spinlat.integrators.base`): bit for bit however a run is split, on 1
or more numba threads, and across restarts. The colour classes are a function of the neighbour-
list build (its pairs and the positions it was built at), kept by the integrator between runs,
and the checkpoint carries those positions, so a restart rebuilds the same list. With more than one
numba thread every pass of a step runs on threads: the colour sweep (over the atoms of one colour)
from :data:`PARALLEL_MIN_SPINS` magnetic atoms on, the kicks and drifts from
:data:`PARALLEL_MIN_ATOMS` atoms, and the potentials' own kernels (EAM, exchange) from their
thresholds. Each threaded kernel gives every atom's sums in a fixed order (no reduction whose
order depends on the threads), so threaded and serial runs give the same bits.
"""

from __future__ import annotations

import math
import warnings

import numba
import numpy as np

from .. import units, validation
from ..errors import ConvergenceWarning, InputError, SimulationError
from ..potentials.couplings import coupled_row, coupled_rows, coupled_rows_parallel
from ..state import State
from .base import DynamicsState, Integrator, check_dt, check_nonnegative, check_seed
from .coloring import best_coloring, color_classes, csr_from_pairs, spin_color_classes
from .fields import SpinFieldEngine
from .noise import PhiloxNoise, check_rows, normal3
from .rotation import angle_factor, rotate_all, rotate_spins, rotate_vector
from ..keywords import refuse_other_names

#: fused multiply-add in hot kernels (more accurate and faster; no other fast-math liberties)
_FMA = {"contract"}


# ------------------------------------------------------------------------------ kernels
def _lattice_kernels(threaded):
    """The lattice updates, serial (``threaded`` False) or with threads over the atoms (True);
    every atom's update is independent, so both give the same bits."""

    @numba.njit(cache=True, parallel=threaded)
    def kick(vel, forces, acc_factor, h):
        """v_i += h · F_i · acc_factor_i (acc_factor = FORCE_TO_ACCELERATION / m_i), in place."""
        _ = threaded  # a closure constant: it keeps the numba cache entries of the two variants apart
        for i in numba.prange(vel.shape[0]):
            c = h * acc_factor[i]
            vel[i, 0] += c * forces[i, 0]
            vel[i, 1] += c * forces[i, 1]
            vel[i, 2] += c * forces[i, 2]

    @numba.njit(cache=True, parallel=threaded)
    def drift(pos, vel, h):
        """r_i += h v_i, in place."""
        _ = threaded
        for i in numba.prange(pos.shape[0]):
            pos[i, 0] += h * vel[i, 0]
            pos[i, 1] += h * vel[i, 1]
            pos[i, 2] += h * vel[i, 2]

    @numba.njit(cache=True, parallel=threaded)
    def drift_o_drift(pos, vel, h, k0, k1, counter, c1, sigma):
        """BAOAB's middle, r += h v; v ← c1 v + sigma_i ξ_i (exact Ornstein-Uhlenbeck step,
        ξ_i row i of Philox draw ``counter`` under key (k0, k1),
        :func:`~spinlat.integrators.noise.normal3`); r += h v, in place, in one pass: the same
        operations per atom as the three passes apart."""
        _ = threaded
        for i in numba.prange(pos.shape[0]):
            z0, z1, z2 = normal3(k0, k1, counter, np.uint64(i))
            s = sigma[i]
            pos[i, 0] += h * vel[i, 0]
            pos[i, 1] += h * vel[i, 1]
            pos[i, 2] += h * vel[i, 2]
            vel[i, 0] = c1 * vel[i, 0] + s * z0
            vel[i, 1] = c1 * vel[i, 1] + s * z1
            vel[i, 2] = c1 * vel[i, 2] + s * z2
            pos[i, 0] += h * vel[i, 0]
            pos[i, 1] += h * vel[i, 1]
            pos[i, 2] += h * vel[i, 2]

    return kick, drift, drift_o_drift


_kick_serial, _drift_serial, _drift_o_drift_serial = _lattice_kernels(False)
_kick_parallel, _drift_parallel, _drift_o_drift_parallel = _lattice_kernels(True)

#: below this many atoms the lattice updates run on one thread (module parameter; the result
#: does not change by a bit)
PARALLEL_MIN_ATOMS = 8192


def _threads_for(n):
    return n >= PARALLEL_MIN_ATOMS and numba.get_num_threads() > 1


def _kick(vel, forces, acc_factor, h):
    """v_i += h · F_i · acc_factor_i, in place (threads from :data:`PARALLEL_MIN_ATOMS` atoms)."""
    (_kick_parallel if _threads_for(vel.shape[0]) else _kick_serial)(vel, forces, acc_factor, h)


def _drift(pos, vel, h):
    """r_i += h v_i, in place (threads from :data:`PARALLEL_MIN_ATOMS` atoms)."""
    (_drift_parallel if _threads_for(pos.shape[0]) else _drift_serial)(pos, vel, h)


def _drift_o_drift(pos, vel, h, noise, c1, sigma):
    """Drift h, Ornstein-Uhlenbeck step with the next draw of ``noise`` (a
    :class:`~spinlat.integrators.noise.PhiloxNoise`), drift h, in place, in one threaded pass
    (threads from :data:`PARALLEL_MIN_ATOMS` atoms; the same bits as the passes apart)."""
    check_rows(pos.shape[0])
    k0, k1, _ = noise.words
    kernel = _drift_o_drift_parallel if _threads_for(pos.shape[0]) else _drift_o_drift_serial
    kernel(pos, vel, h, k0, k1, noise.take(), c1, sigma)


@numba.njit(cache=True)
def _project_transverse(h, spins, atoms):
    """h[k] ← h[k] − (h[k]·s) s for s = spins[atoms[k]], in place."""
    for k in range(atoms.shape[0]):
        i = atoms[k]
        c = h[k, 0] * spins[i, 0] + h[k, 1] * spins[i, 1] + h[k, 2] * spins[i, 2]
        h[k, 0] -= c * spins[i, 0]
        h[k, 1] -= c * spins[i, 1]
        h[k, 2] -= c * spins[i, 2]


@numba.njit(cache=True)
def _longitudinal_step(moments, spins, fields, atoms, mobility, kT, dt, noise):
    """Overdamped Langevin step of the moment magnitudes |m_i| of ``atoms``, in place.

    dμ = Γ f dt + (2 Γ kT/μ) dt + sqrt(2 Γ kT) dW, f = h·s (eV/μB), is the radial part of an
    isotropic 3D Brownian motion of m, so the step takes μ' = |(μ + Γ f dt) ê + sqrt(2ΓkT dt) ξ|
    with ξ a 3D N(0,1) vector (``noise[k]``): the |m|² Jacobian of the equilibrium
    distribution μ² exp(−E/kT) is built in and μ' never becomes negative. fields are indexed
    like atoms."""
    amp = math.sqrt(2.0 * mobility * kT * dt)
    for k in range(atoms.shape[0]):
        i = atoms[k]
        f = fields[k, 0] * spins[i, 0] + fields[k, 1] * spins[i, 1] + fields[k, 2] * spins[i, 2]
        a = moments[i] + mobility * f * dt
        x = a + amp * noise[k, 0]
        y = amp * noise[k, 1]
        z = amp * noise[k, 2]
        moments[i] = math.sqrt(x * x + y * y + z * z)


def _sweep_kernel(threaded):
    """The colour-sweep kernel, serial (``threaded`` False) or with threads over the atoms of one
    colour (True): one Python function compiled twice, so that both give the same bits (the
    ``threaded`` flag, a closure constant, also keeps their numba cache entries apart)."""

    @numba.njit(cache=True, fastmath=_FMA, parallel=threaded)
    def sweep(spins, cls_off, cls_atoms, order, last, c, inv_m, selfc, fac_q, fac_h, damping, noise, sig_q, sig_h):
        """One colour sweep with the fields of the couplings ``c`` (a
        :meth:`~spinlat.potentials.couplings.LinearSpinCouplings.kernel_arrays` tuple), in place:
        H_i = g_i/|m_i| + b_i (eV/μB; ``inv_m`` = 1/|m|; g_i from
        :func:`~spinlat.potentials.couplings.coupled_row`, computed and used in one pass over the
        colour, its spins being no neighbours of one another). Colours ``order`` in turn (colour ``last`` rotated with
        ``fac_h``, the others ``fac_q``); ``selfc`` (N,) bool marks spins rotated by the implicit
        midpoint rule (empty: none), the others are rotated exactly about their field; optional
        noise: ``noise`` = (k0, k1, counter) uint64 (empty: none), the rows of that Philox draw
        (:func:`~spinlat.integrators.noise.normal3`, one per rotation, in sweep order, drawn here
        per atom) scaled by sig_q / sig_h (eV/μB)."""
        field = c[6]
        has_field = field.shape[0] > 0
        has_noise = noise.shape[0] > 0
        has_self = selfc.shape[0] > 0
        n_max = 0
        for col in range(cls_off.shape[0] - 1):
            n_max = max(n_max, cls_off[col + 1] - cls_off[col])
        g = np.empty((1, n_max, 3))
        s0 = np.empty((n_max, 3))
        s1 = np.empty((n_max, 3))
        pending = np.empty(n_max, dtype=np.int64)
        s3 = spins.reshape((1, spins.shape[0], 3))
        base = 0
        for t in range(order.shape[0]):
            col = order[t]
            full = col == last
            fac = fac_h if full else fac_q
            k0 = cls_off[col]
            n = cls_off[col + 1] - k0
            atoms = cls_atoms[k0:k0 + n]
            for a in numba.prange(n):  # the colour's spins are no neighbours of one another
                i = atoms[a]
                inv = inv_m[i]
                gx, gy, gz = coupled_row(c, spins, i)
                hx, hy, hz = gx * inv, gy * inv, gz * inv
                if has_noise:
                    sig = sig_h[i] if full else sig_q[i]
                    z0, z1, z2 = normal3(noise[0], noise[1], noise[2], np.uint64(base + a))
                    hx += sig * z0
                    hy += sig * z1
                    hz += sig * z2
                if has_field:
                    hx += field[i, 0]
                    hy += field[i, 1]
                    hz += field[i, 2]
                x, y, z = rotate_vector(spins[i, 0], spins[i, 1], spins[i, 2], hx, hy, hz, fac, damping)
                if has_self and selfc[i]:  # implicit midpoint: first guess s1, field at (s0 + s1)/2 next
                    s0[a, 0], s0[a, 1], s0[a, 2] = spins[i, 0], spins[i, 1], spins[i, 2]
                    s1[a, 0], s1[a, 1], s1[a, 2] = x, y, z
                    x, y, z = 0.5 * (spins[i, 0] + x), 0.5 * (spins[i, 1] + y), 0.5 * (spins[i, 2] + z)
                spins[i, 0], spins[i, 1], spins[i, 2] = x, y, z
            if has_self:
                _implicit_midpoints(spins, s3, atoms, c, inv_m, selfc, fac, damping, noise, base,
                                    sig_h if full else sig_q, g, s0, s1, pending, threaded)
            base += n

    return sweep


@numba.njit(cache=True, fastmath=_FMA)
def _implicit_midpoints(spins, s3, atoms, c, inv_m, selfc, fac, damping, noise, base, sig, g, s0, s1, pending,
                        threaded):
    """Fixed-point iteration of the implicit midpoint rule s1 = R(h((s0 + s1)/2)) s0 for the
    self-coupled spins of one colour (``selfc``), whose first guess s1 (``s1``, start ``s0``) the
    sweep left, with the spins at (s0 + s1)/2: each spin until its s1 changes by at most
    :data:`_MIDPOINT_TOLERANCE` (or :data:`_MAX_MIDPOINT_ITERATIONS` iterations); the spins end at
    s1. ``g`` (1, n, 3) scratch, ``noise`` (k0, k1, counter) or empty: rows ``base + a`` of that
    draw scaled by ``sig``, as in the sweep."""
    field = c[6]
    has_field = field.shape[0] > 0
    has_noise = noise.shape[0] > 0
    npend = 0
    for a in range(atoms.shape[0]):
        if selfc[atoms[a]]:
            pending[npend] = a
            npend += 1
    for _ in range(_MAX_MIDPOINT_ITERATIONS):
        if npend == 0:
            break
        sub = np.empty(npend, dtype=np.int64)
        for b in range(npend):
            sub[b] = atoms[pending[b]]
        if threaded:
            coupled_rows_parallel(c, s3, sub, g[:, :npend])
        else:
            coupled_rows(c, s3, sub, g[:, :npend])
        keep = 0
        for b in range(npend):
            a = pending[b]
            i = atoms[a]
            inv = inv_m[i]
            hx, hy, hz = g[0, b, 0] * inv, g[0, b, 1] * inv, g[0, b, 2] * inv
            if has_noise:
                z0, z1, z2 = normal3(noise[0], noise[1], noise[2], np.uint64(base + a))
                hx += sig[i] * z0
                hy += sig[i] * z1
                hz += sig[i] * z2
            if has_field:
                hx += field[i, 0]
                hy += field[i, 1]
                hz += field[i, 2]
            x, y, z = rotate_vector(s0[a, 0], s0[a, 1], s0[a, 2], hx, hy, hz, fac, damping)
            d = max(abs(x - s1[a, 0]), abs(y - s1[a, 1]), abs(z - s1[a, 2]))
            s1[a, 0], s1[a, 1], s1[a, 2] = x, y, z
            if d <= _MIDPOINT_TOLERANCE:
                spins[i, 0], spins[i, 1], spins[i, 2] = x, y, z
            else:
                spins[i, 0], spins[i, 1], spins[i, 2] = 0.5 * (s0[a, 0] + x), 0.5 * (s0[a, 1] + y), 0.5 * (s0[a, 2] + z)
                pending[keep] = a
                keep += 1
        npend = keep
    for b in range(npend):
        a = pending[b]
        i = atoms[a]
        spins[i, 0], spins[i, 1], spins[i, 2] = s1[a, 0], s1[a, 1], s1[a, 2]


#: passes (at most) of the spherical midpoint map with the predicted field that make the first
#: iterate of the implicit spin step of non-local potentials consistent with it (no model calls;
#: they stop at a tenth of the spin tolerance)
_PREDICTOR_PASSES = 20

#: per-spin passes (at most) of the fixed-field spherical midpoint inside one iterate of the
#: Anderson spin solver (:func:`_transverse_midpoint_solve`; no model calls)
_INNER_PASSES = 60

#: Anderson spin solver: secant pairs kept (the depth m of Walker & Ni), the relative size below
#: which a pair's residual difference counts as linearly dependent on the newer ones (dropped
#: from the least-squares problem), and the smallest damping of the safeguard before the step
#: counts as diverging
_ANDERSON_DEPTH = 5
_ANDERSON_CONDITION = 1e-8
_MIN_DAMPING = 1.0 / 8.0

#: Newton-Krylov spin solver: Arnoldi products (field-Jacobian products) at most per Newton
#: step, the relative residual its GMRES stops at, and the central-difference step of the
#: single-spin map's derivative (:func:`_map_directional_derivative`)
_KRYLOV_DIMENSION = 8
_KRYLOV_TOLERANCE = 1e-4
_DIFFERENCE_STEP = 1e-6

#: implicit-midpoint sub-steps (fields that depend on the rotating spin itself): stop when
#: the spins change by less than this between iterations, or after this many iterations
_MIDPOINT_TOLERANCE = 1e-14
_MAX_MIDPOINT_ITERATIONS = 30

#: one colour sweep (:func:`_sweep_kernel`), on one thread
_linear_sweep = _sweep_kernel(False)
#: the same with threads over the atoms of one colour (the same bits)
_linear_sweep_parallel = _sweep_kernel(True)


#: below this many magnetic atoms the colour sweep runs on one thread (one colour is too little
#: work per parallel region: thread synchronisation would cost more than it saves). A module
#: parameter (the result does not change by a bit)
PARALLEL_MIN_SPINS = 8192


# ------------------------------------------------------------------------------ workspace
class _Colouring:
    """Spin colour classes kept by an integrator between runs.

    The classes are a function of the neighbour-list build they were made for (its pairs and its
    reference positions), never of the positions a run happens to start from: a run split into
    pieces, or restarted from a trajectory that restores the list (:meth:`checkpoint`), sweeps
    the spins in the same order as one long run, so it gives the same trajectory bit for bit.
    Without a neighbour list (pair tables only), the positions of the first colouring play the
    reference's part."""

    __slots__ = ("nl", "builds", "potential", "mask", "positions", "classes")

    def __init__(self):
        self.nl = self.builds = self.potential = self.mask = self.positions = self.classes = None

    def matches(self, potential, nl, mask) -> bool:
        return (self.classes is not None and self.potential is potential and self.nl is nl
                and (nl is None or self.builds == nl.n_builds) and np.array_equal(self.mask, mask))


class _Work:
    """Mutable arrays of one run, wrapped in a State the potential reads (never the input), and
    the field engine's couplings at the current positions."""

    def __init__(self, state, potential, colouring=None, engine=None):
        self.pos = np.array(state.positions, dtype=np.float64, order="C")
        self.vel = np.array(state.velocities, dtype=np.float64, order="C")
        self.spins = np.array(state.spins, dtype=np.float64, order="C")
        self.moments = np.array(state.moments, dtype=np.float64)
        self.state = state.with_arrays(positions=self.pos, spins=self.spins, moments=self.moments,
                                       velocities=self.vel)
        self.acc = units.FORCE_TO_ACCELERATION / np.asarray(state.masses, dtype=np.float64)
        self.potential = potential
        self.engine = SpinFieldEngine(potential) if engine is None or engine.potential is not potential else engine
        self.mag_atoms = np.flatnonzero(self.moments > 0).astype(np.int64)
        self.nl = None
        self._nl_builds = -1
        self.classes = None
        self.couplings = None
        self.colouring = _Colouring() if colouring is None else colouring
        self.update_neighbors()
        self.inv_m = self.inverse_moments()
        self.calls = 0  # calls of potential.compute
        self.spin_iterations = 0  # model calls of implicit spin steps
        self.jvp_calls = 0  # field-Jacobian products of the Newton spin solver
        self.unconverged = []  # residuals of implicit spin steps that reached the iteration cap
        self.diverged = None  # the growing residual of a diverging implicit spin step
        self.magnitude_calls = 0  # model calls of adiabatic magnitude relaxations
        self.magnitude_pairs = None  # L-BFGS pairs carried from relaxation to relaxation (NVE), or None
        self.magnitudes_unconverged = []  # longitudinal fields of relaxations that hit their cap
        # fast path: every magnetic term gives linear couplings, the whole sweep is one kernel
        self.linear = potential.local and not potential.depends_on_magnitudes and self.engine.complete

    def update_neighbors(self):
        """After the positions moved: the neighbour list, the couplings and (when the list was
        rebuilt) the colour classes."""
        pot = self.potential
        if pot.cutoff > 0:
            self.nl = pot.neighbor_list(self.state)
        c = self.engine.update(self.state, self.nl)
        if c is not self.couplings:
            self.couplings = c
            self.kernel_couplings = c.kernel_arrays()
            mask = c.self_coupled_mask()
            self.self_coupled = _NO_ATOMS if mask is False else mask
        if self.classes is not None and (self.nl is None or self.nl.n_builds == self._nl_builds):
            return
        if self.nl is not None:
            self._nl_builds = self.nl.n_builds
        mask = self.moments > 0
        col = self.colouring
        if not col.matches(pot, self.nl, mask):
            col.classes = self._colour_classes(self._reference_positions(col))
            col.potential, col.nl, col.mask = pot, self.nl, mask.copy()
            col.builds = self.nl.n_builds if self.nl is not None else None
        self.classes = col.classes
        sizes = np.array([len(c) for c in self.classes], dtype=np.int64)
        self.cls_off = np.zeros(len(sizes) + 1, dtype=np.int64)
        np.cumsum(sizes, out=self.cls_off[1:])
        self.cls_atoms = (np.concatenate(self.classes).astype(np.int64) if len(self.classes)
                          else np.zeros(0, dtype=np.int64))
        nc = len(self.classes)
        self.order = np.array(list(range(nc)) + list(range(nc - 2, -1, -1)), dtype=np.int64)
        self.n_rotations = int(sizes.sum() + sizes[:-1].sum()) if nc else 0

    def inverse_moments(self):
        """1/|m_i| (1/μB), 0 on non-magnetic atoms, at the current moments."""
        inv = np.zeros_like(self.moments)
        np.divide(1.0, self.moments, out=inv, where=self.moments > 0)
        return inv

    def _reference_positions(self, col):
        """Positions the colouring is made at: the neighbour list's reference positions (then
        every pair that can come within the cutoff before the next rebuild is in the graph), or,
        without a list, those of the integrator's first colouring (restored on restart)."""
        if self.nl is not None:
            ref = self.nl.reference_positions
        elif col.positions is not None and col.positions.shape == self.pos.shape:
            ref = col.positions
        else:
            ref = self.pos.copy()
        col.positions = ref
        return ref

    def _colour_classes(self, ref):
        """Colour classes of the magnetic atoms for the pairs of the coupling table and, for the
        magnetic terms without couplings, the neighbour-list pairs within their cutoff (plus the
        skin) at the reference positions ``ref`` (N, 3) Å."""
        pot, n = self.potential, len(self.pos)
        mag = self.moments > 0
        if not pot.local:  # non-local: all spins at once
            return [self.mag_atoms] if len(self.mag_atoms) else []
        extra_cutoff = max([t.cutoff for t in self.engine.extra], default=0.0)
        c = self.couplings
        if c.n_couplings == 0 and (self.nl is None or extra_cutoff <= 0):
            return [self.mag_atoms] if len(self.mag_atoms) else []
        if c.n_couplings == 0:  # neighbour-list pairs only
            cut = min(extra_cutoff + self.nl.skin, self.nl.cutoff + self.nl.skin)
            return spin_color_classes(self.state.with_arrays(positions=ref), self.nl, cutoff=cut)
        # the coupling table holds magnetic atoms only, every pair in both rows: a symmetric
        # graph as it is (no pair arrays: at 128 000 bcc atoms they were a third of the NVE
        # peak memory, ~450 B/atom, bench_memory_breakdown.py --transients)
        if self.nl is None or extra_cutoff <= 0:
            return color_classes(best_coloring(c.offsets, c.neighbors, n, ref), mask=mag)
        i, j = np.repeat(np.arange(n, dtype=np.int64), np.diff(c.offsets)), c.neighbors
        cut = min(extra_cutoff + self.nl.skin, self.nl.cutoff + self.nl.skin)
        keep = np.linalg.norm(self.nl.vectors(ref), axis=1) < cut
        keep &= mag[self.nl.i] & mag[self.nl.j]
        i = np.concatenate([i, np.asarray(self.nl.i, dtype=np.int64)[keep]])
        j = np.concatenate([np.asarray(j, dtype=np.int64), np.asarray(self.nl.j, dtype=np.int64)[keep]])
        offsets, nb = csr_from_pairs(i, j, n)
        return color_classes(best_coloring(offsets, nb, n, ref), mask=mag)

    def rotation_fields(self, atoms):
        """Rotation fields (eV/μB) of the spins ``atoms`` from the field engine."""
        return self.engine.rotation_fields(self.state, self.nl, atoms)

    def evaluate(self, magnetic_forces):
        """Forces (and magnetic forces if asked) of the potential at the current arrays."""
        self.calls += 1
        return self.potential.compute(self.state, self.nl, forces=True, magnetic_forces=magnetic_forces)

    def fields(self):
        """Magnetic forces h = −∂E/∂m (N, 3) eV/μB of the potential at the current arrays (one
        call of ``potential.compute``)."""
        self.calls += 1
        return self.potential.compute(self.state, self.nl, forces=False, magnetic_forces=True).magnetic_forces

    def linearization(self):
        """The potential's fields and their linearisation at the current arrays
        (``potential.field_linearization``; one model call)."""
        self.calls += 1
        return self.potential.field_linearization(self.state, self.nl)

    def final_state(self):
        return self.state.with_arrays()


def _as_steps(steps):
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise InputError(f"steps must be a non-negative integer, got {steps!r}")
    return int(steps)


class _SpinLatticeBase(Integrator):
    moves_lattice = True
    moves_spins = True

    def __init__(self, dt):
        super().__init__()
        self.dt = check_dt(dt)
        self._colouring = _Colouring()  # spin colour classes, kept between runs
        self._relaxed = None  # (State, potential, relaxed magnitudes of the step before it)
        self._engine = None  # field engine of the last potential, kept between runs

    def check(self, state, potential) -> None:
        from ..potentials.base import Potential

        if not isinstance(potential, Potential):
            raise InputError(f"{type(self).__name__} needs a spinlat Potential, got {type(potential).__name__}")
        super().check(state, potential)
        check_dt(self.dt)
        if not isinstance(state, State):
            raise InputError(f"{type(self).__name__} needs a spinlat State, got {type(state).__name__}")
        potential.check_state(state)

    # -------------------------------------------------------------- restarts
    def checkpoint(self, potential=None) -> dict:
        """:meth:`Integrator.checkpoint` plus ``reference_positions`` (N, 3) Å: the positions the
        neighbour list and the spin colouring of the last run were built at (absent before the
        first run), and with adiabatic magnitudes ``previous_magnitudes`` (N,) μB, the relaxed
        magnitudes of the step before the last (they extrapolate the next step's)."""
        out = super().checkpoint(potential)
        if self._colouring.positions is not None:
            out["reference_positions"] = self._colouring.positions
        if self._relaxed is not None and self._relaxed[2] is not None:
            out["previous_magnitudes"] = self._relaxed[2]
        return out

    def restore(self, checkpoint, state, potential) -> None:
        """:meth:`Integrator.restore`, and rebuild ``potential``'s neighbour list at the
        checkpoint's ``reference_positions`` (where the interrupted run had built it), so that
        the spin colouring, and with it the trajectory, continue bit for bit. A list that would
        not be valid for ``state`` (atoms moved more than skin/2 from the reference) is built at
        ``state`` instead."""
        super().restore(checkpoint, state, potential)
        self._colouring = _Colouring()
        self.last_run = None
        prev = checkpoint.get("previous_magnitudes")
        prev = None if prev is None else np.array(prev, dtype=np.float64)
        ok = prev is not None and prev.shape == (len(state),) and np.all(np.isfinite(prev)) and np.all(prev >= 0)
        self._relaxed = (state, potential, prev) if ok else None
        ref = checkpoint.get("reference_positions")
        if ref is None:
            return
        ref = np.array(ref, dtype=np.float64)
        if ref.shape != np.shape(state.positions) or not np.all(np.isfinite(ref)):
            return
        if potential.cutoff > 0:
            nl = potential.neighbor_list(state)
            if not np.array_equal(nl.reference_positions, ref):
                nl.build(state.with_arrays(positions=ref))
                if nl.needs_rebuild(state):
                    nl.build(state)
                    return
        self._colouring.positions = ref

    # -------------------------------------------------------------- shared pieces
    def _work(self, state, potential):
        ws = _Work(state, potential, self._colouring, self._engine)
        self._engine = ws.engine
        return ws

    def _initial_forces(self, ws, state, potential, need_fields):
        """The forces (and fields if ``need_fields``) at ``state``: those the last run left with it
        when ``state`` is the State it returned, else evaluated."""
        ev = self.evaluation_at(state, potential, forces=True, magnetic_forces=need_fields)
        return ws.evaluate(need_fields) if ev is None else ev

    def _finish(self, ws, potential, ev):
        return self._record(ws.final_state(), potential, ev)

    def _sweep(self, ws, tau, damping=0.0, sigma=None, rng=None):
        """Advance the spins by tau fs: colours forward (tau/2 each), then backward (tau/2 each);
        the last colour's two rotations merged. ``sigma`` (N,) noise amplitude per unit
        duration^-1/2 (eV/μB·fs^½) for stochastic LLG, with ``rng`` the
        :class:`~spinlat.integrators.noise.PhiloxNoise` stream (one draw per call)."""
        classes = ws.classes
        nc = len(classes)
        if nc == 0:
            return
        if ws.linear:
            q = 0.5 * tau
            if sigma is not None:  # one draw, rows in sweep order, drawn inside the kernel
                check_rows(ws.n_rotations)
                k0, k1, _ = rng.words
                noise = np.array([k0, k1, rng.take()], dtype=np.uint64)
                sig_q, sig_h = sigma / math.sqrt(q), sigma / math.sqrt(tau)
            else:
                noise, sig_q, sig_h = _NO_NOISE, _EMPTY, _EMPTY
            kernel = (_linear_sweep_parallel if numba.get_num_threads() > 1 and len(ws.mag_atoms) >= PARALLEL_MIN_SPINS
                      else _linear_sweep)
            kernel(ws.spins, ws.cls_off, ws.cls_atoms, ws.order, nc - 1, ws.kernel_couplings, ws.inv_m,
                   ws.self_coupled, angle_factor(q, damping), angle_factor(tau, damping), damping, noise, sig_q, sig_h)
            return
        spins = ws.spins
        q = 0.5 * tau
        fac_q = angle_factor(q, damping)
        fac_h = angle_factor(tau, damping)
        order = list(range(nc)) + list(range(nc - 2, -1, -1))
        implicit = ws.engine.self_dependent()
        rows = rng.normals(ws.n_rotations) if sigma is not None else None  # one draw, rows in sweep order
        base = 0
        for n, c in enumerate(order):
            atoms = classes[c]
            h = ws.rotation_fields(atoms)
            duration = tau if c == nc - 1 else q
            fac = fac_h if c == nc - 1 else fac_q
            noise = None
            if sigma is not None:
                noise = rows[base:base + len(atoms)] * (sigma[atoms] / math.sqrt(duration))[:, None]
                base += len(atoms)
                h = h + noise
            if not implicit:
                rotate_spins(spins, np.ascontiguousarray(h), atoms, fac, damping)
                continue
            # implicit midpoint s1 = R(h((s0 + s1)/2)) s0 (symmetric), by fixed-point iteration
            s0 = spins[atoms]
            rotate_spins(spins, np.ascontiguousarray(h), atoms, fac, damping)
            s1 = spins[atoms]
            for _ in range(_MAX_MIDPOINT_ITERATIONS):
                spins[atoms] = 0.5 * (s0 + s1)
                h = ws.rotation_fields(atoms)
                if noise is not None:
                    h = h + noise
                spins[atoms] = s0
                rotate_spins(spins, np.ascontiguousarray(h), atoms, fac, damping)
                new = spins[atoms]
                done = np.max(np.abs(new - s1), initial=0.0) <= _MIDPOINT_TOLERANCE
                s1 = new
                if done:
                    break

    def _global_fields(self, ws):
        return ws.fields()

    # -------------------------------------------------------------- adiabatic magnitudes
    def _magnitude_options(self, adiabatic_magnitudes, magnitude_tolerance, max_magnitude_iterations):
        self.adiabatic_magnitudes = validation.boolean(adiabatic_magnitudes, "adiabatic_magnitudes")
        self.magnitude_tolerance = validation.number(magnitude_tolerance, "magnitude_tolerance", positive=True,
                                                     unit="eV/μB")
        self.max_magnitude_iterations = validation.integer(max_magnitude_iterations, "max_magnitude_iterations",
                                                           minimum=1)

    def _magnitude_repr(self):
        if not self.adiabatic_magnitudes:
            return ""
        return (f", adiabatic_magnitudes=True, magnitude_tolerance={self.magnitude_tolerance}, "
                f"max_magnitude_iterations={self.max_magnitude_iterations}")

    def _check_magnitudes(self, potential):
        # the options as the constructor checks them: they may have been changed since
        self._magnitude_options(self.adiabatic_magnitudes, self.magnitude_tolerance, self.max_magnitude_iterations)
        if self.adiabatic_magnitudes and not potential.depends_on_magnitudes:
            raise InputError(f"{type(self).__name__}: adiabatic_magnitudes=True but {potential!r} does not depend "
                             f"on moment magnitudes")

    def _adiabatic_start(self, ws, ev):
        """The run's first evaluation with relaxed magnitudes: ``ev`` itself when its longitudinal
        fields are already within the tolerance (a State this integrator returned), else
        :meth:`_relax_magnitudes`."""
        h = ev.magnetic_forces
        mag = ws.mag_atoms
        if h is not None and (len(mag) == 0 or np.max(np.abs(np.einsum("ij,ij->i", h[mag], ws.spins[mag])))
                              <= self.magnitude_tolerance):
            return ev
        return self._relax_magnitudes(ws)

    def _previous_magnitudes(self, state, potential):
        """The relaxed magnitudes of the step before ``state`` (the State the last run returned),
        or None."""
        saved = self._relaxed
        if saved is None or saved[0] is not state or saved[1] is not potential:
            return None
        return saved[2]

    def _midstep_magnitudes(self, ws, previous):
        """Before the spins and positions move: the magnitudes the step's spin motion uses,
        extrapolated to the middle of the step, μ_n + (μ_n − μ_{n−1})/2, from the relaxed ones
        μ_n (now in the arrays) and ``previous`` μ_{n−1} (None: μ_n). Held at μ_n, the spins would
        precess at magnitudes lagging the relaxed ones by O(dt) and each relaxation would take
        O(dt²) of energy away (a drift ∝ dt); at the midpoint values those losses cancel to
        leading order. Returns μ_n (the next call's ``previous``)."""
        now = ws.moments.copy()
        if previous is not None and previous.shape == now.shape:
            mag = now > 0
            ws.moments[mag] = np.maximum(now[mag] + 0.5 * (now[mag] - previous[mag]), 0.5 * now[mag])
            ws.inv_m = ws.inverse_moments()
        return now

    def _relax_magnitudes(self, ws, now=None):
        """Relax the moment magnitudes of the run's arrays at their positions and spin directions
        (:func:`spinlat.minimization.relax_magnitudes`, L-BFGS from the current magnitudes, to
        ``magnitude_tolerance`` eV/μB), in place; returns the Evaluation (forces and magnetic
        forces) at the relaxed magnitudes, the descent's last one.

        Warm start (when ``ws.magnitude_pairs`` holds the L-BFGS pairs of the previous
        relaxations, :class:`SpinLatticeNVE`): the descent starts with those pairs as its
        inverse-Hessian model and, given ``now`` (the relaxed magnitudes μ_n the step started
        from; the arrays hold the mid-step ones μ_n + (μ_n − μ_{n−1})/2), from the linear
        extrapolation μ_n + (μ_n − μ_{n−1}) instead of the mid-step values. Only the starting
        point changes: the result is the relaxed magnitudes to the same tolerance."""
        if now is not None and ws.magnitude_pairs is not None and now.shape == ws.moments.shape:
            mag = ws.mag_atoms
            ws.moments[mag] = np.maximum(2.0 * ws.moments[mag] - now[mag], 0.5 * now[mag])
        st, ev, res = magnitude_relaxer(ws.state, ws.potential, ws.nl, hmax=self.magnitude_tolerance,
                                       max_steps=self.max_magnitude_iterations, pairs=ws.magnitude_pairs)
        ws.calls += res.n_evaluations
        ws.magnitude_calls += res.n_evaluations
        if not res.converged:
            ws.magnitudes_unconverged.append(res.max_longitudinal)
        ws.moments[:] = st.moments
        ws.inv_m = ws.inverse_moments()
        return ev

    def _warn_magnitudes(self, ws, steps):
        if ws.magnitudes_unconverged:
            warnings.warn(ConvergenceWarning(
                f"{type(self).__name__}: the adiabatic magnitude relaxation stopped at max_magnitude_iterations="
                f"{self.max_magnitude_iterations} before magnitude_tolerance={self.magnitude_tolerance:g} eV/μB "
                f"{len(ws.magnitudes_unconverged)} times in {steps} steps (largest longitudinal field "
                f"{max(ws.magnitudes_unconverged):.3g} eV/μB)"), stacklevel=3)

    def _implicit_spin_step(self, ws, tau, predictor, h_end):
        """Spherical-midpoint step of all spins over tau fs at fixed positions and moment
        magnitudes (non-local potentials, no damping): s1 solves s1 = Φ(s0, h(m̂)), m̂ =
        (s0 + s1)/|s0 + s1| (:func:`_spherical_midpoint`), by fixed-point iteration on the field.

        The first iterate comes without a model call from the field ``predictor``
        (:class:`_MidpointPredictor`) extrapolates (``h_end``, the fields of the evaluation that
        ended the previous step, when it has no history); each further iterate costs one call of
        ``potential.compute`` for the magnetic forces at the midpoints. It stops when the
        estimated error of the newest iterate is ≤ ``spin_tolerance``: Ostrowski's estimate
        r·q/(1 − q) from the last change r and the contraction q (observed in this step, or, after
        the first call, twice the one observed in a recent step; every :data:`_RECHECK` steps
        the contraction is measured again). After ``max_spin_iterations`` calls it records the
        step as unconverged (the run warns, :class:`~spinlat.errors.ConvergenceWarning`) and
        keeps the last iterate; growing changes mark it as diverging (the run raises). Spin
        lengths are exact whatever the iterate."""
        spins = ws.spins
        s0 = spins.copy()
        s1 = s0.copy()
        new = np.empty_like(s0)
        fac = angle_factor(tau)
        h = np.ascontiguousarray(predictor.predict(h_end), dtype=np.float64)
        for _ in range(_PREDICTOR_PASSES):  # consistent with the predicted field: no model call
            res = _spherical_midpoint(s0, s1, h, fac, new)
            s1, new = new, s1
            if res <= 0.1 * self.spin_tolerance:
                break
        known = predictor.contraction if predictor.unchecked < _RECHECK else None
        res = prev = np.inf
        calls = 0
        for calls in range(1, self.max_spin_iterations + 1):
            _normalised_midpoints(s0, s1, spins)
            h = np.ascontiguousarray(ws.fields(), dtype=np.float64)
            ws.spin_iterations += 1
            res = _spherical_midpoint(s0, s1, h, fac, new)
            s1, new = new, s1
            if calls == 1 and known is not None:
                err = _iteration_error(res, res / min(2.0 * known, 1.0) if known > 0 else np.inf)
            else:
                err = _iteration_error(res, prev)
            if calls > 1 and prev > 0:
                predictor.contraction = res / prev
            if err <= self.spin_tolerance:
                break
            if not res < prev:  # growing changes: the iteration diverges
                ws.diverged = res
                break
            prev = res
        else:
            ws.unconverged.append(res)
        predictor.unchecked = predictor.unchecked + 1 if calls == 1 else 0
        predictor.record(h)
        spins[:] = s1

    def _anderson_spin_step(self, ws, tau, predictor, h_end):
        """Spherical-midpoint step of all spins over tau fs (the equation of
        :meth:`_implicit_spin_step`) solved by Anderson acceleration of the fixed-point iteration
        (Walker & Ni, SIAM J. Numer. Anal. 49, 1715 (2011); mixing β = 1, depth
        :data:`_ANDERSON_DEPTH`) on the iterate x of the end spins, each iterate one model call.

        Map: x → the midpoints m̂ = (s0 + x)/|s0 + x| → h(m̂) (one call of ``potential.compute``)
        → T(x), the spins of the spherical midpoint step in the part of h transverse to m̂ with
        the single-spin dependence on the midpoint solved exactly
        (:func:`_transverse_midpoint_solve`); residual f = T(x) − x, its largest component the
        error measure. Anderson mixing: x⁺ = x + f − Σ_j γ_j (Δx_j + Δf_j), γ the least-squares
        fit of f by the residual differences Δf_j of the last secant pairs (:func:`_anderson_coefficients`).
        The pairs (the Jacobian of the map changes little from step to step) are carried from step
        to step in ``predictor`` and checkpointed.

        First iterate, no model call: the spins consistent with the predicted field h⊥(start) +
        δ, h⊥(start) the fields ``h_end`` of the evaluation that ended the previous step
        (transverse to the start spins) and δ the cubic extrapolation of the same increments
        (midpoint field − start field, transverse parts) of the last four steps.

        Stops when the estimated error of T(x) is ≤ ``spin_tolerance``: ‖f‖·L/(1 − L) with L the
        largest secant ratio ‖ΔT‖/‖Δx‖ of the step (before any, twice the last step's; none
        known: ‖f‖ itself), Ostrowski's bound for a map of Lipschitz constant L < 1/2, and
        keeps T(x) (unit spins to round-off). Safeguard: when a residual exceeds the smallest of
        the step, the secant pairs are dropped and the iteration restarts from the best iterate
        with a damped fixed-point step x + β f, β halved each time; below β =
        :data:`_MIN_DAMPING` the step counts as diverging (the run raises). After
        ``max_spin_iterations`` calls it records the step as unconverged (the run warns)."""
        spins = ws.spins
        s0, fac, tol, inner_tol, x, h_start = self._solver_start(ws, tau, predictor, h_end)
        memory = predictor.memory
        carried = predictor.lipschitz
        lip = None  # largest secant ratio of this step
        g = np.empty_like(s0)
        h_perp = np.empty_like(s0)
        x_prev = f_prev = None
        best = None  # (residual, x, f) of the best iterate
        beta = 1.0
        fn = np.inf
        converged = False
        for _ in range(self.max_spin_iterations):
            _normalised_midpoints(s0, x, spins)
            h = np.ascontiguousarray(ws.fields(), dtype=np.float64)
            ws.spin_iterations += 1
            fn = _transverse_midpoint_solve(s0, x, h, fac, g, inner_tol)
            f = g - x
            if x_prev is not None:
                dx, df = x - x_prev, f - f_prev
                ndx = math.sqrt(float(np.sum(dx * dx)))
                if ndx > 0.0:
                    ratio = math.sqrt(float(np.sum((dx + df) ** 2))) / ndx
                    lip = ratio if lip is None else max(lip, ratio)
                    memory.append((dx, df))
                    del memory[:-_ANDERSON_DEPTH]
            q = lip if lip is not None else (2.0 * carried if carried is not None else None)
            err = fn * q / (1.0 - q) if q is not None and q < 0.5 else fn
            if err <= tol:
                converged = True
                break
            if best is not None and not fn < best[0]:  # the residual grew: safeguard
                memory.clear()
                beta *= 0.5
                if beta < _MIN_DAMPING:
                    ws.diverged = fn
                    break
                _, x_prev, f_prev = best
                x = x_prev + beta * f_prev
                continue
            best = (fn, x, f)
            x_prev, f_prev = x, f
            if memory:
                gamma = _anderson_coefficients(np.array([p[1].ravel() for p in memory]), f.ravel(),
                                               _ANDERSON_CONDITION)
                x = x + beta * f
                for c, (dx, df) in zip(gamma, memory):
                    if c != 0.0:
                        x -= c * (dx + beta * df)
            else:
                x = x + beta * f
        if not converged and ws.diverged is None:
            ws.unconverged.append(fn)
        if lip is not None:
            predictor.lipschitz = lip
        _project_on_midpoints(h, s0, x, h_perp)
        predictor.record(h)
        predictor.record_increment(h_perp - h_start)
        spins[:] = g

    def _solver_start(self, ws, tau, predictor, h_end):
        """What the Anderson and Newton spin solvers start from: (start spins s0 (a copy), γτ/μB,
        ``spin_tolerance``, the tolerance of the single-spin solves, the predicted end spins,
        the start fields transverse to s0) (:func:`_predicted_end_spins`)."""
        s0 = ws.spins.copy()
        fac = angle_factor(tau)
        tol = self.spin_tolerance
        x, h_start = _predicted_end_spins(s0, fac, tol, predictor, h_end)
        return s0, fac, tol, max(1e-3 * tol, 1e-15), x, h_start

    def _newton_spin_step(self, ws, tau, predictor, h_end):
        """Spherical-midpoint step of all spins over tau fs (the equation x = T(x) of
        :meth:`_anderson_spin_step`) solved by inexact Newton-Krylov (Knoll & Keyes, J. Comput.
        Phys. 193, 357 (2004)): at each iterate one model call gives the midpoint fields and their
        linearisation (``potential.field_linearization``, mMACE), the residual f = T(x) − x, and
        the Newton correction d solves (I − T'(x)) d = f by GMRES (Saad & Schultz, SIAM J. Sci.
        Stat. Comput. 7, 856 (1986); at most :data:`_KRYLOV_DIMENSION` products, to
        :data:`_KRYLOV_TOLERANCE` relative or 0.1·``spin_tolerance``), each product T'(x) v one
        field-Jacobian product (a double backward through the kept graph) with the single-spin
        parts of T differentiated by central differences (:func:`_map_directional_derivative`;
        no model call). First iterate: the Anderson solver's prediction. Stops like it: the
        estimated error of T(x), ‖f‖·q/(1 − q) with q the largest ‖T'v‖/‖v‖ the Arnoldi products
        met (before any, twice the last step's), is ≤ ``spin_tolerance``; keeps T(x) (unit
        spins). A growing residual halves the last correction (at most three times, then the
        step counts as diverging); ``max_spin_iterations`` calls without convergence record the
        step as unconverged. Potentials without ``field_linearization`` take the Anderson
        solver. Nothing beyond the Anderson predictor's fields is carried from step to step."""
        spins = ws.spins
        s0, fac, tol, inner_tol, x, h_start = self._solver_start(ws, tau, predictor, h_end)
        mu = ws.moments[:, None]
        g = np.empty_like(s0)
        carried = predictor.lipschitz
        lip = None
        fn = np.inf
        prev = None  # (residual, iterate, correction) of the last Newton update
        halvings = 0
        converged = False
        h = None
        for _ in range(self.max_spin_iterations):
            _normalised_midpoints(s0, x, spins)
            lin = ws.linearization()
            h = np.ascontiguousarray(lin.fields, dtype=np.float64)
            ws.spin_iterations += 1
            fn = _transverse_midpoint_solve(s0, x, h, fac, g, inner_tol)
            q = lip if lip is not None else (2.0 * carried if carried is not None else None)
            err = fn * q / (1.0 - q) if q is not None and q < 0.5 else fn
            if err <= tol:
                converged = True
                break
            if prev is not None and not fn < prev[0]:  # the residual grew: shorten the last correction
                halvings += 1
                if halvings > 3:
                    ws.diverged = fn
                    break
                d = 0.5 * prev[2]
                prev = (prev[0], prev[1], d)
                x = prev[1] + d
                continue
            f = g - x
            spins_mid = spins.copy()

            def product(v, x=x, h=h, lin=lin, spins_mid=spins_mid):
                return _map_directional_derivative(s0, x, h, fac, v, lin, mu, spins_mid, ws)

            d, ratio = _gmres(product, f, max(_KRYLOV_TOLERANCE * fn, 0.1 * tol), _KRYLOV_DIMENSION)
            lip = ratio if lip is None else max(lip, ratio)
            prev = (fn, x, d)
            x = x + d
        if not converged and ws.diverged is None:
            ws.unconverged.append(fn)
        if lip is not None:
            predictor.lipschitz = lip
        h_perp = np.empty_like(s0)
        _project_on_midpoints(h, s0, x, h_perp)
        predictor.record(h)
        predictor.record_increment(h_perp - h_start)
        spins[:] = g

    def _global_spin_step(self, ws, tau, h0, damping=0.0, noise=None):
        """Explicit midpoint rotation of all spins over tau fs (non-local potentials); h0 is the
        predictor field (eV/μB): the fields at the current spins, or those of any evaluation
        O(tau) away (None: evaluated here). ``noise`` (N,3) eV/μB is added to both fields
        (Stratonovich-consistent). Returns the midpoint fields without noise (a next predictor)."""
        atoms = ws.mag_atoms
        if len(atoms) == 0:
            return h0
        spins = ws.spins
        s0 = spins.copy()
        if h0 is None:
            h0 = self._global_fields(ws)
        h = np.ascontiguousarray(h0, dtype=np.float64).copy()
        _project_transverse_all(h, spins)
        if noise is not None:
            h += noise
        rotate_all(spins, h, angle_factor(0.5 * tau, damping), damping)
        h1 = np.array(self._global_fields(ws), dtype=np.float64)
        _project_transverse_all(h1, spins)
        h_mid = h1
        if noise is not None:
            h1 = h1 + noise
        spins[:] = s0
        rotate_all(spins, h1, angle_factor(tau, damping), damping)
        return h_mid


_NO_NOISE = np.zeros(0, dtype=np.uint64)
_EMPTY = np.zeros(0)
_NO_ATOMS = np.zeros(0, dtype=np.bool_)


def _predicted_end_spins(s0, fac, tol, predictor, h_end):
    """The first iterate of the Anderson and Newton spin solvers, no model call: the end spins
    consistent with the predicted midpoint field h⊥(start) + δ (``h_end`` transverse to the start
    spins ``s0`` plus the extrapolated increments of ``predictor``), by at most
    :data:`_PREDICTOR_PASSES` spherical-midpoint maps (to 0.1·``tol``). Returns (iterate, h⊥(start))."""
    h_start = np.empty_like(s0)
    _project_on_midpoints(np.ascontiguousarray(h_end, dtype=np.float64), s0, s0, h_start)
    h = np.ascontiguousarray(predictor.predict_from_start(h_start), dtype=np.float64)
    x = s0.copy()
    new = np.empty_like(s0)
    for _ in range(_PREDICTOR_PASSES):  # consistent with the predicted field: no model call
        res = _spherical_midpoint(s0, x, h, fac, new)
        x, new = new, x
        if res <= 0.1 * tol:
            break
    return x, h_start


def _map_directional_derivative(s0, x, h, fac, v, lin, mu, mid, ws):
    """T'(x) v of the spin map T(x) = :func:`_transverse_midpoint_solve` (s0, x, h(m̂(x))) for the
    direction ``v`` (N, 3): the field change w = ∂h/∂m · μ ∂m̂/∂x v (m̂ = (s0 + x)/ρ, ρ = |s0 + x|,
    ∂m̂/∂x v = (v − m̂ (m̂·v))/ρ; one product of ``lin``, counted in ``ws.jvp_calls``), then the
    central difference (T(x + εv; h + εw) − T(x − εv; h − εw))/(2ε) of the single-spin map at
    ε = :data:`_DIFFERENCE_STEP`/max|v| (no model call; truncation O(ε²), round-off ~1e-16/ε,
    both far below the Newton tolerance of the linear solve)."""
    vmax = float(np.abs(v).max())
    if vmax == 0.0:
        return np.zeros_like(v)
    rho = np.linalg.norm(s0 + x, axis=1)[:, None]
    rho = np.where(rho > 0.0, rho, 1.0)
    dm = (v - mid * np.sum(mid * v, axis=1)[:, None]) / rho
    w = lin.apply(mu * dm)
    ws.jvp_calls += 1
    eps = _DIFFERENCE_STEP / vmax
    plus, minus = np.empty_like(s0), np.empty_like(s0)
    _transverse_midpoint_solve(s0, x + eps * v, np.ascontiguousarray(h + eps * w), fac, plus, 1e-16)
    _transverse_midpoint_solve(s0, x - eps * v, np.ascontiguousarray(h - eps * w), fac, minus, 1e-16)
    return (plus - minus) / (2.0 * eps)


def _gmres(product, f, atol, kmax):
    """GMRES (Saad & Schultz, SIAM J. Sci. Stat. Comput. 7, 856 (1986)) for (I − K) d = f, K v =
    ``product(v)`` (arrays of f's shape), from d = 0, Arnoldi by modified Gram-Schmidt, at most
    ``kmax`` products, stopping when the least-squares residual is ≤ ``atol`` (max norm of the
    2-norm estimate). Returns (d, q) with q the largest ‖K v‖/‖v‖ of the Arnoldi vectors (a lower
    bound on the norm of K: the solvers' contraction estimate)."""
    beta = math.sqrt(float(np.sum(f * f)))
    if beta == 0.0:
        return np.zeros_like(f), 0.0
    basis = [f / beta]
    hess = np.zeros((kmax + 1, kmax))
    q = 0.0
    y = np.zeros(0)
    for k in range(kmax):
        kv = product(basis[k])
        q = max(q, math.sqrt(float(np.sum(kv * kv))))
        w = basis[k] - kv
        for j in range(k + 1):
            hess[j, k] = float(np.sum(w * basis[j]))
            w = w - hess[j, k] * basis[j]
        hess[k + 1, k] = math.sqrt(float(np.sum(w * w)))
        rhs = np.zeros(k + 2)
        rhs[0] = beta
        y = np.linalg.lstsq(hess[:k + 2, :k + 1], rhs, rcond=None)[0]
        res = float(np.linalg.norm(hess[:k + 2, :k + 1] @ y - rhs))
        if res <= atol or hess[k + 1, k] <= 1e-14 * beta:
            break
        basis.append(w / hess[k + 1, k])
    d = np.zeros_like(f)
    for j, c in enumerate(y):
        d += c * basis[j]
    return d, q


def _project_transverse_all(h, spins):
    _project_transverse(h, spins, np.arange(len(h), dtype=np.int64))


@numba.njit(cache=True, fastmath=_FMA)
def _spherical_midpoint(s0, s1, h, fac, out):
    """One spherical-midpoint map (McLachlan, Modin & Verdier, Phys. Rev. E 89, 061301 (2014);
    BIT 56, 1373 (2016)) of every spin, in the field ``h`` (N, 3) eV/μB taken at the midpoints:
    out_i = the solution of (out_i − s0_i) = (fac/ρ_i) h⊥_i × (s0_i + out_i), ρ_i = |s0_i + s1_i|,
    h⊥_i = h_i minus its part along m̂_i = (s0_i + s1_i)/ρ_i, with ``fac`` = γτ/μB
    (:func:`~spinlat.integrators.rotation.angle_factor`). For fixed h⊥ and ρ that equation is
    the Cayley transform: s0 rotated about h⊥ (right-handed) by 2 atan(fac |h⊥| / ρ), so spin
    lengths stay 1. ``s1`` is the current iterate (it fixes m̂ and ρ). Returns the largest
    component change max |out − s1| (the fixed-point residual)."""
    res = 0.0
    for i in range(s0.shape[0]):
        x, y, z = _cayley(s0[i, 0], s0[i, 1], s0[i, 2], s1[i, 0], s1[i, 1], s1[i, 2], h[i, 0], h[i, 1], h[i, 2], fac)
        res = max(res, abs(x - s1[i, 0]), abs(y - s1[i, 1]), abs(z - s1[i, 2]))
        out[i, 0], out[i, 1], out[i, 2] = x, y, z
    return res


@numba.njit(cache=True, inline="always")
def _reject(hx, hy, hz, ax, ay, az):
    """(h minus its part along â, |a|) for 3-vectors h and a (h itself when a = 0)."""
    r = math.sqrt(ax * ax + ay * ay + az * az)
    if r > 0.0:
        mx, my, mz = ax / r, ay / r, az / r
        c = hx * mx + hy * my + hz * mz
        hx, hy, hz = hx - c * mx, hy - c * my, hz - c * mz
    return hx, hy, hz, r


@numba.njit(cache=True, fastmath=_FMA, inline="always")
def _cayley(s0x, s0y, s0z, yx, yy, yz, hx, hy, hz, fac):
    """One spin of :func:`_spherical_midpoint`: s0 rotated about h⊥ (h without its part along
    s0 + y) by 2 atan(fac |h⊥| / |s0 + y|); s0 itself when h⊥ or s0 + y vanishes."""
    hx, hy, hz, rho = _reject(hx, hy, hz, s0x + yx, s0y + yy, s0z + yz)
    b = math.sqrt(hx * hx + hy * hy + hz * hz)
    if b == 0.0 or rho == 0.0:
        return s0x, s0y, s0z
    phi = 2.0 * math.atan(fac * b / rho)
    return rotate_vector(s0x, s0y, s0z, hx, hy, hz, phi / b, 0.0)


@numba.njit(cache=True)
def _normalised_midpoints(s0, s1, out):
    """out_i = (s0_i + s1_i)/|s0_i + s1_i| (s0_i where the sum vanishes), in place."""
    for i in range(s0.shape[0]):
        ax, ay, az = s0[i, 0] + s1[i, 0], s0[i, 1] + s1[i, 1], s0[i, 2] + s1[i, 2]
        r = math.sqrt(ax * ax + ay * ay + az * az)
        if r > 0.0:
            out[i, 0], out[i, 1], out[i, 2] = ax / r, ay / r, az / r
        else:
            out[i, 0], out[i, 1], out[i, 2] = s0[i, 0], s0[i, 1], s0[i, 2]


@numba.njit(cache=True, fastmath=_FMA)
def _transverse_midpoint_solve(s0, x, h, fac, out, inner_tol):
    """The spin map of the Anderson spin solver: the spherical midpoint step of every spin in
    the part of ``h`` (N, 3) eV/μB transverse to the midpoint m̂ of the iterate ``x``
    (m̂_i = (s0_i + x_i)/|s0_i + x_i|: the point the fields were computed at; their longitudinal
    part never acts), solved exactly for that fixed field: out_i = s0_i rotated by the Cayley
    rotation of :func:`_spherical_midpoint` with m̂ and ρ taken at out_i itself (per-spin
    iteration to ``inner_tol``, no model call; its rate is about fac|h⊥|/2). This takes the
    local, single-spin part of the dependence of the step on the midpoint out of the outer
    iteration, which then sees only the model's ∂h/∂m. Returns max |out − x| (the residual of
    the outer fixed point; ``out`` is a unit vector to round-off whatever ``x``)."""
    res = 0.0
    for i in range(s0.shape[0]):
        gx, gy, gz, _ = _reject(h[i, 0], h[i, 1], h[i, 2], s0[i, 0] + x[i, 0], s0[i, 1] + x[i, 1], s0[i, 2] + x[i, 2])
        yx, yy, yz = x[i, 0], x[i, 1], x[i, 2]
        for _ in range(_INNER_PASSES):
            nx, ny, nz = _cayley(s0[i, 0], s0[i, 1], s0[i, 2], yx, yy, yz, gx, gy, gz, fac)
            d = max(abs(nx - yx), abs(ny - yy), abs(nz - yz))
            yx, yy, yz = nx, ny, nz
            if d <= inner_tol:
                break
        res = max(res, abs(yx - x[i, 0]), abs(yy - x[i, 1]), abs(yz - x[i, 2]))
        out[i, 0], out[i, 1], out[i, 2] = yx, yy, yz
    return res


@numba.njit(cache=True)
def _project_on_midpoints(h, s0, x, out):
    """out_i = h_i minus its part along m̂_i = (s0_i + x_i)/|s0_i + x_i| (h_i where that vanishes)."""
    for i in range(h.shape[0]):
        out[i, 0], out[i, 1], out[i, 2], _ = _reject(h[i, 0], h[i, 1], h[i, 2], s0[i, 0] + x[i, 0], s0[i, 1] + x[i, 1],
                                                     s0[i, 2] + x[i, 2])


@numba.njit(cache=True)
def _anderson_coefficients(dfs, f, cond):
    """Least-squares coefficients γ = argmin ‖f − Σ_j γ_j dfs[j]‖₂ of Anderson mixing (Walker &
    Ni, SIAM J. Numer. Anal. 49, 1715 (2011), eq. (1.2) in the difference form) by modified
    Gram-Schmidt QR of the columns ``dfs`` (k, M), newest last, serially (the same bits on any
    number of threads). A column whose part orthogonal to the newer ones is below ``cond`` times
    its norm is dropped (γ_j = 0), the newest kept first (Walker & Ni's conditioning control).
    Returns γ (k,)."""
    k, m = dfs.shape
    q = np.zeros((k, m))
    r = np.zeros((k, k))
    used = np.zeros(k, dtype=np.bool_)
    order = np.empty(k, dtype=np.int64)
    nq = 0
    for jj in range(k):
        j = k - 1 - jj  # newest first
        v = dfs[j].copy()
        norm0 = math.sqrt(np.sum(v * v))
        if norm0 == 0.0:
            continue
        coef = np.zeros(k)
        for a in range(nq):
            c = np.sum(q[a] * v)
            coef[a] = c
            v -= c * q[a]
        nv = math.sqrt(np.sum(v * v))
        if nv <= cond * norm0:
            continue
        q[nq] = v / nv
        for a in range(nq):
            r[a, nq] = coef[a]
        r[nq, nq] = nv
        order[nq] = j
        used[j] = True
        nq += 1
    z = np.zeros(nq)
    for a in range(nq):
        z[a] = np.sum(q[a] * f)
    g = np.zeros(nq)
    for a in range(nq - 1, -1, -1):
        s = z[a]
        for b in range(a + 1, nq):
            s -= r[a, b] * g[b]
        g[a] = s / r[a, a]
    gamma = np.zeros(k)
    for a in range(nq):
        gamma[order[a]] = g[a]
    return gamma


# ------------------------------------------------------------------------------ NVE
@refuse_other_names()
class SpinLatticeNVE(_SpinLatticeBase):
    """Symplectic coupled spin-lattice dynamics at constant energy (no damping, no noise).

    Parameters
    ----------
    dt : time step, fs (0 < dt ≤ 10).
    spin_step : spin step of potentials whose ``local`` flag is False (mMACE; local potentials
        always take the colour sweeps): ``"implicit_midpoint"`` (default; the spherical
        midpoint rule, symplectic and time-reversible, solved by fixed-point iteration on the
        field) or ``"explicit_midpoint"`` (the earlier scheme, two model calls per step, energy
        drift ∝ dt²·t; kept for comparison).
    spin_tolerance : the implicit spin step stops when an iterate changes no spin component by
        more than this (dimensionless, ~rad; default 1e-10). Reversibility holds to about this.
    max_spin_iterations : model calls allowed per implicit spin step (default 8); reaching it
        gives a :class:`~spinlat.errors.ConvergenceWarning` at the end of the run; an iteration
        whose changes grow raises :class:`~spinlat.errors.SimulationError` (the step diverges:
        lower dt).
    spin_solver : how the implicit spin step is solved: ``"anderson"`` (default; Anderson
        acceleration of the fixed-point iteration with secant pairs carried from step to step,
        a predictor from the start fields and a damped fallback, see
        :meth:`_SpinLatticeBase._anderson_spin_step`) or ``"fixed_point"`` (the plain fixed-point
        iteration of :meth:`_SpinLatticeBase._implicit_spin_step`) or ``"newton"`` (Newton-Krylov
        with the model's field-Jacobian products, :meth:`_SpinLatticeBase._newton_spin_step`;
        mMACE, other potentials take Anderson). All solve the same equation to
        ``spin_tolerance``: the trajectories agree to about that.

    adiabatic_magnitudes : relax the moment magnitudes at fixed directions after every step
        (potentials with ``depends_on_magnitudes``; default False: magnitudes fixed).
    magnitude_tolerance : largest longitudinal field |s_i·h_i| the relaxation leaves, eV/μB
        (default 1e-6).
    max_magnitude_iterations : L-BFGS iterations per relaxation (default 100); reaching it warns
        (:class:`~spinlat.errors.ConvergenceWarning`).

    One step: half kick of the velocities, half step of the spins (sequential sweep over
    colour classes, forward then backward, each spin rotated exactly about its effective
    field), full drift of the positions, half step of the spins, new forces, half kick; for
    non-local potentials half drift, implicit spin step, half drift (see the module
    docstring). Total energy is conserved to O(dt²) with no drift; spin lengths to round-off.
    Deterministic: the same State gives the same trajectory bit for bit however the run is
    split, restarted or threaded (the implicit spin step's predictor and the previous relaxed
    magnitudes travel with the returned State and in :meth:`checkpoint`).

    Raises InputError for bad options, or ``adiabatic_magnitudes`` with a potential that does
    not depend on magnitudes; SimulationError when the implicit spin step diverges.

    Attributes
    ----------
    statistics : dict of the last ``run``: ``steps``, ``model_calls`` (calls of
        ``potential.compute``, the initial evaluation included when it was not cached),
        ``initial_calls`` (the calls before the first step: 0 when the State came from this
        integrator's last run, else 1, plus the magnitude relaxation's with adiabatic
        magnitudes), ``calls_per_step`` ((model_calls − initial_calls)/steps; 0 for no steps),
        ``spin_iterations`` (of those, the implicit spin steps' field calls), ``jvp_calls``
        (field-Jacobian products of the Newton solver), ``call_equivalents_per_step``
        ((model_calls − initial_calls + :data:`JVP_COST` · jvp_calls)/steps),
        ``unconverged_steps`` and ``magnitude_calls``.
    initial_calls, calls_per_step, call_equivalents_per_step : the same numbers as attributes
        (None before a run).
    """

    def __init__(self, dt, spin_step="implicit_midpoint", spin_tolerance=1e-10, max_spin_iterations=8,
                 adiabatic_magnitudes=False, magnitude_tolerance=1e-6, max_magnitude_iterations=100,
                 spin_solver="anderson"):
        super().__init__(dt)
        self._magnitude_options(adiabatic_magnitudes, magnitude_tolerance, max_magnitude_iterations)
        self.spin_step = validation.choice(spin_step, "spin_step", SPIN_STEPS)
        self.spin_tolerance = validation.number(spin_tolerance, "spin_tolerance", positive=True)
        self.max_spin_iterations = validation.integer(max_spin_iterations, "max_spin_iterations", minimum=1)
        self.spin_solver = validation.choice(spin_solver, "spin_solver", SPIN_SOLVERS)
        self.statistics = {}
        self.initial_calls = self.calls_per_step = self.call_equivalents_per_step = None
        self._magnitude_pairs = None  # (State, potential, (steps, gradient changes)) of the last run
        self._midpoint_fields = None  # (State, potential, _MidpointPredictor) of the last run

    def __repr__(self):
        extra = ("" if self.spin_step == "implicit_midpoint" and self.spin_tolerance == 1e-10
                 and self.max_spin_iterations == 8 and self.spin_solver == "anderson" else
                 f", spin_step={self.spin_step!r}, spin_tolerance={self.spin_tolerance}, "
                 f"max_spin_iterations={self.max_spin_iterations}, spin_solver={self.spin_solver!r}")
        return f"SpinLatticeNVE(dt={self.dt}{extra}{self._magnitude_repr()})"

    def check(self, state, potential) -> None:
        """The parameters as the constructor checks them (they may have been changed since the
        integrator was built), then the state and potential."""
        # the values kept as the constructor keeps them (``max_spin_iterations = 10.0``: the int 10)
        self.spin_step = validation.choice(self.spin_step, "spin_step", SPIN_STEPS)
        self.spin_tolerance = validation.number(self.spin_tolerance, "spin_tolerance", positive=True)
        self.max_spin_iterations = validation.integer(self.max_spin_iterations, "max_spin_iterations", minimum=1)
        self.spin_solver = validation.choice(self.spin_solver, "spin_solver", SPIN_SOLVERS)
        super().check(state, potential)
        self._check_magnitudes(potential)

    def _predictor(self, state, potential):
        """The :class:`_MidpointPredictor` the last run left with ``state`` (the State it returned,
        or restored from a checkpoint); a fresh one for any other State."""
        saved = self._midpoint_fields
        if saved is None or saved[0] is not state or saved[1] is not potential:
            return _MidpointPredictor()
        return saved[2].copy()

    def checkpoint(self, potential=None) -> dict:
        """:meth:`_SpinLatticeBase.checkpoint` plus the implicit spin step's state (so that a
        restart continues bit for bit): ``midpoint_fields`` (K, N, 3) eV/μB, K ≤ 4, the last
        midpoint fields, which predict the next one; ``spin_contraction``, the observed
        contraction of its iteration (−1: none yet); ``spin_unchecked``, steps since it was
        observed; for the Anderson solver ``midpoint_increments`` (K, N, 3) eV/μB, the last
        midpoint-minus-start field increments, ``anderson_dx`` and ``anderson_df`` (M, N, 3),
        M ≤ 5, its secant pairs, and ``spin_lipschitz``, its last secant ratio (each absent when
        empty; a checkpoint without them restarts with a new memory); with adiabatic magnitudes
        ``magnitude_steps`` and ``magnitude_gradient_changes`` (K, N), the L-BFGS pairs the
        relaxations carry (μB, eV/μB)."""
        out = super().checkpoint(potential)
        saved = self._midpoint_fields
        if saved is not None:
            out.update(saved[2].as_checkpoint())
        pairs = self._magnitude_pairs
        if pairs is not None and pairs[2][0]:
            out["magnitude_steps"] = np.array(pairs[2][0], dtype=np.float64)
            out["magnitude_gradient_changes"] = np.array(pairs[2][1], dtype=np.float64)
        return out

    def restore(self, checkpoint, state, potential) -> None:
        super().restore(checkpoint, state, potential)
        pred = _MidpointPredictor.from_checkpoint(checkpoint, len(state))
        self._midpoint_fields = None if pred is None else (state, potential, pred)
        try:
            steps, changes = (np.asarray(checkpoint.get(k, ()), dtype=np.float64)
                              for k in ("magnitude_steps", "magnitude_gradient_changes"))
        except (TypeError, ValueError):
            steps = changes = np.zeros(0)
        ok = (steps.ndim == 2 and steps.shape == changes.shape and steps.shape[1] == len(state)
              and np.all(np.isfinite(steps)) and np.all(np.isfinite(changes)))
        self._magnitude_pairs = (state, potential, (list(steps), list(changes))) if ok else None

    def run(self, state, potential, steps: int) -> State:
        """Advance ``steps`` steps of dt fs; return the new State (the input is not modified).

        Raises SimulationError when the implicit spin step diverges (time step too large)."""
        steps = _as_steps(steps)
        self.check(state, potential)
        ws = self._work(state, potential)
        local = potential.local
        implicit = not local and self.spin_step == "implicit_midpoint"
        predictor = self._predictor(state, potential) if implicit else None
        solver = self.spin_solver
        if solver == "newton" and not hasattr(potential, "field_linearization"):
            solver = "anderson"  # no field Jacobian products: the Anderson solver
        spin_step = {"anderson": self._anderson_spin_step, "fixed_point": self._implicit_spin_step,
                     "newton": self._newton_spin_step}[solver]
        adiabatic = self.adiabatic_magnitudes
        ev = self._initial_forces(ws, state, potential, need_fields=not local or adiabatic)
        if adiabatic:
            ws.magnitude_pairs = self._saved_pairs(state, potential)
            ev = self._adiabatic_start(ws, ev)
            previous = self._previous_magnitudes(state, potential)
        initial_calls = ws.calls
        dt = self.dt
        for step in range(steps):
            last = step == steps - 1
            _kick(ws.vel, ev.forces, ws.acc, 0.5 * dt)
            if adiabatic:
                previous = self._midstep_magnitudes(ws, previous)
            if local:
                self._sweep(ws, 0.5 * dt)
                _drift(ws.pos, ws.vel, dt)
                ws.update_neighbors()
                self._sweep(ws, 0.5 * dt)
            else:  # Strang: drift/2, all spins over dt, drift/2
                _drift(ws.pos, ws.vel, 0.5 * dt)
                ws.update_neighbors()
                if implicit:
                    spin_step(ws, dt, predictor, ev.magnetic_forces)
                    if ws.diverged is not None:
                        raise SimulationError(
                            f"SpinLatticeNVE: the implicit midpoint spin step diverges at step {step + 1} of this run "
                            f"(the fixed-point changes grow, to {ws.diverged:.3g}): the time step dt = {dt} fs is "
                            f"too large for these fields; lower dt")
                else:
                    self._global_spin_step(ws, dt, ev.magnetic_forces)
                _drift(ws.pos, ws.vel, 0.5 * dt)
                ws.update_neighbors()
            ev = self._relax_magnitudes(ws, previous) if adiabatic else ws.evaluate(last or not local)
            _kick(ws.vel, ev.forces, ws.acc, 0.5 * dt)
        if steps == 0:
            ev = ws.evaluate(True) if ev.magnetic_forces is None else ev
        self.initial_calls = initial_calls
        self.calls_per_step = (ws.calls - initial_calls) / steps if steps else 0.0
        self.call_equivalents_per_step = (ws.calls - initial_calls + JVP_COST * ws.jvp_calls) / steps if steps else 0.0
        self.statistics = {"steps": steps, "model_calls": ws.calls, "initial_calls": self.initial_calls,
                           "calls_per_step": self.calls_per_step, "spin_iterations": ws.spin_iterations,
                           "jvp_calls": ws.jvp_calls, "call_equivalents_per_step": self.call_equivalents_per_step,
                           "unconverged_steps": len(ws.unconverged), "magnitude_calls": ws.magnitude_calls}
        self._warn_magnitudes(ws, steps)
        if ws.unconverged:
            warnings.warn(ConvergenceWarning(
                f"SpinLatticeNVE: the implicit midpoint spin step stopped at max_spin_iterations="
                f"{self.max_spin_iterations} before spin_tolerance={self.spin_tolerance:g} in {len(ws.unconverged)} "
                f"of {steps} steps (largest residual {max(ws.unconverged):.3g}); time reversibility holds only to "
                f"that residual: lower dt or raise max_spin_iterations"), stacklevel=2)
        out = self._finish(ws, potential, ev)
        self._midpoint_fields = (out, potential, predictor) if implicit else None
        self._relaxed = (out, potential, previous) if adiabatic and steps else None
        self._magnitude_pairs = (out, potential, ws.magnitude_pairs) if adiabatic and steps else None
        return out

    def _saved_pairs(self, state, potential):
        """Copies of the L-BFGS pair lists of the magnitude relaxations the last run left with
        ``state`` (the State it returned, or restored from a checkpoint); empty ones otherwise."""
        saved = self._magnitude_pairs
        if saved is None or saved[0] is not state or saved[1] is not potential:
            return [], []
        return list(saved[2][0]), list(saved[2][1])


#: the magnitude relaxation of ``adiabatic_magnitudes``: :func:`spinlat.minimization.relax_magnitudes`,
#: installed here by :mod:`spinlat.minimization` when it is imported (``import spinlat`` does),
#: which sits above the integrators (it uses their rotations and L-BFGS), as
#: ``spinlat.potentials.mmace.trainer`` is filled in by :mod:`spinlat.training`
magnitude_relaxer = None

#: spin steps of :class:`SpinLatticeNVE` for non-local potentials
SPIN_STEPS = ("implicit_midpoint", "explicit_midpoint")

#: cost of one field-Jacobian product (a double backward through the graph the linearising model
#: call keeps, :meth:`~spinlat.potentials.MagneticMACE.field_linearization`) in calls of
#: ``potential.compute`` with forces and fields, for the ``call_equivalents_per_step`` statistic:
#: measured 0.7-1.1 for 16 bcc Fe atoms on one busy CPU core (``benchmarks/bench_mmace_nve_drift.py``
#: prints the ratio; its wall times give 1.1), counted as 1
JVP_COST = 1.0

#: solvers of the implicit spin step of :class:`SpinLatticeNVE`
SPIN_SOLVERS = ("anderson", "fixed_point", "newton")

#: midpoint fields kept to predict the next one (cubic extrapolation)
_HISTORY = 4


class _MidpointPredictor:
    """What the implicit spin step of :class:`SpinLatticeNVE` carries from step to step: the
    last :data:`_HISTORY` midpoint fields ``fields`` (eV/μB, oldest first; they predict the next
    one, :func:`_predict_field`), the last observed ``contraction`` of the fixed-point iteration
    (None: not yet) and ``unchecked``, the steps since it was observed; for the Anderson solver
    also the last :data:`_HISTORY` ``increments`` (transverse midpoint field minus transverse
    start field, eV/μB), the secant pairs ``memory`` [(Δx, Δf), …] (N, 3) each, oldest first, and
    ``lipschitz``, the largest secant ratio of the last step that measured one (None: none)."""

    __slots__ = ("fields", "contraction", "unchecked", "increments", "memory", "lipschitz")

    def __init__(self, fields=(), contraction=None, unchecked=0, increments=(), memory=(), lipschitz=None):
        self.fields = [np.array(h, dtype=np.float64) for h in fields]
        self.contraction = contraction
        self.unchecked = unchecked
        self.increments = [np.array(h, dtype=np.float64) for h in increments]
        self.memory = [(np.array(dx, dtype=np.float64), np.array(df, dtype=np.float64)) for dx, df in memory]
        self.lipschitz = lipschitz

    def copy(self):
        return _MidpointPredictor(self.fields, self.contraction, self.unchecked, self.increments, self.memory,
                                  self.lipschitz)

    def predict(self, h_end):
        return _predict_field(self.fields, h_end)

    def predict_from_start(self, h_start):
        """The Anderson solver's predicted midpoint field: ``h_start`` (the transverse start
        field) plus the extrapolated increments; without increments (a checkpoint written before
        they existed) the extrapolated midpoint fields, or ``h_start`` alone."""
        if self.increments:
            return h_start + _predict_field(self.increments, None)
        return _predict_field(self.fields, h_start)

    def record(self, h):
        self.fields.append(h)
        del self.fields[:-_HISTORY]

    def record_increment(self, dh):
        self.increments.append(dh)
        del self.increments[:-_HISTORY]

    def as_checkpoint(self) -> dict:
        if not self.fields:
            return {}
        out = {"midpoint_fields": np.array(self.fields, dtype=np.float64),
               "spin_contraction": -1.0 if self.contraction is None else float(self.contraction),
               "spin_unchecked": int(self.unchecked)}
        if self.increments:
            out["midpoint_increments"] = np.array(self.increments, dtype=np.float64)
        if self.memory:
            out["anderson_dx"] = np.array([p[0] for p in self.memory], dtype=np.float64)
            out["anderson_df"] = np.array([p[1] for p in self.memory], dtype=np.float64)
        if self.lipschitz is not None:
            out["spin_lipschitz"] = float(self.lipschitz)
        return out

    @classmethod
    def from_checkpoint(cls, checkpoint, n):
        """The predictor stored by :meth:`as_checkpoint` for ``n`` atoms, or None (absent or
        malformed). The Anderson solver's entries are optional (checkpoints written before them,
        or by the fixed-point solver, restart with none: the solver starts a new memory)."""
        h = _stack(checkpoint.get("midpoint_fields"), n)
        if h is None:
            return None
        q = checkpoint.get("spin_contraction", -1.0)
        u = checkpoint.get("spin_unchecked", _RECHECK)
        q = float(q) if isinstance(q, (int, float)) and math.isfinite(q) and q >= 0 else None
        u = int(u) if isinstance(u, int) and u >= 0 else _RECHECK
        inc = _stack(checkpoint.get("midpoint_increments"), n)
        dx = _stack(checkpoint.get("anderson_dx"), n, _ANDERSON_DEPTH)
        df = _stack(checkpoint.get("anderson_df"), n, _ANDERSON_DEPTH)
        memory = list(zip(dx, df)) if dx is not None and df is not None and len(dx) == len(df) else ()
        lip = checkpoint.get("spin_lipschitz")
        lip = float(lip) if isinstance(lip, (int, float)) and math.isfinite(lip) and lip >= 0 else None
        return cls(list(h), q, u, () if inc is None else list(inc), memory, lip)


def _stack(a, n, most=_HISTORY):
    """A checkpoint's stack of (N, 3) arrays: (K, n, 3) float64 with 0 < K ≤ ``most`` and finite,
    or None."""
    if a is None:
        return None
    a = np.asarray(a, dtype=np.float64)
    if not (a.ndim == 3 and a.shape[1:] == (n, 3) and 0 < len(a) <= most and np.all(np.isfinite(a))):
        return None
    return a


#: the implicit spin step measures the contraction of its iteration again (two model calls)
#: after this many steps that stopped after one call
_RECHECK = 8


def _iteration_error(res, prev):
    """Estimated error of the newest iterate of a linearly converging fixed-point iteration whose
    last two changes were ``prev`` and ``res``: res·q/(1 − q) with the observed contraction
    q = res/prev (Ostrowski's / Aitken's estimate; e.g. Quarteroni, Sacco & Saleri, *Numerical
    Mathematics*, 2nd ed., §6.3.1); ``res`` itself when there is no previous change or q ≥ 1/2."""
    q = res / prev if 0.0 < prev < math.inf else 1.0
    return res * q / (1.0 - q) if q < 0.5 else res


def _predict_field(history, h_end):
    """Prediction of the next midpoint field (eV/μB) for the first iterate of the implicit spin
    step: the cubic extrapolation 4h₋₁ − 6h₋₂ + 4h₋₃ − h₋₄ of the last four midpoint fields
    ``history`` (oldest first; error O(dt⁴)), the polynomial through fewer when there are fewer,
    and the fields ``h_end`` of the evaluation that ended the previous step when there are none
    (the first step of a run from a State this integrator did not return)."""
    k = len(history)
    if k >= 4:
        return 4.0 * (history[-1] + history[-3]) - 6.0 * history[-2] - history[-4]
    if k == 3:
        return 3.0 * (history[-1] - history[-2]) + history[-3]
    if k == 2:
        return 2.0 * history[-1] - history[-2]
    if k == 1:
        return history[-1]
    return h_end


# ------------------------------------------------------------------------------ Langevin
@refuse_other_names()
class SpinLatticeLangevin(_SpinLatticeBase):
    """Spin-lattice dynamics in contact with heat baths.

    Parameters
    ----------
    dt : time step, fs.
    temperature : lattice bath temperature, K.
    friction : lattice Langevin friction γ_L, 1/fs (0 → no lattice thermostat).
    damping : Gilbert damping α of the spins (dimensionless; 0 → no spin thermostat).
    spin_temperature : spin bath temperature, K (default: ``temperature``).
    longitudinal_damping : α_L of the moment magnitudes (default: ``damping``); used only when
        ``potential.depends_on_magnitudes``.
    seed : seed of the integrator's noise stream (:class:`~spinlat.integrators.noise.PhiloxNoise`,
        counter-based Philox4x32-10 drawn inside the threaded kernels; same seed → same trajectory
        bit for bit, however the run is split, restarted or threaded; see
        :mod:`spinlat.integrators.base`).

    Lattice: BAOAB splitting (Leimkuhler & Matthews): half kick, half drift, exact
    Ornstein-Uhlenbeck velocity step v ← e^{−γ_L dt} v + sqrt((1 − e^{−2γ_L dt}) kT/m) ξ, half drift,
    new forces, half kick. Spins: stochastic LLG (Brown) with a white-noise field b,
    ⟨b_a(t) b_b(t')⟩ = 2 α k_B T_s /(γ μB |m_i|) δ_ab δ(t − t') (tesla²·fs), in the same colour
    sweeps as :class:`SpinLatticeNVE` (before and after the drifts); every sub-rotation is the
    exact damped motion in its (field + noise), held fixed over the sub-step
    (Stratonovich-consistent). Equilibrium: Boltzmann at T (lattice) and T_s (spins).

    Longitudinal fluctuations, when the potential depends on moment magnitudes: once per step,
    overdamped Langevin dμ = Γ f dt + 2Γ k_B T_s/μ dt + sqrt(2Γ k_B T_s) dW on μ = |m_i| with the
    longitudinal force f = −∂E/∂|m_i| = h_i·s_i and mobility Γ = α_L γ/μB (μB²/(eV·fs)), taken
    as the radial part of a 3D Brownian step so that the stationary distribution is
    μ² exp(−E/k_B T_s). This step is first order: keep Γ·∂²E/∂μ²·dt ≪ 1.

    ``adiabatic_magnitudes``, ``magnitude_tolerance``, ``max_magnitude_iterations``: as in
    :class:`SpinLatticeNVE`; the magnitudes are then relaxed after every step instead (no
    longitudinal fluctuations, ``longitudinal_damping`` unused).
    """

    def __init__(self, dt, temperature, friction, damping, spin_temperature=None, longitudinal_damping=None,
                 seed=None, adiabatic_magnitudes=False, magnitude_tolerance=1e-6, max_magnitude_iterations=100):
        super().__init__(dt)
        self._magnitude_options(adiabatic_magnitudes, magnitude_tolerance, max_magnitude_iterations)
        self.temperature = check_nonnegative(temperature, "temperature", "K")
        self.friction = check_nonnegative(friction, "friction", "1/fs")
        self.damping = check_nonnegative(damping, "damping", "dimensionless")
        self.spin_temperature = (self.temperature if spin_temperature is None
                                 else check_nonnegative(spin_temperature, "spin_temperature", "K"))
        self.longitudinal_damping = (self.damping if longitudinal_damping is None
                                     else check_nonnegative(longitudinal_damping, "longitudinal_damping",
                                                            "dimensionless"))
        self.seed = check_seed(seed)
        self.rng = PhiloxNoise(seed)

    def __repr__(self):
        return (f"SpinLatticeLangevin(dt={self.dt}, temperature={self.temperature}, friction={self.friction}, "
                f"damping={self.damping}, spin_temperature={self.spin_temperature}, "
                f"longitudinal_damping={self.longitudinal_damping}, seed={self.seed}{self._magnitude_repr()})")

    def check(self, state, potential) -> None:
        super().check(state, potential)
        check_nonnegative(self.temperature, "temperature", "K")
        check_nonnegative(self.friction, "friction", "1/fs")
        check_nonnegative(self.damping, "damping", "dimensionless")
        check_nonnegative(self.spin_temperature, "spin_temperature", "K")
        check_nonnegative(self.longitudinal_damping, "longitudinal_damping", "dimensionless")
        self._check_magnitudes(potential)

    def run(self, state, potential, steps: int) -> State:
        """Advance ``steps`` steps of dt fs; return the new State (the input is not modified)."""
        steps = _as_steps(steps)
        self.check(state, potential)
        ws = self._work(state, potential)
        rng = self.rng
        dt = self.dt
        local = potential.local
        adiabatic = self.adiabatic_magnitudes
        longitudinal = potential.depends_on_magnitudes and self.longitudinal_damping > 0 and not adiabatic
        kT = units.K_B * self.temperature
        kTs = units.K_B * self.spin_temperature
        alpha = self.damping
        # lattice O step
        c1 = math.exp(-self.friction * dt)
        v_sigma = np.sqrt((1.0 - c1 * c1) * kT * ws.acc)  # Å/fs (acc = 1/(m in eV fs²/Å²))
        thermostat = self.friction > 0
        # spin noise: h_noise = sigma_i / sqrt(duration) ξ (eV/μB)
        ev = self._initial_forces(ws, state, potential, need_fields=not local or adiabatic)
        if adiabatic:
            ev = self._adiabatic_start(ws, ev)
            previous = self._previous_magnitudes(state, potential)
        sigma = None
        if alpha > 0 and kTs > 0:
            with np.errstate(divide="ignore"):
                sigma = np.where(ws.moments > 0,
                                 np.sqrt(2.0 * alpha * kTs * units.MU_B / (units.GAMMA * np.where(
                                     ws.moments > 0, ws.moments, 1.0))), 0.0)
        mobility = self.longitudinal_damping * units.GAMMA / units.MU_B
        for step in range(steps):
            last = step == steps - 1
            _kick(ws.vel, ev.forces, ws.acc, 0.5 * dt)
            if adiabatic:
                previous = self._midstep_magnitudes(ws, previous)
            h_pred = self._spins(ws, 0.5 * dt, alpha, sigma, rng, ev.magnetic_forces if not local else None, local)
            if thermostat:
                _drift_o_drift(ws.pos, ws.vel, 0.5 * dt, rng, c1, v_sigma)
            else:
                _drift(ws.pos, ws.vel, 0.5 * dt)
                _drift(ws.pos, ws.vel, 0.5 * dt)
            ws.update_neighbors()
            self._spins(ws, 0.5 * dt, alpha, sigma, rng, h_pred, local)
            if longitudinal and len(ws.mag_atoms):
                atoms = ws.mag_atoms
                h = np.ascontiguousarray(potential.local_fields(ws.state, ws.nl, atoms), dtype=np.float64)
                _longitudinal_step(ws.moments, ws.spins, h, atoms, mobility, kTs, dt,
                                   rng.normals(len(atoms)))
                if sigma is not None:  # noise amplitude follows the moment
                    sigma[atoms] = np.sqrt(2.0 * alpha * kTs * units.MU_B / (units.GAMMA * ws.moments[atoms]))
                ws.inv_m = ws.inverse_moments()
            if adiabatic:
                ev = self._relax_magnitudes(ws)
                if sigma is not None:  # noise amplitude follows the moments
                    sigma[ws.mag_atoms] = np.sqrt(2.0 * alpha * kTs * units.MU_B
                                                  / (units.GAMMA * ws.moments[ws.mag_atoms]))
            else:
                ev = ws.evaluate(last or not local)
            _kick(ws.vel, ev.forces, ws.acc, 0.5 * dt)
        if steps == 0:
            ev = ws.evaluate(True) if ev.magnetic_forces is None else ev
        self._warn_magnitudes(ws, steps)
        out = self._finish(ws, potential, ev)
        self._relaxed = (out, potential, previous) if adiabatic and steps else None
        return out

    def _spins(self, ws, tau, alpha, sigma, rng, h0, local):
        if local:
            self._sweep(ws, tau, alpha, sigma, rng)
            return None
        noise = None
        if sigma is not None:
            noise = rng.normals(len(ws.spins)) * (sigma / math.sqrt(tau))[:, None]
        return self._global_spin_step(ws, tau, h0, alpha, noise)
