"""Helpers shared by op lowerings: loop nests over a shape, broadcasting, copies."""
from __future__ import annotations

from ..loop.ir import Buffer, Const, Expr, Load, Store, Var, loops, shape_of
from ..loop.symbolic import dims_of

ZERO = Const(0, "int64")


def axis_names(rank: int, prefix: str = "i") -> list[str]:
    return [f"{prefix}{d}" for d in range(rank)]


def broadcast_index(out_vars, in_shape) -> tuple[Expr, ...]:
    """Index into an input broadcast (numpy rules) against an output indexed by out_vars."""
    offset = len(out_vars) - len(in_shape)
    return tuple(ZERO if dim == 1 else out_vars[offset + d] for d, dim in enumerate(in_shape))


def check_broadcast(ctx, what: str, shape, target) -> None:
    """A ModelError unless shape broadcasts to target one way (numpy rules, target kept):
    a load_broadcast of it over target's loops then stays inside it."""
    shape, target = tuple(shape), tuple(target)
    if len(shape) > len(target) or any(
            d not in (1, t) for d, t in zip(shape[::-1], target[::-1])):
        from ..errors import ModelError
        raise ModelError(f"node {ctx.node.name!r} ({ctx.node.op_type}): {what} of shape "
                         f"{list(shape)} does not broadcast to {list(target)}")


def load_broadcast(buf: Buffer, out_vars) -> Load:
    return Load(buf, broadcast_index(out_vars, dims_of(buf)))


def nest(shape, body_fn, prefix: str = "i"):
    """Loops over `shape` named i0, i1, ...; body_fn gets the loop variables."""
    names = axis_names(len(shape), prefix)
    if not shape:
        return body_fn()
    return loops(list(zip(names, shape)), body_fn)


def copy_body(dst: Buffer, src: Buffer):
    """dst[...] = src[...] over dst's shape (same element count, same order)."""
    shape = dims_of(dst)
    if dims_of(src) == shape:
        return nest(shape, lambda *v: Store(dst, tuple(v), Load(src, tuple(v))))
    flat = 1
    for d in shape:
        flat *= d
    d1 = view(dst, flat)
    s1 = view(src, flat)
    return nest((flat,), lambda i: Store(d1, (i,), Load(s1, (i,))))


def index_vars(n: int, prefix: str = "i") -> list[Var]:
    return [Var(name) for name in axis_names(n, prefix)]


def view(buf: Buffer, *shape) -> Buffer:
    """The same storage seen with another shape, same element order (same name: the same
    pointer in generated code)."""
    return Buffer(buf.name, buf.dtype, shape_of(*shape), buf.scope)
