"""The round-to-nearest-even fast path of the GEMM kernel (float32 lanes, double rounding argued
harmless in kernels/gemm.py) against the exact TwoSum path, on every accumulator value of the
benchmark configuration: 1-6-9 accumulator, e5m2 x e5m2 products.  The exact path itself is
checked against the Fraction reference in test_gemm.py."""

import numpy as np
import pytest

import fpsim
from fpsim import ops
from fpsim.kernels import gemm as kg

ACC = fpsim.format("fp16_169")


def run(kind, A, B, chunk=0):
    wide = kind != kg.LEAN
    dt = np.float64 if wide else np.float32
    fa = ops._fmt_tuple(ACC) + (0, 0)
    c = np.empty((1, A.shape[0], B.shape[1]), dt)
    kg.gemm_float(A[None].astype(dt), B[None].astype(dt), c, kind, chunk, False, fa,
                  ops._product_args(None), ops._lean_constants(ACC, wide), np.uint64(0))
    return c[0].astype(np.float64)


def e5m2_products():
    v = fpsim.format("float8_e5m2").values()
    p = np.unique(np.multiply.outer(v, v).reshape(-1))
    return p[np.isfinite(p)]


def test_lean_path_is_exact_for_every_register_value_and_product():
    assert ops._lean_lanes(fpsim.Accumulator(ACC), fpsim.format("e5m2"), fpsim.format("e5m2"),
                           None) == 32
    regs = ACC.values()                           # every finite 1-6-9 value
    prods = e5m2_products()
    A = np.stack([regs, np.ones_like(regs)], axis=1)
    B = np.stack([np.ones_like(prods), prods])   # column j: reg*1 then + product j
    lean, exact = run(kg.LEAN, A, B), run(kg.EXACT, A, B)
    assert lean.shape == (regs.size, prods.size)
    same = (lean == exact) | (np.isnan(lean) & np.isnan(exact))
    assert same.all(), (A[np.nonzero(~same)[0][0]], B[:, np.nonzero(~same)[1][0]])
    assert np.array_equal(np.signbit(lean), np.signbit(exact))


@pytest.mark.parametrize("seed", [0, 1])
def test_lean_path_is_exact_for_chunk_sums(seed):
    """total + chunk sum: both 1-6-9 values (random pairs plus the largest and smallest)."""
    rng = np.random.default_rng(seed)
    vals = ACC.values()
    regs = np.concatenate([vals[:300], vals[-300:], rng.choice(vals, 1400)])
    others = np.concatenate([vals[:200], vals[-200:], rng.choice(vals, 1600)])
    A = np.stack([regs, np.ones_like(regs)], axis=1)
    B = np.stack([np.ones_like(others), others])
    # chunk=1: each product is its own chunk, so every step is a register + register addition
    lean, exact = run(kg.LEAN, A, B, chunk=1), run(kg.EXACT, A, B, chunk=1)
    same = (lean == exact) | (np.isnan(lean) & np.isnan(exact))
    assert same.all()
