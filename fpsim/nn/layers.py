"""Layers: each one's forward and backward side by side.

Every layer maps float32 arrays to float32 arrays (float64 to float64 under the "fp32" recipe,
which the gradient checks use).  ``forward(x, train)`` keeps what backward
needs; ``backward(dy)`` stores the parameters' gradients in ``param.grad`` and returns dx.  The
matrix products of Linear and Conv2d go through the layer's :class:`Datapath` (the recipe's
formats and accumulators); everything else (bias add, batch norm, pooling, residual add) is
float32 NumPy, as a vector unit beside the matrix engine would compute it.

>>> import numpy as np
>>> from fpsim.nn import Linear, Model, ReLU, recipes
>>> net = Model("tiny", Linear(4, 3, np.random.default_rng(0)), ReLU())
>>> net = net.configure(recipes.get("fp8_wang2018"))
>>> y = net.forward(np.ones((2, 4), np.float32))
>>> dx = net.backward(np.ones_like(y))        # first layer: no input gradient needed
>>> y.shape, dx, net.layers[0].w.grad.shape
((2, 3), None, (3, 4))
"""

from __future__ import annotations

import math

import numpy as np

from .datapath import Datapath

f32 = np.float32


class Param:
    """A trainable array, its gradient, and whether weight decay applies to it."""

    def __init__(self, value, decay=True):
        self.value, self.grad, self.decay = np.asarray(value, f32), None, decay


class Layer:
    params: tuple = ()

    def children(self):
        return ()

    def walk(self):
        """This layer and every layer inside it, in forward order."""
        yield self
        for c in self.children():
            yield from c.walk()


class Linear(Layer):
    """y = x w^T + b; w (out, in) He-initialised."""

    def __init__(self, n_in, n_out, rng):
        self.w = Param(rng.standard_normal((n_out, n_in)) * math.sqrt(2.0 / n_in))
        self.b = Param(np.zeros(n_out), decay=False)
        self.params = (self.w, self.b)
        self.datapath = None              # set by Model.configure(recipe)
        self.input_grad = True

    def forward(self, x, train=True):
        self.x = x
        return self.datapath.linear(x, self.w.value) + self.b.value

    def backward(self, dy):
        self.w.grad = self.datapath.linear_backward_weight(dy, self.x)
        self.b.grad = dy.sum(axis=0)
        return self.datapath.linear_backward_data(dy, self.w.value) if self.input_grad else None


class Conv2d(Layer):
    """y = conv2d(x, w) + b (NCHW, zero padding); w (F, C, k, k) He-initialised."""

    def __init__(self, c_in, c_out, k, rng, stride=1, padding=0):
        fan_in = c_in * k * k
        self.w = Param(rng.standard_normal((c_out, c_in, k, k)) * math.sqrt(2.0 / fan_in))
        self.b = Param(np.zeros(c_out), decay=False)
        self.params = (self.w, self.b)
        self.stride, self.padding = stride, padding
        self.datapath = None
        self.input_grad = True

    def forward(self, x, train=True):
        self.x = x
        y = self.datapath.conv(x, self.w.value, self.stride, self.padding)
        return y + self.b.value[:, None, None]

    def backward(self, dy):
        self.w.grad = self.datapath.conv_backward_weight(dy, self.x, self.w.value.shape,
                                                         self.stride, self.padding)
        self.b.grad = dy.sum(axis=(0, 2, 3))
        if not self.input_grad:
            return None
        return self.datapath.conv_backward_data(dy, self.w.value, self.x.shape, self.stride,
                                                self.padding)


def _stat_axes(x):
    return (0,) if x.ndim == 2 else (0, 2, 3)


def _per_channel(v, x):
    return v if x.ndim == 2 else v[:, None, None]


class BatchNorm(Layer):
    """Batch normalisation over the batch (and spatial) axes, per feature/channel:
    y = gamma * (x - mean) / sqrt(var + eps) + beta; running statistics for evaluation."""

    def __init__(self, n, momentum=0.1, eps=1e-5):
        self.gamma, self.beta = Param(np.ones(n), decay=False), Param(np.zeros(n), decay=False)
        self.params = (self.gamma, self.beta)
        self.running_mean, self.running_var = np.zeros(n, f32), np.ones(n, f32)
        self.momentum, self.eps = momentum, eps

    def forward(self, x, train=True):
        ax = _stat_axes(x)
        if train:
            mean, var = x.mean(axis=ax), x.var(axis=ax)
            m = self.momentum
            self.running_mean = ((1 - m) * self.running_mean + m * mean).astype(f32)
            self.running_var = ((1 - m) * self.running_var + m * var).astype(f32)
        else:
            mean, var = self.running_mean, self.running_var
        self.inv = (1.0 / np.sqrt(var + self.eps)).astype(x.dtype)
        self.xhat = (x - _per_channel(mean, x)) * _per_channel(self.inv, x)
        return _per_channel(self.gamma.value, x) * self.xhat + _per_channel(self.beta.value, x)

    def backward(self, dy):
        ax, xh = _stat_axes(dy), self.xhat
        self.gamma.grad, self.beta.grad = (dy * xh).sum(axis=ax), dy.sum(axis=ax)
        g = dy * _per_channel(self.gamma.value, dy)
        return _per_channel(self.inv, dy) * (g - g.mean(axis=ax, keepdims=True)
                                             - xh * (g * xh).mean(axis=ax, keepdims=True))


class RangeBatchNorm(BatchNorm):
    """Range batch normalisation (Banner et al. 2018, section 3): the standard deviation replaced by
    C(n) * (max - min) of the batch, C(n) = 1 / sqrt(2 ln n) for n values per channel, which
    needs no squares and tolerates low precision; the gradient flows through the extremes.  For
    Gaussian data C(n) * range is about 1.7 sigma (n = 4096; the learned gamma absorbs it).  The
    whole channel is one range (the authors' code averages the ranges of 16 chunks instead)."""

    def forward(self, x, train=True):
        ax = _stat_axes(x)
        if not train:
            return super().forward(x, train=False)
        n = x.size // x.shape[1]
        c = 1.0 / math.sqrt(2.0 * math.log(n))
        mean = x.mean(axis=ax)
        xc = x - _per_channel(mean, x)
        flat = np.moveaxis(xc, 1, 0).reshape(x.shape[1], -1)
        self.imax, self.imin = flat.argmax(axis=1), flat.argmin(axis=1)
        scale = c * (flat.max(axis=1) - flat.min(axis=1))
        m = self.momentum
        self.running_mean = ((1 - m) * self.running_mean + m * mean).astype(f32)
        self.running_var = ((1 - m) * self.running_var + m * scale * scale).astype(f32)
        self.c, self.inv = c, (1.0 / (scale + self.eps)).astype(x.dtype)
        self.xhat = xc * _per_channel(self.inv, x)
        return _per_channel(self.gamma.value, x) * self.xhat + _per_channel(self.beta.value, x)

    def backward(self, dy):
        ax, xh = _stat_axes(dy), self.xhat
        self.gamma.grad, self.beta.grad = (dy * xh).sum(axis=ax), dy.sum(axis=ax)
        g = dy * _per_channel(self.gamma.value, dy)
        dx = _per_channel(self.inv, dy) * (g - g.mean(axis=ax, keepdims=True))
        # d(range)/dx is +1 at the maximum and -1 at the minimum of each channel
        pull = (g * xh).sum(axis=ax) * self.inv * self.c
        flat = np.moveaxis(dx, 1, 0).reshape(dx.shape[1], -1).copy()   # (channel, element)
        ch = np.arange(flat.shape[0])
        flat[ch, self.imax] -= pull
        flat[ch, self.imin] += pull
        shape = (dx.shape[1], dx.shape[0]) + dx.shape[2:]
        return np.moveaxis(flat.reshape(shape), 0, 1)


class ReLU(Layer):
    def forward(self, x, train=True):
        self.mask = x > 0
        return np.where(self.mask, x, f32(0))

    def backward(self, dy):
        return np.where(self.mask, dy, f32(0))


class MaxPool(Layer):
    """k x k windows with stride k (rows and columns beyond a multiple of k are dropped); the
    gradient goes to the first maximum of each window."""

    def __init__(self, k=2):
        self.k = k

    def _windows(self, x):
        n, c, h, w = x.shape
        k = self.k
        x = x[:, :, :h // k * k, :w // k * k]
        return x.reshape(n, c, h // k, k, w // k, k).transpose(0, 1, 2, 4, 3, 5) \
            .reshape(n, c, h // k, w // k, k * k)

    def forward(self, x, train=True):
        win = self._windows(x)
        self.shape, self.arg = x.shape, win.argmax(axis=-1)
        return np.take_along_axis(win, self.arg[..., None], axis=-1)[..., 0]

    def backward(self, dy):
        n, c, h, w = self.shape
        k = self.k
        g = np.zeros(dy.shape + (k * k,), dy.dtype)
        np.put_along_axis(g, self.arg[..., None], dy[..., None], axis=-1)
        g = g.reshape(n, c, h // k, w // k, k, k).transpose(0, 1, 2, 4, 3, 5) \
            .reshape(n, c, h // k * k, w // k * k)
        dx = np.zeros(self.shape, dy.dtype)
        dx[:, :, :g.shape[2], :g.shape[3]] = g
        return dx


class AvgPool(Layer):
    """Mean over k x k windows with stride k, or over the whole image (k=None: global)."""

    def __init__(self, k=None):
        self.k = k

    def forward(self, x, train=True):
        self.shape = x.shape
        n, c, h, w = x.shape
        k = self.k
        if k is None:
            return x.mean(axis=(2, 3), keepdims=True)
        return x[:, :, :h // k * k, :w // k * k].reshape(n, c, h // k, k, w // k, k) \
            .mean(axis=(3, 5))

    def backward(self, dy):
        n, c, h, w = self.shape
        if self.k is None:
            return np.broadcast_to(dy / f32(h * w), self.shape).copy()
        k = self.k
        g = np.repeat(np.repeat(dy / f32(k * k), k, axis=2), k, axis=3)
        dx = np.zeros(self.shape, dy.dtype)
        dx[:, :, :g.shape[2], :g.shape[3]] = g
        return dx


class Flatten(Layer):
    def forward(self, x, train=True):
        self.shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dy):
        return dy.reshape(self.shape)


class Sequential(Layer):
    def __init__(self, *layers):
        self.layers = list(layers)

    def children(self):
        return self.layers

    def forward(self, x, train=True):
        for layer in self.layers:
            x = layer.forward(x, train)
        return x

    def backward(self, dy):
        for layer in reversed(self.layers):
            if dy is None:                     # below a layer that needs no input gradient
                break
            dy = layer.backward(dy)
        return dy


class Residual(Layer):
    """y = body(x) + shortcut(x); the shortcut is the identity unless a layer is given."""

    def __init__(self, body, shortcut=None):
        self.body, self.shortcut = body, shortcut

    def children(self):
        return (self.body,) + (() if self.shortcut is None else (self.shortcut,))

    def forward(self, x, train=True):
        skip = x if self.shortcut is None else self.shortcut.forward(x, train)
        return self.body.forward(x, train) + skip

    def backward(self, dy):
        skip = dy if self.shortcut is None else self.shortcut.backward(dy)
        return self.body.backward(dy) + skip


def softmax_cross_entropy(logits, labels):
    """Mean cross-entropy of softmax(logits) against integer labels, and its gradient."""
    z = logits.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    n = len(labels)
    loss = -logp[np.arange(n), labels].mean()
    grad = np.exp(logp)
    grad[np.arange(n), labels] -= 1.0
    return float(loss), (grad / n).astype(f32)


class Model(Sequential):
    """A network: layers in order, the recipe they run under, and its parameters."""

    def __init__(self, name, *layers):
        super().__init__(*layers)
        self.name = name
        self.recipe = None

    def gemm_layers(self):
        """The layers whose products run through a datapath (Linear, Conv2d, attention)."""
        return [m for m in self.walk() if hasattr(m, "datapath")]

    def configure(self, recipe):
        """Give each Linear/Conv2d/attention the datapath of ``recipe``; the first and last of
        them, and attention's products, take ``recipe.keep_recipe`` where ``recipe.keep`` names
        them ("first", "last", "attention")."""
        self.recipe = recipe
        gl = self.gemm_layers()
        weighted = [m for m in gl if not getattr(m, "is_attention", False)]
        for i, layer in enumerate(gl):
            if getattr(layer, "is_attention", False):
                kept = "attention" in recipe.keep
            else:                        # first and last among the weight layers
                kept = (layer is weighted[0] and "first" in recipe.keep) or \
                    (layer is weighted[-1] and "last" in recipe.keep)
            layer.datapath = Datapath(recipe.keep_recipe if kept else recipe, i)
        if gl and gl[0] in self.layers and \
                all(isinstance(m, Flatten) for m in self.layers[:self.layers.index(gl[0])]):
            gl[0].input_grad = False                  # nothing needs the data's gradient
        return self

    def parameters(self):
        return [p for m in self.walk() for p in m.params]

    def set_step(self, seed, step):
        """Key the next tensors' stochastic rounding by (seed, step); roundings kept from the
        previous step are dropped (the weights change between steps)."""
        for layer in self.gemm_layers():
            layer.datapath.set_step(seed, step)
