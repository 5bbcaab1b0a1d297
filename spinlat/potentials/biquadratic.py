"""Biquadratic exchange: E = −Σ_<ij> B_ij (s_i·s_j)² (eV), each pair once.

A pair term quadratic in each spin (so not a :class:`~spinlat.potentials.couplings.
LinearSpinCouplings` term: Monte Carlo's local energy changes refuse it). Its pairs are given on a
template cell, as for :class:`~spinlat.potentials.Heisenberg`, and follow the atoms of any
supercell of that cell the same way (the template's pair table is expanded by a Heisenberg whose
tensors are B·1). B > 0 favours collinear spins (parallel or antiparallel), B < 0 perpendicular
ones. The peers' conventions the readers convert: UppASD ``bq`` (E = −Σ_i Σ_j∈N(i) J_bq
(e_i·e_j)², mRy, every bond listed from both ends: :func:`spinlat.io.read_uppasd`), VAMPIRE's
biquadratic UCF section (E = −½ Σ_i Σ_j B_ij (S_i·S_j)², J: :func:`spinlat.io.read_vampire`).
"""

from __future__ import annotations

import numpy as np

from .. import validation
from ..errors import ShapeError
from .base import Evaluation, Potential, magnetic_forces_from_gradients


class Biquadratic(Potential):
    """Biquadratic exchange E = −Σ_<ij> B_ij (s_i·s_j)² (eV; module docstring).

    Parameters
    ----------
    cell, positions, numbers, pbc : the template cell (Å, (3, 3) rows), its sites (Å, (N, 3))
        and atomic numbers (N,), as :class:`~spinlat.potentials.Heisenberg` takes them.
    i, j : (P,) site indices of each pair; R : (P, 3) integer cell offset of j's image.
    B : (P,) coupling of each pair, eV (a pair given twice, or reversed, adds up).

    Magnetic forces h_i = −∂E/∂m_i = (2/|m_i|) Σ_j B_ij (s_i·s_j) (s_j − (s_i·s_j) s_i) (eV/μB),
    transverse; no lattice forces or stress (fixed pairs). Pairs touching a non-magnetic atom
    (moment 0) give nothing. Raises ShapeError for mismatched arrays and, at compute time, what
    Heisenberg raises for a state that is not a supercell of the template.
    """

    cutoff = 0.0
    spin_rotation_invariant = True

    def __init__(self, cell, positions, numbers, i, j, R, B, pbc=True):
        from .heisenberg import Heisenberg

        B = validation.real_array(B, "biquadratic B")
        if B.ndim != 1 or len(B) != len(np.atleast_1d(i)):
            raise ShapeError(f"biquadratic B: expected one value per pair ({len(np.atleast_1d(i))}), got shape "
                             f"{B.shape}")
        self._pairs = Heisenberg(cell, positions, numbers, i, j, R, B[:, None, None] * np.eye(3), pbc=pbc)

    def check_state(self, state):
        super().check_state(state)
        self._pairs.check_state(state)

    def pair_table(self, state):
        """(i, j, B) of the pairs on ``state`` (each once, eV), only those joining two magnetic atoms."""
        i, j, T = self._pairs.pairs(state)
        mag = state.moments > 0
        keep = mag[i] & mag[j]
        return i[keep], j[keep], T[keep, 0, 0]

    def _evaluate(self, state, neighbors, forces, magnetic_forces, stress) -> Evaluation:
        n = len(state)
        i, j, B = self.pair_table(state)
        s = state.spins
        c = np.einsum("pa,pa->p", s[i], s[j])
        e = -B * c * c
        energies = np.zeros(n)
        np.add.at(energies, i, 0.5 * e)
        np.add.at(energies, j, 0.5 * e)
        h = None
        if magnetic_forces:
            g = np.zeros((n, 3))  # −∂E/∂s
            np.add.at(g, i, (2.0 * B * c)[:, None] * s[j])
            np.add.at(g, j, (2.0 * B * c)[:, None] * s[i])
            h = magnetic_forces_from_gradients(state, -g)
        return Evaluation(float(energies.sum()), np.zeros((n, 3)) if forces else None, h,
                          np.zeros(6) if stress else None, energies)

    def spin_curvatures(self, state, neighbors, atoms) -> np.ndarray:
        """c_i = tr H_i − s_iᵀ H_i s_i (eV) with H_i = ∂²E/∂s_i² = −2 Σ_j B_ij s_j s_jᵀ:
        c_i = −2 Σ_j B_ij (1 − (s_i·s_j)²), of ``atoms`` (:meth:`Potential.spin_curvatures`)."""
        atoms = validation.atom_indices(atoms, "atoms", len(state))
        i, j, B = self.pair_table(state)
        s = state.spins
        w = -2.0 * B * (1.0 - np.einsum("pa,pa->p", s[i], s[j]) ** 2)
        c = np.zeros(len(state))
        np.add.at(c, i, w)
        np.add.at(c, j, w)
        return c[atoms]

    def __repr__(self):
        return f"Biquadratic(n_pairs={self._pairs.n_pairs})"

    def digest_items(self) -> tuple:
        """The template and its pair set, for :meth:`parameter_digest`."""
        return self._pairs.digest_items()


__all__ = ["Biquadratic"]
