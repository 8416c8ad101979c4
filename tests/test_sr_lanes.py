"""Seeded stochastic rounding of float32 input in 32-bit lanes (kernels/sr_lanes.py) against the
exact-rational reference on the same random words, with the cases of the module's proof: the
d <= 30 bound of exact "sr" in int32, the r-bit fraction's shifts, carries into the next binade,
overflow, the clamped scale factor, float32 subnormals, flushing and signed zeros."""

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import fpsim
from fpsim.kernels import rounding as k
from fpsim.kernels.sr_lanes import sr_lanes_support
from reference import round_ref
from test_reference import formats, inputs_near, same


def words(seed, n):
    out = np.empty(n, dtype=np.uint64)
    k.random_words(np.uint64(k.seed_key(np.uint64(seed))), 0, out)
    return out


def check(xs, f, sr_bits, seed):
    """fpsim's seeded float32 result against round_ref on the element's word; elements whose
    exact fraction needs more than 62 bits (reference None) are left to test_stochastic."""
    xs = np.asarray(xs, np.float32)
    got = fpsim.quantize(xs, f, rounding="sr", sr_bits=sr_bits, seed=seed)
    assert got.dtype == np.float32
    for x, u, g in zip(xs, words(seed, xs.size), got):
        want = round_ref(float(x), f, "sr", u=int(u), sr_bits=sr_bits)
        assert same(float(g), want), (f, float(x).hex(), hex(int(u)), float(g), want)


def lane_format(f, sr_bits=None):
    return sr_lanes_support(f.man_bits, f.emin, f.max, sr_bits or 0)


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(data=st.data(), sr_bits=st.one_of(st.none(), st.integers(1, 24)),
       seed=st.integers(0, 2**64 - 1))
def test_float32_lanes_equal_the_reference(data, sr_bits, seed):
    f = data.draw(formats(max_bits=32))
    assume(lane_format(f, sr_bits))
    check(data.draw(inputs_near(f, width=32)), f, sr_bits, seed)


# Formats in the lanes: 2- to 11-bit significands, emin from -126 (bfloat16) to 0, fnuz's -0
# rule (the support test also names one format just outside each condition).
LANE = ["float8_e4m3fn", "float8_e5m2", "float16", "bfloat16", "float8_e4m3fnuz", "e2m1",
        "1-6-9", "e3m4"]


def test_the_support_conditions_are_the_proofs():
    for name in LANE:
        assert lane_format(fpsim.format(name)), name
    assert lane_format(fpsim.format("bfloat16"), 24)
    assert not lane_format(fpsim.format("bfloat16"), 25)
    assert not lane_format(fpsim.FloatFormat(8, 23))                  # man_bits 23
    assert not lane_format(fpsim.FloatFormat(8, 7, bias=128))         # emin -127
    assert not lane_format(fpsim.FloatFormat(8, 7, bias=126))         # max 2**129 > float32's
    assert lane_format(fpsim.FloatFormat(8, 22, bias=127))            # emin -126, man 22
    # emin <= 103 + man: the scale of the smallest normal binade, 2**(emin - man + 24), finite
    assert lane_format(fpsim.FloatFormat(1, 0, bias=-102, subnormals=False, specials="fnuz"))
    assert not lane_format(fpsim.FloatFormat(1, 0, bias=-103, subnormals=False,
                                             specials="fnuz"))           # emin 104 (hypothesis)
    for bias in (-102, -103):                                    # 0 gave NaN in the lanes
        f = fpsim.FloatFormat(1, 0, bias=bias, subnormals=False, specials="fnuz")
        check([0.0, -0.0, 1e30, -1e31, 3e31, 1e-30], f, None, 0)


def exact_d_cases(f):
    """Values whose quantum lies d = 28..33 bits below their last bit (exact 'sr' decides in
    int32 for d <= 30 and hands d > 30 to the scalar path), with all-ones and single-bit
    significands."""
    out = []
    for d in range(28, 34):
        # d = 23 - man + (emin - e): the exponent e of x below the format's emin
        e = f.emin - (d - 23 + f.man_bits)
        if e < -149:
            continue
        for sig in ((1 << 24) - 1, (1 << 23) + 1, 1 << 23, (1 << 23) | (1 << 22)):
            x = math.ldexp(sig, e - 23)
            if x >= 2.0 ** -149:
                out += [x, -x]
    return out


@pytest.mark.parametrize("name", LANE)
@pytest.mark.parametrize("sr_bits", [None, 1, 8, 23, 24])
def test_boundaries_of_the_proof(name, sr_bits):
    f = fpsim.format(name)
    q = 2.0 ** (f.emin - f.man_bits)                  # smallest quantum
    xs = exact_d_cases(f)
    # r-bit fraction shifts d - r around 0, 23, 24, 31, 32: values between grid points of the
    # smallest quantum, at 2**-j of it
    xs += [q * (1 + 2.0 ** -j) for j in range(0, 24)] + [q * 2.0 ** -j for j in range(0, 40)]
    # carries into the next binade: the largest significand below each power of two
    for e in range(f.emin, min(f.emax, 20) + 1):
        top = 2.0 ** (e + 1) - 2.0 ** (e - 23)
        xs += [top, 2.0 ** (e + 1) - 2.0 ** (e - f.man_bits) * 0.5]
    # overflow: just below, at and above the largest value, the last quantum above it
    big = f.max
    step = 2.0 ** (math.floor(math.log2(big)) - f.man_bits)
    last = 2.0 ** (math.floor(math.log2(big)) - 23)      # float32's spacing at the largest value
    xs += [big, big + step / 4, big + step / 2, big + step - last, big * 1.5, 3e38, 2.0 ** 104,
           2.0 ** 105, 2.0 ** 111, 2.0 ** 112, 2.0 ** 127 * 1.5]
    # float32 subnormals, zeros and specials
    xs += [2.0 ** -149, 2.0 ** -140 * 3, 2.0 ** -127, 2.0 ** -126 - 2.0 ** -149, 0.0, -0.0,
           math.inf, -math.inf, math.nan, -math.nan]
    xs += [-x for x in xs]
    xs = [x for x in xs if abs(x) <= float(np.finfo(np.float32).max) or not math.isfinite(x)]
    for seed in (0, 1, 2**63 + 5):
        check(np.array(xs, np.float32), f, sr_bits, seed)


def test_a_format_without_subnormals_flushes_as_the_reference():
    f = fpsim.FloatFormat(4, 3, specials="fn", subnormals=False)
    assert lane_format(f)
    q = 2.0 ** (f.emin - f.man_bits)
    xs = [q * j / 7 for j in range(1, 80)] + [2.0 ** f.emin * (1 - 2.0 ** -j) for j in range(1, 12)]
    for sr_bits in (None, 3, 8):
        check(np.array(xs + [-x for x in xs], np.float32), f, sr_bits, 11)


def test_many_chunks_and_threads_sizes():
    """More than one parallel chunk (16384 elements), random bit patterns (every exponent,
    NaN payloads, subnormals), the same result as the reference on a sample."""
    rng = np.random.default_rng(4)
    x = rng.integers(0, 2**32, size=3 * 16384 + 7, dtype=np.uint64).astype(np.uint32)
    x = x.view(np.float32)
    f = fpsim.format("float8_e5m2")
    for sr_bits in (None, 8):
        got = fpsim.quantize(x, f, rounding="sr", sr_bits=sr_bits, seed=3)
        ws = words(3, x.size)
        for i in rng.choice(x.size, 3000, replace=False):
            want = round_ref(float(x[i]), f, "sr", u=int(ws[i]), sr_bits=sr_bits)
            assert same(float(got[i]), want), (float(x[i]).hex(), hex(int(ws[i])))


@pytest.mark.parametrize("sr_bits", [None, 8])
def test_flagged_elements_at_the_edges_of_a_block(sr_bits):
    """The lanes test their flags BLOCK elements at a time and rerun a flagged block's flagged
    elements on the scalar path: overflows (and exact decisions with d > 30) at a block's first
    and last element, alone in a block and next to each other across a block's edge."""
    from fpsim.kernels.sr_lanes import BLOCK
    f = fpsim.format("float8_e4m3fn")
    rng = np.random.default_rng(9)
    x = rng.standard_normal(3 * BLOCK + 5).astype(np.float32)
    tiny = 2.0 ** (f.emin - f.man_bits - 10) * 3        # d = 32: the scalar path for exact sr
    for i, v in [(0, 1000.0), (BLOCK - 1, -460.0), (BLOCK, 3e38), (2 * BLOCK + 17, tiny),
                 (3 * BLOCK + 4, np.inf)]:
        x[i] = v
    check(x, f, sr_bits, 5)
