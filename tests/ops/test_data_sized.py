"""Outputs whose size the data decides (NonZero): bounded in the plan, sized by the run,
owned by the context."""
from __future__ import annotations

import subprocess

import numpy as np
import onnx
import onnxc
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator
from onnxc import ModelError
from onnxc.errors import RuntimeFailure
from onnxc.loop.printer import program_str
from onnxc.lower.pipeline import compile_program
from onnxc.targets import get_target

from tests.backends import skip_on_gpu
from tests.test_abi import build_c


def nonzero_model(shape, elem=TensorProto.FLOAT, extra_output=False) -> onnx.ModelProto:
    nodes = [helper.make_node("NonZero", ["x"], ["y"], name="nz")]
    outputs = [helper.make_tensor_value_info("y", TensorProto.INT64, [len(shape), None])]
    if extra_output:   # a caller-owned output beside the runtime-owned one
        nodes.append(helper.make_node("Abs", ["x"], ["a"], name="abs"))
        outputs.append(helper.make_tensor_value_info("a", elem, shape))
    graph = helper.make_graph(nodes, "nz", [helper.make_tensor_value_info("x", elem, shape)],
                              outputs)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def sparse(shape, density, dtype, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    values = rng.standard_normal(shape) * 4
    return ((rng.random(shape) < density) * values).astype(dtype)


def reference(model, feed):
    """onnxruntime, or onnx.reference for the dtypes onnxruntime has no kernel for."""
    try:
        session = ort.InferenceSession(model.SerializeToString(),
                                       providers=["CPUExecutionProvider"])
    except ort.capi.onnxruntime_pybind11_state.NotImplemented:
        return ReferenceEvaluator(model).run(None, feed)
    return session.run(None, feed)


@pytest.mark.parametrize("elem, dtype", [(TensorProto.FLOAT, np.float32),
                                         (TensorProto.DOUBLE, np.float64),
                                         (TensorProto.BOOL, bool),
                                         (TensorProto.INT32, np.int32),
                                         (TensorProto.UINT8, np.uint8)])
@pytest.mark.parametrize("shape", [(7,), (3, 5), (2, 3, 4), (2, 1, 3, 2)])
def test_nonzero_matches_onnxruntime(tmp_path, elem, dtype, shape):
    model = nonzero_model(shape, elem)
    lib = onnxc.compile(model, out_dir=tmp_path, strict=True)
    assert lib.get_outputs()[0].shape == [len(shape), None]
    for seed, density in enumerate((0.0, 0.35, 1.0)):
        x = sparse(shape, density, dtype, seed)
        (got,) = lib.run(None, {"x": x})
        (want,) = reference(model, {"x": x})
        assert got.dtype == np.int64 and got.shape == want.shape
        np.testing.assert_array_equal(got, want)


def test_nan_and_negative_zero(tmp_path):
    model = nonzero_model((6,))
    lib = onnxc.compile(model, out_dir=tmp_path)
    x = np.array([np.nan, -0.0, 0.0, -1.0, np.inf, 0.0], np.float32)
    np.testing.assert_array_equal(lib.run(None, {"x": x})[0], [[0, 3, 4]])


def test_runs_resize_the_output_each_time(tmp_path):
    model = nonzero_model((4, 8), extra_output=True)
    lib = onnxc.compile(model, out_dir=tmp_path)
    for seed, density in enumerate((0.9, 0.1, 0.0, 0.5)):
        x = sparse((4, 8), density, np.float32, seed)
        got, want = lib.run(None, {"x": x}), reference(model, {"x": x})
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g, w)


def test_with_a_symbolic_batch(tmp_path):
    graph = helper.make_graph(
        [helper.make_node("NonZero", ["x"], ["y"])], "nzb",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 5])],
        [helper.make_tensor_value_info("y", TensorProto.INT64, [2, None])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    lib = onnxc.compile(model, out_dir=tmp_path, dims={"batch": (1, 4)})
    for batch in (4, 1, 3):
        x = sparse((batch, 5), 0.5, np.float32, batch)
        np.testing.assert_array_equal(lib.run(None, {"x": x})[0], reference(model, {"x": x})[0])


def test_constant_input_folds_to_a_static_output(tmp_path):
    data = numpy_helper.from_array(np.array([[0, 2], [3, 0]], np.float32), "c")
    graph = helper.make_graph(
        [helper.make_node("NonZero", ["c"], ["idx"]), helper.make_node("Cast", ["idx"], ["f"],
                                                                       to=TensorProto.FLOAT),
         helper.make_node("Add", ["f", "x"], ["y"])], "nzc",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 2])], [data])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    lib = onnxc.compile(model, out_dir=tmp_path)
    x = np.ones((2, 2), np.float32)
    np.testing.assert_array_equal(lib.run(None, {"x": x})[0], [[1, 2], [2, 1]])


def test_kernel_stays_serial():
    text = program_str(compile_program(nonzero_model((64, 64)), get_target("x86_64"))[1])
    assert "parallel" not in text and "vector" not in text


# ---- errors ------------------------------------------------------------------------------------

# what the cuda targets refuse by design, checked by the last test here
GPU_REFUSES = "refuse readers of a tensor the data sizes"


def reader_model(shape) -> onnx.ModelProto:
    """NonZero's coordinates read by later nodes: their shapes follow its run-time count."""
    graph = helper.make_graph(
        [helper.make_node("NonZero", ["x"], ["idx"], name="nz"),
         helper.make_node("Transpose", ["idx"], ["y"], name="flip"),
         helper.make_node("ReduceMax", ["idx"], ["m"], name="top", axes=[1], keepdims=0),
         helper.make_node("Gather", ["idx", "zero"], ["rows"], name="first", axis=0),
         helper.make_node("Gather", ["x", "rows"], ["picked"], name="pick", axis=0)], "nzr",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.INT64, [None, 2]),
         helper.make_tensor_value_info("m", TensorProto.INT64, None),
         helper.make_tensor_value_info("picked", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.array(0, np.int64), "zero")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


@pytest.mark.parametrize("shape", [[3, 4], ["rows", 4]], ids=["static", "symbolic"])
def test_readers_of_a_data_sized_tensor(tmp_path, backend, shape):
    """One library for every count, 0 and the full size included; the symbolic batch
    varies too."""
    skip_on_gpu(backend, GPU_REFUSES)
    model = reader_model(shape)
    lib = onnxc.compile(model, out_dir=tmp_path, backend=backend)
    sess = ort.InferenceSession(model.SerializeToString())
    rng = np.random.default_rng(3)
    for rows in ([3] if shape[0] == 3 else [1, 3, 6]):
        for density in (0.4, 1.0):
            x = (rng.random((rows, 4)) < density).astype(np.float32) * rng.random((rows, 4))
            x = x.astype(np.float32)
            for got, want in zip(lib.run(None, {"x": x}), sess.run(None, {"x": x})):
                assert got.shape == want.shape
                np.testing.assert_array_equal(got, want)


def test_no_element_set_runs_kernels_on_empty_tensors(tmp_path, backend):
    """A count of 0: the readers see empty tensors (ReduceMax over them is refused by
    onnxruntime, so only the shapes are compared here)."""
    skip_on_gpu(backend, GPU_REFUSES)
    model = reader_model([3, 4])
    lib = onnxc.compile(model, out_dir=tmp_path)
    y, _, picked = lib.run(None, {"x": np.zeros((3, 4), np.float32)})
    assert y.shape == (0, 2) and picked.shape == (0, 4)


def test_scalar_input_is_refused(tmp_path):
    graph = helper.make_graph(
        [helper.make_node("NonZero", ["x"], ["y"], name="nz")], "nzs",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [])],
        [helper.make_tensor_value_info("y", TensorProto.INT64, [0, None])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    with pytest.raises(ModelError, match="scalar"):
        onnxc.compile(model, out_dir=tmp_path)


# ---- the C API ---------------------------------------------------------------------------------

C_PROGRAM = r"""
#include <stdio.h>
#include "nz.h"
int main(void) {
  nz_context *ctx;
  if (nz_create(&ctx) != ONNXC_OK) return 10;
  if (nz_output_shape(0)[1] != -1 || nz_output_shape(1)[1] != 4) return 11;
  if (nz_output_data(ctx, 1) != NULL || nz_output_data(NULL, 0) != NULL) return 12;
  float x[12] = { 0, 1, 0, 0,  2, 0, 0, 3,  0, 0, 0, -4 }, a[12];
  const void *in[] = { x };
  void *out[] = { NULL, a };   /* output 0 lives in the context */
  if (nz_run(ctx, in, out) != ONNXC_OK) return 13;
  int64_t shape[2];
  if (nz_get_output_shape(ctx, 0, shape) != ONNXC_OK) return 14;
  const int64_t *y = nz_output_data(ctx, 0);
  printf("%lld %lld\n", (long long)shape[0], (long long)shape[1]);
  for (int64_t i = 0; i < shape[0] * shape[1]; ++i) printf("%lld\n", (long long)y[i]);
  out[1] = NULL;   /* a caller-owned output must still be given */
  if (nz_run(ctx, in, out) != ONNXC_ERR_ARGUMENT) return 15;
  nz_destroy(ctx);
  return 0;
}
"""


def test_c_reads_the_output_from_the_context(tmp_path):
    lib = onnxc.compile(nonzero_model((3, 4), extra_output=True), out_dir=tmp_path / "lib",
                        strict=True)
    exe = build_c(tmp_path, C_PROGRAM, [lib])
    proc = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.split()
    assert lines[:2] == ["2", "4"]
    assert [int(v) for v in lines[2:]] == [0, 1, 1, 2, 1, 0, 3, 3]


def test_a_gpu_target_refuses_readers_of_data_sized_tensors(tmp_path):
    """GPU kernels launch over sizes known before the run: refused before any build."""
    from onnxc.driver import compile_to_dir
    with pytest.raises(ModelError, match="size the data decides"):
        compile_to_dir(reader_model([3, 4]), tmp_path, target="cuda")


def test_an_index_into_an_empty_run_time_axis_fails_the_run(tmp_path, backend):
    """Gather along NonZero's count with indices read at run time: with a count of 0 there is
    nothing to index, and the run fails (the guarded kernel reads nothing) instead of reading
    outside the storage."""
    skip_on_gpu(backend, GPU_REFUSES)
    graph = helper.make_graph(
        [helper.make_node("NonZero", ["x"], ["idx"], name="nz"),
         helper.make_node("Gather", ["idx", "k"], ["y"], name="pick", axis=1)], "nzg",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 4]),
         helper.make_tensor_value_info("k", TensorProto.INT64, [2])],
        [helper.make_tensor_value_info("y", TensorProto.INT64, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    lib = onnxc.compile(model, out_dir=tmp_path)
    sess = ort.InferenceSession(model.SerializeToString())
    x, k = np.eye(3, 4, dtype=np.float32), np.array([0, -1], np.int64)
    np.testing.assert_array_equal(lib.run(None, {"x": x, "k": k})[0],
                                  sess.run(None, {"x": x, "k": k})[0])
    with pytest.raises(RuntimeFailure, match=r"node 'pick' \(Gather\): an index is outside"):
        lib.run(None, {"x": np.zeros((3, 4), np.float32), "k": k})
