"""Small runs of every integrator for the reproducibility tests: one seed must give one trajectory
however the run is split into ``run`` calls, written (``every``), or killed and restarted.

``CASES[name] = (make_state, make_potential, make_integrator)``; every call builds fresh objects
(no caches shared), as a new process would. Shared by ``tests/test_simulation.py`` and the
subprocess those tests kill (``python tests/_restart_cases.py NAME TRAJECTORY``).
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import spinlat as sl  # noqa: E402
from spinlat import units  # noqa: E402
from spinlat.integrators import LLG, MonteCarlo, SpinLatticeLangevin, SpinLatticeNVE  # noqa: E402
from spinlat.potentials import EAM, BetheSlaterExchange, Heisenberg, UniaxialAnisotropy, Zeeman  # noqa: E402

from conftest import EAM_FE, bcc_fe  # noqa: E402

BS = (3.4, 0.02726, 0.2171, 1.841)
EVERY = 5


def hot_bcc(reps=4, T=1500.0, seed=0):
    """bcc Fe with random spins and Maxwell velocities at T: at 1 fs steps the neighbour list is
    rebuilt every few tens of steps, so restarts meet lists built at earlier positions."""
    st = bcc_fe((reps,) * 3, seed=seed)
    rng = np.random.default_rng(seed + 1)
    v = rng.normal(size=(len(st), 3)) * np.sqrt(units.K_B * T * units.FORCE_TO_ACCELERATION / st.masses[:, None])
    return st.copy(velocities=v - v.mean(axis=0))


def bcc_heisenberg():
    cell = sl.State([[0, 0, 0], [1.435] * 3], [26, 26], cell=2.87 * np.eye(3), pbc=True, moments=[2.2, 2.2])
    return Heisenberg.from_neighbors(cell, J=[0.02, 0.01])


CASES = {
    # linear fast path (coupling graph of the Bethe-Slater pairs)
    "langevin_eam_bs": (hot_bcc,
                        lambda: EAM(EAM_FE) + BetheSlaterExchange(*BS) + Zeeman([0, 0, 1.0]),
                        lambda seed=7: SpinLatticeLangevin(1.0, 1500.0, 0.01, 0.1, seed=seed)),
    # pair table + neighbour list + self-dependent anisotropy (implicit-midpoint sub-steps)
    # (cooler: the Heisenberg table needs atoms within 0.5 Å of their lattice sites)
    "langevin_eam_heisenberg": (lambda: hot_bcc(T=600.0),
                                lambda: EAM(EAM_FE) + bcc_heisenberg() + UniaxialAnisotropy(1e-4, [0, 0, 1]),
                                # seed 8: with seed 7 the Philox noise stream rebuilds the list exactly
                                # at step 47, where the restart test wants a list built earlier
                                lambda seed=8: SpinLatticeLangevin(1.0, 600.0, 0.01, 0.1, seed=seed)),
    "nve_eam_bs": (hot_bcc,
                   lambda: EAM(EAM_FE) + BetheSlaterExchange(*BS) + Zeeman([0, 0, 1.0]),
                   lambda seed=None: SpinLatticeNVE(1.0)),
    "llg": (lambda: bcc_fe((4, 4, 4), seed=3),
            lambda: bcc_heisenberg() + Zeeman([0, 0, 2.0]),
            lambda seed=7: LLG(1.0, damping=0.1, temperature=300.0, seed=seed)),
    "monte_carlo": (lambda: bcc_fe((4, 4, 4), seed=3, rattle=0.0),
                    lambda: bcc_heisenberg() + Zeeman([0, 0, 2.0]),
                    lambda seed=7: MonteCarlo(900.0, seed=seed, overrelax=1)),
}


def main(name, path):
    """Run case ``name`` into ``path`` for ever, EVERY steps per frame, printing the step reached
    after each ``run`` (for a test that kills this process)."""
    make_state, make_potential, make_integrator = CASES[name]
    sim = sl.Simulation(make_state(), make_potential(), make_integrator(), trajectory=path, every=EVERY,
                        progress=False, flush_every=2)
    while True:
        sim.run(3 * EVERY)
        print(sim.step, flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
