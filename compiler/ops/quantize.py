"""Linear quantization: QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear.

A scale (and zero point) is per tensor (one element), per slice along `axis` (1-D), or per
block of `block_size` elements along `axis` (same rank as x). Integer results are rounded half
to even and saturated to the integer type's range (8 to 32 bits, and the 4- and 2-bit types);
float8 results are converted with round to nearest even, clamped to the largest finite value
when `saturate` (ONNX's default), and float4 ones saturate by themselves.
"""
from __future__ import annotations

import ml_dtypes

from .. import dtypes
from ..loop.ir import Binary, Cast, Const, Load, Store, Unary, loops, seq
from ..loop.symbolic import product
from .common import ZERO, nest, view
from .elementwise import FLOAT8, cast_saturating
from .matmul import matmul_kernels
from .registry import register
from .shape import fail, normalize_axis

_DEFAULT_QUANTIZED = "uint8"
_QUANTIZED = ("int2", "uint2", "int4", "uint4", "int8", "uint8", "int16", "uint16", "int32",
              "uint32", *FLOAT8, "float4_e2m1fn")


def _param_index(ctx, x_shape, param, axis: int, block_size: int):
    """index_fn(v) into the scale / zero point for the element of x at v."""
    shape = ctx.shape(param)
    size = product(shape)
    if size == 1:
        return lambda v: (ZERO,) * len(shape)
    ax = normalize_axis(ctx, axis, len(x_shape))
    if block_size > 0:
        if len(shape) != len(x_shape):
            raise fail(ctx, f"blocked scale of shape {shape} for input {x_shape}")
        block = Const(block_size, "int64")
        return lambda v: tuple(x // block if d == ax else x for d, x in enumerate(v))
    if len(shape) != 1 or shape[0] != x_shape[ax]:
        raise fail(ctx, f"scale of shape {shape} does not match axis {axis} of {x_shape}")
    return lambda v: (v[ax],)


def saturated(value, dtype: str):
    """value (a float, already rounded) clamped to dtype's range and converted."""
    info = ml_dtypes.iinfo(dtypes.dtype(dtype).numpy)
    lo, hi = Const(float(info.min), value.dtype), Const(float(info.max), value.dtype)
    return Cast(dtype, Binary("min", Binary("max", value, lo), hi))


@register("QuantizeLinear", since=10)
def QuantizeLinear(ctx, x, y_scale, y_zero_point=None, *, axis=1, block_size=0, saturate=1,
                   output_dtype=0, precision=0):
    out = ctx.output(0)
    if out.dtype not in _QUANTIZED:
        raise fail(ctx, f"output type {out.dtype} is not compiled")
    shape = ctx.shape(x)
    at = _param_index(ctx, shape, y_scale, axis, block_size)
    at_zero = at if y_zero_point is None else _param_index(ctx, shape, y_zero_point, axis,
                                                 block_size)
    f = y_scale.dtype
    is_float = dtypes.dtype(out.dtype).is_float

    def quantize(*v):
        q = Cast(f, Load(x, v)) / Load(y_scale, at(v))
        q = q if is_float else Unary("round", q)
        if y_zero_point is not None:
            q = q + Cast(f, Load(y_zero_point, at_zero(v)))
        return Store(out, v, cast_saturating(q, out.dtype, saturate) if is_float
                     else saturated(q, out.dtype))
    ctx.emit(nest(shape, quantize), kind="elementwise")


@register("DequantizeLinear", since=10)
def DequantizeLinear(ctx, x, x_scale, x_zero_point=None, *, axis=1, block_size=0,
                     output_dtype=0):
    out = ctx.output(0)
    shape = ctx.shape(x)
    at = _param_index(ctx, shape, x_scale, axis, block_size)
    at_zero = at if x_zero_point is None else _param_index(ctx, shape, x_zero_point, axis,
                                                 block_size)
    f = out.dtype

    def dequantize(*v):
        value = Cast(f, Load(x, v))
        if x_zero_point is not None:
            value = value - Cast(f, Load(x_zero_point, at_zero(v)))
        return Store(out, v, value * Cast(f, Load(x_scale, at(v))))
    ctx.emit(nest(shape, dequantize), kind="elementwise")


@register("DynamicQuantizeLinear", since=11)
def DynamicQuantizeLinear(ctx, x):
    """uint8 with scale (max(0, max x) - min(0, min x)) / 255 and the zero point that maps
    0.0 exactly: one kernel, a min/max pass then the quantizing pass."""
    y, scale, zero = ctx.output(0), ctx.output(1), ctx.output(2)
    size = product(ctx.shape(x))
    if size == 0 or ctx.shape(scale) != () or ctx.shape(zero) != ():
        raise fail(ctx, "an empty input has no scale")
    flat, yf, f = view(x, size), view(y, size), x.dtype
    lo, hi = ctx.temp(f, (1,), "min"), ctx.temp(f, (1,), "max")
    cell = (ZERO,)

    def c(value):
        return Const(float(value), f)
    s = Load(scale, ())
    qmin = Unary("round", c(0) - Load(lo, cell) / s)
    body = seq(
        Store(lo, cell, c(0)), Store(hi, cell, c(0)),
        loops([("k_range", size)], lambda k: seq(
            Store(lo, cell, Binary("min", Load(lo, cell), Load(flat, (k,)))),
            Store(hi, cell, Binary("max", Load(hi, cell), Load(flat, (k,)))))),
        Store(scale, (), (Load(hi, cell) - Load(lo, cell)) / c(255)),
        Store(zero, (), saturated(qmin, "uint8")),
        loops([("k", size)], lambda k: Store(yf, (k,), saturated(
            Unary("round", Load(flat, (k,)) / s) + Cast(f, Load(zero, ())), "uint8"))))
    ctx.emit(body, kind="generic")


# -- integer matrix products --------------------------------------------------------------------
def scalar_param(ctx, param, what: str):
    """A per-tensor scale or zero point as an expression (None when absent)."""
    if param is None:
        return None
    if product(ctx.shape(param)) != 1:
        raise fail(ctx, f"{what} of shape {ctx.shape(param)}: only per-tensor values are "
                        "compiled")
    return Load(param, (ZERO,) * len(ctx.shape(param)))


def _minus_zero_point(ctx, zero_point, what: str):
    """e -> int32(e) - int32(zero point)."""
    zp = scalar_param(ctx, zero_point, what)
    if zp is None:
        return lambda e: Cast("int32", e)
    return lambda e: Cast("int32", e) - Cast("int32", zp)


@register("MatMulInteger", since=10)
def MatMulInteger(ctx, A, B, a_zero_point=None, b_zero_point=None):
    matmul_kernels(ctx, A, B, ctx.output(0), _minus_zero_point(ctx, a_zero_point, "a_zero_point"),
                   _minus_zero_point(ctx, b_zero_point, "b_zero_point"))


@register("QLinearMatMul", since=10)
def QLinearMatMul(ctx, a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale,
                  y_zero_point):
    """The exact int32 product, then requantized: y = sat(round(acc * sa * sb / sy) + zy)."""
    out = ctx.output(0)
    acc = ctx.temp("int32", ctx.shape(out), "acc")
    matmul_kernels(ctx, a, b, acc, _minus_zero_point(ctx, a_zero_point, "a_zero_point"),
                   _minus_zero_point(ctx, b_zero_point, "b_zero_point"))
    f = a_scale.dtype
    sa, sb, sy = (scalar_param(ctx, p, n) for p, n in ((a_scale, "a_scale"),
                                                         (b_scale, "b_scale"),
                                                         (y_scale, "y_scale")))
    zy = Cast(f, scalar_param(ctx, y_zero_point, "y_zero_point"))

    def requantize(*v):
        real = Cast(f, Load(acc, v)) * (sa * sb / sy)
        return Store(out, v, saturated(Unary("round", real) + zy, out.dtype))
    ctx.emit(nest(ctx.shape(out), requantize), kind="elementwise", stage="requantize")
