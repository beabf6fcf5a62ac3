"""ConvTranspose over 1-D, 2-D and 3-D inputs, as onnxruntime computes it: a GEMM, then col2im.

The GEMM multiplies each group's weights, seen as [C/group, M/group * K] (K: the kernel taps),
by its input channels [C/group, pixels]: col[n, g, (m, k), i] is what input pixel i sends
through tap k to output channel m. col2im then gathers, for every output element, the few
(tap, pixel) pairs that reach it: along each axis the input position i = (o + pad - k * d) / s
must be whole and inside the input. Those pairs depend on one axis at a time, so they come from
small int64 tables indexed by the output position (static shapes make them known now): no
division at run time, and every table entry, filler included, indexes inside the buffers.
Gathering (not scattering) keeps each output element written by one iteration, so the default
schedule may run any output loop in parallel.

When the column matrix would be too large, each output element multiplies inputs by weights
itself (copies of both, input channels last, are the only temporaries; several times slower).
A 1x1 kernel with stride 1 and no padding needs no col2im: the GEMM writes the output.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import dtypes
from ..errors import ModelError
from ..loop.ir import (
    Binary,
    Const,
    Expr,
    For,
    IfThen,
    Load,
    Stmt,
    Store,
    Var,
    cmp,
    const_int,
    loops,
    seq,
)
from ..loop.symbolic import product
from ..loop.templates import template_vars
from .common import view
from .registry import register

_SPATIAL_NAMES = {1: ("w",), 2: ("h", "w"), 3: ("d", "h", "w")}
# Above this size the column matrix is not worth its memory: gather straight from the input.
COLUMN_LIMIT_BYTES = 1 << 28


@dataclass(frozen=True, slots=True)
class _Axis:
    """One spatial axis: static sizes, attributes and the padding before the output."""
    size: int
    out: int
    kernel: int
    stride: int
    dilation: int
    pad: int

    def taps(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For each output position: how many taps reach it, then [out, width] tables of those
        taps and of the input positions they read, in increasing tap order. Entries past a
        position's count are filler (in bounds, never read)."""
        t = np.arange(self.out)[:, None] + self.pad - \
            np.arange(self.kernel)[None, :] * self.dilation
        hit = (t % self.stride == 0) & (t >= 0) & (t < self.size * self.stride)
        count = hit.sum(axis=1)
        width = max(1, int(count.max()))
        first = np.argsort(~hit, axis=1, kind="stable")[:, :width]   # hit taps first
        valid = np.arange(width)[None, :] < count[:, None]
        taps = np.where(valid, first, 0)
        pos = np.where(valid, np.take_along_axis(t, first, axis=1) // self.stride, 0)
        return count, taps, pos


def _per_axis(name: str, values, nd: int, default: int, low: int) -> tuple[int, ...]:
    values = tuple(int(v) for v in values) if values else (default,) * nd
    if len(values) != nd:
        raise ModelError(f"ConvTranspose: {name} must have {nd} values, got {list(values)}")
    if min(values) < low:
        raise ModelError(f"ConvTranspose: {name} must be at least {low}, got {list(values)}")
    return values


def _axes(xs, ws, ys, auto_pad, dilations, kernel_shape, output_padding, output_shape, pads,
          strides) -> list[_Axis]:
    """Axes with the padding before the output; ONNX rules, with onnxruntime's choices where
    the spec leaves room (a negative total padding counts as none)."""
    nd = len(xs) - 2
    kernel = tuple(ws[2:])
    if kernel_shape is not None and tuple(kernel_shape) != kernel:
        raise ModelError(f"ConvTranspose: kernel_shape {list(kernel_shape)} does not match "
                         f"the weights {list(ws)}")
    strides = _per_axis("strides", strides, nd, 1, 1)
    dilations = _per_axis("dilations", dilations, nd, 1, 1)
    extra = _per_axis("output_padding", output_padding, nd, 0, 0)
    pads = _per_axis("pads", pads, 2 * nd, 0, 0)
    if output_shape is not None:
        output_shape = _per_axis("output_shape", output_shape, nd, 1, 1)
    if auto_pad not in ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"):
        raise ModelError(f"ConvTranspose: unknown auto_pad {auto_pad!r}")
    rows = []
    for d in range(nd):
        size, k, s, dil = xs[2 + d], kernel[d], strides[d], dilations[d]
        full = s * (size - 1) + extra[d] + (k - 1) * dil + 1
        if output_shape is not None or auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            out = output_shape[d] if output_shape is not None else size * s
            total = max(0, full - out)
            begin = total // 2 if auto_pad == "SAME_UPPER" else total - total // 2
        elif auto_pad == "VALID":
            begin, out = 0, full
        else:
            begin, out = pads[d], full - pads[d] - pads[nd + d]
        rows.append(_Axis(size, out, k, s, dil, begin))
    got = tuple(a.out for a in rows)
    if min(got) < 1 or got != tuple(ys[2:]):
        raise ModelError(f"ConvTranspose: computed output size {list(got)} does not match "
                         f"the inferred shape {list(ys)}")
    return rows


def _lookup(ctx, values: np.ndarray, o: Var, j: Var, hint: str) -> Expr:
    """A table entry at (o, j): a constant, or a 1-D table when every position agrees;
    otherwise the 2-D table."""
    if (values == values.flat[0]).all():
        return const_int(int(values.flat[0]))
    if (values == values[0]).all():
        return Load(ctx.constant(values[0].astype(np.int64), hint), (j,))
    return Load(ctx.constant(values.astype(np.int64), hint), (o, j))


def _tap_loop(ctx, axis: _Axis, o: Var, j: Var, body: Stmt) -> Stmt:
    """The loop over the taps reaching output position o. It runs a constant extent (the
    most taps any position gets: the C compiler unrolls it), and where positions get fewer,
    a guard against a per-position count skips the filler entries."""
    count, taps, _ = axis.taps()
    if (count != count[0]).any():
        table = ctx.constant(count.astype(np.int64), f"{o.name}_taps")
        body = IfThen(cmp("lt", j, Load(table, (o,))), body)
    return For(j, const_int(taps.shape[1]), body)


def _per_output(ctx, B, axes: list[_Axis], group: int, accumulate) -> None:
    """Each output element Y[n, g*Mg + m, o...] set to the bias (or 0), then the statement
    accumulate(n, g, m, o, add) adds to it, add(term) being the store of element + term."""
    Y = ctx.output(0)
    ys = ctx.shape(Y)
    mg = ys[1] // group
    Yv = view(Y, ys[0], group, mg, *ys[2:])
    names = _SPATIAL_NAMES[len(axes)]

    def body(n, g, m, *o):
        idx = (n, g, m) + tuple(o)
        init = Load(B, (g * mg + m,)) if B is not None else Const(0.0, Y.dtype)
        add = lambda term: Store(Yv, idx, Load(Yv, idx) + term)   # noqa: E731
        return seq(Store(Yv, idx, init), accumulate(n, g, m, list(o), add))
    ctx.emit(loops([("n", ys[0]), ("g", group), ("m", mg)] +
                   [(name, a.out) for name, a in zip(names, axes, strict=True)], body),
             kind="generic", stage="gather")


def _col2im(ctx, col, B, axes: list[_Axis], group: int) -> None:
    """Each output element gathers its taps from the column matrix: one table per axis
    gives the tap's and input position's share of the flat index."""
    shape = ctx.shape(col)
    step = [product(shape[d + 1:]) for d in range(len(shape))]
    nd, mg = len(axes), shape[2]
    offsets = [a.taps()[1] * step[3 + d] + a.taps()[2] * step[3 + nd + d]
               for d, a in enumerate(axes)]
    flat = view(col, product(shape))

    def accumulate(n, g, m, outs, add):
        if not all(a.taps()[0].any() for a in axes):
            return None     # no tap reaches any output along some axis: the bias only
        taps = [Var(f"k{o.name}") for o in outs]
        at = ((n * group + g) * mg + m) * step[2]
        for off, o, j in zip(offsets, outs, taps, strict=True):
            at = at + _lookup(ctx, off, o, j, f"{o.name}_offset")
        stmt = add(Load(flat, (at,)))
        for a, o, j in reversed(list(zip(axes, outs, taps, strict=True))):
            stmt = _tap_loop(ctx, a, o, j, stmt)
        return stmt
    _per_output(ctx, B, axes, group, accumulate)


def _channels_last(ctx, buf, shape, hint: str):
    """buf seen as [a, b, c, d], copied as [a, b, d, c]; a constant is reordered now."""
    data = ctx.const(buf)
    if data is not None:
        return ctx.constant(np.ascontiguousarray(data.reshape(shape).swapaxes(2, 3)), hint)
    src, dst = view(buf, *shape), ctx.temp(buf.dtype, shape[:2] + shape[:1:-1], hint)
    ctx.emit(loops([("a", shape[0]), ("b", shape[1]), ("c", shape[2]), ("d", shape[3])],
                   lambda a, b, c, d: Store(dst, (a, b, d, c), Load(src, (a, b, c, d)))),
             kind="elementwise", stage=hint)
    return dst


def _direct(ctx, X, W, B, axes: list[_Axis], group: int) -> None:
    """No column matrix: each output element sums input times weight over every tap whose
    input position i = (o + pad - k * d) / s is whole and inside the input (a guard; no
    int tables, so the kernel stays float-only and its innermost loop, over the input
    channels, read channels-last, vectorizes as a dot product)."""
    xs, ws = ctx.shape(X), ctx.shape(W)
    n, cg, pixels, rows = xs[0], xs[1] // group, product(xs[2:]), product(ws[1:])
    Xt = view(_channels_last(ctx, X, (n, group, cg, pixels), "input_nhwc"),
              n, group, *xs[2:], cg)
    Wt = view(_channels_last(ctx, W, (1, group, cg, rows), "weights_nhwc"),
              group, *ws[1:], cg)

    def accumulate(n, g, m, outs, add):
        taps = [Var(f"k{o.name}") for o in outs]
        at = [o + a.pad - k * a.dilation for a, o, k in zip(axes, outs, taps, strict=True)]
        pos = [t // a.stride if a.stride > 1 else t for a, t in zip(axes, at, strict=True)]
        stmt = loops([("c", cg)], lambda c: add(
            Load(Xt, (n, g, *pos, c)) * Load(Wt, (g, m, *taps, c))))
        for a, t, k in reversed(list(zip(axes, at, taps, strict=True))):
            inside = Binary("and", cmp("ge", t, 0), cmp("lt", t, a.size * a.stride))
            if a.stride > 1:
                inside = Binary("and", inside, cmp("eq", t % a.stride, 0))
            stmt = For(k, const_int(a.kernel), IfThen(inside, stmt))
        return stmt
    _per_output(ctx, B, axes, group, accumulate)


def _columns(ctx, X, W, col, group: int, init=None) -> None:
    """col[n, g, r, i] = init + sum over c of W[g, c, r] * X[n, g, c, i]: rows r run over
    (output channel, tap), columns i over input pixels; loops named as MatMul's (i, j, k)
    so that the matmul schedule tiles it."""
    xs, ws = ctx.shape(X), ctx.shape(W)
    n, cg = xs[0], ws[0] // group
    rows, pixels = product(ws[1:]), product(xs[2:])
    Xv, Wv = view(X, n, group, cg, pixels), view(W, group, cg, rows)
    Cv = view(col, n, group, rows, pixels)

    def body(vn, vg, i, j, k):
        idx = (vn, vg, i, j)
        return Store(Cv, idx, Load(Cv, idx) + Load(Wv, (vg, k, i)) * Load(Xv, (vn, vg, k, j)))
    p = tuple(template_vars(4))
    start = init(*p) if init is not None else Const(0.0, col.dtype)
    ctx.emit(loops([("n", n), ("g", group), ("i", rows), ("j", pixels), ("k", cg)], body),
             kind="matmul", stage="gemm", prologue=Store(Cv, p, start))


def _pointwise(axes: list[_Axis]) -> bool:
    """A 1x1 kernel, stride 1, no padding: the GEMM's columns are the output's pixels."""
    return all(a.kernel == 1 and a.stride == 1 and a.pad == 0 and a.out == a.size
               for a in axes)


@register("ConvTranspose", since=1)
def ConvTranspose(ctx, X, W, B=None, *, auto_pad="NOTSET", dilations=None, group=1,
                  kernel_shape=None, output_padding=None, output_shape=None, pads=None,
                  strides=None):
    xs, ws, ys = ctx.shape(X), ctx.shape(W), ctx.shape(ctx.output(0))
    nd = len(xs) - 2
    if nd not in _SPATIAL_NAMES or not dtypes.dtype(X.dtype).is_float:
        raise ModelError(f"ConvTranspose: only 1-D/2-D/3-D float inputs are supported "
                         f"(got {nd}-D {X.dtype})")
    if len(ws) != nd + 2 or group < 1 or xs[1] % group or ws[0] != xs[1] or \
            ys[1] != ws[1] * group:
        raise ModelError(f"ConvTranspose: input {list(xs)}, weights {list(ws)} and output "
                         f"{list(ys)} do not match group={group}")
    if B is not None and ctx.shape(B) != (ys[1],):
        raise ModelError(f"ConvTranspose: bias shape {list(ctx.shape(B))} is not [{ys[1]}]")
    axes = _axes(xs, ws, ys, auto_pad, dilations, kernel_shape, output_padding, output_shape,
                 pads, strides)
    mg, kernel = ws[1], tuple(ws[2:])
    if _pointwise(axes):
        init = (lambda vn, vg, i, j: Load(B, (vg * mg + i,))) if B is not None else None
        _columns(ctx, X, W, ctx.output(0), group, init)
        return
    col_shape = (xs[0], group, mg, *kernel, *xs[2:])
    if product(col_shape) * dtypes.itemsize(X.dtype) <= COLUMN_LIMIT_BYTES:
        col = ctx.temp(X.dtype, col_shape, "columns")
        _columns(ctx, X, W, col, group)
        _col2im(ctx, col, B, axes, group)
        return
    _direct(ctx, X, W, B, axes, group)
