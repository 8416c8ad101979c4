"""Sweep files: read a TOML grid, check every key before anything runs, expand it into cells.

A sweep file::

    task = "gemm_error"              # what one cell computes: train, gemm_error, quantize_error
    name = "wang2018"                # optional, for titles
    seeds = {from = 0, to = 2}       # or a list; default [0]; the innermost axis
    retries = 3                      # optional: times a cell may lose its worker (default 3)

    [fixed]                          # settings every cell shares
    input = "e5m2"

    [axes]                           # settings to cross, in this order (the last varies fastest)
    acc = ["1-6-5", "1-6-9", "1-6-12"]        # a list of values
    chunk = ["none", 16, 64, 256]             # "none": a setting switched off (TOML has no null)
    rows = {from = 16, to = 64, step = 16}    # an inclusive integer range (step 1 by default)
    k = {from = 256, to = 65536, times = 2}   # a geometric integer range: 256, 512, ... 65536

    [plot]                           # optional: what `fpsim sweep --plot` draws
    x = "k"                          # default: the last numeric axis
    metric = "rel_error_mean"        # default: the task's main metric
    logx = true

A cell is one combination of the axes plus a seed; its settings are the task's defaults, then
``[fixed]``, then the axis values, then ``seed``.  Its id is the first 16 hex digits of the
SHA-256 of those settings written as sorted JSON, so the same settings have the same id in every
run, on every machine, and a rerun recognises the cells it has finished.

>>> from fpsim.sweep import spec
>>> s = spec.parse('task = "quantize_error"\\nseeds = [0, 1]\\n[axes]\\n'
...                'format = ["e4m3", "e5m2"]\\n', "example")
>>> [(c.settings["format"], c.settings["seed"]) for c in s.cells()]
[('e4m3', 0), ('e4m3', 1), ('e5m2', 0), ('e5m2', 1)]
>>> len({c.id for c in s.cells()})
4
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from dataclasses import dataclass, field

from . import tasks as _tasks

TOP_KEYS = ("task", "name", "seeds", "retries", "fixed", "axes", "plot")
PLOT_KEYS = ("x", "metric", "series", "facet", "logx", "logy")
MAX_CELLS = 1_000_000


def toml():
    """The TOML reader: the standard library's tomllib (Python 3.11+), else tomli."""
    try:
        import tomllib
    except ModuleNotFoundError:                       # Python 3.10
        try:
            import tomli as tomllib
        except ModuleNotFoundError:
            raise ValueError("reading sweep files on Python 3.10 needs tomli: pip install "
                             "'fpsim[sweep]'") from None
    return tomllib


class SweepError(ValueError):
    """A sweep file that cannot run; the message names the key and where it is."""


@dataclass(frozen=True)
class Cell:
    """One task of a sweep: its kind, its full settings and their stable id."""
    task: str
    settings: dict
    index: int                      # position in the sweep's expansion order

    @property
    def id(self) -> str:
        return cell_id(self.task, self.settings)


def cell_id(task: str, settings: dict) -> str:
    """16 hex digits of SHA-256 over the task and the settings as sorted JSON."""
    text = json.dumps({"task": task, "settings": settings}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Sweep:
    """A checked sweep file: task kind, fixed settings, axes (name -> values), seeds, plot."""
    task: str
    fixed: dict
    axes: dict
    seeds: tuple
    retries: int = 3
    name: str = "sweep"
    plot: dict = field(default_factory=dict)
    text: str = ""                  # the TOML it came from (kept beside the results)

    def cells(self) -> list:
        """Every cell, the axes crossed in the file's order (the last fastest), seeds innermost."""
        task = _tasks.TASKS[self.task]
        names = list(self.axes)
        out = []
        for values in itertools.product(*(self.axes[n] for n in names)):
            for seed in self.seeds:
                s = dict(task.defaults)
                s.update(self.fixed)
                s.update(zip(names, values))
                s["seed"] = seed
                out.append(Cell(self.task, s, len(out)))
        return out

    def __len__(self):
        return math.prod(len(v) for v in self.axes.values()) * len(self.seeds)

    def to_toml(self) -> str:
        """The sweep as a TOML file that :func:`parse` reads back to an equal sweep (the text
        it came from, when it came from one)."""
        if self.text:
            return self.text
        lines = [f"task = {_toml_value(self.task)}", f"name = {_toml_value(self.name)}",
                 f"seeds = {_toml_value(list(self.seeds))}", f"retries = {self.retries}"]
        for section, table in (("fixed", self.fixed), ("axes", self.axes), ("plot", self.plot)):
            lines.append(f"[{section}]")
            lines += [f"{k} = {_toml_value(v)}" for k, v in table.items()]
        return "\n".join(lines) + "\n"


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v)                       # a TOML basic string
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else ("nan" if v != v else
                                                  ("inf" if v > 0 else "-inf"))
    if isinstance(v, int):
        return str(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise SweepError(f"a sweep value must be a string, number, boolean or list; got {v!r}")


def _where(section, key):
    return f"{section}.{key}" if section else key


def _int_range(v, where):
    """An inclusive range table {from, to, step} or {from, to, times} -> list of ints."""
    bad = set(v) - {"from", "to", "step", "times"}
    if bad or "from" not in v or "to" not in v or ("step" in v and "times" in v):
        raise SweepError(f"{where}: a range is a table {{from = A, to = B}} with an optional "
                         f"step = S or times = T; got {v!r}")
    a, b = v["from"], v["to"]
    step, times = v.get("step", 1), v.get("times")
    for k, x in (("from", a), ("to", b), ("step", step), ("times", times)):
        if x is not None and (isinstance(x, bool) or not isinstance(x, int)):
            raise SweepError(f"{where}.{k} must be an integer, got {x!r}")
    if times is not None:
        if times < 2 or a < 1:
            raise SweepError(f"{where}: a geometric range needs times >= 2 and from >= 1; got "
                             f"{v!r}")
        out = []                                   # at most 63 values for int64 bounds
        while a <= b:
            out.append(a)
            a *= times
        return out
    if step == 0:
        raise SweepError(f"{where}.step must not be 0")
    r = range(a, b + (1 if step > 0 else -1), step)
    if len(r) > MAX_CELLS:
        raise SweepError(f"{where}: {len(r)} values; a sweep may have at most {MAX_CELLS} cells")
    return list(r)


def _values(v, where, allow_range=True):
    """An axis (or seeds) value: a non-empty list, or an integer range table."""
    if isinstance(v, dict) and allow_range:
        v = _int_range(v, where)
    if not isinstance(v, list):
        raise SweepError(f"{where} must be a list of values" +
                         (" or a range table {from = A, to = B}" if allow_range else "") +
                         f", got {v!r}")
    if not v:
        raise SweepError(f"{where} is empty: an axis needs at least one value")
    for x in v:
        if not isinstance(x, (str, int, float)):          # bool is an int
            raise SweepError(f"{where}: values are strings, numbers or booleans; got {x!r}")
    if len(v) != len({json.dumps(x) for x in v}):
        raise SweepError(f"{where} repeats a value: {v!r}")
    return v


def parse(text: str, source: str = "<sweep>") -> Sweep:
    """Check a sweep file's text and return the :class:`Sweep`; every error is a
    :class:`SweepError` (a ValueError) naming the key, raised before any cell runs.

    >>> parse('task = "train"\\n[axes]\\nrecipe = ["fp32", "fp9"]\\n', "mine")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    fpsim.sweep.spec.SweepError: mine: the cell with recipe = 'fp9': recipe must be one of ...
    """
    tomllib = toml()
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise SweepError(f"{source} is not valid TOML: {e}") from None
    bad = [k for k in raw if k not in TOP_KEYS]
    if bad:
        raise SweepError(f"{source}: unknown key {bad[0]!r}; a sweep file has "
                         f"{', '.join(TOP_KEYS)}")
    if "task" not in raw:
        raise SweepError(f"{source}: no 'task' key; task must be one of "
                         f"{', '.join(_tasks.TASKS)}")
    kind = raw["task"]
    if kind not in _tasks.TASKS:
        raise SweepError(f"{source}: task must be one of {', '.join(_tasks.TASKS)}; got {kind!r}")
    task = _tasks.TASKS[kind]
    name = raw.get("name", source)
    if not isinstance(name, str):
        raise SweepError(f"{source}: name must be a string, got {name!r}")
    retries = raw.get("retries", 3)
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise SweepError(f"{source}: retries must be an integer >= 0, got {retries!r}")
    seeds = _values(raw.get("seeds", [0]), "seeds")
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, int) or s < 0:
            raise SweepError(f"seeds: every seed must be an integer >= 0, got {s!r}")
    sections = {}
    for section in ("fixed", "axes", "plot"):
        sections[section] = raw.get(section, {})
        if not isinstance(sections[section], dict):
            raise SweepError(f"{source}: [{section}] must be a table, got "
                             f"{sections[section]!r}")
    fixed, axes = sections["fixed"], {}
    for section, table in (("fixed", fixed), ("axes", sections["axes"])):
        for key, v in table.items():
            if key == "seed":
                raise SweepError(f"{section}.seed: seeds are set by the top-level 'seeds' key")
            if key not in task.defaults:
                raise SweepError(f"{section}.{key}: unknown setting for task {kind!r}; it "
                                 f"takes {', '.join(sorted(task.defaults))}")
            if section == "axes":
                axes[key] = _values(v, f"axes.{key}")
    for key in set(fixed) & set(axes):
        raise SweepError(f"{key} is both in [fixed] and in [axes]")
    fixed = {k: task.normal(k, v) for k, v in fixed.items()}   # 1 and 1.0: one value, one id
    for key, vs in axes.items():
        axes[key] = [task.normal(key, v) for v in vs]
        if len(axes[key]) != len({json.dumps(x) for x in axes[key]}):
            raise SweepError(f"axes.{key} repeats a value: {vs!r}")
    n = math.prod(len(v) for v in axes.values()) * len(seeds)
    if n > MAX_CELLS:
        raise SweepError(f"{source}: {n} cells; a sweep may have at most {MAX_CELLS}")
    sweep = Sweep(kind, fixed, axes, tuple(seeds), retries, name, sections["plot"], text)
    _check_plot(sweep)
    # every value of every key, then every combination, through the task's own checks
    try:
        for key, v in fixed.items():
            task.check_value(key, v, f"fixed.{key}")
        for key, vs in axes.items():
            for v in vs:
                task.check_value(key, v, f"axes.{key}")
    except ValueError as e:
        raise SweepError(f"{source}: {e}") from None
    for cell in sweep.cells()[::len(sweep.seeds)]:      # one seed: the checks ignore it
        try:
            task.check(cell.settings)
        except ValueError as e:
            where = ", ".join(f"{k} = {cell.settings[k]!r}" for k in axes)
            raise SweepError(f"{source}: " + (f"the cell with {where}: " if where else "") +
                             str(e)) from None
    return sweep


def _check_plot(sweep):
    p = sweep.plot
    task = _tasks.TASKS[sweep.task]
    roles = [p[k] for k in ("x", "series", "facet") if isinstance(p.get(k), str)]
    if len(roles) != len(set(roles)):
        raise SweepError(f"plot: x, series and facet must name different columns; got {p!r}")
    for key, v in p.items():
        if key not in PLOT_KEYS:
            raise SweepError(f"plot.{key}: unknown key; [plot] takes {', '.join(PLOT_KEYS)}")
        if key in ("logx", "logy"):
            if not isinstance(v, bool):
                raise SweepError(f"plot.{key} must be true or false, got {v!r}")
            continue
        if not isinstance(v, str):
            raise SweepError(f"plot.{key} must be a string, got {v!r}")
        columns = set(sweep.axes) | set(task.metrics) | set(task.defaults)
        if key == "metric" and v not in task.metrics:
            raise SweepError(f"plot.metric must be one of {', '.join(task.metrics)}; got {v!r}")
        if key in ("series", "facet") and v not in sweep.axes:
            raise SweepError(f"plot.{key} must name an axis ({', '.join(sweep.axes) or 'none'}); "
                             f"got {v!r}")
        if key == "x" and v not in columns:
            raise SweepError(f"plot.{key} must name an axis, a setting or a metric "
                             f"({', '.join(sorted(columns))}); got {v!r}")


def read(path) -> Sweep:
    """Parse the sweep file at ``path``; its name (for titles) defaults to the file's stem.

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "snr.toml")
    >>> _ = open(path, "w").write('task = "quantize_error"\\n[axes]\\nscale = [1.0, 1e3]\\n')
    >>> s = read(path)
    >>> s.name, s.task, s.axes
    ('snr', 'quantize_error', {'scale': [1.0, 1000.0]})
    """
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    import os
    stem = os.path.splitext(os.path.basename(str(path)))[0]
    return parse(text, stem)
