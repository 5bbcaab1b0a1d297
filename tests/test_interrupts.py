"""Ctrl-C and SIGTERM held back to a safe point (spinlat.interrupts) and how runs use it.

CI saw the fault this guards against: SIGTERM arrived while numba's dispatcher had called back
into Python (unpickling a constant during a neighbour-list update); the interrupt came out as a
SystemError, the CLI exited with status 1 instead of 143. Signals are sent to this very process
with os.kill: Python runs the handler before the next bytecode, so nothing here depends on timing.
"""

import functools
import math
import os
import signal
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import spinlat as sl
from spinlat import interrupts
from spinlat.integrators import SpinLatticeNVE
from spinlat.interrupts import Terminated

sys.path.insert(0, str(Path(__file__).parent / "integrators"))
from test_spin_lattice import Field, PairSpin, crystal  # noqa: E402


pytestmark = pytest.mark.usefixtures("default_signal_handlers")


def test_an_ignored_sigint_stays_ignored():
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with interrupts.deferred():
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        os.kill(os.getpid(), signal.SIGINT)
        interrupts.check()
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN


def _handlers():
    return signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)


def test_first_signal_is_held_until_check_and_handlers_come_back():
    before = _handlers()
    reached = []
    with pytest.raises(KeyboardInterrupt) as info:
        with interrupts.deferred():
            os.kill(os.getpid(), signal.SIGINT)
            reached.append("after the signal")  # not interrupted here
            interrupts.check()
            reached.append("after check")
    assert reached == ["after the signal"] and type(info.value) is KeyboardInterrupt
    assert _handlers() == before


def test_sigterm_is_held_and_raised_as_terminated():
    with pytest.raises(Terminated):
        with interrupts.deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            interrupts.check()
    assert isinstance(Terminated(), KeyboardInterrupt)


def _signal_once_installed(monkeypatch, signum, chosen):
    """Make spinlat.interrupts see a signal module whose ``signal(num, handler)`` sends ``signum``
    to this process as soon as a handler for which ``chosen(handler)`` is true is in place (the
    earliest moment a real signal could come)."""
    real = signal.signal

    class Signals:
        def __getattr__(self, name):
            return getattr(signal, name)

        @staticmethod
        def signal(num, handler):
            previous = real(num, handler)
            if num == signum and chosen(handler):
                os.kill(os.getpid(), signum)
            return previous

    monkeypatch.setattr(interrupts, "signal", Signals())


@pytest.mark.parametrize("signum, kind", [(signal.SIGINT, KeyboardInterrupt), (signal.SIGTERM, Terminated)])
def test_a_signal_that_comes_as_the_block_installs_its_handlers_is_kept(monkeypatch, signum, kind):
    """deferred() cleared the pending signal after installing its handlers: a Ctrl-C or SIGTERM
    that came in between (right after the handler was installed) printed its line and was then
    forgotten, so the run never stopped. The signal is sent here from inside the installation,
    just after the handler is in place (Python runs it before the next bytecode): no timing."""
    _signal_once_installed(monkeypatch, signum, lambda handler: handler is interrupts._hold)
    reached = []
    with pytest.raises(kind):
        with interrupts.deferred():
            reached.append("inside")
            assert interrupts.pending()
            interrupts.check()
            reached.append("after check")
    assert reached == ["inside"]
    monkeypatch.undo()
    assert _handlers() == (signal.default_int_handler, signal.SIG_DFL)


def test_a_sigterm_as_sigterm_raises_installs_its_handler_leaves_the_default_behind(monkeypatch):
    """sigterm_raises() put SIGTERM's default back only once its handler was in and noted: a
    SIGTERM right after the handler went in raised Terminated before that, and the handler
    stayed for the rest of the process (a later SIGTERM raised in any code instead of ending
    it). Sent from inside the installation here: no timing."""
    _signal_once_installed(monkeypatch, signal.SIGTERM, lambda handler: handler is interrupts.raise_terminated)
    reached = []
    with pytest.raises(Terminated):
        with interrupts.sigterm_raises():
            reached.append("inside")
    monkeypatch.undo()
    assert reached == [] and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_a_second_signal_raises_at_once():
    reached = []
    with pytest.raises(KeyboardInterrupt):
        with interrupts.deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            reached.append(1)
            os.kill(os.getpid(), signal.SIGINT)
            reached.append(2)
    assert reached == [1]


def test_a_signal_still_pending_at_the_end_of_the_block_is_raised_there():
    reached = []
    with pytest.raises(KeyboardInterrupt):
        with interrupts.deferred():
            os.kill(os.getpid(), signal.SIGINT)
            reached.append(1)
    assert reached == [1]
    interrupts.check()  # nothing left pending


def test_an_exception_ending_the_block_wins_over_a_pending_signal():
    with pytest.raises(ValueError):
        with interrupts.deferred():
            os.kill(os.getpid(), signal.SIGINT)
            raise ValueError("the block's own error")
    interrupts.check()


def test_handlers_installed_by_the_user_are_left_alone():
    got = []
    previous = signal.signal(signal.SIGTERM, lambda s, f: got.append(s))
    try:
        with interrupts.deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            interrupts.check()  # the user's handler ran, nothing pending here
        assert got == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_outside_the_main_thread_nothing_changes():
    seen = []

    def worker():
        with interrupts.deferred():
            seen.append(_handlers())

    before = _handlers()
    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert seen == [before]


def test_a_signal_held_for_the_main_thread_is_not_raised_in_another_thread():
    """A Dask worker thread in this process (LocalCluster(processes=False)) running a search job
    saw the main thread's held-back signal in pending()/check(): its job stopped early and took
    the interrupt away from the main thread. Now both answer for the main thread only."""
    seen = []

    def worker():
        seen.append(interrupts.pending())
        interrupts.check()  # does not raise, does not take the signal
        seen.append("checked")

    with pytest.raises(KeyboardInterrupt):
        with interrupts.deferred():
            os.kill(os.getpid(), signal.SIGINT)
            t = threading.Thread(target=worker)
            t.start()
            t.join()
            assert interrupts.pending()
            interrupts.check()
    assert seen == [False, "checked"]


def test_interrupt_cause_follows_the_chain():
    term = Terminated()
    try:
        try:
            raise term
        except Terminated as inner:
            raise SystemError("returned a result with an exception set") from inner
    except SystemError as exc:
        wrapped = exc
    assert interrupts.interrupt_cause(wrapped) is term
    assert interrupts.interrupt_cause(ValueError("x")) is None
    ctx = RuntimeError("y")
    ctx.__context__ = KeyboardInterrupt()
    assert isinstance(interrupts.interrupt_cause(ctx), KeyboardInterrupt)


class _SignalAt(SpinLatticeNVE):
    """NVE that sends itself ``signum`` in the middle of its ``at``-th run call (a chunk)."""

    def __init__(self, dt, signum, at, raise_inside_c=False):
        super().__init__(dt)
        self.signum, self.at, self.calls, self.raise_inside_c = signum, at, 0, raise_inside_c

    def run(self, state, potential, steps):
        self.calls += 1
        if self.calls == self.at:
            half = super().run(state, potential, 1)
            if self.raise_inside_c:  # what a forced second signal inside numba looks like
                try:
                    raise Terminated()
                except Terminated as t:
                    raise SystemError("CPUDispatcher returned a result with an exception set") from t
            os.kill(os.getpid(), self.signum)
            return super().run(half, potential, steps - 1)
        return super().run(state, potential, steps)


def _steps(path):
    with sl.io.Trajectory(path) as traj:
        return traj.array("step").tolist()


@pytest.mark.parametrize("signum, kind", [(signal.SIGTERM, Terminated), (signal.SIGINT, KeyboardInterrupt)])
@pytest.mark.usefixtures("one_call_per_chunk")  # the 3rd call of _SignalAt is the 3rd chunk, a whole one
def test_a_run_finishes_its_chunk_writes_its_frame_then_stops(tmp_path, signum, kind):
    st, pot = crystal(2, T=300.0), PairSpin() + Field([0, 0, 1.0])
    path = tmp_path / "run.h5"
    sim = sl.Simulation(st, pot, _SignalAt(1.0, signum, at=3), trajectory=path, every=4, progress=False)
    with pytest.raises(kind):
        sim.run(40)
    sim.close()
    # the chunk under way when the signal came (steps 8..12) was finished and its frame written
    assert sim.step == 12
    assert _steps(path) == [0, 4, 8, 12]
    # ... and the run continues from it to the same numbers as an unbroken run
    again = sl.Simulation.restart(path, pot, SpinLatticeNVE(1.0), every=4, progress=False)
    out = again.run(8)
    again.close()
    assert _steps(path) == [0, 4, 8, 12, 16, 20]
    ref = SpinLatticeNVE(1.0).run(st, pot, 20)
    np.testing.assert_allclose(out.spins, ref.spins, atol=1e-12)
    np.testing.assert_allclose(out.positions, ref.positions, atol=1e-12)
    assert _handlers() == (signal.default_int_handler, signal.SIG_DFL)


@pytest.mark.usefixtures("one_call_per_chunk")  # the 3rd call of _SignalAt is the 3rd chunk
def test_an_interrupt_that_came_out_of_c_code_as_a_system_error_is_raised_as_itself(tmp_path):
    st, pot = crystal(2, T=300.0), PairSpin() + Field([0, 0, 1.0])
    path = tmp_path / "run.h5"
    sim = sl.Simulation(st, pot, _SignalAt(1.0, None, at=3, raise_inside_c=True), trajectory=path, every=4,
                        progress=False, flush_every=100)
    with pytest.raises(Terminated):
        sim.run(40)
    sim.close()
    assert _steps(path) == [0, 4, 8]  # every frame held in memory flushed


def test_cli_reports_an_interrupt_wrapped_in_a_system_error_as_sigterm(monkeypatch, capsys):
    from spinlat import cli

    def boom(args):
        try:
            raise Terminated()
        except Terminated as t:
            raise SystemError("returned a result with an exception set") from t

    monkeypatch.setattr(cli, "COMMANDS", {})
    cli.register("boom", "raises what a SIGTERM inside numba's dispatcher raised", lambda p: None, boom)
    assert cli.main(["boom"]) == 128 + signal.SIGTERM
    # it said "what was done is on disk" also where nothing was written (a run stopped while it set up)
    assert capsys.readouterr().err == "spinlat boom: terminated (SIGTERM)\n"
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_the_first_signal_says_on_stderr_that_the_run_will_stop(capfd):
    with pytest.raises(KeyboardInterrupt):
        with interrupts.deferred():
            os.kill(os.getpid(), signal.SIGINT)
            interrupts.check()
    err = capfd.readouterr().err
    assert "Ctrl-C received" in err and "again to stop at once" in err


def test_the_line_printed_says_what_the_innermost_run_does(capfd):
    """Every run printed "stopping at the end of the step chunk or iteration under way (send it
    again to stop at once)", also a sweep over processes, which stops at once. Now the innermost
    block that says what it does is quoted, and a block that stops at once offers no second
    signal."""
    with pytest.raises(Terminated):
        with interrupts.deferred("at the end of the outer thing"):
            with interrupts.deferred():  # says nothing: the enclosing block's words stand
                with interrupts.deferred("at the end of the inner thing"):
                    pass
                os.kill(os.getpid(), signal.SIGTERM)
                interrupts.check()
    assert capfd.readouterr().err == ("spinlat: SIGTERM received; stopping at the end of the outer thing (send it "
                                      "again to stop at once)\n")
    with pytest.raises(KeyboardInterrupt):
        with interrupts.deferred("at the end of the outer thing"):
            with interrupts.deferred("now: what is done is kept", waits=False):
                os.kill(os.getpid(), signal.SIGINT)
                interrupts.check()
    assert capfd.readouterr().err == "spinlat: Ctrl-C received; stopping now: what is done is kept\n"


def test_each_run_says_how_it_stops(tmp_path, monkeypatch, capfd):
    """The words of each kind of run on the first signal: a Simulation ends its chunk of steps,
    a minimisation its iteration (the compiled kernel: its chunk of iterations), a sweep over
    processes stops at once."""
    st, pot = crystal(2, T=300.0), PairSpin() + Field([0, 0, 1.0])
    sim = sl.Simulation(st, pot, _SignalAt(1.0, signal.SIGTERM, at=2), every=4, progress=False)
    with pytest.raises(Terminated):
        sim.run(40)
    assert "stopping at the end of the chunk of steps under way, once its frame is written (a chunk longer than 1 s " \
        "stops sooner, a slower step at its next model call, their steps dropped: the file ends at its last frame) " \
        "(send it again" in capfd.readouterr().err
    fe, exch = _fe_search()
    _signal_after_kernel_call(monkeypatch, signal.SIGINT, at=1)
    with pytest.raises(KeyboardInterrupt):
        sl.minimize(fe.copy(spins=np.random.default_rng(0).normal(size=(len(fe), 3))), exch, tmax=1e-8)
    assert "stopping within a fraction of a second (at the end of the compiled kernel's chunk of iterations) (send" \
        in capfd.readouterr().err
    monkeypatch.undo()
    _signal_after_kernel_call(monkeypatch, signal.SIGINT, at=1)
    with pytest.raises(KeyboardInterrupt):
        sl.search.ground_state(fe, exch, starts=3, tmax=1e-8)
    assert ("stopping within a fraction of a second (at the end of the compiled kernel's chunk of iterations): the "
            "starts finished are kept, the one under way is dropped (send") in capfd.readouterr().err
    monkeypatch.undo()
    from spinlat import search

    search.shutdown_workers()
    _note_collected(monkeypatch, 3, (tmp_path / "collected").touch)
    with pytest.raises(Terminated):
        sl.sweep(functools.partial(_job_or_signal, str(tmp_path)), [1, 2, 3, 100, 200, 4], workers=2)
    err = capfd.readouterr().err
    assert "stopping now: the values finished are kept, those under way are abandoned\n" in err
    assert "again" not in err


# ------------------------------------------------------------------ ground-state searches
def _signal_after_kernel_call(monkeypatch, signum, at):
    """Make the compiled L-BFGS kernel send ``signum`` to this process when its ``at``-th call
    has finished (the search then stops before the next start: on 16 atoms one call is one
    start)."""
    from spinlat.integrators import spin_lbfgs

    kernel, calls = spin_lbfgs.lbfgs_oso_steps, []

    def counting(*args):
        finished = kernel(*args)
        calls.append(1)
        if len(calls) == at:
            os.kill(os.getpid(), signum)
        return finished

    monkeypatch.setattr(spin_lbfgs, "lbfgs_oso_steps", counting)
    return calls


def _fe_search():
    from conftest import bcc_fe
    from spinlat.potentials import BetheSlaterExchange, UniaxialAnisotropy

    st = bcc_fe((2, 2, 2), rattle=0.0, seed=4)
    return st, BetheSlaterExchange(3.4, 0.02726, 0.2171, 1.841) + UniaxialAnisotropy(1e-3, [0, 0, 1])


@pytest.mark.parametrize("signum, kind", [(signal.SIGTERM, Terminated), (signal.SIGINT, KeyboardInterrupt)])
def test_an_interrupted_search_keeps_the_minima_of_the_finished_starts(monkeypatch, signum, kind):
    """ground_state ran all its starts in one compiled call and kept nothing on Ctrl-C / SIGTERM;
    now it stops after the start under way with the merged minima of the finished starts."""
    from spinlat.search import InterruptedSearch, ground_state

    st, pot = _fe_search()
    whole = ground_state(st, pot, starts=3, seed=2, tmax=1e-8)  # the first three starts, uninterrupted
    calls = _signal_after_kernel_call(monkeypatch, signum, at=3)
    with pytest.raises(kind) as info:
        ground_state(st, pot, starts=8, seed=2, tmax=1e-8)
    assert len(calls) == 3  # no start after the signal
    part = info.value.partial_result
    assert isinstance(part, InterruptedSearch) and part.interrupted
    assert part.finished == (0, 1, 2) and part.starts == 8
    assert [(m.count, m.starts) for m in part.minima] == [(m.count, m.starts) for m in whole] == [(3, (0, 1, 2))]
    assert part.minima[0].energy == whole[0].energy
    np.testing.assert_array_equal(part.minima[0].state.spins, whole[0].state.spins)
    assert _handlers() == (signal.default_int_handler, signal.SIG_DFL)


@pytest.mark.parametrize("signum, kind", [(signal.SIGTERM, Terminated), (signal.SIGINT, KeyboardInterrupt)])
def test_a_second_signal_keeps_the_finished_starts_of_a_serial_search(monkeypatch, signum, kind):
    """A second signal raises at once; in a serial search it lost every start of the batch under
    way (all of them: a serial search is one batch), the InterruptedSearch was empty. Now the
    starts finished come back; only the start under way is lost."""
    from spinlat.integrators import spin_lbfgs
    from spinlat.search import ground_state

    st, pot = _fe_search()
    whole = ground_state(st, pot, starts=2, seed=2, tmax=1e-8)
    kernel, calls = spin_lbfgs.lbfgs_oso_steps, []

    def twice(*args):  # both signals as the third start begins
        calls.append(1)
        if len(calls) == 3:
            os.kill(os.getpid(), signum)
            os.kill(os.getpid(), signum)
        return kernel(*args)

    monkeypatch.setattr(spin_lbfgs, "lbfgs_oso_steps", twice)
    with pytest.raises(kind) as info:
        ground_state(st, pot, starts=6, seed=2, tmax=1e-8)
    assert len(calls) == 3
    part = info.value.partial_result
    assert part.finished == (0, 1) and part.starts == 6
    assert [(m.count, m.starts) for m in part.minima] == [(m.count, m.starts) for m in whole]
    assert part.minima[0].energy == whole[0].energy
    assert _handlers() == (signal.default_int_handler, signal.SIG_DFL)


def test_an_interrupted_annealed_search_stops_between_starts(monkeypatch):
    from spinlat.search import ground_state

    st, pot = _fe_search()
    calls = _signal_after_kernel_call(monkeypatch, signal.SIGTERM, at=2)
    anneal = {"t_start": 50.0, "t_end": 5.0, "stages": 2, "sweeps": 2}
    with pytest.raises(Terminated) as info:
        ground_state(st, pot, starts=5, seed=0, tmax=1e-8, anneal=anneal)
    assert len(calls) == 2 and info.value.partial_result.finished == (0, 1)
    assert sum(m.count for m in info.value.partial_result.minima) == 2


def test_minimize_starts_keeps_the_finished_starts_on_python_and_compiled_paths(monkeypatch):
    from spinlat.minimization import minimize_starts

    st, pot = _fe_search()
    rng = np.random.default_rng(0)
    starts = rng.normal(size=(4, len(st), 3))
    starts /= np.linalg.norm(starts, axis=-1, keepdims=True)
    whole = minimize_starts(st, pot, starts, tmax=1e-8)
    _signal_after_kernel_call(monkeypatch, signal.SIGINT, at=2)
    with pytest.raises(KeyboardInterrupt) as info:
        minimize_starts(st, pot, starts, tmax=1e-8)
    done = info.value.partial_result
    assert len(done) == 2 and [r.energy for r in done] == [r.energy for r in whole[:2]]
    monkeypatch.undo()
    from spinlat import minimization

    real, n = minimization.minimize, []

    @functools.wraps(real)  # minimize_starts reads minimize's signature
    def signalling(*args, **kw):  # the Python loop: a signal as the second start begins
        n.append(1)
        if len(n) == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return real(*args, **kw)

    monkeypatch.setattr(minimization, "minimize", signalling)
    with pytest.raises(Terminated) as info:
        minimize_starts(st, pot, starts, tmax=1e-8, compiled=False)
    assert len(n) == 2 and len(info.value.partial_result) == 1
    assert info.value.partial_result[0].energy == pytest.approx(whole[0].energy, abs=1e-9)


def test_cli_search_writes_the_minima_found_when_terminated(monkeypatch, tmp_path, capsys):
    import yaml

    from spinlat.cli import main

    cfg = {"structure": {"crystal": "bcc", "element": "Fe", "a": 2.8665, "repeat": [2, 2, 2], "moments": 2.2},
           "potential": [{"type": "BetheSlaterExchange", "cutoff": 3.4, "J1": 0.02726, "J2": 0.2171, "J3": 1.841},
                         {"type": "UniaxialAnisotropy", "K": 1e-3, "axis": [0, 0, 1]}],
           "search": {"starts": 5, "seed": 0, "tmax": 1e-8}, "output": str(tmp_path / "run")}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    _signal_after_kernel_call(monkeypatch, signal.SIGTERM, at=2)
    assert main(["search", str(path)]) == 128 + signal.SIGTERM
    text = (tmp_path / "run" / "minima.txt").read_text().splitlines()
    assert text[0].startswith("# interrupted after 2 of 5 starts")
    # one minimum, reached by both finished starts, with two symmetry copies (the ferromagnet along ±z)
    assert text[2].split()[-3:] == ["2", "yes", "2"]
    assert len(sl.io.read_extxyz(str(tmp_path / "run" / "minima.extxyz"))) == 1
    assert "interrupted after 2 of 5 starts" in capsys.readouterr().err


def test_an_interrupted_serial_sweep_keeps_the_values_finished():
    def fn(v):
        if v == 3:
            os.kill(os.getpid(), signal.SIGINT)  # not deferred here: raised inside fn, as a user's loop sees it
        return v * v

    with pytest.raises(KeyboardInterrupt) as info:
        sl.sweep(fn, range(6))
    assert info.value.partial_result == [0, 1, 4]
    assert sl.sweep(lambda v: v + 1, [1, 2]) == [2, 3]


def test_a_serial_sweep_keeps_the_values_finished_when_the_interrupt_came_out_of_c_code():
    """An interrupt that landed in Python code called back by C code (numba's dispatcher, h5py,
    torch) reaches fn's caller as a SystemError chained to it: sweep let it through without the
    values finished (curie_sweep, serial, lost every finished run). Now it raises the interrupt
    itself with them."""
    def fn(v):
        if v == 2:
            try:
                raise Terminated()
            except Terminated as t:
                raise SystemError("CPUDispatcher returned a result with an exception set") from t
        return v * v

    with pytest.raises(Terminated) as info:
        sl.sweep(fn, range(5))
    assert info.value.partial_result == [0, 1]
    with pytest.raises(SystemError):  # a SystemError of its own is not an interrupt
        sl.sweep(lambda v: (_ for _ in ()).throw(SystemError("bad")), [1])


# ------------------------------------------------- interrupts of work spread over processes
def _job_or_signal(pid_dir, v):
    """A sweep job: v < 100 returns at once; v ≥ 100 notes its process id in ``pid_dir`` and
    stalls, and v == 100 sends SIGTERM to the calling process once that process has collected the
    three quick results (it marks that with the file ``collected`` in ``pid_dir``) and the other
    stalled job (v == 200) has started in the second worker (its pid file): no clock, so on a
    loaded machine the signal cannot come before both workers are busy."""
    import time

    if v < 100:
        return v * v
    Path(pid_dir, f"{v}.pid").write_text(str(os.getpid()))
    if v == 100:
        ready, other = Path(pid_dir, "collected"), Path(pid_dir, "200.pid")
        guard = time.monotonic() + 600  # hang guard only
        while not (ready.exists() and other.exists()) and time.monotonic() < guard:
            time.sleep(0.01)
        os.kill(os.getppid(), signal.SIGTERM)
    time.sleep(1200)
    return -1


def _note_collected(monkeypatch, count, note):
    """Make the search module's interrupt checks call ``note()`` once the results collected from
    the workers (the dict ``_gather`` passes) number ``count``: jobs that send the signal wait for
    it, so what is kept does not depend on how fast the machine runs the jobs."""
    from spinlat import search

    real = search.check

    def checking(partial_result=None):
        if isinstance(partial_result, dict) and len(partial_result) >= count:
            note()
        return real(partial_result)

    monkeypatch.setattr(search, "check", checking)


def _gone(pid) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_an_interrupted_sweep_over_processes_keeps_the_values_finished_and_ends_its_workers(tmp_path, monkeypatch):
    """With workers=2 an interrupt kept nothing (and Ctrl-C reached the worker processes, which
    died with tracebacks); now the values finished come back as {index: result}, at once, and
    the workers running the stalled jobs are ended."""
    from spinlat import search

    search.shutdown_workers()
    _note_collected(monkeypatch, 3, (tmp_path / "collected").touch)
    with pytest.raises(Terminated) as info:
        sl.sweep(functools.partial(_job_or_signal, str(tmp_path)), [1, 2, 3, 100, 200, 4], workers=2)
    assert info.value.partial_result == {0: 1, 1: 4, 2: 9}  # the stalled jobs were not waited for
    pids = [int(p.read_text()) for p in tmp_path.glob("*.pid")]
    assert len(pids) == 2 and all(_gone(pid) for pid in pids)
    assert search._POOL is None
    assert _handlers() == (signal.default_int_handler, signal.SIG_DFL)
    assert sl.sweep(functools.partial(_job_or_signal, str(tmp_path)), [5, 6], workers=2) == [25, 36]  # a new pool
    search.shutdown_workers()


def test_a_signal_while_a_sweep_sends_its_jobs_to_processes_is_held_back_too(monkeypatch):
    """sweep over processes held Ctrl-C / SIGTERM back only once its jobs were sent: a signal
    while the pool started or the jobs were sent (seconds when spawned, longer on a loaded
    machine) was raised there (Ctrl-C: no values finished attached, the jobs already sent went on
    in the pool kept for the next call; SIGTERM: its default ended the process). Now it is held
    from before the pool starts: the jobs are stopped and the values finished come with it. The
    signal is sent as the second job is sent (no timing)."""
    from spinlat import search

    search.shutdown_workers()
    real_pool = search._pool

    def pool(workers):
        ex = real_pool(workers)
        submit, sent = ex.submit, []

        def submitting(*args, **kw):
            sent.append(1)
            if len(sent) == 2:
                os.kill(os.getpid(), signal.SIGINT)
            return submit(*args, **kw)

        monkeypatch.setattr(ex, "submit", submitting)
        return ex

    monkeypatch.setattr(search, "_pool", pool)
    values = [1, 2, 3, 4, 5]
    try:
        with pytest.raises(KeyboardInterrupt) as info:
            sl.sweep(functools.partial(math.pow, 2.0), values, workers=2)
        done = info.value.partial_result  # (before: no such attribute, raised inside the sending)
        assert isinstance(done, dict) and all(done[k] == 2.0 ** values[k] for k in done)
    finally:
        search.shutdown_workers()
    assert _handlers() == (signal.default_int_handler, signal.SIG_DFL)


def test_an_interrupted_search_on_a_scheduler_keeps_the_starts_of_the_jobs_finished(monkeypatch):
    """ground_state(scheduler=...) raised the interrupt without minima; now the starts of the
    jobs (batches) finished are merged into its InterruptedSearch, numbered as in the search."""
    distributed = pytest.importorskip("dask.distributed")
    from spinlat import search

    st, pot = _fe_search()
    whole = search.ground_state(st, pot, starts=4, seed=2, tmax=1e-8)  # starts 0-3 of the search below
    real, release, collected = search._Start.__call__, threading.Event(), threading.Event()
    _note_collected(monkeypatch, 4, collected.set)

    def stalling(self, seeds):  # 16 starts in 16 jobs: starts 0-3 run, start 4 signals once they are in, the rest stall
        if seeds[0] - 2 < 4:
            return real(self, seeds)
        if seeds[0] - 2 == 4:
            collected.wait(600)  # hang guard only
            os.kill(os.getpid(), signal.SIGINT)
        release.wait(600)  # hang guard only: set once the search has returned (60 s could run out under load, and
        return []          # a job returning [] then counted as finished)

    monkeypatch.setattr(search._Start, "__call__", stalling)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=16, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        try:
            with pytest.raises(KeyboardInterrupt) as info:
                search.ground_state(st, pot, starts=16, seed=2, tmax=1e-8, scheduler=client)
        finally:
            release.set()
    part = info.value.partial_result
    assert isinstance(part, search.InterruptedSearch) and part.finished == (0, 1, 2, 3) and part.starts == 16
    assert [(m.count, m.starts) for m in part.minima] == [(m.count, m.starts) for m in whole]
    assert part.minima[0].energy == pytest.approx(whole[0].energy, abs=1e-12)
    assert _handlers() == (signal.default_int_handler, signal.SIG_DFL)


class _StallAt(sl.potentials.Potential):
    """A potential (the Python minimiser: no spin_couplings) equal to ``inner`` that, in a worker
    process, stalls at the first evaluation of the start whose spins are ``stall``: it sends
    ``signum`` to the calling process and waits until the worker is asked to stop
    (``interrupts.pending()``); ``again``: it then sends the signal a second time and stalls for
    good (the caller must end it)."""

    def __init__(self, inner, stall, signum, again=False):
        self.inner, self.stall, self.signum, self.again = inner, np.array(stall), signum, again
        self.cutoff, self.skin, self.parent = inner.cutoff, inner.skin, os.getpid()

    def _evaluate(self, state, neighbors, forces, magnetic_forces, stress):
        import time

        if os.getpid() != self.parent and np.array_equal(state.spins, self.stall):
            os.kill(self.parent, self.signum)
            guard = time.monotonic() + 600  # hang guard only (120 s could run out under load: start 1 then finished)
            while not interrupts.pending() and time.monotonic() < guard:
                time.sleep(0.01)
            if self.again:
                os.kill(self.parent, self.signum)
                time.sleep(1200)
        return self.inner._evaluate(state, neighbors, forces, magnetic_forces, stress)


def _stalling_search(signum, again=False):
    """A search on 16 Fe spins in a field (NumPy only: worker processes, when spawned, compile
    no kernel) with a potential that stalls at start 1 (seed 3) in a worker process; the
    uninterrupted minima of the first 4 starts."""
    from spinlat import search

    st, pot = _fe_search()[0], Field([3.0, -2.0, 10.0])
    stall = search._Start(st, pot, None, {}).start(3).spins
    whole = search.ground_state(st, pot, starts=4, seed=2, tmax=1e-6)
    return st, _StallAt(pot, stall, signum, again), whole


@pytest.mark.parametrize("signum, kind", [(signal.SIGTERM, Terminated), (signal.SIGINT, KeyboardInterrupt)])
def test_an_interrupted_search_over_processes_keeps_the_finished_starts_of_the_batches_under_way(signum, kind,
                                                                                                  capfd):
    """A search over workers=2 goes in batches of starts (here 8 of 2); an interrupt ended the
    workers at once and lost the starts their batches had finished (start 0 of the batch (0, 1)
    here: gone with start 1). Now each worker is asked to end the start under way, and every
    start finished comes back in the InterruptedSearch, numbered as in the search."""
    from spinlat import search

    st, pot, whole = _stalling_search(signum)
    search.shutdown_workers()
    with pytest.raises(kind) as info:
        search.ground_state(st, pot, starts=16, seed=2, tmax=1e-6, workers=2)
    part = info.value.partial_result
    assert isinstance(part, search.InterruptedSearch) and part.starts == 16
    assert 0 in part.finished and 1 not in part.finished  # the batch (0, 1): its finished start kept
    for k in range(8):  # each batch (2j, 2j+1) kept a prefix of its starts
        assert (2 * k + 1 not in part.finished) or (2 * k in part.finished)
    by_start = {s: m for m in part.minima for s in m.starts}
    assert sorted(by_start) == list(part.finished)
    for m in whole:  # each start finished reached the minimum it reaches uninterrupted
        for s in set(m.starts) & set(part.finished):
            assert by_start[s].energy == pytest.approx(m.energy, abs=1e-8)
    assert "stopping once each worker process has stopped its start under way" in capfd.readouterr().err
    assert search._POOL is None  # its workers were asked to stop for good: ended
    assert _handlers() == (signal.default_int_handler, signal.SIG_DFL)


def test_a_second_interrupt_ends_the_workers_of_a_search_at_once_with_the_starts_they_finished(capfd, monkeypatch):
    """While the workers finish their start under way, a second signal stops at once: the
    workers are ended. They were killed with the starts their batch had finished (start 0 of the
    batch (0, 1), stalled in start 1, was lost); now they are asked to stop at once (SIGUSR2) and
    send what they finished: start 0 comes back, start 1 (under way) does not."""
    from spinlat import search

    st, pot, whole = _stalling_search(signal.SIGINT, again=True)
    search.shutdown_workers()
    # what the workers send once asked to stop at once is awaited until it is in: _HURRY_S bounds that wait
    # (2 s), and a loaded machine could take longer to deliver SIGUSR2 and send start 0 back (the wait ends as
    # soon as every job has answered; 600 s is a hang guard only)
    monkeypatch.setattr(search, "_HURRY_S", 600.0)
    with pytest.raises(KeyboardInterrupt) as info:
        search.ground_state(st, pot, starts=16, seed=2, tmax=1e-6, workers=2)
    part = info.value.partial_result
    # start 1 (its worker stalls 1200 s in it) not awaited: it would have finished; no clock needed
    assert isinstance(part, search.InterruptedSearch) and 1 not in part.finished and 0 in part.finished
    by_start = {s: m for m in part.minima for s in m.starts}
    e0 = next(m.energy for m in whole if 0 in m.starts)
    assert by_start[0].energy == pytest.approx(e0, abs=1e-8)
    assert "asked to stop at once" in capfd.readouterr().err
    assert search._POOL is None
    assert sl.sweep(functools.partial(math.pow, 2.0), [1, 2], workers=2) == [2.0, 4.0]  # a new pool
    search.shutdown_workers()


def test_annealed_starts_on_a_scheduler_are_one_job_each(monkeypatch):
    """Annealed starts (long, run one by one) went to workers in batches of starts/(4 workers):
    an interrupt lost every finished start of a batch under way (0 of 64 starts kept after 25 s
    of `spinlat search` with workers: 2). Now each is its own job."""
    distributed = pytest.importorskip("dask.distributed")
    from spinlat import search

    st, pot = _fe_search()
    real, jobs = search._Start.__call__, []

    def recording(self, seeds):
        jobs.append(tuple(seeds))
        return real(self, seeds)

    monkeypatch.setattr(search._Start, "__call__", recording)
    anneal = {"t_start": 50.0, "t_end": 5.0, "stages": 2, "sweeps": 2}
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        spread = search.ground_state(st, pot, starts=17, seed=1, tmax=1e-8, anneal=anneal, scheduler=client)
    assert sorted(jobs) == [(1 + k,) for k in range(17)]  # (before: 8 jobs of 2 starts and one of 1)
    serial = search.ground_state(st, pot, starts=17, seed=1, tmax=1e-8, anneal=anneal)
    assert [(m.count, m.starts) for m in spread] == [(m.count, m.starts) for m in serial]
    assert [m.energy for m in spread] == pytest.approx([m.energy for m in serial], abs=1e-10)


def test_workers_that_start_after_the_stop_request_are_asked_too(monkeypatch):
    """Spawned worker processes take seconds to start: a search interrupted before they had
    reported their process ids asked nobody, and then never asked them (the pool had no id
    marked as asked), so each worker ran its whole batch (measured: 7-9 s after SIGTERM instead
    of a fraction of a second). Now the pool is marked as asked and each worker that reports
    later gets SIGUSR1 on the next poll."""
    from spinlat import search

    sent, pids = [], []
    monkeypatch.setattr(search, "_signal_workers", lambda ps, signum: sent.append((sorted(ps), signum)))
    monkeypatch.setattr(search, "_worker_pids", lambda: list(pids))
    monkeypatch.setattr(search, "_POOL", (2, "spawn", None, None, [], set()))

    class Running:
        def cancel(self):
            return False

    pids.append(100)
    assert len(search._ask_pool_to_stop([Running()])) == 1  # one worker has started: asked, its job awaited
    assert sent[-1] == ([100], signal.SIGUSR1)
    pids += [101, 102]
    search._ask_pool_to_stop([])  # the next poll
    assert sent[-1] == ([101, 102], signal.SIGUSR1)
    pids.append(103)
    search._ask_pool_to_stop([])
    assert sent[-1] == ([103], signal.SIGUSR1)
    assert 101 not in (sent[-1][0])  # each asked once


def test_a_stop_while_no_worker_has_started_awaits_nothing(monkeypatch):
    """A stop that comes while every worker process is still starting up (spawned: seconds of
    imports) waited for them to start, be asked, and give up their job: 5.7 s measured. None of
    them can have begun a start: nothing is awaited (the caller then kills the pool)."""
    from spinlat import search

    monkeypatch.setattr(search, "_signal_workers", lambda ps, signum: None)
    monkeypatch.setattr(search, "_worker_pids", lambda: [])
    monkeypatch.setattr(search, "_POOL", (2, "spawn", None, None, [], set()))

    class Running:
        def cancel(self):
            return False

    assert search._ask_pool_to_stop([Running(), Running()]) == []
    assert search._ASKED in search._POOL[5]  # the pool is not reused


def test_an_annealed_start_stops_inside_its_annealing(monkeypatch, capfd):
    """An annealed start ran its whole Monte Carlo annealing (stages × sweeps, minutes on a big
    cell) before a stop was looked at. Now a stage's sweeps run in pieces with a stop looked for
    between them: no sweep after the signal, the start under way is dropped, the starts finished
    are kept, and the pieces give the bits of one MonteCarlo.run per stage."""
    from spinlat import search
    from spinlat.integrators import MonteCarlo

    st, pot = _fe_search()
    anneal = {"t_start": 50.0, "t_end": 5.0, "stages": 2, "sweeps": 6}
    whole = search.ground_state(st, pot, starts=1, seed=0, tmax=1e-8, anneal=anneal)
    real, pieces = MonteCarlo.run, []

    def run(self, state, potential, sweeps):
        pieces.append(sweeps)
        if len(pieces) == 15:  # start 1, stage 0, the 3rd piece (each start: 2 stages × 6 pieces of 1 sweep)
            os.kill(os.getpid(), signal.SIGTERM)
        return real(self, state, potential, sweeps)

    monkeypatch.setattr(MonteCarlo, "run", run)
    monkeypatch.setattr(search, "ANNEAL_LATENCY_S", 0.0)  # pieces of one sweep
    with pytest.raises(Terminated) as info:
        search.ground_state(st, pot, starts=4, seed=0, tmax=1e-8, anneal=anneal)
    assert pieces == [1] * 15  # nothing after the signal (before: the rest of the annealing, then the start)
    part = info.value.partial_result
    assert part.finished == (0,) and part.minima[0].energy == whole[0].energy  # one sweep at a time: same bits
    np.testing.assert_array_equal(part.minima[0].state.spins, whole[0].state.spins)
    assert "stopping within the start under way, which is dropped" in capfd.readouterr().err
    # one MonteCarlo.run per stage, as before: the annealed start is the same
    job = search._Start(st, pot, anneal, {})
    monkeypatch.undo()
    rng = np.random.default_rng(0)
    ref = st.copy(spins=rng.normal(size=(len(st), 3)))
    for t in np.geomspace(50.0, 5.0, 2):
        ref = MonteCarlo(float(t), seed=int(rng.integers(2**31))).run(ref, pot, 6)
    np.testing.assert_array_equal(job.start(0).spins, ref.spins)


def _slow_workers(monkeypatch, tmp_path):
    """Make the next local pool spawn worker processes whose start-up lasts until the test
    creates ``tmp_path / "release"`` (tests/_slow_worker_start.py); returns the mark a worker
    writes once through it."""
    import _slow_worker_start
    from spinlat import search

    mark = tmp_path / "started"
    monkeypatch.setenv(_slow_worker_start.MARK, str(mark))
    monkeypatch.setenv(_slow_worker_start.RELEASE, str(tmp_path / "release"))
    search.shutdown_workers()
    monkeypatch.setattr(search, "_fork_is_safe", lambda: False)
    monkeypatch.setattr(search, "_worker_start", _slow_worker_start.slow_start)
    return mark


def _signal_at_the_first_look(monkeypatch, signum):
    """Send ``signum`` to this process at the first look for a stop while jobs run in worker
    processes (the search module's first ``check`` of the results collected): by then the
    pool's processes have been started and the signal is held back. Was a timer 0.5 s after
    the call began: on a loaded machine it fired before the call had reached its
    ``deferred`` block, and SIGTERM (its default) ended the whole test process. Returns the
    list that gets the number of the pool's processes started when the signal was sent."""
    from spinlat import search

    real, starting = search.check, []

    def checking(partial_result=None):
        if isinstance(partial_result, dict) and not starting:
            starting.append(len(search._STARTED))
            os.kill(os.getpid(), signum)
        return real(partial_result)

    monkeypatch.setattr(search, "check", checking)
    return starting


@pytest.mark.parametrize("signum, kind", [(signal.SIGTERM, Terminated)])
def test_a_search_stopped_while_its_spawned_workers_start_does_not_wait_for_them(monkeypatch, tmp_path, signum,
                                                                                   kind):
    """Spawned worker processes whose start-up lasts until the test ends (a stand-in for seconds
    of imports): a SIGTERM while they started waited for them (5.7 s measured with real
    imports); now the search stops at once with no start finished, and the pool's processes are
    ended before any of them gets through its start-up (none writes the mark)."""
    from spinlat import search

    st, pot = _fe_search()[0], Field([3.0, -2.0, 10.0])
    mark = _slow_workers(monkeypatch, tmp_path)
    starting = _signal_at_the_first_look(monkeypatch, signum)
    try:
        with pytest.raises(kind) as info:
            search.ground_state(st, pot, starts=8, seed=2, tmax=1e-6, workers=2)
    finally:
        (tmp_path / "release").touch()
    assert starting == [2]  # the signal came while both worker processes were starting up
    assert not mark.exists()  # no worker's start-up (it ends only once the test is done) was awaited
    part = info.value.partial_result
    assert part.finished == () and part.starts == 8
    assert search._POOL is None
    assert _handlers() == (signal.default_int_handler, signal.SIG_DFL)


@pytest.mark.parametrize("method", ["spawn", "fork"])
def test_a_signal_that_reaches_a_worker_process_while_it_starts_is_ignored(monkeypatch, method):
    """Worker processes ignore Ctrl-C and SIGTERM (the calling process alone decides), but they
    set that up in their initialiser, after the interpreter and the imports (seconds when
    spawned, longer on a loaded machine): a terminal's Ctrl-C or a scheduler's SIGTERM to every
    process of the job in that time killed a worker (SIGTERM) or raised in its initialiser
    (Ctrl-C), the pool broke and sweep raised WorkerError ("out of memory?") instead of the
    interrupt with the values finished. Now the pool's processes are started with both signals
    blocked (the child inherits the mask) until their initialiser ignores them."""
    import _slow_worker_start
    from spinlat import search

    if method == "fork" and not search._fork_is_safe():
        pytest.skip("this process runs other threads: its workers are never forked")
    search.shutdown_workers()
    monkeypatch.setattr(search, "_fork_is_safe", lambda: method == "fork")
    monkeypatch.setattr(search, "_worker_start", _slow_worker_start.signalled_start)
    try:
        assert sl.sweep(functools.partial(math.pow, 2.0), [1, 2, 3], workers=2) == [2.0, 4.0, 8.0]
        assert search._POOL[1] == method
    finally:
        search.shutdown_workers()
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, [])  # this process's mask is as it was
    assert signal.SIGINT not in blocked and signal.SIGTERM not in blocked
    assert _handlers() == (signal.default_int_handler, signal.SIG_DFL)


_SERIAL_SWEEP = """
import os, signal, sys, time
import spinlat as sl
from spinlat.interrupts import Terminated

def work(v):
    if v == 2:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(30)
    return v * v

try:
    sl.sweep(work, [0, 1, 2, 3])
except Terminated as exc:
    print("kept", exc.partial_result)
    sys.exit(143)
"""


def test_a_serial_sweep_keeps_its_values_on_sigterm(tmp_path):
    """A serial sweep (curie_sweep without workers: hours of Monte Carlo points) stopped on
    Ctrl-C with the values finished, but a batch scheduler's SIGTERM ended the process on the
    spot (SIGTERM's default): every point finished was lost. Now SIGTERM raises Terminated
    there too, with the values finished."""
    import subprocess

    script = tmp_path / "sweep.py"
    script.write_text(_SERIAL_SWEEP)
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=600,
                         env={**os.environ, "PYTHONPATH": str(Path(sl.__file__).parent.parent)})
    assert out.returncode == 143, out.stderr  # (before: -15, killed, nothing kept)
    assert "kept [0, 1]" in out.stdout


def test_check_abandon_raises_only_inside_an_abandonable_block_and_rearm_holds_it_again():
    """The pieces of the mid-step stops: check_abandon (at model calls) raises a held-back signal
    only where the caller said its work may be dropped; rearm hands it to the caller's check."""
    with interrupts.deferred():
        os.kill(os.getpid(), signal.SIGTERM)
        interrupts.check_abandon()  # not abandonable here: nothing
        assert interrupts.pending()
        with pytest.raises(Terminated) as info:
            with interrupts.abandonable():
                interrupts.check_abandon()
        assert not interrupts.pending()
        interrupts.rearm(info.value)
        assert interrupts.pending()
        with pytest.raises(Terminated) as again:
            interrupts.check(partial_result="state reached")
        assert again.value.partial_result == "state reached"
    interrupts.rearm(KeyboardInterrupt())  # outside a deferred block: nothing is held
    assert not interrupts.pending()
    assert _handlers() == (signal.default_int_handler, signal.SIG_DFL)


def test_sigterm_raises_only_replaces_the_default_handler():
    with interrupts.sigterm_raises():
        assert signal.getsignal(signal.SIGTERM) is interrupts.raise_terminated
        with pytest.raises(Terminated):
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(1000):  # the handler runs between bytecodes
                pass
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    with interrupts.deferred():  # a run that holds it back keeps doing so
        with interrupts.sigterm_raises():
            assert signal.getsignal(signal.SIGTERM) is not interrupts.raise_terminated
    before = signal.signal(signal.SIGTERM, lambda *a: None)
    try:
        with interrupts.sigterm_raises():  # a user's handler is left alone
            assert signal.getsignal(signal.SIGTERM) is not interrupts.raise_terminated
    finally:
        signal.signal(signal.SIGTERM, before)


@pytest.mark.usefixtures("default_signal_handlers")
def test_a_sweep_stopped_while_its_spawned_workers_start_does_not_wait_for_them(monkeypatch, tmp_path):
    """sweep over workers ends its pool at once on a stop; it killed the processes that had
    reported their id and then waited (shutdown) for those still starting: their start-up (none
    gets through it now: none writes the mark)."""
    from spinlat import search

    mark = _slow_workers(monkeypatch, tmp_path)
    starting = _signal_at_the_first_look(monkeypatch, signal.SIGTERM)
    try:
        with pytest.raises(Terminated) as info:
            sl.sweep(functools.partial(math.pow, 2.0), [1, 2, 3], workers=2)
    finally:
        (tmp_path / "release").touch()
    assert starting == [2]
    assert not mark.exists()  # no worker's start-up was awaited
    assert info.value.partial_result == {} and search._POOL is None
