"""The elementwise arithmetic units: add, sub, mul, div, fma and sqrt, each the exact result
rounded once into a FloatFormat (kernels: :mod:`fpsim.kernels.arith`)."""

from __future__ import annotations

import numpy as np

from ._args import (ML_FORMATS, NUMPY_FORMATS, check_arith_format, check_exact_range,
                    check_out_dtype, check_seed, rounding_mode, values_array)
from .formats import FloatFormat
from .kernels import arith as _arith
from .kernels import gemm as _gemm
from .kernels import rounding as _k
from .quantize import float_args, positive_nans, round_float


def _operands(names, arrays, f: FloatFormat, dtype):
    """Widen, broadcast and check the operands; returns flat float64 arrays, shape, out dtype,
    whether every operand is 32-bit or narrower, and whether every one widened to float32."""
    widened, small = [], True
    for name, x in zip(names, arrays):
        xa, natural = values_array(x)
        small &= natural.itemsize <= 4 or natural in ML_FORMATS
        if xa.dtype == np.float64:
            check_exact_range(name, xa)
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
    natural = f32 if small and NUMPY_FORMATS[f32].contains(f) else np.dtype(np.float64)
    out_dtype = check_out_dtype(dtype, natural, f, explicit=dtype is not None)
    return flat, shape, out_dtype, small, all(w.dtype == np.float32 for w in widened)


_NATIVE = {_arith.OP_ADD: np.add, _arith.OP_SUB: np.subtract, _arith.OP_MUL: np.multiply,
           _arith.OP_DIV: np.divide, _arith.OP_SQRT: np.sqrt}    # IEEE 754 in float32


def _elementwise(op, names, arrays, fmt, rounding, seed, sr_bits, dtype):
    f = check_arith_format(fmt)
    mode, r_bits = rounding_mode(rounding, sr_bits, f)
    key = check_seed(seed, mode >= _k.SR)
    flat, shape, out_dtype, small, f32_values = _operands(names, arrays, f, dtype)
    if small and op in _NATIVE and _gemm.native_lanes(
            (f.man_bits, f.emin, f.emax), (23, -126, 127), (23, -126, 127), mode == _k.RNE, True,
            f.subnormals and f.specials == "ieee" and not f.saturate) == 32:
        # binary32 operands and register: float32's own IEEE operation (kernels.gemm.native_lanes)
        with np.errstate(all="ignore"):
            out = _NATIVE[op](*(x.astype(np.float32) for x in flat)).astype(np.float64)
        out = positive_nans(out).reshape(shape)
        return out if out.dtype == out_dtype else out.astype(out_dtype)
    if f32_values and op == _arith.OP_MUL:
        # float32 values (float16 and ml_dtypes operands widen to them): their product is exact
        # in float64 (48 bits, 2**-298 .. 2**256), so its one rounding is quantize's
        with np.errstate(all="ignore"):
            prod = flat[0] * flat[1]
        out = np.empty_like(prod)
        round_float(prod, out, np.empty(0, np.uint64), f, mode, r_bits, key)
        out = positive_nans(out).reshape(shape)
        return out if out.dtype == out_dtype else out.astype(out_dtype)
    while len(flat) < 3:
        flat.append(flat[0])
    if op == _arith.OP_FMA and _arith.inexact_products(flat[0], flat[1]):
        raise ValueError("fma needs a*b exact in float64; a and b have products that are not "
                         "(use float32 or narrower operands)")
    out = np.empty(flat[0].size, dtype=np.float64)
    _arith.elementwise(op, flat[0], flat[1], flat[2], out, *float_args(f), mode, r_bits,
                       key)
    out = positive_nans(out).reshape(shape)
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
