"""Ctrl-C and SIGTERM held back to a safe point (spinlat.interrupts) and how runs use it.

CI saw the fault this guards against: SIGTERM arrived while numba's dispatcher had called back
into Python (unpickling a constant during a neighbour-list update); the interrupt came out as a
SystemError, the CLI exited with status 1 instead of 143. Signals are sent to this very process
with os.kill: Python runs the handler before the next bytecode, so nothing here depends on timing.
"""

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
    assert "terminated (SIGTERM)" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_the_first_signal_says_on_stderr_that_the_run_will_stop(capfd):
    with pytest.raises(KeyboardInterrupt):
        with interrupts.deferred():
            os.kill(os.getpid(), signal.SIGINT)
            interrupts.check()
    err = capfd.readouterr().err
    assert "Ctrl-C received" in err and "again to stop at once" in err
