"""Bethe-Slater distance-dependent exchange, exactly LAMMPS ``pair_style spin/exchange``.

    E = −Σ_{i<j, r_ij ≤ rc} J(r_ij) (s_i·s_j − δ),    J(r) = 4 J1 (r/J3)² (1 − J2 (r/J3)²) e^{−(r/J3)²}

with unit spins s, each unordered pair counted once, J1 in eV (J > 0 ferromagnetic), J2
dimensionless, J3 in Å, and δ = 1 with ``offset=True`` (LAMMPS ``offset yes``: the energy of
aligned spins is zero, so the exchange adds nothing to the lattice energy of a ferromagnet) or
δ = 0 otherwise. The pair energy is cut off sharply at rc, as in LAMMPS.

This is what LAMMPS computes (SPIN package, source ``pair_spin_exchange.cpp``): it loops over a
full neighbour list and tallies −½ J(r)(s_i·s_j − δ) for every ordered pair, so every unordered
pair counts once; its magnetic "force" is fm_i = Σ_j J(r_ij) s_j / ħ = −(1/ħ) ∂E/∂s_i (rad/ps); its
lattice forces come from dJ/dr times (s_i·s_j − δ). Checked to ~1e-16 eV against LAMMPS 2025.

The lattice forces −∂E/∂r (magneto-elastic coupling through J(r)), the virial stress and the
magnetic forces h_i = −(1/|m_i|)(1 − s_i s_iᵀ) ∂E/∂s_i (eV/μB; the term depends only on spin
directions) all come from one numba kernel over the full CSR neighbour list, parallel over atoms.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from .. import validation
from ..errors import InputError
from ..neighbors import shift_range
from .base import Evaluation, Potential, virial_to_voigt
from .single_site import species_mask, species_names, species_tuple
from ..keywords import refuse_other_names

#: fused multiply-add in hot kernels (more accurate and faster; no other fast-math liberties)
_FMA = {"contract"}


@numba.njit(cache=True)
def _exchange_atom(a, i, positions, spins, active, offsets, nbr, sidx, svec, cut2, j1, j2, j3sq, delta,
                   want_forces, want_virial, energies, grad, forces, virial):
    """Bethe-Slater exchange of atom i over its full-list neighbours; results go to row a.

    energies[a] = −½ Σ_j J(r)(s_i·s_j − δ)   (eV; sums to the total energy over all atoms)
    grad[a]     = ∂E/∂s_i = −Σ_j J(r) s_j     (eV, unprojected)
    forces[a]   = −∂E/∂r_i                    (eV/Å)
    virial[a]   = ½ Σ_j (∂E_ij/∂r) r_ij ⊗ r_ij / r   (eV, row-major 3×3)
    """
    if not active[i]:
        return
    sx, sy, sz = spins[i, 0], spins[i, 1], spins[i, 2]
    e = 0.0
    gx = gy = gz = 0.0
    fx = fy = fz = 0.0
    v00 = v01 = v02 = v11 = v12 = v22 = 0.0
    for p in range(offsets[i], offsets[i + 1]):
        j = nbr[p]
        if not active[j]:
            continue
        u = sidx[p]
        dx = positions[j, 0] - positions[i, 0] + svec[u, 0]
        dy = positions[j, 1] - positions[i, 1] + svec[u, 1]
        dz = positions[j, 2] - positions[i, 2] + svec[u, 2]
        r2 = dx * dx + dy * dy + dz * dz
        if r2 > cut2:
            continue
        ra = r2 / j3sq
        ex = np.exp(-ra)
        jr = 4.0 * j1 * ra * (1.0 - j2 * ra) * ex
        tx, ty, tz = spins[j, 0], spins[j, 1], spins[j, 2]
        sd = sx * tx + sy * ty + sz * tz - delta
        e -= 0.5 * jr * sd
        gx -= jr * tx
        gy -= jr * ty
        gz -= jr * tz
        if want_forces or want_virial:
            r = np.sqrt(r2)
            djdr = 8.0 * j1 * (r / j3sq) * ex * (1.0 - ra - j2 * ra * (2.0 - ra))
            c = -djdr * sd / r  # (dE_ij/dr) / r
            fx += c * dx
            fy += c * dy
            fz += c * dz
            if want_virial:
                c2 = 0.5 * c
                v00 += c2 * dx * dx
                v01 += c2 * dx * dy
                v02 += c2 * dx * dz
                v11 += c2 * dy * dy
                v12 += c2 * dy * dz
                v22 += c2 * dz * dz
    energies[a] = e
    grad[a, 0] = gx
    grad[a, 1] = gy
    grad[a, 2] = gz
    if want_forces:
        forces[a, 0] = fx
        forces[a, 1] = fy
        forces[a, 2] = fz
    if want_virial:
        virial[a, 0] = v00
        virial[a, 1] = v01
        virial[a, 2] = v02
        virial[a, 3] = v01
        virial[a, 4] = v11
        virial[a, 5] = v12
        virial[a, 6] = v02
        virial[a, 7] = v12
        virial[a, 8] = v22


@numba.njit(cache=True)
def _exchange_serial(atoms, positions, spins, active, offsets, nbr, sidx, svec, cut2, j1, j2, j3sq, delta,
                     want_forces, want_virial, energies, grad, forces, virial):
    """:func:`_exchange_atom` for every listed atom, one thread."""
    for a in range(len(atoms)):
        _exchange_atom(a, atoms[a], positions, spins, active, offsets, nbr, sidx, svec, cut2, j1, j2, j3sq,
                       delta, want_forces, want_virial, energies, grad, forces, virial)


@numba.njit(cache=True, parallel=True)
def _exchange_parallel(atoms, positions, spins, active, offsets, nbr, sidx, svec, cut2, j1, j2, j3sq, delta,
                       want_forces, want_virial, energies, grad, forces, virial):
    """:func:`_exchange_atom` for every listed atom, threads over atoms (no shared writes)."""
    for a in numba.prange(len(atoms)):
        _exchange_atom(a, atoms[a], positions, spins, active, offsets, nbr, sidx, svec, cut2, j1, j2, j3sq,
                       delta, want_forces, want_virial, energies, grad, forces, virial)


#: below this many atoms a kernel runs on one thread: starting threads costs more than it saves
#: (and far more when the cores are busy with other processes)
PARALLEL_MIN_ATOMS = 8192


#: the cached-pair kernels do little work per atom (one exp per pair, or none): below this many
#: atoms they run on one thread. Threads pay off from ~10⁴ atoms on idle cores; on cores busy with
#: other processes a parallel region waits for its slowest thread, so there they may not
CACHED_PARALLEL_MIN_ATOMS = 8192


def _threaded(n):
    return n >= CACHED_PARALLEL_MIN_ATOMS and numba.get_num_threads() > 1


@numba.njit(cache=True)
def _project_fields(atoms, spins, moments, active, grad, h):
    """h[a] = −(1/|m_i|)(g − (g·s_i) s_i) for active atoms, 0 otherwise (eV/μB)."""
    for a in range(len(atoms)):
        i = atoms[a]
        if not active[i]:
            h[a, 0] = h[a, 1] = h[a, 2] = 0.0
            continue
        g0, g1, g2 = grad[a, 0], grad[a, 1], grad[a, 2]
        gs = g0 * spins[i, 0] + g1 * spins[i, 1] + g2 * spins[i, 2]
        inv = 1.0 / moments[i]
        h[a, 0] = -(g0 - gs * spins[i, 0]) * inv
        h[a, 1] = -(g1 - gs * spins[i, 1]) * inv
        h[a, 2] = -(g2 - gs * spins[i, 2]) * inv


#: rows with more entries than this are sorted and bisected by the reverse-pair search; shorter
#: rows are scanned (a scan of a few dozen entries is faster than sorting them)
_SCAN_MAX = 64


@numba.njit(cache=True)
def _reverse_entries(off, cj, cs, code_of, lookup, top):
    """Index of the reverse entry (j → i, opposite shift) of every entry of a directed CSR pair
    list (−1 where it is missing). Entry p of row i has partner ``cj[p]`` and shift index
    ``cs[p]``; ``code_of[u]`` is the code of shift u and ``lookup[code]`` the shift index of a
    code (−1 if absent), with code(−S) = top − code(S).

    Rows longer than ``_SCAN_MAX`` are sorted once by the key partner·K + shift index and
    searched by bisection, shorter rows are scanned: O(P log degree) in all, against O(P · degree)
    for scanning every row (one atom in a tiny periodic cell has ~10⁵ self-images in its row)."""
    n = off.shape[0] - 1
    q = cj.shape[0]
    nu = code_of.shape[0]
    neg = np.empty(nu, dtype=np.int32)
    for u in range(nu):
        neg[u] = lookup[top - code_of[u]]
    order = np.empty(0, dtype=np.int64)
    sorted_keys = np.empty(0, dtype=np.int64)
    big = False
    for i in range(n):
        if off[i + 1] - off[i] > _SCAN_MAX:
            big = True
            break
    if big:
        keys = np.empty(q, dtype=np.int64)
        for p in range(q):
            keys[p] = np.int64(cj[p]) * nu + cs[p]
        order = np.arange(q)
        for i in range(n):
            a = off[i]
            b = off[i + 1]
            if b - a > _SCAN_MAX:
                order[a:b] = a + np.argsort(keys[a:b])
        sorted_keys = keys[order]
    rev = np.full(q, -1, dtype=np.int32)
    for i in range(n):
        for p in range(off[i], off[i + 1]):
            u = neg[cs[p]]
            if u < 0:
                continue
            j = cj[p]
            a = off[j]
            b = off[j + 1]
            if b - a > _SCAN_MAX:
                want = np.int64(i) * nu + u
                t = a + np.searchsorted(sorted_keys[a:b], want)
                if t < b and sorted_keys[t] == want:
                    rev[p] = order[t]
            else:
                for t in range(a, b):
                    if cj[t] == i and cs[t] == u:
                        rev[p] = t
                        break
    return rev


@numba.njit(cache=True)
def _compact_spin_list(ref_positions, active, offsets, nbr, sidx, shifts, shift_vectors, r2max):
    """Directed CSR list of the pairs of active atoms closer than sqrt(r2max) at ``ref_positions``
    (self-images kept), taken from a compact full neighbour list (pair p has partner ``nbr[p]``
    and the integer shift ``shifts[sidx[p]]``, vector ``shift_vectors[sidx[p]]``).

    Returns offsets (N+1,) int64, partners (P,) int32, shift index (P,) int32, the distinct
    shift vectors (K, 3) Å the index points into, and the index of each entry's reverse entry
    (P,) int32 (−1 if it is missing from the list)."""
    n = offsets.shape[0] - 1
    out_off = np.zeros(n + 1, dtype=np.int64)
    rmax = shift_range(shifts)
    keep = np.zeros(nbr.shape[0], dtype=np.bool_)
    q = 0
    for i in range(n):
        if active[i]:
            for p in range(offsets[i], offsets[i + 1]):
                j = nbr[p]
                if not active[j]:
                    continue
                u = sidx[p]
                dx = ref_positions[j, 0] - ref_positions[i, 0] + shift_vectors[u, 0]
                dy = ref_positions[j, 1] - ref_positions[i, 1] + shift_vectors[u, 1]
                dz = ref_positions[j, 2] - ref_positions[i, 2] + shift_vectors[u, 2]
                if dx * dx + dy * dy + dz * dz < r2max:
                    keep[p] = True
                    q += 1
        out_off[i + 1] = q
    w = 2 * rmax + 1
    lookup = np.full(w * w * w, -1, dtype=np.int64)
    uniq = np.empty((min(w * w * w, max(q, 1)), 3))
    cj = np.empty(q, dtype=np.int32)
    cs = np.empty(q, dtype=np.int32)
    code_of = np.empty(uniq.shape[0], dtype=np.int64)
    nu = 0
    k = 0
    for p in range(nbr.shape[0]):
        if keep[p]:
            v = sidx[p]
            code = ((shifts[v, 0] + rmax) * w + shifts[v, 1] + rmax) * w + shifts[v, 2] + rmax
            u = lookup[code]
            if u < 0:
                u = nu
                lookup[code] = u
                code_of[u] = code
                for a in range(3):
                    uniq[u, a] = shift_vectors[v, a]
                nu += 1
            cj[k] = nbr[p]
            cs[k] = u
            k += 1
    # reverse entry of each pair p (i → j, shift S): the entry j → i with shift −S
    # (code(−S) = w³ − 1 − code(S)), found by binary search in row j sorted by (partner, shift):
    # O(P log degree) in all (a scan of row j for every entry was O(P · degree), minutes for one
    # atom in a tiny periodic cell with ~10⁵ self-images)
    rev = _reverse_entries(out_off, cj, cs, code_of[:nu], lookup, w * w * w - 1)
    return out_off, cj, cs, uniq[:nu].copy(), rev


@numba.njit(cache=True, fastmath=_FMA, inline="always")
def _bethe_slater_pair(r2, j1, j2, j3sq):
    """J(r) (eV) and (dJ/dr)/r (eV/Å²) at the squared distance r2 (Å²): the one expression every
    cached-pair kernel inlines."""
    ra = r2 / j3sq
    ex = math.exp(-ra)
    return 4.0 * j1 * ra * (1.0 - j2 * ra) * ex, (8.0 * j1 / j3sq) * ex * (1.0 - ra - j2 * ra * (2.0 - ra))


@numba.njit(cache=True, fastmath=_FMA, inline="always")
def _geometry_row(i, positions, off, cj, cs, svec, rev, cut2, j1, j2, j3sq, jc):
    p0 = off[i]
    p1 = off[i + 1]
    if p0 == p1:
        return
    xi = positions[i, 0]
    yi = positions[i, 1]
    zi = positions[i, 2]
    for p in range(p0, p1):
        q = rev[p]
        if 0 <= q < p:  # done from the other side
            continue
        j = cj[p]
        s = cs[p]
        dx = positions[j, 0] - xi + svec[s, 0]
        dy = positions[j, 1] - yi + svec[s, 1]
        dz = positions[j, 2] - zi + svec[s, 2]
        r2 = dx * dx + dy * dy + dz * dz
        cv = 0.0
        if r2 <= cut2 and j != i:
            cv, _ = _bethe_slater_pair(r2, j1, j2, j3sq)
        jc[p] = cv
        if q >= 0:
            jc[q] = cv


@numba.njit(cache=True, fastmath=_FMA)
def _exchange_geometry(positions, off, cj, cs, svec, rev, cut2, j1, j2, j3sq, jc):
    """Per directed pair p of the compact list at the current positions: jc[p] = J(r) as a spin
    coupling (eV; 0 for a periodic self-image, whose energy J(r)(1 − δ)/2 does not depend on the
    spin and which exerts no torque, and beyond the cutoff). Each pair is computed once and
    written to both of its entries (``rev``)."""
    for i in range(off.shape[0] - 1):
        _geometry_row(i, positions, off, cj, cs, svec, rev, cut2, j1, j2, j3sq, jc)


@numba.njit(cache=True, fastmath=_FMA, parallel=True)
def _exchange_geometry_parallel(positions, off, cj, cs, svec, rev, cut2, j1, j2, j3sq, jc):
    """:func:`_exchange_geometry` with threads over atoms (each pair has one writer)."""
    for i in numba.prange(off.shape[0] - 1):
        _geometry_row(i, positions, off, cj, cs, svec, rev, cut2, j1, j2, j3sq, jc)


@numba.njit(cache=True, fastmath=_FMA)
def _self_image_exchange(positions, off, cj, cs, svec, entries, cut2, j1, j2, j3sq):
    """J(r) (eV; 0 beyond the cutoff) of the self-image entries ``entries`` of the compact list."""
    out = np.zeros(entries.shape[0])
    n = off.shape[0] - 1
    i = 0
    for k in range(entries.shape[0]):
        p = entries[k]
        while off[i + 1] <= p:
            i += 1
        s = cs[p]
        dx = positions[cj[p], 0] - positions[i, 0] + svec[s, 0]
        dy = positions[cj[p], 1] - positions[i, 1] + svec[s, 1]
        dz = positions[cj[p], 2] - positions[i, 2] + svec[s, 2]
        r2 = dx * dx + dy * dy + dz * dz
        if r2 <= cut2 and i < n:
            out[k], _ = _bethe_slater_pair(r2, j1, j2, j3sq)
    return out


@numba.njit(cache=True, fastmath=_FMA, inline="always")
def _from_geometry_row(i, positions, spins, off, cj, cs, svec, cut2, j1, j2, j3sq, delta, want_forces, energies,
                       grad, forces):
    sx = spins[i, 0]
    sy = spins[i, 1]
    sz = spins[i, 2]
    xi = positions[i, 0]
    yi = positions[i, 1]
    zi = positions[i, 2]
    e = 0.0
    gx = gy = gz = 0.0
    fx = fy = fz = 0.0
    for p in range(off[i], off[i + 1]):
        j = cj[p]
        s = cs[p]
        dx = positions[j, 0] - xi + svec[s, 0]
        dy = positions[j, 1] - yi + svec[s, 1]
        dz = positions[j, 2] - zi + svec[s, 2]
        r2 = dx * dx + dy * dy + dz * dz
        if r2 > cut2:
            continue
        jv, gv = _bethe_slater_pair(r2, j1, j2, j3sq)
        tx = spins[j, 0]
        ty = spins[j, 1]
        tz = spins[j, 2]
        sd = sx * tx + sy * ty + sz * tz - delta
        e -= 0.5 * jv * sd
        gx -= jv * tx
        gy -= jv * ty
        gz -= jv * tz
        if want_forces:
            c = -gv * sd
            fx += c * dx
            fy += c * dy
            fz += c * dz
    energies[i] = e
    grad[i, 0] = gx
    grad[i, 1] = gy
    grad[i, 2] = gz
    if want_forces:
        forces[i, 0] = fx
        forces[i, 1] = fy
        forces[i, 2] = fz


@numba.njit(cache=True, fastmath=_FMA)
def _exchange_from_geometry(positions, spins, off, cj, cs, svec, cut2, j1, j2, j3sq, delta, want_forces, energies,
                            grad, forces):
    """Energies, ∂E/∂s and lattice forces of every atom over the compact pair list (same
    quantities as :func:`_exchange_atom`), J(r) and dJ/dr evaluated per entry (nothing stored
    per pair); overwrites the outputs (rows of atoms without pairs get 0)."""
    for i in range(off.shape[0] - 1):
        _from_geometry_row(i, positions, spins, off, cj, cs, svec, cut2, j1, j2, j3sq, delta, want_forces,
                           energies, grad, forces)


@numba.njit(cache=True, fastmath=_FMA, parallel=True)
def _exchange_from_geometry_parallel(positions, spins, off, cj, cs, svec, cut2, j1, j2, j3sq, delta, want_forces,
                                     energies, grad, forces):
    """:func:`_exchange_from_geometry` with threads over atoms (no shared writes)."""
    for i in numba.prange(off.shape[0] - 1):
        _from_geometry_row(i, positions, spins, off, cj, cs, svec, cut2, j1, j2, j3sq, delta, want_forces,
                           energies, grad, forces)


_NONE3 = np.zeros((0, 3))


@numba.njit(cache=True)
def _self_entries(off, cj):
    """Indices (int64) of the entries of a CSR pair list whose partner is the row's own atom."""
    m = 0
    for i in range(off.shape[0] - 1):
        for p in range(off[i], off[i + 1]):
            if cj[p] == i:
                m += 1
    out = np.empty(m, dtype=np.int64)
    m = 0
    for i in range(off.shape[0] - 1):
        for p in range(off[i], off[i + 1]):
            if cj[p] == i:
                out[m] = p
                m += 1
    return out


class _PairCache:
    """Exchange pairs of one neighbour-list build (``rows``: the source atom of each entry), and
    the spin couplings J(r) at one set of positions (``couplings``: the
    :class:`LinearSpinCouplings` made of them, built on first request). Per directed pair:
    partner (int32), shift index (int16 while it fits), reverse entry (int32) and coupling
    (float64): 18 bytes; J and dJ/dr for energies and forces are evaluated in the kernel."""

    __slots__ = ("nl", "builds", "active", "off", "cj", "cs", "svec", "rev", "rows", "self_entries", "jc", "pos",
                 "has_geometry", "couplings")


def bethe_slater(r, J1, J2, J3):
    """J(r) = 4 J1 (r/J3)² (1 − J2 (r/J3)²) exp(−(r/J3)²), eV (r in Å)."""
    ra = (np.asarray(r, dtype=float) / J3) ** 2
    return 4.0 * J1 * ra * (1.0 - J2 * ra) * np.exp(-ra)


@refuse_other_names()
class BetheSlaterExchange(Potential):
    """LAMMPS ``pair_style spin/exchange`` (see the module docstring for the formula).

    Parameters
    ----------
    cutoff : rc, Å (pairs with r ≤ rc interact).
    J1 : eV (J > 0 ferromagnetic; |J1| above 1 eV gives a UserWarning, likely meV:
        :func:`spinlat.validation.magnetic_energy`). J2 : dimensionless. J3 : Å.
    offset : LAMMPS ``offset yes``: subtract the aligned-spin energy, E_ij = −J(r)(s_i·s_j − 1).
    elements : species taking part (symbols or atomic numbers; both atoms of a pair must be
        listed); ``None``: every species. Only magnetic atoms (moment > 0) take part.

    ``BetheSlaterExchange(3.4, 0.02726, 0.2171, 1.841)`` is LAMMPS
    ``pair_coeff * * spin/exchange exchange 3.4 0.02726 0.2171 1.841``.
    """

    spin_rotation_invariant = True  # isotropic: depends on s_i·s_j only
    _PARAMETERS = ("cutoff", "J1", "J2", "J3", "offset")

    def __init__(self, cutoff, J1, J2, J3, offset=False, elements=None):
        self.cutoff = validation.number(cutoff, "exchange cutoff")
        if self.cutoff <= 0:
            raise InputError(f"exchange cutoff must be positive, got {self.cutoff} Å")
        self.J1 = validation.number(J1, "J1")
        validation.magnetic_energy(self.J1, "BetheSlaterExchange J1")
        self.J2 = validation.number(J2, "J2")
        self.J3 = validation.number(J3, "J3")
        if self.J3 <= 0:
            raise InputError(f"J3 must be a positive length, got {self.J3} Å")
        if not isinstance(offset, (bool, np.bool_)):
            raise InputError(f"offset must be True or False, got {offset!r}")
        self.offset = bool(offset)
        self._species = species_mask(elements)

    @property
    def species(self) -> tuple[int, ...] | None:
        """Atomic numbers of the species taking part (read-only), ``None`` for every species."""
        return species_tuple(self._species)

    def J(self, r):
        """Exchange J(r) in eV at distances r (Å), without the cutoff."""
        return bethe_slater(r, self.J1, self.J2, self.J3)

    def _active(self, state):
        return (state.moments > 0) & self._species[state.numbers]

    def _run(self, state, neighbors, atoms, want_forces, want_virial):
        n_sel = len(atoms)
        energies = np.zeros(n_sel)
        grad = np.zeros((n_sel, 3))
        forces = np.zeros((n_sel if want_forces else 0, 3))
        virial = np.zeros((n_sel if want_virial else 0, 9))
        active = self._active(state)
        threaded = n_sel >= PARALLEL_MIN_ATOMS and numba.get_num_threads() > 1
        kernel = _exchange_parallel if threaded else _exchange_serial
        kernel(atoms, state.positions, state.spins, active, neighbors.offsets, neighbors.j,
               neighbors.shift_index, neighbors.unique_vectors, self.cutoff ** 2, self.J1, self.J2, self.J3 ** 2,
               1.0 if self.offset else 0.0, want_forces, want_virial, energies, grad, forces, virial)
        return active, energies, grad, forces, virial

    #: compact pair lists kept, one per neighbour list, most recently used first: two, so that a
    #: second list used alongside a run's own (the spin temperature of thermo lines keeps one of
    #: its own) does not rebuild both lists' pairs and couplings at every alternation
    PAIR_LISTS = 2

    def _pair_list(self, state, nl) -> _PairCache:
        """The compact pair list of ``nl``'s current build (rebuilt with it)."""
        stores = self.__dict__.setdefault("_pair_stores", [])
        active = self._active(state)
        c = next((s for s in stores if s.nl is nl), None)
        if c is not None:
            stores.remove(c)
            stores.insert(0, c)
        if c is None or c.builds != nl.n_builds or not np.array_equal(c.active, active):
            ref = getattr(nl, "reference_positions", None)
            if ref is not None and len(ref) == len(state):
                # the list stays valid while no atom moves more than skin/2 from ref: a pair
                # within the cutoff then was within cutoff + skin at ref
                r2max = ((self.cutoff + nl.skin) * (1.0 + 1e-12)) ** 2
            else:
                ref, r2max = state.positions, np.inf
            if c is not None:  # let the old list go first
                del stores[0]
            del stores[self.PAIR_LISTS - 1:]  # and the least recently used one, to keep PAIR_LISTS
            c = _PairCache()
            c.nl, c.builds, c.active = nl, nl.n_builds, active
            c.off, c.cj, cs, c.svec, c.rev = _compact_spin_list(ref, active, nl.offsets, nl.j, nl.shift_index,
                                                                nl.unique_shifts, nl.unique_vectors, r2max)
            c.cs = cs.astype(np.int16) if len(c.svec) <= 2**15 else cs
            del cs
            c.rows = None  # the source atom of each entry, made when an offset is asked for
            c.self_entries = _self_entries(c.off, c.cj)
            c.jc = None
            c.pos = None
            c.has_geometry = False
            c.couplings = None
            stores.insert(0, c)
        return c

    def _pair_cache(self, state, nl) -> _PairCache:
        """:meth:`_pair_list` holding the couplings J(r) at ``state.positions`` (recomputed only
        when the positions change)."""
        c = self._pair_list(state, nl)
        if not (c.has_geometry and np.array_equal(c.pos, state.positions)):
            # a new coupling array for every position update (couplings handed out before stay
            # valid)
            c.jc = np.empty(len(c.cj))
            kernel = _exchange_geometry_parallel if _threaded(len(state)) else _exchange_geometry
            kernel(state.positions, c.off, c.cj, c.cs, c.svec, c.rev, self.cutoff ** 2, self.J1, self.J2,
                   self.J3 ** 2, c.jc)
            if c.pos is None:
                c.pos = np.empty_like(state.positions)
            c.pos[:] = state.positions
            c.has_geometry = True
            c.couplings = None
        return c

    def _evaluate(self, state, neighbors, forces, magnetic_forces, stress) -> Evaluation:
        if neighbors is None:
            neighbors = self.neighbor_list(state)
        n = len(state)
        if not stress:
            # the compact pair list of the active atoms (rebuilt with the neighbour list); J(r)
            # and dJ/dr evaluated in the kernel
            c = self._pair_list(state, neighbors)
            energies = np.empty(n)
            grad = np.empty((n, 3))
            f = np.empty((n, 3)) if forces else _NONE3
            kernel = _exchange_from_geometry_parallel if _threaded(n) else _exchange_from_geometry
            kernel(state.positions, state.spins, c.off, c.cj, c.cs, c.svec, self.cutoff ** 2, self.J1, self.J2,
                   self.J3 ** 2, 1.0 if self.offset else 0.0, bool(forces), energies, grad, f)
            h = None
            if magnetic_forces:
                h = grad  # projected in place: ∂E/∂s is not returned
                _project_fields(np.arange(n, dtype=np.int64), state.spins, state.moments, c.active, grad, h)
            return Evaluation(float(energies.sum()), f if forces else None, h, None, energies)
        atoms = np.arange(n, dtype=np.int64)
        active, energies, grad, f, vir = self._run(state, neighbors, atoms, forces, stress)
        h = None
        if magnetic_forces:
            h = np.empty((n, 3))
            _project_fields(atoms, state.spins, state.moments, active, grad, h)
        s = virial_to_voigt(vir.sum(axis=0).reshape(3, 3), state.volume) if stress else None
        return Evaluation(float(energies.sum()), f if forces else None, h, s, energies)

    def local_fields(self, state, neighbors, atoms) -> np.ndarray:
        """h = −∂E/∂m (eV/μB) of the atoms ``atoms`` only, (len(atoms), 3); touches only their
        neighbours."""
        if neighbors is None:
            neighbors = self.neighbor_list(state)
        atoms = validation.atom_indices(atoms, "atoms", len(state))
        active, _, grad, _, _ = self._run(state, neighbors, atoms, False, False)
        h = np.empty((len(atoms), 3))
        _project_fields(atoms, state.spins, state.moments, active, grad, h)
        return h

    def rotation_fields(self, state, neighbors, atoms) -> np.ndarray:
        """Unprojected fields −(1/|m_i|) ∂E/∂s_i = Σ_j J(r_ij) s_j / |m_i| (eV/μB) of ``atoms``, the
        periodic self-images of atom i left out (their energy is a constant on the sphere):
        rotating s_i about it is the exact motion of s_i (see ``Potential.rotation_fields``).
        From :meth:`spin_couplings`."""
        atoms = validation.atom_indices(atoms, "atoms", len(state))
        return self._couplings(state, neighbors).rotation_fields(state.spins, state.moments, atoms)

    def spin_couplings(self, state, neighbors=None):
        """:class:`~spinlat.potentials.couplings.LinearSpinCouplings` at the current positions:
        scalar couplings J(r_ij) (eV) between the active atoms closer than the cutoff (a pair
        within the neighbour-list skin gets 0), both directions; E = −Σ_pairs J(r)(s_i·s_j − δ)
        gives per-atom offsets c_i = ½ Σ_j J(r_ij) δ, and a periodic self-image of atom i the
        constant −½ J(r)(1 − δ) (no coupling: it exerts no torque). The same energies and
        fields as :meth:`compute`; the rotation fields Σ_j J(r_ij) s_j/|m_i| are those of
        :meth:`rotation_fields`. Valid while the positions stay the same (cached until then)."""
        return self._couplings(state, neighbors)

    def _couplings(self, state, neighbors):
        from .couplings import LinearSpinCouplings

        if neighbors is None:
            neighbors = self.neighbor_list(state)
        c = self._pair_cache(state, neighbors)
        if c.couplings is None:
            n, delta, jc = len(state), 1.0 if self.offset else 0.0, c.jc
            at = np.searchsorted(c.off, c.self_entries, side="right") - 1  # atoms of the self-images
            j_self = _self_image_exchange(state.positions, c.off, c.cj, c.cs, c.svec, c.self_entries,
                                          self.cutoff ** 2, self.J1, self.J2, self.J3 ** 2)

            def offset():  # c_i = ½ δ Σ_j J(r_ij) + ½ (δ − 1) Σ_self-images J(r)
                if c.rows is None:
                    c.rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(c.off))
                return 0.5 * (delta * np.bincount(c.rows, weights=jc, minlength=n)
                              + (delta - 1.0) * np.bincount(at, weights=j_self, minlength=n))

            c.couplings = LinearSpinCouplings(len(state), c.off, c.cj, exchange=jc, offset=offset, self_coupled=False)
        return c.couplings

    def __repr__(self):
        el = species_names(self._species)
        return (f"BetheSlaterExchange(cutoff={self.cutoff}, J1={self.J1}, J2={self.J2}, J3={self.J3}"
                + (", offset=True" if self.offset else "") + ("" if el == "all" else f", elements={el}") + ")")
