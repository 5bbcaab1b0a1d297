"""``spinlat search CONFIG``: search the magnetic ground state of a config's structure.

Reads the run config's ``structure`` and ``potential`` and its ``search`` section (options of
:func:`spinlat.search.ground_state` and :func:`spinlat.minimize`, see
:data:`spinlat.config.SEARCH`). Writes ``minima.txt`` (ranked energies, the starts that
reached each minimum, whether it converged, its degeneracy: how many symmetry-equivalent copies
it has), ``minima.extxyz`` (the distinct minima, lowest first, with their moments),
``search.log`` and ``search.config.yaml`` in the run directory, next to (never over) the files
of ``spinlat run``. Ctrl-C or SIGTERM stop a search within a fraction of a second (the start under way dropped; see
:func:`spinlat.search.ground_state` for ``workers``, annealing and ``scheduler``) and write the
minima of the starts finished to ``minima.txt`` (its first line, ``# interrupted after k of n
starts ...``, says so) and ``minima.extxyz`` (status 130 / 143); one that arrives while the
results are written waits until they are whole.

Resuming: each start is saved as it finishes in ``search.starts/`` (``start-000017.npz``: its
energy, relaxed state and convergence, written atomically, so that a ``kill -9`` loses at most
the starts under way; ``search.json``: the search they belong to; made with the first start
finished, so that a search failing before leaves nothing that blocks the next attempt). ``spinlat search CONFIG
--restart`` continues an interrupted search from there: the starts finished are not run again,
the others run with their own seeds, and the minima are those of the uninterrupted search
(:func:`spinlat.search.ground_state`'s ``finished``). It refuses (ConfigError naming what
differs) when the config describes another search: another structure, potential or search
option (``starts`` may change: start k depends only on ``seed + k``; ``workers`` may too). The
directory is removed once the whole search's minima are written. A new search in a directory
holding an interrupted one is refused without ``--restart`` or ``--overwrite``.
"""

from __future__ import annotations

import time

import hashlib
import inspect
import json
import re
import shutil
from pathlib import Path

import numpy as np

from ..errors import ConfigError, FileFormatError, InputError, MissingFileError
from ..files import atomic_write, atomic_write_text
from .common import add_relaxation_arguments, log, prepare, result, writing

HELP = "search magnetic ground states from a YAML config"

#: the starts finished so far (one file each) and the search they belong to: what --restart reads
PROGRESS, IDENTITY = "search.starts", "search.json"
OUTPUTS = ("minima.txt", "minima.extxyz", "search.log", "search.config.yaml", PROGRESS)
#: search options that do not change any start's result (a resumed search may give others)
FREE_OPTIONS = ("starts", "workers", "scheduler")
_START_FILE = re.compile(r"start-(\d{6,})\.npz")


def add_arguments(p) -> None:
    add_relaxation_arguments(p, "search")
    p.add_argument("--restart", action="store_true",
                   help=f"continue the interrupted search of the run directory: the starts finished (in {PROGRESS}/) "
                        "are not run again")


def run(args) -> int:
    from ..search import ground_state

    if args.restart and args.overwrite:
        raise InputError("--restart and --overwrite exclude each other")
    opts, state, pot, run_dir = prepare(args, "search", () if args.restart else OUTPUTS, append=args.restart,
                                        hint=" (or --restart to continue an interrupted search)")
    progress = run_dir / PROGRESS
    identity = _identity(state, pot, opts)
    if args.restart:
        starts = opts.get("starts", inspect.signature(ground_state).parameters["starts"].default)
        finished = _load_progress(progress, identity, state, starts)
        log.info("search: resumed; %d of the %d starts finished before (%s)", len(finished), starts, progress)
    else:
        shutil.rmtree(progress, ignore_errors=True)  # an interrupted search replaced (--overwrite)
        finished = {}

    def record(k, r):  # the directory is made with the first start finished: a search that fails before leaves none
        if not (progress / IDENTITY).exists():
            progress.mkdir(exist_ok=True)
            atomic_write_text(progress / IDENTITY, json.dumps(identity, indent=1, sort_keys=True) + "\n")
        _save_start(progress, k, r)

    t0 = time.perf_counter()
    try:
        minima = ground_state(state, pot, finished=finished, record=record, **opts)
    except KeyboardInterrupt as exc:  # Ctrl-C / SIGTERM: the minima of the starts finished are kept
        part = getattr(exc, "partial_result", None)
        if part is not None:
            note = (f"interrupted after {len(part.finished)} of {part.starts} starts: minima of the finished starts "
                    f"only{'' if len(part.finished) < part.starts else ', near-degenerate ones not re-minimised'}")
            with writing("the minima found"):
                _write(run_dir, state, part.minima, note)
                log.warning(f"search: {note}; they are in {run_dir / 'minima.txt'} and {run_dir / 'minima.extxyz'}; "
                            f"`spinlat search {args.config} --restart` continues the search")
        raise
    wall = time.perf_counter() - t0
    with writing("the minima"):  # a signal now: written, then the command exits 130 / 143
        for line in _write(run_dir, state, minima):
            result(line)
        result(f"{len(minima)} distinct minima from {sum(m.count for m in minima)} starts in {wall:.1f} s")
        result(f"minima: {run_dir / 'minima.txt'}, {run_dir / 'minima.extxyz'}")
        shutil.rmtree(progress, ignore_errors=True)  # the whole search is written: nothing to resume
    return 0


def _identity(state, pot, opts) -> dict:
    """What makes a search the same search (JSON): the structure (SHA-256 of its arrays), the
    potential (its description and each term's parameter digest) and the search options but
    :data:`FREE_OPTIONS`."""
    h = hashlib.sha256()
    for name in ("positions", "numbers", "cell", "pbc", "spins", "moments", "masses"):
        h.update(name.encode() + np.ascontiguousarray(getattr(state, name)).tobytes())
    options = {k: v for k, v in opts.items() if k not in FREE_OPTIONS}
    return {"structure": h.hexdigest(), "potential": [repr(pot), pot.term_digests()],
            "options": json.loads(json.dumps(options, sort_keys=True, default=str))}


def _load_progress(progress: Path, identity: dict, state, starts: int) -> dict:
    """The starts an interrupted search saved in ``progress``, as ``finished`` of
    :func:`~spinlat.search.ground_state` (those with an index below ``starts``). MissingFileError
    when there is none; ConfigError naming what differs when it is another search;
    FileFormatError naming a damaged file."""
    from ..state import State

    path = progress / IDENTITY
    if not path.is_file():
        raise MissingFileError(f"--restart: {progress} holds no interrupted search (a finished search leaves none; "
                               "its minima are in minima.txt): run the search without --restart")
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise FileFormatError(f"--restart: {path} cannot be read ({exc}); start afresh with --overwrite") from None
    for key, what in (("structure", "structure"), ("potential", "potential")):
        if saved.get(key) != identity[key]:
            raise ConfigError(f"{what}: differs from the search being restarted ({path}); --restart continues the "
                              f"same search. Start a new one with --overwrite, or --output DIR")
    old, new = saved.get("options") or {}, identity["options"]
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            raise ConfigError(f"search.{key}: {new.get(key, '(default)')!r} differs from the search being restarted "
                              f"({old.get(key, '(default)')!r}, {path}); --restart continues the same search (only "
                              f"{', '.join(FREE_OPTIONS)} may change). Start a new one with --overwrite, or --output DIR")
    finished = {}
    for file in sorted(progress.iterdir()):
        m = _START_FILE.fullmatch(file.name)
        if m is None or int(m.group(1)) >= starts:
            continue
        try:
            with np.load(file) as z:
                st = State.from_trusted_arrays(*(np.array(z[k]) for k in State.__slots__))
                finished[int(m.group(1))] = (float(z["energy"]), st, bool(z["converged"]))
        except Exception as exc:  # noqa: BLE001 - numpy raises many kinds for damaged archives
            raise FileFormatError(f"--restart: {file} cannot be read ({type(exc).__name__}: {exc}); remove it (that "
                                  "start runs again) or start afresh with --overwrite") from None
        if len(st) != len(state):
            raise FileFormatError(f"--restart: {file} holds {len(st)} atoms, the structure {len(state)}")
    return finished


def _save_start(progress: Path, k: int, r) -> None:
    """Save start ``k``'s result ``(energy, State, converged)`` atomically in ``progress``."""
    energy, st, converged = r
    with atomic_write(progress / f"start-{k:06d}.npz", "wb") as fh:  # the State's fields, in its order
        np.savez(fh, energy=np.float64(energy), converged=np.bool_(converged),
                 **{name: getattr(st, name) for name in type(st).__slots__})


def _write(run_dir, state, minima, note=None) -> list:
    """Write ``minima.txt`` (the table; ``note`` as a first ``#`` line when given) and
    ``minima.extxyz``; returns the table's lines."""
    from ..io import write_extxyz

    lines = [f"{'rank':>4} {'E (eV)':>16} {'E - E0 (meV/atom)':>18} {'count':>6} {'converged':>9} {'degeneracy':>10}"]
    for k, m in enumerate(minima):
        lines.append(f"{k:4d} {m.energy:16.8f} {(m.energy - minima[0].energy) / len(state) * 1e3:18.4f} {m.count:6d} "
                     f"{'yes' if m.converged else 'NO':>9} {m.degeneracy:10d}")
    atomic_write_text(run_dir / "minima.txt", (f"# {note}\n" if note else "") + "\n".join(lines) + "\n")
    write_extxyz(run_dir / "minima.extxyz", [m.state for m in minima])
    return lines
