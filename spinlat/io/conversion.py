"""Convert trajectories between spinlat's HDF5 format and the formats ASE reads and writes.

``convert(source, target, frames=None)`` (``spinlat convert SOURCE TARGET [--frames SLICE]``):

- HDF5 → any ASE format, chosen by the target's extension (or ``format``): ``.extxyz`` / ``.xyz``
  (also compressed: ``.extxyz.gz``, ``.bz2``, ``.xz``) through :func:`spinlat.io.write_extxyz`
  (every float at round-trip precision), others through
  ``ase.io.write``. Each frame is :meth:`spinlat.io.Trajectory.atoms` with, per atom,
  ``initial_magmoms`` and ``magmoms`` (N, 3) the moment vectors m_i (μB), ``spinlat_spins``
  (N, 3) the unit spin vectors, ``spinlat_moments`` (N,) the moment magnitudes (μB),
  ``spinlat_velocities`` (N, 3) Å/fs and ``momenta`` (ASE's units), ``masses`` (amu), and when
  the run stored them ``forces`` (N, 3) eV/Å and ``magnetic_forces`` (N, 3) eV/μB; per frame
  ``step``, ``time`` (fs, sweeps for Monte Carlo), ``energy`` (potential, eV),
  ``kinetic_energy``, ``total_energy`` (eV) and ``temperature`` (K); the first frame also
  carries the run's ``spinlat_potential``, ``spinlat_integrator``, ``spinlat_seed`` and
  ``spinlat_metadata`` (JSON). OVITO's extended-XYZ reader turns every float column of the
  ``Properties`` header into a particle property that its Color coding modifier can use
  (``spinlat_spins.Z``, ``spinlat_moments``, ``magnetic_forces.X``, ``spinlat_velocities.X``,
  ...; ``forces`` becomes its standard Force property) and the frame's values into global
  attributes (checked with OVITO 3.17's ``ovito.io.import_file``). ASE databases (``.json``,
  ``.db``), whose ase.io writer keeps no ``info``, get each frame's values as key-value pairs
  and the per-atom spinlat arrays as the row's ``data``; a ``.traj`` gets those arrays in
  ``info["spinlat_arrays"]`` (it drops unknown arrays): both round-trip exactly. Formats that store no
  magnetic moments, velocities or forces (POSCAR, CIF, xsf, ...) lose them: a UserWarning names
  what is lost (a note of ``spinlat convert``), found by reading the first frame back. A
  ``.ovf`` target gets the spin directions of the frames as OVF 2.0 segments, one per frame
  (:func:`spinlat.io.write_ovf`, binary8; Spirit's site order when the atoms are in
  ``unit.repeat`` order, :func:`spinlat.io.ovf.repeat_of`; a UserWarning says what is not in it); an
  OVF source is refused (it holds no atoms: :func:`spinlat.io.read_ovf` puts its spins onto a
  State). A ``.mcif`` target gets one frame as a magnetic CIF with every moment
  (:func:`spinlat.io.write_magnetic_cif`); a magnetic CIF source (``.mcif``, or a ``.cif`` with
  moments or magnetic symmetry) is read by pymatgen (:func:`spinlat.io.read_magnetic_cif`); a
  Spirit input file (a ``.cfg`` with Spirit's keywords, or ``format="spirit"``), an UppASD
  ``inpsd.dat`` or a VAMPIRE ``.UCF`` gives its structure as one frame
  (:func:`spinlat.io.codes.read_code_structure`).
  ``format="lammps-data"``: one frame; a magnetic one (any moment > 0) as ``atom_style spin``
  (:func:`spinlat.io.write_lammps_data`: spins and moments, read back bit for bit), a
  non-magnetic one by ASE's writer as atom_style atomic, both in metal units with Masses
  (element comments) and Velocities; a ``.data`` target without ``format`` is refused (ASE would
  take it for RuNNer's format).
- a LAMMPS spin dump or data file → HDF5: read by :func:`spinlat.io.read_lammps_dump` /
  :func:`~spinlat.io.read_lammps_data` (spins, moments, magnetic forces, metal units converted;
  the dump's elements from its ``element`` column or the export metadata beside it), never by
  ASE's readers, which keep neither spins nor moments. Frames of a dump without ``vx vy vz`` are
  stored at rest with the kinetic energy and temperature of the log's KinEng, else NaN (a
  UserWarning says so).
- any ASE-readable file → HDF5: every frame becomes a frame of a spinlat trajectory
  (an extxyz is read frame by frame, :func:`spinlat.io.extxyz.iread_extxyz`, a LAMMPS dump too:
  a source larger than memory converts; :meth:`spinlat.State.from_ase`: the moments — computed ones, e.g. a DFT code's, before the
  initial guesses — and the exact ``spinlat_*`` arrays when they agree with them); ``step``, ``time``, ``energy``, ``total_energy``, ``forces`` and
  ``magnetic_forces`` are taken from each frame where present (else the frame's index, NaN,
  NaN, potential + kinetic, none). A source without any magnetic moments gives non-magnetic
  atoms, with a UserWarning; a UserWarning also names stresses, which a trajectory does not
  hold, and ASE tags and charges (:meth:`~spinlat.State.from_ase`). An unusable frame (NaN, negative moments)
  raises FileFormatError naming the file and frame. Positions, cell, pbc, spins, moments, velocities, masses,
  steps, times, energies and forces of an HDF5 → extxyz → HDF5 round trip are bit for bit
  those of the original.
- HDF5 → HDF5: the selected frames with the run's attributes, written with another
  ``compression`` (e.g. an older LZF file made readable by every HDF5 tool). The integrator
  checkpoint is not copied (the copy cannot be continued with ``--restart``).

``frames`` selects frames with Python's slice syntax on frame indices: ``"10"``, ``"-1"``,
``"100:"``, ``":50"``, ``"::10"``, ``"5:100:5"`` (or a ``slice`` / int). An existing target is
replaced only with ``overwrite=True``.
"""

from __future__ import annotations

import contextlib
import json
import math
import warnings
from pathlib import Path

import numpy as np

from .. import units, validation
from ..errors import FileFormatError, InputError
from ..state import ase_magnetic_moments
from .extxyz import compression_of
from .pymatgen import is_magnetic_cif, read_magnetic_cif, write_magnetic_cif
from .codes import code_format, read_code_structure
from ..keywords import refuse_other_names

_EXTXYZ = (".extxyz", ".xyz")
_HDF5 = (".h5", ".hdf5")


def parse_frames(spec):
    """A frame selection: None (all), an int, a ``slice``, or a string in slice syntax
    (``"5"``, ``"-1"``, ``"2:"``, ``"::10"``, ``"1:9:2"``). Returns an int or a slice;
    InputError naming the bad text."""
    if spec is None:
        return slice(None)
    if isinstance(spec, slice):
        return spec
    if isinstance(spec, (int, np.integer)) and not isinstance(spec, bool):
        return int(spec)
    if not isinstance(spec, str):
        raise InputError(f"frames: expected an index or a slice such as '10:100:5', got {spec!r}")
    text = spec.strip()
    parts = text.split(":")
    try:
        if len(parts) == 1:
            return int(parts[0])
        if len(parts) > 3:
            raise ValueError
        values = [int(p) if p.strip() else None for p in parts]
    except ValueError:
        raise InputError(f"frames: {spec!r} is not an index or a slice start:stop:step of integers") from None
    if len(values) == 3 and values[2] == 0:
        raise InputError(f"frames: {spec!r} has step 0")
    return slice(*values)


def _indices(n, selection) -> list[int]:
    if isinstance(selection, int):
        i = selection + n if selection < 0 else selection
        if not 0 <= i < n:
            raise InputError(f"frames: index {selection} is out of range for {n} frames")
        return [i]
    return list(range(*selection.indices(n)))


def _kind(path, format) -> str:
    if format is not None:
        return "hdf5" if format in ("h5", "hdf5") else "extxyz" if format in ("extxyz", "xyz") else "ase"
    suffixes = [s.lower() for s in Path(path).suffixes]
    if suffixes and compression_of(path) is not None:  # t.extxyz.gz: a compressed extxyz
        return "extxyz" if suffixes[-2:-1] and suffixes[-2] in _EXTXYZ else "ase"
    suffix = suffixes[-1] if suffixes else ""
    return "hdf5" if suffix in _HDF5 else "extxyz" if suffix in _EXTXYZ else "ase"


def frame_atoms(traj, i, header=False, run=None):
    """Frame ``i`` of an open :class:`~spinlat.io.Trajectory` as ``ase.Atoms`` for export (module
    docstring); with ``header`` the run's attributes go into its ``info``: those of ``run`` (an
    entry of :attr:`~spinlat.io.Trajectory.runs`) when given, else the file's (its first run)."""
    atoms = traj.atoms(i)
    if header:
        attrs = run if run is not None else traj.attrs
        atoms.info["spinlat_potential"] = str(attrs.get("potential", ""))
        atoms.info["spinlat_integrator"] = str(attrs.get("integrator", ""))
        atoms.info["spinlat_seed"] = "none" if attrs.get("seed") is None else int(attrs["seed"])
        atoms.info["spinlat_metadata"] = json.dumps(attrs.get("metadata") or {}, sort_keys=True)
    return atoms


#: ASE database formats: ase.io.write/read keep no ``info`` (steps, times, energies) in them
_DB_TYPES = ("json", "db")
#: per-atom arrays an ASE database does not store, kept in each row's ``data`` (and, for SQLite
#: ``.db``, the non-collinear initial magmoms, which it stores flattened and cannot read back)
_DB_ARRAYS = ("spinlat_spins", "spinlat_moments", "spinlat_velocities", "magnetic_forces", "initial_magmoms")


def _db_type(path, format):
    name = (format or Path(path).suffix.lstrip(".")).lower()
    return name if name in _DB_TYPES else None


def _write_db(target, atoms_list, db_type):
    """Frames into an ASE database (.json / .db): each frame's ``info`` goes into the row's
    key-value pairs (finite numbers, strings, bools under names the database allows) or its
    ``data`` (the rest), the per-atom spinlat arrays into ``data`` (see :func:`_read_db`)."""
    import ase.db
    from ase.db.core import reserved_keys

    from ..files import atomic_path

    with atomic_path(target, name="convert target") as tmp:
        with ase.db.connect(str(tmp), type=db_type, serial=True, append=False) as con:
            for atoms in atoms_list:
                kvp, data = {}, {}
                for key, value in atoms.info.items():
                    scalar = isinstance(value, (str, bool, np.bool_)) or (
                        isinstance(value, (int, float, np.integer, np.floating)) and math.isfinite(value))
                    if scalar and key.isidentifier() and key not in reserved_keys:
                        kvp[key] = value.item() if isinstance(value, np.generic) else value
                    else:
                        data[key] = value
                data.update((k, atoms.arrays[k]) for k in _DB_ARRAYS[:-1] if k in atoms.arrays)
                mag = atoms.arrays.get("initial_magmoms")
                if db_type == "db" and mag is not None and mag.ndim == 2:
                    from ase.calculators.singlepoint import SinglePointCalculator

                    data["initial_magmoms"] = mag
                    results = dict(atoms.calc.results) if atoms.calc is not None else {}
                    atoms = atoms.copy()
                    del atoms.arrays["initial_magmoms"]
                    if results:
                        atoms.calc = SinglePointCalculator(atoms, **results)
                con.write(atoms, key_value_pairs=kvp, data=data)


def _read_db(source, db_type):
    """The frames of an ASE database with their ``info`` back from key-value pairs and data
    (what :func:`_write_db` wrote; for other databases, whatever their rows hold)."""
    import ase.db

    frames = []
    with ase.db.connect(str(source), type=db_type, serial=True) as con:
        for row in con.select():
            atoms = row.toatoms(add_additional_information=True)
            info = atoms.info
            kvp, data = info.pop("key_value_pairs", {}), info.pop("data", {})
            info.pop("unique_id", None)
            for key, value in data.items():
                if key in _DB_ARRAYS and np.shape(value)[:1] == (len(atoms),):
                    atoms.arrays[key] = np.asarray(value)
                else:
                    info[key] = value
            info.update(kvp)
            frames.append(atoms)
    return frames


def _not_moments():
    """{ASE format: what its reader puts into the initial magmoms instead of moments in μB}."""
    from ..state import ELK_BFCMT, STARTING_MAGNETIZATION

    return {"espresso-in": STARTING_MAGNETIZATION, "elk": ELK_BFCMT}


def drop_initial_guesses(atoms_list, source, format=None):
    """Remove the initial magmoms of frames read by ``ase.io.read`` from a format whose reader fills
    them with something other than moments in μB (a Quantum ESPRESSO input: starting_magnetization,
    :data:`spinlat.state.STARTING_MAGNETIZATION`; Elk's GEOMETRY.OUT: the bfcmt field,
    :data:`spinlat.state.ELK_BFCMT`), with a UserWarning naming the file, so that they are given as
    moments (a run config's structure.moments) instead of being read wrongly. Returns
    ``atoms_list``."""
    from ase.io.formats import UnknownFileTypeError, filetype

    from ..state import drop_initial_magmoms

    name = format
    if name is None:
        try:
            name = filetype(str(source))
        except (UnknownFileTypeError, OSError):
            return atoms_list
    what = _not_moments().get(name)
    if what and any(a.has("initial_magmoms") and np.any(a.arrays["initial_magmoms"] != 0) for a in atoms_list):
        for atoms in atoms_list[1:]:
            atoms.set_initial_magnetic_moments(None)
        drop_initial_magmoms(atoms_list[0], source, what, stacklevel=5)
    return atoms_list


def _check_ase_target(target, format):
    """InputError naming ``target`` when ASE cannot write it: no format known for its extension
    (``.lammpstrj``, ``.foo``; ``ase.io.write`` raised UnknownFileTypeError), or a ``format`` ASE does not
    know or only reads."""
    from ase.io.formats import UnknownFileTypeError, filetype, ioformats

    name = format
    if name is None:
        if Path(target).suffix.lower() == ".data":  # ASE's guess: RuNNer, where a LAMMPS user means LAMMPS
            raise InputError(f"cannot write {target}: ASE takes .data for RuNNer's format; pass --format lammps-data "
                             "(format=) for a LAMMPS data file (atom_style spin with the spins and moments, atom_style "
                             "atomic for a non-magnetic state) or --format runnerdata for RuNNer")
        try:
            name = filetype(str(target), read=False)
        except UnknownFileTypeError:
            name = None
    fmt = ioformats.get(name) if name is not None else None
    if fmt is not None and fmt.can_write:
        return
    why = (f"ASE has no format {format!r}" if format is not None and fmt is None
           else f"ASE reads the {name} format but cannot write it" if fmt is not None
           else f"no format known for its extension {Path(target).suffix or '(none)'!r}")
    lammps = (" (LAMMPS: --format lammps-data (format='lammps-data') writes one frame as an atom_style spin data "
              "file; spinlat export CONFIG --lammps DIR writes a runnable input with its potential)"
              if "lammps" in str(target).lower() or "lammps" in str(format).lower() else "")
    raise InputError(f"cannot write {target}: {why}; give it an extension ASE writes (.extxyz, .traj, .xyz, .cif, "
                     f".vasp, ...) or pass --format (format=) with an ASE format name{lammps}")


#: ase.io.write options for a LAMMPS data target: the units spinlat's readers take (metal), a
#: Masses section (with element comments: the elements come back) and the velocities, which ASE
#: leaves out by default; atom_style atomic holds no spins (used for non-magnetic frames only:
#: magnetic ones go to write_lammps_data, atom_style spin)
_LAMMPS_DATA_WRITE = {"lammps-data": dict(atom_style="atomic", masses=True, velocities=True, units="metal")}
_LAMMPS_DATA_READ = {"lammps-data": dict(atom_style="atomic", units="metal")}


def _write_ase(target, atoms_list, kind, format):
    from .extxyz import write_extxyz

    if kind == "extxyz":
        write_extxyz(target, atoms_list)             # streams the frames, replaces target when complete
        return
    if _db_type(target, format):
        _write_db(target, atoms_list, _db_type(target, format))
        return
    import ase.io

    from ..files import atomic_path

    atoms_list = list(atoms_list)
    if (format or Path(target).suffix.lstrip(".")).lower() == "traj":
        # ASE's .traj keeps atoms.info but drops per-atom arrays it does not know
        for atoms in atoms_list:
            atoms.info["spinlat_arrays"] = {k: atoms.arrays[k] for k in _DB_ARRAYS[:-1] if k in atoms.arrays}
    try:
        with atomic_path(target, name="convert target") as tmp:
            ase.io.write(tmp, atoms_list if len(atoms_list) > 1 else atoms_list[0], format=format,
                         **_LAMMPS_DATA_WRITE.get(format, {}))
    except ValueError as exc:
        hint = " (this format holds one frame: select one, e.g. --frames -1)" \
            if len(atoms_list) > 1 else ""
        raise InputError(f"cannot write {target}: {exc}{hint}") from None


def _read_ase(source, kind, format, selection, columns=None, elements=None, pbc=None):
    """The frames of a non-HDF5 source as ase.Atoms; ``pbc`` (3,) bool or None: set on every
    frame (a LAMMPS source then reads no 2D guess and warns none)."""
    frames = _read_frames(source, kind, format, selection, columns, elements, pbc)
    if isinstance(frames, _ExtxyzFrames):
        frames.pbc = pbc  # set on each frame as it is read
    elif pbc is not None and not isinstance(frames, _DumpFrames):  # a dump's frames are read with it
        for atoms in frames:
            atoms.pbc = pbc
    return frames


def _read_frames(source, kind, format, selection, columns, elements, pbc):
    from .extxyz import read_extxyz
    from .lammps_read import lammps_file_kind, read_lammps_data, read_lammps_dump

    lammps = lammps_file_kind(source, format) if kind == "ase" else None
    if lammps is None and (columns is not None or elements is not None):
        raise InputError(f"columns and elements are options of LAMMPS dump and data sources; {source} is not one")
    if lammps == "data":
        if columns is not None:
            raise InputError(f"columns: only used with LAMMPS dumps, and {source} is a LAMMPS data file")
        frames = [read_lammps_data(source, elements=elements, pbc=pbc).to_ase()]
    elif lammps == "dump":  # spins, moments, magnetic forces and metal units: ASE's reader keeps none
        dump = read_lammps_dump(source, elements=elements, columns=columns, pbc=pbc)
        indices = _indices(len(dump), selection)
        dump.check_atom_count(indices)
        bare = sum(not dump.has_velocities(i) for i in indices)
        if bare:
            warnings.warn(f"{source}: the dump holds no velocities (vx vy vz) at {bare} of the {len(indices)} frames "
                          "converted: their atoms are stored at "
                          "rest, with the kinetic energy and temperature of the log's KinEng where it prints one, else "
                          "NaN (add vx vy vz to the dump custom columns to keep them)", UserWarning, stacklevel=4)
        return _DumpFrames(dump, indices)  # read one frame at a time (a dump may not fit in memory)
    elif kind == "extxyz":
        streamed = _ExtxyzFrames(source, selection)
        if streamed.in_order:
            return streamed  # read frame by frame (an extxyz may not fit in memory)
        frames = read_extxyz(source, index=":")  # a selection in another order: all of them
    elif _db_type(source, format):
        try:
            frames = _read_db(source, _db_type(source, format))
        except Exception as exc:  # noqa: BLE001 - ase.db raises many kinds for a bad file
            raise FileFormatError(f"{source} cannot be read as an ASE database: {exc}") from None
        _calc_results_to_arrays(frames)
    elif code_format(source, format):  # Spirit, UppASD, VAMPIRE inputs (ASE takes a .cfg for AtomEye's)
        frames = [read_code_structure(source, format).to_ase()]
    elif is_magnetic_cif(source, format):  # moments and magnetic symmetry: ASE's CIF reader skips both
        try:
            frames = [st.to_ase() for st in read_magnetic_cif(source, ":")]
        except ImportError as exc:
            raise InputError(f"{source} is a magnetic CIF, which spinlat reads with pymatgen: {exc}") from None
    else:
        import ase.io

        try:
            frames = ase.io.read(str(source), index=":", format=format)
        except Exception as exc:  # noqa: BLE001 - ase raises many kinds for a bad file
            raise FileFormatError(f"{source} cannot be read by ase.io.read: {exc}") from None
        drop_initial_guesses(frames, source, format)
        for atoms in frames:  # per-atom arrays a .traj written by spinlat keeps in info
            kept = atoms.info.pop("spinlat_arrays", None)
            if isinstance(kept, dict):
                atoms.arrays.update((k, np.asarray(v)) for k, v in kept.items()
                                    if k in _DB_ARRAYS and np.shape(v)[:1] == (len(atoms),))
        _calc_results_to_arrays(frames)
    if isinstance(frames, list) and not frames:
        raise FileFormatError(f"{source} holds no frame")
    chosen = _indices(len(frames), selection)
    for i in chosen:
        if len(frames[i]) != len(frames[chosen[0]]):
            raise FileFormatError(f"{source}: frame {i} holds {len(frames[i])} atoms, frame {chosen[0]} holds "
                                  f"{len(frames[chosen[0]])}: a spinlat trajectory holds a fixed set of atoms "
                                  "(convert frames with one count, --frames)")
    return [frames[i] for i in chosen]


class _DumpFrames:
    """The frames ``indices`` of a :class:`~spinlat.io.LammpsDump` as a sequence of ase.Atoms
    (with calculator results in info/arrays, :func:`_calc_results_to_arrays`), each parsed when
    asked for: a conversion holds one frame in memory, not the dump."""

    def __init__(self, dump, indices):
        self.dump, self.indices = dump, list(indices)

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, k):
        atoms = self.dump.atoms(self.indices[k])
        _calc_results_to_arrays([atoms])
        return atoms

    def __iter__(self):
        return (self[k] for k in range(len(self)))

    def has_forces(self) -> bool:
        """Whether the dump's columns hold forces or magnetic forces."""
        return bool({"forces", "magnetic_forces"} & set(self.dump.names))


class _ExtxyzFrames:
    """The frames ``selection`` of an extxyz file as a sequence of ase.Atoms read one at a time
    (:func:`spinlat.io.extxyz.iread_extxyz`): a first pass counts them and checks their atom
    counts and forces, each later pass reads them again; ``in_order`` is False for a selection
    that is not increasing (then the caller reads the file whole)."""

    def __init__(self, source, selection):
        from .extxyz import iread_extxyz

        self.source, self.pbc = source, None
        sizes, forces = [], []
        for atoms in iread_extxyz(source):
            sizes.append(len(atoms))
            forces.append("forces" in atoms.arrays or "magnetic_forces" in atoms.arrays)
        if not sizes:
            raise FileFormatError(f"{source} holds no frame")
        self.indices = _indices(len(sizes), selection)
        self.in_order = bool(np.all(np.diff(self.indices) > 0))
        for i in self.indices:
            if sizes[i] != sizes[self.indices[0]]:
                raise FileFormatError(f"{source}: frame {i} holds {sizes[i]} atoms, frame {self.indices[0]} holds "
                                      f"{sizes[self.indices[0]]}: a spinlat trajectory holds a fixed set of atoms "
                                      "(convert frames with one count, --frames)")
        self._forces = any(forces[i] for i in self.indices)

    def __len__(self):
        return len(self.indices)

    def __iter__(self):
        from .extxyz import iread_extxyz

        wanted = iter(self.indices)
        nxt = next(wanted, None)
        for i, atoms in enumerate(iread_extxyz(self.source)):
            if nxt is None:
                return
            if i == nxt:
                if self.pbc is not None:
                    atoms.pbc = self.pbc
                yield atoms
                nxt = next(wanted, None)

    def __getitem__(self, k):
        if k != 0:
            raise IndexError("only the first frame of a streamed extxyz is read by index")
        return next(iter(self))

    def has_forces(self) -> bool:
        """Whether any selected frame holds forces or magnetic forces."""
        return self._forces


def _warn_if_data_lost(target, format, written):
    """Warn (UserWarning) when ``target``, just written by ase.io.write, reads back without the
    magnetic moments, velocities or forces that its first frame ``written`` (the ase.Atoms of
    :func:`frame_atoms`) had (POSCAR and CIF store no moments, CIF and xsf no velocities, ...),
    naming what is lost."""
    import ase.io

    try:
        back = ase.io.read(str(target), index=0, format=format, **_LAMMPS_DATA_READ.get(format, {}))
    except Exception:  # noqa: BLE001 - a format ASE writes but cannot read back: nothing to check
        return
    lost = []
    if np.any(written.arrays["spinlat_moments"] > 0) and not np.any(ase_magnetic_moments(back) != 0):
        lost.append("magnetic moments (the moments and spins)")
    if np.any(written.arrays["spinlat_velocities"] != 0) and not np.any(back.get_velocities() != 0):
        lost.append("velocities")

    def forces(atoms):
        calc = getattr(atoms, "calc", None)
        kept = atoms.arrays.get("forces")
        return calc.results.get("forces") if kept is None and calc is not None else kept

    if forces(written) is not None and np.any(forces(written) != 0) and forces(back) is None:
        lost.append("forces")
    if lost:
        warnings.warn(f"{target}: its format keeps no {', no '.join(lost)}, so they are not in it (.extxyz and "
                      ".traj keep them)", UserWarning, stacklevel=4)


def _calc_results_to_arrays(frames):
    """Calculator results (energy, stress, forces, computed magnetic moments ``magmoms``) moved
    into info/arrays, as read_extxyz gives them (``arrays["magmoms"]`` is preferred over the initial
    magmoms by :meth:`spinlat.State.from_ase`)."""
    for atoms in frames:
        calc = atoms.calc
        if calc is not None:
            for key in ("energy", "stress", "forces", "magmoms"):
                if calc.results.get(key) is not None:
                    (atoms.info if key in ("energy", "stress") else atoms.arrays)[key] = np.array(calc.results[key])
            atoms.calc = None


def _number(info, key, default):
    value = info.get(key, default)
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


@refuse_other_names()
def convert(source, target, frames=None, format=None, compression="gzip", overwrite=False, columns=None,
            elements=None, pbc=None) -> int:
    """Convert ``source`` into ``target`` (module docstring); returns the number of frames
    written. ``format``: ASE format name of the non-HDF5 side, when its extension does not tell;
    ``compression``: of an HDF5 target (:mod:`spinlat.io.hdf5`); ``columns`` (renames of dump
    columns, ``{"c_outsp[1]": "sp", ...}``) and ``elements`` (element of each atom type) for a
    LAMMPS dump or data source, as :func:`spinlat.io.read_lammps_dump` takes them (by default a
    ``log.lammps`` beside the dump names both when it can). ``pbc`` (one bool or three): the
    periodic directions of every frame of a non-HDF5 source, whatever it says (a LAMMPS data file
    cannot say that it is 2D); None: the source's. A source whose frames hold
    different numbers of atoms is refused (FileFormatError naming the frame). Raises InputError for a bad
    selection, an existing target without ``overwrite``, or source and target the same file;
    MissingFileError (a FileNotFoundError) / FileFormatError for a missing or unreadable source."""
    from ..state import State
    from .hdf5 import Trajectory, compression_filters

    if isinstance(source, (list, tuple)):
        if len(source) != 1:
            if frames is not None or format is not None or columns is not None or elements is not None or pbc is not None:
                raise InputError("joining trajectories takes no frames, format, columns, elements or pbc: convert "
                                 "each source to HDF5 first, then join those")
            return concatenate(source, target, compression=compression, overwrite=overwrite)
        source = source[0]
    source = Path(validation.path(source, "convert source"))
    target = Path(validation.path(target, "convert target"))
    selection = parse_frames(frames)
    compression_filters(compression)
    overwrite = validation.boolean(overwrite, "convert overwrite")
    if format is not None:
        format = validation.instance(format, "convert format", str, "an ASE format name")
    validation.existing_file(source, "convert source", "convert source")
    if target.exists() and source.resolve() == target.resolve():
        raise InputError(f"source and target are the same file ({source})")
    if target.is_dir():
        raise InputError(f"cannot write {target}: it is a directory; give a file name (its extension picks the format)")
    if target.exists() and not overwrite:
        raise InputError(f"{target} exists; pass --overwrite (overwrite=True) to replace it")
    if not target.parent.is_dir():
        raise InputError(f"cannot write {target}: directory {target.parent} does not exist")
    src_kind, dst_kind = _kind(source, None), _kind(target, None)
    if format is not None:  # names the format of the side that is not HDF5
        src_kind = src_kind if src_kind == "hdf5" else _kind(source, format)
        dst_kind = dst_kind if dst_kind == "hdf5" else _kind(target, format)
    if src_kind != "hdf5" and dst_kind != "hdf5":
        raise InputError(f"one side of a conversion must be a spinlat HDF5 trajectory (.h5), got {source} and "
                         f"{target}; use ase.io for conversions between other formats")
    magnetic_cif = dst_kind == "ase" and (format == "mcif" or format is None and target.suffix.lower() == ".mcif")
    ovf_target = dst_kind == "ase" and (format == "ovf" or format is None and target.suffix.lower() == ".ovf")
    if src_kind == "ase" and (format == "ovf" or format is None and source.suffix.lower() == ".ovf"):
        raise InputError(f"{source} is an OVF file: it holds spin vectors only, no atoms, so it cannot become a "
                         "trajectory by itself; put its spins onto a structure with sl.io.read_ovf(path, state) "
                         "(repeat=(n1, n2, n3) for Spirit's site order)")
    if dst_kind == "ase" and not magnetic_cif and not ovf_target:
        _check_ase_target(target, format)

    if pbc is not None:
        pbc = validation.pbc(pbc, "convert pbc")
    if src_kind == "hdf5":
        if columns is not None or elements is not None:
            raise InputError(f"columns and elements are options of LAMMPS sources; {source} is a spinlat trajectory")
        if pbc is not None:
            raise InputError(f"pbc sets the periodic directions of a source that does not store them (a LAMMPS data "
                             f"file) or stores them wrongly; {source} is a spinlat trajectory, which stores them")
        with Trajectory(source) as traj:
            if len(traj) == 0:
                raise InputError(f"trajectory {source} holds no frame (nothing to convert): {traj.no_frame_reason()}")
            indices = _indices(len(traj), selection)
            if not indices:
                raise InputError(f"frames: {frames!r} selects no frame of the {len(traj)} in {source}")
            if ovf_target:  # one segment per frame: the unit spins (Spirit, OOMMF tools)
                return _write_ovf_frames(target, traj, indices, source)
            if magnetic_cif:  # moments along the crystal axes, which ASE's CIF writer leaves out
                if len(indices) > 1:
                    raise InputError(f"cannot write {target}: a magnetic CIF holds one frame ({len(indices)} "
                                     "selected): select one, e.g. --frames -1")
                frame = traj[indices[0]]
                try:
                    write_magnetic_cif(target, frame)
                except ImportError as exc:
                    raise InputError(f"cannot write {target}: spinlat writes magnetic CIF files with pymatgen: "
                                     f"{exc}") from None
                stored = traj.names
                lost = [name for name, kept in (
                    ("velocities", frame.velocities is not None and np.any(frame.velocities != 0)),
                    ("forces", "forces" in stored), ("magnetic forces", "magnetic_forces" in stored)) if kept]
                if lost:
                    warnings.warn(f"{target}: a magnetic CIF keeps positions, cell and moments only: the "
                                  f"{', '.join(lost)} of the frame are not in it (.extxyz and .traj keep them)",
                                  UserWarning, stacklevel=2)
                return 1
            if dst_kind == "ase" and format == "lammps-data":
                if len(indices) > 1:
                    raise InputError(f"cannot write {target}: a LAMMPS data file holds one frame ({len(indices)} "
                                     "selected): select one, e.g. --frames -1")
                state = traj[indices[0]]
                if np.any(state.moments > 0):  # atom_style spin: spins and moments kept
                    from .lammps import write_lammps_data

                    write_lammps_data(target, state, overwrite=True)
                    return 1
            if dst_kind != "hdf5":
                # the target is replaced only once the new file is complete (atomic_path): a format
                # that fails to write leaves the old file as it was
                # the first frame of each run carries that run's attributes (read back as its start)
                starts = {r["first_frame"]: r for r in _selected_runs(traj.runs, indices)}
                _write_ase(target, (frame_atoms(traj, i, header=(k in starts), run=starts.get(k))
                                    for k, i in enumerate(indices)),
                           dst_kind, format)
                if dst_kind == "ase" and _db_type(target, format) != "db":  # .db: moments in the rows' data
                    _warn_if_data_lost(target, format, frame_atoms(traj, indices[0]))
                return len(indices)
            forces = "forces" in traj.names
            # one frame at a time: forces of that frame only (never the whole (F, N, 3) array)
            items = ((traj[i], traj.scalars(i), traj.array("forces", frames=i) if forces else None,
                      traj.array("magnetic_forces", frames=i) if forces else None) for i in indices)
            runs = _selected_runs(traj.runs, indices)
            first = runs.pop(0)
            meta = dict(first["metadata"])
            meta["converted_from"] = str(source)
            return _write_h5(target, items, first["potential"], first["integrator"], first["seed"], meta, forces,
                             compression, runs=runs)

    atoms_list = _read_ase(source, src_kind, format, selection, columns, elements, pbc)
    if not atoms_list:
        raise InputError(f"frames: {frames!r} selects no frame of {source}")
    head = atoms_list[0].info
    first = _run_header(head)
    meta = dict(first["metadata"])
    meta["converted_from"] = str(source)
    if isinstance(atoms_list, (_DumpFrames, _ExtxyzFrames)):  # read frame by frame
        forces = atoms_list.has_forces()
    else:
        forces = any("forces" in a.arrays or "magnetic_forces" in a.arrays for a in atoms_list)
    # one pass over the frames (a LAMMPS dump is read frame by frame): what is not kept is said after
    seen = {"constrained": None, "stressed": 0, "magnetic": False}

    def items():
        for k, atoms in enumerate(atoms_list):
            if atoms.constraints and seen["constrained"] is None:
                seen["constrained"] = atoms
            seen["stressed"] += "stress" in atoms.info
            try:
                seen["magnetic"] = seen["magnetic"] or bool(np.any(ase_magnetic_moments(atoms) != 0))
            except InputError as exc:
                raise FileFormatError(f"{source}: frame {k} holds unusable magnetic moments: {exc}") from None
            # dropped tags / charges: said once, for the first frame
            try:
                # the source's format is known: drop_initial_guesses dropped what is not moments
                state = State.from_ase(atoms, constraints="ignore", warn_dropped=(k == 0),
                                       initial_fractions="keep")
            except InputError as exc:
                raise FileFormatError(f"{source}: frame {k} holds an unusable structure: {exc}") from None
            pe = _number(atoms.info, "energy", math.nan)
            scalars = {"step": int(_number(atoms.info, "step", k)), "time": _number(atoms.info, "time", math.nan),
                       "potential_energy": pe}
            if "total_energy" in atoms.info:
                scalars["total_energy"] = _number(atoms.info, "total_energy", math.nan)
            if not np.any(state.velocities) and "kinetic_energy" in atoms.info:
                # atoms without velocities whose kinetic energy is known otherwise (or NaN: a LAMMPS
                # dump without vx vy vz), not the 0 of the missing velocities
                ke = _number(atoms.info, "kinetic_energy", math.nan)
                scalars["kinetic_energy"] = ke
                scalars["temperature"] = 2.0 * ke / (3 * max(len(state), 1) * units.K_B)
            # a later frame with a run header (exported from a file of several runs) starts a run
            run = _run_header(atoms.info) if k > 0 and "spinlat_integrator" in atoms.info else None
            yield state, scalars, atoms.arrays.get("forces"), atoms.arrays.get("magnetic_forces"), run

    count = _write_h5(target, items(), first["potential"], first["integrator"], first["seed"], meta, forces,
                      compression)
    if seen["constrained"] is not None:
        from ..state import describe_constraints

        warnings.warn(f"{source}: the ASE constraints ({describe_constraints(seen['constrained'])}) are not kept: a "
                      "spinlat trajectory holds none, and a run started from it moves every atom", UserWarning,
                      stacklevel=3)  # the caller (+1: the keyword check's wrapper)
    if seen["stressed"]:
        warnings.warn(f"{source}: {seen['stressed']} of the {len(atoms_list)} frames carry a stress, which a spinlat "
                      "trajectory does not hold: it is not in the converted file (keep the source, or convert to "
                      ".extxyz with ase.io for a data set)", UserWarning, stacklevel=3)
    if not seen["magnetic"]:
        warnings.warn(f"{source} holds no magnetic moments (POSCAR, CIF and plain xyz files carry none): every "
                      f"atom of {target} is non-magnetic (moment 0); set moments with a run config's "
                      "structure.moments, or State.copy(moments=...)", UserWarning, stacklevel=3)
    return count


def _write_ovf_frames(target, traj, indices, source) -> int:
    """The frames ``indices`` of ``traj`` as the segments of an OVF 2.0 file (binary8, lossless;
    :func:`spinlat.io.write_ovf`): in Spirit's site order when the atoms are in ``unit.repeat``
    order (:func:`spinlat.io.ovf.repeat_of`), else in the trajectory's; a UserWarning says what
    OVF does not hold and how to read it back."""
    from .ovf import repeat_of, write_ovf

    states = [traj[i] for i in indices]
    repeat = repeat_of(states[0])
    try:
        write_ovf(target, states, repeat=repeat, comment=f"spinlat convert {Path(source).name}: frames "
                  f"{indices[0]}..{indices[-1]} ({len(indices)})")
    except ImportError as exc:
        raise InputError(f"cannot write {target}: spinlat writes OVF files with the ovf package (pip install ovf): "
                         f"{exc}") from None
    order = (f"rows in Spirit's site order of unit.repeat({repeat}): read it back with sl.io.read_ovf(path, state, "
             f"segment=k, repeat={repeat})" if repeat is not None else
             "rows in the trajectory's atom order: read it back with sl.io.read_ovf(path, state, segment=k)")
    warnings.warn(f"{target}: OVF holds the unit spin directions only (one segment per frame, {order}); the moment "
                  "magnitudes, positions, cell, velocities, energies and forces are not in it (.extxyz and .h5 keep "
                  "everything)", UserWarning, stacklevel=4)
    return len(indices)


@refuse_other_names()
def concatenate(sources, target, compression="gzip", overwrite=False) -> int:
    """Join spinlat HDF5 trajectories of one system into ``target`` (``spinlat convert A.h5 B.h5
    OUT.h5``): the frames of each source in the order given, each source's runs kept
    (:attr:`spinlat.io.Trajectory.runs`: frames from another potential, integrator, seed or
    metadata stay apart in ``spinlat analyze``). The first frame of a source that repeats the last
    frame written (the same step, time and State: a run restarted from another file's last frame
    into a new file) is written once; a source whose steps start over (not after the frames
    before it) gives a UserWarning. The integrator checkpoint is not copied (as for a conversion:
    a restart from the joined file starts its random stream afresh). Returns the number of frames written. InputError for fewer
    than 2 sources, sources of other atoms, a source that is not HDF5 or holds no frame, or an
    existing ``target`` without ``overwrite``; the target is replaced only once complete."""
    from .hdf5 import Trajectory, compression_filters

    paths = [Path(validation.path(p, "concatenate source")) for p in sources]
    target = Path(validation.path(target, "concatenate target"))
    compression_filters(compression)
    if len(paths) < 2:
        raise InputError(f"concatenate needs at least 2 trajectories, got {len(paths)}")
    for p in paths:
        validation.existing_file(p, "convert source", "convert source")
        if _kind(p, None) != "hdf5":
            raise InputError(f"joining trajectories: {p} is not a spinlat HDF5 trajectory (.h5); convert it first")
        if target.exists() and p.resolve() == target.resolve():
            raise InputError(f"joining trajectories: the target {target} is one of the sources")
    if target.exists() and not overwrite:
        raise InputError(f"{target} exists; pass --overwrite (overwrite=True) to replace it")
    with contextlib.ExitStack() as stack:  # each source opened once, for the checks and the copy
        opened = {}
        for p in paths:
            if p.resolve() not in opened:
                opened[p.resolve()] = stack.enter_context(Trajectory(p))
        trajs = [opened[p.resolve()] for p in paths]
        count = _concatenate(paths, trajs, target, compression)
    return count


def _concatenate(paths, trajs, target, compression) -> int:
    """:func:`concatenate` of the open trajectories ``trajs`` (of ``paths``) into ``target``."""
    numbers, head = trajs[0].array("numbers"), trajs[0].runs[0]
    skipped, backwards = [], []

    def items():
        last = None  # (step, time, State) of the last frame written
        for p, t in zip(paths, trajs):
            if len(t) == 0:
                raise InputError(f"joining trajectories: {p} holds no frame")
            if not np.array_equal(t.array("numbers"), numbers):
                raise InputError(f"joining trajectories: {p} holds other atoms ({t.n_atoms}, atomic numbers "
                                 f"{'differ' if t.n_atoms == len(numbers) else 'count'}) than {paths[0]} "
                                 f"({len(numbers)})")
            forces = "forces" in t.names
            starts = {r["first_frame"]: r for r in t.runs}
            pending = t.runs[0] if last is not None else None  # this source's first run begins
            for i in range(len(t)):
                state, scalars = t[i], t.scalars(i)
                if i == 0 and last is not None and (last[0], last[1]) == (scalars["step"], scalars["time"]) \
                        and _same_state(last[2], state):
                    skipped.append(p)
                    continue
                if i == 0 and last is not None and scalars["step"] <= last[0]:
                    backwards.append((str(p), scalars["step"], last[0]))
                run = starts.get(i) if i > 0 else None
                run, pending = run or pending, None
                yield (state, scalars, t.array("forces", frames=i) if forces else None,
                       t.array("magnetic_forces", frames=i) if forces else None,
                       {k: run[k] for k in ("potential", "integrator", "seed", "metadata")} if run else None)
                last = (scalars["step"], scalars["time"], state)

    meta = dict(head["metadata"])
    meta["converted_from"] = [str(p) for p in paths]
    # forces stored when any source has them (NaN rows for the frames of the others)
    forces = any("forces" in t.names for t in trajs)
    count = _write_h5(target, items(), head["potential"], head["integrator"], head["seed"], meta, forces, compression)
    if skipped:
        warnings.warn(f"the first frame of {', '.join(map(str, skipped))} repeats the last frame before it (a run "
                      "restarted from it): written once", UserWarning, stacklevel=3)
    for p, first, before in backwards:
        warnings.warn(f"{p} starts at step {first}, not after the step {before} of the frame before it: the steps and "
                      f"times of {target} go back there (a run started afresh rather than continued; analyse its "
                      "runs apart: spinlat analyze --run K)", UserWarning, stacklevel=3)
    return count


def _same_state(a, b) -> bool:
    return all(np.array_equal(getattr(a, k), getattr(b, k)) for k in ("positions", "cell", "spins", "moments",
                                                                       "velocities"))


def _run_header(info) -> dict:
    """The run description (potential, integrator, seed, metadata) that :func:`frame_atoms` puts
    into the ``info`` of the first frame of a run; empty values where a frame has none."""
    meta = {}
    if isinstance(info.get("spinlat_metadata"), str):
        try:
            meta = json.loads(info["spinlat_metadata"])
        except ValueError:
            meta = {}
    seed = info.get("spinlat_seed")
    seed = int(seed) if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool) else None
    return {"potential": str(info.get("spinlat_potential", "")), "integrator": str(info.get("spinlat_integrator", "")),
            "seed": seed, "metadata": meta if isinstance(meta, dict) else {}}


def _selected_runs(runs, indices) -> list[dict]:
    """The runs (:attr:`spinlat.io.Trajectory.runs`) of the frames ``indices`` of a trajectory,
    renumbered for a copy that holds just those frames, in that order: a run of which no frame is
    selected is left out; a run that starts again after frames of another (indices out of order)
    is listed again."""
    firsts = [r["first_frame"] for r in runs]
    out = []
    for k, i in enumerate(indices):
        run = runs[int(np.searchsorted(firsts, i, side="right")) - 1]
        if not out or out[-1][1] is not run:
            out.append((k, run))
    return [{**run, "first_frame": k} for k, run in out]


def _write_h5(target, items, potential, integrator, seed, metadata, forces, compression, runs=None) -> int:
    """Write the frames ``items`` into the trajectory ``target``, built beside it and renamed over it
    when complete: a frame that fails to convert leaves an existing target (replaced with
    ``overwrite=True``) as it was. ``runs``: the runs after the first (:attr:`Trajectory.runs
    <spinlat.io.Trajectory.runs>`, first frames counted in ``items``)."""
    from ..files import atomic_path

    with atomic_path(target, name="convert target") as tmp:
        count = _write_frames(tmp, items, potential, integrator, seed, metadata, forces, compression, runs)
        if not count:
            raise InputError(f"nothing to write to {target}: no frame selected")
    return count


def _write_frames(tmp, items, potential, integrator, seed, metadata, forces, compression, runs=None) -> int:
    from .hdf5 import TrajectoryWriter

    writer = None
    count = 0
    try:
        for state, scalars, f, h, *run in items:
            if writer is not None and run and run[0] is not None:  # a later run starts at this frame
                writer.begin_run(**run[0])
            if writer is None:
                writer = TrajectoryWriter(tmp, state, potential=potential, integrator=integrator,
                                          seed=seed if isinstance(seed, (int, np.integer)) else None,
                                          mode="w", store_forces=forces, metadata=metadata,
                                          compression=compression, flush_every=50, runs=runs or None,
                                          flush_seconds=None)  # a batch job: no live reader, fewer chunk copies
            writer.write(state, scalars["step"], scalars["time"], potential_energy=scalars["potential_energy"],
                         kinetic_energy=scalars.get("kinetic_energy"), temperature=scalars.get("temperature"),
                         total_energy=scalars.get("total_energy"), forces=f, magnetic_forces=h)
            count += 1
    finally:
        if writer is not None:
            writer.close()
    return count
