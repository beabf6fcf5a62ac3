"""The CUDA backend: the final loop IR as CUDA C, a dialect of the C printer.

Each top-level statement of a kernel is one launch: its leading loops bound to blockIdx and
threadIdx give the grid and the block (a statement with none runs as one thread), and print
as the index they are bound to. The rest is the C printer's, with C++ spellings where C's
differ. The device code goes to NAME_kernels.cu (built by nvcc into an image the library
embeds); each kernel's host side, printed as C into NAME.c, launches it through the driver.
It decides nothing: the IR says what runs where.
"""
from __future__ import annotations

import math

from ..errors import IRError
from ..loop.affine import from_linear, linear_form
from ..loop.ir import (
    GPU_AXES,
    Allocate,
    Barrier,
    Bitcast,
    Broadcast,
    Buffer,
    Expr,
    For,
    HReduce,
    IfThen,
    Kernel,
    Load,
    Mma,
    Pack,
    Seq,
    Stmt,
    Store,
    as_int,
    static_shape,
)
from ..loop.visit import buffers_of, free_vars, walk
from ..names import c_comment
from ..targets import Target
from .c import GLOBAL_SCOPES, KernelPrinter, c_type, kernel_params, param_decl

DEVICE_HEADER = "onnxc_cuda_device.h"


# Threads of a warp (every NVIDIA GPU's): the lanes a tensor-core operation takes together.
WARP_SIZE = 32

# Blocks a launch may have along x, y and z (every GPU since compute capability 3.0).
GRID_LIMITS = (2 ** 31 - 1, 65535, 65535)

# Where vector values come from: a GPU schedule never makes them.
VECTOR_FORMS = (Broadcast, Pack, HReduce)

# Tensor cores (wmma): the fragment element type of each operand type, and how a pointer to
# its staged values is passed (16-bit floats are stored as uint16_t).
MMA_TYPES = {"tfloat32": ("wmma::precision::tf32", "{0}"),
             "float16": ("__half", "reinterpret_cast<const __half *>({0})"),
             "bfloat16": ("__nv_bfloat16", "reinterpret_cast<const __nv_bfloat16 *>({0})")}
# The operand each load fills
MMA_OPERANDS = {"load_a": "matrix_a", "load_b": "matrix_b"}
MMA_HEADER = "mma.h"
# wmma::load_matrix_sync and store_matrix_sync need 256-bit aligned pointers
SHARED_ALIGN = 32


class CudaKernelPrinter(KernelPrinter):
    def __init__(self, kernel: Kernel, features=()):
        super().__init__(kernel, features)
        self.threads: list[For] = []      # the enclosing thread loops, outermost first

    def bitcast(self, e: Bitcast) -> str:
        return f"onnxc_bitcast<{c_type(e.dtype)}>({self.expr(e.a)})"

    def stmt(self, s: Stmt, pad: str) -> list[str]:
        if isinstance(s, For) and s.kind in GPU_AXES:
            per_thread = s.kind.startswith("threadIdx")
            if per_thread:
                self.threads.append(s)
            body = self.stmt(s.body, pad + "  ")
            if per_thread:
                self.threads.pop()
            return [f"{pad}{{", f"{pad}  const int64_t {s.var.name} = (int64_t){s.kind};"] + \
                body + [f"{pad}}}"]
        if isinstance(s, Allocate) and s.buffer.scope == "fragment":
            return [f"{pad}{{", f"{pad}  {self.fragments(s)};"] + self.stmt(s.body, pad + "  ") \
                + [f"{pad}}}"]
        return super().stmt(s, pad)

    def fragments(self, a: Allocate) -> str:
        """A warp's tiles of one kind (accumulators or an operand, as the first operation
        that writes them says): each thread holds its part of each."""
        use = next((n for n in walk(a.body) if isinstance(n, Mma)
                    and n.fragment.name == a.buffer.name), None)
        if use is None:
            raise IRError(f"{self.kernel.name}: fragment {a.buffer.name} without an MMA")
        m, n, k = use.shape
        if use.op in MMA_OPERANDS:
            kind = f"wmma::{MMA_OPERANDS[use.op]}, {m}, {n}, {k}, " \
                f"{MMA_TYPES[use.precision][0]}, wmma::{use.layouts[0]}"
        else:
            kind = f"wmma::accumulator, {m}, {n}, {k}, float"
        return f"wmma::fragment<{kind}> {a.buffer.name}[{static_shape(a.buffer)[1]}]"

    def mma(self, s: Mma, pad: str) -> list[str]:
        frag = f"{s.fragment.name}[{self.expr(s.slot)}]"
        if s.op == "fill":
            return [f"{pad}wmma::fill_fragment({frag}, 0.0f);"]
        if s.op == "mma":
            a, b = (f"{f.name}[{self.expr(i)}]" for f, i in zip(s.sources, s.operands))
            return [f"{pad}wmma::mma_sync({frag}, {a}, {b}, {frag});"]
        at, ld = f"&{s.sources[0].name}[{self.expr(s.operands[0])}]", self.expr(s.operands[1])
        if s.op == "store":
            return [f"{pad}wmma::store_matrix_sync({at}, {frag}, {ld}, "
                    f"wmma::mem_{s.layouts[0]});"]
        pointer = MMA_TYPES[s.precision][1]
        return [f"{pad}wmma::load_matrix_sync({frag}, {pointer.format(at)}, {ld});"]

    def barrier(self, pad: str) -> list[str]:
        return [f"{pad}__syncthreads();"]

    def declare(self, b: Buffer) -> str:
        if b.scope == "shared":
            count = math.prod(static_shape(b))
            return f"__shared__ __align__({SHARED_ALIGN}) {c_type(b.dtype)} {b.name}[{count}]"
        if b.scope == "thread":        # this thread's row
            return f"{c_type(b.dtype)} {b.name}[{static_shape(b)[1]}]"
        return super().declare(b)

    def subscript(self, b: Buffer, index: Expr) -> str:
        """A thread buffer's offset t * row + r, with t the thread's index in the block
        (the enclosing thread loops' variables, the innermost fastest), prints as r: each
        GPU thread holds only its row."""
        if b.scope != "thread":
            return super().subscript(b, index)
        form = linear_form(index) or {}
        stride, own = static_shape(b)[1], {}
        for loop in reversed(self.threads):
            own[loop.var] = stride
            stride *= as_int(loop.extent)
        if not own or any(form.get(v) != c for v, c in own.items()):
            raise IRError(f"{self.kernel.name}: {b.name} is not indexed by its thread's row")
        return self.expr(from_linear({k: v for k, v in form.items() if k not in own}))

    def parallel(self, loop: For, pad: str) -> list[str]:
        raise IRError(f"{self.kernel.name}: a thread-pool loop in a CUDA kernel")


def launches(body: Stmt) -> list[Stmt]:
    """The kernel's top-level statements, one launch each."""
    return [s for part in body.body for s in launches(part)] if isinstance(body, Seq) \
        else [body]


def geometry(stmt: Stmt, kernel: str, max_threads: int) -> tuple[list[int], list[int]]:
    """(grid, block) sizes, x y z: the statement's leading loops bound to blockIdx give the
    grid, its loops bound to threadIdx (leading, or phases under the blocks) the block."""
    grid, block = [1, 1, 1], [1, 1, 1]
    while isinstance(stmt, For) and stmt.kind in GPU_AXES:
        sizes = grid if stmt.kind.startswith("blockIdx") else block
        sizes["xyz".index(stmt.kind[-1])] = as_int(stmt.extent)
        if stmt.kind.startswith("threadIdx"):
            break
        stmt = stmt.body
    extents: dict[str, set] = {}
    for n in walk(stmt):
        if isinstance(n, For) and n.kind.startswith("blockIdx"):
            raise IRError(f"{kernel}: a loop bound to blockIdx inside another loop")
        if isinstance(n, For) and n.kind.startswith("threadIdx"):
            extents.setdefault(n.kind, set()).add(as_int(n.extent))
    for axis, values in sorted(extents.items()):
        if len(values) > 1:
            raise IRError(f"{kernel}: loops bound to {axis} of extents {sorted(values)}")
        block["xyz".index(axis[-1])] = values.pop()
    if block[0] * block[1] * block[2] > max_threads:
        raise IRError(f"{kernel}: {block} threads per block, more than the GPU's {max_threads}")
    if any(size > limit for size, limit in zip(grid, GRID_LIMITS)):
        raise IRError(f"{kernel}: a grid of {grid} blocks, beyond CUDA's {list(GRID_LIMITS)}")
    if block[0] != WARP_SIZE and any(isinstance(n, Mma) for n in walk(stmt)):
        raise IRError(f"{kernel}: tensor-core operations need blocks {WARP_SIZE} threads "
                      f"wide (a warp's lanes along x), not {block[0]}")
    if block != [1, 1, 1]:
        _check_phases(stmt, kernel, frozenset())
        _synchronized(stmt, kernel, (frozenset(), frozenset()))
    return grid, block


def _shared_uses(stmt: Stmt, kind) -> frozenset:
    return frozenset(n.buffer.name for n in walk(stmt)
                     if isinstance(n, kind) and n.buffer.scope == "shared")


def _synchronized(stmt: Stmt, kernel: str, since: tuple) -> tuple:
    """Shared memory (read, written) by the phases since the last barrier, after stmt: a
    phase that touches what another wrote, or writes what another read, without a barrier
    between them races with it (run in order, as on a CPU, it would not show)."""
    read, written = since
    match stmt:
        case Barrier():
            return frozenset(), frozenset()
        case For(kind=kind) if kind.startswith("threadIdx"):
            loads, stores = _shared_uses(stmt, Load), _shared_uses(stmt, Store)
            clash = (loads & written) | (stores & (read | written))
            if clash:
                raise IRError(f"{kernel}: phases share {', '.join(sorted(clash))} without a "
                              f"barrier between them")
            return read | loads, written | stores
        case For(body=body):           # the next iteration follows the last one's phases
            return _synchronized(body, kernel, _synchronized(body, kernel, since))
        case Seq(body=body):
            for child in body:
                since = _synchronized(child, kernel, since)
            return since
        case Allocate(body=body):
            return _synchronized(body, kernel, since)
        case IfThen(then=then, orelse=orelse):
            after = [_synchronized(s, kernel, since) for s in (then, orelse) if s is not None]
            return (frozenset().union(*(r for r, _ in after), read),
                    frozenset().union(*(w for _, w in after), written))
    return since


# What every thread of a block would do if a phase's thread loops did not own it
_SHARED_SCOPES = GLOBAL_SCOPES + ("shared",)


def _check_phases(stmt: Stmt, kernel: str, axes: frozenset) -> None:
    """Under the blocks, code outside the thread loops runs once per thread: it may compute
    and loop, but not store to memory the threads share; a barrier must be reached by all
    threads, so never inside a thread loop."""
    if isinstance(stmt, For) and stmt.kind in GPU_AXES:
        if stmt.kind in axes:
            raise IRError(f"{kernel}: a loop bound to {stmt.kind} inside another")
        axes = axes | {stmt.kind}
    elif isinstance(stmt, Barrier) and axes:
        raise IRError(f"{kernel}: a barrier inside a thread loop")
    elif isinstance(stmt, Store) and not axes and stmt.buffer.scope in _SHARED_SCOPES:
        raise IRError(f"{kernel}: a store to {stmt.buffer.name} outside the thread loops "
                      f"(every thread would make it)")
    elif isinstance(stmt, Mma) and (not axes or "threadIdx.x" in axes):
        raise IRError(f"{kernel}: a tensor-core operation must run on whole warps: under a "
                      f"loop bound to threadIdx.y or z, outside the lanes' threadIdx.x")
    elif isinstance(stmt, Allocate) and axes and stmt.buffer.scope in ("shared", "thread",
                                                                       "fragment"):
        raise IRError(f"{kernel}: {stmt.buffer.name} ({stmt.buffer.scope}) allocated inside "
                      f"a thread loop")
    for child in _statements(stmt):
        _check_phases(child, kernel, axes)


def _statements(stmt: Stmt) -> tuple:
    match stmt:
        case For(body=body) | Allocate(body=body):
            return (body,)
        case Seq(body=body):
            return body
        case IfThen(then=then, orelse=orelse):
            return (then,) if orelse is None else (then, orelse)
    return ()


def _device_param(b: Buffer, written: bool) -> str:
    return f"{'' if written else 'const '}{c_type(b.dtype)} *__restrict__ {b.name}"


class CudaModule:
    """The device source of every kernel of a model (NAME_kernels.cu) and the names of its
    entry points, in the order the library looks them up."""

    def __init__(self, name: str, target: Target):
        self.name, self.target = name, target
        self.entries: list[str] = []
        self.functions: list[str] = []
        self.tensor_cores = False          # some kernel calls wmma

    def __str__(self) -> str:
        head = [f"/* {self.name}_kernels.cu: generated by onnxc; the device code of {self.name}.",
                f" * GPU: {self.target.gpu.arch} ({c_comment(self.target.tag)}) */",
                "#include <stdint.h>", f'#include "{DEVICE_HEADER}"']
        if self.tensor_cores:
            head += [f"#include <{MMA_HEADER}>", "namespace wmma = nvcuda::wmma;"]
        head.append("")
        return "\n".join(head + ["\n\n".join(self.functions), ""])

    def add(self, k: Kernel, stmt: Stmt, launch: int, features
            ) -> tuple[int, list, list, list[Buffer]]:
        """The kernel's launch number `launch` as a __global__ function; (entry index, grid,
        block, buffers)."""
        entry = f"{k.name}_{launch}"
        grid, block = geometry(stmt, k.name, self.target.gpu.max_threads_per_block)
        if free_vars(stmt) - {n.var for n in walk(stmt) if isinstance(n, For)}:
            raise IRError(f"{k.name}: a launch reads variables from outside it")
        vectors = [x for x in walk(stmt) if isinstance(x, VECTOR_FORMS)
                   or (isinstance(x, Load) and x.count > 1)]
        if vectors:
            raise IRError(f"{k.name}: CUDA kernels have no vector forms ({vectors[0]!r})")
        self.tensor_cores |= any(isinstance(x, Mma) for x in walk(stmt))
        written = {x.buffer.name for x in walk(stmt) if isinstance(x, Store)}
        bufs = [b for b in buffers_of(stmt).values() if b.scope in GLOBAL_SCOPES]
        params = ", ".join(_device_param(b, b.name in written) for b in bufs) or "void"
        body = CudaKernelPrinter(k, features).stmt(stmt, "  ")
        threads = block[0] * block[1] * block[2]
        self.functions.append("\n".join(
            [f"/* {c_comment(k.op_type)} node \"{c_comment(k.node)}\": grid {grid}, "
             f"block {block} */",
             f'extern "C" __global__ void __launch_bounds__({threads}) {entry}({params}) {{']
            + body + ["}"]))
        self.entries.append(entry)
        return len(self.entries) - 1, grid, block, bufs


def _dims(values: list[int]) -> str:
    return "{ " + ", ".join(map(str, values)) + " }"


def emit_kernel(module: CudaModule, k: Kernel, features=()) -> dict:
    """The kernel's launches into the module, and the host function that runs them (C, for
    the skeleton): it returns the first failing launch's status."""
    params = kernel_params(k)
    lines = [f"/* {c_comment(k.op_type)} node \"{c_comment(k.node)}\" */",
             f"static int {k.name}(onnxc_cuda *cuda"
             + "".join(", " + param_decl(b, w) for b, w in params) + ") {"]
    if not launches(k.body):
        lines.append("  (void)cuda;")
    for launch, stmt in enumerate(launches(k.body)):
        entry, grid, block, bufs = module.add(k, stmt, launch, features)
        args = ", ".join(f"(void *)&{b.name}" for b in bufs) or "NULL"
        lines += ["  {",
                  f"    static const unsigned grid[3] = {_dims(grid)}, block[3] = {_dims(block)};",
                  f"    void *params[] = {{ {args} }};",
                  f"    int status = onnxc_cuda_launch(cuda, {entry}, grid, block, 0, params);",
                  "    if (status != ONNXC_OK) return status;",
                  "  }"]
    args = [b.name for b, _ in params]
    call = f"if ({k.name}({', '.join(['cuda'] + args)}) != ONNXC_OK) " \
        f"return {module.name}_cuda_fail(ctx);"
    return {"name": k.name, "tasks": [], "function": "\n".join(lines + ["  return ONNXC_OK;",
                                                                        "}"]),
            "args": args, "call": call}
