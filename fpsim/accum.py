"""Accumulator specs: what the adder of a multiply-accumulate datapath does with the products.

A spec is a frozen dataclass of facts, checked when it is made; :func:`fpsim.gemm` and the
convolutions take one as ``acc=``.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

from ._args import check_sr_bits
from .formats import FixedFormat, FloatFormat, PositFormat, format as _format

ORDERS = ("sequential", "pairwise")
ACC_ROUNDINGS = ("rne", "rna", "rtz", "rup", "rdn", "rto", "sr")
KULISCH_ROUNDINGS = ("rne", "rna", "rtz", "rup", "rdn", "rto")
OVERFLOW_POLICIES = ("raise", "flag")


class AccumulatorOverflow(ArithmeticError):
    """A Kulisch accumulator of the given width could not hold an exact sum."""


def _as_format(fmt, what) -> FloatFormat:
    if isinstance(fmt, FloatFormat):
        return fmt
    if isinstance(fmt, str):
        return _format(fmt)
    raise ValueError(f"{what} must be a FloatFormat or a format name, got {fmt!r}")


def _as_any_format(fmt):
    """A format object, from a format, a name/spec string or a float dtype fpsim names."""
    if isinstance(fmt, (FloatFormat, FixedFormat, PositFormat)):
        return fmt
    try:
        return _format(fmt)
    except ValueError:
        raise ValueError(f"fmt must be a FloatFormat, FixedFormat, PositFormat or a format "
                         f"name, got {fmt!r}") from None


def _arith_ok(f: FloatFormat) -> bool:
    return f.man_bits <= 50 and f.emin - f.man_bits >= -1022


@dataclass(frozen=True)
class Accumulator:
    """A floating-point accumulator register, rounded into ``fmt`` after every addition.

    ``chunk=n`` sums each run of n products from zero in a chunk register and adds each chunk sum,
    in order, into a second register of the same format (chunk-based accumulation, Wang et al.
    2018, "Training deep neural networks with 8-bit floating point numbers", section 3).
    ``order="pairwise"`` reduces the products of a run (all K of them without ``chunk``) with an
    adder tree: level by level, pairs (2t, 2t+1) summed and rounded, an odd last element passed up.
    ``rounding`` is any mode of :func:`fpsim.quantize`; ``sr_bits`` as there (at most
    ``52 - fmt.man_bits``).

    With a (signed, saturating, <= 50-bit) :class:`fpsim.FixedFormat`, the register is a fixed-point
    accumulator: each exact ``register + product`` is rounded onto the grid ``2**-frac_bits`` in
    the given mode and then saturated, sequentially (Gupta et al. 2015's fixed-point datapath with
    a narrow register; use :class:`KulischAccumulator` for their wide multiply-accumulate).
    With a :class:`fpsim.PositFormat`, each exact ``register + product`` is rounded to the nearest
    posit: posit addition without a quire (``KulischAccumulator(posit)`` is the quire).

    >>> import fpsim
    >>> acc = fpsim.Accumulator("fp16_169", chunk=64)
    >>> acc.fmt.spec, acc.chunk, acc.rounding, acc.order
    ('e6m9', 64, 'rne', 'sequential')
    """

    fmt: FloatFormat
    chunk: int | None = None
    rounding: str = "rne"
    order: str = "sequential"
    sr_bits: int | None = None

    def __post_init__(self):
        f = _as_any_format(self.fmt)
        object.__setattr__(self, "fmt", f)
        if isinstance(f, FixedFormat):      # a saturating fixed-point register
            if f.bits > 50 or not f.saturate or not f.signed:
                raise ValueError(f"a fixed-point accumulator must be signed, saturate and have "
                                 f"at most 50 bits, got {f}")
            if self.chunk is not None or self.order != "sequential" or self.sr_bits is not None:
                raise ValueError("a fixed-point accumulator adds sequentially: chunk, "
                                 "order='pairwise' and sr_bits are for float accumulators")
            f = None
        elif isinstance(f, PositFormat):    # a posit register without a quire
            if self.chunk is not None or self.order != "sequential" or self.rounding != "rne":
                raise ValueError("a posit accumulator adds sequentially and rounds to nearest "
                                 "(Posit Standard 2022, section 4): chunk, order='pairwise' and "
                                 "other roundings are for float accumulators")
            f = None
        else:
            f = _as_format(f, "fmt")
        if f is not None and not _arith_ok(f):
            raise ValueError(f"accumulator format {f} is not supported: it needs man_bits <= 50 "
                             "and emin - man_bits >= -1022 (float32 and narrower qualify)")
        if self.chunk is not None and (isinstance(self.chunk, bool)
                                       or not isinstance(self.chunk, numbers.Integral)
                                       or self.chunk < 1):
            raise ValueError(f"chunk must be None or an int >= 1, got {self.chunk!r}")
        if self.chunk is not None:
            object.__setattr__(self, "chunk", int(self.chunk))
        if self.rounding not in ACC_ROUNDINGS:
            raise ValueError(f"rounding must be one of {ACC_ROUNDINGS}, got {self.rounding!r}")
        if self.order not in ORDERS:
            raise ValueError(f"order must be one of {ORDERS}, got {self.order!r}")
        if self.sr_bits is not None:
            object.__setattr__(self, "sr_bits", check_sr_bits(self.sr_bits, self.rounding,
                                                              f.man_bits, f" for {f}"))

    @property
    def out_format(self):
        return self.fmt


@dataclass(frozen=True)
class KulischAccumulator:
    """An exact fixed-point accumulator with one rounding at the end into ``fmt`` (Kulisch).

    The LSB is the smallest quantum a product can have (from the operand or ``product`` formats;
    with ``width=None`` the kernel keeps only the digits the operands present can reach, which
    changes no result: the sum is exact either way).
    ``width=None`` sizes the register so that no sum overflows; ``width=W`` models a W-bit two's
    complement register: it adds modulo 2**W, so its result is wrong exactly when the final exact
    sum lies outside [-2**(W-1), 2**(W-1) - 1] LSBs, and that is what is checked.  ``overflow``:
    "raise" raises :class:`AccumulatorOverflow`; "flag" returns NaN in those outputs and warns.
    ``rounding``: the final rounding, a deterministic mode.

    With a posit ``fmt`` this is the quire (Posit Standard 2022, section 3.4: 16n bits hold exact
    sums of products; Deep Positron's exact multiply-accumulate): the exact sum is rounded once to
    the nearest posit.  With a (saturating, <= 50-bit) :class:`FixedFormat` it is the
    multiply-accumulate of Gupta et al. 2015: the exact sum converted once into <IL, FL>.
    Internally both first round the exact sum to odd onto 51 significant bits, which keeps every
    decision of the final rounding (the final grid is at least 2 bits coarser there, and a
    round-to-odd result is exact, or strictly between the same two grid points and midpoints).

    >>> import fpsim
    >>> fpsim.KulischAccumulator("float32", width=80).width
    80
    """

    fmt: FloatFormat
    width: int | None = None
    rounding: str = "rne"
    overflow: str = "raise"

    def __post_init__(self):
        f = _as_any_format(self.fmt)
        if isinstance(f, PositFormat):      # the quire
            object.__setattr__(self, "fmt", f)
            if self.rounding != "rne":
                raise ValueError(f"a quire rounds into posit format {f} to nearest-even (Posit "
                                 f"Standard 2022, section 4); rounding must be 'rne', got "
                                 f"{self.rounding!r}")
            f = None
        elif isinstance(f, FixedFormat):    # Gupta et al. 2015's MACC: exact sum, one conversion
            object.__setattr__(self, "fmt", f)
            if f.bits > 50 or not f.saturate:
                raise ValueError(f"fixed-point fmt must saturate and have at most 50 bits for a "
                                 f"Kulisch accumulator, got {f}")
            f = None
        else:
            f = _as_format(self.fmt, "fmt")
            object.__setattr__(self, "fmt", f)
        if f is not None and not _arith_ok(f):
            raise ValueError(f"output format {f} is not supported: it needs man_bits <= 50 "
                             "and emin - man_bits >= -1022 (float32 and narrower qualify)")
        if self.width is not None and (isinstance(self.width, bool)
                                       or not isinstance(self.width, numbers.Integral)
                                       or not 2 <= self.width <= 4096):
            raise ValueError(f"width must be None or an int in 2..4096, got {self.width!r}")
        if self.rounding not in KULISCH_ROUNDINGS:
            raise ValueError(f"rounding must be one of {KULISCH_ROUNDINGS}, "
                             f"got {self.rounding!r}")
        if self.overflow not in OVERFLOW_POLICIES:
            raise ValueError(f"overflow must be one of {OVERFLOW_POLICIES}, "
                             f"got {self.overflow!r}")

    @property
    def out_format(self) -> FloatFormat:
        return self.fmt
