"""Strict checks of user values (spinlat.validation) and the constructors that use them:
a bool is not a number, a string is not a number or a bool, complex is not real."""

import math

import numpy as np
import pytest

import spinlat as sl
from spinlat import validation as V
from spinlat.errors import InputError, NonFiniteError, ShapeError, UnknownElementError
from spinlat.integrators import LLG, MonteCarlo, SpinLatticeLangevin, SpinLatticeNVE
from spinlat.potentials import EAM, BetheSlaterExchange, CubicAnisotropy, Landau, UniaxialAnisotropy, Zeeman

from conftest import EAM_FE, bcc_fe


def test_number():
    assert V.number(2, "x") == 2.0 and type(V.number(np.float32(0.5), "x")) is float
    assert V.number(np.int64(3), "x", positive=True) == 3.0
    for bad in (True, np.True_, "0.5", None, [0.5], 1j, b"1"):
        with pytest.raises(InputError, match="x: expected a number"):
            V.number(bad, "x")
    with pytest.raises(NonFiniteError):
        V.number(math.nan, "x")
    with pytest.raises(NonFiniteError):
        V.number(math.inf, "x")
    assert V.number(math.inf, "x", finite=False) == math.inf
    with pytest.raises(InputError, match=r"dt: expected a positive number \(fs\), got 0"):
        V.number(0, "dt", positive=True, unit="fs")
    with pytest.raises(InputError, match="expected a non-negative number"):
        V.number(-1e-300, "T", nonnegative=True)
    with pytest.raises(InputError, match="≤ 1"):
        V.number(1.5, "p", maximum=1)


def test_integer_boolean_choice_seed_path():
    assert V.integer(1e5, "n") == 100000 and type(V.integer(np.int32(4), "n")) is int
    for bad in (1.5, "3", True, math.inf, None):
        with pytest.raises(InputError, match="n: expected an integer"):
            V.integer(bad, "n")
    with pytest.raises(InputError, match="a positive integer"):
        V.integer(0, "n", minimum=1)
    assert V.boolean(np.False_, "b") is False
    for bad in ("false", 0, 1, None):
        with pytest.raises(InputError, match="b: expected true or false"):
            V.boolean(bad, "b")
    assert V.choice("sib", "s", ("sib", "heun")) == "sib"
    with pytest.raises(InputError, match="expected one of 'sib', 'heun'"):
        V.choice("SIB ", "s", ("sib", "heun"))
    assert V.seed(None) is None and V.seed(np.uint8(3)) == 3
    gen = np.random.default_rng(0)
    assert V.seed(gen) is gen
    for bad in ("abc", -1, 1.5, True, 2**64, 2**70):  # 2**70 crashed in h5py when the trajectory stored it
        with pytest.raises(InputError, match="seed: expected a non-negative integer"):
            V.seed(bad)
    assert V.seed(2**64 - 1) == V.MAX_SEED
    from pathlib import Path

    assert V.path(Path("a/b"), "p") == "a/b"
    for bad in (5, "", None, b"x"):
        with pytest.raises(InputError, match="p: expected a file path"):
            V.path(bad, "p")


def test_real_array_and_pbc():
    np.testing.assert_array_equal(V.real_array([[1, 2, 3]], "a", (1, 3)), [[1.0, 2.0, 3.0]])
    for bad, what in ((np.ones(3, bool), "booleans"), (np.ones(3) * 1j, "complex"), (["1", "2", "3"], "strings"),
                      ([1.0, True, 2.0], "True at flat index 1"), ([1, None, 2], "None"), ([[1, 2], [3]], "real")):
        with pytest.raises(InputError, match=what):
            V.real_array(bad, "a")
    with pytest.raises(ShapeError, match=r"a: expected shape \(3,\), got \(2,\)"):
        V.real_array([1, 2], "a", (3,))
    with pytest.raises(NonFiniteError, match=r"first at index \(1,\)"):
        V.real_array([1, np.nan], "a")
    assert V.pbc(True).tolist() == [True] * 3
    assert V.pbc((True, np.False_, True)).tolist() == [True, False, True]
    for bad in ("False", [True, False], (1, 0, 1), [True, False, "x"], None):
        with pytest.raises(InputError, match="pbc: expected"):
            V.pbc(bad)


def test_atomic_number():
    assert V.atomic_number("Fe") == 26 and V.atomic_number(np.int64(28)) == 28
    for bad in ("X", "Xx", "fe", 0, 119, True, 26.0, None):
        with pytest.raises(UnknownElementError):
            V.atomic_number(bad)


@pytest.mark.parametrize("make, match", [
    (lambda: SpinLatticeNVE("0.1"), r"dt: expected a positive number \(fs\), got '0.1'"),
    (lambda: SpinLatticeNVE(True), "dt: expected a positive number"),
    (lambda: SpinLatticeNVE(np.nan), "dt"),
    (lambda: SpinLatticeNVE(50.0), "absurdly large"),
    (lambda: SpinLatticeLangevin(0.1, "hot", 0.01, 0.1), r"temperature: expected a non-negative number \(K\)"),
    (lambda: SpinLatticeLangevin(0.1, 300, 0.01, 0.1, seed="abc"), "seed: expected a non-negative integer"),
    (lambda: SpinLatticeLangevin(0.1, 300, True, 0.1), "friction"),
    (lambda: LLG(0.1, damping="0.1"), "damping"),
    (lambda: LLG(0.1, seed=1.5), "seed"),
    (lambda: LLG(0.1, solver=3), "solver"),
    (lambda: MonteCarlo(10, seed=-1), "seed"),
    (lambda: MonteCarlo(10, overrelax="x"), "overrelax: expected a non-negative integer"),
    (lambda: MonteCarlo(10, overrelax=1.5), "overrelax"),
    (lambda: MonteCarlo(10, cone=True), "cone"),
    (lambda: MonteCarlo(10, cone=4.0), "cone"),
    (lambda: MonteCarlo(10, target_acceptance="half"), "target_acceptance"),
    (lambda: MonteCarlo(10, target_acceptance=1.0), "target_acceptance"),
    (lambda: MonteCarlo(10, adapt="yes"), "adapt: expected true or false"),
    (lambda: EAM(5), "EAM path: expected a file path .*got 5"),
    (lambda: BetheSlaterExchange(True, 0.02, 0.2, 1.8), "cutoff: expected a number"),
    (lambda: BetheSlaterExchange(3.4, "0.02", 0.2, 1.8), "J1: expected a number"),
    (lambda: BetheSlaterExchange(3.4, 0.02, 0.2, 1.8, elements=True), "element"),
    (lambda: Zeeman(["0", "0", "1"]), "Zeeman field B .* strings"),
    (lambda: Zeeman([0, 0, True]), "Zeeman field B"),
    (lambda: Zeeman([0, 0, 1], elements=["X"]), "unknown element symbol 'X'"),
    (lambda: UniaxialAnisotropy("1e-4", [0, 0, 1]), "anisotropy constant K: expected a number"),
    (lambda: UniaxialAnisotropy(1e-4, ["0", "0", "1"]), "anisotropy axis"),
    (lambda: UniaxialAnisotropy({True: 1e-4}, [0, 0, 1]), "element"),
    (lambda: CubicAnisotropy(1e-5, axes=[["1", 0, 0], [0, 1, 0], [0, 0, 1]]), "cubic axes"),
    (lambda: Landau(True), "Landau a: expected a number"),
    (lambda: Landau(-0.1, b={"Fe": None}), "Landau b"),
])
def test_constructors_refuse_wrong_types(make, match):
    with pytest.raises(InputError, match=match):
        make()


def test_right_types_still_work():
    assert SpinLatticeNVE(np.float32(0.5)).dt == 0.5
    assert LLG(1, damping=0, seed=np.int64(4)).seed == 4
    mc = MonteCarlo(np.int32(10), overrelax=2.0, cone=1, adapt=np.True_)
    assert (mc.overrelax, mc.cone, mc.adapt) == (2, 1.0, True)
    assert BetheSlaterExchange(3, 1, 0, 2).cutoff == 3.0
    assert EAM(str(EAM_FE)).cutoff > 0 and EAM(EAM_FE).cutoff > 0


def test_simulation_and_minimize_options():
    st = bcc_fe((1, 1, 1), seed=0)
    pot = Zeeman([0, 0, 1.0])
    for kw, match in ((dict(progress="no"), "progress: expected true or false"),
                      (dict(store_forces="false"), "store_forces: expected true or false"),
                      (dict(max_energy_change="big"), "max_energy_change"),
                      (dict(flush_every=0), "flush_every")):
        with pytest.raises(InputError, match=match):
            sl.Simulation(st, pot, LLG(0.1, damping=0.1), **kw)
    for kw, match in ((dict(max_steps=-5), "max_steps: expected a positive integer"),
                      (dict(fmax="small"), "fmax: expected a positive number"),
                      (dict(spins="yes"), "spins: expected true or false"),
                      (dict(tmax=0), "tmax")):
        with pytest.raises(InputError, match=match):
            sl.minimize(st, pot, **kw)


def test_a_state_without_atoms_cannot_be_simulated(tmp_path):
    st0 = sl.State(np.zeros((0, 3)), np.zeros(0, int), cell=np.eye(3) * 5, pbc=True)
    path = tmp_path / "t.h5"
    with pytest.raises(InputError, match="the state has no atoms"):
        sl.Simulation(st0, EAM(EAM_FE), SpinLatticeNVE(0.1), trajectory=str(path))
    assert not path.exists()


@pytest.mark.parametrize("make, name", [
    (lambda v: UniaxialAnisotropy(v, [0, 0, 1]), "UniaxialAnisotropy K"),
    (lambda v: UniaxialAnisotropy({"Fe": v}, [0, 0, 1]), "UniaxialAnisotropy K"),
    (lambda v: CubicAnisotropy(v), "CubicAnisotropy K1"),
    (lambda v: CubicAnisotropy(1e-5, -v), "CubicAnisotropy K2"),
    (lambda v: BetheSlaterExchange(3.4, v, 0.2171, 1.841), "BetheSlaterExchange J1"),
    (lambda v: sl.potentials.Heisenberg.from_neighbors(bcc_fe(1), J=[0.01, v]), "Heisenberg.from_neighbors J"),
    (lambda v: sl.potentials.Heisenberg.from_neighbors(bcc_fe(1), J=[0.01], D=[-v]),
     "Heisenberg.from_neighbors D"),
])
def test_coupling_constants_in_mev_are_named(make, name):
    """A Spirit or TB2J user gives J = 10 (meV) where spinlat takes eV: every energy and precession
    1000 times too large, silently (bcc Fe from_neighbors J=[10]: −1920 eV for 64 atoms). Values
    above 1 eV, larger than any measured exchange or anisotropy, now warn with the eV value meant."""
    with pytest.warns(UserWarning, match=rf"{name} = -?10 eV is larger than any measured exchange or anisotropy"
                                         r".*spinlat takes eV.*\(-?0.01 eV here\)"):
        make(10.0)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make(0.5)   # large but possible: no warning
