"""Resize with scales, a crop roi, or sizes under a keep-aspect-ratio policy read at run time
(tap tables computed by a prologue kernel, compiler/ops/resize_taps.py), against onnxruntime
and against the same model with those inputs constant (compile-time taps)."""
from __future__ import annotations

import numpy as np
import onnxc
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnxc.errors import RuntimeFailure

from .harness import assert_close, rand, reference

F32, I64 = np.float32, np.int64


def resize_model(x_shape, out_shape, attrs, values: dict, runtime: set, opset=19):
    """Resize(x, roi, scales, sizes) with the named inputs in values; those in runtime are
    graph inputs, the others initializers; the output's shape is declared."""
    names = [n if n in values else "" for n in ("roi", "scales", "sizes")]
    while names and not names[-1]:
        names.pop()
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_shape))]
    inits = []
    for name, value in values.items():
        elem = TensorProto.INT64 if value.dtype == I64 else TensorProto.FLOAT
        if name in runtime:
            inputs.append(helper.make_tensor_value_info(name, elem, list(value.shape)))
        else:
            inits.append(numpy_helper.from_array(value, name))
    node = helper.make_node("Resize", ["x", *names], ["y"], name="rs", **attrs)
    graph = helper.make_graph([node], "resize", inputs, [
        helper.make_tensor_value_info("y", TensorProto.FLOAT, list(out_shape))], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def check_both(tmp_path, x, out_shape, attrs, values, runtime):
    """Run-time taps agree with onnxruntime and with the compile-time taps."""
    feed = {"x": x} | {k: v for k, v in values.items() if k in runtime}
    model = resize_model(x.shape, out_shape, attrs, values, runtime)
    got = onnxc.compile(model, out_dir=tmp_path / "rt", strict=True).run(None, feed)[0]
    assert_close(got, reference(model, feed)[0], what="run-time taps vs onnxruntime")
    fixed = resize_model(x.shape, out_shape, attrs, values, set())
    static = onnxc.compile(fixed, out_dir=tmp_path / "ct", strict=True).run(None, {"x": x})[0]
    np.testing.assert_array_equal(got, static)
    return model, feed


SCALED = [((1, 2, 5, 4), [1, 1, 0.6, 1.7]), ((2, 1, 3, 6), [1, 1, 1.0, 0.5])]
COORDS = ["half_pixel", "asymmetric", "align_corners", "pytorch_half_pixel",
          "half_pixel_symmetric", "tf_half_pixel_for_nn"]


def out_of(shape, scales):
    return [int(np.floor(n * np.float32(s))) for n, s in zip(shape, scales)]


@pytest.mark.parametrize("shape, scales", SCALED)
@pytest.mark.parametrize("coord", COORDS)
@pytest.mark.parametrize("mode, extra", [
    ("nearest", {"nearest_mode": "round_prefer_floor"}),
    ("nearest", {"nearest_mode": "round_prefer_ceil"}),
    ("nearest", {"nearest_mode": "floor"}), ("nearest", {"nearest_mode": "ceil"}),
    ("linear", {}), ("cubic", {}), ("cubic", {"exclude_outside": 1, "cubic_coeff_a": -0.5})])
def test_scales_at_run_time(tmp_path, shape, scales, coord, mode, extra):
    attrs = {"mode": mode, "coordinate_transformation_mode": coord, **extra}
    check_both(tmp_path, rand(*shape), out_of(shape, scales), attrs,
               {"scales": np.array(scales, F32)}, {"scales"})


@pytest.mark.parametrize("mode", ["nearest", "linear", "cubic"])
@pytest.mark.parametrize("runtime", [{"roi"}, {"roi", "sizes"}])
def test_crop_roi_at_run_time(tmp_path, mode, runtime):
    values = {"roi": np.array([0, 0, 0.4, 0.6, 1, 1, 0.6, 0.8], F32),
              "sizes": np.array([1, 1, 3, 3], I64)}
    attrs = {"mode": mode, "coordinate_transformation_mode": "tf_crop_and_resize",
             "extrapolation_value": 10.0}
    check_both(tmp_path, rand(1, 1, 4, 4), [1, 1, 3, 3], attrs, values, runtime)
    values["roi"] = np.array([0, 0, -0.3, 0.2, 1, 1, 1.4, 0.9], F32)   # partly outside
    check_both(tmp_path / "out", rand(1, 1, 4, 4), [1, 1, 3, 3], attrs, values, runtime)


@pytest.mark.parametrize("policy, out_shape", [("not_larger", [1, 1, 7, 5]),
                                               ("not_smaller", [1, 1, 8, 6])])
def test_sizes_with_a_policy_at_run_time(tmp_path, policy, out_shape):
    attrs = {"mode": "linear", "keep_aspect_ratio_policy": policy, "axes": [2, 3]}
    check_both(tmp_path, rand(1, 1, 4, 3), out_shape, attrs,
               {"sizes": np.array([7, 6], I64)}, {"sizes"})


def test_a_run_with_other_extents_fails(tmp_path):
    model, feed = check_both(tmp_path, rand(1, 2, 5, 4), [1, 2, 3, 6], {"mode": "linear"},
                             {"scales": np.array([1, 1, 0.6, 1.7], F32)}, {"scales"})
    lib = onnxc.compile(model, out_dir=tmp_path / "again", strict=True)
    assert_close(lib.run(None, dict(feed, scales=np.array([1, 1, 0.79, 1.5], F32)))[0],
                 reference(model, dict(feed, scales=np.array([1, 1, 0.79, 1.5], F32)))[0])
    with pytest.raises(RuntimeFailure, match=r"node 'rs' \(Resize\): the scales"):
        lib.run(None, dict(feed, scales=np.array([1, 1, 0.8, 1.7], F32)))


def test_upsample_9_scales_at_run_time(tmp_path):
    graph = helper.make_graph(
        [helper.make_node("Upsample", ["x", "s"], ["y"], name="up", mode="nearest")], "up",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 3, 4]),
         helper.make_tensor_value_info("s", TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 6, 6])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 9)])
    feed = {"x": rand(1, 1, 3, 4), "s": np.array([1, 1, 2.1, 1.6], F32)}
    got = onnxc.compile(model, out_dir=tmp_path, strict=True).run(None, feed)[0]
    assert_close(got, reference(model, feed)[0])
