"""TB2J exchange.out: both layouts, TB2J's double counting, round trip, malformed files."""

import re
from pathlib import Path

import numpy as np
import pytest

from spinlat.errors import FileFormatError, InputError, MissingFileError
from spinlat.io.tb2j import parse_tb2j, read_tb2j, write_tb2j
from spinlat.potentials import Heisenberg

from conftest import TB2J_FE

DATA = Path(__file__).resolve().parents[1] / "data" / "tb2j"

NEW_FORMAT = """\
==========================================================================================
Information: 
Executed:  
wann2J.py --elements Fe
test file

==========================================================================================
Cell (Angstrom):
4.00000000  0.00000000  0.00000000
0.00000000  4.00000000  0.00000000
0.00000000  0.00000000  4.00000000

==========================================================================================
Atoms:  
(Note: charge and magmoms only count the wannier functions.)
Atom number       x             y             z         w_charge  w_magmom 
Fe1             0.00000000    0.00000000    0.00000000    6.5000    2.5000
Fe2             2.00000000    2.00000000    0.00000000    6.5000   -2.5000
O1              2.00000000    0.00000000    2.00000000    6.1000    0.0100
Total                                                    19.1000    0.0100

------------------------------------------------------------------------------------------
Single Ion Anisotropy (meV): 
(k1 is the anisotropy constant, k1dir is the direction vector)
Atom number       k1              k1dir           
Fe1               0.5000 ( 0.0000,  0.0000,  1.0000)

==========================================================================================
Exchange: 
    i     j              R    J_iso(meV)           vector          distance(A) 
----------------------------------------------------------------------------------------
   Fe1   Fe2   (  0,   0,   0) -3.0000   ( 2.000,  2.000,  0.000)  2.828 
J_iso: -3.0000 
J_iso(Bruno): -2.9000 
dJ/dx: 0.100
[Testing!] DMI: ( 0.1000  0.2000  0.3000)
[Debug!] DMI2: ( 9.0000  9.0000  9.0000)
[Testing!]J_ani:
[[ 0.01  0.02  0.   ]
 [ 0.02 -0.01  0.   ]
 [ 0.    0.    0.   ]]
[Experimental!] DMI_NJt: ( 7.0000  7.0000  7.0000)
----------------------------------------------------------------------------------------
   Fe2   Fe1   (  0,   0,   0) -3.0000   (-2.000, -2.000,  0.000)  2.828 
J_iso: -3.0000 
[Testing!] DMI: (-0.1000 -0.2000 -0.3000)
[Testing!]J_ani:
[[ 0.01  0.02  0.   ]
 [ 0.02 -0.01  0.   ]
 [ 0.    0.    0.   ]]
----------------------------------------------------------------------------------------
   Fe1   Fe1   (  1,   0,   0)  1.5000   ( 4.000,  0.000,  0.000)  4.000 
J_iso:  1.5000 
----------------------------------------------------------------------------------------
   Fe1   Fe1   ( -1,   0,   0)  1.5000   (-4.000,  0.000,  0.000)  4.000 
J_iso:  1.5000 
"""


def test_old_format_bcc_fe():
    st, ham = read_tb2j(TB2J_FE)
    assert ham.n_entries == 342 and ham.n_pairs == 171
    np.testing.assert_allclose(st.cell[1], [-0.822, 2.325, 0.0])
    assert st.moments[0] == pytest.approx(2.3205) and np.allclose(st.spins[0], [0, 0, 1])
    # TB2J: E = −Σ over all 342 listed entries J_iso (meV); ferromagnetic state
    data = parse_tb2j(TB2J_FE)
    e_tb2j = -sum(np.trace(T) / 3 for *_, T, _ in data["entries"]) * 1e-3
    assert ham.compute(st).energy == pytest.approx(e_tb2j, abs=1e-12)
    assert e_tb2j == pytest.approx(-0.2105892, abs=1e-9)
    # nearest-neighbour pair: J_pair = 2 J_TB2J
    nn = np.argmin(np.linalg.norm(ham.R @ ham.cell, axis=1))
    assert ham.J[nn][0, 0] == pytest.approx(2 * 18.7397e-3, rel=1e-3)


def test_from_tb2j_equals_read_tb2j():
    _, a = read_tb2j(TB2J_FE)
    b = Heisenberg.from_tb2j(TB2J_FE)
    np.testing.assert_array_equal(a.J, b.J)
    np.testing.assert_array_equal(a.R, b.R)


def test_new_format_features(tmp_path):
    f = tmp_path / "exchange.out"
    f.write_text(NEW_FORMAT)
    st, ham = read_tb2j(f)
    assert st.symbols == ["Fe", "Fe", "O"]
    np.testing.assert_allclose(st.moments, [2.5, 2.5, 0.0])  # O1 is in no pair: a ligand, moment 0
    np.testing.assert_allclose(st.spins[:, 2], [1, -1, 1])
    assert ham.n_pairs == 3  # Fe1-Fe2, Fe1-Fe1(R=x), on-site k1 of Fe1
    rng = np.random.default_rng(0)
    s = rng.normal(size=(3, 3))
    s /= np.linalg.norm(s, axis=1)[:, None]
    e = ham.compute(st.copy(spins=s)).energy
    # TB2J's Hamiltonian written out by hand (meV), both orderings summed, no 1/2
    d = np.array([0.1, 0.2, 0.3])
    jani = np.array([[0.01, 0.02, 0], [0.02, -0.01, 0], [0, 0, 0]])
    e12 = -(-3.0 * s[0] @ s[1] + s[0] @ jani @ s[1] + d @ np.cross(s[0], s[1]))
    e21 = -(-3.0 * s[1] @ s[0] + s[1] @ jani @ s[0] + (-d) @ np.cross(s[1], s[0]))
    e11 = -2 * 1.5 * 1.0  # Fe1 with its own images along x: s·s = 1
    esia = -0.5 * s[0, 2] ** 2
    assert e == pytest.approx((e12 + e21 + e11 + esia) * 1e-3, abs=1e-15)


def test_collinear_and_dmi_round_trip(tmp_path):
    st, ham = read_tb2j(DATA / "bccFe_dmi_new_format.out")
    assert ham.n_pairs == 13 and np.abs(ham.J - np.swapaxes(ham.J, 1, 2)).max() > 1e-4
    write_tb2j(tmp_path / "x.out", st, ham)
    st2, ham2 = read_tb2j(tmp_path / "x.out")
    np.testing.assert_allclose(ham2.J, ham.J, atol=1e-12)
    np.testing.assert_allclose(st2.positions, st.positions)


def test_single_ion_anisotropy_round_trips(tmp_path):
    """A file's Single Ion Anisotropy section (k1, k1dir) is read as on-site terms: write_tb2j
    writes them back (they were dropped), so the energy survives read → write → read; an on-site
    tensor that is no single-ion term goes into TB2J ≥ 0.9's tensor section and reads back."""

    st, ham = read_tb2j(_broken(tmp_path, NEW_FORMAT))
    assert np.any([(i == j and not R.any()) for i, j, R in zip(ham.i, ham.j, ham.R)])
    write_tb2j(tmp_path / "x.out", st, ham)
    assert "Single Ion Anisotropy (meV)" in (tmp_path / "x.out").read_text()
    st2, ham2 = read_tb2j(tmp_path / "x.out")
    big = st.repeat((2, 2, 2)).copy(spins=np.random.default_rng(4).normal(size=(8 * len(st), 3)))
    assert ham2.compute(big).energy == pytest.approx(ham.compute(big).energy, abs=1e-14)
    onsite = [k for k, (i, j, R) in enumerate(zip(ham.i, ham.j, ham.R)) if i == j and not R.any()]
    J = ham.J.copy()
    J[onsite[0]] = np.diag([0.1, 0.2, 0.3]) * 1e-3                    # biaxial: no k1 (s·e)² term
    biaxial = Heisenberg(ham.cell, ham.positions, ham.numbers, ham.i, ham.j, ham.R, J)
    write_tb2j(tmp_path / "y.out", st, biaxial)                       # TB2J ≥ 0.9's tensor section
    assert "Single Ion Anisotropy: " in (tmp_path / "y.out").read_text()
    _, back = read_tb2j(tmp_path / "y.out")
    assert back.compute(big).energy == pytest.approx(biaxial.compute(big).energy, abs=1e-14)


# the layout TB2J 0.9.22 writes (SpinIO.write_txt): k1/k1dir folded into a tensor section
TENSOR_SIA = """\
==========================================================================================
Cell (Angstrom):
2.87000000  0.00000000  0.00000000
0.00000000  2.87000000  0.00000000
0.00000000  0.00000000  3.15700000

==========================================================================================
Atoms:  
(Note: charge and magmoms only count the wannier functions.)
Atom_number        x             y             z       w_charge    M(x)      M(y)      M(z)   
Fe1             0.00000000    0.00000000    0.00000000    0.0000    0.0000    0.0000    2.2000
Co1             1.43500000    1.43500000    1.57850000    0.0000    0.0000    0.0000    1.6000
Total                                                     0.0000    0.0000    0.0000    3.8000


==========================================================================================
Single Ion Anisotropy: 
Atom_number      A_xx          A_xy          A_xz     
                 A_yx          A_yy          A_yz     
                 A_zx          A_zy          A_zz     
Fe1             0.00000000    0.00000000    0.00000000
                0.00000000    0.00000000    0.00000000
                0.00000000    0.00000000    1.00000000
----------------------------------------------------------------------------------------
Co1            -0.10000000   -0.10000000   -0.00000000
               -0.10000000   -0.10000000   -0.00000000
               -0.00000000   -0.00000000    0.20000000
----------------------------------------------------------------------------------------
==========================================================================================
Exchange: 
    i      j          R        J_iso(meV)          vector          distance(A) 
----------------------------------------------------------------------------------------
   Fe1   Co1   (  0,   0,   0)  4.5544   ( 1.435,  1.435,  1.579)  2.571 
J_iso:  4.5544 
[Testing!] DMI: (-0.4604 -0.9181 -0.9669)
[Testing!]J_ani:
[[ 0.15   0.642  0.422]
 [ 0.642 -0.389 -0.062]
 [ 0.422 -0.062  0.239]]
Combined J tensor (meV) [J = Jiso*I + DMI_antisymmetric + Jani_symmetric]:
[[ 4.705 -0.325  1.341]
 [ 1.609  4.165 -0.523]
 [-0.496  0.398  4.793]]
----------------------------------------------------------------------------------------
   Co1   Fe1   (  0,   0,   0)  4.5544   (-1.435, -1.435, -1.579)  2.571 
J_iso:  4.5544 
[Testing!] DMI: ( 0.4604  0.9181  0.9669)
[Testing!]J_ani:
[[ 0.15   0.642  0.422]
 [ 0.642 -0.389 -0.062]
 [ 0.422 -0.062  0.239]]
Combined J tensor (meV) [J = Jiso*I + DMI_antisymmetric + Jani_symmetric]:
[[ 4.705  1.609 -0.496]
 [-0.325  4.165  0.398]
 [ 1.341 -0.523  4.793]]
"""


def test_tensor_single_ion_anisotropy_of_tb2j_0_9(tmp_path):
    """TB2J ≥ 0.9 writes the single-ion anisotropy only as a tensor section (k1 and k1dir folded
    into A = k1 k1dir k1dirᵀ); it was ignored with a warning, so a run from such a file lost its
    anisotropy. It is TB2J's E = −Σ s_iᵀ A_i s_i now, and write_tb2j writes it back."""
    f = _broken(tmp_path, TENSOR_SIA)
    st, ham = read_tb2j(f)
    rng = np.random.default_rng(3)
    s = rng.normal(size=(2, 3))
    s /= np.linalg.norm(s, axis=1)[:, None]
    e = ham.compute(st.copy(spins=s)).energy
    d = np.array([-0.4604, -0.9181, -0.9669])
    jani = np.array([[0.15, 0.642, 0.422], [0.642, -0.389, -0.062], [0.422, -0.062, 0.239]])
    T = 4.5544 * np.eye(3) + jani
    e_pairs = -(s[0] @ T @ s[1] + d @ np.cross(s[0], s[1])) - (s[1] @ T @ s[0] + (-d) @ np.cross(s[1], s[0]))
    A_fe = np.diag([0.0, 0.0, 1.0])
    A_co = np.array([[-0.1, -0.1, 0], [-0.1, -0.1, 0], [0, 0, 0.2]])
    e_sia = -(s[0] @ A_fe @ s[0]) - (s[1] @ A_co @ s[1])
    assert e == pytest.approx((e_pairs + e_sia) * 1e-3, abs=1e-15)
    write_tb2j(tmp_path / "back.out", st, ham)
    _, back = read_tb2j(tmp_path / "back.out")
    big = st.repeat((2, 2, 2)).copy(spins=rng.normal(size=(16, 3)))
    assert back.compute(big).energy == pytest.approx(ham.compute(big).energy, abs=1e-14)


@pytest.mark.parametrize("mutate, message", [
    (lambda t: t.replace("                0.00000000    0.00000000    1.00000000\n", ""),
     r"line 23: row A_z of atom Fe1's anisotropy tensor missing"),
    (lambda t: t.replace("Co1            -0.10000000", "Ni1            -0.10000000"),
     r"line 25: unknown atom 'Ni1' in the single-ion anisotropy tensor section"),
    (lambda t: t.replace("               -0.10000000   -0.10000000   -0.00000000\n", "               -0.1 x 0\n"),
     r"line 26: .*row A_y of atom Co1"),
])
def test_tensor_single_ion_anisotropy_malformed(tmp_path, mutate, message):
    with pytest.raises(FileFormatError, match=message):
        read_tb2j(_broken(tmp_path, mutate(TENSOR_SIA)))


def test_written_names_must_read_back(tmp_path):
    """write_tb2j(names=...) with a blank or repeated name wrote a file its reader refuses."""
    st, ham = read_tb2j(DATA / "bccFe_dmi_new_format.out")
    for names in (["Fe 1"] * len(st), ["fe1"], ["Fe1", "Fe1"][:len(st)] * 2, ["Fe(1)"]):
        names = (names * len(st))[:len(st)] if len(names) == 1 else names
        with pytest.raises(InputError, match="write_tb2j: names must be"):
            write_tb2j(tmp_path / "n.out", st, ham, names=names)
    write_tb2j(tmp_path / "n.out", st, ham, names=[f"Fe_a{k}" for k in range(len(st))])
    np.testing.assert_allclose(read_tb2j(tmp_path / "n.out")[1].J, ham.J, atol=1e-12)


def test_new_format_file_equals_old():
    st, old = read_tb2j(TB2J_FE)
    _, new = read_tb2j(DATA / "bccFe_new_format.out")
    big = st.repeat((2, 2, 2)).copy(spins=np.random.default_rng(1).normal(size=(8, 3)))
    assert new.compute(big).energy == pytest.approx(old.compute(big).energy, abs=1e-12)


def _broken(tmp_path, text):
    f = tmp_path / "exchange.out"
    f.write_text(text)
    return f


@pytest.mark.parametrize("mutate, message", [
    (lambda t: t.replace("Cell (Angstrom):", "Cel:"), "Cell"),
    (lambda t: t.split("Exchange:")[0], "Exchange"),
    (lambda t: t.replace("0.00000000  4.00000000  0.00000000", "0.0  4.0"), "line 10:"),
    (lambda t: t.replace(t[t.index("Total"): t.index("0.0100\n\n") + 7], ""), "Total"),
    (lambda t: t.replace("Total ", "Tot "), "atom Tot"),
    (lambda t: t.replace("   Fe2   Fe1   (  0,", "   Fe2   Fe9   (  0,"), "Fe9"),
    (lambda t: t.replace("   Fe1   Fe1   (  1,   0,   0)", "   Fe1   Fe1   (  1,   0)"), "pair line"),
    (lambda t: t[: t.index(" [ 0.02 -0.01")], "J_ani"),
    (lambda t: t[: t.index("\n---", t.index("Exchange:"))], "no pairs"),
    (lambda t: t[: t.index("Exchange:") + 200], "line 32: expected a pair line"),
])
def test_malformed_files(tmp_path, mutate, message):
    with pytest.raises(FileFormatError, match=message):
        read_tb2j(_broken(tmp_path, mutate(NEW_FORMAT)))


def test_missing_file(tmp_path):
    with pytest.raises(MissingFileError, match="TB2J file .*nope.out does not exist"):
        read_tb2j(tmp_path / "nope.out")
    # TB2J's output directory given for its file: the file in it is named
    results = tmp_path / "TB2J_results"
    results.mkdir()
    with pytest.raises(InputError, match=r"TB2J_results is a directory, not a file$"):
        read_tb2j(results)
    (results / "exchange.out").write_text(TB2J_FE.read_text())
    with pytest.raises(InputError, match=r"TB2J_results is a directory, not a file; give the TB2J file in it, "
                                         r".*TB2J_results/exchange.out"):
        Heisenberg.from_tb2j(results)


# ------------------------------------------------------------------------------------------
# number syntax, truncation, pair symmetry (issue 9.7)
# ------------------------------------------------------------------------------------------

_NUMBER = re.compile(r"(?<![\w.])[-+]?\d+\.\d+(?![\w.])")


def _fortran(text, start="Cell (Angstrom):"):
    """Every decimal number after ``start`` rewritten with a Fortran D exponent and the same
    digits (18.7397 → 1.87397D+1): the same values exactly."""
    from decimal import Decimal

    k = text.index(start)
    body = _NUMBER.sub(lambda m: "{:E}".format(Decimal(m.group(0))).replace("E", "D"), text[k:])
    return text[:k] + body


def _entries(path):
    return {(i, j, tuple(R)): T for i, j, R, T, _ in parse_tb2j(path)["entries"]}


def _same_model(a, b):
    (sa, ha), (sb, hb) = read_tb2j(a), read_tb2j(b)
    np.testing.assert_array_equal(sa.positions, sb.positions)
    np.testing.assert_array_equal(sa.cell, sb.cell)
    np.testing.assert_array_equal(sa.moments, sb.moments)
    np.testing.assert_array_equal(ha.J, hb.J)
    np.testing.assert_array_equal(ha.R, hb.R)
    assert ha.n_entries == hb.n_entries


@pytest.mark.parametrize("source", [TB2J_FE, DATA / "bccFe_dmi_new_format.out"])
def test_fortran_d_exponents_read_as_their_values(tmp_path, source):
    """Issue 9.7: '1.87397D+01' was read as 1.87397 (J 10× too small)."""
    text = source.read_text()
    fortran = _fortran(text)
    assert "1.87397D+1" in fortran or "D+1" in fortran
    f = tmp_path / "exchange.out"
    f.write_text(fortran)
    _same_model(f, source)
    _, ham = read_tb2j(f)
    nn = np.argmin(np.linalg.norm(ham.R @ ham.cell, axis=1))
    assert ham.J[nn][0, 0] > 0.035  # 2 × ~18.5 meV


def _pair_starts(lines):
    return [k for k, ln in enumerate(lines) if ln.startswith("-" * 80)]


def test_file_cut_at_a_pair_boundary_is_refused(tmp_path):
    """Issue 9.7: cut after 172 of 342 entries, 2 entries lack their (j, i, −R) partner."""
    lines = TB2J_FE.read_text().splitlines()
    cut = "\n".join(lines[:_pair_starts(lines)[172]]) + "\n"
    with pytest.raises(FileFormatError, match=r"2 of 172 exchange entries lack their reversed partner.*"
                                              r"Fe1 Fe1 R=\(-2, 0, 2\) \(line 1533\)"):
        read_tb2j(_broken(tmp_path, cut))


def test_missing_separator_line_swallows_nothing(tmp_path):
    """Issue 9.7: a pair line without the separator before it is read as its own pair."""
    lines = TB2J_FE.read_text().splitlines()
    starts = _pair_starts(lines)
    for k in (starts[5], starts[-1]):
        f = _broken(tmp_path, "\n".join(lines[:k] + lines[k + 1:]) + "\n")
        _same_model(f, TB2J_FE)


@pytest.mark.parametrize("cut, message", [
    (lambda t: t[: t.rindex(" [") + 6], r"line 3097: J_ani row 3 of 3 expected"),        # inside the last matrix
    (lambda t: t[: t.rindex("[Experimental!]J_ani:")], r"last pair block lacks its J_ani line"),
    (lambda t: t[: t.rindex("J_iso: -0.1921") + 10],
     r"line 3091: J_iso -0.0 differs from -0.1921 on the pair line 3090"),
    (lambda t: t[: t.rindex("J_iso: -0.1921")], r"last pair block lacks its J_iso, DMI, J_ani"),
])
def test_file_cut_inside_the_last_pair_is_refused(tmp_path, cut, message):
    with pytest.raises(FileFormatError, match=message):
        read_tb2j(_broken(tmp_path, cut(TB2J_FE.read_text())))


@pytest.mark.parametrize("mutate, message", [
    (lambda t: t.replace("J_iso: 18.7397 ", "J_iso: 18.73x7 ", 1), r"line 22: '18.73x7' is not a number"),
    (lambda t: t.replace("J_iso: 18.7397 ", "J_iso: nan ", 1), r"line 22: 'nan' is not a finite number"),
    (lambda t: t.replace("DMI: ( 0.0000  0.0000  0.0000)", "DMI: ( 0.0000  0.0000)", 1), r"line 24: expected 3 number"),
    (lambda t: t.replace("[[ 0. -0. -0.]", "[[ 0. -0. -0. 1.]", 1), r"line 26: expected 3 number"),
    (lambda t: t.replace("2.3205\nTotal", "2.3205  0.1\nTotal", 1), r"line 14: expected 7 number"),
    (lambda t: t.replace("-0.822   2.325   0.000", "-0.822   2.325", 1), r"line 7: expected 3 number"),
    (lambda t: t.replace("0(Fe1  ) ( -1,   0,   0) 18.7397", "0(Fe1  ) ( -1,   1,   0) 18.7397", 1),
     r"line 21: the bond vector \[-2.467, 0.0, 0.0\] on the pair line is not r_j \+ R·cell − r_i"),
    (lambda t: t.replace("0(Fe1  ) ( -1,   0,   0) 18.7397", "0(Fe1  ) (  1,   0,   0) 18.7397", 1),
     r"line 21: the bond vector"),
])
def test_malformed_numbers_and_fields_name_the_line(tmp_path, mutate, message):
    with pytest.raises(FileFormatError, match=message):
        read_tb2j(_broken(tmp_path, mutate(TB2J_FE.read_text())))


def test_self_image_partners_that_disagree_are_reported_once(tmp_path):
    text = TB2J_FE.read_text().replace("J_iso: 18.7397 ", "J_iso: 18.7397 ", 1)
    lines = text.splitlines()
    k = lines.index("J_iso: 18.7397 ")
    lines[k - 1] = lines[k - 1].replace("18.7397", "18.7897")
    lines[k] = "J_iso: 18.7897 "
    with pytest.warns(UserWarning, match=r"^[^\n]*: 1 pair\(s\) whose two entries .* largest 0.05 meV for Fe1 Fe1"):
        _, ham = read_tb2j(_broken(tmp_path, "\n".join(lines) + "\n"))
    _, clean = read_tb2j(TB2J_FE)
    assert np.abs(ham.J - clean.J).max() == pytest.approx(0.05e-3, abs=1e-12)  # T + T'ᵀ: 18.7897 + 18.7397


def test_partners_that_disagree_are_reported_and_summed(tmp_path):
    """(i, j, R) and (j, i, −R) with different tensors: a warning names the pair, and the pair
    tensor is TB2J's literal sum T_ij + T_jiᵀ, so the energy is still E_TB2J."""
    text = NEW_FORMAT.replace("[Testing!] DMI: (-0.1000 -0.2000 -0.3000)", "[Testing!] DMI: (-0.1000 -0.2000 -0.2000)")
    f = _broken(tmp_path, text)
    with pytest.warns(UserWarning, match=r"1 pair\(s\) whose two entries .* largest 0.1 meV for Fe1 Fe2 R=\(0, 0, 0\)"):
        st, ham = read_tb2j(f)
    with pytest.warns(UserWarning, match="differ by more than"):
        entries = _entries(f)
    k = next(p for p in range(ham.n_pairs) if {ham.i[p], ham.j[p]} == {0, 1})
    T12, T21 = entries[(0, 1, (0, 0, 0))], entries[(1, 0, (0, 0, 0))]
    expect = T12 + T21.T if ham.i[k] == 0 else T21 + T12.T
    np.testing.assert_allclose(ham.J[k], expect * 1e-3, atol=1e-15)
    rng = np.random.default_rng(3)
    s = rng.normal(size=(3, 3))
    s /= np.linalg.norm(s, axis=1)[:, None]
    e_tb2j = -sum(s[i] @ T @ s[j] for (i, j, R), T in entries.items()) * 1e-3 - 0.5e-3 * s[0, 2] ** 2
    assert ham.compute(st.copy(spins=s)).energy == pytest.approx(e_tb2j, abs=1e-15)


def test_total_line_that_is_not_the_sum_warns(tmp_path):
    """An atom row that no pair refers to (O1) is lost without a trace but for the Total line."""
    text = NEW_FORMAT.replace("O1              2.00000000    0.00000000    2.00000000    6.1000    0.0100\n", "")
    with pytest.warns(UserWarning, match=r"line 19: the Total line \[19.1, 0.01\] is not the sum \[13.0, 0.0\]"):
        st, _ = read_tb2j(_broken(tmp_path, text))
    assert len(st) == 2


def test_ligands_get_no_moment_and_can_be_left_out(tmp_path):
    """O1 takes part in no exchange pair and no anisotropy term: read_tb2j gives it moment 0 (not
    TB2J's 0.01 μB Wannier moment); sites="coupled" keeps the Fe sublattice alone, with the same
    energy for the same Fe spins."""
    from spinlat import State
    from spinlat.errors import InputError

    f = tmp_path / "exchange.out"
    f.write_text(NEW_FORMAT)
    st, ham = read_tb2j(f)
    np.testing.assert_array_equal(ham.coupled, [True, True, False])
    np.testing.assert_array_equal(st.magnetic, [True, True, False])
    fe, ham_fe = read_tb2j(f, sites="coupled")
    assert fe.symbols == ["Fe", "Fe"] and ham_fe.n_pairs == ham.n_pairs == 3
    np.testing.assert_array_equal(fe.moments, [2.5, 2.5])
    np.testing.assert_array_equal(fe.positions, st.positions[:2])
    np.testing.assert_array_equal(ham_fe.coupled, [True, True])
    rng = np.random.default_rng(4)
    s = rng.normal(size=(3, 3))
    big = st.repeat(2).copy(spins=np.tile(s, (8, 1)))
    small = fe.repeat(2).copy(spins=np.tile(s[:2], (8, 1)))
    assert ham_fe.compute(small).energy == pytest.approx(ham.compute(big).energy, abs=1e-15)
    np.testing.assert_allclose(Heisenberg.from_tb2j(f, sites="coupled").J, ham.J, rtol=0, atol=0)
    with pytest.raises(InputError, match="sites: expected one of 'all', 'coupled'"):
        Heisenberg.from_tb2j(f, sites="magnetic")
    # every atom of bcc Fe is coupled: nothing changes
    st_all, _ = read_tb2j(TB2J_FE)
    st_c, _ = read_tb2j(TB2J_FE, sites="coupled")
    np.testing.assert_array_equal(st_all.moments, st_c.moments)


@pytest.mark.parametrize("module", ["gzip", "bz2", "lzma"])
def test_compressed_tb2j_files_are_read(tmp_path, module):
    """exchange.out.gz (as archives keep DFT outputs) was refused as 'no Cell (Angstrom) section; not
    a TB2J exchange.out file'; it is read by content, as the LAMMPS readers read compressed dumps."""
    import importlib

    f = tmp_path / "exchange.out"
    f.write_text(NEW_FORMAT)
    packed = tmp_path / "exchange.out.packed"
    packed.write_bytes(importlib.import_module(module).compress(f.read_bytes()))
    st, ham = read_tb2j(f)
    st2, ham2 = read_tb2j(packed)
    for name in ("positions", "numbers", "spins", "moments", "cell"):
        np.testing.assert_array_equal(getattr(st2, name), getattr(st, name))
    s = np.random.default_rng(1).normal(size=(3, 3))
    assert ham2.compute(st.copy(spins=s)).energy == ham.compute(st.copy(spins=s)).energy
    assert Heisenberg.from_tb2j(packed).compute(st.copy(spins=s)).energy == ham.compute(st.copy(spins=s)).energy
    packed.write_bytes(packed.read_bytes()[:40])   # cut short: named, not a traceback
    with pytest.raises(FileFormatError, match="exchange.out.packed: cannot read TB2J file"):
        read_tb2j(packed)


def test_tb2j_xml_file_is_named(tmp_path):
    """TB2J_results/Multibinit/exchange.xml given instead of exchange.out said only 'no Cell
    (Angstrom) section; not a TB2J exchange.out file'."""
    f = tmp_path / "exchange.xml"
    f.write_text('<?xml version="1.0" ?>\n<System_definition>\n</System_definition>\n')
    with pytest.raises(FileFormatError, match=r"exchange.xml: an XML file \('<\?xml version=\"1.0\" \?>'\), such as "
                                              "TB2J's Multibinit exchange.xml; spinlat reads TB2J's exchange.out"):
        Heisenberg.from_tb2j(f)
