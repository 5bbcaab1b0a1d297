"""Reference side of ``bench_mmace_batched.py``: times the reference magnetic MACE (mace-torch pull
request 1244, ``MagneticScaleShiftMACE``) in ITS OWN environment (``.venv-maceref``); never
imports spinlat (the reference package is also called ``mace``).

    python bench_mmace_reference_side.py SPEC.json

SPEC holds the device, dtype, repeats, deadline (seconds of wall time this script may use), the
hyperparameters and a list of cases {"label", "npz"}: each npz file holds one system or several
replicas (``positions_k``, ``cell_k``, ``numbers_k``, ``magmoms_k`` for k = 0..K−1). For every
case it times one model call on the whole batch (energy, forces −∂E/∂r and magnetic forces
−∂E/∂m by autograd, as spinlat's side does; graph building excluded) and prints one JSON line
{"label", "atoms", "seconds"} or {"label", "error"} (e.g. out of memory).
"""

import argparse
import json
import time
import warnings

if __name__ == "__main__":  # before the reference's imports: --help works without them
    _ap = argparse.ArgumentParser(description="Times the reference magnetic MACE (mace-torch PR 1244) in its own "
                                              "environment on the cases of SPEC (module docstring); one JSON line "
                                              "per case.")
    _ap.add_argument("spec", help="SPEC.json written by bench_mmace_batched.py")
    ARGS = _ap.parse_args()

warnings.filterwarnings("ignore")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from ase import Atoms  # noqa: E402
from mace import data as mace_data  # noqa: E402  -- before e3nn: e3nn 0.4.4 reads its constants with torch.load
from mace import modules  # noqa: E402
from mace.tools import AtomicNumberTable, torch_geometric  # noqa: E402
from e3nn import o3  # noqa: E402


def build(hp, dtype):
    torch.manual_seed(0)
    torch.set_default_dtype(torch.float64)
    model = modules.MagneticScaleShiftMACE(
        r_max=hp["r_max"], num_bessel=hp["num_bessel"], num_polynomial_cutoff=hp["num_polynomial_cutoff"],
        max_ell=hp["max_ell"], m_max=[hp["m_max"]], num_mag_radial_basis=hp["num_moment_basis"],
        max_m_ell=hp["max_ell_m"],
        interaction_cls=modules.interaction_classes["MagneticRealAgnosticResidueSpinOrbitCoupledDensityInteractionBlock"],
        interaction_cls_first=modules.interaction_classes["MagneticRealAgnosticSpinOrbitCoupledDensityInteractionBlock"],
        num_interactions=hp["num_interactions"], num_elements=1, hidden_irreps=o3.Irreps(hp["hidden_irreps"]),
        MLP_irreps=o3.Irreps(hp["MLP_irreps"]), atomic_energies=np.array([[0.0]]),
        avg_num_neighbors=hp["avg_num_neighbors"], atomic_numbers=[26], correlation=hp["correlation"],
        gate=torch.nn.functional.silu, radial_MLP=hp["radial_MLP"], atomic_inter_scale=1.0, atomic_inter_shift=0.0,
        num_mag_radial_basis_one_body=4, use_magmom_one_body=True)
    return model.to({"float32": torch.float32, "float64": torch.float64}[dtype])


def batch_of(npz, r_max, device):
    """The reference's own data pipeline (as its MagneticMACECalculator): one batch of all replicas."""
    z_table = AtomicNumberTable([26])
    keyspec = mace_data.KeySpecification(info_keys={}, arrays_keys={"magmom": "mace_magmom"})
    data = []
    k = 0
    while f"positions_{k}" in npz:
        atoms = Atoms(numbers=npz[f"numbers_{k}"], positions=npz[f"positions_{k}"], cell=npz[f"cell_{k}"], pbc=True)
        atoms.arrays["mace_magmom"] = npz[f"magmoms_{k}"]
        config = mace_data.config_from_atoms(atoms, key_specification=keyspec, head_name="Default")
        data.append(mace_data.AtomicData.from_config(config, z_table=z_table, cutoff=r_max, heads=["Default"]))
        k += 1
    loader = torch_geometric.dataloader.DataLoader(dataset=data, batch_size=len(data), shuffle=False, drop_last=False)
    return next(iter(loader)).to(device)


def main():
    with open(ARGS.spec) as fh:
        spec = json.load(fh)
    start = time.monotonic()
    deadline = start + float(spec["deadline"])
    device, dtype, hp = spec["device"], spec["dtype"], spec["hyperparameters"]
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    torch.set_num_threads(int(spec.get("threads", torch.get_num_threads())))
    model = build(hp, dtype).to(device)
    for case in spec["cases"]:
        label = case["label"]
        if time.monotonic() > deadline:
            print(json.dumps({"label": label, "error": "skipped (time budget)"}), flush=True)
            continue
        try:
            torch.set_default_dtype({"float32": torch.float32, "float64": torch.float64}[dtype])
            base = batch_of(np.load(case["npz"]), hp["r_max"], device)
            n_atoms = int(base["positions"].shape[0])
            best = float("inf")
            for r in range(int(spec["repeats"]) + 1):      # the first call is a warm-up
                batch = base.clone().to_dict()
                sync()
                t0 = time.perf_counter()
                out = model(batch, compute_force=True, compute_magforces=True)
                sync()
                if r > 0:
                    best = min(best, time.perf_counter() - t0)
                del out, batch
                if time.monotonic() > deadline:
                    break
            if best == float("inf"):
                raise RuntimeError("time budget spent during the warm-up")
            print(json.dumps({"label": label, "atoms": n_atoms, "seconds": best}), flush=True)
        except Exception as exc:  # out of memory and anything else: reported, the next case runs
            msg = "out of memory" if "out of memory" in str(exc).lower() else f"{type(exc).__name__}: {exc}"[:300]
            print(json.dumps({"label": label, "error": msg}), flush=True)
        finally:
            if device == "cuda":
                torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
