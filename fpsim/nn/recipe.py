"""A recipe: the arithmetic of a training run, from the formats of its tensors to the update.

>>> import fpsim
>>> from fpsim.nn import Recipe
>>> mine = Recipe("e4m3_fp16acc", weights="e4m3", activations="e4m3", errors="e5m2",
...               acc=fpsim.Accumulator("float16", chunk=32), master="float16",
...               update_rounding="sr", keep=("first", "last"))
>>> mine.accumulator("backward_weight").chunk
32
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field

from .._args import ROUNDINGS, check_format
from ..accum import Accumulator, KulischAccumulator
from ..engines import MatrixEngine
from ..formats import BlockFormat
from .quantizers import GEMMS, Round, as_scheme


@dataclass(frozen=True)
class Recipe:
    """The arithmetic of a training run.

    weights, activations, errors : how each tensor is rounded before it enters a GEMM: None (kept
        as float32), a format or its name (nearest-even), or a scheme of
        :mod:`fpsim.nn.quantizers` (``Round(fmt, "sr")``, ``AutoflexScaling()``, ...).
    gradients : how the weight gradient (the backward-weight GEMM's result) is rounded.
    acc : the accumulator of all three GEMMs, or a dict ``{"forward": ..., "backward_data": ...,
        "backward_weight": ...}``; None (for a GEMM): numpy's float32 matmul.
    master : format of the master weights (and momentum), rounded into after each update; None:
        float32; or a scheme (``Round("fp16_169", "sr")``, ``AutoflexScaling()``).
    update_rounding : the rounding when ``master`` is given as a format ("rne", "sr", ...).
    loss_scale : the loss gradient is multiplied by it and the weight gradients divided by it.
    keep : the GEMM layers ("first", "last") and products ("attention": Q K^T and P V) computed
        under ``keep_recipe`` instead (default: the float32 baseline), as papers keep them at
        higher precision.
    rht_seed : None, or the seed of the random Hadamard transform applied to both inputs of
        every Linear's weight-gradient GEMM along the batch axis, in blocks of 16
        (:func:`fpsim.scaling.random_hadamard`; the NVFP4 recipe; one sign vector for the whole
        run, fpsim's choice).
    source : the paper, section and table the recipe comes from.
    """
    name: str
    weights: object = None
    activations: object = None
    errors: object = None
    gradients: object = None
    acc: object = None
    master: object = None
    update_rounding: str = "rne"
    loss_scale: float = 1.0
    keep: tuple = ()
    keep_recipe: object = None
    rht_seed: object = None
    source: str = field(default="", compare=False)

    def __post_init__(self):
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 (frozen dataclass)
        for role in ("weights", "activations", "errors", "gradients"):
            set_(role, as_scheme(getattr(self, role)))
        accs = self.acc if isinstance(self.acc, dict) else {g: self.acc for g in GEMMS}
        bad = set(accs) - set(GEMMS)
        if bad:
            raise ValueError(f"acc keys must be among {', '.join(GEMMS)}; got {sorted(bad)}")
        for g, a in accs.items():
            if a is not None and not isinstance(a, (Accumulator, KulischAccumulator,
                                                    MatrixEngine)):
                raise ValueError(f"acc[{g!r}] must be an fpsim.Accumulator, KulischAccumulator, "
                                 f"a matrix engine (fpsim.engine) or None, got {a!r}")
        set_("acc", {g: accs.get(g) for g in GEMMS})
        if self.rht_seed is not None and (isinstance(self.rht_seed, bool) or not isinstance(
                self.rht_seed, int) or not 0 <= self.rht_seed < 2**63):
            raise ValueError(f"rht_seed must be None or an int in 0..2**63-1, got "
                             f"{self.rht_seed!r}")
        if self.update_rounding not in ROUNDINGS:
            raise ValueError(f"update_rounding must be one of {', '.join(ROUNDINGS)}; got "
                             f"{self.update_rounding!r}")
        if isinstance(self.loss_scale, bool) or not isinstance(self.loss_scale, numbers.Real) \
                or not math.isfinite(self.loss_scale) or self.loss_scale <= 0:
            raise ValueError(f"loss_scale must be a finite number > 0, got {self.loss_scale!r}")
        if isinstance(self.keep, str):
            raise ValueError(f"keep must be a tuple such as ('first', 'last'), got {self.keep!r}")
        if self.master is not None and not hasattr(self.master, "make"):
            set_("master", Round(self.master, self.update_rounding))
        set_("keep", tuple(self.keep))
        if set(self.keep) - {"first", "last", "attention"}:
            raise ValueError(f"keep may name 'first', 'last' and 'attention' only, got "
                             f"{self.keep!r}")
        if self.keep_recipe is None:
            set_("keep_recipe", FP32 if self.keep else None)
        elif isinstance(self.keep_recipe, str):
            set_("keep_recipe", get(self.keep_recipe))
        elif not isinstance(self.keep_recipe, Recipe):
            raise ValueError(f"keep_recipe must be a Recipe or a preset name, got "
                             f"{self.keep_recipe!r}")

    def accumulator(self, gemm):
        return self.acc[gemm]

    def operand_bits(self) -> int:
        """The width in bits of the widest GEMM operand element (weights, activations, errors):
        32 for a float32 tensor, a block format's element width (its scales not counted).

        >>> from fpsim.nn import recipes
        >>> [recipes.get(r).operand_bits() for r in ("fp32", "hfp8_sun2019", "fp4_sun2020")]
        [32, 8, 4]
        """
        def bits(scheme):
            if scheme is None:
                return 32
            if hasattr(scheme, "bits"):                  # IntScaling
                return scheme.bits
            f = check_format(scheme.fmt)
            return f.element.bits if isinstance(f, BlockFormat) else f.bits
        return max(bits(getattr(self, r)) for r in ("weights", "activations", "errors"))

    def describe(self) -> dict:
        """The recipe as plain strings (for JSON and tables)."""
        s = lambda v: "float32" if v is None else str(v)  # noqa: E731
        d = {"name": self.name}
        for role in ("weights", "activations", "errors", "gradients"):
            d[role] = s(getattr(self, role))
        for g in GEMMS:
            a = self.acc[g]
            d[f"{g}_acc"] = "numpy float32 matmul" if a is None else _acc_str(a)
        d["master"] = s(self.master)
        d["loss_scale"] = self.loss_scale
        d["keep"] = f"{', '.join(self.keep)} in {self.keep_recipe.name}" if self.keep else "none"
        d["rht"] = "none" if self.rht_seed is None else f"wgrad inputs, seed {self.rht_seed}"
        d["source"] = self.source
        return d


def _acc_str(a) -> str:
    if isinstance(a, KulischAccumulator):
        return f"Kulisch -> {a.out_format}"
    if isinstance(a, MatrixEngine):
        return str(a)
    extra = "" if a.chunk is None else f", chunk {a.chunk}"
    extra += "" if a.order == "sequential" else f", {a.order}"
    extra += "" if a.rounding == "rne" else f", {a.rounding}"
    extra += "" if a.inner is None else f", inner {_acc_str(a.inner)}"
    return str(a.fmt) + extra


FP32 = Recipe("fp32", source="float32 NumPy baseline: no rounding beyond float32, numpy matmul")


# The presets (fpsim.nn.recipes registers the papers'; users add their own with register()).
RECIPES: dict = {}


def get(name) -> Recipe:
    """The preset called ``name`` (a Recipe passes through)."""
    if isinstance(name, Recipe):
        return name
    if name not in RECIPES:
        raise ValueError(f"recipe must be one of {', '.join(RECIPES)}; got {name!r}")
    return RECIPES[name]


def register(recipe: Recipe) -> Recipe:
    """Add a user recipe to the presets (so `fpsim train --recipe` and compare find it)."""
    if not isinstance(recipe, Recipe):
        raise ValueError(f"recipe must be an fpsim.nn.Recipe, got {recipe!r}")
    RECIPES[recipe.name] = recipe
    return recipe
