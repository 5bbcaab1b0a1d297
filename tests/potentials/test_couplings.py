"""LinearSpinCouplings: every analytic term's couplings give its compute() energies, per-atom
energies, magnetic forces and rotation fields on random spins (1e-12); the numba kernel matches
the NumPy reference; merged couplings are the couplings of the sum."""

import numpy as np
import pytest

import spinlat as sl
from spinlat.errors import ShapeError
from spinlat.potentials import (EAM, BetheSlaterExchange, CubicAnisotropy, Heisenberg, Landau, SumPotential,
                                UniaxialAnisotropy, Zeeman)
from spinlat.potentials.couplings import LinearSpinCouplings, reference_evaluate

from conftest import EAM_FE, bcc_fe

BS = (3.4, 0.02726, 0.2171, 1.841)


def random_tensor_heisenberg(unit, seed=0, npairs=14):
    """Heisenberg on ``unit`` with random full 3×3 tensors (isotropic, DMI and symmetric
    anisotropic parts), an on-site tensor (i = j, R = 0) and a pair to an atom's own image."""
    rng = np.random.default_rng(seed)
    nt = len(unit)
    i = rng.integers(0, nt, npairs)
    j = rng.integers(0, nt, npairs)
    R = rng.integers(-1, 2, (npairs, 3))
    R[0] = 0
    j[0] = i[0]  # on-site tensor
    R[1] = (1, 0, 0)
    j[1] = i[1]  # coupling to its own periodic image
    J = rng.normal(0, 0.01, (npairs, 3, 3))
    return Heisenberg(unit.cell, unit.positions, unit.numbers, i, j, R, J)


def bcc_unit(moment=2.2):
    a = 2.8665
    return sl.State([[0, 0, 0], [a / 2, a / 2, a / 2]], [26, 26], cell=np.eye(3) * a, pbc=True,
                    moments=[moment, moment])


def mixed_state(reps=(3, 3, 3), seed=3, nonmagnetic=(4, 11)):
    st = bcc_fe(reps, rattle=0.04, seed=seed)
    mom = np.random.default_rng(seed).uniform(1.5, 2.5, len(st))
    mom[list(nonmagnetic)] = 0.0
    return st.copy(moments=mom)


def terms(st):
    rng = np.random.default_rng(1)
    unit = bcc_unit()
    return {
        "heisenberg J+DMI": Heisenberg.from_neighbors(unit, J=[0.01, 0.004], D=[0.002]),
        "heisenberg tensors": random_tensor_heisenberg(unit),
        "bethe-slater": BetheSlaterExchange(*BS),
        "bethe-slater offset": BetheSlaterExchange(*BS, offset=True),
        "bethe-slater Fe only": BetheSlaterExchange(*BS, elements=["Fe"]),
        "zeeman": Zeeman([0.5, -1.0, 3.0]),
        "zeeman other species": Zeeman([0.5, -1.0, 3.0], elements=["Ni"]),
        "uniaxial": UniaxialAnisotropy(3e-4, [1, 1, 0]),
        "uniaxial per species": UniaxialAnisotropy({"Fe": -2e-4}, [0, 0, 1]),
        "uniaxial per atom": UniaxialAnisotropy(3e-4, rng.normal(size=(len(st), 3))),
    }


def random_spins(n, seed):
    s = np.random.default_rng(seed).normal(size=(n, 3))
    return s / np.linalg.norm(s, axis=1)[:, None]


def check_against_compute(pot, st, seeds=(10, 11, 12)):
    """Couplings vs compute on random spins: energy, per-atom energies, magnetic forces, rotation
    fields, and the kernel vs the NumPy reference."""
    nl = pot.neighbor_list(st) if pot.cutoff > 0 else None
    c = pot.spin_couplings(st, nl)
    assert isinstance(c, LinearSpinCouplings) and c.n_atoms == len(st)
    atoms = np.arange(len(st))
    for seed in seeds:
        trial = st.copy(spins=random_spins(len(st), seed))
        ev = pot.compute(trial)
        e, h = c.evaluate(trial.spins, trial.moments)
        scale_e = max(np.abs(ev.energies).max(), 1e-300)
        scale_h = max(np.abs(ev.magnetic_forces).max(), 1e-300)
        assert abs(e.sum() - ev.energy) <= 1e-12 * max(abs(ev.energy), scale_e * len(st))
        assert np.abs(e - ev.energies).max() <= 1e-12 * scale_e
        assert np.abs(h - ev.magnetic_forces).max() <= 1e-12 * scale_h
        assert c.energy(trial.spins, trial.moments) == pytest.approx(e.sum(), rel=1e-14, abs=1e-300)
        rot = pot.rotation_fields(trial, nl, atoms)
        got = c.rotation_fields(trial.spins, trial.moments, atoms)
        assert np.abs(got - rot).max() <= 1e-12 * max(np.abs(rot).max(), 1e-300)
        e_ref, h_ref = reference_evaluate(c, trial.spins, trial.moments)
        assert np.abs(e - e_ref).max() <= 1e-13 * scale_e
        assert np.abs(h - h_ref).max() <= 1e-13 * scale_h
    return c


@pytest.mark.parametrize("name", list(terms(mixed_state())))
def test_each_term_matches_compute(name):
    st = mixed_state()
    check_against_compute(terms(st)[name], st)


def test_sum_of_all_terms_matches_compute_and_merges():
    st = mixed_state()
    parts = list(terms(st).values())
    pot = SumPotential(parts)
    c = check_against_compute(pot, st)
    assert not c.isotropic  # scalar Bethe-Slater and tensor Heisenberg tables merged into tensors
    # the merged couplings are the sum of the parts' couplings
    nl = pot.neighbor_list(st)
    s = random_spins(len(st), 9)
    e_sum = np.zeros(len(st))
    h_sum = np.zeros((len(st), 3))
    for t in parts:
        e, h = t.spin_couplings(st, nl if t.cutoff > 0 else None).evaluate(s, st.moments)
        e_sum += e
        h_sum += h
    e, h = c.evaluate(s, st.moments)
    assert np.allclose(e, e_sum, rtol=0, atol=1e-15) and np.allclose(h, h_sum, rtol=0, atol=1e-15)


def test_scalar_tables_merge_into_a_scalar_table():
    st = mixed_state()
    pot = BetheSlaterExchange(*BS) + BetheSlaterExchange(3.0, 0.01, 0.2, 1.8, offset=True) + Zeeman([0, 0, 2.0])
    c = check_against_compute(pot, st)
    assert c.isotropic and c.field is not None and c.onsite is None


def test_lattice_terms_are_left_out_of_sums():
    if not EAM_FE.exists():
        pytest.skip("EAM file missing")
    st = mixed_state()
    eam = EAM(EAM_FE)
    assert eam.spin_couplings(st) is None
    pot = eam + BetheSlaterExchange(*BS) + Zeeman([0, 0, 1.0])
    c = pot.spin_couplings(st, pot.neighbor_list(st))
    spin_part = BetheSlaterExchange(*BS) + Zeeman([0, 0, 1.0])
    assert c.energy(st.spins, st.moments) == pytest.approx(spin_part.compute(st).energy, rel=1e-12)


@pytest.mark.parametrize("term", [CubicAnisotropy(1e-4), Landau(-0.1, 0.01)], ids=["cubic", "landau"])
def test_terms_beyond_quadratic_have_no_couplings(term):
    st = mixed_state()
    assert term.spin_couplings(st) is None
    assert (term + Zeeman([0, 0, 1.0])).spin_couplings(st) is None


def test_self_images_in_a_tiny_cell():
    """One bcc cell: Bethe-Slater couples each atom to its own periodic images (a constant energy,
    no coupling) and Heisenberg tensors to the atom itself: energies and fields still agree."""
    st = bcc_fe((1, 1, 1), rattle=0.02, seed=5)
    c = check_against_compute(BetheSlaterExchange(*BS, offset=True), st)
    assert not c.self_coupled  # self-images carry no coupling
    c = check_against_compute(random_tensor_heisenberg(bcc_unit(), seed=2), st)
    assert c.self_coupled


def test_batched_images_equal_single_evaluations():
    st = mixed_state((2, 2, 2), nonmagnetic=(3,))
    pot = terms(st)["heisenberg tensors"] + terms(st)["uniaxial"] + terms(st)["zeeman"]
    c = pot.spin_couplings(st)
    S = np.stack([random_spins(len(st), k) for k in range(5)])
    e, h = c.evaluate(S, st.moments)
    for k in range(5):
        ek, hk = c.evaluate(S[k], st.moments)
        assert np.array_equal(e[k], ek) and np.array_equal(h[k], hk)
    assert np.allclose(c.energy(S, st.moments), e.sum(axis=1), rtol=1e-15)


def test_couplings_follow_the_state():
    """Cached while positions, numbers and magnetic atoms stay; rebuilt when they change."""
    st = mixed_state((2, 2, 2), nonmagnetic=())
    bs, z = BetheSlaterExchange(*BS), Zeeman([0, 0, 1.0])
    assert bs.spin_couplings(st) is bs.spin_couplings(st.copy(spins=-st.spins))
    assert z.spin_couplings(st) is z.spin_couplings(st.copy(moments=st.moments * 1.1))
    moved = st.copy(positions=st.positions + 0.01)
    assert bs.spin_couplings(moved) is not bs.spin_couplings(st)
    mom = st.moments.copy()
    mom[0] = 0.0
    fewer = st.copy(moments=mom)
    c = z.spin_couplings(fewer)
    assert np.array_equal(c.field[0], np.zeros(3))
    check_against_compute(bs, fewer)


def test_bad_shapes_are_refused():
    with pytest.raises(ShapeError, match="field"):
        LinearSpinCouplings(3, field=np.zeros((2, 3)))
    with pytest.raises(ShapeError, match="offsets"):
        LinearSpinCouplings(3, np.zeros(3, dtype=np.int64), np.zeros(0, dtype=np.int32), exchange=np.zeros(0))
    c = LinearSpinCouplings(3, field=np.ones((3, 3)))
    with pytest.raises(ShapeError, match="spins"):
        c.evaluate(np.zeros((4, 3)), np.ones(3))


def test_compute_takes_a_neighbor_list_and_keyword_flags():
    st = mixed_state((2, 2, 2))
    pot = BetheSlaterExchange(*BS) + Zeeman([0, 0, 1.0])
    nl = pot.neighbor_list(st)
    a = pot.compute(st, nl, forces=False, stress=True)
    b = pot.compute(st)
    assert a.forces is None and a.stress is not None and a.energy == pytest.approx(b.energy, rel=1e-14)
    with pytest.raises(sl.errors.InputError, match="keyword-only"):
        pot.compute(st, True)
    small = sl.NeighborList(1.0)
    small.update(st)
    with pytest.raises(sl.errors.InputError, match="cutoff"):
        pot.compute(st, small)
