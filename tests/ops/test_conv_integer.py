"""ConvInteger and QLinearConv against onnxruntime (onnx's reference where onnxruntime lacks
the case): odd sizes, pads, strides, dilations, groups (depthwise too), 1-D, auto_pad,
per-tensor and per-channel zero points and scales, int8 and uint8, weights constant or not,
and requantization that rounds half to even and saturates."""
from __future__ import annotations

import numpy as np
import onnxc
import pytest
from onnxc.errors import ModelError

from .harness import check_node, node_model

CASES = [
    ((1, 3, 11, 13), (5, 3, 3, 3), {"pads": [1, 1, 1, 1]}),
    ((2, 4, 9, 10), (6, 2, 3, 2), {"group": 2, "strides": [2, 1], "dilations": [1, 2],
                                   "pads": [0, 1, 2, 0]}),
    ((1, 6, 7, 7), (6, 1, 3, 3), {"group": 6, "pads": [1, 1, 1, 1]}),            # depthwise
    ((1, 5, 7, 9), (4, 5, 1, 1), {"strides": [2, 2]}),                           # pointwise
    ((1, 3, 20), (4, 3, 5), {"auto_pad": "SAME_UPPER", "strides": [3]}),        # 1-D
    ((1, 2, 10, 9), (3, 2, 4, 3), {"auto_pad": "SAME_LOWER", "strides": [2, 3]}),
]


def _ints(*shape, qtype=np.uint8, seed=0):
    info = np.iinfo(qtype)
    rng = np.random.default_rng(seed + sum(shape))
    return rng.integers(info.min, int(info.max) + 1, shape).astype(qtype)


@pytest.mark.parametrize("x,w,attrs", CASES)
@pytest.mark.parametrize("weights_constant", [False, True])
def test_conv_integer(tmp_path, x, w, attrs, weights_constant):
    inputs = [_ints(*x), _ints(*w, seed=1), np.array(131, np.uint8), np.array(7, np.uint8)]
    check_node(tmp_path, "ConvInteger", inputs, attrs,
               constant=(1, 2, 3) if weights_constant else (2, 3))


def test_conv_integer_without_zero_points(tmp_path):
    check_node(tmp_path, "ConvInteger", [_ints(1, 3, 6, 5), _ints(2, 3, 2, 2, seed=1)],
               {"pads": [1, 0, 0, 1]})


@pytest.mark.parametrize("qtype", [np.uint8, np.int8])
@pytest.mark.parametrize("weights_constant", [False, True])
def test_conv_integer_per_channel_zero_point(tmp_path, qtype, weights_constant):
    """onnxruntime takes a zero point per tensor only: onnx's reference checks these."""
    wzp = np.array([0, 3, -2, 5] if qtype == np.int8 else [0, 3, 200, 9], qtype)
    inputs = [_ints(1, 4, 7, 6, qtype=qtype), _ints(4, 2, 3, 3, qtype=qtype, seed=1),
              np.array(-5 if qtype == np.int8 else 100, qtype), wzp]
    check_node(tmp_path, "ConvInteger", inputs, {"group": 2, "pads": [1, 2, 0, 1]},
               constant=(1, 2, 3) if weights_constant else (2, 3), use="ref")


def _qlinear_inputs(x, w, xtype, wtype, per_channel, bias):
    m = w[0]
    w_scale = (np.linspace(0.002, 0.02, m) if per_channel else np.array(0.01)).astype(np.float32)
    w_zero = np.zeros(m, wtype) if per_channel else np.array(3, wtype)
    x_zero = np.array(-7 if xtype == np.int8 else 121, xtype)
    inputs = [_ints(*x, qtype=xtype), np.array(0.05, np.float32), x_zero,
              _ints(*w, qtype=wtype, seed=1), w_scale, w_zero, np.array(0.2, np.float32),
              np.array(-3 if xtype == np.int8 else 100, xtype)]
    if bias:
        inputs.append(np.random.default_rng(2).integers(-3000, 3000, m).astype(np.int32))
    return inputs


@pytest.mark.parametrize("x,w,attrs", CASES)
@pytest.mark.parametrize("xtype", [np.uint8, np.int8])
def test_qlinear_conv(tmp_path, x, w, attrs, xtype):
    inputs = _qlinear_inputs(x, w, xtype, np.int8, per_channel=True, bias=True)
    check_node(tmp_path, "QLinearConv", inputs, attrs, constant=(1, 2, 3, 4, 5, 6, 7, 8))


@pytest.mark.parametrize("wtype", [np.uint8, np.int8])
@pytest.mark.parametrize("bias", [False, True])
def test_qlinear_conv_per_tensor_runtime_weights(tmp_path, wtype, bias):
    inputs = _qlinear_inputs((1, 4, 9, 8), (6, 2, 3, 3), np.uint8, wtype, False, bias)
    check_node(tmp_path, "QLinearConv", inputs, {"group": 2, "pads": [1, 1, 1, 1],
                                                 "dilations": [2, 1]})


def test_qlinear_conv_rounds_half_to_even_and_saturates(tmp_path):
    """acc * 2.5 lands on ties (2.5 -> 2, 7.5 -> 8, -2.5 -> -2) and past both ends of uint8."""
    x = np.array([[[[129, 131, 127, 255, 0, 130]]]], np.uint8)
    w = np.array([[[[5]]]], np.uint8)
    one, half = np.array(1.0, np.float32), np.array(0.5, np.float32)
    inputs = [x, one, np.array(128, np.uint8), w, half, np.array(0, np.uint8), one,
              np.array(100, np.uint8)]
    got = check_node(tmp_path, "QLinearConv", inputs, constant=(1, 2, 3, 4, 5, 6, 7))
    np.testing.assert_array_equal(got[0].ravel(), [102, 108, 98, 255, 0, 105])


def test_per_channel_scale_of_wrong_size_is_refused(tmp_path):
    inputs = _qlinear_inputs((1, 2, 5, 5), (4, 2, 3, 3), np.uint8, np.uint8, False, False)
    inputs[4] = np.full(3, 0.01, np.float32)
    model = node_model("QLinearConv", inputs, constant=(1, 2, 3, 4, 5, 6, 7))
    with pytest.raises(ModelError, match="w_scale"):
        onnxc.compile(model, out_dir=tmp_path)
