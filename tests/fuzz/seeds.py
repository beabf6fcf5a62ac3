"""Small valid models the fuzzers start from: one or a few nodes of each op family, statically
shaped, every output's shape declared. Each builder returns a checked onnx.ModelProto."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

F, I32, I64, B = TensorProto.FLOAT, TensorProto.INT32, TensorProto.INT64, TensorProto.BOOL
OPSET = 17


def vi(name: str, elem: int, shape) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem, list(shape))


def const(name: str, values, dtype=np.float32) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(values, dtype=dtype), name)


def model(nodes, inputs, outputs, inits=(), opset: int = OPSET, name: str = "seed",
          infer: bool = True) -> onnx.ModelProto:
    """A model of nodes; with infer, outputs left without a shape (None) get the inferred one."""
    graph = helper.make_graph(nodes, name, inputs, outputs, list(inits))
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    if infer:
        m = onnx.shape_inference.infer_shapes(m, strict_mode=True)
        del m.graph.value_info[:]
    onnx.checker.check_model(m)
    return m


def unary(op: str, shape=(3, 4), **attrs):
    return model([helper.make_node(op, ["x"], ["y"], **attrs)], [vi("x", F, shape)],
                 [helper.make_empty_tensor_value_info("y")], name=op.lower())


def binary(op: str, a=(2, 3), b=(3,), elem=F, out_elem=None):
    return model([helper.make_node(op, ["a", "b"], ["y"])], [vi("a", elem, a), vi("b", elem, b)],
                 [helper.make_empty_tensor_value_info("y")], name=op.lower())


def matmul():
    w = const("w", np.arange(24).reshape(8, 3) / 10)
    return model([helper.make_node("MatMul", ["x", "w"], ["y"])], [vi("x", F, (4, 8))],
                 [vi("y", F, (4, 3))], [w], name="matmul")


def gemm():
    return model([helper.make_node("Gemm", ["a", "b", "c"], ["y"], transB=1, alpha=0.5)],
                 [vi("a", F, (3, 4)), vi("b", F, (5, 4)), vi("c", F, (5,))],
                 [vi("y", F, (3, 5))], name="gemm")


def conv():
    w = const("w", np.linspace(-1, 1, 54).reshape(3, 2, 3, 3))
    return model([helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1],
                                   strides=[1, 1], kernel_shape=[3, 3])],
                 [vi("x", F, (1, 2, 6, 6))], [vi("y", F, (1, 3, 6, 6))], [w], name="conv")


def pool(op: str = "MaxPool"):
    return model([helper.make_node(op, ["x"], ["y"], kernel_shape=[2, 2], strides=[2, 2])],
                 [vi("x", F, (1, 2, 6, 6))], [vi("y", F, (1, 2, 3, 3))], name=op.lower())


def reduce(op: str = "ReduceSum"):
    axes = [helper.make_node("Constant", [], ["axes"],
                             value=const("axes", [1], np.int64))] if op == "ReduceSum" else []
    node = helper.make_node(op, ["x", "axes"] if axes else ["x"], ["y"], keepdims=1,
                            **({} if axes else {"axes": [1]}))
    return model(axes + [node], [vi("x", F, (2, 3, 4))], [vi("y", F, (2, 1, 4))],
                 name=op.lower())


def softmax():
    return model([helper.make_node("Softmax", ["x"], ["y"], axis=-1)], [vi("x", F, (2, 5))],
                 [vi("y", F, (2, 5))], name="softmax")


def transpose():
    return model([helper.make_node("Transpose", ["x"], ["y"], perm=[2, 0, 1])],
                 [vi("x", F, (2, 3, 4))], [vi("y", F, (4, 2, 3))], name="transpose")


def reshape():
    return model([helper.make_node("Reshape", ["x", "s"], ["y"])], [vi("x", F, (2, 3, 4))],
                 [vi("y", F, (6, 4))], [const("s", [6, -1], np.int64)], name="reshape")


def concat():
    return model([helper.make_node("Concat", ["a", "b"], ["y"], axis=1)],
                 [vi("a", F, (2, 3)), vi("b", F, (2, 2))], [vi("y", F, (2, 5))], name="concat")


def gather(indices=(0, 4, 2)):
    return model([helper.make_node("Gather", ["x", "i"], ["y"], axis=0)], [vi("x", F, (5, 3))],
                 [vi("y", F, (len(indices), 3))], [const("i", indices, np.int64)],
                 name="gather")


def gather_input():
    return model([helper.make_node("Gather", ["x", "i"], ["y"], axis=0)],
                 [vi("x", F, (5, 3)), vi("i", I64, (2,))], [vi("y", F, (2, 3))],
                 name="gather_input")


def slice_():
    inits = [const("s", [1, 0], np.int64), const("e", [3, 4], np.int64),
             const("ax", [0, 1], np.int64), const("st", [1, 2], np.int64)]
    return model([helper.make_node("Slice", ["x", "s", "e", "ax", "st"], ["y"])],
                 [vi("x", F, (4, 5))], [vi("y", F, (2, 2))], inits, name="slice")


def cast(to: int = I32):
    return model([helper.make_node("Cast", ["x"], ["y"], to=to)], [vi("x", F, (3, 4))],
                 [vi("y", to, (3, 4))], name="cast")


def int_binary(op: str = "Div", elem: int = I32):
    return binary(op, (2, 3), (2, 3), elem)


def where():
    return model([helper.make_node("Greater", ["a", "b"], ["c"]),
                  helper.make_node("Where", ["c", "a", "b"], ["y"])],
                 [vi("a", F, (2, 3)), vi("b", F, (2, 3))], [vi("y", F, (2, 3))], name="where")


def pad():
    return model([helper.make_node("Pad", ["x", "p", "v"], ["y"], mode="constant")],
                 [vi("x", F, (2, 3))], [vi("y", F, (4, 4))],
                 [const("p", [1, 0, 1, 1], np.int64), const("v", 0.5)], name="pad")


def mlp():
    w, b = const("w", np.ones((4, 3)) / 4), const("b", [0.1, -0.2, 0.3])
    return model([helper.make_node("MatMul", ["x", "w"], ["h"]),
                  helper.make_node("Add", ["h", "b"], ["z"]),
                  helper.make_node("Relu", ["z"], ["y"])],
                 [vi("x", F, (2, 4))], [vi("y", F, (2, 3))], [w, b], name="mlp")


def conv_bn_relu():
    inits = [const("w", np.linspace(-1, 1, 36).reshape(2, 2, 3, 3)), const("s", [1.0, 0.5]),
             const("bb", [0.1, 0.2]), const("m", [0.0, 0.1]), const("v", [1.0, 2.0])]
    return model([helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
                  helper.make_node("BatchNormalization", ["c", "s", "bb", "m", "v"], ["n"]),
                  helper.make_node("Relu", ["n"], ["y"])],
                 [vi("x", F, (1, 2, 5, 5))], [vi("y", F, (1, 2, 5, 5))], inits, name="convbn")


def layernorm():
    return model([helper.make_node("LayerNormalization", ["x", "g", "b"], ["y"], axis=-1)],
                 [vi("x", F, (2, 3, 4))], [vi("y", F, (2, 3, 4))],
                 [const("g", np.ones(4)), const("b", np.zeros(4))], name="layernorm")


def split_mul():
    return model([helper.make_node("Split", ["x", "sp"], ["a", "b"], axis=1),
                  helper.make_node("Mul", ["a", "b"], ["y"])],
                 [vi("x", F, (2, 6))], [vi("y", F, (2, 3))], [const("sp", [3, 3], np.int64)],
                 name="splitmul")


def topk():
    return model([helper.make_node("TopK", ["x", "k"], ["v", "i"], axis=-1)],
                 [vi("x", F, (3, 6))], [vi("v", F, (3, 2)), vi("i", I64, (3, 2))],
                 [const("k", [2], np.int64)], name="topk")


def argmax():
    return model([helper.make_node("ArgMax", ["x"], ["y"], axis=1, keepdims=0)],
                 [vi("x", F, (3, 5))], [vi("y", I64, (3,))], name="argmax")


def expand_tile():
    return model([helper.make_node("Expand", ["x", "s"], ["e"]),
                  helper.make_node("Tile", ["e", "r"], ["y"])],
                 [vi("x", F, (3, 1))], [vi("y", F, (3, 8))],
                 [const("s", [3, 4], np.int64), const("r", [1, 2], np.int64)], name="expandtile")


def cumsum():
    return model([helper.make_node("CumSum", ["x", "a"], ["y"])], [vi("x", F, (2, 5))],
                 [vi("y", F, (2, 5))], [const("a", 1, np.int64)], name="cumsum")


def clip():
    return model([helper.make_node("Clip", ["x", "lo", "hi"], ["y"])], [vi("x", F, (3, 4))],
                 [vi("y", F, (3, 4))], [const("lo", -0.5), const("hi", 0.5)], name="clip")


def seeds() -> dict[str, onnx.ModelProto]:
    """Every seed model by name (a fixed order: the fuzzers index it)."""
    builders = {
        "relu": lambda: unary("Relu"), "sigmoid": lambda: unary("Sigmoid"),
        "erf": lambda: unary("Erf"), "add": lambda: binary("Add"),
        "pow": lambda: binary("Pow", (2, 3), (2, 3)), "matmul": matmul, "gemm": gemm,
        "conv": conv, "maxpool": pool, "avgpool": lambda: pool("AveragePool"),
        "reducesum": reduce, "reducemean": lambda: reduce("ReduceMean"), "softmax": softmax,
        "transpose": transpose, "reshape": reshape, "concat": concat, "gather": gather,
        "gather_input": gather_input, "slice": slice_, "cast": cast,
        "div_int": int_binary, "mod_int": lambda: int_binary("Mod", I64),
        "add_int": lambda: int_binary("Add", I32), "where": where, "pad": pad, "mlp": mlp,
        "conv_bn_relu": conv_bn_relu, "layernorm": layernorm, "split_mul": split_mul,
        "topk": topk, "argmax": argmax, "expand_tile": expand_tile, "cumsum": cumsum,
        "clip": clip,
    }
    return {name: build() for name, build in builders.items()}
