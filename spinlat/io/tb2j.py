"""TB2J ``exchange.out`` files: read them into a State and a :class:`Heisenberg`, write them back.

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
i.e. J_pair = 2 T when both are listed (always, in TB2J's output). An entry whose partner is
missing is kept as it is (TB2J's literal sum). Energies (meV in the file) are converted to eV.

Single-ion anisotropy (newer files, section ``Single Ion Anisotropy (meV)``: k1 and k1dir) enters
TB2J's Hamiltonian as −k1 (s·k1dir)²; it is added as an on-site term (pair i = j, R = 0, tensor
k1 k1dir k1dirᵀ). Biquadratic terms (Jprime, B) and the tensor-form single-ion section are not
part of the bilinear Hamiltonian and are ignored.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np

from .. import units
from ..errors import FileFormatError

_FLOAT = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_NUMS = re.compile(_FLOAT)
_R = r"\(\s*(-?\d+)\s*,\s*(-?\d+)\s*,\s*(-?\d+)\s*\)"
_OLD_PAIR = re.compile(r"^\s*(\d+)\(\s*(\S+?)\s*\)\s+(\d+)\(\s*(\S+?)\s*\)\s*" + _R + r"\s+(" + _FLOAT + r")")
_NEW_PAIR = re.compile(r"^\s*([A-Za-z]\S*)\s+([A-Za-z]\S*)\s+" + _R + r"\s+(" + _FLOAT + r")")


def _err(path, lineno, msg):
    return FileFormatError(f"{path}: line {lineno}: {msg}" if lineno else f"{path}: {msg}")


def _floats(line, n, path, lineno, what):
    vals = [float(x) for x in _NUMS.findall(line)]
    if len(vals) < n:
        raise _err(path, lineno, f"expected {n} numbers for {what}, got {line.strip()!r}")
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


def parse_tb2j(path) -> dict:
    """Parse a TB2J ``exchange.out`` file into plain arrays (file units: Å, μB, meV).

    Returns a dict with ``cell`` (3,3), ``names`` (T,), ``numbers`` (T,), ``positions`` (T,3 Å),
    ``magmoms`` (T,3 μB), ``entries`` — list of (i, j, R (3,), T (3,3) meV, line number) — and
    ``sia`` — list of (i, k1 meV, k1dir (3,)). Raises :class:`FileFormatError` naming the line."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise FileFormatError(f"{path}: cannot read TB2J file ({exc})") from None
    n = len(lines)
    find = {key: next((k for k, ln in enumerate(lines) if ln.strip().startswith(key)), None)
            for key in ("Cell (Angstrom):", "Atoms:", "Exchange:")}
    if find["Cell (Angstrom):"] is None:
        raise _err(path, 0, "no 'Cell (Angstrom):' section; not a TB2J exchange.out file")
    if find["Atoms:"] is None:
        raise _err(path, 0, "no 'Atoms:' section; truncated or not a TB2J exchange.out file")
    if find["Exchange:"] is None:
        raise _err(path, 0, "no 'Exchange:' section; truncated TB2J exchange.out file")

    k = find["Cell (Angstrom):"]
    if k + 3 >= n:
        raise _err(path, k + 1, "truncated cell: three lattice vectors expected")
    cell = np.array([_floats(lines[k + r], 3, path, k + r + 1, "a lattice vector")[:3] for r in (1, 2, 3)])
    if abs(np.linalg.det(cell)) < 1e-8:
        raise _err(path, k + 2, "cell is singular")

    # ------------------------------------------------------------------ atoms
    k = find["Atoms:"] + 1
    while k < n and not lines[k].strip().startswith("Atom"):
        k += 1
    if k >= n:
        raise _err(path, find["Atoms:"] + 1, "no atom table header ('Atom_number ...') in the Atoms section")
    header = lines[k]
    collinear = "M(x)" not in header
    names, numbers, positions, magmoms = [], [], [], []
    k += 1
    while True:
        if k >= n or _is_separator(lines[k]) or not lines[k].strip():
            raise _err(path, k + 1, "atom table ends without its 'Total' line (truncated file?)")
        line = lines[k]
        if line.split()[0] == "Total":
            break
        parts = line.split()
        name = parts[0]
        vals = _floats(" ".join(parts[1:]), 5 if collinear else 7, path, k + 1, f"atom {name}")
        names.append(name)
        numbers.append(_element(name, path, k + 1))
        positions.append(vals[:3])
        magmoms.append([0.0, 0.0, vals[4]] if collinear else vals[4:7])
        k += 1
    if not names:
        raise _err(path, k + 1, "the atom table is empty")
    if len(set(names)) != len(names):
        raise _err(path, k + 1, "atom names in the Atoms section are not unique")
    index = {nm: a for a, nm in enumerate(names)}

    # ------------------------------------------------------------------ single-ion anisotropy (k1, k1dir)
    sia = []
    for s in range(find["Atoms:"], find["Exchange:"]):
        if lines[s].strip().startswith("Single Ion Anisotropy (meV)"):
            r = s + 1
            while r < find["Exchange:"] and not lines[r].strip().startswith("Atom"):
                r += 1
            r += 1
            while r < find["Exchange:"] and lines[r].strip() and not _is_separator(lines[r]):
                parts = lines[r].split()
                if parts[0] not in index:
                    raise _err(path, r + 1, f"unknown atom {parts[0]!r} in the single-ion anisotropy section")
                vals = _floats(" ".join(parts[1:]), 4, path, r + 1, "k1 and k1dir")
                sia.append((index[parts[0]], vals[0], np.array(vals[1:4])))
                r += 1
        elif lines[s].strip().startswith("Single Ion Anisotropy:"):
            warnings.warn(f"{path}: the tensor single-ion anisotropy section is ignored", stacklevel=3)

    # ------------------------------------------------------------------ exchange entries
    entries = []
    k = find["Exchange:"] + 1
    while k < n:
        line = lines[k]
        m_old = _OLD_PAIR.match(line)
        m_new = None if m_old else _NEW_PAIR.match(line)
        if not (m_old or m_new):
            if line.strip() and not _is_separator(line) and not line.strip().startswith(("i ", "i\t")) \
                    and "J_iso(meV)" not in line:
                raise _err(path, k + 1, f"expected a pair line 'atom_i atom_j (R1, R2, R3) J_iso ...', "
                                        f"got {line.strip()!r}")
            if lines[k].strip().startswith("=") and _is_separator(lines[k]) and entries:
                break  # a following section
            k += 1
            continue
        if m_old:
            ni, nj = m_old.group(2), m_old.group(4)
            R = [int(m_old.group(x)) for x in (5, 6, 7)]
            jiso = float(m_old.group(8))
        else:
            ni, nj = m_new.group(1), m_new.group(2)
            R = [int(m_new.group(x)) for x in (3, 4, 5)]
            jiso = float(m_new.group(6))
        start = k + 1
        for nm in (ni, nj):
            if nm not in index:
                raise _err(path, start, f"pair refers to atom {nm!r}, not in the Atoms section {names}")
        dmi = np.zeros(3)
        jani = np.zeros((3, 3))
        k += 1
        while k < n and not _is_separator(lines[k]):
            s = lines[k]
            if re.search(r"(^|\s)J_iso:", s):
                jiso = _floats(s.split("J_iso:")[1], 1, path, k + 1, "J_iso")[0]
            elif re.search(r"(^|[\s\]])DMI:", s):
                dmi = np.array(_floats(s.split("DMI:")[1], 3, path, k + 1, "the DMI vector")[:3])
            elif re.search(r"(^|[\s\]])J_ani:", s):
                rows = []
                for r in range(3):
                    if k + 1 + r >= n or _is_separator(lines[k + 1 + r]):
                        raise _err(path, k + 2 + r, "truncated J_ani matrix: three rows expected")
                    rows.append(_floats(lines[k + 1 + r], 3, path, k + 2 + r, "a J_ani row")[:3])
                jani = np.array(rows)
                k += 3
            k += 1
        T = jiso * np.eye(3) + _dmi_matrix(dmi) + jani
        if not np.all(np.isfinite(T)):
            raise _err(path, start, "non-finite exchange parameters")
        entries.append((index[ni], index[nj], np.array(R, dtype=np.int64), T, start))
    if not entries:
        raise _err(path, find["Exchange:"] + 1, "the Exchange section holds no pairs (truncated file?)")
    return dict(cell=cell, names=names, numbers=np.array(numbers), positions=np.array(positions, dtype=float),
                magmoms=np.array(magmoms, dtype=float), entries=entries, sia=sia)


def _dmi_matrix(d):
    from ..potentials.heisenberg import dmi_matrix

    return dmi_matrix(d)


def _merge_entries(entries, path):
    """Directed TB2J entries → pairs counted once: T_(i,j,R) + T_(j,i,−R)ᵀ (meV)."""
    table = {}
    for i, j, R, T, line in entries:
        key = (i, j, tuple(int(x) for x in R))
        if i == j and not R.any():
            raise _err(path, line, "an exchange entry couples an atom with itself (i = j, R = 0)")
        if key in table:
            raise _err(path, line, f"exchange entry {key} is listed twice")
        table[key] = T
    out = []
    seen = set()
    for (i, j, R), T in table.items():
        if (i, j, R) in seen:
            continue
        partner = (j, i, tuple(-x for x in R))
        seen.add((i, j, R))
        total = T.copy()
        if partner in table:
            seen.add(partner)
            total = total + table[partner].T
        out.append((i, j, R, total))
    return out


def read_tb2j(path):
    """Read a TB2J ``exchange.out`` file (old 0.2.x or newer text layout).

    Returns ``(state, heisenberg)``: the unit-cell :class:`~spinlat.State` (positions Å, periodic,
    spins and moments (μB) from TB2J's Wannier moments, moment = |M|) and the
    :class:`~spinlat.potentials.Heisenberg` with pair tensors in eV, each pair once (see the module
    docstring for the conversion from TB2J's double-counted sum). The Heisenberg applies to any
    supercell of the file's cell. Malformed or truncated files raise
    :class:`~spinlat.errors.FileFormatError` naming the line."""
    from ..potentials.heisenberg import Heisenberg
    from ..state import State

    data = parse_tb2j(path)
    mag = data["magmoms"]
    moments = np.linalg.norm(mag, axis=1)
    spins = np.where(moments[:, None] > 0, mag, [0.0, 0.0, 1.0])
    state = State(data["positions"], data["numbers"], cell=data["cell"], pbc=True, spins=spins, moments=moments)
    pairs = _merge_entries(data["entries"], path)
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
    J = np.array(J, dtype=float) * units.MEV
    ham = Heisenberg(data["cell"], data["positions"], data["numbers"], np.array(i), np.array(j),
                     np.array(R, dtype=np.int64).reshape(-1, 3), J.reshape(-1, 3, 3), pbc=True)
    ham.source = str(path)
    ham.n_entries = len(data["entries"])
    return state, ham


def write_tb2j(path, state, heisenberg, names=None):
    """Write ``heisenberg`` (template atoms: ``state``'s atoms, same order) as a TB2J ``exchange.out``
    in the newer text layout, with TB2J's double counting: each pair (i, j, R) with tensor J (eV)
    becomes the entries (i, j, R) and (j, i, −R) with T = J/2 and Tᵀ, written as J_iso = tr T/3
    (meV), DMI (antisymmetric part) and J_ani = sym T − J_iso·1. On-site terms are not written.
    ``state`` must be the template unit cell (positions Å, moments μB)."""
    from ase.data import chemical_symbols

    h = heisenberg
    if len(state) != len(h.numbers) or not np.array_equal(state.numbers, h.numbers):
        raise FileFormatError("write_tb2j: state must hold the Heisenberg template's atoms")
    if names is None:
        count = {}
        names = []
        for z in state.numbers:
            s = chemical_symbols[z]
            count[s] = count.get(s, 0) + 1
            names.append(f"{s}{count[s]}")
    from ..potentials.heisenberg import dmi_vector

    pos = state.positions
    mag = state.magnetic_moments
    out = ["=" * 90, "Information: ", "Written by spinlat (TB2J text layout).", "", "=" * 90, "Cell (Angstrom):"]
    out += ["{:10.8f}  {:10.8f}  {:10.8f}".format(*c) for c in h.cell]
    out += ["", "=" * 90, "Atoms:  ", "(Note: charge and magmoms only count the wannier functions.)",
            "{:^12s} {:^13s} {:^13s} {:^13s} {:^9s} {:^9s} {:^9s} {:^9s}".format(
                "Atom_number", "x", "y", "z", "w_charge", "M(x)", "M(y)", "M(z)")]
    for a in range(len(state)):
        out.append("{:<12s} {:13.8f} {:13.8f} {:13.8f} {:9.4f} {:9.4f} {:9.4f} {:9.4f}".format(
            names[a], *pos[a], 0.0, *mag[a]))
    out.append("{:<12s} {:13s} {:13s} {:13s} {:9.4f} {:9.4f} {:9.4f} {:9.4f}".format(
        "Total", "", "", "", 0.0, *mag.sum(axis=0)))
    out += ["", "=" * 90, "Exchange: ",
            "{:6s} {:5s} {:15s} {:7s} {:24s} {:11s} ".format("    i", "    j", "         R", "  J_iso(meV)",
                                                              "         vector", "distance(A)")]
    rows = []
    for i, j, R, J in zip(h.i, h.j, h.R, h.J):
        if i == j and not R.any():
            continue
        T = 0.5 * J / units.MEV
        rows.append((i, j, R, T))
        rows.append((j, i, -R, T.T))
    for i, j, R, T in rows:
        vec = pos[j] + R @ h.cell - pos[i]
        dist = float(np.linalg.norm(vec))
        jiso = np.trace(T) / 3
        d = dmi_vector(T)
        jani = 0.5 * (T + T.T) - jiso * np.eye(3)
        out.append("-" * 88)
        out.append("   {:5s} {:5s} ({:3d}, {:3d}, {:3d}) {:.10f}   ({:6.3f}, {:6.3f}, {:6.3f}) {:6.3f} ".format(
            names[i], names[j], *(int(x) for x in R), jiso, *vec, dist))
        out.append(f"J_iso: {jiso:.10f} ")
        out.append("[Testing!] DMI: ({:.10f} {:.10f} {:.10f})".format(*d))
        out.append("[Testing!]J_ani:")
        out += ["[[{:.10f} {:.10f} {:.10f}]".format(*jani[0]), " [{:.10f} {:.10f} {:.10f}]".format(*jani[1]),
                " [{:.10f} {:.10f} {:.10f}]]".format(*jani[2])]
    Path(path).write_text("\n".join(out) + "\n", encoding="utf-8")


__all__ = ["read_tb2j", "parse_tb2j", "write_tb2j"]
