"""fpsim.sweep: sweep files, cells, their metrics against independent references, Dask runs equal
to sequential ones, killed workers and killed clients, and bad files.

Every Dask cluster here is a LocalCluster on 127.0.0.1 started by the test and closed by it."""

import hashlib
import json
import logging
import math
import os
import signal
import subprocess
import sys
import threading
import time

import ml_dtypes
import numpy as np
import pytest

import fpsim
from fpsim.sweep import SweepError, parse
from fpsim.sweep.plot import _layout

pd = pytest.importorskip("pandas")
distributed = pytest.importorskip("distributed")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def frame(out):
    """The table without the wall-clock column: everything a rerun must reproduce bit for bit."""
    return fpsim.sweep.load(out).drop(columns="seconds")


@pytest.fixture(scope="module")
def cluster():
    import dask
    from distributed import Client, LocalCluster
    with dask.config.set({"distributed.scheduler.allowed-failures": 3}):
        c = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                         dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR)
    client = Client(c)
    yield c, client
    client.close()
    c.close()


# ------------------------------------------------------------------------------ sweep files

def test_cells_expand_in_file_order_with_seeds_innermost_and_stable_ids():
    s = parse('task = "gemm_error"\nseeds = {from = 3, to = 4}\n[fixed]\nk = 64\n[axes]\n'
              'acc = ["float16", "bfloat16"]\nrows = {from = 1, to = 5, step = 2}\n', "t")
    got = [(c.settings["acc"], c.settings["rows"], c.settings["seed"]) for c in s.cells()]
    want = [(a, r, sd) for a in ("float16", "bfloat16") for r in (1, 3, 5) for sd in (3, 4)]
    assert got == want and len(s) == 12
    c = s.cells()[0]
    text = json.dumps({"task": "gemm_error", "settings": c.settings}, sort_keys=True)
    assert c.id == hashlib.sha256(text.encode()).hexdigest()[:16]
    assert c.settings["k"] == 64 and c.settings["order"] == "sequential"    # fixed, default
    again = parse('task = "gemm_error"\nseeds = [3, 4]\n[axes]\nrows = [1, 3, 5]\n'
                  'acc = ["float16", "bfloat16"]\n[fixed]\nk = 64\n', "other name")
    assert {x.id for x in again.cells()} == {x.id for x in s.cells()}   # same settings, same ids


def test_geometric_and_descending_ranges():
    s = parse('task = "gemm_error"\n[axes]\nk = {from = 256, to = 65536, times = 2}\n'
              'rows = {from = 9, to = 1, step = -4}\n')
    assert s.axes["k"] == [2 ** e for e in range(8, 17)] and s.axes["rows"] == [9, 5, 1]


BAD = [
    ('task = "gemm_error"\nfoo = 1\n', "'foo'"),
    ('[axes]\nk = [1]\n', "'task'"),
    ('task = "fit"\n', "task must be one of"),
    ('task = "gemm_error"\n[axes]\nwidth = [1, 2]\n', "axes.width"),
    ('task = "gemm_error"\n[fixed]\nwidth = 1\n', "fixed.width"),
    ('task = "gemm_error"\n[axes]\nk = []\n', "axes.k is empty"),
    ('task = "gemm_error"\n[axes]\nk = ["big"]\n', "axes.k must be an integer >= 1"),
    ('task = "gemm_error"\n[fixed]\nk = 1.5\n', "fixed.k must be an integer >= 1"),
    ('task = "gemm_error"\n[axes]\nchunk = [0, 16]\n', "axes.chunk must be an integer >= 1"),
    ('task = "gemm_error"\n[axes]\nk = [4, 4]\n', "axes.k repeats"),
    ('task = "gemm_error"\n[axes]\nk = 4\n', "axes.k must be a list"),
    ('task = "gemm_error"\n[axes]\nk = {from = 1}\n', "axes.k: a range"),
    ('task = "gemm_error"\n[axes]\nk = {from = 0, to = 8, times = 2}\n', "geometric"),
    ('task = "gemm_error"\n[fixed]\nk = 4\n[axes]\nk = [4, 8]\n', "both in [fixed] and"),
    ('task = "gemm_error"\nseeds = [-1]\n', "seeds"),
    ('task = "gemm_error"\nseeds = []\n', "seeds is empty"),
    ('task = "gemm_error"\nretries = -1\n', "retries"),
    ('task = "gemm_error"\n[fixed]\nseed = 1\n', "fixed.seed"),
    ('task = "gemm_error"\n[axes]\nacc = ["float16", "e9m99"]\n', "acc = 'e9m99'"),
    ('task = "gemm_error"\n[fixed]\ninput = "float64"\n', "input must be a float format"),
    ('task = "gemm_error"\n[fixed]\norder = "kulisch"\nchunk = 16\n', "chunk must be 'none'"),
    ('task = "gemm_error"\n[fixed]\nengine = "hopper"\n', "arch:instruction"),
    ('task = "train"\n[axes]\nrecipe = ["fp32", "fp9_nobody"]\n', "recipe = 'fp9_nobody'"),
    ('task = "train"\n[fixed]\nmodel = "gpt"\n', "does not train on"),
    ('task = "train"\n[fixed]\nlr = "fast"\n', "fixed.lr"),
    ('task = "quantize_error"\n[fixed]\ndata = "cauchy"\n', "data must be one of"),
    ('task = "quantize_error"\n[fixed]\nrounding = "rnd"\n', "rounding must be one of"),
    ('task = "quantize_error"\n[plot]\nmetric = "accuracy"\n', "plot.metric"),
    ('task = "quantize_error"\n[plot]\nx = "nothing"\n', "plot.x"),
    ('task = "quantize_error"\n[plot]\nsize = 3\n', "plot.size"),
    ('task = "quantize_error"\nfixed = 3\n', "[fixed] must be a table"),
    ('task = "quantize_error"\n[fixed\n', "not valid TOML"),
    ('task = "quantize_error"\n[axes]\nformat = [1979-05-27, "e4m3"]\n', "axes.format: values"),
    ('task = "quantize_error"\n[axes]\nn = {from = 1, to = 100000000000}\n', "at most"),
    ('task = "quantize_error"\n[axes]\nscale = [1, 1.0]\n', "axes.scale repeats"),
    ('task = "quantize_error"\n[fixed]\nn = 64\n[axes]\nscale = [1.0, 2.0]\n[plot]\n'
     'facet = "n"\n', "plot.facet must name an axis"),
    ('task = "quantize_error"\n[axes]\nscale = [1.0, 2.0]\n[plot]\nx = "scale"\n'
     'series = "scale"\n', "different columns"),
    ('task = "gemm_error"\n[fixed]\nproduct = "nothing"\n', "unknown format 'nothing'"),
    ('task = "gemm_error"\n[fixed]\nengine = "hopper:wgmma.m64n8k32.f32.e4m3.e4m3"\n',
     "does not hold"),
]


@pytest.mark.parametrize("text,message", BAD)
def test_bad_sweep_files_name_the_key(text, message):
    with pytest.raises(SweepError) as e:
        parse(text, "bad")
    assert message in str(e.value), str(e.value)
    assert "\n" not in str(e.value)


def test_bad_file_fails_in_the_cli_before_any_cell_runs(tmp_path):
    f = tmp_path / "bad.toml"
    f.write_text('task = "train"\n[axes]\nrecipe = ["fp32", "fp9_nobody"]\n')
    out = tmp_path / "out"
    p = subprocess.run([sys.executable, "-m", "fpsim", "sweep", str(f), "--out", str(out)],
                       capture_output=True, text=True, cwd=ROOT)
    assert p.returncode == 2 and not out.exists()
    assert p.stderr.strip().count("\n") == 0 and "recipe = 'fp9_nobody'" in p.stderr


# --------------------------------------------------------------- metrics against references

def test_gemm_error_matches_a_float16_register_written_here():
    """Sequential float16 accumulation of e5m2 products, done with numpy: each step adds in
    float64 (exact: sums stay below 2**11, products' quanta above 2**-37) and rounds to float16
    (numpy's conversion rounds once, to nearest even); exact sums from math.fsum."""
    s = dict(fpsim.sweep.TASKS["gemm_error"].defaults, k=4096, rows=16, seed=5)
    rec = fpsim.sweep.run_cell("gemm_error", s)
    assert rec["status"] == "ok", rec["error"]
    rng = np.random.default_rng([5, 16])
    a, b = (rng.random((16, 4096)).astype(np.float32).astype(ml_dtypes.float8_e5m2)
            .astype(np.float64) for _ in range(2))
    reg = np.zeros(16, np.float16)
    for k in range(4096):
        reg = (reg.astype(np.float64) + a[:, k] * b[:, k]).astype(np.float16)
    exact = np.array([math.fsum(r) for r in a * b])
    rel = np.abs(reg.astype(np.float64) - exact) / exact
    m = rec["metrics"]
    assert m["rel_error_mean"] == rel.mean() and m["rel_error_max"] == rel.max()
    assert m["rel_error_median"] == np.median(rel) and m["nonfinite"] == 0
    assert m["rel_error_mean"] > 0.01                 # float16 swamps: 4096 terms of ~1/4


def test_gemm_error_kulisch_is_one_rounding_and_chunking_helps():
    base = dict(fpsim.sweep.TASKS["gemm_error"].defaults, k=4096, rows=8, seed=1, acc="1-6-9")
    kul = fpsim.sweep.run_cell("gemm_error", dict(base, acc="float32", order="kulisch"))
    assert 0 < kul["metrics"]["rel_error_max"] <= 2.0 ** -24
    seq = fpsim.sweep.run_cell("gemm_error", base)["metrics"]["rel_error_mean"]
    chunked = fpsim.sweep.run_cell("gemm_error", dict(base, chunk=64))["metrics"]
    assert chunked["rel_error_mean"] < seq / 10        # Wang et al. 2018's point


def test_quantize_error_matches_ml_dtypes():
    s = dict(fpsim.sweep.TASKS["quantize_error"].defaults, n=4096, seed=2, data="laplace",
             scale=300.0)
    m = fpsim.sweep.run_cell("quantize_error", s)["metrics"]
    rng = np.random.default_rng([2, 17])
    x = (rng.laplace(0.0, 1.0, 4096) * 300.0).astype(np.float32)
    q = x.astype(ml_dtypes.float8_e4m3fn).astype(np.float64)
    x = x.astype(np.float64)
    fin = np.isfinite(q)
    assert m["overflow"] == np.mean(~fin) > 0         # e4m3fn has no Inf: NaN above 464
    assert m["snr_db"] == -math.inf
    assert m["rel_error_mean"] == math.inf            # a NaN result is infinitely wrong
    m2 = fpsim.sweep.run_cell("quantize_error", dict(s, scale=1.0))["metrics"]
    x = (np.random.default_rng([2, 17]).laplace(0.0, 1.0, 4096)).astype(np.float32)
    q = x.astype(ml_dtypes.float8_e4m3fn).astype(np.float64)
    x = x.astype(np.float64)
    snr = 10 * math.log10(np.sum(x ** 2) / np.sum((x - q) ** 2))
    assert m2["snr_db"] == pytest.approx(snr, rel=1e-12)
    assert m2["underflow"] == np.mean(q[x != 0] == 0) and m2["overflow"] == 0
    assert m2["bits"] == 8.0


def test_block_format_bits_count_the_scale():
    s = dict(fpsim.sweep.TASKS["quantize_error"].defaults, n=1024, seed=0, format="mxfp8_e4m3")
    assert fpsim.sweep.run_cell("quantize_error", s)["metrics"]["bits"] == 8 + 8 / 32
    s["format"] = "nvfp4"
    assert fpsim.sweep.run_cell("quantize_error", s)["metrics"]["bits"] == 4 + 8 / 16


def test_train_cell_is_the_training_run():
    """Plumbing check: the cell's metrics are those of fpsim.nn.training.train itself."""
    s = dict(fpsim.sweep.TASKS["train"].defaults, recipe="hfp8_sun2019", dataset="synthetic",
             epochs=1, seed=3)
    rec = fpsim.sweep.run_cell("train", s)
    run = fpsim.nn.training.train("hfp8_sun2019", "mlp", "synthetic", epochs=1, seed=3,
                                  progress=False)
    assert rec["metrics"]["test_accuracy"] == run["test_accuracy"]
    assert rec["metrics"]["test_loss"] == run["test_loss"]
    assert rec["metrics"]["bits"] == 8.0 and math.isnan(rec["metrics"]["bits_per_char"])
    assert [e["loss"] for e in rec["detail"]["epochs"]] == [e["loss"] for e in run["epochs"]]


TOO_BIG = ('task = "gemm_error"\n[fixed]\nk = 100000\n[axes]\n'
           'rows = [4, 10000000]\n')             # 10**12 operands: no machine here holds them


def test_a_cell_that_raises_is_recorded_and_the_sweep_goes_on(tmp_path):
    df = fpsim.sweep.run(parse(TOO_BIG, "t"), tmp_path, scheduler="sequential", progress=False)
    assert list(df["status"]) == ["ok", "failed"]
    assert "MemoryError" in df["error"][1] and df["error"][0] == ""
    assert math.isnan(df["rel_error_mean"][1])
    table = fpsim.sweep.markdown(tmp_path)
    assert "1 cell(s) not finished" in table and "failed" in table


# ------------------------------------------------------------------- execution and results

GRIDS = {
    "train": 'task = "train"\nseeds = [0, 1]\n[fixed]\ndataset = "synthetic"\nepochs = 1\n'
             '[axes]\nrecipe = ["fp32", "hfp8_sun2019", "fixed16_gupta2015"]\n',
    "gemm_error": 'task = "gemm_error"\nseeds = [0, 1]\n[fixed]\nk = 512\nrows = 8\n[axes]\n'
                  'acc = ["1-6-5", "float16"]\nrounding = ["rne", "sr"]\n'
                  'chunk = ["none", 32]\n',
    "quantize_error": 'task = "quantize_error"\nseeds = [0, 1]\n[fixed]\nn = 2048\n[axes]\n'
                      'format = ["e4m3", "mxfp6_e3m2"]\nrounding = ["rne", "rtz"]\n',
}


@pytest.mark.parametrize("kind", sorted(GRIDS))
def test_two_worker_cluster_equals_sequential_bit_for_bit(kind, tmp_path, cluster):
    s = parse(GRIDS[kind], kind)
    seq = fpsim.sweep.run(s, tmp_path / "seq", scheduler="sequential", progress=False)
    par = fpsim.sweep.run(s, tmp_path / "par", scheduler=cluster[0].scheduler_address,
                          progress=False)
    assert (seq["status"] == "ok").all() and len(seq) == len(s)
    pd.testing.assert_frame_equal(frame(tmp_path / "seq"), frame(tmp_path / "par"),
                                  check_exact=True)
    assert par["cell"].is_unique


def test_default_local_cluster_and_a_rerun_skips_finished_cells(tmp_path):
    s = parse(GRIDS["quantize_error"], "q")
    df = fpsim.sweep.run(s, tmp_path, workers=2, progress=False)
    assert (df["status"] == "ok").all()
    assert not (tmp_path / ".dask").exists()           # the workers' scratch space is removed
    stamps = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "cells").iterdir()}
    again = fpsim.sweep.run(s, tmp_path, scheduler="sequential", progress=False)
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "cells").iterdir()} == stamps
    pd.testing.assert_frame_equal(df.drop(columns="seconds"), again.drop(columns="seconds"))
    read = pd.read_parquet(tmp_path / "results.parquet")
    assert list(read["cell"]) == [c.id for c in s.cells()]


SLOW = ('task = "gemm_error"\n[fixed]\nk = 32768\nrows = 64\nrounding = "sr"\n[axes]\n'
        'acc = ["1-6-7", "1-6-9", "float16", "bfloat16"]\nchunk = ["none", 64]\n')


def test_a_worker_killed_mid_cell_loses_nothing(tmp_path, cluster):
    """SIGKILL the worker process that holds a cell; Dask reruns the cell on another worker and
    the table equals the undisturbed sequential run."""
    c, client = cluster
    s = parse(SLOW, "slow")
    killed = []

    def killer():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for addr, keys in client.processing().items():
                if keys:
                    time.sleep(0.2)
                    held = client.processing().get(addr, ())
                    if not held:
                        continue
                    pid = client.run(os.getpid, workers=[addr])[addr]
                    os.kill(pid, signal.SIGKILL)
                    killed.append(tuple(held))
                    return
            time.sleep(0.02)

    t = threading.Thread(target=killer)
    t.start()
    fpsim.sweep.run(s, tmp_path / "killed", scheduler=c.scheduler_address, progress=False)
    t.join()
    assert killed and killed[0][0].startswith("fpsim-cell-")
    fpsim.sweep.run(s, tmp_path / "calm", scheduler="sequential", progress=False)
    got = frame(tmp_path / "killed")
    assert (got["status"] == "ok").all() and got["cell"].is_unique and len(got) == len(s)
    pd.testing.assert_frame_equal(got, frame(tmp_path / "calm"), check_exact=True)
    client.wait_for_workers(2, timeout=60)              # the nanny restarted it


def test_a_killed_client_resumes_to_the_same_table(tmp_path):
    """Kill `fpsim sweep` (client, cluster and workers: its whole process group) after some
    cells are on disk, then `fpsim sweep --resume`."""
    f = tmp_path / "slow.toml"
    f.write_text(SLOW)
    out = tmp_path / "out"
    p = subprocess.Popen([sys.executable, "-m", "fpsim", "sweep", str(f), "--out", str(out),
                          "--workers", "2", "--quiet"], cwd=ROOT, start_new_session=True,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cells = out / "cells"
    deadline = time.monotonic() + 120
    n = 0
    while time.monotonic() < deadline and p.poll() is None:
        n = len([x for x in cells.glob("*.json")]) if cells.exists() else 0
        if n >= 1:
            break
        time.sleep(0.02)
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    done = len(list(cells.glob("*.json")))
    assert 1 <= done < 8, done
    r = subprocess.run([sys.executable, "-m", "fpsim", "sweep", "--resume", "--out", str(out),
                        "--scheduler", "sequential", "--quiet"], cwd=ROOT, capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    assert "8 cells, 8 ok" in r.stdout
    fpsim.sweep.run(parse(SLOW, "slow"), tmp_path / "calm", scheduler="sequential",
                    progress=False)
    pd.testing.assert_frame_equal(frame(out), frame(tmp_path / "calm"), check_exact=True)


def test_on_dask_a_raising_cell_and_a_cell_out_of_retries_are_recorded(tmp_path):
    """retries = 0: the cell whose worker is killed is recorded as failed (KilledWorker), the
    cell that raises too, the others finish; a rerun completes the killed one."""
    import dask
    from distributed import Client, LocalCluster
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        c = LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                         dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR)
    client = Client(c)
    text = SLOW.replace('acc = ["1-6-7", "1-6-9", "float16", "bfloat16"]', 'acc = ["1-6-7"]')
    text = text.replace("rows = 64\n", "").replace("[axes]\n", "[axes]\nrows = [64, 10000000]\n")
    s = parse(text, "t")
    slow = {"fpsim-cell-" + c.id for c in s.cells() if c.settings["rows"] == 64}
    killed = []

    def killer():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not killed:
            for addr, keys in client.processing().items():
                held = [k for k in keys if k in slow]
                if held:
                    pid = client.run(os.getpid, workers=[addr])[addr]
                    os.kill(pid, signal.SIGKILL)
                    killed.append(held[0])
                    return
            time.sleep(0.01)

    t = threading.Thread(target=killer)
    t.start()
    try:
        df = fpsim.sweep.run(s, tmp_path, scheduler=c.scheduler_address, progress=False)
    finally:
        t.join()
        client.close()
        c.close()
    assert killed
    lost = df[df["cell"] == killed[0][len("fpsim-cell-"):]]
    assert list(lost["status"]) == ["failed"] and "KilledWorker" in lost["error"].iloc[0]
    big = df[df["rows"] == 10000000]
    assert set(big["status"]) == {"failed"}
    assert all("MemoryError" in e or "KilledWorker" in e for e in big["error"])
    again = fpsim.sweep.run(s, tmp_path, scheduler="sequential", progress=False)
    assert list(again["status"]) == ["ok", "ok", "failed", "failed"]


def test_pending_cells_show_in_the_table(tmp_path):
    from fpsim.sweep.execute import Results, table
    s = parse(GRIDS["quantize_error"], "q")
    Results(tmp_path).create(s)
    df = table(s, {})
    assert (df["status"] == "pending").all() and len(df) == len(s)
    assert fpsim.sweep.load(tmp_path)["status"].tolist() == ["pending"] * len(s)


# ------------------------------------------------------------------------------ looking at it

def test_plot_layouts():
    two = parse('task = "gemm_error"\n[axes]\nk = [64, 128]\nrows = [2, 4]\n')
    assert _layout(two, None)[0] == "heatmap"
    three = parse('task = "gemm_error"\n[axes]\nacc = ["1-6-5", "1-6-9"]\n'
                  'chunk = ["none", 16]\nk = [64, 128]\n')
    assert _layout(three, None) == ("lines", "k", ["chunk"], "acc")
    chosen = parse('task = "gemm_error"\n[axes]\nacc = ["1-6-5", "1-6-9"]\n'
                   'chunk = ["none", 16]\nk = [64, 128]\n[plot]\nfacet = "chunk"\n')
    assert _layout(chosen, None) == ("lines", "k", ["acc"], "chunk")
    bits = parse('task = "train"\n[axes]\nrecipe = ["fp32", "hfp8_sun2019"]\n[plot]\n'
                 'x = "bits"\n')
    assert _layout(bits, None) == ("lines", "bits", ["recipe"], None)


@pytest.mark.parametrize("grid", [
    'task = "quantize_error"\n[fixed]\nn = 256\n[axes]\nscale = [1.0, 100.0]\nformat = '
    '["e4m3", "e5m2"]\n',
    'task = "quantize_error"\nseeds = [0, 1]\n[fixed]\nn = 256\n[axes]\nformat = ["e4m3", '
    '"e5m2"]\nrounding = ["rne", "rtz"]\nscale = [1.0, 2.0, 4.0]\n',
    'task = "quantize_error"\n[axes]\nn = [64, 128]\nscale = [1.0, 2.0]\n',
])
def test_smoke_plot_and_markdown_through_the_cli(grid, tmp_path):
    """Smoke test: the CLI runs a sweep, prints its table and writes a PNG."""
    f = tmp_path / "g.toml"
    f.write_text(grid)
    r = subprocess.run([sys.executable, "-m", "fpsim", "sweep", str(f), "--out",
                        str(tmp_path / "o"), "--scheduler", "sequential", "--plot", "--quiet"],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "| seeds |" in r.stdout and (tmp_path / "o" / "plot.png").stat().st_size > 5000
    r = subprocess.run([sys.executable, "-m", "fpsim", "sweep", "--plot", str(tmp_path / "o"),
                        "--metric", "rel_error_mean"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_shipped_sweeps_parse():
    folder = os.path.join(ROOT, "sweeps")
    names = sorted(x for x in os.listdir(folder) if x.endswith(".toml"))
    assert {"wang2018_accumulation.toml", "train_recipes.toml"} <= set(names)
    for name in names:
        s = fpsim.sweep.read(os.path.join(folder, name))
        assert len(s) >= 2


def test_plot_selects_every_facet_of_a_mixed_axis_and_numpy_numbers_are_numeric(tmp_path):
    """Regression: pandas stores the mixed axis chunk = ["none", 16] as text, and group keys come
    back as numpy integers; both once left panels empty or put k on a categorical axis."""
    from fpsim.sweep.plot import _cast, _numeric
    s = parse('task = "gemm_error"\n[fixed]\nrows = 2\n[axes]\nchunk = ["none", 16]\n'
              'k = [32, 64]\n', "m")
    df = fpsim.sweep.run(s, tmp_path, scheduler="sequential", progress=False)
    for v in s.axes["chunk"]:
        assert (df["chunk"] == _cast(df, "chunk", v)).sum() == 2
    assert _numeric(list(np.array([32, 64]))) and _numeric([1.5, np.float32(2)])
    assert not _numeric([True]) and not _numeric(["none", 16])


def test_categorical_x_follows_the_file_and_a_missing_cell_keeps_its_place(tmp_path):
    from fpsim.sweep.plot import _positions
    s = parse('task = "gemm_error"\n[fixed]\nk = 16\nrows = 2\n[axes]\n'
              'acc = ["1-6-9", "1-6-12", "1-6-5"]\nchunk = ["none", 16, 4]\n[plot]\n'
              'x = "chunk"\n', "c")
    df = fpsim.sweep.run(s, tmp_path, scheduler="sequential", progress=False)
    where, ticks = _positions(s, df, "chunk")
    assert ticks == ["none", "16", "4"] and where == {"none": 0, "16": 1, "4": 2}
    assert _positions(s, df, "acc") == ({"1-6-9": 0, "1-6-12": 1, "1-6-5": 2},
                                        ["1-6-9", "1-6-12", "1-6-5"])
    assert fpsim.sweep.plot(tmp_path).endswith("plot.png")      # smoke: draws


def test_no_axis_is_averaged_away_when_series_is_named():
    s = parse('task = "quantize_error"\n[axes]\nscale = [1.0, 2.0]\nformat = ["e4m3", '
              '"e5m2"]\nrounding = ["rne", "rtz"]\n[plot]\nseries = "format"\n')
    assert _layout(s, None) == ("lines", "scale", ["format"], "rounding")
    s = parse('task = "quantize_error"\n[axes]\nscale = [1.0, 2.0]\nformat = ["e4m3", '
              '"e5m2"]\nrounding = ["rne", "rtz"]\nn = [64, 128]\n[plot]\nseries = "format"\n')
    assert _layout(s, None) == ("lines", "n", ["format", "rounding"], "scale")


def test_a_sweep_built_in_code_can_be_reopened(tmp_path):
    from fpsim.sweep import Sweep
    s = Sweep("quantize_error", {"n": 64}, {"format": ["e4m3", "e5m2"], "scale": [1.0, 0.5]},
              (0, 3), name="mine", plot={"x": "scale", "logx": False})
    fpsim.sweep.run(s, tmp_path, scheduler="sequential", progress=False)
    back = fpsim.sweep.read(tmp_path / "sweep.toml")
    assert (back.task, back.fixed, back.axes, back.seeds, back.name, back.plot) == \
        (s.task, s.fixed, s.axes, s.seeds, s.name, s.plot)
    assert [c.id for c in back.cells()] == [c.id for c in s.cells()]
    assert "| seeds |" in fpsim.sweep.markdown(tmp_path)


def test_one_and_one_point_zero_are_the_same_cell():
    a = parse('task = "quantize_error"\n[fixed]\nscale = 1\n').cells()[0]
    b = parse('task = "quantize_error"\n').cells()[0]
    assert a.settings["scale"] == 1.0 and isinstance(a.settings["scale"], float)
    assert a.id == b.id
