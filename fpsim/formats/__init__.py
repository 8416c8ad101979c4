"""Number formats: frozen records of facts, one module per family, and the registry.

float (:class:`FloatFormat`), fixed (:class:`FixedFormat`), posit (:class:`PositFormat`), radix4
(:class:`Radix4Format`), exponent (:class:`ExponentFormat`), block (:class:`BlockFormat`);
registry: :func:`format`, :func:`register`, :func:`describe`, :func:`registered_formats`.
A record never calls an operation: quantizing, encoding and decoding are in :mod:`fpsim.quantize`.
"""

from .base import code_dtype
from .block import BlockFormat, bm_element, bm_format, bm_kulisch_width
from .exponent import ExponentFormat
from .fixed import FixedFormat
from .float import SPECIALS, SPECIALS_CODE, FloatFormat, spec_default_bias
from .posit import PositFormat
from .radix4 import Radix4Format
from .registry import BM_PRESETS, FLEX_SCALE_RANGE, describe, format, register, registered_formats

ELEMENT_FORMATS = (FloatFormat, FixedFormat, PositFormat, Radix4Format, ExponentFormat)
ALL_FORMATS = ELEMENT_FORMATS + (BlockFormat,)

__all__ = ["FloatFormat", "FixedFormat", "PositFormat", "Radix4Format", "ExponentFormat",
           "BlockFormat", "format", "register", "describe", "registered_formats", "code_dtype",
           "spec_default_bias", "bm_element", "bm_format", "bm_kulisch_width", "SPECIALS",
           "SPECIALS_CODE", "BM_PRESETS", "FLEX_SCALE_RANGE", "ELEMENT_FORMATS", "ALL_FORMATS"]
