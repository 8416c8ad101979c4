"""The arithmetic of one Linear or Conv2d layer (or of attention's two activation products)
under a recipe: its three GEMMs.

Forward ``y = x w^T``, backward-data ``dx = dy w`` and backward-weight ``dw = dy^T x`` each round
their operands as the recipe says (activations, weights, errors) and run through
:func:`fpsim.gemm` / :func:`fpsim.conv2d` and friends with the recipe's accumulator for that GEMM;
the weight gradient is then rounded into the recipe's gradient format.  A recipe with no
accumulator for a GEMM uses numpy's float32 matmul (the "fp32" baseline).  Nothing else is rounded
here: the result of a GEMM is the accumulator's value, as fpsim.gemm returns it.

Block formats run their blocks along each GEMM's reduction axis: for Linear, the input features
(forward), the output features (backward-data) and the batch (backward-weight); for Conv2d, the
channels (forward), the filters (backward-data) and the batch (backward-weight).
"""

from __future__ import annotations

import numpy as np

from .. import conv as _conv
from .._args import check_format
from ..gemm import gemm_values
from ..scaling import random_hadamard
from . import functional as F
from .quantizers import GEMMS, TileScales, make_quantizer

ROLES = ("activations", "weights", "errors", "gradients")
_KEYS = ROLES + ("accumulator", "activations_b")   # what a stochastic-rounding key is for


def _f64(x):
    return np.asarray(x, np.float64)


def mix_seed(*parts) -> int:
    """A 63-bit seed from integers (splitmix64 steps): the stochastic-rounding key of one tensor
    of one step, so a run's random bits depend on (seed, step, layer, tensor) only."""
    h = 0x9E3779B97F4A7C15
    for p in parts:
        h = (h ^ (int(p) & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        h = (h ^ (h >> 31)) * 0x94D049BB133111EB & 0xFFFFFFFFFFFFFFFF
        h ^= h >> 29
    return h >> 1


class Datapath:
    def __init__(self, recipe, index: int):
        self.recipe, self.index = recipe, index
        self.seed, self.step = 0, 0
        self.quantizers = {role: make_quantizer(getattr(recipe, role)) for role in ROLES}
        # the second activation of an activation x activation product has its own state
        self.quantizers["activations_b"] = make_quantizer(recipe.activations)

    def set_step(self, seed, step):
        self.seed, self.step = seed, step
        for q in self.quantizers.values():
            q.forget()

    # --- rounding of operands -----------------------------------------------------------------
    def _key(self, what, gemm):
        return mix_seed(self.seed, self.step, self.index, _KEYS.index(what),
                        (GEMMS + ("update",)).index(gemm))

    def _operand(self, role, x, axis, gemm, slot=0):
        """x rounded by the quantizer of ``role`` (``slot`` > 0: another product of the same
        layer, with quantizers of its own, as attention's two products are)."""
        name = role if slot == 0 else f"{role}@{slot}"
        if name not in self.quantizers:
            base = "activations" if role == "activations_b" else role
            self.quantizers[name] = make_quantizer(getattr(self.recipe, base))
        key = self._key(role, gemm) if slot == 0 else mix_seed(self._key(role, gemm), slot)
        v, f, scale = self.quantizers[name](x, axis, gemm, key)
        return v, ("float32" if f is None else f), scale

    def _acc(self, gemm):
        """gemm's accumulator keyword arguments (its stochastic-rounding key included)."""
        return dict(acc=self.recipe.accumulator(gemm), seed=self._key("accumulator", gemm))

    def _gemm(self, a, b, fa, fb, gemm):
        """fpsim.gemm of operands the recipe's quantizers have just rounded into fa and fb: the
        check that they lie in their formats (gemm's operand check) is skipped, as it would
        round them a second time."""
        return gemm_values(_f64(a), _f64(b), check_format(fa), check_format(fb),
                           **self._acc(gemm))

    @staticmethod
    def _scaled(c, scale):
        """The GEMM result times the operands' scales (float32 values stay float32)."""
        c = np.asarray(c)
        return c if scale == 1.0 else (c * scale).astype(c.dtype)

    def _gradient(self, dw):
        v, _, scale = self.quantizers["gradients"](dw, -1, "update", self._key("gradients",
                                                                               "update"))
        return self._scaled(v, scale)

    # --- Linear: x (N, in), w (out, in) -------------------------------------------------------
    def linear(self, x, w):
        xv, fx, sx = self._operand("activations", x, -1, "forward")
        wv, fw, sw = self._operand("weights", w, -1, "forward")
        return self._product(xv, wv.T, fx, fw, sx, _t(sw), "forward")

    def linear_backward_data(self, dy, w):
        dv, fd, sd = self._operand("errors", dy, -1, "backward_data")
        wv, fw, sw = self._operand("weights", w, 0, "backward_data")
        return self._product(dv, wv, fd, fw, sd, sw, "backward_data")

    def linear_backward_weight(self, dy, x):
        if self.recipe.rht_seed is not None:    # the NVFP4 recipe: both inputs through the
            dy, x = (random_hadamard(t, self.recipe.rht_seed, axis=0).astype(t.dtype)  # RHT
                     for t in (dy, x))
        dv, fd, sd = self._operand("errors", dy, 0, "backward_weight")
        xv, fx, sx = self._operand("activations", x, 0, "backward_weight")
        return self._gradient(self._product(dv.T, xv, fd, fx, _t(sd), sx, "backward_weight"))

    # --- Conv2d: x (N, C, H, W), w (F, C, kh, kw) ---------------------------------------------
    def conv(self, x, w, stride, padding):
        xv, fx, sx = self._operand("activations", x, 1, "forward")
        wv, fw, sw = self._operand("weights", w, 1, "forward")
        _no_tiles(sx, sw)
        if self.recipe.accumulator("forward") is None:
            return self._scaled(F.conv2d(xv, wv, stride, padding), sx * sw)
        y = _conv.conv2d_values(_f64(xv), _f64(wv), check_format(fx), check_format(fw), stride,
                                padding, **self._acc("forward"))
        return self._scaled(y, sx * sw)

    def conv_backward_data(self, dy, w, x_shape, stride, padding):
        dv, fd, sd = self._operand("errors", dy, 1, "backward_data")
        wv, fw, sw = self._operand("weights", w, 0, "backward_data")
        _no_tiles(sd, sw)
        if self.recipe.accumulator("backward_data") is None:
            return self._scaled(F.conv2d_backward_data(dv, wv, x_shape, stride, padding), sd * sw)
        dx = _conv.conv2d_backward_data_values(_f64(dv), _f64(wv), check_format(fd),
                                               check_format(fw), x_shape, stride, padding,
                                               **self._acc("backward_data"))
        return self._scaled(dx, sd * sw)

    def conv_backward_weight(self, dy, x, w_shape, stride, padding):
        dv, fd, sd = self._operand("errors", dy, 0, "backward_weight")
        xv, fx, sx = self._operand("activations", x, 0, "backward_weight")
        _no_tiles(sd, sx)
        if self.recipe.accumulator("backward_weight") is None:
            dw = F.conv2d_backward_weight(dv, xv, w_shape, stride, padding)
        else:
            dw = _conv.conv2d_backward_weight_values(_f64(dv), _f64(xv), check_format(fd),
                                                     check_format(fx), w_shape, stride, padding,
                                                     **self._acc("backward_weight"))
        return self._gradient(self._scaled(dw, sd * sx))

    # --- activation x activation: a (Bt, M, K) @ b (Bt, K, N), as attention's two products ------
    def matmul(self, a, b, slot=0):
        """c = a @ b (batched) of two activations (QK^T, attention times V): blocks along K.
        Each ``slot`` (one per product of a layer) has its own quantizers."""
        av, fa, sa = self._operand("activations", a, -1, "forward", slot)
        bv, fb, sb = self._operand("activations_b", b, -2, "forward", slot)
        return self._product(av, bv, fa, fb, sa, sb, "forward")

    def matmul_backward(self, dc, a, b, slot=0):
        """(da, db) = (dc @ b^T, a^T @ dc): errors against the other activation; da runs on the
        backward-data accumulator, db (a reduction over M, like a weight gradient) on the
        backward-weight one.  a and b: the objects the forward product was given."""
        dv, fd, sd = self._operand("errors", dc, -1, "backward_data", slot)
        bv, fb, sb = self._operand("activations_b", b, -1, "backward_data", slot)
        da = self._product(dv, np.swapaxes(bv, -1, -2), fd, fb, sd, _t(sb), "backward_data")
        av, fa, sa = self._operand("activations", a, -2, "backward_weight", slot)
        dv2, fd2, sd2 = self._operand("errors", dc, -2, "backward_weight", slot)
        db = self._product(np.swapaxes(av, -1, -2), dv2, fa, fd2, _t(sa), sd2,
                           "backward_weight")
        return da, db

    def _product(self, a, b, fa, fb, sa, sb, gemm):
        """a @ b through the recipe's accumulator for ``gemm`` (numpy's float32 matmul when it
        has none), the operands' scales applied: scalars multiply the result; arrays (tile
        scaling, one per chunk of K: sa (..., M, nb) beside a, sb (..., nb, N) beside b) are
        applied as the promoted accumulator adds each chunk, or to the operands first under
        numpy's matmul."""
        acc = self.recipe.accumulator(gemm)
        if not (isinstance(sa, np.ndarray) or isinstance(sb, np.ndarray)):
            c = np.matmul(a, b) if acc is None else self._gemm(a, b, fa, fb, gemm)
            return self._scaled(c, sa * sb)
        t = next(s.tile for s in (sa, sb) if isinstance(s, TileScales))
        nb = -(-a.shape[-1] // t)
        sa = sa if isinstance(sa, np.ndarray) else np.full(a.shape[:-1] + (nb,), sa)
        sb = sb if isinstance(sb, np.ndarray) else np.full(b.shape[:-2] + (nb, b.shape[-1]), sb)
        if acc is None:          # numpy's matmul of the dequantized operands (float32)
            a = a * np.repeat(np.asarray(sa), t, axis=-1)[..., :a.shape[-1]]
            b = b * np.repeat(np.asarray(sb), t, axis=-2)[..., :b.shape[-2], :]
            return np.matmul(a.astype(np.float32), b.astype(np.float32))
        if getattr(acc, "inner", None) is None or acc.chunk != t:
            raise ValueError(f"tile-scaled operands (tile {t}) need a promoted accumulator "
                             f"whose chunk is the tile (Accumulator(..., chunk={t}, "
                             f"inner=...)); {gemm} has {acc}")
        return gemm_values(_f64(a), _f64(b), check_format(fa), check_format(fb),
                           dequant=(sa, sb),
                           **self._acc(gemm)).astype(np.float32)


def _no_tiles(*scales):
    if any(isinstance(s, np.ndarray) for s in scales):
        raise ValueError("tile scaling (nn.TileScaling) is for Linear layers and attention, not "
                         "convolutions")


def _t(scale):
    """A scale beside a transposed operand: arrays transposed (last two axes), scalars as they
    are."""
    return np.swapaxes(scale, -1, -2) if isinstance(scale, np.ndarray) else scale
