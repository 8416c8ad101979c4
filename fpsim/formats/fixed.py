"""Fixed-point formats: :class:`FixedFormat`, the <IL, FL> of a two's-complement (or unsigned)
word (Gupta et al. 2015)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .base import Coded, coerce
from .float import FloatFormat

FRAC_LIMIT = 960   # |frac_bits| bound: every value, the step and float_container stay float64


@dataclass(frozen=True)
class FixedFormat(Coded):
    """A two's-complement (or unsigned) fixed-point number ``<IL, FL>``.

    ``int_bits`` integer bits (the sign bit included, as in Gupta et al. 2015, "Deep Learning with
    Limited Numerical Precision", section 3) and ``frac_bits`` fractional bits: the word has
    ``bits = int_bits + frac_bits`` bits and the values are ``k * 2**-frac_bits`` for the integers
    ``k`` of the word, ``-2**(bits-1) .. 2**(bits-1) - 1`` when signed, ``0 .. 2**bits - 1``
    unsigned.  So a signed ``<4, 12>`` covers ``[-8, 8 - 2**-12]`` in steps of ``2**-12``.

    Parameters
    ----------
    int_bits, frac_bits : int
        Either may be negative (a grid coarser than 1, or a purely fractional word), as long as
        ``bits`` is 2..53 (signed) or 1..53 (unsigned) and ``|frac_bits| <= 960``.
    signed : bool
        Two's complement (default) or unsigned.
    saturate : bool
        ``True``: results beyond the range clamp to the largest/smallest value.  ``False``: they
        wrap modulo ``2**int_bits`` as a two's-complement adder does.

    Rounding (any mode of :func:`fpsim.quantize`, stochastic included) picks a neighbouring grid
    value of the exact input, then overflow is saturated or wrapped.  There is no negative zero
    and no NaN code: NaN passes through :func:`fpsim.quantize` as NaN and is rejected by
    :func:`fpsim.encode`; +-Inf saturate to the largest/smallest value under both policies.

    >>> f = FixedFormat(4, 12)
    >>> f.bits, f.min, f.max, f.step
    (16, -8.0, 7.999755859375, 0.000244140625)
    """

    int_bits: int
    frac_bits: int
    signed: bool = True
    saturate: bool = True
    name: str | None = field(default=None, compare=False)

    def __post_init__(self):
        coerce(self, ("int_bits", "frac_bits"), ("signed", "saturate"))
        for pname in ("int_bits", "frac_bits"):
            v = getattr(self, pname)
            if isinstance(v, bool) or not isinstance(v, int):
                raise ValueError(f"{pname} must be an int, got {v!r}")
        for pname in ("signed", "saturate"):
            if not isinstance(getattr(self, pname), bool):
                raise ValueError(f"{pname} must be True or False, got {getattr(self, pname)!r}")
        lo = 2 if self.signed else 1
        if not lo <= self.bits <= 53:
            raise ValueError(f"int_bits + frac_bits must be in {lo}..53 for a "
                             f"{'signed' if self.signed else 'unsigned'} format, got {self.bits}")
        if abs(self.frac_bits) > FRAC_LIMIT:
            raise ValueError(f"frac_bits must be in -{FRAC_LIMIT}..{FRAC_LIMIT}, "
                             f"got {self.frac_bits}")

    @property
    def bits(self) -> int:
        """Word width, ``int_bits + frac_bits``."""
        return self.int_bits + self.frac_bits

    @property
    def step(self) -> float:
        """Grid spacing (the value of the least significant bit), ``2**-frac_bits``."""
        return math.ldexp(1.0, -self.frac_bits)

    @property
    def min_subnormal(self) -> float:
        """Smallest positive value (the step), named as for float formats."""
        return self.step

    @property
    def max(self) -> float:
        """Largest value."""
        top = (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1
        return math.ldexp(top, -self.frac_bits)

    @property
    def min(self) -> float:
        """Smallest (most negative) value: ``-2**(int_bits-1)`` signed, 0 unsigned."""
        return -math.ldexp(1.0, self.int_bits - 1) if self.signed else 0.0

    def _positive_values(self):
        top = (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1
        return np.ldexp(np.arange(1, top + 1, dtype=float), -self.frac_bits)

    def _signed_values(self) -> bool:
        return False      # the negative words are listed below: -2**(bits-1) has no positive twin

    def values(self):
        """All values, ascending, as float64 (formats of at most 16 bits)."""
        if self.bits > 16:
            raise ValueError(f"values() lists formats of at most 16 bits; {self} has {self.bits}")
        lo = -(1 << (self.bits - 1)) if self.signed else 0
        hi = (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1
        return np.ldexp(np.arange(lo, hi + 1, dtype=float), -self.frac_bits)

    @property
    def float_container(self) -> FloatFormat:
        """The narrowest :class:`FloatFormat` holding every value of this format.

        Its bottom binade has the step ``2**-frac_bits`` as quantum, so the values below
        ``2**(int_bits-1)`` (``2**int_bits`` unsigned) are on the same grid.  The GEMM kernels run
        fixed-point operands through it; a dtype holds the format when it holds this.
        """
        if self.signed:   # emin = int_bits - 2, man_bits = bits - 2; -2**(int_bits-1) one binade up
            return FloatFormat(2, self.bits - 2, bias=3 - self.int_bits, specials="none")
        return FloatFormat(1, self.bits - 1, bias=2 - self.int_bits, specials="none")

    @property
    def spec(self) -> str:
        """Canonical spec string; ``fpsim.format(f.spec) == f``."""
        s = f"{'' if self.signed else 'u'}fixed<{self.int_bits},{self.frac_bits}>"
        return s if self.saturate else s + "_wrap"


