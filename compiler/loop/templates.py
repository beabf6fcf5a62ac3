"""Prologue/epilogue templates of a kernel: loops over the accumulated buffer's shape."""
from __future__ import annotations

import dataclasses

from .ir import For, Kernel, Load, Stmt, Store, Var, seq
from .visit import substitute, transform

TEMPLATE_VAR = "p"


def template_vars(rank: int) -> list[Var]:
    return [Var(f"{TEMPLATE_VAR}{d}") for d in range(rank)]


def _nest(template: Store, shape) -> Stmt:
    vars_ = template_vars(len(shape))
    stmt: Stmt = template
    for var, extent in reversed(list(zip(vars_, shape))):
        stmt = For(var, extent, stmt)
    return stmt


def materialize_templates(kernel: Kernel) -> Kernel:
    """Prologue and epilogue as plain loops around the body (an epilogue comes with the
    prologue that names the accumulated buffer)."""
    if kernel.prologue is None:
        return kernel
    shape = kernel.prologue.buffer.shape
    parts = [_nest(kernel.prologue, shape) if kernel.prologue else None, kernel.body,
             _nest(kernel.epilogue, shape) if kernel.epilogue else None]
    return dataclasses.replace(kernel, body=seq(*[p for p in parts if p is not None]),
                               prologue=None, epilogue=None)


def instantiate(template: Store, index, accumulated: str | None = None, value=None) -> Store:
    """The template at buffer index `index`; loads of the accumulated buffer at the template
    position become `value` (the tile's register) when given."""
    mapping = dict(zip(template_vars(len(index)), index))

    def swap(n):
        if value is not None and isinstance(n, Load) and n.buffer.name == accumulated:
            return value
        return n
    replaced = transform(template, swap) if value is not None else template
    return substitute(replaced, mapping)
