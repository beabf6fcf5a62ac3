"""Faults in the values a run reads (issue 16: the runtime never aborts). An integer division
by zero and an index outside its axis end the run with a status naming the node, as
onnxruntime does, instead of a SIGFPE or a silently wrapped index; the same compiled model
then runs valid input. A constant zero divisor is refused at compile time (onnxruntime
refuses it at load)."""
from __future__ import annotations

import os

import numpy as np
import onnxc
import pytest
from onnxc.errors import ModelError, RuntimeFailure

from .harness import assert_close, feeds_of, node_model, reference

I32, I64 = np.int32, np.int64


def compiled(tmp_path, op, inputs, attrs=None, constant=(), opset=17):
    model = node_model(op, inputs, attrs, constant, opset=opset)
    return model, onnxc.compile(model, out_dir=tmp_path, strict=True)


def outcome_in_child(lib, feeds) -> str:
    """How a run ends in a forked child: "ok", the exception's type, or the signal that
    killed it (a trap would otherwise end the test process itself)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:     # the child: report and leave without running any cleanup
        os.close(read)
        try:
            lib.run(None, feeds)
            outcome = "ok"
        except BaseException as exc:    # noqa: BLE001 - reported to the parent
            outcome = type(exc).__name__
        os.write(write, outcome.encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        outcome = pipe.read().decode()
    _, status = os.waitpid(pid, 0)
    return f"killed by signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status) else outcome


def expect_fault(lib, feeds, op: str, message: str, trap: bool = False) -> None:
    if trap:
        assert outcome_in_child(lib, feeds) == "RuntimeFailure"
    with pytest.raises(RuntimeFailure, match=rf"node '{op.lower()}_node' \({op}\): {message}"):
        lib.run(None, feeds)


def matches_reference(model, lib, inputs, constant=()) -> None:
    feeds = feeds_of(model, inputs, constant)
    for i, (got, want) in enumerate(zip(lib.run(None, feeds), reference(model, feeds))):
        assert_close(got, want, what=f"output {i}")


# -- integer division ----------------------------------------------------------------------------
def _operands(dtype):
    if np.issubdtype(dtype, np.signedinteger):
        return np.array([7, -7, 9, -9, 100, 0], dtype), np.array([2, 2, -1, -4, 7, 3], dtype)
    return np.array([7, 200, 9, 0, 100, 5], dtype), np.array([2, 3, 4, 1, 7, 250], dtype)


DIVISIONS = [("Div", {}, I32), ("Div", {}, I64), ("Div", {}, np.int8), ("Div", {}, np.uint8),
             ("Div", {}, np.uint64), ("Mod", {}, I32), ("Mod", {}, np.int16),
             ("Mod", {"fmod": 1}, I64), ("Mod", {}, np.uint32)]


@pytest.mark.parametrize("op, attrs, dtype", DIVISIONS)
def test_zero_divisor_at_run_time(tmp_path, op, attrs, dtype):
    a, b = _operands(dtype)
    model, lib = compiled(tmp_path, op, [a, b], attrs)
    zero = b.copy()
    zero[3] = 0
    expect_fault(lib, {"x0": a, "x1": zero}, op, "integer division by zero", trap=True)
    matches_reference(model, lib, [a, b])


def test_zero_scalar_divisor_broadcast(tmp_path):
    a = np.arange(-6, 6, dtype=I32).reshape(3, 4)
    model, lib = compiled(tmp_path, "Div", [a, np.array(5, I32)])
    expect_fault(lib, {"x0": a, "x1": np.array(0, I32)}, "Div", "integer division by zero",
                 trap=True)
    matches_reference(model, lib, [a, np.array(-5, I32)])


@pytest.mark.parametrize("dtype", [I32, I64])
@pytest.mark.parametrize("op, attrs", [("Div", {}), ("Mod", {}), ("Mod", {"fmod": 1})])
@pytest.mark.parametrize("constant", [(), (1,)])
def test_int_min_by_minus_one(tmp_path, op, attrs, dtype, constant):
    """x86's idiv traps on INT_MIN / -1 (onnxruntime dies of SIGFPE): the quotient wraps to
    INT_MIN, as numpy's, and the remainder is 0. (C computes 8- and 16-bit types as int,
    where the division cannot trap; _operands covers their -1.)"""
    low = np.iinfo(dtype).min
    a = np.array([low, low, 7, -7, low + 1, low], dtype)
    b = np.array([-1, 1, -1, -1, -1, 2], dtype)
    _, lib = compiled(tmp_path, op, [a, b], attrs, constant)
    feeds = {"x0": a} if constant else {"x0": a, "x1": b}
    assert outcome_in_child(lib, feeds) == "ok"
    want = np.array([low, low, -7, 7, -(low + 1), low // 2], dtype) if op == "Div" \
        else np.zeros(6, dtype)
    np.testing.assert_array_equal(lib.run(None, feeds)[0], want)


@pytest.mark.parametrize("op, attrs", [("Div", {}), ("Mod", {}), ("Mod", {"fmod": 1})])
@pytest.mark.parametrize("constant", [(1,), (0, 1)])
def test_constant_zero_divisor_is_refused(tmp_path, op, attrs, constant):
    a, b = np.array([4, 5, 6], I64), np.array([1, 0, 2], I64)
    with pytest.raises(ModelError, match=rf"node '{op.lower()}_node' \({op}\): integer "
                                         "division by zero"):
        compiled(tmp_path, op, [a, b], attrs, constant)


def test_float_division_keeps_ieee(tmp_path):
    """Floats divide by zero to inf and nan, with no check kernel."""
    a, b = np.array([1, -1, 0, 3], np.float32), np.array([0, 0, 0, 2], np.float32)
    model, lib = compiled(tmp_path, "Div", [a, b])
    matches_reference(model, lib, [a, b])
    sources = [path.read_text() for path in tmp_path.rglob("*.c")]
    assert sources and not any("_check(" in text for text in sources)


# -- indices outside their axis -------------------------------------------------------------------
DATA = np.arange(12, dtype=np.float32).reshape(3, 4)
ONES = np.ones((1, 4), np.float32)
# op, inputs (data, indices[, updates]), attributes, opset, indices outside the axis, message
INDEXED = [
    ("Gather", [DATA, np.array([[0, -3], [2, -1]], I64)], {}, 13,
     np.array([[0, 3], [2, -1]], I64), r"an index is outside \[-3, 2\]"),
    ("Gather", [DATA, np.array([1, -4], I32)], {"axis": 1}, 13,
     np.array([-5, 0], I32), r"an index is outside \[-4, 3\]"),
    ("GatherElements", [DATA, np.array([[0, -1, 2, -3]], I64)], {}, 13,
     np.array([[0, -4, 2, 1]], I64), r"an index is outside \[-3, 2\]"),
    ("GatherElements", [DATA, np.array([[3, -4], [0, 1]], I32)], {"axis": 1}, 13,
     np.array([[3, 4], [0, 1]], I32), r"an index is outside \[-4, 3\]"),
    ("GatherND", [DATA, np.array([[0, -1], [-3, 3]], I64)], {}, 13,
     np.array([[0, -1], [-3, 4]], I64), r"an index tuple is outside \[-3, 2\] x \[-4, 3\]"),
    ("GatherND", [DATA, np.array([[1], [-1], [-4]], I64)], {"batch_dims": 1}, 13,
     np.array([[1], [4], [-4]], I64), r"an index tuple is outside \[-4, 3\]"),
    ("ScatterElements", [DATA, np.array([[0, -1, 1, -3]], I64), ONES], {}, 13,
     np.array([[0, 3, 1, 2]], I64), r"an index is outside \[-3, 2\]"),
    ("ScatterElements", [DATA, np.array([[0, -1, 1, -3]], I32), ONES], {"reduction": "add"},
     18, np.array([[0, -5, 1, 2]], I32), r"an index is outside \[-3, 2\]"),
    ("ScatterND", [DATA, np.array([[-1, 1], [0, -4]], I64), np.ones(2, np.float32)], {}, 13,
     np.array([[-1, 1], [0, 4]], I64), r"an index tuple is outside \[-3, 2\] x \[-4, 3\]"),
    ("ScatterND", [DATA, np.array([[-3], [1]], I64), np.ones((2, 4), np.float32)],
     {"reduction": "mul"}, 18, np.array([[3], [1]], I64), r"an index tuple is outside \[-3, 2\]"),
    ("Scatter", [DATA, np.array([[0, -1, 1, -3]], I64), ONES], {}, 10,
     np.array([[0, 3, 1, 2]], I64), r"an index is outside \[-3, 2\]"),
]


@pytest.mark.parametrize("op, inputs, attrs, opset, bad, message", INDEXED,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(INDEXED)])
def test_index_outside_axis_at_run_time(tmp_path, op, inputs, attrs, opset, bad, message):
    model, lib = compiled(tmp_path, op, inputs, attrs, opset=opset)
    matches_reference(model, lib, inputs)     # negative indices count from the end
    expect_fault(lib, dict(feeds_of(model, inputs), x1=bad), op, message)
    matches_reference(model, lib, inputs)


@pytest.mark.parametrize("op, inputs, attrs, opset, bad, message",
                         [c for c in INDEXED if c[0] != "Gather"],
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(INDEXED) if c[0] != "Gather"])
def test_constant_index_outside_axis_is_refused(tmp_path, op, inputs, attrs, opset, bad,
                                                message):
    with pytest.raises(ModelError, match=rf"node '{op.lower()}_node' \({op}\): {message}"):
        compiled(tmp_path, op, [inputs[0], bad, *inputs[2:]], attrs, constant=(1,),
                 opset=opset)


@pytest.mark.parametrize("op", ["Gather", "GatherElements"])
def test_index_into_empty_axis(tmp_path, op):
    """No index lies in an empty axis: the run fails, and nothing reads the empty data."""
    data = np.zeros((0, 3), np.float32)
    index = np.array([0], I64) if op == "Gather" else np.zeros((1, 3), I64)
    model, lib = compiled(tmp_path, op, [data, index], opset=13)
    expect_fault(lib, feeds_of(model, [data, index]), op, r"an index is outside \[0, -1\]")


def test_one_hot_index_outside_depth(tmp_path):
    """OneHot is not an error: an index outside [-depth, depth-1] gives a row of off values
    (the ONNX spec, and onnxruntime)."""
    inputs = [np.array([[0, -1, -4, -5], [3, 4, 7, -100]], I64), np.array(4, I64),
              np.array([-2, 5], np.float32)]
    model, lib = compiled(tmp_path, "OneHot", inputs, {"axis": 1}, constant=(1, 2), opset=11)
    matches_reference(model, lib, inputs, constant=(1, 2))
