"""sl.io.read_vampire: VAMPIRE unit-cell and material files (as TB2J writes them beside
exchange.out) as a State and a Heisenberg, against read_tb2j and a hand computation."""

import numpy as np
import pytest
from conftest import TB2J_FE, assert_matches_tb2j

import spinlat as sl
from spinlat.errors import FileFormatError

E = 1.602176634e-19  # J per eV


def _unit(n, seed):
    s = np.random.default_rng(seed).normal(size=(n, 3))
    return s / np.linalg.norm(s, axis=1)[:, None]


def _tb2j_vampire(d, data):
    """The files TB2J's Vampire writer makes from a TB2J run: cell sizes and directions, direct
    positions, every directed entry as a tensor ×2 in joules; moments in the material file."""
    cell, pos = data["cell"], data["positions"]
    size = np.linalg.norm(cell, axis=1)
    lines = ["# Unit cell size (Angstrom):", " ".join(map(str, size)), "# Unit cell lattice vectors:"]
    lines += [" ".join(map(str, r)) for r in cell / size[:, None]]
    frac = pos @ np.linalg.inv(cell)
    lines += ["# Atoms", f"{len(pos)} {len(pos)}"] + [f"{k} {f[0]} {f[1]} {f[2]} {k}" for k, f in enumerate(frac)]
    lines += ["# Interactions", f"{len(data['entries'])} tensorial"]
    for c, (i, j, R, T, _) in enumerate(data["entries"]):
        vals = (np.asarray(T) * 1e-3 * 2.0 * E).ravel()
        lines.append(f"{c} {i} {j} {R[0]} {R[1]} {R[2]} " + " ".join(f"{v:.17g}" for v in vals))
    (d / "vampire.UCF").write_text("\n".join(lines) + "\n")
    mats = [f"material:num-materials = {len(pos)}"]
    for k, m in enumerate(data["magmoms"]):
        ms = np.linalg.norm(m)
        mats += [f"material[{k + 1}]:material-name=Fe", f"material[{k + 1}]:atomic-spin-moment={ms} !muB",
                 f"material[{k + 1}]:uniaxial-anisotropy-constant=0.0", f"material[{k + 1}]:material-element=Fe",
                 f"material[{k + 1}]:initial-spin-direction = {','.join(map(str, m / ms))}",
                 f"material[{k + 1}]:uniaxial-anisotropy-direction = 0.0 , 0.0, 1.0"]
    (d / "vampire.mat").write_text("\n".join(mats) + "\n")
    return d / "vampire.UCF"


def test_tb2j_vampire_files_match_read_tb2j(tmp_path):
    from spinlat.formats.tb2j import parse_tb2j

    data = parse_tb2j(TB2J_FE)
    ucf = _tb2j_vampire(tmp_path, data)
    st, ham = sl.io.read_vampire(ucf)
    assert_matches_tb2j(st, ham, rel=1e-12)
    np.testing.assert_allclose(st.spins, sl.io.read_tb2j(TB2J_FE)[0].spins, rtol=0, atol=1e-15)


def test_hand_chain_with_anisotropy(tmp_path):
    """A chain along x: the bond listed from both ends with J = 2e-21 J (VAMPIRE's −½ Σ_i Σ_j)
    is −J s_i·s_j per bond; a uniaxial constant k (J/atom) along y is −k (s·ŷ)². The atom's id
    column (1 here) is a label: VAMPIRE numbers atoms by their order (it was refused)."""
    (tmp_path / "c.UCF").write_text("# size\n3.0 5.0 5.0\n# vectors\n1 0 0\n0 1 0\n0 0 1\n# Atoms\n1 1\n"
                                    "1 0 0 0 0\n# Interactions\n2 isotropic\n0 0 0 1 0 0 2e-21\n1 0 0 -1 0 0 2e-21\n")
    (tmp_path / "c.mat").write_text("material:num-materials=1\nmaterial[1]:atomic-spin-moment=2.2 !muB\n"
                                    "material[1]:uniaxial-anisotropy-constant=1e-22\n"
                                    "material[1]:uniaxial-anisotropy-direction=0,1,0\n")
    st, ham = sl.io.read_vampire(tmp_path / "c.UCF", tmp_path / "c.mat")
    np.testing.assert_array_equal(st.moments, [2.2])
    big = st.repeat((4, 1, 1))
    s = _unit(4, 3)
    e = sum(-2e-21 / E * s[k] @ s[(k + 1) % 4] - 1e-22 / E * s[k, 1] ** 2 for k in range(4))
    assert ham.compute(big.copy(spins=s)).energy == pytest.approx(e, rel=1e-13)


@pytest.mark.parametrize("edit, match", [
    (lambda t: t.replace("2 isotropic", "2 normalised-isotropic"),
     r"b.mat: no material\[1\]:exchange-matrix\[1\] for the normalised interaction at .*b.UCF line 12"),
    (lambda t: t.replace("2 isotropic", "2 normalised-bogus"), "exchange type 'normalised-bogus'"),
    (lambda t: t.replace("1 0 0 -1 0 0 2e-21\n", ""), "2 interactions announced at line 11, 1 found"),
    (lambda t: t.replace("0 0 0 1 0 0 2e-21", "0 0 3 1 0 0 2e-21"), r"line 12: atoms 0, 3 outside the cell's 0..0"),
    (lambda t: t.replace("0 0 0 1 0 0 2e-21", "0 0 0 1 0 0"), "line 12: a isotropic interaction needs"),
])
def test_bad_ucf_names_the_line(tmp_path, edit, match):
    text = ("3.0 5.0 5.0\n1 0 0\n0 1 0\n0 0 1\n1 1\n0 0 0 0 0\n2 isotropic\n0 0 0 1 0 0 2e-21\n"
            "1 0 0 -1 0 0 2e-21\n")
    text = "# a\n# b\n# c\n# d\n" + text
    (tmp_path / "b.UCF").write_text(edit(text))
    (tmp_path / "b.mat").write_text("material[1]:atomic-spin-moment=2.2\n")
    with pytest.raises(FileFormatError, match=match):
        sl.io.read_vampire(tmp_path / "b.UCF")


CHAIN = ("# size\n3.0 5.0 5.0\n# vectors\n1 0 0\n0 1 0\n0 0 1\n# Atoms\n1 1\n1 0 0 0 0\n# Interactions\n"
         "2 {kind}\n0 0 0 1 0 0 {v}\n1 0 0 -1 0 0 {v}\n")


@pytest.mark.parametrize("kind, v, matrix, J", [
    ("normalised-isotropic", "1.0", "2e-21", 2e-21),
    ("normalised-isotropic", "0.5", "4e-21, 1e-21, 1e-21", 2e-21),       # the isotropic type takes xx
    ("normalised-vectorial", "1 1 0.5", "2e-21, 2e-21, 4e-21", 2e-21),
    ("normalised-tensorial", "1 7 7 7 1 7 7 7 1", "2e-21", 2e-21),       # off-diagonals dropped, as VAMPIRE
])
def test_normalised_exchange_takes_the_material_matrix(tmp_path, kind, v, matrix, J):
    """Normalised exchange types were refused: VAMPIRE multiplies the UCF values by the material
    file's exchange-matrix (unroll_normalised.cpp); the chain's energy is −J Σ s_i·s_i+1."""
    (tmp_path / "c.UCF").write_text(CHAIN.format(kind=kind, v=v))
    (tmp_path / "c.mat").write_text(f"material[1]:atomic-spin-moment=2.2\nmaterial[1]:exchange-matrix[1] = {matrix}\n")
    st, pot = sl.io.read_vampire(tmp_path / "c.UCF")
    s = _unit(4, 5)
    e = sum(-J / E * s[k] @ s[(k + 1) % 4] for k in range(4))
    assert pot.compute(st.repeat((4, 1, 1)).copy(spins=s)).energy == pytest.approx(e, rel=1e-13)


def test_cubic_anisotropy(tmp_path):
    """cubic-anisotropy-constant was silently ignored ("other material keys are not used"): now
    VAMPIRE's E = −(kc/2) Σ (sx⁴ + sy⁴ + sz⁴) (cubic_fourth_order.cpp), the constant included."""
    (tmp_path / "c.UCF").write_text(CHAIN.format(kind="isotropic", v="0"))
    (tmp_path / "c.mat").write_text("material[1]:atomic-spin-moment=2.2\n"
                                    "material[1]:cubic-anisotropy-constant = 3e-22\n")
    st, pot = sl.io.read_vampire(tmp_path / "c.UCF")
    s = _unit(4, 6)
    big = st.repeat((4, 1, 1)).copy(spins=s)
    assert pot.compute(big).energy == pytest.approx(-1.5e-22 / E * np.sum(s ** 4), rel=1e-13)


@pytest.mark.parametrize("ucf_tail, mat_line, name, match", [
    ("1 normalised-isotropic\n0 0 0 1 0 0 1e-22\n", "", "biquadratic",
     r"c.UCF: line 14: a normalised-isotropic biquadratic exchange section"),
    ("", "material[1]:fourth-order-uniaxial-anisotropy-constant = 1e-23\n", "anisotropy",
     r"c.mat: line 2: material\[1\]:fourth-order-uniaxial-anisotropy-constant = 1e-23"),
    ("", "material[1]:dmi-constant[1] = 1e-23\n", "dmi", r"c.mat: line 2: material\[1\]:dmi-constant\[1\]"),
])
def test_terms_spinlat_lacks_are_refused_unless_dropped(tmp_path, ucf_tail, mat_line, name, match):
    """A (normalised) biquadratic section after the bilinear interactions, and material keys that
    change the energy, were silently ignored: refused with file and line unless drop names them."""
    (tmp_path / "c.UCF").write_text(CHAIN.format(kind="isotropic", v="2e-21") + ucf_tail)
    (tmp_path / "c.mat").write_text("material[1]:atomic-spin-moment=2.2\n" + mat_line)
    with pytest.raises(FileFormatError, match=match + rf".*spinlat has no such term.*drop=\['{name}'\]"):
        sl.io.read_vampire(tmp_path / "c.UCF")
    st, pot = sl.io.read_vampire(tmp_path / "c.UCF", drop=[name])
    s = _unit(4, 7)
    e = sum(-2e-21 / E * s[k] @ s[(k + 1) % 4] for k in range(4))
    assert pot.compute(st.repeat((4, 1, 1)).copy(spins=s)).energy == pytest.approx(e, rel=1e-13)
    from spinlat.config import read_structure  # the structure alone reads whatever the terms

    np.testing.assert_array_equal(read_structure(tmp_path / "c.UCF").moments, [2.2])


def test_initial_spins_that_are_not_directions_are_named(tmp_path):
    """initial-spin-direction = random / skyrmion, ... (VAMPIRE's sample Co.mat) silently gave +z."""
    (tmp_path / "c.UCF").write_text(CHAIN.format(kind="isotropic", v="2e-21"))
    (tmp_path / "c.mat").write_text("material[1]:atomic-spin-moment=1.72\n"
                                    "material[1]:initial-spin-direction = skyrmion, 0.5, 0.5, 0.3\n")
    with pytest.warns(UserWarning, match=r"c.mat: line 2: initial-spin-direction = skyrmion, 0.5, 0.5, 0.3: not a "
                                         r"direction.*spins of this material are \+z"):
        st, _ = sl.io.read_vampire(tmp_path / "c.UCF")
    np.testing.assert_array_equal(st.spins, [[0.0, 0.0, 1.0]])


def test_interaction_unit(tmp_path):
    """A UCF written in meV (VAMPIRE's exchange:meV-interaction-unit, in the input file this reader
    does not see) read as joules gave energies 1e-22 × too small, silently: refused naming the
    line and the option; interaction_unit='meV' reads it."""
    (tmp_path / "c.UCF").write_text(CHAIN.format(kind="isotropic", v="12.5"))
    (tmp_path / "c.mat").write_text("material[1]:atomic-spin-moment=2.2\n")
    with pytest.raises(FileFormatError, match=r"line 12: interaction value 12.5 is not .* joules.*interaction_unit='meV'"):
        sl.io.read_vampire(tmp_path / "c.UCF")
    st, pot = sl.io.read_vampire(tmp_path / "c.UCF", interaction_unit="meV")
    s = _unit(4, 9)
    e = sum(-12.5e-3 * s[k] @ s[(k + 1) % 4] for k in range(4))
    assert pot.compute(st.repeat((4, 1, 1)).copy(spins=s)).energy == pytest.approx(e, rel=1e-13)
    from spinlat.config import read_structure  # the structure alone reads whatever the unit

    np.testing.assert_array_equal(read_structure(tmp_path / "c.UCF").moments, [2.2])
    (tmp_path / "c.UCF").write_text(CHAIN.format(kind="isotropic", v="2e-21"))
    with pytest.raises(FileFormatError, match="not an exchange energy in meV"):
        sl.io.read_vampire(tmp_path / "c.UCF", interaction_unit="meV")


def test_material_energies_in_another_unit_are_refused(tmp_path):
    """'uniaxial-anisotropy-constant = 0.05 !meV' was read as 0.05 J (the unit after ! dropped)."""
    (tmp_path / "c.UCF").write_text(CHAIN.format(kind="isotropic", v="2e-21"))
    (tmp_path / "c.mat").write_text("material[1]:atomic-spin-moment=2.2 !muB\n"
                                    "material[1]:uniaxial-anisotropy-constant=1e-24 !J\n"
                                    "material[1]:cubic-anisotropy-constant=0.05 !meV\n")
    with pytest.raises(FileFormatError, match=r"c.mat: line 3: cubic-anisotropy-constant in 'meV'.*in J"):
        sl.io.read_vampire(tmp_path / "c.UCF")


def test_biquadratic_section(tmp_path):
    """The biquadratic section VAMPIRE reads after the bilinear one was silently ignored: now a
    Biquadratic, VAMPIRE's E = −½ Σ_i Σ_j B (S_i·S_j)² (each bond listed from both ends)."""
    (tmp_path / "c.UCF").write_text(CHAIN.format(kind="isotropic", v="2e-21")
                                    + "# biquadratic\n2 isotropic\n0 0 0 1 0 0 3e-22\n1 0 0 -1 0 0 3e-22\n")
    (tmp_path / "c.mat").write_text("material[1]:atomic-spin-moment=2.2\n")
    st, pot = sl.io.read_vampire(tmp_path / "c.UCF")
    s = _unit(4, 8)
    e = sum(-2e-21 / E * s[k] @ s[(k + 1) % 4] - 3e-22 / E * (s[k] @ s[(k + 1) % 4]) ** 2 for k in range(4))
    assert pot.compute(st.repeat((4, 1, 1)).copy(spins=s)).energy == pytest.approx(e, rel=1e-13)
    (tmp_path / "c.UCF").write_text(CHAIN.format(kind="isotropic", v="2e-21") + "3 isotropic\n0 0 0 1 0 0 3e-22\n")
    with pytest.raises(FileFormatError, match="3 biquadratic interactions announced at line 14, 1 rows follow"):
        sl.io.read_vampire(tmp_path / "c.UCF")


def test_run_configs_and_convert_read_vampire_files(tmp_path):
    from spinlat.config import read_structure
    from spinlat.formats.tb2j import parse_tb2j

    ucf = _tb2j_vampire(tmp_path, parse_tb2j(TB2J_FE))
    ref, _ = sl.io.read_vampire(ucf)
    np.testing.assert_array_equal(read_structure(ucf).magnetic_moments, ref.magnetic_moments)
    assert sl.io.convert(ucf, tmp_path / "v.h5") == 1
    with sl.io.Trajectory(tmp_path / "v.h5") as t:
        np.testing.assert_allclose(t[0].magnetic_moments, ref.magnetic_moments, rtol=1e-15)


def test_a_unit_mismatch_is_an_error_type_the_structure_reader_retries_on(tmp_path, monkeypatch):
    """Duplication (round 13): the structure reader retried a UCF in meV by searching the error's
    text for "interaction_unit='meV'" (a reworded message would have broken it silently). The
    mismatch is now an InteractionUnitError (a FileFormatError) whose ``unit`` names the other unit,
    and the retry keys on that."""
    from spinlat.errors import InteractionUnitError
    from spinlat.io import codes, vampire

    (tmp_path / "c.UCF").write_text(CHAIN.format(kind="isotropic", v="12.5"))
    (tmp_path / "c.mat").write_text("material[1]:atomic-spin-moment=2.2\n")
    with pytest.raises(InteractionUnitError) as info:
        sl.io.read_vampire(tmp_path / "c.UCF")
    assert info.value.unit == "meV" and isinstance(info.value, FileFormatError)
    check = vampire._check_unit

    def reworded(values, unit, ucf, ln):
        try:
            check(values, unit, ucf, ln)
        except InteractionUnitError as exc:
            raise InteractionUnitError(exc.unit, "values off for this unit") from None

    monkeypatch.setattr(vampire, "_check_unit", reworded)
    np.testing.assert_array_equal(codes.read_code_structure(tmp_path / "c.UCF").moments, [2.2])
    (tmp_path / "c.UCF").write_text(CHAIN.format(kind="isotropic", v="2e-21"))
    with pytest.raises(InteractionUnitError) as info:
        sl.io.read_vampire(tmp_path / "c.UCF", interaction_unit="meV")
    assert info.value.unit == "J"
    import pickle

    again = pickle.loads(pickle.dumps(info.value))
    assert (type(again), again.unit, str(again)) == (InteractionUnitError, "J", "values off for this unit")


def test_an_unreadable_material_file_is_a_file_format_error(tmp_path, monkeypatch):
    """Duplication (round 13): the UCF, UppASD and Spirit readers each had their own "read the text,
    FileFormatError when it cannot be read", and VAMPIRE's material file reader had none (an I/O
    error escaped as a bare OSError). All now read through io.codes.file_text."""
    import pathlib

    (tmp_path / "c.UCF").write_text(CHAIN.format(kind="isotropic", v="2e-21"))
    (tmp_path / "c.mat").write_text("material[1]:atomic-spin-moment=2.2\n")
    read_text = pathlib.Path.read_text

    def failing(self, *args, **kwargs):
        if self.name == "c.mat":
            raise OSError(5, "Input/output error")
        return read_text(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "read_text", failing)
    with pytest.raises(FileFormatError, match=r"c.mat: cannot read \(Input/output error\)"):
        sl.io.read_vampire(tmp_path / "c.UCF")
