"""Input and output: HDF5 trajectories, extxyz, TB2J exchange files, LAMMPS SPIN (export, data
files with atom_style spin, dump, log), OVF 2.0 spin configurations (Spirit), Spirit input files,
UppASD inputs and VAMPIRE unit-cell files (structure + Heisenberg exchange), pymatgen structures
and magnetic CIF files, and trajectory conversion to and from any ASE format (:func:`convert`)."""

_LAZY = {
    "Trajectory": ".hdf5",
    "TrajectoryWriter": ".hdf5",
    "read_extxyz": ".extxyz",
    "write_extxyz": ".extxyz",
    "read_tb2j": ".tb2j",
    "write_lammps": ".lammps",
    "write_lammps_data": ".lammps",
    "read_lammps_data": ".lammps_read",
    "read_lammps_dump": ".lammps_read",
    "read_lammps_log": ".lammps_read",
    "LammpsDump": ".lammps_read",
    "read_ovf": ".ovf",
    "read_ovf_segments": ".ovf",
    "write_ovf": ".ovf",
    "spirit_order": ".ovf",
    "read_spirit_cfg": ".spirit",
    "read_uppasd": ".uppasd",
    "read_vampire": ".vampire",
    "convert": ".conversion",
    "concatenate": ".conversion",
    "to_pymatgen": ".pymatgen",
    "from_pymatgen": ".pymatgen",
    "read_magnetic_cif": ".pymatgen",
    "write_magnetic_cif": ".pymatgen",
    "atomic_write": "..files",
    "atomic_path": "..files",
}

__all__ = list(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module 'spinlat.io' has no attribute {name!r}")
