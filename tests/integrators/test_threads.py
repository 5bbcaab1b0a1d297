"""Bitwise the same results on 1 and 2 numba threads.

Every threaded numba kernel writes per-atom rows that one thread computes in a fixed order (no
shared accumulators), with the same floating-point contraction as its serial twin, so the thread
count must not change a single bit. The kernels switch to threads only above a size threshold
(module parameters ``spin_lattice.PARALLEL_MIN_SPINS``, ``exchange.PARALLEL_MIN_ATOMS``,
``exchange.CACHED_PARALLEL_MIN_ATOMS``, ``eam.PARALLEL_MIN_ATOMS``, ``spin_lattice.PARALLEL_MIN_ATOMS``,
``noise.PARALLEL_MIN_ROWS``); the tests lower them so that 128 atoms use threads, and
count the calls of the threaded kernels to make sure they ran.
"""

import numba
import numpy as np
import pytest

import spinlat.integrators.noise as noise
import spinlat.neighbors as neighbors
import spinlat.integrators.spin_lattice as spin_lattice
import spinlat.potentials.eam as eam
import spinlat.potentials.exchange as exchange
from spinlat import units
from spinlat.integrators import SpinLatticeLangevin, SpinLatticeNVE
from spinlat.potentials import EAM, BetheSlaterExchange, Zeeman

from conftest import EAM_FE, bcc_fe

pytestmark = pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2,
                                reason="numba has fewer than 2 threads here (NUMBA_NUM_THREADS)")

_THREADED = {spin_lattice: ["_linear_sweep_parallel", "_kick_parallel", "_drift_parallel", "_drift_o_drift_parallel"],
             eam: ["_density_rows_parallel", "_density_gather_parallel", "_embedding_parallel",
                   "_force_gather_parallel", "_density_full_parallel", "_force_full_parallel"],
             exchange: ["_exchange_parallel", "_exchange_geometry_parallel", "_exchange_from_geometry_parallel"],
             noise: ["_fill_parallel"], neighbors: ["_largest_displacement2_parallel"]}


@pytest.fixture
def threaded(monkeypatch):
    """Thresholds lowered to 1 atom; returns the call counts of the threaded kernels."""
    monkeypatch.setattr(spin_lattice, "PARALLEL_MIN_SPINS", 1)
    monkeypatch.setattr(exchange, "PARALLEL_MIN_ATOMS", 1)
    monkeypatch.setattr(exchange, "CACHED_PARALLEL_MIN_ATOMS", 1)
    monkeypatch.setattr(eam, "PARALLEL_MIN_ATOMS", 1)
    monkeypatch.setattr(spin_lattice, "PARALLEL_MIN_ATOMS", 1)
    monkeypatch.setattr(noise, "PARALLEL_MIN_ROWS", 1)
    monkeypatch.setattr(neighbors, "PARALLEL_MIN_ATOMS", 1)
    monkeypatch.setattr(neighbors, "DISPLACEMENT_PARALLEL_MIN_ATOMS", 1)
    calls = {}
    for module, names in _THREADED.items():
        for name in names:
            kernel = getattr(module, name)
            calls[name] = 0

            def counted(*args, _kernel=kernel, _name=name):
                calls[_name] += 1
                return _kernel(*args)

            monkeypatch.setattr(module, name, counted)
    yield calls
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)


def _on_threads(n, fn):
    numba.set_num_threads(n)
    try:
        return fn()
    finally:
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)


def _system():
    st = bcc_fe((4, 4, 4), seed=1)
    rng = np.random.default_rng(2)
    v = rng.normal(size=(len(st), 3)) * np.sqrt(units.K_B * 600 * units.FORCE_TO_ACCELERATION / st.masses[:, None])
    return st.copy(velocities=v)


@pytest.mark.parametrize("make", [lambda: SpinLatticeNVE(0.5),
                                  lambda: SpinLatticeLangevin(0.5, 600.0, 0.01, 0.1, seed=4)],
                         ids=["nve", "langevin"])
def test_spin_lattice_dynamics_same_bits_on_1_and_2_threads(threaded, make):
    st = _system()

    def run():
        pot = EAM(EAM_FE) + BetheSlaterExchange(3.4, 0.02726, 0.2171, 1.841) + Zeeman([0, 0, 1.0])
        return make().run(st, pot, 10)

    one = _on_threads(1, run)
    assert threaded["_linear_sweep_parallel"] == 0  # one thread: the serial kernels
    two = _on_threads(2, run)
    assert threaded["_linear_sweep_parallel"] > 0 and threaded["_exchange_from_geometry_parallel"] > 0
    assert threaded["_exchange_geometry_parallel"] > 0
    langevin = isinstance(make(), SpinLatticeLangevin)
    drift = "_drift_o_drift_parallel" if langevin else "_drift_parallel"
    for name in ("_density_rows_parallel", "_density_gather_parallel", "_embedding_parallel",
                 "_force_gather_parallel", "_kick_parallel", drift, "_largest_displacement2_parallel"):
        assert threaded[name] > 0, name
    # the noise is drawn inside the threaded sweep and O-step kernels, not filled into a block first
    assert threaded["_fill_parallel"] == 0
    for name in ("positions", "velocities", "spins", "moments"):
        assert np.array_equal(getattr(one, name), getattr(two, name)), name


def test_exchange_kernels_same_bits_on_1_and_2_threads(threaded):
    st = _system()
    atoms = np.arange(0, len(st), 3)

    def evaluate():
        pot = BetheSlaterExchange(3.4, 0.02726, 0.2171, 1.841)
        ev = pot.compute(st, forces=True, magnetic_forces=True, stress=True)  # the full kernel
        h = pot.local_fields(st, pot.neighbor_list(st), atoms)
        cached = pot.compute(st, forces=True, magnetic_forces=True)  # the cached-pair kernels
        return ev, h, cached

    one = _on_threads(1, evaluate)
    two = _on_threads(2, evaluate)
    assert threaded["_exchange_parallel"] > 0
    for a, b in ((one[0], two[0]), (one[2], two[2])):
        assert a.energy == b.energy
        for name in ("forces", "magnetic_forces", "energies", "stress"):
            if getattr(a, name) is not None:
                assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert np.array_equal(one[1], two[1])


@pytest.mark.parametrize("path", ["fs", "alloy"])
def test_eam_kernels_same_bits_on_1_and_2_threads(threaded, path, tmp_path):
    """Densities, energies, forces and stress of the threaded EAM passes equal the serial ones bit
    for bit, for a symmetric (one element) and an asymmetric density table (Finnis-Sinclair file
    with two elements whose cross densities differ)."""
    st = _system()
    if path == "fs":
        make = lambda: EAM(EAM_FE)  # noqa: E731
    else:
        st = st.copy(numbers=np.where(np.arange(len(st)) % 3 == 0, 24, 26))
        make = lambda: EAM(_two_element_fs(tmp_path))  # noqa: E731
    rng = np.random.default_rng(5)
    st = st.copy(positions=st.positions + rng.normal(scale=0.05, size=st.positions.shape))

    def evaluate():
        pot = make()
        return pot.compute(st, forces=True, stress=True), pot.compute(st, forces=True), pot.densities(st)

    one = _on_threads(1, evaluate)
    calls = threaded["_force_gather_parallel"]
    two = _on_threads(2, evaluate)
    assert threaded["_force_gather_parallel"] > calls and threaded["_density_rows_parallel"] > 0
    for a, b in zip(one[:2], two[:2]):
        assert a.energy == b.energy
        for name in ("forces", "energies", "stress"):
            if getattr(a, name) is not None:
                assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert np.array_equal(one[2], two[2])
    # the energy is the sum of the per-atom energies, and the forces its gradient (central
    # differences on one atom)
    pot = make()
    assert one[0].energy == pytest.approx(one[0].energies.sum(), rel=1e-13)
    k, h = 7, 1e-5
    for d in range(3):
        up, dn = st.positions.copy(), st.positions.copy()
        up[k, d] += h
        dn[k, d] -= h
        fd = -(pot.compute(st.copy(positions=up)).energy - pot.compute(st.copy(positions=dn)).energy) / (2 * h)
        assert one[0].forces[k, d] == pytest.approx(fd, abs=1e-6)


def test_eam_full_row_kernels_same_bits_on_1_and_2_threads(threaded):
    """EAM(low_memory=True) (full rows, the default from LOW_MEMORY_MIN_ATOMS atoms): energies,
    per-atom energies, forces and stress on 2 threads equal those on 1 bit for bit, and agree
    with the tabled half-list pass to 1e-12."""
    rng = np.random.default_rng(6)
    st = _system()
    st = st.copy(positions=st.positions + rng.normal(scale=0.05, size=st.positions.shape))

    def evaluate():
        return EAM(EAM_FE, low_memory=True).compute(st, forces=True, stress=True)

    one = _on_threads(1, evaluate)
    calls = threaded["_force_full_parallel"]
    two = _on_threads(2, evaluate)
    assert threaded["_force_full_parallel"] > calls and threaded["_density_full_parallel"] > 0
    assert one.energy == two.energy
    for name in ("forces", "energies", "stress"):
        assert np.array_equal(getattr(one, name), getattr(two, name)), name
    tabled = EAM(EAM_FE, low_memory=False).compute(st, forces=True, stress=True)
    np.testing.assert_allclose(one.forces, tabled.forces, rtol=0, atol=1e-12)
    np.testing.assert_allclose(one.energies, tabled.energies, rtol=0, atol=1e-12)


def _two_element_fs(tmp_path):
    """A Finnis-Sinclair file for Cr and Fe made from the Fe tables, with different cross
    densities (ρ_Cr→Fe = 0.8 ρ, ρ_Fe→Cr = 1.1 ρ), so the density table is not symmetric."""
    from spinlat.potentials.eam import read_eam_file

    d = read_eam_file(EAM_FE)
    nrho, drho, nr, dr, cut = d["nrho"], d["drho"], d["nr"], d["dr"], d["cutoff"]
    rho = d["rhor"][0, 0]
    frho = d["frho"][0]
    z2r = d["z2r"][0, 0]
    lines = ["two elements", "made from Fe_mm", "for a test", "2 Cr Fe", f"{nrho} {drho!r} {nr} {dr!r} {cut!r}"]
    fmt = lambda a: "\n".join(" ".join(repr(float(x)) for x in a[i:i + 5]) for i in range(0, len(a), 5))  # noqa: E731
    for z, mass, scale in ((24, 51.996, (1.0, 1.1)), (26, 55.845, (0.8, 1.0))):
        lines.append(f"{z} {mass} 2.88 bcc")
        lines.append(fmt(frho * (0.9 if z == 24 else 1.0)))
        for s in scale:
            lines.append(fmt(rho * s))
    for a, b in ((0, 0), (1, 0), (1, 1)):
        lines.append(fmt(z2r * (1.0 + 0.05 * (a + b))))
    path = tmp_path / "CrFe.eam.fs"
    path.write_text("\n".join(lines) + "\n")
    return path
