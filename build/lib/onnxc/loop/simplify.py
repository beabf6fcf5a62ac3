"""Algebraic simplification of integer index arithmetic (constant folding and identities)."""
from __future__ import annotations

import math

from .ir import Binary, Const, Expr, Node
from .visit import transform

_INT_FOLD = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "floordiv": lambda a, b: int(math.trunc(a / b)) if b else None,
    "mod": lambda a, b: int(math.fmod(a, b)) if b else None,
    "max": max,
    "min": min,
}


def _is(expr: Expr, value) -> bool:
    return isinstance(expr, Const) and expr.value == value and expr.dtype != "bool"


def _fold(e: Binary) -> Expr:
    a, b = e.a, e.b
    if isinstance(a, Const) and isinstance(b, Const) and a.dtype == b.dtype == "int64":
        fn = _INT_FOLD.get(e.op)
        value = fn(a.value, b.value) if fn else None
        if value is not None:
            return Const(int(value), "int64")
    if e.dtype != "int64":
        return e
    if e.op == "add":
        # (x // c) * c + x % c -> x: what fusing loops leaves in a flattened index
        if isinstance(a, Binary) and a.op == "mul" and isinstance(a.a, Binary) \
                and a.a.op == "floordiv" and isinstance(b, Binary) and b.op == "mod" \
                and a.a.a == b.a and a.a.b == a.b == b.b:
            return b.a
        if _is(b, 0):
            return a
        if _is(a, 0):
            return b
        # (x + c1) + c2 -> x + (c1 + c2): keeps split offsets readable
        if isinstance(b, Const) and isinstance(a, Binary) and a.op == "add" \
                and isinstance(a.b, Const):
            return Binary("add", a.a, Const(a.b.value + b.value, "int64"))
    if e.op == "sub" and _is(b, 0):
        return a
    if e.op == "mul":
        if _is(b, 1):
            return a
        if _is(a, 1):
            return b
        if _is(a, 0) or _is(b, 0):
            return Const(0, "int64")
    if e.op == "floordiv" and _is(b, 1):
        return a
    if e.op == "mod" and _is(b, 1):
        return Const(0, "int64")
    return e


def simplify(node: Node) -> Node:
    return transform(node, lambda n: _fold(n) if isinstance(n, Binary) else n)
