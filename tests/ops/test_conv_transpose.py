"""ConvTranspose against onnxruntime: 1-D, 2-D and 3-D; strides, pads, dilations, groups,
output_padding, output_shape, auto_pad; the GEMM + col2im path, the 1x1 path (no col2im) and
the direct nest used when the column matrix is too large; and the errors it raises."""
from __future__ import annotations

import numpy as np
import onnxc
import pytest
from onnxc.ops import conv_transpose

from tests.ops.harness import check_node, node_model, rand

CASES = [
    # 1-D
    ((1, 3, 11), (3, 4, 3), {"strides": [2], "pads": [1, 2]}),
    ((2, 5, 7), (5, 2, 5), {"strides": [3], "dilations": [2], "output_padding": [1]}),
    # 2-D
    ((1, 3, 7, 9), (3, 5, 3, 3), {}),
    ((1, 4, 8, 7), (4, 6, 4, 4), {"strides": [2, 2], "pads": [1, 1, 1, 1]}),
    ((2, 6, 5, 6), (6, 2, 3, 2), {"group": 3, "strides": [2, 1], "dilations": [1, 2],
                                  "pads": [0, 1, 1, 0]}),
    ((1, 8, 6, 5), (8, 1, 3, 3), {"group": 8, "strides": [2, 2]}),              # depthwise
    ((1, 2, 5, 5), (2, 3, 3, 3), {"strides": [3, 2], "output_padding": [2, 1]}),
    ((1, 2, 5, 4), (2, 3, 3, 3), {"strides": [3, 2], "output_shape": [17, 10]}),  # odd totals
    ((1, 2, 5, 4), (2, 3, 4, 3), {"strides": [2, 3], "auto_pad": "SAME_UPPER"}),
    ((1, 2, 5, 4), (2, 3, 4, 3), {"strides": [2, 3], "auto_pad": "SAME_LOWER"}),
    ((1, 2, 5, 4), (2, 3, 3, 3), {"strides": [2, 2], "auto_pad": "SAME_UPPER",
                                  "output_shape": [10, 9]}),
    ((1, 2, 5, 4), (2, 3, 3, 2), {"strides": [2, 2], "auto_pad": "VALID"}),
    ((1, 16, 5, 7), (16, 8, 1, 1), {}),                              # 1x1: the GEMM only
    ((1, 4, 5, 5), (4, 3, 1, 1), {"strides": [2, 2]}),               # 1x1 with gaps
    ((1, 8, 6, 6), (8, 4, 2, 2), {"strides": [2, 2]}),               # taps never overlap
    ((1, 3, 4, 4), (3, 2, 3, 3), {"pads": [4, 2, 2, 4], "strides": [3, 3]}),  # pads cut deep
    ((1, 1, 1, 2), (1, 1, 2, 2), {"strides": [2, 2], "dilations": [2, 2],
                                  "pads": [1, 1, 1, 1]}),           # some outputs: bias only
    ((1, 20, 9, 13), (20, 12, 3, 3), {"strides": [2, 2], "pads": [1, 1, 1, 1],
                                      "output_padding": [1, 1]}),
    # 3-D
    ((1, 2, 3, 4, 5), (2, 3, 3, 3, 3), {"strides": [1, 2, 2], "pads": [1, 0, 1, 1, 1, 0]}),
    ((2, 4, 3, 3, 2), (4, 2, 2, 2, 2), {"group": 2, "strides": [2, 2, 2]}),
    ((1, 3, 2, 3, 3), (3, 2, 3, 2, 3), {"dilations": [2, 1, 1], "auto_pad": "SAME_LOWER",
                                        "strides": [1, 2, 1]}),
]


def _inputs(x, w, attrs, bias, dtype=np.float32):
    m = w[1] * attrs.get("group", 1)
    return [rand(*x, dtype=dtype), rand(*w, seed=1, dtype=dtype)] + \
        ([rand(m, seed=2, dtype=dtype)] if bias else [])


@pytest.mark.parametrize("x,w,attrs", CASES)
@pytest.mark.parametrize("bias", [False, True])
def test_conv_transpose(tmp_path, x, w, attrs, bias):
    check_node(tmp_path, "ConvTranspose", _inputs(x, w, attrs, bias), attrs, constant=(1, 2),
               atol=1e-4)


@pytest.mark.parametrize("x,w,attrs", CASES[::3] + [CASES[17]])
@pytest.mark.parametrize("constant", [(1, 2), ()])
def test_conv_transpose_direct(tmp_path, monkeypatch, x, w, attrs, constant):
    """No room for the column matrix: each output multiplies inputs by weights itself."""
    monkeypatch.setattr(conv_transpose, "COLUMN_LIMIT_BYTES", 0)
    check_node(tmp_path, "ConvTranspose", _inputs(x, w, attrs, True), attrs,
               constant=constant, atol=1e-4)


@pytest.mark.parametrize("x,w,attrs", [CASES[1], CASES[4], CASES[18]])
def test_conv_transpose_runtime_weights(tmp_path, x, w, attrs):
    check_node(tmp_path, "ConvTranspose", _inputs(x, w, attrs, True), attrs, atol=1e-4)


@pytest.mark.parametrize("x,w,attrs", [CASES[3], CASES[12], CASES[18]])
def test_conv_transpose_float64(tmp_path, x, w, attrs):
    """onnxruntime has no double ConvTranspose: the ONNX reference implementation checks."""
    check_node(tmp_path, "ConvTranspose", _inputs(x, w, attrs, True, np.float64), attrs,
               constant=(1, 2), rtol=1e-10, atol=1e-10, use="ref")


def test_conv_transpose_float16(tmp_path):
    """Half floats are stored as such and computed in float32 (lower/halfwidth.py)."""
    x, w, attrs = CASES[3]
    check_node(tmp_path, "ConvTranspose", _inputs(x, w, attrs, True, np.float16), attrs,
               constant=(1, 2), rtol=1e-2, atol=1e-2)


@pytest.mark.parametrize("opset", [7, 11])
def test_conv_transpose_older_opsets(tmp_path, opset):
    x, w, attrs = CASES[7]
    check_node(tmp_path, "ConvTranspose", _inputs(x, w, attrs, True), attrs, constant=(1, 2),
               opset=opset, atol=1e-4)


def test_conv_transpose_threads_agree(tmp_path):
    """Every output element is written by one iteration: 1 and 2 threads agree exactly."""
    inputs = _inputs((2, 32, 20, 20), (32, 16, 4, 4), {}, True)
    model = node_model("ConvTranspose", inputs, {"strides": [2, 2], "pads": [1, 1, 1, 1]},
                       constant=(1, 2))
    compiled = onnxc.compile(model, out_dir=tmp_path)
    outs = []
    for threads in (1, 2):
        compiled.set_num_threads(threads)
        outs.append(compiled.run(None, {"x0": inputs[0]})[0])
    np.testing.assert_array_equal(outs[0], outs[1])


ERRORS = [
    ((1, 2, 2, 2, 2, 2), (2, 1, 1, 1, 1, 1), {}, "1-D/2-D/3-D"),
    ((1, 2, 5), (2, 3, 3), {"kernel_shape": [2]}, "kernel_shape"),
    ((1, 2, 5), (2, 3, 3), {"auto_pad": "SAME"}, "unknown auto_pad"),
    ((1, 2, 5), (2, 3, 3), {"output_shape": [0]}, "output_shape must be at least 1"),
    ((1, 4, 5), (2, 3, 3), {"group": 2}, "do not match group=2"),
]


@pytest.mark.parametrize("x,w,attrs,match", ERRORS)
def test_conv_transpose_errors(tmp_path, x, w, attrs, match):
    model = node_model("ConvTranspose", [rand(*x), rand(*w, seed=1)], attrs, constant=(1,))
    with pytest.raises(onnxc.ModelError, match=match):
        onnxc.compile(model, out_dir=tmp_path)


def test_conv_transpose_bias_shape(tmp_path):
    model = node_model("ConvTranspose", [rand(1, 2, 5), rand(2, 3, 3, seed=1), rand(4, seed=2)],
                       constant=(1, 2))
    with pytest.raises(onnxc.ModelError, match="bias shape"):
        onnxc.compile(model, out_dir=tmp_path)


# Attributes that ONNX shape inference rejects before the lowering runs: checked on the
# lowering's own attribute resolution.
AXES_ERRORS = [
    ({"pads": [-1, 0]}, (1, 3, 5), "pads must be at least 0"),
    ({"strides": [1, 1]}, (1, 3, 7), "strides must have 1 values"),
    ({"dilations": [0]}, (1, 3, 7), "dilations must be at least 1"),
    ({"output_padding": [-1]}, (1, 3, 7), "output_padding must be at least 0"),
    ({"output_shape": [1, 3, 7]}, (1, 3, 7), "output_shape must have 1 values"),
    ({}, (1, 3, 8), "does not match the inferred shape"),
]


@pytest.mark.parametrize("attrs,ys,match", AXES_ERRORS)
def test_conv_transpose_attribute_errors(attrs, ys, match):
    args = {name: attrs.get(name) for name in (
        "dilations", "kernel_shape", "output_padding", "output_shape", "pads", "strides")}
    with pytest.raises(onnxc.ModelError, match=match):
        conv_transpose._axes((1, 2, 5), (2, 3, 3), ys, attrs.get("auto_pad", "NOTSET"), **args)
