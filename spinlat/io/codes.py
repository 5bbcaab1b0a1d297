"""Structures of spin-dynamics codes' input files, for run configs and ``spinlat convert``.

:func:`read_code_structure` recognises a Spirit input file (:func:`spinlat.io.spirit.is_spirit_cfg`),
an UppASD ``inpsd.dat`` and a VAMPIRE unit-cell file (``.UCF``), or the ``format`` names "spirit",
"uppasd" and "vampire", and returns its State; ASE knows none of them (it takes a ``.cfg`` for
AtomEye's format)."""

from __future__ import annotations

from pathlib import Path


def code_format(path, format=None):
    """"spirit", "uppasd", "vampire" or None for the file at ``path`` (``format`` decides when
    given: one of those names, or another format, which is none of them)."""
    from .spirit import is_spirit_cfg

    if format is not None:
        return format if format in ("spirit", "uppasd", "vampire") else None
    p = Path(path)
    if p.name.lower() == "inpsd.dat":
        return "uppasd"
    if p.suffix.lower() == ".ucf":
        return "vampire"
    return "spirit" if is_spirit_cfg(p) else None


def read_code_structure(path, format=None):
    """The State of a spin code's input at ``path`` — Spirit: the simulated system
    (:func:`~spinlat.io.read_spirit_cfg`); UppASD: the unit cell repeated ``ncell`` times
    (:func:`~spinlat.io.read_uppasd`); VAMPIRE: the unit cell (:func:`~spinlat.io.read_vampire`)
    — or None when it is none of them (:func:`code_format`). Raises what those readers raise."""
    kind = code_format(path, format)
    if kind == "spirit":
        from .spirit import read_spirit_cfg

        return read_spirit_cfg(path)[0]
    if kind == "uppasd":
        from .uppasd import read_uppasd

        state, ham = read_uppasd(path)
        return state.repeat(ham.uppasd_ncell)
    if kind == "vampire":
        from .vampire import read_vampire

        return read_vampire(path)[0]
    return None


__all__ = ["code_format", "read_code_structure"]
