"""Probing a matrix engine with the discriminating inputs of Fasi, Higham, Mikaitis and Pranesh,
"Numerical behavior of NVIDIA tensor cores" (PeerJ Computer Science 2021; their test suite
north-numerical-computing/tensor-cores-numerical-behavior): the feature table of an engine.

Each probe runs a 16-term dot product as CUDA's wmma 16x16x16 does (only row 0 of A, column 0 of
B and C[0,0] set; the 16 products walked by the instruction, D chaining into C) and reads
D[0,0].  ``u = 2**-24``.  ``docs/engines_notes.md`` section 7 lists the suite's vectors.
"""

from __future__ import annotations

import numpy as np

U = 2.0 ** -24
K = 16


def dot16(eng, a, b, c, f16=False):
    """D[0,0] of the 16-term walk on ``eng`` (its f16-output twin when ``f16``)."""
    A = np.zeros((eng.m, K))
    B = np.zeros((K, eng.n))
    A[0, :len(a)] = a
    B[:len(b), 0] = b
    D = np.zeros((eng.m, eng.n))
    D[0, 0] = c
    for k0 in range(0, K, eng.k):
        D = eng(A[:, k0:k0 + eng.k], B[k0:k0 + eng.k], D).astype(np.float64)
    return float(D[0, 0])


def kept_bits(eng):
    """Fractional bits an aligned term keeps below the largest (the guard-bit test of the suite,
    D1, swept): 1 - 2**-t stays below 1 (a round-toward-zero output) while the term -2**-t keeps
    its bit, and becomes 1 once the alignment cuts it; t up to 36 (f16 inputs)."""
    kept = 0
    for t in range(1, 37):
        a, b = (2.0 ** -12, 2.0 ** -(t - 12)) if t > 12 else (2.0 ** -t, 1.0)
        if dot16(eng, [1.0, -a], [1.0, b], 0.0) < 1.0:
            kept = t
        else:
            break
    return kept


def probe(eng, eng_f16=None):
    """The feature table of ``eng`` (an f32-output engine with f16 inputs, as the suite's) as
    ``{feature: answer}``; ``eng_f16``, an f16-output engine of the same chip, adds the f16-mode
    rows."""
    for e in (eng, eng_f16):
        if e is not None and (e.a_format.spec, e.b_format.spec) != ("e5m10", "e5m10"):
            raise ValueError(f"the probe's vectors are float16 inputs; {e} takes {e.a_format} x "
                             f"{e.b_format}")
    out = {}
    out["subnormal inputs"] = "kept" if dot16(eng, [U], [4.0], 0.0) == 2.0 ** -22 else "flushed"
    out["subnormal C passes"] = "yes" if dot16(eng, [], [], 2.0 ** -149) == 2.0 ** -149 else "no"
    out["products exact"] = "yes" if dot16(eng, [1 - 2.0 ** -11] * 4, [1 - 2.0 ** -11] * 4, 0.0) \
        == 4 * (1 - 2.0 ** -10 + 2.0 ** -22) else "no"
    f = kept_bits(eng)
    out["kept fractional bits (alignment)"] = str(f)
    out["extra bits beyond binary32"] = str(max(f - 23, 0))
    tiny = 2.0 ** -(f + 1)                  # three products and C just below the kept bits
    a, b = (2.0 ** -(f - 23), U) if f >= 24 else (tiny, 1.0)
    out["small terms dropped (aligned to the largest)"] = \
        "yes" if dot16(eng, [1.0, a, a, a], [1.0, b, b, b], tiny) == 1.0 else "no"
    out["normalisation between terms"] = \
        "no" if dot16(eng, [1.0] * 4, [U] * 4, 1 - U) == 1 + 2.0 ** -23 else "yes"
    carries = dot16(eng, [1.0] * 4, [1, 1.5, 1.75, 1.875], 1.875) == 8.0 and \
        dot16(eng, [1.0] * 4, [1.0] * 4, 1 + 2.0 ** -22 + 2.0 ** -23) == 5.0
    out["carry-out bits"] = ">= 3" if carries else "< 3"
    pos = dot16(eng, [1.0] * 4, [2.0, 3 * U, 0, 0], 0.0)
    neg = dot16(eng, [1.0] * 4, [-2.0, -3 * U, 0, 0], 0.0)
    out["rounding (f32 output)"] = "toward zero" if (pos, neg) == (2.0, -2.0) else \
        "to nearest" if (pos, neg) == (2.0 + 2.0 ** -22, -2.0 - 2.0 ** -22) else "other"
    decreases = False                       # a larger C giving a smaller result: the V100
    for a, b in (([1.0] * 4, [U] * 4), ([0.5] * 4, [U, U, U, 3 * U])):   # and T4/A100 vectors
        decreases |= dot16(eng, a, b, 1.0) < dot16(eng, a, b, 1 - U)
    out["monotonic"] = "no" if decreases else "not shown by these tests"
    if eng_f16 is not None:
        out["rounding (f16 output)"] = \
            "to nearest" if dot16(eng_f16, [U, U], [0.5, 0.25], 0.0) == 2.0 ** -24 else "other"
        out["subnormal outputs (f16)"] = \
            "kept" if dot16(eng_f16, [2.0 ** -14], [1.0], -(2.0 ** -15)) != 0 else "flushed"
    return out


def probe_table(eng, eng_f16=None) -> str:
    """Markdown table of :func:`probe`.

    >>> import fpsim
    >>> from fpsim.probe import probe_table
    >>> print(probe_table(fpsim.engine("volta", "mma.m8n8k4.f32.f16.f16.f32")).splitlines()[5])
    | kept fractional bits (alignment) | 23 |
    """
    rows = [f"| feature | {eng} |", "|---|---|"]
    rows += [f"| {k} | {v} |" for k, v in probe(eng, eng_f16).items()]
    return "\n".join(rows)


def device_probe(eng):
    """The same vectors on a real GPU through PyTorch, where one is present: a message saying
    why not otherwise (fpsim runs no GPU code itself)."""
    try:
        import torch
    except ImportError:
        return "no GPU probe: PyTorch is not installed (pip install torch on a CUDA machine)"
    if not torch.cuda.is_available():
        return "no GPU probe: PyTorch finds no CUDA device on this machine"
    return (f"a CUDA device is present ({torch.cuda.get_device_name(0)}); running the vectors "
            "through torch.matmul is not implemented yet")
