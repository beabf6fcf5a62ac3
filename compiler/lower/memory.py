"""plan_memory: one arena; temporaries whose lifetimes do not overlap share bytes.

With symbolic shapes a temporary's size is an expression. Where every symbol has an upper
bound and every size grows with the symbols, the plan is made at the upper bounds: a static
arena that fits every shape in the ranges (embedded users size their memory once). Otherwise
the placement follows the order of first use, each buffer above every earlier one it shares
lifetime with, and each offset is an expression: the highest end among those, computed at
run time from the symbols' values in order (offset_var names an earlier offset).
"""
from __future__ import annotations

import dataclasses

from .. import dtypes
from ..errors import ModelError
from ..loop.ir import Binary, Const, Expr, Program, Var
from ..loop.symbolic import (
    as_dim_expr,
    canon,
    dim_str,
    evaluate,
    never_shrinks,
    product,
    symbols_of,
)
from ..loop.visit import buffers_of, substitute

ALIGNMENT = 64   # bytes: a cache line, and enough for any vector load
HINT = 64        # the value an unbounded symbol is taken to have when choosing a placement


def _aligned(size):
    if isinstance(size, int):
        return max(ALIGNMENT, -(-size // ALIGNMENT) * ALIGNMENT)
    up = Binary("floordiv", Binary("add", size, Const(ALIGNMENT - 1, "int64")),
                Const(ALIGNMENT, "int64"))
    return canon(Binary("mul", up, Const(ALIGNMENT, "int64")))


def _nbytes(buf, run_time: dict):
    """The bytes buf takes, at the upper bounds of the extents the data decides (run_time:
    their Vars -> bounds): such a buffer is placed before its extent is known."""
    size = canon(as_dim_expr(product(buf.shape)) * dtypes.itemsize(buf.dtype))
    if run_time and set(symbols_of(size)) & set(run_time):
        if not never_shrinks(size):
            raise ModelError(f"tensor {buf.name!r} of shape [{', '.join(map(dim_str, buf.shape))}]"
                             ": its size does not grow with the extents the data decides, so "
                             "their bounds do not bound it")
        size = canon(substitute(as_dim_expr(size), run_time))
    return _aligned(size)


def offset_var(name: str) -> Var:
    return Var(f"{name}_at")


def lifetimes(prog: Program) -> dict[str, tuple[int, int]]:
    """Temp name -> (first kernel, last kernel) that touches it or a view of it."""
    root = {view.name: storage.name for view, storage in prog.aliases}
    temps = {b.name for b in prog.temps}
    spans: dict[str, tuple[int, int]] = {}
    for i, k in enumerate(prog.kernels):
        for name in buffers_of(k.body):
            name = root.get(name, name)
            if name in temps:
                first, _ = spans.get(name, (i, i))
                spans[name] = (first, i)
    return spans


def _place(spans, sizes: dict[str, int], gaps: bool = True) -> list[tuple[str, int, list[str]]]:
    """First fit in order of first use: (name, offset, the live buffers below it). Without
    gaps a buffer goes above every buffer it shares lifetime with: a gap between two that
    fits at some values of the symbols may not fit at others."""
    placed: list[tuple[str, int, int, int, int]] = []   # name, offset, size, first, last
    out = []
    for name in sorted(spans, key=lambda n: (spans[n][0], n)):
        first, last = spans[name]
        busy = sorted((o, s, n) for n, o, s, f, l_ in placed if not (l_ < first or last < f))
        offset, below = 0, []
        for o, s, n in busy:
            if gaps and offset + sizes[name] <= o:
                break
            offset = max(offset, o + s)
            below.append(n)
        placed.append((name, offset, sizes[name], first, last))
        out.append((name, offset, below if gaps else _topmost(below, spans, placed)))
    return out


def _topmost(below: list[str], spans, placed) -> list[str]:
    """The buffers of `below` no later one of which shares their lifetime: placed above
    every such earlier buffer, a later one ends higher, so the others add nothing to the
    maximum of the ends (the run-time plan's expressions stay short)."""
    order = {entry[0]: i for i, entry in enumerate(placed)}

    def overlap(a, b):
        return not (spans[a][1] < spans[b][0] or spans[b][1] < spans[a][0])
    return [c for c in below if not any(order[d] > order[c] and overlap(c, d)
                                        for d in below)]


def plan_memory(prog: Program) -> Program:
    spans = lifetimes(prog)
    run_time = {d.var: as_dim_expr(d.bound) for d in prog.runtime_dims}
    sizes = {b.name: _nbytes(b, run_time) for b in prog.temps}
    owned = list(dict.fromkeys(out for out, _, _ in prog.extents))
    sizes.update({b.name: _nbytes(b, run_time) for b in prog.outputs if b.name in owned})
    bounded = all(s.high is not None for s in prog.symbols) and \
        all(never_shrinks(s) for s in sizes.values())
    at = {s.var.name: s.high if bounded else max(s.low, min(HINT, s.high or HINT))
          for s in prog.symbols}
    static_sizes = {n: evaluate(s, at) for n, s in sizes.items()}
    static = bounded or all(isinstance(s, int) for s in sizes.values())
    placement = _place(spans, static_sizes, gaps=static)
    if static:
        offsets = [(name, offset) for name, offset, _ in placement]
        arena = max((o + static_sizes[n] for n, o in offsets), default=0)
        out_offsets = []
        for name in owned:      # read by the caller after the run: nothing reuses them
            out_offsets.append((name, arena))
            arena += static_sizes[name]
        return dataclasses.replace(prog, offsets=tuple(offsets), arena_size=arena,
                                   output_offsets=tuple(out_offsets))
    return _symbolic_plan(prog, placement, sizes, owned)


def _end(name: str, sizes) -> Expr:
    return canon(offset_var(name) + sizes[name])


def _max(exprs: list) -> int | Expr:
    if not exprs:
        return 0
    out = exprs[0]
    for e in exprs[1:]:
        out = Binary("max", out if isinstance(out, Expr) else Const(out, "int64"), e)
    return out


def _symbolic_plan(prog: Program, placement, sizes, owned) -> Program:
    offsets = [(name, _max([_end(n, sizes) for n in below])) for name, _, below in placement]
    arena = _max([_end(n, sizes) for n, _, _ in placement])
    out_offsets = []
    for name in owned:
        out_offsets.append((name, arena))
        arena = canon(Binary("add", arena if isinstance(arena, Expr) else
                             Const(arena, "int64"), sizes[name] if isinstance(sizes[name], Expr)
                             else Const(sizes[name], "int64")))
    return dataclasses.replace(prog, offsets=tuple(offsets), arena_size=arena,
                               output_offsets=tuple(out_offsets))
