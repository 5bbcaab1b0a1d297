"""``spinlat export CONFIG --lammps DIR``: hand a config's model and run to LAMMPS.

Reads the same YAML as ``spinlat run`` (:mod:`spinlat.config`: structure, potential, optional
integrator, steps, every, seed) and writes a LAMMPS SPIN input with
:func:`spinlat.io.write_lammps`: ``DIR/in.spinlat``, ``DIR/data.spinlat``, the potential files and
``DIR/spinlat-export.json``. Then ``cd DIR && mpirun -np N lmp -in in.spinlat`` runs it.

Without an ``integrator`` in the config (or with ``--steps 0``) the input does one evaluation
(``run 0``); ``--minimize`` writes a spin relaxation with the config's ``minimize:`` options instead
(``min_style spin/lbfgs``, LAMMPS's torque tolerance = ``tmax``; spins only). An existing export in DIR is replaced only with ``--overwrite``. The written paths and
the command go to stdout; notes (e.g. LAMMPS's spin time scale) to stderr.
"""

from __future__ import annotations

import sys
import warnings

HELP = "write a LAMMPS SPIN input (data file, in.spinlat, potential files) for a config's model and run"


def add_arguments(parser) -> None:
    parser.add_argument("config", help="YAML configuration (structure, potential, integrator, steps, every)")
    parser.add_argument("--lammps", required=True, metavar="DIR", help="directory to write the LAMMPS input into")
    parser.add_argument("--steps", type=int, help="override the number of steps (default: the config's, else 0)")
    parser.add_argument("--every", type=int,
                        help="thermo and dump interval in steps (default: the config's every, else 0)")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier export in DIR")
    parser.add_argument("--minimize", action="store_true",
                        help="write a spin relaxation (the config's minimize: options, min_style spin/lbfgs, spins "
                             "only) instead of the run; --every dumps every N iterations")


def run(args) -> int:
    from .. import config as C
    from ..errors import ConfigError
    from ..io.lammps import check_exportable, write_lammps

    cfg = C.load(args.config)
    # refused before anything is read or built (an mMACE model, a large structure file)
    relax = C.section_options(cfg, "minimize") if args.minimize else None
    if relax is not None and args.steps:
        raise ConfigError(f"--steps {args.steps} with --minimize: a relaxation runs up to the minimize: section's "
                          "max_steps iterations")
    with_integrator = cfg.get("integrator") is not None and relax is None
    check_exportable([t["type"] for t in cfg["potential"]], cfg["integrator"]["type"] if with_integrator else None)
    state = C.build_structure(cfg)
    potential = C.build_potential(cfg)
    integrator = C.build_integrator(cfg) if with_integrator else None
    steps = args.steps if args.steps is not None else cfg.get("steps", 0) if integrator is not None else 0
    every = args.every if args.every is not None else cfg.get("every", 0)
    for name, value in (("steps", steps), ("every", every)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"{name}: expected a non-negative integer, got {value!r}")
    if integrator is not None:
        integrator.check(state, potential)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        ex = write_lammps(args.lammps, state, potential, integrator, steps=steps, every=every,
                          overwrite=args.overwrite, minimize=relax)
    for w in caught:
        print(f"spinlat export: note: {w.message}", file=sys.stderr)
    print(f"wrote {ex.input}")
    print(f"wrote {ex.data} ({len(state)} atoms, {len(ex.types)} atom types)")
    for p in ex.potential_files:
        print(f"wrote {p}")
    print(f"wrote {ex.metadata}")
    print(f"run:  cd {ex.directory} && {ex.command}   (or: mpirun -np N {ex.command})")
    return 0
