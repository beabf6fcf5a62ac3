"""OneHot against onnxruntime and BitCast against numpy's view: dtypes, axes, run-time depth,
out-of-range indices, and the errors."""
from __future__ import annotations

import numpy as np
import onnxc
import pytest
from onnx import TensorProto, helper
from onnxc.errors import ModelError, ModelWarning, RuntimeFailure

from .harness import assert_close, check_node, node_model, reference


def _indices(shape, depth, seed, dtype=np.int64):
    """Indices over [-depth - 2, depth + 2): negatives and out-of-range ones included."""
    rng = np.random.default_rng(seed)
    return rng.integers(-depth - 2, depth + 2, shape).astype(dtype)


@pytest.mark.parametrize("shape, axis", [((5,), -1), ((5,), 0), ((2, 3), 1), ((2, 3), -3),
                                         ((2, 3, 2), 2), ((1,), 0)])
def test_onehot_matches_onnxruntime(tmp_path, shape, axis):
    depth = 6
    inputs = [_indices(shape, depth, seed=len(shape)), np.array(depth, np.int64),
              np.array([-1.5, 2.0], np.float32)]
    check_node(tmp_path, "OneHot", inputs, {"axis": axis}, constant=(1,), opset=11)


@pytest.mark.parametrize("idx, depth, values", [
    (np.float32, np.float32, np.float32), (np.int32, np.float32, np.int32),
    (np.int64, np.int64, np.int64), (np.int64, np.float32, np.float64)])
def test_onehot_dtypes(tmp_path, idx, depth, values):
    inputs = [_indices((4, 3), 5, seed=2, dtype=idx), np.array(5, depth),
              np.array([0, 7], values)]
    model = node_model("OneHot", inputs, {"axis": 1}, constant=(1,), opset=11)
    compiled = onnxc.compile(model, out_dir=tmp_path, strict=True)
    feeds = {"x0": inputs[0], "x2": inputs[2]}
    try:
        want = reference(model, feeds)
    except Exception:   # onnxruntime has no kernel for every dtype combination
        want = reference(model, feeds, use="ref")
    assert_close(compiled.run(None, feeds)[0], want[0])


def _declared_model(depth, indices=TensorProto.INT64, values=(2,)):
    """depth and values are graph inputs (as in ONNX's own cases); y's shape is declared."""
    node = helper.make_node("OneHot", ["i", "d", "v"], ["y"], axis=1, name="onehot_node")
    graph = helper.make_graph(
        [node], "onehot", [helper.make_tensor_value_info("i", indices, [3]),
                           helper.make_tensor_value_info("d", TensorProto.FLOAT, []),
                           helper.make_tensor_value_info("v", TensorProto.FLOAT, values)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, depth])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    model.ir_version = 10
    return model


def test_runtime_depth_is_checked(tmp_path):
    model = _declared_model(4)
    compiled = onnxc.compile(model, out_dir=tmp_path, strict=True)
    feeds = {"i": np.array([3, -1, 9]), "d": np.array(4, np.float32),
             "v": np.array([0.5, 3.0], np.float32)}
    assert_close(compiled.run(None, feeds)[0], reference(model, feeds)[0])
    with pytest.raises(RuntimeFailure, match=r"node 'onehot_node' \(OneHot\): depth differs"):
        compiled.run(None, {**feeds, "d": np.array(5, np.float32)})


def test_onehot_errors(tmp_path):
    with pytest.raises(ModelError, match=r"onehot_node' \(OneHot\): values must hold"):
        onnxc.compile(_declared_model(4, values=(3,)), out_dir=tmp_path / "values")
    # a constant depth decides the output; the declared extent 4 gives way to it
    model = _declared_model(4)
    model.graph.initializer.append(helper.make_tensor("d", TensorProto.FLOAT, [], [5.0]))
    del model.graph.input[1]
    with pytest.warns(ModelWarning, match="computes to"):
        lib = onnxc.compile(model, out_dir=tmp_path / "depth")
    assert lib.get_outputs()[0].shape[-1] == 5


_BITS = [(np.float32, np.int32), (np.int32, np.float32), (np.float64, np.int64),
         (np.int64, np.float64), (np.uint32, np.int32), (np.uint16, np.int16),
         (np.int8, np.uint8), (np.uint64, np.float64), (np.bool_, np.uint8),
         (np.uint8, np.bool_), (np.float32, np.float32)]


@pytest.mark.parametrize("src, dst", _BITS)
def test_bitcast_matches_numpy_view(tmp_path, src, dst):
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 256, (3, 4, np.dtype(src).itemsize), dtype=np.uint8)
    if np.dtype(src) == np.bool_ or np.dtype(dst) == np.bool_:
        raw &= 1                                  # a bool's only bit patterns
    x = raw.reshape(-1).view(src).reshape(3, 4)
    model = node_model("BitCast", [x], {"to": helper.np_dtype_to_tensor_dtype(np.dtype(dst))},
                       opset=26)
    (got,) = onnxc.compile(model, out_dir=tmp_path, strict=True).run(None, {"x0": x})
    assert got.dtype == np.dtype(dst) and got.shape == x.shape
    assert got.tobytes() == x.view(dst).tobytes()   # bits equal, NaN payloads included


@pytest.mark.parametrize("src, to", [(np.float32, TensorProto.INT64),
                                     (np.float16, TensorProto.INT16)])
def test_bitcast_errors(tmp_path, src, to):
    x = np.zeros((2,), src)
    model = node_model("BitCast", [x], {"to": to}, opset=26)
    with pytest.raises(ModelError):
        onnxc.compile(model, out_dir=tmp_path)


def test_bitcast_in_the_ir_tools():
    """The IR printer and the numpy interpreter know Bitcast (--dump-ir, pass tests)."""
    from onnx import helper as h
    from onnxc.frontend import import_model
    from onnxc.loop.interp import run_program
    from onnxc.loop.printer import program_str
    from onnxc.lower.from_graph import lower_graph
    model = h.make_model(h.make_graph(
        [h.make_node("BitCast", ["x"], ["y"], to=TensorProto.INT32)], "bc",
        [h.make_tensor_value_info("x", TensorProto.FLOAT, [3])],
        [h.make_tensor_value_info("y", TensorProto.INT32, [3])]),
        opset_imports=[h.make_opsetid("", 26)])
    prog = lower_graph(import_model(model))
    assert "bitcast<int32>" in program_str(prog)
    x = np.array([1.0, -2.5, np.inf], np.float32)
    (got,) = run_program(prog, {"x": x})
    np.testing.assert_array_equal(got, x.view(np.int32))
