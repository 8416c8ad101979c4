"""Public functions: check arguments, pick the kernel, return new arrays.

Nothing below this module checks arguments; nothing above the kernels loops over elements.
"""

from __future__ import annotations

import numbers

import ml_dtypes
import numpy as np

from .formats import SPECIALS_CODE, FloatFormat, format as _format, registered_formats
from .kernels import rounding as _k

ROUNDINGS = ("rne", "rna", "rtz", "rup", "rdn", "rto", "sr")
MAX_SR_BITS = 62

# ml_dtypes float types fpsim knows, by dtype -> FloatFormat of the same name
_ML_FORMATS = {np.dtype(getattr(ml_dtypes, n)): f for n, f in registered_formats().items()
               if hasattr(ml_dtypes, n)}
_NUMPY_FORMATS = {np.dtype(np.float16): registered_formats()["float16"],
                  np.dtype(np.float32): registered_formats()["float32"],
                  np.dtype(np.float64): registered_formats()["float64"]}


# --- argument checks ----------------------------------------------------------------------------
def _check_format(fmt) -> FloatFormat:
    if isinstance(fmt, FloatFormat):
        return fmt
    if isinstance(fmt, str):
        return _format(fmt)
    raise ValueError(f"fmt must be a FloatFormat or a format name/spec string, got {fmt!r}")


def _check_rounding(rounding, sr_bits):
    if rounding not in ROUNDINGS:
        raise ValueError(f"rounding must be one of {ROUNDINGS}, got {rounding!r}")
    if sr_bits is None:
        return _k.MODE[rounding], 0
    if rounding != "sr":
        raise ValueError(f"sr_bits is only meaningful with rounding='sr', got rounding={rounding!r}")
    if isinstance(sr_bits, bool) or not isinstance(sr_bits, numbers.Integral) \
            or not 1 <= sr_bits <= MAX_SR_BITS:
        raise ValueError(f"sr_bits must be an int in 1..{MAX_SR_BITS} or None, got {sr_bits!r}")
    return _k.MODE["sr_bits"], int(sr_bits)


def _check_seed(seed) -> np.uint64:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed < 2**64:
        raise ValueError(f"seed must be an int in 0..2**64-1, got {seed!r}")
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
        if dt.kind in "iu" and dt.itemsize == 8 and x.size and \
                np.abs(x.astype(np.float64)).max() > 2.0**53:
            raise ValueError("x has 64-bit integers beyond 2**53 in magnitude, which float64 "
                             "cannot hold exactly; convert them yourself first")
        return np.ascontiguousarray(x, dtype=np.float64), np.dtype(np.float64)
    raise ValueError(f"x has dtype {dt}; supported: float16, float32, float64, ml_dtypes float "
                     "types, integers and bool")


def _check_out_dtype(dtype, natural, fmt: FloatFormat, explicit: bool) -> np.dtype:
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
    if not holder.contains(fmt):
        raise ValueError(f"dtype {out} cannot hold every value of format {fmt}; "
                         "pass dtype=np.float32 or np.float64")
    return out


def _check_random(random_words, n):
    if random_words is None:
        return np.empty(0, dtype=np.uint64)
    r = np.ascontiguousarray(random_words, dtype=np.uint64).reshape(-1)
    if r.size != n:
        raise ValueError(f"random_words must have one word per element ({n}), got {r.size}")
    return r


def _kernel_format_args(f: FloatFormat):
    return (f.man_bits, f.emin, f.max, f.min_normal, SPECIALS_CODE[f.specials], f.saturate,
            f.subnormals)


# --- public functions ---------------------------------------------------------------------------
def quantize(x, fmt, rounding="rne", seed=0, sr_bits=None, dtype=None, random_words=None):
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
    seed : int
        Stochastic rounding key: element ``i`` (C order) uses the random word of ``(seed, i)`` only,
        so results do not depend on the thread count or chunking.
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
    mode, r_bits = _check_rounding(rounding, sr_bits)
    key = _check_seed(seed)
    xa, natural = _values_array(x)
    out_dtype = _check_out_dtype(dtype, natural, f, explicit=dtype is not None)
    flat = xa.reshape(-1)
    rand = _check_random(random_words, flat.size)
    out = np.empty_like(flat)
    if rand.size == 0 and _k.fast_path_ok(f.man_bits, f.emin):
        _k.quantize_fast(flat, out, *_kernel_format_args(f), mode, r_bits, key)
    else:
        _k.quantize_array(flat, out, rand, *_kernel_format_args(f), mode, r_bits, key)
    out = out.reshape(xa.shape)
    return out if out.dtype == out_dtype else out.astype(out_dtype)


def encode(x, fmt, rounding="rne", seed=0, sr_bits=None, random_words=None):
    """Round ``x`` into ``fmt`` (as :func:`quantize`) and return the bit patterns.

    Codes are unsigned integers of the smallest of uint8/16/32/64 that holds ``fmt.bits`` bits
    (sign in the top bit of the format, not of the integer type); for ml_dtypes formats they equal
    ml_dtypes' bit patterns.  NaN becomes the format's canonical quiet NaN (sign kept where the
    format can), as ml_dtypes does.

    >>> import numpy as np, fpsim
    >>> fpsim.encode(np.array([1.0, -2.0, np.inf]), "float8_e5m2")
    array([ 60, 192, 124], dtype=uint8)
    """
    f = _check_format(fmt)
    mode, r_bits = _check_rounding(rounding, sr_bits)
    key = _check_seed(seed)
    xa, _ = _values_array(x)
    flat = xa.reshape(-1)
    rand = _check_random(random_words, flat.size)
    out = np.empty(flat.size, dtype=f.code_dtype)
    _k.encode_array(flat, out, rand, f.man_bits, f.exp_bits, f.emin, f.max, f.min_normal,
                    SPECIALS_CODE[f.specials], f.saturate, f.subnormals, mode, r_bits, key)
    return out.reshape(xa.shape)


def decode(codes, fmt, dtype=None):
    """Values of the bit patterns ``codes`` of ``fmt``.

    ``dtype`` defaults to float32 when float32 holds every value of ``fmt``, else float64.  Codes
    must be integers in ``0 .. 2**fmt.bits - 1``.

    >>> import numpy as np, fpsim
    >>> fpsim.decode(np.array([0x38, 0x7f, 0x01], np.uint8), "float8_e4m3fn")
    array([1.        ,        nan, 0.00195312], dtype=float32)
    """
    f = _check_format(fmt)
    c = np.asarray(codes)
    if c.dtype.kind not in "iu":
        raise ValueError(f"codes must be an integer array, got dtype {c.dtype}")
    if c.size:
        if c.dtype.kind == "i" and c.min() < 0:
            raise ValueError("codes must be non-negative")
        if f.bits < 64 and int(c.max()) >> f.bits:
            raise ValueError(f"codes must be below 2**{f.bits} for format {f}, got {int(c.max())}")
    natural = np.dtype(np.float32) if _NUMPY_FORMATS[np.dtype(np.float32)].contains(f) \
        else np.dtype(np.float64)
    out_dtype = _check_out_dtype(dtype, natural, f, explicit=dtype is not None)
    kernel_dtype = np.float32 if natural == np.float32 else np.float64
    flat = np.ascontiguousarray(c, dtype=f.code_dtype).reshape(-1)
    out = np.empty(flat.size, dtype=kernel_dtype)
    _k.decode_array(flat, out, f.man_bits, f.exp_bits, f.bias, SPECIALS_CODE[f.specials],
                    f.subnormals)
    out = out.reshape(c.shape)
    return out if out.dtype == out_dtype else out.astype(out_dtype)
