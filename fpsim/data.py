"""Datasets that need no network: scikit-learn's handwritten digits, a generated set, and the
English text of the standard library's documentation (``pydoc_data.topics``) for language models.

The image datasets are :class:`Dataset` s of float32 images (N, 1, 8, 8) scaled to [0, 1] and
int64 labels, split into train and test parts by ``seed`` alone, so the same seed gives the same
split on every machine.  "pydoc" holds int64 character windows (N, T) and their next characters
(N, T), split by position (no seed needed).

>>> from fpsim import data
>>> d = data.load("digits", seed=0)
>>> d.x_train.shape, d.x_test.shape, d.n_classes
((1348, 1, 8, 8), (449, 1, 8, 8), 10)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DATASETS = ("digits", "synthetic", "pydoc")
TEXT_DATASETS = ("pydoc",)


@dataclass(frozen=True, eq=False)
class Dataset:
    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    chars: str = ""            # a text dataset's alphabet: token i is chars[i]

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


def pydoc(context=64, valid_fraction=0.1) -> Dataset:
    """Character-level English: the topics of Python's own documentation
    (``pydoc_data.topics.topics``, every installation carries it; about 465 000 characters and
    103 distinct ones on Python 3.11), joined in key order.  The first 90% (by position) is the
    training text, the rest validation; each is cut into non-overlapping windows of ``context``
    characters, the targets being the same windows shifted by one.

    >>> from fpsim import data
    >>> d = data.pydoc()
    >>> shifted = bool((d.x_train[0, 1:] == d.y_train[0, :-1]).all())
    >>> d.x_train.shape[1], d.n_classes == len(d.chars), shifted
    (64, True, True)
    """
    from pydoc_data.topics import topics
    text = "\n".join(topics[k] for k in sorted(topics))
    chars = "".join(sorted(set(text)))
    ids = np.frombuffer(text.encode("utf-32-le"), np.uint32)
    table = {c: i for i, c in enumerate(chars)}
    tokens = np.array([table[chr(c)] for c in ids], np.int64)
    cut = int(len(tokens) * (1 - valid_fraction))

    def windows(t):
        n = (len(t) - 1) // context
        return t[:n * context].reshape(n, context), t[1:n * context + 1].reshape(n, context)

    (xt, yt), (xv, yv) = windows(tokens[:cut]), windows(tokens[cut:])
    return Dataset("pydoc", xt, yt, xv, yv, len(chars), chars)


def load(name="digits", seed=0) -> Dataset:
    """The dataset called ``name`` (one of :data:`DATASETS`), split by ``seed`` (by position for
    "pydoc")."""
    if name not in DATASETS:
        raise ValueError(f"dataset must be one of {', '.join(DATASETS)}; got {name!r}")
    if name == "pydoc":
        return pydoc()
    return digits(seed) if name == "digits" else synthetic(seed)
