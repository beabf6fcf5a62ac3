"""The LLVM backend: prints the final loop IR as LLVM IR with llvmlite.ir.

Like the C backend it decides nothing. It spells each operation from the same table
(intrinsics.llvm_spell) with C's semantics, so that both backends compute the same numbers:
integers narrower than int are computed promoted, as C does; a bool is i1 in a register and a
byte in memory; float32 max/min let a NaN win. Kernels become functions that the C skeleton
(templates/model.c.j2) declares and calls with the C backend's arguments; a parallel loop
becomes a task function run by the runtime's onnxc_parallel_for, as in C.
"""
from __future__ import annotations

import math

from llvmlite import ir

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
from ..names import c_comment
from . import llvm_ops as ops
from .c import kernel_params, kernel_signature, kernel_symbols, task_captures

I64 = ir.IntType(64)
PTR = ir.PointerType()
VOID = ir.VoidType()
LOCAL_ALIGNMENT = 64     # as the C backend's local arrays
TASK_TYPE = ir.FunctionType(VOID, [PTR, I64, I64])
PARALLEL_FOR = ("onnxc_parallel_for", ir.FunctionType(VOID, [PTR, I64, I64, PTR, PTR]))


class FunctionEmitter:
    """Emits one function (a kernel or a task): statements into blocks, expressions into
    values. Loop variables and local buffers live in entry-block allocas (mem2reg and SROA
    turn them into registers)."""

    def __init__(self, module: ir.Module, function: ir.Function, features, name: str):
        self.module, self.function, self.features, self.name = module, function, features, name
        self.entry = function.append_basic_block("entry")
        self.allocas = ir.IRBuilder(self.entry)
        self.builder = ir.IRBuilder(function.append_basic_block("body"))
        self.vars: dict[str, ir.Value] = {}       # name -> alloca holding the i64 value
        self.buffers: dict[str, ir.Value] = {}    # name -> pointer to its first element
        self.tasks = 0
        self.ops = ops.OpEmitter(module, self.builder, features, self.alloca)

    def finish(self) -> None:
        self.builder.ret_void()
        self.allocas.branch(self.function.basic_blocks[1])

    def alloca(self, typ: ir.Type, name: str, align: int | None = None) -> ir.Value:
        slot = self.allocas.alloca(typ, name=name)
        if align:
            slot.align = align
        slot.type = PTR     # llvmlite types allocas as typed pointers; LLVM's are opaque
        return slot

    # -- expressions -------------------------------------------------------------------------
    def expr(self, e: Expr) -> ir.Value:
        method = getattr(self, "_" + type(e).__name__.lower(), None)
        if method is None:
            raise IRError(f"LLVM backend cannot print {e!r}")
        return method(e)

    def _const(self, e: Const) -> ir.Value:
        return ops.constant(e.value, e.dtype)

    def _var(self, e: Var) -> ir.Value:
        if e.name not in self.vars:
            raise IRError(f"{self.name}: variable {e.name} is not bound")
        return self.builder.load(self.vars[e.name], typ=I64)

    def address(self, b: Buffer, index: Expr) -> ir.Value:
        offset = self.ops.convert(self.expr(index), index.dtype, "int64")
        return self.builder.gep(self.buffers[b.name], [offset], inbounds=True,
                                source_etype=ops.storage_type(b.dtype))

    def _load(self, e: Load) -> ir.Value:
        b = e.buffer
        if b.scope == "register":
            return self.builder.load(self.buffers[b.name], typ=self.register_type(b))
        (index,) = e.index
        return self.ops.load(self.address(b, index), b.dtype, e.count, e.stride)

    def _binary(self, e: Binary) -> ir.Value:
        if e.op in ("and", "or") and e.lanes == 1:
            return self.short_circuit(e)
        return self.ops.binary(e.op, self.expr(e.a), e.a.dtype, self.expr(e.b), e.b.dtype,
                               e.lanes)

    def conditional(self, cond: ir.Value, e: Select) -> ir.Value:
        """A scalar select as C's `c ? a : b`: only the chosen arm runs (LLVM turns it back
        into a select where both arms are safe and cheap)."""
        b = self.builder
        arms = []
        then, orelse = (self.function.append_basic_block(f"select.{x}") for x in ("a", "b"))
        done = self.function.append_basic_block("select.done")
        b.cbranch(cond, then, orelse)
        for block, arm in ((then, e.a), (orelse, e.b)):
            b.position_at_end(block)
            arms.append((self.ops.convert(self.expr(arm), arm.dtype, e.a.dtype), b.block))
            b.branch(done)
        b.position_at_end(done)
        result = b.phi(arms[0][0].type)
        for value, block in arms:
            result.add_incoming(value, block)
        return result

    def short_circuit(self, e: Binary) -> ir.Value:
        """Scalar && and || as in C: b is evaluated only when a does not decide (the IR
        relies on it, e.g. `k < count && kept[k] ...` reads kept[k] only below count)."""
        b = self.builder
        first = self.ops.truth(self.expr(e.a), e.a.dtype)
        start = b.block
        rhs = self.function.append_basic_block(f"{e.op}.rhs")
        done = self.function.append_basic_block(f"{e.op}.done")
        b.cbranch(first, rhs, done) if e.op == "and" else b.cbranch(first, done, rhs)
        b.position_at_end(rhs)
        second = self.ops.truth(self.expr(e.b), e.b.dtype)
        rhs_end = b.block
        b.branch(done)
        b.position_at_end(done)
        result = b.phi(ops.I1)
        result.add_incoming(first, start)
        result.add_incoming(second, rhs_end)
        return result

    def _unary(self, e: Unary) -> ir.Value:
        return self.ops.unary(e.op, self.expr(e.a), e.a.dtype, e.lanes)

    def _fma(self, e: Fma) -> ir.Value:
        args = [self.ops.widen(self.expr(x), x.dtype, e.lanes) for x in (e.a, e.b, e.c)]
        return self.ops.fma(args, e.dtype, e.lanes)

    def _select(self, e: Select) -> ir.Value:
        cond = self.ops.truth(self.expr(e.cond), e.cond.dtype)
        if e.lanes == 1:
            return self.conditional(cond, e)
        a = self.ops.widen(self.expr(e.a), e.a.dtype, e.lanes)
        b = self.ops.convert(self.expr(e.b), e.b.dtype, e.a.dtype, e.b.lanes)
        b = self.ops.widen(b, e.a.dtype, e.lanes)
        if e.cond.lanes == 1:
            cond = self.ops.widen(cond, "bool", e.lanes)
        return self.builder.select(cond, a, b)

    def _cast(self, e: Cast) -> ir.Value:
        return self.ops.convert(self.expr(e.a), e.a.dtype, e.dtype, e.lanes)

    def _bitcast(self, e: Bitcast) -> ir.Value:
        value = self.expr(e.a)
        target = ops.value_type(e.dtype, e.lanes)
        return value if value.type == target else self.builder.bitcast(value, target)

    def _broadcast(self, e: Broadcast) -> ir.Value:
        return self.ops.widen(self.expr(e.value), e.dtype, e.count)

    def _hreduce(self, e: HReduce) -> ir.Value:
        return self.ops.hreduce(e.op, self.expr(e.value), e.dtype, e.value.lanes)

    def _pack(self, e: Pack) -> ir.Value:
        return self.ops.pack([self.expr(v) for v in e.values], e.dtype)

    def register_type(self, b: Buffer) -> ir.Type:
        (size,) = static_shape(b)
        return ops.value_type(b.dtype, size)

    # -- statements --------------------------------------------------------------------------
    def stmt(self, s: Stmt) -> None:
        match s:
            case For(kind="parallel"):
                self.parallel(s)
            case For():
                self.loop(s)
            case Store():
                self.store(s)
            case Seq(body=body):
                for x in body:
                    self.stmt(x)
            case IfThen():
                self.if_then(s)
            case Barrier():
                pass                 # thread loops run one after another on a CPU
            case Mma(body=body):
                self.stmt(body)      # what the warp's tensor-core operation computes
            case Allocate(buffer=b, body=body):
                self.allocate(b)
                self.stmt(body)
            case _:
                raise IRError(f"LLVM backend cannot print {s!r}")

    def loop(self, s: For, begin: ir.Value | None = None, end: ir.Value | None = None) -> None:
        """for (var = begin; var < end; ++var) body, begin 0 and end the extent by default."""
        b = self.builder
        name = s.var.name
        end = self.expr(s.extent) if end is None else end
        slot = self.vars.get(name) or self.alloca(I64, name)
        self.vars[name] = slot
        b.store(begin if begin is not None else ir.Constant(I64, 0), slot)
        head, body, done = (self.function.append_basic_block(f"{name}.{part}")
                            for part in ("head", "body", "done"))
        b.branch(head)
        b.position_at_end(head)
        b.cbranch(b.icmp_signed("<", b.load(slot, typ=I64), end), body, done)
        b.position_at_end(body)
        self.stmt(s.body)
        b.store(b.add(b.load(slot, typ=I64), ir.Constant(I64, 1), flags=("nsw",)), slot)
        b.branch(head)
        b.position_at_end(done)

    def store(self, s: Store) -> None:
        b = s.buffer
        lanes = s.value.lanes
        value = self.ops.convert(self.expr(s.value), s.value.dtype, b.dtype, lanes)
        if b.scope == "register":
            self.builder.store(value, self.buffers[b.name])
            return
        (index,) = s.index
        self.ops.store(value, self.address(b, index), b.dtype, lanes, s.stride)

    def if_then(self, s: IfThen) -> None:
        cond = self.ops.truth(self.expr(s.cond), s.cond.dtype)
        if s.orelse is None:
            with self.builder.if_then(cond):
                self.stmt(s.then)
            return
        with self.builder.if_else(cond) as (then, orelse):
            with then:
                self.stmt(s.then)
            with orelse:
                self.stmt(s.orelse)

    def allocate(self, b: Buffer) -> None:
        if b.scope == "register":
            self.buffers[b.name] = self.alloca(self.register_type(b), b.name)
            return
        count = math.prod(static_shape(b))
        self.buffers[b.name] = self.alloca(ir.ArrayType(ops.storage_type(b.dtype), count),
                                           b.name, LOCAL_ALIGNMENT)

    def parallel(self, loop: For) -> None:
        """Outline the loop into a task over [begin, end): the buffers and free variables it
        uses travel in a struct, as the C backend's args struct."""
        bufs, free = task_captures(loop, self.name)
        fields = ir.LiteralStructType([PTR] * len(bufs) + [I64] * len(free))
        task = self.task_function(loop, bufs, free, fields)
        args = self.alloca(fields, f"task{self.tasks - 1}.args")
        values = [self.buffers[b.name] for b in bufs] + [self.expr(v) for v in free]
        for i, value in enumerate(values):
            self.builder.store(value, self.builder.gep(args, [ops.i32(0), ops.i32(i)],
                                                       inbounds=True, source_etype=fields))
        fn = ops.declare(self.module, *PARALLEL_FOR)
        self.builder.call(fn, [self.function.args[0], self.expr(loop.extent),
                               ir.Constant(I64, loop.grain), task, args])

    def task_function(self, loop: For, bufs, free, fields) -> ir.Function:
        """The task unpacks the struct and calls the loop's body function, whose buffer
        parameters are noalias (C's restrict locals): inlined, LLVM keeps that as alias
        scopes, which vectorizing and hoisting the loads need."""
        name = f"{self.name}_task{self.tasks}"
        self.tasks += 1
        body_type = ir.FunctionType(VOID, [PTR] * len(bufs) + [I64] * (len(free) + 2))
        body = ir.Function(self.module, body_type, f"{name}_body")
        body.linkage = "internal"
        body.attributes.add("alwaysinline")
        inner = FunctionEmitter(self.module, body, self.features, name)
        for arg, buf in zip(body.args, bufs):
            arg.add_attribute("noalias")
            inner.buffers[buf.name] = arg
        for arg, var in zip(body.args[len(bufs):], free):
            inner.vars[var.name] = inner.alloca(I64, var.name)
            inner.allocas.store(arg, inner.vars[var.name])
        inner.loop(loop, *body.args[-2:])
        inner.finish()
        task = ir.Function(self.module, TASK_TYPE, name)
        task.linkage = "internal"
        ctx, begin, end = task.args
        b = ir.IRBuilder(task.append_basic_block("entry"))
        values = [b.load(b.gep(ctx, [ops.i32(0), ops.i32(i)], inbounds=True,
                                source_etype=fields), typ=typ)
                  for i, typ in enumerate(fields.elements)]
        b.call(body, values + [begin, end])
        b.ret_void()
        return task


def emit_kernel(module: ir.Module, k: Kernel, features=()) -> dict:
    """Define the kernel in module; returns what the C skeleton needs: the kernel's name, its
    C prototype and the buffers it takes (in order), as print_kernel does for C."""
    params, symbols = kernel_params(k), kernel_symbols(k)
    fn_type = ir.FunctionType(VOID, [PTR] * (1 + len(params)) + [I64] * len(symbols))
    fn = ir.Function(module, fn_type, k.name)
    fn.attributes.add("nounwind")
    for arg in fn.args[1:1 + len(params)]:
        arg.add_attribute("noalias")       # C's restrict
    emitter = FunctionEmitter(module, fn, features, k.name)
    emitter.buffers = {b.name: arg for arg, (b, _) in zip(fn.args[1:], params)}
    for arg, var in zip(fn.args[1 + len(params):], symbols):
        slot = emitter.alloca(I64, var.name)
        emitter.allocas.store(arg, slot)
        emitter.vars[var.name] = slot
    emitter.stmt(k.body)
    emitter.finish()
    prototype = (f"/* {c_comment(k.op_type)} node \"{c_comment(k.node)}\": in "
                 f"{module.name} */\nvoid {k.name}({kernel_signature(params, symbols)}) "
                 "__attribute__((visibility(\"hidden\")));")
    return {"name": k.name, "tasks": [], "function": prototype,
            "args": [b.name for b, _ in params] + [v.name for v in symbols]}


def kernel_module(name: str, triple: str, data_layout: str) -> ir.Module:
    module = ir.Module(name=name)
    module.triple = triple
    module.data_layout = data_layout
    return module
