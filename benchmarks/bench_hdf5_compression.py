"""Trajectory writing: speed and size of each HDF5 compression setting, against the time of the
steps a frame stands for.

System: bcc Fe, a = 2.8665 Å, 16 000 atoms (20×20×20 conventional cells), thermal displacements
(σ = 0.05 Å), Maxwell-Boltzmann velocities at 300 K, spins tilted from +z by Gaussian angles
(σ ≈ 0.3 rad, a ferromagnet near room temperature), moments 2.2 μB; every frame is a fresh
perturbation, so that no chunk repeats an earlier one.

For each setting (uncompressed, lzf, gzip levels 1, 2, 3, 4, 6, 9) ``TrajectoryWriter`` writes ``--frames``
frames with ``flush_every=10`` (as :class:`spinlat.Simulation` does: one fsync per flush) into a
fresh file: milliseconds per frame (best of ``--repeat``), bytes per frame on disk, and the
time of reading every frame back with :class:`spinlat.io.Trajectory`. The reference is one
``SpinLatticeNVE`` step of ``EAM(Fe_mm.eam.fs) + BetheSlaterExchange(3.4, 0.02726, 0.2171,
1.841)`` on the same system: the table gives the cost of writing a frame every ``--every`` steps
as a fraction of the run. The files of the gzip settings are also checked with ``h5dump`` when it
is installed (Debian: ``apt-get install hdf5-tools``), which has no LZF filter.

There is no peer here (no other code writes this format); the ratios are against our own
uncompressed write and our own step.

Run: python benchmarks/bench_hdf5_compression.py [--cells 20] [--frames 20] [--repeat 2]
     [--every 10] [--out /tmp]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
EAM_FE = ROOT / "spinlat" / "data" / "Fe_mm.eam.fs"  # shipped with spinlat
A = 2.8665
SETTINGS = (None, "lzf", 1, 2, 3, 4, 6, 9)


def system(cells, seed=0):
    import spinlat as sl
    from spinlat import units

    rng = np.random.default_rng(seed)
    st = sl.State([[0, 0, 0], [A / 2] * 3], [26, 26], cell=np.eye(3) * A, pbc=True, moments=[2.2, 2.2])
    st = st.repeat(cells)
    n = len(st)
    sigma_v = np.sqrt(units.K_B * 300.0 / (st.masses[:, None] * units.AMU_A2_PER_FS2_IN_EV))
    return st.copy(positions=st.positions + rng.normal(0, 0.05, (n, 3)),
                   spins=np.array([0, 0, 1.0]) + rng.normal(0, 0.3, (n, 3)),
                   velocities=rng.normal(size=(n, 3)) * sigma_v)


def frames(st, count, seed=1):
    rng = np.random.default_rng(seed)
    n = len(st)
    out = []
    for _ in range(count):
        out.append(st.copy(positions=st.positions + rng.normal(0, 0.01, (n, 3)),
                           spins=st.spins + rng.normal(0, 0.05, (n, 3)),
                           velocities=st.velocities + rng.normal(0, 1e-4, (n, 3))))
    return out


def label(setting):
    return "none" if setting is None else "lzf" if setting == "lzf" else f"gzip {setting}"


def write(path, states, setting):
    from spinlat.io import TrajectoryWriter

    if path.exists():
        path.unlink()
    t0 = time.perf_counter()
    with TrajectoryWriter(path, states[0], compression=setting, flush_every=10) as w:
        for k, st in enumerate(states):
            w.write(st, step=10 * k, time=5.0 * k, potential_energy=-4.0 * len(st))
    return time.perf_counter() - t0


def read(path):
    from spinlat.io import Trajectory

    t0 = time.perf_counter()
    with Trajectory(path) as traj:
        for st in traj:
            st.spins.sum()
    return time.perf_counter() - t0


def step_time(st, steps=3):
    from spinlat.integrators import SpinLatticeNVE
    from spinlat.potentials import EAM, BetheSlaterExchange

    pot = EAM(str(EAM_FE)) + BetheSlaterExchange(3.4, 0.02726, 0.2171, 1.841)
    nve = SpinLatticeNVE(0.5)
    st = nve.run(st, pot, 1)  # compile, build lists
    t0 = time.perf_counter()
    nve.run(st, pot, steps)
    return (time.perf_counter() - t0) / steps


def h5dump_reads(path):
    exe = shutil.which("h5dump")
    if exe is None:
        return None
    for name in ("/moments", "/spins", "/total_energy"):
        r = subprocess.run([exe, "-d", name, str(path)], capture_output=True, text=True)
        if r.returncode != 0 or "error" in (r.stdout + r.stderr).lower():
            return False
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", type=int, default=20, help="conventional cells per edge (2 atoms each)")
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--every", type=int, default=10, help="steps per frame of the reference run")
    ap.add_argument("--out", default=None, help="directory for the files (default: a temporary one)")
    args = ap.parse_args()

    st = system(args.cells)
    states = frames(st, args.frames)
    n = len(st)
    print(f"bcc Fe, {n} atoms, {args.frames} frames per file, flush_every=10, best of {args.repeat}")
    step = step_time(st)
    print(f"reference: one SpinLatticeNVE step of EAM + BetheSlaterExchange: {step * 1e3:.0f} ms; "
          f"a frame every {args.every} steps = {step * args.every * 1e3:.0f} ms of run per frame")
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="spinlat-bench-h5-"))
    rows = []
    for setting in SETTINGS:
        path = out / f"traj-{label(setting).replace(' ', '')}.h5"
        wall = min(write(path, states, setting) for _ in range(args.repeat))
        size = os.path.getsize(path)
        rd = read(path)
        rows.append((setting, wall / args.frames, size / args.frames, rd / args.frames, h5dump_reads(path)))
    base_w, base_s = rows[0][1], rows[0][2]
    print(f"{'setting':>8} {'write ms/frame':>15} {'x none':>7} {'MB/frame':>9} {'size/none':>9} "
          f"{'read ms/frame':>14} {'% of run':>9} {'h5dump':>7}")
    for setting, w, s, rd, dump in rows:
        frac = 100 * w / (step * args.every)
        dumped = "-" if dump is None else ("reads" if dump else "FAILS")
        print(f"{label(setting):>8} {w * 1e3:15.1f} {w / base_w:7.1f} {s / 1e6:9.3f} {s / base_s:9.3f} "
              f"{rd * 1e3:14.1f} {frac:9.2f} {dumped:>7}")
    if not args.out:
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
