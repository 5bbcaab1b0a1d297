"""Magnons of bcc Fe: S(q, ω) from a low-temperature LLG run with the TB2J exchange, and the
linear spin-wave dispersion of the same Hamiltonian (ours and magnopy's) drawn over it.

    python examples/magnons_bccfe.py                 # ~2-3 min on one core
    python examples/magnons_bccfe.py --size 10 --ps 4 --trajectory magnons.h5

Steps:
1. the TB2J file's primitive cell → an L × L × L conventional cubic supercell (2 L³ spins),
   ferromagnetic;
2. frozen-lattice stochastic LLG at T (default 30 K): a short equilibration with strong damping,
   then production with small damping (α = 0.005), spins kept every few fs (optionally through
   ``sl.Simulation`` into an HDF5 trajectory);
3. S(q, ω) (:func:`spinlat.analysis.structure_factor`) at the wave vectors of Γ–H–N–Γ–P that the
   supercell resolves (:func:`spinlat.workflows.magnons.kpath_bcc` with n = L);
4. the classical LSWT dispersion ħω = g_γ (J(0) − J(q)) / μ and magnopy's LSWT (spin S = μ/g_γ,
   see :mod:`spinlat.workflows.magnons` for the conventions) on a fine path, over the image;
5. the S(q, ω) peak at each q against LSWT, printed, with the difference also in units of the
   spectrum's energy bin (its resolution, 2πħ over the run length), and ⟨|M|⟩ of the run with its
   error (blocking over the correlated frames, :mod:`spinlat.statistics`).

The SIB integrator's midpoint rule shifts a precession frequency ω up by about (ω dt)²/6 for
short steps (0.7 % at 530 meV for dt = 0.25 fs), which sets the default time step.

The shipped TB2J file's pair set is incomplete beyond 7.4 Å (see ``examples/curie_bccfe_tb2j.py``),
so its LSWT dispersion dips below zero at some q-points of the fine path (down to about −5 meV:
the ferromagnet is not a strict minimum of that pair set); :func:`~spinlat.workflows.magnons.
lswt_dispersion` says so in a UserWarning. magnopy, given the same file, gives the same dip.

Writes magnons_bccfe.png and magnons_bccfe.txt to --out.
"""

import time
from pathlib import Path

import numpy as np

import spinlat as sl
from spinlat.analysis import structure_factor
from spinlat.workflows import magnons as mg

from _example import ArgumentParser, run  # examples/_example.py: one-line errors

TB2J = sl.data.path("bccFe_TB2J_exchange.out")  # shipped with spinlat (TB2J bcc Fe example)


def main():
    p = ArgumentParser(description=__doc__)
    p.add_argument("--tb2j", default=str(TB2J), help="TB2J exchange.out file (default: the shipped bcc Fe file)")
    p.add_argument("--size", type=int, default=8, help="cubic supercell L (even)")
    p.add_argument("--temperature", type=float, default=30.0, help="K")
    p.add_argument("--dt", type=float, default=0.25, help="LLG time step, fs")
    p.add_argument("--every", type=int, default=8, help="steps between frames")
    p.add_argument("--ps", type=float, default=3.0, help="production length, ps")
    p.add_argument("--equilibrate-ps", type=float, default=0.5, help="equilibration length (strong damping), ps")
    p.add_argument("--damping", type=float, default=0.005, help="Gilbert damping α of the production run")
    p.add_argument("--seed", type=int, default=1, help="random seed")
    p.add_argument("--trajectory", default=None, help="write the production run to this HDF5 file (default: none)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --trajectory file")
    p.add_argument("--emax", type=float, default=620.0, help="meV, top of the plot")
    p.add_argument("--out", default=".", help="output folder")
    args = p.parse_args()
    if args.size % 2:
        p.error("--size must be even (so that N and P are wave vectors of the supercell)")

    out = Path(args.out)
    if args.trajectory is not None and Path(args.trajectory).exists() and not args.overwrite:
        p.error(f"--trajectory {args.trajectory} already exists (an earlier run?): pass --overwrite to replace it, "
                "or another path")
    out.mkdir(parents=True, exist_ok=True)  # before the run: a bad --out costs nothing
    if args.trajectory is not None:
        Path(args.trajectory).parent.mkdir(parents=True, exist_ok=True)

    state, ham = sl.io.read_tb2j(args.tb2j)
    big = mg.cubic_supercell(state, args.size)
    kpath = mg.kpath_bcc(state.cell, args.size)
    fine = mg.kpath_bcc(state.cell, 120)
    steps = int(round(args.ps * 1000 / args.dt / args.every)) * args.every
    eq = int(round(args.equilibrate_ps * 1000 / args.dt))
    print(f"{len(big)} spins (cubic {args.size}³), T = {args.temperature} K, α = {args.damping}, "
          f"dt = {args.dt} fs, {eq} + {steps} steps, {len(kpath)} q-points on Γ-H-N-Γ-P")

    t0 = time.perf_counter()
    times, spins, final = mg.llg_spins(big, ham, steps, every=args.every, dt=args.dt, damping=args.damping,
                                       temperature=args.temperature, seed=args.seed, equilibrate=eq,
                                       equilibrate_damping=0.2, trajectory=args.trajectory,
                                       overwrite=args.overwrite)
    t_llg = time.perf_counter() - t0
    m = np.linalg.norm(sl.observables.reduced_magnetization(spins), axis=1)  # equal moments: the mean spin
    thz, mev, sqw = structure_factor(spins, big.positions, kpath.qpoints, times)  # the frame times (fs), checked

    ours_fine = mg.lswt_dispersion(ham, fine.qpoints, state.moments)
    magnopy_fine = mg.magnopy_dispersion(args.tb2j, fine.qpoints)
    ours = mg.lswt_dispersion(ham, kpath.qpoints, state.moments)[:, 0]
    agree = np.max(np.abs(magnopy_fine - ours_fine)) / np.max(ours_fine)

    m_avg = sl.analysis.average(m, with_errors=True)  # correlated frames: blocking error
    resolution = mev[1] - mev[0]  # energy bin of the spectrum: 2πħ / run length
    lines = [f"LLG: {t_llg:.0f} s for {eq + steps} steps; <|M|> = {m_avg.value:.5f} ± {m_avg.error:.5f} "
             f"(τ_int = {m_avg.tau_int:.1f} frames)",
             f"magnopy vs classical LSWT on {len(fine)} q-points: max |Δ| / max ω = {agree:.2e}",
             f"S(q, ω) energy bin (resolution 2πħ/run length) {resolution:.2f} meV; 'bins' = (peak − LSWT)/bin",
             f"{'q (2π/a, cube axes)':>24} {'LSWT meV':>9} {'S(q,ω) peak meV':>16} {'rel. diff':>9} {'bins':>6}"]
    devs = []
    for k in range(len(kpath)):
        if ours[k] < 1e-6:
            continue  # Γ: the Goldstone mode is the static part removed from S(q, ω)
        peak = mg.peak_energy(mev, sqw[k])
        devs.append(peak / ours[k] - 1)
        lines.append(f"{str(np.round(kpath.fractions[k], 3)):>24} {ours[k]:9.2f} {peak:16.2f} {devs[-1]:+9.4f} "
                     f"{(peak - ours[k]) / resolution:+6.2f}")
    lines.append(f"S(q, ω) peaks vs LSWT: mean {np.mean(devs):+.4f}, max |rel. diff| {np.max(np.abs(devs)):.4f}")
    text = "\n".join(lines)
    print(text)
    (out / "magnons_bccfe.txt").write_text(text + "\n")
    mg.plot_sqw(out / "magnons_bccfe.png", kpath, mev, sqw, emax=args.emax,
                lines=[("LSWT (classical, spinlat)", fine.distance, ours_fine, dict(color="c", lw=1.2)),
                       ("LSWT (magnopy, S = μ/g)", fine.distance, magnopy_fine,
                        dict(color="w", lw=1.0, ls="--"))],
                title=f"bcc Fe, TB2J exchange: LLG S(q, ω), {len(big)} spins, T = {args.temperature:g} K")
    print(f"wrote {out / 'magnons_bccfe.txt'} and {out / 'magnons_bccfe.png'}")


if __name__ == "__main__":
    run(main)
