"""Posits <n, es>: decoding a code, and rounding through tables of every value and midpoint.

Decoding follows the Posit Standard (2022), section 2: the word's magnitude (two's complement
negation for a set sign bit) is read as a regime run of k identical bits, ``es`` exponent bits
(missing trailing bits are zeros) and a fraction with a hidden 1; the value is
``useed**r * 2**e * (1 + f)`` with ``r = k - 1`` for a run of ones and ``-k`` for zeros.  Every
value of n <= 33 bits with es <= 4 is an exact float64.

Rounding (section 4): the midpoint between the neighbouring codes c and c+1 is the value of the
(n+1)-bit posit 2c+1 (the bit string with one more bit set halfway), so a magnitude is placed by a
binary search in the ascending positive values and compared with that midpoint; a tie goes to the
even code.  Nonzero magnitudes saturate at minpos and maxpos; NaN and Inf give NaR.
"""

import numpy as np
from numba import njit, prange

from .rounding import CHUNK, chunk_span, pow2


@njit(cache=True)
def decode_posit(code, n, es):
    """float64 value of the n-bit posit word ``code`` (NaN for NaR)."""
    mask = (np.int64(1) << n) - 1
    c = np.int64(code) & mask
    if c == 0:
        return 0.0
    sign_bit = np.int64(1) << (n - 1)
    if c == sign_bit:
        return np.nan
    neg = (c & sign_bit) != 0
    if neg:
        c = (-c) & mask
    # bits after the sign, most significant first
    i = n - 2
    first = (c >> i) & 1
    k = 0
    while i >= 0 and ((c >> i) & 1) == first:
        k += 1
        i -= 1
    i -= 1                               # skip the terminating bit (if any)
    r = k - 1 if first == 1 else -k
    e = 0
    for _ in range(es):
        e <<= 1
        if i >= 0:
            e |= (c >> i) & 1
            i -= 1
    nf = max(i + 1, 0)
    frac = c & ((np.int64(1) << nf) - 1)
    v = (np.float64((np.int64(1) << nf) + frac) * pow2(-nf)) * pow2(r * (1 << es) + e)
    return -v if neg else v


@njit(cache=True, parallel=True)
def decode_posits(codes, out, n, es):
    for c in prange((codes.size + CHUNK - 1) // CHUNK):
        first, end = chunk_span(c, codes.size)
        for i in range(first, end):
            out[i] = decode_posit(np.int64(codes[i]), n, es)


@njit(cache=True, inline="always")
def round_posit(x, values, mids, n):
    """Code of the posit nearest float64 x; ``values``: positive values of codes 1..2**(n-1)-1
    ascending; ``mids[j]``: midpoint between codes j+1 and j+2."""
    j = np.searchsorted(values, abs(x), side="right") - 1
    return posit_pick(x, j, mids[j] if 0 <= j < mids.size else 0.0, values.size, n)


@njit(cache=True)
def posit_pick(x, j, mid, top, n):
    """:func:`round_posit` once the table is searched: ``j`` = (how many values are <= |x|) - 1,
    ``mid`` = mids[j] where 0 <= j < top - 1 (else unused), ``top`` = values.size, the code of
    maxpos.  (The GPU kernels search with their own loop and call this.)"""
    if x != x or x == np.inf or x == -np.inf:
        return np.int64(1) << (n - 1)
    if x == 0.0:
        return np.int64(0)
    a = abs(x)
    if j >= top - 1:                     # at or above maxpos
        c = np.int64(top)
    elif j < 0:                          # below minpos
        c = np.int64(1)
    elif a < mid:                        # values[j] <= a < values[j + 1]
        c = np.int64(j + 1)
    elif a > mid:
        c = np.int64(j + 2)
    else:
        c = np.int64(j + 1) if (j + 1) % 2 == 0 else np.int64(j + 2)
    if x < 0:
        c = (-c) & ((np.int64(1) << n) - 1)
    return c


@njit(cache=True, parallel=True)
def encode_posits(x, out, values, mids, n):
    for c in prange((x.size + CHUNK - 1) // CHUNK):
        first, end = chunk_span(c, x.size)
        for i in range(first, end):
            out[i] = round_posit(np.float64(x[i]), values, mids, n)


@njit(cache=True, parallel=True)
def quantize_posits(x, out, values, mids, n, es):
    for c in prange((x.size + CHUNK - 1) // CHUNK):
        first, end = chunk_span(c, x.size)
        for i in range(first, end):
            out[i] = decode_posit(round_posit(np.float64(x[i]), values, mids, n), n, es)
