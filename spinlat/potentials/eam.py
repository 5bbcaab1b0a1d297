"""Embedded-atom method (EAM) potentials from LAMMPS tabulated files.

Reads LAMMPS *setfl* (``pair_style eam/alloy``, ``.eam.alloy``) and *Finnis-Sinclair*
(``pair_style eam/fs``, ``.eam.fs``) files with any number of elements, and interpolates the
tables with the same cubic scheme as LAMMPS's ``pair_style eam`` so that energies and forces
agree with LAMMPS to round-off:

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
  F(ρ) = F(ρ_max) + F'(ρ_max)(ρ − ρ_max).

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
from .base import Evaluation, Potential, virial_to_voigt

#: fused multiply-add in hot kernels (more accurate and faster; no other fast-math liberties)
_FMA = {"contract"}

__all__ = ["EAM", "read_eam_file", "spline_coefficients"]

_FORMATS = ("alloy", "fs")


# --------------------------------------------------------------------------------------
# file reading
# --------------------------------------------------------------------------------------


class _Tokens:
    """Whitespace-separated tokens of a text file, with line numbers for error messages."""

    def __init__(self, path, lines, start):
        self.path = path
        self.lines = lines
        self.line = start  # index of the next line to read
        self.pending = []  # unread tokens of the current line
        self.pending_line = None

    def _fail(self, msg):
        raise FileFormatError(f"{self.path}: {msg}")

    def header_line(self, what, min_tokens):
        """Tokens of the next non-empty line, which must start fresh (no values left over)."""
        if self.pending:
            self._fail(f"line {self.pending_line}: {len(self.pending)} more values than expected before {what}")
        while self.line < len(self.lines):
            toks = self.lines[self.line].split()
            self.line += 1
            if toks:
                if len(toks) < min_tokens:
                    self._fail(f"line {self.line}: {what} needs at least {min_tokens} fields, "
                               f"got {len(toks)}: {self.lines[self.line - 1].strip()!r}")
                return toks, self.line
        self._fail(f"file ended where {what} was expected (truncated file?)")

    def values(self, n, what):
        """``n`` floats that may span several lines."""
        out = np.empty(n)
        k = 0
        while k < n:
            if not self.pending:
                if self.line >= len(self.lines):
                    self._fail(f"file ended after {k} of the {n} values of {what} (truncated file?)")
                self.pending = self.lines[self.line].split()
                self.line += 1
                self.pending_line = self.line
                continue
            take = min(n - k, len(self.pending))
            chunk = self.pending[:take]
            self.pending = self.pending[take:]
            try:
                vals = np.array(chunk, dtype=np.float64)
            except ValueError:
                bad = next(t for t in chunk if not _is_float(t))
                self._fail(f"line {self.pending_line}: {bad!r} is not a number (in {what})")
            if not np.all(np.isfinite(vals)):
                self._fail(f"line {self.pending_line}: non-finite value in {what}")
            out[k:k + take] = vals
            k += take
        return out


def _is_float(t):
    try:
        float(t)
        return True
    except ValueError:
        return False


def _format_from_path(path) -> str:
    name = Path(path).name.lower()
    if name.endswith((".eam.fs", ".fs")):
        return "fs"
    if name.endswith((".eam.alloy", ".alloy", ".setfl")):
        return "alloy"
    raise InputError(f"{path}: cannot tell the EAM format from the file name; pass format='alloy' "
                     "(setfl, pair_style eam/alloy) or format='fs' (Finnis-Sinclair, pair_style eam/fs)")


def read_eam_file(path, format=None) -> dict:
    """Read a LAMMPS setfl (``format="alloy"``) or Finnis-Sinclair (``format="fs"``) EAM file.

    Returns a dict with ``symbols`` (list), ``numbers`` (atomic numbers), ``masses`` (amu),
    ``nrho``, ``drho`` (density grid), ``nr``, ``dr`` (Å), ``cutoff`` (Å), ``frho``
    (nel, nrho) embedding energies F(ρ) in eV, ``rhor`` (nel, nel, nr) with ``rhor[b, a]`` the
    density that an atom of element b creates at an atom of element a, and ``z2r`` (nel, nel,
    nr) the tabulated r·φ(r) in eV·Å (symmetric). Grid points are x_k = k·δ, k = 0..n−1.

    Raises :class:`~spinlat.errors.FileFormatError` naming the file and line for malformed or
    truncated files.
    """
    from ase.data import atomic_numbers, chemical_symbols

    path = os.fspath(path)
    fmt = (format or _format_from_path(path)).lower()
    if fmt in ("setfl", "eam/alloy"):
        fmt = "alloy"
    if fmt == "eam/fs":
        fmt = "fs"
    if fmt not in _FORMATS:
        raise InputError(f"unknown EAM format {format!r}; use 'alloy' or 'fs'")
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            lines = fh.read().splitlines()
    except OSError as exc:
        raise FileFormatError(f"cannot read EAM file {path}: {exc.strerror}") from None
    if len(lines) < 5:
        raise FileFormatError(f"{path}: only {len(lines)} lines; an EAM {fmt} file starts with 3 comment "
                              "lines, the element line and the grid line (truncated or not an EAM file?)")
    tok = _Tokens(path, lines, 3)
    toks, ln = tok.header_line("the element line (Nelements Element1 ...)", 2)
    try:
        nel = int(toks[0])
    except ValueError:
        raise FileFormatError(f"{path}: line {ln}: number of elements {toks[0]!r} is not an integer") from None
    if nel < 1:
        raise FileFormatError(f"{path}: line {ln}: number of elements must be positive, got {nel}")
    symbols = toks[1:]
    if len(symbols) != nel:
        raise FileFormatError(f"{path}: line {ln}: {nel} elements announced but {len(symbols)} names given")
    toks, ln = tok.header_line("the grid line (Nrho drho Nr dr cutoff)", 5)
    try:
        nrho, nr = int(toks[0]), int(toks[2])
        drho, dr, cut = float(toks[1]), float(toks[3]), float(toks[4])
    except ValueError:
        raise FileFormatError(f"{path}: line {ln}: cannot read 'Nrho drho Nr dr cutoff' from "
                              f"{lines[ln - 1].strip()!r}") from None
    if nrho < 5 or nr < 5:
        raise FileFormatError(f"{path}: line {ln}: need at least 5 grid points, got Nrho={nrho}, Nr={nr}")
    if not (drho > 0 and dr > 0 and cut > 0 and math.isfinite(drho + dr + cut)):
        raise FileFormatError(f"{path}: line {ln}: drho, dr and cutoff must be positive, got {drho}, {dr}, {cut}")

    numbers, masses = [], []
    frho = np.empty((nel, nrho))
    rhor = np.empty((nel, nel, nr))
    z2r = np.empty((nel, nel, nr))
    for a, sym in enumerate(symbols):
        toks, ln = tok.header_line(f"the header line of element {sym} (Z mass a0 lattice)", 2)
        try:
            z_file, mass = int(float(toks[0])), float(toks[1])
        except ValueError:
            raise FileFormatError(f"{path}: line {ln}: cannot read atomic number and mass of {sym} from "
                                  f"{lines[ln - 1].strip()!r}") from None
        if sym in atomic_numbers:
            z = atomic_numbers[sym]
        elif 1 <= z_file < len(chemical_symbols):
            z = z_file
        else:
            raise FileFormatError(f"{path}: line {ln}: element {sym!r} is not a chemical symbol and its "
                                  f"atomic number {toks[0]!r} is not valid")
        numbers.append(z)
        masses.append(mass)
        frho[a] = tok.values(nrho, f"F(rho) of {sym}")
        if fmt == "alloy":
            rhor[a, :] = tok.values(nr, f"rho(r) of {sym}")[None, :]
        else:
            for b, other in enumerate(symbols):
                rhor[a, b] = tok.values(nr, f"rho(r) of {sym} at {other}")
    for a in range(nel):
        for b in range(a + 1):
            z2r[a, b] = z2r[b, a] = tok.values(nr, f"r*phi(r) of {symbols[a]}-{symbols[b]}")
    if len(set(numbers)) != nel:
        raise FileFormatError(f"{path}: the same element appears twice in {symbols}")
    return dict(format=fmt, symbols=list(symbols), numbers=numbers, masses=masses, nrho=nrho, drho=drho,
                nr=nr, dr=dr, cutoff=cut, frho=frho, rhor=rhor, z2r=z2r)


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
def _compact_half_list(n, pi, pj, shifts, half):
    """CSR half list from a full neighbour list: for atom i the pairs k in
    ``offsets[i]:offsets[i+1]`` have partner ``hj[k]`` and cell shift ``unique[hs[k]]``.

    ``half`` picks each unordered pair once and is sorted by i. Returns offsets (n+1,),
    hj (P,) int32, hs (P,) int32, unique shifts (K, 3) int64."""
    npairs = half.shape[0]
    offsets = np.zeros(n + 1, dtype=np.int64)
    hj = np.empty(npairs, dtype=np.int32)
    hs = np.empty(npairs, dtype=np.int32)
    rmax = 0
    for k in range(npairs):
        q = half[k]
        for a in range(3):
            s = abs(shifts[q, a])
            if s > rmax:
                rmax = s
    w = 2 * rmax + 1
    lookup = np.full(w * w * w, -1, dtype=np.int64)
    unique = np.empty((min(w * w * w, max(npairs, 1)), 3), dtype=np.int64)
    nuniq = 0
    for k in range(npairs):
        q = half[k]
        offsets[pi[q] + 1] += 1
        hj[k] = pj[q]
        code = ((shifts[q, 0] + rmax) * w + shifts[q, 1] + rmax) * w + shifts[q, 2] + rmax
        u = lookup[code]
        if u < 0:
            u = nuniq
            lookup[code] = u
            for a in range(3):
                unique[u, a] = shifts[q, a]
            nuniq += 1
        hs[k] = u
    for a in range(n):
        offsets[a + 1] += offsets[a]
    return offsets, hj, hs, unique[:nuniq].copy()


@numba.njit(cache=True, fastmath=_FMA)
def _density_pass(pos, offsets, hj, hs, svec, types, nel, cutsq, rdr, nr, tab, sym, rho, energies, store, cache):
    """Densities ρ (added to ``rho``), pair energies (φ/2 added to ``energies`` of both atoms)
    over the CSR half list; returns Σ φ (eV).

    With ``store``, also writes per pair k the radial derivatives divided by r, in eV/Å²
    per unit F': ``cache[k, 0]`` = (dρ_{j→i}/dr)/r, then (not ``sym``) ``cache[k, 1]`` =
    (dρ_{i→j}/dr)/r, and last (dφ/dr)/r; zeros beyond the cutoff."""
    epair = 0.0
    zoff = 4 if sym else 8
    roff = 0 if sym else 4
    cphi = 1 if sym else 2
    for i in range(pos.shape[0]):
        xi = pos[i, 0]
        yi = pos[i, 1]
        zi = pos[i, 2]
        ti = types[i] * nel
        rhoi = 0.0
        ei = 0.0
        for k in range(offsets[i], offsets[i + 1]):
            j = hj[k]
            s = hs[k]
            dx = pos[j, 0] - xi + svec[s, 0]
            dy = pos[j, 1] - yi + svec[s, 1]
            dz = pos[j, 2] - zi + svec[s, 2]
            rsq = dx * dx + dy * dy + dz * dz
            if rsq < cutsq:
                r = math.sqrt(rsq)
                recip = 1.0 / r
                # LAMMPS pair_style eam: segment m, fraction p, held beyond the last knot
                p = r * rdr + 1.0
                m = int(p)
                if m > nr - 1:
                    m = nr - 1
                p -= m
                if p > 1.0:
                    p = 1.0
                t = ti + types[j]
                a0 = tab[t, m, 0]
                a1 = tab[t, m, 1]
                a2 = tab[t, m, 2]
                rhoi += ((a0 * p + a1) * p + a2) * p + tab[t, m, 3]
                b0 = tab[t, m, zoff]
                b1 = tab[t, m, zoff + 1]
                b2 = tab[t, m, zoff + 2]
                phi = (((b0 * p + b1) * p + b2) * p + tab[t, m, zoff + 3]) * recip
                if sym:
                    rho[j] += ((a0 * p + a1) * p + a2) * p + tab[t, m, 3]
                else:
                    rho[j] += ((tab[t, m, roff] * p + tab[t, m, roff + 1]) * p + tab[t, m, roff + 2]) * p \
                        + tab[t, m, roff + 3]
                epair += phi
                ei += 0.5 * phi
                energies[j] += 0.5 * phi
                if store:
                    cache[k, 0] = ((3.0 * a0 * p + 2.0 * a1) * p + a2) * rdr * recip
                    if not sym:
                        cache[k, 1] = ((3.0 * tab[t, m, roff] * p + 2.0 * tab[t, m, roff + 1]) * p
                                       + tab[t, m, roff + 2]) * rdr * recip
                    z2p = ((3.0 * b0 * p + 2.0 * b1) * p + b2) * rdr
                    cache[k, cphi] = (z2p * recip - phi * recip) * recip
            elif store:
                for c in range(cache.shape[1]):
                    cache[k, c] = 0.0
        rho[i] += rhoi
        energies[i] += ei
    return epair


@numba.njit(cache=True)
def _embedding(rho, types, rdrho, nrho, rhomax, ftab, fp, energies):
    """F(ρ_i) added to ``energies``, F'(ρ_i) written to ``fp``; returns Σ F (eV)."""
    e = 0.0
    for i in range(rho.shape[0]):
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
        energies[i] += f
        e += f
    return e


@numba.njit(cache=True, fastmath=_FMA)
def _force_pass(pos, offsets, hj, hs, svec, sym, fp, cache, forces, virial, do_virial):
    """Forces −∂E/∂r (added to ``forces``, eV/Å) and the virial Σ (∂E/∂d)⊗d (eV, added to
    ``virial`` as xx, yy, zz, yz, xz, xy) from F'(ρ) ``fp`` and the pair ``cache`` of
    :func:`_density_pass`."""
    vxx = vyy = vzz = vyz = vxz = vxy = 0.0
    for i in range(pos.shape[0]):
        xi = pos[i, 0]
        yi = pos[i, 1]
        zi = pos[i, 2]
        fpi = fp[i]
        fxi = 0.0
        fyi = 0.0
        fzi = 0.0
        for k in range(offsets[i], offsets[i + 1]):
            j = hj[k]
            s = hs[k]
            # (dE/dr)/r of this pair
            if sym:
                g = (fpi + fp[j]) * cache[k, 0] + cache[k, 1]
            else:
                g = fpi * cache[k, 0] + fp[j] * cache[k, 1] + cache[k, 2]
            if g == 0.0:
                continue
            dx = pos[j, 0] - xi + svec[s, 0]
            dy = pos[j, 1] - yi + svec[s, 1]
            dz = pos[j, 2] - zi + svec[s, 2]
            fx = g * dx
            fy = g * dy
            fz = g * dz
            fxi += fx
            fyi += fy
            fzi += fz
            forces[j, 0] -= fx
            forces[j, 1] -= fy
            forces[j, 2] -= fz
            if do_virial:
                vxx += fx * dx
                vyy += fy * dy
                vzz += fz * dz
                vyz += fy * dz
                vxz += fx * dz
                vxy += fx * dy
        forces[i, 0] += fxi
        forces[i, 1] += fyi
        forces[i, 2] += fzi
    virial[0] += vxx
    virial[1] += vyy
    virial[2] += vzz
    virial[3] += vyz
    virial[4] += vxz
    virial[5] += vxy


# --------------------------------------------------------------------------------------
# the potential
# --------------------------------------------------------------------------------------


class EAM(Potential):
    """Embedded-atom potential from a LAMMPS ``.eam.alloy`` (setfl) or ``.eam.fs`` file.

    Parameters
    ----------
    path : the potential file.
    format : ``"alloy"`` or ``"fs"``; by default taken from the file name.

    Attributes: ``cutoff`` (Å, from the file), ``elements`` (atomic numbers, file order),
    ``symbols``, ``masses`` (amu, from the file). Energies and forces follow LAMMPS's
    ``pair_style eam/alloy`` / ``eam/fs`` interpolation exactly (see the module docstring).
    Magnetic forces are zero (no magnetic dependence).
    """

    depends_on_magnitudes = False
    provides_magnetic_forces = True
    #: no dependence on spins or moments: spin integrators skip this term
    magnetic = False
    spin_rotation_invariant = True

    def __init__(self, path, format=None):
        data = read_eam_file(validation.path(path, "EAM path"), format)
        self.path = os.fspath(path)
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
        self._rhomax = (self._nrho - 1) * self._drho
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
        return f"EAM({os.path.basename(self.path)!r}, format={self.format!r})"

    def _types(self, state):
        return self._zmap[state.numbers]

    def _half(self, nl, state):
        """The CSR half list of ``nl`` (cached until ``nl`` is rebuilt)."""
        key = getattr(self, "_half_key", None)
        if key is None or key[0] is not nl or key[1] != nl.n_builds or key[2] != len(state):
            offsets, hj, hs, uniq = _compact_half_list(len(state), nl.i, nl.j, nl.shifts, nl.half)
            svec = np.ascontiguousarray(uniq.astype(np.float64) @ state.cell)
            self._half_arrays = (offsets, hj, hs, svec)
            self._half_key = (nl, nl.n_builds, len(state))
        return self._half_arrays

    def _work(self, n, npairs, need_cache):
        """Work arrays reused between calls: rho, fp (n,), pair cache (≥ npairs, 2 or 3)."""
        w = getattr(self, "_work_arrays", None)
        if w is None or w[0].shape[0] != n:
            w = [np.empty(n), np.empty(n), np.empty((0, 2 if self._sym else 3))]
        if need_cache and w[2].shape[0] < npairs:
            w[2] = np.empty((npairs, w[2].shape[1]))
        self._work_arrays = w
        return w

    def densities(self, state) -> np.ndarray:
        """Host electron densities ρ_i (file units) of every atom, (N,)."""
        self.check_state(state)
        nl = self.neighbor_list(state)
        offsets, hj, hs, svec = self._half(nl, state)
        n = len(state)
        rho = np.zeros(n)
        _density_pass(state.positions, offsets, hj, hs, svec, self._types(state), self._nel, self._cutsq,
                      self._rdr, self._nr, self._tab, self._sym, rho, np.zeros(n), False, np.empty((0, 3)))
        return rho

    def _evaluate(self, state, neighbors, forces, magnetic_forces, stress) -> Evaluation:
        n = len(state)
        offsets, hj, hs, svec = self._half(neighbors, state)
        types = self._types(state)
        pos = state.positions
        need_grad = bool(forces or stress)
        rho, fp, cache = self._work(n, len(hj), need_grad)
        rho[:] = 0.0
        energies = np.zeros(n)
        epair = _density_pass(pos, offsets, hj, hs, svec, types, self._nel, self._cutsq, self._rdr, self._nr,
                              self._tab, self._sym, rho, energies, need_grad, cache)
        eemb = _embedding(rho, types, self._rdrho, self._nrho, self._rhomax, self._ftab, fp, energies)
        f = None
        sigma = None
        if need_grad:
            fbuf = np.zeros((n, 3))
            vir = np.zeros(6)
            _force_pass(pos, offsets, hj, hs, svec, self._sym, fp, cache, fbuf, vir, bool(stress))
            f = fbuf if forces else None
            if stress:
                w = np.array([[vir[0], vir[5], vir[4]], [vir[5], vir[1], vir[3]], [vir[4], vir[3], vir[2]]])
                sigma = virial_to_voigt(w, state.volume)
        h = np.zeros((n, 3)) if magnetic_forces else None
        return Evaluation(float(epair + eemb), f, h, sigma, energies)

    def local_fields(self, state, neighbors, atoms) -> np.ndarray:
        """Zero: EAM does not depend on the magnetic moments, (len(atoms), 3) eV/μB."""
        return np.zeros((len(atoms), 3))
