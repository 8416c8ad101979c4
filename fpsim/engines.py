"""Matrix engines: the arithmetic of tensor cores and matrix cores.  One parameterised fused
dot-add model (:class:`FusedDotAdd`), with the two datapaths that are not fused (:class:`FMAChain`,
:class:`PairwiseGroups`), and a table that makes each instruction of each chip a preset of one of
them (:class:`MatrixEngine`, :func:`engine`, :func:`engines`).

The presets follow the algorithms of MMA-Sim (Xie et al. 2025, arXiv 2511.10909; the public
microsoft/MMA-Sim code read for the facts) and agree with the discriminating tests of Fasi et al.
(PeerJ CS 2021) for V100, T4 and A100; ``docs/engines_notes.md`` has the sources, section by
section, and names the algorithms NV-1..NV-6 and AMD-1..AMD-4 used below.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from ._args import check_format, is_int
from .formats import ExponentFormat, FloatFormat, format as _format
from .kernels import chain as _chain
from .kernels import cuda as _kcuda
from .kernels import fused as _fused
from .kernels import rounding as _k
from .quantize import float_args, operand

ARCHS = ("volta", "turing", "ampere", "ada", "hopper", "blackwell", "rtx_blackwell", "cdna1",
         "cdna2", "cdna3")
CUTS = tuple(_fused.CUTS)
OUT_ROUNDINGS = ("rne", "rna", "rtz", "rup", "rdn", "rto")
OVERFLOWS = ("inf", "format")
NARROW = 32      # outputs narrower than this (and taller than wide) run transposed (FusedDotAdd)


@dataclass(frozen=True)
class FusedDotAdd:
    """One fused dot-add step of a matrix engine, and how steps chain.

    A step takes ``group`` products and the incoming value ``c``:

    1. the products are exact (block scales, when the instruction has them, multiply in
       exactly); with ``subsum`` > 1 each run of ``subsum`` consecutive products is summed
       exactly and is one term (NVIDIA's FP4 instructions sum 16 products exactly);
    2. the alignment exponent ``E`` is the largest *term exponent*: a product's is the sum of
       its two inputs' exponents (``floor(log2|x|)`` raised to the input format's ``emin``;
       zeros get ``zero_exponent``, or never set ``E`` when it is None) plus its block scales'
       exponents; a run's (``subsum`` > 1) is the largest of its products', except that with
       block scales it is the sum of the scales' exponents alone (NV-6); ``c``'s is
       ``floor(log2|c|)`` raised to ``c_emin``, when ``c_aligned``.  With ``lanes=2`` the terms
       of even and odd k form two separate alignments (AMD CDNA3's FP8 halves);
    3. each term keeps ``frac_bits`` fractional bits below ``2**E``: it is cut to a multiple of
       ``2**(E - frac_bits)`` by ``cut`` ("rtz" toward zero, "rdn" toward -inf as a
       two's-complement datapath truncates, "rne" to nearest-even); two lanes are then floored
       to ``frac_bits`` bits below the larger of their exponents and added;
    4. the cut terms add exactly (``carry_bits``: None for an adder wide enough, or the bits it
       holds above ``2**(E+1)``, a sum beyond wrapping); ``c`` outside the alignment
       (``c_aligned=False``) is added exactly after, or late as AMD CDNA3 does
       (``late_sum_bits`` set): with ``M`` the larger of ``E`` and ``c``'s exponent, the sum is
       floored to ``late_sum_bits`` and ``c`` to ``late_c_bits`` fractional bits below ``2**M``,
       and ``c`` is dropped when its exponent is below ``M - late_c_drop``;
    5. the sum is rounded once into ``register`` with ``rounding`` (``overflow="inf"``: a sum
       of magnitude ``>= 2**(register.emax + 1)`` gives Inf whatever the mode, as NVIDIA's
       round-toward-zero outputs do; "format": the register format's own rules).
       ``product_overflow``: a product of magnitude ``>= 2**(register.emax + 1)`` gives that
       Inf whatever the other terms (NaN for both signs; AMD CDNA3).

    The result is the next step's ``c``: a K walked in steps of ``group``.  A NaN input, or
    +Inf and -Inf together, give NaN; an Inf gives that Inf.  An exactly zero sum is +0, except
    that ``c``'s zero passes when every term is zero (fpsim's choice; MMA-Sim gives +0).

    >>> import fpsim
    >>> v100 = fpsim.FusedDotAdd(group=4, frac_bits=23)
    >>> v100.register.spec, v100.cut, v100.rounding
    ('e8m23', 'rtz', 'rtz')
    """

    group: int = 4
    frac_bits: int = 23
    cut: str = "rtz"
    c_aligned: bool = True
    carry_bits: int | None = None
    zero_exponent: int | None = -126
    register: FloatFormat = field(default_factory=lambda: _format("float32"))
    rounding: str = "rtz"
    overflow: str = "inf"
    c_emin: int | None = None
    subsum: int = 1
    lanes: int = 1
    late_sum_bits: int | None = None
    late_c_bits: int | None = None
    late_c_drop: int | None = None
    product_overflow: bool = False

    def __post_init__(self):
        for name, lo, hi in (("group", 1, 256), ("frac_bits", 0, 48), ("subsum", 1, 64),
                             ("lanes", 1, 2)):
            v = getattr(self, name)
            if not is_int(v) or not lo <= v <= hi:
                raise ValueError(f"{name} must be an int in {lo}..{hi}, got {v!r}")
        if self.group % self.subsum or (self.lanes > 1 and self.subsum > 1):
            raise ValueError(f"subsum must divide group and lanes=2 needs subsum=1, got group="
                             f"{self.group}, subsum={self.subsum}, lanes={self.lanes}")
        if self.cut not in CUTS:
            raise ValueError(f"cut must be one of {CUTS}, got {self.cut!r}")
        for name in ("c_aligned", "product_overflow"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")
        for name in ("carry_bits", "late_sum_bits", "late_c_bits", "late_c_drop"):
            v = getattr(self, name)
            if v is not None and (not is_int(v) or not 0 <= v <= 48):
                raise ValueError(f"{name} must be None or an int in 0..48, got {v!r}")
        late = (self.late_sum_bits, self.late_c_bits)
        if (None in late and late != (None, None)) or \
                (self.late_c_drop is not None and self.late_sum_bits is None) or \
                (self.late_sum_bits is not None and self.c_aligned) or \
                (None not in late and self.late_c_bits > self.late_sum_bits):
            raise ValueError("late_sum_bits and late_c_bits go together, with c_aligned=False "
                             "and late_c_bits <= late_sum_bits (late_c_drop needs them)")
        if self.zero_exponent is not None and (not is_int(self.zero_exponent)
                                               or not -1000 <= self.zero_exponent <= 0):
            raise ValueError(f"zero_exponent must be None or an int in -1000..0, got "
                             f"{self.zero_exponent!r}")
        reg = check_format(self.register, blocks=False)
        if not isinstance(reg, FloatFormat) or not _k.supports(reg.man_bits, reg.emin):
            raise ValueError(f"register must be a float format of at most 50 fraction bits, got "
                             f"{self.register!r}")
        object.__setattr__(self, "register", reg)
        if self.rounding not in OUT_ROUNDINGS:
            raise ValueError(f"rounding must be one of {OUT_ROUNDINGS}, got {self.rounding!r}")
        if self.overflow not in OVERFLOWS:
            raise ValueError(f"overflow must be one of {OVERFLOWS}, got {self.overflow!r}")
        if self.c_emin is not None and (not is_int(self.c_emin)
                                        or not -1000 <= self.c_emin <= reg.emax):
            raise ValueError(f"c_emin must be None or an int in -1000..{reg.emax} (the "
                             f"register's emax), got {self.c_emin!r}")

    def describe(self):
        """The model's parameters in one line (the ``fpsim engines`` table)."""
        out = f"fused: group {self.group}"
        if self.subsum > 1:
            out += f" (exact runs of {self.subsum})"
        if self.lanes > 1:
            out += ", even/odd lanes"
        out += f", {self.frac_bits} bits {self.cut}"
        if self.late_sum_bits is not None:
            out += f", C late ({self.late_sum_bits}/{self.late_c_bits} bits rdn" + \
                (f", dropped below {self.late_c_drop}" if self.late_c_drop is not None else "") \
                + ")"
        elif not self.c_aligned:
            out += ", C added exactly"
        return out + f", {self.register.spec} {self.rounding}"

    def run(self, a3, b3, c3, a_fmt: FloatFormat, b_fmt: FloatFormat, scales=None,
            promote=None, device="cpu"):
        """D (Bt, M, N) float64: the chain of steps over K from C, for float64 arrays a3
        (BA, M, K), b3 (BB, K, N), c3 (Bt, M, N) of values of a_fmt, b_fmt and the register.
        ``scales``: None, or (sa3 (BA, M, K/block), sb3 (BB, K/block, N), scale format, block).
        ``promote``: None, or (chunk, outer format, outer rounding): every chunk elements of K
        (a multiple of group) the register is added into the outer register and restarts from
        +0; D is the outer register (what :func:`fpsim.gemm` computes for
        ``Accumulator(outer, chunk=chunk, inner=engine)``).  ``device``: "cpu", or "cuda" (the
        GPU kernel: one thread per element, the same bits)."""
        m, n = c3.shape[1], c3.shape[2]
        if n < NARROW and m > n:
            # the kernel's vectors run along N: a narrow output (attention's products) runs
            # transposed, D^T = B^T A^T from C^T - the same steps, as each step is symmetric
            # in the two inputs of a product (formats, exponents and scales swap with them)
            t = lambda x: np.ascontiguousarray(np.swapaxes(x, 1, 2))     # noqa: E731
            sc = None if scales is None else (t(scales[1]), t(scales[0])) + tuple(scales[2:])
            return t(self.run(t(b3), t(a3), t(c3), b_fmt, a_fmt, sc, promote, device))
        ea, eb = self._exponents(a3, a_fmt), self._exponents(b3, b_fmt)
        z = min(self.zero_exponent or 0, 0)
        lo = min(a_fmt.emin, z) + min(b_fmt.emin, z)
        hi = a_fmt.emax + b_fmt.emax
        head = 2 + int(np.ceil(np.log2(self.subsum)))
        bits = a_fmt.man_bits + b_fmt.man_bits + 2                   # a product's width
        if self.subsum > 1:     # the span of a run's products (their quanta differ)
            bits += a_fmt.emax - a_fmt.emin + b_fmt.emax - b_fmt.emin
        if scales is not None:
            sa3, sb3, s_fmt, block = scales
            s_lo, s_hi, s_bits = scale_range(s_fmt, self.zero_exponent)
            esa = np.repeat(self._exponents(sa3, s_fmt), block, axis=2)
            esb = np.repeat(self._exponents(sb3, s_fmt), block, axis=1)
            a3 = a3 * np.repeat(sa3, block, axis=2)      # exact: a float64 holds an input
            b3 = b3 * np.repeat(sb3, block, axis=1)      # times a scale (4 + 4 bits here)
            bits += 2 * (s_bits + 1)                    # two scale significands
            if self.subsum > 1:                         # NV-6: the scales' exponents alone
                ea, eb = esa, esb
                lo, hi = 2 * s_lo, 2 * s_hi
                head = int(np.ceil(np.log2(self.subsum * a_fmt.max * b_fmt.max))) + 2
            else:
                ea, eb = ea + esa, eb + esb
                lo, hi = lo + 2 * s_lo, hi + 2 * s_hi
                head += 2 * (s_bits > 0)
        c_emin = self.register.emin if self.c_emin is None else self.c_emin
        late = -1 if self.late_sum_bits is None else self.late_sum_bits
        if promote is not None and (not is_int(promote[0]) or promote[0] < 1
                                    or promote[0] % self.group):
            raise ValueError(f"the promotion chunk must be a multiple of group ({self.group}), "
                             f"got {promote[0]!r}")
        if not (_fused.subsum_exact(bits, self.subsum) and _fused.supports(
                self.frac_bits, self.group // self.subsum, min(lo, c_emin - 1),
                max(hi, self.register.emax), head, late)):
            raise ValueError(f"the fused kernel is not exact for {self} with inputs {a_fmt} and "
                             f"{b_fmt}")
        d = np.empty(c3.shape)
        cfg = (self.group, self.frac_bits, _fused.CUTS[self.cut], int(self.c_aligned),
               -1 if self.carry_bits is None else self.carry_bits, c_emin,
               _fused.NO_INPUT if self.zero_exponent is None else self.zero_exponent,
               int(self.overflow == "inf"), self.subsum, self.lanes, late,
               -1 if self.late_c_bits is None else self.late_c_bits,
               -1 if self.late_c_drop is None else self.late_c_drop, int(self.product_overflow),
               -1 if promote is None else promote[0])
        outer = self.register if promote is None else promote[1]
        ofmt = float_args(outer) + (_k.MODE["rne" if promote is None else promote[2]],)
        if device == "cuda":            # the float32 cut lanes are a CPU speed-up only
            _kcuda.fused_gemm(*(np.ascontiguousarray(x, np.float64) for x in (a3, b3, c3)), d,
                              ea, eb, tuple(np.int64(v) for v in cfg),
                              float_args(self.register) + (_k.MODE[self.rounding],), ofmt)
            return d
        f32 = scales is None and _fused.float32_cuts(
            self.frac_bits, self.group, _fused.CUTS[self.cut], self.subsum,
            (a_fmt.man_bits, a_fmt.emin, a_fmt.emax), (b_fmt.man_bits, b_fmt.emin, b_fmt.emax),
            self.register.emax)
        empty = np.empty((1, 0, 0), np.float32)
        _fused.fused_gemm(np.ascontiguousarray(a3, np.float64),
                          np.ascontiguousarray(b3, np.float64),
                          np.ascontiguousarray(c3, np.float64), d, np.ascontiguousarray(ea),
                          np.ascontiguousarray(eb), tuple(np.int64(v) for v in cfg),
                          float_args(self.register) + (_k.MODE[self.rounding],), ofmt,
                          np.ascontiguousarray(a3, np.float32) if f32 else empty,
                          np.ascontiguousarray(b3, np.float32) if f32 else empty)
        return d

    def _exponents(self, x, f):
        """Each input's alignment exponent (int32): floor(log2|x|) raised to f's emin; zeros
        (and non-finite values, which take the special path) get zero_exponent."""
        zero = _fused.NO_INPUT if self.zero_exponent is None else self.zero_exponent
        x = np.ascontiguousarray(x, np.float64)
        out = np.empty(x.shape, np.int32)
        _fused.input_exponents(x.reshape(-1), scale_range(f, None)[0], zero, out.reshape(-1))
        return out


def scale_range(f, zero_exponent):
    """(lowest exponent, highest exponent, fraction bits) of the values of a float or exponent
    format (zeros counted at zero_exponent, when given)."""
    if isinstance(f, ExponentFormat):
        return -f.bias, f.top_code - f.bias, 0
    lo = f.emin if zero_exponent is None else min(f.emin, zero_exponent)
    return lo, f.emax, f.man_bits


@dataclass(frozen=True)
class FMAChain:
    """A chain of fused multiply-adds: for k in order, ``r = a_k * b_k + r`` rounded once to
    nearest-even in ``register`` (float32 or float64, IEEE, subnormals kept): NVIDIA's f64 mma
    (NV-1) and AMD's f32/f64 MFMA (AMD-1), C first."""

    register: FloatFormat = field(default_factory=lambda: _format("float64"))

    def __post_init__(self):
        reg = check_format(self.register, blocks=False)
        if reg not in (_format("float32"), _format("float64")):
            raise ValueError(f"register must be float32 or float64, got {self.register!r}")
        object.__setattr__(self, "register", reg)

    def describe(self):
        return f"FMA chain, {self.register.name} rne"

    def run(self, a3, b3, c3, a_fmt, b_fmt, scales=None, device="cpu"):
        dt = np.float64 if self.register.man_bits == 52 else np.float32
        d = np.empty(c3.shape, dt)        # the values are the register type's (exact casts)
        chain = _kcuda.fma_chain if device == "cuda" else _chain.fma_chain
        chain(*(np.ascontiguousarray(x, dt) for x in (a3, b3, c3)), d)
        return d.astype(np.float64)


@dataclass(frozen=True)
class PairwiseGroups:
    """AMD CDNA1/CDNA2 f16 and bf16 MFMA (AMD-2): for each ``group`` of products (a power of
    two) rounded to float32, a tree of float32 additions ``(p0+p1)+(p2+p3)``, then the
    register ``r = r + tree``, every operation IEEE float32 nearest-even.  ``ftz`` (CDNA2): A
    and B inputs below their format's smallest normal, and C below 2**-126 as each instruction
    (``k`` elements of K) reads it, become +0; every product and sum below 2**-126 becomes a
    zero of its sign."""

    group: int = 4
    ftz: bool = False
    k: int = 4

    def __post_init__(self):
        if self.group not in (1, 2, 4, 8, 16) or not is_int(self.k) or self.k % self.group:
            raise ValueError(f"group must be 1, 2, 4, 8 or 16 and divide k, got group="
                             f"{self.group!r}, k={self.k!r}")
        if not isinstance(self.ftz, bool):
            raise ValueError(f"ftz must be True or False, got {self.ftz!r}")

    @property
    def register(self):
        return _format("float32")

    def describe(self):
        return f"pairwise groups of {self.group}, float32 rne" + (", FTZ" if self.ftz else "")

    def run(self, a3, b3, c3, a_fmt, b_fmt, scales=None, device="cpu"):
        if self.ftz:                     # inputs below their format's normal range: +0
            a3 = np.where(np.abs(a3) < a_fmt.min_normal, 0.0, a3)
            b3 = np.where(np.abs(b3) < b_fmt.min_normal, 0.0, b3)
        d = np.empty(c3.shape, np.float32)
        groups = _kcuda.pairwise_groups if device == "cuda" else _chain.pairwise_groups
        groups(*(np.ascontiguousarray(x, np.float32) for x in (a3, b3, c3)), d, self.group,
               self.k, self.ftz)
        return d.astype(np.float64)


# --- the instruction tables (docs/engines_notes.md section 4) ----------------------------------
_F = {"volta": 23, "turing": 24, "ampere": 24, "ada": 24, "hopper": 25, "blackwell": 25,
      "rtx_blackwell": 25}
_SPLIT = ("ampere", "ada")       # k16 f16/bf16, k8 tf32 and k32 fp8 run as two chained halves
_TYPES = {"f64": "float64", "f32": "float32", "f16": "float16", "bf16": "bfloat16",
          "tf32": "e8m10", "xf32": "e8m10", "e4m3": "float8_e4m3fn", "e5m2": "float8_e5m2",
          "e2m1": "float4_e2m1fn", "fp8": "float8_e4m3fnuz", "bf8": "float8_e5m2fnuz",
          "ue8m0": "float8_e8m0fnu", "ue4m3": "float8_e4m3fn"}
_FP8 = ("e4m3", "e5m2")
_F8F6F4 = ("e4m3", "e5m2", "e2m1")   # e2m1 in kind::f8f6f4: MMA-Sim declares it without running
                                     # it; fpsim's choice is the fp8 rule (NV-2, F = 25)
_F64 = ["m8n8k4.f64.f64.f64.f64"]
_VOLTA = ["m8n8k4.f32.f16.f16.f32", "m8n8k4.f32.f16.f16.f16", "m8n8k4.f16.f16.f16.f16"]
_TURING = ["m16n8k8.f32.f16.f16.f32", "m16n8k8.f16.f16.f16.f16"] + _VOLTA
_SM80 = ["m16n8k8.f32.tf32.tf32.f32", "m16n8k4.f32.tf32.tf32.f32", "m16n8k16.f32.f16.f16.f32",
         "m16n8k16.f16.f16.f16.f16", "m16n8k16.f32.bf16.bf16.f32", "m16n8k8.f32.bf16.bf16.f32",
         "m16n8k8.f32.f16.f16.f32", "m16n8k8.f16.f16.f16.f16"]
_ADA_FP8 = [f"m16n8k{k}.{d}.{a}.{b}.{d}" for k in (32, 16) for d in ("f32", "f16")
            for a in _FP8 for b in _FP8]
_RTX_FP8 = [f"m16n8k32.{d}.{a}.{b}.{d}" for d in ("f32", "f16") for a in _F8F6F4
            for b in _F8F6F4] + [f"m16n8k16.{d}.{a}.{b}.{d}" for d in ("f32", "f16")
                                 for a in _FP8 for b in _FP8]
_RTX_BLOCK = [f"m16n8k32.block32.f32.{a}.{b}.f32.ue8m0" for a in _F8F6F4 for b in _F8F6F4] + \
    [f"m16n8k64.block{b}.f32.e2m1.e2m1.f32.{s}" for s in ("ue8m0", "ue4m3") for b in (32, 16)]
MMA = {"volta": _VOLTA, "turing": _TURING, "ampere": _F64 + _SM80,
       "ada": _F64 + _SM80 + _ADA_FP8,
       "hopper": [f"m16n8k{k}.f64.f64.f64.f64" for k in (16, 8, 4)] + _F64 + _SM80,
       "blackwell": _F64 + _SM80, "rtx_blackwell": _F64 + _SM80 + _RTX_FP8 + _RTX_BLOCK}
WGMMA = ["k8.f32.tf32.tf32", "k16.f32.f16.f16", "k16.f16.f16.f16", "k16.f32.bf16.bf16"] + \
    [f"k32.{d}.{a}.{b}" for d in ("f32", "f16") for a in _FP8 for b in _FP8]
TCGEN05 = ["k8.f32.tf32.tf32", "k16.f32.f16.f16", "k16.f32.bf16.bf16", "k16.f16.f16.f16"] + \
    [f"k32.{d}.{a}.{b}" for d in ("f32", "f16") for a in _F8F6F4 for b in _F8F6F4]
TCGEN05_BLOCK = [f"k32.block32.f32.{a}.{b}.ue8m0" for a in _F8F6F4 for b in _F8F6F4] + \
    ["k64.block32.f32.e2m1.e2m1.ue8m0", "k64.block16.f32.e2m1.e2m1.ue8m0",
     "k64.block16.f32.e2m1.e2m1.ue4m3"]
_N_VALUES = range(8, 257, 8)

# AMD MFMA: qualifier -> (A, B, model kind, group); C and D are float32 (float64 for f64)
_C12 = {**{f"f32_{m}x{n}x{k}f32": ("f32", "f32", "chain", 1)
           for m, n, k in ((32, 32, 2), (32, 32, 1), (16, 16, 4), (16, 16, 1), (4, 4, 1))},
        **{f"f32_{m}x{n}x{k}f16": ("f16", "f16", "pairwise", 4)
           for m, n, k in ((32, 32, 8), (32, 32, 4), (16, 16, 16), (16, 16, 4), (4, 4, 4))},
        **{f"f32_{m}x{n}x{k}bf16": ("bf16", "bf16", "pairwise", 2)
           for m, n, k in ((32, 32, 4), (32, 32, 2), (16, 16, 8), (16, 16, 2), (4, 4, 2))}}
_C2 = {**_C12, "f64_16x16x4f64": ("f64", "f64", "chain", 1),
       "f64_4x4x4f64": ("f64", "f64", "chain", 1),
       **{f"f32_{m}x{n}x{k}bf16_1k": ("bf16", "bf16", "pairwise", 4)
          for m, n, k in ((32, 32, 8), (32, 32, 4), (16, 16, 16), (16, 16, 4), (4, 4, 4))}}
_C3 = {"f64_16x16x4_f64": ("f64", "f64", "chain", 1),
       "f64_4x4x4_4b_f64": ("f64", "f64", "chain", 1),
       **{f"f32_{s}_f32": ("f32", "f32", "chain", 1)
          for s in ("32x32x1_2b", "16x16x1_4b", "4x4x1_16b", "32x32x2", "16x16x4")},
       "f32_16x16x8_xf32": ("xf32", "xf32", "cdna3", 4),
       "f32_32x32x4_xf32": ("xf32", "xf32", "cdna3", 4),
       **{f"f32_{s}_{t}": (t, t, "cdna3", g) for t in ("f16", "bf16")
          for s, g in (("32x32x4_2b", 4), ("16x16x4_4b", 4), ("4x4x4_16b", 4), ("32x32x8", 8),
                       ("16x16x16", 8))},
       **{f"f32_{s}_{a}_{b}": (a, b, "cdna3_fp8", 16) for s in ("16x16x32", "32x32x16")
          for a in ("bf8", "fp8") for b in ("bf8", "fp8")}}
MFMA = {"cdna1": _C12, "cdna2": _C2, "cdna3": _C3}


@dataclass(frozen=True)
class MatrixEngine:
    """One matrix instruction of one chip: ``D = eng(A, B, C)`` with A (m, k), B (k, n),
    C (m, n), computed by ``model`` (:class:`FusedDotAdd`, :class:`FMAChain` or
    :class:`PairwiseGroups`); :func:`fpsim.gemm` takes it as ``acc=`` for any shape.

    ``a_format``, ``b_format``: the input formats (operand values must lie in them; tf32 and
    xf32 inputs are float32 arrays that the engine truncates to tf32, clearing the low 13 bits
    as the hardware does; e2m1 comes unpacked, one value per element); ``c_format``: C's;
    ``d_dtype``: the numpy type of D.  Block-scaled instructions (``block`` > 0) take a scale
    per ``block`` elements of k in ``scale_format`` (E8M0, or UE4M3 read by absolute value).
    """

    arch: str
    instruction: str
    m: int
    n: int
    k: int
    a_format: FloatFormat
    b_format: FloatFormat
    c_format: FloatFormat
    d_dtype: object
    model: object
    tf32_inputs: bool = False
    block: int = 0
    scale_format: object = None

    def __call__(self, A, B, C=None, scale_a=None, scale_b=None):
        """D (m, n) of one instruction: values of A (m, k), B (k, n) and C (m, n; None: +0);
        block-scaled instructions need scale_a (m, k/block) and scale_b (k/block, n)."""
        A, B = np.asarray(A), np.asarray(B)
        C = np.zeros((self.m, self.n)) if C is None else np.asarray(C)
        for name, x, shape in (("A", A, (self.m, self.k)), ("B", B, (self.k, self.n)),
                               ("C", C, (self.m, self.n))):
            if x.shape != shape:
                raise ValueError(f"{name} must have shape {shape} for {self.instruction} on "
                                 f"{self.arch}, got {x.shape}")
        a64, b64 = self.inputs(A, B)
        scales = self.scales(scale_a, scale_b, A.shape, B.shape)
        c64 = operand("C", C, self.c_format, False)
        d = self.model.run(a64[None], b64[None], c64[None], self.a_format, self.b_format,
                           None if scales is None else (scales[0][None], scales[1][None])
                           + scales[2:])[0]
        return d.astype(self.d_dtype)

    def inputs(self, A, B):
        """A and B as float64 values of the input formats (tf32: truncated first)."""
        if self.tf32_inputs:
            A, B = (truncate_tf32(x) for x in (A, B))
        return (operand("A", A, self.a_format, False), operand("B", B, self.b_format, False))

    def scales(self, scale_a, scale_b, a_shape, b_shape):
        """(scale_a, scale_b, scale format, block) as float64 values for A of ``a_shape``
        (..., m, kk) and B of ``b_shape`` (..., kk, n): scale_a must have shape (..., m, nb)
        and scale_b (..., nb, n), nb = ceil(kk / block), with A's and B's batch dimensions; None
        for an instruction without block scales; ValueError for missing, misshapen or off-grid
        scales."""
        if not self.block:
            if scale_a is not None or scale_b is not None:
                raise ValueError(f"{self.instruction} takes no block scales")
            return None
        if scale_a is None or scale_b is None:
            raise ValueError(f"{self.instruction} on {self.arch} needs scale_a and scale_b: one "
                             f"{self.scale_format} scale per {self.block} elements of k")
        nb = -(-a_shape[-1] // self.block)
        out = []
        for name, s, shape in (("scale_a", scale_a, tuple(a_shape[:-1]) + (nb,)),
                               ("scale_b", scale_b, tuple(b_shape[:-2]) + (nb, b_shape[-1]))):
            s = np.asarray(s)
            if s.shape != shape:
                raise ValueError(f"{name} must have shape {shape} (one scale per {self.block} "
                                 f"elements of k, batched as its operand), got {s.shape}")
            if self.scale_format.name == "float8_e4m3fn":       # UE4M3: the sign bit ignored
                s = np.abs(s)
            out.append(operand(name, s, self.scale_format, False))
        return out[0], out[1], self.scale_format, self.block

    @property
    def out_format(self):
        return self.model.register

    def __str__(self):
        return f"{self.arch} {self.instruction}"


def truncate_tf32(x):
    """float32 values cut to tf32 as NVIDIA's tf32 instructions read them: the low 13 bits of
    the encoding cleared (toward zero; a NaN whose payload lies there becomes Inf)."""
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32) & np.uint32(0xFFFFE000)
    return bits.view(np.float32)


def _nvidia(arch, instruction, opcode, quals, m, n, k):
    block, scale = 0, None
    if quals[0].startswith("block"):
        block, scale, quals = int(quals[0][5:]), quals[-1], quals[1:-1]
    d, a, b = quals[:3]
    c = quals[3] if len(quals) > 3 else d
    fmt = {t: _format(_TYPES[t]) for t in (a, b, c)}
    if d == "f64":                                                    # NV-1
        model, d_dtype = FMAChain(_format("float64")), np.float64
        return MatrixEngine(arch, instruction, m, n, k, fmt[a], fmt[b], fmt[c], d_dtype, model)
    fp8 = a in _FP8
    reduced = fp8 and (arch == "ada" or opcode == "wgmma")      # NV-4: 13 fractional bits
    split = arch in _SPLIT and ((a == "tf32" and k == 8) or (a in ("f16", "bf16") and k == 16)
                                or (fp8 and k == 32))
    frac = 13 if reduced else 35 if (block and k == 64) else _F[arch]
    if d == "f16":
        reg, rounding = _format("float16"), "rne"
    else:
        reg, rounding = (FloatFormat(8, 13) if reduced else _format("float32")), "rtz"
    model = FusedDotAdd(group=k // 2 if split else k, frac_bits=frac, register=reg,
                        rounding=rounding, c_emin=fmt[c].emin,
                        subsum=16 if (block and k == 64) else 1)
    return MatrixEngine(arch, instruction, m, n, k, fmt[a], fmt[b], fmt[c],
                        np.float16 if d == "f16" else np.float32, model,
                        tf32_inputs=a == "tf32", block=block,
                        scale_format=None if scale is None else _format(_TYPES[scale]))


def _amd(arch, instruction, qual):
    a, b, kind, group = MFMA[arch][qual]
    m, n, k = (int(v) for v in re.search(r"(\d+)x(\d+)x(\d+)", qual).groups())
    f64 = a == "f64"
    reg = _format("float64" if f64 else "float32")
    if kind == "chain":                                               # AMD-1
        model = FMAChain(reg)
    elif kind == "pairwise":                                          # AMD-2
        model = PairwiseGroups(group=group, ftz=arch == "cdna2", k=k)
    else:                                                             # AMD-3, AMD-4
        fp8 = kind == "cdna3_fp8"
        model = FusedDotAdd(group=group, frac_bits=24, c_aligned=False, register=reg,
                            rounding="rne", overflow="format", late_sum_bits=31, late_c_bits=24,
                            late_c_drop=25 if fp8 else None, lanes=2 if fp8 else 1,
                            product_overflow=True)
    return MatrixEngine(arch, instruction, m, n, k, _format(_TYPES[a]), _format(_TYPES[b]), reg,
                        np.float64 if f64 else np.float32, model, tf32_inputs=a == "xf32")


_SHAPE = re.compile(r"^m(\d+)n(\d+)k(\d+)$")


def engine(arch, instruction):
    """The :class:`MatrixEngine` of ``instruction`` on ``arch`` (ISA spelling: opcode, then the
    qualifiers MMA-Sim uses), e.g. ``engine("ampere", "mma.m16n8k16.f32.bf16.bf16.f32")``,
    ``engine("hopper", "wgmma.m64n8k32.f32.e4m3.e4m3")`` (any n in 8..256 step 8),
    ``engine("blackwell", "tcgen05.mma.m128n64k64.block16.f32.e2m1.e2m1.ue4m3")``,
    ``engine("cdna3", "mfma.f32_32x32x8_f16")``.

    >>> import fpsim
    >>> eng = fpsim.engine("hopper", "wgmma.m64n8k32.f32.e4m3.e4m3")
    >>> eng.m, eng.n, eng.k, eng.model.frac_bits, eng.model.register.spec
    (64, 8, 32, 13, 'e8m13')
    """
    if arch not in ARCHS:
        raise ValueError(f"arch must be one of {ARCHS}, got {arch!r}")
    if not isinstance(instruction, str):
        raise ValueError(f"instruction must be a string such as 'mma.m16n8k16.f32.bf16.bf16.f32'"
                         f", got {instruction!r}")
    if arch.startswith("cdna"):
        qual = instruction[5:] if instruction.startswith("mfma.") else None
        if qual not in MFMA[arch]:
            raise ValueError(f"{instruction!r} is not an instruction of {arch} that fpsim models;"
                             f" valid: {', '.join(_listing(arch))}")
        return _amd(arch, instruction, qual)
    for opcode in ("tcgen05.mma", "wgmma", "mma"):
        if instruction.startswith(opcode + "."):
            rest = instruction[len(opcode) + 1:]
            break
    else:
        raise ValueError(f"instruction must start with mma., wgmma. or tcgen05.mma. on {arch}, "
                         f"got {instruction!r}; the instructions of {arch}: "
                         f"{', '.join(_listing(arch)[:6])}, ...")
    shape, _, quals = rest.partition(".")
    sm = _SHAPE.match(shape)
    ok = sm is not None
    if ok:
        m, n, k = (int(v) for v in sm.groups())
        q = f"k{k}.{quals}"
        if opcode == "mma":
            ok = f"{shape}.{quals}" in MMA.get(arch, ())
        elif opcode == "wgmma":
            ok = arch == "hopper" and m == 64 and n in _N_VALUES and q in WGMMA
        else:
            ok = arch == "blackwell" and n in _N_VALUES and \
                ((m in (64, 128) and q in TCGEN05) or (m == 128 and q in TCGEN05_BLOCK))
    if not ok:
        raise ValueError(f"{instruction!r} is not an instruction of {arch} that fpsim models; "
                         f"valid: {', '.join(_listing(arch))}")
    return _nvidia(arch, instruction, opcode, quals.split("."), m, n, k)


def _listing(arch):
    if arch in MFMA:
        return [f"mfma.{q}" for q in MFMA[arch]]
    out = [f"mma.{q}" for q in MMA.get(arch, ())]
    if arch == "hopper":
        out += [f"wgmma.m64nN{q}" for q in WGMMA]
    if arch == "blackwell":
        out += [f"tcgen05.mma.m{m}nN{q}" for m in (64, 128) for q in TCGEN05] + \
            [f"tcgen05.mma.m128nN{q}" for q in TCGEN05_BLOCK]
    return out


def engines():
    """Every (arch, instruction) modelled, as a list of pairs; wgmma and tcgen05 are listed with
    ``nN`` for their n (any multiple of 8 up to 256).

    >>> import fpsim
    >>> ("ampere", "mma.m16n8k16.f32.bf16.bf16.f32") in fpsim.engines()
    True
    """
    return [(arch, ins) for arch in ARCHS for ins in _listing(arch)]
