"""GPU schedules: the cuda target records, the Bind directive and its errors, what the
default GPU schedule binds, and the interpreter giving the naive program's numbers for the
scheduled one (the CPU-side check of the bound loops' index math)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from onnxc.errors import ScheduleError
from onnxc.loop.interp import run_program
from onnxc.loop.ir import Buffer, For, Kernel, Load, Store, Var, as_expr, const_int, loops
from onnxc.loop.printer import program_str
from onnxc.loop.visit import walk
from onnxc.lower.pipeline import compile_program
from onnxc.schedule.apply import apply_schedule
from onnxc.schedule.directives import Bind, Split, from_json, to_json
from onnxc.targets import available, get_target, host

from tests.ops.harness import node_model, rand

CUDA = get_target("cuda-sm80")
CPU = get_target("x86_64")


def test_cuda_records_are_facts():
    tags = {t for t, rec in available().items() if rec.gpu}
    assert tags == {"cuda", "cuda-sm80", "cuda-sm86", "cuda-sm89", "cuda-sm90"}
    assert dataclasses.replace(get_target("cuda"), tag="cuda-sm80") == get_target("cuda-sm80")
    sm90 = get_target("cuda-sm90").gpu
    assert (sm90.arch, sm90.compute_capability, sm90.warp_size) == ("sm_90", 90, 32)
    assert sm90.shared_bytes_per_block == 227 * 1024
    assert dict(sm90.mma_shapes)["float16"] == (16, 16, 16)     # as wmma takes them
    assert CUDA.lanes() == 1 and CUDA.native      # the host side is this machine's


def test_cuda_records_never_describe_a_cpu():
    assert host().gpu is None
    assert get_target("x86_64-unknown-linux-gnu").gpu is None


def _kernel(extent_i=6, extent_j=5):
    a = Buffer("a", "float32", (const_int(extent_i), const_int(extent_j)))
    out = Buffer("out", "float32", (const_int(extent_i), const_int(extent_j)))
    body = loops([("i", extent_i), ("j", extent_j)],
                 lambda i, j: Store(out, (i, j), Load(a, (i, j)) * 2.0))
    return Kernel("k", "node", "Mul", body)


def test_bind_round_trips_through_json():
    schedule = {"k": (Split("i", 4, "io", "ii"), Bind("io", "blockIdx.x"),
                      Bind("ii", "threadIdx.x"))}
    assert from_json(to_json(schedule)) == schedule


def test_bind_marks_the_loops():
    k = apply_schedule(_kernel(), [Bind("i", "blockIdx.x"), Bind("j", "threadIdx.x")])
    kinds = [n.kind for n in walk(k.body) if isinstance(n, For)]
    assert kinds == ["blockIdx.x", "threadIdx.x"]


@pytest.mark.parametrize("directives, message", [
    ([Bind("i", "warpIdx.x")], "unknown axis"),
    ([Bind("j", "threadIdx.x")], "only bound loops may enclose"),
    ([Bind("i", "threadIdx.x"), Bind("j", "blockIdx.x")], "blocks go outside threads"),
    ([Bind("i", "blockIdx.x"), Bind("j", "blockIdx.x")], "each axis once"),
    ([Bind("nothere", "blockIdx.x")], "not found"),
])
def test_illegal_binds_are_schedule_errors(directives, message):
    with pytest.raises(ScheduleError, match=message):
        apply_schedule(_kernel(), directives)


def test_bind_needs_a_constant_extent():
    out = Buffer("out", "float32", (Var("n"),))
    body = For(Var("i"), Var("n"), Store(out, (Var("i"),), as_expr(1.0, "float32")))
    with pytest.raises(ScheduleError, match="constant"):
        apply_schedule(Kernel("k", "node", "Fill", body), [Bind("i", "blockIdx.x")])


def _final(model, target=CUDA):
    return compile_program(model, target)[1]


def _bound(prog) -> list[str]:
    return [n.kind for k in prog.kernels for n in walk(k.body) if isinstance(n, For)
            and n.kind != "serial"]


def test_elementwise_becomes_blocks_of_threads_without_vectors():
    prog = _final(node_model("Relu", [rand(3, 1000)]))
    text = program_str(prog)
    assert "blockIdx.x" in text and "threadIdx.x" in text
    assert not any(kind in ("vectorize", "parallel") for kind in _bound(prog))
    # 3000 elements, 256 threads a block: 12 blocks, the last one's threads past the end
    # guarded (one launch, no peeled block)
    assert "0..12:  # blockIdx.x" in text and "0..256:  # threadIdx.x" in text
    assert "< 3000)" in text and text.count("# blockIdx.x") == 1


def test_matmul_accumulates_each_output_in_a_register():
    text = program_str(_final(node_model("MatMul", [rand(9, 40), rand(40, 70)],
                                          constant=(1,))))
    assert "register" in text and "# blockIdx.x" in text and "# threadIdx.x" in text


def test_a_scan_keeps_its_carried_axis_inside_each_thread():
    model = node_model("CumSum", [rand(64, 50), np.array(1, np.int64)], constant=(1,))
    prog = _final(model)
    (kernel,) = [k for k in prog.kernels if k.op_type == "CumSum"]
    bound = {n.var.name for n in walk(kernel.body) if isinstance(n, For) and n.kind != "serial"}
    serial = {n.var.name for n in walk(kernel.body) if isinstance(n, For) and n.kind == "serial"}
    assert bound == {"outer1"} and serial == {"scan1"}


def test_a_full_reduction_runs_as_one_thread():
    prog = _final(node_model("ReduceSum", [rand(300)], {"keepdims": 0}, opset=13))
    assert _bound(prog) == []


@pytest.mark.parametrize("model", [
    node_model("Relu", [rand(3, 1000)]),
    node_model("MatMul", [rand(9, 16), rand(16, 40)], constant=(1,)),    # 360: a guarded block
    node_model("Conv", [rand(1, 3, 7, 7), rand(4, 3, 3, 3), rand(4)],
               {"pads": [1, 1, 1, 1]}, constant=(1, 2)),
    node_model("Softmax", [rand(4, 300)]),
    node_model("CumSum", [rand(64, 50), np.array(1, np.int64)], constant=(1,)),
    node_model("ReduceMean", [rand(6, 70, 5)], {"axes": [1]}, opset=17),
    node_model("MaxPool", [rand(1, 3, 17, 17)], {"kernel_shape": [3, 3], "strides": [2, 2]}),
], ids=["relu", "matmul", "conv", "softmax", "cumsum", "reducemean", "maxpool"])
def test_gpu_program_computes_the_cpu_programs_numbers(model):
    """The interpreter runs bound loops one after another: the GPU-scheduled program must
    give what the CPU-scheduled one gives, on random inputs."""
    feeds = {i.name: rand(*[d.dim_value for d in i.type.tensor_type.shape.dim], seed=3)
             for i in model.graph.input}
    want = run_program(_final(model, CPU), feeds)
    got = run_program(_final(model), feeds)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)


def test_attention_is_fused_on_a_cpu_only():
    """A fused head would run on one GPU thread: there the products and softmax stay
    separate kernels, spread over blocks of threads."""
    from tests.ops.test_attention import attention_model
    model = attention_model()
    cpu = {k.op_type for k in _final(model, CPU).kernels}
    gpu = {k.op_type for k in _final(model).kernels}
    assert "FusedAttention" in cpu and "FusedAttention" not in gpu
    assert {"MatMul", "Softmax"} <= gpu
