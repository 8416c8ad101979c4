"""The optimizers: SGD with momentum and weight decay, and AdamW, on master weights of a given
format.

Per parameter: ``g = grad / loss_scale + weight_decay * w`` (decay where the parameter takes it),
``v = momentum * v + g``, ``w = w - lr * v``; with a master scheme (a recipe's ``master``: e.g.
``Round("fp16_169", "sr")``, Wang et al. 2018's FP16 update with stochastic rounding), v and w
are each rounded by it after the update.  The arithmetic in between is float64, rounded once.

>>> import numpy as np
>>> from fpsim.nn import SGD, Param, Round
>>> w = Param(np.array([1.0, 2.0]))
>>> opt = SGD([w], lr=0.5, momentum=0.0, master=Round("e5m2"))
>>> w.grad = np.array([0.25, 0.25], np.float32)
>>> opt.step(step=0)
>>> w.value                     # 0.875 and 1.875, rounded to e5m2: 1.875 ties to even 2
array([0.875, 2.   ], dtype=float32)
"""

from __future__ import annotations

import numpy as np

from .datapath import mix_seed
from .quantizers import make_quantizer


def check_hyperparameters(lr, momentum, weight_decay):
    """ValueError naming the first of lr in [0, 1000], momentum in [0, 1), weight_decay in
    [0, 1] that is not a finite number in its range."""
    for name, v, hi, open_hi in (("lr", lr, 1e3, False), ("momentum", momentum, 1.0, True),
                                 ("weight_decay", weight_decay, 1.0, False)):
        ok = isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) \
            and np.isfinite(v) and 0 <= v and (v < hi if open_hi else v <= hi)
        if not ok:
            raise ValueError(f"{name} must be a number in [0, {hi:g}{')' if open_hi else ']'}, "
                             f"got {v!r}")


def master_round(rounder, x, key):
    """x rounded by a master-weight quantizer (keyed for stochastic rounding), as float32."""
    v, _, scale = rounder(np.asarray(x, np.float64), -1, "update", key)
    return np.asarray(v * scale if scale != 1.0 else v, np.float32)


class SGD:
    def __init__(self, params, lr=0.05, momentum=0.9, weight_decay=0.0, master=None, seed=0):
        check_hyperparameters(lr, momentum, weight_decay)
        self.params, self.lr, self.momentum, self.weight_decay = params, lr, momentum, weight_decay
        self.seed = seed
        self.velocity = [np.zeros_like(p.value) for p in params]
        # one stateful quantizer per tensor (Autoflex keeps statistics per tensor)
        self.rounders = [(make_quantizer(master), make_quantizer(master)) for _ in params]
        for i, p in enumerate(params):
            p.value = self._round(i, 1, p.value, -1)

    def _round(self, i, which, x, step):
        return master_round(self.rounders[i][which], x, mix_seed(self.seed, step, i, which))

    def step(self, step, loss_scale=1.0):
        for i, (p, v) in enumerate(zip(self.params, self.velocity)):
            g = p.grad.astype(np.float64) / loss_scale
            if p.decay and self.weight_decay:
                g = g + self.weight_decay * p.value
            v = self._round(i, 0, self.momentum * v + g, step)
            self.velocity[i] = v
            p.value = self._round(i, 1, p.value - self.lr * v.astype(np.float64), step)


class AdamW:
    """Adam with decoupled weight decay (Loshchilov and Hutter 2019) and bias correction
    (Kingma and Ba 2015).  Per parameter, at step t = 1, 2, ...: ``g = grad / loss_scale``,
    ``m = b1 m + (1 - b1) g``, ``v = b2 v + (1 - b2) g^2``,
    ``w = w - lr (m / (1 - b1^t) / (sqrt(v / (1 - b2^t)) + eps) + weight_decay w)`` (decay
    where the parameter takes it).  Master weights and both moments are float32 (rounded by the
    recipe's ``master`` scheme when given, as SGD does); the arithmetic is float64.

    >>> import numpy as np
    >>> from fpsim.nn import AdamW, Param
    >>> w = Param(np.array([1.0, -1.0]))
    >>> opt = AdamW([w], lr=0.1, weight_decay=0.0)
    >>> w.grad = np.array([0.5, -2.0], np.float32)
    >>> opt.step(step=0)
    >>> w.value                       # the first step moves each weight by lr against its sign
    array([ 0.9, -0.9], dtype=float32)
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1,
                 master=None, seed=0):
        check_hyperparameters(lr, 0.0, weight_decay)
        for name, b in zip(("betas[0]", "betas[1]"), betas):
            if not (isinstance(b, (int, float)) and 0 <= b < 1):
                raise ValueError(f"{name} must be a number in [0, 1), got {b!r}")
        if not (isinstance(eps, (int, float)) and eps > 0):
            raise ValueError(f"eps must be a number > 0, got {eps!r}")
        self.params, self.lr, self.betas, self.eps = params, lr, tuple(betas), eps
        self.weight_decay, self.seed, self.t = weight_decay, seed, 0
        self.moments = [(np.zeros_like(p.value), np.zeros_like(p.value)) for p in params]
        self.rounders = [tuple(make_quantizer(master) for _ in range(3)) for _ in params]
        for i, p in enumerate(params):
            p.value = self._round(i, 2, p.value, -1)

    def _round(self, i, which, x, step):
        return master_round(self.rounders[i][which], x, mix_seed(self.seed, step, i, which))

    def step(self, step, loss_scale=1.0):
        self.t += 1
        b1, b2 = self.betas
        c1, c2 = 1.0 - b1 ** self.t, 1.0 - b2 ** self.t
        for i, p in enumerate(self.params):
            g = p.grad.astype(np.float64) / loss_scale
            m, v = self.moments[i]
            m = self._round(i, 0, b1 * m + (1 - b1) * g, step)
            v = self._round(i, 1, b2 * v + (1 - b2) * g * g, step)
            self.moments[i] = (m, v)
            w = p.value.astype(np.float64)
            upd = (m / c1) / (np.sqrt(v / c2) + self.eps)
            if p.decay and self.weight_decay:
                upd = upd + self.weight_decay * w
            p.value = self._round(i, 2, w - self.lr * upd, step)
