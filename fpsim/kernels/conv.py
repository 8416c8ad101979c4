"""im2col for convolutions lowered onto the GEMM kernel.

``cols[n, (c*kh + r)*kw + s, oh*Wo + ow] = x[n, c, oh*sh + r, ow*sw + s]`` for an already padded
``x``: the reduction index is ordered (channel, kernel row, kernel column), the column index
(output row, output column).  Copies only; every rounding happens in the GEMM.
"""

from numba import njit, prange


@njit(cache=True, parallel=True)
def im2col(x, kh, kw, sh, sw, ho, wo, cols):
    """Fill cols (N, C*kh*kw, ho*wo) from the padded x (N, C, H, W)."""
    nb, nc = x.shape[0], x.shape[1]
    for t in prange(nb * nc):
        n = t // nc
        c = t % nc
        for r in range(kh):
            for s in range(kw):
                row = (c * kh + r) * kw + s
                for oh in range(ho):
                    src = x[n, c, oh * sh + r]
                    base = oh * wo
                    for ow in range(wo):
                        cols[n, row, base + ow] = src[ow * sw + s]
