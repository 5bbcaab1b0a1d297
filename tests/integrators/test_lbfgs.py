"""The shared L-BFGS two-loop recursion against a NumPy reference and its defining property."""

import numpy as np

from spinlat.integrators.lbfgs import dot, two_loop


def _reference(g, s_hist, y_hist):
    """Nocedal & Wright Algorithm 7.4 in NumPy."""
    q, alphas = g.copy(), []
    for s, y in zip(reversed(s_hist), reversed(y_hist)):
        rho = 1 / (y @ s)
        a = rho * (s @ q)
        alphas.append((a, rho, s, y))
        q -= a * y
    q *= (s_hist[-1] @ y_hist[-1]) / (y_hist[-1] @ y_hist[-1])
    for a, rho, s, y in reversed(alphas):
        q += (a - rho * (y @ q)) * s
    return q


def test_two_loop_matches_reference_and_inverts_a_quadratic():
    rng = np.random.default_rng(0)
    n = 40
    A = rng.normal(size=(n, n))
    H = A @ A.T + n * np.eye(n)  # SPD Hessian of a quadratic: y = H s
    S = [rng.normal(size=n) for _ in range(6)]
    Y = [H @ s for s in S]
    g = rng.normal(size=n)
    assert np.allclose(two_loop(g, S, Y), _reference(g, S, Y), rtol=1e-12, atol=1e-14)
    # the secant condition: the inverse-Hessian model maps the newest y back to its s
    assert np.allclose(two_loop(Y[-1], S, Y), S[-1], rtol=1e-10)
    assert np.array_equal(two_loop(g, [], []), g)
    assert abs(dot(g, g) - g @ g) <= 1e-12 * (g @ g)
