"""The potential interface: one protocol, results in one place.

Every energy model derives from :class:`Potential` and implements ``_evaluate``; users call
``compute(state, forces=True, magnetic_forces=True, stress=False)`` and get an
:class:`Evaluation`. Potentials add: ``EAM(...) + BetheSlaterExchange(...) + Zeeman(...)`` is a
:class:`SumPotential` that builds one neighbour list for all its terms.

Conventions (see DESIGN.md):

- energy in eV, forces −∂E/∂r in eV/Å;
- magnetic forces h_i = −∂E/∂m_i in eV/μB, with m_i = moments_i · spins_i. A term written on
  unit spins, E(s), has h_i = −(1/|m_i|) (1 − s_i s_iᵀ) ∂E/∂s_i: no longitudinal part. A term
  depending on magnitudes adds −s_i ∂E/∂|m_i|. Non-magnetic atoms (moment 0) get h = 0;
- stress (6,) Voigt order xx, yy, zz, yz, xz, xy, eV/Å³, = (1/V) ∂E/∂ε as ASE's ``get_stress``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError, UnknownElementError
from ..neighbors import NeighborList


@dataclass
class Evaluation:
    """Result of one potential evaluation. Arrays not asked for are ``None``.

    Attributes: ``energy`` (eV), ``forces`` (N,3 eV/Å), ``magnetic_forces`` (N,3 eV/μB),
    ``stress`` (6, eV/Å³, Voigt, ASE sign), ``energies`` (N, eV per atom, summing to energy).
    """

    energy: float
    forces: np.ndarray | None = None
    magnetic_forces: np.ndarray | None = None
    stress: np.ndarray | None = None
    energies: np.ndarray | None = None
    extra: dict = field(default_factory=dict)

    def __add__(self, other: "Evaluation") -> "Evaluation":
        def add(a, b):
            if a is None or b is None:
                return None if (a is None and b is None) else (a if b is None else b)
            return a + b

        return Evaluation(self.energy + other.energy, add(self.forces, other.forces),
                          add(self.magnetic_forces, other.magnetic_forces), add(self.stress, other.stress),
                          add(self.energies, other.energies))

    @property
    def torques(self) -> np.ndarray:
        """Not available without spins; see :func:`spin_torques`."""
        raise AttributeError("use spinlat.potentials.spin_torques(state, evaluation)")


def spin_torques(state, ev: Evaluation) -> np.ndarray:
    """Spin torques s_i × ∂E/∂s_i = −|m_i| s_i × h_i, eV, (N, 3)."""
    return -state.moments[:, None] * np.cross(state.spins, ev.magnetic_forces)


def virial_to_voigt(virial: np.ndarray, volume: float) -> np.ndarray:
    """3×3 virial Σ (∂E/∂r_ij) ⊗ r_ij (eV) → Voigt stress (eV/Å³, ASE sign)."""
    s = 0.5 * (virial + virial.T) / volume
    return np.array([s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]])


def voigt_to_matrix(voigt: np.ndarray) -> np.ndarray:
    """Voigt (6,) → symmetric 3×3."""
    xx, yy, zz, yz, xz, xy = voigt
    return np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])


def magnetic_forces_from_gradients(state, grad_s=None, grad_mu=None) -> np.ndarray:
    """h_i = −∂E/∂m_i (eV/μB) from ∂E/∂s_i (eV, on unit spins) and ∂E/∂|m_i| (eV/μB).

    Non-magnetic atoms get zero."""
    n = len(state)
    h = np.zeros((n, 3))
    mag = state.moments > 0
    s = state.spins
    if grad_s is not None:
        g = grad_s - np.sum(grad_s * s, axis=1)[:, None] * s
        h[mag] -= g[mag] / state.moments[mag, None]
    if grad_mu is not None:
        h[mag] -= grad_mu[mag, None] * s[mag]
    return h


class Potential:
    """Base class of every spinlat energy model.

    Subclasses set ``cutoff`` (Å; 0 for terms that need no distance neighbour list) and
    implement ``_evaluate(state, neighbors, forces, magnetic_forces, stress)``, where
    ``neighbors`` is a :class:`~spinlat.neighbors.NeighborList` built with a cutoff at least
    ``cutoff`` (kernels must test distances against their own cutoff), or ``None``.
    """

    #: interaction range, Å (0: no neighbour list needed)
    cutoff: float = 0.0
    #: neighbour-list skin, Å
    skin: float = 0.3
    #: the energy depends on moment magnitudes, not only on spin directions
    depends_on_magnitudes: bool = False
    #: the potential gives magnetic forces (effective fields)
    provides_magnetic_forces: bool = True
    #: elements (atomic numbers) the potential knows; None = any
    elements: tuple[int, ...] | None = None
    #: the energy depends on spins or moments (False for purely lattice terms such as EAM:
    #: spin integrators skip them and leave them out of the spin-graph colouring)
    magnetic: bool = True
    #: ``local_fields`` is cheap, touching only the listed atoms and their neighbours (False for
    #: models that give all magnetic forces at once, such as mMACE)
    local: bool = True
    #: the energy is unchanged when all spins rotate together with the lattice fixed (no
    #: spin-orbit coupling); used to merge equivalent minima in ground-state searches
    spin_rotation_invariant: bool = False

    def compute(self, state, forces: bool = True, magnetic_forces: bool = True, stress: bool = False) -> Evaluation:
        """Energy (eV), forces (eV/Å), magnetic forces −∂E/∂m (eV/μB), stress (eV/Å³, Voigt)
        and per-atom energies (eV) of ``state``."""
        if stress and not state.pbc.all():
            raise InputError("stress needs a cell periodic in all three directions")
        self.check_state(state)
        nl = self.neighbor_list(state) if self.cutoff > 0 else None
        return self._evaluate(state, nl, forces, magnetic_forces, stress)

    def neighbor_list(self, state) -> NeighborList:
        """The cached neighbour list of this potential, updated for ``state``."""
        nl = getattr(self, "_nl", None)
        if nl is None or nl.cutoff < self.cutoff:
            nl = self._nl = NeighborList(self.cutoff, self.skin)
        nl.update(state)
        return nl

    def check_state(self, state) -> None:
        """Raise if ``state`` holds elements this potential does not know."""
        if self.elements is not None:
            known = np.asarray(self.elements)
            bad = ~np.isin(state.numbers, known)
            if np.any(bad):
                from ase.data import chemical_symbols

                z = int(state.numbers[bad][0])
                names = [chemical_symbols[k] for k in known]
                raise UnknownElementError(
                    f"{type(self).__name__} does not know element {chemical_symbols[z]} (Z={z}); it knows {names}")

    def _evaluate(self, state, neighbors, forces, magnetic_forces, stress) -> Evaluation:  # pragma: no cover
        raise NotImplementedError

    def local_fields(self, state, neighbors, atoms: np.ndarray) -> np.ndarray:
        """Magnetic forces h = −∂E/∂m (eV/μB) of the atoms ``atoms`` only, (len(atoms), 3).

        Used by integrators that update spins one colour class at a time. Local analytic terms
        override this with a kernel that touches only those atoms and their neighbours; the
        default evaluates everything and picks the rows."""
        ev = self._evaluate(state, neighbors, False, True, False)
        return ev.magnetic_forces[atoms]

    def rotation_fields(self, state, neighbors, atoms: np.ndarray) -> np.ndarray:
        """Fields (eV/μB, (len(atoms), 3)) about which spin integrators rotate the spins ``atoms``.

        Same as :meth:`local_fields` up to a component along each s_i, which changes no
        torque but decides which axis a finite rotation turns about. A term whose energy is
        linear in s_i (pair exchange, Zeeman) should return its unprojected field
        −(1/|m_i|) ∂E/∂s_i: the rotation about it is then the exact motion of s_i and
        conserves that energy exactly. The default takes :meth:`local_fields` and, for terms
        that depend on moment magnitudes, drops the longitudinal part (it does not turn spins)."""
        h = self.local_fields(state, neighbors, atoms)
        if self.depends_on_magnitudes:
            s = state.spins[atoms]
            h = h - np.sum(h * s, axis=1)[:, None] * s
        return h

    def _zero(self, state, forces, magnetic_forces, stress) -> Evaluation:
        n = len(state)
        return Evaluation(0.0, np.zeros((n, 3)) if forces else None,
                          np.zeros((n, 3)) if magnetic_forces else None,
                          np.zeros(6) if stress else None, np.zeros(n))

    def __add__(self, other: "Potential") -> "SumPotential":
        if not isinstance(other, Potential):
            return NotImplemented
        return SumPotential([*_terms(self), *_terms(other)])

    @property
    def terms(self) -> list["Potential"]:
        return [self]

    def describe(self) -> str:
        """One-line description used in trajectory metadata."""
        return repr(self)


def _terms(p):
    return p.terms


class SumPotential(Potential):
    """Sum of potentials sharing one neighbour list (built with the largest cutoff)."""

    def __init__(self, terms):
        self._terms = list(terms)
        if not self._terms:
            raise InputError("a sum of potentials needs at least one term")
        self.cutoff = max(t.cutoff for t in self._terms)
        self.skin = min(t.skin for t in self._terms)
        self.depends_on_magnitudes = any(t.depends_on_magnitudes for t in self._terms)
        self.provides_magnetic_forces = all(t.provides_magnetic_forces for t in self._terms)
        self.magnetic = any(t.magnetic for t in self._terms)
        self.local = all(t.local for t in self._terms if t.magnetic)
        self.spin_rotation_invariant = all(t.spin_rotation_invariant for t in self._terms)

    @property
    def terms(self):
        return list(self._terms)

    def check_state(self, state):
        for t in self._terms:
            t.check_state(state)

    def _evaluate(self, state, neighbors, forces, magnetic_forces, stress):
        total = None
        for t in self._terms:
            ev = t._evaluate(state, neighbors if t.cutoff > 0 else None, forces, magnetic_forces, stress)
            total = ev if total is None else total + ev
        return total

    def local_fields(self, state, neighbors, atoms):
        h = np.zeros((len(atoms), 3))
        for t in self._terms:
            h += t.local_fields(state, neighbors if t.cutoff > 0 else None, atoms)
        return h

    def rotation_fields(self, state, neighbors, atoms):
        h = None
        for t in self._terms:
            if t.magnetic:
                ht = t.rotation_fields(state, neighbors if t.cutoff > 0 else None, atoms)
                h = ht if h is None else h + ht
        return np.zeros((len(atoms), 3)) if h is None else h

    def __repr__(self):
        return " + ".join(repr(t) for t in self._terms)
