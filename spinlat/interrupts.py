"""Ctrl-C (SIGINT) and SIGTERM held back to a safe point of a run.

Python runs a signal handler between two bytecodes of the main thread, and the exception it
raises (``KeyboardInterrupt``) lands wherever that happens to be, including Python code that C
code called back: numba's dispatcher unpickling a constant, a torch or h5py callback. The C caller
then reports a ``SystemError`` "returned a result with an exception set" instead of the
interrupt, and a half-done update (a neighbour list, a trajectory append) is abandoned midway.
:func:`deferred` holds both signals back instead: the first one is recorded, and
:func:`check` raises it where the caller knows the state is whole (spinlat's
:meth:`~spinlat.simulation.Simulation.run` checks after each chunk of steps, once the frame of
that chunk is written); a second signal while one is pending raises at once, for a user who does
not want to wait; the first one prints a line saying so on stderr. This is GROMACS's convention for ``mdrun`` (first signal: stop at the next safe
step and write what is due; second: stop now).

SIGTERM (the signal batch schedulers send at a job's time limit, then SIGKILL after a grace time:
30 s by default in Slurm, ``KillWait``) raises :class:`Terminated`, a ``KeyboardInterrupt``, so
code that cleans up on Ctrl-C cleans up on it too. Only handlers left at their defaults (Python's
``default_int_handler`` for SIGINT; ``SIG_DFL`` or :func:`raise_terminated` for SIGTERM) are taken
over, and only in the main thread; handlers a user installed are left alone.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading

__all__ = ["Terminated", "raise_terminated", "deferred", "pending", "check", "interrupt_cause", "request_stop",
           "stop_now", "raise_with", "abandonable", "check_abandon", "sigterm_raises", "rearm"]


class Terminated(KeyboardInterrupt):
    """SIGTERM received (a batch scheduler's time limit, ``kill``): raised like Ctrl-C's
    ``KeyboardInterrupt`` so that a run flushes every frame it holds before it exits (the
    ``spinlat`` command then exits with status 143 = 128 + SIGTERM)."""


def raise_terminated(signum, frame):
    """Signal handler: raise :class:`Terminated` at once."""
    raise Terminated()


def _exception_for(signum) -> KeyboardInterrupt:
    return Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


class _Pending:
    """The signal held back by the outermost active :func:`deferred` (main thread only), what
    the active blocks do on it (``stops``: one ``(stopping, waits)`` per block, innermost last)
    and whether :func:`request_stop` was called in this process (``requested``)."""

    active = 0
    signum = None
    stops: list = []
    requested = False
    abandonable = 0  # depth of the active abandonable() blocks (main thread only)


#: what a run does on a held-back signal when its block says nothing
_STOPPING = "at the next safe point (the end of the step chunk or iteration under way)"


def _notice(name) -> str:
    """The line printed when ``name`` (Ctrl-C, SIGTERM) is held back: what the innermost block
    that said does (:func:`deferred`'s ``stopping``)."""
    stopping, waits = next((s for s in reversed(_Pending.stops) if s[0] is not None), (_STOPPING, True))
    again = " (send it again to stop at once)" if waits else ""
    return f"spinlat: {name} received; stopping {stopping}{again}\n"


def _hold(signum, frame):
    if _Pending.signum is not None:  # a second signal: the user does not want to wait
        _Pending.signum = None
        raise _exception_for(signum)
    _Pending.signum = signum
    name = "Ctrl-C" if signum == signal.SIGINT else "SIGTERM"
    try:  # os.write, not print: a handler that prints while the program prints raises "reentrant call"
        os.write(2, _notice(name).encode())
    except OSError:
        pass


def _takes_over(signum, handler) -> bool:
    if signum == signal.SIGINT:
        return handler is signal.default_int_handler
    return handler is signal.SIG_DFL or handler is raise_terminated


@contextlib.contextmanager
def deferred(stopping: str | None = None, waits: bool = True):
    """Hold SIGINT and SIGTERM back while the block runs (see the module's description).

    Inside the block, the first signal is recorded and raised by :func:`check` (as
    ``KeyboardInterrupt``, or :class:`Terminated` for SIGTERM); a second signal raises at once.
    When the block ends the previous handlers are restored and a signal still pending is raised
    (unless the block ends by an exception, which then wins). Re-entrant; outside the main thread
    it changes nothing (Python delivers signals to the main thread only).

    ``stopping``: what the block does on the first signal, for the line printed on stderr
    ("spinlat: SIGTERM received; stopping <stopping> (send it again to stop at once)"), e.g.
    ``"at the end of the start under way"``; the innermost block that gives one is quoted (it
    is the one that stops), a default sentence otherwise. ``waits=False``: the block stops at
    once (it checks every fraction of a second: work spread over processes), and the line does
    not offer a second signal."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if _Pending.active:
        _Pending.stops.append((stopping, waits))
        try:
            yield
        finally:
            _Pending.stops.pop()
        return
    # cleared before the handlers go in: a signal that comes once one is in place is kept (it was
    # cleared after them, and a signal in between was announced, then forgotten)
    _Pending.signum, _Pending.stops = None, [(stopping, waits)]
    previous = {}
    ok = False
    try:  # (a second signal while they go in raises: the handlers in place are put back)
        for signum in (signal.SIGINT, signal.SIGTERM):
            handler = signal.getsignal(signum)
            if _takes_over(signum, handler):
                previous[signum] = handler  # noted first: a signal may raise as soon as _hold is in
                signal.signal(signum, _hold)
        _Pending.active = 1
        yield
        ok = True
    finally:
        _Pending.active, _Pending.stops = 0, []
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        pending, _Pending.signum = _Pending.signum, None
        if ok and pending is not None:
            raise _exception_for(pending)


@contextlib.contextmanager
def sigterm_raises():
    """While the block runs, SIGTERM raises :class:`Terminated` at once, as Ctrl-C raises
    ``KeyboardInterrupt``, instead of ending the process on the spot (its default): for work that
    stops at once on Ctrl-C and keeps what it finished (:func:`spinlat.sweep` run serially), which
    a batch scheduler's SIGTERM killed with everything it held. Only a SIGTERM handler left at its
    default is replaced, in the main thread; inside a :func:`deferred` block nothing changes."""
    if not _main_thread() or _Pending.active or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return
    try:  # (put back also when a SIGTERM raises as soon as the handler is in)
        signal.signal(signal.SIGTERM, raise_terminated)
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the one it replaces (checked above)


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def pending() -> bool:
    """Whether a signal held back by :func:`deferred` (or a :func:`request_stop`) waits to be
    raised by :func:`check`. Always False outside the main thread: the signal belongs to the run
    of the main thread, not to work a thread does for someone else (a Dask worker thread)."""
    return _main_thread() and (_Pending.signum is not None or _Pending.requested)


def check(partial_result=None) -> None:
    """Raise the signal held back by :func:`deferred`, if one arrived; call it at safe points.
    Raises ``KeyboardInterrupt`` (SIGINT, and after :func:`request_stop`) or :class:`Terminated`
    (SIGTERM); ``partial_result`` (any object, e.g. the band of a GNEB stopped midway) travels
    with it as the exception's ``partial_result`` attribute, for the caller to save. Does nothing
    outside the main thread (see :func:`pending`)."""
    if not _main_thread():
        return
    signum = _Pending.signum
    if signum is not None or _Pending.requested:
        _Pending.signum = None
        exc = _exception_for(signum) if signum is not None else KeyboardInterrupt()
        exc.partial_result = partial_result
        raise exc


@contextlib.contextmanager
def abandonable():
    """Mark the block's work as one its caller can drop whole: inside it, :func:`check_abandon`
    (called by :meth:`spinlat.potentials.Potential.compute` and the other entries that evaluate
    a model, before they touch anything) raises a held-back signal, so that a stop does not
    wait for the end of a step that makes several slow model calls (an mMACE implicit midpoint
    step). The caller must discard what the block was computing and put back what it changed
    (:meth:`spinlat.Simulation.run` drops the steps since its last frame and restores the
    integrator's checkpoint). Re-entrant; outside the main thread it changes nothing."""
    if not _main_thread():
        yield
        return
    _Pending.abandonable += 1
    try:
        yield
    finally:
        _Pending.abandonable -= 1


def check_abandon() -> None:
    """:func:`check`, but only inside an :func:`abandonable` block (elsewhere nothing): for the
    boundaries between model calls, where work that may be dropped can stop. Costs one attribute
    read when no signal is pending: results of runs that are not interrupted are unchanged."""
    if _Pending.abandonable and (_Pending.signum is not None or _Pending.requested) and _main_thread():
        check()


def rearm(exc: BaseException) -> None:
    """Hold back again the interrupt ``exc`` that :func:`check` or :func:`check_abandon` raised,
    so that the next :func:`check` raises it (with its caller's ``partial_result``): for work
    that ends where the interrupt reached it (a minimiser's line search abandoned at a model
    call) and reports at its own safe point. Nothing changes outside an active :func:`deferred`
    block, outside the main thread, or after :func:`request_stop` (every check raises then)."""
    if _Pending.active and _main_thread() and not _Pending.requested and _Pending.signum is None:
        _Pending.signum = signal.SIGTERM if isinstance(exc, Terminated) else signal.SIGINT


def request_stop() -> None:
    """Ask every run of this process to stop at its next safe point, for good: from now on
    :func:`pending` is True and each :func:`check` raises ``KeyboardInterrupt`` (with its
    ``partial_result``), as after a held-back Ctrl-C, but no :func:`deferred` block raises it
    when it ends (its work is whole: the caller gets the result). For a worker process that its
    calling process asks to stop (:func:`spinlat.search.ground_state` over ``workers``: a
    worker's batch of starts returns the starts finished); the process is not reused after it.
    Safe to call from a signal handler."""
    _Pending.requested = True


def stop_now() -> None:
    """Ask the run of this process to stop at once, for good: :func:`request_stop`, and when a
    :func:`deferred` block is active (a run is under way) raise ``KeyboardInterrupt`` here, so that
    the run's handlers attach what it finished (its ``partial_result``). For a worker process
    whose calling process got a second signal (:func:`spinlat.search.ground_state` over
    ``workers``); an idle process (no block active) only records the request. Meant to be
    called from a signal handler of the main thread."""
    request_stop()
    if _Pending.active and _main_thread():
        raise KeyboardInterrupt()


def interrupt_cause(exc: BaseException) -> KeyboardInterrupt | None:
    """The ``KeyboardInterrupt`` that ``exc`` is or that caused it (following ``__cause__`` and
    ``__context__``), else None: an interrupt raised inside Python code called from C reaches the
    caller as a ``SystemError`` chained to it."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ if exc.__cause__ is not None else exc.__context__
    return None


def raise_with(exc: BaseException, partial_result) -> None:
    """Raise the interrupt that ``exc`` is or that caused it (:func:`interrupt_cause`; not the
    ``SystemError`` C code wrapped it in) with ``partial_result`` attached; ``exc`` unchanged when
    it is no interrupt. For an ``except BaseException`` clause that hands what it finished to the
    caller of an interrupted run."""
    interrupt = interrupt_cause(exc)
    if interrupt is None:
        raise exc
    interrupt.partial_result = partial_result
    if interrupt is exc:
        raise exc
    raise interrupt from None
