"""Energy drift and model calls of SpinLatticeNVE with mMACE: the implicit (spherical) midpoint
spin step solved by Anderson acceleration (``spin_solver="anderson"``, the default) or by the
plain fixed-point iteration (``"fixed_point"``), and the explicit midpoint (``spin_step=
"explicit_midpoint"``, the earlier scheme), or by Newton-Krylov with the model's field-Jacobian
products (``"newton"``).

Fits a small soc=True mMACE to synthetic bcc Fe teacher data (or loads ``--model``; ``--save``
keeps the fitted one), then runs NVE on a warm bcc Fe supercell (lattice at ``--temperature``,
spins a tilted ferromagnet) with each scheme of ``--schemes`` for each time step ``--dts``,
recording the total energy every ``--every`` steps. Prints per run: secular drift (slope of a
least-squares line through E_tot(t), meV/atom/ps), fluctuation (standard deviation about that
line, meV/atom), largest |E_tot − E_tot(0)| (meV/atom), model calls per step (the integrator's
``calls_per_step``: the initial evaluation excluded), model-call equivalents per step (the
integrator's ``call_equivalents_per_step``: calls plus field-Jacobian products at
``spin_lattice.JVP_COST`` each; the cost of a product relative to a ``compute`` call with forces
and fields is measured and printed first, interleaved), implicit steps that reached
``max_spin_iterations`` (``--max-spin-iterations``, 40 here so that both solvers converge and
their calls compare), wall time per step, and the machine load (``os.getloadavg``) beside them;
then the ratio of calls per step fixed_point / anderson. The schemes run interleaved chunk by
chunk in one process, so load changes hit all of them.

Expectation: implicit — no secular drift beyond the noise of the fit, fluctuation ∝ dt²; Anderson
fewer calls than the fixed-point iteration, the more so the larger dt; explicit — drift growing
with dt, exactly 2 calls per step.

Run: python benchmarks/bench_mmace_nve_drift.py [--ps 10] [--dts 2 1 0.5 0.25] [--repeat 2]
     [--model FILE | --epochs 20 --save FILE] [--schemes anderson fixed_point newton explicit extended_lagrangian two_step]
     [--spin-tolerance 1e-10] [--reversal-steps 100] [--log FILE]
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np

import spinlat as sl
from spinlat import datasets, units
from spinlat.integrators import SpinLatticeNVE
from spinlat.integrators.spin_lattice import JVP_COST

#: the compared schemes: constructor options of SpinLatticeNVE
SCHEMES = {"anderson": dict(spin_solver="anderson"), "fixed_point": dict(spin_solver="fixed_point"),
           "newton": dict(spin_solver="newton"), "explicit": dict(spin_step="explicit_midpoint")}

class TwoStepLeapfrog:
    """The explicit symmetric two-step scheme (scheme ``two_step``, for comparison only; not in
    spinlat): positions by leapfrog Verlet, spins by s_{n+1} = R(2 dt, h_n) s_{n−1}, the exact
    rotation of the spins of the step before about the fields of the current step (the explicit
    midpoint rule of first-order ODEs written as a rotation). One model call per step (E, F, h at
    (r_n, s_n)), time-reversible, spin lengths exact — but a two-step method: its parasitic
    solution (−1)^n is undamped, and once the spins' own dynamics excites it the even and odd
    steps drift apart (see README). Started with s_{−1} = R(−dt, h_0) s_0. ``run`` continues
    from the State it returned last (it keeps s_{n−1} and v_{n−1/2})."""

    def __init__(self, dt):
        self.dt = dt
        self.calls_per_step = self.call_equivalents_per_step = 1.0
        self.statistics = {}
        self._carry = None  # (State returned, s_{n-1}, v_{n-1/2}, evaluation at the State)

    def run(self, state, pot, steps):
        from spinlat.integrators.rotation import angle_factor, rotate_all

        dt, fac = self.dt, angle_factor(self.dt)
        acc = units.FORCE_TO_ACCELERATION / state.masses[:, None]
        if self._carry is not None and self._carry[0] is state:
            _, s_prev, vh, ev = self._carry
        else:
            ev = pot.compute(state, forces=True, magnetic_forces=True)
            s_prev = state.spins.copy()
            rotate_all(s_prev, ev.magnetic_forces, -fac)
            vh = state.velocities - 0.5 * dt * ev.forces * acc
        r, s = state.positions.copy(), state.spins.copy()
        for _ in range(steps):
            vh_new = vh + dt * ev.forces * acc
            r = r + dt * vh_new
            s_next = s_prev.copy()
            rotate_all(s_next, ev.magnetic_forces, 2.0 * fac)
            s_prev, s = s, s_next
            ev = pot.compute(state.copy(positions=r, spins=s), forces=True, magnetic_forces=True)
            vh = vh_new
        out = state.copy(positions=r, spins=s, velocities=vh + 0.5 * dt * ev.forces * acc)  # v_n as in Verlet
        self._carry = (out, s_prev, vh, ev)
        return out


class ExtendedLagrangian:
    """Extended-Lagrangian spin step (scheme ``extended_lagrangian``, for comparison only; not in
    spinlat): the idea of extended-Lagrangian Born-Oppenheimer MD (Niklasson, Phys. Rev. Lett. 100,
    123004 (2008)) applied to the unknown midpoint fields. Auxiliary spins q follow the spins as a
    Verlet oscillator, q̈ = ω²(s − q) + (γ/μB)² h × (h × s) with κ = (ω dt)² (the second term, the
    spins' own acceleration in the current field, lets q follow a precession without lag), and
    the model is evaluated once per step at (r, q/|q|). A step: q̇ half kick; v half kick; spins
    rotated dt/2 about h(r, q̂); r and q drift dt; one model call; v half kick; spins rotated dt/2
    about the new fields; q̇ half kick — a palindrome of exact flows: time-reversible to round-off
    (with the auxiliary reversed too), spin lengths exact, one call per step, not symplectic.
    Measured (README): the auxiliary's own oscillation grows over a few ps (the spins' response
    to its fields feeds it), and the energy error with it. ``run`` continues from the State it
    returned last (it keeps q, q̇ and the evaluation at q̂); ``lag`` is max |q − s| at its end."""

    def __init__(self, dt, kappa=3.2):
        self.dt, self.kappa = dt, kappa
        self.calls_per_step = self.call_equivalents_per_step = 1.0
        self.statistics = {}
        self.lag = 0.0
        self._carry = None  # (State returned, q, q̇, evaluation at (r, q̂))

    def run(self, state, pot, steps):
        from spinlat.integrators.rotation import angle_factor, rotate_all

        dt, g = self.dt, units.GAMMA / units.MU_B
        fac, w2 = angle_factor(0.5 * dt), self.kappa / dt**2
        acc = units.FORCE_TO_ACCELERATION / state.masses[:, None]

        def q_acceleration(s, q, h):
            return w2 * (s - q) + g * g * np.cross(h, np.cross(h, s))

        if self._carry is not None and self._carry[0] is state:
            _, q, u, ev = self._carry
        else:
            ev = pot.compute(state, forces=True, magnetic_forces=True)
            q, u = state.spins.copy(), g * np.cross(ev.magnetic_forces, state.spins)
        r, v, s, q, u = (np.array(x) for x in (state.positions, state.velocities, state.spins, q, u))
        for _ in range(steps):
            u += 0.5 * dt * q_acceleration(s, q, ev.magnetic_forces)
            v += 0.5 * dt * ev.forces * acc
            rotate_all(s, ev.magnetic_forces, fac)
            r += dt * v
            q += dt * u
            ev = pot.compute(state.copy(positions=r, spins=q / np.linalg.norm(q, axis=1)[:, None]), forces=True,
                             magnetic_forces=True)
            v += 0.5 * dt * ev.forces * acc
            rotate_all(s, ev.magnetic_forces, fac)
            u += 0.5 * dt * q_acceleration(s, q, ev.magnetic_forces)
        out = state.copy(positions=r, spins=s, velocities=v)
        self.lag = float(np.abs(q - s).max())
        self._carry = (out, q, u, ev)
        return out


#: comparison schemes outside spinlat (not in the default list)
EXTRA = {"two_step": TwoStepLeapfrog, "extended_lagrangian": ExtendedLagrangian}


SMALL = dict(hidden_irreps="8x0e+8x1o", radial_MLP=[16, 16], MLP_irreps="8x0e", max_ell=2, r_max=4.0,
             num_bessel=6, avg_num_neighbors=14.0)


def fitted_model(epochs):
    from spinlat.potentials import MagneticMACE  # torch: imported once the arguments are parsed

    data = datasets.teacher("Fe", 24, seed=0, soc=True)
    pot = MagneticMACE.train(data, soc=True, seed=0, epochs=epochs, dtype="float64", progress=False, **SMALL)
    err = pot.evaluate(datasets.teacher("Fe", 8, seed=1000, soc=True))
    print(f"fitted {epochs} epochs: held-out RMSE E {err['energy_rmse']:.1f} meV/atom, "
          f"F {err['forces_rmse']:.0f} meV/Å, h {err['magnetic_forces_rmse']:.1f} meV/μB")
    return pot


def initial_state(repeat, temperature, seed=1):
    rng = np.random.default_rng(seed)
    a = datasets.A_BCC_FE
    st = sl.State([[0, 0, 0], [a / 2, a / 2, a / 2]], [26, 26], cell=np.eye(3) * a, pbc=True,
                  moments=[2.2, 2.2]).repeat((repeat,) * 3)
    n = len(st)
    spins = np.array([0.0, 0.0, 1.0]) + rng.normal(0, 0.4, (n, 3))
    sigma = np.sqrt(units.K_B * temperature / st.masses * units.FORCE_TO_ACCELERATION)
    v = rng.normal(size=(n, 3)) * sigma[:, None]
    v -= v.mean(axis=0)
    return st.copy(spins=spins, velocities=v, positions=st.positions + rng.normal(0, 0.02, (n, 3)))


def product_cost(pot, st, repeats=8):
    """Print the cost of a field linearisation and of one field-Jacobian product relative to a
    ``compute`` call with forces and fields (medians of interleaved repeats)."""
    nl = pot.neighbor_list(st)
    v = np.random.default_rng(0).normal(size=(len(st), 3))

    def linearise(products):
        lin = pot.field_linearization(st, nl)
        for _ in range(products):
            lin.apply(v)

    jobs = {"compute": lambda: pot.compute(st, nl), "linearisation": lambda: linearise(0),
            "linearisation + 4 products": lambda: linearise(4)}
    times = {k: [] for k in jobs}
    for _ in range(repeats):
        for k, f in jobs.items():
            t0 = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t0)
    med = {k: float(np.median(t)) for k, t in times.items()}
    prod = (med["linearisation + 4 products"] - med["linearisation"]) / 4
    print(f"compute (E, F, h) {1000 * med['compute']:.1f} ms; "
          f"linearisation / compute {med['linearisation'] / med['compute']:.2f}; "
          f"one product / compute {prod / med['compute']:.2f} (counted as {JVP_COST}); load {os.getloadavg()[0]:.1f}")


def reversal_miss(integ, pot, state, steps):
    """Largest |Δs| and |Δr| (Å) between ``state`` and the state reached by ``steps`` steps of
    ``integ`` forward, the time reversal (r, v, m) → (r, −v, −m), ``steps`` steps more and the
    reversal again: zero for an exactly time-reversible scheme (the energy is even in m)."""
    def flip(s):
        return s.copy(velocities=-s.velocities, spins=-s.spins)

    forward = integ.run(state, pot, steps)
    back = flip(integ.run(flip(forward), pot, steps))
    return float(np.abs(back.spins - state.spins).max()), float(np.abs(back.positions - state.positions).max())


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ps", type=float, default=10.0, help="length of each run, ps")
    p.add_argument("--dts", type=float, nargs="+", default=[2.0, 1.0, 0.5, 0.25], help="time steps, fs")
    p.add_argument("--every", type=int, default=20, help="steps between energy samples")
    p.add_argument("--repeat", type=int, default=2, help="supercell repeat of the 2-atom bcc cell")
    p.add_argument("--temperature", type=float, default=300.0)
    p.add_argument("--model", help="saved MagneticMACE model (default: fit a small one)")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--save", help="save the fitted model here (then --model FILE reuses it)")
    p.add_argument("--schemes", nargs="+", default=list(SCHEMES), choices=list(SCHEMES) + list(EXTRA),
                   help="two_step: the explicit symmetric two-step scheme (TwoStepLeapfrog); extended_lagrangian: "
                        "auxiliary spins for the fields (ExtendedLagrangian); neither in the default list")
    p.add_argument("--max-spin-iterations", type=int, default=40)
    p.add_argument("--spin-tolerance", type=float, default=1e-10,
                   help="spin_tolerance of the implicit schemes (estimated error of the end spins)")
    p.add_argument("--reversal-steps", type=int, default=0,
                   help="after the runs: this many steps forward from the start, time reversal (v, m) -> (-v, -m), "
                        "as many back; prints how far the spins and positions miss the start (0: skip)")
    p.add_argument("--log", help="append every sample here as it is taken (dt, scheme, t ps, dE meV/atom, "
                   "calls/step of the chunk, ms/step of the chunk): a long run leaves its series even if stopped")
    args = p.parse_args(argv)
    warnings.filterwarnings("ignore", category=UserWarning)
    import torch

    torch.set_num_threads(1)
    from spinlat.potentials import MagneticMACE  # torch: imported once the arguments are parsed

    pot = MagneticMACE.load(args.model, dtype="float64") if args.model else fitted_model(args.epochs)
    if args.save and not args.model:
        pot.save(args.save)
    st0 = initial_state(args.repeat, args.temperature)
    n = len(st0)

    def etot(s):
        return pot.compute(s, forces=False, magnetic_forces=False).energy + s.kinetic_energy()

    e0 = etot(st0)
    if "newton" in args.schemes:
        product_cost(pot, st0)
    print(f"{n} atoms, {args.ps} ps per run, load {os.getloadavg()[0]:.1f}")
    print(f"{'dt fs':>6} {'spin step':>18} {'drift meV/atom/ps':>18} {'fluct meV/atom':>15} {'max|dE| meV/atom':>17} "
          f"{'calls/step':>10} {'call-eq/step':>12} {'unconverged':>11} {'ms/step':>8} {'load':>5}")
    for dt in args.dts:
        steps = int(round(args.ps * 1000 / dt))
        chunks = max(1, steps // args.every)
        runs = {k: dict(integ=EXTRA[k](dt) if k in EXTRA else
                        SpinLatticeNVE(dt, max_spin_iterations=args.max_spin_iterations,
                                       spin_tolerance=args.spin_tolerance, **SCHEMES[k]),
                        state=st0, t=[0.0], e=[0.0], calls=0, equivalents=0, wall=0.0, bad=0)
                for k in args.schemes}
        for c in range(chunks):
            for name, r in runs.items():
                t0 = time.perf_counter()
                r["state"] = r["integ"].run(r["state"], pot, args.every)
                r["wall"] += time.perf_counter() - t0
                r["calls"] += r["integ"].calls_per_step * args.every
                r["equivalents"] += r["integ"].call_equivalents_per_step * args.every
                r["bad"] += r["integ"].statistics.get("unconverged_steps", 0)
                r["t"].append((c + 1) * args.every * dt / 1000.0)
                r["e"].append((etot(r["state"]) - e0) / n * 1000.0)
                if args.log:
                    with open(args.log, "a") as fh:
                        fh.write(f"{dt} {name} {r['t'][-1]:.6f} {r['e'][-1]:.9e} "
                                 f"{r['integ'].calls_per_step:.3f} {1000 * (time.perf_counter() - t0) / args.every:.1f}\n")
        for name, r in runs.items():
            t, e = np.array(r["t"]), np.array(r["e"])
            slope, icpt = np.polyfit(t, e, 1)
            fluct = np.std(e - (slope * t + icpt))
            print(f"{dt:6.3g} {name:>18} {slope:18.3e} {fluct:15.3e} {np.abs(e).max():17.3e} "
                  f"{r['calls'] / (chunks * args.every):10.2f} {r['equivalents'] / (chunks * args.every):12.2f} "
                  f"{r['bad']:11d} {1000 * r['wall'] / (chunks * args.every):8.1f} "
                  f"{os.getloadavg()[0]:5.1f}")
        if args.reversal_steps > 0:
            for name in args.schemes:
                integ = EXTRA[name](dt) if name in EXTRA else SpinLatticeNVE(
                    dt, max_spin_iterations=args.max_spin_iterations, spin_tolerance=args.spin_tolerance,
                    **SCHEMES[name])
                miss = reversal_miss(integ, pot, st0, args.reversal_steps)
                print(f"{dt:6.3g} {name:>18} {args.reversal_steps} steps forward and back: spins miss the start by "
                      f"{miss[0]:.2e}, positions by {miss[1]:.2e} Å")
        if "anderson" in runs and "fixed_point" in runs:
            print(f"{dt:6.3g} calls per step fixed_point / anderson: "
                  f"{runs['fixed_point']['calls'] / runs['anderson']['calls']:.2f}")
        if "anderson" in runs and "newton" in runs:
            print(f"{dt:6.3g} call equivalents per step newton / anderson: "
                  f"{runs['newton']['equivalents'] / runs['anderson']['equivalents']:.2f}")


if __name__ == "__main__":
    main()
