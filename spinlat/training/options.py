"""The training options: one definition of each one's type, default, range and meaning.

:class:`TrainingOptions` is checked in one place, for :func:`spinlat.training.train` (keyword
arguments), ``MagneticMACE.train`` and the ``training:`` section of a ``spinlat train`` config
(:func:`spinlat.config.check_train_config`). The model's hyperparameters are defined beside the
model, in :class:`spinlat.potentials.mmace.hyperparameters.Hyperparameters`;
:func:`split_options` sorts keyword arguments between the two.

Loss weights (``energy_weight``, ``forces_weight``, ``magnetic_forces_weight``,
``stress_weight``) multiply terms that are each averaged over the entries carrying that label
(see :mod:`spinlat.training.loss` for how they combine).
"""

from __future__ import annotations

import dataclasses

from .. import validation
from ..errors import ConfigError, DeviceError, InputError
from ..potentials.mmace.labels import ENERGY_LABELS
from ..options import Options, element_mapping, integer_in, number_in, optional, option, path_or_none
from ..keywords import refuse_other_names

SCHEDULERS = ("plateau", "cosine", "cosine_time")
DTYPES = validation.FLOAT_DTYPES


def _device(v, k):
    import re

    if not isinstance(v, str) or not re.fullmatch(r"cpu|cuda(:\d+)?", v):
        raise InputError(f"{k}: expected 'cpu' or 'cuda[:k]', got {v!r}")
    return v


_E0S_MAPPING = element_mapping(lambda x, k: validation.number(x, k, unit="eV"), "reference energy (eV)")


#: the E0s that are not a mapping: fitted by least squares, or the energies of the configurations marked
#: ``config_type="IsolatedAtom"`` (mace's convention)
E0S_CHOICES = ("average", "isolated")


def _e0s(v, k):
    if isinstance(v, str):
        return validation.choice(v, k, E0S_CHOICES)
    return _E0S_MAPPING(v, k)


def _init_from(v, k):
    """A model to fine-tune: a MagneticMACE (anything with ``model`` and ``hyperparameters``) or a model file."""
    if v is None or (hasattr(v, "model") and hasattr(v, "hyperparameters")):
        return v
    return validation.path(v, k)


@refuse_other_names()
@dataclasses.dataclass(frozen=True)
class TrainingOptions(Options):
    """Options of :func:`spinlat.training.train` (see the module docstring)."""

    epochs: int = option(200, integer_in(0), "passes over the training set (the budget of a test or a script)")
    batch_size: int = option(4, integer_in(1), "configurations per optimiser step")
    lr: float = option(0.01, number_in(0.0, low_open=True), "Adam learning rate")
    weight_decay: float = option(0.0, number_in(0.0), "Adam weight decay")
    energy_weight: float = option(100.0, number_in(0.0), "loss weight of the energy per atom, per (eV/atom)²")
    forces_weight: float = option(1.0, number_in(0.0), "loss weight of the forces, per (eV/Å)²")
    magnetic_forces_weight: float = option(10.0, number_in(0.0), "loss weight of the magnetic forces, per (eV/μB)²")
    stress_weight: float = option(100.0, number_in(0.0), "loss weight of the stress, per (eV/Å³)²")
    ema_decay: float = option(0.99, number_in(0.0, 1.0, high_open=True), "decay of the exponential moving average")
    patience: int = option(50, integer_in(1), "epochs without a better validation loss before stopping")
    scheduler: str = option("plateau", lambda v, k: validation.choice(v, k, SCHEDULERS),
                            "learning-rate schedule: plateau | cosine (over the epochs) | cosine_time (over max_minutes)")
    lr_factor: float = option(0.5, number_in(0.0, 1.0, low_open=True, high_open=True), "plateau: factor of each decrease")
    scheduler_patience: int = option(8, integer_in(0), "plateau: epochs without improvement before a decrease")
    min_lr: float = option(1e-5, number_in(0.0), "lowest learning rate")
    valid_fraction: float = option(0.1, number_in(0.0, 1.0, low_open=True, high_open=True),
                                   "fraction of train held out for validation when valid is not given")
    fit_landau: bool = option(True, validation.boolean, "fit the one-body Landau coefficients by least squares")
    clip_grad: float | None = option(10.0, optional(number_in(0.0)), "gradient-norm clipping (0 or None: off)")
    checkpoint_dir: str | None = option(None, path_or_none, "directory of the resumable checkpoint")
    checkpoint_every: int = option(1, integer_in(1), "epochs between checkpoints")
    resume: bool = option(True, validation.boolean, "continue from the checkpoint in checkpoint_dir")
    cache_dir: str | None = option(None, path_or_none, "directory of the on-disk graph cache")
    device: str = option("cpu", _device, "torch device: cpu or cuda[:k]")
    dtype: str = option("float64", validation.float_dtype,
                        "float64 or float32 (any spelling: 'f4', np.float32, torch.float32, ...)")
    progress: bool | str = option(True, lambda v, k: v if v == "table" else validation.boolean(v, k),
                                  "progress bars and the per-epoch table (True), the table only ('table'), "
                                  "or nothing (False)")
    E0s: str | dict = option("average", _e0s, "per-element reference energies: 'average' (least squares), "
                                              "'isolated' (the energies of the single-atom configurations marked "
                                              "config_type=IsolatedAtom, mace's convention; they stay in the "
                                              "training, which learns the free atom's energy at its moment) or "
                                              "{element: eV}")
    seed: int = option(0, lambda v, k: integer_in(0)(validation.seed(v, k), k),
                       "seed of the initial weights, the validation split and the shuffling")
    max_minutes: float | None = option(None, optional(number_in(0.0, low_open=True, unit="minutes")),
                                       "wall-clock budget from the start of training, checked before each batch "
                                       "(preparation and validation passes are not cut short; scripts; tests use "
                                       "epochs)")
    init_from: object = option(None, _init_from, "a MagneticMACE or model file to fine-tune")
    energy_label: str = option("total", lambda v, k: validation.choice(v, k, ENERGY_LABELS),
                               "what info['energy'] holds: 'total' (eV, ASE's convention) or 'per_atom' (eV/atom, "
                               "multiplied by the number of atoms)")
    check_energies: bool = option(True, validation.boolean,
                                  "refuse total energies that scale like per-atom values across configurations of "
                                  "different sizes (False: read them as given)")

    @classmethod
    def check_together(cls, full, given, prefix, complete):
        if full["scheduler"] == "cosine_time" and full["max_minutes"] is None:
            raise InputError(f"{prefix}scheduler: 'cosine_time' decays the learning rate over max_minutes; give "
                             "max_minutes")

    @property
    def loss_weights(self) -> dict:
        """{label: weight} of the four loss terms."""
        return {"energy": self.energy_weight, "forces": self.forces_weight,
                "magnetic_forces": self.magnetic_forces_weight, "stress": self.stress_weight}


def split_options(options: dict, prefix: str = "") -> tuple[dict, dict]:
    """Sort keyword arguments into (training options, model hyperparameters); raises ConfigError
    naming a key that is neither."""
    from ..potentials.mmace.hyperparameters import Hyperparameters

    train_names = set(TrainingOptions.names())
    model_names = set(Hyperparameters.names()) - {"elements", "soc"}
    unknown = sorted(k for k in options if k not in train_names | model_names)
    if unknown:
        from ..keywords import hint

        raise ConfigError(f"{prefix}{unknown[0]}: unknown training option or hyperparameter"
                          f"{hint(unknown[0], sorted(train_names | model_names))}; training options: "
                          f"{', '.join(sorted(train_names))}; model hyperparameters: {', '.join(sorted(model_names))}")
    return ({k: v for k, v in options.items() if k in train_names},
            {k: v for k, v in options.items() if k in model_names})


def resolve_dtype(dtype):
    """torch dtype of a 64- or 32-bit float precision in any spelling (:func:`spinlat.validation.float_dtype`)."""
    import torch

    return {"float64": torch.float64, "float32": torch.float32}[validation.float_dtype(dtype, "dtype")]


def resolve_device(device):
    """torch device; raises DeviceError for a CUDA device that is not available here."""
    import torch

    dev = torch.device(_device(device, "device"))
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"device {device!r} asked for, but no CUDA device is available here; use device='cpu'")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise DeviceError(f"device {device!r} asked for, but only {torch.cuda.device_count()} CUDA device(s) exist")
    return dev
