"""fpsim: bit-exact simulation of low-precision deep-learning arithmetic."""

from .formats import FloatFormat, describe, format, registered_formats
from .ops import ROUNDINGS, decode, encode, quantize

__version__ = "0.1.0"

__all__ = ["FloatFormat", "format", "registered_formats", "describe", "quantize", "encode", "decode",
           "ROUNDINGS", "__version__"]
