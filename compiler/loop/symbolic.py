"""Symbolic dimensions: integer expressions over the model's dimension symbols, kept in one
canonical form so that equal extents compare equal (`batch * 768 // 768` is `batch`).

A dimension is an int or a canonical int64 Expr. The canonical form of a polynomial is a sum
of monomials (a coefficient times a product of atoms) in a fixed order, constant last; an atom
is a symbol (a Var) or what is not a polynomial (`x // 3` where 3 does not divide x, max,
min), its operands canonical in turn. Symbols are at least 1 (a dimension of a tensor that
runs), which decides max/min and comparisons where the polynomial's terms allow.
"""
from __future__ import annotations

import math
import re
from typing import Union

import numpy as np

from ..names import c_identifier
from .ir import Binary, Const, Expr, Unary, Var
from .printer import expr_str

Dim = Union[int, Expr]
Poly = dict          # monomial (tuple of atoms, sorted by _key) -> int coefficient

_COMMUTATIVE_ATOMS = frozenset({"max", "min"})


def _key(atom: Expr) -> str:
    return expr_str(atom)


def _poly(e: Expr) -> Poly:
    match e:
        case Const(value=v):
            return {(): int(v)} if v else {}
        case Var():
            return {(e,): 1}
        case Binary(op="add" | "sub", a=a, b=b):
            return _add(_poly(a), _poly(b), 1 if e.op == "add" else -1)
        case Binary(op="mul", a=a, b=b):
            return _mul(_poly(a), _poly(b))
        case Unary(op="neg", a=a):
            return {m: -c for m, c in _poly(a).items()}
        case Binary(op="floordiv", a=a, b=b):
            return _floordiv(_poly(a), _poly(b))
        case Binary(op="mod", a=a, b=b):
            return _mod(_poly(a), _poly(b))
        case Binary(op="max" | "min", a=a, b=b):
            return _extreme(e.op, _poly(a), _poly(b))
    return {(e,): 1}


def _add(p: Poly, q: Poly, sign: int = 1) -> Poly:
    out = dict(p)
    for m, c in q.items():
        out[m] = out.get(m, 0) + sign * c
    return {m: c for m, c in out.items() if c}


def _mul(p: Poly, q: Poly) -> Poly:
    out: Poly = {}
    for mp, cp in p.items():
        for mq, cq in q.items():
            m = tuple(sorted(mp + mq, key=_key))
            out[m] = out.get(m, 0) + cp * cq
    return {m: c for m, c in out.items() if c}


def _constant(p: Poly) -> int | None:
    if not p:
        return 0
    return p[()] if set(p) == {()} else None


def _exact_quotient(p: Poly, q: Poly) -> Poly | None:
    """p / q when q is one monomial that divides every term of p, or when p is q times one
    monomial (a product's terms expanded: (a + 1) * b * 32 over (a + 1) * b)."""
    if len(q) > 1:
        if not p:
            return {}
        def leading(m):     # the highest degree, then the first in canonical order
            return (len(m), [_key(a) for a in m])
        first, lead = max(q, key=leading), max(p, key=leading)
        factor = _exact_quotient({lead: p[lead]}, {first: q[first]})
        return factor if factor is not None and _mul(factor, q) == p else None
    if len(q) != 1:
        return None
    (mq, cq), = q.items()
    out: Poly = {}
    for m, c in p.items():
        rest = list(m)
        for atom in mq:
            if atom not in rest:
                return None
            rest.remove(atom)
        if c % cq:
            return None
        out[tuple(rest)] = c // cq
    return out


def _atom(op: str, p: Poly, q: Poly) -> Poly:
    a, b = _expr(p), _expr(q)
    if op in _COMMUTATIVE_ATOMS and _key(b) < _key(a):
        a, b = b, a
    return {(Binary(op, a, b),): 1}


def _floordiv(p: Poly, q: Poly) -> Poly:
    cp, cq = _constant(p), _constant(q)
    if cp is not None and cq:
        return {(): cp // cq} if cp // cq else {}
    exact = _exact_quotient(p, q) if q else None
    return exact if exact is not None else _atom("floordiv", p, q)


def _mod(p: Poly, q: Poly) -> Poly:
    cp, cq = _constant(p), _constant(q)
    if cp is not None and cq:
        return {(): cp % cq} if cp % cq else {}
    if q and _exact_quotient(p, q) is not None:
        return {}
    return _atom("mod", p, q)


# A symbol for an extent the data decides (NonZero's count) may be 0, where an input's
# dimension is at least 1: its name says which kind it is (run_time_var).
_RUN_TIME = re.compile(r"len\d+_")


def run_time_var(count: int, tensor: str, axis: int) -> Var:
    """The symbol of an extent the data decides: axis of tensor, the count-th such."""
    return Var(f"len{count}_{c_identifier(tensor)}_{axis}")


def _least(atom: Var) -> int:
    return 0 if _RUN_TIME.match(atom.name) else 1


def _lower_bound(p: Poly) -> int | None:
    """The least value p takes with every input symbol >= 1 and every run-time one >= 0,
    when every non-constant term has a positive coefficient and only symbols (None
    otherwise)."""
    low = 0
    for m, c in p.items():
        if m and (c < 0 or not all(isinstance(a, Var) for a in m)):
            return None
        low += c * min((_least(a) for a in m), default=1)
    return low


def _extreme(op: str, p: Poly, q: Poly) -> Poly:
    """max/min, decided where p - q has a sign whatever the symbols' values."""
    diff = _add(p, q, -1)
    if _lower_bound(diff) is not None and _lower_bound(diff) >= 0:
        return p if op == "max" else q       # p >= q
    neg = {m: -c for m, c in diff.items()}
    if _lower_bound(neg) is not None and _lower_bound(neg) >= 0:
        return q if op == "max" else p
    return _atom(op, p, q)


def _expr(p: Poly) -> Expr:
    terms = sorted((m for m in p if m), key=lambda m: [_key(a) for a in m])
    out: Expr | None = None
    for m in terms:
        term: Expr = m[0]
        for atom in m[1:]:
            term = Binary("mul", term, atom)
        c = p[m]
        if c != 1:
            term = Binary("mul", term, Const(abs(c), "int64")) if c > 0 or out is not None \
                else Binary("mul", term, Const(c, "int64"))
        if out is None:
            out = term
        else:
            out = Binary("sub" if c < 0 else "add", out, term)
    const = p.get((), 0)
    if out is None:
        return Const(const, "int64")
    if const:
        out = Binary("add" if const > 0 else "sub", out, Const(abs(const), "int64"))
    return out


def canon(d) -> Dim:
    """The canonical form of a dimension: an int when it is constant, else an Expr."""
    if isinstance(d, (bool, float)):
        raise TypeError(f"a dimension is an integer, not {d!r}")
    if not isinstance(d, Expr):
        return int(d)
    p = _poly(d)
    c = _constant(p)
    return c if c is not None else _expr(p)


def as_dim_expr(d) -> Expr:
    d = canon(d)
    return Const(d, "int64") if isinstance(d, int) else d


def dim_sum(*dims) -> Dim:
    out: Dim = 0
    for d in dims:
        d = canon(d)
        out = out + d if isinstance(out, int) and isinstance(d, int) else \
            canon(as_dim_expr(out) + as_dim_expr(d))
    return out


def product(dims) -> Dim:
    out: Dim = 1
    for d in dims:
        d = canon(d)
        out = out * d if isinstance(out, int) and isinstance(d, int) else \
            canon(as_dim_expr(out) * as_dim_expr(d))
    return out


def lower_bound(d) -> int | None:
    """The least value of d over every symbol value >= 1, where the form shows it."""
    d = canon(d)
    return d if isinstance(d, int) else _lower_bound(_poly(d))


def at_least_one(d) -> Dim:
    """max(d, 1): the extent of a scratch buffer that must not be empty."""
    if isinstance(d, int):
        return max(d, 1)
    return canon(Binary("max", as_dim_expr(d), Const(1, "int64")))


def symbols_of(d) -> list[Var]:
    from .visit import free_vars
    d = canon(d)
    return [] if isinstance(d, int) else sorted(free_vars(d), key=lambda v: v.name)


def evaluate(d, values: dict[str, int]) -> int:
    """d at the symbols' values (name -> int)."""
    d = canon(d)
    if isinstance(d, int):
        return d
    from .visit import substitute
    bound = substitute(d, {Var(n): Const(int(v), "int64") for n, v in values.items()})
    out = canon(bound)
    if not isinstance(out, int):
        raise ValueError(f"{expr_str(d)}: a symbol has no value")
    return out


def gcd_of(d) -> int:
    """The largest int that divides d for every value of its symbols."""
    d = canon(d)
    if isinstance(d, int):
        return abs(d)
    return math.gcd(*_poly(d).values())


def dim_str(d) -> str:
    d = canon(d)
    return str(d) if isinstance(d, int) else expr_str(d)


def broadcast_shapes(*shapes) -> tuple:
    """ONNX's multidirectional broadcasting of shapes whose dimensions may be symbolic; a
    symbol against 1 gives the symbol. ValueError where they do not broadcast, or where that
    depends on the symbols' values."""
    rank = max((len(s) for s in shapes), default=0)
    out = [1] * rank
    for shape in shapes:
        padded = (1,) * (rank - len(shape)) + tuple(canon(d) for d in shape)
        for i, d in enumerate(padded):
            if out[i] == 1 or out[i] == d:
                out[i] = d
            elif d != 1:
                raise ValueError(f"shapes {[list(map(dim_str, s)) for s in shapes]} do not "
                                 "broadcast for every value of their symbols")
    return tuple(out)


def dims_of(buffer) -> tuple:
    """A buffer's shape as dimensions: ints where static, canonical expressions elsewhere."""
    return tuple(canon(d) for d in buffer.shape)


def never_shrinks(d) -> bool:
    """Whether d's value never falls as a symbol's value grows (sums, products, floor
    divisions by positive numbers, max and min of such; no subtraction)."""
    d = canon(d)
    if isinstance(d, int):
        return True
    return _grows(d)


def _grows(e: Expr) -> bool:
    match e:
        case Const(value=v):
            return v >= 0
        case Var():
            return True
        case Binary(op="add" | "mul" | "max" | "min", a=a, b=b):
            return _grows(a) and _grows(b)
        case Binary(op="floordiv", a=a, b=Const(value=v)):
            return v > 0 and _grows(a)
    return False


def is_symbolic_array(a) -> bool:
    """A compile-time value that holds expressions over the symbols (a folded Shape's)."""
    return isinstance(a, np.ndarray) and a.dtype == object
