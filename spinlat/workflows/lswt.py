"""Linear spin-wave theory (LSWT) about any ground state — collinear or not, with DMI, anisotropic
exchange, single-ion anisotropy and a field — ours (classical) and magnopy's, through a
converter from spinlat's models to ``magnopy.SpinHamiltonian``.

The model. :func:`spin_model` reads a spin Hamiltonian made of :class:`~spinlat.potentials.Heisenberg`
(3×3 pair tensors and on-site tensors), :class:`~spinlat.potentials.UniaxialAnisotropy` and
:class:`~spinlat.potentials.Zeeman` terms on a *magnetic cell* ``state`` (the cell of the ground
state: the template cell for a ferromagnet, a supercell for an antiferromagnet or a commensurate
spiral) as the bilinear form (eV, unit spins s_a, DESIGN.md signs)

    E = − Σ_p s_{a_p}ᵀ J_p s_{b_p}(L_p) − Σ_a s_aᵀ A_a s_a − Σ_a b_a·s_a,

pairs p once each, atom b_p in the cell shifted by the lattice vector L_p of ``state.cell``;
A_a = K_a n_a n_aᵀ for uniaxial anisotropy (plus Heisenberg on-site tensors), b_a = μB μ_a B.
Other terms (``CubicAnisotropy`` — quartic —, ``Landau``, EAM, mMACE, ...) raise
:class:`~spinlat.errors.InputError` naming the term.

Classical LSWT (:func:`lswt_energies`): spinlat's LLG (ds_a/dt = (γ/(μB μ_a)) s_a × ∂E/∂s_a)
linearised about the ground state. In local frames (e1_a, e2_a, s_a), small deviations u_a ∈ R²
have the energy ½ uᵀ H u with the tangent-space Hessian

    H_ab = E_aᵀ (∂²E/∂s_a∂s_b) E_b − δ_ab (s_a·∂E/∂s_a) 1₂,     E_a = [e1_a, e2_a] (3×2),

and move as u̇_a = (g_γ/(ħ μ_a)) Ω H u, Ω = [[0, −1], [1, 0]] (g_γ = ħγ/μB). With Bloch waves
u_a(L) = u_a(q) e^{i q·(r_a + L)} this gives H(q) (2M × 2M, Hermitian) and the magnon energies
ħω(q), the positive eigenvalues of the Hermitian matrix H(q)^{1/2} (i C Ω) H(q)^{1/2},
C = diag(g_γ/μ_a) (real when H(q) is positive semi-definite, i.e. the state is a local minimum;
NaN where it is not). For a ferromagnet with isotropic exchange this is
:func:`spinlat.workflows.magnons.lswt_dispersion`. References: the classical-spin form of
linear spin-wave theory, e.g. S. Toth and B. Lake, J. Phys.: Condens. Matter 27, 166002 (2015)
(SpinW, local frames for non-collinear states), with the equation of motion of DESIGN.md.

magnopy (:func:`to_magnopy`, :func:`magnopy_energies`). The converter writes the same bilinear
form as a ``magnopy.SpinHamiltonian`` in meV with the convention ``Convention(
multiple_counting=False, spin_normalized=True, c1=−1, c21=−1, c22=−1)`` — pairs once, parameters
multiplying unit vectors, minus signs as above — so magnopy's classical energy
(``magnopy.Energy``) is spinlat's (in meV). Its spin values are S_a = μ_a / g_γ (by default; the
convention of :func:`spinlat.workflows.magnons.magnopy_dispersion`) and its g-factors g_γ;
magnopy's LSWT (``magnopy.LSWT``, Colpa diagonalisation) of a Hamiltonian written on normalised
spins then gives exactly the classical energies above, anisotropy included (no (2S−1)/2S factor:
the parameters act on unit vectors). magnopy's own default S = μ/2 would lower every energy by
2/g_γ.

The state must be a stationary point (every spin along its local field; :func:`spin_model`
checks the torque): LSWT about anything else is meaningless. Find it with :func:`spinlat.minimize`
on the magnetic cell first. Wave vectors are Cartesian, 1/Å, with the 2π.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import units
from ..errors import InputError
from ..keywords import refuse_other_names

#: ħγ/μB (dimensionless): the g-factor of spinlat's LLG.
G_GAMMA = units.G_GAMMA


@dataclass
class SpinModel:
    """A bilinear spin Hamiltonian on the magnetic atoms of one cell (module docstring).

    ``cell`` (3, 3) rows Å (a non-periodic direction gets a unit-length normal so the cell is
    invertible; no pair crosses it), ``pbc`` (3,), ``atoms`` (M,) indices of the magnetic atoms
    in the state, ``positions`` (M, 3) Å, ``numbers`` (M,), ``moments`` (M,) μB, ``spins`` (M, 3)
    unit vectors of the ground state; pairs ``i``, ``j`` (P,) indices 0..M−1, ``L`` (P, 3)
    integer lattice vectors of ``cell``, ``J`` (P, 3, 3) eV; ``onsite`` (M, 3, 3) eV (symmetric);
    ``field`` (M, 3) eV."""

    cell: np.ndarray
    pbc: np.ndarray
    atoms: np.ndarray
    positions: np.ndarray
    numbers: np.ndarray
    moments: np.ndarray
    spins: np.ndarray
    i: np.ndarray
    j: np.ndarray
    L: np.ndarray
    J: np.ndarray
    onsite: np.ndarray
    field: np.ndarray

    @property
    def bonds(self) -> np.ndarray:
        """(P, 3) Cartesian vectors r_j + L·cell − r_i of the pairs, Å."""
        return self.positions[self.j] + self.L @ self.cell - self.positions[self.i]

    def energy(self, spins=None) -> float:
        """E (eV) of spins (M, 3) (default the ground state) repeated in every cell, per cell."""
        s = self.spins if spins is None else np.asarray(spins, float)
        e = -np.einsum("pa,pab,pb->", s[self.i], self.J, s[self.j])
        e -= np.einsum("ma,mab,mb->", s, self.onsite, s)
        return float(e - np.sum(self.field * s))

    def gradient(self, spins=None) -> np.ndarray:
        """∂E/∂s_a (M, 3) eV for spins repeated in every cell (default the ground state)."""
        s = self.spins if spins is None else np.asarray(spins, float)
        g = -np.einsum("mab,mb->ma", self.onsite + np.swapaxes(self.onsite, 1, 2), s) - self.field
        np.add.at(g, self.i, -np.einsum("pab,pb->pa", self.J, s[self.j]))
        np.add.at(g, self.j, -np.einsum("pab,pa->pb", self.J, s[self.i]))
        return g

    def local_frames(self) -> np.ndarray:
        """(M, 3, 2): two unit vectors e1, e2 ⊥ s_a with e1 × e2 = s_a, per atom."""
        s = self.spins
        ref = np.where(np.abs(s[:, 0:1]) < 0.9, [[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]])
        e1 = np.cross(ref, s)
        e1 /= np.linalg.norm(e1, axis=1)[:, None]
        e2 = np.cross(s, e1)
        return np.stack([e1, e2], axis=2)

    def hessian(self, qpoints) -> np.ndarray:
        """Tangent-space Hessian H(q) (K, 2M, 2M) eV, Hermitian (module docstring)."""
        q = np.atleast_2d(np.asarray(qpoints, float))
        m = len(self.atoms)
        frames = self.local_frames()
        # q-independent diagonal: on-site curvature and −(s·∂E/∂s) 1₂
        diag = -np.einsum("mai,mab,mbj->mij", frames, self.onsite + np.swapaxes(self.onsite, 1, 2), frames)
        diag -= np.einsum("ma,ma->m", self.spins, self.gradient())[:, None, None] * np.eye(2)[None]
        h = np.zeros((len(q), 2 * m, 2 * m), complex)
        for a in range(m):
            h[:, 2 * a:2 * a + 2, 2 * a:2 * a + 2] += diag[a]
        blocks = -np.einsum("pai,pab,pbj->pij", frames[self.i], self.J, frames[self.j])  # (P, 2, 2)
        phase = np.exp(1j * q @ self.bonds.T)  # (K, P)
        for p in range(len(self.i)):
            a, b = 2 * self.i[p], 2 * self.j[p]
            block = phase[:, p, None, None] * blocks[p][None]
            h[:, a:a + 2, b:b + 2] += block
            h[:, b:b + 2, a:a + 2] += np.conj(np.swapaxes(block, 1, 2))
        return h


def _terms(potential):
    return list(potential.terms) if hasattr(potential, "terms") else [potential]


def _heisenberg_pairs(ham, state):
    """Pairs of a Heisenberg template expanded onto ``state``: (i, j, L, J) over the state's atoms
    with L integer lattice vectors of state.cell, and the on-site tensors (N, 3, 3)."""
    from ..sites import SiteTemplate, reduce_lattice

    tpl = SiteTemplate(ham.cell, ham.positions, ham.numbers, ham.pbc, ham.strain_tolerance, ham.position_tolerance,
                       name="Heisenberg template")
    sm = tpl.match(state)
    J = ham.tensors_on(state)  # in the state's frame (rotated with a turned crystal)
    n = len(state)
    lookup = {}
    cellkey = reduce_lattice(sm.lattice, sm.hnf)
    for a in range(n):
        lookup[(int(sm.site[a]), int(cellkey[a]))] = a
    inv_m = np.linalg.inv(sm.mint.astype(float))
    onsite = np.zeros((n, 3, 3))
    ii, jj, LL, JJ = [], [], [], []
    offset = tpl.offset
    for p in range(ham.n_pairs):
        i0, j0, r0 = int(ham.i[p]), int(ham.j[p]), ham.R[p]
        atoms = np.flatnonzero(sm.site == i0)
        if i0 == j0 and not r0.any():
            onsite[atoms] += 0.5 * (J[p] + J[p].T)
            continue
        target = sm.lattice[atoms] + r0 + offset[j0] - offset[i0]
        tkey = reduce_lattice(target, sm.hnf)
        for a, t, k in zip(atoms, target, tkey):
            b = lookup[(j0, int(k))]
            shift = (t - sm.lattice[b]) @ inv_m
            ii.append(a)
            jj.append(b)
            LL.append(np.round(shift).astype(np.int64))
            JJ.append(J[p])
    return (np.array(ii, np.int64), np.array(jj, np.int64), np.array(LL, np.int64).reshape(-1, 3),
            np.array(JJ).reshape(-1, 3, 3), onsite)


def spin_model(state, potential, torque_tolerance=1e-4) -> SpinModel:
    """The bilinear spin model of ``potential`` on the magnetic cell ``state`` (module docstring).

    ``potential``: a Heisenberg, UniaxialAnisotropy or Zeeman term or a sum of them; ``state``:
    a supercell (or the template cell) of every Heisenberg template, holding the ground state.
    Raises :class:`InputError` for other terms (named), for a state without magnetic atoms, or
    when a spin is not along its local field (largest |s × ∂E/∂s| above ``torque_tolerance``
    × the largest |∂E/∂s|): minimise first."""
    from ..potentials import Heisenberg, UniaxialAnisotropy, Zeeman
    from ..potentials.single_site import species_table
    from ..sites import completed_basis

    mag = np.flatnonzero(state.moments > 0)
    if len(mag) == 0:
        raise InputError("spin_model: the state has no magnetic atom (all moments are 0)")
    index = -np.ones(len(state), np.int64)
    index[mag] = np.arange(len(mag))
    n = len(state)
    pi, pj, pl, pJ = [], [], [], []
    onsite = np.zeros((n, 3, 3))
    field = np.zeros((n, 3))
    for term in _terms(potential):
        if isinstance(term, Heisenberg):
            i, j, L, J, on = _heisenberg_pairs(term, state)
            pi.append(i)
            pj.append(j)
            pl.append(L)
            pJ.append(J)
            onsite += on
        elif isinstance(term, UniaxialAnisotropy):
            k = species_table(term.K, "anisotropy constant K")[0][state.numbers]
            axes = term.axis if term.per_atom else np.broadcast_to(term.axis, (n, 3))
            if len(axes) != n:
                raise InputError(f"UniaxialAnisotropy has {len(axes)} per-atom axes, the state has {n} atoms")
            onsite += k[:, None, None] * np.einsum("na,nb->nab", axes, axes)
        elif isinstance(term, Zeeman):
            on = np.ones(n, bool) if term.species is None else np.isin(state.numbers, term.species)
            field += np.where(on[:, None], units.MU_B * state.moments[:, None] * term.B[None, :], 0.0)
        else:
            raise InputError(f"LSWT handles Heisenberg, UniaxialAnisotropy and Zeeman terms; {term!r} is none of "
                             "them (quartic anisotropy, longitudinal and lattice terms have no bilinear form here)")
    i = np.concatenate(pi) if pi else np.zeros(0, np.int64)
    j = np.concatenate(pj) if pj else np.zeros(0, np.int64)
    L = np.concatenate(pl) if pl else np.zeros((0, 3), np.int64)
    J = np.concatenate(pJ) if pJ else np.zeros((0, 3, 3))
    keep = (index[i] >= 0) & (index[j] >= 0)  # spin terms act on magnetic atoms only
    cell = np.where(state.pbc[:, None], state.cell, completed_basis(state.cell, state.pbc))
    model = SpinModel(cell, state.pbc.copy(), mag, state.positions[mag], state.numbers[mag], state.moments[mag],
                      state.spins[mag], index[i[keep]], index[j[keep]], L[keep], J[keep], onsite[mag], field[mag])
    g = model.gradient()
    torque = np.linalg.norm(np.cross(model.spins, g), axis=1)
    scale = max(float(np.linalg.norm(g, axis=1).max()), 1e-300)
    if torque.max() > torque_tolerance * scale:
        a = int(np.argmax(torque))
        raise InputError(f"the state is not a stationary point: atom {int(mag[a])} feels a torque |s × ∂E/∂s| = "
                         f"{torque[a]:.3g} eV ({torque[a] / scale:.2g} of the largest field); LSWT needs the ground "
                         "state (minimise the magnetic cell first, e.g. sl.minimize(state, potential, tmax=1e-8))")
    return model


def _model(state, potential):
    return state if isinstance(state, SpinModel) else spin_model(state, potential)


def lswt_energies(state, potential, qpoints, stability_tolerance=1e-9):
    """Classical linear spin-wave energies (meV), (K, M) ascending, about the ground state
    ``state`` of ``potential`` (or a :class:`SpinModel` as ``state``, ``potential`` then unused),
    at Cartesian ``qpoints``
    (K, 3) 1/Å with the 2π; M = magnetic atoms of the cell (module docstring). A wave vector at
    which H(q) has an eigenvalue below −``stability_tolerance`` × the largest |H_ab(q)| over all
    ``qpoints`` (the state is not a minimum there) gives a row of NaN."""
    model = _model(state, potential)
    h = model.hessian(qpoints)
    m = len(model.atoms)
    c = np.repeat(G_GAMMA / model.moments, 2)
    omega = np.zeros((2 * m, 2 * m), complex)
    for a in range(m):
        omega[2 * a:2 * a + 2, 2 * a:2 * a + 2] = [[0, -1], [1, 0]]
    dyn = 1j * c[:, None] * omega  # Hermitian: C commutes with Ω blockwise
    out = np.full((len(h), m), np.nan)
    scale = max(float(np.abs(h).max(initial=0.0)), 1e-300)  # eV: the largest curvature
    for k, hk in enumerate(h):
        lam, vec = np.linalg.eigh(0.5 * (hk + hk.conj().T))
        if lam.min() < -stability_tolerance * scale:
            continue
        root = (vec * np.sqrt(np.clip(lam, 0.0, None))) @ vec.conj().T
        w = np.linalg.eigvalsh(root @ dyn @ root)
        out[k] = np.sort(w[m:])  # the M non-negative of the ± pairs
    return np.clip(out, 0.0, None) / units.MEV


@refuse_other_names()
def to_magnopy(state, potential=None, spin_values=None):
    """A ``magnopy.SpinHamiltonian`` (meV) of the model on the magnetic cell (module docstring):
    only the magnetic atoms, named ``<symbol><index>``, at fractional positions of the model's
    cell; spin values S_a = μ_a/g_γ unless ``spin_values`` (M,) is given; g-factors g_γ.
    ``state`` may be a :class:`SpinModel`. The ground-state directions are not part of a magnopy
    Hamiltonian: give ``model.spins`` to ``magnopy.LSWT`` (as :func:`magnopy_energies` does).
    Raises :class:`InputError` (through :func:`spin_model`) for unsupported terms or a
    non-stationary state, and for a magnetic atom without any coupling."""
    import magnopy
    from ase.data import chemical_symbols

    model = _model(state, potential)
    m = len(model.atoms)
    spins = model.moments / G_GAMMA if spin_values is None else np.broadcast_to(np.asarray(spin_values, float), (m,))
    conv = magnopy.Convention(multiple_counting=False, spin_normalized=True, c1=-1, c21=-1, c22=-1, name="spinlat")
    frac = model.positions @ np.linalg.inv(model.cell)
    atoms = dict(names=[f"{chemical_symbols[z]}{k}" for k, z in enumerate(model.numbers)], positions=frac.tolist(),
                 spins=[float(s) for s in spins], g_factors=[float(G_GAMMA)] * m)
    h = magnopy.SpinHamiltonian(cell=model.cell, atoms=atoms, convention=conv, units="meV")
    scale = 1.0 / units.MEV
    for p in range(len(model.i)):
        a, b, L = int(model.i[p]), int(model.j[p]), tuple(int(x) for x in model.L[p])
        if a == b and not any(L):
            continue
        h.add(nus=[L], alphas=[a, b], parameter=model.J[p] * scale, when_present="sum")
    for a in range(m):
        if np.any(model.onsite[a]):
            h.add(nus=[(0, 0, 0)], alphas=[a, a], parameter=model.onsite[a] * scale, when_present="sum")
        if np.any(model.field[a]):
            h.add(nus=[], alphas=[a], parameter=model.field[a] * scale, when_present="sum")
    missing = sorted(set(range(m)) - set(h.map_to_all))
    if missing:
        raise InputError(f"magnetic atoms {[int(model.atoms[k]) for k in missing]} have no coupling at all; "
                         "magnopy would drop them (a free spin has no spin wave)")
    return h


@refuse_other_names()
def magnopy_energies(state, potential, qpoints, spin_values=None, complex_parts=False):
    """magnopy's LSWT energies (meV), (K, M) ascending real parts, of the model on the magnetic
    cell about its ground state, at Cartesian ``qpoints`` (K, 3) 1/Å with the 2π. With
    ``complex_parts`` also the (K, M) imaginary parts (non-zero where the state is unstable)."""
    import magnopy

    model = _model(state, potential)
    lswt = magnopy.LSWT(to_magnopy(model, spin_values=spin_values), spin_directions=model.spins)
    q = np.atleast_2d(np.asarray(qpoints, float))
    w = np.array([np.asarray(lswt.omega(k), complex) for k in q])
    order = np.argsort(w.real, axis=1)
    w = np.take_along_axis(w, order, axis=1)
    return (w.real, w.imag) if complex_parts else w.real


__all__ = ["G_GAMMA", "SpinModel", "spin_model", "lswt_energies", "to_magnopy", "magnopy_energies"]
