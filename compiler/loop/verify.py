"""verify_program: structural checks of the loop IR between passes (raises IRError)."""
from __future__ import annotations

from ..errors import IRError
from .ir import Allocate, For, IfThen, Kernel, Load, Program, Seq, Stmt, Store, Var
from .visit import walk


def _check_nesting(kernel: str, stmt: Stmt, enclosing: frozenset) -> None:
    """Peeled copies may reuse a loop name side by side, never one inside the other."""
    match stmt:
        case For(var=v, body=body):
            if v.name in enclosing:
                raise IRError(f"{kernel}: loop {v.name!r} is nested in itself")
            _check_nesting(kernel, body, enclosing | {v.name})
        case Seq(body=body):
            for s in body:
                _check_nesting(kernel, s, enclosing)
        case IfThen(then=then, orelse=orelse):
            for s in (then, orelse):
                if s is not None:
                    _check_nesting(kernel, s, enclosing)
        case Allocate(body=body):
            _check_nesting(kernel, body, enclosing)


def _check_kernel(k: Kernel, dims: set[Var]) -> None:
    loop_names: set[str] = set()
    bound: set[Var] = set(dims)
    local: set[str] = set()
    _check_nesting(k.name, k.body, frozenset())
    nodes = list(walk(k.body))
    for n in nodes:
        if isinstance(n, For):
            loop_names.add(n.var.name)
            bound.add(n.var)
        elif isinstance(n, Allocate):
            local.add(n.buffer.name)
    for n in nodes:
        if isinstance(n, Var) and n not in bound:
            raise IRError(f"{k.name}: variable {n.name!r} is not bound by a loop")
        if isinstance(n, (Load, Store)):
            b = n.buffer
            if b.scope in ("local", "register") and b.name not in local:
                raise IRError(f"{k.name}: {b.name!r} is used outside its allocation")
            if len(n.index) not in (b.rank, 1):
                raise IRError(f"{k.name}: {b.name!r} of rank {b.rank} indexed with "
                              f"{len(n.index)} subscripts")
        if isinstance(n, Store) and n.value.dtype != n.buffer.dtype:
            raise IRError(f"{k.name}: stores {n.value.dtype} into {n.buffer.dtype} "
                          f"buffer {n.buffer.name!r}")


def verify_program(prog: Program) -> Program:
    """Returns prog unchanged when it is well formed."""
    dims = {v for b in prog.inputs for d in b.shape for v in walk(d) if isinstance(v, Var)}
    names = [k.name for k in prog.kernels]
    if len(set(names)) != len(names):
        raise IRError("two kernels share a name")
    pending = {d.source.name: d.var for d in prog.runtime_dims}
    for k in prog.kernels:
        _check_kernel(k, dims)
        # an extent the data decides is known to the kernels after the one that stores it
        if pending:
            stored = {n.buffer.name for n in walk(k.body) if isinstance(n, Store)}
            dims |= {pending.pop(name) for name in stored & set(pending)}
    return prog
