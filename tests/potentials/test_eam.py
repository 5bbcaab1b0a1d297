"""EAM: LAMMPS interpolation, finite differences, NumPy reference, file errors, LAMMPS peer."""

import sys
from pathlib import Path

import numpy as np
import pytest

import spinlat as sl
from spinlat.errors import FileFormatError, InputError, MissingFileError, UnknownElementError
from spinlat.potentials import EAM
from spinlat.potentials.eam import read_eam_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from conftest import EAM_FE, bcc_fe, fd_forces, fd_stress  # noqa: E402

pytestmark = pytest.mark.skipif(not EAM_FE.exists(), reason="shared EAM data not found")


@pytest.fixture(scope="module")
def fe():
    return EAM(EAM_FE)


# ------------------------------------------------------------------------------------------
# an independent NumPy reference of LAMMPS pair_style eam (loops written separately)
# ------------------------------------------------------------------------------------------


def ref_spline(f):
    """LAMMPS PairEAM::interpolate as plain Python loops; rows [c3, c4, c5, c6], 1-based."""
    n = len(f)
    v = [0.0] + list(f)
    s = [0.0] * (n + 1)
    s[1] = v[2] - v[1]
    s[2] = 0.5 * (v[3] - v[1])
    s[n - 1] = 0.5 * (v[n] - v[n - 2])
    s[n] = v[n] - v[n - 1]
    for m in range(3, n - 1):
        s[m] = ((v[m - 2] - v[m + 2]) + 8.0 * (v[m + 1] - v[m - 1])) / 12.0
    c = np.zeros((n + 1, 4))
    for m in range(1, n + 1):
        c[m, 3] = v[m]
        c[m, 2] = s[m]
        if m < n:
            c[m, 1] = 3.0 * (v[m + 1] - v[m]) - 2.0 * s[m] - s[m + 1]
            c[m, 0] = s[m] + s[m + 1] - 2.0 * (v[m + 1] - v[m])
    return c


def ref_eval(c, x, delta, clamp_low=False):
    """Value and derivative (per unit x) of a LAMMPS table at points x."""
    n = len(c) - 1
    p = np.asarray(x) / delta + 1.0
    m = np.minimum(np.trunc(p).astype(int), n - 1)
    if clamp_low:
        m = np.maximum(m, 1)
    p = np.minimum(p - m, 1.0)
    a = c[m]
    val = ((a[:, 0] * p + a[:, 1]) * p + a[:, 2]) * p + a[:, 3]
    der = ((3 * a[:, 0] * p + 2 * a[:, 1]) * p + a[:, 2]) / delta
    return val, der


def ref_eam(path, st, fmt=None):
    """Energy, forces and per-atom energies from the file, with ASE's neighbour list."""
    from ase.neighborlist import neighbor_list

    d = read_eam_file(path, fmt)
    zidx = {z: a for a, z in enumerate(d["numbers"])}
    typ = np.array([zidx[z] for z in st.numbers])
    i, j, dist, vec = neighbor_list("ijdD", st.to_ase(), d["cutoff"])
    keep = dist < d["cutoff"]
    i, j, dist, vec = i[keep], j[keep], dist[keep], vec[keep]
    n = len(st)
    rho = np.zeros(n)
    drho_ji = np.zeros(len(i))  # d rho_{j->i}/dr for each ordered pair
    phi = np.zeros(len(i))
    dphi = np.zeros(len(i))
    for a in range(len(d["numbers"])):
        for b in range(len(d["numbers"])):
            sel = (typ[i] == a) & (typ[j] == b)
            if not sel.any():
                continue
            v, dv = ref_eval(ref_spline(d["rhor"][b, a]), dist[sel], d["dr"])
            rho += np.bincount(i[sel], v, minlength=n)
            drho_ji[sel] = dv
            z, dz = ref_eval(ref_spline(d["z2r"][a, b]), dist[sel], d["dr"])
            phi[sel] = z / dist[sel]
            dphi[sel] = dz / dist[sel] - z / dist[sel] ** 2
    rhomax = d.get("rhomax", (d["nrho"] - 1) * d["drho"])
    emb = np.zeros(n)
    fp = np.zeros(n)
    for a in range(len(d["numbers"])):
        sel = typ == a
        v, dv = ref_eval(ref_spline(d["frho"][a]), rho[sel], d["drho"], clamp_low=True)
        v = v + np.where(rho[sel] > rhomax, dv * (rho[sel] - rhomax), 0.0)
        emb[sel], fp[sel] = v, dv
    energies = emb + 0.5 * np.bincount(i, phi, minlength=n)
    # gradient: each ordered pair (i, j) carries F'_i rho'_{j->i} + phi'/2 along D = r_j - r_i
    g = (fp[i] * drho_ji + 0.5 * dphi)[:, None] * vec / dist[:, None]
    grad = np.zeros((n, 3))
    np.add.at(grad, j, g)
    np.add.at(grad, i, -g)
    return energies.sum(), -grad, energies


# ------------------------------------------------------------------------------------------
# synthetic multi-element files
# ------------------------------------------------------------------------------------------


def _smooth(r, rc):
    x = np.clip(1 - r / rc, 0, None)
    return x ** 4


def write_eam(path, fmt, nrho=400, drho=0.1, nr=600, dr=0.01, cut=5.2, elements=("Fe", "Ni"), per_line=5,
              comments=False, first_line="synthetic EAM for spinlat tests", newline="\n"):
    """A two-element EAM file with smooth analytic functions (setfl or Finnis-Sinclair,
    the latter with unequal cross densities).

    Layout options (the values stay the same): ``per_line`` values per line (None: each table
    on one line), ``comments`` (a trailing comment on the element line, a comment line and a
    blank line before every table, comments after some values), ``newline`` ("\r\n": DOS)."""
    from ase.data import atomic_masses, atomic_numbers

    r = np.arange(nr) * dr
    rho_grid = np.arange(nrho) * drho
    lines = [first_line, "two elements", "smooth functions",
             f"{len(elements)} " + " ".join(elements) + ("   # elements of this file" if comments else ""),
             f"{nrho} {drho!r} {nr} {dr!r} {cut!r}"]

    def block(values, title):
        step = per_line or len(values)
        rows = [" ".join(f"{v:.16e}" for v in values[k:k + step]) for k in range(0, len(values), step)]
        if comments:
            rows = [row + ("  # " + title if k % 3 == 1 else "") for k, row in enumerate(rows)]
            return ["# " + title, ""] + rows
        return rows

    for a, el in enumerate(elements):
        z = atomic_numbers[el]
        lines.append(f"{z} {atomic_masses[z]:.4f} 2.87 bcc")
        lines += block(-(1.0 + 0.3 * a) * np.sqrt(rho_grid) + 0.01 * (a + 1) * rho_grid ** 2, f"F(rho) of {el}")
        if fmt == "alloy":
            lines += block((2.0 + a) * np.exp(-(1.0 + 0.2 * a) * (r - 2.5)) * _smooth(r, cut), f"rho(r) of {el}")
        else:
            for b in range(len(elements)):
                lines += block((2.0 + a + 0.5 * b) * np.exp(-(1.0 + 0.2 * a + 0.1 * b) * (r - 2.5)) * _smooth(r, cut),
                               f"rho(r) of {el} at {elements[b]}")
    for a in range(len(elements)):
        for b in range(a + 1):
            d0 = 0.4 + 0.05 * (a + b)
            phi = d0 * (np.exp(-2 * 1.5 * (r - 2.5)) - 2 * np.exp(-1.5 * (r - 2.5))) * _smooth(r, cut)
            lines += block(r * phi, f"r*phi of {elements[a]}-{elements[b]}")
    Path(path).write_bytes((newline.join(lines) + newline).encode())
    return Path(path)


def write_funcfl(path, element="Fe", a=0, nrho=500, drho=0.05, nr=520, dr=0.0105, cut=5.3, comments=False):
    """A DYNAMO funcfl file (``pair_style eam``): F(ρ) in eV, effective charge Z(r) in
    √(Hartree·Bohr), density ρ(r); smooth analytic functions, ``a`` varies them per element."""
    from ase.data import atomic_masses, atomic_numbers

    r = np.arange(nr) * dr
    rho = np.arange(nrho) * drho
    tables = [("F(rho)", -(1.0 + 0.3 * a) * np.sqrt(rho) + 0.01 * (a + 1) * rho ** 2),
              ("Z(r)", (0.9 + 0.2 * a) * np.exp(-0.8 * (r - 2.5)) * _smooth(r, cut)),
              ("rho(r)", (2.0 + a) * np.exp(-(1.0 + 0.2 * a) * (r - 2.5)) * _smooth(r, cut))]
    z = atomic_numbers[element]
    lines = [f"funcfl {element} for spinlat tests", f"{z} {atomic_masses[z]:.4f} 2.87 BCC",
             f"{nrho} {drho!r} {nr} {dr!r} {cut!r}" + ("   # grid" if comments else "")]
    for title, v in tables:
        lines += ["# " + title] if comments else []
        lines += [" ".join(f"{x:.16e}" for x in v[k:k + 5]) for k in range(0, len(v), 5)]
    Path(path).write_text("\n".join(lines) + "\n")
    return Path(path), {t: v for t, v in tables}


def binary_state(seed=1, reps=(3, 3, 3), rattle=0.06):
    st = bcc_fe(reps, rattle=rattle, seed=seed)
    rng = np.random.default_rng(seed)
    numbers = np.where(rng.random(len(st)) < 0.4, 28, 26)
    return sl.State(st.positions, numbers, cell=st.cell, pbc=True, spins=st.spins, moments=st.moments)


# ------------------------------------------------------------------------------------------
# tests
# ------------------------------------------------------------------------------------------


def test_file_metadata(fe):
    assert fe.elements == (26,)
    assert fe.symbols == ("Fe",)
    assert fe.cutoff == pytest.approx(5.3)
    assert fe.format == "fs"
    assert fe.masses[0] == pytest.approx(55.845)


def test_forces_match_finite_differences(fe):
    st = bcc_fe((3, 3, 3), rattle=0.07, seed=3)
    ev = fe.compute(st, forces=True)
    atoms = (0, 7, 31)
    assert np.abs(fd_forces(fe, st, atoms=atoms) - ev.forces[list(atoms)]).max() < 1e-6
    assert np.abs(ev.forces.sum(axis=0)).max() < 1e-10


def test_stress_matches_finite_differences(fe):
    st = bcc_fe((3, 3, 3), rattle=0.07, seed=4)
    st = st.copy(cell=st.cell @ np.array([[1.0, 0.02, 0.0], [0.0, 0.99, 0.01], [0.0, 0.0, 1.01]]),
                 positions=st.positions @ np.array([[1.0, 0.02, 0.0], [0.0, 0.99, 0.01], [0.0, 0.0, 1.01]]))
    ev = fe.compute(st, stress=True)
    assert np.abs(fd_stress(fe, st) - ev.stress).max() < 1e-7


def test_kernel_matches_numpy_reference(fe):
    st = bcc_fe((3, 3, 3), rattle=0.07, seed=5)
    ev = fe.compute(st)
    e, f, energies = ref_eam(EAM_FE, st)
    assert ev.energy == pytest.approx(e, abs=1e-9)
    assert np.abs(ev.forces - f).max() < 1e-10
    assert np.abs(ev.energies - energies).max() < 1e-10
    assert ev.energies.sum() == pytest.approx(ev.energy, abs=1e-9)


def test_perfect_bcc_fe_cohesive_energy(fe):
    """Mendelev et al. (2003) Fe: E_coh = −4.1224 eV at a = 2.8553 Å; zero forces by symmetry."""
    st = bcc_fe((4, 4, 4), a=2.855324, rattle=0.0)
    ev = fe.compute(st, stress=True)
    assert ev.energy / len(st) == pytest.approx(-4.1224, abs=2e-4)
    assert np.abs(ev.forces).max() < 1e-10
    assert np.abs(ev.stress).max() < 2e-4  # near the equilibrium lattice constant


def test_energy_only_and_magnetic_parts(fe):
    st = bcc_fe((3, 3, 3), rattle=0.05, seed=6)
    full = fe.compute(st, forces=True, magnetic_forces=True, stress=True)
    only = fe.compute(st, forces=False, magnetic_forces=False)
    assert only.energy == pytest.approx(full.energy, abs=1e-12)
    assert only.forces is None and only.magnetic_forces is None
    assert np.all(full.magnetic_forces == 0.0)
    assert np.all(fe.local_fields(st, None, np.array([0, 3])) == 0.0)
    assert fe.local_fields(st, None, np.array([0, 3])).shape == (2, 3)
    assert not fe.magnetic and fe.spin_rotation_invariant
    flipped = fe.compute(st.copy(spins=-st.spins[::-1], moments=st.moments * 0.5))
    assert flipped.energy == full.energy


def test_translation_invariance(fe):
    st = bcc_fe((3, 3, 3), rattle=0.07, seed=7)
    ev = fe.compute(st, stress=True)
    moved = st.copy(positions=st.positions + np.array([1.234, -0.77, 5.1]))
    ev2 = EAM(EAM_FE).compute(moved, stress=True)
    assert ev2.energy == pytest.approx(ev.energy, abs=1e-9)
    assert np.abs(ev2.forces - ev.forces).max() < 1e-10
    assert np.abs(ev2.stress - ev.stress).max() < 1e-12


def test_open_cluster_and_small_cell(fe):
    """A cutoff larger than half the box (self images) and an open cluster agree with the reference."""
    st = sl.State([[0, 0, 0], [1.43, 1.43, 1.43]], [26, 26], cell=np.eye(3) * 2.8665, pbc=True)
    st = st.copy(positions=st.positions + [[0.05, -0.02, 0.01], [0.0, 0.03, -0.04]])
    ev = fe.compute(st)
    e, f, _ = ref_eam(EAM_FE, st)
    assert ev.energy == pytest.approx(e, abs=1e-10)
    assert np.abs(ev.forces - f).max() < 1e-10
    cluster = sl.State(bcc_fe((2, 2, 2), rattle=0.05).positions, [26] * 16)
    ev = fe.compute(cluster)
    e, f, _ = ref_eam(EAM_FE, cluster)
    assert ev.energy == pytest.approx(e, abs=1e-10)
    assert np.abs(fd_forces(fe, cluster, atoms=(0, 9)) - ev.forces[[0, 9]]).max() < 1e-6


@pytest.mark.parametrize("fmt", ["alloy", "fs"])
def test_two_element_file(tmp_path, fmt):
    path = write_eam(tmp_path / f"FeNi.eam.{fmt}", fmt)
    pot = EAM(path)
    assert pot.elements == (26, 28) and pot.format == fmt
    st = binary_state()
    ev = pot.compute(st, stress=True)
    e, f, energies = ref_eam(path, st)
    assert ev.energy == pytest.approx(e, abs=1e-9)
    assert np.abs(ev.forces - f).max() < 1e-10
    assert np.abs(ev.energies - energies).max() < 1e-10
    ni = int(np.flatnonzero(st.numbers == 28)[0])
    fe_atom = int(np.flatnonzero(st.numbers == 26)[0])
    assert np.abs(fd_forces(pot, st, atoms=(fe_atom, ni)) - ev.forces[[fe_atom, ni]]).max() < 1e-6
    assert np.abs(fd_stress(pot, st) - ev.stress).max() < 1e-7


@pytest.mark.parametrize("case", ["fe", "alloy", "fs", "small cell", "cluster"])
def test_low_memory_gives_the_tabled_results(tmp_path, case):
    """EAM(low_memory=True) (full rows, no per-pair tables) gives the energies, per-atom
    energies, densities, forces and stress of the half-list pass with its tables, to round-off,
    also for asymmetric Finnis-Sinclair densities, self-images and open boundaries; it keeps no
    pair arrays."""
    path, st = EAM_FE, bcc_fe((3, 3, 3), rattle=0.07, seed=5)
    if case in ("alloy", "fs"):
        path, st = write_eam(tmp_path / f"FeNi.eam.{case}", case), binary_state(seed=4)
    elif case == "small cell":
        st = sl.State([[0, 0, 0], [1.43, 1.43, 1.43]], [26, 26], cell=np.eye(3) * 2.8665, pbc=True)
        st = st.copy(positions=st.positions + [[0.05, -0.02, 0.01], [0.0, 0.03, -0.04]])
    elif case == "cluster":
        st = sl.State(bcc_fe((2, 2, 2), rattle=0.05).positions, [26] * 16)
    tabled, lean = EAM(path), EAM(path, low_memory=True)
    stress = bool(st.pbc.all())
    a, b = tabled.compute(st, stress=stress), lean.compute(st, stress=stress)
    assert b.energy == pytest.approx(a.energy, rel=1e-14, abs=1e-12)
    np.testing.assert_allclose(b.energies, a.energies, rtol=0, atol=1e-12)
    np.testing.assert_allclose(b.forces, a.forces, rtol=0, atol=1e-12)
    np.testing.assert_allclose(lean.densities(st), tabled.densities(st), rtol=1e-14, atol=0)
    if stress:
        np.testing.assert_allclose(b.stress, a.stress, rtol=0, atol=1e-14)
    assert abs(b.forces.sum(axis=0)).max() < 1e-11
    assert lean.compute(st, forces=False).energy == b.energy
    assert lean._work_arrays[3].size == 0 and lean._work_arrays[4].size == 0 and lean._half_arrays[-1].size == 0
    assert "low_memory=True" in repr(lean)
    with pytest.raises(InputError, match="low_memory"):
        EAM(path, low_memory="yes")


def test_low_memory_auto_keeps_tables_below_the_threshold_only(monkeypatch):
    """EAM(low_memory="auto"), the default, keeps the per-pair tables below
    LOW_MEMORY_MIN_ATOMS atoms and none from there; each way it gives the bits of the explicit
    choice (tabled / full rows), and the two agree to round-off."""
    import spinlat.potentials.eam as eam_module

    st = bcc_fe((3, 3, 3), rattle=0.07, seed=5)  # 54 atoms
    tabled, lean = EAM(EAM_FE, low_memory=False), EAM(EAM_FE, low_memory=True)
    assert EAM(EAM_FE).low_memory == "auto" and "low_memory" not in repr(EAM(EAM_FE))
    a, b = tabled.compute(st, stress=True), lean.compute(st, stress=True)
    for threshold, expect, pairs in ((len(st) + 1, a, True), (len(st), b, False)):
        monkeypatch.setattr(eam_module, "LOW_MEMORY_MIN_ATOMS", threshold)
        auto = EAM(EAM_FE, low_memory="auto")
        c = auto.compute(st, stress=True)
        assert c.energy == expect.energy
        for name in ("forces", "energies", "stress"):
            assert np.array_equal(getattr(c, name), getattr(expect, name)), name
        assert (auto._work_arrays[3].size > 0) is pairs and (auto._half_arrays[-1].size > 0) is pairs
    np.testing.assert_allclose(b.forces, a.forces, rtol=0, atol=1e-12)
    np.testing.assert_allclose(b.energies, a.energies, rtol=0, atol=1e-12)
    with pytest.raises(InputError, match="low_memory"):
        EAM(EAM_FE, low_memory="Auto")


def test_half_list_reverse_map(fe):
    """The reverse map of the half list inside the full neighbour list: every head entry
    (j → i) points at the half pair (i → j) with the opposite shift."""
    from spinlat.potentials.eam import _half_offsets, _reverse_half_pairs

    for st in (bcc_fe((3, 3, 3), rattle=0.07, seed=5),
               sl.State([[0, 0, 0], [1.43, 1.43, 1.43]], [26, 26], cell=np.eye(3) * 2.8665, pbc=True)):
        nl = fe.neighbor_list(st)
        hs = nl.half_start
        hoff = _half_offsets(nl.offsets, hs)
        tk = _reverse_half_pairs(nl.offsets, hs, hoff, nl.j)
        owner = np.repeat(np.arange(len(st)), np.diff(nl.offsets))
        half_entries = np.concatenate([np.arange(hs[a], nl.offsets[a + 1]) for a in range(len(st))])
        heads = np.concatenate([np.arange(nl.offsets[a], hs[a]) for a in range(len(st))])
        assert len(tk) == len(half_entries) == len(heads)
        assert sorted(tk.tolist()) == list(range(len(tk)))
        rev = half_entries[tk]
        np.testing.assert_array_equal(nl.j[rev], owner[heads])
        np.testing.assert_array_equal(owner[rev], nl.j[heads])
        np.testing.assert_array_equal(nl.shifts[rev], -nl.shifts[heads])


def test_density_beyond_table_continues_linearly(tmp_path):
    """ρ above ρ_max = (Nρ−1)δρ: F continues linearly (LAMMPS), forces stay consistent."""
    path = write_eam(tmp_path / "small.eam.alloy", "alloy", nrho=50, drho=0.0375)
    pot = EAM(path)
    st = binary_state(seed=2, rattle=0.04)
    rho = pot.densities(st)
    assert rho.max() > (50 - 1) * 0.0375 > rho.min()
    ev = pot.compute(st)
    e, f, _ = ref_eam(path, st)
    assert ev.energy == pytest.approx(e, abs=1e-9)
    assert np.abs(fd_forces(pot, st, atoms=(0, 1)) - ev.forces[[0, 1]]).max() < 1e-6


def test_format_option_and_unknown_extension(tmp_path):
    src = write_eam(tmp_path / "FeNi.eam.alloy", "alloy")
    other = tmp_path / "FeNi.potential"
    other.write_text(src.read_text())
    with pytest.raises(InputError, match="format"):
        EAM(other)
    pot = EAM(other, format="alloy")
    st = binary_state()
    assert pot.compute(st).energy == pytest.approx(EAM(src).compute(st).energy, abs=1e-12)
    with pytest.raises(InputError, match="unknown EAM format"):
        EAM(other, format="meam")


def test_eam_he_files_are_refused(tmp_path):
    """A LAMMPS eam/he file (the Finnis-Sinclair layout with rhomax added to the grid line, F(rho)
    tabulated from rhomax - (Nrho-1) drho) named as such, given format='eam/he', or renamed to
    .eam.fs (LAMMPS's eam/fs would drop rhomax and misread F) is refused, naming eam/he."""
    lines = EAM_FE.read_text().split("\n")
    grid = lines[4].split()
    lines[4] = " ".join(grid + [repr(0.5 * (int(grid[0]) - 1) * float(grid[1]))])  # F from -rhomax to rhomax
    he = tmp_path / "Fe.eam.he"
    he.write_text("\n".join(lines))
    with pytest.raises(InputError, match=r"Fe.eam.he: a LAMMPS pair_style eam/he file, which spinlat does not read"):
        EAM(he)
    with pytest.raises(InputError, match=r"eam/he file, which spinlat does not read"):
        EAM(he, format="eam/he")
    renamed = tmp_path / "Fe.eam.fs"
    renamed.write_text(he.read_text())
    with pytest.raises(FileFormatError, match=r"Fe.eam.fs: line 5: the grid line .* holds 6 values.*eam/he"):
        EAM(renamed)
    with pytest.raises(FileFormatError, match=r"line 5: .*eam/he"):
        EAM(he, format="fs")


def test_unknown_element(fe, tmp_path):
    st = binary_state()
    with pytest.raises(UnknownElementError, match="Ni"):
        fe.compute(st)
    pot = EAM(write_eam(tmp_path / "FeNi.eam.alloy", "alloy"))
    st = st.copy(numbers=np.where(st.numbers == 28, 24, 26))
    with pytest.raises(UnknownElementError, match="Cr"):
        pot.compute(st)


# ------------------------------------------------------------------------------------------
# file syntax: every layout LAMMPS reads gives the same values; malformed files name the line
# ------------------------------------------------------------------------------------------

SMALL = dict(nrho=20, nr=30, dr=0.2, cut=5.0)
# line numbers (1-based) of the small two-element setfl file, 5 values per line:
# 1-3 comments, 4 element line, 5 grid line, 6 Fe header, 7-10 F(rho) Fe, 11-16 rho(r) Fe,
# 17 Ni header, 18-21 F(rho) Ni, 22-27 rho(r) Ni, 28-33 / 34-39 / 40-45 r*phi Fe-Fe, Ni-Fe, Ni-Ni


def _small(tmp_path, name="clean.eam.alloy", **layout):
    return write_eam(tmp_path / name, "alloy", **SMALL, **layout)


def _energy(path, fmt=None, st=None):
    st = binary_state(seed=5, reps=(2, 2, 2)) if st is None else st
    ev = EAM(path, format=fmt).compute(st, stress=True)
    return ev.energy, ev.forces, ev.stress


def _assert_same_potential(path, clean, fmt=None):
    """Same tables bit for bit, hence the same energies, forces and stress."""
    a, b = read_eam_file(path, fmt), read_eam_file(clean, fmt)
    for key in ("frho", "rhor", "z2r", "masses", "numbers", "cutoff", "drho", "dr"):
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    for x, y in zip(_energy(path, fmt), _energy(clean, fmt)):
        np.testing.assert_array_equal(x, y)


def _edit(path, transform, name="bad.eam.alloy", text=False):
    raw = path.read_text()
    out = path.parent / name
    out.write_text(transform(raw) if text else "\n".join(transform(raw.splitlines())) + "\n")
    return out


@pytest.mark.parametrize("layout", [
    dict(comments=True),                       # `# ...` after the element line, comment lines between tables
    dict(per_line=1),                          # one value per line
    dict(per_line=3, comments=True),           # 3 per line: tables end mid-line in other files' terms
    dict(per_line=None),                       # each table on one line
    dict(newline="\r\n"),                      # DOS line endings
])
def test_layouts_lammps_reads_give_the_same_values(tmp_path, layout):
    clean = _small(tmp_path)
    _assert_same_potential(_small(tmp_path, "variant.eam.alloy", **layout), clean)


@pytest.mark.parametrize("transform", [
    lambda ln: ln[:4] + ["20 0.1", "30 0.2 5.0"] + ln[5:],                       # grid line over two lines
    lambda ln: ln[:5] + ["26", "55.8450 2.87 bcc"] + ln[6:],                     # element header over two lines
    lambda ln: ["", "", ""] + ln[3:],                                            # blank comment lines
    lambda ln: ln[:3] + ["# a comment line before the element line", "  "] + ln[3:],
    lambda ln: [x.replace(" ", "\t") for x in ln],                               # tabs
    lambda ln: ln[:3] + ["2 Fe Ni# the elements"] + ln[4:],                     # '#' right after a name
    lambda ln: ln + ["", "# the end"],                                           # comments after the last table
])
def test_header_and_comment_variants_give_the_same_values(tmp_path, transform):
    clean = _small(tmp_path)
    _assert_same_potential(_edit(clean, transform, "variant.eam.alloy"), clean)


def test_number_forms_and_last_line_without_newline(tmp_path):
    """Hexadecimal floats (C99, read by LAMMPS) and a complete last value without a final newline
    give the same values; exponents longer than the table's others are no sign of truncation."""
    clean = _small(tmp_path)
    lines = clean.read_text().splitlines()
    hexed = lines[:7] + [" ".join(float(t).hex() for t in lines[7].split())] + lines[8:]
    _assert_same_potential(_edit(clean, lambda ln: hexed, "hex.eam.alloy"), clean)
    _assert_same_potential(_edit(clean, lambda t: t.rstrip("\n"), "nonl.eam.alloy", text=True), clean)
    tiny = _edit(clean, lambda t: t.rstrip("\n")[:-len("0.0000000000000000e+00")] + "1.0000000000000000e-300",
                 "tiny.eam.alloy", text=True)
    assert read_eam_file(tiny)["z2r"][1, 1, -1] == -1e-300


def test_units_real_file_is_converted_like_lammps(tmp_path):
    """A first line tagged ``UNITS: real`` holds kcal/mol: F and r·φ are scaled by LAMMPS's
    1/23.060549 (densities are not), so every energy, force and stress scales by that factor."""
    from spinlat import units

    metal = _small(tmp_path, "m.eam.alloy", first_line="DATE: 2025-01-01 UNITS: metal CONTRIBUTOR: test")
    real = _small(tmp_path, "r.eam.alloy", first_line="DATE: 2025-01-01 UNITS: real CONTRIBUTOR: test")
    dm, dr_ = read_eam_file(metal), read_eam_file(real)
    assert dm["units"] == "metal" and dr_["units"] == "real"
    f = units.LAMMPS_KCAL_MOL_IN_EV
    assert f == pytest.approx(0.0433641, rel=1e-6)
    np.testing.assert_array_equal(dr_["frho"], dm["frho"] * f)
    np.testing.assert_array_equal(dr_["z2r"], dm["z2r"] * f)
    np.testing.assert_array_equal(dr_["rhor"], dm["rhor"])
    for x, y in zip(_energy(real), _energy(metal)):
        np.testing.assert_allclose(x, f * y, rtol=1e-12, atol=1e-14)


def _cut_last_digit(t):
    body = t.rstrip()
    return body[:-1]  # the file ends inside its last number, without a newline


@pytest.mark.parametrize("transform, text, message", [
    # table sizes: LAMMPS drops values left over where a table ends, or shifts a table silently
    (lambda ln: ln[:7] + [ln[7] + " 1.0"] + ln[8:], False,
     r"line 10: 1 value\(s\) more than the 20 of F\(rho\) of Fe.*line 8 holds a different number"),
    (lambda ln: ln[:7] + [" ".join(ln[7].split()[:-1])] + ln[8:], False,
     r"line 11: 4 value\(s\) more than the 20 of F\(rho\) of Fe.*line 8 holds"),
    (lambda ln: ln[:-1] + [ln[-1] + " 1.0"], False, r"line 45: 1 value\(s\) more than the 30 of r\*phi\(r\) of Ni-Ni"),
    (lambda ln: ln + ["1.0 2.0"], False, r"line 46: data after the last table"),
    (lambda ln: ln[:-3], False, r"ends after 15 of the 30 values of r\*phi\(r\) of Ni-Ni"),
    (_cut_last_digit, True, r"line 45: the file ends without a newline inside a number: '-0.0000000000000000e\+0'"),
    # number syntax
    (lambda ln: ln[:11] + [ln[11].replace("e", "D", 1)] + ln[12:], False,
     r"line 12: .*Fortran 'D' exponent.*rho\(r\) of Fe"),
    (lambda ln: ln[:7] + [ln[7].replace(ln[7].split()[1], "nan", 1)] + ln[8:], False, r"line 8: 'nan' is not a finite"),
    (lambda ln: ln[:7] + [ln[7].replace(ln[7].split()[1], "-inf", 1)] + ln[8:], False,
     r"line 8: '-inf' is not a finite"),
    (lambda ln: ln[:7] + [ln[7].replace(ln[7].split()[1], "1e999", 1)] + ln[8:], False, r"line 8: '1e999' overflows"),
    (lambda ln: ln[:7] + [ln[7].replace(ln[7].split()[1], "1_0", 1)] + ln[8:], False, r"line 8: '1_0' is not a number"),
    (lambda ln: ln[:7] + [ln[7].replace(ln[7].split()[1], "abc", 1)] + ln[8:], False, r"line 8: 'abc' is not a number"),
    # header records
    (lambda ln: ln[:2], False, r"ends after 2 lines, before the element line"),
    (lambda ln: ln[:5], False, r"ends where the header line of element Fe"),
    (lambda ln: ln[:3] + ["2 Fe"] + ln[4:], False, r"line 4: 2 element\(s\) announced but 1"),
    (lambda ln: ln[:3] + ["2 Fe Ni Cr"] + ln[4:], False, r"line 4: 2 element\(s\) announced but 3"),
    (lambda ln: ln[:3] + ["two Fe Ni"] + ln[4:], False, r"line 4: the number of elements 'two' is not an integer"),
    (lambda ln: ln[:3] + ["2 Fe Fe"] + ln[4:], False, r"line 4: the same element appears twice"),
    (lambda ln: ln[:4] + ["20 0.1 30 0.2"] + ln[5:], False, r"line 5: the grid line .* a field is missing on line 5"),
    # a sixth value (LAMMPS reads five and drops the rest): eam/he's rhomax, whose F(rho) grid is shifted
    (lambda ln: ln[:4] + [ln[4] + " 1.5"] + ln[5:], False,
     r"line 5: the grid line \(Nrho drho Nr dr cutoff\) holds 6 values.*eam/he files hold: their F\(rho\) table "
     r"starts at rhomax - \(Nrho-1\)\*drho"),
    (lambda ln: ln[:4] + [ln[4] + " 1.5 2.0"] + ln[5:], False, r"line 5: .* holds 7 values: .*Remove the extra"),
    (lambda ln: ln[:4] + ["20 x 30 0.2 5.0"] + ln[5:], False, r"line 5: drho: 'x' is not a number"),
    (lambda ln: ln[:4] + ["20.0 0.1 30 0.2 5.0"] + ln[5:], False, r"line 5: Nrho '20.0' is not an integer"),
    (lambda ln: ln[:4] + ["20 0.1 30 -0.2 5.0"] + ln[5:], False, r"line 5: drho, dr and cutoff must be positive"),
    (lambda ln: ln[:4] + ["3 0.1 30 0.2 5.0"] + ln[5:], False, r"line 5: need at least 5 grid points"),
    (lambda ln: ln[:5] + ["26.0 55.845 2.87 bcc"] + ln[6:], False,
     r"line 6: the atomic number of Fe '26.0' is not an integer"),
    (lambda ln: ln[:5] + ["26 -55.845 2.87 bcc"] + ln[6:], False, r"line 6: the mass of Fe must be positive"),
    (lambda ln: ["DATE: 2020 UNITS: si"] + ln[1:], False, r"line 1: UNITS: si"),
])
def test_malformed_files(tmp_path, transform, text, message):
    bad = _edit(_small(tmp_path), transform, text=text)
    with pytest.raises(FileFormatError, match=message) as info:
        EAM(bad)
    assert "bad.eam.alloy" in str(info.value)


def test_file_cut_inside_its_last_number_is_refused():
    """Issue 9.6: Fe_mm.eam.fs cut to '…E-0' (a valid number, ×10⁰ instead of ×10⁻¹²) gave φ(5.30 Å)
    = −0.67 eV; the cut is recognised because the table's other values have 4 exponent digits."""
    import tempfile

    text = EAM_FE.read_text().rstrip()
    assert text.endswith("E-0012")
    with tempfile.TemporaryDirectory() as d:
        cut = Path(d) / "Fe_cut.eam.fs"
        cut.write_text(text[:-3])
        with pytest.raises(FileFormatError, match=r"line 6006: the file ends without a newline inside a number: "
                                                  r"'-5.54605604224349E-0'.*truncated"):
            EAM(cut)
        whole = Path(d) / "Fe_nonl.eam.fs"
        whole.write_text(text)  # complete, only the final newline missing: accepted
        assert read_eam_file(whole)["z2r"][0, 0, -1] == pytest.approx(-5.54605604224349e-12, rel=1e-15)


def test_missing_file(tmp_path):
    with pytest.raises(MissingFileError, match="EAM file .*nothing.eam.fs does not exist"):
        EAM(tmp_path / "nothing.eam.fs")


# ------------------------------------------------------------------------------------------
# LAMMPS
# ------------------------------------------------------------------------------------------


def _lammps():
    import lammps_runner

    if not lammps_runner.lammps_available():
        pytest.skip("LAMMPS python module not available")
    return lammps_runner


@pytest.mark.peers
def test_matches_lammps_bcc_fe(fe):
    """bcc Fe 5×5×5 (250 atoms), thermal displacements: pair_style eam/fs."""
    lr = _lammps()
    st = bcc_fe((5, 5, 5), rattle=0.08, seed=11)
    ev = fe.compute(st, stress=True)
    res = lr.run_lammps(st.positions, st.cell, st.numbers, [f"pair_style eam/fs", f"pair_coeff * * {EAM_FE} Fe"])
    n = len(st)
    assert abs(ev.energy - res["energy"]) / n < 1e-6
    assert np.abs(ev.forces - res["forces"]).max() < 1e-5
    assert np.abs(ev.energies - res["energies"]).max() < 1e-6
    assert np.abs(ev.stress - res["stress"]).max() * 160.2177 < 1e-4  # GPa
    # in practice they agree to round-off
    assert abs(ev.energy - res["energy"]) / n < 1e-10


@pytest.mark.peers
@pytest.mark.parametrize("fmt", ["alloy", "fs"])
def test_matches_lammps_two_elements(tmp_path, fmt):
    """Element mapping of setfl and (asymmetric) Finnis-Sinclair densities, against LAMMPS."""
    lr = _lammps()
    path = write_eam(tmp_path / f"FeNi.eam.{fmt}", fmt)
    pot = EAM(path)
    st = binary_state(seed=3)
    ev = pot.compute(st, stress=True)
    res = lr.run_lammps(st.positions, st.cell, st.numbers, [f"pair_style eam/{fmt}", f"pair_coeff * * {path} Fe Ni"],
                        species=[26, 28])
    assert abs(ev.energy - res["energy"]) / len(st) < 1e-9
    assert np.abs(ev.forces - res["forces"]).max() < 1e-8
    assert np.abs(ev.stress - res["stress"]).max() < 1e-9


def _commented_fe_file(path):
    """Fe_mm.eam.fs as users edit it: a comment after the element line, whole comment lines and
    blank lines between the tables, the numbers re-split 3 per line, DOS line endings."""
    lines = EAM_FE.read_text().splitlines()
    nrho = nr = 10000
    values = " ".join(lines[6:]).split()
    assert len(values) == nrho + 2 * nr
    tables = [("F(rho)", values[:nrho]), ("rho(r)", values[nrho:nrho + nr]), ("r*phi(r)", values[nrho + nr:])]
    out = lines[:3] + ["1  Fe   # one element", lines[4], lines[5] + "   # Z, mass, a0, lattice"]
    for title, vals in tables:
        out += ["", f"# {title} of Fe, {len(vals)} values"]
        out += ["  ".join(vals[k:k + 3]) for k in range(0, len(vals), 3)]
    path.write_bytes(("\r\n".join(out) + "\r\n").encode())
    return path


@pytest.mark.peers
def test_commented_file_matches_lammps_and_the_clean_file(fe, tmp_path):
    """Issue 8.2: the commented, re-split Fe file gives LAMMPS eam/fs and spinlat the energies of
    the clean file (spinlat: bit for bit)."""
    lr = _lammps()
    path = _commented_fe_file(tmp_path / "Fe_commented.eam.fs")
    pot = EAM(path)
    st = bcc_fe((4, 4, 4), rattle=0.08, seed=12)
    ev, clean = pot.compute(st, stress=True), fe.compute(st, stress=True)
    assert ev.energy == clean.energy
    np.testing.assert_array_equal(ev.forces, clean.forces)
    res = lr.run_lammps(st.positions, st.cell, st.numbers, ["pair_style eam/fs", f"pair_coeff * * {path} Fe"])
    ref = lr.run_lammps(st.positions, st.cell, st.numbers, ["pair_style eam/fs", f"pair_coeff * * {EAM_FE} Fe"])
    assert res["energy"] == ref["energy"]
    assert abs(ev.energy - res["energy"]) / len(st) < 1e-10
    assert np.abs(ev.forces - res["forces"]).max() < 1e-8
    assert np.abs(ev.stress - res["stress"]).max() < 1e-9


@pytest.mark.peers
@pytest.mark.parametrize("fmt, layout", [
    ("fs", dict(comments=True, per_line=3)),
    ("alloy", dict(comments=True, per_line=1, newline="\r\n")),
    ("fs", dict(first_line="DATE: 2025-01-01 UNITS: real CONTRIBUTOR: spinlat tests")),
])
def test_layouts_and_units_match_lammps(tmp_path, fmt, layout):
    """Two-element files in layouts LAMMPS reads, and a ``UNITS: real`` file that LAMMPS converts
    to eV, against LAMMPS eam/alloy and eam/fs."""
    lr = _lammps()
    path = write_eam(tmp_path / f"FeNi.eam.{fmt}", fmt, **layout)
    st = binary_state(seed=4)
    ev = EAM(path).compute(st, stress=True)
    res = lr.run_lammps(st.positions, st.cell, st.numbers, [f"pair_style eam/{fmt}", f"pair_coeff * * {path} Fe Ni"],
                        species=[26, 28])
    assert abs(ev.energy - res["energy"]) / len(st) < 1e-9
    assert np.abs(ev.forces - res["forces"]).max() < 1e-8
    assert np.abs(ev.stress - res["stress"]).max() < 1e-9


# ------------------------------------------------------------------------------------------
# DYNAMO funcfl files (pair_style eam)
# ------------------------------------------------------------------------------------------


def test_funcfl_tables_are_the_file_values_on_lammps_grid(tmp_path):
    """One funcfl file: LAMMPS's grid has one knot fewer than the file, its 4-point Lagrange
    interpolation returns the file values at the knots, r·φ = 27.2·0.529·Z(r)², ρ_max and the
    cutoff are the file's, the element comes from Z."""
    from spinlat import units

    path, tab = write_funcfl(tmp_path / "Fe.eam")
    d = read_eam_file(path)
    assert d["format"] == "funcfl" and d["symbols"] == ["Fe"] and d["numbers"] == [26]
    assert (d["nrho"], d["nr"]) == (499, 519) and d["rhomax"] == 499 * 0.05 and d["cutoff"] == 5.3
    np.testing.assert_allclose(d["frho"][0], tab["F(rho)"][:-1], rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(d["rhor"][0, 0], tab["rho(r)"][:-1], rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(d["z2r"][0, 0], units.LAMMPS_HARTREE_BOHR * tab["Z(r)"][:-1] ** 2, rtol=1e-13,
                               atol=1e-15)
    assert units.LAMMPS_HARTREE_BOHR == 27.2 * 0.529
    commented, _ = write_funcfl(tmp_path / "Fe_c.eam", comments=True)
    for key in ("frho", "rhor", "z2r"):
        np.testing.assert_array_equal(read_eam_file(commented)[key], d[key])


@pytest.mark.parametrize("files", ["one", "two"])
def test_funcfl_kernel_matches_reference_and_finite_differences(tmp_path, files):
    fe, _ = write_funcfl(tmp_path / "Fe.eam")
    if files == "one":
        pot, st = EAM(fe), bcc_fe((3, 3, 3), rattle=0.07, seed=8)
        e, f, _ = ref_eam(fe, st)
    else:
        ni, _ = write_funcfl(tmp_path / "Ni.eam", "Ni", a=1, nrho=430, drho=0.061, nr=480, dr=0.0112, cut=5.1)
        pot, st = EAM([fe, ni]), binary_state(seed=8)
        assert pot.elements == (26, 28) and pot.cutoff == 5.3 and "Ni.eam" in repr(pot)
        e = f = None
    ev = pot.compute(st, stress=True)
    if e is not None:
        assert ev.energy == pytest.approx(e, abs=1e-9)
        assert np.abs(ev.forces - f).max() < 1e-10
    assert np.abs(fd_forces(pot, st, atoms=(0, 5)) - ev.forces[[0, 5]]).max() < 1e-6
    assert np.abs(fd_stress(pot, st) - ev.stress).max() < 1e-7


def test_funcfl_errors(tmp_path):
    fe, _ = write_funcfl(tmp_path / "Fe.eam")
    fe2, _ = write_funcfl(tmp_path / "Fe2.eam", a=1)
    alloy = write_eam(tmp_path / "FeNi.eam.alloy", "alloy", **SMALL)
    with pytest.raises(InputError, match="same element"):
        EAM([fe, fe2])
    with pytest.raises(InputError, match="only for funcfl"):
        EAM([fe, alloy])
    for bad_path in (5, None, [fe, 3], []):
        with pytest.raises(InputError, match=r"EAM path(\[\d+\])?: expected a file path"):
            EAM(bad_path)
    lines = fe.read_text().splitlines()
    bad = tmp_path / "bad.eam"
    bad.write_text("\n".join(lines[:1] + ["0 55.845 2.87 BCC"] + lines[2:]) + "\n")
    with pytest.raises(FileFormatError, match="line 2: atomic number 0 is not a chemical element"):
        EAM(bad)
    bad.write_text("\n".join(lines[:-2]) + "\n")
    with pytest.raises(FileFormatError, match=r"ends after 510 of the 520 values of rho\(r\) of Fe"):
        EAM(bad)
    bad.write_text("\n".join(lines[:5] + [lines[5] + " 1.0"] + lines[6:]) + "\n")
    with pytest.raises(FileFormatError, match=r"line 103: 1 value\(s\) more than the 500 of F\(rho\) .*line 6 holds"):
        EAM(bad)


@pytest.mark.peers
@pytest.mark.parametrize("case", ["one", "two files, different grids", "beyond rho_max", "commented"])
def test_funcfl_matches_lammps_pair_style_eam(tmp_path, case):
    """LAMMPS ``pair_style eam`` with ``pair_coeff i i file`` per type: one file, two files on
    different grids (LAMMPS interpolates both onto the coarser one), densities beyond the table
    (F continued linearly from LAMMPS's ρ_max), and a commented file."""
    lr = _lammps()
    fe, _ = write_funcfl(tmp_path / "Fe.eam", nrho=36 if case == "beyond rho_max" else 500,
                         comments=case == "commented")
    if case == "two files, different grids":
        ni, _ = write_funcfl(tmp_path / "Ni.eam", "Ni", a=1, nrho=430, drho=0.061, nr=480, dr=0.0112, cut=5.1)
        pot, st, species = EAM([fe, ni]), binary_state(seed=9), [26, 28]
        pair = ["pair_style eam", f"pair_coeff 1 1 {fe}", f"pair_coeff 2 2 {ni}"]
    else:
        pot, st, species = EAM(fe), bcc_fe((4, 4, 4), rattle=0.07, seed=9), [26]
        pair = ["pair_style eam", f"pair_coeff 1 1 {fe}"]
    if case == "beyond rho_max":
        rho = pot.densities(st)
        assert rho.max() > 35 * 0.05 > rho.min() and np.any((rho > 34 * 0.05) & (rho < 35 * 0.05))
    ev = pot.compute(st, stress=True)
    res = lr.run_lammps(st.positions, st.cell, st.numbers, pair, species=species)
    assert abs(ev.energy - res["energy"]) / len(st) < 1e-12
    assert np.abs(ev.forces - res["forces"]).max() < 1e-10
    assert np.abs(ev.stress - res["stress"]).max() < 1e-12


@pytest.mark.parametrize("module, suffix", [("gzip", ".gz"), ("bz2", ".bz2"), ("lzma", ".xz")])
def test_compressed_tables_are_read(tmp_path, module, suffix):
    """Fe_mm.eam.fs.gz (LAMMPS reads compressed potential files): the format from the name before
    the suffix, the table by content; it was 'cannot tell the EAM format from the file name'."""
    import importlib

    packed = tmp_path / f"Fe_mm.eam.fs{suffix}"
    packed.write_bytes(importlib.import_module(module).compress(Path(EAM_FE).read_bytes()))
    st = bcc_fe(2, seed=1)
    a = EAM(EAM_FE).compute(st, forces=True)
    b = EAM(packed).compute(st, forces=True)
    assert b.energy == a.energy
    np.testing.assert_array_equal(b.forces, a.forces)
