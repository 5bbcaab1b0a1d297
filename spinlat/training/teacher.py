"""Synthetic reference data: configurations labelled by an analytic "teacher" spin-lattice Hamiltonian.

Nothing here comes from a first-principles calculation. The teacher is a smooth, documented model
Hamiltonian with sensible magnitudes for bcc Fe, fcc Ni and Fe-Ni alloys; its job is to give the
mMACE tests, examples and benchmarks labels that are *exact* (energy, forces, magnetic forces and
stress all come from one energy function by autograd in float64) and that hold every kind of
coupling mMACE must learn. Every configuration carries ``atoms.info["source"]`` saying so.
Public as :mod:`spinlat.datasets` (``sl.datasets.teacher(system, n_configs, seed, soc=True)``).

The teacher Hamiltonian
-----------------------
Atoms i of species a carry moment vectors m_i (μB); m0_a is the reference moment magnitude of the
species (Fe 2.2 μB, Ni 0.6 μB). Every distance function is multiplied by the smooth switch
f_c(r) = 1 − x³(10 − 15x + 6x²), x = clip((r − r_on)/(r_c − r_on), 0, 1), with r_on = 3.0 Å and
r_c = 4.0 Å (f_c, f_c' and f_c'' are continuous). Sums over j run over all neighbours (periodic
images included) closer than r_c, r̂_ij is the unit vector from i to j.

1. Lattice (Finnis-Sinclair type):
   E_lat = Σ_i [ ½ Σ_j φ_ab(r_ij) − A_a √ρ_i ],  ρ_i = Σ_j exp(−β_b (r_ij − r1_b)) f_c(r_ij),
   φ_ab(r) = D_ab [exp(−2α_ab (r − r0_ab)) − 2 exp(−α_ab (r − r0_ab))] f_c(r).
   Fe-Ni cross parameters are the arithmetic means. The parameters (table ``LATTICE``) give the
   energy minima of the ferromagnetic ground state at a = 2.866 Å (bcc Fe) and a = 3.52 Å (fcc Ni).
2. Exchange (Bethe-Slater form of LAMMPS's ``spin/exchange``, magnitude dependent):
   E_ex = −Σ_{i<j} J_ab(r_ij) (m_i·m_j)/(m0_a m0_b),
   J(r) = 4 J1 (r/J3)² (1 − J2 (r/J3)²) exp(−(r/J3)²) f_c(r)   (eV; J > 0 ferromagnetic).
3. Landau longitudinal energy per atom: E_L = Σ_i a_a |m_i|² + b_a |m_i|⁴ with a_a = −2 b_a m0_a²
   (a minimum of depth b_a m0_a⁴ at |m| = m0_a when alone).
4. Spin-orbit terms (``soc=True`` only; all of them are invariant only under *joint* rotations of
   lattice and moments, and even under m → −m):
   - three-site (Fert-Levy) Dzyaloshinskii-Moriya interaction mediated by every atom k:
     E_DM = Σ_k d_c Σ_{i<j ∈ N(k)} g(r_ki) g(r_kj) (r̂_ki × r̂_kj)·(m_i × m_j)/(m0_a m0_b),
     which vanishes in a perfect centrosymmetric lattice and appears with displacements; it is a
     true scalar (not a pseudoscalar), so an O(3)-equivariant model can learn it;
   - pseudo-dipolar pair anisotropy: E_pd = Σ_{i<j} Kp_ab g(r_ij) (m_i·r̂_ij)(m_j·r̂_ij)/(m0_a m0_b);
   - Néel single-ion anisotropy: E_N = Σ_i Σ_j Ks_a g(r_ij) (m_i·r̂_ij)²/m0_a²;
   with g(r) = exp(−(r − 2.5 Å)/0.5 Å) f_c(r).

All terms are even in m (time reversal) and smooth in m through m = 0. With ``soc=False`` the
energy is unchanged when all moments rotate while the lattice stays fixed.

Labels follow spinlat's conventions: ``info["energy"]`` eV, ``arrays["forces"]`` eV/Å,
``arrays["magmoms"]`` (N,3) μB, ``arrays["magnetic_forces"]`` = −∂E/∂m (N,3) eV/μB,
``info["stress"]`` Voigt (6,) eV/Å³ with ASE's sign ((1/V)∂E/∂ε, symmetric strain).
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError, InputError, UnknownElementError
from ..keywords import parameters_of, refuse_other_names

#: systems :func:`teacher` can generate
SYSTEMS = ("Fe", "Ni", "FeNi")

#: inner and outer radius of the smooth switch of every teacher term, Å
R_ON = 3.0
R_CUT = 4.0
#: reference distance and decay length of the spin-orbit terms' g(r), Å
SOC_R0 = 2.5
SOC_DECAY = 0.5

_SPECIES = {26: 0, 28: 1}  # atomic number -> row of the tables below
#: reference moment magnitudes m0 (μB) of Fe and Ni
M0 = np.array([2.2, 0.6])
#: lattice part, per species: A (eV), beta (1/Å), r1 (Å); per pair (Fe-Fe, Ni-Ni): D (eV), alpha (1/Å), r0 (Å)
LATTICE = {
    "A": np.array([1.00, 0.95]),
    "beta": np.array([1.80, 2.00]),
    "r1": np.array([2.48, 2.49]),
    "D": np.array([[0.22, 0.235], [0.235, 0.25]]),
    "alpha": np.array([[1.40, 1.45], [1.45, 1.50]]),
    "r0": None,  # filled below
}
#: pair-equilibrium distances r0 (Å) fixed so that the ferromagnetic ground states sit at
#: a = 2.866 Å (bcc Fe) and 3.52 Å (fcc Ni); the cross term is their mean
_R0_FE, _R0_NI = 2.8798056, 2.8375503
LATTICE["r0"] = np.array([[_R0_FE, 0.5 * (_R0_FE + _R0_NI)], [0.5 * (_R0_FE + _R0_NI), _R0_NI]])
#: Bethe-Slater exchange J1 (eV), J2 (dimensionless), J3 (Å) per pair (Fe-Fe, Fe-Ni, Ni-Ni)
EXCHANGE = {
    "J1": np.array([[0.02726, 0.0180], [0.0180, 0.0080]]),
    "J2": np.array([[0.2171, 0.1500], [0.1500, 0.1000]]),
    "J3": np.array([[1.841, 1.860], [1.860, 1.900]]),
}
#: Landau quartic coefficient b (eV/μB⁴); a = −2 b m0² (depths b m0⁴: Fe 0.6 eV, Ni 0.12 eV)
LANDAU_B = np.array([0.6 / 2.2**4, 0.12 / 0.6**4])
#: spin-orbit strengths (eV): three-site DMI d per mediating species, pseudo-dipolar Kp per pair,
#: Néel single-ion Ks per species
SOC = {
    "d": np.array([0.004, 0.002]),
    "Kp": np.array([[0.002, 0.0015], [0.0015, 0.001]]),
    "Ks": np.array([0.0015, 0.0008]),
}
#: lattice constants (Å) of the generated structures
A_BCC_FE = 2.866
A_FCC_NI = 3.52
A_FCC_FENI = 3.58


def _switch(r, torch):
    x = torch.clamp((r - R_ON) / (R_CUT - R_ON), 0.0, 1.0)
    return 1.0 - x**3 * (10.0 - 15.0 * x + 6.0 * x * x)


def _species_index(numbers):
    numbers = np.asarray(numbers)
    out = np.empty(len(numbers), dtype=np.int64)
    for k, z in enumerate(numbers):
        if int(z) not in _SPECIES:
            from ase.data import chemical_symbols

            raise UnknownElementError(
                f"the teacher Hamiltonian knows Fe and Ni only, got {chemical_symbols[int(z)]} (Z={int(z)})")
        out[k] = _SPECIES[int(z)]
    return out


def _triplets(i, n_atoms):
    """Pairs (a, b), a < b, of neighbour-list entries sharing the centre i[a] == i[b]."""
    order = np.argsort(i, kind="stable")
    counts = np.bincount(i, minlength=n_atoms)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    aa, bb = [], []
    for n in np.unique(counts):
        if n < 2:
            continue
        centres = np.flatnonzero(counts == n)
        ta, tb = np.triu_indices(n, 1)
        base = starts[centres][:, None]
        aa.append(order[(base + ta[None, :]).ravel()])
        bb.append(order[(base + tb[None, :]).ravel()])
    if not aa:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(aa), np.concatenate(bb)


class TeacherHamiltonian:
    """The analytic teacher spin-lattice Hamiltonian of this module (see the module docstring).

    Parameters
    ----------
    soc : include the spin-orbit terms (three-site DMI, pseudo-dipolar and Néel anisotropy).
    """

    cutoff = R_CUT

    def __init__(self, soc: bool = True):
        self.soc = bool(soc)

    # --------------------------------------------------------------------------- torch core
    def energy_torch(self, positions, cell, magmoms, species, i, j, shifts, strain=None):
        """Per-atom energies (N,) eV as a differentiable torch function.

        ``positions`` (N,3) Å, ``cell`` (3,3) Å rows, ``magmoms`` (N,3) μB, ``species`` (N,) rows
        of the parameter tables, ``i``, ``j`` (P,) full neighbour list, ``shifts`` (P,3) integer
        cell shifts (float tensor), ``strain`` (3,3) applied as r → (1 + ε) r, or None."""
        import torch

        dt = positions.dtype
        T = lambda a: torch.as_tensor(a, dtype=dt)  # noqa: E731
        if strain is not None:
            F = torch.eye(3, dtype=dt) + strain
            positions = positions @ F.T
            cell = cell @ F.T
        n = positions.shape[0]
        ti = torch.as_tensor(i)
        tj = torch.as_tensor(j)
        si, sj = species[ti], species[tj]
        vec = positions[tj] - positions[ti] + shifts @ cell
        r = torch.linalg.norm(vec, dim=1)
        fc = _switch(r, torch)
        rhat = vec / r[:, None]

        def scatter(values):
            return torch.zeros(n, dtype=dt).index_add(0, ti, values)

        # lattice
        D, al, r0 = T(LATTICE["D"])[si, sj], T(LATTICE["alpha"])[si, sj], T(LATTICE["r0"])[si, sj]
        ex = torch.exp(-al * (r - r0))
        phi = D * (ex * ex - 2.0 * ex) * fc
        rho = scatter(torch.exp(-T(LATTICE["beta"])[sj] * (r - T(LATTICE["r1"])[sj])) * fc)
        e = 0.5 * scatter(phi) - T(LATTICE["A"])[species] * torch.sqrt(rho + 1e-12)
        # Landau
        m0 = T(M0)
        m2 = torch.sum(magmoms * magmoms, dim=1)
        b = T(LANDAU_B)[species]
        e = e + (-2.0 * b * m0[species] ** 2) * m2 + b * m2 * m2
        # exchange
        x = (r / T(EXCHANGE["J3"])[si, sj]) ** 2
        J = 4.0 * T(EXCHANGE["J1"])[si, sj] * x * (1.0 - T(EXCHANGE["J2"])[si, sj] * x) * torch.exp(-x) * fc
        mi, mj = magmoms[ti], magmoms[tj]
        norm = m0[si] * m0[sj]
        e = e - 0.5 * scatter(J * torch.sum(mi * mj, dim=1) / norm)
        if self.soc:
            g = torch.exp(-(r - SOC_R0) / SOC_DECAY) * fc
            pi_ = torch.sum(mi * rhat, dim=1)
            pj_ = torch.sum(mj * rhat, dim=1)
            e = e + 0.5 * scatter(T(SOC["Kp"])[si, sj] * g * pi_ * pj_ / norm)
            e = e + scatter(T(SOC["Ks"])[si] * g * pi_ * pi_) / m0[species] ** 2
            a_, b_ = _triplets(np.asarray(i), n)
            if len(a_):
                ta, tb = torch.as_tensor(a_), torch.as_tensor(b_)
                ja, jb = tj[ta], tj[tb]
                dvec = torch.linalg.cross(rhat[ta], rhat[tb]) * (g[ta] * g[tb])[:, None]
                mx = torch.linalg.cross(magmoms[ja], magmoms[jb])
                de = T(SOC["d"])[si[ta]] * torch.sum(dvec * mx, dim=1) / (m0[species[ja]] * m0[species[jb]])
                e = e + scatter_index(n, ti[ta], de, torch, dt)
        return e

    # --------------------------------------------------------------------------- numpy API
    def evaluate(self, positions, numbers, cell, pbc, magmoms, stress=True) -> dict:
        """Exact labels of one configuration.

        ``positions`` (N,3) Å, ``numbers`` (N,), ``cell`` (3,3) Å, ``pbc`` (3,) bools,
        ``magmoms`` (N,3) μB. Returns ``energy`` eV, ``energies`` (N,) eV, ``forces`` (N,3)
        eV/Å, ``magnetic_forces`` (N,3) eV/μB (−∂E/∂m) and, if ``stress`` and fully periodic,
        ``stress`` (6,) eV/Å³ Voigt with ASE's sign."""
        import torch

        from ..neighbors import point_pairs

        positions = np.asarray(positions, dtype=np.float64)
        magmoms = np.asarray(magmoms, dtype=np.float64)
        cell = np.asarray(cell, dtype=np.float64)
        pbc = np.broadcast_to(np.asarray(pbc, dtype=bool), (3,))
        if magmoms.shape != positions.shape:
            raise InputError(f"magmoms must have shape {positions.shape}, got {magmoms.shape}")
        if not (np.all(np.isfinite(positions)) and np.all(np.isfinite(magmoms))):
            raise InputError("positions and magmoms must be finite")
        species = _species_index(numbers)
        i, j, S, _ = point_pairs(positions, cell, pbc, R_CUT, full=True)
        return self._evaluate_arrays(positions, cell, magmoms, species, i, j, S, stress and pbc.all())

    def _evaluate_arrays(self, positions, cell, magmoms, species, i, j, S, stress):
        import torch

        dt = torch.float64
        pos = torch.tensor(positions, dtype=dt, requires_grad=True)
        mag = torch.tensor(magmoms, dtype=dt, requires_grad=True)
        eps = torch.zeros((3, 3), dtype=dt, requires_grad=bool(stress))
        c = torch.tensor(cell, dtype=dt)
        e = self.energy_torch(pos, c, mag, torch.as_tensor(species), i, j,
                              torch.tensor(S, dtype=dt), eps if stress else None)
        energy = e.sum()
        inputs = [pos, mag] + ([eps] if stress else [])
        grads = torch.autograd.grad(energy, inputs)
        out = {"energy": float(energy.detach()), "energies": e.detach().numpy().copy(),
               "forces": -grads[0].numpy().copy(), "magnetic_forces": -grads[1].numpy().copy()}
        if stress:
            g = grads[2].numpy()
            s = 0.5 * (g + g.T) / abs(np.linalg.det(cell))
            out["stress"] = np.array([s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]])
        return out

    def label(self, atoms, magmoms=None):
        """Attach the teacher's labels to ``atoms`` (in place) and return it.

        The moments come from ``magmoms`` (N,3) μB, else from the atoms as training reads them
        (:func:`spinlat.potentials.mmace.labels.input_moments`: a calculator's moments, an
        ``arrays["magmoms"]``, the initial magnetic moments, as :meth:`spinlat.State.from_ase` reads
        them; with a ``spins`` column of directions)."""
        if magmoms is None:
            from ..potentials.mmace.labels import input_moments

            magmoms = input_moments(atoms)
        magmoms = np.asarray(magmoms, dtype=np.float64)
        pbc = atoms.get_pbc()
        res = self.evaluate(atoms.get_positions(), atoms.get_atomic_numbers(), np.array(atoms.get_cell()),
                            pbc, magmoms, stress=bool(pbc.all()))
        atoms.arrays["magmoms"] = magmoms.copy()
        if "initial_magmoms" in atoms.arrays:
            del atoms.arrays["initial_magmoms"]
        atoms.set_initial_magnetic_moments(magmoms)
        atoms.info["energy"] = res["energy"]
        atoms.arrays["forces"] = res["forces"]
        atoms.arrays["magnetic_forces"] = res["magnetic_forces"]
        if "stress" in res:
            atoms.info["stress"] = res["stress"]
        atoms.info["source"] = f"spinlat synthetic teacher Hamiltonian (soc={self.soc}); not DFT"
        return atoms


def scatter_index(n, index, values, torch, dtype):
    return torch.zeros(n, dtype=dtype).index_add(0, index, values)


def teacher_potential(soc: bool = True):
    """The teacher Hamiltonian as a spinlat :class:`~spinlat.potentials.base.Potential`
    (energies eV, forces eV/Å, magnetic forces eV/μB, stress eV/Å³), e.g. to run dynamics on it."""
    from ..potentials.base import Evaluation, Potential

    class TeacherPotential(Potential):
        cutoff = R_CUT
        depends_on_magnitudes = True
        elements = (26, 28)

        def __init__(self, soc):
            self.teacher = TeacherHamiltonian(soc)

        def _evaluate(self, state, neighbors, forces, magnetic_forces, stress):
            mag = state.magnetic_moments
            res = self.teacher._evaluate_arrays(state.positions, state.cell, mag, _species_index(state.numbers),
                                                neighbors.i, neighbors.j, neighbors.shifts, stress)
            h = res["magnetic_forces"]
            h[state.moments <= 0] = 0.0
            return Evaluation(res["energy"], res["forces"] if forces else None, h if magnetic_forces else None,
                              res.get("stress") if stress else None, res["energies"])

        def __repr__(self):
            return f"TeacherPotential(soc={self.teacher.soc})"

    return TeacherPotential(soc)


# ------------------------------------------------------------------------------- structures
def _bcc(a, reps):
    from ase.build import bulk

    return bulk("Fe", "bcc", a=a, cubic=True).repeat(reps)


def _fcc(symbol, a, reps):
    from ase.build import bulk

    return bulk(symbol, "fcc", a=a, cubic=True).repeat(reps)


def _random_unit(rng, n):
    v = rng.normal(size=(n, 3))
    return v / np.linalg.norm(v, axis=1)[:, None]


def _cone_spins(rng, n, theta_max):
    """Unit vectors within a cone of half-angle theta_max around a random axis."""
    axis = _random_unit(rng, 1)[0]
    cos_t = rng.uniform(np.cos(theta_max), 1.0, n)
    phi = rng.uniform(0, 2 * np.pi, n)
    sin_t = np.sqrt(np.clip(1 - cos_t**2, 0, None))
    local = np.stack([sin_t * np.cos(phi), sin_t * np.sin(phi), cos_t], axis=1)
    # rotation taking z to axis
    z = np.array([0.0, 0.0, 1.0])
    v = np.cross(z, axis)
    c = float(z @ axis)
    if np.linalg.norm(v) < 1e-12:
        R = np.eye(3) if c > 0 else np.diag([1.0, -1.0, -1.0])
    else:
        vx = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
        R = np.eye(3) + vx + vx @ vx / (1 + c)
    return local @ R.T


def _structure(system, rng):
    if system == "Fe":
        reps = [(2, 2, 2), (2, 2, 2), (2, 2, 3)][rng.integers(3)]
        return _bcc(A_BCC_FE, reps)
    if system == "Ni":
        reps = [(2, 2, 1), (2, 2, 1), (2, 2, 2)][rng.integers(3)]
        return _fcc("Ni", A_FCC_NI, reps)
    # FeNi: ordered L1_0 (alternating (001) layers), random fcc and Fe-rich random bcc alloys
    kind = rng.integers(3)
    if kind == 0:
        at = _fcc("Ni", A_FCC_FENI, (2, 2, 1))
        z = at.get_positions()[:, 2]
        layer = np.rint(z / (A_FCC_FENI / 2)).astype(int) % 2
        at.set_atomic_numbers(np.where(layer == 0, 26, 28))
        return at
    if kind == 1:
        x_fe = rng.uniform(0.2, 0.8)
        at = _fcc("Ni", A_FCC_NI + 2.0 * (A_FCC_FENI - A_FCC_NI) * x_fe, (2, 2, 1))  # Vegard-like
        at.set_atomic_numbers(np.where(rng.random(len(at)) < x_fe, 26, 28))
        return at
    x_ni = rng.uniform(0.05, 0.3)
    at = _bcc(A_BCC_FE, (2, 2, 2))
    at.set_atomic_numbers(np.where(rng.random(len(at)) < x_ni, 28, 26))
    return at


@refuse_other_names()
def random_configuration(system: str, rng, max_displacement: float = 0.12, max_strain: float = 0.03,
                         near_zero_fraction: float = 0.03):
    """One unlabelled random configuration of ``system`` ("Fe", "Ni", "FeNi") as ase.Atoms with
    ``arrays["magmoms"]`` (N,3) μB.

    Random strain (isotropic up to ±``max_strain`` plus a random symmetric shear of rms
    ``max_strain``/2), random displacements (rms up to ``max_displacement`` Å), spins within a cone
    of random half-angle 0..π around a random axis, magnitudes 0.65–1.3 m0 (Fe) or 0.4–1.5 m0 (Ni)
    with a fraction ``near_zero_fraction`` of near-zero moments (0.02–0.15 m0)."""
    at = _structure(system, rng)
    n = len(at)
    eps = np.eye(3) * rng.uniform(-max_strain, max_strain)
    shear = rng.normal(0, max_strain / 2, (3, 3))
    eps += 0.5 * (shear + shear.T)
    F = np.eye(3) + eps
    at.set_cell(np.array(at.get_cell()) @ F.T, scale_atoms=True)
    at.positions += rng.normal(0, rng.uniform(0.0, max_displacement), (n, 3))
    species = _species_index(at.numbers)
    m0 = M0[species]
    lo = np.where(species == 0, 0.65, 0.4)
    hi = np.where(species == 0, 1.3, 1.5)
    mag = m0 * rng.uniform(lo, hi)
    small = rng.random(n) < near_zero_fraction
    mag[small] = m0[small] * rng.uniform(0.02, 0.15, small.sum())
    spins = _cone_spins(rng, n, rng.uniform(0, np.pi))
    at.arrays["magmoms"] = spins * mag[:, None]
    return at


@refuse_other_names(extra=parameters_of("spinlat.training.teacher:random_configuration", exclude=("system", "rng")))
def teacher(system: str, n_configs: int, seed: int, soc: bool = True, path=None, **options) -> list:
    """Synthetic configurations of ``system`` labelled by the teacher Hamiltonian.

    Parameters
    ----------
    system : "Fe" (bcc, 16–24 atoms), "Ni" (fcc, 16–32 atoms) or "FeNi" (L1₀ FeNi, random fcc
        Fe-Ni and Fe-rich random bcc alloys, 16 atoms).
    n_configs : number of configurations.
    seed : random seed; the same seed gives the same data.
    soc : include the teacher's spin-orbit terms.
    path : if given, also write the configurations there as extxyz.
    options : passed to :func:`random_configuration` (``max_displacement`` Å, ``max_strain``,
        ``near_zero_fraction``).

    Returns a list of ase.Atoms with ``info["energy"]`` (eV), ``info["stress"]`` (6, eV/Å³),
    ``arrays["forces"]`` (eV/Å), ``arrays["magmoms"]`` (N,3 μB), ``arrays["magnetic_forces"]``
    (eV/μB) and ``info["source"]`` naming the synthetic teacher."""
    if system not in SYSTEMS:
        raise ConfigError(f"teacher system must be one of {list(SYSTEMS)}, got {system!r}")
    if int(n_configs) < 0:
        raise ConfigError(f"n_configs must be non-negative, got {n_configs}")
    bad = set(options) - {"max_displacement", "max_strain", "near_zero_fraction"}
    if bad:
        raise ConfigError(f"unknown teacher option(s) {sorted(bad)}; expected max_displacement, max_strain, "
                          "near_zero_fraction")
    rng = np.random.default_rng(seed)
    ham = TeacherHamiltonian(soc)
    out = []
    for _ in range(int(n_configs)):
        at = random_configuration(system, rng, **options)
        ham.label(at)
        at.info["source"] = f"spinlat synthetic teacher Hamiltonian {system} (soc={bool(soc)}, seed={seed}); not DFT"
        out.append(at)
    if path is not None:
        from ..io import write_extxyz

        write_extxyz(path, out)
    return out
