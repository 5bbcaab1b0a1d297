"""Datasets for mMACE training: loading and checking, per-configuration graphs, batching, and an
on-disk cache of built graphs.

A dataset is a list of ``ase.Atoms`` (or an extxyz path) with ``info["energy"]`` (eV),
``arrays["forces"]`` (eV/Å), ``arrays["magmoms"]`` (N,3 μB), ``arrays["magnetic_forces"]``
(N,3 eV/μB) and optionally ``info["stress"]`` (eV/Å³) and ``info["weight"]``.

Graphs are built once per configuration with :func:`~spinlat.potentials.mmace.graph.build_batch`
and concatenated into batches by :func:`collate`. With a cache directory, the graphs of a whole
dataset are stored in one safetensors file named by a hash of the data, the cutoff and the species
table, so a second run on the same data skips the neighbour search (safetensors holds only
arrays: loading it cannot execute code).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from ...errors import ConfigError, FileFormatError, InputError

#: keys a training configuration must hold (where they sit in ase.Atoms), with their units
REQUIRED = {"energy": ("info", "eV"), "forces": ("arrays", "eV/Å"), "magmoms": ("arrays", "μB"),
            "magnetic_forces": ("arrays", "eV/μB")}

_NODE_KEYS = ("positions", "magmoms", "node_attrs", "species", "forces", "magnetic_forces")
_EDGE_KEYS = ("shifts",)
_GRAPH_KEYS = ("cell", "n_atoms", "weight", "energy", "stress", "energy_mask", "forces_mask",
               "magnetic_forces_mask", "stress_mask")


def load_dataset(data, name: str = "train") -> list:
    """A list of ase.Atoms from a list/tuple of Atoms, an extxyz path, or a teacher spec
    ``{"teacher": {"system": ..., "n_configs": ..., "seed": ..., "soc": ...}}``."""
    from ase import Atoms

    if isinstance(data, (str, Path)):
        path = Path(data)
        if not path.exists():
            raise InputError(f"{name} dataset file {str(path)!r} does not exist")
        from ...io import read_extxyz

        data = read_extxyz(path)
    elif isinstance(data, dict):
        if set(data) != {"teacher"} or not isinstance(data["teacher"], dict):
            raise ConfigError(f"{name} dataset given as a mapping must be {{teacher: {{system, n_configs, seed}}}}, "
                              f"got keys {sorted(data)}")
        from ... import datasets

        spec = dict(data["teacher"])
        missing = {"system", "n_configs", "seed"} - set(spec)
        if missing:
            raise ConfigError(f"{name}.teacher is missing {sorted(missing)} (expected system, n_configs, seed, "
                              "optional soc)")
        data = datasets.teacher(**spec)
    if not isinstance(data, (list, tuple)):
        raise InputError(f"{name} dataset must be a list of ase.Atoms or an extxyz path, got {type(data).__name__}")
    data = list(data)
    for k, at in enumerate(data):
        if not isinstance(at, Atoms):
            raise InputError(f"{name} dataset item {k} is a {type(at).__name__}, expected ase.Atoms")
    return data


def check_dataset(data, name: str = "train", optional=()) -> None:
    """Raise :class:`ConfigError` naming the first configuration that lacks a required key.

    Keys in ``optional`` may be absent (their loss weight is zero)."""
    if len(data) == 0:
        raise ConfigError(f"{name} dataset is empty")
    for k, at in enumerate(data):
        for key, (where, unit) in REQUIRED.items():
            if key in optional:
                continue
            holder = at.info if where == "info" else at.arrays
            if key not in holder and not (key == "magmoms" and "initial_magmoms" in at.arrays):
                raise ConfigError(f"{name} dataset configuration {k} has no {key!r} (atoms.{where}[{key!r}], {unit}); "
                                  f"every configuration needs {sorted(REQUIRED)}")


def graphs_of(data, r_max: float, z_table, cache_dir=None, progress: bool = False) -> list[dict]:
    """Per-configuration graph dictionaries (float64, CPU) of ``data``; cached on disk in
    ``cache_dir`` if given."""
    from .graph import build_batch

    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / f"graphs-{dataset_hash(data, r_max, z_table)}.safetensors"
        if path.exists():
            return _load_graphs(path)
    it = data
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(data, desc="graphs", leave=False)
    graphs = [build_batch([at], r_max, z_table, dtype=torch.float64, device="cpu") for at in it]
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        _save_graphs(path, graphs)
    return graphs


def dataset_hash(data, r_max, z_table) -> str:
    h = hashlib.sha256()
    h.update(repr((float(r_max), [int(z) for z in z_table])).encode())
    for at in data:
        for arr in (at.numbers, at.positions, np.asarray(at.cell), at.pbc):
            h.update(np.ascontiguousarray(arr).tobytes())
        for key in ("magmoms", "initial_magmoms", "forces", "magnetic_forces"):
            if key in at.arrays:
                h.update(key.encode() + np.ascontiguousarray(at.arrays[key], dtype=np.float64).tobytes())
        for key in ("energy", "stress", "weight"):
            if key in at.info:
                h.update(key.encode() + np.ascontiguousarray(at.info[key], dtype=np.float64).tobytes())
    return h.hexdigest()[:24]


def _save_graphs(path, graphs):
    from safetensors.torch import save_file

    big = collate(graphs)
    n_edges = torch.tensor([g["edge_index"].shape[1] for g in graphs])
    big = {k: v for k, v in big.items() if isinstance(v, torch.Tensor)}
    big["n_edges"] = n_edges
    for k, v in big.items():
        if v.dtype == torch.bool:
            big[k] = v.to(torch.uint8)
    tmp = Path(str(path) + ".tmp")
    save_file({k: v.contiguous() for k, v in big.items()}, str(tmp), metadata={"format": "spinlat-mmace-graphs"})
    tmp.replace(path)


def _load_graphs(path) -> list[dict]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            if (f.metadata() or {}).get("format") != "spinlat-mmace-graphs":
                raise FileFormatError(f"{path} is not a spinlat graph cache")
            big = {k: f.get_tensor(k) for k in f.keys()}
    except FileFormatError:
        raise
    except Exception as exc:  # corrupt cache file
        raise FileFormatError(f"cannot read graph cache {path}: {exc}") from exc
    for k in ("energy_mask", "forces_mask", "magnetic_forces_mask", "stress_mask"):
        big[k] = big[k].bool()
    n_atoms = big["n_atoms"].tolist()
    n_edges = big["n_edges"].tolist()
    a0 = np.concatenate([[0], np.cumsum(n_atoms)])
    e0 = np.concatenate([[0], np.cumsum(n_edges)])
    out = []
    for c in range(len(n_atoms)):
        g = {}
        for k in _NODE_KEYS:
            g[k] = big[k][a0[c]:a0[c + 1]].clone()
        g["shifts"] = big["shifts"][e0[c]:e0[c + 1]].clone()
        g["edge_index"] = big["edge_index"][:, e0[c]:e0[c + 1]] - int(a0[c])
        for k in _GRAPH_KEYS:
            g[k] = big[k][c:c + 1].clone()
        g["batch"] = torch.zeros(n_atoms[c], dtype=torch.int64)
        g["ptr"] = torch.tensor([0, n_atoms[c]], dtype=torch.int64)
        out.append(g)
    return out


def collate(graphs, dtype=None, device=None) -> dict:
    """Concatenate single- or multi-configuration graph dictionaries into one batch, optionally
    cast to ``dtype`` (floating tensors) and moved to ``device``."""
    n_atoms = torch.cat([g["n_atoms"] for g in graphs])
    atom_off = [0]
    for g in graphs:
        atom_off.append(atom_off[-1] + int(g["positions"].shape[0]))
    out = {}
    for k in _NODE_KEYS + _EDGE_KEYS + _GRAPH_KEYS:
        out[k] = torch.cat([g[k] for g in graphs])
    out["edge_index"] = torch.cat([g["edge_index"] + atom_off[c] for c, g in enumerate(graphs)], dim=1)
    out["batch"] = torch.repeat_interleave(torch.arange(len(n_atoms)), n_atoms)
    out["ptr"] = torch.cat([torch.zeros(1, dtype=torch.int64), torch.cumsum(n_atoms, 0)])
    if dtype is not None or device is not None:
        for k, v in out.items():
            if v.is_floating_point():
                out[k] = v.to(dtype=dtype or v.dtype, device=device)
            else:
                out[k] = v.to(device=device)
    return out
