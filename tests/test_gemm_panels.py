"""gemm by panels (fpsim.gemm.gemm_panels): large GEMMs on operands of their own dtypes decode
panels of A and B into buffers instead of float64 copies of the whole operands.  Checked against
the exact-rational references (reference_arith.gemm_ref, stochastic words keyed by the index in
the whole C; Kulisch sums; reference_fused for engines) with the panel sizes shrunk so that small
shapes cross many panels, the kernel paths chosen per panel differing (an Inf in one panel, a
register that may overflow in another), and against a tracemalloc bound on the default sizes."""

import sys
import tracemalloc

import ml_dtypes
import numpy as np
import pytest

import fpsim
from fpsim.kernels.rounding import seed_key
from reference_arith import AccDesc, add_ref, gemm_ref
from reference_fused import fused_gemm_ref
from test_engines import adversarial, assert_same, block_scaled_ref, block_scales, padded
from test_fixed import fixed_register_ref
from test_gemm import assert_gemm_equal, expected_dtype, kulisch_expected

G = sys.modules["fpsim.gemm"]          # the module (fpsim.gemm is also the function)


def e5m2_data(rng, shape, scale):
    """e5m2 values over the given scale, with subnormals, zeros of both signs and the largest
    values (57344: two such products overflow float16 and e5m2)."""
    x = (rng.standard_normal(shape) * scale).astype(ml_dtypes.float8_e5m2)
    flat = x.reshape(-1)
    picks = rng.choice(flat.size, size=min(flat.size, 12), replace=False)
    flat[picks[:3]] = ml_dtypes.float8_e5m2(2.0 ** -16)          # smallest subnormal
    flat[picks[3:5]] = ml_dtypes.float8_e5m2(-0.0)
    flat[picks[5:8]] = ml_dtypes.float8_e5m2(57344.0)
    return x


CASES = [  # (accumulator, product, out_format, A dtype, B dtype, layout)
    (fpsim.Accumulator("float16"), None, None, "e5m2", "e5m2", "2d"),
    (fpsim.Accumulator("fp16_169", chunk=5), None, None, "e5m2", "e5m2", "3d3d"),
    (fpsim.Accumulator("bfloat16", order="pairwise"), None, None, "e5m2", "e4m3", "2d3d"),
    (fpsim.Accumulator("float16", rounding="rtz"), None, None, "e4m3", "e5m2", "3d2d"),
    (fpsim.Accumulator("float32"), "e5m2", None, "bf16", "e5m2", "2d"),
    (fpsim.Accumulator("float32", chunk=4), None, "e4m3fn", "f16", "f16", "2d"),
    (fpsim.Accumulator("e5m2", rounding="rup"), None, None, "e5m2", "e5m2", "2d"),
    (fpsim.Accumulator("float16", rounding="sr"), None, None, "e5m2", "e5m2", "3d2d"),
    (fpsim.Accumulator("fp16_169", chunk=5, rounding="sr"), None, None, "e5m2", "e4m3", "3d3d"),
    (fpsim.Accumulator("bfloat16", rounding="sr", sr_bits=8), None, None, "bf16", "e5m2", "2d3d"),
    (fpsim.Accumulator("float16", rounding="sr", order="pairwise"), "e5m2", None, "e5m2",
     "e5m2", "2d"),
]
DTYPES = {"e5m2": ml_dtypes.float8_e5m2, "e4m3": ml_dtypes.float8_e4m3fn,
          "bf16": ml_dtypes.bfloat16, "f16": np.float16}


@pytest.mark.parametrize("case", range(len(CASES)))
def test_panels_equal_the_exact_reference(case, monkeypatch):
    acc, product, out, an, bn, layout = CASES[case]
    rng = np.random.default_rng(case)
    M, K, N, bt = 9, 23, 11, 2
    a_shape = (bt, M, K) if layout.startswith("3d") else (M, K)
    b_shape = (bt, K, N) if layout.endswith("3d") else (K, N)
    A = e5m2_data(rng, a_shape, 8.0).astype(DTYPES[an])
    B = e5m2_data(rng, b_shape, 64.0).astype(DTYPES[bn])
    A[..., 0, 3] = np.inf                 # row panel 0 meets an Inf (and Inf * 0)
    B[..., 5, -1] = np.nan                # the last column panel meets a NaN
    shrink_panels(monkeypatch)          # 2 * threads rows, 4 columns: many panels crossed
    calls = []
    real = G.gemm_values
    monkeypatch.setattr(G, "gemm_values", lambda *a, **k: calls.append(1) or real(*a, **k))
    got = fpsim.gemm(A, B, acc=acc, product=product, out_format=out, seed=case)
    rows = G.panel_rows()
    assert len(calls) == -(-M // rows) * -(-N // 4)             # it went by panels
    desc = AccDesc(acc.fmt, acc.chunk, acc.rounding, acc.order, acc.sr_bits)
    want, skip = gemm_ref(A.astype(np.float64), B.astype(np.float64), desc,
                          None if product is None else fpsim.format(product),
                          None if out is None else fpsim.format(out),
                          key=seed_key(np.uint64(case)))     # the words of the whole C
    assert got.dtype == expected_dtype(fpsim.format(out) if out else acc.fmt)
    assert_gemm_equal(got, want, skip, (case, acc))


def shrink_panels(monkeypatch, rows=2, cols=4):
    monkeypatch.setattr(G, "PANEL_ROWS", rows)
    monkeypatch.setattr(G, "PANEL_COLS", cols)
    monkeypatch.setattr(G, "PANEL_MIN", 0)


@pytest.mark.parametrize("wide", [False, True])
def test_kulisch_panels_equal_exact_sums(wide, monkeypatch):
    """Kulisch of unbounded width by panels: the float64 chain (narrow data) or the digits
    kernels (wide data: values 2**-16 .. 57344 and Inf/NaN in one panel each), the digits each
    panel needs from its own data; against Fraction sums rounded once."""
    rng = np.random.default_rng(3 + wide)
    A = e5m2_data(rng, (2, 9, 23), 8.0)
    B = e5m2_data(rng, (23, 11), 64.0)
    if wide:
        A[1, 7, 4], B[2, 9] = np.inf, np.nan
    else:                                                        # the chain: no extremes
        A = (rng.standard_normal(A.shape) * 4).astype(ml_dtypes.float8_e5m2)
        B = (rng.standard_normal(B.shape) * 4).astype(ml_dtypes.float8_e5m2)
    shrink_panels(monkeypatch)
    calls = []
    real = G.gemm_values
    monkeypatch.setattr(G, "gemm_values", lambda *a, **k: calls.append(1) or real(*a, **k))
    got = fpsim.gemm(A, B, acc=fpsim.KulischAccumulator("float32"))
    assert len(calls) == -(-9 // G.panel_rows()) * 3                  # it went by panels
    A3, B3 = A.astype(np.float64), np.broadcast_to(B.astype(np.float64), (2, 23, 11))
    want = kulisch_expected(A3, B3, fpsim.format("float32"))
    assert_gemm_equal(got, want, np.zeros(want.shape, bool), wide)


ENGINES = [("hopper", "wgmma.m64n8k32.f32.e4m3.e5m2", "e4m3", "e5m2"),
           ("hopper", "wgmma.m64n8k32.f32.e4m3.e5m2", "e5m2", "e4m3"),      # read swapped
           ("hopper", "wgmma.m64n8k16.f32.bf16.bf16", "bf16", "bf16"),
           ("volta", "mma.m8n8k4.f32.f16.f16.f32", "f16", "f16")]


@pytest.mark.parametrize("arch, ins, an, bn", ENGINES)
def test_engine_panels_equal_the_fraction_reference(arch, ins, an, bn, monkeypatch):
    """A matrix engine by panels (K zero-padded in each): against the chain of fused steps of
    the Fraction reference (reference_fused), a NaN in one column panel."""
    eng = fpsim.engine(arch, ins)
    rng = np.random.default_rng(len(ins) + len(an))
    K = 2 * eng.k + 3                                   # not a multiple of k: zero padding
    A = (rng.standard_normal((9, K)) * 4).astype(DTYPES[an])
    B = (rng.standard_normal((K, 11)) * 4).astype(DTYPES[bn])
    B[2, 9] = np.nan
    shrink_panels(monkeypatch)
    calls = []
    real = G.gemm_values
    monkeypatch.setattr(G, "gemm_values", lambda *a, **k: calls.append(1) or real(*a, **k))
    got = fpsim.gemm(A, B, acc=eng)
    assert len(calls) == -(-9 // G.panel_rows()) * 3                  # it went by panels
    Ap, Bp = padded(A.astype(np.float64), B.astype(np.float64), eng.k)
    fa, fb = (fpsim.format(str(x.dtype).replace("float8_", "")) for x in (A, B))
    assert_same(got, fused_gemm_ref(Ap, Bp, np.zeros((9, 11)), eng.model, fa, fb))


def count_panels(monkeypatch):
    """A list that gets one entry per gemm_values call (one per panel)."""
    calls = []
    real = G.gemm_values
    monkeypatch.setattr(G, "gemm_values", lambda *a, **k: calls.append(1) or real(*a, **k))
    return calls


def test_w_bit_kulisch_panels_and_their_overflow_report(monkeypatch):
    """A 64-bit Kulisch register by panels: without overflow against Fraction sums; with
    overflows in four panels, the error (overflow="raise", out= left untouched) or the one
    warning (overflow="flag", those outputs NaN) counts every overflowing output."""
    rng = np.random.default_rng(11)
    A = (rng.standard_normal((9, 23)) * 4).astype(ml_dtypes.float8_e5m2)
    B = (rng.standard_normal((23, 11)) * 4).astype(ml_dtypes.float8_e5m2)
    shrink_panels(monkeypatch)
    calls = count_panels(monkeypatch)
    kul = fpsim.KulischAccumulator("float32", width=64)
    got = fpsim.gemm(A, B, acc=kul)
    assert len(calls) == -(-9 // G.panel_rows()) * 3
    want = kulisch_expected(A.astype(np.float64)[None], B.astype(np.float64)[None],
                            fpsim.format("float32"))[0]
    assert_gemm_equal(got, want, np.zeros(want.shape, bool), "64 bits")
    # the products' LSB is 2**-32: 57344**2 * 23 (about 2**36.1) needs 70 bits, so rows 0 and 8
    # overflow in columns 0 and 10 (panels 0 and 2); 57344 * 23 * 16 (2**24.3) needs 58
    A[0], A[8], B[:, 0], B[:, 10] = 57344.0, -57344.0, 57344.0, 57344.0
    out = np.full((9, 11), -1.0, np.float32)
    with pytest.raises(fpsim.AccumulatorOverflow, match=r"^4 output\(s\) overflow"):
        fpsim.gemm(A, B, acc=kul, out=out)
    assert np.all(out == -1.0)                          # left as it was, as the whole path does
    with pytest.warns(RuntimeWarning, match=r"^4 output\(s\) overflow") as rec:
        got = fpsim.gemm(A, B, acc=fpsim.KulischAccumulator("float32", width=64,
                                                            overflow="flag"))
    assert len([w for w in rec if "overflow" in str(w.message)]) == 1
    assert np.array_equal(np.argwhere(np.isnan(got)), [[0, 0], [0, 10], [8, 0], [8, 10]])


@pytest.mark.parametrize("arch, ins", [
    ("blackwell", "tcgen05.mma.m128n8k32.block32.f32.e5m2.e4m3.ue8m0"),
    ("rtx_blackwell", "mma.m16n8k64.block32.f32.e2m1.e2m1.f32.ue4m3")])
def test_block_scaled_engine_panels(arch, ins, monkeypatch):
    """Block scales cut into the panels of A's rows and B's columns: against reference_fused
    (K not a multiple of k: the padded blocks take the smallest scale)."""
    eng = fpsim.engine(arch, ins)
    rng = np.random.default_rng(len(ins))
    K = 2 * eng.k + eng.block + 3
    nb = -(-K // eng.block)
    dt = {"e5m2": ml_dtypes.float8_e5m2, "e4m3fn": ml_dtypes.float8_e4m3fn,
          "e2m1fn": ml_dtypes.float4_e2m1fn}
    A = adversarial(rng, (9, K), eng.a_format).astype(dt[eng.a_format.name.split("_")[-1]])
    B = adversarial(rng, (K, 11), eng.b_format).astype(dt[eng.b_format.name.split("_")[-1]])
    SA, SB = block_scales(rng, eng, 9, nb), block_scales(rng, eng, nb, 11)
    shrink_panels(monkeypatch)
    calls = count_panels(monkeypatch)
    got = fpsim.gemm(A, B, acc=eng, scale_a=SA, scale_b=SB)
    assert len(calls) == -(-9 // G.panel_rows()) * 3
    assert_same(got, block_scaled_ref(eng, A.astype(np.float64), B.astype(np.float64), SA, SB))


def outer_sum(parts, fmt):
    """The outer register of a promoted accumulator: the chunk sums added in order from +0,
    each addition rounded to nearest-even into fmt (reference_arith.add_ref)."""
    total = np.zeros(parts[0].shape)
    for part in parts:
        total = np.vectorize(lambda x, y: add_ref(x, y, fmt, "rne"))(total, part)
    return total


@pytest.mark.parametrize("inner", ["float16 sr", "hopper"])
def test_promoted_panels_equal_chunked_references(inner, monkeypatch):
    """Promoted accumulators by panels: chunks of 16 (float16 register with stochastic
    rounding, its words those of the whole chunk GEMM, gemm_ref) or 64 (Hopper's engine, the
    fused kernel path, reference_fused) summed from zero, each chunk sum added into a float32
    register (add_ref)."""
    rng = np.random.default_rng(17)
    K = 150
    A = (rng.standard_normal((9, K)) * 4).astype(ml_dtypes.float8_e4m3fn)
    B = (rng.standard_normal((K, 11)) * 4).astype(ml_dtypes.float8_e4m3fn)
    A64, B64 = A.astype(np.float64), B.astype(np.float64)
    f32 = fpsim.format("float32")
    if inner == "hopper":
        eng, chunk = fpsim.engine("hopper", "wgmma.m64n8k32.f32.e4m3.e4m3"), 64
        parts = [fused_gemm_ref(*padded(A64[:, k:k + chunk], B64[k:k + chunk], eng.k),
                                np.zeros((9, 11)), eng.model, eng.a_format, eng.b_format)
                 for k in range(0, K, chunk)]
        acc = fpsim.Accumulator("float32", chunk=chunk, inner=eng)
    else:
        chunk, f16 = 16, fpsim.format("float16")
        parts = [gemm_ref(A64[:, k:k + chunk], B64[k:k + chunk], AccDesc(f16, None, "sr"),
                          key=seed_key(np.uint64(5)))[0] for k in range(0, K, chunk)]
        acc = fpsim.Accumulator("float32", chunk=chunk,
                                inner=fpsim.Accumulator(f16, rounding="sr"))
    shrink_panels(monkeypatch)
    calls = count_panels(monkeypatch)
    got = fpsim.gemm(A, B, acc=acc, seed=5)
    assert len(calls) == -(-9 // G.panel_rows()) * 3
    assert_same(got, outer_sum([np.asarray(p, np.float64) for p in parts], f32))


@pytest.mark.parametrize("mode", ["sr", "rne"])
def test_fixed_point_register_panels_equal_the_fraction_loop(mode, monkeypatch):
    """A saturating fixed-point register by panels (stochastic words keyed by the index in the
    whole C) against test_fixed's Fraction loop, saturation reached."""
    rng = np.random.default_rng(13)
    A = (rng.standard_normal((9, 23)) * 1.5).astype(ml_dtypes.float8_e5m2)
    B = (rng.standard_normal((23, 11)) * 1.5).astype(ml_dtypes.float8_e5m2)
    shrink_panels(monkeypatch)
    calls = count_panels(monkeypatch)
    acc_fmt = fpsim.FixedFormat(5, 5)
    got = fpsim.gemm(A, B, acc=fpsim.Accumulator(acc_fmt, rounding=mode), seed=7)
    assert len(calls) == -(-9 // G.panel_rows()) * 3
    want, saturated = fixed_register_ref(A.astype(np.float64), B.astype(np.float64), acc_fmt,
                                         mode, 7)
    assert saturated > 0
    assert np.array_equal(got, want) and not (np.signbit(got) & (got == 0)).any()


@pytest.mark.parametrize("acc", [fpsim.Accumulator(fpsim.FixedFormat(16, 8)),
                                 fpsim.Accumulator(fpsim.FixedFormat(12, 4), rounding="rtz"),
                                 fpsim.Accumulator(fpsim.PositFormat(16, 1))],
                         ids=["fixed <16, 8>", "fixed <12, 4> rtz", "posit16"])
def test_fixed_and_posit_panels_equal_the_whole_path(acc, monkeypatch):
    """Consistency (the whole-operand path is checked against the fraction references in
    test_fixed and test_posit): fixed-point and posit registers by panels equal the same GEMM
    on float64 operands, which never goes by panels."""
    rng = np.random.default_rng(5)
    A = (rng.standard_normal((9, 23)) * 2).astype(ml_dtypes.float8_e5m2)
    B = (rng.standard_normal((23, 11)) * 2).astype(ml_dtypes.float8_e5m2)
    whole = fpsim.gemm(A.astype(np.float64), B.astype(np.float64), acc=acc, a_format="e5m2",
                       b_format="e5m2")
    shrink_panels(monkeypatch)
    calls = count_panels(monkeypatch)
    got = fpsim.gemm(A, B, acc=acc)
    assert len(calls) == -(-9 // G.panel_rows()) * 3
    assert got.dtype == whole.dtype
    assert np.array_equal(got, whole, equal_nan=True)


def test_panels_write_into_out(monkeypatch):
    shrink_panels(monkeypatch, 1, 3)
    rng = np.random.default_rng(7)
    A = e5m2_data(rng, (2, 7, 19), 4.0)
    B = e5m2_data(rng, (19, 10), 4.0)
    want = fpsim.gemm(A.astype(np.float32), B.astype(np.float32), acc="float16",
                      a_format="e5m2", b_format="e5m2")          # the whole-operand path
    big = np.full((2, 7, 20), -1.0, np.float32)
    out = big[:, :, ::2]                                         # a strided buffer
    calls = count_panels(monkeypatch)
    res = fpsim.gemm(A, B, acc="float16", out=out)
    assert len(calls) == -(-7 // G.panel_rows()) * 4              # it went by panels
    assert res is out
    assert np.array_equal(out, want, equal_nan=True)
    assert np.all(big[:, :, 1::2] == -1.0)                       # nothing else written
    with pytest.raises(ValueError, match="out must be an ndarray of shape"):
        fpsim.gemm(A, B, acc="float16", out=np.empty((2, 7, 10), np.float64))


def test_panels_out_may_be_an_operand(monkeypatch):
    """out=A: the later panels read A again, so C goes into out at the end (as the whole path
    did, which copied A first)."""
    shrink_panels(monkeypatch)
    rng = np.random.default_rng(8)
    A = e5m2_data(rng, (9, 9), 4.0).astype(np.float32)
    B = e5m2_data(rng, (9, 9), 4.0).astype(np.float32)
    want = fpsim.gemm(A.astype(np.float64), B.astype(np.float64), acc="float16",
                      a_format="float32", b_format="float32")       # float64: never by panels
    calls = count_panels(monkeypatch)
    res = fpsim.gemm(A, B, acc="float16", out=A)
    assert res is A and len(calls) > 1
    assert np.array_equal(A, want, equal_nan=True)


def test_panels_draw_the_process_stream_as_the_whole_path(monkeypatch):
    """seed=None: a GEMM by panels takes the next key of the process stream, as the whole path
    does, so two calls after fpsim.seed(3) give the same words either way."""
    shrink_panels(monkeypatch)
    rng = np.random.default_rng(9)
    A = e5m2_data(rng, (9, 23), 8.0)
    B = e5m2_data(rng, (23, 11), 8.0)
    acc = fpsim.Accumulator("float16", rounding="sr")
    fpsim.seed(3)
    panels = [fpsim.gemm(A, B, acc=acc) for _ in range(2)]
    fpsim.seed(3)
    whole = [fpsim.gemm(A.astype(np.float64), B.astype(np.float64), acc=acc,
                        a_format="e5m2", b_format="e5m2") for _ in range(2)]
    assert not np.array_equal(panels[0], panels[1], equal_nan=True)     # two different keys
    for p, w in zip(panels, whole):
        assert np.array_equal(p, w, equal_nan=True)
    # the same for a promoted accumulator whose inner register rounds stochastically (before
    # session 15 every such call without seed= took key 0)
    promoted = fpsim.Accumulator("float32", chunk=8, inner=acc)
    fpsim.seed(3)
    panels = [fpsim.gemm(A, B, acc=promoted) for _ in range(2)]
    fpsim.seed(3)
    whole = [fpsim.gemm(A.astype(np.float64), B.astype(np.float64), acc=promoted,
                        a_format="e5m2", b_format="e5m2") for _ in range(2)]
    assert not np.array_equal(panels[0], panels[1], equal_nan=True)
    for p, w in zip(panels, whole):
        assert np.array_equal(p, w, equal_nan=True)
    fpsim.seed(0)


def test_panels_choice():
    """Which GEMMs go by panels (with the default sizes)."""
    A = np.zeros((1024, 512), ml_dtypes.float8_e5m2)
    B = np.zeros((512, 1024), ml_dtypes.float8_e5m2)
    e5m2 = fpsim.format("e5m2")
    assert G.by_panels(A, B, e5m2, e5m2, "float16", "cpu")
    assert G.by_panels(A, B, e5m2, e5m2, fpsim.Accumulator("fp16_169", chunk=64), "cpu")
    assert G.by_panels(A, B, e5m2, e5m2, fpsim.Accumulator("float16", rounding="sr"), "cpu")
    fixed_sr = fpsim.Accumulator(fpsim.FixedFormat(16, 8), rounding="sr")
    assert G.by_panels(A, B, e5m2, e5m2, fixed_sr, "cpu")
    assert G.by_panels(A, B, e5m2, e5m2, fpsim.KulischAccumulator("float32"), "cpu")
    assert G.by_panels(A, B, e5m2, e5m2, fpsim.KulischAccumulator("float32", width=80), "cpu")
    promoted = fpsim.Accumulator("float32", chunk=32, inner=fpsim.Accumulator("float16"))
    assert G.by_panels(A, B, e5m2, e5m2, promoted, "cpu")
    inner_w = fpsim.Accumulator("float32", chunk=32,
                                inner=fpsim.KulischAccumulator("float32", width=60))
    assert not G.by_panels(A, B, e5m2, e5m2, inner_w, "cpu")
    assert G.by_panels(A, B, e5m2, e5m2, fpsim.engine("hopper", "wgmma.m64n8k32.f32.e5m2.e5m2"),
                       "cpu")
    mx = fpsim.engine("blackwell", "tcgen05.mma.m128n16k64.block32.f32.e2m1.e2m1.ue8m0")
    A4, B4 = A.astype(ml_dtypes.float4_e2m1fn), B.astype(ml_dtypes.float4_e2m1fn)
    e2m1 = G.dtype_format("A", A4, None)
    assert G.by_panels(A4, B4, e2m1, e2m1, "float16", "cpu")
    assert G.by_panels(A4, B4, e2m1, e2m1, mx, "cpu")                   # block-scaled
    assert not G.by_panels(A[:, :100], B[:100], e5m2, e5m2, "float16", "cpu")   # small
    assert not G.by_panels(A[:0], np.zeros((512, 4096), A.dtype), e5m2, e5m2, "float16",
                           "cpu")                                               # empty
    A64 = A.astype(np.float64)                                   # values need a check
    assert not G.by_panels(A64, B, fpsim.format("e5m2"), e5m2, "float16", "cpu")
    A32 = A.astype(np.float32)                                   # float32 read as e5m2
    assert not G.by_panels(A32, B, e5m2, e5m2, "float16", "cpu")
    tf32 = fpsim.engine("hopper", "wgmma.m64n8k8.f32.tf32.tf32")  # float32 arrays truncated
    assert G.declared_engine_formats(tf32, A32, B.astype(np.float32), None, None) is None


def test_panels_peak_memory():
    """tracemalloc over a 1024 x 512 x 1024 e5m2 GEMM: C (4 MiB) plus the panels' buffers
    (K * (rows + columns) float32 values, their float32 padded copy and the kernels' block of
    C), far below the 8 MiB of one float64 copy of an operand that the whole-operand path
    holds (it peaks near 20 MiB here)."""
    rng = np.random.default_rng(1)
    A = rng.standard_normal((1024, 512)).astype(ml_dtypes.float8_e5m2)
    B = rng.standard_normal((512, 1024)).astype(ml_dtypes.float8_e5m2)
    fpsim.gemm(A, B, acc="float16")          # compile (which allocates) outside the trace
    tracemalloc.start()
    try:
        C = fpsim.gemm(A, B, acc="float16")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    panel = 512 * (G.panel_rows() + G.PANEL_COLS) * 4
    assert C.dtype == np.float32 and C.nbytes == 4 << 20
    assert peak <= C.nbytes + 3 * panel + (256 << 10), (peak, C.nbytes, panel)
