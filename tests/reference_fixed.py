"""Exact-rational reference for fixed point, written from the <IL, FL> definition alone."""

from __future__ import annotations

import math
from fractions import Fraction

from reference import round_integer


def fixed_range(il: int, fl: int, signed: bool):
    """Integer range (lo, hi) of the word: values are k * 2**-fl for lo <= k <= hi."""
    bits = il + fl
    return (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2 ** bits - 1)


def fixed_round_ref(x: float, il: int, fl: int, signed: bool, saturate: bool, mode: str,
                    u: int = 0, sr_bits=None):
    """The value of fixed-point <il, fl> nearest x by ``mode``, saturated or wrapped."""
    lo, hi = fixed_range(il, fl, signed)
    if math.isnan(x):
        return math.nan
    if math.isinf(x):
        return float((hi if x > 0 else lo) * Fraction(2) ** -fl)
    k = round_integer(Fraction(x) * Fraction(2) ** fl, mode, u, sr_bits)
    if k is None:
        return None
    if saturate:
        k = min(max(k, lo), hi)
    else:
        k = (k - lo) % (hi - lo + 1) + lo
    return float(k * Fraction(2) ** -fl)


def fixed_decode_ref(code: int, il: int, fl: int, signed: bool) -> float:
    bits = il + fl
    k = code - 2 ** bits if signed and code >= 2 ** (bits - 1) else code
    return float(k * Fraction(2) ** -fl)
