"""share_identical_kernels: repeated layers run one function each."""
from __future__ import annotations

import dataclasses

import numpy as np
import onnxc
from onnx import TensorProto, helper, numpy_helper
from onnxc.driver import build, plan
from onnxc.loop.ir import Buffer, Kernel, Load, Program, Store, loops, shape_of
from onnxc.lower.share import share_identical_kernels


def matmul(name: str, m: int, suffix: str) -> Kernel:
    a = Buffer(f"A{suffix}", "float32", shape_of(m, 4))
    b = Buffer(f"B{suffix}", "float32", shape_of(4, 3))
    y = Buffer(f"Y{suffix}", "float32", shape_of(m, 3))
    body = loops([("i", m), (f"j{suffix}", 3), ("k", 4)], lambda i, j, k: Store(
        y, (i, j), Load(y, (i, j)) + Load(a, (i, k)) * Load(b, (k, j))))
    return Kernel(name, name, "MatMul", body, "matmul")


def program(*kernels) -> Program:
    return Program("p", (), (), (), (), tuple(kernels))


def test_same_code_over_other_buffers_is_shared():
    """Buffer names and loop variable names differ; the code does not."""
    prog = share_identical_kernels(program(matmul("k0", 5, ""), matmul("k1", 5, "_1"),
                                           matmul("k2", 6, "_2"), matmul("k3", 5, "_3")))
    assert [k.code_of for k in prog.kernels] == [None, "k0", None, "k0"]


def test_gpu_kernels_keep_their_own():
    prog = program(matmul("k0", 5, ""), matmul("k1", 5, "_1"))
    assert share_identical_kernels(prog, on_gpu=True) is prog


def test_different_operand_order_is_not_shared():
    """Y = A.B and a kernel over the same buffers in another order of first use differ."""
    k0 = matmul("k0", 5, "")
    swapped = dataclasses.replace(matmul("k1", 5, "_1"), op_type="Gemm")
    prog = share_identical_kernels(program(k0, swapped))
    assert prog.kernels[1].code_of is None


def layers_model(count: int):
    """count identical Gemm + Relu layers with their own weights."""
    rng = np.random.default_rng(0)
    nodes, inits, x = [], [], "x"
    for i in range(count):
        inits.append(numpy_helper.from_array(rng.standard_normal((16, 16)).astype(np.float32),
                                             f"w{i}"))
        nodes += [helper.make_node("MatMul", [x, f"w{i}"], [f"m{i}"]),
                  helper.make_node("Relu", [f"m{i}"], [f"r{i}"])]
        x = f"r{i}"
    graph = helper.make_graph(nodes, "layers", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, ["batch", 16])], [helper.make_tensor_value_info(
            x, TensorProto.FLOAT, ["batch", 16])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_repeated_layers_print_one_function_and_run(tmp_path):
    library = build(plan(layers_model(3)), tmp_path)
    source = library.with_suffix(".c").read_text()
    functions = [line for line in source.splitlines()
                 if line.startswith("static void ") and "_k_MatMul" in line]
    assert len(functions) == 1, functions
    assert source.count(") runs s0_k_MatMul_0 */") == 2
    lib = onnxc.load(library)
    x = np.random.default_rng(1).standard_normal((5, 16)).astype(np.float32)
    want = x
    for w in layers_model(3).graph.initializer:
        want = np.maximum(want @ numpy_helper.to_array(w), 0)
    np.testing.assert_allclose(lib.run(None, {"x": x})[0], want, rtol=1e-4, atol=1e-5)
