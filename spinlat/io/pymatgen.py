"""spinlat State ⇄ pymatgen ``Structure`` (periodic) or ``Molecule`` (no cell) with vector magnetic moments.

Optional dependency: ``pip install pymatgen-core`` (or the full ``pymatgen``; spinlat extra
``interop``). Conventions (pymatgen's):

- ``site_properties["magmom"]``: written as one plain list ``[mx, my, mz]`` of floats per site,
  the Cartesian moment vector m_i = moments_i · spins_i in μB (what pymatgen's ``Magmom`` with the
  default spin axis (0, 0, 1) holds), so that every serialisation of the structure works:
  ``json.dumps(structure.as_dict())``, ``structure.to(filename="x.json")`` (pymatgen's orjson
  writer cannot encode ``Magmom`` objects), ``to_json``, YAML, and ``Structure.from_dict`` gives
  them back. On reading, a :class:`pymatgen.electronic_structure.core.Magmom` with any spin
  axis (its global moment is used; also as the dict its ``as_dict`` gives), a plain number
  (collinear magmom, as read from VASP files: ±z) and a 3-vector (Cartesian) are accepted.
  Without a magmom property, a ``spin`` of the sites' species (``Species("Fe", 3, spin=2.2)``)
  is the collinear moment, as pymatgen's magnetism analysis reads it. Sites without either are
  non-magnetic.
- ``site_properties["velocities"]``: Å/fs (as pymatgen's POSCAR/XDATCAR readers), written (plain
  lists) when any atom moves.
- ``site_properties["selective_dynamics"]`` (a POSCAR's fixed coordinates): a State cannot hold
  them and spinlat's dynamics do not apply them, so :func:`from_pymatgen` refuses a structure
  that fixes any coordinate unless ``constraints="ignore"`` (as :meth:`spinlat.State.from_ase`).
- ``site_properties["masses"]``: amu, written only when a mass differs from the standard atomic
  mass (pymatgen's species carry no per-site mass).
- the lattice carries ``pbc``; a State without a cell (all-zero) becomes a ``Molecule``.

Round trips State → pymatgen → State are exact to a few units of the last place: pymatgen keeps
fractional coordinates (positions come back with round-off ~1e-15 Å), and moments are stored as
vectors (directions and magnitudes re-derived, ~1 ulp). A non-magnetic atom (moment 0) has no spin
direction to store; it comes back as +z, spinlat's default.
"""

from __future__ import annotations

import re
import warnings

import numpy as np

from ..errors import InputError
from ..keywords import refuse_other_names


def _require():
    try:
        from pymatgen.core import Lattice, Molecule, Structure
        from pymatgen.electronic_structure.core import Magmom
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("pymatgen conversion needs pymatgen: pip install pymatgen-core (or spinlat[interop])") from None
    return Lattice, Molecule, Structure, Magmom


def to_pymatgen(state):
    """A pymatgen ``Structure`` (``Molecule`` for a state without a cell) with vector magmoms
    ([mx, my, mz] μB lists), velocities (Å/fs) and non-standard masses (amu) as site properties
    (module docstring). Raises InputError unless ``state`` is a State."""
    from ase.data import atomic_masses

    from ..state import State

    Lattice, Molecule, Structure, _ = _require()
    if not isinstance(state, State):
        raise InputError(f"to_pymatgen: expected a spinlat State, got {type(state).__name__}")
    # plain lists, not Magmom objects or arrays: every JSON writer encodes them (module docstring)
    props = {"magmom": state.magnetic_moments.tolist()}
    if np.any(state.velocities != 0):
        props["velocities"] = state.velocities.tolist()
    if not np.array_equal(state.masses, atomic_masses[state.numbers]):
        props["masses"] = [float(m) for m in state.masses]
    species = [int(z) for z in state.numbers]
    if not np.any(state.cell):
        return Molecule(species, state.positions, site_properties=props)
    lattice = Lattice(state.cell, pbc=tuple(bool(p) for p in state.pbc))
    return Structure(lattice, species, state.positions, coords_are_cartesian=True, site_properties=props)


def _moment_vector(m, where):
    _, _, _, Magmom = _require()
    if isinstance(m, dict) and m.get("@class") == "Magmom":  # Magmom.as_dict() not decoded
        try:
            m = Magmom.from_dict(m)
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{where}: magmom {m!r} is not a valid Magmom dict ({exc})") from None
    if isinstance(m, Magmom):
        return np.asarray(m.global_moment, dtype=float)
    try:
        a = np.asarray(m, dtype=float)
    except (TypeError, ValueError):
        raise InputError(f"{where}: magmom must be a number, a 3-vector or a Magmom, got {m!r}") from None
    if a.shape == ():
        return np.array([0.0, 0.0, float(a)])
    if a.shape == (3,):
        return a
    raise InputError(f"{where}: magmom must be a number, a 3-vector or a Magmom, got {m!r}")


def _refuse_selective_dynamics(props, n):
    """InputError naming the sites whose ``selective_dynamics`` fix a coordinate (any False)."""
    fixed = [i for i, flags in enumerate(props.get("selective_dynamics") or [])
             if flags is not None and not all(bool(f) for f in np.ravel(flags))]
    if fixed:
        shown = fixed[:8]
        raise InputError(f"from_pymatgen: site_properties['selective_dynamics'] fix coordinates of sites {shown}"
                         f"{' ...' if len(fixed) > 8 else ''} ({len(fixed)} of {n} sites), which a spinlat State "
                         "cannot hold and spinlat's dynamics do not apply: pass constraints='ignore' to drop them "
                         "knowingly, or remove the property")


@refuse_other_names()
def from_pymatgen(structure, validate=True, constraints="error"):
    """A :class:`~spinlat.State` from a pymatgen ``Structure`` or ``Molecule``: Cartesian
    positions, atomic numbers, lattice and its ``pbc`` (a Molecule: no cell, not periodic), moments
    and spins from ``site_properties["magmom"]``, velocities (Å/fs) and masses if present.

    ``constraints``: ``"error"`` (default) refuses a ``selective_dynamics`` site property that
    fixes any coordinate (a POSCAR's selective dynamics), ``"ignore"`` drops it.

    Raises :class:`~spinlat.errors.InputError` for disordered sites (several species on a site),
    malformed magmoms (naming the site) or fixed coordinates."""
    from ..state import State

    from .. import validation

    Lattice, Molecule, Structure, Magmom = _require()
    constraints = validation.choice(constraints, "constraints", ("error", "ignore"))
    if not isinstance(structure, (Structure, Molecule)):
        raise InputError(f"from_pymatgen: expected a pymatgen Structure or Molecule, got {type(structure).__name__}")
    if not structure.is_ordered:
        raise InputError("from_pymatgen: the structure is disordered (partial occupancies); order it first, e.g. with "
                         "pymatgen's OrderDisorderedStructureTransformation")
    numbers = [site.specie.Z for site in structure]
    props = structure.site_properties
    n = len(structure)
    if constraints == "error":
        _refuse_selective_dynamics(props, n)
    magmom = props.get("magmom")
    if magmom is None:  # pymatgen's other place for collinear moments: Species("Fe", 3, spin=5)
        spins = [getattr(site.specie, "spin", None) for site in structure]
        magmom = spins if any(v for v in spins) else None
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


#: CIF data names that only magnetic CIF files (mCIF: MAGNDATA, ISODISTORT, pymatgen's
#: ``CifWriter(write_magmoms=True)``) carry: moments, magnetic symmetry operations and groups
_MAGNETIC_CIF_NAMES = ("_atom_site_moment", "_space_group_symop_magn", "_space_group_magn", "_space_group.magn",
                       "_magnetic_space_group")


def is_magnetic_cif(path, format=None) -> bool:
    """Whether ``path`` is a magnetic CIF: named ``.mcif``, or a ``.cif`` (``format`` None, "cif"
    or "mcif") whose text holds atomic moments or magnetic symmetry operations (data names
    starting ``_atom_site_moment``, ``_space_group_symop_magn``, ``_space_group_magn``, ...).
    ASE's CIF reader skips both: it would give the magnetic atoms of the asymmetric unit only,
    without moments (for MnF2 in P4_2'/mnm': Mn F instead of Mn2 F4)."""
    from pathlib import Path

    p = Path(path)
    suffix = p.suffix.lower()
    if format not in (None, "cif", "mcif") or suffix not in (".cif", ".mcif") and format is None:
        return False
    if suffix == ".mcif" or format == "mcif":
        return True
    try:
        with open(p, "rb") as fh:
            text = fh.read().decode(errors="replace").lower()
    except OSError:
        return False
    return any(name in text for name in _MAGNETIC_CIF_NAMES)


def read_magnetic_cif(path, index=-1):
    """The :class:`~spinlat.State` of data block ``index`` (default the last, as ``ase.io.read``;
    ``":"``: a list, one State per block) of a magnetic CIF file, read by pymatgen's
    ``CifParser``: the magnetic (or ordinary) symmetry operations applied to the atoms and their
    moments (time reversal included), moments given along the crystal axes (``crystalaxis_x``...)
    turned Cartesian (μB), a site without a moment non-magnetic (:func:`from_pymatgen`). The
    atoms follow the file's ``_atom_site_label`` rows (pymatgen sorts them by species; here they
    are put back), each row's symmetry images in the order of the operations. Raises
    FileFormatError naming the file when pymatgen cannot read it, InputError for an index out of
    range."""
    from ..errors import FileFormatError

    _require()
    from pymatgen.io.cif import CifParser

    try:
        with warnings.catch_warnings():  # a note of pymatgen's that says nothing about the structure
            warnings.filterwarnings("ignore", message=".*Skipping relative stoichiometry check", category=UserWarning)
            if _only_identity(path):  # P1 (write_magnetic_cif's files): no operation acts on a moment
                warnings.filterwarnings("ignore", message=".*No magnetic symmetry detected", category=UserWarning)
            structures = CifParser(str(path)).parse_structures(primitive=False)
    except Exception as exc:  # noqa: BLE001 - pymatgen raises many kinds for a bad file
        raise FileFormatError(f"{path}: cannot read this magnetic CIF with pymatgen ({type(exc).__name__}: {exc})") \
            from None
    if not structures:
        raise FileFormatError(f"{path}: pymatgen found no structure in this magnetic CIF")
    structures = _in_file_order(path, structures)
    if isinstance(index, str) and index == ":":
        return [from_pymatgen(st) for st in structures]
    try:
        structure = structures[index]
    except (IndexError, TypeError):
        raise InputError(f"{path}: data block index {index!r} is out of range ({len(structures)} blocks)") from None
    return from_pymatgen(structure)


def _only_identity(path) -> bool:
    """Whether every data block of the CIF at ``path`` lists at most the identity as its symmetry
    operations (ordinary and magnetic), so that pymatgen's note that it found no magnetic
    operations and applies the ordinary ones to the moments changes nothing."""
    from pymatgen.io.cif import CifFile

    try:
        blocks = CifFile.from_file(str(path)).data.values()
    except Exception:  # noqa: BLE001 - the parser proper reports a bad file
        return False
    for block in blocks:
        for key, value in block.data.items():
            k = key.lower()
            if ("symop" in k or "equiv_pos" in k) and "xyz" in k:
                ops = [value] if isinstance(value, str) else list(value)
                if any(op.replace(" ", "").replace("'", "").lower() not in ("x,y,z", "x,y,z,+1") for op in ops):
                    return False
    return True


def _check_moments_read(path, name, block, keys, structure):
    """FileFormatError when the block lists non-zero moments that pymatgen did not read (it reads
    the ``crystalaxis_x/y/z`` columns only, and none at all when one of them is missing or a value
    is not a number): the atoms would be non-magnetic without a word."""
    from ..errors import FileFormatError

    values = []
    for k in keys:
        if "label" in k.lower() or "symmform" in k.lower():
            continue
        for v in ([block.data[k]] if isinstance(block.data[k], str) else block.data[k]):
            try:
                values.append(float(re.sub(r"\(\d+\)$", "", v)))
            except ValueError:
                values.append(float("nan"))
    if not any(v != 0 for v in values):  # none listed, all zero (NaN != 0 counts as listed)
        return
    read = structure.site_properties.get("magmom") or []
    if any(np.any(np.asarray(_moment_vector(m, "site")) != 0) for m in read if m is not None):
        return
    raise FileFormatError(f"{path}: data block {name!r} lists moments ({', '.join(keys)}) but pymatgen read none: it "
                          "reads _atom_site_moment.crystalaxis_x/y/z (numbers) only; give the moments in those "
                          "columns")


def _site_labels(block):
    """The ``_atom_site_label`` column of a pymatgen CifBlock (CIF 1 or DDLm spelling), [] if none."""
    for key in ("_atom_site_label", "_atom_site.label"):
        if key in block.data:
            value = block.data[key]
            return [value] if isinstance(value, str) else list(value)
    return []


def _in_file_order(path, structures):
    """``structures`` (pymatgen's parse of the file at ``path``, one per data block with atoms)
    with their sites in the file's order: pymatgen groups them by species; here they follow the
    ``_atom_site_label`` rows of their block, each row's symmetry images in pymatgen's order
    (that of the operations), moments and all site properties moving with their sites. Raises
    FileFormatError for a block that gives one label to two rows while it lists moments (which
    the file then cannot assign to an atom)."""
    from pymatgen.io.cif import CifFile

    from ..errors import FileFormatError

    blocks = [(name, _site_labels(b), b) for name, b in CifFile.from_file(str(path)).data.items()]
    blocks = [entry for entry in blocks if entry[1]]
    out = []
    for structure in structures:
        labels = list(structure.labels)
        # the next block holding every label of this structure (pymatgen skips blocks it cannot read)
        while blocks and not set(labels) <= set(blocks[0][1]):
            blocks.pop(0)
        if not blocks:
            out.append(structure)
            continue
        name, rows, block = blocks.pop(0)
        moment_keys = [k for k in block.data if k.lower().startswith("_atom_site_moment")]
        twice = sorted({x for x in rows if rows.count(x) > 1})
        if twice and moment_keys:
            raise FileFormatError(f"{path}: data block {name!r} gives the label(s) {twice} to more than one "
                                  "_atom_site row, and its moments (_atom_site_moment) name atoms by label: give "
                                  "every row its own label")
        _check_moments_read(path, name, block, moment_keys, structure)
        first = {label: i for i, label in reversed(list(enumerate(rows)))}
        order = sorted(range(len(labels)), key=lambda i: (first[labels[i]], i))
        out.append(structure if order == list(range(len(labels))) else structure.__class__.from_sites(
            [structure[i] for i in order]))
    return out


def write_magnetic_cif(path, state):
    """Write ``state`` as a magnetic CIF (pymatgen's ``CifWriter(write_magmoms=True)``: space group
    P1, every atom with its moment along the crystal axes, μB, 8 significant digits), which VESTA,
    pymatgen and :func:`read_magnetic_cif` read. The file is replaced only once complete
    (:func:`spinlat.files.atomic_path`). Raises InputError for a State without a cell."""
    from ..files import atomic_path

    structure = to_pymatgen(state)
    if not hasattr(structure, "lattice"):
        raise InputError(f"cannot write {path}: a magnetic CIF needs a cell, and the state has none")
    from pymatgen.io.cif import CifWriter

    with atomic_path(path, name="magnetic CIF path") as tmp:
        CifWriter(structure, write_magmoms=True).write_file(tmp)
    return path


__all__ = ["to_pymatgen", "from_pymatgen", "is_magnetic_cif", "read_magnetic_cif", "write_magnetic_cif"]
