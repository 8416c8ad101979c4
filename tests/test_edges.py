"""Adversarial cases of the quantize fast paths (issue 12, holes 2, 3 and 7), each against the
exact-rational reference: values beyond float32 written to float64, float64 subnormal inputs at
the boundary emin - man_bits = -1022 (half a quantum is itself subnormal), and the NaN rule."""

import math

import numpy as np
import pytest

import fpsim
from fpsim.kernels.rounding import random_word, seed_key   # the RNG: an input, not the oracle
from reference import round_ref
from reference_blocks import quantize_block_ref

MODES = ["rne", "rna", "rtz", "rup", "rdn", "rto"]


def same_bits(got, want):
    got = np.asarray(got, np.float64).reshape(-1)
    want = np.asarray(want, np.float64).reshape(-1)
    return np.array_equal(got.view(np.int64), want.view(np.int64))


# --- hole 2: float32 in, float64 out --------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("fmt", [fpsim.FloatFormat(11, 10), fpsim.FloatFormat(9, 12),
                                 fpsim.format("float64")])
def test_float32_input_with_float64_output_is_not_cut_to_float32(mode, fmt):
    f32max = np.finfo(np.float32).max
    x = np.array([f32max, -f32max, np.nextafter(f32max, 0), 2.0**127 * 1.9990234375,
                  1.0, np.float32(np.inf)], np.float32)
    got = fpsim.quantize(x, fmt, rounding=mode, dtype=np.float64)
    want = [round_ref(float(v), fmt, mode) for v in x]
    assert got.dtype == np.float64
    assert same_bits(got, want), (got, want)


def test_the_issue_repro_gives_2_to_the_128():
    got = fpsim.quantize(np.finfo(np.float32).max, fpsim.FloatFormat(11, 10), dtype=np.float64)
    assert got == 2.0**128


# --- hole 3: float64 subnormal inputs ---------------------------------------------------------------
TINY = [5e-324, 2 * 5e-324, 2.0**-1024, 2.0**-1023, 2.0**-1023 + 5e-324, 2.0**-1023 - 5e-324,
        3 * 2.0**-1023, 2.0**-1022 - 5e-324, 2.0**-1022, 2.0**-1022 + 5e-324, 1.5 * 2.0**-1022,
        2.0**-1021 + 2.0**-1023]
TINY = np.array(TINY + [-v for v in TINY])
BOUNDARY = [fpsim.FloatFormat(10, 3, bias=1020), fpsim.FloatFormat(10, 1, bias=1022,
                                                                     specials="fn"),
            fpsim.FloatFormat(10, 8, bias=1015), fpsim.FloatFormat(10, 50, bias=973)]


@pytest.mark.parametrize("fmt", BOUNDARY, ids=str)
@pytest.mark.parametrize("mode", MODES + ["sr"])
def test_float64_subnormal_inputs_round_as_the_reference(fmt, mode):
    assert fmt.emin - fmt.man_bits == -1022
    key = seed_key(np.uint64(7))
    fast = fpsim.quantize(TINY, fmt, rounding=mode, seed=7)
    words = np.array([random_word(key, i) for i in range(TINY.size)], np.uint64)
    exact = fpsim.quantize(TINY, fmt, rounding=mode, random_words=words)   # the exact path
    want = [round_ref(float(v), fmt, mode, int(u)) for v, u in zip(TINY, words)]
    assert same_bits(fast, want), (TINY, fast, want)
    assert same_bits(exact, want)


def test_the_subnormal_repro():
    f = fpsim.FloatFormat(10, 3, bias=1020)
    assert fpsim.quantize(5e-324, f) == 0.0
    assert fpsim.quantize(2.0**-1023, f) == 0.0                       # a tie: to even (0)
    assert fpsim.quantize(2.0**-1023, f, rounding="rna") == 2.0**-1022


# The arithmetic units cannot reach this boundary: their float64 operands lie within 2**+-480
# (ops checks), so no exact sum, product, quotient or root is a float64 subnormal.


@pytest.mark.parametrize("mode", ["rne", "rna", "rup", "rtz"])
def test_block_scale_at_the_subnormal_boundary(mode):
    """Elements of quantum 2**-1017 scaled by 2**-5: the block grid's quantum is 2**-1022."""
    bf = fpsim.BlockFormat(fpsim.FloatFormat(10, 8, bias=1010), block=4, scale_min=-5,
                           scale_max=0)
    x = TINY[:12].copy()
    got = fpsim.quantize(x, bf, rounding=mode)
    want = sum((quantize_block_ref(list(x[i:i + 4]), bf, mode) for i in range(0, 12, 4)), [])
    assert same_bits(got, want), (got, want)


# --- hole 7: one NaN rule -----------------------------------------------------------------------
NAN64 = np.array([0x7FF0000000000001, 0xFFF4000000000000, 0x7FF8000000000123,
                  0xFFF8000000000000, 0x7FFFFFFFFFFFFFFF], np.uint64).view(np.float64)
NAN32 = np.array([0x7F800001, 0xFFC00123, 0x7FC00000, 0xFFA00000], np.uint32).view(np.float32)
QUIET64 = np.uint64(0x7FF8000000000000)


def canonical(sign_of):
    """The quiet NaN of zero payload with the sign bit of each element of sign_of."""
    return (QUIET64 | (np.signbit(sign_of).astype(np.uint64) << np.uint64(63))).view(np.float64)


@pytest.mark.parametrize("x", [NAN64, NAN32], ids=["float64", "float32"])
@pytest.mark.parametrize("fmt", ["e5m2", "e4m3fn", "bfloat16", "fixed<4,12>", "fp4_130",
                                 "mxfp8_e4m3"])
def test_quantize_nan_is_the_quiet_nan_with_the_input_sign_on_every_path(x, fmt):
    paths = {"fast": fpsim.quantize(x, fmt),
             "sr": fpsim.quantize(x, fmt, rounding="sr", seed=1)}
    if not fmt.startswith("mx"):
        paths["words"] = fpsim.quantize(x, fmt, rounding="sr",
                                        random_words=np.zeros(x.size, np.uint64))
    want = canonical(x)
    if fmt.startswith("mx"):          # a NaN block is NaN throughout: the scale's NaN, positive
        want = canonical(np.zeros(x.size))
    for name, got in paths.items():
        assert got.dtype == x.dtype
        assert same_bits(got.astype(np.float64), want), (name, got.view(f"u{x.itemsize}"))
        assert np.array_equal(got.view(f"u{x.itemsize}"),
                              want.astype(x.dtype).view(f"u{x.itemsize}")), name


def test_computed_nans_are_positive_quiet_nans():
    inf = np.array([np.inf, -np.inf, np.inf, 0.0])
    got = fpsim.add(inf, -inf[[0, 1, 0, 3]] * np.array([1, 1, 1, np.nan]), "bfloat16")
    assert same_bits(got[:2], canonical(np.zeros(2)))
    got = fpsim.add(NAN64, 1.0, "bfloat16")
    assert same_bits(got, canonical(np.zeros(NAN64.size)))
    A = np.array([[np.inf, 1.0], [1.0, 1.0]], np.float32)
    B = np.array([[1.0, 1.0], [-np.inf, 1.0]], np.float32)        # Inf - Inf in row 0
    for acc in [fpsim.Accumulator("float32"), fpsim.Accumulator("bfloat16", rounding="rtz"),
                fpsim.KulischAccumulator("float32")]:
        C = fpsim.gemm(A, B, acc=acc)
        assert math.isnan(C[0, 0])
        assert not np.signbit(C[0, 0]), acc


# --- item 11: flush to zero happens after rounding ---------------------------------------------
def test_ftz_flushes_after_rounding_as_documented():
    """rup of a tiny positive value is +0 under FTZ (the subnormal grid rounds up to the smallest
    subnormal, which is then flushed); the same in the reference."""
    f = fpsim.FloatFormat(5, 2, subnormals=False)
    x = np.array([2.0**-20, -(2.0**-20), 1.5 * 2.0**-15])
    for mode in MODES:
        got = fpsim.quantize(x, f, rounding=mode)
        assert same_bits(got, [round_ref(float(v), f, mode) for v in x])
    assert fpsim.quantize(2.0**-20, f, rounding="rup") == 0.0
    mean = fpsim.quantize(np.full(20000, 2.0**-16), f, rounding="sr", seed=1).mean()
    assert mean == 0.0
