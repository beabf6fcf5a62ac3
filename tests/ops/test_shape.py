"""Shape and view ops (compiler/ops/shape.py) against onnxruntime."""
from __future__ import annotations

import numpy as np
import onnx
import onnxc
import pytest
from onnx import helper, numpy_helper
from onnxc.errors import ModelError, RuntimeFailure

from .harness import check_model, check_node, node_model, rand

I64 = np.int64


@pytest.fixture
def no_folding(monkeypatch):
    """Keep Shape/Size/Constant/... nodes in the graph so that their lowerings run."""
    import onnxc.frontend.load as load
    monkeypatch.setattr(load, "fold_constants", lambda g: g)


def chain_model(first, attrs, x, consts=(), opset=17, tail="Neg"):
    """x -> first(x, *consts) -> tail -> y: the first op's output is an internal tensor, so a
    view op becomes a real alias rather than a copy into the output."""
    inits = [numpy_helper.from_array(np.asarray(c), f"c{i}") for i, c in enumerate(consts)]
    nodes = [helper.make_node(first, ["x"] + [f"c{i}" for i in range(len(consts))], ["t"],
                              name="first", **attrs),
             helper.make_node(tail, ["t"], ["y"], name="tail")]
    graph = helper.make_graph(
        nodes, "chain", [helper.make_tensor_value_info(
            "x", helper.np_dtype_to_tensor_dtype(x.dtype), list(x.shape))],
        [helper.make_empty_tensor_value_info("y")], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = min(model.ir_version, 10)
    return onnx.shape_inference.infer_shapes(model)


def typed(model, *outputs):
    """Give the outputs explicit types (old schemas have no shape inference)."""
    for info, (dtype, shape) in zip(model.graph.output, outputs, strict=True):
        info.CopyFrom(helper.make_tensor_value_info(
            info.name, helper.np_dtype_to_tensor_dtype(np.dtype(dtype)), list(shape)))
    return model


# -- Reshape -----------------------------------------------------------------------------------
@pytest.mark.parametrize("shape,spec", [
    ((2, 3, 5), (6, 5)),
    ((2, 3, 5), (-1,)),
    ((2, 3, 5), (0, -1)),          # torch: x.view(x.size(0), -1)
    ((2, 3, 5), (0, 0, 5, 1)),
    ((1, 7, 3), (-1, 0, 1)),
    ((3, 5), (5, 1, 3)),
    ((1, 1), ()),                  # to a scalar
])
def test_reshape(tmp_path, shape, spec):
    check_node(tmp_path, "Reshape", [rand(*shape), np.array(spec, I64)], constant=(1,))


def test_reshape_int64_and_allowzero(tmp_path):
    x = np.arange(30, dtype=I64).reshape(2, 3, 5)
    check_node(tmp_path, "Reshape", [x, np.array([5, -1, 2], I64)], {"allowzero": 1},
               constant=(1,), opset=14)


@pytest.mark.parametrize("opset", [4, 13, 19, 21])
def test_reshape_versions(tmp_path, opset):
    x = rand(3, 4)
    if opset < 5:
        model = typed(node_model("Reshape", [x], {"shape": [2, -1]}, opset=opset),
                      (np.float32, (2, 6)))
        check_model(model, {"x0": x}, tmp_path)
    else:
        check_node(tmp_path, "Reshape", [x, np.array([0, 2, -1], I64)], constant=(1,),
                   opset=opset)


@pytest.mark.parametrize("op,attrs,consts", [
    ("Reshape", {}, [np.array([0, -1], I64)]),
    ("Flatten", {"axis": 2}, []),
    ("Squeeze", {}, [np.array([1], I64)]),
    ("Unsqueeze", {}, [np.array([0, -1], I64)]),
    ("Identity", {}, []),
])
def test_views_alias_internal_tensor(tmp_path, op, attrs, consts):
    x = rand(3, 1, 5, 2)
    model = chain_model(op, attrs, x, consts)
    check_model(model, {"x": x}, tmp_path)


def test_reshape_error_nonconstant_shape(tmp_path):
    model = node_model("Reshape", [rand(2, 6), np.array([3, 4], I64)])
    with pytest.raises(ModelError):
        onnxc.compile(model, out_dir=tmp_path)


def _declared_reshape(tmp_path, in_shape, out_shape, allowzero=0):
    """Reshape whose shape input arrives with the run; the model declares the output."""
    model = node_model("Reshape", [rand(*in_shape), np.zeros(len(out_shape), I64)],
                       {"allowzero": allowzero} if allowzero else {}, opset=14)
    y = model.graph.output[0].type.tensor_type
    y.shape.Clear()
    for d in out_shape:
        y.shape.dim.add().dim_value = d
    return onnxc.compile(model, out_dir=tmp_path, strict=True)


@pytest.mark.parametrize("spec", [[4, 6], [-1, 6], [4, -1], [0, 6], [4, 0]])
def test_reshape_shape_read_at_run_time(tmp_path, spec):
    x = rand(4, 2, 3)
    lib = _declared_reshape(tmp_path, (4, 2, 3), (4, 6))
    if spec[1] == 0:   # 0 copies input dim 1 (2), not the declared 6
        with pytest.raises(RuntimeFailure, match="does not give the declared output shape"):
            lib.run(None, {"x0": x, "x1": np.array(spec, I64)})
        return
    (got,) = lib.run(None, {"x0": x, "x1": np.array(spec, I64)})
    np.testing.assert_array_equal(got, x.reshape(4, 6))


@pytest.mark.parametrize("spec", [[6, 4], [-1, -1], [2, 12], [24, 1]])
def test_reshape_run_time_shape_that_breaks_the_declared_one(tmp_path, spec):
    lib = _declared_reshape(tmp_path, (4, 2, 3), (4, 6))
    with pytest.raises(RuntimeFailure, match="node 'reshape_node' \\(Reshape\\): the shape "
                                             "input does not give the declared output shape"):
        lib.run(None, {"x0": rand(4, 2, 3), "x1": np.array(spec, I64)})


def test_reshape_error_bad_spec(tmp_path):
    model = node_model("Reshape", [rand(2, 6), np.array([3, 4], I64)], constant=(1,))
    model.graph.node[0].input[1] = "bad"
    model.graph.initializer.append(numpy_helper.from_array(np.array([-1, -1], I64), "bad"))
    with pytest.raises(ModelError):
        onnxc.compile(model, out_dir=tmp_path)


# -- Flatten, Squeeze, Unsqueeze, Identity -------------------------------------------------------
@pytest.mark.parametrize("shape,axis,opset", [
    ((2, 3, 5), 1, 13), ((2, 3, 5), 0, 13), ((2, 3, 5), 3, 13), ((2, 3, 4, 5), -1, 11),
    ((2, 3, 4, 5), 2, 9), ((3, 5), -2, 21),
])
def test_flatten(tmp_path, shape, axis, opset):
    check_node(tmp_path, "Flatten", [rand(*shape)], {"axis": axis}, opset=opset)


@pytest.mark.parametrize("shape,axes", [
    ((1, 3, 1, 5), [0]), ((1, 3, 1, 5), [-2, 0]), ((1, 3, 1, 5), None), ((3, 1), [1]),
    ((1,), [0]),
])
@pytest.mark.parametrize("opset", [11, 13])
def test_squeeze(tmp_path, shape, axes, opset):
    x = rand(*shape)
    if axes is None:
        check_node(tmp_path, "Squeeze", [x], opset=opset)
    elif opset < 13:
        check_node(tmp_path, "Squeeze", [x], {"axes": axes}, opset=opset)
    else:
        check_node(tmp_path, "Squeeze", [x, np.array(axes, I64)], constant=(1,), opset=opset)


@pytest.mark.parametrize("shape,axes", [
    ((3, 5), [0]), ((3, 5), [-1]), ((3, 5), [0, 3]), ((3, 5), [1, -1]), ((), [0]),
])
@pytest.mark.parametrize("opset", [11, 13, 21])
def test_unsqueeze(tmp_path, shape, axes, opset):
    x = rand(*shape) if shape else np.array(1.5, np.float32)
    if opset < 13:
        check_node(tmp_path, "Unsqueeze", [x], {"axes": axes}, opset=opset)
    else:
        check_node(tmp_path, "Unsqueeze", [x, np.array(axes, I64)], constant=(1,),
                   opset=opset)


def test_squeeze_int64(tmp_path):
    check_node(tmp_path, "Squeeze", [np.arange(5, dtype=I64).reshape(1, 5),
                                     np.array([0], I64)], constant=(1,))


def test_squeeze_error_not_one(tmp_path):
    model = node_model("Squeeze", [rand(2, 3)], {"axes": [0]}, opset=11)
    with pytest.raises(ModelError):
        onnxc.compile(model, out_dir=tmp_path)


def test_unsqueeze_error_nonconstant_axes(tmp_path):
    model = node_model("Unsqueeze", [rand(2, 3), np.array([0], I64)])
    with pytest.raises(ModelError):
        onnxc.compile(model, out_dir=tmp_path)


@pytest.mark.parametrize("x", [rand(3, 5), np.arange(7, dtype=I64),
                               np.array([True, False, True]),
                               np.array(2.5, np.float32)])
def test_identity(tmp_path, x):
    check_node(tmp_path, "Identity", [x])


# -- Dropout -----------------------------------------------------------------------------------
@pytest.mark.parametrize("opset", [12, 13, 22])
@pytest.mark.parametrize("n_outputs", [1, 2])
def test_dropout(tmp_path, opset, n_outputs):
    check_node(tmp_path, "Dropout", [rand(3, 7), np.array(0.3, np.float32),
                                     np.array(False)], constant=(1, 2),
               n_outputs=n_outputs, opset=opset)


@pytest.mark.parametrize("opset", [7, 10])
def test_dropout_old(tmp_path, opset):
    x = rand(2, 5)
    model = node_model("Dropout", [x], {"ratio": 0.2}, n_outputs=2, opset=opset)
    typed(model, (np.float32, x.shape), (np.float32 if opset < 10 else np.bool_, x.shape))
    check_model(model, {"x0": x}, tmp_path)


def test_dropout_no_optional_inputs(tmp_path):
    check_node(tmp_path, "Dropout", [rand(4, 3)], n_outputs=2, opset=13)


def test_dropout_error_training(tmp_path):
    model = node_model("Dropout", [rand(3, 4), None, np.array(True)], constant=(2,),
                       opset=13)
    with pytest.raises(ModelError, match="training_mode"):
        onnxc.compile(model, out_dir=tmp_path)


@pytest.mark.parametrize("with_ratio", [True, False])
def test_dropout_training_mode_read_at_run_time(tmp_path, with_ratio):
    """Inference, or a ratio of 0, pass the input through; a run that would drop at random
    fails."""
    x = rand(3, 4)
    inputs = [x, np.array(0.0, np.float32) if with_ratio else None, np.array(False)]
    model = node_model("Dropout", inputs, n_outputs=2, opset=13)
    lib = onnxc.compile(model, out_dir=tmp_path, strict=True)
    feed = {"x0": x, "x2": np.array(False)}
    if with_ratio:
        feed["x1"] = np.array(0.0, np.float32)
    for training in (False, True) if with_ratio else (False,):
        y, mask = lib.run(None, dict(feed, x2=np.array(training)))
        np.testing.assert_array_equal(y, x)
        assert mask.all()
    wrong = dict(feed, x2=np.array(True))
    if with_ratio:
        wrong["x1"] = np.array(0.3, np.float32)
    with pytest.raises(RuntimeFailure, match="drops at random"):
        lib.run(None, wrong)


# -- Shape, Size, Constant, ConstantOfShape ------------------------------------------------------
@pytest.mark.parametrize("attrs", [{}, {"start": 1}, {"end": -1}, {"start": -2, "end": 10},
                                   {"start": 2, "end": 1}])
@pytest.mark.parametrize("fold", [True, False])
def test_shape(tmp_path, request, attrs, fold):
    if not fold:
        request.getfixturevalue("no_folding")
    check_node(tmp_path, "Shape", [rand(2, 3, 5)], attrs, opset=15 if attrs else 13)


@pytest.mark.parametrize("shape", [(2, 3, 5), (7,), ()])
def test_size(tmp_path, no_folding, shape):
    check_node(tmp_path, "Size", [rand(*shape) if shape else np.array(1.0, np.float32)])


@pytest.mark.parametrize("attrs", [
    {"value": numpy_helper.from_array(np.arange(6, dtype=np.float32).reshape(2, 3))},
    {"value": numpy_helper.from_array(np.array([4, 4, 4], I64))},
    {"value_float": 2.5}, {"value_floats": [1.0, -2.0]}, {"value_int": 7},
    {"value_ints": [3, 1, 2]},
])
def test_constant(tmp_path, no_folding, attrs):
    check_node(tmp_path, "Constant", [], attrs, opset=13)


def test_constant_error_string(tmp_path, no_folding):
    model = node_model("Constant", [], {"value_strings": ["a"]}, opset=13)
    with pytest.raises(ModelError):
        onnxc.compile(model, out_dir=tmp_path)


@pytest.mark.parametrize("value", [None, np.array([1.5], np.float32), np.array([7], I64),
                                   np.array([1], np.int32), np.array([True])])
@pytest.mark.parametrize("dims", [(2, 3, 5), (4,)])
def test_constant_of_shape(tmp_path, no_folding, value, dims):
    attrs = {} if value is None else {"value": numpy_helper.from_array(value)}
    check_node(tmp_path, "ConstantOfShape", [np.array(dims, I64)], attrs, constant=(0,))


def test_constant_of_shape_error_runtime_shape(tmp_path):
    model = node_model("ConstantOfShape", [np.array([2, 3], I64)], opset=13)
    with pytest.raises(ModelError):
        onnxc.compile(model, out_dir=tmp_path)


# -- Expand ------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape,dims", [
    ((3, 1), (2, 3, 5)), ((5,), (3, 5)), ((2, 1, 5), (3, 1)), ((1,), (7,)), ((3, 5), (1,)),
    ((), (2, 3)),
])
def test_expand(tmp_path, shape, dims):
    x = rand(*shape) if shape else np.array(0.5, np.float32)
    check_node(tmp_path, "Expand", [x, np.array(dims, I64)], constant=(1,))


@pytest.mark.parametrize("opset", [8, 13])
def test_expand_int64(tmp_path, opset):
    check_node(tmp_path, "Expand", [np.arange(3, dtype=I64).reshape(3, 1),
                                    np.array([3, 4], I64)], constant=(1,), opset=opset)


def test_expand_error_runtime_shape_to_an_impossible_output(tmp_path):
    # A shape read at run time compiles the declared output (tests/ops/test_runtime_values.py),
    # which must be a broadcast of the input.
    model = typed(node_model("Expand", [rand(3, 1), np.array([4, 4], I64)]),
                  (np.float32, (4, 4)))
    with pytest.raises(ModelError, match="cannot expand"):
        onnxc.compile(model, out_dir=tmp_path)



@pytest.mark.parametrize("k,dtype", [(0, None), (2, 1), (-1, 7)])
def test_eye_like(tmp_path, k, dtype):
    attrs = {"k": k, **({"dtype": dtype} if dtype else {})}
    check_node(tmp_path, "EyeLike", [rand(4, 6)], attrs)
