"""UppASD input files (``inpsd.dat`` with ``posfile``, ``momfile`` and the exchange ``jfile``).

:func:`read_uppasd` reads the unit cell, the moments, the isotropic exchange, the DM interaction
and the anisotropy of an UppASD (Uppsala Atomistic Spin Dynamics) input into a
:class:`~spinlat.State` and a :class:`~spinlat.potentials.Heisenberg` (plus cubic anisotropy and
Zeeman terms), following UppASD's own reading (``source/Input/
inputhandler.f90``, ``inputhandler_ext.f90``, ``Hamiltonian/neighbourmap.f90``,
``hamiltonianinit.f90`` and ``energy.f90`` of UppASD/UppASD):

- ``jij_scale``, ``dm_scale``, ``sa_scale`` multiply those couplings, as in UppASD;
  ``scalefac`` ≠ 1 is refused.
- ``cell`` (three rows, units of ``alat``; ``alat`` in metres, lengths here in Å = value ×
  alat × 1e10), ``ncell n1 n2 n3``, ``BC`` (P periodic, 0 vacuum), ``Sym`` (0 none, 1 cubic: the
  48 signed permutations applied to every bond vector, 2 cubic in the xy plane, 3 hexagonal:
  UppASD's operations), ``posfiletype`` (C [default]: Cartesian
  in units of alat; D: direct, in units of the cell vectors), ``maptype`` (1 [default]: bond
  vectors in the coordinates of the posfile; 2: ``n1 n2 n3`` lattice translations from atom
  jsite), ``posfile``, ``momfile``, ``exchange`` (paths relative to the inpsd.dat's folder),
  ``hfield`` (tesla).
- posfile rows ``isite itype x y z``; momfile rows ``isite ichem |m| ex ey ez`` (μB, direction
  normalised; further columns ignored); jfile rows ``isite jsite rx ry rz J`` with J in mRy.
  A jfile row gives the coupling of every atom of isite's *type* with the atom at the bond
  vector (UppASD keys couplings by type; a vector given again for a type replaces the earlier J,
  as UppASD does).
- Energy (UppASD's ``calc_energy``: −½ Σ_i m_i·B_i with B_i = Σ_j 2 J_ij m_j /(|m_i||m_j|)):

      E = − Σ_i Σ_{j ∈ N(i)} J_ij e_i·e_j          (mRy; every ordered pair, i.e. each bond twice)

  so spinlat's each-pair-once coupling is J_i→j + J_j→i (2 J for a symmetric file), converted
  with UppASD's 1 Ry = 13.605693009 eV. The Zeeman term is −Σ m_i·B (spinlat's Zeeman).

- ``dm`` file rows ``isite jsite rx ry rz Dx Dy Dz`` (mRy, bonds as in the jfile but never
  expanded by ``Sym``: UppASD maps the DM file with symmetry 0 whatever ``Sym`` says): UppASD's field B_i = Σ_j 2 m_j × D_ij/(|m_i||m_j|)
  (``hamiltonianactions.f90``, the jfile's factor 2) is that of E = −Σ_i Σ_j D_ij·(e_i × e_j),
  every ordered pair, so spinlat's pair gets D_i→j − D_j→i (2 D for a file listing −D reversed).
- ``pd`` (pseudo-dipolar) file rows ``isite jsite rx ry rz`` + a 3×3 tensor row by row, and
  ``sa`` (symmetric anisotropic) file rows ``isite jsite rx ry rz Cx Cy Cz`` (mRy, Sym 0 as the
  DM file): UppASD's fields 2 X m_j/(|m_i||m_j|), X the tensor or [[0, Cz, Cy], [Cz, 0, Cx],
  [Cy, Cx, 0]], are those of E = −Σ_i Σ_j e_iᵀ X_ij e_j: added to the pair tensors.
- ``anisotropy`` kfile, one row per posfile site ``isite type K1 K2 ex ey ez ratio`` (mRy): the
  fields of ``hamiltonianactions.f90`` are those of E = K1 (e·s)² for type 1 (uniaxial: K1 < 0
  is an easy axis; an on-site tensor here) and E = −K1 (sx²sy² + sy²sz² + sz²sx²) for type 2
  (cubic, Cartesian axes: a :class:`~spinlat.potentials.CubicAnisotropy` with K1 → −K1, one per
  element); type 7 is both, the cubic constant × ratio × |m|² (UppASD's scaling). UppASD's
  printed anisotropy energy, −½ m·B, is twice the cubic energy (a quartic term); spinlat follows
  the fields, which drive UppASD's dynamics. K2 ≠ 0 (quartic uniaxial) and ``mult_axis Y`` are
  refused.

- ``bq`` file rows ``isite jsite rx ry rz Jbq`` (mRy, bonds as in the jfile): UppASD's field
  B_i = 2 j_bq (m_i·m_j) m_j with j_bq = 2 Jbq/(|m_i|²|m_j|²) and energy −¼ Σ_i m_i·B_i
  (``hamiltonianactions.f90``, ``energy.f90``) are those of E = −Σ_i Σ_j Jbq (e_i·e_j)², every
  ordered pair: a :class:`~spinlat.potentials.Biquadratic` with Jbq_i→j + Jbq_j→i per pair.

Refused (FileFormatError): random alloys (``do_ralloy``; a momfile chemical index other than
1), tensorial exchange (``do_jtensor``), ``maptype 3``, ``Sym`` other than 0 to 3. Terms spinlat
has no term for are refused naming the keyword and its line unless ``drop`` names the keyword:
``chir``, ``ring``, ``do_dip`` (dipole-dipole), ``biqdm``, ``fourx``.

TB2J's UppASD writer (``TB2J_results/UppASD``: ``posfile``, ``momfile``, ``jASD1``, ``input``)
writes direct (fractional) positions but bond vectors in Cartesian Å, a count line at the top
of jASD1, each site's own index in the momfile's chemical column, and an input template with an
empty ``cell``: :func:`read_uppasd` reads such a folder
with ``tb2j=True`` and the cell (Å) of the TB2J run, e.g. ``read_uppasd("TB2J_results/UppASD",
tb2j=True, cell=atoms.cell)``.
"""

from __future__ import annotations

import itertools
import warnings
from pathlib import Path

import numpy as np

from .. import units, validation
from ..errors import FileFormatError
from ..exchange_tensors import dmi_matrix
from .codes import add_pair, cubic_by_species, dropped_terms, element_numbers, file_rows, refuse_unread
from ..keywords import refuse_other_names

#: UppASD's Rydberg in eV (:data:`spinlat.units.RYDBERG_EV`)
RY_EV = units.RYDBERG_EV
#: UppASD's tolerance (squared, cell units) for equal bond vectors of symmetry images
_SYM_TOL = 0.01

#: inpsd.dat keywords of terms spinlat has no term for (refused unless ``drop`` names them)
DROPPABLE = {"chir": "chiral interaction", "ring": "ring exchange", "do_dip": "dipole-dipole interaction",
             "biqdm": "biquadratic DM interaction", "fourx": "four-spin exchange"}


def _records(path):
    """[(line number, words)] of a whitespace-separated file (blank lines and lines starting
    with # or ! skipped)."""
    return file_rows(path, ("#", "!"))


def _num(path, ln, text, kind, what):
    try:
        return int(text) if kind is int else float(text.replace("d", "e").replace("D", "e"))
    except ValueError:
        raise FileFormatError(f"{path}: line {ln}: {what}: expected {'an integer' if kind is int else 'a number'}, "
                              f"got {text!r}") from None


class _Inpsd:
    """Keywords of an inpsd.dat: the values after a keyword are read as Fortran's list-directed
    read does, continuing on the following lines when the keyword's line holds too few."""

    def __init__(self, path):
        self.path = Path(path)
        self.rows = _records(path)
        self.at = {}
        for k, (_, words) in enumerate(self.rows):
            self.at.setdefault(words[0].lower(), k)

    def has(self, key):
        return key in self.at

    def values(self, key, n, kind=float, default=None):
        k = self.at.get(key)
        if k is None:
            return default
        ln, words = self.rows[k]
        vals, rest = list(words[1:]), k + 1
        while len(vals) < n and rest < len(self.rows):
            vals += self.rows[rest][1]
            rest += 1
        if len(vals) < n:
            raise FileFormatError(f"{self.path}: line {ln}: {key} needs {n} value(s)")
        return [v if kind is str else _num(self.path, ln, v, kind, key) for v in vals[:n]]

    def word(self, key, default=None):
        v = self.values(key, 1, str)
        return default if v is None else v[0]


@refuse_other_names()
def read_uppasd(path, *, posfile=None, momfile=None, exchange=None, cell=None, alat=None, tb2j=False,
                elements=None, drop=()):
    """Read an UppASD input: ``(state, heisenberg)``.

    Parameters
    ----------
    path : the ``inpsd.dat`` (or a folder holding ``inpsd.dat``, or TB2J's ``UppASD`` folder with
        its ``input``). Its ``posfile``, ``momfile`` and ``exchange`` keywords name the other
        files, relative to its folder; the keyword arguments of the same names replace them.
    cell : (3, 3) cell rows in Å, replacing the file's ``cell`` (× alat) — needed for TB2J's
        folders, whose template leaves the cell empty.
    alat : lattice constant in metres, replacing the file's (lengths are cell units × alat;
        without either, one cell unit is taken as 1 Å, with a UserWarning).
    tb2j : the files come from TB2J's UppASD writer (module docstring): direct positions,
        Cartesian bond vectors in Å, no symmetry, a count line at the top of the jfile.
    elements : element of the atoms (UppASD's files name none): one symbol for all or one per
        atom type (posfile's second column, type 1 first); default Fe.
    drop : keywords of terms spinlat has no term for (``"do_dip"``, ``"ring"``, ..., module
        docstring) to leave out on purpose, or "all"; without it such a term is an error.

    Returns
    -------
    state : the unit cell (periodic along UppASD's ``BC P`` directions; the posfile's sites in
        order), moments and spin directions from the momfile. UppASD simulates ``ncell`` cells:
        ``state.repeat(heisenberg.uppasd_ncell)``.
    heisenberg : :class:`~spinlat.potentials.Heisenberg` with the jfile's and DM file's couplings
        and the uniaxial anisotropy (eV, each pair once: module docstring), plus a
        :class:`~spinlat.potentials.Biquadratic` for a ``bq`` file, a
        :class:`~spinlat.potentials.CubicAnisotropy` for cubic kfile rows and a
        :class:`~spinlat.potentials.Zeeman` for a non-zero ``hfield``. It carries
        ``uppasd_ncell`` (n1, n2, n3) and applies to ``state.repeat(uppasd_ncell)``: its pair
        template is the unit cell (so also any other supercell of it) or, when a vacuum (BC 0)
        direction holds several cells (a finite chain, film or cluster), that whole system, its
        bonds leaving the box along vacuum dropped as UppASD does.

    Raises FileFormatError naming the file and line (a bond vector that meets no atom, a
    malformed row, an unsupported setting, a term spinlat has no term for that ``drop`` does not
    name), InputError for bad arguments."""
    from ..potentials import Biquadratic, CubicAnisotropy, Heisenberg, Zeeman
    from ..state import State

    path = Path(validation.path(path, "read_uppasd path"))
    if path.is_dir():
        cand = [path / n for n in ("inpsd.dat", "input")]
        path = next((c for c in cand if c.is_file()), None)
        if path is None:
            raise FileFormatError(f"{cand[0].parent}: no inpsd.dat (or TB2J's input) in this folder")
    validation.existing_file(path, "read_uppasd path", "UppASD input file")
    tb2j = validation.boolean(tb2j, "read_uppasd tb2j")
    inp = _Inpsd(path)
    dropped = dropped_terms(drop, DROPPABLE, "read_uppasd drop")
    for key, why in (("do_ralloy", "random alloys"), ("do_jtensor", "tensorial exchange (do_jtensor)")):
        v = inp.values(key, 1, int, default=[0])[0]
        if v != 0:
            raise FileFormatError(f"{path}: line {inp.rows[inp.at[key]][0]}: {key} {v}: {why} are not read by "
                                  "spinlat's reader")
    refuse_unread([(key, f"line {inp.rows[inp.at[key]][0]}", f"{key} {inp.word(key)} ({what})")
                   for key, what in DROPPABLE.items() if inp.has(key) and inp.word(key) not in ("0", "N", "n")],
                  dropped, path, "UppASD")

    if inp.values("scalefac", 1, default=[1.0])[0] != 1.0:
        raise FileFormatError(f"{path}: line {inp.rows[inp.at['scalefac']][0]}: scalefac "
                              f"{inp.word('scalefac')} (UppASD rescales the cell vectors but not the Cartesian "
                              "positions and bonds) is not read by spinlat's reader: scale the cell and files")
    posfiletype = "D" if tb2j else inp.word("posfiletype", "C").upper()
    maptype = 1 if tb2j else inp.values("maptype", 1, int, default=[1])[0]
    sym = 0 if tb2j else inp.values("sym", 1, int, default=[0])[0]
    if posfiletype not in ("C", "D"):
        raise FileFormatError(f"{path}: posfiletype {posfiletype!r}: UppASD knows C and D")
    if maptype not in (1, 2):
        raise FileFormatError(f"{path}: maptype {maptype}: spinlat reads maptype 1 and 2")
    if sym not in (0, 1, 2, 3):
        raise FileFormatError(f"{path}: Sym {sym}: spinlat expands bond vectors with no symmetry (0), the cubic "
                              "group (1), its xy-plane part (2) or the hexagonal group (3); list every bond in the "
                              "jfile and set Sym 0")
    if alat is None:
        a = inp.values("alat", 1, default=None)
        alat = None if a is None else a[0]
    if cell is not None:
        cell_a = validation.real_array(cell, "cell", (3, 3))
        scale = 1.0
        lattice = cell_a
    else:
        k = inp.at.get("cell")
        if k is not None and len(inp.rows[k][1]) == 1 and (
                k + 1 == len(inp.rows) or not inp.rows[k + 1][1][0].lstrip("+-").replace(".", "", 1).isdigit()):
            raise FileFormatError(f"{path}: line {inp.rows[k][0]}: the cell keyword holds no vectors (TB2J's input "
                                  "template leaves it empty): add the three cell rows, or pass cell= (Å)")
        rows = inp.values("cell", 9, default=None)
        if rows is None:
            raise FileFormatError(f"{path}: no cell: give the cell keyword (or cell= in Å)")
        lattice = np.array(rows, dtype=float).reshape(3, 3)
        if alat is None:
            warnings.warn(f"{path}: no alat: lengths are taken in Å per cell unit (only the energy's geometry "
                          "matters to the exchange)", UserWarning, stacklevel=3)
            scale = 1.0
        else:
            scale = float(alat) * 1e10
        cell_a = lattice * scale
    if abs(np.linalg.det(cell_a)) < 1e-12:
        raise FileFormatError(f"{path}: the cell is singular")
    ncell = inp.values("ncell", 3, int, default=[1, 1, 1])
    bc = inp.values("bc", 3, str, default=["P", "P", "P"])
    pbc = np.array([b.upper() == "P" for b in bc])

    pfile, mfile, jfile = (Path(given) if given is not None else _named_file(inp, key, tb2j)
                           for key, given in (("posfile", posfile), ("momfile", momfile), ("exchange", exchange)))
    for p, what in ((pfile, "posfile"), (mfile, "momfile"), (jfile, "exchange file")):
        if not p.is_file():
            raise FileFormatError(f"{path}: the {what} {p} does not exist")

    # ------------------------------------------------------------------ sites
    sites, types = {}, {}
    for ln, w in _records(pfile):
        if len(w) < 5:
            raise FileFormatError(f"{pfile}: line {ln}: expected 'isite itype x y z', got {' '.join(w)!r}")
        i, t = _num(pfile, ln, w[0], int, "isite"), _num(pfile, ln, w[1], int, "itype")
        if i in sites:
            raise FileFormatError(f"{pfile}: line {ln}: site {i} given twice")
        sites[i] = np.array([_num(pfile, ln, x, float, "position") for x in w[2:5]])
        types[i] = t
    n = len(sites)
    if sorted(sites) != list(range(1, n + 1)):
        raise FileFormatError(f"{pfile}: the sites must be numbered 1..{n}, got {sorted(sites)}")
    raw = np.array([sites[i] for i in range(1, n + 1)])
    # lengths in the unit of ``lattice`` (UppASD's alat, or Å for a given cell), × scale → Å
    pos_units = raw @ lattice if posfiletype == "D" else raw
    positions = pos_units * scale
    atype = np.array([types[i] for i in range(1, n + 1)])

    moments = np.zeros(n)
    spins = np.tile([0.0, 0.0, 1.0], (n, 1))
    seen = set()
    for ln, w in _records(mfile):
        if len(w) < 6:
            raise FileFormatError(f"{mfile}: line {ln}: expected 'isite ichem |m| ex ey ez', got {' '.join(w)!r}")
        i = _num(mfile, ln, w[0], int, "isite")
        if not 1 <= i <= n:
            raise FileFormatError(f"{mfile}: line {ln}: site {i} is not in the posfile (1..{n})")
        # TB2J writes each site's own index here (UppASD would take it for an alloy component)
        if not tb2j and _num(mfile, ln, w[1], int, "ichem") != 1:
            raise FileFormatError(f"{mfile}: line {ln}: chemical index {w[1]}: random alloys are not read")
        if i in seen:
            raise FileFormatError(f"{mfile}: line {ln}: site {i} given twice")
        seen.add(i)
        moments[i - 1] = _num(mfile, ln, w[2], float, "|m|")
        e = np.array([_num(mfile, ln, x, float, "direction") for x in w[3:6]])
        if not np.linalg.norm(e) > 0:
            raise FileFormatError(f"{mfile}: line {ln}: zero moment direction")
        spins[i - 1] = e / np.linalg.norm(e)
    missing = sorted(set(range(1, n + 1)) - seen)
    if missing:
        raise FileFormatError(f"{mfile}: no moment for site(s) {missing[:8]}")
    if np.any(moments < 0):
        raise FileFormatError(f"{mfile}: negative moment magnitudes")

    # ------------------------------------------------------------------ couplings
    ops = _symmetry_ops(sym)
    frac_pos = pos_units @ np.linalg.inv(lattice)

    def bonds(bfile, nval, what, use_sym=True):
        """Directed couplings [(a, b, R, values (nval,), line)] of a jfile-like file: rows
        ``isite jsite rx ry rz`` + nval values, each keyed by isite's type (module docstring);
        bond vectors expanded by the ``Sym`` operations when ``use_sym`` (UppASD's setup_nm takes
        Sym for the jfile and the bq file, 0 for the DM file)."""
        ops_ = ops if use_sym else [np.eye(3)]
        rows = _records(bfile)
        if tb2j and rows and len(rows[0][1]) == 2:  # TB2J's "count type" line
            count = _num(bfile, rows[0][0], rows[0][1][0], int, "number of couplings")
            rows = rows[1:]
            if count != len(rows):
                raise FileFormatError(f"{bfile}: line {rows[0][0] - 1 if rows else 1}: announces {count} couplings, "
                                      f"found {len(rows)} rows (truncated file?)")
        width = 5 + nval
        shells = {}  # type -> list of [vector (cell units, Cartesian), values, line]
        for ln, w in rows:
            if len(w) > width and not _is_number(w[width]):  # text after the values: ignored, as by UppASD
                w = w[:width]
            elif len(w) == width + 1:  # one more number (the bond length, in UppASD's own mapping examples):
                w = w[:width]          # UppASD's list-directed read ignores it; 2 or more may be an alloy layout
            if len(w) != width:
                raise FileFormatError(f"{bfile}: line {ln}: expected 'isite jsite rx ry rz {what}' ({width} columns), "
                                      f"got {len(w)}: {' '.join(w)!r} (alloy and tensor layouts are not read)")
            i, j = _num(bfile, ln, w[0], int, "isite"), _num(bfile, ln, w[1], int, "jsite")
            if not (1 <= i <= n and 1 <= j <= n):
                raise FileFormatError(f"{bfile}: line {ln}: sites {i}, {j} outside the posfile's 1..{n}")
            r = np.array([_num(bfile, ln, x, float, "bond vector") for x in w[2:5]])
            vals = np.array([_num(bfile, ln, x, float, what) for x in w[5:width]])
            if tb2j:
                v = r / scale  # Cartesian Å
            elif maptype == 2:
                v = pos_units[j - 1] - pos_units[i - 1] + r @ lattice
            else:
                v = r @ lattice if posfiletype == "D" else r
            lst = shells.setdefault(atype[i - 1], [])
            same = next((s for s in lst if np.sum((s[0] - v) ** 2) < 1e-5), None)
            if same is None:
                lst.append([v, vals, ln])
            else:  # UppASD replaces the coupling of a bond vector given again for a type
                same[1], same[2] = vals, ln
        out = []
        for a in range(n):
            for v0, vals, ln in shells.get(atype[a], []):
                images = []
                for op in ops_:
                    w_ = op @ v0
                    if all(np.sum((w_ - u) ** 2) >= _SYM_TOL for u in images):
                        images.append(w_)
                for k, v in enumerate(images):
                    target = frac_pos[a] + np.linalg.solve(lattice.T, v)
                    d = target[None, :] - frac_pos
                    R = np.round(d)
                    err = np.linalg.norm((d - R) @ lattice, axis=1)
                    b = int(np.argmin(err))
                    if err[b] > 1e-3 * max(1.0, float(np.linalg.norm(v))):
                        if k == 0:
                            raise FileFormatError(f"{bfile}: line {ln}: no atom at the bond vector {v0.tolist()} from "
                                                  f"site {a + 1} (type {atype[a]})")
                        continue  # a symmetry image off the lattice: UppASD finds no neighbour either
                    R = R[b].astype(np.int64)
                    if np.any(R[~pbc] != 0) and np.all(np.asarray(ncell)[(R != 0) & ~pbc] == 1):
                        continue  # leaves the system along a vacuum direction of one cell: UppASD has no such bond
                    out.append((a, b, tuple(R), vals, ln))  # across a vacuum direction: see _on_supercell
        return out

    mry = RY_EV * units.MEV  # eV per mRy
    pairs = {}  # (i, j, R) -> tensor eV, each pair once (E = −s_iᵀ T s_j)

    # UppASD's jij_scale, dm_scale and sa_scale multiply those couplings (hamiltonianinit.f90)
    jscale, dscale, sscale = (inp.values(k, 1, default=[1.0])[0] for k in ("jij_scale", "dm_scale", "sa_scale"))
    for a, b, R, vals, _ in bonds(jfile, 1, "J"):
        add_pair(pairs, a, b, R, jscale * vals[0] * mry * np.eye(3))
    # UppASD's fields of the DM, pseudo-dipolar (pd) and symmetric anisotropic (sa) files are
    # B_i = Σ_j 2 X_ij m_j/(|m_i||m_j|) with X = [D] (m_j × D), the pd tensor (9 values, row by
    # row), or the symmetric off-diagonal tensor of (Cx, Cy, Cz) (hamiltonianactions.f90), and
    # the energy −½ Σ_i m_i·B_i = −Σ_i Σ_j e_iᵀ X_ij e_j: spinlat's tensors; mapped with Sym 0
    dfile = _term_file(inp, "dm", "DM")
    if dfile is not None:
        for a, b, R, vals, _ in bonds(dfile, 3, "Dx Dy Dz", use_sym=False):
            add_pair(pairs, a, b, R, dmi_matrix(dscale * vals * mry))
    pfile = _term_file(inp, "pd", "pseudo-dipolar")
    if pfile is not None:
        for a, b, R, vals, _ in bonds(pfile, 9, "Pxx Pxy Pxz Pyx Pyy Pyz Pzx Pzy Pzz", use_sym=False):
            add_pair(pairs, a, b, R, vals.reshape(3, 3) * mry)
    sfile = _term_file(inp, "sa", "symmetric anisotropic")
    if sfile is not None:
        for a, b, R, (cx, cy, cz), _ in bonds(sfile, 3, "Cx Cy Cz", use_sym=False):
            add_pair(pairs, a, b, R, np.array([[0.0, cz, cy], [cz, 0.0, cx], [cy, cx, 0.0]]) * sscale * mry)
    bq = {}  # (i, j, R) -> B eV, each pair once
    bfile = _term_file(inp, "bq", "biquadratic")
    if bfile is not None:
        # UppASD: j_bq = 2 J_bq/(|m_i|²|m_j|²), B_i = 2 j_bq (m_i·m_j) m_j, E = −¼ Σ_i m_i·B_i
        # = −Σ_i Σ_j J_bq (e_i·e_j)²: every ordered pair, as the jfile
        for a, b, R, vals, _ in bonds(bfile, 1, "Jbq"):
            add_pair(bq, a, b, R, vals[0] * mry)
    cubic_k = _anisotropy(inp, path, n, moments)
    for a, A in cubic_k[0]:
        add_pair(pairs, a, a, (0, 0, 0), A * mry)
    numbers = _type_numbers(elements, atype)
    state = State(positions, numbers, cell=cell_a, pbc=pbc, spins=spins, moments=moments)
    # a vacuum direction of several cells (a finite chain, film, cluster): bonds cross it inside
    # the system, which a unit-cell template (not periodic there) cannot hold: the template is then
    # the whole ncell system, bond by bond as UppASD maps them (leaving the box along vacuum: none)
    whole = bool(np.any(~pbc & (np.asarray(ncell) > 1)))
    tpl = state.repeat(ncell) if whole else state
    I, Jx, R, T = _on_supercell(pairs, (0, 3, 3), n, ncell, pbc, whole)
    ham = Heisenberg(tpl.cell, tpl.positions, tpl.numbers, I, Jx, R, T, pbc=pbc)
    ham.source = str(jfile)
    ham.uppasd_ncell = tuple(ncell)
    pot = ham
    if bq:
        pot = pot + Biquadratic(tpl.cell, tpl.positions, tpl.numbers, *_on_supercell(bq, (0,), n, ncell, pbc, whole),
                                pbc=pbc)
    if np.any(cubic_k[1]):
        on = np.flatnonzero(cubic_k[1])
        pot = pot + CubicAnisotropy(cubic_by_species(numbers[on], cubic_k[1][on] * mry, f"{path}: cubic anisotropy"))
    B = np.array(inp.values("hfield", 3, default=[0.0, 0.0, 0.0]))
    if np.any(B):
        pot = pot + Zeeman(B)
    pot.uppasd_ncell = tuple(ncell)
    return state, pot


def _on_supercell(pairs, empty, n, ncell, pbc, whole):
    """(i, j, R, values) arrays of ``pairs`` {(a, b, R): value} on the unit cell of ``n`` sites, or,
    with ``whole``, on its ``ncell`` repetition in State.repeat's order (cell-major, site fastest):
    one bond per cell, wrapped along periodic directions (R the wraps), dropped where it leaves
    the box along a vacuum one."""
    if not pairs:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 3), np.int64), np.zeros(empty)
    keys = list(pairs)
    a = np.array([k[0] for k in keys])
    b = np.array([k[1] for k in keys])
    R = np.array([k[2] for k in keys], dtype=np.int64).reshape(-1, 3)
    V = np.array(list(pairs.values()))
    if not whole:
        return a, b, R, V
    nc = np.asarray(ncell)
    cells = np.stack(np.meshgrid(*[np.arange(m) for m in nc], indexing="ij"), -1).reshape(-1, 3)
    target = cells[None, :, :] + R[:, None, :]                      # (P, C, 3)
    keep = np.all(pbc | ((target >= 0) & (target < nc)), axis=2)
    wraps = np.floor_divide(target, nc)
    flat = lambda c: (c[..., 0] * nc[1] + c[..., 1]) * nc[2] + c[..., 2]  # noqa: E731
    src = flat(cells)[None, :] * n + a[:, None]
    dst = flat(target - wraps * nc) * n + b[:, None]
    p = np.nonzero(keep)[0]
    return src[keep], dst[keep], wraps[keep], V[p]


def _anisotropy(inp, path, n, moments):
    """UppASD's kfile (``anisotropy`` keyword): rows ``isite type K1 K2 ex ey ez ratio`` (mRy),
    as ([(site, on-site tensor A in mRy)], cubic constant per site in mRy), spinlat's E = −sᵀAs
    and CubicAnisotropy K1. UppASD's fields (hamiltonianactions.f90 with hamiltonianinit.f90's
    scaling kaniso = K/|m|², or K/|m|⁴ for cubic) are those of E = K1 (e·s)² (type 1) and
    E = −K1 (sx²sy² + sy²sz² + sz²sx²) (type 2; type 7: both, the cubic one × ratio × |m|²)."""
    cubic = np.zeros(n)
    if _named_file(inp, "anisotropy") is None:
        return [], cubic
    if inp.word("mult_axis", "N").upper() == "Y":
        raise FileFormatError(f"{path}: line {inp.rows[inp.at['mult_axis']][0]}: mult_axis Y (a second anisotropy "
                              "axis per site) is not read by spinlat's reader")
    kfile = _term_file(inp, "anisotropy", "anisotropy")
    rows = _records(kfile)
    if len(rows) < n:
        raise FileFormatError(f"{kfile}: UppASD reads one row per site of the posfile ({n}), found {len(rows)}")
    out, seen = [], set()
    for ln, w in rows[:n]:
        if len(w) < 8:
            raise FileFormatError(f"{kfile}: line {ln}: expected 'isite type K1 K2 ex ey ez ratio', got {' '.join(w)!r}")
        i, kind = _num(kfile, ln, w[0], int, "isite"), _num(kfile, ln, w[1], int, "anisotropy type")
        K1, K2, ex, ey, ez, ratio = (_num(kfile, ln, x, float, "anisotropy") for x in w[2:8])
        if not 1 <= i <= n or i in seen:
            raise FileFormatError(f"{kfile}: line {ln}: site {i} outside the posfile's 1..{n} or given twice")
        seen.add(i)
        if kind not in (1, 2, 7):
            raise FileFormatError(f"{kfile}: line {ln}: anisotropy type {kind}: UppASD knows 1 (uniaxial), 2 (cubic) "
                                  "and 7 (both)")
        if K2 != 0:
            raise FileFormatError(f"{kfile}: line {ln}: K2 = {K2}: spinlat has no quartic uniaxial term (and UppASD's "
                                  "own K2 fields differ between its dynamics and Monte Carlo): set K2 to 0")
        e = np.array([ex, ey, ez])
        if kind in (1, 7) and K1 != 0:
            if not np.linalg.norm(e) > 0:
                raise FileFormatError(f"{kfile}: line {ln}: zero anisotropy axis")
            e = e / np.linalg.norm(e)
            out.append((i - 1, -K1 * np.outer(e, e)))
        if kind == 2:
            cubic[i - 1] = -K1
        elif kind == 7:
            cubic[i - 1] = -K1 * ratio * moments[i - 1] ** 2
    return out, cubic


def uppasd_input_files(path, *, tb2j=False) -> list:
    """The files an UppASD input reads: the ``inpsd.dat`` (``path``, or the folder holding it)
    and its ``posfile``, ``momfile``, ``exchange``, ``dm``, ``pd``, ``sa``, ``anisotropy`` and ``bq`` files that
    exist (named relative to its folder, the first three with UppASD's default names), as Paths."""
    path = Path(validation.path(path, "uppasd_input_files path"))
    if path.is_dir():
        path = next((c for c in (path / "inpsd.dat", path / "input") if c.is_file()), path / "inpsd.dat")
    validation.existing_file(path, "uppasd_input_files path", "UppASD input file")
    inp = _Inpsd(path)
    out = [path]
    for key in ("posfile", "momfile", "exchange", *_TERM_FILES):
        p = _named_file(inp, key, tb2j)
        if p is not None and p.is_file():
            out.append(p)
    return out


#: inpsd.dat keywords of the optional term files (their value 0 or N: none)
_TERM_FILES = ("dm", "pd", "sa", "anisotropy", "bq")


def _named_file(inp, key, tb2j=False):
    """The file the keyword ``key`` of the inpsd.dat ``inp`` names, relative to its folder: for
    ``posfile``, ``momfile`` and ``exchange`` UppASD's default name when the keyword is absent
    (``jfile``; TB2J's ``jASD1`` with ``tb2j``), for the term files (:data:`_TERM_FILES`) None when
    absent or 0 / N. Whether it exists is not checked."""
    if key in _TERM_FILES:
        name = inp.word(key)
        if name is None or name in ("0", "N", "n"):
            return None
    else:
        name = inp.word(key, ("jASD1" if tb2j else "jfile") if key == "exchange" else key)
    p = Path(name)
    return p if p.is_absolute() else inp.path.parent / p


def _term_file(inp, key, what):
    """:func:`_named_file` of the term file keyword ``key``, or None; FileFormatError naming the
    inpsd.dat's line when the file (the ``what`` file) does not exist."""
    f = _named_file(inp, key)
    if f is not None and not f.is_file():
        raise FileFormatError(f"{inp.path}: line {inp.rows[inp.at[key]][0]}: the {what} file {f} does not exist")
    return f


def _is_number(text):
    try:
        float(text.replace("d", "e").replace("D", "e"))
    except ValueError:
        return False
    return True


def _symmetry_ops(sym):
    """UppASD's ``Sym`` operations (``neighbourmap.f90``): 0 the identity; 1 the 48 signed
    permutation matrices (cubic); 2 the 8 signed permutations of x and y, z kept (cubic in the xy
    plane); 3 the 24 hexagonal ones: the 8 sign changes of x, y, z and the 16 matrices
    [[±½, ±√3/2, 0], [±√3/2, ±½, 0], [0, 0, ±1]] whose four in-plane signs multiply to −1."""
    if sym == 0:
        return [np.eye(3)]
    out = []
    if sym in (1, 2):
        for perm in itertools.permutations(range(3)):
            if sym == 2 and perm[2] != 2:
                continue
            for signs in itertools.product((1.0, -1.0), repeat=3):
                if sym == 2 and signs[2] < 0:
                    continue
                m = np.zeros((3, 3))
                m[range(3), perm] = signs
                out.append(m)
        return out
    r = np.sqrt(3.0) / 2
    out = [np.diag(sg) for sg in itertools.product((1.0, -1.0), repeat=3)]
    for s1, s2, s3, s4 in itertools.product((1.0, -1.0), repeat=4):
        if s1 * s2 * s3 * s4 < 0:
            for sz in (1.0, -1.0):
                out.append(np.array([[0.5 * s1, r * s3, 0.0], [r * s2, 0.5 * s4, 0.0], [0.0, 0.0, sz]]))
    return out


def _type_numbers(elements, atype):
    if elements is None:
        return np.full(len(atype), 26)
    return element_numbers(elements, atype - 1, f"atom type (1..{atype.max()})")


__all__ = ["read_uppasd", "RY_EV", "uppasd_input_files", "DROPPABLE"]
