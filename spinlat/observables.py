"""Observables of a spin-lattice state and of trajectories.

Definitions (units eV, K, μB):

- potential energy E_pot = the potential's energy; kinetic energy E_kin = ½ Σ m v²;
  total energy E_tot = E_pot + E_kin;
- spin energy E_spin = the energy of the potential's *magnetic* terms (those with
  ``magnetic`` True: exchange, Zeeman, anisotropy, Landau, mMACE...); for EAM + exchange +
  Zeeman this is exchange + Zeeman. A potential that is one inseparable magnetic model (mMACE)
  counts as magnetic as a whole, so its spin energy is its whole energy;
- lattice temperature T = 2 E_kin / (3 N k_B) (as :meth:`State.temperature`);
- spin temperature (Nurdin, Schotte, Schotte, Phys. Rev. E 61, 3579 (2000)), with
  ω_i = −∂E/∂s_i = |m_i| h_i (eV) the unprojected field on unit spin i::

      k_B T_s = Σ_i |s_i × ω_i|² / (2 Σ_i s_i·ω_i)

  exact in equilibrium for energies linear in each spin (exchange, Zeeman; checked on free
  spins in a field), a good estimate otherwise. The fields come from
  :meth:`Potential.rotation_fields` (projected fields would make the denominator vanish);
- magnetisation M = Σ_i m_i (μB), its norm |M|, and the reduced |M| / Σ|m_i|;
- energy drift: least-squares slope (eV/atom/ps) and largest deviation (eV/atom) of E_tot(t).

``trajectory_observables(traj, potential=None)`` returns arrays per frame.
"""

from __future__ import annotations

import numpy as np

from . import units
from .errors import InputError


def _evaluate(state, potential, evaluation):
    if evaluation is not None:
        return evaluation
    if potential is None:
        raise InputError("give a potential or an evaluation")
    return potential.compute(state, forces=False, magnetic_forces=False)


def potential_energy(state, potential=None, evaluation=None) -> float:
    """Potential energy, eV (from ``evaluation`` if given, else computed with ``potential``)."""
    return float(_evaluate(state, potential, evaluation).energy)


def kinetic_energy(state) -> float:
    """Lattice kinetic energy ½ Σ m v², eV."""
    return state.kinetic_energy()


def total_energy(state, potential=None, evaluation=None) -> float:
    """Potential + kinetic energy, eV."""
    return potential_energy(state, potential, evaluation) + state.kinetic_energy()


def lattice_temperature(state) -> float:
    """Lattice temperature 2 E_kin / (3 N k_B), K."""
    return state.temperature()


def spin_energy(state, potential) -> float:
    """Energy of the magnetic terms of ``potential`` (see the module docstring), eV."""
    terms = [t for t in potential.terms if getattr(t, "magnetic", True)]
    if not terms:
        return 0.0
    if len(terms) == len(potential.terms):
        return float(potential.compute(state, forces=False, magnetic_forces=False).energy)
    from .potentials.base import SumPotential

    return float(SumPotential(terms).compute(state, forces=False, magnetic_forces=False).energy)


def spin_temperature(state, potential=None, fields=None) -> float:
    """Spin temperature of Nurdin et al., K (module docstring).

    ``fields`` (N, 3) eV/μB: unprojected effective fields; by default
    ``potential.rotation_fields`` of the magnetic atoms. Returns 0 for a state without
    magnetic atoms and ``inf`` when Σ s·ω ≤ 0 (no temperature can be defined, e.g. spins
    against the field)."""
    mag = np.flatnonzero(state.moments > 0)
    if len(mag) == 0:
        return 0.0
    if fields is None:
        if potential is None:
            raise InputError("spin_temperature needs a potential or fields")
        nl = potential.neighbor_list(state) if potential.cutoff > 0 else None
        h = np.asarray(potential.rotation_fields(state, nl, mag), dtype=float)
    else:
        h = np.asarray(fields, dtype=float)
        if h.shape != (len(state), 3):
            raise InputError(f"fields must have shape {(len(state), 3)}, got {h.shape}")
        h = h[mag]
    s = state.spins[mag]
    w = state.moments[mag, None] * h  # ω = −∂E/∂s, eV
    num = float(np.sum(np.cross(s, w) ** 2))
    den = float(np.sum(s * w))
    if den <= 0:
        return float("inf")
    return num / (2.0 * units.K_B * den)


def magnetization(state) -> np.ndarray:
    """Total moment vector Σ_i m_i, μB, (3,)."""
    return state.magnetization()


def magnetization_norm(state, reduced=False) -> float:
    """|Σ_i m_i| in μB, or divided by Σ_i |m_i| when ``reduced`` (0…1)."""
    m = float(np.linalg.norm(state.magnetization()))
    if reduced:
        total = float(np.sum(state.moments))
        return m / total if total > 0 else 0.0
    return m


def energy_drift(time, energy, n_atoms=1):
    """(slope eV/atom/ps by least squares, largest |E(t) − E(0)| eV/atom) of an energy series;
    ``time`` in fs, ``energy`` in eV."""
    from .analysis import energy_drift as _drift

    return _drift(time, energy, n_atoms)


def state_observables(state, potential, evaluation=None) -> dict:
    """All observables of one state as a dict (energies eV, temperatures K, magnetisation μB)."""
    ev = _evaluate(state, potential, evaluation)
    ekin = state.kinetic_energy()
    return {
        "potential_energy": float(ev.energy),
        "kinetic_energy": ekin,
        "total_energy": float(ev.energy) + ekin,
        "spin_energy": spin_energy(state, potential),
        "temperature": state.temperature(),
        "spin_temperature": spin_temperature(state, potential),
        "magnetization": state.magnetization(),
        "magnetization_norm": magnetization_norm(state),
    }


def trajectory_observables(traj, potential=None) -> dict:
    """Observables per frame of a trajectory (path or :class:`~spinlat.io.Trajectory`).

    Always: ``time`` (fs), ``potential_energy``, ``kinetic_energy``, ``total_energy`` (eV, as
    stored), ``temperature`` (K), ``magnetization`` (F, 3) μB, ``magnetization_norm`` (F,) μB,
    ``energy_drift`` (slope eV/atom/ps, max deviation eV/atom). With ``potential`` also
    ``spin_energy`` (eV) and ``spin_temperature`` (K), recomputed frame by frame."""
    from .io import Trajectory

    t = Trajectory(traj) if isinstance(traj, (str, bytes)) or hasattr(traj, "__fspath__") else traj
    out = {k: np.asarray(t.array(k)) for k in ("time", "potential_energy", "kinetic_energy", "total_energy",
                                               "temperature", "magnetization")}
    out["magnetization_norm"] = np.linalg.norm(out["magnetization"], axis=1)
    n = len(t[0]) if len(t) else 1
    out["energy_drift"] = energy_drift(out["time"], out["total_energy"], n)
    if potential is not None:
        frames = [t[i] for i in range(len(t))]
        out["spin_energy"] = np.array([spin_energy(f, potential) for f in frames])
        out["spin_temperature"] = np.array([spin_temperature(f, potential) for f in frames])
    return out
