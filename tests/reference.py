"""Exact-rational reference for rounding into a FloatFormat, written from the definitions in
DESIGN.md with fractions.Fraction, independent of fpsim's kernels.

A result is a Python float (exact: every format value is a float64) or float('nan').
"""

import math
from fractions import Fraction


def floor_log2(a: Fraction) -> int:
    """Largest e with 2**e <= a, for a > 0."""
    e = a.numerator.bit_length() - a.denominator.bit_length()
    while Fraction(2) ** e > a:
        e -= 1
    while Fraction(2) ** (e + 1) <= a:
        e += 1
    return e


def fmax(f) -> Fraction:
    """Largest finite value, counted from the code layout."""
    top_e = (1 << f.exp_bits) - 1
    man_full = (1 << f.man_bits) - 1
    if f.specials == "ieee":
        e_field, m_field = top_e - 1, man_full
    elif f.specials == "fn":
        e_field, m_field = (top_e, man_full - 1) if f.man_bits > 0 else (top_e - 1, 0)
    else:
        e_field, m_field = top_e, man_full
    return Fraction(2**f.man_bits + m_field, 2**f.man_bits) * Fraction(2) ** (e_field - f.bias)


def signed(value: Fraction, negative: bool, f) -> float:
    v = float(value)  # exact: value is a dyadic rational inside float64's range
    if v == 0.0 and f.specials == "fnuz":
        return 0.0
    return -v if negative else v


def round_integer(t: Fraction, mode: str, u: int = 0, sr_bits=None) -> int | None:
    """t rounded to an integer; the magnitude is rounded and the sign put back, so "rup"/"rdn"
    point at +-inf and the stochastic modes round the magnitude away from zero (u: 64-bit word;
    None where exact "sr" would need more than 62 bits of the fraction)."""
    negative = t < 0
    a = -t if negative else t
    k = math.floor(a)
    frac = a - k
    if mode == "rne":
        k += frac > Fraction(1, 2) or (frac == Fraction(1, 2) and k % 2 == 1)
    elif mode == "rna":
        k += frac >= Fraction(1, 2)
    elif mode == "rtz":
        pass
    elif mode == "rup":
        k += frac > 0 and not negative
    elif mode == "rdn":
        k += frac > 0 and negative
    elif mode == "rto":
        if frac > 0:
            k |= 1
    elif mode == "sr" and sr_bits is None:
        if frac.denominator > 2 ** 62:
            return None
        k += frac > 0 and Fraction(u, 2 ** 64) >= 1 - frac
    elif mode == "sr":
        k += (u >> (64 - sr_bits)) + math.floor(frac * 2 ** sr_bits) >= 2 ** sr_bits
    else:
        raise ValueError(mode)
    return -k if negative else k


def round_ref(x: float, f, mode: str, u: int = 0, sr_bits=None):
    """Round the float ``x`` into format ``f``.  ``u`` is the 64-bit random word of the element
    (stochastic modes): exact 'sr' rounds away from zero iff u / 2**64 >= 1 - fraction; with
    ``sr_bits=r`` iff (u >> (64-r)) + floor(fraction * 2**r) >= 2**r.  Returns a float (nan for
    NaN), or None where the exact 'sr' fraction needs more than 62 bits (the kernel then draws
    further words; test_stochastic.py checks that probability)."""
    emin = 1 - f.bias
    big = fmax(f)
    if math.isnan(x):
        if f.specials == "none":
            return 0.0 if math.copysign(1, x) < 0 else -0.0
        return math.nan
    negative = math.copysign(1.0, x) < 0
    if math.isinf(x):
        if f.saturate or f.specials == "none":
            return signed(big, negative, f)
        return x if f.specials == "ieee" else math.nan
    a = abs(Fraction(x))
    if a == 0:
        return signed(Fraction(0), negative, f)

    qe = max(floor_log2(a), emin) - f.man_bits     # quantum of the binade (subnormal grid below)
    scaled = a / Fraction(2) ** qe
    k = round_integer(-scaled if negative else scaled, mode, u, sr_bits)
    if k is None:
        return None
    k = abs(k)
    return finish_ref(k * Fraction(2) ** qe, negative, f, mode)


def finish_ref(result: Fraction, negative: bool, f, mode: str) -> float:
    """The rounded magnitude ``result`` with the format's overflow, FTZ and signed-zero rules."""
    big = fmax(f)
    if result > big:
        toward_zero = (mode in ("rtz", "rto") or (mode == "rup" and negative)
                       or (mode == "rdn" and not negative))
        if f.saturate or f.specials == "none" or toward_zero:
            result = big
        elif f.specials == "ieee":
            return -math.inf if negative else math.inf
        else:
            return math.nan
    if not f.subnormals and 0 < result < Fraction(2) ** (1 - f.bias):
        result = Fraction(0)
    return signed(result, negative, f)


def encode_ref(v: float, f) -> int:
    """Code of a value of the format, from the field definitions."""
    sign = 1 << (f.exp_bits + f.man_bits)
    top_e = (1 << f.exp_bits) - 1
    if math.isnan(v):
        if f.specials == "ieee":
            return (sign if math.copysign(1, v) < 0 else 0) | (top_e << f.man_bits) | (1 << (f.man_bits - 1))
        if f.specials == "fn":
            return (sign if math.copysign(1, v) < 0 else 0) | (sign - 1)
        return sign
    s = sign if math.copysign(1, v) < 0 else 0
    if math.isinf(v):
        return s | (top_e << f.man_bits)
    a = abs(Fraction(v))
    if a == 0:
        return 0 if f.specials == "fnuz" else s
    emin = 1 - f.bias
    e = floor_log2(a)
    if e >= emin:
        m = (a / Fraction(2) ** e - 1) * 2**f.man_bits
        assert m.denominator == 1
        return s | ((e + f.bias) << f.man_bits) | int(m)
    m = a / Fraction(2) ** (emin - f.man_bits)
    assert m.denominator == 1
    return s | int(m)
