"""Simulated multiply-accumulates per second of fpsim.gemm for every kind of accumulator, beside
numpy's float32 matmul measured in the same run, and conv2d beside a numpy float32 convolution.

    python benchmarks/bench_gemm.py [--quick] [--json PATH]

Accumulator rows (issue 15's targets, at 1024^3; ``--quick``: 128^3): 8-bit (float8_e5m2) and
16-bit (bfloat16, float16) operands, exact products, into float accumulators with nearest rounding
(sequential and chunked), an adder tree, Kulisch (standard-normal data, where float64's FMA chain
is exact, and data times 2**U(-14, 12), where the digits kernels run) and fixed-point registers,
exact stochastic rounding and a matrix engine.  Each row's "vs matmul" is fpsim's MAC/s over
numpy's float32 matmul of the same shape, timed right before it; the target is 1/10 for float
accumulators with nearest rounding, 1/30 for the adder tree, Kulisch and fixed point, 1/50 for
stochastic rounding and engines.  "peak / (in + out)" is the peak of Python-side allocations during
one call (tracemalloc, which sees numpy arrays but not Numba's per-thread buffers) over the bytes
of A, B and C. The 1-6-9 chunk-64 row is also checked against the NumPy per-k loop a QPyTorch-style
user writes (same bits) at 256^3. conv2d rows: a 3x3 convolution and its two gradients beside a
numpy float32 im2col + matmul convolution. Each figure is the median of its repeats (one
for calls over 5 s); JSON keeps min/max, the thread count and the machine.
"""

from __future__ import annotations

import os
import sys
import time
import tracemalloc

import ml_dtypes
import numba
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import fpsim  # noqa: E402
from fpsim.nn.functional import conv2d as numpy_conv2d  # noqa: E402
import common  # noqa: E402
from common import machine, rate  # noqa: E402

ACC = fpsim.Accumulator("fp16_169", chunk=64)
WIDE = "wide range"   # data times 2**U(-14, 12) per element (no e5m2 overflow): digits kernels
E5M2, BF16, F16 = ml_dtypes.float8_e5m2, ml_dtypes.bfloat16, np.float16
# (case, operand dtype, accumulator, target share of numpy float32 matmul)
CASES = [
    ("e5m2 -> float16", E5M2, fpsim.Accumulator("float16"), 1 / 10),
    ("e5m2 -> float16 chunk 64", E5M2, fpsim.Accumulator("float16", chunk=64), 1 / 10),
    ("e5m2 -> bfloat16", E5M2, fpsim.Accumulator("bfloat16"), 1 / 10),
    ("e5m2 -> 1-6-9 chunk 64", E5M2, ACC, 1 / 10),
    ("e5m2 -> float32", E5M2, fpsim.Accumulator("float32"), 1 / 10),
    ("bfloat16 -> float32", BF16, fpsim.Accumulator("float32"), 1 / 10),
    ("float16 -> float32 chunk 64", F16, fpsim.Accumulator("float32", chunk=64), 1 / 10),
    ("e5m2 -> float16 adder tree", E5M2, fpsim.Accumulator("float16", order="pairwise"), 1 / 30),
    ("e5m2 -> Kulisch -> float32", E5M2, fpsim.KulischAccumulator("float32"), 1 / 30),
    (f"e5m2 {WIDE} -> Kulisch -> float32", E5M2, fpsim.KulischAccumulator("float32"), 1 / 30),
    ("e5m2 -> fixed <16, 16>", E5M2, fpsim.Accumulator(fpsim.FixedFormat(16, 16)), 1 / 30),
    ("e5m2 -> float16 sr", E5M2, fpsim.Accumulator("float16", rounding="sr"), 1 / 50),
    ("e4m3 -> hopper wgmma e4m3 chained", ml_dtypes.float8_e4m3fn,
     fpsim.engine("hopper", "wgmma.m64n8k32.f32.e4m3.e4m3"), 1 / 50),
]
SLOW_S = 5.0


def numpy_loop(A, B, fmt, chunk):
    """The per-k NumPy loop: quantize the whole accumulator after each step."""
    m, k = A.shape
    total = np.zeros((m, B.shape[1]), np.float32)
    for k0 in range(0, k, chunk):
        acc = np.zeros_like(total)
        for kk in range(k0, min(k, k0 + chunk)):
            acc = fpsim.quantize(acc + np.outer(A[:, kk], B[kk]), fmt)
        total = fpsim.quantize(total + acc, fmt)
    return total


def timed(fn, macs):
    """(MAC/s of fn: median/min/max, result): one warm-up call, then 3 timed calls, or none more
    when the warm-up took over SLOW_S seconds (its own time is the figure then; the caller has
    compiled the kernels on a small shape first)."""
    t0 = time.perf_counter()
    result = fn()
    first = time.perf_counter() - t0
    if first > SLOW_S:
        r = macs / first
        return {"median": r, "min": r, "max": r}, result
    return rate(fn, macs, 3), result


def peak_ratio(fn, nbytes):
    tracemalloc.start()
    try:
        fn()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return peak / nbytes


def run(quick=False):
    n = 128 if quick else 1024
    rng = np.random.default_rng(0)
    threads = numba.get_num_threads()
    rows = []
    for case, dt, acc, target in CASES:
        A, B = rng.standard_normal((2, n, n))
        if WIDE in case:
            A, B = (x * 2.0 ** rng.uniform(-14, 12, x.shape) for x in (A, B))
        A, B = A.astype(dt), B.astype(dt)
        A32, B32 = A.astype(np.float32), B.astype(np.float32)
        macs = n ** 3
        fpsim.gemm(A[:8, :64], B[:64, :8], acc=acc)            # compile
        blas = rate(lambda: A32 @ B32, macs, 5)
        fp, C = timed(lambda: fpsim.gemm(A, B, acc=acc), macs)
        nbytes = A.nbytes + B.nbytes + C.nbytes
        ratio = fp["median"] / blas["median"]
        rows.append({"case": case, "size": n, "threads": threads, "fpsim": fp,
                     "numpy_f32_matmul": blas, "vs_matmul": ratio, "target_vs_matmul": target,
                     "met": bool(ratio >= target),
                     "peak_over_in_out": peak_ratio(lambda: fpsim.gemm(A, B, acc=acc), nbytes)})
    # the per-k NumPy loop a user would write, same bits (slow: a smaller size)
    m = 64 if quick else 256
    A = rng.standard_normal((m, m)).astype(E5M2).astype(np.float32)
    B = rng.standard_normal((m, m)).astype(E5M2).astype(np.float32)
    loop_result = numpy_loop(A, B, ACC.fmt, ACC.chunk)
    loop = rate(lambda: numpy_loop(A, B, ACC.fmt, ACC.chunk), m ** 3, 1)
    fp = rate(lambda: fpsim.gemm(A, B, acc=ACC, a_format="e5m2", b_format="e5m2"), m ** 3, 3)
    same = bool(np.array_equal(fpsim.gemm(A, B, acc=ACC, a_format="e5m2", b_format="e5m2"),
                               loop_result))
    loop_row = {"case": "e5m2 -> 1-6-9 chunk 64 vs NumPy per-k loop", "size": m,
                "threads": threads, "fpsim": fp, "numpy_per_k_loop": loop,
                "vs_loop": fp["median"] / loop["median"], "same_as_loop": same}
    # conv2d forward and both gradients against numpy's float32 im2col + matmul convolution
    nb, c, hw, f = (2, 16, 8, 32) if quick else (8, 64, 16, 128)
    x = rng.standard_normal((nb, c, hw, hw)).astype(E5M2)
    w = rng.standard_normal((f, c, 3, 3)).astype(E5M2)
    g = rng.standard_normal((nb, f, hw, hw)).astype(E5M2)
    macs = nb * f * hw * hw * c * 9
    x32, w32 = x.astype(np.float32), w.astype(np.float32)
    npconv = rate(lambda: numpy_conv2d(x32, w32, padding=1), macs, 3)
    conv_rows = []
    for name, fn in (("conv2d", lambda: fpsim.conv2d(x, w, padding=1, acc=ACC)),
                     ("conv2d_backward_data", lambda: fpsim.conv2d_backward_data(
                         g, w, x.shape, padding=1, acc=ACC)),
                     ("conv2d_backward_weight", lambda: fpsim.conv2d_backward_weight(
                         g, x, w.shape, padding=1, acc=ACC))):
        cv = rate(fn, macs, 3)
        conv_rows.append({"case": f"{name} 3x3 e5m2 -> 1-6-9 chunk 64",
                          "size": f"{nb}x{c}x{hw}x{hw}, {f} filters", "threads": threads,
                          "fpsim": cv, "numpy_f32_conv": npconv,
                          "vs_numpy_conv": cv["median"] / npconv["median"],
                          "target_vs_numpy_conv": 1 / 10,
                          "met": bool(cv["median"] / npconv["median"] >= 1 / 10)})
    return {"benchmark": "gemm", "machine": machine(), "threads": threads, "rows": rows,
            "loop_row": loop_row, "conv_rows": conv_rows}


def _share(x):
    return f"1/{1 / x:.0f}" if x < 1 else f"{x:.2f}"


def table(result) -> str:
    out = ["| case | size | threads | fpsim GMAC/s | numpy f32 matmul GMAC/s | vs matmul | target "
           "| met | peak / (in + out) |", "|---|---|---:|---:|---:|---:|---:|---|---:|"]
    for r in result["rows"]:
        out.append(f"| {r['case']} | {r['size']}^3 | {r['threads']} | "
                   f"{r['fpsim']['median'] / 1e9:.3g} | {r['numpy_f32_matmul']['median'] / 1e9:.3g}"
                   f" | {_share(r['vs_matmul'])} | {_share(r['target_vs_matmul'])} | "
                   f"{'yes' if r['met'] else 'no'} | {r['peak_over_in_out']:.1f} |")
    r = result["loop_row"]
    out.append(f"| {r['case']} | {r['size']}^3 | {r['threads']} | {r['fpsim']['median'] / 1e9:.3g}"
               f" | per-k loop {r['numpy_per_k_loop']['median'] / 1e9:.3g} | {r['vs_loop']:.0f}x "
               f"the loop | | same bits: {'yes' if r['same_as_loop'] else 'NO'} | |")
    for r in result["conv_rows"]:
        out.append(f"| {r['case']} | {r['size']} | {r['threads']} | "
                   f"{r['fpsim']['median'] / 1e9:.3g} | numpy f32 conv "
                   f"{r['numpy_f32_conv']['median'] / 1e9:.3g} | {_share(r['vs_numpy_conv'])} | "
                   f"1/10 | {'yes' if r['met'] else 'no'} | |")
    return "\n".join(out)


def suite_rows(result):
    """Rows for ``python -m benchmarks``: (case, threads, unit, fpsim, reference name, reference)."""
    out = [(f"gemm {r['case']}, {r['size']}^3", r["threads"], "MAC/s", r["fpsim"],
            "numpy float32 matmul", r["numpy_f32_matmul"]) for r in result["rows"]]
    r = result["loop_row"]
    out.append((f"gemm {r['case']}, {r['size']}^3", r["threads"], "MAC/s", r["fpsim"],
                "NumPy per-k loop", r["numpy_per_k_loop"]))
    out += [(f"{r['case']}, {r['size']}", r["threads"], "MAC/s", r["fpsim"],
             "numpy float32 conv (im2col + matmul)", r["numpy_f32_conv"])
            for r in result["conv_rows"]]
    return out


def main(argv=None):
    return common.main(argv, __doc__, run, table, "benchmarks/results/gemm.json",
                       "128^3 and a small conv")


if __name__ == "__main__":
    main()
