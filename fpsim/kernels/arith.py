"""Elementwise add, sub, mul, fma, div and sqrt in a FloatFormat: the exact result rounded once.

Exactness.  Each operation first produces its exact result as an unevaluated float64 pair
``hi + lo`` with ``|lo|`` at most half the float64 spacing at ``hi`` (error-free transformations:
Knuth's TwoSum, Dekker's TwoProduct, the remainder of a quotient or square root as one fused
multiply-add; ops.py keeps inputs inside the range where they are exact).  The remainders are
explicit ``fma`` calls, so a compiler that contracts multiplies and adds (NVVM) cannot change
them.
``round_sum`` then rounds ``hi + lo`` once:

* ``lo == 0``: ``hi`` is the exact value; round it directly.
* deterministic modes: ``hi + lo`` is replaced by its round-to-odd value at 53 bits; for a format
  of at most 50 fraction bits (ops.py checks) rounding that value is the correct rounding of the
  exact sum for every mode (Boldo and Melquiond, "When double rounding is odd", 2005).
* ``sr`` with ``r`` bits: the truncation of ``hi + lo`` to 53 bits carries every bit of the
  ``r``-bit window below the result's last place when ``r <= 52 - man_bits`` (ops.py checks).
* exact ``sr``: the truncation ``T`` plus the tail fraction ``d`` (``0 < d < 1`` of T's last
  place): up iff ``R + rem >= 2**sh`` or ``R + rem == 2**sh - 1`` and a Bernoulli(d) draw from a
  second word derived from ``u``, i.e. probability exactly (discarded part)/ulp.  For div and sqrt
  the tail is a rational; its float64 quotient stands in for it (error below 2**-52 of a tail that
  is itself below one float64 ulp).
"""

import numpy as np
from numba import njit, prange

from .bits import bits_f64, f64_bits, fma
from .rounding import supports as rounding_supports
from .rounding import (ABS, CHUNK, RDN, SR, SRB, _sr_up_small, chunk_span, compare_uniform,
                       finish, mix64, random_word, round_f64, split)

SALT = np.uint64(0x2545F4914F6CDD1D)
EXACT_RANGE = 2.0 ** 480   # operand magnitudes where TwoProduct/TwoSum stay exact (see supports)   # derives the tail word from an element's random word
SPLITTER = 134217729.0                 # 2**27 + 1, Veltkamp's constant for float64
OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_FMA, OP_SQRT = range(6)


def supports(man_bits, emin, amax, amin):
    """Whether the units are exact for a format and float64 operands whose nonzero finite
    magnitudes lie in [amin, amax].

    Proof.  round_sum's round-to-odd at 53 bits keeps every decision of a later rounding to at
    most 50 fraction bits (Boldo and Melquiond 2005) and rounding.round_fast is exact for
    emin - man_bits >= -1022 (rounding.supports).  Dekker's TwoProduct is exact when no partial
    product over- or underflows: operands within 2**+-480 keep every product and its error
    term (down to 2**-960 * 2**-106) normal and finite; TwoSum is exact without overflow.
    """
    return rounding_supports(man_bits, emin) and amax <= EXACT_RANGE and \
        (amin == 0.0 or amin >= 1.0 / EXACT_RANGE)


# --- error-free transformations -----------------------------------------------------------------
@njit(cache=True, inline="always")
def two_sum(a, b):
    """(s, e) with s = fl(a+b) and s + e == a + b exactly (Knuth; no overflow assumed)."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


@njit(cache=True, inline="always")
def two_prod(a, b):
    """(p, e) with p = fl(a*b) and p + e == a*b exactly (Dekker; |a|, |b| within 2**+-480)."""
    p = a * b
    c = SPLITTER * a
    ah = c - (c - a)
    al = a - ah
    c = SPLITTER * b
    bh = c - (c - b)
    bl = b - bh
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


# --- rounding an exact pair once ----------------------------------------------------------------
@njit(cache=True, inline="always")
def truncated(hi, lo):
    """hi + lo (lo != 0, |lo| below the spacing at hi) truncated toward zero to 53 bits."""
    if (hi > 0.0) == (lo > 0.0):
        return hi
    return bits_f64(f64_bits(hi) - 1)   # next float64 toward zero (sign-magnitude bits)


@njit(cache=True)
def round_sr_tail(t, lo, same, u, man_bits, emin, maxv, min_normal, spec, saturate, subnormals):
    """Exact stochastic rounding of |t| + d*ulp(t) (signed as t): t the 53-bit truncation, d the
    tail fraction given by lo (d = |lo|/ulp if ``same`` else 1 - |lo|/ulp)."""
    b = f64_bits(t)
    neg = b < 0
    e, sig = split(b & ABS)
    el, sl = split(f64_bits(lo) & ABS)
    dk = e - el                     # |lo| / ulp(t) = sl * 2**(el-52) / 2**(e-52) = sl / 2**(e-el)
    tail_word = mix64(u ^ SALT)
    bern = _sr_up_small(sl, dk, tail_word)
    if not same:
        bern = not bern
    qe = max(e, emin) - man_bits
    shift = qe - e + 52
    if shift <= 62:
        kept = sig >> shift
        rem = sig & ((np.int64(1) << shift) - 1)
        full = np.int64(1) << shift
        r = np.int64(u >> np.uint64(64 - shift)) if shift > 0 else np.int64(0)
        up = (r + rem >= full) or (r + rem == full - 1 and bern)
    else:
        kept = np.int64(0)
        c = compare_uniform(sig, shift, u, SALT)
        up = c < 0 or (c == 0 and bern)
    if up:
        kept += 1
    return finish(kept, qe, neg, maxv, min_normal, spec, saturate, subnormals, SR)


@njit(cache=True, inline="always")
def round_sum(hi, lo, u, man_bits, emin, maxv, min_normal, spec, saturate, subnormals, mode,
              r_bits):
    """Round the exact value hi + lo once into the format (see the module docstring)."""
    if lo == 0.0 or not (abs(hi) < np.inf):
        return round_f64(hi, u, man_bits, emin, maxv, min_normal, spec, saturate, subnormals,
                         mode, r_bits)
    same = (hi > 0.0) == (lo > 0.0)
    t = truncated(hi, lo)
    if mode == SR:
        return round_sr_tail(t, lo, same, u, man_bits, emin, maxv, min_normal, spec, saturate,
                             subnormals)
    if mode != SRB:
        t = bits_f64(f64_bits(t) | np.int64(1))   # round to odd at 53 bits
    return round_f64(t, u, man_bits, emin, maxv, min_normal, spec, saturate, subnormals, mode,
                     r_bits)


@njit(cache=True, inline="always")
def zero_sum_sign(s, a, b, mode):
    """IEEE 754 sign of an exact zero sum a + b: -0 only for (-0)+(-0), or in rdn mode unless both
    operands are +0.  ``s`` is fl(a + b) (already right in round-to-nearest)."""
    if s == 0.0 and mode == RDN and not (f64_bits(a) == 0 and f64_bits(b) == 0):
        return -0.0
    return s


# --- one exact operation ------------------------------------------------------------------------
@njit(cache=True, inline="always")
def exact_op(op, a, b, c, mode):
    """The exact result of op on float64 operands as a pair (hi, lo)."""
    if op == OP_ADD or op == OP_SUB:
        if op == OP_SUB:
            b = -b
        s, e = two_sum(a, b)
        if not (abs(s) < np.inf):
            return a + b, 0.0
        return zero_sum_sign(s, a, b, mode), e
    if op == OP_MUL:
        p, e = two_prod(a, b)
        if not (abs(p) < np.inf) or p == 0.0:
            return p, 0.0
        return p, e
    if op == OP_FMA:
        p = a * b   # exact: ops.py only lets through operands whose product fits a float64
        s, e = two_sum(p, c)
        if not (abs(s) < np.inf):
            return p + c, 0.0
        return zero_sum_sign(s, p, c, mode), e
    if op == OP_DIV:
        q = a / b
        if q == 0.0 or not (abs(q) < np.inf):
            return q, 0.0
        r = fma(-q, b, a)          # exact: the remainder of a correctly rounded quotient
        return q, r / b
    s = np.sqrt(a)               # OP_SQRT
    if s == 0.0 or not (s < np.inf):
        return s, 0.0
    r = fma(-s, s, a)              # exact: the remainder of a correctly rounded square root
    return s, r / (2.0 * s)


@njit(cache=True, parallel=True)
def elementwise(op, a, b, c, out, man_bits, emin, maxv, min_normal, spec, saturate, subnormals,
                mode, r_bits, key):
    """out[i] = round(op(a[i], b[i], c[i])) for 1-D float64 arrays of equal length."""
    n = out.size
    for ch in prange((n + CHUNK - 1) // CHUNK):
        first, end = chunk_span(ch, n)
        for i in range(first, end):
            hi, lo = exact_op(op, a[i], b[i], c[i], mode)
            u = random_word(key, i) if mode >= SR else np.uint64(0)
            out[i] = round_sum(hi, lo, u, man_bits, emin, maxv, min_normal, spec, saturate,
                               subnormals, mode, r_bits)


@njit(cache=True, parallel=True)
def inexact_products(a, b):
    """How many a[i]*b[i] are not exact in float64 (fma needs exact products)."""
    n = a.size
    count = 0
    for i in prange(n):
        p, e = two_prod(a[i], b[i])
        if e != 0.0 and abs(p) < np.inf:
            count += 1
    return count
