"""Geodesic nudged elastic band: spinlat vs Spirit 2.2 on the same skyrmion-collapse path.

System (``spinlat.workflows.skyrmion``): L × L square monolayer, J = 10 meV, Bloch D = 6 meV,
K = 0.1 meV, B = 20 T, μ = 2 μB (the Hamiltonian of bench_llg_spirit.py in a field where the
skyrmion and the ferromagnet are both metastable), parameters rounded as Spirit stores them.
Both codes start from the same band: the relaxed skyrmion, the ferromagnet and spinlat's geodesic
interpolation between them (``--images`` images in all), with the same spring constant (1 meV/rad²)
and the same tolerance on the largest per-spin force (``--tol`` eV/rad). Spirit runs in two stages
as its users do (no climbing image until the force is below 10 tol, then the highest image climbs);
spinlat switches its climbing image on by itself (``climb_after``, set to the same 10 tol here).

Printed per lattice size: iterations, wall time and CPU time of this process, the ratio of Spirit's
time to spinlat's (> 1: spinlat faster), and the barrier of each (spinlat's energies, and spinlat's
potential evaluated on Spirit's converged saddle, since Spirit reports energies in float32).
Spirit's pip build is single-threaded; spinlat's kernels are serial numba. The machine may be
shared: compare the ratios within one run (``--repeat`` shows their spread).

Usage: ``python benchmarks/bench_gneb_spirit.py [--sizes 20,30,40] [--images 16] [--tol 1e-5]
[--solver lbfgs_oso|vp] [--repeat 1]``.
"""

from __future__ import annotations

import argparse
import time

import spinlat as sl
from spinlat.transitions import geodesic_path
from spinlat.workflows import skyrmion as sk


def timed(fn):
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w0, time.process_time() - c0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="20,30,40", help="lattice sizes L (comma separated)")
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--tol", type=float, default=1e-5, help="eV/rad")
    ap.add_argument("--solver", default="lbfgs_oso", choices=["lbfgs_oso", "vp"])
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    try:
        import spirit  # noqa: F401
        have_spirit = True
    except ImportError:
        have_spirit = False
        print("spirit not installed (pip install spirit): printing spinlat only")
    pars = sk.spirit_parameters() if have_spirit else (sk.J_SK, sk.D_SK, sk.K_SK, sk.B_SK)
    pot = sk.skyrmion_potential(*pars)
    print(f"skyrmion collapse, {args.images} images, tol {args.tol:g} eV/rad, Spirit solver {args.solver}")
    print(f"{'L':>4s} {'iter sl':>8s} {'iter Sp':>8s} {'wall sl':>8s} {'wall Sp':>8s} {'Sp/sl':>6s} | "
          f"{'CPU sl':>7s} {'CPU Sp':>7s} {'Sp/sl':>6s} | {'barrier sl (meV)':>17s} {'Spirit (meV)':>13s} {'rel':>8s}")
    for L in (int(x) for x in args.sizes.split(",")):
        sky, fm = sk.relaxed_skyrmion(L, pot)
        S, _, _ = geodesic_path(sky, fm, args.images)
        path = [fm.copy(spins=s) for s in S]
        sl.gneb(sky, fm, pot, path=path, max_iterations=2)  # compile / warm up
        for _ in range(args.repeat):
            res, w1, c1 = timed(lambda: sl.gneb(sky, fm, pot, path=path, tol=args.tol, climb_after=10 * args.tol,
                                                max_iterations=100000))
            row = (f"{L:4d} {res.iterations:8d} ")
            if have_spirit:
                sp, w2, c2 = timed(lambda: sk.spirit_gneb(S, L, *pars, tol=args.tol, solver=args.solver,
                                                          max_iterations=100000))
                e_sp = [pot.compute(fm.copy(spins=s), forces=False).energy for s in sp["spins"]]
                b_sp = e_sp[sp["climbing"]] - e_sp[0]
                w2, c2 = sp["wall_s"], sp["cpu_s"]  # Spirit's solver only (spinlat's times include set-up)
                print(row + f"{sp['iterations']:8d} {w1:8.3f} {w2:8.3f} {w2 / w1:6.2f} | {c1:7.3f} {c2:7.3f} "
                      f"{c2 / c1:6.2f} | {res.barrier * 1e3:17.6f} {b_sp * 1e3:13.6f} "
                      f"{abs(res.barrier / b_sp - 1):8.1e}")
            else:
                print(row + f"{'-':>8s} {w1:8.3f} {'-':>8s} {'-':>6s} | {c1:7.3f} {'-':>7s} {'-':>6s} | "
                      f"{res.barrier * 1e3:17.6f}")


if __name__ == "__main__":
    main()
