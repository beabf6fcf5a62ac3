"""Default schedules: what the heuristics choose from target facts, checked on the IR."""
from __future__ import annotations

import dataclasses

import numpy as np
import onnxc
import pytest
from onnx import TensorProto, helper
from onnxc.loop.printer import program_str
from onnxc.lower.pipeline import compile_program
from onnxc.targets import get_target

from tests.ops.harness import node_model, rand

AVX2 = get_target("x86_64")


def _final_ir(model, target=AVX2):
    return program_str(compile_program(model, target)[1])


def test_large_elementwise_is_vectorized_and_parallel():
    text = _final_ir(node_model("Relu", [rand(40001)]))
    assert "# parallel" in text and "<8>" in text


def test_small_elementwise_stays_on_the_calling_thread():
    text = _final_ir(node_model("Relu", [rand(100)]))
    assert "# parallel" not in text and "<8>" in text


def test_single_thread_target_never_parallelizes():
    one_core = dataclasses.replace(AVX2, cores=1)
    assert "# parallel" not in _final_ir(node_model("Relu", [rand(40001)]), one_core)


def test_rows_of_softmax_run_in_parallel():
    text = _final_ir(node_model("Softmax", [rand(512, 300)], {"axis": -1}))
    assert "# parallel" in text


def test_matmul_tile_uses_registers_fma_and_packed_weights():
    text = _final_ir(node_model("MatMul", [rand(64, 96), rand(96, 80)], constant=(1,)))
    assert "register" in text and "fma(" in text
    assert "c_x1_p1x16" in text          # weights packed into 16-wide panels (2 AVX2 vectors)


def test_vector_width_follows_the_target():
    avx512 = get_target("x86_64-avx512")
    text = _final_ir(node_model("Relu", [rand(1000)]), avx512)
    assert "<16>[" in text          # (a tail of 8 may use a narrower vector)


def test_output_listed_twice(tmp_path):
    vi = helper.make_tensor_value_info
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                          [vi("x", TensorProto.FLOAT, [5])],
                          [vi("y", TensorProto.FLOAT, [5]), vi("y", TensorProto.FLOAT, [5])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    x = np.arange(5, dtype=np.float32) - 2
    a, b = onnxc.compile(m, out_dir=tmp_path, strict=True).run(None, {"x": x})
    np.testing.assert_array_equal(a, np.maximum(x, 0))
    np.testing.assert_array_equal(b, np.maximum(x, 0))


def test_few_columns_many_rows_vectorize_along_rows():
    """A 1x1 convolution on a 7x7 map: 49 columns fill 16-lane vectors badly, 64 output
    channels fill them exactly, so the tile runs along the (packed) weight rows."""
    text = _final_ir(node_model("Conv", [rand(1, 32, 7, 7), rand(64, 32, 1, 1)], constant=(1,)),
                     get_target("x86_64-avx512"))
    assert "c_x1_p1x32" in text            # weights packed in blocks of 32 rows (2 vectors)
    assert "fma(c_x1_p1x32<16>" in text     # the weights are the vector operand


def test_wide_outputs_vectorize_along_columns():
    text = _final_ir(node_model("Conv", [rand(1, 32, 16, 16), rand(64, 32, 1, 1)], constant=(1,)),
                     get_target("x86_64-avx512"))
    assert "fma(broadcast<16>(c_x1_p1x" in text


def test_3x3_conv_reads_its_input_in_place():
    """Implicit GEMM: no column matrix; the tile's vector operand is a row of the padded
    input, loaded where it lies, and the packed weights are broadcast."""
    model = node_model("Conv", [rand(1, 16, 20, 40), rand(24, 16, 3, 3)], {"pads": [1, 1, 1, 1]},
                       constant=(1,))
    text = _final_ir(model, get_target("x86_64-avx512"))
    assert "col" not in text
    assert "fma(broadcast<16>(c_x1_p1x" in text and "_padded<16>[" in text


def test_strided_conv_tile_runs_along_output_channels():
    """A stride-2 convolution's output columns are not contiguous in its input: the tile
    runs along the packed weight rows instead and stores across the output rows."""
    model = node_model("Conv", [rand(1, 8, 21, 21), rand(32, 8, 3, 3)],
                       {"strides": [2, 2], "pads": [1, 1, 1, 1]}, constant=(1,))
    text = _final_ir(model, get_target("x86_64-avx512"))
    assert "fma(c_x1_p1x32<16>" in text and "<16:121>[" in text    # 121 = 11 * 11 outputs


def test_max_pool_accumulates_in_registers():
    """A padded 3x3 stride-2 MaxPool: a register tile of output rows, the window unrolled
    into vector maxima of every-other-element loads."""
    text = _final_ir(node_model("MaxPool", [rand(1, 8, 40, 40)], {
        "kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}),
        get_target("x86_64-avx512"))
    assert "register" in text and "max(" in text and "_padded<16:2>[" in text


def test_short_reduction_tiles_along_columns():
    """One input channel, 3x3 (9 products per output): the tile runs along the output
    columns, stored whole, though 32 output channels would fill the vectors better."""
    model = node_model("Conv", [rand(1, 1, 28, 28), rand(32, 1, 3, 3)], {"pads": [1, 1, 1, 1]},
                       constant=(1,))
    text = _final_ir(model, get_target("x86_64-avx512"))
    assert "fma(broadcast<16>(c_x1_p1x" in text and "<16:" not in text


def test_loop_carried_reads_stay_serial():
    """y[i] = y[i - 1] + x[i]: a scan. Vectors or threads over i would read rows not yet
    written, so the default schedule leaves the nest alone."""
    from onnxc.loop.ir import Buffer, Kernel, Load, Store, loops, shape_of
    from onnxc.schedule.heuristics import default_schedule
    x, y = Buffer("x", "float32", shape_of(100000)), Buffer("y", "float32", shape_of(100000))
    body = loops([("i", 99999)], lambda i: Store(y, (i + 1,), Load(y, (i,)) + Load(x, (i + 1,))))
    assert default_schedule(Kernel("k_scan", "scan", "CumSum", body), AVX2) == ()
    plain = loops([("i", 99999)], lambda i: Store(y, (i,), Load(y, (i,)) + Load(x, (i,))))
    assert default_schedule(Kernel("k_add", "add", "Add", plain), AVX2) != ()


def _renamed_loops(kernel, prefix: str):
    """The kernel with every loop variable renamed (prefix + old name)."""
    from onnxc.loop.ir import For, Var
    from onnxc.loop.visit import substitute, transform, walk
    names = {n.var.name for part in kernel.parts for n in walk(part) if isinstance(n, For)}
    mapping = {Var(name): Var(prefix + name) for name in names}

    def rename(node):
        return dataclasses.replace(node, var=mapping[node.var]) \
            if isinstance(node, For) and node.var in mapping else node
    return dataclasses.replace(kernel, body=transform(substitute(kernel.body, mapping), rename))


def _renamed_directives(directives, prefix: str):
    """The directives with every loop name they give or take prefixed."""
    def fix(value):
        if isinstance(value, str) and not value.startswith(("c_", "t_", "out_", "in_")):
            return prefix + value
        if isinstance(value, tuple):
            return tuple(fix(v) for v in value)
        return value
    return [dataclasses.replace(d, **{f.name: fix(getattr(d, f.name))
                                      for f in dataclasses.fields(d)
                                      if f.name not in ("buffer",)}) for d in directives]


def _lowered_kernels(model):
    from onnxc.frontend import import_model
    from onnxc.lower.from_graph import lower_graph
    return lower_graph(import_model(model)).kernels


@pytest.mark.parametrize("case", [
    ("MatMul", [rand(64, 96), rand(96, 80)], {}, (1,)),
    ("Conv", [rand(1, 16, 12, 12), rand(32, 16, 3, 3)], {"pads": [1, 1, 1, 1]}, (1,)),
    ("Conv", [rand(1, 8, 10, 10), rand(8, 1, 3, 3)], {"group": 8}, (1,)),
    ("MaxPool", [rand(1, 8, 20, 20)], {"kernel_shape": [3, 3]}, ()),
], ids=["matmul", "conv", "depthwise", "maxpool"])
def test_schedules_recognise_structure_not_loop_names(case):
    """Renaming every loop renames the chosen directives and changes nothing else: the
    heuristics read which loops index which operands, never what the loops are called."""
    from onnxc.schedule.heuristics import default_schedule
    op, inputs, attrs, constant = case
    kernels = _lowered_kernels(node_model(op, inputs, attrs, constant=constant))
    tiled = [k for k in kernels if k.kind in ("matmul", "conv", "depthwise")]
    assert tiled
    for kernel in tiled:
        directives = default_schedule(kernel, AVX2)
        assert any(type(d).__name__ == "CacheWrite" for d in directives), directives
        renamed = default_schedule(_renamed_loops(kernel, "z_"), AVX2)
        assert list(renamed) == _renamed_directives(directives, "z_")
