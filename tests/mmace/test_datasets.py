"""The synthetic teacher Hamiltonian: exact labels, symmetries, sensible lattice constants."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

import spinlat as sl
from spinlat import datasets
from spinlat.errors import ConfigError, UnknownElementError

from conftest import fd_forces, fd_magnetic_forces, fd_stress


def _labels(atoms, soc=True, magmoms=None, positions=None, cell=None):
    ham = datasets.TeacherHamiltonian(soc)
    return ham.evaluate(atoms.positions if positions is None else positions, atoms.numbers,
                        np.array(atoms.cell) if cell is None else cell, atoms.pbc,
                        atoms.arrays["magmoms"] if magmoms is None else magmoms)


@pytest.mark.parametrize("system", ["Fe", "FeNi"])
def test_labels_match_finite_differences(system):
    atoms = datasets.teacher(system, 1, seed=3, soc=True)[0]
    pot = datasets.teacher_potential(soc=True)
    st = sl.State.from_ase(atoms)
    ev = pot.compute(st, stress=True)
    assert ev.energy == pytest.approx(atoms.info["energy"], rel=1e-12)
    assert np.allclose(ev.forces, atoms.arrays["forces"], atol=1e-12)
    assert np.allclose(ev.magnetic_forces, atoms.arrays["magnetic_forces"], atol=1e-12)
    assert np.allclose(ev.stress, atoms.info["stress"], atol=1e-12)
    idx = (0, 11)
    assert np.allclose(fd_forces(pot, st, idx), atoms.arrays["forces"][list(idx)], atol=1e-7)
    assert np.allclose(fd_magnetic_forces(pot, st, idx), atoms.arrays["magnetic_forces"][list(idx)], atol=1e-7)
    assert np.allclose(fd_stress(pot, st), atoms.info["stress"], atol=1e-8)
    assert np.isclose(ev.energies.sum(), ev.energy)


def test_time_reversal():
    atoms = datasets.teacher("FeNi", 1, seed=1, soc=True)[0]
    a = _labels(atoms)
    b = _labels(atoms, magmoms=-atoms.arrays["magmoms"])
    assert b["energy"] == pytest.approx(a["energy"], rel=1e-14)
    assert np.allclose(b["forces"], a["forces"], atol=1e-12)
    assert np.allclose(b["magnetic_forces"], -a["magnetic_forces"], atol=1e-12)
    assert np.allclose(b["stress"], a["stress"], atol=1e-14)


def test_spin_rotation_symmetry_depends_on_soc():
    atoms = datasets.teacher("Fe", 1, seed=2, soc=True)[0]
    R = Rotation.random(random_state=7).as_matrix()
    m = atoms.arrays["magmoms"]
    # soc=False: rotating the moments alone changes nothing but the direction of h
    a, b = _labels(atoms, soc=False), _labels(atoms, soc=False, magmoms=m @ R.T)
    assert b["energy"] == pytest.approx(a["energy"], rel=1e-13)
    assert np.allclose(b["forces"], a["forces"], atol=1e-11)
    assert np.allclose(b["magnetic_forces"], a["magnetic_forces"] @ R.T, atol=1e-11)
    # soc=True: the spin-only rotation changes the energy (DMI, anisotropy) ...
    c, d = _labels(atoms, soc=True), _labels(atoms, soc=True, magmoms=m @ R.T)
    assert abs(d["energy"] - c["energy"]) > 1e-4
    # ... but a joint rotation of lattice and moments does not
    e = _labels(atoms, soc=True, magmoms=m @ R.T, positions=atoms.positions @ R.T, cell=np.array(atoms.cell) @ R.T)
    assert e["energy"] == pytest.approx(c["energy"], rel=1e-13)
    assert np.allclose(e["forces"], c["forces"] @ R.T, atol=1e-11)
    assert np.allclose(e["magnetic_forces"], c["magnetic_forces"] @ R.T, atol=1e-11)


def test_soc_terms_vanish_in_perfect_ferromagnet_dmi_and_cubic_symmetry():
    """In a perfect bcc ferromagnet the three-site DMI cancels and the cubic anisotropy terms are
    direction independent, so soc only shifts the energy by a constant."""
    from ase.build import bulk

    at = bulk("Fe", "bcc", a=datasets.A_BCC_FE, cubic=True).repeat(2)
    energies = []
    for direction in ([0, 0, 1], [1, 1, 0], [1, 1, 1]):
        m = np.tile(np.asarray(direction, float) / np.linalg.norm(direction) * 2.2, (len(at), 1))
        energies.append(_labels(at, soc=True, magmoms=m)["energy"])
    assert np.ptp(energies) < 1e-12


@pytest.mark.parametrize("symbol,structure,a0,m0", [("Fe", "bcc", datasets.A_BCC_FE, 2.2),
                                                     ("Ni", "fcc", datasets.A_FCC_NI, 0.6)])
def test_lattice_constant(symbol, structure, a0, m0):
    from ase.build import bulk

    def energy(a):
        at = bulk(symbol, structure, a=a, cubic=True)
        m = np.zeros((len(at), 3))
        m[:, 2] = m0
        return _labels(at, magmoms=m)["energy"] / len(at)

    h = 0.01
    slope = (energy(a0 + h) - energy(a0 - h)) / (2 * h)
    curvature = (energy(a0 + h) - 2 * energy(a0) + energy(a0 - h)) / h**2
    assert curvature > 0
    assert abs(slope / curvature) < 0.002 * a0  # minimum within 0.2 %


def test_dataset_contents_and_determinism(tmp_path):
    data = datasets.teacher("FeNi", 4, seed=11, soc=False, path=tmp_path / "feni.extxyz")
    again = datasets.teacher("FeNi", 4, seed=11, soc=False)
    for a, b in zip(data, again):
        assert np.array_equal(a.positions, b.positions)
        assert a.info["energy"] == b.info["energy"]
    for at in data:
        assert 8 <= len(at) <= 32
        assert set(at.numbers) <= {26, 28}
        assert "synthetic teacher" in at.info["source"]
        for key in ("forces", "magmoms", "magnetic_forces"):
            assert at.arrays[key].shape == (len(at), 3)
        assert np.shape(at.info["stress"]) == (6,)
    back = sl.io.read_extxyz(tmp_path / "feni.extxyz")
    assert len(back) == 4
    assert np.allclose(back[2].arrays["magnetic_forces"], data[2].arrays["magnetic_forces"], atol=0, rtol=1e-15)
    assert back[2].info["energy"] == data[2].info["energy"]


def test_moments_are_varied():
    data = datasets.teacher("Fe", 30, seed=0)
    mags = np.concatenate([np.linalg.norm(a.arrays["magmoms"], axis=1) for a in data])
    assert mags.min() < 0.2 * 2.2 and mags.max() > 1.2 * 2.2
    assert np.std([a.info["energy"] / len(a) for a in data]) > 0.02


def test_bad_input():
    with pytest.raises(ConfigError, match="system"):
        datasets.teacher("Co", 2, seed=0)
    with pytest.raises(ConfigError, match="teacher: unknown keyword 'temperature'; expected one of max_displacement"):
        datasets.teacher("Fe", 2, seed=0, temperature=3)
    from ase.build import bulk

    at = bulk("Co", "hcp", a=2.5)
    with pytest.raises(UnknownElementError, match="Co"):
        datasets.TeacherHamiltonian().label(at, magmoms=np.zeros((len(at), 3)))
