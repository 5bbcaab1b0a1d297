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

At T > 0 the schemes are weakly first order: thermal averages carry a bias ∝ dt. Measured on free
spins in a field plus uniaxial anisotropy (K = k_BT, ``tests/integrators/test_llg.py``): the spin
temperature read −1.4 ± 0.6 % low at γ|B|dt = 0.018 rad per step and −2.7 ± 0.6 % at 0.036 rad;
Heisenberg energies against Monte Carlo converge as dt halves. Keep γ|B|dt ≲ 0.02 for 1 %
thermal averages, or extrapolate runs at dt and dt/2 (2 A(dt/2) − A(dt)).
Non-magnetic atoms (moment 0) do not move. The lattice stays frozen; the potential is asked
only for magnetic forces of the magnetic terms (terms with ``magnetic = False`` such as EAM are
skipped).
"""

from __future__ import annotations

import math
from collections import namedtuple
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

from .. import units
from ..errors import InputError
from ..state import State
from .base import Integrator, check_dt, check_nonnegative, check_seed
from .fields import SpinFieldEngine, compress_couplings, per_moment_table
from .noise import PhiloxNoise
from .rotation import SERIES_LIMIT, rotate_series, rotate_vector
from ..keywords import refuse_other_names

SOLVERS = ("sib", "depondt", "heun")

#: The fused linear terms as the kernels read them: a :func:`slot_table` (cptr, catoms, qptr, qt,
#: qoff, nb, tens) and the field b (3, N), eV/μB.
LinearTable = namedtuple("LinearTable", "cptr catoms qptr qt qoff nb tens b")
#: One solver step: ``solver`` 0 (SIB), 1 (Depondt) or 2 (Heun); ``g`` = γ/((1+α²) μB) in
#: rad/(fs·eV/μB); ``alpha`` the Gilbert damping; ``dt`` fs.
Stepper = namedtuple("Stepper", "solver g alpha dt")
#: Work arrays of a step, each (3, N): ``mid`` the predictor, ``aux`` Depondt's Ω or Heun's slope
#: carried between the stages, ``h`` the fields (scratch).
StageBuffers = namedtuple("StageBuffers", "mid aux h")


# ---------------------------------------------------------------------------------- kernels
# Layout: inside a run spins, fields and stage buffers are (3, N) arrays (one row per Cartesian
# component), so that the per-atom updates are unit-stride loops LLVM vectorises; the field
# pass (a gather over the coupling table) is scalar. error_model="numpy" drops Python's
# zero-division checks, which would otherwise stop vectorisation; nogil lets the next block of
# thermal noise be drawn by NumPy in another thread meanwhile.
_JIT = dict(cache=True, error_model="numpy", nogil=True)


@numba.njit(**_JIT)
def linear_fields(s, table, hext, noise, sigma, h):
    """h_i = (1 − s_i s_iᵀ) Σ_j T_ij s_j + b_i (eV/μB), plus hext_i when ``hext`` (N, 3) has rows
    and σ_i ξ_i when ``noise`` (N, 3) has rows: the fused linear terms of :class:`SpinFields`,
    the other terms, the thermal field. s, h are (3, N); ``table`` a :data:`LinearTable`: per
    class of atoms with the same couplings, one pass per slot with its 3×3 matrix held in
    registers, and b (3, N)."""
    cptr, catoms, qptr, qt, qoff, nb, tens, b = table
    sx, sy, sz = s[0], s[1], s[2]
    hx, hy, hz = h[0], h[1], h[2]
    n = sx.shape[0]
    for i in range(n):
        hx[i] = 0.0
        hy[i] = 0.0
        hz[i] = 0.0
    for c in range(cptr.shape[0] - 1):
        a0 = cptr[c]
        na = cptr[c + 1] - a0
        first = catoms[a0] if na > 0 else 0
        contiguous = na > 0 and catoms[a0 + na - 1] - first == na - 1  # members are sorted
        for q in range(qptr[c], qptr[c + 1]):
            t = qt[q]
            t00, t01, t02 = tens[t, 0, 0], tens[t, 0, 1], tens[t, 0, 2]
            t10, t11, t12 = tens[t, 1, 0], tens[t, 1, 1], tens[t, 1, 2]
            t20, t21, t22 = tens[t, 2, 0], tens[t, 2, 1], tens[t, 2, 2]
            o = qoff[q]
            if contiguous:  # atoms first..first+na-1: no index load, plain streams
                for k in range(na):
                    j = nb[o + k]
                    x, y, z = sx[j], sy[j], sz[j]
                    hx[first + k] += t00 * x + t01 * y + t02 * z
                    hy[first + k] += t10 * x + t11 * y + t12 * z
                    hz[first + k] += t20 * x + t21 * y + t22 * z
            else:
                for k in range(na):
                    i = catoms[a0 + k]
                    j = nb[o + k]
                    x, y, z = sx[j], sy[j], sz[j]
                    hx[i] += t00 * x + t01 * y + t02 * z
                    hy[i] += t10 * x + t11 * y + t12 * z
                    hz[i] += t20 * x + t21 * y + t22 * z
    for i in range(n):
        x, y, z = sx[i], sy[i], sz[i]
        d = hx[i] * x + hy[i] * y + hz[i] * z
        hx[i] += b[0, i] - d * x
        hy[i] += b[1, i] - d * y
        hz[i] += b[2, i] - d * z
    if hext.shape[0] > 0:
        for i in range(n):
            hx[i] += hext[i, 0]
            hy[i] += hext[i, 1]
            hz[i] += hext[i, 2]
    if noise.shape[0] > 0:
        for i in range(n):
            si = sigma[i]
            hx[i] += si * noise[i, 0]
            hy[i] += si * noise[i, 1]
            hz[i] += si * noise[i, 2]


def slot_table(offs, nbr, tidx, tens):
    """Slot form (cptr, catoms, qptr, qt, qoff, nb, tens) of a compressed CSR coupling table.

    Atoms whose rows hold the same multiset of coupling matrices form a class (one class for a
    Bravais crystal, one per sublattice otherwise); ``catoms[cptr[c]:cptr[c+1]]`` are the atoms
    of class c. Class c has the slots q in [qptr[c], qptr[c+1]) with matrix tens[qt[q]]; for the
    k-th atom of the class, slot q couples it to atom nb[qoff[q] + k]. A kernel then runs one
    unit-stride pass per slot with the matrix in registers instead of loading it per coupling.
    Atoms without couplings are in no class."""
    n = len(offs) - 1
    counts = np.diff(offs)
    row = np.repeat(np.arange(n), counts)
    order = np.lexsort((nbr, tidx, row))  # within each row: by matrix, then neighbour
    nbr_s, tidx_s = np.asarray(nbr)[order], np.asarray(tidx)[order]
    cnt, catoms, qt, qoff, nb = [np.zeros(1, np.int64)], [], [], [], []
    base = 0
    for length in np.unique(counts[counts > 0]):
        atoms = np.flatnonzero(counts == length)
        idx = offs[atoms][:, None] + np.arange(length)[None, :]
        sig, cls = np.unique(tidx_s[idx], axis=0, return_inverse=True)
        perm = np.argsort(cls.reshape(-1), kind="stable")
        cls = cls.reshape(-1)[perm]
        nc = np.bincount(cls, minlength=len(sig))
        start = np.concatenate([[0], np.cumsum(nc)[:-1]])  # first member of each class (sorted)
        # slot k of class c covers base + start_c L + k nc_c + (member position in the class)
        q0 = start[:, None] * length + np.arange(length)[None, :] * nc[:, None]  # (C, L)
        pos = q0[cls] + (np.arange(len(cls)) - start[cls])[:, None]  # (members, L)
        block = np.empty(len(cls) * length, dtype=np.int64)
        block[pos.ravel()] = nbr_s[idx[perm]].ravel()
        catoms.append(atoms[perm])
        cnt.append(nc)
        qt.append(sig.ravel())
        qoff.append(base + q0.ravel())
        nb.append(block)
        base += len(block)
    cptr = np.cumsum(np.concatenate(cnt))
    nslots = np.concatenate([np.zeros(1, np.int64)] + [np.full(len(c), len(q) // max(len(c), 1))
                                                       for c, q in zip(cnt[1:], qt)])
    cat = lambda x, dt: np.ascontiguousarray(np.concatenate(x) if x else np.zeros(0), dtype=dt)  # noqa: E731
    return (cptr.astype(np.int64), cat(catoms, np.int32), np.cumsum(nslots).astype(np.int64), cat(qt, np.int32),
            cat(qoff, np.int64), cat(nb, np.int32), tens)


@numba.njit(cache=True, inline="always")
def _omega(sx, sy, sz, hx, hy, hz, g, alpha):
    """Ω = g (h + α s × h) (rad/fs when g = γ'/μB and h in eV/μB)."""
    ox = hx + alpha * (sy * hz - sz * hy)
    oy = hy + alpha * (sz * hx - sx * hz)
    oz = hz + alpha * (sx * hy - sy * hx)
    return g * ox, g * oy, g * oz


@numba.njit(cache=True, inline="always")
def _unit(x, y, z):
    inv = 1.0 / math.sqrt(x * x + y * y + z * z)
    return x * inv, y * inv, z * inv


@numba.njit(**_JIT)
def sib_update(s, x, h, g, alpha, dt, out, midpoint):
    """Implicit-midpoint (Cayley) step of s with Ω(x, h): t = s + 2(w×s + w×(w×s))/(1+|w|²),
    w = Ω dt/2 (|t| = |s| exactly). SIB predictor (x = s, ``midpoint``): out = normalised
    (s + t)/2; corrector (x = the midpoint): out = normalised t. (3, N) arrays."""
    half = 0.5 * dt
    for i in range(s.shape[1]):
        sx, sy, sz = s[0, i], s[1, i], s[2, i]
        ox, oy, oz = _omega_at(x, h, i, g, alpha)
        wx, wy, wz = half * ox, half * oy, half * oz
        cx = wy * sz - wz * sy
        cy = wz * sx - wx * sz
        cz = wx * sy - wy * sx
        f = 2.0 / (1.0 + wx * wx + wy * wy + wz * wz)
        tx = sx + f * (cx + wy * cz - wz * cy)
        ty = sy + f * (cy + wz * cx - wx * cz)
        tz = sz + f * (cz + wx * cy - wy * cx)
        if midpoint:
            tx, ty, tz = sx + tx, sy + ty, sz + tz
        out[0, i], out[1, i], out[2, i] = _unit(tx, ty, tz)


@numba.njit(cache=True, inline="always")
def _omega_at(x, h, i, g, alpha):
    """Ω of atom i from (3, N) spins x and fields h."""
    return _omega(x[0, i], x[1, i], x[2, i], h[0, i], h[1, i], h[2, i], g, alpha)


@numba.njit(**_JIT)
def depondt_update(s, x, h, g, alpha, dt, omega, out, corrector):
    """Depondt predictor (x = s): omega = Ω(s, h), out = s rotated by omega·dt; corrector
    (x = predictor): omega ← ½(omega + Ω(x, h)), out = s rotated by omega·dt. Rotations are
    exact (series, redone with sin/cos for angles > 1 rad). (3, N) arrays."""
    big = 0
    # two loops rather than a branch inside one, so that each vectorises
    if corrector:
        for i in range(s.shape[1]):
            ox, oy, oz = _omega_at(x, h, i, g, alpha)
            ox, oy, oz = 0.5 * (ox + omega[0, i]), 0.5 * (oy + omega[1, i]), 0.5 * (oz + omega[2, i])
            omega[0, i], omega[1, i], omega[2, i] = ox, oy, oz
            out[0, i], out[1, i], out[2, i], phi2 = rotate_series(s[0, i], s[1, i], s[2, i], ox, oy, oz, dt)
            big += phi2 > SERIES_LIMIT
    else:
        for i in range(s.shape[1]):
            ox, oy, oz = _omega_at(x, h, i, g, alpha)
            omega[0, i], omega[1, i], omega[2, i] = ox, oy, oz
            out[0, i], out[1, i], out[2, i], phi2 = rotate_series(s[0, i], s[1, i], s[2, i], ox, oy, oz, dt)
            big += phi2 > SERIES_LIMIT
    if big:
        _large_rotations(s, omega, dt, out)


@numba.njit(**_JIT)
def _large_rotations(s, omega, dt, out):
    """Redo the rotations whose angle |Ω| dt exceeds the series' range with sin/cos."""
    for i in range(s.shape[1]):
        ox, oy, oz = omega[0, i], omega[1, i], omega[2, i]
        if (ox * ox + oy * oy + oz * oz) * (dt * dt) > SERIES_LIMIT:
            out[0, i], out[1, i], out[2, i] = rotate_vector(s[0, i], s[1, i], s[2, i], ox, oy, oz, dt, 0.0)


@numba.njit(**_JIT)
def heun_update(s, x, h, g, alpha, dt, f, out, corrector):
    """Heun predictor (x = s): f = Ω(s, h) × s, out = normalised s + dt f; corrector (x =
    predictor): out = normalised s + dt/2 (f + Ω(x, h) × x). (3, N) arrays."""
    c = 0.5 * dt
    if corrector:
        for i in range(s.shape[1]):
            ox, oy, oz = _omega_at(x, h, i, g, alpha)
            px, py, pz = x[0, i], x[1, i], x[2, i]
            out[0, i], out[1, i], out[2, i] = _unit(s[0, i] + c * (f[0, i] + oy * pz - oz * py),
                                                    s[1, i] + c * (f[1, i] + oz * px - ox * pz),
                                                    s[2, i] + c * (f[2, i] + ox * py - oy * px))
    else:
        for i in range(s.shape[1]):
            ox, oy, oz = _omega_at(x, h, i, g, alpha)
            sx, sy, sz = s[0, i], s[1, i], s[2, i]
            fx, fy, fz = oy * sz - oz * sy, oz * sx - ox * sz, ox * sy - oy * sx
            f[0, i], f[1, i], f[2, i] = fx, fy, fz
            out[0, i], out[1, i], out[2, i] = _unit(sx + dt * fx, sy + dt * fy, sz + dt * fz)


@numba.njit(**_JIT)
def llg_stage(step, stage, s, out, buf, table, hext, noise, sigma):
    """One stage of the solver ``step.solver`` (a :data:`Stepper`): stage 0 (predictor) evaluates
    the fields at s and writes ``buf.mid``; stage 1 (corrector) evaluates them at ``buf.mid`` and
    writes ``out``. ``buf`` (:data:`StageBuffers`) carries Depondt's Ω or Heun's slope between the
    stages; ``table`` (:data:`LinearTable`) the fused terms, ``hext`` (N, 3) the other terms'
    fields or (0, 3), ``noise`` (N, 3) standard normals scaled by ``sigma`` (N,) eV/μB, or (0, 3)."""
    x = s if stage == 0 else buf.mid
    y = buf.mid if stage == 0 else out
    h = buf.h
    linear_fields(x, table, hext, noise, sigma, h)
    if step.solver == 0:
        sib_update(s, x, h, step.g, step.alpha, step.dt, y, stage == 0)
    elif step.solver == 1:
        depondt_update(s, x, h, step.g, step.alpha, step.dt, buf.aux, y, stage == 1)
    else:
        heun_update(s, x, h, step.g, step.alpha, step.dt, buf.aux, y, stage == 1)


@numba.njit(**_JIT)
def run_steps(step, s, out, buf, table, noise, sigma, steps):
    """``steps`` whole steps of a potential made only of fused linear terms, in one call.

    ``s``/``out`` are swapped after every step, so the result is in ``s`` for even ``steps`` and
    in ``out`` for odd. ``noise`` (steps, N, 3) standard normals for the thermal field (σ_i per
    atom, eV/μB), or (0, N, 3) at T = 0."""
    none = np.empty((0, 3))
    for k in range(steps):
        nk = noise[k] if noise.shape[0] > 0 else none
        llg_stage(step, 0, s, out, buf, table, none, nk, sigma)
        llg_stage(step, 1, s, out, buf, table, none, nk, sigma)
        s, out = out, s


# ---------------------------------------------------------------------------------- fields
def _linear_fields_aos(spins, linear):
    """:func:`linear_fields` of (N, 3) spins, returned as (N, 3) (eV/μB); ``linear`` a
    :data:`LinearTable` (or the same eight arrays in a tuple)."""
    n = len(spins)
    h = np.empty((3, n))
    none = np.empty((0, 3))
    linear_fields(np.ascontiguousarray(spins.T), LinearTable(*linear), none, none, np.empty(0), h)
    return np.ascontiguousarray(h.T)


class SpinFields:
    """Magnetic forces of all atoms for trial spin arrays on a frozen lattice, for LLG.

    The field engine (:class:`~spinlat.integrators.fields.SpinFieldEngine`) splits the magnetic
    terms (``magnetic = False`` terms such as EAM are skipped): terms with linear couplings
    (``Heisenberg``, ``BetheSlaterExchange``, ``UniaxialAnisotropy`` (per-atom axes allowed),
    ``Zeeman``; each checked once against its own ``local_fields`` on random spins) are *fused*:
    their rotation fields per moment, h_i = (1 − s_i s_iᵀ) Σ_j T_ij s_j + b_i with T_ij = J_ij/|m_i|
    and T_ii = 2A_i/|m_i|, go into one coupling table (``linear``: a :data:`LinearTable`) evaluated
    by one numba pass. The other terms (``extra``) are evaluated through ``local_fields`` every
    call. ``fuse=False`` puts every term on that general path.

    ``__call__(spins)`` returns h = −∂E/∂m (eV/μB), (N, 3); ``extra_fields(spins)`` only the
    non-fused part (None when every term is fused).
    """

    def __init__(self, state, potential, fuse=True):
        self.state = state
        self.potential = potential
        engine = SpinFieldEngine(potential, fuse=fuse)
        self.nl = potential.neighbor_list(state) if any(t.cutoff > 0 for t in engine.terms) else None
        couplings = engine.update(state, self.nl)
        self.fused, self.extra = engine.fused, engine.extra
        self.atoms = np.arange(len(state), dtype=np.int64)
        (offs, nbr, jmat), b = per_moment_table(couplings, state.moments)
        self.linear = LinearTable(*slot_table(*compress_couplings(offs, nbr, jmat)), np.ascontiguousarray(b.T))

    def with_spins(self, spins) -> State:
        return self.state.with_arrays(spins=spins)

    def extra_fields(self, spins):
        """Σ local_fields of the non-fused terms (eV/μB), (N, 3), or None if there are none."""
        if not self.extra:
            return None
        st = self.with_spins(spins)
        h = None
        for t in self.extra:
            ht = t.local_fields(st, self.nl if t.cutoff > 0 else None, self.atoms)
            h = ht if h is None else h + ht
        return np.ascontiguousarray(h, dtype=np.float64)

    def __call__(self, spins) -> np.ndarray:
        spins = np.ascontiguousarray(spins, dtype=np.float64)
        h = _linear_fields_aos(spins, self.linear)
        extra = self.extra_fields(spins)
        return h if extra is None else h + extra

    def matches(self, state, potential) -> bool:
        """Whether these fields were built for ``potential`` on a state with the same lattice."""
        st = self.state
        return (self.potential is potential and st.positions.shape == state.positions.shape
                and np.array_equal(st.positions, state.positions) and np.array_equal(st.moments, state.moments)
                and np.array_equal(st.numbers, state.numbers) and np.array_equal(st.cell, state.cell)
                and np.array_equal(st.pbc, state.pbc))


def _check_potential_magnetic(integrator, state, potential):
    Integrator.check(integrator, state, potential)
    if not np.any(state.moments > 0):
        raise InputError(f"{type(integrator).__name__}: the state has no magnetic atoms (all moments are 0)")


@refuse_other_names()
class LLG(Integrator):
    """Frozen-lattice (stochastic) Landau-Lifshitz-Gilbert spin dynamics.

    Parameters
    ----------
    dt : time step, fs (0 < dt ≤ 10).
    damping : Gilbert damping α ≥ 0 (dimensionless).
    temperature : spin bath temperature, K (≥ 0; T > 0 needs α > 0).
    solver : ``"sib"`` (default; Mentink et al. 2010), ``"depondt"`` (Depondt & Mertens 2009)
        or ``"heun"`` (with renormalisation).
    seed : seed of the thermal-noise stream (:class:`~spinlat.integrators.noise.PhiloxNoise`,
        counter-based Philox4x32-10); same seed → same trajectory bit for bit, however the run is
        split or restarted (the checkpoint holds key and counter; see
        :mod:`spinlat.integrators.base`). The kernels run on one thread (the next block of
        noise is drawn in a helper thread meanwhile): the thread count changes nothing.

    ``run(state, potential, steps)`` returns the new State (positions, velocities unchanged);
    ``last_evaluation`` holds the potential's energy and magnetic forces at that state.

    Speed: when every magnetic term is fused (see :class:`SpinFields`), a whole run is one numba
    call (:func:`run_steps`; at T > 0 one call per block of steps, with the block's noise drawn
    beforehand, one (N, 3) Philox draw per step,
    so the stream, and the trajectory, do not depend on how the steps are split into runs).
    Other terms are evaluated through ``potential.local_fields`` between the numba stages. The
    fused table is kept between runs while the lattice (positions, cell, moments, species) and
    the potential object stay the same (a term's parameters are fixed when it is built:
    :class:`~spinlat.errors.FixedParameterError`; a new field or constant is a new term).
    """

    moves_lattice = False
    moves_spins = True
    _NOISE_BLOCK = 2**20  # noise numbers drawn at once (8 MB)
    #: below this many noise numbers per run the noise is drawn in the calling thread: starting
    #: the helper thread cost ~3-5 ms per call, 30-50x the integration of 10 steps of 64 spins
    #: (a sample-every-few-steps loop of ``run(state, pot, 10)`` calls)
    _OVERLAP_MIN = 2**18

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
        self.seed = check_seed(seed)
        self.rng = PhiloxNoise(seed)
        self._fields = None  # SpinFields of the last run

    def __repr__(self):
        return (f"LLG(dt={self.dt}, damping={self.damping}, temperature={self.temperature}, "
                f"solver={self.solver!r}, seed={self.seed})")

    def check(self, state, potential) -> None:
        """The parameters as the constructor checks them (they may have been changed since:
        ``llg.temperature = T`` between runs is taken live), then the state and potential."""
        # the values kept as the constructor keeps them (``llg.solver = "SIB"``: lower case)
        self.dt = check_dt(self.dt)
        self.damping = check_nonnegative(self.damping, "damping", "dimensionless Gilbert α")
        self.temperature = check_nonnegative(self.temperature, "temperature", "K")
        if not isinstance(self.solver, str) or self.solver.lower() not in SOLVERS:
            raise InputError(f"unknown LLG solver {self.solver!r}; choose one of {SOLVERS}")
        self.solver = self.solver.lower()
        if self.temperature > 0 and self.damping == 0:
            raise InputError("LLG at temperature > 0 needs damping > 0 (the thermal field scales with α)")
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

    def spin_fields(self, state, potential) -> SpinFields:
        """The (cached) :class:`SpinFields` of ``potential`` on the lattice of ``state``."""
        f = self._fields
        if f is None or not f.matches(state, potential):
            f = self._fields = SpinFields(state, potential)
        return f

    def _noise_blocks(self, steps, n):
        """Yield (steps in block, noise (steps, n, 3) or (0, n, 3) at T = 0). At T > 0 the
        stream is one Philox draw (:class:`~spinlat.integrators.noise.PhiloxNoise`) per step,
        whatever the blocks; for runs of at least :attr:`_OVERLAP_MIN` numbers the next block is
        drawn in a helper thread while the caller integrates the current one (the fill and the
        LLG kernels release the GIL), shorter runs draw in the calling thread."""
        if self.temperature == 0:
            if steps:
                yield steps, np.empty((0, n, 3))
            return
        per_block = max(1, self._NOISE_BLOCK // (3 * n))
        overlap = 3 * n * steps >= self._OVERLAP_MIN
        block = min(per_block, max(1, -(-steps // 4))) if overlap else per_block
        sizes = [min(block, steps - k) for k in range(0, steps, block)]
        if len(sizes) < 2 or not overlap:
            for nb in sizes:
                yield nb, self.rng.blocks(nb, n)
            return
        with ThreadPoolExecutor(1) as pool:
            nxt = pool.submit(self.rng.blocks, sizes[0], n, True)
            for k, nb in enumerate(sizes):
                noise = nxt.result()
                if k + 1 < len(sizes):
                    nxt = pool.submit(self.rng.blocks, sizes[k + 1], n, True)
                yield nb, noise

    def run(self, state, potential, steps: int):
        steps = int(steps)
        if steps < 0:
            raise InputError(f"steps must be non-negative, got {steps}")
        self.check(state, potential)
        fields = self.spin_fields(state, potential)
        n = len(state)
        s = np.array(state.spins.T, dtype=np.float64, order="C")  # (3, N) inside the run
        out = np.empty((3, n))
        buf = StageBuffers(np.empty((3, n)), np.empty((3, n)), np.empty((3, n)))
        a = self.damping
        step = Stepper(SOLVERS.index(self.solver), units.GAMMA / ((1.0 + a * a) * units.MU_B), a, self.dt)
        sigma = self.noise_amplitudes(state)
        thermal = self.temperature > 0
        lin = fields.linear
        if not fields.extra:
            for nb, noise in self._noise_blocks(steps, n):
                run_steps(step, s, out, buf, lin, noise, sigma, nb)
                if nb % 2:
                    s, out = out, s
        else:
            none = np.empty((0, 3))
            for _ in range(steps):
                noise = self.rng.normals(n) if thermal else none
                for stage, x in ((0, s), (1, buf.mid)):
                    hext = fields.extra_fields(np.ascontiguousarray(x.T))
                    llg_stage(step, stage, s, out, buf, lin, hext, noise, sigma)
                s, out = out, s
        new = state.copy().with_arrays(spins=np.ascontiguousarray(s.T))
        return self._record(new, potential, potential.compute(new, forces=False, magnetic_forces=True))
