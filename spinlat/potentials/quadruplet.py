"""Four-spin (quadruplet) interaction: E = −Σ_q K_q (s_i·s_j)(s_k·s_l) (eV), each quadruplet once.

Spirit's ``n_interaction_quadruplets`` / ``interaction_quadruplets_file`` term (``core/docs/
Input.md``: E_Quad = −Σ_ijkl K_ijkl (n_i·n_j)(n_k·n_l), meV per unique quadruplet, read by
:func:`spinlat.io.read_spirit_cfg`). The quadruplets name atoms of one system by index (Spirit's
Hamiltonians are those of the whole simulated system), so the term applies to states of that
system: the same number of atoms with the same atomic numbers (ShapeError otherwise).
"""

from __future__ import annotations

import numpy as np

from .. import validation
from ..errors import ShapeError
from .base import Evaluation, Potential, magnetic_forces_from_gradients


class Quadruplet(Potential):
    """E = −Σ_q K_q (s_i·s_j)(s_k·s_l) (eV; module docstring).

    Parameters
    ----------
    numbers : (N,) atomic numbers of the system the indices refer to.
    quads : (Q, 4) atom indices (i, j, k, l) of each quadruplet.
    K : (Q,) coupling of each quadruplet, eV.

    Magnetic forces h = −∂E/∂m (eV/μB), transverse (E depends on directions only); quadruplets
    with a non-magnetic atom (moment 0) give nothing; no lattice forces or stress.
    """

    cutoff = 0.0
    spin_rotation_invariant = True
    _PARAMETERS = ("numbers", "quads", "K")

    def __init__(self, numbers, quads, K):
        self.numbers = np.asarray(numbers, dtype=np.int64).ravel()
        q = np.asarray(quads, dtype=np.int64).reshape(-1, 4)
        K = validation.real_array(K, "quadruplet K").ravel()
        if len(K) != len(q):
            raise ShapeError(f"quadruplet K: one value per quadruplet ({len(q)}), got {len(K)}")
        if len(q) and (q.min() < 0 or q.max() >= len(self.numbers)):
            raise ShapeError(f"quadruplet atom indices must lie in 0..{len(self.numbers) - 1}")
        self.quads, self.K = q, K

    def check_state(self, state):
        super().check_state(state)
        if len(state) != len(self.numbers) or not np.array_equal(state.numbers, self.numbers):
            raise ShapeError(f"Quadruplet is defined on a system of {len(self.numbers)} atoms (its atom indices); "
                             f"the state has {len(state)} atoms or other atomic numbers")

    def _evaluate(self, state, neighbors, forces, magnetic_forces, stress) -> Evaluation:
        self.check_state(state)
        n = len(state)
        s = state.spins
        mag = state.moments > 0
        on = np.all(mag[self.quads], axis=1)  # quadruplets of four magnetic atoms
        q, K = self.quads[on], self.K[on]
        i, j, k, l = q.T
        a = np.einsum("pa,pa->p", s[i], s[j])
        b = np.einsum("pa,pa->p", s[k], s[l])
        e = -K * a * b
        energies = np.zeros(n)
        for idx in (i, j, k, l):
            np.add.at(energies, idx, 0.25 * e)
        h = None
        if magnetic_forces:
            g = np.zeros((n, 3))  # −∂E/∂s
            for idx, other, w in ((i, j, K * b), (j, i, K * b), (k, l, K * a), (l, k, K * a)):
                np.add.at(g, idx, w[:, None] * s[other])
            h = magnetic_forces_from_gradients(state, -g)
        return Evaluation(float(energies.sum()), np.zeros((n, 3)) if forces else None, h,
                          np.zeros(6) if stress else None, energies)

    def spin_curvatures(self, state, neighbors, atoms):
        """Not known (an atom may sit in both pairs of a quadruplet): None."""
        return None

    def __repr__(self):
        return f"Quadruplet(n_quadruplets={len(self.quads)})"

    def digest_items(self) -> tuple:
        """Atomic numbers, quadruplets and couplings, for :meth:`parameter_digest`."""
        return (self.numbers, self.quads, self.K)


__all__ = ["Quadruplet"]
