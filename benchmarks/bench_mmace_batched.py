"""Batched replicas with mMACE: throughput of ``MagneticMACE.compute_many`` against single calls,
and (on a GPU) mMACE at 1 000 – 100 000 atoms against the reference magnetic MACE and plain MACE.

Section ``replicas`` (default on CPU): K replicas (bcc Fe, displaced, random spins) of n atoms
each, K = 1, 4, 16, 64 and n = 16, 54, 128, energy + forces + magnetic forces through the public
API, float64: K single ``compute`` calls against one ``compute_many`` (its default edge budget per
model call, ``MagneticMACE.batch_edges``) and against ``compute_many`` in one model call
(``batch_edges=None``). Prints atoms/s and the speed-ups batched/single (per torch thread count
of ``--threads``, default 1) for two models: ``small`` (the examples' model: 16 channels, l ≤ 2,
r_max 4 Å) and ``standard`` (``bench_mmace.py``'s: 32 channels, l ≤ 3, r_max 5 Å; only K·n ≤
--max-atoms, its large batches take minutes). Single calls are timed on min(K, 8) replicas (each
costs the same); variants are interleaved, best of --repeats, and the load average is printed
beside every row (the machine may be shared).

Section ``large`` (default on CUDA): systems of about 1 000, 10 000 and 100 000 atoms (bcc Fe
supercells), energy + forces + magnetic forces (plain MACE: energy + forces), float32 on the GPU:
mMACE as one system (model call alone, and ``compute`` with its graph building), as N/128
replicas of 128 atoms in ``compute_many`` and one by one; mace-torch's ``ScaleShiftMACE`` with the
same hyperparameters on the same graphs; the reference ``MagneticScaleShiftMACE`` (mace-torch
pull request 1244, same hyperparameters, moment harmonics l ≤ 1, one-body term on) in its own
environment through ``bench_mmace_reference_side.py`` when a Python with it is found
(``--reference-python``, ``$SPINLAT_MACEREF_PYTHON`` or ``.venv-maceref/bin/python``). Prints
atoms/s and the ratios mMACE/reference and mMACE/plain MACE; out of memory is reported, not fatal.
mMACE and plain MACE are timed in this process on the same graphs; the reference, a different
package also named ``mace``, runs afterwards in its own process (60 % of the budget for ours, the
rest for it; model call alone, graph building excluded on both sides, best of --repeats after a
warm-up): on a dedicated GPU the runs do not disturb each other, on a shared CPU compare with care.
Every measurement checks the wall-time budget (--budget-s) first and is skipped once it is spent.

Run: python benchmarks/bench_mmace_batched.py [--device cpu|cuda] [--section replicas|large|all]
     [--quick] [--threads 1] [--models small standard] [--sizes 1000 10000 100000]
     [--repeats 3] [--budget-s 540] [--reference-python PATH]
``--quick`` shrinks every grid to seconds and uses the small model throughout (the path
``benchmarks/gpu_mmace.sh --device cpu --quick`` checks without a GPU).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path


def parser() -> argparse.ArgumentParser:
    """The command line (built before torch and mace-torch are imported: ``--help`` answers at once)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--section", choices=["replicas", "large", "all"], default=None)
    ap.add_argument("--quick", action="store_true", help="tiny grids: checks the script in seconds")
    ap.add_argument("--threads", type=int, nargs="+", default=[1], help="torch threads (CPU)")
    ap.add_argument("--models", nargs="+", choices=["small", "standard"], default=["small", "standard"])
    ap.add_argument("--counts", type=int, nargs="+", default=[1, 4, 16, 64], help="replica counts K")
    ap.add_argument("--atoms", type=int, nargs="+", default=[16, 54, 128], help="replica sizes n")
    ap.add_argument("--max-atoms", type=int, default=4096, help="largest K·n of the standard model")
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000], help="large-section sizes")
    ap.add_argument("--replica-atoms", type=int, default=128)
    ap.add_argument("--dtype", choices=["float32", "float64"], default=None)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--budget-s", type=float, default=None, help="wall-time budget of the whole run")
    ap.add_argument("--reference-python", default=None)
    return ap


if __name__ == "__main__":  # before the heavy imports below
    ARGS = parser().parse_args()

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_mmace import HYPER, bcc_fe, mace_batch, plain_mace, timed  # noqa: E402  -- same models, structures, timer

from spinlat.potentials.mmace import safe_imports  # noqa: E402,F401  -- mace-torch and e3nn, torch.load safe
import torch  # noqa: E402

warnings.filterwarnings("ignore")

from spinlat.potentials import MagneticMACE  # noqa: E402
from spinlat.potentials.mmace.graph import build_batch  # noqa: E402
from spinlat.potentials.mmace.hyperparameters import DEFAULTS  # noqa: E402
from spinlat.potentials.mmace.potential import BATCH_EDGES, edge_groups  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
#: the examples' small model (as bench_mmace.py's NVE section)
SMALL = dict(HYPER, r_max=4.0, max_ell=2, hidden_irreps="16x0e+16x1o", radial_MLP=[32, 32], num_bessel=6,
             correlation=2, avg_num_neighbors=14.0)
MODELS = {"small": SMALL, "standard": HYPER}  # (the names are parser()'s --models choices)


class Clock:
    """Wall-time budget: ``left()`` seconds until the deadline."""

    def __init__(self, seconds):
        self.deadline = time.monotonic() + float(seconds)

    def left(self):
        return self.deadline - time.monotonic()


def best_time(fn, repeats, sync, clock):
    """Best wall time of ``fn`` over ``repeats`` calls after one warm-up (None once the budget is spent)."""
    fn()
    sync()
    best = None
    for _ in range(repeats):
        if best is not None and clock.left() <= 0:
            break
        t0 = time.perf_counter()
        fn()
        sync()
        dt = time.perf_counter() - t0
        best = dt if best is None else min(best, dt)
    return best


def n_edges(states, r_max):
    from spinlat.potentials.mmace.graph import edges

    return [len(edges(st.positions, st.cell, st.pbc, r_max)[0]) for st in states]


# ----------------------------------------------------------------------------- replicas section
def replicas_section(device, models, sizes, counts, threads, repeats, max_atoms, dtype, clock):
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    print(f"== replicas: K × n atoms, E + F + magnetic forces through the API, {dtype}, {device} ==")
    print(f"{'model':9s} {'thr':>3s} {'n':>4s} {'K':>4s} {'edges/rep':>9s} {'calls':>5s} {'single at/s':>11s} "
          f"{'batched at/s':>12s} {'1-call at/s':>11s} {'batched/single':>14s} {'1-call/single':>13s} "
          f"{'load':>5s}", flush=True)
    rows = []
    for name in models:
        pot = MagneticMACE.create(["Fe"], soc=True, seed=0, m_max=3.0, device=device, dtype=dtype, **MODELS[name])
        budget = pot.batch_edges
        for n_threads in threads:
            if device == "cpu":
                torch.set_num_threads(n_threads)
            for n in sizes:
                pool = [bcc_fe(n, seed=s) for s in range(max(counts))]
                per_rep = int(np.mean(n_edges(pool[:2], pot.cutoff)))
                for K in counts:
                    atoms = K * len(pool[0])
                    if atoms > max_atoms.get(name, np.inf):
                        continue
                    if clock.left() <= 0:
                        print(f"{name:9s} {n_threads:3d} {len(pool[0]):4d} {K:4d}  skipped (time budget)", flush=True)
                        continue
                    states = pool[:K]
                    k_single = min(K, 8)
                    calls = 1 if budget is None else len(_groups(per_rep, K, budget))
                    fns = {"single": lambda: [pot.compute(st) for st in states[:k_single]],
                           "batched": lambda: pot.compute_many(states)}
                    if calls > 1:
                        fns["one"] = lambda: _one_call(pot, states)
                    # interleaved: a change of load on a shared machine hits every variant alike
                    best = timed(fns, repeats, sync)
                    t_single, t_batch = best["single"], best["batched"]
                    t_one = best.get("one", t_batch)
                    single = k_single * len(pool[0]) / t_single
                    batched, one = atoms / t_batch, atoms / t_one
                    row = dict(model=name, threads=n_threads, n=len(pool[0]), K=K, edges=per_rep, calls=calls,
                               single=single, batched=batched, one_call=one)
                    rows.append(row)
                    print(f"{name:9s} {n_threads:3d} {len(pool[0]):4d} {K:4d} {per_rep:9d} {calls:5d} {single:11.0f} "
                          f"{batched:12.0f} {one:11.0f} {batched / single:14.2f} {one / single:13.2f} "
                          f"{os.getloadavg()[0]:5.1f}", flush=True)
                    gc.collect()
            if device != "cpu":
                break  # threads do not apply to a GPU
    return rows


def _one_call(pot, states):
    """compute_many with no edge budget: every replica in one model call."""
    budget, pot.batch_edges = pot.batch_edges, None
    try:
        return pot.compute_many(states)
    finally:
        pot.batch_edges = budget


def _groups(per_rep, K, budget):
    return edge_groups([per_rep] * K, budget)


# -------------------------------------------------------------------------------- large section
def _is_oom(exc):
    return isinstance(exc, MemoryError) or "out of memory" in str(exc).lower()


def _attempt(fn, device):
    """fn() or the text of the error (out of memory reported as such)."""
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001  -- a benchmark reports and goes on
        return "out of memory" if _is_oom(exc) else f"{type(exc).__name__}: {str(exc)[:200]}"
    finally:
        gc.collect()
        if device == "cuda":
            torch.cuda.empty_cache()


def _save_npz(path, states):
    arrays = {}
    for k, st in enumerate(states):
        arrays.update({f"positions_{k}": st.positions, f"cell_{k}": st.cell, f"numbers_{k}": st.numbers,
                       f"magmoms_{k}": st.magnetic_moments})
    np.savez(path, **arrays)


def reference_python(given):
    for cand in (given, os.environ.get("SPINLAT_MACEREF_PYTHON"), ROOT / ".venv-maceref" / "bin" / "python"):
        if cand and Path(cand).is_file():
            return str(cand)
    return None


def large_section(device, sizes, replica_atoms, repeats, dtype, clock, ref_python, threads, hp):
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    hp = dict(hp)
    full = dict(DEFAULTS, **hp)
    print(f"== large systems: mMACE vs reference vs plain MACE, {dtype}, {device} "
          f"({'GPU ' + torch.cuda.get_device_name() if device == 'cuda' else f'{threads} threads'}) ==")
    print(f"hyperparameters {hp}; mMACE soc=True, moment harmonics l ≤ {full['max_ell_m']}; replicas of "
          f"{replica_atoms} atoms; atoms/s of E + F (+ magnetic forces)", flush=True)
    pot = MagneticMACE.create(["Fe"], soc=True, seed=0, m_max=3.0, device=device, dtype=dtype, **hp)
    plain = plain_mace(getattr(torch, dtype), hp).to(device)
    results, cases = {}, []
    tmp = Path(tempfile.mkdtemp(prefix="bench_mmace_batched_"))
    ours_until = clock.left() * (0.6 if ref_python else 1.0)   # the reference gets the rest
    mine = Clock(ours_until)
    for N in sizes:
        big = bcc_fe(N)
        K = max(1, round(len(big) / replica_atoms))
        reps = [bcc_fe(replica_atoms, seed=s) for s in range(K)]
        n_big, n_reps = len(big), K * len(reps[0])
        _save_npz(tmp / f"single_{N}.npz", [big])
        _save_npz(tmp / f"replicas_{N}.npz", reps)
        cases += [{"label": f"ref single {N}", "npz": str(tmp / f"single_{N}.npz")},
                  {"label": f"ref replicas {N}", "npz": str(tmp / f"replicas_{N}.npz")}]

        def model_only(model, batch, plain_model=False):
            if plain_model:
                mb = mace_batch(batch)
                return lambda: model(dict(mb), compute_force=True)
            return lambda: model(batch, compute_forces=True, compute_magnetic_forces=True)

        def run(label, atoms, make_fn):
            if mine.left() <= 0:
                results[label] = "skipped (time budget)"
            else:
                out = _attempt(lambda: best_time(make_fn(), repeats, sync, mine), device)
                results[label] = atoms / out if isinstance(out, float) else out
            show(label, results[label])

        dt = getattr(torch, dtype)
        run(f"mMACE single {N}", n_big,
            lambda: model_only(pot.model, build_batch([big], pot.cutoff, [26], dtype=dt, device=device)))
        run(f"mMACE single API {N}", n_big, lambda: (lambda: pot.compute(big)))
        run(f"mMACE replicas batched {N}", n_reps, lambda: (lambda: pot.compute_many(reps)))
        k1 = min(K, 16)
        run(f"mMACE replicas one by one {N}", k1 * len(reps[0]),
            lambda: (lambda: [pot.compute(st) for st in reps[:k1]]))
        run(f"mMACE replicas model-only {N}", n_reps,
            lambda: model_only(pot.model, build_batch(reps, pot.cutoff, [26], dtype=dt, device=device)))
        run(f"plain single {N}", n_big,
            lambda: model_only(plain, build_batch([big], pot.cutoff, [26], dtype=dt, device=device), True))
        run(f"plain replicas {N}", n_reps,
            lambda: model_only(plain, build_batch(reps, pot.cutoff, [26], dtype=dt, device=device), True))
    if ref_python is None:
        print("reference: not measured (no Python with the reference magnetic MACE: pass --reference-python, set "
              "SPINLAT_MACEREF_PYTHON or create .venv-maceref with scripts/setup_maceref.sh)", flush=True)
    elif clock.left() < 20:
        print("reference: skipped (time budget)", flush=True)
    else:
        spec = {"device": device, "dtype": dtype, "repeats": repeats, "deadline": clock.left() - 10,
                "threads": threads, "hyperparameters": full, "cases": cases}
        (tmp / "spec.json").write_text(json.dumps(spec))
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "LD_LIBRARY_PATH")}
        log = tmp / "reference.jsonl"   # one line per case as it finishes: kept if the run is stopped
        with open(log, "w") as fh:
            try:
                proc = subprocess.run([ref_python, str(Path(__file__).with_name("bench_mmace_reference_side.py")),
                                       str(tmp / "spec.json")], env=env, stdout=fh, stderr=subprocess.PIPE,
                                      text=True, timeout=max(clock.left(), 1.0))
                if proc.returncode != 0:
                    tail = proc.stderr.strip().splitlines()[-1:]
                    print(f"reference: exit {proc.returncode} {tail}", flush=True)
            except subprocess.TimeoutExpired:
                print("reference: stopped at the time budget (rows below: the cases it finished)", flush=True)
        lines = [json.loads(x) for x in log.read_text().splitlines() if x.startswith("{")]
        for x in lines:
            results[x["label"]] = x["atoms"] / x["seconds"] if "seconds" in x else x["error"]
            show(x["label"], results[x["label"]])
    print("-- ratios of throughput (atoms/s); > 1: mMACE faster --")
    for N in sizes:
        for ours, other, what in ((f"mMACE single {N}", f"ref single {N}", "mMACE/reference, one system"),
                                  (f"mMACE replicas model-only {N}", f"ref replicas {N}",
                                   "mMACE/reference, replicas in one batch"),
                                  (f"mMACE single {N}", f"plain single {N}", "mMACE/plain MACE, one system"),
                                  (f"mMACE replicas model-only {N}", f"plain replicas {N}",
                                   "mMACE/plain MACE, replicas in one batch"),
                                  (f"mMACE replicas batched {N}", f"mMACE replicas one by one {N}",
                                   "compute_many/compute, replicas"),
                                  (f"mMACE replicas batched {N}", f"mMACE single API {N}",
                                   "replicas batched/one system of the same size")):
            a, b = results.get(ours), results.get(other)
            ratio = f"{a / b:.2f}" if isinstance(a, float) and isinstance(b, float) else "n/a"
            print(f"{N:>7d} atoms  {what:45s} {ratio}", flush=True)
    return results


def show(label, value):
    text = f"{value:12.0f} atoms/s" if isinstance(value, float) else value
    print(f"  {label:38s} {text}", flush=True)


def main(args):
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("bench_mmace_batched: --device cuda, but torch sees no GPU")
    section = args.section or ("replicas" if args.device == "cpu" else "all")
    dtype = args.dtype or ("float64" if args.device == "cpu" else "float32")
    if args.quick:
        args.threads, args.models, args.counts, args.atoms = args.threads[:1], ["small"], [1, 4], [16]
        args.sizes, args.replica_atoms, args.repeats = [128, 432], 16, 1
        args.max_atoms = 64
    clock = Clock(args.budget_s if args.budget_s is not None else 1e9)
    print(f"torch {torch.__version__}, device {args.device}, {torch.get_num_threads()} threads available, "
          f"MagneticMACE.batch_edges default {BATCH_EDGES[args.device]} edges per model call, load average "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
    if section in ("replicas", "all"):
        replicas_section(args.device, args.models, args.atoms, args.counts, args.threads, args.repeats,
                         {"standard": args.max_atoms}, dtype, clock)
    if section in ("large", "all"):
        if args.device == "cpu":
            torch.set_num_threads(args.threads[-1])
        large_section(args.device, args.sizes, args.replica_atoms, args.repeats, dtype, clock,
                      reference_python(args.reference_python), torch.get_num_threads(),
                      SMALL if args.quick else HYPER)


if __name__ == "__main__":
    main(ARGS)
