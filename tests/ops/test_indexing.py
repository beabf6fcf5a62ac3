"""Indexing and bitwise ops (compiler/ops/indexing.py) against onnxruntime, or against numpy
where onnxruntime has no kernel (signed BitShift, shifts out of range)."""
from __future__ import annotations

import math

import numpy as np
import onnxc
import pytest
from onnxc.errors import ModelError
from onnxc.loop.interp import run_program
from onnxc.lower.pipeline import compile_program
from onnxc.targets import get_target

from .harness import assert_close, check_node, feeds_of, node_model, rand
from .test_shape import typed

I64, I32, F32 = np.int64, np.int32, np.float32


def ints(shape, low, high, dtype=I64, seed=0):
    rng = np.random.default_rng(seed + sum(shape))
    return rng.integers(low, high, shape, endpoint=False).astype(dtype)


def compile_run(tmp_path, model, inputs, constant=()):
    compiled = onnxc.compile(model, out_dir=tmp_path, strict=True)
    return compiled.run(None, feeds_of(model, inputs, constant))


def compile_fails(tmp_path, model, match):
    with pytest.raises(ModelError, match=match):
        onnxc.compile(model, out_dir=tmp_path)


def with_negatives(idx, sizes, seed=0):
    """Half the indices written as their negative equivalents (i - n)."""
    flip = np.random.default_rng(seed).random(idx.shape) < 0.5
    return np.where(flip, idx - np.asarray(sizes, idx.dtype), idx).astype(idx.dtype)


# -- GatherElements ----------------------------------------------------------------------------
@pytest.mark.parametrize("shape,ishape,axis", [
    ((5,), (7,), 0), ((3, 5), (3, 4), 1), ((3, 5), (6, 5), 0), ((2, 3, 5), (2, 4, 5), -2),
    ((2, 3, 5), (2, 3, 3), 2), ((4, 3, 2, 5), (4, 3, 2, 1), 3), ((4, 3, 2, 5), (1, 3, 2, 5), 0),
])
@pytest.mark.parametrize("idx_dtype", [I64, I32])
def test_gather_elements(tmp_path, shape, ishape, axis, idx_dtype):
    n = shape[axis]
    check_node(tmp_path, "GatherElements", [rand(*shape), ints(ishape, -n, n, idx_dtype)],
               {"axis": axis})


@pytest.mark.parametrize("dtype,opset", [(I64, 11), (np.uint8, 13), (np.bool_, 13),
                                         (np.float64, 13)])
def test_gather_elements_dtypes(tmp_path, dtype, opset):
    data = ints((4, 3), 0, 2 if dtype == np.bool_ else 100).astype(dtype)
    check_node(tmp_path, "GatherElements", [data, ints((4, 5), -3, 3)], {"axis": 1},
               opset=opset)


# -- GatherND ----------------------------------------------------------------------------------
def nd_indices(data_shape, lead, m, first=0, unique=False, seed=0):
    """Index tuples of length m into data axes first.., some negative; unique when asked."""
    axes = data_shape[first:first + m]
    rng = np.random.default_rng(seed)
    count = math.prod(lead)
    pick = rng.choice(math.prod(axes), count, replace=not unique)
    idx = np.stack(np.unravel_index(pick, axes), -1).reshape(*lead, m).astype(I64)
    return with_negatives(idx, axes, seed)


@pytest.mark.parametrize("shape,lead,m", [
    ((5,), (3,), 1), ((3, 5), (4,), 2), ((3, 5), (2,), 1), ((2, 3, 5), (4, 2), 1),
    ((2, 3, 5), (3,), 3), ((4, 3, 2, 5), (2, 3), 2), ((7, 3), (), 1),
])
def test_gathernd(tmp_path, shape, lead, m):
    check_node(tmp_path, "GatherND", [rand(*shape), nd_indices(shape, lead, m)], opset=13)


@pytest.mark.parametrize("shape,ishape_mid,m,b", [
    ((2, 3, 5), (4,), 1, 1), ((2, 3, 5), (), 2, 1), ((2, 3, 5, 4), (3,), 1, 2),
    ((3, 4, 5), (2,), 2, 1), ((2, 2, 3, 4), (), 1, 2),
])
def test_gathernd_batch_dims(tmp_path, shape, ishape_mid, m, b):
    lead = shape[:b] + ishape_mid
    indices = nd_indices(shape, lead, m, first=b)
    check_node(tmp_path, "GatherND", [ints(shape, -9, 9), indices], {"batch_dims": b},
               opset=13)


def test_gathernd_opset11_int32_data(tmp_path):
    shape = (3, 4)
    check_node(tmp_path, "GatherND", [ints(shape, -9, 9, I32), nd_indices(shape, (5,), 2)],
               opset=11)


# -- ScatterElements ---------------------------------------------------------------------------
def unique_along(shape, ishape, axis, seed=0):
    """Indices with no two equal along `axis` (so that reduction none has one answer)."""
    rng = np.random.default_rng(seed)
    n = shape[axis]
    keys = rng.random(ishape[:axis] + (n,) + ishape[axis + 1:])
    idx = np.take(np.argsort(keys, axis=axis), range(ishape[axis]), axis=axis)
    return with_negatives(idx.astype(I64), n, seed)


SCATTER_CASES = [((5,), (3,), 0), ((3, 5), (3, 4), 1), ((3, 5), (2, 5), 0),
                 ((2, 3, 5), (2, 2, 5), -2), ((2, 3, 5), (1, 3, 4), 2),
                 ((4, 3, 2, 5), (4, 3, 2, 2), 3)]


@pytest.mark.parametrize("shape,ishape,axis", SCATTER_CASES)
def test_scatter_elements(tmp_path, shape, ishape, axis):
    indices = unique_along(shape, ishape, axis)
    check_node(tmp_path, "ScatterElements", [rand(*shape), indices, rand(*ishape, seed=1)],
               {"axis": axis}, opset=13)


@pytest.mark.parametrize("shape,ishape,axis", SCATTER_CASES[1:4])
@pytest.mark.parametrize("reduction", ["add", "mul", "max", "min"])
def test_scatter_elements_reductions(tmp_path, shape, ishape, axis, reduction):
    n = shape[axis]
    indices = ints(ishape, -n, n, seed=3)      # duplicates fold in one after another
    check_node(tmp_path, "ScatterElements", [rand(*shape), indices, rand(*ishape, seed=1)],
               {"axis": axis, "reduction": reduction}, opset=18)


@pytest.mark.parametrize("dtype,reduction,opset", [
    (I64, "none", 11), (I32, "add", 16), (np.uint8, "max", 18), (np.float64, "mul", 16),
])
def test_scatter_elements_dtypes(tmp_path, dtype, reduction, opset):
    indices = unique_along((4, 6), (4, 3), 1, seed=2).astype(I32)
    data, updates = ints((4, 6), 0, 9).astype(dtype), ints((4, 3), 0, 9, seed=1).astype(dtype)
    check_node(tmp_path, "ScatterElements", [data, indices, updates],
               {"axis": 1, **({} if reduction == "none" else {"reduction": reduction})},
               opset=opset)


def test_scatter_elements_later_update_wins(tmp_path):
    data, updates = np.zeros(4, F32), np.array([1, 2, 3, 4, 5], F32)
    indices = np.array([1, 3, -3, 0, 3], I64)     # element 1 and element 3 written twice
    model = node_model("ScatterElements", [data, indices, updates], opset=13)
    (got,) = compile_run(tmp_path, model, [data, indices, updates])
    assert_close(got, np.array([4, 3, 0, 5], F32))


@pytest.mark.parametrize("reduction", ["none", "add"])
def test_scatter_elements_on_the_pool(tmp_path, reduction):
    """Large enough for the thread pool: the loop over columns runs in parallel, the loop over
    updates that may collide stays serial inside it."""
    data, updates = rand(64, 1024), rand(64, 1024, seed=1)
    indices = ints((64, 1024), -64, 64, seed=2)
    model = node_model("ScatterElements", [data, indices, updates],
                       {"axis": 0, "reduction": reduction}, opset=18)
    (got,) = compile_run(tmp_path, model, [data, indices, updates])
    want = data.copy()
    for row, col in np.ndindex(*indices.shape):
        at = indices[row, col], col
        want[at] = updates[row, col] + (want[at] if reduction == "add" else 0)
    assert_close(got, want)


def test_scatter_deprecated(tmp_path):
    indices = unique_along((3, 5), (3, 2), 1)
    check_node(tmp_path, "Scatter", [rand(3, 5), indices, rand(3, 2)], {"axis": 1}, opset=10)


# -- ScatterND ---------------------------------------------------------------------------------
ND_CASES = [((5,), (3,), 1), ((3, 5), (4,), 2), ((3, 5), (2,), 1), ((5, 3, 2), (2, 2), 1),
            ((2, 3, 5), (3,), 3), ((4, 3, 2, 5), (2, 3), 2), ((4, 3), (), 1)]


@pytest.mark.parametrize("shape,lead,m", ND_CASES)
def test_scatternd(tmp_path, shape, lead, m):
    indices = nd_indices(shape, lead, m, unique=True)
    updates = rand(*lead, *shape[m:], seed=1)
    check_node(tmp_path, "ScatterND", [rand(*shape), indices, updates], opset=13)


@pytest.mark.parametrize("shape,lead,m", ND_CASES[1:5])
@pytest.mark.parametrize("reduction", ["add", "mul", "max", "min"])
def test_scatternd_reductions(tmp_path, shape, lead, m, reduction):
    indices = nd_indices(shape, lead + (2,), m, seed=4)   # duplicates likely
    updates = rand(*lead, 2, *shape[m:], seed=1)
    check_node(tmp_path, "ScatterND", [rand(*shape), indices, updates],
               {"reduction": reduction}, opset=18)


@pytest.mark.parametrize("dtype,reduction,opset", [
    (I64, "none", 11), (I32, "add", 16), (np.float64, "mul", 16), (I64, "min", 18),
])
def test_scatternd_dtypes(tmp_path, dtype, reduction, opset):
    indices = nd_indices((3, 4, 2), (5,), 2, unique=reduction == "none", seed=5)
    data, updates = ints((3, 4, 2), -9, 9).astype(dtype), ints((5, 2), -9, 9).astype(dtype)
    check_node(tmp_path, "ScatterND", [data, indices, updates],
               {} if reduction == "none" else {"reduction": reduction}, opset=opset)


# -- Trilu -------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(4, 5), (5, 3), (2, 3, 4), (2, 1, 3, 7)])
@pytest.mark.parametrize("upper", [0, 1])
@pytest.mark.parametrize("k", [None, 0, 2, -1, -7, 9])
def test_trilu(tmp_path, shape, upper, k):
    inputs = [rand(*shape)] + ([] if k is None else [np.array(k, I64)])
    check_node(tmp_path, "Trilu", inputs, {"upper": upper}, opset=14)


@pytest.mark.parametrize("dtype", [I64, np.float64, np.bool_])
def test_trilu_dtypes_constant_k(tmp_path, dtype):
    x = ints((3, 4, 4), 0, 2 if dtype == np.bool_ else 50).astype(dtype)
    check_node(tmp_path, "Trilu", [x, np.array(-1, I64)], {"upper": 0}, constant=(1,),
               opset=14)


# -- bitwise ops -------------------------------------------------------------------------------
UNSIGNED = [np.uint8, np.uint16, np.uint32, np.uint64]
SIGNED = [np.int8, np.int16, np.int32, np.int64]


def full_range(shape, dtype, seed=0):
    info = np.iinfo(dtype)
    rng = np.random.default_rng(seed + sum(shape))
    return rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)


@pytest.mark.parametrize("op", ["BitwiseAnd", "BitwiseOr", "BitwiseXor"])
@pytest.mark.parametrize("dtype", UNSIGNED + SIGNED)
def test_bitwise_binary(tmp_path, op, dtype):
    a, b = full_range((2, 3, 5), dtype), full_range((3, 1), dtype, seed=1)   # broadcast
    check_node(tmp_path, op, [a, b], opset=18)


@pytest.mark.parametrize("dtype", UNSIGNED + SIGNED)
def test_bitwise_not(tmp_path, dtype):
    check_node(tmp_path, "BitwiseNot", [full_range((3, 7), dtype)], opset=18)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint32, np.uint64])
@pytest.mark.parametrize("direction", ["LEFT", "RIGHT"])
def test_bitshift_unsigned(tmp_path, dtype, direction):
    width = 8 * np.dtype(dtype).itemsize
    x, y = full_range((4, 5), dtype), ints((5,), 0, width).astype(dtype)
    check_node(tmp_path, "BitShift", [x, y], {"direction": direction}, opset=11)


def shift_reference(x, y, left):
    """ONNX BitShift-28: a count < 0 or >= the width leaves the sign fill."""
    width = 8 * x.dtype.itemsize
    out_of_range = (y < 0) | (y >= width)
    count = np.where(out_of_range, 0, y).astype(x.dtype)
    shifted = np.left_shift(x, count) if left else np.right_shift(x, count)
    fill = np.where(x < 0, -1, 0) if not left and x.dtype.kind == "i" else 0
    return np.where(out_of_range, fill, shifted).astype(x.dtype)


def shift_inputs(dtype):
    width = 8 * np.dtype(dtype).itemsize
    low = -3 if np.dtype(dtype).kind == "i" else 0
    return full_range((4, 6), dtype), ints((6,), low, width + 3).astype(dtype)


@pytest.mark.parametrize("dtype", SIGNED + UNSIGNED)
@pytest.mark.parametrize("direction", ["LEFT", "RIGHT"])
def test_bitshift_any_count(tmp_path, dtype, direction):
    x, y = shift_inputs(dtype)
    model = node_model("BitShift", [x, y], {"direction": direction}, opset=28)
    (got,) = compile_run(tmp_path, model, [x, y])
    assert_close(got, shift_reference(x, y, direction == "LEFT"))


@pytest.mark.parametrize("op,attrs", [("BitShift", {"direction": "LEFT"}),
                                      ("BitShift", {"direction": "RIGHT"}),
                                      ("BitwiseXor", {}), ("BitwiseNot", {})])
def test_bitwise_interpreter(op, attrs):
    """The IR interpreter (the IR's reference semantics) agrees on the bit operations."""
    x, y = shift_inputs(np.int8)
    inputs = [x] if op == "BitwiseNot" else [x, y]
    model = node_model(op, inputs, attrs, opset=28)
    _, prog = compile_program(model, get_target("host"))
    (got,) = run_program(prog, feeds_of(model, inputs))
    want = {"BitwiseXor": lambda: x ^ y, "BitwiseNot": lambda: ~x}.get(
        op, lambda: shift_reference(x, y, attrs.get("direction") == "LEFT"))()
    assert_close(got, want)


# -- errors ------------------------------------------------------------------------------------
def test_error_unknown_reduction(tmp_path):
    model = node_model("ScatterElements", [rand(3, 4), ints((3, 2), 0, 4), rand(3, 2)],
                       {"axis": 1, "reduction": "sum"}, opset=18)
    compile_fails(tmp_path, model, "unsupported reduction 'sum'")


def test_error_unknown_reduction_nd(tmp_path):
    model = node_model("ScatterND", [rand(3, 4), ints((2, 1), 0, 3), rand(2, 4)],
                       {"reduction": "mean"}, opset=18)
    compile_fails(tmp_path, model, "unsupported reduction 'mean'")


def test_error_bad_direction(tmp_path):
    x = np.arange(4, dtype=np.uint8)
    model = node_model("BitShift", [x, x], {"direction": "UP"}, opset=11)
    compile_fails(tmp_path, model, "direction 'UP'")




def _bad_model(op, inputs, attrs, out_shape, opset=13):
    return typed(node_model(op, inputs, attrs, opset=opset), (F32, out_shape))


Z2 = np.zeros((2, 1), I64)


@pytest.mark.parametrize("op,inputs,attrs,out_shape,match", [
    ("GatherElements", [rand(3, 4), np.zeros(3, I64)], {}, (3,),
     r"indices of shape \(3,\) do not fit data \(3, 4\)"),
    ("GatherElements", [rand(3, 4), np.zeros((3, 4), I64)], {"axis": 2}, (3, 4),
     "axis 2 is out of range for rank 2"),
    ("GatherND", [rand(3, 4), Z2], {"batch_dims": 1}, (2,),
     "batch_dims=1 does not fit data"),
    ("GatherND", [rand(3, 4), np.zeros((2, 3), I64)], {}, (2,),
     "index tuples of 3 exceed data rank 2|too many indices"),
    ("ScatterElements", [rand(3, 4), np.zeros(3, I64), rand(3)], {}, (3, 4),
     "indices of rank 1 for data of rank 2"),
    ("ScatterND", [rand(3, 4), np.zeros((2, 3), I64), rand(2)], {}, (3, 4),
     "do not index data of rank 2"),
    ("ScatterND", [rand(3, 4), Z2, rand(2, 3)], {}, (3, 4),
     r"updates of shape \(2, 3\), expected \(2, 4\)"),
])
def test_error_shapes(tmp_path, op, inputs, attrs, out_shape, match):
    compile_fails(tmp_path, _bad_model(op, inputs, attrs, out_shape), match)


def test_error_trilu_k_not_scalar(tmp_path):
    model = _bad_model("Trilu", [rand(3, 3), np.array([1, 2], I64)], {}, (3, 3), opset=14)
    compile_fails(tmp_path, model, r"k must hold one value, got shape \(2,\)")


def test_error_trilu_rank1(tmp_path):
    model = _bad_model("Trilu", [rand(5)], {}, (5,), opset=14)
    compile_fails(tmp_path, model, "rank 1, expected at least 2")


def test_gathernd_declared_shape_is_replaced(tmp_path):
    """A declared output shape the op cannot give: the computed one wins, with a warning."""
    from onnxc.errors import ModelWarning
    model = _bad_model("GatherND", [rand(3, 4), Z2], {}, (2, 5))
    with pytest.warns(ModelWarning, match=r"declared with shape \[2, 5\] but computes to "
                                          r"\[2, 4\]"):
        lib = onnxc.compile(model, out_dir=tmp_path)
    assert lib.get_outputs()[0].shape == [2, 4]
