"""Frozen-lattice atomistic spin dynamics: the (stochastic) Landau-Lifshitz-Gilbert equation.

    ds_i/dt = −γ/(1+α²) [ s_i × (B_i + b_i) + α s_i × (s_i × (B_i + b_i)) ]

with B_i = h_i / μB (tesla) from the potential's magnetic forces h = −∂E/∂m (eV/μB),
γ = ``units.GAMMA`` rad/(fs·T), Gilbert damping α and, at temperature T > 0, the thermal field
b_i: Gaussian white noise with ⟨b_ik(t) b_jl(t')⟩ = 2 D_i δ_ij δ_kl δ(t − t'),

    D_i = α k_B T / (γ μ_i),       μ_i = moments_i · μB  (eV/T),

so that one step of length dt draws b_i ~ N(0, 2 α k_B T / (γ μ_i dt)) per component (T²).
Derivation: the noise enters through A(s) = −γ'([s]× − α P_s) with γ' = γ/(1+α²) and
P_s = 1 − ssᵀ; A Aᵀ = γ'²(1+α²) P_s, so the spin diffuses on the sphere with coefficient
γ² D/(1+α²); the Boltzmann distribution e^{−E/k_BT} is stationary when this equals the
damping mobility γ'α k_B T/μ_i, i.e. D = α k_B T/(γ μ_i). The equation is read in the
Stratonovich sense; the SIB and Heun schemes converge to that solution, and every scheme
uses the same noise in its predictor and corrector stages.

Solvers (one or two field evaluations per step, all spins at once, numba kernels):

- ``"sib"`` (default): semi-implicit scheme B of Mentink, Tretyakov, Fasolino, Katsnelson and
  Rasing, J. Phys.: Condens. Matter 22, 176001 (2010). Predictor: implicit midpoint step with
  the field of s_n; corrector: implicit midpoint step with the field at the (normalised)
  midpoint of s_n and the predictor. Each implicit midpoint step of ds/dt = Ω × s is the
  Cayley rotation s' = s + 2(w × s + w × (w × s))/(1 + |w|²), w = Ω dt/2, which preserves |s|
  exactly.
- ``"depondt"``: Depondt and Mertens, J. Phys.: Condens. Matter 21, 336005 (2009): Heun's
  method on rotation vectors; the spin is rotated (Rodrigues) about Ω(s_n) to a predictor, then
  about the average of Ω(s_n) and Ω(predictor).
- ``"heun"``: Heun's predictor-corrector on ds/dt with renormalisation after each stage.

Here Ω_i = γ' (B_i + b_i + α s_i × (B_i + b_i)), so that ds/dt = Ω × s is the LLG equation.
Non-magnetic atoms (moment 0) do not move. The lattice stays frozen; the potential is asked
only for magnetic forces of the magnetic terms (terms with ``magnetic = False`` such as EAM are
skipped).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from .. import units
from ..errors import InputError
from ..state import State
from .base import Integrator, check_dt, check_nonnegative
from .rotation import _rotate_one

SOLVERS = ("sib", "depondt", "heun")


# ---------------------------------------------------------------------------------- kernels
@numba.njit(cache=True, inline="always")
def _omega(s, h, i, g, alpha):
    """Ω = g (h + α s × h) for atom i (rad/fs when g = γ'/μB and h in eV/μB)."""
    hx, hy, hz = h[i, 0], h[i, 1], h[i, 2]
    sx, sy, sz = s[i, 0], s[i, 1], s[i, 2]
    ox = hx + alpha * (sy * hz - sz * hy)
    oy = hy + alpha * (sz * hx - sx * hz)
    oz = hz + alpha * (sx * hy - sy * hx)
    return g * ox, g * oy, g * oz


@numba.njit(cache=True, inline="always")
def _cayley(s0, i, wx, wy, wz, out):
    """out[i] = Cayley rotation of s0[i] with w: s + 2(w×s + w×(w×s))/(1+|w|²)."""
    sx, sy, sz = s0[i, 0], s0[i, 1], s0[i, 2]
    cx = wy * sz - wz * sy
    cy = wz * sx - wx * sz
    cz = wx * sy - wy * sx
    ccx = wy * cz - wz * cy
    ccy = wz * cx - wx * cz
    ccz = wx * cy - wy * cx
    f = 2.0 / (1.0 + wx * wx + wy * wy + wz * wz)
    out[i, 0] = sx + f * (cx + ccx)
    out[i, 1] = sy + f * (cy + ccy)
    out[i, 2] = sz + f * (cz + ccz)


@numba.njit(cache=True)
def _add_noise(h, noise, sigma, out):
    """out = h + sigma[:, None] * noise (sigma in eV/μB; zero for non-magnetic atoms)."""
    for i in range(h.shape[0]):
        for k in range(3):
            out[i, k] = h[i, k] + sigma[i] * noise[i, k]


@numba.njit(cache=True)
def sib_predictor(s, h, g, alpha, dt, mid):
    """SIB stage 1: mid = normalised (s + s̃)/2 with s̃ the implicit-midpoint step of s in the
    field h (fixed, evaluated at s). Arrays (N, 3); g = γ'/μB in rad/(fs·eV/μB); dt in fs."""
    half = 0.5 * dt
    for i in range(s.shape[0]):
        ox, oy, oz = _omega(s, h, i, g, alpha)
        _cayley(s, i, half * ox, half * oy, half * oz, mid)
        mx = 0.5 * (s[i, 0] + mid[i, 0])
        my = 0.5 * (s[i, 1] + mid[i, 1])
        mz = 0.5 * (s[i, 2] + mid[i, 2])
        inv = 1.0 / math.sqrt(mx * mx + my * my + mz * mz)
        mid[i, 0] = mx * inv
        mid[i, 1] = my * inv
        mid[i, 2] = mz * inv


@numba.njit(cache=True)
def sib_corrector(s, mid, hmid, g, alpha, dt, out):
    """SIB stage 2: out = implicit-midpoint (Cayley) step of s with Ω(mid, hmid), re-normalised
    (the Cayley map preserves |s| exactly; this removes round-off drift)."""
    half = 0.5 * dt
    for i in range(s.shape[0]):
        ox, oy, oz = _omega(mid, hmid, i, g, alpha)
        _cayley(s, i, half * ox, half * oy, half * oz, out)
        inv = 1.0 / math.sqrt(out[i, 0] * out[i, 0] + out[i, 1] * out[i, 1] + out[i, 2] * out[i, 2])
        out[i, 0] *= inv
        out[i, 1] *= inv
        out[i, 2] *= inv


@numba.njit(cache=True)
def depondt_predictor(s, h, g, alpha, dt, omega1, pred):
    """Depondt stage 1: omega1 = Ω(s, h); pred = s rotated by omega1·dt (Rodrigues)."""
    for i in range(s.shape[0]):
        ox, oy, oz = _omega(s, h, i, g, alpha)
        omega1[i, 0] = ox
        omega1[i, 1] = oy
        omega1[i, 2] = oz
        pred[i, 0] = s[i, 0]
        pred[i, 1] = s[i, 1]
        pred[i, 2] = s[i, 2]
        _rotate_one(pred, i, ox, oy, oz, dt, 0.0)


@numba.njit(cache=True)
def depondt_corrector(s, pred, hpred, omega1, g, alpha, dt, out):
    """Depondt stage 2: out = s rotated by ½(Ω(s) + Ω(pred))·dt."""
    for i in range(s.shape[0]):
        ox, oy, oz = _omega(pred, hpred, i, g, alpha)
        out[i, 0] = s[i, 0]
        out[i, 1] = s[i, 1]
        out[i, 2] = s[i, 2]
        _rotate_one(out, i, 0.5 * (ox + omega1[i, 0]), 0.5 * (oy + omega1[i, 1]),
                    0.5 * (oz + omega1[i, 2]), dt, 0.0)


@numba.njit(cache=True)
def heun_predictor(s, h, g, alpha, dt, f1, pred):
    """Heun stage 1: f1 = Ω(s,h) × s; pred = normalised s + dt f1."""
    for i in range(s.shape[0]):
        ox, oy, oz = _omega(s, h, i, g, alpha)
        sx, sy, sz = s[i, 0], s[i, 1], s[i, 2]
        fx = oy * sz - oz * sy
        fy = oz * sx - ox * sz
        fz = ox * sy - oy * sx
        f1[i, 0] = fx
        f1[i, 1] = fy
        f1[i, 2] = fz
        px, py, pz = sx + dt * fx, sy + dt * fy, sz + dt * fz
        inv = 1.0 / math.sqrt(px * px + py * py + pz * pz)
        pred[i, 0] = px * inv
        pred[i, 1] = py * inv
        pred[i, 2] = pz * inv


@numba.njit(cache=True)
def heun_corrector(s, pred, hpred, f1, g, alpha, dt, out):
    """Heun stage 2: out = normalised s + dt/2 (f1 + Ω(pred) × pred)."""
    for i in range(s.shape[0]):
        ox, oy, oz = _omega(pred, hpred, i, g, alpha)
        px, py, pz = pred[i, 0], pred[i, 1], pred[i, 2]
        fx = oy * pz - oz * py
        fy = oz * px - ox * pz
        fz = ox * py - oy * px
        nx = s[i, 0] + 0.5 * dt * (f1[i, 0] + fx)
        ny = s[i, 1] + 0.5 * dt * (f1[i, 1] + fy)
        nz = s[i, 2] + 0.5 * dt * (f1[i, 2] + fz)
        inv = 1.0 / math.sqrt(nx * nx + ny * ny + nz * nz)
        out[i, 0] = nx * inv
        out[i, 1] = ny * inv
        out[i, 2] = nz * inv


# ---------------------------------------------------------------------------------- fields
@numba.njit(cache=True)
def projected_table_fields(spins, offs, nbr, jmat, out):
    """out_i = (1 − s_i s_iᵀ) Σ_j jmat_ij s_j for every atom (eV/μB): the transverse magnetic
    force of bilinear pair terms from their coupling table."""
    for i in range(spins.shape[0]):
        hx = hy = hz = 0.0
        for p in range(offs[i], offs[i + 1]):
            j = nbr[p]
            sx, sy, sz = spins[j, 0], spins[j, 1], spins[j, 2]
            hx += jmat[p, 0, 0] * sx + jmat[p, 0, 1] * sy + jmat[p, 0, 2] * sz
            hy += jmat[p, 1, 0] * sx + jmat[p, 1, 1] * sy + jmat[p, 1, 2] * sz
            hz += jmat[p, 2, 0] * sx + jmat[p, 2, 1] * sy + jmat[p, 2, 2] * sz
        d = hx * spins[i, 0] + hy * spins[i, 1] + hz * spins[i, 2]
        out[i, 0] = hx - d * spins[i, 0]
        out[i, 1] = hy - d * spins[i, 1]
        out[i, 2] = hz - d * spins[i, 2]


class SpinFields:
    """Magnetic forces of all atoms for trial spin arrays on a frozen lattice.

    Keeps the neighbour list and skips terms that do not depend on spins (``magnetic =
    False``). ``__call__(spins)`` returns h = −∂E/∂m (eV/μB), (N, 3), at the given unit spins.
    """

    def __init__(self, state, potential, use_table=True):
        self.state = state
        terms = [t for t in potential.terms if getattr(t, "magnetic", True)]
        self.terms = terms
        self.nl = potential.neighbor_list(state) if any(t.cutoff > 0 for t in terms) else None
        self.atoms = np.arange(len(state), dtype=np.int64)
        self.table = None
        tabled = [t for t in terms if hasattr(t, "pairs")]
        if use_table and tabled:
            self._try_table(tabled)

    def _try_table(self, tabled):
        """Replace terms with a pair table (``Heisenberg``) by one numba kernel, if it reproduces
        their magnetic forces on a random configuration."""
        from .monte_carlo import linear_couplings

        try:
            table = linear_couplings(self.state, tabled, probe=False)
        except Exception:  # noqa: BLE001 - keep the general path
            return
        if table is None:
            return
        rng = np.random.default_rng(0)
        s = rng.normal(size=(len(self.state), 3))
        s /= np.linalg.norm(s, axis=1)[:, None]
        st = self.with_spins(s)
        ref = sum(t.local_fields(st, self.nl if t.cutoff > 0 else None, self.atoms) for t in tabled)
        got = np.empty_like(ref)
        projected_table_fields(s, *table, got)
        if np.abs(got - ref).max() <= 1e-10 * (np.abs(ref).max() + 1e-300):
            self.table = table
            self.terms = [t for t in self.terms if not any(t is u for u in tabled)]

    def with_spins(self, spins) -> State:
        st = self.state
        return State._trusted(st.positions, st.numbers, st.cell, st.pbc, spins, st.moments,
                              st.velocities, st.masses)

    def __call__(self, spins) -> np.ndarray:
        st = self.with_spins(spins)
        h = None
        if self.table is not None:
            h = np.empty((len(st), 3))
            projected_table_fields(spins, *self.table, h)
        for t in self.terms:
            ht = t.local_fields(st, self.nl if t.cutoff > 0 else None, self.atoms)
            h = ht if h is None else h + ht
        if h is None:
            h = np.zeros((len(st), 3))
        return np.ascontiguousarray(h, dtype=np.float64)


def _check_potential_magnetic(integrator, state, potential):
    Integrator.check(integrator, state, potential)
    if not np.any(state.moments > 0):
        raise InputError(f"{type(integrator).__name__}: the state has no magnetic atoms (all moments are 0)")


class LLG(Integrator):
    """Frozen-lattice (stochastic) Landau-Lifshitz-Gilbert spin dynamics.

    Parameters
    ----------
    dt : time step, fs (0 < dt ≤ 10).
    damping : Gilbert damping α ≥ 0 (dimensionless).
    temperature : spin bath temperature, K (≥ 0; T > 0 needs α > 0).
    solver : ``"sib"`` (default; Mentink et al. 2010), ``"depondt"`` (Depondt & Mertens 2009)
        or ``"heun"`` (with renormalisation).
    seed : seed of the thermal-noise stream (NumPy PCG64); same seed → same trajectory.

    ``run(state, potential, steps)`` returns the new State (positions, velocities unchanged);
    ``last_evaluation`` holds the potential's energy and magnetic forces at that state.
    """

    moves_lattice = False
    moves_spins = True

    def __init__(self, dt, damping=0.0, temperature=0.0, solver="sib", seed=None):
        super().__init__()
        self.dt = check_dt(dt)
        self.damping = check_nonnegative(damping, "damping", "dimensionless Gilbert α")
        self.temperature = check_nonnegative(temperature, "temperature", "K")
        if not isinstance(solver, str) or solver.lower() not in SOLVERS:
            raise InputError(f"unknown LLG solver {solver!r}; choose one of {SOLVERS}")
        self.solver = solver.lower()
        if self.temperature > 0 and self.damping == 0:
            raise InputError("LLG at temperature > 0 needs damping > 0 (the thermal field scales with α)")
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self._cache = None  # (state arrays, fields) of the last returned state

    def __repr__(self):
        return (f"LLG(dt={self.dt}, damping={self.damping}, temperature={self.temperature}, "
                f"solver={self.solver!r}, seed={self.seed})")

    def check(self, state, potential) -> None:
        _check_potential_magnetic(self, state, potential)

    def noise_amplitudes(self, state) -> np.ndarray:
        """Standard deviation of the thermal magnetic force per component and step, eV/μB:
        μB sqrt(2 α k_B T / (γ μB moments_i dt)); zero for non-magnetic atoms."""
        sigma = np.zeros(len(state))
        mag = state.moments > 0
        if self.temperature > 0:
            var_b = 2 * self.damping * units.K_B * self.temperature / (
                units.GAMMA * units.MU_B * state.moments[mag] * self.dt)  # T²
            sigma[mag] = units.MU_B * np.sqrt(var_b)
        return sigma

    def run(self, state, potential, steps: int):
        steps = int(steps)
        if steps < 0:
            raise InputError(f"steps must be non-negative, got {steps}")
        self.check(state, potential)
        fields = SpinFields(state, potential)
        n = len(state)
        s = np.array(state.spins, dtype=np.float64, order="C")
        a = self.damping
        g = units.GAMMA / ((1.0 + a * a) * units.MU_B)
        dt = self.dt
        sigma = self.noise_amplitudes(state)
        thermal = self.temperature > 0
        mid = np.empty((n, 3))
        aux = np.empty((n, 3))
        out = np.empty((n, 3))
        hn = np.empty((n, 3))
        h = self._cached_fields(state, potential)
        for _ in range(steps):
            if h is None:
                h = fields(s)
            if thermal:
                noise = self.rng.standard_normal((n, 3))
                _add_noise(h, noise, sigma, hn)
                h1 = hn
            else:
                h1 = h
            if self.solver == "sib":
                sib_predictor(s, h1, g, a, dt, mid)
                h2 = fields(mid)
                if thermal:
                    _add_noise(h2, noise, sigma, h2)
                sib_corrector(s, mid, h2, g, a, dt, out)
            elif self.solver == "depondt":
                depondt_predictor(s, h1, g, a, dt, aux, mid)
                h2 = fields(mid)
                if thermal:
                    _add_noise(h2, noise, sigma, h2)
                depondt_corrector(s, mid, h2, aux, g, a, dt, out)
            else:
                heun_predictor(s, h1, g, a, dt, aux, mid)
                h2 = fields(mid)
                if thermal:
                    _add_noise(h2, noise, sigma, h2)
                heun_corrector(s, mid, h2, aux, g, a, dt, out)
            s, out = out, s
            h = None
        new = fields.with_spins(s.copy())
        new = State._trusted(new.positions.copy(), new.numbers.copy(), new.cell.copy(), new.pbc.copy(),
                             new.spins, new.moments.copy(), new.velocities.copy(), new.masses.copy())
        ev = potential.compute(new, forces=False, magnetic_forces=True)
        self.last_evaluation = ev
        self._cache = (potential, new.spins.copy(), new.positions.copy(), new.moments.copy(), fields(new.spins))
        return new

    def _cached_fields(self, state, potential):
        c = self._cache
        if c is None or c[0] is not potential:
            return None
        if (c[1].shape == state.spins.shape and np.array_equal(c[1], state.spins)
                and np.array_equal(c[2], state.positions) and np.array_equal(c[3], state.moments)):
            return c[4].copy()
        return None
