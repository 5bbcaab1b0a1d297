"""``MagneticMACE``: the mMACE network as a spinlat potential, with safe model files.

Model files (``.mmace``) are safetensors files: the weights as tensors and, in the metadata, a
format marker, a version and the hyperparameters as JSON. Loading never executes code (no
pickle, no ``torch.load``); a file that is not such a file, lacks the metadata, or whose tensors
do not match the hyperparameters raises :class:`~spinlat.errors.FileFormatError`.

Before anything is built, the hyperparameters are checked (types and ranges, one definition in
:class:`~spinlat.potentials.mmace.hyperparameters.Hyperparameters`) and the tensor shapes in the
safetensors header (read without loading any tensor) against the shapes the hyperparameters
imply (:func:`implied_shapes`): a small file cannot make spinlat build a huge network.
"""

from __future__ import annotations

import json
import os
import types
from pathlib import Path

import numpy as np

from . import safe_imports  # noqa: F401  -- mace-torch and e3nn, leaving torch.load safe
import torch

from ... import validation
from ...errors import DeviceError, FileFormatError, InputError, UnknownElementError
from ...interrupts import check_abandon
from ..base import Evaluation, Potential
from . import checksum, metrics
from .graph import build_batch, edges, species_indices
from .hyperparameters import DEFAULTS, Hyperparameters, irreps
from .labels import (check_energies_are_totals, configuration_name, energies_as_totals, has_label, raw_label,
                     read_dataset, stored_keys, warn_unread_labels)
from .model import MagneticMACEModel
from ...keywords import HYPERPARAMETERS, TRAINING_OPTIONS, parameters_of, refuse_other_names

FORMAT = "spinlat-mmace"
#: format markers of spinlat's other mMACE safetensors files → what the file is, for load's error
_OTHER_FILES = {
    "spinlat-mmace-checkpoint": ": it is a training checkpoint (<output>.checkpoints/); the trained model is the "
                                "file named by the train config's output, written when training ends",
    "spinlat-mmace-graphs": ": it is a cache of training-data graphs (cache_dir), not a model",
    "spinlat-mmace-reference": ": it is a converted reference model; load it with ReferenceMagneticMACE.load",
}
#: 2: time-reversal-graded architecture (exact inversion with soc=True) and the symmetric-monomial
#: product basis; version-1 weights have another layout and cannot be mapped
VERSION = 2
_DTYPES = {"float64": torch.float64, "float32": torch.float32}

#: default of :attr:`MagneticMACE.batch_edges` per device type: the most graph edges (directed
#: pairs closer than r_max) that one model call of :meth:`MagneticMACE.compute_many` takes; more
#: replicas go into further calls. CPU: per-call overhead is paid off after a few thousand edges
#: and larger calls only grow the working set (``benchmarks/bench_mmace_batched.py``); GPU: large
#: calls fill the device, bounded so that float32 batches of a 32-channel model stay near 16 GB.
BATCH_EDGES = {"cpu": 8192, "cuda": 524288}


def _device(device) -> torch.device:
    if not isinstance(device, (str, torch.device)) or not str(device):
        raise InputError(f"device: expected 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise InputError(f"device: expected 'cpu', 'cuda' or 'cuda:N', got {device!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"device {device!r} asked for, but torch sees no CUDA GPU here; use device='cpu'")
    if dev.type not in ("cpu", "cuda"):
        raise DeviceError(f"unsupported device {device!r}; use 'cpu' or 'cuda'")
    return dev


def _dtype(dtype) -> torch.dtype:
    return _DTYPES[validation.float_dtype(dtype)]  # any spelling: "f4", np.float32, torch.float32, ...


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


def implied_shapes(hp) -> dict:
    """Shapes of the model's tensors that follow directly from (checked) hyperparameters ``hp``:
    {name: shape}, where a shape entry None means "any" and a shape None means "must be absent".
    Together they pin every size that makes a network large (species, channels, radial MLP,
    number of layers, correlation order and harmonic degrees through the product-basis matrices)."""
    S = len(hp["elements"])
    hidden = irreps(hp["hidden_irreps"], "hidden_irreps")
    C, n_hidden = next(iter(mul for mul, _ in hidden)), len(hidden)
    mlp = irreps(hp["MLP_irreps"], "MLP_irreps").num_irreps
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


def edge_groups(n_edges, budget):
    """How :meth:`MagneticMACE.compute_many` splits replicas into model calls: consecutive groups
    (lists of replica indices, in order) of replicas with ``n_edges`` graph edges each (a
    sequence of non-negative integers), each group holding at most ``budget`` edges unless it is
    a single replica (``budget`` None: one group of all; the potential's ``batch_edges``).
    ``len(edge_groups(...))`` is the number of model calls. Raises InputError for a ``budget``
    that is not a positive integer or None."""
    if budget is None:
        return [list(range(len(n_edges)))] if len(n_edges) else []
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 1:
        raise InputError(f"MagneticMACE.batch_edges must be a positive integer or None, got {budget!r}")
    groups, current, total = [], [], 0
    for k, n in enumerate(n_edges):
        if current and total + n > budget:
            groups.append(current)
            current, total = [], 0
        current.append(k)
        total += int(n)
    if current:
        groups.append(current)
    return groups


@refuse_other_names()
class MagneticMACE(Potential):
    """Equivariant machine-learned magnetic potential E(r, m) (mMACE).

    Energies eV, forces eV/Å, magnetic forces −∂E/∂m eV/μB, stress eV/Å³ (ASE sign). Build with
    :meth:`create` (untrained), :meth:`load` or :meth:`train`. Attributes: ``model`` (the torch
    module), ``hyperparameters`` (JSON-able dict: elements, soc, r_max, ...), ``elements``
    (atomic numbers), ``device``, ``dtype``, ``cutoff`` (= r_max, Å), ``batch_edges`` (the most
    graph edges per model call of :meth:`compute_many`; None: no limit; default
    :data:`BATCH_EDGES` of the device).
    """

    depends_on_magnitudes = True
    #: gives every field at once (no cheap per-atom local fields)
    local = False
    #: many replicas in one model call (:meth:`compute_many`)
    batches_replicas = True
    #: many-body in the moments (no single-spin local energy change: MonteCarlo refuses it)
    many_body_spins = True
    #: fixed when built (Potential._PARAMETERS): ``pot.dtype = ...`` or ``pot.device = ...`` left the
    #: model where it was; ``MagneticMACE.load(path, device=..., dtype=...)`` builds it elsewhere
    _PARAMETERS = ("device", "dtype", "cutoff", "soc", "elements")

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
        self.batch_edges = BATCH_EDGES[self.device.type]

    @property
    def spin_rotation_invariant(self) -> bool:
        """True for a model without spin-orbit coupling (``soc=False``): its energy is unchanged
        when every moment turns by the same rotation, the lattice fixed (tests/mmace/test_symmetry.py),
        so :func:`spinlat.search.ground_state` merges minima modulo a global spin rotation (a
        spin-space group, :mod:`spinlat.symmetry`); False with ``soc=True`` (moments turn with the lattice)."""
        return not self.soc

    # ------------------------------------------------------------------ construction
    @classmethod
    @refuse_other_names(extra=parameters_of(HYPERPARAMETERS))
    def create(cls, elements, soc: bool = True, seed: int = 0, device="cpu", dtype="float64",
               **hyperparameters) -> "MagneticMACE":
        """An untrained model for ``elements`` (symbols or numbers). ``hyperparameters`` keep
        mace-torch's names (r_max Å, num_bessel, num_polynomial_cutoff, max_ell,
        num_interactions, hidden_irreps, correlation, MLP_irreps, radial_MLP, avg_num_neighbors)
        plus the magnetic ones; types, defaults and ranges in
        :class:`~spinlat.potentials.mmace.hyperparameters.Hyperparameters` (``m_max`` in μB as a
        number or {symbol: μB}). Weights are initialised from ``seed``. Raises ConfigError naming a
        bad hyperparameter, UnknownElementError for an unknown element."""
        from ase.data import chemical_symbols

        z_table = _atomic_numbers(elements)
        given = {"elements": [chemical_symbols[z] for z in z_table], "soc": soc, **hyperparameters}
        hp = Hyperparameters.from_values(given, "MagneticMACE.create: ", what="mMACE hyperparameters").as_dict()
        return cls(cls._build(hp, seed), hp, device=device, dtype=dtype)

    @staticmethod
    def _build(hp: dict, seed=None) -> MagneticMACEModel:
        from ase.data import atomic_numbers

        z_table = [atomic_numbers[e] for e in hp["elements"]]
        return MagneticMACEModel.build(z_table, soc=hp["soc"], dtype=torch.float64, seed=seed,
                                       **{k: hp[k] for k in DEFAULTS})

    @classmethod
    @refuse_other_names(extra=parameters_of(HYPERPARAMETERS, TRAINING_OPTIONS))
    def train(cls, train, valid=None, soc: bool | None = None, max_minutes=None, seed: int = 0, init_from=None,
              **hyperparameters) -> "MagneticMACE":
        """Train (or fine-tune) a model on ``train`` (list of ase.Atoms or a data-set file) and
        return it: :func:`spinlat.training.train`, where the training lives (it sits above the
        potentials: it reads data sets, runs the optimiser and writes checkpoints, and installs
        itself as :data:`spinlat.potentials.mmace.trainer` when spinlat is imported).
        ``hyperparameters`` are model hyperparameters and training options.

        ``soc`` defaults to True, or to the symmetry of ``init_from`` when fine-tuning."""
        from . import trainer

        trainer = getattr(trainer, "__wrapped__", trainer)  # its keyword check: done by this method's
        return trainer(train, valid=valid, soc=soc, max_minutes=max_minutes, seed=seed, init_from=init_from,
                       **hyperparameters)

    # ------------------------------------------------------------------ files
    def save(self, path) -> None:
        """Write weights (safetensors) with hyperparameters, format marker, version and the SHA-256
        of the weights (:mod:`.checksum`, checked by :meth:`load`) in the metadata."""
        from safetensors.torch import save

        from ...files import atomic_write

        tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in self.model.state_dict().items()}
        meta = {"format": FORMAT, "version": str(VERSION), "hyperparameters": json.dumps(self.hyperparameters),
                "dtype": str(self.dtype).replace("torch.", ""), checksum.KEY: checksum.tensor_checksum(tensors)}
        with atomic_write(path, "wb", name=f"{type(self).__name__}.save path") as fh:  # crash-safe
            fh.write(save(tensors, metadata=meta))

    @classmethod
    @refuse_other_names()
    def load(cls, path, device="cpu", dtype="float64") -> "MagneticMACE":
        """Load a model file written by :meth:`save`.

        Raises InputError for a missing file, KeywordError for an unknown keyword, FileFormatError for anything
        that is not a spinlat mMACE file: no safetensors header, no or a foreign format marker, a
        newer version, weights that do not match the checksum saved with them (a damaged file),
        hyperparameters of the wrong type or range (:class:`~.hyperparameters.Hyperparameters`),
        tensors whose names or shapes do not
        match the hyperparameters (checked from the header, before any network is built), NaN/inf
        weights."""
        from safetensors import SafetensorError, safe_open
        from safetensors.torch import load_file

        path = Path(validation.existing_file(path, "MagneticMACE.load path", "MagneticMACE.load: model file"))
        dev, dt = _device(device), _dtype(dtype)
        try:  # the header only: names, shapes, dtypes, metadata (no tensor is read)
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
                shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
                dtypes = {k: str(f.get_slice(k).get_dtype()) for k in f.keys()}
        except (SafetensorError, OSError, ValueError, RuntimeError, Exception) as exc:
            raise FileFormatError(f"{path} is not a spinlat mMACE model file (not readable as safetensors: {exc})"
                                  + checksum.foreign_file(path)) from None
        if meta.get("format") != FORMAT:
            raise FileFormatError(f"{path} is not a spinlat mMACE model file (format marker "
                                  f"{meta.get('format')!r}, expected {FORMAT!r})"
                                  + _OTHER_FILES.get(meta.get("format"), ""))
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
        hp = Hyperparameters.check_values(hp, f"{path}: hyperparameter ", FileFormatError, "mMACE hyperparameters",
                                          complete=True)
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
        checksum.verify(path, meta, tensors, "mMACE model file", "use another copy of the model")
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

    def _run(self, configs, edge_lists, forces, magnetic_forces, stress, training=False, first_index=0):
        batch = build_batch(configs, self.cutoff, self.z_table, dtype=self.dtype, device=self.device,
                            edge_lists=edge_lists, first_index=first_index)
        with torch.set_grad_enabled(True):
            out = self.model(batch, compute_forces=forces, compute_magnetic_forces=magnetic_forces,
                             compute_stress=stress, training=training)
        return batch, out

    @staticmethod
    def _split(out, batch, forces, magnetic_forces, stress):
        """Per-configuration Evaluations of a model call on ``batch``. Non-magnetic atoms (moment
        0) get h = 0, as for every potential (:mod:`spinlat.potentials.base`): the model's
        −∂E/∂m there is the pull of the neighbours' moments on an atom that carries none."""
        def np_(x):
            return None if x is None else x.detach().to("cpu", torch.float64).numpy()

        ptr = batch["ptr"].tolist()
        e, ne, f, h, s = (np_(out[k]) for k in ("energy", "node_energy", "forces", "magnetic_forces", "stress"))
        if h is not None:
            h[~np.any(np_(batch["magmoms"]) != 0, axis=1)] = 0.0
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
        return self._split(out, batch, forces, magnetic_forces, stress)[0]

    def _evaluate_many(self, states, neighbors, forces, magnetic_forces, stress) -> list[Evaluation]:
        """The replicas' graphs as one disjoint union, evaluated in one model call (:meth:`compute_many`).

        Each replica keeps its own cell, periodicity, species and moments; its edges come from its
        neighbour list when the caller gives one, else from :func:`.graph.edges`. Only the order of
        floating-point sums differs from single calls (float64: ~1e-13 relative). Replicas are
        taken in order into as few calls as :attr:`batch_edges` allows (a replica larger than
        that gets a call of its own), which bounds memory."""
        if not states:
            return []
        pairs = [edges(st.positions, st.cell, st.pbc, self.cutoff) if nl is None else self._edges_from_list(st, nl)
                 for st, nl in zip(states, neighbors)]
        out = []
        for group in edge_groups([len(p[0]) for p in pairs], self.batch_edges):
            check_abandon()  # between model calls: a stop inside a GNEB step need not wait for every group
            batch, res = self._run([states[k] for k in group], [pairs[k] for k in group], forces, magnetic_forces,
                                   stress)
            out.extend(self._split(res, batch, forces, magnetic_forces, stress))
        return out

    def field_linearization(self, state, neighbors=None) -> "FieldLinearization":
        """The magnetic forces h = −∂E/∂m (N, 3) eV/μB of ``state`` and the products of their
        Jacobian ∂h/∂m = −∂²E/∂m∂m (eV/μB²; symmetric, m = moment · spin in μB, positions fixed)
        with vectors, by autograd: one model call (energy and h, the first backward kept as a
        graph, ``create_graph``) and, per :meth:`FieldLinearization.apply`, one further backward
        through it (the double backward, Pearlmutter, Neural Comput. 6, 147 (1994)), K vectors
        in one batched backward (``is_grads_batched``). ``neighbors`` as for :meth:`compute`.
        Cost on one busy CPU core for 16 bcc Fe atoms (``benchmarks/bench_mmace_nve_drift.py``
        prints it): the linearisation ≈ 1.0-1.1 calls of ``compute`` (E, F, h), each further
        sequential product ≈ 0.7-1.1, a batch of K products ≈ 0.3 + 0.15 K.

        Raises like :meth:`compute`."""
        check_abandon()
        self.check_state(state)
        self._check_neighbors(neighbors, f"{type(self).__name__}.field_linearization: neighbors")
        nl = self._neighbors_for(state, neighbors)
        edge_lists = None if nl is None else [self._edges_from_list(state, nl)]
        batch = build_batch([state], self.cutoff, self.z_table, dtype=self.dtype, device=self.device,
                            edge_lists=edge_lists)
        with torch.set_grad_enabled(True):
            m = batch["magmoms"].detach().requires_grad_(True)
            node_e = self.model.node_energies(batch["positions"], m, batch["node_attrs"], batch["species"],
                                             batch["edge_index"][0], batch["edge_index"][1], batch["shifts"])
            grad, = torch.autograd.grad(node_e.sum(), m, create_graph=True)
        return FieldLinearization(m, grad)

    def field_jacobian_vector(self, state, vectors, neighbors=None):
        """``(h, J v)``: the magnetic forces −∂E/∂m (N, 3) eV/μB of ``state`` and the products of
        their Jacobian ∂h/∂m = −∂²E/∂m∂m with ``vectors`` (N, 3) or (K, N, 3) μB (eV/μB, the same
        shape), in one model call with a batched double backward (:meth:`field_linearization`).

        Raises :class:`~spinlat.errors.InputError` for vectors of another shape or not finite,
        and like :meth:`compute`."""
        lin = self.field_linearization(state, neighbors)
        return lin.fields, lin.apply(vectors)

    @refuse_other_names()
    def compute_batch(self, states, forces=True, magnetic_forces=True, stress=False) -> list[Evaluation]:
        """The former name of :meth:`compute_many` (positional output flags kept)."""
        return self.compute_many(states, forces=forces, magnetic_forces=magnetic_forces, stress=stress)

    @refuse_other_names()
    def evaluate(self, dataset, batch_size: int = 8, energy_label: str = "total", check_energies: bool = True) -> dict:
        """RMSEs against a labelled data set (list of ase.Atoms, or a file ``ase.io.read`` reads,
        e.g. extxyz): ``energy_rmse`` meV/atom, ``forces_rmse`` meV/Å, ``magnetic_forces_rmse``
        meV/μB, and ``stress_rmse`` meV/Å³ when some configuration has a stress. Each is taken
        over the configurations (atoms) that carry the label (NaN when none does); labels are read
        from ``info``/``arrays`` or calculator results (:mod:`.labels`, :mod:`.metrics`). Raises
        InputError for an empty data set and for one where no configuration carries any label
        (all NaN otherwise), naming what the first configuration holds; a UserWarning names
        entries that look like labels under other names, which are not read
        (:func:`.labels.warn_unread_labels`).

        ``energy_label``: ``"total"`` (default) reads ``info["energy"]`` as the configuration's
        energy (eV), ``"per_atom"`` as eV/atom (multiplied by the number of atoms,
        :func:`.labels.energies_as_totals`). With ``check_energies`` (default) totals that scale
        like per-atom values across configurations of different sizes raise InputError
        (:func:`.labels.check_energies_are_totals`)."""
        if isinstance(dataset, (str, os.PathLike)):
            path, dataset = dataset, read_dataset(dataset, "MagneticMACE.evaluate: dataset")
            sources = [(str(path), j) for j in range(len(dataset))]
        else:  # a data set read from files (spinlat.training.data.Dataset) names each configuration's
            sources = getattr(dataset, "sources", None)
        origin = types.SimpleNamespace(sources=sources)  # errors name "configuration j of FILE"
        dataset = list(dataset)
        if validation.boolean(check_energies, "check_energies") and energy_label == "total":
            check_energies_are_totals(dataset, "MagneticMACE.evaluate: dataset", "If info['energy'] holds eV/atom, "
                                      "pass energy_label='per_atom'; if they are totals, check_energies=False")
        dataset = energies_as_totals(dataset, energy_label, "MagneticMACE.evaluate")
        if not dataset:
            raise InputError("MagneticMACE.evaluate: the data set is empty")
        labelled = [at for at in dataset if hasattr(at, "arrays")]
        if len(labelled) == len(dataset) and not any(has_label(at) for at in labelled):
            raise InputError("MagneticMACE.evaluate: no configuration carries a label (energy in info, forces or "
                             "magnetic_forces in arrays, stress in info, or a calculator result of them); "
                             f"configuration 0 holds {stored_keys(dataset[0])}")
        warn_unread_labels(dataset, "MagneticMACE.evaluate: dataset", stacklevel=4)  # the caller (+1: keyword check)
        stress = any(raw_label(at, "stress") is not None for at in dataset if hasattr(at, "arrays"))
        sums = {}
        for k in range(0, len(dataset), batch_size):
            names = [configuration_name(origin, j) for j in range(k, min(k + batch_size, len(dataset)))]
            batch, out = self._run(dataset[k:k + batch_size], None, True, True, stress, first_index=names)
            metrics.add_errors(sums, metrics.squared_errors(out, batch))
        return metrics.rmse(sums)

    def digest_items(self) -> tuple:
        """Hyperparameters and every weight of the model, for :meth:`parameter_digest`."""
        return (self.hyperparameters, dict(self.model.state_dict()))

    def __repr__(self):
        return (f"MagneticMACE(elements={self.hyperparameters['elements']}, soc={self.soc}, "
                f"r_max={self.cutoff}, hidden_irreps={self.hyperparameters['hidden_irreps']!r})")


class FieldLinearization:
    """The magnetic forces of one state and their Jacobian as a linear map, from
    :meth:`MagneticMACE.field_linearization`: ``fields`` (N, 3) eV/μB, ``apply(v)`` ∂h/∂m · v
    (eV/μB) for v (N, 3) or (K, N, 3) μB, each call one (batched) backward through the kept graph;
    ``products`` counts the vectors applied so far."""

    def __init__(self, magmoms, grad):
        self._m = magmoms
        self._grad = grad
        self.fields = -grad.detach().to("cpu", torch.float64).numpy()
        self.products = 0

    def apply(self, vectors) -> np.ndarray:
        v = np.asarray(vectors, dtype=np.float64)
        n = self.fields.shape[0]
        if v.shape not in ((n, 3),) and not (v.ndim == 3 and v.shape[1:] == (n, 3) and len(v) > 0):
            raise InputError(f"field Jacobian products need vectors of shape ({n}, 3) or (K, {n}, 3), got {v.shape}")
        if not np.all(np.isfinite(v)):
            raise InputError("field Jacobian products need finite vectors")
        t = torch.as_tensor(v, dtype=self._m.dtype, device=self._m.device)
        with torch.set_grad_enabled(True):
            out, = torch.autograd.grad(self._grad, self._m, grad_outputs=t, retain_graph=True,
                                       is_grads_batched=v.ndim == 3, allow_unused=True)
        self.products += 1 if v.ndim == 2 else len(v)
        if out is None:
            return np.zeros_like(v)
        return -out.detach().to("cpu", torch.float64).numpy()
