"""Bit casts between float64 and int64 for Numba code (LLVM bitcast: free, vectorisable)."""

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
