"""Curie temperature from Monte Carlo temperature sweeps on several system sizes.

:func:`curie_sweep` runs Metropolis Monte Carlo (:class:`spinlat.integrators.MonteCarlo`) of a
spin Hamiltonian on L × L × L supercells for every (size, temperature) pair in parallel
(:func:`spinlat.sweep`: local processes or a Dask cluster), and collects per-sweep samples of the
magnetisation and periodic samples of the energy. :class:`CurieResult` turns them into M(T),
susceptibility χ(T), specific heat C(T) and the Binder cumulant U4(T) per size, finds T_c where
the U4 curves of different sizes cross (:func:`spinlat.analysis.crossing`) and plots everything to
PNG.

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

U4_ORDERED = 2.0 / 3.0  # Binder cumulant of a saturated vector order parameter
U4_DISORDERED = 4.0 / 9.0  # of a Gaussian three-component order parameter


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
    if cell == "repeat":
        return state.repeat(L)
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
    specific heat per spin (k_B), ``seconds`` wall time of each run. ``samples[(L, T)]`` keeps
    the raw per-sweep magnetisation (n, 3) and energies (eV)."""

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
        """T_c (K): the mean of the finite U4 crossings of consecutive sizes (NaN if none)."""
        vals = [t for _, t in self.crossings() if np.isfinite(t)]
        return float(np.mean(vals)) if vals else float("nan")

    def table(self) -> str:
        """Plain-text table of the observables (one block per size)."""
        lines = []
        for s, L in enumerate(self.sizes):
            lines.append(f"L = {L} ({self.n_spins[s]} spins)")
            lines.append(f"{'T (K)':>8} {'<|M|>':>8} {'chi (muB^2/eV)':>15} {'U4':>8} {'C (kB)':>8} {'s':>7}")
            for t, T in enumerate(self.temperatures):
                lines.append(f"{T:8.1f} {self.m[s, t]:8.4f} {self.chi[s, t]:15.2f} {self.u4[s, t]:8.4f} "
                             f"{self.c[s, t]:8.3f} {self.seconds[s, t]:7.1f}")
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
            axes[0, 0].plot(self.temperatures, self.m[s], "o-", ms=3, label=lab)
            axes[0, 1].plot(self.temperatures, self.chi[s], "o-", ms=3, label=lab)
            axes[1, 0].plot(self.temperatures, self.u4[s], "o-", ms=3, label=lab)
            axes[1, 1].plot(self.temperatures, self.c[s], "o-", ms=3, label=lab)
        axes[1, 0].axhline(U4_ORDERED, color="gray", lw=0.6, ls=":")
        axes[1, 0].axhline(U4_DISORDERED, color="gray", lw=0.6, ls=":")
        for ax, ylab in zip(axes.flat, ["⟨|M|⟩", "χ (μB²/eV per spin)", "Binder U₄", "C (k_B per spin)"]):
            ax.set_ylabel(ylab)
            if np.isfinite(tc):
                ax.axvline(tc, color="k", lw=0.8, ls="--")
            if self.t_mf:
                ax.axvline(self.t_mf, color="r", lw=0.8, ls=":")
        for ax in axes[1]:
            ax.set_xlabel("T (K)")
        axes[0, 0].legend(fontsize=8)
        text = f"T_c (U₄ crossing) = {tc:.0f} K" if np.isfinite(tc) else "no U₄ crossing"
        if self.t_mf:
            text += f";  T_MF = {self.t_mf:.0f} K (red)"
        fig.suptitle(title + "\n" + text if title else text, fontsize=10)
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)
        return path


def binder_crossing(temperatures, u_small, u_large):
    """Temperature (K) where the Binder cumulants of a smaller and a larger system cross.

    Below T_c the larger system's U4 lies above the smaller one's (closer to 2/3), above T_c
    below it. Far below T_c both sit at 2/3 within noise and may cross at random, so among the
    places where U_large − U_small changes from ≥ 0 to < 0 the one followed by the longest run of
    negative differences is taken (the curves separate for good above T_c), and located by
    :func:`spinlat.analysis.crossing` (linear interpolation). NaN if there is none."""
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
    if best is None:
        return float("nan")
    if d[best] == 0:
        return float(T[best])
    return crossing(T[best:best + 2], np.asarray(u_small, float)[best:best + 2], np.asarray(u_large, float)[best:best + 2])


def curie_sweep(state, potential, temperatures, sizes, sweeps, thermalize=None, every=10, overrelax=0,
                cell="repeat", seed=0, workers=None, scheduler=None):
    """Monte Carlo temperature sweep on several sizes; returns a :class:`CurieResult`.

    Parameters
    ----------
    state : the template cell (e.g. the unit cell of a TB2J file); its supercells are built per size.
    potential : the spin Hamiltonian (any potential :class:`~spinlat.integrators.MonteCarlo` accepts).
    temperatures : K, ascending. sizes : supercell repetitions L (L × L × L).
    sweeps : measured Monte Carlo sweeps per point (the magnetisation is sampled every sweep, the
        energy every ``every`` sweeps). thermalize : sweeps discarded first (default sweeps // 4).
    overrelax : over-relaxation sweeps per Metropolis sweep (decorrelates faster near T_c).
    cell : ``"repeat"`` (L × L × L copies of the template cell), ``"cubic"`` (L × L × L conventional
        cubic cells of a bcc template, :func:`spinlat.workflows.magnons.cubic_supercell`), or a
        function (state, L) -> State.
    seed : base seed; the run (size index s, temperature index t) uses seed + 1000 s + t.
    workers / scheduler : :func:`spinlat.sweep` parallelism (local processes / Dask address).

    Every run starts from the ferromagnetic state along z. Larger sizes are submitted first.
    """
    from ..analysis import binder_cumulant, specific_heat, susceptibility
    from ..search import sweep

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
    results = sweep(fn, [tasks[k] for k in order], workers=workers, scheduler=scheduler)
    by_task = {(r["L"], r["T"]): r for r in results}
    S, T = len(sizes), len(temps)
    m, chi, u4, c, sec = (np.zeros((S, T)) for _ in range(5))
    n_spins = np.zeros(S, dtype=int)
    samples = {}
    for s, L in enumerate(sizes):
        for t, temp in enumerate(temps):
            r = by_task[(int(L), float(temp))]
            mag = r["magnetization"]
            n_spins[s] = r["n_spins"]
            m[s, t] = float(np.mean(np.linalg.norm(mag, axis=1)))
            chi[s, t] = susceptibility(mag, temp, r["n_spins"], r["moment"])
            u4[s, t] = binder_cumulant(mag)
            c[s, t] = specific_heat(r["energies"], temp, r["n_spins"]) if len(r["energies"]) > 1 else np.nan
            sec[s, t] = r["seconds"]
            samples[(int(L), float(temp))] = dict(magnetization=mag, energies=r["energies"],
                                                  acceptance=r["acceptance"])
    return CurieResult(temps, sizes, n_spins, m, chi, u4, c, sec, samples)


__all__ = ["curie_sweep", "CurieResult", "binder_crossing", "mean_field_tc", "truncate",
           "U4_ORDERED", "U4_DISORDERED"]
