"""Data movement: Transpose, Concat, Split, Slice, Gather, Pad, Tile, Range, DepthToSpace,
SpaceToDepth.

Every output element is a copy of one input element (or a constant), so each lowering is one
loop nest over its output (or over one input, for Concat) whose store is a load at a remapped
index. Remappings known at compile time are affine expressions when they can be, else loads
from a small constant index table: never a data-dependent read that could leave the buffer.
"""
from __future__ import annotations

import numpy as np

from ..errors import ModelError
from ..frontend.symrules import slice_start
from ..loop.ir import Cast, Expr, Load, Store, Var, cmp, const_int, loops
from ..loop.symbolic import (
    as_dim_expr,
    canon,
    dim_str,
    dim_sum,
    gcd_of,
    is_symbolic_array,
    lower_bound,
    product,
)
from .common import nest, view
from .indexing import check_indices, guarded, wrap_index
from .registry import register
from .runtime_gather import runtime_pad, runtime_slice
from .runtime_values import all_of, check_equal, values_of
from .shape import (
    const_input,
    emit_constant,
    fail,
    int_list,
    normalize_axes,
    normalize_axis,
    scalar_const,
)


def affine(var: Expr, scale: int, offset: int) -> Expr:
    """var * scale + offset, without the identity terms (so a plain copy stays `var`)."""
    expr = var if scale == 1 else const_int(0) if scale == 0 else var * const_int(scale)
    if offset == 0:
        return expr
    return const_int(offset) if scale == 0 else expr + const_int(offset)


def index_expr(ctx, values, var: Var, hint: str) -> Expr:
    """An expression of var equal to values[var] (a compile-time 1-d int table): affine or
    var // k when the table has that form, else a load from the table as a constant."""
    values = np.asarray(values, np.int64).reshape(-1)
    if values.size == 1:
        return const_int(int(values[0]))
    step = int(values[1] - values[0])
    if (np.diff(values) == step).all():
        return affine(var, step, int(values[0]))
    run = int(np.argmax(values != values[0]))
    if run > 1 and (values == values[0] + np.arange(values.size) // run).all():
        return affine(var // const_int(run), 1, int(values[0]))
    return Load(ctx.constant(values, hint), (var,))


def _emit_gather_nest(ctx, out, src, index_fns, stage: str = "", guard=True) -> None:
    """out[v...] = src[f0(v), f1(v), ...] over out's shape (where guard holds)."""
    body = nest(ctx.shape(out), lambda *v: Store(out, tuple(v),
                                                 Load(src, tuple(f(v) for f in index_fns))))
    ctx.emit(guarded(body, guard), kind="elementwise", stage=stage)


def _axis_fn(d: int):
    return lambda v: v[d]


# -- Transpose ---------------------------------------------------------------------------------
@register("Transpose", since=1)
def Transpose(ctx, data, *, perm=None):
    shape = ctx.shape(data)
    rank = len(shape)
    perm = list(range(rank))[::-1] if perm is None else [int(p) for p in perm]
    if sorted(perm) != list(range(rank)):
        raise fail(ctx, f"perm {perm} is not a permutation of {rank} axes")
    moved = [p for p in perm if shape[p] != 1]
    if moved == sorted(moved):      # only unit axes move: same element order
        ctx.alias(ctx.output(0), data)
        return
    where = {p: d for d, p in enumerate(perm)}   # input axis -> output axis
    _emit_gather_nest(ctx, ctx.output(0), data, [_axis_fn(where[a]) for a in range(rank)])


# -- Concat and Split --------------------------------------------------------------------------
def _shifted(v, axis: int, offset: int) -> tuple:
    return tuple(affine(x, 1, offset) if d == axis else x for d, x in enumerate(v))


@register("Concat", since=4)
def Concat(ctx, *inputs, axis):
    out = ctx.output(0)
    shape = ctx.shape(out)
    axis = normalize_axis(ctx, axis, len(shape))
    offset = 0
    for k, x in enumerate(inputs):
        xs = ctx.shape(x)
        if len(xs) != len(shape) or any(
                a != b for d, (a, b) in enumerate(zip(xs, shape, strict=True)) if d != axis):
            raise fail(ctx, f"input {k} of shape {xs} does not fit output {shape}")
        if xs[axis]:
            body = nest(xs, lambda *v, off=offset, x=x: Store(out, _shifted(v, axis, off),
                                                               Load(x, tuple(v))))
            ctx.emit(body, kind="elementwise", stage=f"in{k}")
        offset = dim_sum(offset, xs[axis])
    if offset != shape[axis]:
        raise fail(ctx, f"inputs cover {offset} of {shape[axis]} along axis {axis}")


@register("Concat", since=1, until=3)
def Concat_1(ctx, *inputs, axis=1):
    Concat(ctx, *inputs, axis=axis)


def _split_sizes(ctx, dim, n: int, split, num_outputs) -> list:
    """The outputs' extents along the axis. Over a symbolic extent, sizes that hold for
    some of its values only (constant sizes, an uneven cut) make the node static-only."""
    if split is not None:
        sizes = [int(s) for s in split]
    elif num_outputs is not None:
        if num_outputs != n:
            raise fail(ctx, f"num_outputs={num_outputs} but the node has {n} outputs")
        chunk = -(-dim // n) if isinstance(dim, int) else canon((as_dim_expr(dim) + (n - 1)) // n)
        sizes = [chunk] * (n - 1) + [dim_sum(dim, product([chunk, -(n - 1)]))]
    else:
        if gcd_of(dim) % n:
            if isinstance(dim, int):
                raise fail(ctx, f"cannot split {dim} into {n} equal parts")
            raise TypeError(f"{dim_str(dim)} may not split into {n} equal parts")
        sizes = [canon(as_dim_expr(dim) // n) if not isinstance(dim, int) else dim // n] * n
    fits = len(sizes) == n and canon(dim_sum(*sizes)) == canon(dim)
    if not isinstance(dim, int) and not (fits and all(
            (lower_bound(s) if lower_bound(s) is not None else -1) >= 0 for s in sizes)):
        raise TypeError(f"split sizes that cut {dim_str(dim)} for some values only")
    if not fits or any(isinstance(s, int) and s < 0 for s in sizes):
        raise fail(ctx, f"split sizes {sizes} do not cut {dim} into {n} outputs")
    return sizes


def _emit_split(ctx, data, axis: int, split=None, num_outputs=None) -> None:
    shape = ctx.shape(data)
    axis = normalize_axis(ctx, axis, len(shape))
    sizes = _split_sizes(ctx, shape[axis], len(ctx.outputs), split, num_outputs)
    offset = 0
    for k, (out, size) in enumerate(zip(ctx.outputs, sizes, strict=True)):
        if out is not None:
            want = shape[:axis] + (size,) + shape[axis + 1:]
            if ctx.shape(out) != want:
                raise fail(ctx, f"output {k} has shape {ctx.shape(out)}, expected {want}")
            if len(sizes) == 1:
                ctx.alias(out, data)
            else:   # an empty output still gets its (empty) kernel
                body = nest(want, lambda *v, off=offset, out=out: Store(
                    out, tuple(v), Load(data, _shifted(v, axis, off))))
                ctx.emit(body, kind="elementwise", stage=f"out{k}")
        offset += size


@register("Split", since=13)
def Split(ctx, data, split=None, *, axis=0, num_outputs=None):
    if split is not None and ctx.const(split) is None:   # sizes arrive with the run
        split = _declared_split(ctx, data, split, axis)
    sizes = const_input(ctx, split, "split") if split is not None else None
    _emit_split(ctx, data, axis, None if sizes is None else int_list(sizes), num_outputs)


def _declared_split(ctx, data, split, axis: int):
    """Split sizes read at run time: the declared outputs' extents, checked in the run.
    Returns them as a constant for the compile-time path."""
    a = normalize_axis(ctx, axis, len(ctx.shape(data)))
    if any(out is None for out in ctx.outputs):
        raise fail(ctx, "split sizes at run time need every output declared")
    sizes = [ctx.shape(out)[a] for out in ctx.outputs]
    check_equal(ctx, split, sizes, "the split input")
    return ctx.constant(np.array(sizes, np.int64), "split")


@register("Split", since=1, until=12)
def Split_1(ctx, data, split_input=None, *, axis=0, split=None):
    if split_input is not None and ctx.const(split_input) is None:
        split_input = _declared_split(ctx, data, split_input, axis)
    if split_input is not None:
        split = int_list(const_input(ctx, split_input, "split"))
    _emit_split(ctx, data, axis, split)


# -- Slice -------------------------------------------------------------------------------------
def _emit_slice(ctx, data, starts, ends, axes, steps) -> None:
    shape = ctx.shape(data)
    rank = len(shape)
    axes = list(range(len(starts))) if axes is None else normalize_axes(ctx, axes, rank)
    steps = [1] * len(starts) if steps is None else steps
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise fail(ctx, "starts, ends, axes and steps differ in length")
    first, stride, counts = [0] * rank, [1] * rank, list(shape)
    for a, s, e, st in zip(axes, starts, ends, steps, strict=True):
        if st == 0:
            raise fail(ctx, "a slice step is 0")
        # Python's slice clamping is ONNX's: start to [0, n] ([0, n-1] going backwards), end to
        # [0, n] ([-1, n-1]); INT64_MAX / INT64_MIN ends are plain large ints here.
        first[a], stop, stride[a] = slice(s, e, st).indices(shape[a])
        counts[a] = len(range(first[a], stop, stride[a]))
    out = ctx.output(0)
    if tuple(counts) != ctx.shape(out):
        raise fail(ctx, f"slice gives {tuple(counts)}, inferred {ctx.shape(out)}")
    if counts == list(shape) and not any(first) and all(
            s == 1 or n <= 1 for s, n in zip(stride, counts, strict=True)):
        ctx.alias(out, data)
        return
    _emit_gather_nest(ctx, out, data, [lambda v, d=d: affine(v[d], stride[d], first[d])
                                       for d in range(rank)])


@register("Slice", since=10)
def Slice(ctx, data, starts, ends, axes=None, steps=None):
    if any(b is not None and ctx.const(b) is None for b in (starts, ends, axes, steps)):
        return runtime_slice(ctx, data, starts, ends, axes, steps)
    values = [const_input(ctx, b, name) for b, name in
              ((starts, "starts"), (ends, "ends"), (axes, "axes"), (steps, "steps"))]
    if any(is_symbolic_array(v) for v in values) or \
            not all(isinstance(d, int) for d in ctx.shape(data)):
        return _symbolic_slice(ctx, data, *(None if v is None else [canon(x) for x in
                                                                    np.ravel(v).tolist()]
                                             for v in values))
    _emit_slice(ctx, data, *(None if v is None else int_list(v) for v in values))


def _symbolic_slice(ctx, data, starts, ends, axes, steps) -> None:
    """A slice of a tensor whose extents, or whose bounds, are expressions over the
    dimension symbols: each axis read from its clamped first index (the frontend's rule, whose
    lengths the output buffer has)."""
    shape = ctx.shape(data)
    rank = len(shape)
    axes = list(range(len(starts))) if axes is None else normalize_axes(ctx, axes, rank)
    steps = [1] * len(starts) if steps is None else steps
    if not all(isinstance(st, int) and st != 0 for st in steps):
        raise fail(ctx, "slice steps must be nonzero numbers")
    first, stride = [0] * rank, [1] * rank
    for a, s, st in zip(axes, starts, steps):
        first[a], stride[a] = slice_start(shape[a], s, st), st
    out = ctx.output(0)
    _emit_gather_nest(ctx, out, data, [lambda v, d=d: v[d] * stride[d] + as_dim_expr(first[d])
                                       for d in range(rank)])


@register("Slice", since=1, until=9)
def Slice_1(ctx, data, *, starts, ends, axes=None):
    _emit_slice(ctx, data, list(starts), list(ends), None if axes is None else list(axes),
                None)


# -- Gather ------------------------------------------------------------------------------------
def _runtime_index(indices, n: int):
    """A run-time index: the run fails on one outside [-n, n-1] (check_indices), and it is
    wrapped into the axis meanwhile (wrap_index), so none reads outside the data."""
    return lambda iv: wrap_index(Load(indices, tuple(iv)), n)


def _constant_index(ctx, values, n, var_count: int):
    if not isinstance(n, int):
        return _symbolic_axis_index(ctx, values, n)
    values = np.asarray(values, np.int64)
    if ((values < -n) | (values >= n)).any():
        raise fail(ctx, f"an index is out of range [-{n}, {n - 1}]")
    values = np.where(values < 0, values + n, values)
    if values.size == 0 or (values == values.reshape(-1)[0]).all():
        return lambda iv: const_int(int(values.reshape(-1)[0]) if values.size else 0)
    if var_count == 1:
        return lambda iv: index_expr(ctx, values, iv[0], "indices")
    table = ctx.constant(values, "indices")
    return lambda iv: Load(table, tuple(iv))


def _symbolic_axis_index(ctx, values, n):
    """One constant index into an axis whose extent is an expression: a negative one counts
    from the end, and the run fails where the index falls outside the axis."""
    values = np.asarray(values).reshape(-1)
    if values.size != 1 or is_symbolic_array(values):
        raise TypeError("a symbolic axis takes one constant index")
    value = int(values[0])
    index = canon(as_dim_expr(n) + value) if value < 0 else value
    ctx.check(cmp("gt", as_dim_expr(n), abs(value) - (1 if value < 0 else 0)),
              f"index {value} is outside the axis")
    return lambda iv: as_dim_expr(index)


@register("Gather", since=1)
def Gather(ctx, data, indices, *, axis=0):
    shape = ctx.shape(data)
    axis = normalize_axis(ctx, axis, len(shape))
    # The index rank from the output: a constant scalar's buffer is stored with shape (1,).
    n, k = shape[axis], len(ctx.shape(ctx.output(0))) - len(shape) + 1
    values = ctx.const(indices)
    ok = True if values is not None else check_indices(ctx, indices, (n,))
    if ok is False:
        return
    index = _runtime_index(indices, n) if values is None else \
        _constant_index(ctx, values, n, k)
    fns = [_axis_fn(d) for d in range(axis)] + [lambda v: index(v[axis:axis + k])] + \
        [_axis_fn(d + k - 1) for d in range(axis + 1, len(shape))]
    _emit_gather_nest(ctx, ctx.output(0), data, fns, guard=ok)


# -- Pad ---------------------------------------------------------------------------------------
def _pad_widths(ctx, rank: int, pads, axes) -> list[tuple[int, int]]:
    axes = list(range(rank)) if axes is None else normalize_axes(ctx, axes, rank)
    if len(pads) != 2 * len(axes):
        raise fail(ctx, f"{len(pads)} pads for {len(axes)} axes")
    widths = [(0, 0)] * rank
    for i, a in enumerate(axes):
        widths[a] = (pads[i], pads[len(axes) + i])
    return widths


def _emit_pad_constant(ctx, data, widths, value) -> None:
    """Fill the output with the value, then copy the kept input block into it."""
    out = ctx.output(0)
    if any(b > 0 or e > 0 for b, e in widths):
        fill = value if isinstance(value, Expr) else scalar_const(out.dtype, value)
        ctx.emit(nest(ctx.shape(out), lambda *v: Store(out, tuple(v), fill)),
                 kind="elementwise", stage="fill")
    shape = ctx.shape(data)
    kept = [n - max(-b, 0) - max(-e, 0) for n, (b, e) in zip(shape, widths, strict=True)]
    if min(kept, default=1) <= 0:
        return
    body = nest(kept, lambda *v: Store(
        out, tuple(affine(x, 1, max(b, 0)) for x, (b, _) in zip(v, widths, strict=True)),
        Load(data, tuple(affine(x, 1, max(-b, 0)) for x, (b, _) in zip(v, widths, strict=True)))))
    ctx.emit(body, kind="elementwise", stage="copy")


_NUMPY_MODES = {"reflect": "reflect", "edge": "edge", "wrap": "wrap"}


def _emit_pad(ctx, data, widths, mode: str, value) -> None:
    shape = ctx.shape(data)
    want = tuple(n + b + e for n, (b, e) in zip(shape, widths, strict=True))
    if want != ctx.shape(ctx.output(0)) or min(want, default=1) < 0:
        raise fail(ctx, f"pads {widths} give {want}, inferred {ctx.shape(ctx.output(0))}")
    if all(b == e == 0 for b, e in widths):
        ctx.alias(ctx.output(0), data)
    elif mode == "constant":
        _emit_pad_constant(ctx, data, widths, value)
    else:
        _emit_pad_table(ctx, data, widths, mode)


def _emit_pad_table(ctx, data, widths, mode: str) -> None:
    shape = ctx.shape(data)
    if mode not in _NUMPY_MODES:
        raise fail(ctx, f"unsupported mode {mode!r}")
    tables = []
    for n, (b, e) in zip(shape, widths, strict=True):
        # Negative pads crop first; the positive ones then pad what is left (as onnxruntime).
        kept = np.arange(n)[max(-b, 0):n - max(-e, 0)]
        if kept.size == 0 and (b > 0 or e > 0):
            raise fail(ctx, f"mode {mode!r} cannot pad an empty axis")
        tables.append(np.pad(kept, (max(b, 0), max(e, 0)), mode=_NUMPY_MODES[mode]))
    fns = [lambda v, d=d: index_expr(ctx, tables[d], v[d], f"pad{d}") for d in range(len(shape))]
    _emit_gather_nest(ctx, ctx.output(0), data, fns)


@register("Pad", since=11)
def Pad(ctx, data, pads, constant_value=None, axes=None, *, mode="constant"):
    rank = len(ctx.shape(data))
    if ctx.const(pads) is None or (axes is not None and ctx.const(axes) is None):
        empty = constant_value is None or not product(ctx.shape(constant_value))
        fill = scalar_const(data.dtype, 0) if empty else \
            Load(view(constant_value, 1), (const_int(0),))
        return runtime_pad(ctx, data, pads, axes, mode, fill)
    axis_list = const_input(ctx, axes, "axes")
    widths = _pad_widths(ctx, rank, int_list(const_input(ctx, pads, "pads")),
                         None if axis_list is None else int_list(axis_list))
    if constant_value is not None and ctx.const(constant_value) is None:
        # the fill value is data, read when the model runs (shapes do not depend on it)
        _emit_pad(ctx, data, widths, mode, Load(view(constant_value, 1), (const_int(0),)))
        return
    value = const_input(ctx, constant_value, "constant_value")
    _emit_pad(ctx, data, widths, mode, 0 if value is None or value.size == 0 else
              np.asarray(value).reshape(-1)[0])


@register("Pad", since=2, until=10)
def Pad_2(ctx, data, *, pads, mode="constant", value=0.0):
    _emit_pad(ctx, data, _pad_widths(ctx, len(ctx.shape(data)), list(pads), None), mode, value)


@register("Pad", since=1, until=1)
def Pad_1(ctx, data, *, paddings, mode="constant", value=0.0):
    Pad_2(ctx, data, pads=paddings, mode=mode, value=value)


# -- Tile and Range ----------------------------------------------------------------------------
def _emit_tile(ctx, data, repeats) -> None:
    shape = ctx.shape(data)
    if len(repeats) != len(shape) or min(repeats, default=0) < 0:
        raise fail(ctx, f"repeats {repeats} do not fit rank {len(shape)}")
    want = tuple(n * r for n, r in zip(shape, repeats, strict=True))
    if want != ctx.shape(ctx.output(0)):
        raise fail(ctx, f"tiling gives {want}, inferred {ctx.shape(ctx.output(0))}")

    def wrap(d):
        if shape[d] == 1:
            return lambda v: const_int(0)
        return _axis_fn(d) if repeats[d] == 1 else lambda v: v[d] % const_int(shape[d])
    _emit_gather_nest(ctx, ctx.output(0), data, [wrap(d) for d in range(len(shape))])


@register("Tile", since=6)
def Tile(ctx, data, repeats):
    if ctx.const(repeats) is None:   # repeats arrive with the run: the declared output's
        shape, out = ctx.shape(data), ctx.shape(ctx.output(0))
        if len(out) != len(shape) or any(n and o % n for n, o in zip(shape, out)):
            raise fail(ctx, f"declared output {list(out)} is not a tiling of {list(shape)}")
        counts = [o // n if n else 1 for n, o in zip(shape, out)]
        values = values_of(ctx, repeats)
        ctx.check(all_of(cmp("eq", v, c) for v, c, n in zip(values, counts, shape) if n),
                  f"the repeats input differs from the declared output's {counts}")
        return _emit_tile(ctx, data, counts)
    _emit_tile(ctx, data, int_list(const_input(ctx, repeats, "repeats")))


def _tile_1_shape(ins, consts, attrs):
    """Tile-1 repeats one axis, both given as inputs of the data's type (no reference runs
    it, and onnx infers nothing): they must be constants."""
    data, (tiles, axis) = ins[0], consts[1:3]
    if tiles is None or axis is None:
        raise ModelError("Tile (opset 1): tiles and axis must be constants")
    rank = len(data.shape)
    a = int(np.asarray(axis).reshape(-1)[0])
    a = a + rank if a < 0 else a
    if not 0 <= a < rank:
        raise ModelError(f"Tile (opset 1): axis {a} is outside a rank-{rank} input")
    count = int(np.asarray(tiles).reshape(-1)[0])
    return [(data.dtype, tuple(d * count if i == a else d for i, d in enumerate(data.shape)))]


@register("Tile", since=1, until=5, shape=_tile_1_shape)
def Tile_1(ctx, data, tiles, axis):
    count = int_list(const_input(ctx, tiles, "tiles"))[0]
    rank = len(ctx.shape(data))
    a = normalize_axis(ctx, int_list(const_input(ctx, axis, "axis"))[0], rank)
    _emit_tile(ctx, data, [count if d == a else 1 for d in range(rank)])


@register("Range", since=11)
def Range(ctx, start, limit, delta, *, stash_type=1):
    if any(ctx.const(b) is None for b in (start, limit, delta)):
        return _runtime_range(ctx, start, limit, delta)
    if any(is_symbolic_array(ctx.const(b)) for b in (start, limit, delta)):
        return _symbolic_range(ctx, start, delta)
    # Normally folded by the frontend; here only when folding was skipped.
    values = [const_input(ctx, b, name) for b, name in
              ((start, "start"), (limit, "limit"), (delta, "delta"))]
    first, stop, step = (np.asarray(v).reshape(-1)[0] for v in values)
    if step == 0:
        raise fail(ctx, "delta is 0")
    count = max(int(np.ceil((float(stop) - float(first)) / float(step))), 0)
    dtype = np.asarray(values[0]).dtype
    emit_constant(ctx, (first + np.arange(count, dtype=dtype) * step).astype(dtype))



def _symbolic_range(ctx, start, delta) -> None:
    """Bounds over the dimension symbols: the frontend's length, start + i * delta each."""
    out = ctx.output(0)
    first, step = (as_dim_expr(ctx.const(b).reshape(-1)[0]) for b in (start, delta))
    value = lambda i: first + i * step   # noqa: E731
    ctx.emit(nest(ctx.shape(out), lambda i: Store(out, (i,), value(i) if out.dtype == "int64"
                                                  else Cast(out.dtype, value(i)))),
             kind="elementwise")


def _runtime_range(ctx, start, limit, delta) -> None:
    """Bounds read at run time: the declared length is compiled, each element is
    start + i * delta, and the run fails unless ceil((limit - start) / delta) gives that
    length."""
    from ..loop.ir import Binary, Unary
    out = ctx.output(0)
    (n,) = ctx.shape(out)
    first, stop, step = (Load(view(b, 1), (const_int(0),)) for b in (start, limit, delta))
    as_f64 = [Cast("float64", e) for e in (first, stop, step)]
    count = Unary("ceil", Binary("div", as_f64[1] - as_f64[0], as_f64[2]))
    fits = Binary("or", cmp("eq", count, float(n)),
                  Binary("and", cmp("le", count, 0.0), cmp("eq", const_int(n), 0)))
    ctx.check(Binary("and", cmp("ne", step, 0), fits),
              f"start, limit and delta do not give the declared {n} elements")
    ctx.emit(loops([("i", n)], lambda i: Store(out, (i,), first + Cast(out.dtype, i) * step)),
             kind="elementwise")


# -- DepthToSpace and SpaceToDepth --------------------------------------------------------------
def _block_channel(mode: str, c, i, j, channels: int, block: int):
    """The deep tensor's channel holding (channel c, block row i, block column j): DCR puts
    the block position outermost, CRD the channel."""
    b = const_int(block)
    if mode == "DCR":
        return (i * b + j) * const_int(channels) + c
    return (c * b + i) * b + j


def _check_block(ctx, mode: str, blocksize: int) -> None:
    if mode not in ("DCR", "CRD") or blocksize < 1:
        raise fail(ctx, f"mode {mode!r} with blocksize {blocksize}")


@register("DepthToSpace", since=1)
def DepthToSpace(ctx, data, *, blocksize, mode="DCR"):
    _check_block(ctx, mode, blocksize)
    out = ctx.output(0)
    channels, b = ctx.shape(out)[1], const_int(blocksize)

    def gather(n, c, h, w):
        src = (n, _block_channel(mode, c, h % b, w % b, channels, blocksize), h // b, w // b)
        return Store(out, (n, c, h, w), Load(data, src))
    ctx.emit(nest(ctx.shape(out), gather), kind="elementwise")


@register("SpaceToDepth", since=1)
def SpaceToDepth(ctx, data, *, blocksize, mode="DCR"):
    _check_block(ctx, mode, blocksize)
    channels, b = ctx.shape(data)[1], const_int(blocksize)

    def scatter(n, c, h, w):   # over the input: each element has one place in the output
        i, j = h % b, w % b
        dst = (n, _block_channel(mode, c, i, j, channels, blocksize), h // b, w // b)
        return Store(ctx.output(0), dst, Load(data, (n, c, h, w)))
    ctx.emit(nest(ctx.shape(data), scatter), kind="elementwise")
