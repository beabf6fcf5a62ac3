"""CumSum, CumProd and ReverseSequence (compiler/ops/cumulative.py) against onnxruntime, or
against onnx.reference where onnxruntime lacks the op (CumProd-26) or rejects the input."""
from __future__ import annotations

import numpy as np
import onnxc
import pytest
from onnxc.errors import ModelError

from .harness import assert_close, check_node, feeds_of, node_model, rand, reference

I32, I64, F32, F64 = np.int32, np.int64, np.float32, np.float64
FLAGS = [(0, 0), (1, 0), (0, 1), (1, 1)]      # (exclusive, reverse)
# every axis of each shape, negative ones included
AXES = [((7,), 0), ((7,), -1), ((3, 5), 0), ((3, 5), 1), ((3, 5), -1), ((3, 5), -2),
        ((2, 3, 5), 0), ((2, 3, 5), 1), ((2, 3, 5), 2), ((2, 3, 5), -1), ((2, 3, 5), -3)]


def scan_data(op, shape, dtype=F32, seed=0):
    if op == "CumProd":      # factors near 1: the products stay O(1)
        return rand(*shape, seed=seed, low=0.5, high=1.5).astype(dtype)
    if np.dtype(dtype).kind == "i":
        return np.random.default_rng(seed).integers(-9, 9, shape).astype(dtype)
    return rand(*shape, seed=seed).astype(dtype)


def scan_opset(op):
    return (26, "reference") if op == "CumProd" else (14, "ort")


def compile_once_run_axes(tmp_path, op, x, axis_dtype, attrs):
    """One model with the axis as a graph input; every axis value runs on the same library."""
    opset, use = scan_opset(op)
    model = node_model(op, [x, np.array(0, axis_dtype)], attrs, opset=opset)
    compiled = onnxc.compile(model, out_dir=tmp_path, strict=True)
    for axis in range(-x.ndim, x.ndim):
        feeds = feeds_of(model, [x, np.array(axis, axis_dtype)])
        (got,), (want,) = compiled.run(None, feeds), reference(model, feeds, use)
        assert_close(got, want, what=f"axis {axis}")


# -- CumSum / CumProd --------------------------------------------------------------------------
@pytest.mark.parametrize("op", ["CumSum", "CumProd"])
@pytest.mark.parametrize("shape,axis", AXES)
@pytest.mark.parametrize("exclusive,reverse", FLAGS)
def test_scan_constant_axis(tmp_path, op, shape, axis, exclusive, reverse):
    opset, use = scan_opset(op)
    check_node(tmp_path, op, [scan_data(op, shape), np.array(axis, I64)],
               {"exclusive": exclusive, "reverse": reverse}, constant=(1,), opset=opset, use=use)


@pytest.mark.parametrize("op", ["CumSum", "CumProd"])
@pytest.mark.parametrize("axis_dtype", [I32, I64])
@pytest.mark.parametrize("exclusive,reverse", FLAGS)
def test_scan_runtime_axis(tmp_path, op, axis_dtype, exclusive, reverse):
    compile_once_run_axes(tmp_path, op, scan_data(op, (2, 3, 5)), axis_dtype,
                          {"exclusive": exclusive, "reverse": reverse})


@pytest.mark.parametrize("dtype", [I32, I64, F64])
@pytest.mark.parametrize("exclusive,reverse", [(0, 0), (1, 1)])
def test_cumsum_dtypes(tmp_path, dtype, exclusive, reverse):
    compile_once_run_axes(tmp_path, "CumSum", scan_data("CumSum", (4, 3), dtype), I64,
                          {"exclusive": exclusive, "reverse": reverse})


@pytest.mark.parametrize("dtype", [I32, F64])
def test_cumprod_dtypes(tmp_path, dtype):
    x = np.random.default_rng(1).integers(-3, 4, (3, 4)).astype(dtype)
    compile_once_run_axes(tmp_path, "CumProd", x, I32, {"exclusive": 1})


@pytest.mark.parametrize("shape,axis", [((5, 64), 1), ((64, 3, 33), 1), ((40, 1000), -1),
                                        ((1000, 40), 0)])
def test_cumsum_large(tmp_path, shape, axis):
    """Sizes where the default schedule vectorizes the rows and runs outer loops on the pool:
    the scan loop itself must stay serial."""
    check_node(tmp_path, "CumSum", [rand(*shape), np.array(axis, I64)], constant=(1,),
               opset=14, rtol=1e-4, atol=1e-3)


def test_cumsum_opset11(tmp_path):
    check_node(tmp_path, "CumSum", [rand(4, 6), np.array(-1, I32)], {"reverse": 1},
               constant=(1,), opset=11)


def test_cumsum_empty(tmp_path):
    check_node(tmp_path, "CumSum", [rand(0, 3), np.array(0, I64)], constant=(1,), opset=14,
               use="reference")


# -- ReverseSequence ---------------------------------------------------------------------------
def lengths(batch, steps, seed=0):
    """Random lengths in [0, steps], both ends included."""
    lens = np.random.default_rng(seed).integers(0, steps + 1, batch).astype(I64)
    lens[0], lens[-1] = steps, 0 if batch > 2 else lens[-1]
    return lens


@pytest.mark.parametrize("shape,batch_axis,time_axis", [
    ((4, 5), 0, 1), ((5, 4), 1, 0), ((3, 7, 2), 0, 1), ((7, 3, 2), 1, 0), ((3, 6, 2, 5), 0, 1),
])
@pytest.mark.parametrize("dtype", [F32, I32, F64])
def test_reverse_sequence(tmp_path, shape, batch_axis, time_axis, dtype):
    x = scan_data("CumSum", shape, dtype)
    lens = lengths(shape[batch_axis], shape[time_axis])
    check_node(tmp_path, "ReverseSequence", [x, lens],
               {"batch_axis": batch_axis, "time_axis": time_axis}, opset=10)


def test_reverse_sequence_lengths_out_of_range(tmp_path):
    """A length over the time axis reverses all of it (as onnx.reference does); one under 0
    reverses nothing. Either way no element is read outside the input."""
    x = rand(4, 5)
    lens = np.array([9, -3, 5, 2], I64)
    model = node_model("ReverseSequence", [x, lens], {"batch_axis": 0, "time_axis": 1},
                       opset=10)
    compiled = onnxc.compile(model, out_dir=tmp_path, strict=True)
    (got,) = compiled.run(None, feeds_of(model, [x, lens]))
    want = np.stack([x[0, ::-1], x[1], x[2, ::-1], np.r_[x[3, 1::-1], x[3, 2:]]])
    assert_close(got, want)


# -- errors ------------------------------------------------------------------------------------
def compile_fails(tmp_path, model, match):
    with pytest.raises(ModelError, match=match):
        onnxc.compile(model, out_dir=tmp_path)


def test_scan_axis_out_of_range(tmp_path):
    model = node_model("CumSum", [rand(3, 4), np.array(2, I64)], constant=(1,), opset=14)
    compile_fails(tmp_path, model, "out of range")


def test_scan_axis_not_scalar(tmp_path):
    model = node_model("CumSum", [rand(3, 4), np.array([0, 1], I64)], opset=14)
    compile_fails(tmp_path, model, "axis must hold one value")


def test_reverse_sequence_same_axes(tmp_path):
    model = node_model("ReverseSequence", [rand(3, 4), np.array([1, 2, 3], I64)],
                       {"batch_axis": 0, "time_axis": 0}, opset=10)
    compile_fails(tmp_path, model, "must be 0 and 1")
