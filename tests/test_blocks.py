"""Block formats (MX, Block Minifloat, Flexpoint) and Autoflex: gfloat for MX, the exact-rational
block reference (tests/reference_blocks.py) for every format, edge cases of scale selection."""

import math

import numpy as np
import pytest
from gfloat import RoundMode, compute_scale_amax, encode_block, quantize_block
from gfloat import formats as gf
from hypothesis import given, settings, strategies as st

import fpsim
from reference_blocks import quantize_block_ref

MX = {"mxfp8_e4m3": gf.format_info_mxfp8_e4m3, "mxfp8_e5m2": gf.format_info_mxfp8_e5m2,
      "mxfp6_e3m2": gf.format_info_mxfp6_e3m2, "mxfp6_e2m3": gf.format_info_mxfp6_e2m3,
      "mxfp4_e2m1": gf.format_info_mxfp4_e2m1, "mxint8": gf.format_info_mxint8}
BLOCK_NAMES = list(MX) + ["bm8_fwd", "bm8_bwd", "bm6_fwd", "bm6_bwd", "bm5_fwd", "bm5_bwd",
                          "bm4_fwd", "bm4_bwd", "flex16+5"]


def wide_float32(rng, shape):
    """float32 values over ~30 binades, with exact ties of every element format sprinkled in."""
    x = rng.normal(size=shape) * np.exp2(rng.integers(-15, 15, size=shape))
    x[rng.random(shape) < 0.1] = 0.0
    return x.astype(np.float32)


def gfloat_mx(name, x2d):
    """gfloat's MX quantization of every row (one 32-element block per row)."""
    return np.stack([quantize_block(MX[name], row.astype(np.float64), compute_scale_amax,
                                    RoundMode.TiesToEven) for row in x2d])


@pytest.mark.parametrize("name", list(MX))
def test_mx_matches_gfloat(name):
    rng = np.random.default_rng(abs(hash(name)) % 2**32)
    x = wide_float32(rng, (300, 32))
    # every block: its maximum on a binade boundary, just below one, and overflowing the element
    x[:20, 0] = np.exp2(rng.integers(-20, 20, 20)).astype(np.float32)
    x[20:40, 0] = (1.99 * np.exp2(rng.integers(-20, 20, 20))).astype(np.float32)
    got = fpsim.quantize(x, name)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got.astype(np.float64), gfloat_mx(name, x))
    # along another axis: the same blocks, transposed
    np.testing.assert_array_equal(fpsim.quantize(x.T.copy(), name, axis=0), got.T)


@pytest.mark.parametrize("name", list(MX))
def test_mx_scale_codes_are_gfloats_e8m0_codes(name):
    rng = np.random.default_rng(7)
    x = wide_float32(rng, (50, 32)).astype(np.float64)
    codes, scodes = fpsim.encode(x, name)
    for row, c, sc in zip(x, codes, scodes[:, 0]):
        scale = compute_scale_amax(MX[name].etype.emax, row)
        ref = list(encode_block(MX[name], scale, row / scale, RoundMode.TiesToEven))
        assert sc == ref[0]
        if name != "mxint8":     # gfloat's int8 codes are its own; values are compared above
            assert list(c) == ref[1:]
    assert np.array_equal(fpsim.decode((codes, scodes), name), fpsim.quantize(x, name))


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_every_block_format_matches_the_exact_reference(data):
    name = data.draw(st.sampled_from(BLOCK_NAMES))
    mode = data.draw(st.sampled_from(["rne", "rna", "rtz", "rup", "rdn", "rto"]))
    f = fpsim.format(name)
    n = 32 if f.block is None else (f.block if isinstance(f.block, int) else 1)
    vals = data.draw(st.lists(st.one_of(
        st.floats(-1e6, 1e6, width=32), st.floats(-2.0 ** -10, 2.0 ** -10, width=32),
        st.sampled_from([0.0, -0.0, 2.0 ** -20, 3.0 * 2 ** 9, -1.9999])), min_size=n, max_size=n))
    x = np.array(vals, dtype=np.float64)
    if isinstance(f.block, tuple):
        x = x.reshape(1, -1)            # a 1 x n tile of the 48 x 48 grid
    got = fpsim.quantize(x, f, rounding=mode).reshape(-1)
    want = quantize_block_ref(vals, f, mode)
    for xi, g, w in zip(vals, got, want):
        assert (g == w and math.copysign(1, g) == math.copysign(1, w)) or \
            (math.isnan(g) and math.isnan(w)), (name, mode, xi, g, w)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])     # float32: the tile lanes
def test_square_tiles_each_get_their_own_scale(dtype):
    f = fpsim.format("bm8_fwd")
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 100, 70)) * np.exp2(rng.integers(-8, 8, size=(2, 1, 1)))
    x = x.astype(dtype).astype(np.float64) if dtype == np.float32 else x
    got = fpsim.quantize(x.astype(dtype), f).astype(np.float64)
    exps = fpsim.block_exponents(x, f)
    assert exps.shape == (2, 3, 2)                     # ceil(100/48) x ceil(70/48) tiles
    for b in range(2):
        for i in range(3):
            for j in range(2):
                tile = x[b, 48 * i:48 * (i + 1), 48 * j:48 * (j + 1)]
                want = quantize_block_ref(tile.reshape(-1).tolist(), f)
                assert np.array_equal(got[b, 48 * i:48 * (i + 1), 48 * j:48 * (j + 1)],
                                      np.array(want).reshape(tile.shape))
                assert exps[b, i, j] == math.floor(math.log2(np.abs(tile).max())) - f.emax_elem


# --- shared-exponent selection at the edges -------------------------------------------------------
@pytest.mark.parametrize("name", BLOCK_NAMES)
def test_all_zero_block(name):
    f = fpsim.format(name)
    x = np.zeros((2, 64))
    x[1, 0] = -0.0
    assert np.array_equal(fpsim.quantize(x, f), x)
    assert np.all(fpsim.block_exponents(x, f) == f.scale_min)


@pytest.mark.parametrize("name", BLOCK_NAMES)
def test_block_with_nan_or_inf(name):
    f = fpsim.format(name)
    for bad in (np.nan, np.inf, -np.inf):
        x = np.linspace(-1, 1, 32)
        x[5] = bad
        got = fpsim.quantize(x.reshape(1, -1), f).reshape(-1)
        if f.nan_scale:                       # MX: the scale is NaN, so is every element
            assert np.all(np.isnan(got))
            assert np.isnan(fpsim.block_exponents(x, f)).all()
            assert fpsim.encode(x, f)[1].reshape(-1)[0] == 255      # E8M0 NaN
        elif math.isinf(bad):                 # exponent clamps to the top; Inf saturates
            assert fpsim.block_exponents(x.reshape(1, -1), f).max() == f.scale_max
            top = f.element.max if bad > 0 or not hasattr(f.element, "frac_bits") \
                else -f.element.min                      # two's complement: -2**15 for -Inf
            assert got[5] == math.copysign(top * 2.0 ** f.scale_max, bad)
            assert np.array_equal(got, quantize_block_ref(list(x), f))
        else:                                 # NaN ignored for the scale, rounded as an element
            want = quantize_block_ref(list(x), f)
            assert np.array_equal(got, want, equal_nan=True)
    # gfloat agrees for NaN; for Inf it clips the scale to 2**127 and saturates instead (the MX
    # reference emulator, microsoft/microxcaling, gives NaN, as fpsim does)
    x = np.linspace(-1, 1, 32)
    x[5] = np.nan
    assert np.isnan(gfloat_mx("mxfp8_e4m3", x.reshape(1, -1))).all()


@pytest.mark.parametrize("name", BLOCK_NAMES)
def test_block_max_on_a_binade_boundary_maps_to_the_elements_top_binade(name):
    f = fpsim.format(name)
    for k in (-9, 0, 7):
        x = np.full(32, 2.0 ** (k - 3))
        x[0] = 2.0 ** k
        got = fpsim.quantize(x.reshape(1, -1), f).reshape(-1)
        s = k - f.emax_elem
        s = min(max(s, f.scale_min), f.scale_max)
        assert fpsim.block_exponents(x.reshape(1, -1), f).reshape(-1)[0] == s
        assert got[0] == 2.0 ** k if f.element.max >= 2.0 ** f.emax_elem else True
        assert np.array_equal(got, quantize_block_ref(list(x), f))


@pytest.mark.parametrize("name", BLOCK_NAMES)
def test_block_max_overflowing_the_element_clamps_to_its_max(name):
    f = fpsim.format(name)
    x = np.full(32, 0.1)
    x[3], x[4] = 1.99999 * 2.0 ** 4, -1.99999 * 2.0 ** 4   # scaled: just below 2**(emax+1)
    got = fpsim.quantize(x.reshape(1, -1), f).reshape(-1)
    s = 4 - f.emax_elem
    bottom = f.element.min if hasattr(f.element, "frac_bits") else -f.element.max
    assert got[3] == f.element.max * 2.0 ** s and got[4] == bottom * 2.0 ** s
    assert np.array_equal(got, quantize_block_ref(list(x), f))


# --- Flexpoint ------------------------------------------------------------------------------------
def test_flex16_of_an_in_range_tensor_is_int16_rounding_with_the_chosen_exponent():
    rng = np.random.default_rng(11)
    for scale in (1e-4, 0.37, 5.0, 900.0):
        x = rng.normal(size=(30, 20)) * scale
        s = int(fpsim.block_exponents(x, "flex16+5"))
        assert s == math.floor(math.log2(np.abs(x).max())) - 14
        want = np.clip(np.rint(x / 2.0 ** s), -32768, 32767) * 2.0 ** s
        assert np.array_equal(fpsim.quantize(x, "flex16+5"), want)
        codes, sc = fpsim.encode(x, "flex16+5")
        assert np.array_equal(codes.view(np.int16), np.rint(x / 2.0 ** s).astype(np.int16))
        assert int(sc) == s + 31                 # exponent code: s - scale_min


def test_autoflex_tracks_a_drifting_stream_and_handles_every_overflow():
    rng = np.random.default_rng(1)
    flex = fpsim.Autoflex()
    diffs, overflow_steps = [], []
    for t in range(300):
        x = rng.normal(size=1000) * 10.0 ** (t / 40 - 4)     # 7.5 decades of drift
        if t == 150:
            x *= 100.0                                       # a sudden jump
        used = flex.exponent
        before = flex.overflows
        q = flex.quantize(x)
        used = flex_used = used if used is not None else int(fpsim.block_exponents(x, "flex16+5"))
        ideal = int(fpsim.block_exponents(x, "flex16+5"))
        mant = np.abs(q).max() * 2.0 ** -flex_used
        saturated = mant >= 2 ** 15 - 1
        assert saturated == (flex.overflows > before)        # every overflow is noticed ...
        if saturated:
            overflow_steps.append(t)
            assert flex.exponent > used                      # ... and raises the exponent
        else:
            assert np.array_equal(q, np.clip(np.rint(x / 2.0 ** used), -32768, 32767)
                                  * 2.0 ** used)
        diffs.append(used - ideal)
    assert overflow_steps == [150]                           # only the jump overflows
    d = np.delete(np.array(diffs), [0, 150])
    assert d.min() >= 0 and d.max() <= 3                     # headroom of at most 3 binades
    assert np.mean(d <= 1) > 0.9                             # and mostly at most 1


def test_autoflex_bad_arguments():
    with pytest.raises(ValueError, match="history"):
        fpsim.Autoflex(history=0)
    with pytest.raises(ValueError, match="per-tensor"):
        fpsim.Autoflex("mxfp8_e4m3")


# --- presets and errors -------------------------------------------------------------------------
def test_presets_are_what_the_sources_say():
    # OCP MX v1.0 Table 1: 32-element blocks, E8M0 scale (2**-127 .. 2**127, NaN)
    for name, gfi in MX.items():
        f = fpsim.format(name)
        assert f.block == gfi.k == 32 and f.scale_bits == 8 and f.nan_scale
        assert (f.scale_min, f.scale_max) == (-127, 127)
        assert f.element.max == gfi.etype.max and f.emax_elem == gfi.etype.emax
    # Fox et al. 2021 section 2.1: <4,3> max 240, smallest subnormal 2**-10; Table 3 BM8 (2,5)/(4,3)
    bwd = fpsim.format("bm8_bwd")
    assert bwd.element.max == 240.0 and bwd.element.min_subnormal == 2.0 ** -10
    assert (fpsim.format("bm8_fwd").element.exp_bits, fpsim.format("bm8_fwd").element.man_bits) \
        == (2, 5)
    assert bwd.block == (48, 48)
    from fpsim.formats import bm_kulisch_width
    assert bm_kulisch_width((2, 5), (4, 3)) == 31      # Table 3: 31-bit accumulator for BM8
    assert bm_kulisch_width((2, 3), (3, 2)) == 20      # BM6: 20
    assert bm_kulisch_width((2, 2), (3, 1)) == 18      # BM5: 18
    flex = fpsim.format("flex16+5")
    assert flex.element == fpsim.FixedFormat(16, 0) and flex.block is None and flex.scale_bits == 5


def test_bad_block_arguments_are_named():
    with pytest.raises(ValueError, match="block must be"):
        fpsim.BlockFormat(fpsim.format("e4m3"), block=0)
    with pytest.raises(ValueError, match="element must be"):
        fpsim.BlockFormat("e4m3")
    with pytest.raises(ValueError, match="scale_min"):
        fpsim.BlockFormat(fpsim.format("e4m3"), scale_min=5, scale_max=1)
    with pytest.raises(ValueError, match="normal range"):
        fpsim.BlockFormat(fpsim.FixedFormat(-684, 700), scale_min=-400, scale_max=0)
    with pytest.raises(ValueError, match="axis must be"):
        fpsim.quantize(np.ones((2, 3)), "mxfp8_e4m3", axis=2)
    with pytest.raises(ValueError, match="tiles over the last two axes"):
        fpsim.quantize(np.ones(5), "bm8_fwd")
    with pytest.raises(ValueError, match="random_words"):
        fpsim.quantize(np.ones(5), "mxfp8_e4m3", rounding="sr", random_words=np.ones(5, np.uint64))
    with pytest.raises(ValueError, match="dtype must be float32 or float64"):
        fpsim.quantize(np.ones(5), "mxfp8_e4m3", dtype=np.float16)


def test_stochastic_block_rounding_is_unbiased_and_seeded():
    x = np.tile(np.array([1.0] + [0.3] * 31), (4000, 1))   # scale 2**-8; 0.3 between grid points
    q = fpsim.quantize(x, "mxfp8_e4m3", rounding="sr", seed=2)
    assert np.array_equal(q, fpsim.quantize(x, "mxfp8_e4m3", rounding="sr", seed=2))
    vals = q[:, 1:]
    assert set(np.unique(vals)) == {0.28125, 0.3125}          # 0.3 * 2**8 = 76.8: 72 or 80
    assert abs(vals.mean() - 0.3) < 2e-4                         # 4.5 standard errors


# --- GEMM on block-format operands ----------------------------------------------------------------
def test_bm8_gemm_with_kulisch_accumulation_is_the_exactly_rounded_dot_product():
    """Fox et al. 2021 section 2.3: BM dot products are exact (Kulisch) and rounded once."""
    from fractions import Fraction
    from reference_arith import round_exact
    rng = np.random.default_rng(4)
    A = fpsim.quantize(rng.normal(size=(20, 96)) * 3, "bm8_fwd")    # activations, forward format
    B = fpsim.quantize(rng.normal(size=(96, 30)) / 7, "bm8_bwd")    # errors, backward format
    C = fpsim.gemm(A, B, a_format="bm8_fwd", b_format="bm8_bwd",
                   acc=fpsim.KulischAccumulator("float32"))
    f32 = fpsim.format("float32")
    for i in range(0, 20, 3):
        for j in range(0, 30, 4):
            exact = sum(Fraction(a) * Fraction(b) for a, b in zip(A[i], B[:, j]))
            assert C[i, j] == round_exact(abs(exact), exact < 0, f32, "rne")
    with pytest.raises(ValueError, match="not in its format"):
        fpsim.gemm(A + 1e-9, B, a_format="bm8_fwd", b_format="bm8_bwd")
    with pytest.raises(ValueError, match="quantize_operands cannot place blocks"):
        fpsim.gemm(A, B, a_format="bm8_fwd", b_format="bm8_bwd", quantize_operands=True)


def test_mx_gemm_reads_operands_blocked_along_the_reduction_axis():
    """Every output against the exact-rational dot product, rounded once into e10m50; the exact
    sums need fewer than 51 significant bits here, so that rounding is checked to be exact too."""
    from fractions import Fraction
    from reference_arith import round_exact
    rng = np.random.default_rng(5)
    A = fpsim.quantize(rng.normal(size=(8, 64)), "mxfp8_e4m3", axis=1)
    B = fpsim.quantize(rng.normal(size=(64, 8)), "mxfp8_e5m2", axis=0)
    e10m50 = fpsim.format("e10m50")
    C = fpsim.gemm(A, B, a_format="mxfp8_e4m3", b_format="mxfp8_e5m2",
                   acc=fpsim.KulischAccumulator(e10m50))
    for i in range(A.shape[0]):
        for j in range(B.shape[1]):
            exact = sum(Fraction(a) * Fraction(b) for a, b in zip(A[i], B[:, j]))
            want = round_exact(abs(exact), exact < 0, e10m50, "rne")
            assert Fraction(want) == exact, (i, j)
            assert C[i, j] == want and math.copysign(1.0, C[i, j]) == math.copysign(1.0, want)


F32_LANE_FORMATS = ["mxfp8_e4m3", "mxfp8_e5m2", "mxfp6_e3m2", "mxfp6_e2m3", "mxfp4_e2m1",
                    "bm8_fwd", "bm6_bwd", "bm4_fwd"]


def _f32_blocks(f, rng):
    """Blocks of float32 values from kernels.block.lanes32's proof: elements that underflow
    float32 once scaled (tiny values in a block of huge ones), exact ties of the scaled grid,
    the largest scale (amax near float32's maximum), the smallest (blocks of subnormals,
    clamped scales), signed zeros, and an Inf where the format saturates instead of NaN."""
    n = f.block if isinstance(f.block, int) else 48
    el = f.element
    blocks = []
    for top in (100, 127, -140, 0, 20):
        s = max(f.scale_min, min(f.scale_max, top - el.emax))
        b = np.zeros(n)
        b[0] = 2.0 ** top * 1.75 if top < 127 else np.finfo(np.float32).max
        b[1:5] = [2.0 ** -149, -2.0 ** -149, 1e-40, -1e-40]
        b[5] = -0.0
        grid = 2.0 ** (s + el.emin - el.man_bits)          # the scaled element grid's quantum
        k = rng.integers(1, 2 ** (el.man_bits + 1), n - 6)
        e = rng.integers(0, el.emax - el.emin + 1, n - 6)
        b[6:] = (k + 0.5) * grid * 2.0 ** e * rng.choice([-1, 1], n - 6)   # ties (or beyond)
        blocks.append(b)
    b = (rng.standard_normal(n) * 2.0 ** rng.integers(-149, 127, n))
    if not f.nan_scale:
        b[3] = -np.inf
    blocks.append(b)
    return np.array(blocks).astype(np.float32)


@pytest.mark.parametrize("name", F32_LANE_FORMATS)
def test_float32_input_in_float32_lanes_matches_the_exact_reference(name):
    f = fpsim.format(name)
    rng = np.random.default_rng(3)
    x = _f32_blocks(f, rng)
    assert np.isfinite(x[:-1]).all()
    if isinstance(f.block, tuple):          # one 1 x 48 row of tiles per block
        got = np.concatenate([fpsim.quantize(row[None], f)[0] for row in x])
    else:
        got = fpsim.quantize(x, f, axis=-1).reshape(-1)
    assert got.dtype == np.float32
    want = [w for row in x for w in quantize_block_ref([float(v) for v in row], f)]
    for xi, g, w in zip(x.reshape(-1), got.reshape(-1), want):
        assert (g == w and math.copysign(1, g) == math.copysign(1, w)) or \
            (math.isnan(g) and math.isnan(w)), (name, xi, g, w)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["mxfp8_e4m3", "mxint8", "mxfp4_e2m1"])
def test_rows_of_several_runs_with_a_short_last_one_match_the_reference(name, dtype):
    """Rows of 70 elements: runs of 32, 32 and 6 per row, each with its
    own scale, along either axis (the kernel steps from run to run and row to row)."""
    f = fpsim.format(name)
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((5, 70)) * 2.0 ** rng.integers(-12, 12, (5, 70))).astype(dtype)
    for axis in (-1, 0):
        got = fpsim.quantize(x, f, axis=axis)
        rows = x if axis == -1 else x.T
        out = got if axis == -1 else got.T
        for row, qrow in zip(rows, out):
            want = [w for k in range(0, row.size, f.block)
                    for w in quantize_block_ref([float(v) for v in row[k:k + f.block]], f)]
            assert np.array_equal(qrow.astype(np.float64), np.array(want)), (name, axis)


# Fixed-point elements in float32 lanes (kernels.block.fixed_lanes32): words of magnitude up to
# 2**21 are in the lanes, 2**22 is not (a 23-bit signed word); signed and unsigned words; MX's
# NaN blocks, Flexpoint's one tensor scale, and clamped scales (an Inf element in the lanes).
FIXED_LANE_FORMATS = [
    "mxint8", "flex16+5",
    fpsim.BlockFormat(fpsim.FixedFormat(4, 4, signed=False), block=32),
    fpsim.BlockFormat(fpsim.FixedFormat(2, 20), block=32),
    fpsim.BlockFormat(fpsim.FixedFormat(2, 21), block=32),
    fpsim.BlockFormat(fpsim.FixedFormat(4, 4), block=32, scale_min=-20, scale_max=20)]


def _fixed_blocks(rng, t):
    """One block of 32 float32 values with largest magnitude 1.5 * 2**t: exact ties of the
    grids a few binades below it, values that underflow float32 once scaled, float32 subnormals,
    signed zeros and values at the word's range."""
    b = np.empty(32)
    b[0] = 1.5 * 2.0 ** t if t < 127 else np.finfo(np.float32).max
    b[1:5] = [2.0 ** -149, -2.0 ** -149, -0.0, 0.0]
    j = rng.integers(2, 24, 20)
    k = rng.integers(0, 2 ** 8, 20)
    b[5:25] = (k + 0.5) * 2.0 ** (t - j) * rng.choice([-1, 1], 20)
    b[25:] = rng.standard_normal(7) * 2.0 ** (t - rng.integers(0, 60, 7))
    with np.errstate(under="ignore", over="ignore"):
        return b.astype(np.float32)


@pytest.mark.parametrize("f", FIXED_LANE_FORMATS, ids=str)
def test_fixed_elements_in_float32_lanes_match_the_exact_reference(f):
    """Blocks whose largest magnitude sweeps every float32 binade, so that the scaled grid's
    quantum 2**q crosses both ends of the lanes' range (q = -127 and 127 - top) and the
    clamped scale exponents; NaN and Inf blocks last."""
    f = fpsim.format(f) if isinstance(f, str) else f
    rng = np.random.default_rng(11)
    blocks = [_fixed_blocks(rng, t) for t in range(-149, 128)]
    nan_block = _fixed_blocks(rng, 3)
    nan_block[7] = np.nan
    inf_block = _fixed_blocks(rng, 3)
    inf_block[9] = -np.inf
    blocks += [nan_block, inf_block]
    for b in blocks:
        if f.block is None:                  # one scale for the whole tensor: one call a block
            got = fpsim.quantize(b, f)
        else:
            got = fpsim.quantize(b[None], f, axis=-1)[0]
        assert got.dtype == np.float32
        want = quantize_block_ref([float(v) for v in b], f)
        for xi, g, w in zip(b, got, want):
            assert (g == w and math.copysign(1, g) == math.copysign(1, w)) or \
                (math.isnan(g) and math.isnan(w)), (str(f), float(xi), float(g), w)


def test_float32_runs_outside_the_lanes_scale_range_take_the_exact_path():
    """Scales from -140 to 140: blocks of float32 subnormals get s below lanes32's lowest
    (2**-s would not be a float32 value), huge blocks s above its highest; both must round as
    the exact reference does, next to blocks inside the range."""
    f = fpsim.BlockFormat(fpsim.format("e5m2"), block=32, scale_min=-140, scale_max=140)
    rng = np.random.default_rng(9)
    x = rng.standard_normal((6, 32)) * np.exp2([[-146], [-140], [-120], [0], [110], [125]])
    x = x.astype(np.float32)
    got = fpsim.quantize(x, f, axis=-1)
    for row, g in zip(x, got):
        want = quantize_block_ref([float(v) for v in row], f)
        assert np.array_equal(g.astype(np.float64), np.array(want)), (row[:2], g[:2], want[:2])
