"""How a recipe rounds one tensor before it enters a GEMM.

A recipe names, for weights, activations and errors, either a format (every element rounded into
it), or one of the scaling schemes below, which choose a scale per tensor and may carry state from
step to step.  A scheme is a small frozen description; :meth:`make` builds the stateful object that
one layer uses for one tensor.  Each object's ``__call__(x, axis, gemm, seed)`` returns
``(values, fmt, scale)``: the GEMM runs on ``values``, whose format is ``fmt``, and its result is
multiplied by the product of the two operands' ``scale`` (1.0 unless the scale is not a power of
two the format can hold).

>>> import numpy as np
>>> from fpsim.nn import IntScaling, Round
>>> x = np.array([0.3, -1.2, 2.5], np.float32)
>>> Round("e4m3", "rne").make()(x, -1, "forward", 0)[0]
array([ 0.3125, -1.25  ,  2.5   ], dtype=float32)
>>> q, fmt, scale = IntScaling(4).make()(x, -1, "forward", 0)   # int4 times one real scale
>>> q, str(fmt), scale
(array([ 1., -3.,  7.], dtype=float32), 'fixed<4,0>', 0.35714285714285715)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .._args import ROUNDINGS, check_format, check_seed, rounding_mode
from ..arith import mul
from ..formats import BlockFormat, FixedFormat, format as _format
from ..kernels.rounding import SR
from ..quantize import block_exponents, quantize, value_block_quantize
from ..scaling import Autoflex, DelayedScale, GradScale, tensor_scale

GEMMS = ("forward", "backward_data", "backward_weight")


def quantize_along(x, fmt, axis, rounding="rne", seed=0):
    """Round x into fmt.  Block formats: 1-D blocks run along ``axis`` (the GEMM's reduction
    axis); r x c tiles cover r rows by c elements along ``axis`` of x seen as a matrix
    (other axes flattened, ``axis`` last); one scale per tensor needs no axis."""
    if isinstance(fmt, BlockFormat) and isinstance(fmt.block, tuple):
        moved = np.moveaxis(x, axis, -1)
        q = quantize(moved.reshape(-1, moved.shape[-1]), fmt, rounding=rounding, seed=seed)
        return np.moveaxis(q.reshape(moved.shape), -1, axis)
    return quantize(x, fmt, rounding=rounding, seed=seed,
                        axis=axis if isinstance(fmt, BlockFormat) else None)


def _check_rounding(rounding):
    if rounding not in ROUNDINGS:
        raise ValueError(f"rounding must be one of {', '.join(ROUNDINGS)}; got {rounding!r}")


def _per_tensor(fmt) -> bool:
    return not isinstance(fmt, BlockFormat) or fmt.block is None


class _Cached:
    """Rounds each tensor once: a tensor used by two GEMMs (activations in forward and
    backward-weight, errors in backward-data and backward-weight, weights in forward and
    backward-data) is stored rounded, as hardware keeps it in memory, unless its blocks run
    along a different axis in the other GEMM."""

    def __init__(self):
        self._last = None

    def cache_key(self, x, axis):
        """Uses of x that may share one rounding: all, or those with blocks along ``axis``."""
        return None if self.axis_free else axis

    def __call__(self, x, axis, gemm, seed):
        key = self.cache_key(x, axis)
        if self._last is not None and self._last[0] is x and self._last[1] == key:
            return self._last[2]
        out = self.round(x, axis, gemm, seed)
        self._last = (x, key, out)
        return out

    def forget(self):
        """Drop the kept rounding (a new step: the tensors are new)."""
        self._last = None

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_last"] = None                 # a cache, not state: never checkpointed
        return state


@dataclass(frozen=True)
class Round:
    """Round every element into ``fmt`` (any fpsim format, block formats included) with
    ``rounding`` ("rne", "sr", ...)."""
    fmt: object
    rounding: str = "rne"

    def __post_init__(self):
        object.__setattr__(self, "fmt", _format(self.fmt) if isinstance(self.fmt, str)
                           else self.fmt)
        check_format(self.fmt)
        _check_rounding(self.rounding)

    def make(self):
        return _RoundTensor(self)

    def __str__(self):
        return str(self.fmt) + ("" if self.rounding == "rne" else f" ({self.rounding})")


class _RoundTensor(_Cached):
    def __init__(self, spec: Round):
        super().__init__()
        self.spec, self.axis_free = spec, _per_tensor(spec.fmt)

    def cache_key(self, x, axis):
        f = self.spec.fmt
        block = getattr(f, "block", None)
        if isinstance(block, tuple) and block[0] == block[1] and x.ndim == 2:
            return None       # square tiles of a matrix and of its transpose are the same blocks
        return super().cache_key(x, axis)

    def round(self, x, axis, gemm, seed):
        f = self.spec.fmt
        return quantize_along(x, f, axis, self.spec.rounding, seed), f, 1.0


@dataclass(frozen=True)
class AutoflexScaling:
    """Flexpoint with Autoflex (Koster et al. 2017, section 3.3, Algorithm 2): one exponent per
    tensor, predicted from the maxima of the same tensor in earlier steps."""
    fmt: str = "flex16+5"
    rounding: str = "rne"

    def __post_init__(self):
        _check_rounding(self.rounding)
        Autoflex(self.fmt)                       # checks fmt now, not at the first step

    def make(self):
        return _AutoflexTensor(self)

    def __str__(self):
        return f"{self.fmt} (Autoflex)"


class _AutoflexTensor(_Cached):
    axis_free = True

    def __init__(self, spec: AutoflexScaling):
        super().__init__()
        self.flex = Autoflex(spec.fmt, rounding=spec.rounding)

    def round(self, x, axis, gemm, seed):
        self.flex.seed = (seed - self.flex.steps) % 2**63  # Autoflex adds its step count back
        s = self.flex.exponent
        q = self.flex.quantize(x)
        if s is None:                                    # first tensor: Autoflex chose from it
            s = int(block_exponents(x, self.flex.fmt).reshape(()))
        return q, self.flex.mantissa_format(s), 1.0


@dataclass(frozen=True)
class IntScaling:
    """Signed (or, ``signed=False``, unsigned) ``bits``-bit integers times one real scale per
    tensor, the scale from ``rule``: "max" (largest magnitude maps to the largest integer) or
    "sawb" (statistics-aware weight binning, Choi et al. 2018: alpha = c1*sqrt(E[x^2]) -
    c2*E[|x|] with the 4-bit coefficients c1=12.1, c2=12.2; values beyond alpha clip)."""
    bits: int = 4
    signed: bool = True
    rule: str = "max"
    rounding: str = "rne"

    def __post_init__(self):
        _check_rounding(self.rounding)
        if self.rule not in ("max", "sawb"):
            raise ValueError(f"rule must be 'max' or 'sawb', got {self.rule!r}")
        if not isinstance(self.bits, int) or not 2 <= self.bits <= 16:
            raise ValueError(f"bits must be an int in 2..16, got {self.bits!r}")

    @property
    def fmt(self) -> FixedFormat:
        return FixedFormat(self.bits, 0, signed=self.signed)

    def make(self):
        return _IntTensor(self)

    def __str__(self):
        return f"{'' if self.signed else 'u'}int{self.bits} ({self.rule} scale)"


class _IntTensor(_Cached):
    axis_free = True

    def __init__(self, spec: IntScaling):
        super().__init__()
        self.spec = spec

    def round(self, x, axis, gemm, seed):
        f, spec = self.spec.fmt, self.spec
        a = np.abs(x.astype(np.float64))
        if spec.rule == "sawb":
            alpha = 12.1 * math.sqrt(float(np.mean(a * a))) - 12.2 * float(np.mean(a))
            alpha = alpha if alpha > 0 else float(a.max(initial=0.0))
        else:
            alpha = float(a.max(initial=0.0))
        scale = alpha / f.max if alpha > 0 else 1.0
        q = quantize(x.astype(np.float64) / scale, f, rounding=spec.rounding, seed=seed)
        return q.astype(x.dtype), f, scale           # small integers: exact in x's dtype


@dataclass(frozen=True)
class CurrentScaling:
    """Per-tensor current scaling, as FP8 training with Transformer Engine does it: the tensor
    times ``s = fmt.max / amax / 2**margin`` (amax: this tensor's largest magnitude; ``s`` a
    float32, as the library stores its scales, at most float32's largest value) rounded into
    ``fmt``; the GEMM's result is multiplied by the two operands' ``1/s`` rounded to float32
    (the library's scale_inv).  fpsim's choice: the product ``x * s`` is rounded once into
    ``fmt`` (:func:`fpsim.mul`; a float32 multiply first would round twice).  An all-zero or
    non-finite amax keeps ``s = 1``."""
    fmt: str = "float8_e4m3fn"
    rounding: str = "rne"
    margin: int = 0

    def __post_init__(self):
        _check_rounding(self.rounding)
        f = check_format(self.fmt)
        if isinstance(f, BlockFormat):
            raise ValueError(f"fmt must be an element format (one scale per tensor), got {f}")
        if isinstance(self.margin, bool) or not isinstance(self.margin, int) \
                or not 0 <= self.margin <= 64:
            raise ValueError(f"margin must be an int in 0..64, got {self.margin!r}")

    def make(self):
        return _CurrentTensor(self)

    def __str__(self):
        return f"{self.fmt} (per-tensor scale" + \
            (f", margin {self.margin})" if self.margin else ")")


class _CurrentTensor(_Cached):
    axis_free = True

    def __init__(self, spec: CurrentScaling):
        super().__init__()
        self.spec, self.fmt = spec, check_format(spec.fmt)

    def round(self, x, axis, gemm, seed):
        amax = float(np.max(np.abs(x.astype(np.float64)), initial=0.0))
        s = tensor_scale(self.fmt.max, amax, self.spec.margin, 1.0)
        return scaled_round(x, s, self.fmt, self.spec.rounding, seed)


def scaled_round(x, s, fmt, rounding, seed):
    """(x * s rounded once into fmt, fmt, float32(1 / s)): the product is exact before its one
    rounding (fpsim.mul), so x may be float32 or float64.  A float32 x and a float32 s go in as
    float32 arrays: fpsim.mul then rounds their float64 product with quantize's kernels."""
    x = np.asarray(x)
    if x.dtype != np.float32:
        x = x.astype(np.float64)
    s32 = np.float32(s)
    q = mul(x, s32 if s32 == s else np.float64(s), fmt, rounding=rounding, seed=seed,
            dtype=np.float64)
    return q.astype(np.float32), fmt, float(np.float32(1.0 / s))


@dataclass(frozen=True)
class DelayedScaling:
    """Delayed scaling as Transformer Engine does it for FP8 (its ``DelayedScaling`` recipe): each
    tensor is multiplied by a scale ``s`` chosen *before* it is seen, from the amax history of
    the same tensor in the last ``history`` steps (``algo`` "max": the largest of them;
    "most_recent": the last), ``s = fmt.max / amax / 2**margin`` (a float32); the tensor's own
    amax then joins the history.  The first step, and any step whose history amax is zero or not
    finite, keeps the previous scale (1 at first).  A stale scale can overflow the format:
    values beyond it saturate to ``fmt.max`` (Transformer Engine's casts saturate; fpsim's
    reading).  ``x * s`` is rounded once and the GEMM result multiplied by float32(1/s), as in
    :class:`CurrentScaling`."""
    fmt: str = "float8_e4m3fn"
    history: int = 16
    algo: str = "max"
    margin: int = 0
    rounding: str = "rne"

    def __post_init__(self):
        CurrentScaling(self.fmt, self.rounding, self.margin)        # the shared checks
        if isinstance(self.history, bool) or not isinstance(self.history, int) \
                or not 1 <= self.history <= 4096:
            raise ValueError(f"history must be an int in 1..4096, got {self.history!r}")
        if self.algo not in ("max", "most_recent"):
            raise ValueError(f"algo must be 'max' or 'most_recent', got {self.algo!r}")

    def make(self):
        return _DelayedTensor(self)

    def __str__(self):
        return f"{self.fmt} (delayed scale, history {self.history}, {self.algo})"


class _DelayedTensor(_Cached):
    axis_free = True

    def __init__(self, spec: DelayedScaling):
        super().__init__()
        import dataclasses
        f = check_format(spec.fmt)
        self.spec, self.fmt = spec, f
        self.sat = dataclasses.replace(f, saturate=True, name=None)
        self.policy = DelayedScale(f.max, spec.history, spec.algo, spec.margin)

    @property
    def amaxes(self):
        return self.policy.amaxes

    @property
    def scale(self):
        return self.policy.scale

    def round(self, x, axis, gemm, seed):
        q, _, inv = scaled_round(x, self.policy.scale, self.sat, self.spec.rounding, seed)
        self.policy.observe(float(np.max(np.abs(x.astype(np.float64)), initial=0.0)))
        return q, self.fmt, inv


@dataclass(frozen=True)
class NVFP4Scaling:
    """NVFP4's two levels (NVIDIA 2025, "Pretraining large language models with NVFP4"): the
    tensor times a per-tensor float32 scale ``s = 6 * 448 / amax`` (at most float32's largest
    value), so that every block scale ``amax_block * s / 6`` fits E4M3, is rounded into
    ``fpsim.format("nvfp4")`` (blocks of 16 along the GEMM's reduction axis, a UE4M3 scale per
    block) or, with ``tiles=True``, ``"nvfp4_16x16"`` (the recipe's weights); the GEMM result is
    multiplied by float32(1/s) per operand.  fpsim's choice: ``x * s`` is formed in float64
    (exact for float32 tensors) before the block rounding."""
    tiles: bool = False
    rounding: str = "rne"

    def __post_init__(self):
        _check_rounding(self.rounding)
        if not isinstance(self.tiles, bool):
            raise ValueError(f"tiles must be True or False, got {self.tiles!r}")

    @property
    def fmt(self):
        return _format("nvfp4_16x16" if self.tiles else "nvfp4")

    def make(self):
        return _NVFP4Tensor(self)

    def __str__(self):
        return "NVFP4 (" + ("16x16 tiles" if self.tiles else "1x16 blocks") + \
            (", sr)" if self.rounding == "sr" else ")")


class _NVFP4Tensor(_RoundTensor):
    def __init__(self, spec: NVFP4Scaling):
        _Cached.__init__(self)
        self.spec, self.axis_free = spec, False

    def round(self, x, axis, gemm, seed):
        f = self.spec.fmt
        x64 = np.asarray(x, np.float64)
        s = tensor_scale(6.0 * 448.0, float(np.max(np.abs(x64), initial=0.0)), 0, 1.0)
        q = quantize_along(x64 * s, f, axis, self.spec.rounding, seed)
        return q.astype(np.float32), f, float(np.float32(1.0 / s))   # values of 6-bit sig.


class TileScales(np.ndarray):
    """Per-chunk scales beside an operand: one per ``tile`` elements of its reduction axis (the
    scale of :class:`TileScaling`); transposing keeps ``tile``."""

    def __new__(cls, values, tile):
        obj = np.asarray(values, np.float64).view(cls)
        obj.tile = tile
        return obj

    def __array_finalize__(self, obj):
        self.tile = getattr(obj, "tile", None)


@dataclass(frozen=True)
class TileScaling:
    """Fine-grained scaling as DeepSeek-V3 trains in FP8 (technical report, section 3.3.1): the
    elements in ``fmt`` (E4M3), one float32 scale ``amax / fmt.max`` per ``tile`` elements
    along the GEMM's reduction axis (1 x 128, activations and errors) or per ``(t, t)`` block
    of a matrix (128 x 128, weights), the blocks of ``BlockFormat(..., scale_format=float32)``.
    The GEMM runs on the elements, and each chunk of ``tile`` along K is multiplied by its two
    scales when the accumulator promotes it (``Accumulator(fmt, chunk=tile, inner=...)``; the
    recipe must use one), as the report dequantizes on the CUDA cores.  The scale returned to
    the datapath is an array: one scale per block along the reduction axis, repeated across the
    other axis for square blocks.  Linear layers and attention products only."""
    fmt: str = "float8_e4m3fn"
    tile: object = 128
    rounding: str = "rne"

    def __post_init__(self):
        _check_rounding(self.rounding)
        t = self.tile
        if isinstance(t, list):
            object.__setattr__(self, "tile", tuple(t))
            t = self.tile
        ok = (isinstance(t, int) and not isinstance(t, bool) and t >= 1) or \
            (isinstance(t, tuple) and len(t) == 2 and t[0] == t[1] and isinstance(t[0], int)
             and t[0] >= 1)
        if not ok:
            raise ValueError(f"tile must be an int or a square (t, t) pair, got {t!r}")
        self.block_format                                   # checks fmt now

    @property
    def block_format(self):
        return BlockFormat(check_format(self.fmt), self.tile, scale_format=_format("float32"))

    @property
    def chunk(self):
        return self.tile if isinstance(self.tile, int) else self.tile[0]

    def make(self):
        return _TileTensor(self)

    def __str__(self):
        t = self.tile if isinstance(self.tile, int) else f"{self.tile[0]}x{self.tile[1]}"
        return f"{self.fmt} ({t} tiles, float32 scales)"


class _TileTensor(_Cached):
    """Rounds each tensor once: runs along the reduction axis are cached per axis; square tiles
    of a matrix serve both orientations (forward and backward-data see one rounding of the
    weights), the scale array re-oriented for each."""

    def __init__(self, spec: TileScaling):
        super().__init__()
        self.spec, self.bf = spec, spec.block_format
        self.axis_free = False

    def __call__(self, x, axis, gemm, seed):
        x64 = np.asarray(x, np.float64)
        axis = axis % x64.ndim
        if isinstance(self.spec.tile, int):
            return super().__call__(x, axis, gemm, seed)
        if x64.ndim != 2:
            raise ValueError(f"{self.spec} tiles matrices; got a tensor of shape {x64.shape}")
        if self._last is None or self._last[0] is not x:
            mode, r_bits = rounding_mode(self.spec.rounding, None, self.bf.element)
            layout, _, elems, scales = value_block_quantize(x64, self.bf, None, mode, r_bits,
                                                            check_seed(seed, mode >= SR))
            self._last = (x, None, (layout.unflat(elems).astype(np.float32),
                                    layout.shaped_scales(scales)))
        elems, grid = self._last[2]
        t = self.spec.chunk                                  # grid: (rows / t, cols / t)
        if axis == 1:            # reduction along the columns: each row its blocks' scales
            full = np.repeat(grid, t, axis=0)[:x64.shape[0]]
        else:                    # along the rows: each column its blocks' scales
            full = np.repeat(grid, t, axis=1)[:, :x64.shape[1]]
        return elems, self.bf.element, TileScales(full, t)

    def round(self, x, axis, gemm, seed):                    # runs along ``axis``
        mode, r_bits = rounding_mode(self.spec.rounding, None, self.bf.element)
        layout, _, elems, scales = value_block_quantize(np.asarray(x, np.float64), self.bf,
                                                        axis, mode, r_bits,
                                                        check_seed(seed, mode >= SR))
        return (layout.unflat(elems).astype(np.float32), self.bf.element,
                TileScales(layout.shaped_scales(scales), self.spec.tile))


@dataclass(frozen=True)
class GradScaling:
    """Radix-4 FP4 errors with GradScale and two-phase rounding (Sun et al. 2020): each error
    tensor is rounded onto both radix-4 grids under one power-of-four scale; ``phase`` maps each
    backward GEMM to the grid (0 even, 1 odd) it takes."""
    fmt: str = "fp4_130"
    rounding: str = "rne"
    backward_data_phase: int = 0
    backward_weight_phase: int = 1

    def __post_init__(self):
        _check_rounding(self.rounding)
        GradScale(self.fmt)                      # checks fmt now
        for name in ("backward_data_phase", "backward_weight_phase"):
            if getattr(self, name) not in (0, 1):
                raise ValueError(f"{name} must be 0 (even grid) or 1 (odd grid), got "
                                 f"{getattr(self, name)!r}")

    def make(self):
        return _GradScaleTensor(self)

    def __str__(self):
        return f"{self.fmt} (GradScale, two-phase)"


class _GradScaleTensor(_Cached):
    """Both phases of an error tensor are rounded once; each backward GEMM takes its own."""
    axis_free = True

    def __init__(self, spec: GradScaling):
        super().__init__()
        self.spec, self.scale = spec, GradScale(spec.fmt, rounding=spec.rounding)

    def round(self, x, axis, gemm, seed):
        self.scale.seed = (seed - 2 * self.scale.steps) % 2**63   # GradScale adds it back
        phases = self.scale(x)
        return phases, self.scale.formats(self.scale.exponent)

    def __call__(self, x, axis, gemm, seed):
        phases, fmts = super().__call__(x, axis, gemm, seed)
        p = self.spec.backward_weight_phase if gemm == "backward_weight" \
            else self.spec.backward_data_phase
        return phases[p], fmts[p], 1.0


class _Exact:
    """No rounding: the float32 values as they are."""

    def __call__(self, x, axis, gemm, seed):
        return x, None, 1.0

    def forget(self):
        pass


def as_scheme(spec):
    """A recipe field's value as a scheme with ``make()``: None (no rounding), a format or its
    name (rounded to nearest-even), or a scheme object."""
    if spec is None or hasattr(spec, "make"):
        return spec
    return Round(spec)


def make_quantizer(spec):
    spec = as_scheme(spec)
    return _Exact() if spec is None else spec.make()
