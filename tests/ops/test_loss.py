"""NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss against onnxruntime."""
from __future__ import annotations

import numpy as np
import onnxc
import pytest
from onnxc.errors import ModelError

from .harness import check_node, node_model, rand

OPS = ["NegativeLogLikelihoodLoss", "SoftmaxCrossEntropyLoss"]


def _targets(shape, classes, seed=0, dtype=np.int64, ignore=None):
    """Random classes; with `ignore`, about a quarter of them set to it."""
    rng = np.random.default_rng(seed)
    t = rng.integers(0, classes, shape).astype(dtype)
    if ignore is not None:
        t[rng.random(shape) < 0.25] = ignore
    return t


def _attrs(reduction, ignore_index):
    attrs = {"reduction": reduction}
    if ignore_index is not None:
        attrs["ignore_index"] = ignore_index
    return attrs


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("shape", [(5, 7), (3, 4, 5), (2, 3, 5, 7)])
def test_loss(tmp_path, op, reduction, weighted, shape):
    x = rand(*shape)
    t = _targets(shape[:1] + shape[2:], shape[1])
    w = rand(shape[1], seed=1, low=0.2, high=2.0) if weighted else None
    check_node(tmp_path, op, [x, t, w], {"reduction": reduction}, opset=13)


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("ignore_index", [0, 2, -1, 100])
def test_loss_ignore_index(tmp_path, op, reduction, weighted, ignore_index):
    # -1 and 100 lie outside the classes: ignored targets must not be read as classes.
    shape = (4, 6, 3, 5)
    x = rand(*shape)
    t = _targets((4, 3, 5), 6, seed=3, ignore=ignore_index)
    w = rand(6, seed=1, low=0.2, high=2.0) if weighted else None
    check_node(tmp_path, op, [x, t, w], _attrs(reduction, ignore_index), opset=13)


@pytest.mark.parametrize("op", OPS)
def test_loss_int32_targets_default_reduction(tmp_path, op):
    x = rand(7, 11, 3)
    t = _targets((7, 3), 11, seed=5, dtype=np.int32)
    check_node(tmp_path, op, [x, t], {}, opset=13)


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("ignore_index", [None, 1])
def test_sce_log_prob(tmp_path, reduction, ignore_index):
    x = rand(3, 9, 2, 5) * 4.0
    t = _targets((3, 2, 5), 9, seed=7, ignore=ignore_index)
    w = rand(9, seed=2, low=0.2, high=2.0)
    check_node(tmp_path, "SoftmaxCrossEntropyLoss", [x, t, w],
               _attrs(reduction, ignore_index), n_outputs=2, opset=13)


def test_sce_is_stable_for_large_scores(tmp_path):
    x = rand(4, 13) * 300.0 + 1000.0     # exp(x) overflows without the max shift
    check_node(tmp_path, "SoftmaxCrossEntropyLoss", [x, _targets((4,), 13)],
               {"reduction": "none"}, n_outputs=2, opset=13)


@pytest.mark.parametrize("op,opset", [("NegativeLogLikelihoodLoss", 12),
                                      ("NegativeLogLikelihoodLoss", 22),
                                      ("SoftmaxCrossEntropyLoss", 12)])
def test_schema_versions(tmp_path, op, opset):
    x = rand(5, 3, 4)
    check_node(tmp_path, op, [x, _targets((5, 4), 3)], {"reduction": "sum"}, opset=opset)


def test_double_input(tmp_path):
    x = rand(6, 5, 4, dtype=np.float64)
    w = rand(5, seed=1, dtype=np.float64, low=0.2, high=2.0)
    check_node(tmp_path, "SoftmaxCrossEntropyLoss", [x, _targets((6, 4), 5), w], {}, opset=13)


@pytest.mark.parametrize("op", OPS)
def test_bad_reduction_is_a_model_error(tmp_path, op):
    x = rand(3, 4)
    model = node_model(op, [x, _targets((3,), 4)], {"reduction": "max"}, opset=13)
    with pytest.raises(ModelError, match="reduction"):
        onnxc.compile(model, out_dir=tmp_path, strict=True)


@pytest.mark.parametrize("op,reduction", [("SoftmaxCrossEntropyLoss", "none"),
                                          ("NegativeLogLikelihoodLoss", "mean")])
def test_loss_large_enough_for_threads(tmp_path, op, reduction):
    # 32768 positions: the per-position kernels get a parallel loop
    x = rand(2, 8, 128, 128)
    t = _targets((2, 128, 128), 8, seed=9, ignore=3)
    n_outputs = 2 if op == "SoftmaxCrossEntropyLoss" else 1
    check_node(tmp_path, op, [x, t], _attrs(reduction, 3), n_outputs=n_outputs, opset=13)
