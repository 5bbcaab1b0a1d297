"""Skyrmion collapse in a square monolayer: the model, a relaxed skyrmion, and the same geodesic
nudged elastic band run in Spirit 2.2 for comparison.

Model: the Hamiltonian of ``benchmarks/bench_llg_spirit.py`` — square lattice (a = 1 Å, L × L sites,
periodic in-plane), moments μ = 2 μB,

    E = −Σ_⟨ij⟩ [J s_i·s_j + D_ij·(s_i × s_j)] − K Σ_i (s_i·z)² − μ μB B Σ_i s_i·z,

nearest neighbours, each pair once, Bloch DMI D_ij = D r̂_ij (``Heisenberg.from_neighbors(dmi="bloch")``,
Spirit's chirality 1), J = 10 meV, D = 6 meV, K = 0.1 meV — with the field raised from 5 T to
B = 20 T (:data:`B_SK`): at 5 T the ferromagnet is not even metastable for D/J = 0.6, at 20 T both
the ferromagnet and an isolated skyrmion (about 30 reversed spins) are local minima.

Spirit takes its parameters as single-precision floats (``hamiltonian.set_*`` pass ``c_float``)
and its own Bohr magneton; :func:`spirit_parameters` gives the values that make spinlat's
Hamiltonian the one Spirit really uses. Spirit's energies come back as single-precision floats,
so comparisons evaluate Spirit's spin configurations with spinlat's potential in double precision.
"""

from __future__ import annotations

import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..state import State
from ..keywords import refuse_other_names

J_SK = 0.010  # eV, nearest-neighbour exchange (ferromagnetic)
D_SK = 0.006  # eV, Bloch DMI
K_SK = 1e-4  # eV, easy axis z
B_SK = 20.0  # T, along z
MU_SK = 2.0  # μB


@refuse_other_names()
def square_lattice(L, moment=MU_SK, spins=None) -> State:
    """L × L square monolayer (a = 1 Å, cell L × L × 10 Å, periodic in x and y), every site with
    moment ``moment`` μB; site index i + L j (x fastest, Spirit's order)."""
    if int(L) != L or L < 3:
        raise InputError(f"square_lattice: L must be an integer >= 3, got {L!r}")
    L = int(L)
    j, i = np.divmod(np.arange(L * L), L)
    pos = np.stack([i, j, np.zeros(L * L)], axis=1).astype(float)
    return State(pos, [26] * (L * L), cell=np.diag([float(L), float(L), 10.0]), pbc=[True, True, False],
                 moments=np.full(L * L, float(moment)), spins=spins)


@refuse_other_names()
def skyrmion_potential(J=J_SK, D=D_SK, K=K_SK, B=B_SK):
    """``Heisenberg.from_neighbors`` (J, Bloch D, eV) + ``UniaxialAnisotropy(K, z)`` + ``Zeeman(B z)``
    (T) of the module docstring; applies to any :func:`square_lattice`."""
    from ..potentials import Heisenberg, UniaxialAnisotropy, Zeeman

    unit = State([[0, 0, 0]], [26], cell=np.diag([1.0, 1.0, 10.0]), pbc=[True, True, False], moments=[MU_SK])
    return (Heisenberg.from_neighbors(unit, J=[J], D=[D], dmi="bloch") + UniaxialAnisotropy(K, [0, 0, 1])
            + Zeeman([0, 0, B]))


@refuse_other_names()
def skyrmion_profile(state, radius=3.0, helicity=np.pi / 2, center=None) -> State:
    """``state`` with a skyrmion of ``radius`` (Å) at ``center`` (x, y in Å; default: the centroid of
    the sites, the middle of the cell for a supercell of any in-plane cell, square, triangular or
    oblique): polar angle π(1 − r/radius) inside, +z outside, azimuth = the site's azimuth +
    ``helicity`` (±π/2: Bloch, 0 or π: Néel). r is the minimum-image distance in the periodic
    directions, so a skyrmion centred near an edge stays whole."""
    if center is None:
        frac = state.positions @ np.linalg.inv(_in_plane_cell(state))
        c = frac.mean(axis=0) @ _in_plane_cell(state)
    else:
        c = np.asarray(center, float)
    d = np.zeros((len(state), 3))
    d[:, :2] = state.positions[:, :2] - c[:2]
    cell = _in_plane_cell(state)
    frac = d @ np.linalg.inv(cell)
    periodic = np.asarray(state.pbc, bool)
    frac[:, periodic] -= np.round(frac[:, periodic])
    d = (frac @ cell)[:, :2]
    r = np.linalg.norm(d, axis=1)
    theta = np.pi * np.clip(1.0 - r / radius, 0.0, 1.0)
    phi = np.arctan2(d[:, 1], d[:, 0]) + helicity
    s = np.stack([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)], axis=1)
    return state.copy(spins=s)


def _in_plane_cell(state) -> np.ndarray:
    """The cell of a film with a unit normal in place of a zero or missing third vector."""
    from ..sites import completed_basis

    return np.where(state.pbc[:, None], state.cell, completed_basis(state.cell, state.pbc))


@refuse_other_names()
def relaxed_skyrmion(L=20, potential=None, radius=3.0, tmax=1e-9):
    """(skyrmion, ferromagnet) minima of ``potential`` (default :func:`skyrmion_potential`) on an
    L × L :func:`square_lattice`: both Bloch helicities are relaxed from :func:`skyrmion_profile`
    with ``spinlat.minimize`` (torque tolerance ``tmax`` eV) and the lower one kept. Raises
    InputError when no skyrmion survives (it collapsed or the field is too weak)."""
    from ..minimization import minimize

    pot = skyrmion_potential() if potential is None else potential
    st = square_lattice(L)
    best = None
    for hel in (np.pi / 2, -np.pi / 2):
        out, res = minimize(skyrmion_profile(st, radius, hel), pot, tmax=tmax, max_steps=20000, return_result=True)
        res.warn_if_unconverged(f"relaxed_skyrmion, helicity {hel:+.4f}", stacklevel=3)  # +1: the keyword check
        if out.spins[:, 2].min() < 0 and (best is None or res.energy < best[0]):
            best = (res.energy, out)
    if best is None:
        raise InputError("relaxed_skyrmion: the skyrmion collapsed in this model (no reversed spin left)")
    return best[1], st


@refuse_other_names()
def spirit_parameters(J=J_SK, D=D_SK, K=K_SK, B=B_SK):
    """(J, D, K, B) in spinlat units (eV, T) that give spinlat the Hamiltonian Spirit uses for the
    arguments (Spirit rounds them to float32 in meV and T and uses its own μB)."""
    from spirit import constants

    from .. import units

    f32 = [float(np.float32(x * 1e3)) * 1e-3 for x in (J, D, K)]
    b = float(np.float32(B)) * constants.mu_B * 1e-3 / units.MU_B
    return (*f32, b)


@contextmanager
@refuse_other_names()
def spirit_model(L, J=J_SK, D=D_SK, K=K_SK, B=B_SK, moment=MU_SK):
    """A Spirit 2.2 state (``p_state``, as a context manager) of the model of the module docstring on
    an L × L lattice (sites in :func:`square_lattice` order), J, D, K in eV, B in T, moments in μB;
    no output files, quiet."""
    from spirit import hamiltonian, state

    cfg_text = (f"bravais_lattice sc\nn_basis_cells {L} {L} 1\nboundary_conditions 1 1 0\nlattice_constant 1.0\n"
                f"mu_s {moment}\nddi_method 0\nlog_to_console 0\nlog_to_file 0\nllg_output_any 0\n"
                "gneb_output_any 0\n")
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "input.cfg"
        cfg.write_text(cfg_text)
        with state.State(str(cfg), quiet=True) as p:
            hamiltonian.set_exchange(p, 1, [J * 1e3])
            hamiltonian.set_dmi(p, 1, [D * 1e3], chirality=1)
            hamiltonian.set_anisotropy(p, K * 1e3, [0, 0, 1])
            hamiltonian.set_field(p, B, [0, 0, 1])
            yield p


@refuse_other_names()
def spirit_gneb(path_spins, L, J=J_SK, D=D_SK, K=K_SK, B=B_SK, tol=1e-5, spring_constant=1e-3,
                climb_after=None, solver="lbfgs_oso", max_iterations=100000):
    """Run Spirit 2.2's GNEB on the band ``path_spins`` ((M, L², 3), sites in :func:`square_lattice`
    order) of the model with parameters J, D, K (eV) and B (T): first without a climbing image
    until the force is below ``climb_after`` (eV/rad; default 10 tol), then with the highest inner
    image climbing until ``tol`` (eV/rad). ``spring_constant`` in eV/rad², ``solver`` "lbfgs_oso"
    or "vp". Returns a dict: ``spins`` (M, L², 3) of the converged band, ``energies`` (M,) eV as
    Spirit reports them (float32), ``climbing`` index, ``iterations`` (both stages),
    ``wall_s`` and ``cpu_s`` (seconds in Spirit's solver), ``max_torque`` (eV/rad) and
    ``positions`` (Spirit's site positions, Å)."""
    from spirit import chain, geometry, parameters, simulation, system

    solvers = {"lbfgs_oso": simulation.SOLVER_LBFGS_OSO, "vp": simulation.SOLVER_VP}
    if solver not in solvers:
        raise InputError(f"spirit_gneb: solver must be one of {sorted(solvers)}, got {solver!r}")
    path_spins = np.asarray(path_spins, float)
    m = path_spins.shape[0]
    out = {}
    with spirit_model(L, J, D, K, B) as p:
        out["positions"] = np.array(geometry.get_positions(p)).reshape(-1, 3)
        chain.image_to_clipboard(p)
        chain.set_length(p, m)
        for k in range(m):
            system.get_spin_directions(p, idx_image=k)[:] = path_spins[k]
        chain.update_data(p)
        parameters.gneb.set_output_general(p, any=False)
        parameters.gneb.set_spring_force(p, spring_constant * 1e3, 0.0)
        iterations, wall, cpu = 0, 0.0, 0.0
        stages = ((climb_after if climb_after is not None else 10 * tol, False), (tol, True))
        for conv, climb in stages:
            if climb:
                e = np.array(chain.get_energy(p))
                out["climbing"] = 1 + int(np.argmax(e[1:-1]))
                parameters.gneb.set_climbing_falling(p, parameters.gneb.IMAGE_CLIMBING, idx_image=out["climbing"])
            parameters.gneb.set_convergence(p, conv * 1e3)
            t0, c0 = time.perf_counter(), time.process_time()
            info = simulation.start(p, simulation.METHOD_GNEB, solvers[solver], n_iterations=max_iterations,
                                    n_iterations_log=max_iterations)
            wall, cpu = wall + time.perf_counter() - t0, cpu + time.process_time() - c0
            iterations += info.total_iterations
            out["max_torque"] = info.max_torque * 1e-3
        chain.update_data(p)
        out["spins"] = np.array([np.array(system.get_spin_directions(p, idx_image=k)) for k in range(m)])
        out["energies"] = np.array(chain.get_energy(p)) * 1e-3
    out["iterations"], out["wall_s"], out["cpu_s"] = iterations, wall, cpu
    return out
