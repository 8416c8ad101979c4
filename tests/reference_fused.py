"""Exact-rational reference of a matrix engine's fused dot-add, written from the definition in
fpsim.engines.FusedDotAdd's docstring with fractions.Fraction, independent of fpsim's kernels.

One step: products exact; the alignment exponent e = max floor(log2|t|) over the nonzero terms
(the products, and c when it joins the alignment); each term cut to a multiple of 2**(e - F)
(toward zero, toward -inf or to nearest-even); the cut terms summed exactly (a two's-complement
adder of F + 2 + carry bits when carry >= 0); c outside the alignment added exactly; the sum
rounded once into the register format.  A GEMM chains the steps, each step's result the next
step's c.
"""

from __future__ import annotations

import math
from fractions import Fraction

from reference import floor_log2, fmax, round_ref
from reference_arith import round_exact


def _cut(t: Fraction, how: str) -> int:
    if how == "rtz":
        return math.trunc(t)
    if how == "rdn":
        return math.floor(t)
    k = math.floor(t)
    r = t - k
    return k + (r > Fraction(1, 2) or (r == Fraction(1, 2) and k % 2 == 1))


def _wrap(s: int, bits: int) -> int:
    span = 1 << bits
    r = s % span
    return r - span if r >= span // 2 else r


def dec_exp(x: float, emin: int, zero_exp):
    """The alignment exponent of an input: floor(log2|x|) raised to its format's emin; zeros get
    ``zero_exp`` (None: they never set the alignment)."""
    if x == 0:
        return zero_exp
    return max(floor_log2(abs(Fraction(x))), emin)


def dot_add_ref(a, b, c: float, F: int, cut: str, c_aligned: bool, carry: int, reg, mode: str,
                a_emin: int, b_emin: int, c_emin: int, zero_exp, overflow_inf: bool) -> float:
    """One fused step: round(sum of cut products (+ c)) into format ``reg``; floats in and out.
    The alignment exponent is the largest sum of the two inputs' exponents (and c's)."""
    terms, exps, special = [], [], []
    for x, y in zip(a, b):
        x, y = float(x), float(y)
        if math.isnan(x) or math.isnan(y) or (math.isinf(x) and y == 0) or \
                (math.isinf(y) and x == 0):
            special.append(math.nan)
            continue
        if math.isinf(x) or math.isinf(y):
            special.append(math.copysign(math.inf, x) * math.copysign(1.0, y))
            continue
        terms.append(Fraction(x) * Fraction(y))
        ea, eb = dec_exp(x, a_emin, zero_exp), dec_exp(y, b_emin, zero_exp)
        if ea is not None and eb is not None:
            exps.append(ea + eb)
    if math.isnan(c) or math.isinf(c):
        special.append(c)
    if special:
        if any(math.isnan(v) for v in special) or (math.inf in special and -math.inf in special):
            return math.nan
        return round_ref(special[0], reg, mode)
    if c == 0 and not any(t != 0 for t in terms):       # no nonzero term: c's zero passes
        return round_ref(c, reg, mode)
    cf = Fraction(c)
    pool = list(terms)
    if c_aligned:
        pool.append(cf)
        ec = dec_exp(c, c_emin, zero_exp)
        if ec is not None:
            exps.append(ec)
    total = Fraction(0)
    if exps:
        e = max(exps)
        q = Fraction(2) ** (e - F)
        s = sum(_cut(t / q, cut) for t in pool)
        if carry >= 0:
            s = _wrap(s, F + 2 + carry)
        total = s * q
    if not c_aligned:
        total += cf
    if total == 0:
        return 0.0
    top = floor_log2(fmax(reg))
    if overflow_inf and abs(total) >= Fraction(2) ** (top + 1):
        return math.inf if total > 0 else -math.inf
    return round_exact(abs(total), total < 0, reg, mode)


def fused_gemm_ref(A, B, C, group: int, F: int, cut: str, c_aligned: bool, carry: int, reg,
                   mode: str, a_emin: int, b_emin: int, c_emin: int, zero_exp,
                   overflow_inf: bool):
    """D = the chain of fused steps over K in groups of ``group``, from C (2-D float arrays)."""
    M, K = A.shape
    N = B.shape[1]
    D = [[0.0] * N for _ in range(M)]
    for i in range(M):
        for j in range(N):
            acc = float(C[i][j])
            for k0 in range(0, K, group):
                ks = range(k0, min(K, k0 + group))
                acc = dot_add_ref([A[i][k] for k in ks], [B[k][j] for k in ks], acc, F, cut,
                                  c_aligned, carry, reg, mode, a_emin, b_emin, c_emin, zero_exp,
                                  overflow_inf)
            D[i][j] = acc
    return D
