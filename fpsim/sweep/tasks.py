"""What one cell of a sweep computes: a table of task kinds, each with its settings (and their
defaults), its checks and its metrics.

- ``train``: one training run of :func:`fpsim.nn.training.train`; metrics: final test accuracy
  and loss, the last epoch's training loss and accuracy, validation bits per character (text
  models; NaN otherwise), and ``bits``, the widest GEMM operand of the recipe
  (:meth:`fpsim.nn.Recipe.operand_bits`).
- ``gemm_error``: ``rows`` independent dot products of length ``k`` through an accumulator (or a
  matrix engine), against their exact values.  Operands are drawn from ``data`` ("uniform":
  U[0, 1), where every term has one sign and swamping shows, as in Wang et al. 2018's
  accumulation study; "signed": U[-1, 1); "normal": N(0, 1)) and rounded to nearest in ``input``.
  The exact value of each dot product is ``math.fsum`` of the float64 products (each exact:
  the input format is checked to have at most 26 significand bits), rounded once to float64.
  Metrics: mean, median and largest relative error ``|computed - exact| / |exact|`` over the
  rows (a row whose exact value is 0 counts 0 if computed exactly, else inf), and the number of
  non-finite results.
- ``quantize_error``: ``n`` float32 values from ``data`` (normal, uniform on [-1, 1), laplace,
  lognormal with a random sign), times ``scale``, quantized to ``format``; metrics: signal to
  quantization noise ratio in dB (-inf where a result is not finite), mean relative error over
  the nonzero inputs (inf for a non-finite result), the fractions that
  underflow to zero and that overflow (a non-finite result), and ``bits`` per element (a block
  format's element plus its share of the scale).

The distributions and sizes are fpsim's choices and are settings, so a sweep can change them.

>>> from fpsim.sweep.tasks import TASKS
>>> m = TASKS["quantize_error"].run(dict(TASKS["quantize_error"].defaults, seed=0))[0]
>>> m["bits"], 20 < m["snr_db"] < 40
(8.0, True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .._args import is_int

NONE = "none"          # TOML has no null: "none" switches a setting off
DEFAULT = "default"    # "default": the function's own default (train's lr and weight_decay)


@dataclass(frozen=True)
class Task:
    """A kind of cell: its settings with defaults and types, its metrics (the main one first)."""
    name: str
    defaults: dict
    types: dict           # setting -> one of the KINDS below
    metrics: tuple
    run: object           # settings -> (metrics dict, detail dict)
    check: object         # settings -> None; raises ValueError for settings that cannot run
    doc: str = ""

    def normal(self, key, v):
        """A value in its setting's normal form: an int given for a number setting becomes a
        float, so that 1 and 1.0 are the same cell."""
        if self.types.get(key, "").startswith("float") and isinstance(v, int) \
                and not isinstance(v, bool):
            return float(v)
        return v

    def check_value(self, key, v, where):
        """One value against its setting's type; a ValueError naming ``where``."""
        kind = self.types[key]
        ok, what = KINDS[kind]
        if not ok(v):
            raise ValueError(f"{where} must be {what}, got {v!r}")


def _int(v, low):
    return is_int(v) and v >= low


KINDS = {
    "str": (lambda v: isinstance(v, str) and v != "", "a non-empty string"),
    "int>=0": (lambda v: _int(v, 0), "an integer >= 0"),
    "int>=1": (lambda v: _int(v, 1), "an integer >= 1"),
    "int|none": (lambda v: v == NONE or _int(v, 1), 'an integer >= 1 or "none"'),
    "str|none": (lambda v: isinstance(v, str) and v != "", 'a name, or "none"'),
    "float": (lambda v: not isinstance(v, bool) and isinstance(v, (int, float))
              and math.isfinite(v), "a finite number"),
    "float>0": (lambda v: not isinstance(v, bool) and isinstance(v, (int, float))
                and math.isfinite(v) and v > 0, "a finite number > 0"),
    "float|default": (lambda v: v == DEFAULT or (not isinstance(v, bool) and isinstance(
        v, (int, float)) and math.isfinite(v) and v >= 0), 'a number >= 0 or "default"'),
    "int": (lambda v: not isinstance(v, bool) and isinstance(v, int), "an integer"),
}


def _opt(v):
    return None if v in (NONE, DEFAULT) else v


def _choice(name, v, allowed):
    if v not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(str, allowed))}; got {v!r}")


# ---------------------------------------------------------------------------------------- train

def _recipe(s):
    from ..nn import recipes
    return recipes.get(s["recipe"])


def _train_check(s):
    from ..data import DATASETS, TEXT_DATASETS
    from ..nn.models import MODELS, TEXT_MODELS
    _recipe(s)
    _choice("model", s["model"], MODELS)
    _choice("dataset", s["dataset"], DATASETS)
    if (s["model"] in TEXT_MODELS) != (s["dataset"] in TEXT_DATASETS):
        raise ValueError(f"model {s['model']!r} does not train on dataset {s['dataset']!r}")


def _train_run(s):
    from ..nn.training import train
    run = train(s["recipe"], s["model"], s["dataset"], epochs=s["epochs"], seed=s["seed"],
                batch_size=s["batch_size"], lr=_opt(s["lr"]), momentum=s["momentum"],
                weight_decay=_opt(s["weight_decay"]), progress=False)
    last = run["epochs"][-1]
    metrics = dict(test_accuracy=run["test_accuracy"], test_loss=run["test_loss"],
                   train_loss=last["loss"], train_accuracy=last["train_accuracy"],
                   bits_per_char=last.get("test_bits_per_char", math.nan),
                   bits=float(_recipe(s).operand_bits()))
    return metrics, dict(epochs=run["epochs"], settings=run["settings"])


TRAIN = Task(
    "train",
    defaults=dict(recipe="fp32", model="mlp", dataset="digits", epochs=5, batch_size=32,
                  lr=DEFAULT, momentum=0.9, weight_decay=DEFAULT),
    types=dict(recipe="str", model="str", dataset="str", epochs="int>=1", batch_size="int>=1",
               lr="float|default", momentum="float", weight_decay="float|default"),
    metrics=("test_accuracy", "test_loss", "train_loss", "train_accuracy", "bits_per_char",
             "bits"),
    run=_train_run, check=_train_check,
    doc="one training run (fpsim.nn.training.train)")


# ----------------------------------------------------------------------------------- gemm_error

DATA = ("uniform", "signed", "normal")


def _operands(s, rng):
    from ..quantize import quantize
    shape = (s["rows"], s["k"])
    draw = {"uniform": lambda: rng.random(shape),
            "signed": lambda: rng.uniform(-1.0, 1.0, shape),
            "normal": lambda: rng.standard_normal(shape)}[s["data"]]
    return [quantize(draw().astype(np.float32), s["input"]) for _ in range(2)]


def _accumulator(s):
    """The accumulator of a gemm_error cell: a float register, Kulisch, or an engine (with
    ``chunk``: promoted into an ``acc`` register every ``chunk`` products)."""
    from ..accum import Accumulator, KulischAccumulator
    from ..engines import engine
    chunk = _opt(s["chunk"])
    if s["engine"] != NONE:
        arch, sep, ins = s["engine"].partition(":")
        if not sep:
            raise ValueError(f"engine must be 'arch:instruction' (e.g. "
                             f"'hopper:wgmma.m64n8k32.f32.e4m3.e4m3') or 'none'; got "
                             f"{s['engine']!r}")
        eng = engine(arch, ins)
        return eng if chunk is None else Accumulator(s["acc"], chunk=chunk, inner=eng,
                                                     rounding=s["rounding"])
    if s["order"] == "kulisch":
        if chunk is not None:
            raise ValueError("chunk must be 'none' with order = 'kulisch' (one exact sum)")
        return KulischAccumulator(s["acc"])
    return Accumulator(s["acc"], chunk=chunk, rounding=s["rounding"], order=s["order"],
                       sr_bits=_opt(s["sr_bits"]))


def _gemm_check(s):
    from ..formats import FloatFormat, format as _format
    _choice("data", s["data"], DATA)
    _choice("order", s["order"], ("sequential", "pairwise", "kulisch"))
    f = _format(s["input"])
    if not isinstance(f, FloatFormat) or f.man_bits > 25:
        raise ValueError(f"input must be a float format with at most 25 fraction bits (so that "
                         f"float64 holds every product exactly); got {s['input']!r}")
    if _opt(s["product"]) is not None:
        from .._args import check_arith_format
        check_arith_format(_format(s["product"]), "product")
    acc = _accumulator(s)
    eng = getattr(acc, "inner", None) or acc
    if hasattr(eng, "a_format") and f.bits <= 16:   # an engine: every input value on its grid
        from ..quantize import quantize               # (wider inputs: the engine checks them)
        v = f.values()
        for name in ("a_format", "b_format"):
            g = getattr(eng, name)
            if not np.array_equal(quantize(v, g, rounding="rtz"), v):
                raise ValueError(f"input {s['input']!r} has values that the engine's operand "
                                 f"format {g} does not hold; use input = {str(g)!r}")


def _gemm_run(s):
    from ..gemm import gemm
    rng = np.random.default_rng([s["seed"], 16])
    a, b = _operands(s, rng)
    got = gemm(a[:, None, :], b[:, :, None], acc=_accumulator(s), product=_opt(s["product"]),
               a_format=s["input"], b_format=s["input"], seed=s["seed"]).reshape(-1)
    got = got.astype(np.float64)
    prods = a.astype(np.float64) * b.astype(np.float64)        # exact: <= 26-bit significands
    exact = np.array([math.fsum(r) for r in prods])
    err = np.abs(got - exact)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(exact != 0, err / np.abs(exact), np.where(err == 0, 0.0, np.inf))
    rel = np.where(np.isfinite(got), rel, np.inf)
    metrics = dict(rel_error_mean=float(rel.mean()), rel_error_median=float(np.median(rel)),
                   rel_error_max=float(rel.max()), nonfinite=int((~np.isfinite(got)).sum()))
    return metrics, {}


GEMM_ERROR = Task(
    "gemm_error",
    defaults=dict(acc="float16", chunk=NONE, order="sequential", rounding="rne", sr_bits=NONE,
                  engine=NONE, product=NONE, input="e5m2", data="uniform", k=4096, rows=64),
    types=dict(acc="str", chunk="int|none", order="str", rounding="str", sr_bits="int|none",
               engine="str|none", product="str|none", input="str", data="str", k="int>=1",
               rows="int>=1"),
    metrics=("rel_error_mean", "rel_error_median", "rel_error_max", "nonfinite"),
    run=_gemm_run, check=_gemm_check,
    doc="relative error of dot products through an accumulator or engine")


# ------------------------------------------------------------------------------- quantize_error

QDATA = ("normal", "uniform", "laplace", "lognormal")


def _format_bits(f) -> float:
    """Bits per element; a block format's scale shared among its elements."""
    from ..formats import BlockFormat
    if not isinstance(f, BlockFormat):
        return float(f.bits)
    size = 1 if f.block is None else (math.prod(f.block) if isinstance(f.block, tuple)
                                      else f.block)
    return f.element.bits + (0.0 if f.block is None else f.scale_bits / size)


def _quantize_check(s):
    from ..formats import format as _format
    from ..quantize import quantize
    _choice("data", s["data"], QDATA)
    _format(s["format"])
    quantize(np.zeros(32, np.float32), s["format"], rounding=s["rounding"],
             sr_bits=_opt(s["sr_bits"]), seed=0)


def _quantize_run(s):
    from ..formats import format as _format
    from ..quantize import quantize
    rng = np.random.default_rng([s["seed"], 17])
    n = s["n"]
    x = {"normal": lambda: rng.standard_normal(n),
         "uniform": lambda: rng.uniform(-1.0, 1.0, n),
         "laplace": lambda: rng.laplace(0.0, 1.0, n),
         "lognormal": lambda: rng.choice([-1.0, 1.0], n) * rng.lognormal(0.0, 1.0, n)
         }[s["data"]]()
    x = (x * s["scale"]).astype(np.float32)
    q = quantize(x, s["format"], rounding=s["rounding"], sr_bits=_opt(s["sr_bits"]),
                 seed=s["seed"]).astype(np.float64)
    x = x.astype(np.float64)
    noise = np.sum((x - q) ** 2)
    nz = x != 0
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(np.isfinite(q[nz]), np.abs(q[nz] - x[nz]) / np.abs(x[nz]), np.inf)
    signal = np.sum(x ** 2)
    if not math.isfinite(noise):
        snr = -math.inf                                # a result that is not finite
    elif noise == 0 or signal == 0:
        snr = math.inf if noise == 0 else -math.inf
    else:
        snr = 10 * math.log10(signal / noise)
    metrics = dict(snr_db=float(snr),
                   rel_error_mean=float(rel.mean()) if rel.size else 0.0,
                   underflow=float(np.mean(q[nz] == 0)) if nz.any() else 0.0,
                   overflow=float(np.mean(~np.isfinite(q))),
                   bits=_format_bits(_format(s["format"])))
    return metrics, {}


QUANTIZE_ERROR = Task(
    "quantize_error",
    defaults=dict(format="float8_e4m3fn", rounding="rne", sr_bits=NONE, data="normal", scale=1.0,
                  n=65536),
    types=dict(format="str", rounding="str", sr_bits="int|none", data="str", scale="float>0",
               n="int>=1"),
    metrics=("snr_db", "rel_error_mean", "underflow", "overflow", "bits"),
    run=_quantize_run, check=_quantize_check,
    doc="signal to quantization noise of a format on a distribution")


TASKS = {t.name: t for t in (TRAIN, GEMM_ERROR, QUANTIZE_ERROR)}
