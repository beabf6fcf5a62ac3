"""CenterCropPad: each listed axis cropped or zero-padded to its new extent, centred.

Crop start and pad offset follow from the extents alone ((in - out) // 2, (out - in) // 2,
the extra element on the end side), so one gather nest with compile-time offsets does it;
a shape read at run time must give the declared extents (a check).
"""
from __future__ import annotations

import numpy as np

from ..loop.ir import Binary, Load, Select, Store, cmp, const_int
from .common import nest
from .registry import register
from .runtime_values import all_of, check_equal
from .shape import const_input, fail, int_list, normalize_axes, scalar_const


@register("CenterCropPad", since=18)
def CenterCropPad(ctx, data, shape, *, axes=None):
    in_shape, out = ctx.shape(data), ctx.output(0)
    rank = len(in_shape)
    listed = list(range(rank)) if axes is None else normalize_axes(ctx, list(axes), rank)
    out_shape = ctx.shape(out)
    if len(out_shape) != rank or any(out_shape[d] != in_shape[d] for d in range(rank)
                                     if d not in listed):
        raise fail(ctx, f"declared output {list(out_shape)} does not keep the unlisted axes "
                        f"of {list(in_shape)}")
    wanted = [out_shape[d] for d in listed]
    if ctx.const(shape) is None:
        check_equal(ctx, shape, wanted, "the shape input")
    elif int_list(np.asarray(const_input(ctx, shape, "shape")).reshape(-1)) != wanted:
        raise fail(ctx, f"shape {int_list(ctx.const(shape).reshape(-1))} is not the declared "
                        f"{wanted}")
    # output index i reads input index i + shift (negative shift: padding at the front); a
    # padded axis (out > in) guards its reads, a cropped one never leaves the input
    shifts = [(n - m) // 2 if n >= m else -((m - n) // 2) for n, m in zip(in_shape, out_shape)]
    padded = [m > n for n, m in zip(in_shape, out_shape)]

    def element(*v):
        src = [i + s if s else i for i, s in zip(v, shifts)]
        inside = all_of(Binary("and", cmp("ge", x, 0), cmp("lt", x, n))
                        for x, n, p in zip(src, in_shape, padded) if p)
        safe = tuple(Binary("min", Binary("max", x, const_int(0)), const_int(n - 1)) if p else x
                     for x, n, p in zip(src, in_shape, padded))
        return Store(out, tuple(v), Select(inside, Load(data, safe), scalar_const(out.dtype, 0)))
    if all(out_shape):
        ctx.emit(nest(out_shape, element), kind="generic")
