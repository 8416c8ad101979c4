"""Scaling policies of issue 14: Transformer Engine's delayed scaling against a step-by-step
reference of the amax history written here, and the modern recipes' settings against their
sources."""

import math

import ml_dtypes
import numpy as np
import pytest

import fpsim
from fpsim import nn
from fpsim.nn import recipes


def delayed_reference(tensors, fmax, history, algo, margin, dtype):
    """Per step: (values, scale used).  The scale of step t comes from the amaxes of steps
    t-history..t-1 (max or the most recent); 1 before any, kept when that amax is 0 or not
    finite; values = x * s rounded to nearest-even by ml_dtypes and clipped to +-fmax."""
    out, amaxes, s = [], [], 1.0
    for x in tensors:
        y = np.clip(x.astype(np.float64) * s, -fmax, fmax)   # saturating cast
        out.append(((y.astype(dtype).astype(np.float64)), s))
        amaxes.append(float(np.abs(x).max()))
        window = amaxes[-history:]
        a = max(window) if algo == "max" else window[-1]
        if 0 < a < math.inf:
            s = float(np.float32(fmax / a / 2.0 ** margin))
    return out


@pytest.mark.parametrize("fmt, dtype, history, algo, margin", [
    ("float8_e4m3fn", ml_dtypes.float8_e4m3fn, 3, "max", 0),
    ("float8_e5m2", ml_dtypes.float8_e5m2, 1, "max", 1),
    ("float8_e4m3fn", ml_dtypes.float8_e4m3fn, 4, "most_recent", 2)])
def test_delayed_scaling_follows_the_amax_history(fmt, dtype, history, algo, margin):
    """Tensors whose amax rises (stale scales overflow: saturation), falls, hits zero and holds
    Inf-free outliers; every step's values and scale against the reference."""
    rng = np.random.default_rng(30)
    mags = [1.0, 8.0, 64.0, 0.5, 0.0, 3.0, 1e-3, 1e-3, 200.0, 1.0]
    tensors = [(rng.standard_normal(50) * m).astype(np.float32) for m in mags]
    fmax = float(ml_dtypes.finfo(dtype).max)
    want = delayed_reference(tensors, fmax, history, algo, margin, dtype)
    q = nn.DelayedScaling(fmt, history, algo, margin).make()
    for step, (x, (values, s)) in enumerate(zip(tensors, want)):
        got, f, scale = q(x, -1, "forward", step)
        q.forget()                                         # the next step's tensor is new
        assert np.array_equal(got.astype(np.float64), values), step
        assert scale == float(np.float32(1.0 / s)) and f == fpsim.format(fmt), step


def test_delayed_scaling_uses_one_history_entry_per_tensor_and_step():
    """A tensor read by two GEMMs of a step (weights: forward and backward-data) is rounded
    once and counted once."""
    q = nn.DelayedScaling(history=2).make()
    w = np.full(3, 2.0, np.float32)
    q(w, -1, "forward", 0)
    q(w, 0, "backward_data", 0)
    assert q.amaxes == [2.0]
    with pytest.raises(ValueError, match="algo"):
        nn.DelayedScaling(algo="mean")
    with pytest.raises(ValueError, match="history"):
        nn.DelayedScaling(history=0)


def test_te_fp8_delayed_recipe():
    """Transformer Engine's DelayedScaling with the issue's settings: E4M3 weights and
    activations, E5M2 errors (HYBRID), history 16, max, margin 0; float32 accumulation."""
    r = recipes.get("te_fp8_delayed")
    for role, fmt in (("weights", "float8_e4m3fn"), ("activations", "float8_e4m3fn"),
                      ("errors", "float8_e5m2")):
        sch = getattr(r, role)
        assert isinstance(sch, nn.DelayedScaling) and fpsim.format(sch.fmt) == fpsim.format(fmt)
        assert (sch.history, sch.algo, sch.margin) == (16, "max", 0)
    assert all(r.acc[g] == fpsim.Accumulator(fpsim.FloatFormat(8, 23)) for g in r.acc)
    assert r.master is None and r.gradients is None


@pytest.mark.parametrize("name, elements", [("mxfp8_ocp", ((4, 3), (4, 3), (5, 2))),
                                            ("mxfp6_ocp", ((3, 2), (3, 2), (3, 2)))])
def test_ocp_mx_recipes(name, elements):
    """OCP MX v1.0: blocks of 32 with an E8M0 scale (exponents -127..127 and a NaN code)."""
    r = recipes.get(name)
    for role, (e, m) in zip(("weights", "activations", "errors"), elements):
        f = getattr(r, role).fmt
        assert (f.element.exp_bits, f.element.man_bits, f.block) == (e, m, 32)
        assert (f.scale_min, f.scale_max, f.nan_scale) == (-127, 127, True)
    assert all(r.acc[g] == fpsim.Accumulator("float32") for g in r.acc)
