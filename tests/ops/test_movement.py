"""Data-movement ops (compiler/ops/movement.py) against onnxruntime."""
from __future__ import annotations

import numpy as np
import onnxc
import pytest
from onnx import TensorProto
from onnxc.errors import ModelError, RuntimeFailure

from .harness import check_model, check_node, node_model, rand
from .test_shape import chain_model, no_folding, typed  # noqa: F401

I64, I32, F32 = np.int64, np.int32, np.float32
INT64_MAX, INT64_MIN = np.iinfo(I64).max, np.iinfo(I64).min


def ints(*shape, low=-50, high=50, dtype=I64):
    return np.random.default_rng(sum(shape)).integers(low, high, shape).astype(dtype)


def compile_fails(tmp_path, model, match=None):
    with pytest.raises(ModelError, match=match):
        onnxc.compile(model, out_dir=tmp_path)


# -- Transpose ---------------------------------------------------------------------------------
@pytest.mark.parametrize("shape,perm", [
    ((3, 5), None), ((2, 3, 5), [2, 0, 1]), ((2, 3, 5), None), ((3, 5, 7, 2), [0, 2, 3, 1]),
    ((3, 5, 7, 2), [0, 3, 1, 2]), ((3, 5, 7, 2), [3, 2, 1, 0]), ((1, 5, 3), [1, 0, 2]),
    ((5, 1, 3, 1), [1, 0, 3, 2]), ((7,), [0]),
])
def test_transpose(tmp_path, shape, perm):
    check_node(tmp_path, "Transpose", [rand(*shape)], {} if perm is None else {"perm": perm})


@pytest.mark.parametrize("opset", [1, 13, 21])
def test_transpose_int64_versions(tmp_path, opset):
    check_node(tmp_path, "Transpose", [ints(3, 4, 5)], {"perm": [1, 2, 0]}, opset=opset)


@pytest.mark.parametrize("perm", [[1, 0, 2], [0, 2, 1]])
def test_transpose_in_chain(tmp_path, perm):
    x = rand(1, 5, 3) if perm == [1, 0, 2] else rand(2, 3, 5)
    check_model(chain_model("Transpose", {"perm": perm}, x), {"x": x}, tmp_path)


def test_transpose_error_bad_perm(tmp_path):
    model = typed(node_model("Transpose", [rand(2, 3)], {"perm": [0, 0]}), (np.float32, (2, 2)))
    compile_fails(tmp_path, model)


# -- Concat ------------------------------------------------------------------------------------
@pytest.mark.parametrize("shapes,axis", [
    ([(2, 3, 5), (2, 4, 5), (2, 1, 5)], 1),       # torch.cat of 3 on dim 1
    ([(2, 3), (2, 5)], -1), ([(3, 2), (1, 2), (4, 2)], 0), ([(7,), (3,)], 0),
    ([(2, 3, 4, 5), (2, 3, 1, 5)], -2), ([(3, 5)], 1),
])
def test_concat(tmp_path, shapes, axis):
    check_node(tmp_path, "Concat", [rand(*s, seed=i) for i, s in enumerate(shapes)],
               {"axis": axis})


@pytest.mark.parametrize("constant", [(0,), (1,), (0, 2)])
def test_concat_mixed_constants(tmp_path, constant):
    inputs = [rand(2, 3, seed=0), rand(2, 1, seed=1), rand(2, 4, seed=2)]
    check_node(tmp_path, "Concat", inputs, {"axis": 1}, constant=constant)


@pytest.mark.parametrize("opset", [4, 11, 13])
def test_concat_int64(tmp_path, opset):
    check_node(tmp_path, "Concat", [ints(2, 3), ints(1, 3), ints(4, 3)], {"axis": 0},
               opset=opset)


def test_concat_empty_input(tmp_path):
    check_node(tmp_path, "Concat", [rand(2, 3), np.zeros((2, 0), np.float32), rand(2, 2)],
               {"axis": 1}, constant=(1,))


def test_concat_opset1_default_axis(tmp_path):
    xs = [rand(2, 3, seed=0), rand(2, 2, seed=1)]
    model = typed(node_model("Concat", xs, opset=1), (np.float32, (2, 5)))
    got = onnxc.compile(model, out_dir=tmp_path).run(None, {"x0": xs[0], "x1": xs[1]})[0]
    np.testing.assert_array_equal(got, np.concatenate(xs, axis=1))   # no reference has v1


# -- Split -------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape,axis,split,n", [
    ((6, 5), 0, None, 3), ((4, 9), -1, None, 3), ((2, 7, 3), 1, [2, 4, 1], 3),
    ((2, 7, 3), -2, [7], 1), ((5, 4), 0, [0, 5], 2), ((3, 10), 1, [3, 3, 4], 3),
])
def test_split(tmp_path, shape, axis, split, n):
    inputs = [rand(*shape)] + ([] if split is None else [np.array(split, I64)])
    check_node(tmp_path, "Split", inputs, {"axis": axis}, constant=(1,), n_outputs=n,
               opset=13)


@pytest.mark.parametrize("dim,n", [(6, 3), (7, 3), (5, 2), (9, 4)])
def test_split_num_outputs(tmp_path, dim, n):
    check_node(tmp_path, "Split", [rand(3, dim)], {"axis": 1, "num_outputs": n},
               n_outputs=n, opset=18)


@pytest.mark.parametrize("opset,split", [(2, [1, 4]), (11, [3, 2]), (11, None)])
def test_split_attribute_versions(tmp_path, opset, split):
    x = rand(5, 3) if split else rand(4, 3)
    attrs = {"axis": 0} | ({"split": split} if split else {})
    outs = [(np.float32, (s, 3)) for s in (split or [2, 2])]
    model = typed(node_model("Split", [x], attrs, n_outputs=2, opset=opset), *outs)
    check_model(model, {"x0": x}, tmp_path)


def test_split_int64(tmp_path):
    check_node(tmp_path, "Split", [ints(4, 6), np.array([1, 5], I64)], {"axis": 1},
               constant=(1,), n_outputs=2)


def test_split_error_runtime_sizes_that_cannot_cut(tmp_path):
    # sizes read at run time: the declared outputs must still cut the axis exactly
    model = node_model("Split", [rand(4, 6), np.array([1, 4], I64)], {"axis": 1}, n_outputs=2)
    typed(model, (np.float32, (4, 1)), (np.float32, (4, 4)))
    compile_fails(tmp_path, model, "do not cut")


# -- Slice -------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape,starts,ends,axes,steps", [
    ((7, 5), [1], [5], [0], None),
    ((7, 5), [0, 1], [INT64_MAX, -1], None, None),
    ((6, 9), [0], [INT64_MAX], [1], [2]),                        # torch x[:, ::2]
    ((6, 9), [-1], [INT64_MIN], [1], [-1]),                      # torch flip
    ((6, 9), [7, -2], [1, -100], [1, 0], [-3, -2]),
    ((4, 5, 6), [-3, 100], [INT64_MAX, 2], [-1, 0], [1, -1]),
    ((4, 5, 6), [1], [100], [-2], [3]),
    ((4, 5, 6), [-100], [2], [2], None),
    ((3, 5), [0], [INT64_MAX], [0], None),                       # identity: a view
    ((3, 5), [3], [5], [0], None),                               # empty
])
def test_slice(tmp_path, shape, starts, ends, axes, steps):
    inputs = [rand(*shape), np.array(starts, I64), np.array(ends, I64),
              None if axes is None else np.array(axes, I64),
              None if steps is None else np.array(steps, I64)]
    if axes is None and steps is not None:
        inputs[3] = np.arange(len(starts), dtype=I64)
    while inputs[-1] is None:
        inputs.pop()
    check_node(tmp_path, "Slice", inputs, constant=(1, 2, 3, 4))


def test_slice_int32_params_int64_data(tmp_path):
    check_node(tmp_path, "Slice", [ints(5, 6), np.array([1, -1], I32), np.array([4, 0], I32),
                                   np.array([0, 1], I32), np.array([2, -2], I32)],
               constant=(1, 2, 3, 4), opset=13)


@pytest.mark.parametrize("axes", [None, [1], [-1, 0]])
def test_slice_opset1(tmp_path, axes):
    x = rand(5, 6)
    starts, ends = ([1], [4]) if axes == [1] else ([1, 0], [100, 3])
    attrs = {"starts": starts, "ends": ends} | ({"axes": axes} if axes else {})
    check_node(tmp_path, "Slice", [x], attrs, opset=9)


def test_slice_in_chain(tmp_path):
    x = rand(4, 6)
    model = chain_model("Slice", {}, x, [np.array([1], I64), np.array([5], I64),
                                         np.array([1], I64), np.array([2], I64)])
    check_model(model, {"x": x}, tmp_path)


def test_slice_error_zero_step(tmp_path):
    model = node_model("Slice", [rand(4, 6), np.array([0], I64), np.array([3], I64),
                                 np.array([0], I64), np.array([0], I64)], constant=(1, 2, 3, 4))
    typed(model, (np.float32, (3, 6)))
    compile_fails(tmp_path, model)


def test_slice_error_runtime_starts_with_another_rank(tmp_path):
    # starts read at run time compile the declared output (tests/ops/test_runtime_values.py)
    model = node_model("Slice", [rand(4, 6), np.array([0], I64), np.array([3], I64)],
                       constant=(2,))
    typed(model, (np.float32, (18,)))
    compile_fails(tmp_path, model, "declared output shape")


# -- Gather ------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape,indices,axis", [
    ((5, 4), np.array([0, 3, -1, 2], I64), 0),
    ((5, 4), np.array(2, I64), 0),                       # scalar index: rank drops
    ((3, 5, 4), np.array(-2, I64), 1),                   # torch x[:, -2]
    ((3, 5, 4), np.array([[0, 1], [4, -5]], I64), 1),
    ((3, 5, 4), np.array([3, 3, 0], I32), -1),
    ((3, 5, 4), np.array([1, 2, 3], I64), 2),            # affine constant indices
    ((6,), np.array([[5, 0, 1]], I64), 0),
])
@pytest.mark.parametrize("constant", [True, False])
def test_gather(tmp_path, shape, indices, axis, constant):
    check_node(tmp_path, "Gather", [rand(*shape), indices], {"axis": axis},
               constant=(1,) if constant else ())


@pytest.mark.parametrize("opset", [1, 11, 13])
def test_gather_int64_data_versions(tmp_path, opset):
    check_node(tmp_path, "Gather", [ints(4, 3), np.array([3, 0, 2, 2], I64)], {"axis": 0},
               opset=opset)


def test_gather_embedding_constant_table(tmp_path):
    table, idx = rand(10, 6), np.array([[1, 9, 0], [4, 4, 2]], I64)
    check_node(tmp_path, "Gather", [table, idx], constant=(0,))


@pytest.mark.parametrize("dtype", [I64, I32])
def test_gather_runtime_out_of_range_fails_the_run(tmp_path, dtype):
    """onnxruntime's error (the kernel wraps the index meanwhile, staying inside the data)."""
    x, idx = rand(4, 3), np.array([7, -9, 1, INT64_MAX if dtype == I64 else -2**31], dtype)
    lib = onnxc.compile(node_model("Gather", [x, idx]), out_dir=tmp_path)
    with pytest.raises(RuntimeFailure, match=r"node 'gather_node' \(Gather\): an index is "
                                             r"outside \[-4, 3\]"):
        lib.run(None, {"x0": x, "x1": idx})


def test_gather_error_constant_out_of_range(tmp_path):
    compile_fails(tmp_path, node_model("Gather", [rand(4, 3), np.array([4], I64)],
                                       constant=(1,)), "out of range")


# -- Pad ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["constant", "reflect", "edge"])
@pytest.mark.parametrize("shape,pads", [
    ((3, 5), [1, 2, 2, 1]), ((2, 3, 5), [0, 1, 0, 0, 2, 3]), ((2, 3, 7), [0, 0, -1, 0, 0, 2]),
    ((4, 6), [-1, 2, 0, -2]), ((1, 3, 4, 5), [0, 0, 1, 1, 0, 0, 1, 1]),
])
def test_pad(tmp_path, mode, shape, pads):
    check_node(tmp_path, "Pad", [rand(*shape), np.array(pads, I64)], {"mode": mode},
               constant=(1,), opset=13)


@pytest.mark.parametrize("value", [np.array(1.5, np.float32), np.array([-2.0], np.float32)])
def test_pad_constant_value(tmp_path, value):
    check_node(tmp_path, "Pad", [rand(3, 4), np.array([1, 0, 0, 2], I64), value],
               constant=(1, 2), opset=11)


@pytest.mark.parametrize("value", [np.array(1.5, np.float32), np.array([-2.0], np.float32)])
def test_pad_constant_value_given_at_run_time(tmp_path, value):
    check_node(tmp_path, "Pad", [rand(3, 4), np.array([1, 0, 0, 2], I64), value],
               constant=(1,), opset=11)


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge", "wrap"])
def test_pad_axes_and_wrap(tmp_path, mode):
    check_node(tmp_path, "Pad", [rand(2, 5, 4), np.array([2, 1, 1, 3], I64), None,
                                 np.array([-1, 1], I64)], {"mode": mode}, constant=(1, 3),
               opset=19)


@pytest.mark.parametrize("mode", ["constant", "edge", "reflect"])
def test_pad_int64(tmp_path, mode):
    check_node(tmp_path, "Pad", [ints(3, 4), np.array([1, 2, 1, 0], I64), np.array(7, I64)],
               {"mode": mode}, constant=(1, 2), opset=18)


@pytest.mark.parametrize("opset", [2, 10])
def test_pad_attribute_versions(tmp_path, opset):
    x = rand(3, 4)
    model = node_model("Pad", [x], {"pads": [1, 0, 0, 2], "value": 0.5}, opset=opset)
    check_model(typed(model, (np.float32, (4, 6))), {"x0": x}, tmp_path)


def test_pad_error_runtime_pads_with_another_rank(tmp_path):
    model = typed(node_model("Pad", [rand(3, 4), np.array([1, 0, 0, 2], I64)], opset=13),
                  (np.float32, (24,)))
    compile_fails(tmp_path, model, "declared output shape")


def test_pad_error_mode(tmp_path):
    model = typed(node_model("Pad", [rand(3, 4), np.array([1, 0, 0, 2], I64)],
                             {"mode": "mirror"}, constant=(1,), opset=13), (np.float32, (4, 6)))
    compile_fails(tmp_path, model, "mode")


# -- Tile and Range ----------------------------------------------------------------------------
@pytest.mark.parametrize("shape,repeats", [
    ((3, 5), [2, 1]), ((2, 3), [1, 3]), ((1, 3, 2), [4, 2, 1]), ((3,), [1]), ((2, 1), [2, 3]),
])
def test_tile(tmp_path, shape, repeats):
    check_node(tmp_path, "Tile", [rand(*shape), np.array(repeats, I64)], constant=(1,))


@pytest.mark.parametrize("opset", [6, 13])
def test_tile_int64(tmp_path, opset):
    check_node(tmp_path, "Tile", [ints(2, 3), np.array([2, 2], I64)], constant=(1,),
               opset=opset)


def test_tile_1(tmp_path):
    x = rand(2, 3)
    model = node_model("Tile", [x, np.array(3, F32), np.array(1, F32)], constant=(1, 2),
                       opset=1)
    got = onnxc.compile(typed(model, (F32, (2, 9))), out_dir=tmp_path).run(None, {"x0": x})[0]
    # Tile-1 takes tiles and axis with the data type; no reference runs it.
    np.testing.assert_array_equal(got, np.tile(x, (1, 3)))


def test_pad_1(tmp_path):
    x = rand(2, 3)
    model = node_model("Pad", [x], {"paddings": [0, 1, 2, 0], "mode": "edge"}, opset=1)
    got = onnxc.compile(typed(model, (F32, (4, 4))), out_dir=tmp_path).run(None, {"x0": x})[0]
    np.testing.assert_array_equal(got, np.pad(x, ((0, 2), (1, 0)), mode="edge"))


def test_tile_error_runtime_repeats_to_an_impossible_output(tmp_path):
    model = typed(node_model("Tile", [rand(2, 3), np.array([2, 2], I64)]),
                  (np.float32, (4, 5)))
    compile_fails(tmp_path, model, "not a tiling")


@pytest.mark.parametrize("start,limit,delta", [
    (np.array(0, I64), np.array(7, I64), np.array(2, I64)),
    (np.array(10, I64), np.array(4, I64), np.array(-3, I64)),
    (np.array(0.5, np.float32), np.array(3.0, np.float32), np.array(0.25, np.float32)),
    (np.array(1, I32), np.array(2, I32), np.array(5, I32)),
])
@pytest.mark.usefixtures("no_folding")
def test_range(tmp_path, start, limit, delta):
    check_node(tmp_path, "Range", [start, limit, delta], constant=(0, 1, 2))


def test_range_error_runtime_without_a_declared_length(tmp_path):
    # bounds read at run time compile the declared length (tests/ops/test_runtime_values.py)
    model = node_model("Range", [np.array(0, I64), np.array(5, I64), np.array(1, I64)],
                       constant=(1, 2))
    model.graph.output[0].type.tensor_type.shape.dim.add()   # rank 1, length unknown
    model.graph.output[0].type.tensor_type.elem_type = TensorProto.INT64
    compile_fails(tmp_path, model, "must be a compile-time constant")


# -- DepthToSpace and SpaceToDepth ------------------------------------------------------------

@pytest.mark.parametrize("mode", ["DCR", "CRD"])
@pytest.mark.parametrize("block", [2, 3])
def test_depth_to_space(tmp_path, mode, block):
    check_node(tmp_path, "DepthToSpace", [rand(2, 2 * block * block, 3, 5)],
               {"blocksize": block, "mode": mode}, opset=13)


@pytest.mark.parametrize("block", [2, 3])
def test_space_to_depth(tmp_path, block):
    check_node(tmp_path, "SpaceToDepth", [rand(2, 3, 2 * block, 3 * block)],
               {"blocksize": block})


def test_depth_to_space_bad_mode(tmp_path):
    model = node_model("DepthToSpace", [rand(1, 4, 2, 2)], {"blocksize": 2, "mode": "XYZ"},
                       opset=13)
    with pytest.raises(ModelError, match="mode"):
        onnxc.compile(model, out_dir=tmp_path)
