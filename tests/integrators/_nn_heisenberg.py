"""A minimal nearest-neighbour Heisenberg model used by the integrator tests.

E = −J Σ_{pairs once, r < cutoff} s_i·s_j (unit spins, J in eV), with a numba kernel for the
magnetic forces h_i = (1/|m_i|)(1 − s_i s_iᵀ) J Σ_j s_j (eV/μB).
"""

import numba
import numpy as np

import spinlat as sl
from spinlat.potentials.base import Evaluation, Potential


@numba.njit(cache=True)
def _fields(atoms, spins, moments, offsets, nbr, dist2, cut2, J, h, energies):
    for a in range(atoms.shape[0]):
        i = atoms[a]
        if moments[i] <= 0:
            continue
        gx = gy = gz = 0.0
        for p in range(offsets[i], offsets[i + 1]):
            j = nbr[p]
            if dist2[p] < cut2 and moments[j] > 0:
                gx += J * spins[j, 0]
                gy += J * spins[j, 1]
                gz += J * spins[j, 2]
        sx, sy, sz = spins[i, 0], spins[i, 1], spins[i, 2]
        energies[a] = -0.5 * (gx * sx + gy * sy + gz * sz)
        d = gx * sx + gy * sy + gz * sz
        inv = 1.0 / moments[i]
        h[a, 0] = (gx - d * sx) * inv
        h[a, 1] = (gy - d * sy) * inv
        h[a, 2] = (gz - d * sz) * inv


class NNHeisenberg(Potential):
    def __init__(self, J, cutoff):
        self.J = float(J)
        self.cutoff = float(cutoff)
        self.skin = 0.1
        self._d2 = None

    def _dist2(self, state, nl):
        key = (id(nl), nl.n_builds)
        if self._d2 is None or self._d2[0] != key:
            v = nl.vectors(state.positions)
            self._d2 = (key, np.ascontiguousarray(np.sum(v * v, axis=1)))
        return self._d2[1]

    def _run(self, state, nl, atoms):
        h = np.zeros((len(atoms), 3))
        e = np.zeros(len(atoms))
        _fields(atoms, state.spins, state.moments, nl.offsets, nl.j, self._dist2(state, nl), self.cutoff ** 2,
                self.J, h, e)
        return h, e

    def _evaluate(self, state, neighbors, forces, magnetic_forces, stress):
        if neighbors is None:
            neighbors = self.neighbor_list(state)
        n = len(state)
        h, e = self._run(state, neighbors, np.arange(n, dtype=np.int64))
        return Evaluation(float(e.sum()), np.zeros((n, 3)) if forces else None, h if magnetic_forces else None,
                          np.zeros(6) if stress else None, e)

    def local_fields(self, state, neighbors, atoms):
        if neighbors is None:
            neighbors = self.neighbor_list(state)
        return self._run(state, neighbors, np.asarray(atoms, dtype=np.int64))[0]

    def __repr__(self):
        return f"NNHeisenberg(J={self.J}, cutoff={self.cutoff})"


def simple_cubic(L, a=2.5, moment=1.0, seed=0, random_spins=True):
    rng = np.random.default_rng(seed)
    st = sl.State([[0, 0, 0]], [26], cell=np.eye(3) * a, pbc=True, moments=[moment]).repeat((L, L, L))
    if random_spins:
        st = st.copy(spins=rng.normal(size=(len(st), 3)))
    return st
