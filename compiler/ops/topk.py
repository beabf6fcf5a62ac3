"""TopK: the k best elements along an axis, and their indices.

The tensor is seen as [outer, n, inner] (the axes before, the axis itself, the axes after).
Each row (outer, inner) is an insertion into its k-sized output slice, kept sorted best
first: element i moves every kept entry it beats one place down and takes the place of the
first one it beats. Only strictly better elements move an entry, so of equal values the
lower index stays first, as ONNX specifies. NaN ranks above every number, as onnxruntime
ranks it: first for largest, last for smallest. The output is always sorted, which
sorted=0 (any order) allows too.

k is the output's extent on the axis. A run-time k (ONNX's own cases pass it as a graph
input) is checked against it.
"""
from __future__ import annotations

import dataclasses

from .. import dtypes
from ..loop.ir import Allocate, Binary, IfThen, Load, Store, Unary, cmp, const_int, loops, seq
from .common import ZERO, view
from .registry import register
from .shape import fail, normalize_axis


def _size(shape) -> int:
    count = 1
    for d in shape:
        count *= d
    return count


def _beats(x, y, largest: int, is_float: bool):
    """x ranks strictly before y."""
    order = cmp("gt" if largest else "lt", x, y)
    if not is_float:
        return order
    # NaN is the greatest value: it beats numbers when largest, loses to them otherwise
    nan_x, nan_y = cmp("ne", x, x), cmp("ne", y, y)
    winner, loser = (nan_x, nan_y) if largest else (nan_y, nan_x)
    return Binary("or", order, Binary("and", winner, Unary("not", loser)))


def _row_kernel(ctx, X, V, Ind, d: int, k: int, largest: int):
    """V, Ind = the k best of X along axis d, one insertion pass per row."""
    shape = ctx.shape(X)
    outer, n, inner = _size(shape[:d]), shape[d], _size(shape[d + 1:])
    x, v, ix = view(X, outer, n, inner), view(V, outer, k, inner), view(Ind, outer, k, inner)
    is_float = dtypes.dtype(X.dtype).is_float
    pos = dataclasses.replace(ctx.builder.new_buffer(f"{ctx.node.name}_pos", "int64", (1,),
                                                     "l_"), scope="local")
    at = Load(pos, (ZERO,))

    def per_row(o, j):
        def insert(i):
            elem = Load(x, (o, i, j))
            filled = Binary("min", i, const_int(k))     # entries kept before element i

            def shift(t):
                p = const_int(k - 1) - t                  # from the last slot up
                moves = Binary("and", cmp("lt", p, filled),
                               _beats(elem, Load(v, (o, p, j)), largest, is_float))
                down = IfThen(cmp("lt", p + const_int(1), const_int(k)),
                              seq(Store(v, (o, p + const_int(1), j), Load(v, (o, p, j))),
                                  Store(ix, (o, p + const_int(1), j), Load(ix, (o, p, j)))))
                return IfThen(moves, seq(down, Store(pos, (ZERO,), p)))
            place = IfThen(cmp("lt", at, const_int(k)),
                           seq(Store(v, (o, at, j), elem), Store(ix, (o, at, j), i)))
            return seq(Store(pos, (ZERO,), filled), loops([(f"slot{d}", k)], shift), place)
        return Allocate(pos, loops([(f"scan{d}", n)], insert))
    return loops([(f"outer{d}", outer), (f"inner{d}", inner)], per_row)


def _lower(ctx, X, K, k_attr, axis: int, largest: int) -> None:
    shape, V, Ind = ctx.shape(X), ctx.output(0), ctx.output(1)
    if not shape:
        raise fail(ctx, "a scalar input has no axis to select along")
    if X.dtype == "bool" or X.dtype == "string":
        raise fail(ctx, f"dtype {X.dtype} is not supported")
    d = normalize_axis(ctx, axis, len(shape))
    out = ctx.shape(V)
    k = out[d] if len(out) == len(shape) else -1
    expected = shape[:d] + (k,) + shape[d + 1:]
    if out != expected or ctx.shape(Ind) != expected or not 0 <= k <= shape[d]:
        raise fail(ctx, f"outputs of shapes {list(out)} and {list(ctx.shape(Ind))} do not "
                        f"select along axis {d} of {list(shape)}")
    if K is not None:
        if _size(ctx.shape(K)) != 1:
            raise fail(ctx, f"K must hold one value, got shape {list(ctx.shape(K))}")
        value = ctx.const(K)
        if value is not None:
            k_attr = int(value.reshape(-1)[0])
        else:
            ctx.check(cmp("eq", Load(view(K, 1), (ZERO,)), k),
                      f"K differs from the declared outputs' extent {k} on axis {d}")
    if k_attr is not None and k_attr != k:
        raise fail(ctx, f"k={k_attr} but the outputs hold {k} elements on axis {d}")
    if k == 0 or _size(shape) == 0:
        return                      # nothing to write
    ctx.emit(_row_kernel(ctx, X, V, Ind, d, k, largest), kind="scan")


@register("TopK", since=1, until=9)
def TopK_1(ctx, X, *, axis=-1, k=None):
    if k is None:
        raise fail(ctx, "the k attribute is missing")
    _lower(ctx, X, None, int(k), axis, 1)


@register("TopK", since=10, until=10)
def TopK_10(ctx, X, K, *, axis=-1):
    _lower(ctx, X, K, None, axis, 1)


@register("TopK", since=11)
def TopK(ctx, X, K, *, axis=-1, largest=1, sorted=1):  # noqa: A002
    # sorted=0 allows any order: the sorted one serves both
    _lower(ctx, X, K, None, axis, largest)
