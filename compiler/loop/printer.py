"""Text form of the loop IR, for tests and `--dump-ir`."""
from __future__ import annotations

from .ir import (
    Allocate,
    Barrier,
    Binary,
    Bitcast,
    Broadcast,
    Cast,
    Const,
    Expr,
    Fma,
    For,
    HReduce,
    IfThen,
    Kernel,
    Load,
    Mma,
    Pack,
    Program,
    Select,
    Seq,
    Stmt,
    Store,
    Unary,
    Var,
)

_INFIX = {"add": "+", "sub": "-", "mul": "*", "div": "/", "floordiv": "//", "mod": "%",
          "lt": "<", "le": "<=", "gt": ">", "ge": ">=", "eq": "==", "ne": "!=",
          "and": "&&", "or": "||", "xor": "^"}


def expr_str(e: Expr) -> str:
    match e:
        case Const(value=v, dtype=dt):
            return str(v) if dt in ("int64", "bool") else f"{v!r}:{dt}"
        case Var(name=n):
            return n
        case Load(buffer=b, index=idx, count=c, stride=st):
            vec = (f"<{c}>" if st == 1 else f"<{c}:{st}>") if c > 1 else ""
            return f"{b.name}{vec}[{', '.join(expr_str(i) for i in idx)}]"
        case Binary(op=op, a=a, b=b) if op in _INFIX:
            return f"({expr_str(a)} {_INFIX[op]} {expr_str(b)})"
        case Binary(op=op, a=a, b=b):
            return f"{op}({expr_str(a)}, {expr_str(b)})"
        case Unary(op=op, a=a):
            return f"{op}({expr_str(a)})"
        case Fma(a=a, b=b, c=c):
            return f"fma({expr_str(a)}, {expr_str(b)}, {expr_str(c)})"
        case Select(cond=c, a=a, b=b):
            return f"select({expr_str(c)}, {expr_str(a)}, {expr_str(b)})"
        case Cast(dtype=dt, a=a):
            return f"{dt}({expr_str(a)})"
        case Bitcast(dtype=dt, a=a):
            return f"bitcast<{dt}>({expr_str(a)})"
        case Broadcast(value=v, count=c):
            return f"broadcast<{c}>({expr_str(v)})"
        case HReduce(op=op, value=v):
            return f"reduce_{op}({expr_str(v)})"
        case Pack(values=vs):
            return f"pack({', '.join(expr_str(v) for v in vs)})"
    raise TypeError(f"not an expression: {e!r}")


def stmt_lines(s: Stmt, indent: int = 0) -> list[str]:
    pad = "  " * indent
    match s:
        case For(var=v, extent=ext, body=body, kind=kind, grain=grain):
            tag = "" if kind == "serial" else f"  # {kind}"
            tag += f" grain {grain}" if grain != 1 else ""
            return [f"{pad}for {v.name} in 0..{expr_str(ext)}:{tag}"] + stmt_lines(body, indent + 1)
        case Store(buffer=b, index=idx, value=val, stride=st):
            vec = (f"<{val.lanes}>" if st == 1 else f"<{val.lanes}:{st}>") if val.lanes > 1 else ""
            return [f"{pad}{b.name}{vec}[{', '.join(expr_str(i) for i in idx)}] = {expr_str(val)}"]
        case Seq(body=body):
            return [line for st in body for line in stmt_lines(st, indent)]
        case IfThen(cond=c, then=t, orelse=o):
            lines = [f"{pad}if {expr_str(c)}:"] + stmt_lines(t, indent + 1)
            if o is not None:
                lines += [f"{pad}else:"] + stmt_lines(o, indent + 1)
            return lines
        case Barrier():
            return [f"{pad}barrier"]
        case Mma(op=op, fragment=f, slot=slot, shape=shape, precision=p, operands=args):
            head = f"{pad}mma_{op} {f.name}[{expr_str(slot)}] {'x'.join(map(str, shape))} {p}"
            where = ", ".join(f"{b.name}" for b in s.sources)
            return [f"{head} ({where}; {', '.join(expr_str(a) for a in args)}) "
                    f"{' '.join(s.layouts)}:"] + stmt_lines(s.body, indent + 1)
        case Allocate(buffer=b, body=body):
            dims = ", ".join(expr_str(d) for d in b.shape)
            return [f"{pad}alloc {b.name}: {b.dtype}[{dims}] {b.scope}"] + stmt_lines(body, indent)
    raise TypeError(f"not a statement: {s!r}")


def kernel_str(k: Kernel) -> str:
    head = f"kernel {k.name}  # {k.op_type} {k.node!r} ({k.kind})"
    lines = [head]
    for label, template in (("prologue", k.prologue), ("epilogue", k.epilogue)):
        if template is not None:
            lines += [f"  {label}:"] + stmt_lines(template, 2)
    return "\n".join(lines + stmt_lines(k.body, 1))


def program_str(p: Program) -> str:
    def decl(b):
        return f"{b.name}: {b.dtype}[{', '.join(expr_str(d) for d in b.shape)}]"
    lines = [f"program {p.name}"]
    lines += [f"  input {decl(b)}" for b in p.inputs]
    lines += [f"  output {decl(b)}" for b in p.outputs]
    lines += [f"  const {decl(c.buffer)}" for c in p.constants]
    lines += [f"  temp {decl(b)}" for b in p.temps]
    lines += [f"  alias {v.name} -> {s.name}" for v, s in p.aliases]
    if p.offsets:
        lines += [f"  arena {p.arena_size} bytes"]
        lines += [f"    {name} @ {off}" for name, off in p.offsets]
    return "\n".join(lines + [kernel_str(k) for k in p.kernels])
