"""quantize, encode, decode and block_exponents: every format family, every rounding mode.

Arguments are checked in :mod:`fpsim._args`; the kernels are :mod:`fpsim.kernels`.  Block formats
are laid out for their kernel by :class:`BlockLayout`.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from ._args import (ML_FORMATS, NUMPY_FORMATS, check_axis, check_axis_use, check_block_dtype,
                    check_device, check_format, check_out_dtype, check_posit_rounding,
                    check_random, check_seed, natural_dtype, rounding_mode, values_array)
from .formats import (SPECIALS_CODE, BlockFormat, ExponentFormat, FixedFormat, FloatFormat,
                      PositFormat, Radix4Format, code_dtype)
from .kernels import block as _kblock
from .kernels import exponent as _kexp
from .kernels import fixed as _kfixed
from .kernels import posit as _kposit
from .kernels import radix4 as _kradix4
from .kernels import rounding as _k
from .kernels import scaled as _kscaled
from .kernels import sr_lanes as _ksr

_E4M3_SAT = FloatFormat(4, 3, saturate=True)   # block_lanes32's filler where the lanes are off


def positive_nans(out):
    """NaN rule for computed results (arithmetic, accumulators): every NaN is +NaN of zero
    payload, whatever sign and payload the float arithmetic underneath produced (x86 gives
    -NaN for Inf - Inf).  quantize and encode instead keep the input NaN's sign, as ml_dtypes."""
    if out.flags.c_contiguous and out.dtype in (np.float32, np.float64):
        _k.positive_nans(out.reshape(-1))
        return out
    nan = np.isnan(out)
    if nan.any():
        out[nan] = np.nan
    return out


def work_array(xa, out_dtype):
    """The array the kernels write into: float64 when the output is, so that a rounded value
    beyond float32's range is not cut to Inf before it reaches a float64 result."""
    return xa.astype(np.float64) if out_dtype == np.float64 and xa.dtype != np.float64 else xa


@functools.lru_cache(maxsize=64)
def lane_constants(f: FloatFormat, wide: bool):
    """Constants of kernels.rounding.lane_nearest for float32 (wide False) or float64 lanes."""
    ity, fty, frac, bias = (np.int64, np.float64, 52, 1023) if wide else (np.int32, np.float32, 23,
                                                                           127)
    over = f.max if f.saturate or f.specials == "none" else \
        (np.inf if f.specials == "ieee" else np.nan)
    expmask = ((1 << ((63 if wide else 31) - frac)) - 1) << frac
    return (ity(np.iinfo(ity).min), ity(expmask), ity((f.emin + bias) << frac),
            ity((f.emax + 1 + bias) << frac), ity((frac - f.man_bits) << frac), fty(f.max),
            fty(over), fty(-0.0 if f.specials == "none" else np.nan))


def lane_path(f, flat, mode, rand):
    """Whether quantize rounds ``flat`` into float format f by kernels.rounding.lane_nearest."""
    if not (mode == _k.MODE["rne"] and rand.size == 0 and flat.dtype in (np.float32, np.float64)
            and f.subnormals and f.specials in ("ieee", "fn", "none")):
        return False
    return _k.lane_supports(f.man_bits, f.emin, f.emax, 32 if flat.dtype == np.float32 else 64)


def fixed_args(f: FixedFormat):
    """frac_bits and the integer range [k_lo, k_hi] of the word (as floats), and the policy."""
    k_lo = -float(1 << (f.bits - 1)) if f.signed else 0.0
    k_hi = float((1 << (f.bits - 1)) - 1) if f.signed else float((1 << f.bits) - 1)
    return f.frac_bits, k_lo, k_hi, f.saturate


@functools.lru_cache(maxsize=16)
def posit_tables(f: PositFormat):
    """Positive values of codes 1 .. 2**(n-1)-1, and the midpoints between neighbours: the values
    of the (n+1)-bit codes 2c+1 (kernels/posit.py)."""
    half = 1 << (f.n - 1)
    values = np.empty(half - 1)
    _kposit.decode_posits(np.arange(1, half, dtype=np.int64), values, f.n, f.es)
    mids = np.empty(half - 2)
    _kposit.decode_posits(2 * np.arange(1, half - 1, dtype=np.int64) + 1, mids, f.n + 1, f.es)
    return values, mids


@functools.lru_cache(maxsize=1024)
def float_args(f: FloatFormat):
    """The rounding kernels' arguments of a float format (formats are frozen: cached, as every
    quantize and GEMM call asks for them)."""
    return (f.man_bits, f.emin, f.max, f.min_normal, SPECIALS_CODE[f.specials], f.saturate,
            f.subnormals)


# --- public functions ---------------------------------------------------------------------------
def _rounding_call(x, fmt, rounding, seed, sr_bits, random_words, axis):
    """The checked arguments of quantize and encode: (format, mode code, random bits, key,
    x as a float32/float64 array, x's natural output dtype)."""
    f = check_format(fmt)
    check_axis_use(f, axis)
    mode, r_bits = rounding_mode(rounding, sr_bits, f)
    key = check_seed(seed, mode >= _k.SR)
    xa, natural = values_array(x)
    if isinstance(f, BlockFormat) and random_words is not None:
        raise ValueError("random_words is not supported with block formats; use seed")
    return f, mode, r_bits, key, xa, natural


def quantize(x, fmt, rounding="rne", seed=None, sr_bits=None, dtype=None, random_words=None,
             axis=None, device="cpu"):
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
    device : {"cpu", "cuda"}
        "cuda" rounds on a CUDA GPU (every format, block formats included; kernels/cuda), with
        the same results bit for bit, stochastic words included; x and the result stay numpy
        arrays (copied to and from the device).

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
    f, mode, r_bits, key, xa, natural = _rounding_call(x, fmt, rounding, seed, sr_bits,
                                                       random_words, axis)
    check_device(device)
    if isinstance(f, BlockFormat):
        out_dtype = check_block_dtype(dtype, natural)
        q, _ = block_quantize(work_array(xa, out_dtype), f, axis, mode, r_bits, key,
                              device=device)
        return q.astype(out_dtype, copy=False)
    out_dtype = check_out_dtype(dtype, natural, f, explicit=dtype is not None)
    flat = work_array(xa, out_dtype).reshape(-1)
    rand = check_random(random_words, flat.size)
    out = np.empty_like(flat)
    if isinstance(f, PositFormat):
        check_posit_rounding(f, rounding, random_words)
    gpu = None                      # the GPU's kernels (kernels/cuda), same names and arguments
    if device == "cuda":
        from .kernels import cuda as gpu
    if isinstance(f, PositFormat):
        (gpu or _kposit).quantize_posits(flat, out, *posit_tables(f), f.n, f.es)
    elif isinstance(f, FixedFormat):
        (gpu or _kfixed).quantize_fixed(flat, out, rand, *fixed_args(f), mode, r_bits, key)
    elif isinstance(f, Radix4Format):
        (gpu or _kradix4).quantize_radix4(flat, out, rand, f.bias, f.phase, f.top_field, mode,
                                          r_bits, key)
    elif isinstance(f, ExponentFormat):
        (gpu or _kexp).quantize_exponent(flat, out, rand, f.bias, f.top_code, mode, r_bits, key)
    elif gpu is not None:
        gpu.quantize(flat, out, rand, float_args(f), mode, r_bits, key)
    else:
        round_float(flat, out, rand, f, mode, r_bits, key)
    out = out.reshape(xa.shape)
    return out if out.dtype == out_dtype else out.astype(out_dtype)


def by_size(chunk, parallel, x, out, *args):
    """``chunk(x, out, 0, x.size, *args)`` for arrays of one parallel chunk (no parallel region
    to start: warm small calls), else ``parallel(x, out, *args)`` - the two entry points every
    elementwise kernel of kernels/ has."""
    if x.size <= _k.CHUNK:
        chunk(x, out, 0, x.size, *args)
    else:
        parallel(x, out, *args)


def round_float(flat, out, rand, f: FloatFormat, mode, r_bits, key):
    """out = flat (1-D float32 or float64) rounded into float format f: the kernel for the mode,
    the format and the size (``rand``: given random words, or 0-sized)."""
    if lane_path(f, flat, mode, rand):
        by_size(_k.lane_chunk, _k.quantize_lanes, flat, out,
                lane_constants(f, flat.dtype == np.float64))
    elif rand.size == 0 and _k.supports(f.man_bits, f.emin):
        if mode >= _k.SR and flat.dtype == np.float32 \
                and _ksr.sr_lanes_support(f.man_bits, f.emin, f.max, r_bits):
            ls = _ksr.sr_constants(f.man_bits, f.emin, f.max, f.min_normal, f.subnormals,
                                   f.specials == "fnuz", r_bits)
            by_size(_ksr.sr_chunk, _ksr.quantize_sr_lanes, flat, out, ls, mode == _k.SR, key,
                    float_args(f) + (mode, r_bits))
        elif mode >= _k.SR:
            by_size(_k.fast_chunk_sr, _k.quantize_fast_sr, flat, out, *float_args(f), mode,
                    r_bits, key)
        else:
            by_size(_k.fast_chunk, _k.quantize_fast, flat, out, *float_args(f), mode, r_bits)
    else:
        _k.quantize_array(flat, out, rand, *float_args(f), mode, r_bits, key)


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
    f, mode, r_bits, key, xa, _ = _rounding_call(x, fmt, rounding, seed, sr_bits, random_words,
                                                 axis)
    if isinstance(f, BlockFormat):
        return _block_encode(xa, f, axis, mode, r_bits, key)
    flat = xa.reshape(-1)
    rand = check_random(random_words, flat.size)
    out = np.empty(flat.size, dtype=f.code_dtype)
    if isinstance(f, PositFormat):
        check_posit_rounding(f, rounding, random_words)
        _kposit.encode_posits(flat, out, *posit_tables(f), f.n)
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
        _kfixed.encode_fixed(flat, out, rand, *fixed_args(f), mode, r_bits, key, f.bits)
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
    f = check_format(fmt)
    check_axis_use(f, axis)
    if isinstance(f, BlockFormat):
        return _block_decode(codes, f, axis).astype(check_block_dtype(dtype, np.float64))
    c = np.asarray(codes)
    if c.dtype.kind not in "iu":
        raise ValueError(f"codes must be an integer array, got dtype {c.dtype}")
    if c.size:
        if c.dtype.kind == "i" and c.min() < 0:
            raise ValueError("codes must be non-negative")
        if f.bits < 64 and int(c.max()) >> f.bits:
            raise ValueError(f"codes must be below 2**{f.bits} for format {f}, got {int(c.max())}")
    natural = natural_dtype(f)
    out_dtype = check_out_dtype(dtype, natural, f, explicit=dtype is not None)
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
class BlockLayout:
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
            self.axis = check_axis(axis, len(shape))
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

    def geometry(self):
        """(kind, row length, run, height, width, tile rows, tile columns) for the GPU's block
        kernels (kernels/cuda; kind 0: one block, 1: runs, 2: tiles)."""
        if self.block is None:
            return (0, self.size, self.size, 0, 0, 0, 0)
        if self._runs():
            return (1, self.moved[-1], self.block, 0, 0, 0, 0)
        return (2, 0, 0, self.shape[-2], self.shape[-1]) + tuple(self.block)

    def run(self, flat, out, scales, *args, l32, device="cpu"):
        """The block kernels (``l32``: block_lanes32's constants, for the CPU's)."""
        if device == "cuda":
            from .kernels import cuda as gpu
            gpu.block_quantize(flat, out, scales, self.geometry(), args)
        elif self.block is None:
            _kblock.quantize_tensor(flat, out, scales, *args, *l32)
        elif self._runs():
            _kblock.quantize_runs(flat, out, scales, self.moved[-1], self.block, *args, *l32)
        else:
            _kblock.quantize_tiles(flat, out, scales, self.shape[-2], self.shape[-1],
                                   *self.block, *args, *l32)

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


@functools.lru_cache(maxsize=64)
def block_lanes32(el, float32_rne):
    """kernels.block.round_block's float32-lane constants for element format ``el`` (``use``: 0,
    or kernels.block.LANES_FLOAT / LANES_FIXED; the range of scale exponents; lane_constants of
    the saturating element): used where the input is float32, the rounding nearest-even and
    kernels.block.lanes32's (float elements) or fixed_lanes32's (fixed point) proof holds."""
    use, lo, hi = 0, 0, -1
    if float32_rne and isinstance(el, FloatFormat):
        ok, lo, hi = _kblock.lanes32(el.man_bits, el.emin, el.emax, el.subnormals,
                                     el.specials in ("ieee", "fn", "none"))
        use = _kblock.LANES_FLOAT if ok else 0
    elif float32_rne and isinstance(el, FixedFormat):
        ok, lo, hi = _kblock.fixed_lanes32(el.bits - el.signed, el.frac_bits)
        use = _kblock.LANES_FIXED if ok else 0
    sat = dataclasses.replace(el, saturate=True) if use == _kblock.LANES_FLOAT else _E4M3_SAT
    return use, lo, hi, lane_constants(sat, False)      # (one tuple type)


def element_args(el):
    """Kernel arguments of an element format: float formats as they are, fixed point as a
    50-fraction-bit float grid of the word's step clamped to the word's range."""
    if isinstance(el, FixedFormat):
        frac, k_lo, k_hi, _ = fixed_args(el)
        step = el.step
        return (50, 50 - frac, np.inf, 0.0, SPECIALS_CODE["ieee"], True, k_lo * step,
                k_hi * step, False)
    return (el.man_bits, el.emin, el.max, el.min_normal, SPECIALS_CODE[el.specials],
            el.subnormals, -np.inf, np.inf, True)


def value_block_quantize(xa, f: BlockFormat, axis, mode, r_bits, key, device="cpu"):
    """(layout, flat values, flat elements, per-block scales S) of xa in a block format with
    value scales (``f.scale_format``): S = amax / element.max rounded once to nearest-even into
    the scale format (saturating, at least its smallest positive value; 1 for an all-zero
    block; NaN for a block with a NaN or an Inf), each element x / S rounded once into the
    element format (saturating; element i of the kernel order uses random word i).

    Exact (kernels.scaled, whose docstring has the proofs): S is the exact quotient rounded
    once; each element is rounded in branch-free lanes where ``kernels.scaled.fast_quotient``
    holds (every mode of every registered format), else, and for the few elements the lanes
    cannot decide, from the exact quotient rounded once by the arithmetic kernel (operands
    within 2**+-480).  Operands are brought into that range without changing any result: amax
    is clamped to [2**-400, 2**400] (beyond, S saturates at the scale format's ends either way),
    and x and S are both multiplied by 2**-e(S), with x then clamped to magnitudes in
    [2**-470, 2**400] - a quotient beyond 2**399 saturates any element (BlockFormat keeps
    value-scaled elements within 2**-170 .. 2**200), and one below 2**-469 rounds as any value
    far below half the element's smallest subnormal does (toward zero, or to that subnormal
    when rounding up or away; stochastic rounding would see a difference only with probability
    below 2**-300)."""
    layout = BlockLayout(xa.shape, f, axis)
    xa = np.asarray(xa)
    flat = layout.flat(xa if xa.dtype in (np.float32, np.float64) else xa.astype(np.float64))
    el, sf = f.element, f.scale_format
    sat = lambda g: FloatFormat(g.exp_bits, g.man_bits, g.bias, g.subnormals,   # noqa: E731
                                g.specials, saturate=True)
    vals, elems = np.empty(flat.size), np.empty(flat.size)
    scales = np.empty(layout.n_scales())
    if flat.size:
        common = (el.max, float_args(sat(el)), float_args(sat(sf)), sf.min_subnormal, mode,
                  r_bits, key,
                  _kscaled.fast_quotient(el.man_bits, el.emin, sf.man_bits + 1, mode, r_bits),
                  _kscaled.fast_quotient(sf.man_bits, sf.emin, el.man_bits + 1, _k.RNE, 0))
        use32 = flat.dtype == np.float32 and _kscaled.quotient_lanes32(
            el.man_bits, el.emin, el.emax, sf.man_bits + 1, mode)
        lanes = (use32, lane_constants(sat(el) if use32 else _E4M3_SAT, False))
        if device == "cuda":
            from .kernels import cuda as gpu
            gpu.scaled_quantize(flat, vals, elems, scales, layout.geometry(), common[:-2])
        elif isinstance(layout.block, tuple):
            _kscaled.scaled_tiles(flat, vals, elems, scales, *layout.shape[-2:], *layout.block,
                                  *common, *lanes)
        else:                                  # runs, or the whole tensor as one run
            length = layout.moved[-1] if layout._runs() else flat.size
            _kscaled.scaled_runs(flat, vals, elems, scales, length,
                                 f.block if layout._runs() else flat.size, *common, *lanes)
    return layout, vals, elems, scales


def block_quantize(xa, f: BlockFormat, axis, mode, r_bits, key, flat_scales=False,
                   device="cpu"):
    """Values and int64 scale exponents (kernels.block.NO_SCALE for NaN blocks) of xa in f; for
    value scales (f.scale_format) the float64 scales themselves (NaN for NaN blocks);
    ``device="cuda"``: the GPU's block kernels (kernels/cuda)."""
    if f.scale_format is not None:
        layout, out, _, scales = value_block_quantize(xa, f, axis, mode, r_bits, key, device)
        if flat_scales:
            return layout, out, scales
        return layout.unflat(out).astype(xa.dtype, copy=False), layout.shaped_scales(scales)
    layout = BlockLayout(xa.shape, f, axis)
    flat = layout.flat(xa)
    out = np.empty_like(flat)
    scales = np.empty(layout.n_scales(), dtype=np.int64)
    if flat.size:
        layout.run(flat, out, scales, *element_args(f.element), f.emax_elem, f.scale_min,
                   f.scale_max, f.nan_scale, mode, r_bits, key,
                   l32=block_lanes32(f.element, flat.dtype == np.float32 and mode == _k.RNE),
                   device=device)
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
    f = check_format(fmt)
    if not isinstance(f, BlockFormat):
        raise ValueError(f"fmt must be a block format, got {f}")
    if f.scale_format is not None:
        raise ValueError(f"{f} has value scales ({f.scale_format}), not exponents: its scales are "
                         f"the second part of fpsim.encode(x, fmt)")
    xa, _ = values_array(x)
    _, scales = block_quantize(xa, f, axis, _k.MODE["rne"], 0, np.uint64(0))
    out = scales.astype(np.float64)
    out[scales == _kblock.NO_SCALE] = np.nan
    return out


def _block_encode(xa, f: BlockFormat, axis, mode, r_bits, key):
    if f.scale_format is not None:
        layout, _, elems, scales = value_block_quantize(xa, f, axis, mode, r_bits, key)
        return (encode(layout.unflat(np.where(np.isnan(elems), 0.0, elems)), f.element),
                layout.shaped_scales(encode(scales, f.scale_format)))
    layout, q, scales = block_quantize(xa, f, axis, mode, r_bits, key, flat_scales=True)
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
    layout = BlockLayout(el_codes.shape, f, axis)
    if scodes.shape != layout.scale_shape:
        raise ValueError(f"scale codes must have shape {layout.scale_shape} for element codes of "
                         f"shape {el_codes.shape}, got {scodes.shape}")
    if f.scale_format is not None:
        scales = decode(layout.flat_scales(scodes), f.scale_format, dtype=np.float64)
        v = layout.flat(decode(el_codes, f.element, dtype=np.float64)) * \
            layout.per_element(scales)
        return layout.unflat(v)
    sc = layout.flat_scales(scodes.astype(np.int64))
    nan_block = f.nan_scale & (sc == (1 << f.scale_bits) - 1)
    s_el = layout.per_element(np.where(nan_block, 0, sc + f.scale_min))
    v = np.ldexp(layout.flat(decode(el_codes, f.element, dtype=np.float64)), s_el)
    v[layout.per_element(nan_block)] = np.nan
    return layout.unflat(v)


@functools.lru_cache(maxsize=32)
def decode_table(f: FloatFormat):
    """float64 value of every code of a format of at most 16 bits (a lookup beats decoding)."""
    return decode(np.arange(f.n_codes, dtype=f.code_dtype), f, dtype=np.float64)


# --- operands: arrays read as values of a format (GEMM, convolutions, engines) -------------------
def dtype_format(name, x, declared):
    """The operand format of array x: the declared one, else the one its dtype names."""
    if declared is not None:
        return check_format(declared)
    dt = np.asarray(x).dtype
    if dt in ML_FORMATS:
        return ML_FORMATS[dt]
    if dt in (np.float16, np.float32):
        return NUMPY_FORMATS[np.dtype(dt)]
    raise ValueError(f"{name} has dtype {dt}; declare its format with {name.lower()}_format= "
                     "(e.g. 'e5m2'), or pass float16/float32/ml_dtypes arrays")


def own_values(x, f) -> bool:
    """Whether every value of array x's dtype (an ml_dtypes type, float16 or float32) is one of
    format f's: x is then read as f's values without a check (:func:`operand_values`)."""
    own = ML_FORMATS.get(x.dtype) or NUMPY_FORMATS.get(x.dtype)
    return isinstance(own, FloatFormat) and isinstance(f, FloatFormat) and f.contains(own)


def operand_values(x, dtype=np.float64):
    """The values of x (an array of an own dtype, :func:`own_values`) as a new C-contiguous
    array of ``dtype`` (float32 or float64, which hold every value of those dtypes): ml_dtypes
    codes through their decode table, float16/float32 by numpy's exact conversion."""
    if x.dtype not in ML_FORMATS:
        return np.ascontiguousarray(x, dtype=dtype) if x.dtype != dtype else x.copy(order="C")
    codes = np.ascontiguousarray(x).view(np.dtype(f"u{x.dtype.itemsize}")).ravel()
    out = np.empty(codes.size, dtype)
    by_size(_k.table_chunk, _k.table_decode, codes, out,
            decode_table(ML_FORMATS[x.dtype]).astype(dtype, copy=False))
    return out.reshape(x.shape)


def operand(name, x, f, quantize_operands: bool):
    """x as float64 values of format f: rejected or rounded (rne) when it holds other values."""
    arr = np.asarray(x)
    if own_values(arr, f):              # every value of the dtype is one of f's
        return operand_values(arr)
    xa, _ = values_array(arr)
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
