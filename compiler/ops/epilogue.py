"""Expressions of the ops a fused epilogue may hold (see graph/fuse.py), one row each."""
from __future__ import annotations

from ..loop.ir import Binary, Const, Expr, Load, Select, Unary, cmp
from .elementwise import gelu_expr


def _c(x: Expr, value) -> Const:
    return Const(float(value), x.dtype)


def _clamp(x, lo, hi):
    return Binary("min", Binary("max", x, _c(x, lo)), _c(x, hi))


EPILOGUE_OPS = {
    "Relu": lambda x, a, extra: Binary("max", x, _c(x, 0)),
    "LeakyRelu": lambda x, a, extra: Select(cmp("lt", x, 0.0), x * _c(x, a.get("alpha", 0.01)),
                                            x),
    "Sigmoid": lambda x, a, extra: Unary("sigmoid", x),
    "Tanh": lambda x, a, extra: Unary("tanh", x),
    "HardSigmoid": lambda x, a, extra: _clamp(x * _c(x, a.get("alpha", 0.2))
                                              + _c(x, a.get("beta", 0.5)), 0, 1),
    "HardSwish": lambda x, a, extra: x * _clamp(x * _c(x, 1 / 6) + _c(x, 0.5), 0, 1),
    "Clip": lambda x, a, extra: Binary("min", Binary("max", x, _c(x, a["min"])),
                                       _c(x, a["max"])),
    "Add": lambda x, a, extra: x + extra[0],
    "Mul": lambda x, a, extra: x * _c(x, a["value"]),
    "Div": lambda x, a, extra: x / _c(x, a["value"]),
    "Gelu": lambda x, a, extra: gelu_expr(x, a.get("approximate", "none")),
}


def epilogue_expr(steps, value: Expr, extra_loads: list[Load]) -> Expr:
    """steps: (op type, node name, attributes, number of extra inputs) in order."""
    loads = iter(extra_loads)
    for op_type, _, attrs, n_extra in steps:
        value = EPILOGUE_OPS[op_type](value, dict(attrs), [next(loads) for _ in range(n_extra)])
    return value
