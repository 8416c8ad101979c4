"""Grids of experiments on dask.distributed: ``fpsim sweep FILE.toml --out DIR``.

A sweep file names a task kind ("train", "gemm_error", "quantize_error"), fixed settings, axes
to cross and seeds (:mod:`fpsim.sweep.spec`); every combination is a cell with a stable id.
:func:`run` computes the cells not yet finished, on a LocalCluster, on an existing Dask cluster
or in this process, writing each finished cell atomically and a Parquet table of all of them
(:mod:`fpsim.sweep.execute`); :func:`load` reads the table into pandas; :func:`plot` draws it
(:mod:`fpsim.sweep.plot`).  Needs the ``sweep`` extra: ``pip install "fpsim[sweep]"``
(dask.distributed, pandas, pyarrow).

>>> import fpsim
>>> s = fpsim.sweep.parse('task = "gemm_error"\\n[fixed]\\nk = 512\\n[axes]\\n'
...                       'acc = ["float16", "float32"]\\n')
>>> len(s), [c.settings["acc"] for c in s.cells()]
(2, ['float16', 'float32'])
"""

from .spec import Cell, Sweep, SweepError, parse, read
from .tasks import TASKS
from .execute import load, run, run_cell
from .plot import markdown, plot

__all__ = ["Cell", "Sweep", "SweepError", "parse", "read", "TASKS", "run", "run_cell", "load",
           "plot", "markdown"]
