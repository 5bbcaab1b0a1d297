"""The simulation driver: integrator + potential + HDF5 trajectory + progress + safety checks.

::

    sim = sl.Simulation(state, potential, sl.integrators.SpinLatticeNVE(0.5), trajectory="out.h5",
                        every=10)
    final = sim.run(10_000)
    sim = sl.Simulation.restart("out.h5", potential, integrator)   # continue, appending
    sim.run(10_000)

Frames (DESIGN.md trajectory format) are written at step 0 and every ``every`` steps, plus the
last step of each ``run``. Before any work, ``run`` checks the integrator against the state and
potential and opens the trajectory (unwritable path → :class:`~spinlat.errors.InputError`).
The run stops with :class:`~spinlat.errors.SimulationError` when the energy or the state holds
NaN/inf, when the forces of a frame would move an atom by more than 1 Å in one step (overlapping
atoms: :attr:`Simulation.MAX_STEP_DISPLACEMENT`), or when the total energy changes by more than
``max_energy_change`` eV per atom between two frames (default 10 eV/atom: far beyond any thermostat's doing, typical of atoms crashing
into each other); every good frame written before stays in the file.

Each frame carries the integrator's :meth:`~spinlat.integrators.Integrator.checkpoint`; the
trajectory keeps the one of its last complete frame, and :meth:`Simulation.restart` hands it
back, so that a run killed and restarted gives the uninterrupted run's frames bit for bit, as
does a run split into several ``run`` calls or written with another ``every`` (see
:mod:`spinlat.integrators.base` for what is covered).

Progress and logs: with ``progress=True`` a run shows a progress bar (``tqdm.auto``: a text bar
in a terminal, a widget in a Jupyter notebook) on stderr, with the lattice temperature, the total
energy per atom and the reduced magnetisation of the last frame. When stderr is not a terminal
(a batch job writing to a file) there is no bar; the run writes thermo lines instead, like
LAMMPS's ``thermo`` output::

      Step    Time_ps    T_lat_K   T_spin_K   Epot_eV/at   Ekin_eV/at   Etot_eV/at   |M|/Σ|m|   steps/s

(Monte Carlo, whose lattice is frozen and which counts sweeps: ``Sweep T_spin_K E_eV/at
|M|/Σ|m| sweeps/s``), at the start, every ``thermo`` steps (default: about 25 lines per run, at
frame steps) and at the last step. ``thermo=N`` asks for lines every N steps always (also under
a bar, also with ``progress=False``), ``thermo=0`` for none. T_spin is the spin temperature of
Nurdin et al. (:func:`spinlat.observables.spin_temperature`; one field evaluation per line, on a
neighbour list of its own so that the run's lists and results are untouched); |M|/Σ|m| the
reduced magnetisation (:func:`spinlat.observables.reduced_magnetization`). Lines go to the
``spinlat.simulation`` logger when logging is configured (the ``spinlat`` CLI sends it to stderr
and the run's log file), else straight to stderr: never to stdout, which is left to results.

Storage: a Simulation reserves its trajectory at its first ``run`` until :meth:`Simulation.close`
(or ``with Simulation(...) as sim:``, or garbage collection): another writer on the same path, in
any process, gets :class:`~spinlat.errors.InputError` before the file is touched, during a run
and between runs. Every frame of a run is on disk when ``run`` returns, and the file is closed
(locked only against writers) until the next one: readers (:class:`~spinlat.io.Trajectory`,
h5py, h5dump) may open it; one holding HDF5's lock at the start of the next run makes that run
fail with InputError. When a flush cannot be written (disk full, file-size limit) the run stops with
:class:`~spinlat.errors.StorageError` naming the frames the file keeps; free space and restart
from it. See :mod:`spinlat.io.hdf5` for the guarantees.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import os
import sys
import time as _time
import warnings
import weakref

import numpy as np

from . import validation
from .errors import InputError, MissingFileError, SimulationError, SpinlatError
from .interrupts import abandonable, check, deferred, interrupt_cause
from .potentials.base import changed_parameters
from .state import State
from .keywords import parameters_of, refuse_other_names

#: the longest a Ctrl-C / SIGTERM waits for the integrator (seconds, about): a chunk of steps
#: longer than this runs in pieces (:meth:`Simulation.run`); a module parameter: results do not
#: depend on it (tests set it to 0, one step per piece)
SIGNAL_LATENCY_S = 1.0
#: steps in the first piece, before a rate is measured
_FIRST_PIECE = 8


def _continuation_changes(attrs, potential, integrator) -> list:
    """:meth:`Simulation.continuation_changes` from the trajectory's decoded root attributes."""
    changed = []
    for what, obj in (("potential", potential), ("integrator", integrator)):
        old = attrs.get(what)
        new = getattr(obj, "describe", lambda o=obj: repr(o))()
        if isinstance(old, str) and old and old != new:
            changed.append(f"another {what} {new} (the file records {old})")
    if not changed:  # same descriptions: are the parameters behind them the same?
        meta = attrs.get("metadata") if isinstance(attrs.get("metadata"), dict) else {}
        changed += changed_parameters(meta.get("potential_digests"), potential.term_digests())
    return changed


def _last_run_attrs(traj) -> dict:
    """The root attributes of a trajectory with ``potential``, ``integrator``, ``seed`` and
    ``metadata`` those of its last run (:attr:`spinlat.io.Trajectory.runs`): what a continuation
    continues and is compared with (the root attributes describe the first run)."""
    attrs = traj.attrs
    runs = traj.runs
    if len(runs) > 1:
        attrs.update({k: runs[-1][k] for k in ("potential", "integrator", "seed", "metadata")})
    return attrs


def _open_trajectory(path, missing: str):
    """The :class:`~spinlat.io.Trajectory` at ``path`` for a restart: MissingFileError with the
    message ``missing`` when there is no file; a file that does not open as a trajectory first
    gets :func:`~spinlat.io.hdf5.check_not_in_use` (a live run elsewhere is named as such rather
    than by how its half-written file reads)."""
    from .io import Trajectory
    from .io.hdf5 import check_not_in_use

    try:
        return Trajectory(path)
    except FileNotFoundError:
        raise MissingFileError(missing) from None
    except Exception:
        check_not_in_use(path)
        raise


@refuse_other_names()
class Simulation:
    """Run an integrator on a state and record a trajectory.

    Parameters
    ----------
    state : initial :class:`~spinlat.State` (``None`` with ``restart=True``: the last frame of
        ``trajectory``).
    potential : the :class:`~spinlat.potentials.Potential`.
    integrator : an :class:`~spinlat.integrators.Integrator` (``run(state, potential, steps)``); the
        Evaluation it leaves with the State it returns (:meth:`Integrator.evaluation_at
        <spinlat.integrators.Integrator.evaluation_at>`) is written with the frame, so the potential
        is not evaluated twice.
    trajectory : HDF5 path, or ``None`` for no file.
    every : steps between frames (> 0; default 10, and on restart the ``every`` the trajectory
        was written with, so that its frames stay evenly spaced).
    progress : show a progress bar (``tqdm.auto``; in a terminal or a Jupyter notebook), or, when
        stderr is not a terminal (batch jobs), thermo lines (module docstring).
    thermo : steps between thermo lines: None (default) for about 25 lines per run when no bar
        can be shown and ``progress`` is set, 0 for none, N > 0 for every N steps always.
    store_forces : also store forces (eV/Å) and magnetic forces (eV/μB) per frame.
    restart : continue ``trajectory`` from its last frame, appending to it (step and time go on);
        with ``state=None`` the integrator also takes over the checkpoint stored with that frame
        (see :meth:`restart`).
    overwrite : replace an existing ``trajectory`` file. Without it (and without ``restart``) an
        existing file is never touched: InputError, as ``spinlat run`` refuses without ``--overwrite``.
    max_energy_change : largest allowed |ΔE_tot| per atom between frames, eV/atom (``math.inf``
        turns the check off).
    flush_every : frames kept in memory between writes to disk.
    flush_seconds : a frame written this many seconds or more after the last write to disk is
        written at once (default 1 s, :data:`spinlat.io.hdf5.FLUSH_SECONDS`): a program reading
        the trajectory while the run goes on (``spinlat analyze``, ``sl.io.Trajectory``) sees
        every frame but those of about the last second; 0: every frame as it is written; None:
        only every ``flush_every`` frames.
    compression : filter of the trajectory's datasets when the file is created: ``"gzip"``
        (default, read by every HDF5 tool), a gzip level 0-9, ``"lzf"`` (faster, h5py only) or
        None (see :mod:`spinlat.io.hdf5`, "Compression").

    Attributes: ``state`` (current State), ``step`` (steps done, counting those of a restarted
    file), ``time`` (fs; for Monte Carlo, whose dt is None, the number of sweeps), ``evaluation``
    (potential evaluation of ``state``), ``statistics`` (the integrator's ``statistics`` — model
    calls, implicit-step iterations, unconverged steps of :class:`~spinlat.integrators.SpinLatticeNVE`
    — over the whole last :meth:`run`: the integrator's own describe only its last call, one chunk
    of at most ``every`` steps; counts are summed and ``*_per_step`` figures averaged over all the
    steps; ``{}`` for integrators that keep none).
    """

    @property
    def potential(self):
        """The potential of the next :meth:`run`. Another may be assigned between runs: the next
        run evaluates the state with it and the trajectory records its frames as a new run
        (:attr:`Trajectory.runs <spinlat.io.Trajectory.runs>`). InputError for anything but a
        spinlat Potential."""
        return self._potential

    @potential.setter
    def potential(self, potential):
        from .potentials.base import Potential

        self._potential = validation.instance(potential, "Simulation: potential", Potential,
                                              "a spinlat Potential (spinlat.potentials)")
        self.evaluation = None  # the state's energy is the new potential's
        self._last_energy = None

    @property
    def integrator(self):
        """The integrator of the next :meth:`run`. Another may be assigned (or this one's
        parameters changed, e.g. its temperature) between runs: the trajectory records the
        frames of a run with another description as a new run. InputError for anything but a
        spinlat Integrator, and at the next run for one counting time in other units (fs against
        Monte Carlo sweeps) than the trajectory."""
        return self._integrator

    @integrator.setter
    def integrator(self, integrator):
        from .integrators.base import Integrator

        self._integrator = validation.instance(integrator, "Simulation: integrator", Integrator,
                                               "a spinlat Integrator (spinlat.integrators)")

    def __init__(self, state, potential, integrator, trajectory=None, every=None, progress=True,
                 store_forces=False, restart=False, max_energy_change=10.0, flush_every=10,
                 compression="gzip", thermo=None, overwrite=False, flush_seconds=1.0):
        if every is not None:
            every = validation.integer(every, "every", minimum=1)
        if thermo is not None:
            thermo = validation.integer(thermo, "thermo", minimum=0)
        from .io.hdf5 import compression_filters

        compression_filters(compression)  # InputError now, not at the first run
        flush_every = validation.integer(flush_every, "flush_every", minimum=1)
        if flush_seconds is not None:
            flush_seconds = validation.number(flush_seconds, "flush_seconds", nonnegative=True, unit="s")
        progress = validation.boolean(progress, "progress")
        store_forces = validation.boolean(store_forces, "store_forces")
        restart = validation.boolean(restart, "restart")
        overwrite = validation.boolean(overwrite, "overwrite")
        max_energy_change = validation.number(max_energy_change, "max_energy_change", positive=True,
                                              unit="eV/atom", finite=False)
        if trajectory is not None:
            trajectory = validation.path(trajectory, "trajectory")
            if os.path.isdir(trajectory):
                raise InputError(f"trajectory {trajectory} is a directory; give the path of an HDF5 file in it "
                                 f"(e.g. {os.path.join(trajectory, 'trajectory.h5')})")
            if restart and overwrite:
                raise InputError("restart=True continues the trajectory and overwrite=True replaces it: give one")
            if not restart and not overwrite and os.path.lexists(trajectory):
                raise InputError(f"trajectory {trajectory} already exists (an earlier run?); pass restart=True to "
                                 "continue it, overwrite=True to replace it, or another path")
        self.potential = potential
        self.integrator = integrator
        self.trajectory = trajectory
        self.every = 10 if every is None else int(every)
        self.progress = validation.boolean(progress, "progress")
        self.store_forces = validation.boolean(store_forces, "store_forces")
        self.max_energy_change = max_energy_change
        self.flush_every = validation.integer(flush_every, "flush_every", minimum=1)
        self.flush_seconds = flush_seconds
        self.compression = compression
        self.thermo = thermo
        self._thermo_nl = None  # neighbour list of the spin temperature of thermo lines
        self.step = 0
        self.time = 0.0
        self.evaluation = None
        self._writer = None  # TrajectoryWriter, open from the first run until close()
        self._closer = None
        self._frames_written = 0
        self._steps_per_second = None  # measured on the integrator's calls (Simulation._advance)
        self.statistics = {}  # the integrator's statistics over the last run (see _add_statistics)
        self._append = False
        self._time_unit = None  # what the trajectory's frames count (fs or sweeps): _check_time_unit
        if restart:
            if trajectory is None:
                raise InputError("restart=True needs a trajectory path")
            from .io.hdf5 import check_not_in_use

            traj = _open_trajectory(trajectory, f"cannot restart: trajectory {trajectory} does not exist")
            with traj:
                if len(traj) == 0:
                    check_not_in_use(trajectory)  # a live run that has not flushed yet
                    raise InputError(f"cannot restart: trajectory {trajectory} holds no frame (its run stopped before "
                                     f"the first frame reached the disk); start the run afresh instead "
                                     f"(overwrite=True; spinlat run --overwrite)")
                last = traj.last()
                self.step = int(traj.array("step")[-1])
                self.time = float(traj.array("time")[-1])
                checkpoint = traj.checkpoint()
                written_by = _last_run_attrs(traj)
            self._check_continuation(trajectory, written_by, potential, integrator)
            meta = written_by.get("metadata")
            if isinstance(meta, dict) and isinstance(meta.get("time_unit"), str):
                self._time_unit = meta["time_unit"]  # an integrator assigned before the next run is checked against it
            if every is None and isinstance(meta, dict) and isinstance(meta.get("every"), int) and meta["every"] > 0:
                self.every = meta["every"]
            resumed = state is None
            state = last if resumed else state
            self._append = True
            self._frames_written = 1  # frame of the current state is in the file
            if resumed:
                self.resumed = self._restore(checkpoint, state)
        if not isinstance(state, State):
            raise InputError(f"Simulation needs a spinlat State, got {type(state).__name__}")
        if len(state) == 0:
            raise InputError("Simulation: the state has no atoms (nothing to simulate or record)")
        self.state = state
        self._last_energy = None

    #: on restart: whether the integrator took over the checkpoint stored with the last frame
    #: (its random stream, and what else it needs to continue exactly); False for a fresh start
    resumed = False

    @staticmethod
    def _check_continuation(path, attrs, potential, integrator) -> None:
        """On restart: InputError when ``integrator`` counts time in another unit than the run
        that wrote ``path`` (fs against Monte Carlo sweeps: the file's time axis would mix them);
        a UserWarning when the potential's or the integrator's description differs from the one
        the file records, or when the descriptions agree but a term's parameters (its
        :meth:`~spinlat.potentials.Potential.parameter_digest`, in the file's ``metadata`` as
        ``potential_digests``) do not, e.g. one Heisenberg J (the file's attributes keep
        describing the run that created it)."""
        from .analysis import time_unit

        meta = attrs.get("metadata") if isinstance(attrs.get("metadata"), dict) else {}
        old_unit, new_unit = meta.get("time_unit"), time_unit(integrator)
        if old_unit is not None and old_unit != new_unit:
            counts = {"fs": "time in fs", "sweep": "time in Monte Carlo sweeps"}
            raise InputError(f"cannot restart trajectory {path} with {type(integrator).__name__}: the file counts "
                             f"{counts.get(old_unit, old_unit)}, this integrator {counts.get(new_unit, new_unit)}; "
                             f"start a new trajectory from its last frame (sl.io.Trajectory(path).last())")
        changed = _continuation_changes(attrs, potential, integrator)
        if changed:
            warnings.warn(f"restarting {path} with " + " and ".join(changed) + "; the frames appended "
                          "follow the new model: the file records them as a new run (Trajectory.runs; spinlat "
                          "analyze summarises the last run, --run K another)", UserWarning, stacklevel=4)

    def _restore(self, checkpoint, state) -> bool:
        integ = self.integrator
        saved = (checkpoint or {}).get("integrator_state")
        if not isinstance(saved, dict) or saved.get("integrator") != type(integ).__name__:
            return False
        restore = getattr(integ, "restore", None)
        if restore is None:
            return False
        restore(saved, state, self.potential)
        return True

    @staticmethod
    def continuation_changes(path, potential, integrator) -> list:
        """What differs between ``potential``, ``integrator`` and those that wrote the trajectory
        ``path``: one phrase per difference (another description, or the same description with
        other parameters, e.g. a TB2J or EAM file edited since), empty when none is seen. This
        is what :meth:`restart` warns about; a caller that must not continue with another model
        (``spinlat run --restart``) refuses on it instead. Raises MissingFileError for a missing
        file, FileFormatError for one that is not a trajectory."""
        with _open_trajectory(path, f"trajectory {path} does not exist") as traj:
            attrs = _last_run_attrs(traj)
        return _continuation_changes(attrs, potential, integrator)

    @classmethod
    @refuse_other_names(extra=parameters_of("spinlat.simulation:Simulation.__init__",
                                            exclude=("state", "potential", "integrator", "trajectory", "restart")))
    def restart(cls, path, potential, integrator, **kwargs) -> "Simulation":
        """A Simulation continuing the trajectory ``path`` from its last complete frame, appending
        to it. The checkpoint stored with that frame is handed to ``integrator.restore`` when the
        integrator is of the same class as the one that wrote it: with the same seed, the random
        stream goes on where it stopped (a different seed starts a new one), so that a run killed
        and restarted gives the trajectory of the uninterrupted run, bit for bit (see the module
        docstring for which integrators). ``every`` defaults to the trajectory's own (its last run's).

        An integrator whose time counts in other units than the file's (Monte Carlo sweeps against
        fs) is refused with InputError; another potential or integrator than the ones of the file's
        last run (:attr:`spinlat.io.Trajectory.runs`) gives a UserWarning (the frames appended follow the new model; the restored
        checkpoint needs the same integrator class, else the integrator starts afresh and
        ``resumed`` is False)."""
        return cls(None, potential, integrator, trajectory=path, restart=True, **kwargs)

    # ------------------------------------------------------------------ helpers
    def _evaluate(self, state):
        """The potential's Evaluation at ``state``: the one the integrator left with it (holding
        the forces when they are stored), else computed."""
        ev = self.integrator.evaluation_at(state, self.potential, forces=self.store_forces,
                                           magnetic_forces=self.store_forces)
        if ev is None:
            ev = self.potential.compute(state, forces=True, magnetic_forces=True)
        return ev

    def _run_writer(self):
        """The trajectory writer of this Simulation: opened at the first run (which takes the
        file's lock), suspended between runs (file closed, still reserved against other writers)
        and resumed for the next, until :meth:`close`."""
        w = self._writer
        if w is not None and not w.closed:
            w.resume()
            w.begin_run(**self._run_description())  # recorded only when something changed since
            return w
        w = self._writer = self._open_writer()
        if w is not None:
            if self._closer is not None:
                self._closer.detach()
            self._closer = weakref.finalize(self, _close_at_exit, w)
        return w

    def close(self) -> None:
        """Flush and close the trajectory and release its lock (idempotent; done too when the
        Simulation is garbage-collected or the interpreter exits). A later ``run`` reopens it
        and appends. Until then no other writer can touch the file."""
        w, self._writer = self._writer, None
        if self._closer is not None:
            self._closer.detach()
            self._closer = None
        if w is not None:
            w.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _run_description(self) -> dict:
        """What the trajectory records of a run: potential, integrator, seed and metadata."""
        from .analysis import energy_conserving, time_unit

        seed = getattr(self.integrator, "seed", None)
        describe = getattr(self.potential, "describe", lambda: repr(self.potential))
        idescribe = getattr(self.integrator, "describe", lambda: repr(self.integrator))
        metadata = {"every": self.every, "time_unit": time_unit(self.integrator),
                    "energy_conserving": energy_conserving(self.integrator),
                    "moves_lattice": bool(getattr(self.integrator, "moves_lattice", True)),
                    "potential_digests": self.potential.term_digests()}
        return {"potential": describe(), "integrator": idescribe(),
                "seed": seed if isinstance(seed, (int, np.integer)) else None, "metadata": metadata}

    def _check_time_unit(self) -> None:
        """InputError before a run whose integrator counts time in other units than the
        trajectory's frames so far (an integrator assigned between runs: fs against sweeps)."""
        from .analysis import time_unit

        unit = time_unit(self.integrator)
        if self.trajectory is not None and self._time_unit is not None and unit != self._time_unit:
            counts = {"fs": "time in fs", "sweep": "time in Monte Carlo sweeps"}
            raise InputError(f"Simulation: trajectory {self.trajectory} counts {counts.get(self._time_unit, self._time_unit)}"
                             f", {type(self.integrator).__name__} {counts.get(unit, unit)}; run it in a new "
                             f"Simulation with another trajectory (from this one's state)")
        self._time_unit = unit

    def _open_writer(self):
        if self.trajectory is None:
            return None
        from .io import TrajectoryWriter

        mode = "a" if (self._append or self._frames_written) else "w"
        return TrajectoryWriter(self.trajectory, self.state, mode=mode, flush_every=self.flush_every,
                                store_forces=self.store_forces, compression=self.compression,
                                flush_seconds=self.flush_seconds, **self._run_description())

    def _check(self, state, ev):
        n = max(len(state), 1)
        e = float(ev.energy)
        if not math.isfinite(e):
            raise SimulationError(f"potential energy became {e} at step {self.step}; stopped "
                                  f"(every earlier frame is kept)")
        for name in ("positions", "velocities", "spins", "moments"):
            if not np.all(np.isfinite(getattr(state, name))):
                raise SimulationError(f"{name} hold NaN or inf at step {self.step}; stopped "
                                      f"(every earlier frame is kept)")
        self._check_forces(state, ev)
        etot = e + state.kinetic_energy()
        if self._last_energy is not None:
            jump = abs(etot - self._last_energy) / n
            if jump > self.max_energy_change:
                raise SimulationError(
                    f"total energy jumped by {jump:.3g} eV/atom (limit {self.max_energy_change} eV/atom) "
                    f"between step {self.step - self._chunk} and step {self.step}: the simulation "
                    f"exploded (time step too large or atoms too close?); every earlier frame is kept")
        self._last_energy = etot

    #: largest displacement (Å) one time step may give an atom from rest under the forces of a
    #: frame, ½ (F/m) dt²: beyond it the atoms overlap (or the time step is absurd) and the run
    #: would explode within the step, ending in a misleading error from the neighbour list
    MAX_STEP_DISPLACEMENT = 1.0

    def _check_forces(self, state, ev):
        """SimulationError when the forces of ``ev`` (if computed) would move an atom by more than
        :attr:`MAX_STEP_DISPLACEMENT` in one step of a lattice-moving integrator."""
        dt = getattr(self.integrator, "dt", None)
        forces = getattr(ev, "forces", None)
        if dt is None or forces is None or not getattr(self.integrator, "moves_lattice", True) or len(state) == 0:
            return
        from .units import FORCE_TO_ACCELERATION

        f = np.linalg.norm(forces, axis=1)
        step = 0.5 * f / state.masses * FORCE_TO_ACCELERATION * dt * dt
        i = int(np.argmax(step))
        if step[i] > self.MAX_STEP_DISPLACEMENT:
            raise SimulationError(
                f"the force on atom {i} at step {self.step} is {f[i]:.3g} eV/Å: one step of {dt} fs would move it "
                f"{step[i]:.3g} Å (atoms overlapping?); minimise the positions first (sl.minimize(..., positions=True)) "
                f"or check the structure; every earlier frame is kept")

    def _checkpoint(self):
        take = getattr(self.integrator, "checkpoint", None)
        if take is None:
            return None
        return {"integrator": type(self.integrator).__name__, **take(self.potential)}

    def _write(self, writer, state, ev):
        if writer is None:
            return
        writer.write(state, self.step, self.time, potential_energy=float(ev.energy),
                     forces=ev.forces if self.store_forces else None,
                     magnetic_forces=ev.magnetic_forces if self.store_forces else None,
                     checkpoint=self._checkpoint())
        self._frames_written += 1

    # ------------------------------------------------------------------ run
    @refuse_other_names()
    def run(self, steps: int) -> State:
        """Advance ``steps`` steps (sweeps for Monte Carlo); return the final State.

        Ctrl-C (SIGINT) and SIGTERM are held back to the end of the chunk of steps under way
        (a chunk ends at the next frame or thermo line, so at most ``every`` steps): that frame
        is written, every frame held in memory is flushed, and ``KeyboardInterrupt`` (SIGTERM:
        :class:`~spinlat.interrupts.Terminated`) is raised; a second signal stops at once, and
        the frames are flushed then too (:func:`spinlat.interrupts.deferred`). The file can be
        continued with :meth:`restart`. A chunk longer than :data:`SIGNAL_LATENCY_S` seconds
        (a large ``every`` on a large system: a batch system's grace period between SIGTERM and
        SIGKILL is often 30 s) is run in pieces that long; a signal between them ends the run at
        the chunk's start: the steps of the piece(s) done are dropped, the Simulation (state,
        step, time) stays at its last chunk, as the file. A single step longer than that (a big
        mMACE model, the implicit midpoint's several model calls per step) is abandoned at its
        next model call. The integrator is then put back as it was at the chunk's start, so
        that a later ``run`` continues with the bits of the uninterrupted run. The pieces give
        the same bits as one call (every integrator continues exactly across calls;
        tests/test_simulation.py)."""
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
            raise InputError(f"steps must be a non-negative integer, got {steps!r}")
        steps = int(steps)
        self.integrator.check(self.state, self.potential)
        self._check_time_unit()
        writer = self._run_writer()
        dt = getattr(self.integrator, "dt", None)
        bar = None
        finished = False
        with deferred(f"at the end of the chunk of steps under way, once its frame is written (a chunk longer than "
                      f"{SIGNAL_LATENCY_S:g} s stops sooner, a slower step at its next model call, their steps dropped: the "
                      f"file ends at its last frame)"):
            try:
                self._chunk = 0
                self.statistics = {}
                if self.evaluation is None:
                    ev = self.potential.compute(self.state, forces=True, magnetic_forces=True)
                    self._check(self.state, ev)
                    self.evaluation = ev
                    if self._frames_written == 0:
                        self._write(writer, self.state, ev)
                bar = self._progress_bar(steps)
                thermo = self._thermo_interval(steps, bar is not None)
                if thermo:
                    self._thermo_line(self.state, self.evaluation, header=True)
                check()
                done = 0
                state = self.state
                while done < steps:
                    chunk = min(self.every - (self.step % self.every), steps - done)
                    if thermo:
                        chunk = min(chunk, thermo - (self.step % thermo))
                    state = self._advance(state, chunk)
                    done += chunk
                    self.step += chunk
                    self.time += chunk * (dt if dt is not None else 1.0)
                    self._chunk = chunk
                    ev = self._evaluate(state)
                    self._check(state, ev)
                    self.state, self.evaluation = state, ev
                    if self.step % self.every == 0 or done == steps:
                        self._write(writer, state, ev)
                    if bar is not None:
                        bar.update(chunk)
                        if self.step % self.every == 0 or done == steps:
                            bar.set_postfix(self._postfix(state, ev), refresh=False)
                    if thermo and (self.step % thermo == 0 or done == steps):
                        self._thermo_line(state, ev, bar=bar)
                    check()  # Ctrl-C / SIGTERM held back to here: the chunk is whole, its frame written
                finished = True
            except Exception as exc:
                interrupt = interrupt_cause(exc)  # a second signal that landed inside C code
                if interrupt is None:
                    raise
                raise interrupt from None
            finally:
                if bar is not None:
                    bar.close()
                if writer is not None:
                    self._flush_writer(writer, finished)
        return self.state

    def _advance(self, state, chunk):
        """``state`` advanced ``chunk`` steps by the integrator, in pieces of about
        :data:`SIGNAL_LATENCY_S` seconds (the rate measured on the pieces before), looking for a
        held-back signal between them and, inside a step that may last longer than that (the
        speed not yet measured, or slower), before each model call
        (:func:`~spinlat.interrupts.abandonable`: a step of several slow mMACE calls stops
        between two). On a signal the pieces done and the step under way are dropped (see
        :meth:`run`) and the integrator is put back to its checkpoint at the chunk's start
        (random stream, neighbour-list reference, predictor memory), so that a later ``run`` of
        this Simulation continues with the uninterrupted run's bits."""
        start, saved = state, self._integrator_checkpoint()
        done = 0
        try:
            while done < chunk:
                rate = self._steps_per_second
                piece = chunk - done if rate is None else max(1, min(chunk - done, int(rate * SIGNAL_LATENCY_S)))
                if rate is None:
                    piece = min(piece, _FIRST_PIECE if SIGNAL_LATENCY_S > 0 else 1)
                # a step that may outlast SIGNAL_LATENCY_S (speed not yet measured, or slower) is abandoned
                # at its next model call; faster pieces are finished (their chunk and frame with them)
                slow = rate is None or rate * SIGNAL_LATENCY_S < 1
                t0 = _time.perf_counter()
                with abandonable() if slow else contextlib.nullcontext():
                    state = self.integrator.run(state, self.potential, piece)
                self._add_statistics(getattr(self.integrator, "statistics", None))
                elapsed = _time.perf_counter() - t0
                if elapsed > 0:
                    self._steps_per_second = piece / elapsed
                done += piece
                if done < chunk:
                    check()
        except BaseException as exc:
            if saved is not None and interrupt_cause(exc) is not None:
                self.integrator.restore(saved, start, self.potential)
            raise
        return state

    def _add_statistics(self, piece) -> None:
        """Fold the integrator's ``statistics`` of one call into :attr:`statistics`: integer
        counts add up, ``*_per_step`` figures are averaged weighted by the call's ``steps`` (so
        that they are the whole run's, e.g. (model calls − initial calls) / steps)."""
        if not piece or not piece.get("steps"):
            return
        total = self.statistics
        steps_before, steps = total.get("steps", 0), piece["steps"]
        for key, value in piece.items():
            if key.endswith("_per_step"):
                total[key] = (total.get(key, 0.0) * steps_before + value * steps) / (steps_before + steps)
            elif isinstance(value, (int, np.integer)) and not isinstance(value, bool):
                total[key] = total.get(key, 0) + int(value)
            else:
                total[key] = value

    def _integrator_checkpoint(self):
        """A copy of the integrator's checkpoint now (None when it keeps none), to put it back
        when the chunk under way is dropped."""
        take = getattr(self.integrator, "checkpoint", None)
        if take is None or getattr(self.integrator, "restore", None) is None:
            return None
        return copy.deepcopy(take(self.potential))

    # ------------------------------------------------------------------ progress and thermo lines
    def _progress_bar(self, steps):
        """A ``tqdm.auto`` bar on stderr when ``progress`` is set and someone watches (a terminal
        or a notebook), else None."""
        if not self.progress or steps < 2 or not _interactive():
            return None
        from tqdm.auto import tqdm

        sweeps = getattr(self.integrator, "dt", 0.0) is None
        return tqdm(total=steps, unit="sweep" if sweeps else "step", dynamic_ncols=True, smoothing=0.1,
                    file=sys.stderr, desc=type(self.integrator).__name__)

    def _thermo_interval(self, steps, bar) -> int:
        """Steps between thermo lines of a run of ``steps`` steps (0: none)."""
        if self.thermo is not None:
            return self.thermo
        if bar or not self.progress or steps == 0:
            return 0
        return self.every * max(1, round(steps / (25 * self.every)))

    def _postfix(self, state, ev) -> dict:
        from .observables import magnetization_norm

        n = max(len(state), 1)
        out = {}
        if getattr(self.integrator, "moves_lattice", True):
            out["T"] = f"{state.temperature():.1f}K"
        out["E"] = f"{(float(ev.energy) + state.kinetic_energy()) / n:.5f}eV/at"
        out["m"] = f"{magnetization_norm(state, reduced=True):.4f}"
        return out

    def _spin_temperature(self, state) -> float:
        from .neighbors import NeighborList
        from .observables import spin_temperature

        pot = self.potential
        try:
            nl = None
            if pot.cutoff > 0:
                if self._thermo_nl is None:
                    self._thermo_nl = NeighborList(pot.cutoff, getattr(pot, "skin", 0.3))
                nl = self._thermo_nl
                nl.update(state)
            return spin_temperature(state, pot, neighbors=nl)
        except (SpinlatError, NotImplementedError, AttributeError):
            return math.nan

    def _thermo_line(self, state, ev, header=False, bar=None) -> None:
        """One thermo line (module docstring) of ``state``; with ``header`` the column names
        first."""
        from .observables import magnetization_norm

        sweeps = getattr(self.integrator, "dt", 0.0) is None
        lines = []
        now = _time.perf_counter()
        if header:
            if sweeps:  # frozen lattice, no time: the energy is the potential energy
                cols = ["Sweep", "T_spin_K", "E_eV/at", "|M|/Σ|m|", "sweeps/s"]
                widths = [10, 10, 13, 10, 10]
            else:
                cols = ["Step", "Time_ps", "T_lat_K", "T_spin_K", "Epot_eV/at", "Ekin_eV/at", "Etot_eV/at",
                        "|M|/Σ|m|", "steps/s"]
                widths = [10, 11, 10, 10, 13, 13, 13, 10, 10]
            lines.append(" ".join(c.rjust(w) for c, w in zip(cols, widths)))
            self._thermo_clock = (now, self.step)
        n = max(len(state), 1)
        epot, ekin = float(ev.energy) / n, state.kinetic_energy() / n
        t0, s0 = getattr(self, "_thermo_clock", (now, self.step))
        rate = (self.step - s0) / (now - t0) if now > t0 and self.step > s0 else math.nan
        self._thermo_clock = (now, self.step)
        spin_t, m = f"{self._spin_temperature(state):10.2f}", f"{magnetization_norm(state, reduced=True):10.5f}"
        if sweeps:
            fields = [f"{self.step:10d}", spin_t, f"{epot:13.6f}", m, f"{rate:10.3g}"]
        else:
            fields = [f"{self.step:10d}", f"{self.time * 1e-3:11.4f}", f"{state.temperature():10.2f}", spin_t,
                      f"{epot:13.6f}", f"{ekin:13.6f}", f"{epot + ekin:13.6f}", m, f"{rate:10.3g}"]
        lines.append(" ".join(fields))
        for line in lines:
            _emit(line, bar)

    @staticmethod
    def _flush_writer(writer, finished):
        """Put every frame of the run on disk and suspend the writer (file closed, still reserved
        for the next run); while another error is propagating, a failure to write them becomes a
        warning instead of hiding that error."""
        if finished:
            writer.suspend()
            return
        try:
            writer.suspend()
        except SpinlatError as exc:
            warnings.warn(str(exc), stacklevel=4)

    def __repr__(self):
        return (f"Simulation({self.state!r}, {self.potential!r}, {self.integrator!r}, step={self.step}, "
                f"trajectory={self.trajectory!r})")


_log = logging.getLogger("spinlat.simulation")


def _interactive() -> bool:
    """Whether someone watches the run: stderr is a terminal, or this is a Jupyter kernel."""
    try:
        if sys.stderr is not None and sys.stderr.isatty():
            return True
    except (AttributeError, ValueError):
        pass
    shell = sys.modules.get("IPython")
    if shell is not None and "ipykernel" in sys.modules:
        try:
            ip = shell.get_ipython()
        except AttributeError:
            return False
        return ip is not None and type(ip).__name__ == "ZMQInteractiveShell"
    return False


def _emit(line, bar=None) -> None:
    """A thermo line to the ``spinlat.simulation`` logger when logging is configured for it, else
    to stderr (through the bar, if one is shown, so that it stays intact)."""
    if _log.hasHandlers() and _log.isEnabledFor(logging.INFO):
        _log.info(line)
    elif bar is not None:
        bar.write(line, file=sys.stderr)
    else:
        print(line, file=sys.stderr, flush=True)


def _close_at_exit(writer):
    """Close a Simulation's writer when the Simulation is collected or Python exits (every frame
    of its runs is on disk already: nothing is left to write)."""
    try:
        writer.close()
    except Exception:  # noqa: BLE001 - nobody left to tell
        pass
