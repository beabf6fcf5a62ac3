"""LLVM spellings of the loop IR's operations, with the C backend's semantics.

C computes an integer narrower than int promoted to int and narrows it where it is stored;
so does this. Float operations come from intrinsics.llvm_spell, the table the C backend's
spell() shares.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
from llvmlite import ir

from .. import dtypes
from ..errors import IRError
from .intrinsics import EXPORT_PREFIX, FLOAT_STORAGE, llvm_spell

I1, I8, I32, I64 = (ir.IntType(n) for n in (1, 8, 32, 64))
PTR = ir.PointerType()
PROMOTED_BITS = 32     # C's int
_FLOAT_OPS = {"add": "fadd", "sub": "fsub", "mul": "fmul", "div": "fdiv", "floordiv": "fdiv"}
_INT_OPS = {"add": "add", "sub": "sub", "mul": "mul", "bitand": "and_", "bitor": "or_",
            "bitxor": "xor", "shl": "shl"}
_SIGNED_INT_OPS = {"div": "sdiv", "floordiv": "sdiv", "mod": "srem", "fmod": "srem",
                   "shr": "ashr"}
_UNSIGNED_INT_OPS = {"div": "udiv", "floordiv": "udiv", "mod": "urem", "fmod": "urem",
                     "shr": "lshr"}
_NO_SIGNED_WRAP = ("add", "sub", "mul")
_CMP = {"lt": "<", "le": "<=", "gt": ">", "ge": ">=", "eq": "==", "ne": "!="}
_NAN_RULE = {"max": ">", "min": "<"}
# the sub-byte integers: the low bits of a byte, and whether they are signed
_SUB_BYTE = {"int4": (4, True), "int2": (2, True), "uint4": (4, False), "uint2": (2, False)}
_ARITY = {"pow": 2, "fmod": 2, "max": 2, "min": 2, "fma": 3}


def storage_type(dtype: str) -> ir.Type:
    text = dtypes.llvm_type(dtype)
    return {"float": ir.FloatType(), "double": ir.DoubleType()}.get(text) or \
        ir.IntType(int(text[1:]))


def value_type(dtype: str, lanes: int = 1) -> ir.Type:
    scalar = I1 if dtype == "bool" else storage_type(dtype)
    return ir.VectorType(scalar, lanes) if lanes > 1 else scalar


def i32(value: int) -> ir.Constant:
    return ir.Constant(I32, value)


def is_float(dtype: str) -> bool:
    return dtype in ("float32", "float64")


def constant(value, dtype: str) -> ir.Constant:
    if dtype == "bool":
        return ir.Constant(I1, int(bool(value)))
    if is_float(dtype):
        return ir.Constant(storage_type(dtype), float(value))
    info = dtypes.dtype(dtype)
    if info.is_float:       # a storage float: its bits
        bits = np.array([value], dtype=info.numpy).view(f"uint{8 * dtypes.itemsize(dtype)}")
        return ir.Constant(storage_type(dtype), int(bits[0]))
    width = storage_type(dtype).width
    wrapped = int(value) & ((1 << width) - 1)       # two's complement of the width
    return ir.Constant(storage_type(dtype), wrapped - (1 << width) if wrapped >> (width - 1)
                       else wrapped)


def declare(module: ir.Module, name: str, fn_type: ir.FunctionType) -> ir.Function:
    existing = module.globals.get(name)
    return existing if existing is not None else ir.Function(module, fn_type, name)


def _suffix(typ: ir.Type) -> str:
    if isinstance(typ, ir.VectorType):
        return f"v{typ.count}{_suffix(typ.element)}"
    return {ir.FloatType: "f32", ir.DoubleType: "f64"}[type(typ)]


def _signed(dtype: str) -> bool:
    return dtype != "bool" and dtypes.dtype(dtype).is_signed


class OpEmitter:
    """Builds the instructions of one function. `alloca(type, name)` gives an entry-block
    slot (for the vector helpers, which take pointers)."""

    def __init__(self, module: ir.Module, builder: ir.IRBuilder, features,
                 alloca: Callable[[ir.Type, str], ir.Value]):
        self.module, self.b, self.features, self.alloca = module, builder, features, alloca
        self.vector_slots: dict[int, tuple[ir.Value, ir.Value]] = {}

    # -- memory ------------------------------------------------------------------------------
    def load(self, ptr: ir.Value, dtype: str, count: int, stride: int) -> ir.Value:
        align = dtypes.itemsize(dtype)
        stored = storage_type(dtype)
        if count == 1 or stride == 1:
            typ = ir.VectorType(stored, count) if count > 1 else stored
            return self._from_memory(self.b.load(ptr, typ=typ, align=align), dtype)
        if stride == 2:
            # as onnxc_load_s2: two loads ending at the last element needed, never past it
            vec = ir.VectorType(stored, count)
            low = self.b.load(ptr, typ=vec, align=align)
            high_ptr = self.b.gep(ptr, [ir.Constant(I64, count - 1)], inbounds=True,
                                  source_etype=stored)
            high = self.b.load(high_ptr, typ=vec, align=align)
            lanes = list(range(0, count, 2)) + list(range(count + 1, 2 * count, 2))
            return self._from_memory(self.b.shuffle_vector(
                low, high, ir.Constant(ir.VectorType(I32, count), lanes)), dtype)
        lanes = [self.load(self._element(ptr, i * stride, dtype), dtype, 1, 1)
                 for i in range(count)]
        return self.pack(lanes, dtype)

    def store(self, value: ir.Value, ptr: ir.Value, dtype: str, lanes: int,
              stride: int) -> None:
        align = dtypes.itemsize(dtype)
        if dtype == "bool":
            value = self.b.zext(value, ir.VectorType(I8, lanes) if lanes > 1 else I8)
        if lanes == 1 or stride == 1:
            self.b.store(value, ptr, align=align)
            return
        for i in range(lanes):
            self.b.store(self.b.extract_element(value, i32(i)),
                         self._element(ptr, i * stride, dtype), align=align)

    def _element(self, ptr, offset: int, dtype: str) -> ir.Value:
        return self.b.gep(ptr, [ir.Constant(I64, offset)], inbounds=True,
                          source_etype=storage_type(dtype))

    def _from_memory(self, value: ir.Value, dtype: str) -> ir.Value:
        return self.b.icmp_unsigned("!=", value, ir.Constant(value.type, None)) \
            if dtype == "bool" else value

    def pack(self, values: list[ir.Value], dtype: str) -> ir.Value:
        vector = ir.Constant(value_type(dtype, len(values)), ir.Undefined)
        for lane, value in enumerate(values):
            vector = self.b.insert_element(vector, value, i32(lane))
        return vector

    def widen(self, value: ir.Value, dtype: str, lanes: int) -> ir.Value:
        """A scalar splat over `lanes` (a vector stays as it is)."""
        if lanes == 1 or isinstance(value.type, ir.VectorType):
            return value
        one = self.b.insert_element(ir.Constant(ir.VectorType(value.type, 1), ir.Undefined),
                                    value, i32(0))
        return self.b.shuffle_vector(one, one, ir.Constant(ir.VectorType(I32, lanes), None))

    # -- conversions -------------------------------------------------------------------------
    def convert(self, value: ir.Value, src: str, dst: str, lanes: int = 1) -> ir.Value:
        """C's conversion of a value of src to dst (a Cast, or an assignment)."""
        if src == dst:
            return value
        src_compute, dst_compute = dtypes.dtype(src).compute, dtypes.dtype(dst).compute
        if src_compute:
            return self.convert(self._unpack(value, src), src_compute, dst, lanes)
        if dst_compute:
            return self._packed(self.convert(value, src, dst_compute, lanes), dst)
        target = value_type(dst, lanes)
        if dst == "bool":
            return self.truth(value, src)
        if src == "bool":
            return self.b.uitofp(value, target) if is_float(dst) else self.b.zext(value, target)
        if is_float(src) and is_float(dst):
            return self.b.fpext(value, target) if dst == "float64" else \
                self.b.fptrunc(value, target)
        if is_float(src):
            return self.b.fptosi(value, target) if _signed(dst) else self.b.fptoui(value, target)
        if is_float(dst):
            return self.b.sitofp(value, target) if _signed(src) else self.b.uitofp(value, target)
        return self._resize(value, _signed(src), target)

    def _resize(self, value: ir.Value, signed: bool, target: ir.Type) -> ir.Value:
        have = (value.type.element if isinstance(value.type, ir.VectorType) else value.type).width
        want = (target.element if isinstance(target, ir.VectorType) else target).width
        if have == want:
            return value
        if have > want:
            return self.b.trunc(value, target)
        return self.b.sext(value, target) if signed else self.b.zext(value, target)

    def _unpack(self, value: ir.Value, dtype: str) -> ir.Value:
        """A storage type's element as its compute type."""
        if dtype in _SUB_BYTE:
            bits, signed = _SUB_BYTE[dtype]
            low = self.b.and_(value, ir.Constant(value.type, (1 << bits) - 1))
            if not signed:
                return low
            sign = ir.Constant(value.type, 1 << (bits - 1))
            return self.b.sub(self.b.xor(low, sign), sign)
        return self._helper(f"{FLOAT_STORAGE[dtype]}_to_f32", value, ir.FloatType())

    def _packed(self, value: ir.Value, dtype: str) -> ir.Value:
        """A compute-type value narrowed to its storage type's element."""
        if dtype in _SUB_BYTE:
            bits, _ = _SUB_BYTE[dtype]
            return self.b.and_(value, ir.Constant(value.type, (1 << bits) - 1))
        return self._helper(f"f32_to_{FLOAT_STORAGE[dtype]}", value, storage_type(dtype))

    def _helper(self, name: str, value: ir.Value, result: ir.Type) -> ir.Value:
        if isinstance(value.type, ir.VectorType):
            raise IRError(f"no vector form for the conversion {name}")
        fn = declare(self.module, EXPORT_PREFIX + name, ir.FunctionType(result, [value.type]))
        return self.b.call(fn, [value])

    def truth(self, value: ir.Value, dtype: str) -> ir.Value:
        """Nonzero as i1 (C's test of a condition)."""
        if dtype == "bool":
            return value
        zero = ir.Constant(value.type, None)
        if is_float(dtype):
            return self.b.fcmp_unordered("!=", value, zero)
        return self.b.icmp_unsigned("!=", value, zero)

    # -- arithmetic --------------------------------------------------------------------------
    def binary(self, op: str, a, a_dtype: str, b, b_dtype: str, lanes: int) -> ir.Value:
        if op in ("and", "or", "xor"):
            x, y = (self.widen(self.truth(v, t), "bool", lanes)
                    for v, t in ((a, a_dtype), (b, b_dtype)))
            return {"and": self.b.and_, "or": self.b.or_, "xor": self.b.xor}[op](x, y)
        if op in _CMP:
            return self.compare(op, a, a_dtype, b, b_dtype, lanes)
        b = self.convert(b, b_dtype, a_dtype, 1 if not isinstance(b.type, ir.VectorType)
                         else b.type.count)
        a, b = self.widen(a, a_dtype, lanes), self.widen(b, a_dtype, lanes)
        if is_float(a_dtype):
            return self._float_binary(op, a, b, a_dtype, lanes)
        return self._int_binary(op, a, b, a_dtype)

    def compare(self, op: str, a, a_dtype: str, b, b_dtype: str, lanes: int) -> ir.Value:
        if a_dtype != b_dtype:      # C's usual conversions: to the wider of the two
            wider = max((a_dtype, b_dtype), key=lambda t: (is_float(t), dtypes.itemsize(t)))
            a = self.convert(a, a_dtype, wider, a.type.count if isinstance(
                a.type, ir.VectorType) else 1)
            b = self.convert(b, b_dtype, wider, b.type.count if isinstance(
                b.type, ir.VectorType) else 1)
            a_dtype = wider
        a, b = self.widen(a, a_dtype, lanes), self.widen(b, a_dtype, lanes)
        if is_float(a_dtype):
            if op == "ne":      # C's != is true when either side is NaN
                return self.b.fcmp_unordered("!=", a, b)
            return self.b.fcmp_ordered(_CMP[op], a, b)
        if _signed(a_dtype):
            return self.b.icmp_signed(_CMP[op], a, b)
        return self.b.icmp_unsigned(_CMP[op], a, b)

    def _float_binary(self, op: str, a, b, dtype: str, lanes: int) -> ir.Value:
        if op in _FLOAT_OPS:
            return getattr(self.b, _FLOAT_OPS[op])(a, b)
        return self.math(op, [a, b], dtype, lanes)

    def _int_binary(self, op: str, a, b, dtype: str) -> ir.Value:
        """On C's promoted operands (at least int), narrowed back to dtype."""
        signed = _signed(dtype)
        promoted = max(PROMOTED_BITS, storage_type(dtype).width)
        wide = ir.VectorType(ir.IntType(promoted), a.type.count) if isinstance(
            a.type, ir.VectorType) else ir.IntType(promoted)
        x, y = self._resize(a, signed, wide), self._resize(b, signed, wide)
        if op in ("max", "min"):
            keep_a = self.compare("gt" if op == "max" else "lt", x, dtype, y, dtype, 1)
            result = self.b.select(keep_a, x, y)
        elif op == "pow":
            result = self._ipow(x, y, signed, wide)
        else:
            table = _SIGNED_INT_OPS if signed else _UNSIGNED_INT_OPS
            name = _INT_OPS.get(op) or table.get(op)
            if name is None:
                raise IRError(f"LLVM backend: no integer form for {op}")
            # C's signed overflow is undefined: say so (nsw), as clang does, for index math
            flags = ("nsw",) if signed and op in _NO_SIGNED_WRAP else ()
            result = getattr(self.b, name)(x, y, flags=flags) if flags else \
                getattr(self.b, name)(x, y)
        if dtype == "bool":
            return self.truth(result, "int32")
        return self._resize(result, signed, a.type)

    def _ipow(self, x, y, signed: bool, wide: ir.Type) -> ir.Value:
        fn = declare(self.module, EXPORT_PREFIX + "ipow", ir.FunctionType(I64, [I64, I64]))
        result = self.b.call(fn, [self._resize(x, signed, I64), self._resize(y, signed, I64)])
        return self._resize(result, signed, wide)

    def unary(self, op: str, a, dtype: str, lanes: int) -> ir.Value:
        if op == "not":
            return self.b.xor(self.truth(a, dtype), ir.Constant(value_type("bool", lanes), 1))
        if op == "bitnot":
            return self.b.xor(a, ir.Constant(a.type, -1 if lanes == 1 else [-1] * lanes))
        if is_float(dtype):
            if op == "neg":
                return self.b.fneg(a)
            if op == "reciprocal":
                return self.b.fdiv(ir.Constant(a.type, 1.0 if lanes == 1 else [1.0] * lanes),
                                   a)
            return self.math(op, [a], dtype, lanes)
        zero = ir.Constant(a.type, None)
        if op == "neg":
            return self._int_binary("sub", zero, a, dtype)
        if op == "abs":
            negative = self.compare("lt", a, dtype, zero, dtype, lanes)
            return self.b.select(negative, self._int_binary("sub", zero, a, dtype), a)
        raise IRError(f"LLVM backend: no integer form for {op}")

    def fma(self, args: list[ir.Value], dtype: str, lanes: int) -> ir.Value:
        if not is_float(dtype):
            product = self._int_binary("mul", args[0], args[1], dtype)
            return self._int_binary("add", product, args[2], dtype)
        return self.math("fma", args, dtype, lanes)

    def math(self, op: str, args: list[ir.Value], dtype: str, lanes: int) -> ir.Value:
        """A float operation as intrinsics.llvm_spell says."""
        kind, name = llvm_spell(op, dtype, lanes, self.features)
        typ = args[0].type
        if kind == "unfused":
            return self.b.fadd(self.b.fmul(args[0], args[1]), args[2])
        if kind == "nan_rule":
            a, b = args
            keep_a = self.b.or_(self.b.fcmp_ordered(_NAN_RULE[op], a, b),
                                self.b.fcmp_unordered("uno", a, a))
            return self.b.select(keep_a, a, b)
        if kind == "vector_call":
            return self._vector_call(name, args[0], lanes)
        full = f"{name}.{_suffix(typ)}" if kind == "intrinsic" else name
        fn = declare(self.module, full, ir.FunctionType(typ, [typ] * _ARITY.get(op, 1)))
        return self.b.call(fn, args)

    def _vector_call(self, name: str, value: ir.Value, lanes: int) -> ir.Value:
        if lanes not in self.vector_slots:
            self.vector_slots[lanes] = (self.alloca(value.type, f"vin{lanes}"),
                                        self.alloca(value.type, f"vout{lanes}"))
        slot_in, slot_out = self.vector_slots[lanes]
        self.b.store(value, slot_in, align=4)
        fn = declare(self.module, name, ir.FunctionType(ir.VoidType(), [PTR, PTR]))
        self.b.call(fn, [slot_out, slot_in])
        return self.b.load(slot_out, typ=value.type, align=4)

    def hreduce(self, op: str, vector: ir.Value, dtype: str, lanes: int) -> ir.Value:
        """Lane 0, then each next lane folded in, in order (as onnxc_h*_vNf)."""
        result = self.b.extract_element(vector, i32(0))
        for lane in range(1, lanes):
            result = self.binary(op, result, dtype, self.b.extract_element(vector, i32(lane)),
                                 dtype, 1)
        return result
