import numpy as np
import pytest

import spinlat as sl
from spinlat import analysis, units
from spinlat.errors import InputError


def test_binder_limits(rng):
    ordered = np.tile([0.0, 0.0, 0.8], (1000, 1))
    assert analysis.binder_cumulant(ordered) == pytest.approx(2 / 3)
    # paramagnet: Gaussian 3-vector → U4 = 1 − 5/9 = 4/9 ... for |M|^2 of a 3D Gaussian <m^4>/<m^2>^2 = 5/3
    gauss = rng.normal(size=(200_000, 3))
    assert analysis.binder_cumulant(gauss) == pytest.approx(1 - 5 / 9, abs=0.01)


def test_crossing():
    x = np.linspace(0, 1, 11)
    assert analysis.crossing(x, x, 1 - x) == pytest.approx(0.5)
    assert np.isnan(analysis.crossing(x, x, x + 1))


def test_specific_heat_and_susceptibility(rng):
    t = 300.0
    e = rng.normal(0, 0.01, 10000)
    c = analysis.specific_heat(e, t, 10)
    assert c == pytest.approx(np.var(e) / (10 * (units.K_B * t) ** 2))
    m = np.abs(rng.normal(0.5, 0.05, 10000))
    chi = analysis.susceptibility(m, t, 100)
    assert chi == pytest.approx(100 * np.var(m) / (units.K_B * t), rel=1e-10)
    with pytest.raises(InputError):
        analysis.specific_heat(e, 0.0, 10)


def test_structure_factor_finds_precession_frequency():
    # uniform precession at 28 GHz about z: q = 0 peak at 0.028 THz; a spin wave at q=(k,0,0)
    n, f, dt = 16, 2048, 10.0
    pos = np.stack([np.arange(n) * 2.5, np.zeros(n), np.zeros(n)], axis=1)
    t = np.arange(f) * dt
    k = 2 * np.pi / (n * 2.5) * 2
    nu = 0.5e-3  # 1/fs = 0.5 THz
    phase = 2 * np.pi * nu * t[:, None] - k * pos[None, :, 0]
    spins = np.stack([0.1 * np.cos(phase), 0.1 * np.sin(phase), np.full_like(phase, np.sqrt(1 - 0.01))], axis=2)
    thz, mev, s = analysis.structure_factor(spins, pos, np.array([[k, 0, 0], [0, 0, 0]]), dt)
    assert thz[np.argmax(s[0])] == pytest.approx(0.5, abs=1.5 / (f * dt) * 1e3)
    assert s[0].max() > 100 * s[1].max()
    assert mev[1] == pytest.approx(thz[1] * 4.135667696, rel=1e-6)


def test_rdf_and_correlation_fcc():
    a = 3.52
    from ase.build import bulk

    st = sl.State.from_ase(bulk("Ni", "fcc", a=a, cubic=True).repeat(3))
    st = st.copy(moments=np.full(len(st), 0.6))
    r, g = analysis.radial_distribution(st, 3.0, 60)
    assert r[np.argmax(g)] == pytest.approx(a / np.sqrt(2), abs=0.05)
    r, c, counts = analysis.spin_correlation(st, 3.0, 30)
    assert np.nansum(counts) == 12 * len(st) // 2
    assert np.allclose(c[counts > 0], 1.0)


def test_energy_drift():
    t = np.linspace(0, 1000, 11)
    slope, dev = analysis.energy_drift(t, 2.0 * t * 1e-3, n_atoms=2)
    assert slope == pytest.approx(1.0)
    assert dev == pytest.approx(1.0)


def test_structure_factor_sees_both_precession_senses():
    n, f, dt = 4, 512, 10.0
    pos = np.zeros((n, 3))
    t = np.arange(f) * dt
    nu = 25 / (f * dt)  # on the frequency grid: 0.488 THz
    for sense in (1, -1):
        ph = sense * 2 * np.pi * nu * t[:, None] + np.zeros((1, n))
        spins = np.stack([0.1 * np.cos(ph), 0.1 * np.sin(ph), np.full_like(ph, -0.99)], axis=2)
        thz, _, s = analysis.structure_factor(spins, pos, np.zeros((1, 3)), dt)
        assert thz[np.argmax(s[0])] == pytest.approx(nu * 1e3, abs=1e-9)
