"""Exponent-only scale formats: :class:`ExponentFormat` (E8M0 of OCP MX)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .base import Coded, coerce
from .float import FloatFormat

@dataclass(frozen=True)
class ExponentFormat(Coded):
    """Unsigned powers of two: ``exp_bits`` bits, value ``2**(code - bias)``, the all-ones code
    NaN; no sign bit and no zero.  E8M0, the scale of OCP MX v1.0 (section 5.4.1) and ml_dtypes'
    float8_e8m0fnu, is ``ExponentFormat(8, 127)``; rounding follows ml_dtypes
    bit for bit (kernels/exponent.py): zero, negative and infinite inputs are NaN, underflow gives
    the smallest value and overflow NaN.

    >>> f = ExponentFormat()
    >>> f.max, f.min_subnormal, f.spec
    (1.7014118346046923e+38, 5.877471754111438e-39, 'e8m0fnu')
    """

    exp_bits: int = 8
    bias: int = 127
    name: str | None = field(default=None, compare=False)

    def __post_init__(self):
        coerce(self, ("exp_bits", "bias"))
        if isinstance(self.exp_bits, bool) or not isinstance(self.exp_bits, int) \
                or not 1 <= self.exp_bits <= 10:
            raise ValueError(f"exp_bits must be an int in 1..10, got {self.exp_bits!r}")
        top = (1 << self.exp_bits) - 2
        if isinstance(self.bias, bool) or not isinstance(self.bias, int) \
                or not top - 1023 <= self.bias <= 1022:
            raise ValueError(f"bias must be an int in {top - 1023}..1022, got {self.bias!r}")

    @property
    def bits(self) -> int:
        return self.exp_bits

    @property
    def top_code(self) -> int:
        """The largest code that is a number (the next one, all ones, is NaN)."""
        return (1 << self.exp_bits) - 2

    @property
    def max(self) -> float:
        return math.ldexp(1.0, self.top_code - self.bias)

    @property
    def min_subnormal(self) -> float:
        """Smallest value, ``2**-bias`` (named as for float formats)."""
        return math.ldexp(1.0, -self.bias)

    def _positive_values(self):
        return [math.ldexp(1.0, c - self.bias) for c in range(self.top_code + 1)]

    def _has_zero(self) -> bool:
        return False

    def _signed_values(self) -> bool:
        return False

    @property
    def float_container(self) -> FloatFormat:
        """A :class:`FloatFormat` (no fraction bits) holding every value and NaN."""
        span = self.top_code + 1
        exp_bits = (span + 1).bit_length()
        return FloatFormat(exp_bits, 0, bias=1 + self.bias, specials="fn")

    @property
    def spec(self) -> str:
        default = self.exp_bits == 8 and self.bias == 127
        return f"e{self.exp_bits}m0fnu" + ("" if default else f"b{self.bias}")


