"""The C backend: prints the final loop IR. It decides nothing: every choice is in the IR."""
from __future__ import annotations

import math

from .. import dtypes
from ..errors import IRError
from ..loop.ir import (
    Allocate,
    Barrier,
    Binary,
    Bitcast,
    Broadcast,
    Buffer,
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
    Select,
    Seq,
    Stmt,
    Store,
    Unary,
    Var,
    static_shape,
)
from ..loop.visit import buffers_of, walk
from ..names import c_comment
from .intrinsics import CONVERSIONS, spell, vector_type

GLOBAL_SCOPES = ("global", "constant")


def c_type(dtype: str) -> str:
    return dtypes.dtype(dtype).c_type


def _float_literal(value: float, dtype: str) -> str:
    suffix = "f" if dtype == "float32" else ""
    if math.isnan(value):
        return "NAN"
    if math.isinf(value):
        return "INFINITY" if value > 0 else "-INFINITY"
    if dtype == "float32":
        text = repr(float(__import__("numpy").float32(value)))
    else:
        text = repr(float(value))
    if "e" not in text and "." not in text:
        text += ".0"
    return f"{text}{suffix}"


class KernelPrinter:
    def __init__(self, kernel: Kernel, features=()):
        self.kernel = kernel
        self.features = tuple(features)
        self.tasks: list[str] = []

    # -- expressions -------------------------------------------------------------------------
    def expr(self, e: Expr) -> str:
        match e:
            case Const(value=v, dtype=dt):
                if dtypes.dtype(dt).is_float:
                    return _float_literal(v, dt)
                if dt == "bool":
                    return "1" if v else "0"
                return f"INT64_C({int(v)})" if abs(int(v)) >= 2 ** 31 else str(int(v))
            case Var(name=n):
                return n
            case Load(buffer=b, index=(i,), count=c):
                if b.scope == "register":
                    return b.name
                if c > 1:
                    kind = "load" if e.stride == 1 else f"load_s{e.stride}"
                    return f"onnxc_{kind}_v{c}f(&{b.name}[{self.expr(i)}])"
                return f"{b.name}[{self.subscript(b, i)}]"
            case Binary(op=op, a=a, b=b):
                operand = a if a.lanes >= b.lanes else b
                return self.call(op, operand.dtype, e.lanes, a, b)
            case Unary(op=op, a=a):
                return self.call(op, a.dtype, e.lanes, a)
            case Fma(a=a, b=b, c=c):
                return self.call("fma", e.dtype, e.lanes, a, b, c)
            case Select(cond=c, a=a, b=b):
                if e.lanes > 1:
                    return self.call("select", e.dtype, e.lanes, c, a, b)
                return f"({self.expr(c)} ? {self.expr(a)} : {self.expr(b)})"
            case Cast(dtype=dt, a=a):
                if (a.dtype, dt) in CONVERSIONS:
                    return CONVERSIONS[(a.dtype, dt)].format(self.expr(a))
                return f"(({c_type(dt)}){self.expr(a)})"
            case Bitcast():
                return self.bitcast(e)
            case Broadcast(value=v, count=c):
                return f"onnxc_broadcast_v{c}f({self.expr(v)})"
            case HReduce(op=op, value=v):
                return f"onnxc_h{op}_v{v.lanes}f({self.expr(v)})"
            case Pack(values=vs):
                return f"(({vector_type(e.dtype, e.lanes)}){{{', '.join(map(self.expr, vs))}}})"
        raise IRError(f"C backend cannot print {e!r}")

    def subscript(self, b: Buffer, index: Expr) -> str:
        """The printed element offset of a scalar access."""
        return self.expr(index)

    def bitcast(self, e: Bitcast) -> str:
        # a union, not a pointer cast: type punning C defines
        return (f"((union {{ {c_type(e.a.dtype)} from; {c_type(e.dtype)} to; }}){{ .from = "
                f"{self.expr(e.a)} }}).to")

    def call(self, op: str, dtype: str, lanes: int, *args: Expr) -> str:
        return spell(op, dtype, lanes, self.features).format(*(self.expr(a) for a in args))

    # -- statements --------------------------------------------------------------------------
    def stmt(self, s: Stmt, pad: str) -> list[str]:
        match s:
            case For(kind="parallel"):
                return self.parallel(s, pad)
            case For(var=v, extent=ext, body=body):
                name = v.name
                head = f"{pad}for (int64_t {name} = 0; {name} < {self.expr(ext)}; ++{name}) {{"
                return [head] + self.stmt(body, pad + "  ") + [f"{pad}}}"]
            case Store(buffer=b, index=(i,), value=val, stride=st):
                if b.scope == "register":
                    return [f"{pad}{b.name} = {self.expr(val)};"]
                if val.lanes > 1 and st != 1:
                    return [f"{pad}onnxc_store_strided_v{val.lanes}f(&{b.name}[{self.expr(i)}], "
                            f"{st}, {self.expr(val)});"]
                if val.lanes > 1:
                    return [f"{pad}onnxc_store_v{val.lanes}f(&{b.name}[{self.expr(i)}], "
                            f"{self.expr(val)});"]
                return [f"{pad}{b.name}[{self.subscript(b, i)}] = {self.expr(val)};"]
            case Seq(body=body):
                return [line for x in body for line in self.stmt(x, pad)]
            case IfThen(cond=c, then=t, orelse=o):
                lines = [f"{pad}if ({self.expr(c)}) {{"] + self.stmt(t, pad + "  ")
                if o is not None:
                    lines += [f"{pad}}} else {{"] + self.stmt(o, pad + "  ")
                return lines + [f"{pad}}}"]
            case Barrier():
                return self.barrier(pad)
            case Mma():
                return self.mma(s, pad)
            case Allocate(buffer=b, body=body):
                # its own block: a peeled copy of the same nest declares the same name
                return [f"{pad}{{", f"{pad}  {self.declare(b)};"] + self.stmt(body, pad + "  ") \
                    + [f"{pad}}}"]
        raise IRError(f"C backend cannot print {s!r}")

    def mma(self, s: Mma, pad: str) -> list[str]:
        return [f"{pad}/* the warp's tensor-core {s.op} of {s.fragment.name}, as loops */"] + \
            self.stmt(s.body, pad)

    def barrier(self, pad: str) -> list[str]:
        return [f"{pad}/* barrier: the thread loops run one after another here */"]

    def declare(self, b: Buffer) -> str:
        (size,) = static_shape(b) if b.rank == 1 else (None,)
        if b.scope == "register":
            return f"{vector_type(b.dtype, size) if size > 1 else c_type(b.dtype)} {b.name}"
        return f"{c_type(b.dtype)} {b.name}[{math.prod(static_shape(b))}] " \
            "__attribute__((aligned(64)))"

    def parallel(self, loop: For, pad: str) -> list[str]:
        """Outline the loop into a task over [begin, end) run by onnxc_parallel_for."""
        n = len(self.tasks)
        task = f"{self.kernel.name}_task{n}"
        bufs, free = task_captures(loop, self.kernel.name)
        written = {x.buffer.name for x in walk(loop.body) if isinstance(x, Store)}
        fields = [param_decl(b, b.name in written, restrict=False) for b in bufs] + \
            [f"int64_t {v.name}" for v in free]
        names = [b.name for b in bufs] + [v.name for v in free]
        body_lines = [f"  {param_decl(b, b.name in written)} = args->{b.name};" for b in bufs]
        body_lines += [f"  const int64_t {v.name} = args->{v.name};" for v in free]
        body_lines += [f"  for (int64_t {loop.var.name} = begin; {loop.var.name} < end; "
                       f"++{loop.var.name}) {{"] + self.stmt(loop.body, "    ") + ["  }"]
        struct = "struct " + task + "_args"
        self.tasks.append("\n".join(
            [f"{struct} {{ {'; '.join(fields)}; }};",
             f"static void {task}(void *ctx, int64_t begin, int64_t end) {{",
             f"  const {struct} *args = ctx;"] + body_lines + ["}"]))
        init = ", ".join(names)
        return [f"{pad}{{",
                f"{pad}  {struct} args = {{ {init} }};",
                f"{pad}  onnxc_parallel_for(pool, {self.expr(loop.extent)}, {loop.grain}, "
                f"{task}, &args);",
                f"{pad}}}"]


def task_captures(loop: For, kernel_name: str) -> tuple[list[Buffer], list[Var]]:
    """What a parallel loop's task takes from its kernel: the global buffers it uses (first
    use first) and its free variables (by name). Local buffers must be its own."""
    bound = {x.var for x in walk(loop) if isinstance(x, For)}
    free = sorted({x for x in walk(loop.body) if isinstance(x, Var)} - bound,
                  key=lambda v: v.name)
    local = {x.buffer.name for x in walk(loop) if isinstance(x, Allocate)}
    used = list(buffers_of(loop.body).values())
    if any(b.name not in local for b in used if b.scope not in GLOBAL_SCOPES):
        raise IRError(f"{kernel_name}: a parallel loop uses a local buffer from outside")
    return [b for b in used if b.scope in GLOBAL_SCOPES], free


def kernel_signature(params: list[tuple[Buffer, bool]], symbols: list[Var] = ()) -> str:
    """A kernel's C parameter list: the pool, its buffers (kernel_params), then the values
    of the dimension symbols it reads (kernel_symbols)."""
    return ", ".join(["onnxc_pool *pool"] + [param_decl(b, w) for b, w in params]
                     + [f"int64_t {v.name}" for v in symbols])


def kernel_symbols(k: Kernel) -> list[Var]:
    """The variables a kernel reads that no loop of its own binds: the dimension symbols,
    whose values its caller passes (by name)."""
    found: set[Var] = set()
    for part in k.parts:
        bound = {x.var for x in walk(part) if isinstance(x, For)}
        found |= {x for x in walk(part) if isinstance(x, Var)} - bound
    return sorted(found, key=lambda v: v.name)


def param_decl(b: Buffer, written: bool, restrict: bool = True) -> str:
    qual = "" if written else "const "
    return f"{qual}{c_type(b.dtype)} *{'restrict ' if restrict else ''}{b.name}"


def kernel_params(k: Kernel) -> list[tuple[Buffer, bool]]:
    written = {x.buffer.name for x in walk(k.body) if isinstance(x, Store)}
    return [(b, b.name in written) for b in buffers_of(k.body).values() if b.scope in GLOBAL_SCOPES]


def print_kernel(k: Kernel, features=()) -> dict:
    """The kernel as C: its tasks, its function, and the buffers it takes (in order)."""
    printer = KernelPrinter(k, features)
    body = printer.stmt(k.body, "  ")
    params, symbols = kernel_params(k), kernel_symbols(k)
    uses_pool = any(isinstance(x, For) and x.kind == "parallel" for x in walk(k.body))
    sig = kernel_signature(params, symbols)
    lines = [f"/* {c_comment(k.op_type)} node \"{c_comment(k.node)}\" */",
             f"static void {k.name}({sig}) {{"]
    if not uses_pool:
        lines.append("  (void)pool;")
    lines += body + ["}"]
    return {"name": k.name, "tasks": printer.tasks, "function": "\n".join(lines),
            "args": [b.name for b, _ in params] + [v.name for v in symbols]}
