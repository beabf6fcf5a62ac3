"""OptionalHasElement and OptionalGetElement (compiler/ops/optional.py) against onnx's
reference (onnxruntime refuses a tensor where its schema wants an optional)."""
from __future__ import annotations

import numpy as np
import onnxc
import pytest
from onnx import TensorProto, helper
from onnxc.errors import ModelError

from .harness import check_node, rand


def has_element_model(inputs):
    node = helper.make_node("OptionalHasElement", inputs, ["y"], name="has")
    graph = helper.make_graph([node], "opt", [], [
        helper.make_tensor_value_info("y", TensorProto.BOOL, [])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


@pytest.mark.parametrize("inputs", [[], [""]])
def test_has_element_of_an_absent_input(tmp_path, inputs):
    lib = onnxc.compile(has_element_model(inputs), out_dir=tmp_path, strict=True)
    (got,) = lib.run(None, {})
    assert got.dtype == np.bool_ and got.shape == () and not got


def test_has_element_of_a_tensor(tmp_path):
    check_node(tmp_path, "OptionalHasElement", [rand(2, 3)], opset=18, use="reference")


@pytest.mark.parametrize("dtype", [np.float32, np.int64])
def test_get_element_of_a_tensor(tmp_path, dtype):
    check_node(tmp_path, "OptionalGetElement", [rand(3, 4, dtype=dtype)], opset=18,
               use="reference")


def test_optional_graph_input_is_refused(tmp_path):
    optional = helper.make_optional_type_proto(
        helper.make_tensor_type_proto(TensorProto.FLOAT, [2]))
    node = helper.make_node("OptionalHasElement", ["x"], ["y"], name="has")
    graph = helper.make_graph([node], "opt", [helper.make_value_info("x", optional)], [
        helper.make_tensor_value_info("y", TensorProto.BOOL, [])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    with pytest.raises(ModelError, match="x"):
        onnxc.compile(model, out_dir=tmp_path)
