"""Counter-based Gaussian noise for the stochastic integrators, drawn inside threaded kernels.

A counter-based generator is a keyed bijection of a counter: the random numbers of atom i at
draw c are a pure function of (key, c, i). Any thread can compute any atom's numbers in any
order, so the noise (and the trajectory) is the same bit for bit on any number of threads and
however the rows are split between them; a checkpoint is two numbers (key, counter).

- :func:`philox4x32` — Philox4x32-10 (J. K. Salmon, M. A. Moraes, R. O. Dror, D. E. Shaw,
  "Parallel random numbers: as easy as 1, 2, 3", SC'11, doi:10.1145/2063384.2063405): a 128-bit
  counter (four 32-bit words) and a 64-bit key (two words) give four 32-bit words; ten rounds
  with the multipliers 0xD2511F53, 0xCD9E8D57 and the Weyl key increments 0x9E3779B9,
  0xBB67AE85 of the paper. Checked against the Random123 known-answer vectors (kat_vectors).
- :func:`normal3` — the three standard normals of row ``i`` of draw ``counter``: the ziggurat
  method (G. Marsaglia, W. W. Tsang, J. Stat. Softw. 5(8) (2000); 256 strips, tables computed at
  import by :func:`_ziggurat_tables`) on three 42-bit draws cut from one Philox output of the
  counter (i, 0, counter lo, counter hi); the 1.5 % of normals that fail the strip's rectangle
  test take further uniforms from the row's spare Philox outputs (counter (i, q, …), q = 1, 2, …),
  in a fixed order, so every row is still a pure function of (key, counter, i). One Philox output
  and three table look-ups per row on the fast path, against two outputs and two logarithms,
  square roots and cosines of the Box–Muller sampler used until 2026-12-01 (checkpoint
  ``normals`` field below; cost: ``benchmarks/bench_noise.py``).

:class:`PhiloxNoise` holds an integrator's stream: the key (from the seed) and the counter of
the next draw; every draw of an (M, 3) block of normals takes one counter value.
"""

from __future__ import annotations

import math
import warnings

import numba
import numpy as np

from ..errors import InputError, ReproducibilityWarning

_M0 = np.uint64(0xD2511F53)
_M1 = np.uint64(0xCD9E8D57)
_W0 = np.uint64(0x9E3779B9)
_W1 = np.uint64(0xBB67AE85)
_LO = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)

#: the number of ziggurat strips (8 bits of a draw pick one)
ZIGGURAT_LAYERS = 256

#: the generator's name in checkpoints
GENERATOR = "philox4x32"

#: the normal sampler's name in checkpoints (a state without it was written by the Box–Muller
#: sampler: same key and counter, other normals)
SAMPLER = "ziggurat256"

#: at or above this many rows the block fills run on threads (the numbers do not change)
PARALLEL_MIN_ROWS = 8192


@numba.njit(cache=True, inline="always")
def philox4x32(c0, c1, c2, c3, k0, k1):
    """Philox4x32-10 of the counter (c0, c1, c2, c3) under the key (k0, k1): four 32-bit words
    (each argument and result a uint64 holding a 32-bit value)."""
    for r in range(10):
        if r > 0:
            k0 = (k0 + _W0) & _LO
            k1 = (k1 + _W1) & _LO
        p0 = _M0 * c0
        p1 = _M1 * c2
        c0, c1, c2, c3 = ((p1 >> _S32) ^ c1 ^ k0, p1 & _LO, (p0 >> _S32) ^ c3 ^ k1, p0 & _LO)
    return c0, c1, c2, c3


@numba.njit(cache=True)
def philox4x32_array(ctr, key):
    """:func:`philox4x32` of a counter (4,) and a key (2,) of uint32 values; returns (4,) uint32."""
    x = philox4x32(np.uint64(ctr[0]), np.uint64(ctr[1]), np.uint64(ctr[2]), np.uint64(ctr[3]),
                   np.uint64(key[0]), np.uint64(key[1]))
    out = np.empty(4, dtype=np.uint32)
    for j in range(4):
        out[j] = x[j]
    return out


def _ziggurat_tables(layers=ZIGGURAT_LAYERS):
    """The ziggurat of the unnormalised normal density f(x) = exp(−x²/2) on x ≥ 0 in ``layers``
    strips of equal area v (G. Marsaglia, W. W. Tsang, J. Stat. Softw. 5(8) (2000),
    doi:10.18637/jss.v005.i08; layout of J. A. Doornik, "An improved ziggurat method to generate
    normal random samples" (2005)): x[0] = v/f(r) (the base strip with the tail beyond r),
    x[1] = r, f(x[i+1]) = v/x[i] + f(x[i]), x[layers] = 0. The edge r solves for the top strip
    closing at f = 1 (bisection to the last bit: 3.65415288536101 for 256 layers, the paper's
    value to 15 digits). Returns (x, f(x), r), x and f (layers + 1,) float64."""

    def f(x):
        return math.exp(-0.5 * x * x)

    def strips(r):
        v = r * f(r) + math.sqrt(0.5 * math.pi) * math.erfc(r / math.sqrt(2.0))
        x = [v / f(r), r]
        for _ in range(1, layers - 1):
            y = v / x[-1] + f(x[-1])
            if y >= 1.0:
                return v, x, 1.0  # the strips reach the top early: r too small
            x.append(math.sqrt(-2.0 * math.log(y)))
        return v, x, v / x[-1] + f(x[-1]) - 1.0

    lo, hi = 2.0, 6.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        if strips(mid)[2] > 0.0:
            lo = mid
        else:
            hi = mid
    r = hi
    x = np.array(strips(r)[1] + [0.0])
    return x, np.exp(-0.5 * x * x), r


_ZX, _ZF, ZIGGURAT_R = _ziggurat_tables()
_M42 = np.uint64((1 << 42) - 1)
_M33 = np.uint64((1 << 33) - 1)
_M22 = np.uint64((1 << 22) - 1)
_S11 = np.uint64(11)
_S20 = np.uint64(20)
_S22 = np.uint64(22)
_S33 = np.uint64(33)
_S41 = np.uint64(41)
_S44 = np.uint64(44)
_B255 = np.uint64(255)
_INV_2_33 = 1.0 / 8589934592.0
_INV_2_53 = 1.0 / 9007199254740992.0


@numba.njit(cache=True, inline="always")
def _zig_fast(w):
    """The rectangle test of the ziggurat on a 42-bit draw ``w`` (uint64): sign bit 41, strip
    bits 40–33, 33-bit uniform u = bits 32–0 / 2³³; x = u·x[strip]. Returns (±x, True) when x
    lies in the strip's inner rectangle (x < x[strip + 1]), else (0, False)."""
    layer = (w >> _S33) & _B255
    x = float(np.int64(w & _M33)) * _INV_2_33 * _ZX[layer]
    if x < _ZX[layer + np.uint64(1)]:
        return (-x if (w >> _S41) != np.uint64(0) else x), True
    return 0.0, False


@numba.njit(cache=True, inline="always")
def _spare_word(k0, k1, counter, row, p):
    """Spare 64-bit word ``p`` (0, 1, …) of row ``row`` of draw ``counter``: words 2q and 2q + 1
    are (x0 x1) and (x2 x3) of :func:`philox4x32` of the counter (row, q + 1, counter lo, hi)."""
    x0, x1, x2, x3 = philox4x32(row, (p >> np.uint64(1)) + np.uint64(1), counter & _LO, counter >> _S32, k0, k1)
    if p & np.uint64(1):
        return (x2 << _S32) | x3
    return (x0 << _S32) | x1


@numba.njit(cache=True)
def _zig_slow(k0, k1, counter, row, w, p):
    """The rest of the ziggurat after the draw ``w`` failed the rectangle test, taking further
    uniforms from the row's spare words p, p + 1, … in order (:func:`_spare_word`; a 53-bit
    uniform U = bits 63–11 / 2⁵³ per word). Strip 0 (x ≥ r): the tail by Marsaglia's method,
    a = −ln(1 − U₁)/r, b = −ln(1 − U₂) until 2b ≥ a², x = r + a. Other strips: accept x when
    f(x[i]) + U (f(x[i+1]) − f(x[i])) < f(x) (the wedge); else a new draw from the next spare word
    (its 42 low bits, as in :func:`_zig_fast`) and again. Returns (normal, next spare word)."""
    while True:
        layer = (w >> _S33) & _B255
        neg = (w >> _S41) != np.uint64(0)
        x = float(np.int64(w & _M33)) * _INV_2_33 * _ZX[layer]
        if layer == np.uint64(0):
            while True:
                a = -math.log(1.0 - float(np.int64(_spare_word(k0, k1, counter, row, p) >> _S11)) * _INV_2_53) / ZIGGURAT_R
                b = -math.log(1.0 - float(np.int64(_spare_word(k0, k1, counter, row, p + np.uint64(1)) >> _S11)) * _INV_2_53)
                p += np.uint64(2)
                if b + b >= a * a:
                    break
            x = ZIGGURAT_R + a
            return (-x if neg else x), p
        lo = _ZF[layer]
        u = float(np.int64(_spare_word(k0, k1, counter, row, p) >> _S11)) * _INV_2_53
        p += np.uint64(1)
        if lo + u * (_ZF[layer + np.uint64(1)] - lo) < math.exp(-0.5 * x * x):
            return (-x if neg else x), p
        w = _spare_word(k0, k1, counter, row, p) & _M42
        p += np.uint64(1)
        z, ok = _zig_fast(w)
        if ok:
            return z, p


@numba.njit(cache=True, inline="always")
def normal3(k0, k1, counter, i):
    """The three standard normals of row ``i`` of draw ``counter`` (uint64 arguments, i < 2³²):
    the ziggurat (:func:`_zig_fast`, :func:`_zig_slow`) of three 42-bit draws cut from the 128
    bits of :func:`philox4x32` of the counter (i, 0, counter lo, counter hi): with A = x0·2³² + x1
    and B = x2·2³² + x3, draw 0 = A bits 63–22, draw 1 = A bits 21–0 then B bits 63–44, draw 2 =
    B bits 41–0. Rejections (1.5 % of normals) take spare words of the row in order: normal
    0's first, then normal 1's, then normal 2's."""
    x0, x1, x2, x3 = philox4x32(i, np.uint64(0), counter & _LO, counter >> _S32, k0, k1)
    a = (x0 << _S32) | x1
    b = (x2 << _S32) | x3
    w0 = a >> _S22
    w1 = ((a & _M22) << _S20) | (b >> _S44)
    w2 = b & _M42
    p = np.uint64(0)
    z0, ok = _zig_fast(w0)
    if not ok:
        z0, p = _zig_slow(k0, k1, counter, i, w0, p)
    z1, ok = _zig_fast(w1)
    if not ok:
        z1, p = _zig_slow(k0, k1, counter, i, w1, p)
    z2, ok = _zig_fast(w2)
    if not ok:
        z2, p = _zig_slow(k0, k1, counter, i, w2, p)
    return z0, z1, z2


def _fill_kernels(threaded):
    """The block fill, serial (``threaded`` False) or with threads over the rows (True); the same
    numbers either way (each row is a pure function of its index)."""

    @numba.njit(cache=True, parallel=threaded, nogil=True)
    def fill(k0, k1, counter, out):
        """out[s, i] = :func:`normal3` of row i of draw counter + s, for out (S, M, 3)."""
        _ = threaded  # a closure constant: keeps the numba cache entries of the two variants apart
        m = out.shape[1]
        total = out.shape[0] * m
        for f in numba.prange(total):
            s = f // m
            i = f - s * m
            z0, z1, z2 = normal3(k0, k1, counter + np.uint64(s), np.uint64(i))
            out[s, i, 0] = z0
            out[s, i, 1] = z1
            out[s, i, 2] = z2

    return fill


_fill_serial = _fill_kernels(False)
_fill_parallel = _fill_kernels(True)


def _threaded(rows):
    return rows >= PARALLEL_MIN_ROWS and numba.get_num_threads() > 1


def check_rows(rows):
    """Raise InputError unless a draw of ``rows`` rows fits the counter layout (rows < 2³²)."""
    if rows >= 2**32:
        raise InputError(f"a noise draw holds at most 2**32 - 1 rows, not {rows}")


def fill_normals(key, counter, out, serial=False):
    """Fill ``out`` (S, M, 3) float64 with the standard normals of draws counter … counter + S − 1
    (rows 0 … M − 1 each) under ``key`` (two uint32); threads from :data:`PARALLEL_MIN_ROWS`
    rows unless ``serial`` (same numbers; the serial kernel releases the GIL, for a helper thread
    that fills the next block while the caller integrates). Raises InputError for M ≥ 2³²."""
    check_rows(out.shape[1])
    kernel = _fill_parallel if not serial and _threaded(out.shape[0] * out.shape[1]) else _fill_serial
    kernel(np.uint64(key[0]), np.uint64(key[1]), np.uint64(counter), out)
    return out


def _key_from_seed(seed):
    """Two uint32 key words from a seed (int, SeedSequence, Generator or None: fresh entropy),
    via NumPy's seeding (:func:`numpy.random.default_rng`)."""
    words = np.random.default_rng(seed).integers(0, 2**32, size=2, dtype=np.uint64)
    return int(words[0]), int(words[1])


class PhiloxNoise:
    """The Gaussian noise stream of a stochastic integrator (Philox4x32-10, see the module).

    ``key`` (two 32-bit ints) comes from ``seed`` (None: fresh entropy); ``counter`` (int ≥ 0)
    is the next draw. :meth:`normals` returns the (M, 3) block of one draw and advances the
    counter by one; :meth:`take` hands out the counter of a draw that a caller's own kernel makes
    (:func:`normal3` per row). :meth:`state` / :meth:`set_state` give and take the checkpoint
    form ``{"generator": "philox4x32", "key": [k0, k1] (32-bit ints), "counter": int, "normals":
    "ziggurat256"}`` (JSON values). A state without ``normals`` comes from the Box–Muller sampler
    of spinlat before 2026-12-01: it is taken (same key and counter) with a
    :class:`~spinlat.errors.ReproducibilityWarning`, since the same counters now give other
    normals; an unknown ``normals`` is an InputError.
    """

    def __init__(self, seed=None):
        self.key = _key_from_seed(seed)
        self.counter = 0

    @property
    def words(self):
        """(k0, k1, counter) as the uint64 scalars the kernels take."""
        return np.uint64(self.key[0]), np.uint64(self.key[1]), np.uint64(self.counter)

    def take(self, draws=1):
        """The counter of the next draw (as uint64); the counter moves on by ``draws``."""
        c = self.counter
        self.counter += int(draws)
        return np.uint64(c)

    def normals(self, rows):
        """(rows, 3) standard normals of the next draw."""
        out = np.empty((1, int(rows), 3))
        fill_normals(self.key, self.take(), out)
        return out[0]

    def blocks(self, draws, rows, serial=False):
        """(draws, rows, 3) standard normals of the next ``draws`` draws (one per leading index);
        ``serial``: on the calling thread only (see :func:`fill_normals`)."""
        out = np.empty((int(draws), int(rows), 3))
        fill_normals(self.key, self.take(draws), out, serial)
        return out

    def state(self) -> dict:
        return {"generator": GENERATOR, "key": [int(self.key[0]), int(self.key[1])], "counter": int(self.counter),
                "normals": SAMPLER}

    def set_state(self, saved) -> None:
        """Take a :meth:`state` dict over. Raises InputError for a malformed one or an unknown
        ``normals`` sampler; warns (ReproducibilityWarning) for one without ``normals``."""
        sampler = saved.get("normals") if isinstance(saved, dict) else None
        if sampler is not None and sampler != SAMPLER:
            raise InputError(f"checkpoint holds a {GENERATOR} noise state of an unknown normal sampler {sampler!r} "
                             f"(this spinlat draws {SAMPLER!r})")
        try:
            key = np.asarray(saved["key"]).reshape(-1)
            counter = saved["counter"]
            ok = (key.shape == (2,) and np.issubdtype(key.dtype, np.integer) and np.all(key >= 0)
                  and np.all(key < 2**32) and isinstance(counter, (int, np.integer))
                  and not isinstance(counter, (bool, np.bool_)) and 0 <= int(counter) < 2**64)
        except (KeyError, TypeError, ValueError):
            ok = False
        if not ok:
            raise InputError(f"checkpoint holds an invalid {GENERATOR} noise state: {saved!r}")
        self.key = (int(key[0]), int(key[1]))
        self.counter = int(counter)
        if sampler is None:
            warnings.warn(ReproducibilityWarning(
                f"the checkpoint's {GENERATOR} noise state has no 'normals' field: it was written by an older "
                f"spinlat drawing Box-Muller normals; this one draws {SAMPLER!r} normals from the same key and "
                f"counter, so the restarted run is correct but does not repeat the interrupted trajectory bit "
                f"for bit"), stacklevel=3)

    def __repr__(self):
        return f"PhiloxNoise(key={self.key}, counter={self.counter})"
