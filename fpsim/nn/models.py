"""Networks sized for 8x8 single-channel images (scikit-learn's digits), and the character-level
Transformer "gpt" (:mod:`fpsim.nn.transformer`): ``build(name, ...)``.

>>> from fpsim.nn import models
>>> [type(m).__name__ for m in models.build("mlp").layers]
['Flatten', 'Linear', 'ReLU', 'Linear', 'ReLU', 'Linear']
"""

from __future__ import annotations

import numpy as np

from . import transformer
from .layers import (AvgPool, BatchNorm, Conv2d, Flatten, Linear, MaxPool, Model, RangeBatchNorm,
                     ReLU, Residual, Sequential)

IMAGE_MODELS = ("mlp", "lenet", "resnet", "resnet_rangebn")
TEXT_MODELS = ("gpt",)                   # token windows in, one set of logits per position out
MODELS = IMAGE_MODELS + TEXT_MODELS


def mlp(rng, n_in=64, hidden=128, n_classes=10):
    """64 -> 128 -> 128 -> 10 with ReLUs: three GEMM layers, so a recipe that keeps the first and
    last at higher precision still has one low-precision layer."""
    return Model("mlp", Flatten(), Linear(n_in, hidden, rng), ReLU(), Linear(hidden, hidden, rng),
                 ReLU(), Linear(hidden, n_classes, rng))


def lenet(rng, n_classes=10):
    """LeNet-style: conv 3x3 (8) - pool - conv 3x3 (16) - pool - 64 - 64 - 10."""
    return Model("lenet", Conv2d(1, 8, 3, rng, padding=1), ReLU(), MaxPool(2),
                 Conv2d(8, 16, 3, rng, padding=1), ReLU(), MaxPool(2), Flatten(),
                 Linear(64, 64, rng), ReLU(), Linear(64, n_classes, rng))


def _block(c, rng, norm):
    return Residual(Sequential(Conv2d(c, c, 3, rng, padding=1), norm(c), ReLU(),
                               Conv2d(c, c, 3, rng, padding=1), norm(c)))


def resnet(rng, n_classes=10, width=16, norm=BatchNorm, name="resnet"):
    """A small residual CNN: conv 3x3 (16) - BN - ReLU, two residual blocks (conv-BN-ReLU-conv-BN
    plus identity, then ReLU), global average pool, 16 -> 10.  ``norm=RangeBatchNorm`` swaps in
    Banner et al.'s range normalisation."""
    return Model(name, Conv2d(1, width, 3, rng, padding=1), norm(width), ReLU(),
                 _block(width, rng, norm), ReLU(), _block(width, rng, norm), ReLU(),
                 AvgPool(), Flatten(), Linear(width, n_classes, rng))


def build(name="mlp", seed=0, n_classes=10):
    """The model called ``name`` (one of :data:`MODELS`), initialised from ``seed``."""
    if name not in MODELS:
        raise ValueError(f"model must be one of {', '.join(MODELS)}; got {name!r}")
    rng = np.random.default_rng([seed, 3])         # its own stream (fpsim.data uses 1, 2)
    if name == "gpt":
        return transformer.gpt(rng, vocab=n_classes)
    if name == "resnet_rangebn":
        return resnet(rng, n_classes, norm=RangeBatchNorm, name=name)
    return {"mlp": mlp, "lenet": lenet, "resnet": resnet}[name](rng, n_classes=n_classes)
