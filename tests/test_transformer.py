"""The Transformer of fpsim.nn (issue 14): gradients of every layer against finite differences
in float64, AdamW against the published update written out by hand, attention's products
against fpsim.gemm under a recipe, and the "gpt" model end to end."""

import numpy as np
import pytest

import fpsim
from fpsim import nn
from fpsim.nn import transformer as T
from test_nn import _f64, _gradcheck

RNG = np.random.default_rng(10)

LAYERS = {
    "layernorm": (lambda: T.LayerNorm(6), (5, 6)),
    "rmsnorm": (lambda: T.RMSNorm(6), (5, 6)),
    "gelu": (lambda: T.GELU(), (4, 7)),
    "attention": (lambda: T.CausalSelfAttention(8, 2, 5, RNG), (2 * 5, 8)),
    "attention_1head": (lambda: T.CausalSelfAttention(6, 1, 4, RNG), (3 * 4, 6)),
    "mlp": (lambda: T.MLP(4, RNG), (3, 4)),
    "block": (lambda: nn.Residual(nn.Sequential(T.LayerNorm(8),
                                                T.CausalSelfAttention(8, 4, 3, RNG))), (6, 8)),
}


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_gradients_match_finite_differences(name):
    make, shape = LAYERS[name]
    x = np.random.default_rng(11).standard_normal(shape)
    _gradcheck(make(), x, n_checks=60)


def test_gpt_parameter_gradients_match_finite_differences():
    """Every parameter tensor of a small gpt (embeddings included), loss = sum(logits * R)."""
    net = T.gpt(np.random.default_rng(12), vocab=11, d=8, heads=2, layers=2, context=6)
    idx = np.random.default_rng(13).integers(0, 11, (2, 6))
    _gradcheck(net, idx, n_checks=6, with_input=False)


def test_attention_is_causal():
    """Changing token t changes no output before t."""
    net = T.gpt(np.random.default_rng(16), vocab=13, d=8, heads=2, layers=1, context=7)
    net.configure(nn.recipes.get("fp32"))
    idx = np.random.default_rng(17).integers(0, 13, (1, 7))
    a = net.forward(idx).copy()
    idx[0, 4] = (idx[0, 4] + 1) % 13
    b = net.forward(idx)
    assert np.array_equal(a[:4], b[:4]) and not np.array_equal(a[4:], b[4:])


def test_attention_products_run_through_the_recipe():
    """Under fp8_hopper, Q K^T is the wgmma GEMM of the per-tensor-scaled Q and K^T, times the
    scales (what the datapath computes, checked against fpsim.gemm directly)."""
    rec = nn.recipes.get("fp8_hopper")
    att = T.CausalSelfAttention(8, 2, 4, np.random.default_rng(18))
    dp = nn.Datapath(rec, 0)
    q = np.random.default_rng(19).standard_normal((4, 4, 4)).astype(np.float32)
    k = np.random.default_rng(20).standard_normal((4, 4, 4)).astype(np.float32)
    got = dp.matmul(q, np.swapaxes(k, -1, -2))
    qv, _, sq = nn.CurrentScaling("float8_e4m3fn").make()(q, -1, "forward", 0)
    kv, _, sk = nn.CurrentScaling("float8_e4m3fn").make()(np.swapaxes(k, -1, -2), -2,
                                                           "forward", 0)
    raw = fpsim.gemm(qv.astype(np.float64), kv.astype(np.float64), acc=rec.acc["forward"])
    assert np.array_equal(got, raw * np.float32(sq * sk))
    assert att.heads == 2


def test_adamw_matches_the_published_update():
    """Loshchilov and Hutter 2019, Algorithm 2 with Kingma and Ba's bias correction, written out
    for three steps (weight decay decoupled: lr * wd * w, not added to the gradient)."""
    rng = np.random.default_rng(21)
    w0 = rng.standard_normal(5)
    grads = [rng.standard_normal(5).astype(np.float32) for _ in range(3)]
    p = nn.Param(w0.copy())
    opt = nn.AdamW([p], lr=0.01, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.1)
    w, m, v = np.float32(w0).astype(np.float64), np.zeros(5), np.zeros(5)
    for t, g in enumerate(grads, start=1):
        p.grad = g
        opt.step(step=t - 1)
        g = g.astype(np.float64)
        m = np.float32(0.9 * m + 0.1 * g).astype(np.float64)
        v = np.float32(0.99 * v + 0.01 * g * g).astype(np.float64)
        mhat, vhat = m / (1 - 0.9 ** t), v / (1 - 0.99 ** t)
        w = np.float32(w - 0.01 * (mhat / (np.sqrt(vhat) + 1e-8) + 0.1 * w))
        w = w.astype(np.float64)
        assert np.array_equal(p.value, w.astype(np.float32)), t
    with pytest.raises(ValueError, match="betas"):
        nn.AdamW([p], betas=(0.9, 1.0))


def test_pydoc_is_the_standard_library_text_split_by_position():
    from pydoc_data.topics import topics
    from fpsim import data
    d = data.load("pydoc")
    text = "\n".join(topics[k] for k in sorted(topics))
    decode = lambda a: "".join(d.chars[i] for i in a)          # noqa: E731
    assert decode(d.x_train[0]) == text[:64] and decode(d.y_train[0]) == text[1:65]
    cut = int(len(text) * 0.9)
    assert decode(d.x_test[0]) == text[cut:cut + 64]
    assert d.n_classes == len(set(text))
    assert d.x_train.shape == ((cut - 1) // 64, 64) and d.x_test.shape == ((len(text) - cut - 1)
                                                                          // 64, 64)


def test_smoke_gpt_learns_pydoc_under_fp32_and_fp8_hopper():
    """Smoke test: 25 AdamW steps on pydoc lower the loss from ln(vocab) under fp32 and under the
    Hopper FP8 recipe (both operands of every product per-tensor scaled, every GEMM on wgmma)."""
    from fpsim import data
    d = data.load("pydoc")
    for rec in ("fp32", "fp8_hopper"):
        net = nn.models.build("gpt", 0, d.n_classes).configure(nn.recipes.get(rec))
        opt = nn.AdamW(net.parameters(), 3e-3)
        losses = []
        for step in range(25):
            idx = np.arange(step * 8, step * 8 + 8)
            net.set_step(0, step)
            loss, dl = nn.softmax_cross_entropy(net.forward(d.x_train[idx]),
                                                d.y_train[idx].reshape(-1))
            net.backward(dl)
            opt.step(step)
            losses.append(loss)
        assert abs(losses[0] - np.log(d.n_classes)) < 0.2 and losses[-1] < losses[0] - 0.8, \
            (rec, losses[0], losses[-1])


def test_train_and_evaluate_text_models():
    from fpsim import data
    from fpsim.nn.training import evaluate
    assert nn.train("fp32", "gpt", "pydoc", epochs=1, stop_after=2, progress=False) is None
    d = data.load("pydoc")
    net = nn.models.build("gpt", 0, d.n_classes).configure(nn.recipes.get("fp32"))
    acc, loss = evaluate(net, d.x_test[:3], d.y_test[:3], (0, -1), with_loss=True)
    net.set_step(0, -1)
    want, _ = nn.softmax_cross_entropy(net.forward(d.x_test[:3], train=False),
                                       d.y_test[:3].reshape(-1))
    assert abs(loss - want) < 1e-12 and 0 <= acc <= 1
    with pytest.raises(ValueError, match="do not go together"):
        nn.train("fp32", "gpt", "digits", epochs=1, progress=False)
    with pytest.raises(ValueError, match="do not go together"):
        nn.train("fp32", "mlp", "pydoc", epochs=1, progress=False)


def test_smoke_gpt_run_resumes_from_its_checkpoint_and_writes_json(tmp_path):
    """Smoke test of the text path of fpsim.nn.train: a run killed after 3 steps (checkpoint
    every 2) resumes, finishes its epoch, and writes the loss in nats and bits per character.
    (That resuming ends with the uninterrupted weights is tests/test_train.py's check.)"""
    import json
    js = tmp_path / "gpt.json"
    kw = dict(epochs=1, progress=False, json_path=str(js), checkpoint_every=2)
    assert nn.train("fp32", "gpt", "pydoc", stop_after=3, **kw) is None
    run = nn.train("fp32", "gpt", "pydoc", resume=True, **kw)
    saved = json.loads(js.read_text())
    e = saved["epochs"][0]
    assert abs(e["test_bits_per_char"] - e["test_loss"] / np.log(2)) < 1e-12
    assert run["test_loss"] == saved["test_loss"] < np.log(103)
