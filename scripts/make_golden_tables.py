"""Regenerate fpsim/tables: golden code tables and rounding vectors from independent sources.

Tables of the ml_dtypes formats come from ml_dtypes (bit patterns viewed as its types), tables of
the paper presets from gfloat (decode_float on a FormatInfo built from the preset's fields), and
round-to-nearest-even vectors of the ml_dtypes formats from ml_dtypes' own float32 conversion.
fpsim's kernels produce none of the expected values.

    python scripts/make_golden_tables.py
"""

import os
from importlib.metadata import version

import gfloat
import ml_dtypes
import numpy as np

import fpsim
from fpsim import validate

OUT = os.path.join(os.path.dirname(__file__), "..", "fpsim", "tables")
ML_NAMES = ["float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz",
            "float8_e4m3b11fnuz", "float8_e3m4", "float8_e4m3", "float6_e2m3fn", "float6_e3m2fn",
            "float4_e2m1fn"]
PRESETS = ["fp8_152", "hfp8_143", "hfp8_152"]


def gfloat_info(f):
    domain = gfloat.Domain.Extended if f.specials == "ieee" else gfloat.Domain.Finite
    nans = {"ieee": (1 << f.man_bits) - 1, "fn": 1, "fnuz": 0, "none": 0}[f.specials]
    return gfloat.FormatInfo(f.name, f.bits, f.man_bits + 1, bias=f.bias, is_signed=True,
                             domain=domain, has_nz=f.specials != "fnuz", num_high_nans=nans,
                             has_subnormals=f.subnormals, is_twos_complement=False)


def main():
    os.makedirs(OUT, exist_ok=True)
    for name in ML_NAMES:
        t = getattr(ml_dtypes, name)
        codes = np.arange(2 ** ml_dtypes.finfo(t).bits, dtype=np.uint8)
        values = codes.view(t).astype(np.float64)
        validate.write_table(name, os.path.join(OUT, f"{name}.csv"), values=values,
                             source=f"ml_dtypes {ml_dtypes.__version__} (independent of fpsim)")
        x = validate.boundary_inputs(name, "binary32")
        with np.errstate(invalid="ignore", over="ignore"):
            want = x.astype(t).view(np.uint8)
        validate.write_vectors(name, os.path.join(OUT, f"{name}_rne_binary32.txt"), inputs=x,
                               codes=want, source=f"ml_dtypes {ml_dtypes.__version__} float32 "
                                                  "conversion (independent of fpsim)")
    for name in PRESETS:
        f = fpsim.format(name)
        info = gfloat_info(f)
        values = np.array([gfloat.decode_float(info, c).fval for c in range(f.n_codes)])
        validate.write_table(name, os.path.join(OUT, f"{name}.csv"), values=values,
                             source=f"gfloat {version('gfloat')} decode_float (independent of fpsim)")


if __name__ == "__main__":
    main()
