"""Einsum and Det (compiler/ops/linalg.py) against onnxruntime, or against onnx.reference where
onnxruntime has no kernel (Det of float64)."""
from __future__ import annotations

import numpy as np
import onnxc
import pytest
from onnxc.errors import ModelError
from onnxc.ops.linalg import parse_equation

from .harness import check_node, node_model, rand

I32, I64, F32, F64 = np.int32, np.int64, np.float32, np.float64


def operands(shapes, dtype=F32, seed=0):
    if np.dtype(dtype).kind == "i":
        rng = np.random.default_rng(seed)
        return [rng.integers(-5, 6, s).astype(dtype) for s in shapes]
    return [rand(*s, seed=seed + i).astype(dtype) for i, s in enumerate(shapes)]


# -- Einsum ------------------------------------------------------------------------------------
EQUATIONS = [
    ("ij->ji", [(3, 5)]),                           # transpose
    ("ba", [(3, 5)]),                               # implicit output: sorted labels (a, b)
    ("ij->i", [(3, 5)]),                            # row sums
    ("ij->", [(3, 5)]),                             # total
    ("ii->i", [(5, 5)]),                            # diagonal
    ("ii", [(5, 5)]),                               # trace (implicit)
    ("i,i", [(7,), (7,)]),                          # inner product
    ("i,j->ij", [(3,), (5,)]),                      # outer product
    ("ij,jk", [(3, 4), (4, 5)]),                    # matmul, implicit output
    ("bij, bjk -> bik", [(3, 2, 5), (3, 5, 7)]),    # batch matmul, spaces
    ("...ii->...i", [(2, 3, 4, 4)]),                # batched diagonal
    ("...ij,...jk->...ik", [(2, 3, 4), (2, 4, 5)]),
    ("i...->...", [(3, 2, 5)]),
    ("ij,jk,kl->il", [(3, 4), (4, 5), (5, 2)]),      # three operands
    ("bn,anm,bm->ba", [(2, 3), (4, 3, 5), (2, 5)]),  # bilinear
    ("Ab,bC->CA", [(3, 4), (4, 2)]),                 # upper-case labels are distinct
    ("iij->j", [(3, 3, 4)]),
]


@pytest.mark.parametrize("equation,shapes", EQUATIONS)
def test_einsum(tmp_path, equation, shapes):
    check_node(tmp_path, "Einsum", operands(shapes), {"equation": equation}, opset=12)


@pytest.mark.parametrize("dtype", [I32, I64, F64])
@pytest.mark.parametrize("equation,shapes", [("bij,bjk->bik", [(2, 3, 5), (2, 5, 4)]),
                                             ("ii->i", [(4, 4)]), ("ij->j", [(3, 5)])])
def test_einsum_dtypes(tmp_path, dtype, equation, shapes):
    check_node(tmp_path, "Einsum", operands(shapes, dtype), {"equation": equation}, opset=12)


def test_einsum_broadcast(tmp_path):
    """Ellipsis axes broadcast as numpy does: extent 1 against any."""
    x, y = operands([(2, 1, 3, 4), (1, 5, 4, 2)])
    check_node(tmp_path, "Einsum", [x, y], {"equation": "...ij,...jk->...ik"}, opset=12,
               use="reference")


def test_einsum_large(tmp_path):
    """Big enough for the default schedule to vectorize and use the pool."""
    check_node(tmp_path, "Einsum", operands([(4, 33, 64), (4, 64, 40)]),
               {"equation": "bij,bjk->bik"}, opset=12, rtol=1e-4, atol=1e-4)


def test_einsum_constant_operand(tmp_path):
    x, w = operands([(3, 4), (5, 4)])
    check_node(tmp_path, "Einsum", [x, w], {"equation": "ij,kj->ik"}, constant=(1,), opset=12)


# -- Det ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(2, 2), (3, 3), (5, 5), (3, 2, 2), (2, 3, 4, 4), (1, 7, 7)])
def test_det(tmp_path, shape):
    check_node(tmp_path, "Det", [rand(*shape)], opset=11, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("shape", [(3, 3), (4, 6, 6)])
def test_det_float64(tmp_path, shape):
    check_node(tmp_path, "Det", [rand(*shape, dtype=F64)], opset=22, rtol=1e-9, atol=1e-12,
               use="reference")


def test_det_special(tmp_path):
    """Singular matrices give 0, and pivoting handles a zero in the leading position."""
    mats = np.array([
        [[1, 2, 3], [2, 4, 6], [0, 1, 5]],          # two proportional rows
        [[1, 2, 3], [4, 5, 6], [7, 8, 9]],          # rank 2
        [[0, 0, 0], [1, 2, 3], [4, 5, 6]],          # a zero row
        [[0, 1, 0], [1, 0, 0], [0, 0, 1]],          # a permutation: -1
        [[0, 2, 1], [3, 0, 1], [1, 1, 0]],          # zero pivots without swaps
        [[2, 0, 0], [0, 3, 0], [0, 0, 4]],          # diagonal: 24
    ], F32)
    got = check_node(tmp_path, "Det", [mats], opset=11, atol=1e-5)
    np.testing.assert_allclose(got[0][[0, 2, 3, 5]], [0, 0, -1, 24], atol=1e-5)


def test_einsum_parse():
    """Implicit output: the ellipsis axes, then the labels used once in code-point order
    (upper case first); ellipsis axes of different counts align to the right."""
    spec = parse_equation("bA,a...", [(2, 3), (4, 5)])
    assert spec.output == ("0", "A", "a", "b") and spec.summed == ()
    spec = parse_equation("...ij,...jk->...ik", [(2, 1, 3, 4), (5, 4, 2)])
    assert spec.terms[1] == ("1", "j", "k") and spec.output == ("0", "1", "i", "k")
    assert spec.sizes == {"0": 2, "1": 5, "i": 3, "j": 4, "k": 2}
    assert parse_equation("ij,jk", [(2, 3), (3, 4)]).summed == ("j",)


# -- errors ------------------------------------------------------------------------------------
@pytest.mark.parametrize("equation,shapes,match", [
    ("ij,jk", [(2, 3)], "2 terms for 1 operands"),
    ("i.j", [(2, 3)], "character other than letters"),
    ("a...b...", [(2, 3)], "character other than letters"),
    ("i->j->k", [(2,)], "character other than letters"),
    ("ij->k", [(2, 3)], "'k' is in no input term"),
    ("ij->ii", [(2, 3)], "'i' is repeated"),
    ("ijk", [(2, 3)], "does not fit operand 0 of rank 2"),
    ("...i->i", [(2, 3)], "output has no '...'"),
    ("ij,jk", [(2, 3), (4, 5)], "label 'j' has extent 3 and 4"),
])
def test_einsum_malformed(equation, shapes, match):
    with pytest.raises(ModelError, match=match):
        parse_equation(equation, shapes)


def test_einsum_extent_mismatch_in_model(tmp_path):
    model = node_model("Einsum", operands([(3, 4), (5, 6)]), {"equation": "ij,jk"}, opset=12)
    with pytest.raises(ModelError, match="label 'j' has extent 4 and 5"):
        onnxc.compile(model, out_dir=tmp_path)


def test_det_too_big_for_the_stack(tmp_path):
    model = node_model("Det", [rand(400, 400, dtype=F64)], opset=11)
    with pytest.raises(ModelError, match="does not fit the stack"):
        onnxc.compile(model, out_dir=tmp_path)
