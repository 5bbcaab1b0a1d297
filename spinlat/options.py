"""Typed option sets: frozen dataclasses whose fields carry their own check and meaning.

A field made with :func:`option` holds its default, a check ``check(value, key) -> value in
normal form`` that raises :class:`~spinlat.errors.InputError` with a message starting with
``key`` (the style of :mod:`spinlat.validation`), a one-line description, and free tags (e.g.
``architecture=True`` for a model hyperparameter that fixes the network's shapes). A dataclass
deriving from :class:`Options` is then checked in one place wherever its values come from —
keyword arguments, a YAML config section, the metadata of a model file — and names the bad key
with the caller's prefix (``model.r_max``, ``training.lr``, ``MagneticMACE.create: r_max``).

Used for the mMACE hyperparameters (:class:`spinlat.potentials.mmace.hyperparameters.Hyperparameters`)
and the training options (:class:`spinlat.training.options.TrainingOptions`), and by
:func:`spinlat.config.check_train_config` for the ``model:`` and ``training:`` sections.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any, Callable

from . import validation
from .errors import ConfigError, InputError
from .keywords import hint

__all__ = ["option", "Options", "integer_in", "number_in", "optional", "path_or_none", "element_mapping",
           "per_element"]


def option(default, check: Callable[[Any, str], Any], doc: str, **tags):
    """A dataclass field with ``default``, ``check`` (value, key) → normal form, ``doc`` and
    ``tags`` (stored in the field's metadata). Mutable defaults are copied per instance."""
    meta = {"check": check, "doc": doc, **tags}
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: copy.deepcopy(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


class Options:
    """Methods of a frozen dataclass of :func:`option` fields.

    Subclasses may override :meth:`check_together` for rules that tie several options."""

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def spec(cls, name: str) -> dict:
        """The metadata of option ``name``: ``check``, ``doc`` and the tags."""
        return dict(next(f for f in dataclasses.fields(cls) if f.name == name).metadata)

    @classmethod
    def defaults(cls) -> dict:
        """{name: default} of every option (fresh copies of mutable defaults)."""
        out = {}
        for f in dataclasses.fields(cls):
            out[f.name] = f.default_factory() if f.default is dataclasses.MISSING else copy.deepcopy(f.default)
        return out

    @classmethod
    def check_values(cls, values, prefix: str = "", error=ConfigError, what: str = "options", complete=False,
                     exclude=()) -> dict:
        """Check the mapping ``values`` (a subset of the options; all of them when ``complete``).

        Returns a new dict of the given keys in normal form. Raises ``error`` whose message starts
        with ``prefix + key``: an unknown key (with the known ones and a close match), a missing one
        (``complete``), a bad value, or a violated :meth:`check_together` rule (checked with the
        defaults standing in for keys not given). Keys in ``exclude`` count as unknown."""
        where = prefix.rstrip(". :") or cls.__name__
        if not isinstance(values, dict):
            raise error(f"{where}: expected a mapping of {what}, got {type(values).__name__} {values!r}")
        known = [n for n in cls.names() if n not in exclude]
        for key in values:
            if key not in known:
                raise error(f"{prefix}{key}: unknown key for {what}{hint(key, known)}; expected one of "
                            f"{', '.join(sorted(known))}")
        if complete:
            missing = [k for k in known if k not in values]
            if missing:
                raise error(f"{where}: missing {what} {missing}")
        out = {}
        try:
            for key, value in values.items():
                out[key] = cls.spec(key)["check"](value, f"{prefix}{key}")
            cls.check_together({**cls.defaults(), **out}, out, prefix, complete)
        except InputError as exc:
            if isinstance(exc, error):
                raise
            raise error(str(exc)) from None
        return out

    @classmethod
    def check_together(cls, full: dict, given: dict, prefix: str, complete: bool) -> None:
        """Rules between options, on ``full`` (defaults + ``given``, in normal form); may normalise
        ``given`` in place; ``complete``: every option was given (stricter where that matters).
        Raises InputError naming ``prefix + key``."""

    @classmethod
    def from_values(cls, values, prefix: str = "", error=ConfigError, what: str = "options", exclude=()):
        """An instance from the mapping ``values`` (checked by :meth:`check_values`) and the defaults."""
        return cls(**{**cls.defaults(), **cls.check_values(values, prefix, error, what, exclude=exclude)})

    def as_dict(self) -> dict:
        """{name: value} of every option (copies of mutable values)."""
        return {f.name: copy.deepcopy(getattr(self, f.name)) for f in dataclasses.fields(self)}


# ------------------------------------------------------------------------- common checks
def integer_in(lo: int, hi: int | None = None):
    """Check: an integer in [lo, hi] (hi None: no upper bound); a float with an integral value counts."""
    def check(v, k):
        n = validation.integer(v, k)
        if n < lo or (hi is not None and n > hi):
            raise InputError(f"{k}: expected an integer in [{lo}, {'∞' if hi is None else hi}], got {v!r}")
        return n
    return check


def number_in(lo: float, hi: float | None = None, unit: str | None = None, low_open=False, high_open=False):
    """Check: a finite real number in the interval from ``lo`` to ``hi`` (None: unbounded),
    each end open or closed, as ``float``."""
    def check(v, k):
        x = validation.number(v, k, unit=unit)
        below = x <= lo if low_open else x < lo
        above = hi is not None and (x >= hi if high_open else x > hi)
        if below or above:
            span = f"{'(' if low_open else '['}{lo}, {'∞' if hi is None else hi}{')' if high_open or hi is None else ']'}"
            raise InputError(f"{k}: expected a number in {span}{f' ({unit})' if unit else ''}, got {v!r}")
        return x
    return check


def optional(check):
    """``check`` that also accepts ``None``."""
    return lambda v, k: None if v is None else check(v, k)


def path_or_none(v, k):
    """A file-system path as ``str``, or None."""
    return None if v is None else validation.path(v, k)


def element_mapping(value_check, what: str = "number"):
    """Check: a non-empty mapping {element: value} (keys chemical symbols or atomic numbers, made
    symbols), each value checked by ``value_check(value, f"{key}.{element}")``."""
    def check(v, k):
        from ase.data import chemical_symbols

        if not isinstance(v, dict) or not v:
            raise InputError(f"{k}: expected a mapping element → {what}, got {v!r}")
        return {chemical_symbols[validation.atomic_number(e, f"{k}.{e}")]: value_check(x, f"{k}.{e}")
                for e, x in v.items()}
    return check


def per_element(value_check, what: str = "number"):
    """Check: one value for every element (``value_check``), or a mapping {element: value}
    (:func:`element_mapping`)."""
    mapping = element_mapping(value_check, what)
    return lambda v, k: mapping(v, k) if isinstance(v, dict) else value_check(v, k)
