"""A plain clone runs: shipped example data, no paths outside the repository, licence and citation."""

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import spinlat as sl
from conftest import EAM_FE, TB2J_FE, bcc_fe
from spinlat.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
OUTSIDE = re.compile(r"\.\./shared|shared/data|[\"']shared[\"']|/work/")


def _user_facing_files():
    yield ROOT / "README.md"
    for p in sorted((ROOT / "examples").rglob("*")):
        if p.is_file():
            yield p
    for p in sorted((ROOT / "benchmarks").glob("*.py")):
        yield p


def test_readme_examples_and_benchmarks_read_nothing_outside_the_repository():
    bad = []
    for p in _user_facing_files():
        for k, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
            if OUTSIDE.search(line):
                bad.append(f"{p.relative_to(ROOT)}:{k}: {line.strip()}")
    assert not bad, "paths outside the repository:\n" + "\n".join(bad)


def test_shipped_data_files_exist_and_are_package_data():
    import tomllib

    names = sl.data.files()
    assert set(names) == {"Fe_mm.eam.fs", "bccFe_TB2J_exchange.out"}
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["spinlat.data"]
    for name in names:
        p = sl.data.path(name)
        assert p.is_file() and p.is_absolute() and p.parent == ROOT / "spinlat" / "data"
        assert any(Path(name).match(pat) for pat in patterns), f"{name} is not declared as package data"
        assert name in (ROOT / "spinlat" / "data" / "README.md").read_text()  # source and citation written down
    with pytest.raises(InputError, match="Fe_mm.eam.fs"):
        sl.data.path("Fe.eam.alloy")


def _sha256(p):
    return hashlib.sha256(Path(p).read_bytes()).hexdigest()


def test_shipped_eam_file_is_the_reference_one():
    from spinlat.potentials import EAM

    p = sl.data.path("Fe_mm.eam.fs")
    assert _sha256(p) == "d7b15f435a3f5192e8ed264d0dcbc052f1d5641ba5db610eab88199d77d20f7c"
    # the published bcc Fe lattice constant and cohesive energy of this potential: 2.8553 Å, 4.122 eV
    ideal = bcc_fe((3, 3, 3), a=2.8553, rattle=0.0)
    assert EAM(p).compute(ideal).energy / len(ideal) == pytest.approx(-4.122, abs=1e-3)
    st = bcc_fe((3, 3, 3), rattle=0.05, seed=2)
    ev = EAM(p).compute(st, forces=True, magnetic_forces=False)
    if EAM_FE.exists():
        ref = EAM(EAM_FE).compute(st, forces=True, magnetic_forces=False)
        assert ev.energy == ref.energy and np.array_equal(ev.forces, ref.forces)


def test_shipped_tb2j_file_is_the_reference_one():
    p = sl.data.path("bccFe_TB2J_exchange.out")
    assert _sha256(p) == "a935b7ac436edd199264ec5f7564b7af3d12780f2874a556542a2b04eadc7ac2"
    cell, ham = sl.io.read_tb2j(p)
    assert len(cell) == 1 and ham.n_pairs == 171  # 342 entries: every pair with its reverse
    if TB2J_FE.exists():
        cell_ref, ham_ref = sl.io.read_tb2j(TB2J_FE)
        st = cell.repeat(3).copy(spins=np.random.default_rng(0).normal(size=(27, 3)))
        assert ham.compute(st).energy == ham_ref.compute(st).energy


def test_demo_config_builds_from_any_directory(tmp_path, monkeypatch):
    from spinlat import config

    monkeypatch.chdir(tmp_path)
    cfg = config.load(ROOT / "examples" / "demo_bccfe.yaml")
    pot = config.build_potential(cfg)
    st = config.build_structure(cfg)
    assert len(st) == 432 and np.isfinite(pot.compute(st).energy)


@pytest.mark.slow
def test_readme_snippet_runs_in_a_fresh_directory(tmp_path):
    text = (ROOT / "README.md").read_text()
    snippet = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    assert "sim.run(1000)" in snippet
    snippet = snippet.replace("sim.run(1000)", "sim.run(20)")  # fewer steps; everything else as written
    (tmp_path / "snippet.py").write_text(snippet + "\nprint('frames', len(traj), 'energy', relaxed is not None)\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    r = subprocess.run([sys.executable, "snippet.py"], cwd=tmp_path, capture_output=True, text=True, env=env,
                       timeout=1800)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out.h5").is_file() and "frames 3 energy True" in r.stdout


def test_licence_and_citation():
    import tomllib

    import yaml

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    licence = (ROOT / "LICENSE").read_text()
    assert licence.startswith("MIT License") and "Copyright (c) 2026 spinlat developers" in licence
    assert project["license"] == "MIT" and project["license-files"] == ["LICENSE"]  # PEP 639 (no deprecated table)
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))
    assert cff["cff-version"] == "1.2.0" and cff["type"] == "software"
    assert cff["license"] == "MIT" and cff["version"] == project["version"]
    assert cff["title"].startswith("spinlat") and cff["authors"] and cff["message"]
    refs = {r["title"]: r for r in cff["references"]}
    mmace = refs["Equivariant Many-body Message Passing Interatomic Potentials for Magnetic Materials"]
    assert mmace["year"] == 2026 and mmace["identifiers"][0]["value"] == "arXiv:2604.08143"
    assert [a["family-names"] for a in mmace["authors"]][:1] == ["Ho"] and len(mmace["authors"]) == 14
    assert any(r.get("collection-title", "").startswith("Advances in Neural Information Processing Systems")
               and r["year"] == 2022 for r in refs.values())  # MACE
    dois = {r.get("doi") for r in refs.values()}
    assert {"10.1080/14786430310001613264", "10.1016/j.cpc.2021.107938"} <= dois  # the shipped data's sources
    for r in cff["references"]:
        assert r["authors"] and r["year"] and r["type"] in ("article", "conference-paper")


def _reads_sys_argv(tree) -> list:
    """Lines where Python code (not a string holding a child script) reads ``sys.argv``."""
    import ast

    return [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr == "argv"
            and isinstance(n.value, ast.Name) and n.value.id == "sys"]


def test_every_benchmark_parses_its_arguments_with_argparse():
    """bench_llg_spirit.py read sys.argv by hand (``--help`` was taken for the step count and
    failed), bench_pair_search.py and bench_mmace_reference_side.py took no --help at all (the
    first ran its whole benchmark). Each benchmark now has an ArgumentParser and reads no
    sys.argv itself (child scripts it runs, held in strings, may)."""
    import ast

    bad = {}
    for p in sorted((ROOT / "benchmarks").glob("*.py")):
        if p.name == "bench_mmace_nve_drift.py":  # the coordinator's, changed elsewhere
            continue
        tree = ast.parse(p.read_text(encoding="utf-8"))
        parser = any(isinstance(n, ast.Attribute) and n.attr == "ArgumentParser" for n in ast.walk(tree))
        if not parser or _reads_sys_argv(tree):
            bad[p.name] = "no ArgumentParser" if not parser else f"sys.argv read on lines {_reads_sys_argv(tree)}"
    assert not bad


@pytest.mark.parametrize("name", ["bench_llg_spirit.py", "bench_pair_search.py", "bench_mmace_reference_side.py"])
def test_benchmarks_answer_help(name):
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / name), "--help"], capture_output=True, text=True,
                         timeout=600, cwd=ROOT)
    assert out.returncode == 0 and out.stdout.startswith(f"usage: {name}"), out.stderr[-2000:]


_HELP_WITHOUT_TORCH = r"""
import contextlib, io, runpy, sys
for name in ("torch", "mace", "e3nn"):  # an import of these now fails at once
    sys.modules[name] = None
bad = []
for path in sys.argv[1:]:
    sys.argv, sys.path[0] = [path, "--help"], path.rpartition("/")[0]  # as `python path --help` runs it
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            runpy.run_path(path, run_name="__main__")
        bad.append(f"{path}: ran without answering --help")
    except SystemExit as exc:
        if exc.code not in (0, None) or "usage:" not in out.getvalue():
            bad.append(f"{path}: --help exited with {exc.code!r}")
    except BaseException as exc:
        bad.append(f"{path}: {type(exc).__name__}: {exc}")
print("\n".join(bad))
"""


def test_benchmarks_and_examples_answer_help_before_importing_torch():
    """``--help`` of bench_mmace.py, bench_mmace_batched.py and train_accuracy.py took 20-34 s:
    they imported torch and mace-torch (and built nothing yet) before parsing their arguments.
    Every benchmark and example now answers --help with torch, mace-torch and e3nn unimportable,
    in one interpreter (spinlat itself imported once): no clock, the blocked imports show it."""
    scripts = [str(p) for p in sorted((ROOT / "benchmarks").glob("*.py")) + sorted((ROOT / "examples").glob("*.py"))
               if p.name != "_example.py"]  # a helper module
    out = subprocess.run([sys.executable, "-c", _HELP_WITHOUT_TORCH, *scripts], capture_output=True, text=True,
                         timeout=600, cwd=ROOT)
    assert out.returncode == 0 and not out.stdout.strip(), out.stdout + out.stderr[-3000:]
