"""Run inside the reference magnetic MACE environment (mace-torch PR 1244), never by pytest directly.

    python reference_side.py OUTDIR [--train]

Builds a small float64 ``MagneticScaleShiftMACE`` (Fe + Ni, one-body moment term on), optionally
trains it a few epochs with ``mace_run_train --model MagneticScaleShiftMACE`` and its magnetic
options on a small synthetic set, saves it as a ``.model`` pickle (as ``mace_run_train`` does),
exports it with spinlat's standalone exporter, and writes ``OUTDIR/reference.json``: a few
configurations with the reference's energy, forces and stress (from its ``MagneticMACECalculator``
around ``MagneticSCFMACE(use_scf=False)``) and magnetic forces (``magforces`` of the module).
"""

import importlib.util
import json
import subprocess
import sys
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")

import mace  # noqa: E402,F401  -- the reference package
import numpy as np  # noqa: E402
import torch  # noqa: E402
from ase import Atoms  # noqa: E402
from e3nn import o3  # noqa: E402
from mace import modules  # noqa: E402

HERE = Path(__file__).resolve().parent
EXPORTER = HERE.parents[1] / "spinlat" / "potentials" / "mmace" / "reference_export.py"


def configurations(n, seed):
    """bcc Fe-Ni 2×2×2 supercells, displaced, random moment vectors of random lengths."""
    rng = np.random.default_rng(seed)
    a = 2.8665
    base = np.array([[0, 0, 0], [0.5, 0.5, 0.5]])
    cells = []
    for k in range(n):
        frac = (np.array([[i, j, l] for i in range(2) for j in range(2) for l in range(2)])[:, None, :] + base).reshape(-1, 3)
        pos = frac * a + rng.normal(0, 0.08, (len(frac), 3))
        numbers = np.where(rng.random(len(frac)) < 0.3, 28, 26)
        mom = rng.normal(size=(len(frac), 3))
        mom *= (np.where(numbers == 28, 0.6, 2.2) * rng.uniform(0.6, 1.3, len(frac)) / np.linalg.norm(mom, axis=1))[:, None]
        if k == 0:
            mom[1] = 0.0                              # a vanishing moment
        atoms = Atoms(numbers=numbers, positions=pos, cell=np.eye(3) * 2 * a * (1 + 0.01 * k), pbc=True)
        atoms.arrays["mace_magmom"] = mom
        cells.append(atoms)
    return cells


def build():
    torch.manual_seed(0)
    return modules.MagneticScaleShiftMACE(
        r_max=4.0, num_bessel=6, num_polynomial_cutoff=5, max_ell=2, m_max=[3.0, 1.0], num_mag_radial_basis=6,
        max_m_ell=2,
        interaction_cls=modules.interaction_classes["MagneticRealAgnosticResidueSpinOrbitCoupledDensityInteractionBlock"],
        interaction_cls_first=modules.interaction_classes["MagneticRealAgnosticSpinOrbitCoupledDensityInteractionBlock"],
        num_interactions=2, num_elements=2, hidden_irreps=o3.Irreps("8x0e+8x1o"), MLP_irreps=o3.Irreps("8x0e"),
        atomic_energies=np.array([[-3.1, -2.4]]), avg_num_neighbors=10.0, atomic_numbers=[26, 28], correlation=3,
        gate=torch.nn.functional.silu, radial_MLP=[16, 16], atomic_inter_scale=1.3, atomic_inter_shift=0.05,
        num_mag_radial_basis_one_body=4, use_magmom_one_body=True)


def train(out: Path):
    """A few epochs of mace_run_train with the magnetic options on a synthetic labelled set."""
    rng = np.random.default_rng(7)
    teacher = build()
    data = []
    for atoms in configurations(8, 11):
        atoms.arrays["REF_magmom"] = atoms.arrays.pop("mace_magmom")
        res = evaluate(teacher, atoms, magmom_key="REF_magmom")
        atoms.info["REF_energy"] = res["energy"] + rng.normal(0, 0.01)
        atoms.arrays["REF_forces"] = np.array(res["forces"])
        atoms.arrays["REF_magforces"] = np.array(res["magnetic_forces"])
        atoms.info["REF_stress"] = np.array(res["stress"])
        data.append(atoms)
    from ase.io import write

    for atoms in data:
        atoms.info["config_type"] = "Default"
    write(out / "train.xyz", data[:6], format="extxyz")
    write(out / "valid.xyz", data[6:], format="extxyz")
    cmd = [sys.executable, "-m", "mace.cli.run_train", "--name", "ref", "--model", "MagneticScaleShiftMACE",
           "--train_file", str(out / "train.xyz"), "--valid_file", str(out / "valid.xyz"),
           "--E0s", "{26: -3.1, 28: -2.4}", "--energy_key", "REF_energy", "--forces_key", "REF_forces",
           "--magmom_key", "REF_magmom", "--magforces_key", "REF_magforces", "--compute_magforces", "True",
           "--interaction_first", "MagneticRealAgnosticSpinOrbitCoupledDensityInteractionBlock",
           "--interaction", "MagneticRealAgnosticResidueSpinOrbitCoupledDensityInteractionBlock",
           "--hidden_irreps", "8x0e+8x1o", "--MLP_irreps", "8x0e", "--r_max", "4.0", "--num_radial_basis", "6",
           "--max_L", "1", "--max_ell", "2", "--correlation", "3", "--radial_MLP", "[16, 16]",
           "--m_max", "3.0", "1.0", "--max_m_ell", "2", "--num_mag_radial_basis", "6",
           "--use_magmom_one_body", "True", "--num_mag_radial_basis_one_body", "4",
           "--batch_size", "2", "--valid_batch_size", "2", "--max_num_epochs", "2", "--default_dtype", "float64",
           "--device", "cpu", "--seed", "1", "--model_dir", str(out), "--checkpoints_dir", str(out / "ck"),
           "--results_dir", str(out / "res"), "--log_dir", str(out / "log"), "--save_cpu", "--loss", "weighted"]
    proc = subprocess.run(cmd, cwd=out, capture_output=True, text=True, timeout=900)
    model_file = out / "ref.model"
    if proc.returncode != 0 or not model_file.exists():
        (out / "train.log").write_text(proc.stdout[-20000:] + "\n" + proc.stderr[-20000:])
        return None
    return torch.load(model_file, map_location="cpu", weights_only=False)


def evaluate(model, atoms, magmom_key="mace_magmom"):
    """Energy, forces, stress through the reference calculator; magnetic forces from the module."""
    from mace.calculators.mace import MagneticMACECalculator
    from mace.modules.extensions import MagneticSCFMACE

    calc = MagneticMACECalculator(models=MagneticSCFMACE(model, use_scf=False), default_dtype="float64",
                                  magmom_key=magmom_key)
    atoms = atoms.copy()
    atoms.calc = calc
    energy = atoms.get_potential_energy()
    forces = atoms.get_forces()
    stress = atoms.get_stress(voigt=False)
    batch = calc._atoms_to_batch(atoms).to_dict()
    out = model(batch, compute_stress=False, compute_magforces=True)
    return {"energy": float(energy), "forces": forces.tolist(), "stress": stress.tolist(),
            "magnetic_forces": out["magforces"].detach().numpy().tolist(),
            "node_energy": out["node_energy"].detach().numpy().tolist()}


def main():
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    torch.set_default_dtype(torch.float64)
    models = {"built": build()}
    if "--train" in sys.argv:
        trained = train(out)
        if trained is not None:
            models["trained"] = (trained.magmom_mace if hasattr(trained, "magmom_mace") else trained).double()
    spec = importlib.util.spec_from_file_location("reference_export", EXPORTER)
    exporter = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(exporter)
    result = {"models": {}}
    for name, model in models.items():
        model = model.double()
        torch.save(model, out / f"{name}.model")
        exporter.export(model, out / f"{name}.safetensors")
        cases = []
        for atoms in configurations(3, 5):
            res = evaluate(model, atoms)
            res.update(numbers=atoms.numbers.tolist(), positions=atoms.positions.tolist(),
                       cell=atoms.cell.array.tolist(), magmoms=atoms.arrays["mace_magmom"].tolist())
            cases.append(res)
        result["models"][name] = cases
    result["trained"] = "trained" in models
    (out / "reference.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main()
