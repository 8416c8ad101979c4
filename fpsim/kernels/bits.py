"""LLVM primitives for Numba code: bit casts between floats and integers (LLVM bitcast: free,
vectorisable) and the exactly rounded fused multiply-add."""

from llvmlite import ir
from numba import types
from numba.extending import intrinsic


@intrinsic
def f64_bits(typingctx, x):
    """The IEEE bit pattern of a float64 as an int64."""
    if not isinstance(x, types.Float) or x.bitwidth != 64:
        return None

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], context.get_value_type(types.int64))
    return types.int64(types.float64), codegen


@intrinsic
def bits_f64(typingctx, b):
    """The float64 whose IEEE bit pattern is the int64 ``b``."""
    if not isinstance(b, types.Integer) or b.bitwidth != 64:
        return None

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], context.get_value_type(types.float64))
    return types.float64(b), codegen


@intrinsic
def float_bits(typingctx, x):
    """The IEEE bit pattern of a float32/float64 as an int32/int64."""
    if not isinstance(x, types.Float):
        return None
    ity = types.int32 if x.bitwidth == 32 else types.int64

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], context.get_value_type(ity))
    return ity(x), codegen


@intrinsic
def bits_float(typingctx, b):
    """The float32/float64 whose IEEE bit pattern is the int32/int64 ``b``."""
    if not isinstance(b, types.Integer) or b.bitwidth not in (32, 64):
        return None
    fty = types.float32 if b.bitwidth == 32 else types.float64

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], context.get_value_type(fty))
    return fty(b), codegen


@intrinsic
def fma(typingctx, a, b, c):
    """a * b + c rounded once to nearest-even (LLVM's ``llvm.fma``, defined as the exactly
    rounded fused multiply-add: a hardware FMA, or the C library's ``fma`` where the CPU has none)
    in the common float type of a, b and c; vectorisable."""
    if not (isinstance(a, types.Float) and a == b == c):
        return None

    def codegen(context, builder, sig, args):
        ty = ir.DoubleType() if sig.return_type.bitwidth == 64 else ir.FloatType()
        fn = builder.module.declare_intrinsic("llvm.fma", [ty], ir.FunctionType(ty, [ty] * 3))
        return builder.call(fn, args)
    return a(a, b, c), codegen


def _shift32(op, doc):
    @intrinsic
    def shift(typingctx, a, n):
        if not (isinstance(a, types.Integer) and a.bitwidth == 32 and isinstance(n, types.Integer)):
            return None

        def codegen(context, builder, sig, args):
            i32 = ir.IntType(32)
            count = args[1]
            if count.type.width > 32:
                count = builder.trunc(count, i32)
            elif count.type.width < 32:
                count = builder.zext(count, i32)
            return getattr(builder, op)(args[0], builder.and_(count, ir.Constant(i32, 31)))
        return types.int32(a, n), codegen
    shift.__doc__ = doc
    return shift


_SHIFT_DOC = """The int32 ``a`` shifted {} by ``n`` mod 32 bits, in 32-bit arithmetic (callers pass
0 <= n <= 31).  Numba widens int32 shifts to int64 and narrows the result back; in vector loops
that halves the lanes and adds conversions (measured 1.4x slower in stochastic rounding's
lanes)."""
shr32 = _shift32("lshr", _SHIFT_DOC.format("right, logically (zeros in),"))
shl32 = _shift32("shl", _SHIFT_DOC.format("left"))
