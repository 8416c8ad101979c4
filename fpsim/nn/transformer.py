"""A small decoder-only Transformer (GPT), each layer's forward beside its backward.

Activations are (B*T, d) matrices, so every Linear is one GEMM; attention views them as
(B*heads, T, d/heads).  Its two activation products, Q K^T and softmax(S) V, go through the
layer's :class:`~fpsim.nn.datapath.Datapath` (the recipe's formats and accumulators), like
the Linears' GEMMs; embeddings, norms, GELU, softmax and the residual adds are float32 NumPy
(float64 under the "fp32" recipe's gradient checks), as a vector unit would compute them.

fpsim's choices (GPT-2's, Radford et al. 2019, where it has one): pre-norm blocks, GELU in its
tanh form, learned position embeddings, weights N(0, 0.02) with residual projections scaled by
1/sqrt(2 * layers), an untied output head; every sequence fills the context (``T = context``).

>>> import numpy as np
>>> from fpsim.nn import recipes, transformer
>>> net = transformer.gpt(np.random.default_rng(0), vocab=50).configure(recipes.get("fp32"))
>>> logits = net.forward(np.zeros((2, 64), np.int64))
>>> logits.shape, sum(p.value.size for p in net.parameters())
((128, 50), 110642)
"""

from __future__ import annotations

import math

import numpy as np

from .layers import Layer, Linear, Model, Param, Residual, Sequential

f32 = np.float32


class Embedding(Layer):
    """Token and position embeddings: tokens (B, T) -> tok[tokens] + pos[:T] as (B*T, d)."""

    def __init__(self, vocab, d, context, rng):
        self.tok = Param(rng.standard_normal((vocab, d)) * 0.02, decay=False)
        self.pos = Param(rng.standard_normal((context, d)) * 0.02, decay=False)
        self.params = (self.tok, self.pos)

    def forward(self, idx, train=True):
        if idx.ndim != 2 or idx.shape[1] != self.pos.value.shape[0]:
            raise ValueError(f"tokens must be (batch, {self.pos.value.shape[0]}): every sequence "
                             f"fills the context; got shape {idx.shape}")
        self.idx = idx
        b, t = idx.shape
        return (self.tok.value[idx] + self.pos.value[:t]).reshape(b * t, -1)

    def backward(self, dy):
        b, t = self.idx.shape
        dy = dy.reshape(b, t, -1)
        self.tok.grad = np.zeros_like(self.tok.value)
        np.add.at(self.tok.grad, self.idx, dy)
        self.pos.grad = np.zeros_like(self.pos.value)
        self.pos.grad[:t] = dy.sum(axis=0)
        return None


class LayerNorm(Layer):
    """Over the last axis: gamma * (x - mean) / sqrt(var + eps) + beta."""

    def __init__(self, d, eps=1e-5):
        self.gamma, self.beta = Param(np.ones(d), decay=False), Param(np.zeros(d), decay=False)
        self.params, self.eps = (self.gamma, self.beta), eps

    def forward(self, x, train=True):
        mu = x.mean(axis=-1, keepdims=True)
        self.inv = (1.0 / np.sqrt(x.var(axis=-1, keepdims=True) + self.eps)).astype(x.dtype)
        self.xhat = (x - mu) * self.inv
        return self.gamma.value * self.xhat + self.beta.value

    def backward(self, dy):
        xh = self.xhat
        self.gamma.grad, self.beta.grad = (dy * xh).sum(axis=0), dy.sum(axis=0)
        g = dy * self.gamma.value
        return self.inv * (g - g.mean(axis=-1, keepdims=True)
                           - xh * (g * xh).mean(axis=-1, keepdims=True))


class RMSNorm(Layer):
    """Over the last axis: gamma * x / sqrt(mean(x^2) + eps) (Zhang and Sennrich 2019)."""

    def __init__(self, d, eps=1e-5):
        self.gamma = Param(np.ones(d), decay=False)
        self.params, self.eps = (self.gamma,), eps

    def forward(self, x, train=True):
        self.inv = (1.0 / np.sqrt((x * x).mean(axis=-1, keepdims=True) + self.eps)) \
            .astype(x.dtype)
        self.xhat = x * self.inv
        return self.gamma.value * self.xhat

    def backward(self, dy):
        xh = self.xhat
        self.gamma.grad = (dy * xh).sum(axis=0)
        g = dy * self.gamma.value
        return self.inv * (g - xh * (g * xh).mean(axis=-1, keepdims=True))


class GELU(Layer):
    """0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), GPT-2's form."""
    C = math.sqrt(2.0 / math.pi)

    def forward(self, x, train=True):
        self.x = x
        self.t = np.tanh(self.C * (x + 0.044715 * x ** 3))
        return 0.5 * x * (1.0 + self.t)

    def backward(self, dy):
        x, t = self.x, self.t
        dt = (1.0 - t * t) * self.C * (1.0 + 3 * 0.044715 * x * x)
        return (dy * (0.5 * (1.0 + t) + 0.5 * x * dt)).astype(dy.dtype)


class CausalSelfAttention(Layer):
    """Multi-head causal self-attention on (B*T, d): qkv = x W_qkv^T (one Linear), per head
    S = Q K^T / sqrt(d_h) with the future masked, P = softmax(S) (float64, rounded to the
    activations' type), O = P V, y = O W_o^T.  Q K^T and P V run through ``self.datapath``
    (batched over B*heads)."""
    is_attention = True           # a recipe's keep=("attention",) gives these products its
                                  # keep_recipe

    def __init__(self, d, heads, context, rng, layers=1):
        if d % heads:
            raise ValueError(f"d ({d}) must be a multiple of heads ({heads})")
        self.d, self.heads, self.context = d, heads, context
        self.qkv = Linear(d, 3 * d, rng)
        self.proj = Linear(d, d, rng)
        for lin, std in ((self.qkv, 0.02), (self.proj, 0.02 / math.sqrt(2 * layers))):
            lin.w.value = (rng.standard_normal(lin.w.value.shape) * std).astype(f32)
        self.datapath = None                # set by Model.configure: Q K^T and P V
        self.mask = np.triu(np.ones((context, context), bool), k=1)

    def children(self):
        return (self.qkv, self.proj)

    def _heads(self, x):          # (B*T, d) -> (B*heads, T, dh)
        t, h = self.context, self.heads
        return x.reshape(-1, t, h, self.d // h).transpose(0, 2, 1, 3).reshape(-1, t, self.d // h)

    def _merge(self, x):          # (B*heads, T, dh) -> (B*T, d)
        t, h = self.context, self.heads
        return x.reshape(-1, h, t, self.d // h).transpose(0, 2, 1, 3).reshape(-1, self.d)

    def forward(self, x, train=True):
        qkv = self.qkv.forward(x, train)
        q, k, v = (self._heads(np.ascontiguousarray(qkv[:, i * self.d:(i + 1) * self.d]))
                   for i in range(3))
        scale = 1.0 / math.sqrt(self.d // self.heads)
        kt = np.swapaxes(k, -1, -2)          # one object: its rounding is reused in backward
        s = self.datapath.matmul(q, kt, slot=0) * x.dtype.type(scale)
        z = np.where(self.mask, -np.inf, s.astype(np.float64))
        z = np.exp(z - z.max(axis=-1, keepdims=True))
        p = (z / z.sum(axis=-1, keepdims=True)).astype(x.dtype)
        o = self.datapath.matmul(p, v, slot=1)
        self.saved = (q, kt, v, p, scale)
        return self.proj.forward(self._merge(o), train)

    def backward(self, dy):
        q, kt, v, p, scale = self.saved
        do = self._heads(self.proj.backward(dy))
        dp, dv = self.datapath.matmul_backward(do, p, v, slot=1)
        ds = p * (dp - (dp * p).sum(axis=-1, keepdims=True))        # softmax backward
        ds = (ds * ds.dtype.type(scale)).astype(dy.dtype)
        dq, dkt = self.datapath.matmul_backward(ds, q, kt, slot=0)
        dqkv = np.concatenate([self._merge(dq), self._merge(np.swapaxes(dkt, -1, -2)),
                               self._merge(dv)], axis=1)
        return self.qkv.backward(dqkv)


class MLP(Sequential):
    """Linear(d, 4d) - GELU - Linear(4d, d), the second scaled as a residual projection."""

    def __init__(self, d, rng, layers=1):
        up, down = Linear(d, 4 * d, rng), Linear(4 * d, d, rng)
        for lin, std in ((up, 0.02), (down, 0.02 / math.sqrt(2 * layers))):
            lin.w.value = (rng.standard_normal(lin.w.value.shape) * std).astype(f32)
        super().__init__(up, GELU(), down)


def gpt(rng, vocab, d=64, heads=4, layers=2, context=64, norm=LayerNorm, name="gpt"):
    """Model "gpt": embeddings, ``layers`` pre-norm blocks x + attn(norm(x)), x + mlp(norm(x)),
    a final norm and an untied Linear head to ``vocab`` logits per position ((B*T, vocab))."""
    blocks = []
    for _ in range(layers):
        blocks += [Residual(Sequential(norm(d), CausalSelfAttention(d, heads, context, rng,
                                                                    layers))),
                   Residual(Sequential(norm(d), MLP(d, rng, layers)))]
    head = Linear(d, vocab, rng)
    head.w.value = (rng.standard_normal(head.w.value.shape) * 0.02).astype(f32)
    return Model(name, Embedding(vocab, d, context, rng), *blocks, norm(d), head)
