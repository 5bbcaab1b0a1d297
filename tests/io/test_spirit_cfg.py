"""sl.io.read_spirit_cfg: Spirit input files (geometry + Heisenberg Hamiltonian) as a State and a
spinlat potential; energies against a hand computation and against Spirit itself (peers)."""

from pathlib import Path

import numpy as np
import pytest

import spinlat as sl
from spinlat.errors import FileFormatError, InputError

DATA = Path(__file__).parent.parent / "data" / "spirit"


def _unit(n, seed):
    s = np.random.default_rng(seed).normal(size=(n, 3))
    return s / np.linalg.norm(s, axis=1)[:, None]


def test_pairs_by_hand(tmp_path):
    """A chain of 3 cells (periodic along a, open along b and c), one pair (0, 0, +a) with J and
    D, anisotropy and field: E = Σ_cells −J s_i·s_i+1 − D·(s_i × s_i+1) − Σ K (k·s)² − μ B·s
    (meV → eV, μ_B in eV/T), each bond once; the reversed pair given again adds J and −D."""
    cfg = tmp_path / "c.cfg"
    cfg.write_text("hamiltonian heisenberg_pairs\nboundary_conditions 1 0 0\nbravais_lattice sc\n"
                   "lattice_constant 2.0\nn_basis_cells 3 1 1\nmu_s 2.0\nexternal_field_magnitude 3\n"
                   "external_field_normal 0 0 2\nanisotropy_magnitude 0.5\nanisotropy_normal 1 0 0\n"
                   "n_interaction_pairs 2\nJij i j da db dc Dijx Dijy Dijz   # columns in any order\n"
                   "4.0 0 0 1 0 0 0 0 1.5\n1.0 0 0 -1 0 0 0 0 -0.5\n")
    st, pot = sl.io.read_spirit_cfg(cfg)
    np.testing.assert_array_equal(st.positions[:, 0], [0.0, 2.0, 4.0])
    np.testing.assert_array_equal(st.pbc, [True, False, False])
    np.testing.assert_array_equal(st.moments, 2.0)
    s = _unit(3, 1)
    J, D = 5.0e-3, np.array([0, 0, 2.0e-3])
    e = sum(-J * s[k] @ s[(k + 1) % 3] - D @ np.cross(s[k], s[(k + 1) % 3]) for k in range(3))
    e += sum(-0.5e-3 * s[k, 0] ** 2 - 2.0 * sl.units.MU_B * 3.0 * s[k, 2] for k in range(3))
    assert pot.compute(st.copy(spins=s)).energy == pytest.approx(e, rel=1e-13, abs=1e-16)


def test_open_boundaries_drop_pairs_and_files_are_found(tmp_path):
    """Open along a: the bond from the last cell leaves the box (Spirit drops it); the pairs may
    sit in their own file, found beside the config."""
    (tmp_path / "pairs.txt").write_text("i j da db dc Jij\n0 0 1 0 0 2.0\n")
    cfg = tmp_path / "o.cfg"
    cfg.write_text("hamiltonian heisenberg_pairs\nboundary_conditions 0 0 0\nn_basis_cells 3 1 1\nmu_s 1\n"
                   "interaction_pairs_file pairs.txt\n")
    st, pot = sl.io.read_spirit_cfg(cfg)
    s = _unit(3, 2)
    assert pot.compute(st.copy(spins=s)).energy == pytest.approx(-2e-3 * (s[0] @ s[1] + s[1] @ s[2]), rel=1e-13)


@pytest.mark.parametrize("text, match", [
    ("hamiltonian gaussian\n", "hamiltonian 'gaussian'"),
    ("hamiltonian heisenberg_pairs\nn_interaction_pairs 1\ni j da db dc Dija Dijb Dijc\n0 0 1 0 0 1 0 0\n",
     "Dija.*Cartesian"),
    ("hamiltonian heisenberg_pairs\nn_interaction_pairs 2\ni j da db dc Jij\n0 0 1 0 0 1\n", "announces 2 rows"),
    ("hamiltonian heisenberg_pairs\nn_interaction_pairs 2\ni j da db dc Jij\n0 0 1 0 0 1\nn_basis_cells 1 1 1\n",
     r"line 6: interaction pairs row needs 6 values \(i j da db dc Jij\), got 'n_basis_cells 1 1 1'"),
    ("hamiltonian heisenberg_pairs\nn_interaction_pairs 1\ni j da db dc Jij\n0 1 1 0 0 1\n", "outside 0..0"),
    ("hamiltonian heisenberg_pairs\nn_interaction_pairs 1\ni j da db dc Jij\n0 0 1 0 x 1\n",
     "line 5: dc: expected an integer"),
    ("bravais_lattice hcp\n", "bravais_lattice 'hcp'"),
    ("n_basis_cells 2 2\n", "line 2: n_basis_cells needs 3 value"),
    ("basis\n2\n0 0 0\n", r"basis \(line 3\) needs 2 row"),
])
def test_bad_files_name_the_problem(tmp_path, text, match):
    cfg = tmp_path / "bad.cfg"
    cfg.write_text("mu_s 1\n" + text)
    with pytest.raises(FileFormatError, match=match):
        sl.io.read_spirit_cfg(cfg)


@pytest.mark.parametrize("text, name, where", [
    ("ddi_method fft\n", "ddi", "line 3: ddi_method fft"),
    ("pin_na_left 1\n", "pinning", "line 3: pin_na_left"),
])
def test_terms_spinlat_lacks_are_refused_unless_dropped(tmp_path, text, name, where):
    """Dipolar, quadruplet and pinning terms were only named in a UserWarning (easy to miss: the
    energies silently differed from Spirit's): now a FileFormatError naming the key and its line
    and the drop option; with drop the rest of the Hamiltonian reads unchanged."""
    cfg = tmp_path / "d.cfg"
    base = "n_basis_cells 2 2 1\nmu_s 1\n"
    cfg.write_text(base + text + "anisotropy_magnitude 0.5\nanisotropy_normal 0 0 1\n")
    with pytest.raises(FileFormatError, match=rf"{where}.*spinlat has no such term.*drop=\['{name}'\]"):
        sl.io.read_spirit_cfg(cfg)
    st, pot = sl.io.read_spirit_cfg(cfg, drop=[name])
    s = _unit(len(st), 3)
    assert pot.compute(st.copy(spins=s)).energy == pytest.approx(-0.5e-3 * np.sum(s[:, 2] ** 2), rel=1e-13)
    assert len(sl.io.read_spirit_cfg(cfg, drop="all")[0]) == 4
    with pytest.raises(InputError, match=r"unknown term\(s\) \['dipolar'\].*'ddi'"):
        sl.io.read_spirit_cfg(cfg, drop=["dipolar"])


QUADS = ("hamiltonian {kind}\nboundary_conditions 1 {bc} 0\nn_basis_cells 3 {nb} 1\nmu_s 1.0\n"
         "n_interaction_quadruplets 2\ni j da_j db_j dc_j k da_k db_k dc_k l da_l db_l dc_l Q\n"
         "0 0 1 0 0 0 0 1 0 0 1 1 0 3.0\n0 0 -1 0 0 0 {far} 0 0 0 0 -1 0 -1.5\nlog_to_console 0\nlog_to_file 0\n")


def test_quadruplets_by_hand(tmp_path):
    """Spirit's quadruplets were refused (only a warning before): now a Quadruplet term,
    E = −Σ_cells Σ_q Q (s_i·s_j)(s_k·s_l) (meV), its fields −∂E/∂m (finite differences)."""
    cfg = tmp_path / "q.cfg"
    cfg.write_text(QUADS.format(kind="heisenberg_pairs", bc=1, nb=3, far=1))
    st, pot = sl.io.read_spirit_cfg(cfg)
    s = _unit(9, 16)

    def at(a, b):
        return a % 3 + 3 * (b % 3)

    def energy(s):
        return -1e-3 * sum(3.0 * (s[at(a, b)] @ s[at(a + 1, b)]) * (s[at(a, b + 1)] @ s[at(a + 1, b + 1)])
                           - 1.5 * (s[at(a, b)] @ s[at(a - 1, b)]) * (s[at(a + 1, b)] @ s[at(a, b - 1)])
                           for a in range(3) for b in range(3))

    ev = pot.compute(st.copy(spins=s))
    assert ev.energy == pytest.approx(energy(s), rel=1e-13)
    h, g = 1e-6, np.zeros(3)
    for c in range(3):
        sp, sm = s.copy(), s.copy()
        sp[4, c] += h
        sm[4, c] -= h
        g[c] = (energy(sp) - energy(sm)) / (2 * h)   # ∂E/∂s_4 on ℝ³
    np.testing.assert_allclose(ev.magnetic_forces[4], -(g - (g @ s[4]) * s[4]), rtol=0, atol=1e-9)


@pytest.mark.peers
@pytest.mark.parametrize("kind, bc, nb, far", [("heisenberg_pairs", 1, 3, 1), ("heisenberg_neighbours", 1, 3, 1),
                                               ("heisenberg_pairs", 0, 2, 4)])
def test_quadruplets_match_spirit(tmp_path, kind, bc, nb, far):
    cfg = tmp_path / "q.cfg"
    cfg.write_text(QUADS.format(kind=kind, bc=bc, nb=nb, far=far))
    st, pot = sl.io.read_spirit_cfg(cfg)
    _, runs = _spirit_energies(cfg, seed=50)
    for s, e in runs:
        assert pot.compute(st.copy(spins=s)).energy == pytest.approx(e, abs=2e-8 * len(s))


def test_cubic_anisotropy_by_hand(tmp_path):
    """Spirit's cubic anisotropy E = −(K4/2) Σ_i (n_x⁴ + n_y⁴ + n_z⁴) (meV) was not read (only a
    warning): now read, whole energy included; the field is −∂E/∂m (finite differences)."""
    cfg = tmp_path / "c.cfg"
    cfg.write_text("n_basis_cells 3 1 1\nmu_s 2.0\ncubic_anisotropy_magnitude 1.5\n")
    st, pot = sl.io.read_spirit_cfg(cfg)
    s = _unit(3, 4)
    ev = pot.compute(st.copy(spins=s))
    assert ev.energy == pytest.approx(-0.75e-3 * np.sum(s ** 4), rel=1e-13)
    h = 1e-6
    for a in range(3):
        m = 2.0 * s.copy()
        m[1, a] += h
        sp = m / np.linalg.norm(m, axis=1)[:, None]
        e_p = pot.compute(st.copy(spins=sp, moments=np.linalg.norm(m, axis=1))).energy
        m[1, a] -= 2 * h
        sm = m / np.linalg.norm(m, axis=1)[:, None]
        e_m = pot.compute(st.copy(spins=sm, moments=np.linalg.norm(m, axis=1))).energy
        assert ev.magnetic_forces[1, a] == pytest.approx(-(e_p - e_m) / (2 * h), abs=1e-9)


CUBIC = {
    "one atom": ("hamiltonian heisenberg_pairs\nn_basis_cells 1 1 1\nmu_s 1.0\ncubic_anisotropy_magnitude 2.0\n",
                 None),
    "K4 column": ("hamiltonian heisenberg_pairs\nbravais_lattice sc\nbasis\n2\n0 0 0\n0.5 0.5 0.5\n"
                  "n_basis_cells 1 1 1\nmu_s 1.0 1.0\nn_anisotropy 2\ni K Kx Ky Kz K4\n0 0.0 0 0 1 2.0\n"
                  "1 0.5 1 0 0 3.0\n", ["Fe", "Co"]),
    "with pairs": ("hamiltonian heisenberg_pairs\nboundary_conditions 1 1 0\nbravais_lattice sc\nbasis\n2\n0 0 0\n"
                   "0.5 0.5 0.5\nn_basis_cells 2 2 1\nmu_s 1.0 2.0\nanisotropy_magnitude 0.3\n"
                   "anisotropy_normal 0 1 1\ncubic_anisotropy_magnitude 1.5\nn_interaction_pairs 1\n"
                   "i j da db dc Jij\n0 1 0 0 0 2.0\n", None),
}


@pytest.mark.peers
@pytest.mark.parametrize("case", list(CUBIC))
def test_cubic_anisotropy_matches_spirit(tmp_path, case):
    text, elements = CUBIC[case]
    cfg = tmp_path / "c.cfg"
    cfg.write_text(text + "log_to_console 0\nlog_to_file 0\n")
    st, pot = sl.io.read_spirit_cfg(cfg, elements=elements)
    _, runs = _spirit_energies(cfg, seed=20)
    for s, e in runs:
        assert pot.compute(st.copy(spins=s)).energy == pytest.approx(e, abs=2e-8 * len(s))


def test_empty_disorder_and_defect_counts_read(tmp_path):
    """Spirit's input template writes 'atom_types 0' / 'n_defects 0' (none): they were refused as
    disorder and defects (zero quadruplets and pinned spins likewise); a non-zero count still is,
    naming its line."""
    cfg = tmp_path / "z.cfg"
    cfg.write_text("n_basis_cells 2 1 1\nmu_s 1.0\natom_types 0\nn_defects 0\nn_interaction_quadruplets 0\n"
                   "n_pinned 0\npin_na_left 0\n")
    assert len(sl.io.read_spirit_cfg(cfg)[0]) == 2
    cfg.write_text("n_basis_cells 2 1 1\nmu_s 1.0\natom_types 0\nn_defects 1\n0 1 0 0 -1\n")
    with pytest.raises(FileFormatError, match="line 4: defects are not supported"):
        sl.io.read_spirit_cfg(cfg)


def test_anisotropy_keys_beside_a_table_are_named(tmp_path):
    """With an anisotropy table, Spirit ignores anisotropy_magnitude/normal and
    cubic_anisotropy_magnitude (checked with the spirit package): so does the reader, now saying so."""
    cfg = tmp_path / "t.cfg"
    cfg.write_text("n_basis_cells 2 1 1\nmu_s 1.0\ncubic_anisotropy_magnitude 2.0\nanisotropy_magnitude 3.0\n"
                   "n_anisotropy 1\ni K Kx Ky Kz\n0 0.5 0 0 1\n")
    with pytest.warns(UserWarning, match=r"line 4: anisotropy_magnitude, cubic_anisotropy_magnitude ignored"):
        st, pot = sl.io.read_spirit_cfg(cfg)
    s = _unit(2, 5)
    assert pot.compute(st.copy(spins=s)).energy == pytest.approx(-0.5e-3 * np.sum(s[:, 2] ** 2), rel=1e-13)


def test_cubic_anisotropy_per_element(tmp_path):
    """Basis atoms of one element with different K4: CubicAnisotropy takes one per element."""
    cfg = tmp_path / "c.cfg"
    cfg.write_text(CUBIC["K4 column"][0])
    with pytest.raises(FileFormatError, match=r"atoms of one element \(Z=26\) have different cubic"):
        sl.io.read_spirit_cfg(cfg)


def test_ignored_pairs_or_shells_are_named(tmp_path):
    """Without `hamiltonian heisenberg_pairs` Spirit takes neighbour shells and ignores the pairs
    silently (an easy slip: the Hamiltonian then has no exchange at all): named in a warning."""
    cfg = tmp_path / "p.cfg"
    cfg.write_text("n_basis_cells 2 1 1\nmu_s 1\nn_interaction_pairs 1\ni j da db dc Jij\n0 0 1 0 0 3.0\n")
    with pytest.warns(UserWarning, match="pairs are given but the Hamiltonian is heisenberg_neighbours"):
        st, pot = sl.io.read_spirit_cfg(cfg)
    assert pot.n_pairs == 0
    cfg.write_text("hamiltonian heisenberg_pairs\nmu_s 1\nn_basis_cells 2 1 1\nn_shells_exchange 1\njij 2\n")
    with pytest.warns(UserWarning, match="neighbour shells .* are given but the Hamiltonian is heisenberg_pairs"):
        sl.io.read_spirit_cfg(cfg)


def _spirit_energies(cfg, n_states=3, seed=0):
    spirit = pytest.importorskip("spirit")  # noqa: F841
    from spirit import geometry, state, system

    out = []
    with state.State(str(cfg), quiet=True) as p:
        pos = np.array(geometry.get_positions(p)).reshape(-1, 3)
        for k in range(n_states):
            s = _unit(len(pos), seed + k)
            system.get_spin_directions(p)[:] = s
            system.update_data(p)
            out.append((s, system.get_energy(p) * 1e-3))
    return pos, out


@pytest.mark.peers
def test_pairs_config_matches_spirit():
    """Two-atom basis in a triclinic cell, pairs with J and DMI (one given reversed, one between
    the two atoms of a cell both ways), anisotropy along (1, 0, 1), a tilted field, periodic in a
    and b, open in c: Spirit's positions and energies (float32, meV) of random states."""
    cfg = DATA / "pairs.cfg"
    st, pot = sl.io.read_spirit_cfg(cfg)
    pos, runs = _spirit_energies(cfg)
    np.testing.assert_allclose(st.positions, pos, rtol=0, atol=1e-12)
    for s, e in runs:
        assert pot.compute(st.copy(spins=s)).energy == pytest.approx(e, abs=2e-8 * len(s))


@pytest.mark.peers
@pytest.mark.parametrize("chirality", [1, -1, 2, -2])
def test_neighbour_shells_match_spirit(tmp_path, chirality):
    cfg = tmp_path / "n.cfg"
    cfg.write_text("hamiltonian heisenberg_neighbours\nboundary_conditions 1 1 0\nbravais_lattice hex2d\n"
                   "lattice_constant 2.7\nn_basis_cells 4 4 1\nmu_s 1.7\nn_shells_exchange 2\njij 8.0 -1.5\n"
                   f"n_shells_dmi 1\ndij 2.0\ndm_chirality {chirality}\nexternal_field_magnitude 1.5\n"
                   "anisotropy_magnitude 0.4\nanisotropy_normal 0 0 1\nlog_to_console 0\nlog_to_file 0\n")
    st, pot = sl.io.read_spirit_cfg(cfg)
    pos, runs = _spirit_energies(cfg, seed=10 + chirality)
    np.testing.assert_allclose(st.positions, pos, rtol=0, atol=1e-12)
    for s, e in runs:
        assert pot.compute(st.copy(spins=s)).energy == pytest.approx(e, abs=2e-8 * len(s))


SMALL_BOX = ("hamiltonian heisenberg_neighbours\nbravais_lattice sc\nboundary_conditions 1 1 0\n"
             "n_basis_cells {n}\nmu_s 2.0\nn_shells_exchange 2\njij 10.0 1.0\nn_shells_dmi 1\ndij 6.0\n"
             "dm_chirality 1\nexternal_field_magnitude 1\nlog_to_console 0\nlog_to_file 0\n")


def test_neighbour_shells_in_a_small_box_by_hand(tmp_path):
    """Spirit's shells are built from the translations that fit the box (|t_k| < n_k): one cell
    along a periodic direction gives no bonds along it (spinlat coupled each atom to its own
    image: −J per bond, and the a±b diagonals of shell 2 became a-neighbours); with 3 cells along
    a and one along b the second shell is 2a (Spirit's physics_larmor.cfg test input was off by
    −20 meV on one atom)."""
    cfg = tmp_path / "s.cfg"
    cfg.write_text(SMALL_BOX.format(n="1 1 1"))
    st, pot = sl.io.read_spirit_cfg(cfg)
    s = _unit(1, 6)
    assert pot.compute(st.copy(spins=s)).energy == pytest.approx(-2.0 * sl.units.MU_B * s[0, 2], rel=1e-13)
    cfg.write_text(SMALL_BOX.format(n="3 1 1").replace("external_field_magnitude 1", ""))
    st, pot = sl.io.read_spirit_cfg(cfg)
    s = _unit(3, 7)
    x = np.array([1.0, 0.0, 0.0])
    e = sum(-10e-3 * s[k] @ s[(k + 1) % 3] - 6e-3 * x @ np.cross(s[k], s[(k + 1) % 3])   # shell 1: +a
            - 1e-3 * s[k] @ s[(k + 2) % 3] for k in range(3))                             # shell 2: +2a
    assert pot.compute(st.copy(spins=s)).energy == pytest.approx(e, rel=1e-13)


LONG_PAIR = ("hamiltonian heisenberg_pairs\nboundary_conditions 1 1 0\nn_basis_cells {n} 1 1\nmu_s 1.0\n"
             "n_interaction_pairs 2\ni j da db dc Jij Dijx Dijy Dijz\n0 0 3 0 0 10.0 0 0 3.0\n0 0 1 1 0 4.0 1 0 0\n"
             "log_to_console 0\nlog_to_file 0\n")


def test_pairs_longer_than_the_box_are_dropped(tmp_path):
    """A pair translation of 3 cells in a box of 2 was wrapped twice (a bond 0 → 1 from each
    cell); Spirit drops it (3 cells in a box of 3, the atom's own image, it keeps)."""
    cfg = tmp_path / "l.cfg"
    cfg.write_text(LONG_PAIR.format(n=2))
    st, pot = sl.io.read_spirit_cfg(cfg)
    s = _unit(2, 8)
    x = np.array([1.0, 0.0, 0.0])
    e = sum(-4e-3 * s[k] @ s[1 - k] - 1e-3 * x @ np.cross(s[k], s[1 - k]) for k in range(2))  # (1, 1, 0) only
    assert pot.compute(st.copy(spins=s)).energy == pytest.approx(e, rel=1e-13)


@pytest.mark.peers
@pytest.mark.parametrize("text", [SMALL_BOX.format(n=n) for n in ("1 1 1", "2 1 1", "3 1 1", "2 2 1", "4 3 1")]
                         + [LONG_PAIR.format(n=n) for n in (2, 3)])
def test_small_boxes_match_spirit(tmp_path, text):
    """Neighbour shells and pairs in boxes a few cells wide (the two tests above): Spirit's energies."""
    cfg = tmp_path / "b.cfg"
    cfg.write_text(text)
    st, pot = sl.io.read_spirit_cfg(cfg)
    _, runs = _spirit_energies(cfg, seed=30)
    for s, e in runs:
        assert pot.compute(st.copy(spins=s)).energy == pytest.approx(e, abs=2e-8 * len(s))


@pytest.mark.peers
def test_spirit_ovf_reads_into_the_config_state(tmp_path):
    """The state is in Spirit's site order: an OVF file Spirit writes for the same config reads
    row by row (read_ovf without repeat) and gives Spirit's energy of that configuration."""
    pytest.importorskip("spirit")
    pytest.importorskip("ovf")
    from spirit import configuration, io, state, system

    cfg = DATA / "pairs.cfg"
    st, pot = sl.io.read_spirit_cfg(cfg)
    with state.State(str(cfg), quiet=True) as p:
        configuration.random(p)
        system.update_data(p)
        e = system.get_energy(p) * 1e-3
        io.image_write(p, str(tmp_path / "spins.ovf"), fileformat=io.FILEFORMAT_OVF_BIN8)
    assert pot.compute(sl.io.read_ovf(tmp_path / "spins.ovf", st)).energy == pytest.approx(e, abs=2e-8 * len(st))


def test_run_configs_and_convert_read_spirit_inputs(tmp_path):
    """A Spirit input.cfg given as a run config's structure.file or to spinlat convert was handed
    to ASE, which takes .cfg for AtomEye's format and failed on 'hamiltonian' (could not convert
    string to float); it is now read as the simulated system with Spirit's moments."""
    from spinlat import config
    from spinlat.config import read_structure

    cfg = DATA / "pairs.cfg"
    ref, _ = sl.io.read_spirit_cfg(cfg)
    st = read_structure(cfg)
    np.testing.assert_array_equal(st.positions, ref.positions)
    np.testing.assert_array_equal(st.moments, ref.moments)
    np.testing.assert_array_equal(st.pbc, [True, True, False])
    run = {"structure": {"file": str(cfg)}, "potential": {"type": "Zeeman", "B": [0, 0, 1.0]},
           "integrator": {"type": "LLG", "dt": 0.1}, "steps": 1}
    np.testing.assert_array_equal(config.build_structure(config.load(run)).moments, ref.moments)
    assert sl.io.convert(cfg, tmp_path / "s.h5") == 1
    with sl.io.Trajectory(tmp_path / "s.h5") as t:
        np.testing.assert_array_equal(t[0].moments, ref.moments)
        np.testing.assert_allclose(t[0].positions, ref.positions, rtol=0, atol=1e-14)
    atomeye = tmp_path / "a.cfg"  # AtomEye's .cfg stays ASE's
    atomeye.write_text("Number of particles = 1\nA = 1.0 Angstrom\nH0(1,1) = 3 A\nH0(1,2) = 0 A\nH0(1,3) = 0 A\n"
                       "H0(2,1) = 0 A\nH0(2,2) = 3 A\nH0(2,3) = 0 A\nH0(3,1) = 0 A\nH0(3,2) = 0 A\nH0(3,3) = 3 A\n"
                       ".NO_VELOCITY.\nentry_count = 3\n55.845\nFe\n0.0 0.0 0.0\n")
    from spinlat.io.spirit import is_spirit_cfg

    assert not is_spirit_cfg(atomeye) and is_spirit_cfg(cfg)
