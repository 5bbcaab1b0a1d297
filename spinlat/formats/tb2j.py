"""The TB2J ``exchange.out`` text format: parse a file into plain arrays, and its Hamiltonian
convention turned into spinlat's pair tensors (no State, no potential: :mod:`spinlat.io.tb2j`
reads and writes files as spinlat objects, :meth:`~spinlat.potentials.Heisenberg.from_tb2j` builds
the Hamiltonian from here).

Both text layouts are read:

- the old one (TB2J 0.2.x): pair lines ``0(Fe1  )    0(Fe1  ) ( -1,   0,   0) 18.7397 (...) 2.467``,
  ``[Experimental!] DMI: (...)`` and ``[Experimental!]J_ani:`` blocks;
- the newer one: pair lines ``Fe1   Fe1   ( -1,   0,   0) 18.7397   (...) 2.467``, ``[Testing!]``
  tags, an optional ``Single Ion Anisotropy (meV)`` section, extra lines (``J_iso(Bruno)``,
  ``dJ/dx``, ``DMI2``, ``DMI_NJt``, orbital decompositions) that are skipped.

Atom positions in the ``Atoms`` section are Cartesian (Å); the moments are M(x), M(y), M(z) in μB
(non-collinear layout) or one signed w_magmom along z (collinear layout).

Conventions. TB2J writes its Hamiltonian on unit spins with both orderings of each pair:

    E_TB2J = − Σ_{i≠j} [ J_ij s_i·s_j + s_iᵀ J^ani_ij s_j + D_ij·(s_i × s_j) ]

where the sum runs over every listed entry (i, j, R): the file lists (i, j, R) and (j, i, −R)
with equal J, equal J^ani and opposite D, so each physical pair enters twice and no ½ is used
(TB2J's "Conventions of Heisenberg Model" page; magnopy's predefined "tb2j" convention: multiple
counting, normalised spins, c22 = −1). spinlat counts each pair once, E = −Σ_{pairs} s_iᵀ J_ij s_j,
so every entry gives the tensor T = J_iso·1 + [D] + J^ani (with s_iᵀ [D] s_j = D·(s_i × s_j)) and an
entry and its reversed partner are merged into one pair with J_pair = T_(i,j,R) + T_(j,i,−R)ᵀ,
i.e. J_pair = 2 T when the two agree. Energies (meV in the file) are converted to eV.

Single-ion anisotropy (newer files, section ``Single Ion Anisotropy (meV)``: k1 and k1dir) enters
TB2J's Hamiltonian as −k1 (s·k1dir)²; it is added as an on-site term (pair i = j, R = 0, tensor
k1 k1dir k1dirᵀ). TB2J ≥ 0.9 writes the single-ion anisotropy as a tensor instead (section
``Single Ion Anisotropy:``, rows A_xx A_xy A_xz / A_yx … / A_zx … per atom, meV; TB2J folds k1 and
k1dir into it as A = k1 k1dir k1dirᵀ), with TB2J's energy −Σ_i s_iᵀ A_i s_i
(``TB2J.anisotropy.Anisotropy.energy_tensor_form``): A is added as the atom's on-site tensor.
Biquadratic terms (Jprime, B) are not part of the bilinear Hamiltonian and are ignored.

Checks. TB2J states no entry counts, so a file is checked against what TB2J always writes:

- numbers are whole tokens of the ``"fortran"`` grammar of :mod:`spinlat.formats.number_syntax` (``E`` or
  Fortran ``D`` exponents, ``1.87397D+01`` = 18.7397); a token that is not a number, or a line
  with more or fewer numbers than its field holds, is refused with its line;
- every entry (i, j, R) has its partner (j, i, −R) — a file cut between pair blocks, or with
  blocks removed, is refused, naming the unpaired entries; partners whose tensors differ by more
  than ``SYMMETRY_ATOL_MEV + SYMMETRY_RTOL·|T|`` (TB2J prints J_ani with 3 decimals) are
  reported in a warning and merged as above (TB2J's literal sum);
- the last pair block holds the same lines (J_iso, DMI, J_ani) as the others, J_ani has its
  three bracketed rows, and the J on a pair line equals its ``J_iso:`` line: a file cut inside
  the last block is refused;
- the bond vector printed on each pair line equals r_j + R·cell − r_i within the file's rounding
  (``2e-3 Å·(1 + Σ|R_k|)``): a wrong R, atom, cell or position is refused;
- a pair line without the separator line before it starts a new pair (nothing is swallowed);
- the ``Total`` line of the Atoms section equals the sum of the atom rows (a warning otherwise:
  an atom row may have been lost or edited).
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np

from .. import units, validation
from ..errors import FileFormatError
from ..exchange_tensors import dmi_matrix
from ..files import open_decompressed
from . import number_syntax as _text

#: partners (i, j, R), (j, i, −R) whose tensors differ by more than this (meV), plus
#: SYMMETRY_RTOL times their largest element, are reported
SYMMETRY_ATOL_MEV = 2e-3
SYMMETRY_RTOL = 1e-3

_R = r"\(\s*([-+]?\d+)\s*,\s*([-+]?\d+)\s*,\s*([-+]?\d+)\s*\)"
_OLD_PAIR = re.compile(r"^\s*(\d+)\(\s*(\S+?)\s*\)\s+(\d+)\(\s*(\S+?)\s*\)\s*" + _R + r"\s+(\S+)(.*)$")
_NEW_PAIR = re.compile(r"^\s*([A-Za-z]\S*)\s+([A-Za-z]\S*)\s+" + _R + r"\s+(\S+)(.*)$")
_SPLIT = re.compile(r"[\s,()\[\]]+")


def _err(path, lineno, msg):
    return FileFormatError(f"{path}: line {lineno}: {msg}" if lineno else f"{path}: {msg}")


def _floats(text, n, path, lineno, what):
    """Exactly ``n`` numbers (separated by blanks, commas, brackets or parentheses) in ``text``."""
    toks = [t for t in _SPLIT.split(text) if t]
    vals = []
    for t in toks:
        try:
            vals.append(_text.parse_float(t, "fortran"))
        except ValueError as exc:
            raise _err(path, lineno, f"{exc} (in {what})") from None
    if len(vals) != n:
        raise _err(path, lineno, f"expected {n} number(s) for {what}, got {len(vals)}: {text.strip()!r}")
    return vals


def _element(name, path, lineno):
    from ase.data import atomic_numbers

    m = re.match(r"([A-Z][a-z]?)", name)
    if not m or m.group(1) not in atomic_numbers:
        raise _err(path, lineno, f"atom name {name!r} does not start with a chemical element symbol")
    return atomic_numbers[m.group(1)]


def _is_separator(line):
    s = line.strip()
    return len(s) >= 10 and (set(s) == {"-"} or set(s) == {"="})


def _pair_line(line):
    """(name_i, name_j, R, J token, rest of the line) of a pair line of either layout, or None."""
    m = _OLD_PAIR.match(line)
    if m:
        return m.group(2), m.group(4), [int(m.group(x)) for x in (5, 6, 7)], m.group(8), m.group(9)
    m = _NEW_PAIR.match(line)
    if m:
        return m.group(1), m.group(2), [int(m.group(x)) for x in (3, 4, 5)], m.group(6), m.group(7)
    return None


def _atoms_section(lines, start, path):
    """Atom rows of the Atoms section: names, numbers, positions (Å), moments (μB)."""
    n = len(lines)
    k = start + 1
    while k < n and not lines[k].strip().startswith("Atom"):
        k += 1
    if k >= n:
        raise _err(path, start + 1, "no atom table header ('Atom_number ...') in the Atoms section")
    collinear = "M(x)" not in lines[k]
    ncol = 5 if collinear else 7
    columns = "x y z w_charge w_magmom" if collinear else "x y z w_charge M(x) M(y) M(z)"
    names, numbers, positions, magmoms, charges = [], [], [], [], []
    k += 1
    while True:
        if k >= n or _is_separator(lines[k]) or not lines[k].strip():
            raise _err(path, k + 1, "atom table ends without its 'Total' line (truncated file?)")
        parts = lines[k].split()
        if parts[0] == "Total":
            break
        vals = _floats(" ".join(parts[1:]), ncol, path, k + 1, f"atom {parts[0]} ({columns})")
        names.append(parts[0])
        numbers.append(_element(parts[0], path, k + 1))
        positions.append(vals[:3])
        charges.append(vals[3])
        magmoms.append([0.0, 0.0, vals[4]] if collinear else vals[4:7])
        k += 1
    if not names:
        raise _err(path, k + 1, "the atom table is empty")
    if len(set(names)) != len(names):
        raise _err(path, k + 1, "atom names in the Atoms section are not unique")
    total = _floats(" ".join(lines[k].split()[1:]), ncol - 3, path, k + 1, "the Total line")
    sums = [sum(charges)] + ([sum(m[2] for m in magmoms)] if collinear else list(np.sum(magmoms, axis=0)))
    if max(abs(a - b) for a, b in zip(total, sums)) > 1e-4 * (len(names) + 1) + 1e-9:
        warnings.warn(f"{path}: line {k + 1}: the Total line {total} is not the sum {np.round(sums, 4).tolist()} of "
                      "the atom rows above it: an atom row may be missing or edited", stacklevel=4)
    return names, numbers, positions, magmoms


def _sia_section(lines, first, last, index, path):
    """Single-ion anisotropy rows (atom, k1 meV, k1dir) between lines ``first`` and ``last``."""
    sia = []
    for s in range(first, last):
        if lines[s].strip().startswith("Single Ion Anisotropy (meV)"):
            r = s + 1
            while r < last and not lines[r].strip().startswith("Atom"):
                r += 1
            r += 1
            while r < last and lines[r].strip() and not _is_separator(lines[r]):
                parts = lines[r].split()
                if parts[0] not in index:
                    raise _err(path, r + 1, f"unknown atom {parts[0]!r} in the single-ion anisotropy section")
                vals = _floats(" ".join(parts[1:]), 4, path, r + 1, "k1 and k1dir")
                sia.append((index[parts[0]], vals[0], np.array(vals[1:4])))
                r += 1
    return sia


def _sia_tensor_section(lines, first, last, index, path):
    """Single-ion anisotropy tensors (atom, A (3, 3) meV) of the ``Single Ion Anisotropy:``
    section (TB2J ≥ 0.9) between lines ``first`` and ``last``: after three header lines
    (``Atom_number A_xx A_xy A_xz``, ``A_yx ...``, ``A_zx ...``) one block per atom, its name and
    the row A_x· on the first line, A_y· and A_z· on the next two, a dashed separator after it."""
    out = []
    for s in range(first, last):
        if not lines[s].strip().startswith("Single Ion Anisotropy:"):
            continue
        r = s + 1
        while r < last and not lines[r].strip().startswith("Atom"):
            r += 1
        if r >= last:
            raise _err(path, s + 1, "no header ('Atom_number A_xx A_xy A_xz') in the Single Ion Anisotropy section")
        r += 1
        while r < last and lines[r].split()[:1] in (["A_yx"], ["A_zx"]):
            r += 1
        while r < last and lines[r].strip() and not (_is_separator(lines[r]) and "=" in lines[r]):
            if _is_separator(lines[r]):
                r += 1
                continue
            parts = lines[r].split()
            if parts[0] not in index:
                raise _err(path, r + 1, f"unknown atom {parts[0]!r} in the single-ion anisotropy tensor section")
            rows = [_floats(" ".join(parts[1:]), 3, path, r + 1, f"row A_x of atom {parts[0]}'s anisotropy tensor")]
            for k, axis in ((1, "y"), (2, "z")):
                if r + k >= last or not lines[r + k].strip() or _is_separator(lines[r + k]):
                    raise _err(path, r + k + 1, f"row A_{axis} of atom {parts[0]}'s anisotropy tensor missing "
                                                "(three rows per atom; truncated file?)")
                rows.append(_floats(lines[r + k], 3, path, r + k + 1,
                                    f"row A_{axis} of atom {parts[0]}'s anisotropy tensor"))
            out.append((index[parts[0]], np.array(rows)))
            r += 3
    return out


def _pair_block(lines, k, path):
    """The lines after a pair line up to the next separator or pair line: J_iso, DMI (3,), J_ani
    (3, 3) (None where absent) and the index of the first line after the block."""
    n = len(lines)
    jiso = dmi = jani = None
    while k < n and not _is_separator(lines[k]) and _pair_line(lines[k]) is None:
        s = lines[k]
        if re.search(r"(^|\s)J_iso:", s):
            jiso = (_floats(s.split("J_iso:", 1)[1], 1, path, k + 1, "J_iso")[0], k + 1)
        elif re.search(r"(^|[\s\]])DMI:", s):
            dmi = np.array(_floats(s.split("DMI:", 1)[1], 3, path, k + 1, "the DMI vector"))
        elif re.search(r"(^|[\s\]])J_ani:", s):
            rows = []
            for r in range(3):
                q = k + 1 + r
                row = lines[q].strip() if q < n else ""
                ok = row.startswith("[[") if r == 0 else (row.startswith("[") and not row.startswith("[["))
                ok = ok and (row.endswith("]]") if r == 2 else (row.endswith("]") and not row.endswith("]]")))
                if not ok:
                    raise _err(path, q + 1, f"J_ani row {r + 1} of 3 expected ('[[a b c]', ' [a b c]', ' [a b c]]'), "
                                            f"got {row!r} (truncated file?)")
                rows.append(_floats(row, 3, path, q + 1, f"J_ani row {r + 1}"))
            jani = np.array(rows)
            k += 3
        k += 1
    return jiso, dmi, jani, k


def _exchange_section(lines, start, index, names, cell, positions, path):
    """Exchange entries (i, j, R, T meV, line) of the Exchange section starting at line ``start``."""
    n = len(lines)
    entries, layouts = [], []
    k = start + 1
    while k < n:
        line = lines[k]
        pair = _pair_line(line)
        if pair is None:
            if lines[k].strip().startswith("=") and _is_separator(lines[k]) and entries:
                break  # a following section
            if line.strip() and not _is_separator(line) and not line.strip().startswith(("i ", "i\t")) \
                    and "J_iso(meV)" not in line:
                raise _err(path, k + 1, f"expected a pair line 'atom_i atom_j (R1, R2, R3) J_iso ...', "
                                        f"got {line.strip()!r}")
            k += 1
            continue
        ni, nj, R, jtok, rest = pair
        start_line = k + 1
        for nm in (ni, nj):
            if nm not in index:
                raise _err(path, start_line, f"pair refers to atom {nm!r}, not in the Atoms section {names}")
        try:
            jpair = _text.parse_float(jtok, "fortran")
        except ValueError as exc:
            raise _err(path, start_line, f"{exc} (J_iso on the pair line)") from None
        i, j = index[ni], index[nj]
        R = np.array(R, dtype=np.int64)
        vec = _floats(rest, 4, path, start_line, "the bond vector and distance after J_iso")[:3] if rest.strip() \
            else None
        expect = positions[j] + R @ cell - positions[i]
        if vec is not None and np.abs(np.array(vec) - expect).max() > 2e-3 * (1 + np.abs(R).sum()):
            raise _err(path, start_line, f"the bond vector {vec} on the pair line is not r_j + R·cell − r_i = "
                                         f"{np.round(expect, 4).tolist()} Å: the atoms, R, the cell or the "
                                         "positions in the file are inconsistent")
        if i == j and not R.any():
            raise _err(path, start_line, "an exchange entry couples an atom with itself (i = j, R = 0)")
        jiso, dmi, jani, k = _pair_block(lines, k + 1, path)
        if jiso is not None and abs(jiso[0] - jpair) > 1e-4 + 1e-9 * abs(jpair):
            raise _err(path, jiso[1], f"J_iso {jiso[0]} differs from {jpair} on the pair line {start_line} "
                                      "(truncated or edited file?)")
        layouts.append((jiso is not None, dmi is not None, jani is not None))
        T = (jpair if jiso is None else jiso[0]) * np.eye(3)
        if dmi is not None:
            T = T + dmi_matrix(dmi)
        if jani is not None:
            T = T + jani
        entries.append((i, j, R, T, start_line))
    if not entries:
        raise _err(path, start + 1, "the Exchange section holds no pairs (truncated file?)")
    if len(layouts) > 1:
        usual = set(layouts[:-1])
        if len(usual) == 1 and layouts[-1] != layouts[0] and sum(layouts[-1]) < sum(layouts[0]):
            missing = [w for w, a, b in zip(("J_iso", "DMI", "J_ani"), layouts[0], layouts[-1]) if a and not b]
            raise _err(path, entries[-1][4], f"the last pair block lacks its {', '.join(missing)} line(s), which "
                                             "every other block has: the file is truncated")
    return entries


def _check_partners(entries, names, path):
    """Every entry (i, j, R) must have its partner (j, i, −R); report partners that disagree."""
    table = {}
    for i, j, R, T, line in entries:
        key = (i, j, tuple(int(x) for x in R))
        if key in table:
            raise _err(path, line, f"exchange entry {names[i]} {names[j]} R={key[2]} is listed twice "
                                   f"(first on line {table[key][1]})")
        table[key] = (T, line)
    unpaired, worst = [], []
    for (i, j, R), (T, line) in table.items():
        pkey = (j, i, tuple(-x for x in R))
        partner = table.get(pkey)
        if partner is None:
            unpaired.append(f"{names[i]} {names[j]} R={R} (line {line})")
            continue
        if pkey < (i, j, R):
            continue  # each pair compared once
        dev = float(np.abs(T - partner[0].T).max())
        if dev > SYMMETRY_ATOL_MEV + SYMMETRY_RTOL * max(np.abs(T).max(), np.abs(partner[0]).max()):
            worst.append((dev, f"{names[i]} {names[j]} R={R} (lines {line}, {partner[1]})"))
    if unpaired:
        raise _err(path, None, f"{len(unpaired)} of {len(entries)} exchange entries lack their reversed partner "
                               f"(j, i, −R), which TB2J always lists: {'; '.join(unpaired[:5])}"
                               f"{' ...' if len(unpaired) > 5 else ''} (truncated file, or entries removed?)")
    if worst:
        worst.sort(reverse=True)
        warnings.warn(f"{path}: {len(worst)} pair(s) whose two entries (i, j, R) and (j, i, −R) differ by more than "
                      f"{SYMMETRY_ATOL_MEV} meV (+{SYMMETRY_RTOL:g} relative): largest {worst[0][0]:.4g} meV for "
                      f"{worst[0][1]}; their sum T_ij + T_ji^T is used (TB2J's Hamiltonian)", stacklevel=3)


def parse_tb2j(path) -> dict:
    """Parse a TB2J ``exchange.out`` file into plain arrays (file units: Å, μB, meV).

    Returns a dict with ``cell`` (3,3), ``names`` (T,), ``numbers`` (T,), ``positions`` (T,3 Å),
    ``magmoms`` (T,3 μB), ``entries`` — list of (i, j, R (3,), T (3,3) meV, line number), every
    entry with its reversed partner —, ``sia`` — list of (i, k1 meV, k1dir (3,)) — and ``sia_tensors`` —
    list of (i, A (3, 3) meV), the tensor section of TB2J ≥ 0.9. Raises
    :class:`FileFormatError` naming the line for malformed or truncated files (see the module
    docstring for the checks)."""
    path = Path(validation.existing_file(path, "TB2J path", "TB2J file", inside="exchange.out"))
    try:
        with open_decompressed(path) as fh:   # also gzip, bzip2 or xz (by content)
            lines = fh.read().decode("utf-8", errors="replace").splitlines()
    except (OSError, EOFError) as exc:
        raise FileFormatError(f"{path}: cannot read TB2J file ({exc})") from None
    find = {key: next((k for k, ln in enumerate(lines) if ln.strip().startswith(key)), None)
            for key in ("Cell (Angstrom):", "Atoms:", "Exchange:")}
    if find["Cell (Angstrom):"] is None:
        head = next((ln.strip() for ln in lines if ln.strip()), "")
        if head.startswith("<"):  # TB2J's Multibinit exchange.xml, or other XML
            raise _err(path, 0, f"an XML file ({head[:40]!r}), such as TB2J's Multibinit exchange.xml; spinlat reads "
                                "TB2J's exchange.out (in the same TB2J_results directory)")
        raise _err(path, 0, "no 'Cell (Angstrom):' section; not a TB2J exchange.out file")
    if find["Atoms:"] is None:
        raise _err(path, 0, "no 'Atoms:' section; truncated or not a TB2J exchange.out file")
    if find["Exchange:"] is None:
        raise _err(path, 0, "no 'Exchange:' section; truncated TB2J exchange.out file")

    k = find["Cell (Angstrom):"]
    if k + 3 >= len(lines):
        raise _err(path, k + 1, "truncated cell: three lattice vectors expected")
    cell = np.array([_floats(lines[k + r], 3, path, k + r + 1, "a lattice vector") for r in (1, 2, 3)])
    if abs(np.linalg.det(cell)) < 1e-8:
        raise _err(path, k + 2, "cell is singular")

    names, numbers, positions, magmoms = _atoms_section(lines, find["Atoms:"], path)
    index = {nm: a for a, nm in enumerate(names)}
    positions = np.array(positions, dtype=float)
    sia = _sia_section(lines, find["Atoms:"], find["Exchange:"], index, path)
    sia_tensors = _sia_tensor_section(lines, find["Atoms:"], find["Exchange:"], index, path)
    entries = _exchange_section(lines, find["Exchange:"], index, names, cell, positions, path)
    _check_partners(entries, names, path)
    return dict(cell=cell, names=names, numbers=np.array(numbers), positions=positions,
                magmoms=np.array(magmoms, dtype=float), entries=entries, sia=sia, sia_tensors=sia_tensors)


def _merge_entries(entries):
    """Directed TB2J entries (each with its partner, see :func:`_check_partners`) → pairs counted
    once: T_(i,j,R) + T_(j,i,−R)ᵀ (meV)."""
    table = {(i, j, tuple(int(x) for x in R)): T for i, j, R, T, _ in entries}
    out = []
    seen = set()
    for (i, j, R), T in table.items():
        if (i, j, R) in seen:
            continue
        partner = (j, i, tuple(-x for x in R))
        seen.add((i, j, R))
        seen.add(partner)
        out.append((i, j, R, T + table[partner].T))
    return out


def pair_tensors(data, path="exchange.out"):
    """The pairs of a parsed file (:func:`parse_tb2j`) in spinlat's convention: every pair once,
    J_pair = T_(i,j,R) + T_(j,i,−R)ᵀ, plus the single-ion anisotropy as on-site terms (i = j,
    R = 0, tensor k1 k1dir k1dirᵀ, or the tensor A of TB2J ≥ 0.9), converted from meV to eV
    (module docstring).

    Returns ``(i, j, R, J)``: template atom indices (P,), lattice vectors (P, 3) int, tensors
    (P, 3, 3) eV — the arguments of :class:`~spinlat.potentials.Heisenberg` after the template.
    Raises FileFormatError (naming ``path``) for a zero k1dir."""
    pairs = _merge_entries(data["entries"])
    i = [p[0] for p in pairs]
    j = [p[1] for p in pairs]
    R = [p[2] for p in pairs]
    J = [p[3] for p in pairs]
    for a, k1, e in data["sia"]:
        norm = np.linalg.norm(e)
        if norm == 0:
            raise FileFormatError(f"{path}: zero k1dir for atom {data['names'][a]}")
        e = e / norm
        i.append(a)
        j.append(a)
        R.append((0, 0, 0))
        J.append(k1 * np.outer(e, e))
    for a, A in data.get("sia_tensors", ()):
        i.append(a)
        j.append(a)
        R.append((0, 0, 0))
        J.append(A)
    J = np.array(J, dtype=float).reshape(-1, 3, 3) * units.MEV
    return np.array(i, dtype=np.int64), np.array(j, dtype=np.int64), np.array(R, dtype=np.int64).reshape(-1, 3), J


__all__ = ["parse_tb2j", "pair_tensors", "SYMMETRY_ATOL_MEV", "SYMMETRY_RTOL"]
