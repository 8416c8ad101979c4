"""Write notebooks/*.ipynb from the cell sources below (outputs stripped).

    python scripts/make_notebooks.py

The notebooks are generated so that their code can be reviewed as plain Python here; edit this
file, not the .ipynb files, and rerun it.
"""

import os

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(os.path.dirname(HERE), "notebooks")

SETUP = '''import os
import numpy as np
import matplotlib
import matplotlib.pyplot as plt
import fpsim

FIGURES = os.environ.get("FPSIM_FIGURES", "figures")   # where every plot is saved as PNG
os.makedirs(FIGURES, exist_ok=True)
%matplotlib inline'''

FORMATS = [
    new_markdown_cell("""# Formats: value grids, rounding error, dynamic range

Pick any format fpsim knows (a name from `fpsim formats`, or a spec string such as `e3m4`,
`1-6-9`, `fixed<4,12>`, `posit<8,1>`), see where its values lie, how large the relative rounding
error is across its range under each rounding mode, and how its range compares with every named
format."""),
    new_code_cell(SETUP),
    new_code_cell('''FORMAT = "float8_e4m3fn"          # change me: "e5m2", "hfp8_143", "fixed<4,12>", "posit8", "fp4_130" ...
f = fpsim.format(FORMAT)
print(fpsim.describe(FORMAT) if FORMAT in fpsim.registered_formats() else f.spec)
values = f.values()
positive = values[values > 0]
print(f"{f.bits} bits, {len(values)} finite values, max {positive.max():g}, "
      f"smallest positive {positive.min():g}")'''),
    new_markdown_cell("## The value grid on a log axis\n\nEach tick is one positive value; "
                      "the spacing shows the binades (and subnormals at the bottom)."),
    new_code_cell('''fig, ax = plt.subplots(figsize=(10, 1.8))
ax.eventplot(positive, orientation="horizontal", lineoffsets=0, linelengths=1, linewidths=0.8)
ax.set_xscale("log", base=2)
ax.set_yticks([])
ax.set_xlabel("positive values of " + FORMAT)
fig.tight_layout()
fig.savefig(os.path.join(FIGURES, "formats_grid.png"), dpi=100)'''),
    new_markdown_cell("## Relative rounding error across the range, per rounding mode\n\n"
                      "20 000 log-uniform inputs between the smallest positive value and the "
                      "largest; stochastic rounding draws from seed 0."),
    new_code_cell('''rng = np.random.default_rng(0)
lo, hi = np.log2(positive.min()), np.log2(positive.max())
x = np.sort(2.0 ** rng.uniform(lo, hi, 20000))
modes = [m for m in fpsim.ROUNDINGS if m in ("rne", "rtz", "rup", "rto", "sr")]
fig, axes = plt.subplots(len(modes), 1, sharex=True, sharey=True, figsize=(10, 1.5 * len(modes)))
for ax, mode in zip(axes, modes):
    q = fpsim.quantize(x, f, rounding=mode, seed=0)
    err = np.abs(q - x) / x
    ax.plot(x, np.maximum(err, 1e-12), ".", ms=1, alpha=0.5)
    ax.set(xscale="log", yscale="log", ylim=(1e-5, 2), ylabel=mode)
axes[0].set_title(f"relative rounding error |q(x) - x| / x of {FORMAT}, per rounding mode")
axes[-1].set_xlabel("input value")
fig.tight_layout()
fig.savefig(os.path.join(FIGURES, "formats_error.png"), dpi=100)'''),
    new_markdown_cell("## Dynamic range of every named format\n\nFrom the smallest positive "
                      "value to the largest (block formats: element range times the scale "
                      "range)."),
    new_code_cell('''def span(fmt):
    if isinstance(fmt, fpsim.BlockFormat):
        el = fmt.element
        return el.min_subnormal * 2.0 ** fmt.scale_min, el.max * 2.0 ** fmt.scale_max
    return fmt.min_subnormal, fmt.max

names = [n for n in fpsim.registered_formats() if n != "float64"]   # float64 would dwarf the rest
spans = [span(fpsim.format(n)) for n in names]
fig, ax = plt.subplots(figsize=(9, 0.22 * len(names) + 1))
for i, (n, (a, b)) in enumerate(zip(names, spans)):
    ax.plot([np.log2(a), np.log2(b)], [i, i], lw=5, solid_capstyle="butt",
            color="tab:red" if n == FORMAT else "tab:blue")
ax.set_yticks(range(len(names)))
ax.set_yticklabels(names, fontsize=7)
ax.set_xlabel("log2 of the value (smallest positive .. largest)")
ax.invert_yaxis()
ax.grid(axis="x", alpha=0.3)
fig.tight_layout()
fig.savefig(os.path.join(FIGURES, "formats_range.png"), dpi=100)'''),
]

ACCUMULATION = [
    new_markdown_cell("""# Accumulation: swamping, chunks, adder trees, Kulisch

A dot product of N values rounded to e5m2, summed in a narrow 1-6-9 accumulator (Wang et al.
2018). Once the register is large, each addend falls below half an ulp and is lost (swamping).
Chunk-based accumulation, a pairwise adder tree and an exact Kulisch accumulator each fix it
differently."""),
    new_code_cell(SETUP),
    new_code_cell('''rng = np.random.default_rng(0)
N_MAX = 2 ** 14
values = fpsim.quantize(rng.random(N_MAX), "e5m2")          # U[0,1) rounded to e5m2

def relative_error(n, acc):
    a = np.ones((1, n)); b = values[:n].reshape(n, 1)
    got = fpsim.gemm(a, b, acc=acc, a_format="e5m2", b_format="e5m2")[0, 0]
    exact = values[:n].sum()          # float64: exact for these sums
    return abs(float(got) - exact) / exact

accumulators = {
    "1-6-9 sequential": fpsim.Accumulator("fp16_169"),
    "1-6-9 chunk 64": fpsim.Accumulator("fp16_169", chunk=64),
    "1-6-9 pairwise": fpsim.Accumulator("fp16_169", order="pairwise"),
    "Kulisch -> 1-6-9": fpsim.KulischAccumulator("fp16_169"),
    "float32 sequential": fpsim.Accumulator("float32"),
}
ns = [2 ** k for k in range(6, 15)]
errors = {name: [relative_error(n, acc) for n in ns] for name, acc in accumulators.items()}
for name, errs in errors.items():
    print(f"{name:20s}", " ".join(f"{e:8.1e}" for e in errs))'''),
    new_code_cell('''fig, ax = plt.subplots(figsize=(8, 4.5))
for name, errs in errors.items():
    ax.plot(ns, np.maximum(errs, 1e-10), marker="o", label=name)
ax.set(xscale="log", yscale="log", xlabel="N (products summed)", ylabel="relative error",
       title="summing N e5m2 values: swamping and its fixes")
ax.axhline(2.0 ** -10, color="gray", ls=":", lw=1)
ax.text(ns[0], 2.0 ** -10 * 1.3, "half an ulp of 1-6-9", fontsize=8, color="gray")
ax.legend(fontsize=8)
fig.tight_layout()
fig.savefig(os.path.join(FIGURES, "accumulation_swamping.png"), dpi=100)'''),
    new_markdown_cell("## Chunk size against error\n\nN = 16384 products; chunk 1 and chunk N "
                      "are both the plain sequential sum."),
    new_code_cell('''chunks = [2 ** k for k in range(0, 15)]
chunk_err = [relative_error(N_MAX, fpsim.Accumulator("fp16_169", chunk=c)) for c in chunks]
fig, ax = plt.subplots(figsize=(8, 4))
ax.plot(chunks, chunk_err, marker="o")
ax.set(xscale="log", yscale="log", xlabel="chunk size", ylabel="relative error",
       title=f"1-6-9 chunk-based accumulation of {N_MAX} e5m2 values")
fig.tight_layout()
fig.savefig(os.path.join(FIGURES, "accumulation_chunks.png"), dpi=100)
print("best chunk:", chunks[int(np.argmin(chunk_err))])'''),
]

TRAINING = [
    new_markdown_cell("""# Training under the papers' recipes

The same MLP trained on scikit-learn's digits under fp32 and four low-precision recipes. Every
GEMM of forward, backward-data and backward-weight runs through fpsim's kernels with each
recipe's formats and accumulators (`fpsim.nn.recipes`)."""),
    new_code_cell(SETUP),
    new_code_cell('''from fpsim import nn

for name in ("fp8_wang2018", "hfp8_sun2019", "bm8_fox2021", "fp4_sun2020"):
    print(name, "-", nn.recipes.get(name).source.split(": ", 1)[0])'''),
    new_code_cell('''runs, table = nn.compare(["fp8_wang2018", "hfp8_sun2019", "bm8_fox2021", "fp4_sun2020"],
                         model="mlp", dataset="digits", epochs=3, progress=False)
print(table)'''),
    new_code_cell('''nn.plot_runs(runs, os.path.join(FIGURES, "training_curves.png"))
from IPython.display import Image
Image(os.path.join(FIGURES, "training_curves.png"))'''),
]


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, cells in (("formats", FORMATS), ("accumulation", ACCUMULATION),
                        ("training", TRAINING)):
        nb = new_notebook(cells=cells, metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
        nbformat.write(nb, os.path.join(OUT, f"{name}.ipynb"))


if __name__ == "__main__":
    main()
