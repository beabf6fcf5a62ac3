"""DeformConv against onnxruntime (and onnx's reference): odd sizes, pads, strides,
dilations, groups, offset groups, mask and bias, offsets that move taps past the image (by a
fraction of a pixel and by far), float32 and float64, inputs constant or not."""
from __future__ import annotations

import numpy as np
import onnxc
import pytest
from onnxc.errors import ModelError

from .harness import check_node, node_model, rand

# x shape, w shape, attributes (kernel_shape from w), output size
CASES = [
    ((1, 1, 5, 6), (1, 1, 2, 2), {}, (4, 5)),
    ((2, 3, 7, 9), (4, 3, 3, 3), {"pads": [1, 1, 1, 1]}, (7, 9)),
    ((1, 4, 9, 8), (6, 2, 3, 2), {"group": 2, "offset_group": 2, "strides": [2, 1],
                                  "dilations": [1, 2], "pads": [0, 1, 2, 0]}, (5, 7)),
    ((1, 6, 7, 7), (6, 1, 3, 3), {"group": 6, "offset_group": 3, "pads": [1, 1, 1, 1]},
     (7, 7)),
    ((1, 4, 6, 11), (5, 4, 1, 3), {"offset_group": 4, "strides": [2, 3]}, (3, 3)),
]


def _inputs(x, w, attrs, out, mask, bias, spread=1.5, dtype=np.float32):
    og = attrs.get("offset_group", 1)
    taps = og * w[2] * w[3]
    inputs = [rand(*x, dtype=dtype), rand(*w, seed=1, dtype=dtype),
              rand(x[0], 2 * taps, *out, seed=2, dtype=dtype) * spread,
              rand(w[0], seed=3, dtype=dtype) if bias else None,
              rand(x[0], taps, *out, seed=4, dtype=dtype, low=0.0, high=1.0) if mask else None]
    return inputs, dict(attrs, kernel_shape=list(w[2:]))


@pytest.mark.parametrize("x,w,attrs,out", CASES)
@pytest.mark.parametrize("mask,bias", [(False, False), (True, True)])
def test_deform_conv(tmp_path, x, w, attrs, out, mask, bias):
    inputs, attrs = _inputs(x, w, attrs, out, mask, bias)
    check_node(tmp_path, "DeformConv", inputs, attrs, opset=19, atol=1e-4)


@pytest.mark.parametrize("use", ["ort", "ref"])
def test_deform_conv_constant_weights_mask_only(tmp_path, use):
    inputs, attrs = _inputs((1, 4, 6, 7), (4, 2, 3, 3), {"group": 2, "offset_group": 2,
                                                         "pads": [1, 1, 1, 1]}, (6, 7),
                            mask=True, bias=False)
    check_node(tmp_path, "DeformConv", inputs, attrs, constant=(1,), opset=19, atol=1e-4,
               use=use)


def test_deform_conv_offsets_far_outside(tmp_path):
    """Taps pushed far past every border (and some just past one) read zeros."""
    inputs, attrs = _inputs((1, 2, 5, 5), (3, 2, 3, 3), {"pads": [1, 1, 1, 1]}, (5, 5),
                            mask=True, bias=True)
    offset = inputs[2]
    offset[0, ::4] = 1e4
    offset[0, 1::4] = -3e7
    offset[0, 2::8] = -0.6                                   # just past the top or left edge
    check_node(tmp_path, "DeformConv", inputs, attrs, opset=19, atol=1e-4)


def test_deform_conv_float64(tmp_path):
    """Against onnxruntime: onnx's reference samples double data with float32 precision."""
    inputs, attrs = _inputs((1, 2, 6, 5), (3, 2, 2, 3), {"pads": [1, 0, 0, 1]}, (6, 4),
                            mask=True, bias=True, dtype=np.float64)
    check_node(tmp_path, "DeformConv", inputs, attrs, opset=19, atol=1e-12, rtol=1e-12)


def test_deform_conv_offset_of_wrong_shape_is_refused(tmp_path):
    inputs, attrs = _inputs((1, 2, 5, 5), (3, 2, 3, 3), {}, (3, 3), mask=False, bias=False)
    inputs[2] = inputs[2][:, :16]
    model = node_model("DeformConv", inputs, attrs, opset=19)
    with pytest.raises(ModelError, match="offset"):
        onnxc.compile(model, out_dir=tmp_path)
