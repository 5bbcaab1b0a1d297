"""The ``spinlat`` command line.

Subcommands are registered in :data:`COMMANDS` (name → :class:`Command`): each has a function
that adds its arguments to an argparse sub-parser and a function that runs it and returns an exit
status. Other modules add theirs with :func:`register`::

    from spinlat.cli import register

    @register("run", "run a simulation from a YAML config")
    def _run_args(parser): parser.add_argument("config")
    ...

``spinlat train CONFIG.yaml`` trains an mMACE model; the config is validated before any work:

.. code-block:: yaml

    train: data/train.extxyz            # or {teacher: {system: Fe, n_configs: 200, seed: 0, soc: true}}
    valid: data/valid.extxyz            # optional (default: a split of train)
    test: {teacher: {system: Fe, n_configs: 20, seed: 99}}   # optional, evaluated at the end
    model:                              # soc + mMACE hyperparameters (mace-torch names)
      soc: true
      r_max: 4.0
      hidden_irreps: 16x0e+16x1o
    training:                           # options of spinlat.potentials.mmace.training.train
      epochs: 100
      max_minutes: 10
      seed: 0
      init_from: pretrained.mmace       # optional: fine-tune
    output: model.mmace                 # the trained model; metrics go to model.metrics.json

Relative paths are taken relative to the config file. Training checkpoints go to
``<output>.checkpoints/`` (rerunning the same command resumes from there).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from . import cli_gneb
from .errors import ConfigError, SpinlatError


@dataclass
class Command:
    """One subcommand: ``add_arguments(parser)`` and ``run(args) -> exit status``."""

    help: str
    add_arguments: Callable
    run: Callable


#: subcommand name → Command
COMMANDS: dict[str, Command] = {}


def register(name: str, help: str, add_arguments: Callable, run: Callable) -> None:
    """Add (or replace) the subcommand ``name``."""
    COMMANDS[name] = Command(help, add_arguments, run)


# ------------------------------------------------------------------------------- train
_TRAIN_TOP = {"train": "dataset (extxyz path or {teacher: {...}})", "valid": "dataset", "test": "dataset",
              "model": "mapping of soc and model hyperparameters", "training": "mapping of training options",
              "output": "path of the model file to write"}


def _dataset_spec(value, key, base: Path):
    if isinstance(value, str):
        p = Path(value)
        return str(p if p.is_absolute() else base / p)
    if isinstance(value, dict):
        if set(value) != {"teacher"}:
            raise ConfigError(f"{key}: expected an extxyz path or {{teacher: {{system, n_configs, seed}}}}, got keys "
                              f"{sorted(value)}")
        spec = value["teacher"]
        if not isinstance(spec, dict):
            raise ConfigError(f"{key}.teacher: expected a mapping with system, n_configs, seed")
        allowed = {"system": str, "n_configs": int, "seed": int, "soc": bool, "max_displacement": (int, float),
                   "max_strain": (int, float), "near_zero_fraction": (int, float)}
        for k, v in spec.items():
            if k not in allowed:
                raise ConfigError(f"{key}.teacher.{k}: unknown key; expected one of {sorted(allowed)}")
            if not isinstance(v, allowed[k]) or (allowed[k] is int and isinstance(v, bool)):
                raise ConfigError(f"{key}.teacher.{k}: expected {getattr(allowed[k], '__name__', 'a number')}, "
                                  f"got {v!r}")
        missing = {"system", "n_configs", "seed"} - set(spec)
        if missing:
            raise ConfigError(f"{key}.teacher: missing {sorted(missing)} (expected system, n_configs, seed)")
        from .datasets import SYSTEMS

        if spec["system"] not in SYSTEMS:
            raise ConfigError(f"{key}.teacher.system: expected one of {list(SYSTEMS)}, got {spec['system']!r}")
        if spec["n_configs"] < 1:
            raise ConfigError(f"{key}.teacher.n_configs: expected a positive integer, got {spec['n_configs']}")
        return {"teacher": dict(spec)}
    raise ConfigError(f"{key}: expected an extxyz path or {{teacher: {{...}}}}, got {type(value).__name__}")


def check_train_config(cfg: dict, base: Path = Path(".")) -> dict:
    """Validate a ``spinlat train`` config (a dict); returns the normalised config
    (paths made absolute). Raises ConfigError naming the bad key and what was expected."""
    if not isinstance(cfg, dict):
        raise ConfigError(f"train config: expected a mapping at the top level, got {type(cfg).__name__}")
    for key in cfg:
        if key not in _TRAIN_TOP:
            raise ConfigError(f"{key}: unknown key in train config; expected one of {sorted(_TRAIN_TOP)}")
    for key in ("train", "output"):
        if key not in cfg:
            raise ConfigError(f"{key}: missing from train config ({_TRAIN_TOP[key]})")
    out = {"train": _dataset_spec(cfg["train"], "train", base)}
    for key in ("valid", "test"):
        if cfg.get(key) is not None:
            out[key] = _dataset_spec(cfg[key], key, base)
    if not isinstance(cfg["output"], str) or not cfg["output"]:
        raise ConfigError(f"output: expected a file path, got {cfg['output']!r}")
    p = Path(cfg["output"])
    out["output"] = str(p if p.is_absolute() else base / p)

    from .potentials.mmace.model import DEFAULTS
    from .potentials.mmace.training import TRAIN_DEFAULTS

    model = cfg.get("model") or {}
    if not isinstance(model, dict):
        raise ConfigError(f"model: expected a mapping of hyperparameters, got {type(model).__name__}")
    for k, v in model.items():
        if k == "soc":
            if not isinstance(v, bool):
                raise ConfigError(f"model.soc: expected true or false, got {v!r}")
        elif k not in DEFAULTS:
            raise ConfigError(f"model.{k}: unknown hyperparameter; expected soc or one of {sorted(DEFAULTS)}")
        else:
            _check_like(f"model.{k}", v, DEFAULTS[k])
    out["model"] = dict(model)

    training = cfg.get("training") or {}
    if not isinstance(training, dict):
        raise ConfigError(f"training: expected a mapping of training options, got {type(training).__name__}")
    extra = {"max_minutes": (int, float), "seed": int, "init_from": str}
    for k, v in training.items():
        if k in extra:
            if not isinstance(v, extra[k]) or isinstance(v, bool):
                raise ConfigError(f"training.{k}: expected {'a number' if k == 'max_minutes' else extra[k].__name__}, "
                                  f"got {v!r}")
            if k == "max_minutes" and not v > 0:
                raise ConfigError(f"training.max_minutes: expected a positive number, got {v}")
        elif k not in TRAIN_DEFAULTS:
            raise ConfigError(f"training.{k}: unknown training option; expected one of "
                              f"{sorted(set(TRAIN_DEFAULTS) | set(extra))}")
        elif k == "E0s":
            if not (v == "average" or isinstance(v, dict)):
                raise ConfigError(f"training.E0s: expected 'average' or a mapping element -> eV, got {v!r}")
        elif k in ("checkpoint_dir", "cache_dir"):
            if v is not None and not isinstance(v, str):
                raise ConfigError(f"training.{k}: expected a directory path, got {v!r}")
        else:
            _check_like(f"training.{k}", v, TRAIN_DEFAULTS[k])
    training = dict(training)
    for k in ("init_from", "checkpoint_dir", "cache_dir"):
        if isinstance(training.get(k), str) and not Path(training[k]).is_absolute():
            training[k] = str(base / training[k])
    training.setdefault("checkpoint_dir", out["output"] + ".checkpoints")
    if "init_from" in training and not Path(training["init_from"]).exists():
        raise ConfigError(f"training.init_from: model file {training['init_from']} does not exist")
    out["training"] = training
    return out


def _check_like(key, value, default):
    """Type check of one option against the type of its default."""
    if isinstance(default, bool):
        ok = isinstance(value, bool)
        what = "true or false"
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
        what = "an integer"
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if key.endswith("m_max"):
            ok = ok or isinstance(value, dict)
        what = "a number"
    elif isinstance(default, str):
        ok = isinstance(value, str)
        what = "a string"
    elif isinstance(default, list):
        ok = isinstance(value, list) and all(isinstance(x, int) for x in value)
        what = "a list of integers"
    else:
        return
    if not ok:
        raise ConfigError(f"{key}: expected {what} (like the default {default!r}), got {value!r}")


def _train_args(parser):
    parser.add_argument("config", help="YAML training config (see `spinlat.cli` docs)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run_train_config(cfg: dict, base: Path = Path("."), progress: bool = True):
    """Validate and run a train config (dict); returns the trained MagneticMACE."""
    cfg = check_train_config(cfg, base)
    from .potentials.mmace.training import train

    model_opts = dict(cfg["model"])
    soc = model_opts.pop("soc", None)
    opts = dict(cfg["training"])
    max_minutes = opts.pop("max_minutes", None)
    seed = opts.pop("seed", 0)
    init_from = opts.pop("init_from", None)
    opts.setdefault("progress", progress)
    pot = train(cfg["train"], valid=cfg.get("valid"), soc=soc, max_minutes=max_minutes, seed=seed,
                init_from=init_from, **opts, **model_opts)
    out = Path(cfg["output"])
    out.parent.mkdir(parents=True, exist_ok=True)
    pot.save(out)
    report = {"summary": pot.training_summary, "history": pot.training_history}
    if "test" in cfg:
        from .potentials.mmace.data_cache import load_dataset

        report["test"] = pot.evaluate(load_dataset(cfg["test"], "test"))
        print("test: E {energy_rmse:.2f} meV/atom, F {forces_rmse:.1f} meV/Å, h {magnetic_forces_rmse:.1f} meV/μB"
              .format(**report["test"]))
    Path(str(out) + ".metrics.json").write_text(json.dumps(report, indent=1, default=str))
    print(f"model written to {out}")
    return pot


def _train(args) -> int:
    from .config import read_yaml

    path = Path(args.config)
    run_train_config(read_yaml(path), path.resolve().parent, progress=not args.no_progress)
    return 0


register("train", "train (or fine-tune) an mMACE model from a YAML config", _train_args, _train)
register("gneb", "minimum-energy path and energy barrier (geodesic nudged elastic band) from a YAML config",
         cli_gneb.add_arguments, cli_gneb.run)


# -------------------------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="spinlat", description="spin-lattice simulation engine")
    parser.add_argument("--version", action="version", version=f"spinlat {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, cmd in COMMANDS.items():
        p = sub.add_parser(name, help=cmd.help, description=cmd.help)
        cmd.add_arguments(p)
    return parser


def _load_plugins() -> None:
    """Register the workflow subcommands (run, minimize, search, analyze)."""
    from .commands import register_all

    register_all(register)


def main(argv=None) -> int:
    """Entry point of the ``spinlat`` command; returns the exit status."""
    _load_plugins()
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(COMMANDS[args.command].run(args) or 0)
    except SpinlatError as exc:
        print(f"spinlat {args.command}: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
