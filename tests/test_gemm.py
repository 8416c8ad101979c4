"""fpsim.gemm against the exact-rational accumulation reference (sequential / chunked / pairwise,
every rounding mode, product and output formats), a plain float32 numpy loop, and the exact dot
product for Kulisch accumulators."""

import math
import warnings
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import fpsim
from fpsim.kernels.rounding import seed_key
from reference import round_ref
from reference_arith import (AccDesc, KulischDesc, gemm_ref, kulisch_ref, product_values,
                             round_exact)
from test_reference import formats

DETERMINISTIC = ["rne", "rna", "rtz", "rup", "rdn", "rto"]
SETTINGS = settings(max_examples=200, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                           HealthCheck.data_too_large])

# operand formats: (format, ml_dtypes/numpy dtype that carries it or None)
OPERANDS = {
    "float8_e5m2": ml_dtypes.float8_e5m2,
    "float8_e4m3fn": ml_dtypes.float8_e4m3fn,
    "e3m2": None,
    "e8m7": ml_dtypes.bfloat16,
    "float16": np.float16,
}
NAMED_ACC = ["fp16_169", "1-6-9", "float16", "bfloat16", "float32", "e5m2", "e4m3fn"]
_POOLS = {}


def pool(name):
    if name not in _POOLS:
        _POOLS[name] = fpsim.format(name).values()
    return _POOLS[name]


@st.composite
def arith_formats(draw):
    f = draw(formats())
    assume(f.man_bits <= 50 and f.emin - f.man_bits >= -1022)
    return f


def some_format(named):
    return st.one_of(st.sampled_from(named).map(fpsim.format), arith_formats())


@st.composite
def operand_values(draw, name, shape):
    """Values of the operand format: a window of exponents (so sums round in narrow
    accumulators), zeros, and exact cancellations."""
    vals = pool(name)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    kind = draw(st.integers(0, 3))
    if kind > 0:
        c = draw(st.integers(-10, 10))
        w = draw(st.integers(0, 12))
        a = np.abs(vals)
        sel = vals[(a == 0) | ((a >= 2.0**(c - w)) & (a <= 2.0**(c + w)))]
        vals = sel if sel.size > 1 else vals
    x = rng.choice(vals, size=shape)
    if kind == 3 and x.shape[-1] >= 2:  # pairs x, -x along the last axis (cancellation)
        h = x.shape[-1] // 2
        x[..., h:2 * h] = -x[..., :h]
    return x.astype(np.float64)


def assert_gemm_equal(got, want, skip, ctx):
    got = np.asarray(got, dtype=np.float64)
    assert got.shape == want.shape, (got.shape, want.shape)
    keep = ~skip
    g, w = got[keep], want[keep]
    ok = np.array_equal(g, w, equal_nan=True)
    nn = ~np.isnan(w)
    ok = ok and np.array_equal(np.signbit(g[nn]), np.signbit(w[nn]))
    if not ok:
        bad = np.argwhere(keep & ~((got == want) & (np.signbit(got) == np.signbit(want))
                                   | (np.isnan(got) & np.isnan(want))))
        detail = ", ".join(f"{tuple(i)}: got {got[tuple(i)]!r} want {want[tuple(i)]!r}"
                           for i in bad[:6])
        raise AssertionError(f"{ctx}\n{len(bad)} mismatches: {detail}")


def expected_dtype(final):
    return np.float32 if fpsim.format("float32").contains(final) else np.float64


# --- the main oracle test ----------------------------------------------------------------------
@SETTINGS
@given(data=st.data(),
       M=st.integers(1, 4), N=st.integers(1, 4), K=st.integers(1, 40),
       an=st.sampled_from(list(OPERANDS)), bn=st.sampled_from(list(OPERANDS)),
       order=st.sampled_from(["sequential", "pairwise"]),
       mode=st.sampled_from(DETERMINISTIC + ["sr", "sr"]),
       seed=st.integers(0, 2**64 - 1), as_dtype=st.booleans())
def test_gemm_equals_reference(data, M, N, K, an, bn, order, mode, seed, as_dtype):
    accf = data.draw(some_format(NAMED_ACC))
    chunk = data.draw(st.one_of(st.none(), st.integers(1, K + 1)))
    sr_bits = None
    if mode == "sr":
        sr_bits = data.draw(st.one_of(st.none(), st.integers(1, min(16, 52 - accf.man_bits))))
    product = data.draw(st.one_of(st.none(), some_format(["float16", "bfloat16", "e5m2",
                                                          "fp16_169", "e4m3", "float32"])))
    out = data.draw(st.one_of(st.none(), some_format(["float16", "bfloat16", "e4m3fn",
                                                      "float32"])))
    A = data.draw(operand_values(an, (M, K)))
    B = data.draw(operand_values(bn, (K, N)))
    fa, fb = fpsim.format(an), fpsim.format(bn)
    acc = fpsim.Accumulator(accf, chunk=chunk, rounding=mode, order=order, sr_bits=sr_bits)
    kw = dict(acc=acc, product=product, out_format=out, seed=seed)
    if as_dtype and OPERANDS[an] is not None and OPERANDS[bn] is not None:
        got = fpsim.gemm(A.astype(OPERANDS[an]), B.astype(OPERANDS[bn]), **kw)
    else:
        got = fpsim.gemm(A, B, a_format=fa, b_format=fb, **kw)
    want, skip = gemm_ref(A, B, AccDesc(accf, chunk, mode, order, sr_bits), product, out,
                          key=seed_key(np.uint64(seed)))
    assert got.dtype == expected_dtype(out or accf)
    assert_gemm_equal(got, want, skip, (acc, product, out, seed, A.tolist(), B.tolist()))


@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(data=st.data(), M=st.integers(1, 3), N=st.integers(1, 3), K=st.integers(1, 64),
       an=st.sampled_from(["float8_e5m2", "float8_e4m3fn", "e3m2", "float4_e2m1fn", "e2m3none"]),
       bn=st.sampled_from(["float8_e5m2", "float8_e4m3fn", "e3m2", "float4_e2m1fn"]),
       order=st.sampled_from(["sequential", "pairwise"]))
def test_gemm_round_to_nearest_even_exact_products(data, M, N, K, an, bn, order):
    """The common configuration (rne, exact products, accumulator wider than the products) with
    longer reductions: swamping, overflow to Inf/NaN, subnormal sums."""
    accf = data.draw(st.one_of(
        st.sampled_from(["fp16_169", "float16", "bfloat16", "float32", "e5m2", "e6m5", "e8m10",
                         "e5m7fn", "e4m6", "e5m10_sat"]).map(fpsim.format),
        arith_formats()))
    chunk = data.draw(st.one_of(st.none(), st.integers(1, K + 1)))
    A = data.draw(operand_values(an, (M, K)))
    B = data.draw(operand_values(bn, (K, N)))
    acc = fpsim.Accumulator(accf, chunk=chunk, order=order)
    got = fpsim.gemm(A, B, acc, a_format=an, b_format=bn)
    want, skip = gemm_ref(A, B, AccDesc(accf, chunk, "rne", order))
    assert got.dtype == expected_dtype(accf)
    assert_gemm_equal(got, want, skip, (acc, A.tolist(), B.tolist()))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), K=st.integers(1, 12), mode=st.sampled_from(DETERMINISTIC),
       order=st.sampled_from(["sequential", "pairwise"]),
       accn=st.sampled_from(["float16", "float32", "fp16_169", "e4m3fn", "e5m2fnuz", "e3m2_sat"]))
def test_gemm_with_special_operands(data, K, mode, order, accn):
    """Inf and NaN operands: 0*Inf -> NaN, Inf-Inf -> NaN, Inf into formats without Inf."""
    specials = [0.0, -0.0, math.inf, -math.inf, math.nan, 1.0, -2.0, 57344.0, -57344.0, 0.25]
    A = np.array(data.draw(st.lists(st.sampled_from(specials), min_size=3 * K, max_size=3 * K)))
    B = np.array(data.draw(st.lists(st.sampled_from(specials), min_size=2 * K, max_size=2 * K)))
    A, B = A.reshape(3, K), B.reshape(K, 2)
    chunk = data.draw(st.one_of(st.none(), st.integers(1, K)))
    acc = fpsim.Accumulator(accn, chunk=chunk, rounding=mode, order=order)
    got = fpsim.gemm(A, B, acc, a_format="e5m2", b_format="e5m2")
    want, skip = gemm_ref(A, B, AccDesc(fpsim.format(accn), chunk, mode, order))
    assert_gemm_equal(got, want, skip, (acc, A.tolist(), B.tolist()))


def test_default_accumulator_is_float32_sequential_rne():
    rng = np.random.default_rng(5)
    A = rng.choice(pool("float8_e4m3fn"), (3, 33))
    B = rng.choice(pool("float8_e4m3fn"), (33, 2))
    got = fpsim.gemm(A.astype(ml_dtypes.float8_e4m3fn), B.astype(ml_dtypes.float8_e4m3fn))
    want, skip = gemm_ref(A, B, AccDesc(fpsim.format("float32")))
    assert got.dtype == np.float32
    assert_gemm_equal(got, want, skip, "default acc")


def test_accumulation_orders_by_hand():
    """Hand-checked case in 1-6-9 (10 significant bits): sequential sum 1 + 2^-11 * 4 rounds each
    small addend away (ties to even), chunked sums the small ones first."""
    A = np.array([[1.0] + [2.0**-11] * 4])
    B = np.ones((5, 1))
    seq = fpsim.gemm(A, B, fpsim.Accumulator("1-6-9"), a_format="float16", b_format="float16")
    assert float(seq[0, 0]) == 1.0
    ch = fpsim.gemm(A[:, [1, 2, 3, 4, 0]], B, fpsim.Accumulator("1-6-9", chunk=4),
                    a_format="float16", b_format="float16")
    assert float(ch[0, 0]) == 1.0 + 2.0**-9
    pw = fpsim.gemm(A, B, fpsim.Accumulator("1-6-9", order="pairwise"),
                    a_format="float16", b_format="float16")
    # tree: (1 + 2^-11) -> 1 (tie, even) ; (2^-11 + 2^-11) = 2^-10 ; 1 + 2^-10 -> 1 (tie, even);
    # then + 2^-11 -> 1
    assert float(pw[0, 0]) == 1.0


def test_pairwise_node_index_scheme_by_hand():
    """sr_bits=1 makes each step's decision the top bit of its word; compare with the indices of
    the spec computed by hand for K=3 (nodes (0,1) then (0,2))."""
    from fpsim.kernels.rounding import random_word
    f = fpsim.format("e5m2")
    A = np.array([[1.0, 2.0**-3, 2.0**-3]])    # 1 + 1/8: half an ulp (ulp of 1 is 1/4)
    B = np.ones((3, 1))
    for seed in range(20):
        key = np.uint64(seed_key(np.uint64(seed)))
        K = 3
        got = fpsim.gemm(A, B, fpsim.Accumulator(f, rounding="sr", order="pairwise", sr_bits=1),
                         seed=seed, a_format="e5m2", b_format="e5m2")
        u01 = int(random_word(key, 2 * K + 0 * K + 1))
        n01 = 1.25 if (u01 >> 63) + 1 >= 2 else 1.0          # 1 + 1/8: frac = 1/2 -> f_1 = 1
        u02 = int(random_word(key, 2 * K + 0 * K + 2))
        exact = Fraction(n01) + Fraction(1, 8)               # frac 1/2 again
        lo = math.floor(exact * 4) / 4
        n02 = lo + 0.25 if (u02 >> 63) + 1 >= 2 else lo
        assert float(got[0, 0]) == n02, seed


# --- float32 accumulator against numpy float32 arithmetic ------------------------------------
def f32_loop(ps, chunk, order):
    assert all(float(np.float32(p)) == p for p in ps)   # products are float32 values
    ps = [np.float32(p) for p in ps]

    def seq(run):
        r = np.float32(0.0)
        for p in run:
            r = np.float32(r + p)
        return r

    def tree(run):
        if len(run) == 1:
            return run[0]
        level = list(run)
        while len(level) > 1:
            nxt = [np.float32(level[2 * t] + level[2 * t + 1]) for t in range(len(level) // 2)]
            if len(level) % 2:
                nxt.append(level[-1])
            level = nxt
        return level[0]

    f = seq if order == "sequential" else tree
    if not ps:
        return np.float32(0.0)
    if chunk is None:
        return f(ps)
    total = np.float32(0.0)
    for lo in range(0, len(ps), chunk):
        total = np.float32(total + f(ps[lo:lo + chunk]))
    return total


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), K=st.integers(1, 40),
       an=st.sampled_from(["float8_e5m2", "float8_e4m3fn", "e8m7", "float16"]),
       chunk=st.one_of(st.none(), st.integers(1, 41)),
       order=st.sampled_from(["sequential", "pairwise"]))
def test_float32_accumulator_equals_numpy_float32_loop(seed, K, an, chunk, order):
    rng = np.random.default_rng(seed)
    vals = pool(an)
    vals = vals[(np.abs(vals) < 2.0**20) & (np.abs(vals) > 2.0**-20) | (vals == 0)]
    A, B = rng.choice(vals, (3, K)), rng.choice(vals, (K, 2))
    got = fpsim.gemm(A, B, fpsim.Accumulator("float32", chunk=chunk, order=order),
                     a_format=an, b_format=an)
    assert got.dtype == np.float32
    with np.errstate(all="ignore"):
        want = np.array([[f32_loop([A[i, k] * B[k, j] for k in range(K)], chunk, order)
                          for j in range(2)] for i in range(3)], dtype=np.float32)
    np.testing.assert_array_equal(got, want)
    assert np.array_equal(np.signbit(got), np.signbit(want))


# --- Kulisch ------------------------------------------------------------------------------------
def exact_rounded_dot(A, B, fmt, mode):
    out = np.empty((A.shape[0], B.shape[1]))
    for i in range(A.shape[0]):
        for j in range(B.shape[1]):
            S = sum((Fraction(float(a)) * Fraction(float(b)) for a, b in zip(A[i], B[:, j])),
                    Fraction(0))
            out[i, j] = round_exact(abs(S), S < 0, fmt, mode)
    return out


@SETTINGS
@given(data=st.data(), M=st.integers(1, 4), N=st.integers(1, 4), K=st.integers(1, 40),
       an=st.sampled_from(list(OPERANDS)), bn=st.sampled_from(list(OPERANDS)),
       mode=st.sampled_from(DETERMINISTIC))
def test_kulisch_equals_exact_sum_rounded_once(data, M, N, K, an, bn, mode):
    fmt = data.draw(some_format(NAMED_ACC))
    product = data.draw(st.one_of(st.none(), some_format(["float16", "e5m2", "bfloat16"])))
    out = data.draw(st.one_of(st.none(), some_format(["float16", "e4m3fn"])))
    A = data.draw(operand_values(an, (M, K)))
    B = data.draw(operand_values(bn, (K, N)))
    acc = fpsim.KulischAccumulator(fmt, rounding=mode)
    fa, fb = fpsim.format(an), fpsim.format(bn)
    if product is not None:
        # products that overflow a product format become Inf/NaN: not a Kulisch input
        assume(all(math.isfinite(p) for i in range(M) for j in range(N)
                   for p in product_values(A[i], B[:, j], product)))
    got = fpsim.gemm(A, B, acc, product=product, out_format=out, a_format=fa, b_format=fb)
    want, over, zero = kulisch_ref(A, B, KulischDesc(fmt, None, mode), fa, fb, product, out)
    assert not over.any()
    assert got.dtype == expected_dtype(out or fmt)
    ctx = (acc, product, out, A.tolist(), B.tolist())
    # an exact zero sum: the fixed-point register has no signed zero, compare values only
    assert_gemm_equal(np.where(zero, 0.0, got), np.where(zero, 0.0, want), np.zeros_like(zero),
                      ctx)
    if product is None:  # and against a second, plain Fraction dot product
        w2 = exact_rounded_dot(A, B, fmt, mode)
        if out is not None:
            w2 = np.vectorize(lambda v: round_ref(float(v), out, "rne"))(w2)
        assert_gemm_equal(np.where(zero, 0.0, got), np.where(zero, 0.0, w2),
                          np.zeros_like(zero), ctx)


def test_kulisch_as_an_exact_float64_chain(monkeypatch):
    """Where float64 holds every partial sum (the data's quanta and magnitudes allow it), the
    Kulisch sum is float64's FMA chain and one rounding (accum._kulisch_run); the digits kernel
    must not run.  Final roundings at a float16 tie and near ties, 2**8 cancelled leaving
    2**-17, every deterministic mode, against the Fraction dot product."""
    from fpsim import accum
    monkeypatch.setattr(accum._kulisch, "gemm_kulisch",
                        lambda *a: (_ for _ in ()).throw(AssertionError("digits path ran")))
    A = np.array([[1.0, 2.0**-11, 0.0, 0.0], [1.0, 2.0**-11, 2.0**-10, 2.0**-10],
                  [2.0**8, 2.0**-8, -2.0**8, 0.0], [-1.0, -2.0**-11, -2.0**-10, -2.0**-10]])
    B = np.array([[1.0, 1.0], [1.0, 2.0**-9], [2.0**-10, 1.0], [-2.0**-10, 0.5]])
    for accf in ["float16", "e8m7", "float32"]:
        for mode in DETERMINISTIC:
            got = fpsim.gemm(A, B, fpsim.KulischAccumulator(accf, rounding=mode),
                             a_format="e5m2", b_format="e5m2")
            want = exact_rounded_dot(A, B, fpsim.format(accf), mode)
            np.testing.assert_array_equal(got, want, err_msg=f"{accf} {mode}")
    got = fpsim.gemm(A, B, fpsim.KulischAccumulator("float16", width=48), a_format="e5m2",
                     b_format="e5m2")
    assert got[0, 0] == 1.0 and got[2, 1] == 2.0**-17     # tie to even; 2**8 cancelled


def test_kulisch_huge_cancellation():
    big = 57344.0  # e5m2 max
    row = [big, big, -big, 2.0**-16, -big, 3 * 2.0**-16, big, -big]
    A = np.array([row, row[::-1], [big] * 4 + [-big] * 4])
    B = np.array([[big], [big], [big], [2.0**-16], [big], [2.0**-16], [big], [big]])
    # row 0: the big products cancel, leaving 2^-32 + 3 * 2^-32 = 2^-30; row 2: exactly 0
    assert float(exact_rounded_dot(A, B, fpsim.format("float32"), "rne")[0, 0]) == 2.0**-30
    for accf in ["float32", "fp16_169", "e8m7", "float16"]:
        for mode in DETERMINISTIC:
            got = fpsim.gemm(A, B, fpsim.KulischAccumulator(accf, rounding=mode),
                             a_format="e5m2", b_format="e5m2")
            want = exact_rounded_dot(A, B, fpsim.format(accf), mode)
            np.testing.assert_array_equal(got, want, err_msg=f"{accf} {mode}")
        # an ordinary float32 accumulator loses the tiny terms
    f32 = fpsim.gemm(A, B, fpsim.Accumulator("float32"), a_format="e5m2", b_format="e5m2")
    assert float(f32[0, 0]) != 2.0**-30
    # random massive cancellation: x_k and -x_k products plus a few tiny ones, shuffled
    rng = np.random.default_rng(3)
    for trial in range(20):
        half = rng.choice(pool("float8_e5m2")[np.abs(pool("float8_e5m2")) > 1e3], 15)
        tiny = rng.choice(pool("float8_e5m2")[(np.abs(pool("float8_e5m2")) < 1e-3)], 4)
        a = np.concatenate([half, -half, tiny])
        b = np.concatenate([rng.choice([1.0, 2.0, 0.5], 30), rng.choice([2.0**-14, 1.5], 4)])
        b[15:30] = b[:15]
        perm = rng.permutation(a.size)
        A1, B1 = a[perm][None, :], b[perm][:, None]
        for mode in DETERMINISTIC:
            got = fpsim.gemm(A1, B1, fpsim.KulischAccumulator("fp16_169", rounding=mode),
                             a_format="e5m2", b_format="e5m2")
            want = exact_rounded_dot(A1, B1, fpsim.format("fp16_169"), mode)
            assert float(got[0, 0]) == float(want[0, 0]), (trial, mode)


def kulisch_expected(A3, B3, fmt, product=None):
    """Exact sums rounded once into fmt (rne), per batch: the IEEE sum of the non-finite
    products where there are any (Inf + -Inf, Inf * 0 and NaN give NaN)."""
    out = np.empty((A3.shape[0], A3.shape[1], B3.shape[2]))
    for b in range(A3.shape[0]):
        for i in range(A3.shape[1]):
            for j in range(B3.shape[2]):
                ps = product_values(A3[b, i], B3[b, :, j], product)
                odd = [p for p in ps if not math.isfinite(p)]
                if odd:
                    out[b, i, j] = sum(odd)
                else:
                    S = sum((Fraction(p) for p in ps), Fraction(0))
                    out[b, i, j] = round_exact(abs(S), S < 0, fmt, "rne")
    return out


@pytest.mark.parametrize("case", ["wide e5m2", "non-finite", "product e5m2", "product e6m3",
                                  "product bfloat16", "lsb below -1000"])
def test_kulisch_digits_over_row_blocks_and_tiles(case):
    """The digits kernels (kernels.kulisch) run blocks of 4 rows by 256 columns (pair_task for
    whole blocks in two digits, rows_task for the others) and rerun, row by row, a block that
    met an Inf or NaN product, and every row where the digits' scales need two factors (lsb <
    -1000): 9 rows (blocks of 4, 4, 1), 300 columns (two tiles), a batch of 2, data over e5m2's
    whole range (no exact float64 chain), against the Fraction sums.  Digits: 2 for exact
    products and e6m3 ones (rounded in pair_task), 1 for e5m2 products, 6 for bfloat16 ones."""
    rng = np.random.default_rng(11)
    vals = pool("float8_e5m2")
    vals = vals[np.isfinite(vals)]
    A = rng.choice(vals, (2, 9, 12))
    B = rng.choice(vals, (2, 12, 300))
    product = {"product e5m2": "e5m2", "product e6m3": "e6m3", "product bfloat16": "bfloat16",
               "lsb below -1000": fpsim.FloatFormat(10, 3, bias=1010)}.get(case)
    a_format = "e5m2"
    if case == "lsb below -1000":    # A in the product format too: its values near 2**-1012
        a_format = product           # reach the lowest digit; products below 7680, its largest
        small = pool(product)[np.isfinite(pool(product)) & (np.abs(pool(product)) <= 64)]
        A = rng.choice(small, A.shape)
        A[:, :5] = rng.choice(small[np.abs(small) < 2.0 ** -990], A[:, :5].shape)
        B = np.clip(B, -64, 64)
    acc_fmt = fpsim.format(a_format if case == "lsb below -1000" else "float32")  # sees 2**-1012
    if case == "non-finite":
        A[0, 7, 3] = np.inf          # the last row of block 1, batch 0: Inf, NaN where B is 0
        B[0, 3, 7] = 0.0
        B[1, 10, 290] = np.nan       # tile 1 of batch 1, every row block
        A[1, 0, 4], A[1, 0, 5] = np.inf, -np.inf     # row 0 of batch 1: Inf - Inf
        B[1, 4, 17], B[1, 5, 17] = 1.0, 1.0
    got = fpsim.gemm(A, B, fpsim.KulischAccumulator(acc_fmt), product=product,
                     a_format=a_format, b_format="e5m2")
    pf = None if product is None else fpsim.format(product)
    want = kulisch_expected(A, B, acc_fmt, pf)
    if case == "non-finite":
        assert np.isnan(want[0, 7, 7]) and np.isinf(want[0, 7, 0]) and np.isnan(want[1, 0, 17])
        assert np.isfinite(want[0, :7]).all() and np.isfinite(want[0, 8]).all()
        assert np.isnan(want[1, :, 290]).all() and np.isfinite(want[1, 1:, :290]).all()
    if case == "lsb below -1000":
        assert (np.abs(want[:, :5]) < 2.0 ** -980).all() and (want[:, :5] != 0).mean() > 0.9
    np.testing.assert_array_equal(got, want.astype(got.dtype))


def kul(width, overflow="raise", fmt="float32"):
    return fpsim.KulischAccumulator(fmt, width=width, overflow=overflow)


def test_kulisch_width_overflow_boundaries():
    # e5m2 x e5m2: LSB = 2**((-14-2) + (-14-2)) = 2**-32; W = 34 holds [-2**33, 2**33 - 1] LSBs,
    # i.e. [-2.0, 2.0 - 2**-32]
    tiny = 2.0**-16
    W = 34

    def run(a, b, overflow="raise"):
        return fpsim.gemm(np.array([a]), np.array(b)[:, None], kul(W, overflow),
                          a_format="e5m2", b_format="e5m2")

    # 2 - 2^-32 = 1.75 + 0.25 - tiny*tiny : fits (2**33 - 1 LSBs)
    np.testing.assert_array_equal(run([1.75, 0.25, -tiny], [1.0, 1.0, tiny]), [[np.float32(2.0)]])
    with pytest.raises(fpsim.AccumulatorOverflow):
        run([1.75, 0.25], [1.0, 1.0])                            # 2**33 LSBs
    run([-1.75, -0.25], [1.0, 1.0])                              # -2**33: fits
    with pytest.raises(fpsim.AccumulatorOverflow):
        run([-1.75, -0.25, -tiny], [1.0, 1.0, tiny])             # -2**33 - 1
    # modular register: an intermediate excursion beyond the range does not matter
    np.testing.assert_array_equal(run([1.5, 1.5, -1.5], [1.0, 1.0, 1.0]), [[1.5]])
    np.testing.assert_array_equal(run([-1.5, -1.5, 1.5, 1.5], [1.0] * 4), [[0.0]])
    assert issubclass(fpsim.AccumulatorOverflow, ArithmeticError)


def test_kulisch_overflow_flag_gives_nan_and_warns():
    tiny = 2.0**-16
    A = np.array([[1.75, 0.25, 0.0], [1.75, 0.25, -tiny], [-1.75, -0.25, -tiny], [1.0, 0.5, 0.0]])
    B = np.array([[1.0, 1.0], [1.0, 1.0], [tiny, tiny]])
    with pytest.warns(RuntimeWarning):
        got = fpsim.gemm(A, B, kul(34, "flag"), a_format="e5m2", b_format="e5m2")
    assert np.isnan(got[0]).all() and np.isnan(got[2]).all()
    np.testing.assert_array_equal(got[1], [2.0, 2.0])   # 2 - 2**-32 fits; rne in float32
    np.testing.assert_array_equal(got[3], [1.5, 1.5])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fpsim.gemm(A[1:2], B, kul(34, "flag"), a_format="e5m2", b_format="e5m2")  # no overflow
    with pytest.raises(fpsim.AccumulatorOverflow):
        fpsim.gemm(A, B, kul(34), a_format="e5m2", b_format="e5m2")


def test_kulisch_lsb_from_product_format():
    # product format e5m2: LSB = 2**(-14-2) = 2**-16 ; W = 18 holds [-2**17, 2**17-1] LSBs =
    # [-2.0, 2.0 - 2**-16]
    A = np.array([[1.75, 0.25, 1.0]])
    B = np.array([[1.0], [1.0], [-(2.0**-16)]])
    acc = fpsim.KulischAccumulator("float32", width=18)
    got = fpsim.gemm(A, B, acc, product="e5m2", a_format="e5m2", b_format="e5m2")
    assert float(got[0, 0]) == 2.0 - 2.0**-16
    with pytest.raises(fpsim.AccumulatorOverflow):
        fpsim.gemm(A[:, :2], B[:2], acc, product="e5m2", a_format="e5m2", b_format="e5m2")
    # with exact products the LSB is 2**-32 and W = 18 overflows already at 2**-15
    with pytest.raises(fpsim.AccumulatorOverflow):
        fpsim.gemm(A[:, :1], B[:1], acc, a_format="e5m2", b_format="e5m2")


@pytest.mark.parametrize("bias", [511, 100, 40, 0])
def test_kulisch_product_format_with_a_wide_range(bias):
    """width=None must hold every sum, also for a product format whose largest value is near
    2**1023 (e10m0 'fn', emax = 1022 - bias).  112*112 = 12544 rounds to 16384 in it."""
    pf = fpsim.FloatFormat(10, 0, bias=bias, specials="fn")
    got = fpsim.gemm(np.array([[112.0]]), np.array([[112.0]]), fpsim.KulischAccumulator("float32"),
                     product=pf, a_format="e5m2", b_format="e5m2")
    assert float(got[0, 0]) == 16384.0


@settings(max_examples=60, deadline=None)
@given(data=st.data(), W=st.integers(2, 40), seed=st.integers(0, 2**32 - 1))
def test_kulisch_width_random(data, W, seed):
    rng = np.random.default_rng(seed)
    vals = pool("e3m2")   # emin -2, 2 fraction bits: quantum 2**-4; LSB of products 2**-8
    A, B = rng.choice(vals, (3, 6)), rng.choice(vals, (6, 2))
    fa = fpsim.format("e3m2")
    want, over, zero = kulisch_ref(A, B, KulischDesc(fpsim.format("float32"), W), fa, fa)
    if over.any():
        with pytest.raises(fpsim.AccumulatorOverflow):
            fpsim.gemm(A, B, kul(W), a_format=fa, b_format=fa)
        with pytest.warns(RuntimeWarning):
            got = fpsim.gemm(A, B, kul(W, "flag"), a_format=fa, b_format=fa)
    else:
        got = fpsim.gemm(A, B, kul(W), a_format=fa, b_format=fa)
    assert_gemm_equal(np.where(zero, 0.0, got), np.where(zero, 0.0, want),
                      np.zeros_like(zero), (W, A.tolist(), B.tolist()))


# --- batching -----------------------------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(data=st.data(), Bt=st.integers(1, 3), M=st.integers(1, 3), N=st.integers(1, 3),
       K=st.integers(1, 12), layout=st.sampled_from(["33", "32", "23"]),
       mode=st.sampled_from(DETERMINISTIC + ["sr"]), order=st.sampled_from(["sequential", "pairwise"]))
def test_batched_shapes(data, Bt, M, N, K, layout, mode, order):
    A = data.draw(operand_values("float8_e4m3fn", (Bt, M, K) if layout[0] == "3" else (M, K)))
    B = data.draw(operand_values("float8_e5m2", (Bt, K, N) if layout[1] == "3" else (K, N)))
    chunk = data.draw(st.one_of(st.none(), st.integers(1, 5)))
    sr_bits = data.draw(st.integers(1, 12)) if mode == "sr" else None
    acc = fpsim.Accumulator("fp16_169", chunk=chunk, rounding=mode, order=order, sr_bits=sr_bits)
    kw = dict(a_format="float8_e4m3fn", b_format="float8_e5m2", seed=99)
    got = fpsim.gemm(A, B, acc, **kw)
    assert got.shape == (Bt, M, N)
    want, skip = gemm_ref(A, B, AccDesc(fpsim.format("fp16_169"), chunk, mode, order, sr_bits),
                          key=seed_key(np.uint64(99)))
    assert_gemm_equal(got, want, skip, (layout, acc))
    if mode != "sr":  # deterministic: each batch equals its own 2-D gemm
        for t in range(Bt):
            At = A[t] if A.ndim == 3 else A
            Btt = B[t] if B.ndim == 3 else B
            np.testing.assert_array_equal(got[t], fpsim.gemm(At, Btt, acc, **kw))


# --- quantize_operands -------------------------------------------------------------------------
def test_quantize_operands_rounds_rne_first():
    rng = np.random.default_rng(11)
    A = rng.standard_normal((3, 9)) * 4
    B = rng.standard_normal((9, 2))
    fa, fb = fpsim.format("float8_e4m3fn"), fpsim.format("e3m2")
    with pytest.raises(ValueError):
        fpsim.gemm(A, B, a_format=fa, b_format=fb)
    got = fpsim.gemm(A, B, fpsim.Accumulator("fp16_169"), a_format=fa, b_format=fb,
                     quantize_operands=True)
    Aq = np.vectorize(lambda x: round_ref(float(x), fa, "rne"))(A)
    Bq = np.vectorize(lambda x: round_ref(float(x), fb, "rne"))(B)
    want, skip = gemm_ref(Aq, Bq, AccDesc(fpsim.format("fp16_169")))
    assert_gemm_equal(got, want, skip, "quantize_operands")


# --- bad input ----------------------------------------------------------------------------------
E43 = dict(a_format="float8_e4m3fn", b_format="float8_e4m3fn")


@pytest.mark.parametrize("call", [
    lambda: fpsim.gemm(np.ones((2, 3)), np.ones((4, 2)), **E43),                 # K mismatch
    lambda: fpsim.gemm(np.ones((2, 2, 3)), np.ones((3, 3, 2)), **E43),           # batch mismatch
    lambda: fpsim.gemm(np.ones(3), np.ones((3, 2)), **E43),                      # 1-D
    lambda: fpsim.gemm(np.ones((1, 2, 2, 3)), np.ones((3, 2)), **E43),           # 4-D
    lambda: fpsim.gemm(np.ones((2, 3)), np.ones((3, 2)), fpsim.Accumulator("float32", chunk=0), **E43),
    lambda: fpsim.gemm(np.ones((2, 3)), np.ones((3, 2)), fpsim.Accumulator("float32", chunk=-2), **E43),
    lambda: fpsim.Accumulator("float32", chunk=1.5),
    lambda: fpsim.Accumulator("float32", order="tree"),
    lambda: fpsim.Accumulator("float32", rounding="nearest"),
    lambda: fpsim.Accumulator("float32", rounding="rne", sr_bits=4),
    lambda: fpsim.Accumulator("not-a-format"),
    lambda: fpsim.KulischAccumulator("float32", rounding="sr"),
    lambda: fpsim.KulischAccumulator("float32", overflow="wrap"),
    lambda: fpsim.KulischAccumulator("float32", width=0),
    lambda: fpsim.gemm(np.full((2, 3), 0.1), np.ones((3, 2)), **E43),           # not representable
    lambda: fpsim.gemm(np.ones((2, 3)), np.full((3, 2), 1e6), **E43),          # beyond max
    lambda: fpsim.gemm(np.ones((2, 3)), np.ones((3, 2))),                       # float64, no format
    lambda: fpsim.gemm(np.ones((2, 3)), np.ones((3, 2)), a_format="float8_e4m3fn"),
    lambda: fpsim.gemm(np.ones((2, 3), np.float32), np.ones((3, 2)), b_format="e8m30"),  # 24+31 > 53
    lambda: fpsim.gemm(np.ones((2, 3)), np.ones((3, 2)), seed=-1, **E43),
])
def test_bad_input_raises_value_error(call):
    with pytest.raises(ValueError):
        call()


def test_float64_accumulator_format_rejected():
    with pytest.raises(ValueError):
        fpsim.gemm(np.ones((2, 3)), np.ones((3, 2)), fpsim.Accumulator("float64"), **E43)
    with pytest.raises(ValueError):
        fpsim.gemm(np.ones((2, 3)), np.ones((3, 2)), fpsim.KulischAccumulator("float64"), **E43)


# K = 0 is kept out of the hypothesis tests above (it is checked here, for every kind of
# accumulator, plain and batched), so that one failure there does not mask the others.
def test_empty_reduction_gives_positive_zero():
    for acc in [fpsim.Accumulator("float16"), fpsim.Accumulator("float16", order="pairwise"),
                fpsim.Accumulator("float16", chunk=3, rounding="rdn"),
                fpsim.KulischAccumulator("float16")]:
        for a_shape, b_shape, c_shape in [((2, 0), (0, 3), (2, 3)), ((4, 2, 0), (0, 3), (4, 2, 3)),
                                          ((2, 0), (4, 0, 3), (4, 2, 3))]:
            got = fpsim.gemm(np.ones(a_shape), np.ones(b_shape), acc, **E43)
            assert got.shape == c_shape and np.all(got == 0) and not np.signbit(got).any()


def test_kulisch_on_block_operands_spanning_many_binades():
    """The exact sum sizes its digits from the operands present (unbounded width): block formats,
    whose containers span 2**-140..2**135, with tiles 40 binades apart, zeros and one all-zero
    row; every result equals the Fraction dot product rounded once."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((6, 96)) * np.repeat(2.0 ** np.array([-60, -20, 20]), 32)
    x[2] = 0.0
    x[3, ::3] = 0.0
    w = rng.standard_normal((96, 5)) * 2.0 ** 30
    xa, wa = fpsim.quantize(x, "bm8_fwd"), fpsim.quantize(w, "bm8_bwd")
    for accf in ["float32", "fp16_169"]:
        got = fpsim.gemm(xa, wa, fpsim.KulischAccumulator(accf), a_format="bm8_fwd",
                         b_format="bm8_bwd")
        np.testing.assert_array_equal(got, exact_rounded_dot(xa, wa, fpsim.format(accf), "rne"))
    assert not got[2].any()


def test_out_format_wider_than_float32_after_the_float32_fast_path():
    """The e5m2 x e5m2 -> 1-6-9 path keeps registers in float32; an ``out`` format with 24
    fraction bits must still get its own value (4 - 2**-23 is no float32), found by hypothesis."""
    out = fpsim.FloatFormat(1, 24, bias=0, subnormals=False, specials="none")
    a = np.array([[112.0]]).astype(ml_dtypes.float8_e5m2)
    got = fpsim.gemm(a, a, fpsim.Accumulator("fp16_169"), out_format=out)
    assert got.dtype == np.float64 and got[0, 0] == 4 - 2.0**-23 == out.max
