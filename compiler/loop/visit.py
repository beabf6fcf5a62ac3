"""Generic traversal and rebuilding of IR nodes (every node is a frozen dataclass)."""
from __future__ import annotations

import dataclasses
import functools
from typing import Callable, Iterator

from .ir import Buffer, Expr, For, Kernel, Load, Node, Stmt, Store, Var


@functools.cache
def _field_names(cls: type) -> tuple[str, ...]:
    # dataclasses.fields() rebuilds its tuple on every call: the walks call it millions of times
    return tuple(f.name for f in dataclasses.fields(cls))


def children(node: Node) -> Iterator[Node]:
    for name in _field_names(type(node)):
        value = getattr(node, name)
        if isinstance(value, Node):
            yield value
        elif isinstance(value, tuple):
            yield from (v for v in value if isinstance(v, Node))


def walk(node: Node) -> Iterator[Node]:
    """Pre-order over every expression and statement under node (buffers are not visited)."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(list(children(current))))


def transform(node: Node, post: Callable[[Node], Node]) -> Node:
    """Rebuild bottom-up; post(n) returns n's replacement. Unchanged subtrees keep identity."""
    changes = {}
    for name in _field_names(type(node)):
        value = getattr(node, name)
        if isinstance(value, Node):
            new = transform(value, post)
            if new is not value:
                changes[name] = new
        elif isinstance(value, tuple) and any(isinstance(v, Node) for v in value):
            new_items = tuple(transform(v, post) if isinstance(v, Node) else v for v in value)
            if any(a is not b for a, b in zip(new_items, value)):
                changes[name] = new_items
    rebuilt = dataclasses.replace(node, **changes) if changes else node
    return post(rebuilt)


def substitute(node: Node, mapping: dict[Var, Expr]) -> Node:
    if not mapping:
        return node
    return transform(node, lambda n: mapping.get(n, n) if isinstance(n, Var) else n)


def free_vars(node: Node) -> set[Var]:
    return {n for n in walk(node) if isinstance(n, Var)}


def buffers_of(node: Node) -> dict[str, Buffer]:
    """Buffers loaded or stored under node, by name, in first-use order."""
    found: dict[str, Buffer] = {}
    for n in walk(node):
        buf = getattr(n, "buffer", None)
        if isinstance(buf, Buffer):
            found.setdefault(buf.name, buf)
    return found


def replace_buffers(node: Node, mapping: dict[str, Buffer]) -> Node:
    def post(n):
        buf = getattr(n, "buffer", None)
        if isinstance(buf, Buffer) and buf.name in mapping:
            return dataclasses.replace(n, buffer=mapping[buf.name])
        return n
    return transform(node, post)


def map_stmts(stmt: Stmt, fn: Callable[[Stmt], Stmt]) -> Stmt:
    """Like transform but only statements are offered to fn."""
    return transform(stmt, lambda n: fn(n) if isinstance(n, Stmt) else n)


def buffer_accesses(kernel: Kernel, name: str) -> list:
    """Every load and store of buffer `name` (any view of it) in the kernel's parts."""
    return [n for part in kernel.parts for n in walk(part)
            if isinstance(n, (Load, Store)) and n.buffer.name == name]


def transform_kernel(kernel: Kernel, post: Callable[[Node], Node]) -> Kernel:
    """transform() applied to the kernel's body, prologue and epilogue."""
    return dataclasses.replace(kernel, **{
        part: transform(getattr(kernel, part), post)
        for part in ("body", "prologue", "epilogue") if getattr(kernel, part) is not None})


def perfect_nest(stmt: Stmt) -> list[For]:
    """The loops of stmt's perfect nest, outermost first: stmt while it is a loop whose body
    is a loop."""
    chain = []
    while isinstance(stmt, For):
        chain.append(stmt)
        stmt = stmt.body
    return chain
