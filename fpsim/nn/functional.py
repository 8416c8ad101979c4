"""NumPy convolutions for the "fp32" baseline, with fpsim.conv2d's shapes and semantics (NCHW
cross-correlation, zero padding); numpy's matmul does the products in the operands' dtype
(float32 in training; float64 for the gradient checks)."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def _pair(v):
    return (v, v) if np.isscalar(v) else tuple(v)


def _cols(x, kh, kw, stride, padding):
    """im2col: (N*Ho*Wo, C*kh*kw) rows ordered (n, oh, ow), columns (c, r, s)."""
    (sh, sw), (ph, pw) = _pair(stride), _pair(padding)
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    win = sliding_window_view(xp, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]
    n, c, ho, wo = win.shape[:4]
    return win.transpose(0, 2, 3, 1, 4, 5).reshape(n * ho * wo, c * kh * kw), (ho, wo)


def conv2d(x, w, stride=1, padding=0):
    f, _, kh, kw = w.shape
    cols, (ho, wo) = _cols(x, kh, kw, stride, padding)
    y = np.matmul(cols, w.reshape(f, -1).T)
    return y.reshape(x.shape[0], ho, wo, f).transpose(0, 3, 1, 2)


def conv2d_backward_weight(dy, x, w_shape, stride=1, padding=0):
    f, _, kh, kw = w_shape
    cols, _ = _cols(x, kh, kw, stride, padding)
    dy2 = dy.transpose(1, 0, 2, 3).reshape(f, -1)
    return np.matmul(dy2, cols).reshape(w_shape)


def conv2d_backward_data(dy, w, x_shape, stride=1, padding=0):
    (sh, sw), (ph, pw) = _pair(stride), _pair(padding)
    n, c, h, wd = x_shape
    f, _, kh, kw = w.shape
    ho, wo = dy.shape[2:]
    dcols = np.matmul(dy.transpose(0, 2, 3, 1).reshape(-1, f), w.reshape(f, -1)).reshape(n, ho, wo, c, kh, kw)
    dxp = np.zeros((n, c, h + 2 * ph + sh, wd + 2 * pw + sw), dcols.dtype)
    for r in range(kh):                       # col2im: kh*kw strided slices, not elements
        for s in range(kw):
            dxp[:, :, r:r + sh * ho:sh, s:s + sw * wo:sw] += dcols[..., r, s].transpose(0, 3, 1, 2)
    return dxp[:, :, ph:ph + h, pw:pw + wd]
