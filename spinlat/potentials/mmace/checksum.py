"""Checksums of the tensors in spinlat's safetensors files (models, training checkpoints, graph
caches), and a clear word for files that are torch pickles rather than safetensors.

The safetensors format checks its header, not its data: a flipped bit or a block of zeros inside a
weight (a damaged disk, a file copied while it was written, a sync tool's conflict) loads without
error and gives silently different energies. :func:`tensor_checksum` is SHA-256 over every
tensor's name, dtype, shape and bytes, in name order; writers store it in the metadata under
:data:`KEY`, readers compare it with :func:`verify` (files written before the checksum existed
carry none and are read unchecked).
"""

from __future__ import annotations

import hashlib

from ...errors import FileFormatError

#: metadata key of the checksum
KEY = "sha256"


def tensor_checksum(tensors: dict) -> str:
    """Hexadecimal SHA-256 of ``tensors`` (name → torch tensor): names, dtypes, shapes and the raw
    bytes of each, in name order."""
    import torch

    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().to("cpu").contiguous()
        h.update(f"{name}\0{str(t.dtype)}\0{tuple(t.shape)}\0".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy())  # the buffer itself, not a copy
    return h.hexdigest()


def verify(path, meta: dict, tensors: dict, what: str = "model file", advice: str = "") -> None:
    """Raise FileFormatError when ``meta`` (a file's safetensors metadata) holds a checksum
    (:data:`KEY`) that ``tensors`` (the file's tensors as read) do not match: the file was damaged
    after it was written. ``advice`` ends the message (what to do)."""
    want = (meta or {}).get(KEY)
    if want is None:
        return
    if tensor_checksum(tensors) != want:
        raise FileFormatError(f"{path}: the {what} is damaged: its tensors do not match the SHA-256 checksum written "
                              f"with them (the file changed after it was saved: a disk or copy error?)"
                              + (f"; {advice}" if advice else ""))


def foreign_file(path) -> str:
    """What ``path`` seems to be when it is not a safetensors file, for error messages: a torch
    pickle (zip archive or legacy pickle, e.g. a mace-torch ``.model`` or a ``.pt``), or ``""``."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
    except OSError:
        return ""
    if head.startswith(b"PK\x03\x04") or head[:1] == b"\x80":
        return ("; it is a torch pickle (torch.save: a zip archive or a pickle, such as a mace-torch .model), which "
                "spinlat never unpickles because unpickling runs code from the file. A model of the reference "
                "magnetic MACE: ReferenceMagneticMACE.convert(path, out, trust=True) writes a safe file; a spinlat "
                "model is saved with MagneticMACE.save")
    return ""
