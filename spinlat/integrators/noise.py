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
- :func:`normal_pair` — two independent standard normals by the Box–Muller transform
  (G. E. P. Box, M. E. Muller, Ann. Math. Statist. 29, 610 (1958)) of two 53-bit uniforms made
  from one Philox output: z0 = r cos 2πv, z1 = r sin 2πv, r = sqrt(−2 ln u), u ∈ (0, 1].
- :func:`normal3` — the three normals of row ``i`` of draw ``counter``: the pair of index 2i and
  the first normal of index 2i + 1. The counter words are (lo, hi of the index; lo, hi of the
  counter).

:class:`PhiloxNoise` holds an integrator's stream: the key (from the seed) and the counter of
the next draw; every draw of an (M, 3) block of normals takes one counter value.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from ..errors import InputError

_M0 = np.uint64(0xD2511F53)
_M1 = np.uint64(0xCD9E8D57)
_W0 = np.uint64(0x9E3779B9)
_W1 = np.uint64(0xBB67AE85)
_LO = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)
_S5 = np.uint64(5)
_S6 = np.uint64(6)
_S26 = np.uint64(26)
_TWO_PI = 2.0 * math.pi
_INV_2_53 = 1.0 / 9007199254740992.0

#: the generator's name in checkpoints
GENERATOR = "philox4x32"

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


@numba.njit(cache=True, inline="always")
def normal_pair(k0, k1, counter, index):
    """Two standard normals of (counter, index) under key (k0, k1) (uint64 arguments): Box–Muller
    of u = 1 − a/2⁵³ ∈ (0, 1] and v = b/2⁵³ ∈ [0, 1), a and b 53-bit integers made of the words
    of one :func:`philox4x32` output."""
    x0, x1, x2, x3 = philox4x32(index & _LO, index >> _S32, counter & _LO, counter >> _S32, k0, k1)
    a = ((x0 >> _S5) << _S26) | (x1 >> _S6)
    b = ((x2 >> _S5) << _S26) | (x3 >> _S6)
    u = 1.0 - float(a) * _INV_2_53
    v = float(b) * _INV_2_53
    r = math.sqrt(-2.0 * math.log(u))
    t = _TWO_PI * v
    return r * math.cos(t), r * math.sin(t)


@numba.njit(cache=True, inline="always")
def normal3(k0, k1, counter, i):
    """The three standard normals of row ``i`` of draw ``counter`` (uint64 arguments)."""
    two = np.uint64(2) * i
    z0, z1 = normal_pair(k0, k1, counter, two)
    x0, x1, x2, x3 = philox4x32((two + np.uint64(1)) & _LO, (two + np.uint64(1)) >> _S32, counter & _LO,
                                counter >> _S32, k0, k1)
    a = ((x0 >> _S5) << _S26) | (x1 >> _S6)
    b = ((x2 >> _S5) << _S26) | (x3 >> _S6)
    z2 = math.sqrt(-2.0 * math.log(1.0 - float(a) * _INV_2_53)) * math.cos(_TWO_PI * float(b) * _INV_2_53)
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


def fill_normals(key, counter, out, serial=False):
    """Fill ``out`` (S, M, 3) float64 with the standard normals of draws counter … counter + S − 1
    (rows 0 … M − 1 each) under ``key`` (two uint32); threads from :data:`PARALLEL_MIN_ROWS`
    rows unless ``serial`` (same numbers; the serial kernel releases the GIL, for a helper thread
    that fills the next block while the caller integrates)."""
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
    form ``{"generator": "philox4x32", "key": [k0, k1] (32-bit ints), "counter": int}`` (JSON values).
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
        return {"generator": GENERATOR, "key": [int(self.key[0]), int(self.key[1])], "counter": int(self.counter)}

    def set_state(self, saved) -> None:
        """Take a :meth:`state` dict over. Raises InputError for a malformed one."""
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

    def __repr__(self):
        return f"PhiloxNoise(key={self.key}, counter={self.counter})"
