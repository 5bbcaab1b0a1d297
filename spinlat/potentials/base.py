"""The potential interface: one protocol, results in one place.

Every energy model derives from :class:`Potential` and implements ``_evaluate``; users (and
integrators) call ``compute(state, neighbors=None, *, forces=True, magnetic_forces=True,
stress=False)`` and get an :class:`Evaluation`; ``compute_many(states, ...)`` evaluates independent
replicas (GNEB images, ensembles) and gives one Evaluation per replica, batched where the
potential can (mMACE: one model call). Potentials add: ``EAM(...) +
BetheSlaterExchange(...) + Zeeman(...)`` is a :class:`SumPotential` that builds one neighbour list
for all its terms. Terms at most quadratic in each spin also describe themselves as
:class:`~spinlat.potentials.couplings.LinearSpinCouplings` (:meth:`Potential.spin_couplings`),
which sums merge; spin integrators evaluate those in one kernel
(:mod:`spinlat.integrators.fields`).

Conventions (see DESIGN.md):

- energy in eV, forces −∂E/∂r in eV/Å;
- magnetic forces h_i = −∂E/∂m_i in eV/μB, with m_i = moments_i · spins_i. A term written on
  unit spins, E(s), has h_i = −(1/|m_i|) (1 − s_i s_iᵀ) ∂E/∂s_i: no longitudinal part. A term
  depending on magnitudes adds −s_i ∂E/∂|m_i|. Non-magnetic atoms (moment 0) get h = 0;
- stress (6,) Voigt order xx, yy, zz, yz, xz, xy, eV/Å³, = (1/V) ∂E/∂ε as ASE's ``get_stress``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import hashlib

import numba
import numpy as np

from ..errors import FixedParameterError, InputError, UnknownElementError
from ..interrupts import check_abandon
from ..neighbors import NeighborList
from ..keywords import refuse_other_names


@dataclass
class Evaluation:
    """Result of one potential evaluation. Arrays not asked for are ``None``.

    Attributes: ``energy`` (eV), ``forces`` (N,3 eV/Å), ``magnetic_forces`` (N,3 eV/μB),
    ``stress`` (6, eV/Å³, Voigt, ASE sign), ``energies`` (N, eV per atom, summing to energy).
    """

    energy: float
    forces: np.ndarray | None = None
    magnetic_forces: np.ndarray | None = None
    stress: np.ndarray | None = None
    energies: np.ndarray | None = None
    extra: dict = field(default_factory=dict)

    def __add__(self, other: "Evaluation") -> "Evaluation":
        def add(a, b):
            if a is None or b is None:
                return None if (a is None and b is None) else (a if b is None else b)
            return a + b

        return Evaluation(self.energy + other.energy, add(self.forces, other.forces),
                          add(self.magnetic_forces, other.magnetic_forces), add(self.stress, other.stress),
                          add(self.energies, other.energies))

    @property
    def torques(self) -> np.ndarray:
        """Not available without spins; see :func:`spin_torques`."""
        raise AttributeError("use spinlat.potentials.spin_torques(state, evaluation)")


def spin_torques(state, ev: Evaluation) -> np.ndarray:
    """Spin torques s_i × ∂E/∂s_i = −|m_i| s_i × h_i (eV, (N, 3)) from the magnetic forces h (eV/μB)
    of ``ev``; zero on non-magnetic atoms. (h_i = −∂E/∂m_i and ∂E/∂s_i = −|m_i| h_i on the sphere.)"""
    out = np.empty_like(state.spins)
    torque_kernel(np.ascontiguousarray(state.spins), np.ascontiguousarray(ev.magnetic_forces, dtype=np.float64),
                  np.ascontiguousarray(state.moments), out)
    return out


@numba.njit(cache=True)
def torque_kernel(spins, h, moments, out):
    """out_i = −|m_i| s_i × h_i (eV) for spins (N, 3), magnetic forces h (N, 3) eV/μB, moments (N,) μB."""
    for i in range(spins.shape[0]):
        m = moments[i]
        sx, sy, sz = spins[i, 0], spins[i, 1], spins[i, 2]
        out[i, 0] = -m * (sy * h[i, 2] - sz * h[i, 1])
        out[i, 1] = -m * (sz * h[i, 0] - sx * h[i, 2])
        out[i, 2] = -m * (sx * h[i, 1] - sy * h[i, 0])


def virial_to_voigt(virial: np.ndarray, volume: float) -> np.ndarray:
    """3×3 virial Σ (∂E/∂r_ij) ⊗ r_ij (eV) → Voigt stress (eV/Å³, ASE sign)."""
    s = 0.5 * (virial + virial.T) / volume
    return np.array([s[0, 0], s[1, 1], s[2, 2], s[1, 2], s[0, 2], s[0, 1]])


def voigt_to_matrix(voigt: np.ndarray) -> np.ndarray:
    """Voigt (6,) → symmetric 3×3."""
    xx, yy, zz, yz, xz, xy = voigt
    return np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])


def magnetic_forces_from_gradients(state, grad_s=None, grad_mu=None) -> np.ndarray:
    """h_i = −∂E/∂m_i (eV/μB) from ∂E/∂s_i (eV, on unit spins) and ∂E/∂|m_i| (eV/μB).

    Non-magnetic atoms get zero."""
    n = len(state)
    h = np.zeros((n, 3))
    mag = state.moments > 0
    s = state.spins
    if grad_s is not None:
        g = grad_s - np.sum(grad_s * s, axis=1)[:, None] * s
        h[mag] -= g[mag] / state.moments[mag, None]
    if grad_mu is not None:
        h[mag] -= grad_mu[mag, None] * s[mag]
    return h


class FixedDict(dict):
    """A dict parameter of a potential (per-species constants, ``UniaxialAnisotropy(K={"Fe": ...})``),
    fixed at construction like its arrays: item assignment, deletion and the other mutators raise
    :class:`~spinlat.errors.FixedParameterError` (the term's tables hold the values it was built
    with). Pickles and deep-copies as itself."""

    def _refuse(self, *args, **kwargs):
        raise FixedParameterError("a potential's parameters are fixed when the term is built (its tables hold "
                                  "them); build a new term with the new values instead of changing this dict")

    __setitem__ = __delitem__ = __ior__ = _refuse
    clear = pop = popitem = setdefault = update = _refuse

    def __reduce__(self):
        return type(self), (dict(self),)

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self


class Potential:
    """Base class of every spinlat energy model.

    Subclasses set ``cutoff`` (Å; 0 for terms that need no distance neighbour list) and
    implement ``_evaluate(state, neighbors, forces, magnetic_forces, stress)`` (positional
    arguments, called by :meth:`compute`), where ``neighbors`` is a
    :class:`~spinlat.neighbors.NeighborList` built with a cutoff at least ``cutoff`` (kernels must
    test distances against their own cutoff), or ``None``. Terms whose energy is at most quadratic
    in each spin on a frozen lattice also implement :meth:`spin_couplings`; terms that can give
    the fields of a few atoms cheaply override :meth:`local_fields` (and :meth:`rotation_fields`,
    :meth:`local_energies`).
    """

    #: interaction range, Å (0: no neighbour list needed)
    cutoff: float = 0.0
    #: neighbour-list skin, Å
    skin: float = 0.3
    #: the energy depends on moment magnitudes, not only on spin directions
    depends_on_magnitudes: bool = False
    #: the potential gives magnetic forces (effective fields)
    provides_magnetic_forces: bool = True
    #: elements (atomic numbers) the potential knows; None = any
    elements: tuple[int, ...] | None = None
    #: the energy depends on spins or moments (False for purely lattice terms such as EAM:
    #: spin integrators skip them and leave them out of the spin-graph colouring)
    magnetic: bool = True
    #: ``local_fields`` is cheap, touching only the listed atoms and their neighbours (False for
    #: models that give all magnetic forces at once, such as mMACE)
    local: bool = True
    #: the energy is unchanged when all spins rotate together with the lattice fixed (no
    #: spin-orbit coupling); used to merge equivalent minima in ground-state searches
    spin_rotation_invariant: bool = False
    #: :meth:`compute_many` evaluates many replicas together faster than one by one (it
    #: overrides :meth:`_evaluate_many`; mMACE: one model call on the union of their graphs)
    batches_replicas: bool = False
    #: the spin energy is many-body: not a sum of pair terms linear in each spin plus on-site
    #: terms (mMACE), so no local energy change of one moved spin exists (MonteCarlo refuses it)
    many_body_spins: bool = False

    #: attributes that only cache what the potential rebuilds on demand (neighbour lists, pair
    #: lists, coupling and work tables): left out when the potential is pickled or deep-copied
    _CACHES = ("_nl", "_known_numbers", "_pair_stores", "_couplings_cache", "_half_key", "_half_arrays",
               "_work_arrays", "_tensor_table")

    #: parameters fixed at construction (public attributes): assigning one again raises
    #: :class:`~spinlat.errors.FixedParameterError` (:meth:`__setattr__`); their arrays are
    #: read-only views. The kernels, coupling tables and integrator caches hold the values the
    #: term was built with, so ``term.B = ...`` changed its repr (and a trajectory's record of
    #: the potential) but not its energy.
    _PARAMETERS: tuple[str, ...] = ()

    def __setattr__(self, name, value):
        if name in type(self)._PARAMETERS and name in self.__dict__:
            raise FixedParameterError(
                f"{type(self).__name__}.{name} is fixed when the term is built (its energy, fields and the "
                f"integrators' tables hold the value given then); build a new {type(self).__name__}(...) "
                f"with the new {name} instead of assigning it")
        if name in type(self)._PARAMETERS and isinstance(value, np.ndarray):
            value = value.view()
            value.flags.writeable = False  # term.B[2] = 5 would change the repr only, as above
        elif name in type(self)._PARAMETERS and isinstance(value, dict) and not isinstance(value, FixedDict):
            value = FixedDict(value)  # a copy: neither term.K["Fe"] = ... nor the user's dict changes it
        object.__setattr__(self, name, value)

    def __getstate__(self):
        """The attributes without the caches of :data:`_CACHES`: a pickled potential (sent to
        worker processes by :func:`spinlat.sweep` / :func:`spinlat.search.ground_state`, or
        deep-copied) holds its parameters only. A cache may hold what cannot be pickled (a
        closure over a pair list) and is often far larger than the parameters."""
        return {k: v for k, v in self.__dict__.items() if k not in self._CACHES}

    def __setstate__(self, state):
        """Restore a pickled or deep-copied potential: its :data:`_PARAMETERS` arrays are made
        read-only again (pickling and ``copy.deepcopy`` build new, writeable arrays, and an
        in-place change of one would again change the term's description but not its energy)."""
        self.__dict__.update(state)
        for name in type(self)._PARAMETERS:
            value = self.__dict__.get(name)
            if isinstance(value, np.ndarray) and value.flags.writeable:
                value = value.view()
                value.flags.writeable = False
                self.__dict__[name] = value

    @refuse_other_names()
    def compute(self, state, neighbors=None, *, forces: bool = True, magnetic_forces: bool = True,
                stress: bool = False) -> Evaluation:
        """Energy (eV), forces (eV/Å), magnetic forces −∂E/∂m (eV/μB), stress (eV/Å³, Voigt, ASE
        sign) and per-atom energies (eV) of ``state``: the one entry to every potential.

        Parameters
        ----------
        state : :class:`~spinlat.state.State`.
        neighbors : ``None`` (the potential's own neighbour list, updated for ``state``: see
            :meth:`neighbor_list`), or a :class:`~spinlat.neighbors.NeighborList` that the caller
            keeps up to date for ``state`` (integrators, which update it once per position
            update), built with a cutoff of at least :attr:`cutoff`; it is used as given.
        forces, magnetic_forces, stress : which arrays to compute (keyword-only); the others are
            ``None`` in the :class:`Evaluation` (the energy and per-atom energies always come).

        Raises :class:`~spinlat.errors.InputError` for stress without a cell periodic in all three
        directions or an unsuitable ``neighbors``, and
        :class:`~spinlat.errors.UnknownElementError` for elements the potential does not know.
        Inside work its caller may drop (:func:`spinlat.interrupts.abandonable`: a
        :class:`~spinlat.Simulation` step), a Ctrl-C or SIGTERM held back by
        :func:`spinlat.interrupts.deferred` is raised here, before anything is evaluated.
        """
        check_abandon()  # a stop held back inside work that may be dropped (a Simulation's step) ends here
        if stress and not state.pbc.all():
            raise InputError("stress needs a cell periodic in all three directions")
        self.check_state(state)
        self._check_neighbors(neighbors, f"{type(self).__name__}.compute: neighbors", "(forces, magnetic_forces "
                              "and stress are keyword-only)")
        return self._evaluate(state, self._neighbors_for(state, neighbors), bool(forces), bool(magnetic_forces),
                              bool(stress))

    @refuse_other_names()
    def compute_many(self, states, neighbors=None, *, forces: bool = True, magnetic_forces: bool = True,
                     stress: bool = False) -> list[Evaluation]:
        """Evaluations of several independent configurations (replicas: GNEB images, ensemble
        members, search starts), one :class:`Evaluation` per state in the order of ``states``,
        each equal to ``compute(states[k], neighbors[k], ...)`` to round-off.

        Parameters
        ----------
        states : any iterable of :class:`~spinlat.state.State`; sizes, species, cells and
            periodicity may differ from replica to replica.
        neighbors : ``None`` (each replica as ``compute`` with ``neighbors=None``), or a sequence
            of ``len(states)`` entries, each ``None`` or a :class:`~spinlat.neighbors.NeighborList`
            kept up to date for its replica (as in :meth:`compute`).
        forces, magnetic_forces, stress : as in :meth:`compute` (keyword-only).

        Units and shapes as :meth:`compute`: per replica energy eV, forces (N_k, 3) eV/Å,
        magnetic forces (N_k, 3) eV/μB, stress (6,) eV/Å³ Voigt (ASE sign), per-atom energies
        (N_k,) eV. Raises :class:`~spinlat.errors.InputError` for an entry that is not a State,
        stress with a replica not periodic in all three directions, or unsuitable ``neighbors``,
        and :class:`~spinlat.errors.UnknownElementError` for an element the potential does not
        know, each naming ``states[k]``.

        This base implementation evaluates the replicas one by one (every analytic term keeps
        its own kernels and neighbour list). Potentials for which one call on many small systems
        is cheaper than many calls set :attr:`batches_replicas` and override
        :meth:`_evaluate_many`: :class:`~spinlat.potentials.mmace.MagneticMACE` evaluates the
        disjoint union of the replicas' graphs in one model call (as torch-sim batches systems),
        and a :class:`SumPotential` holding such a term batches that term and loops over the
        others. Consumers call ``compute_many`` for any potential."""
        from ..state import State

        check_abandon()
        states = list(states)
        if neighbors is None:
            neighbors = [None] * len(states)
        elif isinstance(neighbors, NeighborList) or not hasattr(neighbors, "__len__") \
                or len(neighbors) != len(states):
            raise InputError(f"{type(self).__name__}.compute_many: neighbors must be None or a sequence of one "
                             f"NeighborList (or None) per state ({len(states)}), got {type(neighbors).__name__}")
        neighbors = list(neighbors)
        for k, (st, nl) in enumerate(zip(states, neighbors)):
            where = f"{type(self).__name__}.compute_many: states[{k}]"
            if not isinstance(st, State):
                raise InputError(f"{where} is a {type(st).__name__}, not a spinlat State (convert ase.Atoms with "
                                 "spinlat.State.from_ase)")
            if stress and not st.pbc.all():
                raise InputError(f"{where}: stress needs a cell periodic in all three directions, "
                                 f"got pbc={st.pbc.tolist()}")
            try:
                self.check_state(st)
            except UnknownElementError as exc:
                raise UnknownElementError(f"{where}: {exc}") from None
            self._check_neighbors(nl, f"{type(self).__name__}.compute_many: neighbors[{k}]")
        return self._evaluate_many(states, neighbors, bool(forces), bool(magnetic_forces), bool(stress))

    def _check_neighbors(self, neighbors, where, hint=""):
        """Raise InputError unless ``neighbors`` is None or a NeighborList reaching :attr:`cutoff`
        (terms without a cutoff ignore the list but still refuse a non-list: a positional
        ``compute(state, True)`` is a mistake)."""
        if neighbors is None:
            return
        if not isinstance(neighbors, NeighborList):
            raise InputError(f"{where} must be a spinlat NeighborList or None, got {type(neighbors).__name__}"
                             + (f" {hint}" if hint else ""))
        if neighbors.cutoff < self.cutoff:
            raise InputError(f"{where}: the neighbour list has cutoff {neighbors.cutoff} Å, below the potential's "
                             f"{self.cutoff} Å")

    def _neighbors_for(self, state, neighbors):
        """The neighbour list ``_evaluate`` gets for ``state``: None without a cutoff, the given
        (checked) list, else the potential's own (:meth:`neighbor_list`)."""
        if self.cutoff <= 0:
            return None
        return self.neighbor_list(state) if neighbors is None else neighbors

    def _evaluate_many(self, states, neighbors, forces, magnetic_forces, stress) -> list[Evaluation]:
        """:meth:`compute_many` after its checks (``neighbors``: one entry per state, None or a
        checked NeighborList). The default evaluates the replicas one by one with
        :meth:`_evaluate`, exactly as :meth:`compute` would."""
        out = []
        for st, nl in zip(states, neighbors):
            check_abandon()  # between replicas too: a stop inside a GNEB step need not wait for every image
            out.append(self._evaluate(st, self._neighbors_for(st, nl), forces, magnetic_forces, stress))
        return out

    def neighbor_list(self, state) -> NeighborList:
        """The cached neighbour list of this potential, updated for ``state``."""
        nl = getattr(self, "_nl", None)
        if nl is None or nl.cutoff < self.cutoff:
            nl = self._nl = NeighborList(self.cutoff, self.skin)
        nl.update(state)
        return nl

    def check_state(self, state) -> None:
        """Raise if ``state`` holds elements this potential does not know. The answer is kept for
        the ``numbers`` array last checked (integrators hand the same array on from step to step;
        arrays of a State are not changed in place)."""
        if self.elements is not None:
            if self.__dict__.get("_known_numbers") is state.numbers:
                return
            known = np.asarray(self.elements)
            bad = ~np.isin(state.numbers, known)
            if np.any(bad):
                from ase.data import chemical_symbols

                z = int(state.numbers[bad][0])
                names = [chemical_symbols[k] for k in known]
                raise UnknownElementError(
                    f"{type(self).__name__} does not know element {chemical_symbols[z]} (Z={z}); it knows {names}")
            self.__dict__["_known_numbers"] = state.numbers

    def _evaluate(self, state, neighbors, forces, magnetic_forces, stress) -> Evaluation:  # pragma: no cover
        raise NotImplementedError

    def spin_couplings(self, state, neighbors=None):
        """This term's energy as :class:`~spinlat.potentials.couplings.LinearSpinCouplings` at the
        positions, atomic numbers and magnetic atoms of ``state`` (valid while those stay the
        same; not the moment magnitudes, which the couplings take as an argument), or ``None``
        when the energy is not at most quadratic in each spin (the default: EAM-coupled
        exchange with its forces is, Landau, cubic anisotropy and mMACE are not) or when the term
        does not depend on spins at all (``magnetic = False``).

        ``neighbors``: as in :meth:`compute`. Evaluated through the couplings, the energies,
        per-atom energies and magnetic forces equal :meth:`compute`'s to round-off (tested for
        every term, tests/potentials/test_couplings.py). A subclass may set ``spin_couplings =
        None`` to keep integrators on the general path (``local_fields``)."""
        return None

    def local_fields(self, state, neighbors, atoms: np.ndarray) -> np.ndarray:
        """Magnetic forces h = −∂E/∂m (eV/μB) of the atoms ``atoms`` only, (len(atoms), 3).

        Used by integrators that update spins one colour class at a time. Local analytic terms
        override this with a kernel that touches only those atoms and their neighbours; the
        default evaluates everything and picks the rows."""
        check_abandon()
        ev = self._evaluate(state, neighbors, False, True, False)
        return ev.magnetic_forces[atoms]

    def local_energies(self, state, neighbors, atoms: np.ndarray) -> np.ndarray:
        """Per-atom energies (eV, the split of :attr:`Evaluation.energies`) of the atoms ``atoms``,
        (len(atoms),). For single-site terms this is the whole energy that depends on each atom's
        own moment (Monte Carlo takes its on-site energy changes from it). Single-site terms
        override it with their kernel; the default evaluates everything and picks the entries."""
        check_abandon()
        return self._evaluate(state, neighbors, False, False, False).energies[atoms]

    def rotation_fields(self, state, neighbors, atoms: np.ndarray) -> np.ndarray:
        """Fields (eV/μB, (len(atoms), 3)) about which spin integrators rotate the spins ``atoms``.

        Same as :meth:`local_fields` up to a component along each s_i, which changes no
        torque but decides which axis a finite rotation turns about. A term whose energy is
        linear in s_i (pair exchange, Zeeman) should return its unprojected field
        −(1/|m_i|) ∂E/∂s_i: the rotation about it is then the exact motion of s_i and
        conserves that energy exactly. The default takes :meth:`local_fields` and, for terms
        that depend on moment magnitudes, drops the longitudinal part (it does not turn spins)."""
        h = self.local_fields(state, neighbors, atoms)
        if self.depends_on_magnitudes:
            s = state.spins[atoms]
            h = h - np.sum(h * s, axis=1)[:, None] * s
        return h

    def spin_curvatures(self, state, neighbors, atoms: np.ndarray) -> np.ndarray | None:
        """c_i = tr H_i − s_iᵀ H_i s_i (eV, (len(atoms),)) of ``atoms``, H_i = ∂²E/∂s_i∂s_iᵀ the
        Hessian of this term's energy in the ambient components of spin i's own vector; or
        ``None`` when it is not known.

        With the unprojected field ω_i = −∂E/∂s_i = |m_i| H_i of :meth:`rotation_fields`, the
        Laplacian of E on spin i's unit sphere is 2 s_i·ω_i + c_i (for f(s) on ℝ³ restricted to
        |s| = 1: Δ_S f = tr ∇²f − sᵀ∇²f s − 2 s·∇f); the spin temperature
        (:func:`spinlat.observables.spin_temperature`) divides by it. c_i = 0 for energies linear
        in each spin (pair exchange, Zeeman); uniaxial anisotropy −K (s·n)² gives
        c_i = 2K((s·n)² − 1). The default takes the term's :meth:`spin_couplings` (on-site forms,
        couplings to an atom's own periodic images); a term without couplings gives zeros
        (``magnetic = False``: no spin dependence; otherwise it is taken to be linear in each
        spin, and a term that is not overrides this), ``None`` when the energy depends on moment
        magnitudes or is many-body in the spins (mMACE: no per-spin Hessian is available)."""
        atoms = np.asarray(atoms, dtype=np.int64)
        if not self.magnetic:
            return np.zeros(len(atoms))
        if self.depends_on_magnitudes or self.many_body_spins:
            return None
        c = term_couplings(self, state, neighbors)
        if c is None:
            return np.zeros(len(atoms))
        return c.spin_curvatures(state.spins, atoms)

    def _zero(self, state, forces, magnetic_forces, stress) -> Evaluation:
        n = len(state)
        return Evaluation(0.0, np.zeros((n, 3)) if forces else None,
                          np.zeros((n, 3)) if magnetic_forces else None,
                          np.zeros(6) if stress else None, np.zeros(n))

    def __add__(self, other: "Potential") -> "SumPotential":
        if not isinstance(other, Potential):
            return NotImplemented
        return SumPotential([*_terms(self), *_terms(other)])

    @property
    def terms(self) -> list["Potential"]:
        return [self]

    def describe(self) -> str:
        """One-line description used in trajectory metadata."""
        return repr(self)

    def digest_items(self) -> tuple:
        """What decides this term's energy beyond its ``repr`` (which may only count, e.g.
        ``Heisenberg(n_sites=2, n_pairs=8)``): arrays, numbers, strings, nested lists/dicts.
        Hashed by :meth:`parameter_digest`. Default: nothing beyond the repr."""
        return ()

    def parameter_digest(self) -> str:
        """16 hexadecimal digits of SHA-256 over the term's ``repr`` and :meth:`digest_items`
        (array dtypes, shapes and bytes): equal for terms with the same parameters, different
        (with overwhelming probability) when any parameter differs, e.g. one Heisenberg J.
        Stored per term in a trajectory's ``metadata`` (``potential_digests``) so that a restart
        with other parameters is noticed (:meth:`spinlat.Simulation.restart`)."""
        h = hashlib.sha256(repr(self).encode())
        _feed_digest(h, self.digest_items())
        return h.hexdigest()[:16]

    def term_digests(self) -> list:
        """``[[repr(term), term.parameter_digest()], ...]`` for each of :attr:`terms`."""
        return [[repr(t), t.parameter_digest()] for t in self.terms]


def changed_parameters(old, new) -> list:
    """Terms of a potential whose parameters differ from those recorded in a file (a trajectory's
    or a GNEB band's ``metadata["potential_digests"]``): ``old``, ``new`` are
    ``[[repr, digest], ...]`` (:meth:`Potential.term_digests`); one phrase per such term. A file
    written before digests were recorded (``old`` not such a list) compares nothing."""
    if not isinstance(old, list) or len(old) != len(new) or \
            not all(isinstance(o, list) and len(o) == 2 for o in old):
        return []
    return [f"other parameters in potential term {k + 1}, {text} (digest {digest}; the file records {o[1]})"
            for k, ((text, digest), o) in enumerate(zip(new, old)) if o[0] == text and o[1] != digest]


def _feed_digest(h, x) -> None:
    """Add ``x`` (None, bool, number, str, bytes, NumPy or torch array, list/tuple, dict) to the
    hash ``h`` with its type, so that e.g. 1 and 1.0 or [1, 2] and [[1], [2]] differ."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # a torch tensor, without importing torch
        x = x.detach().cpu().numpy()
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, np.ndarray):
        a = np.ascontiguousarray(x)
        h.update(f"A{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    elif isinstance(x, dict):
        h.update(f"D{len(x)}".encode())
        for k in sorted(x, key=repr):
            _feed_digest(h, k)
            _feed_digest(h, x[k])
    elif isinstance(x, (list, tuple)):
        h.update(f"L{len(x)}".encode())
        for v in x:
            _feed_digest(h, v)
    elif isinstance(x, bytes):
        h.update(b"B%d:" % len(x) + x)
    else:  # None, bool, int, float, str, NumPy scalars: repr is exact (floats round-trip)
        r = repr(x)
        h.update(f"S{type(x).__name__}{len(r)}:{r}".encode())


def _terms(p):
    return p.terms


def term_couplings(term, state, neighbors=None):
    """``term.spin_couplings(state, neighbors)`` (neighbours passed only to terms with a cutoff),
    or None when the term has switched the method off (``spin_couplings = None``)."""
    get = term.spin_couplings
    if get is None:
        return None
    return get(state, neighbors if term.cutoff > 0 else None)


def _accumulate(total: Evaluation | None, ev: Evaluation) -> Evaluation:
    """``total + ev`` (``ev`` when ``total`` is None) into arrays of the sum's own: ``total``
    (made here) is added to in place, so that a sum of K terms holds one set of result arrays at a
    time, not a new set per term (a term's arrays are copied, never changed)."""
    if total is None:
        return Evaluation(ev.energy, *(None if a is None else np.array(a, dtype=np.float64)
                                        for a in (ev.forces, ev.magnetic_forces, ev.stress, ev.energies)))
    for name in ("forces", "magnetic_forces", "stress", "energies"):
        a, b = getattr(total, name), getattr(ev, name)
        if a is None:
            setattr(total, name, None if b is None else np.array(b, dtype=np.float64))
        elif b is not None:
            a += b
    total.energy += ev.energy
    return total


class SumPotential(Potential):
    """Sum of potentials sharing one neighbour list (built with the largest cutoff)."""

    def __init__(self, terms):
        self._terms = list(terms)
        if not self._terms:
            raise InputError("a sum of potentials needs at least one term")
        self.cutoff = max(t.cutoff for t in self._terms)
        self.skin = min(t.skin for t in self._terms)
        self.depends_on_magnitudes = any(t.depends_on_magnitudes for t in self._terms)
        self.provides_magnetic_forces = all(t.provides_magnetic_forces for t in self._terms)
        self.magnetic = any(t.magnetic for t in self._terms)
        self.local = all(t.local for t in self._terms if t.magnetic)
        self.spin_rotation_invariant = all(t.spin_rotation_invariant for t in self._terms)
        self.batches_replicas = any(t.batches_replicas for t in self._terms)
        self.many_body_spins = any(t.many_body_spins for t in self._terms if t.magnetic)

    @property
    def terms(self):
        return list(self._terms)

    def digest_items(self) -> tuple:
        """Each term's :meth:`parameter_digest`, in order."""
        return tuple(t.parameter_digest() for t in self._terms)

    def check_state(self, state):
        for t in self._terms:
            t.check_state(state)

    def _evaluate(self, state, neighbors, forces, magnetic_forces, stress):
        if len(self._terms) == 1:
            t = self._terms[0]
            return t._evaluate(state, neighbors if t.cutoff > 0 else None, forces, magnetic_forces, stress)
        total = None
        for t in self._terms:
            ev = t._evaluate(state, neighbors if t.cutoff > 0 else None, forces, magnetic_forces, stress)
            total = _accumulate(total, ev)
            del ev  # the term's arrays go before the next term makes its own
        return total

    def _evaluate_many(self, states, neighbors, forces, magnetic_forces, stress):
        """Terms that batch replicas (:attr:`batches_replicas`, mMACE) evaluate all replicas in
        their own :meth:`_evaluate_many` (with the caller's neighbour lists, else their own
        graphs); the others replica by replica on the sum's neighbour list, as in
        :meth:`_evaluate`. Per replica the terms are added in the same order as there."""
        if not self.batches_replicas:
            return super()._evaluate_many(states, neighbors, forces, magnetic_forces, stress)
        batched = {i: t._evaluate_many(states, neighbors, forces, magnetic_forces, stress)
                   for i, t in enumerate(self._terms) if t.batches_replicas}
        need_list = any(t.cutoff > 0 and not t.batches_replicas for t in self._terms)
        out = []
        for k, (st, nl) in enumerate(zip(states, neighbors)):
            if need_list:  # the sum's own list is updated replica by replica: used before the next
                nl = self._neighbors_for(st, nl)
            total = None
            for i, t in enumerate(self._terms):
                ev = batched[i][k] if i in batched else \
                    t._evaluate(st, nl if t.cutoff > 0 else None, forces, magnetic_forces, stress)
                total = ev if total is None else total + ev
            out.append(total)
        return out

    def local_fields(self, state, neighbors, atoms):
        h = np.zeros((len(atoms), 3))
        for t in self._terms:
            h += t.local_fields(state, neighbors if t.cutoff > 0 else None, atoms)
        return h

    def local_energies(self, state, neighbors, atoms):
        e = np.zeros(len(atoms))
        for t in self._terms:
            e += t.local_energies(state, neighbors if t.cutoff > 0 else None, atoms)
        return e

    def spin_couplings(self, state, neighbors=None):
        """The merged :class:`~spinlat.potentials.couplings.LinearSpinCouplings` of the magnetic
        terms (:meth:`LinearSpinCouplings.merge`), or ``None`` if one of them has none. Terms with
        ``magnetic = False`` (EAM) are left out: their energy does not depend on spins, so the
        couplings' energy is the sum's minus theirs."""
        from .couplings import LinearSpinCouplings

        parts = []
        for t in self._terms:
            if not t.magnetic:
                continue
            c = term_couplings(t, state, neighbors)
            if c is None:
                return None
            parts.append(c)
        return LinearSpinCouplings.merge(parts) if parts else LinearSpinCouplings(len(state))

    def rotation_fields(self, state, neighbors, atoms):
        h = None
        for t in self._terms:
            if t.magnetic:
                ht = t.rotation_fields(state, neighbors if t.cutoff > 0 else None, atoms)
                h = ht if h is None else h + ht
        return np.zeros((len(atoms), 3)) if h is None else h

    def spin_curvatures(self, state, neighbors, atoms):
        """The sum of the magnetic terms' :meth:`Potential.spin_curvatures` (``None`` if one of
        them has none)."""
        c = np.zeros(len(atoms))
        for t in self._terms:
            if t.magnetic:
                ct = t.spin_curvatures(state, neighbors if t.cutoff > 0 else None, atoms)
                if ct is None:
                    return None
                c = c + ct
        return c

    def __repr__(self):
        return " + ".join(repr(t) for t in self._terms)
