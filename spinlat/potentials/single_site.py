"""Single-site magnetic terms: Zeeman, uniaxial and cubic anisotropy, Landau.

Each term is a sum over atoms of a function of the atom's own moment, so it has no lattice
forces and no stress. Only magnetic atoms (moment > 0) take part; non-magnetic atoms get zero
energy and zero magnetic force. Every term can be restricted to some species:

- ``Zeeman(B, elements=None)``: ``elements`` lists the species the field acts on;
- anisotropies and ``Landau`` take their constants as a scalar (every species) or as a dict
  ``{element: value}`` (symbol or atomic number); species missing from the dict get nothing.

Magnetic forces are the exact h_i = −∂E/∂m_i (eV/μB) with m_i = moments_i · spins_i:

- ``Zeeman``: E = −μB Σ_i moments_i s_i·B is linear in m, h_i = μB B (whole vector);
- ``UniaxialAnisotropy``, ``CubicAnisotropy``: functions of the direction s_i only, so
  h_i = −(1/|m_i|)(1 − s_i s_iᵀ) ∂E/∂s_i is transverse;
- ``Landau``: a function of |m_i| only, h_i = −(∂E/∂|m_i|) s_i is longitudinal.

Relation to LAMMPS ``fix precession/spin`` (checked numerically in tests/test_peers_lammps_spin.py):

- ``zeeman H nx ny nz``: LAMMPS computes E = −g μB' Σ_i moments_i s_i·(H n) with g = 2 and its
  own rounded Bohr magneton μB' = 5.78901e-5 eV/T (``units.LAMMPS_MU_B``). So LAMMPS's field H
  equals ``Zeeman(B)`` with B = 2 (μB'/μB) H; :meth:`Zeeman.from_lammps` does that conversion.
- ``anisotropy K nx ny nz``: E = −K Σ (s·n)², identical to ``UniaxialAnisotropy(K, n)``.
- ``cubic K1 K2 n1 n2 n3``: E = −K1 Σ(αx²αy² + αy²αz² + αz²αx²) − K2 Σ αx²αy²αz²: the opposite
  sign of the standard form used here, so LAMMPS ``cubic K1 K2`` = ``CubicAnisotropy(−K1, −K2)``.
"""

from __future__ import annotations

import numba
import numpy as np

from .. import units, validation
from ..errors import InputError, NonFiniteError, ShapeError
from .base import Evaluation, Potential
from ..keywords import refuse_other_names

_NZ = 119  # table size: atomic numbers 0..118


# ---------------------------------------------------------------------------------- helpers
def _atomic_number(key) -> int:
    return validation.atomic_number(key, "element")




def species_table(value, name):
    """Per-species constant → (table (119,) float, applies (119,) bool), indexed by atomic number.

    ``value`` is a scalar (every species) or a dict ``{element: value}`` (symbol or Z)."""
    table = np.zeros(_NZ)
    applies = np.zeros(_NZ, dtype=bool)
    if isinstance(value, dict):
        if not value:
            raise InputError(f"{name}: empty dict of per-species values")
        for key, v in value.items():
            z = _atomic_number(key)
            table[z] = validation.number(v, f"{name}[{key!r}]")
            applies[z] = True
    else:
        table[1:] = validation.number(value, name)
        applies[1:] = True
    return table, applies


def species_mask(elements):
    """Elements (symbols or Z) → boolean table (119,); ``None`` → every element."""
    mask = np.zeros(_NZ, dtype=bool)
    if elements is None:
        mask[1:] = True
        return mask
    if isinstance(elements, (str, int, np.integer)):
        elements = [elements]
    if not isinstance(elements, (list, tuple, set, frozenset, np.ndarray)):
        raise InputError(f"elements: expected None, a chemical symbol, an atomic number or a list of them, "
                         f"got {elements!r}")
    elements = list(elements)
    if not elements:
        raise InputError("elements: empty list (give None for every element)")
    for k, e in enumerate(elements):
        mask[validation.atomic_number(e, f"elements[{k}]")] = True
    return mask


def species_tuple(mask) -> tuple[int, ...] | None:
    """Boolean table of :func:`species_mask` → atomic numbers it holds, ``None`` for every element."""
    zs = np.flatnonzero(mask)
    return None if len(zs) >= _NZ - 1 else tuple(int(z) for z in zs)



_vector3 = validation.vector3  # (value, name) -> (3,) float array


def _is_numeric(v) -> bool:
    try:
        validation.real_array(v, "", finite=False)
    except InputError:
        return False
    return True


def _unit_vector(v, name) -> np.ndarray:
    a = _vector3(v, name)
    n = np.linalg.norm(a)
    if n < 1e-12:
        raise InputError(f"{name} has zero length")
    return a / n


def species_names(table_mask) -> str:
    """Boolean table of :func:`species_mask` → "Fe,Co" (chemical symbols), or "all"."""
    from ase.data import chemical_symbols

    zs = np.flatnonzero(table_mask)
    return "all" if len(zs) >= _NZ - 1 else ",".join(chemical_symbols[z] for z in zs)


class _SingleSite(Potential):
    """Shared evaluation of single-site terms: a kernel gives energies and h of listed atoms."""

    cutoff = 0.0

    def _kernel(self, state, atoms, energies, h):  # pragma: no cover - abstract
        raise NotImplementedError

    def _evaluate(self, state, neighbors, forces, magnetic_forces, stress) -> Evaluation:
        n = len(state)
        atoms = np.arange(n, dtype=np.int64)
        energies = np.zeros(n)
        h = np.zeros((n, 3))
        self._kernel(state, atoms, energies, h)
        return Evaluation(float(energies.sum()), np.zeros((n, 3)) if forces else None,
                          h if magnetic_forces else None, np.zeros(6) if stress else None, energies)

    def local_fields(self, state, neighbors, atoms) -> np.ndarray:
        """h = −∂E/∂m (eV/μB) of the atoms ``atoms`` only, (len(atoms), 3)."""
        atoms = validation.atom_indices(atoms, "atoms", len(state))
        energies = np.zeros(len(atoms))
        h = np.zeros((len(atoms), 3))
        self._kernel(state, atoms, energies, h)
        return h

    def local_energies(self, state, neighbors, atoms) -> np.ndarray:
        """Energies E_i (eV) of the atoms ``atoms`` only, (len(atoms),): each the whole energy that
        depends on that atom's moment."""
        atoms = validation.atom_indices(atoms, "atoms", len(state))
        energies = np.zeros(len(atoms))
        self._kernel(state, atoms, energies, np.zeros((len(atoms), 3)))
        return energies

    def _cached_couplings(self, state, build):
        """The couplings ``build(on)`` for the magnetic atoms ``on`` of ``state``, kept while the
        atomic numbers and the set of magnetic atoms stay the same."""
        on = state.moments > 0
        c = self.__dict__.get("_couplings_cache")  # (magnetic mask, numbers, couplings)
        if c is None or not (np.array_equal(c[0], on) and np.array_equal(c[1], state.numbers)):
            c = self._couplings_cache = (on, state.numbers.copy(), build(on))
        return c[2]


# ---------------------------------------------------------------------------------- kernels
@numba.njit(cache=True)
def _zeeman_kernel(atoms, numbers, spins, moments, applies, field, energies, h):
    """E_i = −moments_i s_i·field (field = μB B in eV/μB); h_i = field. Outputs indexed like atoms."""
    for a in range(len(atoms)):
        i = atoms[a]
        m = moments[i]
        if m <= 0.0 or not applies[numbers[i]]:
            continue
        energies[a] = -m * (spins[i, 0] * field[0] + spins[i, 1] * field[1] + spins[i, 2] * field[2])
        h[a, 0] = field[0]
        h[a, 1] = field[1]
        h[a, 2] = field[2]


@numba.njit(cache=True)
def _uniaxial_kernel(atoms, numbers, spins, moments, ktable, axes, energies, h):
    """E_i = −K (s_i·n_i)²; h_i = (2K (s·n)/|m|)(n − (s·n) s).

    ``axes`` is (1, 3) (one axis for every atom) or (N, 3) (row i is atom i's axis)."""
    per_atom = axes.shape[0] > 1
    for a in range(len(atoms)):
        i = atoms[a]
        m = moments[i]
        k = ktable[numbers[i]]
        if m <= 0.0 or k == 0.0:
            continue
        r = i if per_atom else 0
        n0, n1, n2 = axes[r, 0], axes[r, 1], axes[r, 2]
        sn = spins[i, 0] * n0 + spins[i, 1] * n1 + spins[i, 2] * n2
        energies[a] = -k * sn * sn
        c = 2.0 * k * sn / m
        h[a, 0] = c * (n0 - sn * spins[i, 0])
        h[a, 1] = c * (n1 - sn * spins[i, 1])
        h[a, 2] = c * (n2 - sn * spins[i, 2])


@numba.njit(cache=True)
def _cubic_kernel(atoms, numbers, spins, moments, k1table, k2table, axes, energies, h):
    """E_i = K1 (ax²ay² + ay²az² + az²ax²) + K2 ax²ay²az², α = axes·s_i; h transverse."""
    for a in range(len(atoms)):
        i = atoms[a]
        m = moments[i]
        k1 = k1table[numbers[i]]
        k2 = k2table[numbers[i]]
        if m <= 0.0 or (k1 == 0.0 and k2 == 0.0):
            continue
        ax = axes[0, 0] * spins[i, 0] + axes[0, 1] * spins[i, 1] + axes[0, 2] * spins[i, 2]
        ay = axes[1, 0] * spins[i, 0] + axes[1, 1] * spins[i, 1] + axes[1, 2] * spins[i, 2]
        az = axes[2, 0] * spins[i, 0] + axes[2, 1] * spins[i, 1] + axes[2, 2] * spins[i, 2]
        x2, y2, z2 = ax * ax, ay * ay, az * az
        energies[a] = k1 * (x2 * y2 + y2 * z2 + z2 * x2) + k2 * x2 * y2 * z2
        # dE/dα
        gx = 2.0 * ax * (k1 * (y2 + z2) + k2 * y2 * z2)
        gy = 2.0 * ay * (k1 * (x2 + z2) + k2 * x2 * z2)
        gz = 2.0 * az * (k1 * (x2 + y2) + k2 * x2 * y2)
        g0 = axes[0, 0] * gx + axes[1, 0] * gy + axes[2, 0] * gz
        g1 = axes[0, 1] * gx + axes[1, 1] * gy + axes[2, 1] * gz
        g2 = axes[0, 2] * gx + axes[1, 2] * gy + axes[2, 2] * gz
        gs = g0 * spins[i, 0] + g1 * spins[i, 1] + g2 * spins[i, 2]
        h[a, 0] = -(g0 - gs * spins[i, 0]) / m
        h[a, 1] = -(g1 - gs * spins[i, 1]) / m
        h[a, 2] = -(g2 - gs * spins[i, 2]) / m


@numba.njit(cache=True)
def _landau_kernel(atoms, numbers, spins, moments, atable, btable, ctable, energies, h):
    """E_i = a m² + b m⁴ + c m⁶ (m = |m_i| in μB); h_i = −(2a m + 4b m³ + 6c m⁵) s_i."""
    for a in range(len(atoms)):
        i = atoms[a]
        m = moments[i]
        z = numbers[i]
        if m <= 0.0:
            continue
        m2 = m * m
        ca, cb, cc = atable[z], btable[z], ctable[z]
        energies[a] = m2 * (ca + m2 * (cb + m2 * cc))
        dedm = m * (2.0 * ca + m2 * (4.0 * cb + 6.0 * cc * m2))
        h[a, 0] = -dedm * spins[i, 0]
        h[a, 1] = -dedm * spins[i, 1]
        h[a, 2] = -dedm * spins[i, 2]


# ---------------------------------------------------------------------------------- terms
class Zeeman(_SingleSite):
    """Zeeman energy of the moments in a uniform field: E = −μB Σ_i moments_i s_i·B (eV).

    Parameters
    ----------
    B : (3,) magnetic field, tesla.
    elements : species the field acts on (symbols or atomic numbers); ``None``: every species.

    Magnetic forces h_i = μB B (eV/μB) on magnetic atoms of those species, 0 elsewhere.
    """

    _PARAMETERS = ("B",)

    def __init__(self, B, elements=None):
        b = _vector3(B, "Zeeman field B (tesla)")
        self.B = b
        self._applies = species_mask(elements)
        self._field = units.MU_B * b  # eV/μB

    @property
    def species(self) -> tuple[int, ...] | None:
        """Atomic numbers of the species the field acts on (read-only), ``None`` for every species."""
        return species_tuple(self._applies)

    def spin_couplings(self, state, neighbors=None):
        """:class:`~spinlat.potentials.couplings.LinearSpinCouplings` with the field b_i = μB B
        (eV/μB) on the magnetic atoms of the species the field acts on (0 elsewhere): E = −Σ |m_i|
        b_i·s_i. The same object while the atomic numbers and magnetic atoms stay the same."""
        from .couplings import LinearSpinCouplings

        def build(on):
            on = on & self._applies[state.numbers]
            return LinearSpinCouplings(len(state), field=np.where(on[:, None], self._field[None, :], 0.0))

        return self._cached_couplings(state, build)

    @classmethod
    def from_lammps(cls, H, direction, elements=None) -> "Zeeman":
        """The term LAMMPS ``fix precession/spin zeeman H nx ny nz`` computes (H in tesla).

        LAMMPS uses g = 2 and μB' = ``units.LAMMPS_MU_B``: B = 2 (μB'/μB) H n̂."""
        n = _unit_vector(direction, "Zeeman direction")
        h = validation.number(H, "Zeeman field magnitude H")
        return cls(2.0 * units.LAMMPS_MU_B / units.MU_B * h * n, elements=elements)

    def _kernel(self, state, atoms, energies, h):
        _zeeman_kernel(atoms, state.numbers, state.spins, state.moments, self._applies, self._field,
                       energies, h)

    def __repr__(self):
        el = species_names(self._applies)
        return f"Zeeman(B={self.B.tolist()} T" + ("" if el == "all" else f", elements={el}") + ")"


class UniaxialAnisotropy(_SingleSite):
    """Uniaxial anisotropy E = −K Σ_i (s_i·n_i)² (eV); K > 0: easy axis n_i, K < 0: easy plane.

    Parameters
    ----------
    K : eV per atom, scalar or dict ``{element: K}`` (species not listed get no anisotropy); |K| above
        1 eV gives a UserWarning (likely meV: :func:`spinlat.validation.magnetic_energy`).
    axis : (3,) direction n shared by every atom (normalised; any non-zero length), or (N, 3)
        local axes n_i, one row per atom of the states it is used with (e.g. the local ⟨112⟩
        easy axes of the Mn sites of Mn3Pt). Rows are normalised; an all-zero row gives that
        atom no anisotropy (non-magnetic sites). N is checked against the state at compute
        time (:class:`~spinlat.errors.ShapeError` on a mismatch). For a supercell made with
        ``State.repeat``, tile the unit cell's rows: ``np.tile(axes, (n_cells, 1))``.
    """

    _PARAMETERS = ("K", "axis", "per_atom")

    def __init__(self, K, axis):
        self._k, _ = species_table(K, "anisotropy constant K")
        validation.magnetic_energy(K, "UniaxialAnisotropy K")
        self.K = K
        a = np.asarray(axis, dtype=np.float64) if _is_numeric(axis) else None
        if a is not None and a.ndim == 2 and a.shape[1] == 3 and a.shape[0] >= 1:
            if not np.all(np.isfinite(a)):
                raise NonFiniteError("anisotropy axes hold NaN or inf")
            norm = np.linalg.norm(a, axis=1)
            a = np.divide(a, norm[:, None], out=np.zeros_like(a), where=norm[:, None] > 1e-12)
            self._axes = np.ascontiguousarray(a)
            self.axis = a.copy()
            self.per_atom = True
        else:
            if a is not None and a.ndim == 2:
                raise ShapeError(f"anisotropy axis must have shape (3,) or (N, 3), got {a.shape}")
            self.axis = _unit_vector(axis, "anisotropy axis")
            self.per_atom = False
            self._axes = self.axis[None, :].copy()

    def _check_axes(self, state):
        if self.per_atom and len(self._axes) != len(state):
            raise ShapeError(f"UniaxialAnisotropy has {len(self._axes)} per-atom axes but the state has "
                             f"{len(state)} atoms")

    def check_state(self, state):
        super().check_state(state)
        self._check_axes(state)

    def _kernel(self, state, atoms, energies, h):
        self._check_axes(state)
        _uniaxial_kernel(atoms, state.numbers, state.spins, state.moments, self._k, self._axes, energies, h)

    def spin_couplings(self, state, neighbors=None):
        """:class:`~spinlat.potentials.couplings.LinearSpinCouplings` with the on-site forms
        A_i = K_i n_i n_iᵀ (eV) of the magnetic atoms (E = −Σ s_iᵀ A_i s_i = −Σ K_i (s_i·n_i)²), zero
        elsewhere. The same object while the atomic numbers and magnetic atoms stay the same.
        Raises :class:`~spinlat.errors.ShapeError` when per-atom axes do not match the state."""
        from .couplings import LinearSpinCouplings

        self._check_axes(state)

        def build(on):
            n = len(state)
            k = np.where(on, self._k[state.numbers], 0.0)
            axes = self._axes if self.per_atom else np.broadcast_to(self._axes[0], (n, 3))
            return LinearSpinCouplings(n, onsite=k[:, None, None] * axes[:, :, None] * axes[:, None, :])

        return self._cached_couplings(state, build)

    def rotation_fields(self, state, neighbors, atoms) -> np.ndarray:
        """Unprojected fields −(1/|m_i|) ∂E/∂s_i = (2K/|m_i|)(s_i·n_i) n_i (eV/μB) of ``atoms``:
        a rotation about n_i keeps s_i·n_i, so rotating s_i about this field is the exact
        motion under the anisotropy and conserves its energy (see ``Potential.rotation_fields``)."""
        atoms = validation.atom_indices(atoms, "atoms", len(state))
        self._check_axes(state)
        n = self._axes[atoms] if self.per_atom else np.broadcast_to(self._axes[0], (len(atoms), 3))
        mom = state.moments[atoms]
        k = self._k[state.numbers[atoms]]
        on = (mom > 0) & (k != 0)
        c = np.zeros(len(atoms))
        c[on] = 2.0 * k[on] * np.einsum("ij,ij->i", state.spins[atoms][on], n[on]) / mom[on]
        return c[:, None] * n

    def __repr__(self):
        ax = f"{len(self._axes)} per-atom axes" if self.per_atom else f"axis={self.axis.tolist()}"
        return f"UniaxialAnisotropy(K={self.K!r} eV, {ax})"

    def digest_items(self) -> tuple:
        """The per-species K table and the (normalised) axes, for :meth:`parameter_digest`."""
        return (self._k, self._axes)


@refuse_other_names()
class CubicAnisotropy(_SingleSite):
    """Cubic anisotropy, standard form (eV):

        E = Σ_i K1 (αx²αy² + αy²αz² + αz²αx²) + K2 αx²αy²αz²,

    with α = (αx, αy, αz) the components of s_i along the cubic axes. K1 > 0: easy ⟨100⟩ (bcc Fe),
    K1 < 0: easy ⟨111⟩ (fcc Ni). LAMMPS ``cubic K1 K2`` is ``CubicAnisotropy(−K1, −K2)``.

    Parameters
    ----------
    K1, K2 : eV per atom, scalars or dicts ``{element: value}``.
    axes : (3, 3) orthonormal cubic axes as rows; default the Cartesian axes.
    """

    _PARAMETERS = ("K1", "K2", "axes")

    def __init__(self, K1, K2=0.0, axes=None):
        self._k1, _ = species_table(K1, "cubic anisotropy K1")
        self._k2, _ = species_table(K2, "cubic anisotropy K2")
        validation.magnetic_energy(K1, "CubicAnisotropy K1")
        validation.magnetic_energy(K2, "CubicAnisotropy K2")
        self.K1, self.K2 = K1, K2
        if axes is None:
            ax = np.eye(3)
        else:
            ax = validation.real_array(axes, "cubic axes", (3, 3))
            ax = np.array([_unit_vector(r, f"cubic axis {k}") for k, r in enumerate(ax)])
            if not np.allclose(ax @ ax.T, np.eye(3), atol=1e-8):
                raise InputError("cubic axes must be mutually orthogonal")
        self._axes = ax  # the kernels' (writable) copy; ``axes`` is the read-only parameter
        self.axes = ax.copy()

    def _kernel(self, state, atoms, energies, h):
        _cubic_kernel(atoms, state.numbers, state.spins, state.moments, self._k1, self._k2, self._axes,
                      energies, h)

    def rotation_fields(self, state, neighbors, atoms) -> np.ndarray:
        """Unprojected fields −(1/|m_i|) ∂E/∂s_i (eV/μB) of ``atoms`` (0 where the term is off)."""
        atoms = validation.atom_indices(atoms, "atoms", len(state))
        s = state.spins[atoms]
        mom = state.moments[atoms]
        k1, k2 = self._k1[state.numbers[atoms]], self._k2[state.numbers[atoms]]
        on = (mom > 0) & ((k1 != 0) | (k2 != 0))
        a = s @ self.axes.T  # components along the cubic axes
        a2 = a * a
        x2, y2, z2 = a2[:, 0], a2[:, 1], a2[:, 2]
        ga = 2.0 * a * np.stack([k1 * (y2 + z2) + k2 * y2 * z2, k1 * (x2 + z2) + k2 * x2 * z2,
                                 k1 * (x2 + y2) + k2 * x2 * y2], axis=1)  # dE/dα
        h = np.zeros((len(atoms), 3))
        h[on] = -(ga[on] @ self.axes) / mom[on, None]
        return h

    def spin_curvatures(self, state, neighbors, atoms) -> np.ndarray:
        """c_i = tr H_i − s_iᵀ H_i s_i (eV) of ``atoms`` for the polynomial E(α) above (the one
        :meth:`rotation_fields` differentiates; :meth:`Potential.spin_curvatures`): with
        P = αx²αy² + αy²αz² + αz²αx² and Q = αx²αy²αz², c = 4K1 + 2K2 P − 12K1 P − 30K2 Q
        (0 on non-magnetic atoms)."""
        atoms = validation.atom_indices(atoms, "atoms", len(state))
        a2 = (state.spins[atoms] @ self.axes.T) ** 2
        k1, k2 = self._k1[state.numbers[atoms]], self._k2[state.numbers[atoms]]
        p = a2[:, 0] * a2[:, 1] + a2[:, 1] * a2[:, 2] + a2[:, 2] * a2[:, 0]
        q = a2[:, 0] * a2[:, 1] * a2[:, 2]
        c = 4.0 * k1 + 2.0 * k2 * p - 12.0 * k1 * p - 30.0 * k2 * q
        return np.where(state.moments[atoms] > 0, c, 0.0)

    def __repr__(self):
        return f"CubicAnisotropy(K1={self.K1!r} eV, K2={self.K2!r} eV)"

    def digest_items(self) -> tuple:
        """The per-species K1, K2 tables and the cubic axes, for :meth:`parameter_digest`."""
        return (self._k1, self._k2, self.axes)


@refuse_other_names()
class Landau(_SingleSite):
    """Landau expansion in the moment magnitude, per species (eV):

        E = Σ_i a |m_i|² + b |m_i|⁴ + c |m_i|⁶,   |m_i| in μB,

    so a is eV/μB², b eV/μB⁴, c eV/μB⁶. With a < 0, b > 0, c = 0 the minimum is at
    |m|² = −a / (2b). Magnetic forces are longitudinal: h_i = −(2a|m| + 4b|m|³ + 6c|m|⁵) s_i.

    Parameters
    ----------
    a, b, c : scalars (every species) or dicts ``{element: value}``; species missing from all
        dicts get no Landau energy.
    """

    depends_on_magnitudes = True
    spin_rotation_invariant = True  # a function of |m_i| only
    _PARAMETERS = ("a", "b", "c")

    def __init__(self, a, b=0.0, c=0.0):
        self._a, _ = species_table(a, "Landau a")
        self._b, _ = species_table(b, "Landau b")
        self._c, _ = species_table(c, "Landau c")
        self.a, self.b, self.c = a, b, c

    def _kernel(self, state, atoms, energies, h):
        _landau_kernel(atoms, state.numbers, state.spins, state.moments, self._a, self._b, self._c,
                       energies, h)

    def __repr__(self):
        return f"Landau(a={self.a!r}, b={self.b!r}, c={self.c!r})"

    def digest_items(self) -> tuple:
        """The per-species a, b, c tables, for :meth:`parameter_digest`."""
        return (self._a, self._b, self._c)
