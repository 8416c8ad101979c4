"""Stateful scaling policies above quantize: Autoflex (Flexpoint, Koster et al. 2017) predicts
the exponent of a stream of tensors from their recent maxima; GradScale (Sun et al. 2020) scales
a gradient into radix-4 FP4 for two-phase rounding; current and delayed scaling (FP8 training)
choose a tensor's scale from its amax or its amax history; the random Hadamard transform of the
NVFP4 recipe spreads outliers across blocks."""

from __future__ import annotations

import collections
import math
import numbers

import numpy as np

from ._args import is_int
from .formats import BlockFormat, FixedFormat, Radix4Format, format as _format
from .quantize import block_exponents, quantize


class Autoflex:
    """Autoflex (Koster et al. 2017, sections 3.3-3.5, Algorithm 2): the exponent of the next
    tensor of a stream, predicted from the maxima of the previous ones.

    State: a deque of the last ``history`` (l = 16) maxima ``Gamma * kappa`` (largest mantissa
    magnitude times the scale).  Prediction: ``chi = max(f) + num_std * std(f) + offset * kappa``
    (beta = 3, gamma = 100) and the next scale ``kappa = 2**(floor(log2 chi) - (N - 2))``, which
    puts chi in the top binade but one of the N-bit mantissa - the factor-2 headroom (alpha = 2) of
    Algorithm 2.  Overflow (a mantissa at the saturation limit): the history is cleared and the
    recorded maximum doubled, so the exponent rises by at least one bit (section 3.5).  The first
    tensor (and the first after a reset with no history) takes its exponent from its own maximum,
    which is where Algorithm 1's initialisation loop converges.

    Use one object per tensor of the network and carry it from step to step::

    >>> import numpy as np, fpsim
    >>> flex = fpsim.Autoflex()
    >>> for step in range(20):                     # a tensor growing 20% per step
    ...     q = flex.quantize(np.linspace(-1, 1, 9) * 1.2 ** step)
    >>> flex.exponent, flex.overflows, flex.steps   # the next tensor gets scale 2**-9
    (-9, 0, 20)
    """

    def __init__(self, fmt="flex16+5", history=16, num_std=3.0, offset=100.0, rounding="rne",
                 seed=0):
        f = _format(fmt)
        if not (isinstance(f, BlockFormat) and isinstance(f.element, FixedFormat)
                and f.element.frac_bits == 0 and f.block is None):
            raise ValueError(f"fmt must be a per-tensor block format with integer mantissas "
                             f"(e.g. 'flex16+5'), got {f}")
        if not (is_int(history) and history >= 1):
            raise ValueError(f"history must be a positive int, got {history!r}")
        for pname, v in (("num_std", num_std), ("offset", offset)):
            if not isinstance(v, numbers.Real) or v < 0:
                raise ValueError(f"{pname} must be a non-negative number, got {v!r}")
        self.fmt, self.rounding, self.seed = f, rounding, seed
        self.num_std, self.offset = float(num_std), float(offset)
        self.maxima = collections.deque(maxlen=history)
        self.exponent = None          # scale exponent s of the next tensor (None: not known yet)
        self.overflows = 0            # saturated tensors seen
        self.steps = 0

    @property
    def mantissa_bits(self) -> int:
        return self.fmt.element.bits

    def mantissa_format(self, exponent: int) -> FixedFormat:
        """The fixed-point format of mantissas with scale ``2**exponent``."""
        n = self.mantissa_bits
        return FixedFormat(n + exponent, -exponent, signed=self.fmt.element.signed)

    def quantize(self, x):
        """x in flexN+M with the predicted exponent; updates the statistics for the next call."""
        x = np.asarray(x)
        if self.exponent is None:
            self.exponent = int(block_exponents(x, self.fmt).reshape(()))
        s = self.exponent
        q = quantize(x, self.mantissa_format(s), rounding=self.rounding,
                         seed=self.seed + self.steps)
        self.observe(q, s)
        return q

    def observe(self, q, exponent):
        """Record a tensor quantized with scale 2**exponent and predict the next exponent."""
        n = self.mantissa_bits
        finite = np.abs(q[np.isfinite(q)])
        gamma = float(finite.max()) * 2.0 ** -exponent if finite.size else 0.0   # in mantissa units
        self.steps += 1
        if gamma >= 2 ** (n - 1) - 1:                   # saturated: overflow
            self.overflows += 1
            self.maxima.clear()
            gamma *= 2
        self.maxima.append(gamma * 2.0 ** exponent)
        f = np.array(self.maxima)
        chi = f.max() + self.num_std * f.std() + self.offset * 2.0 ** exponent
        lo, hi = self.fmt.scale_min, self.fmt.scale_max
        self.exponent = int(min(max(math.frexp(chi)[1] - 1 - (n - 2), lo), hi))


# --- GradScale and two-phase rounding (Sun et al. 2020) -------------------------------------------
class GradScale:
    """Per-tensor gradient scaling into radix-4 FP4 with two-phase rounding (Sun et al. 2020,
    "Ultra-Low Precision 4-bit Training of Deep Neural Networks": GradScale and TPR).

    Each call takes one gradient tensor ``g`` and returns it quantized twice, onto the even-power
    grid (``fmt``, phase 0) and onto the odd-power grid (phase 1), both under one power-of-four
    scale ``2**exponent`` chosen from ``max|g|`` so that ``max/4 <= max|g| < max`` for the scaled
    phase-0 grid: nothing saturates and the largest magnitudes use its top values (a power of four
    keeps the two phases apart).  One copy feeds the
    weight-gradient GEMM and the other the data-gradient GEMM.  The paper's text was not available
    to us: this scale rule (per tensor, from the current maximum) is fpsim's reading of "per-layer
    gradient scaling"; check it against the paper before relying on the details.

    >>> import numpy as np, fpsim
    >>> gs = fpsim.GradScale()
    >>> even, odd = gs(np.array([3e-3, -1e-3]))
    >>> gs.exponent, np.log2(np.abs(even)), np.log2(np.abs(odd))   # grids 2**-8 (max), 2**-10 ...
    (-14, array([ -8., -10.]), array([ -9., -11.]))
    """

    def __init__(self, fmt="fp4_130", rounding="rne", seed=0):
        f = _format(fmt)
        if not isinstance(f, Radix4Format) or f.phase != 0:
            raise ValueError(f"fmt must be a phase-0 radix-4 format (e.g. 'fp4_130'), got {f}")
        self.fmt, self.rounding, self.seed = f, rounding, seed
        self.exponent = None          # the scale exponent of the last tensor
        self.steps = 0

    def formats(self, exponent: int):
        """The two grids scaled by 2**exponent (an even exponent: a shift of the bias)."""
        f = self.fmt
        return (Radix4Format(f.exp_bits, f.bias - exponent // 2, 0),
                Radix4Format(f.exp_bits, f.bias - exponent // 2, 1))

    def __call__(self, g):
        g = np.asarray(g)
        finite = np.abs(g[np.isfinite(g)]) if g.size else g
        amax = float(finite.max()) if finite.size else 0.0
        top = math.frexp(self.fmt.max)[1] - 1
        s = 0 if amax == 0.0 else math.frexp(amax)[1] - top   # amax < 2**(top + s) = max
        s += s % 2                                    # up to a power of four: max/4 <= amax
        self.exponent = s
        even, odd = self.formats(s)
        seed = self.seed + 2 * self.steps
        self.steps += 1
        return (quantize(g, even, rounding=self.rounding, seed=seed),
                quantize(g, odd, rounding=self.rounding, seed=seed + 1))


def tensor_scale(fmax, amax, margin=0, previous=1.0):
    """Current scaling of one tensor (FP8 training, Micikevicius et al. 2022): ``fmax / amax /
    2**margin`` as a float32 between float32's smallest normal and largest values (a tiny amax
    would overflow it, a huge one with a margin underflow it, and its float32 inverse must
    exist), or ``previous`` when amax is zero or not finite.

    >>> from fpsim.scaling import tensor_scale
    >>> tensor_scale(448.0, 3.5), tensor_scale(448.0, 0.0, previous=2.0)
    (128.0, 2.0)
    """
    if not 0.0 < amax < math.inf:
        return previous
    s = min(max(fmax / amax / 2.0 ** margin, 2.0 ** -126), float(np.finfo(np.float32).max))
    return float(np.float32(s))


class DelayedScale:
    """Delayed scaling of a stream of tensors, as Transformer Engine's DelayedScaling recipe:
    ``scale`` is the one to use for the next tensor; :meth:`observe` adds that tensor's amax to
    the history (the last ``history`` amaxes) and sets the next scale from the history's
    largest ("max") or last ("most_recent") amax (:func:`tensor_scale`; kept when that amax is
    zero or not finite, 1 at first).

    >>> from fpsim.scaling import DelayedScale
    >>> d = DelayedScale(448.0, history=2)
    >>> d.scale, d.observe(2.0), d.observe(8.0), d.observe(1.0), d.amaxes
    (1.0, 224.0, 56.0, 56.0, [8.0, 1.0])
    """

    def __init__(self, fmax, history=16, algo="max", margin=0):
        if algo not in ("max", "most_recent"):
            raise ValueError(f"algo must be 'max' or 'most_recent', got {algo!r}")
        self.fmax, self.history, self.algo, self.margin = fmax, history, algo, margin
        self.amaxes, self.scale = [], 1.0

    def observe(self, amax):
        """Record a tensor's amax; returns the scale for the next tensor."""
        self.amaxes = (self.amaxes + [float(amax)])[-self.history:]
        a = max(self.amaxes) if self.algo == "max" else self.amaxes[-1]
        self.scale = tensor_scale(self.fmax, a, self.margin, self.scale)
        return self.scale


def hadamard(n=16):
    """The n x n Sylvester Hadamard matrix (entries +-1, H H^T = n I; n a power of two)."""
    if not is_int(n) or n < 1 or n & (n - 1):
        raise ValueError(f"n must be a power of two, got {n!r}")
    h = np.ones((1, 1))
    while h.shape[0] < n:
        h = np.block([[h, h], [h, -h]])
    return h


def random_hadamard(x, seed, axis=0, n=16):
    """The random Hadamard transform of the NVFP4 recipe (NVIDIA 2025): along ``axis``, every
    block of ``n`` entries multiplied by ``T = H D / sqrt(n)``, with H the Sylvester Hadamard
    matrix and D a diagonal of random signs drawn from ``seed`` (one draw per call, shared by
    every block).  T is orthogonal, so applying it to both inputs of a GEMM along its reduction
    axis leaves the exact product unchanged (``(T a)^T (T b) = a^T b``) while it spreads
    outliers across each block before they are quantized.  The axis is zero-padded to a
    multiple of n (zeros add nothing to the product) and the result keeps the padded length.
    Computed in float64, each entry rounded once at most (exact for float32 inputs whose block
    entries lie within a factor 2**25 of each other: 16 terms of +-x/4).

    >>> import numpy as np
    >>> from fpsim.scaling import random_hadamard
    >>> a, b = np.arange(16.0), np.ones(16)
    >>> float(random_hadamard(a, 3) @ random_hadamard(b, 3)), float(a @ b)
    (120.0, 120.0)
    """
    x = np.moveaxis(np.asarray(x, np.float64), axis, 0)
    pad = (-x.shape[0]) % n
    if pad:
        x = np.concatenate([x, np.zeros((pad,) + x.shape[1:])])
    signs = np.where(np.random.default_rng([seed, 5]).random(n) < 0.5, -1.0, 1.0)
    t = hadamard(n) * signs / math.sqrt(n)
    blocks = x.reshape((x.shape[0] // n, n) + x.shape[1:])
    y = np.einsum("ij,bj...->bi...", t, blocks).reshape(x.shape)
    return np.moveaxis(y, 0, axis)
