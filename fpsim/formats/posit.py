"""Posit formats: :class:`PositFormat` <n, es> (Posit Standard 2022)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .base import Coded, coerce
from .float import FloatFormat

@dataclass(frozen=True)
class PositFormat(Coded):
    """A posit ``<n, es>`` (Posit Standard 2022; Gustafson and Yonemoto 2017): sign, a run-length
    regime, ``es`` exponent bits and the remaining fraction bits; ``useed = 2**(2**es)``.

    Codes are n-bit two's-complement words: 0 is zero, ``2**(n-1)`` is NaR (not a real, the only
    exception value; NaN and +-Inf become NaR), a negative value is the negation of the word of
    its magnitude.  Rounding is round-to-nearest with ties to the even code on the unbounded bit
    string (the midpoint of two neighbours is the (n+1)-bit posit between them, the geometric
    mean where exponent bits are cut off), and a nonzero value never rounds to 0 or NaR: it
    saturates at ``minpos``/``maxpos`` (Posit Standard 2022, section 4).  The standard fixes
    ``es = 2``; Deep Positron (Carmichael et al. 2019) uses n = 5..8 with es 0..2.

    ``2 <= n <= 16`` and ``0 <= es <= 4`` (tables of every value make the kernels exact and fast).

    >>> p = PositFormat(8, 0)
    >>> p.max, p.min_subnormal, p.spec
    (64.0, 0.015625, 'posit<8,0>')
    """

    n: int
    es: int
    name: str | None = field(default=None, compare=False)

    def __post_init__(self):
        coerce(self, ("n", "es"))
        for pname, lo, hi in (("n", 2, 16), ("es", 0, 4)):
            v = getattr(self, pname)
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise ValueError(f"{pname} must be an int in {lo}..{hi}, got {v!r}")

    @property
    def bits(self) -> int:
        return self.n

    @property
    def max(self) -> float:
        """maxpos = useed**(n-2)."""
        return math.ldexp(1.0, (self.n - 2) << self.es)

    @property
    def min_subnormal(self) -> float:
        """minpos = useed**-(n-2), the smallest positive posit (named as for float formats)."""
        return math.ldexp(1.0, -((self.n - 2) << self.es))

    def _positive_values(self):
        """Decoded from the standard's fields (sign 0, regime run, es exponent bits, fraction)."""
        n, es, out = self.n, self.es, []
        for c in range(1, 1 << (n - 1)):
            bits = format(c, f"0{n - 1}b")
            run = len(bits) - len(bits.lstrip(bits[0]))
            k = run - 1 if bits[0] == "1" else -run
            rest = bits[run + 1:]
            e = int((rest[:es] + "0" * es)[:es] or "0", 2)
            frac = rest[es:]
            f = int(frac, 2) / 2 ** len(frac) if frac else 0.0
            out.append(math.ldexp(1.0 + f, k * (1 << es) + e))
        return out

    @property
    def nar_code(self) -> int:
        return 1 << (self.n - 1)

    @property
    def float_container(self) -> FloatFormat:
        """A :class:`FloatFormat` holding every posit value (NaR as NaN): as many fraction bits as
        the longest posit fraction, ``n - 3 - es``, over minpos .. maxpos."""
        top = (self.n - 2) << self.es
        exp_bits = (2 * top + 2).bit_length()
        return FloatFormat(exp_bits, max(0, self.n - 3 - self.es), bias=1 + top, specials="fn")

    @property
    def spec(self) -> str:
        return f"posit<{self.n},{self.es}>"


