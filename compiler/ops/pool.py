"""Pooling: MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool over 1-D, 2-D, 3-D (any)
spatial ranks.

Loops n, c, then one per output spatial axis (h, w; d, h, w), then the window loops (kh, kw).
The float 2-D MaxPool reads a copy padded with -inf through fixed windows (it vectorizes).
Otherwise padding is never read: along an axis where some window overlaps the padding, each output
position's window loop runs only over the taps inside the input; its first tap and tap count
come from small int64 constant tables indexed by the output position (static shapes make them
known at compile time). Axes where every window lies inside the input keep a constant-extent
window loop and no tables.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import dtypes
from ..errors import ModelError
from ..loop.ir import (
    Binary,
    Cast,
    Expr,
    IfThen,
    Load,
    Store,
    Unary,
    Var,
    as_int,
    cmp,
    const_int,
    loops,
    seq,
)
from ..loop.simplify import simplify
from ..loop.symbolic import as_dim_expr, canon, product
from .common import view
from .conv import pad_input
from .matmul import emit_accumulation
from .reduce import REDUCTIONS, reduce_into, scalar
from .registry import register
from .runtime_values import check_equal
from .shape import const_input

_SPATIAL_NAMES = {1: ("w",), 2: ("h", "w"), 3: ("d", "h", "w")}


@dataclass(frozen=True, slots=True)
class _Axis:
    """One spatial axis of a pooling: sizes (ints, or expressions over the dimension
    symbols) and attributes."""
    size: int | Expr
    out: int | Expr
    kernel: int
    stride: int
    dilation: int
    pad: int        # padding before the input
    pad_end: int    # padding after it

    @property
    def inside(self) -> bool:
        """Every window of this axis lies inside the input: no clamping needed. An extent
        over the dimension symbols is inside where it is the floor rule's, unpadded."""
        span = (self.kernel - 1) * self.dilation + 1
        if not isinstance(self.size, int):
            return self.pad == 0 and self.pad_end == 0 and canon(self.out) == canon(
                (as_dim_expr(self.size) - span) // self.stride + 1)
        return self.pad == 0 and (self.out - 1) * self.stride + span - 1 < self.size


def _same_pads(size, out, kernel, stride, dilation, upper: bool) -> tuple[int, int]:
    total = max(0, (out - 1) * stride + (kernel - 1) * dilation + 1 - size)
    small = total // 2
    return (small, total - small) if upper else (total - small, small)


def _axes(ctx, op, X, Y, kernel_shape, strides, pads, dilations, auto_pad) -> list[_Axis]:
    in_sp, out_sp = ctx.shape(X)[2:], ctx.shape(Y)[2:]
    n = len(in_sp)
    if n < 1:
        raise ModelError(f"{op}: input rank {n + 2} < 3")
    if kernel_shape is None or len(kernel_shape) != n:
        raise ModelError(f"{op}: kernel_shape must have {n} values, got {kernel_shape}")
    strides = tuple(strides) if strides else (1,) * n
    dilations = tuple(dilations) if dilations else (1,) * n
    pads = tuple(pads) if pads else (0,) * (2 * n)
    if len(strides) != n or len(dilations) != n or len(pads) != 2 * n:
        raise ModelError(f"{op}: strides, dilations and pads must have {n}, {n} and {2 * n} "
                         "values")
    if min(strides) < 1 or min(dilations) < 1 or min(kernel_shape) < 1 or min(pads) < 0:
        raise ModelError(f"{op}: kernel_shape, strides and dilations must be positive and "
                         "pads non-negative")
    if any(p >= k for p, k in zip(pads, tuple(kernel_shape) * 2)):
        # a window entirely in the padding has no input element: onnxruntime refuses it too
        raise ModelError(f"{op}: pads {list(pads)} must be smaller than kernel_shape "
                         f"{list(kernel_shape)}")
    rows = []
    for d in range(n):
        args = (in_sp[d], out_sp[d], kernel_shape[d], strides[d], dilations[d])
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            begin, end = _same_pads(*args, upper=auto_pad == "SAME_UPPER")
        elif auto_pad == "VALID":
            begin, end = 0, 0
        elif auto_pad == "NOTSET":
            begin, end = pads[d], pads[n + d]
        else:
            raise ModelError(f"{op}: unknown auto_pad {auto_pad!r}")
        rows.append(_Axis(*args, begin, end))
    return rows


@dataclass(frozen=True, slots=True)
class _Window:
    """The taps of one axis for output position o: kk in [0, extent) reads the input at
    start + kk * dilation. count_all also counts the taps that land in the padding."""
    extent: Expr
    start: Expr
    dilation: int
    count: Expr        # taps inside the input (extent, at least 1)
    count_all: Expr    # taps inside the padded input (at least 1)

    def pos(self, kk: Expr) -> Expr:
        return simplify(self.start + kk * self.dilation)


def _window(ctx, axis: _Axis, o: Var) -> _Window:
    """Along an axis where windows overlap the padding, the clamped ranges differ per output
    position: they come from small constant tables indexed by o."""
    if axis.inside:
        k = const_int(axis.kernel)
        return _Window(k, simplify(o * axis.stride), axis.dilation, k, k)
    taps = np.arange(axis.out)[:, None] * axis.stride - axis.pad + \
        np.arange(axis.kernel)[None, :] * axis.dilation
    inside = (taps >= 0) & (taps < axis.size)
    extent = inside.sum(axis=1)
    start = np.where(extent > 0, taps[np.arange(axis.out), inside.argmax(axis=1)], 0)
    count_all = (taps < axis.size + axis.pad_end).sum(axis=1)

    made: dict[bytes, Expr] = {}

    def table(values, hint):
        """A constant when all positions agree, else a table (one per distinct content)."""
        if (values == values[0]).all():
            return const_int(int(values[0]))
        key = values.astype(np.int64).tobytes()
        if key not in made:
            made[key] = Load(ctx.constant(values.astype(np.int64), f"{o.name}_{hint}"), (o,))
        return made[key]
    return _Window(table(extent, "taps"), table(start, "start"), axis.dilation,
                   table(np.maximum(extent, 1), "count"),
                   table(np.maximum(count_all, 1), "count_all"))


class _Pool:
    """The loop nest of a pooling: output loops, window loops, and the tapped input element."""

    def __init__(self, ctx, X, axes: list[_Axis]):
        shape = ctx.shape(X)
        names = _SPATIAL_NAMES.get(len(axes)) or tuple(f"s{d}" for d in range(len(axes)))
        self.outer = [("n", shape[0]), ("c", shape[1])] + \
            [(name, a.out) for name, a in zip(names, axes, strict=True)]
        self.n, self.c = Var("n"), Var("c")
        self.outs = [Var(name) for name in names]
        self.taps = [Var(f"k{name}") for name in names]
        self.windows = [_window(ctx, a, o) for a, o in zip(axes, self.outs, strict=True)]
        self.yi = (self.n, self.c) + tuple(self.outs)
        self.spatial = tuple(w.pos(kk) for w, kk in zip(self.windows, self.taps, strict=True))
        self.x = Load(X, (self.n, self.c) + self.spatial)
        self.ctx, self.shape = ctx, shape

    def over_window(self, stmt):
        return loops([(kk.name, w.extent) for kk, w in zip(self.taps, self.windows, strict=True)],
                     lambda *_: stmt)

    def emit(self, *stmts) -> None:
        self.ctx.emit(loops(self.outer, lambda *_: seq(*stmts)), kind="reduce")

    def flat_index(self, column_major: bool, spatial) -> Expr:
        """The tap's offset in the whole input (ONNX MaxPool Indices); storage_order=1 counts
        the spatial axes column-major."""
        sizes = self.shape[2:]
        dims = list(zip(spatial, sizes, strict=True))
        if column_major:
            dims.reverse()
        flat = self.n * self.shape[1] + self.c
        for p, size in dims:
            flat = flat * size + p
        return simplify(flat)


def _lowest(dt: str):
    if dtypes.dtype(dt).is_float:
        return scalar(dt, float("-inf"))
    return scalar(dt, np.iinfo(dtypes.dtype(dt).numpy).min)


def _check_dtype(op: str, X, allow_int: bool) -> None:
    dt = dtypes.dtype(X.dtype)
    if not (dt.is_float or (allow_int and X.dtype in ("int8", "uint8"))):
        raise ModelError(f"{op}: dtype {X.dtype} is not supported")


@register("MaxPool", since=1)
def MaxPool(ctx, X, *, kernel_shape=None, strides=None, pads=None, dilations=None,
            auto_pad="NOTSET", ceil_mode=0, storage_order=0):
    _check_dtype("MaxPool", X, allow_int=True)
    Y = ctx.output(0)
    axes = _axes(ctx, "MaxPool", X, Y, kernel_shape, strides, pads, dilations, auto_pad)
    indices = ctx.outputs[1] if len(ctx.outputs) > 1 else None
    if indices is None and X.dtype == "float32" and len(axes) == 2:
        _max_pool_2d(ctx, X, Y, axes)
        return
    p = _Pool(ctx, X, axes)
    acc = Load(Y, p.yi)
    if indices is None:
        p.emit(Store(Y, p.yi, _lowest(X.dtype)),
               p.over_window(Store(Y, p.yi, Binary("max", acc, p.x))))
        return
    # Keep the first maximum (strictly greater replaces), as onnxruntime does.
    first = tuple(w.pos(const_int(0)) for w in p.windows)
    p.emit(Store(Y, p.yi, _lowest(X.dtype)),
           Store(indices, p.yi, p.flat_index(bool(storage_order), first)),
           p.over_window(IfThen(cmp("gt", p.x, acc), seq(
               Store(Y, p.yi, p.x),
               Store(indices, p.yi, p.flat_index(bool(storage_order), p.spatial))))))


def _max_pool_2d(ctx, X, Y, axes: list[_Axis]) -> None:
    """Float 2-D MaxPool as dense loops: the input padded with -inf (windows past the end
    included), then fixed windows accumulated like a depthwise convolution (a register tile
    of output rows by a vector of columns, the window unrolled)."""
    n, c = ctx.shape(X)[:2]
    (ah, aw) = axes
    # windows past the input's end read padding: none where the axis's windows are inside
    ends = [0 if a.inside else
            max(0, (a.out - 1) * a.stride + (a.kernel - 1) * a.dilation + 1 - a.size - a.pad)
            for a in axes]
    src = X
    if ah.pad or aw.pad or any(ends):
        src = pad_input(ctx, X, ctx.shape(X), [ah.pad, aw.pad], ends, float("-inf"))
    def nest(acc):
        def body(vn, vc, vh, vw, kh, kw):
            tap = Load(src, (vn, vc, vh * ah.stride + kh * ah.dilation,
                             vw * aw.stride + kw * aw.dilation))
            return Store(acc, (vn, vc, vh, vw), Binary("max", Load(acc, (vn, vc, vh, vw)), tap))
        return loops([("n", n), ("c", c), ("oh", ah.out), ("ow", aw.out), ("kh", ah.kernel),
                      ("kw", aw.kernel)], body)
    emit_accumulation(ctx, view(Y, n, c, ah.out, aw.out), lambda *p: _lowest(X.dtype), nest,
                      "depthwise")


@register("AveragePool", since=1)
def AveragePool(ctx, X, *, kernel_shape=None, strides=None, pads=None, dilations=None,
                auto_pad="NOTSET", ceil_mode=0, count_include_pad=0):
    _check_dtype("AveragePool", X, allow_int=False)
    Y = ctx.output(0)
    p = _Pool(ctx, X, _axes(ctx, "AveragePool", X, Y, kernel_shape, strides, pads, dilations,
                            auto_pad))
    count = const_int(1)
    for w in p.windows:
        count = count * (w.count_all if count_include_pad else w.count)
    count = simplify(count)
    divisor = scalar(X.dtype, as_int(count)) if as_int(count) is not None \
        else Cast(X.dtype, count)
    acc = Load(Y, p.yi)
    p.emit(Store(Y, p.yi, scalar(X.dtype, 0)),
           p.over_window(Store(Y, p.yi, acc + p.x)),
           Store(Y, p.yi, acc / divisor))


@register("LpPool", since=2)
def LpPool(ctx, X, *, kernel_shape=None, strides=None, pads=None, dilations=None,
           auto_pad="NOTSET", ceil_mode=0, p=2):
    """(sum over the window of |x| ^ p) ^ (1 / p); padding adds nothing."""
    _check_dtype("LpPool", X, allow_int=False)
    Y = ctx.output(0)
    pool = _Pool(ctx, X, _axes(ctx, "LpPool", X, Y, kernel_shape, strides, pads, dilations,
                               auto_pad))
    acc, dt = Load(Y, pool.yi), X.dtype
    power = (lambda x: x * x) if p == 2 else \
        (lambda x: Binary("pow", Unary("abs", x), scalar(dt, p)))
    root = (lambda s: Unary("sqrt", s)) if p == 2 else \
        (lambda s: Binary("pow", s, scalar(dt, 1.0 / p)))
    pool.emit(Store(Y, pool.yi, scalar(dt, 0)),
              pool.over_window(Store(Y, pool.yi, acc + power(pool.x))),
              Store(Y, pool.yi, root(acc)))


def _global(op: str, reduction: str):
    def lower(ctx, X):
        _check_dtype(op, X, allow_int=False)
        rank = len(ctx.shape(X))
        if rank < 3:
            raise ModelError(f"{op}: input rank {rank} < 3")
        reduce_into(ctx, X, ctx.output(0), tuple(range(2, rank)), 1, REDUCTIONS[reduction])
    lower.__name__ = op
    return lower


register("GlobalAveragePool", since=1)(_global("GlobalAveragePool", "ReduceMean"))
register("GlobalMaxPool", since=1)(_global("GlobalMaxPool", "ReduceMax"))


def _unpooled_shape(x_shape, kernel, pads, strides) -> tuple[int, ...]:
    """The shape MaxPool's input had: where its indices count (without output_shape)."""
    rank = len(kernel)
    pads = list(pads or [0] * 2 * rank)
    strides = list(strides or [1] * rank)
    spatial = [(x_shape[2 + d] - 1) * strides[d] + kernel[d] - pads[d] - pads[rank + d]
               for d in range(rank)]
    return (*x_shape[:2], *spatial)


def _moved_index(index, default, out_shape):
    """An index flat over the default unpooled shape, placed at the same coordinates of a
    larger output_shape (ONNX: the extra rows and columns stay zero)."""
    if tuple(default) == tuple(out_shape):
        return index
    at, stride_in, stride_out = const_int(0), 1, 1
    for d_in, d_out in zip(reversed(default), reversed(out_shape)):
        coord = Binary("mod", Binary("floordiv", index, const_int(stride_in)), const_int(d_in))
        at = at + coord * const_int(stride_out)
        stride_in, stride_out = stride_in * d_in, stride_out * d_out
    return at


@register("MaxUnpool", since=9)
def MaxUnpool(ctx, X, indices, output_shape=None, *, kernel_shape, pads=None, strides=None):
    """Zeros, then each value of X written where its index (from MaxPool: flat over the
    whole output) points; the scatter loop stays serial since indices may collide."""
    out = ctx.output(0)
    if output_shape is not None and ctx.const(output_shape) is None:   # read at run time
        check_equal(ctx, output_shape, ctx.shape(out), "the output_shape input")
    elif output_shape is not None:
        want = tuple(int(v) for v in np.asarray(const_input(ctx, output_shape,
                                                            "output_shape")).reshape(-1))
        if want != ctx.shape(out):
            raise ModelError(f"MaxUnpool: output_shape {list(want)} is not the inferred "
                             f"{list(ctx.shape(out))}")
    size = product(ctx.shape(out))
    flat = view(out, size)
    ctx.emit(loops([("k", size)], lambda k: Store(flat, (k,), scalar(out.dtype, 0))),
             kind="elementwise", stage="zero")
    top = const_int(size - 1)

    default = _unpooled_shape(ctx.shape(X), kernel_shape, pads, strides)

    def scatter(*v):
        at = _moved_index(Cast("int64", Load(indices, v)), default, ctx.shape(out))
        at = Binary("max", Binary("min", at, top), const_int(0))
        return Store(flat, (at,), Load(X, v))
    ctx.emit(loops([(f"i{d}", e) for d, e in enumerate(ctx.shape(X))], scatter),
             kind="generic", stage="scatter")
