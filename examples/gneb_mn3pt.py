"""Mn3Pt: the barrier between the triangular T1 state and its time reverse, through the opposite chirality.

Model (spinlat/workflows/mn3pt.py): L1₂ Mn3Pt, antiferromagnetic Mn-Mn exchange J1 = −20 meV and
a local easy axis n_X (⟨112⟩ in (111), K = 0.5 meV) on each Mn sublattice X. T1 has s_X = n_X;
its time reverse s_X = −n_X has the same energy. With |J1| ≫ K the 120° triad turns as a rigid
body: a rotation by ψ about the easy axis n_A costs

    E(ψ) − E_T1 = K [2 − 2((3 cos ψ + 1)/4)²]  per cell,

highest, 2K, at cos ψ = −1/3, and a local minimum 1.5K at ψ = π: the triad of opposite vector
chirality (s_A = n_A, s_B = n_C, s_C = n_B), degenerate under rotations about [111]. The band finds
T1 → opposite chirality → −T1 over two saddles of ≈ 2K, well below the 3K of a coherent rotation
of the triad in the (111) plane. The vector chirality κ = (2/3√3) Σ_(XY cyclic) (M̂_X × M̂_Y)·[111]/√3
of the sublattice moments is printed along the path (+1 for T1 and −T1, −1 for the other state).

Run: python examples/gneb_mn3pt.py [--reps 1] [--images 13] [--tol 1e-5] [--out gneb_mn3pt]
Exit status 1 (after writing the files) when the band does not converge, as `spinlat gneb`.
"""

import time
from pathlib import Path

import numpy as np

import spinlat as sl
from spinlat.transitions import saddle_verdict
from spinlat.workflows import mn3pt as M

from _example import ArgumentParser, gneb_status, run  # examples/_example.py: one-line errors


def chirality(state):
    """Vector chirality of the three Mn sublattice moments about [111]."""
    m = M.sublattice_moments(state)
    m = m / np.linalg.norm(m, axis=1)[:, None]
    w = np.ones(3) / np.sqrt(3)
    return float(sum(np.cross(m[x], m[(x + 1) % 3]) @ w for x in range(3)) * 2 / (3 * np.sqrt(3)))


def main():
    p = ArgumentParser(description=__doc__)
    p.add_argument("--reps", type=int, default=1, help="supercell repeats of the cubic cell")
    p.add_argument("--images", type=int, default=13, help="images of the band, both endpoints included")
    p.add_argument("--tol", type=float, default=1e-5, help="force tolerance, eV/rad")
    p.add_argument("--max-iterations", type=int, default=20000, help="iteration limit of the band")
    p.add_argument("--out", default="gneb_mn3pt", help="output directory")
    args = p.parse_args()

    st = M.mn3pt(reps=args.reps)
    pot = M.mn3pt_potential(st)
    axes = M.mn3pt_local_axes(st)
    mn = st.moments > 0
    t1 = st.copy(spins=np.where(mn[:, None], axes, st.spins))
    reverse = st.copy(spins=np.where(mn[:, None], -axes, st.spins))
    cells, K = args.reps ** 3, M.K_MN3PT
    print(f"Mn3Pt {args.reps}×{args.reps}×{args.reps} ({len(st)} atoms), J1 = {M.J1_MN3PT * 1e3:g} meV, "
          f"K = {K * 1e3:g} meV; T1 → time-reversed T1, {args.images} images")

    t0 = time.perf_counter()
    res = sl.gneb(t1, reverse, pot, images=args.images, tol=args.tol, max_iterations=args.max_iterations)
    print(f"GNEB: {res.reason} in {res.iterations} iterations, {time.perf_counter() - t0:.1f} s\n")
    print(f"{'image':>5} {'x (rad)':>8} {'E − E_T1 (meV/cell)':>20} {'chirality':>9}")
    for k, s in enumerate(res.states):
        mark = "  ← saddle (climbing)" if k == res.climbing else ""
        print(f"{k:5d} {res.reaction_coordinate[k]:8.4f} {(res.energies[k] - res.energies[0]) / cells * 1e3:20.5f} "
              f"{chirality(s):9.4f}{mark}")
    e = (res.energies - res.energies[0]) / cells
    print(f"\nbarrier {res.barrier / cells * 1e3:.5f} meV/cell; rigid-triad limit 2K = {2 * K * 1e3:.5f} meV/cell "
          f"(ratio {res.barrier / cells / (2 * K):.4f}); coherent in-plane rotation 3K = {3 * K * 1e3:.3f} meV/cell")
    peaks = [k for k in range(1, len(e) - 1) if e[k] > e[k - 1] and e[k] > e[k + 1]]
    if len(peaks) >= 2:
        mid = peaks[0] + int(np.argmin(e[peaks[0]:peaks[-1] + 1]))
        print(f"lowest image between the two barriers: {e[mid] * 1e3:.5f} meV/cell, chirality "
              f"{chirality(res.states[mid]):.3f} (opposite-chirality minimum: 1.5K = {1.5 * K * 1e3:.3f} meV/cell)")
    values, _ = res.saddle_modes(pot, k=3)  # one negative eigenvalue: a first-order saddle
    print(f"saddle Hessian: lowest eigenvalues {', '.join(f'{v * 1e3:.4g}' for v in values)} meV/rad²: "
          f"{saddle_verdict(values)[1]}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    res.write(out / "path.h5", potential=pot)
    res.plot(out / "energy.png", title="Mn3Pt: T1 → time-reversed T1")
    print(f"path: {out / 'path.h5'}, plot: {out / 'energy.png'}")
    return gneb_status(res, args.tol)


if __name__ == "__main__":
    run(main)
