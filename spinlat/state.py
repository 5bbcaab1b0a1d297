"""The simulation state: atoms, cell, spins, moments, velocities.

A :class:`State` is a plain container of NumPy arrays, validated once on construction.
Integrators take a State and return a new one; they never mutate their input.
"""

from __future__ import annotations

import re

import numpy as np

from . import units, validation
from .errors import (
    CellError,
    InputError,
    OverlappingAtomsError,
    ShapeError,
    UnknownElementError,
    ZeroSpinError,
)
from .keywords import check_names, refuse_other_names

#: the fields of a State (its ``__slots__``)


def _fill(st, *values):
    """Store the fields of a new State (``values`` in the order of ``State.__slots__``) as given:
    no checks, the first assignment of :meth:`State.__setattr__` without its lookup, for the fast
    constructors."""
    for name, value in zip(State.__slots__, values, strict=True):
        object.__setattr__(st, name, value)


def _check_periodic_cell(cell, pbc):
    """Raise :class:`CellError` unless the cell vectors along the periodic directions are non-zero
    and linearly independent. Vectors along non-periodic directions are free (zero, as ASE writes
    for 2D systems, a vacuum box, or anything else): nothing in spinlat uses them."""
    per = cell[pbc]
    if not len(per):
        return
    lengths = np.linalg.norm(per, axis=1)
    # |det| for three periodic vectors, the area for two, the length for one
    measure = float(np.sqrt(abs(np.linalg.det(per @ per.T))))
    if np.any(lengths == 0) or measure < 1e-8 * max(float(lengths.max()), 1.0) ** len(per):
        what = {3: "volume", 2: "area", 1: "length"}[len(per)]
        unit = {3: "Å^3", 2: "Å^2", 1: "Å"}[len(per)]
        raise CellError(f"cell is singular along its periodic directions ({what} {measure:.3g} {unit} spanned by the "
                        f"cell vectors {np.flatnonzero(pbc).tolist()}) but pbc={pbc.tolist()}")


#: prefixes and suffixes other codes put on the names of labels and moments (mace's ``REF_energy``,
#: the reference magnetic MACE's ``REF_magmom``, ``dft_magmoms``, ``magmom_true``, ...)
ALIAS_AFFIX = re.compile(r"^(?:ref|dft|vasp|qe|target|true|reference|label)_|_(?:ref|dft|vasp|qe|true|reference)$")
#: names (lower case, after stripping :data:`ALIAS_AFFIX`) of per-atom magnetic moments in μB as other
#: codes and MLIP projects store them
MOMENT_NAMES = ("magmom", "magmoms", "magnetic_moment", "magnetic_moments", "mag_moments", "moments")


def moment_alias_keys(atoms) -> list:
    """The moments of ``atoms`` stored under other codes' names that :func:`ase_magnetic_moments`
    reads, as (name, values): per-atom arrays named like moments (:data:`MOMENT_NAMES` with a prefix or
    suffix of :data:`ALIAS_AFFIX`: the reference magnetic MACE's ``REF_magmom`` (mace-torch PR 1244's
    default ``magmom_key``), ``REF_magmoms``, ``dft_magmoms``, ``magnetic_moments``, ...; not spinlat's
    and ASE's own ``magmoms`` and ``initial_magmoms``), then a calculator's ``magmom`` result with one
    row per atom ((N, 3), or (N,) for N other than 1 and 3: ASE's extxyz reader makes a
    ``magmom:R:3`` column such a result; a scalar or a (3,) vector is a total moment)."""
    n = len(atoms)
    found = []
    for key, value in atoms.arrays.items():
        if not isinstance(key, str) or key in ("magmoms", "initial_magmoms"):
            continue
        name = key.lower()
        if name in MOMENT_NAMES or ALIAS_AFFIX.sub("", name) in MOMENT_NAMES:
            found.append((f"the {key!r} array", value))
    results = getattr(getattr(atoms, "calc", None), "results", None) or {}
    total = results.get("magmom")
    if total is not None:
        shape = np.shape(total)
        if shape == (n, 3) or (shape == (n,) and n not in (1, 3)):
            found.append(("the calculator's 'magmom' (one row per atom)", total))
    return found


def ase_magnetic_moments(atoms, prefer="computed", stacklevel=3) -> np.ndarray:
    """The magnetic moments an ``ase.Atoms`` carries, (N,) or (N, 3) μB (zeros if none): with
    ``prefer="computed"`` (default) the first non-zero of the calculator results ``magmoms``
    (moments a DFT code computed: ASE's OUTCAR and .traj readers put them there, and
    ``ase.io.read`` a ``magmoms`` column of an extxyz file), ``arrays["magmoms"]``, moments under
    other codes' names (:func:`moment_alias_keys`: the reference magnetic MACE's ``REF_magmom``,
    ``dft_magmoms``, a per-atom ``magmom`` column, ...) and the initial magmoms (for a DFT run, the
    starting guess: INCAR's MAGMOM; pymatgen's ``magmom`` site property, through
    ``AseAtomsAdaptor``); with ``prefer="initial"`` the initial magmoms first, then
    ``arrays["magmoms"]``, the other names, then the results. (A calculator's total ``magmom``
    cannot be split into atoms and is not used; ASE's vasprun.xml reader gives no moments.)

    This one rule serves :meth:`State.from_ase` and the model inputs of training data
    (:func:`spinlat.potentials.mmace.labels.input_moments`). When two of the non-initial sets
    are non-zero and differ (beyond 1e-8 μB; a collinear (N,) and a vector (N, 3) compare as the
    vector along z), a UserWarning names both and the one used (``stacklevel`` as for
    :func:`warnings.warn`, counted from the caller). Raises ShapeError for moments that are not
    (N,) or (N, 3)."""
    prefer = validation.choice(prefer, "prefer_moments", ("computed", "initial"))
    n = len(atoms)
    calc = getattr(atoms, "calc", None)
    results = getattr(calc, "results", None) or {}
    stored = {"initial magmoms": atoms.arrays.get("initial_magmoms"),
              "the 'magmoms' array": atoms.arrays.get("magmoms"),
              **dict(moment_alias_keys(atoms)), "the calculator's magmoms": results.get("magmoms")}
    names = list(stored)
    initial, computed = names[:1], names[-1:] + names[1:-1]
    ranked = initial + names[1:] if prefer == "initial" else computed + initial
    found = {}
    for name, mag in stored.items():
        if mag is None:
            continue
        mag = validation.real_array(mag, f"magnetic moments of the ase.Atoms ({name})")
        if mag.shape not in ((n,), (n, 3)):
            raise ShapeError(f"magnetic moments of the ase.Atoms ({name}) must have shape ({n},) or ({n}, 3), got "
                             f"{mag.shape}")
        if np.any(mag != 0):
            found[name] = mag
    chosen = next((k for k in ranked if k in found), None)
    others = [k for k in ranked if k in found and k not in initial]
    differ = [k for k in others[1:] if not np.allclose(_as_vectors(found[others[0]]), _as_vectors(found[k]),
                                                         rtol=0, atol=1e-8)]
    if differ:
        import warnings

        diff = np.max(np.abs(_as_vectors(found[others[0]]) - _as_vectors(found[differ[0]])))
        pair = sorted((others[0], differ[0]), key=names.index)
        warnings.warn(f"the ase.Atoms carry two different sets of magnetic moments, {pair[0]} and {pair[1]} "
                      f"(largest difference {diff:.3g} μB); {chosen} are read (spinlat.state.ase_magnetic_moments, "
                      f"prefer_moments={prefer!r}); remove the stale one", UserWarning, stacklevel=stacklevel)
    return found[chosen] if chosen is not None else np.zeros(n)


#: what ASE's Quantum ESPRESSO input reader (format espresso-in) puts into the initial magmoms
STARTING_MAGNETIZATION = ("pw.x's starting_magnetization (a fraction of the valence charge, -1 to 1, set per "
                          "species: ASE gives Fe1 and Fe2 the same one), not moments in μB")


def looks_like_starting_magnetization(atoms) -> bool:
    """Whether the initial magmoms of ``atoms`` have the fingerprint of ASE's reading of a pw.x
    input (:data:`STARTING_MAGNETIZATION`): they are its only moments (no ``magmoms`` array, no
    calculator), collinear (N,), non-zero somewhere, all within −1…1 and not all ±1 (unit moments
    of a spin model), equal on every atom of one element (ASE maps each species label, Fe1 or Fe2,
    to its element and gives all its atoms the value of the last one), and not the moments
    ``ase.build.bulk`` sets (its reference ``magmom_per_atom``: Ni 0.6 μB). Moments in μB of this form (a Ni ferromagnet at 0.6 μB) match too:
    :meth:`State.from_ase` lets the caller say which (``initial_fractions``)."""
    mag = atoms.arrays.get("initial_magmoms")
    if (mag is None or np.ndim(mag) != 1 or "magmoms" in atoms.arrays
            or getattr(atoms, "calc", None) is not None or not np.any(mag != 0)
            or np.any(np.abs(mag) > 1) or np.all(np.abs(mag[mag != 0]) == 1)):
        return False
    numbers = atoms.get_atomic_numbers()
    if not all(np.unique(mag[numbers == z]).size == 1 for z in np.unique(numbers)):
        return False
    from ase.data import reference_states

    ase_default = [(reference_states[z] or {}).get("magmom_per_atom") for z in numbers]
    return not all(m == 0 or m == d for m, d in zip(mag, ase_default))  # ase.build.bulk("Ni"): 0.6 μB


#: what ASE's Elk reader (format elk, GEOMETRY.OUT) puts into the initial magmoms
ELK_BFCMT = ("Elk's bfcmt (the z component of the muffin-tin magnetic field that breaks the symmetry, in Hartree "
             "atomic units), not moments in μB")


def drop_initial_magmoms(atoms, where, what=STARTING_MAGNETIZATION, stacklevel=2, hint=""):
    """Remove the initial magmoms of ``atoms`` (in place) with a UserWarning that they are
    ``what`` (:data:`STARTING_MAGNETIZATION`, :data:`ELK_BFCMT`), not moments; ``where`` names
    their origin (a file, "the ase.Atoms"), ``hint`` is appended to the remedy; ``stacklevel``
    as for :func:`warnings.warn` (2: the caller of this function)."""
    import warnings

    atoms.set_initial_magnetic_moments(None)
    warnings.warn(f"{where}: its initial magnetic moments are {what}; they are not read: give the moments in μB (a "
                  f"run config's structure.moments, State.copy(moments=..., spins=...)){hint}", UserWarning,
                  stacklevel=stacklevel)


def _as_vectors(mag):
    """Moments (N,) (collinear, along z) or (N, 3) as (N, 3)."""
    return mag if mag.ndim == 2 else np.stack([np.zeros_like(mag), np.zeros_like(mag), mag], axis=1)


def ase_spin_directions(atoms):
    """The spin directions an ``ase.Atoms`` carries in a per-atom array ``spins`` of shape (N, 3)
    (an extxyz ``spins:R:3`` column), as float64; None when it has none. ASE itself defines no
    such array; :meth:`State.from_ase` combines it with the magnetic moments."""
    direction = atoms.arrays.get("spins")
    if direction is None:
        return None
    direction = validation.real_array(direction, "the 'spins' array of the ase.Atoms")
    if direction.shape != (len(atoms), 3):
        raise ShapeError(f"the 'spins' array of the ase.Atoms must hold one direction per atom, shape "
                         f"({len(atoms)}, 3), got {direction.shape}")
    return direction


def combine_spin_directions(mag, direction):
    """(spins (N, 3), moments (N,) μB) from the moments ``mag`` ((N,) signed or (N, 3), μB) and the directions of
    a ``spins`` array: |m| with the column's direction (reversed for a negative collinear moment);
    a non-collinear moment must point along its row (InputError naming the first atom that does not)."""
    norm = np.linalg.norm(direction, axis=1)
    if mag.ndim == 1:
        sign = np.where(mag < 0, -1.0, 1.0)
        return direction * sign[:, None], np.abs(mag)
    moments = np.linalg.norm(mag, axis=1)
    both = (moments > 0) & (norm > 0)
    cos = np.ones(len(mag))
    cos[both] = np.sum(mag[both] * direction[both], axis=1) / (moments[both] * norm[both])
    bad = np.flatnonzero(cos < 1.0 - 1e-9)
    if len(bad):
        k = int(bad[0])
        raise InputError(f"the ase.Atoms' 'spins' array and its magnetic moments disagree: atom {k} has spin "
                         f"direction {direction[k].tolist()} but moment {mag[k].tolist()} μB ({len(bad)} atoms "
                         "differ); remove one of them, or give the moments as magnitudes (N,)")
    return np.where(moments[:, None] > 0, mag, direction), moments


def unread_moment_arrays(atoms) -> list:
    """Where ``atoms`` hold non-zero per-atom data named like magnetic moments (:data:`MOMENT_NAMES`,
    with a prefix or suffix of :data:`ALIAS_AFFIX`) that :func:`ase_magnetic_moments` does not read,
    e.g. ``["info['magnetic_moments']"]`` or a calculator result ``'dft_magmoms'``: per-atom arrays
    and a per-atom calculator ``magmom`` are read (:func:`moment_alias_keys`). An entry holds one
    row per atom ((N,) or (N, 3)); a (3,) value of a 3-atom structure is a total moment and not
    listed."""
    n = len(atoms)
    calc = getattr(atoms, "calc", None)
    results = getattr(calc, "results", None) or {}
    found = []
    for where, table in (("info", atoms.info), ("calculator results", results)):
        for key, value in table.items():
            if not isinstance(key, str) or key in ("magmom", "magmoms") and where != "info":
                continue
            name = key.lower()
            if name not in MOMENT_NAMES and ALIAS_AFFIX.sub("", name) not in MOMENT_NAMES:
                continue
            try:
                a = np.asarray(value, dtype=np.float64)
            except (TypeError, ValueError):
                continue
            per_atom = (a.ndim == 2 and a.shape == (n, 3)) or (a.ndim == 1 and len(a) == n and n != 3)
            if per_atom and np.any(a != 0):
                found.append(f"{where}[{key!r}]")
    return found


def _spin_polarised_vasp(calc) -> str:
    """The INCAR tags (as ASE's vasprun.xml reader keeps them in ``calc.parameters``) that say a VASP
    run was spin-polarised (ISPIN = 2, LNONCOLLINEAR, LSORBIT), in words; "" when none does."""
    params = getattr(calc, "parameters", None) or {}
    if not hasattr(params, "get"):
        return ""
    said = []
    if params.get("ispin") in (2, "2"):
        said.append("ISPIN = 2")
    said += [f"{k.upper()} = True" for k in ("lnoncollinear", "lsorbit") if params.get(k) is True]
    return ", ".join(said)


def warn_unread_moments(atoms, stacklevel=3):
    """For atoms whose moments spinlat reads as all zero (:func:`ase_magnetic_moments`): a
    UserWarning when a calculator reports a non-zero total moment (which cannot be split into
    atoms) or, without one, when its parameters say a spin-polarised VASP run (ASE's vasprun.xml
    reader keeps the INCAR but no moments), and one naming per-atom data that look like moments (:func:`unread_moment_arrays`).
    ``stacklevel`` as for :func:`warnings.warn`, counted from the caller."""
    import warnings

    calc = getattr(atoms, "calc", None)
    total = (getattr(calc, "results", None) or {}).get("magmom")
    if total is not None and np.size(total) in (1, 3) and np.any(np.asarray(total, dtype=float) != 0):
        warnings.warn(f"the ase.Atoms' calculator reports a total magnetic moment {np.round(total, 4).tolist()} μB but "
                      "no moment per atom (VASP prints them with LORBIT = 11; ASE reads them as 'magmoms'): the "
                      "atoms are read as non-magnetic; set atoms.set_initial_magnetic_moments(...) or give the "
                      "moments (a run config's structure.moments)", UserWarning, stacklevel=stacklevel)
    elif _spin_polarised_vasp(calc):
        warnings.warn("the ase.Atoms come from a spin-polarised VASP run (calculator parameters "
                      f"{_spin_polarised_vasp(calc)}) but carry no moment per atom: ASE's vasprun.xml reader reads "
                      "none (INCAR's MAGMOM, the starting guess, stays in atoms.calc.parameters and is not read), so "
                      "the atoms are read as non-magnetic. Read the run's OUTCAR instead (ase.io.read(..., "
                      "format='vasp-out'), per-atom moments printed with LORBIT = 11) or set the moments",
                      UserWarning, stacklevel=stacklevel)
    spin_columns = [k for k in atoms.arrays
                    if isinstance(k, str) and re.fullmatch(r"sp[xyz]?|fm[xyz]|[cfv]_\w+\[\d+\]", k)]
    if "type" in atoms.arrays and spin_columns:
        warnings.warn(f"the ase.Atoms look like ASE's reading of a LAMMPS dump (a 'type' array and the columns "
                      f"{', '.join(spin_columns[:4])}{' ...' if len(spin_columns) > 4 else ''}): ASE keeps neither the "
                      "spins and moments nor, without an element column, the elements (type 1 becomes H, 2 He, "
                      "...); read the dump with spinlat.io.read_lammps_dump (spinlat convert DUMP TRAJ.h5, a run "
                      "config's structure.file)", UserWarning, stacklevel=stacklevel)
    names = unread_moment_arrays(atoms)
    if names:
        warnings.warn(f"the ase.Atoms carry no magnetic moments where spinlat reads them (initial_magmoms, a "
                      f"'magmoms' array or calculator result) but {' and '.join(names)} looks like per-atom moments: "
                      "the atoms are read as non-magnetic. If it holds moments in μB, store it as a per-atom array "
                      "(an extxyz column 'magmoms') or call atoms.set_initial_magnetic_moments(...) with it", UserWarning,
                      stacklevel=stacklevel)


#: per-atom arrays other codes write velocities into (GPUMD's extxyz ``vel``, ``velo``, ...)
_VELOCITY_NAMES = ("vel", "velo", "velocity", "velocities")


def _warn_unread_velocities(atoms):
    """UserWarning when ``atoms`` has no momenta but a per-atom array named like velocities, in
    units no file states: :meth:`State.from_ase` takes velocities from the momenta only."""
    named = [k for k in atoms.arrays if k.lower() in _VELOCITY_NAMES and np.ndim(atoms.arrays[k]) == 2]
    if named:
        import warnings

        warnings.warn(f"the ase.Atoms carry no momenta but a per-atom array {named[0]!r}: spinlat takes velocities "
                      "only from the momenta (ASE's units), so the atoms start at rest; if it holds velocities in "
                      f"Å/fs, set them with atoms.set_velocities(atoms.arrays[{named[0]!r}] / ase.units.fs) (or give "
                      "structure.temperature in a run config)", UserWarning, stacklevel=4)


#: per-atom arrays of an ase.Atoms that a State cannot hold, with what they usually mean
_UNHELD_ARRAYS = {"tags": "ASE's surface and cluster builders number layers or groups with them",
                  "initial_charges": "charges a State does not model"}


def _warn_dropped_arrays(atoms):
    """One UserWarning naming the per-atom data of ``atoms`` that :meth:`State.from_ase` drops:
    non-zero ``tags`` and ``initial_charges`` (all-zero ones are ASE's defaults, carry nothing,
    and are not mentioned)."""
    dropped = []
    for name, meaning in _UNHELD_ARRAYS.items():
        values = atoms.arrays.get(name)
        if values is not None and np.any(values != 0):
            k = int(np.count_nonzero(np.asarray(values).reshape(len(atoms), -1).any(axis=1)))
            dropped.append(f"{name} (non-zero on {k} of {len(atoms)} atoms; {meaning})")
    if dropped:
        import warnings

        warnings.warn(f"the ase.Atoms' {' and '.join(dropped)} are not kept: a spinlat State holds no such data. "
                      "The atom order is kept, so keep them beside the State (e.g. tags = atoms.get_tags()); pass "
                      "warn_dropped=False to State.from_ase to drop them knowingly", UserWarning, stacklevel=4)


def describe_constraints(atoms) -> str:
    """The ASE constraints of ``atoms`` in words, e.g. ``FixAtoms on atoms [0, 1, 2]``."""
    out = []
    for c in atoms.constraints:
        idx = getattr(c, "index", None)
        where = ""
        if idx is not None:
            idx = np.asarray(idx).ravel()
            if idx.dtype == bool:
                idx = np.flatnonzero(idx)
            shown = idx[:8].tolist()
            where = f" on atoms {shown}{' ...' if len(idx) > 8 else ''} ({len(idx)} atoms)"
        out.append(type(c).__name__ + where)
    return "; ".join(out)


@refuse_other_names()
class State:
    """Atoms with classical magnetic moments.

    Parameters
    ----------
    positions : (N, 3) array, Å.
    numbers : (N,) atomic numbers or chemical symbols.
    cell : (3, 3) array of lattice vectors as rows, Å; ``None`` for no cell.
    pbc : bool or three bools; the cell vectors along periodic directions must be non-zero and
        linearly independent; along non-periodic directions any vector (also zero) is accepted.
    spins : (N, 3) directions; normalised to unit length. Default +z. Zero-length spins are
        allowed only on non-magnetic atoms (moment 0), where they become +z.
    moments : (N,) moment magnitudes, μB, non-negative. Default 0 (non-magnetic).
    velocities : (N, 3) Å/fs. Default 0.
    masses : (N,) amu. Default: standard atomic masses of the elements.
    validate : check for atoms closer than ``units.MIN_DISTANCE`` (O(N)); integrators that
        build states internally pass ``False``.

    The magnetic moment of atom i is ``moments[i] * spins[i]``.
    """

    __slots__ = ("positions", "numbers", "cell", "pbc", "spins", "moments", "velocities", "masses")

    def __init__(self, positions, numbers, cell=None, pbc=False, spins=None, moments=None,
                 velocities=None, masses=None, validate=True):
        validate = validation.boolean(validate, "validate")
        numbers = validation.atomic_numbers(numbers)
        n = len(numbers)
        self.numbers = numbers
        self.positions = validation.real_array(positions, "positions", (n, 3))
        self.pbc = validation.pbc(pbc)
        if cell is None:
            if self.pbc.any():
                raise CellError("periodic boundary conditions need a cell")
            self.cell = np.zeros((3, 3))
        else:
            c = validation.real_array(cell, "cell", finite=False)
            if c.shape == (3,):
                c = np.diag(c)
            self.cell = validation.real_array(c, "cell", (3, 3))
        _check_periodic_cell(self.cell, self.pbc)
        self.moments = np.zeros(n) if moments is None else validation.real_array(moments, "moments", (n,))
        if np.any(self.moments < 0):
            i = int(np.argmax(self.moments < 0))
            raise InputError(f"moments must be non-negative (μB); atom {i} has {self.moments[i]}")
        if spins is None:
            self.spins = np.zeros((n, 3))
            self.spins[:, 2] = 1.0
        else:
            s = validation.real_array(spins, "spins", (n, 3))
            norm = np.linalg.norm(s, axis=1)
            zero = norm < 1e-12
            if np.any(zero & (self.moments > 0)):
                i = int(np.argmax(zero & (self.moments > 0)))
                raise ZeroSpinError(f"atom {i} is magnetic (moment {self.moments[i]} μB) but its spin has zero length")
            s[zero] = (0.0, 0.0, 1.0)
            norm[zero] = 1.0
            # vectors already of unit length to machine precision are kept bit for bit, so that
            # round trips (to_ase/from_ase, files) are lossless
            norm[np.abs(norm - 1.0) <= 4.0 * np.finfo(np.float64).eps] = 1.0
            self.spins = s / norm[:, None]
        self.velocities = np.zeros((n, 3)) if velocities is None else validation.real_array(velocities, "velocities", (n, 3))
        if masses is None:
            from ase.data import atomic_masses

            self.masses = atomic_masses[numbers].astype(np.float64)
        else:
            self.masses = validation.real_array(masses, "masses", (n,))
            if np.any(self.masses <= 0):
                raise InputError("masses must be positive (amu)")
        if validate and (n > 1 or (n == 1 and self.pbc.any())):  # one atom can overlap its own images
            self.check_distances()

    def __setattr__(self, name, value):
        """Assigning a field of a constructed State (``st.spins = ...``) checks and normalises the
        value as the constructor does (shapes, NaN/inf, unit spins, non-negative moments, a valid
        periodic cell, no overlapping atoms after new positions, cell or pbc): raising the same
        errors, and leaving the field as it was. Before, ``st.spins = rng.normal(size=(n, 3))``
        kept vectors of any length (energies and magnetisation scaled by it) and ``st.moments =
        [-2]`` made an atom silently non-magnetic. The first assignment of each field (the
        constructor, :meth:`from_trusted_arrays`, :meth:`with_arrays`) stores it as given."""
        try:
            object.__getattribute__(self, name)
        except AttributeError:  # not set yet: a constructor filling the slot
            object.__setattr__(self, name, value)
            return
        kw = {k: object.__getattribute__(self, k) for k in self.__slots__}
        kw[name] = value
        checked = State(validate=name in ("positions", "cell", "pbc"), **kw)
        object.__setattr__(self, name, object.__getattribute__(checked, name))

    # ------------------------------------------------------------------ construction helpers
    @classmethod
    def from_trusted_arrays(cls, positions, numbers, cell, pbc, spins, moments, velocities, masses):
        """A State holding the given arrays themselves, already known to be valid (no copies, no
        checks): positions (N, 3) Å, numbers (N,) int64, cell (3, 3) Å, pbc (3,) bool, spins (N, 3)
        unit vectors, moments (N,) μB, velocities (N, 3) Å/fs, masses (N,) amu, all float64 where
        not said. For readers and integrators that build states from arrays they produced or
        checked themselves (e.g. :class:`spinlat.io.Trajectory` frames); anything from a user goes
        through ``State(...)``."""
        st = cls.__new__(cls)
        _fill(st, positions, numbers, cell, pbc, spins, moments, velocities, masses)
        return st

    def with_arrays(self, **fields) -> "State":
        """A State sharing this one's arrays, with the named fields (``positions``, ``spins``,
        ``moments``, ``velocities``, ``cell``, ...) replaced by the arrays given, as they are.

        The fast update for integrators, minimisers and other code that builds many states from
        arrays it knows to be valid: no copies and no validation (shapes (N, 3) / (N,) float64,
        unit spins, non-negative moments, no overlapping atoms are the caller's to guarantee).
        The new State and this one share the arrays not replaced (and those given stay the
        caller's): neither may be changed in place while the other is in use, unless that is
        the point (an integrator's work state). Use :meth:`copy` or the constructor for
        anything else. Raises :class:`~spinlat.errors.KeywordError` for an unknown field name."""
        check_names("State.with_arrays", fields, State.__slots__)  # naming the close matches
        st = State.__new__(State)
        _fill(st, self.positions, self.numbers, self.cell, self.pbc, self.spins, self.moments, self.velocities,
              self.masses)
        for name, value in fields.items():
            object.__setattr__(st, name, value)  # as given: unchecked (see __setattr__)
        return st

    def copy(self, validate=False, **changes) -> "State":
        """Return a copy, replacing the named fields (``positions``, ``spins``, ...).

        Replaced fields are validated like in the constructor."""
        check_names("State.copy", changes, ("validate", *State.__slots__))  # KeywordError naming close matches
        if not changes:
            return State.from_trusted_arrays(*(getattr(self, k).copy() for k in self.__slots__))
        kw = {k: getattr(self, k) for k in self.__slots__}
        kw.update(changes)
        return State(validate=validate or "positions" in changes or "cell" in changes, **kw)

    def check_distances(self, min_distance: float = units.MIN_DISTANCE) -> None:
        """Raise :class:`OverlappingAtomsError` if two atoms are closer than ``min_distance`` Å."""
        from .neighbors import neighbor_pairs

        n = len(self)
        if n and self.pbc.all() and self.volume < n * min_distance**3 / np.sqrt(2.0):
            # n balls of diameter min_distance do not fit into the cell (their packing fraction
            # would exceed π/√18, Kepler's bound): some atom is closer than min_distance to another
            # atom or to an image; this also bounds the search below (images per atom) in tiny cells
            raise OverlappingAtomsError(
                f"the periodic cell ({self.volume:.4g} Å^3 for {n} atom(s)) is too small: atoms or their periodic "
                f"images must be closer than {min_distance} Å")
        # a cell search at a tiny cutoff makes many nearly empty bins; for small and medium
        # systems a 1 Å search (then filtered) is cheaper
        search = max(min_distance, 1.0) if len(self) < 4096 else min_distance
        i, j, _, d = neighbor_pairs(self, search)
        if search > min_distance:
            close = d < min_distance
            i, j, d = i[close], j[close], d[close]
        if len(i):
            k = int(np.argmin(d))
            if i[k] == j[k]:
                raise OverlappingAtomsError(
                    f"atom {int(i[k])} is {d[k]:.4f} Å from its own periodic image (minimum {min_distance} Å): "
                    "the cell is too small")
            raise OverlappingAtomsError(
                f"atoms {int(i[k])} and {int(j[k])} are {d[k]:.4f} Å apart (minimum {min_distance} Å)")

    # ------------------------------------------------------------------ properties
    def __len__(self) -> int:
        return len(self.numbers)

    @property
    def n_atoms(self) -> int:
        return len(self.numbers)

    @property
    def volume(self) -> float:
        """Cell volume |det(cell)|, Å³. Raises :class:`CellError` when the cell has no volume (no
        cell, or a zero or dependent vector along a non-periodic direction, as for 2D systems
        built by ASE) rather than returning 0."""
        vol = float(abs(np.linalg.det(self.cell)))
        lengths = np.linalg.norm(self.cell, axis=1)
        if vol <= 1e-8 * max(float(lengths.max()), 1.0) ** 3:
            raise CellError(f"the cell has no volume (cell vectors of lengths {np.round(lengths, 6).tolist()} Å, "
                            f"pbc={self.pbc.tolist()}); give a cell with three independent vectors")
        return vol

    @property
    def magnetic(self) -> np.ndarray:
        """Boolean mask of magnetic atoms (moment > 0)."""
        return self.moments > 0

    @property
    def magnetic_moments(self) -> np.ndarray:
        """(N, 3) moment vectors m_i = moments_i · spins_i, μB."""
        return self.spins * self.moments[:, None]

    @property
    def symbols(self) -> list[str]:
        from ase.data import chemical_symbols

        return [chemical_symbols[z] for z in self.numbers]

    def kinetic_energy(self) -> float:
        """Lattice kinetic energy, eV."""
        return 0.5 * units.AMU_A2_PER_FS2_IN_EV * float(np.sum(self.masses[:, None] * self.velocities**2))

    def temperature(self) -> float:
        """Lattice temperature from equipartition with 3N degrees of freedom, K."""
        return 2.0 * self.kinetic_energy() / (3 * max(len(self), 1) * units.K_B)

    def magnetization(self) -> np.ndarray:
        """Total magnetic moment vector M = Σ_i m_i, μB, (3,) (:func:`spinlat.observables.total_moment`;
        the reduced and per-atom forms are there too)."""
        from .observables import total_moment

        return total_moment(self.spins, self.moments)

    # ------------------------------------------------------------------ supercells and ASE
    def repeat(self, reps) -> "State":
        """Supercell repeated ``reps`` = (n1, n2, n3) times along the cell vectors (or an int)."""
        reps = np.broadcast_to(np.asarray(reps, dtype=int), (3,))
        if np.any(reps < 1):
            raise InputError(f"repeat counts must be >= 1, got {reps.tolist()}")
        flat = (reps > 1) & (np.linalg.norm(self.cell, axis=1) == 0)
        if np.any(flat):
            raise CellError(f"cannot repeat {reps.tolist()} times: cell vector {int(np.argmax(flat))} is zero "
                            "(copies would sit on top of each other)")
        n = len(self)
        grid = np.stack(np.meshgrid(*[np.arange(r) for r in reps], indexing="ij"), -1).reshape(-1, 3)
        shifts = grid @ self.cell
        ncell = len(grid)

        def tile(a):
            return np.tile(a, (ncell,) + (1,) * (a.ndim - 1))

        return State.from_trusted_arrays(
            (self.positions[None, :, :] + shifts[:, None, :]).reshape(-1, 3),
            tile(self.numbers), self.cell * reps[:, None], self.pbc.copy(), tile(self.spins),
            tile(self.moments), tile(self.velocities), tile(self.masses))

    @classmethod
    @refuse_other_names()
    def from_ase(cls, atoms, validate=True, constraints="error", prefer_moments="computed",
                 warn_dropped=True, initial_fractions="warn") -> "State":
        """State from ``ase.Atoms``.

        Magnetic moments may be collinear (N,) — spins ±z, moments |m| — or non-collinear
        (N, 3), μB. With ``prefer_moments="computed"`` (default) they are taken from the first
        non-zero of: the ``magmoms`` result of an attached calculator (where DFT readers put
        the computed moments and ``ase.io.read`` a ``magmoms`` column of an extxyz file), a
        ``magmoms`` array, per-atom moments under other codes' names (the reference magnetic
        MACE's ``REF_magmom``, an extxyz column ``magmom`` or ``magnetic_moments``, ...:
        :func:`moment_alias_keys`), and the initial magnetic moments (``arrays["initial_magmoms"]``:
        for a DFT run only the starting guess, e.g. INCAR's MAGMOM); ``prefer_moments="initial"``
        takes the initial moments first (:func:`ase_magnetic_moments`). A per-atom array
        ``spins`` (N, 3) (an extxyz ``spins`` column, :func:`ase_spin_directions`) gives the spin
        directions: collinear moments (N,) become magnitudes |m| along it (a negative moment
        reverses its row), non-collinear moments must point along it (InputError naming the
        first atom that does not), and atoms without moments keep its directions. Velocities
        are taken from the atoms' momenta (Å/fs); without momenta, a per-atom array named like
        velocities (``vel``, ``velo``, ``velocities``: units unknown) is not read and a
        UserWarning says so.

        ``constraints``: what to do with ASE constraints on the atoms (``FixAtoms``,
        ``FixCartesian``, ``FixBondLength``, the selective dynamics of a POSCAR, ...), which a
        State cannot hold and spinlat's integrators and minimisers do not apply: ``"error"``
        (default) raises :class:`~spinlat.errors.InputError` naming them, so that atoms meant
        to stay fixed never move silently; ``"ignore"`` drops them knowingly (the run config's
        ``structure.constraints: ignore``). :class:`spinlat.ase.SpinLatticeCalculator` ignores
        them, as every ASE calculator does: ASE's dynamics apply them to the forces.

        ``warn_dropped``: a State has no place for ASE's ``tags`` (the layer numbers of
        ``ase.build.fcc111`` and the other surface builders) or ``initial_charges``; when they
        are non-zero a UserWarning names them (default), ``False`` drops them silently. The
        atom order is kept, so they can be kept beside the State. It also names per-atom data
        that look like moments but are not read (:func:`unread_moment_arrays`: in ``info``) and a
        spin-polarised VASP run read without moments (vasprun.xml) when no moments are found.

        ``initial_fractions``: ``ase.io.read`` of a Quantum ESPRESSO pw.x input fills the initial
        magmoms with ``starting_magnetization``, a fraction of the valence charge (−1…1) per
        species, not a moment in μB (and one value per element: an Fe1 +0.5 / Fe2 −0.5
        antiferromagnet reads as −0.5, −0.5). The atoms carry no trace of their file, and moments
        set by hand can look the same (a Ni ferromagnet at 0.6 μB), so initial magmoms of that form
        (:func:`looks_like_starting_magnetization`: the only moments, all within −1…1 and not all
        ±1, one value per element) are read as moments in μB with a UserWarning naming both
        readings by default (``"warn"``); ``"keep"`` reads them without the warning, ``"drop"``
        leaves them out (as ``spinlat convert`` and run configs do for a file they know is a pw.x
        input). Raises InputError for another value.
        """
        from ase import units as ase_units

        constraints = validation.choice(constraints, "constraints", ("error", "ignore"))
        if validation.boolean(warn_dropped, "warn_dropped"):
            _warn_dropped_arrays(atoms)
        if constraints == "error" and atoms.constraints:
            raise InputError(f"the ase.Atoms carries constraints ({describe_constraints(atoms)}) that a spinlat State "
                             "cannot hold and spinlat's dynamics do not apply: remove them (del atoms.constraints) or "
                             "pass constraints='ignore' to drop them knowingly (config: structure.constraints: ignore)")
        fractions = validation.choice(initial_fractions, "initial_fractions", ("warn", "drop", "keep"))
        if fractions != "keep" and looks_like_starting_magnetization(atoms):
            if fractions == "drop":
                atoms = atoms.copy()
                drop_initial_magmoms(atoms, "the ase.Atoms", stacklevel=4)  # the caller (+1: the keyword check's wrapper)
            else:
                import warnings

                warnings.warn("the ase.Atoms: its initial magnetic moments (all within -1...1, one value per element) "
                              f"are read as moments in μB; if the atoms come from a pw.x input they are "
                              f"{STARTING_MAGNETIZATION}: pass initial_fractions='drop' to leave them out, 'keep' to "
                              "read them as μB without this warning", UserWarning, stacklevel=3)
        mag = ase_magnetic_moments(atoms, prefer_moments, stacklevel=4)  # the caller (+1: the keyword check)
        if warn_dropped and not np.any(mag != 0):
            warn_unread_moments(atoms, stacklevel=4)
        n = len(atoms)
        direction = ase_spin_directions(atoms)
        if direction is not None:
            spins, moments = combine_spin_directions(mag, direction)
        elif mag.ndim == 1:
            moments = np.abs(mag)
            spins = np.zeros((n, 3))
            spins[:, 2] = np.where(mag < 0, -1.0, 1.0)
        else:
            moments = np.linalg.norm(mag, axis=1)
            spins = mag
        vel = atoms.get_velocities()  # ASE units: Å / (Å sqrt(amu/eV))
        vel = np.zeros((n, 3)) if vel is None else vel * ase_units.fs
        if "momenta" not in atoms.arrays:
            _warn_unread_velocities(atoms)
        # exact arrays written by to_ase, used while they still agree with what ASE holds
        exact = {k: atoms.arrays.get(f"spinlat_{k}") for k in ("spins", "moments", "velocities")}
        if exact["spins"] is not None and exact["moments"] is not None and mag.ndim == 2 and np.allclose(
                exact["spins"] * exact["moments"][:, None], mag, rtol=1e-12, atol=1e-12):
            spins, moments = exact["spins"], exact["moments"]
        if exact["velocities"] is not None and np.allclose(exact["velocities"], vel, rtol=1e-12, atol=1e-15):
            vel = exact["velocities"]
        return cls(atoms.get_positions(), atoms.get_atomic_numbers(), cell=np.array(atoms.get_cell()),
                   pbc=atoms.get_pbc(), spins=spins, moments=moments, velocities=vel,
                   masses=atoms.get_masses(), validate=validate)

    def to_ase(self):
        """``ase.Atoms`` with non-collinear initial magnetic moments (N, 3) and velocities."""
        from ase import Atoms
        from ase import units as ase_units

        atoms = Atoms(numbers=self.numbers, positions=self.positions, cell=self.cell, pbc=self.pbc,
                      masses=self.masses, magmoms=self.magnetic_moments)
        atoms.set_velocities(self.velocities / ase_units.fs)
        atoms.arrays["spinlat_spins"] = self.spins.copy()
        atoms.arrays["spinlat_moments"] = self.moments.copy()
        atoms.arrays["spinlat_velocities"] = self.velocities.copy()
        return atoms

    def __repr__(self) -> str:
        from collections import Counter

        comp = "".join(f"{s}{c}" for s, c in Counter(self.symbols).items())
        return (f"State({comp}, n_atoms={len(self)}, pbc={self.pbc.tolist()}, "
                f"magnetic={int(self.magnetic.sum())}, |M|={np.linalg.norm(self.magnetization()):.3f} μB)")
