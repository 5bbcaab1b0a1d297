"""General bilinear (Heisenberg) exchange between unit spins.

Energy, per unordered pair counted once (DESIGN.md)::

    E = − Σ_{pairs (i, j)} s_iᵀ J_ij s_j

with J_ij a 3×3 tensor in eV. Its parts:

- isotropic exchange J·1 (J > 0 ferromagnetic);
- Dzyaloshinskii-Moriya interaction, the antisymmetric part: for a DMI vector D,
  s_iᵀ [D] s_j = D·(s_i × s_j) with [D] = [[0, D_z, −D_y], [−D_z, 0, D_x], [D_y, −D_x, 0]],
  so the pair energy is −D·(s_i × s_j);
- symmetric anisotropic exchange (the symmetric traceless part).

The pair (j, i) with tensor J_ijᵀ is the same pair: it is never added a second time. A pair with
i = j and R = 0 is an on-site term −s_iᵀ A s_i (single-ion anisotropy written as a tensor).

The Hamiltonian is stored as a *template*: a reference cell with its atoms (cell rows, positions,
atomic numbers, periodic directions) and pairs (i0, j0, R, J) where i0, j0 index the template's
atoms and R is an integer lattice vector of the template cell (zero along non-periodic
directions): atom j0 sits at ``positions[j0] + R @ cell``. ``compute`` applies it to any state
that is a supercell of the template (an integer matrix between the periodic cells, up to a small
homogeneous strain), or a copy of a template cluster, wherever that state sits.

Pairs are bonds between atoms, as LAMMPS bonds are: they are found once and then follow the
atoms. The rules (implemented in :mod:`spinlat.sites`):

- Matching. Every atom of the state is identified with a template site (and a cell of the
  supercell) up to one global translation: in the template's own frame if every atom is within
  ``position_tolerance`` of a site there, else with the translation that puts atom 0 on the
  lowest-index site of its species from which every atom fits. Only the periodic cell vectors are
  used; vectors along non-periodic directions (vacuum, a zero vector as ASE writes for 2D systems,
  no cell for a cluster) are ignored. So the energy is exactly the same (the same pair table) for
  a rigidly translated state, for positions wrapped into the cell or not, and for any vacuum; a
  state with its atoms reordered gets the pair table permuted accordingly (the same energy up to
  the summation order).
- Following. The pair table is kept, without matching again, while the states evaluated have
  the same atom count, atomic numbers, pbc and supercell, and each atom moved by less than
  ``position_tolerance`` relative to atom 0 since the previous evaluation. The pairs then follow
  the atoms through any dynamics: a drifting centre of mass, positions leaving the cell, an atom
  moving far from its original site (a hot or diffusing atom keeps its pairs; J does not depend on
  distance). Anything else (another structure, another atom order: an atom would have to move
  onto another atom's place) is matched afresh, and a structure that does not match raises
  :class:`~spinlat.errors.CellError` (pbc or cell) or :class:`~spinlat.errors.InputError` (atom
  counts, species, an atom farther than ``position_tolerance`` from every site, two atoms on one
  site) naming the atom. Up to four pair tables are cached, so states of different sizes can be
  evaluated in turn. Checking that a state follows costs one O(N) pass; matching costs
  O(N log T) (k-d tree over the T template sites), and the pair table O(N × pairs per site).
- Orientation. A fully periodic state may be the template crystal turned (an ASE cubic cell
  against the primitive cell of a TB2J file written in the DFT code's orientation): the rotation
  Q is found from the bonds around atom 0 (:meth:`spinlat.sites.SiteTemplate.oriented_supercell`,
  the smallest rotation that fits) and the pair tensors are turned with the crystal, J → Q J Qᵀ
  (:meth:`Heisenberg.tensors_on`), so DMI vectors and anisotropy axes stay attached to the
  bonds; isotropic exchange is unchanged. The positions fix the rotation only up to the
  lattice's point group: when several rotations fit, the smallest is taken and, for anisotropic
  tensors, an :class:`OrientationAmbiguityWarning` says so. A crystal turned by less than the
  strain tolerance keeps the template's orientation (the deviation counts as strain).
- Sublattices that only the exchange distinguishes (the structure maps onto itself under a
  translation that is not a template lattice vector, but the pair tensors do not, e.g. the two
  sites of an antiferromagnet's conventional cell with their own TB2J couplings): positions alone
  cannot tell such sites apart. A state in the template's frame uses the frame; a translated
  state is assigned by atom 0's site (the rule above) and a :class:`SublatticeAmbiguityWarning`
  says so (see :meth:`Heisenberg.sublattice_ambiguity`). A state that follows keeps its
  assignment in either case.

J does not depend on interatomic distances here: lattice forces and stress are exactly zero, and
the term needs no distance neighbour list (``cutoff = 0``). Spin terms act only on magnetic atoms
(moment > 0); magnetic forces are h_i = −∂E/∂m_i = −(1/|m_i|)(1 − s_i s_iᵀ) ∂E/∂s_i in eV/μB.
"""

from __future__ import annotations

import warnings

import numba
import numpy as np

from .. import validation
from ..errors import CellError, InputError, ShapeError
from ..exchange_tensors import dmi_matrix, dmi_vector  # noqa: F401  -- public here too
from ..sites import reduce_lattice
from .base import Evaluation, Potential
from ..keywords import parameters_of, refuse_other_names

#: expansions kept per Heisenberg (states of different sizes or orders evaluated in turn)
_MAX_TABLES = 4


class SublatticeAmbiguityWarning(UserWarning):
    """A translated state was matched to a template whose exchange distinguishes sites that its
    structure does not; the assignment was decided by the atom order (module docstring)."""


class OrientationAmbiguityWarning(UserWarning):
    """A state turned against the template was matched with one of several rotations its
    positions cannot tell apart, and the template has anisotropic tensors that turn with it
    (module docstring, "Orientation")."""


# --------------------------------------------------------------------------------- numba kernel


@numba.njit(cache=True)
def _fields_kernel(spins, moments, grad, h):
    """h_i = −(1/|m_i|)(g_i − (g_i·s_i) s_i) (eV/μB); zero where the moment is zero."""
    for i in range(spins.shape[0]):
        m = moments[i]
        if m > 0:
            gs = grad[i, 0] * spins[i, 0] + grad[i, 1] * spins[i, 1] + grad[i, 2] * spins[i, 2]
            for c in range(3):
                h[i, c] = -(grad[i, c] - gs * spins[i, c]) / m
        else:
            h[i, 0] = h[i, 1] = h[i, 2] = 0.0


def _fields_from_gradient(spins, moments, grad):
    """h = −(1/|m|)(1 − ssᵀ) g (eV/μB); zero where the moment is zero."""
    h = np.empty_like(grad)
    _fields_kernel(np.ascontiguousarray(spins), np.ascontiguousarray(moments), np.ascontiguousarray(grad), h)
    return h


class _Expansion:
    """The template mapped onto one state: its :class:`~spinlat.sites.SiteMap` and the directed CSR
    table over the state's atoms."""

    __slots__ = ("sites", "offsets", "dst", "tidx", "pair_i", "pair_j", "pair_t", "couplings")

    @property
    def n(self):
        return self.sites.n


# --------------------------------------------------------------------------------- the potential


@refuse_other_names()
class Heisenberg(Potential):
    """Bilinear exchange E = −Σ_{pairs} s_iᵀ J_ij s_j (eV), each unordered pair once, J > 0
    ferromagnetic; lattice forces and stress are zero (J does not depend on distance).

    Parameters
    ----------
    cell : (3, 3) template cell, rows, Å.
    positions : (T, 3) template atom positions, Å (Cartesian), or fractional if ``scaled``.
    numbers : (T,) atomic numbers of the template atoms.
    i, j : (P,) template atom indices of each pair.
    R : (P, 3) integer lattice vectors: atom j of the pair sits at ``positions[j] + R @ cell``.
    J : (P, 3, 3) pair tensors in eV, or (P,) isotropic couplings (J·1) in eV.
    pbc : periodic directions of the template (default all).
    scaled : ``positions`` are fractional coordinates.
    strain_tolerance : largest homogeneous strain (max |ε_ab|) accepted between the state's
        periodic cell and an integer supercell of the template cell (default 0.05).
    position_tolerance : largest distance (Å) between a state atom and its template site when a
        state is matched, and largest move of an atom relative to atom 0 between two evaluations
        that keep the pair table (module docstring); default 0.4 × the smallest distance between
        template sites (0.99 Å for bcc Fe), below half the smallest periodic cell height.

    The cell vectors along non-periodic directions are not used (they may be zero). Raises
    :class:`~spinlat.errors.CellError` if the periodic cell vectors are zero or dependent,
    :class:`~spinlat.errors.InputError` for bad pairs or coinciding template atoms.
    """

    cutoff = 0.0
    _PARAMETERS = ("cell", "positions", "numbers", "i", "j", "R", "J", "pbc", "strain_tolerance",
                   "position_tolerance")

    def __init__(self, cell, positions, numbers, i, j, R, J, pbc=True, scaled=False,
                 strain_tolerance=0.05, position_tolerance=None):
        from ..sites import SiteTemplate
        numbers = validation.atomic_numbers(numbers)
        nt = len(numbers)
        if nt == 0:
            raise InputError("Heisenberg template needs at least one atom")
        self.pbc = validation.pbc(pbc, "Heisenberg pbc")
        scaled = validation.boolean(scaled, "Heisenberg scaled")
        self.cell = validation.real_array(np.zeros((3, 3)) if cell is None else cell, "cell", (3, 3))
        pos = validation.real_array(positions, "positions", (nt, 3))
        if scaled and abs(np.linalg.det(self.cell)) < 1e-10:
            raise CellError("Heisenberg: scaled (fractional) positions need a cell with three independent vectors")
        self.positions = pos @ self.cell if scaled else pos
        self.numbers = numbers
        i = np.atleast_1d(np.asarray(i))
        p = len(i)
        self.i = validation.integer_array(i, "i", (p,))
        self.j = validation.integer_array(j, "j", (p,))
        R = validation.real_array(R, "R", (p, 3))
        if np.any(R != np.round(R)):
            raise InputError("pair lattice vectors R must be integers")
        self.R = R.astype(np.int64)
        J = np.asarray(J, dtype=np.float64)
        if J.shape == (p,):
            J = J[:, None, None] * np.eye(3)[None]
        self.J = validation.real_array(J, "J", (p, 3, 3))
        for name, idx in (("i", self.i), ("j", self.j)):
            if p and (idx.min() < 0 or idx.max() >= nt):
                raise InputError(f"pair index {name} out of range 0..{nt - 1}")
        if p and np.any(self.R[:, ~self.pbc] != 0):
            raise InputError("pairs cross a non-periodic direction of the template (R ≠ 0 there)")
        self._sites = SiteTemplate(self.cell, self.positions, numbers, self.pbc, strain_tolerance,
                                   position_tolerance, name="Heisenberg template")
        self.strain_tolerance = self._sites.strain_tolerance
        self.position_tolerance = self._sites.tolerance
        self._tables = []  # expansions, most recently used first
        self._ambiguity = None

    # ----------------------------------------------------------------- constructors
    @classmethod
    def from_tb2j(cls, path, sites="all") -> "Heisenberg":
        """The Heisenberg Hamiltonian of a TB2J ``exchange.out`` file (old 0.2.x or newer text
        format), converted to the per-pair-once convention; see :mod:`spinlat.formats.tb2j`.
        Applies to any supercell of the file's cell.

        ``sites``: ``"all"`` (default) keeps every atom of the file in the template (states
        must hold the ligands too, e.g. the O of an oxide); ``"coupled"`` keeps only the atoms
        that take part in a term of the file (an exchange pair or a single-ion anisotropy), for
        states of the magnetic sublattice alone. The result also carries ``source`` (the path),
        ``n_entries`` (directed entries in the file), ``tb2j_moments`` ((T, 3) μB, the file's
        moments of the template atoms) and ``coupled`` ((T,) bool, whether each template atom
        takes part in a term). Raises FileFormatError naming the line of a malformed or
        truncated file, InputError for another ``sites``."""
        from ..formats.tb2j import pair_tensors, parse_tb2j

        path = validation.path(path, "Heisenberg.from_tb2j path")
        sites = validation.choice(sites, "Heisenberg.from_tb2j sites", ("all", "coupled"))
        data = parse_tb2j(path)
        i, j, R, J = pair_tensors(data, path)
        positions, numbers, moments = data["positions"], data["numbers"], data["magmoms"]
        coupled = np.zeros(len(numbers), dtype=bool)
        coupled[i] = coupled[j] = True
        if sites == "coupled":
            if not coupled.any():
                raise FileFormatError(f"{path}: no exchange pair nor anisotropy term: no coupled site to keep")
            new = np.cumsum(coupled) - 1
            i, j = new[i], new[j]
            positions, numbers, moments = positions[coupled], numbers[coupled], moments[coupled]
            coupled = coupled[coupled]
        ham = cls(data["cell"], positions, numbers, i, j, R, J, pbc=True)
        ham.source = str(path)
        ham.n_entries = len(data["entries"])
        ham.tb2j_moments = moments
        ham.coupled = coupled
        return ham

    @classmethod
    @refuse_other_names(extra=parameters_of("spinlat.potentials.heisenberg:Heisenberg.__init__",
                                            exclude=("cell", "positions", "numbers", "i", "j", "R", "J", "pbc")))
    def from_neighbors(cls, state, J=(), D=(), dmi="bloch", normal=(0.0, 0.0, 1.0),
                       shell_tolerance=1e-3, **kwargs) -> "Heisenberg":
        """Exchange and DMI by neighbour shells of ``state`` (which becomes the template).

        Shells are the distinct pair distances (grouped within ``shell_tolerance`` Å), nearest
        first, over all atom pairs (non-magnetic atoms included: a shell none of whose pairs joins
        two atoms of moment > 0 while J or D of it is non-zero gives a UserWarning, since that
        value acts on nothing). Every unordered pair in shell k gets the isotropic coupling
        ``J[k]`` (eV) and a DMI vector of magnitude ``D[k]`` (eV; a value above 1 eV gives a
        UserWarning, likely meV: :func:`spinlat.validation.magnetic_energy`):

        - ``dmi="bloch"``: D_ij = D r̂_ij, along the bond from i to j (bulk/B20 chirality);
        - ``dmi="interfacial"``: D_ij = D (n̂ × r̂_ij) with n̂ = ``normal`` (default ẑ, the film
          normal), the Néel-type DMI of thin films.

        Pair energy: −J s_i·s_j − D_ij·(s_i × s_j). This is Spirit's Heisenberg Hamiltonian with
        its per-unique-pair sums: Spirit's ``J`` and ``D`` (meV) equal ``J``, ``D`` here times
        1000; Spirit's Bloch chirality (1) is ``"bloch"`` (inverse Bloch, −1: ``"bloch"`` with −D);
        Spirit's Néel chirality (2) uses D_ij = D r̂_ij × ẑ, which is ``"interfacial"`` with −D
        (Spirit's inverse Néel, −2, is ``"interfacial"`` with +D). Checked against Spirit 2.2 in
        tests/potentials/test_heisenberg.py (peers).
        """
        from ..neighbors import neighbor_pairs

        J = np.atleast_1d(np.asarray(J, dtype=np.float64))
        D = np.atleast_1d(np.asarray(D, dtype=np.float64))
        if J.ndim != 1 or D.ndim != 1:
            raise ShapeError("J and D must be sequences of per-shell values (eV)")
        if not (np.all(np.isfinite(J)) and np.all(np.isfinite(D))):
            raise InputError("J and D must be finite")
        validation.magnetic_energy(J, "Heisenberg.from_neighbors J")
        validation.magnetic_energy(D, "Heisenberg.from_neighbors D")
        if dmi not in ("bloch", "interfacial"):
            raise InputError(f"dmi must be 'bloch' or 'interfacial', got {dmi!r}")
        nshell = max(len(J), len(D))
        normal = np.asarray(normal, dtype=np.float64)
        if normal.shape != (3,) or not np.linalg.norm(normal) > 0:
            raise InputError("normal must be a non-zero 3-vector")
        normal = normal / np.linalg.norm(normal)
        if nshell == 0 or len(state) < 1:
            ii = np.zeros(0, np.int64)
            return cls(state.cell, state.positions, state.numbers, ii, ii, np.zeros((0, 3)),
                       np.zeros((0, 3, 3)), pbc=state.pbc, **kwargs)
        cutoff = 3.0
        while True:
            i, j, S, d = neighbor_pairs(state, cutoff)
            shells = _shells(d, shell_tolerance)
            complete = [s for s in shells if s < cutoff - 2 * shell_tolerance]
            if len(complete) >= nshell:
                break
            if cutoff > 200.0:
                raise InputError(f"found only {len(complete)} neighbour shells within {cutoff:.0f} Å; "
                                 f"{nshell} asked for")
            cutoff *= 1.5
        radii = np.array(complete[:nshell])
        shell = np.argmin(np.abs(d[:, None] - radii[None, :]), axis=1)
        keep = np.abs(d - radii[shell]) <= shell_tolerance
        i, j, S, d, shell = i[keep], j[keep], S[keep], d[keep], shell[keep]
        vec = state.positions[j] - state.positions[i] + S @ state.cell
        rhat = vec / d[:, None]
        Jp = np.concatenate([J, np.zeros(nshell - len(J))])[shell]
        Dp = np.concatenate([D, np.zeros(nshell - len(D))])[shell]
        _warn_inert_shells(state, i, j, shell, radii, J, D)
        dvec = rhat if dmi == "bloch" else np.cross(normal[None, :], rhat)
        tensors = Jp[:, None, None] * np.eye(3)[None] + dmi_matrix(Dp[:, None] * dvec)
        ham = cls(state.cell, state.positions, state.numbers, i, j, S, tensors, pbc=state.pbc, **kwargs)
        ham.shell_radii = radii
        return ham

    # ----------------------------------------------------------------- template facts
    @property
    def n_pairs(self) -> int:
        """Number of template pairs (each unordered pair once)."""
        return len(self.i)

    def _pair_shifts(self):
        """Lattice shift of each pair between the *wrapped* template sites: atom j of the pair sits
        at wrapped site j + shift when atom i sits at wrapped site i (template cell units)."""
        off = self._sites.offset
        return self.R + off[self.j] - off[self.i]

    def _invariant_under(self, perm, shift) -> bool:
        """Whether the pair set maps onto itself when template site a becomes site perm[a] shifted
        by shift[a] (a translation of the structure, :meth:`SiteTemplate.structure_translations`)."""
        ps = self._pair_shifts()
        a = _canonical_pairs(self.i, self.j, ps, self.J)
        b = _canonical_pairs(perm[self.i], perm[self.j], ps + shift[self.j] - shift[self.i], self.J)
        scale = max(float(np.abs(self.J).max(initial=0.0)), 1e-300)
        return a[0].shape == b[0].shape and np.array_equal(a[0], b[0]) and \
            bool(np.allclose(a[1], b[1], rtol=0.0, atol=1e-6 * scale))

    def sublattice_ambiguity(self):
        """A translation τ (Å, (3,)) that maps the template's structure onto itself but not its
        exchange, or None. When one exists, positions alone cannot say which template site an
        atom of a translated state is on; see the module docstring for the rule then used."""
        if self._ambiguity is None:
            found = next(self._sites.structure_translations(symmetric=self._invariant_under), None)
            self._ambiguity = (False,) if found is None else (True, found[0])
        return self._ambiguity[1] if self._ambiguity[0] else None

    @property
    def _expansion(self):
        """The most recently used expansion (None before the first evaluation)."""
        return self._tables[0] if self._tables else None

    # ----------------------------------------------------------------- mapping onto a state
    def _expand(self, state) -> _Expansion:
        """The pair table of ``state``: a cached one while the state follows it (same atoms that
        moved little since the previous call, :meth:`SiteMap.follows`), else a fresh match."""
        for k, ex in enumerate(self._tables):
            if ex.sites.follows(state):
                if k:
                    self._tables.insert(0, self._tables.pop(k))
                return ex
        sites = self._sites.match(state)
        if sites.anchored:
            tau = self.sublattice_ambiguity()
            if tau is not None:
                warnings.warn(
                    f"Heisenberg: the state does not sit in the template's frame, and a translation by "
                    f"{np.round(tau, 4).tolist()} Å maps the template's sites onto themselves but not its exchange; "
                    f"the atoms were assigned by putting atom 0 on template site {int(sites.site[0])} (the "
                    "lowest-index site that fits). Build the state in the template's frame or order its atoms "
                    "so that atom 0 is on the intended site.", SublatticeAmbiguityWarning, stacklevel=4)
        if sites.rotation is not None and sites.rotation_choices > 1 and not self.spin_rotation_invariant:
            from scipy.spatial.transform import Rotation

            rv = Rotation.from_matrix(sites.rotation).as_rotvec()
            angle = float(np.linalg.norm(rv))
            warnings.warn(
                f"Heisenberg: the state is the template crystal turned by {np.degrees(angle):.2f}° about "
                f"{np.round(rv / angle, 4).tolist()}, and its positions fit {sites.rotation_choices} orientations "
                "that the lattice's symmetry makes indistinguishable; the anisotropic exchange tensors (DMI, "
                "anisotropy) were turned by the smallest of these rotations. If the exchange does not share that "
                "symmetry the choice matters: build the state in the template's orientation to avoid it.",
                OrientationAmbiguityWarning, stacklevel=4)
        ex = self._build_expansion(sites)
        self._tables.insert(0, ex)
        del self._tables[_MAX_TABLES:]
        return ex

    def _build_expansion(self, sites) -> _Expansion:
        """Directed CSR pair table over the atoms of a matched state (``sites``)."""
        k_of, ncoord, hnf, ncell = sites.site, sites.lattice, sites.hnf, sites.ncell
        nt, n = len(self.numbers), sites.n
        key = k_of * ncell + reduce_lattice(ncoord, hnf)
        lookup = np.full(nt * ncell, -1, dtype=np.int64)
        lookup[key] = np.arange(n)
        # template-atom bond lists: (tensor index, target template atom, lattice shift between wrapped sites)
        pshift = self._pair_shifts()
        npair = len(self.i)
        bt = np.concatenate([np.arange(npair), npair + np.arange(npair)])
        bsrc = np.concatenate([self.i, self.j])
        btgt = np.concatenate([self.j, self.i])
        bR = np.concatenate([pshift, -pshift])
        order = np.argsort(bsrc, kind="stable")
        bt, bsrc, btgt, bR = bt[order], bsrc[order], btgt[order], bR[order]
        nb = np.bincount(bsrc, minlength=nt)
        bstart = np.concatenate([[0], np.cumsum(nb)])
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(nb[k_of], out=offsets[1:])
        itype = np.int32 if n < 2**31 - 1 else np.int64
        dst = np.empty(offsets[-1], dtype=itype)
        tidx = np.empty(offsets[-1], dtype=np.int32)
        for k in range(nt):
            atoms = np.flatnonzero(k_of == k)
            sl = slice(bstart[k], bstart[k + 1])
            if nb[k] == 0 or len(atoms) == 0:
                continue
            chunk = max(1, 2**20 // int(nb[k]))  # bounded temporaries on large supercells
            for c in range(0, len(atoms), chunk):
                at = atoms[c:c + chunk]
                cells = ncoord[at][:, None, :] + bR[sl][None, :, :]
                tgt = btgt[sl][None, :] * ncell + reduce_lattice(cells.reshape(-1, 3), hnf).reshape(len(at), nb[k])
                rows = offsets[at][:, None] + np.arange(nb[k])[None, :]
                dst[rows] = lookup[tgt]
                tidx[rows] = bt[sl][None, :]
        ex = _Expansion()
        ex.sites = sites
        ex.couplings = None
        ex.offsets, ex.dst, ex.tidx = offsets, dst, tidx
        # each unordered expanded pair once: directed entries with tensor index < P
        src = np.repeat(np.arange(n), np.diff(offsets))
        first = tidx < npair
        ex.pair_i, ex.pair_j, ex.pair_t = src[first], dst[first].astype(np.int64), tidx[first].astype(np.int64)
        return ex

    def pairs(self, state):
        """Expanded pair table on ``state``: (i, j, J) with J (E, 3, 3) in eV, each pair once
        (a template pair that maps onto the same atoms twice in a small supercell appears twice).
        The table follows the atoms (module docstring); raises like ``compute``."""
        ex = self._expand(state)
        return ex.pair_i, ex.pair_j, self._tensors(ex.sites.rotation)[ex.pair_t]

    # ----------------------------------------------------------------- evaluation
    def _tensors(self, rotation=None):
        """The (2P, 3, 3) table of the pair tensors and their transposes (eV), in the state's frame:
        turned by ``rotation`` Q (J → Q J Qᵀ: spins are axial vectors and Q proper) when the state
        is the template crystal rotated (:attr:`SiteMap.rotation`); isotropic tensors unchanged."""
        t = getattr(self, "_tensor_table", None)
        if t is None or t.shape[0] != 2 * len(self.J):
            t = self._tensor_table = np.ascontiguousarray(
                np.concatenate([self.J, np.swapaxes(self.J, 1, 2)]))
        if rotation is None or self.spin_rotation_invariant:
            return t
        return np.ascontiguousarray(np.einsum("ab,pbc,dc->pad", rotation, t, rotation))

    def tensors_on(self, state):
        """Pair tensors (P, 3, 3) eV of the template in ``state``'s Cartesian frame: ``J`` itself
        unless ``state`` is the template crystal rotated by Q (then Q J Qᵀ); raises like
        ``compute``."""
        return self._tensors(self._expand(state).sites.rotation)[:len(self.J)]

    def spin_couplings(self, state, neighbors=None):
        """:class:`~spinlat.potentials.couplings.LinearSpinCouplings` of the expanded pair table on
        ``state``: each pair (i, j, J) as (i → j, J) and (j → i, Jᵀ) over the table of the
        template's tensors and their transposes, pairs touching a non-magnetic atom left out (a
        template pair with i = j and R = 0, an on-site term, and pairs of an atom with its own
        periodic image stay in the table as couplings of the atom with itself). The same object
        while the state follows the same pair table with the same magnetic atoms; raises like
        ``compute``."""
        return self._couplings(state)

    def _couplings(self, state):
        from .couplings import LinearSpinCouplings

        ex = self._expand(state)
        mag = state.moments > 0
        if ex.couplings is not None and np.array_equal(ex.couplings[0], mag):
            return ex.couplings[1]
        offsets, dst, tidx = ex.offsets, ex.dst, ex.tidx
        if not np.all(mag):
            src = np.repeat(np.arange(ex.n), np.diff(offsets))
            keep = mag[src] & mag[dst]
            offsets = np.zeros(ex.n + 1, dtype=np.int64)
            np.cumsum(np.bincount(src[keep], minlength=ex.n), out=offsets[1:])
            dst, tidx = dst[keep], tidx[keep]
        c = LinearSpinCouplings(ex.n, offsets, dst, tensor_index=tidx, tensors=self._tensors(ex.sites.rotation))
        ex.couplings = (mag, c)
        return c

    def _evaluate(self, state, neighbors, forces, magnetic_forces, stress) -> Evaluation:
        """Energy (eV), per-atom energies (each pair split half/half), zero forces (eV/Å) and
        stress (eV/Å³), magnetic forces −∂E/∂m (eV/μB), from :meth:`spin_couplings`."""
        n = len(state)
        energies, h = self._couplings(state).evaluate(state.spins, state.moments, True, magnetic_forces)
        return Evaluation(float(energies.sum()), np.zeros((n, 3)) if forces else None, h,
                          np.zeros(6) if stress else None, energies)

    def local_fields(self, state, neighbors, atoms) -> np.ndarray:
        """Magnetic forces −∂E/∂m (eV/μB) of the atoms ``atoms`` only, touching only their pairs."""
        atoms = np.asarray(atoms, dtype=np.int64)
        g = self._couplings(state).coupled_fields(state.spins, atoms)  # −∂E/∂s
        return _fields_from_gradient(state.spins[atoms], state.moments[atoms], -g)

    def rotation_fields(self, state, neighbors, atoms) -> np.ndarray:
        """Unprojected fields −(1/|m_i|) ∂E/∂s_i = Σ_j J_ij s_j / |m_i| (eV/μB) of ``atoms`` (0 on
        non-magnetic atoms): E is linear in each s_i, so rotating s_i about this field is the
        exact motion of s_i (see ``Potential.rotation_fields``)."""
        return self._couplings(state).rotation_fields(state.spins, state.moments, atoms)

    @property
    def spin_rotation_invariant(self) -> bool:
        """True when every pair tensor is isotropic (J·1): no DMI, no anisotropic exchange."""
        iso = np.trace(self.J, axis1=1, axis2=2)[:, None, None] / 3.0 * np.eye(3)[None]
        return bool(np.allclose(self.J, iso, rtol=0.0, atol=1e-12 * max(1.0, float(np.abs(self.J).max(initial=0.0)))))

    def __repr__(self):
        return f"Heisenberg(n_sites={len(self.numbers)}, n_pairs={self.n_pairs})"

    def digest_items(self) -> tuple:
        """Template (cell, positions, numbers, pbc), the canonical pair set (pair order and
        direction do not count) and the matching tolerances, for :meth:`parameter_digest`."""
        keys, tensors = _canonical_pairs(self.i, self.j, self.R, self.J)
        return (self.cell, self.positions, self.numbers, self.pbc, keys, tensors,
                self.strain_tolerance, self.position_tolerance)


def _warn_inert_shells(state, i, j, shell, radii, J, D) -> None:
    """UserWarning for each shell with a non-zero J or D none of whose pairs joins two magnetic
    atoms of ``state`` (moment > 0), when ``state`` has both magnetic and non-magnetic atoms: the
    shells count all atom pairs, so such a coupling acts on nothing."""
    mag = np.asarray(state.moments) > 0
    if mag.all() or not mag.any():
        return
    both = mag[i] & mag[j]
    for k, r in enumerate(radii):
        value = [f"{name}[{k}] = {v[k]:g} eV" for name, v in (("J", J), ("D", D)) if k < len(v) and v[k] != 0]
        if value and not np.any(both[shell == k]):
            warnings.warn(f"Heisenberg.from_neighbors: shell {k + 1} ({r:.4f} Å) holds no pair of two magnetic "
                          f"atoms (its pairs involve an atom of moment 0), so {' and '.join(value)} acts on "
                          f"nothing; shells count all atom pairs (the result's shell_radii): give 0 for this shell "
                          f"and the value for the shell of the magnetic pairs meant", UserWarning, stacklevel=4)


def _canonical_pairs(i, j, shift, J):
    """Directed pair set (keys (K, 5): i, j, shift; summed 3×3 tensors (K, 3, 3)) of pairs
    (i, j, shift, J), both directions ((j, i, −shift, Jᵀ)), zero tensors dropped, sorted by key."""
    keys = np.column_stack([np.concatenate([i, j]), np.concatenate([j, i]), np.concatenate([shift, -shift])])
    tens = np.concatenate([J, np.swapaxes(J, 1, 2)])
    if not len(keys):
        return keys.reshape(0, 5), tens
    uniq, inv = np.unique(keys, axis=0, return_inverse=True)
    total = np.zeros((len(uniq), 3, 3))
    np.add.at(total, inv.ravel(), tens)
    keep = np.abs(total).reshape(len(total), -1).max(axis=1) > 0
    return uniq[keep], total[keep]


def _shells(d, tol):
    """Distinct distances (Å) grouped within ``tol``, ascending (each group's smallest member)."""
    if len(d) == 0:
        return []
    u = np.sort(d)
    starts = np.concatenate([[True], np.diff(u) > tol])
    return [float(x) for x in u[starts]]


__all__ = ["Heisenberg", "OrientationAmbiguityWarning", "SublatticeAmbiguityWarning", "dmi_matrix", "dmi_vector"]
