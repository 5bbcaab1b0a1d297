"""Energy minimisation of spins, moment magnitudes, positions and the cell.

The default method is L-BFGS with orthogonal spin rotations: spin degrees of freedom are
rotation vectors θ_i in the tangent plane of each spin (the gradient of E with respect to θ_i
is the torque s_i × ∂E/∂s_i, eV/rad), positions are Cartesian (gradient −F, eV/Å), the cell is
a symmetric strain (gradient V·σ, eV), and moment magnitudes |m_i| are plain variables
(gradient ∂E/∂|m_i| = −s_i·h_i, eV/μB). Every step starts from the current configuration, so
spins stay exactly unit length. A damped-precession method is the fallback
(``method="precession"``).

Convergence: largest torque ≤ ``tmax`` (eV), largest force ≤ ``fmax`` (eV/Å), largest stress
component ≤ ``smax`` (eV/Å³), largest longitudinal field ≤ ``hmax`` (eV/μB).

Evaluations: when only spin directions relax and every magnetic term has linear couplings
(Heisenberg, Bethe-Slater exchange, Zeeman, uniaxial anisotropy), energies and magnetic forces
come from the field engine (:class:`~spinlat.integrators.fields.SpinFieldEngine`: one kernel
over the merged coupling table, plus the constant energy of the lattice terms); otherwise from
``potential.compute``. Spin rotations are :func:`spinlat.integrators.rotation.rotate_all`, torques
:func:`spinlat.potentials.base.spin_torques`.

This module is ``spinlat.minimization``; its function is ``spinlat.minimize``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import numpy as np

from . import validation
from .errors import InputError
from .integrators.lbfgs import two_loop as _two_loop
from .integrators.rotation import rotate_all
from .integrators.spin_lbfgs import sd_scale as _sd_scale
from .interrupts import abandonable, check, deferred, interrupt_cause, pending, raise_with, rearm
from .keywords import check_names, refuse_other_names
from .potentials.base import Evaluation, torque_kernel

_MAX_ROTATION = 0.3  # rad, largest spin rotation of one step
_MAX_DISPLACEMENT = 0.1  # Å, largest atomic move of one step
_MAX_STRAIN = 0.01  # largest strain component of one step
_MAX_DMOMENT = 0.1  # μB, largest moment change of one step


@dataclass
class MinimizeResult:
    """What :func:`minimize` did: ``state``, ``energy`` (eV), ``iterations``, ``converged``,
    ``reason`` (why it stopped), final ``max_torque`` (eV), ``max_force`` (eV/Å),
    ``max_stress`` (eV/Å³), ``max_longitudinal`` (eV/μB), ``n_evaluations``."""

    state: object
    energy: float
    iterations: int
    converged: bool
    reason: str
    max_torque: float = 0.0
    max_force: float = 0.0
    max_stress: float = 0.0
    max_longitudinal: float = 0.0
    n_evaluations: int = 0
    history: list = field(default_factory=list)

    def warn_if_unconverged(self, what="minimize", stacklevel=2) -> None:
        """A :class:`~spinlat.errors.ConvergenceWarning` naming ``what`` (e.g. the workflow and
        its point) when the minimisation did not converge: its state is then not a minimum."""
        if self.converged:
            return
        import warnings

        from .errors import ConvergenceWarning

        warnings.warn(f"{what}: not converged ({self.reason} after {self.iterations} iterations; {self.residuals}, "
                      f"energy {self.energy:.6g} eV): the State returned is not a minimum (return_result=True "
                      f"gives the details)", ConvergenceWarning, stacklevel=stacklevel + 1)

    @property
    def residuals(self) -> str:
        """The final residual of every degree of freedom, with units, as one line of text (what
        the convergence tests compare; those not relaxed read 0)."""
        return (f"max torque {self.max_torque:.3g} eV, max force {self.max_force:.3g} eV/Å, max stress "
                f"{self.max_stress:.3g} eV/Å³, max longitudinal field {self.max_longitudinal:.3g} eV/μB")


class _Problem:
    """Maps a State onto a flat vector of step variables and back."""

    def __init__(self, potential, spins, positions, cell, magnitudes, state, forces=False, neighbors=None):
        self.pot = potential
        self.spins, self.positions, self.cell, self.magnitudes = spins, positions, cell, magnitudes
        self.forces = forces or positions or cell  # atomic forces in every evaluation
        self.neighbors = neighbors
        self.n_eval = 0
        self.engine = None
        self.last = (None, None)  # (State, Evaluation) of the latest evaluation
        if spins and not (positions or cell or magnitudes):  # frozen lattice and moments
            from .integrators.fields import SpinFieldEngine

            engine = SpinFieldEngine(potential)
            nl = potential.neighbor_list(state) if potential.cutoff > 0 else None
            engine.update(state, nl)
            if engine.complete:
                self.engine, self.nl = engine, nl

    def _compute(self, st):
        if self.engine is not None:
            e, h = self.engine.evaluate_images(st, st.spins[None], self.nl)
            return Evaluation(float(e[0]), magnetic_forces=h[0])
        return self.pot.compute(st, self.neighbors, forces=self.forces,
                                magnetic_forces=self.spins or self.magnitudes, stress=self.cell)

    def evaluate(self, st):
        """Energy (eV) and the gradient blocks of ``st``."""
        self.n_eval += 1
        ev = self._compute(st)
        self.last = (st, ev)
        g = {}
        mag = st.moments > 0
        if self.spins:
            tq = np.empty_like(st.spins)
            torque_kernel(st.spins, ev.magnetic_forces, st.moments, tq)
            g["spins"] = tq
        if self.positions:
            g["positions"] = -ev.forces
        if self.cell:
            from .potentials.base import voigt_to_matrix

            g["cell"] = voigt_to_matrix(ev.stress) * st.volume
        if self.magnitudes:
            gm = -np.sum(st.spins * ev.magnetic_forces, axis=1)
            gm[~mag] = 0.0
            g["magnitudes"] = gm
        return ev.energy, g

    def flatten(self, g):
        return np.concatenate([np.ravel(g[k]) for k in ("spins", "positions", "cell", "magnitudes") if k in g])

    def unflatten(self, v, n):
        out, k = {}, 0
        for name, size, shape in (("spins", 3 * n, (n, 3)), ("positions", 3 * n, (n, 3)), ("cell", 9, (3, 3)),
                                  ("magnitudes", n, (n,))):
            if getattr(self, name):
                out[name] = v[k:k + size].reshape(shape)
                k += size
        return out

    def limit(self, d, n):
        """Largest factor ≤ 1 that keeps a step within the trust limits."""
        parts = self.unflatten(d, n)
        f = 1.0
        for name, cap in (("spins", _MAX_ROTATION), ("positions", _MAX_DISPLACEMENT), ("cell", _MAX_STRAIN),
                          ("magnitudes", _MAX_DMOMENT)):
            if name in parts:
                a = parts[name]
                big = _rowmax(a) if a.ndim == 2 and name != "cell" else np.max(np.abs(a))
                if big > cap:
                    f = min(f, cap / big)
        return f

    def apply(self, st, d):
        """State after the step ``d`` (rotation vectors, displacements, strain, moment changes)."""
        parts = self.unflatten(d, len(st))
        spins, moments, pos, cell = st.spins, st.moments, st.positions, st.cell
        if "spins" in parts:
            spins = _rotate(spins, parts["spins"])
        if "magnitudes" in parts:
            moments = np.where(moments > 0, np.maximum(moments + parts["magnitudes"], 1e-6), 0.0)
        if "positions" in parts:
            pos = pos + parts["positions"]
        if "cell" in parts:
            e = parts["cell"]
            e = 0.5 * (e + e.T)
            deform = np.eye(3) + e
            pos = pos @ deform.T
            cell = cell @ deform.T
        return st.with_arrays(positions=pos, cell=cell, spins=spins, moments=moments)


def _rotate(spins, theta):
    """Each spin rotated by its rotation vector θ_i (angle |θ_i| rad about θ̂_i, right-handed;
    Rodrigues, :func:`~spinlat.integrators.rotation.rotate_all`), unit length kept; a new array."""
    out = np.array(spins, dtype=np.float64, order="C")
    rotate_all(out, np.ascontiguousarray(theta, dtype=np.float64), 1.0, 0.0)
    return out


def _rowmax(a):
    return float(np.sqrt(np.max(np.einsum("ij,ij->i", a, a), initial=0.0)))


def _norms(g):
    def mx(a, rows=True):
        if a is None:
            return 0.0
        return _rowmax(a) if rows else float(np.max(np.abs(a), initial=0.0))

    return (mx(g.get("spins")), mx(g.get("positions")), mx(g.get("cell"), False), mx(g.get("magnitudes"), False))


def _kernel_couplings(couplings):
    """The couplings' ``kernel_arrays()``, with a tensor table whose matrices are all J·1 turned
    into scalar exchange (one number per coupling instead of nine: the same fields)."""
    from .integrators.fields import isotropic_couplings

    c = couplings.kernel_arrays()
    if not c[5] and len(c[1]):
        jiso = isotropic_couplings(c[4])
        if jiso is not None:
            empty_i, empty_t = np.zeros(0, np.int32), np.zeros((0, 3, 3))
            c = (c[0], c[1], np.ascontiguousarray(jiso[c[3]]), empty_i, empty_t, True, c[6], c[7])
    return c


#: seconds of work of one compiled kernel call: a Ctrl-C / SIGTERM waits at most about this long
_CHUNK_S = 0.2
#: iterations × atoms of the first kernel call of a run (then scaled to last about _CHUNK_S)
_FIRST_CHUNK = 2 ** 18
#: what a compiled minimisation does on Ctrl-C / SIGTERM (:func:`~spinlat.interrupts.deferred`'s line)
STOPPING_COMPILED = "within a fraction of a second (at the end of the compiled kernel's chunk of iterations)"


def _minimize_compiled(prob, state, starts, tmax, max_steps, memory):
    """L-BFGS of the spin directions of every start (``starts`` (M, N, 3) unit spins on the lattice
    of ``state``) by the kernel (:mod:`spinlat.integrators.spin_lbfgs`) on the field engine's
    merged couplings, one start after the other, each in chunks of iterations of about
    :data:`_CHUNK_S` s (:func:`~spinlat.integrators.spin_lbfgs.lbfgs_oso_steps`, which carries
    the L-BFGS history from one chunk to the next: the results are bit for bit those of one call).

    Returns ``(finished, reached)``: the list of the :class:`MinimizeResult` (fields of the Python
    loop) of the starts finished, in order, and None; or, when a Ctrl-C / SIGTERM held back by
    :func:`spinlat.interrupts.deferred` waits before a chunk, the starts finished before it and
    the :class:`MinimizeResult` of the start under way at the state it reached (reason
    "interrupted", not converged; a start that converges as it is evaluated is finished instead;
    with M > 1 a start not begun gives None). An interrupt raised inside (a second signal) carries the list
    of the starts finished as its ``partial_result``."""
    import time

    from .integrators import spin_lbfgs as K

    engine = prob.engine
    cpl = engine.couplings
    off = cpl.offset
    e_const = (0.0 if off is None else float(off.sum())) + engine.lattice_energy(state, prob.nl)
    spins = np.array(starts, dtype=np.float64, order="C")
    m, n = spins.shape[0], spins.shape[1]
    moments = np.ascontiguousarray(state.moments, dtype=np.float64)
    energy, torque = np.empty(m), np.empty(m)
    iters, status, nev = np.empty(m, np.int64), np.empty(m, np.int64), np.empty(m, np.int64)
    history = np.full((m, max_steps + 1), np.nan)  # entries of rejected iterations stay NaN
    c = _kernel_couplings(cpl)
    carry = K.new_carry(n, memory)
    ints, values = carry[0], carry[1]
    base = state.copy(velocities=np.zeros_like(state.velocities))  # a minimum is at rest (minimize's docstring)

    def result(k, reason, converged, it, e, tq, n_ev):
        hist = history[k, :it + 1]
        st = base.with_arrays(spins=spins[k]) if m == 1 else base.copy().with_arrays(spins=spins[k])
        return MinimizeResult(st, float(e), it, converged, reason, max_torque=float(tq), n_evaluations=int(n_ev),
                              history=hist[~np.isnan(hist)].tolist())

    out = []
    budget = max(1, _FIRST_CHUNK // max(n, 1))
    try:
        for k in range(m):
            ints[:] = 0
            while True:
                stop = pending()  # then a call without iterations: the start under way stops at the state reached
                if stop and m > 1 and not ints[K.CARRY_BEGUN]:
                    return out, None  # a stack of starts: the next one is not begun
                t0 = time.perf_counter()
                if K.lbfgs_oso_steps(c, moments, e_const, spins[k:k + 1], tmax, max_steps, memory, _MAX_ROTATION,
                                     energy[k:k + 1], iters[k:k + 1], status[k:k + 1], torque[k:k + 1],
                                     nev[k:k + 1], history[k:k + 1], *carry, 0 if stop else budget):
                    break
                if stop:
                    it = int(ints[K.CARRY_IT])
                    return out, result(k, "interrupted", False, it, values[0], values[1], ints[K.CARRY_NEV])
                dt = time.perf_counter() - t0  # the whole budget was used: scale it to last about _CHUNK_S
                budget = max(1, min(8 * budget, int(budget * _CHUNK_S / max(dt, 1e-6))))
            code, it, tq = int(status[k]), int(iters[k]), float(torque[k])
            if code == K.CONVERGED:
                reason, converged = "converged", True
            elif code == K.MAX_STEPS:
                reason, converged = "max_steps reached", False
            else:
                reason = "line search failed (energy cannot decrease further at this precision)"
                converged = tq <= 10 * tmax
            out.append(result(k, reason, converged, it, energy[k], tq, nev[k]))
    except BaseException as exc:  # a second signal (also wrapped by C code): the starts finished go with it
        raise_with(exc, out)
    return out, None


def _check_options(state, potential, spins, positions, cell, magnitudes, tmax, fmax, smax, hmax, max_steps, method,
                   memory, compiled):
    """The validated options of :func:`minimize`, as a dict; InputError names a bad one."""
    o = dict(spins=validation.boolean(spins, "minimize: spins"),
             positions=validation.boolean(positions, "minimize: positions"),
             cell=validation.boolean(cell, "minimize: cell"),
             magnitudes=validation.boolean(magnitudes, "minimize: magnitudes"),
             tmax=validation.number(tmax, "minimize: tmax", positive=True, unit="eV"),
             fmax=validation.number(fmax, "minimize: fmax", positive=True, unit="eV/Å"),
             smax=validation.number(smax, "minimize: smax", positive=True, unit="eV/Å³"),
             hmax=validation.number(hmax, "minimize: hmax", positive=True, unit="eV/μB"),
             max_steps=validation.integer(max_steps, "minimize: max_steps", minimum=1),
             memory=validation.integer(memory, "minimize: memory", minimum=1), method=method, compiled=compiled)
    if not (o["spins"] or o["positions"] or o["cell"] or o["magnitudes"]):
        raise InputError("minimize: nothing to relax (spins, positions, cell and magnitudes are all False)")
    if method not in ("lbfgs", "precession"):
        raise InputError(f"minimize: unknown method {method!r}; use 'lbfgs' or 'precession'")
    if o["cell"] and not state.pbc.all():
        raise InputError("minimize: cell relaxation needs a cell periodic in all directions")
    if o["magnitudes"] and not potential.depends_on_magnitudes:
        raise InputError(f"minimize: magnitudes=True but {potential!r} does not depend on moment magnitudes")
    if (o["spins"] or o["magnitudes"]) and not potential.provides_magnetic_forces:
        raise InputError(f"minimize: {potential!r} gives no magnetic forces")
    if compiled is not None and compiled is not True and compiled is not False:
        raise InputError(f"minimize: compiled must be None (automatic), True or False, got {compiled!r}")
    return o


def _compiled_problem(state, potential, o):
    """The :class:`_Problem` of the options ``o`` and whether the compiled kernel runs it;
    InputError for compiled=True when it cannot."""
    prob = _Problem(potential, o["spins"], o["positions"], o["cell"], o["magnitudes"], state)
    use = o["method"] == "lbfgs" and o["compiled"] is not False and prob.engine is not None
    if o["compiled"] and not use:
        raise InputError("minimize: compiled=True needs method='lbfgs', only spins relaxing and every magnetic "
                         f"term with linear spin couplings; {potential!r} with these options has none")
    return prob, use


def minimize_starts(state, potential, starts, **minimize_kwargs):
    """:func:`minimize` of many starting spin configurations on the lattice of ``state``: ``starts``
    (M, N, 3) unit spins (rows of non-magnetic atoms as in ``state``). When the compiled kernel
    applies (see ``compiled`` of :func:`minimize`) the M run one after the other in the kernel;
    otherwise one :func:`minimize` each. The same minima as M separate calls, start by start.

    Ctrl-C (SIGTERM: :class:`~spinlat.interrupts.Terminated`) is held back to the end of the
    chunk of kernel iterations under way (a fraction of a second: the kernel runs in chunks for
    this, with the same results) or of the Python iteration under way, and raised as
    ``KeyboardInterrupt`` whose ``partial_result`` is the list of the :class:`MinimizeResult` of
    the starts finished (the first k, in order; the start under way is dropped: it is not a
    minimum). A second signal raises at once, with the same ``partial_result``.

    Returns a list of M :class:`MinimizeResult` (``.state`` the relaxed State, at rest as
    :func:`minimize` leaves it: velocities zero). Raises InputError
    for bad options (:func:`minimize`'s) or starts that are not (M, N, 3) unit vectors."""
    minimize_kwargs.pop("return_result", None)
    starts = np.asarray(starts, dtype=np.float64)
    if starts.ndim != 3 or starts.shape[1:] != (len(state), 3):
        raise InputError(f"minimize_starts: starts must have shape (M, {len(state)}, 3), got {starts.shape}")
    if not np.allclose(np.einsum("mia,mia->mi", starts, starts), 1.0, atol=1e-10):
        raise InputError("minimize_starts: starts must be unit spin vectors")
    defaults = minimize_defaults()
    check_names("minimize_starts", minimize_kwargs, defaults)
    o = _check_options(state, potential, **{**defaults, **minimize_kwargs})
    prob, use = _compiled_problem(state, potential, o)
    out = []
    # Ctrl-C / SIGTERM stop within a chunk of iterations, with the starts finished
    with deferred(STOPPING_COMPILED + ": the starts finished are kept, the one under way is dropped"):
        if use:
            out = _minimize_compiled(prob, state, starts, o["tmax"], o["max_steps"], o["memory"])[0]
        else:
            for s in starts:
                check(out)
                try:
                    out.append(minimize(state.copy().with_arrays(spins=np.ascontiguousarray(s)), potential,
                                        return_result=True, **minimize_kwargs)[1])
                except BaseException as exc:  # an interrupt inside this start: the finished ones go with it
                    raise_with(exc, out)
        check(out)
    return out


def minimize_defaults() -> dict:
    """The options of :func:`minimize` with their defaults, ``{name: default}`` (from its
    signature; ``state``, ``potential`` and ``return_result`` left out): the one source of them for
    :func:`minimize_starts` and :func:`spinlat.search.ground_state`."""
    import inspect

    return {k: p.default for k, p in inspect.signature(minimize).parameters.items()
            if k not in ("state", "potential", "return_result")}


@refuse_other_names()
def minimize(state, potential, spins=True, positions=False, cell=False, magnitudes=False, tmax=1e-5, fmax=1e-3,
             smax=1e-5, hmax=1e-4, max_steps=2000, method="lbfgs", memory=10, return_result=False, compiled=None):
    """Minimise the energy of ``state`` with ``potential``.

    Parameters
    ----------
    spins, positions, cell, magnitudes : which degrees of freedom relax. ``magnitudes`` relaxes
        moment magnitudes at fixed directions (and with directions if ``spins``); it needs a
        potential whose energy depends on them (``potential.depends_on_magnitudes``).
    tmax : torque tolerance, eV (largest |s_i × ∂E/∂s_i|).
    fmax : force tolerance, eV/Å.  smax : stress tolerance, eV/Å³ (cell relaxation).
    hmax : longitudinal-field tolerance, eV/μB (magnitude relaxation).
    max_steps : iteration limit.
    method : "lbfgs" (default) or "precession" (damped precession / steepest descent on the spheres).
    return_result : also return a :class:`MinimizeResult` (iterations, reason, final residuals).
    compiled : None (default): the whole L-BFGS runs in a compiled kernel, in chunks of
        iterations (:func:`spinlat.integrators.spin_lbfgs.lbfgs_oso_steps`, the same algorithm) when it can — method
        "lbfgs", only spins relaxing and every magnetic term with linear couplings — and in Python
        otherwise; False: always the Python loop; True: the kernel, InputError when it cannot run.

    Ctrl-C (SIGTERM: :class:`~spinlat.interrupts.Terminated`) is held back to the end of the
    iteration under way, or to the next model call of its line search, which is then dropped (a
    big mMACE model: each call can take long; the compiled kernel: to the end of its chunk of
    iterations, a fraction of a second)
    and raised as ``KeyboardInterrupt`` whose ``partial_result`` is the :class:`MinimizeResult`
    of the state reached (``reason`` "interrupted", ``converged`` False: not a minimum).

    Returns the relaxed State, or ``(State, MinimizeResult)`` with ``return_result``. The State
    returned is a minimum of the potential energy, a configuration at rest: its velocities are
    zero, whatever the input carried and whichever degrees of freedom relaxed (as the images of
    :func:`spinlat.gneb`; start dynamics from it with velocities of your choice,
    ``state.copy(velocities=...)``). Without
    ``return_result`` a run that stops before its tolerances (``max_steps`` reached, a stalled line
    search: overlapping atoms, a huge force) gives a :class:`~spinlat.errors.ConvergenceWarning`.
    """
    o = _check_options(state, potential, spins, positions, cell, magnitudes, tmax, fmax, smax, hmax, max_steps,
                       method, memory, compiled)
    tmax, fmax, smax, hmax = o["tmax"], o["fmax"], o["smax"], o["hmax"]
    max_steps, memory = o["max_steps"], o["memory"]
    prob, use = _compiled_problem(state, potential, o)
    # Ctrl-C / SIGTERM stop the Python loop between iterations, with the state reached
    with deferred(STOPPING_COMPILED if use else "at the end of the iteration under way"):
        if use:
            finished, reached = _minimize_compiled(prob, state, state.spins[None], tmax, max_steps, memory)
            result = finished[0] if finished else reached
        else:
            tol = np.array([tmax, fmax, smax, hmax])
            at_rest = state.copy(velocities=np.zeros_like(state.velocities))  # a minimum is at rest (docstring)
            st, e, g, it, converged, reason, history = _descend(prob, at_rest, tol, max_steps, method, memory,
                                                                interruptible=True)
            result = MinimizeResult(st, float(e), it, converged, reason, *_norms(g), n_evaluations=prob.n_eval,
                                    history=history)
        check(result)
    if return_result:
        return result.state, result
    result.warn_if_unconverged(stacklevel=3)  # the caller gets no result to see it in (2: the keyword wrapper)
    return result.state


@refuse_other_names()
def relax_magnitudes(state, potential, neighbors=None, hmax=1e-6, max_steps=200, memory=10, pairs=None):
    """The moment magnitudes |m_i| that minimise the energy at the fixed positions and spin
    directions of ``state`` (the Born-Oppenheimer-like surface E_BO(r, s) = min_|m| E(r, s, |m|)):
    :func:`minimize` with ``spins=False, magnitudes=True`` (L-BFGS on |m|, gradient −s_i·h_i
    eV/μB, the same line search and trust limit), every evaluation also computing the atomic
    forces so that the last one serves the caller (a dynamics step) without another call.

    Parameters
    ----------
    state : State; ``neighbors`` the potential's neighbour list for it (None: the potential's own).
    hmax : tolerance on the largest longitudinal field |s_i·h_i|, eV/μB.
    max_steps, memory : L-BFGS iteration limit and history length.
    pairs : None, or a pair of lists ``(steps, gradient_changes)`` of (N,) arrays (μB, eV/μB)
        holding earlier L-BFGS pairs of this problem, oldest first (e.g. those a relaxation of
        the previous step of a trajectory left: the curvature ∂²E/∂|m|² changes little from one
        step to the next): the descent starts with them as its inverse-Hessian model instead of
        an empty one, and leaves its own in them (updated in place, at most ``memory``).

    Returns ``(State, Evaluation, MinimizeResult)``: the relaxed State, the potential's
    Evaluation there (energy eV, forces eV/Å, magnetic forces eV/μB) and what the descent did
    (``converged``, ``max_longitudinal``, ``n_evaluations``). Raises InputError when the
    potential does not depend on moment magnitudes."""
    if not potential.depends_on_magnitudes:
        raise InputError(f"relax_magnitudes: {potential!r} does not depend on moment magnitudes")
    prob = _Problem(potential, False, False, False, True, state, forces=True, neighbors=neighbors)
    if pairs is not None:
        s_hist, y_hist = pairs
        if len(s_hist) != len(y_hist) or any(np.shape(a) != (len(state),) for a in (*s_hist, *y_hist)):
            s_hist.clear(), y_hist.clear()
        del s_hist[:-memory], y_hist[:-memory]
    tol = np.array([np.inf, np.inf, np.inf, hmax])
    st, e, g, it, converged, reason, history = _descend(prob, state, tol, max_steps, "lbfgs", memory, pairs)
    last, ev = prob.last
    if last is not st:
        ev = prob.pot.compute(st, neighbors, forces=True, magnetic_forces=True)
        prob.n_eval += 1
    result = MinimizeResult(st, float(e), it, converged, reason, *_norms(g), n_evaluations=prob.n_eval,
                            history=history)
    return st, ev, result


def _descend(prob, st, tol, max_steps, method, memory, pairs=None, interruptible=False):
    """The minimiser's loop (L-BFGS or damped precession, backtracking Armijo line search, trust
    limits of :meth:`_Problem.limit`) from the State ``st`` until the residuals (torque, force,
    stress, longitudinal field) are within ``tol`` (4,). ``pairs``: None, or the lists
    ``(s_hist, y_hist)`` of earlier pairs to start from, updated in place. ``interruptible``: stop
    (reason "interrupted") at the start of an iteration when a Ctrl-C / SIGTERM held back by
    :func:`spinlat.interrupts.deferred` waits (never inside a dynamics step's magnitude relaxation).
    Returns (State, energy, gradient blocks, iterations, converged, reason, energy history)."""
    n = len(st)
    e, g = prob.evaluate(st)
    s_hist, y_hist = ([], []) if pairs is None else pairs
    reason, it, converged = "max_steps reached", 0, False
    history = [e]
    sd = 1.0  # steepest-descent scale where there is no curvature pair (spin_lbfgs.SD_GROWTH)
    for it in range(1, max_steps + 1):
        res = np.array(_norms(g))
        if np.all(res <= tol):
            reason, converged, it = "converged", True, it - 1
            break
        if interruptible and pending():
            reason, it = "interrupted", it - 1
            break
        gv = prob.flatten(g)
        if method == "lbfgs":
            d = -_two_loop(gv, s_hist, y_hist) if s_hist else -gv * sd
            if gv @ d >= 0:  # not a descent direction: restart the memory
                s_hist.clear(), y_hist.clear()
                d = -gv * sd
            steepest = not s_hist
        else:  # damped precession: steepest descent on the spheres, Barzilai-Borwein step length
            bb = (s_hist[-1] @ s_hist[-1]) / (s_hist[-1] @ y_hist[-1]) if s_hist else 1.0
            d = -gv * bb
        d = d * prob.limit(d, n)
        alpha, accepted = 1.0, False
        try:  # interruptible: a stop at a model call of the line search ends it, at the state of the last iteration
            with abandonable() if interruptible else contextlib.nullcontext():
                for _ in range(20):
                    trial = prob.apply(st, alpha * d)
                    e_new, g_new = prob.evaluate(trial)
                    if e_new <= e + 1e-4 * alpha * (gv @ d) + 1e-12 * abs(e):
                        accepted = True
                        break
                    alpha *= 0.5
        except BaseException as exc:
            stop = interrupt_cause(exc) if interruptible else None
            if stop is None:
                raise
            rearm(stop)  # raised by the caller's check, with the state reached
            reason, it = "interrupted", it - 1
            break
        if not accepted:
            if s_hist:
                s_hist.clear(), y_hist.clear()
                continue
            reason = "line search failed (energy cannot decrease further at this precision)"
            converged = bool(np.all(np.array(_norms(g)) <= 10 * tol))
            break
        step = alpha * d
        gv_new = prob.flatten(g_new)
        y = gv_new - gv
        if step @ y > 1e-16:
            s_hist.append(step)
            y_hist.append(y)
            if len(s_hist) > memory:
                s_hist.pop(0), y_hist.pop(0)
        elif method == "lbfgs" and steepest:  # a concave stretch: the next steepest step grows
            sd = _sd_scale(sd, alpha)
        st, e, g = trial, e_new, g_new
        history.append(e)
    else:
        it = max_steps
    return st, e, g, it, converged, reason, history


def _install():
    """Make :func:`relax_magnitudes` the integrators' magnitude relaxation (they sit below this
    module and cannot import it)."""
    from .integrators import spin_lattice

    spin_lattice.magnitude_relaxer = relax_magnitudes


_install()
