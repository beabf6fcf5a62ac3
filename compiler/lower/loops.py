"""Loop lowering passes: partition guarded tails, drop unit loops, unroll, flatten indices."""
from __future__ import annotations

import dataclasses
import functools

from ..loop.affine import from_linear, linear_form
from ..loop.ir import (
    GPU_AXES,
    Allocate,
    Binary,
    Const,
    Expr,
    For,
    IfThen,
    Load,
    Seq,
    Stmt,
    Store,
    Var,
    as_int,
    const_int,
    seq,
    storage_position,
)
from ..loop.simplify import simplify
from ..loop.symbolic import as_dim_expr, canon, gcd_of
from ..loop.visit import free_vars, substitute, transform, walk


def _split_guard(cond, var: Var):
    """(factor, bound) when cond is `var * factor + X < bound` (a split's guard), the factor
    a constant, the bound a constant or an expression over the dimension symbols."""
    if not (isinstance(cond, Binary) and cond.op == "lt") or var in free_vars(cond.b):
        return None
    lhs = cond.a
    if isinstance(lhs, Binary) and lhs.op == "add":
        lhs = lhs.a
    if isinstance(lhs, Binary) and lhs.op == "mul" and lhs.a == var and \
            isinstance(lhs.b, Const):
        bound = cond.b.value if isinstance(cond.b, Const) else cond.b
        return lhs.b.value, bound
    return None


def _ceil_div(bound, factor: int):
    if isinstance(bound, int):
        return -(-bound // factor)
    return canon(Binary("floordiv", bound + (factor - 1), const_int(factor)))


def _divides(factor: int, bound) -> bool:
    return (bound if isinstance(bound, int) else gcd_of(bound)) % factor == 0


def _guards_on(loop: For) -> set[tuple[int, int]]:
    return {g for n in walk(loop.body) if isinstance(n, IfThen)
            for g in [_split_guard(n.cond, loop.var)] if g}


def _drop_guards(stmt: Stmt, var: Var, guard) -> Stmt:
    return transform(stmt, lambda n: n.then if isinstance(n, IfThen)
                     and _split_guard(n.cond, var) == guard else n)


def _all_guarded(stmt: Stmt, var: Var) -> bool:
    match stmt:
        case For(body=b) | Allocate(body=b):
            return _all_guarded(b, var)
        case Seq(body=body):
            return all(_all_guarded(s, var) for s in body)
        case IfThen(cond=c, then=t, orelse=None):
            form = linear_form(c.a) if isinstance(c, Binary) and c.op == "lt" else None
            return (form is not None and set(form) <= {var, None} and form.get(var) == 1) \
                or _symbolic_bound(stmt, var) is not None or _all_guarded(t, var)
    return False


def _symbolic_bound(m, var: Var):
    """E - c when m is a guard `c + var < E` whose c or E holds dimension symbols (a tail
    tile's guard: var below the rows left), else None."""
    if not (isinstance(m, IfThen) and isinstance(m.cond, Binary) and m.cond.op == "lt") \
            or isinstance(m.cond.b, Const) and linear_form(m.cond.a) is not None \
            or m.cond.a.dtype != "int64" or var in free_vars(m.cond.b):
        return None
    offset = simplify(substitute(m.cond.a, {var: const_int(0)}))
    if var in free_vars(offset) or canon(m.cond.a - offset) != var:
        return None
    return canon(m.cond.b - offset)


def _shrink_symbolic(n: For) -> For:
    """A loop all of whose guards bound its variable by one symbolic E - c runs
    min(extent, E - c) times without them; it stays a loop (its count is known at run
    time only)."""
    bounds = {str(b): b for m in walk(n.body) for b in [_symbolic_bound(m, n.var)]
              if b is not None}
    if len(bounds) != 1:
        return n
    (limit,) = bounds.values()
    extent = as_dim_expr(canon(Binary("min", n.extent, as_dim_expr(limit))))
    body = transform(n.body, lambda m: m.then if _symbolic_bound(m, n.var) is not None
                     else m)
    return dataclasses.replace(n, body=body, extent=extent,
                               kind="serial" if n.kind == "unroll" else n.kind)


def shrink_guarded_loops(stmt: Stmt) -> Stmt:
    """A loop whose whole body sits under `c + x < E` guards on its own variable x runs
    min(extent, max E - c) times, without the guards that bound itself (what a peeled tail
    tile becomes once the loops between it and the guard are unrolled). A loop bound to a
    GPU index keeps its extent: it is the launch's size."""
    def bound(m, var) -> int | None:
        if isinstance(m, IfThen) and isinstance(m.cond, Binary) and m.cond.op == "lt" \
                and isinstance(m.cond.b, Const):
            form = linear_form(m.cond.a)
            if form is not None and set(form) <= {var, None} and form.get(var) == 1:
                return m.cond.b.value - form.get(None, 0)
        return None

    def post(n):
        if not isinstance(n, For) or as_int(n.extent) is None or n.kind in GPU_AXES or \
                not _all_guarded(n.body, n.var):
            return n
        bounds = [b for m in walk(n.body) for b in [bound(m, n.var)] if b is not None]
        if not bounds:           # guarded against bounds known only at run time
            return _shrink_symbolic(n)
        extent = max(0, min(as_int(n.extent), max(bounds)))
        body = transform(n.body, lambda m: m.then if (b := bound(m, n.var)) is not None
                         and b >= extent else m)
        return dataclasses.replace(n, body=body, extent=const_int(extent))
    return transform(stmt, post)


def partition_loops(stmt: Stmt) -> Stmt:
    """Split-remainder guards leave the main iterations: each guarded loop becomes its full
    part without guards plus one peeled last iteration where the guard shrinks a loop. A loop
    bound to a GPU index keeps its guard: a compare per thread costs less than the second
    launch a peeled block would be."""
    def post(n):
        if not isinstance(n, For) or n.kind in ("vectorize", "unroll") or n.kind in GPU_AXES:
            return n
        extent = as_int(n.extent) if as_int(n.extent) is not None else canon(n.extent)
        for factor, bound in sorted(_guards_on(n), key=lambda g: (
                g[0], (0, g[1], "") if isinstance(g[1], int) else (1, 0, str(g[1])))):
            if _ceil_div(bound, factor) != extent:
                continue
            if _divides(factor, bound):   # every iteration is full: the guard always holds
                return post(dataclasses.replace(
                    n, body=_drop_guards(n.body, n.var, (factor, bound))))
            full = bound // factor if isinstance(bound, int) else \
                as_dim_expr(canon(Binary("floordiv", bound, const_int(factor))))
            main = dataclasses.replace(n, extent=const_int(full),
                                       body=_drop_guards(n.body, n.var, (factor, bound)))
            tail = simplify(substitute(n.body, {n.var: const_int(full)}))
            parts = ([main] if full != 0 else []) + \
                [rows_outermost(hoist_guards(shrink_guarded_loops(tail)))]
            return seq(*(post(p) if isinstance(p, For) else p for p in parts))
        return n
    return transform(stmt, post)


def rows_outermost(stmt: Stmt) -> Stmt:
    """A tail tile whose phases (fill, accumulate, store) each loop over the same rows left,
    a count known at run time only, runs row by row instead: one row's tile is small and
    indexed by constants, so its accumulators stay in registers (a 1-row GEMM tile, not a
    tile in memory reloaded at every reduction step). The rows are independent: each phase
    touches the tile's row of its own loop only, and nothing the tail stores globally is
    read in it."""
    def post(n):
        if not (isinstance(n, Allocate) and n.buffer.scope == "local" and n.buffer.rank >= 2
                and isinstance(n.body, Seq)):
            return n
        rows = [_row_loop(part, n.buffer) for part in n.body.body]
        if any(r is None for r in rows) or len({str(canon(r.extent)) for r in rows}) != 1 \
                or isinstance(canon(rows[0].extent), int) or _reads_own_stores(n.body):
            return n
        row = Var(f"{n.buffer.name}_row")
        one = dataclasses.replace(n.buffer, name=f"{n.buffer.name}_1",
                                  shape=(const_int(1),) + n.buffer.shape[1:])
        parts = [_one_row(part, loop, row, n.buffer, one) for part, loop in
                 zip(n.body.body, rows)]
        return For(row, rows[0].extent, Allocate(one, seq(*parts)))
    return transform(stmt, post)


def _row_loop(part: Stmt, tile) -> For | None:
    """The loop of a perfect chain whose variable is the row of every access to the tile."""
    chain = []
    while isinstance(part, For):
        chain.append(part)
        part = part.body
    accesses = [m for c in chain[:1] for m in walk(c) if isinstance(m, (Load, Store))
                and m.buffer.name == tile.name]
    found = [c for c in chain if accesses and all(m.index[0] == c.var for m in accesses)]
    if len(found) != 1 or as_int(found[0].extent) is not None:
        return None
    return found[0]


def _reads_own_stores(stmt: Stmt) -> bool:
    stored = {m.buffer.name for m in walk(stmt) if isinstance(m, Store)
              and m.buffer.scope == "global"}
    return any(isinstance(m, Load) and m.buffer.name in stored for m in walk(stmt))


def _one_row(part: Stmt, loop: For, row: Var, tile, one) -> Stmt:
    def post(m):
        if m is loop:
            return m.body
        if isinstance(m, (Load, Store)) and m.buffer.name == tile.name:
            return dataclasses.replace(m, buffer=one, index=(const_int(0),) + m.index[1:])
        return m
    without = transform(part, lambda m: loop.body if m == loop else m)
    return substitute(transform(without, post), {loop.var: row})


def hoist_guards(stmt: Stmt) -> Stmt:
    """A loop whose whole body is one guard that does not read the loop's variable runs
    under that guard instead (a tail tile's row guard leaves its vector loop straight-line)."""
    def post(n):
        if isinstance(n, For) and isinstance(n.body, IfThen) and n.body.orelse is None \
                and n.var not in free_vars(n.body.cond):
            return IfThen(n.body.cond, dataclasses.replace(n, body=n.body.then))
        return n
    return transform(stmt, post)


def remove_unit_loops(stmt: Stmt) -> Stmt:
    def post(n):
        if isinstance(n, For) and as_int(n.extent) == 1:
            return substitute(n.body, {n.var: const_int(0)})
        if isinstance(n, For) and as_int(n.extent) == 0:
            return Seq(())
        return n
    return simplify(transform(stmt, post))


def unroll_loops(stmt: Stmt) -> Stmt:
    def post(n):
        if isinstance(n, For) and n.kind == "unroll":
            return seq(*(simplify(substitute(n.body, {n.var: const_int(i)}))
                         for i in range(as_int(n.extent))))
        return n
    return simplify(transform(stmt, post))


def flat_index(buffer, index, extents=None):
    if len(index) == 1 and buffer.rank <= 1 and not buffer.margin and not buffer.block:
        return index
    flat = const_int(0)
    split = functools.partial(block_split, extents=extents or {})
    for i, dim in storage_position(buffer, index, split):
        flat = Binary("add", Binary("mul", flat, dim), i)
    return (simplify(flat),)


def block_split(e: Expr, factor: int, extents: dict):
    """(e // factor, e % factor) as affine forms when the terms not divisible by factor
    stay in [0, factor) (a loop split at the block size), else as division and modulo."""
    form = linear_form(e)
    if form is not None and all(c >= 0 for c in form.values()):
        inner = {v: c for v, c in form.items() if c % factor}
        top = sum(c * ((extents.get(v) or factor) - 1) if v is not None else c
                  for v, c in inner.items())
        if top < factor and all(v is None or extents.get(v) for v in inner):
            outer = {v: c // factor for v, c in form.items() if c % factor == 0}
            return from_linear(outer), from_linear(inner)
    f = const_int(factor)
    return Binary("floordiv", e, f), Binary("mod", e, f)


def flatten_buffers(stmt: Stmt) -> Stmt:
    """Multi-dimensional indices become one offset in the storage's order."""
    extents = {n.var: as_int(n.extent) for n in walk(stmt) if isinstance(n, For)}

    def post(n):
        if isinstance(n, (Load, Store)) and (len(n.index) != 1 or n.buffer.rank > 1
                                             or n.buffer.block):
            return dataclasses.replace(n, index=flat_index(n.buffer, n.index, extents))
        return n
    return transform(stmt, post)
