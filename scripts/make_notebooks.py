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


ENGINES = [
    new_markdown_cell("""# Matrix engines: what a tensor core computes

GPU tensor cores and matrix cores do not add products one by one: a k-group of products (and C)
is aligned to the largest exponent, every term is cut to a fixed number of fractional bits, and
the exact sum is rounded once. `fpsim.engine(arch, instruction)` models each instruction of each
chip (MMA-Sim's algorithms; sources in `docs/engines_notes.md`). This notebook shows the table,
probes a few chips with Fasi et al.'s discriminating inputs, and measures what Hopper's FP8
accumulation costs in a GEMM, with and without DeepSeek-V3's promotion to FP32."""),
    new_code_cell(SETUP),
    new_code_cell('''from collections import Counter
print(Counter(arch for arch, _ in fpsim.engines()))
eng = fpsim.engine("hopper", "wgmma.m64n8k32.f32.e4m3.e4m3")
print(eng, "->", eng.model.describe())'''),
    new_markdown_cell("## Kept bits of the alignment, probed\n\nThe guard-bit test of Fasi et al. "
                      "swept over t: the largest t for which a term 2**-t beside 1 still "
                      "counts (`fpsim.probe.kept_bits`)."),
    new_code_cell('''from fpsim.probe import kept_bits
chips = [("volta", "mma.m8n8k4.f32.f16.f16.f32"), ("turing", "mma.m16n8k8.f32.f16.f16.f32"),
         ("ampere", "mma.m16n8k16.f32.f16.f16.f32"), ("hopper", "mma.m16n8k16.f32.f16.f16.f32"),
         ("blackwell", "tcgen05.mma.m64n8k16.f32.f16.f16")]
bits = [kept_bits(fpsim.engine(a, i)) for a, i in chips]
fig, ax = plt.subplots(figsize=(7, 3))
ax.bar([a for a, _ in chips], bits)
ax.set(ylabel="kept fractional bits", ylim=(20, 26), title="f16 tensor-core alignment, probed")
for x, b in enumerate(bits):
    ax.text(x, b + 0.1, str(b), ha="center")
fig.tight_layout()
fig.savefig(os.path.join(FIGURES, "engines_kept_bits.png"), dpi=100)'''),
    new_markdown_cell("""## Hopper FP8 accumulation error against K

A 64 x K by K x 64 GEMM of standard-normal values rounded to E4M3 (fpsim's choice of data), on
Hopper's FP8 wgmma chained over K, the same promoted into an FP32 register every 128 elements
(DeepSeek-V3's N_C), and a float32 register, each against the exact result
(`KulischAccumulator`). `benchmarks/demo_engine_accumulation.py` runs the same to K = 16384."""),
    new_code_cell('''rng = np.random.default_rng(0)
accs = {"hopper fp8 chained": eng,
        "promoted every 128": fpsim.Accumulator("float32", chunk=128, inner=eng),
        "float32 register": fpsim.Accumulator("float32")}
ks = [256, 512, 1024, 2048, 4096]
err = {name: [] for name in accs}
for k in ks:
    A = fpsim.quantize(rng.standard_normal((64, k)), "float8_e4m3fn").astype(np.float32)
    B = fpsim.quantize(rng.standard_normal((k, 64)), "float8_e4m3fn").astype(np.float32)
    kw = dict(a_format="float8_e4m3fn", b_format="float8_e4m3fn")
    ref = fpsim.gemm(A, B, acc=fpsim.KulischAccumulator("e10m40"), **kw)
    for name, acc in accs.items():
        c = fpsim.gemm(A, B, acc=acc, **kw).astype(np.float64)
        err[name].append(np.linalg.norm(c - ref) / np.linalg.norm(ref))
for name, e in err.items():
    print(f"{name:20s}", " ".join(f"{v:8.1e}" for v in e))'''),
    new_code_cell('''fig, ax = plt.subplots(figsize=(7, 4))
for name, e in err.items():
    ax.loglog(ks, np.maximum(e, 1e-12), marker="o", label=name)
ax.set(xlabel="K", ylabel="||C - C_exact|| / ||C_exact||",
       title="E4M3 GEMM 64 x K x 64 on Hopper FP8 wgmma")
ax.legend()
fig.tight_layout()
fig.savefig(os.path.join(FIGURES, "engines_accumulation.png"), dpi=100)'''),
    new_markdown_cell("## Two chips, one GEMM\n\nThe same FP8 data (K = 1024) through Hopper's "
                      "wgmma (13 kept bits, an e8m13 register) and AMD MI300's mfma (24 kept "
                      "bits, odd/even halves, C added late into float32): the norm-wise error "
                      "of each against the exact product, and how often they disagree."),
    new_code_cell('''amd = fpsim.engine("cdna3", "mfma.f32_32x32x16_fp8_fp8")
A = fpsim.quantize(rng.standard_normal((64, 1024)), "float8_e4m3fn")
B = fpsim.quantize(rng.standard_normal((1024, 64)), "float8_e4m3fn")
A, B = np.clip(A, -240, 240), np.clip(B, -240, 240)     # values E4M3FNUZ holds too
h = fpsim.gemm(A.astype(np.float32), B.astype(np.float32), acc=eng).astype(np.float64)
m = fpsim.gemm(A.astype(np.float32), B.astype(np.float32), acc=amd).astype(np.float64)
exact = A.astype(np.float64) @ B.astype(np.float64)     # exact: FP8 products, K = 1024
for name, c in (("hopper wgmma", h), ("cdna3 mfma", m)):
    print(f"{name:13s} error {np.linalg.norm(c - exact) / np.linalg.norm(exact):.1e}")
print(f"they differ on {np.mean(h != m):.0%} of the outputs")'''),
]

def main():
    os.makedirs(OUT, exist_ok=True)
    for name, cells in (("formats", FORMATS), ("accumulation", ACCUMULATION),
                        ("training", TRAINING), ("engines", ENGINES)):
        nb = new_notebook(cells=cells, metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
        nbformat.write(nb, os.path.join(OUT, f"{name}.ipynb"))


if __name__ == "__main__":
    main()
