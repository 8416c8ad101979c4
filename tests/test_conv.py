"""conv2d against the spec's im2col lowering (built here, checked with the exact-rational gemm
reference and with fpsim.gemm), and the two backward passes against float64 numpy loops on
data whose sums are exact."""

import sys

import ml_dtypes
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fpsim
from fpsim.kernels.rounding import seed_key
from reference_arith import AccDesc, gemm_ref
from test_gemm import assert_gemm_equal, pool

DETERMINISTIC = ["rne", "rna", "rtz", "rup", "rdn", "rto"]
SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def out_size(H, k, stride, padding):
    return (H + 2 * padding - k) // stride + 1


def im2col(x, kh, kw, stride, padding):
    """cols[n][(c*kh + r)*kw + s, oh*Wo + ow] = xpad[n, c, oh*stride + r, ow*stride + s]."""
    N, C, H, W = x.shape
    Ho, Wo = out_size(H, kh, stride, padding), out_size(W, kw, stride, padding)
    xp = np.zeros((N, C, H + 2 * padding, W + 2 * padding), dtype=np.float64)
    xp[:, :, padding:padding + H, padding:padding + W] = x
    cols = np.zeros((N, C * kh * kw, Ho * Wo))
    for n in range(N):
        for c in range(C):
            for r in range(kh):
                for s in range(kw):
                    for oh in range(Ho):
                        for ow in range(Wo):
                            cols[n, (c * kh + r) * kw + s, oh * Wo + ow] = \
                                xp[n, c, oh * stride + r, ow * stride + s]
    return cols, Ho, Wo


@st.composite
def conv_shapes(draw):
    N, C, F = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride, padding = draw(st.integers(1, 2)), draw(st.integers(0, 2))
    H = draw(st.integers(max(1, kh - 2 * padding), 6))
    W = draw(st.integers(max(1, kw - 2 * padding), 6))
    return (N, C, H, W), (F, C, kh, kw), stride, padding


def values(name, shape, rng, lo=-6, hi=6):
    v = pool(name)
    a = np.abs(v)
    v = v[(a == 0) | ((a >= 2.0**lo) & (a <= 2.0**hi))]
    return rng.choice(v, size=shape)


@SETTINGS
@given(shapes=conv_shapes(), seed=st.integers(0, 2**32 - 1),
       accn=st.sampled_from(["fp16_169", "float16", "e5m2", "bfloat16"]),
       chunk=st.sampled_from([None, 1, 3, 4]), order=st.sampled_from(["sequential", "pairwise"]),
       mode=st.sampled_from(DETERMINISTIC), product=st.sampled_from([None, "e4m3", "fp16_169"]),
       out=st.sampled_from([None, "e4m3fn"]), as_ml=st.booleans())
def test_conv2d_equals_gemm_on_im2col(shapes, seed, accn, chunk, order, mode, product, out,
                                      as_ml):
    xs, ws, stride, padding = shapes
    rng = np.random.default_rng(seed)
    x = values("float8_e5m2", xs, rng)
    w = values("float8_e4m3fn", ws, rng)
    acc = fpsim.Accumulator(accn, chunk=chunk, rounding=mode, order=order)
    kw = dict(stride=stride, padding=padding, acc=acc, product=product, out_format=out)
    if as_ml:
        y = fpsim.conv2d(x.astype(ml_dtypes.float8_e5m2), w.astype(ml_dtypes.float8_e4m3fn), **kw)
    else:
        y = fpsim.conv2d(x, w, x_format="float8_e5m2", w_format="float8_e4m3fn", **kw)
    N, C, H, W = xs
    F, _, kh, kwid = ws
    cols, Ho, Wo = im2col(x, kh, kwid, stride, padding)
    assert y.shape == (N, F, Ho, Wo)
    w2 = w.reshape(F, -1)
    pf = None if product is None else fpsim.format(product)
    of = None if out is None else fpsim.format(out)
    for n in range(N):
        want, skip = gemm_ref(w2, cols[n], AccDesc(fpsim.format(accn), chunk, mode, order), pf, of)
        assert_gemm_equal(y[n].reshape(F, -1), want, skip, (acc, product, out, shapes, n))
        g = fpsim.gemm(w2, cols[n], acc, product=product, out_format=out,
                       a_format="float8_e4m3fn", b_format="float8_e5m2")
        assert_gemm_equal(y[n].reshape(F, -1), np.asarray(g, np.float64),
                          np.zeros(g.shape, bool), "conv2d vs fpsim.gemm on im2col")


def test_conv2d_default_accumulator_and_dtype():
    rng = np.random.default_rng(0)
    x = values("float16", (1, 2, 5, 5), rng).astype(np.float16)
    w = values("float16", (3, 2, 3, 3), rng).astype(np.float16)
    y = fpsim.conv2d(x, w, padding=1)
    assert y.dtype == np.float32 and y.shape == (1, 3, 5, 5)
    cols, _, _ = im2col(x.astype(np.float64), 3, 3, 1, 1)
    want, skip = gemm_ref(w.astype(np.float64).reshape(3, -1), cols[0],
                          AccDesc(fpsim.format("float32")))
    assert_gemm_equal(y[0].reshape(3, -1), want, skip, "default acc")


def test_padding_products_are_accumulated():
    """Zero-padding products are +0 products added like any other.  Centre output of a 1x1 input
    x = -1 with a 3x3 kernel that is 2^-20 at its centre (k = 4), 0 elsewhere, in an e5m2
    register (rne): +0 + ... + (-2^-20 -> -0) = -0, then the padding products k = 5..8 give
    -0 + +0 = +0.  Skipping them would leave -0."""
    x = -np.ones((1, 1, 1, 1), np.float32)
    w = np.zeros((1, 1, 3, 3), np.float32)
    w[0, 0, 1, 1] = 2.0**-20
    y = fpsim.conv2d(x, w, padding=1, acc=fpsim.Accumulator("e5m2"))
    assert y.shape == (1, 1, 1, 1)
    assert y[0, 0, 0, 0] == 0 and not np.signbit(y[0, 0, 0, 0])
    cols, _, _ = im2col(x.astype(np.float64), 3, 3, 1, 1)
    want, _ = gemm_ref(w.reshape(1, -1).astype(np.float64), cols[0],
                       AccDesc(fpsim.format("e5m2")))
    assert want[0, 0] == 0 and not np.signbit(want[0, 0])
    # without padding the product alone gives -0
    y0 = fpsim.conv2d(x, w[:, :, 1:2, 1:2], acc=fpsim.Accumulator("e5m2"))
    assert y0[0, 0, 0, 0] == 0 and np.signbit(y0[0, 0, 0, 0])


# --- backward passes against float64 loops (exact data) -----------------------------------------
def backward_data_ref(dy, w, x_shape, stride, padding):
    N, C, H, W = x_shape
    F, _, kh, kw = w.shape
    Ho, Wo = dy.shape[2], dy.shape[3]
    dxp = np.zeros((N, C, H + 2 * padding, W + 2 * padding))
    for n in range(N):
        for f in range(F):
            for oh in range(Ho):
                for ow in range(Wo):
                    for c in range(C):
                        for r in range(kh):
                            for s in range(kw):
                                dxp[n, c, oh * stride + r, ow * stride + s] += \
                                    float(dy[n, f, oh, ow]) * float(w[f, c, r, s])
    return dxp[:, :, padding:padding + H, padding:padding + W]


def backward_weight_ref(dy, x, w_shape, stride, padding):
    F, C, kh, kw = w_shape
    N, _, H, W = x.shape
    Ho, Wo = dy.shape[2], dy.shape[3]
    xp = np.zeros((N, C, H + 2 * padding, W + 2 * padding))
    xp[:, :, padding:padding + H, padding:padding + W] = x
    dw = np.zeros(w_shape)
    for r in range(kh):
        for s in range(kw):
            patch = xp[:, :, r:r + stride * (Ho - 1) + 1:stride, s:s + stride * (Wo - 1) + 1:stride]
            dw[:, :, r, s] = np.einsum("nfhw,nchw->fc", dy.astype(np.float64), patch)
    return dw


def conv_ref(x, w, stride, padding):
    N, C, H, W = x.shape
    F, _, kh, kw = w.shape
    cols, Ho, Wo = im2col(x.astype(np.float64), kh, kw, stride, padding)
    return np.einsum("fk,nkp->nfp", w.reshape(F, -1).astype(np.float64), cols).reshape(
        N, F, Ho, Wo)


ACCS = [lambda: fpsim.KulischAccumulator(fpsim.format("float32")),
        lambda: fpsim.Accumulator("float32"),
        lambda: fpsim.Accumulator("float32", chunk=4, order="pairwise")]


@SETTINGS
@given(shapes=conv_shapes(), seed=st.integers(0, 2**32 - 1), which=st.integers(0, 2),
       ints=st.booleans())
def test_backward_passes_equal_float64_transposed_convolutions(shapes, seed, which, ints):
    """Small integers (or e5m2 values in a narrow exponent window) make every partial sum exact
    in float32, so any accumulation order gives the float64 result."""
    xs, ws, stride, padding = shapes
    rng = np.random.default_rng(seed)
    N, C, H, W = xs
    F, _, kh, kw = ws
    Ho, Wo = out_size(H, kh, stride, padding), out_size(W, kw, stride, padding)
    if ints:
        x = rng.integers(-8, 9, xs).astype(np.float32)
        w = rng.integers(-8, 9, ws).astype(np.float32)
        dy = rng.integers(-8, 9, (N, F, Ho, Wo)).astype(np.float32)
    else:
        x = values("float8_e5m2", xs, rng, -3, 3).astype(np.float32)
        w = values("float8_e5m2", ws, rng, -3, 3).astype(np.float32)
        dy = values("float8_e5m2", (N, F, Ho, Wo), rng, -3, 3).astype(np.float32)
    acc = ACCS[which]()
    y = fpsim.conv2d(x, w, stride=stride, padding=padding, acc=acc)
    np.testing.assert_array_equal(y, conv_ref(x, w, stride, padding))
    dx = fpsim.conv2d_backward_data(dy, w, xs, stride=stride, padding=padding, acc=acc)
    assert dx.shape == xs
    np.testing.assert_array_equal(dx, backward_data_ref(dy, w, xs, stride, padding))
    dw = fpsim.conv2d_backward_weight(dy, x, ws, stride=stride, padding=padding, acc=acc)
    assert dw.shape == ws
    np.testing.assert_array_equal(dw, backward_weight_ref(dy, x, ws, stride, padding))


def test_backward_passes_with_float32_accumulation_close_to_float64():
    rng = np.random.default_rng(7)
    xs, ws, stride, padding = (2, 3, 7, 6), (4, 3, 3, 2), 2, 1
    x = rng.standard_normal(xs).astype(np.float32)
    w = rng.standard_normal(ws).astype(np.float32)
    Ho, Wo = out_size(7, 3, 2, 1), out_size(6, 2, 2, 1)
    dy = rng.standard_normal((2, 4, Ho, Wo)).astype(np.float32)
    dx = fpsim.conv2d_backward_data(dy, w, xs, stride=stride, padding=padding)
    np.testing.assert_allclose(dx, backward_data_ref(dy, w, xs, stride, padding), rtol=1e-5,
                               atol=1e-5)
    dw = fpsim.conv2d_backward_weight(dy, x, ws, stride=stride, padding=padding)
    np.testing.assert_allclose(dw, backward_weight_ref(dy, x, ws, stride, padding), rtol=1e-5,
                               atol=1e-5)


# --- bad shapes ---------------------------------------------------------------------------------
X = np.ones((1, 2, 5, 5), np.float32)
Wt = np.ones((3, 2, 3, 3), np.float32)
DY = np.ones((1, 3, 3, 3), np.float32)   # conv2d(X, Wt) output shape with stride 1, padding 0


@pytest.mark.parametrize("call", [
    lambda: fpsim.conv2d(X[0], Wt),                                  # 3-D input
    lambda: fpsim.conv2d(X, Wt[0]),                                  # 3-D weights
    lambda: fpsim.conv2d(X, np.ones((3, 4, 3, 3), np.float32)),      # channel mismatch
    lambda: fpsim.conv2d(X, np.ones((3, 2, 7, 3), np.float32)),      # kernel taller than input
    lambda: fpsim.conv2d(X, Wt, stride=0),
    lambda: fpsim.conv2d(X, Wt, padding=-1),
    lambda: fpsim.conv2d(X.astype(np.float64), Wt),                  # float64 without x_format
    lambda: fpsim.conv2d(X * 0.1, Wt, x_format="e5m2"),              # not representable
    lambda: fpsim.conv2d_backward_data(DY, Wt, (1, 2, 6, 6)),        # dy does not match x_shape
    lambda: fpsim.conv2d_backward_data(DY, Wt, (1, 4, 5, 5)),        # channels of x_shape vs w
    lambda: fpsim.conv2d_backward_data(DY[:, :2], Wt, (1, 2, 5, 5)),  # dy filters vs w
    lambda: fpsim.conv2d_backward_data(DY, Wt, (1, 2, 5)),           # bad x_shape
    lambda: fpsim.conv2d_backward_weight(DY, X, (3, 2, 2, 2)),       # dy does not match w_shape
    lambda: fpsim.conv2d_backward_weight(DY, X, (3, 4, 3, 3)),       # channels vs x
    lambda: fpsim.conv2d_backward_weight(np.ones((2, 3, 3, 3), np.float32), X, (3, 2, 3, 3)),
    lambda: fpsim.conv2d_backward_weight(DY, X, (3, 2, 3, 3), stride=0),
])
def test_bad_shapes_raise_value_error(call):
    with pytest.raises(ValueError):
        call()


def test_good_shapes_of_the_bad_shape_table_work():
    assert fpsim.conv2d(X, Wt).shape == (1, 3, 3, 3)
    assert fpsim.conv2d_backward_data(DY, Wt, (1, 2, 5, 5)).shape == (1, 2, 5, 5)
    assert fpsim.conv2d_backward_weight(DY, X, (3, 2, 3, 3)).shape == (3, 2, 3, 3)


@pytest.mark.parametrize("acc", [
    fpsim.Accumulator("e5m2", chunk=3), fpsim.Accumulator("float16", order="pairwise"),
    fpsim.Accumulator("bfloat16", rounding="rtz"),
    fpsim.Accumulator("float32", chunk=4, inner=fpsim.Accumulator("e5m2")),
    fpsim.KulischAccumulator("e4m3"), fpsim.engine("volta", "mma.m8n8k4.f16.f16.f16.f16")])
def test_a_batch_runs_as_one_gemm_with_the_results_of_one_image_at_a_time(acc):
    """A batch of deterministic accumulations runs as one GEMM of N*Ho*Wo columns (conv.py's
    _one_gemm); each image alone (N = 1, the batched layout) must give the same bits, rounding
    errors, Inf and NaN included, forward and backward-data."""
    rng = np.random.default_rng(7)
    x = values("float16", (3, 2, 6, 5), rng, -4, 8)
    w = values("float16", (4, 2, 3, 2), rng, -4, 8)
    x[1, 0, 2, 2], x[2, 1, 0, 0] = np.inf, np.nan
    dy = values("float16", (3, 4, 3, 6), rng, -4, 8)
    kw = dict(stride=(2, 1), padding=(1, 1), acc=acc)
    y = fpsim.conv2d(x.astype(np.float16), w.astype(np.float16), **kw)
    dx = fpsim.conv2d_backward_data(dy.astype(np.float16), w.astype(np.float16), x.shape, **kw)
    for n in range(3):
        one = fpsim.conv2d(x[n:n + 1].astype(np.float16), w.astype(np.float16), **kw)
        np.testing.assert_array_equal(y[n:n + 1], one)
        one = fpsim.conv2d_backward_data(dy[n:n + 1].astype(np.float16), w.astype(np.float16),
                                         (1,) + x.shape[1:], **kw)
        np.testing.assert_array_equal(dx[n:n + 1], one)
    assert np.isnan(y[2]).any()             # the NaN input reached the compared outputs


def test_stochastic_batches_keep_the_batched_numbering():
    """Stochastic rounding numbers its random words by output element of the batched GEMM
    (N products of the weights with each image's im2col matrix): the batch is not merged."""
    rng = np.random.default_rng(8)
    x = values("float8_e5m2", (2, 2, 5, 5), rng)
    w = values("float8_e4m3fn", (3, 2, 3, 3), rng)
    acc = fpsim.Accumulator("e5m2", rounding="sr")
    y = fpsim.conv2d(x, w, padding=1, acc=acc, seed=11, x_format="e5m2", w_format="e4m3fn")
    cols, Ho, Wo = im2col(x, 3, 3, 1, 1)
    g = fpsim.gemm(w.reshape(3, -1), cols, acc, seed=11, a_format="e4m3fn", b_format="e5m2")
    np.testing.assert_array_equal(y, np.asarray(g).reshape(2, 3, Ho, Wo))


def _groups_of_one(monkeypatch):
    """conv.py's groups of images: one image per group (CONV_COLS below one image's matrix)."""
    monkeypatch.setattr(sys.modules["fpsim.conv"], "CONV_COLS", 1)


@pytest.mark.parametrize("mode", ["sr", "rne"])
def test_groups_of_images_equal_the_reference(mode, monkeypatch):
    """The batch in groups of one image (conv.py's _conv_gemm): against gemm_ref on the test's
    own im2col, the stochastic words those of the whole batched GEMM (the wide layout for rne,
    the batched one for sr)."""
    _groups_of_one(monkeypatch)
    rng = np.random.default_rng(12)
    x = values("float8_e5m2", (3, 2, 5, 5), rng)
    w = values("float8_e4m3fn", (3, 2, 3, 3), rng)
    x[1, 0, 2, 2] = np.inf
    acc = fpsim.Accumulator("e5m2", rounding=mode)
    y = fpsim.conv2d(x.astype(ml_dtypes.float8_e5m2), w.astype(ml_dtypes.float8_e4m3fn),
                     padding=1, acc=acc, seed=11)
    cols, Ho, Wo = im2col(x, 3, 3, 1, 1)
    want, skip = gemm_ref(w.reshape(3, -1), cols, AccDesc(fpsim.format("e5m2"), None, mode),
                          key=seed_key(np.uint64(11)))
    assert_gemm_equal(y.reshape(3, 3, -1), want, skip, mode)


GROUP_ACCS = [fpsim.Accumulator("float16", rounding="sr"), fpsim.Accumulator("fp16_169", chunk=4),
              fpsim.Accumulator("float32", chunk=8,
                                inner=fpsim.Accumulator("e5m2", rounding="sr")),
              fpsim.KulischAccumulator("float32")]


@pytest.mark.parametrize("which", ["data", "weight"])
@pytest.mark.parametrize("acc", GROUP_ACCS, ids=["sr", "chunked", "promoted sr", "kulisch"])
def test_groups_equal_the_whole_backward_pass(which, acc, monkeypatch):
    """Consistency (the whole passes are checked against references above): the data gradient
    in groups of one image (each group's dy dilated apart) and the weight gradient in groups
    of one channel (its columns of dw; the reduction over the images whole) equal the whole
    passes, stochastic words included."""
    rng = np.random.default_rng(13)
    w = values("float16", (4, 3, 3, 2), rng, -4, 8).astype(np.float16)
    x = values("float16", (3, 3, 6, 5), rng, -4, 8).astype(np.float16)
    dy = values("float16", (3, 4, 3, 6), rng, -4, 8).astype(np.float16)
    kw = dict(stride=(2, 1), padding=(1, 1), acc=acc, seed=5)
    run = (lambda: fpsim.conv2d_backward_data(dy, w, x.shape, **kw)) if which == "data" else \
        (lambda: fpsim.conv2d_backward_weight(dy, x, w.shape, **kw))
    whole = run()
    _groups_of_one(monkeypatch)
    np.testing.assert_array_equal(run(), whole)


def test_groups_of_images_report_a_kulisch_overflow_once(monkeypatch):
    """A W-bit Kulisch register overflowing in two groups: one error counting both."""
    x = np.zeros((3, 1, 2, 2), ml_dtypes.float8_e5m2)
    x[0], x[2] = 57344.0, 57344.0
    w = np.full((1, 1, 2, 2), 57344.0, ml_dtypes.float8_e5m2)
    acc = fpsim.KulischAccumulator("float32", width=40)
    with pytest.raises(fpsim.AccumulatorOverflow) as whole:
        fpsim.conv2d(x, w, acc=acc)
    _groups_of_one(monkeypatch)
    with pytest.raises(fpsim.AccumulatorOverflow) as groups:
        fpsim.conv2d(x, w, acc=acc)
    assert str(groups.value) == str(whole.value) and str(whole.value).startswith("2 output")
