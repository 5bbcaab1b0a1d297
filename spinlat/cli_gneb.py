"""``spinlat gneb CONFIG``: minimum-energy path and barrier between two states by the geodesic
nudged elastic band (:func:`spinlat.transitions.gneb`).

The config is a run config (``potential:``, ``output:``, ``seed:``; see :mod:`spinlat.config`) with a
``gneb:`` section; it is validated (:func:`check_gneb_config`) before any work starts:

.. code-block:: yaml

    potential:
      - {type: EAM, path: Fe_mm.eam.fs}
      - {type: BetheSlaterExchange, cutoff: 3.4, J1: 0.02726, J2: 0.2171, J3: 1.841}
    gneb:
      initial: initial.extxyz            # a file (extxyz or any ASE format; first frame), or
                                         # {file: path, index: 2}, or a `spinlat search` result:
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
      path: old_run/path.h5              # optional starting band: a path.h5 of an earlier gneb run
    output: runs/gneb                    # run directory
    seed: 0

Writes to the run directory: ``path.h5`` (spinlat HDF5 trajectory, one frame per image, the reaction
coordinate and barrier in its metadata), ``path.extxyz``, ``energy.png`` (energy along the path,
saddle marked), ``summary.json``, ``log.txt`` and a copy of the config. An existing ``path.h5`` is
never replaced unless ``--overwrite`` is given. Exit status 0 when converged, 1 otherwise.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from .errors import ConfigError

#: keys of the gneb: section → (type, what is expected)
_KEYS = {"initial": "a state: file path, {file, index} or {search, rank}",
         "final": "a state: file path, {file, index} or {search, rank}",
         "images": int, "climbing": bool, "spins": bool, "positions": bool, "magnitudes": bool,
         "tol": "a positive number or {spins, positions, magnitudes}", "max_iterations": int,
         "spring_constant": float, "weights": "{positions: rad/Å, magnitudes: rad/μB}",
         "method": "auto, lbfgs or fire", "noise": float, "relax_endpoints": bool,
         "path": "a path.h5 of an earlier gneb run", "climb_after": float, "memory": int}


def _abs(base, p):
    q = Path(p)
    return str(q if q.is_absolute() else Path(base) / q)


def _state_spec(value, key, base):
    if isinstance(value, str):
        return {"file": _abs(base, value), "index": 0}
    if isinstance(value, dict) and set(value) <= {"file", "index"} and "file" in value:
        idx = value.get("index", 0)
        if not isinstance(idx, int) or isinstance(idx, bool):
            raise ConfigError(f"gneb.{key}.index: expected an integer frame index, got {idx!r}")
        return {"file": _abs(base, value["file"]), "index": idx}
    if isinstance(value, dict) and set(value) <= {"search", "rank"} and "search" in value:
        rank = value.get("rank", 0)
        if not isinstance(rank, int) or isinstance(rank, bool) or rank < 0:
            raise ConfigError(f"gneb.{key}.rank: expected a non-negative integer (0 = lowest minimum), got {rank!r}")
        p = Path(_abs(base, value["search"]))
        return {"file": str(p / "minima.extxyz" if p.is_dir() else p), "index": rank}
    raise ConfigError(f"gneb.{key}: expected {_KEYS[key]}, got {value!r}")


def check_gneb_config(cfg: dict, base=".") -> dict:
    """Validate the ``gneb:`` section of a config (the dict of the whole config); returns the
    normalised section: paths absolute (relative ones are taken from ``base``), endpoints as
    ``{"file", "index"}``, every option checked for its type. Raises ConfigError naming the key."""
    sec = cfg.get("gneb")
    if not isinstance(sec, dict):
        raise ConfigError("gneb: missing or not a mapping (the section with initial, final and the GNEB options)")
    unknown = set(sec) - set(_KEYS)
    if unknown:
        raise ConfigError(f"gneb: unknown key(s) {sorted(unknown)}; expected some of {sorted(_KEYS)}")
    out = {}
    for key in ("initial", "final"):
        if key not in sec and "path" not in sec:
            raise ConfigError(f"gneb.{key}: missing ({_KEYS[key]})")
        if key in sec:
            out[key] = _state_spec(sec[key], key, base)
    for key, kind in _KEYS.items():
        if key not in sec or key in ("initial", "final"):
            continue
        v = sec[key]
        if kind is bool and not isinstance(v, bool):
            raise ConfigError(f"gneb.{key}: expected true or false, got {v!r}")
        if kind is int and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
            raise ConfigError(f"gneb.{key}: expected a positive integer, got {v!r}")
        if kind is float and (not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0):
            raise ConfigError(f"gneb.{key}: expected a non-negative number, got {v!r}")
        out[key] = v
    if "images" in out and out["images"] < 3:
        raise ConfigError(f"gneb.images: expected at least 3 (both endpoints included), got {out['images']}")
    tol = sec.get("tol")
    if tol is not None and not ((isinstance(tol, (int, float)) and not isinstance(tol, bool) and tol > 0) or (
            isinstance(tol, dict) and set(tol) <= {"spins", "positions", "magnitudes"} and all(
            isinstance(x, (int, float)) and not isinstance(x, bool) and x > 0 for x in tol.values()))):
        raise ConfigError(f"gneb.tol: expected {_KEYS['tol']}, got {tol!r}")
    w = sec.get("weights")
    if w is not None and not (isinstance(w, dict) and set(w) <= {"positions", "magnitudes"} and all(
            isinstance(x, (int, float)) and not isinstance(x, bool) and x > 0 for x in w.values())):
        raise ConfigError(f"gneb.weights: expected {_KEYS['weights']} (positive numbers), got {w!r}")
    if sec.get("method", "auto") not in ("auto", "lbfgs", "fire"):
        raise ConfigError(f"gneb.method: expected auto, lbfgs or fire, got {sec['method']!r}")
    if "path" in sec:
        if not isinstance(sec["path"], str):
            raise ConfigError(f"gneb.path: expected {_KEYS['path']}, got {sec['path']!r}")
        out["path"] = _abs(base, sec["path"])
        if not Path(out["path"]).exists():
            raise ConfigError(f"gneb.path: file {out['path']} does not exist")
    for key in ("initial", "final"):
        if key in out and not Path(out[key]["file"]).exists():
            raise ConfigError(f"gneb.{key}: file {out[key]['file']} does not exist")
    return out


def _read_state(spec, key):
    from .io import read_extxyz
    from .state import State

    try:
        frames = read_extxyz(spec["file"])
    except Exception as exc:  # ASE and our reader raise many types
        raise ConfigError(f"gneb.{key}: cannot read {spec['file']} ({exc})") from None
    idx = spec["index"]
    if not -len(frames) <= idx < len(frames):
        raise ConfigError(f"gneb.{key}: {spec['file']} holds {len(frames)} frame(s); index {idx} is out of range")
    return State.from_ase(frames[idx])


def add_arguments(parser):
    parser.add_argument("config", help="YAML config with potential and a gneb: section (see spinlat.cli_gneb)")
    parser.add_argument("--output", "-o", help="run directory (default: the config's output, or runs/<config name>)")
    parser.add_argument("--overwrite", action="store_true", help="replace the files of an earlier run there")
    parser.add_argument("--every", type=int, default=50, help="log every N iterations (default 50)")


def run(args) -> int:
    """Run ``spinlat gneb CONFIG``; returns 0 when the band converged, 1 otherwise."""
    from . import config as C
    from .io import Trajectory, write_extxyz
    from .transitions import gneb

    path = Path(args.config)
    raw = C.read_yaml(path)
    base = path.resolve().parent
    sec = check_gneb_config(raw, base)
    cfg = C.load({k: v for k, v in raw.items() if k != "gneb"})
    cfg["_base"] = str(base)
    pot = C.build_potential(cfg)
    out = Path(args.output) if args.output else Path(cfg["output"]) if cfg.get("output") else Path("runs") / path.stem
    if not out.is_absolute() and not args.output and cfg.get("output"):
        out = base / out
    files = {name: out / name for name in ("path.h5", "path.extxyz", "energy.png", "summary.json", "log.txt")}
    if files["path.h5"].exists() and not args.overwrite:
        raise ConfigError(f"output: {files['path.h5']} exists (an earlier run); pass --overwrite or another --output")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"output: cannot create run directory {out} ({exc})") from None
    if path.resolve() != (out / "config.yaml").resolve():
        shutil.copyfile(path, out / "config.yaml")
    with open(files["log.txt"], "w") as logf:
        def log(msg):
            print(msg)
            logf.write(msg + "\n")
            logf.flush()

        kw = {k: v for k, v in sec.items() if k not in ("initial", "final", "path")}
        initial = _read_state(sec["initial"], "initial") if "initial" in sec else None
        final = _read_state(sec["final"], "final") if "final" in sec else None
        if "path" in sec:
            with Trajectory(sec["path"]) as tr:
                kw["path"] = list(tr)
        kw.setdefault("seed", cfg.get("seed"))
        log(f"spinlat gneb: {path}")
        log(f"potential: {pot!r}")

        def progress(info):
            if info["iteration"] % max(1, args.every) == 0:
                e = info["energies"]
                log(f"iteration {info['iteration']:6d}  max force {info['max_force']:.3e}  "
                    f"highest image {(e[1:-1].max() - e[0]) * 1e3:.6f} meV  climbing {info['climbing']}")

        t0 = time.perf_counter()
        res = gneb(initial, final, pot, callback=progress, **kw)
        wall = time.perf_counter() - t0
        res.write(files["path.h5"], potential=pot)
        write_extxyz(files["path.extxyz"], res.to_atoms())
        res.plot(files["energy.png"], title=path.stem)
        summary = {**res.summary(), "wall_s": wall}
        files["summary.json"].write_text(json.dumps(summary, indent=2))
        log(f"{res.reason} after {res.iterations} iterations ({res.n_evaluations} evaluations, {wall:.1f} s)")
        log(f"barrier {res.barrier:.8f} eV (saddle image {res.saddle}), reverse barrier {res.reverse_barrier:.8f} eV")
        log("largest forces: " + ", ".join(f"{k} {v:.3g} {u}" for (k, v), u in zip(
            res.max_force.items(), summary["max_force_units"].values())))
        for name in ("path.h5", "path.extxyz", "energy.png", "summary.json"):
            log(f"{name}: {files[name]}")
    return 0 if res.converged else 1
