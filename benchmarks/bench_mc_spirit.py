"""Metropolis Monte Carlo: spinlat vs Spirit 2.2 on the same Hamiltonian, side by side.

System: simple-cubic L × L × L lattice (a = 1 Å, periodic), nearest-neighbour exchange
J = 10 meV, uniaxial anisotropy K = 0.1 meV along z, moments 2 μB, no field; started
ferromagnetic along z. Energy E = −J Σ_<ij> s_i·s_j − K Σ_i (s_i·ẑ)² in both codes (Spirit sums
each unordered pair once, like ``Heisenberg.from_neighbors``; Spirit takes meV). T_c of the
classical sc Heisenberg model: k_B T_c ≈ 1.443 J (≈ 167 K here); the default temperatures lie
below and above it.

Moves: both codes propose, for every spin once per sweep, a direction uniform on the spherical
cap of a fixed half-angle around the current spin (``--cone`` degrees; Spirit
``set_metropolis_cone(use_cone=True, cone_angle, use_adaptive_cone=False)``, spinlat
``MonteCarlo(cone=rad, adapt=False)``, no over-relaxation), accepted with min(1, e^{−ΔE/k_BT}).
With the same proposal and Hamiltonian the acceptance must agree, and so must the equilibrium
energy per spin and |M| (checked with error bars from blocking, ``spinlat.statistics.average``):
that is what makes the speed comparison fair. As a referee independent of either Metropolis
implementation, both codes' stochastic LLG (SIB with a Langevin bath, α = 0.5, dt = 0.5 fs) sample
the same canonical ensemble (rows "LLG"; ``--no-referee`` skips them). Spirit 2.2 proposes its N moves per iteration at
random sites (spinlat: every spin once per sweep, colour class by colour class), and its Python
API does not report the acceptance: it is inferred from the fraction f of spins that moved in a
one-iteration run, a = −ln(1 − f) (Poisson(1) proposals per spin).

Timing: sweeps/s of one process on one core (NUMBA_NUM_THREADS=1; Spirit's pip build is
single-threaded), best of ``--repeat`` interleaved batches of ``--sweeps`` sweeps after
thermalisation (set-up and compilation excluded), with the load average printed beside them.
Memory per spin against N, each code in a process of its own: ``bench_scaling_llg_mc.py``.

Run: python benchmarks/bench_mc_spirit.py [--sizes 16 32] [--temperatures 100 250] [--sweeps 200]
     [--repeat 3] [--samples 600] [--cone 40]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

import spinlat as sl  # noqa: E402
from spinlat.integrators import MonteCarlo  # noqa: E402
from spinlat.potentials import Heisenberg, UniaxialAnisotropy  # noqa: E402
from spinlat.statistics import average  # noqa: E402

J, K, MU = 0.010, 0.0001, 2.0  # eV, eV, μB


def spinlat_system(L):
    unit = sl.State([[0, 0, 0]], [26], cell=np.eye(3), pbc=True, moments=[MU])
    pot = Heisenberg.from_neighbors(unit, J=[J]) + UniaxialAnisotropy(K, [0, 0, 1])
    st = unit.repeat((L, L, L))
    return st.copy(spins=np.tile([0.0, 0.0, 1.0], (len(st), 1))), pot


class SpinlatRun:
    def __init__(self, L, T, cone, seed=1):
        self.st, self.pot = spinlat_system(L)
        self.n = len(self.st)
        self.mc = MonteCarlo(T, seed=seed, cone=cone, adapt=False)

    def sweeps(self, n):
        self.st = self.mc.run(self.st, self.pot, n)

    def sample(self):
        """(energy per spin eV, |M| per spin, acceptance of the last sweep)."""
        e = self.pot.compute(self.st, forces=False, magnetic_forces=False).energy / self.n
        return e, float(np.linalg.norm(self.st.spins.mean(axis=0))), self.mc.acceptance


class SpiritRun:
    def __init__(self, L, T, cone_deg):
        from spirit import hamiltonian, parameters, state

        self._tmp = tempfile.TemporaryDirectory()
        cfg = os.path.join(self._tmp.name, "input.cfg")
        with open(cfg, "w") as fh:
            fh.write(f"bravais_lattice sc\nn_basis_cells {L} {L} {L}\nboundary_conditions 1 1 1\n"
                     f"lattice_constant 1.0\nmu_s {MU}\nddi_method 0\nlog_to_console 0\nlog_to_file 0\n"
                     "llg_output_any 0\nmc_output_any 0\ngneb_output_any 0\n")
        self._ctx = state.State(cfg, quiet=True)
        self.p = self._ctx.__enter__()
        hamiltonian.set_exchange(self.p, 1, [J * 1e3])
        hamiltonian.set_anisotropy(self.p, K * 1e3, [0, 0, 1])
        parameters.mc.set_temperature(self.p, T)
        parameters.mc.set_metropolis_cone(self.p, use_cone=True, cone_angle=cone_deg, use_adaptive_cone=False)
        parameters.mc.set_output_general(self.p, any=False, initial=False, final=False)
        from spirit import configuration, system

        configuration.plus_z(self.p)
        system.update_data(self.p)
        self.n = L ** 3

    def sweeps(self, n):
        from spirit import simulation

        simulation.start(self.p, simulation.METHOD_MC, n_iterations=n, n_iterations_log=max(n, 1))

    def spins(self):
        from spirit import system

        return np.array(system.get_spin_directions(self.p), dtype=np.float64).reshape(-1, 3)

    def sample(self):
        from spirit import system

        s0 = self.spins()
        self.sweeps(1)
        s = self.spins()
        # Spirit 2.2 proposes N moves at random sites per iteration: a spin gets Poisson(1)
        # proposals and stays put only if all are rejected, so the fraction f that moved is
        # 1 − e^(−a) for acceptance a
        moved = float(np.mean(np.any(s != s0, axis=1)))
        acc = -np.log1p(-moved)
        system.update_data(self.p)
        return system.get_energy(self.p) * 1e-3 / self.n, float(np.linalg.norm(s.mean(axis=0))), acc

    def close(self):
        self._ctx.__exit__(None, None, None)
        self._tmp.cleanup()


class SpinlatLLGRun(SpinlatRun):
    """The referee: stochastic LLG (SIB, Langevin bath at T, α = 0.5, dt = 0.5 fs) samples the
    same canonical ensemble by other means; one "sweep" = ``LLG_STEPS`` steps."""

    def __init__(self, L, T, seed=1):
        from spinlat.integrators import LLG

        self.st, self.pot = spinlat_system(L)
        self.n = len(self.st)
        self.llg = LLG(LLG_DT, damping=LLG_ALPHA, solver="sib", temperature=T, seed=seed)

    def sweeps(self, n):
        self.st = self.llg.run(self.st, self.pot, n * LLG_STEPS)

    def sample(self):
        e = self.pot.compute(self.st, forces=False, magnetic_forces=False).energy / self.n
        return e, float(np.linalg.norm(self.st.spins.mean(axis=0))), np.nan


class SpiritLLGRun(SpiritRun):
    """Spirit's stochastic LLG (SIB, same α, dt and T) on the same system."""

    def __init__(self, L, T):
        from spirit import parameters

        super().__init__(L, T, 40.0)
        parameters.llg.set_temperature(self.p, T)
        parameters.llg.set_damping(self.p, LLG_ALPHA)
        parameters.llg.set_timestep(self.p, LLG_DT * 1e-3)  # ps
        parameters.llg.set_output_general(self.p, any=False, initial=False, final=False)

    def sweeps(self, n):
        from spirit import simulation

        k = n * LLG_STEPS
        simulation.start(self.p, simulation.METHOD_LLG, simulation.SOLVER_SIB, n_iterations=k, n_iterations_log=k)

    def sample(self):
        from spirit import system

        system.update_data(self.p)
        s = self.spins()
        return system.get_energy(self.p) * 1e-3 / self.n, float(np.linalg.norm(s.mean(axis=0))), np.nan


LLG_DT, LLG_ALPHA, LLG_STEPS = 0.5, 0.5, 10  # fs, Gilbert damping, steps per "sweep"


def measure(run, thermalize, samples, every):
    run.sweeps(thermalize)
    rows = []
    for _ in range(samples):
        if every > 1:
            run.sweeps(every - 1)
        rows.append(run.sample())
    a = np.array(rows)
    return [average(a[:, k]) if np.all(np.isfinite(a[:, k])) else None for k in range(3)]  # LLG: no acceptance


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[16, 32])
    ap.add_argument("--temperatures", type=float, nargs="+", default=[100.0, 250.0])
    ap.add_argument("--sweeps", type=int, default=100, help="sweeps per timed batch")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--samples", type=int, default=400, help="equilibrium samples (one per --every sweeps)")
    ap.add_argument("--every", type=int, default=2)
    ap.add_argument("--thermalize", type=int, default=300)
    ap.add_argument("--stats-size", type=int, default=12, help="L of the equilibrium comparison")
    ap.add_argument("--cone", type=float, default=40.0, help="trial-cap half-angle, degrees")
    ap.add_argument("--no-referee", dest="referee", action="store_false",
                    help="skip the stochastic-LLG referee rows of the equilibrium table")
    ap.add_argument("--no-speed", dest="speed", action="store_false", help="only the equilibrium table")
    args = ap.parse_args()
    try:
        import spirit  # noqa: F401
    except ImportError:
        raise SystemExit("Spirit is not installed (pip install spirit)") from None
    cone = np.radians(args.cone)
    print(f"sc Heisenberg J = {J * 1e3:g} meV + K = {K * 1e3:g} meV (z), μ = {MU} μB; cap half-angle "
          f"{args.cone:g}°, no over-relaxation; one core each; load average {os.getloadavg()[0]:.2f} on "
          f"{os.cpu_count()} CPUs")

    # ---- equilibrium: the same physics (acceptance, energy, |M| with blocking error bars)
    L = args.stats_size
    print(f"\nEquilibrium, L = {L} ({L ** 3} spins), {args.thermalize} sweeps thermalised, {args.samples} samples "
          f"every {args.every} sweeps (± one σ, blocking)")
    print(f"{'T (K)':>6} {'code':11s} {'E (meV/spin)':>22} {'|M|':>20} {'acceptance':>18} {'ΔE/σ':>6} {'Δ|M|/σ':>7}"
          "   (Δ: from spinlat MC)")
    for T in args.temperatures:
        ours = measure(SpinlatRun(L, T, cone, seed=7), args.thermalize, args.samples, args.every)
        rows = [("spinlat MC", ours)]
        sp = SpiritRun(L, T, args.cone)
        rows.append(("Spirit MC", measure(sp, args.thermalize, args.samples, args.every)))
        sp.close()
        if args.referee:
            rows.append(("spinlat LLG", measure(SpinlatLLGRun(L, T, seed=3), args.thermalize, args.samples,
                                                args.every)))
            sp = SpiritLLGRun(L, T)
            rows.append(("Spirit LLG", measure(sp, args.thermalize, args.samples, args.every)))
            sp.close()
        for name, est in rows:
            e, m, acc = est
            z = [abs(a.value - b.value) / np.hypot(a.error, b.error) for a, b in zip(ours[:2], est[:2])]
            tail = f"{z[0]:6.1f} {z[1]:7.1f}" if est is not ours else ""
            a = f"{acc.value:8.4f} ± {acc.error:6.4f}" if acc is not None else f"{'-':>17s}"
            print(f"{T:6.0f} {name:11s} {e.value * 1e3:12.5f} ± {e.error * 1e3:7.5f} {m.value:10.5f} ± {m.error:7.5f} "
                  f"{a} {tail}", flush=True)

    if not args.speed:
        return
    # ---- speed
    print(f"\nSpeed: best of {args.repeat} interleaved batches of {args.sweeps} sweeps after {args.sweeps} warm-up "
          f"sweeps (Spirit's acceptance inferred as above)")
    print(f"{'L':>4} {'spins':>7} {'T (K)':>6} {'spinlat sweeps/s':>17} {'Spirit sweeps/s':>16} {'ratio':>6} "
          f"{'spinlat Mspin/s':>16} {'acc ours':>8} {'acc Spirit':>10} {'load':>5}")
    for L in args.sizes:
        for T in args.temperatures:
            ours = SpinlatRun(L, T, cone)
            ours.sweeps(args.sweeps)
            sp = SpiritRun(L, T, args.cone)
            sp.sweeps(args.sweeps)
            t_ours, t_sp, loads = [], [], []
            for _ in range(args.repeat):
                loads.append(os.getloadavg()[0])
                t = time.perf_counter()
                ours.sweeps(args.sweeps)
                t_ours.append(time.perf_counter() - t)
                t = time.perf_counter()
                sp.sweeps(args.sweeps)
                t_sp.append(time.perf_counter() - t)
            acc_ours = ours.sample()[2]
            acc_sp = sp.sample()[2]
            sp.close()
            a, b = args.sweeps / min(t_ours), args.sweeps / min(t_sp)
            n = L ** 3
            print(f"{L:4d} {n:7d} {T:6.0f} {a:17.1f} {b:16.1f} {a / b:6.2f} {a * n / 1e6:16.2f} {acc_ours:8.3f} "
                  f"{acc_sp:10.3f} {max(loads):5.2f}", flush=True)


if __name__ == "__main__":
    main()
