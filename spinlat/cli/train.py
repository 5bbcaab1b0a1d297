"""``spinlat train CONFIG``: train (or fine-tune) an mMACE model from a YAML config.

The config is described and validated by :func:`spinlat.config.check_train_config` before any
work. Writes the model (``output``) and ``<output>.metrics.json``; checkpoints go to
``<output>.checkpoints/`` (rerunning an interrupted command resumes from there). Ctrl-C or
SIGTERM stop the training after the batch under way and write the best model so far (and its
metrics, ``stopped_by: interrupted``) before the command exits (status 130 / 143); rerunning
the command then continues from the checkpoints and replaces that model without ``--overwrite``. An existing
model file is not replaced unless ``--overwrite`` is given. The epoch table goes to stderr, the
test errors and the path of the model to stdout.
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

from .. import config as C
from ..errors import InputError
from ..files import atomic_write_text

HELP = "train (or fine-tune) an mMACE model from a YAML config"


def add_arguments(p) -> None:
    p.add_argument("config", help="YAML training config (see spinlat.config.check_train_config)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing model file")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (the per-epoch table stays)")


def run_train_config(cfg: dict, base: Path = Path("."), progress: bool = True):
    """Validate and run a train config (dict); returns the trained MagneticMACE."""
    cfg = C.check_train_config(cfg, base)
    from ..training import train

    model_opts = dict(cfg["model"])
    soc = model_opts.pop("soc", None)
    opts = dict(cfg["training"])
    max_minutes = opts.pop("max_minutes", None)
    seed = opts.pop("seed", 0)
    init_from = opts.pop("init_from", None)
    opts.setdefault("progress", True if progress else "table")   # --no-progress: no bars, the table stays
    # the training's epoch table and notes are diagnostics: stderr (stdout carries the results)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            pot = train(cfg["train"], valid=cfg.get("valid"), soc=soc, max_minutes=max_minutes, seed=seed,
                        init_from=init_from, **opts, **model_opts)
    except KeyboardInterrupt as exc:  # Ctrl-C / SIGTERM: the model trained so far is written
        pot = getattr(exc, "partial_result", None)
        if pot is not None:
            _write_model(cfg, pot)
            print(f"spinlat train: interrupted after {len(pot.training_history)} epochs; the best model so far is in "
                  f"{cfg['output']} (stopped_by: interrupted); run the command again to continue", file=sys.stderr)
        raise
    extra = {}
    if "test" in cfg:
        from ..training.data import load_dataset

        energies = {k: cfg["training"][k] for k in ("energy_label", "check_energies") if k in cfg["training"]}
        extra["test"] = pot.evaluate(load_dataset(cfg["test"], "test"), **energies)
        print("test: E {energy_rmse:.2f} meV/atom, F {forces_rmse:.1f} meV/Å, h {magnetic_forces_rmse:.1f} meV/μB"
              .format(**extra["test"]))
    print(f"model written to {_write_model(cfg, pot, extra)}")
    return pot


def _write_model(cfg, pot, extra=None) -> Path:
    """Write the model to the config's ``output`` and its ``.metrics.json`` (summary, history and
    ``extra``); returns the model's path."""
    out = Path(cfg["output"])
    out.parent.mkdir(parents=True, exist_ok=True)
    pot.save(out)
    report = {"summary": pot.training_summary, "history": pot.training_history, **(extra or {})}
    atomic_write_text(str(out) + ".metrics.json", json.dumps(report, indent=1, default=str))
    return out


def run(args) -> int:
    path = Path(args.config)
    base = path.resolve().parent
    cfg = C.check_train_config(C.read_yaml(path), base)
    # `output: ../runs/m.mmace` beside the config: name the file as /…/runs/m.mmace, not /…/examples/../runs/…
    cfg["output"] = str(Path(cfg["output"]).resolve())
    if Path(cfg["output"]).exists() and not args.overwrite and not _interrupted(cfg["output"]):
        raise InputError(f"{cfg['output']} already exists; pass --overwrite to replace it, or change output")
    run_train_config(cfg, base, progress=not args.no_progress)
    return 0


def _interrupted(output) -> bool:
    """Whether the model at ``output`` was written by an interrupted run (its metrics say
    ``stopped_by: interrupted``): rerunning the command continues that run, and replaces it."""
    try:
        report = json.loads(Path(str(output) + ".metrics.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(report, dict) and isinstance(report.get("summary"), dict) and \
        report["summary"].get("stopped_by") == "interrupted"
