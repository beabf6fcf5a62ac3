"""The fuzzers' regression corpus, as builders (a few hundred bytes of code each instead of
model files): the known defects and the distinct failures the campaigns found, each reduced
to a minimal model.

A "frontend" case must plan and describe (`onnxc info`) without an exception other than an
OnnxcError (IRError excluded); a "refuse" case must also be refused by plan (an OnnxcError);
a "run" case is compiled and run in a worker process next to
onnxruntime (tests/fuzz/differential.py) and its outcome must be one of `allowed`.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper

from tests.fuzz.mutate import Mutant
from tests.fuzz.seeds import I32, I64, F, const, model, vi

# Outcomes a run case may have where onnxc must not crash, but either answer or refuse.
NO_CRASH = frozenset({"ok", "both-refuse", "ort-refuses-onnxc-accepts",
                      "onnxc-refuses-ort-accepts"})
# onnxc must refuse what onnxruntime refuses (at compile time or with a run-time status).
REFUSE = frozenset({"both-refuse"})
OK = frozenset({"ok"})


@dataclass(frozen=True)
class Case:
    name: str
    kind: str                                   # "frontend", "refuse" or "run"
    build: Callable[[], bytes]
    what: str                                   # the defect, one line
    feed: Callable[[], dict] | None = None      # run cases: the inputs
    allowed: frozenset = OK
    open_bug: str = ""      # an open bug no change addresses yet: the test is a strict xfail


CASES: dict[str, Case] = {}


def case(kind: str, what: str, feed=None, allowed=OK, open_bug=""):
    def register(build):
        CASES[build.__name__] = Case(build.__name__, kind, build, what, feed, allowed, open_bug)
        return build
    return register


def _bytes(m: onnx.ModelProto) -> bytes:
    return m.SerializeToString()


def _unchecked(nodes, inputs, outputs, inits=(), opset=17) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "corpus", inputs, outputs, list(inits))
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


# ---- run cases ---------------------------------------------------------------------------------

@case("run", "declared output shape [1,4] trusted over the computed [4096,4] (MatMul)",
      feed=lambda: {"x": np.ones((4096, 4), np.float32)})
def declared_shape_matmul() -> bytes:
    w = const("w", np.eye(4))
    return _bytes(_unchecked([helper.make_node("MatMul", ["x", "w"], ["y"])],
                             [vi("x", F, (4096, 4))], [vi("y", F, (1, 4))], [w]))


@case("run", "integer Div by zero: SIGFPE instead of a status or a value",
      feed=lambda: {"a": np.array([[7, -7, 1]], np.int32), "b": np.array([[0, 2, 0]], np.int32)},
      allowed=NO_CRASH)
def div_int_by_zero() -> bytes:
    return _bytes(model([helper.make_node("Div", ["a", "b"], ["y"])],
                        [vi("a", I32, (1, 3)), vi("b", I32, (1, 3))], [vi("y", I32, (1, 3))]))


@case("run", "integer Mod by zero: SIGFPE instead of a status or a value",
      feed=lambda: {"a": np.array([5, -5], np.int64), "b": np.array([0, 3], np.int64)},
      allowed=NO_CRASH)
def mod_int_by_zero() -> bytes:
    return _bytes(model([helper.make_node("Mod", ["a", "b"], ["y"])],
                        [vi("a", I64, (2,)), vi("b", I64, (2,))], [vi("y", I64, (2,))]))


@case("run", "Gather with a constant index out of range (5 of 5 rows) is wrapped, not refused",
      feed=lambda: {"x": np.arange(15, dtype=np.float32).reshape(5, 3)}, allowed=REFUSE)
def gather_const_index_out_of_range() -> bytes:
    return _bytes(_unchecked([helper.make_node("Gather", ["x", "i"], ["y"], axis=0)],
                             [vi("x", F, (5, 3))], [vi("y", F, (2, 3))],
                             [const("i", [0, 5], np.int64)]))


@case("run", "Gather with an input index out of range (7 of 5 rows) is wrapped, not refused",
      feed=lambda: {"x": np.arange(15, dtype=np.float32).reshape(5, 3),
                    "i": np.array([1, 7], np.int64)}, allowed=REFUSE)
def gather_input_index_out_of_range() -> bytes:
    return _bytes(model([helper.make_node("Gather", ["x", "i"], ["y"], axis=0)],
                        [vi("x", F, (5, 3)), vi("i", I64, (2,))], [vi("y", F, (2, 3))]))


# ---- frontend cases ----------------------------------------------------------------------------

def _raw_tensor(name: str, dims: list[int], data: bytes) -> onnx.TensorProto:
    """A float32 tensor whose raw_data need not match its dims (make_tensor checks)."""
    t = onnx.TensorProto(name=name, data_type=TensorProto.FLOAT, raw_data=data)
    t.dims.extend(dims)
    return t


def _relu(name_bytes: bytes | None = None, where: str = "input") -> bytes:
    m = Mutant(model([helper.make_node("Relu", ["x"], ["y"])], [vi("x", F, (2, 3))],
                     [vi("y", F, (2, 3))]))
    if name_bytes is not None:
        bad, g = m.name_of(name_bytes), m.model.graph
        if where == "input":
            g.input[0].name = bad
            g.node[0].input[0] = bad
        elif where == "node":
            g.node[0].name = bad
        else:
            g.name = bad
    return m.serialize()


@case("frontend", "an input name that is not UTF-8 (0xff 0xfe): traceback")
def invalid_utf8_input_name() -> bytes:
    return _relu(b"\xff\xfe", "input")


@case("frontend", "a node name that is not UTF-8: traceback")
def invalid_utf8_node_name() -> bytes:
    return _relu(b"\xc3\x28", "node")


@case("frontend", "a graph name holding a NUL byte: traceback")
def nul_in_graph_name() -> bytes:
    return _relu(b"a\x00b", "graph")


@case("frontend", "an initializer with more data than its dims (7 floats for [2, 3])")
def initializer_longer_than_dims() -> bytes:
    w = _raw_tensor("w", [2, 3], np.ones(7, np.float32).tobytes())
    return _bytes(_unchecked([helper.make_node("Add", ["x", "w"], ["y"])],
                             [vi("x", F, (2, 3))], [vi("y", F, (2, 3))], [w]))


@case("frontend", "raw_data not a multiple of the element size (5 bytes of float32)")
def initializer_partial_element() -> bytes:
    w = _raw_tensor("w", [1], b"\0" * 5)
    return _bytes(_unchecked([helper.make_node("Add", ["x", "w"], ["y"])],
                             [vi("x", F, (1,))], [vi("y", F, (1,))], [w]))


@case("frontend", "a negative input dim (-7): dynamic, as onnxruntime reads it")
def negative_input_dim() -> bytes:
    return _bytes(_unchecked([helper.make_node("Relu", ["x"], ["y"])], [vi("x", F, (2, -7))],
                             [vi("y", F, (2, 3))]))


@case("frontend", "Gemm with a rank-1 operand")
def gemm_rank1_operand() -> bytes:
    return _bytes(_unchecked([helper.make_node("Gemm", ["a", "b"], ["y"])],
                             [vi("a", F, (4,)), vi("b", F, (4, 3))], [vi("y", F, (1, 3))]))


@case("frontend", "MatMul with rank-1 operands whose lengths differ")
def matmul_rank1_mismatch() -> bytes:
    return _bytes(_unchecked([helper.make_node("MatMul", ["a", "b"], ["y"])],
                             [vi("a", F, (4,)), vi("b", F, (3,))], [vi("y", F, ())]))


@case("refuse", "a huge input dim (2**62: 2**64 bytes) is planned")
def huge_input_dim() -> bytes:
    return _bytes(_unchecked([helper.make_node("Relu", ["x"], ["y"])], [vi("x", F, (2, 2**62))],
                             [vi("y", F, (2, 2**62))]))


@case("refuse", "a huge Pad value (2**40: an 8 TiB output)")
def huge_pad() -> bytes:
    return _bytes(_unchecked([helper.make_node("Pad", ["x", "p"], ["y"])], [vi("x", F, (2, 3))],
                             [vi("y", F, (2, 3))], [const("p", [0, 0, 0, 2**40], np.int64)]))


@case("frontend", "an initializer of an unknown data type (1000)")
def unknown_initializer_dtype() -> bytes:
    m = _unchecked([helper.make_node("Add", ["x", "w"], ["y"])], [vi("x", F, (2,))],
                   [vi("y", F, (2,))], [const("w", [1.0, 2.0])])
    m.graph.initializer[0].data_type = 1000
    return _bytes(m)


@case("frontend", "an output elem_type of 120 (`onnxc info` formats it)")
def output_elem_type_120() -> bytes:
    m = _unchecked([helper.make_node("Relu", ["x"], ["y"])], [vi("x", F, (2,))],
                   [vi("y", F, (2,))])
    m.graph.output[0].type.tensor_type.elem_type = 120
    return _bytes(m)


# ---- found by the campaigns --------------------------------------------------------------------

@case("run", "ArgMax keepdims=2: IRError (the shape rule and the lowering read it apart)",
      feed=lambda: {"x": np.arange(15, dtype=np.float32).reshape(3, 5) % 4})
def argmax_keepdims_2() -> bytes:
    return _bytes(_unchecked([helper.make_node("ArgMax", ["x"], ["y"], axis=1, keepdims=2)],
                             [vi("x", F, (3, 5))], [vi("y", I64, (3,))]))


@case("run", "ReduceSum keepdims=3: IRError (the shape rule and the lowering read it apart)",
      feed=lambda: {"x": np.arange(24, dtype=np.float32).reshape(2, 3, 4)})
def reducesum_keepdims_3() -> bytes:
    return _bytes(_unchecked([helper.make_node("ReduceSum", ["x", "a"], ["y"], keepdims=3)],
                             [vi("x", F, (2, 3, 4))], [vi("y", F, (2, 4))],
                             [const("a", [1], np.int64)]))


def _one(op: str, inputs, outputs, inits=(), **attrs) -> bytes:
    names = [i.name for i in inputs] + [t.name for t in inits]
    return _bytes(_unchecked([helper.make_node(op, names, [o.name for o in outputs], **attrs)],
                             inputs, outputs, inits))


@case("frontend", "Conv pads of 3 values for 2 spatial axes: IndexError")
def conv_pads_wrong_length() -> bytes:
    return _one("Conv", [vi("x", F, (1, 2, 6, 6))], [vi("y", F, (1, 3, 6, 6))],
                [const("w", np.ones((3, 2, 3, 3)))], pads=[1, 1, 1])


@case("frontend", "Conv output declared [1,3,6,6,2**31] (rank 5): ValueError in implicit_gemm")
def conv_declared_rank5_output() -> bytes:
    return _one("Conv", [vi("x", F, (1, 2, 6, 6))], [vi("y", F, (1, 3, 6, 6, 2**31))],
                [const("w", np.ones((3, 2, 3, 3)))], pads=[1, 1, 1, 1])


@case("frontend", "AveragePool output declared of rank 5: IRError")
def avgpool_declared_rank5_output() -> bytes:
    return _one("AveragePool", [vi("x", F, (1, 2, 6, 6))], [vi("y", F, (1, 2, 3, 3, 5))],
                kernel_shape=[2, 2], strides=[2, 2])


@case("frontend", "AveragePool output declared [1,2,2**62,3]: ValueError (array is too big)")
def avgpool_declared_huge_output() -> bytes:
    return _one("AveragePool", [vi("x", F, (1, 2, 6, 6))], [vi("y", F, (1, 2, 2**62, 3))],
                kernel_shape=[2, 2], strides=[2, 2])


@case("frontend", "Relu output declared int32 for a float32 result: IRError (stores float32)")
def relu_declared_int32_output() -> bytes:
    return _one("Relu", [vi("x", F, (2, 3))], [vi("y", I32, (2, 3))])


@case("frontend", "Gather of a rank-1 input, output declared [2, 3]: IRError")
def gather_declared_rank2_output() -> bytes:
    return _one("Gather", [vi("x", F, (5,)), vi("i", I64, (2,))], [vi("y", F, (2, 3))], axis=0)


@case("frontend", "Gather on an input with zero dims, output declared [3]: IndexError")
def gather_zero_dims_input() -> bytes:
    return _one("Gather", [vi("x", F, (5, 3, 0, 0))], [vi("y", F, (3,))],
                [const("i", [0, 1, 2], np.int64)], axis=0)


@case("frontend", "LayerNormalization of a [0,3,4,0,0] input: ZeroDivisionError")
def layernorm_zero_dims_input() -> bytes:
    return _one("LayerNormalization", [vi("x", F, (0, 3, 4, 0, 0))], [vi("y", F, (2, 3, 4))],
                [const("g", np.ones(4)), const("b", np.zeros(4))], axis=-1)


@case("frontend", "Gemm with a rank-3 operand: ValueError (too many values to unpack)")
def gemm_rank3_operand() -> bytes:
    return _one("Gemm", [vi("a", F, (3, 4, 1)), vi("b", F, (5, 4)), vi("c", F, (5,))],
                [vi("y", F, (3, 5))], transB=1)


@case("frontend", "Reshape to a float32 shape tensor holding NaN: ValueError")
def reshape_nan_shape() -> bytes:
    return _one("Reshape", [vi("x", F, (2, 3, 4))], [vi("y", F, (6, 4))],
                [const("s", [np.nan, 4.0])])


@case("frontend", "Constant whose int16 tensor holds 4 values for dims [1]: ValueError")
def constant_longer_than_dims() -> bytes:
    value = onnx.TensorProto(name="v", data_type=TensorProto.INT16, raw_data=bytes(8))
    value.dims.append(1)
    return _bytes(_unchecked([helper.make_node("Constant", [], ["a"], value=value),
                              helper.make_node("ReduceSum", ["x", "a"], ["y"])],
                             [vi("x", F, (2, 3))], [vi("y", F, (2, 1))]))


@case("refuse", "Expand then Tile of an input with a negative dim: ValueError in folding")
def expand_negative_dim() -> bytes:
    return _bytes(_unchecked([helper.make_node("Expand", ["x", "s"], ["e"]),
                              helper.make_node("Tile", ["e", "r"], ["y"])],
                             [vi("x", F, (3, -7))], [vi("y", F, (3, 8))],
                             [const("s", [3, 4], np.int64), const("r", [1, 2], np.int64)]))


@case("run", "Gemm bias C [4] for a [3, 5] result (not broadcastable): was accepted, and the "
      "kernel read C out of bounds (ASan: heap-buffer-overflow in k_Gemm_0)",
      feed=lambda: {"a": np.ones((3, 4), np.float32), "b": np.ones((5, 4), np.float32),
                    "c": np.arange(4, dtype=np.float32)}, allowed=REFUSE)
def gemm_bias_not_broadcastable() -> bytes:
    return _one("Gemm", [vi("a", F, (3, 4)), vi("b", F, (5, 4)), vi("c", F, (4,))],
                [vi("y", F, (3, 5))], transB=1)


@case("run", "LayerNormalization scale and bias [4] for a normalized axis of 2: was accepted",
      feed=lambda: {"x": np.arange(12, dtype=np.float32).reshape(2, 3, 2)}, allowed=REFUSE)
def layernorm_scale_longer_than_axis() -> bytes:
    return _one("LayerNormalization", [vi("x", F, (2, 3, 2))], [vi("y", F, (2, 3, 2))],
                [const("g", np.ones(4)), const("b", np.zeros(4))], axis=-1)


@case("run", "LayerNormalization in float16: SIGSEGV in the compiled model",
      feed=lambda: {"x": np.linspace(-2, 2, 24, dtype=np.float16).reshape(2, 3, 4)},
      allowed=NO_CRASH)
def layernorm_float16() -> bytes:
    h = TensorProto.FLOAT16
    return _one("LayerNormalization", [vi("x", h, (2, 3, 4))], [vi("y", h, (2, 3, 4))],
                [const("g", np.ones(4), np.float16), const("b", np.zeros(4), np.float16)],
                axis=-1)


@case("run", "Conv of a batch of 6 with its output declared [1,3,6,6]: the buffer sized by the "
      "declaration overflows (free(): invalid pointer, SIGABRT)",
      feed=lambda: {"x": np.ones((6, 2, 6, 6), np.float32)})
def conv_declared_smaller_batch() -> bytes:
    return _one("Conv", [vi("x", F, (6, 2, 6, 6))], [vi("y", F, (1, 3, 6, 6))],
                [const("w", np.ones((3, 2, 3, 3)))], pads=[1, 1, 1, 1])
