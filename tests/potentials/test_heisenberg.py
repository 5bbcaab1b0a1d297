"""Heisenberg: NumPy reference on supercells, finite differences, local fields, DMI chirality,
shells, supercell mapping and its errors."""

import numpy as np
import pytest

import spinlat as sl
from spinlat.errors import CellError, InputError
from spinlat.potentials import Heisenberg
from spinlat.potentials.heisenberg import dmi_matrix, dmi_vector

from conftest import TB2J_FE, bcc_fe, fd_magnetic_forces

A = 2.8665


def bcc_unit(moment=2.2):
    return sl.State([[0, 0, 0], [A / 2, A / 2, A / 2]], [26, 26], cell=np.eye(3) * A, pbc=True,
                    moments=[moment, moment])


def random_template(seed=0, npairs=12, rmax=2):
    """2-atom bcc template with random pair tensors (isotropic + DMI + anisotropic), R up to ±rmax."""
    rng = np.random.default_rng(seed)
    unit = bcc_unit()
    i = rng.integers(0, 2, npairs)
    j = rng.integers(0, 2, npairs)
    R = rng.integers(-rmax, rmax + 1, (npairs, 3))
    same = (i == j) & ~R.any(axis=1)
    R[same, 0] = 1  # no accidental on-site entries
    J = rng.normal(0, 0.01, (npairs, 3, 3))
    return unit, Heisenberg(unit.cell, unit.positions, unit.numbers, i, j, R, J)


def reference_energy(ham, unit, reps, spins):
    """Plain NumPy on ``unit.repeat(reps)``: atom (cell c, site k) has index (c0 r1 + c1) r2 + c2)·T + k."""
    reps = np.asarray(reps)
    t = len(unit)
    grid = np.stack(np.meshgrid(*[np.arange(r) for r in reps], indexing="ij"), -1).reshape(-1, 3)

    def index(cells, k):
        c = np.mod(cells, reps)
        return ((c[:, 0] * reps[1] + c[:, 1]) * reps[2] + c[:, 2]) * t + k

    e = 0.0
    for i0, j0, R, J in zip(ham.i, ham.j, ham.R, ham.J):
        a = index(grid, i0)
        b = index(grid + R, j0)
        e -= np.einsum("pa,ab,pb->", spins[a], J, spins[b])
    return e


@pytest.mark.parametrize("reps", [(1, 1, 1), (2, 1, 3), (3, 3, 3)])
def test_energy_matches_numpy_reference_on_supercells(reps):
    unit, ham = random_template(seed=sum(reps))
    st = bcc_fe(reps, seed=2, rattle=0.05)
    ev = ham.compute(st)
    assert ev.energy == pytest.approx(reference_energy(ham, unit, reps, st.spins), abs=1e-12)
    assert ev.energies.sum() == pytest.approx(ev.energy, abs=1e-12)
    assert np.all(ev.forces == 0) and np.all(ham.compute(st, stress=True).stress == 0)


def test_atom_order_and_wrapping_do_not_matter():
    unit, ham = random_template(seed=4)
    st = bcc_fe((2, 2, 2), seed=5, rattle=0.05)
    e0 = ham.compute(st).energy
    rng = np.random.default_rng(0)
    perm = rng.permutation(len(st))
    pos = st.positions[perm] + rng.integers(-2, 3, (len(st), 1)) * st.cell[rng.integers(0, 3, len(st))]
    shuffled = st.copy(positions=pos, spins=st.spins[perm])
    ev = ham.compute(shuffled)
    assert ev.energy == pytest.approx(e0, abs=1e-12)
    np.testing.assert_allclose(ev.energies, ham.compute(st).energies[perm], atol=1e-13)


def test_non_diagonal_supercell_matches_distance_shells():
    # template = bcc unit cell; state = a sheared supercell M = [[1,1,0],[-1,1,0],[0,0,2]] built
    # from lattice points; reference: the same shells built directly on the big state
    unit = bcc_unit()
    M = np.array([[1, 1, 0], [-1, 1, 0], [0, 0, 2]])
    big = unit.repeat((4, 4, 4))
    cell = M @ unit.cell
    pos = big.positions - 2 * unit.cell.sum(axis=0)
    frac = pos @ np.linalg.inv(cell)
    keep = np.all((frac > -1e-9) & (frac < 1 - 1e-9), axis=1)
    st = sl.State(pos[keep], big.numbers[keep], cell=cell, pbc=True,
                  moments=np.full(keep.sum(), 2.2), spins=np.random.default_rng(1).normal(size=(keep.sum(), 3)))
    assert len(st) == 2 * 4
    ham = Heisenberg.from_neighbors(unit, J=[0.01, 0.004, -0.001], D=[0.002, 0.001])
    direct = Heisenberg.from_neighbors(st, J=[0.01, 0.004, -0.001], D=[0.002, 0.001])
    a, b = ham.compute(st), direct.compute(st)
    assert a.energy == pytest.approx(b.energy, abs=1e-13)
    np.testing.assert_allclose(a.magnetic_forces, b.magnetic_forces, atol=1e-13)


def test_magnetic_forces_match_finite_differences():
    unit, ham = random_template(seed=7)
    st = bcc_fe((2, 2, 2), seed=8)
    st = st.copy(moments=np.random.default_rng(3).uniform(1.0, 3.0, len(st)))
    ev = ham.compute(st)
    atoms = (0, 3, 9)
    np.testing.assert_allclose(ev.magnetic_forces[list(atoms)], fd_magnetic_forces(ham, st, atoms), atol=1e-8)
    # purely transverse
    assert np.max(np.abs(np.sum(ev.magnetic_forces * st.spins, axis=1))) < 1e-14


def test_local_fields_equal_full_rows():
    ham = Heisenberg.from_tb2j(TB2J_FE)
    st = sl.State([[0, 0, 0]], [26], cell=ham.cell, pbc=True, moments=[2.3]).repeat((3, 3, 3))
    st = st.copy(spins=np.random.default_rng(0).normal(size=(len(st), 3)))
    full = ham.compute(st).magnetic_forces
    atoms = np.array([0, 5, 17, 26])
    np.testing.assert_allclose(ham.local_fields(st, None, atoms), full[atoms], atol=1e-15)


def test_non_magnetic_atoms_are_ignored():
    unit, ham = random_template(seed=9)
    st = bcc_fe((2, 2, 1), seed=1)
    moments = st.moments.copy()
    moments[[0, 3]] = 0.0
    st0 = st.copy(moments=moments)
    ev = ham.compute(st0)
    assert np.all(ev.magnetic_forces[[0, 3]] == 0) and np.all(ev.energies[[0, 3]] == 0)
    # same energy as the reference with those spins set to zero
    spins = st.spins.copy()
    spins[[0, 3]] = 0.0
    assert ev.energy == pytest.approx(reference_energy(ham, unit, (2, 2, 1), spins), abs=1e-12)


def test_periodic_repetition_scales_energy():
    ham = Heisenberg.from_tb2j(TB2J_FE)
    unit = sl.State([[0, 0, 0]], [26], cell=ham.cell, pbc=True, moments=[2.3])
    st = unit.repeat((3, 2, 3))
    st = st.copy(spins=np.random.default_rng(11).normal(size=(len(st), 3)))
    e = ham.compute(st).energy
    assert ham.compute(st.repeat((2, 2, 2))).energy == pytest.approx(8 * e, rel=1e-12)


def test_expansion_is_cached_and_rebuilt_when_needed():
    _, ham = random_template(seed=2)
    st = bcc_fe((2, 2, 2), seed=0)
    ham.compute(st)
    ex = ham._expansion
    ham.compute(st.copy(spins=-st.spins))
    assert ham._expansion is ex
    ham.compute(bcc_fe((2, 2, 3), seed=0))
    assert ham._expansion is not ex


def test_isotropic_bcc_shells():
    # J1 on the 8 nearest neighbours only: ferromagnetic energy −4 J1 per atom
    ham = Heisenberg.from_neighbors(bcc_unit(), J=[0.01])
    np.testing.assert_allclose(ham.shell_radii, [A * np.sqrt(3) / 2])
    st = bcc_unit().repeat((3, 3, 3))
    assert ham.compute(st).energy / len(st) == pytest.approx(-0.04, abs=1e-14)
    ham2 = Heisenberg.from_neighbors(bcc_unit(), J=[0.0, 0.01])  # 6 second neighbours
    assert ham2.compute(st).energy / len(st) == pytest.approx(-0.03, abs=1e-14)


def square_lattice(n=12, a=3.0):
    unit = sl.State([[0, 0, 0]], [26], cell=np.diag([a, a, 20.0]), pbc=[True, True, False], moments=[2.0])
    return unit, unit.repeat((n, 1, 1))


@pytest.mark.parametrize("dmi", ["bloch", "interfacial"])
def test_dmi_chirality_of_spirals(dmi):
    J, D = 0.01, 0.003
    unit, chain = square_lattice()
    ham = Heisenberg.from_neighbors(unit, J=[J], D=[D], dmi=dmi)
    n = len(chain)
    phi = 2 * np.pi / n
    theta = phi * np.arange(n)
    # Bloch spiral: spins turn in the plane normal to the propagation x; Néel: in the x-z plane
    bloch = np.stack([np.zeros(n), np.cos(theta), np.sin(theta)], 1)
    neel = np.stack([np.sin(theta), np.zeros(n), np.cos(theta)], 1)
    favoured, neutral = (bloch, neel) if dmi == "bloch" else (neel, bloch)
    e_plus = ham.compute(chain.copy(spins=favoured)).energy / n
    e_minus = ham.compute(chain.copy(spins=favoured * [1, 1, -1] if dmi == "bloch" else favoured * [-1, 1, 1])).energy / n
    # per atom: x bond −J cos φ − D sin φ (D_ij·(s_i × s_j) = D sin φ), y bond −J
    assert e_plus == pytest.approx(-J * np.cos(phi) - J - D * np.sin(phi), abs=1e-14)
    assert e_minus == pytest.approx(-J * np.cos(phi) - J + D * np.sin(phi), abs=1e-14)
    e_neutral = ham.compute(chain.copy(spins=neutral)).energy / n
    assert e_neutral == pytest.approx(-J * np.cos(phi) - J, abs=1e-14)


def test_dmi_matrix_convention():
    rng = np.random.default_rng(0)
    d, si, sj = rng.normal(size=(3, 3))
    assert si @ dmi_matrix(d) @ sj == pytest.approx(d @ np.cross(si, sj), abs=1e-14)
    np.testing.assert_allclose(dmi_vector(dmi_matrix(d)), d, atol=1e-15)


def test_on_site_tensor_is_single_ion_anisotropy():
    unit = bcc_unit()
    K = 0.002
    n = np.array([0.0, 0.0, 1.0])
    ham = Heisenberg(unit.cell, unit.positions, unit.numbers, [0, 1], [0, 1], np.zeros((2, 3)),
                     np.array([K * np.outer(n, n)] * 2))
    st = unit.copy(spins=[[1, 0, 1], [0, 1, 0]])
    assert ham.compute(st).energy == pytest.approx(-K * 0.5, abs=1e-15)
    np.testing.assert_allclose(ham.compute(st).magnetic_forces[:1],
                               fd_magnetic_forces(ham, st, (0,)), atol=1e-9)


def test_not_a_supercell_errors():
    _, ham = random_template()
    unit = bcc_unit()
    with pytest.raises(CellError, match="not a supercell"):
        ham.compute(unit.copy(cell=unit.cell * 1.5, positions=unit.positions * 1.5))
    with pytest.raises(CellError, match="strain"):
        ham.compute(unit.copy(cell=unit.cell * 1.2, positions=unit.positions * 1.2))
    with pytest.raises(InputError, match="atoms"):  # one atom missing
        big = unit.repeat((2, 1, 1))
        ham.compute(sl.State(big.positions[:3], big.numbers[:3], cell=big.cell, pbc=True))
    with pytest.raises(InputError, match="template site"):  # atom far from any site, whatever the translation
        big = unit.repeat((2, 1, 1))
        pos = big.positions.copy()
        pos[1] = [A / 2, A / 2, 0.0]
        ham.compute(big.copy(positions=pos))
    with pytest.raises(InputError, match="1 Fe, 1 Co, the template needs 2 Fe"):  # other species
        ham.compute(sl.State(unit.positions, [26, 27], cell=unit.cell, pbc=True))
    b2 = Heisenberg(unit.cell, unit.positions, [26, 27], [0], [1], [[0, 0, 0]], [0.01])
    swapped = sl.State(unit.repeat((2, 1, 1)).positions, [26, 27, 27, 26], cell=unit.cell * [[2], [1], [1]], pbc=True)
    with pytest.raises(InputError, match="Z=27 but sits on a template site of Z=26"):  # right counts, wrong sites
        b2.compute(swapped)
    with pytest.raises(CellError, match="pbc"):
        ham.compute(unit.copy(pbc=[True, True, False]))
    with pytest.raises(InputError, match="dmi"):
        Heisenberg.from_neighbors(unit, J=[0.01], D=[0.01], dmi="neel")
    with pytest.raises(InputError, match="out of range"):
        Heisenberg(unit.cell, unit.positions, unit.numbers, [0], [2], [[0, 0, 0]], [0.01])


SPIRIT_CFG = """\
bravais_lattice sc
n_basis_cells 10 10 1
boundary_conditions 1 1 0
lattice_constant 1.0
mu_s 1.0
ddi_method 0
log_to_console 0
log_to_file 0
"""


@pytest.mark.peers
@pytest.mark.parametrize("chirality, dmi, sign", [(1, "bloch", 1), (-1, "bloch", -1),
                                                  (2, "interfacial", -1), (-2, "interfacial", 1)])
def test_from_neighbors_matches_spirit(tmp_path, chirality, dmi, sign):
    """Spirit (float32 energies, meV): J and D per unique pair; Bloch chirality 1 = "bloch",
    Néel chirality 2 (D r̂ × ẑ) = "interfacial" with −D."""
    pytest.importorskip("spirit")
    from spirit import geometry, hamiltonian, state, system

    cfg = tmp_path / "input.cfg"
    cfg.write_text(SPIRIT_CFG)
    unit = sl.State([[0, 0, 0]], [26], cell=np.diag([1.0, 1.0, 10.0]), pbc=[True, True, False], moments=[1.0])
    ham = Heisenberg.from_neighbors(unit, J=[0.010], D=[sign * 0.006], dmi=dmi)
    rng = np.random.default_rng(chirality + 5)
    with state.State(str(cfg), quiet=True) as p:
        hamiltonian.set_exchange(p, 1, [10.0])
        hamiltonian.set_dmi(p, 1, [6.0], chirality=chirality)
        pos = np.array(geometry.get_positions(p)).reshape(-1, 3)
        st = sl.State(pos, [26] * len(pos), cell=np.diag([10.0, 10.0, 10.0]), pbc=[True, True, False],
                      moments=np.ones(len(pos)))
        for _ in range(3):
            s = rng.normal(size=(len(pos), 3))
            s /= np.linalg.norm(s, axis=1)[:, None]
            system.get_spin_directions(p)[:] = s
            system.update_data(p)
            e_spirit = system.get_energy(p) * 1e-3
            assert ham.compute(st.copy(spins=s)).energy == pytest.approx(e_spirit, abs=2e-7)


def test_open_cluster_without_cell():
    dimer = sl.State([[0, 0, 0], [0, 0, 2.0]], [26, 26], moments=[2.0, 1.0], spins=[[0, 0, 1], [1, 0, 1]])
    ham = Heisenberg.from_neighbors(dimer, J=[0.01], D=[0.002])
    s0, s1 = dimer.spins
    expected = -0.01 * s0 @ s1 - 0.002 * np.array([0, 0, 1.0]) @ np.cross(s0, s1)
    assert ham.compute(dimer).energy == pytest.approx(expected, abs=1e-15)
    np.testing.assert_allclose(ham.compute(dimer).magnetic_forces, fd_magnetic_forces(ham, dimer, (0, 1)), atol=1e-9)


def test_from_neighbors_warns_for_shells_without_a_magnetic_pair():
    """Shells count all atom pairs: in an ordered Fe-Pt cell with moment-0 Pt the nearest shell
    holds Fe-Pt pairs only, so its J acts on nothing; that is said in a warning naming the shell
    and the value (a shell with Fe-Fe pairs, or a state without moments, gives none)."""
    import warnings

    a = 3.8
    frac = np.array([[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    st = sl.State(frac * a, ["Fe", "Pt", "Pt", "Pt"], cell=np.eye(3) * a, pbc=True, moments=[2.5, 0.0, 0.0, 0.0])
    with pytest.warns(UserWarning, match=r"shell 1 \(2\.6870 Å\) holds no pair of two magnetic atoms .* "
                                         r"J\[0\] = 0\.01 eV acts on nothing") as rec:
        ham = Heisenberg.from_neighbors(st, J=[0.01, 0.02])
    assert len(rec) == 1  # shell 2 (3.8 Å, Fe-Fe along the cube edges) is fine
    # indeed: only the second shell's J reaches the energy (6 Fe-Fe bonds per Fe, 3 per cell)
    assert ham.compute(st).energy == pytest.approx(-3 * 0.02)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Heisenberg.from_neighbors(st.copy(moments=np.zeros(4)), J=[0.01])  # no moments: nothing to judge
        Heisenberg.from_neighbors(st.copy(moments=[2.5, 0.5, 0.5, 0.5]), J=[0.01])


def test_pair_tables_cannot_be_changed_after_construction():
    """``ham.J[0] *= 2`` or ``ham.J = ...`` after a compute: the expanded pair tables of the
    supercell keep the old couplings, so the energy did not change while the template said it
    had. The template's arrays are read-only and assigning them is refused, naming them."""
    from spinlat.errors import FixedParameterError

    st = bcc_fe((2, 2, 2), seed=2)
    ham = Heisenberg.from_neighbors(st, J=[0.01, 0.005])
    e = ham.compute(st).energy
    for name in ("J", "i", "j", "R", "cell", "positions"):
        arr = getattr(ham, name)
        with pytest.raises(ValueError, match="read-only"):
            arr[...] = 0
        with pytest.raises(FixedParameterError, match=rf"Heisenberg\.{name} is fixed.*new Heisenberg"):
            setattr(ham, name, arr.copy())
    assert ham.compute(st).energy == e
