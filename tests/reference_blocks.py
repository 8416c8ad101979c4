"""Exact-rational reference for shared-exponent block quantization, from the definitions alone:
scale exponent s = floor(log2(max |x|)) - floor(log2(element max)) clamped to the scale range,
every element rounded into the element format after division by 2**s, then multiplied back."""

from __future__ import annotations

import math
from fractions import Fraction

from reference import floor_log2, round_ref
from reference_fixed import fixed_round_ref


def block_exponent_ref(block, elem_max: float, s_lo: int, s_hi: int, nan_scale: bool):
    """(s, nan_block) for one block (a list of floats)."""
    if nan_scale and any(math.isnan(v) for v in block):
        return None, True
    finite = [abs(Fraction(v)) for v in block if math.isfinite(v)]
    if any(math.isinf(v) for v in block):
        return (None, True) if nan_scale else (s_hi, False)
    amax = max(finite, default=Fraction(0))
    if amax == 0:
        return s_lo, False
    s = floor_log2(amax) - floor_log2(Fraction(elem_max))
    if s > s_hi:
        return (None, True) if nan_scale else (s_hi, False)
    return max(s, s_lo), False


def quantize_block_ref(block, fmt, mode="rne"):
    """Values of one block of block format ``fmt`` (fpsim.BlockFormat), as floats."""
    el = fmt.element
    s, nan_block = block_exponent_ref(block, el.max, fmt.scale_min, fmt.scale_max, fmt.nan_scale)
    if nan_block:
        return [math.nan] * len(block)
    out = []
    for v in block:
        if not math.isfinite(v) or v == 0:
            scaled = v                                            # keeps -0.0
        else:
            scaled = float(Fraction(v) / Fraction(2) ** s)        # exact: a power of two
        if hasattr(el, "frac_bits"):
            r = fixed_round_ref(scaled, el.int_bits, el.frac_bits, el.signed, True, mode)
        else:
            sat = el.__class__(el.exp_bits, el.man_bits, el.bias, el.subnormals, el.specials, True)
            r = round_ref(scaled, sat, mode)
        out.append(r if r == 0 or not math.isfinite(r) else float(Fraction(r) * Fraction(2) ** s))
    return out
