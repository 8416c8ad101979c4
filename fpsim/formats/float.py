"""Binary floating-point formats: :class:`FloatFormat`, a frozen record of field widths, bias and
the policies for special values, subnormals and overflow.  Rounding, encoding and decoding are pure
functions over it in :mod:`fpsim.kernels.rounding`, reached through :mod:`fpsim.quantize`.

Limits (checked in ``__post_init__``): ``exp_bits`` 1..11, ``man_bits`` 0..52 (so ``bits`` <= 64),
and a bias for which every value of the format, subnormals included, is a finite float64
(``emax <= 1023`` and ``emin - man_bits >= -1074``).  These limits are what lets the kernels compute
every result exactly in float64 integer arithmetic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from .base import Coded, coerce

SPECIALS = ("ieee", "fn", "fnuz", "none")

# Codes the kernels use for the specials policies (kept in one place).
SPECIALS_CODE = {"ieee": 0, "fn": 1, "fnuz": 2, "none": 3}

@dataclass(frozen=True)
class FloatFormat(Coded):
    """A binary floating-point format: 1 sign bit, ``exp_bits`` exponent bits, ``man_bits`` fraction bits.

    Parameters
    ----------
    exp_bits, man_bits : int
        Field widths; ``bits = 1 + exp_bits + man_bits``.
    bias : int or None
        Exponent bias; ``None`` means the IEEE default ``2**(exp_bits-1) - 1``.
    subnormals : bool
        ``False`` models flush-to-zero hardware: exponent field 0 encodes only zero.  Outputs are
        rounded onto the subnormal grid first (same rounding mode) and a nonzero result below
        ``min_normal`` is then flushed to zero with its sign (FTZ after rounding, as FTZ hardware
        does).  So ``rup`` of a tiny positive value gives +0, not ``min_normal``, and stochastic
        rounding below ``min_normal`` has mean 0.  A unit that instead rounds onto the normal
        grid (``rup`` giving ``min_normal``) is modelled by rounding with ``subnormals=True`` and
        mapping the results below ``min_normal`` yourself.  Inputs: decoding a code with exponent
        field 0 and a nonzero fraction gives a signed zero (denormals-are-zero).
    specials : {"ieee", "fn", "fnuz", "none"}
        ``"ieee"``: the all-ones exponent field holds Inf (fraction 0) and NaN.  ``"fn"``: no Inf,
        only the all-ones magnitude is NaN (OCP E4M3).  ``"fnuz"``: no Inf, no negative zero, NaN is
        the negative-zero code.  ``"none"``: every code is a number; NaN input becomes a zero with the
        opposite sign bit (the rule ml_dtypes applies to float4_e2m1fn and the float6 types).
    saturate : bool
        ``True``: overflow and infinite inputs give the largest finite value of the same sign.
        ``False``: IEEE overflow per rounding mode (Inf, or NaN where there is no Inf; round toward
        zero, round-to-odd and the directed mode pointing at zero give the largest finite value).
        ``"none"`` has neither Inf nor NaN, so it always saturates.

    Examples
    --------
    >>> f = FloatFormat(exp_bits=4, man_bits=3, specials="fn")   # OCP E4M3
    >>> f.max, f.min_normal, f.min_subnormal, f.bits
    (448.0, 0.015625, 0.001953125, 8)
    """

    exp_bits: int
    man_bits: int
    bias: int | None = None
    subnormals: bool = True
    specials: str = "ieee"
    saturate: bool = False
    name: str | None = field(default=None, compare=False)

    def __post_init__(self):
        coerce(self, ("exp_bits", "man_bits", "bias"), ("subnormals", "saturate"))
        for pname in ("exp_bits", "man_bits"):
            v = getattr(self, pname)
            if isinstance(v, bool) or not isinstance(v, int):
                raise ValueError(f"{pname} must be an int, got {v!r}")
        if not 1 <= self.exp_bits <= 11:
            raise ValueError(f"exp_bits must be in 1..11, got {self.exp_bits}")
        if not 0 <= self.man_bits <= 52:
            raise ValueError(f"man_bits must be in 0..52, got {self.man_bits}")
        if self.specials not in SPECIALS:
            raise ValueError(f"specials must be one of {SPECIALS}, got {self.specials!r}")
        for pname in ("subnormals", "saturate"):
            if not isinstance(getattr(self, pname), bool):
                raise ValueError(f"{pname} must be True or False, got {getattr(self, pname)!r}")
        if self.specials == "ieee" and (self.exp_bits < 2 or self.man_bits < 1):
            raise ValueError(
                "specials='ieee' needs exp_bits >= 2 and man_bits >= 1 (the all-ones exponent "
                f"holds Inf and NaN), got exp_bits={self.exp_bits}, man_bits={self.man_bits}")
        if self.specials == "fn" and self.man_bits == 0 and self.exp_bits < 2:
            raise ValueError("specials='fn' with man_bits=0 needs exp_bits >= 2")
        if self.bias is None:
            object.__setattr__(self, "bias", (1 << (self.exp_bits - 1)) - 1)
        elif isinstance(self.bias, bool) or not isinstance(self.bias, int):
            raise ValueError(f"bias must be an int or None, got {self.bias!r}")
        lo, hi = self._bias_range()
        if not lo <= self.bias <= hi:
            raise ValueError(
                f"bias must be in {lo}..{hi} for exp_bits={self.exp_bits}, man_bits={self.man_bits} "
                f"(every value must be a finite float64), got {self.bias}")

    # --- structure -----------------------------------------------------------------------------
    def _max_exp_field(self) -> int:
        top = (1 << self.exp_bits) - 1
        if self.specials == "ieee" or (self.specials == "fn" and self.man_bits == 0):
            return top - 1
        return top

    def _max_man_field(self) -> int:
        full = (1 << self.man_bits) - 1
        if self.specials == "fn" and self.man_bits > 0:
            return full - 1
        return full

    def _bias_range(self):
        # emax = max_exp_field - bias <= 1023 ; emin - man_bits = 1 - bias - man_bits >= -1074
        return self._max_exp_field() - 1023, 1075 - self.man_bits

    # --- facts (the ones every kernel call asks for are cached: a format is frozen) -------------
    @property
    def bits(self) -> int:
        """Total width in bits (sign + exponent + fraction)."""
        return 1 + self.exp_bits + self.man_bits

    @cached_property
    def emin(self) -> int:
        """Exponent of the smallest normal number."""
        return 1 - self.bias

    @cached_property
    def emax(self) -> int:
        """Exponent of the largest finite number."""
        return self._max_exp_field() - self.bias

    @cached_property
    def max(self) -> float:
        """Largest finite value."""
        sig = (1 << self.man_bits) + self._max_man_field()
        return math.ldexp(sig, self.emax - self.man_bits)

    @cached_property
    def min_normal(self) -> float:
        """Smallest positive normal value, ``2**emin``."""
        return math.ldexp(1.0, self.emin)

    @property
    def min_subnormal(self) -> float:
        """Smallest positive value (``min_normal`` when there are no subnormals or no fraction bits)."""
        if self.subnormals and self.man_bits > 0:
            return math.ldexp(1.0, self.emin - self.man_bits)
        return self.min_normal

    @property
    def epsilon(self) -> float:
        """Distance from 1 to the next larger value in an unbounded-range format, ``2**-man_bits``."""
        return math.ldexp(1.0, -self.man_bits)

    @property
    def has_inf(self) -> bool:
        return self.specials == "ieee"

    @property
    def has_nan(self) -> bool:
        return self.specials != "none"

    @property
    def has_negative_zero(self) -> bool:
        return self.specials != "fnuz"

    @property
    def spec(self) -> str:
        """Canonical spec string; ``fpsim.format(f.spec) == f``.

        The bias is written unless it is the spec grammar's default for the specials policy
        (:func:`spec_default_bias`), and also where the short string would be the prefix-less
        name of a different ml_dtypes type (``FloatFormat(2, 1, specials="fn").spec`` is
        ``"e2m1b1fn"``: ``"e2m1fn"`` names float4_e2m1fn, which has no NaN)."""
        head = f"e{self.exp_bits}m{self.man_bits}"
        tail = ("" if self.specials == "ieee" else self.specials) \
            + ("" if self.subnormals else "_ftz") + ("_sat" if self.saturate else "")
        if self.bias == spec_default_bias(self.exp_bits, self.specials) \
                and ML_ALIASES.get(head + tail, self) == self:
            return head + tail
        return f"{head}b{self.bias}{tail}"

    def _positive_values(self):
        e = np.arange(1, self._max_exp_field() + 1)
        m = np.arange(1 << self.man_bits)
        sig = (1 << self.man_bits) + m
        normal = np.ldexp(sig[None, :].astype(float), (e - self.bias - self.man_bits)[:, None])
        normal = normal.reshape(-1)[: (self._max_exp_field() - 1) * m.size + self._max_man_field()
                                    + 1]
        sub = np.ldexp(m[1:].astype(float), self.emin - self.man_bits) if self.subnormals else []
        return np.concatenate([sub, normal])

    @property
    def float_container(self) -> "FloatFormat":
        """The format itself (every format family names the FloatFormat that holds its values)."""
        return self

    def contains(self, other: "FloatFormat") -> bool:
        """True when every value of ``other`` (finite values, Inf, NaN, -0) is a value of ``self``.

        Finite values need: no more fraction bits, no larger maximum, and at the smallest binade of
        ``other`` a quantum ``2**(other.emin - other.man_bits)`` that ``self`` can also represent.
        """
        if (other.has_inf and not self.has_inf) or (other.has_nan and not self.has_nan):
            return False
        if other.has_negative_zero and not self.has_negative_zero:
            return False
        if other.man_bits > self.man_bits or other.max > self.max:
            return False
        if other.emin >= self.emin:
            return True
        return self.subnormals and other.emin - other.man_bits >= self.emin - self.man_bits


def spec_default_bias(exp_bits: int, specials: str) -> int:
    """The bias a float spec string means when it names none: ``2**(E-1)`` for "fnuz" (the
    convention of every fnuz type of ml_dtypes, so ``"e4m3fnuz"`` is float8_e4m3fnuz), else the
    IEEE ``2**(E-1) - 1``.  (``FloatFormat(bias=None)`` is always the IEEE bias.)"""
    return (1 << (exp_bits - 1)) - (0 if specials == "fnuz" else 1)



# The ml_dtypes float types: fields and policies of each (fpsim.format names them; the prefix-less
# names are aliases, and a FloatFormat whose short spec would be such an alias of a different
# format writes its bias).
_ML = "ml_dtypes type of the same name"
ML_FLOATS = {
    "float8_e4m3fn": (dict(exp_bits=4, man_bits=3, specials="fn"),
                      "OCP FP8 E4M3 (OFP8 spec v1.0); " + _ML),
    "float8_e5m2": (dict(exp_bits=5, man_bits=2), "OCP FP8 E5M2 / IEEE-style; " + _ML),
    "float8_e4m3fnuz": (dict(exp_bits=4, man_bits=3, bias=8, specials="fnuz"),
                        "Graphcore/AMD E4M3 FNUZ, bias 8; " + _ML),
    "float8_e5m2fnuz": (dict(exp_bits=5, man_bits=2, bias=16, specials="fnuz"),
                        "Graphcore/AMD E5M2 FNUZ, bias 16; " + _ML),
    "float8_e4m3b11fnuz": (dict(exp_bits=4, man_bits=3, bias=11, specials="fnuz"),
                           "E4M3 with bias 11, FNUZ; " + _ML),
    "float8_e3m4": (dict(exp_bits=3, man_bits=4), "IEEE-style E3M4; " + _ML),
    "float8_e4m3": (dict(exp_bits=4, man_bits=3), "IEEE-style E4M3 (with Inf); " + _ML),
    "float6_e2m3fn": (dict(exp_bits=2, man_bits=3, specials="none"),
                      "OCP MX FP6 E2M3 (OCP MX spec v1.0); " + _ML),
    "float6_e3m2fn": (dict(exp_bits=3, man_bits=2, specials="none"),
                      "OCP MX FP6 E3M2 (OCP MX spec v1.0); " + _ML),
    "float4_e2m1fn": (dict(exp_bits=2, man_bits=1, specials="none"),
                      "OCP MX FP4 E2M1 (OCP MX spec v1.0); " + _ML),
    "bfloat16": (dict(exp_bits=8, man_bits=7), "bfloat16; " + _ML),
}
ML_ALIASES = {n.split("_", 1)[1]: FloatFormat(**kw) for n, (kw, _) in ML_FLOATS.items()
              if n.startswith(("float8_", "float6_", "float4_"))}
