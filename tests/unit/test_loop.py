"""Loop, unrolled by the frontend (compiler/frontend/control.py) when its iteration count is
known, against onnxruntime; runs whose trip count or conditions disagree with the count
compiled fail (the RunCheck the unrolling adds)."""
from __future__ import annotations

import numpy as np
import onnxc
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnxc.errors import RuntimeFailure, UnsupportedOps
from onnxc.frontend.control import inline_control_flow

from .test_control import run_both

F, I64, B = TensorProto.FLOAT, TensorProto.INT64, TensorProto.BOOL


def loop_body(limit=None, scan=True):
    """y_out = y * 0.5 + i; scan = y_out; cond_out = cond_in, or y_out < limit (while loop)."""
    nodes = [helper.make_node("Cast", ["i"], ["i_f"], to=F),
             helper.make_node("Mul", ["y_in", "half"], ["scaled"]),
             helper.make_node("Add", ["scaled", "i_f"], ["y_out"]),
             helper.make_node("Identity", ["y_out"], ["scan"])]
    if limit is None:
        nodes.append(helper.make_node("Identity", ["cond_in"], ["cond_out"]))
    else:
        nodes += [helper.make_node("ReduceMax", ["y_out"], ["top"], keepdims=0),
                  helper.make_node("Less", ["top", "limit"], ["cond_out"])]
    inits = [numpy_helper.from_array(np.array(0.5, np.float32), "half")]
    if limit is not None:
        inits.append(numpy_helper.from_array(np.array(limit, np.float32), "limit"))
    return helper.make_graph(
        nodes, "body",
        [helper.make_tensor_value_info("i", I64, []),
         helper.make_tensor_value_info("cond_in", B, []),
         helper.make_tensor_value_info("y_in", F, [3])],
        [helper.make_tensor_value_info("cond_out", B, []),
         helper.make_tensor_value_info("y_out", F, [3])] +
        ([helper.make_tensor_value_info("scan", F, [3])] if scan else []), inits)


def loop_model(trip="M", cond="c", steps=5, limit=None, scan=True):
    """A Loop over loop_body; trip/cond: a graph input name, a constant (int/bool) or ""."""
    inputs, inits, names = [helper.make_tensor_value_info("y", F, [3])], [], []
    for name, value, elem in (("M", trip, I64), ("c", cond, B)):
        if isinstance(value, str) and value:
            inputs.append(helper.make_tensor_value_info(value, elem, []))
        elif not isinstance(value, str):
            dtype = np.int64 if elem == I64 else np.bool_
            inits.append(numpy_helper.from_array(np.array(value, dtype), f"{name}_const"))
            value = f"{name}_const"
        names.append(value)
    outputs = [helper.make_tensor_value_info("y_final", F, [3])]
    if scan:
        outputs.append(helper.make_tensor_value_info("ys", F, [steps, 3]))
    node = helper.make_node("Loop", [*names, "y"], [o.name for o in outputs], name="lp",
                            body=loop_body(limit, scan))
    graph = helper.make_graph([node], "loop", inputs, outputs, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def feed(**values):
    out = {"y": np.array([0.25, -1.0, 2.0], np.float32)}
    for name, value in values.items():
        out[name] = np.array(value, np.int64 if name == "M" else np.bool_)
    return out


def test_constant_trip_count(tmp_path):
    run_both(loop_model(trip=4, cond="", steps=4), feed(), tmp_path)


def test_constant_trip_count_without_scan_outputs(tmp_path):
    run_both(loop_model(trip=3, cond="", scan=False), feed(), tmp_path)


def test_count_from_the_declared_scan_output(tmp_path):
    model = loop_model(steps=5)
    run_both(model, feed(M=5, c=True), tmp_path)
    lib = onnxc.compile(model, out_dir=tmp_path / "again", strict=True)
    for wrong in (feed(M=4, c=True), feed(M=6, c=True), feed(M=5, c=False)):
        with pytest.raises(RuntimeFailure, match=r"node 'lp/check' \(RunCheck\): the trip"):
            lib.run(None, wrong)


def test_while_loop_ending_on_its_condition(tmp_path):
    """y grows by about i each step; with limit 5 the condition ends the loop after step 4
    (of 0..4), so 5 iterations run under a trip count of 10, as declared."""
    model = loop_model(steps=5, limit=5.0)
    run_both(model, feed(M=10, c=True), tmp_path)
    lib = onnxc.compile(model, out_dir=tmp_path / "again", strict=True)
    with pytest.raises(RuntimeFailure, match="the trip count and conditions"):
        lib.run(None, feed(M=3, c=True))


def test_unrolled_graph_has_no_loop():
    model = inline_control_flow(loop_model(steps=5))
    ops = [n.op_type for n in model.graph.node]
    assert "Loop" not in ops and ops.count("RunCheck") == 1
    assert sum(n.name.startswith("lp/step") for n in model.graph.node) > 0


def test_loop_of_unknown_count_stays_unsupported(tmp_path):
    with pytest.raises(UnsupportedOps, match="lp"):
        onnxc.compile(loop_model(scan=False), out_dir=tmp_path)
