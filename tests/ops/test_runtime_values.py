"""Shape-like inputs that arrive with the run (axes, shapes, repeats, split sizes): the
declared output shapes are compiled, and a run whose values disagree fails with the node's
name instead of computing something else."""
from __future__ import annotations

import numpy as np
import onnxc
import pytest
from onnx import TensorProto, helper
from onnxc.errors import RuntimeFailure

from .harness import assert_close, reference

I64 = np.int64


def declared_model(op, x, value, out_shapes, attrs=None, opset=18):
    """op(x, value) with `value` a graph input and every output's shape declared."""
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape)),
              helper.make_tensor_value_info("v", TensorProto.INT64, list(value.shape))]
    outs = [f"y{i}" for i in range(len(out_shapes))]
    node = helper.make_node(op, ["x", "v"], outs, name="the_node", **(attrs or {}))
    outputs = [helper.make_tensor_value_info(o, TensorProto.FLOAT, list(s))
               for o, s in zip(outs, out_shapes)]
    graph = helper.make_graph([node], "rv", inputs, outputs)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


# op, input shape, value the model is run with, declared outputs, attributes, values (of the
# same length) that must fail the run
CASES = [
    ("Squeeze", (3, 1, 4, 1), [1, -1], [(3, 4)], {}, [[1, 1], [0, 1]]),
    ("Unsqueeze", (3, 4), [0, -1], [(1, 3, 4, 1)], {}, [[0, 1], [1, 3]]),
    ("Unsqueeze", (3, 4), [2, 0], [(1, 3, 1, 4)], {}, [[0, 1], [0, 3]]),
    ("Expand", (3, 1), [2, 1, 4], [(2, 3, 4)], {}, [[2, 3, 5], [1, 3, 4]]),
    ("Expand", (3, 1), [1, 4], [(3, 4)], {}, [[3, 3], [2, 4]]),
    ("Tile", (2, 3), [2, 1], [(4, 3)], {}, [[1, 2], [2, 2]]),
    ("Split", (6, 2), [2, 4], [(2, 2), (4, 2)], {"axis": 0}, [[3, 3], [4, 2]]),
]


@pytest.mark.parametrize("op, shape, value, outs, attrs, bad", CASES)
def test_value_read_at_run_time(tmp_path, op, shape, value, outs, attrs, bad):
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    v = np.array(value, I64)
    model = declared_model(op, x, v, outs, attrs)
    lib = onnxc.compile(model, out_dir=tmp_path, strict=True)
    for got, want in zip(lib.run(None, {"x": x, "v": v}), reference(model, {"x": x, "v": v})):
        assert_close(got, want, what=op)
    for wrong in bad:
        with pytest.raises(RuntimeFailure, match=r"node 'the_node' \(" + op + r"\)"):
            lib.run(None, {"x": x, "v": np.array(wrong, I64)})


def test_constant_of_shape_at_run_time(tmp_path):
    graph = helper.make_graph(
        [helper.make_node("ConstantOfShape", ["s"], ["y"], name="fill",
                          value=helper.make_tensor("v", TensorProto.FLOAT, [1], [2.5]))],
        "cos", [helper.make_tensor_value_info("s", TensorProto.INT64, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])])
    lib = onnxc.compile(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]),
                        out_dir=tmp_path)
    np.testing.assert_array_equal(lib.run(None, {"s": np.array([2, 3], I64)})[0],
                                  np.full((2, 3), 2.5, np.float32))
    with pytest.raises(RuntimeFailure, match="the shape input differs from the declared"):
        lib.run(None, {"s": np.array([3, 2], I64)})


def test_resize_sizes_at_run_time(tmp_path):
    graph = helper.make_graph(
        [helper.make_node("Resize", ["x", "", "", "s"], ["y"], name="up", mode="linear")],
        "rs", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 3, 4]),
               helper.make_tensor_value_info("s", TensorProto.INT64, [4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 5, 7])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    lib = onnxc.compile(model, out_dir=tmp_path, strict=True)
    feed = {"x": np.random.default_rng(1).standard_normal((1, 2, 3, 4)).astype(np.float32),
            "s": np.array([1, 2, 5, 7], I64)}
    assert_close(lib.run(None, feed)[0], reference(model, feed)[0])
    with pytest.raises(RuntimeFailure, match=r"node 'up' \(Resize\): the sizes input differs"):
        lib.run(None, dict(feed, s=np.array([1, 2, 7, 5], I64)))


@pytest.mark.parametrize("runtime", [False, True])
def test_maxunpool_into_a_larger_output_shape(tmp_path, runtime):
    """Indices count over MaxPool's input (4x4); a 5x5 output_shape keeps their coordinates
    (onnx.reference's reading; onnxruntime has no such case)."""
    shape_info = helper.make_tensor_value_info("s", TensorProto.INT64, [4])
    inits = [] if runtime else [helper.make_tensor("s", TensorProto.INT64, [4], [1, 1, 5, 5])]
    graph = helper.make_graph(
        [helper.make_node("MaxUnpool", ["x", "i", "s"], ["y"], name="unpool",
                          kernel_shape=[2, 2], strides=[2, 2])], "mu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 2, 2]),
         helper.make_tensor_value_info("i", TensorProto.INT64, [1, 1, 2, 2])]
        + ([shape_info] if runtime else []),
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 5, 5])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    lib = onnxc.compile(model, out_dir=tmp_path, strict=True)
    feed = {"x": np.array([5, 6, 7, 8], np.float32).reshape(1, 1, 2, 2),
            "i": np.array([5, 7, 13, 15], I64).reshape(1, 1, 2, 2)}
    if runtime:
        feed["s"] = np.array([1, 1, 5, 5], I64)
    assert_close(lib.run(None, feed)[0], reference(model, feed, use="reference")[0])
    if runtime:
        with pytest.raises(RuntimeFailure, match="output_shape input differs"):
            lib.run(None, dict(feed, s=np.array([1, 1, 4, 6], I64)))


@pytest.mark.parametrize("dtype, elem, bounds", [
    (np.float32, TensorProto.FLOAT, (1.5, 4.0, 0.5)),
    (np.int64, TensorProto.INT64, (10, 1, -2)),
    (np.int32, TensorProto.INT32, (0, 5, 1)),
])
def test_range_bounds_at_run_time(tmp_path, dtype, elem, bounds):
    n = len(np.arange(*bounds))
    graph = helper.make_graph(
        [helper.make_node("Range", ["a", "b", "d"], ["y"], name="rng")], "range",
        [helper.make_tensor_value_info(name, elem, []) for name in "abd"],
        [helper.make_tensor_value_info("y", elem, [n])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    lib = onnxc.compile(model, out_dir=tmp_path, strict=True)
    feed = {k: np.array(v, dtype) for k, v in zip("abd", bounds)}
    assert_close(lib.run(None, feed)[0], reference(model, feed)[0])
    with pytest.raises(RuntimeFailure, match=r"node 'rng' \(Range\): start, limit and delta"):
        lib.run(None, dict(feed, d=np.array(bounds[2] * 2, dtype)))
    with pytest.raises(RuntimeFailure, match="Range"):
        lib.run(None, dict(feed, d=np.array(0, dtype)))



def test_range_shape_from_a_declared_tensor_further_down(tmp_path):
    """A window function's shape: Range(0, n) with n from the run, scaled by a step computed
    from n, through Cos and an Add of two branches, to an output declared [8]."""
    nodes = [helper.make_node("Range", ["zero", "n", "one"], ["r"], name="rng"),
             helper.make_node("Div", ["tau", "n"], ["step"]),
             helper.make_node("Mul", ["r", "step"], ["angle"]),
             helper.make_node("Cos", ["angle"], ["c"]),
             helper.make_node("Mul", ["angle", "half"], ["h"]),
             helper.make_node("Add", ["c", "h"], ["y"])]
    scalars = {"zero": 0.0, "one": 1.0, "tau": 2 * np.pi, "half": 0.5}
    graph = helper.make_graph(
        nodes, "window", [helper.make_tensor_value_info("n", TensorProto.FLOAT, [])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [8])],
        [helper.make_tensor(k, TensorProto.FLOAT, [], [v]) for k, v in scalars.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    lib = onnxc.compile(model, out_dir=tmp_path, strict=True)
    feed = {"n": np.array(8, np.float32)}
    assert_close(lib.run(None, feed)[0], reference(model, feed)[0])
    with pytest.raises(RuntimeFailure, match=r"node 'rng' \(Range\)"):
        lib.run(None, {"n": np.array(9, np.float32)})

SLICES = [   # starts, ends, axes, steps on a (6, 5, 4) input
    ([1, 0], [5, 4], [0, 2], [2, 1]),
    ([-1, 4], [-7, 0], [0, 1], [-1, -2]),
    ([2], [1000], [-2], [1]),
    ([0, -3, 1], [9223372036854775807, -1, 3], [2, 0, 1], [3, 1, 1]),
]


@pytest.mark.parametrize("starts, ends, axes, steps", SLICES)
def test_slice_values_at_run_time(tmp_path, starts, ends, axes, steps):
    x = np.arange(120, dtype=np.float32).reshape(6, 5, 4)
    index = [slice(None)] * 3
    for s, e, a, st in zip(starts, ends, axes, steps):
        index[a] = slice(s, e, st)
    want = x[tuple(index)]
    names = ["starts", "ends", "axes", "steps"]
    values = [np.array(v, I64) for v in (starts, ends, axes, steps)]
    graph = helper.make_graph(
        [helper.make_node("Slice", ["x", *names], ["y"], name="cut")], "sl",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [6, 5, 4])]
        + [helper.make_tensor_value_info(n, TensorProto.INT64, [len(starts)]) for n in names],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(want.shape))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    lib = onnxc.compile(model, out_dir=tmp_path, strict=True)
    feed = dict(zip(names, values), x=x)
    np.testing.assert_array_equal(lib.run(None, feed)[0], want)
    wrong = dict(feed, steps=np.array([7] * len(steps), I64))   # other lengths
    with pytest.raises(RuntimeFailure, match=r"node 'cut' \(Slice\)"):
        lib.run(None, wrong)
    with pytest.raises(RuntimeFailure, match=r"node 'cut' \(Slice\)"):
        lib.run(None, dict(feed, steps=np.zeros(len(steps), I64)))


@pytest.mark.parametrize("mode", ["constant", "edge", "reflect", "wrap"])
@pytest.mark.parametrize("pads, axes", [([1, 0, 2, 3], None), ([2, 3], [-1]), ([0, 7], [1])])
def test_pad_widths_at_run_time(tmp_path, mode, pads, axes):
    x = np.arange(12, dtype=np.float32).reshape(3, 4) + 1
    widths = [(0, 0), (0, 0)]
    listed = list(range(2)) if axes is None else [a % 2 for a in axes]
    for i, a in enumerate(listed):
        widths[a] = (pads[i], pads[len(listed) + i])
    extra = {"constant_values": 9.5} if mode == "constant" else {}
    want = np.pad(x, widths, mode=mode, **extra)
    names = ["x", "pads", "value"] + (["axes"] if axes is not None else [])
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 4]),
              helper.make_tensor_value_info("pads", TensorProto.INT64, [len(pads)]),
              helper.make_tensor_value_info("value", TensorProto.FLOAT, [])]
    if axes is not None:
        inputs.append(helper.make_tensor_value_info("axes", TensorProto.INT64, [len(axes)]))
    graph = helper.make_graph([helper.make_node("Pad", names, ["y"], name="pad", mode=mode)],
                              "pad", inputs,
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT,
                                                             list(want.shape))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    lib = onnxc.compile(model, out_dir=tmp_path, strict=True)
    feed = {"x": x, "pads": np.array(pads, I64), "value": np.array(9.5, np.float32)}
    if axes is not None:
        feed["axes"] = np.array(axes, I64)
    np.testing.assert_array_equal(lib.run(None, feed)[0], want)
    for wrong in ([p + 1 for p in pads], [-1] + pads[1:-1] + [pads[-1] + 1]):
        with pytest.raises(RuntimeFailure, match=r"node 'pad' \(Pad\): the pads do not give"):
            lib.run(None, dict(feed, pads=np.array(wrong, I64)))


def test_col2im_shapes_at_run_time(tmp_path):
    """image_shape from the declared output; block_shape the one factorization of the input's
    block size (6 = 2 x 3 here) that gives its 12 block positions on a 4 x 5 image."""
    graph = helper.make_graph(
        [helper.make_node("Col2Im", ["x", "image", "block"], ["y"], name="fold")], "c2i",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 12, 9]),
         helper.make_tensor_value_info("image", TensorProto.INT64, [2]),
         helper.make_tensor_value_info("block", TensorProto.INT64, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 4, 5])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    lib = onnxc.compile(model, out_dir=tmp_path, strict=True)
    feed = {"x": np.random.default_rng(2).standard_normal((1, 12, 9)).astype(np.float32),
            "image": np.array([4, 5], I64), "block": np.array([2, 3], I64)}
    assert_close(lib.run(None, feed)[0], reference(model, feed, use="reference")[0])
    with pytest.raises(RuntimeFailure, match=r"node 'fold' \(Col2Im\): the block_shape input"):
        lib.run(None, dict(feed, block=np.array([3, 2], I64)))


def test_resize_scales_at_run_time(tmp_path):
    """The output extents are compiled (floor(in * scale)); the coordinates use the run's
    scale (2.2 also gives floor(3 * 2.2) = 6, with other sampling points than 2.0), and a
    scale that gives other extents fails the run."""
    graph = helper.make_graph(
        [helper.make_node("Resize", ["x", "", "s"], ["y"], name="up", mode="linear")], "rs",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 3, 4]),
         helper.make_tensor_value_info("s", TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 6, 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    lib = onnxc.compile(model, out_dir=tmp_path, strict=True)
    x = np.random.default_rng(1).standard_normal((1, 1, 3, 4)).astype(np.float32)
    for scale in (2.0, 2.2):
        feed = {"x": x, "s": np.array([1, 1, scale, 1], np.float32)}
        assert_close(lib.run(None, feed)[0], reference(model, feed)[0])
    with pytest.raises(RuntimeFailure, match=r"node 'up' \(Resize\): the scales"):
        lib.run(None, {"x": x, "s": np.array([1, 1, 3.0, 1], np.float32)})
