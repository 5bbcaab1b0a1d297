"""Analysis of trajectories and sampled observables: susceptibility, specific heat, Binder
cumulant, spin-spin correlation, dynamic structure factor S(q, ω), radial distribution, run
summaries and PNG plots. Averages and the fluctuation quantities (χ, C, U4) give error bars for
correlated samples with ``with_errors=True`` (:mod:`spinlat.statistics`: blocking and the blocked
jackknife), returning a :class:`spinlat.statistics.Estimate` instead of the float.

The observables themselves (magnetisation in its forms, energy drift and fluctuation, spin
temperature) are defined once, in :mod:`spinlat.observables`; ``energy_drift`` and
``energy_fluctuation`` are importable from here too, and :func:`magnetization` keeps its
signature on top of them.

What a run reports depends on what kind of run it was (:func:`energy_conserving`,
:func:`time_unit`): Monte Carlo runs are counted in sweeps, not femtoseconds; only runs that
conserve energy (NVE, LLG without damping and noise) report an energy drift, thermostatted and
Monte Carlo runs report the mean energy and its fluctuation instead.

Functions take plain arrays (so they also serve Monte Carlo samples) or a
:class:`spinlat.io.Trajectory` / path where noted. Units: energies eV, temperatures K, times fs,
moments μB, wave vectors 1/Å (Cartesian, including the 2π), frequencies THz and meV.
"""

from __future__ import annotations

import re
import warnings

import numpy as np

from . import units, validation
from .errors import InputError
from .files import save_figure
from .observables import energy_drift, energy_fluctuation  # noqa: F401  (defined there, public here)
from .observables import reduced_from_total, spin_energy, spin_temperature
from .keywords import refuse_other_names


def _open(traj):
    """A trajectory (path or object) holding at least one frame; InputError naming it otherwise."""
    from .io import Trajectory

    t = Trajectory(traj) if isinstance(traj, (str, bytes)) or hasattr(traj, "__fspath__") else traj
    if hasattr(t, "__len__") and len(t) == 0:
        why = t.no_frame_reason() if hasattr(t, "no_frame_reason") else "nothing to analyse"
        raise InputError(f"trajectory {getattr(t, 'path', traj)} holds no frame: {why}")
    return t


@refuse_other_names()
def magnetization(spins, moments=None, normalized=True):
    """Magnetisation per frame: the reduced magnetisation Σ_i m_i / Σ_i |m_i| (dimensionless,
    |m| ≤ 1; :func:`spinlat.observables.reduced_magnetization`) if ``normalized``, else the total
    moment Σ_i m_i in μB (:func:`spinlat.observables.total_moment`).

    ``spins`` (F, N, 3) or (N, 3); ``moments`` (F, N) or (N,) μB, optional (unit moments).
    Returns (F, 3) or (3,)."""
    from .observables import reduced_magnetization, total_moment

    return reduced_magnetization(spins, moments) if normalized else total_moment(spins, moments)


def _samples(x, name, vectors=False) -> np.ndarray:
    """``x`` as a float array of samples along axis 0: (S,), or (S, 3) when ``vectors``; at least one
    sample, every value finite. InputError naming ``name`` otherwise: a NaN would make the mean,
    χ, C or U4 NaN without a word, and an empty series their mean of nothing."""
    a = np.asarray(x, float)
    shapes = "(S,) or (S, 3)" if vectors else "(S,)"
    if a.ndim not in ((1, 2) if vectors else (1,)) or (a.ndim == 2 and a.shape[1] != 3):
        raise InputError(f"{name} must have shape {shapes} (one row per sample), got {a.shape}")
    if len(a) == 0:
        raise InputError(f"{name} holds no sample (nothing to average)")
    bad = ~np.isfinite(a) if a.ndim == 1 else ~np.isfinite(a).all(axis=1)
    if bad.any():
        raise InputError(f"{name} holds NaN or infinite values in {int(bad.sum())} of {len(a)} samples (first at "
                         f"index {int(np.argmax(bad))}); drop those samples first")
    return a


def _fluctuation_samples(a, name) -> np.ndarray:
    """``a`` (samples from :func:`_samples`) when it holds at least 2: a variance of one sample is 0,
    which χ and C would report as a measured value (and U4 as 2/3, the ordered phase's)."""
    if len(a) < 2:
        raise InputError(f"{name} holds {len(a)} sample: a fluctuation quantity (χ, C, U4) needs at least 2 (one "
                         "sample has no fluctuation: it would read 0, or U4 = 2/3)")
    return a


def _reduced(m, name) -> np.ndarray:
    """Magnetisation samples that must be reduced (|m| ≤ 1): InputError for a total moment in μB."""
    a = _samples(m, name, vectors=True)
    norm = np.linalg.norm(a, axis=1) if a.ndim == 2 else np.abs(a)
    if norm.max() > 1.0 + 1e-9:
        raise InputError(f"{name} must be the reduced magnetisation M / Σ|m_i| (|m| ≤ 1), but reaches "
                         f"{norm.max():.6g}: a total moment in μB (the trajectory's 'magnetization' dataset, "
                         f"State.magnetization()) would scale χ by (Σ|m_i|)²; pass "
                         f"spinlat.observables.reduced_from_total(M, moments) or reduced_magnetization(spins, moments)")
    return a


def _norm2(m):
    """|M|² per sample of magnetisation samples ((S, 3) vectors or (S,) norms/scalars)."""
    m = _fluctuation_samples(_samples(m, "magnetisation samples m", vectors=True), "magnetisation samples m")
    return np.sum(m**2, axis=-1) if m.ndim == 2 else m**2


def binder_cumulant(m, with_errors=False):
    """U4 = 1 − ⟨|M|⁴⟩ / (3⟨|M|²⟩²) of magnetisation samples ``m`` ((S,3) vectors or (S,) norms).

    With ``with_errors`` a :class:`spinlat.statistics.Estimate` (same value, error from the
    blocked jackknife over the series (|M|², |M|⁴), :func:`spinlat.statistics.jackknife`) is
    returned instead of the float; the samples are taken as a time series (consecutive
    sweeps/frames) and need not be independent. Raises :class:`InputError` for no sample, NaN or
    infinite samples, fewer than 2 samples, every sample 0 (U4 is 0/0), or another shape."""
    m2 = _norm2(m)
    if not np.any(m2 > 0):  # 0/0: no magnetic atoms, or samples of zeros (not a paramagnet: U4 → 0 there)
        raise InputError(f"binder_cumulant: every one of the {len(m2)} magnetisation samples is 0, so U4 = 1 − ⟨M⁴⟩ / "
                         "(3⟨M²⟩²) is 0/0 (a system without magnetic atoms, or samples that were never filled)")
    if not with_errors:
        return float(1.0 - np.mean(m2**2) / (3.0 * np.mean(m2) ** 2))
    from .statistics import jackknife

    return jackknife(lambda mean: 1.0 - mean[1] / (3.0 * mean[0] ** 2), np.column_stack([m2, m2**2]))


@refuse_other_names()
def susceptibility(m, temperature, n_spins, moment=1.0, with_errors=False):
    """Magnetic susceptibility per spin from magnetisation samples.

    χ = N μ² (⟨|M|²⟩ − ⟨|M|⟩²) / (k_B T), with ``m`` normalised magnetisation samples ((S,3) or
    (S,)), μ = ``moment`` (μB) → χ in μB²/eV per spin (multiply by μB (eV/T) for μB/T).
    With ``with_errors`` a :class:`spinlat.statistics.Estimate` (blocked jackknife over
    (|M|, |M|²)) is returned instead of the float. Raises :class:`InputError` for T ≤ 0, for fewer
    than 2 samples or NaN samples, and for samples with |m| > 1 (a total moment in μB, e.g. the HDF5
    ``magnetization`` dataset, in place of the reduced one)."""
    if not temperature > 0:
        raise InputError(f"susceptibility needs a positive temperature (K), got {temperature}")
    m = _fluctuation_samples(_reduced(m, "susceptibility: magnetisation samples m"),
                             "susceptibility: magnetisation samples m")
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
    :class:`InputError` for T ≤ 0 and for fewer than 2 samples or NaN samples."""
    if not temperature > 0:
        raise InputError(f"specific heat needs a positive temperature (K), got {temperature}")
    e = _fluctuation_samples(_samples(energies, "specific_heat: energies"), "specific_heat: energies")
    scale = 1.0 / (n_atoms * (units.K_B * temperature) ** 2)
    if not with_errors:
        return float(np.var(e) * scale)
    from .statistics import jackknife

    d = e - np.mean(e)
    return jackknife(lambda mean: scale * (mean[1] - mean[0] ** 2), np.column_stack([d, d**2]))


@refuse_other_names()
def average(samples, with_errors=False, method="blocking"):
    """Mean of a series of samples (energies, |M|, temperatures, ...); with ``with_errors`` a
    :class:`spinlat.statistics.Estimate` with the error of the mean of correlated samples
    (``method`` "blocking" or "autocorrelation", :func:`spinlat.statistics.average`). Raises
    :class:`InputError` for no sample, NaN or infinite samples, or a series that is not 1-D."""
    x = _samples(samples, "average: samples")
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

    n_bins = validation.integer(n_bins, "spin_correlation n_bins", minimum=1)
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
    n_bins = validation.integer(n_bins, "radial_distribution n_bins", minimum=1)
    _, _, _, d = neighbor_pairs(state, r_max, full=False)
    edges = np.linspace(0, r_max, n_bins + 1)
    counts, _ = np.histogram(d, edges)
    n = len(state)
    shell = 4.0 / 3.0 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    g = 2.0 * counts / (n * (n / state.volume) * shell)
    return 0.5 * (edges[1:] + edges[:-1]), g


@refuse_other_names()
def structure_factor(spins, positions, qpoints, dt, window=True, moments=None):
    """Dynamic spin structure factor S(q, ω).

    ``spins`` (F, N, 3) at equally spaced times; ``dt``: their spacing (fs), or the (F,) frame
    times in fs (a trajectory's ``time``), which are checked: frames off the regular grid (the
    last step of each ``Simulation.run`` call, a restart with another ``every``) are left out
    with a UserWarning, and times on no regular grid raise InputError (an FFT over them would
    give a wrong spectrum without a word). ``positions`` (N, 3) Å, the reference lattice sites,
    or (F, N, 3), the sites of each frame (atoms that move, a cell that changes); ``qpoints``
    (K, 3) Cartesian wave vectors in 1/Å (with the 2π).
    S(q, ω) = Σ_α |FT_t[ s_q^α(t) ]|² / (N F), with s_q(t) = Σ_i s_i(t) e^{i q·r_i(t)} and the
    static part (the time average of each s_q) removed. Returns (frequencies THz, energies meV,
    S (K, ·)) on non-negative frequencies, with S(−ω) folded onto S(|ω|) so either precession
    sense shows. With ``moments`` ((F, N) or (N,) μB) the moment vectors m_i = moments_i s_i take
    the place of the unit spins (S in μB²): the moment-moment correlation that neutrons see, which
    also holds the longitudinal fluctuations of moments that change length (mMACE, Landau terms),
    invisible in the unit spins. Raises :class:`InputError` for fewer than 2 frames, NaN spins,
    positions or moments, positions or moments of another shape, or q-points not of shape (K, 3).
    For a trajectory file, :func:`trajectory_structure_factor` reads the frames block by block.
    """
    s = np.asarray(spins, float)
    if s.ndim != 3 or s.shape[2] != 3:
        raise InputError(f"spins must have shape (frames, atoms, 3), got {s.shape}")
    bad = ~np.isfinite(s).all(axis=(1, 2))
    if bad.any():
        raise InputError(f"structure_factor: spins hold NaN or infinite values in {int(bad.sum())} of {len(s)} frames "
                         f"(first: frame {int(np.argmax(bad))}); S(q, ω) would be NaN at every q")
    r = np.asarray(positions, float)
    _check_positions(r, s.shape, "structure_factor")
    if moments is not None:
        m = np.asarray(moments, float)
        if m.shape not in (s.shape[:2], s.shape[1:2]) or not np.isfinite(m).all():
            raise InputError(f"structure_factor: moments must be finite magnitudes (μB) of shape (F, N) = {s.shape[:2]} "
                             f"or (N,) = {s.shape[1:2]}, got shape {m.shape}")
        s = s * m[..., None]
    frames, dt = _regular_frames(dt, len(s), "structure_factor")
    s = s[frames]
    per_frame = r.ndim == 3
    if per_frame:
        r = r[frames]
    q = _qpoints(qpoints)
    block = max(1, (32 << 20) // max(1, 16 * len(q) * s.shape[1]))
    series = [_sq_block(s[a:a + block], r[a:a + block] if per_frame else r, q) for a in range(0, len(s), block)]
    return _spectrum(np.concatenate(series, axis=2), s.shape[1], dt, window)


@refuse_other_names()
def trajectory_structure_factor(traj, qpoints, frames=None, positions="first", window=True, vectors="spins"):
    """:func:`structure_factor` of a trajectory (path or :class:`spinlat.io.Trajectory`), reading
    its spins (and positions) block by block: memory K·F complex numbers, not the (F, N, 3) spins.

    ``frames``: a slice of frame indices (default all; e.g. ``slice(100, None)`` leaves out an
    equilibration); frame times come from the file and are checked as :func:`structure_factor`
    checks them (frames off the regular grid left out with a UserWarning). ``positions``:
    ``"first"`` (the sites of the first frame used, reference lattice sites) or ``"frame"`` (the
    sites of each frame). ``vectors``: ``"spins"`` (unit spins) or ``"moments"`` (the moment
    vectors m_i of each frame, S in μB²: see :func:`structure_factor`'s ``moments``). Returns
    (THz, meV, S (K, ·)) as :func:`structure_factor`; InputError as it, for frames that do not
    run forward, and for a run of Monte Carlo sweeps (no time: no dynamics) or a trajectory of several
    runs (:attr:`spinlat.io.Trajectory.runs`) whose selected frames mix them."""
    t = _open(traj)
    where = getattr(t, "path", traj)
    if positions not in ("first", "frame"):
        raise InputError(f"trajectory_structure_factor: positions must be 'first' or 'frame', got {positions!r}")
    if vectors not in ("spins", "moments"):
        raise InputError(f"trajectory_structure_factor: vectors must be 'spins' or 'moments', got {vectors!r}")
    sel = frames if frames is not None else slice(None)
    if not isinstance(sel, slice):
        raise InputError(f"trajectory_structure_factor: frames must be a slice of frame indices, got {frames!r}")
    index = np.arange(len(t))[sel]
    if len(index) == 0:
        raise InputError(f"trajectory_structure_factor: frames {sel} selects no frame of the {len(t)} in {where}")
    groups = _run_groups(t)
    firsts = [g["first_frame"] for g in groups]
    if np.any(np.diff(index) <= 0):
        raise InputError(f"trajectory_structure_factor: frames {sel} must run forward in time (a positive step)")
    mixed = {int(np.searchsorted(firsts, i, side="right")) - 1 for i in (index[0], index[-1])}
    if len(mixed) > 1:
        raise InputError(f"trajectory_structure_factor: the frames selected of {where} span several runs ("
                         + ", ".join(f"frames {g['first_frame']}-{g['first_frame'] + g['frames'] - 1}: {g['integrator']}"
                                     for g in groups) + "); select the frames of one run (frames=slice(first, last + 1))")
    unit, _, _ = _run_kind(t, groups[mixed.pop()] if len(groups) > 1 else None)
    if unit == "sweep":
        raise InputError(f"trajectory_structure_factor: {where} is a Monte Carlo run (its frames are sweeps, not times): "
                         "S(q, ω) needs spin dynamics (LLG, SpinLatticeNVE, SpinLatticeLangevin)")
    times = np.asarray(t.array("time", frames=sel) if hasattr(t, "blocks") else np.asarray(t.array("time"))[sel], float)
    keep, dt = _regular_frames(times, len(times), f"trajectory_structure_factor ({where})")
    kept = index[keep]
    q = _qpoints(qpoints)
    n = t.n_atoms if hasattr(t, "n_atoms") else len(t[0])
    reference = None
    if positions == "first":
        reference = np.asarray(t.array("positions", frames=int(kept[0])), float)
        _check_positions(reference, (len(kept), n, 3), "trajectory_structure_factor")
    block = max(1, min((32 << 20) // max(1, 16 * len(q) * n), (64 << 20) // max(1, 48 * n)))
    series = []
    for a in range(0, len(kept), block):
        rows = kept[a:a + block]
        s = np.asarray(t.array("spins", frames=rows), float)
        if not np.isfinite(s).all():
            bad = rows[int(np.argmax(~np.isfinite(s).all(axis=(1, 2))))]
            raise InputError(f"trajectory_structure_factor: the spins of frame {bad} of {where} are NaN or infinite")
        if vectors == "moments":
            s = s * np.asarray(t.array("moments", frames=rows), float)[..., None]
        r = reference
        if r is None:
            r = np.asarray(t.array("positions", frames=rows), float)
            _check_positions(r, s.shape, "trajectory_structure_factor")
        series.append(_sq_block(s, r, q))
    return _spectrum(np.concatenate(series, axis=2), n, dt, window)


def _regular_frames(dt, count, what):
    """(frames to use: a list of indices or slice(None), spacing fs) of ``count`` frames whose
    spacing ``dt`` is a number (fs) or their (F,) times: frames off the regular grid dropped with
    a UserWarning (:func:`_spacing_grid`), InputError when fewer than 2 frames remain or the times
    lie on no grid."""
    if np.ndim(dt) == 0:
        if not dt > 0:
            raise InputError(f"{what} needs a positive frame spacing dt (fs), got {dt}")
        if count < 2:
            raise InputError(f"{what} needs at least 2 frames (a time series), got {count}: one frame has no "
                             "dynamics (S(q, ω) of it would read 0)")
        return slice(None), float(dt)
    times = np.asarray(dt, float)
    if times.shape != (count,):
        raise InputError(f"{what}: dt must be the frame spacing (fs) or the {count} frame times, got shape {times.shape}")
    if count < 2:
        raise InputError(f"{what} needs at least 2 frames (a time series), got {count}: one frame has no dynamics "
                         "(S(q, ω) of it would read 0)")
    if not np.isfinite(times).all():
        raise InputError(f"{what}: the frame times hold NaN (frames without a time, e.g. converted from a format without "
                         "them); pass the frame spacing dt in fs")
    grid, spacing = _spacing_grid(times)
    if spacing is None or len(grid) < 2:
        raise InputError(f"{what}: the frame times lie on no regular grid (differences {np.unique(np.diff(times))[:6]} "
                         "fs): an FFT over them gives a wrong spectrum; select equally spaced frames")
    if len(grid) < count:
        off = np.setdiff1d(np.arange(count), grid)
        warnings.warn(f"{what}: {len(off)} of the {count} frames are off the regular grid of {spacing:g} fs (frames "
                      f"{off[:5].tolist()}{' ...' if len(off) > 5 else ''}, e.g. the last step of a run call) and are "
                      "left out of the time series", UserWarning, stacklevel=3)
        return grid.tolist(), spacing
    return slice(None), spacing


def _check_positions(r, spins_shape, what):
    f, n, _ = spins_shape
    if not ((r.ndim == 2 and r.shape == (n, 3)) or (r.ndim == 3 and r.shape == (f, n, 3))):
        raise InputError(f"{what}: positions must be the sites (N, 3) = ({n}, 3) Å or those of each frame "
                         f"(F, N, 3) = ({f}, {n}, 3), got shape {r.shape}")
    if not np.isfinite(r).all():
        raise InputError(f"{what}: positions hold NaN or infinite values; S(q, ω) would be NaN at every q ≠ 0")


def _qpoints(qpoints):
    q = np.asarray(qpoints, float)
    if q.ndim != 2 or q.shape[1] != 3 or not np.isfinite(q).all():
        raise InputError(f"qpoints must be finite Cartesian wave vectors of shape (K, 3) in 1/Å, got shape {q.shape}")
    return q


def _sq_block(s, r, q):
    """s_q^α(t) (K, 3, f) of the spins ``s`` (f, N, 3) at sites ``r`` (N, 3) or (f, N, 3)."""
    if r.ndim == 2:
        return np.einsum("kn,fnc->kcf", np.exp(1j * q @ r.T), s)
    return np.einsum("fkn,fnc->kcf", np.exp(1j * np.einsum("kd,fnd->fkn", q, r)), s)


def _spectrum(sq, n, dt, window):
    """S(q, ω) on non-negative frequencies from s_q(t) (K, 3, F): see :func:`structure_factor`."""
    f = sq.shape[2]
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


# ------------------------------------------------------------------------------ kinds of runs
_DESCRIPTION = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*\((.*)\)\s*$", re.S)
_PARAMETER = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*=\s*([^,()]+)")


def _integrator_parameters(integrator):
    """(class name, {parameter: value}) of an integrator object or of its description string
    (``"LLG(dt=1.0, damping=0.0, temperature=0.0, ...)"``, as :meth:`Integrator.describe` and
    the trajectory's ``integrator`` attribute give it); numbers as floats, None when unknown."""
    if integrator is None:
        return None, {}
    if isinstance(integrator, str):
        match = _DESCRIPTION.match(integrator)
        if not match:
            return integrator.strip() or None, {}
        params = {}
        for key, raw in _PARAMETER.findall(match.group(2)):
            raw = raw.strip()
            try:
                params[key] = float(raw)
            except ValueError:
                params[key] = None if raw == "None" else raw.strip("'\"")
        return match.group(1), params
    params = {k: getattr(integrator, k) for k in ("dt", "damping", "temperature", "friction")
              if hasattr(integrator, k)}
    return type(integrator).__name__, params


def energy_conserving(integrator):
    """Whether a run of ``integrator`` (an integrator, or its description string as stored in a
    trajectory's ``integrator`` attribute) conserves the total energy, so that its energy drift
    measures the integration error: True for ``SpinLatticeNVE``, ``LLG`` without damping at
    T = 0, ``SpinLatticeLangevin`` with friction and damping 0 (no thermostat acts); False for
    ``MonteCarlo``, thermostatted and damped runs (their energy drifts by design); None when
    unknown. An integrator may declare it itself with a boolean ``conserves_energy`` attribute."""
    declared = getattr(integrator, "conserves_energy", None)
    if isinstance(declared, bool):
        return declared
    name, p = _integrator_parameters(integrator)

    def zero(*keys):
        values = [p.get(k) for k in keys]
        if any(not isinstance(v, (int, float)) for v in values):
            return None
        return all(v == 0 for v in values)

    if name == "SpinLatticeNVE":
        return True
    if name == "MonteCarlo":
        return False
    if name == "LLG":
        return zero("damping", "temperature")
    if name == "SpinLatticeLangevin":
        return zero("friction", "damping")
    return None


def time_unit(integrator) -> str:
    """The unit a run's ``time`` counts in: ``"sweep"`` for Monte Carlo (one unit per sweep: an
    integrator without a time step, ``dt`` None), else ``"fs"``. ``integrator``: an integrator or
    its description string."""
    name, _ = _integrator_parameters(integrator)
    if name == "MonteCarlo" or (not isinstance(integrator, str) and integrator is not None
                                and getattr(integrator, "dt", 0.0) is None):
        return "sweep"
    return "fs"


def _run_kind(t, run=None):
    """(time unit, energy conserving or None, integrator parameters) of a trajectory (or of its
    run ``run``, an entry of :attr:`spinlat.io.Trajectory.runs`): from its ``metadata`` (written
    by :class:`spinlat.Simulation`), else from its ``integrator`` description (files of earlier
    versions), else ("fs", None, {}). The parameters carry ``frozen_lattice`` True for a run
    whose atoms do not move (LLG, Monte Carlo)."""
    attrs = run if run is not None else (getattr(t, "attrs", None) or {})
    meta = attrs.get("metadata") if isinstance(attrs.get("metadata"), dict) else {}
    description = attrs.get("integrator") if isinstance(attrs.get("integrator"), str) else None
    name, params = _integrator_parameters(description)
    unit = meta.get("time_unit") or (time_unit(description) if description else "fs")
    conserving = meta.get("energy_conserving") if "energy_conserving" in meta else energy_conserving(description)
    moves = meta.get("moves_lattice")
    params["frozen_lattice"] = moves is False or (moves is None and name in ("LLG", "MonteCarlo"))
    return unit, conserving, params


def _run_groups(t) -> list[dict]:
    """The runs of a trajectory that differ in what they simulate: consecutive entries of
    :attr:`spinlat.io.Trajectory.runs` with the same potential and integrator descriptions (a
    continuation with another ``every`` or seed) merged. One entry (frame 0 on) for objects
    without ``runs``."""
    runs = getattr(t, "runs", None)
    if not isinstance(runs, list) or not runs:
        attrs = getattr(t, "attrs", None) or {}
        return [{"first_frame": 0, "frames": len(t), "potential": attrs.get("potential"),
                 "integrator": attrs.get("integrator"), "metadata": attrs.get("metadata")}]
    groups = []
    for r in runs:
        if groups and (groups[-1]["potential"], groups[-1]["integrator"]) == (r["potential"], r["integrator"]):
            groups[-1]["frames"] += r["frames"]
        else:
            groups.append(dict(r))
    return groups


def _run_index(t) -> np.ndarray:
    """(F,) int: the index in :func:`_run_groups` of the run of each frame."""
    groups = _run_groups(t)
    return np.searchsorted([g["first_frame"] for g in groups], np.arange(len(t)), side="right") - 1


def _frames_of(t, name, sel):
    """Per-frame dataset ``name`` of ``t`` at the frames ``sel`` (a slice), reading only those
    when ``t`` can (:meth:`spinlat.io.Trajectory.array`'s ``frames``)."""
    try:
        return np.asarray(t.array(name, frames=sel))
    except TypeError:  # an object with the plain array(name) interface
        return np.asarray(t.array(name))[sel]


def _moment_totals(t, sel=slice(None)) -> np.ndarray:
    """Σ_i |moments_i| (μB) per frame at the frames ``sel``, read block by block when ``t`` can
    (:meth:`spinlat.io.Trajectory.blocks`): the (F, N) moments of a large trajectory are never
    in memory at once."""
    blocks = getattr(t, "blocks", None)
    if blocks is None:
        return np.sum(np.abs(np.asarray(t.array("moments"), float)), axis=-1)[sel]
    parts = [np.sum(np.abs(np.asarray(b, float)), axis=-1) for _, b in blocks("moments", frames=sel)]
    return np.concatenate(parts) if parts else np.zeros(0)


def _band_metadata(t):
    """The ``gneb`` entry of a trajectory's metadata (a band written by GNEBResult.write), or None.
    A file of several bands (written with ``mode="a"``: each a run, :attr:`spinlat.io.Trajectory.
    runs`) gives its last band's, with ``_frames`` the slice of its images."""
    runs = getattr(t, "runs", None)
    if isinstance(runs, list) and len(runs) > 1 and isinstance(runs[-1].get("metadata", {}).get("gneb"), dict):
        first = runs[-1]["first_frame"]
        return {**runs[-1]["metadata"]["gneb"], "_frames": slice(first, first + runs[-1]["frames"]),
                "_bands": len(runs)}
    attrs = getattr(t, "attrs", None) or {}
    meta = attrs.get("metadata") if isinstance(attrs.get("metadata"), dict) else {}
    return meta["gneb"] if isinstance(meta.get("gneb"), dict) else None


def _band_summary(t, n, gneb) -> dict:
    """:func:`summary` of a GNEB band written by :meth:`spinlat.transitions.GNEBResult.write`:
    its images lie along a reaction coordinate, so means and error bars over them mean nothing."""
    e = np.asarray(t.array("potential_energy"), float)[gneb.get("_frames", slice(None))]
    out = {"frames": int(len(e)), "n_atoms": int(n), "kind": "gneb band (images along a reaction coordinate)"}
    if "_bands" in gneb:  # bands appended to one file: the last one
        out["bands_in_file"] = gneb["_bands"]
    for key in ("barrier", "saddle", "climbing", "converged", "reason", "iterations", "endpoint_forces"):
        if key in gneb:
            out[key + ("_eV" if key == "barrier" else "")] = gneb[key]
    out["energies_relative_eV"] = (e - e[0]).tolist()
    if "reaction_coordinate" in gneb:
        out["reaction_coordinate_rad"] = list(gneb["reaction_coordinate"])
    return out


def _spacing_grid(x):
    """Frames of a run on one regular grid: (indices, spacing) for the frame times or steps ``x``
    (F,). All frames when they are equally spaced (spacing the common difference, None for fewer
    than 2 frames). Otherwise — the last step of each ``run`` call, or a restart with another
    ``every`` — the candidate spacings are the distinct differences and their least common
    multiple; the one keeping the most frames whose kept frames are consecutive on its grid
    (from the first frame to within one spacing of the last) wins, so that every kept frame
    stands for the same stretch of the run. (all frames, None) when no grid holds them."""
    x = np.asarray(x, float)
    everything = np.arange(len(x))
    if len(x) < 2 or not np.all(np.isfinite(x)):
        return everything, None
    d = np.diff(x)
    scale = max(float(np.max(np.abs(x))), float(np.max(np.abs(d))), 1e-300)
    tol = 1e-9 * scale
    if np.any(d <= tol):
        return everything, None
    if np.ptp(d) <= tol:
        return everything, float(np.mean(d))
    from fractions import Fraction
    from math import gcd, lcm

    ds = np.sort(d)
    distinct = [float(v) for v in ds[np.concatenate([[True], np.diff(ds) > tol])]]
    if len(distinct) > 16:  # no few spacings: not frames written on a grid
        return everything, None
    base = distinct[0]
    ratios = [Fraction(v / base).limit_denominator(1000) for v in distinct]
    candidates = list(distinct)
    if all(abs(float(r) * base - v) <= tol for r, v in zip(ratios, distinct)):
        num = lcm(*(r.numerator for r in ratios))
        den = 0
        for r in ratios:
            den = gcd(den, r.denominator)
        candidates.append(base * num / den)
    best = (everything, None)
    for g in candidates:
        k = (x - x[0]) / g
        idx = np.flatnonzero(np.abs(k - np.round(k)) * g <= tol)
        if len(idx) < 2 or len(idx) <= (len(best[0]) if best[1] is not None else 1):
            continue
        steps = np.round(k[idx])
        if np.all(np.diff(steps) == 1) and x[-1] - x[idx[-1]] < g - tol:
            best = (idx, g)
    return best


@refuse_other_names()
def summary(traj, energy_conserving=None, discard=0.0, run=None):
    """Numbers describing a run (path, :class:`~spinlat.io.Trajectory`, or any object with the
    same ``array``/indexing interface).

    Keys: ``frames``, ``n_atoms``, ``time_unit`` ("fs", or "sweep" for Monte Carlo), the span
    ``time_fs`` (or ``sweeps``), ``energy_conserving`` (from the trajectory's metadata or its
    integrator, :func:`energy_conserving`; the argument overrides it), the means
    ``temperature_mean_K`` (lattice; for Monte Carlo and LLG, whose lattice is frozen and reads
    0 K, the bath or sampling temperature ``temperature_K`` instead), ``reduced_magnetization_mean`` (|M| / Σ|m_i|,
    :func:`spinlat.observables.reduced_magnetization`) and
    ``potential_energy_mean_eV_per_atom``; then, for a run that conserves energy,
    ``energy_drift_eV_per_atom_per_ps`` and ``energy_max_deviation_eV_per_atom``
    (:func:`spinlat.observables.energy_drift`), and for any other run (thermostatted, Monte
    Carlo, unknown) ``total_energy_mean_eV_per_atom`` and ``total_energy_fluctuation_eV_per_atom``
    (σ per atom, :func:`spinlat.observables.energy_fluctuation`): their energy moves by design.
    A trajectory continued with another potential or integrator (another temperature, damping,
    thermostat: :attr:`spinlat.io.Trajectory.runs`) holds several runs that no mean may mix:
    then ``runs`` lists them (``first_frame``, ``frames``, ``integrator``, ``potential``), ``run``
    says which one is summarised (``run``: its index, negative from the end; default the last),
    ``frames_in_file`` counts every frame, and every other key, ``frames`` and the run's kind
    (time unit, energy conservation, temperature) included, describes that run alone.
    With fewer than 2 frames holding the total energy, the drift, the deviation and the
    fluctuation are None (unmeasured, not 0). ``discard`` (in the run's time unit: fs, or sweeps)
    leaves out the frames before ``time[0] + discard`` (the equilibration) from every mean, error,
    drift and fluctuation; ``discarded_frames`` says how many. A GNEB band (:meth:`GNEBResult.write
    <spinlat.transitions.GNEBResult.write>`) gets ``frames`` (images), ``n_atoms``, ``kind``,
    ``barrier_eV``, ``saddle``, ``converged``, ``iterations``, ``energies_relative_eV`` (to
    the first image) and ``reaction_coordinate_rad`` instead: no means over its images.

    Every mean ``X`` comes with ``X_error`` (standard error of the mean of the correlated
    frames, Flyvbjerg–Petersen blocking, :func:`spinlat.statistics.average`), ``X_tau_int``
    (integrated autocorrelation time in frames) and ``X_reliable`` (False when the run is too
    short for its correlation time: the error is then a lower bound). Errors assume the frames
    are stationary (equilibrated); for fewer than 2 frames they are None. ``X_stationary`` is
    False when the series still drifts (its first 10 % and last half differ by more than 4
    standard errors and 3 standard deviations: an equilibration that ``discard`` should leave
    out; :func:`spinlat.statistics.stationary`), None when too short for a verdict.

    Frames that are not equally spaced in time (the last step of each ``run`` call; a restart
    with another ``every``) would weight the densely written stretches more: the means, errors
    and the fluctuation use the frames on one regular grid (the coarsest spacing that holds them
    all, e.g. every 100 steps after 10 and 100), and ``frames_averaged`` and ``frame_spacing``
    (fs or sweeps; ``frame_spacing_steps`` for frames without times) say which; the drift uses
    every frame with its time. When no regular grid holds the frames, all are used and
    ``frame_spacing`` is None.

    Quantities a trajectory does not hold (NaN in every frame: energies of a file converted
    from a format without them, times of frames without one) are left out, and ``missing``
    lists them (``potential_energy``, ``total_energy``, ``temperature``, ``time``; a NaN time
    span is None); a series with NaN in some frames is averaged over the others, and
    ``X_frames`` says over how many. So every number of the summary is finite (valid JSON)."""
    from .observables import energy_drift as drift
    from .observables import energy_fluctuation as fluctuation
    from .observables import reduced_from_total
    from .statistics import average as _average
    from .statistics import stationary

    t = _open(traj)
    n = t[0].n_atoms
    band = _band_metadata(t)
    if band is not None:  # images of a band, not frames of a run
        if validation.number(discard, "discard", nonnegative=True) > 0:
            raise InputError(f"discard={discard:g}: {getattr(t, 'path', traj)} is a GNEB band (images along a "
                             "reaction coordinate, not frames in time): nothing to discard")
        return _band_summary(t, n, band)
    groups = _run_groups(t)
    chosen = None
    if run is not None:
        k = validation.integer(run, "run")
        if not -len(groups) <= k < len(groups):
            raise InputError(f"run={k}: trajectory {getattr(t, 'path', traj)} holds {len(groups)} run"
                             f"{'s' if len(groups) != 1 else ''} (0 to {len(groups) - 1}, or negative from the end)")
        chosen = k % len(groups)
    elif len(groups) > 1:
        chosen = len(groups) - 1
    group = groups[chosen if chosen is not None else 0]
    sel = slice(group["first_frame"], group["first_frame"] + group["frames"])
    unit, conserving, params = _run_kind(t, group if len(groups) > 1 else None)
    if energy_conserving is not None:
        conserving = bool(energy_conserving)
    discard = validation.number(discard, "discard", nonnegative=True)
    time = np.asarray(_frames_of(t, "time", sel), float)
    etot = np.asarray(_frames_of(t, "total_energy", sel), float)
    reduced = np.linalg.norm(reduced_from_total(_frames_of(t, "magnetization", sel), _moment_totals(t, sel)[:, None]),
                             axis=1)
    span = float(time[-1] - time[0]) if len(time) else 0.0
    missing = []
    if not np.isfinite(span):
        span = None
        missing.append("time")
    out = {"frames": int(len(time)), "n_atoms": int(n)}
    if len(groups) > 1:
        out["frames_in_file"] = int(sum(g["frames"] for g in groups))
        out["runs"] = [{"first_frame": int(g["first_frame"]), "frames": int(g["frames"]),
                        "integrator": g["integrator"], "potential": g["potential"]} for g in groups]
        out["run"] = chosen
    out.update({"time_unit": unit, ("sweeps" if unit == "sweep" else "time_fs"): span,
                "energy_conserving": conserving})
    kept = np.ones(len(time), bool)  # frames after the discarded start
    if discard > 0:
        if span is None:
            raise InputError(f"discard={discard:g}: trajectory {getattr(t, 'path', traj)} holds no frame times, "
                             f"so no start can be discarded by time")
        kept = time >= time[0] + discard * (1 - 1e-12)
        if not kept.any():
            word = "sweeps" if unit == "sweep" else unit
            raise InputError(f"discard={discard:g} {word} leaves no frame: the run spans {span:g} {word}")
        out["discarded_frames"] = int(len(time) - kept.sum())
    first = int(np.argmax(kept))
    try:
        clock = time if span is not None else np.asarray(_frames_of(t, "step", sel), float)
    except (KeyError, ValueError):
        clock = np.full(len(time), np.nan)
    grid, spacing = _spacing_grid(clock[first:])
    grid = grid + first
    spacing_key = "frame_spacing" if span is not None else "frame_spacing_steps"  # no times: by steps
    if spacing is not None and len(grid) < kept.sum():
        out["frames_averaged"] = int(len(grid))
        out[spacing_key] = spacing
    elif spacing is None and kept.sum() > 2 and np.isfinite(clock[first:]).all():
        out[spacing_key] = None  # irregular: every frame used
    series = {}
    if unit == "sweep" or params.get("frozen_lattice"):  # the atoms do not move: no lattice temperature
        if isinstance(params.get("temperature"), float):
            out["temperature_K"] = params["temperature"]
    else:
        series["temperature_mean_K"] = _frames_of(t, "temperature", sel)
    series["reduced_magnetization_mean"] = reduced
    series["potential_energy_mean_eV_per_atom"] = np.asarray(_frames_of(t, "potential_energy", sel), float) / n
    if not conserving:
        series["total_energy_mean_eV_per_atom"] = etot / n
    for key, x in series.items():
        x = np.asarray(x, float)[grid]
        finite = np.isfinite(x)
        if not finite.any():
            missing.append(re.sub(r"_mean.*", "", key))
            continue
        if not finite.all():
            out[key + "_frames"] = int(finite.sum())
            x = x[finite]
        out[key] = float(np.mean(x))
        est = _average(x) if len(x) >= 2 else None
        out[key + "_error"] = est.error if est else None
        out[key + "_tau_int"] = est.tau_int if est else None
        out[key + "_reliable"] = est.reliable if est else False
        out[key + "_stationary"] = stationary(x)
    on_grid = np.zeros(len(time), bool)
    on_grid[grid] = True
    kept = kept & np.isfinite(etot) & (np.isfinite(time) if conserving else on_grid)
    if not kept.any():
        if "total_energy" not in missing:
            missing.append("total_energy")
    elif conserving:  # one frame measures no drift: None (it read 0, "no drift")
        slope, dev = drift(time[kept], etot[kept], n) if kept.sum() >= 2 else (None, None)
        out["energy_drift_eV_per_atom_per_ps"] = slope
        out["energy_max_deviation_eV_per_atom"] = dev
    else:
        out["total_energy_fluctuation_eV_per_atom"] = fluctuation(etot[kept], n) if kept.sum() >= 2 else None
    if missing:
        out["missing"] = missing
    return out


def plot_overview(traj, path):
    """PNG of :func:`overview_figure` at ``path``; returns ``path``."""
    return save_figure(overview_figure(traj), path)


def overview_figure(traj):
    """Matplotlib figure of a run against time (ps), or against sweeps for Monte Carlo: E − E(0)
    per atom (potential, kinetic and total; Monte Carlo: the energy), the lattice temperature
    (not for Monte Carlo and LLG, whose lattice is frozen) and the reduced magnetisation |M| / Σ|m_i|
    (:func:`spinlat.observables.reduced_magnetization`), with a dotted line where a later run
    begins (:attr:`spinlat.io.Trajectory.runs`); for a GNEB band, its energy (meV) against the
    reaction coordinate (rad), saddle marked. Uses the Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .observables import reduced_from_total

    t = _open(traj)
    band = _band_metadata(t)
    if band is not None:  # a GNEB band: the energy profile along its reaction coordinate
        e = np.asarray(t.array("potential_energy"), float)[band.get("_frames", slice(None))]
        x = np.asarray(band.get("reaction_coordinate", np.arange(len(e))), float)
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot(x, (e - e[0]) * 1e3, "o-")
        if isinstance(band.get("saddle"), int) and 0 <= band["saddle"] < len(e):
            ax.plot(x[band["saddle"]], (e[band["saddle"]] - e[0]) * 1e3, "r*", ms=12, label="saddle")
            ax.legend(fontsize=8)
        ax.set_xlabel("reaction coordinate (rad)" if "reaction_coordinate" in band else "image")
        ax.set_ylabel("E − E(initial) (meV)")
        fig.tight_layout()
        return fig
    unit, _, params = _run_kind(t)
    sweeps = unit == "sweep"
    x = np.asarray(t.array("time"), float) * (1.0 if sweeps else 1e-3)
    n = t[0].n_atoms
    show_t = not sweeps and not params.get("frozen_lattice")
    fig, ax = plt.subplots(3 if show_t else 2, 1, figsize=(6, 7 if show_t else 5), sharex=True)
    names = ("potential_energy",) if sweeps else ("potential_energy", "kinetic_energy", "total_energy")
    for name in names:
        e = np.asarray(t.array(name), float)
        ax[0].plot(x, (e - e[0]) / n * 1e3, label="energy" if sweeps else name.replace("_", " "))
    ax[0].set_ylabel("E − E(0) (meV/atom)")
    ax[0].legend(fontsize=8)
    if show_t:
        ax[1].plot(x, np.asarray(t.array("temperature"), float))
        ax[1].set_ylabel("T lattice (K)")
    ax[-1].plot(x, np.linalg.norm(reduced_from_total(t.array("magnetization"), _moment_totals(t)[:, None]), axis=1))
    ax[-1].set_ylabel("|M| / Σ|m|")
    ax[-1].set_xlabel("Monte Carlo sweeps" if sweeps else "time (ps)")
    for g in _run_groups(t)[1:]:  # a continuation at another temperature / with another integrator
        if np.isfinite(x[g["first_frame"]]):
            for a in ax:
                a.axvline(x[g["first_frame"]], color="0.5", ls=":", lw=1)
    integrator = (getattr(t, "attrs", None) or {}).get("integrator")
    if isinstance(integrator, str) and integrator:
        ax[0].set_title(integrator if len(integrator) <= 70 else integrator[:67] + "...", fontsize=8)
    fig.tight_layout()
    return fig


def trajectory_observables(traj, potential=None) -> dict:
    """Observables per frame of a trajectory (path or :class:`~spinlat.io.Trajectory`).

    Always: ``time`` (fs; sweeps for Monte Carlo), ``potential_energy``, ``kinetic_energy``,
    ``total_energy`` (eV, as stored), ``temperature`` (K), ``magnetization`` (F, 3) the total
    moment M in μB, ``magnetization_norm`` (F,) |M| μB, ``reduced_magnetization`` (F, 3) and
    ``reduced_magnetization_norm`` (F,) (M / Σ|m_i|), ``energy_drift`` (slope eV/atom/ps, max
    deviation eV/atom; meaningful for energy-conserving runs only) and ``energy_fluctuation``
    (eV/atom), both over the frames that hold a total energy and a time, and (NaN, NaN) / NaN
    when fewer than 2 do (one frame measures no drift: it read 0); ``run`` (F,) int, the run of
    each frame (:attr:`spinlat.io.Trajectory.runs`, runs with the same potential and integrator
    merged): a file continued at another temperature or with another integrator holds several,
    and the drift and fluctuation then mix them (take them per run with the ``run`` mask). With
    ``potential`` also ``spin_energy`` (eV) and ``spin_temperature`` (K), recomputed frame by
    frame. Raises InputError for a trajectory without frames."""
    t = _open(traj)
    out = {k: np.asarray(t.array(k)) for k in ("time", "potential_energy", "kinetic_energy", "total_energy",
                                               "temperature", "magnetization")}
    out["run"] = _run_index(t)
    out["magnetization_norm"] = np.linalg.norm(out["magnetization"], axis=1)
    out["reduced_magnetization"] = reduced_from_total(out["magnetization"], _moment_totals(t)[:, None])
    out["reduced_magnetization_norm"] = np.linalg.norm(out["reduced_magnetization"], axis=1)
    n = len(t[0])
    etot, time = np.asarray(out["total_energy"], float), np.asarray(out["time"], float)
    ok = np.isfinite(etot) & np.isfinite(time)
    out["energy_drift"] = energy_drift(time[ok], etot[ok], n) if ok.sum() >= 2 else (float("nan"), float("nan"))
    ok = np.isfinite(etot)
    out["energy_fluctuation"] = energy_fluctuation(etot[ok], n) if ok.sum() >= 2 else float("nan")
    if potential is not None:  # one frame in memory at a time
        out["spin_energy"] = np.empty(len(t))
        out["spin_temperature"] = np.empty(len(t))
        for i in range(len(t)):
            frame = t[i]
            out["spin_energy"][i] = spin_energy(frame, potential)
            out["spin_temperature"][i] = spin_temperature(frame, potential)
    return out
