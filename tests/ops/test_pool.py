"""MaxPool, AveragePool, LpPool, MaxUnpool, GlobalAveragePool, GlobalMaxPool against
onnxruntime."""
from __future__ import annotations

import numpy as np
import onnx
import onnxc
import pytest
from onnx import TensorProto, helper
from onnxc.errors import ModelError

from .harness import check_model, check_node, node_model, rand

# 2-D attribute sets: odd sizes, padding, strides, dilation, ceil_mode, auto_pad.
CASES_2D = {
    "plain": {"kernel_shape": [3, 3]},
    "torch_3x3_s2_p1": {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]},
    "asym_pads_ceil": {"kernel_shape": [3, 2], "strides": [2, 1], "pads": [1, 0, 1, 1],
                       "ceil_mode": 1},
    "same_upper": {"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "SAME_UPPER"},
    "same_lower": {"kernel_shape": [2, 4], "strides": [3, 2], "auto_pad": "SAME_LOWER"},
    "valid_ceil": {"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "VALID",
                   "ceil_mode": 1},
    "dilated": {"kernel_shape": [3, 3], "dilations": [2, 2], "pads": [2, 1, 2, 1]},
    "dilated_ceil": {"kernel_shape": [3, 2], "dilations": [2, 3], "strides": [2, 2],
                     "pads": [1, 1, 2, 1], "ceil_mode": 1},
    "kernel_2x2_s2": {"kernel_shape": [2, 2], "strides": [2, 2]},
}


@pytest.mark.parametrize("case", CASES_2D)
def test_maxpool_2d(tmp_path, case):
    check_node(tmp_path, "MaxPool", [rand(2, 3, 11, 9)], CASES_2D[case], opset=12)


@pytest.mark.parametrize("case", CASES_2D)
@pytest.mark.parametrize("count_include_pad", [0, 1])
def test_averagepool_2d(tmp_path, case, count_include_pad):
    attrs = CASES_2D[case] | {"count_include_pad": count_include_pad}
    check_node(tmp_path, "AveragePool", [rand(2, 3, 11, 9)], attrs, opset=19)


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
@pytest.mark.parametrize("attrs", [{"kernel_shape": [3], "strides": [2], "pads": [1, 1]},
                                   {"kernel_shape": [4], "dilations": [2], "pads": [0, 3],
                                    "ceil_mode": 1},
                                   {"kernel_shape": [2], "auto_pad": "SAME_UPPER"}])
def test_pool_1d(tmp_path, op, attrs):
    check_node(tmp_path, op, [rand(2, 3, 13)], attrs, opset=19)


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
@pytest.mark.parametrize("attrs", [{"kernel_shape": [3, 2, 3], "strides": [2, 2, 1],
                                    "pads": [1, 0, 1, 1, 1, 1]},
                                   {"kernel_shape": [2, 2, 2], "strides": [2, 2, 2],
                                    "ceil_mode": 1}])
def test_pool_3d(tmp_path, op, attrs):
    check_node(tmp_path, op, [rand(1, 2, 5, 6, 7)], attrs, opset=19)


@pytest.mark.parametrize("opset", [7, 8, 10, 11, 12, 22])
def test_maxpool_opsets(tmp_path, opset):
    attrs = {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}
    check_node(tmp_path, "MaxPool", [rand(1, 4, 9, 10)], attrs, opset=opset)


@pytest.mark.parametrize("opset", [7, 10, 11, 22])
def test_averagepool_opsets(tmp_path, opset):
    attrs = {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1],
             "count_include_pad": 1}
    check_node(tmp_path, "AveragePool", [rand(1, 4, 9, 10)], attrs, opset=opset)


def test_pool_ceil_mode_with_padding_opset22(tmp_path):
    # Opset 22 drops a last window that would start in the end padding, as onnxruntime does.
    attrs = {"kernel_shape": [3, 2], "strides": [2, 1], "pads": [1, 0, 2, 1], "ceil_mode": 1}
    check_node(tmp_path, "MaxPool", [rand(1, 2, 11, 9)], attrs, opset=22)
    check_node(tmp_path / "avg", "AveragePool", [rand(1, 2, 11, 9)], attrs, opset=22)


def test_pool_ceil_mode_declared_shape_before_opset22(tmp_path):
    # Before opset 22 onnx's inference keeps a last window starting in the end padding, which
    # onnxruntime (and torch) drop; an exporter's declared output shape wins.
    attrs = {"kernel_shape": [3, 2], "strides": [2, 1], "pads": [1, 0, 2, 1], "ceil_mode": 1}
    x = rand(1, 2, 11, 9)
    model = node_model("MaxPool", [x], attrs, opset=17)
    model.graph.output[0].type.tensor_type.shape.dim[2].dim_value = 6
    check_model(model, {"x0": x}, tmp_path)


@pytest.mark.parametrize("storage_order", [0, 1])
@pytest.mark.parametrize("shape,attrs", [
    ((2, 3, 9, 8), {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}),
    ((1, 2, 5, 6, 7), {"kernel_shape": [3, 2, 3], "strides": [2, 2, 1],
                       "pads": [1, 0, 1, 1, 1, 1]}),
])
def test_maxpool_indices(tmp_path, storage_order, shape, attrs):
    # Distinct values: the argmax position is unambiguous.
    x = np.random.default_rng(5).permutation(np.prod(shape)).reshape(shape).astype(np.float32)
    check_node(tmp_path, "MaxPool", [x], attrs | {"storage_order": storage_order}, n_outputs=2,
               opset=12)


@pytest.mark.parametrize("dtype", [np.int8, np.uint8])
def test_maxpool_int8(tmp_path, dtype):
    x = np.random.default_rng(2).integers(0, 100, (1, 3, 7, 8)).astype(dtype)
    attrs = {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}
    check_node(tmp_path, "MaxPool", [x], attrs, opset=12)


def test_maxpool_negative_inputs_with_padding(tmp_path):
    # Padding never takes part in a max: all-negative windows at the border stay negative.
    x = -np.abs(rand(1, 2, 6, 7)) - 1.0
    check_node(tmp_path, "MaxPool", [x], {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]})


# -- global pools --------------------------------------------------------------------------------

def test_global_average_pool_resnet_head(tmp_path):
    check_node(tmp_path, "GlobalAveragePool", [rand(1, 512, 7, 7)], {})


@pytest.mark.parametrize("op", ["GlobalAveragePool", "GlobalMaxPool"])
@pytest.mark.parametrize("shape", [(2, 3, 13), (2, 3, 5, 7), (1, 2, 3, 4, 5)])
def test_global_pools(tmp_path, op, shape):
    check_node(tmp_path, op, [rand(*shape)], {})


@pytest.mark.parametrize("op", ["GlobalAveragePool", "GlobalMaxPool"])
def test_global_pools_opset22(tmp_path, op):
    check_node(tmp_path, op, [rand(2, 5, 3, 3)], {}, opset=22)


# -- error paths ---------------------------------------------------------------------------------

def _compile(model, tmp_path):
    return onnxc.compile(model, out_dir=tmp_path, strict=True)


@pytest.mark.parametrize("attrs", [
    {"kernel_shape": [3]},                                    # 1 value for 2 spatial axes
    {"kernel_shape": [3, 3], "strides": [0, 1]},
    {"kernel_shape": [3, 3], "pads": [1, 1]},
    {"kernel_shape": [3, 3], "auto_pad": "SAME_MIDDLE"},
])
def test_pool_bad_attributes(tmp_path, attrs):
    model = node_model("MaxPool", [rand(1, 2, 7, 7)], attrs, opset=12)
    with pytest.raises(ModelError):
        _compile(model, tmp_path)


def test_pool_needs_kernel_shape(tmp_path):
    model = node_model("AveragePool", [rand(1, 2, 7, 7)], {}, opset=19)
    with pytest.raises(ModelError):
        _compile(model, tmp_path)


@pytest.mark.parametrize("attrs", [
    {"kernel_shape": [3, 3]},
    {"kernel_shape": [2, 3], "strides": [2, 1], "pads": [1, 0, 0, 1], "p": 3},
    {"kernel_shape": [3, 2], "dilations": [2, 1], "p": 1},
    {"kernel_shape": [3, 3], "auto_pad": "SAME_UPPER"},
])
def test_lp_pool(tmp_path, attrs):
    check_node(tmp_path, "LpPool", [rand(2, 3, 9, 8)], attrs, opset=18)


def test_lp_pool_1d(tmp_path):
    check_node(tmp_path, "LpPool", [rand(2, 3, 11)], {"kernel_shape": [4], "p": 2}, opset=18)


@pytest.mark.parametrize("attrs,size", [({"kernel_shape": [2, 2], "strides": [2, 2]}, 8),
                                        ({"kernel_shape": [3, 3], "strides": [2, 2]}, 9)])
def test_max_unpool_puts_maxima_back(tmp_path, attrs, size):
    """MaxPool (values and indices) then MaxUnpool, as a model exported from torch has it."""
    vi = helper.make_tensor_value_info
    nodes = [helper.make_node("MaxPool", ["x"], ["p", "i"], **attrs),
             helper.make_node("MaxUnpool", ["p", "i"], ["y"], **attrs)]
    graph = helper.make_graph(nodes, "unpool", [vi("x", TensorProto.FLOAT, [2, 3, size, size])],
                              [vi("y", TensorProto.FLOAT, None)])
    model = onnx.shape_inference.infer_shapes(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]))
    check_model(model, {"x": rand(2, 3, size, size)}, tmp_path)
