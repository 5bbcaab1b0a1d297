"""Magnons: k-paths of any lattice, the dynamic structure factor S(q, ω) from atomistic LLG, and
the linear spin-wave (LSWT) dispersion of a ferromagnet with isotropic exchange, ours and
magnopy's. LSWT about any other ground state (antiferromagnets, spirals, DMI, anisotropy, field)
is in :mod:`spinlat.workflows.lswt` (ours, classical, and magnopy's through a converter, with
the same conventions as here).

k-paths: :func:`kpath` for any lattice (ASE's ``cell.bandpath`` special points and standard
paths, 3D, 2D and 1D, optionally only the wave vectors of a supercell); :func:`kpath_bcc` for
bcc in the cube-edge labelling Γ–H–N–Γ–P.

Classical LSWT in spinlat's conventions. With E = −Σ_{pairs} J_ij s_i·s_j (unit spins, each
pair once, J > 0 ferromagnetic), moments μ_i (μB) and the LLG equation of DESIGN.md
(ds_i/dt = −γ s_i × B_i, B_i = h_i/μB, h_i = −∂E/∂m_i = (1/μ_i) Σ_j J_ij s_j), small deviations
δ_i ⊥ ẑ about the ferromagnetic state obey, with δ_i = δ_a(q) e^{i q·r_i} on sublattice a,

    dδ_a/dt = −(γ / (μB μ_a)) ẑ × [ Σ_b J_ab(q) δ_b − J_a(0) δ_a ],

    J_ab(q) = Σ_{j ∈ b} J_ij e^{i q·(r_j − r_i)} (i ∈ a),   J_a(0) = Σ_b J_ab(0),

so the magnon energies are the eigenvalues of

    ħω(q) = g_γ / μ_a · [ δ_ab J_a(0) − J_ab(q) ],      g_γ = ħγ/μB = 2.00232

(one magnetic atom per cell: ħω(q) = g_γ (J(0) − J(q)) / μ). A free spin in a field B precesses
at ω = γB; the factor g_γ is the g-factor implied by DESIGN.md's γ. No factor 2 appears because
each pair is counted once; with TB2J's double-counted J^TB2J = J/2 the formula reads
ħω = 2 g_γ (J^TB2J(0) − J^TB2J(q)) / μ.

magnopy's convention. ``magnopy.io.load_tb2j`` takes TB2J's Hamiltonian on unit spins and spin
values S = |m|/g with g = 2 by default; its LSWT (quantum spins of length S, multiple counting)
gives ħω = (J(0) − J(q)) / S in meV with J the per-pair couplings above, i.e.
ħω_magnopy = (g / g_γ) ħω_ours = 0.998842 ħω_ours for g = 2. With ``spin_values = μ / g_γ`` (what :func:`magnopy_dispersion` passes) the two agree
exactly; tests/test_workflows_magnons.py checks this to 1e-6.

Wave vectors are Cartesian, in 1/Å, including the 2π (q·r is a phase in radians), as in
:func:`spinlat.analysis.structure_factor`.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import units
from ..errors import CellError, InputError
from ..files import save_figure
from ..keywords import refuse_other_names

#: ħγ/μB: the g-factor implied by DESIGN.md's gyromagnetic ratio (dimensionless, 2.00232).
G_GAMMA = units.G_GAMMA

# bcc high-symmetry points in units of 2π/a along the cube axes
BCC_POINTS = {"Γ": (0.0, 0.0, 0.0), "H": (0.0, 0.0, 1.0), "N": (0.5, 0.5, 0.0), "P": (0.5, 0.5, 0.5)}
BCC_PATH = ("Γ", "H", "N", "Γ", "P")


# ------------------------------------------------------------------------------ lattice helpers
def bcc_cubic_cell(cell) -> np.ndarray:
    """Conventional cubic cell (3, 3 rows, Å) of a bcc lattice given its primitive cell ``cell``
    (any orientation): the three orthogonal lattice vectors of length a (the cube edges),
    right-handed, edge k the one most along Cartesian axis k. A cell that is already cubic
    (orthogonal edges of equal length, e.g. the two-atom conventional cell) is returned in that
    order. Raises :class:`CellError` for other cells (2 % tolerance)."""
    cell = np.asarray(cell, dtype=float)
    if cell.shape != (3, 3) or abs(np.linalg.det(cell)) < 1e-10:
        raise CellError(f"bcc_cubic_cell needs a non-singular (3, 3) cell, got shape {np.shape(cell)}")
    lengths = np.linalg.norm(cell, axis=1)
    unit = cell / lengths[:, None]
    off = np.abs(unit @ unit.T - np.eye(3)).max()
    if off < 0.02 and np.ptp(lengths) < 0.02 * lengths.mean():
        return _best_aligned(cell if np.linalg.det(cell) > 0 else -cell)
    a = (2.0 * abs(np.linalg.det(cell))) ** (1.0 / 3.0)  # primitive bcc cell: a³/2
    r = np.arange(-2, 3)
    n = np.array(np.meshgrid(r, r, r, indexing="ij")).reshape(3, -1).T
    vec = n @ cell
    edges = vec[np.abs(np.linalg.norm(vec, axis=1) - a) < 0.02 * a]
    shortest = np.sort(np.linalg.norm(vec[np.any(n != 0, axis=1)], axis=1))[:8]
    unit = edges / np.linalg.norm(edges, axis=1)[:, None] if len(edges) else edges
    for i0 in range(len(edges)):
        for i1 in range(len(edges)):
            if abs(unit[i0] @ unit[i1]) > 0.02:
                continue
            for i2 in range(len(edges)):
                if abs(unit[i0] @ unit[i2]) > 0.02 or abs(unit[i1] @ unit[i2]) > 0.02:
                    continue
                cube = edges[[i0, i1, i2]]
                # bcc: 8 nearest lattice vectors at √3 a/2 and the cube holds 2 lattice points
                if np.linalg.det(cube) > 0 and abs(np.linalg.det(cube) / abs(np.linalg.det(cell)) - 2) < 1e-6 \
                        and np.allclose(shortest, np.sqrt(3) * a / 2, rtol=0.02):
                    return _best_aligned(cube)
    raise CellError("cell is neither a primitive bcc cell nor a cubic cell: no three orthogonal lattice "
                    f"vectors of length a = {a:.4f} Å with 8 nearest neighbours at √3a/2 were found")


def _best_aligned(cube):
    """Reorder/resign the cube edges so that edge k is the one most along Cartesian axis k
    (keeps right-handedness)."""
    out = np.empty((3, 3))
    used = set()
    for k in range(3):
        scores = [abs(cube[m, k]) if m not in used else -1 for m in range(3)]
        m = int(np.argmax(scores))
        used.add(m)
        out[k] = cube[m] * (1.0 if cube[m, k] >= 0 else -1.0)
    if np.linalg.det(out) < 0:
        out[2] = -out[2]
    return out


def cubic_supercell(state, L):
    """The L × L × L supercell of conventional cubic cells of a bcc ``state`` whose cell is
    primitive or cubic, in any orientation (2 L³ atoms per atom of a primitive cell). The cell
    rows are L × :func:`bcc_cubic_cell`; spins, moments and masses are those of the template
    atoms."""
    from ase.build import make_supercell

    from ..state import State

    L = int(L)
    if L < 1:
        raise InputError(f"cubic_supercell needs L >= 1, got {L}")
    cube = bcc_cubic_cell(state.cell)
    P = np.round(cube @ np.linalg.inv(state.cell)).astype(int)
    atoms = make_supercell(state.to_ase(), L * P, wrap=True)
    return State.from_ase(atoms, initial_fractions="keep")


@dataclass
class KPath:
    """A path through the Brillouin zone: ``qpoints`` (K, 3) Cartesian 1/Å (with 2π),
    ``distance`` (K,) cumulative path length (1/Å; it does not advance across a break of the path,
    where the two points before and after sit at the same distance), ``ticks`` positions of the
    labelled points on the distance axis, ``labels`` (a break shows as ``"K|U"``), and
    ``fractions`` (K, 3), the points in the reciprocal basis of the cell the path was made for
    (for :func:`kpath_bcc`: units of 2π/a along the cube edges)."""

    qpoints: np.ndarray
    distance: np.ndarray
    ticks: np.ndarray
    labels: list
    fractions: np.ndarray

    def __len__(self):
        return len(self.qpoints)


def _greek(label):
    return "Γ" if label in ("G", "Gamma", "GAMMA") else label


@refuse_other_names()
def kpath(cell, path=None, n=None, density=None, pbc=None, commensurate=None, special_points=None):
    """High-symmetry path of any lattice, from ASE's Bravais-lattice analysis (``ase.cell.Cell.bandpath``:
    the special points and standard path of W. Setyawan and S. Curtarolo, Comput. Mater. Sci. 49,
    299 (2010), transformed to the cell as given, so the points are valid for this cell in any
    setting or orientation; 2D and 1D lattices through ``pbc``).

    Parameters
    ----------
    cell : (3, 3) rows Å, or a :class:`~spinlat.state.State` (its cell and pbc).
    path : ASE path string such as ``"GXWKGLUWLK,UX"`` (a comma starts a new piece) or a
        sequence of labels; default the standard path of the lattice. ``G`` is shown as Γ.
    n : approximate total number of points (default 100), spread by segment length; or
    density : points per 1/Å along the path (overrides ``n``); or
    commensurate : int or (3,) ints L: only the wave vectors of the ``state.repeat(L)`` supercell
        on each segment (each segment cut into the largest number of equal steps whose
        fractional components are multiples of 1/L), the ones such a simulation cell resolves
        (as :func:`kpath_bcc` does for cubic bcc supercells). Raises :class:`InputError` if a
        special point of the path is not a reciprocal vector of that supercell.
    pbc : periodic directions (default: the State's, or all).
    special_points : dict label → fractional coordinates (reciprocal basis of ``cell``) to use or
        add to ASE's.

    Returns a :class:`KPath` (Cartesian wave vectors in 1/Å with the 2π; ``fractions`` in the
    reciprocal basis of ``cell``). Raises :class:`InputError` for unknown labels or bad options.
    """
    from ase.cell import Cell
    from ase.dft.kpoints import parse_path_string

    from ..sites import completed_basis

    if hasattr(cell, "cell") and hasattr(cell, "pbc"):
        pbc = cell.pbc if pbc is None else pbc
        cell = cell.cell
    cell = np.asarray(cell, dtype=float)
    if cell.shape != (3, 3):
        raise CellError(f"kpath needs a (3, 3) cell, got shape {cell.shape}")
    pbc = np.array(np.broadcast_to(np.asarray(True if pbc is None else pbc, dtype=bool), (3,)))
    basis = completed_basis(cell, pbc)
    bp = Cell(np.where(pbc[:, None], cell, basis)).bandpath(npoints=0, pbc=pbc)
    points = {k: np.asarray(v, float) for k, v in bp.special_points.items()}
    if special_points:
        points.update({k: np.asarray(v, float) for k, v in special_points.items()})
    if path is None:
        pieces = parse_path_string(bp.path)
    elif isinstance(path, str):
        pieces = parse_path_string(path)
    else:
        pieces = [list(path)]
    for piece in pieces:
        for label in piece:
            if label not in points:
                raise InputError(f"unknown special point {label!r} for this {bp.cell.get_bravais_lattice().name} "
                                 f"lattice; known: {sorted(points)}")
        if len(piece) < 2:
            raise InputError(f"a path piece needs at least two points, got {piece}")
    recip = 2 * np.pi * np.linalg.inv(basis).T  # rows: reciprocal basis with the 2π
    if commensurate is not None:
        reps = np.broadcast_to(np.asarray(commensurate, dtype=int), (3,))
        if np.any(reps < 1):
            raise InputError(f"commensurate must be positive repetitions, got {commensurate}")
        for piece in pieces:
            for label in piece:
                f = points[label] * reps
                if not np.allclose(f, np.round(f), atol=1e-6):
                    raise InputError(f"special point {label} = {np.round(points[label], 4).tolist()} is not a wave "
                                     f"vector of the {reps.tolist()} supercell (its coordinates times "
                                     f"{reps.tolist()} must be integers)")
    else:
        total = sum(np.linalg.norm((points[b] - points[a]) @ recip) for piece in pieces
                    for a, b in zip(piece[:-1], piece[1:]))
        if density is None:
            n = 100 if n is None else int(n)
            if n < 2:
                raise InputError(f"kpath needs n >= 2 points, got {n}")
            density = n / max(total, 1e-300)
        elif not density > 0:
            raise InputError(f"density must be positive (points per 1/Å), got {density}")
    fracs, labels, tick_index, breaks = [], [], [], []
    for pi, piece in enumerate(pieces):
        for k, (a, b) in enumerate(zip(piece[:-1], piece[1:])):
            p0, p1 = points[a], points[b]
            if commensurate is not None:
                delta = np.round((p1 - p0) * reps).astype(int)
                steps = max(1, int(np.gcd.reduce(np.abs(delta))))
            else:
                steps = max(1, int(round(np.linalg.norm((p1 - p0) @ recip) * density)))
            t = np.arange(0 if k == 0 else 1, steps + 1) / steps
            if k == 0:
                if pi > 0:
                    labels[-1] = f"{labels[-1]}|{_greek(a)}"
                    breaks.append(sum(len(f) for f in fracs))
                else:
                    labels.append(_greek(a))
                    tick_index.append(0)
            fracs.append(p0[None, :] + t[:, None] * (p1 - p0)[None, :])
            labels.append(_greek(b))
            tick_index.append(sum(len(f) for f in fracs) - 1)
    frac = np.concatenate(fracs)
    q = frac @ recip
    step = np.linalg.norm(np.diff(q, axis=0), axis=1)
    step[np.asarray(breaks, dtype=int) - 1] = 0.0  # no distance across a break
    dist = np.concatenate([[0.0], np.cumsum(step)])
    return KPath(q, dist, dist[tick_index], labels, frac)


@refuse_other_names()
def kpath_bcc(a, n=20, path=BCC_PATH):
    """Points along the bcc high-symmetry lines Γ–H–N–Γ–P (default).

    Parameters
    ----------
    a : lattice constant (Å), cube edges along x, y, z; or any bcc cell (3, 3 rows, Å; primitive
        or cubic, any orientation): the path then follows that cell's cube edges
        (:func:`bcc_cubic_cell`) and its points are exact reciprocal vectors of it.
    n : divisions of 2π/a. Each segment is cut into the largest number of equal steps whose
        cube-edge components are multiples of (2π/a)/n (Γ–H: n steps, H–N, N–Γ, Γ–P: n/2), so
        for even n every point is a reciprocal vector of the n × n × n cubic supercell
        (:func:`cubic_supercell`): exactly the wave vectors such a simulation cell resolves.
    path : labels from ``BCC_POINTS`` (Γ, H, N, P).

    Returns a :class:`KPath` with Cartesian wave vectors in 1/Å.
    """
    n = int(n)
    if n < 1:
        raise InputError(f"kpath_bcc needs n >= 1 divisions, got {n}")
    for p in path:
        if p not in BCC_POINTS:
            raise InputError(f"unknown bcc point {p!r}; known: {sorted(BCC_POINTS)}")
    if np.ndim(a) == 0:
        if not float(a) > 0:
            raise InputError(f"lattice constant must be positive (Å), got {a}")
        cube = float(a) * np.eye(3)
    else:
        cube = bcc_cubic_cell(a)
    recip = 2 * np.pi * np.linalg.inv(cube).T  # rows: 2π/a along each cube edge
    fracs = []
    labels_at = [0]
    for k in range(len(path) - 1):
        p0, p1 = np.array(BCC_POINTS[path[k]]), np.array(BCC_POINTS[path[k + 1]])
        delta = n * (p1 - p0)
        if np.allclose(delta, np.round(delta)):  # commensurate steps: the gcd of n·Δ
            steps = max(1, int(np.gcd.reduce(np.abs(np.round(delta)).astype(int))))
        else:
            steps = max(1, int(round(np.max(np.abs(delta)))))
        t = np.arange(0 if k == 0 else 1, steps + 1) / steps
        fracs.append(p0[None, :] + t[:, None] * (p1 - p0)[None, :])
        labels_at.append(labels_at[-1] + steps)
    frac = np.concatenate(fracs)
    q = frac @ recip
    dist = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(q, axis=0), axis=1))])
    return KPath(q, dist, dist[labels_at], list(path), frac)


# ------------------------------------------------------------------------------ LSWT
def _load(hamiltonian, moment):
    """(Heisenberg, per-template-site moments μB) from a Heisenberg + moment or a TB2J path."""
    from ..potentials.heisenberg import Heisenberg

    if isinstance(hamiltonian, Heisenberg):
        ham = hamiltonian
        if moment is None:
            raise InputError("lswt_dispersion needs the moment (μB) when given a Heisenberg object")
        mom = np.broadcast_to(np.asarray(moment, dtype=float), (len(ham.numbers),)).copy()
    elif isinstance(hamiltonian, (str, Path)):
        from ..io.tb2j import read_tb2j

        st, ham = read_tb2j(hamiltonian)
        mom = st.moments.copy() if moment is None else np.broadcast_to(
            np.asarray(moment, dtype=float), (len(ham.numbers),)).copy()
    else:
        raise InputError(f"expected a Heisenberg potential or a TB2J file path, got {type(hamiltonian).__name__}")
    if np.any(mom < 0) or not np.all(np.isfinite(mom)):
        raise InputError(f"moments must be finite and non-negative (μB), got {mom.tolist()}")
    return ham, mom


def exchange_fourier(hamiltonian, qpoints, moment=None):
    """J_ab(q) (eV), (K, M, M) Hermitian, of the isotropic part of a Heisenberg Hamiltonian
    between its magnetic template sites a, b (moment > 0); ``qpoints`` (K, 3) Cartesian 1/Å."""
    ham, mom = _load(hamiltonian, moment)
    q = np.atleast_2d(np.asarray(qpoints, dtype=float))
    mag = np.flatnonzero(mom > 0)
    index = -np.ones(len(mom), dtype=int)
    index[mag] = np.arange(len(mag))
    jiso = np.trace(ham.J, axis1=1, axis2=2) / 3.0
    vec = ham.positions[ham.j] + ham.R @ ham.cell - ham.positions[ham.i]
    phase = np.exp(1j * q @ vec.T)  # (K, P)
    out = np.zeros((len(q), len(mag), len(mag)), dtype=complex)
    for p in range(ham.n_pairs):
        a, b = index[ham.i[p]], index[ham.j[p]]
        if a < 0 or b < 0:
            continue
        if ham.i[p] == ham.j[p] and not ham.R[p].any():
            continue  # on-site term: not exchange
        out[:, a, b] += jiso[p] * phase[:, p]
        out[:, b, a] += jiso[p] * np.conj(phase[:, p])
    return out


def lswt_dispersion(hamiltonian, qpoints, moment=None):
    """Classical linear spin-wave energies of the ferromagnetic state, meV, (K, M) ascending.

    ħω are the eigenvalues of g_γ/μ_a [δ_ab J_a(0) − J_ab(q)] (module docstring), for the
    isotropic exchange of ``hamiltonian`` — a :class:`~spinlat.potentials.Heisenberg` with
    ``moment`` (μB, scalar or per template site) or a TB2J ``exchange.out`` path (moments from
    the file unless ``moment`` is given). ``qpoints`` (K, 3) Cartesian 1/Å with the 2π.
    M = number of magnetic template sites. Raises :class:`InputError` for anisotropic exchange,
    DMI or on-site anisotropy (the isotropic formula would silently drop them). A negative energy
    means the ferromagnetic state is not a minimum at that q (sublattices coupled
    antiferromagnetically, or a pair set whose outer shells are incomplete: :func:`spinlat.workflows.curie.truncate`);
    a UserWarning then names how many q-points and the lowest energy, since those are no magnon
    energies (:func:`spinlat.workflows.lswt.lswt_energies` takes any ground state)."""
    ham, mom = _load(hamiltonian, moment)
    if not ham.spin_rotation_invariant:
        raise InputError("lswt_dispersion handles isotropic exchange only; this Heisenberg has DMI, "
                         "anisotropic exchange or on-site anisotropy")
    jq = exchange_fourier(ham, qpoints, mom)
    j0 = exchange_fourier(ham, np.zeros((1, 3)), mom)[0].real.sum(axis=1)
    mu = mom[mom > 0]
    # g_γ μ^{-1} (J0 − Jq) is similar to the Hermitian μ^{-1/2} (J0 − Jq) μ^{-1/2}: real eigenvalues
    s = 1.0 / np.sqrt(mu)
    herm = (np.diag(j0)[None] - jq) * (s[None, :, None] * s[None, None, :]) * G_GAMMA
    w = np.linalg.eigvalsh(herm)
    scale = max(float(np.abs(herm).max(initial=0.0)), 1e-300)
    unstable = np.any(w < -1e-9 * scale, axis=1)
    if unstable.any():
        import warnings

        warnings.warn(f"lswt_dispersion: the ferromagnetic state is not a minimum of this exchange at "
                      f"{int(unstable.sum())} of {len(w)} q-points (lowest energy {w.min() / units.MEV:.4g} meV): "
                      "negative energies are no magnons; couplings between sublattices that favour antiparallel "
                      "moments need spinlat.workflows.lswt.lswt_energies about the ground state, incomplete outer "
                      "shells spinlat.workflows.curie.truncate", UserWarning, stacklevel=2)
    return w / units.MEV


@refuse_other_names()
def magnopy_dispersion(path, qpoints, spin_values=None, spin_direction=(0.0, 0.0, 1.0)):
    """Magnon energies (meV, (K, M) ascending real parts) of magnopy's LSWT for the TB2J file
    ``path`` in the ferromagnetic state along ``spin_direction``.

    ``spin_values`` default: μ / g_γ (μ from the file), which makes magnopy's quantum LSWT equal
    spinlat's classical one (:func:`lswt_dispersion`); magnopy's own default S = μ/2 gives energies
    lower by the factor 2/g_γ = 0.998842. Files in TB2J's old 0.2.x layout, which magnopy cannot
    read, are rewritten in the newer layout with :func:`spinlat.io.tb2j.write_tb2j` first.
    ``qpoints`` (K, 3) Cartesian 1/Å with the 2π."""
    import magnopy

    from ..io.tb2j import read_tb2j, write_tb2j

    st, ham = read_tb2j(path)
    if spin_values is None:
        spin_values = st.moments[st.moments > 0] / G_GAMMA
    try:
        spinham = magnopy.io.load_tb2j(str(path), spin_values=list(spin_values))
    except Exception:  # noqa: BLE001 - old layout: convert and retry
        with tempfile.TemporaryDirectory() as tmp:
            new = Path(tmp) / "exchange.out"
            write_tb2j(new, st, ham)
            spinham = magnopy.io.load_tb2j(str(new), spin_values=list(spin_values))
    lswt = magnopy.LSWT(spinham, spin_directions=[list(spin_direction)] * spinham.M)
    q = np.atleast_2d(np.asarray(qpoints, dtype=float))
    out = np.array([np.sort(np.real(lswt.omega(k))) for k in q])
    return out


# ------------------------------------------------------------------------------ LLG and S(q, ω)
@refuse_other_names()
def tilted_spin_wave(state, q, amplitude=0.05, axis=(0.0, 0.0, 1.0)):
    """Spins of a single circularly polarised spin wave of wave vector ``q`` (Cartesian 1/Å)
    about ``axis``: s_i ∝ n̂ + θ (ê₁ cos q·r_i − ê₂ sin q·r_i), θ = ``amplitude`` (rad), the
    sense in which a ferromagnet's magnons precess under spinlat's LLG. Returns (N, 3)."""
    n = np.asarray(axis, dtype=float)
    n = n / np.linalg.norm(n)
    e1 = np.cross(n, [1.0, 0.0, 0.0] if abs(n[0]) < 0.9 else [0.0, 1.0, 0.0])
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(n, e1)
    ph = state.positions @ np.asarray(q, dtype=float)
    s = n[None, :] + amplitude * (np.cos(ph)[:, None] * e1[None, :] - np.sin(ph)[:, None] * e2[None, :])
    return s / np.linalg.norm(s, axis=1)[:, None]


@refuse_other_names()
def llg_spins(state, potential, steps, every=4, dt=0.5, damping=0.0, temperature=0.0, seed=None,
              equilibrate=0, equilibrate_damping=0.1, trajectory=None, progress=False, overwrite=False):
    """Run frozen-lattice LLG and return the spins it samples.

    ``equilibrate`` steps with ``equilibrate_damping`` at ``temperature`` first (skipped if 0),
    then ``steps`` steps of length ``dt`` (fs) with ``damping`` (and thermal noise at
    ``temperature`` K when > 0), keeping a frame every ``every`` steps. With ``trajectory`` (an
    HDF5 path) the production run goes through :class:`spinlat.Simulation`, the frames are
    written there and read back with :class:`spinlat.io.Trajectory`; an existing file is refused
    (InputError, the file untouched) unless ``overwrite`` (:class:`spinlat.Simulation`'s rule).

    Returns (times fs (F,), spins (F, N, 3), final State); frame 0 is the start of production."""
    from ..integrators import LLG

    steps, every = int(steps), int(every)
    if steps < every or every < 1:
        raise InputError(f"need steps >= every >= 1, got steps={steps}, every={every}")
    st = state
    if equilibrate:
        eq = LLG(dt, damping=equilibrate_damping, temperature=temperature, seed=seed)
        st = eq.run(st, potential, int(equilibrate))
    run_seed = None if seed is None else int(seed) + 1
    integ = LLG(dt, damping=damping, temperature=temperature if damping > 0 else 0.0, seed=run_seed)
    if trajectory is not None:
        from ..io import Trajectory
        from ..simulation import Simulation

        with Simulation(st, potential, integ, trajectory=str(trajectory), every=every, progress=progress,
                        overwrite=overwrite) as sim:
            final = sim.run(steps)
        with Trajectory(str(trajectory)) as traj:
            spins = traj.array("spins")
            times = traj.array("time")
        return times - times[0], spins, final
    frames = [st.spins.copy()]
    for _ in range(steps // every):
        st = integ.run(st, potential, every)
        frames.append(st.spins.copy())
    times = dt * every * np.arange(len(frames))
    return times, np.array(frames), st


@refuse_other_names()
def spin_wave_frequency(state, potential, q, steps=4000, dt=0.5, every=2, amplitude=0.05):
    """Frequency (meV) of a single small spin wave of wave vector ``q`` (1/Å) under undamped LLG:
    the peak of S(q, ω) (:func:`spinlat.analysis.structure_factor`), refined by a parabola through
    the log spectrum at the peak bin and its neighbours. Compare with :func:`lswt_dispersion`."""
    from ..analysis import structure_factor

    st = state.copy(spins=tilted_spin_wave(state, q, amplitude))
    times, spins, _ = llg_spins(st, potential, steps, every=every, dt=dt)
    _, mev, s = structure_factor(spins, state.positions, np.atleast_2d(q), times)  # times: checked equally spaced
    return peak_energy(mev, s[0])


def peak_energy(energies, spectrum):
    """Energy of the largest peak of a sampled spectrum, refined by a parabola through the log of
    the peak bin and its neighbours (same unit as ``energies``)."""
    e = np.asarray(energies, float)
    y = np.asarray(spectrum, float)
    k = int(np.argmax(y[1:])) + 1  # skip the static bin
    if k <= 0 or k >= len(y) - 1 or np.any(y[k - 1:k + 2] <= 0):
        return float(e[k])
    lm, l0, lp = np.log(y[k - 1:k + 2])
    denom = lm - 2 * l0 + lp
    shift = 0.5 * (lm - lp) / denom if denom != 0 else 0.0
    return float(e[k] + shift * (e[1] - e[0]))


@refuse_other_names()
def plot_sqw(path, kpath, mev, sqw, lines=(), emax=None, title=None):
    """PNG of log S(q, ω) along ``kpath`` (a :class:`KPath`) with dispersion curves drawn over it.

    ``mev`` (F,) energies of the spectrum, ``sqw`` (K, F); ``lines``: sequence of
    (label, distance (D,), energies meV (D, M), matplotlib style dict)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    emax = float(mev.max()) if emax is None else float(emax)
    keep = mev <= emax
    img = np.log10(np.maximum(sqw[:, keep], 1e-300))
    finite = img[np.isfinite(img)]
    vmax = float(np.max(finite))
    vmin = vmax - 4.0
    d = kpath.distance
    edges = np.concatenate([[d[0] - 0.5 * (d[1] - d[0])], 0.5 * (d[1:] + d[:-1]), [d[-1] + 0.5 * (d[-1] - d[-2])]])
    e = mev[keep]
    de = e[1] - e[0]
    eedges = np.concatenate([e - 0.5 * de, [e[-1] + 0.5 * de]])
    fig, ax = plt.subplots(figsize=(7, 4.5))
    mesh = ax.pcolormesh(edges, eedges, img.T, shading="flat", cmap="magma", vmin=vmin, vmax=vmax)
    fig.colorbar(mesh, ax=ax, label="log₁₀ S(q, ω) (arb.)")
    for label, dist, energies, style in lines:
        energies = np.asarray(energies).reshape(len(dist), -1)
        for m in range(energies.shape[1]):
            ax.plot(dist, energies[:, m], label=label if m == 0 else None, **style)
    ax.set_xticks(kpath.ticks)
    ax.set_xticklabels(kpath.labels)
    for t in kpath.ticks:
        ax.axvline(t, color="w", lw=0.5, alpha=0.5)
    ax.set_xlim(edges[0], edges[-1])
    ax.set_ylim(0, emax)
    ax.set_ylabel("ħω (meV)")
    if lines:
        ax.legend(loc="upper left", fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path, dpi=130)


__all__ = ["G_GAMMA", "BCC_POINTS", "BCC_PATH", "KPath", "bcc_cubic_cell", "cubic_supercell", "kpath", "kpath_bcc",
           "exchange_fourier", "lswt_dispersion", "magnopy_dispersion", "tilted_spin_wave", "llg_spins",
           "spin_wave_frequency", "peak_energy", "plot_sqw"]
