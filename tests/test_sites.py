"""spinlat.sites: the following kernel against a NumPy reference, matching up to a translation,
completed bases of low-dimensional cells, structure translations of a template."""

import numpy as np
import pytest

import spinlat as sl
from spinlat.errors import CellError
from spinlat.sites import SiteTemplate, completed_basis

A = 2.8665


def bcc_template(**kw):
    return SiteTemplate(np.eye(3) * A, [[0, 0, 0], [A / 2] * 3], [26, 26], True, **kw)


def reference_follows(m, state):
    """NumPy: every atom's move relative to atom 0 since the reference, minimum image over the
    state's periodic lattice, strain removed, below the tolerance."""
    f = state.positions @ m.to_frac
    d = f - m.ref
    d = d - d[0]
    d[:, m.pbc] -= np.round(d[:, m.pbc])
    return bool(np.all(np.linalg.norm(d @ m.metric, axis=1) < m.template.tolerance))


@pytest.mark.parametrize("pbc", [True, (True, False, True), False])
def test_follow_kernel_matches_numpy(pbc):
    rng = np.random.default_rng(1)
    unit = sl.State([[0, 0, 0], [A / 2] * 3], [26, 26], cell=np.eye(3) * A, pbc=pbc)
    st = unit.repeat((3, 2, 2) if np.all(pbc) else (3, 1, 2) if np.any(pbc) else 1)
    if not np.any(pbc):
        st = sl.State(unit.repeat((2, 2, 2)).positions, [26] * 16)
    t = SiteTemplate(st.cell, st.positions, st.numbers, st.pbc)
    m = t.match(st)
    decisions = []
    for trial in range(60):
        scale = rng.choice([0.1, 0.5, 0.6, 1.0]) * t.tolerance
        step = rng.normal(0, 1, (len(st), 3))
        step *= scale / np.linalg.norm(step, axis=1).max()
        step += rng.normal(0, 5.0, 3)  # a rigid move on top, any size
        lattice = rng.integers(-2, 3, (len(st), 3)) * np.asarray(st.pbc)  # wrapped or not
        moved = st.copy(positions=m.positions + step + lattice @ st.cell)
        expected = reference_follows(m, moved)
        ref_before = m.ref.copy()
        assert m.follows(moved) == expected
        if not expected:
            np.testing.assert_array_equal(m.ref, ref_before)
        decisions.append(expected)
    assert any(decisions) and not all(decisions)


def test_follow_rejects_other_atoms_order_and_counts():
    t = bcc_template()
    st = sl.State([[0, 0, 0], [A / 2] * 3], [26, 26], cell=np.eye(3) * A, pbc=True).repeat(3)
    m = t.match(st)
    assert m.follows(st)
    perm = np.random.default_rng(0).permutation(len(st))
    assert not m.follows(st.copy(positions=st.positions[perm]))  # reordered: atoms jump onto other sites
    assert not m.follows(st.copy(numbers=[27] + [26] * (len(st) - 1)))
    assert not m.follows(st.repeat((2, 1, 1)))
    assert not m.follows(st.copy(pbc=(True, True, False)))
    assert m.follows(st.copy(positions=st.positions + 4 * A + 0.3))  # a rigid move


def test_match_up_to_translation_and_lattice_coordinates():
    t = bcc_template()
    st = sl.State([[0, 0, 0], [A / 2] * 3], [26, 26], cell=np.eye(3) * A, pbc=True).repeat((2, 3, 1))
    m0 = t.match(st)
    assert not m0.anchored
    shift = np.array([0.31, 0.77, 1.13])
    m = t.match(st.copy(positions=st.positions + shift))
    assert m.anchored
    np.testing.assert_array_equal(m.site, m0.site)
    # the same lattice coordinates modulo the supercell (2, 3, 1)
    np.testing.assert_array_equal(np.mod(m.lattice - m.lattice[0], [2, 3, 1]), np.mod(m0.lattice, [2, 3, 1]))
    np.testing.assert_allclose(m.translation, shift, atol=1e-12)


def test_completed_basis_of_low_dimensional_cells():
    b = completed_basis([[3.0, 0, 0], [1.0, 2.0, 0], [0, 0, 0]], (True, True, False))
    np.testing.assert_allclose(b[2], [0, 0, 1.0])
    b = completed_basis([[0, 0, 0], [0, 2.0, 0], [0, 0, 0]], (False, True, False))
    np.testing.assert_allclose(b @ b.T, np.diag([1.0, 4.0, 1.0]), atol=1e-14)
    np.testing.assert_allclose(completed_basis(np.zeros((3, 3)), False), np.eye(3))
    with pytest.raises(CellError, match="zero or linearly dependent"):
        completed_basis([[3.0, 0, 0], [6.0, 0, 0], [0, 0, 0]], (True, True, False))


def test_structure_translations_of_a_supercell_template():
    st = sl.State([[0, 0, 0], [A / 2] * 3], [26, 26], cell=np.eye(3) * A, pbc=True).repeat((2, 1, 1))
    t = SiteTemplate(st.cell, st.positions, st.numbers, True)
    found = list(t.structure_translations())
    # body centre and the half-cell along x, and their combination: 3 non-trivial translations
    assert len(found) == 3
    for tau, perm, shift in found:
        np.testing.assert_allclose(t.positions + tau, t.positions[perm] + shift @ t.basis, atol=1e-12)
    # with a model invariant under everything, only generators are examined and none is yielded:
    # twice the body-centre translation is the half-cell one, so the group is cyclic, one generator
    calls = []
    assert list(t.structure_translations(symmetric=lambda p, s: calls.append(p) or True)) == []
    assert len(calls) == 1
    # a model that is not invariant: the first translation examined is reported
    assert len(list(t.structure_translations(symmetric=lambda p, s: False))) == 1
