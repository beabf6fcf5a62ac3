"""block_channels: tensors between 1x1 and depthwise convolutions stored channels-blocked;
the depthwise tile runs along channels and the 1x1 tiles store whole vectors, with the
numbers of onnxruntime on both x86-64 targets."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnxc.loop.printer import program_str
from onnxc.lower.pipeline import compile_program
from onnxc.targets import get_target

from tests.ops.harness import check_model


def _block(channels=32, expanded=64, size=9, stride=1, residual=False, pool=False, batch=1):
    """x -> 1x1 (expand) -> Clip -> 3x3 depthwise -> Clip -> 1x1 (project) [-> + x] -> y;
    with pool, the expanded tensor also feeds an AveragePool (a kernel that cannot read it
    blocked)."""
    rng = np.random.default_rng(0)
    c, e = channels, expanded
    weights = {"w1": rng.standard_normal((e, c, 1, 1)) * 0.3,
               "wd": rng.standard_normal((e, 1, 3, 3)) * 0.3, "bd": rng.standard_normal(e),
               "w2": rng.standard_normal((c, e, 1, 1)) * 0.3, "lo": np.array(0.0),
               "hi": np.array(6.0)}
    out = (size + 2 - 3) // stride + 1
    nodes = [helper.make_node("Conv", ["x", "w1"], ["a"], name="expand"),
             helper.make_node("Clip", ["a", "lo", "hi"], ["a6"], name="clip_a"),
             helper.make_node("Conv", ["a6", "wd", "bd"], ["b"], group=e, pads=[1, 1, 1, 1],
                              strides=[stride, stride], name="dw"),
             helper.make_node("Clip", ["b", "lo", "hi"], ["b6"], name="clip_b"),
             helper.make_node("Conv", ["b6", "w2"], ["p"], name="project")]
    nodes.append(helper.make_node("Add", ["p", "x"], ["y"], name="residual") if residual
                 else helper.make_node("Relu", ["p"], ["y"], name="relu"))
    vi = helper.make_tensor_value_info
    outputs = [vi("y", TensorProto.FLOAT, [batch, c, out, out])]
    if pool:
        nodes.append(helper.make_node("AveragePool", ["a6"], ["z"], kernel_shape=[2, 2],
                                      name="pool"))
        outputs.append(vi("z", TensorProto.FLOAT, [batch, e, size - 1, size - 1]))
    g = helper.make_graph(nodes, "g", [vi("x", TensorProto.FLOAT, [batch, c, size, size])],
                          outputs,
                          [numpy_helper.from_array(v.astype(np.float32), k)
                           for k, v in weights.items()])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def _final(model, target="x86_64-avx512"):
    return program_str(compile_program(model, get_target(target))[1])


def test_depthwise_runs_along_channel_blocks():
    text = _final(_block())
    assert "c_wd_p0x16<16>[" in text and "t_dw_padded<16>[" in text   # whole-vector taps
    assert "<16:" not in text.split("kernel k_project")[0]   # expand: no strided stores


def test_unblockable_tensors_stay_nchw():
    text = _final(_block(pool=True))          # the pool reads the expanded tensor
    assert "t_dw_padded<16>[" not in text
    assert "t_dw_padded<16>[" not in _final(_block(channels=24, expanded=40))   # 40 % 16


@pytest.mark.parametrize("target", ["host", "x86_64"])
@pytest.mark.parametrize("shape", [dict(), dict(stride=2), dict(size=14, residual=True),
                                   dict(size=7, expanded=96, stride=2), dict(pool=True),
                                   dict(channels=24, expanded=48, size=11),
                                   dict(batch=3, size=6, stride=2, residual=False)])
def test_blocked_block_matches_onnxruntime(tmp_path, target, shape):
    model = _block(**shape)
    c, size = shape.get("channels", 32), shape.get("size", 9)
    x = np.random.default_rng(1).standard_normal((shape.get("batch", 1), c, size, size))
    x = x.astype(np.float32)
    check_model(model, {"x": x}, tmp_path, target=target)


def _basic_block(channels=32, size=10):
    """x -> 3x3 Conv -> Relu -> 3x3 Conv -> + x -> Relu -> y (a ResNet basic block): the
    tensor between the convolutions is blocked."""
    rng = np.random.default_rng(0)
    c = channels
    w1, w2 = (rng.standard_normal((c, c, 3, 3)).astype(np.float32) * 0.1 for _ in range(2))
    nodes = [helper.make_node("Conv", ["x", "w1"], ["a"], pads=[1, 1, 1, 1], name="conv1"),
             helper.make_node("Relu", ["a"], ["r"], name="relu1"),
             helper.make_node("Conv", ["r", "w2"], ["b"], pads=[1, 1, 1, 1], name="conv2"),
             helper.make_node("Add", ["b", "x"], ["s"], name="add"),
             helper.make_node("Relu", ["s"], ["y"], name="relu2")]
    vi = helper.make_tensor_value_info
    g = helper.make_graph(nodes, "g", [vi("x", TensorProto.FLOAT, [1, c, size, size])],
                          [vi("y", TensorProto.FLOAT, [1, c, size, size])],
                          [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2")])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("target", ["host", "x86_64"])
@pytest.mark.parametrize("channels,size", [(32, 10), (48, 7), (40, 9)])
def test_convolution_chain_blocked(tmp_path, target, channels, size):
    model = _basic_block(channels, size)
    if channels % 16 == 0:
        first = _final(model).split("kernel k_conv2 ")[0]
        assert "<16:" not in first          # conv1 stores whole vectors (blocked output)
    x = np.random.default_rng(1).standard_normal((1, channels, size, size)).astype(np.float32)
    check_model(model, {"x": x}, tmp_path, target=target)


def _conv_pool_chain(channels=32, size=14, pads=(0, 0, 0, 0), last_pool=True):
    """x -> 3x3 Conv -> Relu -> MaxPool 2x2 -> 3x3 Conv -> Relu [-> MaxPool] -> y."""
    rng = np.random.default_rng(0)
    c = channels
    w1 = rng.standard_normal((c, 3, 3, 3)).astype(np.float32) * 0.3
    w2 = rng.standard_normal((c, c, 3, 3)).astype(np.float32) * 0.1
    nodes = [helper.make_node("Conv", ["x", "w1"], ["a"], pads=[1, 1, 1, 1], name="conv1"),
             helper.make_node("Relu", ["a"], ["r"]),
             helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2],
                              pads=list(pads), name="pool1"),
             helper.make_node("Conv", ["p", "w2"], ["b"], pads=[1, 1, 1, 1], name="conv2"),
             helper.make_node("Relu", ["b"], ["y" if not last_pool else "r2"])]
    pooled = (size + pads[0] + pads[2] - 2) // 2 + 1
    out = pooled
    if last_pool:
        nodes.append(helper.make_node("MaxPool", ["r2"], ["y"], kernel_shape=[3, 3],
                                      strides=[2, 2], pads=[1, 1, 1, 1], name="pool2"))
        out = (pooled + 2 - 3) // 2 + 1
    vi = helper.make_tensor_value_info
    g = helper.make_graph(nodes, "g", [vi("x", TensorProto.FLOAT, [1, 3, size, size])],
                          [vi("y", TensorProto.FLOAT, [1, c, out, out])],
                          [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2")])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("target", ["host", "x86_64"])
@pytest.mark.parametrize("shape", [dict(), dict(size=13, pads=(1, 1, 1, 1)),
                                   dict(channels=48, size=9, last_pool=False)])
def test_max_pool_between_convolutions_blocked(tmp_path, target, shape):
    model = _conv_pool_chain(**shape)
    text = _final(model)
    assert "<16:" not in text.split("kernel k_pool1 ")[0]   # conv1 stores whole vectors
    size = shape.get("size", 14)
    x = np.random.default_rng(1).standard_normal((1, 3, size, size)).astype(np.float32)
    check_model(model, {"x": x}, tmp_path, target=target)
