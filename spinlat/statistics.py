"""Error bars for averages of correlated samples (Monte Carlo sweeps, MD frames) and for
quantities derived from several averages (susceptibility, specific heat, Binder cumulant).

Conventions
-----------
A stationary series x_1..x_n with variance σ² and normalised autocorrelation ρ(t) has

    Var(x̄) = σ² τ_int / n,   τ_int = 1 + 2 Σ_{t≥1} ρ(t),   n_eff = n / τ_int,

τ_int in units of the sample spacing (emcee's convention; Sokal's τ_int = ½ + Σ ρ(t) is half of
it, with Var(x̄) = 2 τ_int σ²/n). Independent samples have τ_int = 1; an AR(1) series
x_t = φ x_{t−1} + ε_t has ρ(t) = φ^t and τ_int = (1 + φ)/(1 − φ).

Methods
-------
``"blocking"`` (default of :func:`average`): Flyvbjerg–Petersen reblocking (H. Flyvbjerg,
H. G. Petersen, J. Chem. Phys. 91, 461 (1989)): the series is averaged pairwise again and again;
at level k the 2^k-sample block means give a standard-error estimate SE_k that rises with k until
the blocks are uncorrelated, then stays flat within its own error SE_k/√(2(n_k − 1)). The level is
chosen automatically by the criterion of R. M. Lee, G. J. Conduit, N. Nemec, P. López Ríos and
N. D. Drummond, Phys. Rev. E 83, 066706 (2011), Eq. 14 (also U. Wolff, Comput. Phys. Commun.
156, 143 (2004), Eq. 47), as in pyblock's ``find_optimal_block``: the smallest block length B = 2^k
with B³ > 2 n (SE_k/SE_0)⁴, i.e. B³ > 2 n τ_int². The blocking and the criterion are written here
(a few lines of NumPy): pyblock itself has had no release since 2020 and its table layer is
written for old pandas.

``"autocorrelation"``: τ_int from the FFT autocorrelation function summed up to Sokal's automatic
window (the smallest M with M ≥ c τ_int(M), c = 5; A. D. Sokal, "Monte Carlo methods in
statistical mechanics", Cargèse lectures 1996), computed by ``emcee.autocorr.integrated_time``
(emcee 3, D. Foreman-Mackey et al., PASP 125, 306 (2013)); error = √(σ² τ_int / n).

Derived quantities f(⟨a⟩, ⟨b⟩, ...) (χ, C, U4, ratios) get their error from the blocked
jackknife (:func:`jackknife`; B. Efron and C. Stein, Ann. Stat. 9, 586 (1981); for Monte Carlo
data with blocks longer than τ_int: B. A. Berg, "Markov Chain Monte Carlo Simulations and Their
Statistical Analysis", World Scientific (2004), ch. 2.7, and M. E. J. Newman and G. T. Barkema,
"Monte Carlo Methods in Statistical Physics", OUP (1999), §3.4.4): the series are cut into n_b
blocks of length B, f is recomputed n_b times leaving one block out, and

    σ_f² = (n_b − 1)/n_b Σ_i (f_(i) − f̄_(·))².

The block length is the largest blocking-optimal length of the series entering f
(:func:`optimal_block_length`). :func:`block_bootstrap` resamples the same blocks with replacement
(non-overlapping block bootstrap, E. Carlstein, Ann. Stat. 14, 1171 (1986)) and returns replicas
of f, for estimates that are not smooth functions of the means (e.g. a curve crossing).

Every estimator assumes a stationary series: discard the equilibration first
(:func:`geweke` tells a series that still drifts). An
:class:`Estimate` with ``reliable=False`` comes from a series too short for its correlation time
(no blocking level meets the criterion, fewer than ``MIN_BLOCKS`` blocks, or n < 50 τ_int): treat
its error as a lower bound and sample longer.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from .errors import InputError

#: Fewest blocks a blocked estimate may rest on before it is flagged unreliable.
MIN_BLOCKS = 8
#: Sokal's window constant c (window M ≥ c τ_int).
SOKAL_C = 5.0
#: A series shorter than this many τ_int gives an unreliable τ_int (emcee's default ``tol``).
TAU_TOLERANCE = 50.0
METHODS = ("blocking", "autocorrelation")


@dataclass(frozen=True)
class Estimate:
    """An average or derived quantity with its statistical error.

    ``value`` the estimate (for derived quantities: f of the full-sample means, the same number
    the plain estimator gives); ``error`` its one-σ standard error; ``tau_int`` integrated
    autocorrelation time in samples (module docstring convention; 1 for independent samples;
    for derived quantities the largest of the input series'); ``n_samples``; ``n_effective`` =
    n_samples/tau_int; ``method`` ("blocking", "autocorrelation", "jackknife"); ``block_length``
    and ``n_blocks`` where blocks were used; ``bias`` the jackknife bias estimate (value − bias
    is bias-corrected; O(1/n), normally far below ``error``); ``reliable`` False when the series
    is too short for its correlation time (see the module docstring)."""

    value: float
    error: float
    tau_int: float
    n_samples: int
    n_effective: float
    method: str
    block_length: int | None = None
    n_blocks: int | None = None
    bias: float | None = None
    reliable: bool = True

    def __float__(self) -> float:
        return float(self.value)

    def __str__(self) -> str:
        flag = "" if self.reliable else " (unreliable: series too short)"
        return f"{self.value:.6g} ± {self.error:.2g}{flag}"

    def as_dict(self) -> dict:
        """Plain-Python dict of all fields (JSON-serialisable)."""
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(self).items()}


def _series(x, name="samples") -> np.ndarray:
    a = np.asarray(x, dtype=float)
    if a.ndim != 1:
        raise InputError(f"{name} must be a 1-D series, got shape {a.shape}")
    if len(a) < 2:
        raise InputError(f"{name} needs at least 2 samples for an error estimate, got {len(a)}")
    if not np.all(np.isfinite(a)):
        raise InputError(f"{name} holds NaN or infinite values")
    return a


# ------------------------------------------------------------------------------ blocking
@dataclass(frozen=True)
class Blocking:
    """Flyvbjerg–Petersen reblocking table of one series (module docstring).

    Per level k (K levels): ``block_lengths`` 2^k, ``n_blocks`` n_k, ``errors`` SE_k the
    standard error of the mean from the n_k block means, ``error_errors`` SE_k/√(2(n_k − 1)).
    ``optimal`` the level chosen by the Lee et al. criterion, or None if no level meets it
    (too few samples for the correlation time). ``mean`` the sample mean, ``n_samples``."""

    mean: float
    n_samples: int
    block_lengths: np.ndarray
    n_blocks: np.ndarray
    errors: np.ndarray
    error_errors: np.ndarray
    optimal: int | None

    @property
    def level(self) -> int:
        """The level used for the error: ``optimal``, or, when none meets the criterion, the
        level with the largest SE among those with at least ``MIN_BLOCKS`` blocks (the error
        is then a lower bound). An optimal level of fewer than ``MIN_BLOCKS`` blocks whose SE
        falls below SE_0 is not taken: in a series that short, a small SE of a few block means
        is chance (4 frames could claim τ_int = 0.003 and an error 100 times below σ/√n),
        so the fallback, whose SE is at least SE_0, is used."""
        k = self.optimal
        if k is not None and (self.n_blocks[k] >= MIN_BLOCKS or self.errors[k] >= self.errors[0]):
            return k
        ok = np.flatnonzero(self.n_blocks >= MIN_BLOCKS)
        ok = ok if len(ok) else np.arange(len(self.errors))
        return int(ok[np.argmax(self.errors[ok])])

    @property
    def tau_int(self) -> float:
        """τ_int = (SE_k/SE_0)² at the chosen level (samples)."""
        se0 = self.errors[0]
        return float((self.errors[self.level] / se0) ** 2) if se0 > 0 else 1.0

    def estimate(self) -> Estimate:
        """The mean with its blocking error as an :class:`Estimate`."""
        k = self.level
        tau = max(self.tau_int, 1e-12)
        reliable = self.optimal is not None and self.n_blocks[k] >= MIN_BLOCKS
        return Estimate(self.mean, float(self.errors[k]), tau, self.n_samples, self.n_samples / tau,
                        "blocking", int(self.block_lengths[k]), int(self.n_blocks[k]), None, bool(reliable))


def reblock(samples) -> Blocking:
    """Reblocking analysis of a 1-D series (Flyvbjerg & Petersen 1989; level choice of Lee et
    al. 2011, Eq. 14). At each level the last sample is dropped if the count is odd, as in the
    original method. Returns a :class:`Blocking`. Raises :class:`InputError` for fewer than 2
    samples, non-finite values or a non-1-D input."""
    x = _series(samples)
    n = len(x)
    mean = float(np.mean(x))
    lengths, counts, errs = [], [], []
    data, k = x, 0
    while len(data) >= 2:
        nk = len(data)
        lengths.append(2**k)
        counts.append(nk)
        errs.append(float(np.sqrt(np.var(data, ddof=1) / nk)))
        half = nk // 2
        data = 0.5 * (data[0:2 * half:2] + data[1:2 * half:2])
        k += 1
    lengths, counts, errs = np.array(lengths), np.array(counts), np.array(errs)
    err_err = errs / np.sqrt(2.0 * (counts - 1))
    optimal = None
    if errs[0] > 0:
        ok = lengths.astype(float) ** 3 > 2.0 * n * (errs / errs[0]) ** 4
        if np.any(ok):
            optimal = int(np.argmax(ok))
    else:  # a constant series: no fluctuation, zero error, trivially converged
        optimal = 0
    return Blocking(mean, n, lengths, counts, errs, err_err, optimal)


# ------------------------------------------------------------------------------ autocorrelation
def integrated_autocorrelation_time(samples, c: float = SOKAL_C) -> float:
    """τ_int (samples, module-docstring convention) of a 1-D series with Sokal's automatic
    window (constant ``c``), computed by ``emcee.autocorr.integrated_time``. A constant series
    gives 1. Raises :class:`InputError` for bad input."""
    from emcee.autocorr import integrated_time

    x = _series(samples)
    if np.ptp(x) == 0:
        return 1.0
    return float(integrated_time(x, c=c, tol=0, quiet=True)[0])


def average(samples, method: str = "blocking") -> Estimate:
    """Mean of a correlated series with its standard error.

    ``samples`` 1-D (n ≥ 2); ``method`` "blocking" (Flyvbjerg–Petersen with the Lee et al. block
    choice) or "autocorrelation" (σ√(τ_int/n), τ_int with Sokal's window via emcee). Returns an
    :class:`Estimate` in the unit of the samples. Raises :class:`InputError` for an unknown
    method or bad samples."""
    if method == "blocking":
        return reblock(samples).estimate()
    if method == "autocorrelation":
        x = _series(samples)
        n = len(x)
        tau = max(integrated_autocorrelation_time(x), 1e-12)
        err = float(np.sqrt(np.var(x, ddof=1) * tau / n))
        return Estimate(float(np.mean(x)), err, tau, n, n / tau, "autocorrelation", None, None, None,
                        bool(n >= TAU_TOLERANCE * tau))
    raise InputError(f"method must be one of {METHODS}, got {method!r}")


# ------------------------------------------------------------------------------ stationarity
#: |z| above which :func:`geweke` calls a series not stationary
GEWEKE_LIMIT = 4.0


def geweke(samples, first: float = 0.1, last: float = 0.5) -> float:
    """Geweke's convergence diagnostic (J. Geweke, in Bayesian Statistics 4, OUP (1992)): the
    z-score (ā − b̄)/√(σ_a² + σ_b²) of the means of the first ``first`` and the last ``last``
    fractions of a 1-D series, each squared standard error σ²τ/n with σ² and τ the larger sample
    variance and blocking τ_int of the two parts (:func:`reblock`; correlated samples are judged
    by their correlation time, and a short head, whose few correlated samples under-estimate both,
    does not flag at random: AR(1) with τ_int = 19, |z| > 4 in 6 % of series of 100 samples and
    2 % of 200). |z| > ``GEWEKE_LIMIT`` marks a series that still drifts (an equilibration left
    in). NaN for fewer than 20 samples; 0 for two equal constant parts, inf for two different ones.
    Raises :class:`InputError` for bad samples or fractions outside (0, 1) that overlap."""
    raw = np.asarray(samples, dtype=float)
    if raw.ndim == 1 and len(raw) < 2:
        return float("nan")
    x = _series(raw)
    if not (0 < first < 1 and 0 < last < 1 and first + last <= 1):
        raise InputError(f"geweke: first and last must be fractions in (0, 1) summing to at most 1, "
                         f"got {first}, {last}")
    n = len(x)
    if n < 20:
        return float("nan")
    head, tail = x[: max(2, int(first * n))], x[n - max(2, int(last * n)):]
    # each part's error with the longer correlation time of the two (the tail's, measured on half
    # the series, is the reliable one): a head of a few τ_int alone would under-estimate its own
    # error and flag at random
    tau = max(reblock(head).tau_int, reblock(tail).tau_int, 1.0)
    var = max(np.var(head, ddof=1), np.var(tail, ddof=1))  # a short correlated head under-samples its spread
    err = math.sqrt(var * tau * (1.0 / len(head) + 1.0 / len(tail)))
    diff = float(np.mean(head) - np.mean(tail))
    if err == 0:
        return 0.0 if diff == 0 else math.copysign(math.inf, diff)
    return float(diff / err)


def stationary(samples) -> bool | None:
    """Whether a 1-D series looks stationary (equilibrated): False when its first 10 % and last half
    differ both beyond ``GEWEKE_LIMIT`` standard errors (:func:`geweke`) and by more than 3
    standard deviations of the last half (an offset no fluctuation of the equilibrated run makes,
    so a short, strongly correlated start alone does not count); None for fewer than 20 samples
    or a series spanning fewer than 10 correlation times of its last half. A series a few τ_int
    long can still be misjudged (AR(1), τ_int = 39, 60 samples: False in 17 %); its
    :class:`Estimate` is then ``reliable=False`` too. Raises :class:`InputError` for bad samples."""
    z = geweke(samples)
    if np.isnan(z):
        return None
    x = np.asarray(samples, dtype=float)
    n = len(x)
    head, tail = x[: max(2, n // 10)], x[n - max(2, n // 2):]
    if n < 10.0 * reblock(tail).tau_int:
        return None
    offset = abs(float(np.mean(head) - np.mean(tail)))
    return not (abs(z) > GEWEKE_LIMIT and offset > 3.0 * float(np.std(tail, ddof=1)))


# ------------------------------------------------------------------------------ derived quantities
def _columns(samples) -> np.ndarray:
    a = np.asarray(samples, dtype=float)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise InputError(f"samples must have shape (n,) or (n, k) (k series), got {a.shape}")
    if a.shape[0] < 2:
        raise InputError(f"need at least 2 samples, got {a.shape[0]}")
    if not np.all(np.isfinite(a)):
        raise InputError("samples hold NaN or infinite values")
    return a


def _block_choice(a):
    """(length, reliable, τ_int) for the columns of ``a`` (see :func:`optimal_block_length`)."""
    n = a.shape[0]
    lengths, taus, reliable = [1], [1.0], True
    for col in a.T:
        b = reblock(col)
        if b.optimal is None:
            reliable = False
        lengths.append(int(b.block_lengths[b.level]))
        taus.append(b.tau_int)
    length = max(lengths)
    if n // length < MIN_BLOCKS:
        length, reliable = max(1, n // MIN_BLOCKS), False
    return length, reliable, max(taus)


def optimal_block_length(samples) -> tuple[int, bool]:
    """Block length (samples) for the blocked jackknife/bootstrap of the series in ``samples``
    ((n,) or (n, k)): the largest blocking-optimal length (:func:`reblock`) over the k series,
    shortened if needed to leave ``MIN_BLOCKS`` blocks. Returns (length, reliable) with reliable
    False when a series has no optimal level or the length had to be shortened."""
    length, reliable, _ = _block_choice(_columns(samples))
    return length, reliable


def _blocks(a, length):
    n_b = a.shape[0] // length
    if n_b < 2:
        raise InputError(f"block length {length} leaves fewer than 2 blocks of {a.shape[0]} samples")
    return a[: n_b * length].reshape(n_b, length, a.shape[1]).mean(axis=1)  # (n_b, k) block means


def jackknife(func, samples, block_length: int | None = None) -> Estimate:
    """Blocked-jackknife error of a function of means (module docstring).

    ``func`` maps the (k,) vector of means of the k series to a float (e.g. for U4:
    ``lambda m: 1 - m[1] / (3 m[0]**2)`` with series (M², M⁴)); ``samples`` (n, k) or (n,);
    ``block_length`` default :func:`optimal_block_length`. The value is ``func`` of the full-sample
    means (not bias-corrected; the jackknife bias estimate is in ``bias``); the samples beyond
    the last whole block enter the value but not the error. ``reliable`` says whether the series
    are long enough for their correlation times (and n_b ≥ ``MIN_BLOCKS``); whether a
    ``block_length`` given by the caller exceeds the correlation time is the caller's choice.
    Returns an :class:`Estimate` with method "jackknife". Raises :class:`InputError` for bad
    samples or fewer than 2 blocks."""
    a = _columns(samples)
    n = a.shape[0]
    auto_length, reliable, tau = _block_choice(a)
    block_length = auto_length if block_length is None else int(block_length)
    if block_length < 1:
        raise InputError(f"block_length must be >= 1, got {block_length}")
    means = _blocks(a, block_length)
    n_b = len(means)
    total = means.sum(axis=0)
    loo = (total[None, :] - means) / (n_b - 1)  # leave-one-block-out means
    theta = float(func(a.mean(axis=0)))
    reps = np.array([float(func(m)) for m in loo])
    err = float(np.sqrt((n_b - 1) / n_b * np.sum((reps - reps.mean()) ** 2)))
    bias = float((n_b - 1) * (reps.mean() - theta))
    return Estimate(theta, err, tau, n, n / tau, "jackknife", block_length, n_b, bias,
                    bool(reliable and n_b >= MIN_BLOCKS and np.isfinite(err)))


def block_bootstrap(func, samples, n_boot: int = 1000, block_length: int | None = None, seed=0) -> np.ndarray:
    """Replicas of ``func`` (of the (k,) means, as in :func:`jackknife`) from the non-overlapping
    block bootstrap: each replica draws n_b of the n_b blocks with replacement (Carlstein 1986).
    ``seed``: int or numpy Generator. Returns (n_boot,) floats; their standard deviation is the
    bootstrap error."""
    a = _columns(samples)
    if block_length is None:
        block_length, _ = optimal_block_length(a)
    means = _blocks(a, int(block_length))
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    idx = rng.integers(0, len(means), size=(int(n_boot), len(means)))
    boot = means[idx].mean(axis=1)  # (n_boot, k)
    return np.array([float(func(m)) for m in boot])


__all__ = ["Estimate", "Blocking", "reblock", "integrated_autocorrelation_time", "average", "optimal_block_length",
           "jackknife", "block_bootstrap", "geweke", "stationary", "MIN_BLOCKS", "SOKAL_C", "TAU_TOLERANCE", "METHODS",
           "GEWEKE_LIMIT"]
