"""vectorize_loops: a 'vectorize' loop over straight-line stores becomes vector statements.

A loop whose body cannot be vectorized (a guard left in a peeled tail, a dtype or op without
a vector form, a store not contiguous in the loop variable) runs as a serial loop instead.
"""
from __future__ import annotations

import dataclasses

from ..loop.affine import coefficient
from ..loop.ir import (
    Allocate,
    Binary,
    Broadcast,
    Buffer,
    Cast,
    Const,
    Expr,
    Fma,
    For,
    HReduce,
    Load,
    Pack,
    Select,
    Seq,
    Stmt,
    Store,
    Unary,
    Var,
    as_int,
    const_int,
)
from ..loop.simplify import simplify
from ..loop.visit import free_vars, substitute, transform, walk

VECTOR_DTYPES = frozenset({"float32"})
VECTOR_UNARY = frozenset({"neg", "abs", "sqrt", "exp", "log", "tanh", "erf", "sigmoid",
                          "floor", "ceil", "round"})
VECTOR_BINARY = frozenset({"add", "sub", "mul", "div", "max", "min",
                           "lt", "le", "gt", "ge", "eq", "ne"})


class _NotVectorizable(Exception):
    pass


class _Vectorizer:
    def __init__(self, var: Var, lanes: int):
        self.var, self.lanes = var, lanes

    def at(self, e: Expr, lane: int) -> Expr:
        return simplify(substitute(e, {self.var: const_int(lane)}))

    def expr(self, e: Expr) -> Expr:
        if self.var not in free_vars(e):
            if e.dtype not in VECTOR_DTYPES:
                raise _NotVectorizable
            return Broadcast(e, self.lanes)
        if e.dtype not in VECTOR_DTYPES and not (isinstance(e, Binary) and e.dtype == "bool"):
            raise _NotVectorizable
        match e:
            case Load(buffer=b, index=(idx,)):
                step = coefficient(idx, self.var)
                if step in (1, 2):   # contiguous, or every other element (stride-2 windows)
                    return Load(b, (self.at(idx, 0),), self.lanes, step)
                return Pack(tuple(Load(b, (self.at(idx, lane),)) for lane in range(self.lanes)))
            case Binary(op="add", a=Binary(op="mul", a=x, b=y), b=z) \
                    | Binary(op="add", a=z, b=Binary(op="mul", a=x, b=y)):
                return Fma(self.expr(x), self.expr(y), self.expr(z))
            case Binary(op=op, a=a, b=b) if op in VECTOR_BINARY:
                if a.dtype not in VECTOR_DTYPES:
                    raise _NotVectorizable
                return Binary(op, self.expr(a), self.expr(b))
            case Unary(op=op, a=a) if op in VECTOR_UNARY:
                return Unary(op, self.expr(a))
            case Fma(a=a, b=b, c=c):
                return Fma(self.expr(a), self.expr(b), self.expr(c))
            case Select(cond=c, a=a, b=b):
                return Select(self.expr(c), self.expr(a), self.expr(b))
            case Cast(a=a) if a.dtype == e.dtype:
                return self.expr(a)
        raise _NotVectorizable

    def reduction(self, s: Store) -> Stmt:
        """acc = acc op term(v) over the lanes: the terms as one vector, folded once."""
        step = _reduction_step(s)
        if step is None or self.var in free_vars(Load(s.buffer, s.index)):
            raise _NotVectorizable
        op, term = step
        acc = Load(s.buffer, s.index)
        return Store(s.buffer, s.index, Binary(op, acc, HReduce(op, self.expr(term))))

    def stmt(self, s: Stmt) -> Stmt:
        match s:
            case Store(buffer=b, index=(idx,), value=v) if b.dtype in VECTOR_DTYPES:
                step = coefficient(idx, self.var)
                if step == 0:
                    return self.reduction(s)
                if step is None or step < 1:
                    raise _NotVectorizable
                return Store(b, (self.at(idx, 0),), self.expr(v), step)
            case Seq(body=body):
                return Seq(tuple(self.stmt(x) for x in body))
        raise _NotVectorizable


_REDUCTIONS = frozenset({"add", "max", "min"})


def _reduction_step(store: Store):
    """(op, term) when store is acc = acc op term, with term the only part that varies."""
    v = store.value
    if isinstance(v, Binary) and v.op in _REDUCTIONS:
        for acc, term in ((v.a, v.b), (v.b, v.a)):
            if isinstance(acc, Load) and acc.buffer.name == store.buffer.name \
                    and acc.index == store.index:
                return v.op, term
    return None


def vectorize_loops(stmt: Stmt, widths=(4, 8, 16)) -> Stmt:
    def post(n):
        if not isinstance(n, For) or n.kind != "vectorize":
            return n
        try:
            return _vector_pieces(n, widths)
        except _NotVectorizable:
            return dataclasses.replace(n, kind="serial")
    return transform(stmt, post)


def _vector_pieces(loop: For, widths) -> Stmt:
    """The loop as vectors of the widest widths that fit, then single lanes: 14 lanes on a
    16-lane target are 8 + 4 + 2 scalars (a row narrower than a register, a tile's tail)."""
    extent = as_int(loop.extent)
    if extent is None or extent < min(widths):
        raise _NotVectorizable
    pieces, start = [], 0
    for width in sorted(widths, reverse=True):
        while extent - start >= width:
            body = substitute(loop.body, {loop.var: loop.var + start}) if start else loop.body
            pieces.append(_Vectorizer(loop.var, width).stmt(simplify(body)))
            start += width
    pieces += [simplify(substitute(loop.body, {loop.var: const_int(lane)}))
               for lane in range(start, extent)]
    return pieces[0] if len(pieces) == 1 else Seq(tuple(pieces))


def _const_index(n) -> int | None:
    return n.index[0].value if len(n.index) == 1 and isinstance(n.index[0], Const) else None


def promote_registers(stmt: Stmt) -> Stmt:
    """A local buffer accessed only at constant offsets, each offset always with one width
    and no two ranges overlapping, becomes one register variable per offset (what keeps a
    GEMM tile out of memory, its remainder lanes included)."""
    def width(m) -> int:
        return m.count if isinstance(m, Load) else m.value.lanes

    def post(n):
        if not isinstance(n, Allocate) or n.buffer.scope != "local":
            return n
        uses = [m for m in walk(n.body) if isinstance(m, (Load, Store))
                and m.buffer.name == n.buffer.name]
        offsets: dict[int, int] = {}
        for m in uses:
            offset = _const_index(m)
            if isinstance(m, Load) and m.stride != 1:
                return n
            if offset is None or offsets.setdefault(offset, width(m)) != width(m):
                return n
        spans = sorted(offsets.items())
        if any(a + w > b for (a, w), (b, _) in zip(spans, spans[1:])):
            return n
        regs = {o: Buffer(f"{n.buffer.name}_r{o}", n.buffer.dtype, (const_int(w),),
                          "register") for o, w in spans}

        def swap(m):
            if isinstance(m, (Load, Store)) and m.buffer.name == n.buffer.name:
                return dataclasses.replace(m, buffer=regs[_const_index(m)],
                                           index=(const_int(0),))
            return m
        body = transform(n.body, swap)
        for reg in reversed(list(regs.values())):
            body = Allocate(reg, body)
        return body
    return transform(stmt, post)


# The value a vector accumulator starts from, per fold.
_IDENTITY = {"add": 0.0, "max": float("-inf"), "min": float("inf")}


def _folded_reduction(stmt: Stmt, var: Var):
    """(op, vector) when stmt is acc = acc op reduce_op(vector) with acc not moving with var."""
    if not isinstance(stmt, Store) or var in free_vars(Load(stmt.buffer, stmt.index)):
        return None
    step = _reduction_step(stmt)
    if step is None or not isinstance(step[1], HReduce) or step[1].op != step[0]:
        return None
    return step[0], step[1].value


def vector_accumulators(stmt: Stmt) -> Stmt:
    """A loop that folds a vector into a scalar accumulator every iteration keeps a vector
    accumulator instead and folds it once after the loop (one horizontal reduction per row,
    not one per vector)."""
    def post(n):
        if not isinstance(n, For) or n.kind in ("parallel", "vectorize"):
            return n
        body = list(n.body.body) if isinstance(n.body, Seq) else [n.body]
        found = [(i, s, _folded_reduction(s, n.var)) for i, s in enumerate(body)]
        found = [(i, s, r) for i, s, r in found if r is not None and sum(
            isinstance(m, (Load, Store)) and m.buffer.name == s.buffer.name
            for t in body for m in walk(t)) == 2]   # the fold's own load and store only
        if not found:
            return n
        before, after, allocs = [], [], []
        for i, s, (op, vec) in found:
            acc = Buffer(f"{s.buffer.name}_{n.var.name}_vacc{i}", vec.dtype,
                         (const_int(vec.lanes),), "local")
            zero = const_int(0)
            before.append(Store(acc, (zero,), Broadcast(Const(_IDENTITY[op], vec.dtype),
                                                        vec.lanes)))
            body[i] = Store(acc, (zero,), Binary(op, Load(acc, (zero,), vec.lanes), vec))
            after.append(Store(s.buffer, s.index, Binary(
                op, Load(s.buffer, s.index), HReduce(op, Load(acc, (zero,), vec.lanes)))))
            allocs.append(acc)
        out: Stmt = Seq(tuple(before + [dataclasses.replace(n, body=Seq(tuple(body)))] + after))
        for acc in allocs:
            out = Allocate(acc, out)
        return out
    return transform(stmt, post)
