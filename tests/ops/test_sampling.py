"""GridSample, AffineGrid, Col2Im (compiler/ops/sampling.py) and RoiAlign (compiler/ops/roi.py)
against onnxruntime, or onnx's reference where onnxruntime lacks the case."""
from __future__ import annotations

import numpy as np
import onnxc
import pytest
from onnx import TensorProto, helper
from onnxc.errors import ModelError, RuntimeFailure

from .harness import assert_close, check_node, node_model, rand, reference

I64, F32 = np.int64, np.float32
MODES = ["linear", "nearest", "cubic"]
PADDINGS = ["zeros", "border", "reflection"]


def grid(*shape, spread=1.3, seed=0, dtype=F32):
    """Grid values mostly inside [-1, 1], some past the borders."""
    return rand(*shape, seed=seed, low=-spread, high=spread, dtype=dtype)


def compile_error(tmp_path, op, inputs, attrs, constant=(), opset=20, out_shape=None) -> str:
    """The ModelError message of compiling one node; out_shape declares the output's shape
    (as the official ONNX cases do), so that no shape inference needs the inputs' values."""
    model = node_model(op, inputs, attrs, constant, opset=opset)
    if out_shape is not None:
        output = model.graph.output[0]
        output.CopyFrom(helper.make_tensor_value_info(output.name, TensorProto.FLOAT, out_shape))
    with pytest.raises(ModelError) as info:
        onnxc.compile(model, out_dir=tmp_path)
    return str(info.value)


def run_declared(tmp_path, op, inputs, constant, opset, out_shape, wrong):
    """Compile op with out_shape declared, check a run against onnx's reference, then check
    that each run with an input of `wrong` ({input index: value}) fails naming the node."""
    model = node_model(op, inputs, {}, constant, opset=opset)
    output = model.graph.output[0]
    output.CopyFrom(helper.make_tensor_value_info(output.name, TensorProto.FLOAT, out_shape))
    lib = onnxc.compile(model, out_dir=tmp_path, strict=True)
    names = [i.name for i in model.graph.input]
    feed = {n: v for n, v in zip(node_input_names(model), inputs) if n in names}
    assert_close(lib.run(None, feed)[0], reference(model, feed, use="reference")[0])
    for index, value in wrong.items():
        bad = dict(feed, **{node_input_names(model)[index]: value})
        with pytest.raises(RuntimeFailure, match=rf"\({op}\)"):
            lib.run(None, bad)


def node_input_names(model) -> list[str]:
    return list(model.graph.node[0].input)


# -- GridSample --------------------------------------------------------------------------------
@pytest.mark.parametrize("align", [0, 1])
@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("mode", MODES)
def test_grid_sample_2d(tmp_path, mode, padding, align):
    attrs = {"mode": mode, "padding_mode": padding, "align_corners": align}
    check_node(tmp_path, "GridSample", [rand(2, 3, 5, 4), grid(2, 6, 7, 2)], attrs, opset=20)


@pytest.mark.parametrize("mode", ["bilinear", "nearest", "bicubic"])
def test_grid_sample_16_spellings(tmp_path, mode):
    attrs = {"mode": mode, "padding_mode": "border"}
    check_node(tmp_path, "GridSample", [rand(1, 2, 4, 6), grid(1, 3, 5, 2)], attrs, opset=16)


@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("mode", ["linear", "cubic"])
def test_grid_sample_far_outside(tmp_path, mode, padding):
    # several reflections, and coordinates far past the clamp margin
    g = grid(1, 4, 9, 2, spread=6.0)
    g[0, 0, :3] = [[1e6, -1e6], [-3e4, 2.5], [7.25, -9.5]]
    check_node(tmp_path, "GridSample", [rand(1, 2, 3, 5), g],
               {"mode": mode, "padding_mode": padding}, opset=20, atol=1e-4)


@pytest.mark.parametrize("align", [0, 1])
@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("mode", ["linear", "nearest"])
def test_grid_sample_3d(tmp_path, mode, padding, align):
    attrs = {"mode": mode, "padding_mode": padding, "align_corners": align}
    check_node(tmp_path, "GridSample", [rand(1, 2, 3, 4, 5), grid(1, 2, 3, 4, 3)], attrs,
               opset=20)


# onnxruntime has no 3-D cubic sampling; the reference clamps a border coordinate before its
# taps (torch and onnxruntime clamp only the taps: test_grid_sample_2d[cubic-border-*])
@pytest.mark.parametrize("padding", ["zeros", "reflection"])
def test_grid_sample_3d_cubic(tmp_path, padding):
    check_node(tmp_path, "GridSample", [rand(1, 2, 3, 4, 5), grid(1, 2, 2, 3, 3)],
               {"mode": "cubic", "padding_mode": padding}, opset=20, use="reference")


def test_grid_sample_float64_one_pixel_axis(tmp_path):
    # a reflection over an axis of one pixel with align_corners: a single position
    x, g = rand(1, 2, 1, 5, dtype=np.float64), grid(1, 3, 4, 2, dtype=np.float64)
    check_node(tmp_path, "GridSample", [x, g], {"padding_mode": "reflection",
                                                "align_corners": 1}, opset=22)


@pytest.mark.parametrize("opset, attrs, message", [
    (16, {"mode": "linear"}, "unsupported mode 'linear'"),
    (20, {"mode": "bicubic"}, "unsupported mode 'bicubic'"),
    (20, {"padding_mode": "wrap"}, "unsupported padding_mode 'wrap'"),
])
def test_grid_sample_bad_attributes(tmp_path, opset, attrs, message):
    inputs = [rand(1, 1, 3, 3), grid(1, 2, 2, 2)]
    assert message in compile_error(tmp_path, "GridSample", inputs, attrs, opset=opset)


# -- AffineGrid --------------------------------------------------------------------------------
@pytest.mark.parametrize("align", [0, 1])
@pytest.mark.parametrize("size", [[2, 3, 5, 7], [2, 1, 3, 4, 6]])
def test_affine_grid(tmp_path, size, align):
    rank = len(size) - 2
    theta = rand(size[0], rank, rank + 1)
    check_node(tmp_path, "AffineGrid", [theta, np.array(size, I64)],
               {"align_corners": align}, constant=(1,), opset=20)


def test_affine_grid_size_undeclared(tmp_path):
    inputs = [rand(1, 2, 3), np.array([1, 1, 4, 4], I64)]
    message = compile_error(tmp_path, "AffineGrid", inputs, {})
    assert "must be a compile-time constant" in message


def test_affine_grid_size_at_run_time(tmp_path):
    """The size input arrives with the run: the declared output shape is compiled and a size
    that disagrees with it fails the run."""
    feed = [rand(1, 2, 3), np.array([1, 1, 4, 4], I64)]
    run_declared(tmp_path, "AffineGrid", feed, (), 20, [1, 4, 4, 2],
                 {1: np.array([1, 1, 4, 5], I64)})


def test_affine_grid_theta_mismatch(tmp_path):
    inputs = [rand(1, 2, 3), np.array([1, 1, 2, 4, 4], I64)]
    assert "theta of shape" in compile_error(tmp_path, "AffineGrid", inputs, {}, constant=(1,))


# -- Col2Im ------------------------------------------------------------------------------------
def col2im_input(image, block, channels=2, batch=2, dilations=None, pads=None, strides=None):
    rank = len(image)
    dilations, strides = dilations or [1] * rank, strides or [1] * rank
    pads = pads or [0] * (2 * rank)
    blocks = [(image[d] + pads[d] + pads[rank + d] - dilations[d] * (block[d] - 1) - 1)
              // strides[d] + 1 for d in range(rank)]
    return rand(batch, channels * int(np.prod(block)), int(np.prod(blocks)))


COL2IM_CASES = [
    ([5, 5], [2, 2], {}),
    ([6, 7], [3, 2], {"strides": [2, 3]}),
    ([5, 4], [2, 3], {"pads": [1, 0, 2, 1]}),
    ([9, 8], [2, 3], {"dilations": [3, 2], "strides": [1, 2], "pads": [1, 1, 0, 2]}),
    ([4, 5, 3], [2, 2, 2], {"strides": [1, 2, 1], "pads": [0, 1, 1, 1, 0, 0]}),
]


@pytest.mark.parametrize("image, block, attrs", COL2IM_CASES)
def test_col2im(tmp_path, image, block, attrs):
    data = col2im_input(image, block, **attrs)
    check_node(tmp_path, "Col2Im", [data, np.array(image, I64), np.array(block, I64)], attrs,
               constant=(1, 2), opset=18)


def test_col2im_int32(tmp_path):
    data = np.arange(2 * 4 * 9, dtype=np.int32).reshape(2, 4, 9)
    check_node(tmp_path, "Col2Im", [data, np.array([4, 4], I64), np.array([2, 2], I64)], {},
               constant=(1, 2), opset=18, use="reference")


@pytest.mark.parametrize("constant", [(1,), (2,)])
def test_col2im_shape_undeclared(tmp_path, constant):
    inputs = [rand(1, 4, 9), np.array([4, 4], I64), np.array([2, 2], I64)]
    message = compile_error(tmp_path, "Col2Im", inputs, {}, constant, 18)
    assert "must be a compile-time constant" in message


@pytest.mark.parametrize("constant", [(1,), (2,)])
def test_col2im_shape_at_run_time(tmp_path, constant):
    feed = [rand(1, 4, 9), np.array([4, 4], I64), np.array([2, 2], I64)]
    runtime_input = 2 if constant == (1,) else 1
    wrong = {2: np.array([1, 4], I64), 1: np.array([3, 6], I64)}[runtime_input]
    run_declared(tmp_path, "Col2Im", feed, constant, 18, [1, 1, 4, 4], {runtime_input: wrong})


def test_col2im_wrong_block_count(tmp_path):
    inputs = [rand(1, 4, 8), np.array([4, 4], I64), np.array([2, 2], I64)]
    message = compile_error(tmp_path, "Col2Im", inputs, {}, constant=(1, 2), opset=18)
    assert "does not hold" in message or "cannot infer" in message


# -- RoiAlign ----------------------------------------------------------------------------------
def regions(count=6, size=12.0, seed=3):
    """Boxes (x1, y1, x2, y2) in a size x size input: inside, across the border, tiny, and one
    inverted (x2 < x1)."""
    rng = np.random.default_rng(seed)
    corner = rng.uniform(-2, size - 2, (count, 2))
    extent = rng.uniform(0.2, size / 1.5, (count, 2))
    boxes = np.concatenate([corner, corner + extent], axis=1).astype(F32)
    boxes[-1] = [8.0, 7.0, 3.0, 2.5]
    return boxes, rng.integers(0, 2, count).astype(I64)


@pytest.mark.parametrize("ratio", [0, 2])
@pytest.mark.parametrize("coord", ["half_pixel", "output_half_pixel"])
@pytest.mark.parametrize("mode", ["avg", "max"])
def test_roi_align(tmp_path, mode, coord, ratio):
    boxes, batch = regions()
    attrs = {"mode": mode, "coordinate_transformation_mode": coord, "output_height": 3,
             "output_width": 4, "sampling_ratio": ratio, "spatial_scale": 0.75}
    check_node(tmp_path, "RoiAlign", [rand(2, 3, 9, 10), boxes, batch], attrs, opset=16)


@pytest.mark.parametrize("mode", ["avg", "max"])
def test_roi_align_10(tmp_path, mode):
    boxes, batch = regions(seed=5)
    attrs = {"mode": mode, "output_height": 2, "output_width": 3, "spatial_scale": 0.5}
    check_node(tmp_path, "RoiAlign", [rand(2, 2, 7, 6), boxes * 2, batch], attrs, opset=10)


def test_roi_align_bad_mode(tmp_path):
    boxes, batch = regions()
    message = compile_error(tmp_path, "RoiAlign", [rand(2, 1, 4, 4), boxes, batch],
                            {"mode": "sum"}, opset=16)
    assert "unsupported mode 'sum'" in message
