"""Magnetic ground-state searches and parameter sweeps, in parallel.

:func:`ground_state` runs many random starts (optionally annealed by Monte Carlo), minimises
each, merges minima that are the same configuration up to symmetry and returns the distinct
minima ranked by energy. :func:`sweep` maps a function over parameter values (temperatures,
fields). Both run over local processes by default, or on a Dask cluster when given a scheduler
address (``scheduler="tcp://host:8786"``) — the same code, no changes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from .errors import InputError


@dataclass
class Minimum:
    """One distinct minimum: ``energy`` (eV), ``state``, how many starts reached it (``count``),
    and the ``start`` indices that did."""

    energy: float
    state: object
    count: int = 1
    starts: tuple = ()

    def __iter__(self):  # allows ``for energy, state in minima``
        yield self.energy
        yield self.state


def _map(fn, items, workers=None, scheduler=None):
    """Apply ``fn`` to every item: serially, over local processes, or on a Dask cluster."""
    items = list(items)
    if scheduler is not None:
        from dask.distributed import Client

        client = scheduler if hasattr(scheduler, "map") else Client(scheduler)
        try:
            return client.gather(client.map(fn, items, pure=False))
        finally:
            if client is not scheduler:
                client.close()
    if workers is None:
        workers = min(len(items), os.cpu_count() or 1)
    if workers <= 1 or len(items) <= 1:
        return [fn(x) for x in items]
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as ex:
        return list(ex.map(fn, items))


def sweep(fn, values, workers=None, scheduler=None):
    """``[fn(v) for v in values]`` run in parallel over local processes (``workers``, default all
    cores) or on a Dask cluster (``scheduler`` address or Client). ``fn`` must be picklable
    (a module-level function or a functools.partial of one)."""
    return _map(fn, values, workers, scheduler)


class _Start:
    """One search start: random spins → optional annealing → minimisation (picklable)."""

    def __init__(self, state, potential, anneal, minimize_kwargs, classes=None):
        self.state, self.potential, self.anneal, self.kw = state, potential, anneal, minimize_kwargs
        self.classes = classes

    def __call__(self, seed):
        from .minimization import minimize

        rng = np.random.default_rng(seed)
        if self.classes is None:
            spins = rng.normal(size=(len(self.state), 3))
        else:  # one random spin per site of the start cell, repeated over the supercell
            spins = rng.normal(size=(self.classes.max() + 1, 3))[self.classes]
        st = self.state.copy(spins=spins)
        if self.anneal:
            from .integrators import MonteCarlo

            t0, t1 = self.anneal.get("t_start", 100.0), self.anneal.get("t_end", 1.0)
            stages, sweeps = int(self.anneal.get("stages", 10)), int(self.anneal.get("sweeps", 50))
            for k, t in enumerate(np.geomspace(t0, t1, stages)):
                st = MonteCarlo(float(t), seed=int(rng.integers(2**31))).run(st, self.potential, sweeps)
        st, res = minimize(st, self.potential, return_result=True, **self.kw)
        return res.energy, st, res.converged


def site_classes(state, start_cell, tol=1e-3):
    """Index (N,) of each atom's site in ``start_cell``: atoms that differ by a lattice vector of
    ``start_cell`` (a (3,3) cell in Å, or three integers dividing the state's cell) share an index.
    Raises InputError when ``state`` is not a supercell of ``start_cell``."""
    sc = np.asarray(start_cell, dtype=float)
    if sc.shape == (3,):
        sc = state.cell / sc[:, None]
    if sc.shape != (3, 3) or abs(np.linalg.det(sc)) < 1e-9:
        raise InputError(f"start_cell must be a non-singular (3,3) cell or three integers, got {start_cell!r}")
    m = state.cell @ np.linalg.inv(sc)
    if np.max(np.abs(m - np.round(m))) > 1e-6:
        raise InputError("the state's cell is not a supercell of start_cell")
    frac = state.positions @ np.linalg.inv(sc)
    frac = frac - np.floor(frac + tol)
    classes = -np.ones(len(state), dtype=np.int64)
    reps = []
    for a in range(len(state)):
        for c, r in enumerate(reps):
            d = frac[a] - frac[r]
            d -= np.round(d)
            if np.linalg.norm(d @ sc) < tol and state.numbers[a] == state.numbers[r]:
                classes[a] = c
                break
        else:
            classes[a] = len(reps)
            reps.append(a)
    return classes


def _translations(state, tol=1e-3):
    """Permutations p such that atom p[i] sits at r_i + t for lattice translations t of the cell."""
    if not state.pbc.all():
        return [np.arange(len(state))]
    inv = np.linalg.inv(state.cell)
    frac = state.positions @ inv
    perms = []
    same = np.flatnonzero(state.numbers == state.numbers[0])
    for k in same:
        t = frac[k] - frac[0]
        moved = frac + t
        d = moved[:, None, :] - frac[None, :, :]
        d -= np.round(d)
        dist = np.linalg.norm(d @ state.cell, axis=2)
        p = np.argmin(dist, axis=1)
        if np.all(dist[np.arange(len(state)), p] < tol) and np.all(state.numbers[p] == state.numbers) and \
                len(np.unique(p)) == len(p):
            perms.append(p)
    return perms


def _directions(state):
    """Spins with the rows of non-magnetic atoms zeroed: those spins are arbitrary and never move."""
    return np.where(state.moments[:, None] > 0, state.spins, 0.0)


def same_configuration(a, b, perms, spin_rotations=False, tol=1e-3):
    """True when spin configurations ``a`` and ``b`` ((N,3) unit vectors) are equal up to a lattice
    translation (``perms``), time reversal (s → −s) and, if ``spin_rotations``, a global spin
    rotation. ``tol`` is the largest allowed angle-like deviation per spin (rad)."""
    n = len(a)
    for p in perms:
        bp = b[p]
        if spin_rotations:
            # best orthogonal map (proper rotation or rotation × time reversal), Kabsch
            u, _, vt = np.linalg.svd(bp.T @ a)
            r = u @ vt
            if np.max(np.linalg.norm(a @ r.T - bp, axis=1)) < tol:
                return True
        else:
            for sign in (1.0, -1.0):
                if np.max(np.linalg.norm(sign * a - bp, axis=1)) < tol:
                    return True
    return False if n else True


def ground_state(state, potential, starts=16, seed=0, anneal=None, spin_rotations=None, energy_tol=1e-5,
                 angle_tol=1e-2, workers=None, scheduler=None, start_cell=None, **minimize_kwargs):
    """Search for the magnetic ground state of ``state`` with ``potential``.

    Parameters
    ----------
    starts : number of random starts. seed : base seed (start k uses seed + k).
    anneal : None, or dict(t_start=K, t_end=K, stages, sweeps) for Monte Carlo cooling before
        each minimisation.
    spin_rotations : merge minima related by a global spin rotation; default: the potential's
        ``spin_rotation_invariant`` attribute (False if absent, i.e. assume spin-orbit coupling).
    energy_tol : eV per atom; angle_tol : per-spin deviation (rad) for merging.
    workers / scheduler : local process count (default all cores) / Dask scheduler address.
    start_cell : optional smaller magnetic cell ((3,3) Å or three integers dividing the state's
        cell): random starts then repeat one random spin per site of that cell, so large
        supercells start from commensurate orders (a weak anisotropy cannot sort out the
        domains of a fully random start).
    minimize_kwargs : passed to :func:`spinlat.minimize` (e.g. tmax, positions=True).

    Returns a list of :class:`Minimum` (energy eV, state, count, starts), lowest first; each also
    unpacks as ``energy, state``.
    """
    if starts < 1:
        raise InputError(f"ground_state needs at least one start, got {starts}")
    if spin_rotations is None:
        spin_rotations = bool(getattr(potential, "spin_rotation_invariant", False))
    classes = None if start_cell is None else site_classes(state, start_cell)
    job = _Start(state, potential, anneal, minimize_kwargs, classes)
    results = _map(job, [seed + k for k in range(starts)], workers, scheduler)
    perms = _translations(state)
    n = len(state)
    minima: list[Minimum] = []
    for k, (e, st, _) in sorted(enumerate(results), key=lambda kv: kv[1][0]):
        for m in minima:
            if abs(m.energy - e) <= energy_tol * n and same_configuration(_directions(m.state), _directions(st), perms,
                                                                           spin_rotations, angle_tol):
                m.count += 1
                m.starts = m.starts + (k,)
                break
        else:
            minima.append(Minimum(float(e), st, 1, (k,)))
    return minima
