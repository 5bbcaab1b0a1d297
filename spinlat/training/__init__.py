"""Training mMACE models — the layer above the potentials that reads data sets, runs the optimiser
and writes checkpoints (the model itself lives in :mod:`spinlat.potentials.mmace`).

- :mod:`.loop`: :func:`train`, in named steps (options, data, initial model, optimiser, resume,
  epochs, finish);
- :mod:`.options`: :class:`~.options.TrainingOptions`, every training option's type, default and
  range in one place (the model's hyperparameters: :mod:`spinlat.potentials.mmace.hyperparameters`);
- :mod:`.data`: loading and checking data sets (labels may be missing per configuration), graphs,
  batches and the on-disk graph cache;
- :mod:`.loss`: the masked loss and how its per-label weights combine;
- :mod:`.initial_model`: the model a run starts from (E0 and Landau least squares, scale,
  fine-tuning with weight transfer);
- :mod:`.checkpoint`: resumable safetensors + JSON checkpoints;
- :mod:`.teacher`: synthetic teacher data sets (public as :mod:`spinlat.datasets`).

Public entries: :func:`train` here, ``MagneticMACE.train`` (which calls it: this package installs
it as :data:`spinlat.potentials.mmace.trainer` when imported, and ``import spinlat`` imports it),
and ``spinlat train CONFIG`` (:mod:`spinlat.cli.train`).
"""

from ..keywords import HYPERPARAMETERS, TRAINING_OPTIONS, parameters_of, refuse_other_names
from ..potentials import mmace as _mmace


@refuse_other_names(extra=parameters_of(HYPERPARAMETERS, TRAINING_OPTIONS))
def train(train, valid=None, soc=None, max_minutes=None, seed=0, init_from=None, **options):
    """Train (or fine-tune) an mMACE model; see :func:`spinlat.training.loop.train`."""
    from .loop import train as run

    return run(train, valid=valid, soc=soc, max_minutes=max_minutes, seed=seed, init_from=init_from, **options)


_mmace.trainer = train

_LAZY = {"TrainingOptions": ".options", "load_dataset": ".data", "check_dataset": ".data", "graphs_of": ".data",
         "collate": ".data", "masked_loss": ".loss", "transfer_weights": ".initial_model",
         "evaluate_graphs": ".loop"}

__all__ = ["train", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module 'spinlat.training' has no attribute {name!r}")
