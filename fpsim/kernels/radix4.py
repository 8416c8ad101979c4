"""Radix-4 floating point with no fraction bits (Sun et al. 2020's FP4 [1,3,0]).

The magnitude of field f >= 1 is ``4**(f - bias) * 2**phase`` and field 0 is zero.  A magnitude
``a`` between the neighbours ``lo`` and ``hi = 4 * lo`` rounds by the mode: nearest compares with
the midpoint ``2.5 * lo`` (exact in float64), a tie going to the even field; directed modes and
round-to-odd pick by direction and field parity.  Stochastic rounding goes up with probability
``P = (a - lo) / (3 * lo)``: with ``r`` random bits (``sr_bits``; 64 for exact "sr") it adds
``floor(P * 2**r)`` to the top r bits of the word and rounds up on carry, the add-then-truncate of
hardware, so the probability is P truncated to r bits (within 2**-64 of P for "sr": P has a factor
1/3, which no finite number of random bits hits exactly).  ``a`` below the smallest magnitude
``m0`` rounds between 0 and m0 exactly as a binary format with no fraction bits does
(:func:`rounding.round_f64`).  Everything above the largest magnitude saturates.
"""

import numpy as np
from numba import njit, prange

from .bits import f64_bits
from .rounding import (ABS, CHUNK, IEEE, RDN, RNA, RNE, RTO, RUP, SR, SRB, chunk_span,
                       element_word, pow2, round_f64, signed_nan, split)


@njit(cache=True, inline="always")
def _sr_fraction(t, den_log2, r_bits):
    """floor(t / (3 * 2**den_log2) * 2**r_bits) for an integer 0 <= t < 3 * 2**den_log2."""
    s = den_log2 - r_bits
    q, m = t // 3, t % 3
    if s >= 0:
        return np.uint64(q >> s)
    return (np.uint64(q) << np.uint64(-s)) + np.uint64((m << (-s)) // 3)   # < 2**64 (docs)


@njit(cache=True)
def round_radix4(x, u, bias, phase, top_field, mode, r_bits):
    """x rounded to the radix-4 grid; NaN stays NaN (payload dropped, sign kept), everything else saturates."""
    if x != x:
        return signed_nan(f64_bits(x) < 0)   # the quiet NaN of zero payload, sign kept
    b = f64_bits(x)
    neg = b < 0
    a = b & ABS
    big = pow2(2 * (top_field - bias) + phase)
    m0 = pow2(2 * (1 - bias) + phase)
    mag = abs(x)
    if mag >= big:
        return -big if neg else big
    if mag < m0:     # between 0 and m0: a binary format with no fraction bits and emin = log2 m0
        e0 = 2 * (1 - bias) + phase
        return round_f64(x, u, 0, e0, m0, m0, IEEE, True, True, mode, r_bits)
    e, sig = split(a)
    j = (e - phase) % 2                   # lo = 2**(e - j) is the radix-4 grid point below
    lo = pow2(e - j)
    field = (e - j - phase) // 2 + bias    # field of lo; hi has field + 1
    inexact = mag != lo
    up = False
    if mode == RNE:
        mid = 2.5 * lo
        up = mag > mid or (mag == mid and field % 2 == 1)
    elif mode == RNA:
        up = mag >= 2.5 * lo
    elif mode == RUP:
        up = inexact and not neg
    elif mode == RDN:
        up = inexact and neg
    elif mode == RTO:
        up = inexact and field % 2 == 0
    elif mode == SR or mode == SRB:
        rb = 64 if mode == SR else r_bits
        t = sig - (np.int64(1) << (52 - j))          # (a - lo) / lo = t / 2**(52 - j)
        f = _sr_fraction(t, 52 - j, rb)              # floor(P * 2**rb), P = (a - lo) / (3 lo)
        if rb == 64:
            up = f != 0 and u >= np.uint64(0) - f
        else:
            up = (u >> np.uint64(64 - rb)) + f >= (np.uint64(1) << np.uint64(rb))
    v = 4.0 * lo if up else lo
    return -v if neg else v


@njit(cache=True, parallel=True)
def quantize_radix4(x, out, rand, bias, phase, top_field, mode, r_bits, key):
    n = x.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        first, end = chunk_span(c, n)
        for i in range(first, end):
            u = element_word(rand, key, i, mode >= SR)
            out[i] = round_radix4(np.float64(x[i]), u, bias, phase, top_field, mode, r_bits)


@njit(cache=True)
def field_of(v, bias, phase):
    """Exponent field of a value on the grid (0 for zero)."""
    if v == 0.0:
        return np.int64(0)
    e, _ = split(f64_bits(v) & ABS)
    return (e - phase) // 2 + bias


@njit(cache=True, parallel=True)
def encode_radix4(x, out, rand, bias, phase, top_field, exp_bits, mode, r_bits, key):
    n = x.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        first, end = chunk_span(c, n)
        for i in range(first, end):
            u = element_word(rand, key, i, mode >= SR)
            v = round_radix4(np.float64(x[i]), u, bias, phase, top_field, mode, r_bits)
            sign = np.int64(1) if f64_bits(v) < 0 else np.int64(0)
            out[i] = (sign << exp_bits) | field_of(v, bias, phase)


@njit(cache=True, parallel=True)
def decode_radix4(codes, out, bias, phase, exp_bits):
    n = codes.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        first, end = chunk_span(c, n)
        for i in range(first, end):
            k = np.int64(codes[i])
            f = k & ((np.int64(1) << exp_bits) - 1)
            v = 0.0 if f == 0 else pow2(2 * (f - bias) + phase)
            out[i] = -v if (k >> exp_bits) & 1 else v
