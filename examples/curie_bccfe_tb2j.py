"""Curie temperature of bcc Fe from the TB2J exchange parameters (Monte Carlo, Binder crossing).

    python examples/curie_bccfe_tb2j.py                     # ~4-5 min on 2 cores
    python examples/curie_bccfe_tb2j.py --sizes 6 8 10 --sweeps 5000 --workers 8
    python examples/curie_bccfe_tb2j.py --scheduler tcp://host:8786   # on a Dask cluster

The TB2J file holds the primitive bcc cell (a = 2.849 Å, rotated so that a1 ∥ x) and 171
exchange pairs per atom out to 14.2 Å. The runs use L × L × L conventional cubic supercells
(2 L³ spins; L ≥ 5 so that no spin couples to its own periodic image), start ferromagnetic, and
measure ⟨|M|⟩, χ, C and the Binder cumulant U4 = 1 − ⟨M⁴⟩/(3⟨M²⟩²) at each temperature. T_c is
where the U4 curves of different sizes cross; the classical mean-field value
T_MF = J(0)/(3 k_B) (J per pair counted once) is printed for comparison.

Writes curie_bccfe.png and curie_bccfe.txt to --out (default: the current directory).
"""

import argparse
import time
from pathlib import Path

import numpy as np

import spinlat as sl
from spinlat.workflows.curie import curie_sweep, mean_field_tc

ROOT = Path(__file__).resolve().parents[1]
TB2J = ROOT.parent / "shared" / "data" / "tb2j" / "bccFe" / "exchange.out"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tb2j", default=str(TB2J), help="TB2J exchange.out file")
    p.add_argument("--sizes", type=int, nargs="+", default=[6, 8], help="cubic supercell sizes L")
    p.add_argument("--tmin", type=float, default=950.0)
    p.add_argument("--tmax", type=float, default=1250.0)
    p.add_argument("--dt", type=float, default=25.0, help="temperature step, K")
    p.add_argument("--sweeps", type=int, default=2000, help="measured sweeps per temperature")
    p.add_argument("--thermalize", type=int, default=500)
    p.add_argument("--overrelax", type=int, default=1)
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--scheduler", default=None, help="Dask scheduler address")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=".")
    args = p.parse_args()

    state, ham = sl.io.read_tb2j(args.tb2j)
    t_mf = mean_field_tc(ham, state.moments)
    temps = np.arange(args.tmin, args.tmax + 0.5 * args.dt, args.dt)
    print(f"{args.tb2j}: {ham.n_pairs} pairs per atom, E_FM = {ham.compute(state).energy:.4f} eV/atom, "
          f"T_MF = {t_mf:.0f} K")
    print(f"sizes {args.sizes} (cubic, {[2 * L**3 for L in args.sizes]} spins), {len(temps)} temperatures "
          f"{temps[0]:.0f}-{temps[-1]:.0f} K, {args.thermalize} + {args.sweeps} sweeps, overrelax {args.overrelax}")
    t0 = time.perf_counter()
    res = curie_sweep(state, ham, temps, args.sizes, args.sweeps, thermalize=args.thermalize,
                      overrelax=args.overrelax, cell="cubic", seed=args.seed, workers=args.workers,
                      scheduler=args.scheduler)
    wall = time.perf_counter() - t0
    res.t_mf = t_mf
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    lines = [res.table(), ""]
    for (la, lb), tc in res.crossings():
        lines.append(f"U4 crossing L={la}/L={lb}: {tc:.0f} K")
    lines.append(f"T_c = {res.tc:.0f} K, T_MF = {t_mf:.0f} K, T_c/T_MF = {res.tc / t_mf:.3f}")
    lines.append(f"wall time {wall:.0f} s (CPU time in runs {res.seconds.sum():.0f} s)")
    text = "\n".join(lines)
    print(text)
    (out / "curie_bccfe.txt").write_text(text + "\n")
    res.plot(out / "curie_bccfe.png", title=f"bcc Fe, TB2J exchange ({ham.n_pairs} pairs/atom), Monte Carlo")
    print(f"wrote {out / 'curie_bccfe.png'}")


if __name__ == "__main__":
    main()
