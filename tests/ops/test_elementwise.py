"""Elementwise ops against onnxruntime: every table row, broadcasting, odd sizes, dtypes."""
from __future__ import annotations

import numpy as np
import pytest

from tests.ops.harness import check_node, rand

UNARY_FLOAT = ["Neg", "Abs", "Exp", "Tanh", "Erf", "Sigmoid", "Floor", "Ceil", "Round", "Sin",
               "Cos", "Relu", "Softsign", "Tan", "Atan", "Sinh", "Cosh", "Asinh", "Softplus",
               "Sign"]
POSITIVE_ONLY = ["Sqrt", "Log", "Reciprocal", "Acosh"]
UNIT_INTERVAL = ["Asin", "Acos", "Atanh"]


@pytest.mark.parametrize("op", UNARY_FLOAT)
@pytest.mark.parametrize("shape", [(37,), (3, 5, 19)])
def test_unary(tmp_path, op, shape):
    x = rand(*shape) * 3
    if op == "Round":
        x[..., :4] = np.array([0.5, 1.5, -2.5, 2.4999], np.float32)[: x.shape[-1]]
    check_node(tmp_path, op, [x])


@pytest.mark.parametrize("op", POSITIVE_ONLY)
def test_unary_positive(tmp_path, op):
    check_node(tmp_path, op, [rand(4, 33, low=0.1, high=5.0) + (op == "Acosh")])


@pytest.mark.parametrize("op", UNIT_INTERVAL)
def test_unary_unit_interval(tmp_path, op):
    check_node(tmp_path, op, [rand(4, 33, low=-0.95, high=0.95)])


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div"])
@pytest.mark.parametrize("shapes", [((4, 37), (4, 37)), ((2, 3, 17), (17,)), ((5, 1, 7), (1, 6, 1)),
                                    ((1,), (3, 9)), ((), (4, 5))])
def test_binary_broadcast(tmp_path, op, shapes):
    a, b = rand(*shapes[0]), rand(*shapes[1], seed=1)
    if op == "Div":
        b = np.where(np.abs(b) < 0.1, 0.5, b).astype(np.float32)
    check_node(tmp_path, op, [a, b])


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul"])
def test_binary_int64(tmp_path, op):
    a = np.arange(-20, 20, dtype=np.int64).reshape(4, 10)
    check_node(tmp_path, op, [a, np.arange(10, dtype=np.int64) - 3])


def test_pow(tmp_path):
    check_node(tmp_path, "Pow", [rand(3, 17, low=0.5, high=2.0), rand(17, seed=2)])
    check_node(tmp_path, "Pow", [rand(3, 17), np.array(2.0, np.float32)], constant=(1,))


@pytest.mark.parametrize("op", ["Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual"])
def test_comparisons(tmp_path, op):
    a = np.round(rand(5, 13)).astype(np.float32)
    check_node(tmp_path, op, [a, np.round(rand(13, seed=3)).astype(np.float32)])


@pytest.mark.parametrize("op", ["And", "Or", "Xor"])
def test_logical(tmp_path, op):
    rng = np.random.default_rng(0)
    check_node(tmp_path, op, [rng.random((4, 9)) > 0.5, rng.random((9,)) > 0.5])


def test_not(tmp_path):
    check_node(tmp_path, "Not", [np.random.default_rng(1).random((3, 7)) > 0.5])


@pytest.mark.parametrize("op", ["Max", "Min", "Sum", "Mean"])
def test_variadic(tmp_path, op):
    check_node(tmp_path, op, [rand(3, 11), rand(11, seed=1), rand(3, 1, seed=2)])


@pytest.mark.parametrize("op,attrs", [("LeakyRelu", {"alpha": 0.07}), ("Elu", {"alpha": 0.8}),
                                      ("HardSigmoid", {"alpha": 0.3, "beta": 0.4}),
                                      ("HardSwish", {}), ("Selu", {}),
                                      ("Selu", {"alpha": 1.2, "gamma": 0.7}), ("Celu", {}),
                                      ("Celu", {"alpha": 1.7}), ("ThresholdedRelu", {}),
                                      ("ThresholdedRelu", {"alpha": 0.4}), ("Shrink", {}),
                                      ("Shrink", {"bias": 0.3, "lambd": 1.0})])
def test_parameterized_activations(tmp_path, op, attrs):
    check_node(tmp_path, op, [rand(2, 45) * 4], attrs)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu(tmp_path, approximate):
    check_node(tmp_path, "Gelu", [rand(3, 29) * 3], {"approximate": approximate}, opset=20)


def test_clip_inputs_and_attributes(tmp_path):
    x = rand(4, 21) * 5
    lo, hi = np.array(-1.0, np.float32), np.array(6.0, np.float32)
    check_node(tmp_path, "Clip", [x, lo, hi], constant=(1, 2))
    check_node(tmp_path, "Clip", [x, None, hi], constant=(2,))
    check_node(tmp_path, "Clip", [x], {"min": -0.5, "max": 0.5}, opset=6)


def test_where(tmp_path):
    rng = np.random.default_rng(0)
    check_node(tmp_path, "Where", [rng.random((3, 1, 8)) > 0.5, rand(3, 5, 8), rand(8, seed=4)])


@pytest.mark.parametrize("slope_shape", [(1,), (45,), (2, 45)])
def test_prelu_slope_broadcasts(tmp_path, slope_shape):
    check_node(tmp_path, "PRelu", [rand(2, 45) * 4, rand(*slope_shape, seed=1)])


def test_mish(tmp_path):
    check_node(tmp_path, "Mish", [rand(3, 19) * 4], opset=18)


def test_sign_of_integers(tmp_path):
    check_node(tmp_path, "Sign", [(rand(3, 11) * 5).astype(np.int32)])


@pytest.mark.parametrize("fmod", [0, 1])
@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.int64])
def test_mod_signs_follow_fmod(tmp_path, fmod, dtype):
    if fmod == 0 or dtype is not np.float32:
        a, b = (rand(5, 7) * 20).astype(dtype), (rand(7, seed=1) * 6).astype(dtype)
    else:
        a, b = rand(5, 7) * 20, rand(7, seed=1) * 6
    b[b == 0] = 3
    check_node(tmp_path, "Mod", [a, b], {"fmod": fmod}, use="reference")


@pytest.mark.parametrize("attrs", [{}, {"detect_negative": 0}, {"detect_positive": 0}])
def test_isinf_and_isnan(tmp_path, attrs):
    x = rand(3, 8)
    x[0, :3] = [np.inf, -np.inf, np.nan]
    check_node(tmp_path, "IsInf", [x], attrs)
    check_node(tmp_path, "IsNaN", [x])


def test_castlike_takes_the_second_inputs_type(tmp_path):
    check_node(tmp_path, "CastLike", [rand(4, 9) * 10, np.zeros(1, np.int32)])


@pytest.mark.parametrize("to,src", [(7, np.float32), (1, np.int64), (9, np.float32),
                                    (1, np.bool_), (6, np.float32)])
def test_cast(tmp_path, to, src):
    x = (rand(4, 13) * 10).astype(src) if src is not np.bool_ else rand(4, 13) > 0
    check_node(tmp_path, "Cast", [x], {"to": to})


def test_relu_keeps_nan(tmp_path):
    x = rand(40)
    x[3] = np.nan
    import onnxc

    from tests.ops.harness import node_model, reference
    got = onnxc.compile(node_model("Relu", [x]), out_dir=tmp_path).run(None, {"x0": x})[0]
    want = reference(node_model("Relu", [x]), {"x0": x})[0]
    assert np.isnan(got[3]) == np.isnan(want[3])


def test_float64_and_int_paths(tmp_path):
    check_node(tmp_path, "Sigmoid", [rand(3, 7).astype(np.float64) * 30])
    base = np.arange(-4, 5, dtype=np.int64)
    check_node(tmp_path, "Pow", [base, np.full(9, 3, np.int64)])


@pytest.mark.parametrize("alpha", [1.0, 0.5])
def test_swiglu(tmp_path, alpha):
    check_node(tmp_path, "SwiGLU", [rand(3, 17) * 3, rand(3, 17, seed=1)], {"alpha": alpha},
               opset=28, use="reference")
