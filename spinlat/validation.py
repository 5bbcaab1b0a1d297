"""Strict checks of values given by users, shared by State, potentials, integrators and configs.

The rules are the same everywhere: a bool is not a number, a string is not a number or a bool,
a complex number is not real, and an array of booleans, strings or complex numbers is not an
array of coordinates. Each check returns the value in its normal form (``float``, ``int``,
``bool``, a float64 array, ...) or raises an :class:`~spinlat.errors.InputError` (a subclass
where one fits) whose message starts with ``name`` and says what was expected, e.g.
``"dt: expected a positive number (fs), got True"``. Config code passes the full key path as
``name`` (``"integrator.dt"``) and re-raises as :class:`~spinlat.errors.ConfigError`.
"""

from __future__ import annotations

import math
import os
from numbers import Integral, Real

import numpy as np

from .errors import InputError, MissingFileError, NonFiniteError, ShapeError, UnknownElementError

__all__ = ["is_real_number", "number", "integer", "boolean", "choice", "seed", "path", "paths", "instance",
           "real_array", "integer_array", "atom_indices", "vector3", "pbc", "atomic_number", "atomic_numbers"]

MAX_Z = 118  # heaviest element known to ASE's tables


def _got(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def is_real_number(value) -> bool:
    """True for Python/NumPy real numbers (int, float, np.integer, np.floating), False for bools,
    strings, complex numbers and everything else."""
    return isinstance(value, Real) and not isinstance(value, (bool, np.bool_))


def number(value, name, *, positive=False, nonnegative=False, maximum=None, unit=None,
           finite=True) -> float:
    """A real number as ``float``.

    ``positive`` / ``nonnegative``: require > 0 / ≥ 0; ``maximum``: require ≤ maximum;
    ``unit``: named in the message; ``finite``: refuse NaN and ±inf (NaN is always refused).
    Raises InputError (NonFiniteError for NaN/inf)."""
    what = ("a positive number" if positive else "a non-negative number" if nonnegative else "a number")
    if maximum is not None:
        what += f" ≤ {maximum}"
    if unit:
        what += f" ({unit})"
    if not is_real_number(value):
        raise InputError(f"{name}: expected {what}, got {_got(value)}")
    v = float(value)
    if math.isnan(v) or (finite and math.isinf(v)):
        raise NonFiniteError(f"{name}: expected {what}, got {v}")
    if (positive and not v > 0) or (nonnegative and not v >= 0) or (maximum is not None and v > maximum):
        raise InputError(f"{name}: expected {what}, got {_got(value)}")
    return v


#: |value| (eV) above which an exchange, DMI or anisotropy constant is warned about as likely
#: given in meV: measured ones are meV-scale (bcc Fe's nearest-neighbour J ≈ 19 meV in TB2J,
#: anisotropies μeV to a few meV), and Spirit, UppASD and TB2J give theirs in meV
MAGNETIC_ENERGY_WARN_EV = 1.0


def magnetic_energy(value, name, stacklevel=3) -> None:
    """UserWarning when an exchange, DMI or anisotropy constant ``value`` (eV: a number, a
    sequence or an ``{element: value}`` dict) exceeds :data:`MAGNETIC_ENERGY_WARN_EV` in
    magnitude, naming it: most likely a value in meV (Spirit's, UppASD's or TB2J's unit) given
    where spinlat takes eV, which makes every energy and precession 1000 times too large."""
    vals = list(value.values()) if isinstance(value, dict) else np.atleast_1d(np.asarray(value, dtype=float)).ravel()
    big = [float(v) for v in vals if is_real_number(v) and abs(float(v)) > MAGNETIC_ENERGY_WARN_EV]
    if big:
        import warnings

        warnings.warn(f"{name} = {big[0]:g} eV is larger than any measured exchange or anisotropy (meV-scale): "
                      f"spinlat takes eV; a value in meV (Spirit's, UppASD's and TB2J's unit) is value × "
                      f"spinlat.units.MEV ({big[0] * 1e-3:g} eV here)", UserWarning, stacklevel=stacklevel)


def integer(value, name, *, minimum=None) -> int:
    """An integer as ``int``; a float with an integral value (``1e5`` from a config) counts.

    ``minimum``: require ≥ minimum. Raises InputError."""
    what = "an integer" if minimum is None else ("a positive integer" if minimum == 1 else
                                                 "a non-negative integer" if minimum == 0 else
                                                 f"an integer ≥ {minimum}")
    if isinstance(value, Integral) and not isinstance(value, (bool, np.bool_)):
        v = int(value)
    elif is_real_number(value) and math.isfinite(value) and float(value) == int(value):
        v = int(value)
    else:
        raise InputError(f"{name}: expected {what}, got {_got(value)}")
    if minimum is not None and v < minimum:
        raise InputError(f"{name}: expected {what}, got {_got(value)}")
    return v


def boolean(value, name) -> bool:
    """``True`` or ``False`` (Python or NumPy bools only). Raises InputError."""
    if not isinstance(value, (bool, np.bool_)):
        raise InputError(f"{name}: expected true or false, got {_got(value)}")
    return bool(value)


def choice(value, name, options) -> str:
    """One of the strings ``options``. Raises InputError."""
    options = tuple(options)
    if not isinstance(value, str) or value not in options:
        raise InputError(f"{name}: expected one of {', '.join(map(repr, options))}, got {_got(value)}")
    return value


#: the floating-point precisions of models (mMACE) and training, by their canonical names
FLOAT_DTYPES = ("float64", "float32")


def float_dtype(value, name="dtype") -> str:
    """``"float64"`` or ``"float32"`` from any standard spelling of those precisions: the names
    (``"float64"``, ``"double"``, ``"f8"``, ``"<f8"``, ``"fp64"``, ``"torch.float64"``; likewise
    32-bit: ``"single"``, ``"f4"``, ``"fp32"``), the Python type ``float`` (64-bit), NumPy dtypes and
    scalar types (``np.dtype("float32")``, ``np.float32``) and torch dtypes (``torch.float32``,
    ``torch.double``). Other precisions (float16, bfloat16, integers) and other objects raise
    InputError naming ``name``."""
    text, dt = None, None
    if type(value).__name__ == "dtype" and type(value).__module__ == "torch":  # torch.float32 (no torch import)
        text = str(value)
    elif isinstance(value, str):
        text = value.strip()
    if text is not None:
        if text.startswith("torch."):  # torch's names: torch.float is 32-bit, torch.double 64-bit
            text = {"float": "float32", "double": "float64"}.get(text[len("torch."):], text[len("torch."):])
        text = {"fp64": "float64", "fp32": "float32"}.get(text.lower(), text)
    if text is not None or isinstance(value, (np.dtype, type)):
        try:  # NumPy's names ("float" and "double": 64-bit, "single": 32-bit, "f4", "<f8") and types
            dt = np.dtype(text if text is not None else value)
        except (TypeError, ValueError):
            pass
    if dt is None or dt.kind != "f" or dt.itemsize not in (4, 8):
        raise InputError(f"{name}: expected 'float64' or 'float32' (or a NumPy or torch float dtype such as "
                         f"np.float32, torch.float64), got {_got(value)}")
    return f"float{8 * dt.itemsize}"


#: seeds are stored as HDF5 attributes and in checkpoints: at most a 64-bit unsigned integer
MAX_SEED = 2**64 - 1


def seed(value, name="seed"):
    """A random seed: ``None`` (fresh entropy), an integer 0 ≤ seed ≤ :data:`MAX_SEED` (2⁶⁴ − 1,
    the largest a trajectory stores), or a ``numpy.random.SeedSequence`` / ``Generator``, as
    ``numpy.random.default_rng`` takes. Raises InputError."""
    if value is None or isinstance(value, (np.random.SeedSequence, np.random.Generator)):
        return value
    if isinstance(value, Integral) and not isinstance(value, (bool, np.bool_)) and 0 <= value <= MAX_SEED:
        return int(value)
    raise InputError(f"{name}: expected a non-negative integer up to 2**64 - 1 (or None), got {_got(value)}")


def path(value, name) -> str:
    """A file-system path (``str`` or ``os.PathLike``, not empty) as ``str``.
    (An integer is refused: ``open(5)`` would read file descriptor 5.) Raises InputError."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value:
        raise InputError(f"{name}: expected a file path (str or os.PathLike), got {_got(value)}")
    return value


def existing_file(value, name, what="file", inside=None) -> str:
    """A path (as :func:`path`) to an existing regular file, for readers: ``what`` names the kind
    of file in messages (``"EAM file"``, ``"LAMMPS dump"``). Raises InputError for a bad path or a
    directory (naming ``DIR/inside`` when a directory holds the file ``inside`` a program writes
    there, e.g. TB2J's ``TB2J_results/exchange.out``), :class:`~spinlat.errors.MissingFileError`
    (also a ``FileNotFoundError``) for a file that does not exist."""
    value = path(value, name)
    if not os.path.exists(value):
        raise MissingFileError(f"{what} {value} does not exist")
    if os.path.isdir(value):
        hint = ""
        if inside is not None and os.path.isfile(os.path.join(value, inside)):
            hint = f"; give the {what} in it, {os.path.join(value, inside)}"
        raise InputError(f"{name}: {value} is a directory, not a file{hint}")
    return value


def paths(value, name) -> list[str]:
    """One file path or a non-empty list/tuple of them (``str`` or ``os.PathLike``), as a list of
    ``str``. Raises InputError naming the item."""
    if isinstance(value, (list, tuple)):
        if not value:
            raise InputError(f"{name}: expected a file path or a list of them, got an empty list")
        return [path(v, f"{name}[{k}]") for k, v in enumerate(value)]
    return [path(value, name)]


def instance(value, name, types, what):
    """``value`` itself when it is an instance of ``types`` (a bool only where ``bool`` is named);
    ``what`` describes the expected value in the message. Raises InputError."""
    types = types if isinstance(types, tuple) else (types,)
    if not isinstance(value, types) or (isinstance(value, (bool, np.bool_)) and bool not in types):
        raise InputError(f"{name}: expected {what}, got {_got(value)}")
    return value


def real_array(value, name, shape=None, *, finite=True) -> np.ndarray:
    """A new float64 array of real numbers, of ``shape`` when given.

    Integer and float inputs are accepted; booleans, complex numbers, strings and other objects
    are refused (``np.array`` would coerce them silently). Raises InputError, ShapeError or
    NonFiniteError (naming the first bad index)."""
    try:
        raw = np.asarray(value)
    except (TypeError, ValueError) as exc:  # ragged nested sequences
        raise InputError(f"{name}: expected an array of real numbers, got {_got(value)} ({exc})") from None
    if raw.dtype.kind == "O":
        flat = raw.reshape(-1)
        bad = [k for k, x in enumerate(flat) if not is_real_number(x)]
        if bad:
            raise InputError(f"{name}: expected an array of real numbers, got {_got(flat[bad[0]])} at flat "
                             f"index {bad[0]}")
    elif raw.dtype.kind in "iuf" and isinstance(value, (list, tuple)):
        # NumPy turns [0.5, True] into [0.5, 1.0]: look for bools among the items
        flat = np.asarray(value, dtype=object).reshape(-1)
        bad = [k for k, x in enumerate(flat) if isinstance(x, (bool, np.bool_))]
        if bad:
            raise InputError(f"{name}: expected an array of real numbers, got {flat[bad[0]]!r} at flat index {bad[0]}")
    if raw.dtype.kind not in "iufO":
        kind = {"b": "booleans", "c": "complex numbers", "U": "strings", "S": "bytes"}.get(raw.dtype.kind,
                                                                                         f"dtype {raw.dtype}")
        raise InputError(f"{name}: expected an array of real numbers, got an array of {kind}")
    arr = np.array(raw, dtype=np.float64, copy=True)
    if shape is not None and arr.shape != tuple(shape):
        raise ShapeError(f"{name}: expected shape {tuple(shape)}, got {arr.shape}")
    if finite and not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise NonFiniteError(f"{name}: holds NaN or inf (first at index {tuple(int(b) for b in bad)})")
    return arr


def vector3(value, name) -> np.ndarray:
    """A finite real 3-vector as a float64 array (3,). Raises InputError, ShapeError,
    NonFiniteError."""
    return real_array(value, name, (3,))


def pbc(value, name="pbc") -> np.ndarray:
    """Periodic boundary conditions: one bool or three, as a bool array (3,). Raises InputError."""
    arr = np.asarray(value, dtype=object) if not isinstance(value, np.ndarray) else value
    if arr.ndim == 0 and isinstance(arr.item(), (bool, np.bool_)):
        return np.full(3, bool(arr.item()))
    if arr.shape == (3,) and all(isinstance(p, (bool, np.bool_)) for p in arr.tolist()):
        return np.array([bool(p) for p in arr.tolist()])
    raise InputError(f"{name}: expected True/False or three of them (one per cell vector), got {_got(value)}")


def atomic_number(value, name="element") -> int:
    """The atomic number (1-118) of a chemical symbol (``"Fe"``) or an integer Z. The dummy
    symbol ``"X"`` (Z = 0), bools and other objects are refused with UnknownElementError."""
    from ase.data import atomic_numbers

    if isinstance(value, str):
        z = atomic_numbers.get(value, 0)
        if z < 1:
            raise UnknownElementError(f"{name}: unknown element symbol {value!r}")
        return z
    if isinstance(value, Integral) and not isinstance(value, (bool, np.bool_)) and 1 <= value <= MAX_Z:
        return int(value)
    raise UnknownElementError(f"{name}: expected a chemical symbol or an atomic number 1-{MAX_Z}, got {_got(value)}")


def atomic_numbers(value, name="numbers") -> np.ndarray:
    """Atomic numbers (N,) int64 from a sequence of integers (or integral floats) or chemical
    symbols. Raises ShapeError (not one-dimensional) or UnknownElementError naming the index."""
    from ase.data import atomic_numbers as table

    arr = np.atleast_1d(np.asarray(value))
    if arr.ndim != 1:
        raise ShapeError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.dtype.kind in "USO":
        out = []
        for k, s in enumerate(arr):
            if isinstance(s, np.str_):
                s = str(s)
            if isinstance(s, str) and s in table and table[s] > 0:
                out.append(table[s])
            elif is_real_number(s) and arr.dtype.kind == "O":
                out.append(s)
            else:
                raise UnknownElementError(f"{name}: unknown element symbol {s!r} at index {k}")
        arr = np.array(out)
    if arr.size and arr.dtype.kind not in "iuf":
        raise UnknownElementError(f"{name}: expected atomic numbers or chemical symbols, got an array of "
                                  f"dtype {arr.dtype} ({arr[:3].tolist()}...)")
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            raise UnknownElementError(f"{name}: atomic numbers must be integers")
    arr = arr.astype(np.int64)
    bad = (arr < 1) | (arr > MAX_Z)
    if np.any(bad):
        raise UnknownElementError(f"{name}: unknown atomic number {int(arr[bad][0])} at index {int(np.argmax(bad))}")
    return arr


def integer_array(value, name, shape=None) -> np.ndarray:
    """A new int64 array of integral values (integral floats count), of ``shape`` when given.
    Raises InputError, ShapeError or NonFiniteError (see :func:`real_array`)."""
    arr = real_array(value, name, shape)
    if np.any(arr != np.round(arr)):
        raise InputError(f"{name}: expected integers, got {arr[arr != np.round(arr)][:3].tolist()}")
    return arr.astype(np.int64)


def atom_indices(value, name, n) -> np.ndarray:
    """Indices of atoms of a system of ``n`` atoms, as a flat int64 array, each in [0, n).
    Raises InputError."""
    a = integer_array(np.reshape(value, -1) if isinstance(value, np.ndarray) else value, name)
    a = a.reshape(-1)
    if a.size and (a.min() < 0 or a.max() >= n):
        raise InputError(f"{name}: atom indices must lie in [0, {n}), got range [{a.min()}, {a.max()}]")
    return a
