"""Softmax, LogSoftmax, Hardmax, LpNormalization, RMSNormalization, LayerNormalization,
InstanceNormalization and BatchNormalization against onnxruntime (onnx.reference where
onnxruntime differs)."""
from __future__ import annotations

import numpy as np
import onnxc
import pytest
from onnx import TensorProto, helper
from onnxc.errors import ModelError

from .harness import check_model, check_node, node_model, rand


def _compile(model, tmp_path):
    return onnxc.compile(model, out_dir=tmp_path, strict=True)


# -- Softmax / LogSoftmax ------------------------------------------------------------------------

@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
@pytest.mark.parametrize("shape,axis", [((2, 3, 9, 9), -1), ((2, 3, 5, 7), 1), ((3, 5, 7), 0),
                                        ((2, 3, 5, 7), -2), ((11,), 0), ((4, 13), -1)])
def test_softmax_single_axis(tmp_path, op, shape, axis):
    check_node(tmp_path, op, [rand(*shape)], {"axis": axis}, opset=13)


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
def test_softmax_attention_scores_opset17(tmp_path, op):
    # torch's F.softmax(scores, dim=-1) on (batch, heads, query, key)
    check_node(tmp_path, op, [rand(2, 4, 7, 7)], {"axis": -1}, opset=17)


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
def test_softmax_default_axis(tmp_path, op):
    check_node(tmp_path, op, [rand(2, 3, 5)], {}, opset=13)


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
@pytest.mark.parametrize("axis", [None, 0, 2, -1, -3])
def test_softmax_flattening_before_13(tmp_path, op, axis):
    # Before opset 13 the input is flattened to 2-D at `axis` (default 1).
    attrs = {} if axis is None else {"axis": axis}
    check_node(tmp_path, op, [rand(2, 3, 5, 3)], attrs, opset=11)


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
def test_softmax_is_stable_for_large_inputs(tmp_path, op):
    x = rand(3, 9) * 300.0 + 1000.0     # exp(x) overflows without the max shift
    check_node(tmp_path, op, [x], {"axis": -1}, opset=13)


@pytest.mark.parametrize("op,inputs,opset", [
    ("Softmax", [(3, 4, 5)], 7),              # schema version 1
    ("LogSoftmax", [(3, 4, 5)], 7),
    ("LpNormalization", [(3, 4, 5)], 22),
    ("InstanceNormalization", [(2, 3, 4), (3,), (3,)], 22),
    ("LayerNormalization", [(2, 3, 4), (4,), (4,)], 22),
    ("BatchNormalization", [(2, 3, 4), (3,), (3,), (3,), (3,)], 14),
])
def test_schema_versions(tmp_path, op, inputs, opset):
    arrays = [rand(*s, seed=i, low=0.5, high=2.0) for i, s in enumerate(inputs)]
    check_node(tmp_path, op, arrays, {"axis": 1} if "Softmax" in op else {}, opset=opset)


# -- LpNormalization -----------------------------------------------------------------------------

@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("axis", [-1, 1, 0])
def test_lp_normalization(tmp_path, p, axis):
    check_node(tmp_path, "LpNormalization", [rand(3, 5, 7)], {"axis": axis, "p": p})


@pytest.mark.parametrize("p", [1, 2])
def test_lp_normalization_zero_row_stays_zero(tmp_path, p):
    x = rand(4, 9)
    x[1] = 0.0
    check_node(tmp_path, "LpNormalization", [x], {"axis": -1, "p": p})


def test_lp_normalization_bad_p(tmp_path):
    model = node_model("LpNormalization", [rand(3, 5)], {"p": 3})
    with pytest.raises(ModelError, match="p must be"):
        _compile(model, tmp_path)


# -- Hardmax ------------------------------------------------------------------------------------

@pytest.mark.parametrize("axis,opset", [(-1, 17), (0, 17), (1, 11)])
def test_hardmax_marks_the_first_largest(tmp_path, axis, opset):
    x = np.round(rand(4, 6, 5) * 2)          # ties: the first one wins
    check_node(tmp_path, "Hardmax", [x], {"axis": axis}, opset=opset)


# -- GroupNormalization and LRN ----------------------------------------------------------------

def _group_norm(shape, params: int, groups: int, opset: int):
    """onnx infers no output type for GroupNormalization: it is given here."""
    inputs = [rand(*shape), rand(params, seed=1), rand(params, seed=2)]
    model = node_model("GroupNormalization", inputs, {"num_groups": groups, "epsilon": 1e-3},
                       opset=opset)
    model.graph.output[0].CopyFrom(helper.make_tensor_value_info("y0", TensorProto.FLOAT,
                                                                 list(shape)))
    return model, {f"x{i}": a for i, a in enumerate(inputs)}


@pytest.mark.parametrize("shape,groups", [((2, 6, 5, 3), 3), ((1, 4, 7), 4), ((2, 6, 4), 1)])
def test_group_normalization(tmp_path, shape, groups):
    model, feeds = _group_norm(shape, shape[1], groups, 21)
    check_model(model, feeds, tmp_path, use="reference")


def test_group_normalization_rejects_uneven_groups(tmp_path):
    model, _ = _group_norm((1, 6, 4), 6, 4, 21)
    with pytest.raises(ModelError, match="groups|cannot reshape"):
        _compile(model, tmp_path)


@pytest.mark.parametrize("size", [1, 3, 5])
def test_lrn(tmp_path, size):
    check_node(tmp_path, "LRN", [rand(2, 7, 5, 3)], {"size": size, "alpha": 0.01, "bias": 2.0})


def test_lrn_even_size_follows_the_spec(tmp_path):
    """onnxruntime takes odd sizes only and onnx.reference loops over the wrong axis: the
    spec's window [c - floor((size-1)/2), c + ceil((size-1)/2)] in numpy instead."""
    x, size, alpha, beta, bias = rand(2, 7, 5, 3), 4, 0.01, 0.75, 2.0
    model = node_model("LRN", [x], {"size": size, "alpha": alpha, "beta": beta, "bias": bias})
    (got,) = onnxc.compile(model, out_dir=tmp_path, strict=True).run(None, {"x0": x})
    sq = np.zeros_like(x)
    for c in range(x.shape[1]):
        lo, hi = max(0, c - (size - 1) // 2), min(x.shape[1], c + size // 2 + 1)
        sq[:, c] = (x[:, lo:hi] ** 2).sum(axis=1)
    np.testing.assert_allclose(got, x / (bias + alpha / size * sq) ** beta, rtol=1e-5, atol=1e-6)


# -- RMSNormalization ---------------------------------------------------------------------------

@pytest.mark.parametrize("axis,scale_shape", [(-1, (7,)), (1, (5, 7)), (1, (1, 7)), (0, (3, 5, 7))])
def test_rms_normalization(tmp_path, axis, scale_shape):
    check_node(tmp_path, "RMSNormalization", [rand(3, 5, 7), rand(*scale_shape, seed=1)],
               {"axis": axis, "epsilon": 1e-3}, opset=23)


# -- LayerNormalization --------------------------------------------------------------------------

def test_layernorm_last_axis_weight_bias_opset17(tmp_path):
    # torch nn.LayerNorm(hidden) export: axis=-1, Scale and B initializers
    x, w, b = rand(2, 5, 24), rand(24, seed=1), rand(24, seed=2)
    check_node(tmp_path, "LayerNormalization", [x, w, b], {"axis": -1, "epsilon": 1e-5},
               constant=(1, 2), opset=17)


@pytest.mark.parametrize("shape,axis", [((3, 7), -1), ((2, 3, 5, 7), -2), ((2, 3, 5), 1),
                                        ((4, 5, 3), 0), ((13, 1), -1)])
def test_layernorm_axes(tmp_path, shape, axis):
    norm = shape[axis:] if axis != 0 else shape
    check_node(tmp_path, "LayerNormalization",
               [rand(*shape), rand(*norm, seed=1), rand(*norm, seed=2)], {"axis": axis},
               opset=17)


def test_layernorm_without_bias_and_statistics(tmp_path):
    # Mean and InvStdDev (outputs 1, 2) are filled when asked for
    check_node(tmp_path, "LayerNormalization", [rand(2, 3, 5, 7), rand(5, 7, seed=1)],
               {"axis": -2, "epsilon": 1e-3}, constant=(1,), n_outputs=3, opset=17)


def test_layernorm_broadcast_scale_and_bias(tmp_path):
    check_node(tmp_path, "LayerNormalization",
               [rand(2, 3, 5, 7), rand(1, 7, seed=1), rand(5, 1, seed=2)], {"axis": -2},
               constant=(1, 2), opset=17)


# -- InstanceNormalization -----------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(2, 3, 5, 7), (1, 4, 9), (2, 3, 3, 4, 5)])
def test_instance_normalization(tmp_path, shape):
    c = shape[1]
    check_node(tmp_path, "InstanceNormalization", [rand(*shape), rand(c, seed=1),
                                                   rand(c, seed=2)], {"epsilon": 1e-4},
               constant=(1, 2))


def test_instance_normalization_opset6_runtime_params(tmp_path):
    check_node(tmp_path, "InstanceNormalization", [rand(2, 3, 4, 5), rand(3, seed=1),
                                                   rand(3, seed=2)], {}, opset=6)


# -- BatchNormalization --------------------------------------------------------------------------

def _bn_inputs(shape, seed=0):
    c = shape[1]
    return [rand(*shape, seed=seed), rand(c, seed=seed + 1), rand(c, seed=seed + 2),
            rand(c, seed=seed + 3), rand(c, seed=seed + 4, low=0.5, high=2.0)]


@pytest.mark.parametrize("shape", [(2, 3, 5, 7), (3, 5), (2, 3, 9), (1, 2, 3, 4, 5)])
@pytest.mark.parametrize("opset", [9, 15])
def test_batchnorm_constant_params(tmp_path, shape, opset):
    check_node(tmp_path, "BatchNormalization", _bn_inputs(shape), {"epsilon": 1e-3},
               constant=(1, 2, 3, 4), opset=opset)


@pytest.mark.parametrize("shape", [(2, 3, 5, 7), (4, 6)])
def test_batchnorm_runtime_params(tmp_path, shape):
    check_node(tmp_path, "BatchNormalization", _bn_inputs(shape), {}, opset=15)


def test_batchnorm_momentum_matches_onnx_reference(tmp_path):
    # onnxruntime may take a momentum attribute as training mode: compare with the spec.
    check_node(tmp_path, "BatchNormalization", _bn_inputs((2, 3, 4, 5)), {"momentum": 0.7},
               constant=(1, 2, 3, 4), opset=15, use="onnx")


def test_batchnorm_opset7_spatial0(tmp_path):
    x = rand(2, 3, 4)
    params = [rand(3, 4, seed=1), rand(3, 4, seed=2), rand(3, 4, seed=3),
              rand(3, 4, seed=4, low=0.5, high=2.0)]
    check_node(tmp_path, "BatchNormalization", [x] + params, {"spatial": 0},
               constant=(1, 2, 3, 4), opset=7)


def test_batchnorm_opset6_is_test(tmp_path):
    check_node(tmp_path, "BatchNormalization", _bn_inputs((2, 3, 4, 5)), {"is_test": 1},
               constant=(1, 2, 3, 4), opset=6, use="onnx")


@pytest.mark.parametrize("n_outputs", [1, 3])
@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (4, 3)])
def test_batchnorm_training_mode_uses_batch_statistics(tmp_path, n_outputs, shape):
    inputs = [rand(*shape) * 2 + 1] + _bn_inputs(shape)[1:]
    model = node_model("BatchNormalization", inputs, {"training_mode": 1, "momentum": 0.8},
                       n_outputs=n_outputs, opset=15)
    for i, out in enumerate(model.graph.output):
        out.type.CopyFrom(helper.make_tensor_type_proto(
            TensorProto.FLOAT, list(shape) if i == 0 else [shape[1]]))
    check_model(model, {f"x{i}": a for i, a in enumerate(inputs)}, tmp_path, use="reference")


@pytest.mark.parametrize("attrs,opset,n_outputs", [({}, 6, 1), ({}, 9, 5)])
def test_batchnorm_training_is_rejected(tmp_path, attrs, opset, n_outputs):
    model = node_model("BatchNormalization", _bn_inputs((2, 3, 4)), attrs, constant=(1, 2, 3, 4),
                       n_outputs=n_outputs, opset=opset)
    for i, out in enumerate(model.graph.output):    # inference leaves training outputs untyped
        out.type.CopyFrom(helper.make_tensor_type_proto(
            TensorProto.FLOAT, [2, 3, 4] if i == 0 else [3]))
    with pytest.raises(ModelError, match="training|is_test"):
        _compile(model, tmp_path)


@pytest.mark.parametrize("axes", [[0, 2, 3], [1], [0, 1, 2, 3], [3, 1]])
def test_mean_variance_normalization(tmp_path, axes):
    check_node(tmp_path, "MeanVarianceNormalization", [rand(3, 4, 5, 2)], {"axes": axes},
               opset=13)
