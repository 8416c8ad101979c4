"""Every parallel kernel of fpsim, called through the public API; one SHA-256 per result.

Run by tests/test_threads.py in a fresh process under NUMBA_NUM_THREADS=1 and =2 (Numba fixes
its thread pool at import, and pytest-xdist workers run with one thread): the two runs must print
the same lines.  Not a test module itself (no ``test_`` prefix); run it by hand to compare:

    NUMBA_NUM_THREADS=1 python tests/thread_cases.py > one.txt
    NUMBA_NUM_THREADS=2 python tests/thread_cases.py > two.txt
    diff one.txt two.txt

Sizes are chosen so that every kernel has several parallel tasks: elementwise kernels work in
chunks of 16384 elements (N below is 5 chunks and a tail), float GEMMs in tasks of 4 rows by 256
columns (M = 18 rows: 4 full row blocks and a 2-row tail; N = 600 columns: 3 tiles), Kulisch
GEMMs too (row by row where a block meets Inf or NaN), fixed-point and posit accumulators per
row, block formats per block group or tile.  Every stochastic call passes an explicit
``seed=`` (or ``random_words=``).

Output: a line ``threads <numba.get_num_threads()> <numba.config.NUMBA_NUM_THREADS> <layer>``
(the threading layer the parallel kernels ran on), then one
line ``<case> <sha256>`` per case (the hash covers dtype, shape and bytes of each result).
"""

import hashlib
import sys
import time

import ml_dtypes
import numpy as np

N = 5 * 16384 + 123          # elementwise: 6 chunks of the 16384-element parallel tasks
M, K, NC = 18, 64, 600       # GEMM: 5 row blocks (last one short) x 3 column tiles


def digest(*arrays):
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def cases():
    import fpsim

    rng = np.random.default_rng(20240601)
    # float64 values over ~60 binades: roundings near 1, far below the smallest quantum of the
    # narrow formats (the multi-word exact 'sr' path), overflows, signed zeros, specials
    x = rng.standard_normal(N) * np.exp2(rng.integers(-40, 20, N))
    x[rng.random(N) < 0.02] = 0.0
    x[::1001] = -0.0
    x[7::4099] = np.inf
    x[11::4111] = -np.inf
    x[13::4127] = np.nan
    finite = np.where(np.isfinite(x), x, 1.5)            # for formats without NaN/Inf codes
    x32 = (rng.standard_normal(N) * np.exp2(rng.integers(-8, 8, N))).astype(np.float32)
    words = rng.integers(0, 2**64, N, dtype=np.uint64)

    # --- element formats: quantize / encode / decode -------------------------------------------
    yield "quantize fast rne e4m3", fpsim.quantize(x, "e4m3")
    yield "quantize fast rtz float16", fpsim.quantize(x, "float16", rounding="rtz")
    yield "quantize fast sr e4m3", fpsim.quantize(x, "e4m3", rounding="sr", seed=11)
    yield "quantize fast sr_bits e5m2", fpsim.quantize(x, "e5m2", rounding="sr", sr_bits=4,
                                                       seed=12)
    x32w = np.where(np.arange(N) % 3 == 0, x, x32).astype(np.float32)   # wide range, float32
    yield "quantize float32 lanes sr e4m3", fpsim.quantize(x32w, "e4m3", rounding="sr", seed=24)
    yield "quantize float32 lanes sr_bits bfloat16", fpsim.quantize(
        x32w, "bfloat16", rounding="sr", sr_bits=8, seed=25)
    yield "quantize exact sr random_words", fpsim.quantize(x, "e4m3", rounding="sr",
                                                           random_words=words)
    yield "quantize exact sr_bits random_words", fpsim.quantize(x, "bfloat16", rounding="sr",
                                                                sr_bits=6, random_words=words)
    yield "quantize exact rne e11m51", fpsim.quantize(x, "e11m51")       # fails the fast path
    yield "quantize exact sr e11m51", fpsim.quantize(x, "e11m51", rounding="sr", seed=14)
    yield "encode rne e4m3fn", fpsim.encode(x, "e4m3fn")
    yield "encode sr e5m2", fpsim.encode(x, "e5m2", rounding="sr", seed=15)
    yield "encode sr_bits e4m3", fpsim.encode(x, "e4m3", rounding="sr", sr_bits=3, seed=16)
    yield "encode sr random_words", fpsim.encode(x, "e4m3", rounding="sr", random_words=words)
    yield "decode float16", fpsim.decode(words.astype(np.uint16), "float16")
    yield "decode e4m3fn", fpsim.decode(words.astype(np.uint8), "e4m3fn")
    yield "decode e11m51", fpsim.decode(words >> np.uint64(1), "e11m51")

    yield "quantize fixed rne", fpsim.quantize(x, "fixed<4,12>")
    yield "quantize fixed sr", fpsim.quantize(x, "fixed<4,12>", rounding="sr", seed=17)
    yield "quantize fixed sr_bits", fpsim.quantize(x, "fixed<4,12>", rounding="sr", sr_bits=5,
                                                   seed=18)
    yield "encode fixed sr", fpsim.encode(finite, "fixed<4,12>", rounding="sr", seed=19)
    yield "decode fixed", fpsim.decode(words.astype(np.uint16), "fixed<4,12>")
    yield "quantize posit16", fpsim.quantize(x, "posit16")
    yield "encode posit8", fpsim.encode(x, "posit8")
    yield "decode posit16", fpsim.decode(words.astype(np.uint16), "posit16")
    yield "quantize radix4 sr", fpsim.quantize(x, "fp4_130", rounding="sr", seed=20)
    yield "quantize radix4 phase1 rne", fpsim.quantize(x, "fp4_130_phase1")
    yield "encode radix4 sr", fpsim.encode(finite, "fp4_130", rounding="sr", seed=21)
    yield "decode radix4", fpsim.decode(words.astype(np.uint8) & np.uint8(15), "fp4_130")
    yield "quantize exponent sr", fpsim.quantize(x, "float8_e8m0fnu", rounding="sr", seed=22)
    yield "encode exponent rne", fpsim.encode(x, "float8_e8m0fnu")
    yield "decode exponent", fpsim.decode(words.astype(np.uint8), "float8_e8m0fnu")

    # --- block formats --------------------------------------------------------------------------
    xb = x.reshape(-1)[:256 * 320].reshape(256, 320)
    yield "mxfp8 axis -1 rne", fpsim.quantize(xb, "mxfp8_e4m3", axis=-1)
    yield "mxfp8 axis 0 sr", fpsim.quantize(xb, "mxfp8_e4m3", axis=0, rounding="sr", seed=23)
    yield "mxfp8 axis 0 sr_bits", fpsim.quantize(xb, "mxfp8_e5m2", axis=0, rounding="sr",
                                                 sr_bits=4, seed=24)
    yield "mxfp8 encode axis 0", *fpsim.encode(xb, "mxfp8_e4m3", axis=0)
    yield "mxfp8 block_exponents axis -1", fpsim.block_exponents(xb, "mxfp8_e4m3", axis=-1)
    yield "nvfp4 value scales axis 0 sr", fpsim.quantize(xb, "nvfp4", axis=0, rounding="sr",
                                                         seed=29)
    yield "fp8 1x128 float32 scales encode", *fpsim.encode(xb, "fp8_tile_1x128", axis=-1)
    xt = finite[:3 * 200 * 130].reshape(3, 200, 130)
    yield "bm8_fwd tiles rne", fpsim.quantize(xt, "bm8_fwd")
    yield "bm8_fwd tiles sr", fpsim.quantize(xt, "bm8_fwd", rounding="sr", seed=25)
    yield "bm8_bwd tiles encode", *fpsim.encode(xt, "bm8_bwd")
    xf = finite * 2.0**-20
    yield "flex16+5 tensor rne", fpsim.quantize(xf, "flex16+5")
    yield "flex16+5 tensor sr", fpsim.quantize(xf, "flex16+5", rounding="sr", seed=26)
    yield "flex16+5 block_exponents", fpsim.block_exponents(xf, "flex16+5")

    # --- arithmetic units -----------------------------------------------------------------------
    a, b = x32, x32[::-1].copy()
    c = (rng.standard_normal(N)).astype(np.float32)
    yield "add rne float16", fpsim.add(a, b, "float16")
    yield "sub sr bfloat16", fpsim.sub(a, b, "bfloat16", rounding="sr", seed=27)
    yield "mul rtz e4m3", fpsim.mul(a, b, "e4m3", rounding="rtz")
    yield "div rne float16", fpsim.div(a, b, "float16")
    yield "div sr_bits float16", fpsim.div(a, b, "float16", rounding="sr", sr_bits=8, seed=28)
    yield "fma rne bfloat16", fpsim.fma(a, b, c, "bfloat16")
    yield "fma sr e5m2", fpsim.fma(a, b, c, "e5m2", rounding="sr", seed=29)
    yield "sqrt rne float16", fpsim.sqrt(np.abs(a), "float16")
    yield "sqrt sr e4m3", fpsim.sqrt(a, "e4m3", rounding="sr", seed=30)

    # --- GEMM -----------------------------------------------------------------------------------
    A = fpsim.quantize(rng.standard_normal((M, K)), "e4m3fn")
    B = fpsim.quantize(rng.standard_normal((K, NC)), "e4m3fn")
    A3 = fpsim.quantize(rng.standard_normal((3, M, K)), "e4m3fn")
    fmts = dict(a_format="e4m3fn", b_format="e4m3fn")
    Acc, Kul = fpsim.Accumulator, fpsim.KulischAccumulator
    gemms = {
        "lean float16 (float32 lanes)": dict(acc=Acc("float16")),
        "lean float32 (float64 lanes)": dict(acc=Acc("float32")),
        "lean chunked fp16_169": dict(acc=Acc("fp16_169", chunk=16)),
        "exact rtz float16": dict(acc=Acc("float16", rounding="rtz")),
        "exact rtz chunked": dict(acc=Acc("fp16_169", rounding="rtz", chunk=16)),
        "sr float16": dict(acc=Acc("float16", rounding="sr"), seed=31),
        "sr_bits float16": dict(acc=Acc("float16", rounding="sr", sr_bits=8), seed=32),
        "sr chunked": dict(acc=Acc("fp16_169", rounding="sr", chunk=16), seed=33),
        "pairwise float16": dict(acc=Acc("float16", order="pairwise")),
        "pairwise chunked sr": dict(acc=Acc("e5m7", order="pairwise", chunk=24, rounding="sr"),
                                    seed=34),
        "product e5m2": dict(acc=Acc("float32"), product="e5m2"),
        "product e4m3 rna out e5m2": dict(acc=Acc("float16", rounding="rna"), product="e4m3",
                                          out_format="e5m2"),
        "kulisch float32": dict(acc=Kul("float32")),
        "kulisch e5m2 rtz width 40": dict(acc=Kul("e5m2", rounding="rtz", width=40)),
        "kulisch posit16 quire": dict(acc=Kul("posit16")),
        "kulisch fixed": dict(acc=Kul("fixed<8,12>")),
        "fixed accumulator rne": dict(acc=Acc("fixed<8,12>")),
        "fixed accumulator sr": dict(acc=Acc("fixed<8,12>", rounding="sr"), seed=35),
        "posit accumulator": dict(acc=Acc("posit16")),
    }
    for name, kw in gemms.items():
        yield "gemm " + name, fpsim.gemm(A, B, **fmts, **kw)
    yield "gemm batched lean", fpsim.gemm(A3, B, acc=Acc("float16"), **fmts)
    yield "gemm batched sr", fpsim.gemm(A3, B, acc=Acc("float16", rounding="sr"), seed=36,
                                        **fmts)
    yield "gemm batched kulisch", fpsim.gemm(A3, B, acc=Kul("bfloat16"), **fmts)
    # e5m2 values over its whole range: the digits kernels (two digits: pair_task for whole
    # blocks, rows_task for the tail; bfloat16 products: six digits in rows_task)
    e5 = fpsim.format("e5m2").values()
    e5 = e5[np.isfinite(e5)]
    Aw, Bw = rng.choice(e5, (M, K)), rng.choice(e5, (K, NC))
    for name, kw in {"two digits": {}, "bfloat16 products": dict(product="bfloat16")}.items():
        yield "gemm kulisch wide range " + name, fpsim.gemm(
            Aw, Bw, acc=Kul("float32"), a_format="e5m2", b_format="e5m2", **kw)
    W = fpsim.quantize(rng.standard_normal((M, K)), "fp16_169")         # 20-bit products
    V = fpsim.quantize(rng.standard_normal((K, NC)), "fp16_169")
    yield "gemm round to odd fp16_169 x fp16_169", fpsim.gemm(
        W, V, acc=Acc("fp16_169", chunk=16), a_format="fp16_169", b_format="fp16_169")
    big = fpsim.quantize(rng.standard_normal((M, K)) * 2.0**10, "e5m2")   # sums may overflow
    yield "gemm unbounded float16 (may overflow)", fpsim.gemm(
        big, B, acc=Acc("float16"), a_format="e5m2", b_format="e4m3fn")
    hopper = fpsim.engine("hopper", "wgmma.m64n8k32.f32.e4m3.e4m3")   # the fused kernel
    E = fpsim.quantize(rng.standard_normal((18, 70)), "float8_e4m3fn")
    F = fpsim.quantize(rng.standard_normal((70, 600)), "float8_e4m3fn")
    yield "gemm hopper fp8 engine", fpsim.gemm(E, F, acc=hopper)
    yield "gemm hopper fp8 promoted", fpsim.gemm(E, F, acc=Acc("float32", chunk=32, inner=hopper))
    # by panels (fpsim.gemm.gemm_panels, PANEL_MIN lowered): 200 rows are 4 row panels on one
    # thread and 2 on two (64 rows per thread), 600 columns 3 column panels
    G = sys.modules["fpsim.gemm"]
    P = fpsim.quantize(rng.standard_normal((2, 200, K)), "e5m2").astype(ml_dtypes.float8_e5m2)
    Q = fpsim.quantize(rng.standard_normal((K, NC)), "e5m2").astype(ml_dtypes.float8_e5m2)
    panels = {"sr float16": dict(acc=Acc("float16", rounding="sr"), seed=38),
              "sr_bits pairwise": dict(acc=Acc("bfloat16", rounding="sr", sr_bits=6,
                                               order="pairwise"), seed=39),
              "kulisch": dict(acc=Kul("float32")),
              "hopper": dict(acc=fpsim.engine("hopper", "wgmma.m64n8k32.f32.e5m2.e5m2"))}
    for name, kw in panels.items():
        G.PANEL_MIN, keep = 0, G.PANEL_MIN
        try:
            C = fpsim.gemm(P, Q, **kw)
        finally:
            G.PANEL_MIN = keep
        yield "gemm by panels " + name, C

    # --- convolutions (im2col + batched GEMM) ---------------------------------------------------
    cx = fpsim.quantize(rng.standard_normal((2, 8, 18, 18)), "e4m3fn")
    cw = fpsim.quantize(rng.standard_normal((16, 8, 3, 3)), "e4m3fn")
    dy = fpsim.quantize(rng.standard_normal((2, 16, 18, 18)), "e5m2")
    conv_accs = {"lean": dict(acc=Acc("fp16_169", chunk=16)),
                 "sr": dict(acc=Acc("float16", rounding="sr"), seed=37),
                 "kulisch": dict(acc=Kul("float32"))}
    for name, kw in conv_accs.items():
        yield f"conv2d {name}", fpsim.conv2d(cx, cw, padding=1, x_format="e4m3fn",
                                             w_format="e4m3fn", **kw)
        yield f"conv2d_backward_data {name}", fpsim.conv2d_backward_data(
            dy, cw, cx.shape, padding=1, dy_format="e5m2", w_format="e4m3fn", **kw)
        yield f"conv2d_backward_weight {name}", fpsim.conv2d_backward_weight(
            dy, cx, cw.shape, padding=1, dy_format="e5m2", x_format="e4m3fn", **kw)
    yield "conv2d stride 2", fpsim.conv2d(cx, cw, stride=2, padding=1, acc=Acc("float32"),
                                          x_format="e4m3fn", w_format="e4m3fn")


def main():
    import numba

    start = time.perf_counter()
    lines = []
    for name, *results in cases():
        lines.append(f"{name.replace(' ', '_')} {digest(*results)}")
    print(f"threads {numba.get_num_threads()} {numba.config.NUMBA_NUM_THREADS} "
          f"{numba.threading_layer()}")
    print("\n".join(lines))
    print(f"{len(lines)} cases in {time.perf_counter() - start:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
