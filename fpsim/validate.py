"""Reference tables and test vectors: read, write, check.

Tables (CSV) list every code of a format of at most 16 bits with its value::

    # fpsim reference table
    # format: float8_e4m3fn
    # spec: e4m3fn
    # source: ml_dtypes 0.6.0 (independent of fpsim)
    code,hex,value
    0x38,0x1.0000000000000p+0,1.0

``hex`` is the exact value (``float.hex``; ``nan``/``inf``/``-inf`` for specials); ``value`` the
same in decimal for people.

Test vectors (plain text, one case a line, hex fields separated by spaces, like Berkeley
TestFloat's) let an RTL testbench and fpsim check each other::

    # fpsim test vectors v1
    # op: quantize
    # format: e4m3fn
    # rounding: sr
    # sr_bits: 8
    # input: binary32
    # columns: input random expected
    3f8ccccd a7 38

``input`` is the operand's IEEE bit pattern (binary16/32/64, zero-padded to 4/8/16 digits),
``random`` (stochastic rounding only) the ``sr_bits`` random bits the rounder adds below the kept
LSB (see fpsim.kernels.rounding), ``expected`` the result code of the format.  Lines starting with
``#`` are headers (``key: value``) or comments; blank lines are ignored.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from importlib import resources

import numpy as np

from .quantize import decode, encode
from ._args import check_rounding
from .formats import format as _format

INPUT_TYPES = {"binary16": np.float16, "binary32": np.float32, "binary64": np.float64}
_UINT = {np.float16: np.uint16, np.float32: np.uint32, np.float64: np.uint64}


@dataclass
class Report:
    """Outcome of checking one table or vector file."""
    label: str
    passed: int = 0
    mismatches: list = field(default_factory=list)   # human-readable lines, at most 20 kept
    failed: int = 0

    def add(self, ok: np.ndarray, describe):
        self.passed += int(ok.sum())
        bad = np.flatnonzero(~ok)
        self.failed += bad.size
        for i in bad[: max(0, 20 - len(self.mismatches))]:
            self.mismatches.append(describe(i))


# --- tables -------------------------------------------------------------------------------------
def _hex(v: float) -> str:
    return "nan" if np.isnan(v) else float(v).hex()


def write_table(fmt, out, values=None, source="fpsim (self-generated; not a reference)"):
    """Write every code of ``fmt`` (<= 16 bits) and its value as CSV to ``out`` (path or file).

    ``values`` (float64, one per code) come from an independent source when making a golden
    table; by default fpsim's own decode is used.

    >>> import io, fpsim
    >>> buf = io.StringIO(); fpsim.validate.write_table("float4_e2m1fn", buf)
    >>> buf.getvalue().splitlines()[6]
    '0x1,0x1.0000000000000p-1,0.5'
    """
    f = _format(fmt)
    f = getattr(f, "element", f)          # a block format: the table of its element format
    if f.bits > 16:
        raise ValueError(f"tables list formats of at most 16 bits; {f} has {f.bits}")
    codes = np.arange(f.n_codes, dtype=f.code_dtype)
    if values is None:
        values = decode(codes, f, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    if values.shape != codes.shape:
        raise ValueError(f"values must have one entry per code ({f.n_codes})")
    lines = ["# fpsim reference table", f"# format: {f}", f"# spec: {f.spec}",
             f"# source: {source}", "code,hex,value"]
    lines += [f"{int(c):#x},{_hex(v)},{v!r}" for c, v in zip(codes, values.tolist())]
    text = "\n".join(lines) + "\n"
    if isinstance(out, (str, os.PathLike)):
        with open(out, "w") as fh:
            fh.write(text)
    else:
        out.write(text)


def _read_headers_and_lines(path):
    with open(path) as fh:
        raw = fh.read().splitlines()
    headers, body = {}, []
    for line in raw:
        s = line.strip()
        if not s:
            continue
        if s.startswith("#"):
            if ":" in s:
                k, v = s[1:].split(":", 1)
                headers[k.strip().lower()] = v.strip()
            continue
        body.append(s)
    return headers, body


def read_table(path):
    """(format, codes uint64, values float64) of a table file."""
    headers, body = _read_headers_and_lines(path)
    if "spec" not in headers and "format" not in headers:
        raise ValueError(f"{path}: no '# format:' or '# spec:' header")
    f = _format(headers.get("format") or headers["spec"])
    if body and body[0].startswith("code"):
        body = body[1:]
    codes = np.array([int(b.split(",")[0], 16) for b in body], dtype=np.uint64)
    values = np.array([float.fromhex(b.split(",")[1]) if b.split(",")[1] not in ("nan", "inf", "-inf")
                       else float(b.split(",")[1]) for b in body])
    return f, codes, values


def _same(a, b):
    return (np.isnan(a) & np.isnan(b)) | ((a == b) & (np.signbit(a) == np.signbit(b)))


def check_table(path) -> Report:
    """Decode every code of the table and compare with its value; encode every non-NaN value and
    compare with its code (formats whose codes are all canonical)."""
    f, codes, values = read_table(path)
    rep = Report(f"table {os.path.basename(str(path))} ({f})")
    got = decode(codes.astype(f.code_dtype), f, dtype=np.float64)
    rep.add(_same(got, values), lambda i: f"decode {int(codes[i]):#x}: got {got[i]!r}, "
                                          f"want {values[i]!r}")
    canon = ~np.isnan(values)
    if f.saturate:
        canon &= np.isfinite(values)
    if not f.subnormals:
        canon &= ((codes >> np.uint64(f.man_bits)) & np.uint64((1 << f.exp_bits) - 1)) != 0
    enc = encode(values[canon], f).astype(np.uint64)
    cc = codes[canon]
    vv = values[canon]
    rep.add(enc == cc, lambda i: f"encode {vv[i]!r}: got {int(enc[i]):#x}, want {int(cc[i]):#x}")
    return rep


# --- test vectors -------------------------------------------------------------------------------
def boundary_inputs(fmt, input_type="binary32"):
    """Every finite value of ``fmt``, every midpoint between neighbours, the input-type values one
    ulp either side of each, both signs, the overflow threshold, Inf and NaN (<= 16-bit formats)."""
    f = _format(fmt)
    t = INPUT_TYPES[input_type]
    v = f.values()
    mids = (v[1:] + v[:-1]) / 2
    ulp_top = v[-1] - v[-2]
    edges = np.array([v[-1] + ulp_top / 2, v[-1] + ulp_top, np.inf, np.nan, f.min_subnormal / 2])
    exact = np.concatenate([v, mids, edges])
    with np.errstate(over="ignore", invalid="ignore"):
        base = exact.astype(t)
    base = base[(base.astype(np.float64) == exact) | np.isnan(exact) | np.isinf(exact)]
    with np.errstate(over="ignore"):
        near = np.concatenate([base, np.nextafter(base, t(np.inf)), np.nextafter(base, t(-np.inf))])
    out = np.concatenate([near, -near])
    _, first = np.unique(out.view(_UINT[t]), return_index=True)
    return out[np.sort(first)]


def write_vectors(fmt, out, rounding="rne", input_type="binary32", sr_bits=None, seed=0,
                  inputs=None, random_count=0, codes=None, source="fpsim"):
    """Write quantize test vectors for ``fmt`` and ``rounding`` to ``out`` (path or file).

    Inputs default to :func:`boundary_inputs` plus ``random_count`` random bit patterns of the
    input type.  Expected codes come from fpsim, unless ``codes`` gives them from another source.
    Stochastic rounding needs ``sr_bits`` (the random bits are part of each case).

    >>> import io, fpsim
    >>> buf = io.StringIO()
    >>> fpsim.validate.write_vectors("float8_e4m3fn", buf, inputs=[1.0, 0.3])
    >>> buf.getvalue().splitlines()[-2:]
    ['3f800000 38', '3e99999a 2a']
    """
    f = _format(fmt)
    if input_type not in INPUT_TYPES:
        raise ValueError(f"input_type must be one of {tuple(INPUT_TYPES)}, got {input_type!r}")
    check_rounding(rounding, sr_bits, f)
    if rounding == "sr" and sr_bits is None:
        raise ValueError("test vectors with rounding='sr' need sr_bits (the random bits are "
                         "listed per case)")
    t = INPUT_TYPES[input_type]
    ut = _UINT[t]
    if inputs is None:
        inputs = boundary_inputs(f, input_type) if f.bits <= 16 else np.array([], t)
        if random_count:
            rng = np.random.default_rng(seed)
            rb = rng.integers(0, np.iinfo(ut).max, size=random_count, dtype=ut, endpoint=True)
            inputs = np.concatenate([inputs, rb.view(t)])
    x = np.asarray(inputs, dtype=t)
    words = None
    if rounding == "sr":
        rng = np.random.default_rng(seed)
        r = rng.integers(0, 2**sr_bits, size=x.size, dtype=np.uint64)
        words = r << np.uint64(64 - sr_bits)
    if codes is None:
        codes = encode(x, f, rounding=rounding, sr_bits=sr_bits, random_words=words)
    hexw = {np.float16: 4, np.float32: 8, np.float64: 16}[t]
    cw = (f.bits + 3) // 4
    head = ["# fpsim test vectors v1", "# op: quantize", f"# format: {f.spec}",
            f"# rounding: {rounding}"]
    if sr_bits is not None:
        head.append(f"# sr_bits: {sr_bits}")
    head += [f"# input: {input_type}", f"# source: {source}",
             "# columns: input " + ("random " if words is not None else "") + "expected"]
    xb = x.view(ut)
    rw = (sr_bits + 3) // 4 if sr_bits else 0
    lines = []
    for i in range(x.size):
        mid = f" {int(words[i] >> np.uint64(64 - sr_bits)):0{rw}x}" if words is not None else ""
        lines.append(f"{int(xb[i]):0{hexw}x}{mid} {int(codes[i]):0{cw}x}")
    text = "\n".join(head + lines) + "\n"
    if isinstance(out, (str, os.PathLike)):
        with open(out, "w") as fh:
            fh.write(text)
    else:
        out.write(text)


def check_vectors(path) -> Report:
    """Run every case of a vector file through fpsim and compare the codes."""
    headers, body = _read_headers_and_lines(path)
    for key in ("op", "format", "rounding", "input"):
        if key not in headers:
            raise ValueError(f"{path}: missing '# {key}:' header")
    if headers["op"] != "quantize":
        raise ValueError(f"{path}: op must be 'quantize', got {headers['op']!r}")
    f = _format(headers["format"])
    rounding = headers["rounding"]
    sr_bits = int(headers["sr_bits"]) if "sr_bits" in headers else None
    if headers["input"] not in INPUT_TYPES:
        raise ValueError(f"{path}: input must be one of {tuple(INPUT_TYPES)}")
    t = INPUT_TYPES[headers["input"]]
    cols = [line.split() for line in body]
    want_cols = 3 if rounding == "sr" else 2
    if any(len(c) != want_cols for c in cols):
        raise ValueError(f"{path}: every case needs {want_cols} hex fields")
    x = np.array([int(c[0], 16) for c in cols], dtype=_UINT[t]).view(t)
    want = np.array([int(c[-1], 16) for c in cols], dtype=np.uint64)
    words = None
    if rounding == "sr":
        words = np.array([int(c[1], 16) for c in cols], dtype=np.uint64) << np.uint64(64 - sr_bits)
    got = encode(x, f, rounding=rounding, sr_bits=sr_bits, random_words=words).astype(np.uint64)
    rep = Report(f"vectors {os.path.basename(str(path))} ({f}, {rounding}"
                 + (f", sr_bits={sr_bits}" if sr_bits else "") + ")")
    rep.add(got == want, lambda i: f"input {body[i].split()[0]}: got {int(got[i]):x}, "
                                   f"want {int(want[i]):x}")
    return rep


def shipped_files():
    """Paths of the golden tables and vectors shipped in fpsim/tables."""
    root = resources.files("fpsim") / "tables"
    return sorted(str(p) for p in root.iterdir() if p.name.endswith((".csv", ".txt")))


def validate(paths=(), shipped=True, progress=None):
    """Check shipped golden tables/vectors and the given files; returns a list of :class:`Report`."""
    files = (shipped_files() if shipped else []) + [str(p) for p in paths]
    reports = []
    for p in files:
        reports.append(check_table(p) if p.endswith(".csv") else check_vectors(p))
        if progress:
            progress(reports[-1])
    return reports


def reports_text(reports) -> str:
    """Human-readable summary, one line a file, then the mismatches."""
    buf = io.StringIO()
    for r in reports:
        status = "ok  " if r.failed == 0 else "FAIL"
        buf.write(f"{status} {r.label}: {r.passed} passed, {r.failed} mismatches\n")
        for m in r.mismatches:
            buf.write(f"       {m}\n")
    total_p = sum(r.passed for r in reports)
    total_f = sum(r.failed for r in reports)
    buf.write(f"{total_p} passed, {total_f} failed\n")
    return buf.getvalue()
