"""The CUDA kernels of kernels/cuda (this module imports numba.cuda; see the package docstring).
Kernels refer to the module global ``cuda`` (Numba's simulator swaps it for its own)."""

import numpy as np
from numba import cuda

from ..arith import round_sum
from ..block import exponent_of, round_scaled, run_bounds, tile_bounds
from ..chain import TINY32, flush, fma_step
from ..exponent import round_exponent
from ..fixed import round_fixed
from ..fused import NO_EXP, NO_TERM, c_exponent, cut, exponent, finish_sums, pow2n, promote_one
from ..gemm import fixed_step, scalar_add, staged_sum
from ..kulisch import digit_part, kulisch_finish
from ..posit import decode_posit, posit_pick
from ..radix4 import round_radix4
from ..scaled import block_scale, exact_element
from ..rounding import SR, pow2, random_word, round_f64

# Kulisch digits per thread: a register spans at most 2 * 2047 + 2 * 53 bits (products of two
# formats with float64's exponent range) in digits of at least 52 - 32 bits for K < 2**32.
MAX_DIGITS = 256
RUNS, TILES, TENSOR = 1, 2, 0      # block layouts (quantize.BlockLayout.geometry)


@cuda.jit(device=True)
def element_word(rand, key, i, mode):
    """The random word of element i: rand[i] where words are given, else (key, i)'s for
    stochastic modes (rounding.element_word's rule)."""
    if rand.size > 0:
        return rand[i]
    if mode >= SR:
        return np.uint64(random_word(key, i))   # (the simulator returns a Python int)
    return np.uint64(0)


@cuda.jit
def quantize_kernel(x, out, rand, man_bits, emin, maxv, min_normal, spec, saturate,
                    subnormals, mode, r_bits, key):
    i = cuda.grid(1)
    if i < x.size:
        out[i] = round_f64(np.float64(x[i]), element_word(rand, key, i, mode), man_bits, emin,
                           maxv, min_normal, spec, saturate, subnormals, mode, r_bits)


@cuda.jit
def fixed_quantize_kernel(x, out, rand, frac_bits, k_lo, k_hi, saturate, mode, r_bits, key):
    """kernels.fixed.quantize_fixed, element by element."""
    i = cuda.grid(1)
    if i < x.size:
        out[i] = round_fixed(np.float64(x[i]), element_word(rand, key, i, mode), frac_bits,
                             k_lo, k_hi, saturate, mode, r_bits)


@cuda.jit
def radix4_quantize_kernel(x, out, rand, bias, phase, top_field, mode, r_bits, key):
    """kernels.radix4.quantize_radix4, element by element."""
    i = cuda.grid(1)
    if i < x.size:
        out[i] = round_radix4(np.float64(x[i]), element_word(rand, key, i, mode), bias, phase,
                              top_field, mode, r_bits)


@cuda.jit
def exponent_quantize_kernel(x, out, rand, bias, top, mode, r_bits, key):
    """kernels.exponent.quantize_exponent, element by element."""
    i = cuda.grid(1)
    if i < x.size:
        out[i] = round_exponent(np.float64(x[i]), element_word(rand, key, i, mode), bias, top,
                                mode, r_bits)


@cuda.jit(device=True)
def posit_round(x, values, mids, n):
    """kernels.posit.round_posit: a binary search of the table (np.searchsorted's side="right"
    count, minus one), then its posit_pick."""
    a, lo, hi = abs(x), 0, values.size
    while lo < hi:                       # NaN compares false: j = -1, and posit_pick gives NaR
        mid = (lo + hi) // 2
        if values[mid] <= a:
            lo = mid + 1
        else:
            hi = mid
    j = lo - 1
    return posit_pick(x, j, mids[j] if 0 <= j < mids.size else 0.0, values.size, n)


@cuda.jit
def posit_quantize_kernel(x, out, values, mids, n, es):
    """kernels.posit.quantize_posits, element by element."""
    i = cuda.grid(1)
    if i < x.size:
        out[i] = decode_posit(posit_round(np.float64(x[i]), values, mids, n), n, es)


@cuda.jit
def posit_kernel(A, B, C, values, mids, n, es, stage):
    """kernels.gemm.gemm_posit, element by element (posit_task's steps)."""
    t = cuda.grid(1)
    nb, m, nn = C.shape
    if t < nb * m * nn:
        bi, i, j = t // (m * nn), (t // nn) % m, t % nn
        ai, bj = (bi if A.shape[0] > 1 else 0), (bi if B.shape[0] > 1 else 0)
        acc = 0.0
        for k in range(A.shape[2]):
            s = staged_sum(acc, A[ai, i, k] * B[bj, k, j], stage)
            acc = decode_posit(posit_round(s, values, mids, n), n, es)
        C[bi, i, j] = acc


@cuda.jit
def kulisch_kernel(A, B, C, flags, scale, fp, lsb, dbits, width, fa):
    """kernels.kulisch.gemm_kulisch, element by element (kulisch_task's digits, kulisch_finish)."""
    t = cuda.grid(1)
    nb, m, n = C.shape
    if t >= nb * m * n:
        return
    bi, i, j = t // (m * n), (t // n) % m, t % n
    ai, bj = (bi if A.shape[0] > 1 else 0), (bi if B.shape[0] > 1 else 0)
    has_p, pman, pemin, pmax, pminn, pspec, psat, psub, pmode = fp
    nd = scale.shape[0]
    dig = cuda.local.array(MAX_DIGITS, np.float64)
    work = cuda.local.array(MAX_DIGITS, np.int64)
    for d in range(nd):
        dig[d] = 0.0
    special = 0.0
    for k in range(A.shape[2]):
        p = A[ai, i, k] * B[bj, k, j]
        if has_p:
            p = round_f64(p, np.uint64(0), pman, pemin, pmax, pminn, pspec, psat, psub, pmode, 0)
        if not abs(p) < np.inf:
            special += p
            continue
        for d in range(nd - 1, -1, -1):
            h = digit_part(p, scale[d, 1], scale[d, 2])
            dig[d] += h
            p -= h * scale[d, 0]
    if special != 0.0 or special != special:
        C[bi, i, j] = round_sum(special, 0.0, np.uint64(0), fa[0], fa[1], fa[2], fa[3], fa[4],
                                fa[5], fa[6], fa[7], fa[8])
    else:
        v, over = kulisch_finish(dig, work, nd, dbits, lsb, width, fa)
        C[bi, i, j] = v
        flags[bi, i, j] = over


@cuda.jit
def gemm_kernel(A, B, C, chunk, pairwise, man_bits, emin, maxv, min_normal, spec, saturate,
                subnormals, mode, r_bits, has_p, pman, pemin, pmax, pminn, pspec, psat, psub,
                pmode, key):
    t = cuda.grid(1)
    nb, m, n = C.shape
    if t >= nb * m * n:
        return
    bi, i, j = t // (m * n), (t // n) % m, t % n
    ai = bi if A.shape[0] > 1 else 0
    bj = bi if B.shape[0] > 1 else 0
    kk = A.shape[2]
    step = np.uint64(kk * kk + 2 * kk)
    ebase = np.uint64(t) * step
    stoch = mode >= SR
    run = chunk if chunk > 0 else max(kk, 1)
    lev = cuda.local.array(64, np.float64)
    total = 0.0
    for k0 in range(0, kk, run):
        k1 = min(kk, k0 + run)
        reg = 0.0
        count = 0
        for k in range(k0, k1):
            p = A[ai, i, k] * B[bj, k, j]
            if has_p:
                p = round_f64(p, np.uint64(0), pman, pemin, pmax, pminn, pspec, psat, psub,
                              pmode, 0)
            if not pairwise:
                u = np.uint64(random_word(key, ebase + np.uint64(k))) if stoch else np.uint64(0)
                reg = scalar_add(reg, p, u, (man_bits, emin, maxv, min_normal, spec,
                                             saturate, subnormals, mode, r_bits))
                continue
            level = 0
            while (count >> level) & 1:          # carry: merge equal-sized blocks
                lo = k - (2 << level) + 1
                w = np.uint64(2 * kk + lo * kk + k)
                u = np.uint64(random_word(key, ebase + w)) if stoch else np.uint64(0)
                p = scalar_add(p, lev[level], u, (man_bits, emin, maxv, min_normal, spec,
                                                  saturate, subnormals, mode, r_bits))
                level += 1
            lev[level] = p
            count += 1
        if pairwise:
            first = True
            level = 0
            while (count >> level) > 0:           # the leftover blocks, smallest first
                if (count >> level) & 1:
                    if first:
                        reg = lev[level]
                        first = False
                    else:
                        lo = k0 + ((count >> (level + 1)) << (level + 1))
                        w = np.uint64(2 * kk + lo * kk + (k1 - 1))
                        u = np.uint64(random_word(key, ebase + w)) if stoch else np.uint64(0)
                        reg = scalar_add(reg, lev[level], u, (man_bits, emin, maxv,
                                                              min_normal, spec, saturate,
                                                              subnormals, mode, r_bits))
                level += 1
            if count == 1:                          # a lone product is rounded
                u = np.uint64(random_word(key, ebase + np.uint64(k0))) if stoch else np.uint64(0)
                reg = round_f64(reg, u, man_bits, emin, maxv, min_normal, spec, saturate,
                                subnormals, mode, r_bits)
        if chunk > 0:
            u = np.uint64(random_word(key, ebase + np.uint64(kk + k0 // run))) if stoch \
                else np.uint64(0)
            total = scalar_add(total, reg, u, (man_bits, emin, maxv, min_normal, spec,
                                               saturate, subnormals, mode, r_bits))
        else:
            total = reg
    C[bi, i, j] = total


@cuda.jit
def fixed_kernel(A, B, C, frac_bits, k_lo, k_hi, mode, r_bits, key):
    """kernels.gemm.gemm_fixed, element by element (its step, gemm.fixed_step, with the same
    random words)."""
    t = cuda.grid(1)
    nb, m, n = C.shape
    if t < nb * m * n:
        bi, i, j = t // (m * n), (t // n) % m, t % n
        ai, bj = (bi if A.shape[0] > 1 else 0), (bi if B.shape[0] > 1 else 0)
        kk = A.shape[2]
        ebase = np.uint64(t) * np.uint64(kk * kk + 2 * kk)
        step = pow2(-frac_bits)
        lo_v, hi_v = k_lo * step, k_hi * step
        acc = 0.0
        for k in range(kk):
            u = np.uint64(random_word(key, ebase + np.uint64(k))) if mode >= SR \
                else np.uint64(0)
            acc = fixed_step(acc, A[ai, i, k] * B[bj, k, j], u, frac_bits, lo_v, hi_v, mode,
                             r_bits)
        C[bi, i, j] = acc


# --- matrix engines: one thread per output element ------------------------------------------
@cuda.jit
def fused_kernel(A, B, C, D, EA, EB, cfg, fmt, ofmt):
    """kernels.fused.fused_gemm, element by element: each group's alignment exponents, scales
    and cut sums as fused_task forms them, then kernels.fused.finish_sums (every case)."""
    t = cuda.grid(1)
    nb, m, n = D.shape
    if t >= nb * m * n:
        return
    (group, frac_bits, cut_mode, c_aligned, carry, c_emin, zero_exp, overflow_inf, subsum,
     lanes, late_sum, late_c, late_drop, product_overflow, chunk) = cfg
    bi, i, j = t // (m * n), (t // n) % m, t % n
    ai, bj = (bi if A.shape[0] > 1 else 0), (bi if B.shape[0] > 1 else 0)
    kk = A.shape[2]
    over = pow2n(exponent(fmt[2]) + 1)
    reg = C[bi, i, j]
    outer = 0.0
    for k0 in range(0, kk, group):
        if chunk > 0 and k0 > 0 and k0 % chunk == 0:
            outer = promote_one(outer, reg, ofmt)
            reg = 0.0
        k1 = min(kk, k0 + group)
        e0 = c_exponent(reg, c_emin, zero_exp) if c_aligned else NO_EXP
        e1 = NO_EXP
        for k in range(k0, k1):
            x = EA[ai if EA.shape[0] > 1 else 0, i, k] + EB[bj if EB.shape[0] > 1 else 0, k, j]
            if ((k - k0) // subsum) % lanes == 0:
                e0 = max(e0, x)
            else:
                e1 = max(e1, x)
        sc0 = pow2n(frac_bits - e0) if e0 > NO_TERM else 0.0
        sc1 = pow2n(frac_bits - e1) if e1 > NO_TERM else 0.0
        s0 = s1 = 0.0
        sp = reg if not abs(reg) < np.inf else 0.0
        all_zero, pos, neg = True, False, False
        for u in range((k1 - k0 + subsum - 1) // subsum):
            p = 0.0
            for k in range(k0 + u * subsum, min(k1, k0 + (u + 1) * subsum)):
                q = A[ai, i, k] * B[bj, k, j]
                p += q
                pos |= product_overflow != 0 and q >= over
                neg |= product_overflow != 0 and q <= -over
            if u % lanes == 0:
                s0 += cut(p * sc0, cut_mode)
            else:
                s1 += cut(p * sc1, cut_mode)
            sp += p if not abs(p) < np.inf else 0.0
            all_zero &= p == 0.0
        special = not (abs(s0 + (s1 if lanes > 1 else 0.0)) < np.inf and abs(reg) < np.inf)
        reg = finish_sums(reg, s0, s1, np.int32(e0), np.int32(e1), sc0, special, sp, all_zero,
                          pos, neg, cfg, fmt, over)
    D[bi, i, j] = promote_one(outer, reg, ofmt) if chunk > 0 else reg


@cuda.jit
def chain_kernel(A, B, C, D, wide):
    """kernels.chain.fma_chain, element by element (``wide``: float64 arrays, else float32)."""
    t = cuda.grid(1)
    nb, m, n = D.shape
    if t < nb * m * n:
        bi, i, j = t // (m * n), (t // n) % m, t % n
        ai, bj = (bi if A.shape[0] > 1 else 0), (bi if B.shape[0] > 1 else 0)
        r = np.float64(C[bi, i, j])
        for k in range(A.shape[2]):
            r = fma_step(A[ai, i, k], B[bj, k, j], r, wide)
        D[bi, i, j] = r


@cuda.jit
def pairwise_kernel(A, B, C, D, group, k_step, ftz):
    """kernels.chain.pairwise_groups, element by element, in the same float32 operations."""
    t = cuda.grid(1)
    nb, m, n = D.shape
    if t < nb * m * n:
        bi, i, j = t // (m * n), (t // n) % m, t % n
        ai, bj = (bi if A.shape[0] > 1 else 0), (bi if B.shape[0] > 1 else 0)
        vals = cuda.local.array(16, np.float32)        # group <= 16 (PairwiseGroups)
        r = C[bi, i, j]
        for k0 in range(0, A.shape[2], group):
            if ftz and k0 % k_step == 0 and abs(r) < TINY32:
                r = np.float32(0.0)
            for u in range(group):          # the float32 product as the exact float64 one
                # rounded once (a float32 multiply; NVVM cannot contract it into the adds)
                p = np.float64(A[ai, i, k0 + u]) * np.float64(B[bj, k0 + u, j])
                vals[u] = flush(np.float32(p), ftz)
            s = 1
            while s < group:
                for u in range(0, group, 2 * s):
                    vals[u] = flush(vals[u] + vals[u + s], ftz)
                s *= 2
            r = flush(r + vals[0], ftz)
        D[bi, i, j] = r


# --- block formats: a block's amax (one thread per block), then its elements (one per element) ---
@cuda.jit(device=True)
def amax_span(x, lo, hi):
    """kernels.block.amax_run: (largest |x[i]| ignoring NaN, whether a NaN was seen)."""
    top, nan = 0.0, False
    for i in range(lo, hi):
        a = abs(np.float64(x[i]))
        if a != a:
            nan = True
        else:
            top = max(top, a)
    return top, nan


@cuda.jit
def block_amax_kernel(x, amax, nan, kind, length, n, height, width, r, c):
    """amax[t], nan[t] of block t: runs of n along rows of ``length`` (the tensor layout's
    partial maxima are runs of CHUNK), or r x c tiles of (B, height, width)."""
    t = cuda.grid(1)
    if t >= amax.size:
        return
    if kind == TILES:
        b, r0, r1, c0, c1 = tile_bounds(t, height, width, r, c)
        top, seen = 0.0, False
        for row in range(r0, r1):
            base = (b * height + row) * width
            a, f = amax_span(x, base + c0, base + c1)
            top, seen = max(top, a), seen | f
    else:
        lo, hi = run_bounds(t, length, n)
        top, seen = amax_span(x, lo, hi)
    amax[t] = top
    nan[t] = seen


@cuda.jit(device=True)
def block_of(i, kind, length, n, height, width, r, c):
    """(block of element i in the order of the scales, whether i is its first element)."""
    if kind == RUNS:
        col = i % length
        return (i // length) * ((length + n - 1) // n) + col // n, col % n == 0
    if kind == TILES:
        row, col = (i // width) % height, i % width
        gr, gc = (height + r - 1) // r, (width + c - 1) // c
        return ((i // (height * width)) * gr + row // r) * gc + col // c, \
            row % r == 0 and col % c == 0
    return 0, i == 0


@cuda.jit
def block_kernel(x, out, scales, amax, nan, kind, length, n, height, width, r, c, man_bits,
                 emin, maxv, min_normal, spec, subnormals, lo_v, hi_v, signed_zero, emax_elem,
                 s_lo, s_hi, nan_scale, mode, r_bits, key):
    """Element i of kernels.block's quantize_runs / quantize_tiles / quantize_tensor: its
    block's exponent (block.exponent_of; the block's first element stores it), then
    block.round_scaled."""
    i = cuda.grid(1)
    if i < x.size:
        t, first = block_of(i, kind, length, n, height, width, r, c)
        s = exponent_of(amax[t], nan[t], emax_elem, s_lo, s_hi, nan_scale)
        if first:
            scales[t] = s
        u = np.uint64(random_word(key, i)) if mode >= SR else np.uint64(0)
        out[i] = round_scaled(np.float64(x[i]), u, s, man_bits, emin, maxv, min_normal, spec,
                              subnormals, lo_v, hi_v, signed_zero, mode, r_bits)


@cuda.jit
def scaled_kernel(x, vals, elems, scales, amax, nan, kind, length, n, height, width, r, c,
                  el_max, el, sf, sf_min, mode, r_bits, key):
    """Element i of kernels.scaled's scaled_runs / scaled_tiles (value scales): the block's
    scale by the exact quotient (scaled.block_scale), the element by scaled.exact_element (the
    exact path the CPU's lanes are proven equal to)."""
    i = cuda.grid(1)
    if i < x.size:
        t, first = block_of(i, kind, length, n, height, width, r, c)
        s = block_scale(amax[t], nan[t], el_max, sf, sf_min, False)
        if first:
            scales[t] = s
        if s != s:
            vals[i] = np.nan
            elems[i] = np.nan
        else:
            u = np.uint64(random_word(key, i)) if mode >= SR else np.uint64(0)
            e = exact_element(np.float64(x[i]), s, el, mode, r_bits, u)
            elems[i] = e
            vals[i] = e * s
