"""Results go to stdout, progress and diagnostics to stderr — in the library as in the CLI.

A source scan holds the rule for every module outside ``spinlat/cli`` (where ``result()`` /
``log()`` decide): no ``print`` and no ``tqdm.write`` without ``file=sys.stderr``, no progress
bar on stdout. A tiny training run with ``progress=True`` then prints its epoch table to stderr
and nothing to stdout."""

import ast
import warnings
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "spinlat"


def _writes_to_stdout(source: str):
    """(line, call) of every print / tqdm.write / tqdm(...) call without ``file=sys.stderr``."""
    out = []
    for n in ast.walk(ast.parse(source)):
        if not isinstance(n, ast.Call):
            continue
        f = n.func
        name = (f.id if isinstance(f, ast.Name) else
                f"{ast.unparse(f.value)}.{f.attr}" if isinstance(f, ast.Attribute) else "")
        if name not in ("print", "tqdm.write", "tqdm", "sys.stdout.write"):
            continue
        file = next((k.value for k in n.keywords if k.arg == "file"), None)
        if name == "sys.stdout.write" or file is None or ast.unparse(file) != "sys.stderr":
            out.append((n.lineno, ast.unparse(n)[:80]))
    return out


def test_the_library_writes_progress_and_diagnostics_to_stderr_only():
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "cli" in path.relative_to(PACKAGE).parts:
            continue
        for line, call in _writes_to_stdout(path.read_text(encoding="utf-8")):
            bad.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {call}")
    assert not bad, "writes to stdout outside the CLI:\n" + "\n".join(bad)


def test_the_scan_finds_writes_to_stdout():
    src = ("import sys\nprint('x')\nprint('y', file=sys.stderr)\ntqdm.write('z')\n"
           "tqdm.write('w', file=sys.stderr)\nbar = tqdm(range(3))\nsys.stdout.write('v')\n")
    assert [line for line, _ in _writes_to_stdout(src)] == [2, 4, 6, 7]


def test_training_progress_goes_to_stderr(capfd):
    from spinlat import datasets, training

    warnings.filterwarnings("ignore", category=UserWarning)
    data = datasets.teacher("Fe", 4, seed=5)
    tiny = dict(r_max=4.0, max_ell=1, hidden_irreps="4x0e+4x1o", radial_MLP=[8], num_bessel=4, correlation=2,
                MLP_irreps="4x0e", num_moment_basis=3, num_exchange_basis=2)
    capfd.readouterr()
    training.train(data[:3], valid=data[3:], epochs=2, seed=0, batch_size=2, progress=True, **tiny)
    out, err = capfd.readouterr()
    assert out == ""
    assert "validation" in err and "epoch" in err.lower()
