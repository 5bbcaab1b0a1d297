"""Units and physical constants.

spinlat works in Å, fs, eV, amu and K; magnetic moments are in Bohr magnetons (μB) and
magnetic fields in tesla. Every constant used anywhere in the package lives here.
"""

import math

#: Bohr magneton, eV/T.
MU_B = 5.7883818060e-5
#: 1 meV in eV.
MEV = 1e-3
#: Boltzmann constant, eV/K.
K_B = 8.617333262e-5
#: Reduced Planck constant, eV·fs.
HBAR = 0.6582119569
#: Gyromagnetic ratio of the electron, rad/(s·T).
GAMMA_SI = 1.760859e11
#: Gyromagnetic ratio in rad/(fs·T).
GAMMA = GAMMA_SI * 1e-15
#: Elementary charge, C (exact since the 2019 SI; CODATA 2018): 1 eV = ELEMENTARY_CHARGE J.
ELEMENTARY_CHARGE = 1.602176634e-19
#: The Rydberg energy in eV as UppASD takes it (its source/Parameters/constants.f90, ry_ev; CODATA
#: 2014: 13.605693009): UppASD's exchange files are in mRy (:func:`spinlat.io.read_uppasd`).
RYDBERG_EV = 13.605693009
#: Atomic mass constant, kg (CODATA 2018).
AMU_KG = 1.66053906660e-27
#: 1 amu·Å²/fs² expressed in eV.
AMU_A2_PER_FS2_IN_EV = AMU_KG * 1e-20 / 1e-30 / ELEMENTARY_CHARGE
#: Conversion eV/Å / amu → Å/fs² (acceleration from force and mass).
FORCE_TO_ACCELERATION = 1.0 / AMU_A2_PER_FS2_IN_EV
#: 1 eV/Å³ in GPa: ELEMENTARY_CHARGE J / 1e-30 m³ / 1e9 (160.2176634, from the CODATA 2018 charge).
EV_PER_A3_IN_GPA = ELEMENTARY_CHARGE * 1e30 / 1e9
#: Smallest allowed distance between two atoms, Å.
MIN_DISTANCE = 0.1
#: Two pi (ħ = h / 2π for LAMMPS's Planck constant, spinlat.io.lammps).
TWO_PI = 2.0 * math.pi

#: LAMMPS SPIN's rounded Bohr magneton, eV/T (fix precession/spin); used only to convert
#: LAMMPS inputs exactly (see spinlat.potentials.single_site).
LAMMPS_MU_B = 5.78901e-5

#: 1 kcal/mol in eV as LAMMPS converts potential files tagged ``UNITS: real`` for a ``metal``
#: run (``utils::get_conversion_factor``: 1/23.060549); used only to read such files as LAMMPS
#: does (see spinlat.potentials.eam).
LAMMPS_KCAL_MOL_IN_EV = 1.0 / 23.060549

#: Hartree × Bohr radius in eV·Å as LAMMPS's ``pair_style eam`` writes it (27.2 × 0.529, not
#: CODATA): the pair term of DYNAMO funcfl files is r·φ = 27.2·0.529·Z_i(r)·Z_j(r) with the
#: effective charges Z in √(Hartree·Bohr) (``PairEAM::file2array``); used only for funcfl files.
LAMMPS_HARTREE_BOHR = 27.2 * 0.529

#: ħγ/μB: the g-factor implied by the gyromagnetic ratio GAMMA (dimensionless, 2.00232). A spin of
#: moment |m| precesses at ω = (G_GAMMA/|m|)(1/ħ)|∂E/∂s| in spinlat's LLG.
G_GAMMA = HBAR * GAMMA / MU_B

#: femtoseconds per picosecond (LAMMPS ``units metal`` time unit).
FS_PER_PS = 1000.0
#: LAMMPS ``units metal`` Planck constant h, eV·ps (``force->hplanck``; ħ = h/2π).
LAMMPS_HPLANCK_METAL = 4.135667403e-3
#: LAMMPS ``units metal`` Boltzmann constant, eV/K (``force->boltz``).
LAMMPS_BOLTZ_METAL = 8.617343e-5

#: The unit system, as written into trajectory files.
UNITS = {
    "length": "Angstrom",
    "time": "fs",
    "energy": "eV",
    "mass": "amu",
    "temperature": "K",
    "moment": "mu_B",
    "field": "T",
    "forces": "eV/Angstrom",
    "magnetic_forces": "eV/mu_B",
    "stress": "eV/Angstrom^3",
    "velocity": "Angstrom/fs",
}
