"""Extended XYZ for magnetic data sets, lossless in float64.

A configuration is an ``ase.Atoms`` with

- ``atoms.arrays["magmoms"]``: magnetic moments, (N, 3) μB (non-collinear) or (N,) (collinear);
- ``atoms.arrays["forces"]``: (N, 3) eV/Å;
- ``atoms.arrays["magnetic_forces"]``: (N, 3) eV/μB, h = −∂E/∂m;
- ``atoms.info["energy"]``: eV; optional ``atoms.info["stress"]`` (Voigt 6 or symmetric 3×3,
  eV/Å³; written as a 3×3 matrix as ASE expects, read back in Voigt order xx yy zz yz xz xy),
  ``atoms.info["weight"]`` and any other scalar, string or small-array info.

:func:`write_extxyz` writes every number with Python's shortest round-trip representation, so
``read_extxyz(write_extxyz(...))`` gives back the same float64 values. Results held by an attached
calculator (e.g. a SinglePointCalculator) are written too, under the names above, unless
``info``/``arrays`` already hold that name (those win). Initial magnetic moments (e.g. of a
State) are written both as ``magmoms`` and as ``initial_magmoms``, so that a plain
``ase.io.read`` gives atoms that keep them (ASE turns a ``magmoms`` column into a calculator
result, which is lost when another calculator is attached). :func:`read_extxyz` reads any extxyz
file ASE reads and moves calculator results back into ``info``/``arrays``; it also sets the
initial magnetic moments from ``magmoms`` so that :meth:`spinlat.State.from_ase` sees them.
An ``info`` value that is an empty (or blank) string or None is not written: the extxyz header
cannot hold one (ASE would read ``key=`` as taking the next key as its value, and writes None as
a bare ``key``, which reads back as True), so it reads back absent. An info key or array name
that the header would split or rename (blanks, ``=``, quotes, brackets, braces, commas; colons
in array names) raises InputError naming it.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

import numpy as np

from .. import validation
from ..errors import FileFormatError, InputError
from ..files import atomic_path

_PER_CONFIG = ("energy", "free_energy", "stress", "magmom", "dipole")
_SKIP_ARRAYS = {"numbers", "positions"}


def _fmt(x) -> str:
    """Shortest string that reads back as the same float64."""
    return repr(float(x))


def _bool(x) -> str:
    return "T" if x else "F"


def _atoms_of(item):
    from ase import Atoms

    from ..state import State

    if isinstance(item, State):
        return item.to_ase()
    if isinstance(item, Atoms):
        return item
    raise InputError(f"write_extxyz takes ase.Atoms or spinlat.State objects, got {type(item).__name__}")


def _collect(atoms):
    """(info, arrays) to write: the atoms' own data plus calculator results not already present."""
    info = dict(atoms.info)
    arrays = {k: np.asarray(v) for k, v in atoms.arrays.items() if k not in _SKIP_ARRAYS}
    calc = getattr(atoms, "calc", None)
    results = dict(getattr(calc, "results", {}) or {}) if calc is not None else {}
    n = len(atoms)
    for key, val in results.items():
        if val is None:
            continue
        arr = np.asarray(val)
        if key in ("forces", "magmoms", "energies", "charges", "magnetic_forces") or (
                arr.ndim >= 1 and arr.shape[0] == n and key not in _PER_CONFIG):
            arrays.setdefault(key, arr)
        else:
            info.setdefault(key, val)
    # the moments go to "magmoms" (the data-set convention; ase.io.read makes it a calculator
    # result) and, when the atoms have initial moments, also to "initial_magmoms", which
    # ase.io.read keeps on the atoms: they survive attaching another calculator
    init = arrays.get("initial_magmoms")
    if init is not None and "magmoms" not in arrays:
        arrays["magmoms"] = init
    return info, arrays


def _info_value(key, val) -> str | None:
    """Full-precision text of an info value, or None to let ASE format it."""
    if isinstance(val, (bool, np.bool_)):
        return _bool(val)
    if isinstance(val, (int, np.integer)):
        return str(int(val))
    if isinstance(val, (float, np.floating)):
        return _fmt(val)
    if isinstance(val, str):
        return None  # let ASE quote it
    arr = np.asarray(val)
    if key in ("stress", "virial") and arr.shape == (6,):
        # ASE reads these keys only as 3x3 matrices: write the symmetric matrix of the Voigt vector
        xx, yy, zz, yz, xz, xy = (float(v) for v in arr)
        arr = np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])
    if key in ("stress", "virial") and arr.shape != (3, 3):
        raise InputError(f"info[{key!r}] must be a Voigt 6-vector or a 3x3 matrix, got shape {arr.shape}")
    if arr.dtype.kind in "fiu" and arr.ndim in (1, 2) and key in ("stress", "virial"):
        arr = arr.astype(np.float64)
    if arr.dtype.kind == "f" and arr.ndim in (1, 2):
        if arr.ndim == 2:
            if key not in ("stress", "virial") or arr.shape != (3, 3):
                return None
            arr = arr.reshape(9, order="F")
        return '"' + " ".join(_fmt(x) for x in arr) + '"'
    if arr.dtype.kind in "iu" and arr.ndim == 1:
        return '"' + " ".join(str(int(x)) for x in arr) + '"'
    return None


#: characters an extxyz header cannot hold in a key (they split or quote it: ASE reads an info key
#: ``"a b"`` as two keys, ``x[1]`` as ``x1``, ``k=v`` as ``k``), and in a per-atom array name also ``:``
_BAD_KEY = re.compile(r"[\s=\"'\[\]{},]")


def _check_key(key, what, extra=""):
    """InputError unless ``key`` (an info key or array name) reads back as itself."""
    if not isinstance(key, str) or not key or _BAD_KEY.search(key) or any(c in key for c in extra):
        fixed = re.sub(r"[^A-Za-z0-9_.+-]", "_", str(key)) or "_"
        raise InputError(f"write_extxyz: {what} {key!r} cannot be written to extxyz: the header would split or rename "
                         f"it (blanks, '=', quotes, brackets, braces, commas{', colons' if extra else ''}); rename it, "
                         f"e.g. to {fixed!r}")


def _header(atoms, info, columns) -> str:
    from ase.io.extxyz import key_val_dict_to_str

    parts = []
    cell = np.asarray(atoms.cell, dtype=np.float64)
    if np.any(cell != 0):
        parts.append('Lattice="' + " ".join(_fmt(x) for x in cell.reshape(-1)) + '"')
    props = ":".join(f"{name}:{kind}:{width}" for name, kind, width, _ in columns)
    parts.append(f"Properties={props}")
    rest = {}
    for key, val in info.items():
        if key in ("Lattice", "Properties", "pbc"):
            continue
        _check_key(key, "info key")
        if isinstance(val, str) and not val.strip():
            continue  # ASE's extxyz cannot hold an empty string: `key=` would swallow the next key
        if val is None:
            continue  # a bare `key` (what ASE writes for None) reads back as True
        s = _info_value(key, val)
        if s is None:
            rest[key] = val
        else:
            parts.append(f"{key}={s}")
    if rest:
        parts.append(key_val_dict_to_str(rest))
    parts.append('pbc="' + " ".join(_bool(p) for p in atoms.pbc) + '"')
    return " ".join(p for p in parts if p)


def _columns(atoms, arrays):
    n = len(atoms)
    cols = [("species", "S", 1, np.array(atoms.get_chemical_symbols(), dtype=object)[:, None]),
            ("pos", "R", 3, np.asarray(atoms.positions, dtype=np.float64))]
    for name, arr in arrays.items():
        _check_key(name, "per-atom array", extra=":")
        arr = np.asarray(arr)
        if arr.shape[:1] != (n,):
            raise InputError(f"per-atom array {name!r} has shape {arr.shape}; expected {n} rows")
        if arr.ndim > 2:
            raise InputError(f"per-atom array {name!r} has shape {arr.shape}: extxyz stores at most (N, k)")
        a2 = arr.reshape(n, -1)
        kind = {"f": "R", "i": "I", "u": "I", "b": "L", "U": "S", "S": "S", "O": "S"}.get(arr.dtype.kind)
        if kind is None:
            raise InputError(f"per-atom array {name!r} of dtype {arr.dtype} cannot be written to extxyz")
        cols.append((name, kind, a2.shape[1], a2))
    return cols


def _cell_text(kind, x) -> str:
    if kind == "R":
        return _fmt(x)
    if kind == "I":
        return str(int(x))
    if kind == "L":
        return _bool(x)
    return str(x)


#: compressed-file suffixes → the module that writes them (the ones ``ase.io.read`` decompresses)
_COMPRESSED = {".gz": "gzip", ".bz2": "bz2", ".xz": "lzma"}


def compression_of(path):
    """The compression module name (``"gzip"``, ``"bz2"``, ``"lzma"``) that the suffix of ``path``
    names, else None."""
    return _COMPRESSED.get(Path(path).suffix.lower())


@contextlib.contextmanager
def _open_text(path, mode, compression, name=None):
    """``path`` opened for UTF-8 text writing (``mode`` "w" or "a"), through ``compression``; a
    gzip stream records ``name`` (the final file's name without .gz, not the temporary one)."""
    if compression is None:
        with open(path, mode, encoding="utf-8") as fh:
            yield fh
    elif compression == "gzip":
        import gzip
        import io

        with open(path, mode + "b") as raw, gzip.GzipFile(filename=name or "", mode=mode + "b", fileobj=raw) as gz, \
                io.TextIOWrapper(gz, encoding="utf-8") as fh:
            yield fh
    else:
        import importlib

        with importlib.import_module(compression).open(path, mode + "t", encoding="utf-8") as fh:
            yield fh


def write_extxyz(path, atoms_list, append=False) -> None:
    """Write configurations (``ase.Atoms`` or :class:`~spinlat.State`) to an extxyz file.

    Units as stored: positions Å, ``magmoms`` μB, ``forces`` eV/Å, ``magnetic_forces`` eV/μB,
    ``energy`` eV, ``stress`` eV/Å³. Floats are written at full (round-trip) precision. A
    ``path`` ending ``.gz``, ``.bz2`` or ``.xz`` is written compressed (``ase.io.read`` and
    :func:`read_extxyz` read it back)."""
    from ase import Atoms

    from ..state import State

    path = Path(validation.path(path, "write_extxyz path"))
    append = validation.boolean(append, "write_extxyz append")
    if isinstance(atoms_list, (Atoms, State)):
        atoms_list = [atoms_list]
    # frames are streamed (``atoms_list`` may be a generator) into a temporary file (a copy of the
    # old one when appending) that replaces ``path`` only when complete (spinlat.files); a name
    # ending .gz, .bz2 or .xz is written compressed (appending adds a stream, which readers join)
    with atomic_path(path, copy=append, name="write_extxyz path") as tmp, \
            _open_text(tmp, "a" if append else "w", compression_of(path), path.stem) as fh:
        for item in atoms_list:
            atoms = _atoms_of(item)
            info, arrays = _collect(atoms)
            cols = _columns(atoms, arrays)
            lines = [str(len(atoms)), _header(atoms, info, cols)]
            for a in range(len(atoms)):
                row = []
                for _, kind, _, data in cols:
                    row.extend(_cell_text(kind, x) for x in np.ravel(data[a]))
                lines.append(" ".join(row))
            fh.write("\n".join(lines) + "\n")


def _restore(atoms):
    """Move calculator results into info/arrays and set initial magmoms from ``magmoms``."""
    calc = atoms.calc
    if calc is not None:
        n = len(atoms)
        for key, val in dict(calc.results).items():
            arr = np.asarray(val)
            # a per-atom 'magmom' column (ASE makes it a result named like the total moment) stays per atom
            per_atom_moments = key == "magmom" and (arr.shape == (n, 3) or arr.shape == (n,) and n not in (1, 3))
            if (key in _PER_CONFIG and not per_atom_moments) or arr.ndim == 0 or arr.shape[0] != n:
                atoms.info[key] = val.item() if isinstance(val, np.ndarray) and val.ndim == 0 else val
            else:
                atoms.arrays[key] = np.array(arr)
        atoms.calc = None
    if "magmoms" in atoms.arrays and "initial_magmoms" not in atoms.arrays:
        atoms.set_initial_magnetic_moments(np.array(atoms.arrays["magmoms"], dtype=np.float64))
    return atoms


def read_extxyz(path, index=":"):
    """Read configurations from an extxyz file as a list of ``ase.Atoms`` (one Atoms when
    ``index`` is an int). Calculator results are returned in ``info`` (energy eV, stress eV/Å³
    in Voigt order) and ``arrays`` (forces eV/Å, magmoms μB, magnetic_forces eV/μB)."""
    import ase.io

    path = Path(validation.existing_file(path, "read_extxyz path", "extxyz file"))
    try:
        out = ase.io.read(path, index=index, format="extxyz")
    except (ValueError, IndexError, KeyError, OSError) as exc:
        raise FileFormatError(f"{path} is not a readable extxyz file: {exc}") from None
    if isinstance(out, list):
        return [_restore(a) for a in out]
    return _restore(out)


def iread_extxyz(path):
    """The configurations of an extxyz file one at a time (a generator of ``ase.Atoms``, as
    :func:`read_extxyz` gives them): a file larger than memory is read frame by frame.
    FileFormatError naming the file for one that is not extxyz."""
    import ase.io

    path = Path(validation.existing_file(path, "read_extxyz path", "extxyz file"))
    frames = ase.io.iread(path, index=":", format="extxyz")
    while True:
        try:
            atoms = next(frames)
        except StopIteration:
            return
        except (ValueError, IndexError, KeyError, OSError) as exc:
            raise FileFormatError(f"{path} is not a readable extxyz file: {exc}") from None
        yield _restore(atoms)
