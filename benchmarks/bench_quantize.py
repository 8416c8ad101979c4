"""Elements per second of fpsim.quantize beside ml_dtypes and gfloat, in one run.

    python benchmarks/bench_quantize.py [--quick] [--json PATH]

ml_dtypes: ``x.astype(float8_*).astype(float32)`` (its only rounding is nearest-even, single
thread).  gfloat: ``round_ndarray`` (NumPy, single thread; stochastic with 8 random bits it is
given).  fpsim runs on 1 and 2 Numba threads.  Each figure is the median of the repeats; the JSON
also keeps min and max.  2**24 float32 standard-normal inputs (gfloat on 2**20, reported per
element).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from importlib.metadata import version

import gfloat
import ml_dtypes
import numba
import numpy as np
from gfloat.formats import format_info_ocp_e4m3, format_info_ocp_e5m2

import fpsim

FORMATS = {"float8_e4m3fn": (ml_dtypes.float8_e4m3fn, format_info_ocp_e4m3),
           "float8_e5m2": (ml_dtypes.float8_e5m2, format_info_ocp_e5m2)}


def rate(fn, n, repeats):
    fn()  # warm-up (and compile)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    rates = [n / t for t in times]
    return {"median": statistics.median(rates), "min": min(rates), "max": max(rates)}


def machine():
    return {"python": platform.python_version(), "machine": platform.machine(),
            "processor": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
            "numpy": np.__version__, "numba": numba.__version__, "ml_dtypes": ml_dtypes.__version__,
            "gfloat": version("gfloat"), "fpsim": fpsim.__version__}


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
                   f"{r['gfloat']['median'] / 1e6:.1f} | {r['vs_ml_dtypes']:.1f}x | "
                   f"{r['vs_gfloat']:.0f}x |")
    return "\n".join(out)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="2**20 elements, 3 repeats")
    p.add_argument("--json", default="benchmarks/results/quantize.json")
    args = p.parse_args(argv)
    result = run(quick=args.quick)
    print(table(result))
    os.makedirs(os.path.dirname(args.json) or ".", exist_ok=True)
    with open(args.json, "w") as fh:
        json.dump(result, fh, indent=2)
    return result


if __name__ == "__main__":
    main()
