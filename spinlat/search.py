"""Magnetic ground-state searches and parameter sweeps.

:func:`ground_state` runs many random starts (optionally annealed by Monte Carlo), minimises
each, merges minima that are the same configuration up to symmetry and returns the distinct
minima ranked by energy. :func:`sweep` maps a function over parameter values (temperatures,
fields).

Both run serially unless asked otherwise: ``workers=k`` (k > 1) runs the jobs on k local
processes, ``scheduler="tcp://host:8786"`` (or a ``dask.distributed.Client``) on a Dask cluster —
the same code, no changes. Local processes form a pool kept between calls (their start-up is
paid once; :func:`shutdown_workers` ends them). They are *forked* on Linux while this process runs
no other thread (no Dask client, numba's thread pool not yet launched: start the sweep before
any threaded kernel, or see :func:`_fork_is_safe`) — they then inherit the imports and compiled
kernels and start in milliseconds — and *spawned* otherwise (seconds each: interpreter, imports,
numba cache loads). A spawned process re-imports the script that called it, so in a script the
call must sit under ``if __name__ == "__main__":`` — required on every platform, so that a script
runs the same wherever it is spawned; a call from an unguarded script raises
:class:`~spinlat.errors.WorkerError` saying so before any process starts.

Merging minima (:class:`~spinlat.symmetry.SpinSymmetry`, :class:`Translations`,
:func:`same_configuration`): two spin configurations are the same when an operation of the
potential's symmetry group maps one onto the other: the crystal's space-group operations that
the potential keeps, acting on spins as axial vectors, with time reversal where the energy is
even in the spins — or, for spin-rotation-invariant potentials (no spin-orbit coupling), the
atom permutations of the space group combined with any global spin rotation (spin-space group;
sources and the rule per Hamiltonian in :mod:`spinlat.symmetry`). The pure translations of the
structure onto itself (lattice vectors of its primitive cell, modulo the supercell) are handled
here, for each coset representative of the rotations and mirrors. The translations form a finite abelian group T;
its Smith normal form writes T as Z_d1 × Z_d2 × Z_d3, so the overlap of two configurations for
*every* translation at once is one FFT cross-correlation on that grid (Fourier correlation
theorem), O(N log N) per comparison; the best global rotation for each translation follows from
the singular values of the 3×3 cross-covariance (Kabsch, Acta Cryst. A 32, 922 (1976)). Finding
T costs O(N log N) for crystals (k-d tree over fractional positions, group closure over a few
generators); the atoms that can be images of a reference atom are restricted by a
translation-invariant fingerprint of their surroundings, which keeps defective or disordered
structures cheap too.
"""

from __future__ import annotations

import ast
import atexit
import inspect
import math
import multiprocessing.context as mp_context
import sys
import time
from dataclasses import dataclass

import numpy as np

from .errors import InputError, WorkerError
from .interrupts import check, deferred, interrupt_cause, raise_with, sigterm_raises
from .keywords import check_names, refuse_other_names
from .translations import Translations, periodic_cell  # (spinlat.search.Translations: their first home)


@dataclass
class InterruptedSearch:
    """What :func:`ground_state` had when Ctrl-C or SIGTERM stopped it (the ``partial_result`` of
    the ``KeyboardInterrupt`` / :class:`~spinlat.interrupts.Terminated` it raised): ``minima``, the
    distinct minima of the starts that finished (:class:`Minimum`, lowest first, merged as in a
    whole search but not re-minimised at the tighter tolerance of near-degenerate ones),
    ``finished`` (the indices of those starts, ascending) and ``starts`` (how many were asked
    for). ``interrupted`` is always True."""

    minima: list
    finished: tuple
    starts: int
    interrupted: bool = True


@dataclass
class Minimum:
    """One distinct minimum: ``energy`` (eV), ``state``, how many starts reached it (``count``:
    the starts that fell into it or into any symmetry-equivalent copy of it), the ``starts``
    indices that did (ascending), whether the minimisation that gave ``state`` converged
    (``converged``; False: it stopped at ``max_steps`` or a failed line search with torques above
    the tolerance, so ``state`` is not a minimum), and ``degeneracy``: how many distinct
    configurations are symmetry-equivalent to ``state`` (its orbit under the potential's symmetry
    group used for merging, :class:`~spinlat.symmetry.SpinSymmetry`: translations, time reversal,
    the crystal's rotations and mirrors that the potential keeps; without spin-orbit coupling
    counted modulo global spin rotations). All those copies have the same energy."""

    energy: float
    state: object
    count: int = 1
    starts: tuple = ()
    converged: bool = True
    degeneracy: int = 1

    def __iter__(self):  # allows ``for energy, state in minima``
        yield self.energy
        yield self.state


# ------------------------------------------------------------------------ running jobs
def _check_workers(workers, scheduler):
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, (int, np.integer))
                                or workers < 1):
        raise InputError(f"workers must be a positive number of processes (or None: serial), got {workers!r}")
    if scheduler is not None:
        if not (isinstance(scheduler, str) or hasattr(scheduler, "map")):
            raise InputError(f"scheduler must be a Dask scheduler address ('tcp://host:8786') or a "
                             f"dask.distributed.Client, got {scheduler!r}")
        if workers is not None and workers > 1:
            raise InputError(f"give either workers={workers} (local processes) or scheduler= (Dask), not both")


def _is_main_test(node) -> bool:
    """True for the test ``__name__ == "__main__"`` (either order)."""
    if not (isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.ops[0], ast.Eq)):
        return False
    sides = [node.left, node.comparators[0]]
    names = [s for s in sides if isinstance(s, ast.Name) and s.id == "__name__"]
    consts = [s for s in sides if isinstance(s, ast.Constant) and s.value == "__main__"]
    return len(names) == 1 and len(consts) == 1


def _unguarded_main_line():
    """Line of the top-level statement of the ``__main__`` script that led to this call when that
    statement is not inside ``if __name__ == "__main__":`` — spawned worker processes re-run such
    statements while importing the script. None when the call is guarded, comes from elsewhere
    (an interactive session, ``python -c``, a test runner) or the script cannot be read."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if not path:
        return None
    frame = inspect.currentframe()
    line = None
    while frame is not None:
        if frame.f_globals is vars(main) and frame.f_code.co_name == "<module>":
            line = frame.f_lineno
            break
        frame = frame.f_back
    del frame
    if line is None:
        return None
    try:
        with open(path, encoding="utf-8") as fh:
            tree = ast.parse(fh.read())
    except (OSError, SyntaxError, ValueError):
        return None
    for node in tree.body:
        if isinstance(node, ast.If) and _is_main_test(node.test) and node.lineno <= line <= node.end_lineno:
            return None
    return line


#: what :func:`sweep` over processes does on Ctrl-C / SIGTERM (the line printed, :func:`~spinlat.interrupts.deferred`)
_STOP_NOW = "now: the jobs finished are kept, those under way are abandoned"


def _map(fn, items, workers=None, scheduler=None, stopping=_STOP_NOW, graceful=False, on_result=None):
    """Apply ``fn`` to every item, in order: serially (default), over ``workers`` local processes,
    or on a Dask cluster (``scheduler``: address or Client). An interrupt is raised as
    :func:`_gather` says; ``stopping`` is what the line printed on it says (with ``graceful``:
    local processes are asked to stop at their next safe point, see :func:`_gather`).
    ``on_result(k, result)``, when given, is called in this process as each item k finishes (in
    the order they finish), e.g. to save it."""
    _check_workers(workers, scheduler)
    items = list(items)
    if scheduler is not None:
        from dask.distributed import Client

        client = scheduler if hasattr(scheduler, "map") else Client(scheduler)
        try:
            with deferred(stopping, waits=False):  # (from before the jobs are sent: see below)
                return _gather(client.map(fn, items, pure=False), _dask_wait, lambda rest: client.cancel(rest),
                               stopping=stopping, on_result=on_result)
        finally:
            if client is not scheduler:
                client.close()
    workers = 1 if workers is None else int(workers)
    if workers <= 1 or len(items) <= 1:
        out = []
        for k, x in enumerate(items):
            out.append(fn(x))
            if on_result is not None:
                on_result(k, out[-1])
        return out
    line = _unguarded_main_line()
    if line is not None:
        script = getattr(sys.modules["__main__"], "__file__", "the script")
        raise WorkerError(
            f"workers={workers} needs worker processes, and they re-import {script}, whose line {line} "
            f"(which started this call) is not under `if __name__ == \"__main__\":`. Put the script's "
            f"top-level work under that guard, or use workers=None (serial).")
    import pickle

    try:  # a lambda or a local function fails in the pool with a bare PicklingError
        pickle.dumps(fn)
    except (pickle.PicklingError, AttributeError, TypeError) as exc:
        raise InputError(f"workers={workers}: the function {getattr(fn, '__qualname__', fn)!r} cannot be sent to "
                         f"worker processes ({exc}); use a module-level function or a functools.partial of one, "
                         f"or workers=None (serial)") from None
    from concurrent.futures.process import BrokenProcessPool

    from concurrent.futures import FIRST_COMPLETED, wait

    # Ctrl-C / SIGTERM held back from before the pool starts and the jobs are sent (seconds when spawned), not
    # only once _gather waits: a signal then was raised in the middle of the sending (Ctrl-C: the jobs sent went
    # on running in the pool kept for the next call; SIGTERM: its default ended the process) instead of
    # stopping the jobs and raising with what was finished
    with deferred(stopping, waits=graceful):
        ex = _pool(workers)
        try:
            return _gather([ex.submit(fn, x) for x in items],
                           lambda fs: wait(fs, timeout=_POLL_S, return_when=FIRST_COMPLETED)[0], _end_pool,
                           soften=_ask_pool_to_stop if graceful else None, stopping=stopping, on_result=on_result)
        except KeyboardInterrupt:
            if _POOL is not None and _POOL[5]:  # its workers were asked to stop for good: what they finished is here
                _kill_pool()  # (those still starting up, spawned, would be waited for: seconds)
            raise
        except BrokenProcessPool as exc:
            shutdown_workers()
            raise WorkerError(
                f"a worker process stopped before finishing ({exc}). If this runs from a script, its top-level "
                f"work must be under `if __name__ == \"__main__\":`; otherwise a worker crashed (out of memory?): "
                f"rerun with workers=None to see the error in this process.") from None


#: seconds between two looks for a pending Ctrl-C / SIGTERM while jobs run elsewhere
_POLL_S = 0.2
#: seconds a second signal waits for the jobs asked to stop at once (they return what they finished)
_HURRY_S = 2.0


def _gather(futures, wait_some, stop, soften=None, stopping=_STOP_NOW, on_result=None):
    """Results of ``futures`` (in their order), collected as they finish, with Ctrl-C and SIGTERM
    held back (:func:`~spinlat.interrupts.deferred`; ``stopping`` is what its line on stderr
    says) and looked for every :data:`_POLL_S` s. ``wait_some(pending)`` returns the futures of
    ``pending`` finished (after a short wait); ``stop(unfinished)`` cancels the futures not
    finished and ends what runs them.

    An interrupt calls ``stop`` and is raised with ``partial_result`` = {index: result} of the
    futures finished (any order of indices); a job that failed calls ``stop`` and raises its
    exception. With ``soften``, the first interrupt calls ``soften(unfinished)`` instead, which
    cancels the futures not started, asks the jobs under way to stop at their next safe point
    (:func:`~spinlat.interrupts.request_stop` in their process) and returns the futures still
    running; they are awaited, and a job stopped that way (its ``KeyboardInterrupt``) gives its
    own ``partial_result`` (for :class:`_Start`: the list of its starts finished) as its entry of
    the dict. A second interrupt while they are awaited calls ``soften(unfinished, now=True)``
    (the jobs are asked to stop at once, returning what they finished), collects what they send
    within :data:`_HURRY_S` s, then calls ``stop`` and is raised with what was collected (a third
    signal ends that wait). ``on_result(k, result)`` is called for each job k as its whole result
    comes in (see :func:`_map`)."""
    results, pending = {}, set(range(len(futures)))

    def collect(stopping_jobs=False):
        done = wait_some([futures[k] for k in pending])
        for k in [k for k in pending if futures[k] in done]:
            pending.discard(k)
            if not stopping_jobs:
                results[k] = futures[k].result()
                if on_result is not None:
                    on_result(k, results[k])
                continue
            exc = futures[k].exception()  # jobs asked to stop: whatever each kept
            if exc is None:
                results[k] = futures[k].result()
                if on_result is not None:
                    on_result(k, results[k])
            elif isinstance(exc, KeyboardInterrupt) and getattr(exc, "partial_result", None):
                results[k] = exc.partial_result
            # any other failure while stopping: the job is dropped, the interrupt goes on

    with deferred(stopping, waits=soften is not None):
        try:
            while pending:
                collect()
                check(results)
            return [results[k] for k in range(len(futures))]
        except BaseException as exc:
            if soften is None or not isinstance(exc, KeyboardInterrupt) or not pending:
                stop([futures[k] for k in sorted(pending)])
                if isinstance(exc, KeyboardInterrupt):
                    exc.partial_result = results
                raise
            interrupt = exc
        try:  # the jobs under way were asked to stop at their next safe point: await what they kept
            running = set(soften([futures[k] for k in sorted(pending)]))
            pending.intersection_update(k for k in range(len(futures)) if futures[k] in running)
            with deferred(f"now: the worker processes still running are asked to stop at once and ended within "
                          f"{_HURRY_S:g} s (the starts they finished are kept)", waits=False):
                while pending:
                    collect(stopping_jobs=True)
                    soften([])  # worker processes started since are asked too
                    check(results)
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt) and pending:  # a second signal: what the jobs finished, quickly
                try:
                    soften([futures[k] for k in sorted(pending)], now=True)
                    with deferred("now", waits=False):
                        end = time.monotonic() + _HURRY_S
                        while pending and time.monotonic() < end:
                            collect(stopping_jobs=True)
                            check(results)
                except KeyboardInterrupt:  # a third signal: no more waiting
                    pass
            stop([futures[k] for k in sorted(pending)])
            if isinstance(exc, KeyboardInterrupt):
                exc.partial_result = results
            raise
        interrupt.partial_result = results
        raise interrupt


def _dask_wait(fs):
    """The Dask futures of ``fs`` finished (polled for up to :data:`_POLL_S` s)."""
    import time

    end = time.monotonic() + _POLL_S
    while True:
        done = {f for f in fs if f.done()}
        if done or time.monotonic() > end:
            return done
        time.sleep(0.01)


def _worker_pids() -> list:
    """Process ids of the local pool's workers started so far (each sends its own from
    :func:`_worker_start`; Python < 3.14 has no public way to reach them)."""
    if _POOL is None:
        return []
    queue, known = _POOL[3], _POOL[4]
    while not queue.empty():
        known.append(queue.get())
    return list(known)


def _end_pool(unfinished):
    """Cancel ``unfinished`` futures of the local pool; when some of them run, end the pool at
    once (its processes killed and reaped: a job cannot be stopped otherwise, and the worker
    processes would keep running it after this process exits)."""
    running = [f for f in unfinished if not f.cancel()]
    if running and _POOL is not None:
        _kill_pool()


def _kill_pool():
    """End the local pool at once: SIGKILL to every one of its processes, those that reported
    their id and those still starting up (a spawned process takes seconds to import spinlat, and
    :func:`shutdown_workers` would wait for it), then reap them. Only when what they ran is
    collected or given up."""
    import signal

    if _POOL is None:
        return
    started = {p.pid for p in list(_STARTED) if p.pid is not None}  # (Python < 3.14: no public way to the pool's)
    _signal_workers(set(_worker_pids()) | started, signal.SIGKILL)
    shutdown_workers()  # reaps them


def _ask_pool_to_stop(unfinished, now=False):
    """Cancel ``unfinished`` futures of the local pool not started and ask every worker process
    to stop its job at the next safe point (SIGUSR1: :func:`~spinlat.interrupts.request_stop`
    there, for good, so the pool is ended by the next :func:`_pool`); returns the futures still
    running, none when no worker process has started yet (spawned processes take seconds to
    import: none can have begun a job, so nothing is awaited and the caller ends the pool at
    once, :func:`_kill_pool`). Called again with no futures, it asks the worker processes
    started since. ``now``:
    ask every worker process to stop at once instead (SIGUSR2:
    :func:`~spinlat.interrupts.stop_now`; a job returns the starts it finished)."""
    import signal

    running = [f for f in unfinished if not f.cancel()]
    if now and _POOL is not None:
        _signal_workers(_worker_pids(), signal.SIGUSR2)
        return running
    if _POOL is None or (not running and not _POOL[5]):
        return running
    asked = _POOL[5]
    first = _ASKED not in asked
    asked.add(_ASKED)  # the pool is asked to stop even when no worker has started yet (spawned: seconds)
    if first and running and not _worker_pids():
        # no worker process has started (spawned: seconds of imports), so none has begun a job: nothing to await
        # (the caller then ends the pool, its processes killed while they start up)
        return []
    new = [pid for pid in _worker_pids() if pid not in asked]
    asked.update(new)
    _signal_workers(new, signal.SIGUSR1)
    return running


#: in the set of the process ids asked to stop (``_POOL[5]``): the pool itself was asked (no process has this id)
_ASKED = -1


def _signal_workers(pids, signum) -> None:
    """Send ``signum`` to each process of ``pids`` (those gone already are skipped)."""
    import os

    for pid in pids:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass


#: the local worker pool kept between calls: (workers, start method, executor, queue of its workers' process
#: ids, the ids read from it, the ids asked to stop) or None
_POOL = None
# ended while the interpreter is still whole (a pool left to module teardown prints
# "Exception ignored in ... weakref_cb" at exit)
atexit.register(lambda: shutdown_workers())


def _fork_is_safe() -> bool:
    """True where worker processes may be forked from this one: Linux, no Python thread besides
    this one, and numba's thread pool not launched (or its layer is ``workqueue`` / ``tbb``,
    which numba declares fork-safe; GNU OpenMP is not). A fork copies the calling thread alone,
    so a lock held by another thread (a Dask client, the manager thread of an earlier process
    pool, an OpenMP pool) would stay locked in the child; then processes are spawned. OpenBLAS's
    idle pools re-form themselves in the child; torch's OpenMP pool is not re-formed, so forked
    workers run torch on one thread (:func:`_worker_start`)."""
    import multiprocessing as mp
    import threading

    if not sys.platform.startswith("linux") or "fork" not in mp.get_all_start_methods():
        return False
    if threading.active_count() > 1:
        return False
    import numba

    try:
        layer = numba.threading_layer()
    except ValueError:  # numba's thread pool not launched yet
        return True
    return layer in ("workqueue", "tbb")


def _stop_now(signum, frame):
    """SIGUSR2 handler of a worker process: its calling process got a second signal and asks it to
    stop at once, returning the starts it finished (:func:`~spinlat.interrupts.stop_now`)."""
    from .interrupts import stop_now

    stop_now()


def _stop_requested(signum, frame):
    """SIGUSR1 handler of a worker process: its calling process asks it to stop at the next safe
    point (:func:`_ask_pool_to_stop`)."""
    from .interrupts import request_stop

    request_stop()


def _worker_start(threads, forked, pids=None):
    """Initialiser of a worker process: ``threads`` numba threads (workers × threads ≤ the CPUs;
    results do not depend on the thread count); forked, torch on one thread (a GNU OpenMP pool
    the parent started does not survive a fork, and one thread never uses it); Ctrl-C and SIGTERM
    ignored, SIGUSR1 a request to stop at the next safe point, SIGUSR2 one to stop at once (with
    the starts finished); its process id put on ``pids`` (a
    multiprocessing queue) when given."""
    import signal

    import numba

    # Ctrl-C reaches every process of the terminal's foreground group, and a batch scheduler's
    # SIGTERM often every process of the job: the calling process alone decides (it keeps the
    # jobs finished and ends the workers or asks them to stop, :func:`_gather`)
    ignored = [getattr(signal, name) for name in _WORKER_IGNORES]
    for signum in ignored:
        signal.signal(signum, signal.SIG_IGN)  # (discards one that came while the process started: blocked till now)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, ignored)  # (what this process starts gets them unblocked)
    signal.signal(signal.SIGUSR1, _stop_requested)
    signal.signal(signal.SIGUSR2, _stop_now)
    if pids is not None:  # for the calling process to end this one (_end_pool)
        import os

        pids.put(os.getpid())
    numba.set_num_threads(max(1, min(int(threads), numba.config.NUMBA_NUM_THREADS)))
    if forked and "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)


def _pool(workers):
    """The local pool of ``workers`` processes, started on first use and reused by later calls
    (start-up: interpreter, imports and numba cache loads, is paid once per session). Processes are
    forked where :func:`_fork_is_safe` (they inherit the imports and the kernels compiled so far:
    start-up in milliseconds), spawned otherwise. A call with another worker count replaces the
    pool; :func:`shutdown_workers` ends it (it also ends when the interpreter exits)."""
    global _POOL
    import os
    from concurrent.futures import ProcessPoolExecutor

    if _POOL is not None and _POOL[0] == workers and not _POOL[5]:
        # (a broken pool was ended by _map's handler; one asked to stop is not reused)
        return _POOL[2]
    shutdown_workers()
    method = "fork" if _fork_is_safe() else "spawn"
    threads = max(1, (os.cpu_count() or 1) // workers)
    ctx = _RecordingSpawn() if method == "spawn" else _RecordingFork()
    pids = ctx.SimpleQueue()
    ex = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_worker_start,
                             initargs=(threads, method == "fork", pids))
    _POOL = (workers, method, ex, pids, [], set())
    return ex


#: the signals a worker process ignores (:func:`_worker_start`); blocked from its birth until then
_WORKER_IGNORES = ("SIGINT", "SIGTERM")


def _start_blocking_signals(start):
    """Call ``start`` (a pool's worker process's own start) with Ctrl-C and SIGTERM blocked in
    the calling thread, so that the child inherits them blocked (a signal mask survives fork and
    exec): a terminal's
    Ctrl-C or a batch scheduler's SIGTERM reaching every process of the job while a worker still
    imports (seconds when spawned) stays pending instead of killing it (the pool then broke and
    the caller got a WorkerError instead of the interrupt); its initialiser ignores both, which
    discards a pending one, and unblocks them. The calling thread's mask is put back at once (a
    signal that came meanwhile is delivered then, or to another thread: none is lost). Python's
    own resource tracker is started the same way."""
    import signal

    blocked = {getattr(signal, name) for name in _WORKER_IGNORES}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
    try:
        start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class _SpawnProcess(mp_context.SpawnProcess):
    """A spawned worker process that puts itself on :data:`_STARTED` when started."""

    def start(self):
        _start_blocking_signals(super().start)
        _STARTED.append(self)


class _ForkProcess(mp_context.ForkProcess):
    """A forked worker process that puts itself on :data:`_STARTED` when started."""

    def start(self):
        _start_blocking_signals(super().start)
        _STARTED.append(self)


class _RecordingSpawn(mp_context.SpawnContext):
    """The spawn context, its processes recorded (the pool's processes, also those still starting)."""

    Process = _SpawnProcess


class _RecordingFork(mp_context.ForkContext):
    """The fork context, its processes recorded."""

    Process = _ForkProcess


#: the processes of the local pool started so far (:func:`_kill_pool` ends them, reported or still starting)
_STARTED: list = []


def shutdown_workers():
    """End the local worker processes kept by :func:`sweep` and :func:`ground_state` between calls
    (they hold their memory until then or until the interpreter exits). Harmless when none run."""
    global _POOL
    pool, _POOL = _POOL, None
    if pool is not None:
        pool[2].shutdown(wait=True, cancel_futures=True)
    _STARTED.clear()


@refuse_other_names()
def sweep(fn, values, workers=None, scheduler=None):
    """``[fn(v) for v in values]``, in order.

    Serial by default. ``workers`` (int > 1): that many local processes (``fn`` must be picklable —
    a module-level function or a functools.partial of one — and a calling script must do its work
    under ``if __name__ == "__main__":``), kept for later calls with the same count and forked
    where safe (module docstring); each worker takes the next value when it is free. ``scheduler``:
    a Dask scheduler address or Client. Raises InputError for a bad ``workers``/``scheduler`` or an ``fn``
    that cannot be pickled for worker processes (a lambda, a local function), WorkerError when processes
    cannot start or die.

    Serial, a Ctrl-C or SIGTERM (``KeyboardInterrupt``; SIGTERM, when its handler is the default,
    :class:`~spinlat.interrupts.Terminated`, instead of ending the process) stops it at once and carries the results of
    the values finished, ``[fn(v) for v in values[:k]]``, as its ``partial_result`` (replacing one
    that ``fn`` itself attached; an interrupt that reached ``fn`` inside C code, as the
    ``SystemError`` chained to it, is raised as itself). With ``workers`` or ``scheduler`` it stops the sweep at once
    (jobs not started are cancelled, local worker processes running one are ended: they ignore
    Ctrl-C and SIGTERM themselves; what ``fn`` had done in them is lost) and its
    ``partial_result`` is ``{k: fn(values[k])}`` for the values finished, in any order (not a
    prefix: the jobs finish out of order)."""
    _check_workers(workers, scheduler)
    if scheduler is None and (workers is None or workers <= 1):
        done = []
        try:
            with sigterm_raises():  # a scheduler's SIGTERM stops it as Ctrl-C does (it killed it with its values)
                for v in values:
                    done.append(fn(v))
        except BaseException as exc:  # an interrupt, also one that C code called back by fn wrapped in a SystemError
            raise_with(exc, done)
        return done
    return _map(fn, values, workers, scheduler, stopping="now: the values finished are kept, those under way are "
                                                        "abandoned")


#: the longest (seconds, about) a Ctrl-C / SIGTERM waits inside a start's Monte Carlo annealing:
#: the sweeps of a stage run in pieces this long, with a stop looked for between them (the start
#: is dropped). A module parameter: results do not depend on it (MonteCarlo.run(n) = pieces of n)
ANNEAL_LATENCY_S = 0.5
#: what an annealed search does on a first Ctrl-C / SIGTERM (the line printed)
ANNEALED_STOPPING = "within the start under way, which is dropped (the starts finished are kept)"


def _anneal_stage(mc, state, potential, sweeps):
    """``state`` after ``sweeps`` sweeps of the MonteCarlo ``mc``, run in pieces of about
    :data:`ANNEAL_LATENCY_S` seconds (the first of one sweep, then sized on the rate measured),
    raising a held-back signal between them (:func:`spinlat.interrupts.check`). The same bits as
    one ``mc.run(state, potential, sweeps)``: its random stream and adapted cone continue across
    calls (:mod:`spinlat.integrators.base`)."""
    done, rate = 0, None
    while done < sweeps:
        piece = 1 if rate is None else max(1, min(sweeps - done, int(rate * ANNEAL_LATENCY_S)))
        t0 = time.perf_counter()
        state = mc.run(state, potential, piece)
        elapsed = time.perf_counter() - t0
        rate = piece / max(elapsed, 1e-9)
        done += piece
        check()
    return state


class _Start:
    """A batch of search starts: random spins → optional annealing → minimisation (picklable).
    Called with a sequence of seeds (start k uses ``default_rng(seed_k)``); the minimisations of
    the batch go to :func:`~spinlat.minimization.minimize_starts` together (the compiled kernel
    when the potential allows it), and each start's result is what it would be alone."""

    def __init__(self, state, potential, anneal, minimize_kwargs, classes=None):
        self.state, self.potential, self.anneal, self.kw = state, potential, anneal, minimize_kwargs
        self.classes = classes

    def start(self, seed):
        """The start of ``seed``: random spins (one per start-cell site when ``classes``), annealed."""
        rng = np.random.default_rng(seed)
        if self.classes is None:
            spins = rng.normal(size=(len(self.state), 3))
        else:  # one random spin per site of the start cell, repeated over the supercell
            spins = rng.normal(size=(self.classes.max() + 1, 3))[self.classes]
        st = self.state.copy(spins=spins)
        if self.anneal:
            from .integrators import MonteCarlo

            a = self.anneal  # with its defaults (_check_anneal)
            t0, t1, stages, sweeps = a["t_start"], a["t_end"], int(a["stages"]), int(a["sweeps"])
            for k, t in enumerate(np.geomspace(t0, t1, stages)):
                st = _anneal_stage(MonteCarlo(float(t), seed=int(rng.integers(2**31))), st, self.potential, sweeps)
        return st

    def __call__(self, seeds):
        """``[(energy, State, converged)]`` of the starts of ``seeds``, in order. Ctrl-C / SIGTERM
        (held back by :func:`spinlat.interrupts.deferred`) stop it between starts: the
        ``KeyboardInterrupt`` raised carries the list of the starts finished (the first k) as
        ``partial_result`` (also when a second signal raised it at once, or C code wrapped it in
        a ``SystemError``). Annealed starts are annealed and minimised one by one (an annealing
        is long), others generated together and minimised in one batch."""
        from .minimization import MinimizeResult, minimize_starts

        done = []
        chunks = [seeds[k:k + 1] for k in range(len(seeds))] if self.anneal else [seeds]
        with deferred(ANNEALED_STOPPING if self.anneal else "at the end of the start under way"):
            try:
                for chunk in chunks:
                    check(done)
                    starts = np.stack([self.start(seed).spins for seed in chunk])
                    results = minimize_starts(self.state, self.potential, starts, **self.kw)
                    done += [(r.energy, r.state, r.converged) for r in results]
                check(done)
            except BaseException as exc:  # an interrupt anywhere (a second signal too): the starts finished go with it
                part = getattr(interrupt_cause(exc), "partial_result", None)  # minimize_starts': those of its batch
                raise_with(exc, done if part is done else done + [(r.energy, r.state, r.converged) for r in part or ()
                                                                  if isinstance(r, MinimizeResult)])
        return done


def _batches(items, workers):
    """``items`` cut into consecutive batches: one when serial, else about four per local worker
    so that uneven starts still balance."""
    parts = 1 if workers is None or workers <= 1 else 4 * int(workers)
    size = max(1, math.ceil(len(items) / parts))
    return [tuple(items[k:k + size]) for k in range(0, len(items), size)]


def site_classes(state, start_cell, tol=1e-3):
    """Index (N,) of each atom's site in ``start_cell``: atoms that differ by a lattice vector of
    ``start_cell`` (a (3,3) cell in Å, or three integers dividing the state's cell) share an index.
    Raises InputError when ``state`` is not a supercell of ``start_cell``."""
    cell = np.array(state.cell, dtype=float)
    blank = ~np.asarray(state.pbc, bool) & (np.linalg.norm(cell, axis=1) == 0)
    if blank.any():  # a film or wire stored with zero vectors along its open directions
        cell[blank] = periodic_cell(state)[blank]
    sc = np.asarray(start_cell, dtype=float)
    if sc.shape == (3,):
        sc = cell / sc[:, None]
    if sc.shape != (3, 3) or abs(np.linalg.det(sc)) < 1e-9:
        raise InputError(f"start_cell must be a non-singular (3,3) cell or three integers, got {start_cell!r}")
    m = cell @ np.linalg.inv(sc)
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


# ----------------------------------------------------------------- symmetry of minima
# (the pure translations: spinlat.translations; the crystal operations: spinlat.symmetry)


def _directions(state):
    """Spins with the rows of non-magnetic atoms zeroed: those spins are arbitrary and never move."""
    return np.where(state.moments[:, None] > 0, state.spins, 0.0)


@refuse_other_names()
def same_configuration(a, b, translations, spin_rotations=False, tol=1e-3):
    """True when spin configurations ``a`` and ``b`` ((N,3) unit vectors) are equal up to a
    translation of ``translations`` (a :class:`Translations` of the structure), time reversal
    (s → −s) and, if ``spin_rotations``, a global spin rotation. ``tol`` is the largest allowed
    angle-like deviation per spin (rad). The crystal's rotations and mirrors, and the operations a
    given potential keeps, are in :meth:`spinlat.symmetry.SpinSymmetry.same` (what
    :func:`ground_state` merges with)."""
    if not isinstance(translations, Translations):
        raise InputError(f"translations must be a spinlat.translations.Translations, got {type(translations).__name__}")
    return translations.same(a, b, spin_rotations, tol)


def _check_count(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InputError(f"{name} must be an integer ≥ {minimum}, got {value!r}")


def _check_positive(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not np.isfinite(value) or value <= 0:
        raise InputError(f"{name} must be a positive number, got {value!r}")


#: the annealing of :func:`ground_state` for the keys its ``anneal`` dict leaves out
ANNEAL_DEFAULTS = {"t_start": 100.0, "t_end": 1.0, "stages": 10, "sweeps": 50}


def _check_anneal(anneal):
    """``anneal`` of :func:`ground_state` checked and completed: None (for None or False), or a
    dict of ``t_start``, ``t_end`` (K, positive), ``stages`` and ``sweeps`` (integers ≥ 1), the
    keys left out at :data:`ANNEAL_DEFAULTS` (an empty dict anneals with them all; it annealed
    not at all). A misspelt key was silently left at its default (``T_start``: 100 K): raises
    InputError naming the key."""
    if anneal is None or anneal is False:
        return None
    if not isinstance(anneal, dict):
        raise InputError(f"ground_state: anneal must be None or a dict(t_start=K, t_end=K, stages=n, sweeps=n), got "
                         f"{anneal!r}")
    check_names("ground_state: anneal", anneal, ("t_start", "t_end", "stages", "sweeps"))
    for key in ("t_start", "t_end"):
        if key in anneal:
            _check_positive(f"ground_state: anneal[{key!r}] (K)", anneal[key])
    for key in ("stages", "sweeps"):
        if key in anneal:
            _check_count(f"ground_state: anneal[{key!r}]", anneal[key], 1)
    return {**ANNEAL_DEFAULTS, **anneal}


#: near-degenerate minima are re-minimised with the torque tolerance divided by this before they are
#: told apart (:func:`ground_state`). Along a flat direction the torque is ~ stiffness × angle, so
#: the angle left is tmax / (POLISH_FACTOR × stiffness): 16 spins, J = 10 meV, B = 0.05 T (stiffness
#: m μB B = 5.8e-6 eV/rad) at the default tmax 1e-5 eV: 0.017 rad with 100, above the default
#: ``angle_tol`` (1e-2 rad), so one minimum could still be listed twice (a start stopped 0.011 rad
#: from the field); 1.7e-3 rad with 1000
POLISH_FACTOR = 1000.0


class _Merger:
    """Merges minima (lowest energy first) that are the same configuration: energies within
    ``energy_tol`` per atom and spins within ``angle_tol`` under an element of the potential's
    symmetry group on the structure (:class:`~spinlat.symmetry.SpinSymmetry`: translations,
    crystal rotations and mirrors unless ``point_operations`` is False, time reversal, and global
    spin rotations if ``spin_rotations``). Counts and start indices add up; a converged
    representative replaces one that is not; each minimum gets its ``degeneracy``. The group (the
    atom map of each operation) is found once, on first use."""

    def __init__(self, state, potential, spin_rotations, energy_tol, angle_tol, point_operations=True):
        self.state, self.potential, self.spin_rotations, self.angle_tol = state, potential, spin_rotations, angle_tol
        self.point_operations = point_operations
        self.e_tol = energy_tol * len(state)
        self._group = None

    @property
    def group(self):
        if self._group is None:
            from .symmetry import SpinSymmetry

            self._group = SpinSymmetry(self.state, self.potential, self.spin_rotations,
                                       point_operations=self.point_operations)
        return self._group

    def __call__(self, candidates):
        minima: list[Minimum] = []
        spectra: list = []  # per minimum: (directions, spectrum or None until needed)
        # lowest energy first; among equal energies the lowest start first, so that the result does not depend
        # on the order the starts came in
        for c in sorted(candidates, key=lambda m: (m.energy, m.starts)):
            d, seen = _directions(c.state), {}
            for idx, m in enumerate(minima):
                if abs(m.energy - c.energy) > self.e_tol:
                    continue
                dm, fm = spectra[idx]
                if fm is None:
                    fm = self.group.translations.spectrum(dm)
                    spectra[idx] = (dm, fm)
                if self.group.same(dm, d, self.angle_tol, spectrum_a=fm, images=seen):
                    m.count += c.count
                    m.starts = tuple(sorted(m.starts + c.starts))
                    if c.converged and not m.converged:  # a converged start of the same minimum represents it
                        m.energy, m.state, m.converged = c.energy, c.state, True
                        spectra[idx] = (d, seen.get(0, (None, None))[1])
                    break
            else:
                minima.append(Minimum(c.energy, c.state, c.count, c.starts, c.converged))
                spectra.append((d, seen.get(0, (None, None))[1]))
        for m, (dm, fm) in zip(minima, spectra):
            m.degeneracy = self.group.degeneracy(dm, self.angle_tol, spectrum_a=fm)
        return minima


def _near_degenerate(minima, e_tol) -> list:
    """Indices of the minima whose energy lies within ``e_tol`` (eV) of another minimum's."""
    e = np.array([m.energy for m in minima])
    return [i for i in range(len(e)) if np.sum(np.abs(e - e[i]) <= e_tol) > 1]


def _minimize_options() -> list:
    """The keywords :func:`ground_state` passes on to :func:`spinlat.minimize`."""
    from .minimization import minimize_defaults

    return list(minimize_defaults())


@refuse_other_names(extra=_minimize_options)
def ground_state(state, potential, starts=16, seed=0, anneal=None, spin_rotations=None, energy_tol=1e-5,
                 angle_tol=1e-2, workers=None, scheduler=None, start_cell=None, symmetry=True, finished=None,
                 record=None, **minimize_kwargs):
    """Search for the magnetic ground state of ``state`` with ``potential``.

    Parameters
    ----------
    starts : number of random starts. seed : base seed (start k uses seed + k).
    anneal : None, or dict(t_start=K, t_end=K, stages, sweeps) for Monte Carlo cooling before
        each minimisation; keys left out take :data:`ANNEAL_DEFAULTS` (``{}``: all of them).
    spin_rotations : merge minima related by a global spin rotation; default: the potential's
        ``spin_rotation_invariant`` attribute (False if absent, i.e. assume spin-orbit coupling).
    energy_tol : eV per atom; angle_tol : per-spin deviation (rad) for merging. Minima also merge
        under the structure's translations (:class:`Translations`, tolerance 1e-3 Å), time
        reversal where the potential is even in the spins and, with ``symmetry``, the crystal's
        rotations and mirrors that leave the potential's energy unchanged (spglib,
        :class:`~spinlat.symmetry.SpinSymmetry`): each :class:`Minimum` is one class of
        symmetry-equivalent minima, its ``degeneracy`` the number of copies. Minima within
        ``energy_tol`` of one another are first re-minimised with the torque tolerance divided by
        :data:`POLISH_FACTOR` (1000): along a flat direction (a weak field or anisotropy)
        ``tmax`` is met far from the minimum, and one minimum was listed several times.
    workers : None (default, serial) or the number of local processes; scheduler : a Dask
        scheduler address or Client (see :func:`sweep`).
    start_cell : optional smaller magnetic cell ((3,3) Å or three integers dividing the state's
        cell): random starts then repeat one random spin per site of that cell, so large
        supercells start from commensurate orders (a weak anisotropy cannot sort out the
        domains of a fully random start).
    symmetry : True (default): merge under the crystal's point operations too; False: under
        translations and time reversal only (each domain of an order listed apart).
    finished : resuming a search: ``{start index: (energy eV, State, converged)}`` of the starts
        an earlier call with the same arguments finished (what ``record`` was given); they are
        not run again, and the result is that of the whole search (start k depends only on
        ``seed + k``: :func:`spinlat.search` module docstring). ``spinlat search --restart``
        resumes so.
    record : optional ``record(k, (energy, State, converged))``, called in this process as each
        start k finishes (also those finished when Ctrl-C / SIGTERM stops the search), e.g. to
        save it for ``finished``; serially each start is then its own job, so that a
        ``kill -9`` loses at most the start under way.
    minimize_kwargs : passed to :func:`spinlat.minimize` (e.g. tmax, positions=True). With
        positions, cell or magnitudes relaxed, minima are still compared by their spins under the
        operations of the starting structure.

    Ctrl-C (SIGTERM: :class:`~spinlat.interrupts.Terminated`) stops a serial search within the
    chunk of compiled-kernel iterations (a fraction of a second) or the Python minimiser's
    iteration under way, the start under way dropped (an annealed start: within
    :data:`ANNEAL_LATENCY_S` of its Monte Carlo annealing), and is
    raised as ``KeyboardInterrupt`` whose ``partial_result`` is an :class:`InterruptedSearch` (the
    merged minima of every start finished; a second signal, which raises at once, keeps them
    too). Over ``workers`` (local processes, which ignore Ctrl-C and SIGTERM themselves: the
    calling process decides) the starts go in batches (about four per worker); the batches not
    started are cancelled and each worker is asked to stop the same way, so every start finished
    is kept; a second signal asks the workers to stop at once and ends them within
    :data:`_HURRY_S` s, keeping the starts they finished by then.
    Annealed starts over ``workers``, and every start on a ``scheduler``, are one job each: the
    search stops at once, the starts under way are abandoned (local workers ended; Dask cannot
    stop a task, its result is dropped) and every start finished is kept.

    Returns a list of :class:`Minimum` (energy eV, state, count, starts, converged, degeneracy), lowest first
    (each state at rest, velocities zero, as :func:`spinlat.minimize` leaves it);
    each also unpacks as ``energy, state``. Starts whose minimisation did not converge give one
    :class:`~spinlat.errors.ConvergenceWarning`; their minima have ``converged=False`` unless a
    converged start reached the same minimum. Raises InputError for bad arguments or a state
    without magnetic atoms, WorkerError when worker processes cannot run.
    """
    _check_count("starts (ground_state needs at least one start)", starts, 1)
    _check_count("seed", seed, 0)
    anneal = _check_anneal(anneal)
    _check_positive("energy_tol", energy_tol)
    _check_positive("angle_tol", angle_tol)
    _check_workers(workers, scheduler)
    finished = _check_finished(finished, starts, state)
    if record is not None and not callable(record):
        raise InputError(f"ground_state: record must be a callable record(k, (energy, State, converged)), got "
                         f"{type(record).__name__}")
    if not np.any(np.asarray(getattr(state, "moments", ()), dtype=float) > 0):
        raise InputError("ground_state: the state has no magnetic atoms (all moments are 0): there are no spins "
                         "to search over; relax the structure with spinlat.minimize(..., spins=False, positions=True)")
    if spin_rotations is None:
        spin_rotations = bool(getattr(potential, "spin_rotation_invariant", False))
    classes = None if start_cell is None else site_classes(state, start_cell)
    job = _Start(state, potential, anneal, minimize_kwargs, classes)
    merge = _Merger(state, potential, spin_rotations, energy_tol, angle_tol, point_operations=bool(symmetry))

    def merged(numbered):  # (start index, (energy, state, converged)) pairs
        return merge([Minimum(float(e), st, 1, (k,), bool(ok)) for k, (e, st, ok) in numbered])

    seeds = [seed + k for k in range(starts) if k not in finished]  # the starts still to run
    serial = scheduler is None and (workers is None or workers <= 1)
    # local batches stop at the end of each worker's start under way (graceful); annealed starts (long: no
    # waiting for them) and Dask tasks (which cannot be asked to stop) are one job each and are abandoned
    graceful = not serial and scheduler is None and not anneal
    if serial:
        stopping = ANNEALED_STOPPING if anneal else "at the end of the start under way"
    elif graceful:
        stopping = "once each worker process has stopped its start under way (every start finished is kept)"
    else:
        stopping = "now: the starts finished are kept, those under way are abandoned"
    # Ctrl-C / SIGTERM held back for the whole search (its end too), raised between starts (serial) or
    # between jobs (workers, scheduler) with the minima of the starts finished; worker processes ignore both
    with deferred(stopping, waits=serial or graceful):
        if serial and record is not None:  # one start per job: each is recorded as it finishes
            jobs = [(s,) for s in seeds]
        else:
            jobs = _batches(seeds, workers) if serial or graceful else [(s,) for s in seeds]
        done = dict(finished)  # start index -> (energy, State, converged)
        jobs_done = []

        def keep(j, batch):  # job j finished (or, stopped, its first starts)
            jobs_done.append(j)
            for s, r in zip(jobs[j], batch):
                if s - seed not in done:
                    done[s - seed] = r
                    if record is not None:
                        record(s - seed, r)

        try:
            _map(job, jobs, workers, scheduler, stopping=stopping, graceful=graceful, on_result=keep)
        except KeyboardInterrupt as exc:  # the starts finished come with it
            part = getattr(exc, "partial_result", None)
            if isinstance(part, dict):  # jobs run elsewhere: {job index: results of its (first) starts}
                for j, batch in part.items():
                    keep(j, batch)
            elif isinstance(part, list) and len(jobs_done) < len(jobs):  # the job run here: its first starts
                keep(len(jobs_done), part)
            ended = tuple(sorted(done))
            exc.partial_result = InterruptedSearch(merged((k, done[k]) for k in ended), ended, starts)
            raise
        results = [done[k] for k in range(starts)]
        minima = merged(enumerate(results))
        check(InterruptedSearch(minima, tuple(range(starts)), starts))
        polish = _near_degenerate(minima, energy_tol * len(state))
        if polish:
            try:
                minima = merge(_polish(minima, polish, state, potential, minimize_kwargs))
            except KeyboardInterrupt as exc:  # the minima before polishing
                exc.partial_result = InterruptedSearch(minima, tuple(range(starts)), starts)
                raise
        check(InterruptedSearch(minima, tuple(range(starts)), starts))
    failed = [k for k, r in enumerate(results) if not r[2]]
    if failed:
        import warnings

        from .errors import ConvergenceWarning

        bad = sum(not m.converged for m in minima)
        warnings.warn(f"ground_state: {len(failed)} of {starts} starts did not converge (starts {failed[:10]}"
                      f"{' ...' if len(failed) > 10 else ''}); {bad} of the {len(minima)} minima returned are not "
                      f"minima (converged=False); raise max_steps or loosen tmax", ConvergenceWarning,
                      stacklevel=3)  # the caller of ground_state (2: refuse_other_names's wrapper)
    return minima


def _check_finished(finished, starts, state) -> dict:
    """``finished`` of :func:`ground_state` checked: {start index < starts: (energy, State of the
    search's atoms, converged)}; InputError naming the entry that is not."""
    if finished is None:
        return {}
    from .state import State

    if not isinstance(finished, dict):
        raise InputError(f"ground_state: finished must be a dict {{start index: (energy, State, converged)}}, got "
                         f"{type(finished).__name__}")
    out = {}
    for k, r in finished.items():
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 0 <= k < starts:
            raise InputError(f"ground_state: finished start {k!r} is not a start index of this search (0 to "
                             f"{starts - 1})")
        if not (isinstance(r, (tuple, list)) and len(r) == 3 and isinstance(r[1], State)
                and len(r[1]) == len(state)):
            raise InputError(f"ground_state: finished[{k}] must be (energy, State of {len(state)} atoms, converged)")
        out[int(k)] = (float(r[0]), r[1], bool(r[2]))
    return out


def _polish(minima, polish, state, potential, minimize_kwargs) -> list:
    """``minima`` with those of the indices ``polish`` re-minimised at the torque tolerance divided
    by :data:`POLISH_FACTOR`: minima within energy_tol of another one are told apart only after a
    tighter minimisation: along a flat direction (a weak field, a weak anisotropy) the torque
    tolerance is met far from the minimum, and one minimum would be listed several times
    (measured: 16 spins, J = 10 meV, B = 0.05 T along z: 7 "minima" from 12 starts at
    tmax = 1e-5 eV, their spins up to 60° apart)."""
    from .minimization import minimize, minimize_defaults, minimize_starts

    tmax = minimize_kwargs.get("tmax", minimize_defaults()["tmax"])
    kw = {**minimize_kwargs, "tmax": tmax / POLISH_FACTOR}
    if any(minimize_kwargs.get(k) for k in ("positions", "cell", "magnitudes")):
        # from the whole state reached (positions, magnitudes moved too)
        redone = [minimize(minima[i].state, potential, return_result=True, **kw)[1] for i in polish]
    else:  # spins only: one batch (the compiled kernel when the potential allows it)
        redone = minimize_starts(state, potential, np.stack([minima[i].state.spins for i in polish]), **kw)
    minima = list(minima)
    for i, r in zip(polish, redone):
        m = minima[i]
        minima[i] = Minimum(float(r.energy), r.state, m.count, m.starts, m.converged and r.converged)
    return minima
