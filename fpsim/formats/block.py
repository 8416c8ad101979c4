"""Shared-exponent block formats: :class:`BlockFormat` (Block Minifloat, OCP MX, Flexpoint).

A :class:`BlockFormat` is a frozen record of facts: the element format, the block shape and the
range of the shared scale exponent.  Every block format here chooses its scale the same way -
from the block's largest magnitude, ``s = floor(log2(amax)) - emax_elem`` with ``emax_elem`` the
exponent of the element format's largest value, clamped to the scale's range - which is OCP MX
v1.0 section 6.3, the official Block Minifloat code (Fox et al. 2021, section 2.2) and Flexpoint's
choice for a tensor whose maximum is known (Koster et al. 2017, section 3.3).  Stateful scale
policies (Autoflex, GradScale) are in :mod:`fpsim.scaling`.

Quantizing, encoding and decoding are :func:`fpsim.quantize`, :func:`fpsim.encode` and
:func:`fpsim.decode` with ``axis=``; the kernel is :mod:`fpsim.kernels.block`.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field

from ..kernels import block as _kblock
from .fixed import FixedFormat
from .float import FloatFormat


@dataclass(frozen=True)
class BlockFormat:
    """Elements of ``element`` sharing one power-of-two scale ``2**s`` per block.

    Parameters
    ----------
    element : FloatFormat or FixedFormat
        The element format (elements saturate at its largest value, as every block format here
        specifies).
    block : int, (int, int) or None
        ``n``: runs of n elements along the ``axis`` given to quantize (the last run may be
        shorter); ``(r, c)``: r x c tiles of the last two axes (edge tiles may be smaller);
        ``None``: one scale for the whole tensor.
    scale_min, scale_max : int
        Range of the scale exponent ``s``; a block whose exponent falls outside is clamped to it.
    nan_scale : bool
        The scale has a NaN code (OCP E8M0): a block holding a NaN, or whose exponent exceeds
        ``scale_max`` (an Inf), becomes all NaN, as the MX reference emulator does.  Otherwise the
        exponent clamps to ``scale_max`` and the elements saturate.
    scale_format : FloatFormat or None
        None: the power-of-two scales above.  A float format (UE4M3 as "float8_e4m3fn", whose
        sign is unused; "float32"; ...): each block's scale is a *value* ``S`` of that format,
        ``amax / element.max`` rounded once to nearest-even (at least the format's smallest
        positive value, at most its largest), and each element is ``x / S`` rounded once into
        the element format (saturating), so a value is ``element * S``.  An all-zero block takes
        ``S = 1``; a block holding a NaN or an Inf becomes all NaN.  NVFP4's and DeepSeek-V3's
        block scales; fpsim's choices where their papers leave the rounding open.  The scale
        range fields are unused.  Elements must be float formats.

    The scale exponent of a block is ``floor(log2(amax)) - emax_elem`` (``scale_min`` for an
    all-zero block), where ``emax_elem = floor(log2(element.max))``.  Its code (see
    :func:`fpsim.encode`) is ``s - scale_min``, with the all-ones code for NaN when ``nan_scale``.

    >>> import fpsim
    >>> mx = fpsim.format("mxfp8_e4m3")
    >>> mx.element.spec, mx.block, mx.scale_min, mx.scale_max, mx.scale_bits
    ('e4m3fn', 32, -127, 127, 8)
    """

    element: object
    block: object = 32
    scale_min: int = -127
    scale_max: int = 127
    nan_scale: bool = False
    name: str | None = field(default=None, compare=False)
    scale_format: object = None

    def __post_init__(self):
        if not isinstance(self.element, (FloatFormat, FixedFormat)):
            raise ValueError(f"element must be a FloatFormat or FixedFormat, got {self.element!r}")
        b = self.block
        if isinstance(b, list):
            object.__setattr__(self, "block", tuple(b))
            b = self.block
        ok = b is None or (_posint(b)) or (isinstance(b, tuple) and len(b) == 2
                                           and all(_posint(v) for v in b))
        if not ok:
            raise ValueError(f"block must be a positive int, a pair of positive ints or None, "
                             f"got {b!r}")
        for pname in ("scale_min", "scale_max"):
            v = getattr(self, pname)
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or abs(v) > 400:
                raise ValueError(f"{pname} must be an int in -400..400, got {v!r}")
        if self.scale_min > self.scale_max:
            raise ValueError(f"scale_min ({self.scale_min}) must not exceed scale_max "
                             f"({self.scale_max})")
        if not isinstance(self.nan_scale, bool):
            raise ValueError(f"nan_scale must be True or False, got {self.nan_scale!r}")
        el = self.element
        if self.scale_format is not None:
            self._check_scale_format()
            return
        lsb = -el.frac_bits if isinstance(el, FixedFormat) else el.emin - el.man_bits
        top = math.frexp(el.max)[1]
        if not _kblock.supports(lsb, top, self.scale_min, self.scale_max):
            raise ValueError(f"element {el} scaled by 2**{self.scale_min} .. 2**{self.scale_max} "
                             "leaves float64's normal range, where the kernels are exact; narrow "
                             "the scale range")

    def _check_scale_format(self):
        sf = self.scale_format
        if not isinstance(sf, FloatFormat) or sf.man_bits > 23 or sf.emax > 127 \
                or sf.emin - sf.man_bits < -149 or sf.specials not in ("ieee", "fn"):
            raise ValueError(f"scale_format must be None or a FloatFormat within float32 with a "
                             f"NaN code (e.g. "
                             f"fpsim.format('float8_e4m3fn'), fpsim.format('float32')), got "
                             f"{self.scale_format!r}")
        el = self.element
        if not isinstance(el, FloatFormat):
            raise ValueError(f"value scales (scale_format) need a float element format, got "
                             f"{el}")
        if el.emin - el.man_bits < -170 or el.emax > 200:
            # kernels.scaled's exact path clamps quotients to 2**-470 .. 2**400, which changes
            # no result only for elements well inside that range (quantize.value_block_quantize)
            raise ValueError(f"value scales (scale_format) need an element format within "
                             f"2**-170 .. 2**200 (smallest subnormal 2**{el.emin - el.man_bits}, "
                             f"largest exponent {el.emax} here); got {el}")

    @property
    def emax_elem(self) -> int:
        """Exponent of the element format's largest value, ``floor(log2(element.max))``."""
        return math.frexp(self.element.max)[1] - 1

    @property
    def float_container(self) -> FloatFormat:
        """A :class:`FloatFormat` holding every value of every block (NaN included): the element's
        significand width over the element's exponent range widened by the scale range (value
        scales: both significands).  The GEMM kernels read block-format operands through it,
        where the products of two such values are exact in float64 (not for float32 scales:
        tile-scaled operands go through nn.TileScaling's per-chunk dequantization)."""
        el = self.element.float_container
        if self.scale_format is not None:        # element x scale: both significands, and the
            sf = self.scale_format               # range from the smallest to the largest product
            lo = math.frexp(el.min_subnormal * sf.min_subnormal)[1] - 1
            hi = math.frexp(el.max * sf.max)[1]
            exp_bits = (hi - lo + 2).bit_length()
            return FloatFormat(exp_bits, el.man_bits + sf.man_bits + 1, bias=1 - lo,
                               specials="fn")
        emin, emax = el.emin + self.scale_min, el.emax + self.scale_max + 1  # +1: room for NaN
        exp_bits = (emax - emin + 1).bit_length()
        top_field = (1 << exp_bits) - (1 if el.man_bits else 2)   # the largest finite field
        # near float64's limits the field range may reach below emin (any bias holds the values
        # as long as emax stays a float64 exponent): the bias is clamped so that it does
        return FloatFormat(exp_bits, el.man_bits, bias=max(1 - emin, top_field - 1023),
                           specials="fn")

    @property
    def scale_bits(self) -> int:
        """Bits of a scale code: enough for every exponent (and the NaN code, if any); a value
        scale's format width."""
        if self.scale_format is not None:
            return self.scale_format.bits
        n = self.scale_max - self.scale_min + 1 + int(self.nan_scale)
        return max(1, (n - 1).bit_length())

    @property
    def bits(self) -> int:
        """Bits of one element code."""
        return self.element.bits

    @property
    def spec(self) -> str:
        """Canonical description; the registered names are the way to look a block format up."""
        b = "tensor" if self.block is None else (
            f"{self.block[0]}x{self.block[1]}" if isinstance(self.block, tuple) else self.block)
        if self.scale_format is not None:
            return f"block({self.element.spec},{b},{self.scale_format.spec})"
        return f"block({self.element.spec},{b},{self.scale_min}..{self.scale_max}" + \
            (",nan)" if self.nan_scale else ")")

    def __str__(self):
        return self.name or self.spec


def _posint(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 1



# --- Block Minifloat (Fox et al. 2021) ---------------------------------------------------------
def bm_element(exp_bits: int, man_bits: int) -> FloatFormat:
    """A Block Minifloat element <e, m>: bias 2**(e-1), subnormals, no Inf/NaN, saturating (Fox et
    al. 2021, section 2.1, Eq. 1; <4,3> has max 240 and smallest subnormal 2**-10)."""
    return FloatFormat(exp_bits, man_bits, bias=1 << (exp_bits - 1), specials="none",
                       saturate=True)


def bm_format(exp_bits: int, man_bits: int, tile: int = 48) -> BlockFormat:
    """Block Minifloat: <e, m> elements in tile x tile blocks with an 8-bit shared exponent
    (Fox et al. 2021, sections 2.2 and 3.1: N = 48, "one 8-bit exponent bias every 2304
    minifloat numbers").  The shared exponent ``floor(log2 amax)`` is clamped to -128..127 as in
    the authors' code, so the scale exponent ranges over that minus ``emax_elem``."""
    el = bm_element(exp_bits, man_bits)
    emax = math.frexp(el.max)[1] - 1
    return BlockFormat(el, (tile, tile), -128 - emax, 127 - emax)


def bm_kulisch_width(fwd, bwd) -> int:
    """Kulisch accumulator width of a BM GEMM of <e_a,m_a> by <e_b,m_b> (Fox et al. 2021, section
    2.3, Eq. 4: kadd = 1 + (2**e_a + m_a + 1) + (2**e_b + m_b + 1); 31 bits for BM8's backward
    GEMM, Table 3)."""
    (ea, ma), (eb, mb) = fwd, bwd
    return 1 + (2 ** ea + ma + 1) + (2 ** eb + mb + 1)


