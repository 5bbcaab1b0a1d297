"""Every public entry point that takes a file path or an option refuses a value of the wrong type
or an unknown value with a spinlat error naming the argument — never a raw TypeError from deep
inside (``open(5)`` would even read file descriptor 5), never a silent acceptance."""

import numpy as np
import pytest

import spinlat.io as sio
from spinlat import integrators as I
from spinlat import potentials as P
from spinlat.errors import SpinlatError
from spinlat.simulation import Simulation
from spinlat.state import State


def _state():
    return State(np.zeros((1, 3)), [26], cell=np.eye(3) * 2.8665, spins=[[0, 0, 1]], moments=[2.2])


def _heisenberg(**kw):
    return P.Heisenberg(np.eye(3) * 2.8665, [[0, 0, 0]], [26], [0], [0], [[1, 0, 0]], [np.eye(3) * 0.01], **kw)


# (entry point, the argument's name as the message gives it, call with the value)
PATHS = {
    "Trajectory": ("Trajectory path", lambda v: sio.Trajectory(v)),
    "TrajectoryWriter": ("TrajectoryWriter path", lambda v: sio.TrajectoryWriter(v, _state())),
    "recover_trajectory": ("recover_trajectory path", lambda v: __import__("spinlat.io.hdf5").io.hdf5.recover_trajectory(v)),
    "read_extxyz": ("read_extxyz path", lambda v: sio.read_extxyz(v)),
    "write_extxyz": ("write_extxyz path", lambda v: sio.write_extxyz(v, [_state()])),
    "read_tb2j": ("read_tb2j path", lambda v: sio.read_tb2j(v)),
    "write_lammps": ("write_lammps directory", lambda v: sio.write_lammps(v, _state(), P.Zeeman([0, 0, 1.0]))),
    "read_lammps_data": ("read_lammps_data path", lambda v: sio.read_lammps_data(v)),
    "read_lammps_dump": ("read_lammps_dump path", lambda v: sio.read_lammps_dump(v)),
    "read_lammps_log": ("read_lammps_log path", lambda v: sio.read_lammps_log(v)),
    "read_ovf": ("OVF path", lambda v: sio.read_ovf(v)),
    "read_ovf_segments": ("OVF path", lambda v: sio.read_ovf_segments(v)),
    "write_ovf": ("write_ovf path", lambda v: sio.write_ovf(v, _state())),
    "convert source": ("convert source", lambda v: sio.convert(v, "out.extxyz")),
    "convert target": ("convert target", lambda v: sio.convert("in.h5", v)),
    "EAM": ("EAM path", lambda v: P.EAM(v)),
    "Heisenberg.from_tb2j": ("Heisenberg.from_tb2j path", lambda v: P.Heisenberg.from_tb2j(v)),
    "MagneticMACE.load": ("MagneticMACE.load path", lambda v: P.MagneticMACE.load(v)),
    "ReferenceMagneticMACE.load": ("reference model path", lambda v: P.ReferenceMagneticMACE.load(v)),
    "ReferenceMagneticMACE.from_reference_model": ("from_reference_model path",
                                                   lambda v: P.ReferenceMagneticMACE.from_reference_model(v, trust=True)),
    "Simulation trajectory": ("trajectory", lambda v: Simulation(_state(), P.Zeeman([0, 0, 1.0]), I.SpinLatticeNVE(1.0),
                                                                 trajectory=v)),
    "atomic_write": ("path", lambda v: sio.atomic_write(v).__enter__()),
}

OPTIONS = {
    "EAM format": ("format", lambda v: P.EAM("Fe_mm.eam.fs", format=v), [True, "nonsense", 3]),
    "TrajectoryWriter mode": ("mode", lambda v: sio.TrajectoryWriter("t.h5", _state(), mode=v), [True, "x", 1]),
    "TrajectoryWriter compression": ("compression", lambda v: sio.TrajectoryWriter("t.h5", _state(), compression=v),
                                     [True, "zip", 12]),
    "TrajectoryWriter store_forces": ("store_forces", lambda v: sio.TrajectoryWriter("t.h5", _state(), store_forces=v),
                                      ["yes", 1]),
    "TrajectoryWriter fsync": ("fsync", lambda v: sio.TrajectoryWriter("t.h5", _state(), fsync=v), ["no", 0]),
    "write_extxyz append": ("append", lambda v: sio.write_extxyz("x.extxyz", [_state()], append=v), ["yes", 1]),
    "write_lammps overwrite": ("overwrite", lambda v: sio.write_lammps("lmp", _state(), P.Zeeman([0, 0, 1.0]),
                                                                       overwrite=v), ["yes", 1]),
    "write_ovf format": ("format", lambda v: sio.write_ovf("x.ovf", _state(), format=v), [["binary8"], "binary"]),
    "write_ovf comment": ("comment", lambda v: sio.write_ovf("x.ovf", _state(), comment=v), [5, None]),
    "write_ovf append": ("append", lambda v: sio.write_ovf("x.ovf", _state(), append=v), ["yes"]),
    "convert overwrite": ("overwrite", lambda v: sio.convert("in.h5", "out.extxyz", overwrite=v), ["yes"]),
    "ReferenceMagneticMACE trust": ("trust", lambda v: P.ReferenceMagneticMACE.from_reference_model("x.model", trust=v),
                                    ["yes", 1]),
    "MagneticMACE.create device": ("device", lambda v: P.MagneticMACE.create(["Fe"], device=v), [True, 5, "gpu0"]),
    "MagneticMACE.create dtype": ("dtype", lambda v: P.MagneticMACE.create(["Fe"], dtype=v), [True, "float16"]),
    "Heisenberg scaled": ("scaled", lambda v: _heisenberg(scaled=v), ["yes", 1]),
    "Heisenberg pbc": ("pbc", lambda v: _heisenberg(pbc=v), ["yes", [1, 1]]),
    "Heisenberg.from_neighbors dmi": ("dmi", lambda v: P.Heisenberg.from_neighbors(_state(), J=[0.01], D=[0.001], dmi=v),
                                      ["blotch", True]),
    "BetheSlaterExchange offset": ("offset", lambda v: P.BetheSlaterExchange(3.5, 0.01, 0.1, 1.0, offset=v), ["yes"]),
    "Zeeman elements": ("elements", lambda v: P.Zeeman([0, 0, 1.0], elements=v), [object(), "Xx", 3.5]),
    "Simulation potential": ("potential", lambda v: Simulation(_state(), v, I.SpinLatticeNVE(1.0)), ["eam", None]),
    "Simulation integrator": ("Integrator", lambda v: Simulation(_state(), P.Zeeman([0, 0, 1.0]), v), ["nve"]),
    "Simulation progress": ("progress", lambda v: Simulation(_state(), P.Zeeman([0, 0, 1.0]), I.SpinLatticeNVE(1.0),
                                                             progress=v), ["yes", 1]),
    "Simulation compression": ("compression", lambda v: Simulation(_state(), P.Zeeman([0, 0, 1.0]),
                                                                   I.SpinLatticeNVE(1.0), compression=v), ["zip"]),
    "LLG solver": ("solver", lambda v: I.LLG(1.0, solver=v), ["euler", True]),
    "LLG seed": ("seed", lambda v: I.LLG(1.0, seed=v), [-1, "abc", 1.5]),
    "MonteCarlo adapt": ("adapt", lambda v: I.MonteCarlo(100.0, adapt=v), ["yes", 1]),
    "MonteCarlo overrelax": ("overrelax", lambda v: I.MonteCarlo(100.0, overrelax=v), [True, -1, 1.5]),
    "SpinLatticeNVE dt": ("dt", lambda v: I.SpinLatticeNVE(v), [True, "1", -1.0]),
    "SpinLatticeLangevin spin_temperature": ("spin_temperature", lambda v: I.SpinLatticeLangevin(
        1.0, 300.0, 0.01, 0.1, spin_temperature=v), [True, "hot", -1.0]),
}


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize("entry", sorted(PATHS))
@pytest.mark.parametrize("value", [5, 2.5, b"file", ["a", "b"], object(), ""], ids=["int", "float", "bytes", "list",
                                                                                     "object", "empty"])
def test_a_path_of_the_wrong_type_names_the_argument(entry, value):
    name, call = PATHS[entry]
    if entry == "EAM" and isinstance(value, list):
        pytest.skip("EAM takes a list of funcfl files (tested in tests/potentials/test_eam.py)")
    with pytest.raises(SpinlatError) as info:
        call(value)
    assert name in str(info.value), str(info.value)


@pytest.mark.parametrize("entry,value", [(k, v) for k in sorted(OPTIONS) for v in OPTIONS[k][2]],
                         ids=lambda x: x if isinstance(x, str) else repr(x)[:20])
def test_an_option_of_the_wrong_type_or_unknown_value_names_the_argument(entry, value):
    name, call, _ = OPTIONS[entry]
    with pytest.raises(SpinlatError) as info:
        call(value)
    assert name in str(info.value), str(info.value)


def test_nothing_is_written_for_a_refused_argument(tmp_path):
    """A refused option leaves no file behind (checked before anything is created)."""
    with pytest.raises(SpinlatError):
        sio.write_ovf(tmp_path / "x.ovf", _state(), format="binary")
    with pytest.raises(SpinlatError):
        sio.write_extxyz(tmp_path / "x.extxyz", [_state()], append="yes")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ float precisions
def _spellings(bits):
    torch = pytest.importorskip("torch")
    if bits == 32:
        return ["float32", "single", "f4", "<f4", "fp32", "torch.float32", "torch.float", np.float32,
                np.dtype("float32"), torch.float32, torch.float]
    return ["float64", "double", "float", "f8", "<f8", "fp64", "torch.float64", "torch.double", np.float64,
            np.dtype("float64"), float, torch.float64, torch.double]


@pytest.mark.parametrize("bits", [32, 64])
def test_every_standard_spelling_of_a_float_precision_is_one_precision(bits):
    """dtype=np.float32 (a NumPy type), np.dtype objects and NumPy's names were refused where the
    strings 'float32'/'float64' and torch dtypes worked (training, MagneticMACE): one rule now."""
    from spinlat.training.options import TrainingOptions, resolve_dtype
    from spinlat.validation import float_dtype

    torch = pytest.importorskip("torch")
    for v in _spellings(bits):
        assert float_dtype(v) == f"float{bits}", v
        assert resolve_dtype(v) == (torch.float32 if bits == 32 else torch.float64), v
        assert TrainingOptions.from_values({"dtype": v}).dtype == f"float{bits}", v


@pytest.mark.parametrize("value", ["float16", "half", "bfloat16", "torch.float16", np.float16, np.int32, int, "int64",
                                   3, True, None, "bogus", object])
def test_other_precisions_and_objects_are_refused_naming_the_argument(value):
    from spinlat.errors import InputError
    from spinlat.validation import float_dtype

    with pytest.raises(InputError, match=r"^dtype: expected 'float64' or 'float32' \(or a NumPy or torch float dtype"):
        float_dtype(value)


def test_magnetic_mace_takes_numpy_dtypes():
    torch = pytest.importorskip("torch")
    pot = P.MagneticMACE.create(["Fe"], dtype=np.float32, hidden_irreps="4x0e+4x1o", radial_MLP=[8], MLP_irreps="4x0e",
                                max_ell=1, r_max=4.0, num_bessel=4)
    assert pot.dtype == torch.float32
