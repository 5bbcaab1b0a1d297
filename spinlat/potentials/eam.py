"""Embedded-atom method (EAM) potentials from LAMMPS tabulated files.

Reads LAMMPS *setfl* (``pair_style eam/alloy``, ``.eam.alloy``) and *Finnis-Sinclair*
(``pair_style eam/fs``, ``.eam.fs``) files with any number of elements and DYNAMO *funcfl*
files (``pair_style eam``, ``.eam``, one element per file), with LAMMPS's reader rules
(comments, blank lines, numbers split over lines; see :func:`read_eam_file`), and interpolates
the tables with the same cubic scheme as LAMMPS's ``pair_style eam`` so that energies and
forces agree with LAMMPS to round-off:

- every table f_1..f_n on a uniform grid (spacing δ) gets, at each knot, a slope estimate
  s_m (in table units): one-sided differences at the two end knots, central differences at the
  knots next to them, and the fourth-order five-point stencil
  s_m = [(f_{m−2} − f_{m+2}) + 8 (f_{m+1} − f_{m−1})] / 12 everywhere else;
- on segment m (x = (m−1+p) δ, 0 ≤ p ≤ 1) the cubic Hermite polynomial
  f = ((c3 p + c4) p + c5) p + c6 with c6 = f_m, c5 = s_m,
  c4 = 3(f_{m+1} − f_m) − 2 s_m − s_{m+1}, c3 = s_m + s_{m+1} − 2(f_{m+1} − f_m);
- the segment index is m = min(int(x/δ + 1), n − 1) (and ≥ 1 for the density argument of
  F), p = min(x/δ + 1 − m, 1): beyond the last knot the value is held. For the embedding
  function, when ρ exceeds ρ_max = (n_ρ − 1) δ_ρ the energy is continued linearly,
  F(ρ) → F(ρ) + F'(ρ)(ρ − ρ_max) with F, F' taken at the held last knot;
- funcfl files are first brought onto one grid as LAMMPS's ``PairEAM::file2array`` does
  (4-point Lagrange interpolation, one knot fewer than the file, ρ_max of the file, pair term
  r·φ = 27.2·0.529·Z_a(r)·Z_b(r) from the effective charges; see :func:`_funcfl_tables`).

The pair term is tabulated as r·φ(r) (``z2r``); φ = z2r/r. Energy

    E = Σ_i F_{a_i}(ρ_i) + Σ_{i<j} φ_{a_i a_j}(r_ij),   ρ_i = Σ_{j≠i} ρ_{a_j → a_i}(r_ij),

where ρ_{b→a} is the density an atom of element b creates at an atom of element a (setfl: it
depends on b only; Finnis-Sinclair: block b of the file, entry a).

Units: Å, eV. EAM has no magnetic dependence: magnetic forces are zero.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numba
import numpy as np

from .. import validation
from ..errors import FileFormatError, InputError
from ..files import open_decompressed
from ..formats import number_syntax as _text
from .base import Evaluation, Potential, virial_to_voigt
from ..keywords import refuse_other_names

#: fused multiply-add in hot kernels (more accurate and faster; no other fast-math liberties)
_FMA = {"contract"}

__all__ = ["EAM", "read_eam_file", "spline_coefficients"]

FORMATS = ("alloy", "fs", "funcfl")


# --------------------------------------------------------------------------------------
# file reading
# --------------------------------------------------------------------------------------


class _EAMText:
    """The lines of an EAM file read the way LAMMPS's ``PotentialFileReader`` reads them.

    LAMMPS (``TextFileReader``, used by ``pair_style eam/alloy``, ``eam/fs`` and ``eam``):

    - ``skip_line``: the first three lines (one in a funcfl file) are comments, taken whole
      (even when blank);
    - everything else is cut at the first ``#`` (a comment) and blank lines are skipped;
    - a header record (``next_values(n)``) is the next non-blank line, joined with the following
      lines until it holds at least n words; words beyond the n needed are ignored;
    - a table (``next_dvector(n)``) takes the numbers of as many lines as it needs, so values
      may be split over lines in any way; every table starts on a new line, and LAMMPS drops
      what is left of the line where a table ends;
    - words are separated by spaces, tabs, CR and form feeds.

    spinlat reads the same values from every file LAMMPS reads correctly, and refuses what
    LAMMPS reads wrongly or silently drops. What LAMMPS 2025.07.22 does with malformed files
    (measured with its Python module) and what spinlat does instead:

    - a value too many where a table ends: LAMMPS drops it; spinlat refuses (the line);
    - a value too many inside a table: LAMMPS shifts the rest of that table by one and drops its
      last value (different energies, no message); spinlat refuses, naming the line where the
      table ends and the line whose count differs from the others;
    - a value missing: LAMMPS fills the table from the next one and stops at the end of the
      file ("9995/10000 values"); spinlat refuses at the first table that ends mid-line;
    - the file cut inside its last number (``…E-0012`` → ``…E-0``): LAMMPS reads the stub;
      spinlat refuses a last value without a final newline that has fewer digits than the
      table's other values;
    - data after the last table: LAMMPS ignores it; spinlat refuses (sizes in the header wrong);
    - a grid line missing its cutoff: LAMMPS takes the element's Z as the cutoff and fails at the
      end of the file on the value count; spinlat refuses a header record continued on the next
      line with words left over, naming the short line;
    - ``nan``, ``inf``: LAMMPS reads them (NaN energies); spinlat refuses;
    - ``1.0D+00``, ``1_0``, ``1E+``, Z or Nrho written as ``26.0``: both refuse;
    - more element names than announced: LAMMPS crashes; spinlat refuses;
    - lines longer than LAMMPS's line buffer: LAMMPS cuts a number in two; spinlat reads them.

    Numbers follow :mod:`spinlat.formats.number_syntax` (grammar ``"c"``).
    """

    def __init__(self, path, text):
        self.path = path
        self.ends_with_newline = text.endswith("\n")
        lines = text.split("\n")
        if self.ends_with_newline:
            lines.pop()
        self.lines = lines
        self.k = 0  # index of the next line

    def error(self, lineno, msg):
        return FileFormatError(f"{self.path}: line {lineno}: {msg}" if lineno else f"{self.path}: {msg}")

    @staticmethod
    def words(line):
        return line.split("#", 1)[0].split()

    def skip_line(self, what):
        if self.k >= len(self.lines):
            raise self.error(None, f"the file ends after {self.k} lines, before {what} (truncated, or not an "
                                   "EAM file?)")
        self.k += 1

    def units(self):
        """The word after ``UNITS:`` on the first non-blank line (LAMMPS ``get_potential_units``)."""
        for line in self.lines:
            words = line.split()
            if words:
                for a, w in enumerate(words[:-1]):
                    if w == "UNITS:":
                        return words[a + 1]
                return None
        return None

    def record(self, n, what, extra_ok=True):
        """Words of the next header record (at least ``n``) and its first line number."""
        words, first = [], None
        while not words or len(words) < n:
            if self.k >= len(self.lines):
                if words:
                    raise self.error(first, f"{what} needs {n} fields, the file ends after {len(words)}: "
                                            f"{' '.join(words)!r} (truncated file?)")
                raise self.error(None, f"the file ends where {what} was expected (truncated file?)")
            w = self.words(self.lines[self.k])
            self.k += 1
            if w:
                if first is None:
                    first = self.k
                words += w
        if self.k != first and len(words) > n and not extra_ok:
            raise self.error(first, f"{what} needs {n} fields; they continue on line {self.k}, which leaves "
                                    f"{' '.join(words[n:])!r} over: a field is missing on line {first} "
                                    f"({' '.join(self.words(self.lines[first - 1]))!r})")
        return words, first

    def _numbers(self, words, lineno, what):
        if _text.all_decimal(words):
            vals = [float(w) for w in words]
            if all(map(math.isfinite, vals)):
                return vals
        out = []
        for w in words:
            try:
                out.append(_text.parse_float(w))
            except ValueError as exc:
                raise self.error(lineno, f"{exc} (in {what})") from None
        return out

    def table(self, n, what):
        """``n`` values, as LAMMPS's ``next_dvector``; refuses values left over on the last line."""
        out = np.empty(n)
        i = 0
        counts = []  # (line number, values on it)
        while i < n:
            if self.k >= len(self.lines):
                raise self.error(None, f"the file ends after {i} of the {n} values of {what} (truncated file?)")
            words = self.words(self.lines[self.k])
            self.k += 1
            if not words:
                continue
            vals = self._numbers(words, self.k, what)
            counts.append((self.k, len(vals)))
            take = min(n - i, len(vals))
            if take < len(vals):
                raise self.error(self.k, f"{len(vals) - take} value(s) more than the {n} of {what}: the table "
                                         f"ends inside this line, where LAMMPS would drop {words[take:]} "
                                         f"silently{self._odd_line(counts)}")
            out[i:i + take] = vals
            i += take
        if self.k == len(self.lines) and not self.ends_with_newline:
            self._check_cut_number(counts, what)
        return out

    @staticmethod
    def _odd_line(counts):
        """Where a table's lines stop holding the usual number of values (a value too many there)."""
        sizes = [c for _, c in counts[:-1]]
        if len(sizes) < 3:
            return "; are the sizes in the grid line right?"
        usual = max(set(sizes), key=sizes.count)
        odd = next((ln for ln, c in counts[:-1] if c != usual), None)
        if odd is None:
            return "; are the sizes in the grid line right?"
        return f"; line {odd} holds a different number of values than the table's other lines ({usual})"

    def _check_cut_number(self, counts, what):
        """The file ends without a newline right after this table's last value: refuse the value
        when it has fewer digits than the table's other values (a number cut by truncation)."""
        lineno = counts[-1][0]
        last = self.words(self.lines[lineno - 1])[-1]
        shapes = []
        for ln, _ in reversed(counts):
            words = self.words(self.lines[ln - 1])
            shapes += [_text.digit_shape(w) for w in (words[:-1] if ln == lineno else words)]
            if len(shapes) >= 50:
                break
        shapes = [s for s in shapes if s is not None]
        if len(shapes) < 4:
            return
        usual = max(set(shapes), key=shapes.count)
        if shapes.count(usual) >= 0.8 * len(shapes) and _text.shorter_than(_text.digit_shape(last), usual):
            raise self.error(lineno, f"the file ends without a newline inside a number: {last!r} has fewer digits "
                                     f"than the other values of {what}, so the file is truncated (LAMMPS would "
                                     f"read it as {float(last)!r}); if the value is complete, end the file with "
                                     "a newline")

    def check_end(self, what):
        """Nothing but comments and blank lines may follow the last table."""
        for k in range(self.k, len(self.lines)):
            words = self.words(self.lines[k])
            if words:
                raise self.error(k + 1, f"data after the last table ({what}): {' '.join(words[:6])!r}; the "
                                        "file has more values than its header announces")


def _integer(words, a, lineno, what, rd):
    if not _text.is_integer(words[a]):
        raise rd.error(lineno, f"{what} {words[a]!r} is not an integer")
    return int(words[a])


def _real(words, a, lineno, what, rd):
    try:
        return _text.parse_float(words[a])
    except ValueError as exc:
        raise rd.error(lineno, f"{what}: {exc}") from None


def _grid(rd):
    """Nrho, drho, Nr, dr, cutoff from the grid record."""
    words, ln = rd.record(5, "the grid line (Nrho drho Nr dr cutoff)", extra_ok=False)
    if len(words) > 5:  # LAMMPS's eam/alloy, eam/fs and eam read 5 and drop the rest silently
        he = (" A sixth value (rhomax) is what pair_style eam/he files hold: their F(rho) table starts at rhomax "
              "- (Nrho-1)*drho, not at 0, and would be misread; spinlat does not read eam/he files."
              if len(words) == 6 else "")
        raise rd.error(ln, f"the grid line (Nrho drho Nr dr cutoff) holds {len(words)} values: "
                           f"{' '.join(words)!r}.{he} Remove the extra value(s) if the file is an eam/alloy, eam/fs "
                           "or funcfl file")
    nrho = _integer(words, 0, ln, "Nrho", rd)
    drho = _real(words, 1, ln, "drho", rd)
    nr = _integer(words, 2, ln, "Nr", rd)
    dr = _real(words, 3, ln, "dr", rd)
    cut = _real(words, 4, ln, "cutoff", rd)
    if nrho < 5 or nr < 5:
        raise rd.error(ln, f"need at least 5 grid points, got Nrho={nrho}, Nr={nr}")
    if not (drho > 0 and dr > 0 and cut > 0):
        raise rd.error(ln, f"drho, dr and cutoff must be positive, got {drho}, {dr}, {cut}")
    return nrho, drho, nr, dr, cut


FORMAT_ALIASES = {"setfl": "alloy", "eam/alloy": "alloy", "eam/fs": "fs", "eam": "funcfl"}


_EAM_HE = ("{path}: a LAMMPS pair_style eam/he file, which spinlat does not read (its grid line adds rhomax, and "
           "F(rho) is tabulated from rhomax - (Nrho-1)*drho, which may be negative); use it with LAMMPS, or an "
           "eam/fs, eam/alloy or funcfl potential")


def _format(path, format) -> str:
    """'alloy', 'fs' or 'funcfl' from ``format`` or, when None, the file name."""
    if format is None:
        name = Path(path).name.lower()
        for suffix in (".gz", ".bz2", ".xz"):   # Fe.eam.fs.gz: the format is the name's before it
            name = name.removesuffix(suffix)
        if name.endswith(".he"):
            raise InputError(_EAM_HE.format(path=path))
        if name.endswith((".eam.fs", ".fs")):
            return "fs"
        if name.endswith((".eam.alloy", ".alloy", ".setfl")):
            return "alloy"
        if name.endswith(".eam"):
            return "funcfl"
        raise InputError(f"{path}: cannot tell the EAM format from the file name; pass format='alloy' "
                         "(setfl, pair_style eam/alloy), format='fs' (Finnis-Sinclair, pair_style eam/fs) or "
                         "format='funcfl' (DYNAMO single-element file, pair_style eam)")
    fmt = FORMAT_ALIASES.get(format.lower(), format.lower()) if isinstance(format, str) else None
    if fmt in ("he", "eam/he"):
        raise InputError(_EAM_HE.format(path=path))
    if fmt not in FORMATS:
        raise InputError(f"EAM format: unknown EAM format {format!r}; expected 'alloy', 'fs' or 'funcfl' (or LAMMPS's names "
                         f"{', '.join(map(repr, FORMAT_ALIASES))})")
    return fmt


def _read_text(path) -> str:
    """The text of an EAM table, also gzip, bzip2 or xz compressed (LAMMPS reads ``Fe.eam.fs.gz``)."""
    try:
        with open_decompressed(path) as fh:
            return fh.read().decode("utf-8", errors="replace")
    except (OSError, EOFError) as exc:
        raise FileFormatError(f"cannot read EAM file {path}: {getattr(exc, 'strerror', None) or exc}") from None


def _energy_factor(rd) -> tuple[float, str | None]:
    """eV per file energy unit from the ``UNITS:`` tag (LAMMPS converts ``real`` for ``metal`` runs)."""
    from .. import units as _units

    unit = rd.units()
    if unit not in (None, "metal", "real"):
        raise rd.error(1, f"UNITS: {unit}: an EAM file must be in LAMMPS 'metal' units (eV, Å) or 'real' "
                          "units (kcal/mol, Å, converted)")
    return (_units.LAMMPS_KCAL_MOL_IN_EV if unit == "real" else 1.0), unit


def read_eam_file(path, format=None) -> dict:
    """Read a LAMMPS setfl (``format="alloy"``), Finnis-Sinclair (``format="fs"``) or DYNAMO
    funcfl (``format="funcfl"``) EAM file.

    The file is read exactly as LAMMPS's ``pair_style eam/alloy`` / ``eam/fs`` reads it
    (``#`` comments, blank lines, numbers split over lines in any way, an optional
    ``UNITS: metal|real`` tag on the first line; see :class:`_EAMText`), and checked more
    strictly: every table must hold exactly its number of values and end at the end of a line,
    nothing but comments may follow the last table, a last value cut short by truncation, NaN,
    infinity and Fortran ``D`` exponents are refused (LAMMPS drops the extra values, reads the
    cut value and the NaN, and refuses ``D`` too). ``UNITS: real`` (kcal/mol) energies are
    converted to eV with LAMMPS's factor :data:`spinlat.units.LAMMPS_KCAL_MOL_IN_EV`.

    Returns a dict with ``symbols`` (list), ``numbers`` (atomic numbers), ``masses`` (amu),
    ``nrho``, ``drho`` (density grid), ``nr``, ``dr`` (Å), ``cutoff`` (Å), ``frho``
    (nel, nrho) embedding energies F(ρ) in eV, ``rhor`` (nel, nel, nr) with ``rhor[b, a]`` the
    density that an atom of element b creates at an atom of element a, ``z2r`` (nel, nel,
    nr) the tabulated r·φ(r) in eV·Å (symmetric), and ``units`` (the file's tag or None). Grid
    points are x_k = k·δ, k = 0..n−1. A funcfl file gives these tables on LAMMPS's grid (see
    :func:`_funcfl_tables`) and ``rhomax``, the density beyond which F continues linearly.

    Raises :class:`~spinlat.errors.FileFormatError` naming the file and line for malformed or
    truncated files.
    """
    from ase.data import atomic_numbers, chemical_symbols

    path = validation.path(path, "EAM path")
    if format is not None:  # the arguments first, then the file
        _format(path, format)
    path = validation.existing_file(path, "EAM path", "EAM file")
    fmt = _format(path, format)
    text = _read_text(path)
    if fmt == "funcfl":
        return _funcfl_tables([_read_funcfl(path, text)])
    rd = _EAMText(path, text)
    energy_factor, unit = _energy_factor(rd)
    for _ in range(3):
        rd.skip_line(f"the element line (line 4; an EAM {fmt} file starts with three comment lines)")
    words, ln = rd.record(1, "the element line (Nelements Element1 ...)")
    nel = _integer(words, 0, ln, "the number of elements", rd)
    if nel < 1:
        raise rd.error(ln, f"the number of elements must be positive, got {nel}")
    symbols = words[1:]
    if len(symbols) != nel:
        raise rd.error(ln, f"{nel} element(s) announced but {len(symbols)} name(s) given: {' '.join(words)!r}")
    if len(set(symbols)) != nel:
        raise rd.error(ln, f"the same element appears twice in {symbols}")
    nrho, drho, nr, dr, cut = _grid(rd)

    numbers, masses = [], []
    frho = np.empty((nel, nrho))
    rhor = np.empty((nel, nel, nr))
    z2r = np.empty((nel, nel, nr))
    for a, sym in enumerate(symbols):
        words, ln = rd.record(2, f"the header line of element {sym} (Z mass a0 lattice)")
        z_file = _integer(words, 0, ln, f"the atomic number of {sym}", rd)
        mass = _real(words, 1, ln, f"the mass of {sym}", rd)
        if not mass > 0:
            raise rd.error(ln, f"the mass of {sym} must be positive, got {mass}")
        if sym in atomic_numbers:
            z = atomic_numbers[sym]
        elif 1 <= z_file < len(chemical_symbols):
            z = z_file
        else:
            raise rd.error(ln, f"element {sym!r} is not a chemical symbol and its atomic number {z_file} is "
                               "not valid")
        numbers.append(z)
        masses.append(mass)
        frho[a] = rd.table(nrho, f"F(rho) of {sym}") * energy_factor
        if fmt == "alloy":
            rhor[a, :] = rd.table(nr, f"rho(r) of {sym}")[None, :]
        else:
            for b, other in enumerate(symbols):
                rhor[a, b] = rd.table(nr, f"rho(r) of {sym} at {other}")
    for a in range(nel):
        for b in range(a + 1):
            z2r[a, b] = z2r[b, a] = rd.table(nr, f"r*phi(r) of {symbols[a]}-{symbols[b]}") * energy_factor
    rd.check_end(f"r*phi(r) of {symbols[-1]}-{symbols[-1]}")
    if len(set(numbers)) != nel:
        raise FileFormatError(f"{path}: the same element appears twice in {symbols} (atomic numbers {numbers})")
    return dict(format=fmt, symbols=list(symbols), numbers=numbers, masses=masses, nrho=nrho, drho=drho,
                nr=nr, dr=dr, cutoff=cut, frho=frho, rhor=rhor, z2r=z2r, units=unit)


def _read_funcfl(path, text):
    """One DYNAMO *funcfl* file (``pair_style eam``), read as LAMMPS's ``PairEAM::read_file``:
    a comment line, ``Z mass a0 lattice``, ``Nrho drho Nr dr cutoff``, then F(ρ) (Nrho values,
    eV), Z(r) (Nr values, effective charge in √(Hartree·Bohr)) and ρ(r) (Nr values)."""
    from ase.data import chemical_symbols

    rd = _EAMText(path, text)
    factor, unit = _energy_factor(rd)
    rd.skip_line("the element line (line 2; a funcfl file starts with one comment line)")
    words, ln = rd.record(2, "the element line (Z mass a0 lattice)")
    z = _integer(words, 0, ln, "the atomic number", rd)
    mass = _real(words, 1, ln, "the mass", rd)
    if not 1 <= z < len(chemical_symbols):
        raise rd.error(ln, f"atomic number {z} is not a chemical element (a funcfl file names its element "
                           "only by Z)")
    if not mass > 0:
        raise rd.error(ln, f"the mass must be positive, got {mass}")
    nrho, drho, nr, dr, cut = _grid(rd)
    sym = chemical_symbols[z]
    frho = rd.table(nrho, f"F(rho) of {sym}") * factor
    zr = rd.table(nr, f"Z(r) of {sym}") * math.sqrt(factor)
    rhor = rd.table(nr, f"rho(r) of {sym}")
    rd.check_end(f"rho(r) of {sym}")
    return dict(path=path, symbol=sym, number=z, mass=mass, nrho=nrho, drho=drho, nr=nr, dr=dr, cutoff=cut,
                frho=frho, zr=zr, rhor=rhor, units=unit)


def _lagrange4(f, n, delta, x):
    """LAMMPS ``PairEAM::file2array``: 4-point Lagrange interpolation of the table ``f`` (n knots,
    spacing ``delta``) at the points ``x``, in LAMMPS's arithmetic (same rounding)."""
    sixth = 1.0 / 6.0
    p = x / delta + 1.0
    k = np.maximum(np.minimum(p.astype(np.int64), n - 2), 2)
    p = np.minimum(p - k, 2.0)
    cof1 = -sixth * p * (p - 1.0) * (p - 2.0)
    cof2 = 0.5 * (p * p - 1.0) * (p - 2.0)
    cof3 = -0.5 * p * (p + 1.0) * (p - 2.0)
    cof4 = sixth * p * (p * p - 1.0)
    v = np.concatenate(([0.0], f))  # 1-based like LAMMPS
    return cof1 * v[k - 1] + cof2 * v[k] + cof3 * v[k + 1] + cof4 * v[k + 2]


def _funcfl_tables(files) -> dict:
    """The setfl-like tables LAMMPS builds from one or more funcfl files (``PairEAM::file2array``):
    every table interpolated to the coarsest spacings, nr = round((Nr−1)·dr / dr_max) and
    nrho likewise (one knot fewer than a file on that grid), ρ_max = max (Nρ−1)·δρ of the files
    (beyond it F is continued linearly), cutoff = the largest file cutoff, and the pair term
    r·φ_ab = 27.2·0.529·Z_a(r)·Z_b(r) (LAMMPS's Hartree·Bohr in eV·Å, :data:`units.LAMMPS_HARTREE_BOHR`)."""
    from .. import units as _units

    dr = max(f["dr"] for f in files)
    drho = max(f["drho"] for f in files)
    rmax = max((f["nr"] - 1) * f["dr"] for f in files)
    rhomax = max((f["nrho"] - 1) * f["drho"] for f in files)
    nr = int(rmax / dr + 0.5)
    nrho = int(rhomax / drho + 0.5)
    if nr < 5 or nrho < 5:
        raise FileFormatError(f"{files[0]['path']}: the funcfl grids give {nrho} density and {nr} distance points "
                              "(at least 5 needed)")
    r = np.arange(nr) * dr
    rho = np.arange(nrho) * drho
    nel = len(files)
    frho = np.array([_lagrange4(f["frho"], f["nrho"], f["drho"], rho) for f in files])
    dens = np.array([_lagrange4(f["rhor"], f["nr"], f["dr"], r) for f in files])
    charge = np.array([_lagrange4(f["zr"], f["nr"], f["dr"], r) for f in files])
    rhor = np.repeat(dens[:, None, :], nel, axis=1)  # rhor[b, a]: created by b, at any a
    z2r = _units.LAMMPS_HARTREE_BOHR * charge[:, None, :] * charge[None, :, :]
    numbers = [f["number"] for f in files]
    if len(set(numbers)) != nel:
        raise InputError(f"two funcfl files for the same element: {[f['path'] for f in files]}")
    units_ = {f["units"] for f in files}
    return dict(format="funcfl", symbols=[f["symbol"] for f in files], numbers=numbers,
                masses=[f["mass"] for f in files], nrho=nrho, drho=drho, nr=nr, dr=dr,
                cutoff=max(f["cutoff"] for f in files), rhomax=rhomax, frho=frho, rhor=rhor, z2r=z2r,
                units=units_.pop() if len(units_) == 1 else sorted(map(str, units_)))


def spline_coefficients(f: np.ndarray) -> np.ndarray:
    """LAMMPS ``pair_style eam`` cubic coefficients of a table ``f`` (n values, n ≥ 5).

    Returns (n+1, 4) rows [c3, c4, c5, c6], 1-based like LAMMPS (row 0 unused): on segment m
    the value is ((c3 p + c4) p + c5) p + c6 and the derivative (per grid step) is
    (3 c3 p + 2 c4) p + c5, for 0 ≤ p ≤ 1.
    """
    f = np.asarray(f, dtype=np.float64)
    n = len(f)
    c = np.zeros((n + 1, 4))
    v = np.zeros(n + 1)
    v[1:] = f
    s = np.zeros(n + 1)
    s[1] = v[2] - v[1]
    s[2] = 0.5 * (v[3] - v[1])
    s[n - 1] = 0.5 * (v[n] - v[n - 2])
    s[n] = v[n] - v[n - 1]
    m = np.arange(3, n - 1)
    s[m] = ((v[m - 2] - v[m + 2]) + 8.0 * (v[m + 1] - v[m - 1])) / 12.0
    m = np.arange(1, n)
    c[m, 2] = s[m]
    c[1:, 3] = v[1:]
    c[n, 2] = s[n]
    c[m, 1] = 3.0 * (v[m + 1] - v[m]) - 2.0 * s[m] - s[m + 1]
    c[m, 0] = s[m] + s[m + 1] - 2.0 * (v[m + 1] - v[m])
    return c


# --------------------------------------------------------------------------------------
# numba kernels
# --------------------------------------------------------------------------------------


@numba.njit(cache=True)
def _half_offsets(offsets, hstart):
    """CSR offsets (n+1,) int64 of the half list that is the tail ``hstart[a]:offsets[a+1]`` of
    every row of a full list (:attr:`~spinlat.neighbors.NeighborList.half_start`): half pair k of
    row a is full-list entry ``k − hoff[a] + hstart[a]``, and the head entry p of row a (its
    reverse entries) has the index ``p − hoff[a]`` in the heads' CSR order."""
    n = hstart.shape[0]
    hoff = np.zeros(n + 1, dtype=np.int64)
    for a in range(n):
        hoff[a + 1] = hoff[a] + offsets[a + 1] - hstart[a]
    return hoff


@numba.njit(cache=True)
def _reverse_half_pairs(offsets, hstart, hoff, nbr):
    """For every head entry of a full list (partner j < a, or a itself with a lexically negative
    shift; index ``p − hoff[a]``) the half pair it is the reverse of, (H,) int32: what lets a
    kernel gather what every pair gives an atom without a write shared between threads.

    Rows are sorted by (partner, shift in lexical order), so the g entries a → j (shifts S_0 <
    … < S_{g−1}) of row a's tail have their reverses j → a (shifts −S_{g−1} < … < −S_0) as one
    group of row j's head, in the opposite order; rows taken in increasing order fill every
    head group by group from its start."""
    n = hstart.shape[0]
    tk = np.empty(hoff[n], dtype=np.int32)
    fill = offsets[:n].copy()  # next unfilled head entry of every row
    for a in range(n):
        p = hstart[a]
        end = offsets[a + 1]
        while p < end:
            j = nbr[p]
            q = p
            while q < end and nbr[q] == j:
                q += 1
            g = q - p
            base = fill[j] - hoff[j]
            for t in range(g):
                tk[base + g - 1 - t] = p + t - hstart[a] + hoff[a]
            fill[j] += g
            p = q
    return tk


@numba.njit(cache=True, inline="always")
def _store_row(forces, virial, i, fx, fy, fz, vxx, vyy, vzz, vyz, vxz, vxy, do_virial):
    """Atom i's row sums of a force pass: ``forces[i]`` ← (fx, fy, fz) eV/Å and, with
    ``do_virial``, ``virial[i]`` ← (xx, yy, zz, yz, xz, xy) eV."""
    forces[i, 0] = fx
    forces[i, 1] = fy
    forces[i, 2] = fz
    if do_virial:
        virial[i, 0] = vxx
        virial[i, 1] = vyy
        virial[i, 2] = vzz
        virial[i, 3] = vyz
        virial[i, 4] = vxz
        virial[i, 5] = vxy


@numba.njit(cache=True, fastmath=_FMA, inline="always")
def _segment(r, rdr, nr):
    """LAMMPS pair_style eam: segment m and fraction p of distance r, held beyond the last knot."""
    p = r * rdr + 1.0
    m = int(p)
    if m > nr - 1:
        m = nr - 1
    p -= m
    if p > 1.0:
        p = 1.0
    return m, p


def _eam_kernels(threaded):
    """The EAM passes, serial (``threaded`` False) or with threads over the atoms (True): one
    Python source compiled twice, so both give the same bits. Every atom's sums run in a fixed
    order (its own half-list row, then the pairs where it is the partner, in the order of its
    row's head; or its full row), and each thread writes only its own atoms' rows and pairs: no
    reduction depends on the threads.

    The half list is the tail ``hstart[i]:offsets[i+1]`` of every row of the compact full
    neighbour list (partners ``nbr``, shift index ``sidx`` into the shift vectors ``svec``);
    pair k of row i is entry ``k − hoff[i] + hstart[i]``; ``tk`` maps the head entries to the
    half pairs they reverse (:func:`_reverse_half_pairs`)."""

    @numba.njit(cache=True, fastmath=_FMA, parallel=threaded)
    def density_rows(pos, offsets, hstart, hoff, nbr, sidx, svec, types, nel, cutsq, rdr, nr, tab, sym, rho,
                     energies, store, cache, pv):
        """Per half-list row i: ρ_i and ½ Σ φ of the row written to ``rho[i]`` and
        ``energies[i]``; per pair k the density the pair gives its partner j (``pv[k, 0]``) and φ
        (``pv[k, 1]``), zeros beyond the cutoff. With ``store``, also the radial derivatives
        divided by r, eV/Å² per unit F': ``cache[k, 0]`` = (dρ_{j→i}/dr)/r, then (not ``sym``)
        ``cache[k, 1]`` = (dρ_{i→j}/dr)/r, and last (dφ/dr)/r; zeros beyond the cutoff."""
        _ = threaded  # a closure constant: it keeps the numba cache entries of the two variants apart
        zoff = 4 if sym else 8
        roff = 0 if sym else 4
        cphi = 1 if sym else 2
        for i in numba.prange(pos.shape[0]):
            xi = pos[i, 0]
            yi = pos[i, 1]
            zi = pos[i, 2]
            ti = types[i] * nel
            rhoi = 0.0
            ei = 0.0
            h0 = hstart[i]
            k0 = hoff[i]
            for e in range(h0, offsets[i + 1]):
                k = e - h0 + k0
                j = nbr[e]
                s = sidx[e]
                dx = pos[j, 0] - xi + svec[s, 0]
                dy = pos[j, 1] - yi + svec[s, 1]
                dz = pos[j, 2] - zi + svec[s, 2]
                rsq = dx * dx + dy * dy + dz * dz
                if rsq < cutsq:
                    r = math.sqrt(rsq)
                    recip = 1.0 / r
                    m, p = _segment(r, rdr, nr)
                    t = ti + types[j]
                    a0 = tab[t, m, 0]
                    a1 = tab[t, m, 1]
                    a2 = tab[t, m, 2]
                    rho_here = ((a0 * p + a1) * p + a2) * p + tab[t, m, 3]
                    rhoi += rho_here
                    b0 = tab[t, m, zoff]
                    b1 = tab[t, m, zoff + 1]
                    b2 = tab[t, m, zoff + 2]
                    phi = (((b0 * p + b1) * p + b2) * p + tab[t, m, zoff + 3]) * recip
                    if sym:
                        pv[k, 0] = rho_here
                    else:
                        pv[k, 0] = ((tab[t, m, roff] * p + tab[t, m, roff + 1]) * p + tab[t, m, roff + 2]) * p \
                            + tab[t, m, roff + 3]
                    pv[k, 1] = phi
                    ei += 0.5 * phi
                    if store:
                        cache[k, 0] = ((3.0 * a0 * p + 2.0 * a1) * p + a2) * rdr * recip
                        if not sym:
                            cache[k, 1] = ((3.0 * tab[t, m, roff] * p + 2.0 * tab[t, m, roff + 1]) * p
                                           + tab[t, m, roff + 2]) * rdr * recip
                        z2p = ((3.0 * b0 * p + 2.0 * b1) * p + b2) * rdr
                        cache[k, cphi] = (z2p * recip - phi * recip) * recip
                else:
                    pv[k, 0] = 0.0
                    pv[k, 1] = 0.0
                    if store:
                        for c in range(cache.shape[1]):
                            cache[k, c] = 0.0
            rho[i] = rhoi
            energies[i] = ei

    @numba.njit(cache=True, parallel=threaded)
    def density_gather(offsets, hstart, hoff, tk, pv, rho, energies):
        """Add to ρ_a and the pair energy of atom a what the pairs where a is the partner give it."""
        _ = threaded
        for a in numba.prange(rho.shape[0]):
            r = rho[a]
            e = energies[a]
            for q in range(offsets[a] - hoff[a], hstart[a] - hoff[a]):
                k = tk[q]
                r += pv[k, 0]
                e += 0.5 * pv[k, 1]
            rho[a] = r
            energies[a] = e

    @numba.njit(cache=True, fastmath=_FMA, parallel=threaded)
    def density_full(pos, offsets, nbr, sidx, svec, types, nel, cutsq, rdr, nr, tab, sym, rho, energies):
        """Without pair tables (``EAM(low_memory=True)``): ρ_i and ½ Σ_j φ(r_ij) over atom i's
        full row, written to ``rho[i]`` and ``energies[i]``."""
        _ = threaded
        zoff = 4 if sym else 8
        for i in numba.prange(pos.shape[0]):
            xi = pos[i, 0]
            yi = pos[i, 1]
            zi = pos[i, 2]
            ti = types[i] * nel
            rhoi = 0.0
            ei = 0.0
            for e in range(offsets[i], offsets[i + 1]):
                j = nbr[e]
                s = sidx[e]
                dx = pos[j, 0] - xi + svec[s, 0]
                dy = pos[j, 1] - yi + svec[s, 1]
                dz = pos[j, 2] - zi + svec[s, 2]
                rsq = dx * dx + dy * dy + dz * dz
                if rsq < cutsq:
                    r = math.sqrt(rsq)
                    m, p = _segment(r, rdr, nr)
                    t = ti + types[j]
                    rhoi += ((tab[t, m, 0] * p + tab[t, m, 1]) * p + tab[t, m, 2]) * p + tab[t, m, 3]
                    ei += 0.5 * ((((tab[t, m, zoff] * p + tab[t, m, zoff + 1]) * p + tab[t, m, zoff + 2]) * p
                                  + tab[t, m, zoff + 3]) / r)
            rho[i] = rhoi
            energies[i] = ei

    @numba.njit(cache=True, parallel=threaded)
    def embedding(rho, types, rdrho, nrho, rhomax, ftab, fp, femb):
        """F(ρ_i) written to ``femb``, F'(ρ_i) to ``fp``."""
        _ = threaded
        for i in numba.prange(rho.shape[0]):
            p = rho[i] * rdrho + 1.0
            m = int(p)
            if m > nrho - 1:
                m = nrho - 1
            if m < 1:
                m = 1
            p -= m
            if p > 1.0:
                p = 1.0
            t = types[i]
            c0 = ftab[t, m, 0]
            c1 = ftab[t, m, 1]
            c2 = ftab[t, m, 2]
            d = ((3.0 * c0 * p + 2.0 * c1) * p + c2) * rdrho
            fp[i] = d
            f = ((c0 * p + c1) * p + c2) * p + ftab[t, m, 3]
            if rho[i] > rhomax:  # beyond the table: continue linearly (as LAMMPS)
                f += d * (rho[i] - rhomax)
            femb[i] = f

    @numba.njit(cache=True, fastmath=_FMA, parallel=threaded)
    def force_gather(pos, offsets, hstart, hoff, nbr, sidx, svec, tk, sym, fp, cache, forces, virial, do_virial):
        """Forces −∂E/∂r_i (eV/Å) written to ``forces`` from F'(ρ) ``fp`` and the pair ``cache``
        of ``density_rows``: atom i's own half row, then the pairs where i is the partner (its
        row's head). With ``do_virial`` the virial Σ (∂E/∂d)⊗d of i's own half row (eV; xx, yy,
        zz, yz, xz, xy) goes to ``virial[i]`` (every pair once)."""
        _ = threaded
        for i in numba.prange(pos.shape[0]):
            xi = pos[i, 0]
            yi = pos[i, 1]
            zi = pos[i, 2]
            fpi = fp[i]
            fxi = 0.0
            fyi = 0.0
            fzi = 0.0
            vxx = vyy = vzz = vyz = vxz = vxy = 0.0
            h0 = hstart[i]
            k0 = hoff[i]
            for e in range(h0, offsets[i + 1]):
                k = e - h0 + k0
                j = nbr[e]
                # (dE/dr)/r of this pair
                if sym:
                    g = (fpi + fp[j]) * cache[k, 0] + cache[k, 1]
                else:
                    g = fpi * cache[k, 0] + fp[j] * cache[k, 1] + cache[k, 2]
                if g == 0.0:
                    continue
                s = sidx[e]
                dx = pos[j, 0] - xi + svec[s, 0]
                dy = pos[j, 1] - yi + svec[s, 1]
                dz = pos[j, 2] - zi + svec[s, 2]
                fx = g * dx
                fy = g * dy
                fz = g * dz
                fxi += fx
                fyi += fy
                fzi += fz
                if do_virial:
                    vxx += fx * dx
                    vyy += fy * dy
                    vzz += fz * dz
                    vyz += fy * dz
                    vxz += fx * dz
                    vxy += fx * dy
            for e in range(offsets[i], h0):
                k = tk[e - k0]
                o = nbr[e]
                if sym:
                    g = (fp[o] + fpi) * cache[k, 0] + cache[k, 1]
                else:
                    g = fp[o] * cache[k, 0] + fpi * cache[k, 1] + cache[k, 2]
                if g == 0.0:
                    continue
                s = sidx[e]  # the vector from i to o: minus the pair's (exact: shift vectors are odd)
                fxi += g * (pos[o, 0] - xi + svec[s, 0])
                fyi += g * (pos[o, 1] - yi + svec[s, 1])
                fzi += g * (pos[o, 2] - zi + svec[s, 2])
            _store_row(forces, virial, i, fxi, fyi, fzi, vxx, vyy, vzz, vyz, vxz, vxy, do_virial)

    @numba.njit(cache=True, fastmath=_FMA, parallel=threaded)
    def force_full(pos, offsets, nbr, sidx, svec, types, nel, cutsq, rdr, nr, tab, sym, fp, forces, virial,
                   do_virial):
        """Without pair tables (``EAM(low_memory=True)``): forces −∂E/∂r_i (eV/Å) over atom i's full
        row, the radial derivatives evaluated for every entry; with ``do_virial`` half the virial
        Σ (∂E/∂d)⊗d of the row (every pair is in two rows) to ``virial[i]``. The two entries of a
        pair add the same terms in the same order (the smaller atom's first), so they give the
        same (dE/dr)/r bit for bit and the forces sum to zero as in the half-list pass."""
        _ = threaded
        zoff = 4 if sym else 8
        roff = 0 if sym else 4
        for i in numba.prange(pos.shape[0]):
            xi = pos[i, 0]
            yi = pos[i, 1]
            zi = pos[i, 2]
            ti = types[i] * nel
            fpi = fp[i]
            fxi = 0.0
            fyi = 0.0
            fzi = 0.0
            vxx = vyy = vzz = vyz = vxz = vxy = 0.0
            for e in range(offsets[i], offsets[i + 1]):
                j = nbr[e]
                s = sidx[e]
                dx = pos[j, 0] - xi + svec[s, 0]
                dy = pos[j, 1] - yi + svec[s, 1]
                dz = pos[j, 2] - zi + svec[s, 2]
                rsq = dx * dx + dy * dy + dz * dz
                if rsq >= cutsq:
                    continue
                r = math.sqrt(rsq)
                recip = 1.0 / r
                m, p = _segment(r, rdr, nr)
                t = ti + types[j]
                # dρ_{j→i}/dr (at i), dρ_{i→j}/dr (at j), d(rφ)/dr and φ
                dri = ((3.0 * tab[t, m, 0] * p + 2.0 * tab[t, m, 1]) * p + tab[t, m, 2]) * rdr * recip
                if sym:
                    drj = dri
                else:
                    drj = ((3.0 * tab[t, m, roff] * p + 2.0 * tab[t, m, roff + 1]) * p
                           + tab[t, m, roff + 2]) * rdr * recip
                b0 = tab[t, m, zoff]
                b1 = tab[t, m, zoff + 1]
                b2 = tab[t, m, zoff + 2]
                phi = (((b0 * p + b1) * p + b2) * p + tab[t, m, zoff + 3]) * recip
                z2p = ((3.0 * b0 * p + 2.0 * b1) * p + b2) * rdr
                dphi = (z2p * recip - phi * recip) * recip
                if i <= j:
                    g = (fpi * dri + fp[j] * drj) + dphi
                else:
                    g = (fp[j] * drj + fpi * dri) + dphi
                fx = g * dx
                fy = g * dy
                fz = g * dz
                fxi += fx
                fyi += fy
                fzi += fz
                if do_virial:
                    vxx += 0.5 * fx * dx
                    vyy += 0.5 * fy * dy
                    vzz += 0.5 * fz * dz
                    vyz += 0.5 * fy * dz
                    vxz += 0.5 * fx * dz
                    vxy += 0.5 * fx * dy
            _store_row(forces, virial, i, fxi, fyi, fzi, vxx, vyy, vzz, vyz, vxz, vxy, do_virial)

    return density_rows, density_gather, embedding, force_gather, density_full, force_full


#: the EAM passes on one thread (see :func:`_eam_kernels`)
(_density_rows, _density_gather, _embedding, _force_gather, _density_full,
 _force_full) = _eam_kernels(False)
#: the same with threads over the atoms (the same bits)
(_density_rows_parallel, _density_gather_parallel, _embedding_parallel, _force_gather_parallel,
 _density_full_parallel, _force_full_parallel) = _eam_kernels(True)

_NO_PAIRS = np.zeros(0, dtype=np.int32)

#: from this many atoms ``EAM(low_memory="auto")`` (the default) keeps no per-pair tables: measured
#: (``benchmarks/bench_eam_low_memory.py``, 2 shared cores, load 5.5-6.8) the full-row passes ran
#: at 0.80-2.27× the tabled rate at 16 384 and 131 072 atoms (1 and 2 threads, EAM alone and NVE:
#: as fast within the noise; the tables stream ~1 kB/atom through memory every step) and at
#: 0.29-0.85× at 2 000 atoms; a module parameter: both give the same results to round-off
LOW_MEMORY_MIN_ATOMS = 8192

#: below this many atoms the EAM passes run on one thread (a parallel region costs more than the
#: work it shares); a module parameter: the result does not change by a bit
PARALLEL_MIN_ATOMS = 8192


def _kernels(n):
    """(density_rows, density_gather, embedding, force_gather, density_full, force_full) for n
    atoms (looked up at each call: tests count the calls of the threaded ones)."""
    if n >= PARALLEL_MIN_ATOMS and numba.get_num_threads() > 1:
        return (_density_rows_parallel, _density_gather_parallel, _embedding_parallel, _force_gather_parallel,
                _density_full_parallel, _force_full_parallel)
    return _density_rows, _density_gather, _embedding, _force_gather, _density_full, _force_full



# --------------------------------------------------------------------------------------
# the potential
# --------------------------------------------------------------------------------------


@refuse_other_names()
class EAM(Potential):
    """Embedded-atom potential from LAMMPS EAM files: ``.eam.alloy`` (setfl), ``.eam.fs``
    (Finnis-Sinclair) or DYNAMO ``.eam`` (funcfl, one element per file).

    Parameters
    ----------
    path : the potential file; for funcfl, one file or a list of files (one per element, as
        ``pair_coeff i i file`` for each type of LAMMPS ``pair_style eam``).
    format : ``"alloy"``, ``"fs"`` or ``"funcfl"``; by default taken from the file name.
    low_memory : ``"auto"`` (default), True or False. False (tabled): the densities pass over the
        half list (each pair once, in the row of its smaller atom, inside the neighbour list's
        full rows) and keeps, per pair, the density it gives the partner and φ (16 bytes), the
        radial derivatives for the forces (16 bytes; 24 for Finnis-Sinclair files whose cross
        densities differ) and the index that gathers them for the partner (4 bytes): ~1 kB/atom
        for bcc Fe at 5.6 Å. True: every atom sums over its full row and the forces evaluate the
        derivatives again (LAMMPS ``newton off`` style): no per-pair memory, each pair computed
        twice. ``"auto"``: tabled below :data:`LOW_MEMORY_MIN_ATOMS` (8 192) atoms, full rows
        from there (where they measured as fast or faster: README, Scaling). Every choice gives
        the same energies and forces to round-off. Raises InputError for any other value.

    Attributes: ``cutoff`` (Å, from the file), ``elements`` (atomic numbers, file order),
    ``symbols``, ``masses`` (amu, from the file). Energies and forces follow LAMMPS's
    ``pair_style eam/alloy`` / ``eam/fs`` / ``eam`` interpolation exactly (see the module
    docstring and :func:`read_eam_file`). Magnetic forces are zero (no magnetic dependence).

    Raises :class:`~spinlat.errors.FileFormatError` (naming file and line) for malformed files
    and :class:`~spinlat.errors.InputError` for an unknown format.
    """

    depends_on_magnitudes = False
    provides_magnetic_forces = True
    #: no dependence on spins or moments: spin integrators skip this term
    magnetic = False
    spin_rotation_invariant = True
    _PARAMETERS = ("path", "format", "symbols", "elements", "masses", "cutoff")

    def __init__(self, path, format=None, low_memory="auto"):
        if isinstance(low_memory, str) and low_memory == "auto":
            self.low_memory = "auto"
        else:
            self.low_memory = validation.boolean(low_memory, "low_memory (true, false or 'auto')")
        paths = validation.paths(path, "EAM path")
        if len(paths) == 1:
            data = read_eam_file(paths[0], format)
            self.path = os.fspath(paths[0])
        else:
            if any(_format(p, format) != "funcfl" for p in paths):
                raise InputError(f"EAM: several files {paths} are only for funcfl (pair_style eam, one file per "
                                 "element); setfl and Finnis-Sinclair files hold all elements")
            paths = [validation.existing_file(p, f"EAM path[{k}]", "EAM file") for k, p in enumerate(paths)]
            data = _funcfl_tables([_read_funcfl(p, _read_text(p)) for p in paths])
            self.path = tuple(os.fspath(p) for p in paths)
        self.format = data["format"]
        self.symbols = tuple(data["symbols"])
        self.elements = tuple(int(z) for z in data["numbers"])
        self.masses = tuple(data["masses"])
        self.cutoff = float(data["cutoff"])
        self._data = data
        nel = len(self.elements)
        self._nel = nel
        self._nr, self._dr = data["nr"], data["dr"]
        self._nrho, self._drho = data["nrho"], data["drho"]
        self._rdr = 1.0 / self._dr
        self._rdrho = 1.0 / self._drho
        self._rhomax = data.get("rhomax", (self._nrho - 1) * self._drho)  # F is linear beyond it
        self._cutsq = self.cutoff * self.cutoff
        zmap = np.full(119, -1, dtype=np.int64)
        zmap[list(self.elements)] = np.arange(nel)
        self._zmap = zmap

        rhor = data["rhor"]
        spl_rho = np.array([[spline_coefficients(rhor[b, a]) for a in range(nel)] for b in range(nel)])
        spl_z2r = np.array([[spline_coefficients(data["z2r"][a, b]) for b in range(nel)] for a in range(nel)])
        self._sym = bool(np.array_equal(rhor, rhor.transpose(1, 0, 2)))
        width = 8 if self._sym else 12
        tab = np.zeros((nel * nel, self._nr + 1, width))
        for a in range(nel):
            for b in range(nel):
                t = a * nel + b
                tab[t, :, 0:4] = spl_rho[b, a]  # density at an atom of a due to one of b
                if self._sym:
                    tab[t, :, 4:8] = spl_z2r[a, b]
                else:
                    tab[t, :, 4:8] = spl_rho[a, b]
                    tab[t, :, 8:12] = spl_z2r[a, b]
        self._tab = tab
        self._ftab = np.ascontiguousarray(np.array([spline_coefficients(data["frho"][a]) for a in range(nel)]))

    def __repr__(self):
        names = [os.path.basename(p) for p in ((self.path,) if isinstance(self.path, str) else self.path)]
        lean = "" if self.low_memory == "auto" else f", low_memory={self.low_memory}"
        return f"EAM({names[0] if len(names) == 1 else names!r}, format={self.format!r}{lean})"

    def digest_items(self) -> tuple:
        """The tables read from the file(s) (not their paths), for :meth:`parameter_digest`."""
        return (self._data,)

    def _lean(self, n) -> bool:
        """Whether n atoms are evaluated without per-pair tables (full rows)."""
        if self.low_memory == "auto":
            return n >= LOW_MEMORY_MIN_ATOMS
        return self.low_memory

    def _types(self, state):
        return self._zmap[state.numbers]

    def _half(self, nl, state):
        """The half list inside ``nl``'s full list (cached until ``nl`` is rebuilt): (offsets,
        hstart, hoff, nbr, sidx, svec, tk): the tails ``hstart[a]:offsets[a+1]`` of the rows,
        their CSR offsets ``hoff`` and ``tk``, the half pair of every head entry (4 bytes per
        pair; with ``low_memory`` not made: tk is empty)."""
        key = getattr(self, "_half_key", None)
        if key is None or key[0] is not nl or key[1] != nl.n_builds or key[2] != len(state):
            self._half_arrays = None  # let the old arrays go before the new ones are made
            hstart = nl.half_start
            hoff = _half_offsets(nl.offsets, hstart)
            tk = _NO_PAIRS if self._lean(len(state)) else _reverse_half_pairs(nl.offsets, hstart, hoff, nl.j)
            self._half_arrays = (nl.offsets, hstart, hoff, nl.j, nl.shift_index, nl.unique_vectors, tk)
            self._half_key = (nl, nl.n_builds, len(state))
        return self._half_arrays

    def _work(self, n, npairs, need_cache):
        """Work arrays reused between calls: rho, fp, F(rho) (n,), pair values (≥ npairs, 2) and
        pair cache (≥ npairs, 2 or 3); no pair arrays with ``low_memory``."""
        w = getattr(self, "_work_arrays", None)
        if w is None or w[0].shape[0] != n:
            w = [np.empty(n), np.empty(n), np.empty(n), np.empty((0, 2)), np.empty((0, 2 if self._sym else 3))]
        if not self._lean(n):
            if w[3].shape[0] < npairs:
                w[3] = None
                w[3] = np.empty((npairs, 2))
            if need_cache and w[4].shape[0] < npairs:
                w[4] = None
                w[4] = np.empty((npairs, 2 if self._sym else 3))
        self._work_arrays = w
        return w

    def _densities(self, state, half, energies, store):
        """ρ (the work array) and the pair energies (written to ``energies``); returns ρ, the pair
        cache and Σ φ (eV)."""
        n = len(state)
        rows, gather, _, _, full, _ = _kernels(n)
        offsets, hstart, hoff, nbr, sidx, svec, tk = half
        rho, _, _, pv, cache = self._work(n, int(hoff[-1]), store)
        args = (self._types(state), self._nel, self._cutsq, self._rdr, self._nr, self._tab, self._sym, rho, energies)
        if self._lean(n):
            full(state.positions, offsets, nbr, sidx, svec, *args)
            return rho, cache, float(energies.sum())
        rows(state.positions, offsets, hstart, hoff, nbr, sidx, svec, *args, store, cache, pv)
        epair = 2.0 * float(energies.sum())  # Σ ½φ over the rows: every pair once (×2 is exact)
        gather(offsets, hstart, hoff, tk, pv, rho, energies)
        return rho, cache, epair

    def densities(self, state) -> np.ndarray:
        """Host electron densities ρ_i (file units) of every atom, (N,)."""
        self.check_state(state)
        nl = self.neighbor_list(state)
        rho, _, _ = self._densities(state, self._half(nl, state), np.empty(len(state)), False)
        return rho.copy()

    def _evaluate(self, state, neighbors, forces, magnetic_forces, stress) -> Evaluation:
        n = len(state)
        half = self._half(neighbors, state)
        offsets, hstart, hoff, nbr, sidx, svec, tk = half
        types = self._types(state)
        need_grad = bool(forces or stress)
        energies = np.empty(n)
        rho, cache, epair = self._densities(state, half, energies, need_grad)
        _, _, embedding, force_gather, _, force_full = _kernels(n)
        _, fp, femb, _, _ = self._work_arrays
        embedding(rho, types, self._rdrho, self._nrho, self._rhomax, self._ftab, fp, femb)
        eemb = float(femb.sum())
        energies += femb
        f = None
        sigma = None
        if need_grad:
            fbuf = np.empty((n, 3))
            vir = np.empty((n if stress else 0, 6))
            if self._lean(n):
                force_full(state.positions, offsets, nbr, sidx, svec, types, self._nel, self._cutsq, self._rdr,
                           self._nr, self._tab, self._sym, fp, fbuf, vir, bool(stress))
            else:
                force_gather(state.positions, offsets, hstart, hoff, nbr, sidx, svec, tk, self._sym, fp, cache, fbuf,
                             vir, bool(stress))
            f = fbuf if forces else None
            if stress:
                v = vir.sum(axis=0)
                w = np.array([[v[0], v[5], v[4]], [v[5], v[1], v[3]], [v[4], v[3], v[2]]])
                sigma = virial_to_voigt(w, state.volume)
        h = np.zeros((n, 3)) if magnetic_forces else None
        return Evaluation(epair + eemb, f, h, sigma, energies)

    def local_fields(self, state, neighbors, atoms) -> np.ndarray:
        """Zero: EAM does not depend on the magnetic moments, (len(atoms), 3) eV/μB."""
        return np.zeros((len(atoms), 3))
