"""Loop-nest IR: immutable expressions, statements, buffers, kernels and programs.

Extents and buffer shapes are expressions, not ints: a Var may stand for a named dimension of a
model input. Nothing here says where a loop runs: `For.kind` is an annotation that the lowering
passes turn into CPU vectors, unrolled copies, a thread-pool launch, or GPU indices.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

COMPARISONS = frozenset({"lt", "le", "gt", "ge", "eq", "ne"})
LOGICAL = frozenset({"and", "or", "xor"})
BITWISE = frozenset({"bitand", "bitor", "bitxor", "shl", "shr"})    # integer operands only
BINARY_OPS = frozenset({"add", "sub", "mul", "div", "floordiv", "mod", "fmod", "max", "min",
                        "pow"}) \
    | COMPARISONS | LOGICAL | BITWISE
UNARY_OPS = frozenset({"neg", "abs", "sqrt", "exp", "log", "tanh", "erf", "sigmoid", "floor",
                       "ceil", "round", "not", "sin", "cos", "reciprocal", "bitnot", "tan",
                       "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh", "atanh",
                       "round_tf32"})     # float32 to TF32's 10 mantissa bits (tensor cores)
# A loop bound to a GPU index runs its iterations as the launch's blocks or threads: the
# interpreter and the C printer run them one after another, which the binding allows.
GPU_AXES = ("blockIdx.x", "blockIdx.y", "blockIdx.z", "threadIdx.x", "threadIdx.y",
            "threadIdx.z")
LOOP_KINDS = ("serial", "unroll", "vectorize", "parallel") + GPU_AXES


class Node:
    __slots__ = ()


class Expr(Node):
    __slots__ = ()

    # Arithmetic sugar for lowerings; comparisons stay functions because == is structural.
    def __add__(self, other): return Binary("add", self, as_expr(other, self.dtype))
    def __radd__(self, other): return Binary("add", as_expr(other, self.dtype), self)
    def __sub__(self, other): return Binary("sub", self, as_expr(other, self.dtype))
    def __rsub__(self, other): return Binary("sub", as_expr(other, self.dtype), self)
    def __mul__(self, other): return Binary("mul", self, as_expr(other, self.dtype))
    def __rmul__(self, other): return Binary("mul", as_expr(other, self.dtype), self)
    def __truediv__(self, other): return Binary("div", self, as_expr(other, self.dtype))
    def __floordiv__(self, other): return Binary("floordiv", self, as_expr(other, self.dtype))
    def __mod__(self, other): return Binary("mod", self, as_expr(other, self.dtype))
    def __neg__(self): return Unary("neg", self)

    @property
    def lanes(self) -> int:
        return 1


class Stmt(Node):
    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Buffer:
    """A named n-d array. scope 'global' lives in the model's memory ('constant' if it holds
    weights known at compile time); 'local' and 'register' in the kernel. On a GPU, 'shared'
    is one array per block, and 'thread' is [threads, n]: row t is thread t's own (indexed
    by the enclosing thread loops' linear index; a GPU thread keeps just its row), and
    'fragment' is [warps, fragments, m * n]: a warp's tensor-core tiles (see Mma). A margin, per
    dimension (before, after), says the buffer is the interior of a larger one of that name
    (a producer writing straight into its consumer's padded input). A block (dim, factor)
    stores that dimension in blocks of `factor` innermost (channels-blocked NCHWc: element
    [n, c, h, w] of [N, C, H, W] at [n, c // f, h, w, c % f])."""
    name: str
    dtype: str
    shape: tuple[Expr, ...]
    scope: str = "global"
    margin: tuple[tuple[int, int], ...] = ()
    block: tuple[int, int] = ()

    @property
    def rank(self) -> int:
        return len(self.shape)


@dataclass(frozen=True, slots=True)
class Const(Expr):
    value: int | float | bool
    dtype: str = "int64"


@dataclass(frozen=True, slots=True)
class Var(Expr):
    name: str
    dtype: str = "int64"


@dataclass(frozen=True, slots=True)
class Load(Expr):
    """buffer[index]; with count > 1 a vector of `count` elements from index, `stride`
    elements apart (1: contiguous)."""
    buffer: Buffer
    index: tuple[Expr, ...]
    count: int = 1
    stride: int = 1

    @property
    def dtype(self) -> str:
        return self.buffer.dtype

    @property
    def lanes(self) -> int:
        return self.count


@dataclass(frozen=True, slots=True)
class Binary(Expr):
    op: str
    a: Expr
    b: Expr

    @property
    def dtype(self) -> str:
        return "bool" if self.op in COMPARISONS else self.a.dtype

    @property
    def lanes(self) -> int:
        return max(self.a.lanes, self.b.lanes)


@dataclass(frozen=True, slots=True)
class Unary(Expr):
    op: str
    a: Expr

    @property
    def dtype(self) -> str:
        return self.a.dtype

    @property
    def lanes(self) -> int:
        return self.a.lanes


@dataclass(frozen=True, slots=True)
class Fma(Expr):
    """a * b + c, fused (one rounding)."""
    a: Expr
    b: Expr
    c: Expr

    @property
    def dtype(self) -> str:
        return self.c.dtype

    @property
    def lanes(self) -> int:
        return max(self.a.lanes, self.b.lanes, self.c.lanes)


@dataclass(frozen=True, slots=True)
class Select(Expr):
    """cond ? a : b, with both arms evaluated (vector lanes compute both): an arm must be
    safe to evaluate even where it is not selected. Guard a load with IfThen instead."""
    cond: Expr
    a: Expr
    b: Expr

    @property
    def dtype(self) -> str:
        return self.a.dtype

    @property
    def lanes(self) -> int:
        return max(self.cond.lanes, self.a.lanes, self.b.lanes)


@dataclass(frozen=True, slots=True)
class Cast(Expr):
    dtype: str
    a: Expr

    @property
    def lanes(self) -> int:
        return self.a.lanes


@dataclass(frozen=True, slots=True)
class Bitcast(Expr):
    """a's bits read as `dtype`, a type of the same width (ONNX BitCast): no value
    conversion, unlike Cast."""
    dtype: str
    a: Expr

    @property
    def lanes(self) -> int:
        return self.a.lanes


@dataclass(frozen=True, slots=True)
class Broadcast(Expr):
    """A scalar repeated over `count` vector lanes."""
    value: Expr
    count: int

    @property
    def dtype(self) -> str:
        return self.value.dtype

    @property
    def lanes(self) -> int:
        return self.count


@dataclass(frozen=True, slots=True)
class For(Stmt):
    """A loop over var in [0, extent). A 'parallel' loop runs on the thread pool in chunks of
    at least `grain` iterations."""
    var: Var
    extent: Expr
    body: Stmt
    kind: str = "serial"
    grain: int = 1


@dataclass(frozen=True, slots=True)
class Store(Stmt):
    """buffer[index] = value; a vector value goes to consecutive elements from index, or to
    elements `stride` apart (a tile written across the output's rows)."""
    buffer: Buffer
    index: tuple[Expr, ...]
    value: Expr
    stride: int = 1


@dataclass(frozen=True, slots=True)
class Seq(Stmt):
    body: tuple[Stmt, ...]


@dataclass(frozen=True, slots=True)
class IfThen(Stmt):
    cond: Expr
    then: Stmt
    orelse: Stmt | None = None


@dataclass(frozen=True, slots=True)
class Barrier(Stmt):
    """The threads of a GPU block wait here until all arrive (shared memory written before is
    then visible to all). It separates thread loops under a block loop: run one after another,
    as the interpreter and the CPU printers do, they need no wait."""


@dataclass(frozen=True, slots=True)
class Mma(Stmt):
    """One warp's tensor-core operation on its tile `slot` of `fragment`, for MMAs of `shape`
    (m, n, k) on `precision` operands. `body` is what it computes, as scalar loops the
    interpreter and the CPU printers run; the CUDA printer prints the warp-level call:
      fill          accumulator tile (m x n) = 0
      load_a/load_b operand tile (m x k / k x n) = sources[0]'s elements (r, c) at
                    operands[0] + r * operands[1] + c (layouts[0] "row_major") or
                    + c * operands[1] + r ("col_major")
      mma           accumulator tile += sources[0][operands[0]] @ sources[1][operands[1]]
      store         sources[0][operands[0] + i * operands[1] + j] = the tile's (i, j)
    Every lane of the warp runs it: it sits under a loop bound to the warp, outside the
    lanes' loop."""
    op: str
    fragment: Buffer
    slot: Expr
    shape: tuple[int, int, int]
    precision: str
    sources: tuple[Buffer, ...]
    operands: tuple[Expr, ...]
    layouts: tuple[str, ...]
    body: Stmt


@dataclass(frozen=True, slots=True)
class Allocate(Stmt):
    """A kernel-local buffer (registers or stack) live over `body`."""
    buffer: Buffer
    body: Stmt


@dataclass(frozen=True, slots=True)
class Kernel:
    name: str            # C identifier, unique in the program
    node: str            # the ONNX node it comes from (for comments)
    op_type: str
    body: Stmt
    kind: str = "generic"   # what the schedule heuristics key on: elementwise, matmul, conv...
    # Templates over variables p0, p1, ... (one per dimension of the buffer the body
    # accumulates into): the prologue stores its initial value, the epilogue turns its final
    # value into the kernel's output. A cache_write of that buffer absorbs them into its tile
    # copies; otherwise materialize_templates runs them as loops before and after the body.
    prologue: Stmt | None = None
    epilogue: Stmt | None = None
    # The 16-bit float type ("float16", "bfloat16") the model holds this kernel's tensors in,
    # which widen_half_floats computes in float32: what tensor cores may round operands to.
    narrow_float: str | None = None
    # The kernel whose function runs this one: the same code over other buffers (a repeated
    # layer's); set by share_identical_kernels, None where this kernel has its own.
    code_of: str | None = None

    @property
    def parts(self) -> tuple[Stmt, ...]:
        """Body, prologue and epilogue: every statement the kernel holds."""
        return tuple(p for p in (self.body, self.prologue, self.epilogue) if p is not None)


@dataclass(frozen=True, slots=True, eq=False)
class Constant:
    buffer: Buffer
    data: np.ndarray


@dataclass(frozen=True, slots=True)
class Symbol:
    """A dimension symbol: its Var, its range (high None: unbounded), and the value schedules
    are chosen for (None: the default, schedule/hints.py)."""
    var: Var
    low: int = 1
    high: int | None = None
    hint: int | None = None


@dataclass(frozen=True, slots=True)
class RuntimeDim:
    """An extent the data decides (NonZero's count): its Var, which the shapes after its
    producer name like a dimension symbol; its upper bound (an int, or an expression over the
    dimension symbols), at which memory is planned; and the int64[1] buffer its producer's
    kernel stores the value in, which the run reads into the Var after that kernel."""
    var: Var
    bound: int | Expr
    source: Buffer


@dataclass(frozen=True, slots=True)
class Program:
    name: str
    inputs: tuple[Buffer, ...]
    outputs: tuple[Buffer, ...]
    constants: tuple[Constant, ...]
    temps: tuple[Buffer, ...]
    kernels: tuple[Kernel, ...]
    aliases: tuple[tuple[Buffer, Buffer], ...] = ()   # (view, storage): view shares storage
    offsets: tuple[tuple[str, int | Expr], ...] = ()   # memory plan: temp -> arena byte offset
    arena_size: int | Expr = 0
    input_names: tuple[str, ...] = field(default=())   # original ONNX names, same order
    output_names: tuple[str, ...] = field(default=())
    # Outputs whose size the data decides: (output buffer name, axis, the int64[1] buffer a
    # kernel stores the extent in). Such an output lives in the arena (the runtime owns it),
    # at output_offsets, and its buffer shape is the upper bound.
    extents: tuple[tuple[str, int, Buffer], ...] = ()
    output_offsets: tuple[tuple[str, int | Expr], ...] = ()
    # Run-time checks: (int64[1] flag a kernel sets when a tensor value breaks what the
    # program was compiled for, the error the run then fails with).
    faults: tuple[tuple[Buffer, str], ...] = ()
    # The dimension symbols the shapes name, in the library's order. With symbols, an offset
    # and the arena size may be expressions: an offset's may name earlier offsets as Vars
    # (offset_var), computed in order.
    symbols: tuple[Symbol, ...] = ()
    runtime_dims: tuple[RuntimeDim, ...] = ()


def storage_position(buffer: Buffer, index, split=None) -> list[tuple]:
    """(position, extent) per dimension in the buffer's storage: the margins added, a
    blocked dimension as (index // f, its blocks) with (index % f, f) last. split(e, f)
    gives (e // f, e % f)."""
    margin = buffer.margin or ((0, 0),) * buffer.rank
    out = [(i + before if before else i, dim + (before + after) if before + after else dim)
           for i, dim, (before, after) in zip(index, buffer.shape, margin)]
    if buffer.block:
        d, f = buffer.block
        quotient, remainder = split(out[d][0], f)
        out[d] = (quotient, (out[d][1] + (f - 1)) // f)
        out.append((remainder, const_int(f)))
    return out


def as_expr(value, dtype: str = "int64") -> Expr:
    if isinstance(value, Expr):
        return value
    if isinstance(value, (bool, np.bool_)):
        return Const(bool(value), "bool")
    if isinstance(value, (int, np.integer)) and not np.dtype(dtype).kind == "f":
        return Const(int(value), dtype)
    return Const(float(value), dtype)


def const_int(value) -> Expr:
    """An int64 constant; a dimension expression (over symbols) passes through."""
    return value if isinstance(value, Expr) else Const(int(value), "int64")


def shape_of(*dims) -> tuple[Expr, ...]:
    """A buffer shape from ints, dimension names or expressions."""
    return tuple(Var(d) if isinstance(d, str) else as_expr(d) for d in dims)


def as_int(expr: Expr) -> int | None:
    return expr.value if isinstance(expr, Const) else None


def is_static(buffer: Buffer) -> bool:
    return all(isinstance(d, Const) for d in buffer.shape)


def static_shape(buffer: Buffer) -> tuple[int, ...]:
    dims = tuple(as_int(d) for d in buffer.shape)
    if any(d is None for d in dims):
        raise ValueError(f"buffer {buffer.name} has a symbolic shape")
    return dims


def cmp(op: str, a: Expr, b) -> Binary:
    return Binary(op, a, as_expr(b, a.dtype))


def call(op: str, a: Expr) -> Unary:
    return Unary(op, a)


def seq(*stmts: Stmt) -> Stmt:
    flat: list[Stmt] = []
    for s in stmts:
        if isinstance(s, Seq):
            flat.extend(s.body)
        elif s is not None:
            flat.append(s)
    return flat[0] if len(flat) == 1 else Seq(tuple(flat))


def loops(names_extents, body_fn, kind: str = "serial") -> Stmt:
    """Nest loops named after axes: loops([('i', 4), ('j', 8)], lambda i, j: Store(...))."""
    vars_ = [Var(name) for name, _ in names_extents]
    stmt = body_fn(*vars_)
    for var, (_, extent) in reversed(list(zip(vars_, names_extents))):
        stmt = For(var, as_expr(extent), stmt, kind)
    return stmt


@dataclass(frozen=True, slots=True)
class Pack(Expr):
    """A vector built lane by lane from scalars (a gather)."""
    values: tuple[Expr, ...]

    @property
    def dtype(self) -> str:
        return self.values[0].dtype

    @property
    def lanes(self) -> int:
        return len(self.values)


@dataclass(frozen=True, slots=True)
class HReduce(Expr):
    """A vector folded into one scalar with add, max or min (any lane order)."""
    op: str
    value: Expr

    @property
    def dtype(self) -> str:
        return self.value.dtype
