"""Conv: pad (when needed), then a GEMM-shaped nest per (n, group): rows are output
channels, columns output pixels, the reduction runs over (input channel, kernel row, kernel
column), read from the (padded) input in place: an implicit GEMM, of which a 1x1
convolution is the plain case. One filter per channel is a direct depthwise nest."""
from __future__ import annotations

from ..errors import ModelError
from ..loop.ir import Buffer, Const, Load, Store, cmp, loops
from ..loop.symbolic import as_dim_expr, canon, dims_of
from .common import view
from .matmul import emit_accumulation
from .registry import register


def conv_pads(auto_pad, pads, in_sp, k_eff, strides, out_sp):
    """Begin/end pads per spatial dim, ONNX auto_pad rules."""
    nd = len(in_sp)
    if auto_pad in ("NOTSET", "", None):
        pads = list(pads or [0] * (2 * nd))
        return pads[:nd], pads[nd:]
    if auto_pad == "VALID":
        return [0] * nd, [0] * nd
    total = [max(0, (o - 1) * s + k - i) for i, k, s, o in zip(in_sp, k_eff, strides, out_sp)]
    small = [t // 2 for t in total]
    big = [t - t // 2 for t in total]
    if auto_pad == "SAME_UPPER":
        return small, big
    if auto_pad == "SAME_LOWER":
        return big, small
    raise ModelError(f"Conv: unknown auto_pad {auto_pad!r}")


def _check_output_extents(ctx, in_sp, out_sp, k_eff, strides, begin, end) -> None:
    """The output's spatial extents are the ones the input, kernel, strides and pads give
    (the kernels index the input from them), and at least 1: a kernel larger than its padded
    input is refused, as onnxruntime does."""
    for i, o, k, s, b, e in zip(in_sp, out_sp, k_eff, strides, begin, end):
        if not isinstance(i, int) and s >= 1:     # an extent over symbols: checked per run
            room = canon(as_dim_expr(i) + (b + e - k))
            if canon(room // s + 1) == canon(o):
                ctx.check(cmp("ge", as_dim_expr(room), 0), f"a kernel of {list(k_eff)} is "
                          "larger than the padded input at these dimension values")
                continue
        if not isinstance(i, int) or i + b + e < k or s < 1 or o != (i + b + e - k) // s + 1:
            raise ModelError(f"node {ctx.node.name!r} ({ctx.node.op_type}): a kernel of "
                             f"{list(k_eff)} (with dilations) over the input {list(in_sp)} "
                             f"padded by {list(begin)}/{list(end)} with strides "
                             f"{list(strides)} cannot give the output {list(out_sp)}")


def pad_input(ctx, X: Buffer, shape, begin, end, fill: float = 0.0) -> Buffer:
    """Padded copy of X (N, C, H, W): the border filled (top and bottom rows, left and right
    columns: the arena is reused, so every run refills it), the interior copied."""
    n, c, h, w = shape
    hp, wp = h + begin[0] + end[0], w + begin[1] + end[1]
    Xp = ctx.temp(X.dtype, (n, c, hp, wp), "padded")
    value = Const(fill, X.dtype)
    bands = [("top", begin[0], 0, "rows"), ("bottom", end[0], begin[0] + h, "rows"),
             ("left", begin[1], 0, "cols"), ("right", end[1], begin[1] + w, "cols")]
    for stage, size, first, kind in bands:
        if not size:
            continue
        if kind == "rows":
            body = loops([("n", n), ("c", c), ("h", size), ("w", wp)], lambda vn, vc, vh, vw,
                         f=first: Store(Xp, (vn, vc, vh + f, vw), value))
        else:
            body = loops([("n", n), ("c", c), ("h", h), ("w", size)], lambda vn, vc, vh, vw,
                         f=first: Store(Xp, (vn, vc, vh + begin[0], vw + f), value))
        ctx.emit(body, kind="elementwise", stage=f"pad_{stage}")
    ctx.emit(loops([("n", n), ("c", c), ("h", h), ("w", w)],
                   lambda vn, vc, vh, vw: Store(Xp, (vn, vc, vh + begin[0], vw + begin[1]),
                                                Load(X, (vn, vc, vh, vw)))),
             kind="elementwise", stage="pad_copy")
    return Xp


def implicit_gemm(ctx, Xp: Buffer, W: Buffer, B, Y: Buffer, ys, group: int, kernel, strides,
                  dilations) -> None:
    """Y[n, g, i, oh, ow] += W[g, i, c, r, s] * Xp[n, g, c, oh*sh + r*dh, ow*sw + s*dw]: the
    GEMM of im2col with the column matrix never built (rows i: output channels, columns
    (oh, ow): output pixels, reduction (c, r, s)), so the input is read in place."""
    n, oc, oh, ow = ys
    ocg, cg = oc // group, dims_of(W)[1]
    Xv = view(Xp, n, group, cg, *ctx.shape(Xp)[2:])
    Wv = view(W, group, ocg, cg, *kernel)
    Y = view(Y, n, group, ocg, oh, ow)
    init = (lambda vn, vg, i, vh, vw: Load(B, (vg * ocg + i,))) if B is not None else None

    def nest(acc):
        def body(vn, vg, i, vh, vw, c, r, s):
            x = Load(Xv, (vn, vg, c, vh * strides[0] + r * dilations[0],
                          vw * strides[1] + s * dilations[1]))
            idx = (vn, vg, i, vh, vw)
            return Store(acc, idx, Load(acc, idx) + Load(Wv, (vg, i, c, r, s)) * x)
        return loops([("n", n), ("g", group), ("i", ocg), ("oh", oh), ("ow", ow), ("c", cg),
                      ("r", kernel[0]), ("s", kernel[1])], body)
    emit_accumulation(ctx, Y, init, nest, "conv")


def depthwise(ctx, Xp: Buffer, W: Buffer, B, Y: Buffer, ys, kernel, strides,
              dilations) -> None:
    """One filter per channel: a direct loop nest (im2col would copy the input kh*kw times
    for a GEMM with one row)."""
    n, c, oh, ow = ys
    Y = view(Y, n, c, oh, ow)
    Wv = view(W, c, kernel[0], kernel[1])
    init = (lambda vn, vc, vh, vw: Load(B, (vc,))) if B is not None else None

    def nest(acc):
        def body(vn, vc, vh, vw, kh, kw):
            tap = Load(Xp, (vn, vc, vh * strides[0] + kh * dilations[0],
                            vw * strides[1] + kw * dilations[1]))
            idx = (vn, vc, vh, vw)
            return Store(acc, idx, Load(acc, idx) + tap * Load(Wv, (vc, kh, kw)))
        return loops([("n", n), ("c", c), ("oh", oh), ("ow", ow), ("kh", kernel[0]),
                      ("kw", kernel[1])], body)
    emit_accumulation(ctx, Y, init, nest, "depthwise")


@register("Conv", since=1)
def Conv(ctx, X, W, B=None, *, auto_pad="NOTSET", dilations=None, group=1, kernel_shape=None,
         pads=None, strides=None):
    # 16-bit floats are storage: the widen-half pass computes them in float32
    if X.dtype not in ("float32", "float16", "bfloat16"):
        raise ModelError(f"Conv: only 1-D/2-D float32 convolution is supported (got {X.dtype})")
    if kernel_shape is not None and tuple(kernel_shape) != tuple(ctx.shape(W)[2:]):
        raise ModelError(f"node {ctx.node.name!r} (Conv): kernel_shape {list(kernel_shape)} "
                         f"disagrees with the weights' shape {list(ctx.shape(W))}")
    convolve(ctx, X, W, B, ctx.output(0), auto_pad=auto_pad, dilations=dilations, group=group,
             pads=pads, strides=strides)


def convolve(ctx, X, W, B, Y, *, auto_pad="NOTSET", dilations=None, group=1, pads=None,
             strides=None) -> None:
    """Y = conv(X, W) + B (1-D or 2-D), accumulated in Y's dtype: Conv's nests, which
    ConvInteger and QLinearConv reuse on int32 data."""
    xs, ws, ys = ctx.shape(X), ctx.shape(W), ctx.shape(Y)
    nd = len(xs) - 2
    if nd not in (1, 2):
        raise ModelError(f"{ctx.node.op_type}: only 1-D/2-D convolution is supported "
                         f"(got {nd}-D)")
    strides = list(strides or [1] * nd)
    dilations = list(dilations or [1] * nd)
    kernel = list(ws[2:])
    k_eff = [(k - 1) * d + 1 for k, d in zip(kernel, dilations)]
    begin, end = conv_pads(auto_pad, pads, list(xs[2:]), k_eff, strides, list(ys[2:]))
    _check_output_extents(ctx, xs[2:], ys[2:], k_eff, strides, begin, end)
    if nd == 1:   # a 1-D convolution is a 2-D one of height 1
        xs, ys, kernel = xs[:2] + (1,) + xs[2:], ys[:2] + (1,) + ys[2:], [1] + kernel
        strides, dilations, begin, end = [1] + strides, [1] + dilations, [0] + begin, [0] + end
        X = view(X, *xs)
    n, c = xs[:2]
    oc, cg = ws[:2]
    if c != cg * group or oc % group:
        raise ModelError(f"{ctx.node.op_type}: channels {c} / weights {ws} do not match "
                         f"group={group}")
    ocg, out_sp = oc // group, ys[2:]
    if any(begin) or any(end):
        X = pad_input(ctx, X, xs, begin, end)
    if cg == 1 and ocg == 1:
        depthwise(ctx, X, W, B, Y, ys, kernel, strides, dilations)
        return
    implicit_gemm(ctx, X, W, B, Y, (n, oc) + tuple(out_sp), group, kernel, strides, dilations)
