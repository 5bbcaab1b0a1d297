"""Run configurations (YAML or dict) → structure, potential stack, integrator.

Validated up front: a bad key raises :class:`~spinlat.errors.ConfigError` naming the key and
what was expected, before any work starts. Schema (all lengths Å, times fs, fields T, K):

.. code-block:: yaml

    structure:                       # either a builder ...
      crystal: bcc                   # bcc | fcc | sc | hcp (ase.build.bulk names)
      element: Fe
      a: 2.8665
      repeat: [6, 6, 6]
      # ... or a file readable by ASE:  file: POSCAR
      moments: 2.2                   # μB, a number or {element: value}
      spins: random                  # random | [sx, sy, sz]
      temperature: 100               # K, Maxwell-Boltzmann initial velocities (optional)
      rattle: 0.0                    # Å, random displacements (optional)
    potential:                       # a list of terms, summed
      - {type: EAM, path: Fe_mm.eam.fs}
      - {type: BetheSlaterExchange, cutoff: 3.4, J1: 0.02726, J2: 0.2171, J3: 1.841}
      - {type: Zeeman, B: [0, 0, 1]}
    integrator: {type: SpinLatticeNVE, dt: 0.1}
    steps: 1000
    every: 10
    seed: 0
    output: runs/demo                # run directory: config, trajectory, log, plots
"""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np

from .errors import ConfigError, SpinlatError

_TOP_KEYS = {"structure", "potential", "integrator", "steps", "every", "seed", "output", "progress",
             "minimize", "search", "store_forces"}
_STRUCTURE_KEYS = {"crystal", "element", "a", "c", "repeat", "file", "moments", "spins", "temperature", "rattle",
                   "cubic"}


def read_yaml(path) -> dict:
    """A YAML mapping from ``path``; ConfigError if the file is missing, invalid or not a mapping."""
    import yaml

    p = Path(path)
    if not p.exists():
        raise ConfigError(f"config file {p} does not exist")
    try:
        cfg = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML ({exc})") from None
    if not isinstance(cfg, dict):
        raise ConfigError(f"{p}: expected a mapping at the top level, got {type(cfg).__name__}")
    return cfg


def load(path_or_dict) -> dict:
    """Read a YAML file (or take a dict) and check its top-level keys."""
    if isinstance(path_or_dict, dict):
        cfg = dict(path_or_dict)
        base = Path.cwd()
    else:
        cfg = read_yaml(path_or_dict)
        base = Path(path_or_dict).resolve().parent
    unknown = set(cfg) - _TOP_KEYS
    if unknown:
        raise ConfigError(f"unknown key(s) {sorted(unknown)}; expected some of {sorted(_TOP_KEYS)}")
    cfg["_base"] = str(base)
    return cfg


def _require(d, key, where, kind=None):
    if key not in d:
        raise ConfigError(f"{where}: missing key {key!r}")
    v = d[key]
    if kind is not None and not isinstance(v, kind):
        raise ConfigError(f"{where}.{key}: expected {kind.__name__ if isinstance(kind, type) else kind}, "
                          f"got {v!r}")
    return v


def _path(base, p):
    q = Path(p)
    return q if q.is_absolute() or q.exists() else Path(base) / q


def build_structure(cfg):
    """The State described by ``cfg["structure"]``."""
    from ase import units as ase_units
    from ase.build import bulk
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

    from .state import State

    sc = _require(cfg, "structure", "config", dict)
    unknown = set(sc) - _STRUCTURE_KEYS
    if unknown:
        raise ConfigError(f"structure: unknown key(s) {sorted(unknown)}; expected some of {sorted(_STRUCTURE_KEYS)}")
    rng = np.random.default_rng(cfg.get("seed", 0))
    if "file" in sc:
        from ase.io import read

        try:
            atoms = read(_path(cfg["_base"], sc["file"]))
        except Exception as exc:  # ASE raises many types
            raise ConfigError(f"structure.file: cannot read {sc['file']!r} ({exc})") from None
    else:
        el = _require(sc, "element", "structure", str)
        crystal = sc.get("crystal", "bcc")
        kw = {k: sc[k] for k in ("a", "c") if k in sc}
        try:
            atoms = bulk(el, crystal, cubic=sc.get("cubic", True), **kw)
        except Exception as exc:
            raise ConfigError(f"structure: cannot build {crystal} {el} ({exc})") from None
    rep = sc.get("repeat", 1)
    atoms = atoms.repeat(rep if isinstance(rep, (list, tuple)) else (rep,) * 3)
    if sc.get("temperature"):
        MaxwellBoltzmannDistribution(atoms, temperature_K=float(sc["temperature"]), rng=rng)
    st = State.from_ase(atoms)
    if sc.get("rattle"):
        st = st.copy(positions=st.positions + rng.normal(0, float(sc["rattle"]), st.positions.shape))
    mom = sc.get("moments")
    if mom is not None:
        if isinstance(mom, dict):
            arr = np.array([float(mom.get(s, 0.0)) for s in st.symbols])
        elif isinstance(mom, (int, float)):
            arr = np.full(len(st), float(mom))
        else:
            raise ConfigError(f"structure.moments: expected a number or {{element: μB}}, got {mom!r}")
        st = st.copy(moments=arr)
    spins = sc.get("spins", "random")
    if isinstance(spins, str):
        if spins != "random":
            raise ConfigError(f"structure.spins: expected 'random' or [sx, sy, sz], got {spins!r}")
        st = st.copy(spins=rng.normal(size=(len(st), 3)))
    else:
        v = np.asarray(spins, float)
        if v.shape != (3,):
            raise ConfigError(f"structure.spins: expected 'random' or [sx, sy, sz], got {spins!r}")
        st = st.copy(spins=np.tile(v, (len(st), 1)))
    _ = ase_units
    return st


def _construct(cls, params, where):
    sig = inspect.signature(cls.__init__)
    names = [n for n in sig.parameters if n != "self"]
    unknown = set(params) - set(names)
    if unknown:
        raise ConfigError(f"{where}: unknown parameter(s) {sorted(unknown)} for {cls.__name__}; expected some of {names}")
    try:
        return cls(**params)
    except SpinlatError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def build_potential(cfg):
    """The potential stack of ``cfg["potential"]`` (a list of terms, or one term)."""
    from . import potentials

    terms = cfg.get("potential")
    if terms is None:
        raise ConfigError("config: missing key 'potential'")
    if isinstance(terms, dict):
        terms = [terms]
    pot = None
    for k, t in enumerate(terms):
        where = f"potential[{k}]"
        if not isinstance(t, dict) or "type" not in t:
            raise ConfigError(f"{where}: expected a mapping with a 'type' key")
        params = {key: v for key, v in t.items() if key != "type"}
        name = t["type"]
        if name == "MagneticMACE":
            path = _require(params, "path", where)
            term = potentials.MagneticMACE.load(_path(cfg["_base"], path), **{k: v for k, v in params.items()
                                                                               if k != "path"})
        elif name == "Heisenberg":
            term = potentials.Heisenberg.from_tb2j(_path(cfg["_base"], _require(params, "tb2j", where)))
        elif name in ("EAM", "BetheSlaterExchange", "Zeeman", "UniaxialAnisotropy", "CubicAnisotropy", "Landau"):
            if name == "EAM" and "path" in params:
                params["path"] = str(_path(cfg["_base"], params["path"]))
            term = _construct(getattr(potentials, name), params, where)
        else:
            raise ConfigError(f"{where}.type: unknown potential {name!r}; expected one of EAM, "
                              "BetheSlaterExchange, Heisenberg, Zeeman, UniaxialAnisotropy, CubicAnisotropy, "
                              "Landau, MagneticMACE")
        pot = term if pot is None else pot + term
    if pot is None:
        raise ConfigError("potential: the list is empty")
    return pot


def build_integrator(cfg):
    """The integrator of ``cfg["integrator"]``."""
    from . import integrators

    ic = _require(cfg, "integrator", "config", dict)
    name = _require(ic, "type", "integrator", str)
    names = ("SpinLatticeNVE", "SpinLatticeLangevin", "LLG", "MonteCarlo")
    if name not in names:
        raise ConfigError(f"integrator.type: unknown integrator {name!r}; expected one of {list(names)}")
    params = {k: v for k, v in ic.items() if k != "type"}
    cls = getattr(integrators, name)
    if "seed" in inspect.signature(cls.__init__).parameters and "seed" not in params and "seed" in cfg:
        params["seed"] = cfg["seed"]
    return _construct(cls, params, "integrator")


def check_run(cfg):
    """Validate the scalar run options (steps, every)."""
    steps = _require(cfg, "steps", "config")
    if not isinstance(steps, int) or steps < 0:
        raise ConfigError(f"steps: expected a non-negative integer, got {steps!r}")
    every = cfg.get("every", 10)
    if not isinstance(every, int) or every < 1:
        raise ConfigError(f"every: expected a positive integer, got {every!r}")
    return steps, every
