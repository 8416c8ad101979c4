"""Fixed point <IL, FL> against the exact-rational reference (tests/reference_fixed.py)."""

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import fpsim
from reference_fixed import fixed_decode_ref, fixed_round_ref

DETERMINISTIC = ("rne", "rna", "rtz", "rup", "rdn", "rto")


@st.composite
def fixed_formats(draw):
    signed = draw(st.booleans())
    bits = draw(st.integers(2 if signed else 1, 53))
    fl = draw(st.integers(-40, 60))
    return fpsim.FixedFormat(bits - fl, fl, signed=signed, saturate=draw(st.booleans()))


def values_near(f):
    """Floats around the format's grid and range, plus extremes."""
    scale = 2.0 ** (f.int_bits - 1)
    return st.one_of(
        st.floats(allow_nan=False, allow_infinity=True, width=64),
        st.floats(-4 * scale, 4 * scale, allow_nan=False),
        st.integers(-(2 ** 20), 2 ** 20).map(lambda k: (k + 0.5) * f.step),   # ties
        st.integers(-(2 ** 20), 2 ** 20).map(lambda k: k * f.step))


def same(a, b):
    return (a == b and math.copysign(1, a) == math.copysign(1, b)) or \
        (math.isnan(a) and math.isnan(b))


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_deterministic_modes_match_reference(data):
    f = data.draw(fixed_formats())
    xs = data.draw(st.lists(values_near(f), min_size=1, max_size=20))
    x = np.array(xs)
    for mode in DETERMINISTIC:
        got = fpsim.quantize(x, f, rounding=mode)
        for xi, gi in zip(xs, got):
            want = fixed_round_ref(xi, f.int_bits, f.frac_bits, f.signed, f.saturate, mode)
            assert same(float(gi), want), (f, mode, xi, gi, want)


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_stochastic_modes_match_reference_with_given_words(data):
    f = data.draw(fixed_formats())
    xs = data.draw(st.lists(values_near(f), min_size=1, max_size=20))
    words = data.draw(st.lists(st.integers(0, 2 ** 64 - 1), min_size=len(xs), max_size=len(xs)))
    x, u = np.array(xs), np.array(words, dtype=np.uint64)
    hi = min(30, 52 - f.float_container.man_bits)    # the one sr_bits range (0: none allowed)
    r = data.draw(st.integers(1, hi)) if hi >= 1 else None
    exact = fpsim.quantize(x, f, rounding="sr", random_words=u)
    limited = fpsim.quantize(x, f, rounding="sr", sr_bits=r, random_words=u)
    for xi, ui, ge, gl in zip(xs, words, exact, limited):
        want = fixed_round_ref(xi, f.int_bits, f.frac_bits, f.signed, f.saturate, "sr", ui)
        if want is not None:
            assert same(float(ge), want), (f, xi, ui, ge, want)
        if r is not None:
            want = fixed_round_ref(xi, f.int_bits, f.frac_bits, f.signed, f.saturate, "sr", ui, r)
            assert same(float(gl), want), (f, r, xi, ui, gl, want)


def test_stochastic_rounding_is_unbiased_on_average():
    f = fpsim.format("fixed<8,4>")                       # step 1/16
    x = np.full(200_000, 0.3)                            # 0.3 = 4.8 steps
    q = fpsim.quantize(x, f, rounding="sr", seed=5)
    assert set(np.unique(q)) == {0.25, 0.3125}
    assert abs(q.mean() - 0.3) < 4 * (0.8 * 0.2) ** 0.5 / 16 / 200_000 ** 0.5
    assert np.array_equal(q, fpsim.quantize(x, f, rounding="sr", seed=5))   # seed decides


@pytest.mark.parametrize("spec", ["fixed<1,7>", "fixed<8,0>", "ufixed<3,5>", "fixed<4,12>",
                                  "fixed<-2,10>", "ufixed<12,-4>", "fixed<3,5>_wrap"])
def test_every_code_decodes_and_encodes_back(spec):
    f = fpsim.format(spec)
    codes = np.arange(f.n_codes, dtype=f.code_dtype)
    v = fpsim.decode(codes, f, dtype=np.float64)
    want = [fixed_decode_ref(int(c), f.int_bits, f.frac_bits, f.signed) for c in codes]
    assert np.array_equal(v, want)
    assert np.array_equal(fpsim.encode(v, f), codes)
    assert np.array_equal(f.values(), np.sort(want))
    assert f.values()[0] == f.min and f.values()[-1] == f.max
    assert fpsim.format(f.spec) == f


def test_saturate_and_wrap_at_the_range_edges():
    sat, wrap = fpsim.format("fixed<4,4>"), fpsim.format("fixed<4,4>_wrap")
    x = np.array([7.9375, 7.96875, 8.0, -8.0, -8.03125, -8.0625, 100.0, np.inf, -np.inf])
    assert fpsim.quantize(x, sat).tolist() == [7.9375, 7.9375, 7.9375, -8.0, -8.0, -8.0,
                                                7.9375, 7.9375, -8.0]
    # wrap: 7.96875 is a tie between 127 and 128 steps; even 128 wraps to -128
    assert fpsim.quantize(x, wrap).tolist() == [7.9375, -8.0, -8.0, -8.0, -8.0, 7.9375,
                                                 4.0, 7.9375, -8.0]
    assert fpsim.quantize(np.array([-0.01, -0.0]), "ufixed<4,4>").tolist() == [0.0, 0.0]
    assert math.copysign(1, fpsim.quantize(-0.01, "fixed<4,4>")) == 1   # no negative zero


def test_gemm_takes_fixed_point_operands():
    rng = np.random.default_rng(0)
    fa, fb = fpsim.format("fixed<4,6>"), fpsim.format("fixed<2,10>")
    A = fpsim.quantize(rng.normal(size=(5, 40)), fa)
    B = fpsim.quantize(rng.normal(size=(40, 3)), fb)
    exact = A @ B             # products have 16 fraction bits: exact in float64, and so are sums
    got = fpsim.gemm(A, B, a_format=fa, b_format=fb, acc=fpsim.KulischAccumulator("e8m40"))
    assert np.array_equal(got, exact)
    with pytest.raises(ValueError, match="not in its format"):
        fpsim.gemm(A + 2.0 ** -9, B, a_format=fa, b_format=fb)


@pytest.mark.parametrize("kwargs, match", [
    (dict(int_bits=40, frac_bits=20), "53"), (dict(int_bits=1, frac_bits=0), "2..53"),
    (dict(int_bits=4, frac_bits=1.5), "frac_bits must be an int"),
    (dict(int_bits=4, frac_bits=4, saturate="yes"), "saturate"),
    (dict(int_bits=1000, frac_bits=-990), "frac_bits must be in")])
def test_bad_parameters_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        fpsim.FixedFormat(**kwargs)


def test_encode_rejects_nan():
    with pytest.raises(ValueError, match="NaN"):
        fpsim.encode(np.array([1.0, np.nan]), "fixed<4,4>")
    assert np.isnan(fpsim.quantize(np.nan, "fixed<4,4>"))


@pytest.mark.parametrize("mode", DETERMINISTIC)
def test_kulisch_into_fixed_point_is_one_conversion_of_the_exact_sum(mode):
    """Gupta et al. 2015's multiply-accumulate: exact sum, converted once into <IL, FL>."""
    from fractions import Fraction
    from reference import round_integer
    rng = np.random.default_rng(8)
    fa = fpsim.format("fixed<4,10>")
    out = fpsim.FixedFormat(6, 6)
    A = fpsim.quantize(rng.normal(size=(5, 60)), fa)
    B = fpsim.quantize(rng.normal(size=(60, 4)), fa)
    C = fpsim.gemm(A, B, a_format=fa, b_format=fa,
                   acc=fpsim.KulischAccumulator(out, rounding=mode))
    for i in range(5):
        for j in range(4):
            exact = sum(Fraction(a) * Fraction(b) for a, b in zip(A[i], B[:, j]))
            k = min(max(round_integer(exact * 64, mode), -2 ** 11), 2 ** 11 - 1)
            assert C[i, j] == k / 64, (mode, i, j, exact)
    with pytest.raises(ValueError, match="must saturate"):
        fpsim.KulischAccumulator("fixed<4,4>_wrap")


def fixed_register_ref(A, B, acc_fmt, mode, seed):
    """The spec of a saturating fixed-point register, in Fractions: each exact register + product
    rounded onto the grid (reference.round_integer), then saturated.  Returns (C, how many steps
    saturated)."""
    from fractions import Fraction
    from reference import round_integer
    from fpsim.kernels.rounding import random_word, seed_key
    key = np.uint64(seed_key(np.uint64(seed)))
    (M, K), N = A.shape, B.shape[1]
    scale = 2 ** acc_fmt.frac_bits
    lo, hi = -2 ** (acc_fmt.bits - 1), 2 ** (acc_fmt.bits - 1) - 1
    C, saturated = np.empty((M, N)), 0
    for i in range(M):
        for j in range(N):
            e, reg = i * N + j, Fraction(0)
            for k in range(K):
                u = int(random_word(key, e * (K * K + 2 * K) + k)) if mode == "sr" else 0
                q = round_integer((reg + Fraction(A[i, k]) * Fraction(B[k, j])) * scale, mode, u)
                saturated += not lo <= q <= hi
                reg = Fraction(min(max(q, lo), hi), scale)
            C[i, j] = reg
    return C, saturated


@pytest.mark.parametrize("mode", DETERMINISTIC + ("sr",))
def test_fixed_point_accumulator_rounds_and_saturates_after_every_addition(mode):
    """Each exact register + product is rounded onto the grid, then saturated (Fraction loop)."""
    rng = np.random.default_rng(9)
    fa, acc_fmt = fpsim.format("fixed<3,9>"), fpsim.FixedFormat(5, 5)
    M, K, N = 4, 50, 3
    A = fpsim.quantize(rng.normal(size=(M, K)) * 1.5, fa)
    B = fpsim.quantize(rng.normal(size=(K, N)) * 1.5, fa)
    C = fpsim.gemm(A, B, a_format=fa, b_format=fa, seed=7,
                   acc=fpsim.Accumulator(acc_fmt, rounding=mode))
    want, saturated = fixed_register_ref(A, B, acc_fmt, mode, 7)
    assert np.array_equal(C, want) and not (np.signbit(C) & (C == 0)).any(), mode
    assert saturated > 0                      # the test reaches the saturation limits
    with pytest.raises(ValueError, match="adds sequentially"):
        fpsim.Accumulator(acc_fmt, chunk=8)
    with pytest.raises(ValueError, match="posit accumulator adds sequentially"):
        fpsim.Accumulator("posit8", chunk=4)


def test_fixed_point_register_in_float64_lanes_at_its_proof_cases():
    """The nearest-even fixed-point register's float64-lane path (kernels.gemm.fixed_lanes) at
    the cases of its proof, against the Fraction loop: sums exactly between two grid points
    (ties), products just below and at 2R (R = 8 here) and far beyond it, a register resting at
    -R, sums cancelling to zero, and e5m2 products far below the grid (2**-32)."""
    acc_fmt, e5m2 = fpsim.FixedFormat(4, 6), fpsim.format("e5m2")       # grid 1/64, [-8, 8)
    assert fpsim.kernels.gemm.fixed_lanes(acc_fmt.bits, 6, -32, True, True)
    rows = [[2.0**-7, 2.0**-6, 2.0**-7, 1.0],          # ties: 1/128 -> 0; 3/128 -> 4/128
            [14.0, 1.75, 1.0, -1.0],                    # 14 * 1 + 1.75 ... near and past R
            [-8.0, -1.0, 2.0**-16, 0.5],                # resting at -R
            [16.0, -16.0, 3.0, -3.0],                   # 2R: saturation breaks the cancel
            [2.0**15, -2.0**15, 2.0**-16, -2.0**-16],   # far beyond, tiny products
            [0.0, 0.0, 0.0, 0.0]]
    A = np.array(rows)
    B = np.array([[1.0, -1.0, 0.75], [1.0, 1.0, 1.5], [1.0, -1.0, 2.0**-16], [1.0, 1.0, 0.5]])
    C = fpsim.gemm(A, B, a_format=e5m2, b_format=e5m2, acc=fpsim.Accumulator(acc_fmt))
    want, saturated = fixed_register_ref(A, B, acc_fmt, "rne", 0)
    assert np.array_equal(C, want) and not (np.signbit(C) & (C == 0)).any()   # no -0
    assert saturated >= 6
    assert C[0, 0] == 1.0 + 2.0**-5 and C[3, 0] == -8.0 and C[2, 0] == -8.0 + 0.5
