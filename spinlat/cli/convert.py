"""``spinlat convert SOURCE TARGET [--frames SLICE]``: a spinlat HDF5 trajectory to any format ASE
writes (chosen by the extension: ``.extxyz`` for OVITO, with moments, spin vectors, moment
magnitudes, velocities and magnetic forces as per-atom columns), any file ASE reads back to a
spinlat trajectory, or an HDF5 trajectory to another with a different compression.
See :mod:`spinlat.io.conversion` for the columns and what round-trips exactly.

``--frames`` takes Python's slice syntax on frame indices (``-1``, ``100:``, ``::10``,
``5:100:5``). The number of frames and the path written go to stdout.
"""

from __future__ import annotations

import sys
import warnings

HELP = "convert a trajectory: HDF5 to extxyz (OVITO) or any ASE format, and back"


def add_arguments(p) -> None:
    p.add_argument("source", help="spinlat HDF5 trajectory (.h5), or a file ASE reads")
    p.add_argument("target", help="file to write: any ASE format by its extension (.extxyz, .xyz, .traj, "
                                  "...), or a spinlat trajectory (.h5)")
    p.add_argument("--frames", metavar="SLICE", help="frames to convert: an index or start:stop:step (default: all)")
    p.add_argument("--format", help="ASE format name of the non-HDF5 file when its extension does not tell")
    p.add_argument("--compression", default="gzip",
                   help="compression of an HDF5 target: gzip (default), a gzip level 0-9, lzf or none")
    p.add_argument("--overwrite", action="store_true", help="replace an existing target")


def run(args) -> int:
    from ..io.conversion import convert

    compression = args.compression
    if compression.lower() == "none":
        compression = None
    elif compression.isdigit():
        compression = int(compression)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        n = convert(args.source, args.target, frames=args.frames, format=args.format, compression=compression,
                    overwrite=args.overwrite)
    for w in caught:
        print(f"spinlat convert: note: {w.message}", file=sys.stderr)
    print(f"wrote {n} frame{'s' if n != 1 else ''} to {args.target}")
    return 0
