"""``spinlat analyze TRAJ.h5 [--plot] [--format json|text]``: print a summary of a trajectory,
optionally plot it.

The summary (:func:`spinlat.analysis.summary`) gives every mean with its standard error
(``*_error``, blocking analysis of the correlated frames), integrated autocorrelation time in
frames (``*_tau_int``) and whether the run is long enough for that error (``*_reliable``).
Monte Carlo runs are measured in sweeps; an energy drift is reported only for runs that conserve
energy (NVE, LLG without damping), the others report the mean energy and its fluctuation
(``--energy-conserving yes|no`` overrides what the file says, e.g. for converted files).
``--discard TIME`` leaves the equilibration out (fs, or sweeps); a mean whose series still drifts
is marked (``*_stationary`` false; text: NOT EQUILIBRATED). Frames not equally spaced in time (a
restart with another ``every``) are averaged on one regular grid (``frames_averaged``,
``frame_spacing``).
A trajectory continued with another integrator or potential (``sl.Simulation.restart`` with
another temperature; ``spinlat run --restart`` refuses that) holds several runs: the last one is summarised (``runs`` lists them all),
``--run K`` picks another (0 the first, −1 the last).
``--format json`` (default) prints it as JSON; ``--format text`` as lines ``name = value ± error``.
The summary and the plot's path go to stdout, errors to stderr.
"""

from __future__ import annotations

import json
from pathlib import Path

from .. import validation
from ..errors import InputError

HELP = "summarise and plot an HDF5 trajectory (means with error bars)"
_SUFFIXES = ("_error", "_tau_int", "_reliable", "_frames", "_stationary")


def add_arguments(p) -> None:
    p.add_argument("trajectory", help="HDF5 trajectory written by spinlat")
    p.add_argument("--plot", action="store_true", help="write <trajectory>.png (energies, temperature, |M|)")
    p.add_argument("--format", choices=("json", "text"), default="json",
                   help="json (default) or text: one 'name = value ± error' line per quantity")
    p.add_argument("--energy-conserving", choices=("yes", "no"),
                   help="whether the run conserved energy (drift reported) or not (mean and fluctuation); "
                        "default: from the trajectory")
    p.add_argument("--discard", type=float, default=0.0, metavar="TIME",
                   help="leave out the first TIME (fs, or sweeps for Monte Carlo) of the run, its "
                        "equilibration, from every mean, error, drift and fluctuation (default 0)")
    p.add_argument("--run", type=int, default=None, metavar="K",
                   help="a trajectory continued with another integrator or potential holds several runs: summarise "
                        "run K (0 the first, -1 the last; default the last)")


def format_summary(summary: dict) -> str:
    """Text lines ``name = value ± error (τ_int = t frames[, too short: error is a lower bound])``
    for the means of a :func:`spinlat.analysis.summary` dict, ``name = value`` for the rest."""
    lines = []
    for key, value in summary.items():
        if key.endswith(_SUFFIXES):
            continue
        if key + "_error" in summary:
            err, tau = summary[key + "_error"], summary[key + "_tau_int"]
            if err is None:
                lines.append(f"{key} = {value:.6g} (no error: fewer than 2 frames)")
                continue
            note = "" if summary[key + "_reliable"] else ", run too short: error is a lower bound"
            if key + "_frames" in summary:
                note += f", over the {summary[key + '_frames']} frames that hold it"
            if summary.get(key + "_stationary") is False:
                note += (", NOT EQUILIBRATED: the start differs from the second half by more than 4 errors "
                         "and 3σ (leave it out: spinlat analyze --discard TIME)")
            lines.append(f"{key} = {value:.6g} ± {err:.2g} (τ_int = {tau:.3g} frames{note})")
        elif value is None and key.startswith(("energy_drift", "energy_max_deviation", "total_energy_fluctuation")):
            lines.append(f"{key} = undefined (fewer than 2 frames)")
        elif key in ("frame_spacing", "frame_spacing_steps") and value is None:
            lines.append("frame_spacing = irregular (no regular grid holds the frames: every frame averaged)")
        elif key == "missing":
            lines.append(f"not in the trajectory: {', '.join(value)}")
        elif key == "runs":
            for k, r in enumerate(value):
                mark = "  <- summarised below" if k == summary.get("run") else ""
                lines.append(f"run {k}: frames {r['first_frame']}-{r['first_frame'] + r['frames'] - 1}, "
                             f"{r['integrator']}{mark}")
        else:
            lines.append(f"{key} = {value:.6g}" if isinstance(value, float) else f"{key} = {value}")
    return "\n".join(lines)


def run(args) -> int:
    from .. import analysis
    from ..io import Trajectory

    path = Path(validation.existing_file(args.trajectory, "trajectory", "trajectory"))
    with Trajectory(str(path)) as traj:
        if len(traj) == 0:
            raise InputError(f"trajectory {path} holds no frame (nothing to analyse): {traj.no_frame_reason()}")
        conserving = None if args.energy_conserving is None else args.energy_conserving == "yes"
        summary = analysis.summary(traj, energy_conserving=conserving, discard=args.discard, run=args.run)
        print(json.dumps(summary, indent=2, allow_nan=False) if args.format == "json" else format_summary(summary))
        if args.plot:
            png = path.with_suffix(".png")
            analysis.plot_overview(traj, png)
            print(f"plot: {png}")
    return 0
