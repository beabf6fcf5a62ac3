"""Ops whose output size the input values decide: NonZero.

Such an op registers a `bound`: the frontend gives its output the upper-bound shape and marks
the axes the data decides. The kernel stores the actual extent in a run-time extent buffer
(ctx.runtime_extent) and writes the output densely for that extent, so the first elements
of the bound-sized buffer are the tensor itself. The runtime owns that buffer and reports
the shape after the run (see the C API's NAME_output_data).
"""
from __future__ import annotations

import dataclasses

from ..loop.ir import Allocate, IfThen, Load, Store, cmp, const_int, loops, seq
from .common import ZERO, axis_names, view
from .registry import register
from .shape import fail


def _size(shape) -> int:
    count = 1
    for d in shape:
        count *= d
    return count


def _nonzero_bound(inputs, attrs):
    """[rank, count of nonzero elements], at most [rank, size]."""
    (x,) = inputs
    return [("int64", (len(x.shape), _size(x.shape)), (1,))]


def _is_set(x):
    return Load(x.buffer, x.index) if x.dtype == "bool" else cmp("ne", x, 0)


@register("NonZero", since=9, bound=_nonzero_bound)
def nonzero(ctx, X):
    """Two passes over X in row-major order: count, then write each nonzero element's
    coordinates at column j of the [rank, count] result."""
    shape, Y = ctx.shape(X), ctx.output(0)
    rank, size = len(shape), _size(shape)
    if rank == 0:
        raise fail(ctx, "a scalar input has no coordinates to list")
    extent = ctx.runtime_extent(Y, 1)
    count = dataclasses.replace(ctx.builder.new_buffer(f"{ctx.node.name}_count", "int64", (1,),
                                                       "l_"), scope="local")
    flat_x, flat_y = view(X, size), view(Y, rank * size)
    seen = Load(count, (ZERO,))
    bump = Store(count, (ZERO,), seen + const_int(1))

    def count_one(i):
        return IfThen(_is_set(Load(flat_x, (i,))), bump)

    def write_one(*idx):
        cols = [Store(flat_y, (const_int(a) * Load(extent, (ZERO,)) + seen,), v)
                for a, v in enumerate(idx)]
        return IfThen(_is_set(Load(X, tuple(idx))), seq(*cols, bump))
    body = seq(Store(count, (ZERO,), ZERO),
               loops([("n", size)], count_one),
               Store(extent, (ZERO,), seen),
               Store(count, (ZERO,), ZERO),
               loops(list(zip(axis_names(rank), shape)), write_one))
    ctx.emit(Allocate(count, body), kind="generic")
