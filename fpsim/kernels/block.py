"""Shared-exponent block quantization: Block Minifloat, MX, Flexpoint (fpsim/blocks.py).

The input is a C-contiguous (nblocks, size) array, one block per row (ops.py lays the blocks out).
Per block: ``amax`` = the largest finite-or-infinite |x| (NaN ignored, but flagged), the scale
exponent ``s = floor(log2 amax) - emax_elem`` clamped to ``[s_lo, s_hi]`` (``s_lo`` for an
all-zero block), and every element rounded once onto the element grid scaled by ``2**s``.

Scaling the *format* instead of the value keeps this exact: rounding ``x`` into a format with
``emin + s``, ``max * 2**s`` and ``min_normal * 2**s`` is rounding ``x / 2**s`` into the element
format and multiplying back, without ever forming ``x / 2**s`` (which could leave float64's range).
Fixed-point elements are rounded on the grid ``2**(s - frac_bits)`` with 50 fraction bits of
headroom (``|k| < 2**50`` for every word up to 50 bits, so the grid covers the whole word) and
then clamped to the word's range ``[lo, hi] * 2**s``.
"""

import numpy as np
from numba import njit, prange

from .bits import f64_bits
from .rounding import ABS, SR, pow2, random_word, round_f64, round_fast, sel, split

NO_SCALE = np.int64(-(1 << 40))   # scale exponent of a block that turned NaN (MX: scale code NaN)


@njit(cache=True, inline="always")
def floor_log2(a):
    """floor(log2(a)) for a finite a > 0, exactly (float64 subnormals included)."""
    e, _ = split(f64_bits(a) & ABS)
    return e


@njit(cache=True)
def block_exponent(row, emax_elem, s_lo, s_hi, nan_scale):
    """Scale exponent of one block; NO_SCALE when the block must become NaN (``nan_scale``: a NaN
    in the block, or an exponent above ``s_hi``, as the MX reference emulator does)."""
    amax = 0.0
    has_nan = False
    for v in row:
        a = abs(np.float64(v))
        has_nan |= a != a
        amax = max(amax, sel(a != a, 0.0, a))
    if nan_scale and has_nan:
        return NO_SCALE
    if amax == 0.0:
        return np.int64(s_lo)
    s = np.int64(1 << 40) if amax == np.inf else floor_log2(amax) - emax_elem
    if s > s_hi:
        return NO_SCALE if nan_scale else np.int64(s_hi)
    return max(s, np.int64(s_lo))


@njit(cache=True)
def quantize_block_row(row, out, base, s, man_bits, emin, maxv, min_normal, spec, subnormals,
                       lo, hi, signed_zero, mode, r_bits, key):
    """out = row rounded onto the element grid scaled by 2**s (words of element base + j)."""
    if s == NO_SCALE:
        for j in range(row.size):
            out[j] = np.nan
        return
    p = pow2(s)
    emin_s, max_s, mn_s, lo_s, hi_s = emin + s, maxv * p, min_normal * p, lo * p, hi * p
    for j in range(row.size):
        x = np.float64(row[j])
        u = random_word(key, base + j) if mode >= SR else np.uint64(0)
        r, slow = round_fast(x, u, man_bits, emin_s, max_s, mn_s, spec, True, subnormals, mode,
                             r_bits)
        if slow:
            r = round_f64(x, u, man_bits, emin_s, max_s, mn_s, spec, True, subnormals, mode, r_bits)
        r = sel(r > hi_s, hi_s, sel(r < lo_s, lo_s, r))
        out[j] = r if signed_zero else r + 0.0


@njit(cache=True, parallel=True)
def quantize_blocks(x, out, scales, man_bits, emin, maxv, min_normal, spec, subnormals, lo, hi,
                    signed_zero, emax_elem, s_lo, s_hi, nan_scale, mode, r_bits, key):
    """Quantize every row of x (one block each); scales[b] receives the block's exponent."""
    nb, size = x.shape
    for b in prange(nb):
        s = block_exponent(x[b], emax_elem, s_lo, s_hi, nan_scale)
        scales[b] = s
        quantize_block_row(x[b], out[b], b * size, s, man_bits, emin, maxv, min_normal, spec,
                           subnormals, lo, hi, signed_zero, mode, r_bits, key)


@njit(cache=True, parallel=True)
def scale_blocks(q, scales, out):
    """out = q * 2**scales[b] per row (decoding: element values times their block's scale)."""
    nb, size = q.shape
    for b in prange(nb):
        s = scales[b]
        for j in range(size):
            out[b, j] = np.nan if s == NO_SCALE else q[b, j] * pow2(s)

