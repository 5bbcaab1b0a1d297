"""Number syntax of the text files spinlat reads (EAM tables, TB2J ``exchange.out``).

Two grammars, each token matched whole (nothing accepted by prefix, unlike a regular
expression ``findall`` over a line):

- ``"c"`` — the decimal forms LAMMPS's potential-file reader accepts (``utils::is_double``):
  ``[+-]?(digits[.digits] | .digits)([eE][+-]?digits)?``, e.g. ``1``, ``-1.``, ``.5``,
  ``2.5E-0012``; plus C99 hexadecimal floats (``0x1.8p+1``), which LAMMPS 2025 also reads
  through ``strtod``. Fortran ``D`` exponents are refused (LAMMPS refuses them too).
- ``"fortran"`` — the same decimal forms with a ``D``/``d`` exponent allowed as well
  (``1.87397D+01`` = 18.7397, Fortran's double-precision exponent letter).

Python's ``float`` is not used as the syntax check: it also takes ``nan``, ``inf``,
``infinity`` and digit separators (``1_0``). Non-finite values are refused in both grammars:
no tabulated potential or exchange constant is infinite, and a NaN would only surface later as
NaN energies.
"""

from __future__ import annotations

import math
import re

_DEC = r"[+-]?(?:\d+\.?\d*|\.\d+)"
_C_FLOAT = re.compile(_DEC + r"(?:[eE][+-]?\d+)?")
_FORTRAN_FLOAT = re.compile(_DEC + r"(?:[eEdD][+-]?\d+)?")
_HEX_FLOAT = re.compile(r"[+-]?0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)(?:[pP][+-]?\d+)?")
_INTEGER = re.compile(r"[+-]?\d+")
_NONFINITE = re.compile(r"[+-]?(?:nan|inf|infinity)(?:\(.*\))?", re.IGNORECASE)
#: digits after the decimal point and in the exponent of a decimal token (see :func:`digit_shape`)
_SHAPE = re.compile(r"[+-]?\d*(?:\.(\d*))?(?:[eEdD][+-]?(\d+))?")

GRAMMARS = ("c", "fortran")


def is_integer(token: str) -> bool:
    """``[+-]?digits``: LAMMPS's ``utils::is_integer``."""
    return _INTEGER.fullmatch(token) is not None


def all_decimal(tokens, grammar: str = "c") -> bool:
    """True when every token is a decimal number of ``grammar`` (the fast path of a reader;
    hexadecimal and malformed tokens go through :func:`parse_float`)."""
    match = (_C_FLOAT if grammar == "c" else _FORTRAN_FLOAT).fullmatch
    return all(map(match, tokens))


def to_float(token: str) -> float:
    """Value of a token already known to be a decimal number of either grammar."""
    return float(token.replace("D", "E").replace("d", "e"))


def number_problem(token: str, grammar: str = "c") -> str | None:
    """Why ``token`` is not a finite number of ``grammar``, or None when it is one."""
    if grammar not in GRAMMARS:  # pragma: no cover - programming error
        raise ValueError(f"unknown number grammar {grammar!r}")
    if _C_FLOAT.fullmatch(token) or (grammar == "fortran" and _FORTRAN_FLOAT.fullmatch(token)):
        value = to_float(token)
        return None if math.isfinite(value) else f"{token!r} overflows a 64-bit float"
    if _HEX_FLOAT.fullmatch(token):
        return None if math.isfinite(float.fromhex(token)) else f"{token!r} overflows a 64-bit float"
    if _NONFINITE.fullmatch(token):
        return f"{token!r} is not a finite number"
    if _FORTRAN_FLOAT.fullmatch(token):
        return (f"{token!r} has a Fortran 'D' exponent, which this format (like LAMMPS) does not "
                f"accept; write it as {token.replace('D', 'E').replace('d', 'e')!r}")
    return f"{token!r} is not a number"


def parse_float(token: str, grammar: str = "c") -> float:
    """The finite value of ``token`` in ``grammar``; ``ValueError`` (the reason) otherwise."""
    problem = number_problem(token, grammar)
    if problem is not None:
        raise ValueError(problem)
    if _HEX_FLOAT.fullmatch(token):
        return float.fromhex(token)
    return to_float(token)


def digit_shape(token: str) -> tuple[int, bool, int] | None:
    """(digits after the point, has an exponent, exponent digits) of a decimal token, or None.

    Fixed-format writers (``%e``, Fortran ``E``/``ES``) give every value of a table the same
    shape; a value cut short by a truncated file has fewer digits than its neighbours."""
    m = _SHAPE.fullmatch(token)
    if m is None:
        return None
    frac, exp = m.group(1), m.group(2)
    return (len(frac or ""), exp is not None, len(exp or ""))


def shorter_than(shape, reference) -> bool:
    """True when a token of ``shape`` has fewer digits than the ``reference`` shape allows (what
    cutting a ``reference``-shaped number short produces)."""
    if shape is None or reference is None:
        return False
    frac, has_exp, nexp = shape
    rfrac, rhas_exp, rnexp = reference
    return frac < rfrac or (rhas_exp and not has_exp) or (has_exp and rhas_exp and nexp < rnexp)
