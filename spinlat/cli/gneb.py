"""``spinlat gneb CONFIG``: minimum-energy path and barrier between two states by the geodesic
nudged elastic band (:func:`spinlat.transitions.gneb`).

The config is a run config (``potential:``, ``output:``, ``seed:``; see :mod:`spinlat.config`) with a
``gneb:`` section; it is validated (:func:`spinlat.config.check_gneb_config`) before any work starts:

.. code-block:: yaml

    potential:
      - {type: EAM, path: Fe_mm.eam.fs}
      - {type: BetheSlaterExchange, cutoff: 3.4, J1: 0.02726, J2: 0.2171, J3: 1.841}
    gneb:
      initial: initial.extxyz            # a file (extxyz or any ASE format; first frame), or
                                         # {file: path, index: 2, pbc: [true, true, false]} (pbc:
                                         # the periodic directions, default the file's), or a
                                         # `spinlat search` result:
      final: {search: runs/search, rank: 1}   # the run directory (or its minima.extxyz), rank 0 = lowest
      images: 16                         # images including both endpoints
      climbing: true
      spins: true
      positions: false
      magnitudes: false
      tol: 1.0e-5                        # eV/rad, eV/Å, eV/μB (a number, or {spins:, positions:, magnitudes:})
      max_iterations: 10000
      spring_constant: 1.0e-3            # eV/rad²
      weights: {positions: 1.0, magnitudes: 1.0}   # rad/Å, rad/μB
      method: auto                       # auto | lbfgs | fire
      noise: 0.0                         # rad, random rotations of the starting band (seeded by seed:)
      relax_endpoints: false
      max_step: {spins: 0.1, positions: 0.05, magnitudes: 0.05}   # rad, Å, μB per optimiser step
      saddle_modes: 2                    # optional: the 2 lowest Hessian eigenvalues at the saddle
                                         # (GNEBResult.saddle_modes; one negative: a first-order saddle)
      path: old_run/path.h5              # optional starting band: a path.h5 of an earlier gneb run, made
                                         # with the same potential, images, spring_constant, weights and
                                         # moving parts (refused otherwise, naming what differs)
    output: runs/gneb                    # run directory
    seed: 0

Writes to the run directory: ``path.h5`` (spinlat HDF5 trajectory, one frame per image, the reaction
coordinate and barrier in its metadata), ``path.extxyz``, ``energy.png`` (energy along the path,
saddle marked), ``summary.json``, ``log.txt`` and a copy of the config. An existing ``path.h5`` is
never replaced unless ``--overwrite`` is given. Exit status 0 when converged, 1 otherwise. An
endpoint that is no local minimum (largest force above ``tol``) is named in a warning on stderr
and in ``log.txt`` (``relax_endpoints: true`` relaxes both first); ``summary.json`` holds the
endpoints' forces (``endpoint_forces``).
"""

from __future__ import annotations

import json
import os
import sys
import time
import warnings
from pathlib import Path

HELP = "minimum-energy path and barrier between two states (geodesic nudged elastic band)"


def add_arguments(parser):
    parser.add_argument("config", help="YAML config with potential and a gneb: section (see spinlat.cli.gneb)")
    parser.add_argument("--output", "-o", help="run directory (default: the config's output, or runs/<config name>)")
    parser.add_argument("--overwrite", action="store_true", help="replace the files of an earlier run there")
    parser.add_argument("--every", type=int, default=50, help="log every N iterations (default 50)")
    parser.add_argument("--no-progress", action="store_true",
                        help="no per-iteration lines (the result lines and log.txt's summary stay)")


def run(args) -> int:
    """Run ``spinlat gneb CONFIG``; returns 0 when the band converged, 1 otherwise."""
    from .. import config as C
    from ..errors import ConfigError
    from ..files import atomic_write_text
    from ..io import Trajectory, write_extxyz
    from ..transitions import band_changes, gneb
    from .common import save_config, writing

    path = Path(args.config)
    raw = C.read_yaml(path)
    base = path.resolve().parent
    sec = C.check_gneb_config(raw, base)
    cfg = C.load({**{k: v for k, v in raw.items() if k != "gneb"}, "_base": str(base)}, structure=False)
    cfg["_base"] = str(base)
    pot = C.build_potential(cfg)
    out = Path(args.output) if args.output else Path(cfg["output"]) if cfg.get("output") else Path("runs") / path.stem
    if not out.is_absolute() and not args.output and cfg.get("output"):
        out = Path(os.path.normpath(base / out))
    files = {name: out / name for name in ("path.h5", "path.extxyz", "energy.png", "summary.json", "log.txt")}
    if files["path.h5"].exists() and not args.overwrite:
        raise ConfigError(f"output: {files['path.h5']} exists (an earlier run); pass --overwrite or another --output")
    if "path" in sec:  # a restart continues the same band: refused before anything is written
        changed = band_changes(sec["path"], pot, **{k: v for k, v in sec.items() if k != "path"})
        if changed:
            raise ConfigError(f"gneb.path: the band in {sec['path']} was made with other parameters: "
                              f"{'; '.join(changed)}. A restart continues the same band (climbing, tol, "
                              f"max_iterations and method may change): use the recorded values, or start a new "
                              f"band from the endpoints (initial:, final:) without path:")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"output: cannot create run directory {out} ({exc})") from None
    save_config(path, out / "config.yaml")
    with open(files["log.txt"], "w") as logf:
        def log(msg, out=sys.stderr):  # diagnostics to stderr, results (out=sys.stdout) to stdout
            print(msg, file=out, flush=True)
            logf.write(msg + "\n")
            logf.flush()

        kw = {k: v for k, v in sec.items() if k not in ("initial", "final", "path", "saddle_modes")}
        initial, final = (_endpoint(sec[k], f"gneb.{k}", log) if k in sec else None for k in ("initial", "final"))
        if "path" in sec:
            with Trajectory(sec["path"]) as tr:
                kw["path"] = list(tr)
        kw.setdefault("seed", cfg.get("seed"))
        log(f"spinlat gneb: {path}")
        log(f"potential: {pot!r}")

        def progress(info):
            if not args.no_progress and info["iteration"] % max(1, args.every) == 0:
                e = info["energies"]
                log(f"iteration {info['iteration']:6d}  max force {info['max_force']:.3e}  "
                    f"highest image {(e[1:-1].max() - e[0]) * 1e3:.6f} meV  climbing {info['climbing']}")

        def save(res, wall, extra=None):
            res.write(files["path.h5"], potential=pot)
            write_extxyz(files["path.extxyz"], res.to_atoms())
            res.plot(files["energy.png"], title=path.stem)
            summary = {**res.summary(), **(extra or {}), "wall_s": wall}
            atomic_write_text(files["summary.json"], json.dumps(summary, indent=2))
            return summary

        t0 = time.perf_counter()
        try:
            with warnings.catch_warnings(record=True) as caught:  # to stderr and log.txt, as every line
                warnings.simplefilter("always")
                try:
                    res = gneb(initial, final, pot, callback=progress, **kw)
                finally:
                    for w in caught:
                        kind = "" if w.category is UserWarning else f" ({w.category.__name__})"
                        log(f"spinlat gneb: warning: {' '.join(str(w.message).split())}{kind}")
        except KeyboardInterrupt as exc:  # Ctrl-C / SIGTERM: the band so far is kept
            part = getattr(exc, "partial_result", None)
            if part is not None and part.converged:  # stopped as it converged: the path, not a band midway
                with writing("the band"):
                    save(part, time.perf_counter() - t0)
                    log(f"the band had converged when the interrupt took effect ({part.iterations} iterations, "
                        f"barrier {part.barrier:.8f} eV): it is in {files['path.h5']}")
            elif part is not None:
                with writing("the band so far"):
                    save(part, time.perf_counter() - t0)
                    log(f"interrupted at iteration {part.iterations}: the band so far is in {files['path.h5']}; "
                        f"continue from it with 'path: {files['path.h5']}' in the gneb section (and another "
                        "--output, or --overwrite)")
            raise
        wall = time.perf_counter() - t0
        with writing("the band"):  # a signal now: the band found is saved, then the command exits 130 / 143
            summary = save(res, wall)
            log(f"{res.reason} after {res.iterations} iterations ({res.n_evaluations} evaluations, {wall:.1f} s)",
                sys.stdout)
            log(f"barrier {res.barrier:.8f} eV (saddle image {res.saddle}), reverse barrier "
                f"{res.reverse_barrier:.8f} eV", sys.stdout)
            log("largest forces: " + ", ".join(f"{k} {v:.3g} {u}" for (k, v), u in zip(
                res.max_force.items(), summary["max_force_units"].values())), sys.stdout)
            for name in ("path.h5", "path.extxyz", "energy.png", "summary.json"):
                log(f"{name}: {files[name]}", sys.stdout)
        if sec.get("saddle_modes"):  # after the band is saved: an interrupt here loses only this check
            summary.update(saddle_check(res, pot, sec["saddle_modes"], log))
            with writing("summary.json"):
                atomic_write_text(files["summary.json"], json.dumps(summary, indent=2))
    return 0 if res.converged else 1


def saddle_check(res, pot, k, log) -> dict:
    """The ``k`` lowest Hessian eigenvalues at the saddle image (``GNEBResult.saddle_modes``),
    logged with what their signs mean (:func:`spinlat.transitions.saddle_verdict`); returns the
    summary entries."""
    from ..transitions import saddle_verdict

    values, _ = res.saddle_modes(pot, k=min(int(k), res.dimensions()))
    negative, verdict = saddle_verdict(values)
    line = (f"saddle image {res.saddle}: lowest Hessian eigenvalues "
            f"{', '.join(f'{v:.6g}' for v in values)} eV/rad²: {verdict}")
    log(line if negative == 1 else f"spinlat gneb: warning: {line}")  # stderr and log.txt
    return {"saddle_eigenvalues": [float(v) for v in values], "saddle_eigenvalues_unit": "eV/rad^2",
            "saddle_negative_modes": negative}


def _endpoint(spec, key, say):
    """The State of a checked endpoint ``spec`` (:func:`spinlat.config.check_gneb_config`); for
    ``{search, rank}`` a rank beyond the minima the search found is a ConfigError naming the rank
    and how many minima its ``minima.extxyz`` holds (not a frame index out of range), and a search
    that was interrupted (its ``minima.txt`` says so) is named, by ``say`` (a line for stderr and
    the log) and in that error."""
    from .. import config as C
    from ..errors import ConfigError

    note = _interrupted_search(spec["file"]) if spec.get("rank") else None
    if note:
        say(f"warning: {key}: the search in {Path(spec['file']).parent} was {note}: its minima are those of the "
            f"starts finished, rank {spec['index']} may not be what a whole search ranks so")
    try:
        return C.read_structure(spec["file"], spec["index"], key=key, pbc=spec.get("pbc"))
    except ConfigError as exc:
        if not spec.get("rank"):
            raise
        from ase.io import iread

        try:
            found = sum(1 for _ in iread(spec["file"], index=":", format="extxyz"))
        except Exception:  # noqa: BLE001 - unreadable: the first error says what is wrong
            raise exc from None
        if spec["index"] < found:
            raise
        ranks = "no minimum" if found == 0 else \
            f"{found} minim{'um' if found == 1 else 'a'} (rank{' 0' if found == 1 else f's 0 to {found - 1}'})"
        raise ConfigError(f"{key}.rank: rank {spec['index']} asked, but the search found {ranks} in {spec['file']}"
                          f"{f' (it was {note})' if note else ''}; ask a lower rank, or search with more starts"
                          ) from None


def _interrupted_search(minima_file):
    """The note ``spinlat search`` put at the top of the ``minima.txt`` next to ``minima_file``
    when it was interrupted (``interrupted after k of n starts ...``), else None."""
    table = Path(minima_file).with_name("minima.txt")
    try:
        with open(table, encoding="utf-8") as f:
            first = f.readline()
    except OSError:
        return None
    return first[1:].strip().split(":")[0] if first.startswith("# interrupted") else None
