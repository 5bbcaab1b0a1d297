"""ASE interface: any spinlat potential as an ``ase`` calculator."""

from __future__ import annotations

import numpy as np
from ase.calculators.calculator import Calculator, all_changes

from .state import State


class SpinLatticeCalculator(Calculator):
    """ASE calculator evaluating a spinlat :class:`~spinlat.potentials.base.Potential`.

    Magnetic moments are read from the atoms' initial magnetic moments: (N, 3) non-collinear or
    (N,) collinear along z, in μB. Results: ``energy``/``free_energy`` (eV), ``energies``
    (N, eV), ``forces`` (N,3 eV/Å), ``stress`` (Voigt, eV/Å³, ASE sign; periodic cells only)
    and ``magnetic_forces`` (N,3 eV/μB, h = −∂E/∂m). Changing the magnetic moments triggers a
    new evaluation, as ASE tracks ``initial_magmoms``.
    """

    implemented_properties = ["energy", "energies", "free_energy", "forces", "stress", "magnetic_forces"]

    def __init__(self, potential, **kwargs):
        super().__init__(**kwargs)
        self.potential = potential

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        state = State.from_ase(self.atoms, validate=False)
        stress = "stress" in properties
        ev = self.potential.compute(state, forces=True, magnetic_forces=True, stress=stress)
        energy = float(ev.energy)
        self.results = {
            "energy": energy,
            "free_energy": energy,
            "forces": np.array(ev.forces),
            "magnetic_forces": np.array(ev.magnetic_forces) if ev.magnetic_forces is not None
            else np.zeros((len(state), 3)),
        }
        if ev.energies is not None:
            self.results["energies"] = np.array(ev.energies)
        if stress:
            self.results["stress"] = np.array(ev.stress)

    def get_magnetic_forces(self, atoms=None) -> np.ndarray:
        """Magnetic forces −∂E/∂m, (N, 3) eV/μB."""
        return self.get_property("magnetic_forces", atoms)
