"""Training accuracy of a small mMACE model on synthetic teacher data within a wall-clock budget.

The issue's goal: a small model trained on teacher data for at most 10 minutes on 2 CPU cores
reaches, on held-out teacher configurations, energy RMSE ≤ 5 meV/atom, force RMSE ≤ 100 meV/Å and
magnetic-force RMSE ≤ 100 meV/μB. This script generates bcc Fe soc=True teacher data
(:func:`spinlat.datasets.teacher`, synthetic), trains for ``--minutes`` minutes *including* data
generation, graph building and the final evaluation, and prints the held-out RMSEs and wall time.

    python benchmarks/train_accuracy.py --minutes 10

Options select the model size (``--hidden``, ``--max-ell``, ``--radial``), float32/float64,
batch size, learning rate and schedule, loss weights and the number of training configurations.
"""

from __future__ import annotations

import argparse
import time
import warnings


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="total wall-clock budget, minutes")
    ap.add_argument("--system", default="Fe", choices=["Fe", "Ni", "FeNi"])
    ap.add_argument("--n-train", type=int, default=200)
    ap.add_argument("--n-test", type=int, default=40)
    ap.add_argument("--hidden", default="16x0e+16x1o")
    ap.add_argument("--max-ell", type=int, default=2)
    ap.add_argument("--correlation", type=int, default=2)
    ap.add_argument("--radial", type=int, nargs="+", default=[32, 32])
    ap.add_argument("--r-max", type=float, default=4.0)
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--scheduler", default="cosine_time", choices=["plateau", "cosine_time"])
    ap.add_argument("--energy-weight", type=float, default=100.0)
    ap.add_argument("--forces-weight", type=float, default=1.0)
    ap.add_argument("--magnetic-forces-weight", type=float, default=10.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--save", help="write the trained model here")
    args = ap.parse_args(argv)
    import torch  # after the arguments: --help answers without torch and mace-torch

    from spinlat import datasets
    from spinlat.potentials import MagneticMACE

    warnings.filterwarnings("ignore", category=UserWarning)
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    train_set = datasets.teacher(args.system, args.n_train, seed=args.seed, soc=True)
    test_set = datasets.teacher(args.system, args.n_test, seed=1000 + args.seed, soc=True)
    t_data = time.perf_counter() - t0
    # leave room for the held-out evaluation (a few seconds) inside the budget
    budget = args.minutes - (time.perf_counter() - t0) / 60.0 - 0.4
    hyper = dict(r_max=args.r_max, max_ell=args.max_ell, hidden_irreps=args.hidden, radial_MLP=args.radial,
                 num_bessel=6, correlation=args.correlation, MLP_irreps="16x0e")
    pot = MagneticMACE.train(train_set, soc=True, seed=args.seed, max_minutes=budget, epochs=100_000,
                             dtype=args.dtype, batch_size=args.batch_size, lr=args.lr, scheduler=args.scheduler,
                             energy_weight=args.energy_weight, forces_weight=args.forces_weight,
                             magnetic_forces_weight=args.magnetic_forces_weight, patience=10_000, progress=False,
                             **hyper)
    err = pot.evaluate(test_set)
    wall = time.perf_counter() - t0
    s = pot.training_summary
    print(f"system {args.system}, {args.n_train} train / {args.n_test} held-out configs, {args.dtype}, "
          f"{torch.get_num_threads()} threads; model {hyper}")
    print(f"options: batch {args.batch_size}, lr {args.lr} ({args.scheduler}), weights E/F/h "
          f"{args.energy_weight}/{args.forces_weight}/{args.magnetic_forces_weight}")
    print(f"data {t_data:.0f} s, training {s['seconds']:.0f} s ({s['epochs']} epochs, best epoch "
          f"{s['best']['epoch']}), total wall time {wall:.0f} s = {wall / 60:.2f} min")
    print(f"held-out RMSE: E {err['energy_rmse']:.2f} meV/atom (goal ≤ 5), F {err['forces_rmse']:.1f} meV/Å "
          f"(goal ≤ 100), h {err['magnetic_forces_rmse']:.1f} meV/μB (goal ≤ 100)")
    if args.save:
        pot.save(args.save)
    return err


if __name__ == "__main__":
    main()
