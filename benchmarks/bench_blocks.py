"""Block quantization (MX, Block Minifloat, flex16+5) beside fpsim's plain e4m3 and gfloat's MX.

    python benchmarks/bench_blocks.py [--quick] [--json PATH]

2**24 float32 standard-normal values (a 4096 x 4096 matrix for the 48 x 48 BM tiles), rounded to
nearest-even.  Each row: fpsim's block quantize, fpsim's plain ``quantize(x, "float8_e4m3fn")`` in
the same run with the same thread count (the issue's target: block >= 0.5 x plain), and for MX
gfloat 0.5 two ways - its ``quantize_block`` called per block (the library's API; on 2**14
elements) and the same computation vectorised by hand (``compute_scale_amax`` per block from a
NumPy max, then one ``round_ndarray``; on 2**20 elements).  Medians of the repeats (JSON: min,
max too).
"""

from __future__ import annotations

import os
import sys

import gfloat
import numba
import numpy as np
from gfloat import formats as gf

sys.path.insert(0, os.path.dirname(__file__))
import fpsim  # noqa: E402
import common  # noqa: E402
from common import machine, rate  # noqa: E402

BLOCKS = {"mxfp8_e4m3": gf.format_info_mxfp8_e4m3, "mxint8": gf.format_info_mxint8,
          "mxfp4_e2m1": gf.format_info_mxfp4_e2m1, "bm8_fwd": None, "flex16+5": None}
TARGET = 0.5


def gfloat_per_block(fi, x):
    for row in x.reshape(-1, fi.k):
        gfloat.quantize_block(fi, row, gfloat.compute_scale_amax)


def gfloat_vectorised(fi, x):
    blocks = x.reshape(-1, fi.k)
    amax = np.abs(blocks).max(axis=1, keepdims=True)
    with np.errstate(divide="ignore"):
        e = np.floor(np.log2(np.where(amax == 0, 2.0 ** -127, amax))) - fi.etype.emax
    scale = np.exp2(np.clip(e, -127, 127))
    return gfloat.round_ndarray(fi.etype, blocks / scale, sat=True) * scale


def run(quick=False):
    n = 2**18 if quick else 2**24
    n_vec, n_loop = (2**14, 2**10) if quick else (2**20, 2**14)
    repeats = 2 if quick else 5
    rng = np.random.default_rng(0)
    x = rng.standard_normal(n).astype(np.float32)
    side = int(round(n ** 0.5))
    shaped = {"bm8_fwd": x.reshape(side, side)}
    x64 = x.astype(np.float64)
    rows = []
    before = numba.get_num_threads()
    try:
        for threads in range(1, min(2, numba.config.NUMBA_NUM_THREADS) + 1):
            numba.set_num_threads(threads)
            plain = rate(lambda: fpsim.quantize(x, "float8_e4m3fn"), n, repeats)
            for name, fi in BLOCKS.items():
                arr = shaped.get(name, x)
                fp = rate(lambda: fpsim.quantize(arr, name), n, repeats)
                row = {"format": name, "threads": threads, "fpsim": fp, "fpsim_e4m3": plain,
                       "vs_plain": fp["median"] / plain["median"],
                       "meets_target": fp["median"] / plain["median"] >= TARGET}
                if fi is not None:
                    gv = rate(lambda: gfloat_vectorised(fi, x64[:n_vec]), n_vec, repeats)
                    gl = rate(lambda: gfloat_per_block(fi, x64[:n_loop]), n_loop, 1)
                    same = np.array_equal(gfloat_vectorised(fi, x64[:n_vec]).reshape(-1),
                                          fpsim.quantize(x64[:n_vec], name))
                    row.update(gfloat_vectorised=gv, gfloat_quantize_block=gl, same_as_gfloat=same,
                               vs_gfloat_vectorised=fp["median"] / gv["median"],
                               vs_gfloat_quantize_block=fp["median"] / gl["median"])
                rows.append(row)
    finally:
        numba.set_num_threads(before)
    return {"benchmark": "blocks", "n": n, "repeats": repeats, "target_vs_plain": TARGET,
            "machine": machine(), "rows": rows}


def table(result) -> str:
    out = ["| format | threads | fpsim Melem/s | fpsim e4m3 Melem/s | block / plain "
           "| gfloat vectorised Melem/s | gfloat quantize_block Melem/s | fpsim / gfloat vec. |",
           "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in result["rows"]:
        g = r.get("gfloat_vectorised")
        gq = r.get("gfloat_quantize_block")
        out.append(f"| {r['format']} | {r['threads']} | {r['fpsim']['median'] / 1e6:.0f} | "
                   f"{r['fpsim_e4m3']['median'] / 1e6:.0f} | {r['vs_plain']:.2f} | "
                   f"{g['median'] / 1e6:.1f} | {gq['median'] / 1e6:.3f} | "
                   f"{r['vs_gfloat_vectorised']:.0f}x |" if g else
                   f"| {r['format']} | {r['threads']} | {r['fpsim']['median'] / 1e6:.0f} | "
                   f"{r['fpsim_e4m3']['median'] / 1e6:.0f} | {r['vs_plain']:.2f} | - | - | - |")
    return "\n".join(out)


def suite_rows(result):
    """Rows for ``python -m benchmarks``: MX beside gfloat (vectorised by hand); BM and flex16+5,
    which no other library implements, beside fpsim's plain e4m3 quantize."""
    out = []
    for r in result["rows"]:
        case = f"block quantize {r['format']}"
        if "gfloat_vectorised" in r:
            out.append((case, r["threads"], "elem/s", r["fpsim"], "gfloat MX, vectorised",
                        r["gfloat_vectorised"]))
        else:
            out.append((case, r["threads"], "elem/s", r["fpsim"], "fpsim plain e4m3 quantize",
                        r["fpsim_e4m3"]))
    return out


def main(argv=None):
    return common.main(argv, __doc__, run, table, "benchmarks/results/blocks.json",
                       "2**18 elements, 2 repeats")


if __name__ == "__main__":
    main()
