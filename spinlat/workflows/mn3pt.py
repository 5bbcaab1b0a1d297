"""Mn3Pt (L1₂): model, ground-state search and the analysis of the triangular T1 state.

Structure: simple cubic cell, a = 3.83 Å; Pt at the cube corner (0, 0, 0), non-magnetic (moment 0);
Mn on the three face centres (½, ½, 0), (0, ½, ½), (½, 0, ½) with moments 3 μB. Each Mn has 8
nearest Mn neighbours at a/√2 (4 on each of the other two sublattices) and 4 Pt neighbours.

Spin model (:func:`mn3pt_potential`), in the DESIGN.md conventions (unit spins, each pair once)::

    E = −J1 Σ_{⟨ij⟩ Mn-Mn, r = a/√2} s_i·s_j − K Σ_{i ∈ Mn} (s_i·n_i)²

- J1 = −20 meV (antiferromagnetic), ``Heisenberg.from_neighbors`` on the first shell; the Mn-Pt
  pairs of that shell carry no energy because Pt is non-magnetic;
- K = 0.5 meV, local easy axes n_i along the Mn site's ⟨112⟩ direction inside the (111) plane:
  the projection onto (111) of the vector from the cube centre to the site, i.e.
  (½,½,0): [1,1,−2]/√6, (0,½,½): [−2,1,1]/√6, (½,0,½): [1,−2,1]/√6.

On one cell the exchange energy is 4 J1' (s_A·s_B + s_B·s_C + s_C·s_A) with J1' = −J1 > 0
(4 bonds per pair of sublattices), smallest (−6|J1|) when s_A + s_B + s_C = 0: the 120°
triangular state. The local axes sum to zero, so the state s_X = ±n_X satisfies both terms:
E_T1 = −6|J1| − 3K per cell. A collinear state (signs σ_X along a common axis u) has exchange
energy ≥ −4|J1| and anisotropy ≥ −(3/2)K (Σ_X n_X n_Xᵀ = (3/2)(1 − ŵŵᵀ), ŵ = [111]/√3), so the
gap to the best collinear state is 2|J1| + (3/2)K per cell (40.75 meV with the defaults).
"""

from __future__ import annotations

import itertools

import numpy as np

from ..errors import InputError
from ..state import State
from ..keywords import MINIMIZE, parameters_of, refuse_other_names

A_MN3PT = 3.83  # Å, cubic lattice constant
MOMENT_MN = 3.0  # μB
J1_MN3PT = -0.020  # eV per Mn-Mn nearest-neighbour pair, antiferromagnetic
K_MN3PT = 0.5e-3  # eV per Mn, local uniaxial anisotropy

#: fractional positions of the L1₂ cell: Pt, Mn(½,½,0), Mn(0,½,½), Mn(½,0,½)
FRACTIONAL = np.array([[0.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.0, 0.5, 0.5], [0.5, 0.0, 0.5]])
#: local easy axes of the three Mn sublattices (rows, unit): the ⟨112⟩ directions in (111)
LOCAL_AXES = np.array([[1.0, 1.0, -2.0], [-2.0, 1.0, 1.0], [1.0, -2.0, 1.0]]) / np.sqrt(6.0)

#: axes along which the collinear states are enumerated
COLLINEAR_AXES = {"[001]": (0, 0, 1), "[110]": (1, 1, 0), "[1-10]": (1, -1, 0), "[111]": (1, 1, 1),
                  "[11-2]": (1, 1, -2), "[-211]": (-2, 1, 1), "[100]": (1, 0, 0)}


@refuse_other_names()
def mn3pt(a=A_MN3PT, reps=1, moment=MOMENT_MN, spins=None) -> State:
    """Mn3Pt L1₂ supercell ``reps`` (int or 3 ints) of the cubic cell (a in Å, Mn moment in μB);
    Pt has moment 0. Atom order: per cell Pt, Mn(½,½,0), Mn(0,½,½), Mn(½,0,½)."""
    if not a > 0 or not moment > 0:
        raise InputError(f"Mn3Pt needs a > 0 Å and moment > 0 μB, got a={a}, moment={moment}")
    st = State(FRACTIONAL * a, [78, 25, 25, 25], cell=np.eye(3) * a, pbc=True,
               moments=[0.0, moment, moment, moment], spins=spins)
    return st.repeat(reps)


def sublattices(state, a=None) -> np.ndarray:
    """Mn sublattice index of every atom (0: (½,½,0), 1: (0,½,½), 2: (½,0,½)), −1 for Pt/others.

    ``a`` is the cubic lattice constant (Å); default: √2 × the shortest Mn-Mn distance."""
    if a is None:
        a = lattice_constant(state)
    frac = state.positions / a
    f = frac - np.floor(frac + 1e-6)
    half = np.abs(f - 0.5) < 0.05
    zero = (np.abs(f) < 0.05) | (np.abs(f - 1) < 0.05)
    if not np.all(half | zero):
        raise InputError(f"state is not an L1₂ lattice with a = {a:.4f} Å (an atom is off the cubic grid)")
    out = np.full(len(state), -1, dtype=np.int64)
    mn = state.numbers == 25
    nhalf = half.sum(axis=1)
    if np.any(mn & (nhalf != 2)):
        raise InputError("a Mn atom is not on a face centre of the L1₂ cell")
    # the zero coordinate is the face normal: z → 0, x → 1, y → 2
    normal = np.argmax(zero, axis=1)
    out[mn] = np.array([1, 2, 0])[normal[mn]]
    return out


def lattice_constant(state) -> float:
    """Cubic lattice constant (Å) of an L1₂ Mn3Pt state: √2 × the shortest Mn-Mn distance."""
    from ..neighbors import neighbor_pairs

    i, j, _, d = neighbor_pairs(state, 4.0)
    mn = (state.numbers[i] == 25) & (state.numbers[j] == 25)
    if not np.any(mn):
        raise InputError("no Mn-Mn pair closer than 4 Å: not an L1₂ Mn3Pt state")
    return float(d[mn].min() * np.sqrt(2.0))


def mn3pt_local_axes(state, a=None) -> np.ndarray:
    """(N, 3) local easy axes of ``state``: ⟨112⟩ in (111) for Mn, zero rows for Pt."""
    sub = sublattices(state, a)
    axes = np.zeros((len(state), 3))
    axes[sub >= 0] = LOCAL_AXES[sub[sub >= 0]]
    return axes


@refuse_other_names()
def mn3pt_potential(state, J1=J1_MN3PT, K=K_MN3PT, a=A_MN3PT):
    """The spin model of the module docstring for ``state`` (a supercell from :func:`mn3pt`):
    ``Heisenberg.from_neighbors`` (first shell, J1 in eV, < 0 antiferromagnetic) +
    ``UniaxialAnisotropy(K, local axes)`` (K in eV per Mn)."""
    from ..potentials import Heisenberg, UniaxialAnisotropy

    ham = Heisenberg.from_neighbors(mn3pt(a), J=[J1])
    return ham + UniaxialAnisotropy({"Mn": K}, mn3pt_local_axes(state))


def sublattice_moments(state, a=None) -> np.ndarray:
    """(3, 3) average moment vector (μB) of each Mn sublattice."""
    sub = sublattices(state, a)
    m = state.magnetic_moments
    return np.array([m[sub == k].mean(axis=0) for k in range(3)])


def nn_angles(state, a=None) -> np.ndarray:
    """Angles (degrees) between the spins of all nearest-neighbour Mn-Mn pairs."""
    from ..neighbors import neighbor_pairs

    sub = sublattices(state, a)
    if a is None:
        a = lattice_constant(state)
    i, j, _, d = neighbor_pairs(state, 0.85 * a)
    keep = (sub[i] >= 0) & (sub[j] >= 0) & (d < 0.75 * a)
    c = np.sum(state.spins[i[keep]] * state.spins[j[keep]], axis=1)
    return np.degrees(np.arccos(np.clip(c, -1.0, 1.0)))


def triangular_order(state, a=None) -> dict:
    """Measures of the triangular (T1) order of ``state``.

    Returns a dict: ``sublattice_moments`` (3, 3) μB; ``nn_angle_min``/``nn_angle_max`` (degrees,
    over every Mn-Mn nearest-neighbour pair); ``net_moment`` (|Σ_X M_X| / |M_A|, dimensionless);
    ``plane_normal`` (unit normal of the plane of the sublattice moments); ``normal_to_111``
    (degrees between that normal and the nearest ⟨111⟩); ``coherence`` (smallest |mean moment| over
    a sublattice / Mn moment: 1 when every sublattice is uniform); ``along_local_axes`` (smallest
    |s_i·n_i| over Mn)."""
    M = sublattice_moments(state, a)
    ang = nn_angles(state, a)
    sub = sublattices(state, a)
    mom = state.moments[sub >= 0].mean()
    n = np.cross(M[0], M[1])
    n = n / np.linalg.norm(n) if np.linalg.norm(n) > 1e-12 else np.zeros(3)
    w = np.array(list(itertools.product((1, -1), repeat=3)), dtype=float) / np.sqrt(3)
    to111 = float(np.degrees(np.arccos(np.clip(np.max(np.abs(w @ n)), -1, 1))))
    axes = mn3pt_local_axes(state, a)
    proj = np.abs(np.sum(state.spins * axes, axis=1))[sub >= 0]
    return {"sublattice_moments": M, "nn_angle_min": float(ang.min()), "nn_angle_max": float(ang.max()),
            "net_moment": float(np.linalg.norm(M.sum(axis=0)) / np.linalg.norm(M[0])), "plane_normal": n,
            "normal_to_111": to111, "coherence": float(np.min(np.linalg.norm(M, axis=1)) / mom),
            "along_local_axes": float(proj.min())}


@refuse_other_names(extra=parameters_of(MINIMIZE, exclude=("state", "potential", "return_result", "spins", "magnitudes")))
def collinear_states(state, potential, axes=None, a=None, relax_axis=True, **minimize_kwargs):
    """Energies of the collinear sublattice states of ``state`` (every Mn of sublattice X along
    σ_X u, σ ∈ {±1}³ up to a global flip).

    For each sign pattern and each named axis u (``axes``: dict name → vector; default
    :data:`COLLINEAR_AXES`) the energy is evaluated; with ``relax_axis`` the common axis is then
    optimised (the best collinear state of that sign pattern, scipy over the two angles of u).
    Moment magnitudes are relaxed at fixed directions when the potential depends on them.
    Returns a list of dicts (``signs``, ``axis`` name or "optimised", ``u``, ``energy`` eV),
    lowest energy first."""
    from scipy.optimize import minimize as sp_minimize

    from ..minimization import minimize

    axes = COLLINEAR_AXES if axes is None else axes
    sub = sublattices(state, a)
    mn = sub >= 0

    def energy(signs, u):
        u = np.asarray(u, float) / np.linalg.norm(u)
        spins = state.spins.copy()
        spins[mn] = np.asarray(signs, float)[sub[mn], None] * u[None, :]
        st = state.copy(spins=spins)
        if potential.depends_on_magnitudes:
            res = minimize(st, potential, spins=False, magnitudes=True, return_result=True, **minimize_kwargs)[1]
            res.warn_if_unconverged(f"mn3pt anisotropy scan, signs {tuple(signs)}, axis {np.round(u, 6).tolist()}")
            return res.energy
        return potential.compute(st, forces=False, magnetic_forces=False).energy

    out = []
    for signs in ((1, 1, 1), (1, 1, -1), (1, -1, 1), (-1, 1, 1)):
        rows = [{"signs": signs, "axis": name, "u": np.asarray(v, float) / np.linalg.norm(v),
                 "energy": energy(signs, v)} for name, v in axes.items()]
        out += rows
        if relax_axis:
            best = min(rows, key=lambda r: r["energy"])
            u0 = best["u"]
            x0 = [np.arccos(np.clip(u0[2], -1, 1)), np.arctan2(u0[1], u0[0])]

            def f(x, signs=signs):
                return energy(signs, [np.sin(x[0]) * np.cos(x[1]), np.sin(x[0]) * np.sin(x[1]), np.cos(x[0])])

            res = sp_minimize(f, x0, method="Nelder-Mead", options={"xatol": 1e-6, "fatol": 1e-12})
            u = np.array([np.sin(res.x[0]) * np.cos(res.x[1]), np.sin(res.x[0]) * np.sin(res.x[1]),
                          np.cos(res.x[0])])
            out.append({"signs": signs, "axis": "optimised", "u": u, "energy": float(min(res.fun, best["energy"]))})
    return sorted(out, key=lambda r: r["energy"])


@refuse_other_names()
def write_spirit_config(path, reps, J1=J1_MN3PT, K=K_MN3PT, a=A_MN3PT, moment=MOMENT_MN) -> None:
    """Write a Spirit 2.2 input file with the same spin model on the Mn sublattice (Pt left out:
    it carries no spin): ``heisenberg_pairs`` with the 12 unique nearest-neighbour Mn-Mn pairs
    per cell (J1 in meV per unique pair, Spirit's E = −Σ J s_i·s_j as here) and per-basis-atom
    uniaxial anisotropy via ``n_anisotropy`` (K in meV along the local axes), ``reps`` cells per
    direction, periodic, no dipolar term."""
    from ..neighbors import neighbor_pairs

    frac = FRACTIONAL[1:]
    unit = State(frac * a, [25] * 3, cell=np.eye(3) * a, pbc=True, moments=[moment] * 3)
    i, j, S, _ = neighbor_pairs(unit, 0.75 * a)  # each unique pair once, as Spirit counts them
    def num(x):
        return repr(float(x))

    pairs = [f"{p} {q} {s[0]} {s[1]} {s[2]} {num(J1 * 1e3)}" for p, q, s in zip(i, j, S.astype(int))]
    aniso = [f"{k} {num(K * 1e3)} {num(v[0])} {num(v[1])} {num(v[2])}" for k, v in enumerate(LOCAL_AXES)]
    a, moment = num(a), num(moment)
    lines = ["bravais_vectors", f"{a} 0 0", f"0 {a} 0", f"0 0 {a}", "basis", "3",
             *(" ".join(num(x) for x in f) for f in frac), f"mu_s {moment} {moment} {moment}",
             f"n_basis_cells {reps} {reps} {reps}", "lattice_constant 1.0", "hamiltonian heisenberg_pairs",
             "boundary_conditions 1 1 1", "external_field_magnitude 0.0", "external_field_normal 0 0 1",
             "ddi_method none", "n_anisotropy 3", "i K Kx Ky Kz", *aniso, f"n_interaction_pairs {len(pairs)}",
             "i j da db dc Jij", *pairs, "log_to_console 0", "log_to_file 0", "llg_output_any 0"]
    from ..files import atomic_write

    with atomic_write(path) as f:
        f.write("\n".join(lines) + "\n")
