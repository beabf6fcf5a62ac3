"""GPU block tiles of contractions (schedule/contraction.py): which nests are contractions and
how they split into rows, columns, batch and reduction; the tiled IR (blocks, thread phases,
barriers, shared and per-thread buffers); the interpreter and the C printer giving the CPU
program's numbers for it, double-buffered or not, with remainders everywhere; the CUDA text;
and the errors of the directive and of the printer's checks."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import helper
from onnxc.errors import IRError, ScheduleError
from onnxc.loop.interp import run_program
from onnxc.loop.ir import (
    Allocate,
    Barrier,
    Buffer,
    For,
    Kernel,
    Load,
    Store,
    Var,
    as_expr,
    const_int,
    loops,
    seq,
)
from onnxc.loop.printer import program_str
from onnxc.loop.visit import walk
from onnxc.lower.pipeline import compile_program
from onnxc.schedule.apply import apply_schedule
from onnxc.schedule.contraction import match_contraction
from onnxc.schedule.directives import TileContraction, from_json, to_json
from onnxc.schedule.gpu import gpu_schedule
from onnxc.targets import get_target

from tests.ops.harness import node_model, rand

CUDA = get_target("cuda-sm80")
CPU = get_target("x86_64")


def _kernel(prog, op_type):
    """The op's accumulating kernel (a padded convolution has its padding kernels too)."""
    return next(k for k in prog.kernels if k.op_type == op_type and k.kind != "elementwise")


def _lowered(model, op_type):
    """The op's kernel as the GPU schedule sees it (before scheduling)."""
    from onnxc.lower import pipeline
    prog = pipeline.lower_graph(pipeline.import_model(model, 0))
    for name, fn in pipeline.LOOP_PASSES:
        if name == "schedule":
            break
        prog = fn(prog, CUDA)
    return _kernel(prog, op_type)


def _feeds(model, seed=5):
    feeds = {}
    for i in model.graph.input:
        dtype = helper.tensor_dtype_to_np_dtype(i.type.tensor_type.elem_type)
        shape = [d.dim_value for d in i.type.tensor_type.shape.dim]
        feeds[i.name] = rand(*shape, seed=seed, low=0, high=255).astype(dtype) \
            if np.dtype(dtype).kind == "u" else rand(*shape, seed=seed)
    return feeds


# Small enough for the interpreter, with remainders against every tile below
MATMUL = node_model("MatMul", [rand(2, 9, 17), rand(17, 20)], constant=(1,))
BATCHED = node_model("MatMul", [rand(2, 17, 9), rand(2, 9, 20)])
CONV = node_model("Conv", [rand(1, 4, 4, 4), rand(18, 2, 3, 3), rand(18)],
                  {"pads": [1, 1, 1, 1], "group": 2}, constant=(1, 2))


# -- recognizing contractions -----------------------------------------------------------------
def test_a_matmul_is_rows_columns_and_a_reduction():
    k = _lowered(MATMUL, "MatMul")
    c = match_contraction(k.body, k.prologue.buffer.name)
    assert [loop.var.name for loop in c.rows] == ["b0", "i"]     # the broadcast batch is rows
    assert [loop.var.name for loop in c.cols] == ["j"]
    assert c.batch == () and [loop.var.name for loop in c.reduce] == ["k"]
    assert (c.extent("rows"), c.extent("cols"), c.extent("reduce")) == (18, 20, 17)


def test_a_batched_matmul_keeps_its_batch():
    k = _lowered(BATCHED, "MatMul")
    c = match_contraction(k.body, k.prologue.buffer.name)
    assert c.extent("batch") == 2 and c.extent("rows") == 17 and c.extent("cols") == 20


def test_a_grouped_convolution_is_an_implicit_gemm():
    k = _lowered(CONV, "Conv")
    c = match_contraction(k.body, k.prologue.buffer.name)
    # rows: output channels (the weights'); columns: batch and pixels (the input's);
    # batch: the group both read; reduction: input channel and window
    assert [loop.var.name for loop in c.rows] == ["i"]
    assert [loop.var.name for loop in c.cols] == ["n", "oh", "ow"]
    assert [loop.var.name for loop in c.batch] == ["g"]
    assert [loop.var.name for loop in c.reduce] == ["c", "r", "s"]


@pytest.mark.parametrize("model, op_type", [
    (node_model("ReduceMean", [rand(6, 70, 50)], {"axes": [1]}, opset=17), "ReduceMean"),
    (node_model("Conv", [rand(1, 8, 9, 9), rand(8, 1, 3, 3)], {"group": 8}, constant=(1,)),
     "Conv"),                                     # depthwise: no rows of its own
])
def test_what_is_not_a_gemm_is_not_matched(model, op_type):
    k = _lowered(model, op_type)
    written = next(n.buffer.name for n in walk(k.body) if isinstance(n, Store))
    assert match_contraction(k.body, k.prologue.buffer.name if k.prologue else written) is None


# -- the heuristic --------------------------------------------------------------------------
def test_the_gpu_schedule_tiles_large_contractions_only():
    big = gpu_schedule(_lowered(MATMUL, "MatMul"), CUDA)
    assert [type(d) for d in big] == [TileContraction]
    small = node_model("MatMul", [rand(9, 40), rand(40, 70)], constant=(1,))
    assert not any(isinstance(d, TileContraction)
                   for d in gpu_schedule(_lowered(small, "MatMul"), CUDA))


def test_the_tile_gives_every_multiprocessor_a_block_when_it_can():
    assert CUDA.gpu.multiprocessors == 108
    model = node_model("MatMul", [rand(1024, 64), rand(64, 1024)], constant=(1,))
    (tile,) = gpu_schedule(_lowered(model, "MatMul"), CUDA)
    assert tile.block == (64, 64) and tile.thread == (4, 4)     # 256 blocks
    model = node_model("MatMul", [rand(512, 64), rand(64, 512)], constant=(1,))
    (tile,) = gpu_schedule(_lowered(model, "MatMul"), CUDA)
    assert tile.block == (32, 64) and tile.thread == (2, 4)     # 64x64 would give 64
    small = node_model("MatMul", [rand(128, 64), rand(64, 128)], constant=(1,))
    (tile,) = gpu_schedule(_lowered(small, "MatMul"), CUDA)
    assert tile.block == (16, 16)           # 64 blocks: the most any tile gives


def test_no_tile_needs_more_row_blocks_than_a_grid_has():
    """Rows go to blockIdx.y, at most 65535 blocks: 65535 * 64 + 1 rows take no tile."""
    from onnxc.loop.visit import transform
    from onnxc.schedule import gpu
    k = _lowered(MATMUL, "MatMul")
    rows = 65535 * 64 + 1          # the 2 x 9 rows' inner loop stretched (never run)
    stretched = transform(k.body, lambda n: For(n.var, const_int(rows), n.body, n.kind)
                          if isinstance(n, For) and n.var.name == "i" else n)
    assert gpu._tile(k.body, k, CUDA) is not None
    assert gpu._tile(stretched, k, CUDA) is None


def test_tile_directives_round_trip_through_json():
    schedule = {"k": (TileContraction("i", (32, 64), (2, 4), 8, 1),)}
    assert from_json(to_json(schedule)) == schedule


# -- the tiled program ----------------------------------------------------------------------
def _tiled(model, tile: TileContraction, op_type="MatMul"):
    kernel = _lowered(model, op_type).name
    return compile_program(model, CUDA, {kernel: (tile,)})[1]


def test_the_tiled_matmul_is_phases_of_threads_between_barriers():
    prog = _tiled(MATMUL, TileContraction("b0", (16, 16), (1, 1), 8, 2))     # 2 x 2 blocks
    k = _kernel(prog, "MatMul")
    text = program_str(prog)
    assert "# blockIdx.x" in text and "# blockIdx.y" in text
    threads = [n for n in walk(k.body) if isinstance(n, For) and n.kind == "threadIdx.x"]
    assert {t.extent.value for t in threads} == {256}
    assert len(threads) == 3          # start, each step but the last, the last and the end
    scopes = sorted(n.buffer.scope for n in walk(k.body) if isinstance(n, Allocate))
    assert scopes.count("shared") == 2 and "thread" in scopes
    assert sum(isinstance(n, Barrier) for n in walk(k.body)) == 2
    # two stages of 8 reduction values of 16 rows
    shared_a = next(n.buffer for n in walk(k.body) if isinstance(n, Allocate)
                    and n.buffer.scope == "shared")
    assert shared_a.shape[0].value == 2 * 8 * 16


@pytest.mark.parametrize("model, op_type, loop", [
    (MATMUL, "MatMul", "b0"), (BATCHED, "MatMul", "b0"), (CONV, "Conv", "n"),
    (node_model("Gemm", [rand(17, 18), rand(20, 18), rand(20)], {"transB": 1, "alpha": 0.5},
                constant=(1, 2)), "Gemm", None),
    (node_model("ConvInteger", [rand(1, 3, 5, 5, low=0, high=255).astype(np.uint8),
                                rand(17, 3, 3, 3, low=0, high=255).astype(np.uint8),
                                np.array(3, np.uint8)], constant=(1,)), "ConvInteger", None),
], ids=["matmul", "batched", "grouped-conv", "gemm", "conv-integer"])
@pytest.mark.parametrize("tile", [((32, 32), (2, 2), 16, 2), ((16, 32), (1, 2), 7, 1),
                                  ((64, 16), (4, 1), 5, 2)], ids=["32x32", "16x32-k7-1", "64x16"])
def test_the_tiled_program_computes_the_cpu_programs_numbers(model, op_type, loop, tile):
    """Remainders in rows, columns and reduction (18, 20, 17 against 32 and 16...), one
    stage or two: the interpreter runs the phases one after another."""
    k = _lowered(model, op_type)
    first = next(n for n in walk(k.body) if isinstance(n, For))
    prog = _tiled(model, TileContraction(loop or first.var.name, *tile), op_type)
    assert any(n.kind == "threadIdx.x" for n in walk(_kernel(prog, op_type).body)
               if isinstance(n, For))
    feeds = _feeds(model)
    want = ort.InferenceSession(model.SerializeToString()).run(None, feeds)
    for got, expected in zip(run_program(prog, feeds), want):
        assert not np.isnan(got).any()
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_a_tiled_convolution_with_its_epilogue_runs_as_c(tmp_path):
    """The GPU program printed as C and built: the numbers of onnxruntime."""
    import onnxc
    from onnxc.driver import build, plan
    model = node_model("Conv", [rand(1, 16, 12, 12), rand(32, 16, 3, 3), rand(32)],
                       {"pads": [1, 1, 1, 1]}, constant=(1, 2))
    relu = helper.make_node("Relu", ["y0"], ["y1"])
    model.graph.node.append(relu)
    model.graph.output[0].name = "y1"
    compiled = plan(model, "cuda-sm80")
    assert "__syncthreads" not in str(compiled)          # a plan is not printed yet
    lib = onnxc.CompiledModel(build(compiled, tmp_path, "c", strict=True))
    feeds = _feeds(model)
    want = ort.InferenceSession(model.SerializeToString()).run(None, feeds)[0]
    np.testing.assert_allclose(lib.run(None, feeds)[0], want, rtol=1e-4, atol=1e-5)
    assert (tmp_path / f"{compiled.name}.c").read_text().count("barrier") >= 2


@pytest.mark.nvcc
def test_the_cuda_text_of_a_tile(tmp_path):
    from onnxc.driver import build, plan
    model = node_model("MatMul", [rand(512, 64), rand(64, 512)], constant=(1,))
    compiled = plan(model, "cuda-sm80")                   # tiles of 32 x 64, 2 x 4 a thread
    build(compiled, tmp_path, "cuda", strict=True)        # nvcc -Werror accepts it
    cu = (tmp_path / f"{compiled.name}_kernels.cu").read_text()
    assert "__shared__ __align__(32) float" in cu and "__syncthreads();" in cu
    # each thread declares its row of the accumulators and indexes it without its number
    assert "out_y0_tile_acc[3] =" in cu
    assert "float out_y0_tile_acc[8];" in cu
    assert "const int64_t i_tile_y = (int64_t)blockIdx.y;" in cu


@pytest.mark.parametrize("tile, message", [
    (TileContraction("b0", (32, 32), (3, 2)), "must divide"),
    (TileContraction("b0", stages=3), "stages"),
    (TileContraction("nothere"), "not found"),
    (TileContraction("k"), "not a contraction"),
])
def test_tile_errors_are_schedule_errors(tile, message):
    with pytest.raises(ScheduleError, match=message):
        apply_schedule(_lowered(MATMUL, "MatMul"), [tile])


# -- the printer's checks of phases ---------------------------------------------------------
def _emit(body):
    from onnxc.backend.cuda import CudaModule, emit_kernel
    emit_kernel(CudaModule("m", CUDA), Kernel("k", "node", "Fill", body))


OUT = Buffer("out", "float32", (const_int(64),))
SHARED = Buffer("s", "float32", (const_int(64),), "shared")
ROWS = Buffer("r", "float32", (const_int(64), const_int(2)), "thread")


def _thread(name, body, extent=64):
    return For(Var(name), const_int(extent), body, "threadIdx.x")


def _block(body):
    return For(Var("b"), const_int(2), body, "blockIdx.x")


ONE = as_expr(1.0, "float32")


@pytest.mark.parametrize("body, message", [
    (_block(seq(Store(OUT, (const_int(0),), ONE), _thread("t", Store(OUT, (Var("t"),), ONE)))),
     "outside the thread loops"),
    (_block(_thread("t", seq(Store(OUT, (Var("t"),), ONE), Barrier()))),
     "barrier inside a thread loop"),
    (_block(seq(_thread("t", Store(OUT, (Var("t"),), ONE)),
                _thread("u", Store(OUT, (Var("u"),), ONE), 32))), "extents"),
    (_block(_thread("t", _thread("u", Store(OUT, (Var("u"),), ONE)))), "inside another"),
    (_thread("t", _block(Store(OUT, (Var("t"),), ONE))), "blockIdx inside"),
    (For(Var("y"), const_int(70000), _block(_thread("t", Store(OUT, (Var("t"),), ONE))),
         "blockIdx.y"), "beyond CUDA's"),
    (_block(_thread("t", Allocate(SHARED, Store(SHARED, (Var("t"),), ONE)))),
     "allocated inside a thread loop"),
    (_block(Allocate(ROWS, _thread("t", loops([("i", 2)], lambda i: Store(
        ROWS, (i * 64 + Var("t"),), ONE))))), "not indexed by its thread's row"),
    (_block(Allocate(SHARED, seq(
        _thread("t", Store(SHARED, (Var("t"),), ONE)),
        _thread("u", Store(OUT, (Var("u"),), Load(SHARED, ((Var("u") + 1) % 64,))))))),
     "without a barrier"),
    (_block(Allocate(SHARED, loops([("k", 3)], lambda k: seq(      # the next iteration's
        _thread("t", Store(SHARED, (Var("t"),), ONE)), Barrier(),  # store races with the
        _thread("u", Store(OUT, (Var("u"),), Load(SHARED, (Var("u"),)))))))),  # loads
     "without a barrier"),
])
def test_the_printer_refuses_phases_a_block_cannot_run(body, message):
    with pytest.raises(IRError, match=message):
        _emit(body)


def test_the_printer_keeps_a_threads_row_and_waits_at_barriers():
    from onnxc.backend.cuda import CudaModule, emit_kernel
    body = _block(Allocate(SHARED, Allocate(ROWS, seq(
        _thread("t", seq(Store(ROWS, (Var("t") * 2 + 1,), ONE),
                         Store(SHARED, (Var("t"),), Load(ROWS, (Var("t") * 2 + 1,))))),
        Barrier(),
        _thread("u", Store(OUT, (Var("b") * 64 + Var("u"),),
                           Load(SHARED, ((Var("u") + 1) % 64,))))))))
    module = CudaModule("m", CUDA)
    emit_kernel(module, Kernel("k", "node", "Fill", body))
    text = str(module)
    assert "grid [2, 1, 1], block [64, 1, 1]" in text
    assert "__shared__ __align__(32) float s[64];" in text and "float r[2];" in text
    assert "r[1] = 1.0f;" in text and "__syncthreads();" in text
