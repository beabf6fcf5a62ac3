"""Slice with starts, ends, axes or steps read at run time.

The declared output shape is compiled. Per input axis, the run's first element and stride
are computed from the values (ONNX clamping, which is Python's slice.indices), the gather
reads data[first + i * stride], and the kernel runs only when every axis gives its declared
length: otherwise a check fails the run (an index past the input is never read).
"""
from __future__ import annotations

from ..loop.ir import Binary, IfThen, Load, Select, Store, cmp, const_int
from .common import nest
from .runtime_values import all_of, normalized, values_of
from .shape import fail

ZERO, ONE = const_int(0), const_int(1)


def _clamp(x, low: int, high: int):
    return Binary("min", Binary("max", x, const_int(low)), const_int(high))


def _bounds(start, end, step, n: int):
    """(first, count) of range(*slice(start, end, step).indices(n)), as expressions."""
    forward = cmp("gt", step, 0)
    s = Select(cmp("lt", start, 0), start + const_int(n), start)
    e = Select(cmp("lt", end, 0), end + const_int(n), end)
    first = Select(forward, _clamp(s, 0, n), _clamp(s, -1, n - 1))
    stop = Select(forward, _clamp(e, 0, n), _clamp(e, -1, n - 1))
    span = Select(forward, stop - first + step - ONE, first - stop - step - ONE)
    size = Select(forward, step, ZERO - step)
    count = Binary("max", Binary("floordiv", span, size), ZERO)
    return first, count


def _per_axis(entries, d: int, default):
    """The value of the slice entry whose axis is d (the last one wins), else default."""
    value = default
    for axis, v in entries:
        value = Select(cmp("eq", axis, d), v, value)
    return value


def runtime_slice(ctx, data, starts, ends, axes, steps) -> None:
    shape, out = ctx.shape(data), ctx.output(0)
    rank = len(shape)
    if len(ctx.shape(out)) != rank:
        raise fail(ctx, "starts/ends read at run time need the declared output shape")
    s_vals, e_vals = values_of(ctx, starts), values_of(ctx, ends)
    count = len(s_vals)
    a_vals = [const_int(j) for j in range(count)] if axes is None else values_of(ctx, axes)
    st_vals = [ONE] * count if steps is None else values_of(ctx, steps)
    if not len(e_vals) == len(a_vals) == len(st_vals) == count:
        raise fail(ctx, "starts, ends, axes and steps differ in length")
    norm = [normalized(a, rank) for a in a_vals]
    firsts, strides, ok = [], [], [all_of(cmp("ne", st, 0) for st in st_vals)]
    for d, n in enumerate(shape):
        start = _per_axis(zip(norm, s_vals), d, ZERO)
        end = _per_axis(zip(norm, e_vals), d, const_int(n))
        step = _per_axis(zip(norm, st_vals), d, ONE)
        first, length = _bounds(start, end, step, n)
        firsts.append(first)
        strides.append(step)
        ok.append(cmp("eq", length, ctx.shape(out)[d]))
    valid = all_of(ok)
    ctx.check(valid, f"starts, ends, axes and steps do not give the declared output "
                     f"{list(ctx.shape(out))}")

    def element(*v):
        index = tuple(f + i * st for f, i, st in zip(firsts, v, strides))
        return Store(out, tuple(v), Load(data, index))
    if all(ctx.shape(out)):   # an empty output has nothing to gather
        ctx.emit(IfThen(valid, nest(ctx.shape(out), element)), kind="generic")
