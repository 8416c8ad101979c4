"""What every benchmark script shares: timing, the machine description, and the command line."""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from importlib.metadata import version

import ml_dtypes
import numba
import numpy as np

import fpsim


def rate(fn, n, repeats):
    """Items per second of ``fn`` (n items per call) over ``repeats`` timed calls after one
    warm-up call (which also compiles): median, min and max."""
    fn()
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


def main(argv, doc, run, table, default_json, quick_help, plot=None):
    """The command line of a benchmark script: ``[--quick] [--json PATH]`` (and ``--plot PNG``
    when the script can ``plot``); prints ``table(result)``, writes the JSON, returns the result."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--quick", action="store_true", help=quick_help)
    p.add_argument("--json", default=default_json)
    if plot is not None:
        p.add_argument("--plot", default=None, help="write the curves to this PNG")
    args = p.parse_args(argv)
    result = run(quick=args.quick)
    print(table(result))
    os.makedirs(os.path.dirname(args.json) or ".", exist_ok=True)
    with open(args.json, "w") as fh:
        json.dump(result, fh, indent=2)
    if plot is not None and args.plot:
        plot(result, args.plot)
    return result
