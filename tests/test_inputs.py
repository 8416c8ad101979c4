"""Input handling of the public API (issue 12, holes 4, 5, 6 and 8): integers float64 cannot
hold, the ml_dtypes names, seeds without ``seed=``, and the inputs that used to crash or be
silently misread."""

import subprocess
import sys

import ml_dtypes
import numpy as np
import pytest

import fpsim


# --- hole 4: 64-bit integers ----------------------------------------------------------------------
@pytest.mark.parametrize("bad", [2**53 + 1, -(2**53) - 1, 2**63 - 1, 3 * 2**60 + 2**8])
def test_int64_that_float64_cannot_hold_is_refused(bad):
    with pytest.raises(ValueError, match="float64 cannot hold"):
        fpsim.quantize(np.array([1, bad], np.int64), "e5m2")


@pytest.mark.parametrize("good", [2**53, 2**53 + 2, -(2**63), 3 * 2**60, 2**62 + 2**10])
def test_int64_that_float64_holds_is_read_exactly(good):
    got = fpsim.quantize(np.array([good], np.int64), "float64")
    assert int(got[0]) == good


def test_uint64_guard():
    with pytest.raises(ValueError, match="float64 cannot hold"):
        fpsim.quantize(np.array([2**64 - 1], np.uint64), "e5m2")
    assert fpsim.quantize(np.array([2**63], np.uint64), "float64")[0] == 2.0**63


# --- hole 5: the ml_dtypes names without prefix -----------------------------------------------------
ML_NAMES = ["float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz",
            "float8_e4m3b11fnuz", "float8_e3m4", "float8_e4m3", "float6_e2m3fn", "float6_e3m2fn",
            "float4_e2m1fn", "float8_e8m0fnu"]


@pytest.mark.parametrize("name", ML_NAMES)
def test_prefixless_ml_dtypes_names_mean_the_ml_dtypes_type(name):
    """Checked against ml_dtypes itself: every value of the type decodes equal."""
    short = name.split("_", 1)[1]
    f = fpsim.format(short)
    assert f == fpsim.format(name) == fpsim.format(getattr(ml_dtypes, name))
    dt = np.dtype(getattr(ml_dtypes, name))
    codes = np.arange(2 ** f.bits, dtype=np.uint8)
    want = codes.view(dt).astype(np.float64)
    got = fpsim.decode(codes, f, dtype=np.float64)
    assert np.array_equal(got, want, equal_nan=True)
    assert fpsim.format(f.spec) == f


def test_fnuz_spec_strings_use_the_fnuz_bias():
    assert fpsim.format("e4m3fnuz").bias == 8 and fpsim.format("e5m2fnuz").bias == 16
    assert fpsim.format("e4m3fnuz_ftz").bias == 8
    f = fpsim.FloatFormat(4, 3, specials="fnuz")               # the constructor: IEEE bias
    assert f.bias == 7 and f.spec == "e4m3b7fnuz" and fpsim.format(f.spec) == f
    g = fpsim.FloatFormat(2, 1, specials="fn")                 # not float4_e2m1fn (no NaN)
    assert g.spec == "e2m1b1fn" and fpsim.format(g.spec) == g


@pytest.mark.parametrize("e", range(2, 9))
@pytest.mark.parametrize("m", range(0, 6))
@pytest.mark.parametrize("specials", ["ieee", "fn", "fnuz", "none"])
def test_every_spec_string_parses_back(e, m, specials):
    for bias in (None, 1, (1 << (e - 1)), 5):
        for sub in (True, False):
            try:
                f = fpsim.FloatFormat(e, m, bias=bias, specials=specials, subnormals=sub)
            except ValueError:
                continue
            assert fpsim.format(f.spec) == f, f


# --- hole 6: seeds --------------------------------------------------------------------------------
X = np.full(4096, 1 + 2.0**-4)      # halfway between e5m2 neighbours 1 and 1.25


def test_calls_without_seed_draw_fresh_words():
    a = fpsim.quantize(X, "e5m2", rounding="sr")
    b = fpsim.quantize(X, "e5m2", rounding="sr")
    assert not np.array_equal(a, b)
    s = fpsim.gemm(np.ones((1, 64), np.float32) / 3, np.ones((64, 1), np.float32),
                   acc=fpsim.Accumulator("e5m10", rounding="sr"))
    t = fpsim.gemm(np.ones((1, 64), np.float32) / 3, np.ones((64, 1), np.float32),
                   acc=fpsim.Accumulator("e5m10", rounding="sr"))
    u = fpsim.add(X[:64], 2.0**-20, "e5m2", rounding="sr")
    v = fpsim.add(X[:64], 2.0**-20, "e5m2", rounding="sr")
    assert not np.array_equal(u, v)
    assert s.shape == t.shape == (1, 1)


def test_fpsim_seed_restarts_the_stream_and_explicit_seeds_are_fixed():
    fpsim.seed(5)
    first = [fpsim.quantize(X, "e5m2", rounding="sr") for _ in range(3)]
    fpsim.quantize(X, "e5m2")                      # deterministic calls do not advance it
    fpsim.seed(5)
    again = [fpsim.quantize(X, "e5m2", rounding="sr") for _ in range(3)]
    fpsim.quantize(X, "e5m2")
    for a, b in zip(first, again):
        assert np.array_equal(a, b)
    assert np.array_equal(fpsim.quantize(X, "e5m2", rounding="sr", seed=3),
                          fpsim.quantize(X, "e5m2", rounding="sr", seed=3))
    with pytest.raises(ValueError, match="seed"):
        fpsim.seed(-1)


def test_a_fresh_process_reproduces_the_stream():
    code = ("import numpy as np, fpsim, hashlib; x = np.full(999, 1 + 2.0**-4); "
            "print(hashlib.sha256(b''.join(fpsim.quantize(x, 'e5m2', rounding='sr').tobytes() "
            "for _ in range(3))).hexdigest())")
    outs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True).stdout for _ in range(2)}
    assert len(outs) == 1


# --- hole 8: inputs that crashed or were misread ----------------------------------------------------
def test_conv_with_batch_zero():
    w = np.ones((2, 1, 2, 2), np.float32)
    assert fpsim.conv2d(np.zeros((0, 1, 3, 3), np.float32), w).shape == (0, 2, 2, 2)
    dx = fpsim.conv2d_backward_data(np.zeros((0, 2, 2, 2), np.float32), w, (0, 1, 3, 3))
    assert dx.shape == (0, 1, 3, 3)
    dw = fpsim.conv2d_backward_weight(np.zeros((0, 2, 2, 2), np.float32),
                                      np.zeros((0, 1, 3, 3), np.float32), (2, 1, 2, 2))
    assert dw.shape == (2, 1, 2, 2) and not dw.any()


@pytest.mark.parametrize("words", [np.full(3, 0.5), np.array([-1, 0, 1]), np.array(["a"] * 3)])
def test_random_words_must_be_unsigned_integers(words):
    with pytest.raises(ValueError, match="random_words"):
        fpsim.quantize(np.ones(3), "e5m2", rounding="sr", random_words=words)


def test_axis_only_with_block_formats():
    with pytest.raises(ValueError, match="axis"):
        fpsim.quantize(np.ones((2, 4)), "e5m2", axis=0)
    with pytest.raises(ValueError, match="axis"):
        fpsim.encode(np.ones((2, 4)), "e5m2", axis=1)
    with pytest.raises(ValueError, match="axis"):
        fpsim.decode(np.ones((2, 4), np.uint8), "e5m2", axis=1)
    x = np.arange(64.0).reshape(2, 32)
    assert np.array_equal(fpsim.quantize(x, "mxfp8_e4m3"), fpsim.quantize(x, "mxfp8_e4m3", axis=-1))


@pytest.mark.parametrize("call", [
    lambda: fpsim.quantize(np.ones(3), "e5m2", rounding="sr", sr_bits=51),
    lambda: fpsim.add(np.ones(3), 1.0, "e5m2", rounding="sr", sr_bits=51),
    lambda: fpsim.Accumulator("e5m2", rounding="sr", sr_bits=51),
])
def test_sr_bits_has_one_range_everywhere(call):
    """1 .. 52 - man_bits (50 for e5m2) for quantize, the arithmetic units and accumulators."""
    with pytest.raises(ValueError, match=r"sr_bits must be an int in 1\.\.50"):
        call()


def test_sr_bits_at_the_limit_works_everywhere():
    fpsim.quantize(np.ones(3), "e5m2", rounding="sr", sr_bits=50, seed=0)
    fpsim.add(np.ones(3), 1.0, "e5m2", rounding="sr", sr_bits=50, seed=0)
    fpsim.Accumulator("e5m2", rounding="sr", sr_bits=50)


def test_numpy_integers_and_dtypes_are_accepted_as_format_parameters():
    assert fpsim.FloatFormat(np.int64(4), np.int32(3), bias=np.int8(7)) == fpsim.format("e4m3")
    assert fpsim.FixedFormat(np.int16(4), np.uint8(12)) == fpsim.format("fixed<4,12>")
    assert fpsim.PositFormat(np.int64(8), np.int64(0)) == fpsim.format("posit8_es0")
    assert type(fpsim.FloatFormat(np.int64(4), 3).exp_bits) is int
    for t in (ml_dtypes.float8_e4m3fn, np.dtype(ml_dtypes.bfloat16), np.float16):
        f = fpsim.format(t)
        assert f == fpsim.format(np.dtype(t).name)
        fpsim.quantize(np.ones(2), t)
        fpsim.Accumulator(t)
    with pytest.raises(ValueError, match="format"):
        fpsim.format(np.int32)
    with pytest.raises(ValueError, match="format"):
        fpsim.format(None)


@pytest.mark.parametrize("fmt", ["mxfp8_e4m3", "fixed<4,12>", "posit8", "fp4_130", "e8m0fnu"])
def test_arithmetic_units_refuse_non_float_formats_clearly(fmt):
    for call in (lambda: fpsim.add(1.0, 2.0, fmt), lambda: fpsim.div(1.0, 2.0, fmt),
                 lambda: fpsim.sqrt(2.0, fmt)):
        with pytest.raises(ValueError, match="floating-point format"):
            call()


@pytest.mark.parametrize("path", ["/nonexistent/file.csv", "/tmp"])
def test_validate_cli_on_a_bad_path_prints_one_line(path):
    r = subprocess.run([sys.executable, "-m", "fpsim", "validate", "--no-shipped", path],
                       capture_output=True, text=True)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and r.stderr.count("\n") == 1, r.stderr


# --- hole 9: API names ----------------------------------------------------------------------------
from reference_arith import AccDesc, KulischDesc, dot_ref, gemm_ref, kulisch_ref  # noqa: E402

E5M2 = fpsim.format("e5m2")


def e5m2_data(shape, seed):
    rng = np.random.default_rng(seed)
    return fpsim.quantize(rng.standard_normal(shape) * 4.0 ** rng.integers(-3, 4, shape), E5M2,
                          seed=0)


def test_acc_by_name_is_the_accumulator_of_that_format():
    A, B = e5m2_data((5, 40), 1), e5m2_data((40, 3), 2)
    for name in ("fp16_169", "bfloat16", fpsim.format("e6m5"), ml_dtypes.bfloat16):
        want = fpsim.gemm(A, B, acc=fpsim.Accumulator(name), a_format=E5M2, b_format=E5M2)
        got = fpsim.gemm(A, B, acc=name, a_format=E5M2, b_format=E5M2)
        assert np.array_equal(got, want)
    with pytest.raises(ValueError, match="acc must be"):
        fpsim.gemm(A, B, acc="nonsense", a_format=E5M2, b_format=E5M2)


@pytest.mark.parametrize("mode", ["rne", "rna", "rtz", "rup", "rdn", "rto"])
@pytest.mark.parametrize("product", ["e5m3", "e6m1"])
def test_product_rounding_modes_match_the_reference(mode, product):
    A, B = e5m2_data((4, 24), 3), e5m2_data((24, 5), 4)
    pf = fpsim.format(product)
    acc = fpsim.Accumulator("bfloat16")
    got = fpsim.gemm(A, B, acc=acc, product=pf, product_rounding=mode, a_format=E5M2,
                     b_format=E5M2)
    want, skip = gemm_ref(A, B, AccDesc(acc.fmt), product=pf, product_rounding=mode)
    assert np.array_equal(got[~skip], want[~skip])
    kacc = fpsim.KulischAccumulator("float32")
    got = fpsim.gemm(A, B, acc=kacc, product=pf, product_rounding=mode, a_format=E5M2,
                     b_format=E5M2)
    want, _, _ = kulisch_ref(A, B, KulischDesc(kacc.fmt), E5M2, E5M2, product=pf,
                             product_rounding=mode)
    assert np.array_equal(got, want)
    with pytest.raises(ValueError, match="product_rounding"):
        fpsim.gemm(A, B, product=pf, product_rounding="sr", a_format=E5M2, b_format=E5M2)


def test_out_format_and_the_out_buffer():
    A, B = e5m2_data((3, 16), 5), e5m2_data((16, 4), 6)
    ref = fpsim.gemm(A, B, acc="float32", out_format="e4m3", a_format=E5M2, b_format=E5M2)
    want, _ = gemm_ref(A, B, AccDesc(fpsim.format("float32")), out=fpsim.format("e4m3"))
    assert np.array_equal(ref, want)
    buf = np.empty((3, 4), np.float32)
    got = fpsim.gemm(A, B, acc="float32", out_format="e4m3", a_format=E5M2, b_format=E5M2,
                     out=buf)
    assert got is buf and np.array_equal(buf, ref)
    for bad in (np.empty((4, 3), np.float32), np.empty((3, 4), np.float64), "e4m3"):
        with pytest.raises(ValueError, match="out must be"):
            fpsim.gemm(A, B, a_format=E5M2, b_format=E5M2, out=bad)
    x = np.ones((1, 1, 3, 3), np.float32)
    w = np.ones((2, 1, 2, 2), np.float32)
    y = np.empty((1, 2, 2, 2), np.float32)
    assert fpsim.conv2d(x, w, out=y) is y and (y == 4).all()


@pytest.mark.parametrize("acc", [fpsim.Accumulator("fp16_169"),
                                 fpsim.Accumulator("bfloat16", chunk=8),
                                 fpsim.Accumulator("e5m7", order="pairwise", rounding="rtz"),
                                 fpsim.KulischAccumulator("e5m7")], ids=repr)
def test_sum_and_dot_match_the_fraction_reference(acc):
    x = e5m2_data((3, 4, 37), 7)
    y = e5m2_data(37, 8)
    s = fpsim.sum(x, acc=acc, x_format=E5M2)
    assert s.shape == (3, 4)
    s1 = fpsim.sum(x, acc=acc, axis=1, x_format=E5M2)
    assert s1.shape == (3, 37)
    d = fpsim.dot(x[0, 0], y, acc=acc, a_format=E5M2, b_format=E5M2)
    assert d.shape == ()
    if isinstance(acc, fpsim.KulischAccumulator):
        ones = np.ones((37, 1))
        want = kulisch_ref(x.reshape(-1, 37), ones, KulischDesc(acc.fmt), E5M2,
                           fpsim.format("e2m1fn"))[0].reshape(3, 4)
        wd = kulisch_ref(x[0, 0][None], y[:, None], KulischDesc(acc.fmt), E5M2, E5M2)[0][0, 0]
    else:
        desc = AccDesc(acc.fmt, acc.chunk, acc.rounding, acc.order)
        want = np.array([dot_ref([float(v) for v in row], desc)
                         for row in x.reshape(-1, 37)]).reshape(3, 4)
        wd = dot_ref([float(p) * float(q) for p, q in zip(x[0, 0], y)], desc)
        want1 = np.array([[dot_ref([float(v) for v in x[i, :, j]], desc) for j in range(37)]
                          for i in range(3)])
        assert np.array_equal(s1, want1)
    assert np.array_equal(s, want)
    assert d == wd
    with pytest.raises(ValueError, match="vectors"):
        fpsim.dot(x, y, acc=acc)
