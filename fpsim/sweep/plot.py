"""Looking at a sweep: a markdown table (seeds averaged) and a plot chosen from the axes.

The plot draws the main metric (or ``[plot] metric``), the mean over seeds with a band from the
smallest to the largest seed where there are several:

- two numeric axes and nothing else varying: a heatmap;
- otherwise lines against ``x`` - ``[plot] x``, else the last numeric axis (``x`` may also be a
  metric such as a recipe's ``bits``) - one line per ``series`` (``[plot] series`` and the axes
  left over), one panel per value of ``facet`` (``[plot] facet``, else the first axis left over
  when two or more are, or when ``series`` is given and one is);
- no numeric axis: the first axis as categories, in the file's order.

Every axis with more than one value is x, a series or the facet: only seeds are averaged.

>>> import tempfile, fpsim
>>> out = tempfile.mkdtemp()
>>> s = fpsim.sweep.parse('task = "quantize_error"\\n[axes]\\nformat = ["e4m3", "e5m2"]\\n')
>>> _ = fpsim.sweep.run(s, out, scheduler="sequential", progress=False)
>>> print(fpsim.sweep.markdown(out).splitlines()[0])
| format | seeds | snr_db | rel_error_mean | underflow | overflow | bits |
>>> fpsim.sweep.plot(out).endswith("plot.png")
True
"""

from __future__ import annotations

import math
import numbers
import os

import numpy as np

from .execute import Results, load
from .tasks import TASKS


def _numeric(values) -> bool:
    """Whether every value is a number (Python's or numpy's; bools are not)."""
    return all(not isinstance(v, (bool, np.bool_)) and isinstance(v, numbers.Real)
               for v in values)


def main_metric(sweep, df=None) -> str:
    """``[plot] metric``, else the task's first metric (validation loss for text models)."""
    if "metric" in sweep.plot:
        return sweep.plot["metric"]
    if sweep.task == "train" and df is not None and df["bits_per_char"].notna().any():
        return "test_loss"
    return TASKS[sweep.task].metrics[0]


def varying(sweep) -> list:
    """The axes with more than one value, in the file's order."""
    return [a for a, v in sweep.axes.items() if len(v) > 1]


def _fmt(v) -> str:
    """A table cell: numbers to 4 digits; text on one line, with its pipes escaped."""
    if isinstance(v, float):
        return f"{v:.4g}" if math.isfinite(v) else str(v)
    return " ".join(str(v).split()).replace("|", "\\|")


def markdown(out, metrics=None) -> str:
    """The sweep in ``out`` as a markdown table: one row per combination of the axes, each metric
    the mean over the seeds that finished ("seeds" counts them), then the failed cells."""
    res = Results(out)
    sweep, df = res.sweep(), load(out)
    task = TASKS[sweep.task]
    metrics = list(metrics or task.metrics)
    axes = list(sweep.axes)
    ok = df[df["status"] == "ok"]
    lines = ["| " + " | ".join(axes + ["seeds"] + metrics) + " |",
             "|" + "---|" * len(axes) + "---:|" * (1 + len(metrics))]
    groups = ok.groupby(axes, sort=False, dropna=False) if axes else [((), ok)]
    for key, g in groups:
        key = key if isinstance(key, tuple) else (key,)
        vals = [_fmt(float(g[m].mean())) for m in metrics]
        lines.append("| " + " | ".join([_fmt(k) for k in key] + [str(len(g))] + vals) + " |")
    bad = df[df["status"] != "ok"]
    if len(bad):
        lines += ["", f"{len(bad)} cell(s) not finished:", "",
                  "| cell | " + " | ".join(axes + ["seed"]) + " | status | error |",
                  "|---|" + "---|" * (len(axes) + 3)]
        for _, r in bad.iterrows():
            lines.append(f"| {r['cell']} | " + " | ".join(_fmt(r[a]) for a in axes + ["seed"])
                         + f" | {r['status']} | {_fmt(r['error'])} |")
    return "\n".join(lines)


def _layout(sweep, df):
    """(kind, x, series axes, facet) of the plot the axes suggest.  Every varying axis is x, a
    series or the facet: none is averaged away (only seeds are)."""
    p, axes = sweep.plot, varying(sweep)
    numeric = [a for a in axes if _numeric(sweep.axes[a])]
    if not set(p) & {"x", "series", "facet"} and len(axes) == 2 and len(numeric) == 2:
        return "heatmap", None, numeric, None
    x = p.get("x") or (numeric[-1] if numeric else (axes[0] if axes else None))
    facet = p.get("facet")
    series = [p["series"]] if "series" in p else []
    others = [a for a in axes if a not in (x, facet) and a not in series]
    if facet is None and others and (series or len(others) >= 2):
        facet = others.pop(0)
    return "lines", x, series + others, facet


def plot(out, path=None, metric=None) -> str:
    """Draw the sweep in ``out`` into ``path`` (default ``out``/plot.png); return the path."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    res = Results(out)
    sweep, df = res.sweep(), load(out)
    metric = metric or main_metric(sweep, df)
    if metric not in TASKS[sweep.task].metrics:
        raise ValueError(f"metric must be one of {', '.join(TASKS[sweep.task].metrics)}; got "
                         f"{metric!r}")
    path = path or os.path.join(str(out), "plot.png")
    ok = df[df["status"] == "ok"]
    kind, x, series, facet = _layout(sweep, df)
    if kind == "heatmap":
        fig = _heatmap(plt, sweep, ok, series, metric)
    else:
        fig = _lines(plt, sweep, ok, x, series, facet, metric)
    fig.suptitle(f"{sweep.name}: {metric}" + (f" (mean of {len(sweep.seeds)} seeds)"
                                                if len(sweep.seeds) > 1 else ""), fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def _log(sweep, key, values, auto):
    if key in sweep.plot:
        return sweep.plot[key]
    v = np.asarray([u for u in values if isinstance(u, (int, float)) and math.isfinite(u)])
    return auto and v.size > 0 and (v > 0).all() and v.max() / v.min() >= 64


def _heatmap(plt, sweep, ok, axes, metric):
    ya, xa = axes
    ys, xs = sweep.axes[ya], sweep.axes[xa]
    grid = np.full((len(ys), len(xs)), np.nan)
    for i, yv in enumerate(ys):
        for j, xv in enumerate(xs):
            g = ok[(ok[ya] == _cast(ok, ya, yv)) & (ok[xa] == _cast(ok, xa, xv))]
            if len(g):
                grid[i, j] = g[metric].mean()
    fig, ax = plt.subplots(figsize=(1.2 + 0.7 * len(xs), 1.2 + 0.5 * len(ys)))
    im = ax.imshow(grid, aspect="auto", cmap="viridis", origin="lower")
    ax.set(xticks=range(len(xs)), xticklabels=xs, yticks=range(len(ys)), yticklabels=ys,
           xlabel=xa, ylabel=ya)
    finite = grid[np.isfinite(grid)]
    mid = (finite.min() + finite.max()) / 2 if finite.size else 0.0
    for i in range(len(ys)):
        for j in range(len(xs)):
            if not np.isnan(grid[i, j]):
                light = math.isfinite(grid[i, j]) and grid[i, j] > mid    # viridis: yellow
                ax.text(j, i, f"{grid[i, j]:.3g}", ha="center", va="center", fontsize=7,
                        color="black" if light else "white")
    fig.colorbar(im, ax=ax, label=metric)
    return fig


def _positions(sweep, ok, x):
    """{table value: x position} and the tick labels of a categorical x (None: numeric x)."""
    if x is None:
        return {}, None
    values = sweep.axes.get(x)
    if values is None:                               # a metric or a fixed setting
        values = list(dict.fromkeys(ok[x].tolist()))
    if _numeric(values):
        return {v: v for v in values}, None
    return {_cast(ok, x, v): i for i, v in enumerate(values)}, [str(v) for v in values]


def _lines(plt, sweep, ok, x, series, facet, metric):
    panels = sweep.axes[facet] if facet else [None]
    cols = min(len(panels), 4)
    rows = -(-len(panels) // cols)
    fig, axs = plt.subplots(rows, cols, figsize=(max(4.2 * cols, 6.4), 3.4 * rows),
                            squeeze=False, sharey=True)
    where, ticks = _positions(sweep, ok, x)
    logx = ticks is None and x is not None and _log(sweep, "logx", list(where), True)
    logy = _log(sweep, "logy", ok[metric].tolist(), metric.startswith("rel_error"))
    for n, pv in enumerate(panels):
        ax = axs[n // cols][n % cols]
        sub = ok if facet is None else ok[ok[facet] == _cast(ok, facet, pv)]
        groups = list(sub.groupby(series, sort=False)) if series else [((), sub)]
        for key, g in groups:
            key = key if isinstance(key, tuple) else (key,)
            label = ", ".join(f"{s}={k}" for s, k in zip(series, key)) or metric
            if x is None:
                stats = [(0, g[metric].mean(), g[metric].min(), g[metric].max())]
            else:
                stats = sorted((where.get(xv, xv), h[metric].mean(), h[metric].min(),
                                h[metric].max()) for xv, h in g.groupby(x, sort=False))
            pos, mean, lo, hi = (np.array(c, float) for c in zip(*stats))
            line, = ax.plot(pos, mean, marker="o", ms=3.5, lw=1.3, label=label)
            if len(sweep.seeds) > 1 and len(pos) > 1:
                ax.fill_between(pos, lo, hi, color=line.get_color(), alpha=0.15, lw=0)
            elif len(sweep.seeds) > 1:                   # one point: its spread as a bar
                ax.errorbar(pos, mean, yerr=[mean - lo, hi - mean], fmt="none",
                            ecolor=line.get_color(), capsize=3, lw=1)
        if ticks is not None:
            ax.set_xticks(range(len(ticks)), ticks, rotation=30)
        ax.set(xlabel=x or "", ylabel=metric, title=f"{facet} = {pv}" if facet else "")
        if logx:
            ax.set_xscale("log", base=2)
        if logy:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        if series and len(groups) > 6 and len(panels) == 1:     # many: beside the axes
            ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
        elif series:
            ax.legend(fontsize=7)
    for n in range(len(panels), rows * cols):
        axs[n // cols][n % cols].set_visible(False)
    return fig


def _cast(df, col, v):
    """An axis value as its table column holds it (mixed-type axes are stored as text)."""
    return str(v) if not isinstance(v, str) and any(isinstance(u, str) for u in df[col]) else v
