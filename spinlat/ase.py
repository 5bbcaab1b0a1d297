"""ASE interface: any spinlat potential as an ``ase`` calculator."""

from __future__ import annotations

import numpy as np
from ase.calculators.calculator import Calculator, all_changes

from . import validation
from .state import State, ase_magnetic_moments, ase_spin_directions
from .keywords import parameters_of, refuse_other_names


@refuse_other_names(extra=parameters_of("ase.calculators.calculator:Calculator.__init__"))
class SpinLatticeCalculator(Calculator):
    """ASE calculator evaluating a spinlat :class:`~spinlat.potentials.base.Potential`.

    The magnetic moments are inputs, read as :meth:`spinlat.State.from_ase` reads them (the
    atoms' initial magnetic moments, (N, 3) non-collinear or (N,) collinear along z, μB).
    Results: ``energy``/``free_energy`` (eV), ``energies`` (N, eV), ``forces`` (N,3 eV/Å),
    ``stress`` (Voigt, eV/Å³, ASE sign; periodic cells only), ``magnetic_forces`` (N,3 eV/μB,
    h = −∂E/∂m), and the moments as ASE's calculators report them: ``magmoms`` — (N, 3) for
    non-collinear input, (N,) signed z components for collinear input — and ``magmom``, their
    sum ((3,) vector or a number, as ASE's non-collinear and collinear VASP results). So
    ``atoms.get_magnetic_moments()`` and ``atoms.get_magnetic_moment()`` work. Changing the
    magnetic moments triggers a new evaluation: ASE tracks ``initial_magmoms``, and this
    calculator also the other per-atom arrays it reads, ``magmoms`` and ``spins``
    (:meth:`check_state`).

    Constraints on the atoms (``FixAtoms``, ...) are left to ASE, as with every ASE calculator:
    the results are the unconstrained ones and ``atoms.get_forces()`` applies the constraints.
    """

    implemented_properties = ["energy", "energies", "free_energy", "forces", "stress", "magnetic_forces",
                              "magmoms", "magmom"]

    def __init__(self, potential, **kwargs):
        self._potential = None
        super().__init__(**kwargs)
        self.potential = potential

    @property
    def potential(self):
        """The spinlat Potential evaluated. Assigning another (or ``calc.set(potential=...)``)
        resets the results, so the next property asked for is computed with it (ASE keeps results
        until the atoms change: the first potential's energy came back before). InputError for
        anything but a :class:`~spinlat.potentials.base.Potential`."""
        return self._potential

    @potential.setter
    def potential(self, potential):
        from .potentials.base import Potential

        validation.instance(potential, "SpinLatticeCalculator: potential", Potential,
                            "a spinlat Potential (spinlat.potentials)")
        if potential is not self._potential:
            self._potential = potential
            self.reset()

    @refuse_other_names(extra=("potential",))
    def set(self, **kwargs):
        """ASE's ``set``; ``potential=`` replaces the potential (results reset, see :attr:`potential`),
        the only parameter this calculator has (another name: :class:`~spinlat.errors.KeywordError`
        naming it, where ASE's base class would store it unused)."""
        if "potential" in kwargs:
            self.potential = kwargs.pop("potential")
        return super().set(**kwargs)

    #: per-atom arrays read as inputs beyond those ASE tracks (all_changes): see State.from_ase
    input_arrays = ("magmoms", "spins")

    def check_state(self, atoms, tol=1e-15):
        """ASE's changes since the last calculation, plus changes of the ``magmoms`` and
        ``spins`` arrays (moments and spin directions that ASE's own check does not see)."""
        changes = super().check_state(atoms, tol=tol)
        if self.atoms is None:
            return changes
        for name in self.input_arrays:
            old, new = self.atoms.arrays.get(name), atoms.arrays.get(name)
            if (old is None) != (new is None) or (old is not None and (
                    old.shape != new.shape or not np.allclose(old, new, rtol=0, atol=tol))):
                changes.append(name)
        return changes

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        # constraints are ASE's to apply (to the forces, in its dynamics and optimisers)
        # the moments are inputs: the initial ones (a copy of the atoms carries no results)
        # (tags and charges stay on the atoms: nothing is dropped from the user's view)
        state = State.from_ase(self.atoms, validate=False, constraints="ignore", prefer_moments="initial",
                               warn_dropped=False, initial_fractions="keep")
        stress = "stress" in properties
        ev = self.potential.compute(state, forces=True, magnetic_forces=True, stress=stress)
        energy = float(ev.energy)
        # collinear: (N,) moments along z; with a 'spins' array (N, 3) they point along it
        collinear = ase_magnetic_moments(self.atoms, "initial").ndim == 1 and ase_spin_directions(self.atoms) is None
        magmoms = state.moments * state.spins[:, 2] if collinear else state.magnetic_moments
        self.results = {
            "energy": energy,
            "free_energy": energy,
            "forces": np.array(ev.forces),
            "magnetic_forces": np.array(ev.magnetic_forces) if ev.magnetic_forces is not None
            else np.zeros((len(state), 3)),
            "magmoms": np.array(magmoms),
            "magmom": float(magmoms.sum()) if collinear else magmoms.sum(axis=0),
        }
        if ev.energies is not None:
            self.results["energies"] = np.array(ev.energies)
        if stress:
            self.results["stress"] = np.array(ev.stress)

    def get_magnetic_forces(self, atoms=None) -> np.ndarray:
        """Magnetic forces −∂E/∂m, (N, 3) eV/μB."""
        return self.get_property("magnetic_forces", atoms)
