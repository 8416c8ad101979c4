"""Swamping in a narrow accumulator and the chunk-based fix (Wang et al. 2018, section 3).

    python benchmarks/demo_swamping.py [--quick] [--json PATH] [--plot PNG]

Sums N values drawn uniformly from [0, 1) and rounded to float8_e5m2 (a dot product with a vector
of ones) with a 1-6-9 accumulator: sequential, chunks of 64, adder tree (pairwise), and with a
float32 accumulator; prints the relative error against the exact sum (math.fsum of the values is
exact here: they are float64 multiples of 2**-17 far from overflow) for N = 2**6 .. 2**16.
Sequential 1-6-9 stops growing once the sum is about 2**10 times the addends (each addend is below
half an ulp: swamping); chunks of 64 and the tree keep the error near 1-6-9 precision.
"""

from __future__ import annotations

import math
import os
import sys

import ml_dtypes
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import fpsim  # noqa: E402
import common  # noqa: E402

ACCUMULATORS = {
    "1-6-9 sequential": fpsim.Accumulator("fp16_169"),
    "1-6-9 chunk 64": fpsim.Accumulator("fp16_169", chunk=64),
    "1-6-9 pairwise": fpsim.Accumulator("fp16_169", order="pairwise"),
    "fp32 sequential": fpsim.Accumulator("float32"),
}


def run(quick=False, seed=0):
    rng = np.random.default_rng(seed)
    exps = range(6, 13 if quick else 17)
    rows = []
    for e in exps:
        n = 2 ** e
        x = rng.random(n).astype(ml_dtypes.float8_e5m2)
        exact = math.fsum(x.astype(np.float64))
        ones = np.ones((n, 1), ml_dtypes.float8_e5m2)
        row = {"n": n, "exact": exact}
        for name, acc in ACCUMULATORS.items():
            s = float(fpsim.gemm(x[None, :], ones, acc=acc)[0, 0])
            row[name] = {"sum": s, "relative_error": abs(s - exact) / exact}
        rows.append(row)
    return {"demo": "swamping", "seed": seed, "rows": rows}


def table(result) -> str:
    names = list(ACCUMULATORS)
    out = ["| N | exact sum | " + " | ".join(f"{n} rel. error" for n in names) + " |",
           "|---:|---:|" + "---:|" * len(names)]
    for r in result["rows"]:
        out.append(f"| {r['n']} | {r['exact']:.1f} | "
                   + " | ".join(f"{r[n]['relative_error']:.2e}" for n in names) + " |")
    return "\n".join(out)


def plot(result, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    ns = [r["n"] for r in result["rows"]]
    for name in ACCUMULATORS:
        err = [max(r[name]["relative_error"], 1e-9) for r in result["rows"]]
        ax.loglog(ns, err, marker="o", label=name)
    ax.set_xlabel("N (values summed)")
    ax.set_ylabel("relative error (floor 1e-9)")
    ax.set_title("Swamping in a 1-6-9 accumulator")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    return common.main(argv, __doc__, run, table, "benchmarks/results/swamping.json",
                       "N up to 2**12", plot=plot)


if __name__ == "__main__":
    main()
