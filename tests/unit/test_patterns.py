"""recognize_subgraphs: GELU and pre-opset-17 LayerNorm subgraphs become one node each, with
onnxruntime's numbers; near misses stay as they are."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnxc.frontend import import_model
from onnxc.ops.registry import INTERNAL_DOMAIN

from tests.ops.harness import check_model


def _layer_norm_model(axes=(-1,), gamma=True, beta=True, opset=13, eps=1e-5):
    """x (2, 5, 16) -> the LayerNorm subgraph torch exports before opset 17 -> y."""
    rng = np.random.default_rng(0)
    consts = {"two": np.array(2.0), "eps": np.array(eps), "g": rng.standard_normal(16),
              "b": rng.standard_normal(16)}
    mean_axes = dict(axes=list(axes))
    nodes = [helper.make_node("ReduceMean", ["x"], ["m"], **mean_axes),
             helper.make_node("Sub", ["x", "m"], ["d"]),
             helper.make_node("Pow", ["d", "two"], ["p"]),
             helper.make_node("ReduceMean", ["p"], ["v"], **mean_axes),
             helper.make_node("Add", ["v", "eps"], ["ve"]),
             helper.make_node("Sqrt", ["ve"], ["s"]),
             helper.make_node("Div", ["d", "s"], ["n" if gamma else "y"])]
    if gamma:
        nodes.append(helper.make_node("Mul", ["n", "g"], ["ng" if beta else "y"]))
        if beta:
            nodes.append(helper.make_node("Add", ["ng", "b"], ["y"]))
    vi = helper.make_tensor_value_info
    g = helper.make_graph(nodes, "ln", [vi("x", TensorProto.FLOAT, [2, 5, 16])],
                          [vi("y", TensorProto.FLOAT, [2, 5, 16])],
                          [numpy_helper.from_array(v.astype(np.float32), k)
                           for k, v in consts.items()])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def _gelu_alone():
    consts = {"r2": np.array(np.sqrt(2.0)), "one": np.array(1.0), "half": np.array(0.5)}
    nodes = [helper.make_node("Div", ["x", "r2"], ["q"]), helper.make_node("Erf", ["q"], ["e"]),
             helper.make_node("Add", ["e", "one"], ["e1"]),
             helper.make_node("Mul", ["x", "e1"], ["p"]),
             helper.make_node("Mul", ["p", "half"], ["y"])]
    vi = helper.make_tensor_value_info
    g = helper.make_graph(nodes, "gelu", [vi("x", TensorProto.FLOAT, [3, 40])],
                          [vi("y", TensorProto.FLOAT, [3, 40])],
                          [numpy_helper.from_array(v.astype(np.float32), k)
                           for k, v in consts.items()])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


def _x(*shape):
    return np.random.default_rng(1).standard_normal(shape).astype(np.float32) * 3 + 1


@pytest.mark.parametrize("beta", [True, False])
def test_layer_norm_subgraph_is_one_node(tmp_path, beta):
    model = _layer_norm_model(beta=beta)
    nodes = import_model(model).nodes
    assert [(n.op_type, n.domain) for n in nodes] == [("LayerNormalization", INTERNAL_DOMAIN)]
    assert nodes[0].attr("epsilon") == pytest.approx(1e-5)
    check_model(model, {"x": _x(2, 5, 16)}, tmp_path, atol=1e-5)


@pytest.mark.parametrize("variant", [dict(axes=(1,)), dict(gamma=False)])
def test_layer_norm_near_misses_stay(tmp_path, variant):
    """Another axis, or no scale to carry over: the nodes stay, the numbers still agree."""
    model = _layer_norm_model(**variant)
    assert "ReduceMean" in [n.op_type for n in import_model(model).nodes]
    check_model(model, {"x": _x(2, 5, 16)}, tmp_path, atol=1e-5)


def test_gelu_alone_is_one_kernel(tmp_path):
    model = _gelu_alone()
    assert [(n.op_type, n.domain) for n in import_model(model).nodes] == \
        [("Gelu", INTERNAL_DOMAIN)]
    check_model(model, {"x": _x(3, 40)}, tmp_path, atol=1e-5)
