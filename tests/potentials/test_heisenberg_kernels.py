"""Heisenberg's numba kernels against NumPy references."""

import numpy as np

from spinlat.potentials.heisenberg import _fields_from_gradient


def test_fields_kernel_matches_numpy_projection():
    # h = −(1/|m|)(1 − ssᵀ) g, zero on non-magnetic atoms, bit for bit the NumPy expression
    rng = np.random.default_rng(0)
    s = rng.normal(size=(50, 3))
    s /= np.linalg.norm(s, axis=1)[:, None]
    g = rng.normal(size=(50, 3))
    m = np.abs(rng.normal(size=50)) + 0.5
    m[::7] = 0.0
    ref = np.zeros_like(g)
    proj = g - np.sum(g * s, axis=1)[:, None] * s
    ref[m > 0] = -proj[m > 0] / m[m > 0, None]
    assert np.array_equal(_fields_from_gradient(s, m, g), ref)
