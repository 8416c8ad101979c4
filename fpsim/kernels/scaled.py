"""Blocks with value scales (NVFP4's UE4M3 scales, DeepSeek-V3's float32 tile scales): runs of
``n`` along rows of length ``L`` and ``r x c`` tiles of matrices, in the flat kernel order of
:mod:`block`.

Per block: ``amax`` (NaN and Inf make the block NaN), the scale ``S = amax / el_max`` rounded
once to nearest-even into the scale format (saturating; at least its smallest positive value; 1
for an all-zero block), and every element ``x / S`` rounded once into the element format
(saturating) with the requested mode; ``out = element * S``.

Exact path: both quotients are rounded through :func:`arith.exact_op` and
:func:`arith.round_sum` on operands brought within 2**+-480 by the clamps that
``fpsim.quantize.value_block_quantize`` explains, and the product ``element * S`` has at most
8 + 24 bits.

Fast path (:func:`fast_quotient`): the element is the rounding of the float64 quotient
``fl(x / S)`` itself, in branch-free lanes.  Proof.  Let ``S`` have at most ``b`` significant bits
(a scale-format value, b = scale man_bits + 1), ``x`` any float64 with leading bit ``2**ex``,
``S`` in ``[2**es, 2**(es+1))``, and the exact quotient ``q = x / S`` in ``[2**eq, 2**(eq+1))``
(so ``eq >= ex - es - 1``) with ``fl(q)`` a normal float64.  For a point ``G`` that is a
multiple of ``2**g``, ``x - G*S`` is a multiple of ``2**min(ex - 52, g + es - b + 1)``, so if
``q != G``, ``|q - G| > 2**min(ex - es - 53, g - b)``, while ``|fl(q) - q| <= 2**(eq - 53) <=
2**(ex - es - 53)`` (half a float64 step in q's binade, also when fl(q) rounds up to
``2**(eq+1)``).  When ``g >= eq + b - 52`` the rounding error is strictly smaller than the
distance to ``G``: ``fl(q)`` lies on the same side of every such ``G`` as ``q`` and equals one
only when ``q`` does.  Every decision of a deterministic rounding into ``m`` fraction bits
compares with points of spacing at least ``2**(eq - m - 1)`` (the representable values and
the midpoints of q's binade, and the power of two above it); of ``sr`` with ``r`` bits,
``2**(eq - m - r)``.  So the decisions are those of the exact quotient when ``m + b <= 51``
(``m + r + b <= 52``).  An element whose quotient is zero, subnormal (below ``2**-1000``) or
infinite in float64 while ``x`` is not zero takes the exact path.

Exact ``sr`` (:func:`lane_sr`): the exact path rounds ``T + d`` with ``T`` the exact
quotient truncated to 53 bits and ``d`` its tail (``arith.round_sr_tail``): up iff ``R + rem >=
2**sh``, or ``R + rem == 2**sh - 1`` and a Bernoulli(d) draw.  The lanes find ``T`` exactly:
``fl(q)``, less one float64 step toward zero when the exact remainder ``x - fl(q)*S`` (one
fused multiply-add, exact for quotients within ``2**-470 .. 2**400``) has the other sign, and
round ``T`` with ``round_fast``, which decides ``R + rem >= 2**sh``.  The elements on the
boundary ``R + rem == 2**sh - 1`` with a nonzero remainder (probability ``2**-sh`` each) and
those outside that range take the exact path.  Where T lies more than 62 bits below the
quantum, :func:`far_sr` decides from u's top bits as the exact path does, and the cases where
those bits are all zero (probability at most ``2**-10``) take the exact path.
"""

import math

import numpy as np
from numba import njit, prange

from .arith import OP_DIV, exact_op, round_sum
from .bits import bits_f64, f64_bits, fma
from .block import amax_run, amax_tile, n_tiles, run_bounds, run_grid, tile_bounds
from .rounding import (ABS, IMPL, MANT, RDN, RNE, RTZ, RUP, SR, SRB, lane_nearest,
                       lane_supports, random_word, round_fast, sel)
from .rounding import supports as rounding_supports

LO_CLAMP, HI_CLAMP, TINY = 2.0 ** -400, 2.0 ** 400, 2.0 ** -470
NORMAL_Q = 2.0 ** -1000   # fast-path quotients at least this large (and finite) are normal
NORMAL32 = np.float32(2.0 ** -126)                     # ... in float32 lanes
SR_LO, SR_HI = 2.0 ** -470, 2.0 ** 400   # exact-sr lanes: the remainder exact, T normal


def fast_quotient(man_bits, emin, b, mode, r_bits):
    """Whether quotients by values of at most ``b`` significant bits may be rounded into a
    format of ``man_bits`` fraction bits in the fast lanes (proofs in the module docstring).
    The elements: ``b`` = the scale format's man_bits + 1, the mode of the call; the scales
    (amax / el_max): ``b`` = the element's man_bits + 1, nearest-even."""
    if not rounding_supports(man_bits, emin):
        return False
    if mode == SR:
        return True                        # the truncation is exact (lane_sr)
    if mode == SRB:
        return man_bits + r_bits + b <= 52
    return man_bits + b <= 51


def quotient_lanes32(man_bits, emin, emax, b, mode):
    """Whether float32 input may be divided by the scales and rounded nearest-even into the
    element format in float32 lanes (:func:`lane32`): the module docstring's fast-path proof
    with float32's 24-bit significand in place of float64's 53 - x has a quantum of 2**(ex - 23),
    the float32 quotient errs by at most 2**(eq - 24), so the decisions are those of the exact
    quotient when ``m + b <= 22`` and fl32(q) is normal and finite (else the element takes the
    exact path) - and ``lane_nearest`` in float32 lanes (``rounding.lane_supports``).  The
    element times S (at most 22 significant bits) is exact in float64."""
    return mode == RNE and man_bits + b <= 22 and lane_supports(man_bits, emin, emax, 32)


@njit(cache=True, inline="always")
def lane32(v, s32, lq32):
    """(element, whether the exact path must decide it) of float32 x = v by the float32 quotient
    (:func:`quotient_lanes32`)."""
    q = v / s32
    a = abs(q)
    return lane_nearest(q, lq32), (v != 0) & ((a < NORMAL32) | (a == np.inf))


@njit(cache=True, inline="always")
def block_scale(amax, nan, el_max, sf, sf_min, fast):
    """The block's scale S (NaN for a block holding a NaN or an Inf); ``fast``: from the float64
    quotient (:func:`fast_quotient` of the scale format)."""
    s_man, s_emin, s_maxv, s_mn, s_spec, s_sat, s_sub = sf
    if nan or not amax < np.inf:
        return np.nan
    if amax == 0.0:
        return 1.0
    a = min(max(amax, LO_CLAMP), HI_CLAMP)
    if fast:
        s, _ = round_fast(a / el_max, np.uint64(0), s_man, s_emin, s_maxv, s_mn, s_spec, s_sat,
                          s_sub, RNE, 0)
    else:
        qh, ql = exact_op(OP_DIV, a, el_max, 0.0, RNE)
        s = round_sum(qh, ql, np.uint64(0), s_man, s_emin, s_maxv, s_mn, s_spec, s_sat, s_sub,
                      RNE, 0)
    return sf_min if s <= 0.0 else s


@njit(cache=True)
def exact_element(v, s, el, mode, r_bits, u):
    """x / S rounded once into the element format through the exact arithmetic kernel: x and S
    both multiplied by 2**-e(S) (exact), x clamped (see the module docstring)."""
    e_man, e_emin, e_maxv, e_mn, e_spec, e_sat, e_sub = el
    e = math.frexp(s)[1]
    shift = math.ldexp(1.0, -e)
    if v != 0.0 and abs(v) < math.ldexp(TINY, e):      # before the shift, which could flush it
        xs = TINY if v > 0 else -TINY
    else:
        xs = min(max(v * shift, -HI_CLAMP), HI_CLAMP)
    qh, ql = exact_op(OP_DIV, xs, s * shift, 0.0, mode)
    return round_sum(qh, ql, u, e_man, e_emin, e_maxv, e_mn, e_spec, e_sat, e_sub, mode, r_bits)


@njit(cache=True, inline="always")
def lane(v, s, u, el, mode, r_bits):
    """(element, whether the exact path must decide it) of x = v: the float64 quotient rounded
    (deterministic modes and ``sr`` with r bits)."""
    e_man, e_emin, e_maxv, e_mn, e_spec, e_sat, e_sub = el
    q = v / s
    r, _ = round_fast(q, u, e_man, e_emin, e_maxv, e_mn, e_spec, e_sat, e_sub, mode, r_bits)
    return r, (v != 0.0) & ((abs(q) < NORMAL_Q) | (abs(q) == np.inf))


@njit(cache=True, inline="always")
def lane_sr(v, s, u, el):
    """As :func:`lane` for exact ``sr``: the 53-bit truncation T of the exact quotient rounded,
    and the flag of the elements the exact path decides (module docstring)."""
    e_man, e_emin, e_maxv, e_mn, e_spec, e_sat, e_sub = el
    q = v / s
    rest = fma(-q, s, v)                           # exact: remainder of a rounded quotient
    inexact = rest != 0.0
    bt = f64_bits(q) - np.int64(inexact & ((rest > 0.0) != (q > 0.0)))
    e = ((bt & ABS) >> np.int64(52)) - np.int64(1023)          # T is normal here
    sig = (bt & MANT) | IMPL
    shift_full = max(e, e_emin) - e_man - e + 52
    shift = min(shift_full, 62)
    full = np.int64(1) << shift
    rem = sig & (full - 1)
    edge = inexact & (np.int64(u >> np.uint64(64 - shift)) + rem == full - 1)
    # T far below the quantum (shift > 62): the exact rules decide from u's top bits (far_sr)
    up, undecided = far_sr(sig, shift_full, u, inexact)
    far = shift_full > 62
    neg = bt < 0
    mode = sel(far, sel(up, sel(neg, RDN, RUP), RTZ), SR)     # away from zero, or toward it
    r, _ = round_fast(bits_f64(bt), u, e_man, e_emin, e_maxv, e_mn, e_spec, e_sat, e_sub, mode,
                      0)
    a = abs(q)
    return r, ((v != 0.0) & ((a < SR_LO) | (a > SR_HI))) | (far & undecided) | \
        ((shift_full <= 62) & edge)


@njit(cache=True, inline="always")
def far_sr(sig, shift, u, inexact):
    """(up, undecided) of exact ``sr`` when T = sig * 2**(E-52) lies ``shift`` > 62 bits below
    the quantum, as the exact path decides.  An exact quotient (``arith.round_sum`` ->
    ``rounding._sr_up_small``): trailing zeros of sig stripped, then, within 62 bits, up iff
    (top ``shift'`` bits of u) + sig' >= 2**shift'; beyond, R < sig' (``compare_uniform``) is
    possible only if u's top min(shift' - 53, 64) bits are zero.  An inexact one
    (``arith.round_sr_tail``): not up unless u's top min(shift - 53, 64) bits are zero.  The
    undecided cases (those zero bits; probability at most 2**-10) take the exact path."""
    low = sig & -sig                                 # the lowest set bit, a power of two
    tz = (f64_bits(np.float64(low)) >> np.int64(52)) - np.int64(1023)
    tz = sel(inexact, np.int64(0), tz)
    sh = shift - tz
    near = sh <= 62
    shn = min(max(sh, 1), 62)
    up = near & (((np.int64(u >> np.uint64(64 - shn)) + (sig >> tz)) >> shn) != 0)
    t = min(max(sh - 53, 1), 64)
    top_zero = (u >> np.uint64(64 - t)) == np.uint64(0)
    return up & (inexact == False), ((near == False) | inexact) & top_zero  # noqa: E712


@njit(cache=True)
def fast_lanes(x, vals, elems, lo, hi, s, el, mode, r_bits, key, use32, lq32):
    """Elements lo..hi in the lanes (a loop of its own, which LLVM vectorises); returns how
    many the exact path must decide.  ``use32``: float32 lanes (:func:`quotient_lanes32`)."""
    n_exact = 0
    if use32:
        s32 = np.float32(s)
        for i in range(np.uint64(lo), np.uint64(hi)):
            r, flag = lane32(np.float32(x[i]), s32, lq32)
            elems[i] = r
            vals[i] = np.float64(r) * s
            n_exact += np.int64(flag)
        return n_exact
    if mode == SR:
        for i in range(np.uint64(lo), np.uint64(hi)):
            r, flag = lane_sr(np.float64(x[i]), s, random_word(key, i), el)
            elems[i] = r
            vals[i] = r * s
            n_exact += np.int64(flag)
        return n_exact
    for i in range(np.uint64(lo), np.uint64(hi)):
        u = random_word(key, i) if mode >= SR else np.uint64(0)
        r, flag = lane(np.float64(x[i]), s, u, el, mode, r_bits)
        elems[i] = r
        vals[i] = r * s
        n_exact += np.int64(flag)
    return n_exact


@njit(cache=True, inline="always")
def scale_elements(x, vals, elems, lo, hi, s, el, mode, r_bits, key, fast, use32, lq32):
    """Elements lo..hi of a block of scale ``s``: the fast lanes where ``fast``, then the exact
    path for the elements they cannot decide (or for all)."""
    if s != s:
        for i in range(np.uint64(lo), np.uint64(hi)):
            vals[i] = np.nan
            elems[i] = np.nan
        return
    if fast and fast_lanes(x, vals, elems, lo, hi, s, el, mode, r_bits, key, use32, lq32) == 0:
        return
    for i in range(np.uint64(lo), np.uint64(hi)):
        v = np.float64(x[i])
        u = random_word(key, i) if mode >= SR else np.uint64(0)
        if fast:
            if use32:
                flag = lane32(np.float32(x[i]), np.float32(s), lq32)[1]
            elif mode == SR:
                flag = lane_sr(v, s, u, el)[1]
            else:
                flag = lane(v, s, u, el, mode, r_bits)[1]
            if not flag:
                continue
        r = exact_element(v, s, el, mode, r_bits, u)
        elems[i] = r
        vals[i] = r * s


@njit(cache=True, parallel=True)
def scaled_runs(x, vals, elems, scales, length, n, el_max, el, sf, sf_min, mode, r_bits, key,
                fast, fast_s, use32, lq32):
    """Rows of ``length`` in runs of ``n``: scales[row * nbl + b] for block b of each row;
    ``fast``/``fast_s``: :func:`fast_quotient` of the elements and of the scales."""
    total, group = run_grid(x.size, length, n)
    for g in prange((total + group - 1) // group):
        for t in range(g * group, min(total, (g + 1) * group)):
            lo, hi = run_bounds(t, length, n)
            amax, nan = amax_run(x, lo, hi)
            s = block_scale(amax, nan, el_max, sf, sf_min, fast_s)
            scales[t] = s
            scale_elements(x, vals, elems, lo, hi, s, el, mode, r_bits, key, fast, use32, lq32)


@njit(cache=True, parallel=True)
def scaled_tiles(x, vals, elems, scales, height, width, r, c, el_max, el, sf, sf_min, mode,
                 r_bits, key, fast, fast_s, use32, lq32):
    """(B, height, width) in r x c tiles: scales[(b * gr + ti) * gc + tj]."""
    for t in prange(n_tiles(x.size, height, width, r, c)):
        b, r0, r1, c0, c1 = tile_bounds(t, height, width, r, c)
        amax, nan = amax_tile(x, b, r0, r1, c0, c1, height, width)
        s = block_scale(amax, nan, el_max, sf, sf_min, fast_s)
        scales[t] = s
        for row in range(r0, r1):
            base = (b * height + row) * width
            scale_elements(x, vals, elems, base + c0, base + c1, s, el, mode, r_bits, key, fast,
                           use32, lq32)
