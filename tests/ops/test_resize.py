"""Resize and Upsample (compiler/ops/resize.py) against onnxruntime."""
from __future__ import annotations

import numpy as np
import onnxc
import pytest
from onnx import TensorProto, helper
from onnxc.errors import ModelError

from .harness import check_model, check_node, node_model, rand, reference
from .test_shape import typed

I64, F32 = np.int64, np.float32
EMPTY = np.zeros(0, F32)


def resize(tmp_path, x, attrs, scales=None, sizes=None, roi=None, opset=19, axes=None):
    """Resize with constant roi/scales/sizes (the ones given)."""
    inputs = [x, roi, None if scales is None else np.array(scales, F32),
              None if sizes is None else np.array(sizes, I64)]
    if opset < 13:   # roi and scales are required inputs before opset 13
        inputs[1] = EMPTY if roi is None else roi
        inputs[2] = EMPTY if scales is None else inputs[2]
    while inputs[-1] is None:
        inputs.pop()
    attrs = dict(attrs) | ({"axes": axes} if axes is not None else {})
    check_node(tmp_path, "Resize", inputs, attrs, constant=(1, 2, 3), opset=opset)


COORDS = ["half_pixel", "asymmetric", "align_corners", "pytorch_half_pixel",
          "half_pixel_symmetric", "tf_half_pixel_for_nn"]
NEAREST = ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"]


# -- nearest -----------------------------------------------------------------------------------
@pytest.mark.parametrize("nearest_mode", NEAREST)
@pytest.mark.parametrize("coord", COORDS)
@pytest.mark.parametrize("scales", [[1, 1, 2, 3], [1, 1, 0.6, 1.7]])
def test_nearest_scales(tmp_path, nearest_mode, coord, scales):
    resize(tmp_path, rand(1, 2, 5, 3), {"mode": "nearest", "nearest_mode": nearest_mode,
                                        "coordinate_transformation_mode": coord},
           scales=scales)


@pytest.mark.parametrize("nearest_mode", NEAREST)
@pytest.mark.parametrize("sizes", [[2, 3, 9, 7], [2, 3, 3, 2], [2, 3, 10, 6]])
def test_nearest_sizes(tmp_path, nearest_mode, sizes):
    resize(tmp_path, rand(2, 3, 5, 4), {"mode": "nearest", "nearest_mode": nearest_mode},
           sizes=sizes, opset=13)


@pytest.mark.parametrize("opset", [11, 13, 18])
def test_nearest_torch_upsample_2x(tmp_path, opset):
    # torch.nn.Upsample(scale_factor=2): asymmetric + floor, the i // 2 fast path
    resize(tmp_path, rand(1, 3, 5, 7), {"mode": "nearest", "nearest_mode": "floor",
                                        "coordinate_transformation_mode": "asymmetric"},
           scales=[1, 1, 2, 2], opset=opset)


def test_nearest_int32(tmp_path):   # onnxruntime has no int64 Resize
    x = np.arange(2 * 3 * 4, dtype=np.int32).reshape(1, 2, 3, 4)
    resize(tmp_path, x, {"mode": "nearest"}, scales=[1, 1, 1.5, 0.5], opset=13)


# -- linear ------------------------------------------------------------------------------------
@pytest.mark.parametrize("coord", COORDS[:5])
@pytest.mark.parametrize("scales", [[1, 1, 2, 2], [1, 1, 0.5, 0.75], [1, 1, 1.6, 0.7]])
def test_linear_scales(tmp_path, coord, scales):
    resize(tmp_path, rand(1, 2, 5, 6), {"mode": "linear",
                                        "coordinate_transformation_mode": coord},
           scales=scales)


@pytest.mark.parametrize("coord", ["half_pixel", "align_corners", "pytorch_half_pixel"])
@pytest.mark.parametrize("sizes", [[1, 3, 9, 11], [1, 3, 1, 3], [1, 3, 4, 1]])
def test_linear_sizes(tmp_path, coord, sizes):
    resize(tmp_path, rand(1, 3, 5, 7), {"mode": "linear",
                                        "coordinate_transformation_mode": coord},
           sizes=sizes, opset=13)


@pytest.mark.parametrize("shape,scales", [((5, 6), [2, 1.5]), ((2, 4, 5, 3), [1, 1, 2, 1.5, ]),
                                          ((2, 3, 4), [1, 2, 2])])
def test_linear_other_ranks(tmp_path, shape, scales):
    resize(tmp_path, rand(*shape), {"mode": "linear"}, scales=scales)


@pytest.mark.parametrize("policy,opset", [("not_larger", 18), ("not_smaller", 19)])
def test_linear_axes_and_aspect_policy(tmp_path, policy, opset):
    resize(tmp_path, rand(1, 2, 4, 6), {"mode": "linear", "keep_aspect_ratio_policy": policy},
           sizes=[7, 9], axes=[2, 3], opset=opset)


def test_linear_axes_scales(tmp_path):
    resize(tmp_path, rand(1, 2, 4, 6), {"mode": "linear"}, scales=[1.5, 2.0], axes=[2, 3],
           opset=18)


# -- cubic and tf_crop_and_resize ----------------------------------------------------------------
@pytest.mark.parametrize("attrs", [
    {}, {"cubic_coeff_a": -0.5}, {"exclude_outside": 1},
    {"coordinate_transformation_mode": "asymmetric"},
    {"coordinate_transformation_mode": "align_corners", "exclude_outside": 1},
])
@pytest.mark.parametrize("scales", [[1, 1, 2, 1.5], [1, 1, 0.8, 0.6]])
def test_cubic(tmp_path, attrs, scales):
    resize(tmp_path, rand(1, 2, 5, 6), {"mode": "cubic"} | attrs, scales=scales)


@pytest.mark.parametrize("mode", ["nearest", "linear", "cubic"])
@pytest.mark.parametrize("extrapolation", [0.0, 10.0])
def test_tf_crop_and_resize(tmp_path, mode, extrapolation):
    roi = np.array([0, 0, -0.2, 0.4, 1, 1, 0.6, 1.3], F32)
    resize(tmp_path, rand(1, 2, 5, 6), {"mode": mode, "extrapolation_value": extrapolation,
                                        "coordinate_transformation_mode":
                                            "tf_crop_and_resize"},
           sizes=[1, 2, 4, 5], roi=roi, opset=13)


# -- old versions ------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["nearest", "linear"])
@pytest.mark.parametrize("scales", [[1, 1, 2, 3], [1, 1, 0.5, 0.7]])
def test_resize_10(tmp_path, mode, scales):
    check_node(tmp_path, "Resize", [rand(1, 2, 4, 5), np.array(scales, F32)], {"mode": mode},
               constant=(1,), opset=10)


@pytest.mark.parametrize("mode", ["nearest", "linear"])
def test_upsample_9(tmp_path, mode):
    check_node(tmp_path, "Upsample", [rand(1, 2, 3, 4), np.array([1, 1, 2, 2.5], F32)],
               {"mode": mode}, constant=(1,), opset=9)


def test_upsample_7(tmp_path):
    x = rand(1, 2, 3, 4)
    model = node_model("Upsample", [x], {"mode": "nearest", "scales": [1.0, 1.0, 2.0, 3.0]},
                       opset=7)
    check_model(typed(model, (F32, (1, 2, 6, 12))), {"x0": x}, tmp_path)


def test_upsample_1(tmp_path):
    x = rand(1, 2, 3, 4)
    model = node_model("Upsample", [x], {"height_scale": 2.0, "width_scale": 3.0}, opset=6)
    got = onnxc.compile(typed(model, (F32, (1, 2, 6, 12))), out_dir=tmp_path).run(
        None, {"x0": x})[0]
    np.testing.assert_array_equal(got, x.repeat(2, axis=2).repeat(3, axis=3))  # no reference


def test_identity_resize_is_a_view(tmp_path):
    resize(tmp_path, rand(1, 2, 3, 4), {"mode": "linear"}, scales=[1, 1, 1, 1])


# -- errors ------------------------------------------------------------------------------------
def compile_fails(tmp_path, model, match):
    with pytest.raises(ModelError, match=match):
        onnxc.compile(model, out_dir=tmp_path)


def test_error_runtime_scales_without_a_declared_output(tmp_path):
    # with a declared output they compile (tests/ops/test_runtime_values.py)
    model = node_model("Resize", [rand(1, 1, 2, 2), None, np.array([1, 1, 2, 2], F32)],
                       opset=13)
    compile_fails(tmp_path, model, "must be a compile-time constant")


def test_error_linear_int(tmp_path):
    model = node_model("Resize", [np.ones((1, 1, 2, 2), I64), None,
                                  np.array([1, 1, 2, 2], F32)], {"mode": "linear"},
                       constant=(2,), opset=13)
    compile_fails(tmp_path, model, "int64")


def test_error_antialias_with_scales_read_at_run_time(tmp_path):
    """The antialiased tap count depends on the scale: not built for a run-time one."""
    model = node_model("Resize", [rand(1, 1, 4, 4), None, np.array([1, 1, 0.5, 0.5], F32)],
                       {"mode": "linear", "antialias": 1}, opset=18)
    output = model.graph.output[0]
    output.CopyFrom(helper.make_tensor_value_info(output.name, TensorProto.FLOAT, [1, 1, 2, 2]))
    compile_fails(tmp_path, model, "antialiased resizing with scales read at run time")


def test_error_unknown_mode(tmp_path):
    model = node_model("Resize", [rand(1, 1, 2, 2), None, np.array([1, 1, 2, 2], F32)],
                       {"mode": "area"}, constant=(2,), opset=13)
    compile_fails(tmp_path, typed(model, (F32, (1, 1, 4, 4))), "mode")


def test_negative_axes(tmp_path):
    # Neither reference handles negative Resize axes: compare with the same model on [2, 3].
    x = rand(1, 2, 4, 6)
    models = [node_model("Resize", [x, None, None, np.array([7, 9], I64)],
                         {"mode": "linear", "axes": axes}, constant=(3,), opset=19)
              for axes in ([-2, -1], [2, 3])]
    got = onnxc.compile(models[0], out_dir=tmp_path).run(None, {"x0": x})[0]
    np.testing.assert_allclose(got, reference(models[1], {"x0": x})[0], rtol=1e-4, atol=1e-5)


# -- antialiased downsampling ------------------------------------------------------------------
@pytest.mark.parametrize("coord", ["half_pixel", "asymmetric", "pytorch_half_pixel",
                                   "align_corners", "half_pixel_symmetric"])
@pytest.mark.parametrize("mode, extra", [("linear", {}), ("cubic", {}),
                                         ("cubic", {"exclude_outside": 1,
                                                    "cubic_coeff_a": -0.5})])
@pytest.mark.parametrize("scales", [[1, 1, 0.6, 0.35], [1, 1, 0.5, 1.5], [1, 1, 0.8, 0.25]])
def test_antialias_downsampling(tmp_path, coord, mode, extra, scales):
    attrs = {"mode": mode, "antialias": 1, "coordinate_transformation_mode": coord, **extra}
    resize(tmp_path, rand(1, 2, 9, 11), attrs, scales=scales)


def test_antialias_sizes(tmp_path):
    resize(tmp_path, rand(1, 1, 16, 12), {"mode": "linear", "antialias": 1},
           sizes=[1, 1, 5, 7])
