"""RoiAlign: the average (or max) of bilinear samples over each bin of a region of interest.

Regions and their batch entries are run-time data. Per region the kernel computes its start,
bin size and (sampling_ratio 0) its run-time count of samples per bin axis, which bounds the
sample loops. Sample coordinates are clamped into the image before they become indices, and
a sample farther than one pixel outside gets weight 0, as in onnxruntime's precomputation.
"""
from __future__ import annotations

from ..loop.ir import (
    Allocate,
    Binary,
    Cast,
    Const,
    Load,
    Select,
    Store,
    Unary,
    cmp,
    const_int,
    loops,
    seq,
)
from .indexing import wrap_index
from .registry import register
from .sampling import as_dtype, clamp_float, compute_dtype, local
from .shape import fail

# Samples per bin axis at most with sampling_ratio 0 (ceil(roi size / output size) of a
# larger region is cut to it): the count is a run-time float, and converting a float out of
# the int range is undefined in C.
MAX_ADAPTIVE_SAMPLES = 1 << 16
_MODES = ("avg", "max")
_COORDINATES = ("half_pixel", "output_half_pixel")


class _Roi:
    """The loop nest of one RoiAlign node and its kernel-local values."""

    def __init__(self, ctx, X, rois, batch_indices, attrs: dict):
        self.ctx, self.X, self.rois, self.batch = ctx, X, rois, batch_indices
        self.n, self.c, self.h, self.w = ctx.shape(X)
        self.dt = compute_dtype(X.dtype)
        self.out_h, self.out_w = attrs["output_height"], attrs["output_width"]
        self.avg = attrs["mode"] == "avg"
        self.half_pixel = attrs["coordinate_transformation_mode"] == "half_pixel"
        self.scale, self.ratio = float(attrs["spatial_scale"]), int(attrs["sampling_ratio"])
        self.box = local(ctx, "box", self.dt, 6)     # start h, w; roi size h, w; bin size h, w
        self.counts = local(ctx, "counts", "int64", 3)   # samples per bin h, w; batch entry
        self.ys, self.xs = local(ctx, "ys", "int64", 2), local(ctx, "xs", "int64", 2)
        self.yw, self.xw = local(ctx, "yw", self.dt, 2), local(ctx, "xw", self.dt, 2)
        self.point = local(ctx, "point", self.dt, 2)   # a sample's coordinate, then clamped
        self.acc = local(ctx, "acc", self.dt, 1)

    def f(self, value: float) -> Const:
        return Const(float(value), self.dt)

    def get(self, buf, i: int):
        return Load(buf, (const_int(i),))

    def set(self, buf, i: int, value):
        return Store(buf, (const_int(i),), value)

    def region(self, r) -> list:
        """Stores the region's geometry into box and counts."""
        offset = 0.5 if self.half_pixel else 0.0

        def corner(j):
            value = as_dtype(self.dt, Load(self.rois, (r, const_int(j))))
            return (value if self.scale == 1 else value * self.f(self.scale)) - offset
        stmts = [self.set(self.box, 0, corner(1)), self.set(self.box, 1, corner(0))]
        for i, (end, out) in enumerate(((3, self.out_h), (2, self.out_w))):
            size = corner(end) - self.get(self.box, i)
            if not self.half_pixel:       # malformed regions count as 1x1
                size = Binary("max", size, self.f(1.0))
            bin_size = self.get(self.box, 4 + i)
            count = const_int(self.ratio) if self.ratio > 0 else Cast("int64", clamp_float(
                Unary("ceil", bin_size), 0, MAX_ADAPTIVE_SAMPLES))    # ceil(size / out)
            stmts += [self.set(self.box, 2 + i, size),
                      self.set(self.box, 4 + i, self.get(self.box, 2 + i) / self.f(out)),
                      self.set(self.counts, i, count)]
        at = wrap_index(Load(self.batch, (r,)), self.n)
        return stmts + [self.set(self.counts, 2, at)]

    def axis_samples(self, i: int, p, s, index, weight) -> list:
        """The two pixels and weights of sample s of bin p along axis i (0: h, 1: w)."""
        size = (self.h, self.w)[i]
        bin_size = self.get(self.box, 4 + i)
        step = (Cast(self.dt, s) + 0.5) * bin_size / Cast(self.dt, self.get(self.counts, i))
        x, inside = self.get(self.point, 0), self.get(self.point, 1)
        outside = Binary("or", cmp("lt", x, -1.0), cmp("gt", x, float(size)))
        frac = inside - Cast(self.dt, self.get(index, 0))
        zero = self.f(0.0)
        return [self.set(self.point, 0, self.get(self.box, i) + Cast(self.dt, p) * bin_size
                         + step),
                self.set(self.point, 1, clamp_float(x, 0, size - 1)),
                self.set(index, 0, Cast("int64", inside)),
                self.set(index, 1, Binary("min", self.get(index, 0) + 1, const_int(size - 1))),
                self.set(weight, 1, Select(outside, zero, frac)),
                self.set(weight, 0, Select(outside, zero, 1.0 - frac))]

    def sample(self, c):
        """One sample's value from its pixels ys x xs: the weighted sum (avg), or the largest
        weighted pixel (max, as onnxruntime)."""
        b = self.get(self.counts, 2)
        terms = [self.get(self.yw, a) * self.get(self.xw, k) * as_dtype(self.dt, Load(
            self.X, (b, c, self.get(self.ys, a), self.get(self.xs, k))))
            for a in range(2) for k in range(2)]
        fold = (lambda u, v: u + v) if self.avg else (lambda u, v: Binary("max", u, v))
        value = terms[0]
        for term in terms[1:]:
            value = fold(value, term)
        return value

    def bin(self, r, c, ph, pw):
        acc = self.get(self.acc, 0)
        grid_h, grid_w = self.get(self.counts, 0), self.get(self.counts, 1)
        step = (lambda v: acc + v) if self.avg else (lambda v: Binary("max", acc, v))
        samples = loops([("iy", grid_h)], lambda iy: seq(
            *self.axis_samples(0, ph, iy, self.ys, self.yw),
            loops([("ix", grid_w)], lambda ix: seq(
                *self.axis_samples(1, pw, ix, self.xs, self.xw),
                self.set(self.acc, 0, step(self.sample(c)))))))
        count = grid_h * grid_w
        if self.avg:
            final = acc / Cast(self.dt, Binary("max", count, const_int(1)))
        else:       # no sample (an empty region with sampling_ratio 0) gives 0
            final = acc if self.ratio > 0 else Select(cmp("gt", count, 0), acc, self.f(0.0))
        out = self.ctx.output(0)
        start = self.f(0.0 if self.avg else float("-inf"))
        return seq(self.set(self.acc, 0, start), samples,
                   Store(out, (r, c, ph, pw), as_dtype(out.dtype, final)))

    def emit(self) -> None:
        def per_region(r):
            body = seq(*self.region(r), loops(
                [("c", self.c), ("ph", self.out_h), ("pw", self.out_w)],
                lambda c, ph, pw: self.bin(r, c, ph, pw)))
            for buf in (self.box, self.counts, self.point, self.ys, self.xs, self.yw, self.xw,
                        self.acc):
                body = Allocate(buf, body)
            return body
        self.ctx.emit(loops([("r", self.ctx.shape(self.rois)[0])], per_region), kind="gather")


def _roi_align(ctx, X, rois, batch_indices, **attrs) -> None:
    xs, rs, bs = ctx.shape(X), ctx.shape(rois), ctx.shape(batch_indices)
    if len(xs) != 4 or len(rs) != 2 or rs[1] != 4 or bs != (rs[0],):
        raise fail(ctx, f"input {xs}, rois {rs} and batch_indices {bs}: expected [N, C, H, W],"
                        " [R, 4] and [R]")
    if attrs["mode"] not in _MODES:
        raise fail(ctx, f"unsupported mode {attrs['mode']!r} (avg and max are)")
    if attrs["coordinate_transformation_mode"] not in _COORDINATES:
        raise fail(ctx, "unsupported coordinate_transformation_mode "
                        f"{attrs['coordinate_transformation_mode']!r}")
    if attrs["output_height"] < 1 or attrs["output_width"] < 1 or attrs["sampling_ratio"] < 0:
        raise fail(ctx, "output_height and output_width must be positive, sampling_ratio "
                        "non-negative")
    if ctx.shape(ctx.output(0)) != (rs[0], xs[1], attrs["output_height"],
                                    attrs["output_width"]):
        raise fail(ctx, f"output shape {ctx.shape(ctx.output(0))} does not fit")
    if 0 in xs[2:] and rs[0] * xs[1]:
        raise fail(ctx, f"regions of an empty input of shape {xs}")
    _Roi(ctx, X, rois, batch_indices, attrs).emit()


@register("RoiAlign", since=16)
def RoiAlign(ctx, X, rois, batch_indices, *, coordinate_transformation_mode="half_pixel",
             mode="avg", output_height=1, output_width=1, sampling_ratio=0, spatial_scale=1.0):
    _roi_align(ctx, X, rois, batch_indices, mode=mode, output_height=output_height,
               output_width=output_width, sampling_ratio=sampling_ratio,
               spatial_scale=spatial_scale,
               coordinate_transformation_mode=coordinate_transformation_mode)


@register("RoiAlign", since=10, until=15)
def RoiAlign_10(ctx, X, rois, batch_indices, *, mode="avg", output_height=1, output_width=1,
                sampling_ratio=0, spatial_scale=1.0):
    # before opset 16 regions map to pixels without the half-pixel shift
    RoiAlign(ctx, X, rois, batch_indices, coordinate_transformation_mode="output_half_pixel",
             mode=mode, output_height=output_height, output_width=output_width,
             sampling_ratio=sampling_ratio, spatial_scale=spatial_scale)
