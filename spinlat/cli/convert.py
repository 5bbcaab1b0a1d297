"""``spinlat convert SOURCE TARGET [--frames SLICE]``: a spinlat HDF5 trajectory to any format ASE
writes (chosen by the extension: ``.extxyz`` for OVITO, with moments, spin vectors, moment
magnitudes, velocities and magnetic forces as per-atom columns), any file ASE reads back to a
spinlat trajectory, or an HDF5 trajectory to another with a different compression; ``.ovf``:
the spin directions of the frames as OVF 2.0 segments (Spirit, OOMMF tools).
See :mod:`spinlat.io.conversion` for the columns and what round-trips exactly.

``spinlat convert A.h5 B.h5 OUT.h5`` joins trajectories of one system (:func:`spinlat.io.conversion.
concatenate`: each source's runs kept, a restart's repeated first frame written once).

``--frames`` takes Python's slice syntax on frame indices (``-1``, ``100:``, ``-3:``, ``::10``,
``5:100:5``). The number of frames and the path written go to stdout.

LAMMPS sources: ``--columns c_outsp[1]=sp,c_outsp[2]=spx,c_outsp[3]=spy,c_outsp[4]=spz`` renames
dump columns, ``--elements Fe,Ni`` names the element of each atom type (type 1 first); without
them a ``log.lammps`` beside the dump is read for both (its ``compute ... property/atom``,
``pair_coeff``, ``labelmap`` and ``mass`` commands). ``--pbc T,T,F`` sets the periodic
directions (a LAMMPS data file cannot say that its run was 2D; without it or a log.lammps
beside the file it is read periodic in z, with a warning).
"""

from __future__ import annotations

import sys
import warnings

from ..errors import InputError

HELP = "convert a trajectory: HDF5 to extxyz (OVITO) or any ASE format, and back"


def add_arguments(p) -> None:
    p.add_argument("source", nargs="+", help="spinlat HDF5 trajectory (.h5), or a file ASE reads; several .h5 "
                                             "files are joined into TARGET in the order given (their runs kept)")
    p.add_argument("target", help="file to write: any ASE format by its extension (.extxyz, .xyz, .traj, "
                                  "...), or a spinlat trajectory (.h5)")
    p.add_argument("--frames", metavar="SLICE", help="frames to convert: an index or start:stop:step (default: all)")
    p.add_argument("--format", help="ASE format name of the non-HDF5 file when its extension does not tell")
    p.add_argument("--compression", default="gzip",
                   help="compression of an HDF5 target: gzip (default), a gzip level 0-9, lzf or none")
    p.add_argument("--overwrite", action="store_true", help="replace an existing target")
    p.add_argument("--columns", metavar="OLD=NEW,...",
                   help="LAMMPS dump source: column renames, e.g. c_outsp[1]=sp,c_outsp[2]=spx,c_outsp[3]=spy,"
                        "c_outsp[4]=spz (default: from log.lammps beside the dump)")
    p.add_argument("--elements", metavar="EL,...",
                   help="LAMMPS source: element of each atom type, type 1 first, e.g. Fe,Ni (default: from the "
                        "file, its export metadata or log.lammps beside it)")
    p.add_argument("--pbc", metavar="T,T,F",
                   help="periodic directions of the source's frames, one per cell vector or one for all (a LAMMPS "
                        "data file of a 2D run: T,T,F; default: what the source says)")


def parse_pbc(text):
    """``"T,T,F"`` / ``"true true false"`` / ``"1,1,0"`` (or one value for all) → [bool, bool, bool];
    None stays None. InputError naming ``--pbc`` otherwise."""
    if text is None:
        return None
    words = {"t": True, "true": True, "1": True, "p": True, "f": False, "false": False, "0": False, "n": False,
             "s": False}
    items = text.replace(",", " ").lower().split()
    if len(items) not in (1, 3) or any(i not in words for i in items):
        raise InputError(f"--pbc: expected one or three of T/F (true/false, 1/0; LAMMPS's p/s/f), e.g. T,T,F, got "
                         f"{text!r}")
    return [words[i] for i in items] * (3 if len(items) == 1 else 1)


def parse_columns(text):
    """``"a=b,c=d"`` (commas or spaces) → ``{"a": "b", "c": "d"}``; None stays None."""
    if text is None:
        return None
    items = text.replace(",", " ").split()
    pairs = [item.split("=") for item in items]
    if not pairs or any(len(p) != 2 or not p[0] or not p[1] for p in pairs):
        raise InputError(f"--columns: expected OLD=NEW pairs separated by commas (e.g. c_outsp[1]=sp,"
                         f"c_outsp[2]=spx), got {text!r}")
    return dict(pairs)


def parse_elements(text):
    """``"Fe,Ni"`` (commas or spaces) → ``["Fe", "Ni"]``; None stays None."""
    if text is None:
        return None
    items = text.replace(",", " ").split()
    if not items:
        raise InputError(f"--elements: expected element symbols separated by commas (e.g. Fe,Ni), got {text!r}")
    return items


def run(args) -> int:
    from ..io.conversion import convert

    compression = args.compression
    if compression.lower() == "none":
        compression = None
    elif compression.isdigit():
        compression = int(compression)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        n = convert(args.source if len(args.source) > 1 else args.source[0], args.target, frames=args.frames, format=args.format, compression=compression,
                    overwrite=args.overwrite, columns=parse_columns(args.columns),
                    elements=parse_elements(args.elements), pbc=parse_pbc(args.pbc))
    for w in caught:
        print(f"spinlat convert: note: {w.message}", file=sys.stderr)
    print(f"wrote {n} frame{'s' if n != 1 else ''} to {args.target}")
    return 0
