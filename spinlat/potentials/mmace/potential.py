"""``MagneticMACE``: the mMACE network as a spinlat potential, with safe model files.

Model files (``.mmace``) are safetensors files: the weights as tensors and, in the metadata, a
format marker, a version and the hyperparameters as JSON. Loading never executes code (no
pickle, no ``torch.load``); a file that is not such a file, lacks the metadata, or whose tensors
do not match the hyperparameters raises :class:`~spinlat.errors.FileFormatError`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

import mace  # noqa: F401  -- before e3nn
import torch

from ...errors import ConfigError, DeviceError, FileFormatError, InputError, UnknownElementError
from ..base import Evaluation, Potential
from .graph import build_batch, species_indices
from .model import DEFAULTS, MagneticMACEModel

FORMAT = "spinlat-mmace"
#: 2: time-reversal-graded architecture (exact inversion with soc=True) and the symmetric-monomial
#: product basis; version-1 weights have another layout and cannot be mapped
VERSION = 2
_DTYPES = {"float64": torch.float64, "float32": torch.float32}


def _device(device) -> torch.device:
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"device {device!r} asked for, but torch sees no CUDA GPU here; use device='cpu'")
    if dev.type not in ("cpu", "cuda"):
        raise DeviceError(f"unsupported device {device!r}; use 'cpu' or 'cuda'")
    return dev


def _dtype(dtype) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        if dtype in _DTYPES.values():
            return dtype
    elif str(dtype) in _DTYPES:
        return _DTYPES[str(dtype)]
    raise InputError(f"dtype must be 'float64' or 'float32', got {dtype!r}")


def _atomic_numbers(elements) -> list[int]:
    from ase.data import atomic_numbers, chemical_symbols

    out = []
    for e in elements:
        if isinstance(e, str):
            if e not in atomic_numbers or e == "X":
                raise UnknownElementError(f"unknown element symbol {e!r}")
            out.append(atomic_numbers[e])
        else:
            z = int(e)
            if not 1 <= z < len(chemical_symbols):
                raise UnknownElementError(f"unknown atomic number {e!r}")
            out.append(z)
    if not out or len(set(out)) != len(out):
        raise InputError(f"elements must be a non-empty list of distinct elements, got {elements!r}")
    return sorted(out)


class MagneticMACE(Potential):
    """Equivariant machine-learned magnetic potential E(r, m) (mMACE).

    Energies eV, forces eV/Å, magnetic forces −∂E/∂m eV/μB, stress eV/Å³ (ASE sign). Build with
    :meth:`create` (untrained), :meth:`load` or :meth:`train`. Attributes: ``model`` (the torch
    module), ``hyperparameters`` (JSON-able dict: elements, soc, r_max, ...), ``elements``
    (atomic numbers), ``device``, ``dtype``, ``cutoff`` (= r_max, Å).
    """

    depends_on_magnitudes = True
    #: gives every field at once (no cheap per-atom local fields)
    local = False

    def __init__(self, model: MagneticMACEModel, hyperparameters: dict, device="cpu", dtype="float64"):
        self.device = _device(device)
        self.dtype = _dtype(dtype)
        self.model = model.to(device=self.device, dtype=self.dtype)
        self.model.eval()
        self.hyperparameters = hyperparameters
        self.z_table = [int(z) for z in model.z_table.tolist()]
        self.elements = tuple(self.z_table)
        self.cutoff = float(hyperparameters["r_max"])
        self.soc = bool(hyperparameters["soc"])

    # ------------------------------------------------------------------ construction
    @classmethod
    def create(cls, elements, soc: bool = True, seed: int = 0, device="cpu", dtype="float64",
               **hyperparameters) -> "MagneticMACE":
        """An untrained model for ``elements`` (symbols or numbers). ``hyperparameters`` keep
        mace-torch's names (r_max Å, num_bessel, num_polynomial_cutoff, max_ell,
        num_interactions, hidden_irreps, correlation, MLP_irreps, radial_MLP, avg_num_neighbors)
        plus the magnetic ones of :data:`~spinlat.potentials.mmace.model.DEFAULTS` (``m_max`` in μB
        as a number or {symbol: μB}). Weights are initialised from ``seed``."""
        from ase.data import chemical_symbols

        z_table = _atomic_numbers(elements)
        unknown = set(hyperparameters) - set(DEFAULTS)
        if unknown:
            raise ConfigError(f"unknown mMACE hyperparameter(s) {sorted(unknown)}; known: {sorted(DEFAULTS)}")
        hp = dict(DEFAULTS)
        hp.update(hyperparameters)
        m_max = hp["m_max"]
        if isinstance(m_max, dict):
            missing = [chemical_symbols[z] for z in z_table if chemical_symbols[z] not in m_max]
            if missing:
                raise ConfigError(f"m_max has no value for element(s) {missing}")
            hp["m_max"] = {chemical_symbols[z]: float(m_max[chemical_symbols[z]]) for z in z_table}
        else:
            hp["m_max"] = float(m_max)
        if isinstance(hp["correlation"], (list, tuple)):
            hp["correlation"] = [int(c) for c in hp["correlation"]]
        hp["radial_MLP"] = [int(k) for k in hp["radial_MLP"]]
        hp["hidden_irreps"], hp["MLP_irreps"] = str(hp["hidden_irreps"]), str(hp["MLP_irreps"])
        full = {"elements": [chemical_symbols[z] for z in z_table], "soc": bool(soc), **hp}
        return cls(cls._build(full, seed), full, device=device, dtype=dtype)

    @staticmethod
    def _build(hp: dict, seed=None) -> MagneticMACEModel:
        from ase.data import atomic_numbers

        z_table = [atomic_numbers[e] for e in hp["elements"]]
        kw = {k: hp[k] for k in DEFAULTS}
        if isinstance(kw["m_max"], dict):
            kw["m_max"] = [kw["m_max"][e] for e in hp["elements"]]
        return MagneticMACEModel.build(z_table, soc=hp["soc"], dtype=torch.float64, seed=seed, **kw)

    @classmethod
    def train(cls, train, valid=None, soc: bool | None = None, max_minutes=None, seed: int = 0, init_from=None,
              **hyperparameters) -> "MagneticMACE":
        """Train on ``train`` (list of ase.Atoms or extxyz path); see :mod:`.training`.

        ``soc`` defaults to True, or to the symmetry of ``init_from`` when fine-tuning."""
        from . import training

        return training.train(train, valid=valid, soc=soc, max_minutes=max_minutes, seed=seed,
                              init_from=init_from, **hyperparameters)

    # ------------------------------------------------------------------ files
    def save(self, path) -> None:
        """Write weights (safetensors) with hyperparameters, format marker and version in the metadata."""
        from safetensors.torch import save_file

        tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in self.model.state_dict().items()}
        meta = {"format": FORMAT, "version": str(VERSION), "hyperparameters": json.dumps(self.hyperparameters),
                "dtype": str(self.dtype).replace("torch.", "")}
        save_file(tensors, str(path), metadata=meta)

    @classmethod
    def load(cls, path, device="cpu", dtype="float64") -> "MagneticMACE":
        """Load a model file written by :meth:`save`; raises FileFormatError for anything else."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        path = Path(path)
        dev, dt = _device(device), _dtype(dtype)
        if not path.is_file():
            raise FileNotFoundError(f"model file {path} does not exist")
        try:
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
            tensors = load_file(str(path))
        except (SafetensorError, OSError, ValueError, RuntimeError, Exception) as exc:
            raise FileFormatError(f"{path} is not a spinlat mMACE model file (not readable as safetensors: {exc})") from None
        if meta.get("format") != FORMAT:
            raise FileFormatError(f"{path} is not a spinlat mMACE model file (format marker "
                                  f"{meta.get('format')!r}, expected {FORMAT!r})")
        if meta.get("version") == "1":
            raise FileFormatError(f"{path}: mMACE file version 1, written before the architecture of version {VERSION} "
                                  "(exact inversion symmetry, new product basis); its weights cannot be mapped: "
                                  "retrain the model with this spinlat")
        if meta.get("version") != str(VERSION):
            raise FileFormatError(f"{path}: unsupported mMACE file version {meta.get('version')!r} (this spinlat reads {VERSION})")
        try:
            hp = json.loads(meta["hyperparameters"])
            model = cls._build(hp)
        except Exception as exc:
            raise FileFormatError(f"{path}: bad hyperparameters in the metadata ({exc})") from None
        own = model.state_dict()
        if set(own) != set(tensors):
            missing, extra = sorted(set(own) - set(tensors)), sorted(set(tensors) - set(own))
            raise FileFormatError(f"{path}: weights do not match the hyperparameters (missing {missing[:5]}, "
                                  f"unexpected {extra[:5]})")
        for k, v in own.items():
            if tuple(v.shape) != tuple(tensors[k].shape):
                raise FileFormatError(f"{path}: tensor {k} has shape {tuple(tensors[k].shape)}, expected {tuple(v.shape)}")
            if v.dtype.is_floating_point != tensors[k].dtype.is_floating_point:
                raise FileFormatError(f"{path}: tensor {k} has dtype {tensors[k].dtype}")
            if tensors[k].dtype.is_floating_point and not torch.all(torch.isfinite(tensors[k])):
                raise FileFormatError(f"{path}: tensor {k} holds NaN or inf")
        model.load_state_dict({k: t.to(own[k].dtype) for k, t in tensors.items()})
        return cls(model, hp, device=dev, dtype=dt)

    # ------------------------------------------------------------------ evaluation
    def _edges_from_list(self, state, nl):
        """(sender, receiver, Cartesian shift) of pairs closer than r_max from a spinlat NeighborList."""
        vec = nl.vectors(state.positions)
        keep = np.einsum("ij,ij->i", vec, vec) < self.cutoff**2
        return nl.j[keep], nl.i[keep], nl.shift_vectors[keep]

    def _run(self, configs, edge_lists, forces, magnetic_forces, stress, training=False):
        batch = build_batch(configs, self.cutoff, self.z_table, dtype=self.dtype, device=self.device,
                            edge_lists=edge_lists)
        with torch.set_grad_enabled(True):
            out = self.model(batch, compute_forces=forces, compute_magnetic_forces=magnetic_forces,
                             compute_stress=stress, training=training)
        return batch, out

    @staticmethod
    def _split(out, ptr, forces, magnetic_forces, stress):
        def np_(x):
            return None if x is None else x.detach().to("cpu", torch.float64).numpy()

        e, ne, f, h, s = (np_(out[k]) for k in ("energy", "node_energy", "forces", "magnetic_forces", "stress"))
        evs = []
        for b in range(len(e)):
            a, z = int(ptr[b]), int(ptr[b + 1])
            st = None
            if stress:
                m = s[b]
                st = np.array([m[0, 0], m[1, 1], m[2, 2], 0.5 * (m[1, 2] + m[2, 1]), 0.5 * (m[0, 2] + m[2, 0]),
                               0.5 * (m[0, 1] + m[1, 0])])
            evs.append(Evaluation(float(e[b]), f[a:z].copy() if forces else None,
                                  h[a:z].copy() if magnetic_forces else None, st, ne[a:z].copy()))
        return evs

    def _evaluate(self, state, neighbors, forces, magnetic_forces, stress) -> Evaluation:
        edges = None if neighbors is None else [self._edges_from_list(state, neighbors)]
        batch, out = self._run([state], edges, forces, magnetic_forces, stress)
        return self._split(out, [0, len(state)], forces, magnetic_forces, stress)[0]

    def compute_batch(self, states, forces=True, magnetic_forces=True, stress=False) -> list[Evaluation]:
        """Evaluate many configurations in one batched model call; a list of Evaluations."""
        states = list(states)
        if not states:
            return []
        for st in states:
            self.check_state(st)
            if stress and not np.all(st.pbc):
                raise InputError("stress needs a cell periodic in all three directions")
        batch, out = self._run(states, None, forces, magnetic_forces, stress)
        return self._split(out, batch["ptr"].tolist(), forces, magnetic_forces, stress)

    def evaluate(self, dataset, batch_size: int = 8) -> dict:
        """RMSE against a labelled dataset (list of ase.Atoms or extxyz path): ``energy_rmse``
        meV/atom, ``forces_rmse`` meV/Å, ``magnetic_forces_rmse`` meV/μB (NaN when no labels)."""
        if isinstance(dataset, (str, Path)):
            from ...io import read_extxyz

            dataset = read_extxyz(dataset)
        dataset = list(dataset)
        se = {"energy": [], "forces": [], "magnetic_forces": []}
        for k in range(0, len(dataset), batch_size):
            chunk = dataset[k:k + batch_size]
            batch, out = self._run(chunk, None, True, True, False)
            n = batch["n_atoms"].to(torch.float64)
            em = batch["energy_mask"]
            if em.any():
                de = ((out["energy"].detach().double() - batch["energy"].double()) / n)[em]
                se["energy"].append(de.cpu().numpy())
            node_graph = batch["batch"]
            for key in ("forces", "magnetic_forces"):
                mask = batch[f"{key}_mask"][node_graph]
                if mask.any():
                    d = (out[key].detach().double() - batch[key].double())[mask]
                    se[key].append(d.reshape(-1).cpu().numpy())

        def rmse(parts):
            return float(1000.0 * np.sqrt(np.mean(np.concatenate(parts) ** 2))) if parts else float("nan")

        return {"energy_rmse": rmse(se["energy"]), "forces_rmse": rmse(se["forces"]),
                "magnetic_forces_rmse": rmse(se["magnetic_forces"])}

    def __repr__(self):
        return (f"MagneticMACE(elements={self.hyperparameters['elements']}, soc={self.soc}, "
                f"r_max={self.cutoff}, hidden_irreps={self.hyperparameters['hidden_irreps']!r})")
