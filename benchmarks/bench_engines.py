"""GEMMs on matrix engines (issue 13) beside numpy's float32 matmul in the same run.

    python3 -m benchmarks.bench_engines [--quick] [--json PATH]
    python3 benchmarks/bench_engines.py [--quick] [--json PATH]

An M = N = K = 512 GEMM (128 with --quick) of standard-normal values rounded into each engine's
input format, through ``fpsim.gemm(A, B, acc=engine)`` (K walked in steps of the instruction's
k, each D the next C) and through ``Accumulator("float32", chunk=128, inner=engine)`` (DeepSeek-V3's
promotion), on every thread Numba has.  Target (issue 13): at least 1e9 MAC/s on the 2-core
machine.  Medians of the repeats (JSON: min, max too).
"""

from __future__ import annotations

import os
import sys

import numba
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import fpsim  # noqa: E402
import common  # noqa: E402
from common import machine, rate  # noqa: E402

CASES = [("hopper", "wgmma.m64n8k32.f32.e4m3.e4m3", False),
         ("hopper", "wgmma.m64n8k32.f32.e4m3.e4m3", True),
         ("ampere", "mma.m16n8k16.f32.bf16.bf16.f32", False),
         ("volta", "mma.m8n8k4.f32.f16.f16.f32", False),
         ("cdna3", "mfma.f32_32x32x16_fp8_fp8", False)]
TARGET = 1e9


def run(quick=False):
    n = 128 if quick else 512
    repeats = 2 if quick else 5
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((n, n)), rng.standard_normal((n, n))
    rows = []
    a32, b32 = x.astype(np.float32), y.astype(np.float32)
    ref = rate(lambda: a32 @ b32, n**3, repeats)
    for arch, ins, promoted in CASES:
        eng = fpsim.engine(arch, ins)
        A, B = fpsim.quantize(x, eng.a_format), fpsim.quantize(y, eng.b_format)
        acc = fpsim.Accumulator("float32", chunk=128, inner=eng) if promoted else eng
        r = rate(lambda: fpsim.gemm(A, B, acc=acc), n**3, repeats)
        rows.append({"arch": arch, "instruction": ins, "promoted": promoted, "n": n,
                     "mac_per_s": r, "numpy_float32_mac_per_s": ref})
    return {"machine": machine(), "threads": numba.get_num_threads(), "rows": rows,
            "target_mac_per_s": TARGET}


def table(result):
    out = ["| engine | GEMM | fpsim MAC/s | min..max | numpy float32 matmul MAC/s | target |",
           "|---|---|---:|---:|---:|---|"]
    for r in result["rows"]:
        m = r["mac_per_s"]
        met = "met" if m["median"] >= result["target_mac_per_s"] else "MISSED"
        how = "promoted every 128" if r["promoted"] else "chained"
        out.append(f"| {r['arch']} {r['instruction']} | {r['n']}^3 {how} | {m['median']:.3g} | "
                   f"{m['min']:.3g}..{m['max']:.3g} | "
                   f"{r['numpy_float32_mac_per_s']['median']:.3g} | >= 1e9: {met} |")
    return "\n".join(out)


if __name__ == "__main__":
    common.main(sys.argv[1:], __doc__, run, table, "benchmarks/results/engines.json",
                "128^3 instead of 512^3, 2 repeats")
