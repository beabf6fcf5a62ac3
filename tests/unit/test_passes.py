"""Pass tests: IR text before/after, and the interpreter giving the same numbers."""
from __future__ import annotations

import numpy as np
import pytest
from onnxc.errors import ScheduleError
from onnxc.loop.interp import Interpreter
from onnxc.loop.ir import Binary, Buffer, Const, Kernel, Load, Seq, Store, loops, shape_of
from onnxc.loop.printer import stmt_lines
from onnxc.lower.loops import flatten_buffers, partition_loops, remove_unit_loops, unroll_loops
from onnxc.lower.vectorize import promote_registers, vectorize_loops
from onnxc.schedule import primitives as P
from onnxc.schedule.apply import apply_schedule
from onnxc.schedule.directives import (
    CacheWrite,
    Reorder,
    Split,
    Unroll,
    Vectorize,
    from_json,
    to_json,
)

M, N, K = 5, 19, 7
A = Buffer("A", "float32", shape_of(M, K))
B = Buffer("B", "float32", shape_of(K, N))
Y = Buffer("Y", "float32", shape_of(M, N))


def matmul_body():
    return loops([("i", M), ("j", N), ("k", K)], lambda i, j, k: Store(
        Y, (i, j), Load(Y, (i, j)) + Load(A, (i, k)) * Load(B, (k, j))))


def run(stmt, seed=0):
    rng = np.random.default_rng(seed)
    arrays = {"A": rng.standard_normal(M * K).astype(np.float32),
              "B": rng.standard_normal(K * N).astype(np.float32),
              "Y": rng.standard_normal(M * N).astype(np.float32)}
    Interpreter(arrays).run(stmt)
    return arrays["Y"]


def text(stmt):
    return "\n".join(stmt_lines(stmt))


def test_split_text_and_guard():
    out = P.split(matmul_body(), "j", 8)
    assert text(out) == "\n".join([
        "for i in 0..5:",
        "  for j_o in 0..3:",
        "    for j_i in 0..8:",
        "      for k in 0..7:",
        "        if (((j_o * 8) + j_i) < 19):",
        "          Y[i, ((j_o * 8) + j_i)] = (Y[i, ((j_o * 8) + j_i)] + (A[i, k] * "
        "B[k, ((j_o * 8) + j_i)]))"])
    np.testing.assert_allclose(run(out), run(matmul_body()), rtol=1e-6)


def test_reorder_and_errors():
    out = P.reorder(matmul_body(), ["k", "i", "j"])
    assert [line.split()[1] for line in text(out).splitlines()[:3]] == ["k", "i", "j"]
    np.testing.assert_allclose(run(out), run(matmul_body()), rtol=1e-5)
    with pytest.raises(ScheduleError):
        P.reorder(matmul_body(), ["k", "nope"])
    with pytest.raises(ScheduleError):
        P.split(matmul_body(), "j", 0)


def test_fuse_and_unit_loops():
    src, dst = (Buffer(n, "float32", shape_of(3, 4)) for n in ("S", "D"))
    body = loops([("a", 3), ("b", 4)], lambda a, b: Store(dst, (a, b), Load(src, (a, b))))
    fused = P.fuse(body, "a", "b", "ab")
    assert text(fused).splitlines()[0] == "for ab in 0..12:"
    flat = flatten_buffers(fused)
    assert "//" not in text(flat)   # (x // 4) * ... + x % 4 folded back into x


def test_pipeline_of_passes_keeps_semantics():
    """Every pass of the matmul schedule, one after another, keeps the numbers."""
    kernel = Kernel("k", "node", "MatMul", matmul_body(), "matmul")
    directives = (Split("j", 8, "jo", "ji"), Split("ji", 4, "jm", "jv"), Split("i", 2, "io", "ii"),
                  Reorder(("jo", "io", "k", "ii", "jm", "jv")), CacheWrite("Y", "io"),
                  Unroll("ii"), Unroll("jm"), Vectorize("jv"))
    for stage in ("in", "out"):
        directives += (Unroll(f"Y_{stage}0"), Split(f"Y_{stage}1", 4, f"Y_{stage}1_o",
                                                    f"Y_{stage}1_v"),
                       Unroll(f"Y_{stage}1_o"), Vectorize(f"Y_{stage}1_v"))
    stmt = apply_schedule(kernel, directives).body
    want = run(matmul_body())
    for pass_ in (partition_loops, remove_unit_loops, flatten_buffers,
                  lambda s: vectorize_loops(s, (4,)), unroll_loops, promote_registers):
        stmt = pass_(stmt)
        np.testing.assert_allclose(run(stmt), want, rtol=1e-5, atol=1e-6)
    printed = text(stmt)
    assert "register" in printed          # the tile lives in registers
    assert "fma(" in printed and "<4>" in printed   # vector FMAs


def test_partition_peels_the_tail():
    stmt = partition_loops(P.split(matmul_body(), "j", 8))
    lines = text(stmt).splitlines()
    assert lines[1] == "  for j_o in 0..2:" and "if" not in "\n".join(lines[:6])
    assert any(line.strip() == "for j_i in 0..3:" for line in lines)   # 19 = 2 * 8 + 3
    np.testing.assert_allclose(run(stmt), run(matmul_body()), rtol=1e-5)


def test_vectorize_demotes_what_it_cannot_do():
    body = loops([("i", M), ("j", 4)], lambda i, j: Store(Y, (i, j * j), Load(A, (i, j))))
    annotated = P.annotate(flatten_buffers(body), "j", "vectorize")
    out = vectorize_loops(annotated, (4,))
    assert "for j in 0..4:" in text(out) and "<4>" not in text(out)   # j * j: not affine


def test_strided_store_vectorizes():
    """Y[j, i] = A[i, j] over j: one vector of A's row stored down Y's column."""
    body = loops([("i", M), ("j", 4)], lambda i, j: Store(Y, (j, i), Load(A, (i, j))))
    stmt = flatten_buffers(body)
    out = vectorize_loops(P.annotate(stmt, "j", "vectorize"), (4,))
    assert f"Y<4:{N}>[" in text(out) and "A<4>[" in text(out)
    np.testing.assert_array_equal(run(out), run(stmt))


def test_vector_pieces_cover_any_lane_count():
    """14 lanes with 16-lane registers: vectors of 8 and 4, then 2 single lanes."""
    x = Buffer("X", "float32", shape_of(14))
    y = Buffer("Y", "float32", shape_of(14))
    body = loops([("v", 14)], lambda v: Store(y, (v,), Load(x, (v,)) * Load(x, (v,))))
    out = vectorize_loops(P.annotate(body, "v", "vectorize"), (4, 8, 16))
    lines = text(out).splitlines()
    assert [line.split("[")[0] for line in lines] == ["Y<8>", "Y<4>", "Y", "Y"]
    data = np.random.default_rng(0).standard_normal(14).astype(np.float32)
    arrays = {"X": data, "Y": np.zeros(14, np.float32)}
    Interpreter(arrays).run(out)
    np.testing.assert_array_equal(arrays["Y"], data * data)


def test_margin_addresses_the_interior():
    """A (2, 3) buffer with margins (1, 1) and (2, 0) is the interior of a (4, 5) one."""
    from onnxc.lower.loops import flat_index
    inner = Buffer("P", "float32", shape_of(2, 3), margin=((1, 1), (2, 0)))
    stmt = loops([("i", 2), ("j", 3)], lambda i, j: Store(inner, (i, j), Const(1.0, "float32")))
    arrays = {"P": np.zeros(20, np.float32)}
    Interpreter(arrays).run(flatten_buffers(stmt))
    expected = np.zeros((4, 5), np.float32)
    expected[1:3, 2:5] = 1.0
    np.testing.assert_array_equal(arrays["P"].reshape(4, 5), expected)
    assert flat_index(inner, (Const(0), Const(0)))[0] == Const(7)


def test_schedule_json_round_trip():
    sched = {"k_x": (Split("j", 8, "jo", "ji"), Reorder(("jo", "ji")), CacheWrite("Y", "jo"))}
    assert from_json(to_json(sched)) == sched


def test_verifier_rejects_broken_ir():
    from onnxc.errors import IRError
    from onnxc.loop.ir import Program, Var
    from onnxc.loop.verify import verify_program
    stray = Store(Y, (Var("i"), Var("nowhere")), Load(Y, (Var("i"), Var("nowhere"))))
    bad = loops([("i", M)], lambda i: stray)
    prog = Program("p", (), (Y,), (), (), (Kernel("k", "n", "Op", bad),))
    with pytest.raises(IRError, match="not bound"):
        verify_program(prog)
    twice = loops([("i", M), ("i", N)], lambda i, j: Store(Y, (i, j), Const(0.0, "float32")))
    nested = Program("p", (), (Y,), (), (), (Kernel("k", "n", "Op", twice),))
    with pytest.raises(IRError, match="nested in itself"):
        verify_program(nested)
    good = Program("p", (), (Y,), (), (), (Kernel("k", "n", "Op", matmul_body()),))
    assert verify_program(good) is good


def test_vectorized_reduction_folds_vectors():
    """acc = acc + x[k] over a vector loop becomes one vector fold per chunk, same numbers."""
    x = Buffer("X", "float32", shape_of(M * 8))
    acc = Buffer("S", "float32", shape_of(1))
    body = loops([("k", M * 8)], lambda k: Store(acc, (Const(0),), Load(acc, (Const(0),))
                                                + Load(x, (k,))))
    stmt = flatten_buffers(P.annotate(P.split(body, "k", 4), "k_i", "vectorize"))
    vec = vectorize_loops(stmt, (4,))
    assert "reduce_add(X<4>" in text(vec)
    data = np.random.default_rng(0).standard_normal(M * 8).astype(np.float32)
    results = []
    for s in (stmt, vec):
        arrays = {"X": data.copy(), "S": np.zeros(1, np.float32)}
        Interpreter(arrays).run(s)
        results.append(arrays["S"][0])
    np.testing.assert_allclose(results[0], results[1], rtol=1e-5)


def test_vector_accumulator_folds_once_per_row():
    """acc = acc + reduce_add(x<4>[k]) over k chunks keeps a vector sum and folds it once
    after the loop; max folds start from -inf. The interpreter agrees."""
    from onnxc.lower.vectorize import vector_accumulators
    x = Buffer("X", "float32", shape_of(M * 8))
    acc = Buffer("S", "float32", shape_of(2))
    zero, one = Const(0), Const(1)
    body = loops([("k", M * 8)], lambda k: Store(acc, (zero,), Load(acc, (zero,))
                                                + Load(x, (k,))))
    peak = loops([("k", M * 8)], lambda k: Store(acc, (one,), Binary(
        "max", Load(acc, (one,)), Load(x, (k,)))))
    stmt = flatten_buffers(Seq((P.annotate(P.split(body, "k", 4), "k_i", "vectorize"),
                                P.annotate(P.split(peak, "k", 4), "k_i", "vectorize"))))
    vec = vectorize_loops(stmt, (4,))
    folded = vector_accumulators(vec)
    lines = text(folded)
    assert lines.count("reduce_add(") == 1 and lines.count("reduce_max(") == 1
    assert "broadcast<4>(-inf:float32)" in lines
    assert lines.index("reduce_add(") > lines.index("for k_o")    # after the loop
    data = np.random.default_rng(0).standard_normal(M * 8).astype(np.float32)
    results = []
    for s in (stmt, folded):
        arrays = {"X": data.copy(), "S": np.zeros(2, np.float32)}
        Interpreter(arrays).run(s)
        results.append(arrays["S"])
    np.testing.assert_allclose(results[0], results[1], rtol=1e-5)
    assert results[1][1] == data.max()


def test_stride_two_loads_vectorize_without_reading_past_the_end():
    """y[i] = x[2i]: a strided vector load; the interpreter agrees, and the last vector's
    reads stop at the last element needed (x has exactly 2n - 1 elements)."""
    n = 8
    x = Buffer("X", "float32", shape_of(2 * n - 1))
    y = Buffer("Y", "float32", shape_of(n))
    body = loops([("i", n)], lambda i: Store(y, (i,), Load(x, (i * 2,))))
    vec = vectorize_loops(P.annotate(body, "i", "vectorize"), (8,))
    assert "X<8:2>" in text(vec)
    data = np.arange(2 * n - 1, dtype=np.float32)
    arrays = {"X": data, "Y": np.zeros(n, np.float32)}
    Interpreter(arrays).run(vec)
    np.testing.assert_array_equal(arrays["Y"], data[::2])


def test_a_loop_under_guards_of_different_bounds_runs_to_the_largest():
    """for x in 0..8: {if x < 3: a[x] = 1; if x < 6: b[x] = 2} runs x to 6 (not 3): the
    guard of the larger bound goes, the smaller one stays. A GPU thread loop keeps its
    extent (the block's size) and its guards."""
    from onnxc.loop.ir import For, IfThen, Var, as_expr, cmp, const_int
    from onnxc.lower.loops import shrink_guarded_loops
    a, b = (Buffer(n, "float32", shape_of(8)) for n in "ab")
    x = Var("x")
    body = Seq((IfThen(cmp("lt", x, 3), Store(a, (x,), as_expr(1.0, "float32"))),
                IfThen(cmp("lt", x, 6), Store(b, (x,), as_expr(2.0, "float32")))))
    shrunk = shrink_guarded_loops(For(x, const_int(8), body))
    assert shrunk.extent == const_int(6)
    assert stmt_lines(shrunk)[1:] == ["  if (x < 3):", "    a[x] = 1.0:float32",
                                      "  b[x] = 2.0:float32"]
    bound = For(x, const_int(8), body, "threadIdx.x")
    assert shrink_guarded_loops(bound) is bound
