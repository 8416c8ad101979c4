"""quantize / encode / decode against ml_dtypes, exhaustively where the space is small.

ml_dtypes converts float32 to its types with one round-to-nearest-even; for float64 input,
versions before 0.7 went through float32 first (double rounding), so the float64 oracle is the
exact-rational reference in test_reference.py, not ml_dtypes.
"""

import ml_dtypes
import numpy as np
import pytest

import fpsim

ML_NAMES = ["float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz",
            "float8_e4m3b11fnuz", "float8_e3m4", "float8_e4m3", "float6_e2m3fn", "float6_e3m2fn",
            "float4_e2m1fn", "bfloat16"]


def ml_codes(x32, name):
    t = getattr(ml_dtypes, name)
    with np.errstate(invalid="ignore", over="ignore"):
        y = x32.astype(t)
    return y.view(np.uint8 if ml_dtypes.finfo(t).bits <= 8 else np.uint16), y.astype(np.float32)


def boundary_inputs(name):
    """Every value of the format, every midpoint (tie) between neighbours, and the float32 values
    one ulp either side of each; the same around the overflow threshold and zero."""
    t = getattr(ml_dtypes, name)
    bits = ml_dtypes.finfo(t).bits
    codes = np.arange(2**bits, dtype=np.uint8 if bits <= 8 else np.uint16)
    with np.errstate(invalid="ignore"):
        vals = codes.view(t).astype(np.float64)
    vals = np.unique(vals[np.isfinite(vals)])
    mids = (vals[1:] + vals[:-1]) / 2              # exact in float64 for these narrow formats
    fmax = float(ml_dtypes.finfo(t).max)
    top_ulp = fmax - vals[-2]
    edges = np.array([fmax + top_ulp / 2, fmax + top_ulp, 2 * fmax, -(fmax + top_ulp / 2),
                      vals[vals > 0].min() / 2, vals[vals > 0].min() / 4, 0.0, -0.0])
    exact = np.concatenate([vals, mids, edges])
    with np.errstate(over="ignore"):
        base = exact.astype(np.float32)
    base = base[base.astype(np.float64) == exact]   # keep what float32 holds exactly (bfloat16 edges)
    assert base.size > 3 * vals.size // 2
    up = np.nextafter(base, np.float32(np.inf))
    down = np.nextafter(base, np.float32(-np.inf))
    return np.concatenate([base, up, down, -base, -up, -down])


def assert_same_values(got, want):
    both_nan = np.isnan(got) & np.isnan(want)
    same = (got == want) & (np.signbit(got) == np.signbit(want))
    bad = ~(both_nan | same)
    assert not bad.any(), f"{bad.sum()} mismatches, first: got {got[bad][:5]}, want {want[bad][:5]}"


@pytest.mark.parametrize("name", ML_NAMES)
def test_every_float16_input(name):
    x16 = np.arange(2**16, dtype=np.uint16).view(np.float16)
    want_codes, want_vals = ml_codes(x16.astype(np.float32), name)
    np.testing.assert_array_equal(fpsim.encode(x16, name), want_codes)
    assert_same_values(fpsim.quantize(x16, name, dtype=np.float32), want_vals)


@pytest.mark.parametrize("name", ML_NAMES)
def test_float32_ties_and_boundaries(name):
    x = boundary_inputs(name)
    want_codes, want_vals = ml_codes(x, name)
    np.testing.assert_array_equal(fpsim.encode(x, name), want_codes)
    assert_same_values(fpsim.quantize(x, name), want_vals)


@pytest.mark.parametrize("name", ML_NAMES)
def test_random_float32_bit_patterns(name):
    rng = np.random.default_rng(1)
    x = rng.integers(0, 2**32, size=200_000, dtype=np.uint64).astype(np.uint32).view(np.float32)
    want_codes, want_vals = ml_codes(x, name)
    np.testing.assert_array_equal(fpsim.encode(x, name), want_codes)
    assert_same_values(fpsim.quantize(x, name), want_vals)


@pytest.mark.parametrize("name", ML_NAMES)
def test_decode_every_code(name):
    t = getattr(ml_dtypes, name)
    bits = ml_dtypes.finfo(t).bits
    codes = np.arange(2**bits, dtype=np.uint8 if bits <= 8 else np.uint16)
    assert_same_values(fpsim.decode(codes, name), codes.view(t).astype(np.float32))


@pytest.mark.parametrize("name", ML_NAMES)
def test_format_facts_match_finfo(name):
    f, fi = fpsim.format(name), ml_dtypes.finfo(getattr(ml_dtypes, name))
    assert f.bits == fi.bits
    assert f.max == float(fi.max)
    assert f.min_normal == float(fi.tiny)
    assert f.min_subnormal == float(fi.smallest_subnormal)
    assert f.epsilon == float(fi.eps)


@pytest.mark.parametrize("name", ML_NAMES)
def test_ml_dtypes_arrays_in_and_out(name):
    t = getattr(ml_dtypes, name)
    x = np.linspace(-3, 3, 101).astype(t)
    y = fpsim.quantize(x, name)                 # values already in the format: identity, same dtype
    assert y.dtype == np.dtype(t)
    np.testing.assert_array_equal(y.view(np.uint8 if ml_dtypes.finfo(t).bits <= 8 else np.uint16),
                                  x.view(np.uint8 if ml_dtypes.finfo(t).bits <= 8 else np.uint16))
    z = fpsim.quantize(np.linspace(-3, 3, 101, dtype=np.float32), name, dtype=t)
    assert z.dtype == np.dtype(t)
    np.testing.assert_array_equal(z.astype(np.float32), x.astype(np.float32))


def test_ml_dtypes_output_that_cannot_hold_the_format_is_refused():
    with pytest.raises(ValueError, match="cannot hold"):
        fpsim.quantize(np.ones(3, np.float32), "float8_e5m2", dtype=ml_dtypes.float8_e4m3fn)
    with pytest.raises(ValueError, match="cannot hold"):
        fpsim.quantize(np.ones(3, ml_dtypes.float8_e4m3fn), "float8_e5m2")


def test_float64_input_is_rounded_once():
    # 1 + 2**-4 + 2**-30 lies just above the e4m3 tie at 1.0625: the exact answer is 1.125.
    # ml_dtypes before 0.7 rounded to float32 first (hitting the tie) and then to even, giving
    # 1.0; from 0.7 on (the version fpsim requires) it rounds once, as fpsim does.
    x = np.array([1 + 2**-4 + 2**-30])
    assert fpsim.quantize(x, "float8_e4m3fn")[0] == 1.125
    assert float(x.astype(ml_dtypes.float8_e4m3fn)[0]) == 1.125


def test_float8_e8m0fnu_matches_ml_dtypes():
    """The unsigned, zero-less E8M0 scale: every code, every float16 value, every power of two of
    float32 with its midpoints and neighbours, and 200k random float32 bit patterns."""
    f = fpsim.format("float8_e8m0fnu")
    t = ml_dtypes.float8_e8m0fnu
    codes = np.arange(256, dtype=np.uint8)
    with np.errstate(invalid="ignore"):
        assert np.array_equal(fpsim.decode(codes, f), codes.view(t).astype(np.float32),
                              equal_nan=True)
    p = np.ldexp(1.0, np.arange(-149, 128)).astype(np.float32)
    mids = (p * 1.5).astype(np.float32)
    rng = np.random.default_rng(3)
    x = np.concatenate([np.arange(2**16, dtype=np.uint16).view(np.float16).astype(np.float32),
                        p, mids, np.nextafter(mids, 0), np.nextafter(mids, np.inf),
                        np.nextafter(p, 0), np.nextafter(p, np.inf),
                        rng.integers(0, 2**32, 200_000, dtype=np.uint32).view(np.float32)])
    with np.errstate(invalid="ignore", over="ignore"):
        want = x.astype(t)
    assert np.array_equal(fpsim.encode(x, f), want.view(np.uint8))
    assert np.array_equal(fpsim.quantize(x, f), want.astype(np.float32), equal_nan=True)
    assert np.array_equal(fpsim.quantize(x, f, dtype=t).view(np.uint8), want.view(np.uint8))


LANE_NAMES = ["float8_e4m3fn", "float8_e5m2", "float8_e3m4", "float8_e4m3", "float6_e2m3fn",
              "float6_e3m2fn", "float4_e2m1fn"]


@pytest.mark.parametrize("name", LANE_NAMES)
def test_nearest_even_in_float32_lanes_sweep(name):
    """quantize's float32-lane path (kernels.rounding.lane_nearest) on every sign, exponent and
    top 11 mantissa bits of float32, each with low bits 0, 1, 0x3FF, 0x400, 0x401 and 0xFFF
    (ties, one ulp either side of them, at every rounding position of these formats, subnormal
    targets, overflow and Inf/NaN included): 12.6 million inputs against ml_dtypes.  (bfloat16 has
    no room for the rounding constant of its top binades in float32 lanes: another path.)"""
    from fpsim.quantize import lane_path
    f = fpsim.format(name)
    top = np.arange(2**21, dtype=np.uint32) << np.uint32(11)     # sign, exponent, 12 top bits
    low = np.array([0, 1, 0x3FF, 0x400, 0x401, 0x7FF], dtype=np.uint32)
    x = (top[:, None] | low[None, :]).reshape(-1).view(np.float32)
    assert lane_path(f, x, 0, np.empty(0, np.uint64))
    _, want = ml_codes(x, name)
    assert_same_values(fpsim.quantize(x, f), want)
