"""Each preset's formats and accumulators are what its paper says (section named per test).

The expected formats are typed in here from the papers' numbers (FloatFormat(exp, man, bias)),
not read back from fpsim's registry.
"""

import pytest

import fpsim

from fpsim import Accumulator, FixedFormat, FloatFormat, KulischAccumulator
from fpsim.nn import AutoflexScaling, CurrentScaling, GradScaling, IntScaling, Round, recipes

FP8_152 = FloatFormat(5, 2)                    # (1,5,2), IEEE bias 15
FP16_169 = FloatFormat(6, 9)                   # (1,6,9), bias 31
CHUNK64 = Accumulator(FP16_169, chunk=64)
GEMMS = ("forward", "backward_data", "backward_weight")


def _fmt(scheme):
    return scheme.fmt


def test_fp8_wang2018():
    """Wang et al. 2018: FP8 (1,5,2) data in all GEMMs (section 2), FP16 (1,6,9) chunk-based
    accumulation with chunk 64 (section 3), FP16 update with stochastic rounding (section 4),
    first and last layers at 16 bits."""
    r = recipes.get("fp8_wang2018")
    for role in ("weights", "activations", "errors", "gradients"):
        assert _fmt(getattr(r, role)) == FP8_152
    assert all(r.acc[g] == CHUNK64 for g in GEMMS)
    assert r.master == Round(FP16_169, "sr")
    assert r.keep == ("first", "last") and _fmt(r.keep_recipe.activations) == FP16_169
    assert r.loss_scale > 1


def test_hfp8_sun2019():
    """Sun et al. 2019 (HFP8): 1-4-3 forward with bias 11 (ml_dtypes' float8_e4m3b11fnuz cites
    the paper), 1-5-2 backward; weight gradients and accumulation in (6,9) (Fox et al. 2021,
    Table 3, HFP8 row)."""
    r = recipes.get("hfp8_sun2019")
    assert _fmt(r.weights) == _fmt(r.activations) == FloatFormat(4, 3, bias=11)
    assert _fmt(r.errors) == FP8_152 and _fmt(r.gradients) == FP16_169
    assert all(r.acc[g].fmt == FP16_169 for g in GEMMS)


def test_flexpoint_koster2017():
    """Koster et al. 2017: every tensor flex16+5 under Autoflex (sections 3.1, 3.3, 3.5), weights
    kept in flex16+5 (section 5), float32 kernels (section 3.7)."""
    r = recipes.get("flexpoint_koster2017")
    for role in ("weights", "activations", "errors", "gradients", "master"):
        assert getattr(r, role) == AutoflexScaling("flex16+5")
    f = AutoflexScaling().make().flex.fmt
    assert f.element == FixedFormat(16, 0) and f.block is None and f.scale_bits == 5
    assert all(r.acc[g] == Accumulator(FloatFormat(8, 23)) for g in GEMMS)


@pytest.mark.parametrize("n, fwd, bwd", [(8, (2, 5), (4, 3)), (6, (2, 3), (3, 2))])
def test_bm_fox2021(n, fwd, bwd):
    """Fox et al. 2021: BM8 (2,5)/(4,3) and BM6 (2,3)/(3,2) with (6,9) weight gradients
    (Table 3), element bias 2**(e-1) (section 2.1, Eq. 1), 48x48 blocks (section 3.1),
    stochastic rounding (section 3.2), Kulisch accumulation (section 2.3)."""
    r = recipes.get(f"bm{n}_fox2021")
    for role, (e, m) in (("weights", fwd), ("activations", fwd), ("errors", bwd)):
        s = getattr(r, role)
        assert s.rounding == "sr" and s.fmt.block == (48, 48)
        el = s.fmt.element
        assert (el.exp_bits, el.man_bits, el.bias, el.subnormals) == (e, m, 2 ** (e - 1), True)
    assert _fmt(r.gradients) == FP16_169
    assert all(isinstance(r.acc[g], KulischAccumulator) for g in GEMMS)
    assert r.master is None and r.loss_scale == 1.0 and r.keep == ()


def test_fixed16_gupta2015():
    """Gupta et al. 2015: 16-bit fixed point <IL,FL> with stochastic rounding everywhere (section
    3), exact multiply-accumulate (section 3), no float master copy."""
    r = recipes.get("fixed16_gupta2015")
    for role in ("weights", "activations", "errors", "gradients", "master"):
        s = getattr(r, role)
        assert s.rounding == "sr" and isinstance(s.fmt, FixedFormat) and s.fmt.bits == 16
    assert all(isinstance(r.acc[g], KulischAccumulator) for g in GEMMS)


def test_ortiz2018():
    """Ortiz et al. 2018 (abstract): 12-bit fixed point, 12-bit float, and 7-bit power-of-two
    activations and errors."""
    assert _fmt(recipes.get("fixed12_ortiz2018").activations).bits == 12
    f = _fmt(recipes.get("float12_ortiz2018").activations)
    assert isinstance(f, FloatFormat) and f.bits == 12
    p = _fmt(recipes.get("pow2_ortiz2018").activations)
    assert p.bits == 7 and p.man_bits == 0 and _fmt(recipes.get("pow2_ortiz2018").errors) == p


def test_fp4_sun2020():
    """Sun et al. 2020: INT4 weights and activations, radix-4 FP4 [1,3,0] errors with GradScale
    and two-phase rounding (one phase per backward GEMM), first and last layers in HFP8."""
    r = recipes.get("fp4_sun2020")
    assert r.weights.fmt.bits == 4 and r.activations.fmt.bits == 4
    assert isinstance(r.weights, IntScaling) and isinstance(r.errors, GradScaling)
    assert {r.errors.backward_data_phase, r.errors.backward_weight_phase} == {0, 1}
    assert r.keep == ("first", "last") and r.keep_recipe.name == "hfp8_sun2019"
    assert r.loss_scale == 1.0                     # GradScale replaces loss scaling


@pytest.mark.parametrize("name", ["fp8_hopper", "fp8_hopper_promoted"])
def test_fp8_hopper(name):
    """Issue 13: E4M3 forward (weights, activations), E5M2 backward (errors), one scale per tensor
    (Micikevicius et al. 2022), GEMMs as Hopper's FP8 wgmma computes them (13 kept bits, an e8m13
    register: MMA-Sim); the promoted recipe adds the wgmma partial sum into float32 every 128
    elements of K (DeepSeek-V3 section 3.3.2)."""
    r = recipes.get(name)
    e4m3, e5m2 = FloatFormat(4, 3, specials="fn"), FloatFormat(5, 2)
    for role, want in (("weights", e4m3), ("activations", e4m3), ("errors", e5m2)):
        scheme = getattr(r, role)
        assert isinstance(scheme, CurrentScaling) and fpsim.format(scheme.fmt) == want
        assert scheme.margin == 0
    for g in GEMMS:
        a = r.acc[g]
        eng = a if name == "fp8_hopper" else a.inner
        if name == "fp8_hopper_promoted":
            assert a.chunk == 128 and a.fmt == FloatFormat(8, 23)
        assert eng.arch == "hopper" and eng.instruction.startswith("wgmma.")
        assert eng.model.frac_bits == 13 and eng.model.register == FloatFormat(8, 13)
        want = (e4m3, e4m3) if g == "forward" else (e5m2, e4m3)
        assert (eng.a_format, eng.b_format) == want
    assert r.master is None and r.gradients is None and r.keep == ()


def test_every_preset_cites_its_source():
    for name, r in recipes.RECIPES.items():
        assert r.source and (name == "fp32" or "et al." in r.source), name
        d = r.describe()
        assert d["name"] == name and set(d) >= {"weights", "forward_acc", "master", "source"}
