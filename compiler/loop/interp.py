"""A numpy interpreter of the loop IR: the IR's executable semantics, used by tests.

Scalars are numpy scalars of the IR dtype, vectors are numpy arrays; buffers are flat arrays.
Integer `floordiv`/`mod` truncate toward zero, as C does (index arithmetic is non-negative).
"""
from __future__ import annotations

import math

import numpy as np

from .ir import (
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
    Program,
    Select,
    Seq,
    Stmt,
    Store,
    Unary,
    Var,
    static_shape,
    storage_position,
)

_erf = np.vectorize(math.erf, otypes=[np.float64])


def _int_div(a, b):
    q = np.abs(a) // np.abs(b)
    return q * np.sign(a) * np.sign(b)


def _int_mod(a, b):
    return a - _int_div(a, b) * b


_BINARY = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "pow": np.power,
    "max": np.maximum, "min": np.minimum, "fmod": np.fmod,
    "lt": np.less, "le": np.less_equal, "gt": np.greater, "ge": np.greater_equal,
    "eq": np.equal, "ne": np.not_equal,
    "and": np.logical_and, "or": np.logical_or, "xor": np.logical_xor,
    "bitand": np.bitwise_and, "bitor": np.bitwise_or, "bitxor": np.bitwise_xor,
    "shl": np.left_shift, "shr": np.right_shift,
}

_UNARY = {
    "neg": np.negative, "abs": np.abs, "sqrt": np.sqrt, "exp": np.exp, "log": np.log,
    "tanh": np.tanh, "floor": np.floor, "ceil": np.ceil, "round": np.rint,
    "not": np.logical_not, "sin": np.sin, "cos": np.cos, "tan": np.tan, "asin": np.arcsin,
    "acos": np.arccos, "atan": np.arctan, "sinh": np.sinh, "cosh": np.cosh,
    "asinh": np.arcsinh, "acosh": np.arccosh, "atanh": np.arctanh,
    "reciprocal": lambda x: np.divide(np.ones_like(x), x), "bitnot": np.invert,
    "sigmoid": lambda x: (1.0 / (1.0 + np.exp(-np.asarray(x, np.float64)))),
    "erf": lambda x: _erf(np.asarray(x, np.float64)),
    "round_tf32": lambda x: _round_tf32(x),
}


def _round_tf32(x):
    """As onnxc_round_tf32 (runtime_c/onnxc_scalar.h)."""
    x = np.asarray(x, np.float32)
    bits = x.view(np.uint32).astype(np.uint64)
    finite = (bits & 0x7F800000) != 0x7F800000
    rounded = ((((bits + 0x1000) >> 13) << 13) & 0xFFFFFFFF).astype(np.uint32)
    return np.where(finite, rounded.view(np.float32), x)


class Interpreter:
    def __init__(self, arrays: dict[str, np.ndarray]):
        self.arrays = arrays          # buffer name -> flat numpy array
        self.env: dict[Var, int] = {}

    # -- expressions -------------------------------------------------------------------------
    def offset(self, buffer: Buffer, index) -> int:
        if len(index) == 1:
            return int(self.eval(index[0]))
        def split(e, f):
            value = int(self.eval(e))
            return Const(value // f, "int64"), Const(value % f, "int64")
        flat = 0
        for i, d in storage_position(buffer, index, split):
            flat = flat * int(self.eval(d)) + int(self.eval(i))
        return flat

    def eval(self, e: Expr):
        np_dtype = np.dtype(e.dtype) if e.dtype != "bool" else np.bool_
        match e:
            case Const(value=v):
                return np_dtype.type(v) if hasattr(np_dtype, "type") else np.bool_(v)
            case Var():
                return np.int64(self.env[e] if e in self.env else self._dim(e))
            case Load(buffer=b, index=idx, count=c, stride=st):
                start = self.offset(b, idx)
                arr = self.arrays[b.name]
                return arr[start] if c == 1 else arr[start:start + c * st:st].copy()
            case Binary(op=op, a=a, b=b):
                return self._binary(op, self.eval(a), self.eval(b), e.dtype)
            case Unary(op=op, a=a):
                return np.asarray(_UNARY[op](self.eval(a))).astype(np_dtype)[()]
            case Fma(a=a, b=b, c=c):
                wide = np.float64
                r = self.eval(a).astype(wide) * self.eval(b).astype(wide) + self.eval(c)
                return np.asarray(r).astype(np_dtype)[()]
            case Select(cond=c, a=a, b=b):
                return np.where(self.eval(c), self.eval(a), self.eval(b)).astype(np_dtype)[()]
            case Cast(a=a):
                return np.asarray(self.eval(a)).astype(np_dtype)[()]
            case Bitcast(a=a):
                source = np.dtype(a.dtype) if a.dtype != "bool" else np.bool_
                return np.asarray(self.eval(a), dtype=source).view(np_dtype)[()]
            case Broadcast(value=v, count=c):
                return np.full(c, self.eval(v), dtype=np_dtype)
            case HReduce(op=op, value=v):
                fold = {"add": np.add, "max": np.maximum, "min": np.minimum}[op]
                return np_dtype.type(fold.reduce(self.eval(v)))
            case Pack(values=vs):
                return np.array([self.eval(v) for v in vs], dtype=np_dtype)
        raise TypeError(f"cannot evaluate {e!r}")

    def _dim(self, var: Var) -> int:
        raise KeyError(f"unbound variable {var.name}")

    @staticmethod
    def _binary(op, a, b, dtype):
        is_int = np.dtype(dtype).kind in "iu" if dtype != "bool" else False
        with np.errstate(all="ignore"):
            if op == "div":
                r = _int_div(a, b) if is_int else np.divide(a, b)
            elif op == "floordiv":
                r = _int_div(a, b)
            elif op == "mod":
                r = _int_mod(a, b)
            else:
                r = _BINARY[op](a, b)
        out = np.bool_ if dtype == "bool" else np.dtype(dtype)
        return np.asarray(r).astype(out)[()]

    # -- statements --------------------------------------------------------------------------
    def run(self, s: Stmt) -> None:
        match s:
            case For(var=v, extent=ext, body=body):
                for i in range(int(self.eval(ext))):
                    self.env[v] = i
                    self.run(body)
                self.env.pop(v, None)
            case Store(buffer=b, index=idx, value=val, stride=st):
                start = self.offset(b, idx)
                value = self.eval(val)
                arr = self.arrays[b.name]
                if np.ndim(value):
                    arr[start:start + len(value) * st:st] = value
                else:
                    arr[start] = value
            case Seq(body=body):
                for st in body:
                    self.run(st)
            case IfThen(cond=c, then=t, orelse=o):
                if self.eval(c):
                    self.run(t)
                elif o is not None:
                    self.run(o)
            case Barrier():
                pass
            case Mma(body=body):
                self.run(body)
            case Allocate(buffer=b, body=body):
                self.arrays[b.name] = _fresh(b)
                self.run(body)
                del self.arrays[b.name]
            case _:
                raise TypeError(f"cannot run {s!r}")

    def run_kernel(self, k: Kernel) -> None:
        from .templates import materialize_templates
        self.run(materialize_templates(k).body)


def _shape(b: Buffer, dims: dict[str, int]) -> tuple[int, ...]:
    """b's shape with its symbolic dimensions at the values dims gives."""
    if not dims:
        return static_shape(b)
    interp = Interpreter({})
    interp.env = {Var(name): value for name, value in dims.items()}
    return tuple(int(interp.eval(d)) for d in b.shape)


def _fresh(b: Buffer, dims: dict[str, int] | None = None) -> np.ndarray:
    size = int(np.prod(_shape(b, dims or {}), dtype=np.int64))
    dt = np.bool_ if b.dtype == "bool" else np.dtype(b.dtype)
    arr = np.zeros(size, dt)
    if arr.dtype.kind == "f":
        arr[:] = np.nan    # an uninitialized read shows up as NaN
    return arr


def run_program(prog: Program, feeds: dict[str, np.ndarray],
                dims: dict[str, int] | None = None) -> list[np.ndarray]:
    """Run prog on inputs keyed by buffer name (or ONNX name); returns outputs in order.
    dims: the values of the symbolic dimensions (Vars) its extents and shapes name."""
    dims = dims or {}
    arrays: dict[str, np.ndarray] = {}
    names = dict(zip(prog.input_names, prog.inputs)) if prog.input_names else {}
    for b in prog.inputs:
        src = feeds[b.name] if b.name in feeds else feeds[_onnx_name(names, b)]
        if dims and np.shape(src) != _shape(b, dims):
            raise ValueError(f"input {b.name}: shape {np.shape(src)}, the program's at {dims} "
                             f"is {_shape(b, dims)}")
        arrays[b.name] = np.ascontiguousarray(src).reshape(-1).astype(b.dtype, copy=True)
    for c in prog.constants:
        arrays[c.buffer.name] = np.ascontiguousarray(c.data).reshape(-1)
    for b in prog.temps + prog.outputs:
        arrays.setdefault(b.name, _fresh(b, dims))
    for view, storage in prog.aliases:
        arrays[view.name] = arrays[storage.name]
    interp = Interpreter(arrays)
    interp.env = {Var(name): value for name, value in dims.items()}
    for k in prog.kernels:
        interp.run_kernel(k)
    return [arrays[b.name].reshape(_shape(b, dims)).copy() for b in prog.outputs]


def _onnx_name(names: dict[str, Buffer], buffer: Buffer) -> str:
    return next(n for n, b in names.items() if b == buffer)
