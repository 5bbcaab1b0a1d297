"""Whole-machine speed and memory per atom: spinlat vs LAMMPS SPIN, side by side, at scale.

System (as ``bench_nve_lammps.py``): bcc Fe, EAM(Fe_mm.eam.fs) + Bethe-Slater exchange
(3.4 Å; 0.02726 eV, 0.2171, 1.841 Å) + Zeeman 1 T, random spins of 2.2 μB, 100 K Maxwell
velocities, dt = 0.1 fs. Sizes are 2·nx·ny·nz atoms (``--sizes 16384,131072``: the box is
(c, c, 2c) cells or a cube when the size allows).

speed (default): atom-steps/s of
  - ``SpinLatticeNVE`` on 1 and ``--threads`` numba threads, against LAMMPS ``fix nve/spin
    lattice moving`` on 1 and ``--ranks`` MPI ranks (``mpirun -np R lmp``);
  - ``SpinLatticeLangevin(dt, 300 K, friction 0.01/fs, α = 0.1)`` against LAMMPS ``fix
    langevin/spin 300 0.1`` + ``fix langevin 300 300 0.1 ps`` + ``fix nve/spin``.
  Each rate is the best (and, printed after the table, the median) of ``--repeats`` windows of
  ``--atom-steps`` atom-steps; spinlat's 1- and
  N-thread windows alternate in one process (``numba.set_num_threads``), LAMMPS runs its windows
  as consecutive ``run`` commands in one process and reports each ``Loop time``; the spinlat
  windows are taken before and after the LAMMPS ones. The best window is robust to other load on
  the machine; the load average is printed beside the figures.

memory (``--memory``): peak memory per atom for a single point (energy, forces, magnetic forces)
and for an NVE run of 3 steps, each size in a fresh process:
  - spinlat ``tracemalloc``: the peak of NumPy/Python allocations from building the State to the
    end of the run (arrays allocated inside numba kernels are not seen: the RSS figure is);
  - spinlat ``RSS``: peak resident set size (VmHWM) minus the resident size before the State is
    built, measured after imports and warm-up runs of 54 and 8 192 atoms that compile or load every
    kernel (threaded ones too), with the freed heap then returned (``malloc_trim``) and the peak
    restarted (``/proc/self/clear_refs``): the growth is the run's own memory, not code or caches;
  - LAMMPS: its own "Per MPI rank memory allocation" (summed over ranks), and max RSS of the
    ``lmp`` process minus that of the same input with 2 atoms.
  Both codes hold the same physics; LAMMPS keeps one half neighbour list for EAM and a full one
  for the spin pair style, spinlat one compact full list (partner + shift index, 6 B/pair) whose
  row tails are the EAM half list, the EAM pair tables (none with ``--low-memory``: EAM(low_memory=
  True)), the exchange couplings and the spin colour classes (see README and
  ``bench_memory_breakdown.py``).

LAMMPS needs ``LD_LIBRARY_PATH=<venv>/lib`` (set here for the subprocesses) and mpich's
``mpirun`` from the same venv (``--venv``, default: the running interpreter's prefix).

Usage:
  python benchmarks/bench_scaling.py [--sizes 16384,131072] [--threads 2] [--ranks 2] [--repeats 3]
  python benchmarks/bench_scaling.py --memory [--sizes 2000,16000,128000,1024000] [--low-memory | --tabled]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_nve_lammps as base  # noqa: E402  (the system and its potential)

LANGEVIN = {"temperature": 300.0, "friction": 0.01, "damping": 0.1}  # K, 1/fs, Gilbert α


def cells_for(n):
    """(nx, ny, nz) with 2·nx·ny·nz == n: a cube if possible, else (c, c, 2c)."""
    m = n // 2
    if 2 * m != n:
        raise SystemExit(f"size {n}: bcc boxes hold an even number of atoms")
    c = round(m ** (1 / 3))
    if c ** 3 == m:
        return (c, c, c)
    c = round((m / 2) ** (1 / 3))
    if 2 * c ** 3 == m:
        return (c, c, 2 * c)
    raise SystemExit(f"size {n}: not 2·c³ or 4·c³ atoms")


def load():
    return os.getloadavg()[0]


# ---------------------------------------------------------------------------------- spinlat side
def make_integrator(kind, seed=1):
    from spinlat.integrators import SpinLatticeLangevin, SpinLatticeNVE

    if kind == "nve":
        return SpinLatticeNVE(base.DT)
    return SpinLatticeLangevin(base.DT, LANGEVIN["temperature"], LANGEVIN["friction"], LANGEVIN["damping"],
                               seed=seed)


def spinlat_windows(st, kind, steps, repeats, threads, out, low_memory="auto", samples=None):
    """Alternate windows of ``steps`` steps on 1 and ``threads`` threads (one integrator and one
    potential, so the neighbour list and colouring are built once); best times go to ``out``,
    every window's time to ``samples[t]`` (a list per thread count) when given."""
    import numba

    pot = base.potential(low_memory=low_memory)
    integ = make_integrator(kind)
    state = st
    for t in sorted({1, threads}):  # compile and warm up
        numba.set_num_threads(t)
        state = integ.run(state, pot, 2)
    for _ in range(repeats):
        for t in sorted({1, threads}):
            numba.set_num_threads(t)
            t0 = time.perf_counter()
            state = integ.run(state, pot, steps)
            dt = time.perf_counter() - t0
            out[t] = min(out.get(t, np.inf), dt)
            if samples is not None:
                samples.setdefault(t, []).append(dt)
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)


# ----------------------------------------------------------------------------------- LAMMPS side
def lammps_input(cells, kind, steps, repeats, eam):
    nx, ny, nz = cells
    lines = ["units metal", "atom_style spin", "atom_modify map array", "boundary p p p",
             f"lattice bcc {base.A}", f"region box block 0 {nx} 0 {ny} 0 {nz}", "create_box 1 box",
             "create_atoms 1 box", "mass 1 55.845", f"set group all spin/atom/random 31 {base.MOMENT}",
             "velocity all create 100 4928459 dist gaussian",
             "pair_style hybrid/overlay eam/fs spin/exchange 3.4", f"pair_coeff * * eam/fs {eam} Fe",
             "pair_coeff * * spin/exchange exchange 3.4 {} {} {}".format(*base.J[1:]),
             "neighbor 0.3 bin", "neigh_modify every 1 delay 0 check yes",
             "fix zee all precession/spin zeeman 1.0 0.0 0.0 1.0"]
    if kind == "langevin":
        T, damp_ps = LANGEVIN["temperature"], 1e-3 / LANGEVIN["friction"]
        lines += [f"fix tspin all langevin/spin {T} {LANGEVIN['damping']} 21",
                  f"fix tlat all langevin {T} {T} {damp_ps} 48279"]
    lines += ["fix nve all nve/spin lattice moving", f"timestep {base.DT * 1e-3}", "thermo 1000", "run 2"]
    lines += [f"run {steps}"] * repeats
    return "\n".join(lines) + "\n"


def run_lammps(cells, kind, steps, repeats, ranks, venv):
    """Best ``Loop time`` (s) of ``repeats`` windows, the per-rank memory sum (MB) and max RSS (kB)."""
    env = dict(os.environ, LD_LIBRARY_PATH=f"{venv}/lib:{os.environ.get('LD_LIBRARY_PATH', '')}",
               OMP_NUM_THREADS="1")
    with tempfile.TemporaryDirectory() as tmp:
        inp, log = Path(tmp) / "in.lmp", Path(tmp) / "log.lammps"
        inp.write_text(lammps_input(cells, kind, steps, repeats, base.EAM_FILE))
        cmd = [f"{venv}/bin/mpirun", "-np", str(ranks), f"{venv}/bin/lmp", "-in", str(inp), "-log", str(log),
               "-screen", "none", "-nocite"]
        r = subprocess.run(["/usr/bin/time", "-f", "MAXRSS %M"] + cmd, env=env, capture_output=True, text=True)
        text = log.read_text() if log.exists() else ""
        if r.returncode != 0:
            raise RuntimeError(f"LAMMPS failed:\n{r.stderr[-2000:]}\n{text[-2000:]}")
    loops = [float(m) for m in re.findall(r"Loop time of ([0-9.eE+-]+) on", text)]
    mem = [float(m) for m in re.findall(r"Per MPI rank memory allocation \(min/avg/max\) = \S+ \| (\S+) \|", text)]
    rss = int(re.search(r"MAXRSS (\d+)", r.stderr).group(1))
    return {"best": min(loops[1:]), "median": float(np.median(loops[1:])), "mem_mb": max(mem) * ranks if mem else np.nan, "maxrss_kb": rss}


# ------------------------------------------------------------------------------------- speed mode
def speed(args):
    venv = args.venv
    print(f"spinlat vs LAMMPS SPIN, bcc Fe EAM + exchange + Zeeman, dt = {base.DT} fs; best of {args.repeats} "
          f"windows; {os.cpu_count()} cores; load average at start {load():.1f}")
    rows = []
    for n in args.sizes:
        cells = cells_for(n)
        st = base.build_state(cells)
        steps = max(2, int(round(args.atom_steps / n)))
        for kind in ("nve", "langevin"):
            ours, windows = {}, {}
            load0 = load()
            eam = "auto" if args.eam is None else args.eam
            spinlat_windows(st, kind, steps, args.repeats, args.threads, ours, eam, windows)
            lmp, lmp_med = {}, {}
            if not args.skip_lammps:
                for ranks in sorted({1, args.ranks}):
                    res = run_lammps(cells, kind, steps, args.repeats, ranks, venv)
                    lmp[ranks], lmp_med[ranks] = res["best"], res["median"]
                spinlat_windows(st, kind, steps, args.repeats, args.threads, ours, eam, windows)  # after LAMMPS too
            row = {"n": n, "kind": kind, "steps": steps, "load": 0.5 * (load0 + load())}
            row.update({f"ours_{t}": n * steps / v for t, v in ours.items()})
            row.update({f"lmp_{r}": n * steps / v for r, v in lmp.items()})
            row.update({f"med_ours_{t}": n * steps / float(np.median(v)) for t, v in windows.items()})
            row.update({f"med_lmp_{r}": n * steps / v for r, v in lmp_med.items()})
            rows.append(row)
            print(json.dumps(row), flush=True)
    T, R = args.threads, args.ranks
    print()
    print(f"{'N':>8s} {'integrator':>9s} {'ours 1t':>10s} {f'ours {T}t':>10s} {'LAMMPS 1r':>10s} "
          f"{f'LAMMPS {R}r':>10s} {f'{T}t/1t':>7s} {f'{R}r/1r':>7s} {f'ours/LAMMPS':>12s} {'load':>5s}")
    for r in rows:
        l1, lr = r.get("lmp_1", np.nan), r.get(f"lmp_{R}", np.nan)
        print(f"{r['n']:8d} {r['kind']:>9s} {r['ours_1']:10.4g} {r[f'ours_{T}']:10.4g} {l1:10.4g} {lr:10.4g} "
              f"{r[f'ours_{T}'] / r['ours_1']:7.2f} {lr / l1:7.2f} {r[f'ours_{T}'] / lr:12.2f} {r['load']:5.1f}")
    print(f"(atom-steps/s; ours/LAMMPS = spinlat on {T} threads over LAMMPS on {R} MPI ranks)")
    print(f"the same ratios from the median window of each (robust to cores whose speed changes from window "
          f"to window, see bench_core_speed.py):")
    for r in rows:
        lr = r.get(f"med_lmp_{R}", np.nan)
        print(f"{r['n']:8d} {r['kind']:>9s} {T}t/1t {r[f'med_ours_{T}'] / r['med_ours_1']:5.2f}   "
              f"ours/LAMMPS {r[f'med_ours_{T}'] / lr:5.2f}")


# ------------------------------------------------------------------------------------ memory mode
MEMORY_CHILD = r"""
import ctypes, gc, json, sys, tracemalloc
sys.path.insert(0, sys.argv[1])
import numpy as np
import bench_nve_lammps as base
from spinlat.integrators import SpinLatticeNVE

def status_kb(key):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(key + ":"))

cells, mode, eam = tuple(json.loads(sys.argv[2])), sys.argv[3], json.loads(sys.argv[4])
def potential():
    return base.potential("auto" if eam is None else eam)
# compile / load every kernel first (54 atoms: serial, tabled EAM; 8 192: threaded), then give the freed heap
# back to the system and restart the peak: the growth below is the run's own memory
for warm in (base.build_state((3, 3, 3)), base.build_state((16, 16, 16))):
    SpinLatticeNVE(base.DT).run(warm, potential(), 2)
    potential().compute(warm, forces=True, magnetic_forces=True)
del warm
gc.collect()
ctypes.CDLL("libc.so.6").malloc_trim(0)
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # VmHWM := VmRSS (Linux >= 4.0)
rss0 = status_kb("VmRSS")
tracemalloc.start()
st = base.build_state(cells)
pot = potential()
if mode == "single":
    ev = pot.compute(st, forces=True, magnetic_forces=True)
else:
    out = SpinLatticeNVE(base.DT).run(st, pot, 3)
_, peak = tracemalloc.get_traced_memory()
tracemalloc.stop()
maxrss = status_kb("VmHWM")
n = len(st)
print(json.dumps({"n": n, "traced": peak / n, "rss": (maxrss - rss0) * 1024 / n, "rss0_mb": rss0 / 1024}))
"""


def memory(args):
    here = str(Path(__file__).resolve().parent)
    lean = "" if args.eam is None else f" (spinlat EAM low_memory={args.eam!r})"
    print(f"peak memory per atom (bytes), spinlat vs LAMMPS (1 MPI rank){lean}; load average {load():.1f}")
    print(f"{'N':>8s} {'single tracemalloc':>19s} {'single RSS':>11s} {'NVE tracemalloc':>16s} {'NVE RSS':>9s} "
          f"{'LAMMPS report':>14s} {'LAMMPS RSS':>11s} {'NVE RSS/LAMMPS RSS':>19s}")
    base_rss = None
    if not args.skip_lammps:
        base_rss = run_lammps((1, 1, 1), "nve", 2, 1, 1, args.venv)["maxrss_kb"]
    for n in args.sizes:
        cells = cells_for(n)
        res = {}
        for mode in ("single", "nve"):
            # run outside the repository: ``python -c`` puts the working directory first on
            # sys.path, which would shadow the spinlat chosen by PYTHONPATH
            r = subprocess.run([sys.executable, "-c", MEMORY_CHILD, here, json.dumps(cells), mode,
                                json.dumps(args.eam)],
                               capture_output=True, text=True, cwd=tempfile.gettempdir())
            if r.returncode != 0:
                raise RuntimeError(r.stderr[-3000:])
            res[mode] = json.loads(r.stdout.strip().splitlines()[-1])
        lr = lm = np.nan
        if not args.skip_lammps:
            lmp = run_lammps(cells, "nve", 3, 1, 1, args.venv)
            lr = (lmp["maxrss_kb"] - base_rss) * 1024 / n
            lm = lmp["mem_mb"] * 1e6 / n
        print(f"{n:8d} {res['single']['traced']:19.0f} {res['single']['rss']:11.0f} {res['nve']['traced']:16.0f} "
              f"{res['nve']['rss']:9.0f} {lm:14.0f} {lr:11.0f} {res['nve']['rss'] / lr:19.2f}", flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default=None, help="atom counts, comma-separated (2·c³ or 4·c³)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--ranks", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--atom-steps", type=float, default=5e5, help="atom-steps per timed window")
    p.add_argument("--memory", action="store_true", help="memory per atom instead of speed")
    p.add_argument("--skip-lammps", action="store_true")
    p.add_argument("--low-memory", action="store_true", help="spinlat's EAM(low_memory=True) (no per-pair tables)")
    p.add_argument("--tabled", action="store_true", help="spinlat's EAM(low_memory=False) (per-pair tables)")
    p.add_argument("--venv", default=sys.prefix, help="virtual environment holding lmp and mpirun")
    args = p.parse_args()
    args.eam = True if args.low_memory else False if args.tabled else None  # None: the EAM default
    default = "2000,16000,128000,1024000" if args.memory else "16384,131072"
    args.sizes = [int(s) for s in (args.sizes or default).split(",")]
    (memory if args.memory else speed)(args)


if __name__ == "__main__":
    main()
