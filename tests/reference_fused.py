"""Exact-rational references of the matrix-engine datapaths, written from the definitions in
the docstrings of fpsim.engines (FusedDotAdd, FMAChain, PairwiseGroups) with fractions.Fraction,
independent of fpsim's kernels.

Fused step: products exact (block scales multiplied in); runs of ``subsum`` products summed
exactly into one term; the terms dealt to ``lanes`` alignments (k even / k odd); in each, the
exponent E = the largest term exponent (c's too, in lane 0, when c joins the alignment); each term
cut to a multiple of 2**(E - F); the cut terms summed exactly (a two's-complement adder of
F + 2 + carry bits when carry >= 0); two lanes floored to F bits below the larger exponent and
added; c outside the alignment added exactly, or late (sum floored to late_sum bits and c to
late_c bits below the larger of the two exponents, c dropped below M - late_drop); the sum
rounded once into the register format.  A GEMM chains the steps, each step's result the next c.
"""

from __future__ import annotations

import math
from fractions import Fraction

from reference import floor_log2, fmax, round_ref
from reference_arith import round_exact

TWO = Fraction(2)


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


def _special(values):
    """NaN / +-Inf of the non-finite products and c (None if all are finite)."""
    bad = [v for v in values if math.isnan(v) or math.isinf(v)]
    if not bad:
        return None
    if any(math.isnan(v) for v in bad) or (math.inf in bad and -math.inf in bad):
        return math.nan
    return bad[0]


def step_ref(a, b, c: float, m, a_emin: int, b_emin: int, sa=None, sb=None, s_emin=None):
    """One fused step of model ``m`` (an fpsim.FusedDotAdd, read for its parameters only):
    the register value after products a[t]*b[t] (times scales sa[t]*sb[t]) and c."""
    reg, F, zero = m.register, m.frac_bits, m.zero_exponent
    c_emin = reg.emin if m.c_emin is None else m.c_emin
    n = len(a)
    sa = [1.0] * n if sa is None else [abs(float(s)) for s in sa]
    sb = [1.0] * n if sb is None else [abs(float(s)) for s in sb]
    raw = []
    for x, y, u, v in zip(a, b, sa, sb):
        vals = [float(x), float(y), u, v]
        if any(math.isnan(t) for t in vals) or (any(math.isinf(t) for t in vals)
                                                 and 0.0 in vals):
            raw.append(math.nan)
        elif any(math.isinf(t) for t in vals):
            raw.append(math.copysign(math.inf, float(x)) * math.copysign(1.0, float(y)))
        else:
            raw.append(None)
    sp = _special([r for r in raw if r is not None] + [c])
    if sp is not None:
        return round_ref(sp, reg, m.rounding)
    prods = [Fraction(float(x)) * Fraction(float(y)) * Fraction(u) * Fraction(v)
             for x, y, u, v in zip(a, b, sa, sb)]
    top = TWO ** (floor_log2(fmax(reg)) + 1)
    if m.product_overflow and any(abs(p) >= top for p in prods):
        pos, neg = any(p >= top for p in prods), any(p <= -top for p in prods)
        return math.nan if pos and neg else (math.inf if pos else -math.inf)
    scaled = s_emin is not None

    def pexp(t):
        ea, eb = dec_exp(float(a[t]), a_emin, zero), dec_exp(float(b[t]), b_emin, zero)
        if scaled:
            esa, esb = dec_exp(sa[t], s_emin, zero), dec_exp(sb[t], s_emin, zero)
            es = None if esa is None or esb is None else esa + esb
            if m.subsum > 1 or es is None:
                return es
            return None if ea is None or eb is None else ea + eb + es
        return None if ea is None or eb is None else ea + eb

    terms = []                                   # (value, exponent or None, lane)
    for r0 in range(0, n, m.subsum):
        run = range(r0, min(n, r0 + m.subsum))
        exps = [e for e in (pexp(t) for t in run) if e is not None]
        terms.append((sum(prods[t] for t in run), max(exps) if exps else None,
                      (r0 // m.subsum) % m.lanes))
    if c == 0 and all(t[0] == 0 for t in terms):     # no nonzero term: c's zero passes
        return round_ref(c, reg, m.rounding)
    cf = Fraction(c)
    lanes = []
    for ln in range(m.lanes):
        pool = [(v, e) for v, e, l_ in terms if l_ == ln]
        if ln == 0 and m.c_aligned:
            pool.append((cf, dec_exp(c, c_emin, zero)))
        exps = [e for _, e in pool if e is not None]
        if exps:
            E = max(exps)
            lanes.append((sum(_cut(v / TWO ** (E - F), m.cut) for v, _ in pool), E))
    if not lanes:
        S, E = 0, None
    elif len(lanes) == 1:
        S, E = lanes[0]
    else:
        E = max(e for _, e in lanes)
        S = sum(math.floor(s * TWO ** (e - E)) for s, e in lanes)
    if m.carry_bits is not None:
        S = _wrap(S, F + 2 + m.carry_bits)
    if m.late_sum_bits is not None:
        ec = dec_exp(c, c_emin, zero)
        M = ec if E is None else max(E, ec)
        total = Fraction(0)
        if E is not None:
            total += math.floor(S * TWO ** (E - F) / TWO ** (M - m.late_sum_bits)) * \
                TWO ** (M - m.late_sum_bits)
        if c != 0 and not (m.late_c_drop is not None and ec < M - m.late_c_drop):
            total += math.floor(cf / TWO ** (M - m.late_c_bits)) * TWO ** (M - m.late_c_bits)
    else:
        total = Fraction(0) if E is None else S * TWO ** (E - F)
        if not m.c_aligned:
            total += cf
    if total == 0:
        return 0.0
    if m.overflow == "inf" and abs(total) >= top:
        return math.inf if total > 0 else -math.inf
    return round_exact(abs(total), total < 0, reg, m.rounding)


def fused_gemm_ref(A, B, C, m, a_fmt, b_fmt, SA=None, SB=None, s_fmt=None, block=1):
    """D = the chain of fused steps of model ``m`` over K in groups of m.group, from C (2-D
    arrays); SA (M, K/block) and SB (K/block, N): block scales in format s_fmt."""
    M, K = len(A), len(A[0])
    N = len(B[0])
    s_emin = None if s_fmt is None else (-s_fmt.bias if not hasattr(s_fmt, "emin")
                                         else s_fmt.emin)
    D = [[0.0] * N for _ in range(M)]
    for i in range(M):
        for j in range(N):
            acc = float(C[i][j])
            for k0 in range(0, K, m.group):
                ks = range(k0, min(K, k0 + m.group))
                acc = step_ref([A[i][k] for k in ks], [B[k][j] for k in ks], acc, m,
                               a_fmt.emin, b_fmt.emin,
                               None if SA is None else [SA[i][k // block] for k in ks],
                               None if SB is None else [SB[k // block][j] for k in ks], s_emin)
            D[i][j] = acc
    return D


def _fma(x: float, y: float, r: float, reg) -> float:
    """IEEE fused multiply-add rounded to nearest-even into ``reg``, from Fractions; an exact
    zero is +0 unless both the product and r are zeros of negative sign."""
    if not all(math.isfinite(t) for t in (x, y, r)):
        return round_ref(x * y + r, reg, "rne")       # specials: exact in float64
    exact = Fraction(x) * Fraction(y) + Fraction(r)
    if exact != 0:
        return round_exact(abs(exact), exact < 0, reg, "rne")
    p_neg = math.copysign(1.0, x) * math.copysign(1.0, y) < 0
    both_zero = (x == 0 or y == 0) and r == 0
    return -0.0 if both_zero and p_neg and math.copysign(1.0, r) < 0 else 0.0


def fma_chain_ref(A, B, C, reg):
    """For k in order r = a*b + r rounded once to nearest-even into ``reg`` (float32/64)."""
    M, K, N = len(A), len(A[0]), len(B[0])
    D = [[0.0] * N for _ in range(M)]
    for i in range(M):
        for j in range(N):
            r = float(C[i][j])
            for k in range(K):
                r = _fma(float(A[i][k]), float(B[k][j]), r, reg)
            D[i][j] = r
    return D


def pairwise_ref(A, B, C, group: int, ftz: bool, k_step: int, a_fmt, b_fmt, f32):
    """AMD-2: groups of products rounded to float32 (``f32``), a tree of float32 additions,
    added to the register; with ftz, inputs below their format's normal range +0, C below
    2**-126 at each instruction +0, results below 2**-126 a zero of their sign."""
    tiny = 2.0 ** -126

    def fl(x):
        return math.copysign(0.0, x) if ftz and abs(x) < tiny else x

    M, K, N = len(A), len(A[0]), len(B[0])
    D = [[0.0] * N for _ in range(M)]
    for i in range(M):
        for j in range(N):
            r = float(C[i][j])
            for k0 in range(0, K, group):
                if ftz and k0 % k_step == 0 and abs(r) < tiny:
                    r = 0.0
                vals = []
                for k in range(k0, k0 + group):
                    x, y = float(A[i][k]), float(B[k][j])
                    if ftz:
                        x = 0.0 if abs(x) < a_fmt.min_normal else x
                        y = 0.0 if abs(y) < b_fmt.min_normal else y
                    vals.append(fl(_fma(x, y, -0.0, f32)))     # x*y + (-0): the product
                while len(vals) > 1:
                    vals = [fl(_fma(vals[t], 1.0, vals[t + 1], f32))
                            for t in range(0, len(vals), 2)]
                r = fl(_fma(r, 1.0, vals[0], f32))
            D[i][j] = r
    return D
