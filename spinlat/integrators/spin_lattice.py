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

When the rotation field of a spin depends on that spin itself (anisotropies, or any term
without ``rotation_field_independent_of_own_spin = True``), a fixed-axis rotation is only a
first-order approximation of its motion; such colours take the symmetric implicit-midpoint
rotation s' = R(τ h((s + s')/2)) s instead (fixed-point iteration to 1e-14), which keeps the
composition symmetric (energy error O(dt²)) and conserves quadratic single-spin energies such
as uniaxial anisotropy plus exchange exactly. The spin graph colouring includes the pair tables
of terms with ``pairs(state)`` (Heisenberg).

Fast path: when every magnetic term of the potential has a method
``spin_couplings(state, neighbors) -> (offsets, nbr, w, b)`` giving its rotation fields in the
linear form h_i = b_i + Σ_{p in row i} w[p] s_{nbr[p]} (eV/μB; ``offsets``/``nbr``/``w`` may be
None for a field-only term, ``b`` None for a pair-only term), e.g. ``BetheSlaterExchange`` and
``Zeeman``, the couplings are built once per position update and a whole sweep runs in one
numba kernel (no Python per colour, no distances or J(r) recomputed per colour). Otherwise each
colour calls ``potential.rotation_fields``.

For potentials whose ``local`` flag is False (they give all fields at once, e.g. mMACE) the
spins are advanced all together by an explicit midpoint rotation: rotate by τ/2 about a
predictor field, evaluate the fields there, rotate the start spins by τ about those midpoint
fields. The predictor only has to be O(τ) accurate, so it is the field of the latest
evaluation (no extra model call). NVE then uses the Strang splitting
``kick dt/2 · drift dt/2 · spins dt · drift dt/2 · kick dt/2``: two model calls per step (the
midpoint fields, then forces and fields together at the end, whose fields are the next step's
predictor). Second order in dt, spin lengths conserved, not symplectic: the total energy
drifts slowly, at a rate ∝ dt³ (mMACE bcc Fe at 300 K: 1.5 meV/atom/ps at dt = 0.5 fs,
0.2 at 0.25 fs).

Moment magnitudes stay fixed in NVE even when ``potential.depends_on_magnitudes``; only
:class:`SpinLatticeLangevin` makes them dynamical (overdamped Langevin on |m|).

Reproducibility (see :mod:`spinlat.integrators.base`): bit for bit however a run is split, on 1
or more numba threads, and across restarts. The colour classes are a function of the neighbour-
list build (its pairs and the positions it was built at), kept by the integrator between runs,
and the checkpoint carries those positions, so a restart rebuilds the same list. The colour sweep
runs on threads (over the atoms of one colour) from :data:`PARALLEL_MIN_SPINS` magnetic atoms on,
when numba has more than one thread; the threaded and the serial sweep give the same bits.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from .. import units
from ..errors import InputError
from ..state import State
from .base import Integrator, check_dt, check_nonnegative, check_seed
from .coloring import best_coloring, color_classes, csr_from_pairs, spin_color_classes
from .rotation import _rotate_one, angle_factor, rotate_all, rotate_spins

#: fused multiply-add in hot kernels (more accurate and faster; no other fast-math liberties)
_FMA = {"contract"}


# ------------------------------------------------------------------------------ kernels
@numba.njit(cache=True)
def _kick(vel, forces, acc_factor, h):
    """v_i += h · F_i · acc_factor_i (acc_factor = FORCE_TO_ACCELERATION / m_i), in place."""
    for i in range(vel.shape[0]):
        c = h * acc_factor[i]
        vel[i, 0] += c * forces[i, 0]
        vel[i, 1] += c * forces[i, 1]
        vel[i, 2] += c * forces[i, 2]


@numba.njit(cache=True)
def _drift(pos, vel, h):
    """r_i += h v_i, in place."""
    for i in range(pos.shape[0]):
        pos[i, 0] += h * vel[i, 0]
        pos[i, 1] += h * vel[i, 1]
        pos[i, 2] += h * vel[i, 2]


@numba.njit(cache=True)
def _ornstein_uhlenbeck(vel, noise, c1, sigma):
    """v_i ← c1 v_i + sigma_i ξ_i (exact Ornstein-Uhlenbeck step), in place; noise (N,3) N(0,1)."""
    for i in range(vel.shape[0]):
        s = sigma[i]
        vel[i, 0] = c1 * vel[i, 0] + s * noise[i, 0]
        vel[i, 1] = c1 * vel[i, 1] + s * noise[i, 1]
        vel[i, 2] = c1 * vel[i, 2] + s * noise[i, 2]


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


@numba.njit(cache=True, inline="always")
def _linear_rotate(spins, i, off, nbr, w, b, fac, damping, noise, row, sig):
    hx, hy, hz = b[i, 0], b[i, 1], b[i, 2]
    for p in range(off[i], off[i + 1]):
        j = nbr[p]
        wp = w[p]
        hx += wp * spins[j, 0]
        hy += wp * spins[j, 1]
        hz += wp * spins[j, 2]
    if noise.shape[0] > 0:
        hx += sig * noise[row, 0]
        hy += sig * noise[row, 1]
        hz += sig * noise[row, 2]
    _rotate_one(spins, i, hx, hy, hz, fac, damping)


@numba.njit(cache=True, fastmath=_FMA)
def _linear_sweep(spins, cls_off, cls_atoms, order, last, off, nbr, w, b, fac_q, fac_h, damping, noise, sig_q,
                  sig_h):
    """One colour sweep with linear fields h_i = b_i + Σ_p w[p] s_nbr[p] (eV/μB), in place.

    Colours ``order`` in turn (colour ``last`` rotated with ``fac_h``, the others ``fac_q``);
    optional noise rows (one per rotation, in sweep order) scaled by sig_q / sig_h (eV/μB)."""
    base = 0
    for t in range(order.shape[0]):
        c = order[t]
        full = c == last
        fac = fac_h if full else fac_q
        k0 = cls_off[c]
        for k in range(k0, cls_off[c + 1]):
            i = cls_atoms[k]
            sig = 0.0
            if noise.shape[0] > 0:
                sig = sig_h[i] if full else sig_q[i]
            _linear_rotate(spins, i, off, nbr, w, b, fac, damping, noise, base + k - k0, sig)
        base += cls_off[c + 1] - k0


@numba.njit(cache=True, fastmath=_FMA, parallel=True)
def _linear_sweep_parallel(spins, cls_off, cls_atoms, order, last, off, nbr, w, b, fac_q, fac_h, damping, noise,
                           sig_q, sig_h):
    """:func:`_linear_sweep` with threads over the atoms of one colour (same result)."""
    base = 0
    for t in range(order.shape[0]):
        c = order[t]
        full = c == last
        fac = fac_h if full else fac_q
        k0 = cls_off[c]
        for k in numba.prange(k0, cls_off[c + 1]):
            i = cls_atoms[k]
            sig = 0.0
            if noise.shape[0] > 0:
                sig = sig_h[i] if full else sig_q[i]
            _linear_rotate(spins, i, off, nbr, w, b, fac, damping, noise, base + k - k0, sig)
        base += cls_off[c + 1] - k0


#: below this many magnetic atoms the colour sweep runs on one thread (one colour is too little
#: work per parallel region: thread synchronisation would cost more than it saves). A module
#: parameter: lower it to use threads on smaller systems (the result does not change by a bit)
PARALLEL_MIN_SPINS = 65536


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
    """Mutable arrays of one run, wrapped in a State the potential reads (never the input)."""

    def __init__(self, state, potential, colouring=None):
        self.pos = np.array(state.positions, dtype=np.float64, order="C")
        self.vel = np.array(state.velocities, dtype=np.float64, order="C")
        self.spins = np.array(state.spins, dtype=np.float64, order="C")
        self.moments = np.array(state.moments, dtype=np.float64)
        self.state = State._trusted(self.pos, state.numbers, state.cell, state.pbc, self.spins, self.moments,
                                    self.vel, state.masses)
        self.acc = units.FORCE_TO_ACCELERATION / np.asarray(state.masses, dtype=np.float64)
        self.potential = potential
        self.mag_atoms = np.flatnonzero(self.moments > 0).astype(np.int64)
        terms = potential.terms
        self.spin_cutoff = max([t.cutoff for t in terms if t.magnetic], default=0.0)
        self.nl = None
        self._nl_builds = -1
        self.classes = None
        mterms = [t for t in terms if t.magnetic]
        # fast path: every magnetic term gives its rotation fields in linear form
        self.linear = (potential.local and not potential.depends_on_magnitudes
                       and all(callable(getattr(t, "spin_couplings", None)) for t in mterms))
        self._mterms = mterms
        # some term's rotation field of spin i depends on s_i itself (anisotropies): such
        # sub-steps use the symmetric implicit-midpoint rotation (see SpinLatticeNVE)
        self.self_dependent = not all(getattr(t, "rotation_field_independent_of_own_spin", False) for t in mterms)
        self.couplings = None
        self.colouring = _Colouring() if colouring is None else colouring
        self.update_neighbors()

    def update_neighbors(self):
        pot = self.potential
        if pot.cutoff > 0:
            self.nl = pot.neighbor_list(self.state)
        if self.linear:
            self.refresh_couplings()
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
        """Colour classes of the magnetic atoms for the pairs of the current list, made at the
        reference positions ``ref`` (N, 3) Å."""
        pot = self.potential
        table_terms = [t for t in self._mterms if t.cutoff <= 0 and callable(getattr(t, "pairs", None))]
        if table_terms:  # pairs from a table (Heisenberg), plus distance-based ones if any
            return self._table_classes(table_terms, ref)
        if self.nl is None or self.spin_cutoff <= 0 or not pot.local:  # non-local: all spins at once
            return [self.mag_atoms] if len(self.mag_atoms) else []
        n = len(self.pos)
        if self.linear:  # the coupling graph itself (valid while the list is): no pair vectors
            off, nbr = self.couplings[0], self.couplings[1]
            rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(off))
            offsets, nb = csr_from_pairs(rows, nbr, n)
            return color_classes(best_coloring(offsets, nb, n, ref), mask=self.moments > 0)
        cut = min(self.spin_cutoff + self.nl.skin, self.nl.cutoff + self.nl.skin)
        st = State._trusted(ref, self.state.numbers, self.state.cell, self.state.pbc, self.spins, self.moments,
                            self.vel, self.state.masses)
        return spin_color_classes(st, self.nl, cutoff=cut)

    def _table_classes(self, table_terms, ref):
        """Colour classes of the union of the pair tables of ``table_terms`` (``pairs(state)``
        → i, j, ...) and the neighbour-list pairs within the other magnetic terms' cutoff."""
        st, n = self.state, len(self.pos)
        ii, jj = [], []
        for t in table_terms:
            i, j = t.pairs(st)[:2]
            ii.append(np.asarray(i, dtype=np.int64))
            jj.append(np.asarray(j, dtype=np.int64))
        if self.nl is not None and self.spin_cutoff > 0:
            cut = min(self.spin_cutoff + self.nl.skin, self.nl.cutoff + self.nl.skin)
            keep = np.linalg.norm(self.nl.vectors(ref), axis=1) < cut
            ii.append(np.asarray(self.nl.i, dtype=np.int64)[keep])
            jj.append(np.asarray(self.nl.j, dtype=np.int64)[keep])
        i, j = np.concatenate(ii), np.concatenate(jj)
        mag = st.moments > 0
        keep = mag[i] & mag[j]
        offsets, nb = csr_from_pairs(i[keep], j[keep], n)
        return color_classes(best_coloring(offsets, nb, n, ref), mask=mag)

    def refresh_couplings(self):
        """Linear fields of all magnetic terms at the current positions and moments."""
        n = len(self.pos)
        fields = []
        pairs = []
        for t in self._mterms:
            off, nbr, w, bt = t.spin_couplings(self.state, self.nl if t.cutoff > 0 else None)
            if bt is not None:
                fields.append(bt)
            if off is not None and len(nbr):
                pairs.append((off, nbr, w))
        if len(fields) == 1:  # read only: no copy
            b = np.ascontiguousarray(fields[0], dtype=np.float64)
        else:
            b = np.zeros((n, 3))
            for bt in fields:
                b += bt
        if not pairs:
            off, nbr, w = np.zeros(n + 1, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0)
        elif len(pairs) == 1:
            off, nbr, w = pairs[0]
        else:  # merge rows of several pair terms
            rows = np.concatenate([np.repeat(np.arange(n), np.diff(o)) for o, _, _ in pairs])
            order = np.argsort(rows, kind="stable")
            nbr = np.concatenate([q for _, q, _ in pairs])[order]
            w = np.concatenate([q for _, _, q in pairs])[order]
            off = np.zeros(n + 1, dtype=np.int64)
            np.cumsum(np.bincount(rows, minlength=n), out=off[1:])
        self.couplings = (off, nbr, w, b)

    def evaluate(self, magnetic_forces):
        return self.potential._evaluate(self.state, self.nl, True, magnetic_forces, False)

    def final_state(self):
        return State._trusted(self.pos, self.state.numbers, self.state.cell, self.state.pbc, self.spins,
                              self.moments, self.vel, self.state.masses)


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
        self._cache = None  # (state returned last, potential, Evaluation with forces)
        self._colouring = _Colouring()  # spin colour classes, kept between runs

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
        first run)."""
        out = super().checkpoint(potential)
        if self._colouring.positions is not None:
            out["reference_positions"] = self._colouring.positions
        return out

    def restore(self, checkpoint, state, potential) -> None:
        """:meth:`Integrator.restore`, and rebuild ``potential``'s neighbour list at the
        checkpoint's ``reference_positions`` (where the interrupted run had built it), so that
        the spin colouring, and with it the trajectory, continue bit for bit. A list that would
        not be valid for ``state`` (atoms moved more than skin/2 from the reference) is built at
        ``state`` instead."""
        super().restore(checkpoint, state, potential)
        self._colouring = _Colouring()
        self._cache = None
        ref = checkpoint.get("reference_positions")
        if ref is None:
            return
        ref = np.array(ref, dtype=np.float64)
        if ref.shape != np.shape(state.positions) or not np.all(np.isfinite(ref)):
            return
        if potential.cutoff > 0:
            nl = potential.neighbor_list(state)
            if not np.array_equal(nl.reference_positions, ref):
                nl.build(State._trusted(ref, state.numbers, state.cell, state.pbc, state.spins, state.moments,
                                        state.velocities, state.masses))
                if nl.needs_rebuild(state):
                    nl.build(state)
                    return
        self._colouring.positions = ref

    # -------------------------------------------------------------- shared pieces
    def _initial_forces(self, ws, state, potential, need_fields):
        c = self._cache
        if c is not None and c[0] is state and c[1] is potential and (
                not need_fields or c[2].magnetic_forces is not None):
            return c[2]
        return ws.evaluate(need_fields)

    def _finish(self, ws, potential, ev):
        out = ws.final_state()
        self.last_evaluation = ev
        self._cache = (out, potential, ev)
        return out

    def _sweep(self, ws, tau, damping=0.0, sigma=None, rng=None):
        """Advance the spins by tau fs: colours forward (tau/2 each), then backward (tau/2 each);
        the last colour's two rotations merged. ``sigma`` (N,) noise amplitude per unit
        duration^-1/2 (eV/μB·fs^½) for stochastic LLG."""
        classes = ws.classes
        nc = len(classes)
        if nc == 0:
            return
        if ws.linear:
            off, nbr, w, b = ws.couplings
            q = 0.5 * tau
            if sigma is not None:
                noise = rng.standard_normal((ws.n_rotations, 3))
                sig_q, sig_h = sigma / math.sqrt(q), sigma / math.sqrt(tau)
            else:
                noise, sig_q, sig_h = _NO_NOISE, _EMPTY, _EMPTY
            kernel = (_linear_sweep_parallel if numba.get_num_threads() > 1 and len(ws.mag_atoms) >= PARALLEL_MIN_SPINS
                      else _linear_sweep)
            kernel(ws.spins, ws.cls_off, ws.cls_atoms, ws.order, nc - 1, off, nbr, w, b, angle_factor(q, damping),
                   angle_factor(tau, damping), damping, noise, sig_q, sig_h)
            return
        pot, st, nl, spins = ws.potential, ws.state, ws.nl, ws.spins
        q = 0.5 * tau
        fac_q = angle_factor(q, damping)
        fac_h = angle_factor(tau, damping)
        order = list(range(nc)) + list(range(nc - 2, -1, -1))
        implicit = ws.self_dependent
        for n, c in enumerate(order):
            atoms = classes[c]
            h = pot.rotation_fields(st, nl, atoms)
            duration = tau if c == nc - 1 else q
            fac = fac_h if c == nc - 1 else fac_q
            noise = None
            if sigma is not None:
                noise = rng.standard_normal((len(atoms), 3)) * (sigma[atoms] / math.sqrt(duration))[:, None]
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
                h = pot.rotation_fields(st, nl, atoms)
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
        ev = ws.potential._evaluate(ws.state, ws.nl, False, True, False)
        return ev.magnetic_forces

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


#: implicit-midpoint sub-steps (fields that depend on the rotating spin itself): stop when
#: the spins change by less than this between iterations, or after this many iterations
_MIDPOINT_TOLERANCE = 1e-14
_MAX_MIDPOINT_ITERATIONS = 30

_NO_NOISE = np.zeros((0, 3))
_EMPTY = np.zeros(0)


def _project_transverse_all(h, spins):
    _project_transverse(h, spins, np.arange(len(h), dtype=np.int64))


# ------------------------------------------------------------------------------ NVE
class SpinLatticeNVE(_SpinLatticeBase):
    """Symplectic coupled spin-lattice dynamics at constant energy (no damping, no noise).

    Parameters
    ----------
    dt : time step, fs (0 < dt ≤ 10).

    One step: half kick of the velocities, half step of the spins (sequential sweep over
    colour classes, forward then backward, each spin rotated exactly about its effective
    field), full drift of the positions, half step of the spins, new forces, half kick (see the
    module docstring). Moment magnitudes are kept fixed. Total energy is conserved to O(dt²)
    with no drift; spin lengths to round-off. Deterministic: the same State gives the same
    trajectory bit for bit however the run is split, restarted or threaded.
    """

    def __init__(self, dt):
        super().__init__(dt)

    def __repr__(self):
        return f"SpinLatticeNVE(dt={self.dt})"

    def run(self, state, potential, steps: int) -> State:
        """Advance ``steps`` steps of dt fs; return the new State (the input is not modified)."""
        steps = _as_steps(steps)
        self.check(state, potential)
        ws = _Work(state, potential, self._colouring)
        local = potential.local
        ev = self._initial_forces(ws, state, potential, need_fields=not local)
        dt = self.dt
        for step in range(steps):
            last = step == steps - 1
            _kick(ws.vel, ev.forces, ws.acc, 0.5 * dt)
            if local:
                self._sweep(ws, 0.5 * dt)
                _drift(ws.pos, ws.vel, dt)
                ws.update_neighbors()
                self._sweep(ws, 0.5 * dt)
            else:  # Strang: drift/2, all spins over dt (one model call), drift/2
                _drift(ws.pos, ws.vel, 0.5 * dt)
                ws.update_neighbors()
                self._global_spin_step(ws, dt, ev.magnetic_forces)
                _drift(ws.pos, ws.vel, 0.5 * dt)
                ws.update_neighbors()
            ev = ws.evaluate(last or not local)
            _kick(ws.vel, ev.forces, ws.acc, 0.5 * dt)
        if steps == 0:
            ev = ws.evaluate(True) if ev.magnetic_forces is None else ev
        return self._finish(ws, potential, ev)


# ------------------------------------------------------------------------------ Langevin
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
    seed : seed of the integrator's random stream (same seed → same trajectory bit for bit,
        however the run is split, restarted or threaded; see :mod:`spinlat.integrators.base`).

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
    """

    def __init__(self, dt, temperature, friction, damping, spin_temperature=None, longitudinal_damping=None,
                 seed=None):
        super().__init__(dt)
        self.temperature = check_nonnegative(temperature, "temperature", "K")
        self.friction = check_nonnegative(friction, "friction", "1/fs")
        self.damping = check_nonnegative(damping, "damping", "dimensionless")
        self.spin_temperature = (self.temperature if spin_temperature is None
                                 else check_nonnegative(spin_temperature, "spin_temperature", "K"))
        self.longitudinal_damping = (self.damping if longitudinal_damping is None
                                     else check_nonnegative(longitudinal_damping, "longitudinal_damping",
                                                            "dimensionless"))
        self.seed = check_seed(seed)
        self.rng = np.random.default_rng(seed)

    def __repr__(self):
        return (f"SpinLatticeLangevin(dt={self.dt}, temperature={self.temperature}, friction={self.friction}, "
                f"damping={self.damping}, spin_temperature={self.spin_temperature}, "
                f"longitudinal_damping={self.longitudinal_damping}, seed={self.seed})")

    def check(self, state, potential) -> None:
        super().check(state, potential)
        check_nonnegative(self.temperature, "temperature", "K")
        check_nonnegative(self.friction, "friction", "1/fs")
        check_nonnegative(self.damping, "damping", "dimensionless")
        check_nonnegative(self.spin_temperature, "spin_temperature", "K")
        check_nonnegative(self.longitudinal_damping, "longitudinal_damping", "dimensionless")

    def run(self, state, potential, steps: int) -> State:
        """Advance ``steps`` steps of dt fs; return the new State (the input is not modified)."""
        steps = _as_steps(steps)
        self.check(state, potential)
        ws = _Work(state, potential, self._colouring)
        rng = self.rng
        dt = self.dt
        n = len(state)
        local = potential.local
        longitudinal = potential.depends_on_magnitudes and self.longitudinal_damping > 0
        kT = units.K_B * self.temperature
        kTs = units.K_B * self.spin_temperature
        alpha = self.damping
        # lattice O step
        c1 = math.exp(-self.friction * dt)
        v_sigma = np.sqrt((1.0 - c1 * c1) * kT * ws.acc)  # Å/fs (acc = 1/(m in eV fs²/Å²))
        thermostat = self.friction > 0
        # spin noise: h_noise = sigma_i / sqrt(duration) ξ (eV/μB)
        sigma = None
        if alpha > 0 and kTs > 0:
            with np.errstate(divide="ignore"):
                sigma = np.where(ws.moments > 0,
                                 np.sqrt(2.0 * alpha * kTs * units.MU_B / (units.GAMMA * np.where(
                                     ws.moments > 0, ws.moments, 1.0))), 0.0)
        mobility = self.longitudinal_damping * units.GAMMA / units.MU_B
        ev = self._initial_forces(ws, state, potential, need_fields=not local)
        for step in range(steps):
            last = step == steps - 1
            _kick(ws.vel, ev.forces, ws.acc, 0.5 * dt)
            h_pred = self._spins(ws, 0.5 * dt, alpha, sigma, rng, ev.magnetic_forces if not local else None, local)
            _drift(ws.pos, ws.vel, 0.5 * dt)
            if thermostat:
                _ornstein_uhlenbeck(ws.vel, rng.standard_normal((n, 3)), c1, v_sigma)
            _drift(ws.pos, ws.vel, 0.5 * dt)
            ws.update_neighbors()
            self._spins(ws, 0.5 * dt, alpha, sigma, rng, h_pred, local)
            if longitudinal and len(ws.mag_atoms):
                atoms = ws.mag_atoms
                h = np.ascontiguousarray(potential.local_fields(ws.state, ws.nl, atoms), dtype=np.float64)
                _longitudinal_step(ws.moments, ws.spins, h, atoms, mobility, kTs, dt,
                                   rng.standard_normal((len(atoms), 3)))
                if sigma is not None:  # noise amplitude follows the moment
                    sigma[atoms] = np.sqrt(2.0 * alpha * kTs * units.MU_B / (units.GAMMA * ws.moments[atoms]))
            ev = ws.evaluate(last or not local)
            _kick(ws.vel, ev.forces, ws.acc, 0.5 * dt)
        if steps == 0:
            ev = ws.evaluate(True) if ev.magnetic_forces is None else ev
        return self._finish(ws, potential, ev)

    def _spins(self, ws, tau, alpha, sigma, rng, h0, local):
        if local:
            self._sweep(ws, tau, alpha, sigma, rng)
            return None
        noise = None
        if sigma is not None:
            noise = rng.standard_normal((len(ws.spins), 3)) * (sigma / math.sqrt(tau))[:, None]
        return self._global_spin_step(ws, tau, h0, alpha, noise)
