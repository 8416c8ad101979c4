"""The papers' training recipes as presets: ``fpsim.nn.recipes.get("hfp8_sun2019")``.

Each docstring line says where a setting comes from.  Settings marked "fpsim's choice" are not
given by the text we could read (the papers' method sections were not available to us for every
paper; README lists them): check them against the paper before relying on them.

>>> from fpsim.nn import recipes
>>> r = recipes.get("fp8_wang2018")
>>> str(r.activations), str(r.acc["forward"].fmt), r.acc["forward"].chunk, str(r.master)
('fp8_152', 'fp16_169', 64, 'fp16_169 (sr)')
"""

from __future__ import annotations

from ..accum import Accumulator, KulischAccumulator
from ..engines import engine
from ..formats import FixedFormat
from .quantizers import (AutoflexScaling, CurrentScaling, DelayedScaling, GradScaling,
                         IntScaling, NVFP4Scaling, Round, TileScaling)
from .recipe import FP32, RECIPES, Recipe, get, register  # noqa: F401 (the registry)

_FP16_169 = Accumulator("fp16_169", chunk=64)

#: Wang et al. 2018 layers kept at 16 bits: every tensor (1,6,9), same chunked accumulator.
FP16_WANG2018 = Recipe(
    "fp16_wang2018", weights="fp16_169", activations="fp16_169", errors="fp16_169",
    gradients="fp16_169", acc=_FP16_169, master=Round("fp16_169", "sr"),
    source="Wang et al. 2018: the (1,6,9) 16-bit format, for the first and last layers")

FP8_WANG2018 = Recipe(
    "fp8_wang2018",
    weights="fp8_152", activations="fp8_152", errors="fp8_152", gradients="fp8_152",
    acc=_FP16_169, master=Round("fp16_169", "sr"), loss_scale=1024.0,
    keep=("first", "last"), keep_recipe=FP16_WANG2018,
    source="Wang et al. 2018, 'Training DNNs with 8-bit floating point numbers' (NeurIPS): "
           "FP8 (1,5,2) weights, activations, errors and gradients in all three GEMMs; FP16 "
           "(1,6,9) chunk-based accumulation, chunk 64 (section 3); weight update and momentum "
           "in FP16 (1,6,9) with stochastic rounding (section 4); first and last layers in FP16. "
           "Loss scale 1024: fpsim's choice (the paper uses loss scaling; value not read).")

HFP8_SUN2019 = Recipe(
    "hfp8_sun2019",
    weights="hfp8_143", activations="hfp8_143", errors="hfp8_152", gradients="fp16_169",
    acc=_FP16_169, master=Round("fp16_169", "sr"), loss_scale=1024.0,
    keep=("first", "last"), keep_recipe=FP16_WANG2018,
    source="Sun et al. 2019, 'Hybrid 8-bit Floating Point (HFP8) Training and Inference' "
           "(NeurIPS): 1-4-3 weights and activations (forward), 1-5-2 errors (backward), "
           "weight gradients and accumulation in FP16 (1,6,9) (as Fox et al. 2021, Table 3 "
           "tabulates it); chunk 64, FP16 master weights with stochastic rounding, first and "
           "last layers in FP16 and loss scale 1024: fpsim's choice, following Wang et al. 2018.")

FLEXPOINT_KOSTER2017 = Recipe(
    "flexpoint_koster2017",
    weights=AutoflexScaling(), activations=AutoflexScaling(), errors=AutoflexScaling(),
    gradients=AutoflexScaling(), acc=Accumulator("float32"), master=AutoflexScaling(),
    source="Koster et al. 2017, 'Flexpoint' (NeurIPS): every tensor (weights, activations, "
           "deltas, weight updates) flex16+5 with its own Autoflex exponent (sections 3.3, 3.5, "
           "Algorithm 2: l=16, beta=3, gamma=100); weights stored in flex16+5, no float master "
           "copy (section 5); products summed in float32, as the paper's GPU kernels do "
           "(section 3.7).")


def _bm(n, acc_source):
    return Recipe(
        f"bm{n}_fox2021",
        weights=Round(f"bm{n}_fwd", "sr"), activations=Round(f"bm{n}_fwd", "sr"),
        errors=Round(f"bm{n}_bwd", "sr"), gradients=Round("fp16_169", "sr"),
        acc=KulischAccumulator("float32"),
        source=f"Fox et al. 2021, 'A Block Minifloat Representation for Training DNNs' (ICLR): "
               f"BM{n} forward/backward element formats and (6,9) weight gradients (Table 3), "
               f"48x48 blocks (section 3.1), stochastic rounding (section 3.2), exact Kulisch "
               f"accumulation ({acc_source}) rounded once to float32; weight update in float32 "
               f"(Fig. 3); no loss scaling.")


BM8_FOX2021 = _bm(8, "31-bit, Table 3")
BM6_FOX2021 = _bm(6, "20-bit, Table 3")

_FIXED16 = Round(FixedFormat(4, 12), "sr")
FIXED16_GUPTA2015 = Recipe(
    "fixed16_gupta2015",
    weights=_FIXED16, activations=_FIXED16, errors=_FIXED16, gradients=_FIXED16,
    acc=KulischAccumulator("float32"), master=_FIXED16,
    source="Gupta et al. 2015, 'Deep Learning with Limited Numerical Precision' (ICML): 16-bit "
           "fixed point <IL,FL> = <4,12> with stochastic rounding for weights, activations, "
           "gradients and the weight update, no float master copy; the multiply-accumulate sums "
           "exactly and its result is rounded stochastically by its consumer. The split <4,12> "
           "is fpsim's choice among the paper's 16-bit settings.")

_FIXED12 = Round(FixedFormat(4, 8), "sr")
FIXED12_ORTIZ2018 = Recipe(
    "fixed12_ortiz2018",
    weights=_FIXED12, activations=_FIXED12, errors=_FIXED12, gradients=_FIXED12,
    acc=KulischAccumulator("float32"), master=_FIXED12,
    source="Ortiz et al. 2018, 'Low-precision floating-point schemes for neural network "
           "training' (abstract): the 12-bit fixed-point baseline with stochastic rounding. "
           "The split <4,8>, exact accumulation and no master copy: fpsim's choice (the "
           "paper's method section was not available to us).")

_FLOAT12 = Round("e5m6", "sr")
FLOAT12_ORTIZ2018 = Recipe(
    "float12_ortiz2018",
    weights=_FLOAT12, activations=_FLOAT12, errors=_FLOAT12, gradients=_FLOAT12,
    acc=KulischAccumulator("float32"), master=_FLOAT12,
    source="Ortiz et al. 2018 (abstract): 12-bit floating point for training. The split "
           "1-5-6 (IEEE bias), stochastic rounding, exact accumulation and no master copy: "
           "fpsim's choice (the method section was not available to us).")

POW2_ORTIZ2018 = Recipe(
    "pow2_ortiz2018",
    weights=_FLOAT12, activations="e6m0none", errors="e6m0none", gradients=_FLOAT12,
    acc=KulischAccumulator("float32"), master=_FLOAT12,
    source="Ortiz et al. 2018 (abstract): outputs (activations) and gradients (errors) "
           "constrained to powers of two in 7 bits, so products become exponent additions: "
           "sign + 6-bit exponent with zero ('e6m0none'). Weights in the 12-bit float and "
           "nearest rounding: fpsim's choice.")

FP4_SUN2020 = Recipe(
    "fp4_sun2020",
    weights=IntScaling(4, signed=True, rule="sawb"), activations=IntScaling(4, signed=False),
    errors=GradScaling("fp4_130"), gradients="fp16_169",
    acc=_FP16_169, master=Round("fp16_169", "sr"),
    keep=("first", "last"), keep_recipe=HFP8_SUN2019,
    source="Sun et al. 2020, 'Ultra-Low Precision 4-bit Training of DNNs' (NeurIPS): INT4 "
           "weights and activations, radix-4 FP4 errors with per-layer GradScale instead of "
           "loss scaling and two-phase rounding, one phase per backward GEMM; first and last "
           "layers in HFP8. fpsim's choices (not read in the paper): SAWB scale for weights "
           "(Choi et al. 2018), max scale for activations (the paper's PACT learns a clip), "
           "even grid for backward-data and odd for backward-weight, FP16 (1,6,9) chunk-64 "
           "accumulation and master weights.")

_WGMMA = {"forward": engine("hopper", "wgmma.m64n128k32.f32.e4m3.e4m3"),
          "backward_data": engine("hopper", "wgmma.m64n128k32.f32.e5m2.e4m3"),
          "backward_weight": engine("hopper", "wgmma.m64n128k32.f32.e5m2.e4m3")}
_HOPPER_SOURCE = (
    "FP8 training on Hopper as Transformer Engine runs it (Micikevicius et al. 2022, 'FP8 "
    "formats for deep learning'): E4M3 weights and activations, E5M2 errors, one scale per "
    "tensor from its current amax (CurrentScaling; Transformer Engine's default is delayed "
    "scaling, fpsim's choice here is the current amax), float32 weight gradients, master "
    "weights and optimizer state; every GEMM as Hopper's FP8 wgmma computes it (13 kept "
    "fractional bits, an e8m13 register: MMA-Sim, docs/engines_notes.md NV-4). All layers in "
    "FP8 and no loss scaling: fpsim's choice.")

#: Hopper FP8 wgmma with the partial sums chained on the tensor core.
FP8_HOPPER = Recipe(
    "fp8_hopper", weights=CurrentScaling("float8_e4m3fn"),
    activations=CurrentScaling("float8_e4m3fn"), errors=CurrentScaling("float8_e5m2"),
    acc=_WGMMA, source=_HOPPER_SOURCE)

#: The same with DeepSeek-V3's promotion: every 128 elements of K the wgmma partial sum is added
#: into a float32 register on the CUDA cores.
FP8_HOPPER_PROMOTED = Recipe(
    "fp8_hopper_promoted", weights=CurrentScaling("float8_e4m3fn"),
    activations=CurrentScaling("float8_e4m3fn"), errors=CurrentScaling("float8_e5m2"),
    acc={g: Accumulator("float32", chunk=128, inner=e) for g, e in _WGMMA.items()},
    source=_HOPPER_SOURCE + " Promotion of the partial sums to float32 every 128 elements of "
    "K (DeepSeek-V3 technical report, section 3.3.2, N_C = 128).")

TE_FP8_DELAYED = Recipe(
    "te_fp8_delayed", weights=DelayedScaling("float8_e4m3fn", 16, "max"),
    activations=DelayedScaling("float8_e4m3fn", 16, "max"),
    errors=DelayedScaling("float8_e5m2", 16, "max"), acc=Accumulator("float32"),
    source="FP8 training with Transformer Engine's delayed scaling (Micikevicius et al. 2022, "
           "'FP8 formats for deep learning'; the DelayedScaling recipe of NVIDIA Transformer "
           "Engine's documentation): E4M3 weights and activations, E5M2 errors (the HYBRID "
           "format), each tensor scaled by fmt.max / amax / 2**margin from its amax history "
           "(length 16, max, margin 0: the issue's settings), GEMMs accumulated in float32, "
           "master weights and optimizer state in float32. Saturating casts and a float32 "
           "accumulator that rounds after every product: fpsim's choices.")

MXFP8_OCP = Recipe(
    "mxfp8_ocp", weights="mxfp8_e4m3", activations="mxfp8_e4m3", errors="mxfp8_e5m2",
    acc=Accumulator("float32"),
    source="Rouhani et al. 2023, 'Microscaling data formats for deep learning' (OCP MX v1.0): "
           "every GEMM input in MXFP8 (blocks of 32 along the reduction axis, E8M0 scales), "
           "float32 accumulation and master weights, everything else in float32. E4M3 forward "
           "and E5M2 for the errors: fpsim's choice (the paper's training section was not "
           "read here).")

MXFP6_OCP = Recipe(
    "mxfp6_ocp", weights="mxfp6_e3m2", activations="mxfp6_e3m2", errors="mxfp6_e3m2",
    acc=Accumulator("float32"),
    source="Rouhani et al. 2023, 'Microscaling data formats for deep learning': training "
           "generative language models with sub-8-bit weights, activations and gradients "
           "(abstract), here MXFP6 E3M2 for every GEMM input (blocks of 32 along the reduction "
           "axis, E8M0 scales), float32 accumulation and master weights. The E3M2 element for "
           "all three tensors is fpsim's choice (the paper's training section was not read "
           "here).")

BF16 = Recipe(
    "bf16", weights="bfloat16", activations="bfloat16", errors="bfloat16",
    acc=Accumulator("float32"),
    source="Kalamkar et al. 2019, 'A study of BFLOAT16 for deep learning training': bfloat16 "
           "GEMM inputs, float32 accumulation and master weights (the layers the NVFP4 recipe "
           "keeps at higher precision).")

NVFP4_NVIDIA2025 = Recipe(
    "nvfp4_nvidia2025", weights=NVFP4Scaling(tiles=True), activations=NVFP4Scaling(),
    errors=NVFP4Scaling(rounding="sr"), acc=Accumulator("float32"), rht_seed=0,
    keep=("last",), keep_recipe=BF16,
    source="NVIDIA et al. 2025, 'Pretraining large language models with NVFP4': every GEMM input "
           "in NVFP4 (E2M1, a UE4M3 scale per 16 along the reduction axis, a per-tensor float32 "
           "scale), weights in 16 x 16 blocks, the random Hadamard transform on both inputs of "
           "the weight-gradient GEMMs, stochastic rounding of the gradients (errors), the last "
           "layers in BF16, float32 accumulation and master weights. fpsim's choices: the RHT "
           "sign seed (0, one draw for the run), which layers count as last (the output head "
           "here), nearest rounding of the scales and of weights and activations.")

_WGMMA_E4M3 = engine("hopper", "wgmma.m64n128k32.f32.e4m3.e4m3")

DEEPSEEK_V3_FP8 = Recipe(
    "deepseek_v3_fp8", weights=TileScaling("float8_e4m3fn", (128, 128)),
    activations=TileScaling("float8_e4m3fn", 128), errors=TileScaling("float8_e4m3fn", 128),
    acc=Accumulator("float32", chunk=128, inner=_WGMMA_E4M3), keep=("last", "attention"),
    keep_recipe=BF16,
    source="DeepSeek-AI et al. 2024, 'DeepSeek-V3 technical report', section 3.3: E4M3 for every "
           "GEMM input (3.3.2: no E5M2 for gradients), 1 x 128 tiles for activations and errors "
           "and 128 x 128 blocks for weights with float32 scales amax / 448 computed online "
           "(3.3.1), Hopper FP8 wgmma accumulation promoted to float32 every 128 elements of K "
           "where the partial sum is dequantized by the two tiles' scales (3.3.2), and the "
           "embedding, output head, normalisation and attention in higher precision (3.3.1). "
           "fpsim's choices: BF16 for the output head and the attention products, the "
           "dequantization rounding (float32(scale_a * scale_b), times the partial sum rounded "
           "to float32, then added), and float32 master weights and optimizer state.")

for _r in (FP32, FP8_WANG2018, HFP8_SUN2019, FLEXPOINT_KOSTER2017, BM8_FOX2021, BM6_FOX2021,
           FIXED16_GUPTA2015, FIXED12_ORTIZ2018, FLOAT12_ORTIZ2018, POW2_ORTIZ2018, FP4_SUN2020,
           FP8_HOPPER, FP8_HOPPER_PROMOTED, TE_FP8_DELAYED, MXFP8_OCP, MXFP6_OCP, BF16,
           NVFP4_NVIDIA2025, DEEPSEEK_V3_FP8):
    register(_r)
