"""Symbolic dimensions: canonical forms, shape arithmetic and the symbolic memory plan."""
from __future__ import annotations

import numpy as np
import pytest
from onnxc.frontend.symshape import SYMBOLIC_EVAL
from onnxc.graph.ir import Node
from onnxc.loop.interp import run_program
from onnxc.loop.ir import (
    Binary,
    Buffer,
    Const,
    Kernel,
    Load,
    Program,
    Store,
    Symbol,
    Var,
    loops,
)
from onnxc.loop.symbolic import (
    broadcast_shapes,
    canon,
    dim_str,
    evaluate,
    lower_bound,
    product,
)
from onnxc.lower.memory import plan_memory

B, S = Var("dim0_batch"), Var("dim1_seq")


@pytest.mark.parametrize("expr, text", [
    (B * 768 // 768, "dim0_batch"),
    (B * S * 768 // (S * 768), "dim0_batch"),
    ((B + 3) * 2 - B, "(dim0_batch + 6)"),
    (S * B - B * S, "0"),
    (Binary("max", B, Const(1, "int64")), "dim0_batch"),
    (Binary("min", B + 1, B), "dim0_batch"),
    (B * 6 % 3, "0"),
])
def test_canonical_forms(expr, text):
    assert dim_str(expr) == text


def test_equal_expressions_compare_equal():
    assert canon(2 * B + S) == canon(S + B * 2)
    assert product([B, 3, S]) == canon(S * 3 * B)
    assert canon((B - 1) // 2 + 1) != canon(B // 2)     # a floor division is kept as such


def test_evaluate_and_bounds():
    assert evaluate((B - 1) // 2 + 1, {"dim0_batch": 7}) == 4
    assert lower_bound(B * 3 + S) == 4
    assert lower_bound(B - S) is None
    with pytest.raises(ValueError, match="no value"):
        evaluate(B + S, {"dim0_batch": 1})


def test_broadcast_shapes():
    assert broadcast_shapes((B, 1, 4), (S, 1)) == (B, S, 4)
    assert broadcast_shapes((3, 4), (4,)) == (3, 4)
    with pytest.raises(ValueError):
        broadcast_shapes((B,), (S,))      # equal only for some values of the symbols
    with pytest.raises(ValueError):
        broadcast_shapes((3,), (4,))


def _objects(*values):
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def test_shape_subgraph_evaluates_symbolically():
    shape = _objects(B, S, 8)
    (n,) = SYMBOLIC_EVAL["Gather"](Node("Gather", "g", ("s", "i"), ("o",), (("axis", 0),)),
                                   [shape, np.array(1, np.int64)])
    assert n[()] == S
    (cat,) = SYMBOLIC_EVAL["Concat"](Node("Concat", "c", (), (), (("axis", 0),)),
                                     [shape[:1], np.array([-1, 2], np.int64)])
    assert list(cat) == [B, -1, 2]
    (mul,) = SYMBOLIC_EVAL["Mul"](Node("Mul", "m", (), ()), [shape, np.int64(2)])
    assert list(mul) == [canon(B * 2), canon(S * 2), 16]
    # all numbers again: an int64 array, no longer symbolic
    (ints,) = SYMBOLIC_EVAL["Slice"](Node("Slice", "s", (), ()), [
        shape, np.array([2], np.int64), np.array([3], np.int64)])
    assert ints.dtype == np.int64 and list(ints) == [8]


def _chain_program():
    """Three kernels: t1 = x + 1 (batch elements), t2 = t1 * 2 (2 * batch), y = t2 summed
    in pairs; t1 and t2 live at once, t3 after t1 dies may not reuse bytes it cannot fit."""
    x = Buffer("in_x", "float32", (B,))
    t1 = Buffer("t1", "float32", (B,))
    t2 = Buffer("t2", "float32", (canon(B * 2),))
    y = Buffer("out_y", "float32", (B,))
    k1 = Kernel("k1", "n1", "Add", loops([("i", B)], lambda i: Store(
        t1, (i,), Load(x, (i,)) + 1.0)))
    k2 = Kernel("k2", "n2", "Mul", loops([("i", canon(B * 2))], lambda i: Store(
        t2, (i,), Load(t1, (i // 2,)) * 2.0)))
    k3 = Kernel("k3", "n3", "Add", loops([("i", B)], lambda i: Store(
        y, (i,), Load(t2, (i * 2,)) + Load(t2, (i * 2 + 1,)))))
    return Program("p", (x,), (y,), (), (t1, t2), (k1, k2, k3), input_names=("x",),
                   output_names=("y",), symbols=(Symbol(B),))


def test_symbolic_plan_places_each_buffer_above_those_it_lives_with():
    prog = plan_memory(_chain_program())
    offsets = dict(prog.offsets)
    assert offsets["t1"] == 0
    assert isinstance(offsets["t2"], Binary)       # the end of t1, known at run time
    for batch in (1, 5, 100):
        at = {"dim0_batch": batch}
        t1_end = 64 * -(-batch * 4 // 64)
        assert evaluate(_substituted(offsets["t2"], {"t1_at": 0}), at) == t1_end
    x = np.arange(6, dtype=np.float32)
    (y,) = run_program(prog, {"x": x}, dims={"dim0_batch": 6})
    np.testing.assert_allclose(y, 4 * (x + 1))


def _substituted(expr, offsets):
    from onnxc.loop.visit import substitute
    return substitute(expr, {Var(k): Const(v, "int64") for k, v in offsets.items()})


def test_bounded_plan_is_static_at_the_upper_bounds():
    prog = _chain_program()
    import dataclasses
    prog = plan_memory(dataclasses.replace(prog, symbols=(Symbol(B, 1, 16),)))
    assert all(isinstance(o, int) for _, o in prog.offsets)
    assert prog.arena_size == 64 + 128       # t1 (16 floats) then t2 (32 floats)


def test_a_run_time_symbol_may_be_zero():
    """An input's dimension is at least 1; an extent the data decides (NonZero's count) may
    be 0, so max(count, 1) stays a max and count's least value is 0."""
    from onnxc.loop.symbolic import at_least_one, lower_bound, run_time_var
    count, batch = run_time_var(0, "nz", 1), Var("dim0_batch")
    assert at_least_one(batch) == batch
    assert at_least_one(count) != count
    assert lower_bound(canon(count * 3 + 2)) == 2
    assert lower_bound(canon(batch * 3 + 2)) == 5
