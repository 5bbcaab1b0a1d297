"""spinlat State ⇄ pymatgen ``Structure`` (periodic) or ``Molecule`` (no cell) with vector magnetic moments.

Optional dependency: ``pip install pymatgen-core`` (or the full ``pymatgen``; spinlat extra
``interop``). Conventions (pymatgen's):

- ``site_properties["magmom"]``: one :class:`pymatgen.electronic_structure.core.Magmom` per site,
  the moment vector m_i = moments_i · spins_i in μB with the default spin axis (0, 0, 1), so its
  ``global_moment`` is the Cartesian vector. On reading, any spin axis is accepted (the global
  moment is used); a plain number (collinear magmom, as read from VASP files) means ±z, a 3-vector
  is taken as Cartesian. Sites without magmom are non-magnetic.
- ``site_properties["velocities"]``: Å/fs (as pymatgen's POSCAR/XDATCAR readers), written when any
  atom moves.
- ``site_properties["masses"]``: amu, written only when a mass differs from the standard atomic
  mass (pymatgen's species carry no per-site mass).
- the lattice carries ``pbc``; a State without a cell (all-zero) becomes a ``Molecule``.

Round trips State → pymatgen → State are exact to a few units of the last place: pymatgen keeps
fractional coordinates (positions come back with round-off ~1e-15 Å), and moments are stored as
vectors (directions and magnitudes re-derived, ~1 ulp). A non-magnetic atom (moment 0) has no spin
direction to store; it comes back as +z, spinlat's default.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError


def _require():
    try:
        from pymatgen.core import Lattice, Molecule, Structure
        from pymatgen.electronic_structure.core import Magmom
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("pymatgen conversion needs pymatgen: pip install pymatgen-core (or spinlat[interop])") from None
    return Lattice, Molecule, Structure, Magmom


def to_pymatgen(state):
    """A pymatgen ``Structure`` (``Molecule`` for a state without a cell) with vector magmoms,
    velocities (Å/fs) and non-standard masses as site properties (module docstring)."""
    from ase.data import atomic_masses

    from ..state import State

    Lattice, Molecule, Structure, Magmom = _require()
    if not isinstance(state, State):
        raise InputError(f"to_pymatgen: expected a spinlat State, got {type(state).__name__}")
    props = {"magmom": [Magmom(m) for m in state.magnetic_moments]}
    if np.any(state.velocities != 0):
        props["velocities"] = [v.copy() for v in state.velocities]
    if not np.array_equal(state.masses, atomic_masses[state.numbers]):
        props["masses"] = [float(m) for m in state.masses]
    species = [int(z) for z in state.numbers]
    if not np.any(state.cell):
        return Molecule(species, state.positions, site_properties=props)
    lattice = Lattice(state.cell, pbc=tuple(bool(p) for p in state.pbc))
    return Structure(lattice, species, state.positions, coords_are_cartesian=True, site_properties=props)


def _moment_vector(m, where):
    _, _, _, Magmom = _require()
    if isinstance(m, Magmom):
        return np.asarray(m.global_moment, dtype=float)
    a = np.asarray(m, dtype=float)
    if a.shape == ():
        return np.array([0.0, 0.0, float(a)])
    if a.shape == (3,):
        return a
    raise InputError(f"{where}: magmom must be a number, a 3-vector or a Magmom, got {m!r}")


def from_pymatgen(structure, validate=True):
    """A :class:`~spinlat.State` from a pymatgen ``Structure`` or ``Molecule``: Cartesian
    positions, atomic numbers, lattice and its ``pbc`` (a Molecule: no cell, not periodic), moments
    and spins from ``site_properties["magmom"]``, velocities (Å/fs) and masses if present.

    Raises :class:`~spinlat.errors.InputError` for disordered sites (several species on a site) or
    malformed magmoms."""
    from ..state import State

    Lattice, Molecule, Structure, Magmom = _require()
    if not isinstance(structure, (Structure, Molecule)):
        raise InputError(f"from_pymatgen: expected a pymatgen Structure or Molecule, got {type(structure).__name__}")
    if not structure.is_ordered:
        raise InputError("from_pymatgen: the structure is disordered (partial occupancies); order it first, e.g. with "
                         "pymatgen's OrderDisorderedStructureTransformation")
    numbers = [site.specie.Z for site in structure]
    props = structure.site_properties
    n = len(structure)
    magmom = props.get("magmom")
    m = np.zeros((n, 3))
    if magmom is not None:
        for i, v in enumerate(magmom):
            if v is not None:
                m[i] = _moment_vector(v, f"site {i}")
    moments = np.linalg.norm(m, axis=1)
    spins = np.where(moments[:, None] > 0, m, np.array([0.0, 0.0, 1.0]))
    vel = props.get("velocities")
    velocities = None if vel is None else np.array([np.zeros(3) if v is None else v for v in vel], dtype=float)
    masses = props.get("masses")
    if isinstance(structure, Molecule):
        return State(structure.cart_coords, numbers, spins=spins, moments=moments, velocities=velocities,
                     masses=masses, validate=validate)
    return State(structure.cart_coords, numbers, cell=structure.lattice.matrix, pbc=structure.lattice.pbc,
                 spins=spins, moments=moments, velocities=velocities, masses=masses, validate=validate)


__all__ = ["to_pymatgen", "from_pymatgen"]
