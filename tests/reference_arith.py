"""Exact-rational references for fpsim's arithmetic units and accumulators (issue-3 API), written
from the spec with fractions.Fraction, independent of fpsim's kernels.

Every input value is a Python float (exact: operands are float64 values).  The exact real result
is formed in Fractions (or kept symbolic for sqrt), IEEE special/zero-sign rules are applied, and
the result is rounded ONCE with ``round_exact`` -- a copy of ``reference.round_ref``'s rounding
core that takes an exact magnitude instead of a float.

Return values: a float (value of the format; nan for NaN); ``None`` where the spec says not to
test bitwise (exact 'sr' on a result that is not a float64 / whose fraction needs > 62 bits);
``ANYZERO`` where the result is a zero whose sign the spec leaves open (a NaN rounded into a
"none" format, whose zero sign follows the unspecified sign of a generated NaN).

The only thing taken from fpsim is the random-number generator (``random_word``/``seed_key``),
which is an input of stochastic rounding, not part of the computation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from reference import finish_ref, floor_log2, fmax, round_ref, signed


class _AnyZero:
    def __repr__(self):
        return "ANYZERO"


ANYZERO = _AnyZero()
DETERMINISTIC = ("rne", "rna", "rtz", "rup", "rdn", "rto")


# --- exact magnitudes ---------------------------------------------------------------------------
class Sqrt:
    """The exact (usually irrational) value sqrt(a) of a Fraction a > 0 that is not a square."""

    def __init__(self, a: Fraction):
        self.a = Fraction(a)

    def floor_log2(self) -> int:
        return floor_log2(self.a) // 2

    def floor_scaled(self, s: int) -> int:
        """floor(sqrt(a) * 2**s)."""
        x = self.a * Fraction(4) ** s
        return math.isqrt(math.floor(x))

    def exact_scaled(self, s: int) -> bool:
        """Whether sqrt(a) * 2**s is an integer."""
        x = self.a * Fraction(4) ** s
        if x.denominator != 1:
            return False
        return math.isqrt(x.numerator) ** 2 == x.numerator


def _frac_floor_log2(v: Fraction) -> int:
    return floor_log2(v)


def _floor_scaled(v, s: int) -> int:
    if isinstance(v, Sqrt):
        return v.floor_scaled(s)
    return math.floor(v * Fraction(2) ** s)


def _exact_scaled(v, s: int) -> bool:
    if isinstance(v, Sqrt):
        return v.exact_scaled(s)
    return (v * Fraction(2) ** s).denominator == 1


def exact_sqrt(a: Fraction):
    """sqrt(a) as a Fraction when a is the square of a rational, else a Sqrt."""
    a = Fraction(a)
    n, d = a.numerator, a.denominator
    rn, rd = math.isqrt(n), math.isqrt(d)
    if rn * rn == n and rd * rd == d:
        return Fraction(rn, rd)
    return Sqrt(a)


def is_float64(v: Fraction) -> bool:
    """Whether the exact value v is a float64."""
    try:
        return Fraction(float(v)) == v
    except OverflowError:
        return False


# --- the rounding core (copy of reference.round_ref with an exact magnitude) -------------------
def round_exact(value, negative: bool, f, mode: str, u: int = 0, sr_bits=None):
    """Round the exact real ``(-1)**negative * value`` into format ``f``.

    ``value``: a Fraction >= 0, a :class:`Sqrt`, ``math.inf`` or ``math.nan``.
    Stochastic modes as in reference.round_ref (u = the element's 64-bit random word).
    """
    emin = 1 - f.bias
    big = fmax(f)
    if isinstance(value, float) and math.isnan(value):
        if f.specials == "none":
            return ANYZERO  # the zero's sign is that of the NaN, which the spec leaves open
        return math.nan
    if isinstance(value, float) and math.isinf(value):
        if f.saturate or f.specials == "none":
            return signed(big, negative, f)
        return (-math.inf if negative else math.inf) if f.specials == "ieee" else math.nan
    if not isinstance(value, Sqrt):
        value = Fraction(value)
        assert value >= 0
        if value == 0:
            return signed(Fraction(0), negative, f)

    e = value.floor_log2() if isinstance(value, Sqrt) else _frac_floor_log2(value)
    qe = max(e, emin) - f.man_bits          # quantum of the binade (subnormal grid below)
    k = _floor_scaled(value, -qe)
    inexact = not _exact_scaled(value, -qe)
    # frac compared with 1/2: floor(2*scaled) - 2k is 1 iff frac >= 1/2
    two = _floor_scaled(value, 1 - qe) - 2 * k
    half_exact = _exact_scaled(value, 1 - qe)
    above_half = two == 1 and not half_exact
    at_half = two == 1 and half_exact
    if mode == "rne":
        k += above_half or (at_half and k % 2 == 1)
    elif mode == "rna":
        k += two == 1
    elif mode == "rtz":
        pass
    elif mode == "rup":
        k += inexact and not negative
    elif mode == "rdn":
        k += inexact and negative
    elif mode == "rto":
        if inexact:
            k |= 1
    elif mode == "sr" and sr_bits is None:
        if isinstance(value, Sqrt) or not is_float64(value):
            return None  # the spec: a second derived word decides the tail; not bitwise-testable
        frac = value / Fraction(2) ** qe - k
        if frac.denominator > 2**62:
            return None
        k += Fraction(u, 2**64) >= 1 - frac and frac > 0
    elif mode == "sr":
        f_r = _floor_scaled(value, sr_bits - qe) - (k << sr_bits)
        k += (u >> (64 - sr_bits)) + f_r >= 2**sr_bits
    else:
        raise ValueError(mode)
    return finish_ref(k * Fraction(2) ** qe, negative, f, mode)


# --- elementwise units --------------------------------------------------------------------------
def _neg(x: float) -> bool:
    return math.copysign(1.0, x) < 0


def _sum_exact(x, xneg, y, yneg, mode):
    """Exact x + y of extended reals given as (magnitude Fraction/inf/nan, sign) pairs; returns
    (magnitude, negative) with the IEEE zero-sign rules of the spec."""
    if isinstance(x, float) and math.isnan(x) or isinstance(y, float) and math.isnan(y):
        return math.nan, False
    xinf = isinstance(x, float) and math.isinf(x)
    yinf = isinstance(y, float) and math.isinf(y)
    if xinf and yinf:
        return (math.inf, xneg) if xneg == yneg else (math.nan, False)
    if xinf:
        return math.inf, xneg
    if yinf:
        return math.inf, yneg
    s = (-x if xneg else x) + (-y if yneg else y)
    if s != 0:
        return abs(s), s < 0
    if x == 0 and y == 0 and xneg == yneg:
        return Fraction(0), xneg                      # (+0) + (+0) = +0, (-0) + (-0) = -0
    return Fraction(0), mode == "rdn"                 # exact zero of opposite signs: +0 (rdn -0)


def _ext(x: float):
    """A float as (magnitude, negative): Fraction for finite values, inf/nan floats otherwise."""
    if math.isnan(x):
        return math.nan, _neg(x)
    if math.isinf(x):
        return math.inf, x < 0
    return abs(Fraction(x)), _neg(x)


def _prod_exact(a: float, b: float):
    """Exact a*b as (magnitude, negative); 0*inf -> NaN; sign = xor of signs."""
    if math.isnan(a) or math.isnan(b):
        return math.nan, False
    neg = _neg(a) != _neg(b)
    if math.isinf(a) or math.isinf(b):
        if a == 0 or b == 0:
            return math.nan, False
        return math.inf, neg
    return abs(Fraction(a) * Fraction(b)), neg


def add_ref(a: float, b: float, f, mode: str, u: int = 0, sr_bits=None):
    v, n = _sum_exact(*_ext(a), *_ext(b), mode)
    return round_exact(v, n, f, mode, u, sr_bits)


def sub_ref(a: float, b: float, f, mode: str, u: int = 0, sr_bits=None):
    return add_ref(a, -b, f, mode, u, sr_bits)


def mul_ref(a: float, b: float, f, mode: str, u: int = 0, sr_bits=None):
    v, n = _prod_exact(a, b)
    return round_exact(v, n, f, mode, u, sr_bits)


def fma_ref(a: float, b: float, c: float, f, mode: str, u: int = 0, sr_bits=None):
    pv, pn = _prod_exact(a, b)
    v, n = _sum_exact(pv, pn, *_ext(c), mode)
    return round_exact(v, n, f, mode, u, sr_bits)


def div_ref(a: float, b: float, f, mode: str, u: int = 0, sr_bits=None):
    if math.isnan(a) or math.isnan(b):
        return round_exact(math.nan, False, f, mode, u, sr_bits)
    neg = _neg(a) != _neg(b)
    if (a == 0 and b == 0) or (math.isinf(a) and math.isinf(b)):
        return round_exact(math.nan, False, f, mode, u, sr_bits)
    if math.isinf(a) or b == 0:
        return round_exact(math.inf, neg, f, mode, u, sr_bits)
    if math.isinf(b):
        return round_exact(Fraction(0), neg, f, mode, u, sr_bits)
    return round_exact(abs(Fraction(a) / Fraction(b)), neg, f, mode, u, sr_bits)


def sqrt_ref(a: float, f, mode: str, u: int = 0, sr_bits=None):
    if math.isnan(a):
        return round_exact(math.nan, False, f, mode, u, sr_bits)
    if a == 0:
        return round_exact(Fraction(0), _neg(a), f, mode, u, sr_bits)   # sqrt(-0) = -0
    if a < 0:
        return round_exact(math.nan, False, f, mode, u, sr_bits)
    if math.isinf(a):
        return round_exact(math.inf, False, f, mode, u, sr_bits)
    return round_exact(exact_sqrt(Fraction(a)), False, f, mode, u, sr_bits)


# --- accumulators -------------------------------------------------------------------------------
@dataclass(frozen=True)
class AccDesc:
    """The fields of fpsim.Accumulator that define its arithmetic (kept independent of fpsim)."""
    fmt: object
    chunk: int | None = None
    rounding: str = "rne"
    order: str = "sequential"
    sr_bits: int | None = None


@dataclass(frozen=True)
class KulischDesc:
    fmt: object
    width: int | None = None
    rounding: str = "rne"
    overflow: str = "raise"


class KulischOverflowRef(ArithmeticError):
    pass


def _add_vals(x: float, y: float, f, mode, u, sr_bits):
    """reg = round(x + y) on floats; propagates None (untestable) and ANYZERO (unknown sign)."""
    if x is None or y is None or x is ANYZERO or y is ANYZERO:
        return None
    r = add_ref(x, y, f, mode, u, sr_bits)
    return None if r is ANYZERO else r


def _round_val(x: float, f, mode, u, sr_bits):
    if x is None or x is ANYZERO:
        return None
    v, n = _ext(x)
    r = round_exact(v, n, f, mode, u, sr_bits)
    return None if r is ANYZERO else r


def product_values(a_row, b_col, product=None, product_rounding="rne"):
    """The products p_k (floats, exact in float64 or rounded into ``product``)."""
    out = []
    for a, b in zip(a_row, b_col):
        a, b = float(a), float(b)
        v, n = _prod_exact(a, b)
        if isinstance(v, Fraction):
            p = float(v)
            assert Fraction(p) == v, "product not exact in float64"
            p = -p if n else p
        elif math.isnan(v):
            p = math.nan
        else:
            p = -math.inf if n else math.inf
        if product is not None:
            p = round_ref(p, product, product_rounding)
        out.append(p)
    return out


def dot_ref(ps, acc: AccDesc, words=None):
    """One output element of the Accumulator semantics; ``words(t)`` gives the random word of
    step t (stochastic accumulators)."""
    f, mode, r = acc.fmt, acc.rounding, acc.sr_bits
    K = len(ps)
    w = (lambda t: 0) if words is None else words

    def run_sequential(lo, hi):
        reg = 0.0
        for k in range(lo, hi):
            reg = _add_vals(reg, ps[k], f, mode, w(k), r)
        return reg

    def run_pairwise(lo, hi):
        if hi - lo == 1:
            return _round_val(ps[lo], f, mode, w(lo), r)
        level = [(ps[k], k, k) for k in range(lo, hi)]
        while len(level) > 1:
            nxt = []
            for t in range(len(level) // 2):
                (x, xlo, _), (y, _, yhi) = level[2 * t], level[2 * t + 1]
                nxt.append((_add_vals(x, y, f, mode, w(2 * K + xlo * K + yhi), r), xlo, yhi))
            if len(level) % 2:
                nxt.append(level[-1])
            level = nxt
        return level[0][0]

    run = run_sequential if acc.order == "sequential" else run_pairwise
    if K == 0:
        return 0.0
    if acc.chunk is None:
        return run(0, K)
    total = 0.0
    n = acc.chunk
    for c, lo in enumerate(range(0, K, n)):
        total = _add_vals(total, run(lo, min(K, lo + n)), f, mode, w(K + c), r)
    return total


def _batched(A, B):
    A = np.asarray(A, dtype=np.float64)
    B = np.asarray(B, dtype=np.float64)
    if A.ndim == 2 and B.ndim == 2:
        return A[None], B[None], False
    if A.ndim == 3 and B.ndim == 2:
        return A, np.broadcast_to(B, (A.shape[0],) + B.shape), True
    if A.ndim == 2 and B.ndim == 3:
        return np.broadcast_to(A, (B.shape[0],) + A.shape), B, True
    assert A.ndim == 3 and B.ndim == 3 and A.shape[0] == B.shape[0]
    return A, B, True


def gemm_ref(A, B, acc_desc, product=None, out=None, key=None, product_rounding="rne"):
    """C = A @ B with the spec's accumulation; A, B hold the operand VALUES (float64 arrays).

    Returns (C as float64 array, skip mask) -- skip marks elements the spec says not to test
    bitwise (exact 'sr' tails) or whose zero sign is unspecified."""
    A3, B3, batched = _batched(A, B)
    Bt, M, K = A3.shape
    N = B3.shape[2]
    C = np.zeros((Bt, M, N))
    skip = np.zeros((Bt, M, N), dtype=bool)
    stochastic = acc_desc.rounding == "sr"
    for bt in range(Bt):
        for i in range(M):
            for j in range(N):
                e = (bt * M + i) * N + j
                ps = product_values(A3[bt, i], B3[bt, :, j], product, product_rounding)
                words = None
                if stochastic:
                    from fpsim.kernels.rounding import random_word  # the RNG: an input
                    base = e * (K * K + 2 * K)
                    words = lambda t, base=base: int(random_word(np.uint64(key), base + t))
                v = dot_ref(ps, acc_desc, words)
                if v is not None and out is not None:
                    # a NaN into a format without NaN becomes a zero whose sign is the NaN's,
                    # which the spec leaves open: not testable
                    v = None if math.isnan(v) and out.specials == "none" else \
                        round_ref(v, out, "rne")
                if v is None:
                    skip[bt, i, j] = True
                    v = math.nan
                C[bt, i, j] = v
    if not batched:
        return C[0], skip[0]
    return C, skip


def kulisch_lsb_exp(a_fmt, b_fmt, product=None) -> int:
    if product is not None:
        return product.emin - product.man_bits
    return (a_fmt.emin - a_fmt.man_bits) + (b_fmt.emin - b_fmt.man_bits)


def kulisch_ref(A, B, kdesc: KulischDesc, a_fmt, b_fmt, product=None, out=None,
                product_rounding="rne"):
    """Exact sum of the products, ONE rounding into kdesc.fmt (then rne into ``out``).

    Returns (C, overflow mask, zero mask).  ``zero`` marks exact-zero sums (the zero sign of a
    fixed-point register is not specified, compare those as values).  With a width, an element
    whose final sum S (units of the LSB) lies outside [-2**(W-1), 2**(W-1)-1] is flagged in the
    overflow mask (its value in C is NaN)."""
    A3, B3, batched = _batched(A, B)
    Bt, M, K = A3.shape
    N = B3.shape[2]
    C = np.zeros((Bt, M, N))
    over = np.zeros((Bt, M, N), dtype=bool)
    zero = np.zeros((Bt, M, N), dtype=bool)
    lsb = Fraction(2) ** kulisch_lsb_exp(a_fmt, b_fmt, product)
    W = kdesc.width
    for bt in range(Bt):
        for i in range(M):
            for j in range(N):
                ps = product_values(A3[bt, i], B3[bt, :, j], product, product_rounding)
                S = sum((Fraction(p) for p in ps), Fraction(0))
                if W is not None:
                    units = S / lsb
                    assert units.denominator == 1
                    if not -2 ** (W - 1) <= units <= 2 ** (W - 1) - 1:
                        over[bt, i, j] = True
                        C[bt, i, j] = math.nan
                        continue
                v = round_exact(abs(S), S < 0, kdesc.fmt, kdesc.rounding)
                zero[bt, i, j] = S == 0
                if out is not None:
                    if math.isnan(v) and out.specials == "none":
                        zero[bt, i, j] = True   # zero of the NaN's (unspecified) sign
                    v = round_ref(v, out, "rne")
                C[bt, i, j] = v
    if not batched:
        return C[0], over[0], zero[0]
    return C, over, zero
