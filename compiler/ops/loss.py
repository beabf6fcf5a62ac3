"""Losses over class scores: NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss.

The input [N, C, d1, ...] is seen as (N, C, D) with D the product of the trailing axes, the
target [N, d1, ...] as (N, D): every position (n, d) picks its class t = target[n, d] at run
time. Its loss is -weight[t] * x[n, t, d], or 0 (with weight 0) where t is ignore_index.
Reduction "none" is one nest over the positions; "sum" and "mean" one serial nest folding them
into the scalar output (mean divides by the summed weights, so ignored positions do not count).
SoftmaxCrossEntropyLoss first computes log(sum(exp(x))) per position (and log_prob when asked),
then the same loss with x[n, t, d] - lse[n, d] as the picked value.
"""
from __future__ import annotations

from .. import dtypes
from ..loop.ir import Binary, Buffer, Cast, Load, Select, Store, Unary, cmp, const_int, loops, seq
from .common import ZERO, view
from .indexing import wrap_index
from .reduce import scalar
from .registry import register
from .shape import fail

REDUCTIONS = ("none", "sum", "mean")


class _Positions:
    """The input as (N, C[, D]) and the target as (N[, D]), with loops n (and d when the
    input has trailing axes) over the positions that each pick one class."""

    def __init__(self, ctx, X, target, weight, reduction: str):
        shape = ctx.shape(X)
        if reduction not in REDUCTIONS:
            raise fail(ctx, f"reduction {reduction!r} is not one of {', '.join(REDUCTIONS)}")
        if len(shape) < 2:
            raise fail(ctx, f"input of shape {shape} has no class axis (rank < 2)")
        if not dtypes.dtype(X.dtype).is_float:
            raise fail(ctx, f"input dtype {X.dtype} is not supported (floating point only)")
        if target.dtype not in ("int32", "int64"):
            raise fail(ctx, f"target dtype {target.dtype} is not int32 or int64")
        if ctx.shape(target) != shape[:1] + shape[2:]:
            raise fail(ctx, f"target of shape {ctx.shape(target)} does not fit input {shape}")
        if weight is not None and ctx.shape(weight) != shape[1:2]:
            raise fail(ctx, f"weight of shape {ctx.shape(weight)} is not ({shape[1]},)")
        self.n, self.c = shape[0], shape[1]
        self.d = 1
        for dim in shape[2:]:
            self.d *= dim
        self.extents = [("n", self.n)] + ([("d", self.d)] if self.d > 1 else [])
        self.ctx, self.dtype = ctx, X.dtype
        self.X = self.input_view(X)
        self.target = view(target, *(e for _, e in self.extents))

    def input_view(self, buf):
        """buf (shaped like the input) as (N, C[, D])."""
        return view(buf, self.n, self.c, *([self.d] if self.d > 1 else []))

    def row_buffer(self, buf=None, hint: str = "row"):
        """A buffer with one value per position: buf seen as (N[, D]), or a new temporary."""
        shape = [e for _, e in self.extents]
        return view(buf, *shape) if buf is not None else self.ctx.temp(self.dtype, shape, hint)

    @staticmethod
    def at(pos, c) -> tuple:
        """Index of class c at position pos = (n[, d]) into an (N, C[, D]) buffer."""
        return (pos[0], c) + tuple(pos[1:])

    def nest(self, body_fn):
        return loops(self.extents, lambda *pos: body_fn(pos))


def _terms(p: _Positions, pos, picked, weight, ignore_index):
    """(loss, weight) of one position: picked(pos, class) is the value the loss negates."""
    raw = Load(p.target, pos)
    t = raw if raw.dtype == "int64" else Cast("int64", raw)
    # Wrapped, the class stays inside the buffers even for an ignored or out-of-range target
    # (out of range is undefined in ONNX): both arms of a Select are evaluated.
    cls = wrap_index(t, p.c)
    w = scalar(p.dtype, 1) if weight is None else Load(weight, (cls,))
    loss = Unary("neg", picked(pos, cls))
    loss = loss if weight is None else loss * w
    if ignore_index is None:
        return loss, w
    kept = cmp("ne", t, const_int(int(ignore_index)))
    zero = scalar(p.dtype, 0)
    return Select(kept, loss, zero), Select(kept, w, zero)


def _emit_loss(p: _Positions, picked, weight, reduction: str, ignore_index) -> None:
    out = p.ctx.output(0)
    if reduction == "none":
        Y = p.row_buffer(out)
        p.ctx.emit(p.nest(lambda pos: Store(
            Y, pos, _terms(p, pos, picked, weight, ignore_index)[0])), kind="elementwise")
        return
    # One serial fold into the scalar output; for a mean that some weight or ignored target
    # makes uneven, the weights are summed alongside (a float sum of ones stalls at 2^24).
    Y, at = view(out, 1), (ZERO,)
    total = Load(Y, at)
    uneven = weight is not None or ignore_index is not None
    W = p.ctx.temp(p.dtype, (1,), "weight_sum") if reduction == "mean" and uneven else None
    divisor = Load(W, at) if W is not None else scalar(p.dtype, p.n * p.d)

    def accumulate(pos):
        loss, w = _terms(p, pos, picked, weight, ignore_index)
        return seq(Store(Y, at, total + loss),
                   Store(W, at, Load(W, at) + w) if W is not None else None)
    zero = scalar(p.dtype, 0)
    p.ctx.emit(seq(Store(Y, at, zero),
                   Store(W, at, zero) if W is not None else None,
                   p.nest(accumulate),
                   Store(Y, at, total / divisor) if reduction == "mean" else None),
               kind="reduce")


@register("NegativeLogLikelihoodLoss", since=12)
def NegativeLogLikelihoodLoss(ctx, X, target, weight=None, *, reduction="mean",
                              ignore_index=None):
    p = _Positions(ctx, X, target, weight, reduction)
    _emit_loss(p, lambda pos, cls: Load(p.X, p.at(pos, cls)), weight, reduction, ignore_index)


def _emit_log_sum_exp(p: _Positions, log_prob) -> Buffer:
    """lse[n, d] = log(sum over c of exp(x[n, c, d])), shifted by the max for stability, in a
    new temporary that it returns; also log_prob = x - lse when that output is asked for."""
    m, lse = p.row_buffer(hint="max"), p.row_buffer(hint="lse")

    def row(pos):
        def x(c):
            return Load(p.X, p.at(pos, c))
        mx, s = Load(m, pos), Load(lse, pos)
        stmts = [Store(m, pos, x(ZERO)),
                 loops([("c_max", p.c)], lambda c: Store(m, pos, Binary("max", mx, x(c)))),
                 Store(lse, pos, scalar(p.dtype, 0)),
                 loops([("c_sum", p.c)], lambda c: Store(lse, pos, s + Unary("exp", x(c) - mx))),
                 Store(lse, pos, mx + Unary("log", s))]
        if log_prob is not None:
            stmts.append(loops([("c", p.c)], lambda c: Store(log_prob, p.at(pos, c), x(c) - s)))
        return seq(*stmts)
    p.ctx.emit(p.nest(row), kind="reduce", stage="lse")
    return lse


@register("SoftmaxCrossEntropyLoss", since=12)
def SoftmaxCrossEntropyLoss(ctx, scores, labels, weights=None, *, reduction="mean",
                            ignore_index=None):
    p = _Positions(ctx, scores, labels, weights, reduction)
    log_prob = ctx.outputs[1] if len(ctx.outputs) > 1 else None
    lse = _emit_log_sum_exp(p, None if log_prob is None else p.input_view(log_prob))

    def picked(pos, cls):   # log_prob[n, cls, d], recomputed from x and lse
        return Load(p.X, p.at(pos, cls)) - Load(lse, pos)
    _emit_loss(p, picked, weights, reduction, ignore_index)
