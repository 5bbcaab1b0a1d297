"""Storage faults met by a real run, for tests/io/test_hdf5.py (run in a subprocess).

    python _storage_faults.py disk  DIR REFDIR          # DIR on a small (3 MB) filesystem
    python _storage_faults.py fsize DIR REFDIR LIMIT    # file-size limit (ulimit -f) of LIMIT bytes
    python _storage_faults.py cli   DIR REFDIR          # `spinlat run` on a full filesystem

Each case runs frozen-lattice LLG (432 atoms, a frame every step, a flush every 5 frames) until
the trajectory cannot take the next flush, twice: with the writer's room check (the fault is
foreseen, nothing is written) and without it (a write really fails: ENOSPC or EFBIG). Each time
it then frees the space (or lifts the limit) and restarts from the file. It prints one JSON line
describing what the files hold, checked against a reference run written elsewhere (REFDIR).
"""

import json
import os
import signal
import subprocess
import sys
import warnings

import h5py  # noqa: E402
import numpy as np  # noqa: E402

import spinlat as sl  # noqa: E402
from spinlat.errors import StorageError  # noqa: E402
from spinlat.integrators import LLG  # noqa: E402
from spinlat.io import Trajectory, TrajectoryWriter  # noqa: E402
from spinlat.potentials import BetheSlaterExchange, Zeeman  # noqa: E402

CASE, DIR, REFDIR = sys.argv[1], sys.argv[2], sys.argv[3]
STEPS = 600  # more than fit


def system():
    st = sl.State([[0, 0, 0], [1.43325] * 3], [26, 26], cell=2.8665 * np.eye(3), pbc=True,
                  moments=[2.2, 2.2]).repeat(6)
    st = st.copy(spins=np.random.default_rng(0).normal(size=(len(st), 3)))
    return st, BetheSlaterExchange(3.4, 0.02726, 0.2171, 1.841) + Zeeman([0, 0, 1.0])


def integrator():
    return LLG(1.0, damping=0.1, temperature=100.0, seed=5)


def simulation(path, restart=False):
    st, pot = system()
    if restart:
        return sl.Simulation.restart(path, pot, integrator(), every=1, progress=False, flush_every=5,
                                     flush_seconds=None)
    return sl.Simulation(st, pot, integrator(), trajectory=path, every=1, progress=False, flush_every=5,
                          flush_seconds=None)  # flushes every 5 frames only, however slow the machine


def reference():
    path = os.path.join(REFDIR, "reference.h5")
    if not os.path.exists(path):
        simulation(path).run(STEPS)
    with Trajectory(path) as traj:
        return {k: traj[k] for k in ("step", "spins", "moments")}


def describe(path, ref):
    """What the file holds: frames, whether they are the reference's, bit for bit."""
    out = {"plain_h5py_opens": True}
    try:
        h5py.File(path, "r").close()
    except OSError as exc:
        out["plain_h5py_opens"] = False
        out["plain_h5py_error"] = str(exc)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with Trajectory(path) as traj:
            n = len(traj)
            steps, spins, moments = traj["step"], traj["spins"], traj["moments"]
            ckpt = traj.checkpoint()
            out.update(recovered=traj.recovered, checkpoint_step=None if ckpt is None else ckpt["step"])
    out.update(frames=n, steps_consecutive=bool(np.array_equal(steps, np.arange(n))),
               zero_frames=int(np.sum(~np.all(moments > 0, axis=1))),
               same_as_reference=bool(n <= len(ref["step"]) and np.array_equal(spins, ref["spins"][:n])
                                      and np.array_equal(moments, ref["moments"][:n])),
               warnings=[str(w.message) for w in caught])
    return out


def fill_until_error(path):
    """Run until the trajectory cannot be written: the error (type, message) and the step."""
    sim = simulation(path)
    try:
        sim.run(STEPS)
    except Exception as exc:  # noqa: BLE001 - the test checks the type
        return {"type": type(exc).__name__, "message": str(exc), "sim_step": sim.step}
    return {"type": None, "message": "", "sim_step": sim.step}


def restart_and_check(path, ref, extra=25):
    sim = simulation(path, restart=True)
    start = sim.step
    sim.run(extra)
    out = describe(path, ref)
    out.update(restart_step=start, resumed=sim.resumed)
    return out


def make_room(free_filler):
    if CASE == "fsize":
        import resource

        resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
    elif os.path.exists(free_filler):
        os.remove(free_filler)


def fault(name, foreseen, ref):
    path = os.path.join(DIR, f"{name}.h5")
    filler = os.path.join(DIR, "filler")
    if CASE == "disk":
        with open(filler, "wb") as fh:  # space to give back for the restart
            fh.write(b"\0" * (600 * 1024))
    else:  # from here on: SIGXFSZ ignored, writes past LIMIT fail with EFBIG
        import resource

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[4]), resource.RLIM_INFINITY))
    check = TrajectoryWriter._check_room
    if not foreseen:
        TrajectoryWriter._check_room = lambda self, need: None  # let the write itself fail
    try:
        error = fill_until_error(path)
    finally:
        TrajectoryWriter._check_room = check
    result = {"error": error, "after_fault": describe(path, ref)}
    make_room(filler)
    result["after_restart"] = restart_and_check(path, ref)
    os.remove(path)
    return result


def cli(foreseen):
    """`spinlat run` on the full filesystem: exit status and stderr."""
    run_dir = os.path.join(DIR, "run")
    cfg = os.path.join(REFDIR, "run.yaml")
    with open(cfg, "w") as fh:
        fh.write(f"""
structure: {{crystal: bcc, element: Fe, a: 2.8665, repeat: [6, 6, 6], moments: 2.2, spins: random}}
potential:
  - {{type: BetheSlaterExchange, cutoff: 3.4, J1: 0.02726, J2: 0.2171, J3: 1.841}}
integrator: {{type: LLG, dt: 1.0, damping: 0.1, temperature: 100}}
steps: {STEPS}
every: 1
seed: 0
progress: false
output: {run_dir}
""")
    no_check = "from spinlat.io.hdf5 import TrajectoryWriter as W\nW._check_room = lambda s, n: None\n"
    run = f"from spinlat.cli import main\nsys.exit(main(['run', {cfg!r}]))\n"
    code = "import sys\n" + ("" if foreseen else no_check) + run
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    out = {"returncode": proc.returncode, "stderr": proc.stderr}
    if os.path.exists(os.path.join(run_dir, "trajectory.h5")):
        out["file"] = describe(os.path.join(run_dir, "trajectory.h5"), {"step": np.zeros(0), "spins": None,
                                                                        "moments": None})
    for name in os.listdir(run_dir):
        os.remove(os.path.join(run_dir, name))
    return out


def main():
    if CASE == "cli":
        print(json.dumps({"foreseen": cli(True), "write_failed": cli(False)}))
        return
    ref = reference()
    print(json.dumps({"foreseen": fault("foreseen", True, ref), "write_failed": fault("failed", False, ref)}))


if __name__ == "__main__":
    main()
