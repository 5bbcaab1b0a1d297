"""State ⇄ pymatgen Structure / Molecule with vector Magmoms (optional dependency)."""

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import bcc_fe

import spinlat as sl
from spinlat.errors import FileFormatError, InputError

pmg = pytest.importorskip("pymatgen.core")
from pymatgen.electronic_structure.core import Magmom  # noqa: E402


def assert_same(a, b):
    """Equal to round-off; the direction of a zero moment (a non-magnetic atom) has no meaning and
    comes back as +z."""
    np.testing.assert_allclose(b.positions, a.positions, rtol=0, atol=1e-13)
    np.testing.assert_allclose(b.cell, a.cell, rtol=0, atol=0)
    np.testing.assert_array_equal(b.pbc, a.pbc)
    np.testing.assert_array_equal(b.numbers, a.numbers)
    mag = a.moments > 0
    np.testing.assert_allclose(b.spins[mag], a.spins[mag], rtol=0, atol=4e-16)
    np.testing.assert_array_equal(b.spins[~mag], np.tile([0.0, 0.0, 1.0], ((~mag).sum(), 1)))
    np.testing.assert_allclose(b.moments, a.moments, rtol=4e-16, atol=0)
    np.testing.assert_allclose(b.velocities, a.velocities, rtol=0, atol=0)
    np.testing.assert_array_equal(b.masses, a.masses)


def noncollinear():
    st = bcc_fe((2, 2, 2), seed=3)
    rng = np.random.default_rng(2)
    moments = rng.uniform(0.5, 2.5, len(st))
    moments[3] = 0.0  # a non-magnetic atom
    numbers = st.numbers.copy()
    numbers[5] = 27
    return st.copy(moments=moments, numbers=numbers, velocities=rng.normal(0, 0.01, (len(st), 3)),
                   masses=np.where(numbers == 27, 58.933194, 55.845))


@pytest.mark.parametrize("pbc", [(True, True, True), (True, True, False)])
def test_round_trip_structure(pbc):
    st = noncollinear().copy(pbc=pbc)
    s = sl.io.to_pymatgen(st)
    assert isinstance(s, pmg.Structure)
    assert tuple(s.lattice.pbc) == pbc
    # plain [mx, my, mz] lists: what Magmom(m).global_moment gives, and JSON-encodable
    assert all(type(m) is list for m in s.site_properties["magmom"])
    np.testing.assert_allclose([Magmom(m).global_moment for m in s.site_properties["magmom"]], st.magnetic_moments,
                               atol=0)
    assert s[5].specie.symbol == "Co"
    back = sl.io.from_pymatgen(s)
    assert_same(st, back)
    # through pymatgen's own JSON serialisation
    again = sl.io.from_pymatgen(pmg.Structure.from_dict(json.loads(s.to_json())))
    assert_same(st, again)


@pytest.mark.parametrize("route", ["json.dumps", "Structure.to json", "to_json", "Magmom objects", "Magmom dicts"])
def test_every_json_route_round_trips(tmp_path, route):
    """pymatgen's own file writer (orjson) cannot encode Magmom objects and json.dumps no numpy
    arrays: a converted structure is saved and read back through each route, exactly."""
    st = noncollinear().copy(pbc=(True, True, False))
    s = sl.io.to_pymatgen(st)
    if route == "json.dumps":
        back = pmg.Structure.from_dict(json.loads(json.dumps(s.as_dict())))
    elif route == "Structure.to json":
        s.to(filename=str(tmp_path / "s.json"))
        back = pmg.Structure.from_file(str(tmp_path / "s.json"))
    elif route == "to_json":
        back = pmg.Structure.from_dict(json.loads(s.to_json()))
    else:  # structures made elsewhere with Magmom objects (e.g. pymatgen's mcif reader)
        mags = [Magmom.from_global_moment_and_saxis(m, [1, 1, 0]) if i % 2 else Magmom(m)
                for i, m in enumerate(st.magnetic_moments)]
        back = s.copy(site_properties={"magmom": mags if route == "Magmom objects" else [m.as_dict() for m in mags]})
        got = sl.io.from_pymatgen(back)
        np.testing.assert_allclose(got.magnetic_moments, st.magnetic_moments, rtol=0, atol=1e-14)
        return
    assert_same(st, sl.io.from_pymatgen(back))


def test_selective_dynamics_are_refused_unless_ignored(tmp_path):
    """A POSCAR with selective dynamics read by pymatgen fixes coordinates that spinlat's
    dynamics would move: refused (naming the sites), like ASE constraints in State.from_ase."""
    from pymatgen.io.vasp import Poscar

    st = bcc_fe((1, 1, 1)).copy(moments=[2.2, 2.2])
    s = sl.io.to_pymatgen(st)
    s.add_site_property("selective_dynamics", [[True, True, True], [False, False, True]])
    Poscar(s).write_file(str(tmp_path / "POSCAR"))
    read = Poscar.from_file(str(tmp_path / "POSCAR")).structure
    with pytest.raises(InputError, match=r"selective_dynamics'\] fix coordinates of sites \[1\] \(1 of 2 sites\)"):
        sl.io.from_pymatgen(read)
    got = sl.io.from_pymatgen(read, constraints="ignore")
    np.testing.assert_allclose(got.positions, st.positions, atol=1e-12)
    free = s.copy(site_properties={"selective_dynamics": [[True] * 3] * 2})
    assert_same(st, sl.io.from_pymatgen(free))                   # nothing fixed: nothing to refuse


def test_standard_masses_and_rest_are_not_stored():
    st = bcc_fe((1, 1, 1))
    s = sl.io.to_pymatgen(st)
    assert set(s.site_properties) == {"magmom"}
    assert_same(st, sl.io.from_pymatgen(s))


def test_molecule_for_a_state_without_cell():
    st = noncollinear()
    cluster = sl.State(st.positions, st.numbers, spins=st.spins, moments=st.moments, velocities=st.velocities,
                       masses=st.masses)
    m = sl.io.to_pymatgen(cluster)
    assert isinstance(m, pmg.Molecule)
    assert_same(cluster, sl.io.from_pymatgen(m))


def test_other_magmom_forms():
    lattice = pmg.Lattice.cubic(2.8665)
    coords = [[0, 0, 0], [0.5, 0.5, 0.5]]
    collinear = pmg.Structure(lattice, ["Fe", "Fe"], coords, site_properties={"magmom": [2.2, -2.2]})
    st = sl.io.from_pymatgen(collinear)
    np.testing.assert_array_equal(st.spins, [[0, 0, 1], [0, 0, -1]])
    np.testing.assert_array_equal(st.moments, [2.2, 2.2])
    saxis = pmg.Structure(lattice, ["Fe", "Fe"], coords,
                          site_properties={"magmom": [Magmom([0, 0, 2.0], saxis=[1, 0, 0]), [0.0, 1.5, 0.0]]})
    st = sl.io.from_pymatgen(saxis)
    np.testing.assert_allclose(st.magnetic_moments, [[2.0, 0, 0], [0, 1.5, 0]], atol=1e-15)
    # moments on the species (pymatgen's magnetism analysis reads them when there is no magmom)
    species = pmg.Structure(lattice, [pmg.Species("Fe", 0, spin=2.2), pmg.Species("Fe", 0, spin=-2.1)], coords)
    st = sl.io.from_pymatgen(species)
    np.testing.assert_array_equal(st.magnetic_moments, [[0, 0, 2.2], [0, 0, -2.1]])
    none = sl.io.from_pymatgen(pmg.Structure(lattice, ["Fe", "Fe"], coords))
    np.testing.assert_array_equal(none.moments, [0.0, 0.0])
    bad = pmg.Structure(lattice, ["Fe", "Fe"], coords, site_properties={"magmom": [[1, 2], [0, 0]]})
    with pytest.raises(InputError, match="site 0"):
        sl.io.from_pymatgen(bad)
    with pytest.raises(InputError, match="site 1: magmom must be"):
        sl.io.from_pymatgen(pmg.Structure(lattice, ["Fe", "Fe"], coords, site_properties={"magmom": [1.0, "up"]}))
    disordered = pmg.Structure(lattice, [{"Fe": 0.5, "Co": 0.5}, "Fe"], coords)
    with pytest.raises(InputError, match="disordered"):
        sl.io.from_pymatgen(disordered)
    with pytest.raises(InputError, match="Structure"):
        sl.io.from_pymatgen(st)


def test_energy_unchanged_through_pymatgen():
    from spinlat.potentials import BetheSlaterExchange, Zeeman

    st = bcc_fe((3, 3, 3), seed=8)
    pot = BetheSlaterExchange(3.4, 0.02726, 0.2171, 1.841) + Zeeman([0, 0.5, 1.0])
    back = sl.io.from_pymatgen(sl.io.to_pymatgen(st))
    assert pot.compute(back).energy == pytest.approx(pot.compute(st).energy, abs=1e-12)


MNF2 = Path(__file__).parent.parent / "data" / "mcif" / "MnF2.mcif"


@pytest.mark.parametrize("name", ["MnF2.mcif", "MnF2.cif"])
def test_magnetic_cif_keeps_its_moments_and_magnetic_symmetry(tmp_path, name):
    """A magnetic CIF (MAGNDATA layout: P4_2'/mnm' operations with time reversal, one Mn moment
    along c): as .cif, ASE's reader gave Mn F (the asymmetric unit, no moments; the config then
    asked for structure.moments), as .mcif no reader at all. Read with pymatgen: Mn2 F4, the
    body-centre Mn reversed by the primed operations."""
    from spinlat.config import read_structure

    path = tmp_path / name
    path.write_bytes(MNF2.read_bytes())
    st = read_structure(path)
    assert st.symbols == ["Mn", "Mn", "F", "F", "F", "F"]
    np.testing.assert_allclose(st.cell, np.diag([4.8734, 4.8734, 3.2925]), rtol=0, atol=1e-14)
    np.testing.assert_allclose(st.positions[1], [4.8734 / 2, 4.8734 / 2, 3.2925 / 2], rtol=0, atol=1e-14)
    np.testing.assert_array_equal(st.magnetic_moments[:2], [[0.0, 0.0, 4.6], [0.0, 0.0, -4.6]])
    np.testing.assert_array_equal(st.moments[2:], 0.0)
    assert sl.io.convert(path, tmp_path / "m.h5") == 1
    with sl.io.Trajectory(tmp_path / "m.h5") as t:
        np.testing.assert_array_equal(t[0].magnetic_moments, st.magnetic_moments)
    # a run config reads it with its moments (no structure.moments needed)
    cfg = {"structure": {"file": str(path)}, "potential": {"type": "Zeeman", "B": [0, 0, 1.0]},
           "integrator": {"type": "LLG", "dt": 0.1}, "steps": 1}
    from spinlat import config

    built = config.build_structure(config.load(cfg))
    np.testing.assert_array_equal(built.magnetic_moments, st.magnetic_moments)


def test_trajectory_to_magnetic_cif_and_back(tmp_path):
    """spinlat convert TRAJ.h5 OUT.mcif writes the moments (ASE's CIF writer keeps none): VESTA
    and pymatgen read them; the round trip gives every atom's moment vector to 8 digits."""
    st = noncollinear()
    traj = tmp_path / "t.h5"
    with sl.io.TrajectoryWriter(traj, st) as w:
        w.write(st, 0, 0.0)
        w.write(st.copy(spins=-st.spins), 1, 1.0)
    with pytest.raises(InputError, match="a magnetic CIF holds one frame"):
        sl.io.convert(traj, tmp_path / "t.mcif")
    assert sl.io.convert(traj, tmp_path / "t.mcif", frames=-1) == 1
    back = sl.io.read_magnetic_cif(tmp_path / "t.mcif")
    assert back.velocities is None or not np.any(back.velocities)
    assert back.symbols == st.symbols  # the state's order (pymatgen's parser sorts by species)
    d = (back.positions - st.positions) @ np.linalg.inv(st.cell)
    np.testing.assert_allclose((d - np.round(d)) @ st.cell, 0.0, atol=1e-7)
    np.testing.assert_allclose(back.magnetic_moments, -st.magnetic_moments, rtol=0, atol=1e-7)


def test_trajectory_to_magnetic_cif_names_what_it_leaves_out(tmp_path):
    """A frame with velocities (a run's last frame) written as .mcif lost them without a word,
    unlike every other format spinlat convert writes (POSCAR, CIF, OVF say what they keep)."""
    st = noncollinear()
    moving = st.copy(velocities=np.full((len(st), 3), 0.01))
    with sl.io.TrajectoryWriter(tmp_path / "v.h5", moving) as w:
        w.write(moving, 0, 0.0)
    with pytest.warns(UserWarning, match=r"v.mcif: a magnetic CIF keeps positions, cell and moments only: the "
                                         r"velocities of the frame are not in it"):
        sl.io.convert(tmp_path / "v.h5", tmp_path / "v.mcif")
    rest = st.copy(velocities=np.zeros((len(st), 3)))
    with sl.io.TrajectoryWriter(tmp_path / "r.h5", rest) as w:   # at rest: nothing lost, no note
        w.write(rest, 0, 0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sl.io.convert(tmp_path / "r.h5", tmp_path / "r.mcif")


def test_magnetic_cif_atoms_follow_the_file_order(tmp_path):
    """pymatgen's CIF parser sorts the sites by species: an .mcif with rows O1 Fe1 O2 Co1 came
    back as Fe Fe Co Co O O O O, so atom i of the State was not row i of the file. The atoms now
    follow the rows, each row's images (here by inversion) after it, moments with their atoms;
    an interleaved State written and read back keeps its order. Two rows with one label and a
    moment loop cannot be read (the moments name atoms by label)."""
    path = Path(__file__).parent.parent / "data" / "mcif" / "interleaved.mcif"
    st = sl.io.read_magnetic_cif(path)
    assert st.symbols == ["O", "O", "Fe", "Fe", "O", "O", "Co", "Co"]
    frac = np.array([[0.1, 0.2, 0.3], [0.25, 0.25, 0.1], [0.4, 0.1, 0.2], [0.3, 0.1, 0.4]])
    np.testing.assert_allclose(st.positions[::2], frac * [4.0, 4.0, 6.0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(st.positions[1::2], (1 - frac) * [4.0, 4.0, 6.0], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(st.moments, [0, 0, 2.2, 2.2, 0, 0, 1.6, 1.6])
    np.testing.assert_array_equal(st.spins[2:4], [[1, 0, 0], [1, 0, 0]])
    np.testing.assert_array_equal(st.spins[6:], [[0, 1, 0], [0, 1, 0]])
    # writer round trip of an interleaved state
    mixed = st.copy(spins=np.array([[0, 0, 1], [0, 0, 1], [1, 0, 0], [0, -1, 0], [0, 0, 1], [0, 0, 1],
                                    [0, 0.6, 0.8], [0, 0, -1.0]]))
    sl.io.write_magnetic_cif(tmp_path / "w.mcif", mixed)
    with warnings.catch_warnings():  # P1: pymatgen's "no magnetic symmetry" note says nothing here
        warnings.simplefilter("error")
        back = sl.io.read_magnetic_cif(tmp_path / "w.mcif")
    assert back.symbols == mixed.symbols
    np.testing.assert_allclose(back.positions, mixed.positions, rtol=0, atol=1e-7)
    np.testing.assert_allclose(back.magnetic_moments, mixed.magnetic_moments, rtol=0, atol=1e-7)
    text = path.read_text().replace("O2 O 0.4", "O1 O 0.4")
    (tmp_path / "twice.mcif").write_text(text)
    with pytest.raises(FileFormatError, match=r"twice.mcif: data block 'inter' gives the label\(s\) \['O1'\] to "
                                              r"more than one _atom_site row"):
        sl.io.read_magnetic_cif(tmp_path / "twice.mcif")


def test_magnetic_cif_without_pymatgen_is_one_line(tmp_path, monkeypatch):
    """Without pymatgen's CIF module a magnetic CIF is refused naming pymatgen (not a traceback)."""
    import sys

    from spinlat.config import read_structure
    from spinlat.errors import ConfigError

    path = tmp_path / "MnF2.mcif"
    path.write_bytes(MNF2.read_bytes())
    monkeypatch.setitem(sys.modules, "pymatgen.io.cif", None)
    with pytest.raises(InputError, match="MnF2.mcif is a magnetic CIF, which spinlat reads with pymatgen"):
        sl.io.convert(path, tmp_path / "m.h5")
    with pytest.raises(ConfigError, match="structure.file: .*MnF2.mcif is a magnetic CIF, which spinlat reads with "
                                          "pymatgen"):
        read_structure(path)
    assert not (tmp_path / "m.h5").exists()


@pytest.mark.parametrize("edit", [
    lambda t: t.replace("_atom_site_moment.crystalaxis_", "_atom_site_moment.Cartn_"),
    lambda t: t.replace("Mn1 0 0 4.6", "Mn1 0 ? 4.6"),
], ids=["cartesian-columns", "unknown-value"])
def test_moments_pymatgen_cannot_read_are_refused(tmp_path, edit):
    """pymatgen reads only numeric crystalaxis_x/y/z moment columns and otherwise returns no
    moment at all: MnF2 with Cartn_x/y/z columns (or one '?') came back non-magnetic, silently."""
    path = tmp_path / "m.mcif"
    path.write_text(edit(MNF2.read_text()))
    with pytest.raises(FileFormatError, match=r"m.mcif: data block 'MnF2' lists moments .* but pymatgen read none"):
        sl.io.read_magnetic_cif(path)
