"""Convolutions (NCHW activations, FCkhkw weights) lowered onto :func:`fpsim.gemm` through
im2col, with the reduction index ordered (channel, kernel row, kernel column)."""

from __future__ import annotations

import numbers

import numpy as np

from ._args import check_seed
from .accum import Accumulator, kulisch_overflows, report_collected_overflows
from .gemm import check_acc, gemm_values, into, stochastic
from .quantize import dtype_format, operand
from .kernels import conv as _conv

CONV_COLS = 1 << 20   # im2col values (float64) per group of images on the CPU: fpsim's choice


def _pair(name, v, low):
    if isinstance(v, numbers.Integral) and not isinstance(v, bool):
        v = (int(v), int(v))
    if not (isinstance(v, tuple) and len(v) == 2 and all(isinstance(t, numbers.Integral)
                                                          and not isinstance(t, bool) for t in v)):
        raise ValueError(f"{name} must be an int or a pair of ints, got {v!r}")
    if min(v) < low:
        raise ValueError(f"{name} must be >= {low}, got {v!r}")
    return int(v[0]), int(v[1])


def _check_conv(x_shape, w_shape, stride, padding):
    if len(x_shape) != 4 or len(w_shape) != 4:
        raise ValueError(f"x must be (N, C, H, W) and w (F, C, kh, kw), got {x_shape} and "
                         f"{w_shape}")
    if x_shape[1] != w_shape[1]:
        raise ValueError(f"channels differ: x has {x_shape[1]} (axis 1), w has {w_shape[1]}")
    sh, sw = _pair("stride", stride, 1)
    ph, pw = _pair("padding", padding, 0)
    kh, kw = w_shape[2], w_shape[3]
    ho = (x_shape[2] + 2 * ph - kh) // sh + 1
    wo = (x_shape[3] + 2 * pw - kw) // sw + 1
    if ho < 1 or wo < 1:
        raise ValueError(f"the kernel {kh}x{kw} does not fit the padded input "
                         f"{x_shape[2] + 2 * ph}x{x_shape[3] + 2 * pw}")
    return (sh, sw), (ph, pw), (ho, wo)


def _im2col(xv, kh, kw, stride, padding, out_hw, wide=False):
    """cols (N, C*kh*kw, Ho*Wo) of float64 values xv, zero-padded by ``padding`` rows and
    columns before (negative: cropped) and as far as the output needs after; ``wide``: the
    same values laid out as one matrix (C*kh*kw, N*Ho*Wo)."""
    (sh, sw), (ph, pw), (ho, wo) = stride, padding, out_hw
    n, rows = xv.shape[0], xv.shape[1] * kh * kw
    cols = np.empty((rows, n, ho * wo) if wide else (n, rows, ho * wo))
    _conv.im2col(np.ascontiguousarray(xv), kh, kw, sh, sw, ph, pw, ho, wo, cols, wide)
    return cols.reshape(rows, n * ho * wo) if wide else cols


def _one_gemm(acc, n):
    """Whether the N GEMMs of a batch that share one weight matrix may run as one GEMM of N
    times the columns: every output element then sums the same products in the same order
    (chunks, lanes and the data bound, a maximum over all columns either way, are unchanged),
    so only the numbering of the elements changes - which stochastic rounding's random words
    depend on.  So: N > 1 and no stochastic rounding in the accumulator (an inner one
    included).  One GEMM of N*Ho*Wo columns runs the kernels' column vectors full where
    Ho*Wo is small."""
    acc = check_acc(acc)
    while isinstance(acc, Accumulator):
        if acc.rounding == "sr":
            return False
        acc = acc.inner
    return n > 1


def _group(count, values_each, device):
    """How many of ``count`` images (or channels) share one im2col matrix: all of them on a
    GPU, else as many as fit in CONV_COLS values at ``values_each`` each, evened out over the
    groups (8 as 4 + 4, not 7 + 1); ``count`` itself means one group."""
    group = count if device != "cpu" else max(1, CONV_COLS // max(1, values_each))
    return count if group >= count else -(-count // -(-count // group))


def _conv_gemm(w2, v, cols_of, fw, fv, acc, product, out_format, seed, product_rounding,
               device, hw):
    """(N, F, *hw): the GEMM of w2 (F, R) with the im2col matrices ``cols_of(images, wide)``
    (R rows) of the N images of v, in groups of images whose matrices hold at most CONV_COLS
    values together on the CPU (peak memory: one group's matrix, not the whole batch's).
    Each output element depends only on its image's columns, so the groups give the whole
    GEMM's results; stochastic words are keyed by the index in the whole output (``place``,
    kernels.gemm.element) under one key, and a W-bit Kulisch register's overflows are counted
    over the groups and reported once."""
    n, nf = v.shape[0], w2.shape[0]
    wide = _one_gemm(acc, n)
    hwn = hw[0] * hw[1]
    group = _group(n, w2.shape[1] * hwn, device)
    if group >= n:                                 # one group (also for an empty batch)
        y = gemm_values(w2, cols_of(v, wide), fw, fv, acc, product, out_format, seed,
                        product_rounding, device=device)
        return _batch_major(y, n, hw) if wide else y.reshape((n, nf) + hw)
    acc = check_acc(acc)
    key = check_seed(seed, stochastic(acc))
    out = None
    with kulisch_overflows() as overflows:
        for n0 in range(0, n, group):
            part = v[n0:n0 + group]
            g = part.shape[0]
            # where this group's C lies in the whole C: (F, N*hwn) wide, else (N, F, hwn)
            place = (n0 * hwn, n * hwn, nf * n * hwn) if wide else (n0 * nf * hwn, hwn, nf * hwn)
            y = gemm_values(w2, cols_of(part, wide), fw, fv, acc, product, out_format, None,
                            product_rounding, key=key, place=place)
            y = _batch_major(y, g, hw) if wide else y.reshape((g, nf) + hw)
            if out is None:
                out = np.empty((n,) + y.shape[1:], y.dtype)
            out[n0:n0 + g] = y
    report_collected_overflows(acc, overflows, stacklevel=4)
    return out


def _batch_major(y, n, hw):
    """(F, N*Ho*Wo) from one GEMM as (N, F, Ho, Wo), contiguous."""
    return np.ascontiguousarray(y.reshape((y.shape[0], n) + hw).transpose(1, 0, 2, 3))


def conv2d(x, w, stride=1, padding=0, acc=None, product=None, out_format=None, seed=None,
           x_format=None, w_format=None, quantize_operands=False, product_rounding="rne",
           out=None, device="cpu"):
    """2-D convolution (cross-correlation, NCHW) through :func:`gemm`'s datapath.

    ``y[n, f, oh, ow] = sum over (c, r, s) of w[f, c, r, s] * x[n, c, oh*sh + r - ph, ow*sw + s - pw]``
    with the reduction in the order (channel c, kernel row r, kernel column s), i.e. gemm of
    ``w.reshape(F, C*kh*kw)`` with the im2col matrix of ``x``.  Zero padding is multiplied and
    accumulated like any operand (+0 products), as im2col hardware does.  ``acc``, ``product``,
    ``out_format``, ``seed``, ``quantize_operands``, ``product_rounding``, ``out`` and ``device``
    as in :func:`gemm`; ``x_format``/``w_format`` are
    the operand formats (default: from the dtype).  Memory: on the CPU the im2col matrix is
    built for groups of images at a time (at most ``fpsim.conv.CONV_COLS`` values; the
    gradients likewise, the weight gradient by groups of channels), the results unchanged.

    >>> import numpy as np, fpsim
    >>> x = np.ones((1, 1, 3, 3), np.float32); w = np.ones((2, 1, 2, 2), np.float32)
    >>> fpsim.conv2d(x, w, padding=1)[0, 0]
    array([[1., 2., 2., 1.],
           [2., 4., 4., 2.],
           [2., 4., 4., 2.],
           [1., 2., 2., 1.]], dtype=float32)
    """
    x_arr, w_arr = np.asarray(x), np.asarray(w)
    _check_conv(x_arr.shape, w_arr.shape, stride, padding)
    (xv, fx), (wv, fw) = _conv_operands((("x", x_arr, x_format), ("w", w_arr, w_format)),
                                        quantize_operands)
    return into(out, conv2d_values(xv, wv, fx, fw, stride, padding, acc, product, out_format,
                                   seed, product_rounding, device))


def conv2d_values(xv, wv, fx, fw, stride=1, padding=0, acc=None, product=None, out_format=None,
                  seed=None, product_rounding="rne", device="cpu"):
    """:func:`conv2d` of float64 arrays already known to hold values of the formats fx and fw:
    the check that they do (which rounds them once more) is skipped, as :func:`gemm_values`
    skips it for gemm.  fpsim.nn's datapath calls it with operands its quantizers have just
    rounded."""
    stride, padding, (ho, wo) = _check_conv(xv.shape, wv.shape, stride, padding)
    nf, _, kh, kw = wv.shape
    return _conv_gemm(wv.reshape(nf, -1), xv,
                      lambda v, wide: _im2col(v, kh, kw, stride, padding, (ho, wo), wide),
                      fw, fx, acc, product, out_format, seed, product_rounding, device,
                      (ho, wo))


def conv2d_backward_data(dy, w, x_shape, stride=1, padding=0, acc=None, product=None,
                         out_format=None, seed=None, dy_format=None, w_format=None,
                         quantize_operands=False, product_rounding="rne", out=None,
                         device="cpu"):
    """Gradient of :func:`conv2d` with respect to x: the transposed convolution, through gemm.

    ``dy`` (N, F, Ho, Wo) is dilated by the stride (zeros between rows and columns), padded by
    ``kh - 1 - ph`` (cropped where that is negative) and convolved with the flipped, transposed
    kernel ``w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)``; the reduction order is (output channel
    f, flipped kernel row, flipped kernel column).  Inserted zeros are accumulated as +0 products.
    The other arguments as in :func:`conv2d` (``device`` included).

    >>> import numpy as np, fpsim
    >>> dy = np.ones((1, 1, 2, 2), np.float32); w = np.ones((1, 1, 2, 2), np.float32)
    >>> fpsim.conv2d_backward_data(dy, w, (1, 1, 3, 3))[0, 0]
    array([[1., 2., 1.],
           [2., 4., 2.],
           [1., 2., 1.]], dtype=float32)
    """
    dy_arr, w_arr = np.asarray(dy), np.asarray(w)
    x_shape = tuple(int(s) for s in x_shape)
    _, _, (ho, wo) = _check_conv(x_shape, w_arr.shape, stride, padding)
    _check_dy_shape(dy_arr, (x_shape[0], w_arr.shape[0], ho, wo))
    (dyv, fd), (wv, fw) = _conv_operands((("dy", dy_arr, dy_format), ("w", w_arr, w_format)),
                                         quantize_operands)
    return into(out, conv2d_backward_data_values(dyv, wv, fd, fw, x_shape, stride, padding, acc,
                                                 product, out_format, seed, product_rounding,
                                                 device))


def conv2d_backward_data_values(dyv, wv, fd, fw, x_shape, stride=1, padding=0, acc=None,
                                product=None, out_format=None, seed=None,
                                product_rounding="rne", device="cpu"):
    """:func:`conv2d_backward_data` of float64 arrays known to hold values of fd and fw (see
    :func:`conv2d_values`)."""
    x_shape = tuple(int(s) for s in x_shape)
    (sh, sw), (ph, pw), (ho, wo) = _check_conv(x_shape, wv.shape, stride, padding)
    _check_dy_shape(dyv, (x_shape[0], wv.shape[0], ho, wo))
    kh, kw = wv.shape[2], wv.shape[3]
    wt = np.ascontiguousarray(wv[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))

    def cols_of(v, wide):                        # dy of some images, dilated by the stride
        dil = np.zeros(v.shape[:2] + ((ho - 1) * sh + 1, (wo - 1) * sw + 1))
        dil[:, :, ::sh, ::sw] = v
        return _im2col(dil, kh, kw, (1, 1), (kh - 1 - ph, kw - 1 - pw), x_shape[2:], wide)
    return _conv_gemm(wt.reshape(wt.shape[0], -1), dyv, cols_of, fw, fd, acc, product,
                      out_format, seed, product_rounding, device, x_shape[2:])


def _conv_operands(named, quantize_operands):
    """(float64 values, format) of each (name, array, declared format) operand of a conv."""
    out = []
    for name, arr, declared in named:
        f = dtype_format(name, arr, declared)
        out.append((operand(name, arr, f, quantize_operands), f))
    return out


def _check_dy_shape(dy_arr, want):
    if dy_arr.shape != want:
        raise ValueError(f"dy must have shape {want} (batch, filters, output rows, output "
                         f"columns), got {dy_arr.shape}")


def conv2d_backward_weight(dy, x, w_shape, stride=1, padding=0, acc=None, product=None,
                           out_format=None, seed=None, dy_format=None, x_format=None,
                           quantize_operands=False, product_rounding="rne", out=None,
                           device="cpu"):
    """Gradient of :func:`conv2d` with respect to w, through gemm.

    ``dw[f, (c, r, s)] = sum over (n, oh, ow) of dy[n, f, oh, ow] * cols[n, (c, r, s), (oh, ow)]``:
    gemm of dy as (F, N*Ho*Wo) with the transposed im2col matrix, reduction order (batch n,
    output row, output column).  The other arguments as in :func:`conv2d` (``device`` included).

    >>> import numpy as np, fpsim
    >>> dy = np.ones((1, 1, 2, 2), np.float32); x = np.arange(9, dtype=np.float32).reshape(1, 1, 3, 3)
    >>> fpsim.conv2d_backward_weight(dy, x, (1, 1, 2, 2))[0, 0]
    array([[ 8., 12.],
           [20., 24.]], dtype=float32)
    """
    dy_arr, x_arr = np.asarray(dy), np.asarray(x)
    w_shape = tuple(int(s) for s in w_shape)
    _, _, (ho, wo) = _check_conv(x_arr.shape, w_shape, stride, padding)
    _check_dy_shape(dy_arr, (x_arr.shape[0], w_shape[0], ho, wo))
    (dyv, fd), (xv, fx) = _conv_operands((("dy", dy_arr, dy_format), ("x", x_arr, x_format)),
                                         quantize_operands)
    return into(out, conv2d_backward_weight_values(dyv, xv, fd, fx, w_shape, stride, padding,
                                                   acc, product, out_format, seed,
                                                   product_rounding, device))


def conv2d_backward_weight_values(dyv, xv, fd, fx, w_shape, stride=1, padding=0, acc=None,
                                  product=None, out_format=None, seed=None,
                                  product_rounding="rne", device="cpu"):
    """:func:`conv2d_backward_weight` of float64 arrays known to hold values of fd and fx (see
    :func:`conv2d_values`)."""
    w_shape = tuple(int(s) for s in w_shape)
    stride, padding, (ho, wo) = _check_conv(xv.shape, w_shape, stride, padding)
    _check_dy_shape(dyv, (xv.shape[0], w_shape[0], ho, wo))
    nf, nc, kk = w_shape[0], w_shape[1], w_shape[2] * w_shape[3]
    dy2 = dyv.transpose(1, 0, 2, 3).reshape(nf, -1)

    def cols_t(c0, c1):          # the transposed im2col columns of channels c0..c1-1
        cols = _im2col(xv[:, c0:c1], w_shape[2], w_shape[3], stride, padding, (ho, wo))
        return np.ascontiguousarray(cols.transpose(0, 2, 1).reshape(-1, cols.shape[1]))
    # groups of channels on the CPU (their columns of dw), as _conv_gemm's groups of images
    group = _group(nc, kk * dy2.shape[1], device)
    if group >= nc:
        dw = gemm_values(dy2, cols_t(0, nc), fd, fx, acc, product, out_format, seed,
                         product_rounding, device=device)
        return dw.reshape(w_shape)
    acc = check_acc(acc)
    key = check_seed(seed, stochastic(acc))
    dw = None
    with kulisch_overflows() as overflows:
        for c0 in range(0, nc, group):
            c1 = min(nc, c0 + group)
            part = gemm_values(dy2, cols_t(c0, c1), fd, fx, acc, product, out_format, None,
                               product_rounding, key=key, place=(c0 * kk, nc * kk, nf * nc * kk))
            if dw is None:
                dw = np.empty((nf, nc * kk), part.dtype)
            dw[:, c0 * kk:c1 * kk] = part
    report_collected_overflows(acc, overflows, stacklevel=3)
    return dw.reshape(w_shape)
