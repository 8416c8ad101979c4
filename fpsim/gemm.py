"""gemm on any accumulator: the multiply-accumulate datapath modelled bit-exactly; operands read
in their formats (the kernel plan of each accumulator is in :mod:`fpsim.accum`)."""

from __future__ import annotations

import numpy as np

from ._args import (check_arith_format, check_axis, check_device, check_format, check_seed,
                    holder, natural_dtype)
from .accum import (Accumulator, KulischAccumulator, check_products, kulisch_overflows,
                    native_lanes, report_collected_overflows, run)
from .arith import add, mul
from .engines import FusedDotAdd, MatrixEngine
from .kernels import chain as _chain
from .kernels import gemm as _kgemm
from .kernels import rounding as _k
from .formats import FloatFormat, format as _format
from .quantize import (dtype_format, operand, operand_values, own_values, positive_nans,
                       quantize)

PRODUCT_ROUNDINGS = ("rne", "rna", "rtz", "rup", "rdn", "rto")
ONE = FloatFormat(1, 0, bias=1, specials="none")   # holds 0 and +-1: the other operand of sum()


def check_acc(acc):
    """An accumulator spec: given, or ``Accumulator(acc)`` for a format (name, spec string, format
    object or float dtype), or the float32 register for None."""
    if acc is None:
        return Accumulator(_format("float32"))
    if isinstance(acc, (Accumulator, KulischAccumulator, MatrixEngine)):
        return acc
    try:
        return Accumulator(acc)
    except ValueError as e:
        raise ValueError(f"acc must be an fpsim.Accumulator, an fpsim.KulischAccumulator, a "
                         f"matrix engine (fpsim.engine) or the format of a float register (e.g. "
                         f"'fp16_169'); {acc!r}: {e}") from None


def stochastic(acc) -> bool:
    """Whether accumulator ``acc`` (or its inner one) rounds stochastically, so that a call
    without seed= takes the next key of the process stream."""
    if acc is None or not isinstance(acc, Accumulator):
        return False
    return acc.rounding == "sr" or stochastic(acc.inner)


def check_product_rounding(rounding):
    if not isinstance(rounding, str) or rounding not in PRODUCT_ROUNDINGS:
        raise ValueError(f"product_rounding must be one of {PRODUCT_ROUNDINGS}, got {rounding!r}")
    return rounding


def check_out(out, shape, dtype):
    """numpy's ``out=``: the buffer ``out`` where it has the result's shape and dtype (a new
    array for None), else ValueError."""
    if out is None:
        return np.empty(shape, dtype)
    if not isinstance(out, np.ndarray) or out.shape != tuple(shape) or out.dtype != dtype:
        raise ValueError(f"out must be an ndarray of shape {tuple(shape)} and dtype "
                         f"{np.dtype(dtype)}, got "
                         + (f"{out.shape} {out.dtype}" if isinstance(out, np.ndarray)
                            else repr(type(out))))
    return out


def into(out, result):
    """numpy's ``out=``: write ``result`` into the buffer ``out`` (same shape and dtype) and
    return it; None returns ``result``."""
    if out is None:
        return result
    check_out(out, result.shape, result.dtype)[...] = result
    return out


def gemm_shapes(A, B):
    if A.ndim not in (2, 3) or B.ndim not in (2, 3):
        raise ValueError(f"A and B must be 2-D (M,K),(K,N) or batched 3-D, got shapes "
                         f"{A.shape} and {B.shape}")
    if A.shape[-1] != B.shape[-2]:
        raise ValueError(f"inner dimensions differ: A is {A.shape}, B is {B.shape} "
                         f"(A's last axis must equal B's second-to-last)")
    if A.ndim == 3 and B.ndim == 3 and A.shape[0] != B.shape[0]:
        raise ValueError(f"batch sizes differ: A is {A.shape}, B is {B.shape}")
    batch = A.shape[0] if A.ndim == 3 else (B.shape[0] if B.ndim == 3 else 1)
    out_shape = (A.shape[-2], B.shape[-1])
    if A.ndim == 3 or B.ndim == 3:
        out_shape = (batch,) + out_shape
    return batch, out_shape


def gemm(A, B, acc=None, product=None, out_format=None, seed=None, a_format=None,
         b_format=None, quantize_operands=False, product_rounding="rne", out=None, scale_a=None,
         scale_b=None, device="cpu"):
    """Matrix product with the multiply-accumulate datapath modelled bit-exactly.

    ``C[i,j]``: for k = 0..K-1 in order, the product ``A[i,k]*B[k,j]`` (exact, or rounded into
    ``product``) is added to the accumulator register, which rounds into its format after every
    addition (:class:`Accumulator`: ``chunk`` and ``order`` as documented there); or all products
    are summed exactly and rounded once (:class:`KulischAccumulator`).  Registers start at +0.

    Parameters
    ----------
    A, B : array_like
        (M, K) and (K, N), or batched (Bt, M, K) / (Bt, K, N); a 2-D operand is shared by every
        batch.  float16/float32/ml_dtypes arrays are read in their own format; float64 (and
        integer) arrays need ``a_format``/``b_format``.
    acc : Accumulator, KulischAccumulator, MatrixEngine, format or None
        The accumulator; a format (``"fp16_169"``, a FloatFormat, a float dtype) means
        ``Accumulator(acc)``; None means ``Accumulator("float32")``.  A matrix engine
        (:func:`fpsim.engine`) walks K in steps of its k (zero-padded), each step's D the next
        step's C, from +0; A and B must hold values of its input formats.
    product : FloatFormat or str, optional
        Round each product into this format first (a narrow product register); None: exact.
    out_format : FloatFormat or str, optional
        Round the result once more (nearest-even) into this format, as when the register is
        written to memory; None returns the register values.
    seed : int or None
        As in :func:`quantize` (None: the next key of the process stream).  Stochastic
        accumulators: the random word of output element e and step t is the word
        ``e*(K*K + 2K) + t`` of ``seed``'s stream (kernels/gemm.py lists the steps).
    a_format, b_format : FloatFormat or str, optional
        The operand formats; values outside them raise ValueError unless ``quantize_operands``.
    product_rounding : {"rne", "rna", "rtz", "rup", "rdn", "rto"}
        How products are rounded into ``product``.
    out : ndarray, optional
        A buffer of the result's shape and dtype to write into (numpy's ``out=``).
    scale_a, scale_b : array_like, optional
        The block scales of a block-scaled engine (``acc``, or ``acc``'s inner): one per
        ``block`` elements of K, (M, ceil(K/block)) and (ceil(K/block), N), batched as A and B;
        A and B then hold the elements.  A zero-padded tail block takes the scale format's
        smallest value (it then never sets the alignment).
    device : {"cpu", "cuda"}
        "cuda" runs the GEMM on a CUDA GPU (float accumulators, any rounding, chunk and order,
        product formats; fixed-point, posit and Kulisch registers; matrix engines, block-scaled
        ones included; promoted accumulators, whose chunk sums run there; kernels/cuda), equal
        bit for bit to "cpu", stochastic words included.

    Returns
    -------
    ndarray (M, N) or (Bt, M, N): float32 when float32 holds every value of the result's format,
    else float64.

    Notes
    -----
    Memory: a large GEMM on operands of their own dtypes (ml_dtypes, float16, float32) runs by
    panels (:func:`by_panels`, :func:`gemm_panels`): beyond C it holds the values of a panel of
    A's rows and B's columns at a time.  Every other GEMM reads its operands as float64 arrays
    first.

    Examples
    --------
    >>> import numpy as np, fpsim
    >>> A = np.full((1, 4096), 2.0**-8, dtype=np.float32); B = np.ones((4096, 1), np.float32)
    >>> fpsim.gemm(A, B, acc="fp16_169")                               # swamping: stuck at 4
    array([[4.]], dtype=float32)
    >>> fpsim.gemm(A, B, acc=fpsim.Accumulator("fp16_169", chunk=64))  # chunks recover 16
    array([[16.]], dtype=float32)
    """
    A_arr, B_arr = np.asarray(A), np.asarray(B)
    gemm_shapes(A_arr, B_arr)
    eng = _engine_of(acc)
    if eng is not None:          # operands are values of the engine's input formats
        fmts = declared_engine_formats(eng, A_arr, B_arr, a_format, b_format)
        if fmts and by_panels(A_arr, B_arr, *fmts, acc, device):
            scales = eng.scales(scale_a, scale_b, A_arr.shape, B_arr.shape)
            return gemm_panels(A_arr, B_arr, *fmts, acc, product, out_format, seed,
                               product_rounding, out, scales)
        fa_, fb_, a64, b64 = engine_operands(eng, A_arr, B_arr, a_format, b_format)
        scales = eng.scales(scale_a, scale_b, A_arr.shape, B_arr.shape)
        return into(out, gemm_values(a64, b64, fa_, fb_, acc, product, out_format, seed,
                                     product_rounding, scales, device=device))
    if scale_a is not None or scale_b is not None:
        raise ValueError("scale_a and scale_b are the block scales of a block-scaled matrix "
                         "engine (acc=fpsim.engine(..., '...block32...')); this acc has none")
    fa_ = dtype_format("A", A_arr, a_format)
    fb_ = dtype_format("B", B_arr, b_format)
    check_products(holder(fa_), holder(fb_))
    if by_panels(A_arr, B_arr, fa_, fb_, acc, device):
        return gemm_panels(A_arr, B_arr, fa_, fb_, acc, product, out_format, seed,
                           product_rounding, out)
    a64 = operand("A", A_arr, fa_, quantize_operands)
    b64 = operand("B", B_arr, fb_, quantize_operands)
    return into(out, gemm_values(a64, b64, fa_, fb_, acc, product, out_format, seed,
                                 product_rounding, device=device))


# --- panels: large GEMMs without float64 copies of the whole operands -----------------------------
PANEL_ROWS = 64      # rows of A per panel and thread
PANEL_COLS = 256     # columns of B per panel (one column tile of kernels.gemm)
PANEL_MIN = 1 << 20  # operand elements (A's and B's together) from which gemm goes by panels


def by_panels(A, B, fa_, fb_, acc, device) -> bool:
    """Whether :func:`gemm` runs by panels (:func:`gemm_panels`): on the CPU, for a register
    (float, fixed-point, posit), a Kulisch accumulator or a matrix engine, operands of their
    own dtypes (read without a check: quantize.own_values), PANEL_MIN elements or more, none
    empty (every argument then meets gemm_values' checks), and more than one panel.  Left
    whole (fpsim's choice; it reads float64 copies of the operands): a promoted accumulator
    (``inner=``) whose inner register is a W-bit Kulisch one (its overflow report counts one
    chunk's outputs)."""
    if not (own_values(A, fa_) and own_values(B, fb_)):    # first: operand() checks them first
        return False
    if A.dtype == np.float64 or B.dtype == np.float64:   # float32 buffers: own dtypes up to 32
        return False                                     # bits (check_products bars them now)
    acc = check_acc(acc)
    if isinstance(acc, (KulischAccumulator, MatrixEngine)):
        fits = True
    else:
        inner = acc.inner
        fits = type(acc) is Accumulator and not (
            isinstance(inner, KulischAccumulator) and inner.width is not None)
    return (fits and check_device(device) == "cpu"
            and A.size + B.size >= PANEL_MIN and A.size > 0 and B.size > 0
            and (A.shape[-2] > panel_rows() or B.shape[-1] > PANEL_COLS))


def panel_rows():
    """Rows of A per panel: PANEL_ROWS per thread, so that each panel holds 16 blocks of
    kernels.gemm.ROWS rows per thread and column tile."""
    return PANEL_ROWS * _kgemm.threads()


def gemm_panels(A, B, fa_, fb_, acc, product, out_format, seed, product_rounding, out,
                scales=None):
    """gemm of operands of their own dtypes by panels: for each panel of PANEL_COLS columns of
    B, then each panel of PANEL_ROWS * threads rows of A (every batch at once), both decoded into
    buffers, :func:`gemm_values` writes that block of C.  The buffers are float32 for a float
    register without an inner accumulator (every own dtype's values are float32 values; its
    lanes read float32), float64 for the others (whose kernels are compiled for float64 arrays
    only).  Each element of C depends only on its row of A and its column of B, and every
    kernel path gemm_values chooses (from the panel's data) is exact, so C is the same as from
    the whole operands; stochastic rounding draws one key for the call, and each block's words
    are keyed by its elements' indices in the whole C (kernels.gemm.element), so they are the
    whole GEMM's words.  Peak memory is C plus K * (rows + columns) * batch values of a panel
    (and the kernels' copies of them) instead of float64 copies of A and B.  A is decoded once
    per column panel.
    ``scales``: a block-scaled engine's (MatrixEngine.scales), cut into the same panels.

    A W-bit Kulisch register's overflows are counted over the panels (accum.kulisch_overflows)
    and reported once, for the whole C.  C goes into ``out`` at the end where ``out`` shares
    memory with A or B (later panels read them again) or where an overflow may raise (``out``
    is then left as it was), else the panels write into ``out`` directly."""
    batch, out_shape = gemm_shapes(A, B)
    acc = check_acc(acc)
    key = check_seed(seed, stochastic(acc))
    if product is not None:                      # gemm_values' checks, in its order, before out
        check_arith_format(product, "product")
    check_product_rounding(product_rounding)
    final = acc.out_format if out_format is None else check_format(out_format)
    target = check_out(out, out_shape, natural_dtype(final))
    watch = isinstance(acc, KulischAccumulator) and acc.width is not None
    shares = out is not None and (np.may_share_memory(out, A) or np.may_share_memory(out, B))
    c = np.empty(out_shape, target.dtype) if shares or (watch and out is not None) else target
    c3 = c if c.ndim == 3 else c[None]          # a view, also of a strided out=
    m, n, rows = A.shape[-2], B.shape[-1], panel_rows()
    dt = np.float32 if type(acc) is Accumulator and isinstance(acc.fmt, FloatFormat) \
        and acc.inner is None else np.float64
    with kulisch_overflows() as overflows:
        for j0 in range(0, n, PANEL_COLS):
            b = operand_values(B[..., j0:j0 + PANEL_COLS], dt)
            for i0 in range(0, m, rows):
                a = operand_values(A[..., i0:i0 + rows, :], dt)
                sc = None if scales is None else \
                    (scales[0][..., i0:i0 + rows, :],
                     scales[1][..., j0:j0 + PANEL_COLS]) + tuple(scales[2:])
                block = gemm_values(a, b, fa_, fb_, acc, product, out_format, None,
                                    product_rounding, sc, key=key,
                                    place=(i0 * n + j0, n, m * n))
                c3[:, i0:i0 + rows, j0:j0 + PANEL_COLS] = \
                    block.reshape((batch,) + block.shape[-2:])
    report_collected_overflows(acc, overflows, stacklevel=3)
    if c is not target:
        target[...] = c
    return target


def gemm_values(a64, b64, fa_, fb_, acc=None, product=None, out_format=None, seed=None,
                product_rounding="rne", scales=None, dequant=None, device="cpu", key=None,
                place=None):
    """gemm of float64 arrays (float32 ones from :func:`gemm_panels`) already known to hold
    values of the formats fa_ and fb_ (``scales``: a block-scaled engine's, from
    :meth:`MatrixEngine.scales`).

    ``dequant``: (scale_a (..., M, nb), scale_b (..., nb, N)), one scale per chunk of K of a
    promoted accumulator (``Accumulator(fmt, chunk=c, inner=...)``, nb = ceil(K / c)): each
    chunk's sum times ``float32(scale_a * scale_b)`` (rounded to float32) is added into the
    outer register - DeepSeek-V3's dequantization of tile-scaled FP8 on the CUDA cores.
    ``device``: as in :func:`gemm`.  ``key`` (instead of ``seed``) and ``place``: a block of a
    whole GEMM's C (:func:`gemm_panels`, accum.run)."""
    fa_, fb_ = holder(fa_), holder(fb_)   # the kernels see fixed-point operands as floats
    acc = check_acc(acc)
    device = check_device(device)
    if key is None:
        key = check_seed(seed, stochastic(acc))
    batch, out_shape = gemm_shapes(a64, b64)
    fp_ = None if product is None else check_arith_format(product, "product")
    p_mode = check_product_rounding(product_rounding)
    fo_ = None if out_format is None else check_format(out_format)
    eng = _engine_of(acc)
    if eng is None:             # an engine's model checks its own exactness
        check_products(fa_, fb_)
    a3 = a64.reshape((a64.shape[0] if a64.ndim == 3 else 1,) + a64.shape[-2:])
    b3 = b64.reshape((b64.shape[0] if b64.ndim == 3 else 1,) + b64.shape[-2:])
    if eng is not None:
        if fp_ is not None:
            raise ValueError("a matrix engine forms exact products: product= is for "
                             "accumulators")
        fmts = engine_formats(eng, fa_, fb_)
    if eng is not None and eng.block and scales is None:
        raise ValueError(f"{eng} is block-scaled: pass scale_a and scale_b to fpsim.gemm")
    if scales is not None:
        scales = (scales[0].reshape((-1,) + scales[0].shape[-2:]),
                  scales[1].reshape((-1,) + scales[1].shape[-2:])) + scales[2:]
    if dequant is not None and not (isinstance(acc, Accumulator) and acc.inner is not None):
        raise ValueError("per-chunk dequantization scales need a promoted accumulator "
                         "(fpsim.Accumulator(fmt, chunk=..., inner=...))")
    if isinstance(acc, MatrixEngine):
        c = positive_nans(engine_run(acc, a3, b3, batch, scales, fmts, device=device))
    elif isinstance(acc, Accumulator) and acc.inner is not None:
        c = positive_nans(promoted_run(acc, a3, b3, batch, fa_, fb_, fp_, key, p_mode, scales,
                                       None if eng is None else fmts,
                                       check_dequant(dequant, acc, a3, b3), device, place))
    else:
        c = positive_nans(run(a3, b3, batch, acc, fa_, fb_, fp_, key, p_mode, device, place))
    final = acc.out_format if fo_ is None else fo_
    if fo_ is not None:   # widened first (exact): a float32 register array would round into
        c = quantize(np.asarray(c, np.float64), fo_)    # float32 twice for a wider out format
    return c.reshape(out_shape).astype(natural_dtype(final), copy=False)


def _engine_of(acc):
    """The matrix engine that computes the products: acc itself, or its inner accumulator's."""
    if isinstance(acc, MatrixEngine):
        return acc
    inner = getattr(acc, "inner", None)
    return inner if isinstance(inner, MatrixEngine) else None


def engine_operands(eng, A, B, a_format=None, b_format=None):
    """(format of A, format of B, A and B as float64 values) for a GEMM on ``eng``: read in the
    engine's input formats, or swapped (:func:`engine_formats`) when the declared formats
    (a_format/b_format, or the arrays' ml_dtypes types) say so or when only the swapped
    reading holds the values."""
    fmts = declared_engine_formats(eng, A, B, a_format, b_format)
    if fmts is not None and fmts != (eng.a_format, eng.b_format):      # read swapped
        fa_, fb_ = fmts
        return fa_, fb_, operand("A", A, fa_, False), operand("B", B, fb_, False)
    try:
        return (eng.a_format, eng.b_format) + eng.inputs(A, B)
    except ValueError:
        if eng.block or eng.a_format == eng.b_format:
            raise
        try:
            return (eng.b_format, eng.a_format, operand("A", A, eng.b_format, False),
                    operand("B", B, eng.a_format, False))
        except ValueError:
            pass
        raise


def declared_engine_formats(eng, A, B, a_format, b_format):
    """The formats engine ``eng`` reads A and B in (:func:`engine_formats`) from their declared
    formats or dtypes, where both have one and the engine takes them; else None (e.g. float32
    arrays for tf32 inputs, which :meth:`MatrixEngine.inputs` truncates; :func:`engine_operands`
    then reads them, or says why it cannot)."""
    try:
        return engine_formats(eng, dtype_format("A", A, a_format),
                              dtype_format("B", B, b_format))
    except ValueError:
        return None


def engine_formats(eng, fa_, fb_):
    """The input formats ``eng`` reads A and B in: its own (a_format, b_format), or, when A and
    B hold values of its B and A formats, the two swapped: an instruction whose formats differ
    (e5m2 x e4m3) takes its operands in the other order as a GEMM library does, computing
    C^T = B^T A^T (every model is symmetric in its two inputs).  ValueError if neither fits."""
    if eng.a_format.contains(fa_) and eng.b_format.contains(fb_):
        return eng.a_format, eng.b_format
    if not eng.block and eng.b_format.contains(fa_) and eng.a_format.contains(fb_):
        return eng.b_format, eng.a_format
    raise ValueError(f"A and B hold values of {fa_} and {fb_}, which {eng} does not take: its "
                     f"inputs are {eng.a_format} and {eng.b_format}")


def engine_run(eng, a3, b3, batch, scales=None, fmts=None, promote=None, device="cpu"):
    """C (batch, m, n) of a GEMM on engine ``eng``: K zero-padded to a multiple of the
    instruction's k (as hardware tiles are; padded blocks take the scale format's smallest
    value, so that they never set the alignment) and walked from +0,
    each step's D the next C; ``fmts``: the formats A and B are read in
    (:func:`engine_formats`; default the engine's own); ``promote``: as in
    :meth:`FusedDotAdd.run`; ``device``: "cpu" or "cuda" (the model's GPU kernel)."""
    kk = a3.shape[2]
    pad = (-kk) % eng.k
    if pad:
        a3 = np.concatenate([a3, np.zeros(a3.shape[:2] + (pad,))], axis=2)
        b3 = np.concatenate([b3, np.zeros((b3.shape[0], pad, b3.shape[2]))], axis=1)
    if scales is not None:
        sa, sb, s_fmt, block = scales
        more = a3.shape[2] // block - sa.shape[2]
        tiny = s_fmt.min_subnormal                  # the smallest scale: no alignment power
        sa = np.concatenate([sa, np.full(sa.shape[:2] + (more,), tiny)], axis=2)
        sb = np.concatenate([sb, np.full((sb.shape[0], more, sb.shape[2]), tiny)], axis=1)
        scales = (sa, sb, s_fmt, block)
    c3 = np.zeros((batch, a3.shape[1], b3.shape[2]))
    fa_, fb_ = fmts or (eng.a_format, eng.b_format)
    if promote is not None:
        return eng.model.run(a3, b3, c3, fa_, fb_, scales, promote, device=device)
    return eng.model.run(a3, b3, c3, fa_, fb_, scales, device=device)


def check_dequant(dequant, acc, a3, b3):
    """The per-chunk scales as 3-D float64 arrays (BA, M, nb) and (BB, nb, N), or None."""
    if dequant is None:
        return None
    nb = -(-a3.shape[2] // acc.chunk)
    sa, sb = (np.asarray(d, np.float64) for d in dequant)
    sa = sa.reshape((-1,) + sa.shape[-2:]) if sa.ndim >= 2 else sa
    sb = sb.reshape((-1,) + sb.shape[-2:]) if sb.ndim >= 2 else sb
    if sa.ndim != 3 or sb.ndim != 3 or sa.shape[1:] != (a3.shape[1], nb) or \
            sb.shape[1:] != (nb, b3.shape[2]) or sa.shape[0] not in (1, a3.shape[0]) or \
            sb.shape[0] not in (1, b3.shape[0]):
        raise ValueError(f"dequantization scales must be (M, {nb}) and ({nb}, N): one per chunk "
                         f"of {acc.chunk} along K; got {np.shape(dequant[0])} and "
                         f"{np.shape(dequant[1])}")
    return sa, sb


def promoted_run(acc, a3, b3, batch, fa_, fb_, fp_, key, p_mode, scales=None, fmts=None,
                 dequant=None, device="cpu", place=None):
    """Chunks of ``acc.chunk`` K-elements each summed by ``acc.inner`` from zero, each chunk sum
    added in order into the outer register (acc's format and rounding): DeepSeek-V3's promotion
    of tensor-core partial sums to FP32 on the CUDA cores, Wang et al.'s chunk-based
    accumulation with any inner accumulator.  ``device="cuda"``: the inner sums on the GPU
    (the outer additions, one per chunk and output element, on the CPU).  ``place``: as in
    accum.run, for the inner register's stochastic words."""
    kk, n_chunk = a3.shape[2], acc.chunk
    if scales is not None and n_chunk % scales[3]:
        raise ValueError(f"chunk ({n_chunk}) must be a multiple of the block-scaled engine's "
                         f"block ({scales[3]})")
    eng = acc.inner
    if dequant is None and isinstance(eng, MatrixEngine) and \
            isinstance(eng.model, FusedDotAdd) and n_chunk % eng.k == 0 and \
            isinstance(acc.fmt, FloatFormat) and _k.supports(acc.fmt.man_bits, acc.fmt.emin):
        # in the kernel: the same chunks (zero padding only at the end of K, as below)
        return engine_run(eng, a3, b3, batch, scales, fmts, (n_chunk, acc.fmt, acc.rounding),
                          device)
    total = np.zeros((batch, a3.shape[1], b3.shape[2]))
    f32 = _format("float32")
    native = dequant is not None and native_lanes(acc, f32, f32, None) == 32 and \
        all(float32_values(d) for d in dequant)
    if native:                                   # the register in float32's own arithmetic
        total = total.astype(np.float32)
        dq = [d.astype(np.float32) for d in dequant]
    # chunk sums of an inner register that float32 holds need no check
    inner_fmt = eng.out_format if isinstance(eng, MatrixEngine) else getattr(eng, "fmt", None)
    parts_f32 = isinstance(inner_fmt, FloatFormat) and f32.contains(inner_fmt)
    for lo in range(0, kk, n_chunk):
        a_c = np.ascontiguousarray(a3[:, :, lo:lo + n_chunk])
        b_c = np.ascontiguousarray(b3[:, lo:lo + n_chunk, :])
        if isinstance(acc.inner, MatrixEngine):
            s_c = None if scales is None else \
                (scales[0][:, :, lo // scales[3]:(lo + n_chunk) // scales[3]],
                 scales[1][:, lo // scales[3]:(lo + n_chunk) // scales[3], :]) + scales[2:]
            part = engine_run(acc.inner, a_c, b_c, batch, s_c, fmts, device=device)
        else:
            part = run(a_c, b_c, batch, acc.inner, fa_, fb_, fp_, key, p_mode, device, place)
        part = np.asarray(part, np.float64)
        if native and (parts_f32 or float32_values(part)):   # kernels.gemm.native_lanes
            c = lo // n_chunk
            _chain.dequant_add(total, part, np.ascontiguousarray(dq[0][:, :, c]),
                               np.ascontiguousarray(dq[1][:, c, :]))
            continue
        if native:                               # a chunk sum beyond float32: the units
            native, total = False, positive_nans(total.astype(np.float64))
        if dequant is not None:                  # times float32(scale_a * scale_b)
            c = lo // n_chunk
            s = mul(dequant[0][:, :, c][:, :, None], dequant[1][:, c, :][:, None, :],
                    "float32", dtype=np.float64)
            part = mul(part, s, "float32", dtype=np.float64)
        total = add(total, part, acc.fmt, rounding=acc.rounding, dtype=np.float64)
    return positive_nans(total.astype(np.float64)) if native else total


def float32_values(x):
    """Whether every element of float64 ``x`` is a float32 value (NaN included)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return bool(np.array_equal(x.astype(np.float32), x, equal_nan=True))


def sum(x, acc=None, axis=-1, x_format=None, out_format=None, seed=None, out=None):
    """The sum of ``x`` along ``axis`` through an accumulator: :func:`gemm` of each row with a
    vector of ones (the products are the elements themselves, exactly).

    ``x`` is read in ``x_format`` (default: from its dtype, as gemm's operands); ``acc``,
    ``out_format``, ``seed`` and ``out`` as in :func:`gemm`.  Returns x's shape without
    ``axis`` (a 0-d array for a vector).

    >>> import numpy as np, fpsim
    >>> x = np.full(4096, 2.0**-8, np.float32)
    >>> fpsim.sum(x, acc="fp16_169"), fpsim.sum(x, acc=fpsim.Accumulator("fp16_169", chunk=64))
    (array(4., dtype=float32), array(16., dtype=float32))
    """
    arr = np.asarray(x)
    if arr.ndim == 0:
        raise ValueError("x must have at least one dimension, got a scalar")
    if axis is None:                     # check_axis reads None as the last axis
        raise ValueError(f"axis must be an int in {-arr.ndim}..{arr.ndim - 1}, got None")
    moved = np.moveaxis(arr, check_axis(axis, arr.ndim), -1)
    rows = moved.reshape(-1, moved.shape[-1]) if moved.size else \
        np.zeros((int(np.prod(moved.shape[:-1])), moved.shape[-1]), moved.dtype)
    ones = np.ones((rows.shape[1], 1))
    res = gemm(rows, ones, acc=acc, out_format=out_format, seed=seed, a_format=x_format,
               b_format=ONE)
    return into(out, res.reshape(moved.shape[:-1]))


def dot(a, b, acc=None, product=None, out_format=None, seed=None, a_format=None, b_format=None,
        product_rounding="rne", out=None):
    """The dot product of two vectors through an accumulator: :func:`gemm` of a 1 x K row and a
    K x 1 column; arguments as there.  Returns a 0-d array.

    >>> import numpy as np, fpsim
    >>> a = np.array([2.0**11, 1.0, -2.0**11], np.float32); b = np.ones(3, np.float32)
    >>> fpsim.dot(a, b, acc="float16"), fpsim.dot(a, b, acc=fpsim.KulischAccumulator("float16"))
    (array(0., dtype=float32), array(1., dtype=float32))
    """
    a_arr, b_arr = np.asarray(a), np.asarray(b)
    if a_arr.ndim != 1 or b_arr.ndim != 1 or a_arr.shape != b_arr.shape:
        raise ValueError(f"a and b must be vectors of one length, got shapes {a_arr.shape} and "
                         f"{b_arr.shape}")
    res = gemm(a_arr[None, :], b_arr[:, None], acc=acc, product=product, out_format=out_format,
               seed=seed, a_format=a_format, b_format=b_format,
               product_rounding=product_rounding)
    return into(out, res.reshape(()))
