"""Skyrmion collapse: the energy barrier of an isolated skyrmion by the geodesic nudged elastic band.

Model (spinlat/workflows/skyrmion.py): L × L square monolayer, nearest-neighbour exchange
J = 10 meV, Bloch DMI D = 6 meV, easy-axis anisotropy K = 0.1 meV, B = 20 T along z, μ = 2 μB.
The skyrmion (relaxed with spinlat.minimize) collapses into the ferromagnet; the band has
--images images (both endpoints included), the highest one climbs to the saddle point. With Spirit
2.2 installed the same band is relaxed by Spirit's GNEB (LBFGS_OSO) and the barriers compared.

Run: python examples/gneb_skyrmion.py [--L 20] [--images 16] [--tol 1e-5] [--out gneb_skyrmion]
Writes <out>/path.h5 (one frame per image), <out>/path.extxyz and <out>/energy.png.
Exit status 1 (after writing the files) when the band does not converge, as `spinlat gneb`.
"""

import time
from pathlib import Path

import numpy as np

import spinlat as sl
from spinlat.transitions import geodesic_path, saddle_verdict
from spinlat.workflows import skyrmion as sk

from _example import ArgumentParser, gneb_status, run  # examples/_example.py: one-line errors


def main():
    p = ArgumentParser(description=__doc__)
    p.add_argument("--L", type=int, default=20, help="lattice size (sites per side)")
    p.add_argument("--images", type=int, default=16, help="images of the band, both endpoints included")
    p.add_argument("--tol", type=float, default=1e-5, help="force tolerance, eV/rad")
    p.add_argument("--out", default="gneb_skyrmion", help="output directory")
    args = p.parse_args()
    try:
        import spirit  # noqa: F401
        have_spirit = True
    except ImportError:
        have_spirit = False
    # Spirit stores its parameters in float32 and has its own μB: use exactly its Hamiltonian
    pars = sk.spirit_parameters() if have_spirit else (sk.J_SK, sk.D_SK, sk.K_SK, sk.B_SK)
    pot = sk.skyrmion_potential(*pars)
    sky, fm = sk.relaxed_skyrmion(args.L, pot)
    e_sky, e_fm = (pot.compute(s, forces=False).energy for s in (sky, fm))
    print(f"{args.L}×{args.L} lattice: skyrmion {np.sum(sky.spins[:, 2] < 0)} reversed spins, "
          f"E(skyrmion) − E(ferromagnet) = {(e_sky - e_fm) * 1e3:.4f} meV")

    t0 = time.perf_counter()
    res = sl.gneb(sky, fm, pot, images=args.images, tol=args.tol)
    wall = time.perf_counter() - t0
    print(f"spinlat GNEB: {res.reason} in {res.iterations} iterations, {wall:.2f} s")
    print(f"  collapse barrier {res.barrier * 1e3:.6f} meV (saddle image {res.saddle}), "
          f"reverse (nucleation) barrier {res.reverse_barrier * 1e3:.6f} meV")
    sad = res.states[res.saddle]
    print(f"  saddle: {np.sum(sad.spins[:, 2] < 0)} spins with s_z < 0, lowest s_z {sad.spins[:, 2].min():.4f}")
    values, _ = res.saddle_modes(pot, k=3)  # one negative eigenvalue: a first-order saddle
    print(f"  saddle Hessian: lowest eigenvalues {', '.join(f'{v * 1e3:.4f}' for v in values)} meV/rad²: "
          f"{saddle_verdict(values)[1]}")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    res.write(out / "path.h5", potential=pot)
    sl.io.write_extxyz(out / "path.extxyz", res.to_atoms())
    res.plot(out / "energy.png", title=f"skyrmion collapse, {args.L}×{args.L}")
    print(f"  path: {out / 'path.h5'}, plot: {out / 'energy.png'}")

    if have_spirit:
        S, _, _ = geodesic_path(sky, fm, args.images)
        sp = sk.spirit_gneb(S, args.L, *pars, tol=args.tol)
        # Spirit reports float32 energies: evaluate its converged band in double precision too
        e = [pot.compute(fm.copy(spins=s), forces=False).energy for s in sp["spins"]]
        b_sp = e[sp["climbing"]] - e[0]
        print(f"Spirit 2.2 GNEB (LBFGS_OSO): {sp['iterations']} iterations, {sp['wall_s']:.2f} s")
        print(f"  barrier {b_sp * 1e3:.6f} meV (its own float32 energies: "
              f"{(sp['energies'][sp['climbing']] - sp['energies'][0]) * 1e3:.4f} meV); "
              f"relative difference to spinlat {abs(res.barrier / b_sp - 1):.1e}")
    else:
        print("(pip install spirit to compare with Spirit's GNEB)")
    return gneb_status(res, args.tol)


if __name__ == "__main__":
    run(main)
