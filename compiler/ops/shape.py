"""Shape and view ops. Ops that keep the element order (Reshape, Flatten, Squeeze, ...) are
aliases of their input: no kernel. Shape queries and constants become small copy kernels.

The frontend infers every output shape, so lowerings take shapes from their output buffers;
they still check that the attribute or constant input they were given agrees, because a wrong
shape here would silently read the wrong memory.
"""
from __future__ import annotations

import itertools

import numpy as np

from .. import dtypes
from ..errors import ModelError
from ..loop.ir import Binary, Const, Select, Store, cmp
from ..loop.symbolic import (
    as_dim_expr,
    broadcast_shapes,
    canon,
    dim_str,
    is_symbolic_array,
    product,
)
from .common import copy_body, load_broadcast, nest
from .registry import register
from .runtime_values import all_of, check_axes_sets, check_equal, values_of


# -- helpers shared by the data-movement families (movement.py and resize.py import them) ----
def fail(ctx, message: str) -> ModelError:
    return ModelError(f"node {ctx.node.name!r} ({ctx.node.op_type}): {message}")


def const_input(ctx, buf, what: str) -> np.ndarray | None:
    """The value of an optional constant input; a ModelError when it is computed at run time."""
    if buf is None:
        return None
    value = ctx.const(buf)
    if value is None:
        raise fail(ctx, f"the {what} input must be a compile-time constant")
    return value


def int_list(values) -> list[int]:
    return [int(v) for v in np.asarray(values).reshape(-1)]


def normalize_axis(ctx, axis: int, rank: int, what: str = "axis") -> int:
    if not -rank <= axis < rank:
        raise fail(ctx, f"{what} {axis} is out of range for rank {rank}")
    return axis % rank


def normalize_axes(ctx, axes, rank: int) -> list[int]:
    out = [normalize_axis(ctx, int(a), rank) for a in axes]
    if len(set(out)) != len(out):
        raise fail(ctx, f"repeated axes {list(axes)}")
    return out


def scalar_const(dtype: str, value) -> Const:
    """A Const of `dtype` holding `value` (converted the way numpy converts it)."""
    item = np.asarray(value).astype(dtypes.dtype(dtype).numpy).item()
    return Const(item, dtype)


def emit_constant(ctx, array: np.ndarray, out=None) -> None:
    """out = a compile-time value: a fill when all elements agree, else a copy of a constant."""
    out = out if out is not None else ctx.output(0)
    if not all(isinstance(d, int) for d in ctx.shape(out)):     # one value over symbolic dims
        value = scalar_const(out.dtype, np.asarray(array).reshape(-1)[0])
        ctx.emit(nest(ctx.shape(out), lambda *v: Store(out, tuple(v), value)),
                 kind="elementwise", stage="fill")
        return
    array = np.asarray(array, dtypes.dtype(out.dtype).numpy).reshape(ctx.shape(out))
    flat = array.reshape(-1)
    if flat.size and (flat != flat[0]).any():
        ctx.emit(copy_body(out, ctx.constant(array, "value")), kind="elementwise")
        return
    # An empty output still gets its (empty) kernel, like every other output.
    value = scalar_const(out.dtype, flat[0] if flat.size else 0)
    ctx.emit(nest(ctx.shape(out), lambda *v: Store(out, tuple(v), value)),
             kind="elementwise", stage="fill")


def _check_shape(ctx, expected, what: str) -> None:
    actual = ctx.shape(ctx.output(0))
    if tuple(expected) != tuple(actual):
        raise fail(ctx, f"{what} gives shape {tuple(expected)}, inferred {tuple(actual)}")


# -- Reshape and the other views -------------------------------------------------------------
def symbolic_view(ctx, data) -> bool:
    """For shapes over dimension symbols: alias the output to data when both hold the same
    number of elements for every value of the symbols (the frontend's rule gave the shape);
    False for static shapes, which the ops check in full."""
    shapes = (ctx.shape(data), ctx.shape(ctx.output(0)))
    if all(isinstance(d, int) for shape in shapes for d in shape):
        return False
    counts = [as_dim_expr(product(shape)) for shape in shapes]
    if canon(counts[0]) != canon(counts[1]):     # equal at some values only: checked per run
        ctx.check(cmp("eq", counts[0], counts[1]),
                  f"cannot view {[dim_str(d) for d in shapes[0]]} as "
                  f"{[dim_str(d) for d in shapes[1]]} at these dimension values")
    ctx.alias(ctx.output(0), data)
    return True


def reshape_target(ctx, in_shape, spec, allowzero: int) -> list[int]:
    """ONNX Reshape rules: 0 copies the input dimension (unless allowzero), one -1 is inferred."""
    out = []
    for i, d in enumerate(spec):
        if d == 0 and not allowzero:
            if i >= len(in_shape):
                raise fail(ctx, f"shape {spec}: 0 at position {i} has no input dimension")
            d = in_shape[i]
        elif d < -1:
            raise fail(ctx, f"shape {spec}: invalid dimension {d}")
        out.append(d)
    total = product(in_shape)
    if out.count(-1) > 1:
        raise fail(ctx, f"shape {spec} has more than one -1")
    if -1 in out:
        known = product([d for d in out if d != -1])
        if known == 0 or total % known:
            raise fail(ctx, f"cannot reshape {tuple(in_shape)} to {spec}")
        out[out.index(-1)] = total // known
    if product(out) != total:
        raise fail(ctx, f"cannot reshape {tuple(in_shape)} ({total} elements) to {spec}")
    return out


@register("Reshape", since=5)
def Reshape(ctx, data, shape, *, allowzero=0):
    if symbolic_view(ctx, data):
        return
    if shape is not None and ctx.const(shape) is None:
        _check_runtime_reshape(ctx, ctx.shape(data), shape, allowzero)
    else:
        spec = int_list(const_input(ctx, shape, "shape"))
        _check_shape(ctx, reshape_target(ctx, ctx.shape(data), spec, allowzero), "Reshape")
    ctx.alias(ctx.output(0), data)


def _check_runtime_reshape(ctx, in_shape, shape, allowzero: int) -> None:
    """A shape input read at run time: the view is the declared output shape (the model
    states it), and a kernel fails the run unless the values resolve to it."""
    from ..loop.ir import Load, const_int
    from .common import view
    out = ctx.shape(ctx.output(0))
    if ctx.shape(shape) != (len(out),):
        raise fail(ctx, f"shape input of shape {ctx.shape(shape)} for a declared output of "
                        f"rank {len(out)}")
    flat = view(shape, len(out))
    ok, wildcards = Const(True, "bool"), Const(0, "int64")
    for i, d in enumerate(out):
        v = Load(flat, (const_int(i),))
        fits = Binary("or", cmp("eq", v, d), cmp("eq", v, -1))
        if not allowzero and i < len(in_shape) and in_shape[i] == d:
            fits = Binary("or", fits, cmp("eq", v, 0))
        ok = Binary("and", ok, fits)
        wildcards = wildcards + Select(cmp("eq", v, -1), const_int(1), const_int(0))
    ctx.check(Binary("and", ok, cmp("le", wildcards, 1)),
              f"the shape input does not give the declared output shape {list(out)}")


@register("Reshape", since=1, until=4)
def Reshape_1(ctx, data, *, shape=(), consumed_inputs=()):
    if symbolic_view(ctx, data):
        return
    _check_shape(ctx, reshape_target(ctx, ctx.shape(data), list(shape), 0), "Reshape")
    ctx.alias(ctx.output(0), data)


@register("Flatten", since=1)
def Flatten(ctx, data, *, axis=1):
    if symbolic_view(ctx, data):
        return
    shape = ctx.shape(data)
    if not -len(shape) <= axis <= len(shape):
        raise fail(ctx, f"axis {axis} is out of range for rank {len(shape)}")
    if axis < 0:
        axis += len(shape)
    outer = product(shape[:axis])
    _check_shape(ctx, (outer, product(shape[axis:])), "Flatten")
    ctx.alias(ctx.output(0), data)


def _squeezed(ctx, shape, axes) -> list[int]:
    if axes is None:
        return [d for d in shape if d != 1]
    axes = normalize_axes(ctx, axes, len(shape))
    if any(shape[a] != 1 for a in axes):
        raise fail(ctx, f"cannot squeeze axes {axes} of shape {tuple(shape)}")
    return [d for i, d in enumerate(shape) if i not in axes]


def _runtime(ctx, buf) -> bool:
    """A value input that arrives with the run (not folded to a constant)."""
    return buf is not None and ctx.const(buf) is None


def _squeeze_options(in_shape, out) -> list[tuple[int, ...]]:
    """The unit axes sets whose removal gives the declared output (any of them: same data)."""
    units = [d for d, n in enumerate(in_shape) if n == 1]
    return [s for s in itertools.combinations(units, len(in_shape) - len(out))
            if [n for d, n in enumerate(in_shape) if d not in s] == list(out)]


def _unsqueeze_options(in_shape, out) -> list[tuple[int, ...]]:
    """The positions of inserted unit axes that give the declared output."""
    return [s for s in itertools.combinations(range(len(out)), len(out) - len(in_shape))
            if all(out[d] == 1 for d in s)
            and [n for d, n in enumerate(out) if d not in s] == list(in_shape)]


def _runtime_axes_view(ctx, data, axes, options, what: str) -> None:
    """A view whose axes arrive with the run: the declared output decides the view, and a
    check fails the run unless the axes give it."""
    if not options:
        raise fail(ctx, f"declared output {list(ctx.shape(ctx.output(0)))} cannot come from "
                        f"{list(ctx.shape(data))}")
    check_axes_sets(ctx, axes, max(len(ctx.shape(data)), len(ctx.shape(ctx.output(0)))),
                    options, what)
    ctx.alias(ctx.output(0), data)


@register("Squeeze", since=13)
def Squeeze(ctx, data, axes=None):
    if symbolic_view(ctx, data):
        return
    if _runtime(ctx, axes):
        options = _squeeze_options(ctx.shape(data), ctx.shape(ctx.output(0)))
        return _runtime_axes_view(ctx, data, axes, options, "the axes")
    values = const_input(ctx, axes, "axes")
    given = None if values is None else int_list(values)
    _check_shape(ctx, _squeezed(ctx, ctx.shape(data), given), "Squeeze")
    ctx.alias(ctx.output(0), data)


@register("Squeeze", since=1, until=12)
def Squeeze_1(ctx, data, *, axes=None):
    if symbolic_view(ctx, data):
        return
    _check_shape(ctx, _squeezed(ctx, ctx.shape(data), axes), "Squeeze")
    ctx.alias(ctx.output(0), data)


def _unsqueezed(ctx, shape, axes) -> list[int]:
    rank = len(shape) + len(axes)
    axes = normalize_axes(ctx, axes, rank)
    dims = iter(shape)
    return [1 if i in axes else next(dims) for i in range(rank)]


@register("Unsqueeze", since=13)
def Unsqueeze(ctx, data, axes):
    if symbolic_view(ctx, data):
        return
    if _runtime(ctx, axes):
        options = _unsqueeze_options(ctx.shape(data), ctx.shape(ctx.output(0)))
        return _runtime_axes_view(ctx, data, axes, options, "the axes")
    values = int_list(const_input(ctx, axes, "axes"))
    _check_shape(ctx, _unsqueezed(ctx, ctx.shape(data), values), "Unsqueeze")
    ctx.alias(ctx.output(0), data)


@register("Unsqueeze", since=1, until=12)
def Unsqueeze_1(ctx, data, *, axes=()):
    if symbolic_view(ctx, data):
        return
    _check_shape(ctx, _unsqueezed(ctx, ctx.shape(data), list(axes)), "Unsqueeze")
    ctx.alias(ctx.output(0), data)


@register("Identity", since=1)
def Identity(ctx, data):
    ctx.alias(ctx.output(0), data)


def _check_runtime_expand(ctx, in_shape, shape) -> None:
    """The run's shape input, broadcast with the input, gives the declared output."""
    out = ctx.shape(ctx.output(0))
    values = values_of(ctx, shape)
    try:
        reachable = broadcast_shapes(tuple(in_shape), tuple(out)) == tuple(out)
    except ValueError:
        reachable = False
    if len(out) != max(len(in_shape), len(values)) or not reachable:
        raise fail(ctx, f"cannot expand {list(in_shape)} to the declared {list(out)}")
    padded = (1,) * (len(out) - len(in_shape)) + tuple(in_shape)
    terms = []
    for v, p in zip(values, range(len(out) - len(values), len(out))):
        fits = cmp("eq", v, out[p])
        terms.append(Binary("or", fits, cmp("eq", v, 1)) if padded[p] == out[p] else fits)
    ctx.check(all_of(terms), f"the shape input does not expand {list(in_shape)} to the "
                             f"declared output {list(out)}")


# -- Dropout: inference only -----------------------------------------------------------------
def _dropout(ctx, data, mask_value: bool) -> None:
    ctx.alias(ctx.output(0), data)
    mask = ctx.outputs[1] if len(ctx.outputs) > 1 else None
    if mask is not None:
        emit_constant(ctx, np.full(ctx.shape(mask), mask_value), out=mask)


@register("Dropout", since=12)
def Dropout(ctx, data, ratio=None, training_mode=None, *, seed=None):
    if training_mode is not None and _runtime(ctx, training_mode) or \
            training_mode is not None and _runtime(ctx, ratio):
        # read at run time: the run fails unless nothing drops (inference, or ratio 0)
        from ..loop.ir import Load, Unary, const_int
        from .common import view
        train = Load(view(training_mode, 1), (const_int(0),))
        rate = Load(view(ratio, 1), (const_int(0),)) if ratio is not None else None
        off = Unary("not", train) if train.dtype == "bool" else cmp("eq", train, 0)
        ctx.check(off if rate is None else Binary("or", off, cmp("eq", rate, 0.0)),
                  "training mode with a ratio above 0 drops at random: not compiled")
        return _dropout(ctx, data, True)
    if training_mode is not None:
        flag, rate = ctx.const(training_mode), ctx.const(ratio) if ratio is not None else None
        dropping = rate is None and ratio is None or rate is not None and float(
            np.asarray(rate).reshape(-1)[0]) != 0
        if bool(np.asarray(flag).reshape(-1)[0]) and dropping:
            raise fail(ctx, "training_mode with a ratio above 0 drops at random: only "
                            "inference (or ratio 0) is compiled")
    _dropout(ctx, data, True)


@register("Dropout", since=1, until=10)
def Dropout_1(ctx, data, *, ratio=0.5, is_test=0, consumed_inputs=()):
    # Before opset 12 there is no training input: a deployed model runs in test mode. The mask
    # is all false there, as onnxruntime writes it (nothing was dropped).
    _dropout(ctx, data, False)


# -- shape queries and constants -------------------------------------------------------------
@register("Shape", since=1)
def Shape(ctx, data, *, start=0, end=None):
    shape = ctx.shape(data)
    emit_constant(ctx, np.array(shape[slice(start, end)], np.int64))


@register("Size", since=1)
def Size(ctx, data):
    emit_constant(ctx, np.array(product(ctx.shape(data)), np.int64))


_CONSTANT_ATTRS = {
    "value": lambda v: np.asarray(v),
    "value_float": lambda v: np.array(v, np.float32),
    "value_floats": lambda v: np.array(v, np.float32),
    "value_int": lambda v: np.array(v, np.int64),
    "value_ints": lambda v: np.array(v, np.int64),
}


@register("Constant", since=1)
def Constant(ctx, **attrs):
    # The frontend folds Constant nodes; this runs only when folding was skipped.
    if len(attrs) != 1 or next(iter(attrs)) not in _CONSTANT_ATTRS:
        raise fail(ctx, f"unsupported Constant attributes {sorted(attrs)} (strings and "
                        "sparse tensors are not compiled)")
    (key, value), = attrs.items()
    emit_constant(ctx, _CONSTANT_ATTRS[key](value))


@register("ConstantOfShape", since=9)
def ConstantOfShape(ctx, shape, *, value=None):
    if _runtime(ctx, shape):
        check_equal(ctx, shape, ctx.shape(ctx.output(0)), "the shape input")
    elif is_symbolic_array(ctx.const(shape)):
        _check_shape(ctx, [canon(d) for d in ctx.const(shape).tolist()], "ConstantOfShape")
    else:
        _check_shape(ctx, int_list(const_input(ctx, shape, "shape")), "ConstantOfShape")
    fill = np.zeros(1, np.float32) if value is None else np.asarray(value).reshape(-1)
    out = ctx.output(0)
    emit_constant(ctx, fill[:1] if not all(isinstance(d, int) for d in ctx.shape(out))
                  else np.full(ctx.shape(out), fill[0]), out)


@register("EyeLike", since=9)
def EyeLike(ctx, data, *, dtype=None, k=0):
    """Ones on the k-th diagonal of a matrix shaped like the input (its values unused)."""
    out = ctx.output(0)
    if len(ctx.shape(out)) != 2:
        raise fail(ctx, f"input must be 2-D, not {ctx.shape(data)}")
    one, zero = scalar_const(out.dtype, 1), scalar_const(out.dtype, 0)
    ctx.emit(nest(ctx.shape(out), lambda i, j: Store(out, (i, j), Select(
        cmp("eq", j - i, Const(int(k), "int64")), one, zero))), kind="elementwise")


@register("Expand", since=8)
def Expand(ctx, data, shape):
    if _runtime(ctx, shape):
        _check_runtime_expand(ctx, ctx.shape(data), shape)
        dims = list(ctx.shape(ctx.output(0)))
    elif is_symbolic_array(ctx.const(shape)):
        dims = [canon(d) for d in ctx.const(shape).tolist()]
    else:
        dims = int_list(const_input(ctx, shape, "shape"))
    try:
        expected = broadcast_shapes(ctx.shape(data), tuple(dims))
    except ValueError:
        raise fail(ctx, f"cannot broadcast {ctx.shape(data)} to {dims}") from None
    _check_shape(ctx, expected, "Expand")
    out = ctx.output(0)
    ctx.emit(nest(ctx.shape(out), lambda *v: Store(out, tuple(v), load_broadcast(data, v))),
             kind="elementwise")
