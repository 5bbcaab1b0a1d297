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
"""

from __future__ import annotations

import time

from ..files import atomic_write_text
from .common import add_relaxation_arguments, log, prepare, result, writing

HELP = "search magnetic ground states from a YAML config"

OUTPUTS = ("minima.txt", "minima.extxyz", "search.log", "search.config.yaml")


def add_arguments(p) -> None:
    add_relaxation_arguments(p, "search")


def run(args) -> int:
    from ..search import ground_state

    opts, state, pot, run_dir = prepare(args, "search", OUTPUTS)
    t0 = time.perf_counter()
    try:
        minima = ground_state(state, pot, **opts)
    except KeyboardInterrupt as exc:  # Ctrl-C / SIGTERM: the minima of the starts finished are kept
        part = getattr(exc, "partial_result", None)
        if part is not None:
            note = (f"interrupted after {len(part.finished)} of {part.starts} starts: minima of the finished starts "
                    f"only{'' if len(part.finished) < part.starts else ', near-degenerate ones not re-minimised'}")
            with writing("the minima found"):
                _write(run_dir, state, part.minima, note)
                log.warning(f"search: {note}; they are in {run_dir / 'minima.txt'} and {run_dir / 'minima.extxyz'}")
        raise
    wall = time.perf_counter() - t0
    with writing("the minima"):  # a signal now: written, then the command exits 130 / 143
        for line in _write(run_dir, state, minima):
            result(line)
        result(f"{len(minima)} distinct minima from {sum(m.count for m in minima)} starts in {wall:.1f} s")
        result(f"minima: {run_dir / 'minima.txt'}, {run_dir / 'minima.extxyz'}")
    return 0


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
