"""Bain path bcc → fcc of Fe (or ordered FeNi with a trained mMACE model): table and plot.

Default potential: Mendelev Fe EAM + Bethe-Slater exchange (LAMMPS spin/exchange 3.4 Å,
J1 = 0.02726 eV, J2 = 0.2171, J3 = 1.841 Å) + a Landau term a|m|² + b|m|⁴ (a = −0.44 eV/μB²,
b = 0.0454 eV/μB⁴, |m| minimum 2.2 μB). The exchange has LAMMPS's hard cutoff, so E(c/a) steps
by J(3.4 Å) ≈ 3.2 meV/atom where the c-axis neighbours leave the cutoff (c/a ≈ 1.31 at fixed volume).

With ``--model FILE.mmace`` a trained MagneticMACE potential replaces it; ``--alloy`` puts Ni on
the body centres (B2 at c/a = 1, L1₀ at c/a = √2) for Fe-Ni models.

Writes OUT/bain_{fixed,relaxed}.csv and .png. Run: python examples/bain_path.py [--out bain_out]
"""

from pathlib import Path

import numpy as np

import spinlat as sl
from spinlat.workflows.bain import SQRT2, bain_path, bct, format_table, write_table

from _example import ArgumentParser, run  # examples/_example.py: one-line errors

EAM_FILE = sl.data.path("Fe_mm.eam.fs")  # shipped with spinlat (Mendelev et al. 2003)


def analytic_fe():
    from spinlat.potentials import EAM, BetheSlaterExchange, Landau

    return EAM(EAM_FILE) + BetheSlaterExchange(3.4, 0.02726, 0.2171, 1.841) + Landau(-0.44, 0.0454)


def main():
    p = ArgumentParser(description=__doc__)
    p.add_argument("--out", default="bain_out", help="output folder")
    p.add_argument("--model", default=None, help="MagneticMACE model file (default: analytic Fe potential)")
    p.add_argument("--alloy", action="store_true", help="Fe on corners, Ni on body centres (FeNi)")
    p.add_argument("--points", type=int, default=29, help="c/a points from 0.9 to 1.6")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    if args.model:
        from spinlat.potentials import MagneticMACE

        pot = MagneticMACE.load(args.model)
    else:
        pot = analytic_fe()
    if args.alloy:
        def structure(ca, v):
            st = bct(ca, v, "Fe", reps=(2, 2, 2))
            ni = np.arange(len(st)) % 2 == 1  # body-centre sites
            return st.copy(numbers=np.where(ni, 28, 26), moments=np.where(ni, 0.6, 2.5))
    else:
        structure = "Fe"
    cas = np.union1d(np.linspace(0.9, 1.6, args.points), [1.0, SQRT2])
    for volume in ("fixed", "relaxed"):
        rows = bain_path(structure, pot, cas, volume=volume, plot=out / f"bain_{volume}.png")
        write_table(rows, out / f"bain_{volume}.csv")
        print(f"\n== {volume} volume ==")
        print(format_table(rows))
        fm = {round(r["ca"], 6): r["energy"] for r in rows if r["order"] == "FM"}
        print(f"E(fcc) − E(bcc), FM: {(fm[round(SQRT2, 6)] - fm[1.0]) * 1e3:.2f} meV/atom")
    print(f"\nwrote {out}/bain_fixed.csv, bain_fixed.png, bain_relaxed.csv, bain_relaxed.png")


if __name__ == "__main__":
    run(main)
