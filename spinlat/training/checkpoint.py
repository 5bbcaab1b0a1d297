"""Resumable training checkpoints in safetensors + JSON (no pickles).

``checkpoint.safetensors`` holds every tensor (model, optimiser, scheduler, EMA and best weights);
``checkpoint.json`` the rest of the state as JSON, with each tensor replaced by its name. The same
JSON also travels in the metadata of ``checkpoint.safetensors``, which is what is read back: the
tensors and the state that names them are then one file, replaced in one atomic rename after fsync
(:mod:`spinlat.files`), so a run killed at any moment leaves either the previous checkpoint or the
new one, never a mix (checkpoint.json is for people and for checkpoints written before). Loading
never executes code, and a checkpoint whose tensors no longer match the SHA-256 stored with them
(:mod:`spinlat.potentials.mmace.checksum`) is refused rather than resumed. Resuming is bit-for-bit: the shuffling depends only on the seed and the
epoch (:mod:`spinlat.training.loop`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from ..errors import FileFormatError
from ..potentials.mmace import checksum

FORMAT = "spinlat-mmace-checkpoint"


def _split_state(obj, prefix, tensors):
    """JSON-able copy of ``obj`` with tensors moved into ``tensors`` under dotted keys."""
    if isinstance(obj, torch.Tensor):
        tensors[prefix] = obj.detach().cpu().contiguous().clone()
        return {"__tensor__": prefix}
    if isinstance(obj, dict):
        return {"__dict__": [[_split_state(k, f"{prefix}.k{n}", tensors), _split_state(v, f"{prefix}.{n}", tensors)]
                             for n, (k, v) in enumerate(obj.items())]}
    if isinstance(obj, (list, tuple)):
        return {"__list__": [_split_state(v, f"{prefix}.{n}", tensors) for n, v in enumerate(obj)],
                "tuple": isinstance(obj, tuple)}
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot store {type(obj).__name__} in a checkpoint")


def _join_state(obj, tensors):
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            return tensors[obj["__tensor__"]]
        if "__dict__" in obj:
            return {_join_state(k, tensors): _join_state(v, tensors) for k, v in obj["__dict__"]}
        if "__list__" in obj:
            items = [_join_state(v, tensors) for v in obj["__list__"]]
            return tuple(items) if obj.get("tuple") else items
    return obj


def save_checkpoint(path_dir, *, model, optimizer, scheduler, ema, epoch, history, best, best_state, meta):
    """Write ``checkpoint.safetensors`` + ``checkpoint.json`` into ``path_dir`` atomically."""
    from safetensors.torch import save_file

    d = Path(path_dir)
    d.mkdir(parents=True, exist_ok=True)
    tensors = {}
    state = {
        "model": _split_state(model.state_dict(), "model", tensors),
        "optimizer": _split_state(optimizer.state_dict(), "optimizer", tensors),
        "scheduler": _split_state(scheduler.state_dict(), "scheduler", tensors) if scheduler is not None else None,
        "ema": _split_state(ema.state_dict(), "ema", tensors),
        "best_state": _split_state(best_state, "best_state", tensors) if best_state is not None else None,
        "epoch": int(epoch), "history": history, "best": best, "meta": meta,
        "format": FORMAT, "version": 1,
    }
    from ..files import atomic_path, atomic_write_text

    # each file is replaced atomically after fsync (spinlat.files); the tensors first, the JSON
    # that names them last
    text = json.dumps(state)
    with atomic_path(d / "checkpoint.safetensors") as tmp:
        save_file(tensors, tmp, metadata={"format": FORMAT, "state": text, checksum.KEY: checksum.tensor_checksum(tensors)})
    atomic_write_text(d / "checkpoint.json", text)


def load_checkpoint(path_dir) -> dict | None:
    """The training state saved by :func:`save_checkpoint`, or None if there is none."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    d = Path(path_dir)
    if not (d / "checkpoint.json").exists() or not (d / "checkpoint.safetensors").exists():
        return None
    try:
        with safe_open(str(d / "checkpoint.safetensors"), framework="pt") as f:
            meta = f.metadata() or {}
        text = meta.get("state")
        state = json.loads(text if text is not None else (d / "checkpoint.json").read_text())
        tensors = load_file(str(d / "checkpoint.safetensors"))
    except Exception as exc:
        raise FileFormatError(f"cannot read the training checkpoint in {d}: {exc}") from exc
    if state.get("format") != FORMAT:  # before hashing every tensor of a file that is not one
        raise FileFormatError(f"{d / 'checkpoint.json'} is not a spinlat mMACE checkpoint")
    checksum.verify(d / "checkpoint.safetensors", meta, tensors, "training checkpoint",
                    f"train afresh with resume=False (training.resume: false) or remove {d}")
    return {k: _join_state(v, tensors) for k, v in state.items()}
