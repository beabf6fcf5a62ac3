"""QuantizeLinear, DequantizeLinear and DynamicQuantizeLinear against onnxruntime: per tensor,
per axis and per block, 8- and 16-bit types, rounding half to even and saturation."""
from __future__ import annotations

import numpy as np
import onnxc
import pytest
from onnxc.errors import ModelError

from .harness import check_node, node_model, rand

ZP = {"uint8": np.uint8, "int8": np.int8, "uint16": np.uint16, "int16": np.int16}


def _x():
    x = rand(3, 4, 6) * 40
    x[0, 0, :4] = [0.5, 1.5, -2.5, 1000.0]     # ties to even, and saturation
    return x


@pytest.mark.parametrize("qtype", list(ZP))
def test_quantize_per_tensor(tmp_path, qtype):
    zp = np.array(3 if qtype.startswith("u") else -2, ZP[qtype])
    check_node(tmp_path, "QuantizeLinear", [_x(), np.array(0.5, np.float32), zp],
               constant=(1, 2), opset=21)


def test_quantize_without_zero_point_is_uint8(tmp_path):
    check_node(tmp_path, "QuantizeLinear", [_x(), np.array(0.25, np.float32)], constant=(1,),
               opset=13)


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_quantize_per_axis(tmp_path, axis):
    n = _x().shape[axis]
    scale = rand(n, low=0.1, high=1.0)
    zp = (np.arange(n) % 5).astype(np.uint8)
    check_node(tmp_path, "QuantizeLinear", [_x(), scale, zp], {"axis": axis},
               constant=(1, 2), opset=13)


def test_quantize_blocked(tmp_path):
    scale = rand(3, 2, 6, low=0.1, high=1.0)            # blocks of 2 along axis 1
    zp = np.zeros((3, 2, 6), np.int8)
    check_node(tmp_path, "QuantizeLinear", [_x(), scale, zp], {"axis": 1, "block_size": 2},
               constant=(1, 2), opset=21)


@pytest.mark.parametrize("qtype", ["uint8", "int8", "int32"])
def test_dequantize(tmp_path, qtype):
    info = np.iinfo(qtype)
    x = np.random.default_rng(0).integers(max(info.min, -200), min(info.max, 200),
                                          (3, 5)).astype(qtype)
    inputs = [x, np.array(0.125, np.float32)]
    if qtype != "int32":
        inputs.append(np.array(7, qtype))
    check_node(tmp_path, "DequantizeLinear", inputs, constant=(1, 2), opset=13)


def test_dequantize_per_axis(tmp_path):
    x = np.random.default_rng(1).integers(0, 255, (2, 4, 3)).astype(np.uint8)
    check_node(tmp_path, "DequantizeLinear", [x, rand(4, low=0.1, high=2.0),
                                              np.arange(4, dtype=np.uint8)],
               {"axis": 1}, constant=(1, 2), opset=13)


@pytest.mark.parametrize("shape", [(5, 7), (1, 33)])
def test_dynamic_quantize(tmp_path, shape):
    check_node(tmp_path, "DynamicQuantizeLinear", [rand(*shape) * 3], n_outputs=3)


def test_quantize_scale_shape_must_match_axis(tmp_path):
    model = node_model("QuantizeLinear", [_x(), rand(5, low=0.1, high=1.0)], {"axis": 1},
                       constant=(1,), opset=13)
    with pytest.raises(ModelError, match="does not match axis"):
        onnxc.compile(model, out_dir=tmp_path)


def _ints(*shape, qtype=np.uint8, seed=0):
    info = np.iinfo(qtype)
    return np.random.default_rng(seed).integers(info.min, info.max, shape).astype(qtype)


@pytest.mark.parametrize("qtype", [np.uint8, np.int8])
@pytest.mark.parametrize("shapes", [((5, 7), (7, 3)), ((2, 4, 9), (9, 6))])
def test_matmul_integer(tmp_path, qtype, shapes):
    a, b = _ints(*shapes[0], qtype=qtype), _ints(*shapes[1], qtype=qtype, seed=1)
    zp = np.array(3, qtype)
    check_node(tmp_path, "MatMulInteger", [a, b, zp, zp], constant=(2, 3))


@pytest.mark.parametrize("qtype", [np.uint8, np.int8])
def test_qlinear_matmul(tmp_path, qtype):
    a, b = _ints(3, 5, 7, qtype=qtype), _ints(7, 4, qtype=qtype, seed=1)
    s = [np.array(v, np.float32) for v in (0.02, 0.03, 0.5)]
    zp = [np.array(v, qtype) for v in (1, 2, 3)]
    check_node(tmp_path, "QLinearMatMul", [a, s[0], zp[0], b, s[1], zp[1], s[2], zp[2]],
               constant=(1, 2, 4, 5, 6, 7))


def test_matmul_integer_rejects_per_row_zero_points(tmp_path):
    model = node_model("MatMulInteger", [_ints(4, 3), _ints(3, 2), np.arange(4, dtype=np.uint8)],
                       constant=(2,))
    with pytest.raises(ModelError, match="per-tensor"):
        onnxc.compile(model, out_dir=tmp_path)
