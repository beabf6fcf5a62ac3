"""Function ops without a lowering compile through their ONNX function body."""
from __future__ import annotations

import numpy as np
import onnxc
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator
from onnxc.frontend.functions import expand_functions

F = TensorProto.FLOAT


def causal_conv_model(activation="none", with_state=True):
    """CausalConvWithState (opset 27): a function of Concat, Conv, Slice (and SiLU)."""
    names = ["x", "w", "b"] + (["past"] if with_state else [])
    inputs = [helper.make_tensor_value_info("x", F, [2, 3, 5])]
    if with_state:
        inputs.append(helper.make_tensor_value_info("past", F, [2, 3, 2]))
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal((3, 1, 3)).astype(np.float32), "w"),
             numpy_helper.from_array(rng.standard_normal(3).astype(np.float32), "b")]
    graph = helper.make_graph(
        [helper.make_node("CausalConvWithState", names, ["y", "state"], name="conv",
                          activation=activation)], "ccs", inputs,
        [helper.make_tensor_value_info("y", F, [2, 3, 5]),
         helper.make_tensor_value_info("state", F, [2, 3, 2])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 27)])


@pytest.mark.parametrize("activation", ["none", "silu"])
@pytest.mark.parametrize("with_state", [True, False])
def test_function_op_matches_its_reference(tmp_path, activation, with_state):
    model = causal_conv_model(activation, with_state)
    rng = np.random.default_rng(1)
    feed = {"x": rng.standard_normal((2, 3, 5)).astype(np.float32)}
    if with_state:
        feed["past"] = rng.standard_normal((2, 3, 2)).astype(np.float32)
    got = onnxc.compile(model, out_dir=tmp_path, strict=True).run(None, feed)
    want = ReferenceEvaluator(model).run(None, feed)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)


def test_expansion_names_nodes_after_the_op_and_binds_attributes():
    expanded = expand_functions(causal_conv_model("silu"))
    ops = [n.op_type for n in expanded.graph.node]
    assert "CausalConvWithState" not in ops and "Conv" in ops
    assert all(n.name.startswith("conv/fn0/") for n in expanded.graph.node)


def test_ops_with_a_lowering_are_not_expanded():
    model = helper.make_model(helper.make_graph(
        [helper.make_node("Mish", ["x"], ["y"])], "g",   # a function op onnxc lowers itself
        [helper.make_tensor_value_info("x", F, [4])], [helper.make_tensor_value_info("y", F, [4])]),
        opset_imports=[helper.make_opsetid("", 18)])
    assert expand_functions(model) is model


def test_a_body_with_unsupported_ops_leaves_the_op_as_written(tmp_path):
    model = helper.make_model(helper.make_graph(
        [helper.make_node("Bernoulli", ["x"], ["y"], name="coin")], "g",   # RandomUniformLike
        [helper.make_tensor_value_info("x", F, [4])], [helper.make_tensor_value_info("y", F, [4])]),
        opset_imports=[helper.make_opsetid("", 22)])
    with pytest.raises(onnxc.UnsupportedOps) as info:
        onnxc.compile(model, out_dir=tmp_path)
    assert info.value.missing == {"Bernoulli": ["coin"]}
