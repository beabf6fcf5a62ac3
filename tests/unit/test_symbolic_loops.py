"""Loop nests over a symbolic extent (a Var: a model dimension such as the batch) through every
loop pass of the pipeline, on each CPU target, checked with the interpreter at several values
of the symbol against numpy: the first layer of one program for every shape (issue 17). The
passes keep such a nest correct (a tail guard where a split does not divide the extent); the
schedule still takes a symbolic extent as 1 and the memory plan needs static temporaries."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from onnxc.loop.interp import run_program
from onnxc.loop.ir import (
    Binary,
    Buffer,
    Const,
    Kernel,
    Load,
    Program,
    Store,
    Var,
    const_int,
    loops,
)
from onnxc.loop.verify import verify_program
from onnxc.lower.pipeline import LOOP_PASSES
from onnxc.targets import get_target

N = Var("n")
F32 = "float32"
ZERO = Const(0.0, F32)


def _compiled(prog: Program, target: str) -> Program:
    tgt = get_target(target)
    for name, fn in LOOP_PASSES:
        prog = fn(prog, tgt, None) if name == "schedule" else fn(prog, tgt)
        verify_program(prog)
    return prog


def _relu() -> tuple[Program, Callable]:
    x = Buffer("in_x", F32, (N, const_int(37)))
    y = Buffer("out_y", F32, (N, const_int(37)))
    body = loops([("i", N), ("j", const_int(37))],
                 lambda i, j: Store(y, (i, j), Binary("max", Load(x, (i, j)), ZERO)))
    prog = Program("relu", (x,), (y,), (), (), (Kernel("k_relu", "relu", "Relu", body,
                                                           "elementwise"),))
    return prog, lambda x: np.maximum(x, 0)


def _row_sums() -> tuple[Program, Callable]:
    """y[i] = sum_j x[i, j] over a symbolic number of columns."""
    x = Buffer("in_x", F32, (const_int(6), N))
    y = Buffer("out_y", F32, (const_int(6),))
    init = loops([("i", const_int(6))], lambda i: Store(y, (i,), ZERO))
    acc = loops([("i", const_int(6)), ("j", N)],
                lambda i, j: Store(y, (i,), Load(y, (i,)) + Load(x, (i, j))))
    kernels = (Kernel("k_init", "sum", "ReduceSum", init, "elementwise"),
               Kernel("k_sum", "sum", "ReduceSum", acc, "elementwise"))
    return Program("sums", (x,), (y,), (), (), kernels), lambda x: x.sum(axis=1)


def _matmul() -> tuple[Program, Callable]:
    """y[i, j] = sum_k a[i, k] * b[k, j] with a symbolic number of rows."""
    a = Buffer("in_a", F32, (N, const_int(24)))
    b = Buffer("in_b", F32, (const_int(24), const_int(40)))
    y = Buffer("out_y", F32, (N, const_int(40)))
    init = loops([("i", N), ("j", const_int(40))], lambda i, j: Store(y, (i, j), ZERO))
    acc = loops([("i", N), ("j", const_int(40)), ("k", const_int(24))],
                lambda i, j, k: Store(y, (i, j), Load(y, (i, j))
                                      + Load(a, (i, k)) * Load(b, (k, j))))
    kernels = (Kernel("k_init", "mm", "MatMul", init, "elementwise"),
               Kernel("k_mm", "mm", "MatMul", acc, "matmul"))
    return Program("mm", (a, b), (y,), (), (), kernels), lambda a, b: a @ b


@pytest.mark.parametrize("target", ["x86_64", "x86_64-avx512", "armv8"])
@pytest.mark.parametrize("make", [_relu, _row_sums, _matmul], ids=["relu", "sums", "matmul"])
def test_symbolic_extent_survives_every_loop_pass(make, target):
    prog, reference = make()
    final = _compiled(prog, target)
    rng = np.random.default_rng(0)
    for n in (1, 5, 13):
        feeds = {}
        for buf in prog.inputs:
            shape = tuple(n if d == N else d.value for d in buf.shape)
            feeds[buf.name] = rng.standard_normal(shape).astype(np.float32)
        (want,) = run_program(prog, feeds, dims={"n": n})
        np.testing.assert_allclose(want, reference(*feeds.values()), rtol=1e-4, atol=1e-4)
        (got,) = run_program(final, feeds, dims={"n": n})
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_unbound_symbol_is_an_error():
    prog, _ = _relu()
    with pytest.raises(KeyError, match="unbound variable n"):
        run_program(prog, {"in_x": np.zeros((2, 37), np.float32)}, dims={"m": 2})
