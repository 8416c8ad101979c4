"""im2col for convolutions lowered onto the GEMM kernel.

``cols[n, (c*kh + r)*kw + s, oh*Wo + ow] = x[n, c, oh*sh + r - ph, ow*sw + s - pw]``, zero where
that index lies outside x (the zero padding, ``ph``/``pw`` rows and columns before x; a negative
``ph``/``pw`` crops): the reduction index is ordered (channel, kernel row, kernel column), the
column index (output row, output column).  Copies only; every rounding happens in the GEMM.
"""

import numpy as np
from numba import njit, prange


@njit(cache=True)
def source_table(hh, ww, kh, kw, sh, sw, ph, pw, ho, wo):
    """src[r*kw + s, oh*wo + ow] = the flat index ih*ww + iw in one channel of x that the im2col
    element reads (ih = oh*sh + r - ph, iw = ow*sw + s - pw), or -1 where that lies outside x
    (padding).  The same for every image and channel."""
    src = np.empty((kh * kw, ho * wo), np.int64)
    for r in range(kh):
        for s in range(kw):
            for oh in range(ho):
                ih = oh * sh + r - ph
                for ow in range(wo):
                    iw = ow * sw + s - pw
                    inside = 0 <= ih < hh and 0 <= iw < ww
                    src[r * kw + s, oh * wo + ow] = ih * ww + iw if inside else -1
    return src


@njit(cache=True, parallel=True)
def im2col(x, kh, kw, sh, sw, ph, pw, ho, wo, cols, wide):
    """Fill cols (N, C*kh*kw, ho*wo) from x (N, C, H, W), padded by ph rows and pw columns
    before (below 0: cropped) and by zeros after, as far as the output needs; ``wide``: cols is
    (C*kh*kw, N, ho*wo), the same values as one matrix of N*ho*wo columns.  Each row is one
    gather through :func:`source_table` (no branches per output row or column)."""
    nb, nc, hh, ww = x.shape
    src = source_table(hh, ww, kh, kw, sh, sw, ph, pw, ho, wo)
    planes = x.reshape(nb * nc, hh * ww)
    q = kh * kw
    for t in prange(nb * nc):
        n, c = t // nc, t % nc
        plane = planes[t]
        for k in range(q):
            dst = cols[c * q + k, n] if wide else cols[n, c * q + k]
            row = src[k]
            for p in range(ho * wo):
                v = row[p]
                dst[p] = plane[max(v, 0)] if v >= 0 else 0.0
