"""EAM: LAMMPS interpolation, finite differences, NumPy reference, file errors, LAMMPS peer."""

import sys
from pathlib import Path

import numpy as np
import pytest

import spinlat as sl
from spinlat.errors import FileFormatError, InputError, UnknownElementError
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
    rhomax = (d["nrho"] - 1) * d["drho"]
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


def write_eam(path, fmt, nrho=400, drho=0.1, nr=600, dr=0.01, cut=5.2, elements=("Fe", "Ni")):
    """A two-element EAM file with smooth analytic functions (setfl or Finnis-Sinclair,
    the latter with unequal cross densities)."""
    from ase.data import atomic_masses, atomic_numbers

    r = np.arange(nr) * dr
    rho_grid = np.arange(nrho) * drho
    lines = ["synthetic EAM for spinlat tests", "two elements", "smooth functions", f"{len(elements)} " + " ".join(elements),
             f"{nrho} {drho!r} {nr} {dr!r} {cut!r}"]

    def block(values):
        return [" ".join(f"{v:.16e}" for v in values[k:k + 5]) for k in range(0, len(values), 5)]

    for a, el in enumerate(elements):
        z = atomic_numbers[el]
        lines.append(f"{z} {atomic_masses[z]:.4f} 2.87 bcc")
        lines += block(-(1.0 + 0.3 * a) * np.sqrt(rho_grid) + 0.01 * (a + 1) * rho_grid ** 2)
        if fmt == "alloy":
            lines += block((2.0 + a) * np.exp(-(1.0 + 0.2 * a) * (r - 2.5)) * _smooth(r, cut))
        else:
            for b in range(len(elements)):
                lines += block((2.0 + a + 0.5 * b) * np.exp(-(1.0 + 0.2 * a + 0.1 * b) * (r - 2.5)) * _smooth(r, cut))
    for a in range(len(elements)):
        for b in range(a + 1):
            d0 = 0.4 + 0.05 * (a + b)
            phi = d0 * (np.exp(-2 * 1.5 * (r - 2.5)) - 2 * np.exp(-1.5 * (r - 2.5))) * _smooth(r, cut)
            lines += block(r * phi)
    Path(path).write_text("\n".join(lines) + "\n")
    return Path(path)


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


def test_unknown_element(fe, tmp_path):
    st = binary_state()
    with pytest.raises(UnknownElementError, match="Ni"):
        fe.compute(st)
    pot = EAM(write_eam(tmp_path / "FeNi.eam.alloy", "alloy"))
    st = st.copy(numbers=np.where(st.numbers == 28, 24, 26))
    with pytest.raises(UnknownElementError, match="Cr"):
        pot.compute(st)


def _mangle(tmp_path, name, transform):
    src = write_eam(tmp_path / "src.eam.alloy", "alloy", nrho=20, nr=30, dr=0.2, cut=5.0)
    lines = src.read_text().splitlines()
    out = tmp_path / name
    out.write_text("\n".join(transform(lines)) + "\n")
    return out


@pytest.mark.parametrize("transform, message", [
    (lambda ln: ln[:-3], "file ended after .* r\\*phi"),          # truncated in the last table
    (lambda ln: ln[:5], "file ended where the header line of element Fe"),  # header only
    (lambda ln: ln[:2], "only 2 lines"),
    (lambda ln: ln[:3] + ["2 Fe"] + ln[4:], "2 elements announced but 1"),
    (lambda ln: ln[:3] + ["two Fe Ni"] + ln[4:], "not an integer"),
    (lambda ln: ln[:4] + ["20 0.1 30 0.2"] + ln[5:], "line 5: the grid line"),
    (lambda ln: ln[:4] + ["20 x 30 0.2 5.0"] + ln[5:], "line 5: cannot read"),
    (lambda ln: ln[:4] + ["20 0.1 30 -0.2 5.0"] + ln[5:], "must be positive"),
    (lambda ln: ln[:7] + [ln[7].replace(ln[7].split()[1], "abc", 1)] + ln[8:], "line 8: 'abc' is not a number"),
    (lambda ln: ln[:7] + [ln[7] + " 1.0 2.0"] + ln[8:], "more values than expected"),
    (lambda ln: ln[:7] + [ln[7].replace(ln[7].split()[0], "nan", 1)] + ln[8:], "non-finite"),
])
def test_malformed_files(tmp_path, transform, message):
    bad = _mangle(tmp_path, "bad.eam.alloy", transform)
    with pytest.raises(FileFormatError, match=message) as info:
        EAM(bad)
    assert "bad.eam.alloy" in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(FileFormatError, match="cannot read EAM file"):
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
