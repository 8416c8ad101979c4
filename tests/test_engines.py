"""Matrix engines (issue 13): the fused dot-add kernel against the exact-rational reference
(tests/reference_fused.py), the published answers of Fasi et al.'s discriminating tests for V100,
T4 and A100, and the GEMM and promotion semantics built on one instruction."""

import math
import zlib

import ml_dtypes

import numpy as np
import pytest

import fpsim
from fpsim.engines import NARROW
from fpsim.probe import dot16
from reference_fused import fma_chain_ref, fused_gemm_ref, pairwise_ref

U = 2.0 ** -24


def wmma_16x16x16(arch, instruction, a, b, c):
    """D[0,0] of CUDA's wmma 16x16x16 as Fasi et al.'s suite runs it (fpsim.probe.dot16: only row
    0 of A, column 0 of B and C[0,0] set; the 16 products walked by the chip's instruction)."""
    return dot16(fpsim.engine(arch, instruction), a, b, c)


# Fasi, Higham, Mikaitis, Pranesh 2021 (PeerJ CS), the answers their test suite encodes for each
# GPU (tc_test_numerics-V100.cu; ...-T4-A100-binary16.cu), as docs/engines_notes.md section 7
# lists them: (test, f16 mode?, a, b, c, V100 answer, T4 and A100 answer); None: "non-zero".
FASI = [
    ("A1 subnormal input, f16 mode", True, [U], [4], 0.0, 2.0**-22, 2.0**-22),
    ("A2 subnormal input, f32 mode", False, [U], [4], 0.0, 2.0**-22, 2.0**-22),
    ("A3 subnormal C passes", False, [], [], 2.0**-149, 2.0**-149, 2.0**-149),
    ("A4 subnormal f16 output", True, [2.0**-14], [1.0], -(2.0**-15), None, None),
    ("A5 f16-range subnormal, f32 mode", False, [2.0**-14], [1.0], -(2.0**-15), None, None),
    ("B1 exact products", False, [1 - 2.0**-11] * 4, [1 - 2.0**-11] * 4, 0.0,
     4 * (1 - 2.0**-10 + 2.0**-22), 4 * (1 - 2.0**-10 + 2.0**-22)),
    ("B2 exact products, f16 mode", True, [1 - 2.0**-11] * 2, [1 - 2.0**-11, 2.0**-11], 0.0,
     1 - 2.0**-11, 1 - 2.0**-11),
    ("C1 RZ, positive", False, [1.0] * 4, [2.0, 3 * U, 0, 0], 0.0, 2.0, 2.0),
    ("C2 RZ, negative", False, [1.0] * 4, [-2.0, -3 * U, 0, 0], 0.0, -2.0, -2.0),
    ("C3 RN in f16 mode", True, [U, U], [0.5, 0.25], 0.0, 2.0**-24, 2.0**-24),
    ("D1 guard bits", False, [1.0], [1.0], -(1 - U), 2.0**-23, 2.0**-24),
    ("D2 no normalisation, same sign", False, [1.0] * 4, [U] * 4, 1 - U, 1 + 2.0**-23,
     1 + 2.0**-23),
    ("D3 no normalisation, opposite signs", False, [1.0, 1.0], [1.0, -U], -1 + U, 2.0**-23, 0.0),
    ("D4 carry bits (ii)", False, [1.0] * 4, [1, 1.5, 1.75, 1.875], 1.875, 8.0, 8.0),
    ("D4 carry bits (iii)", False, [1.0] * 4, [1.0] * 4, 1 + 2.0**-22 + 2.0**-23, 5.0, 5.0),
    ("D4 carry bits (iv)", False, [1.0] * 4, [-1.0] * 4, -(1 + 2.0**-22 + 2.0**-23), -5.0, -5.0),
] + [(f"D4 carry bits (i), b{i} = 2**-23", False, [1.0] * 4,
      [2.0**-23 if t == i else 1.0 for t in range(4)], 1 + 2.0**-22 + 2.0**-23, 4 + 2.0**-21,
      4 + 2.0**-21) for i in range(4)]
GPUS = {"V100": ("volta", "mma.m8n8k4.f32.f16.f16.f32", "mma.m8n8k4.f16.f16.f16.f16"),
        "T4": ("turing", "mma.m16n8k8.f32.f16.f16.f32", "mma.m16n8k8.f16.f16.f16.f16"),
        "A100": ("ampere", "mma.m16n8k16.f32.f16.f16.f32", "mma.m16n8k16.f16.f16.f16.f16")}


@pytest.mark.parametrize("gpu", list(GPUS))
@pytest.mark.parametrize("case", FASI, ids=[c[0] for c in FASI])
def test_fasi_et_al_published_answers(gpu, case):
    name, f16_mode, a, b, c, v100, t4_a100 = case
    arch, f32_ins, f16_ins = GPUS[gpu]
    got = wmma_16x16x16(arch, f16_ins if f16_mode else f32_ins, a, b, c)
    want = v100 if gpu == "V100" else t4_a100
    if want is None:
        assert got != 0.0
    else:
        assert got == want, (gpu, name, got, want)


@pytest.mark.parametrize("gpu, shift", [("V100", 0), ("T4", 1), ("A100", 1)])
def test_fasi_b3_b4_d5(gpu, shift):
    """Swamping below the kept bits (B3), alignment to the largest term (B4), non-monotonicity
    (D5): the V100 file uses 1 and u, the T4/A100 file 0.5 and u/2 (one more kept bit)."""
    arch, f32_ins, _ = GPUS[gpu]
    half = 0.5 if shift else 1.0
    assert wmma_16x16x16(arch, f32_ins, [half] * 4, [U] * 4, 1.0) == 1.0              # B3
    for j in range(4):                         # B4: products u (V100) or u/2 = 0.5 * u, and 1
        a = [half] * 4
        b = [U] * 4
        a[j], b[j] = 1.0, 1.0
        assert wmma_16x16x16(arch, f32_ins, a, b, U) == 1.0
    if not shift:                                                                      # D5
        lo = wmma_16x16x16(arch, f32_ins, [1.0] * 4, [U] * 4, 1 - U)
        hi = wmma_16x16x16(arch, f32_ins, [1.0] * 4, [U] * 4, 1.0)
        assert hi < lo


# --- the kernel against the exact-rational reference -----------------------------------------
PRESETS = [("volta", "mma.m8n8k4.f32.f16.f16.f32"), ("volta", "mma.m8n8k4.f16.f16.f16.f16"),
           ("turing", "mma.m16n8k8.f32.f16.f16.f32"), ("ampere", "mma.m16n8k16.f32.bf16.bf16.f32"),
           ("ampere", "mma.m16n8k8.f32.tf32.tf32.f32"), ("ada", "mma.m16n8k32.f32.e4m3.e5m2.f32"),
           ("ada", "mma.m16n8k32.f16.e5m2.e5m2.f16"), ("hopper", "wgmma.m64n8k32.f32.e4m3.e4m3"),
           ("hopper", "wgmma.m64n16k16.f32.bf16.bf16"), ("blackwell", "tcgen05.mma.m64n8k16.f16.f16.f16"),
           ("rtx_blackwell", "mma.m16n8k32.f32.e5m2.e4m3.f32"),
           ("blackwell", "tcgen05.mma.m64n8k32.f32.e2m1.e4m3"),
           ("cdna3", "mfma.f32_32x32x8_f16"), ("cdna3", "mfma.f32_16x16x16_bf16"),
           ("cdna3", "mfma.f32_16x16x8_xf32"), ("cdna3", "mfma.f32_32x32x16_fp8_bf8"),
           ("cdna3", "mfma.f32_16x16x32_bf8_bf8")]
CHAINS = [("ampere", "mma.m8n8k4.f64.f64.f64.f64"), ("hopper", "mma.m16n8k16.f64.f64.f64.f64"),
          ("cdna1", "mfma.f32_32x32x2f32"), ("cdna3", "mfma.f32_16x16x4_f32"),
          ("cdna2", "mfma.f64_16x16x4f64"), ("cdna3", "mfma.f64_4x4x4_4b_f64")]
PAIRWISE = [("cdna1", "mfma.f32_32x32x8f16"), ("cdna1", "mfma.f32_16x16x8bf16"),
            ("cdna2", "mfma.f32_16x16x16f16"), ("cdna2", "mfma.f32_4x4x4bf16_1k"),
            ("cdna2", "mfma.f32_32x32x4bf16")]
BLOCK_SCALED = [("rtx_blackwell", "mma.m16n8k32.block32.f32.e4m3.e5m2.f32.ue8m0"),
                ("rtx_blackwell", "mma.m16n8k32.block32.f32.e2m1.e2m1.f32.ue8m0"),
                ("rtx_blackwell", "mma.m16n8k64.block32.f32.e2m1.e2m1.f32.ue4m3"),
                ("blackwell", "tcgen05.mma.m128n8k32.block32.f32.e5m2.e4m3.ue8m0"),
                ("blackwell", "tcgen05.mma.m128n8k64.block16.f32.e2m1.e2m1.ue4m3"),
                ("blackwell", "tcgen05.mma.m128n16k64.block32.f32.e2m1.e2m1.ue8m0")]


def adversarial(rng, shape, fmt):
    """Values of fmt: wide exponents, exact cancellations, one huge term among tiny ones,
    subnormals and zeros."""
    v = fmt.values()
    v = v[np.isfinite(v)]
    x = rng.choice(v, shape)
    flat = x.reshape(-1)
    flat[rng.random(flat.size) < 0.1] = 0.0
    pos = v[v > 0]
    flat[:3] = [pos.max(), -pos.max(), pos.min()]
    return x


def engine_values(fmt, rng, shape):
    if fmt.bits <= 16:
        return adversarial(rng, shape, fmt)
    x = rng.standard_normal(shape) * 2.0 ** rng.integers(-30, 30, shape)
    x = fpsim.quantize(x, fmt)                             # tf32 (e8m10), f32 or f64 values
    flat = x.reshape(-1)
    flat[:4] = [fmt.min_subnormal, -fmt.min_normal, fmt.max / 4, 0.0]
    return x


def padded(A, B, k):
    K = A.shape[1]
    Kp = K + (-K) % k
    return (np.concatenate([A, np.zeros((A.shape[0], Kp - K))], axis=1),
            np.concatenate([B, np.zeros((Kp - K, B.shape[1]))], axis=0))


def assert_same(got, want):
    want = np.array(want, np.float64)
    got = np.asarray(got, np.float64)
    same = (got == want) | (np.isnan(got) & np.isnan(want))
    assert same.all(), (got[~same], want[~same])
    assert np.array_equal(np.signbit(got[got == 0]), np.signbit(want[want == 0]))


@pytest.mark.parametrize("arch, ins", PRESETS)
def test_engine_gemm_matches_the_fraction_reference(arch, ins):
    eng = fpsim.engine(arch, ins)
    rng = np.random.default_rng(zlib.crc32(ins.encode()))
    K = 2 * eng.k + 3                                      # not a multiple of k: zero padding
    A = engine_values(eng.a_format, rng, (3, K))
    B = engine_values(eng.b_format, rng, (K, 4))
    got = fpsim.gemm(A, B, acc=eng)
    assert got.dtype == np.float32               # gemm's rule: float32 holds f16 and f32 results
    Ap, Bp = padded(A, B, eng.k)
    assert_same(got, fused_gemm_ref(Ap, Bp, np.zeros((3, 4)), eng.model, eng.a_format,
                                    eng.b_format))


@pytest.mark.parametrize("arch, ins", CHAINS)
def test_fma_chains_match_the_fraction_reference(arch, ins):
    """NV-1 and AMD-1: IEEE fused multiply-adds in order, C first, subnormals kept."""
    eng = fpsim.engine(arch, ins)
    rng = np.random.default_rng(zlib.crc32(ins.encode()))
    K = 2 * eng.k + 1
    A = engine_values(eng.a_format, rng, (3, K))
    B = engine_values(eng.b_format, rng, (K, 4))
    A[0, :2], B[:2, 0] = [1.0, 1.0], [1.0, -1.0]          # exact cancellation: +0
    A[1, 0], B[0, 1] = eng.a_format.min_normal, 0.5        # a subnormal product
    got = fpsim.gemm(A, B, acc=eng)
    assert got.dtype == eng.d_dtype
    C = engine_values(eng.c_format, rng, (eng.m, eng.n))
    d = eng(engine_values(eng.a_format, rng, (eng.m, eng.k)),
            engine_values(eng.b_format, rng, (eng.k, eng.n)), C)
    assert d.dtype == eng.d_dtype
    Ap, Bp = padded(A, B, eng.k)
    assert_same(got, fma_chain_ref(Ap, Bp, np.zeros((3, 4)), eng.out_format))


@pytest.mark.parametrize("arch, ins", [CHAINS[1], CHAINS[2], PAIRWISE[0], PAIRWISE[3]])
def test_chain_kernels_over_batches_and_column_tiles(arch, ins):
    """The FMA-chain and pairwise-group kernels (kernels/chain.py) on a batch of 2 with 300
    columns: three 128-column tiles, the last one partial, each read and written at its own
    offset."""
    eng = fpsim.engine(arch, ins)
    rng = np.random.default_rng(7)
    K = 2 * eng.k
    A = engine_values(eng.a_format, rng, (2, 3, K))
    B = engine_values(eng.b_format, rng, (2, K, 300))
    got = fpsim.gemm(A, B, acc=eng)
    m = eng.model
    for b in range(2):
        if (arch, ins) in CHAINS:
            want = fma_chain_ref(A[b], B[b], np.zeros((3, 300)), eng.out_format)
        else:
            want = pairwise_ref(A[b], B[b], np.zeros((3, 300)), m.group, m.ftz, eng.k,
                                eng.a_format, eng.b_format, fpsim.format("float32"))
        assert_same(got[b], want)


@pytest.mark.parametrize("arch, ins", PAIRWISE)
def test_pairwise_groups_match_the_reference(arch, ins):
    """AMD-2 (CDNA1, and CDNA2 with flush-to-zero): float32 products, a float32 tree per group,
    added to the register; subnormal inputs and tiny sums where the flush shows."""
    eng = fpsim.engine(arch, ins)
    rng = np.random.default_rng(zlib.crc32(ins.encode()))
    K = 3 * eng.k
    A = engine_values(eng.a_format, rng, (4, K))
    B = engine_values(eng.b_format, rng, (K, 5))
    A[0, :] = eng.a_format.min_subnormal                   # subnormal inputs (flushed on CDNA2)
    A[1, :] = fpsim.quantize(np.full(K, 2.0 ** -70), eng.a_format)  # bf16: products below
    B[:, 1] = fpsim.quantize(np.full(K, 2.0 ** -60), eng.b_format)  # 2**-126 (f16: zeros)
    A[2, 0], B[0, 2] = eng.a_format.max, eng.b_format.max  # one huge
    C = np.where(rng.random((eng.m, eng.n)) < 0.3, -(2.0 ** -130), 1.5)
    m = eng.model
    got = fpsim.gemm(A, B, acc=eng)
    assert_same(got, pairwise_ref(A, B, np.zeros((4, 5)), m.group, m.ftz, eng.k, eng.a_format,
                                  eng.b_format, fpsim.format("float32")))
    Ai = engine_values(eng.a_format, rng, (eng.m, eng.k))
    Bi = engine_values(eng.b_format, rng, (eng.k, eng.n))
    assert_same(eng(Ai, Bi, C), pairwise_ref(Ai, Bi, C, m.group, m.ftz, eng.k, eng.a_format,
                                             eng.b_format, fpsim.format("float32")))
    assert m.ftz == (arch == "cdna2")


def block_scales(rng, eng, rows, cols):
    """Scales of the engine's format: powers of two over a wide range for E8M0, UE4M3 values
    (subnormal ones too) otherwise; one NaN-free, zero-free array."""
    if eng.scale_format.name == "float8_e4m3fn":
        v = fpsim.format("float8_e4m3fn").values()
        v = v[(v > 0) & np.isfinite(v)]
        return rng.choice(v, (rows, cols))
    return 2.0 ** rng.integers(-60, 60, (rows, cols))


def block_scaled_ref(eng, A, B, SA, SB):
    """reference_fused's D of a block-scaled GEMM from +0: K zero-padded to a multiple of k,
    the padded blocks scaled by the scale format's smallest value (as fpsim.gemm pads)."""
    Ap, Bp = padded(A, B, eng.k)
    more = Ap.shape[1] // eng.block - SA.shape[1]
    tiny = eng.scale_format.min_subnormal
    SAp = np.concatenate([SA, np.full((len(SA), more), tiny)], axis=1)
    SBp = np.concatenate([SB, np.full((more, SB.shape[1]), tiny)], axis=0)
    return fused_gemm_ref(Ap, Bp, np.zeros((len(A), B.shape[1])), eng.model, eng.a_format,
                          eng.b_format, SAp, SBp, eng.scale_format, eng.block)


@pytest.mark.parametrize("arch, ins", BLOCK_SCALED)
def test_block_scaled_engines_match_the_fraction_reference(arch, ins):
    """NV-5 (scale exponents added to the product exponents, F = 25) and NV-6 (exact sums of 16
    FP4 products, aligned on the scales' exponents alone, F = 35), one instruction and a GEMM
    whose K is not a multiple of k (zero-padded, the padded blocks scaled by 1)."""
    eng = fpsim.engine(arch, ins)
    rng = np.random.default_rng(zlib.crc32(ins.encode()))
    K = 2 * eng.k + eng.block + 3
    nb = -(-K // eng.block)
    A = adversarial(rng, (3, K), eng.a_format)
    B = adversarial(rng, (K, 4), eng.b_format)
    SA, SB = block_scales(rng, eng, 3, nb), block_scales(rng, eng, nb, 4)
    got = fpsim.gemm(A, B, acc=eng, scale_a=SA, scale_b=SB)
    assert_same(got, block_scaled_ref(eng, A, B, SA, SB))
    # one instruction with C, a NaN scale in row 1 (the whole row's D is NaN)
    Ai, Bi = adversarial(rng, (eng.m, eng.k), eng.a_format), adversarial(
        rng, (eng.k, eng.n), eng.b_format)
    sa, sb = block_scales(rng, eng, eng.m, eng.k // eng.block), block_scales(
        rng, eng, eng.k // eng.block, eng.n)
    sa[1, 0] = np.nan
    C = engine_values(fpsim.format("float32"), rng, (eng.m, eng.n))
    d = eng(Ai, Bi, C, scale_a=sa, scale_b=sb)
    assert np.isnan(d[1]).all() and not np.isnan(d[0]).any()
    assert_same(d, fused_gemm_ref(Ai, Bi, C, eng.model, eng.a_format, eng.b_format, sa, sb,
                                  eng.scale_format, eng.block))


def test_nv6_sums_sixteen_fp4_products_exactly_before_the_cut():
    """Sixteen products -0.5 * 0.5 in block 0 beside one product 2**34 (block 1's scales): the
    alignment exponent is 34, the quantum 2**(34 - 35) = 0.5.  Their exact run sum -4 is kept, and
    the round-toward-zero output of 2**34 - 4 is 2**34 - 1024; cut one by one, each -0.25 would
    vanish and the result would be 2**34."""
    eng = fpsim.engine("blackwell", "tcgen05.mma.m128n8k64.block16.f32.e2m1.e2m1.ue8m0")
    A = np.zeros((128, 64))
    B = np.zeros((64, 8))
    A[0, :16], B[:16, 0] = -0.5, 0.5
    A[0, 16], B[16, 0] = 1.0, 1.0
    sa = np.ones((128, 4))
    sb = np.ones((4, 8))
    sa[0, 1], sb[1, 0] = 2.0 ** 17, 2.0 ** 17
    assert eng(A, B, scale_a=sa, scale_b=sb)[0, 0] == 2.0 ** 34 - 1024
    one_by_one = fpsim.FusedDotAdd(group=64, frac_bits=35)       # no runs: the terms vanish
    a64, b64 = A * np.repeat(sa, 16, axis=1), B * np.repeat(sb, 16, axis=0)
    d = one_by_one.run(a64[None, :1], b64[None, :, :1], np.zeros((1, 1, 1)),
                       fpsim.format("float32"), fpsim.format("float32"))
    assert d[0, 0, 0] == 2.0 ** 34


def test_padding_never_sets_the_alignment_of_fp4_runs():
    """NV-6 aligns each run of 16 on its scales alone: a padded run must not pull the alignment
    up (found in review: padding with scale 1 cut these terms away)."""
    eng = fpsim.engine("rtx_blackwell", "mma.m16n8k64.block32.f32.e2m1.e2m1.f32.ue8m0")
    A, B = np.full((1, 32), 1.5), np.full((32, 1), 1.5)
    for e in (-40, -20):
        got = fpsim.gemm(A, B, acc=eng, scale_a=np.full((1, 1), 2.0 ** e),
                         scale_b=np.full((1, 1), 2.0 ** e))
        assert got[0, 0] == np.float32(32 * 2.25 * 2.0 ** (2 * e)), e


def test_review_findings_on_designable_models():
    """Configurations the exactness conditions must refuse, and edge rules, each against the
    Fraction reference (found in review)."""
    f32, e4 = fpsim.format("float32"), fpsim.format("float8_e4m3fn")
    with pytest.raises(ValueError, match="late_c_bits <= late_sum_bits"):
        fpsim.FusedDotAdd(group=16, frac_bits=24, c_aligned=False, late_sum_bits=24,
                          late_c_bits=48)
    with pytest.raises(ValueError, match="c_emin"):
        fpsim.FusedDotAdd(group=2, c_emin=1100)
    wide = fpsim.FusedDotAdd(group=1, frac_bits=47, register=fpsim.FloatFormat(8, 50))
    one = np.ones((1, 1, 1))
    with pytest.raises(ValueError, match="not exact"):            # 24 + 23 + 2 x 4 bits
        wide.run(one, one, np.zeros((1, 1, 1)), f32, fpsim.FloatFormat(8, 22),
                 scales=(one, one, e4, 1))
    # a product beyond the register's range inside an exact run: each product counts
    m = fpsim.FusedDotAdd(group=4, subsum=2, product_overflow=True, frac_bits=7,
                          register=fpsim.format("e5m6"), rounding="rne", overflow="format")
    A, B, C = np.array([[448.0, 448, 1, 0]]), np.array([[448.0], [-448], [1], [0]]), \
        np.zeros((1, 1))
    assert_same(m.run(A[None], B[None], C[None], e4, e4)[0], fused_gemm_ref(A, B, C, m, e4, e4))
    # overflow to Inf decided on the exact sum, not on its rounded high part
    reg = fpsim.FloatFormat(8, 40)
    m = fpsim.FusedDotAdd(group=1, c_aligned=False, register=reg, rounding="rtz")
    A, B = np.array([[float(np.finfo(np.float32).max)]]), np.ones((1, 1))
    C = np.array([[2.0 ** 104 - 2.0 ** 63]])
    assert_same(m.run(A[None], B[None], C[None], f32, f32)[0], fused_gemm_ref(A, B, C, m, f32,
                                                                               f32))
    with pytest.raises(ValueError, match="multiple of group"):
        fpsim.FusedDotAdd(group=4).run(one, one, one, f32, f32, promote=(6, f32, "rne"))


def test_batched_scales_and_operand_order_in_gemm():
    eng = fpsim.engine("blackwell", "tcgen05.mma.m128n8k32.block32.f32.e5m2.e4m3.ue8m0")
    with pytest.raises(ValueError, match=r"scale_a must have shape \(4, 1\)"):
        fpsim.gemm(np.ones((4, 32)), np.ones((32, 3)), acc=eng,
                   scale_a=np.ones((3, 4, 1)), scale_b=np.ones((1, 3)))
    got = fpsim.gemm(np.ones((2, 4, 32)), np.ones((32, 3)), acc=eng,
                     scale_a=np.stack([np.ones((4, 1)), np.full((4, 1), 2.0)]),
                     scale_b=np.ones((1, 3)))
    assert got[0, 0, 0] == 32 and got[1, 0, 0] == 64
    hop = fpsim.engine("hopper", "wgmma.m64n8k32.f32.e5m2.e4m3")
    rng = np.random.default_rng(40)
    A = adversarial(rng, (5, 40), fpsim.format("float8_e4m3fn")).astype(ml_dtypes.float8_e4m3fn)
    B = adversarial(rng, (40, 6), fpsim.format("float8_e5m2")).astype(ml_dtypes.float8_e5m2)
    assert_same(fpsim.gemm(A, B, acc=hop), fpsim.gemm(B.T, A.T, acc=hop).T)  # C^T = B^T A^T


def test_cdna3_worked_examples():
    """docs/engines_notes.md, AMD-3 and AMD-4: the late C floored toward -inf and the FP8 odd/even
    halves (values derived from the algorithm: MMA-Sim records no hardware vectors)."""
    f16 = fpsim.engine("cdna3", "mfma.f32_4x4x4_16b_f16")
    A, B, C = np.zeros((4, 4)), np.zeros((4, 4)), np.zeros((4, 4))
    A[0, 0] = B[0, 0] = 1.0
    C[0, 0] = -(2.0 ** -30)
    assert f16(A, B, C)[0, 0] == np.float32(1 - 2.0 ** -24)
    C[0, 0] = 2.0 ** -30
    assert f16(A, B, C)[0, 0] == 1.0
    fp8 = fpsim.engine("cdna3", "mfma.f32_16x16x32_fp8_fp8")
    A, B = np.zeros((16, 32)), np.zeros((32, 16))
    A[0, 0], B[0, 0], A[0, 1], B[1, 0] = 8.0, 8.0, -(2.0 ** -10), 2.0 ** -10
    assert fp8(A, B)[0, 0].view(np.uint32) == 0x427FFFFF        # different halves
    A[0, 1], B[1, 0], A[0, 2], B[2, 0] = 0.0, 0.0, -(2.0 ** -10), 2.0 ** -10
    assert fp8(A, B)[0, 0] == 64.0                               # the same half
    A, B, C = np.zeros((16, 32)), np.zeros((32, 16)), np.zeros((16, 16))
    A[0, 0] = B[0, 0] = 1.0
    C[0, 0] = -(2.0 ** -30)
    assert fp8(A, B, C)[0, 0] == 1.0                             # C dropped
    C[0, 0] = -(2.0 ** -20)
    assert fp8(A, B, C)[0, 0].view(np.uint32) == 0x3F7FFFF0
    bf16 = fpsim.engine("cdna3", "mfma.f32_32x32x8_bf16")       # a product beyond float32: Inf
    A, B = np.zeros((32, 8)), np.zeros((8, 32))
    A[0, 0], B[0, 0], A[0, 1], B[1, 0] = 2.0 ** 100, 2.0 ** 30, -(2.0 ** 100), 2.0 ** 30
    assert np.isnan(bf16(A, B)[0, 0])
    A[0, 1] = 2.0 ** 100
    assert bf16(A, B)[0, 0] == np.inf


@pytest.mark.parametrize("frac, cut, c_aligned, carry, zero", [
    (13, "rtz", True, -1, -126), (8, "rdn", True, -1, None), (20, "rne", False, -1, -126),
    (10, "rtz", True, 2, -126), (3, "rdn", False, 1, None)])
def test_designable_model_matches_the_reference(frac, cut, c_aligned, carry, zero):
    """Parameters of hardware that does not exist: every cut, C outside the alignment, a narrow
    carry, zeros out of the alignment - with Inf/NaN and subnormal inputs among them."""
    model = fpsim.FusedDotAdd(group=5, frac_bits=frac, cut=cut, c_aligned=c_aligned,
                              carry_bits=None if carry < 0 else carry, zero_exponent=zero,
                              register=fpsim.format("e6m7"), rounding="rne", overflow="format")
    f = fpsim.format("e4m3")
    rng = np.random.default_rng(frac)
    A, B = adversarial(rng, (4, 13), f), adversarial(rng, (13, 6), f)
    A[1, 2], B[5, 3], A[2, 0] = np.inf, -np.inf, np.nan
    C = adversarial(rng, (4, 6), fpsim.format("e6m7"))
    got = model.run(A[None], B[None], C[None], f, f)[0]
    assert_same(got, fused_gemm_ref(A, B, C, model, f, f))


@pytest.mark.parametrize("kw", [
    dict(subsum=4, group=8), dict(lanes=2, group=6, c_aligned=False, late_sum_bits=12,
                                  late_c_bits=9, late_c_drop=6),
    dict(lanes=2, group=4, cut="rne"), dict(c_aligned=False, late_sum_bits=9, late_c_bits=4,
                                            product_overflow=True, group=3)])
def test_designable_extensions_match_the_reference(kw):
    """Exact runs, two lanes, a late C and product overflow, in combinations no chip has, with
    Inf/NaN, subnormals, cancellations and products beyond the register's range."""
    model = fpsim.FusedDotAdd(**dict(dict(frac_bits=7, register=fpsim.format("e5m6"),
                                          rounding="rne", overflow="format"), **kw))
    f = fpsim.format("e4m3")
    rng = np.random.default_rng(len(str(kw)))
    A, B = adversarial(rng, (5, 14), f), adversarial(rng, (14, 6), f)
    A[1, 2], B[5, 3], A[2, 0] = np.inf, -np.inf, np.nan
    A[3, :2], B[:2, 4] = 240.0, 240.0              # 57600 > e5m6's range
    C = adversarial(rng, (5, 6), fpsim.format("e5m6"))
    got = model.run(A[None], B[None], C[None], f, f)[0]
    assert_same(got, fused_gemm_ref(A, B, C, model, f, f))


def test_gemm_on_an_engine_is_the_instruction_step_by_step():
    eng = fpsim.engine("hopper", "wgmma.m64n8k32.f32.e4m3.e4m3")
    rng = np.random.default_rng(3)
    f = fpsim.format("float8_e4m3fn")
    A, B = fpsim.quantize(rng.standard_normal((64, 96)), f), fpsim.quantize(rng.standard_normal(
        (96, 8)), f)
    D = np.zeros((64, 8), np.float32)
    for k0 in range(0, 96, 32):
        D = eng(A[:, k0:k0 + 32], B[k0:k0 + 32], D)
    assert np.array_equal(fpsim.gemm(A, B, acc=eng), D)


@pytest.mark.parametrize("arch, ins, chunk, outer, rounding", [
    ("hopper", "wgmma.m64n8k32.f32.e4m3.e4m3", 128, "float32", "rne"),     # in the kernel
    ("hopper", "wgmma.m64n8k32.f32.e4m3.e4m3", 48, "float32", "rne"),      # chunk by chunk
    ("ada", "mma.m16n8k32.f16.e4m3.e5m2.f16", 64, "bfloat16", "rtz"),
    ("cdna3", "mfma.f32_16x16x32_fp8_bf8", 64, "float32", "rdn"),
    ("cdna2", "mfma.f32_16x16x16f16", 32, "float32", "rne"),
    ("rtx_blackwell", "mma.m16n8k64.block16.f32.e2m1.e2m1.f32.ue4m3", 128, "float32", "rne")])
def test_promotion_is_chunked_accumulation_with_the_engine_inside(arch, ins, chunk, outer,
                                                                   rounding):
    """Accumulator(outer, chunk=n, inner=engine) equals each chunk of K run on the engine from
    +0 (fpsim.gemm per chunk) and added in order into the outer register (fpsim.add)."""
    eng = fpsim.engine(arch, ins)
    rng = np.random.default_rng(zlib.crc32(ins.encode()))
    K = 300
    A = adversarial(rng, (5, K), eng.a_format)
    B = adversarial(rng, (K, 7), eng.b_format)
    kw, nb = {}, 0
    if eng.block:
        nb = -(-K // eng.block)
        kw = dict(scale_a=block_scales(rng, eng, 5, nb), scale_b=block_scales(rng, eng, nb, 7))
    acc = fpsim.Accumulator(outer, chunk=chunk, inner=eng, rounding=rounding)
    got = fpsim.gemm(A, B, acc=acc, **kw)
    total = np.zeros((5, 7))
    for k0 in range(0, K, chunk):
        part_kw = {} if not eng.block else dict(
            scale_a=kw["scale_a"][:, k0 // eng.block:(k0 + chunk) // eng.block],
            scale_b=kw["scale_b"][k0 // eng.block:(k0 + chunk) // eng.block])
        part = fpsim.gemm(A[:, k0:k0 + chunk], B[k0:k0 + chunk], acc=eng, **part_kw)
        total = fpsim.add(total, part.astype(np.float64), outer, rounding=rounding,
                          dtype=np.float64)
    assert_same(got, total)


def test_bad_engines_and_operands_say_what_is_valid():
    with pytest.raises(ValueError, match="arch must be one of"):
        fpsim.engine("pascal", "mma.m8n8k4.f32.f16.f16.f32")
    with pytest.raises(ValueError, match="valid: mma.m8n8k4"):
        fpsim.engine("volta", "mma.m16n8k16.f32.bf16.bf16.f32")
    with pytest.raises(ValueError, match="valid: mfma.f32_32x32x2f32"):
        fpsim.engine("cdna1", "mfma.f32_32x32x8_f16")        # CDNA3's spelling
    blk = fpsim.engine("rtx_blackwell", "mma.m16n8k32.block32.f32.e4m3.e4m3.f32.ue8m0")
    a8 = np.zeros((16, 32))
    with pytest.raises(ValueError, match="needs scale_a and scale_b"):
        blk(a8, np.zeros((32, 8)))
    with pytest.raises(ValueError, match=r"scale_a must have shape \(16, 1\)"):
        blk(a8, np.zeros((32, 8)), scale_a=np.ones((16, 2)), scale_b=np.ones((1, 8)))
    with pytest.raises(ValueError, match="not in its format"):
        blk(a8, np.zeros((32, 8)), scale_a=np.full((16, 1), 3.0), scale_b=np.ones((1, 8)))
    with pytest.raises(ValueError, match="needs scale_a and scale_b"):
        fpsim.gemm(a8, np.zeros((32, 8)), acc=fpsim.Accumulator("float32", chunk=32,
                                                                 inner=blk))
    with pytest.raises(ValueError, match="takes no block scales"):
        fpsim.engine("hopper", "wgmma.m64n8k32.f32.e4m3.e4m3")(
            np.zeros((64, 32)), np.zeros((32, 8)), scale_a=np.ones((64, 1)))
    with pytest.raises(ValueError, match="block-scaled matrix engine"):
        fpsim.gemm(np.ones((2, 2), np.float32), np.ones((2, 2), np.float32),
                   scale_a=np.ones((2, 1)))
    eng = fpsim.engine("ampere", "mma.m16n8k16.f32.bf16.bf16.f32")
    with pytest.raises(ValueError, match="shape"):
        eng(np.zeros((16, 8)), np.zeros((16, 8)))
    with pytest.raises(ValueError, match="not in its format"):
        eng(np.full((16, 16), 1 + 2.0**-10), np.zeros((16, 8)))
    with pytest.raises(ValueError, match="chunk"):
        fpsim.Accumulator("float32", inner=eng)
    assert ("hopper", "wgmma.m64nNk32.f32.e4m3.e5m2") in fpsim.engines()


def test_tf32_inputs_are_truncated_as_the_hardware_does():
    eng = fpsim.engine("ampere", "mma.m16n8k8.f32.tf32.tf32.f32")
    A = np.zeros((16, 8), np.float32)
    B = np.zeros((8, 8), np.float32)
    A[0, 0] = B[0, 0] = np.float32(1 - 2.0**-24)           # tf32: 1 - 2**-11 (toward zero)
    assert eng(A, B)[0, 0] == np.float32((1 - 2.0**-11) ** 2)
    assert math.isnan(eng(np.full((16, 8), np.nan, np.float32), B)[0, 0])


# --- engines wherever an accumulator goes ---------------------------------------------------------
def test_fpsim_engines_prints_every_engine():
    from fpsim.cli import engines_table
    table = engines_table()
    for arch, ins in fpsim.engines():
        assert f"| {arch} | {ins} |" in table


def im2col(x, kh, kw):
    n, c, h, w = x.shape
    cols = np.empty((n, c * kh * kw, (h - kh + 1) * (w - kw + 1)))
    for ci in range(c):
        for r in range(kh):
            for s in range(kw):
                patch = x[:, ci, r:r + h - kh + 1, s:s + w - kw + 1]
                cols[:, (ci * kh + r) * kw + s] = patch.reshape(n, -1)
    return cols


def test_conv2d_on_an_engine_is_the_engine_gemm_of_im2col():
    eng = fpsim.engine("ada", "mma.m16n8k32.f32.e4m3.e5m2.f32")
    rng = np.random.default_rng(5)
    x = fpsim.quantize(rng.standard_normal((2, 3, 6, 6)), "e5m2").astype(np.float32)
    w = fpsim.quantize(rng.standard_normal((4, 3, 3, 3)), "float8_e4m3fn").astype(np.float32)
    y = fpsim.conv2d(x, w, acc=eng, x_format="e5m2", w_format="float8_e4m3fn")
    cols = im2col(x.astype(np.float64), 3, 3)
    for n in range(2):
        want = fpsim.gemm(w.reshape(4, -1), cols[n], acc=eng)
        assert np.array_equal(y[n].reshape(4, -1), want)
    with pytest.raises(ValueError, match="does not take"):
        fpsim.conv2d(x, w, acc=eng, x_format="bfloat16", w_format="float8_e4m3fn")


def test_a_recipe_can_name_an_engine():
    from fpsim import nn
    from fpsim.nn import layers as L
    eng = fpsim.engine("hopper", "wgmma.m64n8k32.f32.e4m3.e4m3")
    rec = nn.Recipe("hopper_fp8_sketch", weights=nn.Round("float8_e4m3fn"),
                    activations=nn.Round("float8_e4m3fn"), acc=eng)
    lin = L.Linear(40, 6, np.random.default_rng(0))
    L.Model("t", lin).configure(rec)
    x = np.random.default_rng(1).random((5, 40)).astype(np.float32)
    lin.b.value = np.zeros_like(lin.b.value)
    y = lin.forward(x)
    xq = fpsim.quantize(x, "float8_e4m3fn", seed=0)
    wq = fpsim.quantize(lin.w.value, "float8_e4m3fn", seed=0)
    assert np.array_equal(y, fpsim.gemm(xq, wq.T, acc=eng))


# --- fpsim probe: the feature tables Fasi et al. published ------------------------------------
# Fasi, Higham, Mikaitis, Pranesh 2021, PeerJ CS (the findings as their suite's README states
# them, docs/engines_notes.md section 7): subnormals supported in inputs and outputs; products
# exact; alignment on the largest magnitude, binary32 significand with no guard digit on V100 and
# one extra bit on T4 and A100; no normalisation until the end; at least the carry-out bits the
# suite checks (3); round toward zero for binary32 outputs, to nearest in f16 mode;
# non-monotonic.
PUBLISHED = {"subnormal inputs": "kept", "subnormal C passes": "yes", "products exact": "yes",
             "small terms dropped (aligned to the largest)": "yes",
             "normalisation between terms": "no", "carry-out bits": ">= 3",
             "rounding (f32 output)": "toward zero", "monotonic": "no",
             "rounding (f16 output)": "to nearest", "subnormal outputs (f16)": "kept"}
EXTRA_BITS = {"V100": "0", "T4": "1", "A100": "1"}


@pytest.mark.parametrize("gpu", list(GPUS))
def test_probe_prints_the_published_feature_table(gpu):
    from fpsim.probe import probe
    arch, f32_ins, f16_ins = GPUS[gpu]
    got = probe(fpsim.engine(arch, f32_ins), fpsim.engine(arch, f16_ins))
    want = dict(PUBLISHED, **{"extra bits beyond binary32": EXTRA_BITS[gpu]})
    for feature, answer in want.items():
        assert got[feature] == answer, (gpu, feature, got[feature])


def test_probe_cli():
    from fpsim.cli import main
    import contextlib
    import io
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["probe", "ampere", "mma.m16n8k16.f32.f16.f16.f32"]) == 0
        assert main(["probe", "ampere", "mma.m16n8k16.f32.f16.f16.f32", "--device", "cuda"]) == 0
    text = buf.getvalue()
    assert "| kept fractional bits (alignment) | 24 |" in text
    assert "| rounding (f16 output) | to nearest |" in text
    assert "no GPU probe" in text or "CUDA device" in text
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert main(["probe", "ada", "mma.m16n8k32.f32.e4m3.e4m3.f32"]) == 2
    assert "float16 inputs" in err.getvalue()


def test_demo_engine_accumulation_shape_of_the_curves():
    """Smoke test of benchmarks/demo_engine_accumulation.py (--quick sizes), with the property it
    shows: the chained FP8 error grows with K, promotion every 128 keeps it flat and below."""
    import importlib.util
    import os
    path = os.path.join(os.path.dirname(os.path.dirname(__file__)), "benchmarks",
                        "demo_engine_accumulation.py")
    spec = importlib.util.spec_from_file_location("demo_engine_accumulation", path)
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    rows = demo.run(quick=True)["rows"]
    chained = [r["hopper fp8 chained"]["normwise"] for r in rows]
    promoted = [r["hopper fp8 promoted every 128"]["normwise"] for r in rows]
    assert chained == sorted(chained) and chained[-1] > 2 * chained[0]
    assert all(p < c for p, c in zip(promoted[1:], chained[1:]))
    assert max(promoted) < 2 * min(promoted)


# --- training on engines: per-tensor scaling, operand order, the fp8_hopper recipes ------------
def test_current_scaling_against_ml_dtypes():
    """CurrentScaling: s = float32(fmt.max / amax / 2**margin); x * s (exact in float64) rounded
    once to nearest-even by ml_dtypes' own conversion; the GEMM scale returned is 1 / s."""
    import ml_dtypes
    from fpsim.nn import CurrentScaling
    rng = np.random.default_rng(7)
    x = (rng.standard_normal(1000) * 2.0 ** rng.integers(-20, 5, 1000)).astype(np.float32)
    x[:3] = [0.0, -0.0, 3e-9]
    for fmt, dt, margin in (("float8_e4m3fn", ml_dtypes.float8_e4m3fn, 0),
                            ("float8_e5m2", ml_dtypes.float8_e5m2, 2)):
        q, f, scale = CurrentScaling(fmt, margin=margin).make()(x, -1, "forward", 0)
        fmax = float(ml_dtypes.finfo(dt).max)
        s = float(np.float32(fmax / float(np.abs(x).max()) / 2.0 ** margin))
        want = (x.astype(np.float64) * s).astype(dt).astype(np.float64)
        assert np.array_equal(q.astype(np.float64), want) and scale == float(np.float32(1 / s))
        assert np.abs(q).max() <= fmax / 2 ** margin * (1 + 2.0 ** -3)
    q, _, scale = CurrentScaling().make()(np.zeros(4, np.float32), -1, "forward", 0)
    assert scale == 1.0 and not q.any()
    tiny = np.array([1e-37, -5e-38, 0.0], np.float32)      # 448 / amax beyond float32: capped
    q, _, scale = CurrentScaling().make()(tiny, -1, "forward", 0)
    s = float(np.finfo(np.float32).max)
    assert np.array_equal(q.astype(np.float64), (tiny.astype(np.float64) * s).astype(
        ml_dtypes.float8_e4m3fn).astype(np.float64)) and scale == float(np.float32(1 / s))
    with pytest.raises(ValueError, match="margin"):
        CurrentScaling(margin=-1)


def test_an_engine_takes_its_operands_in_either_order():
    """A (e4m3) x B (e5m2) on an e5m2 x e4m3 engine is the transpose of B^T A^T computed in the
    engine's own order (conv's backward-data GEMM has weights first)."""
    from fpsim.gemm import gemm_values
    eng = fpsim.engine("hopper", "wgmma.m64n8k32.f32.e5m2.e4m3")
    rng = np.random.default_rng(8)
    e4, e5 = fpsim.format("float8_e4m3fn"), fpsim.format("float8_e5m2")
    A = adversarial(rng, (6, 70), e4)
    B = adversarial(rng, (70, 5), e5)
    got = gemm_values(A, B, e4, e5, acc=eng)
    want = fpsim.gemm(B.T, A.T, acc=eng).T
    assert_same(got, want)
    bf = fpsim.format("bfloat16")
    with pytest.raises(ValueError, match="does not take"):
        gemm_values(A, fpsim.quantize(B, bf), e4, bf, acc=eng)


def test_fp8_hopper_linear_forward_is_the_engine_gemm_of_scaled_operands():
    from fpsim import nn
    from fpsim.nn import layers as L
    rec = nn.recipes.get("fp8_hopper")
    lin = L.Linear(300, 6, np.random.default_rng(0))
    lin.b.value = np.zeros_like(lin.b.value)
    L.Model("t", lin).configure(rec)
    x = np.random.default_rng(1).standard_normal((5, 300)).astype(np.float32)
    y = lin.forward(x)
    xq, _, sx = nn.CurrentScaling("float8_e4m3fn").make()(x, -1, "forward", 0)
    wq, _, sw = nn.CurrentScaling("float8_e4m3fn").make()(lin.w.value, -1, "forward", 0)
    raw = fpsim.gemm(xq.astype(np.float64), wq.T.astype(np.float64), acc=rec.acc["forward"])
    assert raw.dtype == np.float32                    # the epilogue: times the scales in float32
    assert np.array_equal(y, raw * np.float32(sx * sw))


EDGE_ENGINES = [("volta", "mma.m8n8k4.f16.f16.f16.f16"), ("ampere", "mma.m16n8k8.f32.bf16.bf16.f32"),
                ("hopper", "wgmma.m64n8k32.f32.e4m3.e4m3"), ("hopper", "wgmma.m64n8k16.f16.f16.f16"),
                ("cdna3", "mfma.f32_32x32x8_bf16"), ("cdna3", "mfma.f32_16x16x32_fp8_fp8"),
                ("rtx_blackwell", "mma.m16n8k16.f16.e5m2.e5m2.f16")]


def edge_vectors(eng):
    """(a, b, c) rows aimed at the vector rounding pass and its hand-over to the scalar one:
    exact ties of the register's precision (both signs, to even and to odd), results at the
    register's smallest normal and just below it, at its largest finite value and beyond, and a
    zero sum."""
    reg = eng.out_format
    p = reg.man_bits
    ulp = 2.0 ** -p
    ok = lambda v, f: float(fpsim.quantize(np.array([v]), f)[0]) == v   # noqa: E731
    ones = []
    for lo in (ulp / 2, 3 * ulp / 2, ulp / 4, 3 * ulp / 4):   # ties, and quarter points (RZ)
        for sign in (1.0, -1.0):
            ones.append(([sign, sign * lo], [1.0, 1.0], 0.0))
            ones.append(([sign], [1.0], sign * lo))              # the tie made by C
    tiny, big = reg.min_normal, reg.max
    rows = ones + [([1.0], [1.0], -1.0), ([tiny], [1.0], 0.0), ([tiny], [1.0], -tiny * ulp / 2),
                   ([big], [1.0], 0.0), ([big], [1.0], big * ulp / 2), ([big], [2.0], 0.0),
                   ([-big], [1.0], -big * ulp)]
    fa, fb, fc = eng.a_format, eng.b_format, eng.c_format
    out = []
    for a, b, c in rows:                # keep what the formats hold: a split into two inputs
        a2, b2 = [], []
        for x, y in zip(a, b):
            s = fpsim.quantize(np.array([x]), fa)[0]
            r = x - s
            a2 += [s, float(fpsim.quantize(np.array([r]), fa)[0])]
            b2 += [y, y]
        if all(ok(v, fa) for v in a2) and all(ok(v, fb) for v in b2) and ok(c, fc):
            out.append((a2, b2, c))
    return out


@pytest.mark.parametrize("arch, ins", EDGE_ENGINES)
def test_vector_rounding_pass_at_ties_and_range_edges(arch, ins):
    eng = fpsim.engine(arch, ins)
    vecs = edge_vectors(eng)
    assert len(vecs) >= 8, len(vecs)
    for a, b, c in vecs:
        A = np.zeros((eng.m, eng.k))
        B = np.zeros((eng.k, eng.n))
        C = np.zeros((eng.m, eng.n))
        A[0, :len(a)], B[:len(b), 0], C[0, 0] = a, b, c
        d = eng(A, B, C)[0, 0]
        want = fused_gemm_ref(A[:1], B[:, :1], C[:1, :1], eng.model, eng.a_format,
                              eng.b_format)[0][0]
        assert_same([d], [want])


FLOAT32_CUT_MODELS = {
    "hopper e4m3": lambda: fpsim.engine("hopper", "wgmma.m64n8k32.f32.e4m3.e4m3").model,
    "hopper e5m2": lambda: fpsim.engine("hopper", "wgmma.m64n8k32.f32.e5m2.e5m2").model,
    "rdn, float32 register": lambda: fpsim.FusedDotAdd(
        group=7, frac_bits=11, cut="rdn", register=fpsim.format("float32"), rounding="rne",
        overflow="format"),
}


@pytest.mark.parametrize("name", list(FLOAT32_CUT_MODELS))
def test_float32_cut_lanes_at_their_proof_edges(name):
    """The cut pass in float32 lanes (kernels.fused.float32_cuts) against the Fraction reference:
    C at float32's largest values, so that the scaled products underflow float32 (rtz and rdn
    must still give the exact cut, -1 for rdn's tiny negatives); C tiny with all-zero products
    (the clamped scale) and with nonzero ones; subnormal inputs, cancellation, Inf and NaN, a
    partial last group."""
    model = FLOAT32_CUT_MODELS[name]()
    f = fpsim.format("e5m2" if "e5m2" in name else "e4m3")
    f32 = fpsim.format("float32")
    assert fpsim.kernels.fused.float32_cuts(
        model.frac_bits, model.group, fpsim.kernels.fused.CUTS[model.cut], model.subsum,
        (f.man_bits, f.emin, f.emax), (f.man_bits, f.emin, f.emax), f32.emax)
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    K = 2 * model.group + 3
    A, B = adversarial(rng, (6, K), f), adversarial(rng, (K, 9), f)
    B[:, 0] = 0.0                                       # products all zero: C alone
    A[5, :] = f.min_subnormal * np.where(rng.random(K) < 0.5, -1, 1)
    C = np.zeros((6, 9))
    C[0] = [f32.max, -f32.max, 2.0**126, -(2.0**127), f32.min_normal, -f32.min_subnormal,
            f32.min_subnormal, -0.0, 3.0]
    C[1] = C[0][::-1]
    C[2, :] = -f32.max / 3
    C[3] = fpsim.quantize(rng.standard_normal(9) * 2.0 ** rng.integers(-140, 120, 9), f32)
    C[4, :] = f32.min_subnormal
    A[4, 3], B[2, 5] = np.inf, np.nan
    got = model.run(A[None], B[None], C[None], f, f)[0]
    assert_same(got, fused_gemm_ref(A, B, C, model, f, f))


def test_float32_cut_lanes_condition():
    """float32_cuts says no where a piece of its proof fails: a 24-bit cut (Ampere's bf16), a
    nearest-even cut, runs of products, a register whose exponents put the scale below float32's
    normal range, products wider than float32."""
    fz = fpsim.kernels.fused
    e4m3, bf16 = (3, -6, 8), (7, -126, 127)
    assert fz.float32_cuts(13, 32, fz.CUT_RTZ, 1, e4m3, e4m3, 127)
    assert not fz.float32_cuts(24, 8, fz.CUT_RTZ, 1, bf16, bf16, 127)
    assert not fz.float32_cuts(13, 32, fz.CUT_RNE, 1, e4m3, e4m3, 127)
    assert not fz.float32_cuts(13, 32, fz.CUT_RTZ, 16, e4m3, e4m3, 127)
    assert not fz.float32_cuts(13, 32, fz.CUT_RTZ, 1, e4m3, e4m3, 140)
    assert not fz.float32_cuts(8, 4, fz.CUT_RTZ, 1, bf16, (15, -14, 15), 127)


@pytest.mark.parametrize("lo", [-1074, -1022, -126, -6])
def test_input_exponents_against_frexp(lo):
    """kernels.fused.input_exponents (the alignment exponent of each input) against numpy's
    frexp: floor(log2|x|) raised to lo; zeros, Inf and NaN get the zero exponent; float64
    subnormals, the largest values, values just below powers of two."""
    rng = np.random.default_rng(-lo)
    x = np.concatenate([rng.standard_normal(500) * 2.0 ** rng.integers(-1074, 1000, 500),
                        [0.0, -0.0, np.inf, -np.inf, np.nan, 2.0**-1074, -(2.0**-1060),
                         2.0**-1022, np.nextafter(2.0**-1022, 0), np.finfo(np.float64).max,
                         np.nextafter(1.0, 0), 1.0, -0.75]])
    out = np.empty(x.size, np.int32)
    fpsim.kernels.fused.input_exponents(x, lo, -7777, out)
    with np.errstate(invalid="ignore"):
        _, e = np.frexp(np.where(np.isfinite(x), x, 0.0))
    want = np.where((x == 0) | ~np.isfinite(x), -7777, np.maximum(e - 1, lo))
    assert np.array_equal(out, want)


@pytest.mark.parametrize("arch, ins", PRESETS[:6] + BLOCK_SCALED[:2])
def test_narrow_outputs_run_transposed_with_the_same_bits(arch, ins):
    """A tall, narrow output (N below engines.NARROW, M above N) runs as D^T = B^T A^T from C^T:
    against the Fraction reference with the engine's own operand order, adversarial values (and
    block scales), a C, K not a multiple of k, and promoted every chunk in the kernel."""
    eng = fpsim.engine(arch, ins)
    rng = np.random.default_rng(zlib.crc32(ins.encode()) + 1)
    M, N = 37, 3
    assert N < NARROW and M > N
    K = 2 * eng.k + 3
    A = engine_values(eng.a_format, rng, (M, K))
    B = engine_values(eng.b_format, rng, (K, N))
    if (eng.a_format.name, eng.b_format.name) == ("float8_e4m3fn", "float8_e5m2"):
        # inputs read in the wrong formats would move the alignment: e4m3's subnormal 2**-9
        # counts at e4m3's emin -6, so the product 2**-6 * 2**-15 = 2**-21 is cut away
        A[0], B[:, 0] = 0.0, 0.0
        A[0, :2], B[:2, 0] = [2.0**-9, 2.0**-6], [1.0, 2.0**-15]
    kw, ref_kw = {}, {}
    Ap, Bp = padded(A, B, eng.k)
    if eng.block:
        nb = -(-K // eng.block)
        SA, SB = block_scales(rng, eng, M, nb), block_scales(rng, eng, nb, N)
        kw = dict(scale_a=SA, scale_b=SB)
        more = Ap.shape[1] // eng.block - nb
        tiny = eng.scale_format.min_subnormal
        ref_kw = dict(SA=np.concatenate([SA, np.full((M, more), tiny)], axis=1),
                      SB=np.concatenate([SB, np.full((more, N), tiny)], axis=0),
                      s_fmt=eng.scale_format, block=eng.block)
    got = fpsim.gemm(A, B, acc=eng, **kw)
    assert_same(got, fused_gemm_ref(Ap, Bp, np.zeros((M, N)), eng.model, eng.a_format,
                                    eng.b_format, **ref_kw))
    if not eng.block:                  # one instruction's worth of rows with a C of its own
        C = engine_values(eng.c_format, rng, (M, N))
        got = eng.model.run(Ap[None], Bp[None], C[None], eng.a_format, eng.b_format)[0]
        assert_same(got, fused_gemm_ref(Ap, Bp, C, eng.model, eng.a_format, eng.b_format))
        chunk = 2 * eng.k                # promotion in the kernel, transposed
        acc = fpsim.Accumulator("float32", chunk=chunk, inner=eng)
        total = np.zeros((M, N))
        for k0 in range(0, K, chunk):
            part = fpsim.gemm(A[:, k0:k0 + chunk], B[k0:k0 + chunk], acc=eng)
            total = fpsim.add(total, part.astype(np.float64), "float32", dtype=np.float64)
        assert_same(fpsim.gemm(A, B, acc=acc), total)


@pytest.mark.parametrize("arch, ins", [("hopper", "wgmma.m64n8k32.f32.e4m3.e4m3"),
                                       ("ada", "mma.m16n8k32.f32.e4m3.e5m2.f32"),
                                       ("cdna3", "mfma.f32_32x32x16_fp8_fp8"),
                                       ("ampere", "mma.m16n8k16.f32.bf16.bf16.f32")])
def test_groups_of_zeros_in_the_vector_pass(arch, ins):
    """Groups whose products are all zero (causal attention's masked blocks) or cancel, from
    C = +0 and -0, with zeros of both signs among the inputs and a product that overflows beside
    them: against the Fraction reference."""
    eng = fpsim.engine(arch, ins)
    rng = np.random.default_rng(zlib.crc32(ins.encode()) + 2)
    M, N, K = 8, 40, 4 * eng.k
    A = engine_values(eng.a_format, rng, (M, K))
    B = engine_values(eng.b_format, rng, (K, N))
    A = np.where(np.arange(K)[None, :] >= np.arange(M)[:, None] * K // M, A, 0.0)  # causal
    A[1, :eng.k] = -0.0
    A[6], A[7] = 0.0, -0.0                     # rows of zeros: C's zero passes (or not)
    B[:eng.k, 3] = -0.0
    B[:, 4] = B[:, 5]                          # columns 4 and 5: the same terms, cancelling
    A[2, :2], B[:2, 4] = [1.0, -1.0], [1.0, 1.0]
    C = np.zeros((M, N))
    C[::2, ::3] = -0.0
    C[3, 7] = fpsim.quantize(np.array([3.0]), eng.c_format)[0]
    big = eng.a_format.max
    A[5, 0], B[0, 9] = big, eng.b_format.max        # beyond the f16/f32 range? either way
    got = eng.model.run(A[None], B[None], C[None], eng.a_format, eng.b_format)[0]
    assert_same(got, fused_gemm_ref(A, B, C, eng.model, eng.a_format, eng.b_format))
