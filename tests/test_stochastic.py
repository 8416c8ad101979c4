"""Stochastic rounding: exact decisions per random word, unbiased statistics, reproducibility."""

import math

import numba
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import fpsim
from fpsim.kernels import rounding as k
from reference import round_ref
from test_reference import formats, inputs_near, same


def words(seed, n):
    out = np.empty(n, dtype=np.uint64)
    k.random_words(np.uint64(k.seed_key(np.uint64(seed))), 0, out)
    return out


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(data=st.data(), sr_bits=st.one_of(st.none(), st.integers(1, 62)), seed=st.integers(0, 2**64 - 1))
def test_seeded_path_equals_reference_on_its_words(data, sr_bits, seed):
    """The vectorised seeded kernel decides exactly as the reference does on the same words."""
    f = data.draw(formats())
    assume(sr_bits is None or sr_bits <= 52 - f.man_bits)     # the one sr_bits range
    xs = np.array(data.draw(inputs_near(f)))
    got = fpsim.quantize(xs, f, rounding="sr", sr_bits=sr_bits, seed=seed)
    given_words = fpsim.quantize(xs, f, rounding="sr", sr_bits=sr_bits, random_words=words(seed, xs.size))
    for x, u, g, g2 in zip(xs, words(seed, xs.size), got, given_words):
        assert same(float(g), float(g2))
        assert same(float(g), round_ref(float(x), f, "sr", u=int(u), sr_bits=sr_bits)), (f, x, u)


@pytest.mark.parametrize("fmt", ["float8_e4m3fn", "e5m2", "1-6-9", "bfloat16"])
def test_exact_sr_is_unbiased(fmt):
    f = fpsim.format(fmt)
    rng = np.random.default_rng(0)
    vals = f.values() if f.bits <= 16 else None
    # points strictly between two neighbours at random fractions of the gap
    lo = rng.choice(vals[(vals > 0) & (vals < f.max)], 64)
    hi = np.array([vals[np.searchsorted(vals, v, side="right")] for v in lo])
    t = rng.random(64)
    x = lo + t * (hi - lo)
    n = 20000
    xs = np.repeat(x, n)
    y = fpsim.quantize(xs, f, rounding="sr", seed=11).reshape(64, n)
    assert set(np.unique(y)) <= set(lo) | set(hi)
    p_up = (y == hi[:, None]).mean(axis=1)
    p_true = (x - lo) / (hi - lo)
    # binomial standard error; 5 sigma over 64 points is a bound a biased rounding cannot meet
    sigma = np.sqrt(p_true * (1 - p_true) / n)
    assert np.all(np.abs(p_up - p_true) <= 5 * sigma + 1e-12)
    # mean error over all draws is unbiased: the sum of the rounded values matches the exact sum
    err = (y.mean(axis=1) - x) / (hi - lo)
    assert abs(err.mean()) < 5 * np.sqrt(0.25 / (64 * n))


@pytest.mark.parametrize("r", [1, 2, 3, 5, 8])
def test_sr_bits_probability_is_the_truncated_fraction(r):
    """With r random bits the round-up probability is floor(frac * 2**r) / 2**r, exactly: over
    all 2**r values of the top r bits, exactly that many round up."""
    f = fpsim.format("e4m3")
    frac = np.array([0.0, 0.1, 0.2499, 0.25, 0.5, 0.7, 0.99, 1 - 2**-20])
    x = 1.0 + frac * 0.125                         # between 1 and 1.125 (ulp of e4m3 at 1)
    rs = np.arange(2**r, dtype=np.uint64) << np.uint64(64 - r)
    xs = np.repeat(x, rs.size)
    ws = np.tile(rs, x.size)
    y = fpsim.quantize(xs, f, rounding="sr", sr_bits=r, random_words=ws).reshape(x.size, -1)
    ups = (y == 1.125).sum(axis=1)
    np.testing.assert_array_equal(ups, np.floor(frac * 2**r).astype(int))


def test_exact_sr_far_below_the_quantum_has_the_exact_probability():
    """Inputs whose fraction needs more than 62 random bits take the multi-word path."""
    f = fpsim.format("e4m3")          # smallest quantum 2**-9
    x = math.ldexp((1 << 52) + 12345, -52 - 20)   # 53 significant bits at 2**-20: frac ~ 2**-11
    n = 2**21
    y = fpsim.quantize(np.full(n, x), f, rounding="sr", seed=5)
    p = x / 2**-9
    ups = int((y == 2**-9).sum())
    assert set(np.unique(y)) <= {0.0, 2**-9}
    assert abs(ups - n * p) <= 5 * math.sqrt(n * p * (1 - p))


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2,
                    reason="Numba's thread pool has one thread (one core, or NUMBA_NUM_THREADS=1); "
                           "test_threads.py starts processes with 1 and 2 threads instead")
@pytest.mark.parametrize("sr_bits", [None, 4])
def test_same_seed_same_bits_on_1_and_2_threads(sr_bits):
    """In one process: set_num_threads(1), then 2, on 7 chunks of 16384 elements.  The pool must
    have 2 threads (pytest-xdist workers only set 1 active thread, conftest.py), else this would
    compare 1 thread with 1 thread; test_threads.py covers every parallel kernel in 2 processes."""
    x = np.random.default_rng(2).standard_normal(100_003).astype(np.float32)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        a = fpsim.quantize(x, "float8_e5m2", rounding="sr", sr_bits=sr_bits, seed=7)
        ca = fpsim.encode(x, "float8_e5m2", rounding="sr", sr_bits=sr_bits, seed=7)
        numba.set_num_threads(2)
        assert numba.get_num_threads() == 2
        b = fpsim.quantize(x, "float8_e5m2", rounding="sr", sr_bits=sr_bits, seed=7)
        cb = fpsim.encode(x, "float8_e5m2", rounding="sr", sr_bits=sr_bits, seed=7)
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(a.view(np.uint32), b.view(np.uint32))
    np.testing.assert_array_equal(ca, cb)
    np.testing.assert_array_equal(fpsim.encode(a, "float8_e5m2"), ca)


def test_element_bits_depend_on_index_not_on_chunking():
    x = np.random.default_rng(3).standard_normal(50_000)
    full = fpsim.quantize(x, "e4m3", rounding="sr", seed=9)
    # a 2-D view of the same values: C order index, same result
    np.testing.assert_array_equal(fpsim.quantize(x.reshape(250, 200), "e4m3", rounding="sr",
                                                 seed=9).ravel(), full)
    other = fpsim.quantize(x, "e4m3", rounding="sr", seed=10)
    assert (other != full).any()
