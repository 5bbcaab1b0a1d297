"""The L-BFGS two-loop recursion, shared by the minimiser and the nudged elastic band.

Nocedal & Wright, *Numerical Optimization*, 2nd ed. (2006), Algorithm 7.4, with the initial
inverse Hessian γ·1, γ = sᵀy / yᵀy of the newest pair (their eq. 7.20).

The recursion runs in one numba kernel: NumPy's ``@`` on long vectors calls a multithreaded BLAS,
which on a loaded machine costs milliseconds per dot product instead of microseconds.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, fastmath=True)
def dot(a, b):
    """Σ a_k b_k of two 1-D float64 arrays (serial; summed in SIMD lanes, so the last bits
    differ from NumPy's order)."""
    s = 0.0
    for k in range(a.shape[0]):
        s += a[k] * b[k]
    return s


@numba.njit(cache=True, fastmath=True)
def two_loop_rows(g, S, Y, order, rho, gamma):
    """:func:`two_loop` on pairs stored as rows, for callers that keep their history in a ring
    buffer: S, Y (capacity, n) arrays, ``order`` the row indices of the stored pairs, oldest first
    (at least one), ``rho[row]`` = 1/(yᵀs) of each row and ``gamma`` = sᵀy/yᵀy of the newest pair.
    Each vector update is fused with the next dot product: 2m + 2 passes over the history."""
    n = g.shape[0]
    m = order.shape[0]
    q = g.copy()
    alpha = np.empty(m)
    a = rho[order[m - 1]] * dot(S[order[m - 1]], q)
    for jj in range(m - 1, -1, -1):  # newest → oldest
        j = order[jj]
        alpha[jj] = a
        if jj > 0:
            jn, acc = order[jj - 1], 0.0
            for k in range(n):
                q[k] -= a * Y[j, k]
                acc += S[jn, k] * q[k]
            a = rho[jn] * acc
        else:
            for k in range(n):
                q[k] -= a * Y[j, k]
    j, acc = order[0], 0.0
    for k in range(n):  # initial inverse Hessian γ·1
        q[k] *= gamma
        acc += Y[j, k] * q[k]
    b = rho[j] * acc
    for jj in range(m):  # oldest → newest
        j = order[jj]
        c = alpha[jj] - b
        if jj < m - 1:
            jn, acc = order[jj + 1], 0.0
            for k in range(n):
                q[k] += c * S[j, k]
                acc += Y[jn, k] * q[k]
            b = rho[jn] * acc
        else:
            for k in range(n):
                q[k] += c * S[j, k]
    return q


def two_loop(g, s_hist, y_hist):
    """Approximate inverse Hessian times ``g`` from the step/gradient-change pairs
    ``s_hist``, ``y_hist`` (lists of flat float64 arrays, oldest first; every pair with sᵀy > 0).
    With no pairs it returns a copy of ``g``. Returns a new array of g's shape and units
    (step units when g is a gradient)."""
    if not s_hist:
        return np.array(g, dtype=np.float64)
    S, Y = np.array(s_hist, dtype=np.float64), np.array(y_hist, dtype=np.float64)
    sy = np.einsum("ij,ij->i", S, Y)
    return two_loop_rows(np.ascontiguousarray(g, dtype=np.float64), S, Y, np.arange(len(S)), 1.0 / sy,
                         sy[-1] / (Y[-1] @ Y[-1]))
