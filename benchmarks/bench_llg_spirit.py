"""Frozen-lattice LLG: spinlat vs Spirit 2.2, side by side.

System (issue 3): 100×100 square lattice (a = 1 Å, periodic in-plane), nearest-neighbour
exchange J = 10 meV, Bloch DMI D = 6 meV, uniaxial anisotropy K = 0.1 meV along z, B = 5 T along
z, moments 2 μB, damping α = 0.1, dt = 1 fs, 2 000 steps, SIB and Depondt solvers, from the same
random spin configuration.

Convention mapping (energies compared on the same configuration):

- exchange and DMI: both codes sum each unordered pair once, E = −Σ_{<ij>} [J s_i·s_j +
  D_ij·(s_i × s_j)]; Spirit's Bloch chirality (1) is D_ij = D r̂_ij, ``Heisenberg.from_neighbors
  (dmi="bloch")``; Spirit takes meV, spinlat eV (×1e-3);
- anisotropy: E = −K Σ (s_i·n)² in both;
- Zeeman: E = −Σ μ_i μB B·s_i in both; Spirit uses its own μB (``spirit.constants.mu_B``, meV/T),
  which differs from spinlat's in the last digits, so the Zeeman energies differ by that ratio.
- Spirit's LLG time step is in ps; spin-steps/s = N · steps / wall time.

Also a stochastic row: SIB at T = 100 K (each code with its own noise generator).

Usage: ``python benchmarks/bench_llg_spirit.py [steps] [--repeat R]`` (``--help``). Spirit's pip build has no
OpenMP (one thread); spinlat's kernels are serial numba (at T > 0 NumPy draws the next block of
noise in a second thread). Wall-clock and CPU-time rates are printed for both; the machine may be
shared, so compare the ratios within one run; ``--repeat`` shows their spread.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import spinlat as sl
from spinlat.integrators import LLG
from spinlat.workflows.skyrmion import skyrmion_potential, spirit_model

L = 100
J, D, K, B, MU, ALPHA, DT = 0.010, 0.006, 0.0001, 5.0, 2.0, 0.1, 1.0  # eV, eV, eV, T, μB, -, fs
TEMPERATURE = 100.0  # K, for the stochastic LLG row


def spinlat_system(spins):
    unit = sl.State([[0, 0, 0]], [26], cell=np.diag([1.0, 1.0, 10.0]), pbc=[True, True, False], moments=[MU])
    st = unit.repeat((L, L, 1))
    st = st.copy(spins=spins)
    return st, skyrmion_potential(J, D, K, B)


CASES = (("sib", 0.0), ("depondt", 0.0), ("sib", TEMPERATURE))  # (solver, K)


def timed(fn):
    """(result, wall s, CPU s of this process) of fn(); Spirit's pip build is single-threaded, so
    its CPU time is one core's; the machine may be shared, so both clocks are printed."""
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w0, time.process_time() - c0


def run_spinlat(st, pot, solver, steps, temperature=0.0):
    integ = LLG(DT, damping=ALPHA, solver=solver, temperature=temperature, seed=1)
    integ.run(st, pot, 3)  # compile / warm up, build the fused coupling table
    return timed(lambda: integ.run(st, pot, steps))


def spirit_positions_and_run(spins, steps):
    from spirit import constants, geometry, parameters, simulation, system

    solvers = {"sib": simulation.SOLVER_SIB, "depondt": simulation.SOLVER_DEPONDT}
    res = {}
    with spirit_model(L, J, D, K, B, MU) as p:
        parameters.llg.set_timestep(p, DT * 1e-3)
        parameters.llg.set_damping(p, ALPHA)
        parameters.llg.set_output_general(p, any=False, initial=False, final=False)
        res["positions"] = np.array(geometry.get_positions(p)).reshape(-1, 3)
        # spinlat's State is built on Spirit's positions, so site k is the same
        system.get_spin_directions(p)[:] = spins
        system.update_data(p)
        res["energy_meV"] = system.get_energy(p)
        res["mu_B"] = constants.mu_B
        for solver, temp in CASES:
            parameters.llg.set_temperature(p, temp)
            system.get_spin_directions(p)[:] = spins
            system.update_data(p)
            _, wall, cpu = timed(lambda: simulation.start(p, simulation.METHOD_LLG, solvers[solver],
                                                          n_iterations=steps, n_iterations_log=steps))
            system.update_data(p)
            res[solver, temp] = (wall, cpu, system.get_energy(p) * 1e-3)
    return res


def main(steps=2000, repeat=1):
    rng = np.random.default_rng(0)
    n = L * L
    spins = rng.normal(size=(n, 3))
    spins /= np.linalg.norm(spins, axis=1)[:, None]
    try:
        import spirit  # noqa: F401
        have_spirit = True
    except ImportError:
        have_spirit = False
        print("spirit not installed (pip install spirit): printing spinlat only")
    pos = sl.State([[0, 0, 0]], [26], cell=np.diag([1.0, 1.0, 10.0]), pbc=[True, True, False]).repeat(
        (L, L, 1)).positions
    ratios = {c: [] for c in CASES}
    for rep in range(repeat):
        sp = spirit_positions_and_run(spins, steps) if have_spirit else None
        if sp is not None:
            pos = sp["positions"]
        _, pot = spinlat_system(spins)
        # use Spirit's atom order so that both codes see the same spin on the same site
        st = sl.State(pos, [26] * n, cell=np.diag([float(L), float(L), 10.0]), pbc=[True, True, False],
                      moments=np.full(n, MU), spins=spins)
        if rep == 0:
            e_sl = pot.compute(st, forces=False).energy
            print(f"system: {L}x{L} square lattice, J={J*1e3} meV, D={D*1e3} meV (Bloch), K={K*1e3} meV, "
                  f"B={B} T, mu={MU} muB, alpha={ALPHA}, dt={DT} fs, {steps} steps; spin-steps/s = N steps / time")
            print(f"energy of the same random configuration: spinlat {e_sl:.9f} eV", end="")
            if sp is not None:
                e_sp = sp["energy_meV"] * 1e-3
                zee = -MU * B * spins[:, 2].sum()  # in units of μB·T
                zeeman_shift = zee * (sp["mu_B"] * 1e-3 - sl.units.MU_B)
                print(f", Spirit {e_sp:.9f} eV, difference {e_sl - e_sp:.3e} eV (Zeeman μB difference accounts "
                      f"for {-zeeman_shift:.3e} eV; per spin {(e_sl - e_sp)/n:.2e} eV)")
            else:
                print()
        print(f"run {rep + 1}/{repeat}   M spin-steps/s: wall clock | CPU time of this process")
        print(f"{'case':14s} {'spinlat wall':>12s} {'Spirit wall':>11s} {'ratio':>6s} | {'spinlat CPU':>11s} "
              f"{'Spirit CPU':>10s} {'ratio':>6s} | {'final E spinlat (eV)':>20s} {'Spirit (eV)':>12s}")
        for solver, temp in CASES:
            out, wall, cpu = run_spinlat(st, pot, solver, steps, temp)
            e_final = pot.compute(out, forces=False).energy
            name = f"{solver} T={temp:g}K"
            rw, rc = n * steps / wall / 1e6, n * steps / cpu / 1e6
            if sp is not None:
                w2, c2, e2 = sp[solver, temp]
                sw, sc = n * steps / w2 / 1e6, n * steps / c2 / 1e6
                ratios[solver, temp].append((rw / sw, rc / sc))
                print(f"{name:14s} {rw:12.2f} {sw:11.2f} {rw / sw:6.2f} | {rc:11.2f} {sc:10.2f} {rc / sc:6.2f} | "
                      f"{e_final:20.6f} {e2:12.6f}")
            else:
                print(f"{name:14s} {rw:12.2f} {'-':>11s} {'-':>6s} | {rc:11.2f} {'-':>10s} {'-':>6s} | {e_final:20.6f}")
    if have_spirit and repeat > 1:
        print("median ratio spinlat/Spirit over the runs (wall | CPU):")
        for (solver, temp), r in ratios.items():
            r = np.array(r)
            print(f"  {solver} T={temp:g}K: {np.median(r[:, 0]):.2f} | {np.median(r[:, 1]):.2f}   "
                  f"(wall range {r[:, 0].min():.2f}-{r[:, 0].max():.2f})")


def _positive(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description="Frozen-lattice LLG, spinlat vs Spirit 2.2 (100x100 square lattice, "
                                             "SIB and Depondt, T = 0 and 100 K); see the module docstring.")
    ap.add_argument("steps", nargs="?", type=_positive, default=2000, help="LLG steps per case (default 2000)")
    ap.add_argument("--repeat", type=_positive, default=1, help="repetitions, to show the spread (default 1)")
    args = ap.parse_args()
    main(args.steps, args.repeat)
