"""im2col for convolutions lowered onto the GEMM kernel.

``cols[n, (c*kh + r)*kw + s, oh*Wo + ow] = x[n, c, oh*sh + r - ph, ow*sw + s - pw]``, zero where
that index lies outside x (the zero padding, ``ph``/``pw`` rows and columns before x; a negative
``ph``/``pw`` crops): the reduction index is ordered (channel, kernel row, kernel column), the
column index (output row, output column).  Copies only; every rounding happens in the GEMM.
"""

from numba import njit, prange


@njit(cache=True, parallel=True)
def im2col(x, kh, kw, sh, sw, ph, pw, ho, wo, cols, wide):
    """Fill cols (N, C*kh*kw, ho*wo) from x (N, C, H, W), padded by ph rows and pw columns
    before (below 0: cropped) and by zeros after, as far as the output needs; ``wide``: cols is
    (C*kh*kw, N, ho*wo), the same values as one matrix of N*ho*wo columns."""
    nb, nc, hh, ww = x.shape
    for t in prange(nb * nc):
        n = t // nc
        c = t % nc
        for r in range(kh):
            for s in range(kw):
                row = (c * kh + r) * kw + s
                dst = cols[row, n] if wide else cols[n, row]
                # the output columns that read inside x: 0 <= ow*sw + s - pw < ww
                lo = min(max(0, -((s - pw) // sw)), wo)
                hi = max(min(wo, (ww - 1 + pw - s) // sw + 1), lo)
                for oh in range(ho):
                    ih = oh * sh + r - ph
                    base = oh * wo
                    if ih < 0 or ih >= hh:
                        for ow in range(wo):
                            dst[base + ow] = 0.0
                        continue
                    for ow in range(lo):
                        dst[base + ow] = 0.0
                    for ow in range(lo, hi):
                        dst[base + ow] = x[n, c, ih, ow * sw + s - pw]
                    for ow in range(hi, wo):
                        dst[base + ow] = 0.0
