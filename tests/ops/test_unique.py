"""Unique: three data-sized outputs (Y, indices, counts) and one static (inverse_indices),
compared with onnxruntime (onnx.reference for the dtypes it has no kernel for)."""
from __future__ import annotations

import ml_dtypes
import numpy as np
import onnxc
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper
from onnxc import ModelError

from tests.backends import skip_on_gpu
from tests.ops.harness import assert_close, check_model, node_model, reference


def with_repeats(shape, axis=None, dtype=np.float32, seed=0) -> np.ndarray:
    """Values from a small pool, so that elements (or slices along axis) repeat."""
    rng = np.random.default_rng(seed)
    if axis is None:
        return rng.integers(-3, 4, shape).astype(dtype)
    pool = rng.integers(-2, 3, (3, *shape[:axis], *shape[axis + 1:]))
    picks = rng.integers(0, 3, shape[axis])
    return np.moveaxis(pool[picks], 0, axis).astype(dtype)


def run_unique(tmp_path, x, use="ort", n_outputs=4, opset=11, **attrs):
    model = node_model("Unique", [x], attrs, n_outputs=n_outputs, opset=opset)
    return check_model(model, {"x0": x}, tmp_path, use=use)


@pytest.mark.parametrize("dtype", [np.float32, np.int64])
@pytest.mark.parametrize("is_sorted", [1, 0])
def test_without_axis(tmp_path, dtype, is_sorted):
    x = with_repeats((4, 5), dtype=dtype, seed=is_sorted)
    y, indices, inverse, counts = run_unique(tmp_path, x, sorted=is_sorted)
    assert len(y) < x.size and counts.sum() == x.size
    np.testing.assert_array_equal(y[inverse], x.ravel())


@pytest.mark.parametrize("shape, axis", [((6, 3), 0), ((3, 6), 1), ((2, 5, 3), 1),
                                         ((2, 3, 5), -1), ((4, 2, 3), 0)])
@pytest.mark.parametrize("is_sorted", [1, 0])
def test_with_axis(tmp_path, shape, axis, is_sorted):
    x = with_repeats(shape, axis % len(shape), seed=len(shape) + is_sorted)
    y, _, inverse, _ = run_unique(tmp_path, x, axis=axis, sorted=is_sorted)
    np.testing.assert_array_equal(np.take(y, inverse, axis=axis), x)


def test_int64_with_axis_matches_onnxruntime(tmp_path):
    run_unique(tmp_path, with_repeats((7, 2), 0, np.int64, seed=3), axis=0)


def test_length_1(tmp_path):
    run_unique(tmp_path, np.array([5.0], np.float32))


def test_all_distinct_and_all_equal(tmp_path):
    model = node_model("Unique", [np.zeros(6, np.float32)], {"sorted": 1}, n_outputs=4,
                       opset=11)
    lib = onnxc.compile(model, out_dir=tmp_path, strict=True)
    for x in (np.array([3, -1, 2.5, 0, 7, -4], np.float32), np.full(6, 2.0, np.float32),
              np.array([1, 1, 0, 0, 1, 0], np.float32)):   # each run sizes the outputs anew
        for got, want in zip(lib.run(None, {"x0": x}), reference(model, {"x0": x})):
            assert_close(got, want)


def test_bfloat16(tmp_path):
    """Unique-28 allows bfloat16; the lowering is the same."""
    x = with_repeats((9,), dtype=ml_dtypes.bfloat16, seed=5)
    run_unique(tmp_path, x, use="ref", opset=28)


@pytest.mark.parametrize("n_outputs", [1, 2])
def test_fewer_outputs(tmp_path, n_outputs):
    run_unique(tmp_path, with_repeats((10,), seed=7), n_outputs=n_outputs, sorted=0)


def test_inverse_indices_feed_a_downstream_op(tmp_path):
    """inverse_indices has a static length, so another node may read it."""
    nodes = [helper.make_node("Unique", ["x"], ["y", "", "inv"], name="uq"),
             helper.make_node("Cast", ["inv"], ["f"], to=TensorProto.FLOAT),
             helper.make_node("Add", ["f", "x"], ["z"])]
    graph = helper.make_graph(nodes, "uqd", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [8])], [helper.make_tensor_value_info("y", TensorProto.FLOAT,
                                                                      [None]),
                                        helper.make_tensor_value_info("z", TensorProto.FLOAT,
                                                                      [8])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    model.ir_version = 10
    check_model(model, {"x": with_repeats((8,), seed=9)}, tmp_path)


@pytest.mark.parametrize("length", [8, "n"], ids=["static", "symbolic"])
def test_readers_of_the_unique_values(tmp_path, backend, length):
    """Later nodes read the unique values and their counts, whose length the data decides."""
    skip_on_gpu(backend, "refuse readers of a tensor the data sizes")
    nodes = [helper.make_node("Unique", ["x"], ["y", "", "inv", "counts"], name="uq"),
             helper.make_node("Neg", ["y"], ["z"], name="neg"),
             helper.make_node("Gather", ["z", "inv"], ["back"], name="back", axis=0),
             helper.make_node("ReduceSum", ["counts"], ["total"], name="total", keepdims=0)]
    graph = helper.make_graph(nodes, "uqr", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [length])], [
        helper.make_tensor_value_info("z", TensorProto.FLOAT, [None]),
        helper.make_tensor_value_info("back", TensorProto.FLOAT, [length]),
        helper.make_tensor_value_info("total", TensorProto.INT64, [])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    lib = onnxc.compile(model, out_dir=tmp_path)
    sess = ort.InferenceSession(model.SerializeToString())
    rng = np.random.default_rng(5)
    for n in ([8] if length == 8 else [1, 8, 40]):
        for distinct in (1, 3, 1000):
            x = rng.integers(0, distinct, n).astype(np.float32)
            for got, want in zip(lib.run(None, {"x": x}), sess.run(None, {"x": x})):
                assert got.shape == want.shape
                np.testing.assert_array_equal(got, want)


def test_axis_out_of_range(tmp_path):
    model = node_model("Unique", [np.zeros((2, 3), np.float32)], {"axis": 2}, n_outputs=4,
                       opset=11)
    with pytest.raises(ModelError):
        onnxc.compile(model, out_dir=tmp_path)
