"""pad_in_place: a padded convolution's input is written by its producer straight into the
bordered buffer (no interior copy), unless that input is a model input or is also seen
through a view that does not end in its (H, W) plane."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnxc.lower.pipeline import compile_program
from onnxc.targets import get_target

from tests.ops.harness import check_model


def _model(extra_consumer=None):
    """x -> 1x1 Conv -> t -> 3x3 Conv (pads 1) -> y, and t -> MaxPool (pads 1) -> z; with
    extra_consumer, t is also flattened into a third output."""
    rng = np.random.default_rng(0)
    w1 = rng.standard_normal((6, 4, 1, 1)).astype(np.float32)
    w2 = rng.standard_normal((5, 6, 3, 3)).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w1"], ["t"], name="expand"),
             helper.make_node("Conv", ["t", "w2"], ["y"], pads=[1, 1, 1, 1], name="conv3x3"),
             helper.make_node("MaxPool", ["t"], ["z"], kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                              name="pool")]
    vi = helper.make_tensor_value_info
    outputs = [vi("y", TensorProto.FLOAT, [1, 5, 7, 9]), vi("z", TensorProto.FLOAT, [1, 6, 7, 9])]
    if extra_consumer:
        nodes.append(helper.make_node("Flatten", ["t"], ["f"], name="flat"))
        nodes.append(helper.make_node("Relu", ["f"], ["r"], name="relu"))
        outputs.append(vi("r", TensorProto.FLOAT, [1, 6 * 7 * 9]))
    g = helper.make_graph(nodes, "g", [vi("x", TensorProto.FLOAT, [1, 4, 7, 9])], outputs,
                          [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2")])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def _kernels(model, stage="pad-in-place"):
    seen = {}
    compile_program(model, get_target("x86_64"),
                    dump=lambda name, text: seen.setdefault(name, text))
    return [line.split()[1] for line in seen[stage].splitlines() if line.startswith("kernel")]


def test_producer_writes_into_the_padded_buffer(tmp_path):
    """The 1x1 convolution writes into the 3x3 one's padded input; the max pool's padded
    copy (another border value) now copies from there."""
    kernels = _kernels(_model())
    assert [k for k in kernels if "pad_copy" in k] == ["k_pool_pad_copy"]
    assert "k_conv3x3_pad_copy" in _kernels(_model(), "lower")
    assert any("pad_top" in k for k in kernels)          # the borders are still filled
    x = np.random.default_rng(1).standard_normal((1, 4, 7, 9)).astype(np.float32)
    check_model(_model(), {"x": x}, tmp_path)


@pytest.mark.parametrize("extra", [False, True])
def test_copy_stays_where_it_must(tmp_path, extra):
    model = _model(extra_consumer=extra)
    lowered = [k for k in _kernels(model, "lower") if "pad_copy" in k]
    kept = [k for k in _kernels(model) if "pad_copy" in k]
    assert len(lowered) == 2 and len(kept) == (2 if extra else 1)
    x = np.random.default_rng(1).standard_normal((1, 4, 7, 9)).astype(np.float32)
    check_model(model, {"x": x}, tmp_path)


def test_model_input_is_copied():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((5, 4, 3, 3)).astype(np.float32)
    vi = helper.make_tensor_value_info
    g = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])], "g",
                          [vi("x", TensorProto.FLOAT, [1, 4, 7, 9])],
                          [vi("y", TensorProto.FLOAT, [1, 5, 7, 9])],
                          [numpy_helper.from_array(w, "w")])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    assert [k for k in _kernels(model) if "pad_copy" in k]
