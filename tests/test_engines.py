"""Matrix engines (issue 13): the fused dot-add kernel against the exact-rational reference
(tests/reference_fused.py), the published answers of Fasi et al.'s discriminating tests for V100,
T4 and A100, and the GEMM and promotion semantics built on one instruction."""

import math

import numpy as np
import pytest

import fpsim
from fpsim.probe import dot16
from reference_fused import fused_gemm_ref

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
           ("rtx_blackwell", "mma.m16n8k32.f32.e5m2.e4m3.f32")]


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
    return fpsim.quantize(x, fmt)                          # tf32 (e8m10) values


@pytest.mark.parametrize("arch, ins", PRESETS)
def test_engine_gemm_matches_the_fraction_reference(arch, ins):
    eng = fpsim.engine(arch, ins)
    rng = np.random.default_rng(abs(hash(ins)) % 2**32)
    K = 2 * eng.k + 3                                      # not a multiple of k: zero padding
    A = engine_values(eng.a_format, rng, (3, K))
    B = engine_values(eng.b_format, rng, (K, 4))
    got = fpsim.gemm(A, B, acc=eng)
    assert got.dtype == np.float32               # gemm's rule: float32 holds f16 and f32 results
    m = eng.model
    Kp = K + (-K) % eng.k
    Ap = np.concatenate([A, np.zeros((3, Kp - K))], axis=1)
    Bp = np.concatenate([B, np.zeros((Kp - K, 4))], axis=0)
    want = fused_gemm_ref(Ap, Bp, np.zeros((3, 4)), m.group, m.frac_bits, m.cut, m.c_aligned,
                          -1, m.register, m.rounding, eng.a_format.emin, eng.b_format.emin,
                          m.c_emin, m.zero_exponent, m.overflow == "inf")
    want = np.array(want)
    same = (got.astype(np.float64) == want) | (np.isnan(got) & np.isnan(want))
    assert same.all(), (got[~same], want[~same])


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
    want = np.array(fused_gemm_ref(A, B, C, 5, frac, cut, c_aligned, carry, model.register,
                                   "rne", f.emin, f.emin, model.register.emin, zero, False))
    same = (got == want) | (np.isnan(got) & np.isnan(want))
    assert same.all(), (got[~same], want[~same])
    assert np.array_equal(np.signbit(got[got == 0]), np.signbit(want[want == 0]))


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


def test_promotion_is_chunked_accumulation_with_the_engine_inside():
    eng = fpsim.engine("hopper", "wgmma.m64n8k32.f32.e4m3.e4m3")
    rng = np.random.default_rng(4)
    f = fpsim.format("float8_e4m3fn")
    A = fpsim.quantize(rng.standard_normal((5, 300)), f)
    B = fpsim.quantize(rng.standard_normal((300, 7)), f)
    acc = fpsim.Accumulator("float32", chunk=128, inner=eng)
    got = fpsim.gemm(A, B, acc=acc)
    total = np.zeros((5, 7))
    for k0 in range(0, 300, 128):
        part = fpsim.gemm(A[:, k0:k0 + 128], B[k0:k0 + 128], acc=eng).astype(np.float64)
        total = fpsim.add(total, part, "float32", dtype=np.float64)
    assert np.array_equal(got, total)


def test_bad_engines_and_operands_say_what_is_valid():
    with pytest.raises(ValueError, match="arch must be one of"):
        fpsim.engine("pascal", "mma.m8n8k4.f32.f16.f16.f32")
    with pytest.raises(ValueError, match="valid: mma.m8n8k4"):
        fpsim.engine("volta", "mma.m16n8k16.f32.bf16.bf16.f32")
    with pytest.raises(ValueError, match="not modelled yet"):
        fpsim.engine("cdna3", "mfma.f32_32x32x8_f16")
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
