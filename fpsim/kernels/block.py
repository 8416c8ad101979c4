"""Shared-exponent block quantization: Block Minifloat, MX, Flexpoint (fpsim/blocks.py).

Three layouts, all on flat C-ordered arrays (ops.py arranges them, so the element with flat index
``i`` here uses the random word ``i``): runs of ``n`` along rows of length ``L`` (1-D blocks; the
last run of a row may be shorter), ``r x c`` tiles of ``(B, H, W)`` (edge tiles may be smaller),
and one block for the whole array.

Per block: ``amax`` = the largest |x| (NaN ignored but flagged), the scale exponent
``s = floor(log2 amax) - emax_elem`` clamped to ``[s_lo, s_hi]`` (``s_lo`` for an all-zero block),
and every element rounded once onto the element grid scaled by ``2**s``.  Scaling the *format*
instead of the value keeps this exact: rounding ``x`` into a format with ``emin + s``,
``max * 2**s`` and ``min_normal * 2**s`` is rounding ``x / 2**s`` into the element format and
multiplying back, without forming ``x / 2**s`` (which could leave float64's range).  Fixed-point
elements are rounded on the grid ``2**(s - frac_bits)`` with 50 fraction bits of headroom (so the
grid covers every word of up to 50 bits) and clamped to the word's range ``[lo, hi] * 2**s``.
"""

import numpy as np
from numba import njit, prange

from .bits import bits_f64, bits_float, f64_bits, float_bits
from .rounding import (ABS, CHUNK, EXP_MASK, NONE, RNE, SR, lane_nearest, lane_supports, pow2,
                       random_word, round_f64, round_fast, sel, split)

def supports(lsb, top, scale_min, scale_max):
    """Whether the block kernels are exact for elements whose quantum is ``2**lsb`` and whose
    magnitudes are below ``2**top``, scaled by ``2**scale_min .. 2**scale_max``: every scaled
    grid's quantum is a normal float64 power of two (rounding.supports' condition for the scaled
    format) and every scaled value stays below 2**1023 (finite, with room for the carry)."""
    return lsb + scale_min >= -1022 and top + scale_max <= 1022


def lanes32(man_bits, emin, emax, subnormals, specials_ok):
    """(whether, lowest s, highest s): the scale exponents s for which :func:`round_block` may
    round float32 input of a float element format (``man_bits``, ``emin``, ``emax``; with
    subnormals, IEEE/"fn"/"none" specials, rounded nearest-even and saturating) in float32
    lanes: ``lane_nearest(x * 2**-s) * 2**s`` with float32 multiplies.

    Proof.  (1) ``2**-s`` and ``2**s`` are float32 values (normal or subnormal) for
    -127 <= s <= 127.  (2) ``y = x * 2**-s`` is exact unless |y| < 2**-126 (a power-of-two scaling
    loses bits only below the normal range) or y overflows.  Below 2**-126 the exact y and the
    float32 y both lie below half the element's smallest subnormal when that is at least
    2**-124 (``emin - man_bits >= -124``): both round to a zero of x's sign (the float32 product
    keeps the sign).  An overflow to Inf, or any |y| beyond the element's range, saturates at
    the element's largest value with x's sign either way; NaN stays NaN with its sign, as in
    float64 lanes.  (3) ``lane_nearest`` rounds exactly into the element format in float32 lanes
    where ``rounding.lane_supports(man_bits, emin, emax, 32)`` holds.  (4) The element value r
    (|r| < 2**(emax + 1), a multiple of 2**(emin - man_bits)) times 2**s is a float32 value when
    emax + 1 + s <= 128 and emin - man_bits + s >= -149, so the last multiply is exact.  Hence
    the result is round_f64's rounding of x onto the grid scaled by 2**s, which the float64
    path computes."""
    if not (subnormals and specials_ok and lane_supports(man_bits, emin, emax, 32)
            and emin - man_bits >= -124):
        return False, 0, -1
    return True, max(-127, -149 - (emin - man_bits)), min(127, 127 - emax)


def fixed_lanes32(top, frac_bits):
    """(whether, lowest s, highest s): the scale exponents s for which :func:`round_block` may
    round float32 input of a fixed-point element (words of magnitude at most ``2**top``,
    ``frac_bits`` fraction bits; nearest-even, clamped to the word's range as every block
    element is) in float32 lanes: with q = s - frac_bits the scaled grid's quantum exponent,
    ``y = x * 2**-q``, ``r = (y + 1.5 * 2**23) - 1.5 * 2**23`` clamped to the word's range,
    times ``2**q``.

    Proof.  (1) 2**-q and 2**q are float32 values for -127 <= q <= 127.  (2) x * 2**-q is exact
    unless it lies below 2**-126, where it and the exact quotient both round to 0 (below 1/2),
    or overflows to Inf.  (3) The add-and-subtract rounds |y| <= 2**22 to the nearest integer,
    ties to even, exactly (float32's spacing is 1 in [2**23, 2**24)); a negative y rounding to
    0 gives +0, the fixed-point grid's zero.  Beyond 2**22 (Inf included) it is monotone and
    stays beyond +-2**22 with y's sign, so the clamp to the word range (|word| <= 2**21)
    saturates as the exact rounding does.
    (4) A word r (|r| <= 2**top) times 2**q is exact and finite when q <= 127 - top: its last
    bit 2**q >= 2**-127 is a float32 value.  Hence q from -127 to min(127, 127 - top), for
    top <= 21.  Both bounds are sufficient, not tight.  NaN input becomes the quiet NaN of zero
    payload with its sign, as in the float64 path."""
    if top > 21:
        return False, 0, -1
    return True, frac_bits - 127, frac_bits + min(127, 127 - top)


LANES_FLOAT, LANES_FIXED = 1, 2     # round_block's use32: float32 lanes, float or fixed element
NO_SCALE = np.int64(-(1 << 40))   # scale exponent of a block that turned NaN (MX: scale code NaN)
HUGE = np.int64(1 << 40)


@njit(cache=True, inline="always")
def in_lanes32(use32, mode, s, s_lo32, s_hi32):
    """Whether a float element block of scale exponent s rounds in float32 lanes: nearest-even
    and s within :func:`lanes32`'s range (which a NaN block's NO_SCALE is not)."""
    return use32 == LANES_FLOAT and mode == RNE and s_lo32 <= s <= s_hi32


@njit(cache=True, inline="always")
def scaled_lane32(v, down, up, lq32):
    """One element in :func:`lanes32`'s float32 lanes: lane_nearest(v * 2**-s) * 2**s."""
    return lane_nearest(np.float32(v) * down, lq32) * up


@njit(cache=True, inline="always")
def amax_run(x, lo, hi):
    """(largest |x[i]| ignoring NaN, whether a NaN was seen) over lo <= i < hi.

    The maximum is taken over the bit patterns of |x| (integers order like the magnitudes, and an
    integer max vectorises); NaN patterns sort above Inf, so a NaN costs a second pass.  float32
    input is compared on its own 32-bit patterns (twice the lanes)."""
    if x.itemsize == 4:
        top32 = np.int32(0)
        for i in range(np.uint64(lo), np.uint64(hi)):
            top32 = max(top32, np.int32(float_bits(np.float32(x[i])) & np.int32(0x7FFFFFFF)))
        if top32 <= np.int32(0x7F800000):
            return np.float64(bits_float(np.int32(top32))), False
        return amax_nan(x, lo, hi)
    top = np.int64(0)
    for i in range(np.uint64(lo), np.uint64(hi)):
        top = max(top, f64_bits(np.float64(x[i])) & ABS)
    if top <= EXP_MASK:
        return bits_f64(top), False
    return amax_nan(x, lo, hi)


@njit(cache=True)
def amax_nan(x, lo, hi):
    """:func:`amax_run` of a run holding a NaN."""
    amax = 0.0
    for i in range(np.uint64(lo), np.uint64(hi)):
        a = abs(np.float64(x[i]))
        amax = max(amax, sel(a != a, 0.0, a))
    return amax, True


@njit(cache=True, inline="always")
def exponent_of(amax, has_nan, emax_elem, s_lo, s_hi, nan_scale):
    """Scale exponent of a block from its amax; NO_SCALE when the block becomes NaN (``nan_scale``:
    a NaN in it, or an exponent above ``s_hi`` - an Inf - as the MX reference emulator does)."""
    if nan_scale and has_nan:
        return NO_SCALE
    if amax == 0.0:
        return np.int64(s_lo)
    s = HUGE if amax == np.inf else split(f64_bits(amax) & ABS)[0] - emax_elem
    if s > s_hi:
        return NO_SCALE if nan_scale else np.int64(s_hi)
    return max(s, np.int64(s_lo))


@njit(cache=True, inline="always")
def round_block(x, out, lo, hi, s, man_bits, emin, maxv, min_normal, spec, subnormals, lo_v, hi_v,
                signed_zero, mode, r_bits, key, use32, s_lo32, s_hi32, lq32):
    """out[i] = x[i] rounded onto the element grid scaled by 2**s, for lo <= i < hi.  Nearest-even
    is inlined with the mode a compile-time constant (that is what keeps block quantization fast):
    float elements with subnormals by ``rounding.lane_nearest`` in float64 lanes where
    ``rounding.lane_supports`` holds for the scaled format (its proof; overflow saturates as
    round_fast's does here), else by ``round_fast``; the other modes go through
    :func:`round_run`."""
    if mode != RNE or s == NO_SCALE:
        round_run(x, out, lo, hi, s, man_bits, emin, maxv, min_normal, spec, subnormals, lo_v,
                  hi_v, signed_zero, mode, r_bits, key)
        return
    if in_lanes32(use32, mode, s, s_lo32, s_hi32):
        scaled_lanes32(x, out, lo, hi, np.float32(pow2(-s)), np.float32(pow2(s)), lq32)
        return
    if use32 == LANES_FIXED and s_lo32 <= s <= s_hi32:      # fixed_lanes32's proof
        q = s + emin - man_bits      # element_args: emin - man_bits = -frac_bits
        fixed_run32(x, out, lo, hi, np.float32(pow2(-q)), np.float32(pow2(q)),
                    np.float32(lo_v * pow2(man_bits - emin)),
                    np.float32(hi_v * pow2(man_bits - emin)))
        return
    p = pow2(s)
    emin_s, max_s, mn_s, lo_s, hi_s = emin + s, maxv * p, min_normal * p, lo_v * p, hi_v * p
    zero = -0.0 if signed_zero else 0.0       # x + 0.0 turns -0 into +0; x + -0.0 keeps it
    top = (f64_bits(max_s) >> np.int64(52)) - np.int64(1023)     # the scaled format's emax
    # rounding.lane_supports(man_bits, emin_s, top, 64), evaluated here per block
    if subnormals and man_bits <= 20 and emin_s >= -1022 and emin_s - man_bits >= -1074 \
            and top + 54 - man_bits <= 1023:
        # the add-and-subtract rounding in float64 lanes (rounding.lane_nearest), saturating
        lq = (np.int64(-(1 << 63)), EXP_MASK, np.int64(emin_s + 1023) << np.int64(52),
              np.int64(top + 1024) << np.int64(52), np.int64(52 - man_bits) << np.int64(52),
              max_s, max_s, sel(spec == NONE, -0.0, np.nan))
        for i in range(np.uint64(lo), np.uint64(hi)):
            r = lane_nearest(np.float64(x[i]), lq)
            out[i] = sel(r > hi_s, hi_s, sel(r < lo_s, lo_s, r)) + zero
        return
    for i in range(np.uint64(lo), np.uint64(hi)):
        r, slow = round_fast(np.float64(x[i]), np.uint64(0), man_bits, emin_s, max_s, mn_s, spec,
                             True, subnormals, RNE, 0)
        out[i] = sel(r > hi_s, hi_s, sel(r < lo_s, lo_s, r)) + zero


@njit(cache=True)
def scaled_lanes32(x, out, lo, hi, down, up, lq32):
    """out[i] = lane_nearest(x[i] * down) * up in float32 lanes, lo <= i < hi (:func:`lanes32`;
    a function of its own: Numba's parallel loops do not take the constants tuple inlined)."""
    for i in range(np.uint64(lo), np.uint64(hi)):
        out[i] = scaled_lane32(x[i], down, up, lq32)


@njit(cache=True)
def scaled_tile32(x, out, first, rows, cols, width, down, up, lq32):
    """:func:`scaled_lanes32` over the rows of a tile (``rows`` runs of ``cols`` elements,
    ``width`` apart, from ``first``): one call per tile instead of one per row."""
    for r in range(rows):
        base = np.uint64(first + r * width)
        for j in range(np.uint64(0), np.uint64(cols)):
            out[base + j] = scaled_lane32(x[base + j], down, up, lq32)


@njit(cache=True)
def fixed_run32(x, out, lo, hi, down, up, k_lo, k_hi):
    """out[i] = fixed_lanes32's rounding of x[i], lo <= i < hi (``k_lo``/``k_hi``: the word's
    range as float32 integers)."""
    magic = np.float32(1.5 * 2.0 ** 23)
    for i in range(np.uint64(lo), np.uint64(hi)):
        v = np.float32(x[i]) * down
        r = (v + magic) - magic
        nan = bits_float(np.int32(np.int32(float_bits(v) & np.int32(-2147483648))
                                  | np.int32(0x7FC00000)))     # the quiet NaN, x's sign
        out[i] = sel(v != v, nan, min(max(r, k_lo), k_hi) * up)


@njit(cache=True)
def round_run(x, out, lo, hi, s, man_bits, emin, maxv, min_normal, spec, subnormals, lo_v, hi_v,
              signed_zero, mode, r_bits, key):
    """:func:`round_block` for any mode (and NaN blocks)."""
    if s == NO_SCALE:
        for i in range(np.uint64(lo), np.uint64(hi)):
            out[i] = np.nan
        return
    p = pow2(s)
    emin_s, max_s, mn_s, lo_s, hi_s = emin + s, maxv * p, min_normal * p, lo_v * p, hi_v * p
    zero = -0.0 if signed_zero else 0.0
    nslow = 0
    if mode >= SR:
        for i in range(np.uint64(lo), np.uint64(hi)):
            r, slow = round_fast(np.float64(x[i]), random_word(key, i), man_bits, emin_s, max_s,
                                 mn_s, spec, True, subnormals, mode, r_bits)
            out[i] = sel(r > hi_s, hi_s, sel(r < lo_s, lo_s, r)) + zero
            nslow += slow
    else:
        for i in range(np.uint64(lo), np.uint64(hi)):
            r, slow = round_fast(np.float64(x[i]), np.uint64(0), man_bits, emin_s, max_s, mn_s,
                                 spec, True, subnormals, mode, r_bits)
            out[i] = sel(r > hi_s, hi_s, sel(r < lo_s, lo_s, r)) + zero
    if nslow > 0:          # exact 'sr' decisions needing more than 62 random bits
        for i in range(np.uint64(lo), np.uint64(hi)):
            u = random_word(key, i)
            r, slow = round_fast(np.float64(x[i]), u, man_bits, emin_s, max_s, mn_s, spec, True,
                                 subnormals, mode, r_bits)
            if slow:
                out[i] = round_scaled(np.float64(x[i]), u, s, man_bits, emin, maxv, min_normal,
                                      spec, subnormals, lo_v, hi_v, signed_zero, mode, r_bits)


@njit(cache=True)
def round_scaled(x, u, s, man_bits, emin, maxv, min_normal, spec, subnormals, lo_v, hi_v,
                 signed_zero, mode, r_bits):
    """One element as :func:`round_block` rounds it, by the exact rounding its fast paths are
    proven equal to: x rounded once onto the element grid scaled by 2**s (rounding.round_f64)
    and clamped to [lo_v, hi_v] * 2**s; NaN in a NaN block (the GPU's block kernel)."""
    if s == NO_SCALE:
        return np.nan
    p = pow2(s)
    r = round_f64(x, u, man_bits, emin + s, maxv * p, min_normal * p, spec, True, subnormals,
                  mode, r_bits)
    return sel(r > hi_v * p, hi_v * p, sel(r < lo_v * p, lo_v * p, r)) + \
        (-0.0 if signed_zero else 0.0)


@njit(cache=True, inline="always")
def run_grid(size, length, n):
    """(number of runs of n in rows of length, runs per parallel task)."""
    return size // length * ((length + n - 1) // n), max(1, 4096 // n)


@njit(cache=True, inline="always")
def run_bounds(t, length, n):
    """[lo, hi) of run t (rows of ``length`` cut into runs of ``n``, the last one shorter)."""
    nbl = (length + n - 1) // n
    lo = (t // nbl) * length + (t % nbl) * n
    return lo, min(lo + n, (t // nbl + 1) * length)


@njit(cache=True, parallel=True)
def quantize_runs(x, out, scales, length, n, man_bits, emin, maxv, min_normal, spec, subnormals,
                  lo_v, hi_v, signed_zero, emax_elem, s_lo, s_hi, nan_scale, mode, r_bits, key,
                  use32, s_lo32, s_hi32, lq32):
    """Rows of ``length`` in runs of ``n``: scales[row * nbl + b] for block b of each row
    (``use32 .. lq32``: quantize.block_lanes32's constants)."""
    total, group = run_grid(x.size, length, n)
    for g in prange((total + group - 1) // group):
        run_group(x, out, scales, g * group, min(total, (g + 1) * group), length, n, man_bits,
                  emin, maxv, min_normal, spec, subnormals, lo_v, hi_v, signed_zero, emax_elem,
                  s_lo, s_hi, nan_scale, mode, r_bits, key, use32, s_lo32, s_hi32, lq32)


@njit(cache=True)
def run_group(x, out, scales, t0, t1, length, n, man_bits, emin, maxv, min_normal, spec,
              subnormals, lo_v, hi_v, signed_zero, emax_elem, s_lo, s_hi, nan_scale, mode, r_bits,
              key, use32, s_lo32, s_hi32, lq32):
    """Runs t0..t1-1 of :func:`quantize_runs` (a plain function, so that the float32 lanes are
    inlined here rather than called once per run)."""
    lo, hi = run_bounds(t0, length, n)
    row_end = (lo // length + 1) * length
    for t in range(t0, t1):                          # run_bounds(t), stepped without divisions
        amax, nan = amax_run(x, lo, hi)
        s = exponent_of(amax, nan, emax_elem, s_lo, s_hi, nan_scale)
        scales[t] = s
        if in_lanes32(use32, mode, s, s_lo32, s_hi32):
            down, up = np.float32(pow2(-s)), np.float32(pow2(s))
            for i in range(np.uint64(lo), np.uint64(hi)):
                out[i] = scaled_lane32(x[i], down, up, lq32)
        else:
            round_block(x, out, lo, hi, s, man_bits, emin, maxv, min_normal, spec, subnormals,
                        lo_v, hi_v, signed_zero, mode, r_bits, key, use32, s_lo32, s_hi32, lq32)
        if hi == row_end:
            row_end += length
        lo, hi = hi, min(hi + n, row_end)


@njit(cache=True, inline="always")
def n_tiles(size, height, width, r, c):
    """How many r x c tiles cover a (B, height, width) array of ``size`` elements."""
    nb = size // (height * width) if height * width else 0
    return nb * ((height + r - 1) // r) * ((width + c - 1) // c)


@njit(cache=True, inline="always")
def tile_bounds(t, height, width, r, c):
    """(matrix b, rows r0..r1, columns c0..c1) of tile t, in the order scales[(b * gr + ti) *
    gc + tj]."""
    gr, gc = (height + r - 1) // r, (width + c - 1) // c
    b, ti, tj = t // (gr * gc), (t // gc) % gr, t % gc
    return b, ti * r, min(height, (ti + 1) * r), tj * c, min(width, (tj + 1) * c)


@njit(cache=True, inline="always")
def amax_tile(x, b, r0, r1, c0, c1, height, width):
    """:func:`amax_run` over a tile."""
    amax, nan = 0.0, False
    for row in range(r0, r1):
        base = (b * height + row) * width
        a, na = amax_run(x, base + c0, base + c1)
        amax, nan = max(amax, a), nan | na
    return amax, nan


@njit(cache=True, parallel=True)
def quantize_tiles(x, out, scales, height, width, r, c, man_bits, emin, maxv, min_normal, spec,
                   subnormals, lo_v, hi_v, signed_zero, emax_elem, s_lo, s_hi, nan_scale, mode,
                   r_bits, key, use32, s_lo32, s_hi32, lq32):
    """(B, height, width) in r x c tiles: scales[(b * gr + ti) * gc + tj]."""
    for t in prange(n_tiles(x.size, height, width, r, c)):
        b, r0, r1, c0, c1 = tile_bounds(t, height, width, r, c)
        amax, nan = amax_tile(x, b, r0, r1, c0, c1, height, width)
        s = exponent_of(amax, nan, emax_elem, s_lo, s_hi, nan_scale)
        scales[t] = s
        if in_lanes32(use32, mode, s, s_lo32, s_hi32):
            scaled_tile32(x, out, (b * height + r0) * width + c0, r1 - r0, c1 - c0, width,
                          np.float32(pow2(-s)), np.float32(pow2(s)), lq32)   # one call a tile
            continue
        for row in range(r0, r1):
            base = (b * height + row) * width
            round_block(x, out, base + c0, base + c1, s, man_bits, emin, maxv, min_normal, spec,
                        subnormals, lo_v, hi_v, signed_zero, mode, r_bits, key, use32, s_lo32,
                        s_hi32, lq32)


@njit(cache=True, parallel=True)
def quantize_tensor(x, out, scales, man_bits, emin, maxv, min_normal, spec, subnormals, lo_v,
                    hi_v, signed_zero, emax_elem, s_lo, s_hi, nan_scale, mode, r_bits, key, use32,
                    s_lo32, s_hi32, lq32):
    """One block for all of x (Flexpoint): a parallel amax, then a parallel rounding pass."""
    nchunks = (x.size + CHUNK - 1) // CHUNK
    part = np.zeros(nchunks)
    part_nan = np.zeros(nchunks, dtype=np.bool_)
    for k in prange(nchunks):
        part[k], part_nan[k] = amax_run(x, k * CHUNK, min(x.size, (k + 1) * CHUNK))
    amax = part.max() if nchunks > 0 else 0.0
    s = exponent_of(amax, part_nan.any(), emax_elem, s_lo, s_hi, nan_scale)
    scales[0] = s
    for k in prange(nchunks):
        round_block(x, out, k * CHUNK, min(x.size, (k + 1) * CHUNK), s, man_bits, emin, maxv,
                    min_normal, spec, subnormals, lo_v, hi_v, signed_zero, mode, r_bits, key,
                    use32, s_lo32, s_hi32, lq32)
