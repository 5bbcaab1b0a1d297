"""sl.io.read_uppasd: UppASD inputs (inpsd.dat, posfile, momfile, jfile) as a State and a
Heisenberg, against a hand construction and against TB2J's own exchange.out of the same run."""

import numpy as np
import pytest
from conftest import TB2J_FE, assert_matches_tb2j

import spinlat as sl
from spinlat.errors import FileFormatError
from spinlat.io.uppasd import RY_EV
from spinlat.potentials import Heisenberg



def _write(d, inpsd, pos, mom, jfile):
    d.mkdir(exist_ok=True)
    (d / "inpsd.dat").write_text(inpsd)
    (d / "posfile").write_text(pos)
    (d / "momfile").write_text(mom)
    (d / "jfile").write_text(jfile)
    return d / "inpsd.dat"


BCC_INPSD = """simid bccFe
ncell     4 4 4              System size
BC        P P P              Boundary conditions
cell      1.0 0.0 0.0
          0.0 1.0 0.0
          0.0 0.0 1.0
Sym       1                  cubic
posfile   ./posfile
momfile   ./momfile
exchange  ./jfile
alat      2.87e-10
"""


def _unit(n, seed):
    s = np.random.default_rng(seed).normal(size=(n, 3))
    return s / np.linalg.norm(s, axis=1)[:, None]


def test_bcc_cubic_shells_by_hand(tmp_path):
    """bcc Fe as in UppASD's example layout: two sites of one type, one bond vector per shell
    expanded by the cubic group (Sym 1): 8 nearest and 6 next-nearest neighbours. UppASD's
    energy −Σ_i Σ_j∈N(i) J e_i·e_j (mRy, each bond twice) is spinlat's pair coupling 2J."""
    path = _write(tmp_path / "bcc", BCC_INPSD, "1 1 0.0 0.0 0.0\n2 1 0.5 0.5 0.5\n",
                  "1 1 2.23 0.0 0.0 1.0\n2 1 2.23 1.0 0.0 0.0\n",
                  "1 1  0.5 0.5 0.5  1.3377   NN shell\n1 1  1.0 0.0 0.0  0.7570\n")  # text after: ignored
    st, ham = sl.io.read_uppasd(path)
    np.testing.assert_allclose(st.cell, np.eye(3) * 2.87, rtol=0, atol=1e-14)
    np.testing.assert_allclose(st.positions[1], [1.435] * 3, rtol=0, atol=1e-14)
    np.testing.assert_array_equal(st.moments, [2.23, 2.23])
    np.testing.assert_array_equal(st.spins, [[0, 0, 1], [1, 0, 0]])
    assert ham.uppasd_ncell == (4, 4, 4) and ham.n_pairs == 2 * (8 + 6) // 2
    big = st.repeat(3)
    ref = Heisenberg.from_neighbors(big, J=[2 * 1.3377 * RY_EV * 1e-3, 2 * 0.7570 * RY_EV * 1e-3])
    for seed in range(3):
        s = big.copy(spins=_unit(len(big), seed))
        assert ham.compute(s).energy == pytest.approx(ref.compute(s).energy, rel=1e-12)


def test_tb2j_folder_matches_read_tb2j(tmp_path):
    """TB2J writes UppASD files beside exchange.out (TB2J_results/UppASD: posfile with direct
    coordinates, momfile, jASD1 with a count line, Cartesian bond vectors in Å and J in mRy for
    every directed entry). Written here as TB2J's writer does from the bcc Fe exchange.out, read
    with tb2j=True and the run's cell: the energies equal read_tb2j's on a supercell."""
    from ase.units import Ry

    from spinlat.formats.tb2j import parse_tb2j

    data = parse_tb2j(TB2J_FE)
    cell, pos = data["cell"], data["positions"]
    d = tmp_path / "UppASD"
    d.mkdir()
    frac = pos @ np.linalg.inv(cell)
    (d / "posfile").write_text("".join(f"{k + 1} {k + 1} {f[0]} {f[1]} {f[2]}\n" for k, f in enumerate(frac)))
    ms = np.linalg.norm(data["magmoms"], axis=1)
    (d / "momfile").write_text("".join(f"{k + 1} {k + 1} {m} 0.0 0.0 1.0\n" for k, m in enumerate(ms)))
    rows = []
    for i, j, R, T, _ in data["entries"]:
        v = np.asarray(R) @ cell + pos[j] - pos[i]
        rows.append(f"{i + 1} {j + 1} {v[0]} {v[1]} {v[2]} {np.trace(T) / 3 * 1e-3 * 1e3 / Ry}\n")
    (d / "jASD1").write_text(f"{len(rows)} 0\n" + "".join(rows))
    (d / "input").write_text(" simid Unamed\n ncell 12 12 12\n BC P P P\n cell\n Sym 0\n posfile ./posfile\n"
                             " momfile ./momfile\n exchange ./jASD1\n maptype 1\n alat 2.83e-10\n")
    st, ham = sl.io.read_uppasd(d, tb2j=True, cell=cell)
    # TB2J converts with ASE's Rydberg, UppASD's reader with UppASD's (2e-10 apart)
    assert_matches_tb2j(st, ham, rel=1e-9)
    with pytest.raises(FileFormatError, match="line 4: the cell keyword holds no vectors .*pass cell="):
        sl.io.read_uppasd(d, tb2j=True)
    (d / "jASD1").write_text(f"{len(rows) + 1} 0\n" + "".join(rows))
    with pytest.raises(FileFormatError, match=f"announces {len(rows) + 1} couplings, found {len(rows)} rows"):
        sl.io.read_uppasd(d, tb2j=True, cell=cell)


@pytest.mark.parametrize("jfile, match", [
    ("1 1 0.3 0.0 0.0 1.0\n", r"line 1: no atom at the bond vector \[0.3, 0.0, 0.0\] from site 1"),
    ("1 1 1.0 0.0 0.0\n", "line 1: expected 'isite jsite rx ry rz J' \\(6 columns\\)"),
    ("1 1 1 1 1.0 0.0 0.0 1.0\n", r"got 8: .* \(alloy and tensor layouts are not read\)"),
    ("1 3 1.0 0.0 0.0 1.0\n", "sites 1, 3 outside the posfile's 1..2"),
    ("1 1 1.0 0.0 x 1.0\n", "line 1: bond vector: expected a number"),
])
def test_bad_jfiles_name_the_line(tmp_path, jfile, match):
    path = _write(tmp_path / "b", BCC_INPSD.replace("Sym       1", "Sym 0"), "1 1 0 0 0\n2 1 0.5 0.5 0.5\n",
                  "1 1 2.2 0 0 1\n2 1 2.2 0 0 1\n", jfile)
    with pytest.raises(FileFormatError, match=match):
        sl.io.read_uppasd(path)


def test_a_bond_length_column_is_ignored_as_by_uppasd(tmp_path):
    """UppASD reads 'isite jsite rx ry rz J' list-directed, so a seventh number (the bond length of
    its bccFe-variants example's jASD2) is ignored: it was refused as an alloy/tensor layout."""
    rows = "1 1 1.0 0.0 0.0 {J}{extra}\n1 1 -1.0 0.0 0.0 {J}{extra}\n"
    e = []
    for extra in ("", " 2.5"):
        s, ev = _chain_evaluation(tmp_path / f"c{len(extra)}", "", 2.0, rows.format(J=0.7, extra=extra), {}, 13)
        e.append(ev.energy)
    assert e[1] == e[0] == pytest.approx(sum(-1.4 * s[k] @ s[(k + 1) % 4] for k in range(4)) * RY_EV * 1e-3, rel=1e-12)


def test_unsupported_settings_are_refused_or_named(tmp_path):
    path = _write(tmp_path / "u", BCC_INPSD + "do_ralloy 1\n", "1 1 0 0 0\n", "1 1 2.2 0 0 1\n", "")
    with pytest.raises(FileFormatError, match="line 12: do_ralloy 1: random alloys"):
        sl.io.read_uppasd(path)
    path = _write(tmp_path / "v", BCC_INPSD.replace("Sym       1", "Sym 4"), "1 1 0 0 0\n", "1 1 2.2 0 0 1\n", "")
    with pytest.raises(FileFormatError, match="Sym 4"):
        sl.io.read_uppasd(path)
    path = _write(tmp_path / "w", BCC_INPSD + "dm ./dmfile\n", "1 1 0 0 0\n", "1 1 2.2 0 0 1\n",
                  "1 1 1.0 0.0 0.0 1.0\n")


CHAIN_INPSD = """ncell 4 1 1
BC P 0 0
cell 1.0 0.0 0.0
     0.0 1.0 0.0
     0.0 0.0 1.0
Sym 0
posfile ./posfile
momfile ./momfile
exchange ./jfile
alat 2.5e-10
"""


def _transverse(h, s):
    return h - np.einsum("ij,ij->i", h, s)[:, None] * s


def _chain_evaluation(d, extra, m, jfile, files, seed, inpsd=CHAIN_INPSD):
    """Read the 4-site chain of CHAIN_INPSD + ``extra`` (moment ``m``, the jfile text and other
    files {name: text}) and evaluate it at random spins: (spins, Evaluation)."""
    path = _write(d, inpsd + extra, "1 1 0 0 0\n", f"1 1 {m} 0 0 1\n", jfile)
    for name, text in files.items():
        (d / name).write_text(text)
    st, pot = sl.io.read_uppasd(path)
    s = _unit(4, seed)
    return s, pot.compute(st.repeat(pot.uppasd_ncell).copy(spins=s))


def _assert_uppasd(ev, s, e, B):
    """Energy ``e`` and fields ``B`` (UppASD's, mRy and mRy/μB) against spinlat's, transverse."""
    mry = RY_EV * 1e-3
    assert ev.energy == pytest.approx(e * mry, rel=1e-12)
    np.testing.assert_allclose(_transverse(ev.magnetic_forces, s), _transverse(B * mry, s), rtol=0, atol=1e-12)


def test_dm_and_uniaxial_anisotropy_as_uppasd(tmp_path):
    """The DM file and the kfile were only named in a warning: now read. UppASD's E =
    −Σ_i Σ_j∈N(i) [J e_i·e_j + D_ij·(e_i × e_j)] + Σ_i K1 (e·s_i)² (mRy; each bond listed from both
    ends, D reversed), and its fields B_i = Σ_j 2 (J m_j + m_j × D_ij)/(|m_i||m_j|) − 2 K1 (e·s_i) e/|m_i|
    (hamiltonianactions.f90): spinlat's transverse magnetic forces."""
    J, D, K1, m = 1.5, 0.4, -0.3, 2.2
    s, ev = _chain_evaluation(tmp_path, "dm ./dmfile\nanisotropy ./kfile\n", m,
                              f"1 1 1.0 0.0 0.0 {J}\n1 1 -1.0 0.0 0.0 {J}\n",
                              {"dmfile": f"1 1 1.0 0.0 0.0 0.0 0.0 {D}\n1 1 -1.0 0.0 0.0 0.0 0.0 {-D}\n",
                               "kfile": f"1 1 {K1} 0.0 0.0 0.0 1.0 0.0\n"}, 8)
    z = np.array([0.0, 0.0, 1.0])
    e = sum(-2 * J * s[k] @ s[(k + 1) % 4] - 2 * D * z @ np.cross(s[k], s[(k + 1) % 4]) + K1 * s[k, 2] ** 2
            for k in range(4))
    B = np.array([sum(2 * (J * s[j] + np.cross(s[j], Dv * z)) / m for j, Dv in (((i + 1) % 4, D), ((i - 1) % 4, -D)))
                  - 2 * K1 * s[i, 2] * z / m for i in range(4)])
    _assert_uppasd(ev, s, e, B)


def test_cubic_anisotropy_as_uppasd(tmp_path):
    """kfile type 2: UppASD's field B = 2 K1 s_x(s_y² + s_z²)/|m| (and cyclic), that of
    E = −K1 (sx²sy² + sy²sz² + sz²sx²) per site (mRy): CubicAnisotropy(−K1)."""
    K1, m = 0.7, 1.9
    s, ev = _chain_evaluation(tmp_path, "anisotropy ./kfile\n", m, "1 1 1.0 0.0 0.0 0.0\n",
                              {"kfile": f"1 2 {K1} 0.0 0.0 0.0 1.0 0.0\n"}, 9)
    p = (s[:, 0] * s[:, 1]) ** 2 + (s[:, 1] * s[:, 2]) ** 2 + (s[:, 2] * s[:, 0]) ** 2
    _assert_uppasd(ev, s, -K1 * p.sum(), 2 * K1 * s * (np.sum(s ** 2, axis=1)[:, None] - s ** 2) / m)


@pytest.mark.parametrize("extra, files, name, match", [
    ("ring ./ringfile\n", {}, "ring", r"line 11: ring ./ringfile \(ring exchange\)"),
    ("do_dip 1\n", {}, "do_dip", r"line 11: do_dip 1 \(dipole-dipole"),
])
def test_terms_spinlat_lacks_are_refused_unless_dropped(tmp_path, extra, files, name, match):
    """Biquadratic, dipolar, ... terms were named in a warning only: refused (file, line, the
    drop option); with drop the rest reads as before."""
    path = _write(tmp_path, CHAIN_INPSD + extra, "1 1 0 0 0\n", "1 1 2.0 0 0 1\n",
                  "1 1 1.0 0.0 0.0 1.0\n1 1 -1.0 0.0 0.0 1.0\n")
    with pytest.raises(FileFormatError, match=match + rf".*drop=\['{name}'\]"):
        sl.io.read_uppasd(path)
    st, pot = sl.io.read_uppasd(path, drop=[name])
    s = _unit(4, 10)
    e = sum(-2.0 * s[k] @ s[(k + 1) % 4] for k in range(4)) * RY_EV * 1e-3
    assert pot.compute(st.repeat(pot.uppasd_ncell).copy(spins=s)).energy == pytest.approx(e, rel=1e-12)
    from spinlat.config import read_structure  # the structure alone reads whatever the terms

    assert len(read_structure(path, format="uppasd")) == 4


def test_dm_file_ignores_sym(tmp_path):
    """UppASD maps the DM file with symmetry 0 whatever Sym says (hamiltonianinit.f90's setup_nm
    call), as in its HeisChainDM example (Sym 1, DM bonds ±z listed): Sym 1 with a DM file was
    refused, and so were the jfile's Sym images leaving the box along a one-cell vacuum direction;
    the DM bonds are now read as listed while the jfile's are expanded by the 48 ops."""
    D, m = 0.36, 1.0
    s, ev = _chain_evaluation(tmp_path, "dm ./dmfile\n", m, "1 1 1.0 0.0 0.0 0.5\n",
                              {"dmfile": f"1 1 1.0 0.0 0.0 0.0 0.0 {D}\n1 1 -1.0 0.0 0.0 0.0 0.0 {-D}\n"}, 12,
                              inpsd=CHAIN_INPSD.replace("Sym 0", "Sym 1"))
    z = np.array([0.0, 0.0, 1.0])
    # jfile: Sym 1 makes ±x (kept, 0.5 each way: 1.0 per bond), ±y, ±z (they leave the one-cell vacuum
    # directions y, z: dropped, as UppASD finds no atom there; they were refused)
    e = sum(-1.0 * s[k] @ s[(k + 1) % 4] - 2 * D * z @ np.cross(s[k], s[(k + 1) % 4]) for k in range(4))
    B = np.array([sum((1.0 * s[j] + 2 * np.cross(s[j], Dv * z)) / m for j, Dv in (((i + 1) % 4, D), ((i - 1) % 4, -D)))
                  for i in range(4)])
    _assert_uppasd(ev, s, e, B)


def test_open_chain_of_several_cells(tmp_path):
    """A vacuum direction of several cells (UppASD's GNEB_HeisChain example: ncell 49 1 1, BC 0 0 0)
    was refused ('give the supercell's sites'): the potential is now built on the ncell system,
    an open chain: E = −Σ_k 2 J s_k·s_k+1 over its 4 bonds, plus the bq term likewise, and it
    applies to state.repeat(uppasd_ncell)."""
    inpsd = CHAIN_INPSD.replace("ncell 4 1 1", "ncell 5 1 1").replace("BC P 0 0", "BC 0 0 0").replace("Sym 0", "Sym 1")
    J, Jbq = 0.5, 0.2
    path = _write(tmp_path, inpsd + "bq ./bqfile\n", "1 1 0 0 0\n", "1 1 2.0 0 0 1\n", f"1 1 1.0 0.0 0.0 {J}\n")
    (tmp_path / "bqfile").write_text(f"1 1 1.0 0.0 0.0 {Jbq}\n")
    st, pot = sl.io.read_uppasd(path)
    s = _unit(5, 14)
    e = sum(-2 * J * s[k] @ s[k + 1] - 2 * Jbq * (s[k] @ s[k + 1]) ** 2 for k in range(4)) * RY_EV * 1e-3
    assert pot.compute(st.repeat(pot.uppasd_ncell).copy(spins=s)).energy == pytest.approx(e, rel=1e-12)


def test_pseudo_dipolar_and_symmetric_anisotropic_as_uppasd(tmp_path):
    """pd and sa files were only named in a warning: now pair tensors. UppASD's fields
    B_i = Σ_j 2 X_ij e_j/|m_i| with X the pd tensor (row by row) or [[0, Cz, Cy], [Cz, 0, Cx],
    [Cy, Cx, 0]] of sa, energy −Σ_i Σ_j e_iᵀ X_ij e_j (each bond listed from both ends)."""
    m = 2.0
    P = np.array([[0.3, 0.1, 0.0], [0.1, -0.2, 0.05], [0.0, 0.05, 0.4]])
    C = np.array([0.07, -0.03, 0.11])
    pd_row = " ".join(map(str, P.ravel()))
    s, ev = _chain_evaluation(tmp_path, "pd ./pdfile\nsa ./safile\n", m, "1 1 1.0 0.0 0.0 0.0\n",
                              {"pdfile": f"1 1 1.0 0.0 0.0 {pd_row}\n1 1 -1.0 0.0 0.0 {pd_row}\n",
                               "safile": "1 1 1.0 0.0 0.0 {0} {1} {2}\n1 1 -1.0 0.0 0.0 {0} {1} {2}\n".format(*C)}, 15)
    X = P + np.array([[0.0, C[2], C[1]], [C[2], 0.0, C[0]], [C[1], C[0], 0.0]])
    e = sum(-2 * s[k] @ X @ s[(k + 1) % 4] for k in range(4))
    B = np.array([sum(2 * X @ s[j] / m for j in ((i + 1) % 4, (i - 1) % 4)) for i in range(4)])
    _assert_uppasd(ev, s, e, B)


def test_coupling_scales(tmp_path):
    """jij_scale, dm_scale and sa_scale (UppASD multiplies those couplings) were silently ignored."""
    files = {"dmfile": "1 1 1.0 0.0 0.0 0.0 0.0 0.4\n1 1 -1.0 0.0 0.0 0.0 0.0 -0.4\n",
             "safile": "1 1 1.0 0.0 0.0 0.1 0.2 0.3\n1 1 -1.0 0.0 0.0 0.1 0.2 0.3\n"}
    jfile = "1 1 1.0 0.0 0.0 1.5\n1 1 -1.0 0.0 0.0 1.5\n"
    _, ref = _chain_evaluation(tmp_path / "a", "dm ./dmfile\nsa ./safile\n", 2.0, jfile.replace("1.5", "3.0"),
                               {"dmfile": files["dmfile"].replace("0.4", "0.2"),
                                "safile": files["safile"].replace("0.1 0.2 0.3", "0.05 0.1 0.15")}, 17)
    _, ev = _chain_evaluation(tmp_path / "b", "dm ./dmfile\nsa ./safile\njij_scale 2.0\ndm_scale 0.5\nsa_scale 0.5\n",
                              2.0, jfile, files, 17)
    assert ev.energy == pytest.approx(ref.energy, rel=1e-12)
    path = _write(tmp_path / "c", CHAIN_INPSD + "scalefac 1.1\n", "1 1 0 0 0\n", "1 1 2.0 0 0 1\n", jfile)
    with pytest.raises(FileFormatError, match="line 11: scalefac 1.1"):
        sl.io.read_uppasd(path)


@pytest.mark.parametrize("sym", [2, 3])
def test_planar_and_hexagonal_symmetry(tmp_path, sym):
    """Sym 2 (cubic in the xy plane) and Sym 3 (hexagonal) were refused: UppASD's operations
    (neighbourmap.f90) make one bond (1, 0, 0) into the 4 in-plane neighbours of a square lattice
    (not ±z, which Sym 1 adds) or the 6 of a triangular one."""
    a2 = "0.0 1.0 0.0" if sym == 2 else f"0.5 {np.sqrt(3) / 2:.15f} 0.0"
    inpsd = (f"ncell 3 3 3\nBC P P P\ncell 1.0 0.0 0.0\n{a2}\n0.0 0.0 1.0\nSym {sym}\nposfile ./posfile\n"
             "momfile ./momfile\nexchange ./jfile\nalat 2.5e-10\n")
    path = _write(tmp_path, inpsd, "1 1 0 0 0\n", "1 1 2.0 0 0 1\n", "1 1 1.0 0.0 0.0 0.5\n")
    st, pot = sl.io.read_uppasd(path)
    big = st.repeat(pot.uppasd_ncell)
    s = _unit(len(big), 18)

    def at(u, v, w):
        return (u % 3) * 9 + (v % 3) * 3 + w % 3   # State.repeat's order

    steps = [(1, 0), (0, 1)] if sym == 2 else [(1, 0), (0, 1), (-1, 1)]
    e = sum(-1.0 * s[at(u, v, w)] @ s[at(u + du, v + dv, w)]    # each bond 2 × 0.5 mRy
            for u in range(3) for v in range(3) for w in range(3) for du, dv in steps)
    assert pot.compute(big.copy(spins=s)).energy == pytest.approx(e * RY_EV * 1e-3, rel=1e-12)


def test_biquadratic_as_uppasd(tmp_path):
    """The bq file was only named in a warning: now a Biquadratic. UppASD's field B_i =
    Σ_j 4 Jbq (e_i·e_j) e_j/|m_i| (2 j_bq (m_i·m_j) m_j, j_bq = 2 Jbq/(|m_i|²|m_j|²)) and energy
    −Σ_i Σ_j Jbq (e_i·e_j)² (mRy, each bond listed from both ends)."""
    Jbq, m = 0.25, 2.0
    s, ev = _chain_evaluation(tmp_path, "bq ./bqfile\n", m, "1 1 1.0 0.0 0.0 1.0\n1 1 -1.0 0.0 0.0 1.0\n",
                              {"bqfile": f"1 1 1.0 0.0 0.0 {Jbq}\n1 1 -1.0 0.0 0.0 {Jbq}\n"}, 11)
    e = sum(-2.0 * s[k] @ s[(k + 1) % 4] - 2 * Jbq * (s[k] @ s[(k + 1) % 4]) ** 2 for k in range(4))
    B = np.array([sum(2.0 * s[j] / m + 4 * Jbq * (s[i] @ s[j]) * s[j] / m for j in ((i + 1) % 4, (i - 1) % 4))
                  for i in range(4)])
    _assert_uppasd(ev, s, e, B)


def test_quartic_uniaxial_k2_is_refused(tmp_path):
    path = _write(tmp_path, CHAIN_INPSD + "anisotropy ./kfile\n", "1 1 0 0 0\n", "1 1 2.0 0 0 1\n",
                  "1 1 1.0 0.0 0.0 1.0\n")
    (tmp_path / "kfile").write_text("1 1 0.1 0.05 0.0 0.0 1.0 0.0\n")
    with pytest.raises(FileFormatError, match=r"kfile: line 1: K2 = 0.05: spinlat has no quartic uniaxial term"):
        sl.io.read_uppasd(path)


def test_tb2j_two_site_folder(tmp_path):
    """TB2J's momfile puts each site's own index in UppASD's chemical column (2 for the second
    site), which read as an alloy component was refused; with tb2j=True it is the site. bcc Fe in
    its conventional cell, every directed nearest-neighbour bond listed (Cartesian Å)."""
    a = 2.87
    d = tmp_path / "UppASD"
    d.mkdir()
    (d / "posfile").write_text("1 1 0.0 0.0 0.0\n2 2 0.5 0.5 0.5\n")
    (d / "momfile").write_text("1 1 2.3 0.0 0.0 1.0\n2 2 2.1 0.0 0.0 1.0\n")
    rows = []
    for i, j, sign in ((1, 2, 1.0), (2, 1, -1.0)):
        for v in np.array(np.meshgrid([-1, 1], [-1, 1], [-1, 1])).reshape(3, -1).T * a / 2:
            rows.append(f"{i} {j} {v[0]} {v[1]} {v[2]} 1.25\n")
    (d / "jASD1").write_text(f"{len(rows)} 0\n" + "".join(rows))
    (d / "input").write_text("cell\nSym 0\nposfile ./posfile\nmomfile ./momfile\nexchange ./jASD1\n")
    st, ham = sl.io.read_uppasd(d, tb2j=True, cell=np.eye(3) * a)
    np.testing.assert_array_equal(st.moments, [2.3, 2.1])
    big = st.repeat(2)
    ref = Heisenberg.from_neighbors(big, J=[2 * 1.25 * RY_EV * 1e-3])
    s = big.copy(spins=_unit(len(big), 7))
    assert ham.compute(s).energy == pytest.approx(ref.compute(s).energy, rel=1e-12)
    with pytest.raises(FileFormatError, match="line 2: chemical index 2: random alloys"):
        sl.io.read_uppasd(d, cell=np.eye(3) * a)


def test_direct_positions_and_lattice_translations_agree_with_cartesian(tmp_path):
    """One triclinic two-site lattice written twice: posfiletype D with maptype 2 (bonds as
    lattice translations from atom jsite) and posfiletype C with maptype 1 (Cartesian bonds in
    units of alat): the same State and the same energies."""
    cell = np.array([[1.0, 0.0, 0.0], [0.3, 1.1, 0.0], [0.1, 0.2, 1.3]])
    frac = np.array([[0.0, 0.0, 0.0], [0.5, 0.4, 0.45]])
    bonds = [(1, 2, (0, 0, 0), 1.5), (2, 1, (0, 0, 0), 1.5), (1, 1, (1, 0, 0), -0.4), (1, 1, (-1, 0, 0), -0.4),
             (2, 1, (1, 1, 0), 0.7), (1, 2, (-1, -1, 0), 0.7)]
    head = "ncell 2 2 2\nBC P P P\ncell " + " ".join(map(str, cell.ravel())) + "\nalat 2.5e-10\nSym 0\n"
    head += "posfile ./posfile\nmomfile ./momfile\nexchange ./jfile\n"
    mom = "1 1 2.0 0 0 1\n2 1 1.0 1 0 0\n"
    jd = "".join(f"{i} {j} {t[0]} {t[1]} {t[2]} {J}\n" for i, j, t, J in bonds)
    direct = _write(tmp_path / "d", head + "posfiletype D\nmaptype 2\n",
                    "".join(f"{k + 1} {k + 1} {f[0]} {f[1]} {f[2]}\n" for k, f in enumerate(frac)), mom, jd)
    cart = frac @ cell
    jc = "".join(f"{i} {j} {' '.join(map(str, cart[j - 1] - cart[i - 1] + np.array(t) @ cell))} {J}\n"
                 for i, j, t, J in bonds)
    cartesian = _write(tmp_path / "c", head, "".join(f"{k + 1} {k + 1} {p[0]} {p[1]} {p[2]}\n"
                                                     for k, p in enumerate(cart)), mom, jc)
    (st1, h1), (st2, h2) = sl.io.read_uppasd(direct), sl.io.read_uppasd(cartesian)
    np.testing.assert_allclose(st1.positions, st2.positions, rtol=0, atol=1e-14)
    np.testing.assert_allclose(st1.cell, cell * 2.5, rtol=0, atol=1e-14)
    big = st1.repeat(2)
    s = big.copy(spins=_unit(len(big), 4))
    e1, e2 = h1.compute(s).energy, h2.compute(s).energy
    assert e1 == pytest.approx(e2, rel=1e-12)
    # by hand: every listed directed bond once, -J e_i·e_j (mRy), over the 8 cells
    sp = s.spins.reshape(2, 2, 2, 2, 3)  # repeat order: cells (a, b, c), then the two sites
    e = 0.0
    for a, b, c in np.ndindex(2, 2, 2):
        for i, j, t, J in bonds:
            e -= J * sp[a, b, c, i - 1] @ sp[(a + t[0]) % 2, (b + t[1]) % 2, (c + t[2]) % 2, j - 1]
    assert e1 == pytest.approx(e * RY_EV * 1e-3, rel=1e-12)


def test_run_configs_and_convert_read_uppasd_inputs(tmp_path):
    """An inpsd.dat as a run config's structure.file or a spinlat convert source (ASE knows no
    such format): the unit cell repeated ncell times, with the momfile's moments and directions."""
    from spinlat.config import read_structure

    path = _write(tmp_path / "bcc", BCC_INPSD.replace("ncell     4 4 4", "ncell 2 1 3"),
                  "1 1 0.0 0.0 0.0\n2 1 0.5 0.5 0.5\n", "1 1 2.23 0.0 0.0 1.0\n2 1 2.1 1.0 0.0 0.0\n",
                  "1 1  0.5 0.5 0.5  1.3377\n")
    unit, _ = sl.io.read_uppasd(path)
    st = read_structure(path)
    assert len(st) == 12
    np.testing.assert_array_equal(st.moments, unit.repeat((2, 1, 3)).moments)
    np.testing.assert_array_equal(st.spins, unit.repeat((2, 1, 3)).spins)
    assert sl.io.convert(path, tmp_path / "u.h5") == 1
    with sl.io.Trajectory(tmp_path / "u.h5") as t:
        np.testing.assert_allclose(t[0].positions, st.positions, rtol=0, atol=1e-14)


def test_read_code_sees_a_changed_file_that_an_option_names(tmp_path, monkeypatch):
    """spinlat.io.codes.read_code caches a read per input files; a jfile given as ``exchange=``
    (not the inpsd.dat's own) was not among them: edited, the cached energy came back (−0.0161 eV
    for −0.1386), and a relative ``exchange="jj"`` from another folder hit the first folder's."""
    from spinlat.io.codes import read_code

    path = _write(tmp_path / "bcc", BCC_INPSD, "1 1 0.0 0.0 0.0\n2 1 0.5 0.5 0.5\n",
                  "1 1 2.23 0.0 0.0 1.0\n2 1 2.23 1.0 0.0 0.0\n", "1 1  0.5 0.5 0.5  1.3377\n")

    def energy(exchange):
        st, ham = read_code("uppasd", path, exchange=exchange)
        return ham.compute(st.repeat(2).copy(spins=_unit(16, 0))).energy

    for d, J in (("a", 1.0), ("b", 3.0)):
        (tmp_path / d).mkdir()
        (tmp_path / d / "jj").write_text(f"1 1  0.5 0.5 0.5  {J}\n")
    other = tmp_path / "a" / "jj"
    first = energy(other)
    other.write_text("1 1  0.5 0.5 0.5  2.00000\n")  # another size: seen whatever the timestamps
    assert energy(other) == pytest.approx(2.0 * first, rel=1e-12)
    monkeypatch.chdir(tmp_path / "a")
    here = energy("jj")
    monkeypatch.chdir(tmp_path / "b")
    assert energy("jj") == pytest.approx(1.5 * here, rel=1e-12)
