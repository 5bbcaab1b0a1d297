"""Every spinlat config in one place: the YAML reader, the typed schemas, and the builders.

Configs are YAML files (or dicts). They are validated before any work starts: an unknown key,
a missing key or a value of the wrong type raises :class:`~spinlat.errors.ConfigError` whose
message starts with the full key path (``integrator.dt``, ``potential[1].J1``,
``structure.moments.Fe``) and says what was expected. Types are strict: a bool is not a number
(``dt: true`` is refused), a string is not a number or a bool (``dt: "0.5"``,
``store_forces: "false"`` are refused). Numbers are read as YAML 1.2 writes them: ``1e-1``,
``2.2e0``, ``.5``, ``1_000``, ``0x1F``, ``.inf`` are numbers (PyYAML's YAML 1.1 rules would read
``1e-1`` as a string and ``010`` as 8); a float with an integral value (``steps: 1e5``) counts
as an integer. Duplicate keys are refused. All lengths Å, times fs, fields T, temperatures K,
moments μB, energies eV.

Run config (``spinlat run``; ``spinlat minimize`` and ``spinlat search`` read the same file and
their own sections):

.. code-block:: yaml

    structure:                       # a builder (ase.build.bulk) ...
      crystal: bcc                   #   ase.build.bulk crystal structure (bcc, fcc, sc, hcp, ...)
      element: Fe
      a: 2.8665                      #   Å (c for hcp); default: ASE's reference lattice constant
      cubic: true                    #   conventional cubic cell (default true)
      # ... or a file: the file's moments, spins and velocities are kept unless given below
      # file: relaxed.extxyz         #   any format ase.io.read reads, a spinlat trajectory (.h5),
      #                              #   or a magnetic CIF (.mcif, a .cif with moments: pymatgen)
      # index: -1                    #   frame of a multi-frame file (default: the last)
      # format: vasp                 #   ase.io format name, when the file name does not tell
      #                              #   (LAMMPS data files and spin dumps are recognised and read
      #                              #   with their spins, moments and units; format: lammps-data)
      # elements: [Fe, Ni]           #   LAMMPS files: element of each atom type, when the file
      #                              #   does not say (no element column, labels or known masses)
      # columns: {"c_outsp[1]": spx, "c_outsp[2]": spy, "c_outsp[3]": spz, "c_outsp[4]": sp}
      #                              #   LAMMPS dumps: renames of compute columns to spx spy spz
      #                              #   sp (and fmx fmy fmz), as `dump ... c_outsp[1] ...` writes them
      #                              #   (default for both: what a log.lammps beside the dump says)
      # constraints: ignore          #   ASE constraints in the file (FixAtoms, a POSCAR's selective
      #                              #   dynamics): refused by default, as spinlat's dynamics do not
      #                              #   apply them; ignore: drop them and let every atom move
      # prefer_moments: computed     #   ASE files holding computed moments (DFT results) and initial
      #                              #   ones (the DFT starting guess): computed (default) or initial
      repeat: [6, 6, 6]              # supercell: an integer or three (default 1)
      moments: 2.2                   # μB: a number or {element: μB} (elements not named get 0);
                                     #   default: the file's moments, or ASE's for the element
                                     #   (ase.build.bulk: Fe, Co, Ni); required when neither has
                                     #   any (POSCAR, CIF, plain xyz; 0 for a non-magnetic run)
      spins: random                  # random | file | [sx, sy, sz]; default: file when the file
                                     #   has magnetic moments or spin directions (an extxyz
                                     #   'spins' column), else random
      temperature: 100               # K: Maxwell-Boltzmann velocities (0: at rest); default:
                                     #   the file's velocities, or at rest
      rattle: 0.0                    # Å: Gaussian displacements (default 0)
      pbc: [true, true, false]       # periodic directions, one per cell vector (or one bool for
                                     #   all); default: the file's (a LAMMPS data file does not say:
                                     #   all, or x y for a 2D run whose log.lammps lies beside it),
                                     #   the builder's (all)
    potential:                       # one term or a list of terms, summed
      - {type: EAM, path: Fe_mm.eam.fs}
      - {type: BetheSlaterExchange, cutoff: 3.4, J1: 0.02726, J2: 0.2171, J3: 1.841}
      - {type: Zeeman, B: [0, 0, 1]}
    integrator: {type: SpinLatticeNVE, dt: 0.1}
    # non-local potentials (mMACE):  spin_step: implicit_midpoint (default; time-reversible) or
    #   explicit_midpoint; spin_tolerance: 1.0e-10; max_spin_iterations: 8;
    #   spin_solver: anderson (default), fixed_point or newton
    # potentials with moment magnitudes (SpinLatticeNVE and SpinLatticeLangevin):
    #   adiabatic_magnitudes: true (relax |m_i| every step); magnitude_tolerance: 1.0e-6 (eV/μB);
    #   max_magnitude_iterations: 100
    steps: 1000                      # total steps of the run (also the target of --restart)
    every: 10                        # steps between trajectory frames (default 10)
    seed: 0                          # structure randomness and the integrator's default seed
    output: runs/demo                # run directory (default runs/<config name>)
    progress: true                   # progress bar on a terminal, thermo lines in batch jobs (default true)
    thermo: 100                      # steps between thermo lines in the log (default: ~25 per run
                                     #   when no bar is shown; 0: none)
    store_forces: false              # forces and magnetic forces in the trajectory (default false)
    compression: gzip                # trajectory filter: gzip (default, every HDF5 tool reads it),
                                     #   a gzip level 0-9, lzf (faster, h5py only) or none
    flush_seconds: 1.0               # a frame this long after the last flush reaches the file at once, so
                                     #   readers of the live trajectory trail it by ~1 s (0: every frame)
    minimize: {spins: true, tmax: 1.0e-6}   # options of `spinlat minimize` (spinlat.minimize)
    search: {starts: 16, seed: 0}           # options of `spinlat search` (spinlat.search.ground_state)

The keys of each potential and integrator ``type`` are its constructor's parameters (see
:data:`POTENTIALS`, :data:`INTEGRATORS`); ``Heisenberg`` takes ``tb2j`` (a TB2J
``exchange.out``) and ``sites`` (``all`` or ``coupled``, :meth:`Heisenberg.from_tb2j`), ``MagneticMACE`` takes ``path``, ``device``, ``dtype``.
``Spirit``, ``UppASD`` and ``VAMPIRE`` take the code's input file as ``path`` (Spirit's
``input.cfg``, UppASD's ``inpsd.dat``, VAMPIRE's ``.UCF`` with ``mat``) and build its whole spin
Hamiltonian (:func:`spinlat.io.read_spirit_cfg`, :func:`~spinlat.io.read_uppasd`,
:func:`~spinlat.io.read_vampire`: exchange, DMI, anisotropies, field); ``drop`` lists the terms
spinlat has no term for (dipolar, biquadratic, ...) that the run leaves out on purpose (without
it such a term is an error), ``elements`` the element of each basis atom / type / material,
``interaction_unit`` (VAMPIRE) J or meV for a UCF written with ``exchange:meV-interaction-unit``.
Spirit's Hamiltonian is that of its simulated system (structure: the same ``input.cfg``);
UppASD's and VAMPIRE's apply to any supercell of their unit cell. Relative paths are
taken relative to the config file.

Train config (``spinlat train``): see :func:`check_train_config`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from . import units, validation
from .errors import ConfigError, InputError, SpinlatError
from .keywords import hint
from .options import element_mapping

# ====================================================================================== YAML
_INT_RE = re.compile(r"""^(?:[-+]?[0-9][0-9_]*
                        |0o[0-7_]+
                        |0x[0-9a-fA-F_]+)$""", re.X)
_FLOAT_RE = re.compile(r"""^(?:[-+]?(?:\.[0-9][0-9_]*|[0-9][0-9_]*(?:\.[0-9_]*)?)(?:[eE][-+]?[0-9]+)?
                          |[-+]?\.(?:inf|Inf|INF)
                          |\.(?:nan|NaN|NAN))$""", re.X)


def _yaml_loader():
    """A safe PyYAML loader reading numbers by the YAML 1.2 core schema and refusing duplicate keys."""
    import yaml

    int_tag, float_tag = "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"

    class Loader(yaml.SafeLoader):
        pass

    Loader.yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag not in (int_tag, float_tag)]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
    Loader.add_implicit_resolver(int_tag, _INT_RE, list("-+0123456789"))
    Loader.add_implicit_resolver(float_tag, _FLOAT_RE, list("-+0123456789."))

    def construct_int(loader, node):
        text = loader.construct_scalar(node).replace("_", "")
        if text.startswith(("0o", "0x")):
            return int(text[2:], 8 if text[1] == "o" else 16)
        return int(text)

    def construct_float(loader, node):
        text = loader.construct_scalar(node).replace("_", "")
        low = text.lower()
        if low.endswith(".inf"):
            return float("-inf") if low.startswith("-") else float("inf")
        if low == ".nan":
            return float("nan")
        return float(text)

    def construct_mapping(loader, node, deep=False):
        seen = {}  # the mapping's own keys (keys merged in with "<<" may be overridden)
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = loader.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise ConfigError(f"line {line}: duplicate key {key!r} (first on line {seen[key]})")
            if isinstance(key, (str, int, float, bool)):
                seen[key] = line
        return yaml.SafeLoader.construct_mapping(loader, node, deep)

    Loader.add_constructor(int_tag, construct_int)
    Loader.add_constructor(float_tag, construct_float)
    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    return Loader


def parse_yaml(text: str, source: str = "<string>"):
    """The data of a YAML document, with numbers read as YAML 1.2 writes them (``1e-1`` is a
    float) and duplicate keys refused. Raises ConfigError (with ``source`` and the line)."""
    import yaml

    try:
        return yaml.load(text, Loader=_yaml_loader())  # noqa: S506 - a SafeLoader subclass
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    except yaml.YAMLError as exc:
        msg = " ".join(str(exc).split())
        # `{c_outsp[1]: spx}`: inside { } or [ ], YAML reads a bracket as the start of a list
        hint = ("; inside { } a name with brackets must be quoted, e.g. {\"c_outsp[1]\": spx}"
                if "flow mapping" in msg and "but got '['" in msg else "")
        raise ConfigError(f"{source}: not valid YAML ({msg}){hint}") from None


def _require_file(path, key: str, what: str = "") -> None:
    """ConfigError naming ``key`` when ``path`` does not exist or is not a regular file (a
    directory given where a file belongs was reported as missing)."""
    p = Path(path)
    if not p.is_file():
        what = f"{what} " if what else ""
        if not p.exists():
            from . import data

            shipped = (f"; {p.name} is a file shipped with spinlat: give its path, {data.path(p.name)} here "
                       "(python -c \"import spinlat; print(spinlat.data.path('" + p.name + "'))\" prints it)"
                       if p.name in data.FILES else "")
            raise ConfigError(f"{key}: {what}{p} does not exist{shipped}")
        raise ConfigError(f"{key}: {what}{p} is {'a directory' if p.is_dir() else 'not a regular file'}, not a file")


def read_yaml(path) -> dict:
    """A YAML mapping from ``path`` (see :func:`parse_yaml`); ConfigError if the file is
    missing, unreadable, invalid or not a mapping."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {p} does not exist" if not p.exists() else f"config {p} is not a file")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {p} cannot be read ({exc})") from None
    cfg = parse_yaml(text, str(p))
    if not isinstance(cfg, dict):
        raise ConfigError(f"{p}: expected a mapping of keys at the top level, got {type(cfg).__name__}")
    return cfg


# ================================================================================ schemas
_REQUIRED = object()
_OMIT = object()  # optional key without a default: left out unless given


@dataclass(frozen=True)
class Key:
    """One config key: ``check(value, key_path)`` returns the value in normal form or raises
    InputError (turned into ConfigError); ``default`` (``_REQUIRED``: must be given; ``_OMIT``:
    left out when not given, so the callee's default applies); ``doc`` says what it is."""

    check: Callable[[Any, str], Any]
    default: Any = _OMIT
    doc: str = ""


def _opt(check):
    """``check`` that also accepts ``None`` (YAML ``null``)."""
    return lambda v, k: None if v is None else check(v, k)


def _number(unit=None, **kw):
    return lambda v, k: validation.number(v, k, unit=unit, **kw)


def _integer(minimum=None):
    return lambda v, k: validation.integer(v, k, minimum=minimum)


def _choice(*options):
    return lambda v, k: validation.choice(v, k, options)


def _low_memory(v, k):
    return v if isinstance(v, str) and v == "auto" else _boolean(v, k)


def _string(v, k):
    if not isinstance(v, str) or not v:
        raise InputError(f"{k}: expected a non-empty string, got {v!r}")
    return v


# checks that are validation functions as they are: (value, key path) -> value
_boolean, _path, _vector3 = validation.boolean, validation.path, validation.vector3


def _seed(v, k):
    """validation.seed, with an integral float (``seed: 1e3``) counting as an integer like every
    other integer of a config (module docstring)."""
    if isinstance(v, float) and v.is_integer() and v >= 0:
        v = int(v)
    return validation.seed(v, k)


def _eam_paths(v, k):
    """One EAM file, or a list of funcfl files (as :class:`spinlat.potentials.EAM` takes)."""
    return validation.paths(v, k) if isinstance(v, list) else validation.path(v, k)


def _eam_format(v, k):
    """An EAM format name as :class:`spinlat.potentials.EAM` takes it (its names and LAMMPS's)."""
    from .potentials.eam import FORMAT_ALIASES, FORMATS

    return validation.choice(v.lower() if isinstance(v, str) else v, k, FORMATS + tuple(FORMAT_ALIASES))


def _matrix33(v, k):
    return validation.real_array(v, k, (3, 3))


def _species_mapping(v, k, unit, nonnegative=False) -> dict:
    """A mapping {element: number} (keys: symbols or Z) with its keys made chemical symbols."""
    return element_mapping(lambda x, kk: validation.number(x, kk, unit=unit, nonnegative=nonnegative),
                           f"number ({unit})")(v, k)


def _species_number(unit, nonnegative=False):
    """A number, or a mapping {element: number} (symbols or Z; see :func:`_species_mapping`)."""
    def check(v, k):
        if isinstance(v, dict):
            return _species_mapping(v, k, unit, nonnegative)
        if not validation.is_real_number(v):
            raise InputError(f"{k}: expected a number or a mapping element → number ({unit}), got {v!r}")
        return validation.number(v, k, unit=unit, nonnegative=nonnegative)
    return check


def _drop(v, k):
    """The ``drop`` of a spin code's Hamiltonian: "all" or a list of term names."""
    if v == "all":
        return v
    items = v if isinstance(v, list) else [v]
    if not all(isinstance(x, str) and x for x in items):
        raise InputError(f"{k}: expected a list of term names or 'all', got {v!r}")
    return items


def _elements(v, k):
    """One element or a list of elements (symbols or Z)."""
    items = v if isinstance(v, list) else [v]
    if not items:
        raise InputError(f"{k}: expected an element or a list of elements, got an empty list")
    for n, e in enumerate(items):
        validation.atomic_number(e, f"{k}[{n}]" if isinstance(v, list) else k)
    return v


def _axis(v, k):
    """A 3-vector, or one 3-vector per atom."""
    a = validation.real_array(v, k)
    if a.shape != (3,) and not (a.ndim == 2 and a.shape[1] == 3 and len(a) >= 1):
        raise InputError(f"{k}: expected a 3-vector or a list of 3-vectors (one per atom), got shape {a.shape}")
    return a.tolist()


def _mapping(v, k):
    if not isinstance(v, dict):
        raise InputError(f"{k}: expected a mapping of keys, got {type(v).__name__} {v!r}")
    return v


def check_section(value, path: str, schema: dict, what: str = "") -> dict:
    """Check the mapping ``value`` found at key path ``path`` against ``schema`` (key → :class:`Key`).

    Returns a new dict with every value in normal form and the defaults filled in (keys whose
    default is ``_OMIT`` are left out when not given). Raises ConfigError naming the key:
    unknown keys (with the allowed ones), missing required keys, wrong values."""
    where = path or "config"
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a mapping{' of ' + what if what else ''}, got "
                          f"{type(value).__name__} {value!r}")
    unknown = [k for k in value if k not in schema]
    if unknown:
        raise ConfigError(f"{_join(path, unknown[0])}: unknown key{' for ' + what if what else ''}"
                          f"{hint(unknown[0], schema)}; expected one of {', '.join(sorted(map(str, schema)))}")
    out = {}
    for key, spec in schema.items():
        full = _join(path, key)
        if key in value:
            try:
                out[key] = spec.check(value[key], full)
            except ConfigError:
                raise
            except InputError as exc:
                raise ConfigError(str(exc)) from None
        elif spec.default is _REQUIRED:
            raise ConfigError(f"{full}: missing{' (' + spec.doc + ')' if spec.doc else ''}")
        elif spec.default is not _OMIT:
            out[key] = spec.default
    return out


def _join(path, key) -> str:
    return f"{path}.{key}" if path else str(key)


# ------------------------------------------------------------------------ run config schemas
_DT = Key(_number("fs", positive=True), _REQUIRED, "time step, fs")

#: integrator type → schema of its keys (the constructor's parameters)
_ADIABATIC = {
    "adiabatic_magnitudes": Key(_boolean, doc="relax |m_i| at fixed directions every step (potentials that "
                                              "depend on magnitudes; default false)"),
    "magnitude_tolerance": Key(_number("eV/μB", positive=True), doc="largest longitudinal field left by the "
                                                                     "relaxation, eV/μB (default 1e-6)"),
    "max_magnitude_iterations": Key(_integer(1), doc="L-BFGS iterations per relaxation (default 100)"),
}

INTEGRATORS: dict[str, dict[str, Key]] = {
    "SpinLatticeNVE": {
        "dt": _DT,
        "spin_step": Key(_choice("implicit_midpoint", "explicit_midpoint"),
                         doc="spin step of non-local potentials (mMACE; default implicit_midpoint)"),
        "spin_tolerance": Key(_number("dimensionless", positive=True),
                              doc="implicit spin step: estimated error of the spins (default 1e-10)"),
        "max_spin_iterations": Key(_integer(1), doc="implicit spin step: model calls per step at most (default 8)"),
        "spin_solver": Key(_choice("anderson", "fixed_point", "newton"),
                           doc="implicit spin step: Anderson-accelerated (default), plain fixed-point iteration, "
                               "or Newton-Krylov with field-Jacobian products (mMACE)"),
        **_ADIABATIC,
    },
    "SpinLatticeLangevin": {
        **_ADIABATIC,
        "dt": _DT,
        "temperature": Key(_number("K", nonnegative=True), _REQUIRED, "lattice bath temperature, K"),
        "friction": Key(_number("1/fs", nonnegative=True), _REQUIRED, "Langevin friction, 1/fs"),
        "damping": Key(_number("dimensionless Gilbert α", nonnegative=True), _REQUIRED, "Gilbert damping α"),
        "spin_temperature": Key(_opt(_number("K", nonnegative=True))),
        "longitudinal_damping": Key(_opt(_number("dimensionless", nonnegative=True))),
        "seed": Key(_seed),
    },
    "LLG": {
        "dt": _DT,
        "damping": Key(_number("dimensionless Gilbert α", nonnegative=True)),
        "temperature": Key(_number("K", nonnegative=True)),
        "solver": Key(_choice("sib", "depondt", "heun")),
        "seed": Key(_seed),
    },
    "MonteCarlo": {
        "temperature": Key(_number("K", nonnegative=True), _REQUIRED, "temperature, K"),
        "seed": Key(_seed),
        "overrelax": Key(_integer(0)),
        "cone": Key(_opt(_number("rad", positive=True, maximum=float(np.pi)))),
        "target_acceptance": Key(_number(positive=True, maximum=1.0)),
        "adapt": Key(_boolean),
    },
}

#: potential type → schema of its keys (``Heisenberg`` and ``MagneticMACE`` read files)
POTENTIALS: dict[str, dict[str, Key]] = {
    "EAM": {"path": Key(_eam_paths, _REQUIRED, "EAM file (LAMMPS setfl, Finnis-Sinclair or funcfl), or a list "
                                               "of funcfl files (one per element)"),
            "format": Key(_opt(_eam_format)),
            "low_memory": Key(_low_memory, doc="'auto' (default: no per-pair tables from 8 192 atoms), true "
                                                "(never: less memory) or false (always)")},
    "BetheSlaterExchange": {
        "cutoff": Key(_number("Å", positive=True), _REQUIRED, "cutoff, Å"),
        "J1": Key(_number("eV"), _REQUIRED, "J1, eV"),
        "J2": Key(_number("dimensionless"), _REQUIRED, "J2"),
        "J3": Key(_number("Å", positive=True), _REQUIRED, "J3, Å"),
        "offset": Key(_boolean),
        "elements": Key(_opt(_elements)),
    },
    "Heisenberg": {"tb2j": Key(_path, _REQUIRED, "TB2J exchange.out file"),
                   "sites": Key(_choice("all", "coupled"), "all", "all | coupled (atoms in a pair or anisotropy term)")},
    "Zeeman": {"B": Key(_vector3, _REQUIRED, "field [Bx, By, Bz], T"), "elements": Key(_opt(_elements))},
    "UniaxialAnisotropy": {"K": Key(_species_number("eV"), _REQUIRED, "anisotropy constant, eV"),
                           "axis": Key(_axis, _REQUIRED, "easy axis [x, y, z]")},
    "CubicAnisotropy": {"K1": Key(_species_number("eV"), _REQUIRED, "K1, eV"), "K2": Key(_species_number("eV")),
                        "axes": Key(_opt(_matrix33))},
    "Landau": {"a": Key(_species_number("eV/μB²"), _REQUIRED, "a, eV/μB²"), "b": Key(_species_number("eV/μB⁴")),
               "c": Key(_species_number("eV/μB⁶"))},
    "MagneticMACE": {"path": Key(_path, _REQUIRED, "model file written by MagneticMACE.save"),
                     "device": Key(_string), "dtype": Key(validation.float_dtype)},
    "Spirit": {"path": Key(_path, _REQUIRED, "Spirit input.cfg (spinlat.io.read_spirit_cfg)"),
               "drop": Key(_drop, (), "terms spinlat lacks to leave out: [ddi, pinning] or all"),
               "elements": Key(_opt(_elements))},
    "UppASD": {"path": Key(_path, _REQUIRED, "UppASD inpsd.dat (spinlat.io.read_uppasd)"),
               "drop": Key(_drop, (), "keywords of terms spinlat lacks to leave out: [bq, do_dip, ...] or all"),
               "elements": Key(_opt(_elements))},
    "VAMPIRE": {"path": Key(_path, _REQUIRED, "VAMPIRE .UCF file (spinlat.io.read_vampire)"),
                "mat": Key(_opt(_path), None, "material file (default: vampire.mat or the only .mat beside it)"),
                "interaction_unit": Key(_choice("J", "meV"), "J", "unit of the UCF's interaction values: J | meV"),
                "drop": Key(_drop, (), "terms spinlat lacks to leave out: [biquadratic, anisotropy, dmi, exchange] "
                                       "or all"),
                "elements": Key(_opt(_elements))},
}

_PATH_KEYS = {"EAM": "path", "Heisenberg": "tb2j", "MagneticMACE": "path", "Spirit": "path", "UppASD": "path",
              "VAMPIRE": "path"}   # one path or (EAM) a list


#: Å: copies repeated along a non-periodic direction further apart than this are separate systems
REPEAT_GAP = 5.0


def _repeat_gaps(st, reps) -> dict:
    """{direction: empty space (Å) between copies} for each non-periodic direction that ``reps``
    repeats and whose copies would lie more than ``REPEAT_GAP`` apart (a film's vacuum)."""
    out = {}
    for d in range(3):
        if reps[d] <= 1 or st.pbc[d] or not np.linalg.norm(st.cell[d]) > 0:
            continue
        others = [st.cell[e] for e in range(3) if e != d]
        normal = np.cross(*others)
        if not np.linalg.norm(normal) > 0:
            continue
        normal /= np.linalg.norm(normal)
        height = abs(float(st.cell[d] @ normal))
        along = st.positions @ normal
        gap = height - float(np.ptp(along)) if len(along) else height
        if gap > REPEAT_GAP:
            out[d] = gap
    return out


def _repeat(v, k):
    if isinstance(v, list):
        if len(v) != 3:
            raise InputError(f"{k}: expected a positive integer or three of them, got {v!r}")
        return [validation.integer(x, f"{k}[{n}]", minimum=1) for n, x in enumerate(v)]
    return [validation.integer(v, k, minimum=1)] * 3


def _lammps_elements(v, k):
    """The element of each LAMMPS atom type: a list (type 1 first) or {type: element}."""
    if isinstance(v, list) and v and all(isinstance(e, str) for e in v):
        return list(v)
    if isinstance(v, dict) and v and all(isinstance(t, int) and not isinstance(t, bool) and t >= 1
                                         and isinstance(e, str) for t, e in v.items()):
        return dict(v)
    raise ConfigError(f"{k}: expected the element of each LAMMPS atom type, a list [Fe, Ni] (type 1 first) or "
                      f"{{1: Fe, 2: Ni}}, got {v!r}")


def _dump_columns(v, k):
    """Renames of LAMMPS dump columns to the reader's names, e.g. {"c_outsp[1]": spx, ...}."""
    if isinstance(v, dict) and v and all(isinstance(a, str) and a and isinstance(b, str) and b for a, b in v.items()):
        return dict(v)
    raise ConfigError(f"{k}: expected a mapping from LAMMPS dump column names to spinlat's (e.g. "
                      f"{{\"c_outsp[1]\": spx, \"c_outsp[2]\": spy, \"c_outsp[3]\": spz, \"c_outsp[4]\": sp}}: "
                      f"quote names with brackets), got {v!r}")


def _spins(v, k):
    if isinstance(v, str):
        return validation.choice(v, k, ("random", "file"))
    a = validation.real_array(v, k) if isinstance(v, list) else None
    if a is None or a.shape != (3,):
        raise InputError(f"{k}: expected 'random', 'file' or a direction [sx, sy, sz], got {v!r}")
    if not np.linalg.norm(a) > 0:
        raise InputError(f"{k}: the direction {v!r} has zero length")
    return a.tolist()


STRUCTURE: dict[str, Key] = {
    "crystal": Key(_string, doc="ase.build.bulk crystal structure"),
    "element": Key(_string, doc="chemical symbol(s) for ase.build.bulk"),
    "a": Key(_number("Å", positive=True)),
    "c": Key(_number("Å", positive=True)),
    "cubic": Key(_boolean, True),
    "file": Key(_path),
    "index": Key(_integer()),
    "format": Key(_string),
    "elements": Key(_lammps_elements),
    "columns": Key(_dump_columns, doc='LAMMPS dump column renames, e.g. {"c_outsp[1]": spx}'),
    "repeat": Key(_repeat, [1, 1, 1]),
    "moments": Key(_species_number("μB", nonnegative=True)),
    "spins": Key(_spins),
    "constraints": Key(_choice("error", "ignore"), doc="ASE constraints of the file: error (default) | ignore"),
    "prefer_moments": Key(_choice("computed", "initial"), doc="ASE files with both: computed (default) | initial"),
    "temperature": Key(_number("K", nonnegative=True)),
    "rattle": Key(_number("Å", nonnegative=True), 0.0),
    "pbc": Key(lambda v, k: validation.pbc(v, k).tolist(),
               doc="periodic directions: true/false or three of them; default: the file's (the builder's: all)"),
}

MINIMIZE: dict[str, Key] = {
    "spins": Key(_boolean), "positions": Key(_boolean), "cell": Key(_boolean), "magnitudes": Key(_boolean),
    "tmax": Key(_number("eV", positive=True)), "fmax": Key(_number("eV/Å", positive=True)),
    "smax": Key(_number("eV/Å³", positive=True)), "hmax": Key(_number("eV/μB", positive=True)),
    "max_steps": Key(_integer(1)), "method": Key(_choice("lbfgs", "precession")), "memory": Key(_integer(1)),
    "compiled": Key(_opt(_boolean)),  # None/absent: the compiled L-BFGS kernel where it applies
}

_ANNEAL = {"t_start": Key(_number("K", positive=True)), "t_end": Key(_number("K", positive=True)),
           "stages": Key(_integer(1)), "sweeps": Key(_integer(1))}


def _start_cell(v, k):
    a = validation.real_array(v, k)
    if a.shape == (3,):
        return [validation.integer(x, f"{k}[{n}]", minimum=1) for n, x in enumerate(v)]
    if a.shape != (3, 3):
        raise InputError(f"{k}: expected three integers or a 3×3 cell (Å), got shape {a.shape}")
    return a.tolist()


SEARCH: dict[str, Key] = {
    "starts": Key(_integer(1)), "seed": Key(_seed),
    "anneal": Key(_opt(lambda v, k: check_section(v, k, _ANNEAL, "Monte Carlo annealing"))),
    "spin_rotations": Key(_opt(_boolean)), "energy_tol": Key(_number("eV/atom", positive=True)),
    "angle_tol": Key(_number("rad", positive=True)),
    "workers": Key(_opt(_integer(1))), "scheduler": Key(_opt(_string)),
    "start_cell": Key(_opt(_start_cell)), "symmetry": Key(_boolean),
    **MINIMIZE,  # passed on to spinlat.minimize
}


def _potential_list(v, k):
    terms = [v] if isinstance(v, dict) else v
    if not isinstance(terms, list) or not terms:
        raise InputError(f"{k}: expected a term {{type: ..., ...}} or a non-empty list of terms, got {v!r}")
    out = []
    for n, term in enumerate(terms):
        where = f"{k}[{n}]"
        if not isinstance(term, dict) or "type" not in term:
            raise InputError(f"{where}: expected a mapping with a 'type' key (one of {', '.join(POTENTIALS)}), "
                             f"got {term!r}")
        name = term["type"]
        if name not in POTENTIALS:
            raise InputError(f"{where}.type: unknown potential {name!r}; expected one of {', '.join(POTENTIALS)}")
        params = check_section({p: x for p, x in term.items() if p != "type"}, where, POTENTIALS[name], name)
        out.append({"type": name, **params})
    return out


def _integrator(v, k):
    ic = _mapping(v, k)
    if "type" not in ic:
        raise InputError(f"{k}.type: missing (one of {', '.join(INTEGRATORS)})")
    name = ic["type"]
    if name not in INTEGRATORS:
        raise InputError(f"{k}.type: unknown integrator {name!r}; expected one of {', '.join(INTEGRATORS)}")
    params = check_section({p: x for p, x in ic.items() if p != "type"}, k, INTEGRATORS[name], name)
    return {"type": name, **params}


def _compression(v, k):
    """A trajectory ``compression``: "gzip", "lzf", "none" / null, or a gzip level 0-9."""
    from .io.hdf5 import compression_filters

    if isinstance(v, bool) or not (v is None or isinstance(v, (str, int))):
        raise InputError(f"{k}: expected gzip, lzf, none or a gzip level 0-9, got {v!r}")
    if isinstance(v, str) and v.lower() == "none":
        v = None
    try:
        compression_filters(v)
    except InputError:
        raise InputError(f"{k}: expected gzip, lzf, none or a gzip level 0-9, got {v!r}") from None
    return v


RUN: dict[str, Key] = {
    "structure": Key(lambda v, k: check_section(v, k, STRUCTURE, "the structure"), _REQUIRED,
                     "the structure: a builder or a file"),
    "potential": Key(_potential_list, _REQUIRED, "a list of potential terms"),
    "integrator": Key(_integrator, doc="{type: ..., dt: ...}"),
    "steps": Key(_integer(0), doc="number of steps"),
    "every": Key(_integer(1), 10),
    "seed": Key(_seed),
    "output": Key(_path),
    "progress": Key(_boolean, True),
    "thermo": Key(_opt(_integer(0)), None, "steps between thermo lines (0: none; default ~25 per run in batch jobs)"),
    "store_forces": Key(_boolean, False),
    "compression": Key(_compression, "gzip", "trajectory compression: gzip, a gzip level 0-9, lzf or none"),
    "flush_seconds": Key(_opt(_number("s", nonnegative=True)), 1.0,
                         "a frame written this long after the trajectory's last flush is flushed at once (0: every "
                         "frame; null: every 10 frames only), so programs reading the live file trail it by ~1 s"),
    "minimize": Key(lambda v, k: check_section(v, k, MINIMIZE, "spinlat.minimize options")),
    "search": Key(lambda v, k: check_section(v, k, SEARCH, "spinlat.search.ground_state options")),
}


# ================================================================================ run configs
def load(path_or_dict, *, structure: bool = True) -> dict:
    """A run config (YAML path, or a dict) checked against :data:`RUN` and in normal form:
    every key present with its type checked, defaults filled in, ``_base`` = the directory
    relative paths are taken from (the config's, or the working directory for a dict).
    ``structure=False``: the ``structure`` section is optional (commands that take their
    states from elsewhere, such as ``spinlat gneb``). Raises ConfigError naming the first bad key."""
    if isinstance(path_or_dict, dict):
        raw, base = dict(path_or_dict), Path(path_or_dict.get("_base") or Path.cwd())
        raw.pop("_base", None)
        raw.pop("_checked", None)
    else:
        raw, base = read_yaml(path_or_dict), Path(path_or_dict).resolve().parent
    schema = RUN if structure else {**RUN, "structure": Key(RUN["structure"].check, doc=RUN["structure"].doc)}
    cfg = check_section(raw, "", schema, "a run config")
    cfg["_base"] = str(base)
    cfg["_checked"] = True
    return cfg


def _loaded(cfg) -> dict:
    """``cfg`` if :func:`load` made it, else ``load(cfg)``."""
    return cfg if cfg.get("_checked") is True else load(cfg)


def _resolve(base, p) -> Path:
    q = Path(p).expanduser()
    return q if q.is_absolute() else Path(base) / q


def _read_lammps(p, kind, index, elements, key, columns=None, pbc=None):
    """The State of a LAMMPS data file or frame ``index`` of a dump, through spinlat's readers
    (spins, moments, metal units converted; :mod:`spinlat.io.lammps_read`); ``pbc`` given: the
    readers take it instead of guessing a 2D run."""
    from .io import read_lammps_data, read_lammps_dump

    try:
        if kind == "data":
            if columns is not None:
                raise ConfigError(f"{key.rsplit('.', 1)[0]}.columns: only used with LAMMPS dump files, and {p} is a "
                                  "LAMMPS data file")
            if index not in (0, -1):
                raise ConfigError(f"{key}: frame index {index} is out of range for {p} (a LAMMPS data file "
                                  "holds one structure)")
            return read_lammps_data(p, elements=elements, pbc=pbc)
        frames = read_lammps_dump(p, elements=elements, columns=columns, pbc=pbc)
        try:
            return frames[index]
        except IndexError:
            raise ConfigError(f"{key}: frame index {index} is out of range for {p} ({len(frames)} frames)") from None
    except (SpinlatError, OSError) as exc:
        if isinstance(exc, ConfigError):
            raise
        option = getattr(exc, "option", None)  # the reader's option that resolves it (errors.needs_option)
        hint = " (structure.elements names the element of each atom type, type 1 first)" \
            if option == "elements" and elements is None else ""
        if option == "columns" and columns is None:
            hint += " (structure.columns renames dump columns, e.g. {\"c_outsp[1]\": spx, ...})"
        raise ConfigError(f"{key}: cannot read LAMMPS {kind} file {p} ({exc}){hint}") from None


def read_structure(path, index=-1, format=None, key="structure.file", elements=None, columns=None,
                   constraints="error", prefer_moments="computed", pbc=None):
    """The State of frame ``index`` of a structure file, keeping its magnetic moments, spins
    and velocities: a spinlat HDF5 trajectory (``.h5``/``.hdf5``), a LAMMPS data file or spin
    dump (recognised by content or ``format: lammps-data`` / ``lammps-dump-text``; read by
    :func:`spinlat.io.read_lammps_data` / :func:`spinlat.io.read_lammps_dump`, with ``elements``
    the element of each atom type when the file does not say and ``columns`` renames of dump
    columns such as ``{"c_outsp[1]": "spx"}``), or any file ``ase.io.read``
    reads (extxyz, POSCAR, CIF, OUTCAR, ...; a magnetic CIF — ``.mcif``, or a ``.cif`` with
    moments or magnetic symmetry — through pymatgen, :func:`spinlat.io.read_magnetic_cif`; a
    Spirit input file — a ``.cfg`` with Spirit's keywords, or ``format: spirit`` — as its
    simulated system with moments mu_s, an UppASD ``inpsd.dat`` (``format: uppasd``) and a
    VAMPIRE ``.UCF`` (``format: vampire``), :func:`spinlat.io.codes.read_code_structure`;
    moments from initial magmoms, a ``magmoms``
    column or the calculator results, see :meth:`spinlat.State.from_ase`; ``constraints``
    "error" refuses ASE constraints on the atoms, "ignore" drops them; ``prefer_moments``
    "computed" or "initial" when the file has both). OVF files hold
    spins only, no atoms (:func:`spinlat.io.read_ovf`). ``pbc`` (one bool or three): the periodic
    directions of the State, whatever the file says (a LAMMPS data file cannot say; ASE formats
    and trajectories can); None: the file's. Raises ConfigError naming ``key``."""
    st = _read_structure(path, index, format, key, elements, columns, constraints, prefer_moments, pbc)
    pbc_key = key[:-len(".file")] + ".pbc" if key.endswith(".file") else key + ".pbc"
    return st if pbc is None else with_pbc(st, pbc, pbc_key)


def with_pbc(state, pbc, key="structure.pbc"):
    """``state`` with the periodic directions ``pbc`` (one bool or three); ConfigError naming
    ``key`` when a direction made periodic has no cell vector or its images overlap atoms."""
    try:
        pbc = validation.pbc(pbc, key)
        return state if np.array_equal(pbc, state.pbc) else state.copy(pbc=pbc, validate=True)
    except InputError as exc:
        raise ConfigError(f"{key}: {exc}") from None


def _read_structure(path, index, format, key, elements, columns, constraints, prefer_moments, pbc):
    from .state import State

    p = Path(path)
    _require_file(p, key)
    if p.suffix.lower() == ".ovf" or format == "ovf":
        raise ConfigError(f"{key}: {p} is an OVF file, which holds spin directions but no atoms: give the "
                          "structure (a file or a builder) and read the spins in Python with spinlat.io.read_ovf")
    from .io.lammps_read import lammps_file_kind

    kind = lammps_file_kind(p, format)
    if kind is not None:
        return _read_lammps(p, kind, index, elements, key, columns, pbc)
    if elements is not None:
        raise ConfigError(f"{key.rsplit('.', 1)[0]}.elements: only used with LAMMPS data and dump files")
    if columns is not None:
        raise ConfigError(f"{key.rsplit('.', 1)[0]}.columns: only used with LAMMPS dump files")
    if p.suffix.lower() in (".h5", ".hdf5") and format is None:
        from .io import Trajectory

        try:
            with Trajectory(str(p)) as traj:
                if len(traj) == 0:
                    raise ConfigError(f"{key}: trajectory {p} holds no frame")
                return traj[index]
        except IndexError:
            raise ConfigError(f"{key}: frame index {index} is out of range for {p}") from None
        except (SpinlatError, OSError) as exc:
            if isinstance(exc, ConfigError):
                raise
            raise ConfigError(f"{key}: cannot read {p} ({exc})") from None
    from .io.pymatgen import is_magnetic_cif, read_magnetic_cif
    from .io.codes import code_format, read_code_structure

    if code_format(p, format):  # Spirit, UppASD, VAMPIRE inputs (ASE takes a .cfg for AtomEye's)
        if index not in (-1, 0):
            raise ConfigError(f"{key}: {p} is a {code_format(p, format)} input file, which holds one structure "
                              f"(frame {index} asked)")
        try:
            return read_code_structure(p, format)
        except SpinlatError as exc:
            raise ConfigError(f"{key}: {exc}") from None
    if is_magnetic_cif(p, format):
        # moments and magnetic symmetry, which ASE's CIF reader skips (it gave the asymmetric
        # unit's atoms, without moments)
        try:
            return read_magnetic_cif(p, index)
        except ImportError as exc:
            raise ConfigError(f"{key}: {p} is a magnetic CIF, which spinlat reads with pymatgen: {exc}") from None
        except SpinlatError as exc:
            raise ConfigError(f"{key}: {exc}") from None
    from ase.io import read

    try:
        atoms = read(p, index=index, format=format)
    except (IndexError, StopIteration):
        raise ConfigError(f"{key}: frame index {index} is out of range for {p}") from None
    except Exception as exc:  # noqa: BLE001 - ASE readers raise many types
        raise ConfigError(f"{key}: cannot read {p} ({type(exc).__name__}: {exc})") from None
    from .io.conversion import drop_initial_guesses

    drop_initial_guesses([atoms], p, format)
    if constraints == "error" and atoms.constraints:
        from .state import describe_constraints

        raise ConfigError(f"{key}: {p} carries ASE constraints ({describe_constraints(atoms)}), which spinlat's "
                          f"dynamics do not apply: set {key.rsplit('.', 1)[0]}.constraints: ignore to run with every "
                          "atom free, or remove them from the file")
    try:
        # the file's format is known: drop_initial_guesses above dropped what is not moments
        return State.from_ase(atoms, constraints="ignore", prefer_moments=prefer_moments, initial_fractions="keep")
    except InputError as exc:
        raise ConfigError(f"{key}: {p} holds an unusable structure ({exc})") from None


def _is_spinlat_trajectory(sc) -> bool:
    """Whether ``structure`` reads a spinlat HDF5 trajectory (which stores every moment, zeros included)."""
    return "file" in sc and sc.get("format") is None and Path(sc["file"]).suffix.lower() in (".h5", ".hdf5")


def build_structure(cfg):
    """The State described by ``cfg["structure"]`` (see the module docstring)."""
    from .state import State

    cfg = _loaded(cfg)
    sc = cfg["structure"]
    rng = np.random.default_rng(cfg.get("seed") or 0)
    builder = [k for k in ("crystal", "element", "a", "c") if k in sc]
    if "file" in sc:
        if builder:
            raise ConfigError(f"structure.{builder[0]}: not used with structure.file (give a file or a builder)")
        st = read_structure(_resolve(cfg["_base"], sc["file"]), sc.get("index", -1), sc.get("format"),
                            elements=sc.get("elements"), columns=sc.get("columns"),
                            constraints=sc.get("constraints", "error"),
                            prefer_moments=sc.get("prefer_moments", "computed"), pbc=sc.get("pbc"))
        file_magnetic = bool(np.any(st.moments > 0))
        # spin directions of a file without moments (an extxyz 'spins' column, a LAMMPS file
        # with sp = 0): kept when structure.moments gives the moments
        file_spins = file_magnetic or bool(np.any(st.spins != [0.0, 0.0, 1.0]))
    else:
        for k in ("index", "format", "elements", "columns", "constraints", "prefer_moments"):
            if k in sc:
                raise ConfigError(f"structure.{k}: only used with structure.file")
        if "element" not in sc:
            raise ConfigError("structure: give a file (structure.file) or a builder (structure.element, "
                              "structure.crystal, structure.a)")
        from ase.build import bulk

        kw = {k: sc[k] for k in ("a", "c") if k in sc}
        try:
            atoms = bulk(sc["element"], sc.get("crystal"), cubic=sc["cubic"], **kw)
        except Exception as exc:  # noqa: BLE001 - ase.build.bulk raises many types
            raise ConfigError(f"structure: ase.build.bulk cannot build crystal={sc.get('crystal')!r} "
                              f"element={sc['element']!r} ({exc})") from None
        st = State.from_ase(atoms, initial_fractions="keep")
        if "pbc" in sc:
            st = with_pbc(st, sc["pbc"])
        file_magnetic = file_spins = False
    gaps = _repeat_gaps(st, sc["repeat"])
    if gaps:
        hint = [1 if d in gaps else n for d, n in enumerate(sc["repeat"])]
        where = ", ".join(f"{d} ({g:.1f} Å of vacuum)" for d, g in gaps.items())
        raise ConfigError(f"structure.repeat: {sc['repeat']} repeats the structure along its non-periodic "
                          f"direction {where}, which stacks separate copies (films apart, not a thicker one); "
                          f"use 1 there, e.g. repeat: {hint}")
    st = st.repeat(sc["repeat"])
    if "temperature" in sc:
        # Maxwell-Boltzmann: each velocity component normal with variance k_B T / m
        # (at 0 K no numbers are drawn, so the spins drawn next do not depend on it)
        sigma = np.sqrt(units.K_B * sc["temperature"] / (st.masses * units.AMU_A2_PER_FS2_IN_EV))
        v = rng.standard_normal((len(st), 3)) * sigma[:, None] if sc["temperature"] > 0 else np.zeros((len(st), 3))
        st = st.copy(velocities=v)
    if sc["rattle"] > 0:
        st = st.copy(positions=st.positions + rng.normal(0, sc["rattle"], st.positions.shape))
    mom = sc.get("moments")
    if isinstance(mom, dict):  # keys are symbols (see _species_mapping)
        present = set(st.symbols)
        for el in mom:
            if el not in present:
                raise ConfigError(f"structure.moments.{el}: the structure has no {el} (it holds "
                                  f"{', '.join(sorted(present))})")
        st = st.copy(moments=np.array([mom.get(s, 0.0) for s in st.symbols]))
    elif mom is not None:
        st = st.copy(moments=np.full(len(st), mom))
    spins = sc.get("spins", "file" if file_spins else "random")
    if isinstance(spins, str) and spins == "file":
        if "file" not in sc:
            raise ConfigError("structure.spins: 'file' needs structure.file")
        if not file_spins:
            raise ConfigError(f"structure.spins: 'file', but {sc['file']} holds no magnetic moments nor spin "
                              "directions")
    elif isinstance(spins, str):
        st = st.copy(spins=rng.normal(size=(len(st), 3)))
    else:
        st = st.copy(spins=np.tile(np.asarray(spins, dtype=float), (len(st), 1)))
    if mom is None and not np.any(st.moments > 0) and not _is_spinlat_trajectory(sc):
        # POSCAR, CIF, plain xyz and ase.build.bulk of most elements carry no moments: never
        # turn a magnetic material into a non-magnetic one without being told
        source = f"{sc['file']} holds" if "file" in sc else f"ase.build.bulk gives {sc['element']}"
        raise ConfigError(f"structure.moments: missing, and {source} no magnetic moments (POSCAR, CIF and "
                          "plain xyz files carry none): give structure.moments in μB (a number, or "
                          "{element: μB}; 0 for a non-magnetic run)")
    return st


def _construct(cls, params, where):
    try:
        return cls(**params)
    except SpinlatError as exc:
        raise ConfigError(f"{where} ({cls.__name__}): {exc}") from None


def _term_files(cfg, n) -> dict:
    """{"potential[n].key" or "potential[n].key[k]": absolute Path} of the files term ``n`` reads,
    each checked to exist (ConfigError naming the key)."""
    term = cfg["potential"][n]
    key = _PATH_KEYS.get(term["type"])
    if key is None:
        return {}
    given = term[key]
    out = {}
    for k, p in enumerate(given if isinstance(given, list) else [given]):
        label = f"potential[{n}].{key}{f'[{k}]' if isinstance(given, list) else ''}"
        out[label] = _resolve(cfg["_base"], p)
        _require_file(out[label], label)
    if term["type"] in _CODE_READERS:  # the files the code's input names (posfile, jfile, pairs, .mat, ...)
        from .io import codes

        label = f"potential[{n}].path"
        mat = term.get("mat")
        try:
            extra = codes.code_input_files(term["type"].lower(), out[label],
                                           mat=None if mat is None else _resolve(cfg["_base"], mat))
        except SpinlatError as exc:
            raise ConfigError(f"{label}: {exc}") from None
        for p in extra[1:]:
            out[f"{label} ({p.name})"] = p
    return out


def potential_files(cfg) -> dict:
    """The files the potential of a run config reads (EAM tables, TB2J files, mMACE models):
    ``{"potential[n].path": absolute Path, ...}`` keyed as errors name them. Raises ConfigError
    naming the key of a file that does not exist."""
    cfg = _loaded(cfg)
    out = {}
    for n in range(len(cfg["potential"])):
        out.update(_term_files(cfg, n))
    return out


def build_potential(cfg):
    """The potential stack of ``cfg["potential"]`` (a list of terms, or one term)."""
    from . import potentials

    cfg = _loaded(cfg)
    pot = None
    for n, term in enumerate(cfg["potential"]):
        where = f"potential[{n}]"
        term = dict(term)
        name = term.pop("type")
        if name in _PATH_KEYS:
            key = _PATH_KEYS[name]
            files = [str(f) for f in _term_files(cfg, n).values()]
            term[key] = files if isinstance(term[key], list) else files[0]
        if name == "Heisenberg":
            try:
                t = potentials.Heisenberg.from_tb2j(term["tb2j"], sites=term.get("sites", "all"))
            except SpinlatError as exc:
                raise ConfigError(f"{where}.tb2j: {exc}") from None
        elif name in _CODE_READERS:
            t = _code_hamiltonian(name, term, where, cfg["_base"])
        elif name == "MagneticMACE":
            try:
                t = potentials.MagneticMACE.load(term.pop("path"), **term)
            except SpinlatError as exc:
                raise ConfigError(f"{where}.path: {exc}") from None
        else:
            t = _construct(getattr(potentials, name), term, where)
        pot = t if pot is None else pot + t
    return pot


#: spin-code Hamiltonian potential types → their reader in spinlat.io
_CODE_READERS = {"Spirit": "read_spirit_cfg", "UppASD": "read_uppasd", "VAMPIRE": "read_vampire"}


def _code_hamiltonian(name, term, where, base):
    """The potential of a Spirit, UppASD or VAMPIRE input file (the reader's second result; read
    once with the structure when that is the same file, :func:`spinlat.io.codes.read_code`)."""
    from .io import codes

    kind = name.lower()
    kw = {"elements": term.get("elements")}
    if "interaction_unit" in term:
        kw["interaction_unit"] = term["interaction_unit"]
    if term.get("mat") is not None:
        kw["mat"] = str(_resolve(base, term["mat"]))
        _require_file(kw["mat"], f"{where}.mat")
    drop = term.get("drop", ())
    try:
        codes.check_drop(kind, drop)
    except InputError as exc:
        raise ConfigError(f"{where}.drop: {exc}") from None
    try:
        return codes.read_code(kind, term["path"], drop=drop, **kw)[1]
    except SpinlatError as exc:  # an error an option fixes names it (errors.needs_option); else the file's
        raise ConfigError(f"{where}.{getattr(exc, 'option', None) or 'path'}: {exc}") from None


def build_integrator(cfg):
    """The integrator of ``cfg["integrator"]``; the top-level ``seed`` is its seed unless the
    integrator section gives one."""
    from . import integrators

    cfg = _loaded(cfg)
    if cfg.get("integrator") is None:
        raise ConfigError("integrator: missing ({type: ..., dt: ...}; one of " + ", ".join(INTEGRATORS) + ")")
    params = dict(cfg["integrator"])
    name = params.pop("type")
    if "seed" in INTEGRATORS[name] and "seed" not in params and cfg.get("seed") is not None:
        params["seed"] = cfg["seed"]
    return _construct(getattr(integrators, name), params, "integrator")


def check_run(cfg):
    """``(steps, every)`` of a run config; ConfigError if ``steps`` is missing."""
    cfg = _loaded(cfg)
    if cfg.get("steps") is None:
        raise ConfigError("steps: missing (number of steps of the run)")
    return cfg["steps"], cfg["every"]


def section_options(cfg, section: str) -> dict:
    """The checked options of the ``minimize`` or ``search`` section (``{}`` if absent)."""
    return dict(_loaded(cfg).get(section) or {})


# ============================================================================== train config
_TRAIN_TOP = {"train": "dataset (a file ase.io.read reads, a list of them, or {teacher: {...}})", "valid": "dataset",
              "test": "dataset",
              "model": "mapping of soc and model hyperparameters", "training": "mapping of training options",
              "output": "path of the model file to write"}

_TEACHER = {"system": Key(_string, _REQUIRED, "one of spinlat.training.teacher.SYSTEMS"),
            "n_configs": Key(_integer(1), _REQUIRED, "number of configurations"),
            "seed": Key(_seed, _REQUIRED, "random seed"), "soc": Key(_boolean),
            "max_displacement": Key(_number("Å", nonnegative=True)),
            "max_strain": Key(_number(nonnegative=True)), "near_zero_fraction": Key(_number(nonnegative=True))}


def _dataset_spec(value, key, base: Path):
    if isinstance(value, str):
        return str(_resolve(base, value))
    if isinstance(value, list):  # several files (one per DFT run, say), read in order and joined
        if not value or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{key}: a list of data-set files must be a non-empty list of paths, got {value!r}")
        return [str(_resolve(base, v)) for v in value]
    if isinstance(value, dict):
        if set(value) != {"teacher"}:
            raise ConfigError(f"{key}: expected an extxyz path or {{teacher: {{system, n_configs, seed}}}}, got keys "
                              f"{sorted(value)}")
        spec = check_section(value["teacher"], f"{key}.teacher", _TEACHER, "a teacher data set")
        from .training.teacher import SYSTEMS

        if spec["system"] not in SYSTEMS:
            raise ConfigError(f"{key}.teacher.system: expected one of {list(SYSTEMS)}, got {spec['system']!r}")
        return {"teacher": spec}
    raise ConfigError(f"{key}: expected a data-set file (extxyz, OUTCAR, ...), a list of them or {{teacher: {{...}}}}, "
                      f"got {type(value).__name__}")


def check_train_config(cfg: dict, base: Path = Path(".")) -> dict:
    """Validate a ``spinlat train`` config (a dict); returns the normalised config (paths made
    absolute relative to ``base``). Raises ConfigError naming the bad key and what was expected.
    The ``model:`` keys are those of :class:`spinlat.potentials.mmace.hyperparameters.Hyperparameters`
    (but ``elements``, which the data give), the ``training:`` keys those of
    :class:`spinlat.training.options.TrainingOptions` (loss weights ``energy_weight``,
    ``forces_weight``, ``magnetic_forces_weight``, ``stress_weight``; ``seed``, ``max_minutes``,
    ``init_from`` a model file): each checked there, with its type, default and range.

    .. code-block:: yaml

        train: data/train.extxyz            # or a list [run1/OUTCAR, run2/OUTCAR] (joined in order), or
                                            # {teacher: {system: Fe, n_configs: 200, seed: 0, soc: true}}
        valid: data/valid.extxyz            # optional (default: a split of train)
        test: {teacher: {system: Fe, n_configs: 20, seed: 99}}   # optional, evaluated at the end
        model:                              # soc + mMACE hyperparameters (mace-torch names)
          soc: true
          r_max: 4.0
          hidden_irreps: 16x0e+16x1o
        training:                           # options of spinlat.training.train
          epochs: 100
          seed: 0
          energy_weight: 1                  # loss weights (see spinlat.training.loss)
          forces_weight: 10
          init_from: pretrained.mmace       # optional: fine-tune
        output: model.mmace                 # the trained model; metrics go to model.metrics.json

    Training checkpoints go to ``<output>.checkpoints/`` unless ``training.checkpoint_dir`` is
    given (rerunning the same command resumes from there).
    """
    if not isinstance(cfg, dict):
        raise ConfigError(f"train config: expected a mapping at the top level, got {type(cfg).__name__}")
    for key in cfg:
        if key not in _TRAIN_TOP:
            raise ConfigError(f"{key}: unknown key in train config; expected one of {sorted(_TRAIN_TOP)}")
    for key in ("train", "output"):
        if key not in cfg:
            raise ConfigError(f"{key}: missing from train config ({_TRAIN_TOP[key]})")
    out = {"train": _dataset_spec(cfg["train"], "train", base)}
    for key in ("valid", "test"):
        if cfg.get(key) is not None:
            out[key] = _dataset_spec(cfg[key], key, base)
    try:
        out["output"] = str(_resolve(base, validation.path(cfg["output"], "output")))
    except InputError as exc:
        raise ConfigError(str(exc)) from None
    from .potentials.mmace.hyperparameters import Hyperparameters
    from .training.options import TrainingOptions

    out["model"] = Hyperparameters.check_values(cfg.get("model") or {}, "model.", ConfigError,
                                                "soc and mMACE hyperparameters", exclude=("elements",))
    training = TrainingOptions.check_values(cfg.get("training") or {}, "training.", ConfigError, "training options")
    for k in ("init_from", "checkpoint_dir", "cache_dir"):
        if isinstance(training.get(k), str):
            training[k] = str(_resolve(base, training[k]))
    training.setdefault("checkpoint_dir", out["output"] + ".checkpoints")
    if "init_from" in training:
        _require_file(training["init_from"], "training.init_from", "model file")
    out["training"] = training
    return out


# ------------------------------------------------------------------------------- gneb
#: keys of the gneb: section → (type, what is expected)
_GNEB_KEYS = {"initial": "a state: file path, {file, index, pbc} or {search, rank}",
         "final": "a state: file path, {file, index, pbc} or {search, rank}",
         "images": int, "climbing": bool, "spins": bool, "positions": bool, "magnitudes": bool,
         "tol": "a positive number or {spins, positions, magnitudes}", "max_iterations": int,
         "spring_constant": float, "weights": "{positions: rad/Å, magnitudes: rad/μB}",
         "method": "auto, lbfgs or fire", "noise": float, "relax_endpoints": bool,
         "path": "a path.h5 of an earlier gneb run", "climb_after": float, "memory": int,
         "max_step": "{spins: rad, positions: Å, magnitudes: μB}", "saddle_modes": int}


def _gneb_abs(base, p):
    q = Path(p)
    return str(q if q.is_absolute() else Path(base) / q)


def _gneb_state_spec(value, key, base):
    if isinstance(value, str):
        return {"file": _gneb_abs(base, value), "index": 0}
    if isinstance(value, dict) and set(value) <= {"file", "index", "pbc"} and "file" in value:
        idx = value.get("index", 0)
        if not isinstance(idx, int) or isinstance(idx, bool):
            raise ConfigError(f"gneb.{key}.index: expected an integer frame index, got {idx!r}")
        out = {"file": _gneb_abs(base, value["file"]), "index": idx}
        if "pbc" in value:
            try:
                out["pbc"] = validation.pbc(value["pbc"], f"gneb.{key}.pbc").tolist()
            except InputError as exc:
                raise ConfigError(str(exc)) from None
        return out
    if isinstance(value, dict) and set(value) <= {"search", "rank"} and "search" in value:
        rank = value.get("rank", 0)
        if not isinstance(rank, int) or isinstance(rank, bool) or rank < 0:
            raise ConfigError(f"gneb.{key}.rank: expected a non-negative integer (0 = lowest minimum), got {rank!r}")
        p = Path(_gneb_abs(base, value["search"]))
        return {"file": str(p / "minima.extxyz" if p.is_dir() else p), "index": rank, "rank": True}
    raise ConfigError(f"gneb.{key}: expected {_GNEB_KEYS[key]}, got {value!r}")


def check_gneb_config(cfg: dict, base=".") -> dict:
    """Validate the ``gneb:`` section of a config (the dict of the whole config); returns the
    normalised section: paths absolute (relative ones are taken from ``base``), endpoints as
    ``{"file", "index"}``, every option checked for its type. Raises ConfigError naming the key."""
    sec = cfg.get("gneb")
    if not isinstance(sec, dict):
        raise ConfigError("gneb: missing or not a mapping (the section with initial, final and the GNEB options)")
    unknown = set(sec) - set(_GNEB_KEYS)
    if unknown:
        first = sorted(unknown)[0]
        raise ConfigError(f"gneb: unknown key(s) {sorted(unknown)}{hint(first, _GNEB_KEYS)}; expected some of "
                          f"{sorted(_GNEB_KEYS)}")
    out = {}
    for key in ("initial", "final"):
        if key not in sec and "path" not in sec:
            raise ConfigError(f"gneb.{key}: missing ({_GNEB_KEYS[key]})")
        if key in sec:
            out[key] = _gneb_state_spec(sec[key], key, base)
    for key, kind in _GNEB_KEYS.items():
        if key not in sec or key in ("initial", "final"):
            continue
        v = sec[key]
        if kind is bool and not isinstance(v, bool):
            raise ConfigError(f"gneb.{key}: expected true or false, got {v!r}")
        if kind is int and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
            raise ConfigError(f"gneb.{key}: expected a positive integer, got {v!r}")
        if kind is float and (not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0):
            raise ConfigError(f"gneb.{key}: expected a non-negative number, got {v!r}")
        out[key] = v
    if "saddle_modes" in out and out["saddle_modes"] < 2:
        raise ConfigError(f"gneb.saddle_modes: expected at least 2 eigenvalues (one negative and the next tell a "
                          f"first-order saddle), got {out['saddle_modes']}")
    if "images" in out and out["images"] < 3:
        raise ConfigError(f"gneb.images: expected at least 3 (both endpoints included), got {out['images']}")
    tol = sec.get("tol")
    if tol is not None and not ((isinstance(tol, (int, float)) and not isinstance(tol, bool) and tol > 0) or (
            isinstance(tol, dict) and set(tol) <= {"spins", "positions", "magnitudes"} and all(
            isinstance(x, (int, float)) and not isinstance(x, bool) and x > 0 for x in tol.values()))):
        raise ConfigError(f"gneb.tol: expected {_GNEB_KEYS['tol']}, got {tol!r}")
    w = sec.get("weights")
    if w is not None and not (isinstance(w, dict) and set(w) <= {"positions", "magnitudes"} and all(
            isinstance(x, (int, float)) and not isinstance(x, bool) and x > 0 for x in w.values())):
        raise ConfigError(f"gneb.weights: expected {_GNEB_KEYS['weights']} (positive numbers), got {w!r}")
    ms = sec.get("max_step")
    if ms is not None and not (isinstance(ms, dict) and set(ms) <= {"spins", "positions", "magnitudes"} and all(
            isinstance(x, (int, float)) and not isinstance(x, bool) and x > 0 for x in ms.values())):
        raise ConfigError(f"gneb.max_step: expected {_GNEB_KEYS['max_step']} (positive numbers), got {ms!r}")
    if sec.get("method", "auto") not in ("auto", "lbfgs", "fire"):
        raise ConfigError(f"gneb.method: expected auto, lbfgs or fire, got {sec['method']!r}")
    if "path" in sec:
        if not isinstance(sec["path"], str):
            raise ConfigError(f"gneb.path: expected {_GNEB_KEYS['path']}, got {sec['path']!r}")
        out["path"] = _gneb_abs(base, sec["path"])
        _require_file(out["path"], "gneb.path", "file")
    for key in ("initial", "final"):
        if key in out:
            _require_file(out[key]["file"], f"gneb.{key}", "file")
    return out
