"""The training loss of mMACE: a weighted sum of masked mean squared errors.

For one batch, with the label masks of :func:`spinlat.potentials.mmace.metrics.label_masks`
(B_E, B_S: the configurations that carry an energy / a stress; A_F: the atoms of configurations
with forces; A_H: the magnetic atoms of configurations with magnetic forces):

    L = w_E · Σ_{c∈B_E} ω_c (ΔE_c/N_c)²      / |B_E|
      + w_F · Σ_{i∈A_F} ω_c(i) |ΔF_i|²/3     / |A_F|
      + w_H · Σ_{i∈A_H} ω_c(i) |Δh_i|²/n_i   / |A_H|
      + w_S · Σ_{c∈B_S} ω_c |Δσ_c|²/9        / |B_S|

Δ = prediction − label; E per atom (eV/atom), F (eV/Å), h = −∂E/∂m (eV/μB), σ (eV/Å³); ω_c the
configuration's weight (``info["weight"]``, default 1); n_i = 3 for a vector magnetic-force label,
and n_i = 1 with Δh_i = (Δh_i·m̂_i) m̂_i for a collinear one (h·m̂ per atom,
:func:`spinlat.potentials.mmace.metrics.residuals`); w the per-label weights
(``energy_weight`` per (eV/atom)², ``forces_weight`` per (eV/Å)², ``magnetic_forces_weight`` per
(eV/μB)², ``stress_weight`` per (eV/Å³)²). How they combine:

- each term is a mean over the entries of *this batch* that carry the label (its own count), so
  a label present on few configurations is not diluted by the configurations that lack it, and a
  missing label never enters as a zero; a term whose label no entry of the batch carries is 0;
- the weight w of a label scales its mean squared error: the ratio w_F/w_E sets how many
  (eV/atom)² of energy error one (eV/Å)² of force error is worth, independent of how many
  configurations carry either;
- ω_c multiplies a configuration's squared errors inside the means (the counts are not
  weighted), so ω_c = 2 counts a configuration twice as much as ω_c = 1.

The validation loss (early stopping, the plateau schedule) is the same sum over the whole
validation set: Σ_label w_label · RMSE_label², terms without labels left out.
"""

from __future__ import annotations

import math

import torch

from ..potentials.mmace.metrics import label_components, label_masks, residuals

#: the axes of the components of one entry (a vector has 3, a stress 9)
_COMPONENT_AXES = {"energy": (), "forces": (-1,), "magnetic_forces": (-1,), "stress": (-1, -2)}


def masked_loss(out, batch, weights: dict):
    """The loss of one batch (module docstring) as a 0-d tensor; ``weights`` {label: w}. Only the
    labels with w > 0 that ``out`` predicts and some entry of the batch carries enter; None when
    no label does (nothing to learn from this batch)."""
    masks = label_masks(batch)
    wc = batch["weight"]
    total = None
    for key, w in weights.items():
        if not w > 0 or out.get(key) is None or not bool(masks[key].any()):
            continue
        sq = residuals(out, batch, key) ** 2
        if _COMPONENT_AXES[key]:  # mean over the labelled components
            sq = sq.sum(_COMPONENT_AXES[key]) / label_components(batch, key)
        omega = wc if key in ("energy", "stress") else wc[batch["batch"]]
        mask = masks[key]
        term = w * torch.where(mask, omega * sq, torch.zeros_like(sq)).sum() / mask.sum()
        total = term if total is None else total + term
    return total


def validation_loss(metrics: dict, weights: dict) -> float:
    """Σ_label w · (RMSE/1000)² (eV units) over the labels with a finite RMSE and w > 0."""
    total = 0.0
    for key, w in weights.items():
        r = metrics.get(f"{key}_rmse")
        if w > 0 and r is not None and math.isfinite(r):
            total += w * (r / 1000.0) ** 2
    return total
