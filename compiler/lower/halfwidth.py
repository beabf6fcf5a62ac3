"""widen_half_floats: storage types (float16, bfloat16, the float8 and float4 formats, the
sub-byte integers) are widened to their compute type (float32; int8 or uint8) in kernels.

The model's inputs and outputs (and buffers that alias them) keep their 16-bit storage: a load
widens (exactly), a store narrows (round to nearest even), each spelled by the C runtime's
conversion helpers. Everything else of a 16-bit type (arena temporaries, kernel locals,
constants) becomes float32, which keeps intermediate values as precise as onnxruntime's
float accumulation. A Cast to a 16-bit type inside an expression keeps its rounding. An
output that kernels also read back (an accumulation, a second pass over a row) is computed in
a float32 temporary and narrowed once at the end.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from .. import dtypes
from ..loop.deferred import Deferred
from ..loop.ir import Allocate, Bitcast, Buffer, Cast, Const, Constant, Kernel, Load, Program, Store
from ..loop.visit import transform_kernel, walk
from ..ops.common import copy_body


def _compute(dtype: str) -> str | None:
    return dtypes.dtype(dtype).compute


def _kept(prog: Program) -> set[str]:
    """Names whose storage the caller sees: inputs, outputs and everything aliased to them."""
    kept = {b.name for b in prog.inputs + prog.outputs}
    grew = True
    while grew:
        grew = False
        for view, storage in prog.aliases:
            if (view.name in kept) != (storage.name in kept):
                kept |= {view.name, storage.name}
                grew = True
    return kept


def _widened(buf: Buffer, kept: set[str]) -> Buffer:
    wide = _compute(buf.dtype)
    if wide is None or buf.name in kept:
        return buf
    return dataclasses.replace(buf, dtype=wide)


def _rewrite(kept: set[str]):
    def post(n):
        match n:
            case Bitcast(dtype=dt) if _compute(dt):
                return Cast(_compute(dt), n)
            case Load(buffer=b) if _compute(b.dtype):
                if b.name in kept:
                    return Cast(_compute(b.dtype), n)
                return dataclasses.replace(n, buffer=_widened(b, kept))
            case Store(buffer=b, value=v) if _compute(b.dtype):
                if b.name in kept:
                    return n if v.dtype == b.dtype else dataclasses.replace(
                        n, value=_narrowed(v, b.dtype))
                return dataclasses.replace(n, buffer=_widened(b, kept))
            case Allocate(buffer=b) if _compute(b.dtype):
                return dataclasses.replace(n, buffer=_widened(b, kept))
            case Const(dtype=dt) if _compute(dt):
                return Const(n.value, _compute(dt))
            case Cast(dtype=dt, a=a) if _compute(dt):
                # the rounding of the narrow type, then back to the compute type
                return Cast(_compute(dt), Cast(dt, _as(a, _compute(dt))))
        return n
    return post


def _narrowed(v, dtype: str):
    """v in dtype: a value just widened from dtype is stored as it was (a widening is exact),
    anything else is converted through the compute type."""
    if isinstance(v, Cast) and v.a.dtype == dtype:
        return v.a
    return Cast(dtype, _as(v, _compute(dtype)))


def _as(e, dtype: str):
    return e if e.dtype == dtype else Cast(dtype, e)


def _shadow_read_back_outputs(prog: Program, kept: set[str]) -> tuple[Program, set[str]]:
    """An output that kernels read back (accumulated in place, normalized in a second pass)
    lives in a float32 temporary instead, narrowed into the output by a last kernel: the
    16-bit rounding happens once, at the end, not at every partial result."""
    aliased = {b.name for pair in prog.aliases for b in pair}
    read = {n.buffer.name for k in prog.kernels for part in k.parts for n in walk(part)
            if isinstance(n, Load)}
    shadows = {o.name: dataclasses.replace(o, name=f"t_{o.name}_wide", dtype=_compute(o.dtype))
               for o in prog.outputs
               if _compute(o.dtype) and o.name in read and o.name not in aliased}
    if not shadows:
        return prog, kept

    def redirect(n):
        if isinstance(n, (Load, Store)) and n.buffer.name in shadows:
            return dataclasses.replace(n, buffer=dataclasses.replace(
                shadows[n.buffer.name], shape=n.buffer.shape))
        return n
    narrow = tuple(Kernel(f"k_{o.name}_narrow", o.name, "Cast", copy_body(o, shadows[o.name]),
                          "elementwise") for o in prog.outputs if o.name in shadows)
    kernels = tuple(transform_kernel(k, redirect) for k in prog.kernels) + narrow
    return dataclasses.replace(prog, kernels=kernels,
                               temps=prog.temps + tuple(shadows.values())), kept


# The 16-bit floats tensor cores take (the float8 formats are not widened to them).
TENSOR_CORE_FLOATS = ("float16", "bfloat16")


def _narrow_float(k: Kernel) -> str | None:
    """The one 16-bit float type the kernel's buffers have (before widening), if any."""
    found = {n.buffer.dtype for part in k.parts for n in walk(part)
             if isinstance(n, (Load, Store)) and n.buffer.dtype in TENSOR_CORE_FLOATS}
    return found.pop() if len(found) == 1 else None


def _cast(data, dtype) -> np.ndarray:
    return np.asarray(data).astype(dtype)


def _widened_data(data, compute: str) -> Deferred:
    """The constant in its compute type, computed when the weights are written."""
    dtype = dtypes.dtype(compute).numpy
    return Deferred(_cast, data, dtype, shape=data.shape, dtype=dtype)


def widen_half_floats(prog: Program) -> Program:
    # 16-bit values only come from 16-bit tensors: without those there is nothing to do
    if not any(_compute(b.dtype) for b in prog.inputs + prog.outputs + prog.temps) and \
            not any(_compute(c.buffer.dtype) for c in prog.constants):
        return prog
    prog, kept = _shadow_read_back_outputs(prog, _kept(prog))
    post = _rewrite(kept)
    constants = tuple(
        Constant(_widened(c.buffer, kept), _widened_data(c.data, _compute(c.buffer.dtype)))
        if _compute(c.buffer.dtype) else c for c in prog.constants)
    return dataclasses.replace(
        prog, kernels=tuple(dataclasses.replace(transform_kernel(k, post),
                                                narrow_float=_narrow_float(k))
                            for k in prog.kernels),
        temps=tuple(_widened(b, kept) for b in prog.temps),
        aliases=tuple((_widened(v, kept), _widened(s, kept)) for v, s in prog.aliases),
        constants=constants)
