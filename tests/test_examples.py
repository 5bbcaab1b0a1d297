"""The example scripts fail on bad command-line arguments and user errors with one line on stderr
and a non-zero status (examples/_example.py), never a Python traceback."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SCRIPTS = sorted(p for p in EXAMPLES.glob("*.py") if not p.name.startswith("_"))


def _run(tmp_path, script, *args):
    env = {**os.environ, "MPLBACKEND": "Agg"}
    env["PYTHONPATH"] = os.pathsep.join([str(EXAMPLES.parent), env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, str(EXAMPLES / script), *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=1200)


@pytest.mark.parametrize("script, args, status, message", [
    ("curie_binder_sc.py", ["many"], 2, "curie_binder_sc.py: error: argument sweeps: invalid int value: 'many'"),
    ("curie_bccfe_tb2j.py", ["--tb2j", "missing.out"], 1,
     "curie_bccfe_tb2j.py: error: TB2J file missing.out does not exist"),
    ("mn3pt_ground_state.py", ["--starts", "0"], 1, "mn3pt_ground_state.py: error: starts"),
    ("single_point_bccfe.py", ["extra"], 2, "single_point_bccfe.py: error: unrecognized arguments: extra"),
])
def test_bad_arguments_give_one_line_and_a_status(tmp_path, script, args, status, message):
    out = _run(tmp_path, script, *args)
    assert out.returncode == status, out.stderr
    assert "Traceback" not in out.stderr
    assert out.stderr.count("\n") == 1 and out.stderr.startswith(message), out.stderr


def test_every_example_runs_its_main_through_the_shared_handler():
    """Each script's ``if __name__ == "__main__":`` block is ``run(...)`` from _example, and no
    script parses sys.argv by hand (where a bad value would be a traceback)."""
    bad = []
    for p in SCRIPTS:
        tree = ast.parse(p.read_text(encoding="utf-8"))
        guard = [n for n in tree.body if isinstance(n, ast.If) and "__main__" in ast.unparse(n.test)]
        body = ast.unparse(guard[0].body[0]) if guard else ""
        if not body.startswith("run(") or "sys.argv" in p.read_text(encoding="utf-8"):
            bad.append(f"{p.name}: {body or 'no __main__ block'}")
    assert SCRIPTS and not bad, bad


def test_help_gives_whole_sentences_and_every_default(tmp_path):
    """``script.py --help`` opened with the docstring's first line, cut mid-sentence for the
    docstrings that wrap ("... on the simple cubic lattice by"), and listed options such as
    ``--tmin`` or ``--images`` with neither help nor default."""
    for p in SCRIPTS:
        out = _run(tmp_path, p.name, "--help")
        assert out.returncode == 0, (p.name, out.stderr)
        text = " ".join(out.stdout.split())
        head = text.split(" options: ")[0].split(" positional arguments: ")[0]
        assert head.rstrip().endswith("."), (p.name, head)
        for line in out.stdout.split("options:")[1].splitlines():
            opt = line.strip().split(" ")[0]
            if opt.startswith("--") and opt not in ("--debug", "--help", "--alloy", "--overwrite", "--model"):
                block = out.stdout.split(line, 1)[1].split("\n  -")[0]
                assert "default" in line + block, (p.name, line)
    out = _run(tmp_path, "curie_binder_sc.py", "--help")
    assert "lattice by Monte Carlo and the Binder-cumulant crossing, with error bars." in " ".join(out.stdout.split())
    out = _run(tmp_path, "curie_bccfe_tb2j.py", "--help")
    assert "lowest temperature, K (default: 1380.0)" in " ".join(out.stdout.split())


def test_curie_example_names_every_file_it_writes(tmp_path):
    """curie_bccfe_tb2j.py wrote curie_bccfe.txt and .png but said only ``wrote …/curie_bccfe.png``."""
    out = _run(tmp_path, "curie_bccfe_tb2j.py", "--sizes", "2", "3", "--sweeps", "20", "--thermalize", "5",
               "--dt", "300", "--tmax", "1700", "--out", "cc")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1] == "wrote cc/curie_bccfe.txt and cc/curie_bccfe.png"
    text = (tmp_path / "cc" / "curie_bccfe.txt").read_text()
    assert text.startswith("L = 2 (16 spins)") and "chi peak: L=2" in text
    assert (tmp_path / "cc" / "curie_bccfe.png").stat().st_size > 0


def test_gneb_example_says_when_the_band_did_not_converge(tmp_path):
    """gneb_mn3pt.py --images 7 stops at max_iterations (20 000; here 300, a fixed amount of work)
    and printed its barrier as the result with exit status 0; it now says the band did not
    converge and exits 1, as spinlat gneb, after writing the band."""
    out = _run(tmp_path, "gneb_mn3pt.py", "--images", "7", "--max-iterations", "300", "--out", "g")
    assert out.returncode == 1, out.stderr
    assert "GNEB: max_iterations reached" in out.stdout and "barrier " in out.stdout
    assert out.stderr.startswith("gneb_mn3pt.py: the band did not converge to tol 1e-05 eV/rad in 300 iterations "
                                 "(max_iterations reached"), out.stderr
    assert out.stderr.count("\n") == 1 and "not a converged saddle point" in out.stderr
    assert (tmp_path / "g" / "path.h5").is_file() and (tmp_path / "g" / "energy.png").is_file()


def test_an_existing_output_is_refused_before_any_work_and_its_folder_made_first(tmp_path):
    """magnons_bccfe.py ran its LLG and then failed because --out (holding --trajectory) did not
    exist, and on a rerun its refusal named Python arguments (restart=True, overwrite=True) the
    script does not take; mmace_train_nve.py replaced the trajectory of an earlier run silently
    (overwrite=True hard-coded)."""
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "m.h5").write_text("an earlier run")
    out = _run(tmp_path, "magnons_bccfe.py", "--trajectory", "old/m.h5", "--out", "old")
    assert out.returncode == 2 and out.stderr.count("\n") == 1, out.stderr
    assert "--trajectory old/m.h5 already exists (an earlier run?): pass --overwrite" in out.stderr
    (tmp_path / "nve").mkdir()
    (tmp_path / "nve" / "nve.h5").write_text("an earlier run")
    out = _run(tmp_path, "mmace_train_nve.py", "--out", "nve", "--model", "missing.mmace")
    assert out.returncode == 2 and "nve/nve.h5 already exists (an earlier run?): pass --overwrite" in out.stderr
    assert (tmp_path / "nve" / "nve.h5").read_text() == "an earlier run"


def test_ctrl_c_in_an_example_is_one_line(tmp_path):
    """Ctrl-C (or SIGTERM) in an example ended in a KeyboardInterrupt traceback after spinlat's own
    line; it is now one line saying what was kept, status 130 (143)."""
    script = tmp_path / "interrupted.py"
    script.write_text("import os, signal\nfrom _example import run\n\n\ndef main():\n"
                      "    signal.signal(signal.SIGINT, signal.default_int_handler)  # (a background job may ignore it)\n"
                      "    os.kill(os.getpid(), signal.SIGINT)\n\n\nif __name__ == '__main__':\n    run(main)\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(EXAMPLES), str(EXAMPLES.parent)])}
    out = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 130 and "Traceback" not in out.stderr
    assert out.stderr.startswith("interrupted.py: interrupted (Ctrl-C); what it wrote so far is kept")
