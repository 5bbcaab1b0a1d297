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

Energy changes, and what is exact. The magnetic terms of the potential split into (the field
engine, :class:`~spinlat.integrators.fields.SpinFieldEngine`)

- terms with :class:`~spinlat.potentials.couplings.LinearSpinCouplings` (Heisenberg exchange
  with any 3×3 J_ij including DMI, Bethe-Slater exchange on a frozen lattice, Zeeman, uniaxial
  anisotropy): with the others fixed, E = const − |m_i| H_i·s_i − s_iᵀ A_i s_i, with H_i (the pair
  fields per moment and the field b_i) and A_i (the on-site form) independent of s_i, so
  ΔE = −|m_i| H_i·(s'_i − s_i) − (s'_iᵀ A_i s'_i − s_iᵀ A_i s_i), exact. The per-moment pair
  fields form one compressed coupling table;
- other pair terms (``cutoff > 0``), which must be linear in each single spin s_i when the
  others are fixed. The potential gives only the transverse part h_i = H_i − (H_i·s_i)s_i, so
  H_i is recovered exactly from a second field evaluation with s_i replaced by a unit vector
  t_i ⊥ s_i: H_i = h_i(s) + (h_i(t)·s_i) s_i; their couplings are probed once into the same
  table (:func:`coupling_table`) and checked;
- other on-site terms (``cutoff == 0``: cubic anisotropy, Landau, any function of the atom's own
  moment): ΔE from their per-atom energies (``local_energies``) at the old and the trial spin,
  exact for any form.

``check`` verifies this on a few random single-spin moves against full energy differences and
raises :class:`~spinlat.errors.InputError` for potentials that are not of this form (e.g. a
biquadratic or machine-learned term, or a periodic cell so small that a spin couples to its own
image).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from .. import units, validation
from ..errors import InputError
from ..observables import reduced_magnetization, reduced_magnetization_kernel
from .base import Integrator, check_nonnegative, check_seed
from .coloring import best_coloring, color_classes
from .fields import SpinFieldEngine, compress_couplings, isotropic_couplings, merge_entries
from ..keywords import refuse_other_names


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


@numba.njit(cache=True, inline="always")
def _quadratic(onsite, i, x, y, z):
    """xᵀ A_i x for the on-site form A_i = onsite[i] (eV)."""
    return (x * (onsite[i, 0, 0] * x + onsite[i, 0, 1] * y + onsite[i, 0, 2] * z)
            + y * (onsite[i, 1, 0] * x + onsite[i, 1, 1] * y + onsite[i, 1, 2] * z)
            + z * (onsite[i, 2, 0] * x + onsite[i, 2, 1] * y + onsite[i, 2, 2] * z))


@numba.njit(cache=True)
def onsite_energy_change(spins, atoms, onsite, trial, dE):
    """dE[k] −= t_kᵀ A_i t_k − s_iᵀ A_i s_i (eV) for i = atoms[k]: the change of −s_iᵀ A_i s_i."""
    for k in range(atoms.shape[0]):
        i = atoms[k]
        dE[k] -= (_quadratic(onsite, i, trial[k, 0], trial[k, 1], trial[k, 2])
                  - _quadratic(onsite, i, spins[i, 0], spins[i, 1], spins[i, 2]))


@numba.njit(cache=True, inline="always")
def coupled_field_dmi(spins, i, offs, nbr, tidx, jdmi):
    """:func:`coupled_field` for matrices of the form [[J, a, b], [−a, J, c], [−b, −c, J]]
    (isotropic exchange plus DMI: jdmi[t] = (J, a, b, c), see :func:`dmi_couplings`), eV/μB; the
    same products and sums in the same order as the 3×3 kernel, so the same bits."""
    hx = hy = hz = 0.0
    for p in range(offs[i], offs[i + 1]):
        j = numba.uint32(nbr[p])
        t = numba.uint32(tidx[p])
        w, a, b, c = jdmi[t, 0], jdmi[t, 1], jdmi[t, 2], jdmi[t, 3]
        x, y, z = spins[j, 0], spins[j, 1], spins[j, 2]
        hx += w * x + a * y + b * z
        hy += -(a * x) + w * y + c * z
        hz += -(b * x) - (c * y) + w * z
    return hx, hy, hz


def dmi_couplings(tens):
    """(T, 4) rows (J, a, b, c) if every matrix of ``tens`` (T, 3, 3) is exactly
    [[J, a, b], [−a, J, c], [−b, −c, J]] (equal diagonal, antisymmetric off-diagonal part, bit
    for bit including signed zeros), else None."""
    t = np.ascontiguousarray(tens, np.float64).reshape(-1, 9)
    if not len(t):
        return None
    bits = t.view(np.int64)
    neg = (-t).view(np.int64)
    if not (np.array_equal(bits[:, 4], bits[:, 0]) and np.array_equal(bits[:, 8], bits[:, 0])
            and np.array_equal(bits[:, 3], neg[:, 1]) and np.array_equal(bits[:, 6], neg[:, 2])
            and np.array_equal(bits[:, 7], neg[:, 5])):
        return None
    return np.ascontiguousarray(t[:, [0, 1, 2, 5]])


#: pair-table kinds of the sweep variants (compile-time constants): chosen at run time (the
#: general kernel), isotropic scalars, isotropic + DMI, full 3×3 matrices
_ANY, _ISO, _DMI, _TENSOR = 0, 1, 2, 3
#: modes of the per-atom field and on-site forms: chosen at run time, absent, one row for every
#: atom (passed as a (1, …) array), one row per atom
_RUNTIME, _ABSENT, _UNIFORM, _PER_ATOM = 0, 1, 2, 3


@numba.njit(cache=True, inline="always")
def _local_field(kind, field_mode, spins, cx, cy, cz, i, offs, nbr, tidx, jiso, jdmi, tens, iso, field, has_field):
    """The local field of spin i (pairs of the table ``kind``, plus the Zeeman-like row of
    ``field_mode``): the one field both the Metropolis and the over-relaxation moves use. Inlined
    into each sweep variant, whose constant ``kind`` and ``field_mode`` remove the other branches."""
    if kind == _ISO:
        hx, hy, hz = coupled_field_iso(spins, i, offs, nbr, tidx, jiso)
    elif kind == _DMI:
        hx, hy, hz = coupled_field_dmi(spins, i, offs, nbr, tidx, jdmi)
    elif kind == _TENSOR:
        hx, hy, hz = coupled_field(cx, cy, cz, i, offs, nbr, tidx, tens)
    else:
        hx, hy, hz = _site_field(spins, cx, cy, cz, i, offs, nbr, tidx, jiso, tens, iso)
    if has_field:
        f = 0 if field_mode == _UNIFORM else i
        hx += field[f, 0]
        hy += field[f, 1]
        hz += field[f, 2]
    return hx, hy, hz


def _sweep_block_kernel(kind, field_mode, onsite_mode):
    """One variant of the Metropolis sweep kernel (:func:`sweep_block`), with the pair-table
    kind and the field / on-site modes fixed at compile time (closure constants), so that the
    common cases (isotropic exchange alone, with anisotropy) do not test for, load or multiply
    what they do not have. Every variant does the same floating-point operations in the same
    order as the general one (``_ANY``, ``_RUNTIME``), so all give the same bits. The kernel
    captures only these three integers: a captured dispatcher would change its numba cache key in
    every process (compiled again each time, a cache file more each time)."""

    @numba.njit(cache=True)
    def sweep(spins, moments, flat, class_ptr, offs, nbr, tidx, tens, jiso, jdmi, field, onsite, u, beta, cone,
              target, adapt, overrelax, mag_out):
        _ = (kind, field_mode, onsite_mode)  # closure constants: they keep the numba cache entries apart
        m = flat.shape[0]
        acc = 0.0
        cx, cy, cz = spins[:, 0], spins[:, 1], spins[:, 2]
        iso = jiso.shape[0] > 0
        has_field = field.shape[0] > 0 if field_mode == _RUNTIME else field_mode != _ABSENT
        has_onsite = onsite.shape[0] > 0 if onsite_mode == _RUNTIME else onsite_mode != _ABSENT
        for sw in range(u.shape[0]):
            cos_max = math.cos(cone)
            accepted = 0
            for c in range(class_ptr.shape[0] - 1):
                for k in range(class_ptr[c], class_ptr[c + 1]):
                    i = flat[k]
                    hx, hy, hz = _local_field(kind, field_mode, spins, cx, cy, cz, i, offs, nbr, tidx, jiso, jdmi,
                                              tens, iso, field, has_field)
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
                    if has_onsite:
                        o = 0 if onsite_mode == _UNIFORM else i
                        d -= _quadratic(onsite, o, tx, ty, tz) - _quadratic(onsite, o, sx, sy, sz)
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
            for r in range(overrelax):
                for c in range(class_ptr.shape[0] - 1):
                    for k in range(class_ptr[c], class_ptr[c + 1]):
                        i = flat[k]
                        hx, hy, hz = _local_field(kind, field_mode, spins, cx, cy, cz, i, offs, nbr, tidx, jiso,
                                                  jdmi, tens, iso, field, has_field)
                        h2 = hx * hx + hy * hy + hz * hz
                        if h2 == 0.0:
                            continue
                        sx, sy, sz = spins[i, 0], spins[i, 1], spins[i, 2]
                        g = 2.0 * (sx * hx + sy * hy + sz * hz) / h2
                        tx, ty, tz = g * hx - sx, g * hy - sy, g * hz - sz
                        inv = 1.0 / math.sqrt(tx * tx + ty * ty + tz * tz)
                        tx *= inv
                        ty *= inv
                        tz *= inv
                        if has_onsite:
                            o = 0 if onsite_mode == _UNIFORM else i
                            d = -(_quadratic(onsite, o, tx, ty, tz) - _quadratic(onsite, o, sx, sy, sz))
                            ok = d <= 0.0
                            if not ok and beta < np.inf:
                                ok = u[sw, k, 3 + r] < math.exp(-beta * d)
                            if not ok:
                                continue
                        spins[i, 0] = tx
                        spins[i, 1] = ty
                        spins[i, 2] = tz
            mag_out[sw, 0], mag_out[sw, 1], mag_out[sw, 2] = reduced_magnetization_kernel(spins, moments, flat)
        return cone, acc

    return sweep


_SWEEP_VARIANTS = {}


def _sweep_variant(kind, field_mode, onsite_mode):
    """The compiled :func:`_sweep_block_kernel` variant (made once per process)."""
    key = (kind, field_mode, onsite_mode)
    fn = _SWEEP_VARIANTS.get(key)
    if fn is None:
        fn = _SWEEP_VARIANTS[key] = _sweep_block_kernel(*key)
    return fn


def _uniform_rows(a):
    """``a[:1]`` if every row of ``a`` equals the first bit for bit, else None."""
    if a.shape[0] == 0:
        return None
    bits = np.ascontiguousarray(a).reshape(a.shape[0], -1).view(np.int64)
    return np.ascontiguousarray(a[:1]) if (bits == bits[:1]).all() else None


def _per_atom_mode(a):
    """(mode, array) of a field (N, 3) or on-site forms (N, 3, 3): absent, uniform or per atom."""
    if a.shape[0] == 0:
        return _ABSENT, a
    one = _uniform_rows(a)
    return (_PER_ATOM, a) if one is None else (_UNIFORM, one)


def sweep_block(spins, moments, flat, class_ptr, table, field, onsite, u, beta, cone, target, adapt, overrelax,
                mag_out, specialise=True):
    """Sweeps of a Hamiltonian of linear couplings, all in numba: pairs from the compressed table
    ``table`` = (offs, nbr, tidx, tens, jiso) (``jiso`` (T,) the scalar couplings when every matrix
    of ``tens`` is isotropic, tens[t] = jiso[t]·1 (:func:`isotropic_couplings`; the scalar kernel is
    then used), else empty), the field ``field`` (N, 3) eV/μB or (0, 3), the on-site forms ``onsite``
    (N, 3, 3) eV or (0, 3, 3): ΔE = −|m_i| H_i·(t − s_i) − (tᵀA_i t − s_iᵀA_i s_i) with
    H_i = Σ_p tens[tidx[p]] s_nbr[p] + b_i, exact.

    ``flat``/``class_ptr``: atoms of each colour class, concatenated; ``u`` (S, M, 3 + R)
    uniforms, one row per atom of ``flat`` and sweep: three for the Metropolis move, and with
    on-site forms one per over-relaxation sweep (R = ``overrelax``; the reflection about H_i keeps
    the linear energy and is accepted with the Metropolis test on the on-site change; without
    on-site forms R = 0 and it is always accepted); ``mag_out`` (S, 3) receives
    Σ_i m_i s_i / Σ_i m_i after each sweep. Returns (cone, acceptance of the last sweep).

    ``specialise`` (default) runs the kernel variant compiled for this table's kind (isotropic,
    isotropic + DMI (:func:`dmi_couplings`), full matrices) and for an absent, uniform (the same
    row for every atom) or per-atom field and on-site form; False the general kernel that
    decides at run time. Both give the same bits (the same operations in the same order)."""
    kernel, arrays = sweep_plan(table, field, onsite, specialise)
    return kernel(spins, moments, flat, class_ptr, *arrays, u, beta, cone, target, adapt, overrelax, mag_out)


def sweep_plan(table, field, onsite, specialise=True):
    """(kernel, arrays) for :func:`sweep_block`: the kernel variant for ``table``, ``field`` and
    ``onsite`` and the arrays it takes in their place, ``kernel(spins, moments, flat, class_ptr,
    *arrays, u, beta, cone, target, adapt, overrelax, mag_out)``. Worked out once per model (it
    compares the per-atom rows)."""
    offs, nbr, tidx, tens, jiso = table
    if not specialise:
        return _sweep_variant(_ANY, _RUNTIME, _RUNTIME), (offs, nbr, tidx, tens, jiso, _NO_DMI, field, onsite)
    jdmi = None if len(jiso) else dmi_couplings(tens)
    kind = _ISO if len(jiso) else (_TENSOR if jdmi is None else _DMI)
    jdmi = _NO_DMI if jdmi is None else jdmi
    field_mode, field = _per_atom_mode(field)
    onsite_mode, onsite = _per_atom_mode(onsite)
    return _sweep_variant(kind, field_mode, onsite_mode), (offs, nbr, tidx, tens, jiso, jdmi, field, onsite)


_NO_DMI = np.zeros((0, 4))


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
                    st = state.with_arrays(spins=s)
                    h = sum(t.local_fields(st, nl, atoms) for t in pair)
                    dh = h if dh is None else dh - h
                proj.append(dh[ii] / 2.0)
            px, py = proj
            jmat[sel, :, a] = px + py[:, 0:1] * ex  # the x̂ component lost on the x̂ background
    return offs, nbr, jmat


class _Model:
    """What Monte Carlo needs of a potential on one lattice (frozen positions and moments):
    ``table`` the verified compressed per-moment pair table (offs, nbr, tidx, tens, jiso) of the
    fused couplings and of the probed pair terms (see the module docstring), or None when the
    probed part did not reproduce their fields (then ``probed`` lists those terms, evaluated by
    probing at every move); ``field`` (N, 3) eV/μB or (0, 3); ``onsite`` (N, 3, 3) eV or (0, 3, 3);
    ``site`` the other on-site terms (their ``local_energies``); ``classes`` the colour classes;
    ``nl`` the neighbour list; ``plan`` the :func:`sweep_plan` of the table (None without one)."""

    __slots__ = ("table", "probed", "field", "onsite", "site", "classes", "nl", "fused_table", "plan")


def _self_images_onsite(rows, cols, mats, onsite, moments):
    """Pair entries of an atom with its own periodic image (rows[e] == cols[e], in a cell smaller
    than the coupling range) are quadratic in that spin, not linear: the Metropolis ΔE must not
    take them as a field of the old spin. They become on-site forms: row i's self entries J_p
    (mats[e] |m_i|, both directions of each pair) carry −½ Σ_p s_iᵀ J_p s_i = −s_iᵀ A_i s_i with
    A_i = ½ Σ_p (J_p + J_pᵀ)/2. Returns (rows, cols, mats) without them and the forms (N, 3, 3)
    added to ``onsite`` (None stays None when there are none)."""
    own = rows == cols
    if not np.any(own):
        return rows, cols, mats, onsite
    n = len(moments)
    forms = np.zeros((n, 3, 3)) if onsite is None else np.array(onsite, dtype=np.float64)
    at = rows[own]
    J = mats[own] * np.asarray(moments, dtype=np.float64)[at, None, None]
    np.add.at(forms, at, 0.25 * (J + np.swapaxes(J, 1, 2)))
    keep = ~own
    return rows[keep], cols[keep], mats[keep], np.ascontiguousarray(forms)


@refuse_other_names()
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

    Speed: when every magnetic term has linear couplings (Heisenberg, Bethe-Slater exchange,
    Zeeman, uniaxial anisotropy) a block of sweeps is one numba call (:func:`sweep_block`, in the
    variant compiled for the couplings at hand: isotropic exchange alone does not pay for 3×3
    matrices, a field or on-site forms it does not have); otherwise each colour class is a few
    NumPy/numba calls.
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
        self._engine = None
        self._model, self._model_key = None, None
        self._checked = None

    def __repr__(self):
        return (f"MonteCarlo(temperature={self.temperature}, seed={self.seed}, overrelax={self.overrelax}, "
                f"target_acceptance={self.target_acceptance})")

    @property
    def _table(self):
        """The verified compressed pair table of the last run (None: probed fields in use)."""
        return None if self._model is None else self._model.table

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
    def check(self, state, potential) -> None:
        """The parameters as the constructor checks them (``mc.temperature = T`` between runs is
        taken live), then the state and potential."""
        # the values kept as the constructor keeps them (``overrelax = 2.0``: the int 2)
        self.temperature = check_nonnegative(self.temperature, "temperature", "K")
        self.overrelax = validation.integer(self.overrelax, "overrelax", minimum=0)
        self.cone = validation.number(self.cone, "cone", positive=True, maximum=math.pi, unit="half-angle in rad")
        ta = validation.number(self.target_acceptance, "target_acceptance", positive=True)
        if not ta < 1:
            raise InputError(f"target_acceptance must lie in (0, 1), got {ta}")
        self.target_acceptance = ta
        self.adapt = validation.boolean(self.adapt, "adapt")
        Integrator.check(self, state, potential)
        if not np.any(state.moments > 0):
            raise InputError("MonteCarlo: the state has no magnetic atoms (all moments are 0)")
        many_body = [t for t in potential.terms if t.magnetic and t.many_body_spins]
        if many_body:   # refused before the probe, which for such a model takes minutes to say the same
            raise InputError(f"MonteCarlo needs energy changes local to the moved spin (pair and on-site spin "
                             f"terms); {many_body[0]!r} is a many-body model that gives its magnetic forces only "
                             "all at once. Sample temperature with LLG(temperature=...) or SpinLatticeLangevin")
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
        model = self._prepare(state, potential)
        for i in atoms:
            a = np.array([i], dtype=np.int64)
            t = rng.normal(size=(1, 3))
            t /= np.linalg.norm(t)
            dE = self._delta_energy(state.spins.copy(), state, model, a, t)[0]
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

    def _prepare(self, state, potential) -> _Model:
        """The :class:`_Model` of ``potential`` on the lattice of ``state`` (kept while the
        potential, the neighbour-list build, positions, cell and moments stay the same)."""
        nl = potential.neighbor_list(state) if potential.cutoff > 0 else None
        key = (id(potential), id(nl), nl.n_builds if nl is not None else -1, len(state), state.moments.tobytes(),
               state.positions.tobytes(), state.cell.tobytes(), state.numbers.tobytes())
        if self._model_key == key:
            return self._model
        engine = self._engine
        if engine is None or engine.potential is not potential:
            engine = self._engine = SpinFieldEngine(potential)
        couplings = engine.update(state, nl)
        n = len(state)
        model = _Model()
        model.nl = nl
        model.site = [t for t in engine.extra if t.cutoff <= 0]
        probed = [t for t in engine.extra if t.cutoff > 0]
        rows, cols, mats, b = couplings.per_moment_entries(state.moments, onsite=False)
        rows, cols, mats, onsite = _self_images_onsite(rows, cols, mats, couplings.onsite, state.moments)
        model.field = b if couplings.field is not None else _NO_FIELD
        model.onsite = onsite if onsite is not None else _NO_ONSITE
        fused = merge_entries(n, [rows], [cols], [mats])
        model.fused_table = _compressed(fused)
        model.probed = []
        table = fused
        if probed:
            offs, nbr, jm = coupling_table(state, probed, nl, max(t.cutoff for t in probed))
            table = merge_entries(n, [rows, np.repeat(np.arange(n), np.diff(offs))], [cols, nbr], [mats, jm])
        offs, nbr, _ = table
        colors = best_coloring(offs, nbr, n, state.positions)
        model.classes = color_classes(colors, mask=state.moments > 0)
        model.table = _compressed(table)
        if probed and not self._reproduces(state, model, probed):
            model.table, model.probed = None, probed
        model.plan = None if model.table is None else sweep_plan(model.table, model.field, model.onsite)
        self._model, self._model_key = model, key
        return model

    def _reproduces(self, state, model, probed):
        """Whether the table's fields equal the fused fields plus the probed terms' full linear
        fields (:meth:`_probed_fields`) on random spins (1e-9 of the largest)."""
        rng = np.random.default_rng(7)
        s = rng.normal(size=(len(state), 3))
        s /= np.linalg.norm(s, axis=1)[:, None]
        atoms = np.flatnonzero(state.moments > 0).astype(np.int64)
        ref = np.zeros((len(atoms), 3))
        _table_fields(s, atoms, model.fused_table, ref)
        for cls in model.classes:
            pos = np.searchsorted(atoms, cls)
            ref[pos] += self._probed_fields(s, state, probed, model.nl, cls)
        got = np.zeros((len(atoms), 3))
        _table_fields(s, atoms, model.table, got)
        scale = np.abs(ref).max() + 1e-300
        return np.abs(got - ref).max() <= 1e-9 * scale

    @staticmethod
    def _probed_fields(spins, state, terms, nl, atoms):
        """Full linear field H (eV/μB) of pair terms without couplings at ``atoms``, (M, 3): their
        magnetic forces give only h = H − (H·s)s, so H = h(s) + (h(t)·s) s with t ⊥ s."""
        m = len(atoms)
        st = state.with_arrays(spins=spins)
        hs = np.zeros((m, 3))
        for t in terms:
            hs += t.local_fields(st, nl if t.cutoff > 0 else None, atoms)
        old = spins[atoms].copy()
        perp = np.empty((m, 3))
        perpendicular_spins(spins, atoms, perp)
        spins[atoms] = perp
        ht = np.zeros((m, 3))
        for t in terms:
            ht += t.local_fields(st, nl if t.cutoff > 0 else None, atoms)
        spins[atoms] = old
        H = np.empty((m, 3))
        full_fields(spins, atoms, np.ascontiguousarray(hs), np.ascontiguousarray(ht), H)
        return H

    def _fields_H(self, spins, state, model, atoms):
        """Full linear field H (eV/μB) of the pair and field terms at ``atoms``, (M, 3)."""
        H = np.zeros((len(atoms), 3))
        if model.table is not None:
            _table_fields(spins, atoms, model.table, H)
        else:
            _table_fields(spins, atoms, model.fused_table, H)
            H += self._probed_fields(spins, state, model.probed, model.nl, atoms)
        if model.field.shape[0]:
            H += model.field[atoms]
        return H

    def _site_change(self, spins, state, model, atoms, trial, dE):
        """dE += the change of the on-site energies (forms and other on-site terms) when the
        spins ``atoms`` become ``trial``."""
        if model.onsite.shape[0]:
            onsite_energy_change(spins, atoms, model.onsite, np.ascontiguousarray(trial), dE)
        if not model.site:
            return
        st = state.with_arrays(spins=spins)
        e_old = np.zeros(len(atoms))
        for t in model.site:
            e_old += t.local_energies(st, None, atoms)
        old = spins[atoms].copy()
        spins[atoms] = trial
        for t in model.site:
            dE += t.local_energies(st, None, atoms)
        spins[atoms] = old
        dE -= e_old

    def _delta_energy(self, spins, state, model, atoms, trial):
        H = self._fields_H(spins, state, model, atoms)
        dE = np.zeros(len(atoms))
        linear_energy_change(spins, state.moments, atoms, H, trial, dE)
        self._site_change(spins, state, model, atoms, trial, dE)
        return dE

    # -------------------------------------------------------------- sweeps
    def run(self, state, potential, steps: int):
        """Do ``steps`` sweeps; return the new State (only spins change)."""
        steps = int(steps)
        if steps < 0:
            raise InputError(f"steps must be non-negative, got {steps}")
        self.check(state, potential)
        model = self._prepare(state, potential)
        spins = np.array(state.spins, dtype=np.float64, order="C")
        beta = np.inf if self.temperature == 0 else 1.0 / (units.K_B * self.temperature)
        self.magnetization = np.zeros((steps, 3))
        if model.table is not None and not model.site:
            self._run_fast(spins, state, model, beta, steps)
        else:
            self._run_general(spins, state, model, beta, steps)
        return self._record(state.copy().with_arrays(spins=spins), potential, None)

    #: uniforms drawn per kernel call, at most (1 MiB of float64; a block is at least one sweep):
    #: a bounded buffer whatever N, and the same stream as one draw for all sweeps
    _UNIFORMS_PER_BLOCK = 1 << 17

    def _run_fast(self, spins, state, model, beta, steps, block=64):
        classes = model.classes
        flat = np.concatenate(classes).astype(np.int64)
        ptr = np.zeros(len(classes) + 1, dtype=np.int64)
        np.cumsum([len(c) for c in classes], out=ptr[1:])
        width = 3 + (self.overrelax if model.onsite.shape[0] else 0)
        block = max(1, min(block, self._UNIFORMS_PER_BLOCK // max(1, len(flat) * width)))
        done = 0
        while done < steps:
            nb = min(block, steps - done)
            u = self.rng.random((nb, len(flat), width))
            kernel, arrays = model.plan
            self.cone, self.acceptance = kernel(spins, state.moments, flat, ptr, *arrays, u, beta, self.cone,
                                                self.target_acceptance, self.adapt, self.overrelax,
                                                self.magnetization[done:done + nb])
            done += nb

    def _run_general(self, spins, state, model, beta, steps):
        classes = model.classes
        n_mag = sum(len(c) for c in classes)
        onsite = bool(model.site) or model.onsite.shape[0] > 0
        for sweep in range(steps):
            accepted = 0
            cos_max = math.cos(self.cone)
            for atoms in classes:
                m = len(atoms)
                u = self.rng.random((m, 3))
                trial = np.empty((m, 3))
                cone_trials(spins, atoms, u, cos_max, trial)
                dE = self._delta_energy(spins, state, model, atoms, trial)
                accepted += metropolis_accept(spins, atoms, trial, dE, np.ascontiguousarray(u[:, 2]), beta)
            self.acceptance = accepted / max(n_mag, 1)
            if self.adapt:
                f = (self.acceptance + 0.02) / (self.target_acceptance + 0.02)
                self.cone = float(min(math.pi, max(1e-4, self.cone * min(2.0, max(0.5, f)))))
            for _ in range(self.overrelax):
                for atoms in classes:
                    m = len(atoms)
                    H = self._fields_H(spins, state, model, atoms)
                    trial = np.empty((m, 3))
                    reflect_trials(spins, atoms, H, trial)
                    if onsite:
                        dE = np.zeros(m)
                        self._site_change(spins, state, model, atoms, trial, dE)
                        u = self.rng.random(m)
                        metropolis_accept(spins, atoms, trial, dE, u, beta)
                    else:
                        spins[atoms] = trial
            self.magnetization[sweep] = reduced_magnetization(spins, state.moments)


_NO_FIELD = np.zeros((0, 3))
_NO_ONSITE = np.zeros((0, 3, 3))


def _compressed(table):
    """Compressed pair table (offs, nbr, tidx, tens, jiso) of a CSR table (offs, nbr, jmat)."""
    table = compress_couplings(*table)
    jiso = isotropic_couplings(table[3])
    return (*table, np.zeros(0) if jiso is None else jiso)


def _table_fields(spins, atoms, table, out):
    """Fields (eV/μB) of a compressed coupling table (offs, nbr, tidx, tens, jiso) at ``atoms``:
    the scalar kernel when ``jiso`` is not empty (isotropic couplings), else the 3×3 one."""
    offs, nbr, tidx, tens, jiso = table
    if len(jiso):
        table_fields_iso(spins, atoms, offs, nbr, tidx, jiso, out)
    else:
        table_fields(spins, atoms, offs, nbr, tidx, tens, out)
