"""The L-BFGS two-loop recursion, shared by the minimiser and the nudged elastic band.

Nocedal & Wright, *Numerical Optimization*, 2nd ed. (2006), Algorithm 7.4, with the initial
inverse Hessian γ·1, γ = sᵀy / yᵀy of the newest pair (their eq. 7.20).

Dot products of the long flat vectors go through :func:`dot`, a serial numba loop: NumPy's ``@``
calls a multithreaded BLAS for vectors longer than ~10⁴, which on a loaded machine costs
milliseconds per call instead of microseconds.
"""

from __future__ import annotations

import numba


@numba.njit(cache=True, fastmath=True)
def dot(a, b):
    """Σ a_k b_k of two 1-D float64 arrays (serial; summed in SIMD lanes, so the last bits
    differ from NumPy's order)."""
    s = 0.0
    for k in range(a.shape[0]):
        s += a[k] * b[k]
    return s


@numba.njit(cache=True, fastmath=True)
def _axpy(alpha, x, y):
    """y ← y + alpha x, in place."""
    for k in range(y.shape[0]):
        y[k] += alpha * x[k]


def two_loop(g, s_hist, y_hist):
    """Approximate inverse Hessian times ``g`` from the step/gradient-change pairs
    ``s_hist``, ``y_hist`` (lists of flat float64 arrays, oldest first; every pair with sᵀy > 0).
    With no pairs it returns a copy of ``g``. Returns a new array of g's shape and units
    (step units when g is a gradient)."""
    q = g.copy()
    alphas = []
    for s, y in zip(reversed(s_hist), reversed(y_hist)):
        rho = 1.0 / dot(y, s)
        a = rho * dot(s, q)
        alphas.append((a, rho, s, y))
        _axpy(-a, y, q)
    if s_hist:
        s, y = s_hist[-1], y_hist[-1]
        q *= dot(s, y) / dot(y, y)
    for a, rho, s, y in reversed(alphas):
        b = rho * dot(y, q)
        _axpy(a - b, s, q)
    return q
