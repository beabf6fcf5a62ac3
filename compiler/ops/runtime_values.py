"""Checks of values that arrive with the run (shape-like inputs of the official node cases:
axes, shapes, repeats, split sizes) against what the program was compiled for.

The compiled shapes come from the model's declared output shapes; these helpers emit a
kernel (ctx.check) that fails the run, with the node's name, when the run's values would
give other shapes. No lowering here: the op families call them.
"""
from __future__ import annotations

import functools

from ..loop.ir import Binary, Const, Load, Select, cmp, const_int
from .common import view

TRUE, FALSE = Const(True, "bool"), Const(False, "bool")


def all_of(terms):
    return functools.reduce(lambda p, q: Binary("and", p, q), terms, TRUE)


def any_of(terms):
    return functools.reduce(lambda p, q: Binary("or", p, q), terms, FALSE)


def values_of(ctx, buf) -> list:
    """One load per element of a small run-time tensor, in order."""
    count = 1
    for d in ctx.shape(buf):
        count *= d
    flat = view(buf, count)
    return [Load(flat, (const_int(j),)) for j in range(count)]


def normalized(value, rank: int):
    """An axis value as ONNX reads it: negative counts from the end."""
    return Select(cmp("lt", value, 0), value + const_int(rank), value)


def check_equal(ctx, buf, expected, what: str) -> None:
    """The run's values are exactly `expected` (same count, checked at compile time)."""
    values = values_of(ctx, buf)
    if len(values) != len(expected):
        from .shape import fail
        raise fail(ctx, f"{what} has {len(values)} values, the declared output needs "
                        f"{len(expected)}")
    ctx.check(all_of(cmp("eq", v, int(e)) for v, e in zip(values, expected)),
              f"{what} differs from the declared output's "
              f"{list(map(int, expected))}")


def names_a_set(values, axes, rank: int):
    """The run-time axes values (any order, negatives allowed) name exactly the set `axes`."""
    axes = sorted(axes)
    norm = [normalized(v, rank) for v in values]
    inside = [any_of(cmp("eq", v, d) for d in axes) for v in norm]
    covered = [any_of(cmp("eq", v, d) for v in norm) for d in axes]
    return all_of(inside + covered)


def check_axes_sets(ctx, buf, rank: int, options, what: str) -> None:
    """The run's axes name one of the sets in `options` (all give the compiled shapes)."""
    values = values_of(ctx, buf)
    ctx.check(any_of(names_a_set(values, axes, rank) for axes in options),
              f"{what} name none of the axes sets {[sorted(a) for a in options]} that the "
              "declared output shape allows")
