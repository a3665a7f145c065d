"""Vector operations on a fixed number of consecutive float32 values (numba intrinsics).

SART with few channels applies each footprint weight to a handful of channels per pixel.
Written as a loop over channels, numba's LLVM cannot turn those few multiply-adds into one
vector instruction: it cannot prove that the map, the residual and the projection do not
overlap, so it keeps them scalar (~10 scalar operations per pixel and ray with 4
channels). These intrinsics load the whole group of ``lanes`` values first, then store
it, as one LLVM vector of a width known when compiling (``lanes`` must be a literal
integer, see :func:`numba.literally`): with 4 channels one SSE multiply-add per pixel and
ray. The pair intrinsics handle a value and two consecutive rays as one vector of twice
the lanes (a pixel whose footprint spans 2 rays: 8 float32 with 4 channels). Offsets count
float32 values from the start of the array's data, unchecked: the caller keeps them within
the array.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.extending import intrinsic

__all__ = ["lanes_axpy", "lanes_clip", "lanes_pair_axpy", "lanes_pair_dot"]

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


def _takes(dst, dst_offset, src, src_offset, weights, lanes) -> bool:
    """Whether the axpy-like intrinsics take these argument types (``weights`` a tuple)."""
    return (
        isinstance(lanes, types.IntegerLiteral)
        and _is_float32_c(dst)
        and _is_float32_c(src)
        and isinstance(dst_offset, types.Integer)
        and isinstance(src_offset, types.Integer)
        and all(isinstance(weight, types.Float) for weight in weights)
    )


def _indices(values: list[int]) -> ir.Constant:
    """A shuffle's lane indices."""
    return ir.Constant(ir.VectorType(ir.IntType(32), len(values)), values)


def _shuffle(builder, vector, values: list[int]):
    """The lanes ``values`` of ``vector``, in that order."""
    return builder.shuffle_vector(vector, ir.Constant(vector.type, ir.Undefined), _indices(values))


def _weights(context, builder, weights, weight_types, n: int):
    """The vector of ``n`` copies of the first weight, then ``n`` of the next, and so on."""
    vector = ir.Constant(ir.VectorType(ir.FloatType(), len(weights)), ir.Undefined)
    for i, (value, value_type) in enumerate(zip(weights, weight_types, strict=True)):
        scalar = context.cast(builder, value, value_type, types.float32)
        vector = builder.insert_element(vector, scalar, ir.Constant(ir.IntType(32), i))
    return _shuffle(builder, vector, [i // n for i in range(len(weights) * n)])


def _add_into(builder, pointer, value) -> None:
    """``*pointer += value`` for a vector."""
    builder.store(
        builder.fadd(builder.load(pointer, align=4), value, flags=_FAST), pointer, align=4
    )


def _operands(context, builder, argument_types, args, n: int, dst_lanes: int, src_lanes: int):
    """The weights' vector (:func:`_weights`) and the pointers to ``dst``'s vector of
    ``dst_lanes`` and ``src``'s of ``src_lanes`` of an axpy-like intrinsic's arguments."""
    dst, dst_offset, src, src_offset, *weight_types = argument_types
    dst_v, dst_off, src_v, src_off, *weight_values = args
    weights = _weights(context, builder, weight_values, weight_types, n)
    dst_ptr = _lanes_pointer(context, builder, dst, dst_v, dst_off, dst_offset, dst_lanes)
    src_ptr = _lanes_pointer(context, builder, src, src_v, src_off, src_offset, src_lanes)
    return weights, dst_ptr, src_ptr


@intrinsic
def lanes_axpy(typingctx, dst, dst_offset, src, src_offset, weight, lanes):
    """``dst[dst_offset + i] += weight * src[src_offset + i]`` for ``i < lanes`` (flat
    float32 C arrays; ``lanes`` a literal integer)."""
    if not _takes(dst, dst_offset, src, src_offset, (weight,), lanes):
        return None
    n = lanes.literal_value
    argument_types = (dst, dst_offset, src, src_offset, weight)

    def codegen(context, builder, signature, args):
        splat, dst_ptr, src_ptr = _operands(context, builder, argument_types, args[:-1], n, n, n)
        _add_into(
            builder, dst_ptr, builder.fmul(builder.load(src_ptr, align=4), splat, flags=_FAST)
        )
        return context.get_dummy_value()

    return types.void(*argument_types, lanes), codegen


@intrinsic
def lanes_pair_axpy(typingctx, dst, dst_offset, src, src_offset, first, second, lanes):
    """``dst[dst_offset + i] += first * src[src_offset + i]`` and
    ``dst[dst_offset + lanes + i] += second * src[src_offset + i]`` for ``i < lanes``: one
    vector of ``2 lanes`` (a value added to two consecutive rays)."""
    if not _takes(dst, dst_offset, src, src_offset, (first, second), lanes):
        return None
    n = lanes.literal_value
    argument_types = (dst, dst_offset, src, src_offset, first, second)

    def codegen(context, builder, signature, args):
        weights, dst_ptr, src_ptr = _operands(
            context, builder, argument_types, args[:-1], n, 2 * n, n
        )
        values = _shuffle(builder, builder.load(src_ptr, align=4), [i % n for i in range(2 * n)])
        _add_into(builder, dst_ptr, builder.fmul(values, weights, flags=_FAST))
        return context.get_dummy_value()

    return types.void(*argument_types, lanes), codegen


@intrinsic
def lanes_pair_dot(typingctx, dst, dst_offset, src, src_offset, first, second, lanes):
    """``dst[dst_offset + i] += first * src[src_offset + i] + second * src[src_offset +
    lanes + i]`` for ``i < lanes``: two consecutive rays read as one vector of ``2 lanes``."""
    if not _takes(dst, dst_offset, src, src_offset, (first, second), lanes):
        return None
    n = lanes.literal_value
    argument_types = (dst, dst_offset, src, src_offset, first, second)

    def codegen(context, builder, signature, args):
        weights, dst_ptr, src_ptr = _operands(
            context, builder, argument_types, args[:-1], n, n, 2 * n
        )
        product = builder.fmul(builder.load(src_ptr, align=4), weights, flags=_FAST)
        low = _shuffle(builder, product, list(range(n)))
        high = _shuffle(builder, product, list(range(n, 2 * n)))
        _add_into(builder, dst_ptr, builder.fadd(low, high, flags=_FAST))
        return context.get_dummy_value()

    return types.void(*argument_types, lanes), codegen


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
