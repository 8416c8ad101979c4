"""Seconds per training epoch of the LeNet-style CNN on digits, and per 100 steps of the "gpt"
Transformer on pydoc: fp32 beside simulated recipes.

    python benchmarks/bench_train.py [--quick] [--json PATH]

Each recipe trains ``fpsim.nn``'s LeNet (two 3x3 convolutions, two linear layers) on scikit-learn's
digits (1348 training images, batch 32): one warm-up epoch (compiles the kernels), then the timed
epochs, whose training seconds (forward, backward, update; not the evaluation) give the median,
min and max.  "fp32" is the same framework on numpy's float32 matmul; the simulated recipes run
every GEMM of forward, backward-data and backward-weight through fpsim.gemm/conv2d.  Target: a
simulated epoch within 10x of the fp32 epoch.  ``--quick``: the generated 450-image set, 1 timed
epoch.  The gpt rows: AdamW steps of batch 32 x 64 characters on pydoc, 3 warm-up steps, then
100 timed steps (1 and 3 with ``--quick``), reported as seconds per 100 steps.
"""

from __future__ import annotations

import os
import statistics
import sys

import numba

sys.path.insert(0, os.path.dirname(__file__))
import common  # noqa: E402
from common import machine  # noqa: E402
from fpsim import nn  # noqa: E402

RECIPES = ("fp32", "hfp8_sun2019", "fp8_wang2018")
GPT_RECIPES = ("fp32", "te_fp8_delayed", "mxfp8_ocp", "nvfp4_nvidia2025", "fp8_hopper",
               "deepseek_v3_fp8")
TARGET = 10.0


def gpt_seconds(recipe, steps, warmup=3, batch=32):
    """Seconds per 100 training steps of the gpt model on pydoc under ``recipe``."""
    import time
    import numpy as np
    from fpsim import data
    ds = data.load("pydoc")
    net = nn.models.build("gpt", 0, ds.n_classes).configure(nn.recipes.get(recipe))
    opt = nn.AdamW(net.parameters(), 3e-3)
    t0 = None
    for step in range(warmup + steps):
        if step == warmup:
            t0 = time.perf_counter()
        idx = np.arange(step * batch, (step + 1) * batch) % len(ds.x_train)
        net.set_step(0, step)
        _, dl = nn.softmax_cross_entropy(net.forward(ds.x_train[idx]),
                                         ds.y_train[idx].reshape(-1))
        net.backward(dl)
        opt.step(step)
    return (time.perf_counter() - t0) / steps * 100


def run(quick=False):
    dataset, timed = ("synthetic", 1) if quick else ("digits", 5)
    rows = []
    for recipe in RECIPES:
        r = nn.train(recipe, "lenet", dataset, epochs=1 + timed, progress=False)
        secs = [e["seconds"] for e in r["epochs"][1:]]
        rows.append({"recipe": recipe, "seconds_per_epoch": {
            "median": statistics.median(secs), "min": min(secs), "max": max(secs)},
            "test_accuracy": r["test_accuracy"]})
    base = rows[0]["seconds_per_epoch"]["median"]
    for row in rows:
        row["vs_fp32"] = row["seconds_per_epoch"]["median"] / base
    steps = 3 if quick else 100
    gpt = [{"recipe": r, "seconds_per_100_steps": gpt_seconds(r, steps, 1 if quick else 3)}
           for r in GPT_RECIPES]
    for row in gpt:
        row["vs_fp32"] = row["seconds_per_100_steps"] / gpt[0]["seconds_per_100_steps"]
    return {"benchmark": "train", "model": "lenet", "dataset": dataset, "timed_epochs": timed,
            "threads": numba.get_num_threads(), "target_vs_fp32": TARGET, "machine": machine(),
            "rows": rows, "gpt_timed_steps": steps, "gpt_rows": gpt}


def table(result):
    lines = [f"LeNet on {result['dataset']}, {result['timed_epochs']} timed epochs, "
             f"{result['threads']} threads",
             "| recipe | s/epoch (median) | min..max | x fp32 | test accuracy |",
             "|---|---:|---:|---:|---:|"]
    for r in result["rows"]:
        s = r["seconds_per_epoch"]
        ok = "" if r["recipe"] == "fp32" else (" (target <= 10)" if r["vs_fp32"] <= TARGET
                                               else " (MISSES target 10)")
        lines.append(f"| {r['recipe']} | {s['median']:.3f} | {s['min']:.3f}..{s['max']:.3f} | "
                     f"{r['vs_fp32']:.1f}{ok} | {100 * r['test_accuracy']:.1f}% |")
    if result.get("gpt_rows"):
        lines += ["", f"gpt on pydoc, {result['gpt_timed_steps']} timed steps of 32 x 64 "
                  "characters", "| recipe | s / 100 steps | x fp32 |", "|---|---:|---:|"]
        for r in result["gpt_rows"]:
            ok = "" if r["recipe"] == "fp32" else (" (target <= 10)" if r["vs_fp32"] <= TARGET
                                                   else " (MISSES target 10)")
            lines.append(f"| {r['recipe']} | {r['seconds_per_100_steps']:.1f} | "
                         f"{r['vs_fp32']:.1f}{ok} |")
    return "\n".join(lines)


def suite_rows(result):
    """Rows for ``python -m benchmarks``: epochs per second of each simulated recipe beside the
    fp32 epoch of the same framework."""
    def per_s(t):
        return {"median": 1 / t["median"], "min": 1 / t["max"], "max": 1 / t["min"]}
    base = per_s(result["rows"][0]["seconds_per_epoch"])
    return [(f"training epoch, LeNet on {result['dataset']}, {r['recipe']}", result["threads"],
             "epoch/s", per_s(r["seconds_per_epoch"]), "fpsim.nn fp32 (numpy matmul)", base)
            for r in result["rows"][1:]]


def main(argv=None):
    return common.main(argv, __doc__, run, table,
                       os.path.join(os.path.dirname(__file__), "results", "train.json"),
                       "the generated set, 1 timed epoch (a smoke run)")


if __name__ == "__main__":
    main()
