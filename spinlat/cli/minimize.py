"""``spinlat minimize CONFIG``: relax spins, positions and/or the cell of a config's structure.

Reads the run config's ``structure`` and ``potential`` and its ``minimize`` section (options of
:func:`spinlat.minimize`, see :data:`spinlat.config.MINIMIZE`). Writes ``relaxed.extxyz`` (the
relaxed structure with its moments), ``minimize.log`` and ``minimize.config.yaml`` in the run
directory, next to (never over) the files of ``spinlat run``. Exit status 1 when the
minimisation did not converge. Ctrl-C or SIGTERM stop it at the end of the iteration under way
(spins only on linear couplings: of the compiled kernel's chunk of iterations, a fraction of a
second) and write the structure reached to ``interrupted.extxyz`` (status 130 / 143); one that
arrives while the results are written waits until they are whole.
"""

from __future__ import annotations

from .common import add_relaxation_arguments, log, prepare, result, writing

HELP = "relax spins/positions/cell from a YAML config"

OUTPUTS = ("relaxed.extxyz", "interrupted.extxyz", "minimize.log", "minimize.config.yaml")


def add_arguments(p) -> None:
    add_relaxation_arguments(p, "minimize")


def run(args) -> int:
    from ..io import write_extxyz
    from ..minimization import minimize

    opts, state, pot, run_dir = prepare(args, "minimize", OUTPUTS)
    try:
        out, res = minimize(state, pot, return_result=True, **opts)
    except KeyboardInterrupt as exc:  # Ctrl-C / SIGTERM: the structure reached is kept
        part = getattr(exc, "partial_result", None)
        with writing("the structure reached"):
            if part is not None and part.converged:  # stopped as it converged: a minimum, not a stop midway
                write_extxyz(run_dir / "relaxed.extxyz", [part.state])
                log.warning(f"minimize: the minimisation had converged when the interrupt took effect "
                            f"({part.iterations} iterations, energy {part.energy:.8f} eV, {part.residuals}): the "
                            f"relaxed structure is in {run_dir / 'relaxed.extxyz'}")
            elif part is not None:
                write_extxyz(run_dir / "interrupted.extxyz", [part.state])
                log.warning(f"minimize: interrupted after {part.iterations} iterations (energy {part.energy:.8f} eV, "
                            f"{part.residuals}); the structure reached, not a minimum, is in "
                            f"{run_dir / 'interrupted.extxyz'}: start from it to continue")
        raise
    with writing("the relaxed structure"):  # a signal now: written, then the command exits 130 / 143
        write_extxyz(run_dir / "relaxed.extxyz", [out])
        result(f"minimize: {res.reason} after {res.iterations} iterations ({res.n_evaluations} evaluations)")
        result(f"energy {res.energy:.8f} eV ({res.energy / len(out):.8f} eV/atom); {res.residuals}")
        result(f"relaxed structure: {run_dir / 'relaxed.extxyz'}")
    return 0 if res.converged else 1
