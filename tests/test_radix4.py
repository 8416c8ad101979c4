"""Radix-4 FP4 (Sun et al. 2020 [1,3,0]) against an exact-rational reference built from the value
set alone: the two grid neighbours of x, then the mode's choice between them."""

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import fpsim

MODES = ("rne", "rna", "rtz", "rup", "rdn", "rto")


def grid(f):
    """(field, value) of every non-negative magnitude, ascending."""
    return [(0, Fraction(0))] + [(k, Fraction(2) ** (2 * (k - f.bias) + f.phase))
                                 for k in range(1, 2 ** f.exp_bits)]


def round_ref(x, f, mode, u=0, sr_bits=None):
    if math.isnan(x):
        return math.nan
    neg = math.copysign(1, x) < 0
    g = grid(f)
    if math.isinf(x) or abs(Fraction(x)) >= g[-1][1]:
        v = g[-1][1]
    else:
        a = abs(Fraction(x))
        i = max(k for k in range(len(g)) if g[k][1] <= a)
        (flo, lo), hi = g[i], g[i + 1][1]
        p = (a - lo) / (hi - lo)
        if mode == "rne":
            up = p > Fraction(1, 2) or (p == Fraction(1, 2) and flo % 2 == 1)
        elif mode == "rna":
            up = p >= Fraction(1, 2)
        elif mode == "rtz":
            up = False
        elif mode == "rup":
            up = p > 0 and not neg
        elif mode == "rdn":
            up = p > 0 and neg
        elif mode == "rto":
            up = p > 0 and flo % 2 == 0
        elif sr_bits is not None:
            up = (u >> (64 - sr_bits)) + math.floor(p * 2 ** sr_bits) >= 2 ** sr_bits
        elif lo == 0:        # binary region: exact probability, the float formats' rule
            if p.denominator > 2 ** 62:
                return None
            up = p > 0 and Fraction(u, 2 ** 64) >= 1 - p
        else:                # probability truncated to 64 bits
            up = u + math.floor(p * 2 ** 64) >= 2 ** 64
        v = hi if up else lo
    return -float(v) if neg else float(v)


formats = st.builds(fpsim.Radix4Format, st.integers(1, 4), st.integers(-3, 6), st.integers(0, 1))


@settings(max_examples=200, deadline=None)
@given(f=formats, data=st.data())
def test_every_mode_matches_the_reference(f, data):
    top = f.max
    xs = data.draw(st.lists(st.one_of(
        st.floats(-2 * top, 2 * top), st.floats(-f.min_subnormal, f.min_subnormal),
        st.sampled_from([2.5 * f.min_subnormal, 0.5 * f.min_subnormal, f.max, -0.0])),
        min_size=1, max_size=16))
    words = data.draw(st.lists(st.integers(0, 2 ** 64 - 1), min_size=len(xs), max_size=len(xs)))
    x, u = np.array(xs), np.array(words, dtype=np.uint64)
    for mode in MODES:
        got = fpsim.quantize(x, f, rounding=mode)
        for xi, g in zip(xs, got):
            w = round_ref(xi, f, mode)
            assert g == w and math.copysign(1, g) == math.copysign(1, w), (f, mode, xi, g, w)
    r = data.draw(st.integers(1, 40))
    for kw in ({}, {"sr_bits": r}):
        got = fpsim.quantize(x, f, rounding="sr", random_words=u, **kw)
        for xi, ui, g in zip(xs, words, got):
            w = round_ref(xi, f, "sr", ui, kw.get("sr_bits"))
            if w is not None:
                assert g == w, (f, kw, xi, ui, g, w)


def test_ties_go_to_the_even_field_and_midpoints_are_arithmetic():
    f = fpsim.format("fp4_130")               # 4**-3 .. 4**3
    x = np.array([2.5, 10.0, 0.625, 2.5 + 1e-12, 2.5 - 1e-12, 40.0])
    # 2.5 lies between 1 (field 4) and 4 (field 5): tie -> 1; 10 between 4 and 16: tie -> 16;
    # 0.625 between 0.25 (field 3) and 1: tie -> 1; 40 between 16 (field 6) and 64: tie -> 16
    assert fpsim.quantize(x, f).tolist() == [1.0, 16.0, 1.0, 4.0, 1.0, 16.0]


def test_two_phases_are_the_even_and_odd_power_grids():
    even, odd = fpsim.format("fp4_130"), fpsim.format("fp4_130_phase1")
    v0, v1 = even.values(), odd.values()
    pos0, pos1 = v0[v0 > 0], v1[v1 > 0]
    assert np.array_equal(np.log2(pos0), np.arange(-6, 7, 2))
    assert np.array_equal(pos1, 2 * pos0)
    assert v0.size == 15                        # +-7 magnitudes and zero (+0 and -0 codes)


@pytest.mark.parametrize("spec", ["fp4_130", "fp4_130_phase1", "radix4_e2b1", "radix4_e4b-2p1"])
def test_every_code_decodes_and_encodes_back(spec):
    f = fpsim.format(spec)
    codes = np.arange(f.n_codes, dtype=f.code_dtype)
    v = fpsim.decode(codes, f, dtype=np.float64)
    assert np.array_equal(fpsim.encode(v, f), codes)
    assert fpsim.format(f.spec) == f


def test_stochastic_rounding_is_unbiased():
    x = np.full(400_000, 3.0)                    # between 1 and 4: P(up) = 2/3
    q = fpsim.quantize(x, "fp4_130", rounding="sr", seed=9)
    assert set(np.unique(q)) == {1.0, 4.0}
    assert abs(q.mean() - 3.0) < 5 * 1.5 * (2 / 9) ** 0.5 / 400_000 ** 0.5 * 2


def test_bad_parameters():
    with pytest.raises(ValueError, match="phase must be 0 or 1"):
        fpsim.Radix4Format(3, phase=2)
    with pytest.raises(ValueError, match="exp_bits"):
        fpsim.Radix4Format(0)
    with pytest.raises(ValueError, match="no NaN code"):
        fpsim.encode(np.array([np.nan]), "fp4_130")


def test_gradscale_puts_the_maximum_at_the_top_of_both_grids():
    rng = np.random.default_rng(12)
    gs = fpsim.GradScale()
    for scale in (1e-7, 3e-4, 0.05, 7.0):
        g = rng.normal(size=500) * scale
        even, odd = gs(g)
        s = gs.exponent
        assert s % 2 == 0
        f0, f1 = gs.formats(s)
        assert (f0.phase, f1.phase) == (0, 1) and f0.max == fpsim.format("fp4_130").max * 2.0 ** s
        assert f0.max / 4 <= np.abs(g).max() < f0.max              # top of the grid, unsaturated
        assert np.array_equal(even, fpsim.quantize(g, f0))
        assert np.array_equal(odd, fpsim.quantize(g, f1))
        e = np.log2(np.abs(even[even != 0])) - s
        o = np.log2(np.abs(odd[odd != 0])) - s
        assert np.all(e % 2 == 0) and np.all(o % 2 == 1)           # even and odd powers of two
    even, odd = gs(np.zeros(4))
    assert gs.exponent == 0 and not even.any() and not odd.any()
    with pytest.raises(ValueError, match="phase-0 radix-4"):
        fpsim.GradScale("fp4_130_phase1")
