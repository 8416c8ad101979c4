"""Kulisch (exact fixed-point) accumulation: C = A @ B summed exactly, rounded once.

The fixed-point register is held as D float64 "digits": digit d sums, in units of
S_d = 2**(lsb + d*dbits), the parts of the products at that scale.  Each product r is split from
the top digit down: h = round(r / S_d) by adding and subtracting 1.5 * 2**52 (exact while
|r / S_d| < 2**51; scaling by powers of two is exact, and a quotient that underflows is far
below 1/2 and rounds to 0 all the same), then r -= h * S_d (exact: the remainder is a multiple of
S_{d-1} below S_d / 2).  Every part is an integer below 2**(dbits-1) and every digit sum one below
2**53: all additions are exact, and they vectorise.  At the end the digits become int64s, carries
are propagated in base 2**dbits, and the value is rounded once.

Three kernels hold the same digits: :func:`gemm_kulisch` runs blocks of ROWS rows by a column tile
(:func:`rows_task`: a product and its top digit in one pass, the lower digits in one pass each;
:func:`pair_task` for a whole block in two digits, the usual case of 8-bit operands; 1/S_d one
power of two (:func:`one_factor`), no test for Inf or NaN in the loop), and reruns
with :func:`kulisch_task` (one row, non-finite products summed apart as IEEE addition does, 1/S_d
in two factors) the blocks that met a non-finite product, or every row where one_factor fails.
The digit sums are exact integers, so either kernel, and any order of the products, gives the
same digits.
"""

import numpy as np
from numba import njit, prange

from .arith import round_sum
from .gemm import ROWS, TILE, n_tasks, product, product_row, task_tile
from .rounding import pow2

MAGIC = 1.5 * 2.0 ** 52   # x + MAGIC - MAGIC rounds |x| < 2**51 to an integer (nearest-even)
assert ROWS == 4          # pair_task's rows are written out


@njit(cache=True, inline="always")
def bit_length(x):
    n = 0
    while (x >> n) != 0:
        n += 1
    return n


@njit(cache=True)
def kulisch_finish(digits, n, nd, dbits, lsb, width, fa):
    """Round the exact sum held in ``digits[:nd]`` (float64 multiples of their scales) once;
    returns (value, overflowed).  ``n``: a work buffer of at least nd int64s."""
    for d in range(nd):
        n[d] = np.int64(digits[d])                 # exact: an integer below 2**53
    for d in range(nd - 1):                       # carries: digits below the top in [0, 2**dbits)
        c = n[d] >> dbits
        n[d] -= c << dbits
        n[d + 1] += c
    neg = n[nd - 1] < 0
    if neg:
        for d in range(nd):
            n[d] = -n[d]
        for d in range(nd - 1):
            c = n[d] >> dbits
            n[d] -= c << dbits
            n[d + 1] += c
    top = -1
    for d in range(nd):
        if n[d] != 0:
            top = d
    if top < 0:
        return 0.0, False                           # an exact zero: the register has no -0
    pos_top = top * dbits + bit_length(n[top]) - 1  # leading bit, counted from the LSB
    pos0 = max(pos_top - 52, 0)
    window = np.int64(0)
    sticky = False
    for d in range(nd):
        base = d * dbits
        if base + dbits <= pos0:
            sticky |= n[d] != 0
            continue
        if base < pos0:
            sticky |= (n[d] & ((np.int64(1) << (pos0 - base)) - 1)) != 0
            window |= n[d] >> (pos0 - base)
        elif base <= pos_top:
            window |= n[d] << (base - pos0)
    over = False
    if width > 0 and pos_top + 1 > width - 1:
        power_of_two = window == (np.int64(1) << (pos_top - pos0)) and not sticky
        over = not (neg and pos_top + 1 == width and power_of_two)
    t = np.float64(window) * pow2(lsb + pos0)
    lo = pow2(max(lsb + pos0 - 2, -1074)) if sticky else 0.0
    if neg:
        t, lo = -t, -lo
    man_bits, emin, maxv, min_normal, spec, saturate, subnormals, mode, r_bits = fa
    return round_sum(t, lo, np.uint64(0), man_bits, emin, maxv, min_normal, spec, saturate,
                     subnormals, mode, r_bits), over


@njit(cache=True, inline="always")
def finish_into(C, flags, bi, i, j, col, work, nd, dbits, lsb, width, fa):
    """C[bi, i, j] and flags[bi, i, j] from the digits ``col[:nd]`` (:func:`kulisch_finish`)."""
    v, over = kulisch_finish(col, work, nd, dbits, lsb, width, fa)
    C[bi, i, j] = v
    flags[bi, i, j] = over


@njit(cache=True)
def kulisch_scales(lsb, dbits, ndigits):
    """Row d: S_d = 2**(lsb + d * dbits), and 1/S_d as two factors (2**1074 is no float64)."""
    scale = np.empty((ndigits, 3))
    for d in range(ndigits):
        e = lsb + d * dbits
        scale[d, 0] = pow2(e)
        scale[d, 1] = pow2(min(-e, 1000))
        scale[d, 2] = pow2(-e - min(-e, 1000))
    return scale


@njit(cache=True)
def digit_part(p, inv1, inv2):
    """The part of p that digit d holds, in its units (inv1 * inv2 = 1/S_d): p / S_d rounded to
    an integer.  Only the addition of MAGIC rounds: the products by powers of two are exact or
    underflow far below one unit (|p / S_d| < 2**51 here), so a contraction of the product and
    the addition into a fused multiply-add (NVVM's) computes the same value."""
    return ((p * inv1) * inv2 + MAGIC) - MAGIC


@njit(cache=True, inline="always")
def one_factor(lsb):
    """Whether every 1/S_d of :func:`kulisch_scales` is its first factor alone (the second is
    1 where S_d >= 2**-1000, i.e. lsb >= -1000), which :func:`rows_task` requires."""
    return lsb >= -1000


@njit(cache=True, parallel=True)
def gemm_kulisch(A, B, C, flags, fp, lsb, dbits, ndigits, width, fa):
    """C[b] = A[b] @ B[b] summed exactly, rounded once; flags[b,i,j] = 1 where a ``width``-bit
    register overflows (width 0: unbounded).  Blocks of ROWS rows by :func:`rows_task` (by
    :func:`pair_task` for whole blocks in two digits) where :func:`one_factor` holds; a block
    with a non-finite product again, row by row, by :func:`kulisch_task`, which also takes every
    row where one_factor does not hold."""
    nb, m, n = C.shape
    tiles = (n + TILE - 1) // TILE
    scale = kulisch_scales(lsb, dbits, ndigits)
    tasks = n_tasks(nb, m, n, ROWS, TILE)
    done = np.zeros(tasks, np.bool_)
    if one_factor(lsb):
        for task in prange(tasks):
            _, i0, i1, _, _ = task_tile(task, m, n, ROWS, TILE)
            if ndigits == 2 and i1 - i0 == ROWS:                  # a whole block
                done[task] = pair_task(A, B, C, flags, task, fp, lsb, dbits, width, fa, scale)
            else:
                done[task] = rows_task(A, B, C, flags, task, fp, lsb, dbits, ndigits, width,
                                       fa, scale)
    for task in prange(tasks):
        if not done[task]:
            bi, i0, i1, j0, _ = task_tile(task, m, n, ROWS, TILE)
            for i in range(i0, i1):
                kulisch_task(A, B, C, flags, (bi * m + i) * tiles + j0 // TILE, fp, lsb, dbits,
                             ndigits, width, fa, scale)


@njit(cache=True, inline="always")
def part1(p, inv):
    """:func:`digit_part` of p with inv1 = inv and inv2 = 1 (:func:`one_factor`), inlined so
    that the digit loops vectorise (a call to digit_part(p, inv, 1.0) measured 3.5x slower in
    pair_task)."""
    return (p * inv + MAGIC) - MAGIC


@njit(cache=True, inline="always")
def top_digit(a, brow, dig, rest, uw, inv, sd, fp, rounded):
    """dig[j] += the top digit's part of product j, rest[j] = what is left of it (the product
    and the top digit in one pass); whether every product is finite."""
    finite = True
    for j in range(uw):
        p = product(a, brow[j], fp, rounded)
        finite &= abs(p) < np.inf
        h = part1(p, inv)
        dig[j] += h
        rest[j] = p - h * sd
    return finite


@njit(cache=True, fastmath={"contract"})
def rows_task(A, B, C, flags, task, fp, lsb, dbits, ndigits, width, fa, scale):
    """One (batch, block of ROWS rows, column tile) of :func:`gemm_kulisch`: each row of B's tile
    serves the block's rows from cache, and each product is split into kulisch_task's digits
    (:func:`one_factor` must hold).  Returns False, with C and flags of the block unwritten,
    where a product is Inf or NaN.  (Contraction: the remainder ``p - h * S_d`` is exact, fused
    or not; digit_part's docstring for its own.)"""
    nb, m, n = C.shape
    bi, i0, i1, j0, w = task_tile(task, m, n, ROWS, TILE)
    a_mat = A[bi if A.shape[0] > 1 else 0]
    b_mat = B[bi if B.shape[0] > 1 else 0]
    dig = np.zeros((ROWS, ndigits, w))
    rest = np.empty(w)
    uw = np.uint64(w)                      # unsigned: no gathers (rounding.chunk_span)
    top = ndigits - 1
    finite = True
    for k in range(a_mat.shape[1]):
        brow = b_mat[k, j0:j0 + w]
        for r in range(i1 - i0):
            a = a_mat[i0 + r, k]
            if fp[0]:                      # a constant in each loop
                finite &= top_digit(a, brow, dig[r, top], rest, uw, scale[top, 1],
                                    scale[top, 0], fp, True)
            else:
                finite &= top_digit(a, brow, dig[r, top], rest, uw, scale[top, 1],
                                    scale[top, 0], fp, False)
            for d in range(top - 1, -1, -1):
                sd, inv = scale[d, 0], scale[d, 1]
                dr = dig[r, d]
                for j in range(uw):
                    h = part1(rest[j], inv)
                    dr[j] += h
                    rest[j] -= h * sd
    if not finite:
        return False
    col, work = np.empty(ndigits), np.empty(ndigits, np.int64)
    for r in range(i1 - i0):
        for j in range(w):
            for d in range(ndigits):
                col[d] = dig[r, d, j]
            finish_into(C, flags, bi, i0 + r, j0 + j, col, work, ndigits, dbits, lsb, width, fa)
    return True


@njit(cache=True, inline="always")
def pair_product(a, b, hi, lo, j, inv1, sd1, inv0, fp, rounded):
    """Product a * b split into its parts of two digits, added to hi[j] and lo[j]; whether it
    is finite."""
    p = product(a, b, fp, rounded)
    h = part1(p, inv1)
    hi[j] += h
    lo[j] += part1(p - h * sd1, inv0)
    return abs(p) < np.inf


@njit(cache=True, inline="always")
def pair_step(a, brow, hi, lo, uw, inv1, sd1, inv0, fp, rounded):
    """Step k of :func:`pair_task`: for each column of the tile, the products of its B value
    with the ROWS values ``a`` into the rows' two digits; whether every product is finite."""
    finite = True
    for j in range(uw):
        b = brow[j]
        finite &= pair_product(a[0], b, hi[0], lo[0], j, inv1, sd1, inv0, fp, rounded)
        finite &= pair_product(a[1], b, hi[1], lo[1], j, inv1, sd1, inv0, fp, rounded)
        finite &= pair_product(a[2], b, hi[2], lo[2], j, inv1, sd1, inv0, fp, rounded)
        finite &= pair_product(a[3], b, hi[3], lo[3], j, inv1, sd1, inv0, fp, rounded)
    return finite


@njit(cache=True, fastmath={"contract"})
def pair_task(A, B, C, flags, task, fp, lsb, dbits, width, fa, scale):
    """:func:`rows_task` for a whole block of ROWS (= 4) rows in two digits: the four rows run
    inside one loop over the columns, each product split into both digits in registers (its
    remainder never stored), the eight digit rows separate arrays.  About 1.5x rows_task's
    speed (e5m2 data over its whole range, 512^3, one process)."""
    nb, m, n = C.shape
    bi, i0, _, j0, w = task_tile(task, m, n, ROWS, TILE)
    a_mat = A[bi if A.shape[0] > 1 else 0]
    b_mat = B[bi if B.shape[0] > 1 else 0]
    hi = (np.zeros(w), np.zeros(w), np.zeros(w), np.zeros(w))
    lo = (np.zeros(w), np.zeros(w), np.zeros(w), np.zeros(w))
    uw = np.uint64(w)                      # unsigned: no gathers (rounding.chunk_span)
    sd1, inv1, inv0 = scale[1, 0], scale[1, 1], scale[0, 1]
    finite = True
    for k in range(a_mat.shape[1]):
        brow = b_mat[k, j0:j0 + w]
        a = (a_mat[i0, k], a_mat[i0 + 1, k], a_mat[i0 + 2, k], a_mat[i0 + 3, k])
        if fp[0]:                          # a constant in each call
            finite &= pair_step(a, brow, hi, lo, uw, inv1, sd1, inv0, fp, True)
        else:
            finite &= pair_step(a, brow, hi, lo, uw, inv1, sd1, inv0, fp, False)
    if not finite:
        return False
    col, work = np.empty(2), np.empty(2, np.int64)
    for r in range(ROWS):
        hr, lr = hi[r], lo[r]
        for j in range(w):
            col[0], col[1] = lr[j], hr[j]
            finish_into(C, flags, bi, i0 + r, j0 + j, col, work, 2, dbits, lsb, width, fa)
    return True


@njit(cache=True)
def kulisch_task(A, B, C, flags, task, fp, lsb, dbits, ndigits, width, fa, scale):
    """One (batch, row, column tile) of :func:`gemm_kulisch`, any products: a non-finite one is
    summed apart (IEEE addition's Inf and NaN) and the digits take 0 for it."""
    nb, m, n = C.shape
    kk = A.shape[2]
    tiles = (n + TILE - 1) // TILE
    bi = task // (m * tiles)
    i = (task // tiles) % m
    j0 = (task % tiles) * TILE
    w = min(n, j0 + TILE) - j0
    a_mat = A[bi if A.shape[0] > 1 else 0]
    b_mat = B[bi if B.shape[0] > 1 else 0]
    dig = np.zeros((ndigits, w))
    special = np.zeros(w)
    pbuf = np.empty(w)
    col, work = np.empty(ndigits), np.empty(ndigits, np.int64)
    for k in range(kk):
        product_row(a_mat[i, k], b_mat[k, j0:j0 + w], pbuf, w, fp)
        for j in range(w):
            p = pbuf[j]
            finite = abs(p) < np.inf
            special[j] += 0.0 if finite else p
            pbuf[j] = p if finite else 0.0
        for d in range(ndigits - 1, -1, -1):
            sd, inv1, inv2 = scale[d, 0], scale[d, 1], scale[d, 2]
            for j in range(w):
                h = digit_part(pbuf[j], inv1, inv2)
                dig[d, j] += h
                pbuf[j] -= h * sd
    for j in range(w):
        if special[j] != 0.0 or special[j] != special[j]:
            C[bi, i, j0 + j] = round_sum(special[j], 0.0, np.uint64(0), fa[0], fa[1], fa[2],
                                         fa[3], fa[4], fa[5], fa[6], fa[7], fa[8])
        else:
            for d in range(ndigits):
                col[d] = dig[d, j]
            finish_into(C, flags, bi, i, j0 + j, col, work, ndigits, dbits, lsb, width, fa)


__all__ = ["MAGIC", "bit_length", "digit_part", "finish_into", "gemm_kulisch", "kulisch_finish",
           "kulisch_scales", "kulisch_task", "one_factor", "pair_product", "pair_step", "pair_task",
           "part1", "rows_task", "top_digit"]
