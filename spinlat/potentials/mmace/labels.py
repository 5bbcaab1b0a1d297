"""Reference labels and input moments of a configuration (``ase.Atoms``), read wherever ASE keeps them.

Labels (all optional, per configuration):

============================  ==========  ======================================================
label                         unit        where
============================  ==========  ======================================================
energy                        eV          ``info["energy"]``, or a calculator's ``energy``
forces (N, 3)                 eV/Å        ``arrays["forces"]``, or a calculator's ``forces``
magnetic_forces (N, 3) or (N,) eV/μB      ``arrays["magnetic_forces"]`` (h = −∂E/∂m), or a calculator's;
                                          (N,): collinear, the component h·m̂ along each moment
stress, Voigt (6,) or 3×3     eV/Å³       ``info["stress"]`` (ASE's sign), or a calculator's ``stress``,
                                          or else ``info["virial"]`` (or ``"virials"``; eV, 3×3, 9 or
                                          Voigt 6) as σ = −W/V: the virial W = −∂E/∂ε of GPUMD's NEP
                                          and mace's data sets, V the cell volume
============================  ==========  ======================================================

A collinear magnetic-force label (N,) — one number per atom, as collinear (spin-polarised, no
spin-orbit) DFT codes give the force on a moment — is read as the component along the moment,
h_i·m̂_i = −∂E/∂|m_i| (positive where the energy falls as the moment grows; for a code that gives
−∂E/∂m_z of signed collinear moments, multiply by the sign of m_z): the training and the errors
use only that component of such a configuration (``magnetic_forces_longitudinal``,
:mod:`.metrics`); atoms without a moment have no direction and carry no label.

A magnetic force above :data:`MAGNETIC_FORCE_IMPLAUSIBLE` (20 eV/μB) is read as given with a
UserWarning: it is most likely in meV/μB or a field in tesla. A stress whose largest component
exceeds :data:`STRESS_IMPLAUSIBLE` (1 eV/Å³ = 160 GPa) is read
as given with a UserWarning: it is most likely in kbar (VASP's OUTCAR) or GPa, not eV/Å³.
:func:`unread_label_keys` names entries that look like labels under other names (mace's
``REF_energy``, ``REF_forces``, ``REF_stress``, ``REF_virials``, the reference magnetic MACE's
``REF_magforces``, ``magforces``, ...), which are *not* read: the training warns about them
(:func:`spinlat.training.data.check_dataset`) instead of dropping them silently.

A calculator's results are those of ``atoms.calc.results`` — e.g. the ``SinglePointCalculator``
that ``ase.io.read`` attaches to configurations read from an extxyz file. Where both places hold
a label, ``info``/``arrays`` win (as :func:`spinlat.io.write_extxyz` writes them). A label found
in neither place is *absent*: it is left out of every loss and error (masks in :mod:`.metrics`),
never taken as zero. ``free_energy`` is not read as the energy.

Moments are inputs of the model (a configuration may carry them without any magnetic-force
label): :func:`input_moments` reads them by the rule of :meth:`spinlat.State.from_ase`
(:func:`spinlat.state.ase_magnetic_moments`, one helper for both): the first non-zero of a
calculator's ``magmoms`` (the moments of the calculation that gave the labels: for a
self-consistent DFT run its converged moments, not its starting guess), ``arrays["magmoms"]``
(the data-set convention), per-atom moments under other codes' names (the reference magnetic
MACE's ``REF_magmom``, an extxyz column ``magmom`` or ``magnetic_moments``, ...:
:func:`spinlat.state.moment_alias_keys`) and the initial magnetic moments
(``arrays["initial_magmoms"]``), with a UserWarning when two of the non-initial ones are
non-zero and differ; none of them: a non-magnetic configuration (with a UserWarning when it
carries per-atom data named like moments where they are not read, e.g. in ``info``, or only a
calculator's total moment: :func:`spinlat.state.warn_unread_moments`). Collinear moments (N,) lie along +z, unless the
configuration has a per-atom ``spins`` array (N, 3) of directions (an extxyz ``spins`` column, as
:meth:`spinlat.State.from_ase` reads it): then moments (N,) are magnitudes along it and moments
(N, 3) must point along it.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from ...errors import FileFormatError, InputError, NonFiniteError, ShapeError
from ...state import ALIAS_AFFIX, MOMENT_NAMES

#: label → (holder in ase.Atoms, unit)
LABELS = {"energy": ("info", "eV"), "forces": ("arrays", "eV/Å"), "magnetic_forces": ("arrays", "eV/μB"),
          "stress": ("info", "eV/Å³")}

_VOIGT = [(0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)]

#: a stress component above this (eV/Å³; 160 GPa) is most likely in kbar or GPa: warned about
STRESS_IMPLAUSIBLE = 1.0
#: a magnetic force (eV/μB) above this is most likely in meV/μB, or a field in tesla: warned about
MAGNETIC_FORCE_IMPLAUSIBLE = 20.0
#: ``info`` keys read as a virial (eV) when a configuration has no stress
VIRIAL_KEYS = ("virial", "virials")

#: names (lower case, after stripping a prefix or suffix of :data:`spinlat.state.ALIAS_AFFIX`) under which
#: other codes store a label or the moments → the label spinlat reads under its own name
_ALIASES = {
    **dict.fromkeys(("energy", "energies", "total_energy"), "energy"),
    **dict.fromkeys(("forces", "force"), "forces"),
    **dict.fromkeys(("stress", "stresses", "virial", "virials"), "stress"),
    **dict.fromkeys(("magforces", "magforce", "mag_forces", "mag_force", "magnetic_forces", "magnetic_force",
                     "hmag", "h_mag", "magnetic_field", "magnetic_fields", "constraining_field",
                     "constraining_fields", "constrained_field", "b_constr"), "magnetic_forces"),
    **dict.fromkeys(MOMENT_NAMES, "moments"),
    **dict.fromkeys(("energy_per_atom", "energy_peratom", "e_per_atom", "energy_atom", "epa"), "energy per atom"),
}


def _results(atoms) -> dict:
    return getattr(getattr(atoms, "calc", None), "results", None) or {}


def raw_label(atoms, key):
    """The stored value of label ``key`` (module docstring), or None when the configuration lacks it.
    A stress given only as a virial W (eV) is returned as σ = −W/V (3×3 eV/Å³)."""
    where, _ = LABELS[key]
    holder = atoms.info if where == "info" else atoms.arrays
    value = holder.get(key)
    value = _results(atoms).get(key) if value is None else value
    if value is None and key == "stress":
        found = _virial_key(atoms)
        if found is not None:
            volume = abs(float(np.linalg.det(np.asarray(atoms.cell.array, dtype=np.float64))))
            w = stress_matrix(atoms.info[found], f"info[{found!r}]", "virial")
            return -w / volume if volume > 0 else w * np.nan
    return value


def _virial_key(atoms):
    return next((k for k in VIRIAL_KEYS if atoms.info.get(k) is not None), None)


def unread_label_keys(atoms) -> list:
    """Entries of a configuration named like a label or like moments under another name or in
    another place than spinlat reads (module docstring), for a label (or the moments) that the
    configuration does not carry where spinlat reads it: a list of (place, key, label), e.g.
    ``("arrays", "REF_magforces", "magnetic_forces")``; place is ``info``, ``arrays`` or
    ``calculator results``. Such entries are not read."""
    have = {key for key in LABELS if raw_label(atoms, key) is not None}
    from ...state import ase_magnetic_moments

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            if np.any(np.asarray(ase_magnetic_moments(atoms, "computed"), dtype=float) != 0):
                have.add("moments")
        except Exception:  # malformed moments are reported where they are read
            pass
    if "energy" in have:
        have.add("energy per atom")
    read_where = {"energy": ("info", "calculator results"), "forces": ("arrays", "calculator results"),
                  "magnetic_forces": ("arrays", "calculator results"), "stress": ("info", "calculator results"),
                  "moments": ("arrays", "calculator results"), "energy per atom": ()}
    read_names = {"energy": ("energy",), "forces": ("forces",), "magnetic_forces": ("magnetic_forces",),
                  "stress": ("stress",) + VIRIAL_KEYS, "moments": ("magmoms", "initial_magmoms"),
                  "energy per atom": ()}
    found = []
    for place, table in (("info", atoms.info), ("arrays", atoms.arrays), ("calculator results", _results(atoms))):
        for k in table:
            if not isinstance(k, str):
                continue
            name = k.lower()
            label = _ALIASES.get(name) or _ALIASES.get(ALIAS_AFFIX.sub("", name))
            if label is None or label in have:
                continue
            if k in read_names[label] and place in read_where[label]:
                continue
            found.append((place, k, label))
    return found


def _finite(arr, name, where):
    if not np.all(np.isfinite(arr)):
        raise NonFiniteError(f"{where}: {name} holds NaN or inf")
    return arr


#: where spinlat reads each label (for :func:`warn_unread_labels`)
_READ_AS = {"energy": "info['energy']", "forces": "arrays['forces']", "magnetic_forces": "arrays['magnetic_forces']",
            "stress": "info['stress'] (or info['virial'])", "moments": "arrays['magmoms']",
            "energy per atom": "info['energy'] with energy_label='per_atom' (a training option, an argument of "
                               "MagneticMACE.evaluate)"}


def warn_unread_labels(configs, name="data set", stacklevel=3) -> None:
    """One UserWarning listing the entries of ``configs`` (ase.Atoms) that :func:`unread_label_keys`
    finds, each with the configurations (indices) that hold it and where spinlat reads that
    label; nothing when there are none. ``name`` names the data set in the message."""
    unread = {}
    for k, at in enumerate(configs):
        if hasattr(at, "arrays"):
            for entry in unread_label_keys(at):
                unread.setdefault(entry, []).append(k)
    if not unread:
        return
    n = len(configs)
    parts = []
    for (place, key, label), ks in unread.items():
        shown = ", ".join(map(str, ks[:5])) + (" ..." if len(ks) > 5 else "")
        parts.append(f"{place}[{key!r}] in {len(ks)} of the {n} configurations ({shown}) looks like "
                     f"{label} but is not read: spinlat reads {label} from {_READ_AS[label]}")
    warnings.warn(f"{name}: " + "; ".join(parts) + ". Those configurations are used without that label; "
                  "rename the entries (e.g. atoms.arrays['magnetic_forces'] = atoms.arrays.pop('REF_magforces'), "
                  "in eV/μB as h = −∂E/∂m) if they hold it in spinlat's units and sign", UserWarning,
                  stacklevel=stacklevel)


def stress_matrix(value, where, what="stress") -> np.ndarray:
    """A stress (or virial: ``what``) given as Voigt (6,) (xx yy zz yz xz xy) or 3×3 as a 3×3 array."""
    s = np.asarray(value, dtype=np.float64)
    if s.shape == (3, 3):
        return s
    if s.size == 9:
        return s.reshape(3, 3)
    if s.shape == (6,):
        m = np.zeros((3, 3))
        for k, (a, b) in enumerate(_VOIGT):
            m[a, b] = m[b, a] = s[k]
        return m
    raise ShapeError(f"{where}: {what} must be Voigt (6,) or 3x3, got shape {s.shape}")


def stored_keys(atoms) -> str:
    """What a configuration holds, for error messages: its ``info`` keys, ``arrays`` names and
    calculator results (labels stored under other names, e.g. mace's ``REF_energy``, show here)."""
    arrays = [k for k in atoms.arrays if k not in ("numbers", "positions")]
    return (f"info keys {sorted(atoms.info)}, arrays {sorted(arrays)}, calculator results "
            f"{sorted(_results(atoms))}")


def has_label(atoms) -> bool:
    """Whether a configuration carries any label (module docstring), checked or not."""
    return any(raw_label(atoms, key) is not None for key in LABELS)


#: mace's per-configuration weights of one label (``info["config_<name>_weight"]``) → spinlat's label
MACE_LABEL_WEIGHTS = {"energy": "energy", "forces": "forces", "stress": "stress", "virials": "stress",
                      "magforces": "magnetic_forces"}


def configuration_weight(atoms, where="configuration") -> float:
    """The weight of a configuration in the loss: ``info["weight"]`` (spinlat's), else mace's
    ``info["config_weight"]``, else 1. InputError when both are given and differ, or for a
    negative or non-numeric weight."""
    from ... import validation

    given = {k: atoms.info[k] for k in ("weight", "config_weight") if atoms.info.get(k) is not None}
    values = {k: validation.number(v, f"{where}: info[{k!r}]", nonnegative=True) for k, v in given.items()}
    if len(values) == 2 and values["weight"] != values["config_weight"]:
        raise InputError(f"{where}: info['weight'] = {values['weight']!r} and mace's info['config_weight'] = "
                         f"{values['config_weight']!r} disagree; keep one")
    return next(iter(values.values()), 1.0)


def _label_weights(atoms, where) -> dict:
    """{label: mace's per-configuration weight} from ``info["config_<name>_weight"]``
    (:data:`MACE_LABEL_WEIGHTS`); InputError for a value other than 0 (the label is left out) or 1."""
    from ... import validation

    out = {}
    for name, label in MACE_LABEL_WEIGHTS.items():
        key = f"config_{name}_weight"
        if atoms.info.get(key) is None:
            continue
        w = validation.number(atoms.info[key], f"{where}: info[{key!r}]", nonnegative=True)
        if w not in (0.0, 1.0):
            raise InputError(f"{where}: info[{key!r}] = {w!r}: spinlat weights a label per data set (the training "
                             f"option {label}_weight) and a configuration as a whole (info['weight']), not one label "
                             f"of one configuration; 0 (leave the {label} of this configuration out) and 1 are read")
        out[label] = min(out.get(label, 1.0), w)
    return out


def read_labels(atoms, where="configuration") -> dict:
    """The labels a configuration carries, checked: ``energy`` (float eV), ``forces`` ((N, 3)),
    ``magnetic_forces`` ((N, 3), or (N,) as given for a collinear label: the component along each
    moment, module docstring), ``stress`` (3×3); absent labels are absent keys. Raises
    ShapeError / NonFiniteError naming ``where`` and the label, InputError for a stress on a
    cell that is not periodic in all three directions (a stress needs a volume). A label whose
    mace weight ``info["config_<name>_weight"]`` is 0 is absent (mace's way to leave it out);
    another value than 0 or 1 raises InputError."""
    n = len(atoms)
    out = {}
    excluded = {label for label, w in _label_weights(atoms, where).items() if w == 0}
    for key in LABELS:
        value = raw_label(atoms, key)
        if value is None or key in excluded:
            continue
        if key == "energy":
            e = np.asarray(value, dtype=np.float64)
            if e.size != 1:
                raise ShapeError(f"{where}: energy must be one number (eV), got shape {e.shape}")
            out[key] = float(_finite(e, "energy", where).reshape(()))
        elif key == "stress":
            given = ("info['stress']" if atoms.info.get("stress") is not None else "a calculator's stress"
                     if _results(atoms).get("stress") is not None else f"info[{_virial_key(atoms)!r}] (a virial)")
            if not np.all(atoms.pbc):
                raise InputError(f"{where}: {given} is given but the cell is not periodic in all three "
                                 f"directions (pbc={np.asarray(atoms.pbc).tolist()}): a stress needs a volume")
            sigma = _finite(stress_matrix(value, where), "stress", where)
            if np.abs(sigma).max() > STRESS_IMPLAUSIBLE:
                warnings.warn(f"{where}: {given} has a component of {np.abs(sigma).max():.4g} eV/Å³ "
                              f"({np.abs(sigma).max() * 160.21766:.4g} GPa): is it in kbar (VASP's OUTCAR) or GPa? "
                              "spinlat reads stresses in eV/Å³ with ASE's sign (1 GPa = 0.0062415 eV/Å³, "
                              "1 kbar = 0.00062415 eV/Å³; ase.io.read of a VASP or QE output converts them)",
                              UserWarning, stacklevel=3)
            out[key] = sigma
        else:
            a = np.asarray(value, dtype=np.float64)
            if a.shape != (n, 3) and not (key == "magnetic_forces" and a.shape == (n,)):
                shape = f"({n}, 3), or ({n},) for the component along each moment" if key == "magnetic_forces" \
                    else f"({n}, 3)"
                raise ShapeError(f"{where}: {key} must have shape {shape}, got {a.shape}")
            out[key] = _finite(a, key, where)
            if key == "magnetic_forces" and a.size and np.abs(a).max() > MAGNETIC_FORCE_IMPLAUSIBLE:
                warnings.warn(f"{where}: magnetic_forces has a component of {np.abs(a).max():.4g} eV/μB: is it in "
                              "meV/μB, or a field in tesla? spinlat reads h = −∂E/∂m in eV/μB (a field B in tesla "
                              "is h = μB·B, 1 T = 5.788e-5 eV/μB)", UserWarning, stacklevel=3)
    return out


def input_moments(atoms, where="configuration") -> np.ndarray:
    """Moment vectors (N, 3) μB of a configuration (module docstring for where they are read).
    A ``spins`` array (N, 3) gives the directions, as in :meth:`spinlat.State.from_ase`.
    Raises ShapeError / NonFiniteError naming ``where``, InputError (naming ``where``) when
    moments (N, 3) and the ``spins`` array disagree."""
    from ...state import ase_magnetic_moments, ase_spin_directions, combine_spin_directions, warn_unread_moments

    n = len(atoms)
    try:
        mag = _finite(ase_magnetic_moments(atoms, "computed", stacklevel=4), "magnetic moments", where)
        if not np.any(mag != 0):
            warn_unread_moments(atoms, stacklevel=4)  # moments the configuration carries elsewhere, or only as a total
            return np.zeros((n, 3))
        direction = ase_spin_directions(atoms)
        if direction is not None:
            spins, moments = combine_spin_directions(mag, _finite(direction, "spins", where))
            norm = np.linalg.norm(spins, axis=1)
            return spins / np.where(norm > 0, norm, 1.0)[:, None] * moments[:, None]
    except InputError as exc:  # ShapeError / NonFiniteError / InputError, kept, naming the configuration
        raise exc if str(exc).startswith(f"{where}: ") else type(exc)(f"{where}: {exc}") from None
    if mag.ndim == 1:
        mag = np.stack([np.zeros(n), np.zeros(n), mag], axis=1)
    return mag


def configuration_name(data, k) -> str:
    """How errors name configuration ``k`` of ``data``: ``"configuration 5 of b.extxyz"`` when
    ``data`` knows the file each configuration came from (``data.sources[k]`` = (path, index in
    that file), as :class:`spinlat.training.data.Dataset` read from files), else
    ``"configuration k"``."""
    sources = getattr(data, "sources", None)
    source = sources[k] if sources is not None and k < len(sources) else None
    return f"configuration {k}" if source is None else f"configuration {source[1]} of {source[0]}"


def read_dataset(path, name="dataset") -> list:
    """Configurations of a file as ase.Atoms (``ase.io.read``, every frame; extxyz and any format
    ASE reads with its format guess). Raises InputError for a missing file, FileFormatError for
    one ASE cannot read."""
    import ase.io

    p = Path(path)
    if not p.is_file():
        raise InputError(f"{name} file {str(p)!r} does not exist" if not p.exists() else f"{name}: {p} is not a file")
    try:
        frames = ase.io.read(p, index=":")
    except Exception as exc:  # ASE raises many kinds for unreadable files
        raise FileFormatError(f"{name}: cannot read {p} as configurations ({type(exc).__name__}: {exc})") from None
    return list(frames)


#: how ``info["energy"]`` (or a calculator's energy) is read: the configuration's total energy
#: (eV, the default and ASE's convention), or an energy per atom (eV/atom) that is multiplied by N
ENERGY_LABELS = ("total", "per_atom")


def energies_as_totals(configs, energy_label="total", name="data set") -> list:
    """``configs`` (ase.Atoms) with total energies: unchanged for ``energy_label="total"``; for
    ``"per_atom"`` copies whose ``info["energy"]`` is the stored energy (eV/atom, from ``info`` or
    a calculator) times the number of atoms (the calculator, with its other labels, stays
    attached). Raises InputError for another ``energy_label``."""
    from ... import validation

    energy_label = validation.choice(energy_label, f"{name}: energy_label", ENERGY_LABELS)
    if energy_label == "total":
        return list(configs)
    out = []
    for at in configs:
        value = raw_label(at, "energy") if hasattr(at, "arrays") else None
        if value is not None:
            calc = at.calc
            at = at.copy()
            at.calc = calc
            e = np.asarray(value, dtype=np.float64)
            at.info["energy"] = float(e.reshape(())) * len(at) if e.size == 1 else value  # a bad shape is named later
        out.append(at)
    return out


#: the energies of configurations of several sizes are refused as totals when they follow the
#: composition fractions (per-atom values) this many times better than the totals per atom do
PER_ATOM_RATIO = 2.0
#: ... and the totals per atom scatter by more than this (eV/atom) about a composition fit
PER_ATOM_SCATTER = 0.05


def per_atom_energy_evidence(configs):
    """Whether the energies of ``configs`` (ase.Atoms, read as :func:`raw_label` does) look like
    energies per atom rather than totals: None when they cannot tell (fewer than two sizes among the
    configurations of more than one atom with an energy, or no more such configurations than
    elements), else (looks per-atom, rms_total, rms_per_atom, sizes). Both readings are fitted
    linearly in the composition fractions x: totals per atom E/N ≈ x·e (rms_total, eV/atom) and
    per-atom values E ≈ x·e (rms_per_atom); totals grow with N, so read as per-atom values they
    fit far worse, and per-atom values divided by N fit far worse than they do. Looks per-atom
    when rms_per_atom < rms_total / :data:`PER_ATOM_RATIO` and rms_total > :data:`PER_ATOM_SCATTER`.
    Single atoms (isolated-atom reference energies) are the same under both readings and are left out."""
    rows = []
    for at in configs:
        if not hasattr(at, "arrays") or len(at) < 2:
            continue
        value = raw_label(at, "energy")
        if value is None or np.size(value) != 1 or not np.isfinite(np.asarray(value, dtype=np.float64)).all():
            continue
        rows.append((float(np.asarray(value, dtype=np.float64).reshape(())), np.asarray(at.numbers)))
    if not rows:
        return None
    elements = sorted({int(z) for _, numbers in rows for z in numbers})
    sizes = sorted({len(numbers) for _, numbers in rows})
    if len(sizes) < 2 or len(rows) <= len(elements):
        return None
    n = np.array([len(numbers) for _, numbers in rows], dtype=np.float64)
    x = np.array([[np.count_nonzero(numbers == z) for z in elements] for _, numbers in rows]) / n[:, None]
    e = np.array([value for value, _ in rows])

    def rms_residual(y):
        coef, *_ = np.linalg.lstsq(x, y, rcond=None)
        return float(np.sqrt(np.mean((y - x @ coef) ** 2)))

    rms_total, rms_per_atom = rms_residual(e / n), rms_residual(e)
    looks = rms_per_atom * PER_ATOM_RATIO < rms_total and rms_total > PER_ATOM_SCATTER
    return looks, rms_total, rms_per_atom, sizes


def check_energies_are_totals(configs, name="data set", remedy="") -> None:
    """Raise InputError when the energies of ``configs`` are obviously per-atom values, not the
    totals spinlat reads (:func:`per_atom_energy_evidence`); ``remedy`` names the option that
    says so (e.g. ``energy_label='per_atom'``). Silent when the sizes cannot tell."""
    found = per_atom_energy_evidence(configs)
    if found is None or not found[0]:
        return
    _, rms_total, rms_per_atom, sizes = found
    shown = ", ".join(map(str, sizes[:6])) + (" ..." if len(sizes) > 6 else "")
    raise InputError(f"{name}: the energies look like energies per atom, not the total energies spinlat reads from "
                     f"info['energy'] (ASE's convention): over configurations of {shown} atoms they follow the "
                     f"composition as per-atom values (rms {rms_per_atom:.3g} eV about a fit) far better than as "
                     f"totals (E/N scatters by {rms_total:.3g} eV/atom). {remedy}")
