"""Error bars of correlated samples (spinlat.statistics): blocking and Sokal-window τ_int against
the exact standard error of AR(1) means, the independent-sample limit σ/√n, the blocked
jackknife against the delta method, and the flags for series too short for their correlation."""

import json

import numpy as np
import pytest
from scipy.signal import lfilter

from spinlat import statistics as st
from spinlat.errors import InputError


def ar1(phi, n, seeds, rng):
    """(seeds, n) stationary AR(1) series x_t = φ x_{t−1} + ε_t, ε ~ N(0, 1)."""
    e = rng.normal(size=(seeds, n))
    e[:, 0] /= np.sqrt(1.0 - phi**2)  # start in the stationary distribution
    return lfilter([1.0], [1.0, -phi], e, axis=1)


def exact_standard_error(phi, n):
    """√Var(x̄) of a stationary AR(1) series of length n: σ²/n [1 + 2 Σ_t (1 − t/n) φ^t]."""
    t = np.arange(1, n)
    return np.sqrt((1 + 2 * np.sum((1 - t / n) * phi**t)) / ((1 - phi**2) * n))


@pytest.mark.parametrize("method", ["blocking", "autocorrelation"])
@pytest.mark.parametrize("phi", [0.5, 0.9])
def test_ar1_error_matches_the_exact_standard_error(method, phi):
    """Over 1000 seeds: ⟨error²⟩ equals the exact Var(x̄) within its own uncertainty (plus the
    known O(τ/B) low bias of blocking, ≈ 3 % at τ = 19), τ_int = (1 + φ)/(1 − φ), and the
    z-scores x̄/error have unit variance within their sampling uncertainty (√(2/1000) = 4.5 %)."""
    rng = np.random.default_rng(7)
    seeds, n = 1000, 2**14
    x = ar1(phi, n, seeds, rng)
    se = exact_standard_error(phi, n)
    est = [st.average(row, method) for row in x]
    err = np.array([e.error for e in est])
    z = np.array([e.value for e in est]) / err
    ratio = err**2 / se**2
    bias = 0.04 if method == "blocking" else 0.0
    assert abs(ratio.mean() - 1) < bias + 3 * ratio.std() / np.sqrt(seeds)
    tau = (1 + phi) / (1 - phi)
    assert np.mean([e.tau_int for e in est]) == pytest.approx(tau, rel=0.05)
    assert abs(np.var(z) - 1) < 3 * np.sqrt(2 / seeds) + bias
    assert all(e.reliable for e in est)
    np.testing.assert_allclose([e.n_effective * e.tau_int for e in est], n)


def test_independent_samples_give_sigma_over_sqrt_n():
    rng = np.random.default_rng(3)
    seeds, n = 400, 5000
    x = rng.normal(2.0, 3.0, size=(seeds, n))
    naive = x.std(axis=1, ddof=1) / np.sqrt(n)
    for method in ("blocking", "autocorrelation"):
        est = [st.average(row, method) for row in x]
        ratio = np.array([e.error for e in est]) / naive
        assert ratio.mean() == pytest.approx(1.0, abs=0.02)
        assert np.mean([e.tau_int for e in est]) == pytest.approx(1.0, abs=0.03)
        np.testing.assert_allclose([e.value for e in est], x.mean(axis=1), rtol=1e-13)
    # autocorrelation method: τ_int ≈ 1 for each series, so the error is σ/√n series by series
    auto = np.array([st.average(row, "autocorrelation").error for row in x[:50]])
    np.testing.assert_allclose(auto, naive[:50], rtol=0.12)


def test_reblocking_table_and_lee_criterion():
    rng = np.random.default_rng(0)
    x = ar1(0.9, 2**15, 1, rng)[0]
    b = st.reblock(x)
    assert list(b.block_lengths) == [2**k for k in range(15)]
    assert list(b.n_blocks) == [2**15 // 2**k for k in range(15)]
    np.testing.assert_allclose(b.errors[0], x.std(ddof=1) / np.sqrt(len(x)))
    k = b.optimal
    # the smallest level with B³ > 2 n (SE_B/SE_0)⁴
    assert b.block_lengths[k] ** 3 > 2 * len(x) * (b.errors[k] / b.errors[0]) ** 4
    assert all(b.block_lengths[:k] ** 3 <= 2 * len(x) * (b.errors[:k] / b.errors[0]) ** 4)
    # at the chosen level SE has reached its plateau √(τ/n) σ within 2 of its own errors
    plateau = exact_standard_error(0.9, len(x))
    assert abs(b.errors[k] - plateau) < 2 * b.error_errors[k] + 0.04 * plateau
    assert b.estimate().block_length == b.block_lengths[k]
    const = st.average(np.full(100, 3.5))
    assert const.value == 3.5 and const.error == 0.0 and const.reliable


def test_series_too_short_for_its_correlation_time_is_flagged():
    rng = np.random.default_rng(1)
    x = ar1(0.995, 600, 1, rng)[0]  # τ_int ≈ 400 > n
    assert not st.average(x).reliable
    assert not st.average(x, "autocorrelation").reliable
    assert "unreliable" in str(st.average(x))
    assert not st.jackknife(lambda m: m[0], x).reliable


def test_jackknife_of_a_ratio_equals_the_delta_method():
    """R = ⟨x⟩/⟨y⟩ from independent samples: the (block length 1) jackknife variance equals the
    delta method σ_R² = (σx²/μy² − 2 μx σxy/μy³ + μx² σy²/μy⁴)/n to O(1/n)."""
    rng = np.random.default_rng(2)
    n = 4000
    for _ in range(20):
        y = 2 + 0.3 * rng.normal(size=n)
        x = 1 + 0.5 * (y - 2) + 0.2 * rng.normal(size=n)
        est = st.jackknife(lambda m: m[0] / m[1], np.column_stack([x, y]), block_length=1)
        mx, my = x.mean(), y.mean()
        c = np.cov(x, y)
        delta = np.sqrt((c[0, 0] / my**2 - 2 * mx * c[0, 1] / my**3 + mx**2 * c[1, 1] / my**4) / n)
        assert est.value == pytest.approx(mx / my, rel=1e-14)
        assert est.error == pytest.approx(delta, rel=1e-4)
        assert est.n_blocks == n and abs(est.bias) < 0.1 * est.error


def test_blocked_jackknife_of_a_ratio_of_correlated_series():
    """Two AR(1) series (φ = 0.8, τ = 9) with correlated innovations: the blocked jackknife
    error of ⟨x⟩/⟨y⟩ matches the spread of the ratio over 300 independent series (within the
    sampling uncertainty of that spread), where a block length of 1 underestimates it by √τ."""
    rng = np.random.default_rng(4)
    seeds, n, phi = 300, 2**13, 0.8
    a, b = ar1(phi, n, seeds, rng), ar1(phi, n, seeds, rng)
    x, y = 1.0 + 0.1 * (a + 0.5 * b), 3.0 + 0.1 * b
    ratios, errs, naive = [], [], []
    for k in range(seeds):
        s = np.column_stack([x[k], y[k]])
        e = st.jackknife(lambda m: m[0] / m[1], s)
        ratios.append(e.value)
        errs.append(e.error)
        naive.append(st.jackknife(lambda m: m[0] / m[1], s, block_length=1).error)
    spread = np.std(ratios, ddof=1)
    rms = np.sqrt(np.mean(np.square(errs)))
    assert rms == pytest.approx(spread, rel=3 * np.sqrt(1 / (2 * seeds)) + 0.04)
    assert np.mean(naive) == pytest.approx(spread / 3.0, rel=0.15)  # √τ = 3


def test_block_bootstrap_agrees_with_the_jackknife():
    rng = np.random.default_rng(5)
    x = ar1(0.7, 2**14, 1, rng)[0] + 4.0
    s = np.column_stack([x, x**2])
    var = lambda m: m[1] - m[0] ** 2  # noqa: E731
    jk = st.jackknife(var, s)
    reps = st.block_bootstrap(var, s, n_boot=2000, seed=1)
    assert reps.shape == (2000,)
    assert np.std(reps) == pytest.approx(jk.error, rel=0.15)
    assert np.mean(reps) == pytest.approx(jk.value, abs=0.3 * jk.error)
    np.testing.assert_array_equal(reps, st.block_bootstrap(var, s, n_boot=2000, seed=1))  # reproducible


def test_estimate_is_a_number_with_an_error():
    e = st.average(np.arange(100.0) % 7)
    assert float(e) == e.value == pytest.approx(3.0, abs=0.1)
    assert "±" in str(e)
    d = json.loads(json.dumps(e.as_dict()))
    assert d["method"] == "blocking" and d["n_samples"] == 100 and d["block_length"] >= 1


def test_bad_input_is_named():
    with pytest.raises(InputError, match="NaN"):
        st.average([1.0, np.nan, 2.0])
    with pytest.raises(InputError, match="at least 2"):
        st.average([1.0])
    with pytest.raises(InputError, match="1-D"):
        st.average(np.ones((3, 3)))
    with pytest.raises(InputError, match="method"):
        st.average(np.ones(10), method="bootstrap")
    with pytest.raises(InputError, match="fewer than 2 blocks"):
        st.jackknife(lambda m: m[0], np.arange(10.0), block_length=6)
    with pytest.raises(InputError, match="block_length"):
        st.jackknife(lambda m: m[0], np.arange(10.0), block_length=0)


def test_few_samples_never_claim_an_error_below_the_naive_one():
    """Four frames whose pair means happen to agree (1, 2, 1.001, 2.001) met the Lee criterion at
    2 blocks and claimed τ_int = 3e-6 and an error of 0.0005, 1000 times below σ/√n, while
    flagged 'error is a lower bound'. Now the level falls back to the largest SE: τ_int ≥ 1."""
    x = np.array([1.0, 2.0, 1.001, 2.001])
    e = st.average(x)
    naive = x.std(ddof=1) / np.sqrt(len(x))
    assert not e.reliable
    assert e.tau_int >= 1.0 and e.error >= naive
    assert e.error == pytest.approx(naive)


def test_geweke_tells_a_drifting_start_from_a_stationary_correlated_series():
    """AR(1) (τ_int = 19) stays within |z| ≤ 4 over seeds; the same series with an exponential
    relaxation over its first 5 % (an equilibration left in) is flagged; short series give NaN."""
    rng = np.random.default_rng(3)
    phi, n = 0.9, 4000
    zs = []
    for _ in range(20):
        e = rng.normal(size=n)
        e[0] /= np.sqrt(1 - phi**2)  # stationary from the first sample
        x = lfilter([1.0], [1.0, -phi], e)
        zs.append(st.geweke(x))
        drift = x + 20.0 * np.exp(-np.arange(n) / (0.05 * n))
        assert abs(st.geweke(drift)) > st.GEWEKE_LIMIT
    assert max(abs(z) for z in zs) < st.GEWEKE_LIMIT
    assert np.isnan(st.geweke(np.arange(19.0))) and np.isnan(st.geweke([1.0]))
    assert st.geweke(np.ones(100)) == 0.0
    with pytest.raises(InputError, match="fractions"):
        st.geweke(np.ones(100), first=0.6, last=0.5)


def test_stationary_needs_a_real_offset_not_a_short_correlated_head():
    """The verdict behind the summary's X_stationary: an equilibration of 10σ over the first 5 % is
    False, a stationary AR(1) of 200 samples (τ_int = 19) is not flagged in 100 seeds, short
    series get None."""
    rng = np.random.default_rng(11)
    flagged = 0
    for _ in range(100):
        e = rng.normal(size=200)
        e[0] /= np.sqrt(1 - 0.9**2)
        flagged += st.stationary(lfilter([1.0], [1.0, -0.9], e)) is False
    assert flagged == 0
    x = rng.normal(size=2000)
    assert st.stationary(x) is True
    assert st.stationary(x + 10.0 * np.exp(-np.arange(2000) / 100.0)) is False
    assert st.stationary(x[:19]) is None
