"""Golden tables, test vectors and the fpsim command."""

import os
import subprocess
import sys

import gfloat
import ml_dtypes
import numpy as np
import pytest

import fpsim
from fpsim import cli, validate


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "fpsim.cli", *args], capture_output=True,
                          text=True, cwd=os.path.dirname(os.path.dirname(__file__)))


def test_shipped_files_cover_every_named_narrow_format():
    names = {os.path.basename(p).split(".")[0] for p in validate.shipped_files()}
    for name, f in fpsim.registered_formats().items():   # float formats; posits, fixed point
        if isinstance(f, fpsim.FloatFormat) and 4 <= f.bits <= 8:  # and blocks: own tests
            assert name in names, name


def test_every_shipped_file_passes():
    reports = validate.validate()
    assert len(reports) >= 23
    assert all(r.failed == 0 and r.passed > 0 for r in reports), validate.reports_text(reports)


def test_preset_tables_agree_with_gfloat_rounding_too():
    """gfloat's round_float (nearest-even) agrees with quantize on the HFP8 forward format."""
    import importlib.util
    path = os.path.join(os.path.dirname(os.path.dirname(__file__)), "scripts", "make_golden_tables.py")
    spec = importlib.util.spec_from_file_location("make_golden_tables", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    gfloat_info = mod.gfloat_info
    f = fpsim.format("hfp8_143")
    info = gfloat_info(f)
    x = validate.boundary_inputs(f, "binary32").astype(np.float64)
    x = x[np.isfinite(x) & (np.abs(x) <= f.max)]
    want = np.array([gfloat.round_float(info, v) for v in x])
    np.testing.assert_array_equal(fpsim.quantize(x, f), want)


def test_corrupted_table_and_vectors_are_reported(tmp_path):
    src = [p for p in validate.shipped_files() if p.endswith("float8_e4m3fn.csv")][0]
    lines = open(src).read().splitlines()
    i = lines.index(next(line for line in lines if line.startswith("0x38,")))
    lines[i] = "0x38,0x1.2000000000000p+0,1.125"     # wrong value for code 0x38
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines) + "\n")
    rep = validate.check_table(bad)
    assert rep.failed >= 1 and "0x38" in rep.mismatches[0]

    vec = tmp_path / "v.txt"
    validate.write_vectors("e5m2", vec, inputs=[1.0, 1.2, 3.0])
    text = vec.read_text().replace("3f800000 3c", "3f800000 3d")
    vec.write_text(text)
    assert validate.check_vectors(vec).failed == 1

    r = run_cli("validate", "--no-shipped", str(bad))
    assert r.returncode == 1 and "FAIL" in r.stdout and "mismatches" in r.stdout


def test_vectors_round_trip_through_the_cli(tmp_path):
    for rounding, extra in [("rne", []), ("rtz", []), ("sr", ["--sr-bits", "6"])]:
        out = tmp_path / f"{rounding}.txt"
        r = run_cli("vectors", "float8_e4m3fn", "--rounding", rounding, *extra, "--random", "200",
                    "-o", str(out))
        assert r.returncode == 0, r.stderr
        rep = validate.check_vectors(out)
        assert rep.failed == 0 and rep.passed > 1000
    r = run_cli("validate", "--no-shipped", str(out))
    assert r.returncode == 0 and r.stdout.strip().endswith("0 failed")


def test_sr_vectors_match_ml_dtypes_free_reference():
    """The random column is what the hardware adds: R + truncated fraction >= 2**r rounds up."""
    import io
    buf = io.StringIO()
    validate.write_vectors("e4m3", buf, rounding="sr", sr_bits=2, inputs=[1.0 + 0.125 * 0.6] * 8,
                           seed=3)
    body = [line.split() for line in buf.getvalue().splitlines() if not line.startswith("#")]
    for inp, rnd, code in body:
        f_r = int(0.6 * 4)                          # 2 bits of the fraction 0.6 -> 2
        up = int(rnd, 16) + f_r >= 4
        assert int(code, 16) == (0x39 if up else 0x38)


def test_rne_vectors_equal_ml_dtypes_for_binary16_inputs(tmp_path):
    x = validate.boundary_inputs("float8_e5m2", "binary16")
    want = x.astype(np.float32).astype(ml_dtypes.float8_e5m2).view(np.uint8)
    out = tmp_path / "h.txt"
    validate.write_vectors("float8_e5m2", out, input_type="binary16", inputs=x, codes=want,
                           source="ml_dtypes")
    assert validate.check_vectors(out).failed == 0


def test_table_command_matches_ml_dtypes():
    r = run_cli("table", "float8_e5m2")
    assert r.returncode == 0
    rows = [line.split(",") for line in r.stdout.splitlines()
            if line.startswith("0x") and "," in line]
    assert len(rows) == 256
    vals = np.arange(256, dtype=np.uint8).view(ml_dtypes.float8_e5m2).astype(np.float64)
    for (code, hexv, _), v in zip(rows, vals):
        assert hexv == ("nan" if np.isnan(v) else float(v).hex())


def test_formats_command_lists_every_named_format():
    r = run_cli("formats")
    assert r.returncode == 0
    for name, f in fpsim.registered_formats().items():
        row = next(line for line in r.stdout.splitlines() if line.startswith(f"| {name} |"))
        assert f"| {f.spec} | {f.bits} |" in row
        if isinstance(f, fpsim.FloatFormat):
            assert f"bias {f.bias}" in row


@pytest.mark.parametrize("args", [["table", "nonsense"], ["table", "float32"],
                                  ["vectors", "e4m3", "--rounding", "sr"]])
def test_cli_errors_are_one_line_messages(args):
    r = run_cli(*args)
    assert r.returncode == 2
    assert r.stderr.startswith("fpsim ") and "Traceback" not in r.stderr


def test_cli_main_in_process(capsys):
    assert cli.main(["formats"]) == 0
    assert "float8_e4m3fn" in capsys.readouterr().out
