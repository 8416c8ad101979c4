"""The training loop, in one plain function, with checkpoints that make a run resumable.

>>> from fpsim.nn import training
>>> run = training.train("fp32", "mlp", "synthetic", epochs=1, progress=False)
>>> sorted(run), 0.0 <= run["test_accuracy"] <= 1.0
(['epochs', 'settings', 'test_accuracy', 'test_loss'], True)
"""

from __future__ import annotations

import copy
import json
import math
import os
import pickle
import tempfile
import time

import numpy as np

from .. import data as _data
from . import models as _models
from .layers import softmax_cross_entropy
from .optim import SGD, AdamW, check_hyperparameters
from .recipes import get as _recipe

EVAL_BATCH = 512


def evaluate(model, x, y, step_key, with_loss=False):
    """Accuracy of ``model`` (evaluation mode, its recipe's arithmetic) on (x, y); with
    ``with_loss``, (accuracy, mean cross-entropy in nats).  Text models predict every position:
    y (N, T) counts N*T predictions.  The quantizers' state (Autoflex statistics, GradScale
    counts) is put back afterwards, so evaluating does not steer training."""
    layers = model.gemm_layers()
    saved = [copy.deepcopy(m.datapath.quantizers) for m in layers]
    correct, total_loss, n = 0, 0.0, 0
    batch = EVAL_BATCH if x.ndim != 2 else max(1, EVAL_BATCH // 8)
    try:
        for i in range(0, len(x), batch):
            model.set_step(*step_key)
            logits = model.forward(x[i:i + batch], train=False)
            labels = y[i:i + batch].reshape(-1)
            correct += int((logits.argmax(axis=1) == labels).sum())
            if with_loss:
                total_loss += softmax_cross_entropy(logits, labels)[0] * len(labels)
            n += len(labels)
    finally:
        for m, q in zip(layers, saved):
            m.datapath.quantizers = q
    acc = correct / max(n, 1)
    return (acc, total_loss / max(n, 1)) if with_loss else acc


def write_atomic(path, write, binary=False):
    """Write via a temporary file in the same folder and rename it over ``path``: a run killed
    at any moment leaves either the old file or the new one, never half of one."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        with os.fdopen(fd, "wb" if binary else "w") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _check_positive(name, v, low=1):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
        raise ValueError(f"{name} must be an int >= {low}, got {v!r}")


def checkpoint_path(json_path, checkpoint=None):
    """The checkpoint file of a run: ``checkpoint``, else ``json_path`` + ".ckpt", else None."""
    if checkpoint is None and json_path is not None:
        return str(json_path) + ".ckpt"
    return checkpoint


def train(recipe="fp32", model="mlp", dataset="digits", epochs=10, seed=0, batch_size=32,
          lr=None, momentum=0.9, weight_decay=None, json_path=None, checkpoint=None,
          resume=False, plot=None, progress=True, checkpoint_every=50, stop_after=None):
    """Train ``model`` on ``dataset`` under ``recipe``; return the run as a dict.

    Image models: SGD with momentum and weight decay (default lr 0.05, weight decay 1e-4).
    The text model "gpt" (on "pydoc"): AdamW (betas 0.9, 0.95; default lr 3e-3, weight decay
    0.1 on the matrices; fpsim's choices), the loss averaged over every position.  The learning
    rate decays from ``lr`` to 0 over the run (cosine), so the last epochs settle instead of
    jumping around.

    The dict (also written to ``json_path``): "settings", per-epoch "epochs" entries (loss,
    train_accuracy over the epoch's batches, test_accuracy, test_loss in nats per prediction,
    seconds; text models add test_bits_per_char) and the final "test_accuracy" and
    "test_loss", accuracies as fractions.  Every random choice (initial weights, batch order,
    stochastic rounding) comes from ``seed``, so a run is repeatable.

    ``checkpoint`` (default: ``json_path`` + ".ckpt" when a JSON path is given) is rewritten
    atomically after every ``checkpoint_every`` steps of an epoch and at the end of every epoch;
    ``resume=True`` continues from it and ends with the weights an uninterrupted run ends with.
    ``stop_after=n`` returns None after n steps without checkpointing, as a killed run would.
    ``plot``: a PNG of the curves.
    """
    rec = _recipe(recipe)
    text = model in _models.TEXT_MODELS
    if text != (dataset in _data.TEXT_DATASETS):
        raise ValueError(f"model {model!r} and dataset {dataset!r} do not go together: the text "
                         f"models {_models.TEXT_MODELS} train on {_data.TEXT_DATASETS}, the "
                         f"others on images")
    lr = (3e-3 if text else 0.05) if lr is None else lr
    weight_decay = (0.1 if text else 1e-4) if weight_decay is None else weight_decay
    for name, v in (("epochs", epochs), ("batch_size", batch_size),
                    ("checkpoint_every", checkpoint_every)):
        _check_positive(name, v)
    _check_positive("seed", seed, low=0)
    if stop_after is not None:
        _check_positive("stop_after", stop_after)
    check_hyperparameters(lr, momentum, weight_decay)
    checkpoint = checkpoint_path(json_path, checkpoint)
    if resume and checkpoint is None:
        raise ValueError("resume=True needs a checkpoint path (or json_path)")
    settings = dict(recipe=rec.name, model=model, dataset=dataset, epochs=epochs, seed=seed,
                    batch_size=batch_size, lr=lr, momentum=momentum, weight_decay=weight_decay,
                    optimizer="adamw (betas 0.9, 0.95)" if text else "sgd")
    if text:
        del settings["momentum"]                      # AdamW has none
    ds = _data.load(dataset, seed)
    n_batches = -(-len(ds.x_train) // batch_size)

    state = None
    if resume and os.path.exists(checkpoint):
        with open(checkpoint, "rb") as fh:
            state = pickle.load(fh)
        if state["settings"] != settings:
            raise ValueError(f"checkpoint {checkpoint} is of another run: {state['settings']}")
    if state is None:
        net = _models.build(model, seed, ds.n_classes).configure(rec)
        if text:
            opt = AdamW(net.parameters(), lr, weight_decay=weight_decay, master=rec.master,
                        seed=seed)
        else:
            opt = SGD(net.parameters(), lr, momentum, weight_decay, master=rec.master, seed=seed)
        state = dict(settings=settings, model=net, opt=opt, epoch=0, batch=0, history=[],
                     partial=dict(loss=0.0, correct=0, seen=0, seconds=0.0))
    net, opt, hist = state["model"], state["opt"], state["history"]

    def save():
        if checkpoint is not None:
            write_atomic(checkpoint, lambda fh: pickle.dump(state, fh), binary=True)

    bar = _progress(epochs * n_batches, state["epoch"] * n_batches + state["batch"], rec.name,
                    progress)
    steps_run = 0
    try:
        while state["epoch"] < epochs:
            epoch, part = state["epoch"], state["partial"]
            order = np.random.default_rng([seed, 4, epoch]).permutation(len(ds.x_train))
            t0 = time.perf_counter()
            while state["batch"] < n_batches:
                b = state["batch"]
                idx = order[b * batch_size:(b + 1) * batch_size]
                step = epoch * n_batches + b
                opt.lr = lr * 0.5 * (1 + math.cos(math.pi * step / (epochs * n_batches)))
                net.set_step(seed, step)
                logits = net.forward(ds.x_train[idx], train=True)
                labels = ds.y_train[idx].reshape(-1)
                loss, dlogits = softmax_cross_entropy(logits, labels)
                net.backward(dlogits * np.float32(rec.loss_scale))
                opt.step(step, rec.loss_scale)
                part["loss"] += loss * len(labels)
                part["correct"] += int((logits.argmax(axis=1) == labels).sum())
                part["seen"] += len(labels)
                state["batch"] += 1
                steps_run += 1
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.3f}", epoch=epoch + 1, refresh=False)
                if stop_after is not None and steps_run >= stop_after:
                    return None                   # as a kill would: no checkpoint of its own
                if state["batch"] % checkpoint_every == 0:
                    part["seconds"] += time.perf_counter() - t0
                    t0 = time.perf_counter()
                    save()
            part["seconds"] += time.perf_counter() - t0
            test_acc, test_loss = evaluate(net, ds.x_test, ds.y_test, (seed, -1 - epoch),
                                           with_loss=True)
            hist.append(dict(epoch=epoch + 1, loss=part["loss"] / part["seen"],
                             train_accuracy=part["correct"] / part["seen"],
                             test_accuracy=test_acc, test_loss=test_loss,
                             seconds=part["seconds"]))
            if text:
                hist[-1]["test_bits_per_char"] = test_loss / math.log(2)
            state.update(epoch=epoch + 1, batch=0,
                         partial=dict(loss=0.0, correct=0, seen=0, seconds=0.0))
            save()
    finally:
        bar.close()
    run = Run(settings=settings, epochs=hist, test_accuracy=hist[-1]["test_accuracy"],
              test_loss=hist[-1]["test_loss"])
    if json_path is not None:
        write_atomic(json_path, lambda fh: json.dump(run, fh, indent=1))
    if plot is not None:
        plot_runs([run], plot)
    run.model = net
    return run


class Run(dict):
    """A run's JSON-able dict; its ``.model`` attribute holds the trained network."""


def _progress(total, initial, label, enabled):
    from tqdm.auto import tqdm
    return tqdm(total=total, initial=initial, desc=label, unit="step", leave=False,
                disable=None if enabled else True)        # None: off when not a terminal


def plot_runs(runs, path):
    """PNG of loss and test accuracy (text models: validation bits per character) per epoch of
    each run, side by side."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4.2))
    colors = plt.get_cmap("tab20").colors
    text = "test_bits_per_char" in runs[0]["epochs"][0]      # a text model
    for i, run in enumerate(runs):
        ep = [e["epoch"] for e in run["epochs"]]
        label = run["settings"]["recipe"]
        style = dict(color="black", lw=2.5, zorder=3) if label == "fp32" else \
            dict(color=colors[(2 * i) % 20 + (2 * i) // 20 % 2], lw=1.3)
        style.update(marker="o", ms=3.5, label=label)
        ax_loss.plot(ep, [e["loss"] for e in run["epochs"]], **style)
        ax_acc.plot(ep, [e["test_bits_per_char"] if text else 100 * e["test_accuracy"]
                         for e in run["epochs"]], **style)
    model, dataset = runs[0]["settings"]["model"], runs[0]["settings"]["dataset"]
    ax_loss.set(xlabel="epoch", ylabel="training loss", yscale="log",
                title=f"{model} on {dataset}: loss")
    if text:
        ax_acc.set(xlabel="epoch", ylabel="validation bits/char", title="validation loss")
    else:
        ax_acc.set(xlabel="epoch", ylabel="test accuracy (%)", title="test accuracy")
    from matplotlib.ticker import MaxNLocator, ScalarFormatter
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_loss.yaxis.set_major_formatter(ScalarFormatter())     # 1.6, 2, 2.4 rather than 1.6 x 10^0
    ax_loss.yaxis.set_minor_formatter(ScalarFormatter())
    # the empty corner: bits per character fall, accuracies rise
    ax_acc.legend(fontsize=7.5, loc="upper right" if text else "lower right", ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def compare(recipes, model="mlp", dataset="digits", epochs=10, seed=0, plot=None, json_path=None,
            progress=True, **kwargs):
    """Train ``model`` under each recipe (fp32 first, added if missing); return the runs and a
    markdown table of final test accuracies and their difference from fp32 (for text models:
    validation loss in nats and bits per character).  ``plot``: a PNG of
    every run's curves; ``json_path``: all runs and the table.

    >>> runs, table = compare(["fp4_sun2020"], "mlp", "synthetic", epochs=1, progress=False)
    >>> [r["settings"]["recipe"] for r in runs], table.splitlines()[0]
    (['fp32', 'fp4_sun2020'], '| recipe | test accuracy | vs fp32 (points) | seconds/epoch (median) |')
    """
    if "checkpoint" in kwargs or "resume" in kwargs:
        raise ValueError("compare runs several recipes: checkpoint/resume apply to single runs "
                         "(fpsim train)")
    chosen = [_recipe(r) for r in recipes]
    names = [r.name for r in chosen]
    if "fp32" not in names:
        chosen.insert(0, _recipe("fp32"))
        names.insert(0, "fp32")
    runs = [train(r, model, dataset, epochs, seed, progress=progress, **kwargs) for r in chosen]
    text = model in _models.TEXT_MODELS
    key = "test_loss" if text else "test_accuracy"
    base = runs[names.index("fp32")][key]
    rows = ["| recipe | test accuracy | vs fp32 (points) | seconds/epoch (median) |",
            "|---|---:|---:|---:|"]
    if text:
        rows = ["| recipe | validation loss (nats/char) | bits/char | vs fp32 (nats/char) | "
                "seconds/epoch (median) |", "|---|---:|---:|---:|---:|"]
    for name, run in zip(names, runs):
        sec = float(np.median([e["seconds"] for e in run["epochs"]]))   # not the compiling one
        if text:
            rows.append(f"| {name} | {run['test_loss']:.4f} | "
                        f"{run['test_loss'] / math.log(2):.3f} | {run['test_loss'] - base:+.4f} "
                        f"| {sec:.2f} |")
            continue
        rows.append(f"| {name} | {100 * run['test_accuracy']:.1f}% | "
                    f"{100 * (run['test_accuracy'] - base):+.1f} | {sec:.2f} |")
    table = "\n".join(rows)
    if plot is not None:
        plot_runs(runs, plot)
    if json_path is not None:
        out = dict(model=model, dataset=dataset, epochs=epochs, seed=seed,
                   runs=[dict(r) for r in runs], table=table)
        write_atomic(json_path, lambda fh: json.dump(out, fh, indent=1))
    return runs, table
