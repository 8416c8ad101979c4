"""Datasets that need no network: scikit-learn's handwritten digits and a generated set.

Every dataset is a :class:`Dataset` of float32 images (N, 1, 8, 8) scaled to [0, 1] and int64
labels, split into train and test parts by ``seed`` alone, so the same seed gives the same split
on every machine.

>>> from fpsim import data
>>> d = data.load("digits", seed=0)
>>> d.x_train.shape, d.x_test.shape, d.n_classes
((1348, 1, 8, 8), (449, 1, 8, 8), 10)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DATASETS = ("digits", "synthetic")


@dataclass(frozen=True, eq=False)
class Dataset:
    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int

    @property
    def image_shape(self):
        return self.x_train.shape[1:]


def _split(name, x, y, n_classes, seed, test_fraction):
    order = np.random.default_rng([seed, 1]).permutation(len(x))     # stream 1: the split
    n_test = int(round(len(x) * test_fraction))
    test, train = order[:n_test], order[n_test:]
    return Dataset(name, x[train], y[train], x[test], y[test], n_classes)


def digits(seed=0, test_fraction=0.25) -> Dataset:
    """scikit-learn's 1797 handwritten digits (8x8, 17 grey levels), pixels / 16."""
    from sklearn.datasets import load_digits
    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]
    return _split("digits", x, d.target.astype(np.int64), 10, seed, test_fraction)


def synthetic(seed=0, test_fraction=0.25, n=600, n_classes=10, noise=0.35) -> Dataset:
    """A generated 8x8 set for quick runs: one smooth random prototype per class, and each image a
    prototype with Gaussian pixel noise, clipped to [0, 1].  Fixed by ``seed``."""
    rng = np.random.default_rng([seed, 2])          # 2 synthetic data (nn: 3 init, 4 order)
    coarse = rng.random((n_classes, 4, 4))
    protos = coarse.repeat(2, axis=1).repeat(2, axis=2)              # 8x8 blocks of 2x2 pixels
    y = np.arange(n) % n_classes
    x = protos[y] + noise * rng.standard_normal((n, 8, 8))
    x = np.clip(x, 0.0, 1.0).astype(np.float32)[:, None]
    return _split("synthetic", x, y.astype(np.int64), n_classes, seed, test_fraction)


def load(name="digits", seed=0) -> Dataset:
    """The dataset called ``name`` (one of :data:`DATASETS`), split by ``seed``."""
    if name not in DATASETS:
        raise ValueError(f"dataset must be one of {', '.join(DATASETS)}; got {name!r}")
    return digits(seed) if name == "digits" else synthetic(seed)
