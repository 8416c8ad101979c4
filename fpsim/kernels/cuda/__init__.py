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
devices and do not depend on the thread count.  NVVM contracts ``a*b + c`` into fused
multiply-adds by default; every product these kernels form is exact in float64
(``gemm.supports_products``; a product format's rounding is a separate call), so a contraction
computes the same value; the pairwise groups' float32 products are the exact float64 ones
rounded to float32 by a conversion, which no contraction crosses.

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
    cu, k = cuda(), _kernels().quantize_kernel
    dx, drand = cu.to_device(np.ascontiguousarray(x)), cu.to_device(rand)
    dout = cu.device_array_like(out)
    k[_blocks(x.size), THREADS](dx, dout, drand, *fargs, mode, r_bits, np.uint64(key))
    dout.copy_to_host(out)


def quantize_fixed(x, out, rand, frac_bits, k_lo, k_hi, saturate, mode, r_bits, key):
    """out[:] = x rounded into a fixed-point format (quantize.fixed_args), on the GPU."""
    _per_element(_kernels().fixed_quantize_kernel, (x,), out, cuda().to_device(rand), frac_bits,
                 k_lo, k_hi, saturate, mode, r_bits, np.uint64(key))


def gemm(a3, b3, c, chunk, pairwise, fa, fp, key):
    """c (batch, m, n) = a3 @ b3 (float64 arrays) through a float accumulator (``fa``: its
    float_args + (mode, r_bits); ``fp``: accum.product_args), on the GPU."""
    cu, k = cuda(), _kernels().gemm_kernel
    da = cu.to_device(np.ascontiguousarray(a3, np.float64))
    db = cu.to_device(np.ascontiguousarray(b3, np.float64))
    dc = cu.device_array(c.shape, np.float64)
    k[_blocks(c.size), THREADS](da, db, dc, chunk, pairwise, *fa, *fp, np.uint64(key))
    dc.copy_to_host(c)


def gemm_fixed(a3, b3, c, frac_bits, k_lo, k_hi, mode, r_bits, key):
    """kernels.gemm.gemm_fixed (a saturating fixed-point register) on the GPU."""
    _per_element(_kernels().fixed_kernel, (np.ascontiguousarray(a3, np.float64),
                                           np.ascontiguousarray(b3, np.float64)), c,
                 frac_bits, k_lo, k_hi, mode, r_bits, np.uint64(key))


def _per_element(kernel, arrays, d, *args):
    """d[:] = kernel(*arrays, d, *args) on the GPU, one thread per element of d (the arrays
    copied to the device, d back)."""
    cu = cuda()
    dev = [cu.to_device(np.ascontiguousarray(x)) for x in arrays]
    dd = cu.device_array(d.shape, d.dtype)
    kernel[_blocks(d.size), THREADS](*dev, dd, *args)
    dd.copy_to_host(d)


def fused_gemm(A, B, C, D, EA, EB, cfg, fmt, ofmt):
    """kernels.fused.fused_gemm (the same arguments, without its float32 copies) on the GPU."""
    _per_element(_kernels().fused_kernel, (A, B, C), D, *(cuda().to_device(np.ascontiguousarray(
        x)) for x in (EA, EB)), cfg, fmt, ofmt)


def fma_chain(A, B, C, D):
    """kernels.chain.fma_chain on the GPU."""
    _per_element(_kernels().chain_kernel, (A, B, C), D, D.dtype == np.float64)


def pairwise_groups(A, B, C, D, group, k_step, ftz):
    """kernels.chain.pairwise_groups on the GPU."""
    _per_element(_kernels().pairwise_kernel, (A, B, C), D, group, k_step, ftz)
