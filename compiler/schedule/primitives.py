"""Schedule primitives: pure functions Stmt -> Stmt that act on loops found by name."""
from __future__ import annotations

import dataclasses
import itertools

from ..errors import ScheduleError
from ..loop.affine import from_linear, linear_form
from ..loop.ir import (
    GPU_AXES,
    LOOP_KINDS,
    Allocate,
    Binary,
    Buffer,
    For,
    IfThen,
    Load,
    Seq,
    Stmt,
    Store,
    Var,
    as_int,
    cmp,
    const_int,
    loops,
)
from ..loop.simplify import simplify
from ..loop.symbolic import as_dim_expr, canon, gcd_of
from ..loop.templates import instantiate
from ..loop.visit import substitute, transform, walk


def find_loop(stmt: Stmt, name: str) -> For:
    found = [n for n in walk(stmt) if isinstance(n, For) and n.var.name == name]
    if len(found) != 1:
        raise ScheduleError(f"loop {name!r} {'not found' if not found else 'is ambiguous'}")
    return found[0]


def _replace_loop(stmt: Stmt, name: str, fn) -> Stmt:
    find_loop(stmt, name)
    return transform(stmt, lambda n: fn(n) if isinstance(n, For) and n.var.name == name else n)


def _wrap_innermost(stmt: Stmt, wrap) -> Stmt:
    """Apply wrap() under the perfect loop/guard chain of stmt, so nests stay perfect."""
    if isinstance(stmt, For):
        return dataclasses.replace(stmt, body=_wrap_innermost(stmt.body, wrap))
    if isinstance(stmt, IfThen) and stmt.orelse is None:
        return dataclasses.replace(stmt, then=_wrap_innermost(stmt.then, wrap))
    return wrap(stmt)


def split(stmt: Stmt, name: str, factor: int, outer: str = "", inner: str = "") -> Stmt:
    if factor < 1:
        raise ScheduleError(f"split {name!r}: factor {factor} must be positive")

    def rewrite(loop: For) -> Stmt:
        vo, vi = Var(outer or f"{name}_o"), Var(inner or f"{name}_i")
        index = Binary("add", Binary("mul", vo, const_int(factor)), vi)
        body = substitute(loop.body, {loop.var: index})
        extent = as_int(loop.extent)
        if extent is not None and extent % factor == 0:
            outer_extent = const_int(extent // factor)
        elif extent is None and gcd_of(loop.extent) % factor == 0:
            outer_extent = as_dim_expr(canon(loop.extent // factor))   # e.g. seq * 16 by 8
        else:
            outer_extent = simplify((loop.extent + (factor - 1)) // factor)
            guard = cmp("lt", index, loop.extent)
            body = _wrap_innermost(body, lambda s: IfThen(guard, s))
        inner_loop = For(vi, const_int(factor), body)
        return For(vo, outer_extent, inner_loop, loop.kind if loop.kind == "parallel" else "serial")
    return _replace_loop(stmt, name, rewrite)


def _perfect_chain(stmt: Stmt, names) -> list[For]:
    first = min((find_loop(stmt, n) for n in names), key=lambda f: -_depth_size(f))
    chain = [first]
    while isinstance(chain[-1].body, For) and not set(names) <= {f.var.name for f in chain}:
        chain.append(chain[-1].body)
    if not set(names) <= {f.var.name for f in chain}:
        raise ScheduleError(f"reorder {list(names)}: loops are not one perfect nest")
    return chain


def _depth_size(loop: For) -> int:
    return sum(1 for _ in walk(loop))


def reorder(stmt: Stmt, names) -> Stmt:
    names = tuple(names)
    chain = _perfect_chain(stmt, names)
    chain = chain[:max(i for i, f in enumerate(chain) if f.var.name in names) + 1]
    by_name = {f.var.name: f for f in chain}
    order = iter(names)
    new_chain = [by_name[next(order)] if f.var.name in names else f for f in chain]
    body = chain[-1].body
    for loop in reversed(new_chain):
        body = dataclasses.replace(loop, body=body)
    top = chain[0]
    return transform(stmt, lambda n: body if n is top else n)


def fuse(stmt: Stmt, outer: str, inner: str, name: str = "") -> Stmt:
    def rewrite(loop: For) -> Stmt:
        if not isinstance(loop.body, For) or loop.body.var.name != inner:
            raise ScheduleError(f"fuse: {inner!r} is not directly inside {outer!r}")
        in_loop = loop.body
        fused = Var(name or f"{outer}_{inner}")
        body = substitute(in_loop.body, {loop.var: Binary("floordiv", fused, in_loop.extent),
                                         in_loop.var: Binary("mod", fused, in_loop.extent)})
        return For(fused, simplify(Binary("mul", loop.extent, in_loop.extent)), body, loop.kind)
    return _replace_loop(stmt, outer, rewrite)


def annotate(stmt: Stmt, name: str, kind: str, grain: int = 1) -> Stmt:
    if kind not in LOOP_KINDS:
        raise ScheduleError(f"unknown loop kind {kind!r}")
    loop = find_loop(stmt, name)
    if kind in ("vectorize", "unroll") and as_int(loop.extent) is None:
        raise ScheduleError(f"{kind} {name!r}: extent must be a constant")
    if kind == "parallel" and any(isinstance(n, For) and n.kind == "parallel"
                                  for n in walk(loop.body)):
        raise ScheduleError(f"parallel {name!r}: a parallel loop is nested inside")
    return _replace_loop(stmt, name, lambda f: dataclasses.replace(f, kind=kind, grain=grain))


def _enclosing(stmt: Stmt, target: For) -> list[Stmt] | None:
    """The statements from stmt down to target's parent (None when target is not inside)."""
    if stmt is target:
        return []
    children = {For: lambda n: (n.body,), Seq: lambda n: n.body, Allocate: lambda n: (n.body,),
                IfThen: lambda n: (n.then, n.orelse)}.get(type(stmt), lambda n: ())(stmt)
    for child in children:
        path = _enclosing(child, target) if child is not None else None
        if path is not None:
            return [stmt] + path
    return None


def bind(stmt: Stmt, name: str, axis: str) -> Stmt:
    """Bind a loop to a GPU block or thread index. It must head the kernel's top-level nest
    (only top-level sequences and bound loops around it), blocks outside threads, each axis
    once, with a constant extent."""
    if axis not in GPU_AXES:
        raise ScheduleError(f"bind {name!r}: unknown axis {axis!r}; one of {', '.join(GPU_AXES)}")
    loop = find_loop(stmt, name)
    if as_int(loop.extent) is None:
        raise ScheduleError(f"bind {name!r}: extent must be a constant")
    outer = _enclosing(stmt, loop)
    nest = list(itertools.dropwhile(lambda n: isinstance(n, Seq), outer))
    if any(not (isinstance(n, For) and n.kind in GPU_AXES) for n in nest):
        raise ScheduleError(f"bind {name!r}: only bound loops may enclose a bound loop")
    kinds = [n.kind for n in nest]
    if axis in kinds or (axis.startswith("blockIdx") and any(k.startswith("threadIdx")
                                                             for k in kinds)):
        raise ScheduleError(f"bind {name!r} to {axis}: blocks go outside threads, each axis once")
    if any(isinstance(n, For) and n.kind == "parallel" for n in walk(loop)):
        raise ScheduleError(f"bind {name!r}: a parallel loop is nested inside")
    return _replace_loop(stmt, name, lambda f: dataclasses.replace(f, kind=axis))


def _inner_extents(stmt: Stmt) -> dict[Var, int]:
    return {n.var: as_int(n.extent) for n in walk(stmt) if isinstance(n, For)}


def _tile_of(accesses, inner: dict[Var, int], name: str):
    """Per dimension: (base expression, local index expression, local extent)."""
    index = accesses[0].index
    if any(a.index != index for a in accesses):
        raise ScheduleError(f"cache_write {name!r}: accesses use different indices")
    dims = []
    for d in index:
        form = linear_form(d)
        if form is None:
            raise ScheduleError(f"cache_write {name!r}: index {d} is not affine")
        local = {v: c for v, c in form.items() if v in inner}
        if any(c < 0 or inner[v] is None for v, c in local.items()):
            raise ScheduleError(f"cache_write {name!r}: tile extent is not a positive constant")
        base = {v: c for v, c in form.items() if v not in inner}
        extent = 1 + sum(c * (inner[v] - 1) for v, c in local.items())
        dims.append((from_linear(base), from_linear(local), extent))
    return dims


def cache_write(stmt: Stmt, buffer: str, at: str, prologue=None, epilogue=None) -> Stmt:
    """With the kernel's templates, the tile starts from the prologue's value and leaves
    through the epilogue, and the buffer itself is never read or written."""
    def rewrite(loop: For) -> Stmt:
        accesses = [n for n in walk(loop.body)
                    if isinstance(n, (Load, Store)) and n.buffer.name == buffer]
        if not accesses:
            raise ScheduleError(f"cache_write: {buffer!r} is not used under {at!r}")
        glob = accesses[0].buffer
        dims = _tile_of(accesses, _inner_extents(loop.body), buffer)
        order = _local_order(dims, _innermost_var(loop.body))
        local = Buffer(f"{buffer}_{at}_acc", glob.dtype,
                       tuple(const_int(dims[d][2]) for d in order), "local")
        body = transform(loop.body, lambda n: dataclasses.replace(
            n, buffer=local, index=tuple(dims[d][1] for d in order))
            if isinstance(n, (Load, Store)) and n.buffer.name == buffer else n)
        copy_in = _copy_nest(glob, local, dims, order, f"{buffer}_in", prologue)
        copy_out = _copy_nest(glob, local, dims, order, f"{buffer}_out", None, epilogue)
        return dataclasses.replace(loop, body=Allocate(local, Seq((copy_in, body, copy_out))))
    return _replace_loop(stmt, at, rewrite)


def _innermost_var(stmt: Stmt) -> Var | None:
    """The variable of the innermost loop of stmt's perfect nest (through guards)."""
    var = None
    while isinstance(stmt, (For, IfThen)):
        if isinstance(stmt, For):
            var, stmt = stmt.var, stmt.body
        else:
            stmt = stmt.then
    return var


def _local_order(dims, innermost: Var | None) -> list[int]:
    """Tile dimensions in the buffer's order, except that the one the innermost loop walks
    goes last: a vectorized innermost loop then reads the tile contiguously."""
    order = list(range(len(dims)))
    walked = [d for d in order if innermost is not None
              and innermost in linear_form(dims[d][1])]
    if walked:
        order.remove(walked[0])
        order.append(walked[0])
    return order


def _copy_nest(glob: Buffer, local: Buffer, dims, order, prefix: str, prologue=None,
               epilogue=None) -> Stmt:
    """The tile's load (prologue given or not: epilogue is None) or store loops, over the
    tile's dimensions in its own order."""
    extents = [(f"{prefix}{pos}", dims[d][2]) for pos, d in enumerate(order)]
    loading = prefix.endswith("_in")

    def body(*vs):
        at_dim = {d: v for d, v in zip(order, vs)}
        gidx = tuple(simplify(Binary("add", base, at_dim[d]))
                     for d, (base, _, _) in enumerate(dims))
        if loading:
            value = instantiate(prologue, gidx).value if prologue else Load(glob, gidx)
            move = Store(local, vs, value)
        elif epilogue is not None:
            move = simplify(instantiate(epilogue, gidx, glob.name, Load(local, vs)))
        else:
            move = Store(glob, gidx, Load(local, vs))
        for d in reversed(order):
            base, _, extent = dims[d]
            if extent > 1:
                move = IfThen(cmp("lt", simplify(Binary("add", base, at_dim[d])),
                                  glob.shape[d]), move)
        return move
    return loops(extents, body)


