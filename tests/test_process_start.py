"""What a new process pays before its first step: spinlat's numba kernels are compiled once per
installation, not once per process, and runs without mMACE do not import torch.

Every kernel is ``cache=True``: a second process must load them from the cache. A kernel made in a
factory (a closure) that captures another dispatcher gets a new cache key in every process (numba
pickles the captured values into the key, and a dispatcher pickles differently each time), so it
compiled again in every process (the neighbour build alone 7 s) and left a cache file more each
time (450 files in one checkout). The second of two identical processes here records numba's
compile events: none may come from spinlat.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

#: one small run of each kind of kernel factory: neighbour build (serial and threaded), Monte
#: Carlo sweep variants, spin-lattice NVE and Langevin (lattice, sweep, noise, EAM kernels), LLG
WORKLOAD = textwrap.dedent("""
    import json, sys
    import numpy as np
    from numba.core import event
    with event.install_recorder("numba:compile") as recorder:
        import spinlat as sl
        import spinlat.neighbors as neighbors
        from spinlat.integrators import LLG, MonteCarlo, SpinLatticeLangevin, SpinLatticeNVE
        from spinlat.potentials import EAM, BetheSlaterExchange, Zeeman

        neighbors.PARALLEL_MIN_ATOMS = 1  # the threaded build too
        a = 2.8665
        st = sl.State([[0, 0, 0], [a / 2, a / 2, a / 2]], ["Fe", "Fe"], cell=np.eye(3) * a, pbc=True,
                      moments=[2.2, 2.2]).repeat(3)
        exchange = BetheSlaterExchange(3.4, 0.02726, 0.2171, 1.841)
        pot = EAM(sl.data.path("Fe_mm.eam.fs")) + exchange + Zeeman([0, 0, 1.0])
        pot.compute(st, forces=True, magnetic_forces=True, stress=True)
        for integrator, steps in [(SpinLatticeNVE(0.5), 2),
                                  (SpinLatticeLangevin(0.5, 300.0, 0.01, 0.1, seed=1), 2),
                                  (LLG(0.5, damping=0.1), 2),
                                  (MonteCarlo(300.0, seed=1), 2),
                                  (MonteCarlo(300.0, seed=1, overrelax=1), 2)]:
            sl.Simulation(st, exchange + Zeeman([0, 0, 1.0]) if isinstance(integrator, MonteCarlo) else pot,
                          integrator).run(steps)
    names = sorted({f"{e.data['dispatcher'].py_func.__module__}.{e.data['dispatcher'].py_func.__qualname__}"
                    for _, e in recorder.buffer if e.is_start})
    json.dump(names, sys.stdout)
""")


def _compiled_in_fresh_process(env):
    out = subprocess.run([sys.executable, "-c", WORKLOAD], env=env, capture_output=True, text=True, timeout=1800)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_second_process_compiles_no_spinlat_kernel(tmp_path):
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba-cache"), "NUMBA_NUM_THREADS": "2"}
    first = _compiled_in_fresh_process(env)
    assert any(name.startswith("spinlat.neighbors") for name in first)  # the cache started empty
    assert any("monte_carlo" in name for name in first)
    second = _compiled_in_fresh_process(env)
    assert [name for name in second if name.startswith("spinlat")] == []


TORCH_FREE = textwrap.dedent("""
    import sys
    import numpy as np
    import spinlat as sl
    from spinlat.integrators import MonteCarlo
    from spinlat.potentials import EAM, BetheSlaterExchange, Heisenberg

    a = 2.8665
    st = sl.State([[0, 0, 0], [a / 2, a / 2, a / 2]], ["Fe", "Fe"], cell=np.eye(3) * a, pbc=True,
                  moments=[2.2, 2.2]).repeat(3)
    st.check_distances()
    (EAM(sl.data.path("Fe_mm.eam.fs")) + BetheSlaterExchange(3.4, 0.02726, 0.2171, 1.841)).compute(st, forces=True)
    ham = Heisenberg.from_tb2j(sl.data.path("bccFe_TB2J_exchange.out"))
    Heisenberg.from_neighbors(st, J=[1e-3, 5e-4], D=[1e-4])
    sl.analysis.radial_distribution(st, 5.0)
    sl.Simulation(st, ham, MonteCarlo(300.0, seed=1)).run(1)
    print(sorted(m for m in ("torch", "vesin", "e3nn", "mace") if m in sys.modules))
""")


def test_runs_without_mmace_do_not_import_torch():
    """Every State checked its distances with vesin's neighbour search, and vesin imports torch
    when it is installed: 2-7 s and ~300 MB in every process, also for spin models that never
    touch mMACE. The pair searches now use spinlat's own cell-list build."""
    out = subprocess.run([sys.executable, "-c", TORCH_FREE], capture_output=True, text=True, timeout=1800)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"
