"""TB2J exchange.out: both layouts, TB2J's double counting, round trip, malformed files."""

from pathlib import Path

import numpy as np
import pytest

from spinlat.errors import FileFormatError
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
    np.testing.assert_allclose(st.moments, [2.5, 2.5, 0.01])
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
    with pytest.raises(FileFormatError, match="cannot read"):
        read_tb2j(tmp_path / "nope.out")
