"""Posits against the reference written from the Posit Standard (tests/reference_posit.py)."""

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import fpsim
from reference_posit import posit_decode, posit_round

CONFIGS = [(8, 0), (8, 1), (8, 2), (16, 1), (16, 2), (5, 0), (12, 3)]


def ref_value(code, n, es):
    v = posit_decode(code, n, es)
    return math.nan if v is None else float(v)


@pytest.mark.parametrize("n, es", CONFIGS)
def test_every_code_decodes_and_encodes_back(n, es):
    f = fpsim.PositFormat(n, es)
    codes = np.arange(f.n_codes, dtype=f.code_dtype)
    got = fpsim.decode(codes, f, dtype=np.float64)
    want = np.array([ref_value(int(c), n, es) for c in codes])
    assert np.array_equal(got, want, equal_nan=True)
    back = fpsim.encode(got, f)
    assert np.array_equal(back, codes)                  # NaR (decoded NaN) encodes to NaR too
    assert np.array_equal(fpsim.quantize(got, f), got, equal_nan=True)


@pytest.mark.parametrize("n, es", [(8, 0), (8, 1), (8, 2), (6, 1)])
def test_midpoints_tie_to_even_and_neighbours_of_midpoints_go_their_way(n, es):
    f = fpsim.PositFormat(n, es)
    half = 1 << (n - 1)
    for c in range(1, half - 1):                        # between codes c and c + 1
        mid = posit_decode(2 * c + 1, n + 1, es)        # the (n+1)-bit posit between them
        m = float(mid)
        x = np.array([m, np.nextafter(m, 0), np.nextafter(m, np.inf), -m])
        got = fpsim.encode(x, f).astype(int).tolist()
        even = c if c % 2 == 0 else c + 1
        assert got == [even, c, c + 1, (-even) % (1 << n)], (c, m)
        assert got[0] == posit_round(mid, n, es)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_rounding_matches_the_standard(data):
    n, es = data.draw(st.sampled_from(CONFIGS))
    f = fpsim.PositFormat(n, es)
    top = float(f.max)
    x = data.draw(st.one_of(
        st.floats(-4 * top, 4 * top, allow_nan=False),
        st.floats(-1.0, 1.0, allow_nan=False),
        st.floats(allow_nan=False, allow_infinity=False),
        st.sampled_from([0.0, -0.0, top, -top, f.min_subnormal, f.min_subnormal / 3])))
    got = int(fpsim.encode(np.array([x]), f)[0])
    want = posit_round(Fraction(x), n, es) if x != 0 else 0
    assert got == want, (n, es, x, got, want)


def test_specials_and_saturation():
    f = fpsim.format("posit8")                          # es = 2: maxpos 2**24, minpos 2**-24
    x = np.array([np.nan, np.inf, -np.inf, 1e30, -1e30, 1e-30, -1e-30, 0.0, -0.0])
    assert fpsim.encode(x, f).tolist() == [128, 128, 128, 127, 129, 1, 255, 0, 0]
    q = fpsim.quantize(x, f)
    assert np.isnan(q[:3]).all() and q[3:].tolist() == [2.0 ** 24, -2.0 ** 24, 2.0 ** -24,
                                                         -2.0 ** -24, 0.0, 0.0]


@pytest.mark.parametrize("name", ["posit8_es0", "posit8_es1", "posit8", "posit<16,1>"])
def test_quire_gemm_rounds_the_exact_dot_product_once(name):
    f = fpsim.format(name)
    rng = np.random.default_rng(3)
    A = fpsim.quantize(rng.normal(size=(6, 70)) * 2, f)
    B = fpsim.quantize(rng.normal(size=(70, 5)) / 3, f)
    C = fpsim.gemm(A, B, a_format=f, b_format=f, acc=fpsim.KulischAccumulator(f))
    for i in range(6):
        for j in range(5):
            exact = sum(Fraction(a) * Fraction(b) for a, b in zip(A[i], B[:, j]))
            want = ref_value(posit_round(exact, f.n, f.es), f.n, f.es) if exact else 0.0
            assert C[i, j] == want, (i, j, exact)


def test_bad_posit_arguments_are_named():
    with pytest.raises(ValueError, match="n must be an int in 2..16"):
        fpsim.PositFormat(32, 2)
    with pytest.raises(ValueError, match="es must be"):
        fpsim.PositFormat(8, 5)
    with pytest.raises(ValueError, match="rounding must be 'rne'"):
        fpsim.quantize(1.0, "posit8", rounding="rtz")
    with pytest.raises(ValueError, match="rounding must be 'rne'"):
        fpsim.KulischAccumulator("posit8", rounding="rtz")
    assert fpsim.format("posit<8,0>") == fpsim.format("posit8_es0")


@pytest.mark.parametrize("name", ["posit8_es0", "posit8", "posit<16,1>"])
def test_posit_register_rounds_after_every_addition(name):
    """Posit addition without a quire: each exact register + product rounded to nearest."""
    f = fpsim.format(name)
    rng = np.random.default_rng(5)
    A = fpsim.quantize(rng.normal(size=(4, 40)) * 3, f)
    B = fpsim.quantize(rng.normal(size=(40, 3)), f)
    C = fpsim.gemm(A, B, a_format=f, b_format=f, acc=fpsim.Accumulator(f))
    Q = fpsim.gemm(A, B, a_format=f, b_format=f, acc=fpsim.KulischAccumulator(f))
    for i in range(4):
        for j in range(3):
            reg = Fraction(0)
            for k in range(40):
                s = reg + Fraction(A[i, k]) * Fraction(B[k, j])
                reg = posit_decode(posit_round(s, f.n, f.es), f.n, f.es) if s else Fraction(0)
            assert C[i, j] == reg, (name, i, j)
    assert not np.array_equal(C, Q)            # the quire differs: one rounding instead of 40
