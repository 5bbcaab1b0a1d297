"""Curie temperature from Monte Carlo temperature sweeps on several system sizes.

:func:`curie_sweep` runs Metropolis Monte Carlo (:class:`spinlat.integrators.MonteCarlo`) of a
spin Hamiltonian on L × L × L supercells (L × L × 1 for a film) for every (size, temperature) pair in parallel
(:func:`spinlat.sweep`: local processes or a Dask cluster), and collects per-sweep samples of the
magnetisation and periodic samples of the energy. :class:`CurieResult` turns them into M(T),
susceptibility χ(T), specific heat C(T) and the Binder cumulant U4(T) per size, each with its
statistical error (:mod:`spinlat.statistics`: blocking for ⟨|M|⟩, blocked jackknife for χ, C and
U4), finds T_c where the U4 curves of different sizes cross (:func:`spinlat.analysis.crossing`)
and plots everything to PNG.

Parallel sweeps. Every (L, T) run is one task with its own seed (seed + 1000 s + t), so the
samples do not depend on how the tasks are spread: ``workers=k`` or a Dask ``scheduler`` give the
serial samples bit for bit. The largest sizes go first and a free worker takes the next task
(longest-first list scheduling), so the workers finish together when there are several tasks per
worker. The local worker processes are kept between calls (:func:`spinlat.search.shutdown_workers`
ends them) and are forked on Linux while this process runs no other thread — call the sweep
before anything that starts numba's thread pool (an EAM or spin-lattice run of ≥ 8 192 atoms), a
Dask client or torch threads — so they start in milliseconds with the compiled kernels of this
process; otherwise they are spawned (seconds each: interpreter, imports, numba cache loads; paid
once per session). Each worker runs numba on cpu_count // workers threads. Measured
(``benchmarks/bench_curie_parallel.py``, README): see the Curie row of the results table.

Error of T_c. The Monte Carlo runs at different (L, T) are independent, so the statistical error
of T_c follows from resampling each run: every bootstrap replica redraws, for each run, its
blocks of consecutive sweeps (block length from the blocking analysis, longer than the
autocorrelation time) with replacement (non-overlapping block bootstrap,
:func:`spinlat.statistics.block_bootstrap`; E. Carlstein, Ann. Stat. 14, 1171 (1986)),
recomputes U4(T) of every size, the crossings and their mean T_c. ``tc_error`` is the standard
deviation of the replicas' T_c. It is the statistical error of the estimate at these sizes, not
the spread between the crossings of different size pairs (which measures finite-size
corrections) and not an extrapolation error.

Mean-field estimate. For E = −Σ_{pairs} J_ij s_i·s_j (each pair once, unit classical spins) the
Weiss field on site i is Σ_j J_ij ⟨s_j⟩ and the Langevin function's slope 1/3 gives
k_B T_MF = J(0)/3 with J(0) = Σ_j J_0j (sum over all neighbours of one site); several magnetic
sublattices: the largest eigenvalue of J_ab(0) replaces J(0). With TB2J's double-counted
couplings J^TB2J = J/2 this is the familiar T_MF = 2 J^TB2J(0)/(3 k_B). T_MF is an upper bound of
the Monte Carlo T_c; for bcc lattices with ferromagnetic short-range exchange T_c/T_MF is about
0.7-0.8 (nearest-neighbour bcc Heisenberg: 0.72).
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field

import numpy as np

from .. import units
from ..errors import InputError
from ..files import save_figure
from ..keywords import refuse_other_names

U4_ORDERED = 2.0 / 3.0  # Binder cumulant of a saturated vector order parameter
U4_DISORDERED = 4.0 / 9.0  # of a Gaussian three-component order parameter
#: a U4 crossing needs the larger system's U4 at least this high below it (ordered side)
U4_ORDERED_SIDE = 0.5 * (U4_ORDERED + U4_DISORDERED)


# ------------------------------------------------------------------------------ Hamiltonian helpers
def truncate(heisenberg, cutoff):
    """A copy of a :class:`~spinlat.potentials.Heisenberg` keeping only the pairs shorter than
    ``cutoff`` Å (and on-site terms), e.g. the first two or three neighbour shells of a TB2J set.

    TB2J lists the pairs of a box of lattice vectors, not of a sphere, so its outer shells are
    partial: they break the point symmetry of J(q) and can make the ferromagnet spuriously
    unstable at long wavelengths (bcc Fe file: shells complete only to 7.40 Å). Cutting inside the
    last complete shell restores a symmetric Hamiltonian."""
    from ..potentials.heisenberg import Heisenberg

    h = heisenberg
    if not cutoff > 0:
        raise InputError(f"cutoff must be positive (Å), got {cutoff}")
    d = np.linalg.norm(h.positions[h.j] + h.R @ h.cell - h.positions[h.i], axis=1)
    keep = d < cutoff
    if not np.any(keep & (d > 0)):
        raise InputError(f"no exchange pair is shorter than cutoff={cutoff} Å (shortest: {d[d > 0].min():.3f} Å)")
    out = Heisenberg(h.cell, h.positions, h.numbers, h.i[keep], h.j[keep], h.R[keep], h.J[keep], pbc=h.pbc,
                     strain_tolerance=h.strain_tolerance, position_tolerance=h.position_tolerance)
    return out


def mean_field_tc(heisenberg, moment=1.0):
    """Classical mean-field Curie temperature (K) of the ferromagnetic state:
    λ_max(J_ab(0)) / (3 k_B) with J_ab(0) the isotropic exchange summed between magnetic template
    sites (eV); one site per cell: J(0)/(3 k_B). ``moment`` (μB, scalar or per template site) only
    marks which sites are magnetic (> 0)."""
    from .magnons import exchange_fourier

    j0 = exchange_fourier(heisenberg, np.zeros((1, 3)), moment)[0].real
    lam = float(np.linalg.eigvalsh(0.5 * (j0 + j0.T)).max())
    if lam <= 0:
        raise InputError("the exchange has no ferromagnetic mean-field instability (λ_max(J(0)) ≤ 0)")
    return lam / (3.0 * units.K_B)


# ------------------------------------------------------------------------------ one (size, T) point
def _supercell(state, L, cell):
    if callable(cell):
        return cell(state, L)
    if cell == "repeat":  # L copies along each periodic direction only: a film stays one film
        if not np.any(state.pbc):
            raise InputError("curie_sweep: the template has no periodic direction (a cluster), so its size cannot "
                             "grow with L; give a periodic cell")
        return state.repeat(tuple(L if p else 1 for p in state.pbc))
    if cell == "cubic":
        from .magnons import cubic_supercell

        return cubic_supercell(state, L)
    raise InputError(f"cell must be 'repeat', 'cubic' or a function (state, L) -> State, got {cell!r}")


def _run_point(task, state, potential, sweeps, thermalize, every, overrelax, cell):
    """One Monte Carlo run (picklable through functools.partial): returns a dict of samples."""
    from ..integrators import MonteCarlo

    L, T, seed = task
    t0 = time.perf_counter()
    st = _supercell(state, L, cell)
    st = st.copy(spins=np.tile([0.0, 0.0, 1.0], (len(st), 1)))
    mc = MonteCarlo(T, seed=seed, overrelax=overrelax)
    if thermalize:
        st = mc.run(st, potential, thermalize)
    mags, energies = [], []
    done = 0
    while done < sweeps:
        n = min(every, sweeps - done)
        st = mc.run(st, potential, n)
        mags.append(mc.magnetization.copy())
        energies.append(potential.compute(st, forces=False, magnetic_forces=False).energy)
        done += n
    mom = st.moments[st.moments > 0]
    return dict(L=L, T=T, seed=seed, n_spins=int(len(mom)), moment=float(mom.mean()),
                magnetization=np.concatenate(mags), energies=np.array(energies), n_atoms=len(st),
                acceptance=mc.acceptance, seconds=time.perf_counter() - t0)


# ------------------------------------------------------------------------------ results
@dataclass
class CurieResult:
    """Samples and observables of a Curie sweep.

    ``temperatures`` (T,) K, ``sizes`` (S,) supercell repetitions L, ``n_spins`` (S,);
    per size and temperature (S, T): ``m`` ⟨|M|⟩ (normalised, 0..1), ``chi`` susceptibility
    per spin (μB²/eV, :func:`spinlat.analysis.susceptibility`), ``u4`` Binder cumulant, ``c``
    specific heat per spin (k_B), ``seconds`` wall time of each run, and the one-σ statistical
    errors ``m_error``, ``chi_error``, ``u4_error``, ``c_error`` (same units; module docstring).
    ``samples[(L, T)]`` keeps the raw per-sweep magnetisation (n, 3) and energies (eV).
    ``tc_replicas`` (n_boot,) T_c of the bootstrap replicas (NaN where a replica has no crossing)
    and ``crossing_replicas`` (n_boot, S − 1) those of each size pair; ``tc_error`` and
    :meth:`crossing_errors` are their standard deviations (module docstring)."""

    temperatures: np.ndarray
    sizes: np.ndarray
    n_spins: np.ndarray
    m: np.ndarray
    chi: np.ndarray
    u4: np.ndarray
    c: np.ndarray
    seconds: np.ndarray
    samples: dict = field(repr=False, default_factory=dict)
    t_mf: float | None = None
    m_error: np.ndarray | None = None
    chi_error: np.ndarray | None = None
    u4_error: np.ndarray | None = None
    c_error: np.ndarray | None = None
    crossing_replicas: np.ndarray | None = field(repr=False, default=None)

    @property
    def tc_replicas(self) -> np.ndarray | None:
        """T_c (K) of each bootstrap replica: the mean of its finite crossings (NaN if none)."""
        if self.crossing_replicas is None:
            return None
        return _mean_finite(self.crossing_replicas)

    @property
    def tc_error(self) -> float:
        """One-σ statistical error of :attr:`tc` (K): standard deviation of the bootstrap
        replicas' T_c (NaN without replicas or when fewer than half of them cross)."""
        return _spread(self.tc_replicas)

    def crossing_errors(self):
        """One-σ bootstrap errors (K) of :meth:`crossings`, one per pair of consecutive sizes."""
        if self.crossing_replicas is None:
            return [float("nan")] * (len(self.sizes) - 1)
        return [_spread(col) for col in self.crossing_replicas.T]

    def crossings(self):
        """T_c estimates (K) from the U4 crossings of consecutive sizes: list of
        ((L_a, L_b), T_cross), NaN where the curves do not cross inside the transition window."""
        out = []
        for a in range(len(self.sizes) - 1):
            out.append(((int(self.sizes[a]), int(self.sizes[a + 1])),
                        binder_crossing(self.temperatures, self.u4[a], self.u4[a + 1])))
        return out

    @property
    def tc(self) -> float:
        """T_c (K): the mean of the finite U4 crossings of consecutive sizes (NaN if none);
        its statistical error is :attr:`tc_error`."""
        vals = [t for _, t in self.crossings() if np.isfinite(t)]
        return float(np.mean(vals)) if vals else float("nan")

    def table(self) -> str:
        """Plain-text table of the observables (one block per size)."""
        lines = []
        for s, L in enumerate(self.sizes):
            lines.append(f"L = {L} ({self.n_spins[s]} spins)")
            lines.append(f"{'T (K)':>8} {'<|M|>':>17} {'chi (muB^2/eV)':>21} {'U4':>17} {'C (kB)':>17} {'s':>7}")
            for t, T in enumerate(self.temperatures):
                lines.append(f"{T:8.1f} {_pm(self.m, self.m_error, s, t, 4):>17} {_pm(self.chi, self.chi_error, s, t, 2):>21} "
                             f"{_pm(self.u4, self.u4_error, s, t, 4):>17} {_pm(self.c, self.c_error, s, t, 3):>17} "
                             f"{self.seconds[s, t]:7.1f}")
        if len(self.sizes) > 1:
            for ((la, lb), tc), err in zip(self.crossings(), self.crossing_errors()):
                lines.append(f"U4 crossing L={la}/L={lb}: {format_error(tc, err)} K" if np.isfinite(tc) else
                             f"U4 crossing L={la}/L={lb}: none (no crossing with the larger system ordered below it)")
            lines.append(f"T_c = {format_error(self.tc, self.tc_error)} K (mean of the crossings ± bootstrap error)"
                         if np.isfinite(self.tc) else "T_c: not found (no U4 crossing in this temperature window)")
        return "\n".join(lines)

    def plot(self, path, title=None):
        """PNG with ⟨|M|⟩, χ, U4 and C against temperature for every size, T_c marked."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(2, 2, figsize=(9, 6.5), sharex=True)
        tc = self.tc
        for s, L in enumerate(self.sizes):
            lab = f"L = {L} ({self.n_spins[s]} spins)"
            for ax, y, err in ((axes[0, 0], self.m, self.m_error), (axes[0, 1], self.chi, self.chi_error),
                               (axes[1, 0], self.u4, self.u4_error), (axes[1, 1], self.c, self.c_error)):
                ax.errorbar(self.temperatures, y[s], yerr=None if err is None else err[s], fmt="o-", ms=3,
                            capsize=2, label=lab)
        axes[1, 0].axhline(U4_ORDERED, color="gray", lw=0.6, ls=":")
        axes[1, 0].axhline(U4_DISORDERED, color="gray", lw=0.6, ls=":")
        for ax, ylab in zip(axes.flat, ["⟨|M|⟩", "χ (μB²/eV per spin)", "Binder U₄", "C (k_B per spin)"]):
            ax.set_ylabel(ylab)
            if np.isfinite(tc):
                ax.axvline(tc, color="k", lw=0.8, ls="--")
                if np.isfinite(self.tc_error):
                    ax.axvspan(tc - self.tc_error, tc + self.tc_error, color="k", alpha=0.1, lw=0)
            if self.t_mf:
                ax.axvline(self.t_mf, color="r", lw=0.8, ls=":")
        for ax in axes[1]:
            ax.set_xlabel("T (K)")
        axes[0, 0].legend(fontsize=8)
        shown = format_error(tc, self.tc_error) if np.isfinite(self.tc_error) else f"{tc:.1f}"
        text = f"T_c (U₄ crossing) = {shown} K" if np.isfinite(tc) else "no U₄ crossing"
        if self.t_mf:
            text += f";  T_MF = {self.t_mf:.0f} K (red)"
        fig.suptitle(title + "\n" + text if title else text, fontsize=10)
        fig.tight_layout()
        return save_figure(fig, path)


def _mean_finite(a):
    """Row means of the finite entries of a 2-D array (NaN for a row without any)."""
    a = np.asarray(a, float)
    ok = np.isfinite(a)
    with np.errstate(invalid="ignore"):
        return np.where(ok.any(axis=1), np.nansum(np.where(ok, a, 0.0), axis=1) / np.maximum(ok.sum(axis=1), 1), np.nan)


def _spread(replicas) -> float:
    """Standard deviation of the finite replicas; NaN if none or fewer than half are finite
    (the crossing is then not resolved by the data)."""
    if replicas is None:
        return float("nan")
    r = np.asarray(replicas, float)
    ok = r[np.isfinite(r)]
    if len(ok) < 2 or len(ok) < 0.5 * len(r):
        return float("nan")
    return float(np.std(ok, ddof=1))


def format_error(value, error, unit_digits=1) -> str:
    """``"value ± error"`` with the error to two significant digits and the value to the same
    decimal place (``unit_digits`` decimals when the error is not finite or zero)."""
    if not (np.isfinite(error) and error > 0):
        return f"{value:.{unit_digits}f}" + (" ± nan" if not np.isfinite(error) else "")
    digits = max(0, 1 - int(np.floor(np.log10(error))))
    return f"{value:.{digits}f} ± {error:.{digits}f}"


def _pm(values, errors, s, t, digits):
    v = f"{values[s, t]:.{digits}f}"
    return v if errors is None or not np.isfinite(errors[s, t]) else f"{v}±{errors[s, t]:.{digits}f}"


def bootstrap_crossings(temperatures, u4_replicas):
    """U4 crossings of consecutive sizes for each replica: ``u4_replicas`` (n_boot, S, T) →
    (n_boot, S − 1) temperatures (K; NaN where a pair does not cross, :func:`binder_crossing`)."""
    r = np.asarray(u4_replicas, float)
    out = np.full((r.shape[0], r.shape[1] - 1), np.nan)
    for b in range(r.shape[0]):
        for a in range(r.shape[1] - 1):
            out[b, a] = binder_crossing(temperatures, r[b, a], r[b, a + 1])
    return out


def binder_crossing(temperatures, u_small, u_large):
    """Temperature (K) where the Binder cumulants of a smaller and a larger system cross.

    Below T_c the larger system's U4 lies above the smaller one's (closer to 2/3), above T_c
    below it. Far below T_c both sit at 2/3 within noise and may cross at random, so among the
    places where U_large − U_small changes from ≥ 0 to < 0 the one followed by the longest run of
    negative differences is taken (the curves separate for good above T_c), and located by
    :func:`spinlat.analysis.crossing` (linear interpolation). A crossing counts only when the larger
    system orders on its low-temperature side: its U4 reaches ``U4_ORDERED_SIDE`` (5/9, halfway
    between the disordered 4/9 and the ordered 2/3) at or below it; the U4 of M of a system that
    never orders ferromagnetically (an antiferromagnet, a window above T_c) hovers about 4/9 and
    its curves cross at random (sc antiferromagnet, L = 4/6: "T_c = 17.6 ± 2.2 K" before). NaN if
    there is none."""
    from ..analysis import crossing

    T = np.asarray(temperatures, float)
    d = np.asarray(u_large, float) - np.asarray(u_small, float)
    best, best_run = None, 0
    for k in range(len(T) - 1):
        if d[k] >= 0 > d[k + 1]:
            run = 0
            while k + 1 + run < len(T) and d[k + 1 + run] < 0:
                run += 1
            if run > best_run:
                best, best_run = k, run
    if best is None or not np.max(np.asarray(u_large, float)[:best + 1]) >= U4_ORDERED_SIDE:
        return float("nan")
    if d[best] == 0:
        return float(T[best])
    return crossing(T[best:best + 2], np.asarray(u_small, float)[best:best + 2], np.asarray(u_large, float)[best:best + 2])


@refuse_other_names()
def curie_sweep(state, potential, temperatures, sizes, sweeps, thermalize=None, every=10, overrelax=0,
                cell="repeat", seed=0, workers=None, scheduler=None, n_boot=1000):
    """Monte Carlo temperature sweep on several sizes; returns a :class:`CurieResult`.

    Parameters
    ----------
    state : the template cell (e.g. the unit cell of a TB2J file); its supercells are built per size.
    potential : the spin Hamiltonian (any potential :class:`~spinlat.integrators.MonteCarlo` accepts).
    temperatures : K, ascending. sizes : supercell repetitions L (along each periodic direction).
    sweeps : measured Monte Carlo sweeps per point (the magnetisation is sampled every sweep, the
        energy every ``every`` sweeps). thermalize : sweeps discarded first (default sweeps // 4).
    overrelax : over-relaxation sweeps per Metropolis sweep (decorrelates faster near T_c).
    cell : ``"repeat"`` (L copies of the template cell along each periodic direction: L × L × L
        for a crystal, L × L × 1 for a film, whose vacuum is not stacked), ``"cubic"`` (L × L × L conventional
        cubic cells of a bcc template, :func:`spinlat.workflows.magnons.cubic_supercell`), or a
        function (state, L) -> State.
    seed : base seed; the run (size index s, temperature index t) uses seed + 1000 s + t.
    workers / scheduler : :func:`spinlat.sweep` parallelism (local processes / Dask address).
    n_boot : bootstrap replicas for the error of T_c (module docstring; 0: none). The replicas use
        their own random stream (``seed``), so they do not change the Monte Carlo runs.

    Every run starts from the ferromagnetic state along z. Larger sizes are submitted first.
    Ctrl-C or SIGTERM raise ``KeyboardInterrupt`` (:func:`spinlat.sweep`'s rules) whose
    ``partial_result`` is ``{(L, T): run}`` for the runs finished (each run a dict with
    ``magnetization`` (n, 3), ``energies`` (eV), ``n_spins``, ``moment``, ``acceptance``,
    ``seconds``), to analyse or keep.
    """
    from ..analysis import average, binder_cumulant, specific_heat, susceptibility
    from ..search import sweep
    from ..statistics import GEWEKE_LIMIT, block_bootstrap, stationary

    temps = np.asarray(temperatures, dtype=float)
    if temps.ndim != 1 or len(temps) < 1 or np.any(temps <= 0) or np.any(np.diff(temps) <= 0):
        raise InputError("temperatures must be a non-empty ascending sequence of positive values (K)")
    sizes = np.asarray(sizes, dtype=int)
    if sizes.ndim != 1 or len(sizes) < 1 or np.any(sizes < 1):
        raise InputError(f"sizes must be positive supercell repetitions, got {sizes.tolist()}")
    sweeps = int(sweeps)
    if sweeps < 1:
        raise InputError(f"sweeps must be positive, got {sweeps}")
    thermalize = sweeps // 4 if thermalize is None else int(thermalize)
    every = max(1, min(int(every), sweeps))
    tasks = [(int(L), float(T), int(seed) + 1000 * s + t) for s, L in enumerate(sizes) for t, T in enumerate(temps)]
    order = sorted(range(len(tasks)), key=lambda k: -tasks[k][0])  # big systems first (load balance)
    fn = functools.partial(_run_point, state=state, potential=potential, sweeps=sweeps, thermalize=thermalize,
                           every=every, overrelax=overrelax, cell=cell)
    try:
        results = sweep(fn, [tasks[k] for k in order], workers=workers, scheduler=scheduler)
    except KeyboardInterrupt as exc:  # the runs finished, by (L, T) (sweep numbers them in its own order)
        done = getattr(exc, "partial_result", None)
        done = done.values() if isinstance(done, dict) else done if isinstance(done, list) else ()
        exc.partial_result = {(r["L"], r["T"]): r for r in done}
        raise
    by_task = {(r["L"], r["T"]): r for r in results}
    S, T = len(sizes), len(temps)
    m, chi, u4, c, sec = (np.zeros((S, T)) for _ in range(5))
    m_err, chi_err, u4_err, c_err = (np.full((S, T), np.nan) for _ in range(4))
    n_boot = max(0, int(n_boot))
    u4_boot = np.full((n_boot, S, T), np.nan)
    rng = np.random.default_rng([int(seed), 2**31 - 1])  # bootstrap stream, apart from the runs' seeds
    n_spins = np.zeros(S, dtype=int)
    samples = {}
    for s, L in enumerate(sizes):
        for t, temp in enumerate(temps):
            r = by_task[(int(L), float(temp))]
            mag = r["magnetization"]
            n_spins[s] = r["n_spins"]
            m[s, t] = average(np.linalg.norm(mag, axis=1))
            # one sample has no fluctuation: NaN (unmeasured), as C below
            chi[s, t] = susceptibility(mag, temp, r["n_spins"], r["moment"]) if len(mag) > 1 else np.nan
            u4[s, t] = binder_cumulant(mag) if len(mag) > 1 else np.nan
            c[s, t] = specific_heat(r["energies"], temp, r["n_spins"]) if len(r["energies"]) > 1 else np.nan
            if len(mag) >= 4:
                m_err[s, t] = average(np.linalg.norm(mag, axis=1), with_errors=True).error
                chi_err[s, t] = susceptibility(mag, temp, r["n_spins"], r["moment"], with_errors=True).error
                u4_est = binder_cumulant(mag, with_errors=True)
                u4_err[s, t] = u4_est.error
                if n_boot:
                    m2 = np.sum(mag**2, axis=1)
                    u4_boot[:, s, t] = block_bootstrap(lambda mean: 1.0 - mean[1] / (3.0 * mean[0] ** 2),
                                                       np.column_stack([m2, m2**2]), n_boot,
                                                       block_length=u4_est.block_length, seed=rng)
            if len(r["energies"]) >= 4:
                c_err[s, t] = specific_heat(r["energies"], temp, r["n_spins"], with_errors=True).error
            sec[s, t] = r["seconds"]
            samples[(int(L), float(temp))] = dict(magnetization=mag, energies=r["energies"],
                                                  acceptance=r["acceptance"])
    drifting = [(int(L), float(temp)) for (L, temp), r in sorted(by_task.items())
                if stationary(np.linalg.norm(r["magnetization"], axis=1)) is False]
    if drifting:
        import warnings

        warnings.warn(f"curie_sweep: ⟨|M|⟩ still drifts in {len(drifting)} of {len(by_task)} runs (L, T K) "
                      f"{drifting[:4]}{' ...' if len(drifting) > 4 else ''}: their first sweeps differ from their "
                      f"second half (Geweke |z| > {GEWEKE_LIMIT:g} and by more than 3σ, spinlat.statistics."
                      f"stationary); thermalize={thermalize} sweeps is too short "
                      "for them, so their averages, errors and T_c are biased", UserWarning, stacklevel=3)
    big = int(np.argmax(sizes))
    if u4[big, 0] < U4_ORDERED_SIDE:  # (⟨|M|⟩ < 0.5 warned for a ferromagnet at 0.94 T_c, L = 12: ⟨|M|⟩ = 0.43)
        import warnings

        warnings.warn(f"curie_sweep: the largest system (L = {int(sizes[big])}) is not ferromagnetically ordered at "
                      f"the lowest temperature ({temps[0]:g} K: ⟨|M|⟩ = {m[big, 0]:.3g}, U4 = {u4[big, 0]:.3g} < "
                      f"{U4_ORDERED_SIDE:.3g}, the ordered side of a crossing); the Binder cumulant of M "
                      "finds no Curie temperature there (an antiferromagnet's ordering needs its staggered "
                      "magnetisation; otherwise start the sweep lower)", UserWarning, stacklevel=3)
    replicas = bootstrap_crossings(temps, u4_boot) if n_boot and S > 1 else None
    return CurieResult(temps, sizes, n_spins, m, chi, u4, c, sec, samples, None, m_err, chi_err, u4_err, c_err,
                       replicas)


__all__ = ["curie_sweep", "CurieResult", "binder_crossing", "bootstrap_crossings", "format_error", "mean_field_tc", "truncate",
           "U4_ORDERED", "U4_DISORDERED", "U4_ORDERED_SIDE"]
