"""Reductions: Reduce* (one table row per op) and ArgMax/ArgMin.

Every reduction is one kernel: loops over the kept axes (i<d>, named after the input axis d)
around an init Store, loops over the reduced axes (r<d>) accumulating into the output, and an
optional final Store (Mean divides, L2 takes the root, ...).
"""
from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .. import dtypes
from ..errors import ModelError
from ..loop.ir import (
    Binary,
    Cast,
    Const,
    Expr,
    IfThen,
    Load,
    Select,
    Store,
    Unary,
    Var,
    cmp,
    const_int,
    loops,
    seq,
)
from ..loop.symbolic import product
from .common import ZERO, view
from .registry import register


def scalar(like: Expr | str, value) -> Expr:
    """A constant of `like`'s dtype (an Expr or a dtype name); a count over the dimension
    symbols (an int64 expression) converted to it."""
    dt = like if isinstance(like, str) else like.dtype
    if isinstance(value, Expr):
        return value if dt == value.dtype else Cast(dt, value)
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
    empty: float = 0.0       # the result over no element (onnx.reference's; ints clamp)


def _zero(x):
    return scalar(x, 0)


def _add(a, x):
    return a + x


def _square(a, x):
    return a + x * x


REDUCTIONS = {
    "ReduceSum": Reduction(_zero, _add, floats_only=False),
    "ReduceMean": Reduction(_zero, _add, lambda a, n: a / scalar(a, n), floats_only=False,
                            empty=math.nan),
    "ReduceMax": Reduction(lambda x: x, lambda a, x: Binary("max", a, x), floats_only=False,
                           empty=-math.inf),
    "ReduceMin": Reduction(lambda x: x, lambda a, x: Binary("min", a, x), floats_only=False,
                           empty=math.inf),
    "ReduceProd": Reduction(lambda x: scalar(x, 1), lambda a, x: a * x, floats_only=False,
                            empty=1.0),
    "ReduceL1": Reduction(_zero, lambda a, x: a + Unary("abs", x), floats_only=False),
    "ReduceL2": Reduction(_zero, _square, lambda a, n: Unary("sqrt", a)),
    "ReduceSumSquare": Reduction(_zero, _square, floats_only=False),
    "ReduceLogSum": Reduction(_zero, _add, lambda a, n: Unary("log", a), empty=-math.inf),
    "ReduceLogSumExp": Reduction(_zero, lambda a, x: a + Unary("exp", x),
                                 lambda a, n: Unary("log", a), shifted=True, empty=-math.inf),
}

def _empty_value(dtype: str, value: float) -> Const:
    """value in dtype; an integer type takes its own limit for an infinity (and 0 for NaN)."""
    if dtypes.dtype(dtype).is_float:
        return Const(value, dtype)
    if dtype == "bool":
        return Const(value > 0, dtype)
    info = np.iinfo(dtypes.dtype(dtype).numpy)
    clamped = 0 if math.isnan(value) else int(min(max(value, info.min), info.max))
    return Const(clamped, dtype)


def reduce_into(ctx, X, Y, axes, keepdims, red: Reduction, guard=None) -> None:
    """Emit Y = red over `axes` (sorted, non-negative) of X; Y keeps unit dims if keepdims.
    With a guard, the kernel runs only where that run-time condition holds."""
    shape = ctx.shape(X)
    rank = len(shape)
    kept = [d for d in range(rank) if d not in axes]
    iv = {d: Var(f"i{d}") for d in kept}

    def x_at(reduced):
        """X at the kept loop variables, reduced axis d at reduced(d)."""
        return Load(X, tuple(iv[d] if d in iv else reduced(d) for d in range(rank)))
    x, first = x_at(lambda d: Var(f"r{d}")), x_at(lambda d: ZERO)
    yi = tuple(iv.get(d, ZERO) for d in range(rank)) if keepdims else tuple(iv.values())
    count = product([shape[d] for d in axes])
    if count == 0:   # an empty window: no element to start from
        body = loops([(f"i{d}", shape[d]) for d in kept],
                     lambda *_: Store(Y, yi, _empty_value(Y.dtype, red.empty)))
        ctx.emit(body if guard is None else IfThen(guard, body), kind="reduce")
        return

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
    body = loops([(f"i{d}", shape[d]) for d in kept], lambda *_: seq(*stmts))
    ctx.emit(body if guard is None else IfThen(guard, body), kind="reduce")


# bool reductions that are plain logic: max is any, min is all (the empty set: false, true)
_BOOL_OK = ("ReduceMax", "ReduceMin")


def _check_dtype(op: str, X, red: Reduction) -> None:
    dt = dtypes.dtype(X.dtype)
    if (X.dtype == "bool" and op not in _BOOL_OK) or (red.floats_only and not dt.is_float):
        raise ModelError(f"{op}: dtype {X.dtype} is not supported")


def _reduce_lowering(op: str, red: Reduction):
    def lower(ctx, data, axes_input=None, *, axes=None, keepdims=1, noop_with_empty_axes=0):
        keepdims = keepdims == 1    # ONNX's shape rule and onnxruntime keep the axes for 1 only
        _check_dtype(op, data, red)
        if axes_input is not None and ctx.const(axes_input) is None \
                and product(ctx.shape(axes_input)) > 0:
            _runtime_axes(ctx, op, data, axes_input, keepdims, red)
            return
        if axes_input is not None:
            value = ctx.const(axes_input)
            axes = tuple(np.asarray(value if value is not None else ()).reshape(-1).tolist())
        rank = len(ctx.shape(data))
        if not axes:
            axes = () if noop_with_empty_axes else tuple(range(rank))
        reduce_into(ctx, data, ctx.output(0), normalize_axes(axes, rank, op), keepdims, red)
    lower.__name__ = op
    return lower


def _declared_axes(ctx, op: str, X, keepdims) -> list[tuple[int, ...]]:
    """The axes sets a run-time axes input may name, read off the declared output shape (the
    model states it; a run whose axes fit none fails). Sets that differ only in unit axes
    compute the same thing: one of each is kept. Several remain when the shapes cannot
    tell (without keepdims, [3, 2, 2] -> [3, 2] reduces axis 1 or axis 2)."""
    shape, out = ctx.shape(X), ctx.shape(ctx.output(0))
    rank = len(shape)
    if keepdims:
        axes = tuple(d for d in range(rank) if shape[d] != out[d]) \
            if len(out) == rank else None
        if axes is None or any(out[d] != 1 for d in axes):
            raise ModelError(f"{op}: declared output shape {list(out)} is not a reduction of "
                             f"{list(shape)}")
        return [axes]
    options = {tuple(d for d in dropped if shape[d] != 1): dropped
               for dropped in itertools.combinations(range(rank), rank - len(out))
               if [shape[d] for d in range(rank) if d not in dropped] == list(out)}
    if not options:
        raise ModelError(f"{op}: declared output shape {list(out)} is not a reduction of "
                         f"{list(shape)}")
    return list(options.values())


def _names_axes(values, axes: tuple[int, ...], shape):
    """The run-time axes (normalized Exprs) are `axes`, give or take unit axes."""
    allowed = set(axes) | {d for d in range(len(shape)) if shape[d] == 1}

    def any_of(terms):
        return functools.reduce(lambda p, q: Binary("or", p, q), terms, Const(False, "bool"))
    ok = [any_of(cmp("eq", v, d) for d in sorted(allowed)) for v in values]
    ok += [any_of(cmp("eq", v, d) for v in values) for d in axes if shape[d] != 1]
    return functools.reduce(lambda p, q: Binary("and", p, q), ok, Const(True, "bool"))


def _runtime_axes(ctx, op: str, X, axes_input, keepdims, red: Reduction) -> None:
    """Axes read at run time: one reduction per axes set the declared shape allows (each
    under its test when there are several), and a check that the run names one of them."""
    shape = ctx.shape(X)
    rank, count = len(shape), product(ctx.shape(axes_input))
    flat = view(axes_input, count)
    values = []
    for j in range(count):
        a = Load(flat, (const_int(j),))
        values.append(Select(cmp("lt", a, 0), a + const_int(rank), a))
    options = _declared_axes(ctx, op, X, keepdims)
    tests = [_names_axes(values, axes, shape) for axes in options]
    ctx.check(functools.reduce(lambda p, q: Binary("or", p, q), tests),
              f"the axes input names none of the axes sets {[list(a) for a in options]} "
              "that the declared output shape allows")
    for axes, test in zip(options, tests):
        reduce_into(ctx, X, ctx.output(0), axes, keepdims, red,
                    guard=test if len(options) > 1 else None)


for _op, _red in REDUCTIONS.items():
    register(_op, since=1)(_reduce_lowering(_op, _red))


def _arg_lowering(op: str, better: str, better_or_tie: str):
    """ArgMax/ArgMin: the first (or last) index of the best element along one axis."""
    def lower(ctx, data, *, axis=0, keepdims=1, select_last_index=0):
        keepdims = keepdims == 1    # as the reductions
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
