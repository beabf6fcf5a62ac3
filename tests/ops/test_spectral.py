"""DFT against onnx.reference (numpy's FFT): forward, inverse, one-sided, irfft, padding and
truncation by dft_length, each axis, and an axis given at run time."""
from __future__ import annotations

import numpy as np
import onnxc
import pytest
from onnx import TensorProto, helper
from onnxc.errors import ModelError

from .harness import check_model, node_model, rand

TOL = dict(rtol=1e-4, atol=1e-4)


def _check(tmp_path, inputs, attrs, opset, constant=()):
    model = node_model("DFT", inputs, attrs, constant=constant, opset=opset)
    feeds = {f"x{i}": a for i, a in enumerate(inputs) if a is not None and i not in constant}
    check_model(model, feeds, tmp_path, use="reference", **TOL)


@pytest.mark.parametrize("attrs,components", [({}, 1), ({}, 2), ({"inverse": 1}, 1),
                                              ({"inverse": 1}, 2), ({"onesided": 1}, 1)])
@pytest.mark.parametrize("axis", [1, 2])
def test_dft_opset17(tmp_path, attrs, components, axis):
    _check(tmp_path, [rand(2, 7, 6, components) * 3], dict(attrs, axis=axis), 17)


@pytest.mark.parametrize("length", [5, 9])
def test_dft_length_truncates_or_pads(tmp_path, length):
    _check(tmp_path, [rand(1, 7, 3, 2), np.array(length, np.int64)], {"axis": 1}, 17,
           constant=(1,))


def test_irfft_gives_a_real_signal(tmp_path):
    _check(tmp_path, [rand(2, 6, 4, 2)], {"axis": 1, "inverse": 1, "onesided": 1}, 17)


@pytest.mark.parametrize("axis", [1, 2, -2, -3])
def test_dft_axis_at_run_time(tmp_path, axis):
    _check(tmp_path, [rand(2, 5, 6, 1), None, np.array(axis, np.int64)], {}, 20)


def test_dft_rejects_a_non_signal_axis(tmp_path):
    model = node_model("DFT", [rand(2, 5, 1)], {"axis": 2}, opset=17)
    model.graph.output[0].CopyFrom(helper.make_tensor_value_info("y0", TensorProto.FLOAT,
                                                                 [2, 5, 2]))
    with pytest.raises(ModelError, match="not a signal axis|out of bounds"):
        onnxc.compile(model, out_dir=tmp_path)
