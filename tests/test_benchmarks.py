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


import bench_gemm  # noqa: E402
import demo_swamping  # noqa: E402


def test_bench_gemm_quick_writes_every_row(tmp_path):
    path = tmp_path / "g.json"
    bench_gemm.main(["--quick", "--json", str(path)])
    data = json.loads(path.read_text())
    threads = {r["threads"] for r in data["rows"]}
    cases = {(r["case"], r["threads"]) for r in data["rows"]}
    assert cases == {(c, t) for c in ("gemm e5m2 -> 1-6-9 chunk 64", "gemm e5m2 -> Kulisch -> float32",
                                      "conv2d 3x3 e5m2 -> 1-6-9 chunk 64") for t in threads}
    for r in data["rows"]:
        assert r["fpsim"]["min"] <= r["fpsim"]["median"] <= r["fpsim"]["max"]
        if "numpy_per_k_loop" in r:
            # the per-k loop rounds acc + product in float32 first: for this configuration that
            # double rounding is harmless, so the results must agree bit for bit
            assert r["same_as_loop"] is True


def test_swamping_demo_shows_stagnation_and_the_chunk_fix(tmp_path):
    data = demo_swamping.main(["--quick", "--json", str(tmp_path / "s.json"),
                               "--plot", str(tmp_path / "s.png")])
    last = data["rows"][-1]
    assert last["n"] == 4096
    assert last["1-6-9 sequential"]["relative_error"] > 0.25      # stuck near 1024-2048
    assert last["1-6-9 chunk 64"]["relative_error"] < 2.0**-8
    assert last["1-6-9 pairwise"]["relative_error"] < 2.0**-8
    assert last["fp32 sequential"]["relative_error"] < 1e-6
    errs = [r["1-6-9 sequential"]["relative_error"] for r in data["rows"]]
    assert errs[-1] > 10 * errs[0]                                 # grows with N
    assert (tmp_path / "s.png").stat().st_size > 1000


import bench_blocks  # noqa: E402


def test_bench_blocks_quick_writes_every_row(tmp_path):
    path = tmp_path / "blocks.json"
    bench_blocks.main(["--quick", "--json", str(path)])
    result = json.loads(path.read_text())
    names = [r["format"] for r in result["rows"]]
    assert set(names) == set(bench_blocks.BLOCKS)
    for r in result["rows"]:
        assert r["fpsim"]["median"] > 0 and r["vs_plain"] > 0
        if bench_blocks.BLOCKS[r["format"]] is not None:
            assert r["gfloat_vectorised"]["median"] > 0 and r["same_as_gfloat"]


import bench_train  # noqa: E402


def test_bench_train_quick_writes_every_row(tmp_path):
    path = tmp_path / "t.json"
    bench_train.main(["--quick", "--json", str(path)])
    data = json.loads(path.read_text())
    assert [r["recipe"] for r in data["rows"]] == ["fp32", "hfp8_sun2019", "fp8_wang2018"]
    for r in data["rows"]:
        s = r["seconds_per_epoch"]
        assert 0 < s["min"] <= s["median"] <= s["max"] and r["vs_fp32"] > 0
        assert 0 <= r["test_accuracy"] <= 1
