"""Models with dynamic dimensions, as exporters write them: each builder returns
(model, shapes) where shapes are the input shapes (name -> tuple) of three different runs."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
F = TensorProto.FLOAT


def _model(nodes, inputs, outputs, inits=(), name="dyn"):
    graph = helper.make_graph(nodes, name, inputs, outputs, list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _w(name, *shape, seed=0):
    rng = np.random.default_rng(seed)
    return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32) * 0.3, name)


def _i64(name, values):
    return numpy_helper.from_array(np.asarray(values, np.int64), name)


def sklearn_style():
    """skl2onnx writes the batch as an unnamed dimension: MatMul, Add, Softmax, ArgMax."""
    x = helper.make_tensor_value_info("X", F, [None, 6])
    nodes = [helper.make_node("MatMul", ["X", "W"], ["h"]),
             helper.make_node("Add", ["h", "b"], ["z"]),
             helper.make_node("Softmax", ["z"], ["probabilities"], axis=1),
             helper.make_node("ArgMax", ["z"], ["label"], axis=1, keepdims=0)]
    outs = [helper.make_tensor_value_info("probabilities", F, [None, 3]),
            helper.make_tensor_value_info("label", TensorProto.INT64, [None])]
    return _model(nodes, [x], outs, [_w("W", 6, 3), _w("b", 3, seed=1)]), \
        [{"X": (1, 6)}, {"X": (5, 6)}, {"X": (64, 6)}]


def paddle_style():
    """paddle2onnx: -1 dimensions, a Reshape to [0, -1] and a declared output of -1."""
    x = helper.make_tensor_value_info("x", F, [-1, 4, -1])
    nodes = [helper.make_node("Relu", ["x"], ["r"]),
             helper.make_node("Reshape", ["r", "shape"], ["flat"]),
             helper.make_node("ReduceSum", ["flat", "axes"], ["y"], keepdims=1)]
    y = helper.make_tensor_value_info("y", F, [-1, -1])
    return _model(nodes, [x], [y], [_i64("shape", [0, -1]), _i64("axes", [1])]), \
        [{"x": (1, 4, 1)}, {"x": (2, 4, 7)}, {"x": (9, 4, 3)}]


def shape_reshape():
    """torch's x.view(x.size(0), -1, 2): Shape -> Gather -> Unsqueeze -> Concat -> Reshape."""
    x = helper.make_tensor_value_info("x", F, ["batch", "seq", 8])
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Gather", ["s", "zero"], ["b"], axis=0),
             helper.make_node("Unsqueeze", ["b", "axes0"], ["b1"]),
             helper.make_node("Concat", ["b1", "tail"], ["target"], axis=0),
             helper.make_node("Reshape", ["x", "target"], ["v"]),
             helper.make_node("Transpose", ["v"], ["t"], perm=[0, 2, 1]),
             helper.make_node("Mul", ["t", "two"], ["y"])]
    y = helper.make_tensor_value_info("y", F, ["batch", 2, "n"])
    inits = [_i64("zero", 0), _i64("axes0", [0]), _i64("tail", [-1, 2]),
             numpy_helper.from_array(np.array(2.0, np.float32), "two")]
    return _model(nodes, [x], [y], inits), \
        [{"x": (1, 1, 8)}, {"x": (3, 5, 8)}, {"x": (2, 16, 8)}]


def shape_constant_of_shape():
    """A mask built from the input's shape: ConstantOfShape(Concat(Shape pieces)), Expand
    and Range for positions, then added to the input."""
    x = helper.make_tensor_value_info("x", F, ["batch", "seq"])
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Gather", ["s", "one"], ["n"], axis=0),
             helper.make_node("Range", ["zero", "n", "one"], ["pos"]),
             helper.make_node("Cast", ["pos"], ["posf"], to=F),
             helper.make_node("ConstantOfShape", ["s"], ["ones"],
                              value=numpy_helper.from_array(np.ones(1, np.float32))),
             helper.make_node("Expand", ["posf", "s"], ["grid"]),
             helper.make_node("Mul", ["grid", "ones"], ["g"]),
             helper.make_node("Add", ["x", "g"], ["y"])]
    y = helper.make_tensor_value_info("y", F, ["batch", "seq"])
    inits = [_i64("zero", 0), _i64("one", 1)]
    return _model(nodes, [x], [y], inits), \
        [{"x": (1, 1)}, {"x": (4, 3)}, {"x": (2, 33)}]


def shape_slice():
    """A Slice whose end is computed: x[:, : seq // 2 * 2] (Shape, Div, Mul)."""
    x = helper.make_tensor_value_info("x", F, ["batch", "seq"])
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Slice", ["s", "one", "two"], ["n"]),
             helper.make_node("Div", ["n", "two"], ["h"]),
             helper.make_node("Mul", ["h", "two"], ["end"]),
             helper.make_node("Slice", ["x", "zero", "end", "one"], ["y0"]),
             helper.make_node("Sigmoid", ["y0"], ["y"])]
    y = helper.make_tensor_value_info("y", F, ["batch", "half"])
    inits = [_i64("zero", [0]), _i64("one", [1]), _i64("two", [2])]
    return _model(nodes, [x], [y], inits), \
        [{"x": (1, 2)}, {"x": (3, 7)}, {"x": (2, 10)}]


def concat_batch():
    """Two inputs with separate lengths joined on the sequence axis, then a LayerNorm and a
    MatMul: the output length is the sum of the inputs'."""
    a = helper.make_tensor_value_info("a", F, ["batch", "src", 8])
    b = helper.make_tensor_value_info("b", F, ["batch", "tgt", 8])
    nodes = [helper.make_node("Concat", ["a", "b"], ["c"], axis=1),
             helper.make_node("LayerNormalization", ["c", "g", "beta"], ["n"], axis=-1),
             helper.make_node("MatMul", ["n", "W"], ["y"])]
    y = helper.make_tensor_value_info("y", F, ["batch", "total", 4])
    inits = [_w("g", 8), _w("beta", 8, seed=2), _w("W", 8, 4, seed=3)]
    return _model(nodes, [a, b], [y], inits), \
        [{"a": (1, 1, 8), "b": (1, 2, 8)}, {"a": (2, 5, 8), "b": (2, 3, 8)},
         {"a": (3, 9, 8), "b": (3, 1, 8)}]


BUILDERS = {f.__name__: f for f in (sklearn_style, paddle_style, shape_reshape,
                                    shape_constant_of_shape, shape_slice, concat_batch)}


def _torch(name: str, cases, integer_inputs=False):
    def build():
        from tests.models.dynamic_nets import export
        return export(name), cases
    build.integer_inputs = integer_inputs
    return build


# Exported by torch (tests/models/dynamic_nets.py): built only where torch is installed.
TORCH_BUILDERS = {
    "torch_gap": _torch("gap", [{"x": (1, 3, 32, 32)}, {"x": (3, 3, 17, 45)},
                                {"x": (2, 3, 64, 20)}]),
    "torch_gru": _torch("gru", [{"x": (1, 1, 6)}, {"x": (3, 9, 6)}, {"x": (2, 30, 6)}]),
    "torch_lstm": _torch("lstm", [{"x": (1, 1, 6)}, {"x": (3, 9, 6)}, {"x": (2, 30, 6)}]),
    "torch_crnn": _torch("crnn", [{"x": (1, 1, 8, 8)}, {"x": (3, 1, 8, 40)},
                                  {"x": (2, 1, 8, 100)}]),
    "torch_encdec": _torch("encdec", [{"src": (1, 1), "tgt": (1, 1)},
                                      {"src": (2, 7), "tgt": (2, 3)},
                                      {"src": (3, 40), "tgt": (3, 9)}], integer_inputs=True),
}


def feed_for(builder, shapes: dict, seed: int) -> dict:
    """Random inputs of the given shapes: token ids for a model that embeds them."""
    rng = np.random.default_rng(seed)
    if getattr(builder, "integer_inputs", False):
        return {n: rng.integers(0, 50, s) for n, s in shapes.items()}
    return {n: rng.standard_normal(s).astype(np.float32) for n, s in shapes.items()}
