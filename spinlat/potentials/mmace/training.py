"""Training and fine-tuning of mMACE models.

:func:`train` fits a :class:`~spinlat.potentials.mmace.potential.MagneticMACE` to a dataset of
configurations with energies (eV), forces (eV/Å), magnetic forces −∂E/∂m (eV/μB) and optionally
stresses (eV/Å³). The loss of one batch is

    L = w_E ⟨ω_c (ΔE_c / N_c)²⟩_c + w_F ⟨ω_c |ΔF_i|²/3⟩_i + w_H ⟨ω_c |Δh_i|²/3⟩_i + w_S ⟨ω_c |Δσ_c|²/9⟩_c

(energy per atom, ω_c the per-configuration ``weight``; atoms with zero moment are left out of the
magnetic term, stress only where a configuration has one). Before the first step the per-species
reference energies E0 and the one-body Landau coefficients of the model are set by linear least
squares on the training energies and magnetic forces (``E0s="average"``), the interaction energy
is scaled by the RMS force of the data, and ``avg_num_neighbors`` and the per-species moment
scale ``m_max`` are taken from the data unless given.

Adam with an exponential moving average (EMA) of the weights, a learning-rate schedule
(``"plateau"``: reduce on a validation plateau, or ``"cosine"``), early stopping on the validation
loss, a time budget (``max_minutes``), checkpoints in safetensors + JSON (no pickles; resumable
bit-for-bit: shuffling depends only on ``seed`` and the epoch) and a metrics table per epoch
(RMSE of E in meV/atom, F in meV/Å, magnetic forces in meV/μB).

Fine-tuning: ``init_from`` a trained model (object or file). Its weights are copied; when the new
data holds elements the model does not know, the species-dependent weights are extended (the old
species keep theirs exactly, so the model is unchanged on old-element configurations) and only the
new species get E0 and Landau coefficients fitted to the data.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from ...errors import ConfigError, DeviceError, InputError
from .data_cache import check_dataset, collate, graphs_of, load_dataset

#: default training options (see :func:`train`)
TRAIN_DEFAULTS = dict(
    epochs=200,
    batch_size=4,
    lr=0.01,
    weight_decay=0.0,
    energy_weight=100.0,
    forces_weight=1.0,
    magnetic_forces_weight=10.0,
    stress_weight=100.0,
    ema_decay=0.99,
    patience=50,
    scheduler="plateau",
    lr_factor=0.5,
    scheduler_patience=8,
    min_lr=1e-5,
    valid_fraction=0.1,
    fit_landau=True,
    clip_grad=10.0,
    checkpoint_dir=None,
    checkpoint_every=1,
    resume=True,
    cache_dir=None,
    device="cpu",
    dtype="float64",
    progress=True,
    E0s="average",
)

_ARCH_KEYS = ("r_max", "num_bessel", "num_polynomial_cutoff", "max_ell", "num_interactions", "hidden_irreps",
              "correlation", "MLP_irreps", "radial_MLP", "num_moment_basis", "max_ell_m", "max_ell_odd",
              "num_exchange_basis", "landau_order")


def resolve_dtype(dtype) -> torch.dtype:
    """torch dtype from "float64"/"float32" (or a torch dtype)."""
    if isinstance(dtype, torch.dtype) and dtype in (torch.float32, torch.float64):
        return dtype
    table = {"float64": torch.float64, "double": torch.float64, "float32": torch.float32, "float": torch.float32}
    if str(dtype) not in table:
        raise ConfigError(f"dtype must be 'float64' or 'float32', got {dtype!r}")
    return table[str(dtype)]


def resolve_device(device) -> torch.device:
    """torch device; raises DeviceError for a CUDA device that is not available."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(f"device must be 'cpu' or 'cuda[:k]', got {device!r}") from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"device {device!r} asked for, but no CUDA device is available here; use device='cpu'")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise DeviceError(f"device {device!r} asked for, but only {torch.cuda.device_count()} CUDA device(s) exist")
    elif dev.type != "cpu":
        raise ConfigError(f"device must be 'cpu' or 'cuda[:k]', got {device!r}")
    return dev


# ----------------------------------------------------------------------------------- metrics
def _predict(model, batch, stress):
    return model(batch, compute_forces=True, compute_magnetic_forces=True, compute_stress=stress, training=False)


def _errors(out, batch):
    """Squared errors and counts of one batch (sums; float64 on CPU)."""
    n = batch["n_atoms"].to(out["energy"].dtype)
    em = batch["energy_mask"]
    r = {}
    de = ((out["energy"] - batch["energy"]) / n)[em]
    r["energy"] = (float((de.double() ** 2).sum()), int(em.sum()))
    fm = batch["forces_mask"][batch["batch"]]
    df = (out["forces"] - batch["forces"])[fm]
    r["forces"] = (float((df.double() ** 2).sum()), int(df.numel()))
    hm = batch["magnetic_forces_mask"][batch["batch"]] & ((batch["magmoms"] ** 2).sum(-1) > 0)
    dh = (out["magnetic_forces"] - batch["magnetic_forces"])[hm]
    r["magnetic_forces"] = (float((dh.double() ** 2).sum()), int(dh.numel()))
    if out.get("stress") is not None:
        sm = batch["stress_mask"]
        ds = (out["stress"] - batch["stress"])[sm]
        r["stress"] = (float((ds.double() ** 2).sum()), int(ds.numel()))
    return r


def evaluate_graphs(model, graphs, batch_size=8, dtype=torch.float64, device="cpu", stress=None) -> dict:
    """RMSEs of ``model`` on prebuilt graphs: ``energy_rmse`` meV/atom, ``forces_rmse`` meV/Å,
    ``magnetic_forces_rmse`` meV/μB and, where the data have stresses, ``stress_rmse`` meV/Å³."""
    sums = {}
    if stress is None:
        stress = any(bool(g["stress_mask"].any()) for g in graphs)
    for k in range(0, len(graphs), batch_size):
        batch = collate(graphs[k:k + batch_size], dtype=dtype, device=device)
        out = _predict(model, batch, stress)
        for key, (s, c) in _errors(out, batch).items():
            a, b = sums.get(key, (0.0, 0))
            sums[key] = (a + s, b + c)
    res = {}
    for key, (s, c) in sums.items():
        res[f"{key}_rmse"] = 1000.0 * math.sqrt(s / c) if c else float("nan")
    return res


def _loss(out, batch, w):
    wc = batch["weight"]
    n = batch["n_atoms"].to(wc.dtype)
    em = batch["energy_mask"].to(wc.dtype)
    loss = w["energy_weight"] * (wc * em * ((out["energy"] - batch["energy"]) / n) ** 2).sum() / em.sum().clamp(min=1)
    wa = wc[batch["batch"]]
    if w["forces_weight"] > 0:
        fm = batch["forces_mask"].to(wc.dtype)[batch["batch"]]
        loss = loss + w["forces_weight"] * (wa * fm * ((out["forces"] - batch["forces"]) ** 2).mean(-1)).sum() / (
            fm.sum().clamp(min=1))
    if w["magnetic_forces_weight"] > 0:
        hm = (batch["magnetic_forces_mask"][batch["batch"]] & ((batch["magmoms"] ** 2).sum(-1) > 0)).to(wc.dtype)
        loss = loss + w["magnetic_forces_weight"] * (
            wa * hm * ((out["magnetic_forces"] - batch["magnetic_forces"]) ** 2).mean(-1)).sum() / hm.sum().clamp(min=1)
    if w["stress_weight"] > 0 and out.get("stress") is not None:
        sm = batch["stress_mask"].to(wc.dtype)
        loss = loss + w["stress_weight"] * (wc * sm * ((out["stress"] - batch["stress"]) ** 2).mean((-1, -2))).sum() / (
            sm.sum().clamp(min=1))
    return loss


def _valid_loss(metrics, w):
    """A validation loss from RMSEs (same weights as training, in eV units)."""
    total = w["energy_weight"] * (metrics["energy_rmse"] / 1000) ** 2
    total += w["forces_weight"] * (metrics["forces_rmse"] / 1000) ** 2
    total += w["magnetic_forces_weight"] * (metrics["magnetic_forces_rmse"] / 1000) ** 2
    if w["stress_weight"] > 0 and "stress_rmse" in metrics:
        total += w["stress_weight"] * (metrics["stress_rmse"] / 1000) ** 2
    return total


# ------------------------------------------------------------------ statistics from the data
def _avg_num_neighbors(graphs) -> float:
    edges = sum(int(g["edge_index"].shape[1]) for g in graphs)
    atoms = sum(int(g["positions"].shape[0]) for g in graphs)
    return edges / max(atoms, 1)


def _m_max_from_data(data, elements) -> dict:
    """Per element: 1.2 × the largest moment magnitude in the data (μB), at least 0.1 μB."""
    out = {}
    for z in elements:
        mags = [np.linalg.norm(_magmoms(at)[at.numbers == z], axis=-1) for at in data]
        mags = np.concatenate(mags) if mags else np.zeros(0)
        out[int(z)] = float(max(0.1, 1.2 * mags.max())) if mags.size else 3.0
    return out


def _magmoms(at):
    m = at.arrays.get("magmoms")
    if m is None:
        m = at.get_initial_magnetic_moments()
    m = np.asarray(m, dtype=np.float64)
    if m.ndim == 1:
        m = np.stack([np.zeros_like(m), np.zeros_like(m), m], axis=1)
    return m


def _rms_forces(graphs) -> float:
    f = torch.cat([g["forces"][g["forces_mask"][g["batch"]]] for g in graphs])
    return float(torch.sqrt((f**2).mean())) if f.numel() else 1.0


def _fit_one_body(model, graphs, species_to_fit, fit_e0, fit_landau, w_h, dtype, device, batch_size=8):
    """Least-squares E0 (eV) and Landau coefficients of the species ``species_to_fit`` on the
    residuals of energies and magnetic forces left by the rest of the model."""
    S = len(model.z_table)
    order = model.landau_order if fit_landau else 0
    fit = list(species_to_fit)
    if not fit or (not fit_e0 and order == 0):
        return
    with torch.no_grad():
        if fit_e0:
            model.atomic_energies[fit] = 0.0
        if order:
            model.landau[fit] = 0.0
    rows_e, rhs_e, rows_h, rhs_h = [], [], [], []
    ncol_e0 = len(fit) if fit_e0 else 0
    ncol = ncol_e0 + len(fit) * order
    for k in range(0, len(graphs), batch_size):
        batch = collate(graphs[k:k + batch_size], dtype=dtype, device=device)
        out = _predict(model, batch, False)
        sp = batch["species"].cpu().numpy()
        bidx = batch["batch"].cpu().numpy()
        mt = (batch["magmoms"] / model.m_max[batch["species"]].unsqueeze(-1)).detach().cpu().double().numpy()
        u = (mt**2).sum(-1)
        mmax = model.m_max[batch["species"]].detach().cpu().double().numpy()
        B = int(batch["n_atoms"].shape[0])
        A = np.zeros((B, ncol))
        for c_, s in enumerate(fit):
            sel = sp == s
            if fit_e0:
                A[:, c_] = np.bincount(bidx[sel], minlength=B)
            for p in range(order):
                A[:, ncol_e0 + c_ * order + p] = np.bincount(bidx[sel], weights=u[sel] ** (p + 1), minlength=B)
        em = batch["energy_mask"].cpu().numpy()
        n = batch["n_atoms"].cpu().numpy()
        res = (batch["energy"] - out["energy"]).detach().cpu().double().numpy()
        rows_e.append(A[em] / n[em, None])
        rhs_e.append(res[em] / n[em])
        if order and w_h > 0:
            hm = batch["magnetic_forces_mask"].cpu().numpy()[bidx]
            # h = −∂E/∂m; ∂(u^p)/∂m = p u^(p−1) 2 m̃ / m_max
            H = np.zeros((len(sp), 3, ncol))
            for c_, s in enumerate(fit):
                sel = (sp == s) & hm
                for p in range(order):
                    H[sel, :, ncol_e0 + c_ * order + p] = -((p + 1) * u[sel] ** p * 2 / mmax[sel])[:, None] * mt[sel]
            rh = (batch["magnetic_forces"] - out["magnetic_forces"]).detach().cpu().double().numpy()
            rows_h.append(H[hm].reshape(-1, ncol))
            rhs_h.append(rh[hm].reshape(-1))
    A = np.concatenate(rows_e)
    b = np.concatenate(rhs_e)
    if rows_h:
        scale = math.sqrt(w_h)
        A = np.concatenate([A, scale * np.concatenate(rows_h)])
        b = np.concatenate([b, scale * np.concatenate(rhs_h)])
    # a little ridge on the Landau coefficients keeps them finite where the data cannot fix them
    reg = np.zeros(ncol)
    reg[ncol_e0:] = 1e-6 * len(b)
    x = np.linalg.solve(A.T @ A + np.diag(reg) + 1e-12 * np.eye(ncol), A.T @ b) if ncol else np.zeros(0)
    with torch.no_grad():
        for c_, s in enumerate(fit):
            if fit_e0:
                model.atomic_energies[s] = float(x[c_])
            for p in range(order):
                model.landau[s, p] = float(x[ncol_e0 + c_ * order + p])
    _ = S


# ------------------------------------------------------------------------ weight transfer
def transfer_weights(old_model, new_model) -> None:
    """Copy the weights of ``old_model`` into ``new_model`` whose species table is a superset.

    Species-independent tensors are copied as they are; tensors with a species axis (found where
    the two shapes differ by the number of species, species-major) get the old species' slices in
    the positions of those species in the new table; the new species keep their initial values.
    e3nn tensor products and linears with flattened weights are handled path by path."""
    old_z = [int(z) for z in old_model.z_table]
    new_z = [int(z) for z in new_model.z_table]
    missing = set(old_z) - set(new_z)
    if missing:
        raise InputError(f"the new model must know every element of the old one; missing Z={sorted(missing)}")
    pos = [new_z.index(z) for z in old_z]
    So, Sn = len(old_z), len(new_z)
    if So == Sn and pos != list(range(Sn)):
        raise InputError(f"species tables {old_z} and {new_z} hold the same elements in another order")

    def place(new, old):
        """Copy ``old`` into ``new`` (in place) mapping the single differing axis by species."""
        if new.shape == old.shape:
            new.copy_(old)
            return
        diff = [ax for ax in range(new.dim()) if new.shape[ax] != old.shape[ax]]
        if len(diff) != 1:
            raise InputError(f"cannot transfer a weight of shape {tuple(old.shape)} into {tuple(new.shape)}")
        ax = diff[0]
        if new.shape[ax] % Sn or old.shape[ax] % So or new.shape[ax] // Sn != old.shape[ax] // So:
            raise InputError(f"cannot map species axis {ax} of {tuple(old.shape)} onto {tuple(new.shape)}")
        k = new.shape[ax] // Sn
        nv = new.unflatten(ax, (Sn, k))
        ov = old.unflatten(ax, (So, k))
        for a, p in enumerate(pos):
            nv.select(ax, p).copy_(ov.select(ax, a))

    old_mods = dict(old_model.named_modules())
    handled = set()
    with torch.no_grad():
        for name, mod in new_model.named_modules():
            om = old_mods.get(name)
            if om is None:
                continue
            w_new = getattr(mod, "weight", None)
            w_old = getattr(om, "weight", None)
            if (hasattr(mod, "weight_views") and isinstance(w_new, torch.nn.Parameter)
                    and isinstance(w_old, torch.Tensor) and w_new.shape != w_old.shape and w_new.dim() == 1):
                # e3nn normalises each path by its fan-in, which grows with the number of species:
                # rescale so that weight × path_weight is what it was
                for it_n, it_o in zip(mod.weight_views(yield_instruction=True),
                                      om.weight_views(yield_instruction=True)):
                    (ins_n, vn), (ins_o, vo) = it_n[-2:], it_o[-2:]
                    place(vn, vo * (float(ins_o.path_weight) / float(ins_n.path_weight)))
                handled.add(f"{name}.weight" if name else "weight")
        old_params = dict(old_model.named_parameters())
        old_params.update(dict(old_model.named_buffers()))
        for name, t in list(new_model.named_parameters()) + list(new_model.named_buffers()):
            if name in handled or name == "z_table":
                continue
            if name not in old_params:
                raise InputError(f"cannot transfer weights: the old model has no {name!r}")
            place(t.data, old_params[name].data.to(t.dtype))


# ----------------------------------------------------------------------- checkpoint format
def _split_state(obj, prefix, tensors):
    """JSON-able copy of ``obj`` with tensors moved into ``tensors`` under dotted keys."""
    if isinstance(obj, torch.Tensor):
        tensors[prefix] = obj.detach().cpu().contiguous().clone()
        return {"__tensor__": prefix}
    if isinstance(obj, dict):
        return {"__dict__": [[_split_state(k, f"{prefix}.k{n}", tensors), _split_state(v, f"{prefix}.{n}", tensors)]
                             for n, (k, v) in enumerate(obj.items())]}
    if isinstance(obj, (list, tuple)):
        return {"__list__": [_split_state(v, f"{prefix}.{n}", tensors) for n, v in enumerate(obj)],
                "tuple": isinstance(obj, tuple)}
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot store {type(obj).__name__} in a checkpoint")


def _join_state(obj, tensors):
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            return tensors[obj["__tensor__"]]
        if "__dict__" in obj:
            return {_join_state(k, tensors): _join_state(v, tensors) for k, v in obj["__dict__"]}
        if "__list__" in obj:
            items = [_join_state(v, tensors) for v in obj["__list__"]]
            return tuple(items) if obj.get("tuple") else items
    return obj


def save_checkpoint(path_dir, *, model, optimizer, scheduler, ema, epoch, history, best, best_state, meta):
    """Write ``checkpoint.safetensors`` + ``checkpoint.json`` into ``path_dir`` atomically."""
    from safetensors.torch import save_file

    d = Path(path_dir)
    d.mkdir(parents=True, exist_ok=True)
    tensors = {}
    state = {
        "model": _split_state(model.state_dict(), "model", tensors),
        "optimizer": _split_state(optimizer.state_dict(), "optimizer", tensors),
        "scheduler": _split_state(scheduler.state_dict(), "scheduler", tensors) if scheduler is not None else None,
        "ema": _split_state(ema.state_dict(), "ema", tensors),
        "best_state": _split_state(best_state, "best_state", tensors) if best_state is not None else None,
        "epoch": int(epoch), "history": history, "best": best, "meta": meta,
        "format": "spinlat-mmace-checkpoint", "version": 1,
    }
    tmp_t, tmp_j = d / "checkpoint.safetensors.tmp", d / "checkpoint.json.tmp"
    save_file(tensors, str(tmp_t), metadata={"format": "spinlat-mmace-checkpoint"})
    tmp_j.write_text(json.dumps(state))
    tmp_t.replace(d / "checkpoint.safetensors")
    tmp_j.replace(d / "checkpoint.json")


def load_checkpoint(path_dir) -> dict | None:
    """The training state saved by :func:`save_checkpoint`, or None if there is none."""
    from safetensors.torch import load_file

    d = Path(path_dir)
    if not (d / "checkpoint.json").exists() or not (d / "checkpoint.safetensors").exists():
        return None
    from ...errors import FileFormatError

    try:
        state = json.loads((d / "checkpoint.json").read_text())
        tensors = load_file(str(d / "checkpoint.safetensors"))
    except Exception as exc:
        raise FileFormatError(f"cannot read the training checkpoint in {d}: {exc}") from exc
    if state.get("format") != "spinlat-mmace-checkpoint":
        raise FileFormatError(f"{d / 'checkpoint.json'} is not a spinlat mMACE checkpoint")
    return {k: _join_state(v, tensors) for k, v in state.items()}


# ------------------------------------------------------------------------------ training
def _table_header():
    return (f"{'epoch':>5} {'loss':>10} {'E meV/at':>9} {'F meV/Å':>9} {'h meV/μB':>9} "
            f"{'lr':>8} {'time s':>7}")


def _table_row(row):
    return (f"{row['epoch']:>5d} {row['train_loss']:>10.4g} {row['energy_rmse']:>9.2f} {row['forces_rmse']:>9.1f} "
            f"{row['magnetic_forces_rmse']:>9.1f} {row['lr']:>8.2g} {row['time']:>7.1f}")


def _element_list(data):
    return sorted({int(z) for at in data for z in at.numbers})


def _pot_class():
    from .potential import MagneticMACE

    return MagneticMACE


def train(train, valid=None, soc=None, max_minutes=None, seed=0, init_from=None, **options):
    """Train (or fine-tune) an mMACE model and return it as a ``MagneticMACE`` potential.

    Parameters
    ----------
    train, valid : datasets — lists of ase.Atoms, extxyz paths, or ``{"teacher": {...}}`` specs
        (see :mod:`spinlat.datasets`). Without ``valid``, a fraction ``valid_fraction`` of
        ``train`` (chosen by ``seed``) is held out.
    soc : the model's symmetry variant (default True; with ``init_from`` the old model's).
    max_minutes : wall-clock budget of the training loop, minutes (None: no limit).
    seed : seed of the model's initial weights, the split and the shuffling.
    init_from : a MagneticMACE (or a model file) to fine-tune; it may know fewer elements than
        the data (species weights are extended).
    options : training options (defaults in :data:`TRAIN_DEFAULTS`): ``epochs``, ``batch_size``,
        ``lr``, ``weight_decay``, ``energy_weight`` (per (eV/atom)²), ``forces_weight``
        (per (eV/Å)²), ``magnetic_forces_weight`` (per (eV/μB)²), ``stress_weight`` (per
        (eV/Å³)²), ``ema_decay``, ``patience`` (epochs without improvement before stopping),
        ``scheduler`` ("plateau" | "cosine" over the
        epochs | "cosine_time" over ``max_minutes``), ``lr_factor``, ``scheduler_patience``, ``min_lr``,
        ``valid_fraction``, ``fit_landau``, ``clip_grad``, ``checkpoint_dir``,
        ``checkpoint_every`` (epochs), ``resume``, ``cache_dir`` (on-disk graph cache),
        ``device``, ``dtype``, ``progress``, ``E0s`` ("average" or {element: eV});
        any other keyword is a model hyperparameter (mace-torch names, see
        :data:`spinlat.potentials.mmace.model.DEFAULTS`).

    Returns the model with the best validation loss (EMA weights), with ``training_history``
    (a list of per-epoch metric dicts) attached.
    """
    from .model import DEFAULTS

    opts = dict(TRAIN_DEFAULTS)
    hyper = {}
    for key, val in options.items():
        if key in TRAIN_DEFAULTS:
            opts[key] = val
        elif key in DEFAULTS:
            hyper[key] = val
        else:
            raise ConfigError(f"unknown training option or hyperparameter {key!r}; expected one of "
                              f"{sorted(TRAIN_DEFAULTS)} or model hyperparameters {sorted(DEFAULTS)}")
    if opts["scheduler"] not in ("plateau", "cosine", "cosine_time"):
        raise ConfigError(f"scheduler must be 'plateau', 'cosine' or 'cosine_time', got {opts['scheduler']!r}")
    if opts["scheduler"] == "cosine_time" and max_minutes is None:
        raise ConfigError("scheduler='cosine_time' decays the learning rate over max_minutes; give max_minutes")
    for key in ("energy_weight", "forces_weight", "magnetic_forces_weight", "stress_weight"):
        if not float(opts[key]) >= 0:
            raise ConfigError(f"{key} must be a non-negative number, got {opts[key]!r}")
    if int(opts["batch_size"]) < 1 or int(opts["epochs"]) < 0:
        raise ConfigError("batch_size must be ≥ 1 and epochs ≥ 0")
    if max_minutes is not None and not float(max_minutes) > 0:
        raise ConfigError(f"max_minutes must be positive, got {max_minutes!r}")
    dtype = resolve_dtype(opts["dtype"])
    device = resolve_device(opts["device"])
    weights = {k: float(opts[k]) for k in ("energy_weight", "forces_weight", "magnetic_forces_weight",
                                            "stress_weight")}
    t_start = time.perf_counter()
    MagneticMACE = _pot_class()

    # ---- data
    train_data = load_dataset(train, "train")
    optional = tuple(k for k, w in (("magnetic_forces", weights["magnetic_forces_weight"]),
                                    ("forces", weights["forces_weight"])) if w == 0)
    check_dataset(train_data, "train", optional)
    rng = np.random.default_rng(seed)
    if valid is None:
        if len(train_data) < 2:
            raise ConfigError("need at least 2 training configurations to split off a validation set "
                              "(or give valid=...)")
        perm = rng.permutation(len(train_data))
        n_valid = max(1, int(round(float(opts["valid_fraction"]) * len(train_data))))
        valid_data = [train_data[k] for k in perm[:n_valid]]
        train_data = [train_data[k] for k in sorted(perm[n_valid:])]
    else:
        valid_data = load_dataset(valid, "valid")
        check_dataset(valid_data, "valid", optional)

    # ---- model
    base = None
    if init_from is not None:
        base = init_from if hasattr(init_from, "model") else MagneticMACE.load(init_from, device="cpu",
                                                                               dtype="float64")
        base_soc = bool(base.model.soc)
        if soc is not None and bool(soc) != base_soc:
            raise ConfigError(f"init_from model has soc={base_soc}, but soc={soc} was asked for")
        soc = base_soc
        bad = {k for k in hyper if k in _ARCH_KEYS and hyper[k] != base.hyperparameters.get(k)}
        if bad:
            raise ConfigError(f"hyperparameters {sorted(bad)} differ from those of the init_from model; "
                              "fine-tuning keeps the architecture")
        hp = {k: v for k, v in base.hyperparameters.items() if k not in ("elements", "soc")}
        hp.update({k: v for k, v in hyper.items() if k not in _ARCH_KEYS})
        old_z = [int(z) for z in base.model.z_table]
    else:
        soc = True if soc is None else bool(soc)
        hp = dict(DEFAULTS)
        hp.update(hyper)
        old_z = []
    elements = sorted(set(old_z) | set(_element_list(train_data)) | set(_element_list(valid_data)))
    new_species_z = [z for z in elements if z not in old_z]
    r_max = float(hp["r_max"])
    graphs_train = graphs_of(train_data, r_max, elements, opts["cache_dir"], progress=False)
    if "avg_num_neighbors" not in hyper and base is None:
        hp["avg_num_neighbors"] = _avg_num_neighbors(graphs_train)
    # per-species moment scale: from the old model for known elements, from the data otherwise
    from ase.data import chemical_symbols

    user_m_max = hyper.get("m_max")
    data_m_max = _m_max_from_data(train_data, elements)
    m_max = {}
    for z in elements:
        if z in old_z:
            m_max[z] = float(base.model.m_max[old_z.index(z)])
        elif isinstance(user_m_max, dict):
            if chemical_symbols[z] not in user_m_max and z not in user_m_max:
                raise ConfigError(f"m_max gives no value for {chemical_symbols[z]}")
            m_max[z] = float(user_m_max.get(chemical_symbols[z], user_m_max.get(z)))
        elif user_m_max is not None:
            m_max[z] = float(user_m_max)
        else:
            m_max[z] = data_m_max[z]
    hp["m_max"] = {chemical_symbols[z]: m_max[z] for z in elements}
    symbols = [chemical_symbols[z] for z in elements]
    pot = MagneticMACE.create(elements=symbols, soc=soc, seed=seed, device=str(device),
                              dtype="float64" if dtype == torch.float64 else "float32", **hp)
    model = pot.model
    z_table = [int(z) for z in model.z_table]
    if z_table != elements:
        graphs_train = graphs_of(train_data, r_max, z_table, opts["cache_dir"])
    graphs_valid = graphs_of(valid_data, r_max, z_table, opts["cache_dir"])
    if base is not None:
        transfer_weights(base.model.to(device=device, dtype=dtype), model)
        base.model.to(dtype=base.dtype, device=base.device)
    model.to(device=device, dtype=dtype)

    # ---- one-body terms and scale
    e0_given = isinstance(opts["E0s"], dict)
    if not e0_given and opts["E0s"] != "average":
        raise ConfigError(f"E0s must be 'average' or a mapping element -> eV, got {opts['E0s']!r}")
    if base is None:
        with torch.no_grad():
            model.scale.fill_(_rms_forces(graphs_train))
            model.shift.fill_(0.0)
    fit_species = [z_table.index(z) for z in (elements if base is None else new_species_z)]
    if e0_given:
        with torch.no_grad():
            for key, val in opts["E0s"].items():
                z = chemical_symbols.index(key) if isinstance(key, str) else int(key)
                if z not in z_table:
                    continue
                model.atomic_energies[z_table.index(z)] = float(val)
        missing = [chemical_symbols[z_table[s]] for s in fit_species if
                   chemical_symbols[z_table[s]] not in opts["E0s"] and z_table[s] not in opts["E0s"]]
        if missing:
            raise ConfigError(f"E0s gives no reference energy for {missing}")
    _fit_one_body(model, graphs_train, fit_species, not e0_given, bool(opts["fit_landau"]),
                  weights["magnetic_forces_weight"] / max(weights["energy_weight"], 1e-12), dtype, device)

    # ---- optimiser, schedule, EMA
    from torch_ema import ExponentialMovingAverage

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=float(opts["lr"]), weight_decay=float(opts["weight_decay"]),
                                 amsgrad=True)
    epochs = int(opts["epochs"])
    if opts["scheduler"] == "plateau":
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=float(opts["lr_factor"]),
                                                               patience=int(opts["scheduler_patience"]),
                                                               min_lr=float(opts["min_lr"]))
    elif opts["scheduler"] == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(epochs, 1),
                                                               eta_min=float(opts["min_lr"]))
    else:  # cosine_time: lr set per batch from the elapsed fraction of the time budget
        scheduler = None
    ema = ExponentialMovingAverage(params, decay=float(opts["ema_decay"]))
    history, best, best_state, start_epoch = [], None, None, 0
    meta = {"elements": z_table, "soc": soc, "seed": int(seed), "hyperparameters": _jsonable(hp),
            "n_train": len(train_data), "n_valid": len(valid_data)}
    ckpt_dir = opts["checkpoint_dir"]
    if ckpt_dir is not None and opts["resume"]:
        ck = load_checkpoint(ckpt_dir)
        if ck is not None:
            if ck["meta"] != json.loads(json.dumps(meta)):
                raise ConfigError(f"the checkpoint in {ckpt_dir} belongs to another run (model, data or seed "
                                  "differ); use another checkpoint_dir or resume=False")
            model.load_state_dict(ck["model"])
            optimizer.load_state_dict(ck["optimizer"])
            if ck["scheduler"] is not None:
                scheduler.load_state_dict(ck["scheduler"])
            ema.load_state_dict(ck["ema"])
            history, best, best_state, start_epoch = ck["history"], ck["best"], ck["best_state"], ck["epoch"]
    want_stress = weights["stress_weight"] > 0 and any(bool(g["stress_mask"].any()) for g in graphs_train)

    # ---- loop
    deadline = None if max_minutes is None else t_start + 60.0 * float(max_minutes)
    t_loop = time.perf_counter()
    bs = int(opts["batch_size"])
    progress = bool(opts["progress"])
    if progress:
        from tqdm.auto import tqdm

        tqdm.write(_table_header())
    stop_reason = "epochs"
    bad_epochs = 0 if best is None else history[-1].get("bad_epochs", 0)
    out_of_time = False
    for epoch in range(start_epoch, epochs):
        order = np.random.default_rng([int(seed), epoch]).permutation(len(graphs_train))
        batches = [order[k:k + bs] for k in range(0, len(order), bs)]
        it = batches
        if progress:
            it = tqdm(batches, desc=f"epoch {epoch + 1}", leave=False)
        model.train()
        total, count = 0.0, 0
        for idx in it:
            batch = collate([graphs_train[k] for k in idx], dtype=dtype, device=device)
            out = model(batch, compute_forces=True, compute_magnetic_forces=True, compute_stress=want_stress,
                        training=True)
            loss = _loss(out, batch, weights)
            if not torch.isfinite(loss):
                from ...errors import SimulationError

                raise SimulationError(f"training loss became {float(loss)} at epoch {epoch + 1}; "
                                      "lower lr or check the data")
            if scheduler is None:  # cosine over the wall-clock budget
                frac = min(1.0, (time.perf_counter() - t_loop) / (deadline - t_loop))
                lr_now = float(opts["min_lr"]) + 0.5 * (float(opts["lr"]) - float(opts["min_lr"])) * (
                    1.0 + math.cos(math.pi * frac))
                for g in optimizer.param_groups:
                    g["lr"] = lr_now
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if opts["clip_grad"]:
                torch.nn.utils.clip_grad_norm_(params, float(opts["clip_grad"]))
            optimizer.step()
            ema.update()
            total += float(loss.detach()) * len(idx)
            count += len(idx)
            if deadline is not None and time.perf_counter() > deadline:
                out_of_time = True
                break
        model.eval()
        with ema.average_parameters():
            metrics = evaluate_graphs(model, graphs_valid, batch_size=max(bs, 8), dtype=dtype, device=device)
            vloss = _valid_loss(metrics, weights)
            improved = best is None or vloss < best["valid_loss"]
            if improved:
                best = {"valid_loss": vloss, "epoch": epoch + 1, **metrics}
                best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        bad_epochs = 0 if improved else bad_epochs + 1
        if opts["scheduler"] == "plateau":
            scheduler.step(vloss)
        elif scheduler is not None:
            scheduler.step()
        row = {"epoch": epoch + 1, "train_loss": total / max(count, 1), "valid_loss": vloss, **metrics,
               "lr": optimizer.param_groups[0]["lr"], "time": time.perf_counter() - t_start,
               "bad_epochs": bad_epochs}
        history.append(row)
        if progress:
            tqdm.write(_table_row(row))
        last = out_of_time or epoch + 1 == epochs or bad_epochs >= int(opts["patience"])
        if ckpt_dir is not None and ((epoch + 1) % int(opts["checkpoint_every"]) == 0 or last):
            save_checkpoint(ckpt_dir, model=model, optimizer=optimizer, scheduler=scheduler, ema=ema,
                            epoch=epoch + 1, history=history, best=best, best_state=best_state, meta=meta)
        if out_of_time:
            stop_reason = "time"
            break
        if bad_epochs >= int(opts["patience"]):
            stop_reason = "early stopping"
            break
    if best_state is not None:
        model.load_state_dict({k: v.to(device) for k, v in best_state.items()})
    model.eval()
    pot.training_history = history
    pot.training_summary = {"best": best, "stopped_by": stop_reason, "epochs": len(history),
                            "seconds": time.perf_counter() - t_start, "n_train": len(train_data),
                            "n_valid": len(valid_data)}
    if progress and best is not None:
        tqdm.write(f"best epoch {best['epoch']}: E {best['energy_rmse']:.2f} meV/atom, F {best['forces_rmse']:.1f} "
                   f"meV/Å, h {best['magnetic_forces_rmse']:.1f} meV/μB (stopped by {stop_reason})")
    return pot


def _jsonable(obj):
    return json.loads(json.dumps(obj, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))
