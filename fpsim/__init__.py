"""fpsim: bit-exact simulation of low-precision deep-learning arithmetic.

Layers, lowest first (a module imports only from layers below it; tests/test_layout.py checks):
kernels -> formats -> _args -> quantize -> arith -> accum -> engines -> gemm -> conv -> scaling,
probe -> data -> nn -> sweep -> validate -> cli.
"""

from ._args import ROUNDINGS, seed
from .formats import (BlockFormat, ExponentFormat, FixedFormat, FloatFormat, PositFormat,
                      Radix4Format, describe, format, registered_formats)
from .quantize import block_exponents, decode, encode, quantize
from .arith import add, div, fma, mul, sqrt, sub
from .accum import Accumulator, AccumulatorOverflow, KulischAccumulator
from .engines import FusedDotAdd, MatrixEngine, engine, engines
from .gemm import dot, gemm, sum
from .conv import conv2d, conv2d_backward_data, conv2d_backward_weight
from .scaling import Autoflex, GradScale

from . import data, nn, sweep  # noqa: E402  (fpsim.data, .nn, .sweep: after the core API)

__version__ = "0.1.0"

__all__ = ["FloatFormat", "FixedFormat", "PositFormat", "Radix4Format", "ExponentFormat",
           "BlockFormat", "format", "registered_formats", "describe", "quantize", "encode",
           "decode", "block_exponents", "add", "sub", "mul", "div", "fma", "sqrt", "Accumulator",
           "KulischAccumulator", "AccumulatorOverflow", "FusedDotAdd", "MatrixEngine", "engine",
           "engines", "gemm", "sum", "dot", "conv2d",
           "conv2d_backward_data", "conv2d_backward_weight", "seed", "Autoflex", "GradScale",
           "ROUNDINGS", "data", "nn", "sweep", "__version__"]
