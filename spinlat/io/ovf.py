"""OVF 2.0 spin configurations (OOMMF vector-field files), as Spirit reads and writes them.

An OVF file holds one or more *segments*, each a header (title, description, mesh) and N rows of
``valuedim`` numbers, stored as text, CSV, or binary in 4 or 8 bytes per number. For atomistic
codes such as Spirit each row is the unit spin vector of one site. The files are read and written
with the ``ovf`` package (the OVF library of the Spirit project, ``pip install ovf``; spinlat extra
``interop``). Binary 8 is lossless; text keeps 12 significant digits; binary 4 is float32.

Site order. The rows follow the file's site order. Spirit orders the sites of a lattice with
``n_cells = (n1, n2, n3)`` unit cells of ``nb`` basis atoms as

    row = ib + nb·(i + n1·(j + n2·k))        (basis atom fastest, then the cell indices i, j, k),

and writes ``xnodes = nb·n1, ynodes = n2, znodes = n3``. A spinlat state built as
``unit.repeat((n1, n2, n3))`` is ordered ``((i·n2 + j)·n3 + k)·nb + ib`` instead; pass
``repeat=(n1, n2, n3)`` to :func:`read_ovf` / :func:`write_ovf` to convert between the two
(:func:`spirit_order`). A state built from Spirit's own positions (``spirit.geometry.
get_positions``) is already in the file's order (``repeat=None``). OVF stores no atoms: the
geometry (positions, species, moments) comes from the state you give.

Spins: rows are normalised to unit length when they become a State's spins (Spirit writes unit
vectors); a zero row is allowed only on a non-magnetic atom (moment 0). :func:`write_ovf` writes
each atom's unit spin (non-magnetic atoms included, as their stored direction).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import validation
from ..errors import FileFormatError, InputError, ShapeError
from ..files import atomic_path
from ..keywords import refuse_other_names

_FORMATS = {"text": "FILEFORMAT_TEXT", "csv": "FILEFORMAT_CSV", "binary4": "FILEFORMAT_BIN4",
            "binary8": "FILEFORMAT_BIN8"}


def _lib():
    try:
        from ovf import ovf
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("OVF files need the 'ovf' package: pip install ovf (or spinlat[interop])") from None
    return ovf


@dataclass
class OVFSegment:
    """One OVF segment: ``vectors`` (N, valuedim) float64 in file order, and its header."""

    vectors: np.ndarray
    title: str = ""
    comment: str = ""
    n_cells: tuple = (0, 0, 0)
    valuedim: int = 3
    valuelabels: str = ""
    valueunits: str = ""
    meshunit: str = ""
    meshtype: str = ""


def spirit_order(repeat, n_basis) -> np.ndarray:
    """Permutation ``p`` with ``spirit_rows = state_rows[p]`` for a state made by
    ``unit.repeat(repeat)`` from a unit cell of ``n_basis`` atoms (Spirit: basis atom fastest,
    then cells along a, b, c; State.repeat: cells along c fastest, atoms of one cell together).
    Its inverse ``np.argsort(p)`` maps Spirit's rows back to the state's order."""
    n1, n2, n3 = (int(r) for r in np.broadcast_to(np.asarray(repeat), (3,)))
    nb = int(n_basis)
    if min(n1, n2, n3, nb) < 1:
        raise InputError(f"repeat and n_basis must be positive, got {repeat}, {n_basis}")
    ib, i, j, k = np.meshgrid(np.arange(nb), np.arange(n1), np.arange(n2), np.arange(n3), indexing="ij")
    spirit_row = ib + nb * (i + n1 * (j + n2 * k))
    state_row = ((i * n2 + j) * n3 + k) * nb + ib
    p = np.empty(nb * n1 * n2 * n3, dtype=np.int64)
    p[spirit_row.ravel()] = state_row.ravel()
    return p


def _perm(repeat, n):
    if repeat is None:
        return None
    cells = int(np.prod(np.broadcast_to(np.asarray(repeat), (3,))))
    if cells < 1 or n % cells:
        raise InputError(f"repeat={tuple(np.broadcast_to(np.asarray(repeat), (3,)).tolist())}: {n} atoms are not a "
                         "whole number of unit cells")
    return spirit_order(repeat, n // cells)


def read_ovf_segments(path) -> list[OVFSegment]:
    """Every segment of an OVF 2.0 file (text, CSV, binary 4 or 8), as :class:`OVFSegment`.

    Raises :class:`~spinlat.errors.MissingFileError` (a ``FileNotFoundError``), or
    :class:`~spinlat.errors.FileFormatError` naming the file and the OVF library's message for
    malformed files."""
    path = Path(validation.existing_file(path, "OVF path", "OVF file"))
    ovf = _lib()
    out = []
    with ovf.ovf_file(str(path)) as f:
        if not f.is_ovf:
            with open(path, "rb") as fh:
                first = fh.readline(200).decode(errors="replace").strip()
            if re.match(r"#\s*OOMMF\s*:?\s*(rectangular|irregular) mesh v1|#\s*OOMMF OVF 1", first, re.I):
                raise FileFormatError(f"{path}: an OVF 1.0 file ({first!r}); spinlat reads OVF 2.0 (as Spirit and "
                                      "mumax3 write it): save it again as OVF 2.0, e.g. with OOMMF's avf2ovf")
            raise FileFormatError(f"{path}: not an OVF file ({f.get_latest_message() or 'no OVF header'})")
        for k in range(f.n_segments):
            seg = ovf.ovf_segment()
            if f.read_segment_header(k, seg) != ovf.OK:
                raise FileFormatError(f"{path}: segment {k}: {f.get_latest_message()}")
            if seg.N <= 0 or seg.valuedim <= 0:
                raise FileFormatError(f"{path}: segment {k}: {seg.N} nodes of dimension {seg.valuedim}")
            data = np.zeros((seg.N, seg.valuedim), dtype=np.float64)
            if f.read_segment_data(k, seg, data) != ovf.OK:
                raise FileFormatError(f"{path}: segment {k}: {f.get_latest_message()}")
            if not np.all(np.isfinite(data)):
                raise FileFormatError(f"{path}: segment {k} holds NaN or inf")
            text = (lambda b: (b or b"").decode(errors="replace").strip())
            out.append(OVFSegment(data, text(seg.title), text(seg.comment), tuple(int(x) for x in seg.n_cells),
                                  int(seg.valuedim), text(seg.valuelabels), text(seg.valueunits),
                                  text(seg.meshunits), text(seg.meshtype)))
    if not out:
        raise FileFormatError(f"{path}: no segment (empty or truncated OVF file)")
    return out


@refuse_other_names()
def read_ovf(path, state=None, *, segment=0, repeat=None):
    """Read one segment of an OVF file; with ``state``, return the state with those spins.

    Parameters
    ----------
    path : OVF 2.0 file (Spirit's ``io.image_write``/``chain_write``, OOMMF, mumax).
    state : a :class:`~spinlat.State` giving the geometry (its atom count must equal the number
        of rows). Without it the :class:`OVFSegment` is returned.
    segment : index of the segment (negative counts from the end; Spirit chains hold one per image).
    repeat : ``(n1, n2, n3)`` when ``state`` is ``unit.repeat(repeat)``: rows in Spirit's order
        are put into the state's order (module docstring); ``None``: rows are in the state's order.
        The file's mesh must then be Spirit's for that supercell, ``(nb·n1, n2, n3)`` nodes
        (ShapeError otherwise: a file of another supercell of the same size, e.g. 4×2×1 read as
        2×2×2, or one in plain row order, nodes (N, 1, 1), would be reordered wrongly). With
        ``repeat=None``, a file on Spirit's mesh read into a state whose positions are in
        ``unit.repeat`` order (and not in the file's) raises ShapeError naming the ``repeat`` to pass.

    Returns a new State (``state.copy(spins=...)``; moments, positions unchanged) or an OVFSegment.
    Raises :class:`~spinlat.errors.ShapeError` when the counts differ or the segment is not 3D
    vectors, :class:`~spinlat.errors.ZeroSpinError` for a zero row on a magnetic atom.
    """
    segs = read_ovf_segments(path)
    try:
        seg = segs[segment]
    except IndexError:
        raise InputError(f"{path}: segment {segment} requested but the file holds {len(segs)}") from None
    if state is None:
        return seg
    if seg.valuedim != 3:
        raise ShapeError(f"{path}: segment {segment} holds {seg.valuedim}-dimensional values, spins need 3")
    n = len(state)
    if len(seg.vectors) != n:
        raise ShapeError(f"{path}: segment {segment} holds {len(seg.vectors)} spins but the state has {n} atoms")
    v = seg.vectors
    p = _perm(repeat, n)
    if p is None:
        reps = _repeat_order_of(state, seg.n_cells)
        if reps is not None:
            raise ShapeError(f"{path}: segment {segment} holds its {n} spins in Spirit's site order (mesh "
                             f"{tuple(seg.n_cells)}: basis atoms, then cells along a, b, c), but the state's atoms "
                             f"are in the order of unit.repeat({reps}) (cells along c fastest): pass repeat={reps} "
                             "to put the rows in the state's order")
    if p is not None:
        want = _spirit_nodes(repeat, n)
        if tuple(seg.n_cells) != tuple(want):
            raise ShapeError(f"{path}: segment {segment} has a mesh of {tuple(seg.n_cells)} nodes, but repeat="
                             f"{_reps(repeat)} puts the {n} atoms on Spirit's mesh {tuple(want)} (basis atoms × n1, "
                             "n2, n3): the file holds another supercell or another site order (repeat=None reads "
                             "the rows as they are)")
        v = v[np.argsort(p)]
    return state.copy(spins=v)


#: how far (Å) an atom's offset from its basis atom may differ from the lattice vector between
#: their cells and still count as that lattice site: thermal displacements after spin-lattice
#: dynamics (two atoms, ~0.1-0.2 Å each) pass, a neighbouring site (≥ 2 Å away in metals) does not
_SITE_TOLERANCE = 0.6


def _in_lattice_order(positions, cell, reps, nb, perm=None) -> bool:
    """Whether ``positions`` (rows permuted by ``perm`` into Spirit's order) are a lattice of
    ``reps`` cells of ``nb`` basis atoms in Spirit's order: row ib + nb(i + n1(j + n2 k)) at
    row ib + i a + j b + k c (a, b, c the cell vectors over reps; modulo the cell), each within
    :data:`_SITE_TOLERANCE` Å and a quarter of the shortest of a, b, c (atoms displaced by
    dynamics still sit on their sites)."""
    n1, n2, n3 = reps
    rows = positions if perm is None else positions[perm]
    ib, i, j, k = np.meshgrid(np.arange(nb), np.arange(n1), np.arange(n2), np.arange(n3), indexing="ij")
    spirit_row = (ib + nb * (i + n1 * (j + n2 * k))).ravel()
    shift = np.stack([i.ravel(), j.ravel(), k.ravel()], axis=1) / np.array(reps, dtype=float)
    d = (rows[spirit_row] - rows[ib.ravel()]) @ np.linalg.inv(cell) - shift
    tol = min(_SITE_TOLERANCE, 0.25 * float(np.min(np.linalg.norm(cell / np.array(reps)[:, None], axis=1))))
    return bool(np.all(np.linalg.norm((d - np.round(d)) @ cell, axis=1) < tol))


def _repeat_order_of(state, nodes):
    """``(n1, n2, n3)`` when ``state`` (with a full cell) is in ``unit.repeat`` order and not in the
    Spirit order of a file with mesh ``nodes`` (nb·n1, n2, n3), else None (also when both fit)."""
    x, n2, n3 = (int(t) for t in nodes)
    n = len(state)
    if n2 * n3 <= 1 or x * n2 * n3 != n or abs(np.linalg.det(state.cell)) < 1e-12:
        return None
    for nb in (d for d in range(1, x + 1) if x % d == 0):
        reps = (x // nb, n2, n3)
        if (_in_lattice_order(state.positions, state.cell, reps, nb, spirit_order(reps, nb))
                and not _in_lattice_order(state.positions, state.cell, reps, nb)):
            return reps
    return None


def _inferred_repeat(state):
    """``(n1, n2, n3)`` with n2·n3 > 1 when ``state`` (with a full cell) is ``unit.repeat((n1, n2,
    n3))`` of some unit cell, in that order and not in Spirit's (for n2 = n3 = 1 the two orders
    are the same), else None. The counts are read off the positions: the first atom of the
    second cell along c (row nb) sits c/n3 from atom 0, the first of the second cell along b
    (row nb·n3) b/n2 from it; each candidate is then checked on every atom."""
    n = len(state)
    if n < 4 or abs(np.linalg.det(state.cell)) < 1e-12:
        return None
    frac = state.positions @ np.linalg.inv(state.cell)
    for nb in (d for d in range(1, n // 4 + 1) if n % d == 0):
        counts = [1, 1, 1]
        row = nb
        for axis in (2, 1):
            if row >= n:
                break
            d = frac[row] - frac[0]
            d -= np.round(d)
            if abs(d[axis]) < 1e-3 or (d[axis] < 0 and abs(d[axis]) < 0.45):  # no step forward along axis
                continue
            m = int(round(1.0 / abs(d[axis])))
            step = np.zeros(3)
            step[axis] = 1.0 / m
            off = d - step
            off -= np.round(off)
            if (m >= 2 and np.linalg.norm(off @ state.cell) < _SITE_TOLERANCE * 2
                    and (n // nb) % (counts[1] * counts[2] * m) == 0):
                counts[axis] = m
                row *= m
        counts[0] = n // (nb * counts[1] * counts[2])
        reps = tuple(counts)
        if (reps[1] * reps[2] > 1 and _in_lattice_order(state.positions, state.cell, reps, nb, spirit_order(reps, nb))
                and not _in_lattice_order(state.positions, state.cell, reps, nb)):
            return reps
    return None


def repeat_of(state):
    """``(n1, n2, n3)`` when the atoms of ``state`` are in the order of ``unit.repeat((n1, n2,
    n3))`` (n2·n3 > 1; read off the positions, atoms displaced by dynamics included), the
    ``repeat`` that :func:`write_ovf` needs to write Spirit's site order; None otherwise (then
    the state's order is Spirit's, or no lattice order is found)."""
    return _inferred_repeat(state)


def _reps(repeat) -> tuple:
    return tuple(int(r) for r in np.broadcast_to(np.asarray(repeat), (3,)))


def _spirit_nodes(repeat, n) -> list:
    """Spirit's node counts (nb·n1, n2, n3) for ``n`` atoms in a ``repeat`` supercell."""
    reps = _reps(repeat)
    return [n // int(np.prod(reps)) * reps[0], reps[1], reps[2]]


@refuse_other_names()
def write_ovf(path, state, *, format="binary8", comment="", title="spinlat", repeat=None, append=False):
    """Write spins as an OVF 2.0 file (one segment per state) that Spirit and OOMMF tools read.

    Parameters
    ----------
    path : the file (replaced, unless ``append``).
    state : a :class:`~spinlat.State`, an (N, 3) array of vectors, or a list of them (one segment
        each, e.g. the images of a GNEB path).
    format : ``"binary8"`` (lossless, default), ``"binary4"`` (float32), ``"text"`` (12 digits),
        ``"csv"``.
    comment : the segment's description (one line; line breaks become "; ").
    title : the segment title (one line; line breaks become "; ").
    repeat : ``(n1, n2, n3)`` when the state is ``unit.repeat(repeat)``: rows are written in
        Spirit's order with Spirit's node counts (nb·n1, n2, n3) (module docstring); ``None``: the
        state's order, nodes (N, 1, 1). Spirit reads rows in its own order whatever the mesh,
        so a State whose atoms are in ``unit.repeat((n1, n2, n3))`` order (n2·n3 > 1, found from
        its positions) written with ``repeat=None`` raises ShapeError naming the ``repeat`` to
        pass (as :func:`read_ovf` refuses such a file); to write its rows as they are, pass the
        array ``state.spins``.
    append : add the segments to an existing OVF file.

    Returns the path. Raises ShapeError (above; vectors not (N, 3)), InputError (bad format,
    NaN, an empty list), MissingFileError (``append`` to a missing file), ShapeError for segments
    with different numbers of spins (in one call, or against the file appended to).
    """
    from ..state import State

    path = validation.path(path, "write_ovf path")
    format = validation.choice(format, "write_ovf format", sorted(_FORMATS))
    comment = validation.instance(comment, "write_ovf comment", str, "a string")
    title = validation.instance(title, "write_ovf title", str, "a string")
    append = validation.boolean(append, "write_ovf append")
    ovf = _lib()
    items = list(state) if isinstance(state, (list, tuple)) else [state]
    if not items:
        raise InputError("write_ovf: nothing to write (empty list)")
    path = Path(validation.path(path, "write_ovf path"))
    if append:
        validation.existing_file(path, "write_ovf path", "write_ovf(append=True): file")
    vectors = []
    for item in items:
        if isinstance(item, State):
            v = item.spins
            reps = _inferred_repeat(item) if repeat is None else None
            if reps is not None:
                raise ShapeError(f"write_ovf: the state's {len(item)} atoms are in the order of unit.repeat({reps}) "
                                 "(cells along c fastest), but Spirit reads an OVF file's rows in its own site order "
                                 "(basis atoms, then cells along a, b, c) and would put these spins on the wrong "
                                 f"sites: pass repeat={reps} to write Spirit's order (read_ovf(..., repeat={reps}) "
                                 "reads it back), or the array state.spins to write the rows as they are")
        else:
            v = np.asarray(item, dtype=np.float64)
            if v.ndim != 2 or v.shape[1] != 3:
                raise ShapeError(f"write_ovf: vectors must have shape (N, 3), got {v.shape}")
            if not np.all(np.isfinite(v)):
                raise InputError("write_ovf: vectors hold NaN or inf")
        vectors.append(v)
    # the segments of a file are images of one system (Spirit's chains, GNEB bands): one atom count
    counts = [len(v) for v in vectors]
    if append:
        with ovf.ovf_file(str(path)) as f:
            seg = ovf.ovf_segment()
            if not f.is_ovf or f.n_segments < 1 or f.read_segment_header(0, seg) != ovf.OK:
                raise FileFormatError(f"write_ovf(append=True): {path} is not an OVF file with a segment to append "
                                      f"to ({f.get_latest_message() or 'no OVF header'})")
            counts.insert(0, int(seg.N))
    if len(set(counts)) > 1:
        where = f"{path} holds segments of {counts[0]} spins" if append else f"segment 0 has {counts[0]} spins"
        bad = next(c for c in counts if c != counts[0])
        raise ShapeError(f"write_ovf: {where}, another segment {bad}: the segments of an OVF file are images of one "
                         "system (Spirit reads them as a chain), so they need the same number of spins")
    # all segments go into a temporary file (a copy of the old one when appending) that replaces
    # ``path`` when complete (spinlat.files): a failure leaves the old file as it was
    with atomic_path(path, copy=append, name="write_ovf path") as tmp:
        for k, v in enumerate(vectors):
            _write_segment(ovf, tmp, path, k, v, format, comment, title, repeat, append)
    return path


def _write_segment(ovf, tmp, path, k, v, format, comment, title, repeat, append):
    """Write (or append, for ``append`` or k > 0) the vectors ``v`` (N, 3) as segment k into ``tmp``."""
    n = len(v)
    p = _perm(repeat, n)
    if p is not None:
        v = v[p]
        nodes = _spirit_nodes(repeat, n)
    else:
        nodes = [n, 1, 1]
    # a line break in the title or comment would end the header line (a file no reader opens)
    seg = ovf.ovf_segment(title="; ".join(str(title).splitlines()), comment="; ".join(str(comment).splitlines()),
                          valuedim=3, valueunits="none none none", valuelabels="spin_x spin_y spin_z",
                          meshtype="rectangular", meshunits="unspecified", n_cells=nodes)
    # the OVF library writes binary data in the precision of the array it is given, whatever the
    # requested format: float32 for "binary4" (a float64 array gave a "Binary 8" file)
    data = np.ascontiguousarray(v, dtype=np.float32 if format == "binary4" else np.float64)
    fmt = getattr(ovf, _FORMATS[format])
    with ovf.ovf_file(str(tmp)) as f:
        rc = (f.append_segment(seg, data, fileformat=fmt) if (append or k > 0)
              else f.write_segment(seg, data, fileformat=fmt))
        if rc != ovf.OK:
            raise FileFormatError(f"{path}: cannot write OVF segment {k}: {f.get_latest_message()}")


__all__ = ["read_ovf", "read_ovf_segments", "write_ovf", "spirit_order", "OVFSegment"]
