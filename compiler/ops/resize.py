"""Resize and Upsample.

Every interpolation mode is separable: along each axis an output index reads a few input
indices ("taps") with weights that depend on that output index only. The taps are computed
here, at compile time, in float32 exactly as onnxruntime computes them (its rounding at
half-way points is the reference); the kernel is then a sum over the tap combinations:

    out[i...] = sum_t  w0[t0][i0] * w1[t1][i1] * ... * X[idx0[t0][i0], idx1[t1][i1], ...]

Index tables become affine expressions where possible (e.g. `i // 2` for nearest 2x), else
small constant tables; they are clamped into range, so no tap ever reads out of bounds.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from .. import dtypes
from ..loop.ir import Buffer, Load, Store, seq
from ..loop.symbolic import product
from . import resize_taps as taps
from .common import nest
from .movement import index_expr
from .registry import register
from .resize_antialias import antialias_taps
from .runtime_values import check_equal
from .shape import const_input, fail, int_list, normalize_axes, scalar_const

F32 = np.float32


@dataclass
class _Axis:
    """The taps of one axis: per tap an input-index table and a weight table (None: all 1)."""
    index: list[np.ndarray]
    weight: list[np.ndarray | None]
    inside: np.ndarray | None = None    # tf_crop_and_resize: 0 where the output extrapolates


# -- coordinate transformation: output index -> input coordinate (float32, as onnxruntime) ---
def _half_pixel_symmetric(x, s, lo, li, r0, r1):
    adjustment = F32(lo) / (s * F32(li))
    offset = F32(li) / F32(2) * (F32(1) - adjustment)
    return (offset + (x.astype(np.float64) + 0.5) / s - 0.5).astype(F32)


def _tf_crop_and_resize(x, s, lo, li, r0, r1):
    if lo > 1:
        return F32(r0) * F32(li - 1) + x * (F32(r1) - F32(r0)) * F32(li - 1) / F32(lo - 1)
    return np.full_like(x, 0.5 * (r0 + r1) * (li - 1))


_COORDINATES = {
    "half_pixel": lambda x, s, lo, li, r0, r1: (x + F32(0.5)) / s - F32(0.5),
    "half_pixel_symmetric": _half_pixel_symmetric,
    "pytorch_half_pixel": lambda x, s, lo, li, r0, r1:
        (x + F32(0.5)) / s - F32(0.5) if lo > 1 else np.zeros_like(x),
    "align_corners": lambda x, s, lo, li, r0, r1:
        x * F32(li - 1) / F32(lo - 1) if lo > 1 else np.zeros_like(x),
    "asymmetric": lambda x, s, lo, li, r0, r1: x / s,
    "tf_half_pixel_for_nn": lambda x, s, lo, li, r0, r1: (x + F32(0.5)) / s,
    "tf_crop_and_resize": _tf_crop_and_resize,
}


def _round_half_away(x):
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


# Rounding of a float64 copy of the float32 coordinate (x + 0.5 is then exact).
_NEAREST = {
    "round_prefer_floor": lambda x, down: np.where(x == np.trunc(x) + 0.5, np.floor(x),
                                                   _round_half_away(x)),
    "round_prefer_ceil": lambda x, down: _round_half_away(x),
    "floor": lambda x, down: np.floor(x),
    "ceil": lambda x, down: np.ceil(x),
    "simple": lambda x, down: np.ceil(x) if down else np.trunc(x),   # Resize-10, Upsample
}


def _nearest_taps(x, n: int, mode: str, down: bool) -> _Axis:
    idx = _NEAREST[mode](x.astype(np.float64), down).astype(np.int64)
    return _Axis([np.clip(idx, 0, n - 1)], [None])


def _linear_taps(x, n: int) -> _Axis:
    x = np.clip(x, F32(0), F32(n - 1))
    lo = np.minimum(x.astype(np.int64), n - 1)
    frac = (x - lo.astype(F32)).astype(F32)
    return _Axis([lo, np.minimum(lo + 1, n - 1)], [F32(1) - frac, frac])


def _cubic_taps(x, n: int, a: float, exclude_outside: bool) -> _Axis:
    base = np.floor(x).astype(np.int64)
    s = (x - base.astype(F32)).astype(np.float64)
    a = float(a)
    t = [s + 1, s, 1 - s, 2 - s]      # distance from each of the four taps
    near = lambda d: ((a + 2) * d - (a + 3)) * d * d + 1             # noqa: E731
    far = lambda d: ((a * d - 5 * a) * d + 8 * a) * d - 4 * a        # noqa: E731
    weights = [far(t[0]), near(t[1]), near(t[2]), far(t[3])]
    index = [base + k for k in (-1, 0, 1, 2)]
    if exclude_outside:
        weights = [np.where((i >= 0) & (i < n), w, 0.0) for i, w in zip(index, weights,
                                                                        strict=True)]
        total = np.sum(weights, axis=0)
        weights = [w / total for w in weights]
    return _Axis([np.clip(i, 0, n - 1) for i in index], [w.astype(F32) for w in weights])


def _prune(axis: _Axis) -> _Axis:
    """Drop taps whose weight is 0 everywhere; a single tap of weight 1 needs no weight."""
    keep = [t for t, w in enumerate(axis.weight) if w is None or np.any(w != 0)] or [0]
    index = [axis.index[t] for t in keep]
    weight = [axis.weight[t] for t in keep]
    if len(keep) == 1 and weight[0] is not None and np.all(weight[0] == 1):
        weight = [None]
    return _Axis(index, weight, axis.inside)


@dataclass(frozen=True)
class _Options:
    mode: str
    coordinate: str
    nearest: str
    cubic_a: float = -0.75
    exclude_outside: bool = False
    extrapolation: float = 0.0
    antialias: bool = False


def _axis_taps(opts: _Options, n_in: int, n_out: int, scale, roi) -> _Axis:
    if n_in == n_out and scale == 1 and opts.coordinate != "tf_crop_and_resize":
        return _Axis([np.arange(n_out)], [None])       # onnxruntime leaves such axes alone
    x = _COORDINATES[opts.coordinate](np.arange(n_out, dtype=F32), F32(scale), n_out, n_in,
                                      *roi).astype(F32)
    if opts.antialias and opts.mode != "nearest" and scale < 1:
        axis = _Axis(*antialias_taps(x, n_in, float(scale), opts.mode, opts.cubic_a,
                                     opts.exclude_outside))
    elif opts.mode == "nearest":
        axis = _nearest_taps(x, n_in, opts.nearest, scale < 1)
    elif opts.mode == "linear":
        axis = _linear_taps(x, n_in)
    else:
        axis = _cubic_taps(x, n_in, opts.cubic_a, opts.exclude_outside)
    if opts.coordinate == "tf_crop_and_resize":
        inside = (x >= 0) & (x <= F32(n_in - 1))
        if not inside.all():
            one = [np.ones(n_out, F32) if w is None else w for w in axis.weight]
            axis = _Axis(axis.index, [w * inside for w in one], inside.astype(F32))
    return _prune(axis)


# -- the kernel --------------------------------------------------------------------------------
def _emit_resize(ctx, X, axes: list[_Axis], extrapolation: float) -> None:
    out = ctx.output(0)
    np_dtype = dtypes.dtype(out.dtype).numpy

    def table(t, d, v, hint):
        """A tap table: a run-time buffer (ops/resize_taps.py) or compile-time values."""
        if isinstance(t, Buffer):
            return Load(t, (v[d],))
        if hint.startswith("idx"):
            return index_expr(ctx, t, v[d], hint)
        return Load(ctx.constant(t.astype(np_dtype), hint), (v[d],))

    def tables(d, v):
        a = axes[d]
        idx = [table(t, d, v, f"idx{d}_{k}") for k, t in enumerate(a.index)]
        wts = [None if w is None else table(w, d, v, f"w{d}_{k}")
               for k, w in enumerate(a.weight)]
        return idx, wts

    def body(*v):
        per_axis = [tables(d, v) for d in range(len(axes))]
        terms = []
        for combo in itertools.product(*(range(len(a.index)) for a in axes)):
            value = Load(X, tuple(per_axis[d][0][t] for d, t in enumerate(combo)))
            for d, t in enumerate(combo):
                w = per_axis[d][1][t]
                value = value if w is None else w * value
            terms.append(value)
        total = terms[0]
        for term in terms[1:]:
            total = total + term
        masks = [table(a.inside, d, v, f"in{d}") for d, a in enumerate(axes)
                 if a.inside is not None]
        if masks and extrapolation != 0:
            inside = masks[0]
            for m in masks[1:]:
                inside = inside * m
            fill = scalar_const(out.dtype, extrapolation)
            total = total + (fill - fill * inside)
        return Store(out, tuple(v), total)
    ctx.emit(nest(ctx.shape(out), body), kind="elementwise")


# -- scales, sizes and the op versions -------------------------------------------------------
def _scales_and_roi(ctx, X, roi, scales, sizes, axes, policy: str, coordinate: str):
    in_shape, out_shape = ctx.shape(X), ctx.shape(ctx.output(0))
    rank = len(in_shape)
    axes = list(range(rank)) if axes is None else normalize_axes(ctx, axes, rank)
    full = [F32(1)] * rank
    if scales is not None and np.asarray(scales).size:
        values = np.asarray(scales, F32).reshape(-1)
        if len(values) != len(axes) or (values <= 0).any():
            raise fail(ctx, f"scales {values.tolist()} do not fit axes {axes}")
        for a, s in zip(axes, values, strict=True):
            full[a] = s
    elif sizes is not None:
        wanted = int_list(sizes)
        if len(wanted) != len(axes):
            raise fail(ctx, f"sizes {wanted} do not fit axes {axes}")
        for a, n in zip(axes, wanted, strict=True):
            full[a] = F32(n) / F32(in_shape[a]) if in_shape[a] else F32(1)
        if policy in ("not_larger", "not_smaller"):
            pick = min if policy == "not_larger" else max
            common = pick(full[a] for a in axes)
            for a in axes:
                full[a] = common
        elif policy != "stretch":
            raise fail(ctx, f"unknown keep_aspect_ratio_policy {policy!r}")
    else:
        raise fail(ctx, "one of scales and sizes must be given")
    spans = [(0.0, 1.0)] * rank
    if coordinate == "tf_crop_and_resize":
        if roi is None or np.asarray(roi).size != 2 * len(axes):
            raise fail(ctx, "tf_crop_and_resize needs a constant roi of 2 values per axis")
        r = np.asarray(roi, np.float64).reshape(-1)
        for i, a in enumerate(axes):
            spans[a] = (float(r[i]), float(r[len(axes) + i]))
    return in_shape, out_shape, full, spans


_MODES = {"nearest": "nearest", "linear": "linear", "bilinear": "linear", "cubic": "cubic"}


def _resize(ctx, X, opts: _Options, scales, sizes=None, roi=None, axes=None,
            policy="stretch") -> None:
    if opts.coordinate not in _COORDINATES:
        raise fail(ctx, f"unsupported coordinate_transformation_mode {opts.coordinate!r}")
    if opts.nearest not in _NEAREST:
        raise fail(ctx, f"unsupported nearest_mode {opts.nearest!r}")
    if opts.mode != "nearest" and not dtypes.dtype(X.dtype).is_float:
        raise fail(ctx, f"{opts.mode} interpolation of {X.dtype} data is not supported")
    in_shape, out_shape, full, spans = _scales_and_roi(ctx, X, roi, scales, sizes, axes,
                                                       policy, opts.coordinate)
    taps = [_axis_taps(opts, n_in, n_out, s, span) for n_in, n_out, s, span
            in zip(in_shape, out_shape, full, spans, strict=True)]
    if all(len(a.index) == 1 and a.weight[0] is None and a.inside is None and
           np.array_equal(a.index[0], np.arange(n)) for a, n in zip(taps, in_shape, strict=True)):
        ctx.alias(ctx.output(0), X)
        return
    _emit_resize(ctx, X, taps, opts.extrapolation)


def _mode(ctx, mode: str) -> str:
    if mode not in _MODES:
        raise fail(ctx, f"unsupported mode {mode!r} (nearest, linear and cubic are)")
    return _MODES[mode]


@register("Resize", since=11)
def Resize(ctx, X, roi=None, scales=None, sizes=None, *, mode="nearest",
           coordinate_transformation_mode="half_pixel", nearest_mode="round_prefer_floor",
           cubic_coeff_a=-0.75, exclude_outside=0, extrapolation_value=0.0, antialias=0,
           axes=None, keep_aspect_ratio_policy="stretch"):
    opts = _Options(_mode(ctx, mode), coordinate_transformation_mode, nearest_mode,
                    cubic_coeff_a, bool(exclude_outside), extrapolation_value, bool(antialias))
    crop = roi if coordinate_transformation_mode == "tf_crop_and_resize" else None
    if _runtime(ctx, scales) or _runtime(ctx, crop) or \
            (_runtime(ctx, sizes) and keep_aspect_ratio_policy != "stretch"):
        _resize_at_run_time(ctx, X, opts, scales, sizes, crop, axes, keep_aspect_ratio_policy)
        return
    roi_value = None if crop is None else ctx.const(crop)
    if sizes is not None and ctx.const(sizes) is None:
        sizes = _declared_sizes(ctx, X, sizes, axes)
    _resize(ctx, X, opts, const_input(ctx, scales, "scales"), const_input(ctx, sizes, "sizes"),
            roi_value, axes, keep_aspect_ratio_policy)


def _runtime(ctx, buf) -> bool:
    """A non-empty input whose values arrive with the run."""
    return buf is not None and ctx.const(buf) is None and \
        product(ctx.shape(buf)) > 0


def _resize_at_run_time(ctx, X, opts: _Options, scales, sizes, roi, axes,
                        policy: str) -> None:
    """Scales, roi or policy-scaled sizes read at run time: the declared output extents (the
    run checks them), tap tables computed by a prologue kernel (ops/resize_taps.py)."""
    in_shape, out_shape = ctx.shape(X), ctx.shape(ctx.output(0))
    rank = len(in_shape)
    picked = list(range(rank)) if axes is None else normalize_axes(ctx, axes, rank)
    if len(out_shape) != rank:
        raise fail(ctx, "scales or roi read at run time need the declared output shape")
    if opts.antialias and opts.mode != "nearest":
        raise fail(ctx, "antialiased resizing with scales read at run time is not supported")
    use_scales = scales is not None and product(ctx.shape(scales)) > 0
    if not use_scales and sizes is None:
        raise fail(ctx, "one of scales and sizes must be given")
    factors = taps.scale_exprs(ctx, in_shape, picked, scales if use_scales else None, sizes,
                               policy)
    spans = taps.roi_exprs(ctx, roi, len(picked))
    resized = [(a, taps.AxisScale(in_shape[a], out_shape[a], f, *span))
               for a, f, span in zip(picked, factors, spans, strict=True)]
    if use_scales or policy != "stretch":
        taps.check_extents(ctx, resized, policy_rounding=not use_scales)
    elif ctx.const(sizes) is None:
        check_equal(ctx, sizes, [out_shape[a] for a in picked], "the sizes input")
    weight_dtype = ctx.output(0).dtype
    per_axis, fills = {}, []
    for a, scale in resized:
        per_axis[a], nests = taps.axis_tables(ctx, opts, a, scale, weight_dtype)
        fills += nests
    ctx.emit(seq(*fills), stage="taps")
    axes_taps = [per_axis.get(a) or _axis_taps(opts, in_shape[a], out_shape[a], 1.0, (0.0, 1.0))
                 for a in range(rank)]
    _emit_resize(ctx, X, axes_taps, opts.extrapolation)


def _declared_sizes(ctx, X, sizes, axes):
    """Sizes read at run time with the stretch policy: they are the declared output's extents
    (checked in the run), and the scales follow from them (other policies: the run-time
    taps of _resize_at_run_time)."""
    out, rank = ctx.shape(ctx.output(0)), len(ctx.shape(X))
    picked = [out[a] for a in (range(rank) if axes is None else
                               normalize_axes(ctx, axes, rank))]
    check_equal(ctx, sizes, picked, "the sizes input")
    return ctx.constant(np.array(picked, np.int64), "sizes")


@register("Resize", since=10, until=10)
def Resize_10(ctx, X, scales, *, mode="nearest"):
    opts = _Options(_mode(ctx, mode), "asymmetric", "simple")
    if ctx.const(scales) is None:
        _resize_at_run_time(ctx, X, opts, scales, None, None, None, "stretch")
        return
    _resize(ctx, X, opts, const_input(ctx, scales, "scales"))


@register("Upsample", since=9, until=10)
def Upsample(ctx, X, scales, *, mode="nearest"):
    Resize_10(ctx, X, scales, mode=mode)


@register("Upsample", since=7, until=8)
def Upsample_7(ctx, X, *, scales, mode="nearest"):
    opts = _Options(_mode(ctx, mode), "asymmetric", "simple")
    _resize(ctx, X, opts, np.asarray(scales, F32))


@register("Upsample", since=1, until=6)
def Upsample_1(ctx, X, *, height_scale, width_scale, mode="nearest"):
    opts = _Options(_mode(ctx, mode), "asymmetric", "simple")
    _resize(ctx, X, opts, np.array([1, 1, height_scale, width_scale], F32))
