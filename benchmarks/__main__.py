"""Every benchmark of benchmarks/ in one run, one markdown table and one JSON file.

    python -m benchmarks [--quick] [--json PATH]      (also: fpsim bench [--quick] [--json PATH])

Runs bench_quantize, bench_blocks, bench_gemm (GEMM and conv2d) and bench_train in turn.  Each row
puts an fpsim figure beside the tool a user would otherwise pick, measured in the same run:
ml_dtypes and gfloat for rounding, gfloat's MX for block formats, numpy's float32 matmul/conv and
the vectorised NumPy per-k loop for GEMMs, the fp32 epoch of the same framework for training.
"fpsim / reference" is fpsim's speed over the reference's (above 1: fpsim is faster); every
figure is the median of its repeats, with the min..max spread.  ``--quick`` runs each script's
smoke size (CI); the JSON has the machine, versions and thread count, every row, and each
script's own full result under "details".
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

SUITE = ("bench_quantize", "bench_blocks", "bench_gemm", "bench_train")


def _fmt(v, unit):
    scale = {"elem/s": (1e6, "M"), "MAC/s": (1e9, "G")}.get(unit, (1, ""))
    return f"{v / scale[0]:.3g}"


def run(quick=False, progress=True):
    """Run every script; return the suite's result (rows plus each script's own result)."""
    import numba
    from tqdm.auto import tqdm
    from common import machine
    details, rows = {}, []
    bar = tqdm(SUITE, desc="benchmarks", unit="script", disable=None if progress else True)
    for name in bar:
        bar.set_postfix_str(name)
        module = importlib.import_module(name)
        result = module.run(quick=quick)
        details[name] = result
        for case, threads, unit, fp, ref_name, ref in module.suite_rows(result):
            rows.append({"benchmark": name, "case": case, "threads": threads, "unit": unit,
                         "fpsim": fp, "reference": ref_name, "reference_value": ref,
                         "fpsim_over_reference": fp["median"] / ref["median"]})
    return {"suite": "fpsim benchmarks", "quick": quick, "machine": machine(),
            "numba_threads": numba.config.NUMBA_NUM_THREADS, "rows": rows, "details": details}


def table(result) -> str:
    out = ["| case | threads | fpsim | min..max | reference | reference figure | fpsim / "
           "reference |", "|---|---:|---:|---:|---|---:|---:|"]
    for r in result["rows"]:
        u, f, ref = r["unit"], r["fpsim"], r["reference_value"]
        unit = {"elem/s": "Melem/s", "MAC/s": "GMAC/s"}.get(u, u)
        out.append(f"| {r['case']} | {r['threads']} | {_fmt(f['median'], u)} {unit} | "
                   f"{_fmt(f['min'], u)}..{_fmt(f['max'], u)} | {r['reference']} | "
                   f"{_fmt(ref['median'], u)} {unit} | {r['fpsim_over_reference']:.3g}x |")
    return "\n".join(out)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smoke sizes (under a minute, for CI)")
    p.add_argument("--json", default=os.path.join(HERE, "results", "suite.json"))
    args = p.parse_args(argv)
    result = run(quick=args.quick)
    print(table(result))
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as fh:
        json.dump(result, fh, indent=1)
    return result


if __name__ == "__main__":
    main()
