"""spinlat demo: bcc Fe with EAM + Bethe-Slater exchange + Zeeman, single-point evaluation.

Prints the energy, the largest force and the largest spin torque of a 5×5×5 bcc Fe supercell
with random spins of 2.2 μB and thermal displacements.
Run: .venv/bin/python examples/single_point_bccfe.py
"""

import numpy as np

import spinlat as sl
from spinlat.potentials import EAM, BetheSlaterExchange, Zeeman, spin_torques

from _example import ArgumentParser, run  # examples/_example.py: one-line errors

EAM_FILE = sl.data.path("Fe_mm.eam.fs")  # shipped with spinlat (Mendelev et al. 2003)


def main():
    ArgumentParser(description=__doc__).parse_args()  # no arguments (--help, --debug)
    a = 2.8665
    rng = np.random.default_rng(0)
    unit = sl.State([[0, 0, 0], [a / 2, a / 2, a / 2]], ["Fe", "Fe"], cell=np.eye(3) * a, pbc=True,
                    moments=[2.2, 2.2])
    st = unit.repeat(5)
    st = st.copy(positions=st.positions + rng.normal(0, 0.05, st.positions.shape),
                 spins=rng.normal(size=(len(st), 3)))
    pot = EAM(EAM_FILE) + BetheSlaterExchange(3.4, 0.02726, 0.2171, 1.841) + Zeeman([0, 0, 1.0])
    ev = pot.compute(st, forces=True, magnetic_forces=True, stress=True)
    tq = spin_torques(st, ev)
    print(st)
    print(f"potential: {pot}")
    print(f"energy          {ev.energy:.6f} eV  ({ev.energy / len(st):.6f} eV/atom)")
    print(f"max |force|     {np.linalg.norm(ev.forces, axis=1).max():.6f} eV/Å")
    print(f"max |torque|    {np.linalg.norm(tq, axis=1).max():.6f} eV")
    print(f"pressure        {-ev.stress[:3].mean() * sl.units.EV_PER_A3_IN_GPA:.4f} GPa")


if __name__ == "__main__":
    run(main)
