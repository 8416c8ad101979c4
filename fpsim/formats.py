"""Number formats as frozen facts, plus the name registry and spec strings.

A :class:`FloatFormat` is a small immutable record: field widths, exponent bias and the policies for
special values, subnormals and overflow; a :class:`FixedFormat` is the <IL, FL> of a fixed-point
word.  Everything else (rounding, encoding, decoding) is a pure
function over it in :mod:`fpsim.kernels.rounding`, reached through :mod:`fpsim.ops`.

Limits (checked in ``__post_init__``): ``exp_bits`` 1..11, ``man_bits`` 0..52 (so ``bits`` <= 64),
and a bias for which every value of the format, subnormals included, is a finite float64
(``emax <= 1023`` and ``emin - man_bits >= -1074``).  These limits are what lets the kernels compute
every result exactly in float64 integer arithmetic.
"""

from __future__ import annotations

import math
import numbers
import re
import dataclasses
from dataclasses import dataclass, field

import numpy as np

SPECIALS = ("ieee", "fn", "fnuz", "none")

# Codes the kernels use for the specials policies (kept in one place).
SPECIALS_CODE = {"ieee": 0, "fn": 1, "fnuz": 2, "none": 3}


def code_dtype(bits: int) -> np.dtype:
    """Smallest unsigned numpy integer type with at least ``bits`` bits (``bits <= 64``)."""
    for dt in (np.uint8, np.uint16, np.uint32, np.uint64):
        if bits <= 8 * np.dtype(dt).itemsize:
            return np.dtype(dt)
    raise ValueError(f"codes of {bits} bits do not fit an unsigned numpy integer type")


def _coerce(record, ints=(), bools=()):
    """Numpy integers and booleans given for int and bool fields become Python ones (a record
    holds plain values); anything else is left for the field checks to refuse."""
    for name in ints:
        v = getattr(record, name)
        if isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_)):
            object.__setattr__(record, name, int(v))
    for name in bools:
        if isinstance(getattr(record, name), np.bool_):
            object.__setattr__(record, name, bool(getattr(record, name)))


class _Coded:
    """What every format with ``bits``-bit codes shares: code count, code dtype, value list."""

    @property
    def n_codes(self) -> int:
        """Number of bit patterns, ``2**bits``."""
        return 1 << self.bits

    @property
    def code_dtype(self):
        """Smallest unsigned numpy integer type that holds a code."""
        return code_dtype(self.bits)

    def values(self):
        """All distinct finite values, ascending, as float64 (formats of at most 16 bits)."""
        from . import ops  # ops imports this module
        if self.bits > 16:
            raise ValueError(f"values() lists formats of at most 16 bits; {self} has {self.bits}")
        v = ops.decode(np.arange(self.n_codes, dtype=self.code_dtype), self, dtype=np.float64)
        return np.unique(v[np.isfinite(v)])

    def __str__(self):
        return self.name or self.spec


@dataclass(frozen=True)
class FloatFormat(_Coded):
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
        ``min_normal`` is then flushed to zero with its sign (FTZ with tininess after rounding).
        Inputs: decoding a code with exponent field 0 and a nonzero fraction gives a signed zero
        (denormals-are-zero).
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
        _coerce(self, ("exp_bits", "man_bits", "bias"), ("subnormals", "saturate"))
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

    # --- facts ---------------------------------------------------------------------------------
    @property
    def bits(self) -> int:
        """Total width in bits (sign + exponent + fraction)."""
        return 1 + self.exp_bits + self.man_bits

    @property
    def emin(self) -> int:
        """Exponent of the smallest normal number."""
        return 1 - self.bias

    @property
    def emax(self) -> int:
        """Exponent of the largest finite number."""
        return self._max_exp_field() - self.bias

    @property
    def max(self) -> float:
        """Largest finite value."""
        sig = (1 << self.man_bits) + self._max_man_field()
        return math.ldexp(sig, self.emax - self.man_bits)

    @property
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
                and _ML_ALIASES.get(head + tail, self) == self:
            return head + tail
        return f"{head}b{self.bias}{tail}"

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


# --- fixed point ----------------------------------------------------------------------------------
FRAC_LIMIT = 960   # |frac_bits| bound: every value, the step and float_container stay float64


@dataclass(frozen=True)
class FixedFormat(_Coded):
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
        _coerce(self, ("int_bits", "frac_bits"), ("signed", "saturate"))
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


# --- posits -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PositFormat(_Coded):
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
        _coerce(self, ("n", "es"))
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


# --- radix-4 floating point ------------------------------------------------------------------
@dataclass(frozen=True)
class Radix4Format(_Coded):
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
        _coerce(self, ("exp_bits", "bias", "phase"))
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


# --- exponent-only scales -------------------------------------------------------------------------
@dataclass(frozen=True)
class ExponentFormat(_Coded):
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
        _coerce(self, ("exp_bits", "bias"))
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


# --- registry ---------------------------------------------------------------------------------

_REGISTRY: dict[str, tuple[object, str]] = {}


def register(name: str, fmt, doc: str):
    """Name a format (any format object with a ``name`` field) in the registry, with its source."""
    _REGISTRY[name] = (dataclasses.replace(fmt, name=name), doc)


def _register(name, fmt_kwargs, doc):
    register(name, FloatFormat(**fmt_kwargs), doc)


# ml_dtypes float types, same semantics (fields, bias, specials and overflow behaviour).
_ML = "ml_dtypes type of the same name"
_register("float8_e4m3fn", dict(exp_bits=4, man_bits=3, specials="fn"),
          "OCP FP8 E4M3 (OFP8 spec v1.0); " + _ML)
_register("float8_e5m2", dict(exp_bits=5, man_bits=2), "OCP FP8 E5M2 / IEEE-style; " + _ML)
_register("float8_e4m3fnuz", dict(exp_bits=4, man_bits=3, bias=8, specials="fnuz"),
          "Graphcore/AMD E4M3 FNUZ, bias 8; " + _ML)
_register("float8_e5m2fnuz", dict(exp_bits=5, man_bits=2, bias=16, specials="fnuz"),
          "Graphcore/AMD E5M2 FNUZ, bias 16; " + _ML)
_register("float8_e4m3b11fnuz", dict(exp_bits=4, man_bits=3, bias=11, specials="fnuz"),
          "E4M3 with bias 11, FNUZ; " + _ML)
_register("float8_e3m4", dict(exp_bits=3, man_bits=4), "IEEE-style E3M4; " + _ML)
_register("float8_e4m3", dict(exp_bits=4, man_bits=3), "IEEE-style E4M3 (with Inf); " + _ML)
_register("float6_e2m3fn", dict(exp_bits=2, man_bits=3, specials="none"),
          "OCP MX FP6 E2M3 (OCP MX spec v1.0); " + _ML)
_register("float6_e3m2fn", dict(exp_bits=3, man_bits=2, specials="none"),
          "OCP MX FP6 E3M2 (OCP MX spec v1.0); " + _ML)
_register("float4_e2m1fn", dict(exp_bits=2, man_bits=1, specials="none"),
          "OCP MX FP4 E2M1 (OCP MX spec v1.0); " + _ML)
_register("bfloat16", dict(exp_bits=8, man_bits=7), "bfloat16; " + _ML)
register("float8_e8m0fnu", ExponentFormat(8, 127),
         "OCP MX E8M0 scale (MX spec v1.0 section 5.4.1); " + _ML)
_register("float16", dict(exp_bits=5, man_bits=10), "IEEE 754 binary16 (numpy float16)")
_register("float32", dict(exp_bits=8, man_bits=23), "IEEE 754 binary32")
_register("float64", dict(exp_bits=11, man_bits=52), "IEEE 754 binary64")

# Paper presets.  Field widths are the papers'; where a paper does not spell out special values we
# use the IEEE layout, and say so.
_register("fp8_152", dict(exp_bits=5, man_bits=2),
          "Wang et al. 2018, 'Training DNNs with 8-bit floating point numbers': the FP8 (1,5,2) data "
          "format of weights, activations, errors and gradients. Default bias 15; IEEE-style specials "
          "assumed (the paper gives the field widths).")
_register("fp16_169", dict(exp_bits=6, man_bits=9),
          "Wang et al. 2018: the FP16 (1,6,9) format of the accumulators (chunk-based accumulation) "
          "and the weight update. Default bias 31; IEEE-style specials assumed.")
_register("hfp8_143", dict(exp_bits=4, man_bits=3, bias=11),
          "Sun et al. 2019, 'Hybrid 8-bit Floating Point (HFP8)': the 1-4-3 forward format "
          "(weights and activations) with its exponent bias moved to 11, the bias MLIR/XLA document "
          "for the HFP8 E4M3 type (f8E4M3B11FNUZ); IEEE-style specials assumed.")
_register("hfp8_152", dict(exp_bits=5, man_bits=2),
          "Sun et al. 2019 (HFP8): the 1-5-2 backward format (errors and gradients), bias 15, "
          "IEEE-style specials assumed.")


_POSIT_STD = ("Posit Standard (2022), section 2 and Table 1; es = 2, minpos/maxpos "
              "useed**-+(n-2); a 16n-bit quire for exact sums of products")
register("posit8", PositFormat(8, 2), f"{_POSIT_STD}; 8-bit posit")
register("posit16", PositFormat(16, 2), f"{_POSIT_STD}; 16-bit posit")
for _es in (0, 1):
    register(f"posit8_es{_es}", PositFormat(8, _es),
             f"Carmichael et al. 2019, 'Deep Positron', section III: 8-bit posits with es = {_es} "
             "for inference with exact multiply-accumulate (quire)")


_SUN2020 = ("Sun et al. 2020, 'Ultra-Low Precision 4-bit Training of Deep Neural Networks'; "
            "radix-4 FP4 [1,3,0] of the errors; bias 4 is fpsim's assumption")
register("fp4_130", Radix4Format(3), f"{_SUN2020}; the even-power grid (phase 0) of two-phase "
         "rounding")
register("fp4_130_phase1", Radix4Format(3, phase=1), f"{_SUN2020}; the odd-power grid (phase 1) "
         "of two-phase rounding")


# The ml_dtypes names without their "float8_"/"float6_"/"float4_" prefix name the same formats
# ("e2m1fn" is float4_e2m1fn, which has no NaN; "e4m3fnuz" is float8_e4m3fnuz, bias 8).
_ML_ALIASES = {n.split("_", 1)[1]: f for n, (f, _) in _REGISTRY.items()
               if n.startswith(("float8_", "float6_", "float4_"))}


def _dtype_name(obj):
    """The registry name of a numpy/ml_dtypes float type or dtype (e.g. ml_dtypes.bfloat16), or
    None when obj is not one fpsim names."""
    if obj is None:
        return None
    try:
        dt = np.dtype(obj)
    except (TypeError, ValueError):
        return None
    name = dt.name
    return name if name in _REGISTRY and (dt.kind == "f" or dt.kind == "V") else None


def registered_formats() -> dict:
    """Every named format: ``{name: format}`` in registration order."""
    return {k: v[0] for k, v in _REGISTRY.items()}


def describe(name: str) -> str:
    """The one-line description (and citation) of a named format."""
    if name not in _REGISTRY:
        raise ValueError(f"no named format {name!r}; known: {', '.join(_REGISTRY)}")
    return _REGISTRY[name][1]


_SPEC_RE = re.compile(
    r"^(?:e(?P<e>\d+)m(?P<m>\d+)|1-(?P<e2>\d+)-(?P<m2>\d+))"
    r"(?:b(?P<bias>-?\d+))?(?P<sp>fnuz|fn|none|ieee)?(?P<flags>(?:_(?:ftz|sat))*)$")
_BLOCK_RE = re.compile(r"^block\((?P<el>.+?),(?P<b>tensor|\d+x\d+|\d+),(?P<lo>-?\d+)\.\.(?P<hi>-?\d+)"
                       r"(?P<nan>,nan)?\)$")
_EXPONENT_RE = re.compile(r"^e(?P<e>\d+)m0fnu(?:b(?P<b>-?\d+))?$")
_RADIX4_RE = re.compile(r"^radix4_e(?P<e>\d+)(?:b(?P<b>-?\d+))?(?P<p>p1)?$")
_POSIT_RE = re.compile(r"^posit<(?P<n>\d+),(?P<es>\d+)>$")
_FIXED_RE = re.compile(r"^(?P<u>u?)fixed<(?P<il>-?\d+),(?P<fl>-?\d+)>(?P<wrap>_wrap)?$")


def format(spec):
    """Look up a format by name or parse a spec string.

    Accepts a format object (returned as is), a numpy or ml_dtypes float type or dtype
    (``ml_dtypes.float8_e4m3fn``, ``np.float16``), any name of :func:`registered_formats`
    (``"float8_e4m3fn"``, ``"fp16_169"``, ``"mxfp8_e4m3"``, ...), or a spec string:

    - floats: ``eXmY`` or the papers' ``1-X-Y``, optionally followed by ``bN`` (bias), a specials
      policy ``fn``/``fnuz``/``none`` (default ``ieee``) and the flags ``_ftz`` (no subnormals) and
      ``_sat`` (saturate), e.g. ``"e4m3"``, ``"e4m3b11fnuz"``, ``"1-6-9"``, ``"e2m1none_sat"``.
      Without ``bN`` the bias is IEEE's ``2**(E-1) - 1``, or ``2**(E-1)`` with ``fnuz``
      (:func:`spec_default_bias`).  The ml_dtypes names without their ``float8_``/``float6_``/
      ``float4_`` prefix mean the same formats: ``"e4m3fnuz"`` is float8_e4m3fnuz (bias 8),
      ``"e2m1fn"`` is float4_e2m1fn (no NaN).
    - fixed point: ``fixed<IL,FL>`` (signed), ``ufixed<IL,FL>``, with ``_wrap`` for wrap-around
      overflow (default: saturate), e.g. ``"fixed<4,12>"``.
    - posits: ``posit<n,es>``, e.g. ``"posit<8,0>"``.
    - radix-4: ``radix4_eE[bB][p1]``, e.g. ``"radix4_e3b4"`` (p1: the odd-power grid).
    - block formats: ``block(ELEMENT,BLOCK,SMIN..SMAX[,nan])`` with BLOCK ``32``, ``48x48`` or
      ``tensor``, e.g. ``"block(e4m3fn,32,-127..127,nan)"`` (= ``"mxfp8_e4m3"``).

    >>> format("1-6-9") == format("fp16_169")
    True
    >>> format("fixed<4,12>")
    FixedFormat(int_bits=4, frac_bits=12, signed=True, saturate=True, name=None)
    """
    if not isinstance(spec, str) and dataclasses.is_dataclass(spec) and hasattr(spec, "name"):
        return spec
    if not isinstance(spec, str):
        named = _dtype_name(spec)
        if named is None:
            raise ValueError(f"format must be a format object, a name/spec string or a float "
                             f"dtype fpsim names (float16/32/64, ml_dtypes types), got {spec!r}")
        return _REGISTRY[named][0]
    key = spec.strip()
    if key in _REGISTRY:
        return _REGISTRY[key][0]
    if key.lower() in _ML_ALIASES:
        return _ML_ALIASES[key.lower()]
    m = _BLOCK_RE.match(key.lower().replace(" ", ""))
    if m is not None:
        from .blocks import BlockFormat     # blocks.py builds on this module
        b = m["b"]
        block = None if b == "tensor" else (tuple(int(v) for v in b.split("x")) if "x" in b
                                            else int(b))
        return BlockFormat(format(m["el"]), block, int(m["lo"]), int(m["hi"]),
                           nan_scale=m["nan"] is not None)
    m = _EXPONENT_RE.match(key.lower().replace(" ", ""))
    if m is not None:
        return ExponentFormat(int(m["e"]), 127 if m["b"] is None else int(m["b"]))
    m = _RADIX4_RE.match(key.lower().replace(" ", ""))
    if m is not None:
        return Radix4Format(int(m["e"]), None if m["b"] is None else int(m["b"]),
                            phase=1 if m["p"] else 0)
    m = _POSIT_RE.match(key.lower().replace(" ", ""))
    if m is not None:
        return PositFormat(int(m["n"]), int(m["es"]))
    m = _FIXED_RE.match(key.lower().replace(" ", ""))
    if m is not None:
        return FixedFormat(int(m["il"]), int(m["fl"]), signed=not m["u"],
                           saturate=m["wrap"] is None)
    m = _SPEC_RE.match(key.lower())
    if m is None:
        raise ValueError(
            f"unknown format {spec!r}: expected a name ({', '.join(_REGISTRY)}) or a spec string "
            "like 'e4m3', 'e4m3b11fnuz', '1-6-9', 'e5m2_sat', 'e4m3fn_ftz', 'fixed<4,12>', "
            "'posit<8,0>', 'block(e4m3fn,32,-127..127,nan)'")
    e = int(m["e"] or m["e2"])
    mm = int(m["m"] or m["m2"])
    flags = m["flags"] or ""
    specials = m["sp"] or "ieee"
    return FloatFormat(exp_bits=e, man_bits=mm,
                       bias=spec_default_bias(e, specials) if m["bias"] is None else int(m["bias"]),
                       specials=specials,
                       subnormals="_ftz" not in flags, saturate="_sat" in flags)
