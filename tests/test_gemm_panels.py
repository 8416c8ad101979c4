"""gemm by panels (fpsim.gemm.gemm_panels): large GEMMs on operands of their own dtypes decode
panels of A and B into float32 buffers instead of float64 copies of the whole operands.  Checked
against the exact-rational reference (reference_arith.gemm_ref) with the panel sizes shrunk so
that small shapes cross many panels, the kernel paths chosen per panel differing (an Inf in one
panel, a register that may overflow in another), and against a tracemalloc bound on the
default sizes."""

import sys
import tracemalloc

import ml_dtypes
import numpy as np
import pytest

import fpsim
from reference_arith import AccDesc, gemm_ref
from test_gemm import assert_gemm_equal, expected_dtype

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
    got = fpsim.gemm(A, B, acc=acc, product=product, out_format=out)
    rows = G.panel_rows()
    assert len(calls) == -(-M // rows) * -(-N // 4)             # it went by panels
    desc = AccDesc(acc.fmt, acc.chunk, acc.rounding, acc.order)
    want, skip = gemm_ref(A.astype(np.float64), B.astype(np.float64), desc,
                          None if product is None else fpsim.format(product),
                          None if out is None else fpsim.format(out))
    assert got.dtype == expected_dtype(fpsim.format(out) if out else acc.fmt)
    assert_gemm_equal(got, want, skip, (case, acc))


def shrink_panels(monkeypatch, rows=2, cols=4):
    monkeypatch.setattr(G, "PANEL_ROWS", rows)
    monkeypatch.setattr(G, "PANEL_COLS", cols)
    monkeypatch.setattr(G, "PANEL_MIN", 0)


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
    got = fpsim.gemm(A, B, acc=acc)
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
    res = fpsim.gemm(A, B, acc="float16", out=out)
    assert res is out
    assert np.array_equal(out, want, equal_nan=True)
    assert np.all(big[:, :, 1::2] == -1.0)                       # nothing else written
    with pytest.raises(ValueError, match="out must be an ndarray of shape"):
        fpsim.gemm(A, B, acc="float16", out=np.empty((2, 7, 10), np.float64))


def test_panels_choice():
    """Which GEMMs go by panels (with the default sizes)."""
    A = np.zeros((1024, 512), ml_dtypes.float8_e5m2)
    B = np.zeros((512, 1024), ml_dtypes.float8_e5m2)
    e5m2 = fpsim.format("e5m2")
    assert G.by_panels(A, B, e5m2, e5m2, "float16", "cpu")
    assert G.by_panels(A, B, e5m2, e5m2, fpsim.Accumulator("fp16_169", chunk=64), "cpu")
    assert not G.by_panels(A, B, e5m2, e5m2, fpsim.Accumulator("float16", rounding="sr"), "cpu")
    assert not G.by_panels(A, B, e5m2, e5m2, fpsim.KulischAccumulator("float32"), "cpu")
    assert not G.by_panels(A, B, e5m2, e5m2, fpsim.engine("hopper", "wgmma.m64n8k32.f32.e5m2.e5m2"), "cpu")
    assert not G.by_panels(A[:, :100], B[:100], e5m2, e5m2, "float16", "cpu")   # small
    A64 = A.astype(np.float64)                                   # values need a check
    assert not G.by_panels(A64, B, fpsim.format("e5m2"), e5m2, "float16", "cpu")


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
