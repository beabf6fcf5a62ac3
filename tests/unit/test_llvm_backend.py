"""The LLVM backend: the same final IR as the C backend, printed as LLVM IR with llvmlite,
compiled by llvmlite's target machine and linked into the same library. Numerics of every op
are covered by running tests/ops and tests/models with ONNXC_BACKEND=llvm (as .ci/run does);
here: the table it shares with C, its printing, and that both backends give the same bits."""
from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import onnxc
import pytest
from onnxc.backend.intrinsics import VECTOR_FUNCS, llvm_spell, spell
from onnxc.backend.llvm import emit_kernel, kernel_module
from onnxc.cli import DEMO_MODEL
from onnxc.driver import compile_to_dir
from onnxc.errors import OnnxcError
from onnxc.loop.ir import (
    Binary,
    Buffer,
    Const,
    Fma,
    Kernel,
    Load,
    Select,
    Store,
    cmp,
    const_int,
    loops,
)

from tests.ops.harness import node_model

pytest.importorskip("llvmlite")

SCALAR_FLOAT_OPS = ("sqrt", "exp", "log", "tanh", "erf", "floor", "ceil", "round", "sin", "cos",
                    "abs", "max", "min", "pow", "fma", "sigmoid", "fmod", "tan", "asin", "acos",
                    "atan", "sinh", "cosh", "asinh", "acosh", "atanh")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_scalar_c_spelling_has_an_llvm_one(dtype):
    for op in SCALAR_FLOAT_OPS:
        spell(op, dtype, 1)                     # C spells it
        kind, name = llvm_spell(op, dtype, 1)
        assert kind in ("intrinsic", "call", "nan_rule"), op
        if kind == "call":                      # a libm function, or onnxc's out of line
            assert name.startswith("onnxc_x_") or not name.startswith("onnxc_"), name


@pytest.mark.parametrize("lanes", [4, 8, 16])
def test_every_vector_c_spelling_has_an_llvm_one(lanes):
    for op in VECTOR_FUNCS + ("fma",):
        spell(op, "float32", lanes)
        assert llvm_spell(op, "float32", lanes)[0] in (
            "intrinsic", "vector_call", "nan_rule", "unfused")


def test_max_min_keep_each_dtypes_nan_rule():
    # float32 max/min are onnxc_max_f (NaN wins) in C; float64's are fmax (NaN loses)
    assert llvm_spell("max", "float32", 1) == ("nan_rule", "")
    assert llvm_spell("max", "float64", 1) == ("intrinsic", "llvm.maxnum")
    assert llvm_spell("min", "float32", 8) == ("nan_rule", "")


def _fma_kernel(lanes: int) -> Kernel:
    a, out = Buffer("a", "float32", (const_int(64),)), Buffer("out", "float32", (const_int(64),))
    body = loops([("i", 64 // lanes)], lambda i: Store(out, (i * lanes,), Fma(
        Load(a, (i * lanes,), lanes), Load(a, (i * lanes,), lanes),
        Load(out, (i * lanes,), lanes))))
    return Kernel("k_fma", "fma_node", "Mul", body)


@pytest.mark.parametrize("features, fused", [(("avx", "avx2", "fma"), True), ((), False),
                                             (("neon",), False)])
def test_vector_fma_follows_the_isa_rows(features, fused):
    module = kernel_module("m", "x86_64-unknown-linux-gnu", "")
    emitted = emit_kernel(module, _fma_kernel(8), features)
    text = str(module)
    assert ("llvm.fma.v8f32" in text) == fused
    assert ("fmul <8 x float>" in text) == (not fused)
    assert emitted["args"] == ["out", "a"]      # first use first, as the C backend's
    assert "void k_fma(onnxc_pool *pool, float *restrict out, const float *restrict a)" \
        in emitted["function"]


def test_neon_fma_row_gives_the_fused_intrinsic():
    module = kernel_module("m", "aarch64-unknown-linux-gnu", "")
    emit_kernel(module, _fma_kernel(4), ("neon",))
    assert "llvm.fma.v4f32" in str(module)


def test_scalar_and_or_select_evaluate_lazily_as_in_c():
    """`k < n && kept[k] ...` must not read kept[k] at k >= n; `c ? a : b` runs one arm."""
    kept = Buffer("kept", "int64", (const_int(8),))
    data = Buffer("data", "float32", (const_int(8),))
    out = Buffer("out", "float32", (const_int(8),))
    guarded = Binary("and", cmp("lt", Load(kept, (const_int(0),)), 8),
                     cmp("gt", Load(data, (Load(kept, (const_int(0),)),)), 0.0))
    value = Select(guarded, Load(data, (Load(kept, (const_int(1),)),)), Const(0.0, "float32"))
    module = kernel_module("m", "x86_64-unknown-linux-gnu", "")
    emit_kernel(module, Kernel("k_lazy", "n", "NonMaxSuppression",
                               Store(out, (const_int(0),), value)), ())
    text = str(module)
    assert "and.rhs" in text and "select.a" in text
    assert re.search(r"phi\s+i1", text) and re.search(r"phi\s+float", text)


def test_build_is_deterministic_and_warning_free(tmp_path):
    dirs = [compile_to_dir(DEMO_MODEL, tmp_path / d, name="demo", strict=True,
                           backend="llvm").parent for d in ("a", "b")]
    for name in ("demo.c", "demo_kernels.ll", "demo.h"):
        assert (dirs[0] / name).read_bytes() == (dirs[1] / name).read_bytes(), name
    source = (dirs[0] / "demo.c").read_text()
    assert "backend=llvm" in source and "in demo_kernels" in source
    assert "static void k" not in source          # the kernels are in the LLVM module


def test_parallel_loops_become_tasks(tmp_path):
    rng = np.random.default_rng(0)
    model = node_model("MatMul", [rng.standard_normal((256, 256), np.float32),
                                  rng.standard_normal((256, 256), np.float32)])
    out = compile_to_dir(model, tmp_path, name="mm", backend="llvm").parent
    text = (out / "mm_kernels.ll").read_text()
    assert "call void @\"onnxc_parallel_for\"" in text
    assert "define internal void @\"" in text and "_task0\"" in text


def _nan_and_edges(shape, rng):
    x = rng.standard_normal(shape).astype(np.float32) * 4
    x.flat[:4] = [np.nan, np.inf, -np.inf, -0.0]
    return x


AGREE_CASES = [
    ("Exp", lambda r: [_nan_and_edges((4, 37), r)], {}),
    ("Tanh", lambda r: [_nan_and_edges((4, 37), r)], {}),
    ("Erf", lambda r: [_nan_and_edges((4, 37), r)], {}),
    ("Sigmoid", lambda r: [_nan_and_edges((4, 37), r)], {}),
    ("Sqrt", lambda r: [np.abs(_nan_and_edges((4, 37), r))], {}),
    ("Round", lambda r: [np.arange(-40, 40, dtype=np.float32) / 4], {}),
    ("Max", lambda r: [_nan_and_edges((3, 40), r), _nan_and_edges((3, 40), r)[::-1].copy()], {}),
    ("Softmax", lambda r: [r.standard_normal((5, 33)).astype(np.float32)], {}),
    ("Add", lambda r: [r.integers(-128, 127, (50,), dtype=np.int8),
                       r.integers(-128, 127, (50,), dtype=np.int8)], {}),
    ("Div", lambda r: [r.integers(-128, 127, (50,), dtype=np.int8),
                       r.integers(1, 9, (50,), dtype=np.int8)], {}),
    ("BitShift", lambda r: [r.integers(0, 255, (50,), dtype=np.uint8),
                            r.integers(0, 8, (50,), dtype=np.uint8)], {"direction": "LEFT"}),
    ("Cast", lambda r: [_nan_and_edges((40,), r).astype(np.float16)], {"to": 1}),
    ("Cast", lambda r: [r.standard_normal((40,)).astype(np.float32) * 300], {"to": 10}),
    ("Where", lambda r: [r.random((6, 7)) > 0.5, r.standard_normal((6, 7)).astype(np.float32),
                         r.standard_normal((6, 7)).astype(np.float32)], {}),
    ("Mod", lambda r: [r.integers(-50, 50, (40,), dtype=np.int32),
                       r.integers(1, 7, (40,), dtype=np.int32)], {}),
    ("Equal", lambda r: [r.integers(0, 3, (40,), dtype=np.int64),
                         r.integers(0, 3, (40,), dtype=np.int64)], {}),
]


@pytest.mark.parametrize("op, make, attrs", AGREE_CASES,
                         ids=[f"{c[0]}{i}" for i, c in enumerate(AGREE_CASES)])
def test_backends_compute_the_same_bits(tmp_path, op, make, attrs):
    inputs = make(np.random.default_rng(7))
    model = node_model(op, inputs, attrs)
    feed = {f"x{i}": a for i, a in enumerate(inputs)}
    got = [onnxc.compile(model, out_dir=tmp_path / b, backend=b).run(None, feed)
           for b in ("c", "llvm")]
    for c_out, llvm_out in zip(*got):
        assert c_out.dtype == llvm_out.dtype
        assert np.array_equal(c_out.view(np.uint8), llvm_out.view(np.uint8)), (c_out, llvm_out)


def test_unknown_backend_is_refused(tmp_path):
    with pytest.raises(OnnxcError, match="unknown backend 'asm'; known: c, llvm"):
        compile_to_dir(DEMO_MODEL, tmp_path, backend="asm")


def test_cli_backend_option(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "onnxc.cli", str(DEMO_MODEL), "--backend",
                           "llvm", "-o", str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "demo_kernels.ll").is_file() and (tmp_path / "demo.so").is_file()
    bad = subprocess.run([sys.executable, "-m", "onnxc.cli", str(DEMO_MODEL), "--backend",
                          "asm"], capture_output=True, text=True)
    assert bad.returncode == 2 and "invalid choice: 'asm'" in bad.stderr
