"""OVF 2.0 spin configurations: round trips, site order, and states moving between Spirit and spinlat."""

import re

import numpy as np
import pytest

import spinlat as sl
from spinlat import units
from spinlat.errors import FileFormatError, InputError, ShapeError, ZeroSpinError
from spinlat.potentials import Heisenberg, UniaxialAnisotropy, Zeeman

pytest.importorskip("ovf")

A = 2.8665


def bcc_unit(moment=2.2):
    return sl.State([[0, 0, 0], [A / 2, A / 2, A / 2]], [26, 26], cell=np.eye(3) * A, pbc=True,
                    moments=[moment, moment])


def random_spins(n, seed):
    s = np.random.default_rng(seed).normal(size=(n, 3))
    return s / np.linalg.norm(s, axis=1)[:, None]


def test_spirit_order_matches_spirits_formula():
    """Row ib + nb (i + n1 (j + n2 k)) of Spirit is the atom (i, j, k, ib) of State.repeat."""
    reps = (3, 2, 4)
    st = bcc_unit().repeat(reps)
    p = sl.io.spirit_order(reps, 2)
    pos = st.positions[p]
    for ib, (i, j, k) in [(0, (0, 0, 0)), (1, (2, 1, 3)), (0, (1, 0, 2)), (1, (0, 1, 0))]:
        row = ib + 2 * (i + 3 * (j + 2 * k))
        np.testing.assert_allclose(pos[row], np.array([i, j, k]) * A + ib * A / 2, atol=1e-12)
    np.testing.assert_array_equal(np.sort(p), np.arange(len(st)))


@pytest.mark.parametrize("fmt, atol", [("binary8", 0.0), ("text", 1e-11), ("csv", 1e-11), ("binary4", 1e-7)])
def test_round_trip_formats(tmp_path, fmt, atol):
    st = bcc_unit().repeat((3, 2, 2))
    st = st.copy(spins=random_spins(len(st), 1))
    p = tmp_path / f"s.{fmt}.ovf"
    sl.io.write_ovf(p, st, format=fmt, comment="line one\nline two", repeat=(3, 2, 2), title="spinlat\nrun 2")
    seg = sl.io.read_ovf(p)   # a line break in the title gave a file no reader opens
    assert seg.n_cells == (6, 2, 2) and seg.valuedim == 3 and seg.title == "spinlat; run 2"
    assert seg.comment == "line one; line two"
    back = sl.io.read_ovf(p, st.copy(spins=None), repeat=(3, 2, 2))
    # the file holds the format asked for (binary4 was written as Binary 8)
    data_line = re.search(rb"# Begin: Data ([^\n]*)", p.read_bytes()).group(1).decode().strip()
    assert data_line == {"binary8": "Binary 8", "binary4": "Binary 4", "text": "Text", "csv": "CSV"}[fmt]
    if atol == 0.0:
        np.testing.assert_array_equal(back.spins, st.spins)
    elif fmt == "binary4":   # float32 values, normalised again on reading
        f32 = st.spins.astype(np.float32).astype(np.float64)
        np.testing.assert_allclose(back.spins, f32 / np.linalg.norm(f32, axis=1)[:, None], rtol=0, atol=1e-15)
        assert np.max(np.abs(back.spins - st.spins)) > 1e-10
    else:
        np.testing.assert_allclose(back.spins, st.spins, rtol=0, atol=atol)
    np.testing.assert_array_equal(back.positions, st.positions)
    # without repeat the rows are in Spirit's order
    np.testing.assert_allclose(seg.vectors, st.spins[sl.io.spirit_order((3, 2, 2), 2)], atol=max(atol, 1e-300))


def test_segments_append_and_lists(tmp_path):
    st = bcc_unit().repeat((2, 2, 2))
    images = [st.copy(spins=random_spins(len(st), k)) for k in range(3)]
    p = tmp_path / "chain.ovf"
    sl.io.write_ovf(p, [im.spins for im in images[:2]])              # the rows as they are
    sl.io.write_ovf(p, images[2].spins, append=True, format="text")
    segs = sl.io.read_ovf_segments(p)
    assert len(segs) == 3
    np.testing.assert_array_equal(sl.io.read_ovf(p, st, segment=1).spins, images[1].spins)
    np.testing.assert_allclose(sl.io.read_ovf(p, st, segment=-1).spins, images[2].spins, atol=1e-11)


def test_errors(tmp_path):
    st = bcc_unit().repeat((2, 2, 2))
    p = tmp_path / "s.ovf"
    sl.io.write_ovf(p, st.spins)
    with pytest.raises(ShapeError, match="16 spins but the state has 2 atoms"):
        sl.io.read_ovf(p, bcc_unit())
    with pytest.raises(InputError, match="segment 3"):
        sl.io.read_ovf(p, st, segment=3)
    with pytest.raises(InputError, match="whole number of unit cells"):
        sl.io.read_ovf(p, st, repeat=(3, 1, 1))
    with pytest.raises(FileNotFoundError):
        sl.io.read_ovf(tmp_path / "missing.ovf")
    q = tmp_path / "bad.ovf"
    q.write_text("not an ovf file\n")
    with pytest.raises(FileFormatError, match="bad.ovf"):
        sl.io.read_ovf(q)
    with pytest.raises(InputError, match="format"):
        sl.io.write_ovf(p, st, format="binary16")
    zero = np.zeros((len(st), 3))
    sl.io.write_ovf(p, zero)
    with pytest.raises(ZeroSpinError):
        sl.io.read_ovf(p, st)
    nonmag = sl.io.read_ovf(p, st.copy(moments=np.zeros(len(st))))  # zero rows allowed on moment-0 atoms
    np.testing.assert_array_equal(nonmag.spins[:, 2], 1.0)


# ------------------------------------------------------------------------------ Spirit peers
SQUARE_CFG = """bravais_lattice sc
n_basis_cells 8 8 1
boundary_conditions 1 1 0
lattice_constant 1.0
mu_s 2.0
ddi_method 0
log_to_console 0
log_to_file 0
"""

def bcc_spirit_config(j1, j2, d2):
    """Spirit input for bcc Fe as an sc lattice with a 2-atom basis and explicit unique pairs
    (meV): 8 nearest-neighbour pairs 0→1 per cell (J1), the 3+3 second neighbours along the cube
    axes (J2, Bloch DMI D2 along the bond)."""
    nn = [(0, 0, 0), (-1, 0, 0), (0, -1, 0), (0, 0, -1), (-1, -1, 0), (-1, 0, -1), (0, -1, -1), (-1, -1, -1)]
    rows = [f"0 1 {a} {b} {c} {j1 * 1e3!r} 0 0 0 0" for a, b, c in nn]
    for i in (0, 1):
        for axis in np.eye(3, dtype=int):
            rows.append(f"{i} {i} {axis[0]} {axis[1]} {axis[2]} {j2 * 1e3!r} {d2 * 1e3!r} {axis[0]} {axis[1]} {axis[2]}")
    pairs = "\n".join(rows)
    return f"""bravais_lattice sc
basis
2
0.0 0.0 0.0
0.5 0.5 0.5
n_basis_cells 4 4 4
boundary_conditions 1 1 1
lattice_constant {A}
mu_s 2.2 2.2
hamiltonian heisenberg_pairs
n_interaction_pairs {len(rows)}
i j da db dc Jij Dij Dijx Dijy Dijz
{pairs}
ddi_method 0
log_to_console 0
log_to_file 0
"""


def spirit_energy_tolerance(e):
    """Spirit's get_energy is float32 in meV: a few ulp of |E|, plus round-off."""
    return 4 * np.spacing(np.float32(abs(e) * 1e3)).item() * 1e-3 + 1e-12


def spirit_mu_b():
    from spirit import constants

    return constants.mu_B * 1e-3  # eV/T


@pytest.mark.peers
@pytest.mark.parametrize("fmt", ["OVF_TEXT", "OVF_BIN4", "OVF_BIN8", "OVF_CSV"])
def test_spirit_writes_spinlat_reads(tmp_path, fmt):
    """Spirit's OVF (its own random state) read onto a State on Spirit's sites: spinlat's energy of the
    same Hamiltonian (J, Bloch DMI, K, B) equals Spirit's."""
    pytest.importorskip("spirit")
    from spirit import configuration, geometry, hamiltonian, io, state, system

    cfg = tmp_path / "in.cfg"
    cfg.write_text(SQUARE_CFG)
    J, D, K, B = 0.010, 0.006, 0.0005, 3.0  # eV, eV, eV, T
    path = tmp_path / "spirit.ovf"
    with state.State(str(cfg), quiet=True) as p:
        hamiltonian.set_exchange(p, 1, [J * 1e3])
        hamiltonian.set_dmi(p, 1, [D * 1e3], chirality=1)
        hamiltonian.set_anisotropy(p, K * 1e3, [0, 0, 1])
        hamiltonian.set_field(p, B, [0, 0, 1])
        configuration.random(p)
        system.update_data(p)
        e_spirit = system.get_energy(p) * 1e-3
        pos = np.array(geometry.get_positions(p)).reshape(-1, 3)
        io.image_write(p, str(path), fileformat=getattr(io, f"FILEFORMAT_{fmt}"))
    n = len(pos)
    unit = sl.State([[0, 0, 0]], [26], cell=np.diag([1.0, 1.0, 10.0]), pbc=[True, True, False], moments=[2.0])
    geometry_state = sl.State(pos, [26] * n, cell=np.diag([8.0, 8.0, 10.0]), pbc=[True, True, False],
                              moments=np.full(n, 2.0))
    st = sl.io.read_ovf(path, geometry_state)
    pot = (Heisenberg.from_neighbors(unit, J=[J], D=[D], dmi="bloch") + UniaxialAnisotropy(K, [0, 0, 1])
           + Zeeman([0, 0, B * spirit_mu_b() / units.MU_B]))
    e = pot.compute(st).energy
    # Spirit returns its energy as float32 (meV): 1e-7 relative; binary 4 stores float32 spins
    tol = spirit_energy_tolerance(e_spirit) + (2e-7 * n * (J + D) if fmt == "OVF_BIN4" else 0.0)
    print(f"{fmt}: spinlat {e:.12f} eV, Spirit {e_spirit:.12f} eV, difference {e - e_spirit:.2e}")
    assert e == pytest.approx(e_spirit, abs=tol)


@pytest.mark.peers
@pytest.mark.parametrize("fmt", ["binary8", "text"])
def test_spinlat_writes_spirit_reads_and_back(tmp_path, fmt):
    """A spinlat state of bcc Fe made with State.repeat (2-atom cubic cell) → OVF in Spirit's order →
    Spirit (sc lattice with a 2-atom basis, explicit pairs) reads it: Spirit's energy equals spinlat's; Spirit's own
    OVF of it comes back into the State.repeat order unchanged."""
    pytest.importorskip("spirit")
    from spirit import geometry, hamiltonian, io, state, system

    reps = (4, 4, 4)
    J1, J2, D2, K, B = 0.015, 0.004, 0.002, 0.0003, 2.0
    unit = bcc_unit()
    st = unit.repeat(reps)
    st = st.copy(spins=random_spins(len(st), 9))
    path = tmp_path / "spinlat.ovf"
    sl.io.write_ovf(path, st, repeat=reps, format=fmt)
    cfg = tmp_path / "in.cfg"
    cfg.write_text(bcc_spirit_config(J1, J2, D2))
    back_path = tmp_path / "spirit.ovf"
    with state.State(str(cfg), quiet=True) as p:
        hamiltonian.set_anisotropy(p, K * 1e3, [1, 0, 0])
        hamiltonian.set_field(p, B, [0, 1, 0])
        pos = np.array(geometry.get_positions(p)).reshape(-1, 3)
        # Spirit's sites are spinlat's atoms in the documented order
        np.testing.assert_allclose(pos, st.positions[sl.io.spirit_order(reps, 2)], atol=1e-10)
        io.image_read(p, str(path))
        system.update_data(p)
        e_spirit = system.get_energy(p) * 1e-3
        io.image_write(p, str(back_path), fileformat=io.FILEFORMAT_OVF_BIN8)
    pot = (Heisenberg.from_neighbors(unit, J=[J1, J2], D=[0.0, D2], dmi="bloch") + UniaxialAnisotropy(K, [1, 0, 0])
           + Zeeman([0, B * spirit_mu_b() / units.MU_B, 0]))
    e = pot.compute(st).energy
    print(f"{fmt}: spinlat {e:.12f} eV, Spirit {e_spirit:.12f} eV, difference {e - e_spirit:.2e}")
    assert e == pytest.approx(e_spirit, abs=spirit_energy_tolerance(e_spirit))
    again = sl.io.read_ovf(back_path, st, repeat=reps)
    np.testing.assert_allclose(again.spins, st.spins, rtol=0, atol=1e-11 if fmt == "text" else 1e-15)


def test_repeat_must_match_the_files_mesh(tmp_path):
    """Reading with repeat reorders the rows from Spirit's order: a file of another supercell of
    the same size (4×2×1 read as 2×2×2) or in plain row order would come back scrambled, so the
    mesh (nb·n1, n2, n3) is checked."""
    unit = bcc_unit()
    st = unit.repeat((4, 2, 1))
    st = st.copy(spins=random_spins(len(st), 3))
    sl.io.write_ovf(tmp_path / "421.ovf", st, repeat=(4, 2, 1))
    assert sl.io.read_ovf(tmp_path / "421.ovf").n_cells == (8, 2, 1)
    other = unit.repeat((2, 2, 2))
    with pytest.raises(ShapeError, match=r"mesh of \(8, 2, 1\) nodes, but repeat=\(2, 2, 2\) puts the 16 atoms on "
                                         r"Spirit's mesh \(4, 2, 2\)"):
        sl.io.read_ovf(tmp_path / "421.ovf", other, repeat=(2, 2, 2))
    back = sl.io.read_ovf(tmp_path / "421.ovf", st, repeat=(4, 2, 1))
    np.testing.assert_array_equal(back.spins, st.spins)
    sl.io.write_ovf(tmp_path / "rows.ovf", st.spins)  # state order, nodes (16, 1, 1)
    with pytest.raises(ShapeError, match=r"mesh of \(16, 1, 1\) nodes"):
        sl.io.read_ovf(tmp_path / "rows.ovf", st, repeat=(4, 2, 1))
    np.testing.assert_array_equal(sl.io.read_ovf(tmp_path / "rows.ovf", st).spins, st.spins)


@pytest.mark.parametrize("reps, nb", [((4, 2, 1), 2), ((2, 2, 2), 2), ((1, 3, 2), 2), ((3, 1, 2), 1),
                                      ((2, 3, 4), 2)])
def test_writer_refuses_a_repeated_state_without_repeat(tmp_path, reps, nb):
    """Spirit reads an OVF's rows in its own order whatever the mesh (checked with Spirit 2.2: a
    file of nodes (N, 1, 1) in State.repeat order goes onto the wrong sites), so the writer refuses
    what the reader refuses: a State in unit.repeat order written with repeat=None. The repeat
    found from the positions is the one to pass, and the spins array writes the rows as they are."""
    unit = bcc_unit() if nb == 2 else sl.State([[0, 0, 0]], [26], cell=np.eye(3) * A, pbc=True, moments=[2.2])
    st = unit.repeat(reps)
    st = st.copy(spins=random_spins(len(st), 4))
    with pytest.raises(ShapeError, match=rf"unit.repeat\({re.escape(str(reps))}\).*pass repeat="
                                         rf"{re.escape(str(reps))} to write Spirit's order"):
        sl.io.write_ovf(tmp_path / "s.ovf", st)
    with pytest.raises(ShapeError, match="unit.repeat"):
        sl.io.write_ovf(tmp_path / "s.ovf", [st, st])
    sl.io.write_ovf(tmp_path / "s.ovf", st, repeat=reps)
    np.testing.assert_array_equal(sl.io.read_ovf(tmp_path / "s.ovf", st, repeat=reps).spins, st.spins)
    sl.io.write_ovf(tmp_path / "rows.ovf", st.spins)
    np.testing.assert_array_equal(sl.io.read_ovf(tmp_path / "rows.ovf", st).spins, st.spins)
    # a state already in Spirit's order (built from Spirit's positions), or a repeat along one
    # axis only (the two orders agree), is written as it is
    spirit = st.copy(positions=st.positions[sl.io.spirit_order(reps, nb)], spins=st.spins[sl.io.spirit_order(reps, nb)])
    sl.io.write_ovf(tmp_path / "spirit.ovf", spirit)
    np.testing.assert_array_equal(sl.io.read_ovf(tmp_path / "spirit.ovf", spirit).spins, spirit.spins)
    sl.io.write_ovf(tmp_path / "line.ovf", unit.repeat((5, 1, 1)))
    sl.io.write_ovf(tmp_path / "one.ovf", unit)
    # after spin-lattice dynamics the atoms are off their sites (here 0.1 Å rms): still refused,
    # by the writer and by the reader of the Spirit-order file written with repeat
    hot = st.copy(positions=st.positions + np.random.default_rng(7).normal(0.0, 0.1, st.positions.shape))
    with pytest.raises(ShapeError, match=rf"pass repeat={re.escape(str(reps))}"):
        sl.io.write_ovf(tmp_path / "hot.ovf", hot)
    with pytest.raises(ShapeError, match=rf"pass repeat={re.escape(str(reps))} to put the rows in the state's order"):
        sl.io.read_ovf(tmp_path / "s.ovf", hot)
    np.testing.assert_array_equal(sl.io.read_ovf(tmp_path / "s.ovf", hot, repeat=reps).spins, st.spins)


@pytest.mark.peers
def test_chain_round_trip_through_spirit(tmp_path):
    """A GNEB-like chain of 3 images written by spinlat (one segment each, Spirit's order) is read
    by Spirit's chain_read, written by its chain_write, and comes back into State.repeat order
    image by image."""
    pytest.importorskip("spirit")
    from spirit import chain, io, state

    reps = (4, 4, 4)
    unit = bcc_unit()
    st = unit.repeat(reps)
    images = [st.copy(spins=random_spins(len(st), 20 + k)) for k in range(3)]
    path = tmp_path / "chain.ovf"
    sl.io.write_ovf(path, images, repeat=reps)
    assert len(sl.io.read_ovf_segments(path)) == 3
    cfg = tmp_path / "in.cfg"
    cfg.write_text(bcc_spirit_config(0.01, 0.0, 0.0))
    back_path = tmp_path / "spirit_chain.ovf"
    with state.State(str(cfg), quiet=True) as p:
        chain.set_length(p, 3)
        io.chain_read(p, str(path))
        assert chain.get_noi(p) == 3
        io.chain_write(p, str(back_path), fileformat=io.FILEFORMAT_OVF_BIN8)
    segs = sl.io.read_ovf_segments(back_path)
    assert len(segs) == 3 and all(s.n_cells == (8, 4, 4) for s in segs)
    for k, image in enumerate(images):
        again = sl.io.read_ovf(back_path, st, segment=k, repeat=reps)
        np.testing.assert_allclose(again.spins, image.spins, rtol=0, atol=1e-15, err_msg=f"image {k}")


def test_spirit_ordered_file_read_without_repeat_into_a_repeated_state_is_refused(tmp_path):
    """Spirit's site order (basis, then a, b, c) read with repeat=None onto ``unit.repeat`` (c
    fastest) scrambled the spins silently; the state's geometry tells which order it has."""
    unit = bcc_unit()
    st = unit.repeat((3, 2, 2))
    st = st.copy(spins=random_spins(len(st), 5))
    sl.io.write_ovf(tmp_path / "s.ovf", st, repeat=(3, 2, 2))  # Spirit's order and mesh (6, 2, 2)
    with pytest.raises(ShapeError, match=r"in Spirit's site order \(mesh \(6, 2, 2\).*unit.repeat\(\(3, 2, 2\)\).*"
                                         r"pass repeat=\(3, 2, 2\)"):
        sl.io.read_ovf(tmp_path / "s.ovf", st)
    np.testing.assert_array_equal(sl.io.read_ovf(tmp_path / "s.ovf", st, repeat=(3, 2, 2)).spins, st.spins)
    # the same sites in Spirit's order (a state built from Spirit's positions): read as they are
    p = sl.io.spirit_order((3, 2, 2), 2)
    spirit_state = sl.State(st.positions[p], st.numbers[p], cell=st.cell, pbc=True, moments=st.moments[p])
    np.testing.assert_array_equal(sl.io.read_ovf(tmp_path / "s.ovf", spirit_state).spins, st.spins[p])
    # rattled positions (a state after spin-lattice dynamics) are still on their sites in
    # unit.repeat order: refused as well (they were read scrambled); atoms in neither order
    # (shuffled) are read as they are: nothing is claimed
    rattled = st.copy(positions=st.positions + np.random.default_rng(0).normal(0, 0.05, st.positions.shape))
    with pytest.raises(ShapeError, match=r"pass repeat=\(3, 2, 2\)"):
        sl.io.read_ovf(tmp_path / "s.ovf", rattled)
    shuffled = st.copy(positions=st.positions[np.random.default_rng(1).permutation(len(st))])
    assert len(sl.io.read_ovf(tmp_path / "s.ovf", shuffled)) == 24


def test_segments_of_another_atom_count_are_refused(tmp_path):
    """write_ovf(append=True) added a 2-atom segment to a 16-spin chain: a file Spirit reads as a
    chain of images of one system, now refused naming both counts (the file left as it was)."""
    st = bcc_unit().repeat((2, 2, 2))
    p = tmp_path / "chain.ovf"
    sl.io.write_ovf(p, st.spins)
    before = p.read_bytes()
    with pytest.raises(ShapeError, match="holds segments of 16 spins, another segment 2"):
        sl.io.write_ovf(p, bcc_unit().spins, append=True)
    assert p.read_bytes() == before
    with pytest.raises(ShapeError, match="segment 0 has 16 spins, another segment 2"):
        sl.io.write_ovf(tmp_path / "mixed.ovf", [st.spins, bcc_unit().spins])
    assert not (tmp_path / "mixed.ovf").exists()
    (tmp_path / "text.ovf").write_text("not an OVF file\n")
    with pytest.raises(FileFormatError, match="not an OVF file with a segment"):
        sl.io.write_ovf(tmp_path / "text.ovf", st.spins, append=True)


def test_ovf_1_file_is_named(tmp_path):
    """An OOMMF OVF 1.0 file was 'not an OVF file (libovf initial: pegtl parse error ...version)'."""
    p = tmp_path / "old.ovf"
    p.write_text("# OOMMF: rectangular mesh v1.0\n# Segment count: 1\n# Begin: Segment\n# Begin: Header\n"
                 "# xnodes: 1\n# ynodes: 1\n# znodes: 1\n# End: Header\n# Begin: Data Text\n1 0 0\n"
                 "# End: Data Text\n# End: Segment\n")
    with pytest.raises(FileFormatError, match=r"old.ovf: an OVF 1.0 file \('# OOMMF: rectangular mesh v1.0'\); "
                                              "spinlat reads OVF 2.0"):
        sl.io.read_ovf_segments(p)
    p.write_text("hello\n")
    with pytest.raises(FileFormatError, match="old.ovf: not an OVF file"):
        sl.io.read_ovf_segments(p)
