"""2D (and 1D) structures as ASE builds them: a zero (or any) cell vector along a non-periodic
direction is accepted everywhere (State, ASE round trip, neighbour lists, Heisenberg templates),
and gives the same results as the same structure with a vacuum vector."""

import numpy as np
import pytest
from ase import Atoms
from ase.build import mx2
from ase.neighborlist import neighbor_list as ase_neighbor_list

import spinlat as sl
from spinlat import errors
from spinlat.neighbors import NeighborList, neighbor_pairs
from spinlat.potentials import Heisenberg, Zeeman

A = 3.0


def lattice_2d(kind, c):
    """Square or triangular monolayer (one Fe per cell, z = 0) with third cell vector ``c``."""
    ab = [[A, 0, 0], [0, A, 0]] if kind == "square" else [[A, 0, 0], [A / 2, A * np.sqrt(3) / 2, 0]]
    return sl.State([[0.0, 0.0, 0.0]], [26], cell=[*ab, c], pbc=(True, True, False), moments=[2.0])


FLAT = [0.0, 0.0, 0.0]
VACUUM = [0.0, 0.0, 25.0]


def random_spins(st, seed):
    return st.copy(spins=np.random.default_rng(seed).normal(size=(len(st), 3)))


# ------------------------------------------------------------------ State
@pytest.mark.parametrize("pbc, cell", [
    ((True, True, False), [[A, 0, 0], [0, A, 0], FLAT]),
    ((True, True, False), [[A, 0, 0], [0, A, 0], [A, A, 0]]),  # any vector along the open axis
    ((True, False, False), [[A, 0, 0], FLAT, FLAT]),           # a chain
    ((False, True, False), [FLAT, [0, A, 0], FLAT]),
])
def test_state_accepts_any_vector_along_open_directions(pbc, cell):
    st = sl.State([[0, 0, 0], [A / 2, A / 2, 0.5]], [26, 26], cell=cell, pbc=pbc)
    np.testing.assert_array_equal(st.cell, cell)
    with pytest.raises(errors.CellError, match="no volume"):
        st.volume


@pytest.mark.parametrize("pbc, cell", [
    ((True, True, True), [[A, 0, 0], [0, A, 0], FLAT]),
    ((True, True, False), [[A, 0, 0], [2 * A, 0, 0], [0, 0, 10.0]]),  # parallel periodic vectors
    ((True, True, False), [[A, 0, 0], FLAT, [0, 0, 10.0]]),
])
def test_periodic_vectors_must_be_independent(pbc, cell):
    with pytest.raises(errors.CellError, match="singular along its periodic directions"):
        sl.State([[0, 0, 0]], [26], cell=cell, pbc=pbc)


def test_mx2_from_ase_round_trip():
    atoms = mx2("MoS2", vacuum=None)
    assert np.all(atoms.cell[2] == 0) and atoms.pbc.tolist() == [True, True, False]
    atoms.set_initial_magnetic_moments(np.array([[0, 0, 1.0], [0.2, 0, 0], [0, 0.1, 0]]))
    st = sl.State.from_ase(atoms)
    np.testing.assert_array_equal(st.cell, atoms.cell[:])
    back = st.to_ase()
    np.testing.assert_array_equal(back.cell[:], atoms.cell[:])
    np.testing.assert_array_equal(back.pbc, atoms.pbc)
    np.testing.assert_array_equal(back.positions, atoms.positions)
    again = sl.State.from_ase(back)
    for name in ("positions", "numbers", "cell", "pbc", "spins", "moments", "masses"):
        np.testing.assert_array_equal(getattr(again, name), getattr(st, name), err_msg=name)


def test_repeat_refuses_a_zero_vector_but_repeats_the_periodic_ones():
    st = sl.State.from_ase(mx2("MoS2", vacuum=None))
    big = st.repeat((3, 2, 1))
    assert len(big) == 18
    big.check_distances()
    with pytest.raises(errors.CellError, match="cell vector 2 is zero"):
        st.repeat((1, 1, 2))


def test_stress_on_a_flat_cell_is_a_clear_error():
    st = lattice_2d("square", FLAT).repeat((2, 2, 1))
    with pytest.raises(errors.InputError, match="stress needs a cell periodic in all three directions"):
        Zeeman([0, 0, 1.0]).compute(st, stress=True)


# ------------------------------------------------------------------ neighbour lists
def pair_set(i, j, S):
    return {(int(a), int(b), *map(int, s)) for a, b, s in zip(i, j, S)}


@pytest.mark.parametrize("kind", ["square", "triangular"])
@pytest.mark.parametrize("cutoff", [3.1, 6.5])
def test_neighbors_of_flat_cell_match_ase_and_vacuum_cell(kind, cutoff):
    flat = lattice_2d(kind, FLAT).repeat((4, 3, 1))
    rng = np.random.default_rng(0)
    flat = flat.copy(positions=flat.positions + rng.normal(0, 0.1, (len(flat), 3)))
    vac = flat.copy(cell=[*flat.cell[:2], VACUUM])
    atoms = Atoms(numbers=flat.numbers, positions=flat.positions, cell=flat.cell, pbc=flat.pbc)
    ai, aj, aS = ase_neighbor_list("ijS", atoms, cutoff)
    assert len(ai) > 0
    nl = NeighborList(cutoff, skin=0.0)
    nl.build(flat)
    assert pair_set(nl.i, nl.j, nl.shifts) == pair_set(ai, aj, aS)
    i, j, S, d = neighbor_pairs(vac, cutoff, full=True)
    assert pair_set(i, j, S) == pair_set(ai, aj, aS)
    i, j, S, d_flat = neighbor_pairs(flat, cutoff, full=True)
    np.testing.assert_allclose(np.sort(d_flat), np.sort(d), rtol=0, atol=1e-12)


# ------------------------------------------------------------------ Heisenberg
@pytest.mark.parametrize("kind", ["square", "triangular"])
@pytest.mark.parametrize("dmi", ["bloch", "interfacial"])
def test_heisenberg_flat_cell_equals_vacuum_cell(kind, dmi):
    kw = dict(J=[0.01, -0.002, 0.001], D=[0.003, 0.001], dmi=dmi)
    h_flat = Heisenberg.from_neighbors(lattice_2d(kind, FLAT), **kw)
    h_vac = Heisenberg.from_neighbors(lattice_2d(kind, VACUUM), **kw)
    np.testing.assert_allclose(h_flat.shell_radii, h_vac.shell_radii, atol=1e-12)
    big_flat = random_spins(lattice_2d(kind, FLAT).repeat((5, 4, 1)), 3)
    big_vac = big_flat.copy(cell=[*big_flat.cell[:2], [0.0, 0.0, 40.0]],
                            positions=big_flat.positions + [0.0, 0.0, 17.0])
    ref = h_vac.compute(big_vac)
    # ferromagnetic state: 4 (square) or 6 (triangular) neighbours in each of the three shells
    z = 2 if kind == "square" else 3  # bonds per atom and shell
    fm = big_flat.copy(spins=np.tile([0, 0, 1.0], (len(big_flat), 1)))
    assert h_flat.compute(fm).energy / len(fm) == pytest.approx(-z * (0.01 - 0.002 + 0.001), abs=1e-15)
    for ham in (h_flat, h_vac):
        for st in (big_flat, big_vac):
            ev = ham.compute(st)
            assert ev.energy == pytest.approx(ref.energy, abs=1e-14)
            np.testing.assert_allclose(ev.magnetic_forces, ref.magnetic_forces, rtol=0, atol=1e-15)


def test_heisenberg_from_neighbors_on_mx2_cell():
    """MoS2 as ase.build.mx2 gives it (zero c, pbc (T, T, F)): Mo-Mo exchange and interfacial DMI
    on the Mo triangular sublattice, with moments on Mo only; the same as with vacuum."""
    def build(vacuum):
        st = sl.State.from_ase(mx2("MoS2", vacuum=vacuum))
        return st.copy(moments=np.where(st.numbers == 42, 1.5, 0.0))

    flat, vac = build(None), build(12.0)
    assert np.all(flat.cell[2] == 0)
    kw = dict(J=[0.0, 0.004], D=[0.0, 0.001], dmi="interfacial")  # shell 2 = Mo-Mo at a (shell 1: Mo-S)
    h_flat, h_vac = Heisenberg.from_neighbors(flat, **kw), Heisenberg.from_neighbors(vac, **kw)
    assert h_flat.shell_radii[1] == pytest.approx(3.18, abs=1e-9)
    big_flat = random_spins(flat.repeat((4, 4, 1)), 5)
    big_vac = vac.repeat((4, 4, 1)).copy(spins=big_flat.spins)
    a, b = h_flat.compute(big_vac), h_vac.compute(big_flat)
    assert a.energy == pytest.approx(b.energy, abs=1e-14) and a.energy != 0
    np.testing.assert_allclose(a.magnetic_forces, b.magnetic_forces, rtol=0, atol=1e-15)
    # NumPy reference: Mo-Mo bonds along the six in-plane neighbours, each pair once
    mo = np.flatnonzero(big_flat.numbers == 42)
    i, j, S, d = neighbor_pairs(big_flat, 3.3)
    keep = np.isin(i, mo) & np.isin(j, mo)
    i, j, S, d = i[keep], j[keep], S[keep], d[keep]
    assert len(i) == 3 * len(mo)
    r = big_flat.positions[j] - big_flat.positions[i] + S @ big_flat.cell
    dvec = 0.001 * np.cross([0, 0, 1.0], r / d[:, None])
    s = big_flat.spins
    e_ref = -np.sum(0.004 * np.sum(s[i] * s[j], axis=1) + np.sum(dvec * np.cross(s[i], s[j]), axis=1))
    assert h_flat.compute(big_flat).energy == pytest.approx(e_ref, abs=1e-14)


def test_heisenberg_template_with_flat_cell_rejects_scaled_positions():
    with pytest.raises(errors.CellError, match="scaled"):
        Heisenberg([[A, 0, 0], [0, A, 0], FLAT], [[0, 0, 0]], [26], [0], [0], [[1, 0, 0]], [0.01],
                   pbc=(True, True, False), scaled=True)
