"""Exact rotations of unit spins about effective fields (numba kernels).

Sign convention (DESIGN.md): the atomistic LLG equation is

    ds/dt = −γ/(1+α²) [ s × B + α s × (s × B) ],      B = h / μB (tesla),

with h = −∂E/∂m in eV/μB and γ = ``units.GAMMA`` rad/(fs·T). Since −s × B = B × s, the
undamped motion is a right-handed rotation about +B with angular velocity γ' |B|,
γ' = γ/(1+α²): a spin along x in a field along z moves towards +y. Equivalently
ds/dt = s × ω with ω = −γ' B. The damping term γ'α (B − s (s·B)) turns s towards B.

For a field that does not change during the step the LLG equation has the closed-form
solution (polar angle θ measured from B̂, φ the azimuth about B̂)

    φ(t) = φ0 + γ'|B| t,        cos θ(t) = tanh(αγ'|B| t + artanh cos θ0),

which the kernels apply: with x = αγ'|B|dt and c = cos θ0,

    cos θ' = (c + tanh x) / (1 + c tanh x),   sin θ' = sin θ0 / (cosh x (1 + c tanh x)),

and the transverse part rotated by φ = γ'|B|dt (Rodrigues). For α = 0 this is the plain
Rodrigues rotation; the spin length is preserved to round-off (and re-normalised).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from .. import units


def angle_factor(dt: float, damping: float = 0.0) -> float:
    """Precession angle per unit magnetic force for a step ``dt`` fs: γ dt / ((1+α²) μB),
    in rad per (eV/μB). The rotation angle of a spin in a field h (eV/μB) is
    ``angle_factor * |h|``."""
    return units.GAMMA * dt / ((1.0 + damping * damping) * units.MU_B)


#: below this rotation angle (rad) cos and sin come from their Taylor series to the φ⁸ / φ⁷
#: terms: the truncation error (< φ⁹/9! ≈ 5e-20) is far below round-off, and it is 2× faster
#: than the libm calls for the small angles of short time steps
_SMALL_ANGLE = 0.03


@numba.njit(cache=True, inline="always")
def _cos_sin(phi):
    """(cos φ, sin φ) to round-off."""
    if abs(phi) < _SMALL_ANGLE:
        p2 = phi * phi
        return (1.0 - 0.5 * p2 * (1.0 - p2 / 12.0 * (1.0 - p2 / 30.0 * (1.0 - p2 / 56.0))),
                phi * (1.0 - p2 / 6.0 * (1.0 - p2 / 20.0 * (1.0 - p2 / 42.0))))
    return math.cos(phi), math.sin(phi)


@numba.njit(cache=True, inline="always")
def rotate_vector(sx, sy, sz, hx, hy, hz, fac, damping):
    """The unit vector s rotated for one step in the fixed field h (eV/μB): precession angle
    fac·|h| about ĥ (right-handed) and, for damping α > 0, the exact damped polar motion (module
    docstring). Returns the re-normalised components; s itself when h = 0."""
    b = math.sqrt(hx * hx + hy * hy + hz * hz)
    if b == 0.0:
        return sx, sy, sz
    phi = fac * b
    bx, by, bz = hx / b, hy / b, hz / b
    c = sx * bx + sy * by + sz * bz
    px, py, pz = sx - c * bx, sy - c * by, sz - c * bz  # transverse part
    # b̂ × s
    qx = by * sz - bz * sy
    qy = bz * sx - bx * sz
    qz = bx * sy - by * sx
    cp, sp = math.cos(phi), math.sin(phi)
    if damping != 0.0:
        x = damping * phi
        tx = math.tanh(x)
        den = 1.0 + c * tx
        c2 = (c + tx) / den
        f = 1.0 / (math.cosh(x) * den)
    else:
        c2 = c
        f = 1.0
    nx = c2 * bx + f * (px * cp + qx * sp)
    ny = c2 * by + f * (py * cp + qy * sp)
    nz = c2 * bz + f * (pz * cp + qz * sp)
    inv = 1.0 / math.sqrt(nx * nx + ny * ny + nz * nz)
    return nx * inv, ny * inv, nz * inv


# Taylor coefficients of sin(φ)/φ = Σ (−x)^k/(2k+1)! and (1 − cos φ)/φ² = Σ (−x)^k/(2k+2)!, x = φ²;
# nine terms each are exact to rounding for x ≤ SERIES_LIMIT (next terms 1/19!, 1/20! < 1e-17).
SERIES_LIMIT = 1.0
_S0, _S1, _S2, _S3, _S4, _S5, _S6, _S7, _S8 = ((-1.0) ** k / math.factorial(2 * k + 1) for k in range(9))
_V0, _V1, _V2, _V3, _V4, _V5, _V6, _V7, _V8 = ((-1.0) ** k / math.factorial(2 * k + 2) for k in range(9))


@numba.njit(cache=True, inline="always")
def rotate_series(sx, sy, sz, ox, oy, oz, dt):
    """s rotated by the angle |ω| dt about ω (right-handed, ds/dt = ω × s), as
    s + dt S (ω×s) + dt² V ω×(ω×s) with S = sin φ/φ and V = (1 − cos φ)/φ² from their Taylor
    series in x = φ² (no square root, division or trigonometric call, so loops of it
    vectorise). Exact to rounding for x ≤ ``SERIES_LIMIT``; returns (s'x, s'y, s'z, x) with s'
    re-normalised — callers redo spins with x > ``SERIES_LIMIT`` by :func:`rotate_vector`."""
    x = (ox * ox + oy * oy + oz * oz) * (dt * dt)
    s = dt * (_S0 + x * (_S1 + x * (_S2 + x * (_S3 + x * (_S4 + x * (_S5 + x * (_S6 + x * (_S7 + x * _S8))))))))
    v = (dt * dt) * (_V0 + x * (_V1 + x * (_V2 + x * (_V3 + x * (_V4 + x * (_V5 + x * (_V6 + x * (_V7 + x * _V8))))))))
    cx = oy * sz - oz * sy
    cy = oz * sx - ox * sz
    cz = ox * sy - oy * sx
    nx = sx + s * cx + v * (oy * cz - oz * cy)
    ny = sy + s * cy + v * (oz * cx - ox * cz)
    nz = sz + s * cz + v * (ox * cy - oy * cx)
    inv = 1.0 / math.sqrt(nx * nx + ny * ny + nz * nz)
    return nx * inv, ny * inv, nz * inv, x


@numba.njit(cache=True, inline="always")
def _rotate_one(spins, i, hx, hy, hz, fac, damping):
    """spins[i] ← :func:`rotate_vector` of spins[i] (in place)."""
    if hx == 0.0 and hy == 0.0 and hz == 0.0:
        return
    spins[i, 0], spins[i, 1], spins[i, 2] = rotate_vector(spins[i, 0], spins[i, 1], spins[i, 2], hx, hy, hz,
                                                          fac, damping)


@numba.njit(cache=True)
def rotate_spins(spins, fields, atoms, fac, damping=0.0):
    """Rotate ``spins[atoms[k]]`` in place in the field ``fields[k]`` for one step.

    Parameters
    ----------
    spins : (N, 3) unit spins, modified in place.
    fields : (len(atoms), 3) magnetic forces h (eV/μB), row k for atom atoms[k] (the layout
        ``Potential.local_fields`` returns).
    atoms : (M,) int64 atom indices.
    fac : :func:`angle_factor` (dt, damping), rad per eV/μB.
    damping : Gilbert damping α (dimensionless) for the exact damped motion in a fixed field.
    """
    for k in range(atoms.shape[0]):
        _rotate_one(spins, atoms[k], fields[k, 0], fields[k, 1], fields[k, 2], fac, damping)


@numba.njit(cache=True)
def rotate_all(spins, fields, fac, damping=0.0):
    """Rotate every spin ``spins[i]`` in place in its field ``fields[i]`` (eV/μB) for one step;
    see :func:`rotate_spins`. Atoms with zero field do not move."""
    for i in range(spins.shape[0]):
        _rotate_one(spins, i, fields[i, 0], fields[i, 1], fields[i, 2], fac, damping)


@numba.njit(cache=True, parallel=False)
def rotate_all_scaled(spins, fields, facs, damping):
    """Like :func:`rotate_all` with a per-atom angle factor ``facs`` (N,), rad per eV/μB
    (e.g. for per-atom damping or time steps)."""
    for i in range(spins.shape[0]):
        _rotate_one(spins, i, fields[i, 0], fields[i, 1], fields[i, 2], facs[i], damping)


def rotate_reference(spins, fields, fac, damping=0.0):
    """NumPy reference of :func:`rotate_all` (returns new spins): integrates the LLG equation
    in a fixed field with the closed-form solution, vectorised."""
    s = np.array(spins, dtype=float)
    h = np.asarray(fields, dtype=float)
    b = np.linalg.norm(h, axis=1)
    out = s.copy()
    m = b > 0
    bh = h[m] / b[m, None]
    c = np.sum(s[m] * bh, axis=1)
    phi = fac * b[m]
    x = damping * phi
    theta0 = np.arccos(np.clip(c, -1, 1))
    # cos θ' = tanh(x + artanh c) via tan(θ'/2) = tan(θ0/2) exp(−x)
    half = np.arctan(np.tan(theta0 / 2) * np.exp(-x))
    theta = 2 * half
    perp = s[m] - c[:, None] * bh
    pn = np.linalg.norm(perp, axis=1)
    e1 = np.where(pn[:, None] > 0, perp / np.where(pn > 0, pn, 1)[:, None], 0.0)
    e2 = np.cross(bh, e1)
    out[m] = (np.cos(theta)[:, None] * bh
              + np.sin(theta)[:, None] * (np.cos(phi)[:, None] * e1 + np.sin(phi)[:, None] * e2))
    return out
