"""Bain path bcc → fcc: EAM + Bethe-Slater exchange + Landau for Fe."""

import numpy as np
import pytest

from conftest import EAM_FE
from spinlat.errors import InputError
from spinlat.neighbors import neighbor_pairs
from spinlat.potentials import EAM, BetheSlaterExchange, Landau
from spinlat.state import State
from spinlat.workflows.bain import SQRT2, bain_path, bct, format_table, layered_signs, write_table

RC = 3.4
EXCHANGE = BetheSlaterExchange(RC, 0.02726, 0.2171, 1.841)
LANDAU_A, LANDAU_B = -0.44, 0.0454  # eV/μB², eV/μB⁴: |m| minimum at √(−a/2b) = 2.2013 μB
M0 = np.sqrt(-LANDAU_A / (2 * LANDAU_B))
H = 0.01  # c/a step of the finite-difference slopes
GRID = np.round(np.concatenate([np.linspace(0.9, 1.6, 15), [1 - H, 1 + H, SQRT2 - H, SQRT2, SQRT2 + H]]), 12)


@pytest.fixture(scope="module")
def pot():
    return EAM(EAM_FE) + EXCHANGE + Landau(LANDAU_A, LANDAU_B)


@pytest.fixture(scope="module")
def fixed(pot, tmp_path_factory):
    png = tmp_path_factory.mktemp("bain") / "bain.png"
    rows = bain_path("Fe", pot, np.sort(GRID), volume="fixed", moment=1.5, plot=png)
    return rows, png


def _energy(rows, order):
    sel = [r for r in rows if r["order"] == order]
    return {round(r["ca"], 12): r["energy"] for r in sel}


def _slope(e, x):
    return (e[round(x + H, 12)] - e[round(x - H, 12)]) / (2 * H)


def test_bcc_is_the_minimum_and_bcc_fcc_are_stationary_at_fixed_volume(fixed):
    rows, png = fixed
    assert png.stat().st_size > 10_000
    best = min(rows, key=lambda r: r["energy"])
    assert best["ca"] == 1.0 and best["order"] in ("FM", "relaxed")
    fm = _energy(rows, "FM")
    # symmetry: a volume-conserving tetragonal strain of a cubic crystal has no first-order term
    curvature = (fm[1 - H] + fm[1 + H] - 2 * fm[1.0]) / H ** 2  # eV per (c/a)²
    assert curvature > 1.0
    assert abs(_slope(fm, 1.0)) < 0.05 * curvature * H
    assert abs(_slope(fm, SQRT2)) < 0.05 * curvature * H
    assert abs(fm[1.25] - fm[1.2]) / 0.05 > 0.3  # while the path itself is steep in between
    # fcc lies above bcc (Mendelev Fe + exchange): ~130 meV/atom
    assert 0.08 < fm[round(SQRT2, 12)] - fm[1.0] < 0.2
    # the layered AFM of fcc (AFM1) is tetragonal: no such symmetry, and it lies above FM throughout
    afm = _energy(rows, "AFM")
    assert all(afm[k] > fm[k] for k in fm)


def test_relaxed_spins_and_magnitudes(fixed):
    rows, _ = fixed
    fm, afm, rel = _energy(rows, "FM"), _energy(rows, "AFM"), _energy(rows, "relaxed")
    for k in fm:
        assert rel[k] <= min(fm[k], afm[k]) + 1e-9
    for r in rows:  # Landau magnitudes relaxed from the 1.5 μB start
        assert r["moment"] == pytest.approx(M0, abs=1e-4)
        assert r["magnetization"] == pytest.approx({"FM": 1.0, "AFM": 0.0, "relaxed": 1.0}[r["order"]], abs=1e-6)
    assert len({r["volume"] for r in rows}) == 1


def test_path_is_smooth_except_where_exchange_pairs_cross_the_hard_cutoff(fixed, pot):
    # LAMMPS spin/exchange has a hard cutoff: E jumps by J(rc) per pair leaving it. Between
    # crossings the FM curve must be smooth; at a crossing the jump must be that amount.
    rows, _ = fixed
    fm = _energy(rows, "FM")
    xs = np.array(sorted(x for x in fm if abs(round(x / 0.05) * 0.05 - x) < 1e-9))  # the regular grid
    v = rows[0]["volume"]

    def pairs_inside(ca):
        st = bct(ca, v, reps=(2, 2, 2))
        return np.sum(neighbor_pairs(st, RC)[3] < RC) / len(st)  # unordered pairs per atom

    n = np.array([pairs_inside(x) for x in xs])
    e = np.array([fm[x] for x in xs])
    jumps = np.flatnonzero(np.diff(n) != 0)
    assert len(jumps) >= 1  # c crosses 3.4 Å near c/a = 1.306 at this volume
    step = 0.05
    for k in range(1, len(xs) - 1):
        if k - 1 in jumps or k in jumps:
            continue
        assert abs(e[k - 1] - 2 * e[k] + e[k + 1]) < 10.0 * step ** 2  # |E''| < 10 eV per (c/a)²
    for k in jumps:
        # locate the crossing by bisection, then compare the energy just before and after it
        lo, hi = xs[k], xs[k + 1]
        for _ in range(40):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if pairs_inside(mid) == n[k] else (lo, mid)
        before, after = bain_path("Fe", pot, [lo, hi], orders=("FM",), volume_per_atom=v, reps=(2, 2, 2))
        expected = -(n[k + 1] - n[k]) * float(EXCHANGE.J(RC))  # FM: each pair inside gives −J(r)
        assert after["energy"] - before["energy"] == pytest.approx(expected, rel=1e-4)


def test_relaxed_volume(pot):
    cas = [1.0 - H, 1.0, 1.0 + H, SQRT2 - H, SQRT2, SQRT2 + H]
    rows = bain_path("Fe", pot, cas, volume="relaxed", orders=("FM",), reps=(1, 1, 1))
    fixed_rows = bain_path("Fe", pot, cas, volume="fixed", orders=("FM",), reps=(1, 1, 1))
    for r, f in zip(rows, fixed_rows):
        assert r["energy"] <= f["energy"] + 1e-9  # relaxing the volume can only lower the energy
    assert rows[1]["volume"] == pytest.approx(fixed_rows[1]["volume"], rel=1e-3)  # bcc equilibrium both ways
    e = {round(r["ca"], 12): r["energy"] for r in rows}
    assert abs(_slope(e, SQRT2)) < 0.02 and abs(_slope(e, 1.0)) < 0.02  # stationary (envelope theorem)
    assert rows[4]["volume"] > rows[1]["volume"]  # this fcc is less dense than bcc
    assert min(rows, key=lambda r: r["energy"])["ca"] == 1.0
    assert "fcc" not in format_table(rows) and len(format_table(rows).splitlines()) == 7


def test_callable_builder_table_and_bad_input(pot, tmp_path):
    def builder(ca, v):
        return bct(ca, v, "Fe", moment=2.2, reps=(1, 1, 2))

    rows = bain_path(builder, pot, [1.0], volume="fixed", orders="AFM", volume_per_atom=11.5)
    signs = layered_signs(rows[0]["state"])
    assert sorted(signs.tolist()) == [-1, -1, 1, 1]
    np.testing.assert_allclose(rows[0]["state"].spins[:, 2], signs)  # up/down planes along c
    write_table(rows, tmp_path / "t.csv")
    assert (tmp_path / "t.csv").read_text().splitlines()[0].startswith("order,ca,volume")
    with pytest.raises(InputError, match="order"):
        bain_path("Fe", pot, [1.0], orders=("FiM",))
    with pytest.raises(InputError, match="volume"):
        bain_path("Fe", pot, [1.0], volume="free")
    three = State([[0, 0, 0], [0, 0, 1.0], [0, 0, 2.0]], ["Fe"] * 3, cell=np.diag([2.5, 2.5, 3.0]), pbc=True,
                  moments=[2.0] * 3)
    with pytest.raises(InputError, match="even number of atomic planes"):
        layered_signs(three)


@pytest.mark.slow
def test_works_with_an_mmace_model():
    # an untrained spin-rotation-invariant (soc=False) Fe model: any potential goes; at fixed volume
    # the FM fcc point is stationary by cubic symmetry for it too
    pytest.importorskip("torch")
    from spinlat.potentials import MagneticMACE

    model = MagneticMACE.create(elements=["Fe"], soc=False, seed=1, r_max=4.0, hidden_irreps="8x0e+8x1o",
                                num_interactions=1, max_ell=1, correlation=2)
    rows = bain_path("Fe", model, [SQRT2 - H, SQRT2, SQRT2 + H], orders=("FM",), relax_magnitudes=False,
                     volume_per_atom=11.5, reps=(1, 1, 1), moment=2.2)
    e = {round(r["ca"], 12): r["energy"] for r in rows}
    assert all(np.isfinite(list(e.values())))
    scale = abs(e[round(SQRT2 + H, 12)] - e[round(SQRT2, 12)]) + abs(e[round(SQRT2 - H, 12)] - e[round(SQRT2, 12)])
    assert scale > 1e-6
    assert abs(_slope(e, SQRT2)) * 2 * H < 0.05 * scale  # the two sides rise (or fall) alike


def test_unconverged_relaxation_is_named_in_a_warning(pot):
    """A point whose spin/magnitude relaxation stops at max_steps gives a ConvergenceWarning naming
    the order and c/a (before, the energy of a state that is no minimum entered the table silently)."""
    from spinlat.errors import ConvergenceWarning

    with pytest.warns(ConvergenceWarning, match=r"bain_path, order FM at c/a 1\.2, volume 11\.5 Å³/atom: not converged"):
        bain_path("Fe", pot, [1.2], orders=("FM",), volume_per_atom=11.5, reps=(1, 1, 1), moment=1.0, max_steps=1)


def test_own_builders_the_rows_are_checked_against(pot):
    """A builder that ignores the volume it is given had its energies reported at volumes they were
    not computed at (a relaxed-volume search then read a flat E(V)); atoms off their equilibrium
    sites (a decoration without inversion on each site) were kept there silently. The first is an
    InputError, the second a warning with the largest force, which every row now carries; a
    shuffled, larger supercell of the same crystal gives the same energies per atom."""
    def fixed_cell(ca, v):
        return bct(ca, 11.5, "Fe", moment=2.2, reps=(1, 1, 2))

    with pytest.raises(InputError, match=r"returned 11\.5 Å³/atom .* volume_per_atom = 12 Å³"):
        bain_path(fixed_cell, EXCHANGE, [1.0], volume="fixed", orders="FM", volume_per_atom=12.0)

    def shifted(ca, v):
        st = bct(ca, v, "Fe", moment=2.2, reps=(1, 1, 2))
        pos = st.positions.copy()
        pos[0, 2] += 0.1  # one atom off its site
        return st.copy(positions=pos)

    with pytest.warns(UserWarning, match="not at equilibrium"):
        off = bain_path(shifted, EAM(EAM_FE), [1.0], volume="fixed", orders="FM", volume_per_atom=11.8)
    assert off[0]["max_force"] > 0.1

    def shuffled(ca, v):
        st = bct(ca, v, "Fe", moment=2.2, reps=(3, 1, 2))
        perm = np.random.default_rng(0).permutation(len(st))
        return State(st.positions[perm], st.numbers[perm], cell=st.cell, pbc=True, moments=st.moments[perm])

    cas = [1.0, 1.2]
    plain = bain_path("Fe", EAM(EAM_FE) + EXCHANGE, cas, orders=("FM", "AFM"), volume_per_atom=11.8, moment=2.2)
    own = bain_path(shuffled, EAM(EAM_FE) + EXCHANGE, cas, orders=("FM", "AFM"), volume_per_atom=11.8)
    for a, b in zip(plain, own):
        assert b["energy"] == pytest.approx(a["energy"], abs=1e-12) and b["max_force"] < 1e-10
