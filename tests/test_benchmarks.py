"""The benchmark scripts run and write every row (speed targets live in the scripts, not here)."""

import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "benchmarks"))

import bench_quantize  # noqa: E402


def test_bench_quantize_quick_writes_every_row(tmp_path):
    path = tmp_path / "q.json"
    bench_quantize.main(["--quick", "--json", str(path)])
    data = json.loads(path.read_text())
    assert data["machine"]["numba"] and data["n"] == 2**20
    rows = {(r["format"], r["rounding"], r["threads"]) for r in data["rows"]}
    threads = {r["threads"] for r in data["rows"]}
    assert rows == {(f, m, t) for f in ("float8_e4m3fn", "float8_e5m2") for m in ("rne", "sr8")
                    for t in threads}
    for r in data["rows"]:
        assert r["fpsim"]["min"] <= r["fpsim"]["median"] <= r["fpsim"]["max"]
        assert r["vs_ml_dtypes"] > 0 and r["vs_gfloat"] > 0
