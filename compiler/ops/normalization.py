"""Softmax, LogSoftmax, LpNormalization, LayerNormalization, InstanceNormalization and
BatchNormalization (inference).

The row-wise ops see their input as rows x K (x B when the axis is not the last one): one
kernel whose outer loops run over the rows, which are independent, and whose body is a few
passes over the row (max, sum of exponentials, normalize). Per-row scalars live in small
temporaries indexed by the row, so that every store depends on the row loops.
"""
from __future__ import annotations

import numpy as np

from .. import dtypes
from ..errors import ModelError
from ..loop.ir import Binary, Buffer, Cast, Const, Load, Select, Store, Unary, Var, cmp, loops, seq
from ..loop.symbolic import product
from .common import ZERO, check_broadcast, load_broadcast, view
from .elementwise import emit_elementwise
from .reduce import REDUCTIONS, normalize_axes, reduce_into, scalar
from .registry import INTERNAL_DOMAIN, register


def _size(shape) -> int:
    return product(shape)


def _check_float(op: str, X) -> None:
    if not dtypes.dtype(X.dtype).is_float:
        raise ModelError(f"{op}: dtype {X.dtype} is not supported (floating point only)")


class _Cell:
    """One per-row scalar: a temporary element addressed by the row variables."""

    def __init__(self, buf: Buffer, index):
        self.buf, self.index = buf, tuple(index)

    @property
    def get(self) -> Load:
        return Load(self.buf, self.index)

    def set(self, value) -> Store:
        return Store(self.buf, self.index, value)


class _Rows:
    """X and Y seen as (A, K) or (A, K, B): rows (i, j) are independent, k runs along K.
    flatten: K is every axis from `axis` on (Softmax before opset 13, LayerNormalization)."""

    def __init__(self, ctx, op: str, X, Y, axis: int, flatten: bool):
        shape = ctx.shape(X)
        (ax,) = normalize_axes((axis,), len(shape), op)
        a = _size(shape[:ax])
        self.k = _size(shape[ax:]) if flatten else shape[ax]
        b = 1 if flatten else _size(shape[ax + 1:])
        inner = not isinstance(b, int) or b > 1     # a symbolic extent may exceed 1
        self.extents = [("i", a)] + ([("j", b)] if inner else [])
        self.rows = tuple(Var(name) for name, _ in self.extents)
        dims = (a, self.k) + ((b,) if inner else ())
        self.X, self.Y = view(X, *dims), view(Y, *dims)
        self.ctx, self.axis, self.norm_shape = ctx, ax, shape[ax:]

    def _index(self, k):
        return (self.rows[0], k) + self.rows[1:]

    def x(self, k) -> Load:
        return Load(self.X, self._index(k))

    def y(self, k) -> Load:
        return Load(self.Y, self._index(k))

    def set_y(self, k, value) -> Store:
        return Store(self.Y, self._index(k), value)

    def cell(self, hint: str, buf: Buffer | None = None) -> _Cell:
        """A per-row scalar: in `buf` (an optional output holding one value per row) or in a
        new temporary."""
        row_shape = [e for _, e in self.extents]
        buf = view(buf, *row_shape) if buf is not None else \
            self.ctx.temp(self.X.dtype, row_shape, hint)
        return _Cell(buf, self.rows)

    def over(self, name: str, fn):
        """A pass along the row: fn(k) is the loop body."""
        return loops([(name, self.k)], fn)

    def emit(self, *stmts) -> None:
        self.ctx.emit(loops(self.extents, lambda *_: seq(*stmts)), kind="reduce")


# -- Softmax and LogSoftmax ---------------------------------------------------------------------

def _softmax(ctx, X, axis: int, flatten: bool, op: str, log: bool) -> None:
    _check_float(op, X)
    r = _Rows(ctx, op, X, ctx.output(0), axis, flatten)
    m, s = r.cell("max"), r.cell("sum")
    stmts = [m.set(r.x(ZERO)),
             r.over("k_max", lambda k: m.set(Binary("max", m.get, r.x(k)))),
             s.set(scalar(X.dtype, 0))]
    if log:
        # y = x - (max + log(sum(exp(x - max))))
        stmts += [r.over("k_sum", lambda k: s.set(s.get + Unary("exp", r.x(k) - m.get))),
                  s.set(m.get + Unary("log", s.get)),
                  r.over("k", lambda k: r.set_y(k, r.x(k) - s.get))]
    else:
        # y holds exp(x - max) after the second pass; the third scales it by 1 / sum
        stmts += [r.over("k_exp", lambda k: seq(r.set_y(k, Unary("exp", r.x(k) - m.get)),
                                                s.set(s.get + r.y(k)))),
                  s.set(Unary("reciprocal", s.get)),
                  r.over("k", lambda k: r.set_y(k, r.y(k) * s.get))]
    r.emit(*stmts)


@register("Softmax", since=13)
def Softmax(ctx, X, *, axis=-1):
    _softmax(ctx, X, axis, False, "Softmax", log=False)


@register("Softmax", since=1, until=12)
def Softmax_1(ctx, X, *, axis=1):
    # Before opset 13 the input is flattened to 2-D at `axis` and normalized per row.
    _softmax(ctx, X, axis, True, "Softmax", log=False)


def _hardmax(ctx, X, axis: int, flatten: bool) -> None:
    """1 at the first largest element of each row, 0 elsewhere."""
    _check_float("Hardmax", X)
    r = _Rows(ctx, "Hardmax", X, ctx.output(0), axis, flatten)
    m, first, dt = r.cell("max"), r.cell("first"), X.dtype

    def at(k):   # the position k as a value of X's type (exact below 2^24)
        return Cast(dt, k)
    r.emit(m.set(r.x(ZERO)),
           r.over("k_max", lambda k: m.set(Binary("max", m.get, r.x(k)))),
           first.set(scalar(dt, r.k)),
           r.over("k_first", lambda k: first.set(Select(
               cmp("eq", r.x(k), m.get), Binary("min", first.get, at(k)), first.get))),
           r.over("k", lambda k: r.set_y(k, Select(cmp("eq", at(k), first.get),
                                                   scalar(dt, 1), scalar(dt, 0)))))


@register("Hardmax", since=13)
def Hardmax(ctx, X, *, axis=-1):
    _hardmax(ctx, X, axis, False)


@register("Hardmax", since=1, until=12)
def Hardmax_1(ctx, X, *, axis=1):
    _hardmax(ctx, X, axis, True)


@register("LogSoftmax", since=13)
def LogSoftmax(ctx, X, *, axis=-1):
    _softmax(ctx, X, axis, False, "LogSoftmax", log=True)


@register("LogSoftmax", since=1, until=12)
def LogSoftmax_1(ctx, X, *, axis=1):
    _softmax(ctx, X, axis, True, "LogSoftmax", log=True)


# -- LpNormalization ----------------------------------------------------------------------------

_LP_TERMS = {1: lambda x: Unary("abs", x), 2: lambda x: x * x}
_LP_INVERSE = {1: lambda s: Unary("reciprocal", s),
               2: lambda s: Unary("reciprocal", Unary("sqrt", s))}


@register("LpNormalization", since=1)
def LpNormalization(ctx, X, *, axis=-1, p=2):
    _check_float("LpNormalization", X)
    if p not in _LP_TERMS:
        raise ModelError(f"LpNormalization: p must be 1 or 2, not {p}")
    r = _Rows(ctx, "LpNormalization", X, ctx.output(0), axis, False)
    s = r.cell("norm")
    r.emit(s.set(scalar(X.dtype, 0)),
           r.over("k_sum", lambda k: s.set(s.get + _LP_TERMS[p](r.x(k)))),
           # an all-zero row stays zero (ONNX's reference), not 0 * inf = NaN
           s.set(Select(cmp("eq", s.get, scalar(X.dtype, 0)), scalar(X.dtype, 0),
                        _LP_INVERSE[p](s.get))),
           r.over("k", lambda k: r.set_y(k, r.x(k) * s.get)))


# -- LayerNormalization and InstanceNormalization --------------------------------------------

def _standardize(r: _Rows, mean: _Cell, inv: _Cell, epsilon: float, affine):
    """Per row: mean, 1 / sqrt(variance + epsilon) (two passes), then y = affine(k, z)
    with z the standardized element."""
    dt = r.X.dtype
    n = scalar(dt, r.k)

    def centered(k):
        return r.x(k) - mean.get
    return [mean.set(scalar(dt, 0)),
            r.over("k_mean", lambda k: mean.set(mean.get + r.x(k))),
            mean.set(mean.get / n),
            inv.set(scalar(dt, 0)),
            r.over("k_var", lambda k: inv.set(inv.get + centered(k) * centered(k))),
            inv.set(Unary("reciprocal", Unary("sqrt", inv.get / n + scalar(dt, epsilon)))),
            r.over("k", lambda k: r.set_y(k, affine(k, centered(k) * inv.get)))]


def _param_along(ctx, P, norm_shape, k):
    """P (broadcastable to norm_shape) at flat position k of the normalized block."""
    size = _size(norm_shape)
    check_broadcast(ctx, "a scale or bias", ctx.shape(P), norm_shape)
    if _size(ctx.shape(P)) == size:
        return Load(view(P, size), (k,))
    # A smaller broadcast: recover the block's coordinates from k (non-negative, so // is fine).
    coords, stride = [], size
    for dim in norm_shape:
        stride //= dim
        coords.append((k // stride) % dim if dim > 1 else ZERO)
    return load_broadcast(P, coords)


@register("LayerNormalization", since=17)
@register("LayerNormalization", domain=INTERNAL_DOMAIN)
def LayerNormalization(ctx, X, Scale, B=None, *, axis=-1, epsilon=1e-5, stash_type=1):
    _check_float("LayerNormalization", X)
    r = _Rows(ctx, "LayerNormalization", X, ctx.output(0), axis, True)
    outs = list(ctx.outputs) + [None, None]
    mean, inv = r.cell("mean", outs[1]), r.cell("invstd", outs[2])

    def affine(k, z):
        y = z * _param_along(ctx, Scale, r.norm_shape, k)
        return y if B is None else y + _param_along(ctx, B, r.norm_shape, k)
    r.emit(*_standardize(r, mean, inv, epsilon, affine))


@register("RMSNormalization", since=23)
def RMSNormalization(ctx, X, scale, *, axis=-1, epsilon=1e-5, stash_type=1):
    """y = x / sqrt(mean(x^2) + epsilon) * scale over the axes from `axis` on."""
    _check_float("RMSNormalization", X)
    r = _Rows(ctx, "RMSNormalization", X, ctx.output(0), axis, True)
    inv, dt = r.cell("invrms"), X.dtype
    r.emit(inv.set(scalar(dt, 0)),
           r.over("k_sq", lambda k: inv.set(inv.get + r.x(k) * r.x(k))),
           inv.set(Unary("reciprocal", Unary("sqrt", inv.get / scalar(dt, r.k)
                                             + scalar(dt, epsilon)))),
           r.over("k", lambda k: r.set_y(k, r.x(k) * inv.get
                                         * _param_along(ctx, scale, r.norm_shape, k))))


@register("GroupNormalization", since=21)   # onnx.checker rejects version 18 as deprecated
def GroupNormalization(ctx, X, scale, bias, *, num_groups, epsilon=1e-5, stash_type=1):
    """Each (sample, group of channels) standardized as one row; scale and bias per
    channel."""
    _check_float("GroupNormalization", X)
    shape = ctx.shape(X)
    if len(shape) < 2 or shape[1] % num_groups:
        raise ModelError(f"GroupNormalization: shape {shape} in {num_groups} groups")
    n, c = shape[0], shape[1]
    per, spatial = c // num_groups, _size(shape[2:])
    rows = (n * num_groups, per * spatial)
    r = _Rows(ctx, "GroupNormalization", view(X, *rows), view(ctx.output(0), *rows), 1, True)
    group = r.rows[0] % num_groups

    def affine(k, z):
        at = (group * per + k // spatial,)
        return z * Load(scale, at) + Load(bias, at)
    r.emit(*_standardize(r, r.cell("mean"), r.cell("invstd"), epsilon, affine))


@register("MeanVarianceNormalization", since=9)
def MeanVarianceNormalization(ctx, X, *, axes=(0, 2, 3)):
    """(x - mean) / (sqrt(mean(x^2) - mean^2) + 1e-9) over `axes`, as ONNX's function."""
    _check_float("MeanVarianceNormalization", X)
    shape, dt = ctx.shape(X), X.dtype
    axes = normalize_axes(axes, len(shape), "MeanVarianceNormalization")
    kept = tuple(1 if d in axes else n for d, n in enumerate(shape))
    mean, sq_mean = ctx.temp(dt, kept, "mean"), ctx.temp(dt, kept, "sqmean")
    squares = ctx.temp(dt, shape, "squares")
    emit_elementwise(ctx, lambda x: x * x, X, out=squares)
    reduce_into(ctx, X, mean, axes, 1, REDUCTIONS["ReduceMean"])
    reduce_into(ctx, squares, sq_mean, axes, 1, REDUCTIONS["ReduceMean"])
    emit_elementwise(ctx, lambda x, m, q: (x - m) / (Unary("sqrt", q - m * m)
                                                     + scalar(dt, 1e-9)), X, mean, sq_mean)


@register("LRN", since=1)
def LRN(ctx, X, *, size, alpha=1e-4, beta=0.75, bias=1.0):
    """y = x / (bias + alpha / size * sum of x^2 over `size` neighbouring channels) ^ beta."""
    _check_float("LRN", X)
    shape, out, dt = ctx.shape(X), ctx.output(0), X.dtype
    if len(shape) < 3 or size < 1:
        raise ModelError(f"LRN: input of shape {shape} with size {size}")
    before = (size - 1) // 2
    acc = ctx.temp(dt, shape, "sumsq")

    def element(n, c, *rest):
        at = (n, c) + rest
        near = c + Const(-before, "int64")

        def add(t):
            ch = near + t
            inside = Binary("and", cmp("ge", ch, ZERO), cmp("lt", ch, Const(shape[1], "int64")))
            x = Load(X, (n, Binary("max", Binary("min", ch, Const(shape[1] - 1, "int64")),
                                   ZERO)) + rest)
            return Store(acc, at, Load(acc, at) + Select(inside, x * x, scalar(dt, 0)))
        return seq(Store(acc, at, scalar(dt, 0)), loops([("t", size)], add),
                   Store(out, at, Load(X, at) / Binary("pow", scalar(dt, bias) + scalar(
                       dt, alpha / size) * Load(acc, at), scalar(dt, beta))))
    names = [("n", shape[0]), ("c", shape[1])] + [(f"s{d}", e) for d, e in
                                                  enumerate(shape[2:])]
    ctx.emit(loops(names, element), kind="elementwise")


@register("InstanceNormalization", since=1)
def InstanceNormalization(ctx, X, scale, B, *, epsilon=1e-5, consumed_inputs=None):
    _check_float("InstanceNormalization", X)
    shape = ctx.shape(X)
    if len(shape) < 3:
        raise ModelError(f"InstanceNormalization: input rank {len(shape)} < 3")
    r = _Rows(ctx, "InstanceNormalization", X, ctx.output(0), 2, True)
    channel = (r.rows[0] % shape[1],)    # row i is (n, c) flattened: c = i % C

    def affine(k, z):
        return z * Load(scale, channel) + Load(B, channel)
    r.emit(*_standardize(r, r.cell("mean"), r.cell("invstd"), epsilon, affine))


# -- BatchNormalization (inference) ------------------------------------------------------------

def _bn_params(ctx, X, params, epsilon, spatial):
    """(a, b) buffers with y = x * a + b, shaped to broadcast against X (numpy rules)."""
    rank = len(ctx.shape(X))
    values = [ctx.const(p) for p in params]
    if any(v is None for v in values):
        return None
    scale, bias, mean, var = (np.asarray(v, np.float64) for v in values)
    a = scale / np.sqrt(var + epsilon)
    b = bias - mean * a
    np_dtype = dtypes.dtype(X.dtype).numpy
    if spatial:
        a, b = (t.reshape((-1,) + (1,) * (rank - 2)) for t in (a, b))
    return ctx.constant(a.astype(np_dtype), "scale"), ctx.constant(b.astype(np_dtype), "shift")


def _batchnorm(ctx, X, params, epsilon, spatial):
    _check_float("BatchNormalization", X)
    if any(o is not None for o in ctx.outputs[1:]):
        raise ModelError("BatchNormalization: the running/saved statistics outputs exist only "
                         "in training mode, which is not supported")
    folded = _bn_params(ctx, X, params, epsilon, spatial)
    if folded is not None:
        emit_elementwise(ctx, lambda x, a, b: x * a + b, X, *folded)
        return
    rank = len(ctx.shape(X))
    if spatial:
        params = [view(p, ctx.shape(p)[0], *([1] * (rank - 2))) for p in params]
    eps = scalar(X.dtype, epsilon)
    emit_elementwise(ctx, lambda x, s, b, m, v: (x - m) * (s / Unary("sqrt", v + eps)) + b,
                     X, *params)


def _batchnorm_shapes(ins, consts, attrs):
    """Y like X; the training outputs (running and saved statistics) one value per channel:
    onnx leaves those untyped, and the lowering, not a failed evaluation, explains them."""
    x = ins[0]
    channels = (x.shape[1],) if len(x.shape) > 1 else (1,)
    return [(x.dtype, tuple(x.shape))] + [(x.dtype, channels)] * 4


@register("BatchNormalization", since=7, shape=_batchnorm_shapes)
def BatchNormalization(ctx, X, scale, B, mean, var, *, epsilon=1e-5, momentum=0.9,
                       training_mode=0, spatial=1):
    if training_mode:
        _batchnorm_training(ctx, X, (scale, B, mean, var), epsilon, momentum)
        return
    _batchnorm(ctx, X, (scale, B, mean, var), epsilon, spatial)


def _batchnorm_training(ctx, X, params, epsilon, momentum):
    """training_mode=1 (opset 14+): normalize with this batch's statistics over every axis
    but the channels; the optional outputs are the updated running mean and variance."""
    _check_float("BatchNormalization", X)
    shape, dt = ctx.shape(X), X.dtype
    if len(shape) < 2:
        raise ModelError(f"BatchNormalization: input rank {len(shape)} < 2")
    axes = (0,) + tuple(range(2, len(shape)))
    per_channel = (shape[1],) + (1,) * (len(shape) - 2)
    mean, var = ctx.temp(dt, (shape[1],), "mean"), ctx.temp(dt, (shape[1],), "var")
    squares = ctx.temp(dt, shape, "centered_sq")
    reduce_into(ctx, X, mean, axes, 0, REDUCTIONS["ReduceMean"])
    mean_b = view(mean, *per_channel)
    emit_elementwise(ctx, lambda x, m: (x - m) * (x - m), X, mean_b, out=squares)
    reduce_into(ctx, squares, var, axes, 0, REDUCTIONS["ReduceMean"])
    scale, bias, run_mean, run_var = params
    eps = scalar(dt, epsilon)
    emit_elementwise(ctx, lambda x, m, v, s, b: (x - m) / Unary("sqrt", v + eps) * s + b,
                     X, mean_b, view(var, *per_channel), view(scale, *per_channel),
                     view(bias, *per_channel))
    keep, take = scalar(dt, momentum), scalar(dt, 1 - momentum)
    for out, running, current in ((1, run_mean, mean), (2, run_var, var)):
        if out < len(ctx.outputs) and ctx.outputs[out] is not None:
            emit_elementwise(ctx, lambda r, c: r * keep + c * take, running, current,
                             out=ctx.outputs[out])


@register("BatchNormalization", since=1, until=6, shape=_batchnorm_shapes)
def BatchNormalization_1(ctx, X, scale, B, mean, var, *, epsilon=1e-5, momentum=0.9,
                         is_test=0, spatial=1, consumed_inputs=None):
    if not is_test:
        raise ModelError("BatchNormalization: is_test=0 (training) is not supported; "
                         "opsets before 7 need is_test=1")
    _batchnorm(ctx, X, (scale, B, mean, var), epsilon, spatial)

