"""Single-point speed and memory: spinlat vs LAMMPS on bcc Fe, side by side, in one run.

System: bcc Fe, a = 2.8665 Å, 2 000 / 16 000 / 128 000 atoms, thermal displacements (σ = 0.05 Å
per component), random spin directions, moments 2.2 μB.

Potential: ``EAM(Fe_mm.eam.fs) + BetheSlaterExchange(3.4, 0.02726, 0.2171, 1.841) +
Zeeman([0, 0, 1])`` — energy, forces and magnetic forces — against LAMMPS
``pair_style hybrid/overlay eam/fs spin/exchange 3.4`` + ``fix precession/spin zeeman``
(``atom_style spin``). If the exchange/Zeeman terms cannot be imported, EAM alone against
``pair_style eam/fs``.

How it is timed (one core each: ``NUMBA_NUM_THREADS=1``, one LAMMPS MPI rank, no OpenMP):

- spinlat: ``pot.compute(state, forces=True, magnetic_forces=True)`` repeated on the same
  state: the neighbour list is kept (its displacement check runs every call);
- LAMMPS: ``run N pre no post no`` with ``thermo 1`` on the static system (no integrator fix),
  so every step is one energy + force + fm evaluation on the kept neighbour lists;
- both: the same skin (``neighbor 0.3 bin`` in LAMMPS = spinlat's 0.3 Å); best of several
  batches (the mean of each batch is printed as the median too); "first" is one evaluation
  that builds the neighbour lists from scratch (spinlat: a new potential; LAMMPS: ``run 0``);
- each code and size runs in its own subprocess, so that memory figures do not mix:
  peak resident memory growth (VmHWM after the run minus VmRSS before building the system)
  per atom, and for spinlat also the peak of NumPy allocations (tracemalloc) per atom and the
  memory kept between calls (neighbour list + caches).

Run: python benchmarks/bench_single_point.py [--sizes 2000 16000 128000] [--seconds 2]
     [--threads 1] [--eam-only]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
EAM_FE = ROOT / "spinlat" / "data" / "Fe_mm.eam.fs"  # shipped with spinlat
A = 2.8665
MOMENT = 2.2
EXCHANGE = (3.4, 0.02726, 0.2171, 1.841)
FIELD = (0.0, 0.0, 1.0)


def _have_spin_terms() -> bool:
    try:
        from spinlat.potentials import BetheSlaterExchange, Zeeman  # noqa: F401
    except Exception:  # noqa: BLE001
        return False
    return True


def bcc_fe(n_atoms, seed=0):
    import spinlat as sl

    k = round((n_atoms / 2) ** (1 / 3))
    if 2 * k ** 3 != n_atoms:
        raise SystemExit(f"{n_atoms} atoms is not 2 k³")
    rng = np.random.default_rng(seed)
    st = sl.State([[0, 0, 0], [A / 2, A / 2, A / 2]], [26, 26], cell=np.eye(3) * A, pbc=True,
                  moments=[MOMENT, MOMENT]).repeat((k, k, k))
    n = len(st)
    return st.copy(positions=st.positions + rng.normal(0, 0.05, (n, 3)), spins=rng.normal(size=(n, 3)))


def potential(eam_only):
    from spinlat.potentials import EAM

    pot = EAM(EAM_FE)
    if not eam_only:
        from spinlat.potentials import BetheSlaterExchange, Zeeman

        pot = pot + BetheSlaterExchange(*EXCHANGE) + Zeeman(list(FIELD))
    return pot


def lammps_commands(eam_only):
    if eam_only:
        return [f"pair_style eam/fs", f"pair_coeff * * {EAM_FE} Fe"], []
    c, j1, j2, j3 = EXCHANGE
    pair = [f"pair_style hybrid/overlay eam/fs spin/exchange {c}", f"pair_coeff * * eam/fs {EAM_FE} Fe",
            f"pair_coeff * * spin/exchange exchange {c} {j1} {j2} {j3}"]
    fixes = [f"fix zee all precession/spin zeeman {np.linalg.norm(FIELD)} {FIELD[0]} {FIELD[1]} {FIELD[2]}",
             "fix_modify zee energy yes"]
    return pair, fixes


def _status(key):
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return float(line.split()[1]) / 1024.0  # MB
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _reset_peak():
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def worker_spinlat(n, seconds, eam_only):
    import tracemalloc

    pot = potential(eam_only)
    for warm in (bcc_fe(2 * 4 ** 3), bcc_fe(2 * 16 ** 3)):  # compile / load the numba kernels (serial, threaded)
        pot.compute(warm, forces=True, magnetic_forces=True)
    del warm
    st = bcc_fe(n)
    _reset_peak()
    rss0 = _status("VmRSS")
    tracemalloc.start()
    pot = potential(eam_only)
    t0 = time.perf_counter()
    ev = pot.compute(st, forces=True, magnetic_forces=True)
    first = time.perf_counter() - t0
    _, traced_peak = tracemalloc.get_traced_memory()
    ev = None  # noqa: F841
    kept, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    pot.compute(st, forces=True, magnetic_forces=True)
    t0 = time.perf_counter()
    pot.compute(st, forces=True, magnetic_forces=True)
    one = time.perf_counter() - t0
    reps = max(3, int(seconds / 5 / max(one, 1e-6)))
    times = []
    load0 = os.getloadavg()[0]
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(reps):
            pot.compute(st, forces=True, magnetic_forces=True)
        times.append((time.perf_counter() - t0) / reps)
    return dict(n=n, first=first, best=min(times), median=float(np.median(times)), reps=reps,
                rss_mb=_status("VmHWM") - rss0, traced_peak_mb=traced_peak / 2 ** 20, kept_mb=kept / 2 ** 20,
                load=(load0, os.getloadavg()[0]))


def worker_lammps(n, seconds, eam_only):
    sys.path.insert(0, str(ROOT / "tests"))
    from lammps_runner import _import_lammps, run_lammps

    if _import_lammps() is None:
        raise SystemExit("LAMMPS cannot be imported")
    st = bcc_fe(n)
    pair, fixes = lammps_commands(eam_only)
    kw = dict(pair=pair, fixes=fixes, pre=["neighbor 0.3 bin"])
    if not eam_only:
        kw.update(spins=st.spins, moments=st.moments)
    # batch size from a rough per-atom cost (a probe run would cost as much as the measurement)
    one = 2.0e-6 * n if eam_only else 4.0e-6 * n
    reps = max(3, int(seconds / 5 / one))
    _reset_peak()
    rss0 = _status("VmRSS")
    load0 = os.getloadavg()[0]
    res = run_lammps(st.positions, st.cell, st.numbers, repeat=reps, batches=5, **kw)
    times = res["seconds_per_eval_batches"]
    return dict(n=n, first=res["seconds_setup"], best=float(np.min(times)), median=float(np.median(times)),
                reps=reps, rss_mb=_status("VmHWM") - rss0, load=(load0, os.getloadavg()[0]))


def run_worker(kind, n, args, eam_only):
    env = dict(os.environ, NUMBA_NUM_THREADS=str(args.threads), OMP_NUM_THREADS="1")
    env["LD_LIBRARY_PATH"] = f"{Path(sys.prefix) / 'lib'}:{env.get('LD_LIBRARY_PATH', '')}"
    cmd = [sys.executable, __file__, "--worker", kind, "--n", str(n), "--seconds", str(args.seconds)]
    if eam_only:
        cmd.append("--eam-only")
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        print(f"[{kind} {n}] failed:\n{r.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(r.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[2000, 16000, 128000])
    ap.add_argument("--seconds", type=float, default=2.0, help="timed seconds per code and size")
    ap.add_argument("--threads", type=int, default=1, help="numba threads for spinlat (LAMMPS: 1 rank)")
    ap.add_argument("--eam-only", action="store_true")
    ap.add_argument("--worker", choices=["spinlat", "lammps"], help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    eam_only = args.eam_only or not _have_spin_terms()
    if args.worker:
        fn = worker_spinlat if args.worker == "spinlat" else worker_lammps
        print(json.dumps(fn(args.n, args.seconds, eam_only)))
        return

    what = "EAM" if eam_only else "EAM + BetheSlaterExchange + Zeeman"
    print(f"single-point energy + forces{'' if eam_only else ' + magnetic forces'}: {what}, bcc Fe")
    print(f"spinlat: {args.threads} numba thread(s); LAMMPS: 1 MPI rank; both skin 0.3 Å; "
          f"{os.cpu_count()} CPUs, load average at start {os.getloadavg()[0]:.2f}")
    hdr = (f"{'atoms':>7} | {'spinlat s/eval':>14} {'atoms/s':>10} | {'LAMMPS s/eval':>13} {'atoms/s':>10} | "
           f"{'speed ratio':>11} | {'first eval s (sl / lmp)':>23} | {'RSS B/atom (sl / lmp)':>21} | "
           f"{'numpy peak / kept B/atom':>24} | load")
    print(hdr)
    print("-" * len(hdr))
    rows = []
    for n in args.sizes:
        sl_ = run_worker("spinlat", n, args, eam_only)
        lm = run_worker("lammps", n, args, eam_only)
        rows.append((n, sl_, lm))
        if sl_ is None:
            continue
        b = 2 ** 20 / n
        s_rate = n / sl_["best"]
        if lm:
            l_rate = n / lm["best"]
            lmp = f"{lm['best']:13.3e} {l_rate:10.3e}"
            ratio = f"{s_rate / l_rate:10.2f}x"
            first = f"{sl_['first']:9.3f} / {lm['first']:9.3f}"
            rss = f"{sl_['rss_mb'] * b:9.0f} / {lm['rss_mb'] * b:9.0f}"
            load = f"{max(sl_['load'] + lm['load']):.1f}"
        else:
            lmp, ratio = f"{'n/a':>13} {'':>10}", f"{'n/a':>11}"
            first = f"{sl_['first']:9.3f} / {'n/a':>9}"
            rss = f"{sl_['rss_mb'] * b:9.0f} / {'n/a':>9}"
            load = f"{max(sl_['load']):.1f}"
        print(f"{n:7d} | {sl_['best']:14.3e} {s_rate:10.3e} | {lmp} | {ratio} | {first:>23} | {rss:>21} | "
              f"{sl_['traced_peak_mb'] * b:11.0f} / {sl_['kept_mb'] * b:10.0f} | {load}", flush=True)
    print("speed ratio = spinlat atoms/s ÷ LAMMPS atoms/s (> 1: spinlat faster); s/eval = best batch mean;")
    print("medians (spinlat / LAMMPS): " + ", ".join(
        f"{n}: {s['median']:.3e} / {l['median']:.3e}" for n, s, l in rows if s and l))


if __name__ == "__main__":
    main()
