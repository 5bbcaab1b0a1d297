"""UppASD input files (``inpsd.dat`` with ``posfile``, ``momfile`` and the exchange ``jfile``).

:func:`read_uppasd` reads the unit cell, the moments and the isotropic Heisenberg exchange of an
UppASD (Uppsala Atomistic Spin Dynamics) input into a :class:`~spinlat.State` and a
:class:`~spinlat.potentials.Heisenberg`, following UppASD's own reading (``source/Input/
inputhandler.f90``, ``inputhandler_ext.f90``, ``Hamiltonian/neighbourmap.f90``,
``hamiltonianinit.f90`` and ``energy.f90`` of UppASD/UppASD):

- ``cell`` (three rows, units of ``alat``; ``alat`` in metres, lengths here in Å = value ×
  alat × 1e10), ``ncell n1 n2 n3``, ``BC`` (P periodic, 0 vacuum), ``Sym`` (0 none, 1 cubic: the
  48 signed permutations applied to every bond vector), ``posfiletype`` (C [default]: Cartesian
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

Refused (FileFormatError): random alloys (``do_ralloy``), tensorial exchange (``do_jtensor``),
``maptype 3``, ``Sym`` other than 0 and 1. Not read, with a UserWarning naming them: DM
(``dm``), anisotropy, biquadratic and the other extra terms.

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
from ..errors import FileFormatError, InputError

#: UppASD's Rydberg in eV (:data:`spinlat.units.RYDBERG_EV`)
RY_EV = units.RYDBERG_EV
#: UppASD's tolerance (squared, cell units) for equal bond vectors of symmetry images
_SYM_TOL = 0.01

#: inpsd.dat keywords of terms spinlat's reader does not read
_UNREAD = {"dm": "the DM interaction (dm file)", "anisotropy": "the anisotropy (kfile)", "bq": "biquadratic exchange",
           "pd": "pseudo-dipolar exchange", "chir": "chiral interaction", "ring": "ring exchange",
           "do_dip": "dipole-dipole interaction", "sa": "symmetric anisotropic exchange"}


def _records(path):
    """[(line number, words)] of a whitespace-separated file (blank lines and lines starting
    with # or ! skipped)."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError as exc:
        raise FileFormatError(f"{path}: cannot read ({exc.strerror or exc})") from None
    out = []
    for ln, line in enumerate(text.splitlines(), 1):
        words = line.split()
        if words and not words[0].startswith(("#", "!")):
            out.append((ln, words))
    return out


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


def read_uppasd(path, *, posfile=None, momfile=None, exchange=None, cell=None, alat=None, tb2j=False,
                elements=None):
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

    Returns
    -------
    state : the unit cell (periodic along UppASD's ``BC P`` directions; the posfile's sites in
        order), moments and spin directions from the momfile. UppASD simulates ``ncell`` cells:
        ``state.repeat(heisenberg.uppasd_ncell)``.
    heisenberg : :class:`~spinlat.potentials.Heisenberg` with the jfile's couplings (eV, each
        pair once: module docstring), plus a :class:`~spinlat.potentials.Zeeman` for a non-zero
        ``hfield``. It carries ``uppasd_ncell`` (n1, n2, n3).

    Raises FileFormatError naming the file and line (a bond vector that meets no atom, a
    malformed row, an unsupported setting), InputError for bad arguments."""
    from ..potentials import Heisenberg, Zeeman
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
    base = path.parent
    for key, why in (("do_ralloy", "random alloys"), ("do_jtensor", "tensorial exchange (do_jtensor)")):
        v = inp.values(key, 1, int, default=[0])[0]
        if v != 0:
            raise FileFormatError(f"{path}: {key} {v}: {why} are not read by spinlat's reader")
    unread = [what for key, what in _UNREAD.items() if inp.has(key) and inp.word(key) not in ("0", "N", "n")]
    if unread:
        warnings.warn(f"{path}: not read: {', '.join(unread)}; spinlat's energies differ from UppASD's by these "
                      "terms", UserWarning, stacklevel=2)

    posfiletype = "D" if tb2j else inp.word("posfiletype", "C").upper()
    maptype = 1 if tb2j else inp.values("maptype", 1, int, default=[1])[0]
    sym = 0 if tb2j else inp.values("sym", 1, int, default=[0])[0]
    if posfiletype not in ("C", "D"):
        raise FileFormatError(f"{path}: posfiletype {posfiletype!r}: UppASD knows C and D")
    if maptype not in (1, 2):
        raise FileFormatError(f"{path}: maptype {maptype}: spinlat reads maptype 1 and 2")
    if sym not in (0, 1):
        raise FileFormatError(f"{path}: Sym {sym}: spinlat expands bond vectors with no symmetry (0) or the cubic "
                              "group (1); list every bond in the jfile and set Sym 0")
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
                          "matters to the exchange)", UserWarning, stacklevel=2)
            scale = 1.0
        else:
            scale = float(alat) * 1e10
        cell_a = lattice * scale
    if abs(np.linalg.det(cell_a)) < 1e-12:
        raise FileFormatError(f"{path}: the cell is singular")
    ncell = inp.values("ncell", 3, int, default=[1, 1, 1])
    bc = inp.values("bc", 3, str, default=["P", "P", "P"])
    pbc = np.array([b.upper() == "P" for b in bc])

    def named(key, given):
        if given is not None:
            return Path(given)
        name = inp.word(key)
        if name is None:
            default = {"posfile": "posfile", "momfile": "momfile", "exchange": "jASD1" if tb2j else "jfile"}[key]
            name = default
        p = Path(name)
        return p if p.is_absolute() else base / p

    pfile, mfile, jfile = named("posfile", posfile), named("momfile", momfile), named("exchange", exchange)
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

    # ------------------------------------------------------------------ exchange shells per type
    rows = _records(jfile)
    if tb2j and rows and len(rows[0][1]) == 2:  # TB2J's "count type" line
        count = _num(jfile, rows[0][0], rows[0][1][0], int, "number of couplings")
        rows = rows[1:]
        if count != len(rows):
            raise FileFormatError(f"{jfile}: line {rows[0][0] - 1 if rows else 1}: announces {count} couplings, "
                                  f"found {len(rows)} rows (truncated file?)")
    shells = {}  # type -> list of [vector (cell units, Cartesian), J mRy, line]
    for ln, w in rows:
        if len(w) > 6 and not _is_number(w[6]):  # text after the six values: ignored, as by UppASD
            w = w[:6]
        if len(w) != 6:
            raise FileFormatError(f"{jfile}: line {ln}: expected 'isite jsite rx ry rz J' (6 columns), got "
                                  f"{len(w)}: {' '.join(w)!r} (alloy and tensor layouts are not read)")
        i, j = _num(jfile, ln, w[0], int, "isite"), _num(jfile, ln, w[1], int, "jsite")
        if not (1 <= i <= n and 1 <= j <= n):
            raise FileFormatError(f"{jfile}: line {ln}: sites {i}, {j} outside the posfile's 1..{n}")
        r = np.array([_num(jfile, ln, x, float, "bond vector") for x in w[2:5]])
        J = _num(jfile, ln, w[5], float, "J")
        if tb2j:
            v = r / scale  # Cartesian Å
        elif maptype == 2:
            v = pos_units[j - 1] - pos_units[i - 1] + r @ lattice
        else:
            v = r @ lattice if posfiletype == "D" else r
        lst = shells.setdefault(atype[i - 1], [])
        same = next((s for s in lst if np.sum((s[0] - v) ** 2) < 1e-5), None)
        if same is None:
            lst.append([v, J, ln])
        else:  # UppASD replaces the coupling of a bond vector given again for a type
            same[1], same[2] = J, ln

    ops = _cubic_ops() if sym == 1 else [np.eye(3)]
    units_cell = lattice
    frac_of = np.linalg.inv(units_cell)
    frac_pos = pos_units @ frac_of
    pairs = {}
    for a in range(n):
        for v0, J, ln in shells.get(atype[a], []):
            images = []
            for op in ops:
                w_ = op @ v0
                if all(np.sum((w_ - u) ** 2) >= _SYM_TOL for u in images):
                    images.append(w_)
            for k, v in enumerate(images):
                target = frac_pos[a] + v @ frac_of
                d = target[None, :] - frac_pos
                R = np.round(d)
                err = np.linalg.norm((d - R) @ units_cell, axis=1)
                b = int(np.argmin(err))
                if err[b] > 1e-3 * max(1.0, float(np.linalg.norm(v))):
                    if k == 0:
                        raise FileFormatError(f"{jfile}: line {ln}: no atom at the bond vector {v0.tolist()} from "
                                              f"site {a + 1} (type {atype[a]})")
                    continue  # a symmetry image off the lattice: UppASD finds no neighbour either
                R = R[b].astype(np.int64)
                if np.any(R[~pbc] != 0):
                    raise FileFormatError(f"{jfile}: line {ln}: the bond from site {a + 1} crosses a vacuum (BC 0) "
                                          "direction of the unit cell; give the supercell's sites")
                key, rev = (a, b, tuple(R)), (b, a, tuple(-R))
                k_ = rev if rev in pairs and key not in pairs else key
                pairs[k_] = pairs.get(k_, 0.0) + J * RY_EV * units.MEV
    if pairs:
        I, Jx, R = (np.array([k[0] for k in pairs]), np.array([k[1] for k in pairs]),
                    np.array([k[2] for k in pairs], dtype=np.int64))
        T = np.array(list(pairs.values()))
    else:
        I = Jx = np.zeros(0, np.int64)
        R, T = np.zeros((0, 3), np.int64), np.zeros(0)
    numbers = _type_numbers(elements, atype)
    state = State(positions, numbers, cell=cell_a, pbc=pbc, spins=spins, moments=moments)
    ham = Heisenberg(cell_a, positions, numbers, I, Jx, R, T, pbc=pbc)
    ham.source = str(jfile)
    ham.uppasd_ncell = tuple(ncell)
    B = np.array(inp.values("hfield", 3, default=[0.0, 0.0, 0.0]))
    if np.any(B):
        pot = ham + Zeeman(B)
        pot.uppasd_ncell = tuple(ncell)
        return state, pot
    return state, ham


def _is_number(text):
    try:
        float(text.replace("d", "e").replace("D", "e"))
    except ValueError:
        return False
    return True


def _cubic_ops():
    """UppASD's Sym 1: the 48 signed permutation matrices."""
    out = []
    for perm in itertools.permutations(range(3)):
        for signs in itertools.product((1.0, -1.0), repeat=3):
            m = np.zeros((3, 3))
            m[range(3), perm] = signs
            out.append(m)
    return out


def _type_numbers(elements, atype):
    if elements is None:
        return np.full(len(atype), 26)
    if isinstance(elements, str):
        return np.full(len(atype), validation.atomic_numbers([elements])[0])
    z = validation.atomic_numbers(list(elements))
    if len(z) < atype.max():
        raise InputError(f"elements: one per atom type (1..{atype.max()}) or one for all, got {len(z)}")
    return z[atype - 1]


__all__ = ["read_uppasd", "RY_EV"]
