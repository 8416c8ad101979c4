"""The fused dot-add of matrix engines (tensor cores, matrix cores), over a whole GEMM.

One step takes a group of ``g`` products and the incoming register value ``c``:

1. products ``p_k = a_k * b_k`` are exact in float64 (:func:`supports`);
2. the alignment exponent ``e`` is the largest ``floor(log2 |t|)`` over the nonzero terms ``t``:
   the products, and ``c`` when it joins the alignment;
3. each aligned term keeps ``F`` fractional bits below ``2**e``: it is cut to a multiple of
   ``q = 2**(e - F)`` toward zero (``CUT_RTZ``, sign-magnitude truncation), toward -inf
   (``CUT_RDN``, two's-complement truncation) or to nearest-even (``CUT_RNE``);
4. the cut terms are added exactly (integers in units of ``q``); with ``carry`` >= 0 the adder
   holds ``F + 1 + carry`` magnitude bits and a sign, and a sum outside that range wraps as a
   two's-complement adder does; ``c`` outside the alignment is added exactly to this sum;
5. the sum is rounded once into the register format (mode ``mode``): the next step's ``c``.

Exactness: every product, cut term and sum is a float64 integer multiple of a power of two
below 2**53 (``supports``), so each step is computed exactly and rounded once
(``rounding.round_f64`` on an exact value, or ``arith.round_sum`` on an exact pair when ``c`` is
added outside the alignment).  Specials: a NaN term, or +Inf and -Inf together, give NaN; an Inf
term gives that Inf (the register format's overflow rules then apply).

Work is split into (batch, row, column tile) tasks; the registers of a tile are a vector and each
group updates the whole vector.
"""

import numpy as np
from numba import njit, prange

from .arith import round_sum, two_sum
from .bits import bits_f64, f64_bits
from .rounding import round_f64

CUT_RTZ, CUT_RDN, CUT_RNE = range(3)
CUTS = {"rtz": CUT_RTZ, "rdn": CUT_RDN, "rne": CUT_RNE}
TILE = 128
NO_EXP = -(1 << 30)        # alignment exponent of a group without any term (int32)
NO_TERM = -(1 << 20)       # exponents below this never set the alignment (an input exponent of
                           # NO_INPUT plus any other stays below it)
NO_INPUT = -(1 << 28)      # the alignment exponent given to zeros that do not take part
MAGIC = 1.5 * 2.0 ** 52    # x + MAGIC - MAGIC rounds |x| < 2**51 to an integer, nearest-even


def supports(frac_bits, group, carry, term_emin, term_emax):
    """Whether the fused kernel is exact: each cut term has at most ``frac_bits + 1`` bits, the
    sum of ``group + 1`` of them (or the wrapped sum of ``frac_bits + 1 + carry`` bits) stays
    below 2**53 (``frac_bits + 2 + ceil(log2(group + 1)) <= 53``), and every nonzero term's
    exponent lies in ``[term_emin, term_emax]`` with the quantum ``2**(e - frac_bits)`` and the
    scale ``2**(frac_bits - e)`` both normal float64 powers of two."""
    width = frac_bits + 2 + int(np.ceil(np.log2(group + 1)))
    if carry >= 0:
        width = min(width, frac_bits + 2 + carry)
    return frac_bits >= 0 and width <= 53 and term_emin - frac_bits >= -1022 \
        and frac_bits - term_emin <= 1023 and term_emax <= 1023 - 2


@njit(cache=True, inline="always")
def exponent(x):
    """floor(log2 |x|) of a normal float64 x (all terms are normal: :func:`supports`)."""
    return ((f64_bits(x) >> np.int64(52)) & np.int64(0x7FF)) - np.int64(1023)


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
def fused_task(A, B, C, D, EA, EB, bi, i, j0, w, group, frac_bits, cut_mode,
               c_aligned, carry, c_emin, zero_exp, overflow_inf, fmt):
    """Row i, columns j0..j0+w-1 of one batch: every group of K in order, D chaining into C.
    EA/EB: the alignment exponent of each input (int32; see :func:`fused_gemm`)."""
    man_bits, emin, maxv, min_normal, spec, saturate, subnormals, mode = fmt
    kk = A.shape[2]
    a_mat = A[bi if A.shape[0] > 1 else 0]
    b_mat = B[bi if B.shape[0] > 1 else 0]
    ea_mat = EA[bi if EA.shape[0] > 1 else 0]
    eb_mat = EB[bi if EB.shape[0] > 1 else 0]
    over = pow2n(exponent(maxv) + 1) if overflow_inf else np.inf
    reg = np.empty(w)
    for j in range(w):
        reg[j] = C[bi, i, j0 + j]
    emax = np.empty(w, np.int32)            # int32: AVX2 has a vector max for it
    acc = np.empty(w)
    scale = np.empty(w)
    prod = np.empty((group, w))
    for k0 in range(0, kk, group):
        k1 = min(kk, k0 + group)
        for j in range(w):
            c = reg[j]
            acc[j] = 0.0
            if not c_aligned or not abs(c) < np.inf:
                emax[j] = NO_EXP
            elif c == 0.0:
                emax[j] = zero_exp
            else:
                emax[j] = max(exponent(c), np.int64(c_emin))
        for k in range(k0, k1):                  # products and the alignment exponent
            a = a_mat[i, k]
            ea = ea_mat[i, k]
            row = prod[k - k0]
            for j in range(w):
                p = a * b_mat[k, j0 + j]
                row[j] = p
                emax[j] = max(emax[j], ea + eb_mat[k, j0 + j])
        for j in range(w):
            scale[j] = pow2n(frac_bits - emax[j]) if emax[j] > NO_TERM else 0.0
        for k in range(k0, k1):                  # the cut terms, summed exactly
            row = prod[k - k0]
            if cut_mode == CUT_RTZ:
                for j in range(w):
                    acc[j] += np.trunc(row[j] * scale[j])
            elif cut_mode == CUT_RDN:
                for j in range(w):
                    acc[j] += np.floor(row[j] * scale[j])
            else:
                for j in range(w):
                    acc[j] += cut(row[j] * scale[j], CUT_RNE)
        for j in range(w):
            c = reg[j]
            if not (abs(acc[j]) < np.inf and abs(c) < np.inf):   # a NaN or an Inf among the
                # terms (a non-finite product makes the sum non-finite: inf * 0 is NaN)
                sp = c if not abs(c) < np.inf else 0.0
                for k in range(k0, k1):
                    p = prod[k - k0, j]
                    sp += p if not abs(p) < np.inf else 0.0
                reg[j] = round_f64(sp, np.uint64(0), man_bits, emin, maxv, min_normal, spec,
                                   saturate, subnormals, mode, 0)
                continue
            if c == 0.0 and acc[j] == 0.0 and all_zero(prod, k1 - k0, j):
                # no nonzero term at all: c's zero passes
                reg[j] = round_f64(c, np.uint64(0), man_bits, emin, maxv, min_normal, spec,
                                   saturate, subnormals, mode, 0)
                continue
            has_terms = emax[j] > NO_TERM
            s = acc[j]
            if c_aligned and c != 0.0:
                s += cut(c * scale[j], cut_mode)
            if carry >= 0:
                s = wrap(s, frac_bits + 2 + carry)
            v = s * pow2n(emax[j] - frac_bits) if has_terms else 0.0
            if not c_aligned:                    # c added exactly to the aligned sum
                hi, lo = two_sum(v, c)
                hi += 0.0                        # an exact zero sum is +0
            else:
                hi, lo = v + 0.0, 0.0
            if abs(hi) >= over:
                reg[j] = np.inf if hi > 0 else -np.inf
            else:
                reg[j] = round_sum(hi, lo, np.uint64(0), man_bits, emin, maxv, min_normal, spec,
                                   saturate, subnormals, mode, 0)
    for j in range(w):
        D[bi, i, j0 + j] = reg[j]


@njit(cache=True, inline="always")
def all_zero(prod, g, j):
    """Whether the g products of column j are all zero."""
    for t in range(g):
        if prod[t, j] != 0.0:
            return False
    return True


@njit(cache=True, parallel=True)
def fused_gemm(A, B, C, D, EA, EB, group, frac_bits, cut_mode, c_aligned, carry,
               c_emin, zero_exp, overflow_inf, fmt):
    """D[b] = the fused dot-add chain of A[b] @ B[b] from C[b] (A: (BA, M, K), B: (BB, K, N),
    C and D: (Bt, M, N)).  EA (BA, M, K) and EB (BB, K, N): each input's alignment exponent
    (int32; below NO_TERM for inputs that never set the alignment)."""
    nb, m, n = D.shape
    tiles = (n + TILE - 1) // TILE
    for task in prange(nb * m * tiles):
        bi = task // (m * tiles)
        i = (task // tiles) % m
        j0 = (task % tiles) * TILE
        fused_task(A, B, C, D, EA, EB, bi, i, j0, min(n, j0 + TILE) - j0, group,
                   frac_bits, cut_mode, c_aligned, carry, c_emin, zero_exp, overflow_inf, fmt)
