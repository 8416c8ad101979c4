"""Number formats as frozen facts, plus the name registry and spec strings.

A :class:`FloatFormat` is a small immutable record: field widths, exponent bias and the policies for
special values, subnormals and overflow.  Everything else (rounding, encoding, decoding) is a pure
function over it in :mod:`fpsim.kernels.rounding`, reached through :mod:`fpsim.ops`.

Limits (checked in ``__post_init__``): ``exp_bits`` 1..11, ``man_bits`` 0..52 (so ``bits`` <= 64),
and a bias for which every value of the format, subnormals included, is a finite float64
(``emax <= 1023`` and ``emin - man_bits >= -1074``).  These limits are what lets the kernels compute
every result exactly in float64 integer arithmetic.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

SPECIALS = ("ieee", "fn", "fnuz", "none")

# Codes the kernels use for the specials policies (kept in one place).
SPECIALS_CODE = {"ieee": 0, "fn": 1, "fnuz": 2, "none": 3}


@dataclass(frozen=True)
class FloatFormat:
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
    def n_codes(self) -> int:
        """Number of bit patterns, ``2**bits`` (NaN, Inf and both zeros included)."""
        return 1 << self.bits

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
    def code_dtype(self):
        """Smallest unsigned numpy integer type that holds a code."""
        for dt in (np.uint8, np.uint16, np.uint32, np.uint64):
            if self.bits <= 8 * np.dtype(dt).itemsize:
                return np.dtype(dt)
        raise AssertionError("bits <= 64 by construction")

    @property
    def spec(self) -> str:
        """Canonical spec string; ``fpsim.format(f.spec) == f``."""
        s = f"e{self.exp_bits}m{self.man_bits}"
        if self.bias != (1 << (self.exp_bits - 1)) - 1:
            s += f"b{self.bias}"
        if self.specials != "ieee":
            s += self.specials
        if not self.subnormals:
            s += "_ftz"
        if self.saturate:
            s += "_sat"
        return s

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

    def values(self):
        """All distinct finite values, ascending, as float64 (formats of at most 16 bits)."""
        from . import ops  # ops imports this module
        if self.bits > 16:
            raise ValueError(f"values() lists formats of at most 16 bits; {self} has {self.bits}")
        v = ops.decode(np.arange(self.n_codes, dtype=self.code_dtype), self, dtype=np.float64)
        return np.unique(v[np.isfinite(v)])

    def __str__(self):
        return self.name or self.spec


# --- registry ---------------------------------------------------------------------------------

_REGISTRY: dict[str, tuple[FloatFormat, str]] = {}


def _register(name, fmt_kwargs, doc):
    _REGISTRY[name] = (FloatFormat(**fmt_kwargs, name=name), doc)


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


def registered_formats() -> dict[str, FloatFormat]:
    """Every named format: ``{name: FloatFormat}`` in registration order."""
    return {k: v[0] for k, v in _REGISTRY.items()}


def describe(name: str) -> str:
    """The one-line description (and citation) of a named format."""
    if name not in _REGISTRY:
        raise ValueError(f"no named format {name!r}; known: {', '.join(_REGISTRY)}")
    return _REGISTRY[name][1]


_SPEC_RE = re.compile(
    r"^(?:e(?P<e>\d+)m(?P<m>\d+)|1-(?P<e2>\d+)-(?P<m2>\d+))"
    r"(?:b(?P<bias>-?\d+))?(?P<sp>fnuz|fn|none|ieee)?(?P<flags>(?:_(?:ftz|sat))*)$")


def format(spec) -> FloatFormat:
    """Look up a format by name or parse a spec string.

    Accepts a :class:`FloatFormat` (returned as is), any name of :func:`registered_formats`
    (``"float8_e4m3fn"``, ``"fp16_169"``, ...), or a spec string: ``eXmY`` or the papers'
    ``1-X-Y``, optionally followed by ``bN`` (bias), a specials policy ``fn``/``fnuz``/``none``
    (default ``ieee``) and the flags ``_ftz`` (no subnormals) and ``_sat`` (saturate), e.g.
    ``"e4m3"``, ``"e4m3b11fnuz"``, ``"1-6-9"``, ``"e2m1none_sat"``.  The ml_dtypes names without the
    ``float8_`` prefix (``"e4m3fn"``) therefore mean the same formats.

    >>> format("1-6-9") == format("fp16_169")
    True
    """
    if isinstance(spec, FloatFormat):
        return spec
    if not isinstance(spec, str):
        raise ValueError(f"format must be a FloatFormat or a name/spec string, got {spec!r}")
    key = spec.strip()
    if key in _REGISTRY:
        return _REGISTRY[key][0]
    m = _SPEC_RE.match(key.lower())
    if m is None:
        raise ValueError(
            f"unknown format {spec!r}: expected a name ({', '.join(_REGISTRY)}) or a spec string "
            "like 'e4m3', 'e4m3b11fnuz', '1-6-9', 'e5m2_sat', 'e4m3fn_ftz'")
    e = int(m["e"] or m["e2"])
    mm = int(m["m"] or m["m2"])
    flags = m["flags"] or ""
    return FloatFormat(exp_bits=e, man_bits=mm,
                       bias=None if m["bias"] is None else int(m["bias"]),
                       specials=m["sp"] or "ieee",
                       subnormals="_ftz" not in flags, saturate="_sat" in flags)
