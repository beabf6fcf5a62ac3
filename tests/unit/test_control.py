"""If and Scan, inlined by the frontend (compiler/frontend/control.py), against onnxruntime."""
from __future__ import annotations

import numpy as np
import onnx
import onnxc
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

F = TensorProto.FLOAT


def run_both(model, feed, tmp_path):
    got = onnxc.compile(model, out_dir=tmp_path, strict=True).run(None, feed)
    want = ort.InferenceSession(model.SerializeToString(),
                                providers=["CPUExecutionProvider"]).run(None, feed)
    for g, w in zip(got, want):
        assert g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)
    return got


def branch(name, nodes, outputs, inits=()):
    return helper.make_graph(nodes, name, [], outputs, list(inits))


def if_model(then_shape=(2, 3), nested=False):
    """y = x * 2 + local constant if c, else (x - outer w) (or a nested If on c2)."""
    then_g = branch("then", [
        helper.make_node("Mul", ["x", "two"], ["t0"]),
        helper.make_node("Add", ["t0", "bias"], ["t_out"])],
        [helper.make_tensor_value_info("t_out", F, list(then_shape))],
        [numpy_helper.from_array(np.full((2, 3), 2, np.float32), "two"),
         numpy_helper.from_array(np.arange(6, dtype=np.float32).reshape(2, 3), "bias")])
    if nested:
        inner = helper.make_node(
            "If", ["c2"], ["e_out"],
            then_branch=branch("in_then", [helper.make_node("Neg", ["x"], ["n_out"])],
                               [helper.make_tensor_value_info("n_out", F, [2, 3])]),
            else_branch=branch("in_else", [helper.make_node("Sub", ["x", "w"], ["s_out"])],
                               [helper.make_tensor_value_info("s_out", F, [2, 3])]))
        else_g = branch("else", [inner], [helper.make_tensor_value_info("e_out", F, [2, 3])])
    else:
        else_g = branch("else", [helper.make_node("Sub", ["x", "w"], ["e_out"])],
                        [helper.make_tensor_value_info("e_out", F, [2, 3])])
    inputs = [helper.make_tensor_value_info("c", TensorProto.BOOL, [1]),
              helper.make_tensor_value_info("x", F, [2, 3])]
    if nested:
        inputs.append(helper.make_tensor_value_info("c2", TensorProto.BOOL, []))
    graph = helper.make_graph(
        [helper.make_node("If", ["c"], ["y"], name="choose", then_branch=then_g,
                          else_branch=else_g)], "if", inputs,
        [helper.make_tensor_value_info("y", F, [2, 3])],
        [numpy_helper.from_array(np.full((2, 3), 0.5, np.float32), "w")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("cond", [True, False])
def test_if_selects_the_branch(tmp_path, cond):
    x = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
    run_both(if_model(), {"c": np.array([cond]), "x": x}, tmp_path)


@pytest.mark.parametrize("cond, cond2", [(True, False), (False, True), (False, False)])
def test_nested_if(tmp_path, cond, cond2):
    x = np.random.default_rng(1).standard_normal((2, 3)).astype(np.float32)
    run_both(if_model(nested=True), {"c": np.array([cond]), "x": x, "c2": np.array(cond2)},
             tmp_path)


def test_if_with_branches_of_other_shapes_stays_unsupported(tmp_path):
    with pytest.raises(onnxc.UnsupportedOps) as info:
        onnxc.compile(if_model(then_shape=(3, 2)), out_dir=tmp_path)
    assert info.value.missing == {"If": ["choose"]}


def scan_model(opset=17, in_axis=0, in_dir=0, out_axis=0, out_dir=0):
    """A running sum (state) over the rows of x, and each step's (state * y_row) out."""
    body = helper.make_graph(
        [helper.make_node("Add", ["s_in", "row"], ["s_out"]),
         helper.make_node("Mul", ["s_out", "other"], ["scan_out"])], "body",
        [helper.make_tensor_value_info("s_in", F, [3]),
         helper.make_tensor_value_info("row", F, [3]),
         helper.make_tensor_value_info("other", F, [3])],
        [helper.make_tensor_value_info("s_out", F, [3]),
         helper.make_tensor_value_info("scan_out", F, [3])])
    x_shape = [4, 3] if in_axis == 0 else [3, 4]
    out_shape = [4, 3] if out_axis == 0 else [3, 4]
    node = helper.make_node("Scan", ["s0", "x", "y"], ["s_final", "ys"], name="scan", body=body,
                            num_scan_inputs=2, scan_input_axes=[in_axis, in_axis],
                            scan_input_directions=[in_dir, 0], scan_output_axes=[out_axis],
                            scan_output_directions=[out_dir])
    graph = helper.make_graph(
        [node], "scan", [helper.make_tensor_value_info("s0", F, [3]),
                         helper.make_tensor_value_info("x", F, x_shape),
                         helper.make_tensor_value_info("y", F, x_shape)],
        [helper.make_tensor_value_info("s_final", F, [3]),
         helper.make_tensor_value_info("ys", F, out_shape)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


@pytest.mark.parametrize("in_axis, in_dir, out_axis, out_dir",
                         [(0, 0, 0, 0), (0, 1, 0, 0), (1, 0, 1, 1), (1, 1, 0, 1)])
def test_scan_unrolled(tmp_path, in_axis, in_dir, out_axis, out_dir):
    model = scan_model(in_axis=in_axis, in_dir=in_dir, out_axis=out_axis, out_dir=out_dir)
    rng = np.random.default_rng(2)
    shape = (4, 3) if in_axis == 0 else (3, 4)
    feed = {"s0": rng.standard_normal(3).astype(np.float32),
            "x": rng.standard_normal(shape).astype(np.float32),
            "y": rng.standard_normal(shape).astype(np.float32)}
    run_both(model, feed, tmp_path)


def test_scan_opset_8_is_not_unrolled(tmp_path):
    model = scan_model()
    model.opset_import[0].version = 8
    scan = model.graph.node[0]
    del scan.attribute[:]   # Scan-8's attributes: a batch axis, sequence_lens first
    scan.attribute.append(helper.make_attribute("body", scan_model().graph.node[0].attribute[0].g))
    scan.attribute.append(helper.make_attribute("num_scan_inputs", 2))
    scan.input.insert(0, "")
    with pytest.raises(onnxc.OnnxcError):
        onnxc.compile(model, out_dir=tmp_path)


def test_models_without_control_flow_are_untouched():
    from onnxc.frontend.control import inline_control_flow
    model = helper.make_model(helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])], "g",
        [helper.make_tensor_value_info("x", F, [2])], [helper.make_tensor_value_info("y", F, [2])]))
    assert inline_control_flow(model) is model
    assert isinstance(model, onnx.ModelProto)
