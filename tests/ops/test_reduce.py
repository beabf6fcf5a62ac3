"""Reduce* and ArgMax/ArgMin against onnxruntime."""
from __future__ import annotations

import numpy as np
import onnxc
import pytest
from onnx import TensorProto
from onnxc.errors import ModelError, RuntimeFailure

from .harness import check_model, check_node, node_model, rand

REDUCE_OPS = ["ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1",
              "ReduceL2", "ReduceSumSquare", "ReduceLogSum", "ReduceLogSumExp"]
# The opset where each op's axes became an input (ReduceSum: 13, the others: 18).
AXES_INPUT_OPSET = {"ReduceSum": 13}

# shape, axes (None: all), keepdims
CASES = [
    ((3, 5, 7), (1,), 1),
    ((3, 5, 7), (0, 2), 0),
    ((2, 3, 5, 7), (-1,), 1),
    ((2, 3, 5, 7), (-3, 3), 0),
    ((4, 9), None, 1),
    ((4, 9), None, 0),
    ((13,), (0,), 0),
]


def data(op, shape, seed=0):
    if op == "ReduceLogSum":
        return rand(*shape, seed=seed, low=0.2, high=2.0)     # log of a positive sum
    if op == "ReduceProd":
        return rand(*shape, seed=seed, low=0.7, high=1.3)     # a product that stays O(1)
    return rand(*shape, seed=seed)


def axes_inputs(x, axes):
    return [x] if axes is None else [x, np.array(axes, np.int64)]


@pytest.mark.parametrize("op", REDUCE_OPS)
@pytest.mark.parametrize("shape,axes,keepdims", CASES)
def test_reduce_axes_input(tmp_path, op, shape, axes, keepdims):
    check_node(tmp_path, op, axes_inputs(data(op, shape), axes), {"keepdims": keepdims},
               constant=(1,), opset=18)


@pytest.mark.parametrize("op", REDUCE_OPS)
@pytest.mark.parametrize("shape,axes,keepdims", [((3, 5, 7), (-2,), 1), ((2, 3, 5), (0, 2), 0),
                                                 ((6, 5), None, 0)])
def test_reduce_axes_attribute(tmp_path, op, shape, axes, keepdims):
    opset = AXES_INPUT_OPSET.get(op, 18) - 1
    attrs = {"keepdims": keepdims} | ({} if axes is None else {"axes": list(axes)})
    check_node(tmp_path, op, [data(op, shape)], attrs, opset=opset)


@pytest.mark.parametrize("op", ["ReduceSum", "ReduceMax", "ReduceL2", "ReduceLogSumExp"])
def test_reduce_opset11(tmp_path, op):
    check_node(tmp_path, op, [data(op, (4, 3, 5))], {"axes": [0, -1], "keepdims": 0}, opset=11)


@pytest.mark.parametrize("op", ["ReduceSum", "ReduceSumSquare", "ReduceL1", "ReduceL2",
                                "ReduceLogSum", "ReduceLogSumExp", "ReduceMean"])
def test_reduce_noop_with_empty_axes(tmp_path, op):
    # Reducing over no axis leaves each element to its own reduction: x, x*x, |x|, log(x), ...
    x = data(op, (3, 5))
    check_node(tmp_path, op, [x, np.array([], np.int64)], {"noop_with_empty_axes": 1},
               constant=(1,), opset=18)


@pytest.mark.parametrize("op", ["ReduceSum", "ReduceMax", "ReduceMean"])
def test_reduce_empty_axes_reduces_all(tmp_path, op):
    check_node(tmp_path, op, [data(op, (3, 5)), np.array([], np.int64)], {"keepdims": 0},
               constant=(1,), opset=18)


@pytest.mark.parametrize("op", ["ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd",
                                "ReduceMean", "ReduceL1", "ReduceSumSquare"])
@pytest.mark.parametrize("dtype", [np.int64, np.int32])
def test_reduce_integers(tmp_path, op, dtype):
    x = np.random.default_rng(3).integers(-4, 5, (3, 4, 5)).astype(dtype)
    check_node(tmp_path, op, [x, np.array([1, -1], np.int64)], {"keepdims": 1},
               constant=(1,), opset=18)


@pytest.mark.parametrize("op", ["ReduceSum", "ReduceMax", "ReduceLogSumExp", "ReduceL2"])
def test_reduce_float64(tmp_path, op):
    check_node(tmp_path, op, [rand(3, 4, 5).astype(np.float64), np.array([1], np.int64)], {},
               constant=(1,), opset=18)


@pytest.mark.parametrize("op,opset", [("ReduceSum", 7), ("ReduceMax", 12), ("ReduceMin", 20),
                                      ("ReduceMax", 20), ("ReduceProd", 7),
                                      ("ReduceMean", 18), ("ReduceLogSumExp", 22)])
def test_reduce_schema_versions(tmp_path, op, opset):
    x = data(op, (3, 4, 5))
    if opset >= AXES_INPUT_OPSET.get(op, 18):
        check_node(tmp_path, op, [x, np.array([-1], np.int64)], {}, constant=(1,), opset=opset)
    else:
        check_node(tmp_path, op, [x], {"axes": [-1]}, opset=opset)


def test_reduce_logsumexp_is_stable(tmp_path):
    x = rand(3, 7) * 200.0 + 500.0    # exp would overflow without the max shift
    check_node(tmp_path, "ReduceLogSumExp", [x, np.array([1], np.int64)], {}, constant=(1,),
               opset=18)


def test_reduce_mean_global_pool_shape(tmp_path):
    check_node(tmp_path, "ReduceMean", [rand(1, 32, 7, 7), np.array([2, 3], np.int64)],
               {"keepdims": 1}, constant=(1,), opset=18)


# -- ArgMax / ArgMin -----------------------------------------------------------------------------

def _ties(shape, seed=0):
    """Small integers as floats: many equal maxima to tell first from last index."""
    return np.random.default_rng(seed).integers(0, 3, shape).astype(np.float32)


@pytest.mark.parametrize("op", ["ArgMax", "ArgMin"])
@pytest.mark.parametrize("axis,keepdims,select_last", [(0, 1, 0), (1, 0, 0), (-1, 1, 1),
                                                       (-2, 0, 1), (2, 1, 0)])
def test_arg_reduce(tmp_path, op, axis, keepdims, select_last):
    attrs = {"axis": axis, "keepdims": keepdims, "select_last_index": select_last}
    check_node(tmp_path, op, [_ties((3, 5, 7))], attrs, opset=13)


@pytest.mark.parametrize("op", ["ArgMax", "ArgMin"])
def test_arg_reduce_distinct_values_default_attrs(tmp_path, op):
    check_node(tmp_path, op, [rand(5, 4, 3)], {}, opset=11)


@pytest.mark.parametrize("op,opset", [("ArgMax", 7), ("ArgMin", 12), ("ArgMax", 22)])
def test_arg_reduce_schema_versions(tmp_path, op, opset):
    attrs = {"axis": 1} | ({"select_last_index": 1} if opset >= 12 else {})
    check_node(tmp_path, op, [_ties((4, 6))], attrs, opset=opset)


@pytest.mark.parametrize("dtype", [np.int64, np.int32])
def test_argmax_integers(tmp_path, dtype):
    x = np.random.default_rng(1).integers(-50, 50, (4, 9)).astype(dtype)
    check_node(tmp_path, "ArgMax", [x], {"axis": -1, "keepdims": 0}, opset=13)


# -- error paths ---------------------------------------------------------------------------------

def _compile(model, tmp_path):
    return onnxc.compile(model, out_dir=tmp_path, strict=True)


def _runtime_axes_model(op, x, axes, keepdims, declared=True):
    """axes is a graph input (its values arrive with the run); the model declares the output
    shape (or not)."""
    model = node_model(op, [x, np.array(axes, np.int64)], {"keepdims": keepdims}, opset=18)
    y = model.graph.output[0].type.tensor_type
    y.elem_type = TensorProto.FLOAT
    y.shape.Clear()
    if declared:
        out = np.sum(x, axis=tuple(axes), keepdims=bool(keepdims)).shape
        for d in out:
            y.shape.dim.add().dim_value = d
    return model


@pytest.mark.parametrize("op", ["ReduceSum", "ReduceMax", "ReduceLogSumExp", "ReduceL2"])
@pytest.mark.parametrize("shape, axes, keepdims", [((3, 4, 5), (1,), 1), ((3, 4, 5), (0, 2), 0),
                                                   ((2, 1, 6), (-1, 1), 1)])
def test_reduce_axes_read_at_run_time(tmp_path, op, shape, axes, keepdims):
    x = data(op, shape)
    model = _runtime_axes_model(op, x, axes, keepdims)
    feeds = {"x0": x, "x1": np.array(axes, np.int64)}
    check_model(model, feeds, tmp_path)


def test_reduce_run_time_axes_the_shape_cannot_tell(tmp_path):
    """[3, 2, 2] -> [3, 2] reduces axis 1 or axis 2: both are compiled, the run picks."""
    x = rand(3, 2, 2)
    model = _runtime_axes_model("ReduceSum", x, (1,), 0)
    lib = _compile(model, tmp_path)
    for axes in ([1], [2], [-1], [-2]):
        (got,) = lib.run(None, {"x0": x, "x1": np.array(axes, np.int64)})
        np.testing.assert_allclose(got, x.sum(axis=axes[0]), rtol=1e-5, atol=1e-6)


def test_reduce_run_time_axes_that_break_the_declared_shape(tmp_path):
    x = rand(3, 4, 5)
    lib = _compile(_runtime_axes_model("ReduceMean", x, (1,), 1), tmp_path)
    with pytest.raises(RuntimeFailure, match="node 'reducemean_node' \\(ReduceMean\\): "
                                                   "the axes input names none of the axes sets"):
        lib.run(None, {"x0": x, "x1": np.array([2], np.int64)})
    (got,) = lib.run(None, {"x0": x, "x1": np.array([1], np.int64)})   # the context recovers
    np.testing.assert_allclose(got, x.mean(axis=1, keepdims=True), rtol=1e-5, atol=1e-6)


def test_reduce_axes_at_run_time_need_a_declared_shape(tmp_path):
    model = _runtime_axes_model("ReduceSum", rand(3, 4), (1,), 1, declared=False)
    for _ in range(2):   # rank 2, extents unknown
        model.graph.output[0].type.tensor_type.shape.dim.add()
    with pytest.raises(ModelError, match="constant"):
        _compile(model, tmp_path)


@pytest.mark.parametrize("op", REDUCE_OPS)
def test_reduce_over_an_empty_axis(tmp_path, op):
    """No element to reduce: each op's value for the empty set (onnx.reference's)."""
    x = np.zeros((2, 0, 3), np.float32)
    check_node(tmp_path, op, [x, np.array([1], np.int64)], {"keepdims": 0}, constant=(1,),
               opset=18, use="reference")


@pytest.mark.parametrize("axes", [(0, 0), (5,), (-4,)])
def test_reduce_bad_axes(tmp_path, axes):
    model = node_model("ReduceMax", [rand(3, 4, 5)], {"axes": list(axes)}, opset=13)
    with pytest.raises(ModelError):
        _compile(model, tmp_path)


def test_reduce_l2_rejects_integers(tmp_path):
    x = np.ones((3, 4), np.int64)
    model = node_model("ReduceL2", [x, np.array([1], np.int64)], {}, constant=(1,), opset=18)
    with pytest.raises(ModelError, match="dtype int64"):
        _compile(model, tmp_path)


def test_argmax_bad_axis(tmp_path):
    model = node_model("ArgMax", [rand(3, 4)], {"axis": 2}, opset=13)
    with pytest.raises(ModelError):
        _compile(model, tmp_path)


@pytest.mark.parametrize("op, fn", [("ReduceMax", np.any), ("ReduceMin", np.all)])
@pytest.mark.parametrize("shape, axis", [((4, 5), 1), ((3, 0), 1), ((2, 3, 4), 0)])
def test_reduce_bool(tmp_path, op, fn, shape, axis):
    """Max over bools is any, min is all (over nothing: false and true)."""
    x = np.random.default_rng(3).random(shape) < 0.3
    (got,) = check_node(tmp_path, op, [x, np.array([axis], np.int64)], {"keepdims": 0},
                        constant=(1,), opset=20, use="reference")
    np.testing.assert_array_equal(got, fn(x, axis=axis))


def _chain_model(after: str):
    """ReduceSum(x, axes input) -> after -> Sqrt -> y, only y's shape declared."""
    from onnx import helper
    nodes = [helper.make_node("ReduceSum", ["x", "axes"], ["s"], keepdims=1),
             helper.make_node(after, ["s"], ["t"], **({"to": TensorProto.FLOAT}
                                                     if after == "Cast" else {})),
             helper.make_node("Sqrt", ["t"], ["y"])]
    graph = helper.make_graph(nodes, "chain", [
        helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 4, 5]),
        helper.make_tensor_value_info("axes", TensorProto.INT64, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 1, 5])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def test_reduce_run_time_axes_shape_from_a_declared_output_downstream(tmp_path):
    from .harness import reference
    model = _chain_model("Cast")
    feed = {"x": rand(3, 4, 5, low=0.1, high=2.0), "axes": np.array([1], np.int64)}
    lib = _compile(model, tmp_path)
    np.testing.assert_allclose(lib.run(None, feed)[0], reference(model, feed)[0], rtol=1e-5)
    with pytest.raises(RuntimeFailure, match="axes"):
        lib.run(None, dict(feed, axes=np.array([2], np.int64)))


def test_reduce_run_time_axes_declared_shape_behind_a_reshaping_op(tmp_path):
    with pytest.raises(ModelError, match="constant"):
        _compile(_chain_model("Transpose"), tmp_path)   # Transpose may move the axes
