"""What Hopper's FP8 tensor-core accumulation costs, and DeepSeek-V3's promotion fix.

    python3 -m benchmarks.demo_engine_accumulation [--quick] [--json PATH] [--plot PNG]

A GEMM of a 64 x K by a K x 64 matrix, K = 256 ... 16384, both standard normal rounded to E4M3
(fpsim's choice of distribution; DeepSeek-V3 section 3.3.2 does not give theirs), on:
Hopper's FP8 ``wgmma.m64n8k32.f32.e4m3.e4m3`` chained over K (13 kept fractional bits, each D cut
to 13 fraction bits and fed back as C), the same engine promoted to an FP32 register every 128
elements of K (``Accumulator("float32", chunk=128, inner=engine)``: DeepSeek-V3's N_C = 128), and
a float32 register (round-to-nearest after each product, as a CUDA-core loop).  Error: each
result against the exact dot product rounded once to 41 significant bits (``KulischAccumulator``,
error below 2**-41, negligible here); the
table gives the norm-wise relative error ||C - C_exact|| / ||C_exact|| and the median elementwise
relative error.  DeepSeek-V3 reports "a maximum relative error of nearly 2%" for K = 4096 on
H800 (section 3.3.2); --quick stops at K = 1024.
"""

from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import fpsim  # noqa: E402
import common  # noqa: E402

ENGINE = ("hopper", "wgmma.m64n8k32.f32.e4m3.e4m3")


def run(quick=False, seed=0):
    eng = fpsim.engine(*ENGINE)
    accs = {"hopper fp8 chained": eng,
            "hopper fp8 promoted every 128": fpsim.Accumulator("float32", chunk=128, inner=eng),
            "float32 register": fpsim.Accumulator("float32")}
    exact = fpsim.KulischAccumulator("e10m40")     # the exact sum rounded once to 41 bits
    rng = np.random.default_rng(seed)
    rows = []
    for e in range(8, 11 if quick else 15):
        k = 2 ** e
        A = fpsim.quantize(rng.standard_normal((64, k)), "float8_e4m3fn")
        B = fpsim.quantize(rng.standard_normal((k, 64)), "float8_e4m3fn")
        ref = fpsim.gemm(A, B, acc=exact, a_format="float8_e4m3fn", b_format="float8_e4m3fn")
        row = {"K": k}
        for name, acc in accs.items():
            c = fpsim.gemm(A, B, acc=acc, a_format="float8_e4m3fn",
                           b_format="float8_e4m3fn").astype(np.float64)
            nz = ref != 0
            row[name] = {"normwise": float(np.linalg.norm(c - ref) / np.linalg.norm(ref)),
                         "median": float(np.median(np.abs(c - ref)[nz] / np.abs(ref[nz])))}
        rows.append(row)
    return {"engine": list(ENGINE), "shape": "64 x K by K x 64", "rows": rows,
            "accumulators": list(accs)}


def table(result):
    names = result["accumulators"]
    out = ["| K | " + " | ".join(f"{n}: normwise, median" for n in names) + " |",
           "|---:|" + "---:|" * len(names)]
    for r in result["rows"]:
        out.append(f"| {r['K']} | " + " | ".join(
            f"{r[n]['normwise']:.2e}, {r[n]['median']:.2e}" for n in names) + " |")
    return "\n".join(out)


def plot(result, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    ks = [r["K"] for r in result["rows"]]
    for n in result["accumulators"]:
        ax.loglog(ks, [r[n]["normwise"] for r in result["rows"]], marker="o", label=n)
    ax.axvline(4096, color="grey", lw=0.5)
    ax.set_xlabel("K")
    ax.set_ylabel("||C - C_exact|| / ||C_exact||")
    ax.set_title("E4M3 GEMM 64 x K x 64: Hopper FP8 accumulation")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    common.main(sys.argv[1:], __doc__, run, table, "benchmarks/results/engine_accumulation.json",
                "K up to 1024", plot=plot)
