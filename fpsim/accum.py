"""Accumulator specs - what the adder of a multiply-accumulate datapath does with the products -
and their kernel plan (:func:`run`: which kernel of :mod:`fpsim.kernels.gemm`, with which
constants).

A spec is a frozen dataclass of facts, checked when it is made; :func:`fpsim.gemm` and the
convolutions take one as ``acc=``.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import math
import numbers
import warnings
from dataclasses import dataclass

import numpy as np

from ._args import check_arith_format, check_format, check_sr_bits, rounding_mode
from .formats import FixedFormat, FloatFormat, PositFormat
from .kernels import gemm as _gemm
from .kernels import kulisch as _kulisch
from .kernels import rounding as _k
from .quantize import fixed_args, float_args, lane_constants, posit_tables, quantize

ORDERS = ("sequential", "pairwise")
ACC_ROUNDINGS = ("rne", "rna", "rtz", "rup", "rdn", "rto", "sr")
KULISCH_ROUNDINGS = ("rne", "rna", "rtz", "rup", "rdn", "rto")
OVERFLOW_POLICIES = ("raise", "flag")


class AccumulatorOverflow(ArithmeticError):
    """A Kulisch accumulator of the given width could not hold an exact sum."""


def _as_any_format(fmt):
    """A format object, from a format, a name/spec string or a float dtype fpsim names."""
    try:
        return check_format(fmt, blocks=False)
    except ValueError as e:
        raise ValueError(f"fmt must be a FloatFormat, FixedFormat, PositFormat or a format "
                         f"name: {e}") from None


@dataclass(frozen=True)
class Accumulator:
    """A floating-point accumulator register, rounded into ``fmt`` after every addition.

    ``chunk=n`` sums each run of n products from zero in a chunk register and adds each chunk sum,
    in order, into a second register of the same format (chunk-based accumulation, Wang et al.
    2018, "Training deep neural networks with 8-bit floating point numbers", section 3).
    ``order="pairwise"`` reduces the products of a run (all K of them without ``chunk``) with an
    adder tree: level by level, pairs (2t, 2t+1) summed and rounded, an odd last element passed up.
    ``rounding`` is any mode of :func:`fpsim.quantize`; ``sr_bits`` as there (at most
    ``52 - fmt.man_bits``).  ``inner=`` (with ``chunk``): each chunk's sum comes from another
    accumulator or a matrix engine (:func:`fpsim.engine`), from zero, and is added in order into
    this register - DeepSeek-V3's promotion of tensor-core partial sums to FP32 every 128
    elements is ``Accumulator("float32", chunk=128, inner=fpsim.engine("hopper", ...))``.

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
    inner: object = None

    def __post_init__(self):
        self._check_inner()
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
            f = check_arith_format(f, "fmt")
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

    def _check_inner(self):
        if self.inner is None:
            return
        engine = hasattr(self.inner, "model") and hasattr(self.inner, "inputs")
        if not (engine or isinstance(self.inner, (Accumulator, KulischAccumulator))):
            raise ValueError(f"inner must be None, an Accumulator, a KulischAccumulator or a "
                             f"matrix engine (fpsim.engine(...)), got {self.inner!r}")
        if self.chunk is None:
            raise ValueError("inner= sums each chunk of K: give chunk= too (e.g. chunk=128)")
        if self.rounding == "sr" or self.order != "sequential":
            raise ValueError("with inner=, the outer register adds the chunk sums in order and "
                             "rounds deterministically (order='sequential', rounding not 'sr')")

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
            f = check_arith_format(f, "fmt")
            object.__setattr__(self, "fmt", f)
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


# --- the kernel plan -----------------------------------------------------------------------------
@functools.lru_cache(maxsize=64)
def lean_constants(acc_fmt: FloatFormat, wide: bool, bounded=False, signed=True):
    """Constants of kernels.rounding.lane_nearest (quantize.lane_constants) for float32 (wide
    False) or float64 lanes; with ``bounded``, of kernels.gemm.bounded_round (``signed``: with
    the sign step)."""
    if not bounded:
        return lane_constants(acc_fmt, wide)
    ity, frac = (np.int64, 52) if wide else (np.int32, 23)
    expmask = ((1 << ((63 if wide else 31) - frac)) - 1) << frac
    emin_field = ity((acc_fmt.emin + (1023 if wide else 127)) << frac)
    shift = ity(((frac - acc_fmt.man_bits) << frac) | (1 << (frac - 1)))   # the 1.5
    return (ity(expmask), emin_field, shift) + ((ity(np.iinfo(ity).min),) if signed else ())


def _product_lsb(fa_: FloatFormat, fb_: FloatFormat) -> int:
    """Exponent of the quantum every exact product of values of fa_ and fb_ is a multiple of."""
    return (fa_.emin - fa_.man_bits) + (fb_.emin - fb_.man_bits)


def _absmax(x):
    """max |x| (NaN if x has one; 0 for an empty x), without a temporary."""
    return max(float(np.max(x, initial=0.0)), -float(np.min(x, initial=0.0)))


def register_bound(a3, b3, fmt: FloatFormat, chunk, stochastic=False):
    """A bound on every register value, product and exact register + product sum of the
    sequential (chunked) accumulation of a3 @ b3 into ``fmt`` with nearest rounding, or None where
    that bound is not finite or exceeds fmt.max (then the register may overflow).

    With u = 2**-(man_bits + 1) (2**-man_bits for ``stochastic`` rounding, which may go up a
    whole quantum) and g the format's smallest quantum, a rounding gives |round(y)| <=
    (|y| + g)(1 + u) (relative error u in the normal range, at most g below it); so each register
    of a run of n products of row i stays below (S_i + n g)(1 + u)**n, and the total of the chunk
    sums below (S_i + steps g)(1 + u)**steps, steps = K + chunks, where
    S_i = sum_k |A[i,k]| max_j |B[k,j]| bounds the sum of the magnitudes of row i's products
    (maxima over batches too; kernels.gemm.row_magnitudes).  S_i is evaluated in float64
    (nonnegative terms: relative error below (K + 1) 2**-53) and the power as
    exp(steps log1p(u)) (relative error below (steps + 2) 2**-52, as steps log1p(u) <= steps);
    the factor 1 + (4 steps + 16) 2**-52 covers both.  A power beyond float64's range means no
    bound."""
    kk = a3.shape[2]
    if a3.size == 0 or b3.size == 0:
        return 0.0
    s = float(_gemm.row_magnitudes(a3, b3))      # Python floats: Inf and NaN without warnings
    steps = kk + (-(-kk // chunk) if chunk else 0)
    u = 2.0 ** -(fmt.man_bits + (0 if stochastic else 1))
    try:
        growth = math.exp(steps * math.log1p(u))
    except OverflowError:
        return None
    g = 2.0 ** (fmt.emin - fmt.man_bits)
    bound = (s + steps * g) * growth * (1 + (4 * steps + 16) * 2.0 ** -52)
    if not bound <= fmt.max:                              # also NaN
        return None
    return max(bound, fmt.min_normal)


def lean_lanes(acc: Accumulator, fa_: FloatFormat, fb_: FloatFormat, product, bound=None):
    """Lane width of the exact round-to-nearest-even fast path, or None (kernels.gemm.lean_lanes
    holds the condition and its proof; ``bound`` from :func:`register_bound`)."""
    f = acc.fmt
    return _gemm.lean_lanes((f.man_bits, f.emin, f.emax), (fa_.man_bits, fa_.emin, fa_.emax),
                            (fb_.man_bits, fb_.emin, fb_.emax), acc.rounding == "rne",
                            product is None, f.subnormals, f.specials in ("ieee", "fn"), bound,
                            tree=acc.order == "pairwise")


def native_lanes(acc: Accumulator, fa_: FloatFormat, fb_: FloatFormat, product):
    """32 where the register is float32 lanes' own IEEE arithmetic, or None
    (kernels.gemm.native_lanes holds the condition)."""
    f = acc.fmt
    return _gemm.native_lanes((f.man_bits, f.emin, f.emax), (fa_.man_bits, fa_.emin, fa_.emax),
                              (fb_.man_bits, fb_.emin, fb_.emax), acc.rounding == "rne",
                              product is None,
                              f.subnormals and f.specials == "ieee" and not f.saturate)


def check_products(fa_: FloatFormat, fb_: FloatFormat):
    if not _gemm.supports_products((fa_.man_bits, fa_.emin, fa_.emax),
                                   (fb_.man_bits, fb_.emin, fb_.emax)):
        raise ValueError(f"products of {fa_} and {fb_} are not exact in float64; the operand "
                         "formats need at most 53 significant bits together (float32 x float32 "
                         "and every narrower pair qualify)")


def product_args(fp_, mode="rne"):
    """Kernel arguments of the product format (None: exact products) and its rounding."""
    if fp_ is None:
        return (False, 0, 0, 0.0, 0.0, 0, False, False, 0)
    return (True,) + float_args(fp_) + (_k.MODE[mode],)


def run(a3, b3, batch, acc, fa_, fb_, fp_, key, product_rounding="rne", device="cpu",
        place=None):
    """C (batch, m, n) of a3 @ b3 through accumulator ``acc`` (operand formats fa_, fb_; product
    format fp_ or None): picks the kernel and its constants; ``device="cuda"``: the GPU kernel of
    kernels/cuda (every accumulator).  ``place``: where this C lies in a whole GEMM's C, which
    keys a float or fixed-point register's stochastic words (kernels.gemm.element; None: C is
    the whole)."""
    m, n = a3.shape[1], b3.shape[2]
    place = (0, n, m * n) if place is None else place
    fp = product_args(fp_, product_rounding)
    if isinstance(getattr(acc, "fmt", None), (FixedFormat, PositFormat)) and fp_ is not None:
        raise ValueError(f"a {type(acc.fmt).__name__} accumulator adds exact products; product= "
                         "is for float accumulators")
    if device == "cuda":
        from .kernels import cuda as _kcuda
        if isinstance(acc, KulischAccumulator):
            return _kulisch_run(a3, b3, batch, acc, fa_, fb_, fp_, fp, device)
        mode, r_bits = rounding_mode(acc.rounding, acc.sr_bits, acc.fmt)
        if isinstance(acc.fmt, PositFormat):
            c = np.empty((batch, m, n))
            _kcuda.gemm_posit(a3, b3, c, float_args(QUIRE_STAGE), *posit_tables(acc.fmt),
                              acc.fmt.n, acc.fmt.es)
            return c
        if isinstance(acc.fmt, FixedFormat):
            frac, k_lo, k_hi, _ = fixed_args(acc.fmt)
            c = np.empty((batch, m, n))
            _kcuda.gemm_fixed(a3, b3, c, frac, k_lo, k_hi, mode, r_bits, key)
            return c
        c = np.empty((batch, m, n))
        _kcuda.gemm(a3, b3, c, acc.chunk or 0, acc.order == "pairwise",
                    float_args(acc.fmt) + (mode, r_bits), fp, key)
        return c
    if isinstance(acc, KulischAccumulator):
        return _kulisch_run(a3, b3, batch, acc, fa_, fb_, fp_, fp)
    mode, r_bits = rounding_mode(acc.rounding, acc.sr_bits, acc.fmt)
    if isinstance(acc.fmt, PositFormat):
        c = np.empty((batch, m, n))
        _gemm.gemm_posit(np.ascontiguousarray(a3), np.ascontiguousarray(b3), c,
                         float_args(QUIRE_STAGE), *posit_tables(acc.fmt), acc.fmt.n,
                         acc.fmt.es)
        return c
    if isinstance(acc.fmt, FixedFormat):
        frac, k_lo, k_hi, _ = fixed_args(acc.fmt)
        if _gemm.fixed_lanes(acc.fmt.bits, frac, _product_lsb(fa_, fb_), acc.rounding == "rne",
                             fp_ is None) \
                and np.isfinite(_absmax(a3)) and np.isfinite(_absmax(b3)):
            big = 2.0 ** (acc.fmt.bits - frac)
            lanes = _gemm.FixedLane(k_lo * 2.0 ** -frac, k_hi * 2.0 ** -frac, big,
                                    1.5 * 2.0 ** (52 - frac))
            return _lean_blocks(a3, b3, batch, None, np.float64, lanes)
        c = np.empty((batch, m, n))
        _gemm.gemm_fixed(np.ascontiguousarray(a3), np.ascontiguousarray(b3), c, frac, k_lo, k_hi,
                         mode, r_bits, key, place)
        return c
    fa = float_args(acc.fmt) + (mode, r_bits)
    pairwise = acc.order == "pairwise"
    f = acc.fmt                     # a float format from here on
    if not pairwise and mode == _k.MODE["sr"] and fp_ is None:
        bound = register_bound(a3, b3, f, acc.chunk, stochastic=True)
        if _gemm.sr_lanes((f.man_bits, f.emin, f.emax), _product_lsb(fa_, fb_), fp_ is None,
                          f.subnormals and f.specials in ("ieee", "fn"), bound):
            return _lean_blocks(a3, b3, batch, acc.chunk, np.float64, None, fmt=f, key=key,
                                place=place)
    if not pairwise and native_lanes(acc, fa_, fb_, fp_) is not None:
        return _lean_blocks(a3, b3, batch, acc.chunk, np.float32, ())
    # without the overflow test where the data cannot overflow (bound not None)
    bound = register_bound(a3, b3, f, acc.chunk) if mode == _k.MODE["rne"] and fp_ is None \
        else None
    lanes = lean_lanes(acc, fa_, fb_, fp_, bound)
    if lanes is not None and bound is not None:
        on_grid = _product_lsb(fa_, fb_) >= f.emin - f.man_bits
        # the sign step: an adder tree adds -0 products into -0 nodes; fnuz has no -0
        signed = (pairwise or not on_grid) and f.has_negative_zero
        return _lean_blocks(a3, b3, batch, acc.chunk, np.float32 if lanes == 32 else
                            np.float64, lean_constants(f, lanes == 64, True, signed), acc.order)
    else:
        lanes = lean_lanes(acc, fa_, fb_, fp_)
        if lanes is not None:
            return _lean_blocks(a3, b3, batch, acc.chunk, np.float32 if lanes == 32 else
                                np.float64, lean_constants(f, lanes == 64), acc.order)
        if not pairwise and _gemm.odd_lanes(
                (f.man_bits, f.emin, f.emax), mode == _k.MODE["rne"], fp_ is None, f.subnormals,
                f.specials in ("ieee", "fn")):
            return _lean_blocks(a3, b3, batch, acc.chunk, np.float64,
                                _gemm.OddLane(*lane_constants(f, True)))
        kind = _gemm.SCALAR if mode == _k.MODE["sr"] else _gemm.EXACT
    c = np.empty((batch, m, n))
    _gemm.gemm_float(np.ascontiguousarray(a3, dtype=np.float64),
                     np.ascontiguousarray(b3, dtype=np.float64), c, _gemm.KIND_TAG[kind],
                     acc.chunk or 0, pairwise, fa, fp, key, place)
    return c


def _lean_blocks(a3, b3, batch, chunk, dtype, lc, order="sequential", fmt=None, key=None,
                 place=None):
    """The LEAN kernels in ``dtype`` lanes (``lc``: lean_constants, () for a native register,
    None with ``fmt``, ``key`` and ``place`` for exact stochastic rounding; ``order``:
    sequential sums or adder trees), in whole blocks of 4 rows: A is padded with zero rows, whose
    results are dropped (gemm_float, for every other case, is compiled for float64 arrays only)."""
    m, n = a3.shape[1], b3.shape[2]
    m4 = -(-m // _gemm.ROWS) * _gemm.ROWS
    a = np.zeros((a3.shape[0], m4, a3.shape[2]), dtype=dtype)
    a[:, :m] = a3
    c = np.empty((batch, m4, n), dtype=dtype)
    b = np.ascontiguousarray(b3, dtype=dtype)
    if lc is None:
        _gemm.gemm_sr_blocks(a, b, c, chunk or 0, fmt.man_bits, fmt.emin, np.uint64(key),
                             place)
    else:
        _gemm.gemm_lean_blocks(a, b, c, chunk or 0, lc, _gemm.ORDER_TAG[order])
    return c[:, :m]


QUIRE_STAGE = FloatFormat(10, 50)   # the exact sum, rounded to odd, on its way to posit or fixed


def _quantum_span(x, f: FloatFormat):
    """(q, e): every nonzero finite value of x (values of f) is a multiple of 2**q, and
    e = floor(log2 max|x|).  A value v of f is a multiple of 2**(floor(log2|v|) - man_bits) (or
    of f's subnormal quantum), so products of two such arrays are multiples of 2**(qa + qb) and
    below 2**(ea + eb + 2): the exact sum needs only those digits."""
    lo, hi = _gemm.finite_span(x)
    if hi == 0.0:
        return f.emin - f.man_bits, f.emin
    _, lo = np.frexp(lo)                      # frexp's exponent is floor(log2|v|) + 1
    _, hi = np.frexp(hi)
    return max(int(lo) - 1 - f.man_bits, f.emin - f.man_bits), int(hi) - 1


# The overflow counts of W-bit Kulisch GEMMs run in parts (fpsim.gemm.gemm_panels): where a list
# is set, _kulisch_run appends (count, lsb, emax, K) of each part there instead of reporting, and
# marks the outputs NaN; the caller reports the whole GEMM's count once.  A context variable: each
# thread has its own.
_OVERFLOWS = contextvars.ContextVar("kulisch_overflows", default=None)


@contextlib.contextmanager
def kulisch_overflows():
    """Collect, in the list it yields, the overflow counts of the Kulisch GEMMs run inside
    (each marks its overflowing outputs NaN and neither raises nor warns)."""
    pending = []
    token = _OVERFLOWS.set(pending)
    try:
        yield pending
    finally:
        _OVERFLOWS.reset(token)


def report_collected_overflows(acc, pending, stacklevel):
    """:func:`report_kulisch_overflow` once for the (count, lsb, emax, K) entries that
    :func:`kulisch_overflows` collected for the parts of one GEMM (the same register: only the
    count varies); nothing where there are none."""
    if pending:
        count = int(np.sum([p[0] for p in pending]))
        report_kulisch_overflow(acc, count, *pending[0][1:], stacklevel=stacklevel + 1)


def report_kulisch_overflow(acc, count, lsb, emax, kk, stacklevel):
    """AccumulatorOverflow (``acc.overflow == "raise"``) or a RuntimeWarning (``"flag"``) for
    ``count`` outputs over ``acc.width`` bits; ``stacklevel`` as warnings.warn's, counted from
    the caller."""
    msg = (f"{count} output(s) overflow a {acc.width}-bit Kulisch accumulator (LSB 2**{lsb}); "
           f"a width of {emax - lsb + 1 + int(np.ceil(np.log2(kk + 1)))} bits holds any sum "
           f"of {kk} products")
    if acc.overflow == "raise":
        raise AccumulatorOverflow(msg)
    warnings.warn(msg + "; those outputs are NaN", RuntimeWarning, stacklevel=stacklevel + 1)


def _kulisch_run(a3, b3, batch, acc, fa_, fb_, fp_, fp, device="cpu"):
    m, kk, n = a3.shape[1], a3.shape[2], b3.shape[2]
    if fp_ is None and a3.size and b3.size and device == "cpu":
        # Where float64 holds every partial sum exactly, the exact sum is float64's own FMA
        # chain: every product is a multiple of 2**(qa + qb) (the data's quanta) and every partial
        # sum of row i lies below S_i = sum_k |A[i,k]| max_j |B[k,j]| (kernels.gemm.
        # row_magnitudes, within (K + 4) 2**-52 of its float64 evaluation); below 2**(53 + qa +
        # qb) each is a float64, so no FMA rounds.  No register of ``width`` bits overflows when
        # S stays below 2**(width - 1 + lsb).  Then one rounding, as the digits' path does.
        (qa, _), (qb, _) = _quantum_span(a3, fa_), _quantum_span(b3, fb_)
        bound = _gemm.row_magnitudes(a3, b3) * (1 + (kk + 4) * 2.0 ** -52)
        lsb = _product_lsb(fa_, fb_)
        # a W-bit register holds every multiple of 2**lsb (L >= lsb) below 2**(W - 1 + lsb)
        top = np.inf if acc.width is None or acc.width - 1 + lsb > 1023 else \
            math.ldexp(1.0, acc.width - 1 + lsb)
        if qa + qb >= -1074 and bound < 2.0 ** min(53 + qa + qb, 1023) and bound < top:
            c = _lean_blocks(a3, b3, batch, None, np.float64, ())
            return quantize(c, acc.fmt, rounding=acc.rounding)
    if fp_ is None:
        lsb = _product_lsb(fa_, fb_)
        emax = fa_.emax + fb_.emax + 2          # every |product| < 2**emax
        if acc.width is None:                   # no register to model: digits the data needs
            (qa, ea), (qb, eb) = _quantum_span(a3, fa_), _quantum_span(b3, fb_)
            lsb, emax = max(lsb, qa + qb), min(emax, ea + eb + 2)
    else:
        lsb = fp_.emin - fp_.man_bits
        emax = fp_.emax + 1
    emax = max(emax, lsb + 1)
    dbits = min(51, 52 - int(np.ceil(np.log2(kk + 1))))
    ndigits = max(1, -(-(emax - lsb + 1) // dbits))
    staged = not isinstance(acc.fmt, FloatFormat)   # posit quire, fixed point: round to odd first
    if staged:   # ... onto 51 bits, which keeps every decision of the final rounding (accum.py)
        mode, r_bits = _k.MODE["rto"], 0
        fa = float_args(QUIRE_STAGE) + (mode, r_bits)
    else:
        mode, r_bits = rounding_mode(acc.rounding, None, acc.fmt)
        fa = float_args(acc.fmt) + (mode, r_bits)
    c = np.empty((batch, m, n))
    flags = np.zeros((batch, m, n), dtype=np.bool_)
    if device == "cuda":     # the digits' path only: the float64 one above gives the same
        from .kernels import cuda as _kcuda
        _kcuda.gemm_kulisch(a3, b3, c, flags, fp, lsb, dbits, ndigits, acc.width or 0, fa)
    else:
        _kulisch.gemm_kulisch(np.ascontiguousarray(a3), np.ascontiguousarray(b3), c, flags, fp,
                              lsb, dbits, ndigits, acc.width or 0, fa)
    if flags.any():
        count, pending = int(flags.sum()), _OVERFLOWS.get()
        if pending is None:
            report_kulisch_overflow(acc, count, lsb, emax, kk, stacklevel=3)
        else:
            pending.append((count, lsb, emax, kk))
        c[flags] = np.nan
    return quantize(c, acc.fmt, rounding=acc.rounding, device=device) if staged else c
