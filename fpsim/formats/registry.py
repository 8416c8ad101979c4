"""The format registry: names (ml_dtypes types, paper presets), spec strings and :func:`format`.

Presets cite the table or section of their paper; the records themselves are in the family
modules beside this one.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np

from .block import BlockFormat, bm_format
from .exponent import ExponentFormat
from .fixed import FixedFormat
from .float import ML_ALIASES, ML_FLOATS, FloatFormat, spec_default_bias
from .posit import PositFormat
from .radix4 import Radix4Format

_REGISTRY: dict[str, tuple[object, str]] = {}


def register(name: str, fmt, doc: str):
    """Name a format (any format object with a ``name`` field) in the registry, with its source."""
    _REGISTRY[name] = (dataclasses.replace(fmt, name=name), doc)


def _register(name, fmt_kwargs, doc):
    register(name, FloatFormat(**fmt_kwargs), doc)


# ml_dtypes float types, same semantics (fields, bias, specials and overflow behaviour).
# ml_dtypes float types, same semantics (fields, bias, specials and overflow behaviour).
for _name, (_kw, _doc) in ML_FLOATS.items():
    _register(_name, _kw, _doc)
register("float8_e8m0fnu", ExponentFormat(8, 127),
         "OCP MX E8M0 scale (MX spec v1.0 section 5.4.1); ml_dtypes type of the same name")
_register("float16", dict(exp_bits=5, man_bits=10), "IEEE 754 binary16 (numpy float16)")
_register("float32", dict(exp_bits=8, man_bits=23), "IEEE 754 binary32")
_register("float64", dict(exp_bits=11, man_bits=52), "IEEE 754 binary64")

# Paper presets.  Field widths are the papers'; where a paper does not spell out special values we
# use the IEEE layout, and say so.
_register("fp8_152", dict(exp_bits=5, man_bits=2),
          "Wang et al. 2018, 'Training DNNs with 8-bit floating point numbers': the FP8 (1,5,2) data "
          "format of weights, activations, errors and gradients. Default bias 15; IEEE-style specials "
          "assumed (the paper gives the field widths).")
_register("fp16_169", dict(exp_bits=6, man_bits=9),
          "Wang et al. 2018: the FP16 (1,6,9) format of the accumulators (chunk-based accumulation) "
          "and the weight update. Default bias 31; IEEE-style specials assumed.")
_register("hfp8_143", dict(exp_bits=4, man_bits=3, bias=11),
          "Sun et al. 2019, 'Hybrid 8-bit Floating Point (HFP8)': the 1-4-3 forward format "
          "(weights and activations) with its exponent bias moved to 11, the bias MLIR/XLA document "
          "for the HFP8 E4M3 type (f8E4M3B11FNUZ); IEEE-style specials assumed.")
_register("hfp8_152", dict(exp_bits=5, man_bits=2),
          "Sun et al. 2019 (HFP8): the 1-5-2 backward format (errors and gradients), bias 15, "
          "IEEE-style specials assumed.")


_POSIT_STD = ("Posit Standard (2022), section 2 and Table 1; es = 2, minpos/maxpos "
              "useed**-+(n-2); a 16n-bit quire for exact sums of products")
register("posit8", PositFormat(8, 2), f"{_POSIT_STD}; 8-bit posit")
register("posit16", PositFormat(16, 2), f"{_POSIT_STD}; 16-bit posit")
for _es in (0, 1):
    register(f"posit8_es{_es}", PositFormat(8, _es),
             f"Carmichael et al. 2019, 'Deep Positron', section III: 8-bit posits with es = {_es} "
             "for inference with exact multiply-accumulate (quire)")


_SUN2020 = ("Sun et al. 2020, 'Ultra-Low Precision 4-bit Training of Deep Neural Networks'; "
            "radix-4 FP4 [1,3,0] of the errors; bias 4 is fpsim's assumption")
register("fp4_130", Radix4Format(3), f"{_SUN2020}; the even-power grid (phase 0) of two-phase "
         "rounding")
register("fp4_130_phase1", Radix4Format(3, phase=1), f"{_SUN2020}; the odd-power grid (phase 1) "
         "of two-phase rounding")


def _dtype_name(obj):
    """The registry name of a numpy/ml_dtypes float type or dtype (e.g. ml_dtypes.bfloat16), or
    None when obj is not one fpsim names."""
    if obj is None:
        return None
    try:
        dt = np.dtype(obj)
    except (TypeError, ValueError):
        return None
    name = dt.name
    return name if name in _REGISTRY and (dt.kind == "f" or dt.kind == "V") else None


def registered_formats() -> dict:
    """Every named format: ``{name: format}`` in registration order."""
    return {k: v[0] for k, v in _REGISTRY.items()}


def describe(name: str) -> str:
    """The one-line description (and citation) of a named format."""
    if name not in _REGISTRY:
        raise ValueError(f"no named format {name!r}; known: {', '.join(_REGISTRY)}")
    return _REGISTRY[name][1]


_SPEC_RE = re.compile(
    r"^(?:e(?P<e>\d+)m(?P<m>\d+)|1-(?P<e2>\d+)-(?P<m2>\d+))"
    r"(?:b(?P<bias>-?\d+))?(?P<sp>fnuz|fn|none|ieee)?(?P<flags>(?:_(?:ftz|sat))*)$")
_BLOCK_RE = re.compile(r"^block\((?P<el>.+?),(?P<b>tensor|\d+x\d+|\d+),(?P<lo>-?\d+)\.\.(?P<hi>-?\d+)"
                       r"(?P<nan>,nan)?\)$")
def _block_shape(b):
    """The block of a spec string: "tensor", "RxC" or "N"."""
    return None if b == "tensor" else (tuple(int(v) for v in b.split("x")) if "x" in b
                                       else int(b))


_VALUE_BLOCK_RE = re.compile(r"^block\((?P<el>[^,]+),(?P<b>tensor|\d+x\d+|\d+),(?P<sf>[^,.]+)\)$")
_EXPONENT_RE = re.compile(r"^e(?P<e>\d+)m0fnu(?:b(?P<b>-?\d+))?$")
_RADIX4_RE = re.compile(r"^radix4_e(?P<e>\d+)(?:b(?P<b>-?\d+))?(?P<p>p1)?$")
_POSIT_RE = re.compile(r"^posit<(?P<n>\d+),(?P<es>\d+)>$")
_FIXED_RE = re.compile(r"^(?P<u>u?)fixed<(?P<il>-?\d+),(?P<fl>-?\d+)>(?P<wrap>_wrap)?$")


def format(spec):
    """Look up a format by name or parse a spec string.

    Accepts a format object (returned as is), a numpy or ml_dtypes float type or dtype
    (``ml_dtypes.float8_e4m3fn``, ``np.float16``), any name of :func:`registered_formats`
    (``"float8_e4m3fn"``, ``"fp16_169"``, ``"mxfp8_e4m3"``, ...), or a spec string:

    - floats: ``eXmY`` or the papers' ``1-X-Y``, optionally followed by ``bN`` (bias), a specials
      policy ``fn``/``fnuz``/``none`` (default ``ieee``) and the flags ``_ftz`` (no subnormals) and
      ``_sat`` (saturate), e.g. ``"e4m3"``, ``"e4m3b11fnuz"``, ``"1-6-9"``, ``"e2m1none_sat"``.
      Without ``bN`` the bias is IEEE's ``2**(E-1) - 1``, or ``2**(E-1)`` with ``fnuz``
      (:func:`spec_default_bias`).  The ml_dtypes names without their ``float8_``/``float6_``/
      ``float4_`` prefix mean the same formats: ``"e4m3fnuz"`` is float8_e4m3fnuz (bias 8),
      ``"e2m1fn"`` is float4_e2m1fn (no NaN).
    - fixed point: ``fixed<IL,FL>`` (signed), ``ufixed<IL,FL>``, with ``_wrap`` for wrap-around
      overflow (default: saturate), e.g. ``"fixed<4,12>"``.
    - posits: ``posit<n,es>``, e.g. ``"posit<8,0>"``.
    - radix-4: ``radix4_eE[bB][p1]``, e.g. ``"radix4_e3b4"`` (p1: the odd-power grid).
    - block formats: ``block(ELEMENT,BLOCK,SMIN..SMAX[,nan])`` with BLOCK ``32``, ``48x48`` or
      ``tensor``, e.g. ``"block(e4m3fn,32,-127..127,nan)"`` (= ``"mxfp8_e4m3"``).

    >>> format("1-6-9") == format("fp16_169")
    True
    >>> format("fixed<4,12>")
    FixedFormat(int_bits=4, frac_bits=12, signed=True, saturate=True, name=None)
    """
    if not isinstance(spec, str) and dataclasses.is_dataclass(spec) and hasattr(spec, "name"):
        return spec
    if not isinstance(spec, str):
        named = _dtype_name(spec)
        if named is None:
            raise ValueError(f"format must be a format object, a name/spec string or a float "
                             f"dtype fpsim names (float16/32/64, ml_dtypes types), got {spec!r}")
        return _REGISTRY[named][0]
    key = spec.strip()
    if key in _REGISTRY:
        return _REGISTRY[key][0]
    if key.lower() in ML_ALIASES:
        return ML_ALIASES[key.lower()]
    m = _BLOCK_RE.match(key.lower().replace(" ", ""))
    if m is not None:
        return BlockFormat(format(m["el"]), _block_shape(m["b"]), int(m["lo"]), int(m["hi"]),
                           nan_scale=m["nan"] is not None)
    m = _VALUE_BLOCK_RE.match(key.lower().replace(" ", ""))
    if m is not None:
        return BlockFormat(format(m["el"]), _block_shape(m["b"]), scale_format=format(m["sf"]))
    m = _EXPONENT_RE.match(key.lower().replace(" ", ""))
    if m is not None:
        return ExponentFormat(int(m["e"]), 127 if m["b"] is None else int(m["b"]))
    m = _RADIX4_RE.match(key.lower().replace(" ", ""))
    if m is not None:
        return Radix4Format(int(m["e"]), None if m["b"] is None else int(m["b"]),
                            phase=1 if m["p"] else 0)
    m = _POSIT_RE.match(key.lower().replace(" ", ""))
    if m is not None:
        return PositFormat(int(m["n"]), int(m["es"]))
    m = _FIXED_RE.match(key.lower().replace(" ", ""))
    if m is not None:
        return FixedFormat(int(m["il"]), int(m["fl"]), signed=not m["u"],
                           saturate=m["wrap"] is None)
    m = _SPEC_RE.match(key.lower())
    if m is None:
        raise ValueError(
            f"unknown format {spec!r}: expected a name ({', '.join(_REGISTRY)}) or a spec string "
            "like 'e4m3', 'e4m3b11fnuz', '1-6-9', 'e5m2_sat', 'e4m3fn_ftz', 'fixed<4,12>', "
            "'posit<8,0>', 'block(e4m3fn,32,-127..127,nan)'")
    e = int(m["e"] or m["e2"])
    mm = int(m["m"] or m["m2"])
    flags = m["flags"] or ""
    specials = m["sp"] or "ieee"
    return FloatFormat(exp_bits=e, man_bits=mm,
                       bias=spec_default_bias(e, specials) if m["bias"] is None else int(m["bias"]),
                       specials=specials,
                       subnormals="_ftz" not in flags, saturate="_sat" in flags)


# --- OCP Microscaling (MX) v1.0 -------------------------------------------------------------------
_MX = ("OCP Microscaling Formats (MX) v1.0, section 5 Table 1 and section 6.3; 32 elements per "
       "block, E8M0 scale = the largest power of two <= amax over the largest power of two of the "
       "element type, elements clamped to the max normal")
for _name, _elem in (("mxfp8_e4m3", "float8_e4m3fn"), ("mxfp8_e5m2", "float8_e5m2"),
                     ("mxfp6_e3m2", "float6_e3m2fn"), ("mxfp6_e2m3", "float6_e2m3fn"),
                     ("mxfp4_e2m1", "float4_e2m1fn")):
    register(_name, BlockFormat(format(_elem), 32, -127, 127, nan_scale=True),
             f"{_MX}; elements {_elem}")
register("mxint8", BlockFormat(FixedFormat(2, 6), 32, -127, 127, nan_scale=True),
         f"{_MX}; elements 8-bit two's complement with an implicit 2**-6 (-2 .. 1 63/64), "
         "as gfloat")

# --- value-scaled blocks: NVFP4 and DeepSeek-V3's tiles ----------------------------------------
register("nvfp4", BlockFormat(format("float4_e2m1fn"), 16, scale_format=format("float8_e4m3fn")),
         "NVIDIA 2025, 'Pretraining large language models with NVFP4': E2M1 elements, blocks of "
         "16 along the reduction axis, a UE4M3 scale = amax / 6 rounded to nearest-even (the "
         "block level; the per-tensor float32 level is fpsim.nn.NVFP4Scaling)")
register("nvfp4_16x16", BlockFormat(format("float4_e2m1fn"), (16, 16),
                                    scale_format=format("float8_e4m3fn")),
         "NVFP4 with 16 x 16 tiles (the NVFP4 recipe's weights, so a weight and its transpose "
         "share their blocks)")
register("fp8_tile_1x128", BlockFormat(format("float8_e4m3fn"), 128,
                                       scale_format=format("float32")),
         "DeepSeek-V3 technical report, section 3.3.1: E4M3 in 1 x 128 tiles along the reduction "
         "axis (activations, errors), one float32 scale = amax / 448 per tile")
register("fp8_block_128x128", BlockFormat(format("float8_e4m3fn"), (128, 128),
                                          scale_format=format("float32")),
         "DeepSeek-V3 technical report, section 3.3.1: E4M3 in 128 x 128 blocks (weights), one "
         "float32 scale = amax / 448 per block")

# --- Block Minifloat (Fox et al. 2021) ---------------------------------------------------------


_BM = "Fox et al. 2021, 'Block Minifloat Representation for Training Deep Neural Networks'"
BM_PRESETS = {   # name: (forward <e,m>, backward <e,m>, table of the paper)
    "bm8": ((2, 5), (4, 3), "Table 3"), "bm6": ((2, 3), (3, 2), "Tables 1 and 3"),
    "bm5": ((2, 2), (3, 1), "Tables 1 and 3"), "bm4": ((2, 1), (3, 0), "Table 1")}
for _n, (_fw, _bw, _tab) in BM_PRESETS.items():
    register(f"{_n}_fwd", bm_format(*_fw),
             f"{_BM}, {_tab}: {_n.upper()} forward (weights, activations) <{_fw[0]},{_fw[1]}> "
             "elements, 48x48 blocks, 8-bit shared exponent")
    register(f"{_n}_bwd", bm_format(*_bw),
             f"{_BM}, {_tab}: {_n.upper()} backward (errors) <{_bw[0]},{_bw[1]}> elements, "
             "48x48 blocks, 8-bit shared exponent")


# --- Flexpoint (Koster et al. 2017) -------------------------------------------------------------
FLEX_SCALE_RANGE = (-31, 0)
register("flex16+5", BlockFormat(FixedFormat(16, 0), None, *FLEX_SCALE_RANGE),
         "Koster et al. 2017, 'Flexpoint', section 3.1: int16 two's-complement mantissas with one "
         "5-bit exponent per tensor, scale 2**s. The paper gives no exponent range; fpsim takes "
         "s in -31..0 (the Nervana reference code clamps the scale to 2**-32..1)")


