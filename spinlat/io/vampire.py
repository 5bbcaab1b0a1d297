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
value), Jxx Jyy Jzz (vectorial) or Jxx Jxy … Jzz (tensorial), in joules.

Energy: VAMPIRE's single-spin exchange energy is −Σ_j S_iᵀ J_ij S_j over the interactions listed
for atom i (``src/exchange/energy.cpp`` of richard-evans/vampire, J[a][b] S_j[b] s_i[a]), the
total being half the sum over i: E = −½ Σ_i Σ_j S_iᵀ J_ij S_j, with every bond listed from both ends (TB2J writes its
double-counted couplings ×2 for this reason). spinlat's each-pair-once tensor is therefore
½ (J_(i,j,R) + J_(j,i,−R)ᵀ), converted J → eV (÷ e = 1.602176634e-19); a bond listed from one end
only counts half (VAMPIRE checks that every interaction has its reverse). Material file:
``material[k]:atomic-spin-moment`` (μB),
``initial-spin-direction`` (a vector; ``random`` gives +z), ``uniaxial-anisotropy-constant``
(J per atom, E = −k (S·e)², an on-site tensor here) with ``uniaxial-anisotropy-direction``;
material k of the .mat file is material id k − 1 of the UCF. Other material keys are not used.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from .. import units, validation
from ..errors import FileFormatError, InputError

_NVALUES = {"isotropic": 1, "0": 1, "vectorial": 3, "1": 3, "tensorial": 9, "2": 9}


def _rows(path):
    try:
        text = Path(path).read_text(errors="replace")
    except OSError as exc:
        raise FileFormatError(f"{path}: cannot read ({exc.strerror or exc})") from None
    return [(ln, line.split()) for ln, line in enumerate(text.splitlines(), 1)
            if line.strip() and not line.lstrip().startswith("#")]


def _floats(path, ln, words, what):
    try:
        return [float(w) for w in words]
    except ValueError:
        raise FileFormatError(f"{path}: line {ln}: {what}: expected numbers, got {' '.join(words)!r}") from None


def _materials(path):
    """{material number (1-based): {key: value text}} of a VAMPIRE material file."""
    out = {}
    for ln, line in enumerate(Path(path).read_text(errors="replace").splitlines(), 1):
        line = line.split("#", 1)[0].split("!", 1)[0].strip()
        if not line:
            continue
        m = re.match(r"material\[(\d+)\]\s*:\s*([\w-]+)\s*=\s*(.*)$", line, re.IGNORECASE)
        if m:
            out.setdefault(int(m.group(1)), {})[m.group(2).lower()] = (m.group(3).strip(), ln)
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


def read_vampire(ucf, mat=None, *, elements=None):
    """Read a VAMPIRE unit-cell file (and its material file): ``(state, heisenberg)``.

    Parameters
    ----------
    ucf : the ``.UCF`` file (module docstring for the layout and conventions).
    mat : the material file (default: ``vampire.mat`` or the only ``*.mat`` beside the UCF);
        without one, every moment is 1 μB with a UserWarning.
    elements : one symbol for all atoms, or one per material id; default the material files'
        ``material-element``, else Fe.

    Returns the unit cell State (periodic; spins from ``initial-spin-direction``) and the
    Heisenberg (eV, each pair once, on-site anisotropy tensors), which applies to its supercells.
    Raises FileFormatError naming the file and line for malformed files, an exchange type spinlat
    does not read (the normalised ones, which take their values from the material file) or an
    interaction naming an atom that is not in the cell."""
    import warnings

    from ..potentials import Heisenberg
    from ..state import State

    ucf = Path(validation.existing_file(ucf, "read_vampire ucf", "VAMPIRE unit-cell file"))
    rows = _rows(ucf)
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
    if kind not in _NVALUES:
        raise FileFormatError(f"{ucf}: line {iln}: exchange type {kind!r}: spinlat reads isotropic, vectorial and "
                              "tensorial interactions (the normalised types take their values from the material "
                              "file)")
    nv = _NVALUES[kind]
    try:
        m = int(iw[0])
    except ValueError:
        raise FileFormatError(f"{ucf}: line {iln}: expected 'num_interactions exchange_type'") from None
    inter = rest[1:1 + m]
    if len(inter) < m:
        raise FileFormatError(f"{ucf}: {m} interactions announced at line {iln}, {len(inter)} found (truncated?)")
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
        J = 0.5 * J / units.ELEMENTARY_CHARGE  # -½ Σ_i Σ_j: half of each directed entry, joules → eV
        key, rev = (i, j, R), (j, i, tuple(-x for x in R))
        if key not in pairs and rev in pairs:
            pairs[rev] = pairs[rev] + J.T
        else:
            pairs[key] = pairs.get(key, 0.0) + J

    if mat is None:
        cands = [ucf.parent / "vampire.mat"] + sorted(ucf.parent.glob("*.mat"))
        mat = next((c for c in cands if c.is_file()), None)
    materials = {} if mat is None else _materials(validation.existing_file(mat, "read_vampire mat", "material file"))
    moments, spins = np.ones(n), np.tile([0.0, 0.0, 1.0], (n, 1))
    if mat is None:
        warnings.warn(f"{ucf}: no material file beside it: every moment is 1 μB", UserWarning, stacklevel=2)
    onsite, names = [], {}
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
        if "uniaxial-anisotropy-constant" in props:
            text, mln = props["uniaxial-anisotropy-constant"]
            K = _floats(mat, mln, text.split()[:1], "uniaxial-anisotropy-constant")[0] / units.ELEMENTARY_CHARGE
            e = np.array([0.0, 0.0, 1.0])
            if "uniaxial-anisotropy-direction" in props:
                text, dln = props["uniaxial-anisotropy-direction"]
                e = _vector(mat, text, dln, "uniaxial-anisotropy-direction")
                if e is None:
                    raise FileFormatError(f"{mat}: line {dln}: uniaxial-anisotropy-direction: expected a 3-vector")
            if K:
                onsite.append((k, K * np.outer(e, e)))
        if "material-element" in props:
            names[k] = props["material-element"][0].strip("\"'")
    numbers = _numbers(elements, names, mats, n)
    for k, A in onsite:
        pairs[(k, k, (0, 0, 0))] = pairs.get((k, k, (0, 0, 0)), 0.0) + A
    keys = list(pairs)
    I = np.array([k[0] for k in keys], dtype=np.int64)
    Jx = np.array([k[1] for k in keys], dtype=np.int64)
    R = np.array([k[2] for k in keys], dtype=np.int64).reshape(-1, 3)
    T = np.array([pairs[k] for k in keys]).reshape(-1, 3, 3)
    positions = frac @ cell
    state = State(positions, numbers, cell=cell, pbc=True, spins=spins, moments=moments)
    ham = Heisenberg(cell, positions, numbers, I, Jx, R, T, pbc=True)
    ham.source = str(ucf)
    return state, ham


def _numbers(elements, names, mats, n):
    from ase.data import atomic_numbers as table

    if elements is not None:
        if isinstance(elements, str):
            return np.full(n, validation.atomic_numbers([elements])[0])
        z = validation.atomic_numbers(list(elements))
        if len(z) <= mats.max():
            raise InputError(f"elements: one per material id (0..{mats.max()}) or one for all, got {len(z)}")
        return z[mats]
    out = np.full(n, 26)
    for k, name in names.items():
        if name.capitalize() not in table:
            raise InputError(f"material-element {name!r} of atom {k} is not an element symbol: pass elements=")
        out[k] = table[name.capitalize()]
    return out


__all__ = ["read_vampire"]
