"""Training and fine-tuning of mMACE models: :func:`train`, in named steps.

1. :func:`check_options` — the training options and model hyperparameters, checked once
   (:class:`~spinlat.training.options.TrainingOptions`,
   :class:`~spinlat.potentials.mmace.hyperparameters.Hyperparameters`) before any work;
2. :func:`prepare_data` — load and check both data sets (labels may be missing per
   configuration), split off a validation set when none is given;
3. :func:`~spinlat.training.initial_model.build_model` — the model to start from (fresh, or
   fine-tuned from ``init_from``), with its one-body terms (E0, Landau) fitted by least squares
   and its scale set from the data;
4. :func:`make_optimiser` — Adam (AMSGrad), the learning-rate schedule and an exponential moving
   average (EMA) of the weights;
5. :func:`resume` — continue from the checkpoint in ``checkpoint_dir`` (safetensors + JSON,
   :mod:`spinlat.training.checkpoint`), bit for bit: the shuffling depends only on the seed and
   the epoch;
6. :func:`run_epochs` — the epochs: masked loss (:mod:`spinlat.training.loss`), gradient clipping,
   EMA, validation with the EMA weights, the schedule, early stopping on the validation loss, a
   wall-clock budget (``max_minutes``; tests and reproducible scripts use ``epochs``) and a
   checkpoint every ``checkpoint_every`` epochs;
7. :func:`finish` — the best (EMA) weights, the history and a summary with the final validation
   metrics (RMSE of E in meV/atom, F in meV/Å, magnetic forces in meV/μB, stress in meV/Å³).

Data: energies (eV), forces (eV/Å), magnetic forces −∂E/∂m (eV/μB) and stresses (eV/Å³), any of
them missing per configuration (an energies-only constrained spin-disorder set trains as it is);
only the model outputs some training configuration carries a label for are computed.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
import warnings

import numpy as np
import torch

from ..errors import ConfigError, InputError, SimulationError
from ..interrupts import check, deferred, pending
from ..potentials.mmace.hyperparameters import Hyperparameters
from ..potentials.mmace.labels import check_energies_are_totals, energies_as_totals
from ..potentials.mmace.metrics import add_errors, rmse, squared_errors
from .checkpoint import load_checkpoint, save_checkpoint
from .data import Dataset, check_dataset, collate, configuration_name, label_counts, load_dataset, same_sources
from .initial_model import InitialModel, build_model
from .loss import masked_loss, validation_loss
from .options import TrainingOptions, resolve_device, resolve_dtype, split_options

LABEL_KEYS = ("energy", "forces", "magnetic_forces", "stress")


# ----------------------------------------------------------------------------- 1. options
def check_options(soc, max_minutes, seed, init_from, options) -> tuple[TrainingOptions, dict]:
    """(training options, checked model hyperparameters given by the user); ConfigError names a
    bad or unknown key."""
    train_opts, hyper = split_options(options)
    opts = TrainingOptions.from_values({**train_opts, "max_minutes": max_minutes, "seed": seed,
                                        "init_from": init_from}, what="training options")
    hyper = Hyperparameters.check_values({**hyper, **({} if soc is None else {"soc": soc})},
                                         what="mMACE hyperparameters", exclude=("elements",))
    hyper.pop("soc", None)
    return opts, hyper


# -------------------------------------------------------------------------------- 2. data
@dataclasses.dataclass
class Data:
    """The two data sets (lists of ase.Atoms), how many configurations carry each label, and the
    reference energies {element: eV} of the isolated atoms among them (``E0s="isolated"``)."""

    train: list
    valid: list
    labels_train: dict
    labels_valid: dict
    e0s: dict | None = None


def prepare_data(train, valid, opts: TrainingOptions, explicit_weights=()) -> Data:
    """Load and check the data sets; without ``valid``, hold out ``valid_fraction`` of ``train``
    (chosen by the seed). Warns when a loss weight given in ``explicit_weights`` has no label to
    act on in the training set."""
    train_data = read_energies(load_dataset(train, "train"), opts, "train")
    e0s = isolated_atom_energies(train_data, opts, "train")
    labels = check_dataset(train_data, "train")
    if valid is None:
        if len(train_data) < 2:
            raise ConfigError("need at least 2 training configurations to split off a validation set "
                              "(or give valid=...)")
        perm = np.random.default_rng(opts.seed).permutation(len(train_data))
        n_valid = max(1, int(round(opts.valid_fraction * len(train_data))))
        keep = sorted(perm[n_valid:])
        pick = (lambda idx: train_data.subset(idx)) if isinstance(train_data, Dataset) else \
            (lambda idx: [train_data[k] for k in idx])  # errors still name each configuration by its file
        valid_data, labels_valid = pick(perm[:n_valid]), [labels[k] for k in perm[:n_valid]]
        train_data, labels = pick(keep), [labels[k] for k in keep]
    else:
        valid_data = read_energies(load_dataset(valid, "valid"), opts, "valid")
        labels_valid = check_dataset(valid_data, "valid")
    data = Data(train_data, valid_data, label_counts(labels), label_counts(labels_valid), e0s)
    for key in LABEL_KEYS:
        w = opts.loss_weights[key]
        if f"{key}_weight" in explicit_weights and w > 0 and data.labels_train[key] == 0:
            warnings.warn(f"{key}_weight={w:g} was given, but no training configuration carries {key}: "
                          "that loss term is absent", stacklevel=5)
    return data


def read_energies(data, opts: TrainingOptions, name) -> list:
    """``data`` with total energies (:func:`~spinlat.potentials.mmace.labels.energies_as_totals`
    for ``energy_label``); with ``check_energies``, ConfigError when energies read as totals scale
    like per-atom values (:func:`~spinlat.potentials.mmace.labels.check_energies_are_totals`)."""
    if opts.check_energies and opts.energy_label == "total":
        try:
            check_energies_are_totals(data, f"{name} dataset", "If info['energy'] holds eV/atom, give the training "
                                      "option energy_label='per_atom' (a spinlat train config: training.energy_label: "
                                      "per_atom); if they are totals, check_energies=False reads them as given")
        except InputError as exc:
            raise ConfigError(str(exc)) from None
    return same_sources(data, energies_as_totals(data, opts.energy_label, f"{name} dataset"))


#: ``info["config_type"]`` of a single-atom configuration that gives its element's reference energy
#: (mace's convention)
ISOLATED_ATOM = "IsolatedAtom"


def isolated_atom_energies(data, opts: TrainingOptions, name) -> dict | None:
    """{element: eV} for ``E0s="isolated"``: the energies of the single-atom configurations marked
    ``info["config_type"] == "IsolatedAtom"`` (mace's convention), None for other ``E0s``. Unlike
    ``mace_run_train`` they stay in the data set: an mMACE atom's E0 is its energy at zero moment
    and a free atom of moment m has E0 plus a one-body term in |m| (Landau), which the model learns
    from them, so the model's energy of the free atom at its moment comes out as the DFT's.
    ConfigError when there is none, for one without an energy and for two of one element with
    different energies. With ``E0s="average"`` a UserWarning names them (they are trained on and
    the E0s fitted by least squares)."""
    from ase.data import chemical_symbols

    from ..potentials.mmace.labels import raw_label

    marked = [k for k, at in enumerate(data) if len(at) == 1 and at.info.get("config_type") == ISOLATED_ATOM]
    if opts.E0s != "isolated":
        if marked and opts.E0s == "average":
            warnings.warn(f"{name} dataset: {len(marked)} single-atom configurations are marked config_type="
                          f"{ISOLATED_ATOM} (mace's reference energies E0; {configuration_name(data, marked[0])}): with "
                          "E0s='average' they are trained on as ordinary configurations and the E0s are fitted by "
                          "least squares; give E0s='isolated' to take the E0s from them", UserWarning, stacklevel=5)
        return None
    if not marked:
        raise ConfigError(f"E0s='isolated' takes the reference energies from single-atom configurations marked "
                          f"info['config_type'] = '{ISOLATED_ATOM}', but the {name} dataset has none; give E0s as "
                          "{element: eV} or 'average'")
    e0s = {}
    for k in marked:
        at = data[k]
        energy = raw_label(at, "energy")
        if energy is None or np.size(energy) != 1:
            raise ConfigError(f"{name} dataset {configuration_name(data, k)} is marked config_type={ISOLATED_ATOM} but carries no "
                              "energy (info['energy'] or a calculator's energy)")
        symbol = chemical_symbols[int(at.numbers[0])]
        energy = float(np.asarray(energy, dtype=np.float64).reshape(()))
        if symbol in e0s and e0s[symbol] != energy:
            raise ConfigError(f"{name} dataset: two {ISOLATED_ATOM} configurations of {symbol} have different energies "
                              f"({e0s[symbol]!r} and {energy!r} eV, {configuration_name(data, k)}); keep one")
        e0s[symbol] = energy
    return e0s


def _outputs(weights, labels) -> dict:
    """Which model outputs to compute: those a positive loss weight and some label call for."""
    return {key: weights[key] > 0 and labels[key] > 0 for key in ("forces", "magnetic_forces", "stress")}


def _predict(model, batch, want, training=False):
    return model(batch, compute_forces=want["forces"], compute_magnetic_forces=want["magnetic_forces"],
                 compute_stress=want["stress"], training=training)


def evaluate_graphs(model, graphs, batch_size=8, dtype=torch.float64, device="cpu", out_of_time=None) -> dict | None:
    """RMSEs of ``model`` on prebuilt graphs (:func:`spinlat.potentials.mmace.metrics.rmse`):
    ``energy_rmse`` meV/atom, ``forces_rmse`` meV/Å, ``magnetic_forces_rmse`` meV/μB (NaN where
    no graph carries the label) and ``stress_rmse`` meV/Å³ where some graph has a stress.
    ``out_of_time``: optional callable checked before each batch; when it returns True the pass
    is abandoned and None returned (a wall-clock budget, :func:`train`'s ``max_minutes``)."""
    has = {key: any(bool(g[f"{key}_mask"].any()) for g in graphs) for key in LABEL_KEYS}
    sums = {key: (0.0, 0) for key in ("energy", "forces", "magnetic_forces")}
    for k in range(0, len(graphs), batch_size):
        if out_of_time is not None and out_of_time():
            return None
        batch = collate(graphs[k:k + batch_size], dtype=dtype, device=device)
        add_errors(sums, squared_errors(_predict(model, batch, has), batch))
    return rmse(sums)


# --------------------------------------------------------------------------- 4. optimiser
@dataclasses.dataclass
class Optimiser:
    """Adam over the trainable ``params``, its learning-rate ``scheduler`` (None for
    ``cosine_time``, which sets the rate per step) and the ``ema`` of the weights."""

    params: list
    optimizer: torch.optim.Optimizer
    scheduler: object
    ema: object


def make_optimiser(model, opts: TrainingOptions) -> Optimiser:
    from torch_ema import ExponentialMovingAverage

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=opts.lr, weight_decay=opts.weight_decay, amsgrad=True)
    if opts.scheduler == "plateau":
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=opts.lr_factor,
                                                               patience=opts.scheduler_patience, min_lr=opts.min_lr)
    elif opts.scheduler == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(opts.epochs, 1),
                                                               eta_min=opts.min_lr)
    else:  # cosine_time: the rate is set per step from the elapsed fraction of the time budget
        scheduler = None
    return Optimiser(params, optimizer, scheduler, ExponentialMovingAverage(params, decay=opts.ema_decay))


# ------------------------------------------------------------------------------ 5. resume
@dataclasses.dataclass
class Progress:
    """Where a run stands: per-epoch ``history`` rows, the ``best`` validation row and its
    (EMA) weights ``best_state``, the epochs done and the epochs since the last improvement."""

    history: list = dataclasses.field(default_factory=list)
    best: dict | None = None
    best_state: dict | None = None
    epoch: int = 0
    bad_epochs: int = 0


def _json_meta(meta):
    import json

    return json.loads(json.dumps(meta))


def resume(opt: Optimiser, start: InitialModel, opts: TrainingOptions) -> Progress:
    """The progress of an earlier run of the same training (same model, data and seed) from the
    checkpoint in ``checkpoint_dir`` (with ``resume``), its state loaded into the model and
    optimiser; a fresh Progress otherwise. ConfigError for a checkpoint of another run, naming
    what differs (the data are compared through their hash: structures, moments, labels and
    weights, :func:`~spinlat.training.data.dataset_hash`)."""
    if opts.checkpoint_dir is None or not opts.resume:
        return Progress()
    ck = load_checkpoint(opts.checkpoint_dir)
    if ck is None:
        return Progress()
    now = _json_meta(start.meta)
    for key in ("data", "E0s"):  # a checkpoint written before these were recorded
        if key not in ck["meta"]:
            now.pop(key, None)
    if ck["meta"] != now:
        what = {"data": "the training or validation data (structures, moments, labels or weights)",
                "n_train": "the number of training configurations", "n_valid": "the number of validation "
                "configurations", "hyperparameters": "the model hyperparameters (those set from the data too: "
                "avg_num_neighbors, m_max)", "elements": "the elements", "soc": "soc", "seed": "the seed",
                "E0s": "the reference energies E0s"}
        differ = [what.get(k, k) for k in sorted(set(ck["meta"]) | set(now)) if ck["meta"].get(k) != now.get(k)]
        raise ConfigError(f"the checkpoint in {opts.checkpoint_dir} belongs to another run ({'; '.join(differ)} "
                          "differ): it would resume that run. To train afresh use another checkpoint_dir, "
                          "resume=False (in a spinlat train config: training.resume: false) or remove "
                          f"{opts.checkpoint_dir}")
    start.model.load_state_dict(ck["model"])
    opt.optimizer.load_state_dict(ck["optimizer"])
    if ck["scheduler"] is not None:
        opt.scheduler.load_state_dict(ck["scheduler"])
    opt.ema.load_state_dict(ck["ema"])
    history = ck["history"]
    return Progress(history, ck["best"], ck["best_state"], ck["epoch"], history[-1].get("bad_epochs", 0) if history
                    else 0)


# ------------------------------------------------------------------------------ 6. epochs
def _table_header():
    return f"{'epoch':>5} {'loss':>10} {'E meV/at':>9} {'F meV/Å':>9} {'h meV/μB':>9} {'lr':>8} {'time s':>7}"


def _table_row(row):
    return (f"{row['epoch']:>5d} {row['train_loss']:>10.4g} {row['energy_rmse']:>9.2f} {row['forces_rmse']:>9.1f} "
            f"{row['magnetic_forces_rmse']:>9.1f} {row['lr']:>8.2g} {row['time']:>7.1f}")


def _train_epoch(epoch, start, opt, opts, want, dtype, device, clock):
    """One pass over the training graphs in the order fixed by (seed, epoch); returns (mean
    training loss per configuration, whether the time budget ran out)."""
    graphs = start.graphs_train
    bs = opts.batch_size
    order = np.random.default_rng([opts.seed, epoch]).permutation(len(graphs))
    batches = [order[k:k + bs] for k in range(0, len(order), bs)]
    if opts.progress is True:   # bars; "table": the epoch lines only
        from tqdm.auto import tqdm

        batches = tqdm(batches, desc=f"epoch {epoch + 1}", leave=False, file=sys.stderr)
    model = start.model
    model.train()
    total, count = 0.0, 0
    for idx in batches:
        if clock.out_of_time():  # checked before each batch: none starts once the budget is spent
            return total / max(count, 1), True
        batch = collate([graphs[k] for k in idx], dtype=dtype, device=device)
        loss = masked_loss(_predict(model, batch, want, training=True), batch, opts.loss_weights)
        if loss is None:  # no label of this batch enters the loss: no step
            continue
        if not torch.isfinite(loss):
            raise SimulationError(f"training loss became {float(loss)} at epoch {epoch + 1}; lower lr or check the data")
        if opt.scheduler is None:  # cosine over the wall-clock budget
            frac = min(1.0, clock.fraction())
            lr = opts.min_lr + 0.5 * (opts.lr - opts.min_lr) * (1.0 + math.cos(math.pi * frac))
            for g in opt.optimizer.param_groups:
                g["lr"] = lr
        opt.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if opts.clip_grad:
            torch.nn.utils.clip_grad_norm_(opt.params, opts.clip_grad)
        opt.optimizer.step()
        opt.ema.update()
        total += float(loss.detach()) * len(idx)
        count += len(idx)
        clock.steps += 1
        if clock.out_of_time():
            return total / max(count, 1), True
    return total / max(count, 1), False


@dataclasses.dataclass
class _Clock:
    """The wall-clock budget of the loop (``max_minutes``; None: none)."""

    t_start: float
    t_loop: float
    max_minutes: float | None
    steps: int = 0  # optimiser steps taken by this call

    def fraction(self) -> float:
        return (time.perf_counter() - self.t_loop) / (self.t_start + 60.0 * self.max_minutes - self.t_loop)

    def out_of_time(self) -> bool:
        """The budget is spent, or Ctrl-C / SIGTERM arrived (held back by
        :func:`~spinlat.interrupts.deferred`): the loop stops at the next batch either way."""
        return pending() or (self.max_minutes is not None
                             and time.perf_counter() > self.t_start + 60.0 * self.max_minutes)


def run_epochs(start: InitialModel, data: Data, opt: Optimiser, opts: TrainingOptions, progress: Progress,
               dtype, device, t_start) -> str:
    """Train from ``progress.epoch`` up to ``opts.epochs`` (updating ``progress``, writing
    checkpoints); returns why it stopped: "epochs", "early stopping", "time" or "interrupted"
    (Ctrl-C / SIGTERM held back by :func:`~spinlat.interrupts.deferred`: the epoch stops after its
    batch under way, is validated unless the pass is cut, and is checkpointed)."""
    want = _outputs(opts.loss_weights, data.labels_train)
    clock = _Clock(t_start, time.perf_counter(), opts.max_minutes)
    if opts.progress:
        from tqdm.auto import tqdm

        tqdm.write(_table_header(), file=sys.stderr)   # progress and diagnostics: stderr
    model = start.model
    for epoch in range(progress.epoch, opts.epochs):
        if pending():  # Ctrl-C / SIGTERM between two epochs
            return "interrupted"
        if clock.out_of_time():  # spent before this epoch's first batch: no epoch to validate
            if clock.steps:
                return "time"
            warnings.warn(f"max_minutes={opts.max_minutes:g} was spent before the first training step (loading the "
                          f"data, labelling, building the graphs and the initial model took "
                          f"{clock.t_loop - clock.t_start:.1f} s): the model returned is the "
                          f"{'checkpoint' if progress.epoch else 'initial model'} it started from, not trained "
                          "further; raise max_minutes", stacklevel=4)
            return "time"
        train_loss, out_of_time = _train_epoch(epoch, start, opt, opts, want, dtype, device, clock)
        model.eval()
        with opt.ema.average_parameters():
            # the budget bounds the validation pass too: none starts, and one under way stops, once it is spent
            metrics = evaluate_graphs(model, start.graphs_valid, max(opts.batch_size, 8), dtype, device,
                                      out_of_time=clock.out_of_time if opts.max_minutes is not None else None)
            if metrics is None:
                out_of_time = True
                _unvalidated(epoch, progress, model, opts)
                metrics = {k: float("nan") for k in ("energy_rmse", "forces_rmse", "magnetic_forces_rmse")}
                vloss, improved = float("nan"), False
            else:
                vloss = validation_loss(metrics, opts.loss_weights)
                improved = progress.best is None or vloss < progress.best["valid_loss"]
            if improved:
                progress.best = {"valid_loss": vloss, "epoch": epoch + 1, **metrics}
                progress.best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        if np.isfinite(vloss):
            progress.bad_epochs = 0 if improved else progress.bad_epochs + 1
            if opts.scheduler == "plateau":
                opt.scheduler.step(vloss)
            elif opt.scheduler is not None:
                opt.scheduler.step()
        row = {"epoch": epoch + 1, "train_loss": train_loss, "valid_loss": vloss, **metrics,
               "lr": opt.optimizer.param_groups[0]["lr"], "time": time.perf_counter() - t_start,
               "bad_epochs": progress.bad_epochs}
        progress.history.append(row)
        progress.epoch = epoch + 1
        if opts.progress:
            tqdm.write(_table_row(row), file=sys.stderr)
        stop = ("interrupted" if pending() else "time") if out_of_time else \
            "early stopping" if progress.bad_epochs >= opts.patience else None
        if opts.checkpoint_dir is not None and (progress.epoch % opts.checkpoint_every == 0 or stop
                                                or progress.epoch == opts.epochs):
            save_checkpoint(opts.checkpoint_dir, model=model, optimizer=opt.optimizer, scheduler=opt.scheduler,
                            ema=opt.ema, epoch=progress.epoch, history=progress.history, best=progress.best,
                            best_state=progress.best_state, meta=start.meta)
        if stop:
            return stop
    return "epochs"


def _unvalidated(epoch, progress, model, opts) -> None:
    """The validation pass of ``epoch`` was cut by the budget (or an interrupt): warn; with no validated epoch
    before, its (EMA) weights become the ones returned, unvalidated (``model`` holds them now)."""
    if progress.best_state is None:
        progress.best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        kept = f"the weights of epoch {epoch + 1}, not validated"
    else:
        kept = f"those of epoch {progress.best['epoch']}, the best validated"
    cause = "Ctrl-C or SIGTERM arrived" if pending() else f"max_minutes={opts.max_minutes:g} was spent"
    warnings.warn(f"{cause} before the validation pass of epoch {epoch + 1} ended: the pass was cut short and the "
                  f"epoch is not validated (its metrics are NaN in the history); the model returned has {kept}",
                  stacklevel=5)


# ------------------------------------------------------------------------------ 7. finish
def finish(start: InitialModel, data: Data, progress: Progress, stopped_by: str, opts: TrainingOptions,
           dtype, device, t_start):
    """The potential with the best validation weights, ``training_history`` (per-epoch rows) and
    ``training_summary`` (best epoch, why it stopped, label counts, validation metrics of the
    returned weights) attached."""
    model, pot = start.model, start.pot
    if progress.best_state is not None:
        model.load_state_dict({k: v.to(device) for k, v in progress.best_state.items()})
    model.eval()
    clock = _Clock(t_start, t_start, opts.max_minutes)
    if stopped_by == "interrupted" or (stopped_by == "time" and clock.out_of_time()):
        # no pass beyond the budget or after an interrupt: the returned weights' own
        final = ({k: v for k, v in progress.best.items() if k not in ("valid_loss", "epoch")}
                 if progress.best is not None else None)
    else:
        final = evaluate_graphs(model, start.graphs_valid, max(opts.batch_size, 8), dtype, device)
    pot.training_history = progress.history
    pot.training_summary = {"best": progress.best, "stopped_by": stopped_by, "epochs": len(progress.history),
                            "seconds": time.perf_counter() - t_start, "n_train": len(data.train),
                            "n_valid": len(data.valid), "labels": {"train": data.labels_train,
                                                                   "valid": data.labels_valid},
                            "valid": final}
    if opts.progress and final is not None:
        from tqdm.auto import tqdm

        tqdm.write(f"validation ({'epoch ' + str(progress.best['epoch']) if progress.best else 'initial model'}): "
                   f"E {final['energy_rmse']:.2f} meV/atom, F {final['forces_rmse']:.1f} meV/Å, "
                   f"h {final['magnetic_forces_rmse']:.1f} meV/μB (stopped by {stopped_by})", file=sys.stderr)
    return pot


def train(train, valid=None, soc=None, max_minutes=None, seed=0, init_from=None, **options):
    """Train (or fine-tune) an mMACE model and return it as a ``MagneticMACE`` potential.

    Parameters
    ----------
    train, valid : data sets — lists of ase.Atoms, data-set files (extxyz), or
        ``{"teacher": {...}}`` specs (:func:`spinlat.training.teacher.teacher`). Labels may be
        missing per configuration (:mod:`spinlat.potentials.mmace.labels`). Without ``valid``, a
        fraction ``valid_fraction`` of ``train`` (chosen by ``seed``) is held out.
    soc : the model's symmetry variant (default True; with ``init_from`` the old model's).
    max_minutes : wall-clock budget, minutes, counted from this call's start (None: none; runs
        that must be reproducible use ``epochs``). It is checked before and after every training
        batch and before every validation batch: no batch starts once it is spent (the one under
        way finishes). A validation pass it cuts leaves its epoch unvalidated (NaN metrics in the
        history, a warning; the model returned is the best validated epoch's, or that epoch's
        weights when none was validated); when it is spent the final validation is not redone
        (``training_summary["valid"]`` is the returned weights' epoch's, or None when none was
        validated). Not bounded by it: the preparation before the first batch (loading and
        labelling the data, building the graphs, fitting the one-body terms: no model without
        it). A budget spent before the first batch returns the model it started from, untrained,
        with a warning. Without a budget spent, results do not depend on it.
    seed : seed of the model's initial weights, the split and the shuffling.
    init_from : a MagneticMACE (or a model file) to fine-tune; it may know fewer elements than
        the data (species weights are extended).
    options : training options (:class:`~spinlat.training.options.TrainingOptions`: ``epochs``,
        ``batch_size``, ``lr``, the loss weights ``energy_weight`` (per (eV/atom)²),
        ``forces_weight`` (per (eV/Å)²), ``magnetic_forces_weight`` (per (eV/μB)²),
        ``stress_weight`` (per (eV/Å³)²), ...) and model hyperparameters
        (:class:`~spinlat.potentials.mmace.hyperparameters.Hyperparameters`).

    Returns the model with the best validation loss (EMA weights), with ``training_history`` (a
    list of per-epoch metric dicts) and ``training_summary`` attached. Ctrl-C or SIGTERM stop
    the training after the batch under way (the epoch is validated unless the budget cuts the
    pass, and checkpointed when ``checkpoint_dir`` is set) and raise ``KeyboardInterrupt``
    (:class:`~spinlat.interrupts.Terminated`) whose ``partial_result`` is that model
    (``stopped_by`` "interrupted"); a second signal stops at once, keeping nothing. Raises ConfigError naming a
    bad option, hyperparameter or data-set problem (before any training), DeviceError for an
    unavailable device, SimulationError when the loss becomes non-finite.
    """
    opts, hyper = check_options(soc, max_minutes, seed, init_from, options)
    dtype, device = resolve_dtype(opts.dtype), resolve_device(opts.device)
    t_start = time.perf_counter()
    data = prepare_data(train, valid, opts, explicit_weights=options)
    if data.e0s is not None:  # E0s="isolated": the isolated atoms' energies, as if given
        opts = dataclasses.replace(opts, E0s=data.e0s)
    start = build_model(data.train, data.valid, soc, hyper, opts, dtype, device)
    opt = make_optimiser(start.model, opts)
    progress = resume(opt, start, opts)
    # Ctrl-C / SIGTERM: stop after the batch under way, keep what was trained
    with deferred("after the training batch under way (the best model so far is kept)"):
        stopped_by = run_epochs(start, data, opt, opts, progress, dtype, device, t_start)
        pot = finish(start, data, progress, stopped_by, opts, dtype, device, t_start)
        check(partial_result=pot)
    return pot
