"""The CUDA kernels of kernels/cuda (this module imports numba.cuda; see the package docstring).
Kernels refer to the module global ``cuda`` (Numba's simulator swaps it for its own)."""

import numpy as np
from numba import cuda

from ..gemm import scalar_add
from ..rounding import SR, random_word, round_f64


@cuda.jit
def quantize_kernel(x, out, rand, man_bits, emin, maxv, min_normal, spec, saturate,
                    subnormals, mode, r_bits, key):
    i = cuda.grid(1)
    if i < x.size:
        u = np.uint64(0)
        if rand.size > 0:
            u = rand[i]
        elif mode >= SR:
            u = np.uint64(random_word(key, i))   # (the simulator returns a Python int)
        out[i] = round_f64(np.float64(x[i]), u, man_bits, emin, maxv, min_normal, spec,
                           saturate, subnormals, mode, r_bits)


@cuda.jit
def gemm_kernel(A, B, C, chunk, pairwise, man_bits, emin, maxv, min_normal, spec, saturate,
                subnormals, mode, r_bits, has_p, pman, pemin, pmax, pminn, pspec, psat, psub,
                pmode, key):
    t = cuda.grid(1)
    nb, m, n = C.shape
    if t >= nb * m * n:
        return
    bi, i, j = t // (m * n), (t // n) % m, t % n
    ai = bi if A.shape[0] > 1 else 0
    bj = bi if B.shape[0] > 1 else 0
    kk = A.shape[2]
    step = np.uint64(kk * kk + 2 * kk)
    ebase = np.uint64(t) * step
    stoch = mode >= SR
    run = chunk if chunk > 0 else max(kk, 1)
    lev = cuda.local.array(64, np.float64)
    total = 0.0
    for k0 in range(0, kk, run):
        k1 = min(kk, k0 + run)
        reg = 0.0
        count = 0
        for k in range(k0, k1):
            p = A[ai, i, k] * B[bj, k, j]
            if has_p:
                p = round_f64(p, np.uint64(0), pman, pemin, pmax, pminn, pspec, psat, psub,
                              pmode, 0)
            if not pairwise:
                u = np.uint64(random_word(key, ebase + np.uint64(k))) if stoch else np.uint64(0)
                reg = scalar_add(reg, p, u, (man_bits, emin, maxv, min_normal, spec,
                                             saturate, subnormals, mode, r_bits))
                continue
            level = 0
            while (count >> level) & 1:          # carry: merge equal-sized blocks
                lo = k - (2 << level) + 1
                w = np.uint64(2 * kk + lo * kk + k)
                u = np.uint64(random_word(key, ebase + w)) if stoch else np.uint64(0)
                p = scalar_add(p, lev[level], u, (man_bits, emin, maxv, min_normal, spec,
                                                  saturate, subnormals, mode, r_bits))
                level += 1
            lev[level] = p
            count += 1
        if pairwise:
            first = True
            level = 0
            while (count >> level) > 0:           # the leftover blocks, smallest first
                if (count >> level) & 1:
                    if first:
                        reg = lev[level]
                        first = False
                    else:
                        lo = k0 + ((count >> (level + 1)) << (level + 1))
                        w = np.uint64(2 * kk + lo * kk + (k1 - 1))
                        u = np.uint64(random_word(key, ebase + w)) if stoch else np.uint64(0)
                        reg = scalar_add(reg, lev[level], u, (man_bits, emin, maxv,
                                                              min_normal, spec, saturate,
                                                              subnormals, mode, r_bits))
                level += 1
            if count == 1:                          # a lone product is rounded
                u = np.uint64(random_word(key, ebase + np.uint64(k0))) if stoch else np.uint64(0)
                reg = round_f64(reg, u, man_bits, emin, maxv, min_normal, spec, saturate,
                                subnormals, mode, r_bits)
        if chunk > 0:
            u = np.uint64(random_word(key, ebase + np.uint64(kk + k0 // run))) if stoch \
                else np.uint64(0)
            total = scalar_add(total, reg, u, (man_bits, emin, maxv, min_normal, spec,
                                               saturate, subnormals, mode, r_bits))
        else:
            total = reg
    C[bi, i, j] = total
