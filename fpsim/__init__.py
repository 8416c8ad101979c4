"""fpsim: bit-exact simulation of low-precision deep-learning arithmetic."""

from .accum import Accumulator, AccumulatorOverflow, KulischAccumulator
from .blocks import Autoflex, BlockFormat, GradScale
from .formats import (ExponentFormat, FixedFormat, FloatFormat, PositFormat, Radix4Format,
                      describe, format, registered_formats)
from .ops import (ROUNDINGS, add, block_exponents, conv2d, conv2d_backward_data,
                  conv2d_backward_weight, decode, div, encode, fma, gemm, mul, quantize, seed, sqrt,
                  sub)

from . import data, nn  # noqa: E402  (fpsim.data, fpsim.nn: after the core API they use)

__version__ = "0.1.0"

__all__ = ["FloatFormat", "FixedFormat", "PositFormat", "Radix4Format", "ExponentFormat",
           "BlockFormat", "format",
           "registered_formats", "describe", "quantize", "encode", "decode", "block_exponents",
           "add", "sub", "mul", "div", "fma", "sqrt", "Accumulator", "KulischAccumulator",
           "AccumulatorOverflow", "gemm", "conv2d", "conv2d_backward_data",
           "conv2d_backward_weight", "seed", "Autoflex", "GradScale", "ROUNDINGS", "data", "nn",
           "__version__"]
