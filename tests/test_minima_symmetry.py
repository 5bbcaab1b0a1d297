"""Symmetry of spin Hamiltonians on crystals (spinlat.symmetry) and the merging of ground-state
minima related by a crystal operation (spinlat.search.ground_state)."""

import numpy as np
import pytest

from conftest import EAM_FE, bcc_fe
from spinlat.potentials import EAM, BetheSlaterExchange, CubicAnisotropy, Heisenberg, UniaxialAnisotropy, Zeeman
from spinlat.search import _directions, _Merger, _Start, ground_state, Minimum
from spinlat.symmetry import SpinSymmetry, crystal_operations
from spinlat.workflows import mn3pt as M

from _reference_search import (cubic_operations, reference_same_symmetric, reference_symmetries,
                               reference_translations)

STARTS = 24
#: C3 about [111] through Pt (x → y → z → x) and the mirror x ↔ y (contains [111])
C3_111 = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
MIRROR_XY = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
C4_Z = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])


def _apply(state_or_spins, rotation, ops, axial=True, spin_map=None):
    """Spins carried by the cubic operation ``rotation`` (its atom map from ``ops``): atom p[i]
    receives det(R) R s_i (``axial``) or ``spin_map`` s_i."""
    spins = np.asarray(getattr(state_or_spins, "spins", state_or_spins), dtype=float)
    p = next(p for r, p in ops if np.allclose(r, rotation))
    m = spin_map if spin_map is not None else (np.linalg.det(rotation) * rotation if axial else np.eye(3))
    out = np.empty_like(spins)
    out[p] = spins @ m.T
    return out


@pytest.fixture(scope="module")
def mn3pt():
    """Mn3Pt 2×2×2 with its local-axis model: the searches with and without point operations."""
    st = M.mn3pt(reps=2)
    pot = M.mn3pt_potential(st)
    merged = ground_state(st, pot, starts=STARTS, seed=0, tmax=1e-7)
    apart = ground_state(st, pot, starts=STARTS, seed=0, tmax=1e-7, symmetry=False)
    return st, pot, merged, apart


@pytest.fixture(scope="module")
def reference(mn3pt):
    st, pot, _, _ = mn3pt
    ops = cubic_operations(st)
    return ops, reference_symmetries(st, pot, ops), reference_translations(st)


def test_minima_related_by_a_crystal_operation_are_listed_once(mn3pt, reference):
    """The user's trial: Mn3Pt domains related by a C3 / mirror were listed as distinct minima."""
    st, pot, merged, apart = mn3pt
    _, syms, trans = reference
    dirs = [_directions(m.state) for m in merged]
    for i in range(len(merged)):
        for j in range(i + 1, len(merged)):
            assert not reference_same_symmetric(dirs[i], dirs[j], syms, trans), (i, j)
    # without the point operations (translations and time reversal only) such copies are listed apart
    adirs = [_directions(m.state) for m in apart]
    related = [(i, j) for i in range(len(apart)) for j in range(i + 1, len(apart))
               if reference_same_symmetric(adirs[i], adirs[j], syms, trans)]
    assert related and len(apart) > len(merged)
    for m in (merged, apart):
        assert sum(x.count for x in m) == STARTS
        assert sorted(k for x in m for k in x.starts) == list(range(STARTS))
    # the merging of the starts' minima agrees with the brute-force reference decision: each start is a
    # symmetry copy of the minimum that lists it, and the minima listed are not copies of one another
    # (before polishing: near-degenerate minima are re-minimised, and along a flat valley they move)
    results = _Start(st, pot, None, {"tmax": 1e-7})(tuple(range(STARTS)))
    raw = _Merger(st, pot, False, 1e-5, 1e-2)([Minimum(float(e), fin, 1, (k,), bool(ok))
                                                for k, (e, fin, ok) in enumerate(results)])
    for k, (e, fin, ok) in enumerate(results):
        owner = [m for m in raw if k in m.starts]
        assert len(owner) == 1
        assert reference_same_symmetric(_directions(owner[0].state), _directions(fin), syms, trans)
    for i in range(len(raw)):
        for j in range(i + 1, len(raw)):
            if abs(raw[i].energy - raw[j].energy) <= 1e-5 * len(st):
                assert not reference_same_symmetric(_directions(raw[i].state), _directions(raw[j].state), syms,
                                                    trans)


def test_degeneracy_is_the_number_of_distinct_symmetry_copies(mn3pt, reference):
    st, pot, merged, _ = mn3pt
    _, syms, trans = reference
    assert len(syms) == 24  # D3d (the local ⟨112⟩ axes in (111)) × time reversal
    for m in merged:
        d = _directions(m.state)
        copies = []
        for r, p, sign in syms:
            g = np.empty_like(d)
            g[p] = sign * d @ r.T
            for t in trans:
                c = g[t]
                if not any(np.max(np.linalg.norm(c - x, axis=1)) < 1e-2 for x in copies):
                    copies.append(c)
        assert m.degeneracy == len(copies)
    assert merged[0].degeneracy == 2  # T1: itself and its time reversal
    assert max(m.degeneracy for m in merged) > 2


def test_a_c3_and_a_mirror_image_of_a_minimum_are_the_same_minimum(mn3pt, reference):
    st, pot, merged, _ = mn3pt
    ops, _, _ = reference
    low = next(m for m in merged if m.degeneracy > 2)  # a minimum that is not C3-symmetric itself
    s = _directions(low.state)
    sym = SpinSymmetry(st, pot)
    only_translations = SpinSymmetry(st, pot, point_operations=False)
    for rot in (C3_111, MIRROR_XY, C3_111 @ MIRROR_XY):
        image = _apply(s, rot, ops)
        e = pot.compute(st.copy(spins=image), forces=False, magnetic_forces=False).energy
        assert e == pytest.approx(low.energy, abs=1e-10)  # a minimum of the same energy ...
        assert sym.same(s, image) and sym.same(image, s)  # ... merged with it
        assert not only_translations.same(s, image)  # not by a translation or time reversal
        assert sym.same(s, -image)  # with time reversal too
    # a genuinely different minimum is kept apart, whatever its energy
    for other in merged:
        if other is not low:
            assert not sym.same(s, _directions(other.state))


def test_an_anisotropy_that_breaks_the_symmetry_keeps_formerly_equivalent_states_apart(mn3pt, reference):
    st, pot, merged, _ = mn3pt
    ops, _, _ = reference
    s = _directions(next(m for m in merged if m.degeneracy > 2).state)
    heis = Heisenberg.from_neighbors(M.mn3pt(), J=[M.J1_MN3PT])
    cubic = heis + CubicAnisotropy({"Mn": 1e-4})  # O_h: every cubic operation
    local = pot  # the local ⟨112⟩ axes in (111): D3d
    for rot in (C4_Z, C4_Z @ C3_111):  # not in D3d
        image = _apply(s, rot, ops)
        assert SpinSymmetry(st, cubic).same(s, image)
        assert not SpinSymmetry(st, local).same(s, image)
    # still merged where really equivalent: C3 about [111] is kept by both
    assert SpinSymmetry(st, local).same(s, _apply(s, C3_111, ops))
    assert len(SpinSymmetry(st, cubic).elements) == 48 and len(SpinSymmetry(st, local).elements) == 12
    # a uniform axis along [001] breaks C3 about [111] as well: the decision follows the brute-force
    # reference of that Hamiltonian's operations, and some C3 images are no longer merged
    tilted = local + UniaxialAnisotropy({"Mn": 1e-4}, [0, 0, 1])
    tsym = SpinSymmetry(st, tilted)
    assert len(tsym.elements) == 4  # D3d ∩ D4h: E, C2 about [1-10], I, the mirror (1-10); each × time reversal
    ref = reference_symmetries(st, tilted, ops)
    trans = reference_translations(st)
    decisions = []
    for m in merged:
        d = _directions(m.state)
        for rot in (C3_111, C3_111 @ C3_111, MIRROR_XY):
            image = _apply(d, rot, ops)
            decisions.append(tsym.same(d, image))
            assert decisions[-1] == reference_same_symmetric(d, image, ref, trans)
    assert False in decisions


def test_chiral_dmi_and_a_field_keep_only_their_subgroup():
    st = M.mn3pt(reps=2)  # (in one cell a bond and its opposite join the same two atoms: no DMI energy)
    ops = cubic_operations(st)
    dmi = Heisenberg.from_neighbors(M.mn3pt(), J=[M.J1_MN3PT], D=[2e-3])  # bulk DMI along the bonds: chiral
    sym = SpinSymmetry(st, dmi)
    assert sym.order == 24 * 2 * 8  # the 24 proper rotations, each with time reversal, × 8 translations
    assert all(np.linalg.det(m) > 0 and e == (1.0, -1.0) for m, _, e in sym.elements)
    rng = np.random.default_rng(3)
    s = rng.normal(size=(len(st), 3))
    s /= np.linalg.norm(s, axis=1, keepdims=True)
    s[0] = 0.0  # Pt
    inversion = -np.eye(3)
    assert not sym.same(s, _apply(s, inversion, ops))
    assert sym.same(s, _apply(s, C3_111, ops))
    # a field along z: time reversal alone is no symmetry, C2 about x only with it
    fe = bcc_fe((2, 2, 2), rattle=0.0, seed=4)
    field = BetheSlaterExchange(3.4, 0.02726, 0.2171, 1.841) + Zeeman([0, 0, 1.0])
    fsym = SpinSymmetry(fe, field)
    assert fsym.elements[0][2] == (1.0,)
    up = np.tile([0.0, 0.0, 1.0], (len(fe), 1))
    assert not fsym.same(up, -up)
    assert SpinSymmetry(fe, BetheSlaterExchange(3.4, 0.02726, 0.2171, 1.841)).same(up, -up)
    c2x = [signs for m, _, signs in fsym.elements if np.allclose(m, np.diag([1.0, -1.0, -1.0]))]
    assert c2x and all(signs == (-1.0,) for signs in c2x)  # (and the mirror x → −x, the same on spins)


def test_without_spin_orbit_coupling_any_global_spin_rotation_goes_with_a_lattice_permutation():
    st = M.mn3pt()
    ops = cubic_operations(st)
    heis = Heisenberg.from_neighbors(M.mn3pt(), J=[M.J1_MN3PT])
    assert heis.spin_rotation_invariant
    rng = np.random.default_rng(5)
    s = rng.normal(size=(len(st), 3))
    s /= np.linalg.norm(s, axis=1, keepdims=True)
    s[0] = 0.0
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))  # a spin rotation unrelated to the lattice
    image = _apply(s, C4_Z, ops, spin_map=q)
    spin_space = SpinSymmetry(st, heis, spin_rotations=True)
    assert len(spin_space.elements) == 6  # the permutations of the three Mn sublattices
    assert spin_space.same(s, image)
    assert not SpinSymmetry(st, heis, spin_rotations=False).same(s, image)  # spins locked to the lattice
    assert SpinSymmetry(st, heis, spin_rotations=False).same(s, _apply(s, C4_Z, ops))


def test_the_minima_do_not_depend_on_the_order_of_the_starts(mn3pt):
    st, pot, merged, _ = mn3pt
    results = _Start(st, pot, None, {"tmax": 1e-7})(tuple(range(STARTS)))
    cands = [Minimum(float(e), fin, 1, (k,), bool(ok)) for k, (e, fin, ok) in enumerate(results)]

    def summary(minima):  # the representative's spins too: which start's state is returned
        return [(round(m.energy, 8), m.count, m.starts, m.degeneracy, np.round(m.state.spins, 6).tobytes())
                for m in minima]

    merge = _Merger(st, pot, False, 1e-5, 1e-2)
    # symmetric copies differ in energy at round-off, which would order them alone; rounded, they
    # tie exactly and the order of the starts could choose the representative
    for energy in (lambda c: c.energy, lambda c: round(c.energy, 6)):
        first = summary(merge([Minimum(energy(c), c.state, 1, c.starts, c.converged) for c in cands]))
        for order in (cands[::-1], [cands[k] for k in np.random.default_rng(1).permutation(len(cands))]):
            assert summary(merge([Minimum(energy(c), c.state, 1, c.starts, c.converged) for c in order])) == first
    assert len(first) < len(_Merger(st, pot, False, 1e-5, 1e-2, point_operations=False)(
        [Minimum(c.energy, c.state, 1, c.starts, c.converged) for c in cands]))


def test_crystal_operations_are_the_space_group_cosets():
    st = M.mn3pt(reps=2)
    ops = crystal_operations(st)
    assert len(ops) == 48  # Pm-3m, one per rotation part; the 8 translations apart
    np.testing.assert_allclose(ops[0][0], np.eye(3))
    np.testing.assert_array_equal(ops[0][1], np.arange(len(st)))
    for r, p in ops:
        np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
        assert sorted(p) == list(range(len(st)))
        np.testing.assert_array_equal(st.numbers[p], st.numbers)
    # a moment on one Mn breaks the cubic symmetry: fewer operations, none carrying it elsewhere
    moments = st.moments.copy()
    moments[1] = 2.0
    odd = st.copy(moments=moments)
    odd_ops = crystal_operations(odd)
    assert 1 < len(odd_ops) < 48
    assert all(p[1] == 1 for _, p in odd_ops)


def test_a_potential_without_the_structures_translations_does_not_merge_by_them():
    """Per-atom anisotropy axes alternating between the two bcc sites: the body-centring translation
    is a symmetry of the structure, not of the potential (the merging used every structural
    translation)."""
    fe = bcc_fe((2, 2, 2), rattle=0.0, seed=4)
    frac = fe.positions @ np.linalg.inv(fe.cell) * 2  # in units of the cubic cell
    corner = np.all(np.abs(frac - np.round(frac)) < 1e-6, axis=1)
    axes = np.where(corner[:, None], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0])
    exchange = BetheSlaterExchange(3.4, 0.02726, 0.2171, 1.841)
    staggered = exchange + UniaxialAnisotropy(1e-3, axes)
    uniform = exchange + UniaxialAnisotropy(1e-3, [0, 0, 1])
    rng = np.random.default_rng(2)
    s = rng.normal(size=(len(fe), 3))
    s /= np.linalg.norm(s, axis=1, keepdims=True)
    centre = reference_translations(fe)
    body = next(p for p in centre if corner[p[np.flatnonzero(corner)[0]]] == 0)  # corner → centre
    shifted = s[body]
    usym, ssym = SpinSymmetry(fe, uniform), SpinSymmetry(fe, staggered)
    assert usym.translation_invariant and usym.same(s, shifted)
    assert not ssym.translation_invariant and not ssym.same(s, shifted)
    cell_shift = next(p for p in centre
                      if corner[p[np.flatnonzero(corner)[0]]] and not np.array_equal(p, np.arange(len(fe))))
    assert ssym.same(s, s[cell_shift])  # a translation by a cubic lattice vector keeps the axes: merged
    # C2 about [101] swaps z and x: with the body-centring translation a symmetry of the staggered axes
    ops = [(r, p) for r, p in crystal_operations(fe, cosets=False)]
    c2 = np.array([[0.0, 0.0, 1.0], [0.0, -1.0, 0.0], [1.0, 0.0, 0.0]])
    swaps = [p for r, p in ops if np.allclose(r, c2) and corner[p[np.flatnonzero(corner)[0]]] == 0]
    assert swaps
    image = np.empty_like(s)
    image[swaps[0]] = s @ c2.T
    assert ssym.same(s, image)
    e = [staggered.compute(fe.copy(spins=x), forces=False, magnetic_forces=False).energy for x in (s, image)]
    assert e[0] == pytest.approx(e[1], abs=1e-12)
    # the merger with two equal energies: the translate is kept apart, the symmetric image merged
    merge = _Merger(fe, staggered, False, 1e-5, 1e-2)
    listed = merge([Minimum(e[0], fe.copy(spins=s), 1, (0,)), Minimum(e[0], fe.copy(spins=shifted), 1, (1,)),
                    Minimum(e[0], fe.copy(spins=image), 1, (2,))])
    assert [m.starts for m in listed] == [(0, 2), (1,)]


def test_crystal_operations_of_a_hexagonal_cell_are_orthogonal_cartesian_maps():
    from ase.build import bulk

    import spinlat as sl

    st = sl.State.from_ase(bulk("Co", "hcp", a=2.5, c=4.07).repeat((3, 3, 2)))
    st = st.copy(moments=np.full(len(st), 1.6))
    ops = crystal_operations(st)
    assert len(ops) == 24  # P6_3/mmc: D6h
    for r, p in ops:
        np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
        moved = st.positions @ r.T  # about the origin; the map holds up to the operation's translation
        d = moved - st.positions[p]
        f = d @ np.linalg.inv(st.cell)
        f -= f[0]
        assert np.max(np.abs(f - np.round(f))) < 1e-8  # one translation (modulo the cell) for every atom
    pot = BetheSlaterExchange(3.4, 0.02726, 0.2171, 1.841) + UniaxialAnisotropy(1e-3, [0, 0, 1])  # c axis: kept
    assert SpinSymmetry(st, pot).order == 18 * 24 * 2
    tilted = BetheSlaterExchange(3.4, 0.02726, 0.2171, 1.841) + UniaxialAnisotropy(1e-3, [1, 0, 0])
    assert SpinSymmetry(st, tilted).order == 18 * 8 * 2  # those keeping the x axis up to sign: D2h


@pytest.mark.parametrize("soc", [False, True])
def test_an_mmace_model_without_soc_merges_minima_modulo_a_global_spin_rotation(soc):
    """mMACE with soc=False is invariant under any global spin rotation, but said it was not
    (the base class's False): ground_state listed minima turned by a global rotation apart."""
    from spinlat.potentials import MagneticMACE

    from mmace._tiny import TINY

    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny graph: one thread (no OpenMP oversubscription on a busy machine)
    try:
        _mmace_merging(MagneticMACE.create(["Fe"], soc=soc, seed=11, **TINY), soc)
    finally:
        torch.set_num_threads(threads)


def _mmace_merging(pot, soc):
    assert pot.spin_rotation_invariant is (not soc)
    fe = bcc_fe((2, 2, 2), rattle=0.0, seed=4)
    rng = np.random.default_rng(4)
    s = rng.normal(size=(len(fe), 3))
    s /= np.linalg.norm(s, axis=1, keepdims=True)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    turned = s @ q.T
    e = [pot.compute(fe.copy(spins=x), forces=False, magnetic_forces=False).energy for x in (s, turned)]
    assert (abs(e[0] - e[1]) < 1e-10 * abs(e[0])) is (not soc)
    merge = _Merger(fe, pot, pot.spin_rotation_invariant, 1e-5, 1e-2)  # as ground_state builds it
    listed = merge([Minimum(e[0], fe.copy(spins=s), 1, (0,)), Minimum(e[0], fe.copy(spins=turned), 1, (1,))])
    assert len(listed) == (2 if soc else 1)


def test_a_lattice_energy_does_not_hide_a_weak_spin_term():
    """The energy test's tolerance was a fraction of |E|: with an EAM in the potential (4 eV per
    atom) a weak anisotropy or field fell below it, every cubic operation (and time reversal in a
    field) passed, and minima that differ by the anisotropy were merged (the z and x domains of
    EAM + cubic K1 + a weak uniaxial term: one minimum of degeneracy 6). The tolerance now scales
    with the spin energy Σ|m||h| (and the round-off of |E|)."""
    fe = bcc_fe((3, 3, 3), rattle=0.0, seed=4)
    exchange = BetheSlaterExchange(3.4, 0.02726, 0.2171, 1.841)
    for weak in (UniaxialAnisotropy(1e-5, [0, 0, 1]), Zeeman([0, 0, 0.1])):
        alone = SpinSymmetry(fe, exchange + weak)
        with_eam = SpinSymmetry(fe, EAM(EAM_FE) + exchange + weak)
        assert with_eam.order == alone.order < SpinSymmetry(fe, exchange + CubicAnisotropy(1e-4, 0.0)).order
    up = np.tile([0.0, 0.0, 1.0], (len(fe), 1))
    assert not SpinSymmetry(fe, EAM(EAM_FE) + exchange + Zeeman([0, 0, 0.1])).same(up, -up)
    # the z and x domains of a cubic anisotropy with a weak uniaxial term along z stay apart
    pot = EAM(EAM_FE) + exchange + CubicAnisotropy(1e-4, 0.0) + UniaxialAnisotropy(5e-6, [0, 0, 1])
    x = np.tile([1.0, 0.0, 0.0], (len(fe), 1))
    e = [pot.compute(fe.copy(spins=s), forces=False, magnetic_forces=False).energy for s in (up, x)]
    assert e[1] - e[0] == pytest.approx(5e-6 * len(fe), rel=1e-6)
    sym = SpinSymmetry(fe, pot)
    assert not sym.same(up, x) and sym.degeneracy(up) == 2 and sym.degeneracy(x) == 4


def test_a_potential_breaking_the_translations_of_a_large_cell_tries_one_operation_per_rotation(monkeypatch):
    """Without the structure's translations every crystal operation (48 rotations × the cells) was
    built with its N-long permutation and energy-tested: time and memory as N² (17 s and 0.4 GB at
    432 atoms, all to find the trivial group). Above MAX_OPERATIONS one per rotation is tried,
    with a warning."""
    from spinlat import symmetry

    fe = bcc_fe((2, 2, 2), rattle=0.0, seed=4)  # 48 rotations × 8 translations
    axes = np.random.default_rng(5).normal(size=(len(fe), 3))
    pot = BetheSlaterExchange(3.4, 0.02726, 0.2171, 1.841) + UniaxialAnisotropy(1e-3, axes)
    full = SpinSymmetry(fe, pot)  # 384 operations: all tried
    assert not full.translation_invariant and full.order == 2  # random axes: the identity and time reversal
    monkeypatch.setattr(symmetry, "MAX_OPERATIONS", 100)  # (4096 by default: a 4×4×4 bcc cell has 3072)
    with pytest.warns(UserWarning, match="one operation per rotation is tried"):
        sym = SpinSymmetry(fe, pot)
    assert not sym.translation_invariant and sym.order == 2
    # a potential that keeps the rotations but not the translations keeps its point operations
    corner = np.all(np.abs(fe.positions @ np.linalg.inv(fe.cell) * 4 % 2) < 1e-6, axis=1)
    staggered = BetheSlaterExchange(3.4, 0.02726, 0.2171, 1.841) + UniaxialAnisotropy(
        1e-3, np.where(corner[:, None], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]))  # z on corners, x on centres
    with pytest.warns(UserWarning, match="one operation per rotation is tried"):
        kept = SpinSymmetry(fe, staggered)
    assert not kept.translation_invariant and kept.order > 2
