"""Heisenberg.from_tb2j against magnopy's TB2J reader and classical energy.

magnopy 0.6 cannot read the old TB2J 0.2.x layout of ../shared/data/tb2j/bccFe/exchange.out
(its pair lines are ``0(Fe1  )``), so the same data written in TB2J's newer layout
(tests/data/tb2j/bccFe_new_format.out, produced by ``spinlat.io.tb2j.write_tb2j``; the old-layout
file gives identical energies, see tests/io/test_tb2j.py) is compared, plus a synthetic file with DMI
and symmetric anisotropic exchange. magnopy evaluates E = −Σ over every listed bond of sᵢᵀ J sⱼ in
meV on the unit cell or on a supercell built by ``magnopy.make_supercell``; its atoms are matched
to spinlat's by fractional position.
"""

from pathlib import Path

import numpy as np
import pytest

from spinlat.io.tb2j import read_tb2j

magnopy = pytest.importorskip("magnopy")

pytestmark = pytest.mark.peers

DATA = Path(__file__).resolve().parent / "data" / "tb2j"
FILES = ["bccFe_new_format.out", "bccFe_dmi_new_format.out"]


def random_directions(rng, n):
    s = rng.normal(size=(n, 3))
    return s / np.linalg.norm(s, axis=1)[:, None]


@pytest.mark.parametrize("name", FILES)
def test_unit_cell_energies_equal_magnopy(name):
    st, ham = read_tb2j(DATA / name)
    energy = magnopy.Energy(magnopy.io.load_tb2j(str(DATA / name)))
    rng = np.random.default_rng(0)
    for s in [np.array([[0.0, 0.0, 1.0]]), np.array([[1.0, 1.0, 0.0]]) / np.sqrt(2), *random_directions(rng, 5)[:, None]]:
        ours = ham.compute(st.copy(spins=s)).energy
        theirs = energy(s) * 1e-3  # meV → eV
        assert ours == pytest.approx(theirs, abs=1e-11 * max(1.0, abs(theirs)))


@pytest.mark.parametrize("name", FILES)
@pytest.mark.parametrize("reps", [(2, 2, 2), (3, 1, 2)])
def test_supercell_random_spins_equal_magnopy(name, reps):
    st, ham = read_tb2j(DATA / name)
    spinham = magnopy.make_supercell(magnopy.io.load_tb2j(str(DATA / name)), reps)
    energy = magnopy.Energy(spinham)
    big = st.repeat(reps)
    # magnopy's atom a ↔ ours: same fractional position in the supercell
    f_m = np.array(spinham.atoms.positions, dtype=float)
    f_o = big.positions @ np.linalg.inv(big.cell)
    d = f_m[:, None, :] - f_o[None, :, :]
    d -= np.round(d)
    perm = np.argmin(np.linalg.norm(d, axis=2), axis=1)
    assert sorted(perm) == list(range(len(big)))
    rng = np.random.default_rng(1)
    for _ in range(4):
        s = random_directions(rng, len(big))
        ours_spins = np.empty_like(s)
        ours_spins[perm] = s
        ours = ham.compute(big.copy(spins=ours_spins)).energy
        theirs = energy(s) * 1e-3
        assert ours == pytest.approx(theirs, abs=1e-11 * max(1.0, abs(theirs)))
