"""NonMaxSuppression against onnxruntime on random boxes."""
from __future__ import annotations

import numpy as np
import onnxc
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnxc.errors import ModelError

from tests.backends import skip_on_gpu


def nms_model(batches, classes, n, center=0, with_floor=True):
    names = ["boxes", "scores", "max_out", "iou", "floor"][:5 if with_floor else 4]
    inputs = [helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [batches, n, 4]),
              helper.make_tensor_value_info("scores", TensorProto.FLOAT, [batches, classes, n]),
              helper.make_tensor_value_info("max_out", TensorProto.INT64, [1]),
              helper.make_tensor_value_info("iou", TensorProto.FLOAT, [1])]
    if with_floor:
        inputs.append(helper.make_tensor_value_info("floor", TensorProto.FLOAT, [1]))
    graph = helper.make_graph(
        [helper.make_node("NonMaxSuppression", names, ["sel"], name="nms",
                          center_point_box=center)], "nms", inputs,
        [helper.make_tensor_value_info("sel", TensorProto.INT64, [None, 3])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])


def random_boxes(rng, batches, n, center):
    corners = rng.random((batches, n, 2)) * 10
    sizes = rng.random((batches, n, 2)) * 4 + 0.5
    if center:
        return np.concatenate([corners, sizes], axis=2).astype(np.float32)
    boxes = np.concatenate([corners, corners + sizes], axis=2)
    flip = rng.random((batches, n)) < 0.3          # corners given in either order
    boxes[flip] = boxes[flip][:, [2, 3, 0, 1]]
    return boxes.astype(np.float32)


@pytest.mark.parametrize("center", [0, 1])
@pytest.mark.parametrize("batches, classes, n, limit, iou, floor", [
    (1, 1, 12, 5, 0.5, 0.2), (2, 3, 20, 20, 0.3, 0.0), (1, 2, 16, 3, 0.0, 0.6),
    (2, 1, 9, 9, 1.0, None)])
def test_nms_matches_onnxruntime(tmp_path, center, batches, classes, n, limit, iou, floor):
    rng = np.random.default_rng(batches * 7 + n)
    model = nms_model(batches, classes, n, center, floor is not None)
    scores = rng.random((batches, classes, n)).astype(np.float32)
    scores[..., :3] = 0.5                       # ties: the lower index goes first
    feed = {"boxes": random_boxes(rng, batches, n, center), "scores": scores,
            "max_out": np.array([limit], np.int64), "iou": np.array([iou], np.float32)}
    if floor is not None:
        feed["floor"] = np.array([floor], np.float32)
    lib = onnxc.compile(model, out_dir=tmp_path, strict=True)
    (got,) = lib.run(None, feed)
    (want,) = ort.InferenceSession(model.SerializeToString(),
                                   providers=["CPUExecutionProvider"]).run(None, feed)
    np.testing.assert_array_equal(got, want)
    (none,) = lib.run(None, dict(feed, max_out=np.array([0], np.int64)))
    assert none.shape == (0, 3)


def test_nms_rejects_mismatched_inputs(tmp_path):
    model = nms_model(1, 1, 5)
    model.graph.input[1].type.tensor_type.shape.dim[2].dim_value = 6
    with pytest.raises(ModelError, match="must be"):
        onnxc.compile(model, out_dir=tmp_path)


def test_nms_over_a_symbolic_box_count(tmp_path, backend):
    """One library for every box count: its per-box scratch lives in the arena, sized by the
    count; the selected indices feed a Gather of the boxes."""
    skip_on_gpu(backend, "compile static shapes only: a dynamic model needs --dim values")
    nodes = [helper.make_node("NonMaxSuppression", ["boxes", "scores", "keep", "iou", "floor"],
                              ["selected"]),
             helper.make_node("Gather", ["selected", "two"], ["index"], axis=1),
             helper.make_node("Squeeze", ["boxes", "zero"], ["flat"]),
             helper.make_node("Gather", ["flat", "index"], ["picked"], axis=0)]
    consts = [numpy_helper.from_array(np.array([5], np.int64), "keep"),
              numpy_helper.from_array(np.array([0.5], np.float32), "iou"),
              numpy_helper.from_array(np.array([0.3], np.float32), "floor"),
              numpy_helper.from_array(np.array(2, np.int64), "two"),
              numpy_helper.from_array(np.array([0], np.int64), "zero")]
    graph = helper.make_graph(nodes, "nms_sym", [
        helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [1, "n", 4]),
        helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 1, "n"])],
        [helper.make_tensor_value_info("picked", TensorProto.FLOAT, None),
         helper.make_tensor_value_info("selected", TensorProto.INT64, None)], consts)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    lib = onnxc.compile(model, out_dir=tmp_path)
    sess = ort.InferenceSession(model.SerializeToString())
    rng = np.random.default_rng(4)
    for n in (1, 7, 40):
        corner = rng.random((1, n, 2)).astype(np.float32)
        size = (rng.random((1, n, 2)) * 0.3).astype(np.float32)
        feed = {"boxes": np.concatenate([corner, corner + size], -1),
                "scores": rng.random((1, 1, n)).astype(np.float32)}
        for got, want in zip(lib.run(None, feed), sess.run(None, feed)):
            assert got.shape == want.shape
            np.testing.assert_array_equal(got, want)
