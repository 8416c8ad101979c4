"""Unsigned exponent-only formats (OCP E8M0, ml_dtypes float8_e8m0fnu): values 2**(c - bias) for
the codes c below the all-ones code, which is NaN; no sign and no zero.

A positive finite x rounds as a binary format with no fraction bits and smallest normal
``2**-bias`` (:func:`rounding.round_f64`; a tie such as 1.5 goes up, to the even significand 2,
as in every format without fraction bits), so the bottom binade's grid is
``{2**-bias, 2**(1-bias)}`` and below it ``{0, 2**-bias}``.  Then a zero result becomes the
smallest value ``2**-bias``, a result above the largest value NaN, and zero, negative, infinite
and NaN inputs are NaN.  That is ml_dtypes' float8_e8m0fnu conversion bit for bit from version
0.7 on: 1.2 * 2**-127 becomes the nearer 2**-127 (ml_dtypes before 0.7, and fpsim before it,
gave 2**-126: the grid below 2**-126 was {0, 2**-126}).
"""

import numpy as np
from numba import njit, prange

from .bits import f64_bits
from .rounding import ABS, CHUNK, IEEE, SR, chunk_span, element_word, pow2, round_f64, split


@njit(cache=True, inline="always")
def round_exponent(x, u, bias, top, mode, r_bits):
    """x rounded into the format; NaN where the format has no value for it."""
    if not (x > 0.0) or x == np.inf:
        return np.nan
    smallest = pow2(-bias)
    v = round_f64(x, u, 0, -bias, pow2(top - bias), smallest, IEEE, False, True, mode, r_bits)
    if v == np.inf:
        return np.nan
    return smallest if v == 0.0 else v


@njit(cache=True, parallel=True)
def quantize_exponent(x, out, rand, bias, top, mode, r_bits, key):
    n = x.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        first, end = chunk_span(c, n)
        for i in range(first, end):
            u = element_word(rand, key, i, mode >= SR)
            out[i] = round_exponent(np.float64(x[i]), u, bias, top, mode, r_bits)


@njit(cache=True, parallel=True)
def encode_exponent(x, out, rand, bias, top, nan_code, mode, r_bits, key):
    n = x.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        first, end = chunk_span(c, n)
        for i in range(first, end):
            u = element_word(rand, key, i, mode >= SR)
            v = round_exponent(np.float64(x[i]), u, bias, top, mode, r_bits)
            out[i] = nan_code if v != v else split(f64_bits(v) & ABS)[0] + bias


@njit(cache=True, parallel=True)
def decode_exponent(codes, out, bias, nan_code):
    n = codes.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        first, end = chunk_span(c, n)
        for i in range(first, end):
            k = np.int64(codes[i])
            out[i] = np.nan if k == nan_code else pow2(k - bias)
