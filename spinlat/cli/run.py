"""``spinlat run CONFIG``: build, validate, simulate; write the trajectory, a log, a summary and a plot.

The run directory gets ``trajectory.h5``, ``log.txt``, ``config.yaml`` (a copy of the config),
``summary.json`` and ``overview.png``. A directory that already holds a trajectory is never
replaced silently: ``--restart`` continues that run from its last frame up to the config's
``steps`` (the total, counting the steps already done; the potential, integrator, seed,
``every`` and ``store_forces`` must be those of the run, and the files the potential reads —
EAM tables, TB2J files, mMACE models — must hold what they held when the run started:
``inputs.json`` keeps their SHA-256), ``--overwrite`` replaces it (the replaced outputs wait in
``.replaced`` while the new run runs: put back if it stops before its first frame is on disk,
removed once it ends or stops later; a run killed with SIGKILL leaves them there, and the next
``--overwrite`` replaces them).

Output: diagnostics (config, state, potential, integrator, the progress bar on a terminal or
thermo lines every ``thermo`` steps in a batch job, warnings) go to stderr; the results (the
summary as ``name = value ± error`` lines, then the paths written) go to stdout; ``log.txt``
gets both, with times. Monte Carlo runs count sweeps (``steps`` are sweeps) and report no
energy drift; neither does any thermostatted run (see :func:`spinlat.analysis.summary`).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from .. import config as C
from .. import validation
from ..errors import ConfigError, InputError, MissingFileError
from ..files import atomic_write_text
from ..interrupts import interrupt_cause
from .analyze import format_summary
from .common import (add_output_arguments, log, make_directory, refuse_to_replace, result, run_directory,
                     save_config, setup_log)

HELP = "run a spin-lattice simulation from a YAML config"

TRAJECTORY, LOG, CONFIG, SUMMARY, PLOT = "trajectory.h5", "log.txt", "config.yaml", "summary.json", "overview.png"
INPUTS = "inputs.json"   # SHA-256 of the files the potential reads, checked by --restart
REPLACED = ".replaced"   # --overwrite: the replaced outputs, kept while the new run runs (see above)
#: config keys a restart must share with the run it continues
RESTART_KEYS = ("potential", "integrator", "seed", "every", "store_forces")


def add_arguments(p) -> None:
    p.add_argument("config", help="YAML run configuration (see spinlat.config)")
    add_output_arguments(p)
    p.add_argument("--restart", action="store_true",
                   help="continue the run in the run directory from its last frame up to the config's steps")
    p.add_argument("--steps", type=int, help="override the config's number of steps (with --restart: the total)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (nor automatic thermo lines)")
    p.add_argument("--thermo", type=int, metavar="N",
                   help="a thermo line every N steps in the log (overrides the config's thermo; 0: none)")


def _canonical(cfg, keys) -> dict:
    return {k: json.loads(json.dumps(cfg.get(k), sort_keys=True, default=lambda a: a.tolist())) for k in keys}


def _check_restart_config(cfg, run_dir: Path) -> None:
    """ConfigError if the config differs from the saved one of the run in a key that changes the run."""
    saved = run_dir / CONFIG
    if not saved.is_file():
        return
    try:
        old = C.load(saved)
    except ConfigError:
        return  # a damaged copy: the trajectory is what counts
    a, b = _canonical(old, RESTART_KEYS), _canonical(cfg, RESTART_KEYS)
    differ = [k for k in RESTART_KEYS if a[k] != b[k]]
    if differ:
        raise ConfigError(f"{differ[0]}: differs from the run being restarted ({saved}); a restart continues the "
                          f"same run (only steps may change). For a new run from its last frame use "
                          f"structure: {{file: {run_dir / TRAJECTORY}}} and another --output")


def _input_digests(cfg) -> dict:
    from ..files import file_digest

    return {key: {"path": str(p), "sha256": file_digest(p)} for key, p in C.potential_files(cfg).items()}


def _check_restart_inputs(digests: dict, run_dir: Path) -> None:
    """ConfigError if a file the potential reads changed since the run started (a retrained
    model, an edited EAM table): the restart would continue with another potential."""
    try:
        old = json.loads((run_dir / INPUTS).read_text())
    except (OSError, ValueError):
        return  # a run from before inputs.json, or a damaged copy: nothing to compare
    for key, now in digests.items():
        then = old.get(key) if isinstance(old, dict) else None
        if isinstance(then, dict) and then.get("sha256") not in (None, now["sha256"]):
            raise ConfigError(f"{key}: {now['path']} is not the file the run being restarted used (its content "
                              f"changed since; {run_dir / INPUTS} holds the SHA-256 of the original); a restart "
                              f"continues the same run. Restore the file, or start a new run from the last frame "
                              f"with structure: {{file: {run_dir / TRAJECTORY}}} and another --output")


def _frames(path):
    """(number of frames, last step) of the trajectory ``path``; (0, None) when it does not exist."""
    from ..io import Trajectory

    if not Path(path).exists():
        return 0, None
    with Trajectory(str(path)) as tr:
        steps = tr.array("step")
    return len(steps), (int(steps[-1]) if len(steps) else None)


def _report_kept(traj, before, step="step") -> None:
    """Say on stderr (and in the log) what an interrupted run left in ``traj`` (``before``: its
    frames when the run started; ``step``: "step" or "sweep"): the frames on disk and how to
    continue, or that there is none."""
    from ..errors import SpinlatError

    try:
        n, last = _frames(traj)
    except (OSError, SpinlatError) as exc:
        log.warning("run: interrupted; %s cannot be read (%s)", traj, exc)
        return
    if n == 0:
        log.warning("run: interrupted before the first frame was written: nothing to continue; run it again")
    else:
        log.warning("run: interrupted; %s holds %d frames up to %s %d (%d written by this run): --restart "
                    "continues from the last", traj, n, step, last, n - before)


def run(args) -> int:
    from .. import analysis
    from ..simulation import Simulation

    if args.restart and args.overwrite:
        raise InputError("--restart and --overwrite exclude each other")
    cfg = C.load(args.config)
    if args.steps is not None:
        cfg["steps"] = validation.integer(args.steps, "--steps", minimum=0)
    steps, every = C.check_run(cfg)
    run_dir = run_directory(cfg, args)
    traj = run_dir / TRAJECTORY
    if args.restart and not traj.exists():
        raise MissingFileError(f"--restart: {traj} does not exist (no run to continue)")
    if not args.restart:
        refuse_to_replace(run_dir, [TRAJECTORY], args, hint=" or --restart to continue it")
    pot = C.build_potential(cfg)
    integ = C.build_integrator(cfg)
    progress = not args.no_progress and cfg["progress"]
    thermo = cfg["thermo"] if args.thermo is None else validation.integer(args.thermo, "--thermo", minimum=0)
    options = dict(every=every, progress=progress, store_forces=cfg["store_forces"], thermo=thermo,
                   compression=cfg["compression"], flush_seconds=cfg["flush_seconds"])
    digests = _input_digests(cfg)
    if args.restart:
        _check_restart_config(cfg, run_dir)
        _check_restart_inputs(digests, run_dir)
        changed = Simulation.continuation_changes(str(traj), pot, integ)
        if changed:  # the same config, so a file the potential reads has changed since
            raise ConfigError(f"potential: the run being restarted ({traj}) was made with another model: "
                              f"{'; '.join(changed)}; a file the potential reads changed since. A restart "
                              f"continues the same run: put the file back, or for a new run from its last "
                              f"frame use structure: {{file: {traj}}} and another --output")
        sim = Simulation.restart(str(traj), pot, integ, **options)
        state = sim.state
        integ.check(state, pot)
    else:
        state = C.build_structure(cfg)
        integ.check(state, pot)
    make_directory(run_dir)
    # --overwrite: the outputs replaced are set aside while the new run runs, put back if it stops
    # before its first frame is on disk (Ctrl-C while the kernels compile, an error in its set-up)
    replaced = _set_aside(run_dir) if args.overwrite else None
    try:
        todo, wall = _start(args, run_dir, traj, state, pot, integ, steps, digests, options,
                            sim if args.restart else None)
    except BaseException:
        _put_back(run_dir, replaced, traj)
        raise
    if replaced is not None:   # the run ended: what it replaced goes
        import shutil

        shutil.rmtree(replaced, ignore_errors=True)
    return _finish(run_dir, traj, state, integ, todo, wall)


def _start(args, run_dir, traj, state, pot, integ, steps, digests, options, sim):
    """Write the run's log, config and inputs, and run it (``sim``: the Simulation of a restart, or
    None); returns (steps run, wall-clock seconds)."""
    from .. import analysis
    from ..simulation import Simulation

    setup_log(run_dir / LOG, append=args.restart)
    save_config(args.config, run_dir / CONFIG)
    if not args.restart or not (run_dir / INPUTS).exists():
        atomic_write_text(run_dir / INPUTS, json.dumps(digests, indent=1))
    log.info("spinlat run: %s%s", args.config, " (restart)" if args.restart else "")
    log.info("state: %r", state)
    log.info("potential: %r", pot)
    log.info("integrator: %s", integ.describe())
    step = "sweep" if analysis.time_unit(integ) == "sweep" else "step"
    if args.restart:
        todo = max(steps - sim.step, 0)
        if sim.step > steps:
            log.info("restart: %s is at %s %d, past steps: %d; nothing to run (raise steps to continue)",
                     traj, step, sim.step, steps)
        else:
            log.info("restart from %s %d of %s; %d %ss to reach %d", step, sim.step, traj, todo, step, steps)
    else:
        sim = Simulation(state, pot, integ, trajectory=str(traj), **options)
        todo = steps
    t0 = time.perf_counter()
    before = _frames(traj)[0] if args.restart else 0
    try:
        with sim:  # releases the trajectory (lock, file) before the analysis reads it
            sim.run(todo)
    except BaseException as exc:  # Ctrl-C / SIGTERM (perhaps inside C code): say what is on disk
        if interrupt_cause(exc) is not None:
            _report_kept(traj, before, step)
        raise
    return todo, time.perf_counter() - t0


def _set_aside(run_dir):
    """Move the outputs of the run that ``--overwrite`` replaces into ``run_dir/.replaced``."""
    import os

    backup = run_dir / REPLACED
    backup.mkdir(exist_ok=True)
    for name in (TRAJECTORY, SUMMARY, PLOT, LOG, CONFIG, INPUTS):
        if (run_dir / name).exists():
            os.replace(run_dir / name, backup / name)
    return backup


def _put_back(run_dir, backup, traj):
    """Drop the outputs set aside by :func:`_set_aside` once the new run has a frame in ``traj``;
    otherwise (it stopped before its first frame reached the disk) put them back in place."""
    import os
    import shutil

    if backup is None or not backup.exists():
        return
    try:
        written = _frames(traj)[0]
    except Exception:  # noqa: BLE001 - an unreadable new file holds nothing to keep
        written = 0
    if written:
        shutil.rmtree(backup, ignore_errors=True)
        return
    for name in os.listdir(backup):
        os.replace(backup / name, run_dir / name)
    backup.rmdir()
    log.warning("run: stopped before its first frame; the outputs --overwrite was to replace are back in %s",
                run_dir)


def _finish(run_dir, traj, state, integ, todo, wall) -> int:
    """Write the summary and the plot of the run that ended; print the results."""
    from .. import analysis

    step = "sweep" if analysis.time_unit(integ) == "sweep" else "step"
    summary = analysis.summary(str(traj))
    rate = f"atom_{step}s_per_s"
    if todo > 0 or not (run_dir / SUMMARY).exists():
        summary["wall_s"] = wall
        summary[rate] = len(state) * todo / wall if todo > 0 and wall > 0 else float("nan")
    else:  # a restart of a finished run: nothing ran, the last run's timing stays
        try:
            previous = json.loads((run_dir / SUMMARY).read_text())
        except (OSError, ValueError):
            previous = {}
        summary.update({k: previous[k] for k in ("wall_s", rate) if k in previous})
    atomic_write_text(run_dir / SUMMARY, json.dumps(summary, indent=2))
    png = analysis.plot_overview(str(traj), run_dir / PLOT)
    result(format_summary(summary))
    result(f"trajectory: {traj}")
    result(f"summary: {run_dir / SUMMARY}")
    result(f"plot: {png}")
    return 0
