"""CenterCropPad against onnx.reference (onnxruntime has no kernel for it)."""
from __future__ import annotations

import numpy as np
import onnxc
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator
from onnxc.errors import ModelError, RuntimeFailure


def crop_model(in_shape, out_shape, axes, dtype=TensorProto.FLOAT):
    listed = list(range(len(in_shape))) if axes is None else axes
    attrs = {} if axes is None else {"axes": axes}
    graph = helper.make_graph(
        [helper.make_node("CenterCropPad", ["x", "s"], ["y"], name="ccp", **attrs)], "ccp",
        [helper.make_tensor_value_info("x", dtype, list(in_shape)),
         helper.make_tensor_value_info("s", TensorProto.INT64, [len(listed)])],
        [helper.make_tensor_value_info("y", dtype, list(out_shape))])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


@pytest.mark.parametrize("in_shape, out_shape, axes", [
    ((3, 20, 8), (3, 10, 9), [1, 2]),       # crop even, pad odd
    ((3, 7, 8), (3, 4, 11), [-2, -1]),      # crop odd, pad odd
    ((5, 6), (8, 3), None),                 # every axis
    ((2, 4, 4), (2, 4, 6), [2]),            # one axis padded evenly
    ((2, 3), (2, 3), None),                 # nothing to do
])
@pytest.mark.parametrize("dtype, np_dtype", [(TensorProto.FLOAT, np.float32),
                                             (TensorProto.INT32, np.int32)])
def test_center_crop_pad(tmp_path, in_shape, out_shape, axes, dtype, np_dtype):
    model = crop_model(in_shape, out_shape, axes, dtype)
    listed = range(len(in_shape)) if axes is None else axes
    feed = {"x": (np.random.default_rng(0).standard_normal(in_shape) * 10).astype(np_dtype),
            "s": np.array([out_shape[a] for a in listed], np.int64)}
    lib = onnxc.compile(model, out_dir=tmp_path, strict=True)
    (want,) = ReferenceEvaluator(model).run(None, feed)
    np.testing.assert_array_equal(lib.run(None, feed)[0], want)
    with pytest.raises(RuntimeFailure, match=r"node 'ccp' \(CenterCropPad\): the shape input"):
        lib.run(None, dict(feed, s=feed["s"] + 1))


def test_center_crop_pad_keeps_unlisted_axes(tmp_path):
    with pytest.raises(ModelError, match="does not keep the unlisted axes"):
        onnxc.compile(crop_model((3, 4, 5), (2, 4, 6), [2]), out_dir=tmp_path)
