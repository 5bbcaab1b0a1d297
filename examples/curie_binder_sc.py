"""Curie temperature of the classical Heisenberg ferromagnet on the simple cubic lattice by
Monte Carlo and the Binder-cumulant crossing.

E = −J Σ_<ij> s_i·s_j (nearest neighbours, unit spins, J per pair); the known result is
T_c = 1.443 J/k_B. For L = 6, 8, 12 and temperatures around T_c, the script runs Metropolis sweeps
with over-relaxation (spinlat.integrators.MonteCarlo), records the magnetisation after every
sweep, and plots M(T) and U4(T) = 1 − ⟨m⁴⟩/(3⟨m²⟩²) to curie_binder_sc.png; the crossing of the
U4 curves of the two largest sizes estimates T_c.

Usage: python examples/curie_binder_sc.py [sweeps]   (default 20000 sweeps per point)
"""

import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import spinlat as sl  # noqa: E402
from spinlat import units  # noqa: E402
from spinlat.integrators import MonteCarlo  # noqa: E402
from spinlat.potentials import Heisenberg  # noqa: E402

J = 1e-3  # eV per pair
TC = 1.443 * J / units.K_B  # K
SIZES = (6, 8, 12)
RATIOS = np.array([0.94, 0.97, 0.98, 0.99, 1.0, 1.01, 1.02, 1.03, 1.06])


def lattice(L, seed=0):
    unit = sl.State([[0, 0, 0]], [26], cell=np.eye(3) * 2.5, pbc=True, moments=[1.0])
    rng = np.random.default_rng(seed)
    st = unit.repeat((L, L, L))
    return unit, st.copy(spins=rng.normal(size=(len(st), 3)))


def main(sweeps=20000):
    results = {}
    for L in SIZES:
        unit, st = lattice(L)
        pot = Heisenberg.from_neighbors(unit, J=[J])
        for r in RATIOS:
            mc = MonteCarlo(r * TC, seed=1, overrelax=2)
            s = mc.run(st, pot, 1000)
            mc.adapt = False
            mc.run(s, pot, sweeps)
            m2 = np.sum(mc.magnetization**2, axis=1)
            u4 = 1 - np.mean(m2**2) / (3 * np.mean(m2) ** 2)
            results[L, r] = (np.mean(np.sqrt(m2)), u4)
            print(f"L={L:2d} T/Tc={r:.3f} T={r * TC:7.3f} K  |M|={results[L, r][0]:.4f}  U4={u4:.4f}", flush=True)
    # crossing of the two largest sizes (quadratic fit of the difference near T_c)
    a, b = SIZES[-2], SIZES[-1]
    near = np.abs(RATIOS - 1) <= 0.021
    d = np.array([results[a, r][1] - results[b, r][1] for r in RATIOS[near]])
    roots = np.roots(np.polyfit(RATIOS[near] - 1, d, 2)) + 1
    roots = roots[np.isreal(roots)].real
    roots = roots[np.abs(roots - 1) < 0.05]
    if len(roots):
        t_cross = roots[np.argmin(np.abs(roots - 1))] * TC
        print(f"Binder crossing L={a}/{b}: T = {t_cross:.3f} K = {t_cross * units.K_B / J:.4f} J/k_B "
              f"(reference 1.443 J/k_B, deviation {100 * (t_cross / TC - 1):+.2f} %)")
    else:
        print("no U4 crossing near T_c: too few sweeps for the statistics")
    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    for L in SIZES:
        ax[0].plot(RATIOS * TC, [results[L, r][0] for r in RATIOS], "o-", label=f"L={L}")
        ax[1].plot(RATIOS * TC, [results[L, r][1] for r in RATIOS], "o-", label=f"L={L}")
    for a_ in ax:
        a_.axvline(TC, color="k", ls=":", label="1.443 J/k_B")
        a_.set_xlabel("T (K)")
        a_.legend()
    ax[0].set_ylabel("|M| per spin")
    ax[1].set_ylabel("U4")
    fig.tight_layout()
    fig.savefig("curie_binder_sc.png", dpi=120)
    print("wrote curie_binder_sc.png")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20000)
