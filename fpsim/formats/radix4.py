"""Radix-4 floating point with no fraction bits: :class:`Radix4Format` (Sun et al. 2020)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .base import Coded, coerce
from .float import FloatFormat

@dataclass(frozen=True)
class Radix4Format(Coded):
    """Radix-4 floating point with no fraction bits: 1 sign bit and ``exp_bits`` exponent bits
    (Sun et al. 2020, "Ultra-Low Precision 4-bit Training of Deep Neural Networks": FP4 [1,3,0]).

    Field 0 is zero; field ``f`` is ``4**(f - bias) * 2**phase``.  ``phase`` 0 and 1 are the two
    grids of two-phase rounding (powers of 4, and powers of 4 times 2).  No Inf or NaN: values
    saturate at the largest magnitude, NaN passes through :func:`fpsim.quantize` and is rejected
    by :func:`fpsim.encode`.  The paper's text was not available to us: the bias (default
    ``2**(exp_bits-1)``, magnitudes ``4**-3 .. 4**3`` for [1,3,0]) and the rounding rules are
    fpsim's (kernels/radix4.py), to be checked against section 3 of the paper.

    >>> f = Radix4Format()
    >>> f.bits, f.max, f.min_subnormal, f.spec
    (4, 64.0, 0.015625, 'radix4_e3b4')
    """

    exp_bits: int = 3
    bias: int | None = None
    phase: int = 0
    name: str | None = field(default=None, compare=False)

    def __post_init__(self):
        coerce(self, ("exp_bits", "bias", "phase"))
        if isinstance(self.exp_bits, bool) or not isinstance(self.exp_bits, int) \
                or not 1 <= self.exp_bits <= 8:
            raise ValueError(f"exp_bits must be an int in 1..8, got {self.exp_bits!r}")
        if self.bias is None:
            object.__setattr__(self, "bias", 1 << (self.exp_bits - 1))
        elif isinstance(self.bias, bool) or not isinstance(self.bias, int) \
                or not -200 <= self.bias <= 200:
            raise ValueError(f"bias must be an int in -200..200 or None, got {self.bias!r}")
        if self.phase not in (0, 1) or isinstance(self.phase, bool):
            raise ValueError(f"phase must be 0 or 1, got {self.phase!r}")

    @property
    def bits(self) -> int:
        return 1 + self.exp_bits

    @property
    def top_field(self) -> int:
        return (1 << self.exp_bits) - 1

    @property
    def max(self) -> float:
        return math.ldexp(1.0, 2 * (self.top_field - self.bias) + self.phase)

    @property
    def min_subnormal(self) -> float:
        """Smallest positive value, ``4**(1 - bias) * 2**phase``."""
        return math.ldexp(1.0, 2 * (1 - self.bias) + self.phase)

    def _positive_values(self):
        return [math.ldexp(1.0, 2 * (f - self.bias) + self.phase)
                for f in range(1, self.top_field + 1)]

    @property
    def float_container(self) -> FloatFormat:
        """A :class:`FloatFormat` (no fraction bits) holding every value."""
        emin = 2 * (1 - self.bias) + self.phase
        emax = 2 * (self.top_field - self.bias) + self.phase
        exp_bits = (emax - emin + 2).bit_length()
        return FloatFormat(exp_bits, 0, bias=1 - emin, specials="none")

    @property
    def spec(self) -> str:
        return f"radix4_e{self.exp_bits}b{self.bias}" + ("p1" if self.phase else "")


