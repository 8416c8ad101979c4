"""The round-to-nearest-even fast path of the GEMM kernel (32- or 64-bit lanes, double rounding
proved harmless in kernels.gemm.lean_lanes) against the exact path and the Fraction reference.

The adversarial case of that proof is a small register plus a large product: the register's p bits
sit below the product's, and the lane must hold both (2p + 2 bits), in every order."""

import numpy as np
import pytest

import fpsim
from fpsim import accum
from fpsim.quantize import float_args
from fpsim.kernels import gemm as kg
from reference_arith import AccDesc, gemm_ref

ACC = fpsim.format("fp16_169")
E5M2 = fpsim.format("e5m2")


def run(kind, A, B, chunk=0, acc=ACC, order="sequential"):
    """The LEAN kernel in float32 lanes (whole blocks of 4 rows; an adder tree in pairs of
    products for ``order="pairwise"``) or the EXACT kernel (float64, one row at a time) on the
    accumulator ``acc``; rows past the last whole block of 4 are dropped for both."""
    rows = A.shape[0] - A.shape[0] % kg.ROWS
    if kind == kg.LEAN:
        c = np.empty((1, rows, B.shape[1]), np.float32)
        kg.gemm_lean_blocks(A[None, :rows].astype(np.float32), B[None].astype(np.float32), c,
                            chunk, accum.lean_constants(acc, False), kg.ORDER_TAG[order])
    else:
        fa = float_args(acc) + (0, 0)
        c = np.empty((1, rows, B.shape[1]))
        kg.gemm_float(A[None, :rows].astype(np.float64), B[None].astype(np.float64), c,
                      kg.KIND_TAG[kind], chunk, order == "pairwise", fa,
                      accum.product_args(None), np.uint64(0), (0, B.shape[1], rows * B.shape[1]))
    return c[0].astype(np.float64)


def e5m2_products():
    v = E5M2.values()
    p = np.unique(np.multiply.outer(v, v).reshape(-1))
    return p[np.isfinite(p)]


def test_lean_path_is_exact_for_every_register_value_and_product():
    assert accum.lean_lanes(fpsim.Accumulator(ACC), E5M2, E5M2, None) == 32
    regs = ACC.values()                           # every finite 1-6-9 value
    regs = np.concatenate([regs, regs[:(-regs.size) % 4]])    # whole blocks of 4 rows
    prods = e5m2_products()
    A = np.stack([regs, np.ones_like(regs)], axis=1)
    B = np.stack([np.ones_like(prods), prods])   # column j: reg*1 then + product j
    for order in ("sequential", "pairwise"):     # a tree adds the two in one pair node
        lean, exact = run(kg.LEAN, A, B, order=order), run(kg.EXACT, A, B, order=order)
        assert lean.shape == (regs.size, prods.size)
        same = (lean == exact) | (np.isnan(lean) & np.isnan(exact))
        assert same.all(), (order, A[np.nonzero(~same)[0][0]], B[:, np.nonzero(~same)[1][0]])
        assert np.array_equal(np.signbit(lean), np.signbit(exact))


def test_products_below_the_register_grid_case_ii_of_the_proof():
    """float16 register, e5m2 products (quantum 2**-32, below float16's grid 2**-24): every
    register value below 2**-11 (the subnormals and the first normal binades, where the grid
    decides) plus every 16th larger one, against every e5m2 product below 2**-6 and every 8th
    larger one.  Sums land on and next to the midpoints of the subnormal grid; a negative sum
    that rounds to zero must give -0."""
    f16 = fpsim.format("float16")
    assert accum.lean_lanes(fpsim.Accumulator(f16), E5M2, E5M2, None) == 32
    vals = f16.values()
    small = np.abs(vals) < 2.0**-11
    regs = np.concatenate([vals[small], vals[~small][::16]])
    regs = np.concatenate([regs, regs[:(-regs.size) % 4]])
    p = e5m2_products()
    tiny = np.abs(p) < 2.0**-6
    prods = np.concatenate([p[tiny], p[~tiny][::8]])
    A = np.stack([regs, np.ones_like(regs)], axis=1)
    B = np.stack([np.ones_like(prods), prods])
    for order in ("sequential", "pairwise"):
        lean = run(kg.LEAN, A, B, acc=f16, order=order)
        exact = run(kg.EXACT, A, B, acc=f16, order=order)
        same = (lean == exact) | (np.isnan(lean) & np.isnan(exact))
        assert same.all(), (order, A[np.nonzero(~same)[0][0]], B[:, np.nonzero(~same)[1][0]])
        assert np.array_equal(np.signbit(lean), np.signbit(exact))
    # the adversarial cases occurred: sums exactly at a subnormal midpoint (ties), sums within
    # 2**-5 grid steps of one (the closest a 6-bit product gets), negative sums rounding to -0
    x = regs[:, None] + prods[None, :]             # exact in float64
    g = 2.0**-24
    off = np.abs(x / g - np.floor(x / g) - 0.5)
    assert (off == 0).sum() > 1000 and ((off > 0) & (off <= 2.0**-5)).sum() > 1000
    assert ((lean == 0) & np.signbit(lean) & (x < 0)).sum() > 50
    # products of float16 operands have 22 bits: more than the register's 11, no lean path
    assert accum.lean_lanes(fpsim.Accumulator(f16), f16, f16, None) is None


@pytest.mark.parametrize("seed", [0, 1])
def test_lean_path_is_exact_for_chunk_sums(seed):
    """total + chunk sum: both 1-6-9 values (random pairs plus the largest and smallest)."""
    rng = np.random.default_rng(seed)
    vals = ACC.values()
    regs = np.concatenate([vals[:300], vals[-300:], rng.choice(vals, 1400)])
    others = np.concatenate([vals[:200], vals[-200:], rng.choice(vals, 1600)])
    A = np.stack([regs, np.ones_like(regs)], axis=1)
    B = np.stack([np.ones_like(others), others])
    # chunk=1: each product is its own chunk, so every step is a register + register addition
    lean, exact = run(kg.LEAN, A, B, chunk=1), run(kg.EXACT, A, B, chunk=1)
    same = (lean == exact) | (np.isnan(lean) & np.isnan(exact))
    assert same.all()


def tiny_e5m2(rng, shape):
    """e5m2 values 2**-16 .. 2**-7 (subnormals included): their products, 2**-32 .. 2**-13, lie
    around and below float16's subnormal grid 2**-24, and so do their sums."""
    v = E5M2.values()
    v = v[(np.abs(v) >= 2.0**-16) & (np.abs(v) <= 2.0**-7)]
    return rng.choice(v, shape)


@pytest.mark.parametrize("name, lanes, data", [("fp16_169", 32, "outlier"),
                                               ("float16", 32, "tiny"), ("e5m14", 64, "outlier")])
def test_adder_tree_kernel_every_run_length(name, lanes, data):
    """kernels.gemm.gemm_rows_tree (product pairs, the carry merges, an odd run's last leaf, the
    leftover nodes smallest first, a lone product, chunk totals) against the Fraction reference
    for every K up to 33 and chunks 1, 3, 8, 16: outlier e5m2 data into 1-6-9 and e5m14 (64-bit
    lanes), tiny e5m2 data into float16 (pairs of products below its grid, case (ii) of
    lean_lanes' proof), sums past the range, rows past a whole block of 4, columns past a tile
    of 256."""
    f = fpsim.FloatFormat(5, 14) if name == "e5m14" else fpsim.format(name)
    rng = np.random.default_rng(lanes)
    for kk in range(34):
        gen = tiny_e5m2 if data == "tiny" else outlier_e5m2
        A = gen(rng, (5, kk))
        B = gen(rng, (kk, 258 if kk in (7, 33) else 3))
        B[:, -1] = -B[:, 0]                        # a column that cancels another
        if kk in (9, 33):                          # sums past the range: the overflow test
            A[0], B[:, 1] = 57344.0, 57344.0
            assert accum.register_bound(A[None], B[None], f, None) is None
        for chunk in (None, 1, 3, 8, 16):
            acc = fpsim.Accumulator(f, chunk=chunk, order="pairwise")
            assert accum.lean_lanes(acc, E5M2, E5M2, None) == lanes
            got = fpsim.gemm(A, B, acc=acc, a_format=E5M2, b_format=E5M2)
            # past a tile: the reference for the columns at both ends of each tile only (its
            # Fraction sums took most of this test's time); the kernel ran all 258
            cols = np.r_[0:3, 253:258] if B.shape[1] > 256 else np.arange(B.shape[1])
            got = got[:, cols]
            want, skip = gemm_ref(A, B[:, cols], AccDesc(f, chunk, "rne", "pairwise"))
            ok = (got == want) | (np.isnan(got) & np.isnan(want)) | skip
            assert ok.all() and not skip.all(), (kk, chunk, got[~ok], want[~ok])
            assert np.array_equal(np.signbit(got[~skip]), np.signbit(want[~skip]))


def test_small_register_plus_large_product_repro():
    """The issue's repro: 2**-6 + 2**-14 in the register, then + 2**10 (e6m15: 1024.03125)."""
    A = np.array([[2.0**-3, 2.0**-7, 2.0**5]])
    acc = fpsim.Accumulator(fpsim.FloatFormat(6, 15))
    got = fpsim.gemm(A, A.T.copy(), acc=acc, a_format=E5M2, b_format=E5M2)
    assert got[0, 0] == 1024.03125


def outlier_e5m2(rng, shape):
    """e5m2 values over 2**-12 .. 2**9, half of them tiny, a few huge: small registers meet
    large products in every order."""
    exps = np.where(rng.random(shape) < 0.5, rng.integers(-12, -4, shape),
                    rng.integers(-2, 10, shape))
    sig = 1 + rng.integers(0, 4, shape) / 4
    return np.where(rng.random(shape) < 0.5, -1, 1) * sig * 2.0 ** exps


ORDERS = [(None, "sequential"), (None, "pairwise"), (3, "sequential"), (4, "pairwise")]


@pytest.mark.parametrize("exp_bits", [5, 6, 7, 8])
def test_every_accumulator_width_matches_the_fraction_reference(exp_bits):
    """Accumulator significands 9..23 bits (man_bits 8..22) and exponent widths 5..8, e5m2
    outlier data, every order; whatever lanes the kernel picks, the result is the reference's."""
    rng = np.random.default_rng(exp_bits)
    A = outlier_e5m2(rng, (4, 12))
    B = outlier_e5m2(rng, (12, 5))
    A[0, :3] = [2.0**-3, 2.0**-7, 2.0**5]
    B[:3, 0] = [2.0**-3, 2.0**-7, 2.0**5]
    lanes_seen = set()
    for man in range(8, 23):
        f = fpsim.FloatFormat(exp_bits, man)
        for chunk, order in ORDERS:
            acc = fpsim.Accumulator(f, chunk=chunk, order=order)
            lanes_seen.add(accum.lean_lanes(acc, E5M2, E5M2, None))
            got = fpsim.gemm(A, B, acc=acc, a_format=E5M2, b_format=E5M2)
            want, skip = gemm_ref(A, B, AccDesc(f, chunk, "rne", order))
            ok = (got == want) | (np.isnan(got) & np.isnan(want)) | skip
            assert ok.all(), (f, chunk, order, got[~ok], want[~ok])
    # both lane widths were exercised (e5 registers below e5m2 products' grid included); e8 has
    # no room above its top binade in float32 lanes
    assert lanes_seen == {5: {32, 64}, 6: {32, 64}, 7: {32, 64}, 8: {64}}[exp_bits]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_16_bit_operands_into_float32_take_64_bit_lanes(seed):
    """bfloat16 and float16 products (16 and 22 bits) into a float32 register: 64-bit lanes
    (2p + 2 = 50 <= 53), products far below float32's subnormal grid, against the Fraction
    reference; sums near float32's smallest values, cancellation and overflow included."""
    rng = np.random.default_rng(seed)
    f32 = fpsim.format("float32")
    for name, lo, hi in (("bfloat16", -75, 64), ("float16", -24, 15)):
        fmt = fpsim.format(name)
        assert accum.lean_lanes(fpsim.Accumulator(f32), fmt, fmt, None) == 64
        exps = rng.integers(lo, hi, (6, 9))
        A = fpsim.quantize(np.where(rng.random((6, 9)) < 0.5, -1, 1) * (1 + rng.random((6, 9)))
                           * 2.0 ** exps, fmt)
        B = fpsim.quantize(rng.standard_normal((9, 7)) * 2.0 ** rng.integers(lo, hi, (9, 7)), fmt)
        B[:, 0] = -B[:, 1]                             # a column that cancels against another
        A[5] = A[4]
        if name == "bfloat16":
            A[0, :] = 2.0**-75                         # products 2**-150 and below: under the grid
            A[1, :] = 2.0**60                          # products that overflow float32
        for chunk, order in ORDERS:
            acc = fpsim.Accumulator(f32, chunk=chunk, order=order)
            got = fpsim.gemm(A, B, acc=acc, a_format=fmt, b_format=fmt)
            want, skip = gemm_ref(A, B, AccDesc(f32, chunk, "rne", order))
            ok = (got == want) | (np.isnan(got) & np.isnan(want)) | skip
            assert ok.all(), (name, chunk, order, got[~ok], want[~ok])
            assert np.array_equal(np.signbit(got[~skip]), np.signbit(want[~skip]))


@pytest.mark.parametrize("man", range(8, 23))
def test_lane_bound_is_2p_plus_2_in_every_order(man):
    """The condition itself: 32-bit lanes exactly while 2p + 2 <= 24."""
    f = fpsim.FloatFormat(6, man)
    for chunk, order in ORDERS:
        lanes = accum.lean_lanes(fpsim.Accumulator(f, chunk=chunk, order=order), E5M2, E5M2, None)
        assert lanes == (32 if 2 * (man + 1) + 2 <= 24 else 64)


def test_native_register_is_the_lanes_fma():
    """A float32 register is float32's own fused multiply-add (kernels.gemm.native_lanes):
    against the Fraction reference with products far below the subnormal grid
    (rounding to -0 included), products beyond the range, exact cancellation, ties of the
    register and float32 x float32 products that float32 cannot hold."""
    rng = np.random.default_rng(0)
    f = fpsim.format("float32")
    for name in ("bfloat16", "float16", "e5m2", "float32"):
        fmt = fpsim.format(name)
        assert accum.native_lanes(fpsim.Accumulator(f), fmt, fmt, None) == 32
        A = fpsim.quantize(rng.standard_normal((9, 11)) * 2.0 ** rng.integers(-8, 8, (9, 11)),
                           fmt)
        B = fpsim.quantize(rng.standard_normal((11, 6)) * 2.0 ** rng.integers(-8, 8, (11, 6)),
                           fmt)
        B[:, 0] = -B[:, 1]
        A[0] = -fmt.min_subnormal                     # tiny negative products: -0 in float32
        A[1, :] = fmt.max                             # overflow where the format allows
        A[2, :2] = [1.0, 2.0 ** -12]                  # 1 + 2**-24: a tie of float32
        B[:2, 2] = [1.0, 2.0 ** -12]
        for chunk in (None, 4):
            acc = fpsim.Accumulator(f, chunk=chunk)
            got = fpsim.gemm(A, B, acc=acc, a_format=fmt, b_format=fmt)
            want, skip = gemm_ref(A, B, AccDesc(f, chunk, "rne", "sequential"))
            ok = (got == want) | (np.isnan(got) & np.isnan(want)) | skip
            assert ok.all(), (name, chunk, got[~ok], want[~ok])
            assert np.array_equal(np.signbit(got[~skip]), np.signbit(want[~skip]))
    # not native: another rounding, a product format, a register without subnormals
    e5m2 = fpsim.format("e5m2")
    assert accum.native_lanes(fpsim.Accumulator(f, rounding="rtz"), e5m2, e5m2, None) is None
    assert accum.native_lanes(fpsim.Accumulator(f), e5m2, e5m2, "bfloat16") is None
    assert accum.native_lanes(fpsim.Accumulator(fpsim.FloatFormat(8, 23, subnormals=False)),
                              e5m2, e5m2, None) is None


def prefix_registers(A, B, f, chunk):
    """Every register value of the sequential (chunked) accumulation, from the Fraction
    reference: the results for each prefix of K (chunk registers of a partial chunk included)."""
    vals = []
    for k in range(1, A.shape[1] + 1):
        want, _ = gemm_ref(A[:, :k], B[:k], AccDesc(f, chunk, "rne", "sequential"))
        vals.append(want)
        if chunk:
            k0 = (k - 1) // chunk * chunk
            part, _ = gemm_ref(A[:, k0:k], B[k0:k], AccDesc(f, None, "rne", "sequential"))
            vals.append(part)
    return np.abs(np.array(vals))


@pytest.mark.parametrize("chunk", [None, 3])
def test_register_bound_bounds_every_register(chunk):
    """accum.register_bound against every register value of accumulations built to round up
    (all products positive, sums just above ties), in a 4-bit register where rounding grows
    fastest."""
    f = fpsim.FloatFormat(5, 3)
    e2m1 = fpsim.format("e2m1")
    rng = np.random.default_rng(2)
    A = rng.choice([1.0, 1.5, 2.0, 3.0], (3, 10))
    B = rng.choice([1.0, 1.5, 2.0, 3.0], (10, 4))
    bound = accum.register_bound(A[None], B[None], f, chunk)
    assert bound is not None
    regs = prefix_registers(A, B, f, chunk)
    assert regs.max() <= bound
    # rounding did carry results above the exact sums
    final, _ = gemm_ref(A, B, AccDesc(f, chunk, "rne", "sequential"))
    assert (final > A @ B).any()
    # and the bound is not vacuous: within (1 + 1/16)**14 < 2.4 of the data's sum of magnitudes
    assert bound < 2.4 * A.shape[1] * A.max() * B.max()
    assert accum.register_bound(A[None] * 2.0**12, B[None], f, chunk) is None   # would overflow
    assert accum.register_bound(np.array([[[np.nan]]]), B[None, :1], f, chunk) is None
    assert accum.register_bound(np.zeros((1, 2, 0)), np.zeros((1, 0, 3)), f, chunk) == 0.0
    assert accum.lean_lanes(fpsim.Accumulator(f), e2m1, e2m1, None, bound) == 32


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_row_magnitudes_against_exact_sums(dtype):
    """kernels.gemm.row_magnitudes (reassociated sums, integer maxima over the bits) against
    exact rational sums: within its float64 error bound (K + 1) 2**-53 for batches of either
    operand, signed values, -0, subnormals and one huge term among tiny ones; NaN for an Inf
    or NaN anywhere in either operand, whichever batch it is in."""
    from fractions import Fraction
    rng = np.random.default_rng(7)
    for ba, bb, m, kk, n in [(1, 1, 5, 37, 9), (3, 1, 4, 64, 17), (1, 2, 6, 33, 8),
                             (2, 2, 1, 1, 1), (1, 1, 3, 0, 2)]:
        A = (rng.standard_normal((ba, m, kk)) * 2.0 ** rng.integers(-30, 30, (ba, m, kk)))
        B = (rng.standard_normal((bb, kk, n)) * 2.0 ** rng.integers(-30, 30, (bb, kk, n)))
        if kk > 3:
            A[0, 0, 1], B[-1, 2, -1] = 2.0 ** 100, -(2.0 ** -140)   # the max in the last batch
            A[-1, -1, 3], B[0, 3, 0] = -0.0, np.finfo(np.float32).smallest_subnormal
        A, B = A.astype(dtype), B.astype(dtype)
        bmax = [max([abs(Fraction(float(v))) for v in B[:, k, :].ravel()]) for k in range(kk)]
        want = max(sum(abs(Fraction(float(A[b, i, k]))) * bmax[k] for k in range(kk))
                   for b in range(ba) for i in range(m))
        got = kg.row_magnitudes(A, B)
        assert abs(Fraction(got) - want) <= want * Fraction(kk + 1, 2**53), (ba, bb, m, kk, n)
        for x, val in [(A, np.inf), (A, np.nan), (B, -np.inf), (B, np.nan)]:
            if x.size:
                x2 = x.copy()
                x2.reshape(-1)[-1] = val
                got = kg.row_magnitudes(x2, B) if x is A else kg.row_magnitudes(A, x2)
                assert np.isnan(got), (ba, bb, m, kk, n, val)


def test_bfloat16_register_in_float32_lanes_up_to_its_bound():
    """A bfloat16 register (8 exponent bits: unbounded float32 lanes have no room above its top
    binade) takes float32 lanes while the data stays below 2**112 and float64 lanes above.  The
    operands (4 exponent bits, bias -45: values 2**46 .. 2**60) put products at 2**92 .. 2**120,
    on both sides of that limit; against the Fraction reference, with cancellation; e5m2
    operands, whose sums reach bfloat16's subnormals, in float32 lanes too."""
    bf16 = fpsim.format("bfloat16")
    acc = fpsim.Accumulator(bf16)
    rng = np.random.default_rng(1)
    sig = lambda shape: rng.choice([1.0, 1.25, 1.5, 1.75, -1.0, -1.25, -1.5, -1.75], shape)
    big, e5m2 = fpsim.FloatFormat(4, 2, bias=-45), fpsim.format("e5m2")
    assert accum.lean_lanes(acc, big, big, None) == 64           # unbounded: wide lanes
    cases = [(big, 2.0 ** rng.integers(46, 51, (5, 6)), 2.0 ** rng.integers(46, 51, (6, 7)), 32),
             (big, 2.0 ** rng.integers(52, 58, (5, 6)), 2.0 ** rng.integers(52, 58, (6, 7)), 64),
             (e5m2, 2.0 ** rng.integers(-16, 15, (5, 6)), 2.0 ** rng.integers(-16, 15, (6, 7)),
              32)]
    for fmt, a_scale, b_scale, lanes in cases:
        A = fpsim.quantize(sig((5, 6)) * a_scale, fmt)
        B = fpsim.quantize(sig((6, 7)) * b_scale, fmt)
        B[:, 0] = -B[:, 1]
        bound = accum.register_bound(A[None], B[None], bf16, None)
        assert accum.lean_lanes(acc, fmt, fmt, None, bound) == lanes
        got = fpsim.gemm(A, B, acc=acc, a_format=fmt, b_format=fmt)
        want, skip = gemm_ref(A, B, AccDesc(bf16, None, "rne", "sequential"))
        assert not skip.any() and np.array_equal(got, want)
        assert np.array_equal(np.signbit(got), np.signbit(want))


@pytest.mark.parametrize("chunk", [None, 2])
def test_bounded_float16_register_keeps_negative_zeros(chunk):
    """float16 register, e5m2 products below its grid: negative sums that round to zero are -0
    (the sign step of bounded_round), positive ones +0, exact cancellation +0."""
    f16, e5m2 = fpsim.format("float16"), fpsim.format("e5m2")
    tiny = 2.0 ** -14 * np.array([1.0, 1.25, 1.5, 1.75])        # products 2**-28 ..: below 2**-25
    A = np.array([[tiny[0], -tiny[1]], [-tiny[2], -tiny[3]], [tiny[1], tiny[2]],
                  [1.0, -1.0], [2.0**-12, 2.0**-13]])
    B = np.array([[tiny[3], 1.0, 2.0**-12], [tiny[0], 1.0, 2.0**-12]])
    bound = accum.register_bound(A[None], B[None], f16, chunk)
    assert accum.lean_lanes(fpsim.Accumulator(f16), e5m2, e5m2, None, bound) == 32
    got = fpsim.gemm(A, B, acc=fpsim.Accumulator(f16, chunk=chunk), a_format=e5m2,
                     b_format=e5m2)
    want, skip = gemm_ref(A, B, AccDesc(f16, chunk, "rne", "sequential"))
    assert not skip.any() and np.array_equal(got, want)
    assert np.array_equal(np.signbit(got), np.signbit(want))
    assert got[1, 0] == 0 and np.signbit(got[1, 0]) == (chunk is None)  # -0 + chunk total +0
    assert not np.signbit(got[3, 1])


def test_bounded_register_without_negative_zero():
    """A "fnuz" register has no -0: a negative sum that rounds to zero is +0 (hypothesis found
    the bounded kernel's sign step giving -0 here)."""
    f = fpsim.FloatFormat(1, 5, bias=-13, specials="fnuz")
    e5m2 = fpsim.format("e5m2")
    A = np.array([[112.0, 0.01171875]])
    B = np.array([[112.0, 0.01171875], [4.57763671875e-05, -0.625]])
    got = fpsim.gemm(A, B, acc=fpsim.Accumulator(f), a_format=e5m2, b_format=e5m2)
    want, _ = gemm_ref(A, B, AccDesc(f, None, "rne", "sequential"))
    assert np.array_equal(got, want) and got[0, 1] == 0 and not np.signbit(got[0, 1])


def test_large_products_beyond_the_register_saturate_not_nan():
    """Unbounded float32 lanes (overflow possible): a product of 2**115 into a float16 register
    made the rounding constant's exponent overflow (NaN before the clamp of lane_nearest); the
    register must overflow to Inf, against the Fraction reference, in both orders."""
    f = fpsim.FloatFormat(6, 2, bias=1)                  # values 2**0 .. 2**61, products < 2**124
    f16 = fpsim.format("float16")
    assert accum.lean_lanes(fpsim.Accumulator(f16), f, f, None) == 32
    A = np.repeat(np.array([[2.0**57, 1.0], [2.0**7, -2.0**3], [1.0, 1.0], [2.0**60, 2.0**61]]),
                  2, axis=0)
    B = np.array([[2.0**58, 2.0**8, -1.0], [1.0, 2.0**12, 2.0**61]])
    for order in ("sequential", "pairwise"):
        acc = fpsim.Accumulator(f16, order=order)
        got = fpsim.gemm(A, B, acc=acc, a_format=f, b_format=f)
        want, _ = gemm_ref(A, B, AccDesc(f16, None, "rne", order))
        assert np.array_equal(got, want, equal_nan=True), (order, got, want)
        assert np.isinf(got[0, 0]) and np.isnan(got).sum() == np.isnan(want).sum()


@pytest.mark.parametrize("chunk", [None, 3])
def test_exact_stochastic_rounding_in_float64_lanes(chunk):
    """Exact stochastic rounding of a float16 register with e5m2 products (kernels.gemm.sr_lanes:
    the exact sums fit float64) against the Fraction reference on the same random words:
    batched with 5 rows (the padded block must not shift the words of the next batch), sums in
    float16's subnormal range, negative sums that may round to -0, exact cancellation."""
    from fpsim.kernels.rounding import seed_key
    f16, e5m2 = fpsim.format("float16"), fpsim.format("e5m2")
    rng = np.random.default_rng(3)
    A = fpsim.quantize(rng.standard_normal((2, 5, 7)) * 2.0 ** rng.integers(-14, 3, (2, 5, 7)),
                       e5m2)
    B = fpsim.quantize(rng.standard_normal((7, 6)) * 2.0 ** rng.integers(-14, 3, (7, 6)), e5m2)
    A[0, 0] = 2.0**-14                            # products 2**-28..: below float16's grid
    B[:, 1] = -B[:, 0]
    acc = fpsim.Accumulator(f16, chunk=chunk, rounding="sr")
    bound = accum.register_bound(A, B[None], f16, chunk, stochastic=True)
    assert kg.sr_lanes((f16.man_bits, f16.emin, f16.emax), -32, True, True, bound)
    got = fpsim.gemm(A, B, acc=acc, a_format=e5m2, b_format=e5m2, seed=5)
    want, skip = gemm_ref(A, B, AccDesc(f16, chunk, "sr", "sequential"),
                          key=seed_key(np.uint64(5)))
    assert not skip.any()
    assert np.array_equal(got, want) and np.array_equal(np.signbit(got), np.signbit(want))
    assert (np.abs(got[got != 0]) < f16.min_normal).any()
    # a different seed changes results: the words are used
    assert not np.array_equal(got, fpsim.gemm(A, B, acc=acc, a_format=e5m2, b_format=e5m2,
                                              seed=6))


@pytest.mark.parametrize("chunk", [None, 2])
def test_round_to_odd_register_at_the_double_rounding_trap(chunk):
    """A 31-bit register (e8m30) adding float32 x float32 products (48 bits): kernels.gemm.
    odd_lanes.  1 + (2**-31 + 2**-54 + 2**-55 + 2**-78) is a tie of the register plus a tail
    below float64's precision: float64 alone rounds it to the tie and then to even (1), round to
    odd keeps the tail (1 + 2**-30).  Against the Fraction reference, signs mirrored, with
    16-bit products (bfloat16) in a float16 register too."""
    f = fpsim.FloatFormat(8, 30)
    f32 = fpsim.format("float32")
    assert accum.lean_lanes(fpsim.Accumulator(f), f32, f32, None) is None
    assert kg.odd_lanes((30, f.emin, f.emax), True, True, True, True)
    a = np.float32(1 + 2.0**-23)
    b = np.float32(2.0**-31 * (1 + 2.0**-24))
    A = np.array([[1.0, a], [-1.0, -a], [1.0, -a], [2.0**-100, a]], dtype=np.float32)
    B = np.array([[1.0, 1.0, 2.0**-120], [b, -b, b]], dtype=np.float32)
    got = fpsim.gemm(A, B, acc=fpsim.Accumulator(f, chunk=chunk))
    want, skip = gemm_ref(A.astype(np.float64), B.astype(np.float64),
                          AccDesc(f, chunk, "rne", "sequential"))
    assert not skip.any() and np.array_equal(got, want)
    assert np.array_equal(np.signbit(got), np.signbit(want))
    assert got[0, 0] == 1 + 2.0**-30 and got[1, 0] == -(1 + 2.0**-30)
    rng = np.random.default_rng(4)
    bf = fpsim.format("bfloat16")
    A = fpsim.quantize(rng.standard_normal((5, 9)) * 2.0 ** rng.integers(-20, 8, (5, 9)), bf)
    B = fpsim.quantize(rng.standard_normal((9, 4)) * 2.0 ** rng.integers(-20, 8, (9, 4)), bf)
    f16 = fpsim.format("float16")
    got = fpsim.gemm(A, B, acc=fpsim.Accumulator(f16, chunk=chunk), a_format=bf, b_format=bf)
    want, skip = gemm_ref(A, B, AccDesc(f16, chunk, "rne", "sequential"))
    assert not skip.any() and np.array_equal(got, want, equal_nan=True)


def test_bounded_adder_tree_keeps_negative_zero_nodes():
    """An adder tree adds -0 products into -0 nodes (the bounded kernel's sign step is on for
    trees even where products lie on the grid), against the Fraction reference."""
    e5m2, f = fpsim.format("e5m2"), fpsim.format("fp16_169")
    A = np.array([[-1.0, -2.0, 1.0, -1.0], [-1.0, -1.0, -1.0, -1.0], [0.5, 0.25, -0.5, -0.25]])
    B = np.array([[0.0, 1.0], [0.0, 2.0], [0.0, 1.0], [0.0, -4.0]])
    for chunk in (None, 2):
        acc = fpsim.Accumulator(f, order="pairwise", chunk=chunk)
        assert accum.register_bound(A[None], B[None], f, chunk) is not None
        got = fpsim.gemm(A, B, acc=acc, a_format=e5m2, b_format=e5m2)
        want, skip = gemm_ref(A, B, AccDesc(f, chunk, "rne", "pairwise"))
        assert np.array_equal(got, want) and np.array_equal(np.signbit(got), np.signbit(want))
        # four -0 products: -0 from the tree; with chunks the total (+0) adds -0: +0
        assert got[1, 0] == 0 and np.signbit(got[1, 0]) == (chunk is None)


def test_review_regressions():
    """Found by review: (1) an adder tree adds two products below the register's grid, whose
    float64 sum is a tie of float32's subnormal grid (bfloat16 x bfloat16 into float32); (2) a
    saturating float32 register is not float32's FMA; (3) register_bound's power overflowing a
    float; (4) a 1100-bit Kulisch register."""
    bf, f32 = fpsim.format("bfloat16"), fpsim.format("float32")
    A = np.array([[2.0**-75, 2.0**-126], [-2.0**-75, -2.0**-126]])
    B = np.array([[2.0**-75], [2.0**-126]])
    for chunk in (None, 2):
        acc = fpsim.Accumulator(f32, order="pairwise", chunk=chunk)
        got = fpsim.gemm(A, B, acc=acc, a_format=bf, b_format=bf)
        want, _ = gemm_ref(A, B, AccDesc(f32, chunk, "rne", "pairwise"))
        assert np.array_equal(got, want) and got[0, 0] == 2.0**-149 and got[1, 0] == -2.0**-149
    sat = fpsim.FloatFormat(8, 23, saturate=True)
    assert accum.native_lanes(fpsim.Accumulator(sat), f32, f32, None) is None
    A = np.array([[1.5 * 2.0**127, 1.5 * 2.0**127, 1.0, 1.0]], np.float32)
    got = fpsim.gemm(A, np.ones((4, 1), np.float32), acc=fpsim.Accumulator(sat))
    assert got[0, 0] == sat.max
    x = np.full((1, 7000), 2.0**-10, np.float32)
    want, _ = gemm_ref(x[:, :40], np.ones((40, 1)), AccDesc(fpsim.format("e5m2"), None, "rne",
                                                            "sequential"))
    assert accum.register_bound(x[None], np.ones((1, 7000, 1)), fpsim.format("e5m2"), None) \
        is None
    assert fpsim.sum(x[:, :40], acc=fpsim.Accumulator("e5m2")) == want[0, 0]
    fpsim.sum(x, acc=fpsim.Accumulator("e5m2"))               # no OverflowError
    k = fpsim.gemm(np.ones((2, 3), np.float32), np.ones((3, 2), np.float32),
                   acc=fpsim.KulischAccumulator("float32", width=1100))
    assert (k == 3).all()
    # (5) subnormal roundings add up to half a quantum each, beyond the relative (1 + u): 1100
    # products of 9 * 2**-28 (below float16's 2**-24) carry the register to 1100 quanta
    f16 = fpsim.format("float16")
    a = np.full((1, 1100), 1.5 * 2.0**-13)
    reg, _ = gemm_ref(a, a.T, AccDesc(f16, None, "rne", "sequential"))
    assert reg[0, 0] == 1100 * 2.0**-24
    assert accum.register_bound(a[None], a.T[None], f16, None) >= reg[0, 0]
