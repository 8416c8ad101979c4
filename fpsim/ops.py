"""Public functions: check arguments, pick the kernel, return new arrays.

Nothing below this module checks arguments; nothing above the kernels loops over elements.
"""

from __future__ import annotations

import functools
import numbers
import threading
import warnings

import ml_dtypes
import numpy as np

from ._args import ROUNDINGS, check_rounding
from .accum import Accumulator, AccumulatorOverflow, KulischAccumulator
from .blocks import BlockFormat
from .formats import (SPECIALS_CODE, ExponentFormat, FixedFormat, FloatFormat, PositFormat,
                      Radix4Format, code_dtype, format as _format, registered_formats)
from .kernels import arith as _arith
from .kernels import block as _kblock
from .kernels import exponent as _kexp
from .kernels import conv as _conv
from .kernels import fixed as _kfixed
from .kernels import gemm as _gemm
from .kernels import posit as _kposit
from .kernels import radix4 as _kradix4
from .kernels import rounding as _k


# ml_dtypes float types fpsim knows, by dtype -> FloatFormat of the same name
_ML_FORMATS = {np.dtype(getattr(ml_dtypes, n)): f for n, f in registered_formats().items()
               if hasattr(ml_dtypes, n)}
_NUMPY_FORMATS = {np.dtype(np.float16): registered_formats()["float16"],
                  np.dtype(np.float32): registered_formats()["float32"],
                  np.dtype(np.float64): registered_formats()["float64"]}


# --- argument checks ----------------------------------------------------------------------------
ELEMENT_FORMATS = (FloatFormat, FixedFormat, PositFormat, Radix4Format, ExponentFormat)


def _check_format(fmt, blocks=True):
    f = fmt if isinstance(fmt, ELEMENT_FORMATS + (BlockFormat,)) else _format(fmt)
    if isinstance(f, ELEMENT_FORMATS) or (blocks and isinstance(f, BlockFormat)):
        return f
    if isinstance(f, BlockFormat):
        raise ValueError(f"block format {f} is not allowed here; quantize operands with it first "
                         "and pass its element format")
    raise ValueError("fmt must be a FloatFormat, FixedFormat, PositFormat, Radix4Format, "
                     f"ExponentFormat, BlockFormat or a format name/spec string, got {fmt!r}")


def _holder(f) -> FloatFormat:
    """The FloatFormat that holds every value of format f (f itself for float formats)."""
    return f.float_container


def _check_rounding(rounding, sr_bits, f):
    """(mode code, random bits) of a rounding into format f (sr_bits: _args.check_sr_bits)."""
    r_bits = check_rounding(rounding, sr_bits, f)
    return (_k.MODE["sr_bits"], r_bits) if r_bits else (_k.MODE[rounding], 0)


_STREAM = {"seed": 0, "calls": 0}     # the process-wide stream of keys for calls without seed=
_STREAM_LOCK = threading.Lock()


def seed(s=0):
    """Restart the stream of random keys that stochastic calls without ``seed=`` draw from.

    Each call of :func:`quantize`, :func:`encode`, the arithmetic units, :func:`gemm` or the
    convolutions that rounds stochastically and is given no ``seed`` takes the next key of this
    stream, so a loop gets fresh random words at every step; a program that calls
    ``fpsim.seed(s)`` first (the stream starts as ``fpsim.seed(0)``) draws the same keys in the
    same order every run.  Deterministic calls do not advance the stream.

    >>> import numpy as np, fpsim
    >>> x = np.full(4, 1 + 2.0**-4)
    >>> fpsim.seed(1); a = fpsim.quantize(x, "e5m2", rounding="sr")
    >>> b = fpsim.quantize(x, "e5m2", rounding="sr")     # the next key: other words
    >>> fpsim.seed(1); np.array_equal(a, fpsim.quantize(x, "e5m2", rounding="sr"))
    True
    """
    if isinstance(s, bool) or not isinstance(s, numbers.Integral) or not 0 <= s < 2**64:
        raise ValueError(f"seed must be an int in 0..2**64-1, got {s!r}")
    with _STREAM_LOCK:
        _STREAM["seed"], _STREAM["calls"] = int(s), 0


def _check_seed(seed, stochastic=True) -> np.uint64:
    """The stream key of a call: from ``seed``, or (None) the next key of the process stream."""
    if seed is None:
        if not stochastic:
            return np.uint64(0)
        with _STREAM_LOCK:
            base, n = _STREAM["seed"], _STREAM["calls"]
            _STREAM["calls"] += 1
        # key n of stream `base`: a key no explicit seed's key is related to by construction
        stream = int(_k.mix64(np.uint64(base ^ 0xA0761D6478BD642F)))
        return np.uint64(_k.seed_key(np.uint64((stream + n * int(_k.GOLDEN2)) % 2**64)))
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed < 2**64:
        raise ValueError(f"seed must be None or an int in 0..2**64-1, got {seed!r}")
    return np.uint64(_k.seed_key(np.uint64(seed)))  # numba hands uint64 back as a Python int


def _values_array(x):
    """x as a native-endian C-contiguous float32/float64 array, plus its natural output dtype."""
    x = np.asarray(x)
    xa, natural = _widened(x)
    return xa.reshape(x.shape), natural  # ascontiguousarray makes 0-d arrays 1-d


def _widened(x):
    dt = x.dtype
    if dt in _ML_FORMATS:
        return np.ascontiguousarray(x, dtype=np.float32), dt  # widening is exact
    if dt.kind == "f":
        native = dt.newbyteorder("=")
        if native == np.float16:
            return np.ascontiguousarray(x, dtype=np.float32), np.dtype(np.float16)
        if native in (np.float32, np.float64):
            return np.ascontiguousarray(x, dtype=native), native
        raise ValueError(f"x has dtype {dt}; supported: float16, float32, float64, "
                         "ml_dtypes float types, integers and bool")
    if dt.kind in "iub":
        if dt.kind in "iu" and dt.itemsize == 8 and x.size:
            bad = ~_float64_holds(x)
            if bad.any():
                first = x.reshape(-1)[np.flatnonzero(bad.reshape(-1))[0]]
                raise ValueError(f"x has {int(bad.sum())} 64-bit integers that float64 cannot "
                                 f"hold exactly (first: {int(first)}); convert them yourself first")
        return np.ascontiguousarray(x, dtype=np.float64), np.dtype(np.float64)
    raise ValueError(f"x has dtype {dt}; supported: float16, float32, float64, ml_dtypes float "
                     "types, integers and bool")


def _positive_nans(out):
    """NaN rule for computed results (arithmetic, accumulators): every NaN is +NaN of zero
    payload, whatever sign and payload the float arithmetic underneath produced (x86 gives
    -NaN for Inf - Inf).  quantize and encode instead keep the input NaN's sign, as ml_dtypes."""
    nan = np.isnan(out)
    if nan.any():
        out[nan] = np.nan
    return out


def _work_array(xa, out_dtype):
    """The array the kernels write into: float64 when the output is, so that a rounded value
    beyond float32's range is not cut to Inf before it reaches a float64 result."""
    return xa.astype(np.float64) if out_dtype == np.float64 and xa.dtype != np.float64 else xa


def _float64_holds(x):
    """Which 64-bit integers of x are float64 values: |x| stripped of its trailing zero bits
    has at most 53 bits.  Computed in integers (a float64 round trip would round first)."""
    mag = x.astype(np.uint64)
    mag = np.where(x < 0, np.uint64(0) - mag, mag) if x.dtype.kind == "i" else mag
    low = mag & (np.uint64(0) - mag)                 # lowest set bit (0 for 0)
    return (mag >> np.uint64(53)) < np.maximum(low, np.uint64(1))


def _check_out_dtype(dtype, natural, fmt, explicit: bool) -> np.dtype:
    if dtype is None:
        out = natural
    else:
        try:
            out = np.dtype(dtype)
        except TypeError:
            raise ValueError(f"dtype must be a float dtype, got {dtype!r}") from None
        out = out.newbyteorder("=") if out.kind == "f" else out
    if out in _ML_FORMATS:
        holder = _ML_FORMATS[out]
    elif out in _NUMPY_FORMATS:
        holder = _NUMPY_FORMATS[out]
        if not explicit:
            return out
    else:
        raise ValueError(f"dtype must be float16, float32, float64 or an ml_dtypes float type, "
                         f"got {out}")
    if not isinstance(holder, FloatFormat):      # float8_e8m0fnu holds only its own values
        if holder != fmt:
            raise ValueError(f"dtype {out} holds only format {holder}; pass dtype=np.float32 "
                             "or np.float64")
        return out
    if not holder.contains(_holder(fmt)):
        raise ValueError(f"dtype {out} cannot hold every value of format {fmt}; "
                         "pass dtype=np.float32 or np.float64")
    return out


def _check_random(random_words, n):
    if random_words is None:
        return np.empty(0, dtype=np.uint64)
    r = np.asarray(random_words)
    if r.dtype.kind not in "ui" or (r.dtype.kind == "i" and r.size and r.min() < 0):
        raise ValueError(f"random_words must be unsigned 64-bit integers (uint64), got dtype "
                         f"{r.dtype}" + (" with negative values" if r.dtype.kind == "i" else ""))
    r = np.ascontiguousarray(r, dtype=np.uint64).reshape(-1)
    if r.size != n:
        raise ValueError(f"random_words must have one word per element ({n}), got {r.size}")
    return r


def _natural_dtype(f) -> np.dtype:
    """float32 when float32 holds every value of format f, else float64."""
    f32 = np.dtype(np.float32)
    return f32 if _NUMPY_FORMATS[f32].contains(_holder(f)) else np.dtype(np.float64)


def _fixed_args(f: FixedFormat):
    """frac_bits and the integer range [k_lo, k_hi] of the word (as floats), and the policy."""
    k_lo = -float(1 << (f.bits - 1)) if f.signed else 0.0
    k_hi = float((1 << (f.bits - 1)) - 1) if f.signed else float((1 << f.bits) - 1)
    return f.frac_bits, k_lo, k_hi, f.saturate


def _check_posit_rounding(f: PositFormat, rounding, random_words):
    if rounding != "rne" or random_words is not None:
        raise ValueError(f"posit format {f} rounds to nearest, ties to even (Posit Standard 2022, "
                         f"section 4): rounding must be 'rne', got {rounding!r}")


@functools.lru_cache(maxsize=16)
def _posit_tables(f: PositFormat):
    """Positive values of codes 1 .. 2**(n-1)-1, and the midpoints between neighbours: the values
    of the (n+1)-bit codes 2c+1 (kernels/posit.py)."""
    half = 1 << (f.n - 1)
    values = np.empty(half - 1)
    _kposit.decode_posits(np.arange(1, half, dtype=np.int64), values, f.n, f.es)
    mids = np.empty(half - 2)
    _kposit.decode_posits(2 * np.arange(1, half - 1, dtype=np.int64) + 1, mids, f.n + 1, f.es)
    return values, mids


def _kernel_format_args(f: FloatFormat):
    return (f.man_bits, f.emin, f.max, f.min_normal, SPECIALS_CODE[f.specials], f.saturate,
            f.subnormals)


# --- public functions ---------------------------------------------------------------------------
def quantize(x, fmt, rounding="rne", seed=None, sr_bits=None, dtype=None, random_words=None,
             axis=None):
    """Round every element of ``x`` once into ``fmt``; same shape, and x's float dtype.

    Parameters
    ----------
    x : array_like
        float16, float32, float64 or an ml_dtypes float type (widened exactly); integers and bool
        are read as float64.  Any shape, strides and byte order.
    fmt : FloatFormat or str
        The target format, or a name/spec string for :func:`fpsim.format`.
    rounding : {"rne", "rna", "rtz", "rup", "rdn", "rto", "sr"}
        Nearest-even, nearest-away, toward zero, toward +inf, toward -inf, round-to-odd, stochastic.
    seed : int or None
        Stochastic rounding key: element ``i`` (C order) uses the random word of ``(seed, i)`` only,
        so results do not depend on the thread count or chunking.  None (default): the next key
        of fpsim's process-wide stream (:func:`seed` restarts it), fresh at every call.
    sr_bits : int or None
        With ``rounding="sr"``: ``None`` rounds up with probability exactly (discarded part)/ulp;
        an int ``r`` uses ``r`` random bits as hardware does (probability = the discarded part
        truncated to ``r`` bits, over ``2**r``).
    dtype : dtype or None
        Output dtype; default x's (float64 for integer input).  An ml_dtypes type is allowed when it
        holds every value of ``fmt`` (e.g. ``dtype=ml_dtypes.float8_e4m3fn`` for "float8_e4m3fn").
    random_words : array_like of uint64, optional
        One 64-bit random word per element, used instead of the seeded generator (RTL test vectors
        feed the hardware's own random bits this way).  The top ``sr_bits`` bits are used.
    axis : int or None
        Block formats only (:class:`fpsim.BlockFormat`, e.g. ``"mxfp8_e4m3"``): the axis the
        blocks run along (1-D blocks; None means -1); tiles always cover the last two axes and a
        per-tensor scale needs none.  Given with any other format it is an error.  Each block gets its scale from
        its own largest magnitude; stochastic words are keyed by the element's index in the
        blocked layout (``axis`` moved last, padded to whole blocks).

    Returns
    -------
    ndarray of the output dtype, x's shape.  Values of the output dtype that cannot hold a rounded
    value (a format wider than x's dtype) overflow to Inf exactly as a numpy cast does.

    Examples
    --------
    >>> import numpy as np, fpsim
    >>> fpsim.quantize(np.array([0.1, 1000.0], np.float32), "float8_e4m3fn")
    array([0.1015625,       nan], dtype=float32)
    >>> fpsim.quantize(np.array([0.1, 1000.0]), "float8_e4m3fn", dtype=np.float32).dtype
    dtype('float32')
    """
    f = _check_format(fmt)
    _check_axis_use(f, axis)
    mode, r_bits = _check_rounding(rounding, sr_bits, f)
    key = _check_seed(seed, mode >= _k.SR)
    xa, natural = _values_array(x)
    if isinstance(f, BlockFormat):
        if random_words is not None:
            raise ValueError("random_words is not supported with block formats; use seed")
        out_dtype = _check_block_dtype(dtype, natural)
        q, _ = _block_quantize(_work_array(xa, out_dtype), f, axis, mode, r_bits, key)
        return q.astype(out_dtype, copy=False)
    out_dtype = _check_out_dtype(dtype, natural, f, explicit=dtype is not None)
    flat = _work_array(xa, out_dtype).reshape(-1)
    rand = _check_random(random_words, flat.size)
    out = np.empty_like(flat)
    if isinstance(f, PositFormat):
        _check_posit_rounding(f, rounding, random_words)
        _kposit.quantize_posits(flat, out, *_posit_tables(f), f.n, f.es)
    elif isinstance(f, FixedFormat):
        _kfixed.quantize_fixed(flat, out, rand, *_fixed_args(f), mode, r_bits, key)
    elif isinstance(f, Radix4Format):
        _kradix4.quantize_radix4(flat, out, rand, f.bias, f.phase, f.top_field, mode, r_bits, key)
    elif isinstance(f, ExponentFormat):
        _kexp.quantize_exponent(flat, out, rand, f.bias, f.top_code, mode, r_bits, key)
    elif rand.size == 0 and _k.fast_path_ok(f.man_bits, f.emin):
        _k.quantize_fast(flat, out, *_kernel_format_args(f), mode, r_bits, key)
    else:
        _k.quantize_array(flat, out, rand, *_kernel_format_args(f), mode, r_bits, key)
    out = out.reshape(xa.shape)
    return out if out.dtype == out_dtype else out.astype(out_dtype)


def encode(x, fmt, rounding="rne", seed=None, sr_bits=None, random_words=None, axis=None):
    """Round ``x`` into ``fmt`` (as :func:`quantize`) and return the bit patterns.

    Codes are unsigned integers of the smallest of uint8/16/32/64 that holds ``fmt.bits`` bits
    (sign in the top bit of the format, not of the integer type); for ml_dtypes formats they equal
    ml_dtypes' bit patterns.  NaN becomes the format's canonical quiet NaN (sign kept where the
    format can), as ml_dtypes does.  Fixed-point codes are the two's-complement words.

    Block formats return the pair ``(element codes, scale codes)``: element codes in x's shape,
    scale codes in the shape of :func:`block_exponents` (code = exponent - ``scale_min``; for MX
    that is the E8M0 code, 255 for a NaN block, whose element codes are 0).

    >>> import numpy as np, fpsim
    >>> fpsim.encode(np.array([1.0, -2.0, np.inf]), "float8_e5m2")
    array([ 60, 192, 124], dtype=uint8)
    """
    f = _check_format(fmt)
    _check_axis_use(f, axis)
    mode, r_bits = _check_rounding(rounding, sr_bits, f)
    key = _check_seed(seed, mode >= _k.SR)
    xa, _ = _values_array(x)
    if isinstance(f, BlockFormat):
        if random_words is not None:
            raise ValueError("random_words is not supported with block formats; use seed")
        return _block_encode(xa, f, axis, mode, r_bits, key)
    flat = xa.reshape(-1)
    rand = _check_random(random_words, flat.size)
    out = np.empty(flat.size, dtype=f.code_dtype)
    if isinstance(f, PositFormat):
        _check_posit_rounding(f, rounding, random_words)
        _kposit.encode_posits(flat, out, *_posit_tables(f), f.n)
        return out.reshape(xa.shape)
    if isinstance(f, (FixedFormat, Radix4Format)) and np.isnan(flat).any():
        raise ValueError(f"x holds NaN, which format {f} cannot encode (it has no NaN code)")
    if isinstance(f, ExponentFormat):
        _kexp.encode_exponent(flat, out, rand, f.bias, f.top_code, f.top_code + 1, mode, r_bits,
                              key)
        return out.reshape(xa.shape)
    if isinstance(f, Radix4Format):
        _kradix4.encode_radix4(flat, out, rand, f.bias, f.phase, f.top_field, f.exp_bits, mode,
                               r_bits, key)
        return out.reshape(xa.shape)
    if isinstance(f, FixedFormat):
        _kfixed.encode_fixed(flat, out, rand, *_fixed_args(f), mode, r_bits, key, f.bits)
        return out.reshape(xa.shape)
    _k.encode_array(flat, out, rand, f.man_bits, f.exp_bits, f.emin, f.max, f.min_normal,
                    SPECIALS_CODE[f.specials], f.saturate, f.subnormals, mode, r_bits, key)
    return out.reshape(xa.shape)


def decode(codes, fmt, dtype=None, axis=None):
    """Values of the bit patterns ``codes`` of ``fmt``.

    ``dtype`` defaults to float32 when float32 holds every value of ``fmt``, else float64.  Codes
    must be integers in ``0 .. 2**fmt.bits - 1``.  Block formats take the pair
    ``(element codes, scale codes)`` that :func:`encode` returns, with the same ``axis``, and give
    float64.

    >>> import numpy as np, fpsim
    >>> fpsim.decode(np.array([0x38, 0x7f, 0x01], np.uint8), "float8_e4m3fn")
    array([1.        ,        nan, 0.00195312], dtype=float32)
    """
    f = _check_format(fmt)
    _check_axis_use(f, axis)
    if isinstance(f, BlockFormat):
        return _block_decode(codes, f, axis).astype(_check_block_dtype(dtype, np.float64))
    c = np.asarray(codes)
    if c.dtype.kind not in "iu":
        raise ValueError(f"codes must be an integer array, got dtype {c.dtype}")
    if c.size:
        if c.dtype.kind == "i" and c.min() < 0:
            raise ValueError("codes must be non-negative")
        if f.bits < 64 and int(c.max()) >> f.bits:
            raise ValueError(f"codes must be below 2**{f.bits} for format {f}, got {int(c.max())}")
    natural = _natural_dtype(f)
    out_dtype = _check_out_dtype(dtype, natural, f, explicit=dtype is not None)
    kernel_dtype = np.float32 if natural == np.float32 else np.float64
    flat = np.ascontiguousarray(c, dtype=f.code_dtype).reshape(-1)
    out = np.empty(flat.size, dtype=kernel_dtype)
    if isinstance(f, PositFormat):
        _kposit.decode_posits(flat, out, f.n, f.es)
    elif isinstance(f, FixedFormat):
        _kfixed.decode_fixed(flat, out, f.frac_bits, f.bits, f.signed)
    elif isinstance(f, Radix4Format):
        _kradix4.decode_radix4(flat, out, f.bias, f.phase, f.exp_bits)
    elif isinstance(f, ExponentFormat):
        _kexp.decode_exponent(flat, out, f.bias, f.top_code + 1)
    else:
        _k.decode_array(flat, out, f.man_bits, f.exp_bits, f.bias, SPECIALS_CODE[f.specials],
                        f.subnormals)
    out = out.reshape(c.shape)
    return out if out.dtype == out_dtype else out.astype(out_dtype)


# --- block formats ------------------------------------------------------------------------------
def _check_block_dtype(dtype, natural) -> np.dtype:
    out = natural if dtype is None else np.dtype(dtype)
    if out not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64 for block formats, got {out}")
    return out


def _check_axis_use(f, axis):
    if axis is not None and not isinstance(f, BlockFormat):
        raise ValueError(f"axis is for block formats (where blocks run along it); format {f} "
                         f"rounds every element alone: leave axis=None, got {axis!r}")


def _check_axis(axis, ndim):
    if axis is None:
        return max(ndim, 1) - 1
    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral) or \
            not -max(ndim, 1) <= axis < max(ndim, 1):
        raise ValueError(f"axis must be an int in {-max(ndim, 1)}..{max(ndim, 1) - 1} for an "
                         f"array of {ndim} dimensions, got {axis!r}")
    return int(axis) % max(ndim, 1)


class _BlockLayout:
    """How the elements of an array of ``shape`` are laid out for the block kernels, and back.

    1-D blocks of n: ``axis`` moved last, rows cut into runs of n (the last may be shorter);
    tiles (r, c): the last two axes, edge tiles smaller; per tensor: everything one block.  The
    kernels see one flat C-ordered array, and element i of it uses random word i.
    """

    def __init__(self, shape, f: BlockFormat, axis):
        self.shape, self.block = shape, f.block
        self.size = int(np.prod(shape))
        if f.block is None:
            self.scale_shape = ()
        elif isinstance(f.block, tuple):
            if len(shape) < 2:
                raise ValueError(f"block format {f} has {f.block[0]}x{f.block[1]} tiles over the "
                                 f"last two axes; x has shape {shape}")
            (r, c), (h, w) = f.block, shape[-2:]
            self.grid = (-(-h // r), -(-w // c))
            self.scale_shape = shape[:-2] + self.grid
        else:
            self.work = shape or (1,)
            self.axis = _check_axis(axis, len(shape))
            self.moved = self.work[:self.axis] + self.work[self.axis + 1:] + (self.work[self.axis],)
            self.nbl = -(-self.moved[-1] // f.block)
            self.scale_shape = self.work[:self.axis] + (self.nbl,) + self.work[self.axis + 1:]

    def _runs(self):
        return isinstance(self.block, int)

    def flat(self, x):
        if self._runs() and self.axis != len(self.work) - 1:
            x = np.moveaxis(x.reshape(self.work), self.axis, -1)
        return np.ascontiguousarray(x).reshape(-1)

    def unflat(self, flat):
        if self._runs() and self.axis != len(self.work) - 1:
            return np.ascontiguousarray(np.moveaxis(flat.reshape(self.moved), -1, self.axis)) \
                .reshape(self.shape)
        return flat.reshape(self.shape)

    def n_scales(self):
        if self.block is None:
            return 1
        if self._runs():
            return self.size // max(self.moved[-1], 1) * self.nbl if self.size else 0
        return self.size // (self.shape[-2] * self.shape[-1]) * self.grid[0] * self.grid[1] \
            if self.size else 0

    def run(self, flat, out, scales, *args):
        if self.block is None:
            _kblock.quantize_tensor(flat, out, scales, *args)
        elif self._runs():
            _kblock.quantize_runs(flat, out, scales, self.moved[-1], self.block, *args)
        else:
            _kblock.quantize_tiles(flat, out, scales, self.shape[-2], self.shape[-1],
                                   *self.block, *args)

    def shaped_scales(self, scales):
        if self._runs():
            s = scales.reshape(self.moved[:-1] + (self.nbl,))
            return np.moveaxis(s, -1, self.axis).reshape(self.scale_shape)
        return scales.reshape(self.scale_shape)

    def flat_scales(self, shaped):
        """Inverse of :meth:`shaped_scales`."""
        if self._runs():
            shaped = np.moveaxis(shaped.reshape(self.scale_shape or (1,)), self.axis, -1)
        return np.ascontiguousarray(shaped).reshape(-1)

    def per_element(self, scales):
        """The flat kernel-order array of every element's scale exponent."""
        if self.block is None:
            return np.full(self.size, scales.reshape(-1)[0])
        if self._runs():
            n, length = self.block, self.moved[-1]
            return np.repeat(scales.reshape(-1, self.nbl), n, axis=1)[:, :length].reshape(-1)
        (r, c), (h, w) = self.block, self.shape[-2:]
        s = scales.reshape((-1,) + self.grid)
        return np.repeat(np.repeat(s, r, axis=1), c, axis=2)[:, :h, :w].reshape(-1)


def _element_args(el):
    """Kernel arguments of an element format: float formats as they are, fixed point as a
    50-fraction-bit float grid of the word's step clamped to the word's range."""
    if isinstance(el, FixedFormat):
        frac, k_lo, k_hi, _ = _fixed_args(el)
        step = el.step
        return (50, 50 - frac, np.inf, 0.0, SPECIALS_CODE["ieee"], True, k_lo * step,
                k_hi * step, False)
    return (el.man_bits, el.emin, el.max, el.min_normal, SPECIALS_CODE[el.specials],
            el.subnormals, -np.inf, np.inf, True)


def _block_quantize(xa, f: BlockFormat, axis, mode, r_bits, key, flat_scales=False):
    """Values and int64 scale exponents (kernels.block.NO_SCALE for NaN blocks) of xa in f."""
    layout = _BlockLayout(xa.shape, f, axis)
    flat = layout.flat(xa)
    out = np.empty_like(flat)
    scales = np.empty(layout.n_scales(), dtype=np.int64)
    if flat.size:
        layout.run(flat, out, scales, *_element_args(f.element), f.emax_elem, f.scale_min,
                   f.scale_max, f.nan_scale, mode, r_bits, key)
    if flat_scales:
        return layout, out, scales
    return layout.unflat(out), layout.shaped_scales(scales)


def block_exponents(x, fmt, axis=None):
    """The scale exponent ``s`` (scale ``2**s``) that each block of ``x`` gets in block format
    ``fmt``; float64, NaN for a block that becomes NaN (MX: a NaN or Inf in the block).

    Shape: x's with ``axis`` holding the block count (1-D blocks), the last two axes holding the
    tile grid (tiles), or ``()`` (one scale per tensor).

    >>> import numpy as np, fpsim
    >>> fpsim.block_exponents(np.array([0.5, -3.0, 0.25, 1.0]), "mxfp8_e4m3")   # 2**1 // 2**8
    array([-7.])
    """
    f = _check_format(fmt)
    if not isinstance(f, BlockFormat):
        raise ValueError(f"fmt must be a block format, got {f}")
    xa, _ = _values_array(x)
    _, scales = _block_quantize(xa, f, axis, _k.MODE["rne"], 0, np.uint64(0))
    out = scales.astype(np.float64)
    out[scales == _kblock.NO_SCALE] = np.nan
    return out


def _block_encode(xa, f: BlockFormat, axis, mode, r_bits, key):
    layout, q, scales = _block_quantize(xa, f, axis, mode, r_bits, key, flat_scales=True)
    nan_block = scales == _kblock.NO_SCALE
    s_el = layout.per_element(np.where(nan_block, 0, scales))
    elem = np.where(np.isnan(q), 0.0, np.ldexp(q, -s_el))   # exact: power-of-two scaling in range
    codes = encode(layout.unflat(elem), f.element)
    scodes = np.where(nan_block, (1 << f.scale_bits) - 1, scales - f.scale_min)
    return codes, layout.shaped_scales(scodes.astype(code_dtype(f.scale_bits)))


def _block_decode(codes, f: BlockFormat, axis):
    if not (isinstance(codes, tuple) and len(codes) == 2):
        raise ValueError("codes of a block format must be the pair (element codes, scale codes) "
                         "that fpsim.encode returns")
    el_codes, scodes = (np.asarray(c) for c in codes)
    layout = _BlockLayout(el_codes.shape, f, axis)
    if scodes.shape != layout.scale_shape:
        raise ValueError(f"scale codes must have shape {layout.scale_shape} for element codes of "
                         f"shape {el_codes.shape}, got {scodes.shape}")
    sc = layout.flat_scales(scodes.astype(np.int64))
    nan_block = f.nan_scale & (sc == (1 << f.scale_bits) - 1)
    s_el = layout.per_element(np.where(nan_block, 0, sc + f.scale_min))
    v = np.ldexp(layout.flat(decode(el_codes, f.element, dtype=np.float64)), s_el)
    v[layout.per_element(nan_block)] = np.nan
    return layout.unflat(v)


# --- elementwise arithmetic units ---------------------------------------------------------------
EXACT_RANGE = 2.0 ** 480   # float64 operands beyond 2**+-480 would break TwoProduct's exactness


def _check_arith_format(fmt, what="fmt") -> FloatFormat:
    f = _check_format(fmt)
    if not isinstance(f, FloatFormat):
        raise ValueError(f"{what} must be a floating-point format (FloatFormat or a float format "
                         f"name) for the arithmetic units, got {type(f).__name__} {f}")
    if not _k.fast_path_ok(f.man_bits, f.emin):
        raise ValueError(f"arithmetic in format {f} is not supported: it needs man_bits <= 50 and "
                         f"emin - man_bits >= -1022 (float32, bfloat16, every 8- to 16-bit "
                         f"format qualify; for float64 arithmetic use numpy)")
    return f


def _check_exact_range(name, v):
    """float64 operands must stay where the error-free transformations are exact."""
    a = np.abs(v[np.isfinite(v)])
    if a.size and (a.max() > EXACT_RANGE or np.any((a > 0) & (a < 1 / EXACT_RANGE))):
        raise ValueError(f"{name} has values beyond 2**480 or nonzero values below 2**-480 in "
                         "magnitude; arithmetic units take operands inside that range")


def _operands(names, arrays, f: FloatFormat, dtype):
    """Widen, broadcast and check the operands; returns flat float64 arrays, shape, out dtype."""
    widened, small = [], True
    for name, x in zip(names, arrays):
        xa, natural = _values_array(x)
        small &= natural.itemsize <= 4 or natural in _ML_FORMATS
        if xa.dtype == np.float64:
            _check_exact_range(name, xa)
        widened.append(xa)
    try:
        shaped = np.broadcast_arrays(*widened)
    except ValueError:
        shapes = ", ".join(f"{n}{w.shape}" for n, w in zip(names, widened))
        raise ValueError(f"operands do not broadcast together: {shapes}") from None
    shape = shaped[0].shape
    with np.errstate(invalid="ignore"):       # NaN payloads widen exactly; numpy still warns
        flat = [np.ascontiguousarray(s, dtype=np.float64).reshape(-1) for s in shaped]
    f32 = np.dtype(np.float32)
    natural = f32 if small and _NUMPY_FORMATS[f32].contains(f) else np.dtype(np.float64)
    out_dtype = _check_out_dtype(dtype, natural, f, explicit=dtype is not None)
    return flat, shape, out_dtype


def _elementwise(op, names, arrays, fmt, rounding, seed, sr_bits, dtype):
    f = _check_arith_format(fmt)
    mode, r_bits = _check_rounding(rounding, sr_bits, f)
    key = _check_seed(seed, mode >= _k.SR)
    flat, shape, out_dtype = _operands(names, arrays, f, dtype)
    while len(flat) < 3:
        flat.append(flat[0])
    if op == _arith.OP_FMA and _arith.inexact_products(flat[0], flat[1]):
        raise ValueError("fma needs a*b exact in float64; a and b have products that are not "
                         "(use float32 or narrower operands)")
    out = np.empty(flat[0].size, dtype=np.float64)
    _arith.elementwise(op, flat[0], flat[1], flat[2], out, *_kernel_format_args(f), mode, r_bits,
                       key)
    out = _positive_nans(out).reshape(shape)
    return out if out.dtype == out_dtype else out.astype(out_dtype)


_ARITH_DOC = """{summary}

    Operands are any float arrays (float16/32/64, ml_dtypes types; integers read as float64),
    broadcast like numpy, and used exactly as given - quantize them first to model a unit whose
    inputs are in ``fmt``.  The result is the exact {what} rounded once into ``fmt`` with the
    rules of :func:`quantize` (overflow, NaN, signed zero, FTZ); IEEE 754 special cases and the
    sign of exact zeros (+0, or -0 in "rdn") hold.  ``rounding``, ``seed`` and ``sr_bits`` as in
    :func:`quantize` (element i of the broadcast result uses the random word of ``(seed, i)``;
    ``sr_bits`` at most ``52 - fmt.man_bits``).  Output dtype: float32 when every operand is a
    32-bit-or-narrower float and float32 holds ``fmt``, else float64; ``dtype`` overrides.

    {example}
    """


def add(a, b, fmt, rounding="rne", seed=None, sr_bits=None, dtype=None):
    return _elementwise(_arith.OP_ADD, ("a", "b"), (a, b), fmt, rounding, seed, sr_bits, dtype)


def sub(a, b, fmt, rounding="rne", seed=None, sr_bits=None, dtype=None):
    return _elementwise(_arith.OP_SUB, ("a", "b"), (a, b), fmt, rounding, seed, sr_bits, dtype)


def mul(a, b, fmt, rounding="rne", seed=None, sr_bits=None, dtype=None):
    return _elementwise(_arith.OP_MUL, ("a", "b"), (a, b), fmt, rounding, seed, sr_bits, dtype)


def div(a, b, fmt, rounding="rne", seed=None, sr_bits=None, dtype=None):
    return _elementwise(_arith.OP_DIV, ("a", "b"), (a, b), fmt, rounding, seed, sr_bits, dtype)


def fma(a, b, c, fmt, rounding="rne", seed=None, sr_bits=None, dtype=None):
    return _elementwise(_arith.OP_FMA, ("a", "b", "c"), (a, b, c), fmt, rounding, seed, sr_bits,
                        dtype)


def sqrt(a, fmt, rounding="rne", seed=None, sr_bits=None, dtype=None):
    return _elementwise(_arith.OP_SQRT, ("a",), (a,), fmt, rounding, seed, sr_bits, dtype)


add.__doc__ = _ARITH_DOC.format(
    summary="a + b rounded once into ``fmt``.", what="sum",
    example=""">>> import numpy as np, fpsim
    >>> fpsim.add(np.float32(1.0), np.float32(2.0**-11), "float16")         # a tie: to even
    array(1., dtype=float32)
    >>> fpsim.add(np.float32(1.0), np.float32(2.0**-11 + 2.0**-30), "float16")  # just above it
    array(1.0009766, dtype=float32)""")
sub.__doc__ = _ARITH_DOC.format(
    summary="a - b rounded once into ``fmt``.", what="difference",
    example=""">>> import fpsim
    >>> fpsim.sub(1.0, 1.0, "e5m2", rounding="rdn")   # exact zero in rdn is -0
    array(-0.)""")
mul.__doc__ = _ARITH_DOC.format(
    summary="a * b rounded once into ``fmt``.", what="product",
    example=""">>> import fpsim
    >>> fpsim.mul(3.0, 11.0, "e4m3fn"), fpsim.mul(3.0, 11.0, "e4m3fn", rounding="rup")
    (array(32.), array(36.))""")
div.__doc__ = _ARITH_DOC.format(
    summary="a / b rounded once into ``fmt``.", what="quotient",
    example=""">>> import fpsim
    >>> fpsim.div(1.0, 3.0, "bfloat16"), fpsim.div(1.0, 0.0, "e4m3fn")
    (array(0.33398438), array(nan))""")
fma.__doc__ = _ARITH_DOC.format(
    summary="a * b + c with one rounding into ``fmt`` (a*b must be exact in float64).",
    what="value of a*b + c",
    example=""">>> import fpsim
    >>> fpsim.fma(1.0 + 2.0**-10, 1.0 - 2.0**-10, -1.0, "float16")   # -2**-20, exactly
    array(-9.53674316e-07)""")
sqrt.__doc__ = _ARITH_DOC.format(
    summary="sqrt(a) rounded once into ``fmt``.", what="square root",
    example=""">>> import fpsim
    >>> fpsim.sqrt([2.0, -1.0, -0.0], "e5m2")
    array([ 1.5,  nan, -0. ])""")


# --- GEMM ---------------------------------------------------------------------------------------
def _check_acc(acc):
    if acc is None:
        return Accumulator(_format("float32"))
    if isinstance(acc, (Accumulator, KulischAccumulator)):
        return acc
    raise ValueError(f"acc must be an fpsim.Accumulator or fpsim.KulischAccumulator, got {acc!r}")


def _dtype_format(name, x, declared):
    """The operand format of array x: the declared one, else the one its dtype names."""
    if declared is not None:
        return _check_format(declared)
    dt = np.asarray(x).dtype
    if dt in _ML_FORMATS:
        return _ML_FORMATS[dt]
    if dt in (np.float16, np.float32):
        return _NUMPY_FORMATS[np.dtype(dt)]
    raise ValueError(f"{name} has dtype {dt}; declare its format with {name.lower()}_format= "
                     "(e.g. 'e5m2'), or pass float16/float32/ml_dtypes arrays")


def _operand(name, x, f, quantize_operands: bool):
    """x as float64 values of format f: rejected or rounded (rne) when it holds other values."""
    arr = np.asarray(x)
    own = _ML_FORMATS.get(arr.dtype) or _NUMPY_FORMATS.get(arr.dtype)
    if isinstance(own, FloatFormat) and isinstance(f, FloatFormat) and f.contains(own):      # every value of the dtype is one of f's
        if arr.dtype in _ML_FORMATS:
            codes = np.ascontiguousarray(arr).view(np.dtype(f"u{arr.dtype.itemsize}"))
            return _decode_table(own)[codes]
        return arr.astype(np.float64)
    xa, _ = _values_array(arr)
    xa = xa.astype(np.float64, copy=False)
    if isinstance(f, BlockFormat):
        if quantize_operands:
            raise ValueError(f"quantize_operands cannot place blocks for {name}; quantize it with "
                             f"fpsim.quantize(..., {f}, axis=...) along the reduction axis first")
        f = f.float_container          # which block holds which value is the caller's layout
    q = quantize(xa, f)
    same = (q == xa) | (np.isnan(q) & np.isnan(xa))
    if not same.all():
        if not quantize_operands:
            bad = np.flatnonzero(~same.reshape(-1))
            raise ValueError(f"{name} has {bad.size} values that are not in its format {f} "
                             f"(first: {xa.reshape(-1)[bad[0]]!r} at flat index {bad[0]}); "
                             "pass quantize_operands=True to round them to nearest-even")
        xa = q
    return xa


@functools.lru_cache(maxsize=32)
def _decode_table(f: FloatFormat):
    """float64 value of every code of a format of at most 16 bits (a lookup beats decoding)."""
    return decode(np.arange(f.n_codes, dtype=f.code_dtype), f, dtype=np.float64)


def _gemm_shapes(A, B):
    if A.ndim not in (2, 3) or B.ndim not in (2, 3):
        raise ValueError(f"A and B must be 2-D (M,K),(K,N) or batched 3-D, got shapes "
                         f"{A.shape} and {B.shape}")
    if A.shape[-1] != B.shape[-2]:
        raise ValueError(f"inner dimensions differ: A is {A.shape}, B is {B.shape} "
                         f"(A's last axis must equal B's second-to-last)")
    if A.ndim == 3 and B.ndim == 3 and A.shape[0] != B.shape[0]:
        raise ValueError(f"batch sizes differ: A is {A.shape}, B is {B.shape}")
    batch = A.shape[0] if A.ndim == 3 else (B.shape[0] if B.ndim == 3 else 1)
    out_shape = (A.shape[-2], B.shape[-1])
    if A.ndim == 3 or B.ndim == 3:
        out_shape = (batch,) + out_shape
    return batch, out_shape


def _fmt_tuple(f: FloatFormat):
    return (int(f.man_bits), int(f.emin), float(f.max), float(f.min_normal),
            int(SPECIALS_CODE[f.specials]), bool(f.saturate), bool(f.subnormals))


def _lean_constants(acc_fmt: FloatFormat, wide: bool):
    """Constants of kernels.gemm.lean_round for float32 (wide False) or float64 lanes."""
    ity, fty, frac, bias = (np.int64, np.float64, 52, 1023) if wide else (np.int32, np.float32, 23,
                                                                           127)
    over = acc_fmt.max if acc_fmt.saturate else (np.inf if acc_fmt.specials == "ieee" else np.nan)
    expmask = ((1 << (63 - frac)) - 1) << frac if wide else 0x7F800000
    return (ity(np.iinfo(ity).min), ity(expmask), ity((acc_fmt.emin + bias) << frac),
            ity((frac - acc_fmt.man_bits) << frac), fty(acc_fmt.max), fty(over))


def _lean_lanes(acc: Accumulator, fa_: FloatFormat, fb_: FloatFormat, product):
    """Lane width of the exact round-to-nearest-even fast path, or None (kernels.gemm.lean_lanes
    holds the condition and its proof)."""
    f = acc.fmt
    return _gemm.lean_lanes((f.man_bits, f.emin, f.emax), (fa_.man_bits, fa_.emin, fa_.emax),
                            (fb_.man_bits, fb_.emin, fb_.emax), acc.rounding == "rne",
                            product is None, f.subnormals, f.specials in ("ieee", "fn"))


def gemm(A, B, acc=None, product=None, out=None, seed=None, a_format=None, b_format=None,
         quantize_operands=False):
    """Matrix product with the multiply-accumulate datapath modelled bit-exactly.

    ``C[i,j]``: for k = 0..K-1 in order, the product ``A[i,k]*B[k,j]`` (exact, or rounded to
    nearest-even into ``product``) is added to the accumulator register, which rounds into its
    format after every addition (:class:`Accumulator`: ``chunk`` and ``order`` as documented
    there); or all products are summed exactly and rounded once (:class:`KulischAccumulator`).
    Registers start at +0.

    Parameters
    ----------
    A, B : array_like
        (M, K) and (K, N), or batched (Bt, M, K) / (Bt, K, N); a 2-D operand is shared by every
        batch.  float16/float32/ml_dtypes arrays are read in their own format; float64 (and
        integer) arrays need ``a_format``/``b_format``.
    acc : Accumulator or KulischAccumulator, default ``Accumulator("float32")``.
    product : FloatFormat or str, optional
        Round each product into this format first (a narrow product register); None: exact.
    out : FloatFormat or str, optional
        Round the result once more (nearest-even) into this format, as when the register is
        written to memory; None returns the register values.
    seed : int or None
        As in :func:`quantize` (None: the next key of the process stream).  Stochastic
        accumulators: the random word of output element e and step t is the word
        ``e*(K*K + 2K) + t`` of ``seed``'s stream (kernels/gemm.py lists the steps).
    a_format, b_format : FloatFormat or str, optional
        The operand formats; values outside them raise ValueError unless ``quantize_operands``.

    Returns
    -------
    ndarray (M, N) or (Bt, M, N): float32 when float32 holds every value of the result's format,
    else float64.

    Examples
    --------
    >>> import numpy as np, fpsim
    >>> A = np.full((1, 4096), 2.0**-8, dtype=np.float32); B = np.ones((4096, 1), np.float32)
    >>> fpsim.gemm(A, B, acc=fpsim.Accumulator("fp16_169"))            # swamping: stuck at 4
    array([[4.]], dtype=float32)
    >>> fpsim.gemm(A, B, acc=fpsim.Accumulator("fp16_169", chunk=64))  # chunks recover 16
    array([[16.]], dtype=float32)
    """
    A_arr, B_arr = np.asarray(A), np.asarray(B)
    _gemm_shapes(A_arr, B_arr)
    fa_ = _dtype_format("A", A_arr, a_format)
    fb_ = _dtype_format("B", B_arr, b_format)
    _check_products(_holder(fa_), _holder(fb_))
    a64 = _operand("A", A_arr, fa_, quantize_operands)
    b64 = _operand("B", B_arr, fb_, quantize_operands)
    return _gemm_values(a64, b64, fa_, fb_, acc, product, out, seed)


def _gemm_values(a64, b64, fa_, fb_, acc, product, out, seed):
    """gemm of float64 arrays already known to hold values of the formats fa_ and fb_."""
    fa_, fb_ = _holder(fa_), _holder(fb_)   # the kernels see fixed-point operands as floats
    acc = _check_acc(acc)
    key = _check_seed(seed, isinstance(acc, Accumulator) and acc.rounding == "sr")
    batch, out_shape = _gemm_shapes(a64, b64)
    fp_ = None if product is None else _check_arith_format(product, "product")
    fo_ = None if out is None else _check_format(out)
    _check_products(fa_, fb_)
    a3 = a64.reshape((a64.shape[0] if a64.ndim == 3 else 1,) + a64.shape[-2:])
    b3 = b64.reshape((b64.shape[0] if b64.ndim == 3 else 1,) + b64.shape[-2:])
    c = _positive_nans(_gemm_run(a3, b3, batch, acc, fa_, fb_, fp_, key))
    final = acc.out_format if fo_ is None else fo_
    if fo_ is not None:   # widened first (exact): a float32 register array would round into
        c = quantize(np.asarray(c, np.float64), fo_)    # float32 twice for a wider out format
    return c.reshape(out_shape).astype(_natural_dtype(final), copy=False)


def _check_products(fa_: FloatFormat, fb_: FloatFormat):
    if fa_.man_bits + fb_.man_bits + 2 > 53 or fa_.emax + fb_.emax + 2 > 1023 \
            or (fa_.emin - fa_.man_bits) + (fb_.emin - fb_.man_bits) < -1074:
        raise ValueError(f"products of {fa_} and {fb_} are not exact in float64; the operand "
                         "formats need at most 53 significant bits together (float32 x float32 "
                         "and every narrower pair qualify)")


def _product_args(fp_):
    if fp_ is None:
        return (False, 0, 0, 0.0, 0.0, 0, False, False)
    return (True,) + _fmt_tuple(fp_)


def _gemm_run(a3, b3, batch, acc, fa_, fb_, fp_, key):
    m, n = a3.shape[1], b3.shape[2]
    fp = _product_args(fp_)
    if isinstance(acc, KulischAccumulator):
        return _kulisch_run(a3, b3, batch, acc, fa_, fb_, fp_, fp)
    mode, r_bits = _check_rounding(acc.rounding, acc.sr_bits, acc.fmt)
    if isinstance(acc.fmt, (FixedFormat, PositFormat)) and fp_ is not None:
        raise ValueError(f"a {type(acc.fmt).__name__} accumulator adds exact products; product= "
                         "is for float accumulators")
    if isinstance(acc.fmt, PositFormat):
        c = np.empty((batch, m, n))
        _gemm.gemm_posit(np.ascontiguousarray(a3), np.ascontiguousarray(b3), c,
                         _fmt_tuple(QUIRE_STAGE), *_posit_tables(acc.fmt), acc.fmt.n,
                         acc.fmt.es)
        return c
    if isinstance(acc.fmt, FixedFormat):
        frac, k_lo, k_hi, _ = _fixed_args(acc.fmt)
        c = np.empty((batch, m, n))
        _gemm.gemm_fixed(np.ascontiguousarray(a3), np.ascontiguousarray(b3), c, frac, k_lo, k_hi,
                         mode, r_bits, key)
        return c
    fa = _fmt_tuple(acc.fmt) + (mode, r_bits)
    lanes = _lean_lanes(acc, fa_, fb_, fp_)
    if lanes is not None:
        kind = _gemm.LEAN
    else:
        kind = _gemm.SCALAR if mode == _k.MODE["sr"] else _gemm.EXACT
    wide = lanes != 32
    dt = np.float64 if wide else np.float32
    lc = _lean_constants(acc.fmt, wide)
    c = np.empty((batch, m, n), dtype=dt)
    _gemm.gemm_float(np.ascontiguousarray(a3, dtype=dt), np.ascontiguousarray(b3, dtype=dt), c,
                     kind, acc.chunk or 0, acc.order == "pairwise", fa, fp, lc, key)
    return c


QUIRE_STAGE = FloatFormat(10, 50)   # the exact sum, rounded to odd, on its way to posit or fixed


def _quantum_span(x, f: FloatFormat):
    """(q, e): every nonzero finite value of x (values of f) is a multiple of 2**q, and
    e = floor(log2 max|x|).  A value v of f is a multiple of 2**(floor(log2|v|) - man_bits) (or
    of f's subnormal quantum), so products of two such arrays are multiples of 2**(qa + qb) and
    below 2**(ea + eb + 2): the exact sum needs only those digits."""
    a = np.abs(x[np.isfinite(x) & (x != 0)])
    if a.size == 0:
        return f.emin - f.man_bits, f.emin
    _, lo = np.frexp(a.min())                 # frexp's exponent is floor(log2|v|) + 1
    _, hi = np.frexp(a.max())
    return max(int(lo) - 1 - f.man_bits, f.emin - f.man_bits), int(hi) - 1


def _kulisch_run(a3, b3, batch, acc, fa_, fb_, fp_, fp):
    m, kk, n = a3.shape[1], a3.shape[2], b3.shape[2]
    if fp_ is None:
        lsb = (fa_.emin - fa_.man_bits) + (fb_.emin - fb_.man_bits)
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
        fa = _fmt_tuple(QUIRE_STAGE) + (mode, r_bits)
    else:
        mode, r_bits = _check_rounding(acc.rounding, None, acc.fmt)
        fa = _fmt_tuple(acc.fmt) + (mode, r_bits)
    c = np.empty((batch, m, n))
    flags = np.zeros((batch, m, n), dtype=np.bool_)
    _gemm.gemm_kulisch(np.ascontiguousarray(a3), np.ascontiguousarray(b3), c, flags, fp, lsb,
                       dbits, ndigits, acc.width or 0, fa)
    if flags.any():
        count = int(flags.sum())
        msg = (f"{count} output(s) overflow a {acc.width}-bit Kulisch accumulator (LSB 2**{lsb}); "
               f"a width of {emax - lsb + 1 + int(np.ceil(np.log2(kk + 1)))} bits holds any sum "
               f"of {kk} products")
        if acc.overflow == "raise":
            raise AccumulatorOverflow(msg)
        warnings.warn(msg + "; those outputs are NaN", RuntimeWarning, stacklevel=3)
        c[flags] = np.nan
    return quantize(c, acc.fmt, rounding=acc.rounding) if staged else c


# --- convolutions (NCHW activations, FCkhkw weights), lowered onto gemm --------------------------
def _pair(name, v, low):
    if isinstance(v, numbers.Integral) and not isinstance(v, bool):
        v = (int(v), int(v))
    if not (isinstance(v, tuple) and len(v) == 2 and all(isinstance(t, numbers.Integral)
                                                          and not isinstance(t, bool) for t in v)):
        raise ValueError(f"{name} must be an int or a pair of ints, got {v!r}")
    if min(v) < low:
        raise ValueError(f"{name} must be >= {low}, got {v!r}")
    return int(v[0]), int(v[1])


def _check_conv(x_shape, w_shape, stride, padding):
    if len(x_shape) != 4 or len(w_shape) != 4:
        raise ValueError(f"x must be (N, C, H, W) and w (F, C, kh, kw), got {x_shape} and "
                         f"{w_shape}")
    if x_shape[1] != w_shape[1]:
        raise ValueError(f"channels differ: x has {x_shape[1]} (axis 1), w has {w_shape[1]}")
    sh, sw = _pair("stride", stride, 1)
    ph, pw = _pair("padding", padding, 0)
    kh, kw = w_shape[2], w_shape[3]
    ho = (x_shape[2] + 2 * ph - kh) // sh + 1
    wo = (x_shape[3] + 2 * pw - kw) // sw + 1
    if ho < 1 or wo < 1:
        raise ValueError(f"the kernel {kh}x{kw} does not fit the padded input "
                         f"{x_shape[2] + 2 * ph}x{x_shape[3] + 2 * pw}")
    return (sh, sw), (ph, pw), (ho, wo)


def _im2col(xv, kh, kw, stride, padding, out_hw):
    """cols (N, C*kh*kw, Ho*Wo) of float64 values xv, zero-padded."""
    (sh, sw), (ph, pw), (ho, wo) = stride, padding, out_hw
    xp = np.pad(xv, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    cols = np.empty((xv.shape[0], xv.shape[1] * kh * kw, ho * wo))
    _conv.im2col(np.ascontiguousarray(xp), kh, kw, sh, sw, ho, wo, cols)
    return cols


def conv2d(x, w, stride=1, padding=0, acc=None, product=None, out=None, seed=None, x_format=None,
           w_format=None, quantize_operands=False):
    """2-D convolution (cross-correlation, NCHW) through :func:`gemm`'s datapath.

    ``y[n, f, oh, ow] = sum over (c, r, s) of w[f, c, r, s] * x[n, c, oh*sh + r - ph, ow*sw + s - pw]``
    with the reduction in the order (channel c, kernel row r, kernel column s), i.e. gemm of
    ``w.reshape(F, C*kh*kw)`` with the im2col matrix of ``x``.  Zero padding is multiplied and
    accumulated like any operand (+0 products), as im2col hardware does.  ``acc``, ``product``,
    ``out``, ``seed`` and ``quantize_operands`` as in :func:`gemm`; ``x_format``/``w_format`` are
    the operand formats (default: from the dtype).

    >>> import numpy as np, fpsim
    >>> x = np.ones((1, 1, 3, 3), np.float32); w = np.ones((2, 1, 2, 2), np.float32)
    >>> fpsim.conv2d(x, w, padding=1)[0, 0]
    array([[1., 2., 2., 1.],
           [2., 4., 4., 2.],
           [2., 4., 4., 2.],
           [1., 2., 2., 1.]], dtype=float32)
    """
    x_arr, w_arr = np.asarray(x), np.asarray(w)
    stride, padding, (ho, wo) = _check_conv(x_arr.shape, w_arr.shape, stride, padding)
    (xv, fx), (wv, fw) = _conv_operands((("x", x_arr, x_format), ("w", w_arr, w_format)),
                                        quantize_operands)
    nf, _, kh, kw = w_arr.shape
    cols = _im2col(xv, kh, kw, stride, padding, (ho, wo))
    y = _gemm_values(wv.reshape(nf, -1), cols, fw, fx, acc, product, out, seed)
    return y.reshape(x_arr.shape[0], nf, ho, wo)


def conv2d_backward_data(dy, w, x_shape, stride=1, padding=0, acc=None, product=None, out=None,
                         seed=None, dy_format=None, w_format=None, quantize_operands=False):
    """Gradient of :func:`conv2d` with respect to x: the transposed convolution, through gemm.

    ``dy`` (N, F, Ho, Wo) is dilated by the stride (zeros between rows and columns), padded by
    ``kh - 1 - ph`` (cropped where that is negative) and convolved with the flipped, transposed
    kernel ``w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)``; the reduction order is (output channel
    f, flipped kernel row, flipped kernel column).  Inserted zeros are accumulated as +0 products.

    >>> import numpy as np, fpsim
    >>> dy = np.ones((1, 1, 2, 2), np.float32); w = np.ones((1, 1, 2, 2), np.float32)
    >>> fpsim.conv2d_backward_data(dy, w, (1, 1, 3, 3))[0, 0]
    array([[1., 2., 1.],
           [2., 4., 2.],
           [1., 2., 1.]], dtype=float32)
    """
    dy_arr, w_arr = np.asarray(dy), np.asarray(w)
    x_shape = tuple(int(s) for s in x_shape)
    (sh, sw), (ph, pw), (ho, wo) = _check_conv(x_shape, w_arr.shape, stride, padding)
    _check_dy_shape(dy_arr, (x_shape[0], w_arr.shape[0], ho, wo))
    (dyv, fd), (wv, fw) = _conv_operands((("dy", dy_arr, dy_format), ("w", w_arr, w_format)),
                                         quantize_operands)
    kh, kw = w_arr.shape[2], w_arr.shape[3]
    dil = np.zeros(dy_arr.shape[:2] + ((ho - 1) * sh + 1, (wo - 1) * sw + 1))
    dil[:, :, ::sh, ::sw] = dyv
    rows = _pad_or_crop(dil, 2, kh - 1 - ph, x_shape[2] + kh - 1 - dil.shape[2] - (kh - 1 - ph))
    full = _pad_or_crop(rows, 3, kw - 1 - pw, x_shape[3] + kw - 1 - dil.shape[3] - (kw - 1 - pw))
    wt = np.ascontiguousarray(wv[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
    cols = _im2col(full, kh, kw, (1, 1), (0, 0), x_shape[2:])
    dx = _gemm_values(wt.reshape(wt.shape[0], -1), cols, fw, fd, acc, product, out, seed)
    return dx.reshape(x_shape)


def _conv_operands(named, quantize_operands):
    """(float64 values, format) of each (name, array, declared format) operand of a conv."""
    out = []
    for name, arr, declared in named:
        f = _dtype_format(name, arr, declared)
        out.append((_operand(name, arr, f, quantize_operands), f))
    return out


def _check_dy_shape(dy_arr, want):
    if dy_arr.shape != want:
        raise ValueError(f"dy must have shape {want} (batch, filters, output rows, output "
                         f"columns), got {dy_arr.shape}")


def _pad_or_crop(a, axis, before, after):
    """Zero-pad (positive) or crop (negative) ``a`` along ``axis``."""
    pad = [(0, 0)] * a.ndim
    pad[axis] = (max(before, 0), max(after, 0))
    a = np.pad(a, pad)
    index = [slice(None)] * a.ndim
    index[axis] = slice(max(-before, 0), a.shape[axis] - max(-after, 0))
    return a[tuple(index)]


def conv2d_backward_weight(dy, x, w_shape, stride=1, padding=0, acc=None, product=None, out=None,
                           seed=None, dy_format=None, x_format=None, quantize_operands=False):
    """Gradient of :func:`conv2d` with respect to w, through gemm.

    ``dw[f, (c, r, s)] = sum over (n, oh, ow) of dy[n, f, oh, ow] * cols[n, (c, r, s), (oh, ow)]``:
    gemm of dy as (F, N*Ho*Wo) with the transposed im2col matrix, reduction order (batch n,
    output row, output column).

    >>> import numpy as np, fpsim
    >>> dy = np.ones((1, 1, 2, 2), np.float32); x = np.arange(9, dtype=np.float32).reshape(1, 1, 3, 3)
    >>> fpsim.conv2d_backward_weight(dy, x, (1, 1, 2, 2))[0, 0]
    array([[ 8., 12.],
           [20., 24.]], dtype=float32)
    """
    dy_arr, x_arr = np.asarray(dy), np.asarray(x)
    w_shape = tuple(int(s) for s in w_shape)
    stride, padding, (ho, wo) = _check_conv(x_arr.shape, w_shape, stride, padding)
    _check_dy_shape(dy_arr, (x_arr.shape[0], w_shape[0], ho, wo))
    (dyv, fd), (xv, fx) = _conv_operands((("dy", dy_arr, dy_format), ("x", x_arr, x_format)),
                                         quantize_operands)
    cols = _im2col(xv, w_shape[2], w_shape[3], stride, padding, (ho, wo))
    nf = w_shape[0]
    dy2 = dyv.transpose(1, 0, 2, 3).reshape(nf, -1)
    cols_t = cols.transpose(0, 2, 1).reshape(-1, cols.shape[1])
    dw = _gemm_values(dy2, np.ascontiguousarray(cols_t), fd, fx, acc, product, out, seed)
    return dw.reshape(w_shape)
