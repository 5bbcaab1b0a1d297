"""mMACE evaluation speed vs mace-torch's plain ScaleShiftMACE with identical hyperparameters.

Times energy + forces + magnetic forces (mMACE) and energy + forces (ScaleShiftMACE) per atom for
bcc Fe supercells of 128, 1 024 and 8 192 atoms on CPU in float64 and float32, prints the ratio
(goal: mMACE ≤ 1.3× plain MACE) and the peak resident memory. A CUDA section times float32 on the
GPU when there is one, and says it is skipped otherwise.

A last section (``--nve``) runs ``SpinLatticeNVE`` with an mMACE potential (float64, the same
hyperparameters) at 1 024 atoms and prints the model calls per step and the fraction of the step
time spent outside the model call (goal: ≤ 5 %), split into graph building/copies inside
``MagneticMACE._evaluate`` and the integrator itself.

``--baseline DIR`` also times the ``MagneticMACEModel`` of another spinlat checkout (e.g. the
commit before a change, from ``git archive``) with the same hyperparameters, interleaved with ours
in the same process, and prints new/old ratios: the before/after figure that a loaded machine
cannot spoil.

Run: python benchmarks/bench_mmace.py [--sizes 128 1024 8192] [--repeats 3] [--soc both|true|false]
     [--nve-atoms 1024] [--nve-steps 5] [--no-nve] [--only-nve] [--baseline DIR]
"""

from __future__ import annotations

import argparse
import gc
import resource
import time
import warnings


def parser() -> argparse.ArgumentParser:
    """The command line (built before torch and mace-torch are imported: ``--help`` answers at once)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[128, 1024, 8192])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--soc", choices=["both", "true", "false"], default="both")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--dtypes", nargs="+", default=["float64", "float32"], choices=["float64", "float32"],
                    help="8 192 atoms in float64 need ~30 GB of memory")
    ap.add_argument("--nve-atoms", type=int, default=1024)
    ap.add_argument("--nve-steps", type=int, default=5)
    ap.add_argument("--no-nve", action="store_true")
    ap.add_argument("--only-nve", action="store_true")
    ap.add_argument("--baseline", default=None, help="another spinlat checkout whose mMACE model is timed alongside")
    return ap


if __name__ == "__main__":  # before the heavy imports below
    ARGS = parser().parse_args()

import numpy as np  # noqa: E402

from spinlat.potentials.mmace import safe_imports  # noqa: F401,E402  -- mace-torch and e3nn, torch.load safe
import torch  # noqa: E402

warnings.filterwarnings("ignore")

import spinlat as sl  # noqa: E402
from spinlat.potentials.mmace.graph import build_batch  # noqa: E402
from spinlat.potentials.mmace.model import DEFAULTS, MagneticMACEModel, default_dtype  # noqa: E402

HYPER = dict(r_max=5.0, num_bessel=8, num_polynomial_cutoff=5, max_ell=3, num_interactions=2,
             hidden_irreps="32x0e+32x1o", correlation=3, MLP_irreps="16x0e", radial_MLP=[64, 64, 64],
             avg_num_neighbors=58.0)


def bcc_fe(n_atoms, seed=0):
    reps = {128: (4, 4, 4), 1024: (8, 8, 8), 8192: (16, 16, 16)}.get(n_atoms)
    if reps is None:
        k = round((n_atoms / 2) ** (1 / 3))
        reps = (k, k, k)
    a = 2.8665
    rng = np.random.default_rng(seed)
    st = sl.State([[0, 0, 0], [a / 2, a / 2, a / 2]], [26, 26], cell=np.eye(3) * a, pbc=True,
                  moments=[2.2, 2.2]).repeat(reps)
    n = len(st)
    return st.copy(positions=st.positions + rng.normal(0, 0.05, (n, 3)), spins=rng.normal(size=(n, 3)))


def plain_mace(dtype, hyper=None):
    """mace-torch's ScaleShiftMACE (Fe only) with the hyperparameters ``hyper`` (default :data:`HYPER`)."""
    from e3nn import o3
    from mace.modules import RealAgnosticInteractionBlock, RealAgnosticResidualInteractionBlock, ScaleShiftMACE

    hp = HYPER if hyper is None else hyper
    with default_dtype(torch.float64):
        torch.manual_seed(0)
        model = ScaleShiftMACE(
            atomic_inter_scale=1.0, atomic_inter_shift=0.0, r_max=hp["r_max"], num_bessel=hp["num_bessel"],
            num_polynomial_cutoff=hp["num_polynomial_cutoff"], max_ell=hp["max_ell"],
            interaction_cls=RealAgnosticResidualInteractionBlock, interaction_cls_first=RealAgnosticInteractionBlock,
            num_interactions=hp["num_interactions"], num_elements=1,
            hidden_irreps=o3.Irreps(hp["hidden_irreps"]), MLP_irreps=o3.Irreps(hp["MLP_irreps"]),
            atomic_energies=np.zeros(1), avg_num_neighbors=hp["avg_num_neighbors"], atomic_numbers=[26],
            correlation=hp["correlation"], gate=torch.nn.functional.silu, radial_MLP=hp["radial_MLP"])
    return model.to(dtype)


def mace_batch(batch):
    """mace-torch's data dict from our graph (mace's vectors are pos[receiver] − pos[sender] + shift)."""
    ei = batch["edge_index"]
    return {"positions": batch["positions"], "node_attrs": batch["node_attrs"],
            "edge_index": torch.stack([ei[1], ei[0]]), "shifts": batch["shifts"],
            "unit_shifts": torch.zeros_like(batch["shifts"]), "cell": batch["cell"], "batch": batch["batch"],
            "ptr": batch["ptr"], "head": torch.zeros(len(batch["ptr"]) - 1, dtype=torch.int64, device=ei.device)}


def timed(fns: dict, repeats, sync=lambda: None) -> dict:
    """Best wall time of each callable; calls are interleaved so that load drifts hit all alike."""
    for fn in fns.values():  # warm-up
        fn()
    sync()
    best = {k: np.inf for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            sync()
            best[k] = min(best[k], time.perf_counter() - t0)
    return best


def baseline_model_class(root):
    """``MagneticMACEModel`` of the spinlat checkout at ``root``, imported as package ``_baseline_mmace``."""
    import importlib.util
    import sys
    from pathlib import Path

    pkg = Path(root) / "spinlat" / "potentials" / "mmace"
    spec = importlib.util.spec_from_file_location("_baseline_mmace", pkg / "__init__.py",
                                                  submodule_search_locations=[str(pkg)])
    module = importlib.util.module_from_spec(spec)
    sys.modules["_baseline_mmace"] = module
    spec.loader.exec_module(module)
    return importlib.import_module("_baseline_mmace.model").MagneticMACEModel


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run(sizes, repeats, socs, device="cpu", dtypes=(torch.float64, torch.float32), baseline=None):
    sync = (lambda: torch.cuda.synchronize()) if device == "cuda" else (lambda: None)
    rows = []
    for dtype in dtypes:
        plain = plain_mace(dtype).to(device)
        models = {soc: MagneticMACEModel.build([26], soc=soc, dtype=dtype, seed=0, **HYPER).to(device) for soc in socs}
        if baseline is not None:
            models.update({f"old{soc}": baseline.build([26], soc=soc, dtype=dtype, seed=0, **HYPER).to(device)
                           for soc in socs})
        for n in sizes:
            st = bcc_fe(n)
            batch = build_batch([st], HYPER["r_max"], [26], dtype=dtype, device=device)
            mb = mace_batch(batch)
            if device == "cuda":
                torch.cuda.reset_peak_memory_stats()
            fns = {"plain": lambda: plain(dict(mb), compute_force=True)}
            for soc, model in models.items():
                fns[soc] = (lambda model=model: model(batch, compute_forces=True, compute_magnetic_forces=True))
            best = timed(fns, repeats, sync)
            t_plain = best.pop("plain")
            line = {"dtype": str(dtype).replace("torch.", ""), "atoms": n, "edges": batch["edge_index"].shape[1],
                    "plain_us": 1e6 * t_plain / n}
            for soc, t in best.items():
                line[f"soc={soc}_us"] = 1e6 * t / n
                line[f"soc={soc}_ratio"] = t / t_plain
            for soc in socs:
                if f"old{soc}" in best:
                    line[f"soc={soc}_new/old"] = best[soc] / best[f"old{soc}"]
            line["peak_MB"] = (torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else peak_rss_mb())
            rows.append(line)
            print("  ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in line.items()), flush=True)
            del batch, mb
            gc.collect()
    return rows


def nve_overhead(n_atoms, steps, dtype="float64", hyper=None):
    """Time SpinLatticeNVE steps with mMACE; fraction of the step time outside the model call."""
    from spinlat.potentials import MagneticMACE

    hyper = dict(HYPER if hyper is None else hyper)
    pot = MagneticMACE.create(["Fe"], soc=True, seed=0, dtype=dtype, m_max=3.0, **hyper)
    st = bcc_fe(n_atoms)
    rng = np.random.default_rng(1)
    st = st.copy(velocities=rng.normal(0, 0.005, (len(st), 3)))
    model = pot.model
    inner = model.forward
    clock = {"model": 0.0, "calls": 0, "evaluate": 0.0}

    def timed_forward(*a, **k):
        t0 = time.perf_counter()
        out = inner(*a, **k)
        clock["model"] += time.perf_counter() - t0
        clock["calls"] += 1
        return out

    evaluate = pot._evaluate

    def timed_evaluate(*a, **k):
        t0 = time.perf_counter()
        out = evaluate(*a, **k)
        clock["evaluate"] += time.perf_counter() - t0
        return out

    model.forward = timed_forward
    pot._evaluate = timed_evaluate
    integ = sl.integrators.SpinLatticeNVE(0.5)
    st = integ.run(st, pot, 1)  # warm-up (initial evaluation, neighbour list)
    clock.update(model=0.0, calls=0, evaluate=0.0)
    t0 = time.perf_counter()
    integ.run(st, pot, steps)
    total = time.perf_counter() - t0
    outside = total - clock["model"]
    graph = clock["evaluate"] - clock["model"]
    print(f"{len(st)} atoms, {dtype}, hidden {hyper['hidden_irreps']}, max_ell {hyper['max_ell']}, "
          f"r_max {hyper['r_max']}: {total / steps:.3f} s/step, {clock['calls'] / steps:.2f} model calls/step "
          f"({clock['model'] / max(clock['calls'], 1):.3f} s each); outside the model call "
          f"{100 * outside / total:.1f} % of the step (graph building + copies {100 * graph / total:.1f} %, "
          f"integrator {100 * (total - clock['evaluate']) / total:.1f} %)  [goal ≤ 5 %]", flush=True)
    return outside / total


def main(args):
    if args.threads:
        torch.set_num_threads(args.threads)
    socs = {"both": (True, False), "true": (True,), "false": (False,)}[args.soc]
    print(f"mMACE vs ScaleShiftMACE, hyperparameters {HYPER}")
    print(f"time per atom in µs for energy + forces (+ magnetic forces for mMACE); torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    if args.only_nve:
        args.sizes = []
    print("== CPU ==")
    baseline = baseline_model_class(args.baseline) if args.baseline else None
    run(args.sizes, args.repeats, socs, dtypes=tuple(getattr(torch, d) for d in args.dtypes), baseline=baseline)
    print("== CUDA float32 ==")
    if not torch.cuda.is_available():
        print("no GPU, skipped")
    else:
        rows = run(args.sizes, args.repeats, socs, device="cuda", dtypes=(torch.float32,))
        for r in rows:
            print(f"{r['atoms']} atoms: plain {1e6 / r['plain_us']:.0f} atoms/s; "
                  + "; ".join(f"{k[:-3]} {1e6 / v:.0f} atoms/s" for k, v in r.items() if k.endswith("_us") and k != "plain_us"))
    if not args.no_nve:
        print("== SpinLatticeNVE with mMACE (CPU) ==")
        nve_overhead(args.nve_atoms, args.nve_steps)
        small = dict(HYPER, r_max=4.0, max_ell=2, hidden_irreps="16x0e+16x1o", radial_MLP=[32, 32], num_bessel=6,
                     correlation=2, avg_num_neighbors=14.0)
        nve_overhead(args.nve_atoms, args.nve_steps, hyper=small)  # the small model of the examples


if __name__ == "__main__":
    main(ARGS)
