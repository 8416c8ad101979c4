"""Run under NUMBA_ENABLE_CUDASIM=1 (Numba's CUDA simulator) or on a real GPU by test_cuda.py:
every device="cuda" kernel against device="cpu" on small shapes; prints one line per case and
exits non-zero at the first difference in value or sign."""

import sys
import warnings

import ml_dtypes
import numpy as np

import fpsim
from fpsim.gemm import gemm_values
from fpsim.kernels.rounding import MODE
from fpsim.quantize import block_quantize


def same(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return a.shape == b.shape and np.array_equal(np.isnan(a), np.isnan(b)) and \
        np.array_equal(a[~np.isnan(a)], b[~np.isnan(b)]) and \
        np.array_equal(np.signbit(a[~np.isnan(a)]), np.signbit(b[~np.isnan(b)]))


def cases():
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(300) * 2.0 ** rng.integers(-20, 12, 300)).astype(np.float32)
    x[:6] = [np.inf, -np.inf, np.nan, 0.0, -0.0, 1e-45]
    words = rng.integers(0, 2**63, 300, dtype=np.uint64)
    for fmt, kw in [("e4m3fn", {}), ("e5m2", {"rounding": "rtz"}), ("float16", {"rounding": "rup"}),
                    ("e2m1", {}), ("bfloat16", {"rounding": "rna"}),
                    ("e4m3", {"rounding": "sr", "seed": 3}),
                    ("e5m2", {"rounding": "sr", "sr_bits": 4, "seed": 4}),
                    ("fp16_169", {"rounding": "sr", "random_words": words})]:
        yield f"quantize {fmt} {kw.get('rounding', 'rne')}", \
            lambda device, fmt=fmt, kw=kw: fpsim.quantize(x, fmt, device=device, **kw)
    for fmt, kw in [(fpsim.FixedFormat(4, 6), {}), (fpsim.FixedFormat(3, 9), {"rounding": "sr",
                                                                             "seed": 6}),
                    (fpsim.FixedFormat(5, 5, saturate=False), {"rounding": "rtz"}),
                    (fpsim.FixedFormat(4, 8), {"rounding": "sr", "sr_bits": 3, "seed": 1})]:
        yield f"quantize {fmt} {kw.get('rounding', 'rne')}", \
            lambda device, fmt=fmt, kw=kw: fpsim.quantize(x, fmt, device=device, **kw)
    for fmt, kw in [(fpsim.Radix4Format(), {}), (fpsim.Radix4Format(), {"rounding": "rto"}),
                    (fpsim.Radix4Format(), {"rounding": "sr", "seed": 2}),
                    (fpsim.Radix4Format(), {"rounding": "sr", "sr_bits": 5, "seed": 3}),
                    ("float8_e8m0fnu", {}), ("float8_e8m0fnu", {"rounding": "rup"}),
                    ("float8_e8m0fnu", {"rounding": "sr", "random_words": words}),
                    ("posit8", {}), ("posit16", {}), (fpsim.PositFormat(12, 0), {}),
                    (fpsim.PositFormat(6, 3), {})]:
        yield f"quantize {fmt} {kw.get('rounding', 'rne')}", \
            lambda device, fmt=fmt, kw=kw: fpsim.quantize(x, fmt, device=device, **kw)
    xp = fpsim.decode(np.arange(2**12), fpsim.PositFormat(12, 1))   # every value of posit<12, 1>
    xp = np.concatenate([xp, (xp[1:] + xp[:-1]) / 2])               # and the midpoints (ties)
    yield "quantize posit<11, 1> at every tie", lambda device: fpsim.quantize(
        xp, fpsim.PositFormat(11, 1), device=device)
    yield from block_cases(rng)
    yield "quantize float64 input e11m20 rdn", lambda device: fpsim.quantize(
        x.astype(np.float64) * 3, "e11m20", rounding="rdn", device=device)
    A = rng.standard_normal((5, 23)).astype(ml_dtypes.float8_e5m2)
    B = rng.standard_normal((23, 7)).astype(ml_dtypes.float8_e5m2)
    A3 = rng.standard_normal((2, 5, 23)).astype(ml_dtypes.float8_e5m2)
    A[0, :4] = [2.0**-16, -2.0**-16, 57344, -57344]
    accs = {
        "float16": fpsim.Accumulator("float16"),
        "1-6-9 chunk 4": fpsim.Accumulator("fp16_169", chunk=4),
        "float16 pairwise": fpsim.Accumulator("float16", order="pairwise"),
        "bfloat16 pairwise chunk 5": fpsim.Accumulator("bfloat16", order="pairwise", chunk=5),
        "float32": fpsim.Accumulator("float32"),
        "e5m4 rtz": fpsim.Accumulator(fpsim.FloatFormat(5, 4), rounding="rtz"),
        "float16 rdn chunk 3": fpsim.Accumulator("float16", rounding="rdn", chunk=3),
        "float16 sr": fpsim.Accumulator("float16", rounding="sr"),
        "float16 sr 6 bits pairwise": fpsim.Accumulator("float16", rounding="sr", sr_bits=6,
                                                        order="pairwise"),
        "e4m3 saturating": fpsim.Accumulator(fpsim.FloatFormat(4, 3, saturate=True)),
    }
    for name, acc in accs.items():
        yield f"gemm {name}", lambda device, acc=acc: fpsim.gemm(A, B, acc=acc, seed=9,
                                                                device=device)
    yield "gemm batched sr", lambda device: fpsim.gemm(
        A3, B, acc=fpsim.Accumulator("float16", rounding="sr", chunk=8), seed=2, device=device)
    yield "gemm bfloat16 products", lambda device: fpsim.gemm(
        A, B, acc="float32", product="bfloat16", product_rounding="rtz", device=device)
    x4 = rng.standard_normal((2, 3, 5, 5)).astype(ml_dtypes.float8_e4m3fn)
    w4 = rng.standard_normal((4, 3, 3, 3)).astype(ml_dtypes.float8_e4m3fn)
    dy = rng.standard_normal((2, 4, 5, 5)).astype(ml_dtypes.float8_e5m2)
    acc = fpsim.Accumulator("fp16_169", chunk=8)
    yield "conv2d", lambda device: fpsim.conv2d(x4, w4, padding=1, acc=acc, device=device)
    yield "conv2d_backward_data", lambda device: fpsim.conv2d_backward_data(
        dy, w4, x4.shape, padding=1, acc=acc, device=device)
    yield "conv2d_backward_weight", lambda device: fpsim.conv2d_backward_weight(
        dy, x4, w4.shape, padding=1, acc=acc, device=device)
    for name, acc in [("fixed <8, 8> saturating", fpsim.Accumulator(fpsim.FixedFormat(8, 8))),
                      ("fixed <4, 10> rtz", fpsim.Accumulator(fpsim.FixedFormat(4, 10),
                                                               rounding="rtz")),
                      ("fixed <6, 12> sr", fpsim.Accumulator(fpsim.FixedFormat(6, 12),
                                                             rounding="sr"))]:
        yield f"gemm {name}", lambda device, acc=acc: fpsim.gemm(A3, B, acc=acc, seed=4,
                                                                device=device)
    big = A.astype(np.float64)
    big[1, :3] = [2.0**15, -2.0**15, 2.0**-16]
    for name, acc, a in [
            ("posit16 register", fpsim.Accumulator("posit16"), A3),
            ("posit<8, 0> register", fpsim.Accumulator(fpsim.PositFormat(8, 0)), A3),
            ("Kulisch into float32", fpsim.KulischAccumulator("float32"), A3),
            ("Kulisch into bfloat16 rtz", fpsim.KulischAccumulator("bfloat16", rounding="rtz"),
             big),
            ("Kulisch 40 bits flagged", fpsim.KulischAccumulator("float32", width=40,
                                                                 overflow="flag"), big),
            ("Kulisch quire posit16", fpsim.KulischAccumulator("posit16"), A3),
            ("Kulisch into fixed <6, 10>", fpsim.KulischAccumulator(fpsim.FixedFormat(6, 10)),
             big)]:
        yield f"gemm {name}", lambda device, acc=acc, a=a: fpsim.gemm(
            a, B, acc=acc, a_format="e5m2", device=device)
    yield "gemm Kulisch e5m2 products", lambda device: fpsim.gemm(
        A, B, acc=fpsim.KulischAccumulator("float32"), product="e5m2", device=device)
    yield "conv2d fixed <8, 8>", lambda device: fpsim.conv2d(
        x4, w4, padding=1, acc=fpsim.Accumulator(fpsim.FixedFormat(8, 8)), device=device)
    yield from engine_cases(rng)


def block_cases(rng):
    """Block formats of every layout (runs along either axis, tiles with edge tiles, one scale
    per tensor over several of the CPU's chunks) and both kinds of scale, with blocks holding a
    NaN, an Inf, zeros only, and magnitudes beyond the scales' range."""
    x = rng.standard_normal((6, 70)) * 2.0 ** rng.integers(-30, 30, (6, 70))
    x[0, :40] = 0.0                                       # an all-zero run (and part of a tile)
    x[1, 3], x[2, 50], x[3, 33] = np.nan, np.inf, -2.0**200
    x[4, 1:4] = [2.0**-140, -2.0**-149, 1e-300]
    t3 = rng.standard_normal((2, 20, 37)) * 2.0 ** rng.integers(-8, 8, (2, 20, 37))
    t3[1, 17, 36] = np.nan
    big = rng.standard_normal(40000)          # three of the CPU's chunks; the largest in the last
    big[-1] = 1000.0
    for fmt, xs, kw in [("mxfp8_e4m3", x, {}), ("mxfp8_e5m2", x, {"axis": 0}),
                        ("mxfp4_e2m1", x, {"rounding": "sr", "seed": 2}),
                        ("mxfp6_e3m2", x, {"rounding": "sr", "sr_bits": 4, "seed": 3}),
                        ("mxint8", x, {"rounding": "rtz"}), ("nvfp4", x, {}),
                        ("nvfp4", x, {"rounding": "sr", "seed": 4, "axis": 0}),
                        ("nvfp4_16x16", t3, {"rounding": "rup"}), ("bm8_fwd", t3, {}),
                        ("bm4_bwd", t3, {"rounding": "sr", "seed": 5}),
                        ("fp8_tile_1x128", x, {"rounding": "rdn"}),
                        ("bm6_fwd", t3, {"rounding": "rna"}),
                        (fpsim.BlockFormat(fpsim.format("e2m3"), block=None,
                                           scale_format=fpsim.format("float16")), x, {}),
                        ("flex16+5", big, {}),
                        ("nvfp4", x.astype(np.float32), {}),         # the CPU's float32 lanes
                        ("mxfp8_e4m3", x.astype(np.float32), {}),
                        ("flex16+5", x, {"rounding": "sr", "seed": 6})]:
        yield f"quantize {fmt} {kw}", lambda device, fmt=fmt, xs=xs, kw=kw: fpsim.quantize(
            xs, fmt, device=device, **kw)
    tiles38 = fpsim.BlockFormat(fpsim.format("e3m2"), block=(3, 8), scale_min=-20, scale_max=20)
    for f, xs, axis in [("mxfp8_e4m3", x, 0), (tiles38, t3, None), ("flex16+5", x, None),
                        ("nvfp4", x, -1), ("nvfp4_16x16", t3, None)]:
        f = fpsim.format(f)           # the scales (int64 exponents, or float64 values)
        yield f"block scales {f}", lambda device, f=f, xs=xs, axis=axis: block_quantize(
            xs, f, axis, MODE["rne"], 0, np.uint64(0), device=device)[1]


def engine_values(fmt, rng, shape):
    """Values of fmt: wide exponents, zeros, the largest and smallest magnitudes, and Inf/NaN
    where fmt has them."""
    if fmt.bits > 16:                            # wide formats: spread exponents
        finite = fpsim.quantize(rng.standard_normal(4000) * 2.0 ** rng.integers(-60, 60, 4000),
                                fmt)
    else:
        v = fmt.values()
        finite = v[np.isfinite(v)]
    x = rng.choice(finite, shape)
    flat = x.reshape(-1)
    flat[rng.random(flat.size) < 0.1] = 0.0
    flat[:3] = [finite.max(), finite.min(), finite[finite > 0].min()]
    return x


def engine_cases(rng):
    """Every engine model (fused dot-adds of each kind, FMA chains, pairwise groups) with
    adversarial operands: K not a multiple of k (padded), batches, Inf and NaN, products beyond
    the register, subnormals."""
    import dataclasses
    for arch, ins in [("hopper", "wgmma.m64n8k32.f32.e4m3.e4m3"),   # 13 bits, float32 lanes
                      ("volta", "mma.m8n8k4.f16.f16.f16.f16"),      # float16 register, rne
                      ("ampere", "mma.m16n8k16.f32.bf16.bf16.f32"),  # split k16
                      ("cdna3", "mfma.f32_32x32x16_fp8_bf8"),       # two lanes, C late
                      ("cdna3", "mfma.f32_32x32x8_bf16"),           # product overflow
                      ("cdna2", "mfma.f32_16x16x16f16"),            # pairwise, flush to zero
                      ("cdna1", "mfma.f32_32x32x2f32"),             # FMA chain, float32
                      ("ampere", "mma.m8n8k4.f64.f64.f64.f64")]:    # FMA chain, float64
        eng = fpsim.engine(arch, ins)
        A = engine_values(eng.a_format, rng, (2, 5, 2 * eng.k + 3))
        B = engine_values(eng.b_format, rng, (2 * eng.k + 3, 6))
        if eng.a_format.bits <= 16:              # Inf where the format has one, else NaN
            A[0, 1, 2] = np.inf if eng.a_format.specials == "ieee" else np.nan
            B[3, 4] = np.nan
        yield f"engine {arch} {ins}", lambda device, eng=eng, A=A, B=B: fpsim.gemm(
            A, B, acc=eng, device=device)
    eng = fpsim.engine("blackwell", "tcgen05.mma.m128n8k64.block16.f32.e2m1.e2m1.ue4m3")
    A = engine_values(eng.a_format, rng, (3, 80))
    B = engine_values(eng.b_format, rng, (80, 4))
    sa = engine_values(eng.scale_format, rng, (3, 5))
    sb = engine_values(eng.scale_format, rng, (5, 4))
    yield "engine blackwell block16 e2m1 (exact runs of 16)", lambda device: fpsim.gemm(
        A, B, acc=eng, scale_a=np.abs(sa), scale_b=np.abs(sb), device=device)
    base = fpsim.engine("hopper", "wgmma.m64n8k32.f32.e4m3.e4m3")
    for kw in (dict(group=5, frac_bits=10, cut="rdn", carry_bits=2, c_aligned=False),
               dict(group=6, frac_bits=7, cut="rne", lanes=2, register=fpsim.format("e5m6"),
                    rounding="rne", overflow="format", zero_exponent=-20)):
        model = fpsim.FusedDotAdd(**kw)
        eng = dataclasses.replace(base, model=model, k=model.group)
        A = engine_values(eng.a_format, rng, (4, 17))
        B = engine_values(eng.b_format, rng, (17, 7))
        yield f"engine designed {kw}", lambda device, eng=eng, A=A, B=B: fpsim.gemm(
            A, B, acc=eng, device=device)
    A = engine_values(base.a_format, rng, (2, 5, 200))
    B = engine_values(base.b_format, rng, (200, 6))
    for chunk, outer, mode in [(128, "float32", "rne"), (48, "bfloat16", "rtz")]:
        acc = fpsim.Accumulator(outer, chunk=chunk, rounding=mode, inner=base)
        yield f"promoted engine, chunk {chunk} into {outer} {mode}", \
            lambda device, acc=acc: fpsim.gemm(A, B, acc=acc, device=device)
    acc = fpsim.Accumulator("float32", chunk=128, inner=base)          # DeepSeek-V3's recipe
    da, db = rng.random((2, 5, 2)) + 0.5, rng.random((2, 6)) + 0.5
    yield "promoted engine with per-chunk dequantization", lambda device: gemm_values(
        A, B, base.a_format, base.b_format, acc, dequant=(da, db), device=device)
    acc = fpsim.Accumulator("float32", chunk=16, inner=fpsim.Accumulator("float16",
                                                                         rounding="sr"))
    yield "promoted float16 sr inner", lambda device: fpsim.gemm(
        A, B, acc=acc, seed=5, a_format=base.a_format, b_format=base.b_format, device=device)


if __name__ == "__main__":
    warnings.simplefilter("ignore", RuntimeWarning)   # the simulator's Inf * 0 in Python
    n = 0
    for name, fn in cases():
        cpu, gpu = fn("cpu"), fn("cuda")
        if not same(cpu, gpu) or cpu.dtype != gpu.dtype:
            print(f"DIFFERENT: {name}")
            sys.exit(1)
        print(f"same: {name}")
        n += 1
    print(f"{n} cases equal")
