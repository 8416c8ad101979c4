"""Simulated multiply-accumulates per second of fpsim.gemm and fpsim.conv2d, beside numpy float32
matmul and the NumPy per-k loop a QPyTorch-style user writes, in one run.

    python benchmarks/bench_gemm.py [--quick] [--json PATH]

Configuration (Wang et al. 2018): float8_e5m2 operands, exact products, a 1-6-9 accumulator with
chunks of 64 (rne).  The NumPy loop keeps an M x N float32 accumulator, adds the outer product of
step k and quantizes the whole accumulator to 1-6-9 after each step (fpsim.quantize, the fastest
quantizer there is), with the same chunking; the "same" column says whether its result equals
fpsim's bit for bit.  Also: a Kulisch (exact) GEMM into float32, and conv2d against gemm on the
same shapes of its lowered GEMM.  Each figure is the median over the repeats; JSON keeps min/max.
"""

from __future__ import annotations

import os
import sys

import ml_dtypes
import numba
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import fpsim  # noqa: E402
from fpsim.nn.functional import conv2d as numpy_conv2d  # noqa: E402
import common  # noqa: E402
from common import machine, rate  # noqa: E402

ACC = fpsim.Accumulator("fp16_169", chunk=64)
KULISCH = fpsim.KulischAccumulator("float32")
TARGET_MACS = 4e9          # issue 3: 2 threads, 1-6-9 chunk 64
TARGET_VS_LOOP = 10.0
TARGET_KULISCH = 2e8
TARGET_CONV_RATIO = 1.5


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


def run(quick=False):
    sizes = (128,) if quick else (256, 512)
    repeats = 1 if quick else 3
    rng = np.random.default_rng(0)
    max_threads = min(2, numba.config.NUMBA_NUM_THREADS)
    before = numba.get_num_threads()
    rows = []
    try:
        for n in sizes:
            A = rng.standard_normal((n, n)).astype(ml_dtypes.float8_e5m2)
            B = rng.standard_normal((n, n)).astype(ml_dtypes.float8_e5m2)
            A32, B32 = A.astype(np.float32), B.astype(np.float32)
            macs = n ** 3
            blas = rate(lambda: A32 @ B32, macs, repeats)
            loop_result = numpy_loop(A32, B32, ACC.fmt, ACC.chunk)
            loop = rate(lambda: numpy_loop(A32, B32, ACC.fmt, ACC.chunk), macs,
                        max(1, repeats - 2))
            for threads in range(1, max_threads + 1):
                numba.set_num_threads(threads)
                result = fpsim.gemm(A, B, acc=ACC)
                fp = rate(lambda: fpsim.gemm(A, B, acc=ACC), macs, repeats)
                rows.append({"case": "gemm e5m2 -> 1-6-9 chunk 64", "size": n, "threads": threads,
                             "fpsim": fp, "numpy_f32_matmul": blas, "numpy_per_k_loop": loop,
                             "same_as_loop": bool(np.array_equal(result, loop_result)),
                             "vs_loop": fp["median"] / loop["median"],
                             "vs_matmul": fp["median"] / blas["median"]})
                kul = rate(lambda: fpsim.gemm(A, B, acc=KULISCH), macs, repeats)
                rows.append({"case": "gemm e5m2 -> Kulisch -> float32", "size": n,
                             "threads": threads, "fpsim": kul, "numpy_f32_matmul": blas,
                             "vs_matmul": kul["median"] / blas["median"]})
        # conv2d against the gemm of its own lowering (same MAC count, same accumulator)
        nb, c, hw, f = (2, 16, 8, 32) if quick else (8, 64, 16, 128)
        x = rng.standard_normal((nb, c, hw, hw)).astype(ml_dtypes.float8_e5m2)
        w = rng.standard_normal((f, c, 3, 3)).astype(ml_dtypes.float8_e5m2)
        macs = nb * f * hw * hw * c * 9
        wm = w.reshape(f, -1)
        cols = rng.standard_normal((nb, c * 9, hw * hw)).astype(ml_dtypes.float8_e5m2)
        x32, w32 = x.astype(np.float32), w.astype(np.float32)
        npconv = rate(lambda: numpy_conv2d(x32, w32, padding=1), macs, repeats)
        for threads in range(1, max_threads + 1):
            numba.set_num_threads(threads)
            cv = rate(lambda: fpsim.conv2d(x, w, padding=1, acc=ACC), macs, repeats)
            gm = rate(lambda: fpsim.gemm(wm, cols, acc=ACC), macs, repeats)
            rows.append({"case": "conv2d 3x3 e5m2 -> 1-6-9 chunk 64", "size": f"{nb}x{c}x{hw}x{hw}",
                         "threads": threads, "fpsim": cv, "gemm_same_macs": gm,
                         "conv_time_over_gemm_time": gm["median"] / cv["median"],
                         "numpy_f32_conv": npconv, "vs_numpy_conv": cv["median"] / npconv["median"]})
    finally:
        numba.set_num_threads(before)
    return {"benchmark": "gemm", "repeats": repeats, "machine": machine(), "rows": rows,
            "targets": {"mac_per_s_2_threads": TARGET_MACS, "vs_numpy_loop": TARGET_VS_LOOP,
                        "kulisch_mac_per_s": TARGET_KULISCH,
                        "conv_time_over_gemm_time": TARGET_CONV_RATIO}}


def table(result) -> str:
    out = ["| case | size | threads | fpsim GMAC/s | numpy f32 matmul GMAC/s | NumPy per-k loop "
           "GMAC/s | fpsim / loop | same bits as loop |",
           "|---|---|---:|---:|---:|---:|---:|---|"]
    for r in result["rows"]:
        if "gemm_same_macs" in r:
            out.append(f"| {r['case']} | {r['size']} | {r['threads']} | "
                       f"{r['fpsim']['median'] / 1e9:.2f} | gemm of the lowering: "
                       f"{r['gemm_same_macs']['median'] / 1e9:.2f} | | conv time / gemm time "
                       f"{r['conv_time_over_gemm_time']:.2f} | |")
            continue
        loop = r.get("numpy_per_k_loop")
        out.append(f"| {r['case']} | {r['size']}^3 | {r['threads']} | "
                   f"{r['fpsim']['median'] / 1e9:.2f} | {r['numpy_f32_matmul']['median'] / 1e9:.1f} | "
                   + (f"{loop['median'] / 1e9:.3f} | {r['vs_loop']:.0f}x | "
                      f"{'yes' if r['same_as_loop'] else 'NO'} |" if loop else " | | |"))
    return "\n".join(out)


def suite_rows(result):
    """Rows for ``python -m benchmarks``: (case, threads, unit, fpsim, reference name, reference)."""
    out = []
    for r in result["rows"]:
        size = f"{r['size']}^3" if isinstance(r["size"], int) else r["size"]
        case = f"{r['case']}, {size}"
        if "gemm_same_macs" in r:
            out.append((case, r["threads"], "MAC/s", r["fpsim"], "numpy float32 conv (im2col + "
                        "matmul)", r["numpy_f32_conv"]))
            continue
        out.append((case, r["threads"], "MAC/s", r["fpsim"], "numpy float32 matmul",
                    r["numpy_f32_matmul"]))
        if "numpy_per_k_loop" in r:
            out.append((case, r["threads"], "MAC/s", r["fpsim"], "NumPy per-k loop",
                        r["numpy_per_k_loop"]))
    return out


def main(argv=None):
    return common.main(argv, __doc__, run, table, "benchmarks/results/gemm.json",
                       "128^3 and a small conv, 1 repeat")


if __name__ == "__main__":
    main()
