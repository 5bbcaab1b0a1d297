"""Pair tensors of bilinear spin Hamiltonians: the Dzyaloshinskii-Moriya vector and its
antisymmetric 3×3 matrix.

A pair term −s_iᵀ J_ij s_j holds the isotropic exchange (J·1), the DMI as the antisymmetric part
and the symmetric anisotropic exchange. The DMI vector D (eV) enters as D·(s_i × s_j) =
s_iᵀ [D] s_j with [D] the matrix below (Moriya, Phys. Rev. 120, 91 (1960); TB2J writes the same
convention). Shared by :class:`~spinlat.potentials.Heisenberg` and the TB2J format
(:mod:`spinlat.formats.tb2j`, :mod:`spinlat.io.tb2j`).
"""

from __future__ import annotations

import numpy as np

__all__ = ["dmi_matrix", "dmi_vector"]


def dmi_matrix(d) -> np.ndarray:
    """3×3 antisymmetric matrix [D] with s_iᵀ [D] s_j = D·(s_i × s_j); ``d`` in eV, (3,) or (P, 3)."""
    d = np.asarray(d, dtype=np.float64)
    out = np.zeros(d.shape[:-1] + (3, 3))
    out[..., 0, 1], out[..., 0, 2] = d[..., 2], -d[..., 1]
    out[..., 1, 0], out[..., 1, 2] = -d[..., 2], d[..., 0]
    out[..., 2, 0], out[..., 2, 1] = d[..., 1], -d[..., 0]
    return out


def dmi_vector(tensor) -> np.ndarray:
    """DMI vector D (eV) of the antisymmetric part of a pair tensor (inverse of :func:`dmi_matrix`)."""
    a = 0.5 * (np.asarray(tensor) - np.swapaxes(tensor, -1, -2))
    return np.stack([a[..., 1, 2], -a[..., 0, 2], a[..., 0, 1]], axis=-1)
