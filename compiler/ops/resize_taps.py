"""Resize taps computed in the run: for scales, a crop roi, or sizes under a keep-aspect-ratio
policy that arrive with the run (ops/resize.py computes them at compile time otherwise).

The output extents are the declared ones, checked against the values. The coordinates and
taps depend on the scale itself, which the extents do not give back (0.6 and 0.5 both take 4
pixels to 2), so a prologue kernel computes, per axis and output index, the same tables
ops/resize.py computes in numpy: the coordinate in float32, then the input index and weight
of each tap (nearest: 1, linear: 2, cubic: 4), in the same precisions and order of
operations. The resize kernel then reads its index and weight tables from these buffers.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..loop.ir import Binary, Buffer, Cast, Const, Select, Store, Unary, cmp, const_int, seq
from .common import nest
from .runtime_values import all_of, values_of
from .sampling import clamp_float, clamp_index
from .shape import fail

F32, F64, I64 = "float32", "float64", "int64"
# How far past the input a coordinate may stay before its conversion to int: every tap of a
# farther one is clamped to the same border pixel.
MARGIN = 4.0


@dataclass(frozen=True)
class AxisScale:
    """One resized axis: extents, and the run-time scale and crop span (float32 exprs)."""
    n_in: int
    n_out: int
    scale: object
    r0: object = None
    r1: object = None


def _f(value: float, dtype: str = F32):
    return Const(float(value), dtype)


def _trunc(x):
    return Select(cmp("lt", x, 0.0), Unary("ceil", x), Unary("floor", x))


def _round_half_away(x):
    return Select(cmp("lt", x, 0.0), -Unary("floor", 0.5 - x), Unary("floor", x + 0.5))


def _half_pixel_symmetric(i, a: AxisScale):
    adjustment = _f(a.n_out) / (a.scale * _f(a.n_in))
    offset = _f(a.n_in) / _f(2) * (_f(1) - adjustment)
    wide = Cast(F64, offset) + (Cast(F64, i) + 0.5) / Cast(F64, a.scale) - 0.5
    return Cast(F32, wide)


def _tf_crop_and_resize(i, a: AxisScale):
    if a.n_out > 1:
        return a.r0 * _f(a.n_in - 1) + i * (a.r1 - a.r0) * _f(a.n_in - 1) / _f(a.n_out - 1)
    middle = (Cast(F64, a.r0) + Cast(F64, a.r1)) * 0.5 * float(a.n_in - 1)
    return Cast(F32, middle)


_COORDINATES = {
    "half_pixel": lambda i, a: (i + 0.5) / a.scale - 0.5,
    "half_pixel_symmetric": _half_pixel_symmetric,
    "pytorch_half_pixel": lambda i, a: (i + 0.5) / a.scale - 0.5 if a.n_out > 1 else _f(0),
    "align_corners": lambda i, a:
        i * _f(a.n_in - 1) / _f(a.n_out - 1) if a.n_out > 1 else _f(0),
    "asymmetric": lambda i, a: i / a.scale,
    "tf_half_pixel_for_nn": lambda i, a: (i + 0.5) / a.scale,
    "tf_crop_and_resize": _tf_crop_and_resize,
}


def coordinate(opts, i, a: AxisScale):
    """Output index i (float32) -> input coordinate; an axis kept at its size with scale 1
    is left alone, as onnxruntime does (and ops/resize.py)."""
    x = _COORDINATES[opts.coordinate](i, a)
    if a.n_in == a.n_out and opts.coordinate != "tf_crop_and_resize":
        x = Select(cmp("eq", a.scale, 1.0), i, x)
    return x


_NEAREST = {
    "round_prefer_floor": lambda x, a: Select(cmp("eq", x, _trunc(x) + 0.5), Unary("floor", x),
                                              _round_half_away(x)),
    "round_prefer_ceil": lambda x, a: _round_half_away(x),
    "floor": lambda x, a: Unary("floor", x),
    "ceil": lambda x, a: Unary("ceil", x),
    "simple": lambda x, a: Select(cmp("lt", a.scale, 1.0), Unary("ceil", x), _trunc(x)),
}


def _nearest(opts, x, a: AxisScale):
    wide = Cast(F64, clamp_float(x, -MARGIN, a.n_in - 1 + MARGIN))
    index = Cast(I64, _NEAREST[opts.nearest](wide, a))
    return [clamp_index(index, a.n_in)], [None]


def _linear(opts, x, a: AxisScale):
    x = clamp_float(x, 0.0, a.n_in - 1.0)
    lo = Binary("min", Cast(I64, x), const_int(a.n_in - 1))
    frac = x - Cast(F32, lo)
    return [lo, Binary("min", lo + 1, const_int(a.n_in - 1))], [_f(1) - frac, frac]


def _cubic(opts, x, a: AxisScale):
    x = clamp_float(x, -MARGIN, a.n_in - 1 + MARGIN)
    base = Unary("floor", x)
    s = Cast(F64, x - base)
    c = float(opts.cubic_a)
    near = lambda d: ((d * (c + 2) - (c + 3)) * d) * d + 1.0          # noqa: E731
    far = lambda d: ((d * c - 5 * c) * d + 8 * c) * d - 4 * c          # noqa: E731
    weights = [far(s + 1.0), near(s), near(1.0 - s), far(2.0 - s)]
    index = [Cast(I64, base) + k for k in (-1, 0, 1, 2)]
    if opts.exclude_outside:
        weights = [Select(Binary("and", cmp("ge", i, 0), cmp("lt", i, a.n_in)), w, _f(0, F64))
                   for i, w in zip(index, weights, strict=True)]
        total = weights[0] + weights[1] + weights[2] + weights[3]
        weights = [w / total for w in weights]
    return [clamp_index(i, a.n_in) for i in index], [Cast(F32, w) for w in weights]


_TAPS = {"nearest": _nearest, "linear": _linear, "cubic": _cubic}
_TAP_COUNT = {"nearest": 1, "linear": 2, "cubic": 4}


@dataclass
class RuntimeAxis:
    """Tap tables in run-time buffers (the shape of ops/resize.py's _Axis)."""
    index: list[Buffer]
    weight: list[Buffer | None]
    inside: Buffer | None = None


def axis_tables(ctx, opts, d: int, a: AxisScale, weight_dtype: str) -> tuple[RuntimeAxis, list]:
    """The buffers of axis d's taps, and the loop nest that fills them."""
    taps = _TAP_COUNT[opts.mode]
    crop = opts.coordinate == "tf_crop_and_resize"
    weighted = opts.mode != "nearest" or crop     # a crop zeroes the weights outside
    axis = RuntimeAxis(
        [ctx.temp(I64, (a.n_out,), f"ax{d}_idx{k}") for k in range(taps)],
        [ctx.temp(weight_dtype, (a.n_out,), f"ax{d}_w{k}") if weighted else None
         for k in range(taps)],
        ctx.temp(weight_dtype, (a.n_out,), f"ax{d}_in")
        if crop else None)

    def fill(o):
        x = coordinate(opts, Cast(F32, o), a)
        indices, weights = _TAPS[opts.mode](opts, x, a)
        stores = [Store(buf, (o,), e) for buf, e in zip(axis.index, indices, strict=True)]
        inside = None
        if crop:
            inside = Select(Binary("and", cmp("ge", x, 0.0), cmp("le", x, a.n_in - 1.0)),
                            _f(1, weight_dtype), _f(0, weight_dtype))
            stores.append(Store(axis.inside, (o,), inside))
            weights = [_f(1) if w is None else w for w in weights]
        for buf, w in zip(axis.weight, weights, strict=True):
            if w is not None:
                w = Cast(weight_dtype, w)
                stores.append(Store(buf, (o,), w if inside is None else w * inside))
        return seq(*stores)
    return axis, [nest((a.n_out,), fill)]


def check_extents(ctx, axes: list[tuple[int, AxisScale]], policy_rounding: bool) -> None:
    """The run's scales give the declared extents: floor(in * scale) for scales, the rounded
    product under a keep-aspect-ratio policy (as onnx's reference computes them)."""
    terms = []
    for _, a in axes:
        product = Cast(F64, a.scale) * float(a.n_in)
        if policy_rounding:
            product = product + 0.5
        terms.append(cmp("eq", Cast(I64, Unary("floor", product)), const_int(a.n_out)))
    ctx.check(all_of(terms), "the scales (or sizes under the keep_aspect_ratio_policy) do not "
                             "give the declared output shape")


def scale_exprs(ctx, in_shape, picked, scales=None, sizes=None, policy="stretch") -> list:
    """Per picked axis the float32 scale the run gives (scales, or sizes / in under a policy)."""
    if scales is not None:
        return [Cast(F32, v) for v in _values(ctx, scales, len(picked))]
    sizes_f = [Cast(F32, v) / _f(in_shape[a]) for v, a in
               zip(_values(ctx, sizes, len(picked)), picked, strict=True)]
    if policy == "stretch":
        return sizes_f
    pick = "min" if policy == "not_larger" else "max"
    common = sizes_f[0]
    for s in sizes_f[1:]:
        common = Binary(pick, common, s)
    return [common] * len(picked)


def roi_exprs(ctx, roi, count: int) -> list[tuple]:
    """Per picked axis the crop span (start, end) as float32 exprs; (None, None) without."""
    if roi is None:
        return [(None, None)] * count
    values = [Cast(F32, v) for v in _values(ctx, roi, 2 * count)]
    return [(values[k], values[count + k]) for k in range(count)]


def _values(ctx, buf, count: int):
    """The elements of a run-time input, or of a compile-time one as constants."""
    data = ctx.const(buf)
    if data is None:
        values = values_of(ctx, buf)
    else:
        flat = data.reshape(-1)
        values = [Const(float(v) if flat.dtype.kind == "f" else int(v),
                        "float32" if flat.dtype.kind == "f" else I64) for v in flat]
    if len(values) != count:
        raise fail(ctx, f"{len(values)} values for {count} axes")
    return values
