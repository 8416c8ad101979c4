"""Elements per second of fpsim.quantize beside ml_dtypes and gfloat, in one run.

    python benchmarks/bench_quantize.py [--quick] [--json PATH]

ml_dtypes: ``x.astype(float8_*).astype(float32)`` (its only rounding is nearest-even, single
thread).  gfloat: ``round_ndarray`` (NumPy, single thread; stochastic with 8 random bits it is
given).  fpsim runs on 1 and 2 Numba threads.  Each figure is the median of the repeats; the JSON
also keeps min and max.  2**24 float32 standard-normal inputs (gfloat on 2**20, reported per
element).  MX rows (blocks of 32 along the last axis, nearest-even) stand beside ml_dtypes' plain
e4m3 conversion, issue 15's yardstick for them (ml_dtypes has no block formats; bench_blocks
compares MX with gfloat's).
"""

from __future__ import annotations

import os
import sys

import gfloat
import ml_dtypes
import numba
import numpy as np
from gfloat.formats import format_info_ocp_e4m3, format_info_ocp_e5m2

sys.path.insert(0, os.path.dirname(__file__))
import fpsim  # noqa: E402
import common  # noqa: E402
from common import machine, rate  # noqa: E402

FORMATS = {"float8_e4m3fn": (ml_dtypes.float8_e4m3fn, format_info_ocp_e4m3),
           "float8_e5m2": (ml_dtypes.float8_e5m2, format_info_ocp_e5m2)}
# MX blocks of 32 along the last axis beside ml_dtypes' plain e4m3 conversion (issue 15: 10x);
# ml_dtypes has no block formats, and gfloat's MX runs in bench_blocks
BLOCK_FORMATS = ("mxfp8_e4m3", "mxfp4_e2m1")


def run(quick=False):
    n = 2**20 if quick else 2**24
    n_gf = 2**14 if quick else 2**20
    repeats = 3 if quick else 7
    rng = np.random.default_rng(0)
    x = rng.standard_normal(n).astype(np.float32)
    xg = x[:n_gf]
    srbits = rng.integers(0, 2**8, size=n_gf)
    rows = []
    max_threads = min(2, numba.config.NUMBA_NUM_THREADS)
    before = numba.get_num_threads()
    try:
        for name, (mlt, gfi) in FORMATS.items():
            ml = rate(lambda: x.astype(mlt).astype(np.float32), n, repeats)
            gf = {"rne": rate(lambda: gfloat.round_ndarray(gfi, xg), n_gf, repeats),
                  "sr": rate(lambda: gfloat.round_ndarray(gfi, xg, gfloat.RoundMode.Stochastic,
                                                          srbits=srbits, srnumbits=8), n_gf, repeats)}
            for rounding in ("rne", "sr"):
                for threads in range(1, max_threads + 1):
                    numba.set_num_threads(threads)
                    kw = {"sr_bits": 8} if rounding == "sr" else {}
                    fp = rate(lambda: fpsim.quantize(x, name, rounding=rounding, **kw), n, repeats)
                    rows.append({"format": name, "rounding": rounding + ("8" if kw else ""),
                                 "threads": threads, "fpsim": fp, "ml_dtypes_rne": ml,
                                 "gfloat": gf[rounding],
                                 "vs_ml_dtypes": fp["median"] / ml["median"],
                                 "vs_gfloat": fp["median"] / gf[rounding]["median"]})
        ml = rate(lambda: x.astype(ml_dtypes.float8_e4m3fn).astype(np.float32), n, repeats)
        for name in BLOCK_FORMATS:
            for threads in range(1, max_threads + 1):
                numba.set_num_threads(threads)
                fp = rate(lambda: fpsim.quantize(x, name, axis=-1), n, repeats)
                rows.append({"format": name, "rounding": "rne", "threads": threads, "fpsim": fp,
                             "ml_dtypes_rne": ml, "gfloat": None,
                             "vs_ml_dtypes": fp["median"] / ml["median"], "vs_gfloat": None})
    finally:
        numba.set_num_threads(before)
    return {"benchmark": "quantize", "n": n, "repeats": repeats, "machine": machine(), "rows": rows}


def table(result) -> str:
    out = ["| format | rounding | threads | fpsim Melem/s | ml_dtypes (rne) Melem/s | gfloat Melem/s "
           "| fpsim / ml_dtypes | fpsim / gfloat |",
           "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in result["rows"]:
        out.append(f"| {r['format']} | {r['rounding']} | {r['threads']} | "
                   f"{r['fpsim']['median'] / 1e6:.0f} | {r['ml_dtypes_rne']['median'] / 1e6:.0f} | "
                   + (f"{r['gfloat']['median'] / 1e6:.1f} | {r['vs_ml_dtypes']:.1f}x | "
                      f"{r['vs_gfloat']:.0f}x |" if r["gfloat"] else
                      f"- | {r['vs_ml_dtypes']:.1f}x (its e4m3) | - |"))
    return "\n".join(out)


def suite_rows(result):
    """Rows for ``python -m benchmarks``: (case, threads, unit, fpsim, reference name, reference)."""
    out = []
    for r in result["rows"]:
        case = f"quantize {r['format']} {r['rounding']}"
        out.append((case, r["threads"], "elem/s", r["fpsim"], "ml_dtypes astype (rne)" if
                    r["gfloat"] else "ml_dtypes e4m3 astype (it has no MX)", r["ml_dtypes_rne"]))
        if r["gfloat"]:
            out.append((case, r["threads"], "elem/s", r["fpsim"], "gfloat round_ndarray",
                        r["gfloat"]))
    return out


def main(argv=None):
    return common.main(argv, __doc__, run, table, "benchmarks/results/quantize.json",
                       "2**20 elements, 3 repeats")


if __name__ == "__main__":
    main()
