"""The counter-based noise of the stochastic integrators (spinlat.integrators.noise): Philox4x32-10
against the published known-answer vectors, the ziggurat normals against a plain-Python reference
and the normal law, and the stream's independence of the thread count, the block split and the
draw order."""

import math
import warnings

import numba
import numpy as np
import pytest

import spinlat.integrators.noise as noise
import spinlat.integrators.spin_lattice as spin_lattice
from spinlat.errors import InputError, ReproducibilityWarning
from spinlat.integrators import LLG
from spinlat.integrators.noise import PhiloxNoise, fill_normals, philox4x32_array

# Random123 kat_vectors (D. E. Shaw Research), philox4x32 with 10 rounds: counter, key → output
KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]


@pytest.mark.parametrize("ctr, key, expected", KAT)
def test_philox4x32_10_matches_random123_known_answers(ctr, key, expected):
    got = philox4x32_array(np.array(ctr, dtype=np.uint32), np.array(key, dtype=np.uint32))
    assert tuple(int(x) for x in got) == expected


def _philox_reference(ctr, key):
    """Philox4x32-10 in plain Python integers (the SC'11 paper's round function)."""
    c, (k0, k1) = list(ctr), key
    for r in range(10):
        if r:
            k0, k1 = (k0 + 0x9E3779B9) & 0xFFFFFFFF, (k1 + 0xBB67AE85) & 0xFFFFFFFF
        p0, p1 = 0xD2511F53 * c[0], 0xCD9E8D57 * c[2]
        c = [(p1 >> 32) ^ c[1] ^ k0, p1 & 0xFFFFFFFF, (p0 >> 32) ^ c[3] ^ k1, p0 & 0xFFFFFFFF]
    return tuple(c)


def test_philox_matches_python_reference_on_random_counters():
    rng = np.random.default_rng(0)
    for _ in range(50):
        ctr = tuple(int(x) for x in rng.integers(0, 2**32, 4))
        key = tuple(int(x) for x in rng.integers(0, 2**32, 2))
        got = philox4x32_array(np.array(ctr, dtype=np.uint32), np.array(key, dtype=np.uint32))
        assert tuple(int(x) for x in got) == _philox_reference(ctr, key)


def _zig_tables_reference(layers=256):
    """The ziggurat of exp(-x²/2) in plain Python (Marsaglia & Tsang 2000, Doornik's layout),
    with the paper's edge r = 3.6541528853610088 for 256 strips."""
    r = 3.6541528853610088
    f = lambda x: math.exp(-0.5 * x * x)  # noqa: E731
    v = r * f(r) + math.sqrt(math.pi / 2) * math.erfc(r / math.sqrt(2))
    x = [v / f(r), r]
    for _ in range(1, layers - 1):
        x.append(math.sqrt(-2 * math.log(v / x[-1] + f(x[-1]))))
    return x + [0.0], v


def test_ziggurat_tables_have_equal_area_strips_and_the_papers_edge():
    x, fx = noise._ZX, noise._ZF
    assert abs(noise.ZIGGURAT_R - 3.6541528853610088) < 1e-14 and x[1] == noise.ZIGGURAT_R
    assert len(x) == 257 and x[-1] == 0.0 and np.all(np.diff(x) < 0) and fx[-1] == 1.0
    np.testing.assert_allclose(fx, np.exp(-0.5 * x**2), rtol=0, atol=0)
    r = x[1]
    v = r * fx[1] + math.sqrt(math.pi / 2) * math.erfc(r / math.sqrt(2))  # base strip: rectangle + tail
    areas = x[1:-1] * (fx[2:] - fx[1:-1])  # strips 1 … 255: width x[i], height f(x[i+1]) − f(x[i])
    np.testing.assert_allclose(areas, v, rtol=1e-12)
    assert abs(x[0] * fx[1] - v) < 1e-15
    assert abs(x[255] * (1.0 - fx[255]) - v) < 1e-12 * v  # the top strip closes at f = 1
    np.testing.assert_allclose(x, _zig_tables_reference()[0], rtol=1e-12)


def _ziggurat_row_reference(key, counter, row, stats):
    """normal3 in plain Python: three 42-bit draws from the 128 bits of Philox (row, 0, counter);
    rejections take 64-bit spare words from Philox (row, q, counter), q = 1, 2, … in order."""
    x, fx = [float(t) for t in noise._ZX], [float(t) for t in noise._ZF]
    r = x[1]
    c_lo, c_hi = counter & 0xFFFFFFFF, counter >> 32
    w = _philox_reference((row, 0, c_lo, c_hi), key)
    a, b = (w[0] << 32) | w[1], (w[2] << 32) | w[3]
    draws = [a >> 22, ((a & (2**22 - 1)) << 20) | (b >> 44), b & (2**42 - 1)]
    spare = []

    def word():
        if not spare:
            q = len(stats.setdefault("blocks", [])) + 1
            stats["blocks"].append(q)
            y = _philox_reference((row, q, c_lo, c_hi), key)
            spare.extend([(y[0] << 32) | y[1], (y[2] << 32) | y[3]])
        return spare.pop(0)

    def unif():
        return (word() >> 11) / 2.0**53

    out = []
    for d in draws:
        while True:
            layer, neg, u = (d >> 33) & 255, d >> 41, (d & (2**33 - 1)) / 2.0**33
            z = u * x[layer]
            if z < x[layer + 1]:
                break
            stats["slow"] = stats.get("slow", 0) + 1
            if layer == 0:
                while True:
                    ta = -math.log(1 - unif()) / r
                    tb = -math.log(1 - unif())
                    if tb + tb >= ta * ta:
                        break
                z = r + ta
                stats["tail"] = stats.get("tail", 0) + 1
                break
            if fx[layer] + unif() * (fx[layer + 1] - fx[layer]) < math.exp(-0.5 * z * z):
                break
            d = word() & (2**42 - 1)
        out.append(-z if neg else z)
    return out


def test_normals_are_the_ziggurat_of_the_philox_words():
    key, counter, rows = (12345, 678), (3 << 32) + 9, 30_000
    out = fill_normals(key, counter, np.empty((1, rows, 3)))[0]
    stats, blocks = {}, 0
    ref = []
    for i in range(rows):
        st = {}
        ref.append(_ziggurat_row_reference(key, counter, i, st))
        blocks = max(blocks, len(st.get("blocks", [])))
        stats["slow"] = stats.get("slow", 0) + st.get("slow", 0)
        stats["tail"] = stats.get("tail", 0) + st.get("tail", 0)
    np.testing.assert_array_equal(out, np.array(ref))
    # the rows checked take every path: wedge tests, tails, rows needing a second spare block
    assert stats["slow"] > 100 and stats["tail"] > 5 and blocks >= 2


def _erfinv(y):
    """erf⁻¹ by Newton's method on math.erf (to machine precision)."""
    x = 0.0
    for _ in range(100):
        step = (math.erf(x) - y) / (2 / math.sqrt(math.pi) * math.exp(-x * x))
        x -= step
        if abs(step) < 1e-15:
            break
    return x


def test_normal_moments_and_distribution():
    z = PhiloxNoise(seed=1).normals(400_000).ravel()  # 1.2 M normals (1.5 % through the slow path)
    n = len(z)
    assert abs(z.mean()) < 5 / math.sqrt(n)
    assert abs(z.var() - 1) < 5 * math.sqrt(2 / n)
    assert abs(np.mean(z**3)) < 5 * math.sqrt(15 / n)
    assert abs(np.mean(z**4) - 3) < 5 * math.sqrt(96 / n)
    # Kolmogorov-Smirnov distance to the normal CDF (5σ-ish bound: 1.95/sqrt(n) is p = 0.001)
    zs = np.sort(z[:200_000])
    m = len(zs)
    cdf = 0.5 * (1 + np.vectorize(math.erf)(zs / math.sqrt(2)))
    d = max(np.max(np.arange(1, m + 1) / m - cdf), np.max(cdf - np.arange(m) / m))
    assert d < 1.95 / math.sqrt(m)
    # tails: P(|z| > t) = erfc(t/√2) at 3, at the ziggurat's edge r (beyond it the tail sampler)
    # and at 4
    for t in (3.0, noise.ZIGGURAT_R, 4.0):
        p = math.erfc(t / math.sqrt(2))
        assert abs(np.mean(np.abs(z) > t) - p) < 5 * math.sqrt(p / n)
    # chi-square over 200 equiprobable bins of the normal CDF (p = 1e-6 bound: 199 + 5.3·sqrt(398))
    edges = np.concatenate(([-np.inf], [math.sqrt(2) * _erfinv(2 * k / 200 - 1) for k in range(1, 200)], [np.inf]))
    counts = np.histogram(z, edges)[0]
    chi2 = np.sum((counts - n / 200) ** 2 / (n / 200))
    assert chi2 < 199 + 5.3 * math.sqrt(2 * 199)


def test_components_rows_and_draws_are_uncorrelated():
    blk = PhiloxNoise(seed=2).blocks(2, 100_000)
    a = blk.reshape(2, -1, 3)
    cols = [a[0, :, 0], a[0, :, 1], a[0, :, 2], a[1, :, 0], a[0, 1:, 0]]
    lim = 5 / math.sqrt(len(cols[-1]))
    for i in range(len(cols)):
        for j in range(i + 1, len(cols)):
            k = min(len(cols[i]), len(cols[j]))
            assert abs(np.corrcoef(cols[i][:k], cols[j][:k])[0, 1]) < lim


def test_stream_is_independent_of_blocks_and_threads(monkeypatch):
    monkeypatch.setattr(noise, "PARALLEL_MIN_ROWS", 1)
    monkeypatch.setattr(spin_lattice, "PARALLEL_MIN_ATOMS", 1)
    one = PhiloxNoise(seed=5)
    per_draw = np.stack([one.normals(300) for _ in range(4)])
    blocked = PhiloxNoise(seed=5).blocks(4, 300)
    serial = PhiloxNoise(seed=5).blocks(4, 300, serial=True)
    assert np.array_equal(per_draw, blocked) and np.array_equal(per_draw, serial)

    def baoab_middle():
        pos, vel = np.zeros((300, 3)), np.ones((300, 3))
        spin_lattice._drift_o_drift(pos, vel, 0.25, PhiloxNoise(seed=6), 0.5, np.full(300, 0.3))
        return pos, vel

    if numba.config.NUMBA_NUM_THREADS >= 2:
        try:
            numba.set_num_threads(1)
            a, (p1, v1) = PhiloxNoise(seed=5).blocks(4, 300), baoab_middle()
            numba.set_num_threads(2)
            b, (p2, v2) = PhiloxNoise(seed=5).blocks(4, 300), baoab_middle()
        finally:
            numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        assert np.array_equal(a, b) and np.array_equal(v1, v2) and np.array_equal(p1, p2)
    # BAOAB's middle: r += h v, v = c1 v + sigma ξ (the draw's rows), r += h v
    pos, vel = baoab_middle()
    v = 0.5 + 0.3 * PhiloxNoise(seed=6).normals(300)
    assert np.array_equal(vel, v) and np.array_equal(pos, 0.25 + 0.25 * v)


def test_seeds_keys_and_state_round_trip():
    a, b = PhiloxNoise(seed=1), PhiloxNoise(seed=2)
    assert a.key != b.key and a.key == PhiloxNoise(seed=1).key
    assert not np.array_equal(a.normals(10), b.normals(10))
    a.normals(3)
    st = a.state()
    assert st == {"generator": "philox4x32", "key": list(a.key), "counter": 2, "normals": "ziggurat256"}
    c = PhiloxNoise(seed=99)
    c.set_state(st)
    assert np.array_equal(c.normals(50), a.normals(50))
    for bad in ({"generator": "philox4x32", "key": [1], "counter": 0},
                {"generator": "philox4x32", "key": [1, 2], "counter": -1},
                {"generator": "philox4x32", "key": [1, 2**32], "counter": 0},
                {"generator": "philox4x32", "key": [1, 2]}):
        with pytest.raises(InputError, match="philox4x32"):
            c.set_state(bad)
    with pytest.raises(InputError, match="unknown normal sampler 'box-muller'"):
        c.set_state({**st, "normals": "box-muller"})


def test_box_muller_checkpoint_restarts_with_reproducibility_warning():
    """A state written before the ziggurat (no 'normals' field) keeps its key and counter and
    warns: the same counters now give other normals."""
    a = PhiloxNoise(seed=3)
    a.normals(4)
    old = {k: v for k, v in a.state().items() if k != "normals"}
    b = PhiloxNoise(seed=4)
    with pytest.warns(ReproducibilityWarning, match="Box-Muller"):
        b.set_state(old)
    assert b.key == a.key and b.counter == a.counter == 1
    assert np.array_equal(b.normals(20), a.normals(20))
    llg = LLG(1.0, damping=0.1, temperature=10.0, seed=3)
    with pytest.warns(ReproducibilityWarning, match="Box-Muller"):
        llg.restore({"seed": 3, "rng": old}, None, None)
    assert llg.rng.counter == 1


def test_old_numpy_checkpoint_restarts_with_reproducibility_warning():
    old = {"seed": 7, "rng": np.random.default_rng(7).bit_generator.state}
    llg = LLG(1.0, damping=0.1, temperature=10.0, seed=7)
    fresh = llg.rng.key
    with pytest.warns(ReproducibilityWarning, match="philox4x32"):
        llg.restore(old, None, None)
    assert llg.rng.key != fresh and llg.rng.counter == 0  # a stream of its own, not the run's start
    again = LLG(1.0, damping=0.1, temperature=10.0, seed=7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ReproducibilityWarning)
        again.restore(old, None, None)
    assert again.rng.key == llg.rng.key  # deterministic
    with pytest.raises(InputError, match="unknown random generator"):
        again.restore({"seed": 7, "rng": {"generator": "mt"}}, None, None)
    ck = again.checkpoint()
    assert ck["seed"] == 7 and ck["rng"]["generator"] == "philox4x32"
