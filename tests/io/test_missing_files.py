"""Every reader of a user file says the same thing for a file that is not there: a
:class:`~spinlat.errors.MissingFileError` (a spinlat InputError and a ``FileNotFoundError``)
naming the file and what it was read as; a directory given for a file is an InputError naming
the argument. (Before: ``FileNotFoundError``, ``FileFormatError("cannot read ...")``,
``IsADirectoryError`` or "cannot tell the EAM format" depending on the reader.)"""

import pytest

import spinlat as sl
from spinlat.errors import InputError, MissingFileError, SpinlatError
from spinlat.io import conversion, extxyz, hdf5, lammps_read, ovf, tb2j
from spinlat.potentials.eam import EAM, read_eam_file
from spinlat.potentials.heisenberg import Heisenberg
from spinlat.potentials.mmace.potential import MagneticMACE
from spinlat.potentials.mmace.reference import ReferenceMagneticMACE

READERS = {
    "read_extxyz": (extxyz.read_extxyz, "extxyz file"),
    "read_ovf": (ovf.read_ovf, "OVF file"),
    "read_ovf_segments": (ovf.read_ovf_segments, "OVF file"),
    "Trajectory": (hdf5.Trajectory, "trajectory file"),
    "read_lammps_data": (lammps_read.read_lammps_data, "LAMMPS data file"),
    "read_lammps_dump": (lammps_read.read_lammps_dump, "LAMMPS dump"),
    "read_lammps_log": (lammps_read.read_lammps_log, "LAMMPS log"),
    "read_tb2j": (tb2j.read_tb2j, "TB2J file"),
    "Heisenberg.from_tb2j": (Heisenberg.from_tb2j, "TB2J file"),
    "EAM": (EAM, "EAM file"),
    "read_eam_file": (read_eam_file, "EAM file"),
    "MagneticMACE.load": (MagneticMACE.load, "model file"),
    "ReferenceMagneticMACE.load": (ReferenceMagneticMACE.load, "model file"),
    "convert": (lambda p: conversion.convert(p, p.parent / "out.h5"), "convert source"),
}


@pytest.mark.parametrize("name", sorted(READERS))
def test_missing_file_is_one_named_error(tmp_path, name):
    reader, what = READERS[name]
    missing = tmp_path / "nothing_here.dat"
    with pytest.raises(MissingFileError, match=f"{what} .*nothing_here.dat does not exist") as info:
        reader(missing)
    assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, SpinlatError)
    assert not (tmp_path / "out.h5").exists()


@pytest.mark.parametrize("name", sorted(set(READERS) - {"convert"}))
def test_directory_is_not_a_file(tmp_path, name):
    reader, _ = READERS[name]
    with pytest.raises(InputError, match="is a directory, not a file"):
        reader(tmp_path)


def test_restart_and_append_of_missing_files(tmp_path):
    with pytest.raises(MissingFileError, match="write_ovf.*gone.ovf does not exist"):
        ovf.write_ovf(tmp_path / "gone.ovf", [[0.0, 0.0, 1.0]], append=True)
    with pytest.raises(MissingFileError, match="cannot restart: trajectory .*gone.h5 does not exist"):
        sl.Simulation(None, sl.potentials.Zeeman([0.0, 0.0, 1.0]), sl.integrators.SpinLatticeNVE(1.0),
                      trajectory=tmp_path / "gone.h5", restart=True, progress=False)
    assert not (tmp_path / "gone.h5").exists()


def test_funcfl_list_names_the_missing_item(tmp_path):
    with pytest.raises(MissingFileError, match=r"EAM file .*Ni_u3.eam does not exist"):
        EAM([tmp_path / "Ni_u3.eam", tmp_path / "Cu_u3.eam"])
