"""fuse_epilogues: activations and residual adds join their Conv/Gemm/MatMul, and the
numbers stay those of onnxruntime (fused in the register tile, or applied after)."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnxc.frontend import import_model
from onnxc.graph.fuse import EPILOGUE_ATTR
from onnxc.loop.printer import program_str
from onnxc.lower.pipeline import compile_program
from onnxc.targets import get_target

from tests.ops.harness import check_model


def _conv_block(activation_nodes, residual=True, channels=8, size=(9, 11)):
    """x -> Conv -> Add(x) -> activations -> y, with a second Conv producing the residual
    after the first one in node order (as torch exports a ResNet downsample)."""
    rng = np.random.default_rng(0)
    c = channels
    w1 = rng.standard_normal((c, c, 3, 3)).astype(np.float32) * 0.2
    w2 = rng.standard_normal((c, c, 1, 1)).astype(np.float32) * 0.2
    nodes = [helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1], name="conv_a"),
             helper.make_node("Conv", ["x", "w2"], ["c2"], name="conv_down")]
    last = "c1"
    if residual:
        nodes.append(helper.make_node("Add", ["c1", "c2"], ["sum"], name="residual"))
        last = "sum"
    for i, (op, inputs, attrs) in enumerate(activation_nodes):
        out = "y" if i == len(activation_nodes) - 1 else f"a{i}"
        nodes.append(helper.make_node(op, [last] + inputs, [out], name=f"act{i}", **attrs))
        last = out
    inits = [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2"),
             numpy_helper.from_array(np.array(0.0, np.float32), "lo"),
             numpy_helper.from_array(np.array(6.0, np.float32), "hi")]
    vi = helper.make_tensor_value_info
    g = helper.make_graph(nodes, "block", [vi("x", TensorProto.FLOAT, [1, c, *size])],
                          [vi("y", TensorProto.FLOAT, [1, c, *size])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


CHAINS = [[("Relu", [], {})], [("Clip", ["lo", "hi"], {})], [("LeakyRelu", [], {"alpha": 0.1})],
          [("HardSwish", [], {})], [("Sigmoid", [], {}), ("Relu", [], {})]]


@pytest.mark.parametrize("chain", CHAINS, ids=lambda c: "-".join(op for op, _, _ in c))
def test_residual_and_activation_fuse_into_conv(tmp_path, chain):
    model = _conv_block(chain)
    g = import_model(model)
    fused = [n for n in g.nodes if n.attr(EPILOGUE_ATTR)]
    assert len(fused) == 1 and fused[0].name == "conv_a"
    assert [n.name for n in g.nodes] == ["conv_down", "conv_a"]   # after its residual
    x = np.random.default_rng(1).standard_normal((1, 8, 9, 11)).astype(np.float32)
    check_model(model, {"x": x}, tmp_path, atol=1e-5)


def test_epilogue_in_a_tile_along_output_channels(tmp_path):
    """40 channels on a 5x7 map: the 3x3 convolution's tile runs along output channels (its
    rows fill the vectors better than 7 columns), so the residual is read and the result
    written across the output's rows, with a partial vector for the last 8 channels."""
    model = _conv_block([("Relu", [], {})], channels=40, size=(5, 7))
    text = program_str(compile_program(model, get_target("x86_64-avx512"))[1])
    assert "<16:35>[" in text and "<8:35>[" in text     # strided tile stores, 35 = 5 * 7
    x = np.random.default_rng(1).standard_normal((1, 40, 5, 7)).astype(np.float32)
    check_model(model, {"x": x}, tmp_path, atol=1e-5)


def test_epilogue_lands_in_the_tile_copy():
    text = program_str(compile_program(_conv_block([("Relu", [], {})]), get_target("host"))[1])
    assert "Relu" not in [line.split()[3] for line in text.splitlines()
                          if line.startswith("kernel")]
    assert "max(" in text and "acc" in text


def test_a_second_consumer_blocks_fusion():
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((4, 6)).astype(np.float32), "w")
    nodes = [helper.make_node("MatMul", ["x", "w"], ["m"]), helper.make_node("Relu", ["m"], ["y"]),
             helper.make_node("Neg", ["m"], ["z"])]
    vi = helper.make_tensor_value_info
    g = helper.make_graph(nodes, "g", [vi("x", TensorProto.FLOAT, [3, 4])],
                          [vi("y", TensorProto.FLOAT, [3, 6]), vi("z", TensorProto.FLOAT, [3, 6])],
                          [w])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    assert not any(n.attr(EPILOGUE_ATTR) for n in import_model(model).nodes)


def test_matmul_bias_row_and_gelu_free_chain(tmp_path):
    """MatMul + Add(bias row) + Relu: the broadcast bias joins the tile too."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal((32, 40)).astype(np.float32), "w"),
             numpy_helper.from_array(rng.standard_normal(40).astype(np.float32), "b")]
    nodes = [helper.make_node("MatMul", ["x", "w"], ["m"]),
             helper.make_node("Add", ["m", "b"], ["s"]), helper.make_node("Relu", ["s"], ["y"])]
    vi = helper.make_tensor_value_info
    g = helper.make_graph(nodes, "g", [vi("x", TensorProto.FLOAT, [2, 17, 32])],
                          [vi("y", TensorProto.FLOAT, [2, 17, 40])], inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    assert len(import_model(model).nodes) == 1
    x = rng.standard_normal((2, 17, 32)).astype(np.float32)
    check_model(model, {"x": x}, tmp_path, atol=1e-4)


SQRT2 = float(np.sqrt(2.0))


def _gelu_model(sqrt2=SQRT2, half=0.5, extra_user=False, scale=None):
    """MatMul + bias, then torch's exact GELU subgraph: 0.5 * (m * (erf(m / sqrt 2) + 1)); with
    scale, the MatMul is divided by a constant first (attention's 1/sqrt(d))."""
    rng = np.random.default_rng(0)
    consts = {"w": rng.standard_normal((24, 36)), "b": rng.standard_normal(36),
              "r2": np.array(sqrt2), "one": np.array(1.0), "half": np.array(half),
              "d": np.array(scale or 1.0)}
    nodes = [helper.make_node("MatMul", ["x", "w"], ["m0"]),
             helper.make_node("Add", ["m0", "b"], ["ms" if scale else "m"])]
    if scale:
        nodes.append(helper.make_node("Div", ["ms", "d"], ["m"], name="scale"))
    nodes += [helper.make_node("Div", ["m", "r2"], ["q"], name="gelu_div"),
              helper.make_node("Erf", ["q"], ["e"], name="gelu_erf"),
              helper.make_node("Add", ["e", "one"], ["e1"], name="gelu_add"),
              helper.make_node("Mul", ["m", "e1"], ["p"], name="gelu_mul"),
              helper.make_node("Mul", ["p", "half"], ["y"], name="gelu_half")]
    vi = helper.make_tensor_value_info
    outputs = [vi("y", TensorProto.FLOAT, [5, 36])]
    if extra_user:
        outputs.append(vi("e", TensorProto.FLOAT, [5, 36]))
    g = helper.make_graph(nodes, "g", [vi("x", TensorProto.FLOAT, [5, 24])], outputs,
                          [numpy_helper.from_array(v.astype(np.float32), k)
                           for k, v in consts.items()])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("scale", [None, 8.0])
def test_gelu_subgraph_and_scale_fuse_into_the_matmul(tmp_path, scale):
    model = _gelu_model(scale=scale)
    nodes = import_model(model).nodes
    assert [n.op_type for n in nodes] == ["MatMul"]
    steps = [s[0] for s in nodes[0].attr(EPILOGUE_ATTR)[1]]
    assert steps == ["Add"] + (["Div"] if scale else []) + ["Gelu"]
    x = np.random.default_rng(1).standard_normal((5, 24)).astype(np.float32)
    check_model(model, {"x": x}, tmp_path, atol=1e-5)


@pytest.mark.parametrize("variant", [dict(sqrt2=1.5), dict(half=0.25), dict(extra_user=True)])
def test_near_gelu_subgraphs_stay_apart(tmp_path, variant):
    """Another constant, or an intermediate that is also an output: not GELU, not fused."""
    model = _gelu_model(**variant)
    assert "Erf" in [n.op_type for n in import_model(model).nodes]
    x = np.random.default_rng(1).standard_normal((5, 24)).astype(np.float32)
    check_model(model, {"x": x}, tmp_path, atol=1e-5)
