"""Shared-exponent block formats (Block Minifloat, OCP MX, Flexpoint) and the scale policies that
carry state or pick scales outside a format: Autoflex (Flexpoint) and GradScale (radix-4 FP4).

A :class:`BlockFormat` is a frozen record of facts: the element format, the block shape and the
range of the shared scale exponent.  Every block format here chooses its scale the same way -
from the block's largest magnitude, ``s = floor(log2(amax)) - emax_elem`` with ``emax_elem`` the
exponent of the element format's largest value, clamped to the scale's range - which is OCP MX
v1.0 section 6.3, the official Block Minifloat code (Fox et al. 2021, section 2.2) and Flexpoint's
choice for a tensor whose maximum is known (Koster et al. 2017, section 3.3).  :class:`Autoflex`
instead predicts the exponent of a stream of tensors from their recent maxima, and
:class:`GradScale` scales a gradient into radix-4 FP4 for two-phase rounding.

Quantizing, encoding and decoding are :func:`fpsim.quantize`, :func:`fpsim.encode` and
:func:`fpsim.decode` with ``axis=``; the kernel is :mod:`fpsim.kernels.block`.
"""

from __future__ import annotations

import collections
import math
import numbers
from dataclasses import dataclass, field

import numpy as np

from .formats import FixedFormat, FloatFormat, format as _format, register


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
        lsb = -el.frac_bits if isinstance(el, FixedFormat) else el.emin - el.man_bits
        top = math.frexp(el.max)[1]
        if lsb + self.scale_min < -1022 or top + self.scale_max > 1022:
            raise ValueError(f"element {el} scaled by 2**{self.scale_min} .. 2**{self.scale_max} "
                             "leaves float64's normal range, where the kernels are exact; narrow "
                             "the scale range")

    @property
    def emax_elem(self) -> int:
        """Exponent of the element format's largest value, ``floor(log2(element.max))``."""
        return math.frexp(self.element.max)[1] - 1

    @property
    def float_container(self) -> FloatFormat:
        """A :class:`FloatFormat` holding every value of every block (NaN included): the element's
        significand width over the element's exponent range widened by the scale range.  The GEMM
        kernels read block-format operands through it."""
        el = self.element if isinstance(self.element, FloatFormat) else \
            self.element.float_container
        emin, emax = el.emin + self.scale_min, el.emax + self.scale_max + 1  # +1: room for NaN
        exp_bits = (emax - emin + 1).bit_length()
        return FloatFormat(exp_bits, el.man_bits, bias=1 - emin, specials="fn")

    @property
    def scale_bits(self) -> int:
        """Bits of a scale code: enough for every exponent (and the NaN code, if any)."""
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
        return f"block({self.element.spec},{b},{self.scale_min}..{self.scale_max}" + \
            (",nan)" if self.nan_scale else ")")

    def __str__(self):
        return self.name or self.spec


def _posint(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 1


# --- OCP Microscaling (MX) v1.0 -------------------------------------------------------------------
_MX = ("OCP Microscaling Formats (MX) v1.0, section 5 Table 1 and section 6.3; 32 elements per "
       "block, E8M0 scale = the largest power of two <= amax over the largest power of two of the "
       "element type, elements clamped to the max normal")
for _name, _elem in (("mxfp8_e4m3", "float8_e4m3fn"), ("mxfp8_e5m2", "float8_e5m2"),
                     ("mxfp6_e3m2", "float6_e3m2fn"), ("mxfp6_e2m3", "float6_e2m3fn"),
                     ("mxfp4_e2m1", "float4_e2m1fn")):
    register(_name, BlockFormat(_format(_elem), 32, -127, 127, nan_scale=True),
             f"{_MX}; elements {_elem}")
register("mxint8", BlockFormat(FixedFormat(2, 6), 32, -127, 127, nan_scale=True),
         f"{_MX}; elements 8-bit two's complement with an implicit 2**-6 (-2 .. 1 63/64), "
         "as gfloat")

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


_BM = "Fox et al. 2021, 'Block Minifloat Representation for Training Deep Neural Networks'"
BM_PRESETS = {   # name: (forward <e,m>, backward <e,m>, table of the paper)
    "bm8": ((2, 5), (4, 3), "Table 3"), "bm6": ((2, 3), (3, 2), "Tables 1 and 3"),
    "bm5": ((2, 2), (3, 1), "Tables 1 and 3"), "bm4": ((2, 1), (3, 0), "Table 1")}
for _n, (_fw, _bw, _tab) in BM_PRESETS.items():
    register(f"{_n}_fwd", bm_format(*_fw),
             f"{_BM}, {_tab}: {_n.upper()} forward (weights, activations) <{_fw[0]},{_fw[1]}> "
             "elements, 48x48 blocks, 8-bit shared exponent")
    register(f"{_n}_bwd", bm_format(*_bw),
             f"{_BM}, {_tab}: {_n.upper()} backward (errors) <{_bw[0]},{_bw[1]}> elements, "
             "48x48 blocks, 8-bit shared exponent")


def bm_kulisch_width(fwd, bwd) -> int:
    """Kulisch accumulator width of a BM GEMM of <e_a,m_a> by <e_b,m_b> (Fox et al. 2021, section
    2.3, Eq. 4: kadd = 1 + (2**e_a + m_a + 1) + (2**e_b + m_b + 1); 31 bits for BM8's backward
    GEMM, Table 3)."""
    (ea, ma), (eb, mb) = fwd, bwd
    return 1 + (2 ** ea + ma + 1) + (2 ** eb + mb + 1)


# --- Flexpoint (Koster et al. 2017) -------------------------------------------------------------
FLEX_SCALE_RANGE = (-31, 0)
register("flex16+5", BlockFormat(FixedFormat(16, 0), None, *FLEX_SCALE_RANGE),
         "Koster et al. 2017, 'Flexpoint', section 3.1: int16 two's-complement mantissas with one "
         "5-bit exponent per tensor, scale 2**s. The paper gives no exponent range; fpsim takes "
         "s in -31..0 (the Nervana reference code clamps the scale to 2**-32..1)")


class Autoflex:
    """Autoflex (Koster et al. 2017, sections 3.3-3.5, Algorithm 2): the exponent of the next
    tensor of a stream, predicted from the maxima of the previous ones.

    State: a deque of the last ``history`` (l = 16) maxima ``Gamma * kappa`` (largest mantissa
    magnitude times the scale).  Prediction: ``chi = max(f) + num_std * std(f) + offset * kappa``
    (beta = 3, gamma = 100) and the next scale ``kappa = 2**(floor(log2 chi) - (N - 2))``, which
    puts chi in the top binade but one of the N-bit mantissa - the factor-2 headroom (alpha = 2) of
    Algorithm 2.  Overflow (a mantissa at the saturation limit): the history is cleared and the
    recorded maximum doubled, so the exponent rises by at least one bit (section 3.5).  The first
    tensor (and the first after a reset with no history) takes its exponent from its own maximum,
    which is where Algorithm 1's initialisation loop converges.

    Use one object per tensor of the network and carry it from step to step::

    >>> import numpy as np, fpsim
    >>> flex = fpsim.Autoflex()
    >>> for step in range(20):                     # a tensor growing 20% per step
    ...     q = flex.quantize(np.linspace(-1, 1, 9) * 1.2 ** step)
    >>> flex.exponent, flex.overflows, flex.steps   # the next tensor gets scale 2**-9
    (-9, 0, 20)
    """

    def __init__(self, fmt="flex16+5", history=16, num_std=3.0, offset=100.0, rounding="rne",
                 seed=0):
        f = _format(fmt)
        if not (isinstance(f, BlockFormat) and isinstance(f.element, FixedFormat)
                and f.element.frac_bits == 0 and f.block is None):
            raise ValueError(f"fmt must be a per-tensor block format with integer mantissas "
                             f"(e.g. 'flex16+5'), got {f}")
        if not _posint(history):
            raise ValueError(f"history must be a positive int, got {history!r}")
        for pname, v in (("num_std", num_std), ("offset", offset)):
            if not isinstance(v, numbers.Real) or v < 0:
                raise ValueError(f"{pname} must be a non-negative number, got {v!r}")
        self.fmt, self.rounding, self.seed = f, rounding, seed
        self.num_std, self.offset = float(num_std), float(offset)
        self.maxima = collections.deque(maxlen=history)
        self.exponent = None          # scale exponent s of the next tensor (None: not known yet)
        self.overflows = 0            # saturated tensors seen
        self.steps = 0

    @property
    def mantissa_bits(self) -> int:
        return self.fmt.element.bits

    def mantissa_format(self, exponent: int) -> FixedFormat:
        """The fixed-point format of mantissas with scale ``2**exponent``."""
        n = self.mantissa_bits
        return FixedFormat(n + exponent, -exponent, signed=self.fmt.element.signed)

    def quantize(self, x):
        """x in flexN+M with the predicted exponent; updates the statistics for the next call."""
        from . import ops
        x = np.asarray(x)
        if self.exponent is None:
            self.exponent = int(ops.block_exponents(x, self.fmt).reshape(()))
        s = self.exponent
        q = ops.quantize(x, self.mantissa_format(s), rounding=self.rounding,
                         seed=self.seed + self.steps)
        self.observe(q, s)
        return q

    def observe(self, q, exponent):
        """Record a tensor quantized with scale 2**exponent and predict the next exponent."""
        n = self.mantissa_bits
        finite = np.abs(q[np.isfinite(q)])
        gamma = float(finite.max()) * 2.0 ** -exponent if finite.size else 0.0   # in mantissa units
        self.steps += 1
        if gamma >= 2 ** (n - 1) - 1:                   # saturated: overflow
            self.overflows += 1
            self.maxima.clear()
            gamma *= 2
        self.maxima.append(gamma * 2.0 ** exponent)
        f = np.array(self.maxima)
        chi = f.max() + self.num_std * f.std() + self.offset * 2.0 ** exponent
        lo, hi = self.fmt.scale_min, self.fmt.scale_max
        self.exponent = int(min(max(math.frexp(chi)[1] - 1 - (n - 2), lo), hi))


# --- GradScale and two-phase rounding (Sun et al. 2020) -------------------------------------------
class GradScale:
    """Per-tensor gradient scaling into radix-4 FP4 with two-phase rounding (Sun et al. 2020,
    "Ultra-Low Precision 4-bit Training of Deep Neural Networks": GradScale and TPR).

    Each call takes one gradient tensor ``g`` and returns it quantized twice, onto the even-power
    grid (``fmt``, phase 0) and onto the odd-power grid (phase 1), both under one power-of-four
    scale ``2**exponent`` chosen from ``max|g|`` so that ``max/4 <= max|g| < max`` for the scaled
    phase-0 grid: nothing saturates and the largest magnitudes use its top values (a power of four
    keeps the two phases apart).  One copy feeds the
    weight-gradient GEMM and the other the data-gradient GEMM.  The paper's text was not available
    to us: this scale rule (per tensor, from the current maximum) is fpsim's reading of "per-layer
    gradient scaling"; check it against the paper before relying on the details.

    >>> import numpy as np, fpsim
    >>> gs = fpsim.GradScale()
    >>> even, odd = gs(np.array([3e-3, -1e-3]))
    >>> gs.exponent, np.log2(np.abs(even)), np.log2(np.abs(odd))   # grids 2**-8 (max), 2**-10 ...
    (-14, array([ -8., -10.]), array([ -9., -11.]))
    """

    def __init__(self, fmt="fp4_130", rounding="rne", seed=0):
        from .formats import Radix4Format
        f = _format(fmt)
        if not isinstance(f, Radix4Format) or f.phase != 0:
            raise ValueError(f"fmt must be a phase-0 radix-4 format (e.g. 'fp4_130'), got {f}")
        self.fmt, self.rounding, self.seed = f, rounding, seed
        self.exponent = None          # the scale exponent of the last tensor
        self.steps = 0

    def formats(self, exponent: int):
        """The two grids scaled by 2**exponent (an even exponent: a shift of the bias)."""
        from .formats import Radix4Format
        f = self.fmt
        return (Radix4Format(f.exp_bits, f.bias - exponent // 2, 0),
                Radix4Format(f.exp_bits, f.bias - exponent // 2, 1))

    def __call__(self, g):
        from . import ops
        g = np.asarray(g)
        finite = np.abs(g[np.isfinite(g)]) if g.size else g
        amax = float(finite.max()) if finite.size else 0.0
        top = math.frexp(self.fmt.max)[1] - 1
        s = 0 if amax == 0.0 else math.frexp(amax)[1] - top   # amax < 2**(top + s) = max
        s += s % 2                                    # up to a power of four: max/4 <= amax
        self.exponent = s
        even, odd = self.formats(s)
        seed = self.seed + 2 * self.steps
        self.steps += 1
        return (ops.quantize(g, even, rounding=self.rounding, seed=seed),
                ops.quantize(g, odd, rounding=self.rounding, seed=seed + 1))
