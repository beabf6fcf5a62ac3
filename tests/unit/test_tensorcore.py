"""Tensor-core tiles (schedule/tensorcore.py): TF32 rounding as the GPU does it; warp phases
and Mma statements in the IR; the interpreter and the C printer computing exactly the products
of the rounded operands (so the fragments' offsets and strides are right), and onnxruntime's
numbers within the operand type's precision; when the heuristic uses tensor cores (16-bit
models, float32 with --tf32); the CUDA text nvcc accepts; and the errors."""
from __future__ import annotations

import subprocess

import ml_dtypes
import numpy as np
import onnxruntime as ort
import pytest
from onnx import numpy_helper
from onnxc.errors import IRError, OnnxcError, ScheduleError
from onnxc.loop.interp import Interpreter, run_program
from onnxc.loop.ir import Allocate, Buffer, Const, For, Load, Mma, Store, Var, const_int, seq
from onnxc.loop.visit import walk
from onnxc.lower.pipeline import compile_program
from onnxc.schedule.directives import TileContraction, from_json, to_json
from onnxc.schedule.gpu import gpu_schedule
from onnxc.schedule.tensorcore import round_tf32
from onnxc.targets import get_target, with_tf32

from tests.ops.harness import node_model, rand
from tests.unit.test_gpu_tile import (
    BATCHED,
    MATMUL,
    _block,
    _emit,
    _feeds,
    _kernel,
    _lowered,
)

CUDA = get_target("cuda-sm80")
TF32 = (16, 16, 8)
HALF = (16, 16, 16)


def tf32_reference(x: np.ndarray) -> np.ndarray:
    """cvt.rna.tf32.f32: 13 low mantissa bits dropped, to nearest, ties away from zero."""
    x = np.asarray(x, np.float32)
    bits = x.view(np.uint32).astype(np.uint64)
    finite = (bits & 0x7F800000) != 0x7F800000
    rounded = (((bits + 0x1000) >> 13) << 13).astype(np.uint32).view(np.float32)
    return np.where(finite, rounded, x)


TF32_CASES = np.concatenate([np.array(
    [1.0, 1 + 2 ** -11, 1 + 2 ** -10 + 2 ** -11, -(1 + 2 ** -11), 1 + 2 ** -11 - 2 ** -23,
     3.4028235e38, -3.4028235e38, np.inf, -np.inf, np.nan, -0.0, 1e-45, 1.17e-38, 65504.0],
    np.float32), rand(200, seed=2) * 1e3])


def test_tf32_rounding_is_to_nearest_ties_away_from_zero():
    buf = Buffer("x", "float32", (const_int(1),))
    got = np.array([Interpreter({"x": np.array([v], np.float32)}).eval(
        round_tf32(Load(buf, (const_int(0),)))) for v in TF32_CASES], np.float32)
    assert np.array_equal(got.view(np.uint32), tf32_reference(TF32_CASES).view(np.uint32))
    # the cases spelled out: a tie rounds away, just below it rounds down, overflow is inf
    assert got[1] == 1 + 2 ** -10 and got[3] == -(1 + 2 ** -10) and got[4] == 1.0
    assert got[5] == np.inf and got[6] == -np.inf and np.isnan(got[9])


def test_the_c_helper_rounds_to_tf32_as_the_gpu_does(tmp_path):
    """onnxc_round_tf32, which the C and CUDA kernels call, bit for bit."""
    from onnxc.resources import resource_dir
    source = tmp_path / "round.c"
    source.write_text(
        '#include <stdio.h>\n#include "onnxc_scalar.h"\n'
        "int main(void) { float x; unsigned bits;\n"
        '  while (scanf("%x", &bits) == 1) { memcpy(&x, &bits, 4); x = onnxc_round_tf32(x);\n'
        '    memcpy(&bits, &x, 4); printf("%08x\\n", bits); } return 0; }\n')
    exe = tmp_path / "round"
    subprocess.run(["cc", "-O2", "-Wall", "-Werror", f"-I{resource_dir('runtime_c')}",
                    str(source), "-o", str(exe)], check=True)
    out = subprocess.run([str(exe)], input=" ".join(f"{b:08x}" for b in TF32_CASES.view(
        np.uint32)), capture_output=True, text=True, check=True).stdout.split()
    assert [int(b, 16) for b in out] == list(tf32_reference(TF32_CASES).view(np.uint32))


def _tiled(model, tile: TileContraction, op_type="MatMul"):
    kernel = _lowered(model, op_type).name
    return compile_program(model, CUDA, {kernel: (tile,)})[1]


def test_the_tiled_program_is_warps_of_lanes_with_mmas():
    prog = _tiled(MATMUL, TileContraction("b0", (32, 32), (16, 16), 16, 2, "tfloat32", TF32))
    body = _kernel(prog, "MatMul").body
    kinds = {n.kind for n in walk(body) if isinstance(n, For)}
    assert {"threadIdx.x", "threadIdx.y"} <= kinds          # one block: its loops are gone
    ops = [n.op for n in walk(body) if isinstance(n, Mma)]
    assert set(ops) == {"fill", "load_a", "load_b", "mma", "store"}
    # a warp owns one 16 x 16 fragment; a 16-value step is two k = 8 MMAs, in the steps'
    # loop and after it
    assert ops.count("fill") == ops.count("store") == 1
    assert ops.count("mma") == ops.count("load_a") == ops.count("load_b") == 2 * 2
    lanes = {n.extent.value for n in walk(body) if isinstance(n, For) and n.kind == "threadIdx.x"}
    assert lanes == {32}


@pytest.mark.parametrize("model, warp, stages, mma", [
    (MATMUL, (32, 32), 2, "tfloat32"), (BATCHED, (16, 16), 1, "float16"),
    (BATCHED, (32, 16), 2, "bfloat16")],
    ids=["tf32-2x2-fragments-2-stages", "f16-1-stage", "bf16-2x1-fragments"])
def test_the_interpreter_computes_the_rounded_operands_products(model, warp, stages, mma):
    """Remainders in rows (9, 17), columns (20) and reduction (17, 9) against 32 x 32 blocks
    and 16-value steps, warps of 1, 2 or 4 fragments: each output is the sum of the rounded
    operands' products."""
    shape = TF32 if mma == "tfloat32" else HALF
    prog = _tiled(model, TileContraction("b0", (32, 32), warp, 16, stages, mma, shape))
    feeds = _feeds(model)
    got = run_program(prog, feeds)[0]
    operands = [feeds[i.name] for i in model.graph.input] + \
        [numpy_helper.to_array(t) for t in model.graph.initializer]
    rounding = {"tfloat32": tf32_reference, "float16": lambda x: x.astype(np.float16),
                "bfloat16": lambda x: x.astype(ml_dtypes.bfloat16)}[mma]
    rounded = [rounding(x) for x in operands]
    exact = np.matmul(*(x.astype(np.float64) for x in rounded))
    assert not np.isnan(got).any()
    np.testing.assert_allclose(got, exact, rtol=1e-5, atol=1e-5)
    want = ort.InferenceSession(model.SerializeToString()).run(None, feeds)[0]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-2 * np.abs(want).max())


def _gpu_c(model, tmp_path, tf32=False):
    """The model for cuda-sm80, its GPU program built as C (and checked with -Werror)."""
    import onnxc
    from onnxc.driver import build, plan
    compiled = plan(model, "cuda-sm80", tf32=tf32)
    lib = onnxc.CompiledModel(build(compiled, tmp_path / "c", "c", strict=True))
    return compiled, lib


GEMM = node_model("Gemm", [rand(37, 48), rand(40, 48), rand(40)], {"transB": 1, "alpha": 0.5},
                  constant=(1, 2))
CONV16 = node_model("Conv", [rand(1, 16, 12, 12).astype(np.float16),
                             rand(32, 16, 3, 3).astype(np.float16), rand(32).astype(np.float16)],
                    {"pads": [1, 1, 1, 1]}, constant=(1, 2))


@pytest.mark.parametrize("model, tf32, tolerance", [
    (GEMM, True, 2e-3), (node_model("MatMul", [rand(3, 40, 50), rand(50, 70)], constant=(1,)),
                         True, 2e-3), (CONV16, False, 2e-3)], ids=["gemm-tf32", "matmul-tf32",
                                                                    "conv-f16"])
def test_tensor_core_programs_run_as_c_near_onnxruntime(model, tf32, tolerance, tmp_path):
    """The heuristic's tiles, with the kernels' epilogues (alpha, bias), relative to the
    largest output: TF32 keeps about 3 decimal digits per operand."""
    compiled, lib = _gpu_c(model, tmp_path, tf32)
    assert any(isinstance(n, Mma) for spec in compiled.specs for k in spec.program.kernels
               for n in walk(k.body))
    feeds = {name: x.astype(np.float16) if model is CONV16 else x
             for name, x in _feeds(model, seed=4).items()}
    got = lib.run(None, feeds)[0].astype(np.float64)
    want = ort.InferenceSession(model.SerializeToString()).run(None, feeds)[0]
    assert not np.isnan(got).any()
    assert np.abs(got - want).max() <= tolerance * np.abs(want).max()


def _mma_of(model, op_type, target=CUDA):
    return [d.mma for d in gpu_schedule(_lowered(model, op_type), target)
            if isinstance(d, TileContraction)]


def test_tensor_cores_take_16_bit_models_and_float32_only_when_allowed():
    big = node_model("MatMul", [rand(64, 64), rand(64, 64)], constant=(1,))
    assert _mma_of(big, "MatMul") == [""]                       # float32: CUDA cores
    assert _mma_of(big, "MatMul", with_tf32(CUDA)) == ["tfloat32"]
    half = node_model("MatMul", [rand(64, 64).astype(np.float16),
                                 rand(64, 64).astype(np.float16)], constant=(1,))
    assert _mma_of(half, "MatMul") == ["float16"]
    (tile,) = [d for d in gpu_schedule(_lowered(half, "MatMul"), CUDA)]
    assert tile.mma_shape == HALF and tile.step % HALF[2] == 0
    assert from_json(to_json({"k": (tile,)})) == {"k": (tile,)}


def test_tf32_needs_a_gpu_target(tmp_path, capsys):
    import onnx
    from onnxc.cli import main
    with pytest.raises(OnnxcError, match="no TF32 tensor cores"):
        with_tf32(get_target("x86_64"))
    path = tmp_path / "m.onnx"
    onnx.save(MATMUL, path)
    assert main([str(path), "--tf32", "--target", "x86_64", "-o", str(tmp_path)]) == 2
    assert "no TF32 tensor cores" in capsys.readouterr().err


@pytest.mark.parametrize("model, tf32, fragment", [
    (node_model("MatMul", [rand(64, 64), rand(64, 96)], constant=(1,)), True,
     "wmma::precision::tf32, wmma::col_major> "),
    (CONV16, False, "__half, wmma::row_major> "),
    (node_model("MatMul", [rand(64, 64).astype(np.float16), rand(64, 96).astype(np.float16)]),
     False, "reinterpret_cast<const __half *>"),
    (node_model("MatMul", [rand(64, 64).astype(ml_dtypes.bfloat16),
                           rand(64, 96).astype(ml_dtypes.bfloat16)], constant=(1,)),
     False, "__nv_bfloat16, wmma::col_major> ")],
    ids=["tf32", "conv-f16", "f16-inputs", "bf16"])
@pytest.mark.nvcc
def test_the_cuda_text_of_tensor_core_tiles(model, tf32, fragment, tmp_path):
    from onnxc.driver import build, plan
    compiled = plan(model, "cuda-sm80", tf32=tf32)
    build(compiled, tmp_path, "cuda", strict=True)               # nvcc -Werror accepts it
    cu = (tmp_path / f"{compiled.name}_kernels.cu").read_text()
    assert "#include <mma.h>" in cu and fragment in cu
    assert "wmma::mma_sync(" in cu and "wmma::store_matrix_sync(" in cu
    assert "wmma::load_matrix_sync(" in cu
    assert "wmma::fragment<wmma::accumulator, 16, 16," in cu
    assert "__shared__ __align__(32)" in cu


@pytest.mark.nvcc
def test_cuda_text_without_tensor_cores_includes_no_mma_header(tmp_path):
    from onnxc.driver import build, plan
    compiled = plan(node_model("MatMul", [rand(64, 64), rand(64, 96)], constant=(1,)),
                    "cuda-sm80")
    build(compiled, tmp_path, "cuda")
    assert "mma.h" not in (tmp_path / f"{compiled.name}_kernels.cu").read_text()


@pytest.mark.parametrize("tile, message", [
    (TileContraction("b0", (32, 32), (16, 16), 16, 2, "float8", TF32), "tensor-core type"),
    (TileContraction("b0", (32, 32), (16, 8), 16, 2, "tfloat32", TF32), "made of 16 x 16"),
    (TileContraction("b0", (32, 32), (16, 16), 12, 2, "tfloat32", TF32), "step 12"),
    (TileContraction("b0", (32, 32), (16, 16), 16, 3, "tfloat32", TF32), "3 stages"),
])
def test_tensor_core_tile_errors_are_schedule_errors(tile, message):
    with pytest.raises(ScheduleError, match=message):
        _tiled(MATMUL, tile)


def test_integer_contractions_do_not_go_to_float_tensor_cores():
    model = node_model("ConvInteger", [rand(1, 3, 5, 5, low=0, high=255).astype(np.uint8),
                                       rand(17, 3, 3, 3, low=0, high=255).astype(np.uint8)],
                       constant=(1,))
    with pytest.raises(ScheduleError, match="float32 products"):
        _tiled(model, TileContraction("n", (32, 32), (16, 16), 16, 2, "float16", HALF),
               "ConvInteger")


FRAG = Buffer("frag", "float32", (const_int(2), const_int(1), const_int(256)), "fragment")


def _fill(warp) -> Mma:
    e = Var("e")
    at = (warp, const_int(0), e)
    return Mma("fill", FRAG, const_int(0), TF32, "tfloat32", (), (), (),
               For(e, const_int(256), Store(FRAG, at, Const(0.0, "float32"))))


def _lanes(extent=32, body=None):
    out = Buffer("out", "float32", (const_int(extent),))
    lane = Var("l")
    return For(lane, const_int(extent), body or Store(out, (lane,), Load(out, (lane,))),
               "threadIdx.x")


W = Var("w")


@pytest.mark.parametrize("body, message", [
    (seq(_fill(const_int(0)), _lanes()), "whole warps"),           # every thread would run it
    (seq(For(W, const_int(2), _fill(W), "threadIdx.y"), _lanes(64)), "32 threads wide"),
    (_lanes(32, _fill(const_int(0))), "whole warps"),               # each lane on its own
], ids=["outside-warps", "wide-blocks", "inside-lanes"])
def test_the_printer_runs_mmas_on_whole_warps_only(body, message):
    with pytest.raises(IRError, match=message):
        _emit(_block(Allocate(FRAG, body)))


def test_the_printer_declares_fragments_and_calls_wmma():
    from onnxc.backend.cuda import CudaModule, emit_kernel
    from onnxc.loop.ir import Kernel
    module = CudaModule("m", CUDA)
    body = seq(For(W, const_int(2), _fill(W), "threadIdx.y"), _lanes())
    emit_kernel(module, Kernel("k", "node", "MatMul", _block(Allocate(FRAG, body))))
    text = str(module)
    assert "wmma::fragment<wmma::accumulator, 16, 16, 8, float> frag[1];" in text
    assert "wmma::fill_fragment(frag[0], 0.0f);" in text and "#include <mma.h>" in text
