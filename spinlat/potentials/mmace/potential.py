"""``MagneticMACE``: the mMACE network as a spinlat potential, with safe model files.

Model files (``.mmace``) are safetensors files: the weights as tensors and, in the metadata, a
format marker, a version and the hyperparameters as JSON. Loading never executes code (no
pickle, no ``torch.load``); a file that is not such a file, lacks the metadata, or whose tensors
do not match the hyperparameters raises :class:`~spinlat.errors.FileFormatError`.

Before anything is built, the hyperparameters are checked against :data:`LIMITS` (types and
ranges) and the tensor shapes in the safetensors header (read without loading any tensor) are
checked against the shapes the hyperparameters imply (:func:`implied_shapes`): a small file
cannot make spinlat build a huge network.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from . import safe_imports  # noqa: F401  -- mace-torch and e3nn, leaving torch.load safe
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

#: accepted range of every numeric hyperparameter (inclusive; ``r_max``, ``avg_num_neighbors`` and
#: ``m_max`` must also be > 0). Far above any published MACE model, low enough that building a
#: network stays bounded; ``channels`` is the multiplicity of ``hidden_irreps``, ``hidden_l`` its
#: highest l, ``mlp_channels`` the multiplicity of ``MLP_irreps``.
LIMITS = dict(elements=(1, 118), r_max=(0.0, 20.0), num_bessel=(1, 64), num_polynomial_cutoff=(1, 64),
              max_ell=(0, 6), num_interactions=(1, 8), correlation=(1, 6), channels=(1, 1024), hidden_l=(0, 4),
              mlp_channels=(1, 1024), radial_MLP_layers=(1, 8), radial_MLP_width=(1, 4096),
              avg_num_neighbors=(0.0, 1e4), m_max=(0.0, 20.0), num_moment_basis=(1, 64), max_ell_m=(0, 4),
              max_ell_odd=(0, 4), num_exchange_basis=(0, 64), landau_order=(0, 16), moment_channels=(1, 4096))


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


def _int_in(hp, key, error, where, lo=None, hi=None):
    lo, hi = LIMITS[key] if lo is None else (lo, hi)
    v = hp[key]
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not lo <= v <= hi:
        raise error(f"{where}: hyperparameter {key} must be an integer in [{lo}, {hi}], got {v!r}")
    return int(v)


def _float_in(value, key, error, where):
    lo, hi = LIMITS[key]
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not np.isfinite(value) or not lo < value <= hi:
        raise error(f"{where}: hyperparameter {key} must be a number in ({lo}, {hi}], got {value!r}")
    return float(value)


def _irreps(value, key, error, where):
    from e3nn import o3

    if not isinstance(value, str):
        raise error(f"{where}: hyperparameter {key} must be an irreps string like '32x0e+32x1o', got {value!r}")
    try:
        return o3.Irreps(value)
    except (ValueError, AssertionError, TypeError) as exc:
        raise error(f"{where}: hyperparameter {key}={value!r} is not an irreps string ({exc})") from None


def check_hyperparameters(hp, error=ConfigError, where="MagneticMACE") -> dict:
    """Check a full hyperparameter dict (``elements``, ``soc`` and every key of
    :data:`~spinlat.potentials.mmace.model.DEFAULTS`) against :data:`LIMITS`: types (a bool is not
    a number) and ranges. Returns it normalised (plain ints, floats, lists); raises ``error``
    naming the key otherwise."""
    from ase.data import atomic_numbers

    if not isinstance(hp, dict):
        raise error(f"{where}: hyperparameters must be a mapping, got {type(hp).__name__}")
    known = {"elements", "soc"} | set(DEFAULTS)
    unknown, missing = sorted(set(hp) - known), sorted(known - set(hp))
    if unknown:
        raise error(f"{where}: unknown hyperparameter(s) {unknown}; known: {sorted(known)}")
    if missing:
        raise error(f"{where}: missing hyperparameter(s) {missing}")
    out = dict(hp)
    el = hp["elements"]
    if not isinstance(el, list) or not LIMITS["elements"][0] <= len(el) <= LIMITS["elements"][1] \
            or not all(isinstance(e, str) and e in atomic_numbers and e != "X" for e in el) or len(set(el)) != len(el):
        raise error(f"{where}: hyperparameter elements must be a list of 1 to 118 distinct element symbols, got {el!r}")
    if not isinstance(hp["soc"], bool):
        raise error(f"{where}: hyperparameter soc must be true or false, got {hp['soc']!r}")
    for key in ("num_bessel", "num_polynomial_cutoff", "max_ell", "num_interactions", "num_moment_basis",
                "max_ell_m", "max_ell_odd", "num_exchange_basis", "landau_order"):
        out[key] = _int_in(hp, key, error, where)
    out["r_max"] = _float_in(hp["r_max"], "r_max", error, where)
    out["avg_num_neighbors"] = _float_in(hp["avg_num_neighbors"], "avg_num_neighbors", error, where)
    corr = hp["correlation"]
    if isinstance(corr, list):
        if len(corr) != out["num_interactions"]:
            raise error(f"{where}: hyperparameter correlation has {len(corr)} entries for "
                        f"{out['num_interactions']} interactions")
        out["correlation"] = [_int_in({"correlation": c}, "correlation", error, where) for c in corr]
    else:
        out["correlation"] = _int_in(hp, "correlation", error, where)
    rmlp = hp["radial_MLP"]
    lo, hi = LIMITS["radial_MLP_layers"]
    if not isinstance(rmlp, list) or not lo <= len(rmlp) <= hi:
        raise error(f"{where}: hyperparameter radial_MLP must be a list of {lo} to {hi} layer widths, got {rmlp!r}")
    out["radial_MLP"] = [_int_in({"radial_MLP": w}, "radial_MLP", error, where, *LIMITS["radial_MLP_width"])
                         for w in rmlp]
    hidden = _irreps(hp["hidden_irreps"], "hidden_irreps", error, where)
    muls = {mul for mul, _ in hidden}
    lo, hi = LIMITS["channels"]
    if len(muls) != 1 or not lo <= next(iter(muls)) <= hi or hidden.lmax > LIMITS["hidden_l"][1] \
            or "0e" not in [str(ir) for _, ir in hidden]:
        raise error(f"{where}: hyperparameter hidden_irreps must hold 0e, one multiplicity in [{lo}, {hi}] and "
                    f"l ≤ {LIMITS['hidden_l'][1]}, got {hp['hidden_irreps']!r}")
    mlp = _irreps(hp["MLP_irreps"], "MLP_irreps", error, where)
    lo, hi = LIMITS["mlp_channels"]
    if mlp.lmax != 0 or not lo <= mlp.num_irreps <= hi:
        raise error(f"{where}: hyperparameter MLP_irreps must be {lo} to {hi} scalars ('16x0e'), got {hp['MLP_irreps']!r}")
    if hp["moment_channels"] is not None:
        out["moment_channels"] = _int_in(hp, "moment_channels", error, where)
    m = hp["m_max"]
    if isinstance(m, dict):
        if sorted(m) != sorted(el):
            raise error(f"{where}: hyperparameter m_max must give one value per element {el}, got {m!r}")
        out["m_max"] = {e: _float_in(m[e], "m_max", error, where) for e in el}
    else:
        out["m_max"] = _float_in(m, "m_max", error, where)
    return out


def implied_shapes(hp) -> dict:
    """Shapes of the model's tensors that follow directly from (checked) hyperparameters ``hp``:
    {name: shape}, where a shape entry None means "any" and a shape None means "must be absent".
    Together they pin every size that makes a network large (species, channels, radial MLP,
    number of layers, correlation order and harmonic degrees through the product-basis matrices)."""
    S = len(hp["elements"])
    C = next(iter(mul for mul, _ in _irreps(hp["hidden_irreps"], "hidden_irreps", ValueError, "")))
    n_hidden = len(_irreps(hp["hidden_irreps"], "hidden_irreps", ValueError, ""))
    mlp = _irreps(hp["MLP_irreps"], "MLP_irreps", ValueError, "").num_irreps
    T, K, radial = hp["num_interactions"], hp["num_moment_basis"], hp["radial_MLP"]
    corr = hp["correlation"] if isinstance(hp["correlation"], list) else [hp["correlation"]] * T
    # per-channel dimension of the message: bond harmonics l = 0..max_ell and, with soc, the two
    # time-reversal-odd copies (both spatial parities) of each l = 1..max_ell_odd
    D = (hp["max_ell"] + 1) ** 2 + (2 * ((hp["max_ell_odd"] + 1) ** 2 - 1) if hp["soc"] else 0)
    shapes = {"z_table": (S,), "m_max": (S,), "atomic_energies": (S,), "scale": (), "shift": (),
              "landau": (S, hp["landau_order"]) if hp["landau_order"] > 0 else None,
              "node_embedding.linear.weight": (S * C,), "linear_up.0.weight": (C * C,),
              "radial_embedding.bessel_fn.bessel_weights": (hp["num_bessel"],),
              f"readouts.{T - 1}.linear_1.weight": (C * mlp,), f"conv_tp_weights.{T}.layer0.weight": None}
    widths = [hp["num_bessel"] + hp["num_exchange_basis"]] + list(radial)
    for t in range(T):
        for k in range(len(widths)):
            shapes[f"conv_tp_weights.{t}.layer{k}.weight"] = (widths[k], widths[k + 1] if k + 1 < len(widths) else None)
        shapes[f"conv_tp_weights.{t}.layer{len(widths)}.weight"] = None
        shapes[f"send.{t}.weights.weight"] = (None, S * K)
        shapes[f"self_coupling.{t}.weights.weight"] = (None, S * K)
        # product basis (blocks.SymmetricProduct): one prefix/last table per correlation order
        # ν = 2..correlation, one weight tensor (species, paths, channels) per output irrep
        base = f"products.{t}.symmetric_product"
        # every message irrep enters the basis once ν ≥ 2 (l ⊗ l holds the scalar); with ν = 1
        # only those equal to an output irrep do
        shapes[f"{base}.first"] = (D,) if corr[t] >= 2 else (None,)
        for nu in range(2, corr[t] + 1):
            shapes[f"{base}.prefix_{nu}"] = (None,)
        shapes[f"{base}.prefix_{corr[t] + 1}"] = None
        n_out = 1 if t == T - 1 else n_hidden
        for k in range(n_out):
            shapes[f"{base}.weights.{k}"] = (S, None, C)
        shapes[f"{base}.weights.{n_out}"] = None
    return shapes


def _check_header(path, shapes, dtypes, hp):
    """Compare the safetensors header (names → shapes, dtypes) with :func:`implied_shapes`."""
    for name, dt in dtypes.items():
        if dt not in ("F64", "F32", "F16", "BF16", "I64", "I32", "BOOL"):
            raise FileFormatError(f"{path}: tensor {name} has dtype {dt}, not a model weight's")
    for name, want in implied_shapes(hp).items():
        have = shapes.get(name)
        if want is None:
            if have is not None:
                raise FileFormatError(f"{path}: unexpected tensor {name} for the hyperparameters in the metadata")
            continue
        if have is None:
            raise FileFormatError(f"{path}: weights do not match the hyperparameters (missing tensor {name})")
        if len(have) != len(want) or any(w is not None and h != w for h, w in zip(have, want)):
            shown = tuple("*" if w is None else w for w in want)
            raise FileFormatError(f"{path}: tensor {name} has shape {tuple(have)}, the hyperparameters in the "
                                  f"metadata imply {shown}")


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
            hp["m_max"] = {chemical_symbols[z]: m_max[chemical_symbols[z]] for z in z_table}
        for key in ("correlation", "radial_MLP"):
            if isinstance(hp[key], tuple):
                hp[key] = list(hp[key])
        for key in ("hidden_irreps", "MLP_irreps"):  # e3nn Irreps objects are written as their strings
            if type(hp[key]).__name__ == "Irreps":
                hp[key] = str(hp[key])
        if not isinstance(soc, (bool, np.bool_)):
            raise ConfigError(f"MagneticMACE.create: soc must be True or False, got {soc!r}")
        full = {"elements": [chemical_symbols[z] for z in z_table], "soc": bool(soc), **hp}
        full = check_hyperparameters(full, ConfigError, "MagneticMACE.create")
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
    def load(cls, path, device="cpu", dtype="float64", **unknown) -> "MagneticMACE":
        """Load a model file written by :meth:`save`.

        Raises InputError for a missing file or an unknown keyword, FileFormatError for anything
        that is not a spinlat mMACE file: no safetensors header, no or a foreign format marker, a
        newer version, hyperparameters outside :data:`LIMITS`, tensors whose names or shapes do not
        match the hyperparameters (checked from the header, before any network is built), NaN/inf
        weights."""
        from safetensors import SafetensorError, safe_open
        from safetensors.torch import load_file

        if unknown:
            import difflib

            hints = {k: difflib.get_close_matches(k, ["path", "device", "dtype"], n=1) for k in unknown}
            said = ", ".join(f"{k!r}" + (f" (did you mean {h[0]!r}?)" if h else "") for k, h in hints.items())
            raise InputError(f"MagneticMACE.load: unknown keyword(s) {said}; it takes path, device, dtype")
        if not isinstance(path, (str, os.PathLike)):
            raise InputError(f"MagneticMACE.load: path must be a file path, got {path!r}")
        path = Path(path)
        dev, dt = _device(device), _dtype(dtype)
        if not path.exists():
            raise InputError(f"MagneticMACE.load: model file {str(path)!r} does not exist")
        if not path.is_file():
            raise InputError(f"MagneticMACE.load: {str(path)!r} is not a file")
        try:  # the header only: names, shapes, dtypes, metadata (no tensor is read)
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
                shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
                dtypes = {k: str(f.get_slice(k).get_dtype()) for k in f.keys()}
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
        except (KeyError, TypeError, ValueError) as exc:
            raise FileFormatError(f"{path}: bad hyperparameters in the metadata ({exc})") from None
        hp = check_hyperparameters(hp, FileFormatError, f"{path}")
        _check_header(path, shapes, dtypes, hp)
        try:
            model = cls._build(hp)
        except Exception as exc:
            raise FileFormatError(f"{path}: bad hyperparameters in the metadata ({exc})") from None
        own = model.state_dict()
        if set(own) != set(shapes):
            missing, extra = sorted(set(own) - set(shapes)), sorted(set(shapes) - set(own))
            raise FileFormatError(f"{path}: weights do not match the hyperparameters (missing {missing[:5]}, "
                                  f"unexpected {extra[:5]})")
        for k, v in own.items():
            if tuple(v.shape) != shapes[k]:
                raise FileFormatError(f"{path}: tensor {k} has shape {shapes[k]}, expected {tuple(v.shape)}")
        try:
            tensors = load_file(str(path))
        except (SafetensorError, OSError, ValueError, RuntimeError, Exception) as exc:
            raise FileFormatError(f"{path} is not a spinlat mMACE model file (not readable as safetensors: {exc})") from None
        for k, v in own.items():
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
