"""Affine (linear integer) forms of index expressions: {var: coefficient, None: constant}."""
from __future__ import annotations

from .ir import Binary, Const, Expr, Var

Linear = dict


def linear_form(e: Expr) -> Linear | None:
    """e as a linear combination of variables, or None when it is not affine."""
    match e:
        case Const(value=v, dtype="int64"):
            return {None: int(v)}
        case Var():
            return {e: 1}
        case Binary(op="add" | "sub", a=a, b=b):
            la, lb = linear_form(a), linear_form(b)
            if la is None or lb is None:
                return None
            sign = 1 if e.op == "add" else -1
            out = dict(la)
            for k, c in lb.items():
                out[k] = out.get(k, 0) + sign * c
            return out
        case Binary(op="mul", a=a, b=b):
            la, lb = linear_form(a), linear_form(b)
            if la is None or lb is None:
                return None
            if set(la) == {None}:
                la, lb = lb, la
            if set(lb) != {None}:
                return None
            return {k: c * lb[None] for k, c in la.items()}
    return None


def coefficient(e: Expr, var: Var) -> int | None:
    """d e / d var when e is affine in var (other non-affine parts must not contain var):
    products with other variables or dimension symbols (a stride `k * seq`) are constants
    here, as long as var's own coefficient is a number."""
    form = linear_form(e)
    if form is not None:
        return form.get(var, 0)
    from .visit import free_vars
    if var not in free_vars(e):
        return 0
    return _symbolic_coefficient(e, var) if e.dtype == "int64" else None


def _symbolic_coefficient(e: Expr, var: Var) -> int | None:
    from .symbolic import canon
    from .visit import substitute
    step = canon(substitute(e, {var: Binary("add", var, Const(1, "int64"))}) - e)
    if not isinstance(step, int):
        return None
    rest = canon(e - substitute(e, {var: Const(0, "int64")}))
    expected = canon(Binary("mul", var, Const(step, "int64")))
    return step if rest == expected else None


def from_linear(form: Linear, order=None) -> Expr:
    """Canonical expression: terms in the given variable order (else by name), constant last."""
    keys = [k for k in form if k is not None and form[k] != 0]
    keys.sort(key=(lambda v: order.index(v)) if order else (lambda v: v.name))
    expr: Expr | None = None
    for var in keys:
        term = var if form[var] == 1 else Binary("mul", var, Const(form[var], "int64"))
        expr = term if expr is None else Binary("add", expr, term)
    const = form.get(None, 0)
    if expr is None:
        return Const(const, "int64")
    return Binary("add", expr, Const(const, "int64")) if const else expr
