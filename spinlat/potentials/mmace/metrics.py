"""Errors of mMACE predictions against the labels of a batch (:mod:`.graph`).

Which entries carry a label (:func:`label_masks`):

- ``energy``, ``stress``: the configurations (B,) that have one;
- ``forces``: the atoms (N,) of configurations that have forces;
- ``magnetic_forces``: the atoms of configurations that have magnetic forces *and* that carry a
  moment (|m| > 0): −∂E/∂m of a non-magnetic atom is not something a reference calculation gives.

A configuration whose magnetic-force label is collinear — one number per atom, the component
h·m̂ along the moment (``magnetic_forces_longitudinal``, :mod:`.labels`) — is compared on that
component only: its residual is the projection (Δh·m̂) m̂ and it counts one component per atom,
where a vector label counts three (:func:`label_components`).

A configuration without a label contributes nothing to that label's error (see :mod:`.labels`:
absent, never zero). Errors are of the energy per atom (eV/atom), of force and magnetic-force
components and of stress components. One definition, used by
:meth:`MagneticMACE.evaluate <spinlat.potentials.mmace.potential.MagneticMACE.evaluate>` and by
the training (its loss and its validation metrics, :mod:`spinlat.training`).
"""

from __future__ import annotations

import math

import torch

#: label → unit of its RMSE
RMSE_UNITS = {"energy": "meV/atom", "forces": "meV/Å", "magnetic_forces": "meV/μB", "stress": "meV/Å³"}


def label_masks(batch) -> dict:
    """Boolean masks of the labelled entries: ``energy`` and ``stress`` (B,), ``forces`` and
    ``magnetic_forces`` (N,) (module docstring)."""
    node = batch["batch"]
    magnetic = (batch["magmoms"] ** 2).sum(-1) > 0
    return {"energy": batch["energy_mask"], "forces": batch["forces_mask"][node],
            "magnetic_forces": batch["magnetic_forces_mask"][node] & magnetic, "stress": batch["stress_mask"]}


def longitudinal_atoms(batch) -> torch.Tensor:
    """(N,) bool: the atoms whose magnetic-force label gives only the component along the moment
    (configurations with ``magnetic_forces_longitudinal``; all False for a batch without that key)."""
    flag = batch.get("magnetic_forces_longitudinal")
    if flag is None:
        return torch.zeros_like(batch["batch"], dtype=torch.bool)
    return flag.bool()[batch["batch"]]


def label_components(batch, key) -> torch.Tensor | int:
    """How many labelled components each entry of ``key`` has: 1 for an energy, 3 for a force,
    9 for a stress; for magnetic forces (N,) 3, or 1 where the label is longitudinal."""
    if key != "magnetic_forces":
        return {"energy": 1, "forces": 3, "stress": 9}[key]
    return torch.where(longitudinal_atoms(batch), 1, 3)


def residuals(out, batch, key) -> torch.Tensor:
    """Prediction − label of ``key`` for every entry (labelled or not): energy per atom (B,) eV,
    forces (N, 3), magnetic forces (N, 3) — on atoms with a longitudinal label its projection
    (Δh·m̂) m̂ on the moment direction —, stress (B, 3, 3)."""
    if key == "energy":
        return (out["energy"] - batch["energy"]) / batch["n_atoms"].to(out["energy"].dtype)
    d = out[key] - batch[key]
    if key == "magnetic_forces":
        longitudinal = longitudinal_atoms(batch)
        if bool(longitudinal.any()):
            m = batch["magmoms"].to(d.dtype)
            norm = torch.linalg.norm(m, dim=-1, keepdim=True)
            axis = m / torch.where(norm > 0, norm, torch.ones_like(norm))
            d = torch.where(longitudinal[:, None], (d * axis).sum(-1, keepdim=True) * axis, d)
    return d


def squared_errors(out, batch) -> dict:
    """{label: (sum of squared errors, number of labelled components)} of one batch, in float64
    (energy per atom in eV/atom, components otherwise); stress only where ``out`` has one."""
    masks = label_masks(batch)
    res = {}
    for key in ("energy", "forces", "magnetic_forces", "stress"):
        if out.get(key) is None:
            continue
        d = residuals(out, batch, key).detach()[masks[key]].double()
        comp = label_components(batch, key)
        count = int(comp[masks[key]].sum()) if isinstance(comp, torch.Tensor) else int(masks[key].sum()) * comp
        res[key] = (float((d ** 2).sum()), count)
    return res


def add_errors(total: dict, part: dict) -> dict:
    """Sum two results of :func:`squared_errors` (in place into ``total``, which is returned)."""
    for key, (s, c) in part.items():
        a, b = total.get(key, (0.0, 0))
        total[key] = (a + s, b + c)
    return total


def rmse(sums: dict) -> dict:
    """``{label}_rmse`` in meV units (:data:`RMSE_UNITS`) from summed :func:`squared_errors`;
    NaN where no entry carried the label."""
    return {f"{key}_rmse": 1000.0 * math.sqrt(s / c) if c else float("nan") for key, (s, c) in sums.items()}
