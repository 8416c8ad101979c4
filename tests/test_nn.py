"""fpsim.nn layers: gradients against finite differences, and the datapath against fpsim.gemm."""

import numpy as np
import pytest

import fpsim
from fpsim import nn
from fpsim.nn import layers as L
from fpsim.nn.quantizers import quantize_along
from fpsim.nn.recipes import get

RNG = np.random.default_rng(0)


def _f64(layer):
    """The layer (and those inside it) in float64 under the fp32 recipe."""
    for m in layer.walk():
        for p in m.params:
            p.value = p.value.astype(np.float64)
        if hasattr(m, "datapath"):               # Linear, Conv2d, attention
            m.datapath = nn.Datapath(get("fp32"), 0)
    return layer


def _gradcheck(layer, x, n_checks=25, eps=1e-7, rtol=1e-6, atol=1e-8, with_input=True):
    """Compare backward's dx (``with_input``; not for integer token inputs) and parameter
    gradients with central differences of L = sum(forward(x) * R) in float64."""
    layer = _f64(layer)
    x = x.astype(np.float64) if with_input else x
    r = np.random.default_rng(1).standard_normal(layer.forward(x.copy()).shape)

    def loss():
        return float((layer.forward(x, train=True) * r).sum())

    base = loss()
    dx = layer.backward(r.copy())
    pairs = [(x, dx)] * with_input + [(p.value, p.grad) for m in layer.walk() for p in m.params]
    checked = skipped = 0
    for arr, grad in pairs:
        assert grad.shape == arr.shape
        flat, g = arr.reshape(-1), np.asarray(grad).reshape(-1)
        for i in np.random.default_rng(2).choice(flat.size, min(n_checks, flat.size), False):
            old = flat[i]
            flat[i] = old + eps
            up = loss()
            flat[i] = old - eps
            down = loss()
            flat[i] = old
            right, left = (up - base) / eps, (base - down) / eps
            if abs(right - left) > 1e-4 * max(abs(right), abs(left), 1.0):
                skipped += 1        # a kink (ReLU at 0, max/min or pool argmax changing hands)
                continue
            numeric = (up - down) / (2 * eps)
            assert abs(numeric - g[i]) <= atol + rtol * max(abs(numeric), 1.0) * 1e2, \
                (type(layer).__name__, i, numeric, g[i])
            checked += 1
    assert skipped <= max(2, checked // 10), (checked, skipped)


LAYERS = {
    "linear": (lambda: L.Linear(7, 5, RNG), (4, 7)),
    "conv": (lambda: L.Conv2d(3, 4, 3, RNG, padding=1), (2, 3, 6, 6)),
    "conv_stride2": (lambda: L.Conv2d(2, 3, 3, RNG, stride=2, padding=1), (2, 2, 7, 7)),
    "conv_nopad": (lambda: L.Conv2d(2, 3, 2, RNG), (2, 2, 5, 5)),
    "batchnorm_2d": (lambda: L.BatchNorm(6), (8, 6)),
    "batchnorm_4d": (lambda: L.BatchNorm(3), (4, 3, 5, 5)),
    "rangebn_2d": (lambda: L.RangeBatchNorm(6), (16, 6)),
    "rangebn_4d": (lambda: L.RangeBatchNorm(3), (4, 3, 5, 5)),
    "relu": (lambda: L.ReLU(), (5, 9)),
    "maxpool": (lambda: L.MaxPool(2), (2, 3, 6, 6)),
    "maxpool_odd": (lambda: L.MaxPool(2), (2, 2, 5, 5)),
    "avgpool": (lambda: L.AvgPool(2), (2, 3, 6, 6)),
    "avgpool_global": (lambda: L.AvgPool(), (2, 3, 4, 4)),
    "flatten": (lambda: L.Flatten(), (2, 3, 4, 4)),
    "residual": (lambda: L.Residual(L.Sequential(L.Conv2d(3, 3, 3, RNG, padding=1),
                                                 L.BatchNorm(3), L.ReLU())), (2, 3, 5, 5)),
    "residual_shortcut": (lambda: L.Residual(L.Linear(4, 6, RNG), L.Linear(4, 6, RNG)), (3, 4)),
}


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_gradients_match_finite_differences(name):
    make, shape = LAYERS[name]
    x = np.random.default_rng(3).standard_normal(shape)
    _gradcheck(make(), x, n_checks=400)              # every element of these small inputs


@pytest.mark.parametrize("model", nn.models.IMAGE_MODELS)        # gpt: test_transformer.py
def test_model_gradients_match_finite_differences(model):
    net = _f64(nn.models.build(model, seed=0))
    x = np.random.default_rng(4).random((3, 1, 8, 8))
    _gradcheck(net, x, n_checks=8)


def test_softmax_cross_entropy_gradient():
    z = np.random.default_rng(5).standard_normal((4, 10))
    y = np.array([1, 0, 9, 3])
    _, g = L.softmax_cross_entropy(z, y)
    eps = 1e-6
    for i, j in [(0, 1), (2, 9), (3, 0), (1, 5)]:
        zp, zm = z.copy(), z.copy()
        zp[i, j] += eps
        zm[i, j] -= eps
        numeric = (L.softmax_cross_entropy(zp, y)[0] - L.softmax_cross_entropy(zm, y)[0]) / (2 * eps)
        assert abs(numeric - g[i, j]) < 1e-6


def test_range_batchnorm_scale_tracks_std_for_gaussian_data():
    """Banner et al. 2018, section 3: the range of n Gaussian values grows like
    2 sigma sqrt(2 ln n), so C(n) * range is a fixed multiple of sigma below 2 (the learned gamma
    absorbs the constant): the same multiple for every channel's sigma."""
    bn = L.RangeBatchNorm(2)
    sigma = np.array([0.5, 3.0])
    x = np.random.default_rng(6).standard_normal((4096, 2)) * sigma
    bn.forward(x, train=True)
    ratio = (1.0 / bn.inv) / sigma
    assert np.all((1.4 < ratio) & (ratio < 2.0)), ratio
    assert abs(ratio[0] / ratio[1] - 1) < 0.1, ratio


# --- the datapath adds no rounding of its own ------------------------------------------------

def _configured(model, recipe):
    return nn.models.build(model, seed=0).configure(get(recipe))


@pytest.mark.parametrize("recipe", ["fp8_wang2018", "hfp8_sun2019", "bm8_fox2021",
                                    "fixed16_gupta2015"])
def test_linear_forward_equals_fpsim_gemm(recipe):
    net = _configured("mlp", recipe)
    layer = net.gemm_layers()[1]                       # the middle layer: the recipe's own
    rec = layer.datapath.recipe
    assert rec is get(recipe)
    x = np.random.default_rng(7).random((20, 128)).astype(np.float32)
    layer.b.value = np.zeros_like(layer.b.value)
    layer.datapath.seed, layer.datapath.step = 3, 11
    y = layer.forward(x)
    xq = quantize_along(x, rec.activations.fmt, -1, rec.activations.rounding,
                        layer.datapath._key("activations", "forward"))
    wq = quantize_along(layer.w.value, rec.weights.fmt, -1, rec.weights.rounding,
                        layer.datapath._key("weights", "forward"))
    want = fpsim.gemm(xq, wq.T, acc=rec.acc["forward"], a_format=rec.activations.fmt,
                      b_format=rec.weights.fmt, seed=layer.datapath._key("accumulator", "forward"))
    np.testing.assert_array_equal(y, want)


def test_conv_forward_and_backward_equal_fpsim_conv():
    net = _configured("lenet", "hfp8_sun2019")
    layer = net.gemm_layers()[1]                       # second conv: HFP8 arithmetic
    rec = layer.datapath.recipe
    x = np.random.default_rng(8).random((4, 8, 4, 4)).astype(np.float32)
    y = layer.forward(x) - layer.b.value[:, None, None]
    xq, wq = fpsim.quantize(x, "hfp8_143"), fpsim.quantize(layer.w.value, "hfp8_143")
    acc = rec.acc["forward"]
    np.testing.assert_array_equal(y, fpsim.conv2d(xq, wq, 1, 1, acc=acc, x_format="hfp8_143",
                                                  w_format="hfp8_143"))
    dy = np.random.default_rng(9).standard_normal(y.shape).astype(np.float32)
    dx = layer.backward(dy)
    dyq = fpsim.quantize(dy, "hfp8_152")
    np.testing.assert_array_equal(dx, fpsim.conv2d_backward_data(
        dyq, wq, x.shape, 1, 1, acc=acc, dy_format="hfp8_152", w_format="hfp8_143"))
    dw = fpsim.conv2d_backward_weight(dyq, xq, layer.w.value.shape, 1, 1, acc=acc,
                                      dy_format="hfp8_152", x_format="hfp8_143")
    np.testing.assert_array_equal(layer.w.grad, fpsim.quantize(dw, "fp16_169"))


def test_blocks_run_along_each_gemms_reduction_axis():
    """MX operands: Linear blocks along in-features (forward), out-features (backward-data) and
    the batch (backward-weight); Conv2d along channels, filters and the batch."""
    acc = fpsim.Accumulator("float32")
    rec = nn.Recipe("mx", weights="mxfp8_e4m3", activations="mxfp8_e4m3", errors="mxfp8_e5m2",
                    acc=acc)
    rng = np.random.default_rng(0)

    def q(a, f, ax):
        return fpsim.quantize(a, f, axis=ax)

    lin = L.Linear(64, 32, rng)
    L.Model("t", L.ReLU(), lin).configure(rec)          # ReLU first: the input gradient is kept
    x = rng.standard_normal((32, 64)).astype(np.float32)
    dy = rng.standard_normal((32, 32)).astype(np.float32)
    y, dx, w = lin.forward(x), lin.backward(dy), lin.w.value
    np.testing.assert_array_equal(y - lin.b.value, fpsim.gemm(
        q(x, "mxfp8_e4m3", -1), q(w, "mxfp8_e4m3", -1).T, acc=acc))
    np.testing.assert_array_equal(dx, fpsim.gemm(q(dy, "mxfp8_e5m2", -1), q(w, "mxfp8_e4m3", 0),
                                                 acc=acc))
    np.testing.assert_array_equal(lin.w.grad, fpsim.gemm(
        q(dy, "mxfp8_e5m2", 0).T, q(x, "mxfp8_e4m3", 0), acc=acc))

    c = L.Conv2d(32, 8, 3, rng, padding=1)
    L.Model("c", L.ReLU(), c).configure(rec)
    x = rng.standard_normal((2, 32, 5, 5)).astype(np.float32)
    y = c.forward(x)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx, w = c.backward(dy), c.w.value
    np.testing.assert_array_equal(y - c.b.value[:, None, None], fpsim.conv2d(
        q(x, "mxfp8_e4m3", 1), q(w, "mxfp8_e4m3", 1), 1, 1, acc=acc))
    np.testing.assert_array_equal(dx, fpsim.conv2d_backward_data(
        q(dy, "mxfp8_e5m2", 1), q(w, "mxfp8_e4m3", 0), x.shape, 1, 1, acc=acc))
    np.testing.assert_array_equal(c.w.grad, fpsim.conv2d_backward_weight(
        q(dy, "mxfp8_e5m2", 0), q(x, "mxfp8_e4m3", 0), w.shape, 1, 1, acc=acc))


@pytest.mark.parametrize("scheme", [nn.IntScaling(4), nn.IntScaling(4, signed=False),
                                    nn.IntScaling(4, rule="sawb"), nn.IntScaling(8, rounding="sr")],
                         ids=str)
def test_int_scaling_quantizer_returns_float32_integers(scheme):
    """The quantizer's own output: float32 values of its integer format, times one scale."""
    x = np.random.default_rng(4).standard_normal((6, 40)).astype(np.float32)
    q, fmt, scale = scheme.make()(x, -1, "forward", 5)          # explicit stochastic key
    assert q.dtype == np.float32 and q.shape == x.shape
    assert fmt == fpsim.FixedFormat(scheme.bits, 0, signed=scheme.signed)
    np.testing.assert_array_equal(q, fpsim.quantize(q, fmt))    # integers of the format
    assert np.abs(q).max() > 0 and scale > 0 and isinstance(scale, float)


@pytest.mark.parametrize("acc", [None, fpsim.Accumulator("float32")],
                         ids=["numpy_matmul", "fpsim_gemm"])
@pytest.mark.parametrize("kind", ["linear", "conv"])
def test_int_scaling_keeps_float32(kind, acc):
    """Weights, activations, errors and gradients under IntScaling: forward, backward-data and
    the weight gradient stay float32.  With ``acc=None`` the GEMMs are numpy matmuls of the
    quantizers' outputs, whose dtype would follow any float64 operand; with an accumulator they
    go through fpsim.gemm / conv2d."""
    rec = nn.Recipe("int", weights=nn.IntScaling(4, rule="sawb"),
                    activations=nn.IntScaling(4, signed=False), errors=nn.IntScaling(8),
                    gradients=nn.IntScaling(8, rounding="sr"), acc=acc)
    rng = np.random.default_rng(0)
    if kind == "linear":
        layer, x = L.Linear(8, 4, rng), rng.random((3, 8)).astype(np.float32)
    else:
        layer, x = L.Conv2d(2, 3, 3, rng, padding=1), rng.random((2, 2, 5, 5)).astype(np.float32)
    layer.datapath = nn.Datapath(rec, 0)
    layer.datapath.set_step(seed=1, step=0)
    y = layer.forward(x)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx = layer.backward(dy)
    assert layer.input_grad and dx is not None
    for name, v in (("forward", y), ("backward_data", dx), ("weight_gradient", layer.w.grad)):
        assert v.dtype == np.float32, (name, v.dtype)
    assert dx.shape == x.shape and layer.w.grad.shape == layer.w.value.shape
    assert np.abs(y).max() > 0 and np.abs(dx).max() > 0 and np.abs(layer.w.grad).max() > 0


def test_kept_layers_use_the_keep_recipe():
    net = _configured("mlp", "fp8_wang2018")
    names = [m.datapath.recipe.name for m in net.gemm_layers()]
    assert names == ["fp16_wang2018", "fp8_wang2018", "fp16_wang2018"]
    assert [m.datapath.recipe.name for m in _configured("mlp", "bm8_fox2021").gemm_layers()] \
        == ["bm8_fox2021"] * 3


def test_smoke_a_user_recipe_in_a_few_lines():
    """Smoke test: a recipe written by hand trains the MLP on the synthetic 8x8 set for 2 epochs
    and beats chance by a wide margin."""
    mine = nn.Recipe("mine", weights="e4m3", activations="e4m3", errors="e5m2",
                     acc=fpsim.Accumulator("float16", chunk=16), master="float16",
                     update_rounding="sr")
    run = nn.train(mine, "mlp", "synthetic", epochs=2, progress=False)
    assert run["settings"]["recipe"] == "mine" and run["test_accuracy"] > 0.5


@pytest.mark.parametrize("bad, match", [
    (dict(acc="float32"), "acc"), (dict(acc={"sideways": None}), "acc keys"),
    (dict(update_rounding="up"), "update_rounding"), (dict(loss_scale=0), "loss_scale"),
    (dict(keep=("middle",)), "keep"), (dict(weights="e9m99"), "man_bits"),
    (dict(loss_scale=True), "loss_scale"), (dict(loss_scale=float("inf")), "loss_scale"),
    (dict(keep="first"), "keep must be a tuple"), (dict(keep=("first",), keep_recipe=5),
                                                   "keep_recipe")])
def test_recipe_rejects_bad_settings(bad, match):
    with pytest.raises(ValueError, match=match):
        nn.Recipe("bad", **bad)


def test_unknown_names_are_clear_errors():
    with pytest.raises(ValueError, match="recipe must be one of"):
        nn.recipes.get("fp7")
    with pytest.raises(ValueError, match="model must be one of"):
        nn.models.build("vgg")
    with pytest.raises(ValueError, match="dataset must be one of"):
        fpsim.data.load("mnist")
    with pytest.raises(ValueError, match="epochs must be an int >= 1"):
        nn.train("fp32", epochs=0)
    for bad, match in [(dict(seed=-1), "seed"), (dict(lr="a"), "lr"), (dict(momentum=2), "momentum"),
                       (dict(stop_after=0), "stop_after")]:
        with pytest.raises(ValueError, match=match):
            nn.train("fp32", **bad)
    with pytest.raises(ValueError, match="backward_data_phase"):
        nn.GradScaling(backward_data_phase=2)
    for make in (lambda: nn.Round("e5m2", "up"), lambda: nn.AutoflexScaling(rounding="nearest"),
                 lambda: nn.IntScaling(rounding="floor"), lambda: nn.GradScaling(rounding="x")):
        with pytest.raises(ValueError, match="rounding must be one of"):
            make()
    with pytest.raises(ValueError, match="checkpoint"):
        nn.compare(["fp32"], checkpoint="x.ckpt")
