"""Spirit input files (``input.cfg``): the spin lattice and its Heisenberg Hamiltonian.

:func:`read_spirit_cfg` reads the geometry and Hamiltonian keywords of a Spirit 2.x input file
(as Spirit's ``core/src/io/Configparser.cpp`` and ``Dataparser.cpp`` read them, checked against
the ``spirit`` Python package: the energy of random spin states agrees to Spirit's float32
round-off) into a :class:`~spinlat.State` and a spinlat potential.

Spirit's conventions (``core/docs/Input.md``; Spirit's defaults in brackets):

- Geometry: ``bravais_lattice`` (sc, bcc, fcc, hex2d = hex2d60, hex2d120), or ``bravais_vectors``
  (three rows a, b, c) or ``bravais_matrix`` (three rows, the vectors as columns) [sc], Cartesian,
  scaled by ``lattice_constant`` [1] (Å); ``basis`` (next line: the number of atoms, then one line
  per atom in units of the Bravais vectors) or ``basis_file`` [one atom at 0];
  ``n_basis_cells n1 n2 n3`` [100 100 1]; ``mu_s`` one moment per basis atom in μB (missing
  values take the first, as Spirit) [1].
- Site order: Spirit's, ``row = ib + nb·(i + n1·(j + n2·k))`` (basis atom fastest), so that the
  OVF files Spirit writes for this system read row by row (:func:`spinlat.io.read_ovf` with
  ``repeat=None``) and ``spirit.geometry.get_positions`` gives the same positions.
- Hamiltonian (``hamiltonian heisenberg_neighbours`` [default] or ``heisenberg_pairs``):

      E = − Σ_i μ_i B·n_i − Σ_i K (K̂·n_i)² − Σ_<ij> J_ij n_i·n_j − Σ_<ij> D_ij·(n_i × n_j)

  with ⟨ij⟩ unique pairs (each once: spinlat's :class:`~spinlat.potentials.Heisenberg`
  convention, J > 0 ferromagnetic), J, D and K in meV (here eV: ÷1000), B in tesla
  (``external_field_magnitude`` × the normalised ``external_field_normal``).
  ``boundary_conditions a b c`` (1 periodic, 0 open) [0 0 0]: pairs that leave the box along an
  open direction are dropped, as in Spirit.
- ``heisenberg_pairs``: ``n_interaction_pairs N`` followed by a header line and N rows, or
  ``interaction_pairs_file FILE`` (the header at its top, optionally after ``n_interaction_pairs``);
  columns by name in any order: ``i j da db dc`` (basis atoms and the cell translation of j),
  ``Jij``, ``Dijx Dijy Dijz`` (Cartesian) and optionally ``Dij`` (then the vector is normalised
  and scaled by Dij). Repeated pairs add up, a pair given reversed (j, i, −t) adds its J and
  −D (Spirit's rules). A pair whose translation exceeds the box, |t_k| > n_k, gives no bond
  (Spirit drops it; |t_k| = n_k, the atom's own image along a periodic direction, counts).
- ``heisenberg_neighbours``: ``n_shells_exchange`` with ``jij``, ``n_shells_dmi`` with ``dij``
  and ``dm_chirality`` [1] (±1 Bloch: D r̂_ij; ±2 Néel: D r̂_ij × ẑ; a negative chirality flips
  D) over neighbour shells (one basis atom only). As in Spirit, the shells are the distinct
  bond lengths, nearest first, of the lattice translations t that fit the box, |t_k| < n_k
  along every direction: a periodic direction of one cell gives no bonds (not bonds of an atom
  to its own image), and in a box of 3 × 1 cells the second shell is 2a. Where every n_k
  exceeds the shells' reach this is :meth:`~spinlat.potentials.Heisenberg.from_neighbors`.
- Anisotropy: ``anisotropy_magnitude K`` with ``anisotropy_normal`` for every basis atom, or
  ``n_anisotropy`` / ``anisotropy_file`` rows ``i Kx Ky Kz [K] [K4]`` (per basis atom; without a K
  column the vector's length is K). Written as on-site tensors K K̂K̂ᵀ of the Heisenberg.
- Cubic anisotropy: ``cubic_anisotropy_magnitude K4`` (every basis atom) or the ``K4`` column:
  Spirit's E = −(K4/2) Σ_i (n_x⁴ + n_y⁴ + n_z⁴) (Cartesian axes; ``Hamiltonian_Heisenberg.cpp``,
  checked against the spirit package) = K4 (n_x²n_y² + n_y²n_z² + n_z²n_x²) − K4/2, read as a
  :class:`~spinlat.potentials.CubicAnisotropy` with K1 = K4 (one value per element: basis atoms
  of one element with different K4 are refused, pass ``elements``) and the constant −K4/2 as an
  isotropic on-site tensor, so that the energy is Spirit's.
- Quadruplets: ``n_interaction_quadruplets`` / ``interaction_quadruplets_file``, columns
  ``i j da_j db_j dc_j k da_k db_k dc_k l da_l db_l dc_l Q`` (any order), Spirit's
  E = −Σ Q (n_i·n_j)(n_k·n_l) (meV per unique quadruplet, one per cell; checked with the spirit
  package, with either Hamiltonian): a :class:`~spinlat.potentials.Quadruplet` on the system.

Terms spinlat has no term for are refused (FileFormatError naming the key and its line) unless
``drop`` names them: ``"ddi"`` (``ddi_method`` other than none: dipole-dipole), ``"pinning"``
(pinned spins);
the energies then differ from Spirit's by these terms. Always refused: ``hamiltonian gaussian``,
disorder (``atom_types``) and defects, ``Dija Dijb Dijc`` pair columns and ``Ka Kb Kc``
anisotropy columns (Spirit 2.2 reads the first as Cartesian, unlike its documentation, and
projects the second onto the Bravais vectors: give Cartesian ``Dijx Dijy Dijz`` / ``Kx Ky Kz``).
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np

from .. import units, validation
from ..errors import FileFormatError
from ..exchange_tensors import dmi_matrix
from .codes import add_pair, dropped_terms, element_numbers, file_text, quartic_cubic, refuse_unread
from ..keywords import refuse_other_names

#: Spirit terms spinlat has no term for, which ``drop`` may leave out: name → what it is
DROPPABLE = {"ddi": "dipole-dipole interaction (ddi_method)", "pinning": "pinned spins"}

#: Spirit's named Bravais lattices (core/src/data/Geometry.cpp), rows a, b, c
_BRAVAIS = {
    "sc": [[1, 0, 0], [0, 1, 0], [0, 0, 1]],
    "fcc": [[0.5, 0, 0.5], [0.5, 0.5, 0], [0, 0.5, 0.5]],
    "bcc": [[0.5, 0.5, -0.5], [-0.5, 0.5, -0.5], [0.5, -0.5, -0.5]],
    "hex2d": [[0.5 * math.sqrt(3), -0.5, 0], [0.5 * math.sqrt(3), 0.5, 0], [0, 0, 1]],
    "hex2d60": [[0.5 * math.sqrt(3), -0.5, 0], [0.5 * math.sqrt(3), 0.5, 0], [0, 0, 1]],
    "hex2d120": [[0.5, -0.5 * math.sqrt(3), 0], [0.5, 0.5 * math.sqrt(3), 0], [0, 0, 1]],
}


class _Lines:
    """The lines of a Spirit input file as Spirit's Filter_File_Handle sees them: ``|`` and
    ``+`` removed, everything after ``#`` dropped, blank lines skipped; keywords are the first
    word of a line, compared without case."""

    def __init__(self, path):
        self.path = Path(path)
        self.rows = []  # (line number, words)
        for ln, line in enumerate(file_text(self.path).splitlines(), 1):
            line = line.split("#", 1)[0].replace("|", " ").replace("+", " ")
            words = line.split()
            if words:
                self.rows.append((ln, words))

    def find(self, key):
        """Index into rows of the first line starting with ``key``, or None."""
        key = key.lower()
        return next((k for k, (_, w) in enumerate(self.rows) if w[0].lower() == key), None)

    def has(self, key):
        return self.find(key) is not None

    def values(self, key, n, kind=float, default=None, at_least=None):
        """The ``n`` values after ``key`` on its line (``at_least``: fewer allowed, padded by the
        caller); ``default`` when the key is absent."""
        k = self.find(key)
        if k is None:
            return default
        ln, words = self.rows[k]
        vals = words[1:1 + n]
        if len(vals) < (n if at_least is None else at_least):
            raise FileFormatError(f"{self.path}: line {ln}: {key} needs {n} value(s), got {len(vals)}")
        return [self.number(v, kind, ln, key) for v in vals]

    def number(self, text, kind, ln, what):
        try:
            return kind(text) if kind is float else int(text)
        except ValueError:
            raise FileFormatError(f"{self.path}: line {ln}: {what}: expected {'an integer' if kind is int else 'a number'}"
                                  f", got {text!r}") from None

    def word(self, key, default=None):
        k = self.find(key)
        if k is None:
            return default
        ln, words = self.rows[k]
        if len(words) < 2:
            raise FileFormatError(f"{self.path}: line {ln}: {key} needs a value")
        return words[1]

    def block(self, k, n, width, what):
        """``n`` rows of ``width`` numbers after row index ``k``."""
        rows = self.rows[k + 1:k + 1 + n]
        if len(rows) < n:
            raise FileFormatError(f"{self.path}: {what} (line {self.rows[k][0]}) needs {n} row(s), found {len(rows)}")
        out = []
        for ln, words in rows:
            if len(words) < width:
                raise FileFormatError(f"{self.path}: line {ln}: {what} row needs {width} numbers, got {' '.join(words)!r}")
            out.append([self.number(v, float, ln, what) for v in words[:width]])
        return np.array(out, dtype=float)


def _other_file(cfg, name, what):
    """A file the config names: relative to the config's folder, else to the working directory
    (where Spirit opens it)."""
    p = Path(name)
    for cand in ([p] if p.is_absolute() else [cfg.parent / p, p]):
        if cand.is_file():
            return cand
    raise FileFormatError(f"{cfg}: {what} {name!r} not found (looked beside the config and in the working directory)")


def _table(lines, start, count, what, allowed, refused):
    """Rows of a Spirit column table: the header is the row ``start``, then ``count`` rows (None:
    to the end). Returns (header names lower-case, list of (line, {name: text}))."""
    if start >= len(lines.rows):
        raise FileFormatError(f"{lines.path}: {what}: the header line of column names is missing")
    ln, header = lines.rows[start]
    names = [h.lower() for h in header]
    bad = [h for h in names if h in refused]
    if bad:
        raise FileFormatError(f"{lines.path}: line {ln}: {what} column(s) {bad}: {refused[bad[0]]}")
    unknown = [h for h in names if h not in allowed]
    if unknown or len(set(names)) != len(names):
        raise FileFormatError(f"{lines.path}: line {ln}: {what}: expected a header of column names among "
                              f"{sorted(allowed)} (each once), got {' '.join(header)!r}")
    rows = lines.rows[start + 1:] if count is None else lines.rows[start + 1:start + 1 + count]
    if count is not None and len(rows) < count:
        raise FileFormatError(f"{lines.path}: {what} (line {ln}) announces {count} rows, found {len(rows)}")
    out = []
    for rln, words in rows:
        if len(words) < len(names):
            raise FileFormatError(f"{lines.path}: line {rln}: {what} row needs {len(names)} values "
                                  f"({' '.join(header)}), got {' '.join(words)!r}")
        out.append((rln, dict(zip(names, words))))
    return names, out


_DIJ_ABC = ("Spirit 2.2 reads Dija Dijb Dijc as Cartesian components (against its documentation); give the DMI "
            "vector as Dijx Dijy Dijz")
_K_ABC = ("Spirit 2.2 projects Ka Kb Kc onto the Bravais vectors (against its documentation); give the axis as "
          "Kx Ky Kz")


def _table_source(lines, count_key, file_key, what):
    """(lines, header row index, row count or None) of a table given inline after ``count_key``
    or in the file named by ``file_key``; None when neither is present."""
    k = lines.find(count_key)
    if k is None:
        name = lines.word(file_key)
        if name is None:
            return None
        lines = _Lines(_other_file(lines.path, name, file_key))
        k = lines.find(count_key)
        if k is None:
            return lines, 0, None
    n = lines.values(count_key, 1, int)[0]
    if n < 0:
        raise FileFormatError(f"{lines.path}: line {lines.rows[k][0]}: {count_key} must be >= 0, got {n}")
    return lines, k + 1, n


def _pairs(lines, nb):
    """Spirit's unique pairs: list of (i, j, (da, db, dc), J meV, D (3,) meV)."""
    src = _table_source(lines, "n_interaction_pairs", "interaction_pairs_file", "pairs")
    if src is None:
        return []
    tl, start, count = src
    if count == 0:
        return []
    allowed = {"i", "j", "da", "db", "dc", "jij", "dij", "dijx", "dijy", "dijz"}
    names, rows = _table(tl, start, count, "interaction pairs", allowed,
                         {"dija": _DIJ_ABC, "dijb": _DIJ_ABC, "dijc": _DIJ_ABC})
    dvec = all(c in names for c in ("dijx", "dijy", "dijz"))
    if any(c in names for c in ("dijx", "dijy", "dijz")) and not dvec:
        raise FileFormatError(f"{tl.path}: interaction pairs: Dijx, Dijy and Dijz go together")
    exch, dmi = {}, {}
    for ln, row in rows:
        def num(name, kind=float, default=0):
            return tl.number(row[name], kind, ln, name) if name in row else default
        i, j = num("i", int), num("j", int)
        t = (num("da", int), num("db", int), num("dc", int))
        if not (0 <= i < nb and 0 <= j < nb):
            raise FileFormatError(f"{tl.path}: line {ln}: pair basis indices i={i}, j={j} outside 0..{nb - 1}")
        J = num("jij")
        D = np.array([num("dijx"), num("dijy"), num("dijz")]) if dvec else np.zeros(3)
        norm = float(np.linalg.norm(D))
        if norm:
            D = D / norm
        dij = num("dij") if "dij" in row else norm
        D = dij * D
        if J != 0:
            add_pair(exch, i, j, t, J)
        if dij != 0:  # D is a pseudo-vector of the ordered pair: -D for (j, i)
            add_pair(dmi, i, j, t, D, reverse=np.negative)
    merged = {key: [J, np.zeros(3)] for key, J in exch.items()}
    for (i, j, t), D in dmi.items():
        rev = (j, i, tuple(-x for x in t))
        if (i, j, t) not in merged and rev in merged:  # one pair: its DMI as seen from (j, i)
            merged[rev][1] = merged[rev][1] - D
        else:
            merged.setdefault((i, j, t), [0.0, np.zeros(3)])[1] += D
    return [(i, j, t, J, D) for (i, j, t), (J, D) in merged.items()]


_QUAD_COLUMNS = ("i", "j", "da_j", "db_j", "dc_j", "k", "da_k", "db_k", "dc_k", "l", "da_l", "db_l", "dc_l", "q")


def _quadruplets(lines, nb, n_cells, pbc):
    """Spirit's quadruplets on the whole system: (quads (Q, 4) atom indices, K (Q,) eV), one per
    cell, each partner's cell wrapped along periodic directions, dropped where one leaves the box
    along an open direction or a translation exceeds the box (|t_k| > n_k), as for pairs."""
    src = _table_source(lines, "n_interaction_quadruplets", "interaction_quadruplets_file", "quadruplets")
    if src is None or src[2] == 0:
        return np.zeros((0, 4), np.int64), np.zeros(0)
    tl, start, count = src
    names, rows = _table(tl, start, count, "interaction quadruplets", set(_QUAD_COLUMNS), {})
    missing = [c for c in _QUAD_COLUMNS if c not in names]
    if missing:
        raise FileFormatError(f"{tl.path}: interaction quadruplets: column(s) {missing} missing (Spirit's columns: "
                              f"{' '.join(_QUAD_COLUMNS)})")
    grid = _CellGrid(n_cells, nb, pbc)
    quads, K = [], []
    for ln, row in rows:
        v = {c: tl.number(row[c], float if c == "q" else int, ln, c) for c in _QUAD_COLUMNS}
        basis = [v["i"], v["j"], v["k"], v["l"]]
        if not all(0 <= b < nb for b in basis):
            raise FileFormatError(f"{tl.path}: line {ln}: quadruplet basis indices {basis} outside 0..{nb - 1}")
        shifts = [np.zeros(3, np.int64)] + [np.array([v[f"d{a}_{x}"] for a in "abc"]) for x in "jkl"]
        if v["q"] == 0 or not all(grid.reaches(t) for t in shifts):
            continue
        keep = np.ones(grid.size, dtype=bool)
        idx = []
        for b, t in zip(basis, shifts):
            inside, _, index = grid.partner(b, t)
            keep &= inside
            idx.append(index)
        quads.append(np.stack(idx, axis=1)[keep])
        K.append(np.full(int(keep.sum()), v["q"] * units.MEV))
    if not quads:
        return np.zeros((0, 4), np.int64), np.zeros(0)
    return np.concatenate(quads), np.concatenate(K)


def _anisotropy(lines, nb):
    """[(basis atom, K meV, unit axis)] and the cubic constant K4 (meV) of each basis atom."""
    src = _table_source(lines, "n_anisotropy", "anisotropy_file", "anisotropy")
    k4 = np.zeros(nb)
    if src is None:
        K = lines.values("anisotropy_magnitude", 1, default=[0.0])[0]
        axis = np.array(lines.values("anisotropy_normal", 3, default=[0.0, 0.0, 1.0]))
        k4[:] = lines.values("cubic_anisotropy_magnitude", 1, default=[0.0])[0]
        if K == 0:
            return [], k4
        n = np.linalg.norm(axis)
        if not n:
            raise FileFormatError(f"{lines.path}: anisotropy_normal is zero")
        return [(ib, K, axis / n) for ib in range(nb)], k4
    ignored = [k for k in ("anisotropy_magnitude", "anisotropy_normal", "cubic_anisotropy_magnitude") if lines.has(k)]
    if ignored:
        warnings.warn(f"{lines.path}: line {lines.rows[lines.find(ignored[0])][0]}: {', '.join(ignored)} ignored: an "
                      "anisotropy table (n_anisotropy / anisotropy_file) is given, and Spirit then takes the "
                      "anisotropy from the table only (so does this reader); put K and K4 in the table",
                      UserWarning, stacklevel=4)
    tl, start, count = src
    if count == 0:
        return [], k4
    names, rows = _table(tl, start, count, "anisotropy", {"i", "k", "kx", "ky", "kz", "k4"},
                         {"ka": _K_ABC, "kb": _K_ABC, "kc": _K_ABC})
    out = []
    for ln, row in rows:
        i = tl.number(row.get("i", "0"), int, ln, "i")
        if not 0 <= i < nb:
            raise FileFormatError(f"{tl.path}: line {ln}: anisotropy basis index i={i} outside 0..{nb - 1}")
        v = np.array([tl.number(row.get(c, "0"), float, ln, c) for c in ("kx", "ky", "kz")])
        n = float(np.linalg.norm(v))
        if "k" in row:
            K = tl.number(row["k"], float, ln, "K")
            v = v / n if n else np.array([0.0, 0.0, 1.0])
        else:
            K, v = n, (v / n if n else v)
        if "k4" in row:
            k4[i] += tl.number(row["k4"], float, ln, "K4")
        if K != 0:
            out.append((i, K, v))
    return out, k4


#: first words that mark a Spirit input file (AtomEye's .cfg, which ASE reads, has none of them)
_MARKERS = ("bravais_lattice", "bravais_vectors", "bravais_matrix", "n_basis_cells", "hamiltonian", "mu_s",
            "boundary_conditions", "basis_file", "interaction_pairs_file", "n_interaction_pairs")


def is_spirit_cfg(path, format=None) -> bool:
    """Whether ``path`` is a Spirit input file: ``format`` "spirit", or (``format`` None) a ``.cfg``
    with a line starting with one of Spirit's geometry or Hamiltonian keywords (``n_basis_cells``,
    ``bravais_lattice``, ``mu_s``, ``hamiltonian``, ...). ASE would read it as an AtomEye CFG
    file and fail on the first keyword."""
    if format is not None:
        return format == "spirit"
    p = Path(path)
    if p.suffix.lower() != ".cfg":
        return False
    try:
        with open(p, "rb") as fh:
            text = fh.read(1 << 16).decode(errors="replace")
    except OSError:
        return False
    return any(line.split() and line.split()[0].lower() in _MARKERS for line in text.splitlines())


@refuse_other_names()
def read_spirit_cfg(path, elements=None, *, drop=()):
    """Read a Spirit input file: ``(state, potential)``.

    Parameters
    ----------
    path : Spirit ``input.cfg`` (module docstring for the keywords read and their conventions).
        Files it names (``basis_file``, ``interaction_pairs_file``, ``anisotropy_file``) are
        looked up beside it, then in the working directory.
    elements : element of the atoms (Spirit's files name none): one symbol for all, or one per
        basis atom; default Fe for every atom. Masses (lattice dynamics) depend on it, and the
        cubic anisotropy takes one K4 per element.
    drop : names of terms of the file spinlat has no term for, to leave out on purpose: any of
        "ddi", "pinning", or "all" (module docstring). Without it such a term
        is an error.

    Returns
    -------
    state : :class:`~spinlat.State` of the whole simulated system (``n_basis_cells`` cells,
        Spirit's site order), periodic along the ``boundary_conditions`` directions, moments
        ``mu_s`` (μB), spins +z (a Spirit input holds no spin configuration: read one with
        :func:`spinlat.io.read_ovf` ``(file, state)``).
    potential : a :class:`~spinlat.potentials.Heisenberg` whose template is that system (pair
        tensors J·1 + [D] and on-site anisotropy tensors, eV), plus a
        :class:`~spinlat.potentials.CubicAnisotropy` when K4 is non-zero, a
        :class:`~spinlat.potentials.Quadruplet` for quadruplets and a
        :class:`~spinlat.potentials.Zeeman` when the field is non-zero. ``potential.compute(state)``
        gives Spirit's energy (``spirit.system.get_energy``, meV) in eV.

    Raises FileFormatError naming the file and line for malformed or unsupported content and for
    terms spinlat has no term for that ``drop`` does not name, InputError for bad ``elements`` or
    ``drop``.
    """
    from ..potentials import Heisenberg, Quadruplet, Zeeman
    from ..state import State

    path = Path(validation.existing_file(path, "read_spirit_cfg path", "Spirit input file"))
    lines = _Lines(path)
    # ------------------------------------------------------------------ geometry
    for key, why in (("atom_types", "disorder (atom_types)"), ("n_defects", "defects"),
                     ("defects_from_file", "defects")):
        # a count of 0 (Spirit's input template) holds none
        if lines.has(key) and (key == "defects_from_file" or lines.values(key, 1, int)[0] != 0):
            raise FileFormatError(f"{path}: line {lines.rows[lines.find(key)][0]}: {why} are not supported by "
                                  "spinlat's reader: give an ordered basis")
    lc = lines.values("lattice_constant", 1, default=[1.0])[0]
    name = lines.word("bravais_lattice")
    if name is not None:
        if name.lower() not in _BRAVAIS:
            raise FileFormatError(f"{path}: bravais_lattice {name!r}: Spirit knows {sorted(_BRAVAIS)} (other "
                                  "names it reads as sc with a warning): give bravais_vectors")
        bravais = np.array(_BRAVAIS[name.lower()], dtype=float)
    elif lines.has("bravais_vectors"):
        bravais = lines.block(lines.find("bravais_vectors"), 3, 3, "bravais_vectors")
    elif lines.has("bravais_matrix"):
        bravais = lines.block(lines.find("bravais_matrix"), 3, 3, "bravais_matrix").T
    else:
        bravais = np.eye(3)
    bravais = lc * bravais
    if abs(np.linalg.det(bravais)) < 1e-12:
        raise FileFormatError(f"{path}: the Bravais vectors (× lattice_constant {lc}) are linearly dependent")
    n_cells = lines.values("n_basis_cells", 3, int, default=[100, 100, 1])
    if min(n_cells) < 1:
        raise FileFormatError(f"{path}: n_basis_cells must be >= 1, got {n_cells}")
    basis = np.zeros((1, 3))
    bl = lines
    bname = lines.word("basis_file")
    if bname is not None:
        bl = _Lines(_other_file(path, bname, "basis_file"))
    k = bl.find("basis") if bname is not None or lines.has("basis") else None
    if k is not None:
        if k + 1 >= len(bl.rows):
            raise FileFormatError(f"{bl.path}: basis: the number of atoms is missing")
        ln, words = bl.rows[k + 1]
        nb = bl.number(words[0], int, ln, "basis (number of atoms)")
        if nb < 1:
            raise FileFormatError(f"{bl.path}: line {ln}: the basis needs at least one atom, got {nb}")
        basis = bl.block(k + 1, nb, 3, "basis")
    nb = len(basis)
    mu = lines.values("mu_s", nb, at_least=1)
    if mu is None:
        warnings.warn(f"{path}: no mu_s: every moment is 1 μB (Spirit's default)", UserWarning, stacklevel=3)
        mu = [1.0]
    mu = np.array(mu + [mu[0]] * (nb - len(mu)), dtype=float)
    if np.any(mu < 0):
        raise FileFormatError(f"{path}: mu_s must be >= 0, got {mu.tolist()}")
    numbers = _basis_numbers(elements, nb)
    n1, n2, n3 = n_cells
    ib, ci, cj, ck = np.meshgrid(np.arange(nb), np.arange(n1), np.arange(n2), np.arange(n3), indexing="ij")
    # Spirit's order: basis atom fastest, then a, b, c
    order = np.argsort((ib + nb * (ci + n1 * (cj + n2 * ck))).ravel())
    ib, cells = ib.ravel()[order], np.stack([ci.ravel(), cj.ravel(), ck.ravel()], axis=1)[order]
    positions = basis[ib] @ bravais + cells @ bravais
    cell = np.array(n_cells, dtype=float)[:, None] * bravais
    bc = lines.values("boundary_conditions", 3, int, default=[0, 0, 0])
    pbc = np.array([b != 0 for b in bc])
    state = State(positions, numbers[ib], cell=cell, pbc=pbc, moments=mu[ib], validate=False)

    # ------------------------------------------------------------------ Hamiltonian
    kind = (lines.word("hamiltonian", "heisenberg_neighbours")).lower()
    if kind not in ("heisenberg_neighbours", "heisenberg_pairs"):
        raise FileFormatError(f"{path}: hamiltonian {kind!r}: spinlat reads heisenberg_neighbours and "
                              "heisenberg_pairs")
    pairs_given = lines.has("n_interaction_pairs") or lines.has("interaction_pairs_file")
    shells_given = any(lines.values(k, 1, int, default=[0])[0] > 0 for k in ("n_shells_exchange", "n_shells_dmi"))
    if kind == "heisenberg_neighbours" and pairs_given:
        warnings.warn(f"{path}: interaction pairs are given but the Hamiltonian is heisenberg_neighbours (Spirit's "
                      "default without a hamiltonian keyword): Spirit ignores the pairs, and so does this reader; "
                      "set hamiltonian heisenberg_pairs to use them", UserWarning, stacklevel=3)
    if kind == "heisenberg_pairs" and shells_given:
        warnings.warn(f"{path}: neighbour shells (n_shells_exchange/n_shells_dmi) are given but the Hamiltonian is "
                      "heisenberg_pairs: Spirit ignores the shells, and so does this reader", UserWarning, stacklevel=3)
    found = []
    ddi = (lines.word("ddi_method", "none")).lower()
    if ddi != "none":
        found.append(("ddi", f"line {lines.rows[lines.find('ddi_method')][0]}",
                      f"ddi_method {ddi} (dipole-dipole interaction)"))
    def given(key):  # present, and not a count of 0 (Spirit's input template writes such zeros)
        return lines.has(key) and lines.word(key) not in ("0",)

    pin = [k for k in ("pinning_cell", "n_pinned", "pinned_from_file") if given(k)]
    pin += [f"pin_n{a}{s}" for a in "abc" for s in ("", "_left", "_right") if given(f"pin_n{a}{s}")]
    if pin:
        found.append(("pinning", f"line {lines.rows[lines.find(pin[0])][0]}", f"{pin[0]} (pinned spins)"))
    refuse_unread(found, dropped_terms(drop, DROPPABLE, "read_spirit_cfg drop"), path, "Spirit")
    aniso, k4 = _anisotropy(lines, nb)
    B = lines.values("external_field_magnitude", 1, default=[0.0])[0]
    bn = np.array(lines.values("external_field_normal", 3, default=[0.0, 0.0, 1.0]))
    bn = bn / np.linalg.norm(bn) if np.linalg.norm(bn) >= 1e-8 else np.array([0.0, 0.0, 1.0])

    if kind == "heisenberg_pairs":
        pairs = _pairs(lines, nb)
        pairs = [(i, j, t, (Jm * np.eye(3) + dmi_matrix(np.asarray(D, dtype=float))) * units.MEV)
                 for i, j, t, Jm, D in pairs]
        I, Jx, R, T = _expand_pairs(pairs, n_cells, nb, pbc)
    else:
        ns_j = lines.values("n_shells_exchange", 1, int, default=[0])[0]
        ns_d = lines.values("n_shells_dmi", 1, int, default=[0])[0]
        jij = lines.values("jij", ns_j, default=[0.0] * ns_j) if ns_j else []
        dij = lines.values("dij", ns_d, default=[0.0] * ns_d) if ns_d else []
        chir = lines.values("dm_chirality", 1, int, default=[1])[0]
        if chir not in (1, -1, 2, -2):
            raise FileFormatError(f"{path}: dm_chirality must be ±1 (Bloch) or ±2 (Néel), got {chir}")
        if nb > 1 and (any(jij) or any(dij)):
            raise FileFormatError(f"{path}: heisenberg_neighbours with a basis of {nb} atoms (Spirit's shells are "
                                  "per basis atom): spinlat's reader takes neighbour shells for one basis atom; "
                                  "give the pairs (hamiltonian heisenberg_pairs)")
        # Spirit's chirality 1: D r̂ (Bloch); 2: D r̂ × ẑ = −ẑ × r̂ (Néel); negative: −D
        sign = (1.0 if chir > 0 else -1.0) * (1.0 if abs(chir) == 1 else -1.0)
        # Spirit's shells and bonds: the lattice translations t with |t_k| < n_k along every
        # direction (checked with the spirit package: a periodic direction of one cell gives no
        # bonds, not bonds to the atom's own image; with 3 cells the second shell is 2a, not a√2)
        Jm = np.concatenate([jij, np.zeros(max(ns_j, ns_d) - ns_j)]) * units.MEV
        Dm = sign * np.concatenate([dij, np.zeros(max(ns_j, ns_d) - ns_d)]) * units.MEV
        pairs = []
        for t, k in _shell_translations(bravais, n_cells, len(Jm)):
            rhat = t @ bravais / np.linalg.norm(t @ bravais)
            dvec = rhat if abs(chir) == 1 else np.cross([0.0, 0.0, 1.0], rhat)
            pairs.append((0, 0, tuple(int(x) for x in t), Jm[k] * np.eye(3) + dmi_matrix(Dm[k] * dvec)))
        I, Jx, R, T = _expand_pairs(pairs, n_cells, nb, pbc)
    if aniso:
        atoms = np.arange(len(state))
        extra = [(atoms[ib == b], K * units.MEV * np.outer(v, v)) for b, K, v in aniso]
        I = np.concatenate([I] + [a for a, _ in extra])
        Jx = np.concatenate([Jx] + [a for a, _ in extra])
        R = np.concatenate([R] + [np.zeros((len(a), 3), dtype=np.int64) for a, _ in extra])
        T = np.concatenate([T] + [np.broadcast_to(t, (len(a), 3, 3)) for a, t in extra])
    # Spirit: −(K4/2) Σ_a s_a⁴ (codes.quartic_cubic)
    cubic, atoms, onsite = quartic_cubic(state.numbers, k4[ib] * units.MEV, f"{path}: cubic anisotropy")
    if len(atoms):
        I, Jx = np.concatenate([I, atoms]), np.concatenate([Jx, atoms])
        R = np.concatenate([R, np.zeros((len(atoms), 3), dtype=np.int64)])
        T = np.concatenate([T, onsite])
    ham = Heisenberg(cell, positions, state.numbers, I, Jx, R, T, pbc=pbc)
    ham.source = str(path)
    potential = ham if cubic is None else ham + cubic
    quads, Kq = _quadruplets(lines, nb, n_cells, pbc)  # with either Hamiltonian (checked with the spirit package)
    if len(quads):
        potential = potential + Quadruplet(state.numbers, quads, Kq)
    potential = potential if B == 0 else potential + Zeeman(B * bn)
    return state, potential


def spirit_input_files(path) -> list:
    """The files a Spirit input reads: ``path`` and the ``basis_file``, ``interaction_pairs_file``,
    ``anisotropy_file`` and ``interaction_quadruplets_file`` it names (found as :func:`read_spirit_cfg` finds them), as Paths.
    Raises FileFormatError for a named file that does not exist."""
    path = Path(validation.existing_file(path, "spirit_input_files path", "Spirit input file"))
    lines = _Lines(path)
    out = [path]
    for key in ("basis_file", "interaction_pairs_file", "anisotropy_file", "interaction_quadruplets_file"):
        name = lines.word(key)
        if name is not None:
            out.append(_other_file(path, name, key))
    return out


def _basis_numbers(elements, nb):
    if elements is None:
        return np.full(nb, 26)
    return element_numbers(elements, np.arange(nb), f"basis atom ({nb})", exact=nb)


def _shell_translations(bravais, n_cells, nshell, tol=1e-3):
    """[(t (3,) int, shell index)] of Spirit's neighbour shells of one basis atom: the distinct
    lengths |t·bravais| (Å, grouped within ``tol``), nearest first, of the translations t ≠ 0 with
    |t_k| < n_k, each bond once (t, not −t); fewer shells when the box holds fewer."""
    n = np.asarray(n_cells)
    spacing = 1.0 / np.linalg.norm(np.linalg.inv(bravais), axis=0)  # distance between lattice planes
    L = 1
    while True:
        lim = np.minimum(L, n - 1)
        grid = np.stack(np.meshgrid(*[np.arange(-m, m + 1) for m in lim], indexing="ij"), axis=-1).reshape(-1, 3)
        nz = grid[np.any(grid != 0, axis=1)]
        # each bond once: the first non-zero component positive
        lead = nz[np.arange(len(nz)), np.argmax(nz != 0, axis=1)]
        t = nz[lead > 0]
        d = np.linalg.norm(t @ bravais, axis=1)
        open_dirs = lim < n - 1
        covered = float(np.min((L + 1) * spacing[open_dirs])) if np.any(open_dirs) else np.inf
        radii = []
        for r in np.sort(d):
            if r < covered - tol and (not radii or r - radii[-1] > tol):
                radii.append(r)
        if len(radii) >= nshell or not np.any(open_dirs):
            break
        L += 1
    radii = np.array(radii[:nshell])
    if not len(radii):
        return []
    k = np.argmin(np.abs(d[:, None] - radii[None, :]), axis=1)
    ok = np.abs(d - radii[k]) <= tol
    return list(zip(t[ok], k[ok]))


class _CellGrid:
    """The n1 × n2 × n3 cells of Spirit's system (``n_cells``; ``nb`` basis atoms each, atom index
    b + nb (c1 + n1 (c2 + n2 c3)), Spirit's order) for placing an interaction's partners: one copy
    per cell, each partner's cell wrapped along periodic directions (``pbc``), the copy dropped
    where a partner leaves the box along an open one. Shared by pairs and quadruplets."""

    def __init__(self, n_cells, nb, pbc):
        self.n, self.nb, self.pbc = np.array(n_cells), nb, pbc
        ci, cj, ck = np.meshgrid(*(np.arange(m) for m in self.n), indexing="ij")
        self.cells = np.stack([ci.ravel(), cj.ravel(), ck.ravel()], axis=1)
        self.size = len(self.cells)

    def reaches(self, t) -> bool:
        """False for a translation ``t`` with |t_k| > n_k along a direction: Spirit drops such an
        interaction everywhere (t_k = n_k, the atom's own image, is kept; checked with the spirit
        package)."""
        return not np.any(np.abs(np.asarray(t)) > self.n)

    def partner(self, b, t):
        """(inside (C,) bool, wraps (C, 3), atom index (C,)) of basis atom ``b`` in the cell
        translated by ``t`` from each cell: whether it stays in the box along the open
        directions, the periodic wraps, its index once wrapped."""
        n = self.n
        target = self.cells + np.asarray(t)
        inside = np.all(self.pbc | ((target >= 0) & (target < n)), axis=1)
        wraps = np.floor_divide(target, n)
        c = target - wraps * n
        return inside, wraps, b + self.nb * (c[:, 0] + n[0] * (c[:, 1] + n[1] * c[:, 2]))


def _expand_pairs(pairs, n_cells, nb, pbc):
    """The Heisenberg pairs (i, j, R, tensor eV) of Spirit's unique pairs (i, j, cell translation t,
    tensor eV) on the whole system: one per cell, the partner's cell wrapped along periodic
    directions (R counts the wraps), the pair dropped where it leaves the box along an open one,
    and everywhere when |t_k| > n_k along a direction (as Spirit: t_k = n_k, the atom's own
    image, is kept)."""
    grid = _CellGrid(n_cells, nb, pbc)
    I, J, R, T = [], [], [], []
    for i, j, t, tensor in pairs:
        if not grid.reaches(t):
            continue
        keep, wraps, index = grid.partner(j, t)
        I.append(grid.partner(i, (0, 0, 0))[2][keep])
        J.append(index[keep])
        R.append(wraps[keep])
        T.append(np.broadcast_to(tensor, (int(keep.sum()), 3, 3)))
    if not I:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 3), np.int64), np.zeros((0, 3, 3))
    return np.concatenate(I), np.concatenate(J), np.concatenate(R), np.concatenate(T)


__all__ = ["read_spirit_cfg", "is_spirit_cfg", "spirit_input_files", "DROPPABLE"]
