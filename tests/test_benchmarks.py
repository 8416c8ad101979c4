"""The benchmark suite runs and writes every row (speed targets live in the scripts, not here).

``python -m benchmarks --quick`` runs every script once at its smoke size; the checks of each
script's own result are applied to the suite's "details", so nothing runs twice.
"""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(__file__))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

import bench_blocks  # noqa: E402
import demo_swamping  # noqa: E402


def _check_quantize(data):
    assert data["machine"]["numba"] and data["n"] == 2**20
    rows = {(r["format"], r["rounding"], r["threads"]) for r in data["rows"]}
    threads = {r["threads"] for r in data["rows"]}
    assert rows == {(f, m, t) for f in ("float8_e4m3fn", "float8_e5m2") for m in ("rne", "sr8")
                    for t in threads} | {(f, "rne", t) for f in ("mxfp8_e4m3", "mxfp4_e2m1")
                                         for t in threads}
    for r in data["rows"]:
        assert r["fpsim"]["min"] <= r["fpsim"]["median"] <= r["fpsim"]["max"]
        assert r["vs_ml_dtypes"] > 0
        if r["format"].startswith("float8"):
            assert r["vs_gfloat"] > 0
        else:
            assert r["gfloat"] is None and r["vs_gfloat"] is None


def _check_gemm(data):
    import bench_gemm
    assert [r["case"] for r in data["rows"]] == [c[0] for c in bench_gemm.CASES]
    for r in data["rows"] + [data["loop_row"]] + data["conv_rows"]:
        assert r["fpsim"]["min"] <= r["fpsim"]["median"] <= r["fpsim"]["max"]
        assert r["threads"] == data["threads"] >= 1
    for r in data["rows"]:
        assert r["vs_matmul"] == r["fpsim"]["median"] / r["numpy_f32_matmul"]["median"]
        assert r["met"] == (r["vs_matmul"] >= r["target_vs_matmul"])
        assert r["peak_over_in_out"] > 0
    # the per-k loop rounds acc + product in float32 first: for this configuration that double
    # rounding is harmless, so the results must agree bit for bit
    assert data["loop_row"]["same_as_loop"] is True
    assert [r["case"].split()[0] for r in data["conv_rows"]] == [
        "conv2d", "conv2d_backward_data", "conv2d_backward_weight"]


def _check_blocks(data):
    assert {r["format"] for r in data["rows"]} == set(bench_blocks.BLOCKS)
    for r in data["rows"]:
        assert r["fpsim"]["median"] > 0 and r["vs_plain"] > 0
        if bench_blocks.BLOCKS[r["format"]] is not None:
            assert r["gfloat_vectorised"]["median"] > 0 and r["same_as_gfloat"]


def _check_train(data):
    assert [r["recipe"] for r in data["rows"]] == ["fp32", "hfp8_sun2019", "fp8_wang2018"]
    for r in data["rows"]:
        s = r["seconds_per_epoch"]
        assert 0 < s["min"] <= s["median"] <= s["max"] and r["vs_fp32"] > 0
        assert 0 <= r["test_accuracy"] <= 1
    assert [r["recipe"] for r in data["gpt_rows"]] == [
        "fp32", "te_fp8_delayed", "mxfp8_ocp", "nvfp4_nvidia2025", "fp8_hopper", "deepseek_v3_fp8"]
    assert all(r["seconds_per_100_steps"] > 0 and r["vs_fp32"] > 0 for r in data["gpt_rows"])


def test_suite_quick_writes_every_row(tmp_path):
    path = tmp_path / "suite.json"
    out = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--json", str(path)],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    data = json.loads(path.read_text())
    assert data["quick"] and data["machine"]["cpus"] and data["numba_threads"] >= 1
    details = data["details"]
    _check_quantize(details["bench_quantize"])
    _check_gemm(details["bench_gemm"])
    _check_blocks(details["bench_blocks"])
    _check_train(details["bench_train"])
    # one suite row per (script row, reference), every figure with its spread
    expected = (sum(2 if r["gfloat"] else 1 for r in details["bench_quantize"]["rows"])
                + len(details["bench_blocks"]["rows"])
                + len(details["bench_gemm"]["rows"]) + 1 + len(details["bench_gemm"]["conv_rows"])
                + len(details["bench_train"]["rows"]) - 1)
    assert len(data["rows"]) == expected
    for r in data["rows"]:
        assert r["fpsim"]["min"] <= r["fpsim"]["median"] <= r["fpsim"]["max"]
        assert r["reference"] and r["fpsim_over_reference"] > 0
        assert r["case"] in out                                  # the printed table has it
    assert {r["benchmark"] for r in data["rows"]} == {"bench_quantize", "bench_blocks",
                                                      "bench_gemm", "bench_train"}


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


def test_fpsim_bench_runs_the_suite(tmp_path, monkeypatch):
    """`fpsim bench` is the same runner (checked on its argument handling, not rerun)."""
    from fpsim import cli
    calls = []
    monkeypatch.setattr("runpy.run_path", lambda path, run_name: calls.append((path, sys.argv[:])))
    assert cli.main(["bench", "--quick", "--json", str(tmp_path / "x.json")]) == 0
    path, argv = calls[0]
    assert path.endswith(os.path.join("benchmarks", "__main__.py"))
    assert argv[1:] == ["--quick", "--json", str(tmp_path / "x.json")]
