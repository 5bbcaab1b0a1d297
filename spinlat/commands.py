"""The workflow subcommands of the ``spinlat`` command line: run, minimize, search, analyze.

Each writes a run directory holding the config it ran, its outputs, a log and the plots.
Configs are described in :mod:`spinlat.config`; they are validated before any work starts.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path

from . import config as C
from .errors import ConfigError

log = logging.getLogger("spinlat")


def _run_dir(cfg, args, default_name):
    out = args.output or cfg.get("output") or str(Path("runs") / default_name)
    out = Path(out)
    if not out.is_absolute() and args.output is None and cfg.get("output"):
        out = Path(cfg["_base"]) / out
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"output: cannot create run directory {out} ({exc})") from None
    return out


def _setup_log(run_dir: Path):
    log.setLevel(logging.INFO)
    for h in list(log.handlers):
        log.removeHandler(h)
    fh = logging.FileHandler(run_dir / "log.txt", mode="w")
    fh.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    sh = logging.StreamHandler()
    sh.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(fh)
    log.addHandler(sh)


def _prepare(args, section, allowed):
    """Config, its ``section`` options (checked against ``allowed``), state, potential and run
    directory (with log and a copy of the config) of a minimize/search command."""
    cfg = C.load(args.config)
    opts = dict(cfg.get(section) or {})
    if set(opts) - allowed:
        raise ConfigError(f"{section}: unknown key(s) {sorted(set(opts) - allowed)}; expected some of {sorted(allowed)}")
    state = C.build_structure(cfg)
    pot = C.build_potential(cfg)
    run_dir = _run_dir(cfg, args, Path(args.config).stem)
    _setup_log(run_dir)
    _save_config(args, run_dir)
    return opts, state, pot, run_dir


def _save_config(args, run_dir):
    src = Path(args.config)
    dst = run_dir / "config.yaml"
    if src.resolve() != dst.resolve():
        shutil.copyfile(src, dst)


# --------------------------------------------------------------------------------- run
def run_args(p):
    p.add_argument("config", help="YAML run configuration (see spinlat.config)")
    p.add_argument("--output", "-o", help="run directory (default: the config's output, or runs/<config name>)")
    p.add_argument("--steps", type=int, help="override the number of steps")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run_run(args) -> int:
    """``spinlat run CONFIG``: build, validate, simulate, write trajectory, log and plot."""
    from . import analysis
    from .simulation import Simulation

    cfg = C.load(args.config)
    if args.steps is not None:
        cfg["steps"] = args.steps
    steps, every = C.check_run(cfg)
    state = C.build_structure(cfg)
    pot = C.build_potential(cfg)
    integ = C.build_integrator(cfg)
    integ.check(state, pot)
    run_dir = _run_dir(cfg, args, Path(args.config).stem)
    _setup_log(run_dir)
    _save_config(args, run_dir)
    traj = run_dir / "trajectory.h5"
    log.info("spinlat run: %s", args.config)
    log.info("state: %r", state)
    log.info("potential: %r", pot)
    log.info("integrator: %s", integ.describe())
    sim = Simulation(state, pot, integ, trajectory=str(traj), every=every,
                     progress=not args.no_progress and cfg.get("progress", True),
                     store_forces=bool(cfg.get("store_forces", False)))
    t0 = time.perf_counter()
    sim.run(steps)
    wall = time.perf_counter() - t0
    summary = analysis.summary(str(traj))
    summary["wall_s"] = wall
    summary["atom_steps_per_s"] = len(state) * steps / wall if wall > 0 else float("nan")
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    png = analysis.plot_overview(str(traj), run_dir / "overview.png")
    for k, v in summary.items():
        log.info("%-36s %s", k, f"{v:.6g}" if isinstance(v, float) else v)
    log.info("trajectory: %s", traj)
    log.info("plot: %s", png)
    return 0


# ---------------------------------------------------------------------------- minimize
_MIN_KEYS = {"spins", "positions", "cell", "magnitudes", "tmax", "fmax", "smax", "hmax", "max_steps", "method"}


def minimize_args(p):
    p.add_argument("config", help="YAML config with structure, potential and an optional minimize: section")
    p.add_argument("--output", "-o", help="run directory")


def run_minimize(args) -> int:
    """``spinlat minimize CONFIG``: relax and write the relaxed structure (extxyz) and a log."""
    from .io import write_extxyz
    from .minimize import minimize

    opts, state, pot, run_dir = _prepare(args, "minimize", _MIN_KEYS)
    out, res = minimize(state, pot, return_result=True, **opts)
    write_extxyz(run_dir / "relaxed.extxyz", [out])
    log.info("minimize: %s after %d iterations (%d evaluations)", res.reason, res.iterations, res.n_evaluations)
    log.info("energy %.8f eV (%.8f eV/atom); max torque %.3g eV, max force %.3g eV/Å", res.energy,
             res.energy / len(out), res.max_torque, res.max_force)
    return 0 if res.converged else 1


# ------------------------------------------------------------------------------ search
_SEARCH_KEYS = {"starts", "seed", "workers", "scheduler", "start_cell", "anneal", "tmax", "positions", "max_steps"}


def search_args(p):
    p.add_argument("config", help="YAML config with structure, potential and an optional search: section")
    p.add_argument("--output", "-o", help="run directory")


def run_search(args) -> int:
    """``spinlat search CONFIG``: ground-state search; writes minima.txt and the lowest minima."""
    from .io import write_extxyz
    from .search import ground_state

    opts, state, pot, run_dir = _prepare(args, "search", _SEARCH_KEYS)
    t0 = time.perf_counter()
    minima = ground_state(state, pot, **opts)
    wall = time.perf_counter() - t0
    lines = [f"{'rank':>4} {'E (eV)':>16} {'E - E0 (meV/atom)':>18} {'count':>6}"]
    for k, m in enumerate(minima):
        lines.append(f"{k:4d} {m.energy:16.8f} {(m.energy - minima[0].energy) / len(state) * 1e3:18.4f} {m.count:6d}")
    (run_dir / "minima.txt").write_text("\n".join(lines) + "\n")
    write_extxyz(run_dir / "minima.extxyz", [m.state for m in minima])
    for line in lines:
        log.info(line)
    log.info("%d distinct minima from %d starts in %.1f s", len(minima), sum(m.count for m in minima), wall)
    return 0


# ----------------------------------------------------------------------------- analyze
def analyze_args(p):
    p.add_argument("trajectory", help="HDF5 trajectory written by spinlat")
    p.add_argument("--plot", action="store_true", help="write <trajectory>.png (energies, temperature, |M|)")


def run_analyze(args) -> int:
    """``spinlat analyze TRAJ.h5 [--plot]``: print a summary (JSON) and optionally plot."""
    from . import analysis

    summary = analysis.summary(args.trajectory)
    print(json.dumps(summary, indent=2))
    if args.plot:
        png = Path(args.trajectory).with_suffix(".png")
        analysis.plot_overview(args.trajectory, png)
        print(f"plot: {png}")
    return 0


def register_all(register):
    """Add run, minimize, search and analyze to the command line."""
    register("run", "run a spin-lattice simulation from a YAML config", run_args, run_run)
    register("minimize", "relax spins/positions/cell from a YAML config", minimize_args, run_minimize)
    register("search", "search magnetic ground states from a YAML config", search_args, run_search)
    register("analyze", "summarise and plot an HDF5 trajectory", analyze_args, run_analyze)
