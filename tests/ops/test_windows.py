"""HannWindow, HammingWindow, BlackmanWindow against onnx.reference."""
from __future__ import annotations

import numpy as np
import onnxc
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator
from onnxc.errors import RuntimeFailure

from .harness import assert_close

OPS = ["HannWindow", "HammingWindow", "BlackmanWindow"]


def window_model(op, size, periodic, runtime, dtype=TensorProto.FLOAT):
    inputs, inits = [], []
    if runtime:
        inputs.append(helper.make_tensor_value_info("n", TensorProto.INT64, []))
    else:
        inits.append(numpy_helper.from_array(np.array(size, np.int64), "n"))
    node = helper.make_node(op, ["n"], ["w"], name="win", periodic=periodic,
                            output_datatype=dtype)
    out = helper.make_tensor_value_info("w", dtype, [size])
    graph = helper.make_graph([node], "win", inputs, [out], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("periodic", [0, 1])
@pytest.mark.parametrize("size, runtime", [(10, False), (7, True), (1, False), (2, True)])
def test_window(tmp_path, op, periodic, size, runtime):
    model = window_model(op, size, periodic, runtime)
    feed = {"n": np.array(size, np.int64)} if runtime else {}
    (got,) = onnxc.compile(model, out_dir=tmp_path, strict=True).run(None, feed)
    (want,) = ReferenceEvaluator(model).run(None, feed)
    assert_close(got, want, rtol=1e-6, atol=1e-7, what=op)


def test_window_double(tmp_path):
    model = window_model("HannWindow", 16, 1, False, TensorProto.DOUBLE)
    (got,) = onnxc.compile(model, out_dir=tmp_path).run(None, {})
    np.testing.assert_allclose(got, np.hanning(17)[:16], rtol=1e-12, atol=1e-15)


def test_window_size_at_run_time_must_be_the_declared_one(tmp_path):
    lib = onnxc.compile(window_model("BlackmanWindow", 8, 1, True), out_dir=tmp_path)
    with pytest.raises(RuntimeFailure, match=r"node 'win' \(BlackmanWindow\): the size input"):
        lib.run(None, {"n": np.array(9, np.int64)})

