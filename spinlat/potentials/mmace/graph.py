"""Graphs (batches of configurations) for the mMACE model.

:func:`build_batch` turns spinlat :class:`~spinlat.state.State` objects or ``ase.Atoms`` into
one dictionary of tensors that :class:`~spinlat.potentials.mmace.model.MagneticMACEModel`
consumes. Several configurations are concatenated into one disconnected graph; ``batch`` says
which configuration each atom belongs to and ``ptr`` where each one starts.

Keys (N atoms, E directed edges, B configurations):

- ``positions`` (N,3) Å, ``magmoms`` (N,3) μB (moment vectors m = moment · spin),
  ``node_attrs`` (N,S) one-hot species in the order of ``z_table``, ``species`` (N,) indices;
- ``edge_index`` (2,E) [sender j, receiver i] and ``shifts`` (E,3) Å, Cartesian, so that the
  vector of an edge is r_ij = positions[j] − positions[i] + shift (only pairs closer than r_max);
- ``cell`` (B,3,3) Å rows, ``batch`` (N,), ``ptr`` (B+1,), ``n_atoms`` (B,);
- labels with boolean masks ``*_mask`` (B,) saying which configurations carry them (:mod:`.labels`;
  the value of an absent label is a placeholder that every loss and error leaves out through the
  mask, :mod:`.metrics`): ``energy`` (B,) eV, ``forces`` (N,3) eV/Å, ``magnetic_forces`` (N,3)
  eV/μB, ``stress`` (B,3,3) eV/Å³ with ASE's sign; ``weight`` (B,) (``atoms.info["weight"]``,
  default 1); ``magnetic_forces_longitudinal`` (B,) bool: the configuration's magnetic-force
  label gives only the component along each moment (a collinear label (N,), stored as that
  component times m̂).
"""

from __future__ import annotations

import numpy as np
import torch

from ...errors import InputError, NonFiniteError, UnknownElementError
from .labels import configuration_weight, input_moments, read_labels


def config_arrays(config, index=0) -> dict:
    """Plain NumPy arrays of one configuration (State or ase.Atoms), with its labels when present.

    Returns keys positions (Å), numbers, cell, pbc, magmoms (N,3 μB), weight and the labels the
    configuration carries: energy (eV), forces (eV/Å), magnetic_forces (eV/μB), stress (3×3 eV/Å³)
    — read from ``info``/``arrays`` or calculator results, moments from ``magmoms``, a
    calculator's moments or the initial moments (:mod:`.labels`). A collinear magnetic-force label
    (N,) becomes the vector along each moment, h·m̂ m̂ (zero on atoms without a moment), with
    ``magnetic_forces_longitudinal`` True."""
    from ...state import State

    where = f"configuration {index}"
    if isinstance(config, State):
        return dict(positions=config.positions, numbers=config.numbers, cell=config.cell, pbc=config.pbc,
                    magmoms=config.magnetic_moments, weight=1.0)
    try:
        from ase import Atoms
    except ImportError:  # pragma: no cover
        Atoms = ()
    if not isinstance(config, Atoms):
        raise InputError(f"{where}: expected a spinlat State or ase.Atoms, got {type(config).__name__}")
    pos = np.asarray(config.positions, dtype=np.float64)
    if not np.all(np.isfinite(pos)):
        raise NonFiniteError(f"{where}: positions hold NaN or inf")
    out = dict(positions=pos, numbers=np.asarray(config.numbers, dtype=np.int64),
               cell=np.asarray(config.cell.array, dtype=np.float64), pbc=np.asarray(config.pbc, dtype=bool),
               magmoms=input_moments(config, where), weight=configuration_weight(config, where))
    out.update(read_labels(config, where))
    h = out.get("magnetic_forces")
    if h is not None and h.ndim == 1:  # collinear: the component along each moment (.labels)
        m = out["magmoms"]
        norm = np.linalg.norm(m, axis=1)
        out["magnetic_forces"] = h[:, None] * m / np.where(norm > 0, norm, 1.0)[:, None]
        out["magnetic_forces_longitudinal"] = True
    return out


def species_indices(numbers, z_table, where="configuration") -> np.ndarray:
    """Indices of ``numbers`` in ``z_table``; raises UnknownElementError for others."""
    z_table = np.asarray(z_table, dtype=np.int64)
    lookup = np.full(max(int(z_table.max()), int(np.max(numbers, initial=0))) + 1, -1, dtype=np.int64)
    lookup[z_table] = np.arange(len(z_table))
    idx = lookup[numbers]
    if np.any(idx < 0):
        from ase.data import chemical_symbols

        z = int(numbers[idx < 0][0])
        known = [chemical_symbols[k] for k in z_table]
        raise UnknownElementError(f"{where}: the model does not know element {chemical_symbols[z]} (Z={z}); "
                                  f"it knows {known}")
    return idx


def edges(positions, cell, pbc, r_max):
    """(sender, receiver, Cartesian shifts) of all ordered pairs closer than ``r_max`` Å."""
    from ...neighbors import point_pairs

    if len(positions) < 2 and not np.any(pbc):
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 3))
    i, j, S, _ = point_pairs(positions, cell, pbc, r_max, full=True)
    return j, i, S @ np.asarray(cell, dtype=np.float64)


def build_batch(configs, r_max: float, z_table, dtype=torch.float64, device="cpu", edge_lists=None,
                first_index: int = 0) -> dict:
    """One batched graph of ``configs`` (States or ase.Atoms) for the mMACE model.

    ``r_max`` Å is the cutoff, ``z_table`` the atomic numbers known to the model (species order).
    ``edge_lists`` optionally gives, per configuration, precomputed (sender, receiver, Cartesian
    shift Å) arrays of pairs closer than ``r_max``. ``first_index``: the index of ``configs[0]``
    in the caller's data set, so that errors name the configuration by its place there (or the
    names errors give them, one str per configuration, e.g. "configuration 5 of b.extxyz"). See the
    module docstring for the keys."""
    if not isinstance(configs, (list, tuple)):
        configs = [configs]
    if len(configs) == 0:
        raise InputError("build_batch needs at least one configuration")
    z_table = list(int(z) for z in z_table)
    if isinstance(first_index, (list, tuple)) and len(first_index) == len(configs):
        names = [str(n) for n in first_index]
    elif isinstance(first_index, str) and len(configs) == 1:
        names = [first_index]
    else:
        names = [f"configuration {k}" for k in range(int(first_index), int(first_index) + len(configs))]
    parts = [config_arrays(c, where) for where, c in zip(names, configs)]
    n_atoms = np.array([len(p["numbers"]) for p in parts], dtype=np.int64)
    ptr = np.concatenate([[0], np.cumsum(n_atoms)])
    senders, receivers, shifts = [], [], []
    for k, p in enumerate(parts):
        if edge_lists is not None and edge_lists[k] is not None:
            s, r, sh = edge_lists[k]
        else:
            s, r, sh = edges(p["positions"], p["cell"], p["pbc"], r_max)
        senders.append(np.asarray(s, dtype=np.int64) + ptr[k])
        receivers.append(np.asarray(r, dtype=np.int64) + ptr[k])
        shifts.append(np.asarray(sh, dtype=np.float64).reshape(-1, 3))
    species = np.concatenate([species_indices(p["numbers"], z_table, where) for where, p in zip(names, parts)])
    n_tot = int(ptr[-1])
    one_hot = np.zeros((n_tot, len(z_table)))
    one_hot[np.arange(n_tot), species] = 1.0
    B = len(parts)

    def target(key, shape_fn):
        has = np.array([key in p for p in parts], dtype=bool)
        if key in ("forces", "magnetic_forces"):
            vals = np.concatenate([p[key] if key in p else np.zeros((len(p["numbers"]), 3)) for p in parts])
        elif key == "stress":
            vals = np.stack([p.get(key, np.zeros((3, 3))) for p in parts])
        else:
            vals = np.array([p.get(key, 0.0) for p in parts], dtype=np.float64)
        return vals, has

    def f(a):
        return torch.as_tensor(np.ascontiguousarray(a), dtype=dtype, device=device)

    def i(a):
        return torch.as_tensor(np.ascontiguousarray(a), dtype=torch.int64, device=device)

    batch = {
        "positions": f(np.concatenate([p["positions"] for p in parts])),
        "magmoms": f(np.concatenate([p["magmoms"] for p in parts])),
        "node_attrs": f(one_hot),
        "species": i(species),
        "edge_index": i(np.stack([np.concatenate(senders), np.concatenate(receivers)])),
        "shifts": f(np.concatenate(shifts)),
        "cell": f(np.stack([p["cell"] for p in parts])),
        "batch": i(np.repeat(np.arange(B), n_atoms)),
        "ptr": i(ptr),
        "n_atoms": i(n_atoms),
        "weight": f(np.array([p["weight"] for p in parts])),
        "magnetic_forces_longitudinal": torch.as_tensor(
            np.array([bool(p.get("magnetic_forces_longitudinal", False)) for p in parts]), device=device),
    }
    for key in ("energy", "forces", "magnetic_forces", "stress"):
        vals, has = target(key, None)
        batch[key] = f(vals)
        batch[f"{key}_mask"] = torch.as_tensor(has, device=device)
    return batch
