"""Argument checks and coercions shared by the public modules: the only place that checks
arguments.  Every function here raises ValueError naming the bad parameter and what is allowed.
"""

from __future__ import annotations

import functools
import numbers
import threading

import ml_dtypes
import numpy as np

from .formats import (ELEMENT_FORMATS, BlockFormat, FloatFormat, PositFormat,
                      format as _format, registered_formats)
from .kernels import arith as _arith
from .kernels import rounding as _k

ROUNDINGS = ("rne", "rna", "rtz", "rup", "rdn", "rto", "sr")


def is_int(v) -> bool:
    """An integer (Python or numpy), not a bool."""
    return type(v) is int or (isinstance(v, numbers.Integral) and not isinstance(v, bool))


def max_sr_bits(man_bits: int) -> int:
    """The most random bits stochastic rounding may use into a format of ``man_bits`` fraction
    bits: the kept bits, the random window below them and the implicit bit fill one float64
    significand (53 bits).  The arithmetic units and accumulators need it (their exact result is
    cut to 53 bits before rounding); quantize keeps the same range so that one rule holds."""
    return 52 - man_bits


def check_rounding(rounding, sr_bits, fmt) -> int:
    """Checks a rounding mode and its ``sr_bits`` for rounding into format ``fmt``; returns the
    number of random bits (0: none, or exact stochastic rounding)."""
    if not isinstance(rounding, str) or rounding not in ROUNDINGS:
        raise ValueError(f"rounding must be one of {ROUNDINGS}, got {rounding!r}")
    if sr_bits is None:             # the common case: no message to format
        return 0
    return check_sr_bits(sr_bits, rounding, fmt.float_container.man_bits, f" for format {fmt}")


def check_sr_bits(sr_bits, rounding, man_bits, what="") -> int:
    """``sr_bits`` as an int (0 for None), checked against ``rounding`` and the format's
    ``man_bits`` (:func:`max_sr_bits`)."""
    if sr_bits is None:
        return 0
    if rounding != "sr":
        raise ValueError(f"sr_bits is only meaningful with rounding='sr', got rounding={rounding!r}")
    hi = max_sr_bits(man_bits)
    if not is_int(sr_bits) or not 1 <= sr_bits <= hi:
        raise ValueError(f"sr_bits must be an int in 1..{hi} (52 - man_bits){what} or None, "
                         f"got {sr_bits!r}")
    return int(sr_bits)


# ml_dtypes float types fpsim knows, by dtype -> FloatFormat of the same name
ML_FORMATS = {np.dtype(getattr(ml_dtypes, n)): f for n, f in registered_formats().items()
               if hasattr(ml_dtypes, n)}
NUMPY_FORMATS = {np.dtype(np.float16): registered_formats()["float16"],
                  np.dtype(np.float32): registered_formats()["float32"],
                  np.dtype(np.float64): registered_formats()["float64"]}

def check_format(fmt, blocks=True):
    f = fmt if isinstance(fmt, ELEMENT_FORMATS + (BlockFormat,)) else _format(fmt)
    if isinstance(f, ELEMENT_FORMATS) or (blocks and isinstance(f, BlockFormat)):
        return f
    if isinstance(f, BlockFormat):
        raise ValueError(f"block format {f} is not allowed here; quantize operands with it first "
                         "and pass its element format")
    raise ValueError("fmt must be a FloatFormat, FixedFormat, PositFormat, Radix4Format, "
                     f"ExponentFormat, BlockFormat or a format name/spec string, got {fmt!r}")


def holder(f) -> FloatFormat:
    """The FloatFormat that holds every value of format f (f itself for float formats)."""
    return f.float_container


def rounding_mode(rounding, sr_bits, f):
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
    _seed_int(s, "an int")
    with _STREAM_LOCK:
        _STREAM["seed"], _STREAM["calls"] = int(s), 0


DEVICES = ("cpu", "cuda")


def check_device(device) -> str:
    """"cpu" or "cuda" (a CUDA GPU through numba.cuda, or Numba's CUDA simulator)."""
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
    if device == "cuda":
        from .kernels import cuda as _cuda
        if not _cuda.available():
            raise ValueError("device='cuda' needs a CUDA GPU that numba.cuda can use (pip "
                             "install -e '.[cuda]' adds numba-cuda), or Numba's CUDA simulator "
                             "(NUMBA_ENABLE_CUDASIM=1 set before Python starts); none is "
                             "available here")
    return device


def check_seed(seed, stochastic=True) -> np.uint64:
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
    _seed_int(seed, "None or an int")
    return np.uint64(_k.seed_key(np.uint64(seed)))  # numba hands uint64 back as a Python int


def _seed_int(s, allowed):
    if not is_int(s) or not 0 <= s < 2**64:
        raise ValueError(f"seed must be {allowed} in 0..2**64-1, got {s!r}")


def values_array(x):
    """x as a native-endian C-contiguous float32/float64 array, plus its natural output dtype."""
    x = np.asarray(x)
    xa, natural = _widened(x)
    return xa.reshape(x.shape), natural  # ascontiguousarray makes 0-d arrays 1-d


def _widened(x):
    dt = x.dtype
    if dt in ML_FORMATS:
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
            bad = ~float64_holds(x)
            if bad.any():
                first = x.reshape(-1)[np.flatnonzero(bad.reshape(-1))[0]]
                raise ValueError(f"x has {int(bad.sum())} 64-bit integers that float64 cannot "
                                 f"hold exactly (first: {int(first)}); convert them yourself first")
        return np.ascontiguousarray(x, dtype=np.float64), np.dtype(np.float64)
    raise ValueError(f"x has dtype {dt}; supported: float16, float32, float64, ml_dtypes float "
                     "types, integers and bool")


def float64_holds(x):
    """Which 64-bit integers of x are float64 values: |x| stripped of its trailing zero bits
    has at most 53 bits.  Computed in integers (a float64 round trip would round first)."""
    mag = x.astype(np.uint64)
    mag = np.where(x < 0, np.uint64(0) - mag, mag) if x.dtype.kind == "i" else mag
    low = mag & (np.uint64(0) - mag)                 # lowest set bit (0 for 0)
    return (mag >> np.uint64(53)) < np.maximum(low, np.uint64(1))


def check_out_dtype(dtype, natural, fmt, explicit: bool) -> np.dtype:
    if dtype is None:
        out = natural
    else:
        try:
            out = np.dtype(dtype)
        except TypeError:
            raise ValueError(f"dtype must be a float dtype, got {dtype!r}") from None
        out = out.newbyteorder("=") if out.kind == "f" else out
    if out in ML_FORMATS:
        own = ML_FORMATS[out]
    elif out in NUMPY_FORMATS:
        own = NUMPY_FORMATS[out]
        if not explicit:
            return out
    else:
        raise ValueError(f"dtype must be float16, float32, float64 or an ml_dtypes float type, "
                         f"got {out}")
    if not isinstance(own, FloatFormat):      # float8_e8m0fnu holds only its own values
        if own != fmt:
            raise ValueError(f"dtype {out} holds only format {own}; pass dtype=np.float32 "
                             "or np.float64")
        return out
    if not own.contains(holder(fmt)):
        raise ValueError(f"dtype {out} cannot hold every value of format {fmt}; "
                         "pass dtype=np.float32 or np.float64")
    return out


def check_random(random_words, n):
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


@functools.lru_cache(maxsize=256)
def natural_dtype(f) -> np.dtype:
    """float32 when float32 holds every value of format f, else float64 (formats are frozen:
    cached)."""
    f32 = np.dtype(np.float32)
    return f32 if NUMPY_FORMATS[f32].contains(holder(f)) else np.dtype(np.float64)


def check_posit_rounding(f: PositFormat, rounding, random_words):
    if rounding != "rne" or random_words is not None:
        raise ValueError(f"posit format {f} rounds to nearest, ties to even (Posit Standard 2022, "
                         f"section 4): rounding must be 'rne', got {rounding!r}")


def check_block_dtype(dtype, natural) -> np.dtype:
    out = natural if dtype is None else np.dtype(dtype)
    if out not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64 for block formats, got {out}")
    return out


def check_axis_use(f, axis):
    if axis is not None and not isinstance(f, BlockFormat):
        raise ValueError(f"axis is for block formats (where blocks run along it); format {f} "
                         f"rounds every element alone: leave axis=None, got {axis!r}")


def check_axis(axis, ndim):
    if axis is None:
        return max(ndim, 1) - 1
    if not is_int(axis) or not -max(ndim, 1) <= axis < max(ndim, 1):
        raise ValueError(f"axis must be an int in {-max(ndim, 1)}..{max(ndim, 1) - 1} for an "
                         f"array of {ndim} dimensions, got {axis!r}")
    return int(axis) % max(ndim, 1)



def check_arith_format(fmt, what="fmt") -> FloatFormat:
    f = check_format(fmt)
    if not isinstance(f, FloatFormat):
        raise ValueError(f"{what} must be a floating-point format (FloatFormat or a float format "
                         f"name) for the arithmetic units, got {type(f).__name__} {f}")
    if not _arith.supports(f.man_bits, f.emin, 0.0, 0.0):
        raise ValueError(f"arithmetic in format {f} is not supported: it needs man_bits <= 50 and "
                         f"emin - man_bits >= -1022 (float32, bfloat16, every 8- to 16-bit "
                         f"format qualify; for float64 arithmetic use numpy)")
    return f


def check_exact_range(name, v):
    """float64 operands must stay where the error-free transformations are exact
    (kernels.arith.supports)."""
    a = np.abs(v[np.isfinite(v)])
    nz = a[a > 0]
    if nz.size and not _arith.supports(0, 0, float(nz.max()), float(nz.min())):
        raise ValueError(f"{name} has values beyond 2**480 or nonzero values below 2**-480 in "
                         "magnitude; arithmetic units take operands inside that range")