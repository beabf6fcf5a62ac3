"""Slice and Pad with their index inputs (starts, ends, axes, steps; pads, axes) read at
run time.

The declared output shape is compiled. Per axis, the kernel computes where each output
element comes from out of the run's values (Slice: first + i * stride with ONNX's clamping,
which is Python's slice.indices; Pad: the index minus the leading pad, folded back by the
mode), and a check fails the run unless the values give the declared shape. Indices are
clamped or guarded so that no read leaves the input whatever the values.
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


def _mod(x, n: int):
    """x mod n in [0, n) for any sign of x (C's % truncates)."""
    m = const_int(n)
    return Binary("mod", Binary("mod", x, m) + m, m)


def _reflect(r, n: int):
    """numpy's 'reflect' index: period 2(n - 1), mirrored about the ends."""
    if n == 1:
        return ZERO
    m = _mod(r, 2 * (n - 1))
    return Select(cmp("lt", m, n), m, const_int(2 * (n - 1)) - m)


_SOURCES = {   # mode -> (offset index r, extent n) -> an index inside [0, n)
    "constant": lambda r, n: _clamp(r, 0, n - 1),
    "edge": lambda r, n: _clamp(r, 0, n - 1),
    "reflect": _reflect,
    "wrap": _mod,
}


def runtime_pad(ctx, data, pads, axes, mode: str, fill) -> None:
    """Pads (and axes) read at run time; non-negative pads only (a check)."""
    shape, out = ctx.shape(data), ctx.output(0)
    rank = len(shape)
    if mode not in _SOURCES:
        raise fail(ctx, f"unsupported mode {mode!r}")
    if len(ctx.shape(out)) != rank or min(shape, default=1) == 0:
        raise fail(ctx, "pads read at run time need the declared output shape and a "
                        "non-empty input")
    p_vals = values_of(ctx, pads)
    a_vals = [const_int(j) for j in range(rank)] if axes is None else values_of(ctx, axes)
    if len(p_vals) != 2 * len(a_vals):
        raise fail(ctx, f"{len(p_vals)} pads for {len(a_vals)} axes")
    norm = [normalized(a, rank) for a in a_vals]
    half = len(a_vals)
    begins = [_per_axis(zip(norm, p_vals[:half]), d, ZERO) for d in range(rank)]
    ends = [_per_axis(zip(norm, p_vals[half:]), d, ZERO) for d in range(rank)]
    ctx.check(all_of([cmp("ge", p, 0) for p in p_vals] +
                     [cmp("eq", b + e, m - n) for b, e, n, m
                      in zip(begins, ends, shape, ctx.shape(out))]),
              f"the pads do not give the declared output {list(ctx.shape(out))} (or one is "
              "negative: cropping pads read at run time are not supported)")

    def element(*v):
        offsets = [i - b for i, b in zip(v, begins)]
        src = tuple(_SOURCES[mode](r, n) for r, n in zip(offsets, shape))
        value = Load(data, src)
        if mode == "constant":
            inside = all_of(Binary("and", cmp("ge", r, 0), cmp("lt", r, n))
                            for r, n in zip(offsets, shape))
            value = Select(inside, value, fill)
        return Store(out, tuple(v), value)
    ctx.emit(nest(ctx.shape(out), element), kind="generic")
