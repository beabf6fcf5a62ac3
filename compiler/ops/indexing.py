"""Indexing by run-time data: GatherElements, GatherND, the scatters, Trilu, and the bitwise ops.

Indices are tensors read at run time. A check kernel fails the run, naming the node, when one
lies outside [-n, n-1] of its axis (onnxruntime's error; see check_indices); the kernels after
it still run, so each index is also wrapped into the axis (see wrap_index) and none reads or
writes outside a buffer. A scatter copies its data to the output, then applies the updates in
one serial nest in their row-major order, so that a later update to the same element wins
(reduction none) or folds in after the earlier ones.
"""
from __future__ import annotations

import numpy as np

from .. import dtypes
from ..loop.ir import Binary, Cast, Const, IfThen, Load, Select, Store, Unary, cmp, const_int
from ..loop.symbolic import as_dim_expr, at_least_one, canon, dim_str, dim_sum, product
from .common import ZERO, copy_body, nest, view
from .elementwise import emit_elementwise
from .registry import register
from .runtime_values import all_of
from .shape import fail, normalize_axis, scalar_const


def wrap_index(idx, n: int):
    """A run-time index into an axis of n: ((i % n) + n) % n is i + n for i in [-n, 0), i for
    i in [0, n), and in [0, n) for any i (C's % truncates). onnxruntime rejects an
    out-of-range index: the gathers and scatters fail the run on one (check_indices) and
    wrap it meanwhile, so that the kernels after the check stay inside their buffers."""
    if idx.dtype != "int64":
        idx = Cast("int64", idx)
    # an empty axis has no elements to index, nor loop trips (a symbolic one: see guard)
    size = as_dim_expr(at_least_one(n))
    return (idx % size + size) % size


def _in_axis(idx, n):
    return Binary("and", cmp("ge", idx, canon(as_dim_expr(n) * -1)), cmp("lt", idx, n))


def check_indices(ctx, indices, extents: tuple, tuples: bool = False):
    """A kernel that fails the run when an index is outside [-n, n-1] of its axis. Each
    element of indices indexes an axis of extents[0]; with tuples, the last axis of indices
    holds coordinates along axes of extents[0], extents[1], ... (GatherND, ScatterND).
    False when the indexing kernel must not run: there are indices into an empty axis (each
    fails the run; no wrapped index exists); where an extent is symbolic, the condition
    (an Expr) under which the indexing kernel may run (see guarded)."""
    width = len(extents) if tuples else 1
    count = product(ctx.shape(indices)) // max(width, 1)
    if not width or (isinstance(count, int) and not count):
        return True
    ranges = " x ".join(f"[{-n if isinstance(n, int) else '-' + dim_str(n)}, "
                        f"{dim_str(dim_sum(n, -1))}]" for n in extents)
    message = f"an index {'tuple ' if tuples else ''}is outside {ranges}"
    values = ctx.const(indices)
    if values is not None:       # known now: refused now
        values, top = values.reshape(count, width), np.array(extents)
        if ((values < -top) | (values >= top)).any():
            raise fail(ctx, message)
        return True
    flat = view(indices, count, width)
    ctx.check_each((count,), lambda i: all_of(
        _in_axis(Load(flat, (i, const_int(k))), n) for k, n in enumerate(extents)), message)
    symbolic = [n for n in extents if not isinstance(n, int)]
    if symbolic:
        return all_of([cmp("gt", as_dim_expr(n), 0) for n in symbolic]) if all(
            n for n in extents if isinstance(n, int)) else False
    return all(extents)


def guarded(body, ok):
    """body, run only where check_indices' condition ok holds (True: always)."""
    return body if ok is True else IfThen(ok, body)


def _with_axis(v, axis: int, index) -> tuple:
    return tuple(index if d == axis else x for d, x in enumerate(v))


def _tuple_index(indices, data_shape, lead, first: int, m: int) -> tuple:
    """The m coordinates stored along indices' last axis at position `lead`, each wrapped
    into its data axis (first, first + 1, ...)."""
    return tuple(wrap_index(Load(indices, tuple(lead) + (const_int(k),)), data_shape[first + k])
                 for k in range(m))


# -- gathers -----------------------------------------------------------------------------------
@register("GatherElements", since=11)
def GatherElements(ctx, data, indices, *, axis=0):
    shape, out = ctx.shape(data), ctx.output(0)
    axis = normalize_axis(ctx, axis, len(shape))
    if len(ctx.shape(indices)) != len(shape) or ctx.shape(out) != ctx.shape(indices):
        raise fail(ctx, f"indices of shape {ctx.shape(indices)} do not fit data {shape}")
    ok = check_indices(ctx, indices, (shape[axis],))
    if ok is False:
        return

    def body(*v):
        at = wrap_index(Load(indices, tuple(v)), shape[axis])
        return Store(out, tuple(v), Load(data, _with_axis(v, axis, at)))
    ctx.emit(guarded(nest(ctx.shape(out), body), ok), kind="elementwise")


@register("GatherND", since=11)
def GatherND(ctx, data, indices, *, batch_dims=0):
    """out[batch, lead, tail] = data[batch, indices[batch, lead, :], tail]."""
    shape, ishape = ctx.shape(data), ctx.shape(indices)
    b, q, m = batch_dims, len(ishape) - 1, ishape[-1] if ishape else 0
    if not 0 <= b < min(len(shape), len(ishape)) or ishape[:b] != shape[:b]:
        raise fail(ctx, f"batch_dims={b} does not fit data {shape} and indices {ishape}")
    if b + m > len(shape):
        raise fail(ctx, f"index tuples of {m} exceed data rank {len(shape)} after {b} batch axes")
    want = ishape[:-1] + shape[b + m:]
    out = ctx.output(0)
    if product(ctx.shape(out)) != product(want):
        raise fail(ctx, f"gathering gives {want}, inferred {ctx.shape(out)}")
    out = view(out, *want)     # a scalar result may be stored with shape (1,)
    ok = check_indices(ctx, indices, shape[b:b + m], tuples=True)
    if ok is False:
        return

    def body(*v):
        at = tuple(v[:b]) + _tuple_index(indices, shape, v[:q], b, m) + tuple(v[q:])
        return Store(out, tuple(v), Load(data, at))
    ctx.emit(guarded(nest(want, body), ok), kind="elementwise")


# -- scatters ----------------------------------------------------------------------------------
# reduction attribute -> how an update folds into the element it lands on
_REDUCTIONS = {
    "none": lambda old, new: new,
    "add": lambda old, new: old + new,
    "mul": lambda old, new: old * new,
    "max": lambda old, new: Binary("max", old, new),
    "min": lambda old, new: Binary("min", old, new),
}


def _emit_scatter(ctx, data, updates, update_shape, index_of, reduction: str,
                  guard=True) -> None:
    """out = data; then out[index_of(v)] = reduce(out[...], updates[v]) for every v in order
    (where guard, check_indices' condition, holds)."""
    if reduction not in _REDUCTIONS:
        raise fail(ctx, f"unsupported reduction {reduction!r} (expected one of "
                        f"{', '.join(_REDUCTIONS)})")
    if product(ctx.shape(updates)) != product(update_shape):
        raise fail(ctx, f"updates of shape {ctx.shape(updates)}, expected {update_shape}")
    out, combine = ctx.output(0), _REDUCTIONS[reduction]
    updates = view(updates, *update_shape)    # a scalar may be stored with shape (1,)
    ctx.emit(copy_body(out, data), kind="elementwise", stage="copy")

    def body(*v):
        at = index_of(v)
        return Store(out, at, combine(Load(out, at), Load(updates, tuple(v))))
    # The heuristics only run a loop on the pool when its iterations store apart (the ones
    # that index the output directly), so the order of colliding updates is kept.
    ctx.emit(guarded(nest(update_shape, body), guard), kind="scatter", stage="scatter")


@register("ScatterElements", since=11)
def ScatterElements(ctx, data, indices, updates, *, axis=0, reduction="none"):
    shape, ishape = ctx.shape(data), ctx.shape(indices)
    axis = normalize_axis(ctx, axis, len(shape))
    if len(ishape) != len(shape):
        raise fail(ctx, f"indices of rank {len(ishape)} for data of rank {len(shape)}")
    ok = check_indices(ctx, indices, (shape[axis],))
    if ok is False:
        return
    _emit_scatter(ctx, data, updates, ishape, lambda v: _with_axis(
        v, axis, wrap_index(Load(indices, tuple(v)), shape[axis])), reduction, ok)


@register("Scatter", since=9)
def Scatter(ctx, data, indices, updates, *, axis=0):
    # deprecated in opset 11 for ScatterElements, which it equals without a reduction
    ScatterElements(ctx, data, indices, updates, axis=axis)


@register("ScatterND", since=11)
def ScatterND(ctx, data, indices, updates, *, reduction="none"):
    shape, ishape = ctx.shape(data), ctx.shape(indices)
    q, m = len(ishape) - 1, ishape[-1] if ishape else 0
    if q < 0 or m > len(shape):
        raise fail(ctx, f"indices of shape {ishape} do not index data of rank {len(shape)}")
    ok = check_indices(ctx, indices, shape[:m], tuples=True)
    if ok is False:
        return
    _emit_scatter(ctx, data, updates, ishape[:-1] + shape[m:], lambda v: _tuple_index(
        indices, shape, v[:q], 0, m) + tuple(v[q:]), reduction, ok)


# -- Trilu -------------------------------------------------------------------------------------
@register("Trilu", since=14)
def Trilu(ctx, X, k=None, *, upper=1):
    """Keeps the elements with j - i >= k (upper) or <= k (lower) of each matrix [.., i, j];
    k is read at run time (0 when omitted)."""
    shape, out = ctx.shape(X), ctx.output(0)
    if len(shape) < 2:
        raise fail(ctx, f"input of rank {len(shape)}, expected at least 2")
    if k is not None and product(ctx.shape(k)) != 1:
        raise fail(ctx, f"k must hold one value, got shape {ctx.shape(k)}")
    offset = ZERO if k is None else Load(k, (ZERO,) * k.rank)
    zero = scalar_const(out.dtype, 0)

    def body(*v):
        keep = cmp("ge" if upper else "le", v[-1] - v[-2], offset)
        return Store(out, tuple(v), Select(keep, Load(X, tuple(v)), zero))
    ctx.emit(nest(shape, body), kind="elementwise")


# -- bitwise ops over integers (their schemas admit no other dtype) --------------------------
def _bitwise(ir_op: str):
    def lower(ctx, A, B):
        emit_elementwise(ctx, lambda a, b: Binary(ir_op, a, b), A, B)
    return lower


for _op, _ir_op in (("BitwiseAnd", "bitand"), ("BitwiseOr", "bitor"), ("BitwiseXor", "bitxor")):
    register(_op, since=18)(_bitwise(_ir_op))


@register("BitwiseNot", since=18)
def BitwiseNot(ctx, X):
    emit_elementwise(ctx, lambda x: Unary("bitnot", x), X)


def shift_expr(x, y, left: bool):
    """x shifted by y bits as ONNX defines it for every y: a shift by y < 0 or y >= the width
    gives the sign fill (-1 for a right shift of a negative x, else 0). C leaves those shifts,
    and a left shift of a negative value, undefined: the count is kept in range and a signed
    value shifts left as its unsigned counterpart."""
    info = dtypes.dtype(x.dtype)
    width = 8 * dtypes.itemsize(x.dtype)
    in_range = cmp("lt", y, width)
    if info.is_signed:     # on an unsigned y, y >= 0 is always true: a -Wextra warning
        in_range = Binary("and", cmp("ge", y, 0), in_range)
    if not left and info.is_signed:    # shifting by width - 1 leaves the sign fill
        return Binary("shr", x, Select(in_range, y, Const(width - 1, x.dtype)))
    count = Select(in_range, y, Const(0, x.dtype))
    if not left:
        shifted = Binary("shr", x, count)
    elif info.is_signed:
        unsigned = f"u{x.dtype}"
        shifted = Cast(x.dtype, Binary("shl", Cast(unsigned, x), Cast(unsigned, count)))
    else:
        shifted = Binary("shl", x, count)
    return Select(in_range, shifted, Const(0, x.dtype))


@register("BitShift", since=11)
def BitShift(ctx, X, Y, *, direction):
    if direction not in ("LEFT", "RIGHT"):
        raise fail(ctx, f"direction {direction!r}, expected 'LEFT' or 'RIGHT'")
    emit_elementwise(ctx, lambda x, y: shift_expr(x, y, direction == "LEFT"), X, Y)
