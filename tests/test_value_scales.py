"""Block formats whose scale is a value of a float format (issue 14: NVFP4's UE4M3 scales,
DeepSeek-V3's float32 tile scales) against an exact-rational reference written here: every
element and every scale of random and adversarial tensors."""

import math
from fractions import Fraction

import numpy as np
import pytest

import fpsim
from fpsim.formats import BlockFormat, FloatFormat
from reference_arith import round_exact


def saturating(f):
    return FloatFormat(f.exp_bits, f.man_bits, f.bias, f.subnormals, f.specials, saturate=True)


def reference_blocks(blocks, el, sf, mode):
    """For each block (a list of floats): (scale, values).  S = amax / el.max rounded to
    nearest-even into sf (saturating), at least sf's smallest positive value; 1 for an all-zero
    block; NaN (and NaN values) for a block with a NaN or an Inf.  Each value: x / S rounded in
    ``mode`` into el (saturating), times S."""
    out = []
    for blk in blocks:
        if any(not math.isfinite(v) for v in blk):
            out.append((math.nan, [math.nan] * len(blk)))
            continue
        amax = max(abs(Fraction(v)) for v in blk)
        if amax == 0:
            s = 1.0
        else:
            s = round_exact(amax / Fraction(el.max), False, saturating(sf), "rne")
            s = s if s > 0 else sf.min_subnormal
        vals = []
        for v in blk:
            q = Fraction(v) / Fraction(s)
            e = round_exact(abs(q), q < 0 or (q == 0 and math.copysign(1, v) < 0),
                            saturating(el), mode)
            vals.append(e * s)
        out.append((s, vals))
    return out


def adversarial_rows(rng, rows, n, el, sf):
    """Random rows plus: an all-zero block, one huge element among tiny ones, a NaN, an Inf,
    a block in the subnormal range of the scale, and exact ties of the element grid."""
    x = rng.standard_normal((rows, n)) * 2.0 ** rng.integers(-20, 20, (rows, 1))
    x[0] = 0.0
    x[1] = 1e-6
    x[1, 3] = 1e6
    x[2, 5] = np.nan
    x[3, 1] = -np.inf
    x[4] = rng.standard_normal(n) * sf.min_subnormal * el.max / 4     # scale underflows
    x[5] = rng.standard_normal(n) * sf.max * el.max * 4              # scale saturates
    grid = el.values()
    grid = grid[np.isfinite(grid) & (grid >= 0)]
    mids = (grid[1:] + grid[:-1]) / 2                                # ties before scaling
    x[6] = np.resize(np.concatenate([[el.max], mids]), n)            # amax / el.max = 1
    x[6, 1::2] *= -1
    return x


FORMATS = {
    "nvfp4_like": (BlockFormat(fpsim.format("float4_e2m1fn"), 16,
                               scale_format=fpsim.format("float8_e4m3fn")), -1),
    "e4m3_float32_runs": (BlockFormat(fpsim.format("float8_e4m3fn"), 8,
                                      scale_format=fpsim.format("float32")), -1),
    "e5m2_bf16_axis0": (BlockFormat(fpsim.format("float8_e5m2"), 4,
                                    scale_format=fpsim.format("bfloat16")), 0),
}


@pytest.mark.parametrize("mode", ["rne", "rtz", "rup"])
@pytest.mark.parametrize("name", sorted(FORMATS))
def test_value_scaled_runs_against_fractions(name, mode):
    f, axis = FORMATS[name]
    rng = np.random.default_rng(len(name))
    x = adversarial_rows(rng, 8, 40, f.element, f.scale_format)
    if axis == 0:
        x = x.T.copy()
    got = fpsim.quantize(x, f, rounding=mode, axis=axis)
    codes = fpsim.encode(x, f, rounding=mode, axis=axis)
    scales = fpsim.decode(codes[1], f.scale_format, dtype=np.float64)
    rows = np.moveaxis(x, axis, -1)
    grows, srows = np.moveaxis(got, axis, -1), np.moveaxis(scales, axis, -1)
    n = f.block
    for r in range(rows.shape[0]):
        blocks = [list(rows[r, b:b + n]) for b in range(0, rows.shape[1], n)]
        for b, (s, vals) in enumerate(reference_blocks(blocks, f.element, f.scale_format, mode)):
            gv = grows[r, b * n:(b + 1) * n]
            if math.isnan(s):
                assert np.isnan(srows[r, b]) and np.isnan(gv).all(), (r, b)
                continue
            assert srows[r, b] == s, (r, b, srows[r, b], s)
            assert np.array_equal(gv, np.array(vals)), (r, b, gv, vals)
            assert np.array_equal(np.signbit(gv), np.signbit(np.array(vals)))
    assert np.array_equal(fpsim.decode(codes, f, axis=axis), got, equal_nan=True)


def test_value_scaled_tiles_against_fractions():
    """4 x 4 tiles with float32 scales (DeepSeek-V3's 128 x 128 weight blocks, shrunk)."""
    f = BlockFormat(fpsim.format("float8_e4m3fn"), (4, 4), scale_format=fpsim.format("float32"))
    rng = np.random.default_rng(50)
    x = rng.standard_normal((10, 9)) * 2.0 ** rng.integers(-30, 30, (10, 1))
    x[:4, :4] = 0.0
    x[4, 8] = 1e30
    got = fpsim.quantize(x, f)
    for ti in range(0, 10, 4):
        for tj in range(0, 9, 4):
            blk = x[ti:ti + 4, tj:tj + 4]
            (s, vals), = reference_blocks([list(blk.reshape(-1))], f.element, f.scale_format,
                                          "rne")
            assert np.array_equal(got[ti:ti + 4, tj:tj + 4].reshape(-1), np.array(vals))


def test_value_scales_errors_and_gemm():
    with pytest.raises(ValueError, match="scale_format"):
        BlockFormat(fpsim.format("float8_e4m3fn"), 16, scale_format=fpsim.format("float64"))
    with pytest.raises(ValueError, match="float element"):
        BlockFormat(fpsim.FixedFormat(8, 4), 16, scale_format=fpsim.format("float32"))
    f = BlockFormat(fpsim.format("float4_e2m1fn"), 16, scale_format=fpsim.format("float8_e4m3fn"))
    with pytest.raises(ValueError, match="value scales"):
        fpsim.block_exponents(np.ones(16), f)
    rng = np.random.default_rng(51)
    a = fpsim.quantize(rng.standard_normal((3, 32)), f, axis=-1)
    b = fpsim.quantize(rng.standard_normal((32, 2)), f, axis=0)
    got = fpsim.gemm(a, b, a_format=f, b_format=f, acc=fpsim.KulischAccumulator("float32"))
    exact = [[float(sum(Fraction(a[i, k]) * Fraction(b[k, j]) for k in range(32)))
              for j in range(2)] for i in range(3)]
    assert np.array_equal(got, np.array(exact, np.float32))     # one rounding of the exact sum
