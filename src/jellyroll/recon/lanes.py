"""Vector operations on a fixed number of consecutive float32 values (numba intrinsics).

SART with few channels applies each footprint weight to a handful of channels per pixel.
Written as a loop over channels, numba's LLVM cannot turn those few multiply-adds into one
vector instruction: it cannot prove that the map, the residual and the projection do not
overlap, so it keeps them scalar (~10 scalar operations per pixel and ray with 4
channels). These intrinsics load the whole group of ``lanes`` values first, then store
it, as one LLVM vector of a width known when compiling (``lanes`` must be a literal
integer, see :func:`numba.literally`): with 4 channels one SSE multiply-add per pixel and
ray. Offsets count float32 values from the start of the array's data, unchecked: the
caller keeps them within the array.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.extending import intrinsic

__all__ = ["lanes_axpy", "lanes_clip"]

_FAST = ("fast",)


def _is_float32_c(arr: types.Type) -> bool:
    return isinstance(arr, types.Array) and arr.dtype == types.float32 and arr.layout == "C"


def _lanes_pointer(context, builder, arytype, ary, offset, offset_type, n: int):
    """Pointer to the ``n``-lane vector at float32 ``offset`` of ``ary``'s data."""
    data = context.make_array(arytype)(context, builder, ary).data
    index = context.cast(builder, offset, offset_type, types.intp)
    return builder.bitcast(
        builder.gep(data, [index]), ir.VectorType(ir.FloatType(), n).as_pointer()
    )


@intrinsic
def lanes_axpy(typingctx, dst, dst_offset, src, src_offset, weight, lanes):
    """``dst[dst_offset + i] += weight * src[src_offset + i]`` for ``i < lanes`` (flat
    float32 C arrays; ``lanes`` a literal integer)."""
    if not (
        isinstance(lanes, types.IntegerLiteral)
        and _is_float32_c(dst)
        and _is_float32_c(src)
        and isinstance(dst_offset, types.Integer)
        and isinstance(src_offset, types.Integer)
        and isinstance(weight, types.Float)
    ):
        return None
    n = lanes.literal_value

    def codegen(context, builder, signature, args):
        dst_v, dst_off, src_v, src_off, weight_v, _ = args
        dst_ptr = _lanes_pointer(context, builder, dst, dst_v, dst_off, dst_offset, n)
        src_ptr = _lanes_pointer(context, builder, src, src_v, src_off, src_offset, n)
        scalar = context.cast(builder, weight_v, weight, types.float32)
        vector = ir.VectorType(ir.FloatType(), n)
        splat = builder.insert_element(
            ir.Constant(vector, ir.Undefined), scalar, ir.Constant(ir.IntType(32), 0)
        )
        zeros = ir.Constant(ir.VectorType(ir.IntType(32), n), [0] * n)
        splat = builder.shuffle_vector(splat, ir.Constant(vector, ir.Undefined), zeros)
        product = builder.fmul(builder.load(src_ptr, align=4), splat, flags=_FAST)
        builder.store(
            builder.fadd(builder.load(dst_ptr, align=4), product, flags=_FAST), dst_ptr, align=4
        )
        return context.get_dummy_value()

    return types.void(dst, dst_offset, src, src_offset, weight, lanes), codegen


@intrinsic
def lanes_clip(typingctx, dst, dst_offset, lanes):
    """``dst[dst_offset + i] = max(dst[dst_offset + i], 0)`` for ``i < lanes``."""
    if not (
        isinstance(lanes, types.IntegerLiteral)
        and _is_float32_c(dst)
        and isinstance(dst_offset, types.Integer)
    ):
        return None
    n = lanes.literal_value

    def codegen(context, builder, signature, args):
        dst_v, dst_off, _ = args
        ptr = _lanes_pointer(context, builder, dst, dst_v, dst_off, dst_offset, n)
        values = builder.load(ptr, align=4)
        zero = ir.Constant(ir.VectorType(ir.FloatType(), n), [0.0] * n)
        positive = builder.fcmp_ordered(">", values, zero)
        builder.store(builder.select(positive, values, zero), ptr, align=4)
        return context.get_dummy_value()

    return types.void(dst, dst_offset, lanes), codegen
