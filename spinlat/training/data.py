"""Data sets for mMACE training: loading and checking, per-configuration graphs, batching, and an
on-disk cache of built graphs.

A data set is a list of ``ase.Atoms``, a file ``ase.io.read`` reads (extxyz), or a teacher spec
``{"teacher": {...}}`` (:func:`spinlat.training.teacher.teacher`). Each configuration carries
moments as inputs and any of the labels energy, forces, magnetic forces and stress, in
``info``/``arrays`` or as calculator results (:mod:`spinlat.potentials.mmace.labels`); labels may
be missing per configuration (energies only, magnetic forces for some configurations): a missing
label is left out of the loss, never taken as zero. ``info["weight"]`` (or mace's
``info["config_weight"]``; default 1) weights a configuration, and mace's
``info["config_<label>_weight"] = 0`` leaves that label of it out
(:func:`~spinlat.potentials.mmace.labels.read_labels`).

Graphs are built once per configuration with :func:`~spinlat.potentials.mmace.graph.build_batch`
and concatenated into batches by :func:`collate`. With a cache directory, the graphs of a whole
data set are stored in one safetensors file named by a hash of what they are built from (the
structures, moments, labels and weights, the cutoff and the species table), so a second run on
the same data skips the neighbour search (safetensors holds only arrays: loading it cannot
execute code).
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np
import torch

from ..errors import ConfigError, FileFormatError, InputError
from ..potentials.mmace import checksum
from ..potentials.mmace.graph import build_batch, config_arrays
from ..potentials.mmace.labels import LABELS, configuration_name, read_dataset, stored_keys, warn_unread_labels

_NODE_KEYS = ("positions", "magmoms", "node_attrs", "species", "forces", "magnetic_forces")
_EDGE_KEYS = ("shifts",)
_GRAPH_KEYS = ("cell", "n_atoms", "weight", "energy", "stress", "energy_mask", "forces_mask",
               "magnetic_forces_mask", "stress_mask", "magnetic_forces_longitudinal")


class Dataset(list):
    """A list of ase.Atoms that remembers where each configuration came from: ``sources[k]`` is
    ``(path, index of the configuration in that file)``, or None for one given in memory. Errors
    about configuration k name it by :func:`~spinlat.potentials.mmace.labels.configuration_name`
    ("configuration 5 of b.extxyz"),
    so that a data set joined from several files is not counted across them."""

    def __init__(self, items=(), sources=None):
        super().__init__(items)
        self.sources = list(sources) if sources is not None else [None] * len(self)
        if len(self.sources) != len(self):
            raise InputError(f"Dataset: {len(self.sources)} sources for {len(self)} configurations")

    def subset(self, indices) -> "Dataset":
        """The configurations of ``indices`` (in that order), with their sources."""
        return Dataset([self[k] for k in indices], [self.sources[k] for k in indices])


def same_sources(data, configs) -> list:
    """``configs`` (the configurations of ``data`` one for one, e.g. with energies rescaled) as
    a :class:`Dataset` with the sources of ``data`` when it has them."""
    return Dataset(configs, data.sources) if isinstance(data, Dataset) and len(configs) == len(data) else configs


def load_dataset(data, name: str = "train") -> list:
    """A list of ase.Atoms from a list/tuple of Atoms, a data-set file (``ase.io.read``: every
    frame), a list of such files (joined in order), or a teacher spec ``{"teacher": {"system":
    ..., "n_configs": ..., "seed": ..., "soc": ...}}``. Read from files it is a :class:`Dataset`:
    errors name a configuration by its file and its index there
    (:func:`~spinlat.potentials.mmace.labels.configuration_name`)."""
    from ase import Atoms

    if isinstance(data, (str, Path)):
        data = [data]
    if isinstance(data, (list, tuple)) and data and all(isinstance(d, (str, Path)) for d in data):
        configs, sources = [], []
        for path in data:
            frames = read_dataset(path, f"{name} dataset")
            configs += frames
            sources += [(str(path), j) for j in range(len(frames))]
        for k, at in enumerate(configs):
            if not isinstance(at, Atoms):
                raise InputError(f"{name} dataset {configuration_name(Dataset(configs, sources), k)} is a "
                                 f"{type(at).__name__}, expected ase.Atoms")
        return Dataset(configs, sources)
    if isinstance(data, dict):
        if set(data) != {"teacher"} or not isinstance(data["teacher"], dict):
            raise ConfigError(f"{name} dataset given as a mapping must be {{teacher: {{system, n_configs, seed}}}}, "
                              f"got keys {sorted(data)}")
        from .teacher import teacher

        spec = dict(data["teacher"])
        missing = {"system", "n_configs", "seed"} - set(spec)
        if missing:
            raise ConfigError(f"{name}.teacher is missing {sorted(missing)} (expected system, n_configs, seed, "
                              "optional soc)")
        data = teacher(**spec)
    if not isinstance(data, (list, tuple)):
        raise InputError(f"{name} dataset must be a list of ase.Atoms or a data-set file, got {type(data).__name__}")
    data = list(data)
    for k, at in enumerate(data):
        if not isinstance(at, Atoms):
            raise InputError(f"{name} dataset item {k} is a {type(at).__name__}, expected ase.Atoms")
    return data


def check_dataset(data, name: str = "train") -> list[tuple]:
    """Check every configuration's moments and labels (shapes, NaN/inf; errors name the
    configuration) and return the labels each one carries (a tuple per configuration).

    Raises ConfigError for an empty data set, a configuration that carries no label at all, and
    one with magnetic-force labels but no moments (moments read as :mod:`~spinlat.potentials.mmace.labels`
    says; without them every atom would count as non-magnetic). One UserWarning lists entries
    named like a label or like moments that are not read (mace's ``REF_energy``, the reference
    magnetic MACE's ``REF_magforces``, ...: :func:`~spinlat.potentials.mmace.labels.warn_unread_labels`)
    for configurations that lack that label, since those labels are then left out."""
    if len(data) == 0:
        raise ConfigError(f"{name} dataset is empty")
    warn_unread_labels(data, f"{name} dataset", stacklevel=5)
    out = []
    for k, at in enumerate(data):
        arrays = config_arrays(at, f"{name} dataset {configuration_name(data, k)}")
        where = f"{name} dataset {configuration_name(data, k)}"
        have = tuple(key for key in LABELS if key in arrays)
        if not have:
            raise ConfigError(f"{where} carries no label: none of energy (info), forces, magnetic_forces (arrays), "
                              f"stress (info), nor a calculator result of them; it holds {stored_keys(at)}")
        if "magnetic_forces" in have and not np.any(arrays["magmoms"]):
            raise ConfigError(f"{where} has magnetic_forces but no moments (arrays['magmoms'], a calculator's "
                              "magmoms or initial_magmoms), so no atom would count as magnetic")
        out.append(have)
    return out



def label_counts(labels) -> dict:
    """{label: number of configurations carrying it} from :func:`check_dataset`'s result."""
    return {key: sum(key in have for have in labels) for key in LABELS}


#: ``info`` keys (and calculator parameters) whose true value says a configuration was computed with
#: spin-orbit coupling: spinlat's, a common spelling and VASP's INCAR tag
SPIN_ORBIT_KEYS = ("soc", "spin_orbit", "lsorbit", "LSORBIT")


def spin_orbit_label(atoms) -> str | None:
    """How ``atoms`` (an ase.Atoms of a data set) says it was computed with spin-orbit coupling,
    or None: an ``info`` entry or calculator parameter of :data:`SPIN_ORBIT_KEYS` that is true,
    or an ``info["source"]`` naming ``soc=True`` (what :func:`spinlat.datasets.teacher` writes)."""
    params = getattr(getattr(atoms, "calc", None), "parameters", None) or {}
    for where, table in (("info", atoms.info), ("calculator parameter", params)):
        for key in SPIN_ORBIT_KEYS:
            value = table.get(key) if hasattr(table, "get") else None
            if isinstance(value, (bool, np.bool_)) and value or isinstance(value, str) and value.strip().upper() in (
                    "T", "TRUE", ".TRUE.", "YES"):
                return f"{where} {key}={value}"
    source = atoms.info.get("source")
    if isinstance(source, str) and "soc=True" in source:
        return f"source {source!r}"
    return None


def warn_if_spin_orbit_data(data, soc, name="train") -> None:
    """UserWarning when a ``soc``=False model is to be trained on configurations whose metadata
    say spin-orbit coupling (:func:`spin_orbit_label`): such a model is invariant under global
    spin rotations and cannot fit the anisotropic (spin-orbit) part of their energies."""
    if soc:
        return
    found = [(k, lab) for k, at in enumerate(data) if (lab := spin_orbit_label(at)) is not None]
    if found:
        import warnings

        k, lab = found[0]
        warnings.warn(f"a soc=False model (no spin-orbit terms: its energy is invariant under global spin rotations) "
                      f"is trained on {len(found)} of the {len(data)} {name} configurations computed with spin-orbit "
                      f"coupling ({configuration_name(data, k)}: {lab}); it cannot fit their anisotropic energies: train with "
                      "soc=True, or use data without spin-orbit coupling", UserWarning, stacklevel=6)


def warn_if_collinear_data(graphs, soc, name="train") -> None:
    """UserWarning when a ``soc``=True model is to be trained on graphs (:func:`graphs_of`) whose
    moments all lie along one axis — collinear moments (N,), which are read along +z, as a
    collinear (ISPIN = 2) DFT calculation gives them. Such data say nothing about other moment
    directions: a soc=True model (energy tied to the moments' orientation relative to the
    lattice) learns no symmetry under rotating all moments and extrapolates freely when spins
    turn (dynamics, non-collinear states); a soc=False model is invariant under that rotation."""
    if not soc:
        return
    m = torch.cat([g["magmoms"] for g in graphs]).double()
    norm = torch.linalg.norm(m, dim=1)
    m = m[norm > 0] / norm[norm > 0, None]
    if len(m) < 2:
        return
    if float(torch.linalg.norm(torch.cross(m, m[:1].expand_as(m), dim=1), dim=1).max()) < 1e-6:
        import warnings

        axis = [round(float(x), 4) for x in m[0] * torch.sign(m[0][torch.argmax(m[0].abs())])]
        warnings.warn(f"every moment of the {name} data lies along one axis {axis} (collinear moments (N,) are read "
                      "along +z): a soc=True model learns nothing about other moment directions, so its energy "
                      "changes arbitrarily when all spins turn together (dynamics, non-collinear states). For a "
                      "collinear calculation without spin-orbit coupling train with soc=False (invariant under that "
                      "rotation); keep soc=True for spin-orbit data with moments in several directions",
                      UserWarning, stacklevel=6)


def graphs_of(data, r_max: float, z_table, cache_dir=None, progress: bool = False, digest=None) -> list[dict]:
    """Per-configuration graph dictionaries (float64, CPU) of ``data``; cached on disk in
    ``cache_dir`` if given (a cache file that cannot be read or fails its checksum is rebuilt,
    with a UserWarning), named by ``digest``, :func:`dataset_hash` of ``(data, r_max, z_table)``
    (computed here when not given; unused without ``cache_dir``)."""
    path = None
    if cache_dir is not None:
        digest = dataset_hash(data, r_max, z_table) if digest is None else digest
        path = Path(cache_dir) / f"graphs-{digest}.safetensors"
        if path.exists():
            try:
                return _load_graphs(path)
            except FileFormatError as exc:  # a damaged cache: build the graphs again (and replace it)
                import warnings

                warnings.warn(f"{exc}; the graphs are built again and the cache replaced", UserWarning, stacklevel=5)
    it = data
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(data, desc="graphs", leave=False, file=sys.stderr)
    graphs = [build_batch([at], r_max, z_table, dtype=torch.float64, device="cpu",
                          first_index=configuration_name(data, k)) for k, at in enumerate(it)]
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        _save_graphs(path, graphs)
    return graphs


def dataset_hash(data, r_max, z_table) -> str:
    """Hash of what the graphs of ``data`` are built from: per configuration the structure, the
    input moments, the labels and the weight as :func:`~spinlat.potentials.mmace.graph.config_arrays`
    reads them (calculator results included), with the cutoff and the species table."""
    h = hashlib.sha256()
    h.update(repr((float(r_max), [int(z) for z in z_table])).encode())
    for k, at in enumerate(data):
        arrays = config_arrays(at, configuration_name(data, k))
        for key in sorted(arrays):
            h.update(key.encode() + np.ascontiguousarray(arrays[key], dtype=np.float64).tobytes())
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
    from ..files import atomic_path

    with atomic_path(path) as tmp:
        tensors = {k: v.contiguous() for k, v in big.items()}
        save_file(tensors, tmp, metadata={"format": "spinlat-mmace-graphs", checksum.KEY: checksum.tensor_checksum(tensors)})


def _load_graphs(path) -> list[dict]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            if meta.get("format") != "spinlat-mmace-graphs":
                raise FileFormatError(f"{path} is not a spinlat graph cache")
            big = {k: f.get_tensor(k) for k in f.keys()}
    except FileFormatError:
        raise
    except Exception as exc:  # corrupt cache file
        raise FileFormatError(f"cannot read graph cache {path}: {exc}") from exc
    checksum.verify(path, meta, big, "graph cache", "remove it (it is rebuilt from the data)")
    if "magnetic_forces_longitudinal" not in big:  # a cache written before collinear labels were read
        big["magnetic_forces_longitudinal"] = torch.zeros(len(big["n_atoms"]), dtype=torch.uint8)
    for k in ("energy_mask", "forces_mask", "magnetic_forces_mask", "stress_mask", "magnetic_forces_longitudinal"):
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
