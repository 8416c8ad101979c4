"""The fused dot-add of matrix engines (tensor cores, matrix cores), over a whole GEMM.

One step takes a group of ``g`` products and the incoming register value ``c``:

1. products ``p_k = a_k * b_k`` are exact in float64 (:func:`supports`); with ``subsum`` > 1,
   each run of ``subsum`` consecutive products is summed exactly first and is one term (the
   exact 16-element sub-sums of NVIDIA's FP4 block-scaled instructions);
2. the terms are dealt to ``lanes`` (1 or 2: k even and k odd, AMD CDNA3's FP8 halves); the
   alignment exponent of a lane is the largest term exponent in it (given per input: EA + EB),
   and ``c``'s when it joins the alignment (lane 0);
3. each aligned term keeps ``F`` fractional bits below ``2**e``: it is cut to a multiple of
   ``q = 2**(e - F)`` toward zero (``CUT_RTZ``, sign-magnitude truncation), toward -inf
   (``CUT_RDN``, two's-complement truncation) or to nearest-even (``CUT_RNE``);
4. the cut terms are added exactly (integers in units of ``q``); two lanes are re-aligned to
   the larger exponent, each floored to ``F`` fractional bits, and added; with ``carry`` >= 0
   the adder holds ``F + 1 + carry`` magnitude bits and a sign, and a sum outside that range
   wraps as a two's-complement adder does;
5. ``c`` outside the alignment is added exactly to this sum, or late (``late_sum`` >= 0, AMD
   CDNA3): with ``m`` the larger of the sum's and ``c``'s exponents, the sum floored to
   ``late_sum`` and ``c`` to ``late_c`` fractional bits below ``2**m`` (``c`` dropped when its
   exponent is below ``m - late_drop``, ``late_drop`` >= 0);
6. the sum is rounded once into the register format (mode ``mode``): the next step's ``c``.
   ``product_overflow``: a product of magnitude ``>= 2**(emax + 1)`` of the register makes the
   result that Inf (NaN for both signs), whatever the other terms.

Exactness: every product, sub-sum, cut term and sum is a float64 integer multiple of a power of
two below 2**53 (``supports``), so each step is computed exactly and rounded once
(``rounding.round_f64`` on an exact value, or ``arith.round_sum`` on an exact pair when ``c`` is
added outside the alignment).  Specials: a NaN term, or +Inf and -Inf together, give NaN; an Inf
term gives that Inf (the register format's overflow rules then apply).

Work is split into (batch, block of rows, column tile) tasks; the registers of a tile are vectors
and each group updates them whole.
"""

import math

import numpy as np
from numba import njit, prange

from .arith import round_sum, two_sum, zero_sum_sign
from .bits import bits_f64, f64_bits
from .gemm import n_tasks, task_tile
from .rounding import RNE, RTZ, round_f64

CUT_RTZ, CUT_RDN, CUT_RNE = range(3)
CUTS = {"rtz": CUT_RTZ, "rdn": CUT_RDN, "rne": CUT_RNE}
TILE = 128
ROWS = 4                   # rows of A per task: each row of B serves them all from cache
TASK_RUNS = 64             # tasks are run in this many runs (fewer when there are fewer tasks),
                           # each making its working arrays once: small tiles (attention's
                           # products) spent much of their time allocating them
NO_EXP = -(1 << 30)        # alignment exponent of a group without any term (int32)
NO_TERM = -(1 << 20)       # exponents below this never set the alignment (an input exponent of
                           # NO_INPUT plus any other stays below it)
NO_INPUT = -(1 << 28)      # the alignment exponent given to zeros that do not take part
MAGIC = 1.5 * 2.0 ** 52    # x + MAGIC - MAGIC rounds |x| < 2**51 to an integer, nearest-even


def supports(frac_bits, terms, term_emin, term_emax, head=2, late_sum=-1):
    """Whether the fused kernel is exact for ``terms`` terms per group plus ``c``, each of
    magnitude below ``2**(e + head)`` for its term exponent ``e`` (head 2 for a product of two
    significands below 2; ``c``'s is below 2): a cut term has at most ``frac_bits + head`` bits,
    so the float64 sum of ``terms + 1`` of them, before any carry wrap, and the late sum at
    ``late_sum`` fractional bits (``late_sum >= 0``) stay below 2**53; every term exponent lies
    in ``[term_emin, term_emax]`` (``c``'s included), so that the quantum ``2**(e - frac_bits)``,
    the scale ``2**(frac_bits - e)`` and the re-alignment factors ``2**(e - e')`` are normal
    float64 powers of two.  (That products and runs of ``subsum`` products are exact in float64
    is the caller's condition: :func:`subsum_exact`.)"""
    bits = max(frac_bits, late_sum) + head + int(np.ceil(np.log2(terms + 2)))
    low = term_emin - term_emax - frac_bits + max(late_sum, 0)
    return frac_bits >= 0 and bits <= 53 and term_emin - frac_bits >= -1022 \
        and frac_bits - term_emin <= 1023 and term_emax + head <= 1021 and low >= -1022


def float32_cuts(frac_bits, terms, cut_mode, subsum, a, b, register_emax):
    """Whether the products' cut-and-sum pass (step 3 and lane sums of step 4) may run in
    float32 lanes - twice the elements per vector instruction - with the float64 pass's
    results.  ``a``, ``b``: ``(man_bits, emin, emax)`` of the inputs (no block scales);
    ``register_emax``: the largest exponent ``c`` can have.

    Proof.  (i) Inputs with at most 24 significant bits, exponents up to 127 and quanta of at
    least 2**-149 are float32 values, and their products (at most ``a.man + b.man + 2 <= 24``
    bits, quanta >= 2**-149, below 2**(a.emax + b.emax + 2) <= 2**128) are exact in float32.
    (ii) The scale 2**(F - e) (F = frac_bits, e the group's alignment exponent, at most
    max(a.emax + b.emax + 1, register_emax)) is a normal float32 when F - e >= -126; where a
    group has no nonzero product e may be lower, and the scale is clamped to 2**127 (it then
    multiplies zeros only; a non-finite input takes the special path either way).  (iii) x = p *
    scale: where |x| >= 1/2 it is exact (it has p's bits and is no float32 subnormal); where
    |x| < 1/2 the float32 product is below 1/2 too (rounding is monotone and 1/2 a float32), so
    its truncation is +-0 as the exact one's (sign-magnitude, ``rtz``); for ``rdn`` (floor) the
    float32 product must not underflow to -0, which holds when the smallest product times the
    smallest scale, 2**(a.emin - a.man + b.emin - b.man + F - e_max), is at least 2**-149.
    (iv) A group's sum of ``terms`` cut values, each an integer below 2**(F + 2), stays below
    2**24 when F + 2 + ceil(log2(terms)) <= 24: every partial sum is exact.  Nearest-even cuts
    and runs of products (``subsum``) stay in float64."""
    (am, a_emin, a_emax), (bm, b_emin, b_emax) = a, b
    if subsum != 1 or cut_mode not in (CUT_RTZ, CUT_RDN):
        return False
    inputs = all(m <= 23 and emax <= 127 and emin - m >= -149 for m, emin, emax in (a, b))
    e_max = max(a_emax + b_emax + 1, register_emax)
    low = a_emin - am + b_emin - bm
    return inputs and am + bm + 2 <= 24 and low >= -149 and a_emax + b_emax + 2 <= 128 \
        and frac_bits - e_max >= -126 and frac_bits + 2 + int(np.ceil(np.log2(terms))) <= 24 \
        and (cut_mode == CUT_RTZ or low + frac_bits - e_max >= -149)


def subsum_exact(product_bits, subsum):
    """Whether a sum of ``subsum`` products is exact in float64 when each product is an integer
    multiple of one power of two ``q`` below ``2**product_bits * q`` (the products of a run share
    their inputs' formats and block scales)."""
    return product_bits + int(np.ceil(np.log2(subsum))) <= 53


@njit(cache=True, inline="always")
def exponent(x):
    """floor(log2 |x|) of a normal float64 x (all terms are normal: :func:`supports`)."""
    return ((f64_bits(x) >> np.int64(52)) & np.int64(0x7FF)) - np.int64(1023)


@njit(cache=True, parallel=True)
def input_exponents(x, lo, zero, out):
    """out[i] = floor(log2 |x[i]|) raised to ``lo`` for finite nonzero x[i], else ``zero``
    (1-D float64 x, int32 out): each input's alignment exponent.  From the exponent field where
    lo >= -1022 (a float64 subnormal is raised to lo either way), else by frexp."""
    if lo >= -1022:
        for i in prange(x.size):
            v = x[i]
            e = max(exponent(v), np.int64(lo))
            out[i] = zero if v == 0.0 or not abs(v) < np.inf else e
    else:
        for i in prange(x.size):
            v = x[i]
            if v == 0.0 or not abs(v) < np.inf:
                out[i] = zero
            else:
                out[i] = max(math.frexp(v)[1] - 1, lo)


@njit(cache=True, inline="always")
def c_exponent(c, c_emin, zero_exp):
    """c's alignment exponent where c joins the alignment (lane 0): floor(log2 |c|) raised to
    c_emin, zero_exp for a zero, NO_EXP for Inf and NaN (the special path settles those)."""
    e = max(exponent(c), np.int64(c_emin)) if abs(c) < np.inf else NO_EXP
    return zero_exp if c == 0.0 else e


@njit(cache=True, inline="always")
def pow2n(e):
    """2.0**e for a normal exponent -1022 <= e <= 1023."""
    return bits_f64(np.int64(e + 1023) << np.int64(52))


@njit(cache=True, inline="always")
def cut(x, cut_mode):
    """x (a float64 integer-scaled value) cut to an integer: toward zero, -inf or nearest-even."""
    if cut_mode == CUT_RTZ:
        return np.trunc(x)
    if cut_mode == CUT_RDN:
        return np.floor(x)
    return (x + MAGIC) - MAGIC if abs(x) < 2.0 ** 51 else x


@njit(cache=True, inline="always")
def wrap(s, bits):
    """s (an integer below 2**53) as a two's-complement adder of ``bits`` bits holds it."""
    span = 2.0 ** bits
    half = span / 2
    r = np.fmod(s, span)            # exact: fmod of integers by a power of two
    if r >= half:
        r -= span
    elif r < -half:
        r += span
    return r


@njit(cache=True)
def fused_task(A, B, C, D, EA, EB, A32, B32, bi, i0, rows, j0, w, cfg, fmt, ofmt, bufs):
    """Rows i0..i0+rows-1, columns j0..j0+w-1 of one batch: every group of K in order, D
    chaining into C.  EA/EB: the alignment exponent of each input (int32; see
    :func:`fused_gemm`); cfg: the model's integers (see :func:`fused_gemm`); A32/B32: A and B
    as float32 for the cut pass in float32 lanes (:func:`float32_cuts`), or 0-sized; bufs:
    :func:`task_buffers` (every value the task reads it writes first).

    Per group: the alignment exponents (a vector pass over EB per row), then the products cut
    and summed (a pass over B, each row of B used by every row of the block while it is in
    cache; runs of ``subsum`` products summed exactly first), then the results: a vector pass
    (:func:`round_pass`) rounds every column whose sum lies in the register's normal range, and
    :func:`finish` the others one by one.  With ``chunk`` > 0, every ``chunk`` elements of K
    the register is added into an outer register (format and mode ``ofmt``) and restarts
    from +0 (promotion)."""
    (group, frac_bits, cut_mode, c_aligned, carry, c_emin, zero_exp, overflow_inf, subsum,
     lanes, late_sum, late_c, late_drop, product_overflow, chunk) = cfg
    mode = fmt[7]
    kk = A.shape[2]
    a_mat = A[bi if A.shape[0] > 1 else 0]
    b_mat = B[bi if B.shape[0] > 1 else 0]
    ea_mat = EA[bi if EA.shape[0] > 1 else 0]
    eb_mat = EB[bi if EB.shape[0] > 1 else 0]
    over = pow2n(exponent(fmt[2]) + 1)
    fast = carry < 0 and (mode == RTZ or mode == RNE) and \
        ((c_aligned and lanes == 1) or late_sum >= 0)
    # ROWS rows always; past the last row of the output (rows < ROWS) the last row is computed
    # again and dropped, so the passes over B are one four-row code
    reg, emax, acc, scale, acc32, scale32, run, ok, outer, rix = bufs
    for r in range(ROWS):
        rix[r] = i0 + min(r, rows - 1)
        for j in range(w):
            reg[r, j] = C[np.uint64(bi), np.uint64(rix[r]), np.uint64(j0 + j)]   # no gathers
            if chunk > 0:
                outer[r, j] = 0.0
    f32 = A32.size > 0
    # products four at a time where the engines of the tables need it (each variant of these
    # long loops adds to the kernel's compile time): cuts toward zero, no runs, float64 lanes
    # or float32 lanes with one lane
    by_four = subsum == 1 and cut_mode == CUT_RTZ and (lanes == 1 or not f32)
    a32 = A32[bi if A32.shape[0] > 1 else 0]
    b32 = B32[bi if B32.shape[0] > 1 else 0]
    for k0 in range(0, kk, group):
        if chunk > 0 and k0 > 0 and k0 % chunk == 0:
            promote(outer, reg, ofmt, w)
        k1 = min(kk, k0 + group)
        for r in range(ROWS):                   # the tile's columns only (buffers are TILE wide)
            for ln in range(lanes):
                for j in range(w):
                    acc[r, ln, j] = 0.0
                    emax[r, ln, j] = NO_EXP
        if c_aligned:
            for r in range(ROWS):
                ur = np.uint64(r)
                for j in range(w):
                    uj = np.uint64(j)
                    emax[ur, np.uint64(0), uj] = c_exponent(reg[ur, uj], c_emin, zero_exp)
        quads = k0 + (k1 - k0) // 4 * 4 if by_four else k0        # products 4 at a time
        for k in range(k0, quads, 4):           # the alignment exponents
            exponent_quad(emax, ea_mat, eb_mat, rix, k, j0, w, lanes)
        for k in range(quads, k1):
            exponent_rows(emax, ((k - k0) // subsum) % lanes, ea_mat, eb_mat, rix, k, j0, w)
        for r in range(ROWS):
            for ln in range(lanes):
                ur, ul = np.uint64(r), np.uint64(ln)
                for j in range(w):
                    uj = np.uint64(j)
                    em = emax[ur, ul, uj]
                    scale[ur, ul, uj] = pow2n(frac_bits - em) if em > NO_TERM else 0.0
        if f32:
            for r in range(ROWS):
                for ln in range(lanes):
                    for j in range(w):
                        acc32[r, ln, j] = 0.0
                        scale32[r, ln, j] = np.float32(min(scale[r, ln, j], 2.0 ** 127))
        for k in range(k0, quads, 4):           # the products, cut and summed
            if f32:
                cut_quad(acc32, scale32, a32, b32, rix, k, j0, w, lanes)
            else:
                cut_quad(acc, scale, a_mat, b_mat, rix, k, j0, w, lanes)
        for k in range(quads, k1):              # the rest (or runs), cut and summed
            t = (k - k0) // subsum
            if subsum == 1:
                if f32 and cut_mode == CUT_RTZ:     # float32 lanes: rtz or rdn cuts only
                    cut_rows(acc32, scale32, t % lanes, a32, b32, rix, k, j0, w, CUT_RTZ)
                elif f32:
                    cut_rows(acc32, scale32, t % lanes, a32, b32, rix, k, j0, w, CUT_RDN)
                else:
                    cut_step(acc, scale, t % lanes, a_mat, b_mat, rix, k, j0, w, cut_mode)
                continue
            bk = b_mat[k, j0:j0 + w]
            for r in range(ROWS):
                a = a_mat[rix[r], k]
                if (k - k0) % subsum == 0:
                    for j in range(w):
                        run[r, j] = 0.0
                rr = run[r]
                for j in range(w):
                    rr[j] += a * bk[j]
                if (k - k0) % subsum == subsum - 1 or k == k1 - 1:
                    cut_add(acc[r, t % lanes], rr, 1.0, scale[r, t % lanes], w, cut_mode)
        if f32:                                  # exact: integers below 2**24
            for r in range(ROWS):
                for ln in range(lanes):
                    for j in range(w):
                        acc[r, ln, j] = acc32[r, ln, j]
        for r in range(rows):                   # the rows of the output only
            if fast:
                bad = round_pass(reg, acc, emax, scale, ok, r, w, cfg, fmt)
            else:
                for j in range(w):
                    ok[j] = False
                bad = w
            for j in range(w if bad > 0 else 0):        # most groups: none left
                if not ok[j]:
                    reg[r, j] = finish(reg[r, j], a_mat, b_mat, i0 + r, j0, k0, k1, acc[r],
                                       emax[r], scale[r], j, cfg, fmt, over)
    if chunk > 0:
        promote(outer, reg, ofmt, w)
        reg = outer
    for r in range(rows):
        for j in range(w):
            D[np.uint64(bi), np.uint64(i0 + r), np.uint64(j0 + j)] = reg[r, j]


@njit(cache=True)
def task_buffers(lanes, chunk, f32):
    """The working arrays of :func:`fused_task` for tiles up to TILE wide, made once per run of
    tasks: (reg, emax, acc, scale, acc32, scale32, run, ok, outer, rix)."""
    return (np.empty((ROWS, TILE)), np.empty((ROWS, lanes, TILE), np.int32),   # int32: AVX2
            np.empty((ROWS, lanes, TILE)), np.empty((ROWS, lanes, TILE)),      # has its max
            np.empty((ROWS, lanes, TILE if f32 else 0), np.float32),
            np.empty((ROWS, lanes, TILE if f32 else 0), np.float32),
            np.empty((ROWS, TILE)), np.empty(TILE, np.bool_),
            np.empty((ROWS, TILE) if chunk > 0 else (0, 0)), np.empty(ROWS, np.int64))


@njit(cache=True)
def promote(outer, reg, ofmt, w):
    """outer = outer + reg rounded once into the outer format (IEEE zero signs), reg = +0, in
    columns 0..w-1."""
    for r in range(reg.shape[0]):
        for j in range(w):
            outer[r, j] = promote_one(outer[r, j], reg[r, j], ofmt)
            reg[r, j] = 0.0


@njit(cache=True, inline="always")
def promote_one(a, b, ofmt):
    """a + b rounded once into the outer format (``ofmt``), IEEE zero signs."""
    man_bits, emin, maxv, min_normal, spec, saturate, subnormals, mode = ofmt
    s, e = two_sum(a, b)
    if not (abs(s) < np.inf):
        s, e = a + b, 0.0
    else:
        s = zero_sum_sign(s, a, b, mode)
    return round_sum(s, e, np.uint64(0), man_bits, emin, maxv, min_normal, spec, saturate,
                     subnormals, mode, 0)


@njit(cache=True, inline="always")
def round_pass(reg, acc, emax, scale, ok, r, w, cfg, fmt):
    """The vector pass: reg[j] becomes the rounded sum of column j where that sum lies in the
    register's normal range (ok[j] set; rounding toward zero, or to nearest-even, by masking
    the float64 bits of the exact sum), for c in the alignment (NVIDIA) or c added late
    (AMD CDNA3); other columns keep their c for :func:`finish`.  Returns how many those are."""
    (group, frac_bits, cut_mode, c_aligned, carry, c_emin, zero_exp, overflow_inf, subsum,
     lanes, late_sum, late_c, late_drop, product_overflow, chunk) = cfg
    man_bits, emin, maxv, min_normal, spec, saturate, subnormals, mode = fmt
    top = exponent(maxv) - 1      # a term exponent up to this: every product below over
    drop = np.int64(52 - man_bits)
    keep = ~((np.int64(1) << drop) - np.int64(1))           # the register's fraction bits
    half = (np.int64(1) << (drop - np.int64(1))) - np.int64(1)
    bad = 0
    ur, u0, u1 = np.uint64(r), np.uint64(0), np.uint64(lanes - 1)
    for j in range(w):
        uj = np.uint64(j)
        c = reg[ur, uj]
        if late_sum < 0:                 # c in the alignment (NVIDIA)
            s = acc[ur, u0, uj] + cut(c * scale[ur, u0, uj], cut_mode)
            e = np.int64(emax[ur, u0, uj])
            v = s * pow2n(e - frac_bits)     # exact: s has at most 53 bits
        else:                            # c late, floored (AMD CDNA3)
            e = np.int64(emax[ur, u0, uj])
            s = acc[ur, u0, uj]
            if lanes > 1:
                e = max(e, np.int64(emax[ur, u1, uj]))
                s = np.floor(s * pow2n(emax[ur, u0, uj] - e)) + \
                    np.floor(acc[ur, u1, uj] * pow2n(emax[ur, u1, uj] - e))
            ec = max(exponent(c), np.int64(c_emin)) if c != 0.0 else np.int64(zero_exp)
            m = max(e, ec)
            v = np.floor(s * pow2n(e - frac_bits + late_sum - m))
            if not (late_drop >= 0 and ec < m - late_drop):
                v += np.floor(c * pow2n(late_c - m)) * pow2n(late_sum - late_c)
            v *= pow2n(m - late_sum)
        b = f64_bits(v)
        if mode == RNE:                  # to nearest-even at the register's last bit
            b += half + ((b >> drop) & np.int64(1))
        x = bits_f64(b & keep)           # toward zero there (and after the RNE carry)
        good = (abs(v) >= min_normal) & (abs(x) < maxv) & (abs(c) < np.inf) & \
            (abs(s) < np.inf) & (e <= top) & (np.int64(emax[ur, u1, uj]) > NO_TERM)
        # c = +0 and a zero sum of finite cut terms (a group of zeros, as causal attention
        # has, or terms cut away): +0 whatever the terms were (:func:`finish` gives +0 there,
        # unless a product beyond the range makes Inf or NaN)
        zero = (f64_bits(c) == 0) & (s == 0.0) & (product_overflow == 0)
        x = 0.0 if zero else x
        good = good | zero
        ok[uj] = good
        bad += not good
        reg[ur, uj] = x if good else c
    return bad


@njit(cache=True, inline="always")
def exponent_rows(emax, ln, ea_mat, eb_mat, rix, k, j0, w):
    """emax[r, ln, j] = max(emax[r, ln, j], EA[rix[r], k] + EB[k, j0 + j]) for the four rows:
    each loaded EB value serves four rows; indices, not views (reference counting per view
    rivals these loops' arithmetic)."""
    uk, ul = np.uint64(k), np.uint64(ln)
    e0, e1 = ea_mat[np.uint64(rix[0]), uk], ea_mat[np.uint64(rix[1]), uk]
    e2, e3 = ea_mat[np.uint64(rix[2]), uk], ea_mat[np.uint64(rix[3]), uk]
    for j in range(w):
        uj = np.uint64(j)
        eb = eb_mat[uk, np.uint64(j0 + j)]
        emax[0, ul, uj] = max(emax[0, ul, uj], np.int32(e0 + eb))
        emax[1, ul, uj] = max(emax[1, ul, uj], np.int32(e1 + eb))
        emax[2, ul, uj] = max(emax[2, ul, uj], np.int32(e2 + eb))
        emax[3, ul, uj] = max(emax[3, ul, uj], np.int32(e3 + eb))


@njit(cache=True, inline="always")
def cut_rows(acc, scale, ln, a_mat, b_mat, rix, k, j0, w, cut_mode):
    """acc[r, ln, j] += the cut of A[rix[r], k] * B[k, j0 + j] * scale[r, ln, j] for the four
    rows (exact: an exact product times a power of two); ``cut_mode`` a literal."""
    uk, ul = np.uint64(k), np.uint64(ln)
    a0, a1 = a_mat[np.uint64(rix[0]), uk], a_mat[np.uint64(rix[1]), uk]
    a2, a3 = a_mat[np.uint64(rix[2]), uk], a_mat[np.uint64(rix[3]), uk]
    for j in range(w):
        uj = np.uint64(j)
        b = b_mat[uk, np.uint64(j0 + j)]
        acc[0, ul, uj] += cut(a0 * b * scale[0, ul, uj], cut_mode)
        acc[1, ul, uj] += cut(a1 * b * scale[1, ul, uj], cut_mode)
        acc[2, ul, uj] += cut(a2 * b * scale[2, ul, uj], cut_mode)
        acc[3, ul, uj] += cut(a3 * b * scale[3, ul, uj], cut_mode)


# Products four at a time (k..k+3, k - k0 a multiple of 4): each emax and acc value is read
# and written once per four products, each row of B serves the four rows of A.  With two lanes,
# k and k+2 go to lane 0, k+1 and k+3 to lane 1.  The per-row steps are small functions that
# LLVM inlines: Numba's own inlining of them made the kernel's compile time half as long again.

@njit(cache=True)
def quad_of_rows(mat, rix, k):
    """mat[rix[r], k..k+3] for the four rows r, as four 4-tuples."""
    k0, k1, k2, k3 = np.uint64(k), np.uint64(k + 1), np.uint64(k + 2), np.uint64(k + 3)
    r0, r1 = np.uint64(rix[0]), np.uint64(rix[1])
    r2, r3 = np.uint64(rix[2]), np.uint64(rix[3])
    return ((mat[r0, k0], mat[r0, k1], mat[r0, k2], mat[r0, k3]),
            (mat[r1, k0], mat[r1, k1], mat[r1, k2], mat[r1, k3]),
            (mat[r2, k0], mat[r2, k1], mat[r2, k2], mat[r2, k3]),
            (mat[r3, k0], mat[r3, k1], mat[r3, k2], mat[r3, k3]))


@njit(cache=True)
def quad_max_one(e0, e1, e2, e3, b0, b1, b2, b3, emax, ur, uj):
    """Row ur's alignment exponent (one lane) raised to those of products k..k+3 (input
    exponents e* of A, b* of B)."""
    m = max(max(e0 + b0, e1 + b1), max(e2 + b2, e3 + b3))
    emax[ur, np.uint64(0), uj] = max(emax[ur, np.uint64(0), uj], np.int32(m))


@njit(cache=True)
def quad_max_two(e0, e1, e2, e3, b0, b1, b2, b3, emax, ur, uj):
    """:func:`quad_max_one` into two lanes (even and odd k)."""
    u0, u1 = np.uint64(0), np.uint64(1)
    emax[ur, u0, uj] = max(emax[ur, u0, uj], np.int32(max(e0 + b0, e2 + b2)))
    emax[ur, u1, uj] = max(emax[ur, u1, uj], np.int32(max(e1 + b1, e3 + b3)))


@njit(cache=True)
def quad_cut_one(a0, a1, a2, a3, b0, b1, b2, b3, acc, scale, ur, uj):
    """Row ur's products k..k+3 (inputs a* of A, b* of B) cut toward zero at its alignment
    and added to its lane (integers: exact in any order, :func:`supports`)."""
    u0 = np.uint64(0)
    s = scale[ur, u0, uj]
    acc[ur, u0, uj] += (np.trunc(a0 * b0 * s) + np.trunc(a1 * b1 * s)) + \
        (np.trunc(a2 * b2 * s) + np.trunc(a3 * b3 * s))


@njit(cache=True)
def quad_cut_two(a0, a1, a2, a3, b0, b1, b2, b3, acc, scale, ur, uj):
    """:func:`quad_cut_one` into two lanes (even and odd k)."""
    u0, u1 = np.uint64(0), np.uint64(1)
    s0, s1 = scale[ur, u0, uj], scale[ur, u1, uj]
    acc[ur, u0, uj] += np.trunc(a0 * b0 * s0) + np.trunc(a2 * b2 * s0)
    acc[ur, u1, uj] += np.trunc(a1 * b1 * s1) + np.trunc(a3 * b3 * s1)


@njit(cache=True)
def exponent_quad(emax, ea_mat, eb_mat, rix, k, j0, w, lanes):
    """:func:`exponent_rows` for the products k..k+3 of the four rows."""
    ((e00, e01, e02, e03), (e10, e11, e12, e13), (e20, e21, e22, e23),
     (e30, e31, e32, e33)) = quad_of_rows(ea_mat, rix, k)
    k0, k1, k2, k3 = np.uint64(k), np.uint64(k + 1), np.uint64(k + 2), np.uint64(k + 3)
    u0, u1, u2, u3 = np.uint64(0), np.uint64(1), np.uint64(2), np.uint64(3)
    if lanes == 1:
        for j in range(w):
            uj, c = np.uint64(j), np.uint64(j0 + j)
            b0, b1, b2, b3 = eb_mat[k0, c], eb_mat[k1, c], eb_mat[k2, c], eb_mat[k3, c]
            quad_max_one(e00, e01, e02, e03, b0, b1, b2, b3, emax, u0, uj)
            quad_max_one(e10, e11, e12, e13, b0, b1, b2, b3, emax, u1, uj)
            quad_max_one(e20, e21, e22, e23, b0, b1, b2, b3, emax, u2, uj)
            quad_max_one(e30, e31, e32, e33, b0, b1, b2, b3, emax, u3, uj)
    else:
        for j in range(w):
            uj, c = np.uint64(j), np.uint64(j0 + j)
            b0, b1, b2, b3 = eb_mat[k0, c], eb_mat[k1, c], eb_mat[k2, c], eb_mat[k3, c]
            quad_max_two(e00, e01, e02, e03, b0, b1, b2, b3, emax, u0, uj)
            quad_max_two(e10, e11, e12, e13, b0, b1, b2, b3, emax, u1, uj)
            quad_max_two(e20, e21, e22, e23, b0, b1, b2, b3, emax, u2, uj)
            quad_max_two(e30, e31, e32, e33, b0, b1, b2, b3, emax, u3, uj)


@njit(cache=True)
def cut_quad(acc, scale, a_mat, b_mat, rix, k, j0, w, lanes):
    """:func:`cut_rows` toward zero for the products k..k+3 of the four rows."""
    ((a00, a01, a02, a03), (a10, a11, a12, a13), (a20, a21, a22, a23),
     (a30, a31, a32, a33)) = quad_of_rows(a_mat, rix, k)
    k0, k1, k2, k3 = np.uint64(k), np.uint64(k + 1), np.uint64(k + 2), np.uint64(k + 3)
    u0, u1, u2, u3 = np.uint64(0), np.uint64(1), np.uint64(2), np.uint64(3)
    if lanes == 1:
        for j in range(w):
            uj, c = np.uint64(j), np.uint64(j0 + j)
            b0, b1, b2, b3 = b_mat[k0, c], b_mat[k1, c], b_mat[k2, c], b_mat[k3, c]
            quad_cut_one(a00, a01, a02, a03, b0, b1, b2, b3, acc, scale, u0, uj)
            quad_cut_one(a10, a11, a12, a13, b0, b1, b2, b3, acc, scale, u1, uj)
            quad_cut_one(a20, a21, a22, a23, b0, b1, b2, b3, acc, scale, u2, uj)
            quad_cut_one(a30, a31, a32, a33, b0, b1, b2, b3, acc, scale, u3, uj)
    else:
        for j in range(w):
            uj, c = np.uint64(j), np.uint64(j0 + j)
            b0, b1, b2, b3 = b_mat[k0, c], b_mat[k1, c], b_mat[k2, c], b_mat[k3, c]
            quad_cut_two(a00, a01, a02, a03, b0, b1, b2, b3, acc, scale, u0, uj)
            quad_cut_two(a10, a11, a12, a13, b0, b1, b2, b3, acc, scale, u1, uj)
            quad_cut_two(a20, a21, a22, a23, b0, b1, b2, b3, acc, scale, u2, uj)
            quad_cut_two(a30, a31, a32, a33, b0, b1, b2, b3, acc, scale, u3, uj)


@njit(cache=True, inline="always")
def cut_step(acc, scale, ln, a_mat, b_mat, rix, k, j0, w, cut_mode):
    """:func:`cut_rows` with the cut mode as a literal, so that each loop has one cut."""
    if cut_mode == CUT_RTZ:
        cut_rows(acc, scale, ln, a_mat, b_mat, rix, k, j0, w, CUT_RTZ)
    elif cut_mode == CUT_RDN:
        cut_rows(acc, scale, ln, a_mat, b_mat, rix, k, j0, w, CUT_RDN)
    else:
        cut_rows(acc, scale, ln, a_mat, b_mat, rix, k, j0, w, CUT_RNE)


@njit(cache=True, inline="always")
def cut_add(ac, row, a, sc, w, cut_mode):
    """ac[j] += the cut of a * row[j] * sc[j] (exact: a * row[j] is an exact product or run
    sum, sc a power of two)."""
    if cut_mode == CUT_RTZ:
        for j in range(w):
            ac[j] += np.trunc(a * row[j] * sc[j])
    elif cut_mode == CUT_RDN:
        for j in range(w):
            ac[j] += np.floor(a * row[j] * sc[j])
    else:
        for j in range(w):
            ac[j] += cut(a * row[j] * sc[j], CUT_RNE)


@njit(cache=True)
def term(a_mat, b_mat, i, j, k0, k1, t, subsum):
    """Term t of a group of column j: a product, or the exact sum of a run of subsum."""
    s = 0.0
    for k in range(k0 + t * subsum, min(k1, k0 + (t + 1) * subsum)):
        s += a_mat[i, k] * b_mat[k, j]
    return s


@njit(cache=True)
def finish(c, a_mat, b_mat, i, j0, k0, k1, acc, emax, scale, j, cfg, fmt, over):
    """Column j's register value after one group (c before it): the lanes' sums combined, c
    added, one rounding; every case (specials, zeros, overflow, subnormals, late C)."""
    lanes, subsum, product_overflow = cfg[9], cfg[8], cfg[13]
    n_terms = (k1 - k0 + subsum - 1) // subsum
    s0, s1 = acc[0, j], acc[lanes - 1, j]
    special = not (abs(s0 + (s1 if lanes > 1 else 0.0)) < np.inf and abs(c) < np.inf)
    sp, all_zero, pos, neg = 0.0, True, False, False
    if special:                          # a NaN or an Inf among the terms (a non-finite
        sp = c if not abs(c) < np.inf else 0.0      # product makes the sum non-finite)
        for t in range(n_terms):
            p = term(a_mat, b_mat, i, j0 + j, k0, k1, t, subsum)
            sp += p if not abs(p) < np.inf else 0.0
    else:
        for t in range(n_terms):
            all_zero &= term(a_mat, b_mat, i, j0 + j, k0, k1, t, subsum) == 0.0
        for k in range(k0, k1 if product_overflow else k0):     # each product, not each run
            p = a_mat[i, k] * b_mat[k, j0 + j]
            pos |= p >= over
            neg |= p <= -over
    return finish_sums(c, s0, s1, emax[0, j], emax[lanes - 1, j], scale[0, j], special, sp,
                       all_zero, pos, neg, cfg, fmt, over)


@njit(cache=True)
def finish_sums(c, s0, s1, e0, e1, sc0, special, sp, all_zero, pos, neg, cfg, fmt, over):
    """:func:`finish` from the group's scalars (the GPU kernel calls it directly): the lanes'
    cut sums s0, s1, alignment exponents e0, e1 and lane 0's scale sc0 (s1 and e1 read only
    with two lanes); ``special``: a sum or c not finite, then sp: the sum of the non-finite
    terms (c first, terms in order); all_zero: every term is zero; pos, neg: a product at least
    ``over`` in magnitude, of that sign (with ``product_overflow``)."""
    (group, frac_bits, cut_mode, c_aligned, carry, c_emin, zero_exp, overflow_inf, subsum,
     lanes, late_sum, late_c, late_drop, product_overflow, chunk) = cfg
    man_bits, emin, maxv, min_normal, spec, saturate, subnormals, mode = fmt
    if special:
        return round_f64(sp, np.uint64(0), man_bits, emin, maxv, min_normal, spec, saturate,
                         subnormals, mode, 0)
    s = s0
    if lanes > 1:
        s += s1
    if product_overflow and (pos or neg):  # a product beyond the register's range: Inf,
        return np.nan if pos and neg else (np.inf if pos else -np.inf)   # ignoring the rest
    if c == 0.0 and s == 0.0 and all_zero:   # no nonzero term at all: c's zero passes
        return round_f64(c, np.uint64(0), man_bits, emin, maxv, min_normal, spec, saturate,
                         subnormals, mode, 0)
    s = s0
    if c_aligned and c != 0.0:           # c in lane 0's alignment
        s += cut(c * sc0, cut_mode)
    e = e0
    if lanes > 1:                        # lanes re-aligned to the larger exponent, floored
        e = max(e0, e1)
        s = np.floor(s * pow2n(e0 - e)) if e0 > NO_TERM else 0.0
        if e1 > NO_TERM:
            s += np.floor(s1 * pow2n(e1 - e))
    has_terms = e > NO_TERM
    if carry >= 0:
        s = wrap(s, frac_bits + 2 + carry)
    lo = 0.0
    if late_sum >= 0:                    # c joins late: both floored to the larger exponent
        ec = max(exponent(c), np.int64(c_emin)) if c != 0.0 else np.int64(zero_exp)
        m = max(np.int64(e), ec) if has_terms else ec
        v = np.floor(s * pow2n(e - frac_bits + late_sum - m)) if has_terms else 0.0
        if c != 0.0 and not (late_drop >= 0 and ec < m - late_drop):
            v += np.floor(c * pow2n(late_c - m)) * pow2n(late_sum - late_c)
        hi = v * pow2n(m - late_sum) + 0.0
    else:
        v = s * pow2n(e - frac_bits) if has_terms else 0.0
        if not c_aligned:                # c added exactly to the aligned sum
            hi, lo = two_sum(v, c)
            hi += 0.0                    # an exact zero sum is +0
        else:
            hi = v + 0.0
    if overflow_inf and (abs(hi) > over or (abs(hi) == over and (lo == 0.0 or
                                                                 (lo > 0.0) == (hi > 0.0)))):
        return np.inf if hi > 0 else -np.inf      # |hi + lo| >= over, hi + lo exact
    return round_sum(hi, lo, np.uint64(0), man_bits, emin, maxv, min_normal, spec, saturate,
                     subnormals, mode, 0)


@njit(cache=True, parallel=True)
def fused_gemm(A, B, C, D, EA, EB, cfg, fmt, ofmt, A32, B32):
    """D[b] = the fused dot-add chain of A[b] @ B[b] from C[b] (A: (BA, M, K), B: (BB, K, N),
    C and D: (Bt, M, N)).  EA (BA, M, K) and EB (BB, K, N): each input's alignment exponent
    (int32; below NO_TERM for inputs that never set the alignment).  cfg: the int64 tuple
    (group, frac_bits, cut_mode, c_aligned, carry, c_emin, zero_exp, overflow_inf, subsum,
    lanes, late_sum, late_c, late_drop, product_overflow, chunk); carry, late_sum, late_c,
    late_drop and chunk are -1 when unused; fmt and ofmt: the register's and the outer
    register's rounding arguments; A32, B32: A and B as float32 where :func:`float32_cuts`
    holds, else 0-sized float32 arrays.  Tasks: blocks of ROWS rows by TILE columns."""
    nb, m, n = D.shape
    tasks = n_tasks(nb, m, n, ROWS, TILE)
    per = max(1, tasks // TASK_RUNS)
    for run in prange((tasks + per - 1) // per):    # a run of tasks shares its buffers
        bufs = task_buffers(cfg[9], cfg[14], A32.size > 0)
        for task in range(run * per, min(tasks, (run + 1) * per)):
            bi, i0, i1, j0, w = task_tile(task, m, n, ROWS, TILE)
            fused_task(A, B, C, D, EA, EB, A32, B32, bi, i0, i1 - i0, j0, w, cfg, fmt, ofmt,
                       bufs)
