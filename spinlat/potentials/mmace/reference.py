"""Models trained with the reference magnetic MACE (mace-torch pull request 1244) as spinlat potentials.

The reference code (``MagneticScaleShiftMACE`` in ``mace/modules/extensions.py``, trained with
``mace_run_train --model MagneticScaleShiftMACE`` and its magnetic options) saves ``.model`` files
that are torch pickles of its classes. spinlat never imports that package. Two ways in:

- :meth:`ReferenceMagneticMACE.from_reference_model` ``(path, trust=True, python=...)``: unpickles
  the file — which runs code from it, hence the explicit ``trust=True`` (refused otherwise) — in a
  Python interpreter where the reference package is installed (``python``, default the current
  one), by running :mod:`.reference_export` there, which writes the safe file below; then loads it.
  :meth:`ReferenceMagneticMACE.from_module` does the same with a live module (no pickle).
- :meth:`ReferenceMagneticMACE.load`: the safe file (``.safetensors``: the reference's own
  ``state_dict`` tensors plus its architecture as JSON, format ``spinlat-mmace-reference``),
  runnable without the reference package. :meth:`convert` writes one from a ``.model`` file.

spinlat re-implements the reference forward pass from the reference's structure (this module,
built from e3nn / mace-torch blocks): per layer, the spin-orbit-coupled density interaction
(``linear_up``, the bond tensor product with weights from an MLP of [Bessel(r) · cutoff, Chebyshev
basis T₁..T_K(1 − 2(|m_j|/m_max)²) of the sender's moment], then a tensor product of each edge
message with the sender's moment harmonics Y(m_j), summed over neighbours and divided by
1 + Σ_j tanh(MLP(r_ij)²)), the product basis with self-moment coupling (symmetric contraction,
then a tensor product with Y(m_i) weighted by an MLP of the moment basis, two linears and the
residual), linear / non-linear readouts, the optional one-body term
Σ_k c_{Z,k} T_k(1 − 2(|m|/m_max)²) − c⁰_Z, and the scale-shift. The moment harmonics are
the solid harmonics |m|^l Y_lm with integral normalisation (the reference's sphericart
``SolidHarmonics`` on (z, x, y) equals e3nn's ``spherical_harmonics(normalize=False,
normalization="integral")``, checked to 1e-14). Every e3nn weight loads unchanged; the symmetric
contractions' U matrices and weights are mapped onto :class:`.blocks.SymmetricProduct`
(the same polynomial, evaluated on symmetric monomials).

What maps: single-head ``MagneticScaleShiftMACE`` (or the ``magmom_mace`` inside a
``MagneticSCFMACE``) with the two ``Magnetic...SpinOrbitCoupledDensityInteractionBlock`` classes,
Bessel radial basis, e3nn (not cuequivariance) symmetric contractions, linear / silu readouts,
with or without the one-body moment term, any irreps, correlation, sizes. What does not (refused
with a clear error): several heads, ZBL pair repulsion, distance transforms, joint embeddings,
other interaction or readout blocks, ``use_last_readout_only``, and ``MagneticSCFMACE``'s
self-consistent moment loop (spinlat's own ``minimize(magnitudes=True)`` relaxes moments instead).

Conventions: the reference takes moment vectors ``magmom`` in μB and its ``magforces`` are −∂E/∂m
in eV/μB, as spinlat's magnetic forces; its stress is ∂E/∂ε / V (ASE sign), as spinlat's. Its
edge vectors point from sender to receiver; spinlat's graph stores the opposite direction, which
the forward pass below accounts for.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

from . import safe_imports  # noqa: F401  -- mace-torch (PyPI) and e3nn, leaving torch.load safe
import torch

from ... import validation
from ...errors import FileFormatError, InputError
from . import checksum
from .blocks import SymmetricProduct, chebyshev, symmetrize_dense
from .graded import GradedIrreps
from .model import EnergyModel, default_dtype
from .potential import MagneticMACE
from .reference_export import FORMAT, VERSION
from ...keywords import refuse_other_names

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from e3nn import nn as e3nn_nn
    from e3nn import o3
    from mace.modules.blocks import LinearNodeEmbeddingBlock, RadialEmbeddingBlock
    from mace.modules.irreps_tools import tp_out_irreps_with_instructions

_SILU = torch.nn.functional.silu


class _Buffers(torch.nn.Module):
    """Holds named buffers (the reference's small stateful blocks)."""

    def __init__(self, **tensors):
        super().__init__()
        for k, v in tensors.items():
            self.register_buffer(k, v)


class _Interaction(torch.nn.Module):
    """The reference's ``Magnetic(RealAgnostic|RealAgnosticResidue)SpinOrbitCoupledDensityInteractionBlock``."""

    def __init__(self, a: dict):
        super().__init__()
        nf, ea, ef = o3.Irreps(a["node_feats_irreps"]), o3.Irreps(a["edge_attrs_irreps"]), o3.Irreps(a["edge_feats_irreps"])
        target, hidden = o3.Irreps(a["target_irreps"]), o3.Irreps(a["hidden_irreps"])
        attrs, mattrs = o3.Irreps(a["node_attrs_irreps"]), o3.Irreps(a["magmom_node_attrs_irreps"])
        self.residual = "Residue" in a["class"]
        self.linear_up = o3.Linear(nf, nf)
        mid, instructions = tp_out_irreps_with_instructions(nf, ea, target)
        self.conv_tp = o3.TensorProduct(nf, ea, mid, instructions=instructions, shared_weights=False,
                                        internal_weights=False)
        mmid, minstructions = tp_out_irreps_with_instructions(mid, mattrs, target)
        self.magmom_conv_tp = o3.TensorProduct(self.conv_tp.irreps_out, mattrs, mmid, instructions=minstructions,
                                               shared_weights=False, internal_weights=False)
        n_in = ef.num_irreps + o3.Irreps(a["magmom_node_inv_feats_irreps"]).num_irreps
        self.conv_tp_weights = e3nn_nn.FullyConnectedNet([n_in] + list(a["radial_MLP"]) + [self.conv_tp.weight_numel],
                                                         _SILU)
        self.conv_tp_weights_magmom = e3nn_nn.FullyConnectedNet([n_in, self.magmom_conv_tp.weight_numel])
        self.magmom_linear = o3.Linear(self.magmom_conv_tp.irreps_out, target)
        if self.residual:
            self.skip_tp = o3.FullyConnectedTensorProduct(nf, attrs, hidden)
        else:
            self.magmom_skip_tp = o3.FullyConnectedTensorProduct(target, attrs, target)
        self.density_fn = e3nn_nn.FullyConnectedNet([ef.num_irreps, 1], _SILU)

    def forward(self, node_attrs, node_feats, edge_attrs, edge_feats, sender, receiver, m_feats, m_attrs):
        n = node_feats.shape[0]
        sc = self.skip_tp(node_feats, node_attrs) if self.residual else None
        h = self.linear_up(node_feats)
        edge_in = torch.cat([edge_feats, m_feats[sender]], dim=-1)
        mji = self.conv_tp(h[sender], edge_attrs, self.conv_tp_weights(edge_in))
        mji = self.magmom_conv_tp(mji, m_attrs[sender], self.conv_tp_weights_magmom(edge_in))
        density = torch.zeros((n, 1), dtype=mji.dtype, device=mji.device).index_add(
            0, receiver, torch.tanh(self.density_fn(edge_feats) ** 2))
        msg = torch.zeros((n, mji.shape[1]), dtype=mji.dtype, device=mji.device).index_add(0, receiver, mji)
        msg = self.magmom_linear(msg) / (density + 1)
        if not self.residual:
            msg = self.magmom_skip_tp(msg, node_attrs)
        return msg, sc


class _Product(torch.nn.Module):
    """The reference's ``EquivariantProductBasisWithSelfMagmomBlock``; ``terms`` (per output irrep,
    per ν: (monomials, coefficients)) come from the reference's U matrices."""

    def __init__(self, a: dict, num_elements: int, terms):
        super().__init__()
        irreps_in, target = o3.Irreps(a["irreps_in"]), o3.Irreps(a["irreps_out"])
        correlation = a["correlation"]
        if len(set(correlation)) != 1:
            raise FileFormatError(f"per-irrep correlations {correlation} are not supported")
        self.use_sc = bool(a["use_sc"])
        self.symmetric_contractions = SymmetricProduct(GradedIrreps.even(irreps_in), GradedIrreps.even(target),
                                                       correlation[0], num_elements, terms=terms)
        mattrs = o3.Irreps(a["magmom_node_attrs_irreps"])
        mid, instructions = tp_out_irreps_with_instructions(target, mattrs, target)
        self.conv_tp = o3.TensorProduct(target, mattrs, mid, instructions=instructions, shared_weights=False,
                                        internal_weights=False)
        self.conv_tp_weights = e3nn_nn.FullyConnectedNet(list(a["conv_tp_weights"]), _SILU)
        self.linear = o3.Linear(self.conv_tp.irreps_out, target)
        self.linear_ori = o3.Linear(target, target)

    def forward(self, x, sc, node_attrs, m_feats, m_attrs):
        b = self.symmetric_contractions(x, node_attrs)
        out = self.linear(self.conv_tp(b, m_attrs, self.conv_tp_weights(m_feats))) + self.linear_ori(b)
        return out + sc if (self.use_sc and sc is not None) else out


class _Readout(torch.nn.Module):
    def __init__(self, a: dict):
        super().__init__()
        self.nonlinear = a["class"] == "NonLinearReadoutBlock"
        if self.nonlinear:
            mlp = o3.Irreps(a["MLP_irreps"])
            self.linear_1 = o3.Linear(o3.Irreps(a["irreps_in"]), mlp)
            self.non_linearity = e3nn_nn.Activation(mlp, [_SILU])
            self.linear_2 = o3.Linear(mlp, o3.Irreps(a["irreps_out"]))
        else:
            self.linear = o3.Linear(o3.Irreps(a["irreps_in"]), o3.Irreps(a["irreps_out"]))

    def forward(self, x):
        return self.linear_2(self.non_linearity(self.linear_1(x))) if self.nonlinear else self.linear(x)


def _contraction_terms(state: dict, prefix: str, n_out: int, correlation: int, D: int):
    """(monomials, coefficients) per output irrep and ν from the reference's U matrices, and the
    reference's weights in ν order 1..correlation, (S, ΣK, C) per output irrep."""
    terms, weights = [], []
    for o in range(n_out):
        p = f"{prefix}.contractions.{o}"
        per_nu, ws = [], []
        for nu in range(1, correlation + 1):
            U = state[f"{p}.U_matrix_{nu}"].detach().cpu().double().numpy()
            mono, coef = symmetrize_dense(U, D, nu)
            per_nu.append((mono, coef))
            # mace keeps weights_max for ν = correlation and weights[j] for ν = correlation − 1 − j
            # (paths it zeroed are stored as zeros)
            ws.append(state[f"{p}.weights_max"] if nu == correlation else state[f"{p}.weights.{correlation - 1 - nu}"])
        terms.append(per_nu)
        weights.append(torch.cat([w.detach().to(torch.float64) for w in ws], dim=1))
    return terms, weights


class ReferenceMagneticMACEModel(EnergyModel):
    """spinlat's re-implementation of a reference ``MagneticScaleShiftMACE`` (see the module
    docstring), built from its architecture (:func:`.reference_export.architecture`) and state dict
    (reference names). Same call signature and outputs as
    :class:`~spinlat.potentials.mmace.model.MagneticMACEModel`."""

    def __init__(self, arch: dict, state: dict):
        super().__init__()
        z = [int(v) for v in arch["atomic_numbers"]]
        S = len(z)
        self.arch = arch
        self.register_buffer("z_table", torch.tensor(z, dtype=torch.int64))
        # the reference's own buffers, under its names
        self.register_buffer("atomic_numbers", torch.tensor(z, dtype=torch.int64))
        self.register_buffer("r_max", torch.tensor(float(arch["r_max"])))
        self.register_buffer("m_max", torch.tensor([float(v) for v in arch["m_max"]]))
        self.register_buffer("num_interactions", torch.tensor(int(arch["num_interactions"])))
        self.node_embedding = LinearNodeEmbeddingBlock(o3.Irreps(arch["node_embedding"][0]),
                                                       o3.Irreps(arch["node_embedding"][1]))
        self.radial_embedding = RadialEmbeddingBlock(r_max=arch["r_max"], num_bessel=arch["num_bessel"],
                                                     num_polynomial_cutoff=arch["num_polynomial_cutoff"],
                                                     apply_cutoff=arch["apply_cutoff"])
        self.spherical_harmonics = o3.SphericalHarmonics(o3.Irreps(arch["sh_irreps"]), normalize=True,
                                                         normalization="component")
        self.atomic_energies_fn = _Buffers(atomic_energies=torch.zeros(tuple(state["atomic_energies_fn.atomic_energies"].shape)))
        K = int(arch["num_mag_radial_basis"])
        start = 0 if arch["mag_include_constant"] else 1
        self.mag_radial_embedding = _Buffers(n=torch.arange(start, start + K))
        self.max_m_ell = int(arch["max_m_ell"])
        self.interactions = torch.nn.ModuleList(_Interaction(a) for a in arch["interactions"])
        self.products = torch.nn.ModuleList()
        mapped = {}
        for i, a in enumerate(arch["products"]):
            D = o3.Irreps([ir for _, ir in o3.Irreps(a["irreps_in"])]).dim
            terms, weights = _contraction_terms(state, f"products.{i}.symmetric_contractions",
                                                len(o3.Irreps(a["irreps_out"])), a["correlation"][0], D)
            self.products.append(_Product(a, S, terms))
            for o, w in enumerate(weights):
                mapped[f"products.{i}.symmetric_contractions.weights.{o}"] = w
        self.readouts = torch.nn.ModuleList(_Readout(a) for a in arch["readouts"])
        self.scale_shift = _Buffers(scale=torch.zeros(tuple(state["scale_shift.scale"].shape)),
                                    shift=torch.zeros(tuple(state["scale_shift.shift"].shape)))
        self.use_magmom_one_body = bool(arch["use_magmom_one_body"])
        if self.use_magmom_one_body:
            K1 = int(arch["num_mag_radial_basis_one_body"])
            self.onebody_magmombasis_coeffs = torch.nn.Parameter(torch.zeros(S, K1, 1))
            self.one_body_cheb_basis_with_const = _Buffers(n=torch.arange(0, K1))
            self.register_buffer("one_body_magmom_const_correction", torch.zeros(S, 1))
        self._load_reference_state(state, mapped)

    def _load_reference_state(self, state: dict, mapped: dict) -> None:
        """Copy the reference state dict in; every tensor must find its place and vice versa."""
        own = self.state_dict()
        contraction = {k for k in state if ".symmetric_contractions." in k}
        wanted = {k for k in own if ".symmetric_contractions." not in k and k != "z_table"}
        missing = sorted(wanted - set(state))
        extra = sorted(set(state) - wanted - contraction - {"z_table"})
        if missing or extra:
            raise FileFormatError(f"reference weights do not match the architecture (missing {missing[:5]}, "
                                  f"unexpected {extra[:5]})")
        new = {}
        for k, v in own.items():
            src = mapped.get(k, state.get(k))
            if src is None:
                new[k] = v  # U matrices and monomial indices of SymmetricProduct (built from the U's)
                continue
            if tuple(src.shape) != tuple(v.shape):
                raise FileFormatError(f"reference tensor {k} has shape {tuple(src.shape)}, expected {tuple(v.shape)}")
            if src.dtype.is_floating_point and not torch.all(torch.isfinite(src)):
                raise FileFormatError(f"reference tensor {k} holds NaN or inf")
            new[k] = src.to(v.dtype)
        new["z_table"] = own["z_table"]
        self.load_state_dict(new)

    def _node_energy(self, positions, magmoms, node_attrs, species, sender, receiver, shifts):
        # the reference's edge vector points from sender to receiver: −r_ij in spinlat's graph
        vectors = positions[receiver] - positions[sender] - shifts
        lengths = torch.linalg.norm(vectors, dim=-1, keepdim=True)
        edge_attrs = self.spherical_harmonics(vectors)
        edge_feats, _ = self.radial_embedding(lengths, node_attrs, None, None)   # as the reference: envelope
        # applied inside when apply_cutoff, the returned cutoff ignored
        heads = self.atomic_energies_fn.atomic_energies.reshape(-1, node_attrs.shape[1])
        node_e0 = node_attrs @ heads[0]
        # moments: magnitude basis and solid harmonics
        mlen = torch.linalg.norm(magmoms, dim=-1, keepdim=True)
        x = 1 - 2 * (mlen / self.m_max[species].unsqueeze(-1)) ** 2
        n_basis = self.mag_radial_embedding.n
        m_feats = chebyshev(x, len(n_basis), start=int(n_basis[0]))[:, 0, :]
        m_attrs = o3.spherical_harmonics(list(range(self.max_m_ell + 1)), magmoms, normalize=False,
                                         normalization="integral")
        h = self.node_embedding(node_attrs)
        energies = []
        for t, (inter, prod, readout) in enumerate(zip(self.interactions, self.products, self.readouts)):
            msg, sc = inter(node_attrs, h, edge_attrs, edge_feats, sender, receiver, m_feats, m_attrs)
            h = prod(msg, sc, node_attrs, m_feats, m_attrs)
            e = readout(h)[:, 0]
            if t == len(self.readouts) - 1 and self.use_magmom_one_body:
                K1 = len(self.one_body_cheb_basis_with_const.n)
                basis = chebyshev(x, K1)[:, 0, :]                                   # T_0..T_{K1−1}
                coeffs = self.onebody_magmombasis_coeffs[species, :, 0]
                e = e + (basis * coeffs).sum(-1) - self.one_body_magmom_const_correction[species, 0]
            energies.append(e)
        inter_e = torch.stack(energies).sum(0)
        scale = torch.atleast_1d(self.scale_shift.scale)[0]
        shift = torch.atleast_1d(self.scale_shift.shift)[0]
        return node_e0 + scale * inter_e + shift


def _read_reference_file(path):
    """(architecture, state dict, metadata) of a safe reference file; FileFormatError otherwise."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = Path(validation.existing_file(path, "reference model path", "model file"))
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception as exc:
        raise FileFormatError(f"{path} is not a safetensors file ({exc}){checksum.foreign_file(path)}") from None
    if meta.get("format") != FORMAT:
        raise FileFormatError(f"{path} is not a converted reference mMACE file (format marker "
                              f"{meta.get('format')!r}, expected {FORMAT!r})")
    if meta.get("version") != str(VERSION):
        raise FileFormatError(f"{path}: unsupported reference file version {meta.get('version')!r} (this spinlat reads {VERSION})")
    try:
        arch = json.loads(meta["architecture"])
        state = load_file(str(path))
    except Exception as exc:
        raise FileFormatError(f"{path}: unreadable architecture or tensors ({exc})") from None
    checksum.verify(path, meta, state, "converted reference model file", "convert the reference model again")
    return arch, state, meta


@refuse_other_names()
class ReferenceMagneticMACE(MagneticMACE):
    """A model trained with the reference magnetic MACE as a spinlat potential (energies eV, forces
    eV/Å, magnetic forces −∂E/∂m eV/μB, stress eV/Å³ ASE sign). See the module docstring for what
    maps and how. Everything :class:`~spinlat.potentials.mmace.potential.MagneticMACE` evaluates
    (``compute``, ``compute_many``, ``evaluate``) works the same; training is the reference's job."""

    def __init__(self, arch: dict, state: dict, device="cpu", dtype="float64", source=None):
        from ase.data import chemical_symbols

        with default_dtype(torch.float64), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = ReferenceMagneticMACEModel(arch, state)
        hp = {"elements": [chemical_symbols[z] for z in arch["atomic_numbers"]], "soc": True,
              "r_max": float(arch["r_max"]), "hidden_irreps": arch["products"][0]["irreps_out"],
              "reference": True}
        super().__init__(model, hp, device=device, dtype=dtype)
        self.architecture = arch
        self.source = source
        self._reference_state = {k: v.detach().cpu().clone() for k, v in state.items()}

    # ------------------------------------------------------------------ construction
    @classmethod
    @refuse_other_names()
    def load(cls, path, device="cpu", dtype="float64") -> "ReferenceMagneticMACE":
        """Load a safe file written by :meth:`convert` / :meth:`save` (no pickle, no reference package)."""
        arch, state, meta = _read_reference_file(path)
        try:
            return cls(arch, state, device=device, dtype=dtype, source=meta.get("source"))
        except FileFormatError as exc:
            raise FileFormatError(f"{path}: {exc}") from None
        except (KeyError, ValueError, TypeError, IndexError) as exc:
            raise FileFormatError(f"{path}: architecture does not describe a supported reference model ({exc})") from None

    @classmethod
    @refuse_other_names()
    def from_module(cls, module, device="cpu", dtype="float64") -> "ReferenceMagneticMACE":
        """From a live reference ``MagneticScaleShiftMACE`` / ``MagneticSCFMACE`` (the caller imported the
        reference package and built or loaded it); reads its architecture and state dict."""
        from . import reference_export

        try:
            inner = reference_export.inner_model(module)
            arch = reference_export.architecture(inner)
        except reference_export.UnsupportedModel as exc:
            raise InputError(f"cannot map this reference model: {exc}") from None
        state = {k: v.detach().cpu() for k, v in inner.state_dict().items()}
        return cls(json.loads(json.dumps(arch)), state, device=device, dtype=dtype,
                   source=type(inner).__module__ + "." + type(inner).__name__)

    @classmethod
    @refuse_other_names()
    def convert(cls, model_path, out_path, trust: bool = False, python=None, timeout: float = 600.0) -> Path:
        """Write the safe file of a reference ``.model`` pickle. Unpickling runs code from the file, so
        ``trust=True`` is required; it runs in the interpreter ``python`` (default: this one), which
        must have the reference package installed. Returns ``out_path``."""
        model_path = Path(validation.path(model_path, "ReferenceMagneticMACE.convert model_path"))
        out_path = Path(validation.path(out_path, "ReferenceMagneticMACE.convert out_path"))
        trust = validation.boolean(trust, "ReferenceMagneticMACE.convert trust")
        if not trust:
            raise InputError(f"{model_path} is a torch pickle: loading it executes code from the file. "
                             "Pass trust=True only for a file you trust (or load a converted .safetensors "
                             "file with ReferenceMagneticMACE.load)")
        validation.existing_file(model_path, "reference model path", "model file")
        python = str(python or sys.executable)
        script = Path(__file__).with_name("reference_export.py")
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
        try:
            proc = subprocess.run([python, str(script), str(model_path), str(out_path), "--trust"], env=env,
                                  capture_output=True, text=True, timeout=timeout)
        except OSError as exc:
            raise InputError(f"cannot run the Python interpreter {python!r}: {exc}") from None
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
            missing = ("No module named 'mace'", "Can't get attribute 'Magnetic", "has no attribute 'Magnetic",
                       "No module named 'sphericart'")
            if any(m in line for line in tail for m in missing):
                raise InputError(f"{python} cannot unpickle {model_path}: the reference magnetic MACE package "
                                 "(mace-torch pull request 1244, with sphericart-torch) is not installed there; pass "
                                 "python= the interpreter of an environment that has it")
            raise InputError(f"converting {model_path} failed ({python}): " + " | ".join(tail))
        return out_path

    @classmethod
    @refuse_other_names()
    def from_reference_model(cls, path, trust: bool = False, python=None, device="cpu",
                             dtype="float64") -> "ReferenceMagneticMACE":
        """Load a reference ``.model`` pickle (``trust=True`` required, see :meth:`convert`)."""
        path = validation.path(path, "ReferenceMagneticMACE.from_reference_model path")
        trust = validation.boolean(trust, "ReferenceMagneticMACE.from_reference_model trust")
        with tempfile.TemporaryDirectory() as tmp:
            out = cls.convert(path, Path(tmp) / "model.safetensors", trust=trust, python=python)
            return cls.load(out, device=device, dtype=dtype)

    @classmethod
    def create(cls, *args, **kwargs):
        raise InputError("ReferenceMagneticMACE wraps models trained with the reference code; "
                         "use MagneticMACE.create for a new spinlat model")

    @classmethod
    def train(cls, *args, **kwargs):
        raise InputError("train reference models with the reference's mace_run_train; "
                         "MagneticMACE.train trains spinlat's own mMACE")

    def save(self, path) -> None:
        """Write the safe file (reference state dict + architecture), loadable with :meth:`load`."""
        from safetensors.torch import save

        from ...files import atomic_write

        tensors = {k: v.contiguous() for k, v in self._reference_state.items()}
        meta = {"format": FORMAT, "version": str(VERSION), "architecture": json.dumps(self.architecture),
                "dtype": "float64", "source": str(self.source), checksum.KEY: checksum.tensor_checksum(tensors)}
        with atomic_write(path, "wb", name="ReferenceMagneticMACE.save path") as fh:
            fh.write(save(tensors, metadata=meta))

    def __repr__(self):
        return (f"ReferenceMagneticMACE(elements={self.hyperparameters['elements']}, r_max={self.cutoff}, "
                f"layers={len(self.architecture['interactions'])}, source={self.source!r})")
