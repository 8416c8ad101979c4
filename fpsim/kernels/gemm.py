"""GEMM with accumulator models: C[b,i,j] = sum_k A[b,i,k] * B[b,k,j] as the datapath adds it.

Products are exact in the array dtype (ops.py checks the operand formats) or rounded into a
product format (contracting a multiply and add into an FMA therefore changes nothing).  Work is
split into tasks of (batch, block of rows, column tile); inside a task the
accumulator registers of a column tile are a vector, and every step updates the whole vector, so
LLVM vectorises over the contiguous column index.  Three ways to do one accumulator addition
``reg = round(reg + p)``, picked once per call by accum.py (which also picks this module's
other exact fast paths: native, bounded, round to odd, stochastic, fixed point):

* ``LEAN`` (round-to-nearest-even only): ``s = reg + p`` in the array dtype (float32 or float64),
  then ``s`` rounded to the accumulator's fraction bits (``lane_round``).  When that double
  rounding is exact is :func:`lean_lanes`, with its proof.  Runs in whole blocks of four rows
  (:func:`gemm_lean_blocks`: sequential and chunked sums, adder trees).
* ``EXACT`` (deterministic modes and ``sr`` with r bits): TwoSum gives the exact sum as a pair,
  its round-to-odd (or truncated) 53-bit value is rounded branch-free (``round_fast``); exact for
  accumulator formats of at most 50 fraction bits (see arith.py).
* ``SCALAR`` (exact ``sr``): :func:`fpsim.kernels.arith.round_sum` per element.

Random words (stochastic accumulators): output element ``e`` (linear over batch, row, column) and
step ``t`` use word ``e * (K*K + 2*K) + t``: t = k for adding product k, K + c for folding chunk c
into the total, 2K + lo*K + hi for the adder-tree node over products lo..hi, k for rounding a lone
product.
"""

from collections import namedtuple

import numpy as np
from numba import get_num_threads, njit, prange, types
from numba.extending import overload

from .arith import round_sum, two_sum, zero_sum_sign
from .bits import bits_f64, bits_float, f64_bits, float_bits, fma
from .posit import decode_posit, round_posit
from .rounding import (ABS, GOLDEN, IEEE, IMPL, MANT, RDN, RTO, SR, SRB, lane_nearest,
                       lane_supports, mix64, pow2, random_word, round_fast, sel)

LEAN, EXACT, SCALAR = range(3)


def supports_products(a, b):
    """Whether every product of values of two formats (``(man_bits, emin, emax)`` each) is exact
    in float64: the significands multiply into at most 53 bits, the largest product
    (< 2**(a.emax + b.emax + 2)) is finite and the smallest quantum is at least 2**-1074.  Every
    GEMM kernel forms products in float64 and relies on it."""
    (a_man, a_emin, a_emax), (b_man, b_emin, b_emax) = a, b
    return a_man + b_man + 2 <= 53 and a_emax + b_emax + 2 <= 1023 \
        and (a_emin - a_man) + (b_emin - b_man) >= -1074


def lean_lanes(acc, a, b, rne, exact_products, acc_subnormals, acc_specials_ok, bound=None,
               tree=False):
    """Lane width (32 or 64) in which the ``LEAN`` accumulation is exact, or None.

    ``acc``, ``a``, ``b``: ``(man_bits, emin, emax)`` of the accumulator and of the two operand
    formats; ``rne``: the accumulator rounds to nearest-even; ``exact_products``: no product
    format; ``acc_subnormals``/``acc_specials_ok``: the accumulator keeps subnormals and has
    IEEE or "fn" specials (``lane_nearest`` produces exactly those overflow values); ``bound``:
    None, or a bound the caller guarantees on every register value, product and exact sum of
    this GEMM's data that is at most the accumulator's largest value (``accum.register_bound``),
    for the kernels without an overflow test (``bounded_round``); ``tree``: an adder tree, which
    also adds two products.

    Proof.  Let p = acc man_bits + 1, q = the significand bits of a product (at most
    ``a.man + b.man + 2``) and P the lane's precision (24 or 53).  Require q <= p: then both
    addends of every step - register and product, or two register values (chunks, adder trees) -
    are values with at most p significant bits (a register value lies on the accumulator's grid,
    a product need not).  Let x be their exact sum and s = x rounded to nearest-even in the lane.
    (i) |x| >= 2**emin (the accumulator's normal range): rounding to the accumulator is rounding
    to p bits, and the sum of two p-bit values rounded at P >= 2p + 1 bits and then at p bits
    equals the sum rounded once (double rounding is innocuous: Figueroa, "When is double
    rounding innocuous?", SIGNUM 1995); s stays >= 2**emin since rounding is monotone.
    (ii) |x| < 2**emin: the accumulator rounds onto its grid g = 2**(emin - man_bits).  Rounding
    is monotone and the midpoints of the grid are lane values, so double rounding fails only if
    s lands on a midpoint m while x != m, with |x - m| <= 2**(emin - P - 1).  The register is a
    multiple of g, so the product is then within 2**(emin - P - 1) of an odd multiple of g/2
    without equalling it: its last bit is at most 2**(emin - P - 1) while its magnitude exceeds
    g/4, so q >= P - man_bits, i.e. q + p > P.  With q <= p and P >= 2p + 2 that cannot happen.
    An adder tree also adds two products, neither on the grid: there case (ii) needs their sum
    exact in the lane, which holds when products lie on the grid or emin - lsb <= P (lsb the
    products' quantum exponent: |x| < 2**emin is then a multiple of 2**lsb below 2**(P + lsb));
    bfloat16 x bfloat16 into float32 as a tree (2**-75 * 2**-75 + 2**-126 * 2**-126 rounded to the
    tie 2**-150 and then to 0) is the counterexample.  Hence P >= 2p + 2 bits suffice for
    sequential and chunked sums, also with products below the accumulator's grid (e5m2 products
    into float16, whose quantum 2**-32 is below float16's 2**-24), and for trees with the extra
    condition.  ``lane_nearest``
    rounds onto the subnormal grid by raising the exponent to emin, and puts x's sign back on a
    zero result (a negative sum that rounds to zero is -0).  A weaker bound such as p + q + 2
    fails: a small register plus a large product puts p register bits below the product's q bits
    (e5m2 operands [2**-3, 2**-7, 2**5] into e6m15 gave 1024 instead of 1024.03125).  The lane
    must also hold every operand, product and register value without overflow or underflow:
    float32 lanes need the operand values in float32, product quanta >= 2**-126, the register's
    emin >= -126 and quantum >= 2**-149, and the rounding constants of the register's binades up
    to emax + 1 below 2**128 (``lane_nearest`` clamps the exponent there); float64 lanes the same
    in float64 (products are exact there by :func:`supports_products`).  With a ``bound``, nothing
    overflows, so the specials do not matter, and only binades up to the bound's need their
    rounding constant c = 1.5 * 2**(e + P - 1 - man_bits) and x + c (< 2**(e + P - man_bits))
    below the lane's overflow: float32 lanes then serve registers with 8 exponent bits (bfloat16)
    as long as the data stays below 2**(105 + man_bits).  Subnormal float32 lanes are exact too:
    a register on a grid of at least 2**-149 plus products on 2**-126 sums exactly below
    2**-126.
    """
    acc_man, acc_emin, acc_emax = acc
    (a_man, a_emin, a_emax), (b_man, b_emin, b_emax) = a, b
    if not (rne and exact_products and acc_subnormals and (acc_specials_ok or bound is not None)) \
            or acc_man < 1:
        return None
    p, q = acc_man + 1, a_man + b_man + 2
    lsb = (a_emin - a_man) + (b_emin - b_man)
    if q > p:
        return None
    need = 2 * p + 2
    f32_operands = all(m <= 23 and emax <= 127 and emin - m >= -149
                       for m, emin, emax in (a, b))

    def fits(frac, emax):          # every rounding constant and value below the lane's max
        tree_ok = not tree or lsb >= acc_emin - acc_man or acc_emin - lsb <= frac + 1
        if bound is not None:
            return tree_ok and bound < 2.0 ** (emax - frac + acc_man + 1)
        return tree_ok and acc_emax + 2 + frac - acc_man <= emax and a_emax + b_emax + 2 <= emax
    if need <= 24 and f32_operands and lsb >= -126 and acc_emin >= -126 \
            and acc_emin - acc_man >= -149 and fits(23, 127):
        return 32
    if need <= 53 and fits(52, 1023):
        return 64
    return None


def native_lanes(acc, a, b, rne, exact_products, ieee_subnormals):
    """32 if float32 lanes' own IEEE arithmetic is the accumulator, else None.

    The register is IEEE binary32: ``acc`` is ``(23, -126, 127)``, it rounds to nearest-even,
    keeps subnormals and has IEEE specials (``ieee_subnormals``), and products are exact
    (``exact_products``).  If every operand value is a float32 value, one step
    ``round(r + a*b)`` is by definition float32's fused multiply-add ``fma(a, b, r)``
    (:func:`fpsim.kernels.bits.fma`, exactly rounded whether or not the product fits float32),
    and adding two register values (chunk sums) is float32's own addition, as multiplying
    float32 values into the register is float32's own multiplication (the dequantization of
    promoted chunks, ``chain.dequant_add``, and fpsim.add/mul/... on float32 operands);
    overflow gives the same Inf and NaN cases.  Nothing beyond IEEE 754 is assumed.  (fpsim's
    float registers have at most 50 fraction bits, so there is no float64 counterpart.)"""
    if rne and exact_products and ieee_subnormals and tuple(acc) == (23, -126, 127) \
            and all(m <= 23 and e_max <= 127 and e_min - m >= -149 for m, e_min, e_max in (a, b)):
        return 32
    return None


FixedLane = namedtuple("FixedLane", ["lo", "hi", "clip", "magic"])
FixedLane.__doc__ = """Constants of a saturating fixed-point register in float64 lanes
(fixed_lanes)."""


def fixed_lanes(bits, frac, prod_lsb, rne, exact_products):
    """Whether a signed saturating fixed-point register (``bits``-bit word, ``frac`` fraction
    bits, nearest-even) adding exact products on the grid 2**prod_lsb runs in float64 lanes as
    ``y = clamp(((clip(r + p) + C) - C), lo, hi)`` (``FixedLane``: C = 1.5 * 2**(52 - frac),
    clip to [-2R, 2R], lo = -R, hi = R - 2**-frac, R = 2**(bits - 1 - frac)).

    Proof.  Let L = min(-frac, prod_lsb); r + p is a multiple of 2**L.  (i) |p| < 2R: |r + p| <
    3R < 2**(bits + 1 - frac) <= 2**(53 + L) (the condition), so the float64 sum is exact; after
    the clip |x| <= 2R <= 2**(51 - frac) (bits <= 50), where x + C lies in [2**(52 - frac),
    2**(53 - frac)), whose spacing is 2**-frac: (x + C) - C is x rounded to nearest-even on the
    register's grid; a sum clipped to +-2R saturates all the same.  (ii) |p| >= 2R: the exact sum
    has p's sign and |r + p| >= R, so the register saturates (to lo at exactly -R); the rounded
    float64 sum is on the same side of +-R (rounding is monotone and R is a float64), and the
    clip and the grid rounding keep it there.  Zeros come out +0, as the register has no -0."""
    return rne and exact_products and bits <= 50 and bits + 1 - frac <= 53 + min(-frac, prod_lsb)


def sr_lanes(acc, prod_lsb, exact_products, ieee_or_fn_subnormals, bound):
    """Whether exact stochastic rounding of a sequential (chunked) register runs vectorised in
    float64 lanes (:func:`sr_round` on ``x = r + a*b``), with the decisions of
    :func:`fpsim.kernels.rounding.round_f64`.

    ``acc`` = (man_bits, emin, emax); ``bound``: accum.register_bound for stochastic rounding
    (or None).  Proof.  Every register value is on the grid 2**(emin - man_bits) and every product
    a multiple of 2**prod_lsb, so x is a multiple of 2**L, L = min(emin - man_bits, prod_lsb), and
    |x| <= bound < 2**(53 + L) (the condition): the float64 sum is the exact sum, whose rounding
    round_f64 performs with its low word zero (arith.round_sum).  round_f64 reads the top
    ``shift`` bits of the word when shift = qe - e + 52 <= 62; with e >= L >= emin - man_bits - 10
    (the condition) shift <= 62 always, so the vectorised decision is the same integer test.  No
    result overflows (|round(y)| <= bound <= max), no result is a float64 subnormal
    (emin - man_bits, L >= -1022), and zeros keep x's sign as round_f64's finish does for formats
    with -0 (IEEE or "fn" specials; subnormals kept)."""
    man, emin, _ = acc
    lsb = min(emin - man, prod_lsb)
    return exact_products and ieee_or_fn_subnormals and bound is not None and man <= 50 \
        and lsb >= -1022 and prod_lsb >= emin - man - 10 and bound < 2.0 ** min(53 + lsb, 1023)


OddLane = namedtuple("OddLane", ["signmask", "expmask", "emin_field", "emax_field", "shift_field",
                                 "maxv", "over", "qnan"])
OddLane.__doc__ = """A nearest-even register of any width in float64 lanes (odd_lanes): the
constants of kernels.rounding.lane_nearest, under a name of its own (a flat tuple: parallel
loops take no nested ones)."""


def odd_lanes(acc, rne, exact_products, acc_subnormals, acc_specials_ok):
    """Whether a nearest-even register runs in float64 lanes as :func:`odd_nearest`: the exact
    sum as a TwoSum pair, rounded to odd at 53 bits, then rounded to nearest-even into the
    register by ``lane_nearest``.  Rounding to odd at 53 >= p + 2 bits followed by a
    nearest-even rounding to p bits is the correctly rounded result (Boldo and Melquiond, "When
    double rounding is odd", 2005), so any product width works; the register needs at most 50
    fraction bits, subnormals, IEEE or "fn" specials and lane_nearest's float64 conditions."""
    man, emin, emax = acc
    return rne and exact_products and acc_subnormals and acc_specials_ok and man <= 50 \
        and lane_supports(man, emin, emax, 64)


TILE = 256        # columns per task: the registers of a tile stay in L1
ROWS = 4          # rows per task


# --- one rounding of a register value ------------------------------------------------------------
@njit(cache=True, inline="always")
def bounded_round(x, lc):
    """Round-to-nearest-even of float32/float64 ``x`` to the accumulator's fraction bits, for
    data whose register values stay below the accumulator's largest value (no overflow test).

    ``c = 1.5 * 2**(e + P - 1 - man_bits)`` (e: x's exponent raised to emin; P - 1 the lane's
    fraction bits) is positive, and x + c stays in c's binade (|x| < 2**(e+1) <= c/3 as
    man_bits <= P - 3), where the lane's spacing is the accumulator's quantum
    2**(e - man_bits): ``(x + c) - c`` is x rounded there.  A zero result is +0, which is right
    for products on the register's grid in sequential sums (a nonzero sum never rounds to zero,
    and the register, starting at +0, is never -0) and for registers without -0 ("fnuz").
    Otherwise :func:`with_sign` puts x's sign back (a negative sum rounding to zero, a tree's -0
    nodes).  ``lc = (expmask, emin_field, shift_field[, signmask])``."""
    expmask, emin_field, shift_field = lc[0], lc[1], lc[2]
    ity = type(expmask)
    c = bits_float(ity(max(ity(float_bits(x) & expmask), emin_field) + shift_field))
    return (x + c) - c


@njit(cache=True, inline="always")
def with_sign(y, x, signmask):
    """y with x's sign bit or-ed in (y is +0 or already of x's sign)."""
    ity = type(signmask)
    return bits_float(ity(float_bits(y) | ity(float_bits(x) & signmask)))


def lane_round(x, lc):
    """Round a lane value into a LEAN register: ``lc`` of eight
    (:func:`fpsim.kernels.rounding.lane_nearest`, with the overflow test), of three or four
    (:func:`bounded_round`), empty (a native register: x itself), or a :class:`FixedLane` (a
    fixed-point register, :func:`fixed_lanes`)."""


@overload(lane_round, inline="always", jit_options={"cache": True})
def _lane_round(x, lc):
    if isinstance(lc, types.BaseNamedTuple) and lc.instance_class is FixedLane:
        def fixed(x, lc):
            y = (min(max(x, -lc.clip), lc.clip) + lc.magic) - lc.magic
            return min(max(y, lc.lo), lc.hi)
        return fixed
    if len(lc) == 0:
        return lambda x, lc: x
    if len(lc) == 8:
        return lambda x, lc: lane_nearest(x, lc)
    if len(lc) == 4:
        return lambda x, lc: with_sign(bounded_round(x, lc), x, lc[3])
    return lambda x, lc: bounded_round(x, lc)


@njit(cache=True)
def odd_nearest(r, p, lq):
    """round(r + p) to nearest-even for any p (float64): TwoSum, round to odd at 53 bits, then
    ``lane_nearest`` (conditions and proof: :func:`odd_lanes`).  Not inlined by Numba (LLVM
    inlines it): Numba's inlining of its selects into the callers' loops trips an IR check."""
    s, e = two_sum(r, p)
    same = (s > 0.0) == (e > 0.0)
    t = bits_f64((f64_bits(s) - np.int64(not same)) | np.int64(1))
    return lane_nearest(sel((e == 0.0) | (not (abs(s) < np.inf)), s, t), lq)


def lane_add(r, x, lc):
    """round(r + x) in a LEAN register: ``lane_round(r + x, lc)``, or :func:`odd_nearest` for an
    :class:`OddLane`."""


@overload(lane_add, inline="always", jit_options={"cache": True})
def _lane_add(r, x, lc):
    if isinstance(lc, types.BaseNamedTuple) and lc.instance_class is OddLane:
        return lambda r, x, lc: odd_nearest(r, x, lc)
    return lambda r, x, lc: lane_round(r + x, lc)


def lane_mac(r, a, b, lc):
    """round(r + a*b) in a LEAN register: ``lane_round(r + a*b, lc)``, or, where ``lc`` is empty
    (the register is float32 in float32 lanes), ``fma(a, b, r)``, which is that rounding
    exactly, or :func:`odd_nearest` for an :class:`OddLane`."""


@overload(lane_mac, inline="always", jit_options={"cache": True})
def _lane_mac(r, a, b, lc):
    if isinstance(lc, types.BaseNamedTuple) and lc.instance_class is OddLane:
        return lambda r, a, b, lc: odd_nearest(r, a * b, lc)   # a*b exact in float64
    if len(lc) == 0:
        return lambda r, a, b, lc: fma(a, b, r)
    return lambda r, a, b, lc: lane_round(r + a * b, lc)


@njit(cache=True, inline="always")
def exact_add(r, p, u, fa):
    """round(r + p) exactly, branch-free: TwoSum, then round-to-odd (truncation for sr with r
    bits) at 53 bits, then the branch-free rounding core.  fa: format and rounding."""
    man_bits, emin, maxv, min_normal, spec, saturate, subnormals, mode, r_bits = fa
    s, e = two_sum(r, p)
    same = (s > 0.0) == (e > 0.0)
    tb = f64_bits(s) - np.int64(0 if same else 1)
    tb = tb | np.int64(mode != SRB)
    t = s if (e == 0.0) | (not (abs(s) < np.inf)) else bits_f64(tb)
    t = -0.0 if (s == 0.0) & (mode == RDN) & ((f64_bits(r) | f64_bits(p)) != 0) else t
    res, _ = round_fast(t, u, man_bits, emin, maxv, min_normal, spec, saturate, subnormals,
                        mode, r_bits)
    return res


@njit(cache=True, inline="always")
def scalar_add(r, p, u, fa):
    """round(r + p) exactly, any mode (exact 'sr' included)."""
    man_bits, emin, maxv, min_normal, spec, saturate, subnormals, mode, r_bits = fa
    s, e = two_sum(r, p)
    if not (abs(s) < np.inf):
        s, e = r + p, 0.0
    return round_sum(zero_sum_sign(s, r, p, mode), e, u, man_bits, emin, maxv, min_normal, spec,
                     saturate, subnormals, mode, r_bits)


@njit(cache=True, inline="always")
def word(key, base, t, stochastic):
    return random_word(key, base + np.uint64(t)) if stochastic else np.uint64(0)


# --- row operations: regs[j] = round(regs[j] + vals[j]) over a tile --------------------------------
# The kind of addition is a compile-time choice: each kind is passed as a tag of its own integer
# type (KIND_TAG) and add_rows/round_row resolve to that kind's code when Numba types the caller,
# so a GEMM compiles only the kind it runs (issue 12: the cold start compiled all three).
# (gemm_float runs EXACT and SCALAR; every LEAN case runs in gemm_lean_blocks.)
KIND_TAG = {EXACT: np.int16(EXACT), SCALAR: np.int32(SCALAR)}


def _kind(tag):
    """The kind a tag type stands for (at typing time)."""
    return {types.int16: EXACT, types.int32: SCALAR}[tag]


def add_rows(tag, regs, vals, w, ebase, stride, t, key, fa):
    """regs[:w] = round(regs[:w] + vals[:w]); ``ebase + j*stride + t`` numbers the random word of
    column j; fa: accumulator format and rounding."""


@overload(add_rows, jit_options={"cache": True})
def _add_rows(tag, regs, vals, w, ebase, stride, t, key, fa):
    if _kind(tag) == EXACT:
        def exact(tag, regs, vals, w, ebase, stride, t, key, fa):
            stochastic = fa[7] == SRB
            for j in range(w):
                u = word(key, ebase + np.uint64(j) * stride, t, stochastic)
                regs[j] = exact_add(np.float64(regs[j]), np.float64(vals[j]), u, fa)
        return exact

    def scalar(tag, regs, vals, w, ebase, stride, t, key, fa):
        for j in range(w):
            u = random_word(key, ebase + np.uint64(j) * stride + np.uint64(t))
            regs[j] = scalar_add(np.float64(regs[j]), np.float64(vals[j]), u, fa)
    return scalar


def round_row(tag, vals, w, ebase, stride, t, key, fa):
    """vals[:w] = round(vals[:w]) (a lone product)."""


@overload(round_row, jit_options={"cache": True})
def _round_row(tag, vals, w, ebase, stride, t, key, fa):
    def exact(tag, vals, w, ebase, stride, t, key, fa):
        man_bits, emin, maxv, min_normal, spec, saturate, subnormals, mode, r_bits = fa
        stochastic = mode >= SR
        for j in range(w):
            u = word(key, ebase + np.uint64(j) * stride, t, stochastic)
            vals[j] = round_sum(np.float64(vals[j]), 0.0, u, man_bits, emin, maxv, min_normal,
                                spec, saturate, subnormals, mode, r_bits)
    return exact


@njit(cache=True, inline="always")
def product(a, b, fp, rounded):
    """a * b, rounded into the product format of ``fp`` (deterministic mode pmode) if
    ``rounded`` (a constant at each call, so that loops over it vectorise)."""
    p = np.float64(a * b)
    if rounded:
        has_product, pman, pemin, pmax, pminn, pspec, psat, psub, pmode = fp
        p, _ = round_fast(p, np.uint64(0), pman, pemin, pmax, pminn, pspec, psat, psub, pmode, 0)
    return p


@njit(cache=True)
def product_row(a, brow, pbuf, w, fp):
    """pbuf[:w] = a * brow[:w], rounded into the product format if fp says so
    (:func:`product`)."""
    if fp[0]:
        for j in range(w):
            pbuf[j] = product(a, brow[j], fp, True)
    else:
        for j in range(w):
            pbuf[j] = product(a, brow[j], fp, False)


# --- data bound (accum.register_bound) ----------------------------------------------------------
@njit(cache=True)
def column_magnitudes(B, bmax):
    """bmax[k] = max over batches and j of |B[b, k, j]|; False where B has a non-finite value.
    The maxima are taken over the float64 bits without the sign (ordered as the magnitudes are,
    Inf and NaN above every finite value): an integer max, which vectorises."""
    low = np.int64(0x7FFFFFFFFFFFFFFF)
    top = np.int64(0)
    for k in range(B.shape[1]):
        m = np.int64(0)
        for bi in range(B.shape[0]):
            for j in range(B.shape[2]):
                m = max(m, f64_bits(np.float64(B[bi, k, j])) & low)
        bmax[k] = bits_f64(m)
        top = max(top, m)
    return top < np.int64(0x7FF0000000000000)


@njit(cache=True)
def finite_span(x):
    """(min, max) of |v| over the finite nonzero elements v of x, any shape ((inf, 0.0) where
    there is none): one pass, no temporaries."""
    lo, hi = np.inf, 0.0
    for v in x.flat:
        a = abs(np.float64(v))
        if a != 0.0 and a < np.inf:
            lo = min(lo, a)
            hi = max(hi, a)
    return lo, hi


@njit(cache=True, fastmath={"reassoc"})
def row_magnitudes(A, B):
    """max over batches and rows i of sum_k |A[b,i,k]| max_{b,j} |B[b,k,j]|, summed in float64
    (in any order: reassociated, so that the sums vectorise; every caller's error bound holds
    for every order of a sum of nonnegative terms); NaN where an operand is not finite."""
    kk = A.shape[2]
    bmax = np.empty(kk)
    if not column_magnitudes(B, bmax):
        return np.nan
    best = 0.0
    for bi in range(A.shape[0]):
        for i in range(A.shape[1]):
            s = 0.0
            for k in range(kk):
                s += abs(np.float64(A[bi, i, k])) * bmax[k]
            if not s < np.inf:
                return np.nan
            best = max(best, s)
    return best


# --- exact stochastic rounding in float64 lanes ---------------------------------------------------
@njit(cache=True, inline="always")
def sr_round(x, u, man_bits, emin):
    """x (the exact register + product, a normal float64 or zero) rounded stochastically into
    the format with word u: round_f64's exact-'sr' test, ``up = (r + rem) >> shift`` with r the
    top ``shift`` bits of u, branch-free (conditions: :func:`sr_lanes`)."""
    b = f64_bits(x)
    a = b & ABS
    e = (a >> np.int64(52)) - np.int64(1023)
    sig = (a & MANT) | IMPL
    qe = max(e, np.int64(emin)) - np.int64(man_bits)
    sh = qe - e + np.int64(52)
    kept = sig >> sh
    rem = sig & ((np.int64(1) << sh) - np.int64(1))
    r = np.int64(u >> np.uint64(np.int64(64) - sh))
    kept += (r + rem) >> sh
    mag = np.float64(kept) * bits_f64((qe + np.int64(1023)) << np.int64(52))
    y = bits_f64(f64_bits(mag) | (b & ~ABS))
    return x if a == 0 else y


@njit(cache=True, fastmath={"contract"})
def sr_rows(regs, a_mat, b_mat, i0, k, j0, w, zb, kg, man_bits, emin):
    """regs[r, j] = sr_round(regs[r, j] + A[i0 + r, k] * B[k, j0 + j]) for the four rows; the
    word of (r, j) is mix64(zb[r, j] + kg) (kg = k * GOLDEN: random_word's argument)."""
    a0, a1, a2, a3 = a_mat[i0, k], a_mat[i0 + 1, k], a_mat[i0 + 2, k], a_mat[i0 + 3, k]
    for j in range(w):
        b = b_mat[np.uint64(k), np.uint64(j0 + j)]
        regs[0, j] = sr_round(regs[0, j] + a0 * b, mix64(zb[0, j] + kg), man_bits, emin)
        regs[1, j] = sr_round(regs[1, j] + a1 * b, mix64(zb[1, j] + kg), man_bits, emin)
        regs[2, j] = sr_round(regs[2, j] + a2 * b, mix64(zb[2, j] + kg), man_bits, emin)
        regs[3, j] = sr_round(regs[3, j] + a3 * b, mix64(zb[3, j] + kg), man_bits, emin)


@njit(cache=True)
def gemm_rows_sr(A, B, C, bi, i0, j0, w, chunk, man_bits, emin, key, place):
    """Rows i0..i0+3 of a sequential (chunked) register with exact stochastic rounding in float64
    lanes; words as :func:`gemm_row` numbers them (``place``: :func:`element`)."""
    kk = A.shape[2]
    step = np.uint64(kk * kk + 2 * kk)
    a_mat = A[bi if A.shape[0] > 1 else 0]
    b_mat = B[bi if B.shape[0] > 1 else 0]
    run = chunk if chunk > 0 else max(kk, 1)
    zb = np.empty((ROWS, w), np.uint64)      # key + (e * step + 1) * GOLDEN, e the element
    for r in range(ROWS):
        for j in range(w):
            e = element(place, bi, i0 + r, j0 + j)
            zb[r, j] = np.uint64(key) + (e * step + np.uint64(1)) * GOLDEN
    total = np.zeros((ROWS, w))
    regs = np.zeros((ROWS, w))
    for k0 in range(0, kk, run):
        regs[:] = 0.0
        for k in range(k0, min(kk, k0 + run)):
            sr_rows(regs, a_mat, b_mat, i0, k, j0, w, zb, np.uint64(k) * GOLDEN, man_bits, emin)
        if chunk > 0:
            kg = np.uint64(kk + k0 // run) * GOLDEN
            for r in range(ROWS):
                for j in range(w):
                    total[r, j] = sr_round(total[r, j] + regs[r, j], mix64(zb[r, j] + kg),
                                           man_bits, emin)
        else:
            for r in range(ROWS):
                for j in range(w):
                    total[r, j] = regs[r, j]
    for r in range(ROWS):
        for j in range(w):
            C[np.uint64(bi), np.uint64(i0 + r), np.uint64(j0 + j)] = total[r, j]


@njit(cache=True, parallel=True)
def gemm_sr_blocks(A, B, C, chunk, man_bits, emin, key, place):
    """The whole blocks of ROWS rows of a register with exact stochastic rounding (sr_lanes)."""
    nb, m, n = C.shape
    for task in prange(n_tasks(nb, m, n, ROWS, TILE)):
        bi, i0, _, j0, w = task_tile(task, m, n, ROWS, TILE)
        gemm_rows_sr(A, B, C, bi, i0, j0, w, chunk, man_bits, emin, key, place)


# --- the driver ---------------------------------------------------------------------------------
@njit(cache=True, inline="always")
def element(place, bi, i, j):
    """The index e of output element (bi, i, j) of a kernel's C in the whole GEMM's C, which
    keys its random words: ``place`` = (origin, row stride, batch stride) of C in the whole C,
    (0, N, M * N) for the whole of a (batch, M, N) output, (i0 * N + j0, N, M * N) for its block
    from row i0 and column j0 (fpsim.gemm.gemm_panels)."""
    return np.uint64(place[0] + bi * place[2] + i * place[1] + j)


def threads():
    """The number of threads the parallel kernels run on (numba.set_num_threads)."""
    return get_num_threads()


@njit(cache=True, inline="always")
def n_tasks(nb, m, n, rows, tile):
    """Tasks of a batched GEMM output (nb, m, n) cut into blocks of ``rows`` rows by ``tile``
    columns (the matrix-engine kernels use the same layout)."""
    return nb * ((m + rows - 1) // rows) * ((n + tile - 1) // tile)


@njit(cache=True, inline="always")
def task_tile(task, m, n, rows, tile):
    """(batch, first row, row end, first column, width) of task ``task`` of :func:`n_tasks`.
    Row blocks vary fastest: the tasks a thread runs in a row share one panel of B's columns,
    which stays in its cache (B's rows lie a whole row of N apart, too far for the prefetchers
    to follow from one panel to the next)."""
    tiles = (n + tile - 1) // tile
    blocks = (m + rows - 1) // rows
    i0 = (task % blocks) * rows
    j0 = ((task // blocks) % tiles) * tile
    return task // (blocks * tiles), i0, min(m, i0 + rows), j0, min(n, j0 + tile) - j0


@njit(cache=True, parallel=True)
def gemm_float(A, B, C, tag, chunk, pairwise, fa, fp, key, place):
    """C[b] = A[b] @ B[b] with a float accumulator (A: (BA, M, K), B: (BB, K, N), BA/BB 1 or Bt);
    ``tag``: KIND_TAG of the kind of addition.  Tasks: (batch, block of ROWS rows, column tile)."""
    nb, m, n = C.shape
    for task in prange(n_tasks(nb, m, n, ROWS, TILE)):
        bi, i0, i1, j0, w = task_tile(task, m, n, ROWS, TILE)
        for i in range(i0, i1):
            gemm_row(A, B, C, bi, i, j0, w, tag, chunk, pairwise, fa, fp, key, place)


# The order of a LEAN block kernel, a compile-time choice as KIND_TAG's: a GEMM compiles only
# the order it runs.
ORDER_TAG = {"sequential": np.int8(0), "pairwise": np.int16(0)}


@njit(cache=True, parallel=True)
def gemm_lean_blocks(A, B, C, chunk, lc, order):
    """The whole blocks of ROWS rows of the LEAN cases, for any lane dtype: sequential (and
    chunked) sums or adder trees (``order``: ORDER_TAG) - the float32-lane entry point
    (gemm_float, for every kind, order and product, is called with float64 arrays only, which
    halves the cold-start compile work).  C rows past the last whole block are left to the
    caller."""
    nb, m, n = C.shape
    tiles = (n + TILE - 1) // TILE
    blocks = m // ROWS
    for task in prange(nb * blocks * tiles):
        bi = task // (blocks * tiles)
        i0 = (task % blocks) * ROWS                  # row blocks fastest, as in task_tile
        j0 = ((task // blocks) % tiles) * TILE
        lean_rows(order, A, B, C, bi, i0, j0, min(n, j0 + TILE) - j0, chunk, lc)


def lean_rows(order, A, B, C, bi, i0, j0, w, chunk, lc):
    """Rows i0..i0+3: gemm_rows_lean, or gemm_rows_tree for ORDER_TAG["pairwise"]."""


@overload(lean_rows, jit_options={"cache": True})
def _lean_rows(order, A, B, C, bi, i0, j0, w, chunk, lc):
    if order == types.int16:
        return lambda order, A, B, C, bi, i0, j0, w, chunk, lc: \
            gemm_rows_tree(A, B, C, bi, i0, j0, w, chunk, lc)
    return lambda order, A, B, C, bi, i0, j0, w, chunk, lc: \
        gemm_rows_lean(A, B, C, bi, i0, j0, w, chunk, lc)


@njit(cache=True, fastmath={"contract"})
def mac_rows_lean(r0, r1, r2, r3, a0, a1, a2, a3, b_mat, k, j0, w, lc):
    """Four register rows at once (ROWS = 4): each loaded B value, ``b_mat[k, j0 + j]``, serves
    four MACs."""
    for j in range(w):
        b = b_mat[np.uint64(k), np.uint64(j0 + j)]      # unsigned: no wraparound test
        r0[j] = lane_mac(r0[j], a0, b, lc)
        r1[j] = lane_mac(r1[j], a1, b, lc)
        r2[j] = lane_mac(r2[j], a2, b, lc)
        r3[j] = lane_mac(r3[j], a3, b, lc)


@njit(cache=True)
def gemm_rows_lean(A, B, C, bi, i0, j0, w, chunk, lc):
    """Rows i0..i0+3 of the LEAN sequential case (with or without chunks).  The register rows
    are separate arrays made once, and B is indexed in place: array views made per k cost
    reference counting that rivals the arithmetic."""
    kk = A.shape[2]
    a_mat = A[bi if A.shape[0] > 1 else 0]
    b_mat = B[bi if B.shape[0] > 1 else 0]
    run = chunk if chunk > 0 else max(kk, 1)
    total = np.zeros((ROWS, w), C.dtype)
    r0, r1, r2, r3 = (np.zeros(w, C.dtype), np.zeros(w, C.dtype), np.zeros(w, C.dtype),
                      np.zeros(w, C.dtype))
    for k0 in range(0, kk, run):
        r0[:], r1[:], r2[:], r3[:] = 0.0, 0.0, 0.0, 0.0
        for k in range(k0, min(kk, k0 + run)):
            mac_rows_lean(r0, r1, r2, r3, a_mat[i0, k], a_mat[i0 + 1, k], a_mat[i0 + 2, k],
                          a_mat[i0 + 3, k], b_mat, k, j0, w, lc)
        for r, regs in enumerate((r0, r1, r2, r3)):
            if chunk > 0:
                for j in range(w):
                    total[r, j] = lane_add(total[r, j], regs[j], lc)
            else:
                for j in range(w):
                    total[r, j] = regs[j]
    for r in range(ROWS):          # explicit loops: a slice copy compiles its shape error path
        for j in range(w):
            C[np.uint64(bi), np.uint64(i0 + r), np.uint64(j0 + j)] = total[r, j]


# --- adder trees in LEAN lanes, four rows at once ----------------------------------------------
# The nodes of a tree live in one array ``lev`` (levels + 2, ROWS, w): slot l holds the pending
# node over 2**l products, the last two are scratch, used in turn: a merge never writes the slot
# it reads (LLVM's runtime alias check sends an in-place loop to its scalar version, 3x slower).
# Addressing slots by index, not by views, keeps reference counting out of the loops.  The order
# of additions is gemm_row's: products in pairs (2t, 2t + 1), each new node merged with the
# pending node of its level (a binary counter), the leftover nodes of a run summed smallest
# first.

@njit(cache=True, fastmath={"contract"})
def tree_pair(lev, d, a_mat, b_mat, i0, k, j0, w, lc):
    """lev[d] = round(A[i0 + r, k] * B[k] + A[i0 + r, k + 1] * B[k + 1]) for r < 4: both
    products exact in the lane, their sum rounded once in it (a multiply and an FMA, or two
    multiplies and an add) and then to the register - the adder-tree case of
    :func:`lean_lanes`."""
    a0, a1, a2, a3 = a_mat[i0, k], a_mat[i0 + 1, k], a_mat[i0 + 2, k], a_mat[i0 + 3, k]
    c0, c1, c2, c3 = (a_mat[i0, k + 1], a_mat[i0 + 1, k + 1], a_mat[i0 + 2, k + 1],
                      a_mat[i0 + 3, k + 1])
    ud = np.uint64(d)
    for j in range(w):
        uj = np.uint64(j)
        b = b_mat[np.uint64(k), np.uint64(j0 + j)]
        e = b_mat[np.uint64(k + 1), np.uint64(j0 + j)]
        lev[ud, 0, uj] = lane_round(a0 * b + c0 * e, lc)
        lev[ud, 1, uj] = lane_round(a1 * b + c1 * e, lc)
        lev[ud, 2, uj] = lane_round(a2 * b + c2 * e, lc)
        lev[ud, 3, uj] = lane_round(a3 * b + c3 * e, lc)


@njit(cache=True)
def tree_merge(lev, d, x, y, w, lc):
    """lev[d] = round(lev[x] + lev[y])."""
    ud, ux, uy = np.uint64(d), np.uint64(x), np.uint64(y)
    for r in range(ROWS):
        ur = np.uint64(r)
        for j in range(w):
            uj = np.uint64(j)
            lev[ud, ur, uj] = lane_round(lev[ux, ur, uj] + lev[uy, ur, uj], lc)


@njit(cache=True)
def gemm_rows_tree(A, B, C, bi, i0, j0, w, chunk, lc):
    """Rows i0..i0+3 of the LEAN adder tree (``order="pairwise"``, with or without chunks):
    gemm_row's pairwise order, four rows and a product pair per pass over B."""
    kk = A.shape[2]
    a_mat = A[bi if A.shape[0] > 1 else 0]
    b_mat = B[bi if B.shape[0] > 1 else 0]
    run = chunk if chunk > 0 else max(kk, 1)
    levels = 1
    while (1 << (levels - 1)) < run:
        levels += 1
    lev = np.empty((levels + 2, ROWS, w), C.dtype)
    total = np.zeros((ROWS, w), C.dtype)
    for k0 in range(0, kk, run):
        k1 = min(kk, k0 + run)
        count = 0
        for k in range(k0, k1 - 1, 2):
            top = 1                                 # the level this pair's node settles at
            while (count >> top) & 1:
                top += 1
            node = 1 if top == 1 else levels
            tree_pair(lev, node, a_mat, b_mat, i0, k, j0, w, lc)
            for level in range(1, top):             # carry: merge equal-sized nodes
                dest = top if level == top - 1 else (2 * levels + 1) - node
                tree_merge(lev, dest, node, level, w, lc)
                node = dest
            count += 2
        if count < k1 - k0:                         # an odd run's last product, a leaf
            for r in range(ROWS):
                a = a_mat[i0 + r, k1 - 1]
                for j in range(w):
                    lev[0, r, j] = a * b_mat[np.uint64(k1 - 1), np.uint64(j0 + j)]
            count += 1
        cur = -1
        for level in range(levels):                 # the leftover nodes, smallest first
            if (count >> level) & 1:
                if cur < 0:
                    cur = level
                else:
                    dest = levels + 1 if cur == levels else levels
                    tree_merge(lev, dest, cur, level, w, lc)
                    cur = dest
        uc = np.uint64(cur)                         # unsigned: no gathers (chunk_span)
        if count == 1:                              # a lone product
            for r in range(ROWS):
                for j in range(w):
                    lev[uc, r, j] = lane_round(lev[uc, r, j], lc)
        for r in range(ROWS):
            if chunk > 0:
                for j in range(w):
                    total[r, j] = lane_add(total[r, j], lev[uc, r, j], lc)
            else:
                for j in range(w):
                    total[r, j] = lev[uc, r, j]
    for r in range(ROWS):
        for j in range(w):
            C[np.uint64(bi), np.uint64(i0 + r), np.uint64(j0 + j)] = total[r, j]


@njit(cache=True)
def gemm_row(A, B, C, bi, i, j0, w, tag, chunk, pairwise, fa, fp, key, place):
    """Row i, columns j0..j0+w-1 of :func:`gemm_float`, any kind and order (``place``:
    :func:`element`)."""
    kk = A.shape[2]
    step = np.uint64(kk * kk + 2 * kk)
    run = chunk if chunk > 0 else max(kk, 1)
    levels = 1
    while (1 << (levels - 1)) < run:
        levels += 1
    a_mat = A[bi if A.shape[0] > 1 else 0]
    b_mat = B[bi if B.shape[0] > 1 else 0]
    ebase = element(place, bi, i, j0) * step
    total = np.zeros(w, C.dtype)
    regs = np.zeros(w, C.dtype)
    pbuf = np.empty(w, C.dtype)
    lev = np.empty((levels, w), C.dtype)
    for k0 in range(0, kk, run):
        k1 = min(kk, k0 + run)
        if not pairwise:
            regs[:] = 0.0
            for k in range(k0, k1):
                product_row(a_mat[i, k], b_mat[k, j0:j0 + w], pbuf, w, fp)
                add_rows(tag, regs, pbuf, w, ebase, step, k, key, fa)
        else:
            count = 0
            for k in range(k0, k1):
                product_row(a_mat[i, k], b_mat[k, j0:j0 + w], pbuf, w, fp)
                level = 0
                while (count >> level) & 1:            # carry: merge equal-sized blocks
                    lo = k - (2 << level) + 1
                    add_rows(tag, pbuf, lev[level], w, ebase, step, 2 * kk + lo * kk + k,
                             key, fa)
                    level += 1
                for j in range(w):
                    lev[level, j] = pbuf[j]
                count += 1
            first = True
            for level in range(levels):                 # the leftover blocks, smallest first
                if (count >> level) & 1:
                    if first:
                        for j in range(w):
                            regs[j] = lev[level, j]
                        first = False
                    else:
                        lo = k0 + ((count >> (level + 1)) << (level + 1))
                        add_rows(tag, regs, lev[level], w, ebase, step,
                                 2 * kk + lo * kk + (k1 - 1), key, fa)
            if count == 1:
                round_row(tag, regs, w, ebase, step, k0, key, fa)
        if chunk > 0:
            add_rows(tag, total, regs, w, ebase, step, kk + k0 // run, key, fa)
        else:
            for j in range(w):
                total[j] = regs[j]
    for j in range(w):
        C[np.uint64(bi), np.uint64(i), np.uint64(j0 + j)] = total[j]


# --- fixed-point accumulator register ---------------------------------------------------------------
@njit(cache=True)
def fixed_task(a, b, c, bt, i, e0, frac_bits, k_lo, k_hi, mode, r_bits, key, stride):
    """Row i of one batch: for each column, the register adds each exact product, rounds the
    exact sum onto the grid 2**-frac_bits (TwoSum, then rounding.round_f64 of hi + lo through
    arith.round_sum with 50 fraction bits of headroom) and saturates to [k_lo, k_hi] steps."""
    step = pow2(-frac_bits)
    lo_v, hi_v = k_lo * step, k_hi * step
    for j in range(b.shape[1]):
        e = e0 + j
        acc = 0.0
        for k in range(a.shape[1]):
            u = random_word(key, e * stride + k) if mode >= SR else np.uint64(0)
            acc = fixed_step(acc, a[i, k] * b[k, j], u, frac_bits, lo_v, hi_v, mode, r_bits)
        c[bt, i, j] = acc


@njit(cache=True)
def fixed_step(acc, p, u, frac_bits, lo_v, hi_v, mode, r_bits):
    """One addition of the fixed-point register: acc + p (p an exact product) rounded onto the
    grid 2**-frac_bits with word u and saturated to [lo_v, hi_v]; no negative zero."""
    hi, lo = two_sum(acc, p)
    v = round_sum(hi, lo, u, 50, 50 - frac_bits, np.inf, 0.0, IEEE, False, True, mode, r_bits)
    return min(max(v, lo_v), hi_v) + 0.0


@njit(cache=True, parallel=True)
def gemm_fixed(a3, b3, c, frac_bits, k_lo, k_hi, mode, r_bits, key, place):
    """C = A @ B through a saturating fixed-point register (see fixed_task); words e*(K*K+2K)+k,
    e the element's index in the whole C (``place``: :func:`element`)."""
    batch, m, n = c.shape
    kk = a3.shape[2]
    stride = kk * kk + 2 * kk
    for t in prange(batch * m):
        bt, i = t // m, t % m
        a = a3[bt if a3.shape[0] > 1 else 0]
        b = b3[bt if b3.shape[0] > 1 else 0]
        fixed_task(a, b, c, bt, i, element(place, bt, i, 0), frac_bits, k_lo, k_hi, mode, r_bits,
                   key, stride)


# --- posit accumulator register (no quire) --------------------------------------------------------
@njit(cache=True)
def posit_task(a, b, c, bt, i, stage, values, mids, n, es):
    """Row i of one batch: the register adds each exact product and rounds the exact sum to the
    nearest posit: TwoSum, round-to-odd onto the 51-bit ``stage`` format (which keeps the posit
    decision, see accum.KulischAccumulator), then kernels.posit.round_posit."""
    for j in range(b.shape[1]):
        acc = 0.0
        for k in range(a.shape[1]):
            t = staged_sum(acc, a[i, k] * b[k, j], stage)  # the product is exact (ops checks)
            acc = decode_posit(round_posit(t, values, mids, n), n, es)
        c[bt, i, j] = acc


@njit(cache=True)
def staged_sum(acc, p, stage):
    """acc + p (p an exact product) rounded to odd onto the 51-bit ``stage`` format, which keeps
    every decision of a posit's rounding (posit_task; the GPU's posit kernel)."""
    man_bits, emin, maxv, min_normal, spec, saturate, subnormals = stage
    hi, lo = two_sum(acc, p)
    return round_sum(hi, lo, np.uint64(0), man_bits, emin, maxv, min_normal, spec, saturate,
                     subnormals, RTO, 0)


@njit(cache=True, parallel=True)
def gemm_posit(a3, b3, c, stage, values, mids, n, es):
    """C = A @ B through a posit register rounded after every addition (see posit_task)."""
    batch, m = c.shape[0], c.shape[1]
    for t in prange(batch * m):
        bt, i = t // m, t % m
        posit_task(a3[bt if a3.shape[0] > 1 else 0], b3[bt if b3.shape[0] > 1 else 0], c, bt, i,
                   stage, values, mids, n, es)
