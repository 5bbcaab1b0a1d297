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

Usage: ``python benchmarks/bench_llg_spirit.py [steps]``. Spirit runs with its own threads (OpenMP,
if built with it); spinlat's kernels here are serial numba. Both timings are printed; the machine
may be shared, so compare the ratio within one run.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import spinlat as sl
from spinlat.integrators import LLG
from spinlat.potentials import Heisenberg, UniaxialAnisotropy, Zeeman

L = 100
J, D, K, B, MU, ALPHA, DT = 0.010, 0.006, 0.0001, 5.0, 2.0, 0.1, 1.0  # eV, eV, eV, T, μB, -, fs

SPIRIT_CFG = f"""\
bravais_lattice sc
n_basis_cells {L} {L} 1
boundary_conditions 1 1 0
lattice_constant 1.0
mu_s {MU}
ddi_method 0
log_to_console 0
log_to_file 0
llg_output_any 0
"""


def spinlat_system(spins):
    unit = sl.State([[0, 0, 0]], [26], cell=np.diag([1.0, 1.0, 10.0]), pbc=[True, True, False], moments=[MU])
    st = unit.repeat((L, L, 1))
    st = st.copy(spins=spins)
    pot = (Heisenberg.from_neighbors(unit, J=[J], D=[D], dmi="bloch")
           + UniaxialAnisotropy(K, [0, 0, 1]) + Zeeman([0, 0, B]))
    return st, pot


def run_spinlat(st, pot, solver, steps):
    integ = LLG(DT, damping=ALPHA, solver=solver)
    integ.run(st, pot, 3)  # compile / warm up
    t0 = time.perf_counter()
    out = integ.run(st, pot, steps)
    wall = time.perf_counter() - t0
    return out, wall


def spirit_positions_and_run(spins, solvers, steps):
    from spirit import configuration, hamiltonian, parameters, simulation, state, system
    from spirit import constants

    res = {}
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "input.cfg"
        cfg.write_text(SPIRIT_CFG)
        with state.State(str(cfg), quiet=True) as p:
            hamiltonian.set_exchange(p, 1, [J * 1e3])
            hamiltonian.set_dmi(p, 1, [D * 1e3], chirality=1)
            hamiltonian.set_anisotropy(p, K * 1e3, [0, 0, 1])
            hamiltonian.set_field(p, B, [0, 0, 1])
            parameters.llg.set_timestep(p, DT * 1e-3)
            parameters.llg.set_damping(p, ALPHA)
            parameters.llg.set_output_general(p, any=False, initial=False, final=False)
            from spirit import geometry

            res["positions"] = np.array(geometry.get_positions(p)).reshape(-1, 3)
            s = spins  # spinlat's State is built on Spirit's positions, so site k is the same
            system.get_spin_directions(p)[:] = s
            system.update_data(p)
            res["energy_meV"] = system.get_energy(p)
            res["mu_B"] = constants.mu_B
            for name, solver in solvers.items():
                system.get_spin_directions(p)[:] = s
                system.update_data(p)
                t0 = time.perf_counter()
                simulation.start(p, simulation.METHOD_LLG, solver, n_iterations=steps, n_iterations_log=steps)
                res[name] = time.perf_counter() - t0
                res[name + "_final"] = np.array(system.get_spin_directions(p)).copy()
                system.update_data(p)
                res[name + "_final_energy_meV"] = system.get_energy(p)
    return res


def main(steps=2000):
    rng = np.random.default_rng(0)
    n = L * L
    spins = rng.normal(size=(n, 3))
    spins /= np.linalg.norm(spins, axis=1)[:, None]
    try:
        from spirit import simulation
        have_spirit = True
    except ImportError:
        have_spirit = False
        print("spirit not installed (pip install spirit): printing spinlat only")
    sp = None
    if have_spirit:
        sp = spirit_positions_and_run(spins, {"sib": simulation.SOLVER_SIB, "depondt": simulation.SOLVER_DEPONDT},
                                      steps)
        pos = sp["positions"]
    else:
        pos = sl.State([[0, 0, 0]], [26], cell=np.diag([1.0, 1.0, 10.0]), pbc=[True, True, False]).repeat(
            (L, L, 1)).positions
    st, pot = spinlat_system(spins)
    # use Spirit's atom order so that both codes see the same spin on the same site
    st = sl.State(pos, [26] * n, cell=np.diag([float(L), float(L), 10.0]), pbc=[True, True, False],
                  moments=np.full(n, MU), spins=spins)
    e_sl = pot.compute(st, forces=False).energy
    print(f"system: {L}x{L} square lattice, J={J*1e3} meV, D={D*1e3} meV (Bloch), K={K*1e3} meV, B={B} T, "
          f"mu={MU} muB, alpha={ALPHA}, dt={DT} fs, {steps} steps")
    print(f"energy of the same random configuration: spinlat {e_sl:.9f} eV", end="")
    if sp is not None:
        e_sp = sp["energy_meV"] * 1e-3
        zee = -MU * B * spins[:, 2].sum()  # in units of μB·T
        zeeman_shift = zee * (sp["mu_B"] * 1e-3 - sl.units.MU_B)
        print(f", Spirit {e_sp:.9f} eV, difference {e_sl - e_sp:.3e} eV "
              f"(Zeeman μB difference accounts for {-zeeman_shift:.3e} eV; per spin {(e_sl - e_sp)/n:.2e} eV)")
    else:
        print()
    print(f"{'solver':8s} {'spinlat Mspin-steps/s':>22s} {'Spirit Mspin-steps/s':>21s} {'ratio':>7s} "
          f"{'final E spinlat (eV)':>21s} {'final E Spirit (eV)':>20s}")
    for solver in ("sib", "depondt"):
        out, wall = run_spinlat(st, pot, solver, steps)
        rate = n * steps / wall / 1e6
        e_final = pot.compute(out, forces=False).energy
        if sp is not None:
            rate_sp = n * steps / sp[solver] / 1e6
            print(f"{solver:8s} {rate:22.2f} {rate_sp:21.2f} {rate / rate_sp:7.2f} {e_final:21.6f} "
                  f"{sp[solver + '_final_energy_meV'] * 1e-3:20.6f}")
        else:
            print(f"{solver:8s} {rate:22.2f} {'-':>21s} {'-':>7s} {e_final:21.6f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
