"""Observables of a spin-lattice state and of trajectories: the one definition of each.

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

      k_B T_s = Σ_i |s_i × ω_i|² / Σ_i (2 s_i·ω_i + c_i)

  exact in equilibrium; the denominator is the sum of the Laplacians of E on the spins' unit
  spheres, c_i = tr H_i − s_iᵀ H_i s_i from each spin's own ambient Hessian H_i
  (:meth:`Potential.spin_curvatures`; 0 for energies linear in each spin: exchange, Zeeman;
  checked on free spins in a field with and without uniaxial and cubic anisotropy). The fields come from
  :meth:`Potential.rotation_fields` (projected fields would make the denominator vanish);
- energy drift of a total-energy series: least-squares slope (eV/atom/ps) and largest deviation
  from the first value (eV/atom) — meaningful only for runs that conserve energy (NVE, LLG
  without damping and noise); energy fluctuation: standard deviation per atom (eV/atom).

Magnetisation, with m_i = moments_i · spins_i the moment of atom i (μB):

- :func:`total_moment`: the total moment M = Σ_i m_i, a vector in μB;
- :func:`magnetization_per_atom`: M / N over all N atoms, μB/atom;
- :func:`magnetization_per_magnetic_atom`: M / N_mag over the atoms with |m_i| > 0, μB/atom;
- :func:`reduced_magnetization`: m = M / Σ_i |m_i|, dimensionless, |m| ≤ 1 (also
  :func:`reduced_from_total` from M and the moments, and :func:`reduced_magnetization_kernel`,
  its compiled twin for numba loops).

Who uses which, and why:

- :meth:`spinlat.State.magnetization` and the HDF5 dataset ``magnetization`` (F, 3) are the total
  moment M in μB (DESIGN.md): extensive, what a magnetometer measures, and what the reduced and
  per-atom forms are computed from (:func:`reduced_from_total`) without reading the spins;
- :attr:`spinlat.integrators.MonteCarlo.magnetization` (one row per sweep), the summaries and
  plots of :mod:`spinlat.analysis`, the thermo lines of :class:`spinlat.Simulation` and the Curie
  workflow use the reduced magnetisation m: the order parameter (1 for a saturated ferromagnet,
  → 0 in the paramagnet, size-independent), which the Binder cumulant and the susceptibility
  per spin (:func:`spinlat.analysis.susceptibility` with μ = moment) are written for;
- M / N and M / N_mag compare with experiment (μB per Fe atom) and with DFT cells that hold
  non-magnetic atoms.

Per-frame arrays of a whole trajectory: :func:`spinlat.analysis.trajectory_observables` (it opens
files, so it lives above :mod:`spinlat.io`; this module stays below the integrators that use it).
"""

from __future__ import annotations

import numba
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
    magnetic = terms[0]
    for t in terms[1:]:
        magnetic = magnetic + t  # a sum of potentials (one neighbour list), without importing potentials
    return float(magnetic.compute(state, forces=False, magnetic_forces=False).energy)


def spin_temperature(state, potential=None, fields=None, neighbors=None, curvatures=None) -> float:
    """Spin temperature of Nurdin et al., K (module docstring).

    ``fields`` (N, 3) eV/μB: unprojected effective fields; by default
    ``potential.rotation_fields`` of the magnetic atoms, on ``neighbors`` (a
    :class:`~spinlat.NeighborList` already updated for ``state``; default the potential's own
    cached list). ``curvatures`` (N,) eV, or one number for every atom: the c_i below, needed with
    ``fields`` (0 for energies linear in each spin) unless ``potential`` is given to compute them.
    Returns 0 for a state without magnetic atoms and ``inf`` when the sum of the Laplacians is
    ≤ 0 (no temperature can be defined, e.g. spins against the field). Raises InputError for
    ``fields`` without ``curvatures`` or ``potential`` (the energy may not be linear in each spin:
    the form 2 Σ s·ω alone read 3.7 K for 20 K of free spins with uniaxial anisotropy K = kT/2)
    and for arrays of the wrong shape.

    The estimator k_B T = Σ|s×ω|² / Σ Δ_S E is exact in equilibrium (Nurdin et al., Phys. Rev. E
    61, 3579 (2000)); the spherical Laplacians are Δ_S E = 2 s_i·ω_i + c_i with the curvatures
    c_i of :meth:`Potential.spin_curvatures <spinlat.potentials.base.Potential.spin_curvatures>`
    (0 for energies linear in each spin: exchange, Zeeman; uniaxial and cubic anisotropy and
    couplings to an atom's own periodic images give theirs). For energies that depend on moment
    magnitudes or are many-body in the spins (Landau, mMACE) the rotation fields carry no
    longitudinal part and no per-spin Hessian is known: there, unless ``curvatures`` are given,
    it returns ``nan`` (undefined) rather than a wrong number."""
    mag = np.flatnonzero(state.moments > 0)
    if len(mag) == 0:
        return 0.0
    if fields is None and potential is None:
        raise InputError("spin_temperature needs a potential or fields")
    if fields is not None and curvatures is None and potential is None:
        raise InputError("spin_temperature(fields=...) needs curvatures= ((N,) eV: Potential.spin_curvatures; 0 "
                         "for energies linear in each spin, exchange and Zeeman) or potential= to compute them: "
                         "without them an anisotropy reads a wrong temperature")
    nl = None
    if potential is not None and (fields is None or curvatures is None):
        if potential.depends_on_magnitudes:
            return float("nan")
        nl = None if potential.cutoff <= 0 else neighbors if neighbors is not None else potential.neighbor_list(state)
    if curvatures is None:
        c = potential.spin_curvatures(state, nl, mag)
        if c is None:
            return float("nan")
        curv = float(np.sum(c))
    else:
        c = np.asarray(curvatures, dtype=float)
        if c.ndim == 0:
            c = np.full(len(state), float(c))
        if c.shape != (len(state),):
            raise InputError(f"curvatures must have shape {(len(state),)} (or be one number), got {c.shape}")
        curv = float(np.sum(c[mag]))
    if fields is None:
        h = np.asarray(potential.rotation_fields(state, nl, mag), dtype=float)
    else:
        h = np.asarray(fields, dtype=float)
        if h.shape != (len(state), 3):
            raise InputError(f"fields must have shape {(len(state), 3)}, got {h.shape}")
        h = h[mag]
    s = state.spins[mag]
    w = state.moments[mag, None] * h  # ω = −∂E/∂s, eV
    num = float(np.sum(np.cross(s, w) ** 2))
    den = 2.0 * float(np.sum(s * w)) + curv  # Σ_i Δ_S E, the spherical Laplacians
    if den <= 0:
        return float("inf")
    return num / (units.K_B * den)


# ------------------------------------------------------------------------------ magnetisation
def _spins_moments(spins, moments):
    """(spins (..., N, 3), moments (..., N)) as float arrays; ``spins`` may be a State (its own
    moments are then used); ``moments`` None means unit moments."""
    if hasattr(spins, "spins") and hasattr(spins, "moments"):
        if moments is not None:
            raise InputError("give either a State or spins and moments, not a State and moments")
        return np.asarray(spins.spins, dtype=float), np.asarray(spins.moments, dtype=float)
    s = np.asarray(spins, dtype=float)
    if s.ndim < 2 or s.shape[-1] != 3:
        raise InputError(f"spins must have shape (..., N, 3), got {s.shape}")
    if moments is None:
        return s, np.ones(s.shape[:-1])
    m = np.asarray(moments, dtype=float)
    try:
        m = np.broadcast_to(m, s.shape[:-1])
    except ValueError:
        raise InputError(f"moments of shape {m.shape} do not match spins of shape {s.shape}") from None
    return s, m


def total_moment(spins, moments=None) -> np.ndarray:
    """Total magnetic moment M = Σ_i moments_i spins_i, μB.

    ``spins`` (N, 3) or (F, N, 3) unit vectors (or a :class:`~spinlat.State`); ``moments`` (N,) or
    (F, N) μB (None: unit moments). Returns (3,) or (F, 3). Raises InputError for mismatched
    shapes."""
    s, m = _spins_moments(spins, moments)
    return np.einsum("...n,...nk->...k", m, s)


def reduced_from_total(total, moments) -> np.ndarray:
    """Reduced magnetisation m = M / Σ_i |m_i| from the total moment ``total`` ((3,) or (F, 3) μB)
    and the moment magnitudes ``moments`` ((N,) or (F, N) μB); 0 where no atom is magnetic."""
    total = np.asarray(total, dtype=float)
    norm = np.sum(np.abs(np.asarray(moments, dtype=float)), axis=-1)
    safe = np.where(norm > 0, norm, 1.0)
    return np.where(np.asarray(norm > 0)[..., None], total / np.asarray(safe)[..., None], 0.0)


def reduced_magnetization(spins, moments=None) -> np.ndarray:
    """Reduced magnetisation m = Σ_i m_i / Σ_i |m_i| (dimensionless, |m| ≤ 1; the order parameter).

    Shapes as :func:`total_moment`; returns (3,) or (F, 3); the zero vector where no atom is
    magnetic."""
    s, m = _spins_moments(spins, moments)
    return reduced_from_total(total_moment(s, m), m)


def magnetization_per_atom(spins, moments=None) -> np.ndarray:
    """M / N, μB per atom (N counts every atom, magnetic or not). Shapes as :func:`total_moment`."""
    s, m = _spins_moments(spins, moments)
    return total_moment(s, m) / max(s.shape[-2], 1)


def magnetization_per_magnetic_atom(spins, moments=None) -> np.ndarray:
    """M / N_mag, μB per magnetic atom (moment > 0); 0 without magnetic atoms. Shapes as
    :func:`total_moment`."""
    s, m = _spins_moments(spins, moments)
    count = np.count_nonzero(m > 0, axis=-1)
    return np.where(np.asarray(count > 0)[..., None], total_moment(s, m) / np.maximum(count, 1)[..., None], 0.0)


@numba.njit(cache=True)
def reduced_magnetization_kernel(spins, moments, atoms):
    """Compiled twin of :func:`reduced_magnetization` for numba loops (Monte Carlo sweeps): the
    reduced magnetisation over the atoms ``atoms`` (int64 (K,); the magnetic ones, others add
    nothing), returned as (mx, my, mz); (0, 0, 0) when their moments sum to 0."""
    mx = my = mz = mt = 0.0
    for k in range(atoms.shape[0]):
        i = atoms[k]
        mx += moments[i] * spins[i, 0]
        my += moments[i] * spins[i, 1]
        mz += moments[i] * spins[i, 2]
        mt += abs(moments[i])
    if mt == 0.0:
        return 0.0, 0.0, 0.0
    return mx / mt, my / mt, mz / mt


def magnetization(state) -> np.ndarray:
    """Total moment vector M = Σ_i m_i of a State, μB, (3,) (:func:`total_moment`; the same as
    :meth:`spinlat.State.magnetization`)."""
    return total_moment(state)


def magnetization_norm(state, reduced=False) -> float:
    """|M| = |Σ_i m_i| in μB, or the reduced |m| = |M| / Σ_i |m_i| (0…1) when ``reduced``."""
    vec = reduced_magnetization(state) if reduced else total_moment(state)
    return float(np.linalg.norm(vec))


# ------------------------------------------------------------------------------ energy series
def energy_drift(time, energy, n_atoms=1):
    """Drift of a total-energy series of a run that conserves energy: (least-squares slope,
    eV/atom/ps; largest |E(t) − E(0)|, eV/atom). ``time`` (F,) fs, ``energy`` (F,) eV; (0, 0)
    for fewer than 2 values. Raises InputError for series of other shapes or lengths and for NaN
    or infinite values (frames without an energy: leave them out first)."""
    t = np.asarray(time, float) * 1e-3
    e = np.asarray(energy, float) / n_atoms
    if t.ndim != 1 or t.shape != e.shape:
        raise InputError(f"energy_drift needs time and energy series of one length, got shapes {t.shape} and {e.shape}")
    if not (np.isfinite(t).all() and np.isfinite(e).all()):
        raise InputError("energy_drift: the time or energy series holds NaN or infinite values (frames without "
                         "an energy or a time); leave those frames out")
    if len(t) < 2:
        return 0.0, 0.0
    slope = np.polyfit(t, e, 1)[0]
    return float(slope), float(np.max(np.abs(e - e[0])))


def energy_fluctuation(energy, n_atoms=1) -> float:
    """Standard deviation of an energy series per atom, eV/atom (population σ; 0 for one value):
    what a thermostatted or Monte Carlo run reports instead of a drift (its energy fluctuates
    by design, σ² = k_B T² C for the canonical ensemble). Raises InputError for NaN or infinite
    values."""
    e = np.asarray(energy, float) / n_atoms
    if not np.isfinite(e).all():
        raise InputError("energy_fluctuation: the energy series holds NaN or infinite values; leave those frames out")
    return float(np.std(e)) if len(e) else 0.0


def state_observables(state, potential, evaluation=None) -> dict:
    """All observables of one state as a dict (energies eV, temperatures K, ``magnetization`` the
    total moment M (3,) μB, ``magnetization_norm`` |M| μB, ``reduced_magnetization_norm``
    |M| / Σ|m_i|)."""
    ev = _evaluate(state, potential, evaluation)
    ekin = state.kinetic_energy()
    return {
        "potential_energy": float(ev.energy),
        "kinetic_energy": ekin,
        "total_energy": float(ev.energy) + ekin,
        "spin_energy": spin_energy(state, potential),
        "temperature": state.temperature(),
        "spin_temperature": spin_temperature(state, potential),
        "magnetization": total_moment(state),
        "magnetization_norm": magnetization_norm(state),
        "reduced_magnetization_norm": magnetization_norm(state, reduced=True),
    }
