"""Export a reference magnetic MACE model (mace-torch pull request 1244) to a safe file.

This file is standalone on purpose: it imports only torch (and, to unpickle a ``.model`` file, the
reference ``mace`` package), never spinlat, so that it runs in the reference's own environment:

    /path/to/reference-env/bin/python reference_export.py MODEL.model OUT.safetensors --trust

It writes the model's ``state_dict`` as a safetensors file (the format written here by hand: an
8-byte little-endian header length, a JSON header, the raw little-endian tensor bytes) with, in the
metadata, ``format = spinlat-mmace-reference``, a version and the architecture as JSON: every
irreps and size that spinlat needs to rebuild the same network (see
:func:`architecture`). spinlat's :class:`~spinlat.potentials.mmace.reference.ReferenceMagneticMACE`
reads it without the reference package. Unpickling a ``.model`` file runs code from the file:
``--trust`` is required, as spinlat's ``trust=True``.
"""

from __future__ import annotations

import json
import struct
import sys

FORMAT = "spinlat-mmace-reference"
VERSION = 1

SUPPORTED_INTERACTIONS = ("MagneticRealAgnosticSpinOrbitCoupledDensityInteractionBlock",
                          "MagneticRealAgnosticResidueSpinOrbitCoupledDensityInteractionBlock")


class UnsupportedModel(ValueError):
    """The module uses a feature that spinlat's re-implementation does not map."""


def _irreps(x) -> str:
    return str(x)


def inner_model(obj):
    """The ``MagneticScaleShiftMACE`` inside ``obj`` (itself, or the ``magmom_mace`` of a ``MagneticSCFMACE``)."""
    if type(obj).__name__ == "MagneticSCFMACE":
        obj = obj.magmom_mace
    if type(obj).__name__ != "MagneticScaleShiftMACE":
        raise UnsupportedModel(f"expected a MagneticScaleShiftMACE (or a MagneticSCFMACE around one), got "
                               f"{type(obj).__module__}.{type(obj).__name__}")
    return obj


def architecture(model) -> dict:
    """JSON-able description of a reference ``MagneticScaleShiftMACE``: every constructor size and
    irreps of its blocks, read from the live module. Raises UnsupportedModel for features spinlat
    does not map (several heads, pair repulsion, joint embeddings, distance transforms, LES, other
    interaction blocks, readouts other than MACE's linear / non-linear ones)."""
    model = inner_model(model)
    heads = list(getattr(model, "heads", ["default"]))
    if len(heads) != 1:
        raise UnsupportedModel(f"multi-head models are not supported (heads {heads})")
    if hasattr(model, "pair_repulsion"):
        raise UnsupportedModel("pair repulsion (ZBL) is not supported")
    if hasattr(model, "joint_embedding") or hasattr(model, "embedding_readout"):
        raise UnsupportedModel("joint embeddings are not supported")
    radial = model.radial_embedding
    if type(radial.bessel_fn).__name__ != "BesselBasis":
        raise UnsupportedModel(f"radial basis {type(radial.bessel_fn).__name__} is not supported (only bessel)")
    if hasattr(radial, "distance_transform"):
        raise UnsupportedModel("distance transforms are not supported")
    sh_m = model.mag_solid_harmoics.SH
    arch = {
        "atomic_numbers": [int(z) for z in model.atomic_numbers.tolist()],
        "r_max": float(model.r_max),
        "m_max": [float(v) for v in model.m_max.reshape(-1).tolist()],
        "num_interactions": int(model.num_interactions),
        "num_bessel": int(radial.bessel_fn.bessel_weights.numel()),
        "num_polynomial_cutoff": int(radial.cutoff_fn.p),
        "apply_cutoff": bool(getattr(radial, "apply_cutoff", True)),
        "sh_irreps": _irreps(model.spherical_harmonics.irreps_out),
        "num_mag_radial_basis": int(model.mag_radial_embedding.num_basis),
        "mag_include_constant": bool(model.mag_radial_embedding.include_constant),
        "max_m_ell": int(sh_m.l_max() if callable(getattr(sh_m, "l_max", None)) else sh_m.l_max),
        "node_embedding": [_irreps(model.node_embedding.linear.irreps_in), _irreps(model.node_embedding.linear.irreps_out)],
        "use_magmom_one_body": bool(model.use_magmom_one_body),
        "num_mag_radial_basis_one_body": (int(model.one_body_cheb_basis_with_const.num_basis)
                                          if model.use_magmom_one_body else 0),
        "heads": heads,
        "interactions": [],
        "products": [],
        "readouts": [],
    }
    for inter in model.interactions:
        name = type(inter).__name__
        if name not in SUPPORTED_INTERACTIONS:
            raise UnsupportedModel(f"interaction block {name} is not supported (only {SUPPORTED_INTERACTIONS})")
        arch["interactions"].append({
            "class": name,
            "node_attrs_irreps": _irreps(inter.node_attrs_irreps),
            "node_feats_irreps": _irreps(inter.node_feats_irreps),
            "edge_attrs_irreps": _irreps(inter.edge_attrs_irreps),
            "edge_feats_irreps": _irreps(inter.edge_feats_irreps),
            "target_irreps": _irreps(inter.target_irreps),
            "hidden_irreps": _irreps(inter.hidden_irreps),
            "magmom_node_inv_feats_irreps": _irreps(inter.magmom_node_inv_feats_irreps),
            "magmom_node_attrs_irreps": _irreps(inter.magmom_node_attrs_irreps),
            "radial_MLP": [int(k) for k in inter.radial_MLP],
        })
    for prod in model.products:
        if type(prod).__name__ != "EquivariantProductBasisWithSelfMagmomBlock":
            raise UnsupportedModel(f"product block {type(prod).__name__} is not supported")
        sc = prod.symmetric_contractions
        if type(sc).__name__ != "SymmetricContraction":
            raise UnsupportedModel(f"symmetric contraction {type(sc).__name__} (cuequivariance?) is not supported")
        arch["products"].append({
            "irreps_in": _irreps(sc.irreps_in),
            "irreps_out": _irreps(sc.irreps_out),
            "correlation": [int(c.correlation) for c in sc.contractions],
            "use_sc": bool(prod.use_sc),
            "magmom_node_inv_feats_irreps": _irreps(prod.magmom_node_inv_feats_irreps),
            "magmom_node_attrs_irreps": _irreps(prod.magmom_node_attrs_irreps),
            "conv_tp_weights": [int(layer.weight.shape[0]) for layer in prod.conv_tp_weights]
                               + [int(list(prod.conv_tp_weights)[-1].weight.shape[1])],
        })
    for ro in model.readouts:
        name = type(ro).__name__
        if name == "LinearReadoutBlock":
            arch["readouts"].append({"class": name, "irreps_in": _irreps(ro.linear.irreps_in),
                                     "irreps_out": _irreps(ro.linear.irreps_out)})
        elif name == "NonLinearReadoutBlock":
            acts = [getattr(getattr(a, "f", a), "__name__", str(a)) for a in getattr(ro.non_linearity, "acts", [])
                    if a is not None]                 # e3nn wraps each gate in normalize2mom (.f)
            if any(a not in ("silu", "SiLU") for a in acts if a != "None"):
                raise UnsupportedModel(f"readout gate {acts} is not supported (only silu)")
            arch["readouts"].append({"class": name, "irreps_in": _irreps(ro.linear_1.irreps_in),
                                     "MLP_irreps": _irreps(ro.linear_1.irreps_out),
                                     "irreps_out": _irreps(ro.linear_2.irreps_out)})
        else:
            raise UnsupportedModel(f"readout {name} is not supported")
    if len(arch["readouts"]) != len(arch["interactions"]):
        raise UnsupportedModel("use_last_readout_only models are not supported")
    return arch


_DTYPES = {"torch.float64": "F64", "torch.float32": "F32", "torch.int64": "I64", "torch.int32": "I32",
           "torch.bool": "BOOL", "torch.float16": "F16", "torch.uint8": "U8"}


def write_safetensors(tensors: dict, path, metadata: dict) -> None:
    """Write ``tensors`` (name → torch tensor) and string ``metadata`` in the safetensors format."""
    header, chunks, offset = {"__metadata__": {k: str(v) for k, v in metadata.items()}}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().to("cpu").contiguous()
        if str(t.dtype) not in _DTYPES:
            raise UnsupportedModel(f"tensor {name} has dtype {t.dtype}")
        raw = t.numpy().tobytes()                     # little-endian on every platform torch supports
        header[name] = {"dtype": _DTYPES[str(t.dtype)], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)
    # atomic like spinlat.files.atomic_write (this file is standalone, so it cannot import it):
    # a temporary file beside the target, fsync, then os.replace; a crash leaves the old file
    import os
    import tempfile

    path = os.fspath(path)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp",
                               dir=os.path.dirname(os.path.abspath(path)))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(struct.pack("<Q", len(blob)))
            f.write(blob)
            for raw in chunks:
                f.write(raw)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def export(model, path) -> dict:
    """Write the safe file of a live reference model; returns its architecture."""
    model = inner_model(model)
    arch = architecture(model)
    state = {k: v for k, v in model.state_dict().items()}
    dtype = str(next(iter(model.parameters())).dtype).replace("torch.", "")
    write_safetensors(state, path, {"format": FORMAT, "version": VERSION, "architecture": json.dumps(arch),
                                    "dtype": dtype, "source": type(model).__module__ + "." + type(model).__name__})
    return arch


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) != 3 or argv[2] != "--trust":
        print("usage: reference_export.py MODEL.model OUT.safetensors --trust\n"
              "(a .model file is a pickle: loading it runs code from the file; --trust says you trust it)",
              file=sys.stderr)
        return 2
    import mace  # noqa: F401  -- the reference package: its classes are needed to unpickle
    import torch

    try:
        obj = torch.load(argv[0], map_location="cpu", weights_only=False)
        export(obj, argv[1])
    except UnsupportedModel as exc:
        print(f"unsupported reference model: {exc}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
