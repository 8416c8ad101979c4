"""Stochastic rounding of float32 values into a float format, in 32-bit integer lanes.

The seeded stochastic modes of :func:`fpsim.kernels.rounding.round_fast` ("sr": exact
probability; "sr" with ``sr_bits = r``: the discarded part truncated to r bits), restated on
float32's own 24-bit significand in 32-bit integer steps (only the random word is 64-bit).
Same words (``random_word(key, i)``), same decisions, bit for bit.

Proof.  Let x be a finite float32 value, e = max(its biased exponent, 1) and sig its integer
significand (the implicit bit included for normal x), so |x| = sig * 2**(e - 150).  The format's
quantum at x is 2**(E - 127 - man) with E = max(e, emin + 127); in units of x's last bit that is
2**d with d = (23 - man) + max(emin + 127 - e, 0) >= 1 (man <= 22).  Then kept = sig >> d and
rem = sig & (2**d - 1) are the kept significand and the discarded part, for any d (sig < 2**24:
d >= 24 gives kept = 0, rem = sig, so d can be clamped to 30 for the shifts).

Let F = rem / 2**d, the discarded fraction of a quantum (a multiple of 2**-d).  (i) Exact "sr"
(round_fast, and round_f64's multi-word path for its rare elements) rounds up iff u / 2**64 >=
1 - F, which for any t <= 64 with (1 - F) * 2**t an integer is top_t(u) >= (1 - F) * 2**t,
top_t(u) the integer of u's top t bits: round_fast takes t = its float64 shift (d + 29 for
normal x, more for float32 subnormals), the lanes t = d, i.e. top_d(u) + rem >= 2**d, in int32
for d <= 30 (the sum is below 2**31).  Elements with d > 30 and rem != 0 go to the scalar path.
(ii) "sr" with r bits rounds up iff floor(F * 2**r) + top_r(u) >= 2**r, and floor(F * 2**r) is
rem >> (d - r), or rem << (r - d) for d < r, 0 for d - r >= 24 > log2(rem); r <= 24 keeps the
sum below 2**25.

The result is k = kept + up quanta: |y| = k * 2**(E - 127 - man), formed as float32(k) times
2**(E - 127 - man + 24) times 2**-24.  Both factors are powers of two and k < 2**25 is a float32
integer, so each product is exact wherever y is a float32 value (the first factor is normal for
emin - man >= -149, the format's quantum being a float32 value); a carry into the next binade
(k = 2**(man + 1)) is still the right value.  The first factor overflows only where
E - 127 > 103 + man (its biased exponent is clamped at 255, Inf); k >= 1 there, so |y| is Inf,
provided emin <= 103 + man: then such an E exceeds emin + 127, so E = e and x's own significand
keeps k >= 2**man.  (Where emin > 103 + man, x below the smallest normal binade has k = 0 and
0 * Inf would be NaN: such formats, with no values below 2**104, are left to the scalar path.)

What the lanes do not decide, they flag for the scalar path (round_fast, and round_f64 where
that needs more bits): |y| above the format's largest value (every overflow policy; also the
Inf of the clamped factor, and x = +-Inf or NaN, whose e = 255 makes the factor Inf), and exact
"sr" with d > 30 and rem != 0 (for those the clamp of d is immaterial: any clamp from 24 to 31
leaves kept and rem as they are).  The rest follows round_fast: a format without subnormals
flushes |y| below its smallest normal to 0, and y takes x's sign except for a zero in a format
without -0 ("fnuz").
"""

import numpy as np
from numba import njit, prange

from .bits import bits_float, float_bits, shl32, shr32
from .rounding import CHUNK, random_word, round_f64_call, round_fast, sel

I32 = np.int32
ONE_24 = np.float32(2.0 ** -24)


def sr_lanes_support(man_bits, emin, max_value, r_bits):
    """Whether :func:`sr_lane` decides stochastic rounding into a float format of ``man_bits``
    fraction bits, smallest normal exponent ``emin`` and largest value ``max_value`` for float32
    input (``r_bits``: 0 for exact "sr", else the random bits): the conditions of the module's
    proof - man_bits <= 22, emin >= -126 (the format's normal range starts in float32's),
    emin - man_bits >= -149 (its quantum is a float32 value), emin <= 103 + man_bits (the
    scale of the smallest normal binade is finite), r_bits <= 24 - and a largest value within
    float32 (the overflow test compares float32 values)."""
    return man_bits <= 22 and -126 <= emin <= 103 + man_bits and emin - man_bits >= -149 \
        and r_bits <= 24 and max_value <= float(np.finfo(np.float32).max)


def sr_constants(man_bits, emin, max_value, min_normal, subnormals, fnuz, r_bits):
    """The constants tuple of :func:`sr_lane` (``sr_lanes_support`` must hold)."""
    return (I32(man_bits), I32(emin + 127), I32(r_bits), np.float32(max_value),
            np.float32(min_normal), bool(subnormals), bool(fnuz))


@njit(cache=True, inline="always")
def sr_lane(x, u, exact, ls):
    """(x rounded stochastically into the format with random word u, flag): the module's lanes;
    ``exact``: "sr" with exact probability, else with ``ls[2]`` random bits.  A set flag means
    the result is not decided here (the module docstring lists when)."""
    man, emin_b, r, maxv, min_normal, subnormals, fnuz = ls
    # every integer step cast back to int32, shifts by shr32/shl32: Numba widens int32
    # arithmetic to int64, which would halve the lanes
    b = float_bits(x)
    a = I32(b & I32(0x7FFFFFFF))
    eb = shr32(a, 23)
    e = max(eb, I32(1))
    sig = I32(I32(a & I32(0x7FFFFF)) | sel(eb != I32(0), I32(0x800000), I32(0)))
    d = I32(I32(I32(23) - man) + max(I32(emin_b - e), I32(0)))
    dd = min(d, I32(30))
    kept = shr32(sig, dd)
    rem = I32(sig & I32(shl32(I32(1), dd) - I32(1)))
    u32 = I32(np.int64(u >> np.uint64(32)))          # the word's top 32 bits (d, r <= 30)
    if exact:
        up = shr32(I32(shr32(u32, I32(I32(32) - dd)) + rem), dd) != I32(0)
        slow_sr = (d > I32(30)) & (rem != I32(0))
    else:
        sh = I32(d - r)
        f = sel(sh >= I32(0), shr32(rem, min(max(sh, I32(0)), I32(31))),
                shl32(rem, min(max(I32(-sh), I32(0)), I32(31))))   # rem < 2**24: 0 for sh >= 24
        up = shr32(I32(f + shr32(u32, I32(I32(32) - r))), r) != I32(0)
        slow_sr = False
    k = I32(kept + I32(up))
    big = min(I32(I32(max(e, emin_b) - man) + I32(24)), I32(255))   # 2**(E - 127 - man + 24)
    mag = np.float32(k) * bits_float(shl32(big, 23)) * ONE_24
    mag = sel((not subnormals) & (mag < min_normal), np.float32(0.0), mag)
    neg = (b < I32(0)) & (not (fnuz & (mag == np.float32(0.0))))
    y = bits_float(I32(float_bits(mag) | sel(neg, I32(-2147483648), I32(0))))
    return y, (mag > maxv) | slow_sr


BLOCK = 1024    # elements per flag test in sr_chunk (a multiple of the vector width)


@njit(cache=True, inline="always")
def sr_run(x, out, lo, hi, ls, exact, key):
    """out[i] = sr_lane's value for lo <= i < hi (uint64 bounds); whether any element is flagged.
    (A bool reduction: tracking the flagged span here cost a third of the loop's speed.)"""
    slow = False
    for i in range(lo, hi):
        y, s = sr_lane(x[i], random_word(key, i), exact, ls)
        out[i] = y
        slow |= s
    return slow


@njit(cache=True)
def sr_chunk(x, out, lo, hi, ls, exact, key, fargs):
    """out[i] for lo <= i < hi: :func:`sr_lane` with the seeded words, BLOCK elements at a time,
    then the scalar path (``fargs``: round_fast's format arguments, mode, r_bits) for the
    elements it flags in a flagged block.  ``exact`` is tested once, so that each loop
    compiles with it constant."""
    man_bits, emin, maxv, min_normal, spec, saturate, subnormals, mode, r_bits = fargs
    end = np.uint64(hi)
    for b0 in range(np.uint64(lo), end, np.uint64(BLOCK)):
        b1 = min(b0 + np.uint64(BLOCK), end)
        slow = sr_run(x, out, b0, b1, ls, True, key) if exact \
            else sr_run(x, out, b0, b1, ls, False, key)
        if not slow:
            continue
        for i in range(b0, b1):
            u = random_word(key, i)
            if sr_lane(x[i], u, exact, ls)[1]:
                r, s = round_fast(np.float64(x[i]), u, man_bits, emin, maxv, min_normal, spec,
                                  saturate, subnormals, mode, r_bits)
                if s:
                    r = round_f64_call(np.float64(x[i]), u, man_bits, emin, maxv, min_normal,
                                       spec, saturate, subnormals, mode, r_bits)
                out[i] = r


@njit(cache=True, parallel=True)
def quantize_sr_lanes(x, out, ls, exact, key, fargs):
    """:func:`sr_chunk` over chunks in parallel (words keyed by the element's index)."""
    n = x.size
    for c in prange((n + CHUNK - 1) // CHUNK):      # int64 bounds, as the one-chunk call's
        sr_chunk(x, out, c * CHUNK, min(n, (c + 1) * CHUNK), ls, exact, key, fargs)


__all__ = ["BLOCK", "quantize_sr_lanes", "sr_chunk", "sr_constants", "sr_lane", "sr_lanes_support",
           "sr_run"]
