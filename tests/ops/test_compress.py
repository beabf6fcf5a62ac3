"""Compress against onnxruntime: the condition is read at run time and the output sized by it
(bounded in the plan, like NonZero)."""
from __future__ import annotations

import numpy as np
import onnxc
import pytest
from onnx import TensorProto, helper
from onnxc.errors import ModelError

from tests.backends import skip_on_gpu

from .harness import assert_close, node_model, rand, reference


def _compiled(tmp_path, x, cond_len, axis):
    attrs = {} if axis is None else {"axis": axis}
    model = node_model("Compress", [x, np.zeros(cond_len, bool)], attrs, opset=11)
    return model, onnxc.compile(model, out_dir=tmp_path, strict=True)


@pytest.mark.parametrize("shape, axis, cond_len", [
    ((6,), 0, 6), ((3, 5), 0, 3), ((3, 5), 1, 5), ((3, 5), -1, 2), ((2, 4, 3), 1, 4),
    ((2, 4, 3), -3, 1), ((3, 4), None, 12), ((3, 4), None, 7), ((2, 3), 1, 5)])
def test_matches_onnxruntime_for_any_condition(tmp_path, shape, axis, cond_len):
    """Random, all-false and all-true conditions, run after run on one compiled model (the
    output's size changes between runs); a condition may be shorter or longer than the axis."""
    x = rand(*shape, seed=cond_len)
    model, compiled = _compiled(tmp_path, x, cond_len, axis)
    rng = np.random.default_rng(cond_len)
    for cond in (rng.random(cond_len) < 0.5, np.zeros(cond_len, bool), np.ones(cond_len, bool),
                 rng.random(cond_len) < 0.3):
        feeds = {"x0": x, "x1": cond}
        (got,) = compiled.run(None, feeds)
        (want,) = reference(model, feeds)
        assert_close(got, want, what=f"condition {cond.astype(int)}")


@pytest.mark.parametrize("dtype", [np.int64, np.uint8, np.bool_, np.float64])
def test_dtypes(tmp_path, dtype):
    x = (rand(4, 3, seed=1) * 3).astype(dtype)
    model, compiled = _compiled(tmp_path, x, 4, 0)
    feeds = {"x0": x, "x1": np.array([True, False, True, True])}
    assert_close(compiled.run(None, feeds)[0], reference(model, feeds)[0])


def test_output_shape_is_reported_as_data_sized(tmp_path):
    _, compiled = _compiled(tmp_path, rand(3, 5), 5, 1)
    assert compiled.get_outputs()[0].shape == [3, None]


def _bad_model(shape, axis):
    node = helper.make_node("Compress", ["x", "c"], ["y"], axis=axis, name="compress_node")
    graph = helper.make_graph(
        [node], "compress", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape),
                             helper.make_tensor_value_info("c", TensorProto.BOOL, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None] * max(len(shape), 1))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    model.ir_version = 10
    return model


@pytest.mark.parametrize("shape, axis", [((), 0), ((2, 3), 2), ((2, 3), -3)])
def test_bad_axes_are_refused(tmp_path, shape, axis):
    with pytest.raises(ModelError, match="Compress"):
        onnxc.compile(_bad_model(shape, axis), out_dir=tmp_path)


@pytest.mark.parametrize("axis", [0, 1, None])
def test_symbolic_axis_and_condition(tmp_path, backend, axis):
    """One library for every length of the compressed axis and of the condition (the
    condition may be shorter or longer than the axis), and for every count kept."""
    skip_on_gpu(backend, "compile static shapes only: a dynamic model needs --dim values")
    import onnxruntime as ort
    graph = helper.make_graph(
        [helper.make_node("Compress", ["x", "c"], ["y"], **({} if axis is None else
                                                           {"axis": axis}))], "cs",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["rows", "cols"]),
         helper.make_tensor_value_info("c", TensorProto.BOOL, ["k"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    compiled = onnxc.compile(model, out_dir=tmp_path, strict=True)
    sess = ort.InferenceSession(model.SerializeToString())
    rng = np.random.default_rng(2)
    for rows, cols, k in [(1, 3, 1), (4, 2, 3), (5, 6, 7)]:
        if axis is not None and k > (rows, cols)[axis]:
            k = (rows, cols)[axis]         # onnxruntime refuses a longer condition here
        feed = {"x": rand(rows, cols, seed=k), "c": rng.random(k) < 0.5}
        (want,), (got,) = sess.run(None, feed), compiled.run(None, feed)
        assert got.shape == want.shape
        np.testing.assert_array_equal(got, want)
