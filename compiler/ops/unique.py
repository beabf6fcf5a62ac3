"""Unique: the distinct elements (or slices along an axis) of a tensor.

Outputs Y (the unique values), indices (first occurrence of each), inverse_indices (for each
element or slice, its position in Y) and counts. Y, indices and counts are sized by the data:
like NonZero (data_sized.py) the op registers a bound (the input's extent: every element
distinct) and the kernel stores the unique count K in each one's run-time extent, writing
them densely. inverse_indices has a static length.

The input is seen as [outer, N, inner]: N slices along the axis (without an axis: the N
flattened elements, outer = inner = 1), compared lexicographically in row-major order over
(outer, inner), as numpy.unique does. The algorithm is quadratic and plain:

    first[i]  the first slice equal to slice i (compared only with earlier unique slices)
    u[0..K)   the slices with first[i] == i, in order of first occurrence
    sorted=1  u exchange-sorted ascending by slice value
    pos[u[p]] = p; inverse[i] = pos[first[i]]; counts[pos[first[i]]] += 1
"""
from __future__ import annotations

import dataclasses

from ..loop.ir import Allocate, Binary, IfThen, Load, Store, cmp, const_int, loops, seq
from ..loop.symbolic import at_least_one
from .common import ZERO, view
from .registry import register
from .shape import fail

ONE = const_int(1)


def _axis(shape, axis):
    """The normalized axis, None without one."""
    if axis is None:
        return None
    if not -len(shape) <= axis < len(shape):
        return len(shape)   # out of range: the caller reports it
    return axis % len(shape)


def _size(shape) -> int:
    count = 1
    for d in shape:
        count *= d
    return count


def _bound(inputs, attrs):
    """Y: X's shape (one slice per input slice at most), the axis decided by the data;
    indices and counts: [N] likewise; inverse_indices: [N], static."""
    x = inputs[0]
    shape = tuple(x.shape)
    axis = _axis(shape, attrs.get("axis"))
    if axis is None or axis >= len(shape):
        n = _size(shape)
        y = (x.dtype, (n,), (0,))
    else:
        n = shape[axis]
        y = (x.dtype, shape, (axis,))
    return [y, ("int64", (n,), (0,)), ("int64", (n,), ()), ("int64", (n,), (0,))]


@dataclasses.dataclass(frozen=True)
class _Slices:
    """X as [outer, n, inner] and the scratch of the kernel."""
    x: object
    outer: int
    n: int
    inner: int
    order: object    # int64[1], local: the last comparison, -1, 0 or 1
    count: object    # int64[1], local: K, the unique slices found so far
    swap: object     # int64[1], local: the exchange in the sort

    def compare(self, a, b):
        """order = sign(slice a - slice b), lexicographically over (outer, inner)."""
        o = self.order

        def step(r, e):
            va, vb = Load(self.x, (r, a, e)), Load(self.x, (r, b, e))
            decide = IfThen(cmp("lt", va, vb), Store(o, (ZERO,), const_int(-1)),
                            IfThen(cmp("gt", va, vb), Store(o, (ZERO,), ONE)))
            return IfThen(cmp("eq", Load(o, (ZERO,)), 0), decide)
        return seq(Store(o, (ZERO,), ZERO),
                   loops([("r", self.outer), ("e", self.inner)], step))

    def ordered(self, op: str):
        return cmp(op, Load(self.order, (ZERO,)), 0)

    def k(self):
        return Load(self.count, (ZERO,))


def _local(ctx, hint, size=1):
    buf = ctx.builder.new_buffer(f"{ctx.node.name}_{hint}", "int64", (size,), "l_")
    return dataclasses.replace(buf, scope="local")


def _find_first(s: _Slices, first):
    """first[i]: the earliest slice equal to slice i."""
    def against(i, j):
        candidate = Binary("and", cmp("lt", j, i), Binary(
            "and", cmp("eq", Load(first, (i,)), i), cmp("eq", Load(first, (j,)), j)))
        return IfThen(candidate, seq(s.compare(i, j),
                                     IfThen(s.ordered("eq"), Store(first, (i,), j))))
    return loops([("i", s.n)], lambda i: seq(
        Store(first, (i,), i), loops([("j", s.n)], lambda j: against(i, j))))


def _collect(s: _Slices, first, u):
    """u[0..K): the unique slices in order of first occurrence; K in s.count."""
    def one(i):
        return IfThen(cmp("eq", Load(first, (i,)), i),
                      seq(Store(u, (s.k(),), i), Store(s.count, (ZERO,), s.k() + ONE)))
    return seq(Store(s.count, (ZERO,), ZERO), loops([("i", s.n)], one))


def _sort(s: _Slices, u):
    """Exchange sort of u[0..K) by slice value (no two are equal)."""
    def exchange(p, q):
        up, uq = Load(u, (p,)), Load(u, (q,))
        swap = seq(Store(s.swap, (ZERO,), up), Store(u, (p,), uq),
                   Store(u, (q,), Load(s.swap, (ZERO,))))
        return IfThen(Binary("and", cmp("lt", p, q), cmp("lt", q, s.k())),
                      seq(s.compare(uq, up), IfThen(s.ordered("lt"), swap)))
    return loops([("p", s.n), ("q", s.n)], exchange)


def _write_y(s: _Slices, Y, u):
    """Y[r, k, e] = X[r, u[k], e] for k < K, dense for the extent K."""
    flat = view(Y, s.outer * s.n * s.inner)

    def one(r, k, e):
        at = (r * s.k() + k) * const_int(s.inner) + e
        return IfThen(cmp("lt", k, s.k()),
                      Store(flat, (at,), Load(s.x, (r, Load(u, (k,)), e))))
    return loops([("r", s.outer), ("k", s.n), ("e", s.inner)], one)


def _write_rest(s: _Slices, first, u, pos, outs):
    """indices, inverse_indices, counts (each None when not asked for)."""
    indices, inverse, counts = outs
    valid = lambda k: cmp("lt", k, s.k())  # noqa: E731
    where = lambda i: Load(pos, (Load(first, (i,)),))  # noqa: E731
    body = [loops([("k", s.n)], lambda k: IfThen(valid(k), Store(pos, (Load(u, (k,)),), k)))]
    if indices is not None:
        body.append(loops([("k", s.n)], lambda k: IfThen(
            valid(k), Store(indices, (k,), Load(u, (k,))))))
    if inverse is not None:
        body.append(loops([("i", s.n)], lambda i: Store(inverse, (i,), where(i))))
    if counts is not None:
        body.append(loops([("k", s.n)], lambda k: IfThen(valid(k), Store(counts, (k,), ZERO))))
        body.append(loops([("i", s.n)], lambda i: Store(
            counts, (where(i),), Load(counts, (where(i),)) + ONE)))
    return seq(*body)


def _data_sized(ctx, out, axis):
    """A data-sized output, with its extent buffer; None for an omitted one."""
    if out is None:
        return None, None
    return out, ctx.runtime_extent(out, axis)


def _shape_parts(ctx, shape, axis):
    if axis is None:
        return 1, _size(shape), 1, None
    norm = _axis(shape, axis)
    if norm >= len(shape):
        raise fail(ctx, f"axis {axis} is out of range for rank {len(shape)}")
    return _size(shape[:norm]), shape[norm], _size(shape[norm + 1:]), norm


@register("Unique", since=11, bound=_bound)
def Unique(ctx, X, *, axis=None, sorted=1):  # noqa: A002 (ONNX's attribute name)
    shape = ctx.shape(X)
    outer, n, inner, norm = _shape_parts(ctx, shape, axis)
    outs = list(ctx.outputs) + [None] * (4 - len(ctx.outputs))
    Y, y_extent = _data_sized(ctx, outs[0], 0 if norm is None else norm)
    indices, i_extent = _data_sized(ctx, outs[1], 0)
    counts, c_extent = _data_sized(ctx, outs[3], 0)
    s = _Slices(view(X, outer, n, inner), outer, n, inner,
                _local(ctx, "order"), _local(ctx, "count"), _local(ctx, "swap"))
    first, u, pos = (ctx.temp("int64", (at_least_one(n),), hint) for hint in ("first", "u", "pos"))
    body = [_find_first(s, first), _collect(s, first, u)]
    if sorted:
        body.append(_sort(s, u))
    if Y is not None:
        body.append(_write_y(s, Y, u))
    body.append(_write_rest(s, first, u, pos, (indices, outs[2], counts)))
    body += [Store(e, (ZERO,), s.k()) for e in (y_extent, i_extent, c_extent) if e is not None]
    stmt = seq(*body)
    for buf in (s.order, s.count, s.swap):
        stmt = Allocate(buf, stmt)
    ctx.emit(stmt, kind="generic")
