"""Metropolis Monte Carlo of classical spins on a frozen lattice.

One sweep proposes one move for every magnetic spin. Spins are visited colour class by
colour class (see :mod:`spinlat.integrators.coloring`): spins of one class do not interact,
so all of a class are updated at once with exactly the acceptance they would have one after
another. Moves:

- Metropolis: a trial direction drawn uniformly on the spherical cap of half-angle θ_c around
  the current spin (a symmetric proposal; θ_c = π is a uniform new direction), accepted with
  probability min(1, exp(−ΔE/k_BT)). θ_c adapts after every sweep towards the target
  acceptance (0.5 by default); ``adapt=False`` freezes it.
- Over-relaxation (optional, ``overrelax`` per sweep): the spin is reflected about its local
  exchange field, s' = 2(s·Ĥ)Ĥ − s. This conserves the energy of the terms linear in s_i
  exactly (it is accepted with the Metropolis test on the remaining on-site energy change), and
  decorrelates the magnetisation much faster near T_c.

Energy changes, and what is exact. The magnetic terms of the potential split into

- pair terms (``cutoff > 0``), which must be linear in each single spin s_i when the others are
  fixed (Heisenberg exchange with any 3×3 J_ij including DMI, Bethe-Slater exchange on a frozen
  lattice). Their energy is E = const − |m_i| H_i·s_i with H_i independent of s_i; the
  potential gives only the transverse part h_i = H_i − (H_i·s_i)s_i, so H_i is recovered exactly
  from a second field evaluation with s_i replaced by a unit vector t_i ⊥ s_i:
  H_i = h_i(s) + (h_i(t)·s_i) s_i. Then ΔE = −|m_i| H_i·(s'_i − s_i), exact;
- on-site terms (``cutoff == 0``: Zeeman, anisotropies, Landau, any function of the atom's own
  moment): ΔE from their per-atom energies at the old and the trial spin, exact for any form.

``check`` verifies this on a few random single-spin moves against full energy differences and
raises :class:`~spinlat.errors.InputError` for potentials that are not of this form (e.g. a
biquadratic or machine-learned term, or a periodic cell so small that a spin couples to its own
image).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from .. import units
from ..errors import InputError
from ..observables import reduced_magnetization, reduced_magnetization_kernel
from ..state import State
from .. import validation
from .base import Integrator, check_nonnegative, check_seed


# ---------------------------------------------------------------------------------- kernels
@numba.njit(cache=True, inline="always")
def _perp_basis(sx, sy, sz):
    """Two unit vectors e1, e2 with (e1, e2, s) right-handed orthonormal."""
    if abs(sz) < 0.9:
        # e1 = normalise(z × s)
        ax, ay, az = -sy, sx, 0.0
    else:
        # e1 = normalise(x × s)
        ax, ay, az = 0.0, -sz, sy
    inv = 1.0 / math.sqrt(ax * ax + ay * ay + az * az)
    ax *= inv
    ay *= inv
    az *= inv
    bx = sy * az - sz * ay
    by = sz * ax - sx * az
    bz = sx * ay - sy * ax
    return ax, ay, az, bx, by, bz


@numba.njit(cache=True)
def perpendicular_spins(spins, atoms, out):
    """out[k] = a unit vector perpendicular to spins[atoms[k]]."""
    for k in range(atoms.shape[0]):
        i = atoms[k]
        ax, ay, az, _, _, _ = _perp_basis(spins[i, 0], spins[i, 1], spins[i, 2])
        out[k, 0] = ax
        out[k, 1] = ay
        out[k, 2] = az


@numba.njit(cache=True)
def full_fields(spins, atoms, h_s, h_t, out):
    """Linear-term field H = h(s) + (h(t)·s) s (eV/μB) from fields at s and at t ⊥ s."""
    for k in range(atoms.shape[0]):
        i = atoms[k]
        sx, sy, sz = spins[i, 0], spins[i, 1], spins[i, 2]
        lam = h_t[k, 0] * sx + h_t[k, 1] * sy + h_t[k, 2] * sz
        out[k, 0] = h_s[k, 0] + lam * sx
        out[k, 1] = h_s[k, 1] + lam * sy
        out[k, 2] = h_s[k, 2] + lam * sz


@numba.njit(cache=True)
def cone_trials(spins, atoms, u, cos_max, trial):
    """trial[k] uniform on the cap {t: t·s ≥ cos_max} around s = spins[atoms[k]]; u (M, ≥2)
    uniforms in [0, 1)."""
    for k in range(atoms.shape[0]):
        i = atoms[k]
        sx, sy, sz = spins[i, 0], spins[i, 1], spins[i, 2]
        ax, ay, az, bx, by, bz = _perp_basis(sx, sy, sz)
        c = 1.0 - u[k, 0] * (1.0 - cos_max)
        sn = math.sqrt(max(0.0, 1.0 - c * c))
        phi = 2.0 * math.pi * u[k, 1]
        cp, sp = math.cos(phi) * sn, math.sin(phi) * sn
        tx = c * sx + cp * ax + sp * bx
        ty = c * sy + cp * ay + sp * by
        tz = c * sz + cp * az + sp * bz
        inv = 1.0 / math.sqrt(tx * tx + ty * ty + tz * tz)
        trial[k, 0] = tx * inv
        trial[k, 1] = ty * inv
        trial[k, 2] = tz * inv


@numba.njit(cache=True)
def reflect_trials(spins, atoms, H, trial):
    """trial[k] = 2(s·Ĥ)Ĥ − s (over-relaxation); s itself where H = 0."""
    for k in range(atoms.shape[0]):
        i = atoms[k]
        sx, sy, sz = spins[i, 0], spins[i, 1], spins[i, 2]
        hx, hy, hz = H[k, 0], H[k, 1], H[k, 2]
        h2 = hx * hx + hy * hy + hz * hz
        if h2 == 0.0:
            trial[k, 0], trial[k, 1], trial[k, 2] = sx, sy, sz
            continue
        f = 2.0 * (sx * hx + sy * hy + sz * hz) / h2
        tx, ty, tz = f * hx - sx, f * hy - sy, f * hz - sz
        inv = 1.0 / math.sqrt(tx * tx + ty * ty + tz * tz)
        trial[k, 0] = tx * inv
        trial[k, 1] = ty * inv
        trial[k, 2] = tz * inv


@numba.njit(cache=True)
def linear_energy_change(spins, moments, atoms, H, trial, dE):
    """dE[k] += −|m_i| H_k·(trial_k − s_i), eV."""
    for k in range(atoms.shape[0]):
        i = atoms[k]
        dE[k] -= moments[i] * (H[k, 0] * (trial[k, 0] - spins[i, 0]) + H[k, 1] * (trial[k, 1] - spins[i, 1])
                               + H[k, 2] * (trial[k, 2] - spins[i, 2]))


@numba.njit(cache=True)
def metropolis_accept(spins, atoms, trial, dE, u, beta):
    """Accept trial[k] for atoms[k] with probability min(1, exp(−β dE[k])) (u uniforms);
    β = inf accepts only dE ≤ 0. Returns the number accepted."""
    n = 0
    for k in range(atoms.shape[0]):
        d = dE[k]
        ok = d <= 0.0
        if not ok and beta < np.inf:
            ok = u[k] < math.exp(-beta * d)
        if ok:
            i = atoms[k]
            spins[i, 0] = trial[k, 0]
            spins[i, 1] = trial[k, 1]
            spins[i, 2] = trial[k, 2]
            n += 1
    return n


@numba.njit(cache=True, inline="always")
def coupled_field(sx, sy, sz, i, offs, nbr, tidx, tens):
    """Σ_p tens[tidx[p]] @ s[nbr[p]] over the couplings p of atom i (CSR row i of a compressed
    coupling table, see :func:`compress_couplings`), eV/μB; the spins given as three component
    arrays (views of an (N, 3) or a (3, N) array). Shared by Monte Carlo and LLG."""
    hx = hy = hz = 0.0
    for p in range(offs[i], offs[i + 1]):
        j = numba.uint32(nbr[p])  # unsigned: no negative-index wrap-around test per load
        t = numba.uint32(tidx[p])
        x, y, z = sx[j], sy[j], sz[j]
        hx += tens[t, 0, 0] * x + tens[t, 0, 1] * y + tens[t, 0, 2] * z
        hy += tens[t, 1, 0] * x + tens[t, 1, 1] * y + tens[t, 1, 2] * z
        hz += tens[t, 2, 0] * x + tens[t, 2, 1] * y + tens[t, 2, 2] * z
    return hx, hy, hz


@numba.njit(cache=True, inline="always")
def coupled_field_iso(spins, i, offs, nbr, tidx, jiso):
    """Σ_p jiso[tidx[p]] spins[nbr[p]] over the couplings p of atom i (eV/μB), spins (N, 3): the
    isotropic form of :func:`coupled_field` (every coupling matrix J·1, one scalar per distinct
    matrix). Indices are read as unsigned (no negative-index wrap-around test per load)."""
    hx = hy = hz = 0.0
    for p in range(offs[i], offs[i + 1]):
        j = numba.uint32(nbr[p])
        w = jiso[numba.uint32(tidx[p])]
        hx += w * spins[j, 0]
        hy += w * spins[j, 1]
        hz += w * spins[j, 2]
    return hx, hy, hz


@numba.njit(cache=True, inline="always")
def _site_field(spins, cx, cy, cz, i, offs, nbr, tidx, jiso, tens, iso):
    """Coupled field of spin i (eV/μB) from the scalar table when ``iso``, else the 3×3 one."""
    if iso:
        return coupled_field_iso(spins, i, offs, nbr, tidx, jiso)
    return coupled_field(cx, cy, cz, i, offs, nbr, tidx, tens)


@numba.njit(cache=True)
def table_fields_iso(spins, atoms, offs, nbr, tidx, jiso, out):
    """out[k] = Σ_p jiso[tidx[p]] spins[nbr[p]] over the couplings of atom atoms[k] (eV/μB)."""
    for k in range(atoms.shape[0]):
        out[k, 0], out[k, 1], out[k, 2] = coupled_field_iso(spins, atoms[k], offs, nbr, tidx, jiso)


@numba.njit(cache=True)
def table_fields(spins, atoms, offs, nbr, tidx, tens, out):
    """out[k] = Σ_p tens[tidx[p]] @ spins[nbr[p]] over the couplings of atom atoms[k] (eV/μB);
    spins (N, 3)."""
    sx, sy, sz = spins[:, 0], spins[:, 1], spins[:, 2]
    for k in range(atoms.shape[0]):
        out[k, 0], out[k, 1], out[k, 2] = coupled_field(sx, sy, sz, atoms[k], offs, nbr, tidx, tens)


@numba.njit(cache=True)
def sweep_block(spins, moments, flat, class_ptr, offs, nbr, tidx, tens, jiso, u, beta, cone, target, adapt,
                overrelax, mag_out):
    """Sweeps of a pure pair Hamiltonian with coupling table (no on-site terms), all in numba.

    ``flat``/``class_ptr``: atoms of each colour class, concatenated; (offs, nbr, tidx, tens) the
    compressed coupling table; ``jiso`` (T,) the scalar couplings when every matrix of ``tens`` is
    isotropic (tens[t] = jiso[t]·1, :func:`isotropic_couplings`; the scalar kernel is then used),
    else an empty array; ``u`` (S, M, 3) uniforms,
    one row per atom of ``flat`` and sweep; ``mag_out`` (S, 3) receives Σ_i m_i s_i / Σ_i m_i after
    each sweep. Returns (cone, acceptance of the last sweep)."""
    m = flat.shape[0]
    acc = 0.0
    cx, cy, cz = spins[:, 0], spins[:, 1], spins[:, 2]
    iso = jiso.shape[0] > 0
    for sw in range(u.shape[0]):
        cos_max = math.cos(cone)
        accepted = 0
        for c in range(class_ptr.shape[0] - 1):
            for k in range(class_ptr[c], class_ptr[c + 1]):
                i = flat[k]
                hx, hy, hz = _site_field(spins, cx, cy, cz, i, offs, nbr, tidx, jiso, tens, iso)
                sx, sy, sz = spins[i, 0], spins[i, 1], spins[i, 2]
                ax, ay, az, bx, by, bz = _perp_basis(sx, sy, sz)
                cth = 1.0 - u[sw, k, 0] * (1.0 - cos_max)
                sn = math.sqrt(max(0.0, 1.0 - cth * cth))
                phi = 2.0 * math.pi * u[sw, k, 1]
                cp, sp = math.cos(phi) * sn, math.sin(phi) * sn
                tx = cth * sx + cp * ax + sp * bx
                ty = cth * sy + cp * ay + sp * by
                tz = cth * sz + cp * az + sp * bz
                inv = 1.0 / math.sqrt(tx * tx + ty * ty + tz * tz)
                tx *= inv
                ty *= inv
                tz *= inv
                d = -moments[i] * (hx * (tx - sx) + hy * (ty - sy) + hz * (tz - sz))
                ok = d <= 0.0
                if not ok and beta < np.inf:
                    ok = u[sw, k, 2] < math.exp(-beta * d)
                if ok:
                    spins[i, 0] = tx
                    spins[i, 1] = ty
                    spins[i, 2] = tz
                    accepted += 1
        acc = accepted / max(m, 1)
        if adapt:
            f = (acc + 0.02) / (target + 0.02)
            cone = min(math.pi, max(1e-4, cone * min(2.0, max(0.5, f))))
        for _ in range(overrelax):
            for c in range(class_ptr.shape[0] - 1):
                for k in range(class_ptr[c], class_ptr[c + 1]):
                    i = flat[k]
                    hx, hy, hz = _site_field(spins, cx, cy, cz, i, offs, nbr, tidx, jiso, tens, iso)
                    h2 = hx * hx + hy * hy + hz * hz
                    if h2 == 0.0:
                        continue
                    sx, sy, sz = spins[i, 0], spins[i, 1], spins[i, 2]
                    f = 2.0 * (sx * hx + sy * hy + sz * hz) / h2
                    tx, ty, tz = f * hx - sx, f * hy - sy, f * hz - sz
                    inv = 1.0 / math.sqrt(tx * tx + ty * ty + tz * tz)
                    spins[i, 0] = tx * inv
                    spins[i, 1] = ty * inv
                    spins[i, 2] = tz * inv
        mag_out[sw, 0], mag_out[sw, 1], mag_out[sw, 2] = reduced_magnetization_kernel(spins, moments, flat)
    return cone, acc


# ---------------------------------------------------------------------------------- helpers
def coupling_table(state, pair, nl, cutoff):
    """Bilinear coupling table of the pair terms, probed from their magnetic forces.

    Returns (offs, nbr, jmat): CSR over atoms of the distinct magnetic neighbours j (r < cutoff
    Å, j ≠ i) and (P, 3, 3) matrices with H_i = Σ_j J_ij s_j (eV/μB), H_i = −(1/|m_i|)∂E/∂s_i.
    Probing: the spins of a distance-2 colour class are set to ±e_a on two backgrounds (all
    other spins x̂, then ŷ); the change of a neighbour's transverse field gives the column
    a of its coupling. Valid for terms bilinear in the spins (checked by the caller)."""
    import scipy.sparse as sp

    from .coloring import color_classes, color_graph

    n = len(state)
    mag = state.moments > 0
    r = np.linalg.norm(nl.vectors(state.positions), axis=1)
    keep = (r < cutoff) & (nl.i != nl.j) & mag[nl.i] & mag[nl.j]
    A = sp.csr_matrix((np.ones(int(keep.sum())), (nl.i[keep], nl.j[keep])), shape=(n, n))
    A.sum_duplicates()
    A.sort_indices()
    offs = A.indptr.astype(np.int64)
    nbr = A.indices.astype(np.int64)
    A2 = (A + A @ A).tocsr()
    A2.sort_indices()
    classes = color_classes(color_graph(A2.indptr.astype(np.int64), A2.indices.astype(np.int64), n), mask=mag)
    atoms = np.arange(n, dtype=np.int64)
    jmat = np.zeros((len(nbr), 3, 3))
    row = np.repeat(np.arange(n), np.diff(offs))
    # for every pair entry p (i <- j), the class of j decides when it is probed
    color = np.full(n, -1)
    for c, k in enumerate(classes):
        color[k] = c
    ex, ey = np.array([1.0, 0, 0]), np.array([0, 1.0, 0])
    for c, K in enumerate(classes):
        sel = np.flatnonzero(color[nbr] == c)
        if not len(sel):
            continue
        ii = row[sel]
        for a in range(3):
            proj = []
            for bg in (ex, ey):
                dh = None
                for sign in (1.0, -1.0):
                    s = np.tile(bg, (n, 1))
                    s[K] = 0.0
                    s[K, a] = sign
                    st = _with_spins(state, s)
                    h = sum(t.local_fields(st, nl, atoms) for t in pair)
                    dh = h if dh is None else dh - h
                proj.append(dh[ii] / 2.0)
            px, py = proj
            jmat[sel, :, a] = px + py[:, 0:1] * ex  # the x̂ component lost on the x̂ background
    return offs, nbr, jmat


def _merge_couplings(n, rows, cols, mats):
    """Sum (i, j, 3×3) entries with equal (i, j) into a CSR table (offs, nbr, jmat)."""
    if rows:
        i = np.concatenate(rows)
        j = np.concatenate(cols)
        m = np.concatenate(mats)
    else:
        i = j = np.zeros(0, np.int64)
        m = np.zeros((0, 3, 3))
    order = np.lexsort((j, i))
    i, j, m = i[order], j[order], m[order]
    if len(i):
        first = np.ones(len(i), dtype=bool)
        first[1:] = (i[1:] != i[:-1]) | (j[1:] != j[:-1])
        starts = np.flatnonzero(first)
        m = np.add.reduceat(m, starts, axis=0)
        i, j = i[starts], j[starts]
    offs = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(i, minlength=n), out=offs[1:])
    return offs, np.ascontiguousarray(j, dtype=np.int64), np.ascontiguousarray(m)


def pair_entries(state, term):
    """Directed coupling entries (rows, cols, mats) of a term with a ``pairs(state)`` method
    (``Heisenberg``: E = −Σ_pairs s_iᵀ J_ij s_j, each pair once): H_i += mats @ s_cols for every
    entry, mats = J/|m_i| (eV/μB), both directions; pairs touching non-magnetic atoms dropped."""
    mom = state.moments
    mag = mom > 0
    i, j, J = term.pairs(state)
    i = np.asarray(i, np.int64)
    j = np.asarray(j, np.int64)
    J = np.asarray(J, np.float64)
    k = mag[i] & mag[j]
    i, j, J = i[k], j[k], J[k]
    return ([i, j], [j, i], [J / mom[i, None, None], np.swapaxes(J, 1, 2) / mom[j, None, None]])


def linear_couplings(state, pair_terms, nl=None, probe=True):
    """Coupling table (offs, nbr, jmat) of terms bilinear in the spins: H_i = Σ_j jmat @ s_j
    (eV/μB), H_i = −(1/|m_i|) ∂E/∂s_i.

    Terms with a ``pairs(state)`` method (``Heisenberg``) give it directly (:func:`pair_entries`);
    other terms with a cutoff are probed through their magnetic forces (:func:`coupling_table`;
    needs the neighbour list ``nl``) when ``probe``, else ``None`` is returned. Non-magnetic atoms
    get no couplings."""
    n = len(state)
    rows, cols, mats = [], [], []
    for t in pair_terms:
        if hasattr(t, "pairs"):
            r, c, m = pair_entries(state, t)
            rows += r
            cols += c
            mats += m
        elif probe and t.cutoff > 0 and nl is not None:
            offs, nbr, jm = coupling_table(state, [t], nl, t.cutoff)
            rows.append(np.repeat(np.arange(n), np.diff(offs)))
            cols.append(nbr)
            mats.append(jm)
        else:
            return None
    return _merge_couplings(n, rows, cols, mats)


def compress_couplings(offs, nbr, jmat):
    """Compressed coupling table (offs, nbr, tidx, tens) of a CSR table (offs, nbr, jmat): the
    distinct 3×3 matrices ``tens`` (T, 3, 3) and, per entry, ``tidx`` (int32) with
    jmat[p] == tens[tidx[p]]; ``nbr`` as int32. A periodic crystal has a handful of distinct
    matrices, so the kernels read 8 bytes per coupling instead of 80."""
    nbr = np.asarray(nbr)
    if len(nbr) and int(nbr.max()) >= 2**31 - 1:
        raise InputError("coupling table: more than 2**31 atoms are not supported")
    if len(jmat):
        tens, tidx = np.unique(np.asarray(jmat, np.float64).reshape(-1, 9), axis=0, return_inverse=True)
    else:
        tens, tidx = np.zeros((1, 9)), np.zeros(0, np.int64)
    return (np.ascontiguousarray(offs, dtype=np.int64), np.ascontiguousarray(nbr, dtype=np.int32),
            np.ascontiguousarray(tidx.reshape(-1), dtype=np.int32), np.ascontiguousarray(tens.reshape(-1, 3, 3)))


def isotropic_couplings(tens):
    """Scalar couplings jiso (T,) (eV/μB) if every matrix of ``tens`` (T, 3, 3) is exactly
    jiso[t]·1 (isotropic Heisenberg exchange: zero off-diagonal, equal diagonal elements), else
    None. The scalar kernels then read one number per coupling instead of a 3×3 matrix."""
    t = np.asarray(tens, np.float64).reshape(-1, 9)
    if not len(t):
        return None
    if np.any(t[:, [1, 2, 3, 5, 6, 7]] != 0) or np.any(t[:, 4] != t[:, 0]) or np.any(t[:, 8] != t[:, 0]):
        return None
    return np.ascontiguousarray(t[:, 0])


# ---------------------------------------------------------------------------------- helpers (site)
def site_energies(term, state, atoms) -> np.ndarray:
    """Per-atom energies (eV) of an on-site term for the atoms ``atoms`` of ``state``.

    Uses the term's ``site_energies(state, atoms)`` when it has one, else its single-site
    kernel, else a full evaluation's per-atom energies."""
    if hasattr(term, "site_energies"):
        return np.asarray(term.site_energies(state, atoms), dtype=np.float64)
    if hasattr(term, "_kernel"):
        e = np.zeros(len(atoms))
        h = np.zeros((len(atoms), 3))
        term._kernel(state, atoms, e, h)
        return e
    return term._evaluate(state, None, False, False, False).energies[atoms]


class MonteCarlo(Integrator):
    """Metropolis Monte Carlo of the spins (lattice frozen); ``run(state, potential, n)`` does
    n sweeps.

    Parameters
    ----------
    temperature : K (≥ 0; 0 accepts only moves that do not raise the energy).
    seed : seed of the random stream (NumPy PCG64); same seed → same result, bit for bit,
        however the sweeps are split or restarted (the checkpoint holds the generator state and
        the adapted cone; see :mod:`spinlat.integrators.base`). One thread.
    overrelax : over-relaxation sweeps per sweep (0 = plain Metropolis).
    cone : initial half-angle of the trial cap, rad (0 < cone ≤ π; default π/2).
    target_acceptance : acceptance the cone adapts to (between 0 and 1).
    adapt : adapt the cone after every sweep.

    Attributes ``acceptance`` (of the last sweep), ``cone`` (current half-angle, rad) and
    ``magnetization`` ((n, 3): the reduced magnetisation Σ m_i s_i / Σ |m_i| after each sweep
    (:func:`spinlat.observables.reduced_magnetization`)
    of the last ``run``, for cheap Binder-cumulant and susceptibility statistics).
    """

    dt = None
    moves_lattice = False
    moves_spins = True

    def __init__(self, temperature, seed=None, overrelax=0, cone=None, target_acceptance=0.5, adapt=True):
        super().__init__()
        self.temperature = check_nonnegative(temperature, "temperature", "K")
        self.seed = check_seed(seed)
        self.rng = np.random.default_rng(seed)
        self.overrelax = validation.integer(overrelax, "overrelax", minimum=0)
        cone = math.pi / 2 if cone is None else validation.number(cone, "cone", positive=True, maximum=math.pi,
                                                                  unit="half-angle in rad")
        self.cone = float(cone)
        target_acceptance = validation.number(target_acceptance, "target_acceptance", positive=True)
        if not target_acceptance < 1:
            raise InputError(f"target_acceptance must lie in (0, 1), got {target_acceptance}")
        self.target_acceptance = target_acceptance
        self.adapt = validation.boolean(adapt, "adapt")
        self.acceptance = None
        self._classes_key = None
        self._checked = None

    def __repr__(self):
        return (f"MonteCarlo(temperature={self.temperature}, seed={self.seed}, overrelax={self.overrelax}, "
                f"target_acceptance={self.target_acceptance})")

    # -------------------------------------------------------------- restarts
    def checkpoint(self, potential=None) -> dict:
        """:meth:`Integrator.checkpoint` plus ``cone``, the adapted trial-cap half-angle (rad)."""
        out = super().checkpoint(potential)
        out["cone"] = self.cone
        return out

    def restore(self, checkpoint, state, potential) -> None:
        """:meth:`Integrator.restore`, and take the checkpoint's adapted ``cone`` over."""
        super().restore(checkpoint, state, potential)
        cone = checkpoint.get("cone")
        if isinstance(cone, float) and math.isfinite(cone) and 0 < cone <= math.pi:
            self.cone = cone

    # -------------------------------------------------------------- set-up
    def _split(self, potential):
        mag = [t for t in potential.terms if getattr(t, "magnetic", True)]
        pair = [t for t in mag if t.cutoff > 0 or hasattr(t, "pairs")]
        site = [t for t in mag if not (t.cutoff > 0 or hasattr(t, "pairs"))]
        return pair, site

    def check(self, state, potential) -> None:
        Integrator.check(self, state, potential)
        if not np.any(state.moments > 0):
            raise InputError("MonteCarlo: the state has no magnetic atoms (all moments are 0)")
        key = (id(potential), len(state), state.positions.tobytes(), state.moments.tobytes(),
               state.cell.tobytes())
        if self._checked == key:
            return
        self._probe(state, potential)
        self._checked = key

    def _probe(self, state, potential, n_moves=3, seed=2024):
        """Compare the local ΔE with full energy differences for a few random moves."""
        rng = np.random.default_rng(seed)
        mag = np.flatnonzero(state.moments > 0)
        atoms = rng.choice(mag, size=min(n_moves, len(mag)), replace=False)
        e0 = potential.compute(state, forces=False, magnetic_forces=False).energy
        pair, site = self._split(potential)
        nl = potential.neighbor_list(state) if any(t.cutoff > 0 for t in pair) else None
        for i in atoms:
            a = np.array([i], dtype=np.int64)
            t = rng.normal(size=(1, 3))
            t /= np.linalg.norm(t)
            dE = self._delta_energy(state.spins.copy(), state, pair, site, nl, a, t)[0]
            spins = state.spins.copy()
            spins[i] = t[0]
            e1 = potential.compute(state.copy(spins=spins), forces=False, magnetic_forces=False).energy
            ref = e1 - e0
            scale = max(abs(ref), abs(dE), 1e-6 * (abs(e0) / max(len(state), 1) + 1e-12), 1e-12)
            if abs(dE - ref) > 1e-6 * scale + 1e-12:
                raise InputError(
                    f"MonteCarlo needs magnetic pair terms linear in each spin (exchange, DMI) plus "
                    f"on-site terms; for {potential!r} the local energy change of atom {int(i)} is "
                    f"{dE:.6g} eV but the full energy changes by {ref:.6g} eV")

    def _fields_H(self, spins, state, pair, nl, atoms, table=None):
        """Full linear field H (eV/μB) of the pair terms at ``atoms``, (M, 3)."""
        m = len(atoms)
        H = np.zeros((m, 3))
        if not pair:
            return H
        if table is not None:
            _table_fields(spins, atoms, table, H)
            return H
        st = _with_spins(state, spins)
        hs = np.zeros((m, 3))
        for t in pair:
            hs += t.local_fields(st, nl if t.cutoff > 0 else None, atoms)
        old = spins[atoms].copy()
        perp = np.empty((m, 3))
        perpendicular_spins(spins, atoms, perp)
        spins[atoms] = perp
        ht = np.zeros((m, 3))
        for t in pair:
            ht += t.local_fields(st, nl if t.cutoff > 0 else None, atoms)
        spins[atoms] = old
        full_fields(spins, atoms, np.ascontiguousarray(hs), np.ascontiguousarray(ht), H)
        return H

    def _site_change(self, spins, state, site, atoms, trial, dE):
        if not site:
            return
        st = _with_spins(state, spins)
        e_old = np.zeros(len(atoms))
        for t in site:
            e_old += site_energies(t, st, atoms)
        old = spins[atoms].copy()
        spins[atoms] = trial
        for t in site:
            dE += site_energies(t, st, atoms)
        spins[atoms] = old
        dE -= e_old

    def _delta_energy(self, spins, state, pair, site, nl, atoms, trial, table=None):
        H = self._fields_H(spins, state, pair, nl, atoms, table)
        dE = np.zeros(len(atoms))
        linear_energy_change(spins, state.moments, atoms, H, trial, dE)
        self._site_change(spins, state, site, atoms, trial, dE)
        return dE

    def _classes(self, state, potential, pair):
        if not pair:
            return [np.flatnonzero(state.moments > 0).astype(np.int64)], None
        nl = potential.neighbor_list(state) if any(t.cutoff > 0 for t in pair) else None
        key = (id(potential), id(nl), nl.n_builds if nl is not None else -1, len(state),
               state.moments.tobytes(), state.positions.tobytes())
        if self._classes_key != key:
            from .coloring import best_coloring, color_classes

            table = linear_couplings(state, pair, nl)
            if table is None:
                raise InputError(f"MonteCarlo: cannot build the interaction graph of {potential!r}")
            offs, nbr, _ = table
            colors = best_coloring(offs, nbr, len(state), state.positions)
            self._class_list = color_classes(colors, mask=state.moments > 0)
            self._table = self._verify_table(state, pair, nl, table)
            self._classes_key = key
        return self._class_list, nl

    def _verify_table(self, state, pair, nl, table):
        """The coupling table if it reproduces the pair fields exactly, else None."""
        rng = np.random.default_rng(7)
        s = rng.normal(size=(len(state), 3))
        s /= np.linalg.norm(s, axis=1)[:, None]
        atoms = np.flatnonzero(state.moments > 0).astype(np.int64)
        ref = np.zeros((len(atoms), 3))
        for cls in self._class_list:
            pos = np.searchsorted(atoms, cls)
            ref[pos] = self._fields_H(s, state, pair, nl, cls)
        table = compress_couplings(*table)
        jiso = isotropic_couplings(table[3])
        table = (*table, np.zeros(0) if jiso is None else jiso)
        got = np.zeros((len(atoms), 3))
        _table_fields(s, atoms, table, got)
        scale = np.abs(ref).max() + 1e-300
        return table if np.abs(got - ref).max() <= 1e-9 * scale else None

    # -------------------------------------------------------------- sweeps
    def run(self, state, potential, steps: int):
        """Do ``steps`` sweeps; return the new State (only spins change)."""
        steps = int(steps)
        if steps < 0:
            raise InputError(f"steps must be non-negative, got {steps}")
        self.check(state, potential)
        pair, site = self._split(potential)
        classes, nl = self._classes(state, potential, pair)
        spins = np.array(state.spins, dtype=np.float64, order="C")
        beta = np.inf if self.temperature == 0 else 1.0 / (units.K_B * self.temperature)
        n_mag = sum(len(c) for c in classes)
        self.magnetization = np.zeros((steps, 3))
        table = getattr(self, "_table", None) if pair else None
        if table is not None and not site:
            self._run_fast(spins, state, classes, table, beta, steps)
        else:
            self._run_general(spins, state, pair, site, nl, classes, table, beta, steps, n_mag)
        self.last_evaluation = None
        return State._trusted(state.positions.copy(), state.numbers.copy(), state.cell.copy(), state.pbc.copy(),
                              spins, state.moments.copy(), state.velocities.copy(), state.masses.copy())

    def _run_fast(self, spins, state, classes, table, beta, steps, block=64):
        flat = np.concatenate(classes).astype(np.int64)
        ptr = np.zeros(len(classes) + 1, dtype=np.int64)
        np.cumsum([len(c) for c in classes], out=ptr[1:])
        done = 0
        while done < steps:
            nb = min(block, steps - done)
            u = self.rng.random((nb, len(flat), 3))
            self.cone, self.acceptance = sweep_block(spins, state.moments, flat, ptr, *table, u, beta, self.cone,
                                                     self.target_acceptance, self.adapt, self.overrelax,
                                                     self.magnetization[done:done + nb])
            done += nb

    def _run_general(self, spins, state, pair, site, nl, classes, table, beta, steps, n_mag):
        for sweep in range(steps):
            accepted = 0
            cos_max = math.cos(self.cone)
            for atoms in classes:
                m = len(atoms)
                u = self.rng.random((m, 3))
                trial = np.empty((m, 3))
                cone_trials(spins, atoms, u, cos_max, trial)
                dE = self._delta_energy(spins, state, pair, site, nl, atoms, trial, table)
                accepted += metropolis_accept(spins, atoms, trial, dE, np.ascontiguousarray(u[:, 2]), beta)
            self.acceptance = accepted / max(n_mag, 1)
            if self.adapt:
                f = (self.acceptance + 0.02) / (self.target_acceptance + 0.02)
                self.cone = float(min(math.pi, max(1e-4, self.cone * min(2.0, max(0.5, f)))))
            for _ in range(self.overrelax):
                for atoms in classes:
                    m = len(atoms)
                    H = self._fields_H(spins, state, pair, nl, atoms, table)
                    trial = np.empty((m, 3))
                    reflect_trials(spins, atoms, H, trial)
                    if site:
                        dE = np.zeros(m)
                        self._site_change(spins, state, site, atoms, trial, dE)
                        u = self.rng.random(m)
                        metropolis_accept(spins, atoms, trial, dE, u, beta)
                    else:
                        spins[atoms] = trial
            self.magnetization[sweep] = reduced_magnetization(spins, state.moments)


def _table_fields(spins, atoms, table, out):
    """Fields (eV/μB) of the verified coupling table (offs, nbr, tidx, tens, jiso) at ``atoms``:
    the scalar kernel when ``jiso`` is not empty (isotropic couplings), else the 3×3 one."""
    offs, nbr, tidx, tens, jiso = table
    if len(jiso):
        table_fields_iso(spins, atoms, offs, nbr, tidx, jiso, out)
    else:
        table_fields(spins, atoms, offs, nbr, tidx, tens, out)


def _with_spins(state, spins):
    return State._trusted(state.positions, state.numbers, state.cell, state.pbc, spins, state.moments,
                          state.velocities, state.masses)
