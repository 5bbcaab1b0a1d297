"""VAMPIRE unit-cell files (``.UCF``) with their material file (``.mat``).

:func:`read_vampire` reads the unit cell, atoms and exchange interactions of a VAMPIRE unified
cell file, and the moments, initial spin directions and uniaxial anisotropy of its material file,
into a :class:`~spinlat.State` and a :class:`~spinlat.potentials.Heisenberg` (the files TB2J
writes beside ``exchange.out`` in ``TB2J_results/Vampire``: ``vampire.UCF``, ``vampire.mat``).

UCF layout (VAMPIRE's manual): ``#`` lines are comments; the unit cell size ``ucx ucy ucz`` (Å),
three rows of unit-cell vector directions (each scaled by its size: cell row k = size_k ×
row_k), ``num_atoms num_materials``, one row per atom ``id cx cy cz [mat_id cat_id hcat_id]``
(fractions of the cell vectors; material ids from 0; the atoms are numbered by their order, as
VAMPIRE's ``src/unitcell/read.cpp`` does, whatever their id column says), ``num_interactions
exchange_type``, one row per interaction ``IID i j dx dy dz`` (atoms i and j by that order, the
unit-cell offset of atom j) followed by J (isotropic: 1
value), Jxx Jyy Jzz (vectorial) or Jxx Jxy … Jzz (tensorial), in joules (or meV for a run with
``exchange:meV-interaction-unit``: ``interaction_unit="meV"``; values implausible for the unit
are refused).

Energy: VAMPIRE's single-spin exchange energy is −Σ_j S_iᵀ J_ij S_j over the interactions listed
for atom i (``src/exchange/energy.cpp`` of richard-evans/vampire, J[a][b] S_j[b] s_i[a]), the
total being half the sum over i: E = −½ Σ_i Σ_j S_iᵀ J_ij S_j, with every bond listed from both ends (TB2J writes its
double-counted couplings ×2 for this reason). spinlat's each-pair-once tensor is therefore
½ (J_(i,j,R) + J_(j,i,−R)ᵀ), converted J → eV (÷ e = 1.602176634e-19); a bond listed from one end
only counts half (VAMPIRE checks that every interaction has its reverse).

Normalised exchange types (``normalised-isotropic``, ``-vectorial``, ``-tensorial``): VAMPIRE
multiplies the diagonal of each UCF value by the material file's ``material[i]:exchange-matrix[j]``
(J/link; one value, or three xx, yy, zz; the isotropic type takes the first) of the two atoms'
materials and drops the off-diagonal entries (``src/exchange/unroll_normalised.cpp``); read so.

Material file: ``material[k]:atomic-spin-moment`` (μB), ``initial-spin-direction`` (a vector;
``random``, ``skyrmion, ...`` give +z with a UserWarning), ``uniaxial-anisotropy-constant`` or ``second-order-uniaxial-anisotropy-
constant`` (J per atom, E = −k (S·e)², an on-site tensor here) with ``uniaxial-anisotropy-
direction``; ``cubic-anisotropy-constant`` or ``fourth-order-cubic-anisotropy-constant`` (J per
atom, E = −(kc/2) Σ (Sx⁴ + Sy⁴ + Sz⁴), ``src/anisotropy/cubic_fourth_order.cpp``: a
:class:`~spinlat.potentials.CubicAnisotropy` with K1 = kc, one per element, plus the constant
−kc/2 as an isotropic on-site tensor); ``material-element``. Material k of the .mat file is
material id k − 1 of the UCF.

Biquadratic section: VAMPIRE reads a second interaction section after the bilinear one
(``src/unitcell/read.cpp``), ``num_interactions isotropic`` and rows ``IID i j dx dy dz B`` (J),
E = −½ Σ_i Σ_j B_ij (S_i·S_j)² (``src/exchange/biquadratic_energy.cpp``): read as a
:class:`~spinlat.potentials.Biquadratic` with ½ (B_ij + B_ji) per pair.

Terms spinlat has no term for are refused (FileFormatError naming the file and line) unless
``drop`` names them: ``"biquadratic"`` (a biquadratic section of another type than isotropic,
or a biquadratic material key), ``"anisotropy"`` (other material anisotropy
keys: higher-order uniaxial or cubic, rotated cubic axes, Néel/surface, lattice...), ``"dmi"``
(``dmi-constant``), ``"exchange"`` (other material exchange keys, e.g. ``exchange-matrix-2nd-nn``
of a normalised type, Kitaev, four-spin). Other material keys (damping, names, ...) do not change
the energy and are not used.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from .. import units, validation
from ..errors import FileFormatError, InputError, InteractionUnitError, needs_option
from .codes import add_pair, dropped_terms, element_numbers, file_rows, file_text, quartic_cubic, refuse_unread
from ..keywords import refuse_other_names

_NVALUES = {"isotropic": 1, "0": 1, "vectorial": 3, "1": 3, "tensorial": 9, "2": 9}
#: material keys read (others that change the energy are refused unless dropped, see _unread_keys)
_READ_KEYS = ("atomic-spin-moment", "initial-spin-direction", "uniaxial-anisotropy-constant",
              "second-order-uniaxial-anisotropy-constant", "uniaxial-anisotropy-direction",
              "cubic-anisotropy-constant", "fourth-order-cubic-anisotropy-constant", "material-element")
#: words of material keys that change the energy → the ``drop`` name of the term
_ENERGY_WORDS = (("anisotropy", "anisotropy"), ("dmi", "dmi"), ("dzyaloshinskii", "dmi"),
                 ("biquadratic", "biquadratic"), ("kitaev", "exchange"), ("four-spin", "exchange"),
                 ("exchange", "exchange"))
#: the term names ``drop`` takes
DROPPABLE = ("anisotropy", "dmi", "biquadratic", "exchange")


def _floats(path, ln, words, what):
    try:
        return [float(w) for w in words]
    except ValueError:
        raise FileFormatError(f"{path}: line {ln}: {what}: expected numbers, got {' '.join(words)!r}") from None


#: energy keys of the material file read here: their unit (after "!") must be joules
_ENERGY_KEYS = ("uniaxial-anisotropy-constant", "second-order-uniaxial-anisotropy-constant", "cubic-anisotropy-constant",
                "fourth-order-cubic-anisotropy-constant", "exchange-matrix", "exchange-matrix-1st-nn")


def _materials(path):
    """{material number (1-based): {key: (value text, line)}} of a VAMPIRE material file. The
    energies read must be in joules, VAMPIRE's default: another unit after ``!`` (VAMPIRE converts
    eV, meV, ...) is refused, naming the line."""
    out = {}
    for ln, line in enumerate(file_text(path).splitlines(), 1):
        line, _, unit = line.split("#", 1)[0].partition("!")
        line, unit = line.strip(), unit.strip()
        if not line:
            continue
        m = re.match(r"material\[(\d+)\]\s*:\s*([\w-]+(?:\[\d+\])?)\s*=\s*(.*)$", line, re.IGNORECASE)
        if m:
            key = m.group(2).lower()
            if key.split("[", 1)[0] in _ENERGY_KEYS and unit and unit.split()[0].lower() not in ("j", "j/atom", "j/link"):
                raise FileFormatError(f"{path}: line {ln}: {key} in {unit.split()[0]!r}: spinlat's reader takes the "
                                      "material energies in joules (VAMPIRE's default unit): give the value in J")
            out.setdefault(int(m.group(1)), {})[key] = (m.group(3).strip(), ln)
    return out


def _vector(path, text, ln, key):
    vals = [v for v in re.split(r"[,\s]+", text.strip().strip("{}()[]")) if v]
    try:
        v = np.array([float(x) for x in vals])
    except ValueError:
        return None
    if v.shape != (3,) or not np.linalg.norm(v) > 0:
        raise FileFormatError(f"{path}: line {ln}: {key}: expected a non-zero 3-vector, got {text!r}")
    return v / np.linalg.norm(v)


@refuse_other_names()
def read_vampire(ucf, mat=None, *, elements=None, drop=(), interaction_unit="J"):
    """Read a VAMPIRE unit-cell file (and its material file): ``(state, potential)``.

    Parameters
    ----------
    ucf : the ``.UCF`` file (module docstring for the layout and conventions).
    mat : the material file (default: ``vampire.mat`` or the only ``*.mat`` beside the UCF);
        without one, every moment is 1 μB with a UserWarning (and a normalised exchange type
        is refused: its values are in the material file).
    elements : one symbol for all atoms, or one per material id; default the material files'
        ``material-element``, else Fe.
    interaction_unit : unit of the UCF's interaction values, "J" (VAMPIRE's default) or "meV"
        (a run with ``exchange:meV-interaction-unit`` in its input file, which this reader does
        not see). Values implausible for the unit (|J| > 1e-15 J, or non-zero |J| < 1e-9 meV)
        are refused, naming the line and this option.
    drop : names of terms spinlat has no term for, to leave out on purpose (module docstring):
        any of "biquadratic", "anisotropy", "dmi", "exchange", or "all". Without it such a term
        is an error.

    Returns the unit cell State (periodic; spins from ``initial-spin-direction``) and the
    potential: a :class:`~spinlat.potentials.Heisenberg` (eV, each pair once, on-site
    anisotropy tensors), which applies to its supercells, plus a
    :class:`~spinlat.potentials.CubicAnisotropy` for a cubic anisotropy constant and a
    :class:`~spinlat.potentials.Biquadratic` for a biquadratic section.
    Raises FileFormatError naming the file and line for malformed files, an interaction naming
    an atom that is not in the cell, a missing ``exchange-matrix`` of a normalised exchange type,
    or a term spinlat has no term for that ``drop`` does not name; InputError for bad
    ``elements`` or ``drop``; :class:`~spinlat.errors.InteractionUnitError` (a FileFormatError)
    for interaction values implausible for ``interaction_unit``, its ``unit`` the other one."""
    import warnings

    from ..potentials import Biquadratic, Heisenberg
    from ..state import State

    ucf = Path(validation.existing_file(ucf, "read_vampire ucf", "VAMPIRE unit-cell file"))
    dropped = dropped_terms(drop, DROPPABLE, "read_vampire drop")
    if interaction_unit not in ("J", "meV"):
        raise InputError(f"read_vampire interaction_unit: expected 'J' or 'meV', got {interaction_unit!r}")
    to_ev = 1.0 / units.ELEMENTARY_CHARGE if interaction_unit == "J" else units.MEV
    rows = file_rows(ucf)
    if len(rows) < 5:
        raise FileFormatError(f"{ucf}: too short for a unit-cell file (size, three vectors, atom count)")
    size = _floats(ucf, rows[0][0], rows[0][1][:3], "unit cell size")
    vec = np.array([_floats(ucf, ln, w[:3], "unit cell vector") for ln, w in rows[1:4]])
    if len(size) != 3 or vec.shape != (3, 3):
        raise FileFormatError(f"{ucf}: line {rows[0][0]}: expected the cell size and three vector rows")
    cell = np.array(size)[:, None] * vec
    if abs(np.linalg.det(cell)) < 1e-12:
        raise FileFormatError(f"{ucf}: the unit cell is singular")
    ln, w = rows[4]
    try:
        n = int(w[0])
    except (ValueError, IndexError):
        raise FileFormatError(f"{ucf}: line {ln}: expected 'num_atoms num_materials', got {' '.join(w)!r}") from None
    atoms = rows[5:5 + n]
    if len(atoms) < n:
        raise FileFormatError(f"{ucf}: {n} atoms announced at line {ln}, {len(atoms)} found")
    frac, mats = np.zeros((n, 3)), np.zeros(n, dtype=np.int64)
    for k, (aln, aw) in enumerate(atoms):
        if len(aw) < 4:
            raise FileFormatError(f"{ucf}: line {aln}: expected 'id cx cy cz [mat_id ...]', got {' '.join(aw)!r}")
        frac[k] = _floats(ucf, aln, aw[1:4], "atom position")
        mats[k] = int(_floats(ucf, aln, aw[4:5], "material id")[0]) if len(aw) > 4 else 0
    rest = rows[5 + n:]
    if not rest:
        raise FileFormatError(f"{ucf}: no interactions section ('num_interactions exchange_type')")
    iln, iw = rest[0]
    kind = iw[1].lower() if len(iw) > 1 else "isotropic"
    normalised = kind.startswith("normalised-")
    base_kind = kind[len("normalised-"):] if normalised else kind
    if base_kind not in _NVALUES or (normalised and base_kind not in ("isotropic", "vectorial", "tensorial")):
        raise FileFormatError(f"{ucf}: line {iln}: exchange type {kind!r}: VAMPIRE knows isotropic, vectorial, "
                              "tensorial and their normalised- forms")
    nv = _NVALUES[base_kind]
    try:
        m = int(iw[0])
    except ValueError:
        raise FileFormatError(f"{ucf}: line {iln}: expected 'num_interactions exchange_type'") from None
    inter = rest[1:1 + m]
    if len(inter) < m:
        raise FileFormatError(f"{ucf}: {m} interactions announced at line {iln}, {len(inter)} found (truncated?)")
    if normalised and interaction_unit != "J":
        raise FileFormatError(f"{ucf}: line {iln}: {kind} exchange takes joules from the material file's "
                              "exchange-matrix: interaction_unit='meV' does not apply")
    bq = _biquadratic(ucf, rest[1 + m:], n, dropped, interaction_unit, to_ev)

    if mat is None:
        mat = _default_mat(ucf)
    materials = {} if mat is None else _materials(validation.existing_file(mat, "read_vampire mat", "material file"))
    if mat is None:
        if normalised:
            raise FileFormatError(f"{ucf}: line {iln}: {kind} exchange takes its values from the material file's "
                                  "exchange-matrix, and there is no material file beside it: pass mat=")
        warnings.warn(f"{ucf}: no material file beside it: every moment is 1 μB", UserWarning, stacklevel=3)
    else:
        refuse_unread(_unread_keys(materials, normalised), dropped, mat, "VAMPIRE")

    pairs = {}
    for jln, jw in inter:
        if len(jw) < 6 + nv:
            raise FileFormatError(f"{ucf}: line {jln}: a {kind} interaction needs 'IID i j dx dy dz' and {nv} value(s), "
                                  f"got {' '.join(jw)!r}")
        try:
            i, j = int(jw[1]), int(jw[2])
            R = tuple(int(x) for x in jw[3:6])
        except ValueError:
            raise FileFormatError(f"{ucf}: line {jln}: atom ids and cell offsets must be integers") from None
        if not (0 <= i < n and 0 <= j < n):
            raise FileFormatError(f"{ucf}: line {jln}: atoms {i}, {j} outside the cell's 0..{n - 1}")
        v = np.array(_floats(ucf, jln, jw[6:6 + nv], "exchange"))
        J = v[0] * np.eye(3) if nv == 1 else np.diag(v) if nv == 3 else v.reshape(3, 3)
        if normalised:  # VAMPIRE's unroll_normalised.cpp: the diagonal × exchange-matrix of the two materials
            scale = _exchange_matrix(materials, mat, int(mats[i]), int(mats[j]), jln, ucf)
            J = np.diag(np.diag(J) * (scale[0] if nv == 1 else scale))
        if not normalised:
            _check_unit(v, interaction_unit, ucf, jln)
        J = 0.5 * J * (1.0 / units.ELEMENTARY_CHARGE if normalised else to_ev)  # -½ Σ_i Σ_j, → eV
        add_pair(pairs, i, j, R, J)

    moments, spins = np.ones(n), np.tile([0.0, 0.0, 1.0], (n, 1))
    onsite, names, kc, warned = [], {}, np.zeros(n), set()
    for k in range(n):
        props = materials.get(int(mats[k]) + 1)
        if props is None:
            if mat is not None:
                raise FileFormatError(f"{mat}: no material[{mats[k] + 1}] for atom {k} of {ucf} (material id "
                                      f"{mats[k]})")
            continue
        if "atomic-spin-moment" in props:
            text, mln = props["atomic-spin-moment"]
            moments[k] = _floats(mat, mln, text.split()[:1], "atomic-spin-moment")[0]
        if "initial-spin-direction" in props:
            text, mln = props["initial-spin-direction"]
            d = _vector(mat, text, mln, "initial-spin-direction")
            if d is not None:
                spins[k] = d
            elif (text, mln) not in warned:
                warned.add((text, mln))
                warnings.warn(f"{mat}: line {mln}: initial-spin-direction = {text}: not a direction (VAMPIRE draws "
                              "or builds these spins when it starts): the spins of this material are +z; set them "
                              "with State.copy(spins=...) or a run config's structure.spins", UserWarning, stacklevel=3)
        K = _energy(mat, props, "uniaxial-anisotropy-constant", "second-order-uniaxial-anisotropy-constant")
        if K is not None:
            e = np.array([0.0, 0.0, 1.0])
            if "uniaxial-anisotropy-direction" in props:
                text, dln = props["uniaxial-anisotropy-direction"]
                e = _vector(mat, text, dln, "uniaxial-anisotropy-direction")
                if e is None:
                    raise FileFormatError(f"{mat}: line {dln}: uniaxial-anisotropy-direction: expected a 3-vector "
                                          f"(spinlat does not draw random axes), got {text!r}")
            if K:
                onsite.append((k, K * np.outer(e, e)))
        kc[k] = _energy(mat, props, "cubic-anisotropy-constant", "fourth-order-cubic-anisotropy-constant") or 0.0
        if "material-element" in props:
            names[k] = props["material-element"][0].strip("\"'")
    numbers = _numbers(elements, names, mats, n)
    # VAMPIRE's E = −(kc/2) Σ (sx⁴ + sy⁴ + sz⁴) (cubic_fourth_order.cpp; codes.quartic_cubic)
    cubic, on, cubic_onsite = quartic_cubic(numbers, kc, f"{mat}: cubic anisotropy")
    for k, A in [*onsite, *zip(on, cubic_onsite)]:
        add_pair(pairs, k, k, (0, 0, 0), A)
    keys = list(pairs)
    I = np.array([k[0] for k in keys], dtype=np.int64)
    Jx = np.array([k[1] for k in keys], dtype=np.int64)
    R = np.array([k[2] for k in keys], dtype=np.int64).reshape(-1, 3)
    T = np.array([pairs[k] for k in keys]).reshape(-1, 3, 3)
    positions = frac @ cell
    state = State(positions, numbers, cell=cell, pbc=True, spins=spins, moments=moments)
    ham = Heisenberg(cell, positions, numbers, I, Jx, R, T, pbc=True)
    ham.source = str(ucf)
    pot = ham if cubic is None else ham + cubic
    if bq:
        pot = pot + Biquadratic(cell, positions, numbers, [k[0] for k in bq], [k[1] for k in bq],
                                np.array([k[2] for k in bq], dtype=np.int64).reshape(-1, 3), list(bq.values()))
    return state, pot


def _check_unit(values, unit, ucf, ln):
    """InteractionUnitError (a FileFormatError; its ``unit`` the other unit, which the values may
    be in) when interaction values are implausible for ``unit`` ("J" or "meV")."""
    big = float(np.max(np.abs(values), initial=0.0))
    tiny = float(np.min(np.abs(values[values != 0]), initial=np.inf))
    if unit == "J" and big > 1e-15:
        raise InteractionUnitError("meV", f"{ucf}: line {ln}: interaction value {big:g} is not an exchange energy in joules "
                              "(~1e-21 J): a file in meV (VAMPIRE's exchange:meV-interaction-unit) reads with "
                              "interaction_unit='meV'")
    if unit == "meV" and tiny < 1e-9:
        raise InteractionUnitError("J", f"{ucf}: line {ln}: interaction value {tiny:g} is not an exchange energy in meV: a "
                              "file in joules reads with interaction_unit='J'")


def _biquadratic(ucf, rows, n, dropped, unit, to_ev):
    """{(i, j, R): B eV} of the biquadratic section VAMPIRE reads after the bilinear one
    (``src/unitcell/read.cpp``; rows ``IID i j dx dy dz B`` in J, E = −½ Σ_i Σ_j B_ij (S_i·S_j)²,
    ``src/exchange/biquadratic_energy.cpp``), each pair once with ½ (B_ij + B_ji); {} when there is
    none. VAMPIRE evaluates only the isotropic type: others are refused unless dropped."""
    if not rows:
        return {}
    hln, hw = rows[0]
    kind = hw[1].lower() if len(hw) > 1 else "isotropic"
    if kind != "isotropic":
        refuse_unread([("biquadratic", f"line {hln}", f"a {kind} biquadratic exchange section (spinlat reads the "
                        "isotropic one)")], dropped, ucf, "VAMPIRE")
        return {}
    try:
        m = int(hw[0])
    except ValueError:
        raise FileFormatError(f"{ucf}: line {hln}: expected 'num_interactions exchange_type' of the biquadratic "
                              f"section, got {' '.join(hw)!r}") from None
    body = rows[1:1 + m]
    if len(body) < m or len(rows) > 1 + m:
        raise FileFormatError(f"{ucf}: {m} biquadratic interactions announced at line {hln}, {len(rows) - 1} rows "
                              "follow")
    out = {}
    for ln, w in body:
        if len(w) < 7:
            raise FileFormatError(f"{ucf}: line {ln}: a biquadratic interaction needs 'IID i j dx dy dz B', got "
                                  f"{' '.join(w)!r}")
        try:
            i, j, R = int(w[1]), int(w[2]), tuple(int(x) for x in w[3:6])
        except ValueError:
            raise FileFormatError(f"{ucf}: line {ln}: atom ids and cell offsets must be integers") from None
        if not (0 <= i < n and 0 <= j < n):
            raise FileFormatError(f"{ucf}: line {ln}: atoms {i}, {j} outside the cell's 0..{n - 1}")
        v = np.array(_floats(ucf, ln, w[6:7], "biquadratic exchange"))
        _check_unit(v, unit, ucf, ln)
        B = 0.5 * v[0] * to_ev
        add_pair(out, i, j, R, B)
    return out


def _default_mat(ucf):
    """The material file beside ``ucf``: vampire.mat, else the first ``*.mat``; None when none."""
    cands = [ucf.parent / "vampire.mat"] + sorted(ucf.parent.glob("*.mat"))
    return next((c for c in cands if c.is_file()), None)


def vampire_input_files(ucf, mat=None) -> list:
    """The files :func:`read_vampire` reads: ``ucf`` and its material file (``mat``, or the one
    found beside it), as Paths."""
    ucf = Path(validation.existing_file(ucf, "vampire_input_files ucf", "VAMPIRE unit-cell file"))
    mat = _default_mat(ucf) if mat is None else Path(mat)
    return [ucf] + ([mat] if mat is not None else [])


def _last(props, *keys):
    """The key among ``keys`` given last in the material file (VAMPIRE's aliases overwrite), or None."""
    given = [k for k in keys if k in props]
    return max(given, key=lambda k: props[k][1]) if given else None


def _energy(mat, props, *keys):
    """The energy (eV) of the material key among the aliases ``keys`` given last (:func:`_last`),
    its first value read in J (VAMPIRE's unit, checked by :func:`_materials`); None when none is given."""
    key = _last(props, *keys)
    if key is None:
        return None
    text, ln = props[key]
    return _floats(mat, ln, text.split()[:1], key)[0] / units.ELEMENTARY_CHARGE


def _unread_keys(materials, normalised):
    """[(drop name, "line N", what)] of the material keys that change the energy and are not read
    (exchange-matrix is read for a normalised exchange type and unused by VAMPIRE otherwise)."""
    out = []
    for num, props in sorted(materials.items()):
        for key, (text, ln) in sorted(props.items(), key=lambda kv: kv[1][1]):
            base = key.split("[", 1)[0]
            if base in _READ_KEYS or base in ("exchange-matrix", "exchange-matrix-1st-nn") or (
                    not normalised and base.startswith("exchange-matrix")):
                continue
            name = next((d for w, d in _ENERGY_WORDS if w in base), None)
            if name is not None:
                out.append((name, f"line {ln}", f"material[{num}]:{key} = {text}"))
    return out


def _exchange_matrix(materials, mat, mi, mj, jln, ucf):
    """(3,) exchange-matrix of materials ``mi`` → ``mj`` (ids from 0; J), VAMPIRE's normalised scale."""
    props = materials.get(mi + 1, {})
    key = next((k for k in (f"exchange-matrix[{mj + 1}]", f"exchange-matrix-1st-nn[{mj + 1}]") if k in props), None)
    if key is None:
        raise FileFormatError(f"{mat}: no material[{mi + 1}]:exchange-matrix[{mj + 1}] for the normalised "
                              f"interaction at {ucf} line {jln} (VAMPIRE would take 0: write it out)")
    text, ln = props[key]
    v = [x for x in re.split(r"[,\s]+", text.strip()) if x]
    vals = _floats(mat, ln, v, key)
    if len(vals) not in (1, 3):
        raise FileFormatError(f"{mat}: line {ln}: {key}: expected 1 or 3 values (xx, yy, zz), got {text!r}")
    return np.array(vals * 3 if len(vals) == 1 else vals, dtype=float)


def _numbers(elements, names, mats, n):
    from ase.data import atomic_numbers as table

    if elements is not None:
        return element_numbers(elements, mats, f"material id (0..{mats.max()})")
    out = np.full(n, 26)
    for k, name in names.items():
        if name.capitalize() not in table:
            raise needs_option("elements", InputError(
                f"material-element {name!r} of atom {k} is not an element symbol: pass elements="))
        out[k] = table[name.capitalize()]
    return out


__all__ = ["read_vampire", "vampire_input_files", "DROPPABLE"]
