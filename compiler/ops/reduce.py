"""Reductions: Reduce* (one table row per op) and ArgMax/ArgMin.

Every reduction is one kernel: loops over the kept axes (i<d>, named after the input axis d)
around an init Store, loops over the reduced axes (r<d>) accumulating into the output, and an
optional final Store (Mean divides, L2 takes the root, ...).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .. import dtypes
from ..errors import ModelError
from ..loop.ir import Binary, Const, Expr, IfThen, Load, Store, Unary, Var, cmp, loops, seq
from .common import ZERO
from .registry import register


def scalar(like: Expr | str, value) -> Const:
    """A constant of `like`'s dtype (an Expr or a dtype name)."""
    dt = like if isinstance(like, str) else like.dtype
    return Const(float(value) if dtypes.dtype(dt).is_float else int(value), dt)


def normalize_axes(axes, rank: int, what: str) -> tuple[int, ...]:
    """Axes in [0, rank), sorted; negative ones count from the end; duplicates are errors."""
    out = []
    for a in axes:
        a = int(a)
        if not -rank <= a < rank:
            raise ModelError(f"{what}: axis {a} is out of range for rank {rank}")
        out.append(a + rank if a < 0 else a)
    if len(set(out)) != len(out):
        raise ModelError(f"{what}: repeated axis in {list(axes)}")
    return tuple(sorted(out))


@dataclass(frozen=True, slots=True)
class Reduction:
    init: Callable[[Expr], Expr]             # first element of the window -> initial value
    step: Callable[[Expr, Expr], Expr]       # (accumulator, element) -> accumulator
    final: Callable[[Expr, int], Expr] | None = None   # (accumulator, count) -> result
    floats_only: bool = True
    shifted: bool = False    # elements enter as x - max(window): a stable LogSumExp


def _zero(x):
    return scalar(x, 0)


def _add(a, x):
    return a + x


def _square(a, x):
    return a + x * x


REDUCTIONS = {
    "ReduceSum": Reduction(_zero, _add, floats_only=False),
    "ReduceMean": Reduction(_zero, _add, lambda a, n: a / scalar(a, n), floats_only=False),
    "ReduceMax": Reduction(lambda x: x, lambda a, x: Binary("max", a, x), floats_only=False),
    "ReduceMin": Reduction(lambda x: x, lambda a, x: Binary("min", a, x), floats_only=False),
    "ReduceProd": Reduction(lambda x: scalar(x, 1), lambda a, x: a * x, floats_only=False),
    "ReduceL1": Reduction(_zero, lambda a, x: a + Unary("abs", x), floats_only=False),
    "ReduceL2": Reduction(_zero, _square, lambda a, n: Unary("sqrt", a)),
    "ReduceSumSquare": Reduction(_zero, _square, floats_only=False),
    "ReduceLogSum": Reduction(_zero, _add, lambda a, n: Unary("log", a)),
    "ReduceLogSumExp": Reduction(_zero, lambda a, x: a + Unary("exp", x),
                                 lambda a, n: Unary("log", a), shifted=True),
}

# ReduceSum takes axes as an input from version 13, the others from version 18.
_AXES_INPUT_SINCE = {"ReduceSum": 13}


def reduce_into(ctx, X, Y, axes, keepdims, red: Reduction) -> None:
    """Emit Y = red over `axes` (sorted, non-negative) of X; Y keeps unit dims if keepdims."""
    shape = ctx.shape(X)
    rank = len(shape)
    kept = [d for d in range(rank) if d not in axes]
    iv = {d: Var(f"i{d}") for d in kept}

    def x_at(reduced):
        """X at the kept loop variables, reduced axis d at reduced(d)."""
        return Load(X, tuple(iv[d] if d in iv else reduced(d) for d in range(rank)))
    x, first = x_at(lambda d: Var(f"r{d}")), x_at(lambda d: ZERO)
    yi = tuple(iv.get(d, ZERO) for d in range(rank)) if keepdims else tuple(iv.values())
    count = int(np.prod([shape[d] for d in axes], dtype=np.int64))

    def over_window(stmt, suffix=""):
        return loops([(f"r{d}{suffix}", shape[d]) for d in axes], lambda *_: stmt)

    acc = Load(Y, yi)
    stmts = []
    shift = None
    if red.shifted:
        M = ctx.temp(X.dtype, ctx.shape(Y), "max")
        shift = Load(M, yi)
        x_pre = x_at(lambda d: Var(f"r{d}_max"))
        stmts += [Store(M, yi, first),
                  over_window(Store(M, yi, Binary("max", shift, x_pre)), "_max")]
        x = x - shift
    stmts += [Store(Y, yi, red.init(first)), over_window(Store(Y, yi, red.step(acc, x)))]
    if red.final is not None:
        stmts.append(Store(Y, yi, red.final(acc, count)))
    if shift is not None:
        stmts.append(Store(Y, yi, acc + shift))
    ctx.emit(loops([(f"i{d}", shape[d]) for d in kept], lambda *_: seq(*stmts)), kind="reduce")


def _check_dtype(op: str, X, red: Reduction) -> None:
    dt = dtypes.dtype(X.dtype)
    if X.dtype == "bool" or (red.floats_only and not dt.is_float):
        raise ModelError(f"{op}: dtype {X.dtype} is not supported")


def _reduce_lowering(op: str, red: Reduction):
    input_since = _AXES_INPUT_SINCE.get(op, 18)

    def lower(ctx, data, axes_input=None, *, axes=None, keepdims=1, noop_with_empty_axes=0):
        _check_dtype(op, data, red)
        if axes_input is not None:
            value = ctx.const(axes_input)
            if value is None:
                raise ModelError(f"{op}: the axes input must be a constant (opset >= "
                                 f"{input_since} passes it as an input)")
            axes = tuple(np.asarray(value).reshape(-1).tolist())
        rank = len(ctx.shape(data))
        if not axes:
            axes = () if noop_with_empty_axes else tuple(range(rank))
        reduce_into(ctx, data, ctx.output(0), normalize_axes(axes, rank, op), keepdims, red)
    lower.__name__ = op
    return lower


for _op, _red in REDUCTIONS.items():
    register(_op, since=1)(_reduce_lowering(_op, _red))


def _arg_lowering(op: str, better: str, better_or_tie: str):
    """ArgMax/ArgMin: the first (or last) index of the best element along one axis."""
    def lower(ctx, data, *, axis=0, keepdims=1, select_last_index=0):
        if data.dtype == "bool":
            raise ModelError(f"{op}: dtype bool is not supported")
        shape = ctx.shape(data)
        rank = len(shape)
        (ax,) = normalize_axes((axis,), rank, op)
        Y = ctx.output(0)
        iv = {d: Var(f"i{d}") for d in range(rank) if d != ax}
        k = Var("k")
        yi = tuple(iv.get(d, ZERO) for d in range(rank)) if keepdims else tuple(iv.values())
        best = ctx.temp(data.dtype, ctx.shape(Y), "best")
        x = Load(data, tuple(iv.get(d, k) for d in range(rank)))
        first = Load(data, tuple(iv.get(d, ZERO) for d in range(rank)))
        test = better_or_tie if select_last_index else better
        scan = loops([("k", shape[ax])], lambda _: IfThen(
            cmp(test, x, Load(best, yi)), seq(Store(best, yi, x), Store(Y, yi, k))))
        body = seq(Store(best, yi, first), Store(Y, yi, ZERO), scan)
        ctx.emit(loops([(v.name, shape[d]) for d, v in iv.items()], lambda *_: body),
                 kind="reduce")
    lower.__name__ = op
    return lower


register("ArgMax", since=1)(_arg_lowering("ArgMax", "gt", "ge"))
register("ArgMin", since=1)(_arg_lowering("ArgMin", "lt", "le"))
