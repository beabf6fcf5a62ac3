"""Symbolic evaluation of shape arithmetic.

SYMBOLIC_EVAL: op -> fn(node, inputs) -> outputs, for nodes whose inputs are compile-time
values of which some hold expressions (object arrays of int | Expr): the pieces of shape
subgraphs (Gather of a Shape, Concat, Mul...). None where it cannot say (the node then runs).

The shape rules of the ops that use such values are in symrules.py.
"""
from __future__ import annotations

import numpy as np

from ..loop.ir import Binary, Expr
from ..loop.symbolic import as_dim_expr, canon, is_symbolic_array, lower_bound, product

INT64_MAX = np.iinfo(np.int64).max


def _canon_all(a) -> np.ndarray:
    if not isinstance(a, np.ndarray):       # one element taken out of an object array
        one = np.empty((), dtype=object)
        one[()] = a
        a = one
    flat = [canon(x) for x in a.reshape(-1)]
    out = np.empty(len(flat), dtype=object)
    out[:] = flat
    out = out.reshape(a.shape)
    return out if any(isinstance(x, Expr) for x in flat) else out.astype(np.int64)


def _objects(a) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype.kind == "f":
        raise ValueError("float")
    return a.astype(object)


def _ints(node, ins):
    return [None if a is None else _objects(a) for a in ins]


def _attr_axis(node, rank: int, default: int = 0) -> int:
    axis = node.attr("axis", default)
    return axis + rank if axis < 0 else axis


def _gather(node, ins):
    data, idx = _ints(node, ins)
    if is_symbolic_array(ins[1]):
        return None
    axis = _attr_axis(node, data.ndim)
    idx = np.asarray(ins[1]).astype(np.int64)
    idx = np.where(idx < 0, idx + data.shape[axis], idx)
    return [_canon_all(np.take(data, idx, axis=axis))]


def _concat(node, ins):
    arrs = [_objects(a) for a in ins if a is not None]
    return [_canon_all(np.concatenate(arrs, axis=_attr_axis(node, arrs[0].ndim)))]


def _number_list(a) -> list[int] | None:
    if a is None:
        return None
    if is_symbolic_array(a):
        return None
    return [int(x) for x in np.asarray(a).reshape(-1)]


def _slice(node, ins):
    data = _objects(ins[0])
    starts, ends = _number_list(ins[1]), _number_list(ins[2])
    if starts is None or ends is None or data.ndim != 1 and len(ins) < 4:
        return None
    axes = _number_list(ins[3]) if len(ins) > 3 and ins[3] is not None else \
        list(range(len(starts)))
    steps = _number_list(ins[4]) if len(ins) > 4 and ins[4] is not None else [1] * len(starts)
    index = [slice(None)] * data.ndim
    for s, e, a, st in zip(starts, ends, axes, steps):
        index[a + data.ndim if a < 0 else a] = slice(s, None if e >= INT64_MAX and st > 0
                                                     else e, st)
    return [_canon_all(data[tuple(index)])]


def _axes_input(node, ins) -> list[int] | None:
    if len(ins) > 1 and ins[1] is not None:
        return _number_list(ins[1])
    axes = node.attr("axes")
    return list(axes) if axes is not None else None


def _unsqueeze(node, ins):
    axes = _axes_input(node, ins)
    if axes is None:
        return None
    out = _objects(ins[0])
    rank = out.ndim + len(axes)
    for a in sorted(x + rank if x < 0 else x for x in axes):
        out = np.expand_dims(out, a)
    return [_canon_all(out)]


def _squeeze(node, ins):
    axes = _axes_input(node, ins)
    data = _objects(ins[0])
    out = np.squeeze(data, tuple(axes)) if axes is not None else np.squeeze(data)
    return [_canon_all(out)]


def _reshape(node, ins):
    target = _number_list(ins[1])
    if target is None:
        return None
    data = _objects(ins[0])
    target = [data.shape[i] if t == 0 and not node.attr("allowzero", 0) else t
              for i, t in enumerate(target)]
    return [_canon_all(data.reshape(target))]


def _binary(fn):
    def rule(node, ins):
        a, b = _ints(node, ins)
        return [_canon_all(np.vectorize(fn, otypes=[object])(a, b))]
    return rule


def _div(x, y):
    """ONNX's integer Div: truncation toward zero (an expression's floor division is the same
    for the non-negative values dimensions take)."""
    if isinstance(x, Expr) or isinstance(y, Expr):
        return Binary("floordiv", as_dim_expr(x), as_dim_expr(y))
    quotient = abs(x) // abs(y)
    return -quotient if (x < 0) != (y < 0) else quotient


def _cast(node, ins):
    from .. import dtypes
    to = dtypes.from_onnx(node.attr("to"))
    return [ins[0]] if to in ("int64", "int32") else None


def _reduce_prod(node, ins):
    data = _objects(ins[0])
    axes = _axes_input(node, ins)
    if node.attr("keepdims", 1) != 1 or data.ndim != 1 or axes not in (None, [0], [-1]):
        return None
    return [_canon_all(np.array([product(data.tolist())], dtype=object))]


def _equal(node, ins):
    a, b = _ints(node, ins)
    out = np.vectorize(lambda x, y: _decide_equal(x, y), otypes=[object])(a, b)
    if any(x is None for x in out.reshape(-1)):
        return None
    return [out.astype(bool)]


def _decide_equal(x, y):
    x, y = canon(x), canon(y)
    if isinstance(x, int) and isinstance(y, int):
        return x == y
    if x == y:
        return True
    low = lower_bound(canon(as_dim_expr(x) - as_dim_expr(y)))
    high = lower_bound(canon(as_dim_expr(y) - as_dim_expr(x)))
    return False if (low is not None and low > 0) or (high is not None and high > 0) else None


def _where(node, ins):
    if is_symbolic_array(ins[0]):
        return None
    cond = np.asarray(ins[0]).astype(bool)
    a, b = _objects(ins[1]), _objects(ins[2])
    return [_canon_all(np.where(cond, a, b))]


def _expr_min(x, y):
    return canon(Binary("min", as_dim_expr(x), as_dim_expr(y)))


def _expr_max(x, y):
    return canon(Binary("max", as_dim_expr(x), as_dim_expr(y)))


SYMBOLIC_EVAL = {
    "Identity": lambda node, ins: [ins[0]],
    "Gather": _gather, "Concat": _concat, "Slice": _slice, "Unsqueeze": _unsqueeze,
    "Squeeze": _squeeze, "Reshape": _reshape, "Cast": _cast, "ReduceProd": _reduce_prod,
    "Add": _binary(lambda x, y: x + y), "Sub": _binary(lambda x, y: x - y),
    "Mul": _binary(lambda x, y: x * y), "Div": _binary(_div),
    "Max": _binary(_expr_max), "Min": _binary(_expr_min),
    "Equal": _equal, "Where": _where,
    "Neg": lambda node, ins: [_canon_all(-_objects(ins[0]))],
}
