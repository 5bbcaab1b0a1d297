"""Structures of spin-dynamics codes' input files, for run configs and ``spinlat convert``.

:func:`read_code_structure` recognises a Spirit input file (:func:`spinlat.io.spirit.is_spirit_cfg`),
an UppASD ``inpsd.dat`` and a VAMPIRE unit-cell file (``.UCF``), or the ``format`` names "spirit",
"uppasd" and "vampire", and returns its State; ASE knows none of them (it takes a ``.cfg`` for
AtomEye's format). :func:`read_code` reads such an input once for a run config that takes both its
structure and its potential from it (a cache per input files and their modification times).
"""

from __future__ import annotations

import collections
import contextvars
import copy
import importlib
import threading
import warnings
from pathlib import Path

import numpy as np

from ..errors import FileFormatError, InputError, InteractionUnitError, SpinlatError, needs_option

#: kind → (module of spinlat.io, its reader, the reader's name in its drop errors)
_READERS = {"spirit": ("spirit", "read_spirit_cfg"), "uppasd": ("uppasd", "read_uppasd"),
            "vampire": ("vampire", "read_vampire")}
#: inputs read by :func:`read_code` (most recent last), each {key: (state, potential, refusals, warnings)}
_CACHE: collections.OrderedDict = collections.OrderedDict()
_CACHE_SIZE = 4
_CACHE_LOCK = threading.Lock()
#: while :func:`read_code` reads: the list :func:`refuse_unread` records its refusals in
_REFUSALS = contextvars.ContextVar("spinlat_io_codes_refusals", default=None)


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
    if kind is None:
        return None
    try:
        state, pot = read_code(kind, path, drop="all")
    except InteractionUnitError as exc:  # the structure does not depend on the interactions' unit
        if kind != "vampire" or exc.unit != "meV":
            raise
        state, pot = read_code(kind, path, drop="all", interaction_unit="meV")
    return state.repeat(pot.uppasd_ncell) if kind == "uppasd" else state


def read_code(kind, path, *, drop=(), **options):
    """``(state, potential)`` of the ``kind`` ("spirit", "uppasd", "vampire") input at ``path``: its
    reader's result (:func:`~spinlat.io.read_spirit_cfg`, :func:`~spinlat.io.read_uppasd`,
    :func:`~spinlat.io.read_vampire`, with ``drop`` and the reader's keyword ``options``), read once
    for a run config that takes its structure and its potential from one input. Kept per input
    files (:func:`code_input_files`, each with its modification time in ns, size and inode) and
    options, the 4 most recent held in memory; each call returns copies. A file changed since is
    read again (one rewritten to the same size within the file system's timestamp step, a few ms,
    is not seen). ``drop`` is applied to each call: the terms the read found that ``drop`` does not
    name are refused as the reader refuses them; the reader's warnings are given again (recorded
    with ``warnings.catch_warnings``, which is not thread-safe: read from one thread). Raises what
    the reader raises."""
    module, name = _READERS[kind]
    reader = getattr(importlib.import_module(f".{module}", __package__), name)
    try:
        key = _read_key(kind, path, options, reader)
    except (SpinlatError, OSError, TypeError, ValueError):  # the reader's word on it (a missing file, a bad option)
        return reader(path, drop=drop, **options)
    with _CACHE_LOCK:
        hit = _CACHE.get(key)
        if hit is not None:
            _CACHE.move_to_end(key)
    if hit is None:
        recorded = []
        token = _REFUSALS.set(recorded)
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")  # every warning of the read, to give again on each call
                result = reader(path, drop=drop, **options)
        except SpinlatError as exc:
            failed = exc
        else:
            failed = None
        finally:
            _REFUSALS.reset(token)
        if failed is not None:  # the reader would have stopped at the first refusal drop does not name
            if recorded:  # (recorded only once the reader had checked drop)
                _refuse_recorded(recorded, check_drop(kind, drop))
            raise failed
        hit = (result, recorded, [(w.message, w.category) for w in caught])
        with _CACHE_LOCK:
            _CACHE[key] = hit
            while len(_CACHE) > _CACHE_SIZE:
                _CACHE.popitem(last=False)
    result, refusals, caught = hit
    _refuse_recorded(refusals, check_drop(kind, drop))
    for message, category in caught:
        warnings.warn(message, category, stacklevel=2)
    return copy.deepcopy(result)


def check_drop(kind, drop) -> set:
    """The term names of the ``kind`` reader's ``drop`` option (:func:`dropped_terms` with the
    reader's ``DROPPABLE``); InputError naming the reader's option and the names it takes."""
    module, name = _READERS[kind]
    return dropped_terms(drop, importlib.import_module(f".{module}", __package__).DROPPABLE, f"{name} drop")


def _read_key(kind, path, options, reader):
    """The cache key of :func:`read_code`: kind, each input file's (path, mtime ns, size, inode),
    the options other than the reader's defaults (hashable; TypeError for options that are not)."""
    import inspect

    defaults = {k: p.default for k, p in inspect.signature(reader).parameters.items()}
    options = {k: v for k, v in options.items() if k not in defaults or v is not defaults[k] and v != defaults[k]}
    files = list(code_input_files(kind, path, options.get("mat"), tb2j=bool(options.get("tb2j", False))))
    frozen = []
    for k, v in sorted(options.items()):
        if isinstance(v, (list, tuple)):
            v = tuple(v)
        elif isinstance(v, (str, Path)) and Path(v).is_file():  # a file an option names (UppASD's exchange=,
            files.append(Path(v))  # posfile=, momfile=; VAMPIRE's mat=): stamped, and by its full path
            v = str(Path(v).resolve())
        elif isinstance(v, Path) or k == "mat":
            v = None if v is None else str(Path(v).resolve())
        hash(v)
        frozen.append((k, v))
    stamps = []
    for p in files:
        st = Path(p).stat()
        stamps.append((str(Path(p).resolve()), st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino))
    return kind, tuple(stamps), tuple(frozen)


def _refuse_recorded(refusals, dropped):
    """Raise :func:`refuse_unread`'s FileFormatError for the first of the recorded ``refusals``
    ([(found, path, code)]) with terms not in ``dropped``."""
    for found, path, code in refusals:
        _refuse(found, dropped, path, code)


def code_input_files(kind, path, mat=None, *, tb2j=False) -> list:
    """Every file the ``kind`` ("spirit", "uppasd", "vampire") input at ``path`` reads, the input
    first (Paths; ``mat``: VAMPIRE's material file when not the one beside the UCF; ``tb2j``:
    UppASD's input as TB2J writes it, its exchange file ``jASD1``), so that a change to any of
    them can be detected. Files that a reader's keyword arguments name instead are not listed."""
    if kind == "spirit":
        from .spirit import spirit_input_files

        return spirit_input_files(path)
    if kind == "uppasd":
        from .uppasd import uppasd_input_files

        return uppasd_input_files(path, tb2j=tb2j)
    if kind == "vampire":
        from .vampire import vampire_input_files

        return vampire_input_files(path, mat)
    raise InputError(f"code_input_files: kind must be spirit, uppasd or vampire, got {kind!r}")


def file_text(path) -> str:
    """The text of the input file ``path`` (undecodable bytes replaced); FileFormatError naming it
    when it cannot be read."""
    try:
        return Path(path).read_text(errors="replace")
    except OSError as exc:
        raise FileFormatError(f"{path}: cannot read ({exc.strerror or exc})") from None


def file_rows(path, comments=("#",)) -> list:
    """[(line number, words)] of the lines of the input file ``path`` (:func:`file_text`) that hold
    words, lines whose first word starts with one of ``comments`` left out."""
    out = []
    for ln, line in enumerate(file_text(path).splitlines(), 1):
        words = line.split()
        if words and not words[0].startswith(comments):
            out.append((ln, words))
    return out


def dropped_terms(drop, known, where):
    """The set of term names in ``drop`` (a reader's option: an iterable of names among
    ``known``, or "all"). Raises InputError for another value, naming ``where`` and the names."""
    if drop is None:
        return set()
    if isinstance(drop, str):
        if drop == "all":
            return set(known)
        drop = [drop]
    try:
        names = set(drop)
    except TypeError:
        raise InputError(f"{where}: expected term names among {sorted(known)} or 'all', got {drop!r}") from None
    bad = sorted(str(n) for n in names - set(known))
    if bad:
        raise InputError(f"{where}: unknown term(s) {bad}; the terms this reader can drop are {sorted(known)}")
    return names


def refuse_unread(found, dropped, path, code):
    """Raise FileFormatError for the terms of ``found`` (a list of (name, where in the file,
    description)) that spinlat cannot represent and that are not in ``dropped``: each named with
    its file and line and the ``drop`` option that leaves it out on purpose. While
    :func:`read_code` reads, ``found`` is recorded instead (the read goes on as if all were
    dropped) and refused there with each call's ``drop``."""
    recording = _REFUSALS.get()
    if recording is not None:
        recording.append((list(found), path, code))
        return
    _refuse(found, dropped, path, code)


def _refuse(found, dropped, path, code):
    left = [(n, w, d) for n, w, d in found if n not in dropped]
    if left:
        what = "; ".join(f"{w}: {d}" for _, w, d in left)
        names = sorted({n for n, _, _ in left})
        raise FileFormatError(f"{path}: {what}: spinlat has no such term, so its energies would differ from "
                              f"{code}'s; pass drop={names} (a run config's drop: {names}) to read the file "
                              "without them")


def element_numbers(elements, index, what, exact=None):
    """Atomic numbers (len(index),) of a reader's ``elements`` option (a symbol for all atoms, or a
    list with one entry per site, type or material of the code's file), taken at ``index`` (each
    atom's 0-based site / type / material). The list must have ``exact`` entries when given,
    else more than ``index.max()``; InputError naming ``elements: one per {what}`` otherwise, and
    for an unknown symbol, marked as fixed by the ``elements`` option (:func:`~spinlat.errors.needs_option`)."""
    from .. import validation

    index = np.asarray(index)
    try:
        z = validation.atomic_numbers([elements] if isinstance(elements, str) else list(elements))
    except InputError as exc:
        raise needs_option("elements", exc) from None
    if isinstance(elements, str):
        return np.full(len(index), z[0])
    if (len(z) != exact) if exact is not None else (len(index) and len(z) <= index.max()):
        raise needs_option("elements", InputError(f"elements: one per {what} or one for all, got {len(z)}"))
    return z[index]


def add_pair(pairs, i, j, R, value, reverse=None):
    """Add ``value`` to the coupling of atoms ``i`` → ``j`` in cell ``R`` (a tuple of 3 ints) in
    ``pairs`` {(i, j, R): value}, each pair once: to its reverse (j, i, −R), as that pair reads it,
    when only that is there (a bond listed from both ends sums into one pair), else to (i, j, R).
    ``reverse``: the value as the reversed pair reads it; default the transpose of a (3, 3)
    tensor of E = −s_iᵀ T s_j, a scalar itself (``np.negative`` for a DM vector, D_ji = −D_ij)."""
    key, rev = (i, j, R), (j, i, tuple(-x for x in R))
    if rev in pairs and key not in pairs:
        if reverse is None:
            reverse = np.transpose if np.ndim(value) == 2 else (lambda v: v)
        pairs[rev] = pairs[rev] + reverse(value)
    else:
        pairs[key] = pairs.get(key, 0.0) + value


def quartic_cubic(numbers, k, where):
    """A spin code's cubic anisotropy E = −(K/2) Σ_i (s_x⁴ + s_y⁴ + s_z⁴) (Spirit's K4, VAMPIRE's
    kc; K per atom, eV, (N,)) as spinlat's terms: for a unit spin Σ_a s_a⁴ = 1 − 2 (sx²sy² + sy²sz²
    + sz²sx²), so E = K (sx²sy² + sy²sz² + sz²sx²) − K/2. Returns (a
    :class:`~spinlat.potentials.CubicAnisotropy` with K1 = K, one per species (see
    :func:`cubic_by_species`, which names ``where`` in its error), or None when every K is 0; the
    atoms (M,) with K ≠ 0; their on-site tensors (M, 3, 3) (K/2) 1, whose −sᵀ(K/2)1 s = −K/2 is the
    constant)."""
    from ..potentials import CubicAnisotropy

    k = np.asarray(k, dtype=float)
    on = np.flatnonzero(k)
    cubic = CubicAnisotropy(cubic_by_species(np.asarray(numbers)[on], k[on], where)) if len(on) else None
    return cubic, on, 0.5 * k[on][:, None, None] * np.eye(3)


def cubic_by_species(numbers, k1, where):
    """{atomic number: K1} of per-atom cubic constants ``k1`` (eV, (N,)) for
    :class:`~spinlat.potentials.CubicAnisotropy`, which takes one K1 per species; atoms of one
    species must share it (FileFormatError naming ``where`` otherwise)."""
    out = {}
    for z, k in zip(np.asarray(numbers).tolist(), np.asarray(k1, dtype=float).tolist()):
        if out.setdefault(int(z), k) != k:
            raise FileFormatError(f"{where}: atoms of one element (Z={z}) have different cubic anisotropy "
                                  f"constants ({out[int(z)]:.6g} and {k:.6g} eV): spinlat's CubicAnisotropy takes "
                                  "one per element; give those atoms different elements (elements=)")
    return out


__all__ = ["code_format", "read_code_structure", "code_input_files", "dropped_terms", "refuse_unread", "cubic_by_species",
           "add_pair", "quartic_cubic", "read_code",
           "check_drop", "file_text", "file_rows"]
