"""Single-site terms: Zeeman, uniaxial and cubic anisotropy, Landau."""

import numpy as np
import pytest
from conftest import bcc_fe, fd_magnetic_forces
from scipy.spatial.transform import Rotation

from spinlat import units
from spinlat.errors import InputError, NonFiniteError, ShapeError, UnknownElementError
from spinlat.potentials import CubicAnisotropy, Landau, UniaxialAnisotropy, Zeeman, spin_torques


def _mixed_state(seed=0):
    """bcc Fe, 16 atoms, random spins and moments, two Ni atoms and two non-magnetic atoms."""
    st = bcc_fe((2, 2, 2), seed=seed)
    rng = np.random.default_rng(seed)
    moments = rng.uniform(1.0, 2.5, len(st))
    moments[[3, 12]] = 0.0
    numbers = st.numbers.copy()
    numbers[[5, 6]] = 28
    return st.copy(moments=moments, numbers=numbers)


TERMS = [
    Zeeman([0.4, -1.0, 2.0]),
    Zeeman([0.0, 0.0, 5.0], elements=["Ni"]),
    UniaxialAnisotropy(1e-3, [1.0, 1.0, 0.5]),
    UniaxialAnisotropy({"Fe": -2e-3, 28: 5e-4}, [0, 0, 1]),
    CubicAnisotropy(3e-3, -1e-3),
    CubicAnisotropy({"Fe": 3e-3}, 2e-3, axes=Rotation.from_euler("xyz", [0.3, -0.2, 1.1]).as_matrix()),
    Landau(-0.4, 0.05, 0.001),
    Landau({"Fe": -0.44, "Ni": -0.1}, {"Fe": 0.05, "Ni": 0.03}, 0.0),
]


@pytest.mark.parametrize("term", TERMS, ids=repr)
def test_magnetic_forces_match_finite_differences(term):
    st = _mixed_state(1)
    ev = term.compute(st, stress=True)
    atoms = (0, 5, 9)  # Fe, Ni, Fe
    np.testing.assert_allclose(ev.magnetic_forces[list(atoms)], fd_magnetic_forces(term, st, atoms), atol=1e-8)
    np.testing.assert_array_equal(ev.forces, 0.0)
    np.testing.assert_array_equal(ev.stress, 0.0)
    assert ev.energies.sum() == pytest.approx(ev.energy, abs=1e-15)
    # non-magnetic atoms: nothing
    np.testing.assert_array_equal(ev.magnetic_forces[[3, 12]], 0.0)
    np.testing.assert_array_equal(ev.energies[[3, 12]], 0.0)


@pytest.mark.parametrize("term", TERMS, ids=repr)
def test_local_fields_equal_full_rows(term):
    st = _mixed_state(2)
    h = term.compute(st).magnetic_forces
    for atoms in (np.arange(0, 16, 3), np.array([12]), np.array([], dtype=int)):
        np.testing.assert_array_equal(term.local_fields(st, None, atoms), h[atoms])


def test_zeeman_of_aligned_spins():
    B = np.array([0.0, 0.0, 2.5])
    st = bcc_fe((2, 2, 2), random_spins=False)  # all along +z, 2.2 μB
    ev = Zeeman(B).compute(st)
    assert ev.energy == pytest.approx(-units.MU_B * 2.2 * 2.5 * len(st), rel=1e-14)
    np.testing.assert_allclose(ev.magnetic_forces, np.tile(units.MU_B * B, (len(st), 1)), rtol=1e-15)
    np.testing.assert_allclose(spin_torques(st, ev), 0.0, atol=1e-20)
    # reversed spins: opposite energy
    assert Zeeman(B).compute(st.copy(spins=-st.spins)).energy == pytest.approx(-ev.energy, rel=1e-14)


def test_zeeman_restricted_to_species_and_lammps_conversion():
    st = _mixed_state(3)
    ev = Zeeman([0, 0, 1.0], elements="Ni").compute(st)
    assert np.flatnonzero(ev.energies).tolist() == [5, 6]
    z = Zeeman.from_lammps(1.0, [0, 0, 3.0])
    np.testing.assert_allclose(z.B, [0, 0, 2 * units.LAMMPS_MU_B / units.MU_B], rtol=1e-15)


def test_uniaxial_minimum_along_axis():
    n = np.array([1.0, 2.0, -2.0]) / 3.0
    K = 2e-3
    term = UniaxialAnisotropy(K, 3 * n)
    st = bcc_fe((1, 1, 1), random_spins=False)
    # energy as a function of the angle to the axis: −K cos²θ, minimum at θ = 0 and π
    perp = np.cross(n, [0, 0, 1.0])
    perp /= np.linalg.norm(perp)
    thetas = np.linspace(0, np.pi, 61)
    e = [term.compute(st.copy(spins=np.tile(np.cos(t) * n + np.sin(t) * perp, (2, 1)))).energy for t in thetas]
    np.testing.assert_allclose(e, -2 * K * np.cos(thetas) ** 2, atol=1e-17)
    along = term.compute(st.copy(spins=np.tile(n, (2, 1))))
    assert along.energy == pytest.approx(-2 * K)
    np.testing.assert_allclose(along.magnetic_forces, 0.0, atol=1e-18)  # transverse field vanishes
    # easy plane for K < 0: minimum perpendicular
    assert UniaxialAnisotropy(-K, n).compute(st.copy(spins=np.tile(perp, (2, 1)))).energy == 0.0


def test_cubic_energies_along_high_symmetry_directions():
    K1, K2 = 3e-3, -7e-4
    term = CubicAnisotropy(K1, K2)
    st = bcc_fe((1, 1, 1), random_spins=False)
    cases = {(1, 0, 0): 0.0, (0, 1, 0): 0.0, (1, 1, 0): K1 / 4, (1, 1, 1): K1 / 3 + K2 / 27}
    for d, e in cases.items():
        ev = term.compute(st.copy(spins=np.tile(d, (2, 1))))
        assert ev.energy / 2 == pytest.approx(e, abs=1e-18)
        np.testing.assert_allclose(ev.magnetic_forces, 0.0, atol=1e-17)  # all are stationary points
    # rotated axes: rotating the spins along gives the same energies
    R = Rotation.from_euler("zyx", [0.4, 0.9, -0.3]).as_matrix()
    rot = CubicAnisotropy(K1, K2, axes=R.T)  # rows: the rotated cube axes R e_k
    st = bcc_fe((2, 2, 2), seed=3)
    assert rot.compute(st.copy(spins=st.spins @ R.T)).energy == pytest.approx(term.compute(st).energy, abs=1e-15)


def test_landau_minimum():
    a, b = -0.44, 0.05
    term = Landau(a, b)
    assert term.depends_on_magnitudes
    st = bcc_fe((1, 1, 1), seed=1)
    m0 = np.sqrt(-a / (2 * b))
    ms = np.linspace(0.5, 4.0, 351)
    e = [term.compute(st.copy(moments=[m, m])).energy for m in ms]
    assert ms[int(np.argmin(e))] == pytest.approx(m0, abs=0.01)
    ev = term.compute(st.copy(moments=[m0, m0]))
    assert ev.energy == pytest.approx(-2 * a * a / (4 * b), rel=1e-14)
    np.testing.assert_allclose(ev.magnetic_forces, 0.0, atol=1e-15)
    # longitudinal: parallel to the spin, pushing the moment back towards m0
    ev = term.compute(st.copy(moments=[1.5 * m0, 0.5 * m0]))
    h_par = np.sum(ev.magnetic_forces * st.spins, axis=1)
    assert h_par[0] < 0 < h_par[1]
    np.testing.assert_allclose(np.cross(ev.magnetic_forces, st.spins), 0.0, atol=1e-15)


def test_landau_dict_species_missing_get_nothing():
    st = _mixed_state(4)
    ev = Landau({"Ni": -0.1}, {"Ni": 0.02}).compute(st)
    assert np.flatnonzero(ev.energies).tolist() == [5, 6]


def test_bad_input():
    with pytest.raises(NonFiniteError):
        Zeeman([0, np.nan, 1])
    with pytest.raises(ShapeError):
        Zeeman([0, 1])
    with pytest.raises(InputError):
        Zeeman("strong")
    with pytest.raises(InputError, match="zero length"):
        UniaxialAnisotropy(1e-3, [0, 0, 0])
    with pytest.raises(NonFiniteError):
        UniaxialAnisotropy(np.inf, [0, 0, 1])
    with pytest.raises(ShapeError):
        UniaxialAnisotropy(1e-3, [[0, 0, 1, 0]])
    with pytest.raises(ShapeError, match="per-atom axes"):  # (N, 3) axes checked against the state
        UniaxialAnisotropy(1e-3, [[0, 0, 1]]).compute(bcc_fe((1, 1, 1)))
    with pytest.raises(UnknownElementError):
        UniaxialAnisotropy({"Qq": 1e-3}, [0, 0, 1])
    with pytest.raises(UnknownElementError):
        Landau({200: -0.1}, 0.05)
    with pytest.raises(InputError, match="orthogonal"):
        CubicAnisotropy(1e-3, axes=[[1, 0, 0], [1, 1, 0], [0, 0, 1]])
    with pytest.raises(ShapeError):
        CubicAnisotropy(1e-3, axes=np.eye(2))
    with pytest.raises(NonFiniteError):
        Landau(float("nan"), 0.05)
    with pytest.raises(InputError, match="empty"):
        Landau({}, 0.05)
    with pytest.raises(InputError, match="atom indices"):
        Zeeman([0, 0, 1]).local_fields(bcc_fe((1, 1, 1)), None, [2])


def _local_axes(n, seed=7):
    rng = np.random.default_rng(seed)
    axes = rng.normal(size=(n, 3)) * rng.uniform(0.5, 3.0, (n, 1))  # any lengths: normalised
    axes[4] = 0.0  # no anisotropy on atom 4
    return axes


@pytest.mark.parametrize("K", [1e-3, {"Fe": -2e-3, "Ni": 7e-4}], ids=repr)
def test_uniaxial_per_atom_axes_match_finite_differences_and_numpy(K):
    st = _mixed_state(5)
    axes = _local_axes(len(st))
    term = UniaxialAnisotropy(K, axes)
    assert term.per_atom
    ev = term.compute(st)
    atoms = (0, 4, 5, 9)
    np.testing.assert_allclose(ev.magnetic_forces[list(atoms)], fd_magnetic_forces(term, st, atoms), atol=1e-8)
    # NumPy reference: E_i = −K_i (s_i·n_i)² on magnetic atoms
    n = axes / np.maximum(np.linalg.norm(axes, axis=1), 1e-300)[:, None]
    k = np.array([K if np.isscalar(K) else K.get({26: "Fe", 28: "Ni"}[z], 0.0) for z in st.numbers])
    e_ref = np.where(st.moments > 0, -k * np.sum(st.spins * n, axis=1) ** 2, 0.0)
    np.testing.assert_allclose(ev.energies, e_ref, rtol=1e-13, atol=1e-18)
    assert ev.energies[4] == 0.0 and np.all(ev.magnetic_forces[4] == 0.0)
    for sel in (np.arange(0, 16, 3), np.array([12]), np.array([], dtype=int)):
        np.testing.assert_array_equal(term.local_fields(st, None, sel), ev.magnetic_forces[sel])


def test_uniaxial_per_atom_rows_equal_to_one_axis_give_the_shared_axis_result():
    st = _mixed_state(6)
    n = [1.0, -2.0, 0.5]
    one, rows = UniaxialAnisotropy(2e-3, n), UniaxialAnisotropy(2e-3, np.tile(n, (len(st), 1)))
    a, b = one.compute(st), rows.compute(st)
    assert a.energy == pytest.approx(b.energy, rel=1e-14)
    np.testing.assert_allclose(a.magnetic_forces, b.magnetic_forces, rtol=1e-13, atol=1e-18)
    with pytest.raises(ShapeError, match="16 per-atom axes but the state has 128"):
        rows.compute(st.repeat(2))
    with pytest.raises(NonFiniteError):
        UniaxialAnisotropy(1e-3, [[0, 0, 1], [np.nan, 0, 1]])


@pytest.mark.parametrize("make, name, value", [
    (lambda: Zeeman([0.0, 0.0, 1.0]), "B", np.array([0.0, 0.0, 2.0])),
    (lambda: UniaxialAnisotropy(1e-3, [0, 0, 1]), "K", 0.0),
    (lambda: UniaxialAnisotropy(1e-3, [0, 0, 1]), "axis", np.array([1.0, 0.0, 0.0])),
    (lambda: CubicAnisotropy(3e-3, -1e-3), "K1", 0.0),
    (lambda: CubicAnisotropy(3e-3, -1e-3), "axes", Rotation.from_euler("z", 0.5).as_matrix()),
    (lambda: Landau(-0.4, 0.05), "a", -0.1),
], ids=lambda x: x if isinstance(x, str) else "")
def test_parameters_cannot_be_changed_after_construction(make, name, value):
    """A notebook habit: ``zeeman.B = [0, 0, 2]`` to sweep the field. The term kept computing with
    the value it was built with (its kernels and coupling tables, and the integrators' tables,
    hold that), while its repr — and a trajectory's record of the potential — showed the new one:
    a silently wrong field. Assigning a parameter is now refused, naming it and what to do, and
    in-place changes of its arrays are refused by NumPy."""
    from spinlat.errors import FixedParameterError

    st = _mixed_state()
    term = make()
    before, text = term.compute(st).energy, repr(term)
    with pytest.raises(FixedParameterError, match=rf"{type(term).__name__}\.{name} is fixed.*new {type(term).__name__}"):
        setattr(term, name, value)
    with pytest.raises(AttributeError):  # also what Python raises for a read-only attribute
        setattr(term, name, value)
    current = getattr(term, name)
    if isinstance(current, np.ndarray):
        with pytest.raises(ValueError, match="read-only"):
            current[...] = value
        # a deep copy or a pickled copy (sent to worker processes, a spin code's file read through
        # the cache of spinlat.io.codes.read_code) built writeable arrays: the fault again
        import copy
        import pickle

        for other in (copy.deepcopy(term), pickle.loads(pickle.dumps(term))):
            with pytest.raises(ValueError, match="read-only"):
                getattr(other, name)[...] = value
    assert repr(term) == text and term.compute(st).energy == before
    # a new term with the new value is the way: it computes with it
    rebuilt = {"B": lambda: Zeeman(value), "K": lambda: UniaxialAnisotropy(value, [0, 0, 1]),
               "axis": lambda: UniaxialAnisotropy(1e-3, value), "K1": lambda: CubicAnisotropy(value, -1e-3),
               "axes": lambda: CubicAnisotropy(3e-3, -1e-3, axes=value), "a": lambda: Landau(value, 0.05)}[name]()
    assert rebuilt.compute(st).energy != before


def test_per_species_parameters_cannot_be_changed_in_place():
    """A dict parameter was kept as the user's own object: ``K["Fe"] = 5e-3`` on the dict given
    (a sweep reusing one dict) or on ``term.K`` changed the repr and the parameter digest (so a
    trajectory recorded a new run under the new K) but not the energy."""
    import copy
    import pickle

    from spinlat.errors import FixedParameterError

    st = _mixed_state()
    K = {"Fe": 1e-3}
    term = UniaxialAnisotropy(K, [0, 0, 1])
    before, text, digest = term.compute(st).energy, repr(term), term.term_digests()
    K["Fe"] = 5e-3  # the user's dict is theirs
    assert repr(term) == text and term.term_digests() == digest and term.compute(st).energy == before
    for other in (term, copy.deepcopy(term), pickle.loads(pickle.dumps(term))):
        with pytest.raises(FixedParameterError, match="build a new term"):
            other.K["Fe"] = 5e-3
        with pytest.raises(FixedParameterError):
            other.K.update(Fe=5e-3)
        assert other.K == {"Fe": 1e-3} and other.compute(st).energy == before
