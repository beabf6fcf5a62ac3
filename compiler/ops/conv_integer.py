"""ConvInteger and QLinearConv: Conv's nests (ops/conv.py) on int32 data.

The zero points are subtracted once, into int32 copies of the input and the weights (the
weights at compile time when they and their zero point are constants). The input is padded
after that, with 0: a pad is the input's zero point, as in onnx's reference and onnxruntime.
The convolution then accumulates exactly in int32 (ConvInteger's output; QLinearConv adds its
int32 bias first), and QLinearConv requantizes the sum as QLinearMatMul does:
y = saturate(round_half_even(acc * (x_scale * w_scale[m] / y_scale)) + y_zero_point), with a
scale and zero point of the weights per tensor or per output channel m.
"""
from __future__ import annotations

import numpy as np

from ..loop.ir import Buffer, Cast, Load, Store, Unary
from ..loop.symbolic import product
from .common import ZERO, nest
from .conv import convolve
from .quantize import saturated, scalar_param
from .registry import register
from .shape import fail

_INT8 = ("int8", "uint8")


def _centred_input(ctx, x: Buffer, zero_point) -> Buffer:
    """int32(x) - int32(x_zero_point), a per-tensor zero point."""
    zp = scalar_param(ctx, zero_point, "x_zero_point")
    out = ctx.temp("int32", ctx.shape(x), "x_centred")

    def centre(*v):
        value = Cast("int32", Load(x, v))
        return Store(out, v, value if zp is None else value - Cast("int32", zp))
    ctx.emit(nest(ctx.shape(x), centre), kind="elementwise", stage="centre_x")
    return out


def _per_channel(ctx, param, channels: int, what: str):
    """index_fn(m) into a per-tensor or per-output-channel scale or zero point."""
    shape = ctx.shape(param)
    size = product(shape)
    if size == 1:
        return lambda m: (ZERO,) * len(shape)
    if shape != (channels,):
        raise fail(ctx, f"{what} of shape {shape}: expected one value or one per output "
                        f"channel ({channels})")
    return lambda m: (m,)


def _centred_weights(ctx, w: Buffer, zero_point) -> Buffer:
    """int32(w) - int32(w_zero_point[m]) for output channel m."""
    shape = ctx.shape(w)
    if zero_point is None:
        at = None
    else:
        at = _per_channel(ctx, zero_point, shape[0], "w_zero_point")
    data, zp_data = ctx.const(w), ctx.const(zero_point)
    if data is not None and (zero_point is None or zp_data is not None):
        centred = data.astype(np.int32)
        if zero_point is not None:
            zp = zp_data.astype(np.int32).reshape(-1)
            centred -= zp.reshape((-1,) + (1,) * (len(shape) - 1)) if zp.size > 1 else zp[0]
        return ctx.constant(centred, "weight")
    out = ctx.temp("int32", shape, "w_centred")

    def centre(*v):
        value = Cast("int32", Load(w, v))
        if at is None:
            return Store(out, v, value)
        return Store(out, v, value - Cast("int32", Load(zero_point, at(v[0]))))
    ctx.emit(nest(shape, centre), kind="elementwise", stage="centre_w")
    return out


def _integer_conv(ctx, x, w, x_zero_point, w_zero_point, bias, out, attrs) -> None:
    if x.dtype not in _INT8 or w.dtype not in _INT8:
        raise fail(ctx, f"input {x.dtype} and weights {w.dtype}: int8 or uint8 expected")
    if bias is not None and bias.dtype != "int32":
        raise fail(ctx, f"bias of type {bias.dtype}: int32 expected")
    convolve(ctx, _centred_input(ctx, x, x_zero_point),
             _centred_weights(ctx, w, w_zero_point), bias, out, **attrs)


@register("ConvInteger", since=10)
def ConvInteger(ctx, x, w, x_zero_point=None, w_zero_point=None, *, auto_pad="NOTSET",
                dilations=None, group=1, kernel_shape=None, pads=None, strides=None):
    attrs = dict(auto_pad=auto_pad, dilations=dilations, group=group, pads=pads,
                 strides=strides)
    _integer_conv(ctx, x, w, x_zero_point, w_zero_point, None, ctx.output(0), attrs)


@register("QLinearConv", since=10)
def QLinearConv(ctx, x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale,
                y_zero_point=None, B=None, *, auto_pad="NOTSET", dilations=None, group=1,
                kernel_shape=None, pads=None, strides=None):
    out = ctx.output(0)
    if out.dtype not in _INT8:
        raise fail(ctx, f"output type {out.dtype}: int8 or uint8 expected")
    acc = ctx.temp("int32", ctx.shape(out), "acc")
    attrs = dict(auto_pad=auto_pad, dilations=dilations, group=group, pads=pads,
                 strides=strides)
    _integer_conv(ctx, x, w, x_zero_point, w_zero_point, B, acc, attrs)
    f = x_scale.dtype
    sx, sy = scalar_param(ctx, x_scale, "x_scale"), scalar_param(ctx, y_scale, "y_scale")
    at_scale = _per_channel(ctx, w_scale, ctx.shape(w)[0], "w_scale")
    zy = scalar_param(ctx, y_zero_point, "y_zero_point")

    def requantize(*v):
        real = Cast(f, Load(acc, v)) * (sx * Load(w_scale, at_scale(v[1])) / sy)
        rounded = Unary("round", real)
        return Store(out, v, saturated(rounded if zy is None else rounded + Cast(f, zy),
                                       out.dtype))
    ctx.emit(nest(ctx.shape(out), requantize), kind="elementwise", stage="requantize")
