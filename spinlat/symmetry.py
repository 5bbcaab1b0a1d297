"""Symmetry operations of a spin Hamiltonian on a crystal, for telling minima apart.

Two spin configurations are the same state when a symmetry operation of the Hamiltonian carries
one onto the other. Which operations those are depends on the Hamiltonian:

- **without spin-orbit coupling** (a potential whose ``spin_rotation_invariant`` is True: pure
  isotropic exchange) spin space and real space are decoupled, and the symmetry group is a
  *spin-space group*: a permutation of the atoms by an operation of the crystal's space group
  combined with *any* global spin rotation (proper or improper: time reversal is the improper
  −1), independently of the lattice operation (Brinkman & Elliott, Proc. R. Soc. A 294, 343
  (1966); Litvin & Opechowski, Physica 76, 538 (1974)). States are then compared modulo a
  global O(3) rotation, and only the atom permutation of each crystal operation matters.
- **with spin-orbit coupling** (anisotropy, DMI, anisotropic exchange, a field: any potential not
  ``spin_rotation_invariant``) spins turn with the lattice: the group is a subgroup of the
  *magnetic space group* of the crystal, an operation g = {R|t} acting on a moment as the axial
  vector it is, m → det(R)·R·m, at the atom carried to r → R r + t, possibly combined with time
  reversal m → −m (Bradley & Cracknell, *The Mathematical Theory of Symmetry in Solids*, Oxford
  1972, ch. 7).

The crystal's operations come from spglib (Togo et al., Sci. Technol. Adv. Mater. Meth. 4,
2384822 (2024)) on the structure whose atom types are (element, moment magnitude). A crystal
operation is not necessarily a symmetry of the Hamiltonian: local anisotropy axes, a field or a
DMI pattern may keep only a subgroup. Each candidate (g, and g with time reversal) is therefore
kept only when the potential's energy is unchanged by it on random spin configurations
(|ΔE| ≤ :data:`ENERGY_RTOL` × the spin energy scale Σ_i |m_i| |h_i| of those configurations, plus
:data:`ROUND_OFF` machine epsilons of the model's precision × |E| for the round-off of the total
energy, whose spin-independent part, e.g. an EAM's cohesive energy, says nothing about the spins):
the energy is a polynomial-like function of the spins, so an operation that is not a symmetry
changes it on generic configurations. Spin terms weaker than that (a uniaxial anisotropy below
~1e-6 of the exchange) are not seen, and a float32 model resolves nothing below its round-off. Pure lattice translations are handled by
:class:`~spinlat.translations.Translations` (one FFT correlation for all of them); the group here holds
one representative of each coset of the translations, so a comparison costs
O(|G/T| · N log N) and the atom permutation of each operation is computed once.
"""

from __future__ import annotations

import warnings

import numpy as np

from .errors import InputError

#: an operation is a symmetry of the potential when it changes the energy of random spin
#: configurations by at most this fraction of their spin energy scale Σ_i |m_i| |h_i| (eV) plus
#: :data:`ROUND_OFF` machine epsilons × |E|. Not a fraction of |E| itself: with an EAM in the
#: potential |E| ~ 4 eV per atom hid a weak anisotropy or field, and minima that differ by them
#: were merged
ENERGY_RTOL = 1e-6
#: machine epsilons (of float64, or float32 for a float32 model) × |E| allowed for the round-off
#: of a total energy summed in another order
ROUND_OFF = 1000
#: operations (rotations × translations) above which a potential without the structure's
#: translations is tested on one operation per rotation only (each with N-long permutations:
#: memory and time grow as N²), with a warning
MAX_OPERATIONS = 4096
#: random spin configurations the energy test is made on
ENERGY_PROBES = 3
#: the energy test sends the potential about this many spins at a time (memory of the batch)
CHUNK_SPINS = 1_000_000


def crystal_operations(state, tol=1e-3, cosets=True, max_operations=None, translations=None):
    """Space-group operations of the structure ``state`` (its atoms typed by element and moment
    magnitude, positions within ``tol`` Å), one per distinct rotation part: the pure translations
    are left out (:class:`~spinlat.translations.Translations` holds them). ``cosets=False``: every
    operation, pure translations and all.

    Returns a list of ``(rotation, permutation)``: ``rotation`` (3, 3) Cartesian, orthogonal
    (acting on column vectors; det −1 for improper operations), ``permutation`` (N,) int with
    atom ``permutation[i]`` at R r_i + t (modulo the cell); the identity first. A state with open
    directions is treated in its padded periodic cell (:func:`spinlat.translations.periodic_cell`);
    an operation whose atom map is not a bijection within ``tol`` (Cartesian, minimum image:
    :meth:`~spinlat.translations.Translations.site_permutation`) is left out. ``max_operations``:
    with ``cosets=False``, more operations than this give one per rotation only, with a
    UserWarning. ``translations``: the state's :class:`~spinlat.translations.Translations` when already
    built (its cell, coordinates and atom types are used). Raises InputError if spglib is missing."""
    try:
        import spglib
    except ImportError:  # pragma: no cover - a dependency
        raise InputError("finding the crystal's symmetry operations needs spglib (pip install spglib)") from None
    from .translations import Translations

    n = len(state)
    identity = [(np.eye(3), np.arange(n))]
    if n == 0:
        return identity
    sites = Translations(state, tol, identity_only=True) if translations is None else translations
    cell, frac = sites.cell, sites.fractional_positions
    with warnings.catch_warnings():  # spglib ≥ 2.5 warns about its error-handling switch, which we leave alone
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            sym = spglib.get_symmetry((cell, frac, sites.site_types + 1), symprec=float(tol))
        except Exception as exc:  # spglib.error.SpglibError where its new error handling is switched on
            if type(exc).__name__ != "SpglibError":
                raise
            sym = None
    if sym is None:  # spglib found no symmetry within tol: the identity (and the translations) only
        return identity
    if not cosets and max_operations is not None and len(sym["rotations"]) > max_operations:
        warnings.warn(f"crystal_operations: {len(sym['rotations'])} operations (rotations × the translations, which "
                      f"the potential does not keep) exceed {max_operations}: one operation per rotation is tried, so "
                      "minima related only by a rotation combined with another translation are listed apart "
                      "(symmetry=False skips the crystal's operations)", UserWarning, stacklevel=3)
        cosets = True
    seen, ops = set(), []
    for rot, shift in zip(sym["rotations"], sym["translations"]):
        key = rot.astype(int).tobytes()
        if cosets and (key in seen or np.array_equal(rot, np.eye(3, dtype=rot.dtype))):
            continue  # one operation per rotation; the identity (standing for the pure translations) first
        perm = sites.site_permutation(frac @ rot.T + shift)
        if perm is None:
            continue  # spglib's tolerance is not exactly ours: left out (fewer merges, never a wrong one)
        if not cosets and np.array_equal(rot, np.eye(3, dtype=rot.dtype)) and np.array_equal(perm, np.arange(n)):
            continue  # the identity, first
        seen.add(key)
        cart = cell.T @ rot @ np.linalg.inv(cell.T)  # x_cart = cellᵀ x_frac
        ops.append((cart, perm.astype(np.int64)))
    return identity + ops


class SpinSymmetry:
    """The symmetry group G of ``potential`` on the structure ``state`` acting on spin
    configurations (module docstring): its pure translations ``translations``
    (:class:`~spinlat.translations.Translations`) times the operations ``elements``, one per coset.

    Parameters
    ----------
    state : the structure (positions, cell, numbers, moments; its spins are not used).
    potential : the energy model whose symmetries are kept (tested on random spins).
    spin_rotations : True for a potential without spin-orbit coupling (spin-space group: spins
        compared modulo a global O(3) rotation, operations act by permutation only); False:
        magnetic space group (axial vectors, time reversal kept where the energy allows it).
    tol : Å, position tolerance of the crystal operations.
    translations : an already built :class:`~spinlat.translations.Translations` of ``state``.
    point_operations : False: the translations (and time reversal where the potential allows it)
        only, no rotation or mirror of the crystal.

    Attributes
    ----------
    elements : list of ``(M, permutation, signs)``: the spin map M (3, 3) (det(R)·R for an
        operation R with spin-orbit coupling, the identity without), the atom permutation (N,)
        (atom ``permutation[i]`` receives M s_i), and ``signs``, the tuple of (1.0,) and/or (−1.0,)
        (time reversal) allowed with it; without spin-orbit coupling ``signs`` is (1.0,) (time
        reversal is a global spin rotation).
    order : |G| (counting an operation and its time-reversed partner apart), the translations
        included; without spin-orbit coupling, the number of distinct atom permutations.
    translation_invariant : whether the structure's pure translations are symmetries of the
        potential (each generator energy-tested); if not, ``translations`` is the trivial group and
        ``elements`` holds every crystal operation the potential keeps, translations included.
    """

    def __init__(self, state, potential, spin_rotations=False, tol=1e-3, translations=None, point_operations=True):
        from .translations import Translations

        self.spin_rotations = bool(spin_rotations)
        t = Translations(state, tol) if translations is None else translations
        n = len(state)
        test = _EnergyTest(state, potential)
        # the structure's translations are symmetries of most potentials, not of one with site-dependent
        # parameters (per-atom anisotropy axes): then none is used, and every crystal operation is tested alone
        self.translation_invariant = all(test.invariant([(np.eye(3), p) for p in t.gens]))
        if not self.translation_invariant:
            t = Translations(state, tol, identity_only=True)
        self.translations = t
        ops = crystal_operations(state, tol, cosets=self.translation_invariant, max_operations=MAX_OPERATIONS,
                                 translations=t) if point_operations else [(np.eye(3), np.arange(n))]
        signs = (1.0,) if self.spin_rotations else (1.0, -1.0)
        maps = [(np.eye(3) if self.spin_rotations else np.linalg.det(rot) * rot, perm) for rot, perm in ops]
        kept = iter(test.invariant([(sign * m, perm) for m, perm in maps for sign in signs]))
        elements, index = [], {}
        for m, perm in maps:
            allowed = tuple(sign for sign in signs if next(kept))
            if not allowed:
                continue
            key, flip = self._coset_key(m, perm)
            if key in index:  # acts on spins as an element kept (inversion without SOC), or as it × time reversal
                k = index[key]
                m0, perm0, signs0 = elements[k]
                relative = flip * self._coset_key(m0, perm0)[1]
                elements[k] = (m0, perm0, tuple(sorted(set(signs0) | {s * relative for s in allowed}, reverse=True)))
                continue
            index[key] = len(elements)
            elements.append((m, perm, allowed))
        self.elements = elements
        self.order = self.translations.order * sum(len(e[2]) for e in elements)

    def _coset_key(self, m, perm):
        """A key equal for two operations acting alike on spins: the spin map (up to sign) and
        the permutation composed with the translation that brings atom 0's image to the
        translation coordinates 0 (the canonical member of its coset of the translations)."""
        t = self.translations
        sign = 1.0 if m.flat[np.argmax(np.abs(m))] > 0 else -1.0
        if len(perm) == 0:
            return np.round(sign * m, 6).tobytes(), sign
        tau = (-t.coords[perm[0]]) % np.array(t.shape)
        canon = t.permutation(tau)[perm]
        return np.round(sign * m, 6).tobytes() + canon.tobytes(), sign

    def transformed(self, spins, element):
        """``spins`` (N, 3) carried by ``element`` (one of :attr:`elements`), time reversal not applied."""
        m, perm, _ = element
        return _act(np.asarray(spins, dtype=float), m, perm)

    def same(self, a, b, tol=1e-2, spectrum_a=None, images=None) -> bool:
        """True when configurations ``a`` and ``b`` ((N, 3), zero rows for non-magnetic atoms)
        are related by an element of the group: every spin within ``tol`` (rad, angle-like) of
        its image. ``spectrum_a``: ``translations.spectrum(a)`` when already computed;
        ``images``: a dict kept by the caller for ``b`` across comparisons (b's image under
        element k and its spectrum are computed once, as entry k)."""
        t = self.translations
        fa = t.spectrum(a) if spectrum_a is None else spectrum_a
        images = {} if images is None else images
        for k, el in enumerate(self.elements):
            if k not in images:
                bp = self.transformed(b, el)
                images[k] = (bp, t.spectrum(bp))
            if self._matches(a, *images[k], fa, el, tol, first=True):
                return True
        return False

    def degeneracy(self, a, tol=1e-2, spectrum_a=None) -> int:
        """The number of distinct configurations symmetry-equivalent to ``a`` (its orbit under
        the group: |G| / |stabiliser of a|, the stabiliser counted within ``tol``); without
        spin-orbit coupling, counted modulo global spin rotations."""
        t = self.translations
        fa = t.spectrum(a) if spectrum_a is None else spectrum_a
        stab = 0
        for el in self.elements:
            ap = self.transformed(a, el)
            stab += self._matches(a, ap, t.spectrum(ap), fa, el, tol)
        return max(1, int(round(self.order / max(stab, 1))))

    def _matches(self, a, bp, fb, fa, element, tol, first=False):
        """Translations (with the signs ``element`` allows) bringing ``bp`` (spectrum ``fb``),
        already carried by ``element``, onto ``a`` (spectrum ``fa``): their number, or 0/1 with ``first``."""
        t = self.translations
        signs = element[2]
        if self.spin_rotations:
            return t.matches(a, bp, True, tol, (fa, fb), first=first)
        if signs == (-1.0,):
            bp, fb = -bp, -fb
        return t.matches(a, bp, False, tol, (fa, fb), time_reversal=len(signs) == 2, first=first)


def _act(spins, m, perm):
    """Spins after the operation: atom perm[i] receives m @ spins[i]."""
    out = np.empty_like(spins)
    out[perm] = spins @ m.T
    return out


def _single_precision(potential) -> bool:
    """Whether a term of ``potential`` computes in float32 (an mMACE model's ``dtype``)."""
    return any("32" in str(getattr(t, "dtype", "")) for t in getattr(potential, "terms", [potential]))


class _EnergyTest:
    """Which operations on spins are symmetries of ``potential`` on ``state``? Energies of
    :data:`ENERGY_PROBES` random configurations (seeded: the same answer every time) before and
    after each, compared within :data:`ENERGY_RTOL` of their scale. The configurations of many
    operations go to :meth:`~spinlat.potentials.base.Potential.compute_many` together (one model
    call for a potential that batches replicas, such as mMACE)."""

    def __init__(self, state, potential):
        self.state, self.potential = state, potential
        rng = np.random.default_rng(20261202)
        probes = rng.normal(size=(ENERGY_PROBES, len(state), 3))
        self.probes = probes / np.linalg.norm(probes, axis=2, keepdims=True)
        evs = potential.compute_many([state.copy(spins=s) for s in self.probes], forces=False, magnetic_forces=True)
        self.energies = np.array([float(ev.energy) for ev in evs])
        # the spin energy scale Σ_i |m_i| |h_i| (eV), what the spins contribute, however large the rest
        # (|h|, not m·h: a term of unit spins has transverse magnetic forces only)
        spin_scale = max((float(np.sum(np.linalg.norm(ev.magnetic_forces, axis=1) * state.moments))
                          for ev in evs if ev.magnetic_forces is not None), default=0.0)
        eps = float(np.finfo(np.float32 if _single_precision(potential) else np.float64).eps)
        self.limit = ENERGY_RTOL * spin_scale + ROUND_OFF * eps * float(np.max(np.abs(self.energies))) + 1e-12

    def _energies(self, spins):
        if len(spins) == 0:
            return np.zeros(0)
        states = [self.state.copy(spins=s) for s in spins]
        evs = self.potential.compute_many(states, forces=False, magnetic_forces=False)
        return np.array([float(ev.energy) for ev in evs])

    def invariant(self, maps) -> list:
        """For each ``(M, permutation)`` of ``maps`` (atom permutation[i] receives M s_i): does it
        leave the energy of every probe unchanged? A non-symmetry almost always shows on the first
        probe, so the others are evaluated only for the maps that pass it. The configurations go
        to the potential in chunks of about :data:`CHUNK_SPINS` spins."""
        maps = list(maps)
        ok = []
        per = max(1, CHUNK_SPINS // max(1, len(self.state) * len(self.probes)))
        for start in range(0, len(maps), per):
            chunk = maps[start:start + per]
            first = self._energies(np.stack([_act(self.probes[0], m, p) for m, p in chunk]))
            passed = [k for k, e in enumerate(first) if abs(e - self.energies[0]) <= self.limit]
            good = {k: True for k in passed}
            if len(self.probes) > 1 and passed:
                moved = self._energies(np.stack([_act(s, *chunk[k]) for k in passed for s in self.probes[1:]]))
                for k, row in zip(passed, moved.reshape(len(passed), len(self.probes) - 1)):
                    good[k] = bool(np.max(np.abs(row - self.energies[1:])) <= self.limit)
            ok += [good.get(k, False) for k in range(len(chunk))]
        return ok
