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
from test_stochastic import words as seeded_words


def saturating(f):
    return FloatFormat(f.exp_bits, f.man_bits, f.bias, f.subnormals, f.specials, saturate=True)


def reference_blocks(blocks, el, sf, mode, words=None, sr_bits=None):
    """For each block (a list of floats): (scale, values).  S = amax / el.max rounded to
    nearest-even into sf (saturating), at least sf's smallest positive value; 1 for an all-zero
    block; NaN (and NaN values) for a block with a NaN or an Inf.  Each value: x / S rounded in
    ``mode`` into el (saturating), times S; stochastic modes: ``words``, one list per block
    (each element's 64-bit random word)."""
    out = []
    for bi, blk in enumerate(blocks):
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
        for j, v in enumerate(blk):
            q = Fraction(v) / Fraction(s)
            e = round_exact(abs(q), q < 0 or (q == 0 and math.copysign(1, v) < 0),
                            saturating(el), mode, u=0 if words is None else int(words[bi][j]),
                            sr_bits=sr_bits)
            vals.append(math.nan if e is None else e * s)   # NaN: the reference leaves
            # exact sr of a quotient that is not a float64 to a second word (not compared)
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
    with pytest.raises(ValueError, match=r"within 2\*\*-170 \.\. 2\*\*200"):  # the exact path's
        BlockFormat(FloatFormat(10, 5, 870), 2, scale_format=fpsim.format("float32"))  # clamps
    with pytest.raises(ValueError, match="largest exponent 410"):
        BlockFormat(FloatFormat(9, 5, 100), 2, scale_format=fpsim.format("float32"))
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


def fast_path_rows(rng, el, sf, n=16):
    """Rows of blocks whose quotients x / S sit on the element grid's midpoints and points,
    one float64 step either side of them, and 48-bit values (float32 products, as NVFP4's
    per-tensor scale makes); each block's first element sets amax = el.max * S exactly, S a
    value of sf.  The cases the fast path's proof (kernels.scaled) is about."""
    grid = el.values()
    grid = grid[np.isfinite(grid) & (grid > 0)]
    points = np.concatenate([(grid[1:] + grid[:-1]) / 2, grid[:-1]])   # midpoints and values
    if sf.bits <= 16:
        svals = sf.values()
        svals = svals[np.isfinite(svals) & (svals > 0)]
        svals = svals[len(svals) // 4: 3 * len(svals) // 4]
    else:                                  # float32 scales: random 24-bit values
        svals = (rng.uniform(1, 2, 64) * 2.0 ** rng.integers(-40, 40, 64)).astype(np.float32)
    rows = []
    for _ in range(12):
        s = float(rng.choice(svals))
        t = rng.choice(points, n - 1) * s
        kind = rng.integers(0, 4)
        if kind == 1:
            t = np.nextafter(t, np.inf)
        elif kind == 2:
            t = np.nextafter(t, -np.inf)
        elif kind == 3:                     # 48 bits: a float32 times a float32
            t = (t.astype(np.float32).astype(np.float64)
                 * rng.uniform(0.5, 1.0, n - 1).astype(np.float32)).astype(np.float64)
        t *= rng.choice([-1.0, 1.0], n - 1)
        rows.append(np.concatenate([[el.max * s], t]))
    return np.array(rows)


def check_runs(x, f, mode, seed=None, sr_bits=None):
    got = fpsim.quantize(x, f, rounding=mode, seed=seed, sr_bits=sr_bits, axis=-1)
    scales = fpsim.decode(fpsim.encode(x, f, rounding=mode, seed=seed, sr_bits=sr_bits)[1],
                          f.scale_format, dtype=np.float64)
    n = f.block
    us = seeded_words(seed, x.size).reshape(x.shape) if seed is not None else np.zeros(x.shape)
    compared = 0
    for r in range(x.shape[0]):
        cuts = range(0, x.shape[1], n)
        ref = reference_blocks([[float(v) for v in x[r, b:b + n]] for b in cuts], f.element,
                               f.scale_format,
                               mode, [us[r, b:b + n] for b in cuts], sr_bits)
        for b, (s, vals) in enumerate(ref):
            gv = got[r, b * n:(b + 1) * n]
            if math.isnan(s):
                assert np.isnan(scales[r, b]) and np.isnan(gv).all(), (r, b)
                compared += gv.size
                continue
            assert scales[r, b] == s, (r, b, scales[r, b], s)
            want = np.array(vals)
            known = ~np.isnan(want)
            compared += known.sum()
            assert np.array_equal(gv[known], want[known]) and \
                np.array_equal(np.signbit(gv[known]), np.signbit(want[known])), \
                (mode, sr_bits, r, b, x[r, b * n:(b + 1) * n], gv, vals)
    if mode == "sr" and sr_bits is None:
        # where the reference cannot say: the division unit's exact sr (checked against the
        # reference in test_arith) on the same words - x / S, element i of the C order word i
        s_el = np.repeat(scales, n, axis=1)[:, :x.shape[1]]
        ok = ~np.isnan(s_el)
        div = fpsim.div(np.where(ok, x, 0.0), np.where(ok, s_el, 1.0), saturating(f.element),
                        rounding="sr", seed=seed)
        assert np.array_equal(got[ok], (div * s_el)[ok])
    return compared


@pytest.mark.parametrize("mode", ["rne", "rna", "rtz", "rup", "rdn", "rto"])
@pytest.mark.parametrize("name", ["nvfp4_like", "e4m3_float32_runs"])
def test_fast_quotients_at_ties_and_their_neighbours(name, mode):
    """The fast path rounds the float64 quotient: exact ties of the element grid, the float64
    neighbours of every grid point and midpoint, and 48-bit inputs, in every deterministic
    mode, against the exact-rational reference."""
    f = FORMATS[name][0]
    x = fast_path_rows(np.random.default_rng(7), f.element, f.scale_format, f.block)
    assert check_runs(x, f, mode) == x.size


@pytest.mark.parametrize("name, sr_bits", [("nvfp4_like", None), ("nvfp4_like", 2),
                                           ("nvfp4_like", 47), ("e4m3_float32_runs", 25)])
def test_value_scaled_stochastic_rounding_on_the_element_words(name, sr_bits):
    """Stochastic rounding, exact and with r bits up to the largest sr_bits allowed (52 minus the
    value container's man_bits, which is also the fast path's limit man_bits + r + b <= 52),
    decides as the reference does on each element's word (exact sr: where the reference can
    say, see reference_blocks)."""
    f = FORMATS[name][0]
    rng = np.random.default_rng(8)
    x = np.concatenate([fast_path_rows(rng, f.element, f.scale_format, f.block),
                        adversarial_rows(rng, 8, f.block, f.element, f.scale_format)])
    compared = check_runs(x, f, "sr", seed=11, sr_bits=sr_bits)
    assert compared == x.size if sr_bits else compared >= x.size // 5


@pytest.mark.parametrize("mode", ["rne", "rup", "rtz"])
def test_quotients_float64_cannot_hold_take_the_exact_path(mode):
    """x / S below float64's normal range (a subnormal x beside a large amax) or zero: the fast
    lanes flag these for the exact path (kernels.scaled.lane)."""
    f = FORMATS["nvfp4_like"][0]
    x = np.zeros((3, 16))
    x[:, 0] = [448.0 * 6, 1e300, 5.0]
    x[0, 1:5] = [5e-324, -5e-324, 1e-310, -0.0]
    x[1, 1:5] = [1e-20, -1e-300, 2.0 ** -1000, 0.0]
    x[2, 1:5] = [2.0 ** -1074, 1e-308, -1.0, 3.0]
    assert check_runs(x, f, mode) == x.size
    if mode == "rup":                     # rounded up: the element's smallest subnormal
        got = fpsim.quantize(x, f, rounding="rup")
        assert got[0, 1] > 0 and got[0, 1] == 0.5 * 448.0


def test_exact_sr_on_the_boundary_of_the_fast_lanes():
    """Exact sr decides 'up' by R + rem >= 2**sh, or R + rem == 2**sh - 1 and a Bernoulli draw
    of the tail: the fast lanes must hand that boundary to the exact path.  Each row is a block
    [amax, x] with S = 3 * 2**-100 (float32 scales, float32 elements: sh = 29) and x built so that
    the 53-bit truncation T of x / S meets the boundary for x's own random word; the result must
    be the division unit's exact sr of x / S (test_arith checks that unit)."""
    from fpsim.formats import FloatFormat as FF
    el = fpsim.format("float32")
    f = BlockFormat(el, 2, scale_format=fpsim.format("float32"))
    s = Fraction(3, 2 ** 100)
    seed, rows = 5, 96
    us = seeded_words(seed, 2 * rows)
    rng = np.random.default_rng(9)
    x = np.zeros((rows, 2))
    x[:, 0] = float(Fraction(el.max) * s)                  # amax / el.max = S exactly
    for r in range(rows):
        target = 2 ** 29 - 1 - int(us[2 * r + 1] >> np.uint64(35))
        sig = 2 ** 52 + int(rng.integers(0, 2 ** 21)) * 2 ** 29 + target  # 3 * sig < 2**54:
        t0 = Fraction(sig, 2 ** 52) * Fraction(2) ** int(rng.integers(-60, 60))  # (T, T + ulp)
        c0 = float(t0 * s)                               # * S holds 1.5 float64 steps
        for c in (c0, np.nextafter(c0, np.inf), np.nextafter(c0, -np.inf)):
            q = Fraction(c) / s                          # the float64 whose quotient
            e = q.numerator.bit_length() - q.denominator.bit_length()   # truncates to T,
            e -= (Fraction(2) ** e > q)                                 # with a tail
            t = math.floor(q / Fraction(2) ** (e - 52))
            if t % 2 ** 29 == target and q != t * Fraction(2) ** (e - 52):
                break
        else:
            raise AssertionError("no boundary input found")
        x[r, 1] = c * (-1) ** r
    got = fpsim.quantize(x, f, rounding="sr", seed=seed)
    div = fpsim.div(x, float(s), FF(8, 23, 127, saturate=True), rounding="sr", seed=seed)
    assert np.array_equal(got[:, 1], div[:, 1] * float(s))
    ups = np.abs(got[:, 1]) > np.abs(x[:, 1])
    assert 0 < ups.sum() < rows                  # the Bernoulli draws went both ways


def test_fast_quotient_condition():
    """The condition of kernels.scaled.fast_quotient: deterministic modes up to man_bits + b =
    51, r-bit stochastic rounding up to man_bits + r + b = 52, exact sr always (its lanes hand
    the undecidable elements to the exact path)."""
    from fpsim.kernels import rounding as k
    from fpsim.kernels.scaled import fast_quotient
    assert fast_quotient(23, -126, 24, k.RNE, 0) and fast_quotient(27, -126, 24, k.RTZ, 0)
    assert not fast_quotient(28, -126, 24, k.RNE, 0)
    assert fast_quotient(1, 0, 4, k.SRB, 47) and not fast_quotient(1, 0, 4, k.SRB, 48)
    assert fast_quotient(1, 0, 4, k.SR, 0) and not fast_quotient(51, -126, 4, k.SR, 0)


@pytest.mark.parametrize("rounding, sr_bits", [("rne", None), ("rtz", None), ("sr", None),
                                               ("sr", 20)])
def test_value_scaled_tiles_of_a_batch_in_every_kind_of_rounding(rounding, sr_bits):
    """4 x 4 tiles over a (3, 7, 9) batch (edge tiles smaller), float32 scales: each scale
    against the exact-rational reference, each element against the division unit (x / S into
    the element format, element i of the C order on word i; test_arith checks that unit)."""
    f = BlockFormat(fpsim.format("float8_e4m3fn"), (4, 4), scale_format=fpsim.format("float32"))
    rng = np.random.default_rng(52)
    x = rng.standard_normal((3, 7, 9)) * 2.0 ** rng.integers(-30, 30, (3, 7, 1))
    x[1, :4, :4] = 0.0
    x[2, 5, 8] = 1e-30
    got = fpsim.quantize(x, f, rounding=rounding, seed=3, sr_bits=sr_bits)
    scales = fpsim.decode(fpsim.encode(x, f, rounding=rounding, seed=3, sr_bits=sr_bits)[1],
                          f.scale_format, dtype=np.float64)
    s_el = np.repeat(np.repeat(scales, 4, axis=1), 4, axis=2)[:, :7, :9]
    for b in range(3):
        for ti in range(0, 7, 4):
            for tj in range(0, 9, 4):
                blk = list(x[b, ti:ti + 4, tj:tj + 4].reshape(-1))
                (s, _), = reference_blocks([blk], f.element, f.scale_format, "rne")
                assert scales[b, ti // 4, tj // 4] == s
    div = fpsim.div(x, s_el, saturating(f.element), rounding=rounding, seed=3, sr_bits=sr_bits)
    assert np.array_equal(got, div * s_el)


def test_exact_sr_of_quotients_far_below_the_element_grid():
    """Exact sr of quotients more than 62 bits below E2M1's quantum at their exponent (below
    2**-11): exact ones follow rounding._sr_up_small (trailing zeros stripped, then u's top
    bits), inexact ones arith.round_sr_tail (u's top bits against R < sig); the lanes decide
    both from u's top bits and hand the all-zero cases to the exact path.  Scales 1, 1.5 and
    1.125 (exact and inexact quotients), 2**14 elements so that some round up; against the
    reference where it can say and the division unit everywhere (check_runs)."""
    f = FORMATS["nvfp4_like"][0]
    rng = np.random.default_rng(10)
    rows = 1024
    x = np.empty((rows, 16))
    scale = rng.choice([1.0, 1.5, 1.125], rows)
    x[:, 0] = 6.0 * scale                                           # S = scale exactly
    k = rng.integers(12, 14, (rows, 15)).astype(float)
    x[:, 1:] = rng.choice([1.0, 3.0, 1.5, 0.75], (rows, 15)) * 2.0 ** -k * scale[:, None]
    x[rows // 2:, 1:] *= 1.0 + rng.random((rows // 2, 15))         # inexact quotients
    x[::7, 1:] *= 2.0 ** -rng.integers(1, 60, (len(x[::7]), 15))   # far further down
    x[:, 1:] *= rng.choice([-1.0, 1.0], (rows, 15))
    compared = check_runs(x, f, "sr", seed=12)
    assert compared >= x.size // 2
    got = fpsim.quantize(x, f, rounding="sr", seed=12)
    assert (got[:, 1:] != 0).sum() >= 3                             # some went up


F32_LANES = dict(FORMATS,      # 11 fraction bits with 11- and 12-bit scales: 22 and 23 bits
                 e4m11_f16=(BlockFormat(FloatFormat(4, 11), 8, scale_format=fpsim.format(
                     "float16")), -1),
                 e4m11_e5m11=(BlockFormat(FloatFormat(4, 11), 8, scale_format=FloatFormat(
                     5, 11)), -1))


@pytest.mark.parametrize("name", ["nvfp4_like", "e5m2_bf16_axis0", "e4m11_f16", "e4m11_e5m11"])
def test_float32_input_in_float32_lanes_against_fractions(name):
    """float32 input divided and rounded in float32 lanes (kernels.scaled.quotient_lanes32):
    quotients on the element grid's points and midpoints, the float32 neighbours of those
    inputs, quotients float32 cannot hold normally (a subnormal x beside a large amax: the exact
    path) and signed zeros, against the exact-rational reference; on both sides of the
    condition's m + b <= 22 (e4m11 elements with float16 scales: float32 lanes; with 12-bit
    scales: float64 lanes)."""
    f, axis = F32_LANES[name]
    rng = np.random.default_rng(12)
    x = fast_path_rows(rng, f.element, f.scale_format, f.block).astype(np.float32)
    up, down = np.nextafter(x, np.float32(np.inf)), np.nextafter(x, np.float32(-np.inf))
    up[:, 0], down[:, 0] = x[:, 0], x[:, 0]                 # the same amax, so the same scale
    tiny = np.zeros((4, f.block), np.float32)     # beside amax in each block's first element
    tiny[:, 0] = [f.element.max * 2.0 ** 100, f.element.max, f.element.max * 2.0 ** 100,
                  f.element.max * 2.0 ** -100]
    for row, vals in zip(tiny, ([1e-45, -1e-45, 3e-39], [-0.0, 2.0 ** -126, 1e-45],
                                [-2e-40, 0.0, -0.0], [2.0 ** -149, -2.0 ** -140, 2.0 ** -127])):
        row[1:1 + min(3, f.block - 1)] = vals[:f.block - 1]
    x = np.concatenate([x, up, down, tiny])
    if axis == 0:
        x = np.ascontiguousarray(x.T)
        got_t = fpsim.quantize(x, f, axis=0)
        assert got_t.dtype == np.float32
        x, f32 = x.T, got_t.T
        ref = [w for r in range(x.shape[0]) for b in range(0, x.shape[1], f.block)
               for w in reference_blocks([[float(v) for v in x[r, b:b + f.block]]],
                                         f.element, f.scale_format, "rne")[0][1]]
        assert np.array_equal(f32.reshape(-1).astype(np.float64), np.array(ref)) and \
            np.array_equal(np.signbit(f32.reshape(-1)), np.signbit(ref))
        return
    assert check_runs(x, f, "rne") == x.size
