"""Matrix engines: the fused dot-add of tensor cores and matrix cores, one parameterised model
(:class:`FusedDotAdd`) that each chip's instruction is a preset of (:class:`MatrixEngine`,
:func:`engine`, :func:`engines`).

The presets follow the algorithms of MMA-Sim (Xie et al. 2025, arXiv 2511.10909; the public
microsoft/MMA-Sim code read for the facts) and agree with the discriminating tests of Fasi et al.
(PeerJ CS 2021) for V100, T4 and A100: ``docs/engines_notes.md`` has the sources, section by
section.  This module models the NVIDIA fused paths (mma, wgmma and tcgen05 on Volta ... RTX
Blackwell) without block scales; the f64 FMA chains, the block-scaled instructions and AMD's
CDNA matrix cores are not modelled yet (``engine()`` says so).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from ._args import check_format, is_int
from .formats import FloatFormat, format as _format
from .kernels import fused as _fused
from .kernels import rounding as _k
from .quantize import float_args, operand

ARCHS = ("volta", "turing", "ampere", "ada", "hopper", "blackwell", "rtx_blackwell", "cdna1",
         "cdna2", "cdna3")
CUTS = tuple(_fused.CUTS)
OUT_ROUNDINGS = ("rne", "rna", "rtz", "rup", "rdn", "rto")
OVERFLOWS = ("inf", "format")


@dataclass(frozen=True)
class FusedDotAdd:
    """One fused dot-add step of a matrix engine, and how steps chain.

    A step takes ``group`` products and the incoming value ``c``:

    1. the products are exact;
    2. the alignment exponent ``E`` is the largest *term exponent*: a product's is the sum of
       its two inputs' exponents (``floor(log2|x|)`` raised to the input format's ``emin``;
       zeros get ``zero_exponent``, or never set ``E`` when it is None), and ``c``'s is
       ``floor(log2|c|)`` raised to ``c_emin`` (when ``c_aligned``);
    3. each term keeps ``frac_bits`` fractional bits below ``2**E``: it is cut to a multiple of
       ``2**(E - frac_bits)`` by ``cut`` ("rtz" toward zero, "rdn" toward -inf as a
       two's-complement datapath truncates, "rne" to nearest-even);
    4. the cut terms add exactly (``carry_bits``: None for an adder wide enough, or the bits it
       holds above ``2**(E+1)``, a sum beyond wrapping); ``c`` outside the alignment
       (``c_aligned=False``) is added exactly after;
    5. the sum is rounded once into ``register`` with ``rounding`` (``overflow="inf"``: a sum
       of magnitude ``>= 2**(register.emax + 1)`` gives Inf whatever the mode, as NVIDIA's
       round-toward-zero outputs do; "format": the register format's own rules).

    The result is the next step's ``c``: a K walked in steps of ``group``.  A NaN input, or
    +Inf and -Inf together, give NaN; an Inf gives that Inf.  An exactly zero sum is +0, except
    that ``c``'s zero passes when every product is zero (fpsim's choice; MMA-Sim gives +0).

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

    def __post_init__(self):
        for name, lo, hi in (("group", 1, 256), ("frac_bits", 0, 48)):
            v = getattr(self, name)
            if not is_int(v) or not lo <= v <= hi:
                raise ValueError(f"{name} must be an int in {lo}..{hi}, got {v!r}")
        if self.cut not in CUTS:
            raise ValueError(f"cut must be one of {CUTS}, got {self.cut!r}")
        if not isinstance(self.c_aligned, bool):
            raise ValueError(f"c_aligned must be True or False, got {self.c_aligned!r}")
        if self.carry_bits is not None and (not is_int(self.carry_bits) or self.carry_bits < 0):
            raise ValueError(f"carry_bits must be None or an int >= 0, got {self.carry_bits!r}")
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
        if self.c_emin is not None and not is_int(self.c_emin):
            raise ValueError(f"c_emin must be None or an int, got {self.c_emin!r}")

    def run(self, a3, b3, c3, a_fmt: FloatFormat, b_fmt: FloatFormat):
        """D (Bt, M, N) float64: the chain of steps over K from C, for float64 arrays a3
        (BA, M, K), b3 (BB, K, N), c3 (Bt, M, N) of values of a_fmt, b_fmt and the register."""
        lo = min(a_fmt.emin, 0) + min(b_fmt.emin, 0) + min(self.zero_exponent or 0, 0)
        hi = a_fmt.emax + b_fmt.emax + 2
        if not _fused.supports(self.frac_bits, self.group, -1 if self.carry_bits is None
                               else self.carry_bits, min(lo, self.register.emin - 1), hi):
            raise ValueError(f"the fused kernel is not exact for {self} with inputs {a_fmt} and "
                             f"{b_fmt}")
        d = np.empty(c3.shape)
        _fused.fused_gemm(np.ascontiguousarray(a3, np.float64),
                          np.ascontiguousarray(b3, np.float64),
                          np.ascontiguousarray(c3, np.float64), d,
                          self._exponents(a3, a_fmt), self._exponents(b3, b_fmt), self.group,
                          self.frac_bits,
                          _fused.CUTS[self.cut], self.c_aligned,
                          -1 if self.carry_bits is None else self.carry_bits,
                          self.register.emin if self.c_emin is None else self.c_emin,
                          _fused.NO_INPUT if self.zero_exponent is None else self.zero_exponent,
                          self.overflow == "inf",
                          float_args(self.register) + (_k.MODE[self.rounding],))
        return d

    def _exponents(self, x, f: FloatFormat):
        """Each input's alignment exponent (int32): floor(log2|x|) raised to f's emin; zeros
        (and non-finite values, which take the special path) get zero_exponent."""
        with np.errstate(invalid="ignore"):
            _, e = np.frexp(np.where(np.isfinite(x), x, 0.0))
        e = np.maximum(e.astype(np.int32) - 1, f.emin)
        zero = _fused.NO_INPUT if self.zero_exponent is None else self.zero_exponent
        return np.ascontiguousarray(np.where((x == 0) | ~np.isfinite(x), zero, e), np.int32)


# --- the presets: NVIDIA's fused paths (docs/engines_notes.md sections 2-4) --------------------
_F = {"volta": 23, "turing": 24, "ampere": 24, "ada": 24, "hopper": 25, "blackwell": 25,
      "rtx_blackwell": 25}
_SPLIT = ("ampere", "ada")       # k16 f16/bf16, k8 tf32 and k32 fp8 run as two chained halves
_TYPES = {"f32": "float32", "f16": "float16", "bf16": "bfloat16", "tf32": "e8m10",
          "e4m3": "float8_e4m3fn", "e5m2": "float8_e5m2"}
_FP8 = ("e4m3", "e5m2")

_VOLTA = ["m8n8k4.f32.f16.f16.f32", "m8n8k4.f32.f16.f16.f16", "m8n8k4.f16.f16.f16.f16"]
_TURING = ["m16n8k8.f32.f16.f16.f32", "m16n8k8.f16.f16.f16.f16"] + _VOLTA
_SM80 = ["m16n8k8.f32.tf32.tf32.f32", "m16n8k4.f32.tf32.tf32.f32", "m16n8k16.f32.f16.f16.f32",
         "m16n8k16.f16.f16.f16.f16", "m16n8k16.f32.bf16.bf16.f32", "m16n8k8.f32.bf16.bf16.f32",
         "m16n8k8.f32.f16.f16.f32", "m16n8k8.f16.f16.f16.f16"]
_ADA_FP8 = [f"m16n8k{k}.{d}.{a}.{b}.{d}" for k in (32, 16) for d in ("f32", "f16")
            for a in _FP8 for b in _FP8]
_RTX_FP8 = [f"m16n8k32.f32.{a}.{b}.f32" for a in _FP8 for b in _FP8]
MMA = {"volta": _VOLTA, "turing": _TURING, "ampere": _SM80, "ada": _SM80 + _ADA_FP8,
       "hopper": _SM80, "blackwell": _SM80, "rtx_blackwell": _SM80 + _RTX_FP8}
WGMMA = ["k8.f32.tf32.tf32", "k16.f32.f16.f16", "k16.f16.f16.f16", "k16.f32.bf16.bf16"] + \
    [f"k32.{d}.{a}.{b}" for d in ("f32", "f16") for a in _FP8 for b in _FP8]
TCGEN05 = ["k8.f32.tf32.tf32", "k16.f32.f16.f16", "k16.f32.bf16.bf16", "k16.f16.f16.f16"] + \
    [f"k32.{d}.{a}.{b}" for d in ("f32", "f16") for a in _FP8 for b in _FP8]
_N_VALUES = range(8, 257, 8)


@dataclass(frozen=True)
class MatrixEngine:
    """One matrix instruction of one chip: ``D = eng(A, B, C)`` with A (m, k), B (k, n),
    C (m, n), computed by ``model``; :func:`fpsim.gemm` takes it as ``acc=`` for any shape.

    ``a_format``, ``b_format``: the input formats (operand values must lie in them; tf32 inputs
    are float32 arrays that the engine truncates to tf32, clearing the low 13 bits as the
    hardware does); ``c_format``: C's; ``d_dtype``: the numpy type of D.
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
    model: FusedDotAdd
    tf32_inputs: bool = False

    def __call__(self, A, B, C=None, scale_a=None, scale_b=None):
        """D (m, n) of one instruction: values of A (m, k), B (k, n) and C (m, n; None: +0)."""
        if scale_a is not None or scale_b is not None:
            raise ValueError(f"{self.instruction} takes no block scales")
        A, B = np.asarray(A), np.asarray(B)
        C = np.zeros((self.m, self.n)) if C is None else np.asarray(C)
        for name, x, shape in (("A", A, (self.m, self.k)), ("B", B, (self.k, self.n)),
                               ("C", C, (self.m, self.n))):
            if x.shape != shape:
                raise ValueError(f"{name} must have shape {shape} for {self.instruction} on "
                                 f"{self.arch}, got {x.shape}")
        a64, b64 = self.inputs(A, B)
        c64 = operand("C", C, self.c_format, False)
        d = self.model.run(a64[None], b64[None], c64[None], self.a_format, self.b_format)[0]
        return d.astype(self.d_dtype)

    def inputs(self, A, B):
        """A and B as float64 values of the input formats (tf32: truncated first)."""
        if self.tf32_inputs:
            A, B = (truncate_tf32(x) for x in (A, B))
        return (operand("A", A, self.a_format, False), operand("B", B, self.b_format, False))

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
    d, a, b = quals[:3]
    c = quals[3] if len(quals) > 3 else d
    fp8 = a in _FP8
    reduced = fp8 and (arch == "ada" or opcode == "wgmma")      # NV-4: 13 fractional bits
    split = arch in _SPLIT and ((a == "tf32" and k == 8) or (a in ("f16", "bf16") and k == 16)
                                or (fp8 and k == 32))
    frac = 13 if reduced else _F[arch]
    if d == "f16":
        reg, rounding = _format("float16"), "rne"
    else:
        reg, rounding = (FloatFormat(8, 13) if reduced else _format("float32")), "rtz"
    model = FusedDotAdd(group=k // 2 if split else k, frac_bits=frac, register=reg,
                        rounding=rounding, c_emin=_format(_TYPES[c]).emin)
    return MatrixEngine(arch, instruction, m, n, k, _format(_TYPES[a]), _format(_TYPES[b]),
                        _format(_TYPES[c]), np.float16 if d == "f16" else np.float32, model,
                        tf32_inputs=a == "tf32")


_SHAPE = re.compile(r"^m(\d+)n(\d+)k(\d+)$")


def engine(arch, instruction):
    """The :class:`MatrixEngine` of ``instruction`` on ``arch`` (ISA spelling: opcode, then the
    qualifiers MMA-Sim uses), e.g. ``engine("ampere", "mma.m16n8k16.f32.bf16.bf16.f32")``,
    ``engine("hopper", "wgmma.m64n8k32.f32.e4m3.e4m3")`` (any n in 8..256 step 8),
    ``engine("blackwell", "tcgen05.mma.m128n64k16.f32.f16.f16")``.

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
        raise ValueError(f"the matrix cores of {arch} are not modelled yet (fpsim models NVIDIA's "
                         f"fused paths: {', '.join(a for a in ARCHS if not a.startswith('cdna'))})")
    for opcode in ("tcgen05.mma", "wgmma", "mma"):
        if instruction.startswith(opcode + "."):
            rest = instruction[len(opcode) + 1:]
            break
    else:
        raise ValueError(f"instruction must start with mma., wgmma. or tcgen05.mma., got "
                         f"{instruction!r}; the instructions of {arch}: "
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
            ok = arch == "blackwell" and m in (64, 128) and n in _N_VALUES and q in TCGEN05
    if not ok:
        raise ValueError(f"{instruction!r} is not an instruction of {arch} that fpsim models; "
                         f"valid: {', '.join(_listing(arch))}")
    return _nvidia(arch, instruction, opcode, quals.split("."), m, n, k)


def _listing(arch):
    out = [f"mma.{q}" for q in MMA.get(arch, ())]
    if arch == "hopper":
        out += [f"wgmma.m64nN{q}" for q in WGMMA]
    if arch == "blackwell":
        out += [f"tcgen05.mma.m{64}nN{q}" for q in TCGEN05] + \
            [f"tcgen05.mma.m{128}nN{q}" for q in TCGEN05]
    return out


def engines():
    """Every (arch, instruction) modelled, as a list of pairs; wgmma and tcgen05 are listed with
    ``nN`` for their n (any multiple of 8 up to 256).

    >>> import fpsim
    >>> ("ampere", "mma.m16n8k16.f32.bf16.bf16.f32") in fpsim.engines()
    True
    """
    return [(arch, ins) for arch in ARCHS if not arch.startswith("cdna")
            for ins in _listing(arch)]
