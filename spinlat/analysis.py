"""Analysis of trajectories and sampled observables: magnetisation, susceptibility, specific
heat, Binder cumulant, spin-spin correlation, dynamic structure factor S(q, ω), energy drift,
radial distribution, and PNG plots. Averages and the fluctuation quantities (χ, C, U4) give error
bars for correlated samples with ``with_errors=True`` (:mod:`spinlat.statistics`: blocking and
the blocked jackknife), returning a :class:`spinlat.statistics.Estimate` instead of the float.

Functions take plain arrays (so they also serve Monte Carlo samples) or a
:class:`spinlat.io.Trajectory` / path where noted. Units: energies eV, temperatures K, times fs,
moments μB, wave vectors 1/Å (Cartesian, including the 2π), frequencies THz and meV.
"""

from __future__ import annotations

import numpy as np

from . import units
from .errors import InputError


def _open(traj):
    from .io import Trajectory

    return Trajectory(traj) if isinstance(traj, (str, bytes)) or hasattr(traj, "__fspath__") else traj


def magnetization(spins, moments=None, normalized=True):
    """Magnetisation per frame.

    ``spins`` (F, N, 3) or (N, 3); ``moments`` (F, N) or (N,) μB, optional.
    Returns (F, 3): Σ_i m_i / Σ_i |m_i| if ``normalized`` (dimensionless, |M| ≤ 1), else Σ_i m_i (μB)."""
    s = np.asarray(spins, dtype=float)
    single = s.ndim == 2
    if single:
        s = s[None]
    mom = np.ones(s.shape[:2]) if moments is None else np.broadcast_to(np.asarray(moments, float), s.shape[:2])
    m = np.einsum("fn,fnk->fk", mom, s)
    if normalized:
        m = m / np.maximum(mom.sum(axis=1), 1e-300)[:, None]
    return m[0] if single else m


def _norm2(m):
    """|M|² per sample of magnetisation samples ((S, 3) vectors or (S,) norms/scalars)."""
    m = np.asarray(m, float)
    return np.sum(m**2, axis=-1) if m.ndim == 2 else m**2


def binder_cumulant(m, with_errors=False):
    """U4 = 1 − ⟨|M|⁴⟩ / (3⟨|M|²⟩²) of magnetisation samples ``m`` ((S,3) vectors or (S,) norms).

    With ``with_errors`` a :class:`spinlat.statistics.Estimate` (same value, error from the
    blocked jackknife over the series (|M|², |M|⁴), :func:`spinlat.statistics.jackknife`) is
    returned instead of the float; the samples are taken as a time series (consecutive
    sweeps/frames) and need not be independent."""
    m2 = _norm2(m)
    if not with_errors:
        return float(1.0 - np.mean(m2**2) / (3.0 * np.mean(m2) ** 2))
    from .statistics import jackknife

    return jackknife(lambda mean: 1.0 - mean[1] / (3.0 * mean[0] ** 2), np.column_stack([m2, m2**2]))


def susceptibility(m, temperature, n_spins, moment=1.0, with_errors=False):
    """Magnetic susceptibility per spin from magnetisation samples.

    χ = N μ² (⟨|M|²⟩ − ⟨|M|⟩²) / (k_B T), with ``m`` normalised magnetisation samples ((S,3) or
    (S,)), μ = ``moment`` (μB) → χ in μB²/eV per spin (multiply by μB (eV/T) for μB/T).
    With ``with_errors`` a :class:`spinlat.statistics.Estimate` (blocked jackknife over
    (|M|, |M|²)) is returned instead of the float. Raises :class:`InputError` for T ≤ 0."""
    if not temperature > 0:
        raise InputError(f"susceptibility needs a positive temperature (K), got {temperature}")
    m = np.asarray(m, float)
    norm = np.linalg.norm(m, axis=-1) if m.ndim == 2 else np.abs(m)
    scale = n_spins * moment**2 / (units.K_B * temperature)
    if not with_errors:
        return float(scale * (np.mean(norm**2) - np.mean(norm) ** 2))
    from .statistics import jackknife

    return jackknife(lambda mean: scale * (mean[1] - mean[0] ** 2), np.column_stack([norm, norm**2]))


def specific_heat(energies, temperature, n_atoms, with_errors=False):
    """Specific heat per atom in units of k_B from total-energy samples (eV):
    C = (⟨E²⟩ − ⟨E⟩²) / (N k_B² T²). With ``with_errors`` a
    :class:`spinlat.statistics.Estimate` (blocked jackknife over (E − Ē, (E − Ē)²); the shift
    avoids cancellation and leaves C unchanged) is returned instead of the float. Raises
    :class:`InputError` for T ≤ 0."""
    if not temperature > 0:
        raise InputError(f"specific heat needs a positive temperature (K), got {temperature}")
    e = np.asarray(energies, float)
    scale = 1.0 / (n_atoms * (units.K_B * temperature) ** 2)
    if not with_errors:
        return float(np.var(e) * scale)
    from .statistics import jackknife

    d = e - np.mean(e)
    return jackknife(lambda mean: scale * (mean[1] - mean[0] ** 2), np.column_stack([d, d**2]))


def average(samples, with_errors=False, method="blocking"):
    """Mean of a series of samples (energies, |M|, temperatures, ...); with ``with_errors`` a
    :class:`spinlat.statistics.Estimate` with the error of the mean of correlated samples
    (``method`` "blocking" or "autocorrelation", :func:`spinlat.statistics.average`)."""
    x = np.asarray(samples, float)
    if not with_errors:
        return float(np.mean(x))
    from .statistics import average as _average

    return _average(x, method=method)


def crossing(x, ya, yb):
    """First x where the curves ya(x) and yb(x) cross (linear interpolation); NaN if none."""
    x, d = np.asarray(x, float), np.asarray(ya, float) - np.asarray(yb, float)
    sign = np.sign(d)
    idx = np.flatnonzero(sign[:-1] * sign[1:] < 0)
    if len(idx) == 0:
        zero = np.flatnonzero(d == 0)
        return float(x[zero[0]]) if len(zero) else float("nan")
    k = idx[0]
    return float(x[k] - d[k] * (x[k + 1] - x[k]) / (d[k + 1] - d[k]))


def spin_correlation(state, r_max, n_bins=100):
    """Spin-spin correlation C(r) = ⟨s_i·s_j⟩ over magnetic pairs at distance r < ``r_max`` (Å).
    Returns (bin centres Å, C(r), pair counts); empty bins give NaN."""
    from .neighbors import neighbor_pairs

    i, j, _, d = neighbor_pairs(state, r_max, full=False)
    mag = state.magnetic
    keep = mag[i] & mag[j]
    i, j, d = i[keep], j[keep], d[keep]
    dots = np.sum(state.spins[i] * state.spins[j], axis=1)
    edges = np.linspace(0, r_max, n_bins + 1)
    counts, _ = np.histogram(d, edges)
    sums, _ = np.histogram(d, edges, weights=dots)
    with np.errstate(invalid="ignore", divide="ignore"):
        c = sums / counts
    return 0.5 * (edges[1:] + edges[:-1]), c, counts


def radial_distribution(state, r_max, n_bins=100):
    """Radial distribution function g(r) of a periodic ``state`` up to ``r_max`` Å.
    Returns (bin centres Å, g(r))."""
    from .neighbors import neighbor_pairs

    if not state.pbc.all():
        raise InputError("radial_distribution needs a fully periodic state")
    _, _, _, d = neighbor_pairs(state, r_max, full=False)
    edges = np.linspace(0, r_max, n_bins + 1)
    counts, _ = np.histogram(d, edges)
    n = len(state)
    shell = 4.0 / 3.0 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    g = 2.0 * counts / (n * (n / state.volume) * shell)
    return 0.5 * (edges[1:] + edges[:-1]), g


def structure_factor(spins, positions, qpoints, dt, window=True):
    """Dynamic spin structure factor S(q, ω).

    ``spins`` (F, N, 3) at equally spaced times ``dt`` (fs) apart; ``positions`` (N, 3) Å
    (reference lattice sites); ``qpoints`` (K, 3) Cartesian wave vectors in 1/Å (with the 2π).
    S(q, ω) = Σ_α |FT_t[ s_q^α(t) ]|² / (N F), with s_q(t) = Σ_i s_i(t) e^{i q·r_i} and the static
    part (the time average of each s_q) removed. Returns (frequencies THz, energies meV, S (K, ·))
    on non-negative frequencies, with S(−ω) folded onto S(|ω|) so either precession sense shows.
    """
    s = np.asarray(spins, float)
    if s.ndim != 3 or s.shape[2] != 3:
        raise InputError(f"spins must have shape (frames, atoms, 3), got {s.shape}")
    if not dt > 0:
        raise InputError(f"structure_factor needs a positive frame spacing dt (fs), got {dt}")
    f, n, _ = s.shape
    phase = np.exp(1j * np.asarray(qpoints, float) @ np.asarray(positions, float).T)  # (K, N)
    sq = np.einsum("kn,fnc->kcf", phase, s)  # (K, 3, F)
    sq = sq - sq.mean(axis=2, keepdims=True)
    if window:
        sq = sq * np.hanning(f)[None, None, :]
    ft = np.fft.fft(sq, axis=2)
    spec = np.sum(np.abs(ft) ** 2, axis=1) / (n * f)
    # fold negative frequencies onto |ω|: spins magnetised along −B̂ precess the other way
    nf = f // 2 + 1
    folded = spec[:, :nf].copy()
    folded[:, 1:(f + 1) // 2] += spec[:, f - 1:f - (f + 1) // 2:-1]
    thz = np.arange(nf) / (f * dt) * 1e3
    mev = thz * 1e12 * 2 * np.pi * units.HBAR * 1e-15 * 1e3
    return thz, mev, folded


def energy_drift(time, energy, n_atoms=1):
    """Drift of a total-energy series: (slope eV/atom/ps by least squares, largest deviation from
    the first value eV/atom)."""
    t = np.asarray(time, float) * 1e-3
    e = np.asarray(energy, float) / n_atoms
    if len(t) < 2:
        return 0.0, 0.0
    slope = np.polyfit(t, e, 1)[0]
    return float(slope), float(np.max(np.abs(e - e[0])))


def summary(traj):
    """Numbers describing a trajectory (path, :class:`~spinlat.io.Trajectory`, or any object with
    the same ``array``/indexing interface): frames, time span, mean temperature, mean |M|, mean
    potential energy per atom, energy drift.

    Every mean ``X`` comes with ``X_error`` (standard error of the mean of the correlated
    frames, Flyvbjerg–Petersen blocking, :func:`spinlat.statistics.average`), ``X_tau_int``
    (integrated autocorrelation time in frames) and ``X_reliable`` (False when the run is too
    short for its correlation time: the error is then a lower bound). Errors assume the frames
    are stationary (equilibrated); for fewer than 2 frames they are None."""
    from .statistics import average as _average

    t = _open(traj)
    n = t[0].n_atoms
    time = t.array("time")
    etot = t.array("total_energy")
    mag = t.array("magnetization")
    moments = t.array("moments")
    mnorm = np.linalg.norm(mag, axis=1) / np.maximum(moments.sum(axis=1), 1e-300)
    slope, dev = energy_drift(time, etot, n)
    out = {
        "frames": int(len(time)),
        "time_fs": float(time[-1] - time[0]) if len(time) else 0.0,
        "n_atoms": int(n),
    }
    series = {"temperature_mean_K": t.array("temperature"), "magnetization_mean": mnorm,
              "potential_energy_mean_eV_per_atom": np.asarray(t.array("potential_energy"), float) / n}
    for key, x in series.items():
        out[key] = float(np.mean(x))
        est = _average(x) if len(x) >= 2 and np.all(np.isfinite(x)) else None
        out[key + "_error"] = est.error if est else None
        out[key + "_tau_int"] = est.tau_int if est else None
        out[key + "_reliable"] = est.reliable if est else False
    out["energy_drift_eV_per_atom_per_ps"] = slope
    out["energy_max_deviation_eV_per_atom"] = dev
    return out


def plot_overview(traj, path):
    """PNG of potential/kinetic/total energy, temperature and |M| against time for a trajectory."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = _open(traj)
    time = t.array("time") * 1e-3
    n = t[0].n_atoms
    fig, ax = plt.subplots(3, 1, figsize=(6, 7), sharex=True)
    for name in ("potential_energy", "kinetic_energy", "total_energy"):
        e = t.array(name)
        ax[0].plot(time, (e - e[0]) / n * 1e3, label=name.replace("_", " "))
    ax[0].set_ylabel("E − E(0) (meV/atom)")
    ax[0].legend(fontsize=8)
    ax[1].plot(time, t.array("temperature"))
    ax[1].set_ylabel("T lattice (K)")
    mag = t.array("magnetization")
    moments = t.array("moments")
    ax[2].plot(time, np.linalg.norm(mag, axis=1) / np.maximum(moments.sum(axis=1), 1e-300))
    ax[2].set_ylabel("|M| / Σ|m|")
    ax[2].set_xlabel("time (ps)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
