"""Synthetic reference data: configurations labelled by an analytic "teacher" spin-lattice
Hamiltonian for bcc Fe, fcc Ni and Fe-Ni alloys (clearly labelled synthetic, not DFT).

``sl.datasets.teacher(system, n_configs, seed, soc=True)`` returns labelled ``ase.Atoms``; the
Hamiltonian, its parameters and the structures it labels are defined and documented in
:mod:`spinlat.training.teacher`, which this module makes public under its short name.
"""

from .training.teacher import (A_BCC_FE, A_FCC_FENI, A_FCC_NI, EXCHANGE, LANDAU_B, LATTICE, M0, R_CUT, R_ON, SOC,
                               SOC_DECAY, SOC_R0, SYSTEMS, TeacherHamiltonian, random_configuration, teacher,
                               teacher_potential)

__all__ = ["teacher", "teacher_potential", "random_configuration", "TeacherHamiltonian", "SYSTEMS", "M0",
           "LATTICE", "EXCHANGE", "LANDAU_B", "SOC", "R_ON", "R_CUT", "SOC_R0", "SOC_DECAY", "A_BCC_FE", "A_FCC_NI",
           "A_FCC_FENI"]
