"""Scans and sequence reversal: CumSum, CumProd and ReverseSequence.

A scan along axis d sees its tensor as [outer, n, inner] (the axes before d, d itself, the
axes after d, each group flattened). For each outer index it writes the first row visited
(the element, or the identity when exclusive), then every next row from the one before,
over the inner elements. Row k depends on row k - 1, so the scan loop is kept out of the
loops that the default schedule may vectorize or run on the pool: it sits after a Seq (not in
the perfect nest of the outer loop) and its body is the inner loop, never a bare store (the
inner loop exists even with one element; unit loops are removed after scheduling).

The axis is a run-time scalar in ONNX's own test cases. The rank is static, so the kernel
holds one nest per possible axis, each under an IfThen on the axis value; a constant axis
gets its nest alone.
"""
from __future__ import annotations

from ..loop.ir import Binary, Cast, IfThen, Load, Select, Store, cmp, const_int, loops, seq
from .common import ZERO, copy_body, nest, view
from .registry import register
from .shape import fail, normalize_axis, scalar_const

# op -> (how an element folds into the running value, the identity an exclusive scan starts
# from)
_SCANS = {"CumSum": (lambda acc, x: acc + x, 0), "CumProd": (lambda acc, x: acc * x, 1)}


def _size(shape) -> int:
    count = 1
    for d in shape:
        count *= d
    return count


def _scan_nest(op: str, X, Y, shape, d: int, exclusive: int, reverse: int):
    """Y = the scan of X along axis d (both of `shape`)."""
    combine, identity = _SCANS[op]
    outer, n, inner = _size(shape[:d]), shape[d], _size(shape[d + 1:])
    x, y = view(X, outer, n, inner), view(Y, outer, n, inner)
    # the row visited at step k (k = 0 is the first), and the one written at step k + 1
    first = const_int(n - 1 if reverse else 0)

    def rows(k):
        return (const_int(n - 1) - k, const_int(n - 2) - k) if reverse else (k, k + 1)

    def per_outer(o):
        def init(j):
            value = scalar_const(Y.dtype, identity) if exclusive else Load(x, (o, first, j))
            return Store(y, (o, first, j), value)

        def step(k, j):
            prev, at = rows(k)
            term = Load(x, (o, prev if exclusive else at, j))
            return Store(y, (o, at, j), combine(Load(y, (o, prev, j)), term))
        return seq(loops([(f"first{d}", inner)], init),
                   loops([(f"scan{d}", n - 1), (f"inner{d}", inner)], step))
    return loops([(f"outer{d}", outer)], per_outer)


def _emit_scan(ctx, op: str, X, axis, exclusive: int, reverse: int) -> None:
    shape, Y = ctx.shape(X), ctx.output(0)
    rank = len(shape)
    if rank == 0:
        raise fail(ctx, "the input is a scalar: there is no axis to scan")
    if X.dtype == "bool":
        raise fail(ctx, f"dtype {X.dtype} is not supported")
    if ctx.shape(Y) != shape:
        raise fail(ctx, f"output of shape {ctx.shape(Y)}, expected {shape}")
    if _size(ctx.shape(axis)) != 1:
        raise fail(ctx, f"axis must hold one value, got shape {ctx.shape(axis)}")
    if _size(shape) == 0:      # nothing to scan (and no first row to write)
        ctx.emit(copy_body(Y, X), kind="elementwise")
        return
    value = ctx.const(axis)
    if value is not None:
        d = normalize_axis(ctx, int(value.reshape(-1)[0]), rank)
        ctx.emit(_scan_nest(op, X, Y, shape, d, exclusive, reverse), kind="scan")
        return
    # Read at run time: axis d or d - rank picks nest d. An axis out of range (onnxruntime
    # rejects it) picks none and leaves the output unwritten; no load leaves its buffer.
    a = Load(view(axis, 1), (ZERO,))
    branches = [IfThen(Binary("or", cmp("eq", a, d), cmp("eq", a, d - rank)),
                       _scan_nest(op, X, Y, shape, d, exclusive, reverse)) for d in range(rank)]
    ctx.emit(seq(*branches), kind="scan")


@register("CumSum", since=11)
def CumSum(ctx, x, axis, *, exclusive=0, reverse=0):
    _emit_scan(ctx, "CumSum", x, axis, exclusive, reverse)


@register("CumProd", since=26)
def CumProd(ctx, x, axis, *, exclusive=0, reverse=0):
    _emit_scan(ctx, "CumProd", x, axis, exclusive, reverse)


# -- ReverseSequence ---------------------------------------------------------------------------
@register("ReverseSequence", since=10)
def ReverseSequence(ctx, X, sequence_lens, *, batch_axis=1, time_axis=0):
    """out[.., t, ..] = X[.., L - 1 - t, ..] for t < L = sequence_lens[b], else X[.., t, ..].
    L is run-time data, clamped to [0, T] first: then L - 1 - t is in [0, T) wherever it is
    selected, and a length over T reverses the whole sequence (as onnx.reference does)."""
    shape, out = ctx.shape(X), ctx.output(0)
    if len(shape) < 2:
        raise fail(ctx, f"input of rank {len(shape)}, expected at least 2")
    if {batch_axis, time_axis} != {0, 1}:
        raise fail(ctx, f"batch_axis={batch_axis} and time_axis={time_axis} must be 0 and 1")
    if ctx.shape(sequence_lens) != (shape[batch_axis],):
        raise fail(ctx, f"sequence_lens of shape {ctx.shape(sequence_lens)}, expected "
                        f"({shape[batch_axis]},)")
    steps = shape[time_axis]

    def body(*v):
        b, t = v[batch_axis], v[time_axis]
        length = Load(sequence_lens, (b,))
        if length.dtype != "int64":
            length = Cast("int64", length)
        length = Binary("max", Binary("min", length, const_int(steps)), ZERO)
        src = Select(cmp("lt", t, length), length - const_int(1) - t, t)
        at = tuple(src if d == time_axis else x for d, x in enumerate(v))
        return Store(out, tuple(v), Load(X, at))
    ctx.emit(nest(shape, body), kind="elementwise")
