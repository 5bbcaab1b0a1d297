"""Importing and using mMACE leaves ``torch.load`` safe (mace-torch sets
TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 on import, which would let any later torch.load run pickled code)."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("mace")

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = r'''
import os, sys
import numpy as np
import torch

marker = sys.argv[1]


class Payload:
    def __reduce__(self):  # unpickling this object writes the marker file
        return (open, (marker, "w"))


torch.save({"weights": Payload()}, marker + ".pt")


def attempt(stage):
    try:
        torch.load(marker + ".pt")
        outcome = "LOADED"
    except Exception as exc:
        outcome = "refused " + type(exc).__name__
    print(stage, os.environ.get("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"), outcome, os.path.exists(marker))


import spinlat.potentials.mmace  # noqa: E402
from spinlat.potentials import MagneticMACE  # noqa: E402

attempt("import")
import spinlat as sl  # noqa: E402

pot = MagneticMACE.create(["Fe"], hidden_irreps="4x0e+4x1o", radial_MLP=[8], MLP_irreps="4x0e", max_ell=1,
                          num_interactions=1, r_max=3.5, num_bessel=4, avg_num_neighbors=8.0)
a = 2.8665
st = sl.State([[0, 0, 0], [a / 2, a / 2, a / 2]], [26, 26], cell=np.eye(3) * a, pbc=True, moments=[2.2, 2.2])
pot.compute(st)
pot.save(marker + ".mmace")
MagneticMACE.load(marker + ".mmace").compute(st)
import spinlat.training.loop  # noqa: E402,F401
import spinlat.training.data  # noqa: E402,F401

attempt("use")
'''


def _run(tmp_path, env_value):
    script = tmp_path / "payload.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    env.pop("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", None)
    if env_value is not None:
        env["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = env_value
    marker = tmp_path / "marker"
    r = subprocess.run([sys.executable, str(script), str(marker)], capture_output=True, text=True, env=env,
                       timeout=900)
    assert r.returncode == 0, r.stderr
    return [line.split() for line in r.stdout.splitlines() if line.split()[0] in ("import", "use")]


def test_pickle_payload_is_refused_after_importing_and_using_mmace(tmp_path):
    rows = _run(tmp_path, None)
    assert rows == [["import", "None", "refused", "UnpicklingError", "False"],
                    ["use", "None", "refused", "UnpicklingError", "False"]]
    assert not (tmp_path / "marker").exists()


def test_the_users_own_setting_is_kept(tmp_path):
    """Whoever set the variable before importing spinlat keeps their choice (and its risk)."""
    rows = _run(tmp_path, "0")
    assert [r[:2] for r in rows] == [["import", "0"], ["use", "0"]]


def test_every_module_importing_mace_or_e3nn_goes_through_safe_imports():
    """mace-torch and e3nn are imported only after spinlat.potentials.mmace.safe_imports (which
    restores the variable), in every spinlat module, benchmark and example."""
    files = [p for d in ("spinlat", "benchmarks", "examples") for p in (ROOT / d).rglob("*.py")]
    offenders = []
    for path in files:
        if path.name in ("safe_imports.py", "reference_export.py", "bench_mmace_reference_side.py"):
            # reference_export.py runs inside the reference's own venv (no spinlat there) and
            # unpickles a user-trusted .model file on purpose (--trust); the benchmark's reference
            # side runs there too and loads no file (it builds its model from hyperparameters)
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        first_guard, first_import = None, None
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
                if any(n.endswith("safe_imports") for n in names):
                    first_guard = min(first_guard or node.lineno, node.lineno)
                mods = [node.module or ""] if node.level == 0 else []
            elif isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            else:
                continue
            if any(m.split(".")[0] in ("mace", "e3nn") for m in mods):
                first_import = min(first_import or node.lineno, node.lineno)
        if first_import is not None and (first_guard is None or first_guard > first_import):
            offenders.append(f"{path.relative_to(ROOT)}:{first_import}")
    assert not offenders, f"mace/e3nn imported before spinlat.potentials.mmace.safe_imports: {offenders}"
