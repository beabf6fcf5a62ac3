"""Error paths of the Python API: bad feeds, bad names, bad libraries, bad models."""
from __future__ import annotations

import shutil

import numpy as np
import onnx
import onnxc
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnxc import ModelError, OnnxcError

from tests.unsupported import missing_unary_op


def two_input_model() -> onnx.ModelProto:
    """y = relu(a @ W + b2) with inputs a: float[2, 4] and b2: float[2, 3]; also z = a + a."""
    w = numpy_helper.from_array(np.arange(12, dtype=np.float32).reshape(4, 3) / 10, "W")
    nodes = [helper.make_node("MatMul", ["a", "W"], ["m"], name="mm"),
             helper.make_node("Add", ["m", "b2"], ["s"], name="add"),
             helper.make_node("Relu", ["s"], ["y"], name="relu"),
             helper.make_node("Add", ["a", "a"], ["z"], name="double")]
    graph = helper.make_graph(nodes, "two_inputs",
                              [helper.make_tensor_value_info("a", TensorProto.FLOAT, [2, 4]),
                               helper.make_tensor_value_info("b2", TensorProto.FLOAT, [2, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3]),
                               helper.make_tensor_value_info("z", TensorProto.FLOAT, [2, 4])],
                              [w])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    out = tmp_path_factory.mktemp("errors")
    return onnxc.compile(two_input_model(), out_dir=out, name="two_inputs", strict=True)


def good_feed():
    return {"a": np.ones((2, 4), np.float32), "b2": np.zeros((2, 3), np.float32)}


def test_good_feed_runs(compiled):
    y, z = compiled.run(None, good_feed())
    w = np.arange(12, dtype=np.float32).reshape(4, 3) / 10
    np.testing.assert_allclose(y, np.maximum(np.ones((2, 4)) @ w, 0), rtol=1e-6)
    np.testing.assert_array_equal(z, np.full((2, 4), 2, np.float32))
    (z_only,) = compiled.run(["z"], good_feed())
    np.testing.assert_array_equal(z_only, z)


@pytest.mark.parametrize("change, needles", [
    ({"b2": np.zeros((2, 3), np.float64)}, ["'b2'", "float32", "float64"]),
    ({"b2": np.zeros((2, 3), np.int64)}, ["'b2'", "float32", "int64"]),
    ({"a": np.ones((4, 2), np.float32)}, ["'a'", "[2, 4]", "[4, 2]"]),
    ({"a": np.ones((2, 4, 1), np.float32)}, ["'a'", "[2, 4]", "[2, 4, 1]"]),
    ({"a": np.float32(1)}, ["'a'", "[2, 4]", "[]"]),
])
def test_wrong_dtype_or_shape(compiled, change, needles):
    feed = {**good_feed(), **change}
    with pytest.raises(ValueError) as info:
        compiled.run(None, feed)
    for needle in needles:
        assert needle in str(info.value)


def test_wrong_input_name(compiled):
    feed = good_feed()
    feed["bb"] = feed.pop("b2")
    with pytest.raises(ValueError) as info:
        compiled.run(None, feed)
    message = str(info.value)
    assert "'bb'" in message and "'b2'" in message and "'a'" in message


def test_missing_input(compiled):
    feed = good_feed()
    del feed["b2"]
    with pytest.raises(ValueError, match="'b2'"):
        compiled.run(None, feed)


def test_unknown_output_name(compiled):
    with pytest.raises(ValueError) as info:
        compiled.run(["y", "nope"], good_feed())
    assert "'nope'" in str(info.value) and "'y'" in str(info.value)


@pytest.mark.parametrize("bad", [0, -1, 2.5, "4", None])
def test_bad_thread_count(compiled, bad):
    with pytest.raises(ValueError):
        compiled.set_num_threads(bad)
    compiled.set_num_threads(1)
    assert compiled.get_num_threads() == 1


def test_load_non_library(tmp_path):
    fake = tmp_path / "model.so"
    fake.write_text("this is not an ELF file")
    with pytest.raises(OnnxcError, match="cannot load"):
        onnxc.load(fake)


def test_load_missing_library(tmp_path):
    with pytest.raises(OnnxcError, match="no such library"):
        onnxc.load(tmp_path / "absent.so")


def test_load_library_built_for_another_name(compiled, tmp_path):
    renamed = tmp_path / "other_model.so"
    shutil.copy(compiled.path, renamed)
    with pytest.raises(OnnxcError, match="other_model"):
        onnxc.load(renamed)
    with pytest.raises(OnnxcError):
        onnxc.load(compiled.path, name="not_this_one")
    assert onnxc.load(renamed, name="two_inputs").get_inputs()[0].name == "a"


def test_load_library_with_bad_name(compiled, tmp_path):
    renamed = tmp_path / "bad-name.so"
    shutil.copy(compiled.path, renamed)
    with pytest.raises(OnnxcError, match="bad name"):
        onnxc.load(renamed)


def test_model_failing_checker(tmp_path):
    model = two_input_model()
    model.graph.node[0].input[1] = "undefined_weight"  # used but never produced
    with pytest.raises(ModelError, match="onnx.checker"):
        onnxc.compile(model, out_dir=tmp_path)


def test_model_file_failing_checker(tmp_path):
    model = two_input_model()
    del model.opset_import[:]
    path = tmp_path / "no_opset.onnx"
    path.write_bytes(model.SerializeToString())
    with pytest.raises(ModelError):
        onnxc.compile(path, out_dir=tmp_path / "o")


def test_malformed_file(tmp_path):
    path = tmp_path / "junk.onnx"
    path.write_bytes(b"\x08\x07junk" * 7)
    with pytest.raises(ModelError, match="junk.onnx"):
        onnxc.compile(path, out_dir=tmp_path / "o")


def test_missing_model_file(tmp_path):
    with pytest.raises(ModelError, match="no such file"):
        onnxc.compile(tmp_path / "absent.onnx", out_dir=tmp_path / "o")


def test_unsupported_ops_error_lists_all(tmp_path):
    model = two_input_model()
    missing = missing_unary_op()
    model.graph.node[2].op_type = missing
    model.graph.node[3].op_type = missing
    model.graph.node[3].input.pop()  # the stand-in takes one input
    with pytest.raises(onnxc.UnsupportedOps) as info:
        onnxc.compile(model, out_dir=tmp_path)
    assert info.value.missing == {missing: ["relu", "double"]}


def test_bad_library_name_option(tmp_path):
    with pytest.raises(ModelError, match="C identifier"):
        onnxc.compile(two_input_model(), out_dir=tmp_path, name="with space")
