"""DeformConv: a 2-D convolution whose taps move by learned offsets.

Two kernels. The sampling kernel fills a column matrix, as im2col with moved taps:
col[n, c, r, s, oh, ow] = mask[n, og, r, s, oh, ow] * X[n, c] sampled bilinearly at
(oh * stride - pad + r * dilation + offset_h, ow * stride - pad + s * dilation + offset_w),
where og is the offset group of channel c and a tap outside the image reads 0 (GridSample's
taps, zeros padding, at a coordinate already in pixels: ops/sampling.py). The taps of a
position are computed once and used by every channel of its offset group. The second kernel
is the convolution's GEMM per (n, group) over the columns, shaped as Conv's implicit GEMM
(loops i, oh, ow, c, r, s) so that the same schedule tiles it.
"""
from __future__ import annotations

import dataclasses

from ..loop.ir import Allocate, Buffer, Cast, Load, Store, const_int, loops, seq
from .common import view
from .conv import conv_pads
from .matmul import emit_accumulation
from .registry import register
from .sampling import Sampler, as_dtype, axis_taps, compute_dtype, interpolate, local
from .shape import fail

_TAPS = 2    # bilinear: two taps per axis


@dataclasses.dataclass(frozen=True)
class _PixelSampler(Sampler):
    """Bilinear sampling, zeros outside, of a coordinate given in pixels (not in [-1, 1])."""

    def position(self, g, size: int):
        return g


@dataclasses.dataclass(frozen=True)
class _Geometry:
    n: int
    c: int
    oc: int
    group: int
    offset_group: int
    kernel: tuple[int, int]
    out: tuple[int, int]
    strides: tuple[int, int]
    dilations: tuple[int, int]
    begin: tuple[int, int]


def _geometry(ctx, X, W, offset, mask, B, *, dilations, group, offset_group, pads,
              strides) -> _Geometry:
    xs, ws, os_, ys = ctx.shape(X), ctx.shape(W), ctx.shape(offset), ctx.shape(ctx.output(0))
    if len(xs) != 4 or len(ws) != 4:
        raise fail(ctx, f"input {xs} and weights {ws}: only 2-D deformable convolution is "
                        "compiled")
    n, c = xs[:2]
    oc, cg = ws[:2]
    kernel = tuple(ws[2:])
    if c != cg * group or oc % group or c % offset_group:
        raise fail(ctx, f"channels {c} / weights {ws} do not match group={group}, "
                        f"offset_group={offset_group}")
    taps = offset_group * kernel[0] * kernel[1]
    if len(os_) != 4 or os_[:2] != (n, 2 * taps) or ys != (n, oc, *os_[2:]):
        raise fail(ctx, f"offset of shape {os_} does not fit input {xs}, weights {ws} and "
                        f"output {ys}")
    if mask is not None and ctx.shape(mask) != (n, taps, *os_[2:]):
        raise fail(ctx, f"mask of shape {ctx.shape(mask)}, expected {(n, taps, *os_[2:])}")
    if B is not None and ctx.shape(B) != (oc,):
        raise fail(ctx, f"bias of shape {ctx.shape(B)}, expected ({oc},)")
    strides = tuple(strides or (1, 1))
    dilations = tuple(dilations or (1, 1))
    begin, _ = conv_pads("NOTSET", pads, list(xs[2:]), [], strides, [])
    return _Geometry(n, c, oc, group, offset_group, kernel, tuple(os_[2:]), strides, dilations,
                     tuple(begin))


def _sample_columns(ctx, X, offset, mask, geo: _Geometry) -> Buffer:
    """The column matrix [n, c, r, s, oh, ow] of masked bilinear samples."""
    (kh, kw), (oh, ow), og = geo.kernel, geo.out, geo.offset_group
    cpg, sizes = geo.c // og, ctx.shape(X)[2:]
    cdt, adt = compute_dtype(offset.dtype), compute_dtype(X.dtype)
    col = ctx.temp(X.dtype, (geo.n, geo.c, kh, kw, oh, ow), "columns")
    colv = view(col, geo.n, og, cpg, kh, kw, oh, ow)
    Xv = view(X, geo.n, og, cpg, *sizes)
    offv = view(offset, geo.n, og, kh, kw, 2, oh, ow)
    maskv = None if mask is None else view(mask, geo.n, og, kh, kw, oh, ow)
    sampler = _PixelSampler("linear", "zeros", True)
    pos = local(ctx, "pos", cdt, 2, 2)
    idx = local(ctx, "idx", "int64", 2, _TAPS)
    wt = local(ctx, "wt", cdt, 2, _TAPS)

    def at_tap(n, g, r, s, h, w):
        base = (h * geo.strides[0] + r * geo.dilations[0] - geo.begin[0],
                w * geo.strides[1] + s * geo.dilations[1] - geo.begin[1])
        stmts = []
        for d in range(2):
            shift = as_dtype(cdt, Load(offv, (n, g, r, s, const_int(d), h, w)))
            stmts += axis_taps(sampler, Cast(cdt, base[d]) + shift, sizes[d], d, pos, idx, wt,
                               cdt)

        def sample(c):
            value = interpolate(Xv, idx, wt, (n, g, c), _TAPS, 2, adt)
            if maskv is not None:
                value = as_dtype(adt, Load(maskv, (n, g, r, s, h, w))) * value
            return Store(colv, (n, g, c, r, s, h, w), as_dtype(col.dtype, value))
        body = seq(*stmts, loops([("c", cpg)], sample))
        for buf in (pos, idx, wt):
            body = Allocate(buf, body)
        return body
    ctx.emit(loops([("n", geo.n), ("og", og), ("r", kh), ("s", kw), ("oh", oh), ("ow", ow)],
                   at_tap), kind="gather", stage="sample")
    return col


def _gemm(ctx, col: Buffer, W, B, geo: _Geometry) -> None:
    """Y[n, g, i, oh, ow] = B + sum over (c, r, s) of W[g, i, c, r, s] * col[n, g, c, r, s,
    oh, ow]."""
    (kh, kw), (oh, ow), grp = geo.kernel, geo.out, geo.group
    ocg, cg = geo.oc // grp, geo.c // grp
    Y = view(ctx.output(0), geo.n, grp, ocg, oh, ow)
    Wv = view(W, grp, ocg, cg, kh, kw)
    colv = view(col, geo.n, grp, cg, kh, kw, oh, ow)
    init = (lambda n, g, i, h, w: Load(B, (g * ocg + i,))) if B is not None else None

    def nest(acc):
        def body(n, g, i, h, w, c, r, s):
            idx = (n, g, i, h, w)
            return Store(acc, idx, Load(acc, idx) + Load(Wv, (g, i, c, r, s))
                         * Load(colv, (n, g, c, r, s, h, w)))
        return loops([("n", geo.n), ("g", grp), ("i", ocg), ("oh", oh), ("ow", ow),
                      ("c", cg), ("r", kh), ("s", kw)], body)
    emit_accumulation(ctx, Y, init, nest, "conv")


@register("DeformConv", since=19)
def DeformConv(ctx, X, W, offset, B=None, mask=None, *, dilations=None, group=1,
               kernel_shape=None, offset_group=1, pads=None, strides=None):
    if X.dtype not in ("float32", "float64"):
        raise fail(ctx, f"input of type {X.dtype}: float32 or float64 expected")
    geo = _geometry(ctx, X, W, offset, mask, B, dilations=dilations, group=group,
                    offset_group=offset_group, pads=pads, strides=strides)
    _gemm(ctx, _sample_columns(ctx, X, offset, mask, geo), W, B, geo)
