"""What the library's skeleton needs of the generic program, the one whose shapes are
expressions over the dimension symbols: the symbols' values as C locals, its memory plan as a
function of them, and its input and output shapes."""
from __future__ import annotations

from ..loop.ir import Binary, Expr, Kernel, Program, Seq, Var
from ..loop.symbolic import canon, dims_of, symbols_of
from ..lower.memory import offset_var
from ..names import c_comment
from .c import KernelPrinter

_PRINTER = KernelPrinter(Kernel("plan", "plan", "plan", Seq(())))


def c_expr(e) -> str:
    """An int64 dimension expression as C (the symbols as locals of the same names)."""
    e = canon(e) if not isinstance(e, int) else e
    return str(e) if isinstance(e, int) else _PRINTER.expr(e)


def symbol_locals(prog: Program, source: str) -> list[str]:
    """`const int64_t dimK_name = source[K];` for each symbol, then a (void) for each: not
    every function reads every one."""
    lines = [f"const int64_t {s.var.name} = {source}[{i}];" for i, s in
             enumerate(prog.symbols)]
    return lines + [f"(void){s.var.name};" for s in prog.symbols]


def _max_terms(e) -> list:
    """The operands of a chain of max (the plan's offsets are such chains): printed one after
    another, as a nested C max would print each operand twice at every level."""
    if isinstance(e, Binary) and e.op == "max":
        return _max_terms(e.a) + _max_terms(e.b)
    return [e]


def _assign(target: str, value) -> list[str]:
    terms = _max_terms(value) if isinstance(value, Expr) else [value]
    lines = [f"int64_t {target} = {c_expr(terms[0])};"]
    for t in terms[1:]:
        lines.append(f"if ({c_expr(t)} > {target}) {target} = {c_expr(t)};")
    return lines


def plan_lines(prog: Program) -> list[str]:
    """The body of NAME_plan(dims, at): at[i] = the byte offset of temporary i, at[n] = the
    arena's size, at the symbols' values in dims."""
    lines = symbol_locals(prog, "dims")
    for i, (temp, offset) in enumerate(prog.offsets):
        name = offset_var(temp).name
        lines += _assign(name, offset) + [f"at[{i}] = {name};"]
    for j, (out, offset) in enumerate(prog.output_offsets):   # outputs the run sizes
        lines += _assign(f"{out}_at", offset) + [f"at[{len(prog.offsets) + j}] = {out}_at;"]
    lines += _assign("arena_bytes", prog.arena_size)
    return lines + [f"at[{len(prog.offsets) + len(prog.output_offsets)}] = arena_bytes;"]


def shape_rows(prog: Program, io: str) -> list[dict]:
    """Per input (or output): its shape's C expressions over the symbols."""
    run_time = {d.var for d in prog.runtime_dims}   # reported after the run (extents)
    return [{"dims": ["0" if run_time & set(symbols_of(d)) else c_expr(d) for d in dims_of(b)],
             "comment": c_comment(b.name)} for b in getattr(prog, f"{io}s")]


def temp_bindings(prog: Program, c_type) -> list[str]:
    """The generic run's pointers to its temporaries: at the offsets the plan gave."""
    lines = []
    for i, (temp, _) in enumerate(prog.offsets):
        t = c_type(next(b.dtype for b in prog.temps if b.name == temp))
        lines.append(f"{t} *{temp} = ({t} *)(arena + ctx->offsets[{i}]);")
    return lines


def symbol_index(prog: Program, d) -> int:
    """The index of the symbol a dimension is, or -1 (a number, or an expression)."""
    names = [s.var for s in prog.symbols]
    return names.index(d) if isinstance(d, Var) and d in names else -1
