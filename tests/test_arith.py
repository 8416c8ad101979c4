"""Elementwise units (add/sub/mul/div/fma/sqrt) against the exact-rational reference, numpy's
float16/float32 arithmetic (correctly rounded), and table-driven IEEE special cases."""

import math
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import fpsim
from fpsim.kernels.rounding import random_word, seed_key
from reference import round_ref
from reference_arith import (ANYZERO, Sqrt, add_ref, div_ref, exact_sqrt, fma_ref, mul_ref,
                             round_exact, sqrt_ref, sub_ref)
from test_reference import formats

DETERMINISTIC = ["rne", "rna", "rtz", "rup", "rdn", "rto"]
LIM = 480  # float64 inputs must lie in [2**-480, 2**480] (or be 0/Inf/NaN)

SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                           HealthCheck.data_too_large])


def same(got, want):
    if want is None:
        return True
    if want is ANYZERO:
        return got == 0
    if math.isnan(want):
        return math.isnan(got)
    return got == want and math.copysign(1, got) == math.copysign(1, want)


def check(got, wants, ctx):
    got = np.asarray(got).reshape(-1)
    assert got.size == len(wants)
    for i, (g, w) in enumerate(zip(got, wants)):
        assert same(float(g), w), (ctx, i, float(g), w)


@st.composite
def arith_formats(draw):
    f = draw(formats())
    assume(f.man_bits <= 50 and f.emin - f.man_bits >= -1022)
    return f


@st.composite
def num(draw, elo, ehi, specials=True, bits=53):
    """A float64 value with exponent in [elo, ehi] (clipped to the accepted input range) and at
    most ``bits`` significant bits."""
    kind = draw(st.integers(0, 15))
    if specials and kind == 0:
        return draw(st.sampled_from([0.0, -0.0, math.inf, -math.inf, math.nan]))
    lo, hi = max(elo, -LIM), min(ehi, LIM - 1)
    if lo > hi:
        lo, hi = (-LIM, -LIM) if ehi < -LIM else (LIM - 1, LIM - 1)
    e = draw(st.integers(lo, hi))
    sig = draw(st.integers(1 << 52, (1 << 53) - 1))
    if kind < 7:  # few significant bits: ties and exact results
        sig &= ~((1 << draw(st.integers(0, 52))) - 1)
    sig &= ~((1 << (53 - bits)) - 1)
    x = math.ldexp(sig, e - 52)
    return -x if draw(st.booleans()) else x


def clamp_range(lo, hi, LO, HI):
    """[lo, hi] intersected with [LO, HI]; the nearest end of [LO, HI] when they are disjoint."""
    a, b = max(lo, LO), min(hi, HI)
    if a > b:
        a = b = HI if lo > HI else LO
    return a, b


def erange(f):
    return f.emin - f.man_bits - 3, f.emax + 2


@st.composite
def add_pair(draw, f):
    lo, hi = erange(f)
    a = draw(num(lo, hi))
    kind = draw(st.integers(0, 4))
    if kind == 0 or not math.isfinite(a) or a == 0:
        b = draw(num(lo, hi))
    elif kind == 1:  # comparable exponents: alignment shifts and carries
        ea = math.frexp(a)[1]
        b = draw(num(ea - 60, ea + 2, specials=False))
    elif kind == 2:  # exact cancellation, or doubling
        b = -a if draw(st.booleans()) else a
    elif kind == 3:  # near cancellation
        b = -a
        for _ in range(draw(st.integers(1, 3))):
            b = math.nextafter(b, draw(st.sampled_from([math.inf, -math.inf])))
        if not (2.0**-LIM <= abs(b) < 2.0**LIM):
            b = -a
    else:  # |b| just below half a quantum of a's binade in a wide format
        ea = math.frexp(a)[1]
        b = draw(num(ea - f.man_bits - 4, ea - f.man_bits, specials=False))
    return a, b


@st.composite
def mul_pair(draw, f, exact=False):
    """exact=True: at most 53 significant bits in total, so a*b is a float64."""
    lo, hi = erange(f)
    E = draw(st.integers(*clamp_range(lo, hi, -2 * LIM + 2, 2 * LIM - 2)))
    ea = draw(st.integers(max(-LIM + 1, E - LIM + 1), min(LIM - 1, E + LIM - 1)))
    ba = draw(st.integers(1, 52)) if exact else 53
    a = draw(num(ea, ea, bits=ba))
    b = draw(num(E - ea, E - ea, bits=53 - ba if exact else 53))
    return a, b


@st.composite
def div_pair(draw, f):
    lo, hi = erange(f)
    E = draw(st.integers(*clamp_range(lo, hi, -2 * LIM + 2, 2 * LIM - 2)))
    eb = draw(st.integers(max(-LIM + 1, -E - LIM + 1), min(LIM - 1, LIM - 1 - E)))
    b = draw(num(eb, eb))
    if draw(st.booleans()) and math.isfinite(b) and b != 0:  # exact quotient with few bits
        q = draw(num(E, E, specials=False))
        q = math.ldexp(round(math.ldexp(q, -E + 8)), E - 8)
        a = q * b
        if q == 0 or not (2.0**-LIM <= abs(a) < 2.0**LIM) or Fraction(a) != Fraction(q) * Fraction(b):
            a = draw(num(E + eb, E + eb))
    else:
        a = draw(num(E + eb, E + eb))
    return a, b


@st.composite
def fma_triple(draw, f):
    a, b = draw(mul_pair(f, exact=True))
    p = a * b
    kind = draw(st.integers(0, 3))
    if kind == 0 or not math.isfinite(p) or p == 0 or not 2.0**-LIM <= abs(p) < 2.0**LIM:
        lo, hi = erange(f)
        c = draw(num(lo, hi))
    elif kind == 1:  # cancels the float64-rounded product: the exact tail decides
        c = -p
    elif kind == 2:
        ep = math.frexp(p)[1]
        c = draw(num(ep - 60, ep + 2, specials=False))
    else:
        c = -math.nextafter(p, math.inf)
    return a, b, c


@st.composite
def sqrt_arg(draw, f):
    lo, hi = erange(f)
    E = draw(st.integers(*clamp_range(lo, hi, -LIM // 2 + 1, LIM // 2 - 1)))
    kind = draw(st.integers(0, 2))
    if kind == 0:  # a square: exact, or a tie when y has man_bits+2 significant bits
        nb = draw(st.sampled_from([1, 2, max(1, f.man_bits + 1), f.man_bits + 2]))
        nb = min(nb, 26)
        y = math.ldexp(draw(st.integers(1 << (nb - 1), (1 << nb) - 1)), E - nb + 1)
        a = y * y
        if not 2.0**-LIM <= a < 2.0**LIM:
            a = draw(num(2 * E, 2 * E + 1))
        return a
    a = draw(num(2 * E, 2 * E + 1))
    return abs(a) if kind == 1 and not math.isnan(a) else a


def _call(op, args, f, **kw):
    return getattr(fpsim, op)(*[np.array(a, dtype=np.float64) for a in args], f, **kw)


GEN = {"add": add_pair, "sub": add_pair, "mul": mul_pair, "div": div_pair}
REF = {"add": add_ref, "sub": sub_ref, "mul": mul_ref, "div": div_ref}


# --- reference self-checks (the oracle itself against independent arithmetic) -----------------
@SETTINGS
@given(data=st.data(), mode=st.sampled_from(DETERMINISTIC))
def test_reference_round_exact_equals_round_ref(data, mode):
    from test_reference import inputs_near
    f = data.draw(formats())
    for x in data.draw(inputs_near(f, n=8)):
        if math.isnan(x):
            continue
        v = math.inf if math.isinf(x) else abs(Fraction(x))
        assert same(round_exact(v, math.copysign(1, x) < 0, f, mode), round_ref(x, f, mode))


def test_reference_against_gmpy2():
    """The oracle against MPFR's correctly rounded operations at precision 24 (float32 values,
    normal range) in the four IEEE modes."""
    gmpy2 = pytest.importorskip("gmpy2")
    rng = np.random.default_rng(1)
    f32 = fpsim.format("float32")
    n = 150
    xs = [float(np.float32(v)) for v in rng.standard_normal(n) * np.exp2(rng.integers(-40, 40, n))]
    ys = [float(np.float32(v)) for v in rng.standard_normal(n) * np.exp2(rng.integers(-40, 40, n))]
    zs = [-x * y * (1 + 2.0**-30) if i % 3 == 0 else y for i, (x, y) in enumerate(zip(xs, ys))]
    modes = {"rne": gmpy2.RoundToNearest, "rtz": gmpy2.RoundToZero, "rup": gmpy2.RoundUp,
             "rdn": gmpy2.RoundDown}
    for mode, gm in modes.items():
        ctx = gmpy2.context(precision=24, round=gm)
        m = lambda v: gmpy2.mpfr(v, 53)
        for x, y, z in zip(xs, ys, zs):
            assert sqrt_ref(abs(x), f32, mode) == float(ctx.sqrt(m(abs(x)))), (x, mode)
            assert add_ref(x, y, f32, mode) == float(ctx.add(m(x), m(y))), (x, y, mode)
            assert mul_ref(x, y, f32, mode) == float(ctx.mul(m(x), m(y))), (x, y, mode)
            assert div_ref(x, y, f32, mode) == float(ctx.div(m(x), m(y))), (x, y, mode)
            assert fma_ref(x, y, z, f32, mode) == float(ctx.fma(m(x), m(y), m(z))), (x, y, z)
    assert exact_sqrt(Fraction(9, 4)) == Fraction(3, 2)
    s = Sqrt(Fraction(2))
    assert s.floor_log2() == 0 and s.floor_scaled(10) == math.isqrt(2 << 20)


# --- random formats and values against the reference ------------------------------------------
@SETTINGS
@given(data=st.data(), op=st.sampled_from(["add", "sub", "mul", "div"]),
       mode=st.sampled_from(DETERMINISTIC))
def test_binary_ops_deterministic(data, op, mode):
    f = data.draw(arith_formats())
    pairs = data.draw(st.lists(GEN[op](f), min_size=1, max_size=16))
    a, b = zip(*pairs)
    got = _call(op, (a, b), f, rounding=mode)
    assert got.dtype == np.float64
    check(got, [REF[op](x, y, f, mode) for x, y in pairs], (op, f, mode, pairs))


@SETTINGS
@given(data=st.data(), mode=st.sampled_from(DETERMINISTIC))
def test_fma_deterministic(data, mode):
    f = data.draw(arith_formats())
    trip = data.draw(st.lists(fma_triple(f), min_size=1, max_size=16))
    got = _call("fma", list(zip(*trip)), f, rounding=mode)
    check(got, [fma_ref(a, b, c, f, mode) for a, b, c in trip], (f, mode, trip))


@SETTINGS
@given(data=st.data(), mode=st.sampled_from(DETERMINISTIC))
def test_sqrt_deterministic(data, mode):
    f = data.draw(arith_formats())
    xs = data.draw(st.lists(sqrt_arg(f), min_size=1, max_size=16))
    got = _call("sqrt", (xs,), f, rounding=mode)
    check(got, [sqrt_ref(x, f, mode) for x in xs], (f, mode, xs))


def _words(seed, n):
    key = seed_key(np.uint64(seed))
    return [int(random_word(np.uint64(key), i)) for i in range(n)]


@SETTINGS
@given(data=st.data(), op=st.sampled_from(["add", "sub", "mul", "div", "fma", "sqrt"]),
       sr_bits=st.one_of(st.none(), st.integers(1, 62)), seed=st.integers(0, 2**64 - 1))
def test_stochastic_with_the_element_index_words(data, op, sr_bits, seed):
    f = data.draw(arith_formats())
    if op == "fma":
        args = data.draw(st.lists(fma_triple(f), min_size=1, max_size=12))
    elif op == "sqrt":
        args = [(x,) for x in data.draw(st.lists(sqrt_arg(f), min_size=1, max_size=12))]
    else:
        args = data.draw(st.lists(GEN[op](f), min_size=1, max_size=12))
    # (the implementation limits sr_bits to 52 - man_bits; test_sr_bits_beyond_52_minus_man_bits
    # checks the spec's wider range separately)
    assume(sr_bits is None or sr_bits <= 52 - f.man_bits)
    ref = {"fma": fma_ref, "sqrt": sqrt_ref, **REF}[op]
    us = _words(seed, len(args))
    got = _call(op, list(zip(*args)), f, rounding="sr", seed=seed, sr_bits=sr_bits)
    check(got, [ref(*x, f, "sr", u=u, sr_bits=sr_bits) for x, u in zip(args, us)],
          (op, f, sr_bits, seed, args))


def test_sr_bits_up_to_52_minus_man_bits_and_rejected_beyond():
    """sr_bits=r applies quantize's rule to the exact result; the r-bit window must sit above the
    last bit of the 53-bit truncation, so r <= 52 - man_bits (documented limit)."""
    f = fpsim.format("float32")
    a = np.array([1.0, 1.0 + 2.0**-23, -3.0])
    b = np.array([2.0**-30 + 2.0**-60, 3 * 2.0**-52, 2.0**-40])
    for r in (10, 20, 29):
        got = fpsim.add(a, b, f, rounding="sr", seed=5, sr_bits=r)
        us = _words(5, 3)
        check(got, [add_ref(float(x), float(y), f, "sr", u=u, sr_bits=r)
                    for x, y, u in zip(a, b, us)], r)
    with pytest.raises(ValueError, match="52 - man_bits"):
        fpsim.add(a, b, f, rounding="sr", sr_bits=30)


def test_fma_needs_exact_float64_products():
    """fma rounds a*b + c once with a*b exact in float64 (documented limit): float32 operands
    always qualify; float64 operands whose product needs more than 53 bits are rejected."""
    a = np.array([1.0 + 2.0**-23, 3.0 + 2.0**-22], np.float32)
    b = np.array([1.0 - 2.0**-23, 1.0 + 2.0**-23], np.float32)
    c = np.array([-1.0, -3.0])
    f = fpsim.format("bfloat16")
    for mode in DETERMINISTIC:
        got = fpsim.fma(a, b, c, f, rounding=mode)
        check(got, [fma_ref(float(x), float(y), float(z), f, mode) for x, y, z in zip(a, b, c)],
              mode)
    with pytest.raises(ValueError, match="exact in float64"):
        fpsim.fma([1.0 + 2.0**-52], [1.0 - 2.0**-52], [-1.0], "float32")


def test_stochastic_index_is_c_order_of_the_broadcast_result():
    f = fpsim.FloatFormat(5, 2)
    a = np.array([[1.0], [1.0 + 2**-9], [3.0 + 2**-7]])          # (3,1)
    b = np.array([[2**-5, 2**-6, 2**-4 + 2**-8, 2**-3 + 2**-10]])  # (1,4)
    for sr_bits in (None, 3, 11):
        got = fpsim.add(a, b, f, rounding="sr", seed=12345, sr_bits=sr_bits)
        assert got.shape == (3, 4)
        us = _words(12345, 12)
        want = [add_ref(float(x), float(y), f, "sr", u=us[i * 4 + j], sr_bits=sr_bits)
                for i, x in enumerate(a[:, 0]) for j, y in enumerate(b[0])]
        check(got, want, sr_bits)


def test_stochastic_sr_is_unbiased_on_a_tie_sum():
    f = fpsim.FloatFormat(5, 2)
    a = np.full(20000, 1.0)
    got = fpsim.add(a, np.full(20000, 2.0**-4), f, rounding="sr", seed=7)   # 1 + ulp/4
    assert set(np.unique(got)) <= {1.0, 1.25}
    assert abs((got == 1.25).mean() - 0.25) < 0.02


def test_exact_sr_on_results_wider_than_float64_is_unbiased():
    """Exact results that need more than 53 bits (the spec's 'second word' case) are tested
    statistically: P(up) = the exact discarded fraction of the ulp."""
    n = 40000
    f = fpsim.FloatFormat(5, 2)                 # ulp of [1, 2) is 1/4
    a = np.full(n, 1.0 + 2.0**-4)               # 1 + ulp/4
    got = fpsim.add(a, np.full(n, 2.0**-70), f, rounding="sr", seed=3)  # exact 1+2^-4+2^-70
    assert set(np.unique(got)) <= {1.0, 1.25}
    assert abs((got == 1.25).mean() - 0.25) < 0.015
    # fma: (1 + 2^-20)^2 + (2^-3 + 2^-55) = 1 + 2^-3 + 2^-19 + 2^-40 + 2^-55 (56 bits; a*b is
    # exact in float64, the sum is not): P(up) = (2^-3 + 2^-19 + 2^-40 + 2^-55) / 2^-2
    c = 2.0**-3 + 2.0**-55
    assert Fraction(c) == Fraction(1, 8) + Fraction(1, 2**55)
    got = fpsim.fma(np.full(n, 1.0 + 2.0**-20), 1.0 + 2.0**-20, c, f, rounding="sr", seed=4)
    assert set(np.unique(got)) <= {1.0, 1.25}
    p = (2.0**-3 + 2.0**-19 + 2.0**-40) / 2.0**-2
    assert abs((got == 1.25).mean() - p) < 0.015


# --- input dtypes and output dtype --------------------------------------------------------------
@SETTINGS
@given(data=st.data(), op=st.sampled_from(["add", "sub", "mul", "div", "fma", "sqrt"]),
       dt=st.sampled_from([np.float16, np.float32, ml_dtypes.bfloat16, ml_dtypes.float8_e5m2]),
       mode=st.sampled_from(DETERMINISTIC))
def test_narrow_input_dtypes(data, op, dt, mode):
    f = data.draw(arith_formats())
    n = 6
    nargs = {"fma": 3, "sqrt": 1}.get(op, 2)
    raw = data.draw(st.lists(st.lists(st.floats(-(2.0**100), 2.0**100, width=32) | st.sampled_from(
        [0.0, -0.0, math.inf, -math.inf, math.nan, 1.0, 3.0, -0.5]), min_size=n, max_size=n),
        min_size=nargs, max_size=nargs))
    with np.errstate(over="ignore"):
        arrs = [np.array(r, dtype=np.float32).astype(dt) for r in raw]
    got = getattr(fpsim, op)(*arrs, f, rounding=mode)
    narrow = fpsim.format("float32").contains(f)
    assert got.dtype == (np.float32 if narrow else np.float64), (f, got.dtype)
    vals = [[float(v) for v in np.asarray(x, dtype=np.float64)] for x in arrs]
    ref = {"fma": fma_ref, "sqrt": sqrt_ref, **REF}[op]
    want = [ref(*xs, f, mode) for xs in zip(*vals)]
    if got.dtype == np.float32:  # expected values are values of f, which float32 holds
        want = [w if w is None or w is ANYZERO else float(np.float32(w)) for w in want]
    check(got, want, (op, f, mode, vals))


def test_output_dtype_rules():
    h = np.array([1.0, 2.0], np.float16)
    s = np.array([1.0, 2.0], np.float32)
    d = np.array([1.0, 2.0])
    bf = np.array([1.0, 2.0], ml_dtypes.bfloat16)
    assert fpsim.add(h, h, "float8_e4m3fn").dtype == np.float32
    assert fpsim.add(h, bf, "float16").dtype == np.float32
    assert fpsim.mul(s, s, "float32").dtype == np.float32
    assert fpsim.add(s, d, "float8_e4m3fn").dtype == np.float64
    assert fpsim.add(s, s, fpsim.FloatFormat(8, 30)).dtype == np.float64  # float32 can't hold it
    assert fpsim.sqrt(bf, "bfloat16").dtype == np.float32
    assert fpsim.fma(s, s, h, "e5m2").dtype == np.float32
    assert fpsim.add(s, s, "e5m2", dtype=np.float64).dtype == np.float64


# --- numpy float16 / float32 arithmetic rounds once correctly (rne) ----------------------------
def _all_float16():
    return np.arange(65536, dtype=np.uint16).view(np.float16)


def _others16(n=200):
    rng = np.random.default_rng(16)
    picks = rng.integers(0, 65536, n, dtype=np.uint16).view(np.float16)
    fixed = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -1.0, 2.0**-24, -(2.0**-24),
                      65504.0, -65504.0, 2.0**-14, 0.5, 3.0, 1.0 + 2**-10], np.float16)
    return np.concatenate([fixed, picks])


def assert_same_arrays(got, want, ctx=""):
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape
    nan_g, nan_w = np.isnan(got), np.isnan(want)
    bad = (nan_g != nan_w) | (~nan_w & ((got != want) | (np.signbit(got) != np.signbit(want))))
    if bad.any():
        idx = np.argwhere(bad)[:5]
        raise AssertionError(f"{ctx}: {int(bad.sum())} mismatches, e.g. "
                             + ", ".join(f"{tuple(i)}: got {got[tuple(i)]!r} want {want[tuple(i)]!r}"
                                         for i in idx))


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div"])
def test_float16_exhaustive_against_numpy(op):
    a = _all_float16()[:, None]
    b = _others16()[None, :]
    got = getattr(fpsim, op)(a, b, "float16")
    assert got.dtype == np.float32 and got.shape == (65536, b.shape[1])
    with np.errstate(all="ignore"):
        want = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide}[op](a, b)
    assert want.dtype == np.float16
    assert_same_arrays(got, want, op)


def test_float16_sqrt_and_fma_exhaustive_against_numpy():
    a = _all_float16()
    with np.errstate(all="ignore"):
        assert_same_arrays(fpsim.sqrt(a, "float16"), np.sqrt(a), "sqrt")
    # fma with c = 0 and with b = 1 reduces to a single rounded mul / add (exact in float64)
    b = _others16(40)[None, :]
    with np.errstate(all="ignore"):
        p = a[:, None].astype(np.float64) * b.astype(np.float64)   # exact
        want = p.astype(np.float16)
        got = fpsim.fma(a[:, None], b, np.float16(0.0), "float16")
    # a*b + (+0): an exact zero product (even -0) plus +0 gives +0 (opposite signs, rne); a
    # nonzero product that underflows keeps its sign
    want = np.where(p == 0, np.float16(0.0), want)
    assert_same_arrays(got, want, "fma(a,b,0)")


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "sqrt"])
def test_float32_random_against_numpy(op):
    rng = np.random.default_rng(32)
    n = 200_000
    a = (rng.standard_normal(n) * np.exp2(rng.integers(-60, 60, n))).astype(np.float32)
    b = (rng.standard_normal(n) * np.exp2(rng.integers(-60, 60, n))).astype(np.float32)
    b[::7] = -a[::7] * np.float32(1 + 2**-20)     # near cancellation
    b[::11] = np.float32(2.0**-149) * rng.integers(1, 100, b[::11].size)  # subnormals
    with np.errstate(all="ignore"):
        if op == "sqrt":
            got, want = fpsim.sqrt(a, "float32"), np.sqrt(a)
        else:
            got = getattr(fpsim, op)(a, b, "float32")
            want = {"add": np.add, "sub": np.subtract, "mul": np.multiply,
                    "div": np.divide}[op](a, b)
    assert got.dtype == np.float32
    assert_same_arrays(got, want, op)


# --- specials and signed zeros, table-driven (expected values written out by hand) -------------
INF, NAN = math.inf, math.nan
F16 = "float16"
SPECIAL_CASES = [
    # op, args, fmt, rounding, expected
    ("add", (INF, -INF), F16, "rne", NAN),
    ("add", (-INF, INF), F16, "rdn", NAN),
    ("add", (INF, 1.0), F16, "rne", INF),
    ("add", (-INF, -INF), F16, "rtz", -INF),
    ("add", (NAN, 1.0), F16, "rne", NAN),
    ("add", (NAN, INF), F16, "rne", NAN),
    ("add", (0.0, -0.0), F16, "rne", 0.0),
    ("add", (-0.0, 0.0), F16, "rtz", 0.0),
    ("add", (0.0, -0.0), F16, "rup", 0.0),
    ("add", (0.0, -0.0), F16, "rdn", -0.0),
    ("add", (-0.0, -0.0), F16, "rne", -0.0),
    ("add", (-0.0, -0.0), F16, "rup", -0.0),
    ("add", (0.0, 0.0), F16, "rdn", 0.0),
    ("add", (1.5, -1.5), F16, "rne", 0.0),
    ("add", (1.5, -1.5), F16, "rna", 0.0),
    ("add", (1.5, -1.5), F16, "rto", 0.0),
    ("add", (1.5, -1.5), F16, "rdn", -0.0),
    ("add", (-0.0, 3.0), F16, "rne", 3.0),
    ("add", (-0.0, -2.0**-30), F16, "rne", -0.0),   # underflow keeps the sign
    ("add", (0.0, 2.0**-25), F16, "rne", 0.0),      # exact tie with 0: even
    ("add", (0.0, 2.0**-25 + 2.0**-40), F16, "rne", 2.0**-24),
    ("add", (0.0, 2.0**-30), F16, "rup", 2.0**-24),
    ("add", (65504.0, 15.0), F16, "rne", 65504.0),
    ("add", (65504.0, 16.0), F16, "rne", INF),      # tie at 65520 rounds to even 65536: overflow
    ("add", (65504.0, 16.0), F16, "rna", INF),
    ("add", (65504.0, 32.0), F16, "rtz", 65504.0),
    ("add", (-65504.0, -32.0), F16, "rup", -65504.0),
    ("add", (-65504.0, -32.0), F16, "rdn", -INF),
    ("add", (1.0, 2.0**-11), F16, "rne", 1.0),
    ("add", (1.0 + 2**-10, 2.0**-11), F16, "rne", 1.0 + 2**-9),
    ("add", (1.0, 2.0**-11), F16, "rto", 1.0 + 2**-10),
    ("add", (1.0, 2.0**-11), F16, "rna", 1.0 + 2**-10),
    ("sub", (0.0, 0.0), F16, "rne", 0.0),
    ("sub", (0.0, 0.0), F16, "rdn", -0.0),
    ("sub", (-0.0, 0.0), F16, "rne", -0.0),
    ("sub", (INF, INF), F16, "rne", NAN),
    ("sub", (2.5, 2.5), F16, "rdn", -0.0),
    ("sub", (2.5, 2.5), F16, "rup", 0.0),
    ("mul", (0.0, INF), F16, "rne", NAN),
    ("mul", (-INF, 0.0), F16, "rne", NAN),
    ("mul", (-0.0, 3.0), F16, "rne", -0.0),
    ("mul", (-2.0, -0.0), F16, "rne", 0.0),
    ("mul", (-INF, 2.0), F16, "rne", -INF),
    ("mul", (-INF, -2.0), F16, "rdn", INF),
    ("mul", (2.0**-480, -(2.0**-480)), F16, "rne", -0.0),
    ("mul", (2.0**-480, -(2.0**-480)), F16, "rdn", -(2.0**-24)),
    ("mul", (2.0**400, 2.0**400), F16, "rne", INF),
    ("mul", (2.0**400, -(2.0**400)), F16, "rtz", -65504.0),
    ("div", (1.0, 0.0), F16, "rne", INF),
    ("div", (-1.0, 0.0), F16, "rne", -INF),
    ("div", (1.0, -0.0), F16, "rne", -INF),
    ("div", (-0.0, -0.0), F16, "rne", NAN),
    ("div", (0.0, 0.0), F16, "rne", NAN),
    ("div", (INF, -INF), F16, "rne", NAN),
    ("div", (INF, 0.0), F16, "rne", INF),
    ("div", (-INF, 2.0), F16, "rne", -INF),
    ("div", (0.0, 5.0), F16, "rne", 0.0),
    ("div", (-0.0, 5.0), F16, "rne", -0.0),
    ("div", (0.0, -5.0), F16, "rne", -0.0),
    ("div", (1.0, -INF), F16, "rne", -0.0),
    ("div", (1.0, 3.0), F16, "rne", 0.333251953125),
    ("div", (1.0, 3.0), F16, "rup", 0.33349609375),
    ("div", (-1.0, 3.0), F16, "rtz", -0.333251953125),
    ("div", (2.0, 3.0), F16, "rto", 0.66650390625),
    ("sqrt", (-0.0,), F16, "rne", -0.0),
    ("sqrt", (0.0,), F16, "rne", 0.0),
    ("sqrt", (-1.0,), F16, "rne", NAN),
    ("sqrt", (-2.0**-400,), F16, "rne", NAN),
    ("sqrt", (INF,), F16, "rne", INF),
    ("sqrt", (-INF,), F16, "rne", NAN),
    ("sqrt", (NAN,), F16, "rne", NAN),
    ("sqrt", (4.0,), F16, "rne", 2.0),
    ("sqrt", (2.0,), F16, "rne", 1.4140625),
    ("sqrt", (2.0,), F16, "rup", 1.4150390625),
    ("sqrt", (2.0,), F16, "rtz", 1.4140625),
    ("fma", (0.0, INF, 1.0), F16, "rne", NAN),
    ("fma", (INF, 1.0, -INF), F16, "rne", NAN),
    ("fma", (INF, 2.0, 5.0), F16, "rne", INF),
    ("fma", (2.0, 3.0, -INF), F16, "rne", -INF),
    ("fma", (0.0, -1.0, 0.0), F16, "rne", 0.0),
    ("fma", (0.0, -1.0, 0.0), F16, "rdn", -0.0),
    ("fma", (-0.0, 1.0, -0.0), F16, "rne", -0.0),
    ("fma", (-0.0, -1.0, -0.0), F16, "rne", 0.0),
    ("fma", (2.0, 3.0, -6.0), F16, "rne", 0.0),
    ("fma", (2.0, 3.0, -6.0), F16, "rdn", -0.0),
    ("fma", (1.0 + 2**-10, 1.0 - 2**-11, -1.0), F16, "rne", 2.0**-11 - 2.0**-21),
    # one rounding: (1+2^-10)^2 = 1 + 2^-9 + 2^-20; minus 1 - rounded product would give 2^-9
    ("fma", (1.0 + 2**-10, 1.0 + 2**-10, -(1.0 + 2**-9)), F16, "rne", 2.0**-20),
    ("fma", (1.0 + 2**-10, 1.0 + 2**-10, 0.0), F16, "rne", 1.0 + 2**-9),
    ("fma", (1.0 + 2**-10, 1.0 + 2**-10, 0.0), F16, "rup", 1.0 + 2**-9 + 2**-10),
    # formats without Inf / without -0 / saturating / without NaN
    ("add", (448.0, 16.0), "float8_e4m3fn", "rne", 448.0),
    ("add", (448.0, 32.0), "float8_e4m3fn", "rne", NAN),
    ("add", (448.0, 16.0), "float8_e4m3fn", "rup", NAN),
    ("add", (448.0, 32.0), "float8_e4m3fn", "rtz", 448.0),
    ("div", (1.0, 0.0), "float8_e4m3fn", "rne", NAN),
    ("mul", (INF, 1.0), "float8_e4m3fn", "rne", NAN),
    ("add", (0.0, -0.0), "float8_e5m2fnuz", "rdn", 0.0),
    ("add", (-0.0, -0.0), "float8_e5m2fnuz", "rne", 0.0),
    ("mul", (-0.0, 1.0), "float8_e5m2fnuz", "rne", 0.0),
    ("sqrt", (-0.0,), "float8_e5m2fnuz", "rne", 0.0),
    ("div", (1.0, 0.0), "float8_e5m2fnuz", "rne", NAN),
    ("div", (-1.0, 0.0), "e5m2_sat", "rne", -57344.0),
    ("add", (INF, 1.0), "e5m2_sat", "rne", 57344.0),
    ("add", (1e6, 1.0), "e5m2_sat", "rna", 57344.0),
    ("add", (1e6, 1.0), "float4_e2m1fn", "rne", 6.0),
    ("mul", (-1e6, 1.0), "float4_e2m1fn", "rne", -6.0),
    ("div", (1.0, 0.0), "float4_e2m1fn", "rne", 6.0),
    ("add", (2.0**-20, 0.0), "e5m2_ftz", "rup", 0.0),   # rounded onto the subnormal grid, then flushed
    ("add", (2.0**-16, 0.0), "e5m2_ftz", "rne", 0.0),
    ("add", (-(2.0**-16), 0.0), "e5m2_ftz", "rne", -0.0),
    ("add", (2.0**-14, -(2.0**-17)), "e5m2_ftz", "rne", 2.0**-14),  # tiny, rounds up to normal
    ("mul", (2.0**-8, 2.0**-7), "e5m2_ftz", "rna", 0.0),
]


@pytest.mark.parametrize("op,args,fmt,mode,want", SPECIAL_CASES)
def test_special_cases(op, args, fmt, mode, want):
    got = getattr(fpsim, op)(*[np.array([x]) for x in args], fmt, rounding=mode)
    assert same(float(got[0]), want), (op, args, fmt, mode, float(got[0]), want)
    ref = {"fma": fma_ref, "sqrt": sqrt_ref, **REF}[op]
    assert same(ref(*args, fpsim.format(fmt), mode), want)  # the oracle agrees with the table


def test_nan_into_a_format_without_nan_is_a_zero():
    for op, args in [("add", (INF, -INF)), ("mul", (0.0, INF)), ("sqrt", (-1.0,)),
                     ("div", (0.0, 0.0))]:
        got = getattr(fpsim, op)(*[np.array([x]) for x in args], "float4_e2m1fn")
        assert float(got[0]) == 0.0, (op, float(got[0]))


def test_scalars_and_broadcasting():
    got = fpsim.mul(np.array([[1.0], [3.0]]), np.array([1.0, 1.0 + 2**-5, 5.0]), "e4m3")
    assert got.shape == (2, 3)
    want = [[1.0, 1.0, 5.0], [3.0, 3.0, 15.0]]   # 3*(1+2^-5)=3.09375 -> 3 in e4m3
    np.testing.assert_array_equal(got, want)
    g = fpsim.fma(np.array([2.0, 3.0]), 2.0, np.array([[1.0], [-1.0]]), "float16")
    np.testing.assert_array_equal(g, [[5.0, 7.0], [3.0, 5.0]])


# --- bad input -----------------------------------------------------------------------------------
@pytest.mark.parametrize("call", [
    lambda: fpsim.add(np.ones(3), np.ones(3), "float64"),
    lambda: fpsim.add(np.ones(3), np.ones(3), fpsim.format("e11m52")),
    lambda: fpsim.sqrt(np.ones(3), "float64"),
    lambda: fpsim.mul(np.ones(3), np.ones(3), fpsim.FloatFormat(8, 51)),      # man_bits > 50
    lambda: fpsim.mul(np.ones(3), np.ones(3), fpsim.FloatFormat(11, 10, bias=1030)),  # emin-m < -1022
    lambda: fpsim.add(np.ones(3), np.ones(3), "float16", rounding="nearest"),
    lambda: fpsim.fma(np.ones(3), np.ones(3), np.ones(3), "float16", rounding="RNE"),
    lambda: fpsim.add(np.ones(3), np.ones(4), "float16"),
    lambda: fpsim.fma(np.ones((2, 3)), np.ones(3), np.ones(2), "float16"),
    lambda: fpsim.div(np.ones((2, 3)), np.ones((3, 2)), "float16"),
    lambda: fpsim.add(np.array([2.0**-500]), np.ones(1), "float16"),
    lambda: fpsim.add(np.ones(1), np.array([2.0**481]), "float16"),
    lambda: fpsim.mul(np.array([5e-324]), np.ones(1), "float16"),
    lambda: fpsim.sqrt(np.array([-(2.0**-481)]), "float16"),
    lambda: fpsim.add(np.ones(2), np.ones(2), "e4m3", rounding="sr", sr_bits=0),
    lambda: fpsim.add(np.ones(2), np.ones(2), "e4m3", rounding="sr", seed=-1),
    lambda: fpsim.add(np.ones(2), np.ones(2), "not-a-format"),
])
def test_bad_input_raises_value_error(call):
    with pytest.raises(ValueError):
        call()


def test_input_range_limits_are_inclusive():
    got = fpsim.mul(np.array([2.0**-480, 2.0**480]), np.array([2.0**480, 2.0**-480]), "e8m23")
    np.testing.assert_array_equal(got, [1.0, 1.0])


def _float32_edges(rng):
    """float32 operands where float32 units go wrong if anything is off: ties of float32 in
    sums and products, subnormal results, overflow, Inf - Inf, 0 * Inf, 0 / 0, signed zeros."""
    one = np.float32(1.0)
    ulp = np.float32(2.0 ** -23)
    a = [one, one, one + ulp, np.float32(3.0), np.float32(2.0 ** -126), np.float32(2.0 ** -149),
         np.float32(3.0e38), np.float32(np.inf), np.float32(np.inf), np.float32(0.0),
         np.float32(-0.0), np.float32(0.0), np.float32(-2.0), np.float32(1e-30), np.float32(np.nan)]
    b = [np.float32(2.0 ** -24), np.float32(3 * 2.0 ** -25), one + ulp, one + 2 * ulp,
         np.float32(-2.0 ** -127), np.float32(0.5), np.float32(3.0e38), np.float32(-np.inf),
         np.float32(0.0), np.float32(0.0), np.float32(-0.0), np.float32(-0.0), np.float32(3.0),
         np.float32(1e-20), one]
    a = np.concatenate([np.array(a, np.float32), rng.standard_normal(40).astype(np.float32)])
    b = np.concatenate([np.array(b, np.float32),
                        (rng.standard_normal(40) * 2.0 ** rng.integers(-140, 127, 40)
                         ).astype(np.float32)])
    return a, b


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "sqrt"])
def test_float32_operands_into_float32_against_the_reference(op):
    """float32 arrays into the binary32 format with nearest-even take float32's own IEEE
    arithmetic (fpsim.arith's native path): equal to the exact-rational reference, +NaN."""
    a, b = _float32_edges(np.random.default_rng(31))
    f32 = fpsim.format("float32")
    if op == "sqrt":
        got = fpsim.sqrt(a, f32)
        want = [sqrt_ref(float(x), f32, "rne") for x in a]
    else:
        got = getattr(fpsim, op)(a, b, f32)
        want = [REF[op](float(x), float(y), f32, "rne") for x, y in zip(a, b)]
    assert got.dtype == np.float32
    check(got, want, op)
    assert not np.signbit(got[np.isnan(got)]).any()


@pytest.mark.parametrize("fmt", ["float8_e4m3fn", "e5m2", "bfloat16", "fp16_169", "float16"])
def test_float32_operand_products_round_once_as_quantize(fmt):
    """fpsim.mul of float32 (and narrower) operands rounds the float64 product (exact: 48 bits,
    2**-298 .. 2**256) with quantize's kernels: every mode, stochastic ones with the element
    index words, against the exact-rational reference.  Adversarial products: exact ties and
    near-ties of the target, its subnormal range and beyond its largest value, products of
    float32 subnormals (far below float32), Inf * 0, signed zeros."""
    f = fpsim.format(fmt)
    rng = np.random.default_rng(len(fmt))
    v = f.values()
    v = v[np.isfinite(v) & (v > 0)]
    half = 2.0 ** -(f.man_bits + 1)
    a = np.concatenate([rng.choice(v, 60) * (1 + half), rng.choice(v, 40) * (1 + 3 * half),
                        rng.choice(v, 40) * (1 + half + 2.0 ** -22),
                        rng.standard_normal(60) * 2.0 ** rng.integers(-140, 120, 60),
                        [2.0**-149, -(2.0**-149), 3e38, np.inf, 0.0, -0.0, np.nan, 1.0]])
    b = np.concatenate([np.where(rng.random(140) < 0.5, -1.0, 1.0),
                        rng.standard_normal(60) * 2.0 ** rng.integers(-20, 20, 60),
                        [2.0**-149, 2.0**-149, 8.0, 0.0, 5.0, -3.0, 1.0, np.nan]])
    a, b = a.astype(np.float32), b.astype(np.float32)
    for mode in DETERMINISTIC:
        got = fpsim.mul(a, b, f, rounding=mode, dtype=np.float64)
        check(got, [mul_ref(float(x), float(y), f, mode) for x, y in zip(a, b)], (fmt, mode))
    seed = 12345
    us = _words(seed, a.size)
    for sr_bits in (None, 3, 20):
        got = fpsim.mul(a, b, f, rounding="sr", seed=seed, sr_bits=sr_bits, dtype=np.float64)
        check(got, [mul_ref(float(x), float(y), f, "sr", u=u, sr_bits=sr_bits)
                    for x, y, u in zip(a, b, us)], (fmt, sr_bits))
    # the same bits as the operands given as float64 (the exact elementwise unit)
    for mode in ("rne", "sr"):
        assert np.array_equal(
            fpsim.mul(a, b, f, rounding=mode, seed=7, dtype=np.float64),
            fpsim.mul(a.astype(np.float64), b.astype(np.float64), f, rounding=mode, seed=7),
            equal_nan=True)
