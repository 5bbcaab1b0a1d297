"""``spinlat analyze TRAJ.h5 [--plot]``: print a summary of a trajectory (JSON), optionally plot it."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import InputError

HELP = "summarise and plot an HDF5 trajectory"


def add_arguments(p) -> None:
    p.add_argument("trajectory", help="HDF5 trajectory written by spinlat")
    p.add_argument("--plot", action="store_true", help="write <trajectory>.png (energies, temperature, |M|)")


def run(args) -> int:
    from .. import analysis
    from ..io import Trajectory

    path = Path(args.trajectory)
    if not path.is_file():
        raise InputError(f"trajectory {path} does not exist" if not path.exists() else f"{path} is not a file")
    with Trajectory(str(path)) as traj:
        if len(traj) == 0:
            raise InputError(f"trajectory {path} holds no frame (nothing to analyse)")
        summary = analysis.summary(traj)
        print(json.dumps(summary, indent=2))
        if args.plot:
            png = path.with_suffix(".png")
            analysis.plot_overview(traj, png)
            print(f"plot: {png}")
    return 0
