"""Cost per normal of the counter-based noise: the ziggurat of spinlat.integrators.noise against
the Box–Muller sampler it replaced (kept here as the reference), on 1 and 2 numba threads.

Both fill an (1, M, 3) block row by row from Philox4x32-10 (same key, same counter); the
Box–Muller reference takes two Philox outputs per row (pairs of index 2i and 2i + 1, 53-bit
uniforms, z = sqrt(−2 ln u)·(cos, sin) 2πv, the third normal the cosine of the second pair) as
spinlat did until 2026-12-01 (branch h22-threads). The windows alternate between the samplers
and thread counts in one process; the best of ``--repeats`` is printed with the load average.

Usage: python benchmarks/bench_noise.py [--rows 16384] [--repeats 7] [--threads 2]
"""

from __future__ import annotations

import argparse
import math
import os
import time

import numba
import numpy as np

from spinlat.integrators.noise import fill_normals, philox4x32

_LO = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)


@numba.njit(cache=True, inline="always")
def _box_muller_row(k0, k1, counter, index):
    x0, x1, x2, x3 = philox4x32(index & _LO, index >> _S32, counter & _LO, counter >> _S32, k0, k1)
    a = ((x0 >> np.uint64(5)) << np.uint64(26)) | (x1 >> np.uint64(6))
    b = ((x2 >> np.uint64(5)) << np.uint64(26)) | (x3 >> np.uint64(6))
    r = math.sqrt(-2.0 * math.log(1.0 - float(a) / 9007199254740992.0))
    t = 2.0 * math.pi * float(b) / 9007199254740992.0
    return r * math.cos(t), r * math.sin(t)


def _box_muller_fill(threaded):
    @numba.njit(cache=True, parallel=threaded)
    def fill(k0, k1, counter, out):
        _ = threaded
        for i in numba.prange(out.shape[1]):
            two = np.uint64(2) * np.uint64(i)
            z0, z1 = _box_muller_row(k0, k1, counter, two)
            z2, _z3 = _box_muller_row(k0, k1, counter, two + np.uint64(1))
            out[0, i, 0] = z0
            out[0, i, 1] = z1
            out[0, i, 2] = z2

    return fill


_bm_serial, _bm_parallel = _box_muller_fill(False), _box_muller_fill(True)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=16384)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--calls", type=int, default=50, help="block fills per timed window")
    a = p.parse_args()
    out = np.empty((1, a.rows, 3))
    key = (12345, 678)
    k0, k1 = np.uint64(key[0]), np.uint64(key[1])

    def zig(threads, c):
        fill_normals(key, c, out, serial=threads == 1)

    def bm(threads, c):
        (_bm_serial if threads == 1 else _bm_parallel)(k0, k1, np.uint64(c), out)

    cases = [(name, f, t) for t in (1, a.threads) for name, f in (("box-muller", bm), ("ziggurat", zig))]
    best = {}
    for name, f, t in cases:  # compile
        numba.set_num_threads(t)
        f(t, 0)
    loads = []
    for _ in range(a.repeats):
        for name, f, t in cases:
            numba.set_num_threads(t)
            t0 = time.perf_counter()
            for c in range(a.calls):
                f(t, c)
            dt = (time.perf_counter() - t0) / (a.calls * a.rows * 3)
            best[name, t] = min(best.get((name, t), math.inf), dt)
        loads.append(os.getloadavg()[0])
    print(f"rows {a.rows}, best of {a.repeats} windows of {a.calls} fills, load {min(loads):.2f}-{max(loads):.2f}")
    for t in (1, a.threads):
        bmt, zt = best["box-muller", t], best["ziggurat", t]
        print(f"  {t} thread(s): box-muller {bmt * 1e9:.2f} ns/normal, ziggurat {zt * 1e9:.2f} ns/normal, "
              f"ratio {bmt / zt:.2f}x")
    print(f"  2t/1t: box-muller {best['box-muller', 1] / best['box-muller', a.threads]:.2f}, "
          f"ziggurat {best['ziggurat', 1] / best['ziggurat', a.threads]:.2f}")


if __name__ == "__main__":
    main()
