"""The ``fpsim`` command: formats, table, validate, vectors, engines, probe, recipes, train,
compare, sweep, bench."""

from __future__ import annotations

import argparse
import sys

import numpy as np

from . import validate as _v
from ._args import ROUNDINGS
from .formats import (BlockFormat, ExponentFormat, FixedFormat, FloatFormat, PositFormat,
                      Radix4Format, describe, registered_formats)


def _g(v: float) -> str:
    return f"{v:.6g}"


def _describe_row(f):
    """(kind, bits, max, smallest positive, layout) of any format."""
    if isinstance(f, BlockFormat):
        kind, el = "block", f.element
        blk = "tensor" if f.block is None else (
            f"{f.block[0]}x{f.block[1]}" if isinstance(f.block, tuple) else f"{f.block}")
        if f.scale_format is not None:
            sf = f.scale_format
            return (kind, el.bits, el.max * sf.max, el.min_subnormal * sf.min_subnormal,
                    f"{el.spec} elements, one {sf.spec} scale value per {blk}")
        layout = (f"{el.spec} elements, one {f.scale_bits}-bit scale 2**({f.scale_min}.."
                  f"{f.scale_max}) per {blk}" + (", NaN scale" if f.nan_scale else ""))
        return (kind, el.bits, el.max * 2.0 ** f.scale_max, el.min_subnormal * 2.0 ** f.scale_min,
                layout)
    if isinstance(f, FixedFormat):
        layout = ("two's complement" if f.signed else "unsigned") + \
            (", saturate" if f.saturate else ", wrap")
        return "fixed", f.bits, f.max, f.step, layout
    if isinstance(f, FloatFormat):
        layout = f"bias {f.bias}, {f.specials}" + ("" if f.subnormals else ", ftz") + \
            (", sat" if f.saturate else "")
        return "float", f.bits, f.max, f.min_subnormal, layout
    if isinstance(f, ExponentFormat):
        return "exponent", f.bits, f.max, f.min_subnormal, f"bias {f.bias}, unsigned, NaN"
    if isinstance(f, Radix4Format):
        return "radix-4", f.bits, f.max, f.min_subnormal, f"bias {f.bias}, phase {f.phase}, sat"
    if isinstance(f, PositFormat):
        return "posit", f.bits, f.max, f.min_subnormal, f"es {f.es}, NaR"
    raise ValueError(f"unknown kind of format: {f!r}")


def formats_table() -> str:
    """Markdown table of every named format."""
    rows = ["| name | kind | spec | bits | max | min positive | layout | source |",
            "|---|---|---|---:|---:|---:|---|---|"]
    for name, f in registered_formats().items():
        kind, bits, big, small, layout = _describe_row(f)
        src = describe(name).split(";")[0].split(":")[0]
        rows.append(f"| {name} | {kind} | {f.spec} | {bits} | {_g(big)} | {_g(small)} | "
                    f"{layout} | {src} |")
    return "\n".join(rows)


def _printing(table):
    """A command that prints ``table()``."""
    def command(args):
        print(table())
        return 0
    return command


def _cmd_table(args):
    _v.write_table(args.format, args.output or sys.stdout)
    return 0


def _cmd_vectors(args):
    _v.write_vectors(args.format, args.output or sys.stdout, rounding=args.rounding,
                     input_type=args.input, sr_bits=args.sr_bits, seed=args.seed,
                     random_count=args.random)
    return 0


def _cmd_validate(args):
    from tqdm import tqdm
    files = (_v.shipped_files() if not args.no_shipped else []) + list(args.files)
    bar = tqdm(total=len(files), desc="validate", unit="file", leave=False, file=sys.stderr,
               disable=not sys.stderr.isatty())
    reports = _v.validate(args.files, shipped=not args.no_shipped, progress=lambda r: bar.update())
    bar.close()
    print(_v.reports_text(reports), end="")
    return 1 if any(r.failed for r in reports) else 0


def _epochs_table(run) -> str:
    text = "test_bits_per_char" in run["epochs"][0]
    rows = ["| epoch | loss | train accuracy | test accuracy | seconds |",
            "|---:|---:|---:|---:|---:|"]
    if text:
        rows = ["| epoch | loss (nats/char) | validation loss (nats/char) | bits/char | "
                "validation accuracy | seconds |", "|---:|---:|---:|---:|---:|---:|"]
    for e in run["epochs"]:
        if text:
            rows.append(f"| {e['epoch']} | {e['loss']:.4f} | {e['test_loss']:.4f} | "
                        f"{e['test_bits_per_char']:.3f} | {100 * e['test_accuracy']:.1f}% | "
                        f"{e['seconds']:.2f} |")
            continue
        rows.append(f"| {e['epoch']} | {e['loss']:.4f} | {100 * e['train_accuracy']:.1f}% | "
                    f"{100 * e['test_accuracy']:.1f}% | {e['seconds']:.2f} |")
    return "\n".join(rows)


def _train_kwargs(args):
    return dict(epochs=args.epochs, seed=args.seed, batch_size=args.batch_size, lr=args.lr,
                progress=not args.quiet)


def _cmd_train(args):
    import os
    from .nn.training import checkpoint_path, train
    ckpt = checkpoint_path(args.json, args.checkpoint)
    if args.resume and ckpt and not os.path.exists(ckpt):
        print(f"fpsim train: no checkpoint at {ckpt}; starting from the beginning",
              file=sys.stderr)
    run = train(args.recipe, args.model, args.dataset, json_path=args.json,
                checkpoint=args.checkpoint, resume=args.resume, plot=args.plot,
                **_train_kwargs(args))
    print(f"{args.recipe} / {args.model} / {args.dataset}, seed {args.seed}")
    print(_epochs_table(run))
    if "test_bits_per_char" in run["epochs"][-1]:
        print(f"validation loss: {run['test_loss']:.4f} nats/char, "
              f"{run['epochs'][-1]['test_bits_per_char']:.3f} bits/char")
    else:
        print(f"test accuracy: {100 * run['test_accuracy']:.1f}%")
    return 0


def recipes_table() -> str:
    """Markdown table of every training recipe preset (fpsim.nn.recipes)."""
    from .nn import recipes
    rows = ["| recipe | weights | activations | errors | weight gradients | forward accumulator "
            "| master weights | kept layers | source |", "|---|---|---|---|---|---|---|---|---|"]
    for name, r in recipes.RECIPES.items():
        d = r.describe()
        src = d["source"].split(":")[0]
        rows.append(f"| {name} | {d['weights']} | {d['activations']} | {d['errors']} | "
                    f"{d['gradients']} | {d['forward_acc']} | {d['master']} | {d['keep']} | "
                    f"{src} |")
    return "\n".join(rows)


def engines_table() -> str:
    """Markdown table of every matrix engine modelled: shape, formats and model parameters."""
    from .engines import engine, engines
    rows = ["| arch | instruction | m x n x k | A, B | C | D | model |",
            "|---|---|---|---|---|---|---|"]
    for arch, ins in engines():
        e = engine(arch, ins.replace("nN", "n8"))
        scale = f" (scale {e.scale_format} per {e.block})" if e.block else ""
        rows.append(f"| {arch} | {ins} | {e.m} x {'N' if 'nN' in ins else e.n} x {e.k} | "
                    f"{e.a_format}, {e.b_format}{scale} | {e.c_format} | "
                    f"{np.dtype(e.d_dtype).name} | {e.model.describe()} |")
    return "\n".join(rows)


def _cmd_probe(args):
    from .engines import engine
    from .probe import device_probe, probe_table
    eng = engine(args.arch, args.instruction)
    if args.device == "cuda":
        print(device_probe(eng))
        return 0
    f16 = None
    parts = args.instruction.split(".")
    if parts[-4:] == ["f32", "f16", "f16", "f32"]:        # the chip's f16-output twin
        try:
            f16 = engine(args.arch, ".".join(parts[:-4] + ["f16", "f16", "f16", "f16"]))
        except ValueError:
            f16 = None
    print(probe_table(eng, f16))
    return 0


def _cmd_compare(args):
    from .nn import recipes
    from .nn.training import compare
    names = list(recipes.RECIPES) if args.recipes == "all" else \
        [r.strip() for r in args.recipes.split(",") if r.strip()]
    _, table = compare(names, args.model, args.dataset, plot=args.plot, json_path=args.json,
                       **_train_kwargs(args))
    print(f"{args.model} on {args.dataset}, {args.epochs} epochs, seed {args.seed}")
    print(table)
    return 0


def _cmd_bench(args):
    import os
    import runpy
    here = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks")
    if not os.path.exists(os.path.join(here, "__main__.py")):
        raise ValueError(f"fpsim bench runs the benchmarks/ folder of a source checkout; "
                         f"{here} has none")
    argv = (["--quick"] if args.quick else []) + (["--json", args.json] if args.json else [])
    old = sys.argv
    sys.argv = ["fpsim bench"] + argv
    try:
        runpy.run_path(os.path.join(here, "__main__.py"), run_name="__main__")
    finally:
        sys.argv = old
    return 0


def _cmd_sweep(args):
    from . import sweep
    if args.plot not in (None, True):                  # --plot DIR: look at a finished sweep
        if args.file or args.out:
            raise ValueError("--plot DIR draws a sweep's results; to run a sweep and plot it, "
                             "give FILE --out DIR --plot")
        print(sweep.markdown(args.plot))
        print(f"plot: {sweep.plot(args.plot, metric=args.metric)}")
        return 0
    if not args.out:
        raise ValueError("--out DIR is required: the results directory")
    if args.file is None and not args.resume:
        raise ValueError("give a sweep FILE, or --resume to continue the sweep in --out")
    from .sweep.execute import Results
    spec = sweep.read(args.file) if args.file else Results(args.out).sweep()
    df = sweep.run(spec, args.out, scheduler=args.scheduler, workers=args.workers,
                   retries=args.retries, progress=not args.quiet)
    counts = df["status"].value_counts().to_dict()
    print(f"{spec.name}: {len(df)} cells, " + ", ".join(f"{v} {k}" for k, v in counts.items())
          + f"; table: {args.out}/results.parquet")
    print(sweep.markdown(args.out))
    if args.plot:
        print(f"plot: {sweep.plot(args.out, metric=args.metric)}")
    return 0 if counts.get("ok", 0) == len(df) else 1


def _training_args(s, epochs):
    from .data import DATASETS
    from .nn.models import MODELS
    s.add_argument("--model", default="mlp", choices=MODELS)
    s.add_argument("--dataset", default="digits", choices=DATASETS)
    s.add_argument("--epochs", type=int, default=epochs)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--batch-size", type=int, default=32)
    s.add_argument("--lr", type=float, default=None,
                   help="learning rate (default: SGD 0.05 with momentum 0.9 for the image "
                        "models, AdamW 3e-3 for gpt)")
    s.add_argument("--json", help="write the run(s) as JSON to this path")
    s.add_argument("--plot", help="write a PNG of the training curves to this path")
    s.add_argument("--quiet", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fpsim", description="Bit-exact low-precision arithmetic.")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("formats", help="table of every named format")
    s.set_defaults(func=_printing(formats_table))

    s = sub.add_parser("table", help="CSV of every code of a format (<= 16 bits) and its value; "
                                     "for a block format, of its element format")
    s.add_argument("format", help="name or spec string, e.g. float8_e4m3fn, e5m2, 1-6-9")
    s.add_argument("-o", "--output", help="file to write (default: standard output)")
    s.set_defaults(func=_cmd_table)

    s = sub.add_parser("validate", help="check the kernels against the shipped golden tables "
                                        "and vectors, and against the given files")
    s.add_argument("files", nargs="*", help="table (.csv) or test-vector files")
    s.add_argument("--no-shipped", action="store_true", help="check only the given files")
    s.set_defaults(func=_cmd_validate)

    s = sub.add_parser("vectors", help="write quantize test vectors for an RTL testbench")
    s.add_argument("format")
    s.add_argument("--rounding", default="rne", choices=ROUNDINGS)
    s.add_argument("--sr-bits", type=int, default=None, help="random bits (needed with --rounding sr)")
    s.add_argument("--input", default="binary32", choices=tuple(_v.INPUT_TYPES))
    s.add_argument("--random", type=int, default=1000, help="random input bit patterns to add")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("-o", "--output", help="file to write (default: standard output)")
    s.set_defaults(func=_cmd_vectors)

    s = sub.add_parser("engines", help="table of every matrix engine (tensor-core instruction) "
                                       "modelled, with its fused dot-add parameters")
    s.set_defaults(func=_printing(engines_table))

    s = sub.add_parser("probe", help="run Fasi et al.'s discriminating tests on a matrix engine "
                                     "and print its feature table")
    s.add_argument("arch", help="e.g. volta, ampere, hopper")
    s.add_argument("instruction", help="an f16-input instruction, e.g. mma.m8n8k4.f32.f16.f16.f32")
    s.add_argument("--device", choices=("model", "cuda"), default="model",
                   help="cuda: the same vectors on this machine's GPU through PyTorch")
    s.set_defaults(func=_cmd_probe)

    s = sub.add_parser("recipes", help="table of every training recipe preset")
    s.set_defaults(func=_printing(recipes_table))

    s = sub.add_parser("train", help="train a model under a recipe (fpsim.nn); prints the "
                                     "epochs and the test accuracy")
    s.add_argument("--recipe", default="hfp8_sun2019",
                   help="a preset of fpsim.nn.recipes (default hfp8_sun2019)")
    _training_args(s, epochs=5)
    s.add_argument("--checkpoint", help="checkpoint file (default: the JSON path + .ckpt)")
    s.add_argument("--resume", action="store_true", help="continue from the checkpoint")
    s.set_defaults(func=_cmd_train)

    s = sub.add_parser("compare", help="train one model under several recipes; table of final "
                                       "test accuracies against fp32")
    s.add_argument("--recipes", default="fp8_wang2018,hfp8_sun2019,fp4_sun2020",
                   help="comma-separated presets, or 'all' (fp32 is always included)")
    _training_args(s, epochs=5)
    s.set_defaults(func=_cmd_compare)

    s = sub.add_parser("sweep", help="run a grid of experiments (a TOML sweep file) on Dask; "
                                     "or --plot DIR: table and plot of a finished sweep")
    s.add_argument("file", nargs="?", help="the sweep file (see sweeps/ for examples)")
    s.add_argument("--out", help="results directory: one JSON file per finished cell and "
                                 "results.parquet")
    s.add_argument("--scheduler", help="address of a running Dask scheduler (tcp://host:8786), "
                                       "or 'sequential' (this process, no Dask); default: a "
                                       "LocalCluster on this machine")
    s.add_argument("--workers", type=int, help="LocalCluster processes (default: one per core; "
                                               "not with --scheduler)")
    s.add_argument("--retries", type=int, help="times a cell may lose its worker on the "
                                               "LocalCluster (default: the file's retries, else "
                                               "3); an existing scheduler uses its own setting")
    s.add_argument("--resume", action="store_true", help="continue the sweep stored in --out "
                                                         "(FILE may be omitted)")
    s.add_argument("--plot", nargs="?", const=True, metavar="DIR",
                   help="--plot DIR: print the table of a finished sweep and draw DIR/plot.png; "
                        "as a flag after a run: plot it")
    s.add_argument("--metric", help="the metric to plot (default: the task's main one)")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=_cmd_sweep)

    s = sub.add_parser("bench", help="run every benchmark (python -m benchmarks): one table, "
                                     "one JSON")
    s.add_argument("--quick", action="store_true", help="smoke sizes (under a minute)")
    s.add_argument("--json", help="where to write the JSON (default "
                                  "benchmarks/results/suite.json)")
    s.set_defaults(func=_cmd_bench)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, OSError) as e:     # bad input or a path that cannot be read: one line
        print(f"fpsim {args.command}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
