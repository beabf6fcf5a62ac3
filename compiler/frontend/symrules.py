"""Symbolic shape rules: output dimensions as expressions, for the ops whose dimensions are
arithmetic on their inputs' dimensions or values (onnx's inference gives up on those as soon
as one is symbolic). Each rule: (node, input Values, constant inputs) -> per output
(dtype, shape), or None to leave the node to onnx's inference. Constants may be object arrays
holding expressions (a Shape folded symbolically)."""
from __future__ import annotations

from fractions import Fraction

import numpy as np

from ..loop.ir import Binary
from ..loop.symbolic import as_dim_expr, broadcast_shapes, canon, product
from .symshape import INT64_MAX


def _dims(a) -> list | None:
    """A constant 1-D tensor as dimensions (ints or expressions)."""
    return None if a is None else [canon(x) for x in np.asarray(a).reshape(-1).tolist()]


def _sub(a, b):
    return canon(as_dim_expr(a) - as_dim_expr(b))


def _add(a, b):
    return canon(as_dim_expr(a) + as_dim_expr(b))


def _floordiv(a, b: int):
    return canon(Binary("floordiv", as_dim_expr(a), as_dim_expr(b)))


def _ceildiv(a, b: int):
    return _floordiv(_add(a, b - 1), b)


def _clamp(x, low, high):
    return canon(Binary("max", as_dim_expr(low),
                        as_dim_expr(canon(Binary("min", as_dim_expr(x), as_dim_expr(high))))))


def _reshape(node, ins, consts):
    target = _dims(consts[1])
    if target is None:
        return None
    shape = list(ins[0].shape)
    allowzero = node.attr("allowzero", 0)
    out = [shape[i] if t == 0 and not allowzero else t for i, t in enumerate(target)]
    if -1 in out:
        known = product([d for d in out if d != -1])
        total = product(shape)
        rest = canon(Binary("floordiv", as_dim_expr(total), as_dim_expr(known)))
        out[out.index(-1)] = rest
    return [(ins[0].dtype, out)]


def _expand(node, ins, consts):
    target = _dims(consts[1])
    if target is None:
        return None
    try:
        out = broadcast_shapes(tuple(ins[0].shape), tuple(target))
    except ValueError:
        return None
    return [(ins[0].dtype, list(out))]


def _constant_of_shape(node, ins, consts):
    target = _dims(consts[0])
    if target is None:
        return None
    value = node.attr("value")
    from .. import dtypes
    dtype = dtypes.from_numpy(np.asarray(value).dtype) if value is not None else "float32"
    return [(dtype, target)]


def _range(node, ins, consts):
    vals = [_dims(c) for c in consts]
    if any(v is None for v in vals):
        return None
    (start,), (limit,), (delta,) = vals
    if not isinstance(delta, int) or delta == 0 or ins[0].dtype.startswith("float"):
        return None
    count = _ceildiv(_sub(limit, start), delta) if delta > 0 else \
        _ceildiv(_sub(start, limit), -delta)
    return [(ins[0].dtype, [canon(Binary("max", as_dim_expr(count), as_dim_expr(0)))])]


def _place(dim, x, step: int, is_end: bool):
    """A slice bound on an axis of extent dim, clamped as ONNX (and Python) clamp it."""
    if isinstance(x, int) and x >= INT64_MAX // 2:
        x = dim
    elif isinstance(x, int) and x <= -(INT64_MAX // 2):
        x = -1 if step < 0 else 0
    elif isinstance(x, int) and x < 0:
        x = _add(dim, x)
    if step > 0:
        return _clamp(x, 0, dim)
    return _clamp(x, -1 if is_end else 0, _sub(dim, 1))


def slice_start(dim, start, step: int):
    """The first index a slice reads on an axis of extent dim."""
    return _place(dim, start, step, False)


def slice_length(dim, start, end, step: int):
    """Elements of [start, end) by step on an axis of extent dim (ONNX's clamping)."""
    s, e = _place(dim, start, step, False), _place(dim, end, step, True)
    span = _sub(e, s) if step > 0 else _sub(s, e)
    return canon(Binary("max", as_dim_expr(_ceildiv(span, abs(step))), as_dim_expr(0)))


def _slice(node, ins, consts):
    starts, ends = _dims(consts[1]), _dims(consts[2])
    axes = _dims(consts[3]) if len(consts) > 3 and node.inputs[3] else \
        list(range(len(starts or ())))
    steps = _dims(consts[4]) if len(consts) > 4 and node.inputs[4] else [1] * len(axes or ())
    if None in (starts, ends, axes, steps) or not all(isinstance(x, int) for x in axes + steps):
        return None
    shape = list(ins[0].shape)
    for s, e, a, st in zip(starts, ends, axes, steps):
        a = a + len(shape) if a < 0 else a
        shape[a] = slice_length(shape[a], s, e, st)
    return [(ins[0].dtype, shape)]


def _tile(node, ins, consts):
    reps = _dims(consts[1])
    if reps is None:
        return None
    return [(ins[0].dtype, [product([d, r]) for d, r in zip(ins[0].shape, reps)])]


def _concat(node, ins, consts):
    parts = [v for v in ins if v is not None]
    axis = node.attr("axis", 0)
    axis = axis + len(parts[0].shape) if axis < 0 else axis
    shape = list(parts[0].shape)
    total = 0
    for v in parts:
        total = _add(total, v.shape[axis])
    shape[axis] = total
    return [(parts[0].dtype, shape)]


def _flatten(node, ins, consts):
    shape = ins[0].shape
    axis = node.attr("axis", 1)
    axis = axis + len(shape) if axis < 0 else axis
    return [(ins[0].dtype, [product(shape[:axis]), product(shape[axis:])])]


def _pad(node, ins, consts):
    pads = _dims(consts[1]) if len(consts) > 1 and node.inputs[1] else _dims(node.attr("pads"))
    if pads is None or not all(isinstance(p, int) for p in pads):
        return None
    shape = list(ins[0].shape)
    axes = _dims(consts[3]) if len(consts) > 3 and node.inputs[3] else \
        list(range(len(shape)))
    if axes is None:
        return None
    n = len(axes)
    for i, a in enumerate(axes):
        a = a + len(shape) if a < 0 else a
        shape[a] = _add(shape[a], pads[i] + pads[i + n])
    return [(ins[0].dtype, shape)]


def _window_extent(node, size, kernel: int, i: int, spatial: int, ceil_mode: bool):
    strides = node.attr("strides") or (1,) * spatial
    dilations = node.attr("dilations") or (1,) * spatial
    pads = node.attr("pads") or (0,) * (2 * spatial)
    auto = node.attr("auto_pad", "NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    stride = strides[i]
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        return _ceildiv(size, stride)
    span = dilations[i] * (kernel - 1) + 1
    if auto == "VALID":
        return _ceildiv(_sub(size, span - 1), stride)
    room = _sub(_add(size, pads[i] + pads[i + spatial]), span)
    if not ceil_mode:
        return _add(_floordiv(room, stride), 1)
    out = _add(_ceildiv(room, stride), 1)
    # opset 22's rule (onnxruntime's): the last window must start inside the input or the
    # start padding
    if isinstance(out, int):
        return out - 1 if (out - 1) * stride >= _add(size, pads[i]) else out
    return None


def _conv(node, ins, consts):
    x, w = ins[0], ins[1]
    spatial = len(x.shape) - 2
    kernel = node.attr("kernel_shape") or w.shape[2:]
    if not all(isinstance(k, int) for k in kernel) or not isinstance(w.shape[0], int):
        return None
    dims = [_window_extent(node, x.shape[2 + i], kernel[i], i, spatial, False)
            for i in range(spatial)]
    return [(x.dtype, [x.shape[0], w.shape[0], *dims])]


def _pool(node, ins, consts):
    x = ins[0]
    spatial = len(x.shape) - 2
    kernel = node.attr("kernel_shape")
    ceil_mode = bool(node.attr("ceil_mode", 0))
    dims = [_window_extent(node, x.shape[2 + i], kernel[i], i, spatial, ceil_mode)
            for i in range(spatial)]
    if any(d is None for d in dims):
        return None
    out = [(x.dtype, [*x.shape[:2], *dims])]
    if len(node.outputs) > 1:
        out.append(("int64", [*x.shape[:2], *dims]))
    return out


def _scaled(size, scale: float):
    """floor(size * scale), exactly, for a scale that is a short fraction."""
    frac = Fraction(scale).limit_denominator(1 << 16)
    if float(frac) != scale:
        return None
    return _floordiv(canon(as_dim_expr(size) * frac.numerator), frac.denominator)


def _resize(node, ins, consts):
    x = ins[0]
    sizes = _dims(consts[3]) if len(consts) > 3 and node.inputs[3] else None
    scales = consts[2] if len(consts) > 2 and node.inputs[2] else \
        (consts[1] if node.op_type == "Upsample" or len(consts) == 2 else None)
    axes = node.attr("axes")
    if node.attr("keep_aspect_ratio_policy", "stretch") not in ("stretch", b"stretch"):
        return None
    rank = len(x.shape)
    axes = [a + rank if a < 0 else a for a in axes] if axes else list(range(rank))
    shape = list(x.shape)
    if sizes is not None:
        for a, s in zip(axes, sizes):
            shape[a] = s
        return [(x.dtype, shape)]
    if scales is None or np.asarray(scales).dtype == object:
        return None
    for a, s in zip(axes, np.asarray(scales, np.float64).reshape(-1)):
        shape[a] = _scaled(shape[a], float(np.float32(s)))
        if shape[a] is None:
            return None
    return [(x.dtype, shape)]


def _split(node, ins, consts):
    x = ins[0]
    axis = node.attr("axis", 0)
    axis = axis + len(x.shape) if axis < 0 else axis
    sizes = _dims(consts[1]) if len(consts) > 1 and node.inputs[1] else \
        _dims(node.attr("split"))
    count = len(node.outputs)
    if sizes is None:
        n = node.attr("num_outputs") or count
        if isinstance(x.shape[axis], int):
            return None
        piece = _ceildiv(x.shape[axis], n)
        last = _sub(x.shape[axis], canon(as_dim_expr(piece) * (n - 1)))
        sizes = [piece] * (n - 1) + [last]
    out = []
    for s in sizes:
        shape = list(x.shape)
        shape[axis] = s
        out.append((x.dtype, shape))
    return out


def _like_input(node, ins, consts):
    """Ops whose output is shaped and typed as their first input, defined as onnx functions
    (onnx's inference of the node alone does not expand them)."""
    return [(ins[0].dtype, list(ins[0].shape))]


SYMBOLIC_SHAPES = {
    "Reshape": _reshape, "Expand": _expand, "ConstantOfShape": _constant_of_shape,
    "Range": _range, "Slice": _slice, "Tile": _tile, "Concat": _concat, "Flatten": _flatten,
    "Pad": _pad, "Conv": _conv, "ConvInteger": _conv, "MaxPool": _pool,
    "AveragePool": _pool, "LpPool": _pool, "Resize": _resize, "Upsample": _resize,
    "Split": _split, "MeanVarianceNormalization": _like_input,
    "GroupNormalization": _like_input,
}
