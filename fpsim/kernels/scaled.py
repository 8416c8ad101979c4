"""Blocks with value scales (NVFP4's UE4M3 scales, DeepSeek-V3's float32 tile scales) in runs of
``n`` along rows of length ``L``, as the flat kernel order of :mod:`block` lays them out.

Per block: ``amax`` (NaN and Inf make the block NaN), the scale ``S = amax / el_max`` rounded
once to nearest-even into the scale format (saturating; at least its smallest positive value; 1
for an all-zero block), and every element ``x / S`` rounded once into the element format
(saturating) with the requested mode; ``out = element * S``.  Exactness is that of
``fpsim.quantize.value_block_quantize`` (its docstring has the argument): both quotients are
rounded through :func:`arith.exact_op` and :func:`arith.round_sum` on operands brought within
2**+-480 by the same clamps, and the product ``element * S`` has at most 8 + 24 bits.
"""

import math

import numpy as np
from numba import njit, prange

from .arith import OP_DIV, exact_op, round_sum
from .block import amax_run, run_bounds, run_grid
from .rounding import RNE, SR, random_word

LO_CLAMP, HI_CLAMP, TINY = 2.0 ** -400, 2.0 ** 400, 2.0 ** -470


@njit(cache=True)
def scaled_block(x, vals, elems, lo, hi, el_max, el, sf, sf_min, mode, r_bits, key):
    """Block lo..hi: its scale (NaN for a NaN block), values and elements written."""
    e_man, e_emin, e_maxv, e_mn, e_spec, e_sat, e_sub = el
    s_man, s_emin, s_maxv, s_mn, s_spec, s_sat, s_sub = sf
    amax, nan = amax_run(x, lo, hi)
    if nan or not amax < np.inf:
        for i in range(lo, hi):
            vals[i] = np.nan
            elems[i] = np.nan
        return np.nan
    if amax == 0.0:
        s = 1.0
    else:
        a = min(max(amax, LO_CLAMP), HI_CLAMP)
        qh, ql = exact_op(OP_DIV, a, el_max, 0.0, RNE)
        s = round_sum(qh, ql, np.uint64(0), s_man, s_emin, s_maxv, s_mn, s_spec, s_sat, s_sub,
                      RNE, 0)
        if s <= 0.0:
            s = sf_min
    m, e = math.frexp(s)
    shift = math.ldexp(1.0, -e)                   # exact: S and x scaled by the same power of 2
    ss = s * shift
    tiny = math.ldexp(TINY, e)
    for i in range(lo, hi):
        v = np.float64(x[i])
        if v != 0.0 and abs(v) < tiny:          # before the shift, which could flush it
            xs = TINY if v > 0 else -TINY
        else:
            xs = min(max(v * shift, -HI_CLAMP), HI_CLAMP)
        qh, ql = exact_op(OP_DIV, xs, ss, 0.0, mode)
        u = random_word(key, i) if mode >= SR else np.uint64(0)
        q = round_sum(qh, ql, u, e_man, e_emin, e_maxv, e_mn, e_spec, e_sat, e_sub, mode, r_bits)
        elems[i] = q
        vals[i] = q * s
    return s


@njit(cache=True, parallel=True)
def scaled_runs(x, vals, elems, scales, length, n, el_max, el, sf, sf_min, mode, r_bits, key):
    """Rows of ``length`` in runs of ``n``: scales[row * nbl + b] for block b of each row."""
    total, group = run_grid(x.size, length, n)
    for g in prange((total + group - 1) // group):
        for t in range(g * group, min(total, (g + 1) * group)):
            lo, hi = run_bounds(t, length, n)
            scales[t] = scaled_block(x, vals, elems, lo, hi, el_max, el, sf, sf_min, mode,
                                     r_bits, key)
