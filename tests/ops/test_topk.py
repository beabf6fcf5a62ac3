"""TopK against onnxruntime: constant and run-time k, ties, NaN, axes, and the errors."""
from __future__ import annotations

import numpy as np
import onnxc
import pytest
from onnx import TensorProto, helper
from onnxc.errors import ModelError, RuntimeFailure

from .harness import assert_close, check_node, rand, reference


def _ints(shape, high, seed):
    return np.random.default_rng(seed).integers(0, high, shape).astype(np.int64)


@pytest.mark.parametrize("shape, axis, k", [((7,), 0, 3), ((3, 9), -1, 4), ((4, 5, 6), 1, 5),
                                            ((2, 3, 4), 0, 2), ((5, 4), 1, 4), ((6,), 0, 0)])
@pytest.mark.parametrize("largest", [1, 0])
def test_constant_k_matches_onnxruntime(tmp_path, shape, axis, k, largest):
    x = rand(*shape, seed=k)
    check_node(tmp_path, "TopK", [x, np.array([k], np.int64)],
               {"axis": axis, "largest": largest}, constant=(1,), n_outputs=2, opset=11)


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8, np.float64])
def test_ties_keep_the_lower_index_first(tmp_path, dtype):
    x = _ints((4, 12), 3, seed=1).astype(dtype)      # three values: many ties per row
    for largest in (1, 0):
        check_node(tmp_path / str(largest), "TopK", [x, np.array([7], np.int64)],
                   {"axis": 1, "largest": largest}, constant=(1,), n_outputs=2, opset=11)


def test_nan_ranks_above_every_number(tmp_path):
    x = np.array([[1, np.nan, 3, np.nan, 2, 5, -1, 0],
                  [np.nan, 0, np.nan, -np.inf, np.inf, 4, 4, np.nan]], np.float32)
    for largest in (1, 0):
        for k in (1, 3, 8):
            check_node(tmp_path / f"{largest}_{k}", "TopK", [x, np.array([k], np.int64)],
                       {"largest": largest}, constant=(1,), n_outputs=2, opset=11)


def test_opset_1_attribute_and_opset_10_input(tmp_path):
    x = rand(3, 6, seed=2)
    check_node(tmp_path / "v1", "TopK", [x], {"k": 2, "axis": 1}, n_outputs=2, opset=9)
    check_node(tmp_path / "v10", "TopK", [x, np.array([5], np.int64)], {"axis": -1},
               constant=(1,), n_outputs=2, opset=10)


def test_unsorted_request_returns_the_same_set(tmp_path):
    x = rand(4, 10, seed=3)
    v, i = _run_unsorted(tmp_path, x)
    want = np.sort(x, axis=1)[:, ::-1][:, :4]
    np.testing.assert_array_equal(np.sort(v, axis=1)[:, ::-1], want)
    np.testing.assert_array_equal(np.take_along_axis(x, i, 1), v)


def _run_unsorted(tmp_path, x):
    from .harness import node_model
    model = node_model("TopK", [x, np.array([4], np.int64)], {"sorted": 0}, constant=(1,),
                       n_outputs=2, opset=11)
    return onnxc.compile(model, out_dir=tmp_path, strict=True).run(None, {"x0": x})


def _runtime_k_model(shape, axis, k, dtype=TensorProto.FLOAT):
    """k is a graph input (as in ONNX's own cases); the outputs' shapes are declared."""
    out = list(shape)
    out[axis] = k
    node = helper.make_node("TopK", ["x", "k"], ["v", "i"], axis=axis, name="topk_node")
    graph = helper.make_graph(
        [node], "topk", [helper.make_tensor_value_info("x", dtype, list(shape)),
                         helper.make_tensor_value_info("k", TensorProto.INT64, [1])],
        [helper.make_tensor_value_info("v", dtype, out),
         helper.make_tensor_value_info("i", TensorProto.INT64, out)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    model.ir_version = 10
    return model


def test_runtime_k_is_checked_against_the_declared_outputs(tmp_path):
    model = _runtime_k_model((3, 8), 1, 5)
    compiled = onnxc.compile(model, out_dir=tmp_path, strict=True)
    feeds = {"x": rand(3, 8, seed=4), "k": np.array([5], np.int64)}
    for got, want in zip(compiled.run(None, feeds), reference(model, feeds)):
        assert_close(got, want)
    with pytest.raises(RuntimeFailure, match=r"node 'topk_node' \(TopK\): K differs"):
        compiled.run(None, {**feeds, "k": np.array([4], np.int64)})


@pytest.mark.parametrize("case", ["k_over_axis", "scalar", "bool"])
def test_bad_models_are_refused(tmp_path, case):
    if case == "k_over_axis":
        model = _runtime_k_model((3, 4), 1, 5)
    elif case == "scalar":
        model = _scalar_model()
    else:
        model = _runtime_k_model((3, 4), 1, 2, TensorProto.BOOL)
    with pytest.raises(ModelError, match="TopK"):
        onnxc.compile(model, out_dir=tmp_path)


def _scalar_model():
    node = helper.make_node("TopK", ["x", "k"], ["v", "i"], name="topk_node")
    graph = helper.make_graph(
        [node], "topk", [helper.make_tensor_value_info("x", TensorProto.FLOAT, []),
                         helper.make_tensor_value_info("k", TensorProto.INT64, [1])],
        [helper.make_tensor_value_info("v", TensorProto.FLOAT, []),
         helper.make_tensor_value_info("i", TensorProto.INT64, [])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    model.ir_version = 10
    return model
