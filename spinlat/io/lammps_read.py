"""Readers of LAMMPS SPIN outputs: data files (``atom_style spin``), ``dump custom`` files with spin
columns, and the thermo output of logs, into spinlat States and frames.

Units and conventions are those of :mod:`spinlat.io.lammps` (the exporter): ``units metal`` in,
spinlat units out (velocities Å/ps → Å/fs, times ps → fs, LAMMPS's magnetic force fm in rad/ps →
h = (ħ/|m|)(1 − s sᵀ) fm in eV/μB). When ``spinlat-export.json`` (written by
:func:`spinlat.io.write_lammps`) sits next to a file, the readers take atom types, masses, the
time step and the rotation back into the exported frame from it.
"""

from __future__ import annotations

import io
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import units, validation
from ..errors import FileFormatError, InputError, needs_option
from ..files import open_decompressed
from ..observables import total_moment
from .lammps import FORMAT, METADATA_FILE, hbar_lammps
from ..keywords import refuse_other_names

def _open_lammps_file(path):
    """``path`` opened for binary reading, decompressed when it is gzip, bzip2 or xz (recognised
    by content, as LAMMPS writes ``dump ... dump.lammpstrj.gz``; :func:`spinlat.files.open_decompressed`)."""
    return open_decompressed(path)


def _read_lammps_text(path, what) -> str:
    """The text of a (possibly compressed) LAMMPS file; FileFormatError naming ``what`` if unreadable."""
    try:
        with _open_lammps_file(path) as fh:
            return fh.read().decode(errors="replace")
    except (OSError, EOFError) as exc:
        raise FileFormatError(f"cannot read {what} {path}: {getattr(exc, 'strerror', None) or exc}") from None


def _load_metadata(path, metadata):
    """The export metadata dict: ``metadata`` itself (dict), read from a path, or found next to
    ``path`` ("auto"); None if there is none (or ``metadata`` is None)."""
    if metadata is None:
        return None
    if isinstance(metadata, dict):
        return metadata
    if isinstance(metadata, str) and metadata == "auto":
        cand = Path(path).resolve().parent / METADATA_FILE
        if not cand.exists():
            return None
        metadata = cand
    p = Path(metadata)
    if p.is_dir():
        p = p / METADATA_FILE
    try:
        meta = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise FileFormatError(f"{p}: cannot read spinlat export metadata ({exc})") from None
    if meta.get("format") != FORMAT:
        raise FileFormatError(f"{p}: not a spinlat LAMMPS export metadata file (format {meta.get('format')!r})")
    return meta


class _TypeMap:
    """LAMMPS atom type → atomic number and mass."""

    def __init__(self, z: dict, mass: dict):
        self.z, self.mass = z, mass

    def numbers(self, types, where):
        try:
            return np.array([self.z[int(t)] for t in types], dtype=np.int64)
        except KeyError as exc:
            raise needs_option("elements", FileFormatError(
                f"{where}: no element known for atom type {exc.args[0]}; pass elements=[...] (one symbol per type) "
                "or elements={type: symbol}")) from None

    def masses(self, types, numbers):
        from ase.data import atomic_masses

        return np.array([self.mass.get(int(t), atomic_masses[z]) for t, z in zip(types, numbers)], dtype=float)


def _element_number(sym, where):
    from ase.data import atomic_numbers

    if isinstance(sym, (int, np.integer)):
        if 1 <= int(sym) <= 118:
            return int(sym)
    elif str(sym) in atomic_numbers and str(sym) != "X":
        return atomic_numbers[str(sym)]
    raise needs_option("elements", InputError(f"{where}: {sym!r} is not a chemical element"))


def _explicit_types(elements, where):
    if elements is None:
        return None
    if isinstance(elements, dict):
        return {int(t): _element_number(s, where) for t, s in elements.items()}
    if isinstance(elements, str):
        elements = elements.split()
    return {k + 1: _element_number(s, where) for k, s in enumerate(elements)}


def _match_mass(mass):
    """The element whose standard atomic mass is within 0.01 amu of ``mass`` (unique), else None."""
    from ase.data import atomic_masses

    close = np.flatnonzero(np.abs(atomic_masses[1:119] - mass) < 0.01) + 1
    return int(close[0]) if len(close) == 1 else None


def _rotate_back(meta, positions=None, vectors=(), axial=()):
    rot = np.array(meta["rotation"], dtype=float)
    if np.array_equal(rot, np.eye(3)):
        return positions, list(vectors), list(axial)
    sign = 1.0 if np.linalg.det(rot) > 0 else -1.0
    back = rot.T
    pos = None if positions is None else positions @ back
    return pos, [None if v is None else v @ back for v in vectors], [None if v is None else sign * (v @ back)
                                                                     for v in axial]


def general_rotation(cell) -> np.ndarray:
    """The rotation R (3×3) from LAMMPS's restricted triclinic frame into the frame of a general
    triclinic box with edge vectors ``cell`` (rows A, B, C): ``v_general = v_restricted @ R``.
    LAMMPS runs such a box turned so that A lies along +x and B in the xy plane with +y (LAMMPS
    documentation, Howto triclinic): the restricted edges are the rows of L in ``cell = L @ R``,
    L lower triangular with a positive diagonal (an LQ decomposition)."""
    q, r = np.linalg.qr(np.asarray(cell, dtype=float).T)
    q = q * np.where(np.diag(r) < 0, -1.0, 1.0)
    return q.T


def _state_cell(meta, box_cell):
    """Cell rows in spinlat's frame: the box (rotated back) along periodic directions, the exported
    cell along non-periodic ones."""
    if meta is None:
        return box_cell
    rot = np.array(meta["rotation"], dtype=float)
    cell = box_cell @ rot.T
    orig = np.array(meta["cell"], dtype=float)
    pbc = np.array(meta["pbc"], dtype=bool)
    cell[~pbc] = orig[~pbc]
    return cell


@refuse_other_names()
def read_lammps_data(path, elements=None, metadata="auto", pbc=None):
    """A :class:`~spinlat.State` from a LAMMPS data file (``atom_style spin`` or ``atomic``).

    Parameters
    ----------
    path : the data file, plain or compressed (gzip, bzip2, xz), in ``read_data``/``write_data``
        format (sections Masses, Atoms, Velocities, Atom Type Labels are read, others skipped). Atoms columns ``id type x y z spx spy spz sp
        [ix iy iz]`` (spin) or ``id type x y z [ix iy iz]`` (atomic, moments 0); image flags unwrap
        the positions. Velocities Å/ps (metal) → Å/fs. The box: ``xlo xhi`` ... ``xy xz yz``
        lines (LAMMPS's restricted triclinic frame), or a general triclinic box (``avec``,
        ``bvec``, ``cvec``, ``abc origin`` lines, ``write_data ... triclinic/general``), whose edge
        vectors become the cell rows as they are, with the atoms, spins and velocities in its frame.
    elements : element of each atom type: a list (type 1 first) or ``{type: symbol}``. Default:
        the export metadata, else ``Atom Type Labels`` that are element symbols, else comments
        ``# Fe`` on the Masses lines, else the element whose standard mass is within 0.01 amu of
        the type's mass; :class:`~spinlat.errors.FileFormatError` if none of these decides.
    metadata : ``"auto"`` (``spinlat-export.json`` next to the file, if any), a path, a dict, or
        None. With it, the state is rotated back into the frame it was exported from.
    pbc : periodic directions (a data file does not say); default: the metadata's, else those
        of the ``boundary`` command a ``log.lammps`` beside the file echoes (``p``; z not for
        ``dimension 2``: a 2D run's thin periodic z box makes no images in LAMMPS; only the
        commands up to the first ``run``/``minimize`` are read, :func:`log_periodicity`; a log
        whose ``read_data``/``write_data`` commands name only other files is another run's and is
        not used, with a UserWarning: :func:`log_names_file`), else all. A box that ends the same ~1e-4 of its length beyond the outermost atoms on both
        sides of a direction, as LAMMPS's write_data leaves a shrink-wrapped (``s``) direction,
        is then refused (FileFormatError naming the direction and the pbc to pass): read
        periodic, a film's two surfaces would be joined as bulk. A data file alone cannot
        say that it is 2D: when every atom lies at z = 0 in a z box that straddles 0 without xz/yz
        tilt (what LAMMPS's 2D runs write, and what a 3D stack of layers Lz apart can look like)
        and none of the above decides, it is read periodic in z with a UserWarning naming the
        layer spacing; pass ``pbc`` to decide.

    Units: LAMMPS ``metal``; a title line naming other units (``units = real``, as
    ``write_data`` writes it) raises FileFormatError.

    Returns the State, atoms sorted by id. Raises FileFormatError (file and line) on malformed files.
    """
    from ..state import State

    path = Path(validation.existing_file(path, "read_lammps_data path", "LAMMPS data file"))
    text = _read_lammps_text(path, "LAMMPS data file")
    meta = _load_metadata(path, metadata)
    lines = text.splitlines()
    # write_data names the units in the title line ("... timestep = 0, units = metal"); the
    # values are read as metal (Å, Å/ps, amu), so other units would be misread silently
    title_units = re.search(r"\bunits\s*=\s*(\w+)", lines[0]) if lines else None
    if title_units and title_units.group(1) != "metal":
        raise FileFormatError(f"{path}: line 1: units {title_units.group(1)!r} (written by LAMMPS's write_data); only "
                              "LAMMPS units metal data files are read (Å, Å/ps): write it from a units metal run")
    header = {}
    lo = np.zeros(3)
    hi = np.zeros(3)
    tilt = np.zeros(3)
    general = {}  # "a", "b", "c", "o" → edge vectors and origin of a general triclinic box
    sections = {}
    k = 1  # the first line is a title
    section_names = {"Masses", "Atoms", "Velocities", "Atom Type Labels", "Pair Coeffs", "PairIJ Coeffs", "Bonds",
                     "Angles", "Dihedrals", "Impropers", "Bond Coeffs", "Angle Coeffs", "Ellipsoids", "Lines",
                     "Triangles", "Bodies", "Bond Type Labels", "Angle Type Labels", "Dihedral Type Labels",
                     "Improper Type Labels", "Dihedral Coeffs", "Improper Coeffs", "BondBond Coeffs",
                     "BondAngle Coeffs", "MiddleBondTorsion Coeffs", "EndBondTorsion Coeffs",
                     "AngleTorsion Coeffs", "AngleAngleTorsion Coeffs", "BondBond13 Coeffs", "AngleAngle Coeffs"}
    current = None
    for k in range(1, len(lines)):
        raw = lines[k]
        content, _, comment = raw.partition("#")
        s = " ".join(content.split())  # tabs or runs of blanks between words ("54\tatoms", "xlo  xhi")
        if not s:
            continue
        if s in section_names:
            current = s
            sections[current] = {"line": k + 1, "rows": [], "style": comment.strip()}
            continue
        if current is None:
            toks = s.split()
            try:
                if s.endswith("xlo xhi"):
                    lo[0], hi[0] = float(toks[0]), float(toks[1])
                elif s.endswith("ylo yhi"):
                    lo[1], hi[1] = float(toks[0]), float(toks[1])
                elif s.endswith("zlo zhi"):
                    lo[2], hi[2] = float(toks[0]), float(toks[1])
                elif s.endswith("xy xz yz"):
                    tilt[:] = [float(t) for t in toks[:3]]
                elif s.endswith(("avec", "bvec", "cvec", "abc origin")):
                    # a general triclinic box (`write_data ... triclinic/general`): edge vectors A, B, C
                    # and the origin; atoms, spins and velocities are in the same frame
                    general[s.split()[-1][0] if s.endswith("vec") else "o"] = [float(t) for t in toks[:3]]
                elif s.endswith(" atoms"):
                    header["atoms"] = int(toks[0])
                elif s.endswith("atom types"):
                    header["types"] = int(toks[0])
            except ValueError:
                raise FileFormatError(f"{path}: line {k + 1}: cannot read header line {raw.strip()!r}") from None
            continue
        sections[current]["rows"].append((k + 1, s, comment.strip()))
    if "atoms" not in header:
        raise FileFormatError(f"{path}: no 'N atoms' header line (not a LAMMPS data file?)")
    n = header["atoms"]
    if "Atoms" not in sections:
        raise FileFormatError(f"{path}: no Atoms section")
    atoms = sections["Atoms"]
    if len(atoms["rows"]) != n:
        raise FileFormatError(f"{path}: the header announces {n} atoms but the Atoms section (line "
                              f"{atoms['line']}) holds {len(atoms['rows'])} lines (truncated file?)")
    style = atoms["style"].split()[0] if atoms["style"] else None
    ncol = len(atoms["rows"][0][1].split()) if n else 0
    if style is None:
        style = "spin" if ncol in (9, 12) else "atomic" if ncol in (5, 8) else None
    if style not in ("spin", "atomic"):
        raise FileFormatError(f"{path}: line {atoms['line']}: atom style {style or '?'} with {ncol} columns; only "
                              "atom_style spin (id type x y z spx spy spz sp) and atomic are read")
    base = 9 if style == "spin" else 5
    table = np.empty((n, base + 3))
    has_image = False
    labels = _type_labels(path, sections)
    label_type = {label: t for t, label in labels.items()}
    for row, (ln, s, _) in enumerate(atoms["rows"]):
        toks = s.split()
        if len(toks) not in (base, base + 3):
            raise FileFormatError(f"{path}: line {ln}: expected {base} or {base + 3} columns for atom_style {style}, "
                                  f"got {len(toks)}")
        toks[1] = _numeric_type(toks[1], label_type, path, ln)  # `write_data ... types labels`
        try:
            vals = [float(t) for t in toks]
        except ValueError:
            raise FileFormatError(f"{path}: line {ln}: non-numeric value in {s!r}") from None
        if len(toks) == base:
            vals += [0.0, 0.0, 0.0]
        else:
            has_image = True
        table[row] = vals
    lines_of = [ln for ln, _, _ in atoms["rows"]]
    if style == "spin" and not atoms["style"]:
        _check_guessed_spin_style(path, atoms, table, ncol)
    _check_atom_values(path, table[:, 2:5], table[:, 5:8] if style == "spin" else None,
                       table[:, 8] if style == "spin" else None, lambda r: lines_of[r])
    order = np.argsort(table[:, 0], kind="stable")
    table = table[order]
    ids = table[:, 0].astype(np.int64)
    twice = ids[1:][ids[1:] == ids[:-1]]
    if len(twice):
        raise FileFormatError(f"{path}: the Atoms section (line {atoms['line']}) holds atom id {twice[0]} twice")
    types = table[:, 1].astype(np.int64)
    box_cell = np.array([[hi[0] - lo[0], 0, 0], [tilt[0], hi[1] - lo[1], 0], [tilt[1], tilt[2], hi[2] - lo[2]]])
    if general:
        missing = [f"{k}vec" for k in "abc" if k not in general]
        if missing or np.any(hi - lo) or np.any(tilt):
            why = f"missing {', '.join(missing)}" if missing else "both given"
            raise FileFormatError(f"{path}: a general triclinic box needs the avec, bvec and cvec lines and no "
                                  f"xlo xhi, ylo yhi, zlo zhi or xy xz yz lines ({why})")
        box_cell = np.array([general["a"], general["b"], general["c"]])
    pos = table[:, 2:5]
    if has_image:
        pos = pos + table[:, base:base + 3] @ box_cell
    if style == "spin":
        spins, moments = table[:, 5:8], table[:, 8].copy()
    else:
        spins, moments = None, np.zeros(n)
    vel = np.zeros((n, 3))
    if "Velocities" in sections:
        section = sections["Velocities"]
        if len(section["rows"]) != n:  # LAMMPS's read_data wants one line per atom
            raise FileFormatError(f"{path}: the Velocities section (line {section['line']}) holds "
                                  f"{len(section['rows'])} lines for {n} atoms (truncated file?)")
        id_row = {int(i): r for r, i in enumerate(ids)}
        seen = set()
        for ln, s, _ in section["rows"]:
            toks = s.split()
            try:
                vel[id_row[int(toks[0])]] = [float(t) for t in toks[1:4]]
            except (ValueError, KeyError, IndexError):
                raise FileFormatError(f"{path}: line {ln}: bad Velocities line {s!r}") from None
            if int(toks[0]) in seen:
                raise FileFormatError(f"{path}: line {ln}: a second Velocities line for atom {toks[0]}")
            seen.add(int(toks[0]))
        vel /= units.FS_PER_PS
    tmap = _data_type_map(path, sections, meta, elements, labels)
    numbers = tmap.numbers(types, str(path))
    masses = tmap.masses(types, numbers)
    if meta is not None:
        if meta.get("n_atoms") not in (None, n):
            raise FileFormatError(f"{path}: {n} atoms but the export metadata describes {meta['n_atoms']}")
        pos, (vel,), (spins,) = _rotate_back(meta, pos, [vel], [spins])
        pbc = meta["pbc"] if pbc is None else pbc
    log = path.resolve().parent / "log.lammps"
    if pbc is None and log.is_file():
        # the log beside the file echoes the run's boundary (p periodic; f, s, m not) and a 2D
        # run's `dimension 2` (a thin periodic z box that makes no images in LAMMPS); a log
        # without them says the run was periodic in 3D. Another run's log (one whose read_data
        # and write_data commands name other files) says nothing about this file
        if log_names_file(log, path, "data") is False:
            import warnings

            warnings.warn(_foreign_log_warning(log, path, "data", "pass pbc=... for a box not periodic in 3D"),
                          UserWarning, stacklevel=2)
        else:
            pbc = log_periodicity(log) or [True, True, True]
    if pbc is None and not general:
        _check_shrink_wrapped(path, np.linalg.solve(box_cell.T, (table[:, 2:5] - lo).T).T,
                              "(spinlat convert --pbc, a config's structure.pbc), or put the run's log.lammps "
                              "beside the file")
        _warn_if_2d_like(path, pos[:, 2], lo[2], hi[2], tilt[1:],
                         "pass pbc=(True, True, False) (or put its log.lammps beside it)")
    cell = _state_cell(meta, box_cell)
    return State(pos, numbers, cell=cell, pbc=True if pbc is None else pbc, spins=spins, moments=moments,
                 velocities=vel, masses=masses, validate=False)


#: bare integer tokens (image flags), as LAMMPS writes them; spins and moments are written as floats
_INTEGER_TOKEN = re.compile(r"[+-]?\d+")


def _check_guessed_spin_style(path, atoms, table, ncol):
    """FileFormatError when an Atoms section without a style comment, read as ``atom_style spin``
    for its 9 (12 with image flags) columns, does not look like one. Other styles have as many
    columns — charge or molecular with image flags (id type q x y z ix iy iz; id mol type x y z
    ix iy iz), dipole (id type q x y z mux muy muz) — and would be read with shifted positions and
    made-up spins. Spin rows, as LAMMPS's write_data gives them, carry unit directions spx spy spz
    (or a zero one with sp = 0) and floats for sp; a row with another direction length, or
    9-column rows ending in three bare integers (image flags), asks for the comment."""
    hint = ("add the style after the section name ('Atoms # spin', as LAMMPS's write_data writes it) or "
            "give the file in atom_style spin (id type x y z spx spy spz sp)")
    if ncol == 9 and all(all(_INTEGER_TOKEN.fullmatch(t) for t in s.split()[6:9]) for _, s, _ in atoms["rows"]):
        raise FileFormatError(
            f"{path}: the Atoms section (line {atoms['line']}) names no atom style and its 9 columns fit atom_style "
            f"spin, but every row ends in three integers, as image flags do (atom_style charge or molecular with "
            f"image flags: id type q x y z ix iy iz, id mol type x y z ix iy iz); {hint}")
    norms = np.linalg.norm(table[:, 5:8], axis=1)
    bad = np.flatnonzero(~((np.abs(norms - 1.0) <= 1e-6) | ((norms == 0) & (table[:, 8] == 0))))
    if len(bad):
        ln = atoms["rows"][int(bad[0])][0]
        raise FileFormatError(
            f"{path}: the Atoms section (line {atoms['line']}) names no atom style and its {ncol} columns fit "
            f"atom_style spin, but line {ln} has a spin direction spx spy spz of length {norms[bad[0]]:.6g} (LAMMPS "
            f"writes unit vectors): atom_style charge, molecular or dipole have {ncol} columns too; {hint}")


def _check_atom_values(path, positions, spins, moments, line_of):
    """FileFormatError naming the file and line (``line_of(row)``) of the first atom whose
    position or spin is NaN/inf, whose moment ``sp`` is negative, or whose spin direction is zero
    while its moment is not (LAMMPS's atom_style spin: sp is the magnitude, spx spy spz the
    direction); ``spins``/``moments`` None for atom_style atomic."""
    checks = [(~np.isfinite(positions).all(axis=1), "a position that is NaN or infinite")]
    if spins is not None:
        checks += [(~(np.isfinite(spins).all(axis=1) & np.isfinite(moments)), "a spin value that is NaN or infinite"),
                   (moments < 0, "a negative moment sp (LAMMPS's sp is the magnitude, μB; reverse spx spy spz "
                                 "instead)"),
                   (np.all(spins == 0, axis=1) & (moments > 0),
                    "a zero spin direction spx spy spz with a non-zero moment sp")]
    for bad, what in checks:
        rows = np.flatnonzero(bad)
        if len(rows):
            raise FileFormatError(f"{path}: line {line_of(int(rows[0]))}: atom with {what}"
                                  f"{f' ({len(rows)} atoms)' if len(rows) > 1 else ''}")
    if spins is not None:
        norm = np.linalg.norm(spins, axis=1)
        off = np.flatnonzero((moments > 0) & (np.abs(norm - 1.0) > 1e-3))  # %g dumps: ~1e-6
        if len(off):
            import warnings

            k = int(off[0])
            warnings.warn(f"{path}: line {line_of(k)}: the spin direction spx spy spz of {len(off)} magnetic atom(s) "
                          f"is not a unit vector (|s| = {norm[k]:.6g}, sp = {moments[k]:.6g}); LAMMPS normalises "
                          "it, and so does spinlat, keeping sp as the moment. If the columns are not LAMMPS's "
                          "atom_style spin order id type x y z spx spy spz sp, the spins and moments are wrong",
                          UserWarning, stacklevel=4)


def _warn_if_2d_like(path, z, zlo, zhi, tilt_z, remedy):
    """UserWarning when a LAMMPS file whose periodicity nothing else decides looks like a 2D
    run's (every atom at z = 0, a z box straddling 0, no xz/yz tilt): LAMMPS's 2D runs keep a
    periodic z that makes no images, but the file alone does not say it was 2D, so it is read
    periodic in z, as a stack of layers zhi - zlo apart."""
    if len(z) and zlo < 0.0 < zhi and not np.any(tilt_z) and not np.any(z):
        import warnings

        warnings.warn(f"{path}: every atom lies at z = 0 in a z box [{zlo:g}, {zhi:g}] that straddles 0, as LAMMPS "
                      "writes for a 2D run (dimension 2), but nothing says it was one: it is read periodic in z, a "
                      f"stack of layers {zhi - zlo:g} Å apart; for a 2D system {remedy}", UserWarning,
                      stacklevel=3)


def log_dimension(path) -> int:
    """The dimension (2 or 3) a LAMMPS log's echoed ``dimension`` command sets, 3 if none: only
    the input commands up to the first ``run``, ``rerun`` or ``minimize`` are read (LAMMPS
    takes ``dimension`` only before the box exists), not the thermo output of a long run.
    Raises MissingFileError / FileFormatError for a missing or unreadable file."""
    return log_setup(path)[0]


def log_periodicity(path) -> list[bool] | None:
    """Periodic directions [x, y, z] of the run a LAMMPS log echoes: its ``boundary`` command
    (``p`` periodic; ``f``, ``s``, ``m`` and their pairs such as ``fs`` not), z non-periodic for
    ``dimension 2`` (whose periodic z makes no images); None when the log sets no boundary and
    is 3D (LAMMPS's default: all periodic). Commands up to the first ``run``, ``rerun`` or
    ``minimize``, as :func:`log_dimension`. Raises as :func:`log_dimension`."""
    dimension, boundary = log_setup(path)
    if boundary is None and dimension == 3:
        return None
    pbc = [True, True, True] if boundary is None else list(boundary)
    if dimension == 2:
        pbc[2] = False
    return pbc


def log_setup(path) -> tuple:
    """(dimension, boundary) from the commands a LAMMPS log echoes before its first ``run``,
    ``rerun`` or ``minimize``: dimension 2 or 3 (3 if not set), boundary a tuple of three bools
    (periodic or not; the last ``boundary`` or ``change_box ... boundary``) or None if not set."""
    path = Path(validation.existing_file(path, "log_dimension path", "LAMMPS log"))
    dimension = 3
    boundary = None
    try:
        with _open_lammps_file(path) as fh:
            for raw in fh:
                toks = raw.decode(errors="replace").split("#")[0].split()
                if not toks:
                    continue
                if toks[0] in ("run", "rerun") or toks[0].startswith("minimize"):
                    break
                if toks[0] == "dimension" and toks[1:2] in (["2"], ["3"]):
                    dimension = int(toks[1])
                # `boundary x y z`, or `change_box GROUP ... boundary x y z ...` before the run
                at = 1 if toks[0] == "boundary" else (toks.index("boundary") + 1 if toks[0] == "change_box"
                                                      and "boundary" in toks else None)
                if at is not None and len(toks) >= at + 3 and all(re.fullmatch(r"[pfsm]{1,2}", t)
                                                                  for t in toks[at:at + 3]):
                    boundary = tuple(t == "p" for t in toks[at:at + 3])
    except (OSError, EOFError) as exc:
        raise FileFormatError(f"cannot read LAMMPS log {path}: {getattr(exc, 'strerror', None) or exc}") from None
    return dimension, boundary


#: input commands that name the files of a run: (command, index of the file name among its words)
_FILE_COMMANDS = {"dump": {"dump": 5, "write_dump": 3, "rerun": 1, "read_dump": 1},
                  "data": {"read_data": 1, "write_data": 1}}
#: commands that set up a system without naming a data file
_SETUP_COMMANDS = ("create_box", "read_restart", "read_dump")
_COMPRESSED_SUFFIXES = (".gz", ".bz2", ".xz")


def log_names_file(log, path, kind) -> bool | None:
    """Whether the LAMMPS log ``log`` is the log of the run that wrote (or read) ``path``: True
    when one of the input commands it echoes names the file — ``kind`` ``"dump"``: ``dump ID
    group style N FILE`` or ``write_dump group style FILE`` (or ``rerun FILE``, ``read_dump FILE``:
    a run over the dump's frames, whose thermo is theirs); ``"data"``: ``read_data FILE`` or
    ``write_data FILE`` — by its base name (LAMMPS's ``*`` and ``%`` in dump names and ``$x``,
    ``${name}``, ``$(expr)`` variables match anything; a file compressed afterwards, ``.gz``,
    ``.bz2``, ``.xz``, matches its name without the suffix); False when the log echoes such commands
    (or, for a data file, sets up its system with ``create_box``, ``read_restart``, ...) and none
    names the file: another run's log, typically the last run in a directory that holds several;
    None when it echoes none (``echo none``, or a log written by hand), and nothing can be said.
    Raises FileFormatError for an unreadable log."""
    import fnmatch

    commands = _FILE_COMMANDS[kind]
    names, setup = [], False
    for raw in _read_lammps_text(Path(log), "LAMMPS log").splitlines():
        toks = raw.split("#")[0].split()
        if not toks:
            continue
        at = commands.get(toks[0])
        if at is not None and len(toks) > at:
            names.append(toks[at])
        elif kind == "data" and toks[0] in _SETUP_COMMANDS:
            setup = True
    if not names and not setup:
        return None
    own = {Path(path).name}
    own |= {n[:-len(x)] for n in own for x in _COMPRESSED_SUFFIXES if n.endswith(x)}
    for name in names:
        pattern = re.sub(r"\$(\{[^}]*\}|\([^)]*\)|\w)", "*", Path(name.strip("'\"")).name)
        pattern = pattern.replace("%", "*").replace("[", "[[]")
        if any(fnmatch.fnmatchcase(n, pattern) for n in own):
            return True
    return False


def _foreign_log_warning(log, path, kind, remedy) -> str:
    what = ("dump or write_dump" if kind == "dump" else "read_data or write_data")
    return (f"{log} beside {path} is another run's log: none of its {what} commands names {Path(path).name}, "
            f"so it is not used ({remedy})")


def _check_shrink_wrapped(path, frac, remedy):
    """FileFormatError when a data file read periodic along every direction (nothing said
    otherwise) has the box of LAMMPS's shrink-wrapped boundaries (``boundary ... s``: a film,
    wire or cluster) along some direction: LAMMPS's write_data resets such a box to the atoms'
    extent plus the same margin on both sides, 1e-4 of the previous extent (Domain::reset_box,
    SMALL), so the outermost atoms lie that margin inside both faces. Read periodic, the two
    surfaces would be joined as bulk (a slab of bcc Fe: −109.6 eV for −204.9). ``frac`` (N, 3):
    the atoms' coordinates in the file as fractions of the box from its lower corner."""
    if len(frac) < 2:
        return
    low = frac.min(axis=0)
    high = 1.0 - frac.max(axis=0)
    wrapped = [k for k in range(3) if 1e-5 < low[k] < 1e-3 and abs(low[k] - high[k]) < 1e-9]
    if not wrapped:
        return
    axes = " and ".join("xyz"[k] for k in wrapped)
    guess = tuple(k not in wrapped for k in range(3))
    raise FileFormatError(f"{path}: the box ends {low[wrapped[0]]:.3g} of its length beyond the outermost atoms on "
                          f"both sides along {axes}, as LAMMPS's write_data leaves a shrink-wrapped (boundary s, "
                          "non-periodic) direction, but a data file does not say which directions are periodic and "
                          "no export metadata or log.lammps beside it does; read periodic, the surfaces would be "
                          f"joined as bulk: pass pbc={guess} {remedy}")


def _data_type_map(path, sections, meta, elements, labels) -> _TypeMap:
    explicit = _explicit_types(elements, f"{path}: elements")
    mass = {}
    comments = {}
    label_type = {label: t for t, label in labels.items()}
    for ln, s, comment in sections.get("Masses", {}).get("rows", []):
        toks = s.split()
        try:
            t = int(_numeric_type(toks[0], label_type, path, ln))
            mass[t] = float(toks[1])
        except (ValueError, IndexError):
            raise FileFormatError(f"{path}: line {ln}: bad Masses line {s!r}") from None
        if comment:
            comments[t] = comment.split()[0]
    if explicit is not None:
        return _TypeMap(explicit, mass)
    if meta is not None:
        return _TypeMap({int(r["type"]): int(r["z"]) for r in meta["types"]},
                        {int(r["type"]): float(r["mass"]) for r in meta["types"]} | mass)
    return _TypeMap(_types_from(labels, comments, masses=mass), mass)


def _type_labels(path, sections) -> dict:
    """atom type → label, from the ``Atom Type Labels`` section of a data file."""
    labels = {}
    for ln, s, _ in sections.get("Atom Type Labels", {}).get("rows", []):
        toks = s.split()
        try:
            labels[int(toks[0])] = toks[1]
        except (ValueError, IndexError):
            raise FileFormatError(f"{path}: line {ln}: bad Atom Type Labels line {s!r} (expected: type label)") from None
    return labels


def _numeric_type(tok, label_type, path, ln) -> str:
    """The atom type ``tok`` as a number (text): itself, or the type its label names."""
    if tok.lstrip("+-").isdigit():
        return tok
    if tok in label_type:
        return str(label_type[tok])
    raise FileFormatError(f"{path}: line {ln}: atom type {tok!r} is neither a number nor a label of the Atom Type "
                          f"Labels section ({', '.join(label_type) or 'none'})")


def _types_from(*named, masses) -> dict:
    """atom type → atomic number: the first of the ``{type: symbol}`` maps ``named`` whose symbol is
    an element, else the element of the type's mass (:func:`_match_mass`)."""
    z = {}
    for source in named:
        for t, sym in source.items():
            if t not in z and _element_or_none(sym):
                z[t] = _element_or_none(sym)
    for t, m in masses.items():
        if t not in z and _match_mass(m) is not None:
            z[t] = _match_mass(m)
    return z


# ------------------------------------------------------------------------------ dumps
@dataclass
class _FrameIndex:
    step: int
    time: float  # ps, NaN if the dump has no TIME item
    n: int
    box: tuple  # (rows (3, 3) lo hi tilt, or (3, 4) A B C + origin; False / True / "general"; boundary str)
    columns: list
    offset: int  # byte offset of the first atom line
    line: int  # its line number


_REQUIRED = ("id", "type")


@refuse_other_names()
class LammpsDump:
    """Frames of a LAMMPS ``dump custom`` file (text), with the :class:`spinlat.io.Trajectory` API.

    ``len(dump)`` frames; ``dump[i]`` is a :class:`~spinlat.State` (negative indices work; a
    slice gives a list); iterating gives States; ``dump[name]`` / ``dump.array(name)`` give
    ``step`` (F,), ``time`` (F,) fs, ``cell`` (F,3,3), ``positions``, ``velocities`` (Å/fs),
    ``spins``, ``forces`` (eV/Å), ``magnetic_forces`` (eV/μB), ``magnetization`` (F,3 μB),
    ``moments`` (F,N), ``kinetic_energy`` (eV), ``temperature`` (K, 3N degrees of freedom as in
    spinlat; a dump without ``vx vy vz`` gives States at rest, and its kinetic energy and
    temperature come from the log's KinEng, else are NaN: :meth:`kinetic_energy`), and with thermo (see ``thermo``) ``potential_energy`` and ``total_energy`` (eV;
    listed in ``names`` when the log has a PotEng column; ``array`` gives them always, NaN at the
    frames whose step the log does not print with PotEng — every frame without a log — as a
    :class:`~spinlat.io.Trajectory` converted from a file without energies);
    ``dump.atoms(i)`` gives ``ase.Atoms`` with forces. Atoms are sorted by id in every frame.
    ``dump.attrs``: the exported run's ``potential`` and ``integrator`` descriptions (with export
    metadata), so that :func:`spinlat.analysis.summary` reports an NVE run's energy drift.

    Parameters
    ----------
    path : the dump file, plain or compressed (``dump ... FILE.gz``; gzip, bzip2, xz). Columns
        (names as in the ``ITEM: ATOMS`` line): ``id type``,
        positions ``x y z`` / ``xu yu zu`` / ``xs ys zs`` / ``xsu ysu zsu`` (with ``ix iy iz`` the
        wrapped ones are unwrapped; in a box of ``dump_modify triclinic/general yes``, ``BOX BOUNDS
        abc origin``, the cell rows are its edge vectors and the spin and fm columns of computes,
        which LAMMPS leaves in its restricted frame while it turns x, v and f, are turned into the
        general frame, :func:`general_rotation`), optional ``element`` (which may replace
        ``type``: ``dump_modify element``; or ``typelabel`` in place of ``type``: type labels
        that are element symbols), ``mass`` (amu), ``vx vy vz`` (Å/ps), ``fx fy fz``, and the
        spin columns ``spx spy spz sp`` (unit vector, moment μB), optional ``fmx fmy fmz``
        (rad/ps). Dumps that name them otherwise (e.g. ``c_outsp[1]`` of a compute
        property/atom) are read with ``columns={"c_outsp[1]": "spx", ...}``.
    elements : element per atom type (list, type 1 first, or ``{type: symbol}``); default: the
        ``element`` column, else the export metadata; FileFormatError if neither exists.
    metadata : ``"auto"`` (``spinlat-export.json`` next to the dump), a path, a dict, or None:
        atom masses, the time step, and the rotation back into the exported frame.
    thermo : ``"auto"`` (``log.lammps`` next to the dump, if present and not another run's: a log
        whose ``dump``/``write_dump`` commands name only other files is not used, with a
        UserWarning, :func:`log_names_file`), a log path, or None: the
        ``PotEng`` column at each frame's step gives ``potential_energy`` (eV, any thermo style
        of :func:`read_lammps_log`; per-atom values of ``thermo_modify norm yes`` are multiplied
        by the atom count; multi style prints 4 decimals). The log's ``KinEng`` is checked
        against the dumped velocities (FileFormatError if the log is another run's; the
        tolerance allows the 6 digits a dump prints). Its echoed commands also name the spin
        columns (``compute ID all property/atom sp spx spy spz ...`` → ``c_ID[k]``) and the
        elements (``labelmap``, ``pair_coeff * * ... file El ...``, else ``mass`` within
        0.01 amu) when ``columns`` / ``elements`` do not; a log of units other than metal is
        refused; ``dimension 2`` makes z non-periodic (LAMMPS's 2D runs keep a periodic z box
        that makes no images; read as periodic, its thickness would put images in range).
    pbc : periodic directions of every frame (one bool or three), whatever the dump's box, the
        metadata and the log say (then no 2D guess is made or warned about); None: theirs.

    Units: the dump must be ``units metal`` (ITEM: UNITS, if present, is checked). Times come from
    ``ITEM: TIME`` (ps → fs), else the log's ``Time`` column at that step, else step × the
    metadata's dt, else step × the log's ``timestep`` (when it sets one value and never resets
    the step counter), else NaN.
    """

    def __init__(self, path, elements=None, columns=None, metadata="auto", thermo="auto", pbc=None):
        self.path = Path(validation.existing_file(path, "read_lammps_dump path", "LAMMPS dump"))
        self._pbc = None if pbc is None else validation.pbc(pbc, "read_lammps_dump pbc")
        self._meta = _load_metadata(self.path, metadata)
        self._explicit = _explicit_types(elements, f"{self.path}: elements")
        self._frames = self._scan()
        if not self._frames:
            raise FileFormatError(f"{self.path}: no frame found (not a LAMMPS dump, or empty)")
        self._log_blocks, self._log = self._find_log(thermo)
        columns = dict(columns or {})
        rename = {} if self._log is None else self._log.renames(self._frames[0].columns)
        rename = {a: b for a, b in rename.items() if a not in columns and b not in columns.values()}
        rename.update(columns)
        for fr in self._frames:
            fr.columns = [rename.get(c, c) for c in fr.columns]
        # every frame's columns (a dump appended to by a later run may dump other ones)
        checked = []
        for fr in self._frames:
            if fr.columns not in checked:
                self._check_columns(fr)
                checked.append(fr.columns)
        self._thermo = self._read_thermo()
        self._cache = {}
        self._warned_2d = False  # the 2D-like warning (_warn_if_2d_like) given
        self._compressed = None  # open handle of a compressed dump, reused while frames go forward

    # ------------------------------------------------------------------ scanning
    def _scan(self):
        frames = []
        units_name = None
        with _open_lammps_file(self.path) as fh:
            # gzip, bzip2 or xz (by content): frames are then read through one kept handle (_rows)
            self._is_compressed = not isinstance(fh, io.BufferedReader)
            ln = 0
            time = math.nan
            while True:
                raw = fh.readline()
                if not raw:
                    break
                ln += 1
                line = " ".join(raw.decode(errors="replace").split())  # tabs between words, as in data files
                if not line:
                    continue
                if not line.startswith("ITEM:"):
                    raise FileFormatError(f"{self.path}: line {ln}: expected an 'ITEM:' line, got {line[:60]!r}")
                item = line[5:].strip()
                if item == "UNITS":
                    units_name = fh.readline().decode().strip()
                    ln += 1
                    if units_name != "metal":
                        raise FileFormatError(f"{self.path}: line {ln}: units {units_name!r}; only LAMMPS units "
                                              "metal dumps are read")
                elif item == "TIME":
                    ln += 1
                    time = self._float(fh.readline(), ln)
                elif item == "TIMESTEP":
                    ln += 1
                    step = int(self._float(fh.readline(), ln))
                elif item.startswith("NUMBER OF ATOMS"):
                    ln += 1
                    n = int(self._float(fh.readline(), ln))
                elif item.startswith("BOX BOUNDS"):
                    flags = item.split()[2:]
                    # "xy xz yz": restricted triclinic (lo hi tilt rows); "abc origin" (dump_modify
                    # triclinic/general yes): rows A, B, C with the origin's x, y, z as 4th values
                    triclinic = "general" if flags[:2] == ["abc", "origin"] else flags[:3] == ["xy", "xz", "yz"]
                    bnd = flags[2:] if triclinic == "general" else flags[3:] if triclinic else flags
                    rows = []
                    for _ in range(3):
                        ln += 1
                        toks = fh.readline().split()
                        try:
                            rows.append([float(t) for t in toks])
                        except ValueError:
                            raise FileFormatError(f"{self.path}: line {ln}: bad box bounds") from None
                    if triclinic == "general" and any(len(r) != 4 for r in rows):
                        raise FileFormatError(f"{self.path}: line {ln}: a general triclinic box (abc origin) needs "
                                              "4 values per line (edge vector, origin coordinate)")
                    rows = np.array([r + [0.0] * (3 - len(r)) for r in rows])
                    pbc = "".join("p" if b.startswith("p") else "s" for b in bnd) if bnd else "ppp"
                    frames_box = (rows, triclinic, pbc)
                elif item.startswith("ATOMS"):
                    cols = item.split()[1:]
                    try:
                        frames.append(_FrameIndex(step, time, n, frames_box, cols, fh.tell(), ln + 1))
                    except NameError:
                        raise FileFormatError(f"{self.path}: line {ln}: ATOMS before TIMESTEP, NUMBER OF ATOMS "
                                              "and BOX BOUNDS") from None
                    for _ in range(n):
                        if not fh.readline():
                            frames.pop()  # truncated last frame: dropped
                            return frames
                        ln += 1
                    time = math.nan
                else:
                    raise FileFormatError(f"{self.path}: line {ln}: unknown item {item!r}")
        return frames

    def _rows(self, fr) -> bytes:
        """The atom lines of frame ``fr``. A compressed dump keeps one handle open while the frames
        are read forward (seeking in it decompresses from its position; backwards: from the start)."""
        if not self._is_compressed:  # a plain file: opened per frame
            with open(self.path, "rb") as fh:
                fh.seek(fr.offset)
                return b"".join(fh.readline() for _ in range(fr.n))
        fh = self._compressed
        if fh is None or fh.tell() > fr.offset:
            if fh is not None:
                fh.close()
            fh = self._compressed = _open_lammps_file(self.path)
        fh.seek(fr.offset)
        return b"".join(fh.readline() for _ in range(fr.n))

    def _float(self, raw, ln):
        try:
            return float(raw.split()[0])
        except (ValueError, IndexError):
            raise FileFormatError(f"{self.path}: line {ln}: expected a number, got {raw[:40]!r}") from None

    def _check_columns(self, fr):
        cols = set(fr.columns)
        twice = sorted(c for c in cols if fr.columns.count(c) > 1)
        if twice:
            raise FileFormatError(f"{self.path}: column {twice[0]} appears twice after renaming (columns {fr.columns})")
        # `dump custom ... id element x y z ...` (OVITO-style, no type): the element column names the atoms
        missing = [c for c in _REQUIRED if c not in cols and not (c == "type" and cols & {"typelabel", "element"})]
        if "type" not in cols and "typelabel" not in cols and self._explicit is not None:
            raise FileFormatError(f"{self.path}: line {fr.line - 1}: elements= names the element of each atom type, "
                                  "but the dump has no type column (its element column names the elements): leave "
                                  "elements out")
        if "id" in missing:  # as in LAMMPS's own SPIN examples (dump ... type x y z c_outsp[1] ...)
            missing[missing.index("id")] = ("id (without it LAMMPS writes the atoms in its internal order, which its "
                                            "spatial sorting and reneighbouring change between frames: add id to the "
                                            "dump custom columns)")
        pos_sets = [("x", "y", "z"), ("xu", "yu", "zu"), ("xs", "ys", "zs"), ("xsu", "ysu", "zsu")]
        if not any(set(p) <= cols for p in pos_sets):
            missing.append("x y z (or xu yu zu, xs ys zs)")
        if not {"spx", "spy", "spz", "sp"} <= cols:
            missing.append("spx spy spz sp (spin direction and moment; rename compute columns with columns={...})")
        if missing:
            where = "" if fr is self._frames[0] else f" (frame at step {fr.step})"
            exc = FileFormatError(f"{self.path}: line {fr.line - 1}: the dump{where} lacks {', '.join(missing)}; it "
                                  f"has {' '.join(fr.columns)}")
            raise needs_option("columns", exc) if not {"spx", "spy", "spz", "sp"} <= cols else exc
        if ("element" not in cols and "typelabel" not in cols and self._explicit is None and self._meta is None
                and not (self._log is not None and self._log.elements())):
            raise needs_option("elements", FileFormatError(
                f"{self.path}: the dump has no element column, and neither export metadata nor a log.lammps naming "
                "the elements (mass, pair_coeff or labelmap) was found: pass elements=[...] (one symbol per atom "
                "type)"))

    def _find_log(self, thermo):
        """The thermo blocks and echoed commands of the log (``thermo``), or (None, None)."""
        if thermo is None:
            return None, None
        if isinstance(thermo, str) and thermo == "auto":
            cand = self.path.resolve().parent / "log.lammps"
            if not cand.exists():
                return None, None
            if log_names_file(cand, self.path, "dump") is False:
                import warnings

                warnings.warn(_foreign_log_warning(cand, self.path, "dump", "pass thermo=LOG for the run's own log"),
                              UserWarning, stacklevel=4)
                return None, None
            thermo = cand
        self._thermo_path = Path(thermo)
        blocks, cmd = _read_log(thermo)
        if cmd.units not in (None, "metal"):
            raise FileFormatError(f"{self._thermo_path}: units {cmd.units!r}; only LAMMPS units metal logs are read "
                                  "(pass thermo=None to read the dump without its log)")
        return blocks, cmd

    def _read_thermo(self):
        """step → (potential energy eV, kinetic energy eV, time ps, absolute rounding eV),
        totals over the atoms (per-atom columns of ``thermo_modify norm yes`` multiplied by the
        atom count). A step printed by two runs keeps the first run's line (multi style prints
        energies with 4 decimals only, the rounding recorded)."""
        if self._log is None:
            return None
        out = {}
        n = self._frames[0].n
        for b in self._log_blocks:
            if "Step" not in b:
                continue
            nan = np.full(len(b["Step"]), np.nan)
            pe = b.extensive("PotEng", n) if "PotEng" in b else nan
            ke = b.extensive("KinEng", n) if "KinEng" in b else nan
            time = b.get("Time", nan)
            rounding = 0.5e-4 * (n if b.norm else 1) if b.style == "multi" else 0.0
            for s, e, k, t in zip(b["Step"], pe, ke, time):
                if int(s) not in out or math.isnan(out[int(s)][0]):
                    out[int(s)] = (float(e), float(k), float(t), rounding)
        return out

    def _has_potential_energy(self, i) -> bool:
        """Whether the log prints PotEng at frame i's step (a thermo style without it, such as
        LAMMPS's default one: Step Temp E_pair E_mol TotEng Press, gives none; E_pair leaves
        out the fixes' energies, so it is not used instead)."""
        step = self._frames[i].step
        return bool(self._thermo) and step in self._thermo and math.isfinite(self._thermo[step][0])

    def _potential_energy(self, i) -> float:
        """PotEng of the thermo line at frame i's step, after checking that the log belongs to this
        dump: its KinEng must equal the kinetic energy of the dumped velocities."""
        fr = self._frames[i]
        if not self._thermo or fr.step not in self._thermo or math.isnan(self._thermo[fr.step][0]):
            raise KeyError(f"{self.path}: the thermo output has no PotEng for step {fr.step}; print thermo (with pe) "
                           "at the dump steps")
        pe, ke_log, _, rounding = self._thermo[fr.step]
        if math.isfinite(ke_log) and {"vx", "vy", "vz"} <= set(fr.columns):
            ke = self._frame(i).kinetic_energy()
            if abs(ke - ke_log) > 1e-5 * abs(ke_log) + 1e-9 * fr.n + rounding:  # dumps print 6 digits (%g)
                raise FileFormatError(f"{self._thermo_path} does not belong to {self.path}: at step {fr.step} its "
                                      f"kinetic energy is {ke_log!r} eV, the dumped velocities give {ke!r} eV "
                                      "(pass thermo=None or the right log)")
        return pe

    def has_velocities(self, i) -> bool:
        """Whether frame i dumps the velocities (``vx vy vz``); without them its State's velocities
        are 0 and its kinetic energy is not known from the dump (:meth:`kinetic_energy`)."""
        return {"vx", "vy", "vz"} <= set(self._frames[self._index(i)].columns)

    def kinetic_energy(self, i) -> float:
        """Lattice kinetic energy of frame i, eV: from the dumped velocities, else the log's KinEng
        at its step, else NaN (unknown: never the 0 of velocities that were not dumped)."""
        i = self._index(i)
        if self.has_velocities(i):
            return self._frame(i).kinetic_energy()
        step = self._frames[i].step
        if self._thermo and step in self._thermo and math.isfinite(self._thermo[step][1]):
            return self._thermo[step][1]
        return math.nan

    def _temperature(self, i, ke) -> float:
        """The lattice temperature of kinetic energy ``ke`` with 3N degrees of freedom (as
        :meth:`spinlat.State.temperature`), K."""
        return 2.0 * ke / (3 * max(self._frames[i].n, 1) * units.K_B)

    # ------------------------------------------------------------------ frames
    def __len__(self) -> int:
        return len(self._frames)

    @property
    def n_atoms(self) -> int:
        return self._frames[0].n

    @property
    def names(self) -> list[str]:
        cols = set(self._frames[0].columns)
        out = ["step", "time", "cell", "positions", "velocities", "spins", "moments", "magnetization",
               "kinetic_energy", "temperature"]
        if {"fx", "fy", "fz"} <= cols:
            out.append("forces")
        if {"fmx", "fmy", "fmz"} <= cols:
            out.append("magnetic_forces")
        if self._thermo and any(math.isfinite(v[0]) for v in self._thermo.values()):
            out += ["potential_energy", "total_energy"]
        return out

    def _index(self, i) -> int:
        i = int(i)
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"frame {i} out of range: {self.path} holds {len(self)} frames")
        return i

    def _parse(self, i) -> dict:
        """Arrays of frame i in spinlat units and frame (cached for the last frame read)."""
        if i in self._cache:
            return self._cache[i]
        fr = self._frames[i]
        chunk = self._rows(fr).decode(errors="replace")
        toks = chunk.split()
        ncol = len(fr.columns)
        if len(toks) != fr.n * ncol:
            raise FileFormatError(f"{self.path}: lines {fr.line}-{fr.line + fr.n - 1}: expected {fr.n} rows of {ncol} "
                                  "columns")
        arr = np.array(toks, dtype=object).reshape(fr.n, ncol)
        col = {c: k for k, c in enumerate(fr.columns)}

        def num(name, dtype=float):
            try:
                return arr[:, col[name]].astype(dtype)
            except ValueError:
                raise FileFormatError(f"{self.path}: frame at line {fr.line}: non-numeric value in column "
                                      f"{name!r}") from None

        ids = num("id", np.int64)
        order = np.argsort(ids, kind="stable")
        arr = arr[order]
        labels = arr[:, col["typelabel"]] if "typelabel" in col else None
        types = (num("type", np.int64) if "type" in col else self._label_types(labels, fr) if labels is not None
                 else np.zeros(fr.n, dtype=np.int64))  # element column only: masses from the elements
        rows, triclinic, pbc_s = fr.box
        if triclinic == "general":
            box_cell, lo = rows[:, :3].copy(), rows[:, 3].copy()
        else:
            lo_b, hi_b = rows[:, 0], rows[:, 1]
            xy, xz, yz = (rows[0, 2], rows[1, 2], rows[2, 2]) if triclinic else (0.0, 0.0, 0.0)
            lo = lo_b - np.array([min(0.0, xy, xz, xy + xz), min(0.0, yz), 0.0])
            hi = hi_b - np.array([max(0.0, xy, xz, xy + xz), max(0.0, yz), 0.0])
            box_cell = np.array([[hi[0] - lo[0], 0, 0], [xy, hi[1] - lo[1], 0], [xz, yz, hi[2] - lo[2]]])
        cols = set(fr.columns)
        if {"xu", "yu", "zu"} <= cols:
            pos = np.stack([num("xu"), num("yu"), num("zu")], axis=1)
        elif {"x", "y", "z"} <= cols:
            pos = np.stack([num("x"), num("y"), num("z")], axis=1)
            if {"ix", "iy", "iz"} <= cols:
                pos = pos + np.stack([num("ix"), num("iy"), num("iz")], axis=1) @ box_cell
        else:
            s = ("xsu", "ysu", "zsu") if {"xsu", "ysu", "zsu"} <= cols else ("xs", "ys", "zs")
            f = np.stack([num(c) for c in s], axis=1)
            if s[0] == "xs" and {"ix", "iy", "iz"} <= cols:
                f = f + np.stack([num("ix"), num("iy"), num("iz")], axis=1)
            pos = lo + f @ box_cell
        if "element" in cols and self._explicit is None:
            numbers = np.array([_element_number(e, f"{self.path}: element column") for e in arr[:, col["element"]]])
            tmap = self._type_map()
        elif labels is not None and not np.all(types > 0):
            # `dump custom ... typelabel` without a labelmap giving the types: labels that are
            # element symbols name the elements
            numbers = np.array([_element_number(e, f"{self.path}: typelabel column (labels that are not element "
                                                   "symbols need a log.lammps with the labelmap and elements=[...])")
                                for e in labels])
            tmap = self._type_map()
        else:
            tmap = self._type_map()
            numbers = tmap.numbers(types, str(self.path))
        # a dumped mass column (amu) wins over the type's mass (log, metadata or the element's)
        masses = num("mass") if "mass" in cols else tmap.masses(types, numbers)
        spins = np.stack([num("spx"), num("spy"), num("spz")], axis=1)
        moments = num("sp")
        # dump_modify triclinic/general turns x, v, f (LAMMPS's own attributes) into the general
        # frame but not the values of computes, fixes and variables (c_outsp[1], ..., also when
        # dump_modify colname names them spx ...): checked with LAMMPS 22 Jul 2025. dump custom has
        # no spin attribute of its own, so the spin and fm columns are always turned here
        turn = general_rotation(box_cell) if triclinic == "general" else None
        if turn is not None:
            spins = spins @ turn
        _check_atom_values(self.path, pos, spins, moments, lambda r: fr.line + int(order[r]))
        vel = (np.stack([num("vx"), num("vy"), num("vz")], axis=1) / units.FS_PER_PS
               if {"vx", "vy", "vz"} <= cols else np.zeros((fr.n, 3)))
        forces = np.stack([num("fx"), num("fy"), num("fz")], axis=1) if {"fx", "fy", "fz"} <= cols else None
        h = None
        if {"fmx", "fmy", "fmz"} <= cols:
            fm = np.stack([num("fmx"), num("fmy"), num("fmz")], axis=1)
            if turn is not None:
                fm = fm @ turn
            s = spins / np.maximum(np.linalg.norm(spins, axis=1), 1e-300)[:, None]
            perp = fm - np.sum(fm * s, axis=1)[:, None] * s
            h = np.zeros_like(fm)
            mag = moments > 0
            h[mag] = hbar_lammps() * perp[mag] / moments[mag, None]
        meta = self._meta
        if meta is not None:
            if meta.get("n_atoms") not in (None, fr.n):
                raise FileFormatError(f"{self.path}: {fr.n} atoms but the export metadata describes {meta['n_atoms']}")
            pos, (vel, forces), (spins, h) = _rotate_back(meta, pos, [vel, forces], [spins, h])
            pbc = np.array(meta["pbc"], dtype=bool)
        if self._pbc is not None:
            pbc = self._pbc.copy()
        elif meta is None:
            pbc = np.array([c == "p" for c in pbc_s], dtype=bool)
            if self._log is not None and self._log.dimension == 2:
                pbc[2] = False  # LAMMPS's 2D runs have a periodic z that makes no images: a layer
            elif self._log is None and pbc[2] and not self._warned_2d and triclinic != "general":
                self._warned_2d = True  # once per dump
                _warn_if_2d_like(self.path, pos[:, 2], lo[2], hi[2], (xz, yz),
                                 "pass pbc=(True, True, False) (spinlat convert --pbc T,T,F, a config's "
                                 "structure.pbc) or put the run's log.lammps beside the dump (or pass thermo=LOG)")
        cell = _state_cell(meta, box_cell)
        time = self._time(fr, meta)
        out = dict(step=fr.step, time=time, cell=cell, pbc=pbc, positions=pos, numbers=numbers, masses=masses,
                   spins=spins, moments=moments, velocities=vel, forces=forces, magnetic_forces=h)
        self._cache = {i: out}
        return out

    def _label_types(self, labels, fr) -> np.ndarray:
        """Atom types of a ``typelabel`` column: from the ``labelmap`` echoed in the log beside
        the dump, else 0 (unknown: masses then come from the elements)."""
        label_type = {} if self._log is None else {sym: t for t, sym in self._log.labels.items()}
        return np.array([label_type.get(str(lab), 0) for lab in labels], dtype=np.int64)

    def _time(self, fr, meta) -> float:
        """fs: the dump's TIME item, else the log's Time column at this step, else step × the
        metadata's dt, else step × the log's timestep (one value, step counter never reset), else NaN."""
        if math.isfinite(fr.time):
            return fr.time * units.FS_PER_PS
        if self._thermo and fr.step in self._thermo and math.isfinite(self._thermo[fr.step][2]):
            return self._thermo[fr.step][2] * units.FS_PER_PS
        if meta is not None and meta.get("dt_fs"):
            return fr.step * meta["dt_fs"]
        if self._log is not None and self._log.dt is not None:
            return fr.step * self._log.dt * units.FS_PER_PS
        return math.nan

    def _type_map(self) -> _TypeMap:
        if self._explicit is not None:
            mass = {}
            if self._meta is not None:
                mass = {int(r["type"]): float(r["mass"]) for r in self._meta["types"]}
            return _TypeMap(self._explicit, mass)
        if self._meta is not None:
            return _TypeMap({int(r["type"]): int(r["z"]) for r in self._meta["types"]},
                            {int(r["type"]): float(r["mass"]) for r in self._meta["types"]})
        if self._log is not None:
            return _TypeMap(self._log.elements(), dict(self._log.masses))
        return _TypeMap({}, {})

    def _frame(self, i):
        from ..state import State

        d = self._parse(self._index(i))
        return State(d["positions"], d["numbers"], cell=d["cell"], pbc=d["pbc"], spins=d["spins"],
                     moments=d["moments"], velocities=d["velocities"], masses=d["masses"], validate=False)

    def __getitem__(self, key):
        if isinstance(key, str):
            return self.array(key)
        if isinstance(key, slice):
            return [self._frame(i) for i in range(*key.indices(len(self)))]
        if isinstance(key, (int, np.integer)):
            return self._frame(key)
        raise TypeError(f"dump index must be an int, a slice or an array name, got {type(key).__name__}")

    def __iter__(self):
        for i in range(len(self)):
            yield self._frame(i)

    def last(self):
        """The last complete frame as a State (to continue the run in spinlat)."""
        return self._frame(len(self) - 1)

    def check_atom_count(self, indices=None) -> int:
        """The number of atoms of the frames ``indices`` (default: all), after checking that it is
        the same in each; FileFormatError naming the first frame (index, step and line) whose
        count differs (atoms lost or deposited during the LAMMPS run): per-atom arrays and spinlat
        trajectories need one set of atoms, so read such frames one by one."""
        indices = range(len(self)) if indices is None else [self._index(i) for i in indices]
        first = None
        for i in indices:
            fr = self._frames[i]
            if first is None:
                first = (i, fr)
            elif fr.n != first[1].n:
                f0 = first[1]
                raise FileFormatError(f"{self.path}: frame {i} (step {fr.step}, line {fr.line - 1}) holds {fr.n} atoms, "
                                      f"frame {first[0]} (step {f0.step}) holds {f0.n}: the number of atoms changes "
                                      "during the dump; per-atom arrays and trajectories need a fixed set of atoms "
                                      "(read frames one by one, or select frames with one count)")
        return 0 if first is None else first[1].n

    def array(self, name) -> np.ndarray:
        """Array ``name`` over all frames (see the class docstring for names and units); per-atom
        arrays need the same atoms in every frame (:meth:`check_atom_count`)."""
        if name not in self.names and name not in ("potential_energy", "total_energy"):
            raise KeyError(f"{self.path}: no array {name!r}; available: {self.names}")
        if name in ("positions", "velocities", "spins", "moments", "forces", "magnetic_forces"):
            self.check_atom_count()
        if name in ("step", "time"):
            return np.array([self._frames[i].step if name == "step" else self._parse(i)["time"]
                             for i in range(len(self))])
        if name in ("potential_energy", "total_energy"):
            pe = np.array([self._potential_energy(i) if self._has_potential_energy(i) else math.nan
                           for i in range(len(self))])
            return pe if name == "potential_energy" else pe + self.array("kinetic_energy")
        out = []
        for i in range(len(self)):
            d = self._parse(i)
            if name == "magnetization":
                out.append(total_moment(d["spins"], d["moments"]))
            elif name in ("kinetic_energy", "temperature"):
                ke = self.kinetic_energy(i)
                out.append(ke if name == "kinetic_energy" else self._temperature(i, ke))
            else:
                out.append(d[name])
        return np.array(out)

    def scalars(self, i) -> dict:
        """step, time (fs), kinetic energy (eV), temperature (K), potential energy (eV, with thermo)."""
        i = self._index(i)
        d = self._parse(i)
        ke = self.kinetic_energy(i)
        out = dict(step=int(d["step"]), time=float(d["time"]), kinetic_energy=ke, temperature=self._temperature(i, ke))
        if self._has_potential_energy(i):
            out["potential_energy"] = self._potential_energy(i)
            out["total_energy"] = out["potential_energy"] + out["kinetic_energy"]
        return out

    def atoms(self, i):
        """Frame i as ``ase.Atoms`` (non-collinear magmoms, velocities, forces and potential energy
        in a SinglePointCalculator when known, ``arrays["magnetic_forces"]``)."""
        from ase.calculators.singlepoint import SinglePointCalculator

        i = self._index(i)
        d = self._parse(i)
        atoms = self._frame(i).to_ase()
        sc = self.scalars(i)
        atoms.info.update(step=sc["step"], time=sc["time"])
        if self._meta is not None:  # the exported run's descriptions, kept by spinlat convert
            atoms.info.update(spinlat_potential=self.attrs["potential"], spinlat_integrator=self.attrs["integrator"])
        if not self.has_velocities(i):  # the atoms' velocities are 0 for want of any: say what is known
            atoms.info["kinetic_energy"] = sc["kinetic_energy"]
        results = {}
        if d["forces"] is not None:
            results["forces"] = d["forces"]
        if "potential_energy" in sc:
            results["energy"] = results["free_energy"] = sc["potential_energy"]
        if d["magnetic_forces"] is not None:
            atoms.arrays["magnetic_forces"] = d["magnetic_forces"]
        if results:
            atoms.calc = SinglePointCalculator(atoms, **results)
        return atoms

    @property
    def attrs(self) -> dict:
        """``potential`` and ``integrator`` of the spinlat run this dump's LAMMPS input was exported
        from (their descriptions in ``spinlat-export.json``; "" without export metadata or for a
        relaxation), as a :class:`~spinlat.io.Trajectory`'s attributes: :func:`spinlat.analysis.summary`
        then knows an exported NVE run conserves energy and reports its drift."""
        meta = self._meta or {}
        return {"potential": meta.get("potential") or "", "integrator": meta.get("integrator") or ""}

    def __repr__(self) -> str:
        return f"LammpsDump({str(self.path)!r}, frames={len(self)}, n_atoms={self.n_atoms})"


@refuse_other_names()
def read_lammps_dump(path, elements=None, columns=None, metadata="auto", thermo="auto", pbc=None) -> LammpsDump:
    """Open a LAMMPS spin dump as frames (:class:`LammpsDump`; see there for the arguments)."""
    return LammpsDump(path, elements=elements, columns=columns, metadata=metadata, thermo=thermo, pbc=pbc)


_LAMMPS_FORMATS = {"lammps-data": "data", "lammps-dump-text": "dump", "lammps-dump": "dump"}


def lammps_file_kind(path, format=None):
    """``"data"`` for a LAMMPS data file, ``"dump"`` for a LAMMPS text dump, else None: from an
    ASE-style ``format`` name (``lammps-data``, ``lammps-dump-text``) or, without one, from the
    file's first lines (a dump opens with ``ITEM:``; a data file has a title line, then an
    ``N atoms`` line and an ``xlo xhi`` line before its first section)."""
    if format is not None:
        return _LAMMPS_FORMATS.get(format)
    try:
        with _open_lammps_file(path) as fh:
            head = [fh.readline().decode(errors="replace") for _ in range(40)]
    except (OSError, EOFError):
        return None
    first = next((ln.strip() for ln in head if ln.strip()), "")
    if first.startswith("ITEM:"):
        return "dump"
    body = [ln.partition("#")[0].split() for ln in head[1:]]
    if any(t[-1:] == ["atoms"] and len(t) == 2 and t[0].isdigit() for t in body) and any(
            t[-2:] == ["xlo", "xhi"] for t in body):
        return "data"
    return None


class ThermoBlock(dict):
    """Thermo output of one ``run`` of a LAMMPS log: column name → array, as LAMMPS printed it.

    Attributes: ``style`` (``"one"`` for the one-line styles one and custom, ``"multi"``,
    ``"yaml"``), ``norm`` (True when the extensive columns — PotEng, KinEng, TotEng, E_*,
    Enthalpy, Ecouple, Econserve — are per atom: ``thermo_modify norm yes``, or units lj, where
    it is LAMMPS's default; a ``thermo_style`` command restores the default, as in LAMMPS),
    ``natoms`` (from the run's ``Loop time ... with N atoms`` line, else None), ``units`` (the
    ``units`` command in force; None when the log echoes none, e.g. after ``echo none``: the
    energies are then taken as extensive unless a ``thermo_modify norm yes`` is echoed) and
    ``timestep`` (the ``timestep`` command in force, in the run's time unit, else None).
    """

    style = "one"
    norm = False
    natoms = None
    units = None
    timestep = None

    def extensive(self, name, natoms=None) -> np.ndarray:
        """Column ``name`` as a total over the atoms: multiplied by the atom count (``natoms`` of
        the block, else the argument) when the block is normalised (``norm``) and ``name`` is an
        extensive column; as printed otherwise. Raises FileFormatError when a normalised block
        has no atom count."""
        values = self[name]
        if not (self.norm and _is_extensive(name)):
            return values
        natoms = self.natoms if self.natoms is not None else natoms
        if natoms is None:
            raise FileFormatError(f"thermo column {name} is per atom (thermo_modify norm yes) and the run's "
                                  "atom count is unknown (no 'Loop time ... with N atoms' line)")
        return values * natoms


_EXTENSIVE = {"PotEng", "KinEng", "TotEng", "Enthalpy", "Ecouple", "Econserve", "Volume"}


def _is_extensive(name) -> bool:
    return name in _EXTENSIVE or (name.startswith("E_") and name != "E_long_ratio")


@dataclass
class _LogCommands:
    """What the input commands echoed in a log say about its dumps: spin column renames, the
    element of each atom type and the time step."""

    properties: dict  # compute ID → attributes of `compute ID group property/atom a b ...`
    labels: dict  # atom type → symbol (labelmap atom)
    pair_elements: dict  # atom type → symbol (pair_coeff * * ... file El1 El2 ...)
    masses: dict  # atom type → mass (mass T m)
    timesteps: set  # values of the timestep commands
    timestep: float | None  # the one in force
    reset: bool  # a reset_timestep command was seen
    units: str | None
    dimension: int = 3  # `dimension 2`: a 2D run, whose periodic z does not make images

    def renames(self, columns) -> dict:
        """``{"c_ID[k]": attribute}`` for dump columns that are elements of a property/atom compute
        and name a column the dump reader knows (sp, spx, ..., fmz, vx, ...)."""
        out = {}
        for c in columns:
            m = re.fullmatch(r"c_([^\[\]]+)\[(\d+)\]", c)
            if m and m.group(1) in self.properties:
                attrs = self.properties[m.group(1)]
                k = int(m.group(2))
                if 1 <= k <= len(attrs) and attrs[k - 1] in _DUMP_COLUMNS and attrs[k - 1] not in columns:
                    out[c] = attrs[k - 1]
        return out

    def elements(self) -> dict:
        """atom type → atomic number, from labelmap, else pair_coeff element lists, else masses."""
        return _types_from(self.labels, self.pair_elements, masses=self.masses)

    @property
    def dt(self):
        """The time step (the run's time unit) when the log sets one and never resets the step counter."""
        return next(iter(self.timesteps)) if len(self.timesteps) == 1 and not self.reset else None


_DUMP_COLUMNS = {"sp", "spx", "spy", "spz", "fmx", "fmy", "fmz", "x", "y", "z", "xu", "yu", "zu", "xs", "ys",
                 "zs", "xsu", "ysu", "zsu", "ix", "iy", "iz", "vx", "vy", "vz", "fx", "fy", "fz", "id", "type",
                 "element", "mass"}
_MEMORY = ("Per MPI rank memory", "Memory usage per processor")
_MULTI = re.compile(r"^-+ Step\s+(\d+) -+")
_PAIR = re.compile(r"([A-Za-z_][A-Za-z0-9_/\[\]]*)\s*=\s*(\S+)")


def read_lammps_log(path) -> list:
    """Thermo output of a LAMMPS log: one :class:`ThermoBlock` (a dict: column name as LAMMPS
    prints it — ``Step``, ``Time``, ``Temp``, ``PotEng``, ``KinEng``, ``TotEng``, ``Press``,
    ``c_ID[k]``, ``v_name``, ... — → array) per ``run`` or ``minimize``, in the order of the
    log. Every thermo style is read: one and custom (a header line, then rows), multi
    (``---- Step N ----`` then ``Name = value`` pairs), yaml (``keywords:`` and ``data:``).
    Values are as printed, in the run's units (metal: eV, ps, K, bar); with ``thermo_modify
    norm yes`` (or units lj) the energies are per atom: ``block.norm`` says so and
    ``block.extensive(name)`` multiplies by the atom count. Warning lines inside a block are
    skipped; a run cut short (no ``Loop time`` line) keeps its complete rows.
    Raises MissingFileError / FileFormatError for a missing or unreadable file."""
    return _read_log(path)[0]


def _read_log(path):
    path = Path(validation.existing_file(path, "read_lammps_log path", "LAMMPS log"))
    lines = _read_lammps_text(path, "LAMMPS log").splitlines()
    cmd = _LogCommands({}, {}, {}, {}, set(), None, False, None)
    norm = None  # None: the units' default
    blocks = []
    block = None  # (ThermoBlock, style, columns, rows)
    after_memory = False

    def close(natoms=None):
        nonlocal block
        if block is None:
            return
        b, style, cols, rows = block
        if style == "multi":
            cols = list(dict.fromkeys(k for r in rows for k in r))
            rows = [[r.get(c, math.nan) for c in cols] for r in rows]
        if cols:
            for k, c in enumerate(cols):
                b[c] = np.array([r[k] for r in rows], dtype=float)
            if "Step" in b:
                b["Step"] = b["Step"].astype(np.int64)
            b.natoms = natoms
            blocks.append(b)
        block = None

    def start(style, cols):
        nonlocal block
        close()
        b = ThermoBlock()
        b.style, b.units, b.timestep = style, cmd.units, cmd.timestep
        b.norm = cmd.units == "lj" if norm is None else norm
        block = (b, style, cols, [])

    yaml_keys = False
    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        toks = line.split()
        if line.startswith("WARNING"):
            continue
        if line.startswith(_MEMORY):
            close()
            after_memory = True
            continue
        m = _MULTI.match(line)
        if m:
            if block is None or block[1] != "multi":
                start("multi", None)
            block[3].append({"Step": float(m.group(1))})
            after_memory = False
            continue
        if line.startswith("Loop time"):
            m = re.search(r"with\s+(\d+)\s+atoms", line)
            close(int(m.group(1)) if m else None)
            continue
        if line.startswith("ERROR") or line.startswith("Last command"):
            close()
            continue
        if after_memory and line == "---":
            start("yaml", None)
            after_memory = False
            continue
        if block is not None and block[1] == "yaml":
            if line.startswith("keywords:"):
                block = block[:2] + ([k.strip().strip("'\"") for k in line[9:].strip().strip("[]").split(",")
                                      if k.strip()],) + block[3:]
            elif line.startswith("- [") and block[2]:
                vals = [v.strip() for v in line[3:].rstrip("]").split(",") if v.strip()]
                if len(vals) == len(block[2]) and all(_is_number(v) for v in vals):
                    block[3].append([float(v) for v in vals])
            elif line == "...":
                pass
            continue
        if block is not None and block[1] == "multi":
            pairs = _PAIR.findall(line)
            if pairs and all(_is_number(v) for _, v in pairs):
                block[3][-1].update((k, float(v)) for k, v in pairs)
                continue
        is_header = all(not _is_number(t) for t in toks) and (toks[0] == "Step" or (after_memory and "Step" in toks))
        if is_header:
            start("one", toks)
            after_memory = False
            continue
        after_memory = False
        if block is not None and block[1] == "one":
            if len(toks) == len(block[2]) and all(_is_number(t) for t in toks):
                block[3].append([float(t) for t in toks])
            continue
        norm = _echoed_command(toks, cmd, norm)
    close()
    return blocks, cmd


def _echoed_command(toks, cmd, norm):
    """Record what an input command echoed in the log says (units, thermo normalisation, time
    step, property/atom computes, type labels, pair_coeff elements, masses); returns the
    ``thermo_modify norm`` setting in force (None: the units' default)."""
    name, args = toks[0], toks[1:]
    if name == "dimension" and args[:1] in (["2"], ["3"]):
        cmd.dimension = int(args[0])
    elif name == "units" and args:
        cmd.units = args[0]
    elif name == "thermo_style":
        norm = None  # LAMMPS restores every thermo_modify setting to its default
    elif name == "thermo_modify":
        for k in range(len(args) - 1):
            if args[k] == "norm" and args[k + 1] in ("yes", "no"):
                norm = args[k + 1] == "yes"
    elif name == "timestep" and args and _is_number(args[0]):
        cmd.timestep = float(args[0])
        cmd.timesteps.add(cmd.timestep)
    elif name == "reset_timestep":
        cmd.reset = True
    elif name == "compute" and len(args) >= 3 and args[2] == "property/atom":
        cmd.properties[args[0]] = args[3:]
    elif name == "labelmap" and args[:1] == ["atom"]:
        for t, sym in zip(args[1::2], args[2::2]):
            if t.isdigit():
                cmd.labels[int(t)] = sym
    elif name == "mass" and len(args) >= 2 and args[0].isdigit() and _is_number(args[1]):
        cmd.masses[int(args[0])] = float(args[1])
    elif name == "pair_coeff" and args[:2] == ["*", "*"]:
        # many-body styles: pair_coeff * * [substyle] FILE El1 El2 ... (NULL: a type the style skips)
        files = [k for k, t in enumerate(args) if "." in t or "/" in t]
        if files:
            tail = args[files[-1] + 1:]
            if tail and all(t == "NULL" or _element_or_none(t) for t in tail):
                for t, sym in enumerate(tail, start=1):
                    if sym != "NULL":
                        cmd.pair_elements.setdefault(t, sym)
    return norm


def _element_or_none(sym):
    try:
        return _element_number(sym, "")
    except InputError:
        return None


def _is_number(t) -> bool:
    try:
        float(t)
        return True
    except ValueError:
        return False


__all__ = ["read_lammps_data", "read_lammps_dump", "read_lammps_log", "log_dimension", "log_periodicity",
           "log_names_file", "general_rotation", "LammpsDump",
           "ThermoBlock"]
