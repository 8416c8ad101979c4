"""Running a sweep's cells - in this process, on a LocalCluster, or on an existing Dask cluster -
into a results directory that survives a killed worker or a killed client.

The results directory::

    DIR/sweep.toml          the sweep file (what ``--resume`` reruns)
    DIR/cells/<id>.json     one file per finished cell, written atomically (temporary file,
                            then rename): settings, status ("ok" or "failed"), error, metrics,
                            details (a training run's epochs), seconds
    DIR/results.parquet     the table of every cell of the sweep, one row each, rebuilt from the
                            cell files at the start and end of every run (and as cells
                            finish, at most every 10 s)

Workers compute and return; only this process (the client) writes, so a multi-machine cluster
needs no shared file system, and a cell is on disk once its file is.  A cell whose worker dies is
run again by Dask on another worker, up to ``retries`` times (Dask's
``distributed.scheduler.allowed-failures``); after that it is recorded as failed.  A cell that
raises (bad settings, an arithmetic error) is recorded as failed with its message, and the sweep
goes on; failed cells run again on the next run.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import time
from concurrent.futures import CancelledError

from .._args import is_int
from ..nn.training import write_atomic
from . import spec as _spec
from .tasks import TASKS

SPEC = "sweep.toml"
CELLS = "cells"
TABLE = "results.parquet"
TABLE_EVERY = 10.0       # seconds between rewrites of the table during a run


def need(module):
    """Import ``module`` of the sweep extra, or say how to install it (a ValueError)."""
    import importlib
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ValueError(f"fpsim.sweep needs {module} ({e}): pip install 'fpsim[sweep]'") \
            from None


def run_cell(task, settings, threads=None) -> dict:
    """Compute one cell and return its record; a cell's own error becomes status "failed".
    ``threads``: Numba threads for this cell (workers use 1; results never depend on it).

    >>> from fpsim.sweep import TASKS
    >>> rec = run_cell("gemm_error", dict(TASKS["gemm_error"].defaults, k=256, seed=0))
    >>> rec["status"], sorted(rec["metrics"])
    ('ok', ['nonfinite', 'rel_error_max', 'rel_error_mean', 'rel_error_median'])
    >>> bad = dict(TASKS["gemm_error"].defaults, acc="e9m99", seed=0)
    >>> run_cell("gemm_error", bad)["error"]  # doctest: +ELLIPSIS
    'ValueError: ...'
    """
    if threads is not None:
        import numba
        numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    t0 = time.perf_counter()
    try:
        metrics, detail = TASKS[task].run(settings)
        status, error = "ok", ""
    except Exception as e:                                   # recorded; the sweep goes on
        metrics, detail, status, error = {}, {}, "failed", f"{type(e).__name__}: {e}"
    return dict(id=_spec.cell_id(task, settings), task=task, settings=settings, status=status,
                error=error, metrics=metrics, detail=detail,
                seconds=time.perf_counter() - t0)


def lost_record(cell, error) -> dict:
    """The record of a cell that Dask gave up on (its workers kept dying)."""
    return dict(id=cell.id, task=cell.task, settings=cell.settings, status="failed",
                error=error, metrics={}, detail={}, seconds=0.0)


class Results:
    """The results directory of one sweep."""

    def __init__(self, out):
        self.out = str(out)
        self.cells = os.path.join(self.out, CELLS)

    def create(self, sweep):
        os.makedirs(self.cells, exist_ok=True)
        for folder in (self.out, self.cells):         # temporary files of a killed write
            for name in os.listdir(folder):
                if name.startswith(".tmp-"):
                    os.unlink(os.path.join(folder, name))
        text = sweep.to_toml()
        if "name" not in _spec.toml().loads(text):    # keep the file's name for titles
            text = f"name = {json.dumps(sweep.name)}\n" + text
        write_atomic(os.path.join(self.out, SPEC), lambda fh: fh.write(text))

    def sweep(self):
        path = os.path.join(self.out, SPEC)
        if not os.path.exists(path):
            raise ValueError(f"{self.out} holds no sweep ({SPEC} is missing); run "
                             f"`fpsim sweep FILE --out {self.out}` first")
        return _spec.read(path)

    def write(self, record):
        path = os.path.join(self.cells, record["id"] + ".json")
        write_atomic(path, lambda fh: json.dump(record, fh, indent=1))

    def records(self) -> dict:
        """{cell id: record} of every cell file (temporary files skipped)."""
        out = {}
        if not os.path.isdir(self.cells):
            return out
        for name in os.listdir(self.cells):
            if name.endswith(".json") and not name.startswith("."):
                with open(os.path.join(self.cells, name), encoding="utf-8") as fh:
                    rec = json.load(fh)
                if isinstance(rec, dict) and rec.get("id") == name[:-len(".json")]:
                    out[rec["id"]] = rec                # anything else is not a cell file
        return out

    def table_path(self):
        return os.path.join(self.out, TABLE)

    def write_table(self, sweep, records=None):
        df = table(sweep, self.records() if records is None else records)
        need("pyarrow")
        write_atomic(self.table_path(), lambda fh: df.to_parquet(fh, index=False), binary=True)
        return df

    def fresh(self) -> bool:
        """Whether the table is at least as new as every cell file."""
        path = self.table_path()
        if not os.path.exists(path) or not os.path.isdir(self.cells):
            return False
        t = os.stat(path).st_mtime_ns
        return all(e.stat().st_mtime_ns <= t for e in os.scandir(self.cells)
                   if e.name.endswith(".json"))


def table(sweep, records):
    """A pandas DataFrame: one row per cell of ``sweep`` in expansion order - cell, status
    ("ok", "failed", "pending": not run yet), error, seconds, every setting, every metric."""
    pd = need("pandas")
    task = TASKS[sweep.task]
    rows = []
    for cell in sweep.cells():
        rec = records.get(cell.id)
        row = dict(cell=cell.id, status="pending" if rec is None else rec["status"],
                   error="" if rec is None else rec["error"],
                   seconds=float("nan") if rec is None else float(rec["seconds"]))
        row.update(cell.settings)
        for m in task.metrics:
            v = None if rec is None else rec["metrics"].get(m)
            row[m] = float("nan") if v is None else v
        rows.append(row)
    df = pd.DataFrame(rows)
    for col in cell_columns(df):                   # a setting of mixed types ("none", 16): text
        kinds = {type(v) for v in df[col]}
        if str in kinds and len(kinds) > 1:
            df[col] = df[col].map(str)
    return df


def cell_columns(df):
    return [c for c in df.columns if c not in ("cell", "status", "error", "seconds")]


def load(out):
    """The table of the sweep in ``out`` as a pandas DataFrame, one row per cell (read from
    results.parquet when it is up to date, else rebuilt from the cell files).

    >>> import tempfile, fpsim
    >>> out = tempfile.mkdtemp()
    >>> s = fpsim.sweep.parse('task = "quantize_error"\\n[axes]\\nformat = ["e4m3", "e5m2"]\\n')
    >>> _ = fpsim.sweep.run(s, out, scheduler="sequential", progress=False)
    >>> df = fpsim.sweep.load(out)
    >>> list(df["format"]), list(df["status"]), bool((df["snr_db"] > 20).all())
    (['e4m3', 'e5m2'], ['ok', 'ok'], True)
    """
    pd = need("pandas")
    res = Results(out)
    if res.fresh():
        return pd.read_parquet(res.table_path())
    return table(res.sweep(), res.records())


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:                            # not on Linux
        return os.cpu_count() or 1


def _bar(total, initial, enabled):
    from tqdm.auto import tqdm
    return tqdm(total=total, initial=initial, desc="cells", unit="cell", leave=False,
                file=sys.stderr, disable=None if enabled else True)


def run(sweep, out, scheduler=None, workers=None, retries=None, progress=True, threads=None):
    """Run every cell of ``sweep`` (a :class:`Sweep`, or the path of a sweep file) that ``out``
    has not finished, and return the table (:func:`load`'s DataFrame).

    scheduler : None - a LocalCluster on this machine's loopback: ``workers`` processes (default:
        one per core), one thread and one Numba thread each, shut down at the end;
        "sequential" - every cell in this process, no Dask; or the address of a running Dask
        scheduler ("tcp://host:8786"), whose workers must have fpsim installed.
    retries : how many times a cell may lose its worker before it is recorded as failed
        (default: the sweep file's ``retries``, else 3).  With an existing scheduler this is the
        scheduler's own ``distributed.scheduler.allowed-failures``.
    threads : Numba threads per cell (results never depend on it); default: 1 on Dask workers,
        Numba's own setting with "sequential".

    A script that runs a sweep on a LocalCluster needs ``if __name__ == "__main__":`` around
    it, as every program that starts processes with multiprocessing's "spawn" does.
    """
    if not isinstance(sweep, _spec.Sweep):
        sweep = _spec.read(sweep)
    if scheduler is not None and not isinstance(scheduler, str):
        raise ValueError(f"scheduler must be None, 'sequential' or an address such as "
                         f"'tcp://127.0.0.1:8786'; got {scheduler!r}")
    retries = sweep.retries if retries is None else retries
    for name, v, low in (("threads", threads, 1), ("workers", workers, 1),
                         ("retries", retries, 0)):
        if v is not None and not (is_int(v) and v >= low):
            raise ValueError(f"{name} must be an int >= {low}, got {v!r}")
    if workers is not None and scheduler is not None:
        raise ValueError(f"workers sizes the LocalCluster; with scheduler={scheduler!r} it does "
                         f"not apply")
    res = Results(out)
    res.create(sweep)
    records = res.records()
    cells = sweep.cells()
    todo = [c for c in cells if records.get(c.id, {}).get("status") != "ok"]
    res.write_table(sweep, records)
    bar = _bar(len(cells), len(cells) - len(todo), progress)
    last = [time.monotonic()]
    failed = [0]

    def done(rec):
        res.write(rec)
        records[rec["id"]] = rec
        failed[0] += rec["status"] != "ok"
        bar.update(1)
        bar.set_postfix(failed=failed[0], left=bar.total - bar.n, refresh=False)
        if time.monotonic() - last[0] > TABLE_EVERY:
            res.write_table(sweep, records)
            last[0] = time.monotonic()

    import numba
    before = numba.get_num_threads()
    try:
        if scheduler == "sequential":
            for c in todo:
                done(run_cell(c.task, c.settings, threads))
        elif todo:
            _run_dask(todo, done, scheduler, workers or _cores(), retries,
                      1 if threads is None else threads, res.out)
    finally:
        numba.set_num_threads(before)
        bar.close()
    return res.write_table(sweep, records)


# Worker settings that keep a cell as fast as in a plain process (measured on a LeNet training
# cell; for an existing cluster, set the same keys in its Dask configuration):
# - Dask's statistical profiler samples every worker thread's Python stack every 10 ms; it alone
#   made the cell 2.3x slower.  The event loop's tick and monitors take the GIL often too.
# - The nanny sets MALLOC_TRIM_THRESHOLD_=65536 in its workers, which also switches off glibc's
#   dynamic mmap threshold: every temporary array above 128 KiB is then mapped and unmapped
#   afresh, and the page faults made im2col 2.5x slower.  fpsim keeps glibc's defaults, and the
#   one-thread settings of BLAS and OpenMP.
QUIET_WORKERS = {"distributed.nanny.pre-spawn-environ": {
                     "OMP_NUM_THREADS": 1, "MKL_NUM_THREADS": 1, "OPENBLAS_NUM_THREADS": 1},
                 "distributed.worker.profile.enabled": False,
                 "distributed.admin.tick.interval": "1s",
                 "distributed.admin.system-monitor.interval": "2s",
                 "distributed.worker.memory.monitor-interval": "1s"}


def local_cluster(workers, out):
    """The LocalCluster of :func:`run`: ``workers`` processes on 127.0.0.1, one thread and one
    Numba/BLAS thread each, scratch space in ``out``/.dask, no dashboard beyond loopback."""
    import logging

    import dask
    _, LocalCluster = _dask()
    one = {"NUMBA_NUM_THREADS": "1"}
    with dask.config.set(QUIET_WORKERS):
        return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                            host="127.0.0.1", dashboard_address="127.0.0.1:0",
                            local_directory=os.path.join(str(out), ".dask"), env=one,
                            silence_logs=logging.ERROR)


def _dask():
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError as e:
        raise ValueError(f"running a sweep on Dask needs dask.distributed ({e}): "
                         f"pip install 'fpsim[sweep]', or pass scheduler='sequential'") from None
    return Client, LocalCluster


def _run_dask(todo, done, scheduler, workers, retries, threads, out):
    import dask
    from dask.distributed import as_completed
    Client, _ = _dask()
    cluster = None
    with dask.config.set({"distributed.scheduler.allowed-failures": retries}):
        if scheduler is None:
            cluster = local_cluster(workers, out)
        client = Client(cluster if cluster is not None else scheduler)
    try:
        futures = {client.submit(run_cell, c.task, c.settings, threads,
                                 key=f"fpsim-cell-{c.id}", pure=False): c for c in todo}
        for fut in as_completed(futures):
            cell = futures[fut]
            try:
                rec = fut.result()
            except (CancelledError, asyncio.CancelledError) as e:   # the scheduler went away
                raise ValueError(f"Dask cancelled cell {cell.id} ({type(e).__name__}: {e}); "
                                 f"the finished cells are saved: run again with --resume") \
                    from None
            except Exception as e:                   # KilledWorker after `retries` deaths
                rec = lost_record(cell, f"{type(e).__name__}: {e}")
            done(rec)
            fut.release()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
            shutil.rmtree(os.path.join(out, ".dask"), ignore_errors=True)
