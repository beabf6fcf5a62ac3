"""Frontend: checking, constant folding (initializers and Constant nodes), BN folding, DCE."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnxc.errors import ModelError
from onnxc.frontend import import_model

from tests.ops.harness import check_model


def _model(nodes, inputs, outputs, inits=(), opset=17):
    g = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def _info(name, shape, dtype=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, dtype, shape)


def test_constant_nodes_fold_and_shape_chain_folds():
    """Paddle-style weights in Constant nodes, and torch's Shape->Gather->Concat->Reshape."""
    w = np.arange(12, dtype=np.float32).reshape(3, 4)
    nodes = [
        helper.make_node("Constant", [], ["w"], value=numpy_helper.from_array(w)),
        helper.make_node("MatMul", ["x", "w"], ["m"]),
        helper.make_node("Shape", ["m"], ["s"]),
        helper.make_node("Constant", [], ["minus1"], value=numpy_helper.from_array(
            np.array([-1], np.int64))),
        helper.make_node("Reshape", ["m", "minus1"], ["y"]),
    ]
    g = import_model(_model(nodes, [_info("x", [2, 3])], [_info("y", [8])]))
    assert [n.op_type for n in g.nodes] == ["MatMul", "Reshape"]
    assert g.values["y"].shape == (8,)
    assert "w" in g.constants


def test_batchnorm_folds_into_conv(tmp_path):
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "W"),
             numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "s"),
             numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "b"),
             numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "m"),
             numpy_helper.from_array(rng.uniform(0.5, 2, 4).astype(np.float32), "v")]
    nodes = [helper.make_node("Conv", ["x", "W"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c", "s", "b", "m", "v"], ["y"])]
    model = _model(nodes, [_info("x", [1, 3, 6, 6])], [_info("y", [1, 4, 6, 6])], inits)
    g = import_model(model)
    assert [n.op_type for n in g.nodes] == ["Conv"]
    x = rng.standard_normal((1, 3, 6, 6)).astype(np.float32)
    check_model(model, {"x": x}, tmp_path)


def test_dead_nodes_dropped():
    nodes = [helper.make_node("Relu", ["x"], ["y"]), helper.make_node("Exp", ["x"], ["dead"])]
    g = import_model(_model(nodes, [_info("x", [3])], [_info("y", [3])]))
    assert [n.op_type for n in g.nodes] == ["Relu"]


def test_malformed_and_invalid_models(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00\x01not a model")
    with pytest.raises(ModelError, match="not a valid ONNX file|fails onnx.checker"):
        import_model(bad)
    with pytest.raises(ModelError, match="no such file"):
        import_model(tmp_path / "missing.onnx")
    broken = _model([helper.make_node("Relu", ["nope"], ["y"])], [_info("x", [3])],
                    [_info("y", [3])])
    with pytest.raises(ModelError):
        import_model(broken)


def test_symbolic_input_gives_symbolic_shapes():
    from onnxc.loop.ir import Var
    m = _model([helper.make_node("Relu", ["x"], ["y"])], [_info("x", ["batch", 3])],
               [_info("y", ["batch", 3])])
    g = import_model(m)
    assert g.values["y"].shape == (Var("dim0_batch"), 3)


def test_folded_batchnorm_weights_have_types():
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal((4, 3, 1, 1)).astype(np.float32), "W")]
    inits += [numpy_helper.from_array(rng.uniform(0.5, 2, 4).astype(np.float32), n)
              for n in ("s", "b", "m", "v")]
    nodes = [helper.make_node("Conv", ["x", "W"], ["c"]),
             helper.make_node("BatchNormalization", ["c", "s", "b", "m", "v"], ["y"])]
    g = import_model(_model(nodes, [_info("x", [1, 3, 4, 4])], [_info("y", [1, 4, 4, 4])], inits))
    for name in g.nodes[0].inputs[1:]:
        assert g.values[name].shape == g.constants[name].shape
