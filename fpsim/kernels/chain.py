"""Matrix-engine datapaths that are not one fused dot-add, over a whole GEMM: FMA chains (f64 mma
on NVIDIA, f32/f64 MFMA on AMD) and AMD CDNA1/CDNA2 pairwise groups.

* :func:`fma_chain`: for k in order, ``r = fma(a_k, b_k, r)`` in the register's IEEE type
  (float32 or float64), rounded once to nearest-even with subnormals.  ``fma`` is
  :func:`fpsim.kernels.bits.fma` (LLVM's exactly rounded ``llvm.fma``), so no double rounding
  can occur and nothing is approximated.
* :func:`pairwise_groups`: for each group of ``group`` consecutive k (a power of two), the
  products rounded to float32, added as a tree of float32 additions (adjacent pairs, then pairs
  of pairs, as the recursive halves ``(p0+p1)+(p2+p3)``), the group's sum added to the register;
  every operation is native IEEE float32 arithmetic (nearest-even, subnormals).  ``ftz``: after
  every product and addition a result of magnitude below 2**-126 becomes a zero of its sign,
  and the register read as C at the start of every instruction (every ``k_step`` elements of K)
  becomes +0 when below 2**-126 (CDNA2); the flush of the A and B inputs is the caller's.
* :func:`dequant_add`: DeepSeek-V3's promotion of a chunk's partial sum to the float32 register
  on the CUDA cores, ``total + part * (scale_a * scale_b)``, each operation float32's own
  (exact when the register is IEEE binary32 with nearest-even and every operand a float32
  value: ``kernels.gemm.native_lanes``).

Work is split into (batch, row, column tile) tasks as in :mod:`fused`; results do not depend on
the thread count.
"""

import numpy as np
from numba import njit, prange

from .bits import fma
from .gemm import n_tasks, task_tile

TILE = 128
TINY32 = np.float32(2.0 ** -126)


@njit(cache=True)
def chain_task(A, B, C, D, bi, i, j0, w):
    """Row i, columns j0..j0+w-1 of batch bi through the FMA chain."""
    a_mat = A[bi if A.shape[0] > 1 else 0]
    b_mat = B[bi if B.shape[0] > 1 else 0]
    reg = np.empty(w, D.dtype)
    ub, ui = np.uint64(bi), np.uint64(i)        # unsigned indices: no gathers (chunk_span)
    for j in range(w):
        reg[j] = C[ub, ui, np.uint64(j0 + j)]
    for k in range(A.shape[2]):
        a = a_mat[i, k]
        for j in range(w):
            reg[j] = fma(a, b_mat[np.uint64(k), np.uint64(j0 + j)], reg[j])
    for j in range(w):
        D[ub, ui, np.uint64(j0 + j)] = reg[j]


@njit(cache=True, parallel=True)
def fma_chain(A, B, C, D):
    """D[b] = the FMA chain of A[b] @ B[b] from C[b]; all four arrays of one float type
    (A: (BA, M, K), B: (BB, K, N), C and D: (Bt, M, N))."""
    nb, m, n = D.shape
    for task in prange(n_tasks(nb, m, n, 1, TILE)):
        bi, i, _, j0, w = task_tile(task, m, n, 1, TILE)
        chain_task(A, B, C, D, bi, i, j0, w)


@njit(cache=True, inline="always")
def flush(x, ftz):
    """x, or a zero of its sign when ftz and |x| < 2**-126 (float32)."""
    if ftz and abs(x) < TINY32:
        return x * np.float32(0.0)
    return x


@njit(cache=True)
def pairwise_task(A, B, C, D, bi, i, j0, w, group, k_step, ftz):
    """Row i, columns j0..j0+w-1 of batch bi through the pairwise groups (float32 arrays)."""
    a_mat = A[bi if A.shape[0] > 1 else 0]
    b_mat = B[bi if B.shape[0] > 1 else 0]
    reg = np.empty(w, np.float32)
    ub, ui = np.uint64(bi), np.uint64(i)        # unsigned indices: no gathers (chunk_span)
    for j in range(w):
        reg[j] = C[ub, ui, np.uint64(j0 + j)]
    vals = np.empty((group, w), np.float32)
    for k0 in range(0, A.shape[2], group):
        if ftz and k0 % k_step == 0:           # C read by a new instruction: tiny becomes +0
            for j in range(w):
                if abs(reg[j]) < TINY32:
                    reg[j] = np.float32(0.0)
        for t in range(group):
            a = a_mat[i, k0 + t]
            for j in range(w):
                vals[t, j] = flush(a * b_mat[np.uint64(k0 + t), np.uint64(j0 + j)], ftz)
        s = 1
        while s < group:                       # the tree: adjacent pairs, then their pairs
            for t in range(0, group, 2 * s):
                for j in range(w):
                    vals[t, j] = flush(vals[t, j] + vals[t + s, j], ftz)
            s *= 2
        for j in range(w):
            reg[j] = flush(reg[j] + vals[0, j], ftz)
    for j in range(w):
        D[ub, ui, np.uint64(j0 + j)] = reg[j]


@njit(cache=True, parallel=True)
def pairwise_groups(A, B, C, D, group, k_step, ftz):
    """D[b] from C[b] through groups of ``group`` products of A[b] @ B[b] (float32 arrays; K a
    multiple of ``k_step``, itself a multiple of ``group``)."""
    nb, m, n = D.shape
    for task in prange(n_tasks(nb, m, n, 1, TILE)):
        bi, i, _, j0, w = task_tile(task, m, n, 1, TILE)
        pairwise_task(A, B, C, D, bi, i, j0, w, group, k_step, ftz)


@njit(cache=True)
def fma_step(a, b, r, wide):
    """fma(a, b, r) in float64 (``wide``) or float32 (a, b, r values of it): the GPU kernel's
    step of :func:`fma_chain` (the type is explicit: the CUDA simulator hands float32 results
    back as Python floats)."""
    if wide:
        return fma(np.float64(a), np.float64(b), np.float64(r))
    return np.float64(fma(np.float32(a), np.float32(b), np.float32(r)))


@njit(cache=True, parallel=True)
def dequant_add(total, part, sa, sb):
    """total[b, i, j] += part[b, i, j] * (sa[b, i] * sb[b, j]), every operation in float32
    (``total`` float32 (B, M, N); ``part`` float64 holding float32 values; ``sa`` (BA, M) and
    ``sb`` (BB, N) float32, BA and BB 1 or B)."""
    nb, m, n = total.shape
    for t in prange(nb * m):
        b, i = t // m, t % m
        a = sa[b if sa.shape[0] > 1 else 0, i]
        srow = sb[b if sb.shape[0] > 1 else 0]
        for j in range(n):
            total[b, i, j] += np.float32(part[b, i, j]) * (a * srow[j])
