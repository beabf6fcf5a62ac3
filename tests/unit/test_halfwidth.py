"""widen_half_floats: float16/bfloat16 tensors are stored in 16 bits at the model's edges and
computed in float32 inside, with onnxruntime's (or onnx.reference's) numbers."""
from __future__ import annotations

import ml_dtypes
import numpy as np
import onnxc
import pytest
from onnx import TensorProto, helper
from onnxc.loop.printer import program_str
from onnxc.lower.pipeline import compile_program
from onnxc.targets import get_target

from tests.ops.harness import check_model, check_node, node_model, rand

F16, BF16 = np.float16, ml_dtypes.bfloat16


def _chain(dtype_code: int, shape=(3, 17)):
    """x -> Softmax -> Mul(x) -> Cast(float) -> Cast(back): temporaries of the 16-bit type."""
    vi = helper.make_tensor_value_info
    nodes = [helper.make_node("Softmax", ["x"], ["s"], axis=-1),
             helper.make_node("Mul", ["s", "x"], ["m"]),
             helper.make_node("Cast", ["m"], ["f"], to=TensorProto.FLOAT),
             helper.make_node("Cast", ["f"], ["y"], to=dtype_code)]
    g = helper.make_graph(nodes, "half", [vi("x", dtype_code, list(shape))],
                          [vi("y", dtype_code, list(shape))])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def test_inside_is_float32_and_edges_convert():
    text = program_str(compile_program(_chain(TensorProto.FLOAT16), get_target("x86_64"))[1])
    assert "float16" in text                       # the input and output keep 16 bits
    temps = [line for line in text.splitlines() if line.lstrip().startswith("temp ")]
    assert temps and not any("float16" in line for line in temps)


@pytest.mark.parametrize("op,shapes", [("Add", [(4, 9), (9,)]), ("Mul", [(3, 5), (3, 5)]),
                                       ("Relu", [(40,)]), ("Sigmoid", [(2, 33)])])
def test_float16_elementwise(tmp_path, op, shapes):
    check_node(tmp_path, op, [rand(*s, seed=i).astype(F16) for i, s in enumerate(shapes)])


def test_float16_matmul_accumulates_in_float32(tmp_path):
    """onnxruntime's float16 MatMul rounds partial sums; onnxc's equals the float32 product
    rounded once."""
    a, b = rand(5, 12).astype(F16), rand(12, 7, seed=1).astype(F16)
    model = node_model("MatMul", [a, b])
    (got,) = onnxc.compile(model, out_dir=tmp_path, strict=True).run(None, {"x0": a, "x1": b})
    want = (a.astype(np.float32) @ b.astype(np.float32)).astype(F16)
    assert got.dtype == F16
    np.testing.assert_allclose(got.astype(np.float32), want.astype(np.float32), rtol=1e-3,
                               atol=1e-3)


@pytest.mark.parametrize("shape, kernel, pads", [((1, 3, 9, 8), (4, 3, 3, 3), [1, 1, 1, 1]),
                                                 ((2, 4, 11), (4, 1, 3), [2, 0])])
def test_float16_convolution_computes_in_float32(tmp_path, shape, kernel, pads):
    """The float32 convolution of the widened values, rounded once at the output (Conv's
    schema has no bfloat16)."""
    half = F16
    x, w = rand(*shape).astype(half), rand(*kernel, seed=1).astype(half)
    group = shape[1] if kernel[1] == 1 else 1
    model = node_model("Conv", [x, w], {"pads": pads, "group": group}, constant=(1,))
    (got,) = onnxc.compile(model, out_dir=tmp_path, strict=True).run(None, {"x0": x})
    wide = node_model("Conv", [x.astype(np.float32), w.astype(np.float32)],
                      {"pads": pads, "group": group}, constant=(1,))
    (want,) = onnxc.compile(wide, out_dir=tmp_path / "f32").run(None, {"x0": x.astype(np.float32)})
    assert got.dtype == half
    np.testing.assert_array_equal(got, want.astype(half))


def test_float16_softmax_layernorm(tmp_path):
    check_node(tmp_path, "Softmax", [rand(4, 19).astype(F16)], {"axis": -1})
    check_node(tmp_path, "LayerNormalization",
               [rand(3, 16).astype(F16), rand(16, seed=1).astype(F16),
                rand(16, seed=2).astype(F16)], {"axis": -1}, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("code,np_type", [(TensorProto.FLOAT16, F16),
                                          (TensorProto.BFLOAT16, BF16)])
def test_chain_rounds_where_the_graph_rounds(tmp_path, code, np_type):
    x = (rand(3, 17) * 4).astype(np_type)
    check_model(_chain(code), {"x": x}, tmp_path, use="reference", rtol=1e-2, atol=1e-2)


@pytest.mark.parametrize("to,src", [(TensorProto.FLOAT16, np.float32),
                                    (TensorProto.FLOAT, F16),
                                    (TensorProto.BFLOAT16, np.float32),
                                    (TensorProto.FLOAT, BF16),
                                    (TensorProto.INT32, F16)])
def test_casts_round_to_nearest_even(tmp_path, to, src):
    x = rand(5, 31) * 300
    if to != TensorProto.INT32:    # overflow to inf, ties, subnormals, signed zero
        x[0, :4] = [65504.0, 65520.0, 1e-7, -0.0]
    model = node_model("Cast", [x.astype(src)], {"to": to})
    check_model(model, {"x0": x.astype(src)}, tmp_path, use="reference", rtol=0, atol=0)
