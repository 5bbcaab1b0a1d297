"""Pieces the workflow subcommands share: the run directory, the refusal to replace an earlier
run's files, the log, and the copy of the config.

A run directory holds the outputs of ``spinlat run`` (``trajectory.h5``, ``summary.json``,
``overview.png``, ``log.txt``, ``config.yaml``) and, under their own names, those of
``spinlat minimize`` (``relaxed.extxyz``, ``minimize.log``, ``minimize.config.yaml``) and
``spinlat search`` (``minima.txt``, ``minima.extxyz``, ``search.log``, ``search.config.yaml``),
so that minimising or searching with a run's config never touches that run's files. No command
replaces files of an earlier one unless it is given ``--overwrite``; only the log and config copy
of a ``minimize`` or ``search`` that failed before writing its results are replaced by the next
attempt.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from pathlib import Path

from ..errors import ConfigError, InputError

log = logging.getLogger("spinlat")
#: results of a command: stdout and the log file, not stderr (see :func:`result`)
_results = logging.getLogger("spinlat.results")
_results.propagate = False


def add_output_arguments(p) -> None:
    """``--output/-o DIR`` and ``--overwrite``."""
    p.add_argument("--output", "-o", help="run directory (default: the config's output, or runs/<config name>)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the outputs of an earlier run in the run directory")


def add_relaxation_arguments(p, section) -> None:
    """The arguments of a command without progress bar that runs one YAML config (``spinlat
    minimize``, ``spinlat search``): ``config`` (structure, potential and an optional ``section``
    section), :func:`add_output_arguments` and ``--no-progress``, accepted as by run and train."""
    p.add_argument("config", help=f"YAML config with structure, potential and an optional {section}: section")
    add_output_arguments(p)
    p.add_argument("--no-progress", action="store_true",
                   help="accepted as by spinlat run and train (this command shows no progress bar)")


def run_directory(cfg, args) -> Path:
    """The run directory of a command (not created): ``--output``, else the config's
    ``output`` (relative to the config file), else ``runs/<config name>``."""
    if args.output is not None:
        return Path(args.output)
    if cfg.get("output"):
        out = Path(cfg["output"]).expanduser()
        # normpath: "examples/../runs/demo" printed as it was joined reads like a mistake
        return out if out.is_absolute() else Path(os.path.normpath(Path(cfg["_base"]) / out))
    return Path("runs") / Path(args.config).stem


def refuse_to_replace(run_dir: Path, outputs, args, hint: str = "") -> None:
    """InputError if ``run_dir`` holds one of ``outputs`` and ``args.overwrite`` is not set."""
    if getattr(args, "overwrite", False):
        return
    found = [name for name in outputs if (run_dir / name).exists()]
    if found:
        raise InputError(f"{run_dir} already holds {found[0]} from an earlier run; pass --overwrite to replace it"
                         f"{hint}, or --output DIR to write elsewhere")


def remove(run_dir: Path, names) -> None:
    """Delete the files ``names`` of ``run_dir`` that exist (outputs of the run being replaced)."""
    for name in names:
        (run_dir / name).unlink(missing_ok=True)


def make_directory(run_dir: Path) -> None:
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"output: cannot create run directory {run_dir} ({exc.strerror or exc})") from None


def setup_log(path: Path, append: bool = False) -> None:
    """Log the ``spinlat`` logger's INFO messages (diagnostics: what runs, thermo lines of
    :class:`spinlat.Simulation`) to ``path`` (with times) and to stderr; :func:`result` lines go
    to ``path`` and stdout."""
    log.setLevel(logging.INFO)
    _results.setLevel(logging.INFO)
    for logger in (log, _results):
        for h in list(logger.handlers):
            logger.removeHandler(h)
            h.close()
    fh = logging.FileHandler(path, mode="a" if append else "w", encoding="utf-8")
    fh.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    sh = logging.StreamHandler(sys.stderr)
    sh.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(fh)
    log.addHandler(sh)
    _results.addHandler(fh)


def close_log() -> None:
    """Detach and close the handlers :func:`setup_log` added (at the end of every command, so
    that a later command or library call in the same process does not write into this run's
    log, nor into a stderr that has been replaced since)."""
    for logger in (log, _results):
        for h in list(logger.handlers):
            logger.removeHandler(h)
            h.close()
        logger.setLevel(logging.NOTSET)


def result(text: str) -> None:
    """A result of the command (a summary line, a path written): to stdout, and to the log file
    when :func:`setup_log` opened one. Diagnostics go through ``log`` (stderr and the file)."""
    print(text, flush=True)
    _results.info(text)


def writing(what: str):
    """Context manager: Ctrl-C / SIGTERM held back while a command writes ``what`` (its outputs,
    e.g. "the band"; :func:`spinlat.interrupts.deferred`): the files are written whole and the
    lines that name them printed, then the interrupt is raised (status 130 / 143). A signal that
    arrived while the outputs were being written otherwise left none, or a file cut short."""
    from ..interrupts import deferred

    return deferred(f"once {what} is written")


def save_config(config_path, dst: Path) -> None:
    """Copy the config file into the run directory (a record of what ran)."""
    src = Path(config_path)
    if src.resolve() != dst.resolve():
        from ..files import atomic_path

        with atomic_path(dst) as tmp:
            shutil.copyfile(src, tmp)


def prepare(args, command: str, outputs, append: bool = False, hint: str = ""):
    """The common start of ``spinlat minimize`` / ``search``: the config, the options of its
    ``command`` section, the state, the potential and the run directory, after refusing to
    replace ``outputs`` and opening ``<command>.log`` (``append``: continuing it, for a command
    resumed) and ``<command>.config.yaml`` there."""
    from .. import config as C

    cfg = C.load(args.config)
    opts = C.section_options(cfg, command)
    run_dir = run_directory(cfg, args)
    # results only: the log and config copy of an attempt that failed before writing any result
    # must not block the next attempt (they are replaced with it)
    refuse_to_replace(run_dir, [o for o in outputs if o not in (f"{command}.log", f"{command}.config.yaml")], args,
                      hint=hint)
    state = C.build_structure(cfg)
    pot = C.build_potential(cfg)
    make_directory(run_dir)
    setup_log(run_dir / f"{command}.log", append=append)
    save_config(args.config, run_dir / f"{command}.config.yaml")
    log.info("spinlat %s: %s", command, args.config)
    log.info("state: %r", state)
    log.info("potential: %r", pot)
    return opts, state, pot, run_dir


def refuse_wrong_kind_of_file(args) -> None:
    """InputError when a command is given a trajectory for its YAML config (``spinlat run
    runs/demo/trajectory.h5``) or a YAML config for its trajectory (``spinlat analyze
    examples/demo_bccfe.yaml``, ``spinlat convert CONFIG.yaml OUT.extxyz``), naming the command that
    reads that file; other files go on to the command's own checks."""
    from ..io.hdf5 import HDF5_SIGNATURE

    config = getattr(args, "config", None)
    if config is not None and Path(config).is_file():
        with open(config, "rb") as f:
            if f.read(8) == HDF5_SIGNATURE:
                raise InputError(f"{config} is an HDF5 file (a trajectory), not a YAML config: `spinlat analyze {config}` "
                                 f"summarises a trajectory; `spinlat {args.command}` takes a YAML config such as "
                                 "examples/demo_bccfe.yaml")
    paths = [getattr(args, name, None) for name in ("trajectory", "source")]
    paths = [q for p in paths for q in (p if isinstance(p, list) else [p])]  # convert takes several sources
    for path in paths:
        if path is not None and Path(path).suffix.lower() in (".yaml", ".yml") and Path(path).is_file():
            raise InputError(f"{path} is a YAML config, not a trajectory: `spinlat run {path}` runs it and writes "
                             "trajectory.h5 in its run directory (the config's output, or runs/<config name>), "
                             f"which `spinlat {args.command}` reads")
