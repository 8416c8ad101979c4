"""The GPU twins of fpsim's kernels (Numba CUDA), for ``device="cuda"``.

Each GPU kernel runs one thread per output element and calls the same scalar functions as the
CPU kernels (Numba compiles ``@njit`` functions for the GPU when a CUDA kernel calls them):
``rounding.round_f64`` for quantize, ``gemm.scalar_add`` (the exact sum as a TwoSum pair,
rounded once in any mode) for every accumulator addition, ``rounding.random_word`` for the
random words, numbered exactly as on the CPU (element ``i`` of quantize; output element ``e``
and step ``t`` of a GEMM, ``e*(K*K + 2K) + t``).  The matrix engines' kernels run each output
element through the CPU kernels' steps (``fused.finish_sums`` for every fused dot-add case,
``chain.fma_step``, the float32 operations of ``chain.pairwise_groups``).  The CPU's fast
paths are proven equal to these scalar functions (kernels.gemm's ``lean_lanes``, ``odd_lanes``,
``sr_lanes`` ..., kernels.fused's ``round_pass``), so results are equal bit for bit on both
devices and do not depend on the thread count.  Posit rounding shares its decision
(``posit.posit_pick``) and searches the table with a loop of its own; Kulisch registers run
``kulisch.kulisch_task``'s digits per element and its ``kulisch_finish``; block formats take each
block's maximum in one thread per block, then round each element by the exact rounding the
CPU's lanes are proven equal to (``block.round_scaled``, ``scaled.exact_element``).

NVVM contracts ``a*b + c`` into fused multiply-adds by default.  Every product these kernels
form is exact in float64 (the GEMM products: ``gemm.supports_products``, a product format's
rounding being a separate call; the Kulisch digits' products by powers of two and by digit
parts, ``kulisch.digit_part``), so a contraction computes the same value; the remainders of
quotients (value-scaled blocks) are explicit ``fma`` calls (``arith.exact_op``); the pairwise
groups' float32 products are the exact float64 ones rounded to float32 by a conversion, which
no contraction crosses.

numba.cuda is imported on first use only: fpsim's import never touches it.  Without a GPU,
``NUMBA_ENABLE_CUDASIM=1`` (set before Python starts) runs the same kernels in Numba's CUDA
simulator, which is how the test suite checks them.
"""

import math

import numpy as np

THREADS = 128          # threads per block


def cuda():
    """The numba.cuda module (imported here, on first use)."""
    from numba import cuda as _cuda
    return _cuda


def available():
    """Whether a CUDA device (or the simulator) can run the kernels."""
    try:
        return bool(cuda().is_available())
    except Exception:            # no driver, no toolkit: no device
        return False


def _kernels():
    """The kernels module (imports numba.cuda)."""
    from . import device
    return device


def _blocks(n):
    return max(1, math.ceil(n / THREADS))


def quantize(x, out, rand, fargs, mode, r_bits, key):
    """out[:] = x rounded into a float format (``fargs``: quantize.float_args), on the GPU."""
    _per_element(_kernels().quantize_kernel, (x,), out, *_to_device(rand), *fargs, mode, r_bits,
                 np.uint64(key))


def quantize_fixed(x, out, rand, frac_bits, k_lo, k_hi, saturate, mode, r_bits, key):
    """out[:] = x rounded into a fixed-point format (quantize.fixed_args), on the GPU."""
    _per_element(_kernels().fixed_quantize_kernel, (x,), out, *_to_device(rand), frac_bits, k_lo,
                 k_hi, saturate, mode, r_bits, np.uint64(key))


def quantize_radix4(x, out, rand, bias, phase, top_field, mode, r_bits, key):
    """kernels.radix4.quantize_radix4 on the GPU."""
    _per_element(_kernels().radix4_quantize_kernel, (x,), out, *_to_device(rand), bias, phase,
                 top_field, mode, r_bits, np.uint64(key))


def quantize_exponent(x, out, rand, bias, top, mode, r_bits, key):
    """kernels.exponent.quantize_exponent on the GPU."""
    _per_element(_kernels().exponent_quantize_kernel, (x,), out, *_to_device(rand), bias, top,
                 mode, r_bits, np.uint64(key))


def quantize_posits(x, out, values, mids, n, es):
    """kernels.posit.quantize_posits on the GPU (the tables copied to it)."""
    _per_element(_kernels().posit_quantize_kernel, (x,), out, *_to_device(values, mids), n, es)


def gemm_posit(a3, b3, c, stage, values, mids, n, es):
    """kernels.gemm.gemm_posit (a posit register) on the GPU."""
    _per_element(_kernels().posit_kernel, _float64(a3, b3), c, *_to_device(values, mids), n, es,
                 stage)


def gemm_kulisch(a3, b3, c, flags, fp, lsb, dbits, ndigits, width, fa):
    """kernels.kulisch.gemm_kulisch on the GPU; returns flags (where a ``width``-bit register
    overflows) as the CPU kernel fills them."""
    from ..kulisch import kulisch_scales
    k = _kernels()
    if ndigits > k.MAX_DIGITS:
        raise ValueError(f"device='cuda' holds at most {k.MAX_DIGITS} Kulisch digits per output; "
                         f"this register needs {ndigits}; use device='cpu'")
    cu = cuda()
    dev = _to_device(*_float64(a3, b3), kulisch_scales(lsb, dbits, ndigits))
    dc, dflags = cu.device_array(c.shape, c.dtype), cu.to_device(flags)
    k.kulisch_kernel[_blocks(c.size), THREADS](dev[0], dev[1], dc, dflags, dev[2], fp, lsb,
                                               dbits, width, fa)
    dc.copy_to_host(c)
    dflags.copy_to_host(flags)


def block_quantize(flat, out, scales, geo, args):
    """kernels.block's quantize_runs / quantize_tiles / quantize_tensor on the GPU (``geo``:
    quantize.BlockLayout.geometry(); ``args``: the CPU kernels' arguments after ``scales``)."""
    _blocked(_kernels().block_kernel, flat, (out,), scales, geo, args)


def scaled_quantize(flat, vals, elems, scales, geo, args):
    """kernels.scaled's scaled_runs / scaled_tiles on the GPU (``args``: theirs after the
    layout, without the two fast-path flags)."""
    _blocked(_kernels().scaled_kernel, flat, (vals, elems), scales, geo, args)


def _blocked(kernel, flat, outs, scales, geo, args):
    """outs, scales = kernel(flat) after the blocks' maxima (one thread per block; the tensor
    layout's as partial maxima over runs of CHUNK, combined here)."""
    from ..block import n_tiles
    from ..rounding import CHUNK
    k, cu = _kernels(), cuda()
    kind, length, n, height, width, r, c = geo
    size = flat.size
    if kind == k.TENSOR:
        amax_geo, nblocks = (k.RUNS, size, CHUNK, 0, 0, 0, 0), -(-size // CHUNK)
    elif kind == k.RUNS:
        amax_geo, nblocks = geo, size // length * -(-length // n)
    else:
        amax_geo, nblocks = geo, n_tiles(size, height, width, r, c)
    dx, = _to_device(flat)
    amax, nan = cu.device_array(nblocks, np.float64), cu.device_array(nblocks, np.bool_)
    k.block_amax_kernel[_blocks(nblocks), THREADS](dx, amax, nan, *amax_geo)
    if kind == k.TENSOR:
        amax = cu.to_device(np.array([amax.copy_to_host().max()]))
        nan = cu.to_device(np.array([nan.copy_to_host().any()]))
    douts = [cu.device_array(o.shape, o.dtype) for o in outs]
    dscales = cu.device_array(scales.shape, scales.dtype)
    kernel[_blocks(size), THREADS](dx, *douts, dscales, amax, nan, *geo, *args)
    for d, o in zip(douts, outs):
        d.copy_to_host(o)
    dscales.copy_to_host(scales)


def _float64(*arrays):
    return tuple(np.ascontiguousarray(x, np.float64) for x in arrays)


def _to_device(*arrays):
    cu = cuda()
    return tuple(cu.to_device(np.ascontiguousarray(x)) for x in arrays)


def gemm(a3, b3, c, chunk, pairwise, fa, fp, key):
    """c (batch, m, n) = a3 @ b3 (float64 arrays) through a float accumulator (``fa``: its
    float_args + (mode, r_bits); ``fp``: accum.product_args), on the GPU."""
    _per_element(_kernels().gemm_kernel, _float64(a3, b3), c, chunk, pairwise, *fa, *fp,
                 np.uint64(key))


def gemm_fixed(a3, b3, c, frac_bits, k_lo, k_hi, mode, r_bits, key):
    """kernels.gemm.gemm_fixed (a saturating fixed-point register) on the GPU."""
    _per_element(_kernels().fixed_kernel, _float64(a3, b3), c, frac_bits, k_lo, k_hi, mode,
                 r_bits, np.uint64(key))


def _per_element(kernel, arrays, d, *args):
    """d[:] = kernel(*arrays, d, *args) on the GPU, one thread per element of d (the arrays
    copied to the device, d back)."""
    dd = cuda().device_array(d.shape, d.dtype)
    kernel[_blocks(d.size), THREADS](*_to_device(*arrays), dd, *args)
    dd.copy_to_host(d)


def fused_gemm(A, B, C, D, EA, EB, cfg, fmt, ofmt):
    """kernels.fused.fused_gemm (the same arguments, without its float32 copies) on the GPU."""
    _per_element(_kernels().fused_kernel, (A, B, C), D, *_to_device(EA, EB), cfg, fmt, ofmt)


def fma_chain(A, B, C, D):
    """kernels.chain.fma_chain on the GPU."""
    _per_element(_kernels().chain_kernel, (A, B, C), D, D.dtype == np.float64)


def pairwise_groups(A, B, C, D, group, k_step, ftz):
    """kernels.chain.pairwise_groups on the GPU."""
    _per_element(_kernels().pairwise_kernel, (A, B, C), D, group, k_step, ftz)
