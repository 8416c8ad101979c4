"""Fuzzing the public API and the CLI (issue 12, item 8): whatever a user passes - bad formats,
modes, seeds, shapes, dtypes (complex, object, strings), NaN/Inf, 0-sized and non-contiguous
arrays - a function returns or raises ValueError/TypeError, and the CLI prints no traceback."""

import contextlib
import io

import ml_dtypes
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fpsim
from fpsim import cli

SETTINGS = settings(max_examples=150, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
OK_ERRORS = (ValueError, TypeError)

FORMATS = st.sampled_from([
    "e5m2", "float8_e4m3fn", "bfloat16", "e4m3fnuz", "fixed<4,12>", "posit8", "fp4_130",
    "e8m0fnu", "mxfp8_e4m3", "bm8_fwd", "flex16+5", "float32", "float64", "e2m1fn",
    fpsim.FloatFormat(3, 2), ml_dtypes.float8_e5m2, np.float16,
    # bad ones
    "e99m2", "", "block(e4m3fn,0,-1..1)", "posit<40,2>", None, 3, 2.5, object(), np.int32,
    fpsim.Accumulator("float16")])
MODES = st.sampled_from(["rne", "rna", "rtz", "rup", "rdn", "rto", "sr", "bad", None, 0, "RNE"])
SEEDS = st.sampled_from([None, 0, 1, 2**64 - 1, -1, 2**64, 1.5, "7", np.uint64(3), True])
SR_BITS = st.sampled_from([None, None, 1, 8, 50, 0, 63, -2, 2.0])
AXES = st.sampled_from([None, None, -1, 0, 1, 5, -9, 1.0, "x"])


@st.composite
def arrays(draw):
    kind = draw(st.sampled_from(["f32", "f64", "f16", "ml", "int", "bool", "complex", "object",
                                 "str", "scalar", "list", "none", "bigint"]))
    shape = tuple(draw(st.lists(st.integers(0, 5), min_size=0, max_size=3)))
    n = int(np.prod(shape)) if shape else 1
    vals = draw(st.lists(st.sampled_from([0.0, -0.0, 1.0, -2.5, 1e-40, 3e38, 1e300, 5e-324,
                                          np.inf, -np.inf, np.nan, 448.0, 1e5]),
                         min_size=n, max_size=n))
    base = np.array(vals, dtype=np.float64).reshape(shape)
    with np.errstate(all="ignore"):
        x = {"f32": lambda: base.astype(np.float32), "f64": lambda: base,
             "f16": lambda: base.astype(np.float16),
             "ml": lambda: base.astype(ml_dtypes.float8_e5m2),
             "int": lambda: np.nan_to_num(base, posinf=7, neginf=-7).astype(np.int32),
             "bool": lambda: base > 0, "complex": lambda: base + 1j,
             "object": lambda: base.astype(object), "str": lambda: base.astype(str),
             "scalar": lambda: 1.5, "list": lambda: [1.0, [2.0]], "none": lambda: None,
             "bigint": lambda: np.full(shape, 2**60 + 1, np.int64)}[kind]()
    if isinstance(x, np.ndarray) and x.ndim >= 1 and draw(st.booleans()):
        x = x[::-1] if x.ndim == 1 else np.swapaxes(x, 0, -1)          # non-contiguous
    return x


def calls_ok(fn):
    try:
        fn()
    except OK_ERRORS:
        pass


@SETTINGS
@given(x=arrays(), fmt=FORMATS, mode=MODES, seed=SEEDS, sr_bits=SR_BITS, axis=AXES)
def test_quantize_family(x, fmt, mode, seed, sr_bits, axis):
    calls_ok(lambda: fpsim.quantize(x, fmt, rounding=mode, seed=seed, sr_bits=sr_bits, axis=axis))
    calls_ok(lambda: fpsim.encode(x, fmt, rounding=mode, seed=seed, sr_bits=sr_bits, axis=axis))
    calls_ok(lambda: fpsim.decode(x, fmt, axis=axis))
    calls_ok(lambda: fpsim.block_exponents(x, fmt, axis=axis))
    calls_ok(lambda: fpsim.quantize(x, fmt, dtype=np.float16))
    calls_ok(lambda: fpsim.quantize(x, fmt, random_words=x))


@SETTINGS
@given(a=arrays(), b=arrays(), fmt=FORMATS, mode=MODES, seed=SEEDS, sr_bits=SR_BITS)
def test_arithmetic_units(a, b, fmt, mode, seed, sr_bits):
    for op in (fpsim.add, fpsim.sub, fpsim.mul, fpsim.div):
        calls_ok(lambda: op(a, b, fmt, rounding=mode, seed=seed, sr_bits=sr_bits))
    calls_ok(lambda: fpsim.fma(a, b, a, fmt, rounding=mode, seed=seed))
    calls_ok(lambda: fpsim.sqrt(a, fmt, rounding=mode, seed=seed))


ACCS = st.sampled_from([None, "float16", "fp16_169", "bfloat16", "posit8", "fixed<8,8>",
                        fpsim.Accumulator("e5m10", chunk=4), fpsim.KulischAccumulator("float32"),
                        fpsim.Accumulator("bfloat16", order="pairwise", rounding="sr"),
                        "nonsense", 3, fpsim.format("e5m2"), object(),
                        fpsim.engine("ampere", "mma.m16n8k16.f32.bf16.bf16.f32"),
                        fpsim.Accumulator("float32", chunk=8,
                                          inner=fpsim.engine("hopper",
                                                             "wgmma.m64n8k32.f32.e4m3.e4m3"))])


@SETTINGS
@given(A=arrays(), B=arrays(), acc=ACCS, product=st.sampled_from([None, "bfloat16", "bad", 1]),
       fa=FORMATS, fb=FORMATS, seed=SEEDS,
       prod_mode=st.sampled_from(["rne", "rtz", "sr", "bad"]), qo=st.booleans())
def test_gemm_family(A, B, acc, product, fa, fb, seed, prod_mode, qo):
    calls_ok(lambda: fpsim.gemm(A, B, acc=acc, product=product, seed=seed,
                                product_rounding=prod_mode, quantize_operands=qo))
    calls_ok(lambda: fpsim.gemm(A, B, acc=acc, a_format=fa, b_format=fb, out_format=fa))
    calls_ok(lambda: fpsim.sum(A, acc=acc, x_format=fa))
    calls_ok(lambda: fpsim.dot(A, B, acc=acc, a_format=fa, b_format=fb))
    calls_ok(lambda: fpsim.gemm(A, B, out=B))


@SETTINGS
@given(x=arrays(), w=arrays(), acc=ACCS, stride=st.sampled_from([1, 2, 0, -1, (1, 2), "x", 1.5]),
       padding=st.sampled_from([0, 1, -1, (0, 1), None]),
       shape=st.sampled_from([(1, 1, 3, 3), (2, 1, 2, 2), (0, 1, 3, 3), (1, 2), "x"]))
def test_convolutions(x, w, acc, stride, padding, shape):
    calls_ok(lambda: fpsim.conv2d(x, w, stride=stride, padding=padding, acc=acc))
    calls_ok(lambda: fpsim.conv2d_backward_data(x, w, shape, stride=stride, padding=padding))
    calls_ok(lambda: fpsim.conv2d_backward_weight(x, w, shape, stride=stride, padding=padding))


PARAMS = st.sampled_from([0, 1, 4, 60, -3, 2.5, None, "4", np.int64(5), True])


@SETTINGS
@given(a=PARAMS, b=PARAMS, c=PARAMS, fmt=FORMATS, mode=MODES, chunk=PARAMS,
       order=st.sampled_from(["sequential", "pairwise", "tree", None]), sr_bits=SR_BITS)
def test_constructors(a, b, c, fmt, mode, chunk, order, sr_bits):
    calls_ok(lambda: fpsim.FloatFormat(a, b, bias=c))
    calls_ok(lambda: fpsim.FloatFormat(a, b, specials=mode))
    calls_ok(lambda: fpsim.FixedFormat(a, b, signed=c))
    calls_ok(lambda: fpsim.PositFormat(a, b))
    calls_ok(lambda: fpsim.Radix4Format(a, c))
    calls_ok(lambda: fpsim.ExponentFormat(a, b))
    calls_ok(lambda: fpsim.BlockFormat(fmt, block=a, scale_min=b, scale_max=c))
    calls_ok(lambda: fpsim.format(fmt))
    calls_ok(lambda: fpsim.Accumulator(fmt, chunk=chunk, rounding=mode, order=order,
                                       sr_bits=sr_bits))
    calls_ok(lambda: fpsim.KulischAccumulator(fmt, width=a, rounding=mode))
    calls_ok(lambda: fpsim.seed(a))
    calls_ok(lambda: fpsim.Autoflex(fmt, history=a))
    calls_ok(lambda: fpsim.GradScale(fmt, rounding=mode))
    calls_ok(lambda: fpsim.engine(fmt, mode))
    calls_ok(lambda: fpsim.engine("hopper", fmt))
    calls_ok(lambda: fpsim.FusedDotAdd(group=a, frac_bits=b, cut=mode, carry_bits=c,
                                       zero_exponent=chunk, register=fmt))
    calls_ok(lambda: fpsim.Accumulator("float32", chunk=chunk, inner=fmt))


def run_cli(argv):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = cli.main(argv)
        except SystemExit as e:         # argparse's usage errors: exit status 2, no traceback
            code = e.code
    return code, err.getvalue()


WORDS = st.sampled_from(["e5m2", "posit8", "mxfp8_e4m3", "e99m1", "", "-x", "--rounding",
                         "sr", "--sr-bits", "0", "70", "8", "--input", "binary16", "binary99",
                         "--random", "-5", "3", "/nonexistent", "/tmp", "--no-shipped",
                         "--epochs", "-1", "--recipe", "nope", "--model", "cnn", "--recipes",
                         "fp7,fp9", "-o", "/nonexistent/dir/out.csv"])


@settings(max_examples=120, deadline=None, derandomize=True)
@given(cmd=st.sampled_from(["formats", "table", "vectors", "validate", "recipes", "train",
                            "compare", "bench", "nosuch", "--help"]),
       rest=st.lists(WORDS, max_size=5))
def test_cli_never_prints_a_traceback(cmd, rest):
    if cmd in ("train", "compare") and not ({"nope", "cnn", "fp7,fp9", "-1"} & set(rest)):
        rest = rest + ["--recipe" if cmd == "train" else "--recipes", "nope"]  # no real training
    if cmd == "bench":
        rest = rest + ["--nosuchflag"]                                         # no benchmarks
    code, err = run_cli([cmd] + rest)
    assert "Traceback" not in err
    assert code in (0, 1, 2), (cmd, rest, code, err)


@pytest.mark.parametrize("argv", [["table", "posit<40,2>"], ["vectors", "e5m2", "--rounding",
                                                                 "sr"],
                                  ["vectors", "e5m2", "--rounding", "sr", "--sr-bits", "70"],
                                  ["validate", "--no-shipped", "/nonexistent"],
                                  ["table", "e5m2", "-o", "/nonexistent/dir/out.csv"]])
def test_cli_errors_are_one_line(argv):
    code, err = run_cli(argv)
    assert code == 2 and err.count("\n") == 1 and err.startswith("fpsim "), err
