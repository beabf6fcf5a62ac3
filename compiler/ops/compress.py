"""Compress: the slices of an axis (or the elements of the flattened input) whose condition
is true. How many the data decides: like NonZero (data_sized.py), the op registers a bound,
the full axis length, and its kernel stores the kept count in a run-time extent and writes
the kept slices densely for that extent.

A condition shorter than the axis drops the slices past its end; one longer than the axis
has its extra entries ignored (onnxruntime reads only the first axis-length ones).
"""
from __future__ import annotations

import dataclasses

from ..loop.ir import Allocate, Binary, IfThen, Load, Store, const_int, loops, seq
from ..loop.symbolic import as_dim_expr, canon, product
from .common import ZERO, view
from .registry import register
from .shape import fail, normalize_axis


def _compress_bound(inputs, attrs):
    """The input's shape (or its size, flattened): every slice kept."""
    x = inputs[0]
    axis = attrs.get("axis")
    if axis is None:
        return [(x.dtype, (product(x.shape),), (0,))]
    rank = len(x.shape)
    if not -rank <= axis < rank:   # the lowering names the node in its error
        return [(x.dtype, tuple(x.shape), ())]
    return [(x.dtype, tuple(x.shape), (axis % rank,))]


@register("Compress", since=9, bound=_compress_bound)
def Compress(ctx, X, condition, *, axis=None):
    """One pass over the condition: each true entry c copies slice c of X to the next row of
    the [outer, count, inner] result, count being the rows kept so far. The total count is
    known only at the end, and each row's place depends on it, so a first pass counts."""
    Y = ctx.output(0)
    shape = ctx.shape(X)
    if len(ctx.shape(condition)) != 1:
        raise fail(ctx, f"condition of shape {list(ctx.shape(condition))}, expected rank 1")
    if condition.dtype != "bool":
        raise fail(ctx, f"condition of dtype {condition.dtype}, expected bool")
    if axis is None:
        outer, n, inner, d = 1, product(shape), 1, 0
    else:
        if not shape:
            raise fail(ctx, "a scalar input has no axis to compress")
        d = normalize_axis(ctx, axis, len(shape))
        outer, n, inner = product(shape[:d]), shape[d], product(shape[d + 1:])
    # the condition entries that name a slice
    m = canon(Binary("min", as_dim_expr(ctx.shape(condition)[0]), as_dim_expr(n)))
    extent = ctx.runtime_extent(Y, d)
    count = dataclasses.replace(ctx.builder.new_buffer(f"{ctx.node.name}_count", "int64", (1,),
                                                       "l_"), scope="local")
    x, y = view(X, outer, n, inner), view(Y, outer * n * inner)
    kept = Load(count, (ZERO,))
    bump = Store(count, (ZERO,), kept + const_int(1))

    def count_one(c):
        return IfThen(Load(condition, (c,)), bump)

    def copy_slice(c):
        def element(o, i):
            row = o * Load(extent, (ZERO,)) + kept
            return Store(y, (row * as_dim_expr(inner) + i,), Load(x, (o, c, i)))
        return IfThen(Load(condition, (c,)),
                      seq(loops([("outer", outer), ("inner", inner)], element), bump))
    body = seq(Store(count, (ZERO,), ZERO),
               loops([("c", m)], count_one),
               Store(extent, (ZERO,), kept),
               Store(count, (ZERO,), ZERO),
               loops([("c", m)], copy_slice))
    ctx.emit(Allocate(count, body), kind="generic")
