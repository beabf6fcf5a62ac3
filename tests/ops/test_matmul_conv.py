"""MatMul, Gemm and Conv against onnxruntime: odd sizes that do not divide the tile or the
vector width, batching and broadcasting, transposes, strides, pads, groups, dilations."""
from __future__ import annotations

import numpy as np
import onnxc
import pytest

from tests.ops.harness import check_node, node_model, rand


@pytest.mark.parametrize("a,b", [((37, 29), (29, 45)), ((1, 29), (29, 10)), ((5, 3), (3, 1)),
                                 ((2, 3, 7, 29), (29, 45)), ((4, 1, 6, 8), (3, 8, 17)),
                                 ((29,), (29, 33)), ((6, 29), (29,)), ((64, 128), (128, 96))])
@pytest.mark.parametrize("weights_constant", [False, True])
def test_matmul(tmp_path, a, b, weights_constant):
    check_node(tmp_path, "MatMul", [rand(*a), rand(*b, seed=1)],
               constant=(1,) if weights_constant else (), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("attrs", [{}, {"transB": 1}, {"transA": 1}, {"transA": 1, "transB": 1},
                                   {"alpha": 0.5, "beta": 2.0, "transB": 1}])
@pytest.mark.parametrize("c_shape", [None, (33,), (1, 33), (5, 33), ()])
def test_gemm(tmp_path, attrs, c_shape):
    m, k, n = 5, 67, 33
    a = rand(k, m) if attrs.get("transA") else rand(m, k)
    b = rand(n, k, seed=1) if attrs.get("transB") else rand(k, n, seed=1)
    inputs = [a, b] + ([] if c_shape is None else [rand(*c_shape, seed=2)])
    check_node(tmp_path, "Gemm", inputs, attrs, constant=(1, 2), atol=1e-4)


CONV_CASES = [
    ((1, 3, 11, 13), (5, 3, 3, 3), {"pads": [1, 1, 1, 1]}),
    ((2, 4, 9, 10), (6, 2, 3, 2), {"group": 2, "strides": [2, 1], "dilations": [1, 2],
                                   "pads": [0, 1, 2, 0]}),
    ((1, 8, 7, 7), (8, 1, 3, 3), {"group": 8, "pads": [1, 1, 1, 1]}),            # depthwise
    ((1, 8, 15, 15), (16, 1, 3, 3), {"group": 8, "strides": [2, 2], "pads": [1, 1, 1, 1]}),
    ((1, 16, 7, 9), (20, 16, 1, 1), {}),                                          # pointwise
    ((1, 16, 8, 8), (20, 16, 1, 1), {"strides": [2, 2]}),
    ((1, 3, 20), (4, 3, 5), {"auto_pad": "SAME_UPPER"}),                         # 1-D
    ((1, 2, 10, 9), (3, 2, 4, 3), {"auto_pad": "SAME_LOWER", "strides": [2, 3]}),
    ((1, 2, 10, 9), (3, 2, 4, 3), {"auto_pad": "VALID"}),
    ((1, 3, 40, 40), (40, 3, 7, 7), {"strides": [2, 2], "pads": [3, 3, 3, 3]}),
    # implicit GEMM tiles with remainders: along 37 columns, along 36 rows, per group
    ((1, 20, 9, 37), (36, 20, 3, 3), {"pads": [1, 1, 1, 1]}),
    ((1, 20, 9, 37), (36, 20, 3, 3), {"pads": [2, 2, 2, 2], "dilations": [2, 2]}),
    ((1, 24, 11, 6), (36, 24, 3, 3), {"pads": [1, 0, 1, 0], "strides": [1, 2]}),
    ((1, 64, 6, 6), (64, 32, 3, 3), {"group": 2, "pads": [1, 1, 1, 1]}),
]


@pytest.mark.parametrize("x,w,attrs", CONV_CASES)
@pytest.mark.parametrize("bias", [False, True])
def test_conv(tmp_path, x, w, attrs, bias):
    inputs = [rand(*x), rand(*w, seed=1)] + ([rand(w[0], seed=2)] if bias else [])
    check_node(tmp_path, "Conv", inputs, attrs, constant=(1, 2), atol=1e-4)


def test_conv_runtime_weights(tmp_path):
    check_node(tmp_path, "Conv", [rand(1, 3, 9, 9), rand(4, 3, 3, 3, seed=1)],
               {"pads": [1, 1, 1, 1]}, atol=1e-4)


def test_conv_3d_is_a_clear_error(tmp_path):
    model = node_model("Conv", [rand(1, 2, 4, 4, 4), rand(3, 2, 2, 2, 2)], constant=(1,))
    with pytest.raises(onnxc.ModelError, match="1-D/2-D"):
        onnxc.compile(model, out_dir=tmp_path)


def test_matmul_threads_agree(tmp_path):
    """The parallel split of the tile loop gives the same numbers at 1 and 2 threads."""
    a, b = rand(96, 200), rand(200, 300, seed=1)
    model = node_model("MatMul", [a, b], constant=(1,))
    compiled = onnxc.compile(model, out_dir=tmp_path)
    outs = []
    for threads in (1, 2):
        compiled.set_num_threads(threads)
        outs.append(compiled.run(None, {"x0": a})[0])
    np.testing.assert_array_equal(outs[0], outs[1])


@pytest.mark.parametrize("op_type, inputs, attrs, constant", [
    ("MatMul", [rand(2, 24, 40), rand(40, 48, seed=1)], {}, (1,)),
    ("Gemm", [rand(33, 40), rand(36, 40, seed=1), rand(36, seed=2)], {"transB": 1}, (1, 2)),
    ("Conv", [rand(1, 16, 10, 10), rand(32, 16, 3, 3, seed=1), rand(32, seed=2)],
     {"pads": [1, 1, 1, 1]}, (1, 2)),
], ids=["matmul", "gemm", "conv"])
def test_float16_contractions(tmp_path, op_type, inputs, attrs, constant):
    """Large enough for GPU tiles: on a cuda target their products run on the tensor cores
    (float16 operands, float32 accumulators); on a CPU in float32."""
    check_node(tmp_path, op_type, [x.astype(np.float16) for x in inputs], attrs,
               constant=constant, rtol=1e-2, atol=1e-2)
