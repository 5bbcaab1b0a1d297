"""Observables: energies, temperatures (lattice, Nurdin spin temperature), magnetisation."""

import sys
from pathlib import Path

import numpy as np

import spinlat as sl
from spinlat import observables as obs
from spinlat import units
from spinlat.integrators import SpinLatticeNVE

sys.path.insert(0, str(Path(__file__).parent / "integrators"))
from test_spin_lattice import Field, PairSpin, crystal  # noqa: E402


def test_energies_and_magnetization():
    st = crystal(2, T=300.0)
    pot = PairSpin() + Field([0, 0, 1.0])
    ev = pot.compute(st)
    assert np.isclose(obs.potential_energy(st, pot), ev.energy)
    assert np.isclose(obs.total_energy(st, evaluation=ev), ev.energy + st.kinetic_energy())
    assert np.isclose(obs.lattice_temperature(st), st.temperature())
    assert np.allclose(obs.magnetization(st), (st.spins * st.moments[:, None]).sum(0))
    assert np.isclose(obs.magnetization_norm(st, reduced=True),
                      np.linalg.norm(st.magnetization()) / st.moments.sum())
    # spin energy = exchange + Zeeman; the Zeeman part alone is −μB Σ m s·B
    zeeman = -units.MU_B * np.sum(st.moments * st.spins[:, 2])
    assert np.isclose(obs.spin_energy(st, Field([0, 0, 1.0])), zeeman)


def test_spin_energy_skips_lattice_terms():
    class Lattice(PairSpin):
        magnetic = False

    st = crystal(2)
    pot = Lattice() + Field([0, 0, 3.0])
    assert np.isclose(obs.spin_energy(st, pot), Field([0, 0, 3.0]).compute(st).energy)


def test_spin_temperature_of_boltzmann_spins_in_field():
    # sample free spins from the exact Boltzmann distribution in a field along z
    rng = np.random.default_rng(0)
    n, moment, B, T = 200_000, 2.0, 50.0, 40.0
    x = moment * units.MU_B * B / (units.K_B * T)
    u = rng.random(n)
    c = 1 + np.log(u + (1 - u) * np.exp(-2 * x)) / x  # inverse CDF of cos θ ∝ exp(x cos θ)
    phi = rng.random(n) * 2 * np.pi
    s = np.stack([np.sqrt(1 - c**2) * np.cos(phi), np.sqrt(1 - c**2) * np.sin(phi), c], 1)
    st = sl.State(np.zeros((n, 3)), [26] * n, spins=s, moments=[moment] * n, validate=False)
    ts = obs.spin_temperature(st, Field([0, 0, B]))
    assert abs(ts / T - 1) < 0.01, ts
    assert obs.spin_temperature(st.copy(moments=np.zeros(n))) == 0.0


def test_trajectory_observables(tmp_path):
    st = crystal(2, T=300.0)
    pot = PairSpin() + Field([0, 0, 1.0])
    path = tmp_path / "t.h5"
    sl.Simulation(st, pot, SpinLatticeNVE(1.0), trajectory=path, every=5, progress=False).run(20)
    out = obs.trajectory_observables(path, pot)
    assert out["total_energy"].shape == (5,)
    assert out["magnetization"].shape == (5, 3)
    assert np.allclose(out["magnetization_norm"], np.linalg.norm(out["magnetization"], axis=1))
    slope, dev = out["energy_drift"]
    assert abs(dev) < 1e-3
    assert np.all(np.isfinite(out["spin_temperature"]))
    assert np.isclose(out["spin_energy"][0], obs.spin_energy(st, pot))
    d = obs.state_observables(st, pot)
    assert np.isclose(d["total_energy"], out["total_energy"][0])
