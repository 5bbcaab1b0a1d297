"""Curie temperature of bcc Fe from the TB2J exchange parameters (Monte Carlo, Binder crossing).

    python examples/curie_bccfe_tb2j.py                     # ~3-5 min on 2 cores (the run below)
    python examples/curie_bccfe_tb2j.py --sizes 6 8 10 12 14 --sweeps 10000 --workers 8
    python examples/curie_bccfe_tb2j.py --scheduler tcp://host:8786   # on a Dask cluster

The TB2J file holds the primitive bcc cell (a = 2.848 Å, rotated so that a1 ∥ x) and 171
exchange pairs per atom out to 14.2 Å. TB2J lists the pairs of a box of lattice vectors, not of
a sphere: the neighbour shells are complete only to 7.40 Å (10 shells, 168 neighbours) and
partial beyond. The partial shells break the cubic symmetry of J(q) and make J(q) exceed J(0)
by ~5 meV at q ≈ 0.2 Å⁻¹ along one [110] direction, i.e. the ferromagnet of the full file is
spuriously unstable to a long-wavelength spiral. By default the exchange is therefore cut at
``--cutoff 7.7`` Å (84 pairs per atom, all complete shells; ``--cutoff 0`` keeps everything).

The runs use L × L × L conventional cubic supercells (2 L³ spins), start ferromagnetic, and
measure ⟨|M|⟩, χ, C and the Binder cumulant U4 = 1 − ⟨M⁴⟩/(3⟨M²⟩²) at each temperature
(Metropolis + 1 over-relaxation sweep per sweep; the scalar isotropic coupling kernel of
:class:`spinlat.integrators.MonteCarlo`). T_c is where the U4 curves of successive sizes cross;
the classical mean-field value T_MF = J(0)/(3 k_B) (J per pair counted once) is printed for
comparison.

Every observable is printed with its statistical error (blocking / blocked jackknife over the
correlated sweeps, :mod:`spinlat.statistics`), and T_c with the standard deviation of T_c over
block-bootstrap replicas of every run (:mod:`spinlat.workflows.curie`): the statistical error at
these sizes. The spread between the crossings of different size pairs is the finite-size drift,
printed beside it, not an error bar.

Result of the defaults (sizes 6, 8, 10, 12 = 432-3456 spins; 1380-1650 K in 30 K steps;
600 + 3000 sweeps; 194 s wall on 2 idle cores, 847 s on loaded ones), cut at 7.7 Å:

    U4 crossings  L=6/8: 1485 ± 12 K,  L=8/10: 1477 ± 27 K,  L=10/12: 1447 ± 21 K
    T_c = 1470 ± 11 K (bootstrap error); the pairs' crossings span 38 K (finite-size drift),
    T_MF = 1786 K, T_c/T_MF = 0.82
    χ peak: L=6 ~1510 K, L=8 1500 K, L=10 1500 K, L=12 1470-1500 K

(A classical Hamiltonian: well above the experimental 1043 K, as classical spins with these
short-range couplings give; T_c/T_MF close to the nearest-neighbour bcc value 0.77.)
With the full file (``--cutoff 0``, 950-1250 K, 800 + 5000 sweeps) the curves show the spurious
instability instead of a transition: ⟨|M|⟩ at 950 K falls with size (0.65, 0.62, 0.59, 0.54 for
L = 6-12), the χ peak moves down (>1250, 1225, 1175, 1125 K) and only L=6/8 cross (1044 K); the
larger pairs do not cross in the window.

Writes curie_bccfe.png and curie_bccfe.txt to --out (default: the current directory).
"""

import time
from pathlib import Path

import numpy as np

import spinlat as sl
from spinlat.workflows.curie import curie_sweep, mean_field_tc, truncate

from _example import ArgumentParser, run  # examples/_example.py: one-line errors

TB2J = sl.data.path("bccFe_TB2J_exchange.out")  # shipped with spinlat (TB2J bcc Fe example)


def main():
    p = ArgumentParser(description=__doc__)
    p.add_argument("--tb2j", default=str(TB2J), help="TB2J exchange.out file")
    p.add_argument("--cutoff", type=float, default=7.7,
                   help="keep the exchange pairs shorter than this, Å (0: all); the file's shells are complete "
                        "only to 7.40 Å")
    p.add_argument("--sizes", type=int, nargs="+", default=[6, 8, 10, 12], help="cubic supercell sizes L")
    p.add_argument("--tmin", type=float, default=1380.0, help="lowest temperature, K")
    p.add_argument("--tmax", type=float, default=1650.0, help="highest temperature, K")
    p.add_argument("--dt", type=float, default=30.0, help="temperature step, K")
    p.add_argument("--sweeps", type=int, default=3000, help="measured sweeps per temperature")
    p.add_argument("--thermalize", type=int, default=600, help="sweeps discarded before measuring, per temperature")
    p.add_argument("--overrelax", type=int, default=1, help="over-relaxation sweeps per Metropolis sweep")
    p.add_argument("--every", type=int, default=20, help="energy sample (for C) every this many sweeps")
    p.add_argument("--workers", type=int, default=None, help="local worker processes (default: serial)")
    p.add_argument("--scheduler", default=None, help="Dask scheduler address (default: none, local)")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--out", default=".", help="output folder for curie_bccfe.png and curie_bccfe.txt")
    args = p.parse_args()

    state, ham = sl.io.read_tb2j(args.tb2j)
    n_all = ham.n_pairs
    if args.cutoff > 0:
        ham = truncate(ham, args.cutoff)
    t_mf = mean_field_tc(ham, state.moments)
    temps = np.arange(args.tmin, args.tmax + 0.5 * args.dt, args.dt)
    print(f"{args.tb2j}: {ham.n_pairs} of {n_all} pairs per atom (cutoff {args.cutoff} Å), "
          f"E_FM = {ham.compute(state).energy:.4f} eV/atom, T_MF = {t_mf:.0f} K")
    print(f"sizes {args.sizes} (cubic, {[2 * L**3 for L in args.sizes]} spins), {len(temps)} temperatures "
          f"{temps[0]:.0f}-{temps[-1]:.0f} K, {args.thermalize} + {args.sweeps} sweeps, overrelax {args.overrelax}")
    t0 = time.perf_counter()
    res = curie_sweep(state, ham, temps, args.sizes, args.sweeps, thermalize=args.thermalize,
                      overrelax=args.overrelax, every=args.every, cell="cubic", seed=args.seed, workers=args.workers,
                      scheduler=args.scheduler)
    wall = time.perf_counter() - t0
    res.t_mf = t_mf
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    lines = [res.table(), ""]
    tcs = [t for _, t in res.crossings() if np.isfinite(t)]
    drift = f"; the pairs' crossings span {max(tcs) - min(tcs):.0f} K (finite-size drift)" if len(tcs) > 1 else ""
    lines.append(f"T_c = {res.tc:.0f} ± {res.tc_error:.0f} K (bootstrap error){drift}, T_MF = {t_mf:.0f} K, "
                 f"T_c/T_MF = {res.tc / t_mf:.3f}")
    lines.append("chi peak: " + ", ".join(f"L={L} {res.temperatures[np.argmax(res.chi[k])]:.0f} K"
                                          for k, L in enumerate(res.sizes)))
    lines.append(f"wall time {wall:.0f} s (CPU time in runs {res.seconds.sum():.0f} s)")
    text = "\n".join(lines)
    print(text)
    (out / "curie_bccfe.txt").write_text(text + "\n")
    res.plot(out / "curie_bccfe.png", title=f"bcc Fe, TB2J exchange ({ham.n_pairs} pairs/atom, r < {args.cutoff} Å), Monte Carlo")
    print(f"wrote {out / 'curie_bccfe.txt'} and {out / 'curie_bccfe.png'}")


if __name__ == "__main__":
    run(main)
