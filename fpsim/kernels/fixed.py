"""Fixed-point rounding, encoding and decoding (formats of :class:`fpsim.fixed.FixedFormat`).

A value goes onto the grid ``k * 2**-frac_bits`` through :func:`rounding.round_f64` with
``man_bits = 52`` and ``emin = 52 - frac_bits``: every float64 below ``2**emin`` then has the grid
step as its quantum (any mode, stochastic included, with the same random-word rules as float
formats), and every float64 above it is already a multiple of the step, so rounding is exact.
Overflow is then saturated, or wrapped by an ``fmod`` of the rounded value by ``2**int_bits``
(exact, as every ``fmod`` is), after which ``|k| < 2**bits`` is an exact integer.
"""

import numpy as np
from numba import njit, prange

from .bits import f64_bits
from .rounding import CHUNK, IEEE, SR, chunk_span, element_word, pow2, round_f64, signed_nan


@njit(cache=True, inline="always")
def round_fixed(x, u, frac_bits, k_lo, k_hi, saturate, mode, r_bits):
    """``x`` rounded onto the grid of step ``2**-frac_bits``, then saturated to the integer range
    ``[k_lo, k_hi]`` (times the step) or wrapped modulo ``k_hi - k_lo + 1``; NaN stays NaN (payload dropped, sign kept)."""
    if x != x:
        return signed_nan(f64_bits(x) < 0)   # the quiet NaN of zero payload, sign kept
    step = pow2(-frac_bits)
    if x == np.inf:
        return k_hi * step
    if x == -np.inf:
        return k_lo * step
    v = round_f64(x, u, 52, 52 - frac_bits, np.inf, 0.0, IEEE, False, True, mode, r_bits)
    span = k_hi - k_lo + 1.0          # 2**bits
    if saturate:                      # v * 2**frac_bits: integer-valued (or +-inf, clamped)
        k = min(max(v * pow2(frac_bits), k_lo), k_hi)
    else:                             # fmod by the power of two 2**int_bits is exact, and then
        k = np.fmod(v, span * step) * pow2(frac_bits)   # |k| < 2**bits is an exact integer
        if k < k_lo:
            k += span
        elif k > k_hi:
            k -= span
    return (k + 0.0) * step           # + 0.0: fixed point has no negative zero


@njit(cache=True, parallel=True)
def quantize_fixed(x, out, rand, frac_bits, k_lo, k_hi, saturate, mode, r_bits, key):
    """out[i] = round_fixed(x[i]); stochastic words from ``rand`` if non-empty, else (key, i)."""
    n = x.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        fixed_chunk(x, out, c * CHUNK, min(n, (c + 1) * CHUNK), rand, frac_bits, k_lo, k_hi,
                    saturate, mode, r_bits, key)


@njit(cache=True)
def fixed_chunk(x, out, lo, hi, rand, frac_bits, k_lo, k_hi, saturate, mode, r_bits, key):
    """The elements lo..hi-1 of :func:`quantize_fixed` (a called function: compiled once)."""
    for i in range(np.uint64(lo), np.uint64(hi)):
        u = element_word(rand, key, i, mode >= SR)
        out[i] = round_fixed(np.float64(x[i]), u, frac_bits, k_lo, k_hi, saturate, mode, r_bits)


@njit(cache=True, parallel=True)
def encode_fixed(x, out, rand, frac_bits, k_lo, k_hi, saturate, mode, r_bits, key, bits):
    """out[i] = the two's-complement (or unsigned) word of round_fixed(x[i]); x holds no NaN."""
    n = x.size
    mask = (np.int64(1) << np.int64(bits)) - np.int64(1)
    for c in prange((n + CHUNK - 1) // CHUNK):
        first, end = chunk_span(c, n)
        for i in range(first, end):
            u = element_word(rand, key, i, mode >= SR)
            v = round_fixed(np.float64(x[i]), u, frac_bits, k_lo, k_hi, saturate, mode, r_bits)
            out[i] = np.int64(v * pow2(frac_bits)) & mask


@njit(cache=True, parallel=True)
def decode_fixed(codes, out, frac_bits, bits, signed):
    """out[i] = value of the word codes[i]."""
    n = codes.size
    half = np.int64(1) << np.int64(bits - 1)
    span = np.int64(1) << np.int64(bits)
    step = pow2(-frac_bits)
    for c in prange((n + CHUNK - 1) // CHUNK):
        first, end = chunk_span(c, n)
        for i in range(first, end):
            k = np.int64(codes[i])
            if signed and k >= half:
                k -= span
            out[i] = np.float64(k) * step
