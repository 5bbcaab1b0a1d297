"""TB2J ``exchange.out`` files as spinlat objects: :func:`read_tb2j` gives the unit-cell
:class:`~spinlat.State` and the :class:`~spinlat.potentials.Heisenberg`, :func:`write_tb2j` writes
a Heisenberg back in TB2J's text layout.

The format itself — both text layouts, TB2J's double-counted Hamiltonian and its conversion to
spinlat's each-pair-once tensors (J_pair = T_(i,j,R) + T_(j,i,−R)ᵀ, meV → eV), single-ion
anisotropy, and every check of a file — is described and parsed in :mod:`spinlat.formats.tb2j`
(:func:`parse_tb2j` is re-exported here).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import units, validation
from ..errors import FileFormatError, InputError
from ..exchange_tensors import dmi_vector
from ..files import atomic_write
from ..formats.tb2j import parse_tb2j


def read_tb2j(path, sites="all"):
    """Read a TB2J ``exchange.out`` file (old 0.2.x or newer text layout).

    Returns ``(state, heisenberg)``: the unit-cell :class:`~spinlat.State` (positions Å, periodic,
    spins and moments (μB) from TB2J's Wannier moments, moment = |M|) and
    :meth:`Heisenberg.from_tb2j(path, sites) <spinlat.potentials.Heisenberg.from_tb2j>`
    (``sites="coupled"`` keeps only the atoms in an exchange pair or anisotropy term). Atoms of
    the file that take part in no term (ligands such as the O of an oxide, whose Wannier
    functions TB2J lists with the small moment the metal polarises on them) get moment 0:
    nothing in the file couples their spin, and as magnetic atoms they would add free spins of
    a few hundredths of a μB (with a thermostat, noise ∝ 1/√m) to every run. Pair
    tensors in eV, each pair once (see :mod:`spinlat.formats.tb2j` for the conversion from TB2J's
    double-counted sum). The Heisenberg applies to any supercell of the file's cell. Malformed or
    truncated files raise :class:`~spinlat.errors.FileFormatError` naming the line."""
    from ..potentials.heisenberg import Heisenberg
    from ..state import State

    path = validation.path(path, "read_tb2j path")
    ham = Heisenberg.from_tb2j(path, sites=sites)
    mag = ham.tb2j_moments
    moments = np.where(ham.coupled, np.linalg.norm(mag, axis=1), 0.0)
    spins = np.where(moments[:, None] > 0, mag, [0.0, 0.0, 1.0])
    state = State(ham.positions, ham.numbers, cell=ham.cell, pbc=True, spins=spins, moments=moments)
    return state, ham


def _onsite_tensors(h):
    """{atom: on-site tensor (3, 3) meV} of Heisenberg ``h`` (summed per atom; zero ones left out)."""
    onsite = {}
    for i, j, R, J in zip(h.i, h.j, h.R, h.J):
        if i == j and not R.any():
            onsite[int(i)] = onsite.get(int(i), 0.0) + np.asarray(J) / units.MEV
    return {a: A for a, A in sorted(onsite.items()) if np.any(A)}


def _single_ion_terms(onsite):
    """[(atom, k1 meV, k1dir (3,))] of the on-site tensors ``onsite`` ({atom: (3, 3) meV}) when each
    has the form k1 e eᵀ, else None."""
    out = []
    for a, A in onsite.items():
        w, v = np.linalg.eigh(0.5 * (A + A.T))
        k = int(np.argmax(np.abs(w)))
        k1, e = float(w[k]), v[:, k]
        if np.abs(A - k1 * np.outer(e, e)).max() > 1e-9 * max(abs(k1), 1e-12):
            return None
        e = e * (1.0 if e[np.argmax(np.abs(e))] > 0 else -1.0)
        out.append((a, k1, e))
    return out


def write_tb2j(path, state, heisenberg, names=None):
    """Write ``heisenberg`` (template atoms: ``state``'s atoms, same order) as a TB2J ``exchange.out``
    in the newer text layout, with TB2J's double counting: each pair (i, j, R) with tensor J (eV)
    becomes the entries (i, j, R) and (j, i, −R) with T = J/2 and Tᵀ, written as J_iso = tr T/3
    (meV), DMI (antisymmetric part) and J_ani = sym T − J_iso·1. On-site terms (i = j, R = 0;
    summed per atom) go into TB2J's ``Single Ion Anisotropy (meV)`` section as k1 and k1dir when
    each is a single-ion term −k1 (s·k1dir)² (tensor k1 k1dir k1dirᵀ, as :func:`read_tb2j`
    reads that section), otherwise into the tensor section ``Single Ion Anisotropy:`` of
    TB2J ≥ 0.9 (E = −Σ s_iᵀ A_i s_i, A in meV). ``state`` must be the template unit cell (positions Å,
    moments μB). ``names``: the atom names (default: element symbol and its count, Fe1, Fe2, ...);
    InputError for names the file could not be read back with (blanks, parentheses, not
    starting with a capital letter, repeated, or not one per atom)."""
    from ase.data import chemical_symbols

    h = heisenberg
    if len(state) != len(h.numbers) or not np.array_equal(state.numbers, h.numbers):
        raise FileFormatError("write_tb2j: state must hold the Heisenberg template's atoms")
    if names is not None:
        names = [str(nm) for nm in names]
        bad = next((nm for nm in names if not nm or any(c.isspace() for c in nm) or "(" in nm or ")" in nm
                    or not nm[:1].isupper()), None)
        if len(names) != len(state) or bad is not None or len(set(names)) != len(names):
            raise InputError(f"write_tb2j: names must be {len(state)} distinct atom names without blanks or "
                             "parentheses, each starting with its element symbol (as TB2J writes Fe1, O2, ...; the "
                             f"file could not be read back otherwise), got {names}")
    if names is None:
        count = {}
        names = []
        for z in state.numbers:
            s = chemical_symbols[z]
            count[s] = count.get(s, 0) + 1
            names.append(f"{s}{count[s]}")
    pos = state.positions
    mag = state.magnetic_moments
    out = ["=" * 90, "Information: ", "Written by spinlat (TB2J text layout).", "", "=" * 90, "Cell (Angstrom):"]
    out += ["{:10.8f}  {:10.8f}  {:10.8f}".format(*c) for c in h.cell]
    out += ["", "=" * 90, "Atoms:  ", "(Note: charge and magmoms only count the wannier functions.)",
            "{:^12s} {:^13s} {:^13s} {:^13s} {:^9s} {:^9s} {:^9s} {:^9s}".format(
                "Atom_number", "x", "y", "z", "w_charge", "M(x)", "M(y)", "M(z)")]
    for a in range(len(state)):
        out.append("{:<12s} {:13.8f} {:13.8f} {:13.8f} {:9.4f} {:9.4f} {:9.4f} {:9.4f}".format(
            names[a], *pos[a], 0.0, *mag[a]))
    out.append("{:<12s} {:13s} {:13s} {:13s} {:9.4f} {:9.4f} {:9.4f} {:9.4f}".format(
        "Total", "", "", "", 0.0, *mag.sum(axis=0)))
    onsite = _onsite_tensors(h)
    sia = _single_ion_terms(onsite)
    if sia:
        out += ["", "-" * 90, "Single Ion Anisotropy (meV): ",
                "(k1 is the anisotropy constant, k1dir is the direction vector)", "Atom number       k1              k1dir"]
        out += ["{:<12s} {:.10f} ({:.10f}, {:.10f}, {:.10f})".format(names[a], k1, *e) for a, k1, e in sia]
    elif onsite:   # TB2J ≥ 0.9's tensor section: E = −Σ s_iᵀ A_i s_i (meV)
        out += ["", "=" * 90, "Single Ion Anisotropy: "]
        out += ["{:^12s} {:^13s} {:^13s} {:^13s}".format(*head) for head in (
            ("Atom_number", "A_xx", "A_xy", "A_xz"), ("", "A_yx", "A_yy", "A_yz"), ("", "A_zx", "A_zy", "A_zz"))]
        for a, A in onsite.items():
            out += ["{:<12s} {:.10f} {:.10f} {:.10f}".format(names[a] if r == 0 else "", *A[r]) for r in range(3)]
            out.append("-" * 88)
    out += ["", "=" * 90, "Exchange: ",
            "{:6s} {:5s} {:15s} {:7s} {:24s} {:11s} ".format("    i", "    j", "         R", "  J_iso(meV)",
                                                              "         vector", "distance(A)")]
    rows = []
    for i, j, R, J in zip(h.i, h.j, h.R, h.J):
        if i == j and not R.any():
            continue
        T = 0.5 * J / units.MEV
        rows.append((i, j, R, T))
        rows.append((j, i, -R, T.T))
    for i, j, R, T in rows:
        vec = pos[j] + R @ h.cell - pos[i]
        dist = float(np.linalg.norm(vec))
        jiso = np.trace(T) / 3
        d = dmi_vector(T)
        jani = 0.5 * (T + T.T) - jiso * np.eye(3)
        out.append("-" * 88)
        out.append("   {:5s} {:5s} ({:3d}, {:3d}, {:3d}) {:.10f}   ({:6.3f}, {:6.3f}, {:6.3f}) {:6.3f} ".format(
            names[i], names[j], *(int(x) for x in R), jiso, *vec, dist))
        out.append(f"J_iso: {jiso:.10f} ")
        out.append("[Testing!] DMI: ({:.10f} {:.10f} {:.10f})".format(*d))
        out.append("[Testing!]J_ani:")
        out += ["[[{:.10f} {:.10f} {:.10f}]".format(*jani[0]), " [{:.10f} {:.10f} {:.10f}]".format(*jani[1]),
                " [{:.10f} {:.10f} {:.10f}]]".format(*jani[2])]
    with atomic_write(path, name="write_tb2j path") as fh:
        fh.write("\n".join(out) + "\n")


__all__ = ["read_tb2j", "parse_tb2j", "write_tb2j"]
