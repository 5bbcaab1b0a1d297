"""The model a training run starts from: built fresh or from a trained model, with its one-body
terms and scale set from the data before the first optimiser step.

- :func:`build_model`: the hyperparameters (checked by
  :class:`~spinlat.potentials.mmace.hyperparameters.Hyperparameters`), with ``avg_num_neighbors``
  and the per-species moment scale ``m_max`` taken from the data unless given; fine-tuning
  (``init_from``) keeps the old model's architecture, copies its weights
  (:func:`transfer_weights`: species-dependent weights extended to new elements, the old species
  keep theirs exactly) and fits only the new species' one-body terms;
- :func:`interaction_scale`: the scale of the interaction energy, the RMS force of the data (or,
  for energies-only data, the RMS per-atom energy left by a composition fit);
- :func:`fit_one_body`: per-species reference energies E0 (``E0s="average"``; ``"isolated"`` and a
  mapping set them, :func:`spinlat.training.loop.isolated_atom_energies`) and Landau
  coefficients by linear least squares on the energies and magnetic forces the data carry.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

from ..errors import ConfigError, InputError
from ..potentials.mmace.hyperparameters import Hyperparameters
from ..potentials.mmace.labels import input_moments
from ..potentials.mmace.metrics import label_masks, longitudinal_atoms
from .data import collate, configuration_name, dataset_hash, graphs_of, warn_if_collinear_data, warn_if_spin_orbit_data


def element_list(data) -> list[int]:
    """Sorted atomic numbers present in ``data`` (ase.Atoms)."""
    return sorted({int(z) for at in data for z in at.numbers})


def avg_num_neighbors(graphs) -> float:
    """Mean number of neighbours within the cutoff (directed edges per atom)."""
    edges = sum(int(g["edge_index"].shape[1]) for g in graphs)
    atoms = sum(int(g["positions"].shape[0]) for g in graphs)
    return edges / max(atoms, 1)


def m_max_from_data(data, elements) -> dict:
    """Per atomic number: 1.2 × the largest moment magnitude of that element in the data (μB), at
    least 0.1 μB; 3 μB for an element absent from the data."""
    out = {}
    for z in elements:
        mags = [np.linalg.norm(input_moments(at, configuration_name(data, k))[at.numbers == z], axis=-1)
                for k, at in enumerate(data)]
        mags = np.concatenate(mags) if mags else np.zeros(0)
        out[int(z)] = float(max(0.1, 1.2 * mags.max())) if mags.size else 3.0
    return out


def interaction_scale(graphs) -> float:
    """The scale (eV) of the interaction energy: the RMS force component (eV/Å) of the labelled
    forces; without forces, the RMS per-atom energy (eV/atom) left after a least-squares fit of
    per-element energies to the labelled energies (at least 1 meV); 1 without either."""
    f = torch.cat([g["forces"][g["forces_mask"][g["batch"]]] for g in graphs])
    if f.numel():
        return float(torch.sqrt((f ** 2).mean()))
    labelled = [g for g in graphs if bool(g["energy_mask"].any())]
    if not labelled:
        return 1.0
    counts = np.stack([g["node_attrs"].sum(0).numpy() for g in labelled])        # (C, S)
    energy = np.array([float(g["energy"][0]) for g in labelled])
    e0, *_ = np.linalg.lstsq(counts, energy, rcond=None)
    per_atom = (energy - counts @ e0) / counts.sum(1)
    return float(max(1e-3, math.sqrt(float(np.mean(per_atom ** 2)))))


def fit_one_body(model, graphs, species_to_fit, fit_e0, fit_landau, w_h, dtype, device, batch_size=8):
    """Least-squares E0 (eV) and Landau coefficients of the species ``species_to_fit`` on the
    residuals of the labelled energies (per atom) and magnetic forces (rows scaled by √w_h, the
    ratio of the magnetic-force to the energy loss weight; of a collinear label only the component
    along the moment) left by the rest of the model; a small
    ridge keeps Landau coefficients finite where the data cannot fix them."""
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
        out = model(batch, compute_forces=False, compute_magnetic_forces=bool(order and w_h > 0),
                    compute_stress=False, training=False)
        masks = {key: m.cpu().numpy() for key, m in label_masks(batch).items()}
        sp = batch["species"].cpu().numpy()
        bidx = batch["batch"].cpu().numpy()
        mmax = model.m_max[batch["species"]].detach().cpu().double().numpy()
        mt = batch["magmoms"].detach().cpu().double().numpy() / mmax[:, None]
        u = (mt ** 2).sum(-1)
        B = int(batch["n_atoms"].shape[0])
        A = np.zeros((B, ncol))
        for c_, s in enumerate(fit):
            sel = sp == s
            if fit_e0:
                A[:, c_] = np.bincount(bidx[sel], minlength=B)
            for p in range(order):
                A[:, ncol_e0 + c_ * order + p] = np.bincount(bidx[sel], weights=u[sel] ** (p + 1), minlength=B)
        em = masks["energy"]
        n = batch["n_atoms"].cpu().numpy()
        res = (batch["energy"] - out["energy"]).detach().cpu().double().numpy()
        rows_e.append(A[em] / n[em, None])
        rhs_e.append(res[em] / n[em])
        if order and w_h > 0:
            hm = masks["magnetic_forces"]
            # h = −∂E/∂m; ∂(u^p)/∂m = p u^(p−1) 2 m̃ / m_max
            H = np.zeros((len(sp), 3, ncol))
            for c_, s in enumerate(fit):
                sel = (sp == s) & hm
                for p in range(order):
                    H[sel, :, ncol_e0 + c_ * order + p] = -((p + 1) * u[sel] ** p * 2 / mmax[sel])[:, None] * mt[sel]
            rh = (batch["magnetic_forces"] - out["magnetic_forces"]).detach().cpu().double().numpy()
            axial = longitudinal_atoms(batch).cpu().numpy() & hm
            if axial.any():  # collinear labels: only the component along the moment (rows m̂ m̂ᵀ·)
                mhat = mt[axial] / np.linalg.norm(mt[axial], axis=1)[:, None]
                H[axial] = mhat[:, :, None] * np.einsum("ak,akc->ac", mhat, H[axial])[:, None, :]
                rh[axial] = mhat * np.einsum("ak,ak->a", mhat, rh[axial])[:, None]
            rows_h.append(H[hm].reshape(-1, ncol))
            rhs_h.append(rh[hm].reshape(-1))
    A = np.concatenate(rows_e + [np.sqrt(w_h) * r for r in rows_h])
    b = np.concatenate(rhs_e + [np.sqrt(w_h) * r for r in rhs_h])
    if len(b) == 0:
        return
    reg = np.zeros(ncol)
    reg[ncol_e0:] = 1e-6 * len(b)
    x = np.linalg.solve(A.T @ A + np.diag(reg) + 1e-12 * np.eye(ncol), A.T @ b)
    with torch.no_grad():
        for c_, s in enumerate(fit):
            if fit_e0:
                model.atomic_energies[s] = float(x[c_])
            for p in range(order):
                model.landau[s, p] = float(x[ncol_e0 + c_ * order + p])


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


@dataclasses.dataclass
class InitialModel:
    """What :func:`build_model` returns: the potential to train (``pot``, its torch ``model``), the
    graphs of both data sets in its species order, its checked ``hyperparameters`` and the
    ``meta`` data that identify the run in a checkpoint (``meta["data"]``: the hashes of the two
    data sets, :func:`~spinlat.training.data.dataset_hash`; None when neither a graph cache nor a
    checkpoint is used)."""

    pot: object
    graphs_train: list
    graphs_valid: list
    hyperparameters: dict
    meta: dict

    @property
    def model(self):
        return self.pot.model


def _fine_tune_base(init_from, soc, hyper):
    """(base potential, soc) for fine-tuning: the model to start from, loaded if a file; its soc
    and architecture must match what was asked."""
    from ..potentials.mmace.potential import MagneticMACE

    base = init_from if hasattr(init_from, "model") else MagneticMACE.load(init_from, device="cpu", dtype="float64")
    base_soc = bool(base.model.soc)
    if soc is not None and bool(soc) != base_soc:
        raise ConfigError(f"init_from model has soc={base_soc}, but soc={soc} was asked for")
    arch = set(Hyperparameters.architecture()) - {"elements", "soc"}
    bad = sorted(k for k in hyper if k in arch and hyper[k] != base.hyperparameters.get(k))
    if bad:
        raise ConfigError(f"hyperparameters {bad} differ from those of the init_from model; fine-tuning keeps the "
                          "architecture")
    return base, base_soc


def _m_max(elements, old_z, base, user, data):
    """Per-species moment scale (μB) by atomic number: the old model's for elements it knows, else
    the user's (a number or {symbol: μB}), else from the data."""
    from ase.data import chemical_symbols

    from_data = m_max_from_data(data, elements)
    out = {}
    for z in elements:
        sym = chemical_symbols[z]
        if z in old_z:
            out[z] = float(base.model.m_max[old_z.index(z)])
        elif isinstance(user, dict):
            if sym not in user:
                raise ConfigError(f"m_max gives no value for {sym}")
            out[z] = float(user[sym])
        elif user is not None:
            out[z] = float(user)
        else:
            out[z] = from_data[z]
    return out


def build_model(train_data, valid_data, soc, hyper, opts, dtype, device) -> InitialModel:
    """The model to train (module docstring) with its one-body terms fitted and its scale set;
    ``hyper``: checked model hyperparameters given by the user, ``opts`` the
    :class:`~spinlat.training.options.TrainingOptions`."""
    from ase.data import chemical_symbols

    from ..potentials.mmace.potential import MagneticMACE

    base, old_z = None, []
    if opts.init_from is not None:
        base, soc = _fine_tune_base(opts.init_from, soc, hyper)
        arch = set(Hyperparameters.architecture())
        hp = {k: v for k, v in base.hyperparameters.items() if k not in ("elements", "soc")}
        hp.update({k: v for k, v in hyper.items() if k not in arch})
        old_z = [int(z) for z in base.model.z_table]
    else:
        soc = True if soc is None else soc
        hp = dict(hyper)
    warn_if_spin_orbit_data(train_data, soc)
    z_train, z_valid = set(element_list(train_data)), set(element_list(valid_data))
    unseen = sorted(z_valid - z_train - set(old_z))
    if unseen:
        raise ConfigError(f"the validation set holds {[chemical_symbols[z] for z in unseen]}, which no training "
                          f"configuration has{' nor the init_from model knows' if base is not None else ''}: the model "
                          "could not learn them (their E0 would be left at 0); move configurations with them into "
                          "the training set (without a validation set given, the random split put all of them into the "
                          "part held out: give valid=... or add configurations with them)")
    elements = sorted(set(old_z) | z_train | z_valid)
    r_max = float(hp.get("r_max", Hyperparameters.defaults()["r_max"]))
    # the data's hashes name the graph cache and identify a checkpointed run: computed once, and
    # only when one of them is used (hashing every configuration costs as much as reading it)
    digests = None
    if opts.cache_dir is not None or opts.checkpoint_dir is not None:
        digests = [dataset_hash(d, r_max, elements) for d in (train_data, valid_data)]
    graphs_train = graphs_of(train_data, r_max, elements, opts.cache_dir, digest=digests and digests[0])
    graphs_valid = graphs_of(valid_data, r_max, elements, opts.cache_dir, digest=digests and digests[1])
    if base is None:  # a fine-tuned model has learned directions from its own data
        warn_if_collinear_data(graphs_train, soc)
    if "avg_num_neighbors" not in hyper and base is None:
        hp["avg_num_neighbors"] = avg_num_neighbors(graphs_train)
    m_max = _m_max(elements, old_z, base, hyper.get("m_max"), train_data)
    hp["m_max"] = {chemical_symbols[z]: m_max[z] for z in elements}
    pot = MagneticMACE.create(elements=[chemical_symbols[z] for z in elements], soc=soc, seed=opts.seed,
                              device=str(device), dtype=opts.dtype, **hp)
    model = pot.model
    z_table = [int(z) for z in model.z_table]
    if base is not None:
        transfer_weights(base.model.to(device=device, dtype=dtype), model)
        base.model.to(dtype=base.dtype, device=base.device)
    model.to(device=device, dtype=dtype)
    if base is None:
        with torch.no_grad():
            model.scale.fill_(interaction_scale(graphs_train))
            model.shift.fill_(0.0)
    fit_species = [z_table.index(z) for z in elements if z not in old_z]
    e0_given = isinstance(opts.E0s, dict)
    if e0_given:
        missing = [chemical_symbols[z_table[s]] for s in fit_species if chemical_symbols[z_table[s]] not in opts.E0s]
        if missing:
            raise ConfigError(f"E0s gives no reference energy for {missing} (E0s={{element: eV}} names every element "
                              "of the data that the model does not know yet; E0s='isolated' needs a single-atom "
                              "configuration marked config_type=IsolatedAtom of each)")
        with torch.no_grad():
            for s in fit_species:
                model.atomic_energies[s] = float(opts.E0s[chemical_symbols[z_table[s]]])
        kept = {sym: (e, float(model.atomic_energies[z_table.index(z)])) for z in old_z
                if (sym := chemical_symbols[z]) in opts.E0s and (e := float(opts.E0s[sym])) != float(
                    model.atomic_energies[z_table.index(z)])}
        if kept:
            import warnings

            shown = ", ".join(f"{sym} {e:.6g} eV (kept: {old:.6g} eV)" for sym, (e, old) in kept.items())
            warnings.warn(f"E0s given for elements the init_from model knows are not used: fine-tuning keeps their "
                          f"E0 ({shown}); only new elements take the E0s given. If the new data come from another "
                          "DFT setup (code, pseudopotentials), their energies are shifted against the old model's",
                          UserWarning, stacklevel=5)
    fit_one_body(model, graphs_train, fit_species, not e0_given, opts.fit_landau,
                 opts.magnetic_forces_weight / max(opts.energy_weight, 1e-12), dtype, device)
    # the data themselves (structures, moments, labels, weights) identify the run too: corrected labels
    # must not resume (and, with the epochs done, silently return) the model trained on the old ones
    meta = {"elements": z_table, "soc": bool(soc), "seed": int(opts.seed), "hyperparameters": pot.hyperparameters,
            "n_train": len(train_data), "n_valid": len(valid_data), "E0s": opts.E0s, "data": digests}
    return InitialModel(pot, graphs_train, graphs_valid, pot.hyperparameters, meta)
