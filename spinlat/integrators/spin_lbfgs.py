"""Compiled L-BFGS with orthogonal spin rotations (OSO) for linear spin couplings.

The whole minimisation of spin directions on a frozen lattice runs in one numba kernel when every
magnetic term has linear couplings (:class:`~spinlat.potentials.couplings.LinearSpinCouplings`:
Heisenberg, Bethe-Slater exchange, Zeeman, uniaxial anisotropy): fields from the merged coupling
table, torques, the two-loop recursion, the step cap and the line search, with no Python per
iteration. It is the same algorithm, step for step, as the Python loop of
:func:`spinlat.minimize` (which stays the path for every other potential):

- variables: rotation vectors θ_i in the tangent plane of each spin; the gradient of E with
  respect to θ_i is the torque τ_i = s_i × ∂E/∂s_i = −s_i × (g_i + |m_i| b_i) (eV/rad), with
  g_i = Σ_p J_p s_{j_p} + 2 A_i s_i of the coupling table (its module docstring), zero on
  non-magnetic atoms. Steps rotate each spin by |θ_i| about θ̂_i (Rodrigues,
  :func:`~spinlat.integrators.rotation.rotate_vector`), so spins stay unit length — the
  orthogonal spin optimisation of Ivanov, Uzdin & Jónsson, Comput. Phys. Commun. 260, 107749
  (2021), which Spirit's ``LBFGS_OSO`` solver also implements;
- direction: −H·τ from the L-BFGS two-loop recursion (Nocedal & Wright, *Numerical
  Optimization*, 2nd ed., Algorithm 7.4; :func:`~spinlat.integrators.lbfgs.two_loop_rows`) over
  the last ``memory`` pairs (s, y) with sᵀy > 1e-16; the memory restarts when the direction is
  not a descent direction;
- step: scaled so that no spin turns by more than ``max_rotation`` rad, then halved until the
  Armijo condition E(θ) ≤ E + 10⁻⁴ α τ·d + 10⁻¹² |E| holds (at most 20 trials; a failure
  clears the memory, or ends the run when it is already empty);
- convergence: the largest |τ_i| ≤ ``tmax`` (eV).

:func:`lbfgs_oso` runs a stack of starts (M, N, 3) in one call, one after the other;
:func:`lbfgs_oso_steps` runs them in pieces of a given number of iterations (a caller that must
stay responsive to Ctrl-C / SIGTERM checks between pieces), with the same results bit for bit.
"""

from __future__ import annotations

import numba
import numpy as np

from ..potentials.couplings import coupled_rows
from .lbfgs import dot, two_loop_rows
from .rotation import rotate_vector

#: status codes of :func:`lbfgs_oso`
CONVERGED, MAX_STEPS, LINE_SEARCH_FAILED = 0, 1, 2

_FMA = {"contract"}


@numba.njit(cache=True, fastmath=_FMA)
def oso_evaluate(c, moments, spins, atoms, g, torque):
    """Energy of the spins (eV, without the constant per-atom offsets) and, in place, the coupled
    fields g (1, N, 3) (eV, :func:`~spinlat.potentials.couplings.coupled_rows`) and torques
    (N, 3) τ_i = −s_i × (g_i + |m_i| b_i) (eV/rad, 0 on non-magnetic atoms) of spins (N, 3);
    ``c`` the couplings' ``kernel_arrays()``, ``atoms`` = arange(N). Returns (energy, largest |τ_i|)."""
    field = c[6]
    has_field = field.shape[0] > 0
    n = spins.shape[0]
    coupled_rows(c, spins.reshape(1, n, 3), atoms, g)
    e = 0.0
    tmax2 = 0.0
    for i in range(n):
        gx, gy, gz = g[0, i, 0], g[0, i, 1], g[0, i, 2]
        sx, sy, sz = spins[i, 0], spins[i, 1], spins[i, 2]
        m = moments[i]
        if m > 0.0:
            fx, fy, fz = gx, gy, gz
            if has_field:
                fx += m * field[i, 0]
                fy += m * field[i, 1]
                fz += m * field[i, 2]
            e -= 0.5 * (gx * sx + gy * sy + gz * sz) + (fx - gx) * sx + (fy - gy) * sy + (fz - gz) * sz
            tx = -(sy * fz - sz * fy)
            ty = -(sz * fx - sx * fz)
            tz = -(sx * fy - sy * fx)
            torque[i, 0], torque[i, 1], torque[i, 2] = tx, ty, tz
            t2 = tx * tx + ty * ty + tz * tz
            if t2 > tmax2:
                tmax2 = t2
        else:
            torque[i, 0] = torque[i, 1] = torque[i, 2] = 0.0
    return e, np.sqrt(tmax2)


@numba.njit(cache=True)
def _rotated(spins, d, alpha, out):
    """out_i = spins_i rotated by the rotation vector α d_i (angle α|d_i| about d̂_i)."""
    for i in range(spins.shape[0]):
        hx, hy, hz = alpha * d[3 * i], alpha * d[3 * i + 1], alpha * d[3 * i + 2]
        if hx == 0.0 and hy == 0.0 and hz == 0.0:
            out[i, 0], out[i, 1], out[i, 2] = spins[i, 0], spins[i, 1], spins[i, 2]
        else:
            out[i, 0], out[i, 1], out[i, 2] = rotate_vector(spins[i, 0], spins[i, 1], spins[i, 2], hx, hy, hz,
                                                            1.0, 0.0)


#: growth of the steepest-descent step where L-BFGS has no curvature pair: a steepest step
#: d = −sd·g whose pair is rejected (sᵀy ≤ 0: the energy curves downward along it, e.g. a spin
#: more than 45° from an easy axis) makes the next one ``SD_GROWTH``·α times longer (α the
#: accepted line-search fraction: a full step doubles it, a halved one keeps it). Without it the
#: steepest step stayed at 1 rad per eV of torque, ~1e-3 rad for a 1 meV anisotropy, and a
#: single spin crawled for thousands of iterations. The Armijo backtracking and ``max_rotation``
#: bound every step; L-BFGS steps are unchanged.
SD_GROWTH = 2.0
SD_MAX = 1e12


@numba.njit(cache=True)
def sd_scale(sd, alpha):
    """The steepest-descent scale after an accepted steepest step of fraction ``alpha`` whose
    curvature pair was rejected (:data:`SD_GROWTH`), at most :data:`SD_MAX`."""
    return min(sd * SD_GROWTH * alpha, SD_MAX)


#: slots of the integer carry of :func:`lbfgs_oso_steps`: the start under way (index in the stack),
#: whether it has begun, L-BFGS pairs stored, row of the next pair, iterations done, evaluations
CARRY_START, CARRY_BEGUN, CARRY_COUNT, CARRY_HEAD, CARRY_IT, CARRY_NEV = range(6)


def new_carry(n, memory):
    """A fresh carry of :func:`lbfgs_oso_steps` for N atoms and ``memory`` pairs (no start begun):
    ``(ints (6,) int64, values (3,) float64 [energy eV, largest torque eV, steepest-descent step
    scale rad²/eV (:data:`SD_GROWTH`)], S (memory, 3N),
    Y (memory, 3N), rho (memory,), torques (N, 3) eV/rad)``."""
    return (np.zeros(6, np.int64), np.zeros(3), np.zeros((memory, 3 * n)), np.zeros((memory, 3 * n)),
            np.zeros(memory), np.zeros((n, 3)))


@numba.njit(cache=True)
def lbfgs_oso_steps(c, moments, e_const, spins, tmax, max_steps, memory, max_rotation, energy, iterations, status,
                    max_torque, n_evaluations, history, ints, values, S, Y, rho, tq, budget):
    """:func:`lbfgs_oso` in pieces: at most ``budget`` iterations (over all starts) per call, the
    state of the start under way kept in the carry (``ints, values, S, Y, rho, tq``: a
    :func:`new_carry`, updated in place) so that the next call goes on exactly where this one
    stopped. The results are bit for bit those of one :func:`lbfgs_oso` call, whatever the budgets
    (the only difference: a start resumed re-tests its unchanged convergence criterion). Returns
    True when every start of ``spins`` is finished (outputs written), False when the budget ran out
    first (``ints[CARRY_START]`` starts are finished; the next one is under way, its spins the
    state reached after ``ints[CARRY_IT]`` iterations)."""
    n_starts, n = spins.shape[0], spins.shape[1]
    nv = 3 * n
    g = np.empty((1, n, 3))
    atoms = np.arange(n)
    tq_new = np.empty((n, 3))
    trial = np.empty((n, 3))
    d = np.empty(nv)
    order = np.empty(memory, dtype=np.int64)
    gv = tq.reshape(nv)
    used = 0
    while ints[CARRY_START] < n_starts:
        k = ints[CARRY_START]
        st = spins[k]
        if ints[CARRY_BEGUN] == 0:
            e, tnorm = oso_evaluate(c, moments, st, atoms, g, tq)
            e += e_const
            nev = 1
            count, head = 0, 0  # pairs stored; row of the next pair
            history[k, 0] = e
            it = 0
            sd = 1.0
            ints[CARRY_BEGUN] = 1
        else:
            e, tnorm, sd = values[0], values[1], values[2]
            count, head, it, nev = ints[CARRY_COUNT], ints[CARRY_HEAD], ints[CARRY_IT], ints[CARRY_NEV]
        code = MAX_STEPS
        paused = False
        while True:
            if tnorm <= tmax:
                code = CONVERGED
                break
            if it == max_steps:
                break
            if used == budget:
                paused = True
                break
            used += 1
            it += 1
            if count > 0:
                for q in range(count):
                    order[q] = (head - count + q) % memory
                newest = order[count - 1]
                sy = 1.0 / rho[newest]
                q = two_loop_rows(gv, S, Y, order[:count], rho, sy / dot(Y[newest], Y[newest]))
                for a in range(nv):
                    d[a] = -q[a]
            else:
                for a in range(nv):
                    d[a] = -gv[a] * sd
            gd = dot(gv, d)
            if gd >= 0.0:  # not a descent direction: restart the memory
                count = 0
                for a in range(nv):
                    d[a] = -gv[a] * sd
                gd = dot(gv, d)
            steepest = count == 0
            big = 0.0
            for i in range(n):
                r2 = d[3 * i] * d[3 * i] + d[3 * i + 1] * d[3 * i + 1] + d[3 * i + 2] * d[3 * i + 2]
                if r2 > big:
                    big = r2
            big = np.sqrt(big)
            if big > max_rotation:
                f = max_rotation / big
                for a in range(nv):
                    d[a] *= f
                gd = dot(gv, d)
            alpha = 1.0
            accepted = False
            e_new = e
            t_new = tnorm
            for _ in range(20):
                _rotated(st, d, alpha, trial)
                e_new, t_new = oso_evaluate(c, moments, trial, atoms, g, tq_new)
                e_new += e_const
                nev += 1
                if e_new <= e + 1e-4 * alpha * gd + 1e-12 * abs(e):
                    accepted = True
                    break
                alpha *= 0.5
            if not accepted:
                if count > 0:
                    count = 0
                    continue
                code = LINE_SEARCH_FAILED
                break
            gn = tq_new.reshape(nv)
            sy = 0.0
            for a in range(nv):
                sy += alpha * d[a] * (gn[a] - gv[a])
            if sy > 1e-16:  # the pair goes into the row of the oldest one (or a free row)
                for a in range(nv):
                    S[head, a] = alpha * d[a]
                    Y[head, a] = gn[a] - gv[a]
                rho[head] = 1.0 / sy
                head = (head + 1) % memory
                if count < memory:
                    count += 1
            elif steepest:  # no curvature pair (a concave stretch): the next steepest step grows
                sd = sd_scale(sd, alpha)
            st[:, :] = trial
            tq[:, :] = tq_new
            e, tnorm = e_new, t_new
            history[k, it] = e
        if paused:
            values[0], values[1], values[2] = e, tnorm, sd
            ints[CARRY_COUNT], ints[CARRY_HEAD], ints[CARRY_IT], ints[CARRY_NEV] = count, head, it, nev
            return False
        energy[k] = e
        iterations[k] = it
        status[k] = code
        max_torque[k] = tnorm
        n_evaluations[k] = nev
        ints[CARRY_BEGUN] = 0
        ints[CARRY_START] = k + 1
    return True


def lbfgs_oso(c, moments, e_const, spins, tmax, max_steps, memory, max_rotation, energy, iterations, status,
              max_torque, n_evaluations, history):
    """Minimise every start of ``spins`` (M, N, 3), in place, by L-BFGS with orthogonal spin
    rotations (module docstring): one :func:`lbfgs_oso_steps` call without an iteration budget.

    Parameters
    ----------
    c : the couplings' ``kernel_arrays()``. moments : (N,) μB. e_const : constant energy added to
        every evaluation (offsets of the couplings plus the spin-independent terms), eV.
    tmax : torque tolerance, eV. max_steps : iteration limit. memory : number of L-BFGS pairs.
    max_rotation : largest spin rotation of one step, rad.
    energy, max_torque : (M,) float outputs (eV). iterations, status, n_evaluations : (M,) int64
        outputs (status: CONVERGED, MAX_STEPS or LINE_SEARCH_FAILED). history : (M, max_steps + 1)
        float output, entry t the energy after iteration t when its step was accepted (entry 0:
        the start); other entries are left untouched.
    """
    lbfgs_oso_steps(c, moments, e_const, spins, tmax, max_steps, memory, max_rotation, energy, iterations, status,
                    max_torque, n_evaluations, history, *new_carry(spins.shape[1], memory), -1)


def reference_torques(couplings, spins, moments):
    """NumPy reference of :func:`oso_evaluate` (tests): energy (eV, with the offsets) and torques
    (N, 3) τ_i = −|m_i| s_i × h_i from :func:`~spinlat.potentials.couplings.reference_evaluate`."""
    from ..potentials.couplings import reference_evaluate

    e, h = reference_evaluate(couplings, spins, moments)
    s = np.asarray(spins, dtype=np.float64)
    return float(e.sum()), -np.asarray(moments, dtype=np.float64)[:, None] * np.cross(s, h)


__all__ = ["CONVERGED", "LINE_SEARCH_FAILED", "MAX_STEPS", "lbfgs_oso", "lbfgs_oso_steps", "new_carry", "oso_evaluate",
           "reference_torques"]
