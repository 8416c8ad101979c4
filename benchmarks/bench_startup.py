"""Start-up seconds of README's main command, ``python3 -m fpsim compare``: cold and warm.

Wall seconds from a fresh process to the end of the command with an empty Numba cache (cold) and
with the cache that run filled (warm), beside ``python3 -c "import fpsim"``.

    python3 -m benchmarks.bench_startup [--quick] [--json PATH]
    python3 benchmarks/bench_startup.py [--quick] [--json PATH]

Every command runs in a subprocess whose NUMBA_CACHE_DIR is a new temporary folder: kernels are
``@njit(cache=True)`` and otherwise cache in ``__pycache__`` beside fpsim's sources, which an
earlier run (or the test suite) has usually filled.  Cold: the first run into the empty folder, so
every kernel the command calls compiles; warm: the same command again on the filled folder.  Each
row gives wall seconds, the child's CPU seconds (user + system, all threads) and the 1-minute load
average when the run started: on a busy 2-core machine the figures swing (Numba's OpenMP workers
spin while waiting, and compete with the main thread), so compare runs at low load.  The compare
runs are started through a small launcher (``runpy`` of ``fpsim``'s ``__main__`` with ``sys.argv``
as ``-m`` sets it) that records every Numba compilation ("numba:compile" events of
``numba.core.event``): the JSON lists each with its signature and seconds, self seconds excluding
the compilations nested in it, and the table shows the costliest.  A warm run that compiles
anything means the cache missed.  Target (issue 12): cold under 40 s, warm under 10 s on the 2-core
machine.  Not part of ``python -m benchmarks`` (a cold run alone takes a minute or more).
``--quick``: ``compare --epochs 1`` (the same kernels compile; a fifth of the training), one warm
run, three imports.
"""

from __future__ import annotations

import collections
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import numba

sys.path.insert(0, os.path.dirname(__file__))
import common  # noqa: E402
from common import machine  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMMAND = ["compare"]                  # README: python3 -m fpsim compare
TARGET_COLD = 40.0
TARGET_WARM = 10.0
TOP = 15

# Runs ``python -m fpsim <args>`` in this process (runpy, as -m does) and writes every Numba
# compilation to the JSON file named by FPSIM_BENCH_COMPILES when the process exits.
LAUNCHER = r"""
import atexit, json, os, runpy, sys, time
from numba.core import event

records, stack = [], []


class _Compiles(event.Listener):
    def on_start(self, ev):
        f = ev.data["dispatcher"].py_func
        stack.append([time.perf_counter(), time.thread_time(), 0.0, 0.0,
                      f"{f.__module__}.{f.__qualname__}", str(ev.data["args"])])

    def on_end(self, ev):
        t0, c0, nested, nested_cpu, name, sig = stack.pop()
        wall, cpu = time.perf_counter() - t0, time.thread_time() - c0
        if stack:
            stack[-1][2] += wall
            stack[-1][3] += cpu
        records.append({"function": name, "signature": sig, "depth": len(stack),
                        "seconds": wall, "self_seconds": wall - nested,
                        "self_cpu_seconds": cpu - nested_cpu})


def _dump():
    with open(os.environ["FPSIM_BENCH_COMPILES"], "w") as fh:
        json.dump(records, fh)


event.register("numba:compile", _Compiles())
atexit.register(_dump)
sys.argv = ["fpsim"] + sys.argv[1:]
runpy.run_module("fpsim", run_name="__main__", alter_sys=True)
"""


def _run(argv, cache_dir, compiles_path=None):
    """Run ``argv`` (after the interpreter) in ROOT with NUMBA_CACHE_DIR=cache_dir: wall and CPU
    seconds, stdout, and the recorded compilations (when ``compiles_path``)."""
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    if compiles_path:
        env["FPSIM_BENCH_COMPILES"] = compiles_path
    load = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable] + argv, cwd=ROOT, env=env, capture_output=True,
                          text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:2])}... exited with {proc.returncode}:\n"
                           f"{proc.stderr[-3000:]}")
    out = {"wall_seconds": wall,
           "cpu_seconds": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
           "load_average_1min": load, "stdout": proc.stdout}
    if compiles_path:
        with open(compiles_path) as fh:
            records = json.load(fh)
        out["compilations"] = len(records)
        out["compile_seconds"] = sum(r["seconds"] for r in records if r["depth"] == 0)
        out["compiled"] = records
    return out


def _cache_size(folder):
    files = [os.path.join(d, f) for d, _, fs in os.walk(folder) for f in fs]
    return {"files": len(files), "bytes": sum(os.path.getsize(f) for f in files),
            "index_files": sum(f.endswith(".nbi") for f in files)}


def _spread(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def top_compiled(records, n=TOP):
    """Compiled functions by self seconds (summed over their signatures), costliest first."""
    agg = collections.defaultdict(lambda: {"signatures": 0, "self_seconds": 0.0,
                                           "self_cpu_seconds": 0.0})
    for r in records:
        a = agg[r["function"]]
        a["signatures"] += 1
        a["self_seconds"] += r["self_seconds"]
        a["self_cpu_seconds"] += r["self_cpu_seconds"]
    rows = [dict(function=k, **v) for k, v in agg.items()]
    rows.sort(key=lambda r: -r["self_seconds"])
    return rows[:n]


def run(quick=False):
    args = COMMAND + (["--epochs", "1"] if quick else [])
    warm_runs, imports = (1, 3) if quick else (3, 5)
    launcher = ["-c", LAUNCHER] + args
    with tempfile.TemporaryDirectory(prefix="fpsim-bench-startup-") as tmp:
        cache = os.path.join(tmp, "numba-cache")
        empty = os.path.join(tmp, "numba-cache-import")
        os.makedirs(cache)
        os.makedirs(empty)
        imp = [_run(["-c", "import fpsim"], empty) for _ in range(imports)]
        import_cache = _cache_size(empty)
        cold = _run(launcher, cache, os.path.join(tmp, "cold.json"))
        cache_after = _cache_size(cache)
        warm = [_run(launcher, cache, os.path.join(tmp, f"warm{i}.json"))
                for i in range(warm_runs)]
    rows = [
        {"run": "import", "command": 'python3 -c "import fpsim"', "numba_cache": "empty",
         "repeats": imports, "wall_seconds": _spread([r["wall_seconds"] for r in imp]),
         "cpu_seconds": _spread([r["cpu_seconds"] for r in imp]),
         "load_average_1min": [r["load_average_1min"] for r in imp],
         "cache_files_written": import_cache["files"]},
        {"run": "cold", "command": "python3 -m fpsim " + " ".join(args), "numba_cache": "empty",
         "repeats": 1, "wall_seconds": _spread([cold["wall_seconds"]]),
         "cpu_seconds": _spread([cold["cpu_seconds"]]), "compilations": cold["compilations"],
         "load_average_1min": [cold["load_average_1min"]],
         "compile_seconds": cold["compile_seconds"], "target_seconds": TARGET_COLD,
         "output": cold["stdout"]},
        {"run": "warm", "command": "python3 -m fpsim " + " ".join(args),
         "numba_cache": "filled by the cold run", "repeats": warm_runs,
         "wall_seconds": _spread([r["wall_seconds"] for r in warm]),
         "cpu_seconds": _spread([r["cpu_seconds"] for r in warm]),
         "load_average_1min": [r["load_average_1min"] for r in warm],
         "compilations": max(r["compilations"] for r in warm),
         "compile_seconds": max(r["compile_seconds"] for r in warm),
         "target_seconds": TARGET_WARM, "output": warm[0]["stdout"]},
    ]
    return {"benchmark": "startup", "quick": quick, "machine": machine(),
            "numba_threads": numba.config.NUMBA_NUM_THREADS, "rows": rows,
            "cache_after_cold": cache_after, "top_compiled": top_compiled(cold["compiled"]),
            "compiled_cold": cold["compiled"],
            "compiled_warm": [r for w in warm for r in w["compiled"]],
            "targets": {"cold_seconds": TARGET_COLD, "warm_seconds": TARGET_WARM}}


def table(result) -> str:
    out = ["| run | command | Numba cache | wall s (median) | min..max | CPU s | compilations "
           "(s) | load | target |", "|---|---|---|---:|---:|---:|---:|---:|---|"]
    for r in result["rows"]:
        w, c = r["wall_seconds"], r["cpu_seconds"]
        comp = (f"{r['compilations']} ({r['compile_seconds']:.1f} s)" if "compilations" in r
                else f"{r['cache_files_written']} cache files")
        target = ""
        if "target_seconds" in r:
            ok = w["median"] < r["target_seconds"]
            target = f"< {r['target_seconds']:.0f} s: {'met' if ok else 'MISSED'}"
        out.append(f"| {r['run']} | `{r['command']}` | {r['numba_cache']} | {w['median']:.2f} | "
                   f"{w['min']:.2f}..{w['max']:.2f} | {c['median']:.2f} | {comp} | "
                   f"{max(r['load_average_1min']):.1f} | {target} |")
    out += ["", f"Costliest compilations of the cold run (self seconds: nested compilations "
                f"excluded; {result['cache_after_cold']['index_files']} cache index files "
                f"written):",
            "| function | signatures | self s | self CPU s |", "|---|---:|---:|---:|"]
    for r in result["top_compiled"]:
        out.append(f"| {r['function']} | {r['signatures']} | {r['self_seconds']:.2f} | "
                   f"{r['self_cpu_seconds']:.2f} |")
    return "\n".join(out)


def main(argv=None):
    return common.main(argv, __doc__, run, table, "benchmarks/results/startup.json",
                       "compare --epochs 1, one warm run")


if __name__ == "__main__":
    main()
