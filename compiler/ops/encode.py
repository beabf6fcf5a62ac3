"""Ops that re-encode values: OneHot (an index as a row of off/on values) and BitCast (the
same bits read as another type)."""
from __future__ import annotations

from .. import dtypes
from ..loop.ir import Bitcast, Cast, Load, Select, Store, cmp, const_int
from .common import ZERO, nest, view
from .registry import register
from .shape import fail


def _size(shape) -> int:
    count = 1
    for d in shape:
        count *= d
    return count


def _as_int64(e):
    return e if e.dtype == "int64" else Cast("int64", e)


def _check_depth(ctx, depth, extent: int) -> None:
    """depth is the output's extent on the one-hot axis; a run-time depth is checked."""
    if _size(ctx.shape(depth)) != 1:
        raise fail(ctx, f"depth must hold one value, got shape {list(ctx.shape(depth))}")
    value = ctx.const(depth)
    if value is not None:
        given = int(value.reshape(-1)[0])
        if given != extent:
            raise fail(ctx, f"depth {given} differs from the declared output's "
                            f"extent {extent} on the one-hot axis")
        return
    ctx.check(cmp("eq", _as_int64(Load(view(depth, 1), (ZERO,))), extent),
              f"depth differs from the declared output's extent {extent} on the one-hot axis")


@register("OneHot", since=9)
def OneHot(ctx, indices, depth, values, *, axis=-1):
    """out[.., d, ..] = on where index (negative: counted from the end) is d, else off. An
    index outside [-depth, depth) equals no d: its row is all off."""
    ishape, Y = ctx.shape(indices), ctx.output(0)
    rank = len(ishape) + 1
    if not -rank <= axis < rank:
        raise fail(ctx, f"axis {axis} is out of range for output rank {rank}")
    a = axis % rank
    out = ctx.shape(Y)
    if len(out) != rank or out[:a] + out[a + 1:] != ishape:
        raise fail(ctx, f"output of shape {list(out)} is not indices {list(ishape)} with a "
                        f"one-hot axis at {a}")
    if _size(ctx.shape(values)) != 2:
        raise fail(ctx, f"values must hold [off, on], got shape {list(ctx.shape(values))}")
    if indices.dtype in ("bool", "string") or dtypes.dtype(indices.dtype).compute:
        raise fail(ctx, f"indices of dtype {indices.dtype} are not supported")
    depth_n = out[a]
    _check_depth(ctx, depth, depth_n)
    pair = view(values, 2)
    off, on = Load(pair, (ZERO,)), Load(pair, (const_int(1),))

    def body(*v):
        where = tuple(v[:a] + v[a + 1:])
        index = _as_int64(Load(indices, where) if where else Load(view(indices, 1), (ZERO,)))
        index = Select(cmp("lt", index, 0), index + const_int(depth_n), index)
        return Store(Y, tuple(v), Select(cmp("eq", index, v[a]), on, off))
    ctx.emit(nest(out, body), kind="elementwise")


@register("BitCast", since=26)
def BitCast(ctx, X, *, to):
    """Y = X's bits as dtype `to` (same width, same shape): a copy through a Bitcast."""
    Y = ctx.output(0)
    if dtypes.from_onnx(int(to)) != Y.dtype:
        raise fail(ctx, f"output of dtype {Y.dtype} for to={to}")
    shape = ctx.shape(X)
    if ctx.shape(Y) != shape:
        raise fail(ctx, f"output of shape {list(ctx.shape(Y))}, expected {list(shape)}")
    if "string" in (X.dtype, Y.dtype):
        raise fail(ctx, "string tensors have no bits to reinterpret")
    if dtypes.itemsize(X.dtype) != dtypes.itemsize(Y.dtype):
        raise fail(ctx, f"{X.dtype} and {Y.dtype} differ in width")
    half = [t for t in (X.dtype, Y.dtype) if dtypes.dtype(t).compute]
    if half:
        # kernels compute 16-bit floats as float32 (lower/halfwidth.py): their bits are gone
        raise fail(ctx, f"BitCast of {half[0]} is not supported")
    _emit_bitcast(ctx, X, Y)


def _emit_bitcast(ctx, X, Y) -> None:
    shape = ctx.shape(X)
    x, y = view(X, _size(shape)), view(Y, _size(shape))

    def body(i):
        value = Load(x, (i,))
        if X.dtype == Y.dtype:
            return Store(y, (i,), value)
        if "bool" in (X.dtype, Y.dtype):     # one byte: 0 and 1 are the only bool bits
            return Store(y, (i,), cmp("ne", value, 0) if Y.dtype == "bool"
                         else Cast(Y.dtype, value))
        return Store(y, (i,), Bitcast(Y.dtype, value))
    ctx.emit(nest((_size(shape),), body), kind="elementwise")
