"""Scaling policies of issue 14: Transformer Engine's delayed scaling against a step-by-step
reference of the amax history written here, and the modern recipes' settings against their
sources."""

import math

import ml_dtypes
import numpy as np
import pytest

import fpsim
from fpsim import nn
from fpsim.nn import recipes


def delayed_reference(tensors, fmax, history, algo, margin, dtype):
    """Per step: (values, scale used).  The scale of step t comes from the amaxes of steps
    t-history..t-1 (max or the most recent); 1 before any, kept when that amax is 0 or not
    finite; values = x * s rounded to nearest-even by ml_dtypes and clipped to +-fmax."""
    out, amaxes, s = [], [], 1.0
    for x in tensors:
        y = np.clip(x.astype(np.float64) * s, -fmax, fmax)   # saturating cast
        out.append(((y.astype(dtype).astype(np.float64)), s))
        amaxes.append(float(np.abs(x).max()))
        window = amaxes[-history:]
        a = max(window) if algo == "max" else window[-1]
        if 0 < a < math.inf:
            s = float(np.float32(fmax / a / 2.0 ** margin))
    return out


@pytest.mark.parametrize("fmt, dtype, history, algo, margin", [
    ("float8_e4m3fn", ml_dtypes.float8_e4m3fn, 3, "max", 0),
    ("float8_e5m2", ml_dtypes.float8_e5m2, 1, "max", 1),
    ("float8_e4m3fn", ml_dtypes.float8_e4m3fn, 4, "most_recent", 2)])
def test_delayed_scaling_follows_the_amax_history(fmt, dtype, history, algo, margin):
    """Tensors whose amax rises (stale scales overflow: saturation), falls, hits zero and holds
    Inf-free outliers; every step's values and scale against the reference."""
    rng = np.random.default_rng(30)
    mags = [1.0, 8.0, 64.0, 0.5, 0.0, 3.0, 1e-3, 1e-3, 200.0, 1.0]
    tensors = [(rng.standard_normal(50) * m).astype(np.float32) for m in mags]
    fmax = float(ml_dtypes.finfo(dtype).max)
    want = delayed_reference(tensors, fmax, history, algo, margin, dtype)
    q = nn.DelayedScaling(fmt, history, algo, margin).make()
    for step, (x, (values, s)) in enumerate(zip(tensors, want)):
        got, f, scale = q(x, -1, "forward", step)
        q.forget()                                         # the next step's tensor is new
        assert np.array_equal(got.astype(np.float64), values), step
        assert scale == float(np.float32(1.0 / s)) and f == fpsim.format(fmt), step


def test_delayed_scaling_uses_one_history_entry_per_tensor_and_step():
    """A tensor read by two GEMMs of a step (weights: forward and backward-data) is rounded
    once and counted once."""
    q = nn.DelayedScaling(history=2).make()
    w = np.full(3, 2.0, np.float32)
    q(w, -1, "forward", 0)
    q(w, 0, "backward_data", 0)
    assert q.amaxes == [2.0]
    with pytest.raises(ValueError, match="algo"):
        nn.DelayedScaling(algo="mean")
    with pytest.raises(ValueError, match="history"):
        nn.DelayedScaling(history=0)


def test_te_fp8_delayed_recipe():
    """Transformer Engine's DelayedScaling with the issue's settings: E4M3 weights and
    activations, E5M2 errors (HYBRID), history 16, max, margin 0; float32 accumulation."""
    r = recipes.get("te_fp8_delayed")
    for role, fmt in (("weights", "float8_e4m3fn"), ("activations", "float8_e4m3fn"),
                      ("errors", "float8_e5m2")):
        sch = getattr(r, role)
        assert isinstance(sch, nn.DelayedScaling) and fpsim.format(sch.fmt) == fpsim.format(fmt)
        assert (sch.history, sch.algo, sch.margin) == (16, "max", 0)
    assert all(r.acc[g] == fpsim.Accumulator(fpsim.FloatFormat(8, 23)) for g in r.acc)
    assert r.master is None and r.gradients is None


@pytest.mark.parametrize("name, elements", [("mxfp8_ocp", ((4, 3), (4, 3), (5, 2))),
                                            ("mxfp6_ocp", ((3, 2), (3, 2), (3, 2)))])
def test_ocp_mx_recipes(name, elements):
    """OCP MX v1.0: blocks of 32 with an E8M0 scale (exponents -127..127 and a NaN code)."""
    r = recipes.get(name)
    for role, (e, m) in zip(("weights", "activations", "errors"), elements):
        f = getattr(r, role).fmt
        assert (f.element.exp_bits, f.element.man_bits, f.block) == (e, m, 32)
        assert (f.scale_min, f.scale_max, f.nan_scale) == (-127, 127, True)
    assert all(r.acc[g] == fpsim.Accumulator("float32") for g in r.acc)


def test_nvfp4_two_levels_against_fractions():
    """The per-tensor level s = float32(6 * 448 / amax), then blocks of 16 of x * s with UE4M3
    scales = amax_block / 6 rounded to nearest-even (tests/test_value_scales.py's reference),
    elements rounded to E2M1; the GEMM scale is float32(1 / s).  Block scales then fit E4M3."""
    from fractions import Fraction
    from test_value_scales import reference_blocks
    rng = np.random.default_rng(60)
    x = (rng.standard_normal((4, 48)) * 2.0 ** rng.integers(-8, 8, (4, 1))).astype(np.float32)
    x[1, :16] = 0.0
    x[2, 3] = 300.0
    got, f, inv = nn.NVFP4Scaling().make()(x, -1, "forward", 0)
    amax = float(np.abs(x).max())
    s = float(np.float32(6 * 448 / amax))
    assert inv == float(np.float32(1 / s)) and f == fpsim.format("nvfp4")
    el, sf = fpsim.format("float4_e2m1fn"), fpsim.format("float8_e4m3fn")
    for r in range(4):
        xs = [float(Fraction(float(v)) * Fraction(s)) for v in x[r].astype(np.float64)]
        blocks = [xs[b:b + 16] for b in range(0, 48, 16)]
        want = [v for _, vals in reference_blocks(blocks, el, sf, "rne") for v in vals]
        scales = [sc for sc, _ in reference_blocks(blocks, el, sf, "rne")]
        assert all(sc <= 448 for sc in scales)                    # the point of the 2nd level
        assert np.array_equal(got[r].astype(np.float64), np.array(want)), r


def test_random_hadamard_is_orthogonal_and_leaves_products_exact():
    from fpsim.scaling import hadamard, random_hadamard
    h = hadamard(16)
    assert np.array_equal(h @ h.T, 16 * np.eye(16))
    rng = np.random.default_rng(61)
    a = rng.standard_normal((37, 3)).astype(np.float32)
    b = rng.standard_normal((37, 5)).astype(np.float32)
    ta, tb = random_hadamard(a, 9), random_hadamard(b, 9)
    assert ta.shape == (48, 3)
    t = random_hadamard(np.eye(16), 9)                            # the transform itself
    assert np.array_equal(t.T @ t, np.eye(16))                    # entries +-1/4: exact
    assert np.allclose(ta.T @ tb, a.astype(np.float64).T @ b, rtol=1e-12, atol=1e-12)
    assert not np.array_equal(random_hadamard(np.eye(16), 9), random_hadamard(np.eye(16), 10))
    with pytest.raises(ValueError, match="power of two"):
        hadamard(12)


def test_rht_changes_only_the_rounding_of_the_weight_gradient():
    """Under fp32 arithmetic (no rounding of operands) a recipe with the RHT computes the same
    weight gradient up to float32 rounding; under NVFP4 it differs (the transformed tensors are
    what gets quantized)."""
    rng = np.random.default_rng(62)
    dy = rng.standard_normal((40, 6)).astype(np.float32)
    x = rng.standard_normal((40, 5)).astype(np.float32)
    plain = nn.Datapath(nn.Recipe("a", acc=fpsim.Accumulator("float32")), 0)
    rht = nn.Datapath(nn.Recipe("b", acc=fpsim.Accumulator("float32"), rht_seed=4), 0)
    g0, g1 = plain.linear_backward_weight(dy, x), rht.linear_backward_weight(dy, x)
    assert np.allclose(g0, g1, rtol=1e-5, atol=1e-5) and not np.array_equal(g0, g1)
    with pytest.raises(ValueError, match="rht_seed"):
        nn.Recipe("c", rht_seed=-1)


def test_nvfp4_nvidia2025_recipe():
    """NVIDIA 2025: NVFP4 GEMM inputs, 16 x 16 weight blocks, RHT on the weight-gradient
    inputs, stochastic rounding of the gradients, the last layers in BF16, FP32 accumulation."""
    r = recipes.get("nvfp4_nvidia2025")
    assert r.weights.fmt.block == (16, 16) and r.activations.fmt.block == 16
    assert r.errors.rounding == "sr" and r.weights.rounding == "rne"
    for f in (r.weights.fmt, r.activations.fmt):
        assert f.element == fpsim.format("float4_e2m1fn")
        assert f.scale_format == fpsim.format("float8_e4m3fn")
    assert r.rht_seed is not None and r.keep == ("last",)
    assert fpsim.format(r.keep_recipe.weights.fmt) == fpsim.format("bfloat16")
    assert all(r.acc[g] == fpsim.Accumulator("float32") for g in r.acc)


def test_tile_scaling_elements_and_scales_against_fractions():
    """1 x t tiles along the reduction axis and t x t blocks: elements and float32 scales as the
    value-scaled block reference says; a block's scale is repeated across the other axis."""
    from test_value_scales import reference_blocks
    rng = np.random.default_rng(70)
    x = (rng.standard_normal((6, 10)) * 2.0 ** rng.integers(-6, 6, (6, 1))).astype(np.float32)
    el, f32 = fpsim.format("float8_e4m3fn"), fpsim.format("float32")
    e, f, s = nn.TileScaling(tile=4).make()(x, -1, "forward", 0)
    assert f == el and s.shape == (6, 3)
    for r in range(6):
        blocks = [list(x[r, b:b + 4].astype(np.float64)) for b in range(0, 10, 4)]
        for b, (sc, vals) in enumerate(reference_blocks(blocks, el, f32, "rne")):
            assert s[r, b] == sc
            assert np.array_equal(e[r, 4 * b:4 * b + 4].astype(np.float64) * sc, np.array(vals))
    e2, _, s2 = nn.TileScaling(tile=(4, 4)).make()(x, 0, "backward_data", 0)
    assert s2.shape == (2, 10)
    blk = list(x[:4, :4].astype(np.float64).reshape(-1))
    (sc, vals), = reference_blocks([blk], el, f32, "rne")
    assert (s2[0, :4] == sc).all()
    assert np.array_equal((e2[:4, :4].astype(np.float64) * sc).reshape(-1), vals)
    with pytest.raises(ValueError, match="square"):
        nn.TileScaling(tile=(4, 8))


def test_dequantization_at_promotion_matches_the_chunk_loop():
    """gemm(..., acc=Accumulator(float32, chunk=t, inner=engine), dequant=(sa, sb)): each
    chunk on the engine from zero, times float32(sa * sb), rounded to float32, added."""
    from fpsim.gemm import gemm_values
    rng = np.random.default_rng(71)
    e4 = fpsim.format("float8_e4m3fn")
    eng = fpsim.engine("hopper", "wgmma.m64n8k32.f32.e4m3.e4m3")
    A = fpsim.quantize(rng.standard_normal((5, 200)), e4)
    B = fpsim.quantize(rng.standard_normal((200, 7)), e4)
    sa = np.float32(rng.random((5, 4)) * 3).astype(np.float64)
    sb = np.float32(rng.random((4, 7)) / 3).astype(np.float64)
    acc = fpsim.Accumulator("float32", chunk=64, inner=eng)
    got = gemm_values(A, B, e4, e4, acc=acc, dequant=(sa, sb))
    total = np.zeros((5, 7))
    for c, k0 in enumerate(range(0, 200, 64)):
        part = fpsim.gemm(A[:, k0:k0 + 64], B[k0:k0 + 64], acc=eng).astype(np.float64)
        s = fpsim.mul(sa[:, c][:, None], sb[c][None, :], "float32", dtype=np.float64)
        total = fpsim.add(total, fpsim.mul(part, s, "float32", dtype=np.float64), "float32",
                          dtype=np.float64)
    assert np.array_equal(got, total)
    with pytest.raises(ValueError, match="one per chunk"):
        gemm_values(A, B, e4, e4, acc=acc, dequant=(sa[:, :3], sb))
    with pytest.raises(ValueError, match="promoted accumulator"):
        gemm_values(A, B, e4, e4, acc=eng, dequant=(sa, sb))


def _dequant_units(A, B, sa, sb, inner, t):
    """The promotion with dequantization through the elementwise units, chunk by chunk."""
    f32 = fpsim.format("float32")
    total = np.zeros((A.shape[0], B.shape[1]))
    for c, k0 in enumerate(range(0, A.shape[1], t)):
        part = fpsim.gemm(A[:, k0:k0 + t], B[k0:k0 + t], acc=inner, a_format=f32,
                          b_format=f32).astype(np.float64)
        s = fpsim.mul(sa[:, c][:, None], sb[c][None, :], "float32", dtype=np.float64)
        total = fpsim.add(total, fpsim.mul(part, s, "float32", dtype=np.float64), "float32",
                          dtype=np.float64)
    return total


def _dequant_lanes(monkeypatch, A, B, sa, sb, inner, t):
    """gemm with dequantization, and how many chunks went through kernels.chain.dequant_add."""
    from fpsim.gemm import gemm_values
    from fpsim.kernels import chain
    calls = []
    real = chain.dequant_add
    monkeypatch.setattr(chain, "dequant_add", lambda *a: (calls.append(1), real(*a)))
    f32 = fpsim.format("float32")
    acc = fpsim.Accumulator("float32", chunk=t, inner=inner)
    return gemm_values(A, B, f32, f32, acc=acc, dequant=(sa, sb)), len(calls)


def test_dequantization_in_float32_lanes_at_the_edges(monkeypatch):
    """The promotion step in float32's own arithmetic (kernels.chain.dequant_add: the register
    binary32, scales and chunk sums float32 values) against the units: Inf - Inf (row 0), scale
    products that overflow (row 1) or fall to a subnormal (row 2), Inf * 0 (row 3), a float32
    tie in part * scale (row 4: (1 + 2**-23) * 1.5 rounds to even, 1.5 + 2**-22), cancelling
    chunks (row 5)."""
    rng = np.random.default_rng(73)
    m, k, n, t = 6, 12, 5, 4
    A = rng.standard_normal((m, k)).astype(np.float32).astype(np.float64)
    B = rng.standard_normal((k, n)).astype(np.float32).astype(np.float64)
    sa = np.float32(rng.random((m, 3)) * 3 + 0.5).astype(np.float64)
    sb = np.float32(rng.random((3, n)) / 3 + 0.5).astype(np.float64)
    A[0], A[0, 0], A[0, 4] = 0.0, 1.0, -1.0
    B[0, 3] = B[4, 3] = 2.0 ** 100
    sa[0, :2], sb[:2, 3] = 2.0 ** 30, 1.0                # +2**130 then -2**130: Inf - Inf
    sa[1, 0], sb[0, 2] = 2.0 ** 70, 2.0 ** 70            # 2**140: Inf
    sa[2, 1], sb[1, 0] = 2.0 ** -100, 2.0 ** -40         # 2**-140: a float32 subnormal
    A[3, 5] = np.inf
    sb[1, 4] = 0.0                                       # Inf * 0
    A[4], A[4, 0], B[0, 0] = 0.0, 1.0, 1.0 + 2.0 ** -23
    sa[4, 0], sb[0, 0] = 1.5, 1.0
    A[5, :4], A[5, 4:8], A[5, 8:] = 1.0, -1.0, 0.0
    B[4:8, 1] = B[:4, 1]
    sa[5, 1], sb[1, 1] = sa[5, 0], sb[0, 1]
    for v in (A, B, sa, sb):
        assert np.array_equal(v.astype(np.float32), v)  # every operand a float32 value
    got, calls = _dequant_lanes(monkeypatch, A, B, sa, sb, fpsim.Accumulator("float32"), t)
    assert calls == 3                                    # every chunk in the float32 lanes
    want = _dequant_units(A, B, sa, sb, fpsim.Accumulator("float32"), t)
    assert np.isnan(want[0, 3]) and np.isinf(want[1, 2]) and np.isnan(want[3, 4])
    assert want[4, 0] == 1.5 + 2.0 ** -22 and want[5, 1] == 0.0
    assert 0 < sa[2, 1] * sb[1, 0] < 2.0 ** -126        # the case is there: a subnormal scale
    assert np.array_equal(got, want, equal_nan=True)
    assert not np.signbit(got[np.isnan(got)]).any()      # +NaN, as the units give


def test_dequantization_hands_over_to_the_units_mid_gemm(monkeypatch):
    """Chunk sums of a 31-bit inner register: the first chunk (small integers) is a float32
    value and takes the float32 lanes, the next is not, and the rest go through the units."""
    rng = np.random.default_rng(74)
    A = rng.standard_normal((4, 12)).astype(np.float32).astype(np.float64)
    B = rng.standard_normal((12, 3)).astype(np.float32).astype(np.float64)
    A[:, :4], B[:4] = rng.integers(-8, 8, (4, 4)), rng.integers(-8, 8, (4, 3))
    sa = np.float32(rng.random((4, 3)) + 0.5).astype(np.float64)
    sb = np.float32(rng.random((3, 3)) + 0.5).astype(np.float64)
    inner = fpsim.Accumulator(fpsim.FloatFormat(8, 30, 127))
    got, calls = _dequant_lanes(monkeypatch, A, B, sa, sb, inner, 4)
    assert calls == 1
    assert np.array_equal(got, _dequant_units(A, B, sa, sb, inner, 4))


def test_dequantization_of_engine_chunks_at_the_edges(monkeypatch):
    """Promoted Hopper engine chunks dequantized (the float32 lanes, the chunk sums being
    float32 values) against the loop of engine chunks and units: Inf - Inf (row 0), a scale
    product beyond float32 (row 1), a subnormal one (row 2), a NaN input (row 3), cancelling
    chunks (row 4)."""
    from fpsim.gemm import gemm_values
    rng = np.random.default_rng(75)
    e4 = fpsim.format("float8_e4m3fn")
    eng = fpsim.engine("hopper", "wgmma.m64n8k32.f32.e4m3.e4m3")
    m, k, n, t = 5, 96, 4, 32
    A = fpsim.quantize(rng.standard_normal((m, k)), e4).astype(np.float64)
    B = fpsim.quantize(rng.standard_normal((k, n)), e4).astype(np.float64)
    sa = np.float32(rng.random((m, 3)) * 3 + 0.5).astype(np.float64)
    sb = np.float32(rng.random((3, n)) / 3 + 0.5).astype(np.float64)
    A[0], A[0, 0], A[0, 32], B[0, 1], B[32, 1] = 0.0, 448.0, -448.0, 448.0, 448.0
    sa[0, :2], sb[:2, 1] = 2.0 ** 120, 1.0               # +-2**137.6: Inf - Inf
    sa[1, 2], sb[2, 2] = 2.0 ** 70, 2.0 ** 70            # 2**140
    sa[2, 1], sb[1, 0] = 2.0 ** -100, 2.0 ** -40         # 2**-140
    A[3, 40] = np.nan
    A[4, :32], A[4, 32:64], A[4, 64:] = 1.0, -1.0, 0.0
    B[32:64, 3] = B[:32, 3]
    sa[4, 1], sb[1, 3] = sa[4, 0], sb[0, 3]
    from fpsim.kernels import chain
    calls, real = [], chain.dequant_add
    monkeypatch.setattr(chain, "dequant_add", lambda *a: (calls.append(1), real(*a)))
    got = gemm_values(A, B, e4, e4, acc=fpsim.Accumulator("float32", chunk=t, inner=eng),
                      dequant=(sa, sb))
    assert len(calls) == 3
    want = np.zeros((m, n))
    for c, k0 in enumerate(range(0, k, t)):
        part = fpsim.gemm(A[:, k0:k0 + t], B[k0:k0 + t], acc=eng, a_format=e4,
                          b_format=e4).astype(np.float64)
        sc = fpsim.mul(sa[:, c][:, None], sb[c][None, :], "float32", dtype=np.float64)
        want = fpsim.add(want, fpsim.mul(part, sc, "float32", dtype=np.float64), "float32",
                         dtype=np.float64)
    assert np.isnan(want[0, 1]) and np.isinf(want[1]).any() and np.isnan(want[3]).all()
    assert want[4, 3] == 0.0 and 0 < sa[2, 1] * sb[1, 0] < 2.0 ** -126
    assert np.array_equal(got, want, equal_nan=True)
    assert not np.signbit(got[np.isnan(got)]).any()


def test_deepseek_linear_layer_dequantizes_per_chunk():
    """A Linear under tile scaling: the forward GEMM equals the chunk loop over the quantizers'
    own elements and scales (1 x 4 tiles of x, 4 x 4 blocks of w, transposed beside w^T)."""
    rec = nn.Recipe("ds_small", weights=nn.TileScaling(tile=(4, 4)),
                    activations=nn.TileScaling(tile=4), errors=nn.TileScaling(tile=4),
                    acc=fpsim.Accumulator("float32", chunk=4, inner=fpsim.Accumulator("float32")))
    dp = nn.Datapath(rec, 0)
    rng = np.random.default_rng(72)
    x = rng.standard_normal((3, 10)).astype(np.float32)
    w = rng.standard_normal((6, 10)).astype(np.float32)
    y = dp.linear(x, w)
    xe, _, sx = nn.TileScaling(tile=4).make()(x, -1, "forward", 0)
    we, _, sw = nn.TileScaling(tile=(4, 4)).make()(w, -1, "forward", 0)
    total = np.zeros((3, 6))
    for c, k0 in enumerate(range(0, 10, 4)):
        part = fpsim.gemm(xe[:, k0:k0 + 4], we[:, k0:k0 + 4].T, acc="float32").astype(np.float64)
        s = fpsim.mul(sx[:, c][:, None], sw[:, c][None, :], "float32", dtype=np.float64)
        total = fpsim.add(total, fpsim.mul(part, s, "float32", dtype=np.float64), "float32",
                          dtype=np.float64)
    assert np.array_equal(y, total.astype(np.float32))
    dx = dp.linear_backward_data(rng.standard_normal((3, 6)).astype(np.float32), w)
    assert dx.shape == (3, 10) and np.isfinite(dx).all()


def test_deepseek_v3_fp8_recipe():
    """DeepSeek-V3 section 3.3: E4M3 everywhere, 1 x 128 tiles (activations, errors) and
    128 x 128 weight blocks with float32 scales, Hopper FP8 wgmma promoted every 128, the output
    head and attention kept in higher precision."""
    r = recipes.get("deepseek_v3_fp8")
    assert r.weights.tile == (128, 128) and r.activations.tile == r.errors.tile == 128
    for role in ("weights", "activations", "errors"):
        assert fpsim.format(getattr(r, role).fmt) == fpsim.format("float8_e4m3fn")
    for g in r.acc:
        a = r.acc[g]
        assert a.chunk == 128 and a.fmt == fpsim.FloatFormat(8, 23)
        assert a.inner.arch == "hopper" and a.inner.model.frac_bits == 13
    assert set(r.keep) == {"last", "attention"}
    net = nn.transformer.gpt(np.random.default_rng(0), vocab=20, d=8, heads=2, layers=1,
                             context=4).configure(r)
    att = [m for m in net.walk() if getattr(m, "is_attention", False)]
    assert att and all(m.datapath.recipe.name == "bf16" for m in att)


def test_review_findings_on_scaling_and_attention():
    """Found in review: each with the behaviour it must have."""
    from test_value_scales import reference_blocks
    # tiny float64 elements beside a huge one, rounded up: the element's smallest subnormal
    z = np.zeros(128)
    z[0], z[1], z[2] = 1e38, 1e-300, -1e-300
    f = fpsim.format("fp8_tile_1x128")
    for mode in ("rup", "rdn", "rto"):
        (s, vals), = reference_blocks([list(z)], f.element, f.scale_format, mode)
        assert np.array_equal(fpsim.quantize(z, f, rounding=mode), np.array(vals)), mode
    # tile scales without an accumulator, K not a multiple of the tile: the dequantized product
    rec = nn.Recipe("tiles_np", weights=nn.TileScaling(tile=(4, 4)),
                    activations=nn.TileScaling(tile=4), errors=nn.TileScaling(tile=4))
    dp = nn.Datapath(rec, 0)
    rng = np.random.default_rng(80)
    x, w = rng.standard_normal((3, 6)).astype(np.float32), rng.standard_normal((5, 6))
    xe, _, sx = nn.TileScaling(tile=4).make()(x, -1, "forward", 0)
    we, _, sw = nn.TileScaling(tile=(4, 4)).make()(w.astype(np.float32), -1, "forward", 0)
    deq_x = xe * np.repeat(np.asarray(sx), 4, axis=1)[:, :6]
    deq_w = we * np.repeat(np.asarray(sw), 4, axis=1)[:, :6]
    want = np.matmul(deq_x.astype(np.float32), deq_w.astype(np.float32).T)
    assert np.array_equal(dp.linear(x, w.astype(np.float32)), want)
    # a promoted accumulator whose chunk is not the tile
    bad = nn.Recipe("tiles_bad", activations=nn.TileScaling(tile=4),
                    weights=nn.TileScaling(tile=(4, 4)),
                    acc=fpsim.Accumulator("float32", chunk=5, inner=fpsim.Accumulator("float32")))
    with pytest.raises(ValueError, match="chunk is the tile"):
        nn.Datapath(bad, 0).linear(np.ones((2, 8), np.float32), np.ones((3, 8), np.float32))
    # attention's two products keep separate delayed-scaling histories, one entry per step
    te = recipes.get("te_fp8_delayed")
    att = nn.transformer.CausalSelfAttention(8, 2, 4, np.random.default_rng(81))
    att.qkv.datapath = att.proj.datapath = nn.Datapath(te, 1)
    att.datapath = nn.Datapath(te, 0)
    xin = np.random.default_rng(82).standard_normal((8, 8)).astype(np.float32)
    y = att.forward(xin)
    att.backward(np.ones_like(y))
    q = att.datapath.quantizers
    assert len(q["activations"].amaxes) == 1 and len(q["activations@1"].amaxes) == 1
    assert q["activations@1"].amaxes[0] == float(np.abs(att.saved[3]).max())      # P alone
    # keep=("first",) keeps the first weight layer of a gpt, not its attention
    net = nn.transformer.gpt(np.random.default_rng(83), vocab=10, d=8, heads=2, layers=1,
                             context=4).configure(recipes.get("hfp8_sun2019"))
    gl = net.gemm_layers()
    kept = [type(m).__name__ for m in gl if m.datapath.recipe.name != "hfp8_sun2019"]
    assert kept == ["Linear", "Linear"] and gl[1].datapath.recipe.name != "hfp8_sun2019"
    with pytest.raises(ValueError, match="fills the context"):
        net.forward(np.zeros((2, 2), np.int64))
    # scale formats need a NaN code; huge amax with a margin keeps a positive scale
    with pytest.raises(ValueError, match="NaN code"):
        fpsim.formats.BlockFormat(fpsim.format("float4_e2m1fn"), 16,
                                  scale_format=fpsim.FloatFormat(4, 3, specials="none"))
    v, _, inv = nn.CurrentScaling(margin=64).make()(np.array([1e38], np.float32), -1, "f", 0)
    assert np.isfinite(inv) and inv > 0
