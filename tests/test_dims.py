"""Symbolic input dimensions: bound with --dim, one library, the right program per value."""
from __future__ import annotations

import subprocess

import numpy as np
import onnx
import onnxc
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnxc import ModelError
from onnxc.cli import main

from tests.test_abi import build_c

RTOL, ATOL = 1e-4, 1e-5


def batch_model(batch="batch") -> onnx.ModelProto:
    """An MLP layer, a Reshape with -1 over the batch, a Softmax, and Shape(x) as a second
    output: the batch reaches extents, a folded shape and a value."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal((16, 32)).astype(np.float32), "W"),
             numpy_helper.from_array(rng.standard_normal(32).astype(np.float32), "b"),
             numpy_helper.from_array(np.array([-1, 4, 8], np.int64), "shape")]
    nodes = [helper.make_node("MatMul", ["x", "W"], ["h"]),
             helper.make_node("Add", ["h", "b"], ["h2"]),
             helper.make_node("Relu", ["h2"], ["h3"]),
             helper.make_node("Reshape", ["h3", "shape"], ["r"]),
             helper.make_node("Softmax", ["r"], ["y"], axis=-1),
             helper.make_node("Shape", ["x"], ["xs"])]
    graph = helper.make_graph(
        nodes, "dyn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 4, 8]),
         helper.make_tensor_value_info("xs", TensorProto.INT64, [2])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def two_dims_model() -> onnx.ModelProto:
    """x[batch, seq, 8] + y[batch, 1, 8], then a LayerNormalization and a Transpose: two
    symbols, shared by two inputs."""
    nodes = [helper.make_node("Add", ["x", "y"], ["s"]),
             helper.make_node("LayerNormalization", ["s", "g"], ["n"], axis=-1),
             helper.make_node("Transpose", ["n"], ["z"], perm=[1, 0, 2])]
    graph = helper.make_graph(
        nodes, "two",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "seq", 8]),
         helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 1, 8])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, ["seq", "batch", 8])],
        [numpy_helper.from_array(np.linspace(0.5, 1.5, 8).astype(np.float32), "g")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def reference(model: onnx.ModelProto, feed: dict) -> list[np.ndarray]:
    return ort.InferenceSession(model.SerializeToString(),
                                providers=["CPUExecutionProvider"]).run(None, feed)


@pytest.fixture(scope="module")
def batch_lib(tmp_path_factory):
    return onnxc.compile(batch_model(), out_dir=tmp_path_factory.mktemp("dyn"),
                         dims={"batch": (1, 8)}, strict=True)


@pytest.mark.parametrize("batch", [1, 3, 8])
def test_one_library_runs_every_batch(batch_lib, batch):
    x = np.random.default_rng(batch).standard_normal((batch, 16)).astype(np.float32)
    got = batch_lib.run(None, {"x": x})
    want = reference(batch_model(), {"x": x})
    assert got[0].shape == (batch, 4, 8)
    np.testing.assert_allclose(got[0], want[0], rtol=RTOL, atol=ATOL)
    np.testing.assert_array_equal(got[1], want[1])


def test_batches_interleave_on_one_context(batch_lib):
    """The selected program follows each call's inputs, in any order."""
    model = batch_model()
    for batch in (5, 2, 5, 1, 8, 2):
        x = np.full((batch, 16), 0.1 * batch, np.float32)
        np.testing.assert_allclose(batch_lib.run(None, {"x": x})[0],
                                   reference(model, {"x": x})[0], rtol=RTOL, atol=ATOL)


def test_shapes_are_described_with_the_dimension_names(batch_lib):
    assert batch_lib.dims == {"batch": (1, 8)}
    assert batch_lib.get_inputs()[0].shape == ["batch", 16]
    assert [o.shape for o in batch_lib.get_outputs()] == [["batch", 4, 8], [2]]
    header = (batch_lib.path.parent / "dyn.h").read_text()
    assert "x: float32[batch, 16]" in header and "batch in 1..8" in header


def test_weights_are_stored_once(tmp_path):
    one = onnxc.compile(batch_model(), out_dir=tmp_path / "one", dims={"batch": 1})
    many = onnxc.compile(batch_model(), out_dir=tmp_path / "many", dims={"batch": (1, 6)})
    size = [(lib.path.parent / "dyn.weights.bin").stat().st_size for lib in (one, many)]
    # six programs, one copy of W: only the small per-batch constants (Shape's value) add up
    assert size[0] > 16 * 32 * 4 and size[1] - size[0] < 16 * 32 * 4


def test_two_symbols_two_inputs(tmp_path):
    model = two_dims_model()
    lib = onnxc.compile(model, out_dir=tmp_path, dims={"batch": (1, 3), "seq": (2, 5)},
                        strict=True)
    assert [o.shape for o in lib.get_outputs()] == [["seq", "batch", 8]]
    rng = np.random.default_rng(1)
    for batch, seq in ((1, 2), (3, 5), (2, 4), (3, 2)):
        feed = {"x": rng.standard_normal((batch, seq, 8)).astype(np.float32),
                "y": rng.standard_normal((batch, 1, 8)).astype(np.float32)}
        (got,) = lib.run(None, feed)
        assert got.shape == (seq, batch, 8)
        np.testing.assert_allclose(got, reference(model, feed)[0], rtol=RTOL, atol=ATOL)


def test_a_pinned_dimension_adds_a_static_fast_path(tmp_path):
    """--dim batch=4 compiles a static program for 4 beside the generic one, which serves
    every other value."""
    from onnxc.driver import plan
    assert [s.values for s in plan(batch_model(), dims={"batch": 4}).specs] == [(4,), None]
    lib = onnxc.compile(batch_model(), out_dir=tmp_path, dims={"batch": 4})
    assert lib.get_inputs()[0].shape == ["batch", 16]
    for n in (4, 3):
        x = np.random.default_rng(n).standard_normal((n, 16)).astype(np.float32)
        for got, want in zip(lib.run(None, {"x": x}), reference(batch_model(), {"x": x})):
            np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


def static_only_model() -> onnx.ModelProto:
    """Split into 3 over a symbolic axis: the chunks' extents, ceil(rows / 3) and what is
    left, hold for some values of rows only (at 1 the last is -1), so the node compiles for
    static shapes only."""
    graph = helper.make_graph(
        [helper.make_node("Split", ["x"], ["a", "b", "c"], axis=0, num_outputs=3)], "split3",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["rows", 2])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [None, 2]) for n in "abc"])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def test_static_only_nodes_take_one_program_per_value(tmp_path):
    with pytest.raises(ModelError, match=r"Split.*--dim.*\['rows'\] need a value or range"):
        onnxc.compile(static_only_model(), out_dir=tmp_path / "a")
    with pytest.raises(ModelError, match="65 combinations; at most 64"):
        onnxc.compile(static_only_model(), out_dir=tmp_path / "b", dims={"rows": (1, 65)})
    lib = onnxc.compile(static_only_model(), out_dir=tmp_path / "c", dims={"rows": (3, 5)})
    sess = ort.InferenceSession(static_only_model().SerializeToString())
    for rows in (3, 4, 5):
        x = np.arange(rows * 2, dtype=np.float32).reshape(rows, 2)
        for got, want in zip(lib.run(None, {"x": x}), sess.run(None, {"x": x})):
            np.testing.assert_array_equal(got, want)


# ---- run-time errors ---------------------------------------------------------------------------

def test_value_outside_the_range_is_refused(batch_lib):
    with pytest.raises(ValueError, match=r"'batch' = 9 is outside the compiled range 1\.\.8"):
        batch_lib.run(None, {"x": np.zeros((9, 16), np.float32)})


def test_static_axis_still_checked(batch_lib):
    with pytest.raises(ValueError, match="expected shape"):
        batch_lib.run(None, {"x": np.zeros((3, 15), np.float32)})


def test_inputs_that_disagree_on_a_dimension(tmp_path):
    lib = onnxc.compile(two_dims_model(), out_dir=tmp_path, dims={"batch": (1, 3), "seq": 2})
    feed = {"x": np.zeros((2, 2, 8), np.float32), "y": np.zeros((3, 1, 8), np.float32)}
    with pytest.raises(ValueError, match="'batch' is 2 in input 'x' but 3 in input 'y'"):
        lib.run(None, feed)


C_PROGRAM = r"""
#include <stdio.h>
#include "dyn.h"
int main(void) {
  dyn_context *ctx;
  if (dyn_create(&ctx) != ONNXC_OK) return 10;
  if (dyn_num_dims() != 1 || dyn_dim_min(0) != 1 || dyn_dim_max(0) != 8) return 11;
  if (dyn_input_dim(0, 0) != 0 || dyn_input_dim(0, 1) != -1 || dyn_output_dim(0, 0) != 0) return 12;
  if (dyn_input_shape(0)[0] != -1 || dyn_input_shape(0)[1] != 16) return 13;
  int64_t bad = 9, good = 3, shape[3];
  if (dyn_set_dims(ctx, &bad) != ONNXC_ERR_ARGUMENT) return 14;
  printf("%s\n", dyn_last_error(ctx));
  if (dyn_set_dims(ctx, &good) != ONNXC_OK) return 15;
  if (dyn_get_output_shape(ctx, 0, shape) != ONNXC_OK) return 16;
  printf("%lld %lld %lld\n", (long long)shape[0], (long long)shape[1], (long long)shape[2]);
  float x[3 * 16], y[3 * 32];
  int64_t xs[2];
  for (int i = 0; i < 3 * 16; ++i) x[i] = (float)(i % 7) * 0.25f;
  const void *in[] = { x };
  void *out[] = { y, xs };
  if (dyn_run(ctx, in, out) != ONNXC_OK) return 17;
  printf("%lld %lld\n", (long long)xs[0], (long long)xs[1]);
  for (int i = 0; i < 3 * 32; ++i) printf("%.9g\n", (double)y[i]);
  dyn_destroy(ctx);
  return 0;
}
"""


def test_c_callers_select_dimensions(batch_lib, tmp_path):
    exe = build_c(tmp_path, C_PROGRAM, [batch_lib])
    proc = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "dimension batch = 9 is outside the compiled range 1..8"
    assert lines[1] == "3 4 8" and lines[2] == "3 16"
    x = (np.arange(3 * 16) % 7 * 0.25).astype(np.float32).reshape(3, 16)
    np.testing.assert_allclose(np.array(lines[3:], np.float64).reshape(3, 4, 8),
                               reference(batch_model(), {"x": x})[0], rtol=RTOL, atol=ATOL)


# ---- compile-time errors -----------------------------------------------------------------------

@pytest.mark.parametrize("dims, message", [
    ({"batch": (1, 8), "seq": 4}, "--dim seq: the model has no such input dimension"),
    ({"batch": (0, 4)}, "1 <= low <= high"),
    ({"batch": (5, 4)}, "1 <= low <= high"),
])
def test_bad_bindings(tmp_path, dims, message):
    with pytest.raises(ModelError, match=message):
        onnxc.compile(batch_model(), out_dir=tmp_path, dims=dims)


def test_unnamed_dynamic_dimension_is_named_input_axis(tmp_path):
    """skl2onnx and Paddle leave dynamic dims unnamed: the dimension is `x:0`, bound by that
    name, and named so in the library."""
    model = batch_model(batch=None)
    assert onnxc.compile(model, out_dir=tmp_path / "a").dims == {"x:0": (1, 2**63 - 1)}
    lib = onnxc.compile(model, out_dir=tmp_path / "b", dims={"x:0": (2, 3)})
    assert lib.dims == {"x:0": (2, 3)}
    for n in (2, 3):
        x = np.random.default_rng(n).standard_normal((n, 16)).astype(np.float32)
        for got, want in zip(lib.run(None, {"x": x}), reference(model, {"x": x})):
            np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


def test_named_dimension_bound_by_input_axis(tmp_path):
    lib = onnxc.compile(two_dims_model(), out_dir=tmp_path, dims={"x:0": 2, "seq": (3, 4)})
    assert lib.dims == {"batch": (2, 2), "seq": (3, 4)}
    with pytest.raises(ModelError, match="bind dimension 'batch' to different values"):
        onnxc.compile(two_dims_model(), out_dir=tmp_path / "bad",
                      dims={"x:0": 2, "y:0": 3, "seq": 4})


def test_cli_dim_option(tmp_path, capsys):
    path = tmp_path / "dyn.onnx"
    onnx.save(batch_model(), path)
    assert main([str(path), "-o", str(tmp_path / "out"), "--dim", "batch=2..3"]) == 0
    lib = onnxc.load(tmp_path / "out" / "dyn.so")
    assert lib.dims == {"batch": (2, 3)}
    for text in ("batch", "batch=x", "batch=3..1"):
        assert main([str(path), "-o", str(tmp_path / "bad"), "--dim", text]) == 2
        assert "--dim" in capsys.readouterr().err
    assert main([str(path), "-o", str(tmp_path / "bad"), "--dim", "batch=1",
                 "--dim", "batch=2"]) == 2
    assert "given twice" in capsys.readouterr().err


# ---- verify, bench and the .npy driver take dimensions ------------------------------------------

def test_verify_runs_one_library_at_each_end_of_a_range(tmp_path):
    from onnxc.verify import verify
    path = tmp_path / "unnamed.onnx"
    onnx.save(batch_model(batch=None), path)
    report, _ = verify(path, out_dir=tmp_path / "build", dims={"x:0": (1, 5)})
    assert [(r.name, r.shape) for r in report] == [
        ("y at x:0=1", (1, 4, 8)), ("xs at x:0=1", (2,)),
        ("y at x:0=5", (5, 4, 8)), ("xs at x:0=5", (2,))]
    assert all(r.ok for r in report)


def test_npy_driver_sets_dimensions_from_the_input_shapes(tmp_path):
    """The driver `onnxc verify` runs cross builds with, run natively: each run's input shapes
    select the dimensions, the outputs come back at the run's shapes; a shape outside the
    compiled range is the library's refusal (exit 3)."""
    from onnxc.driver import compile_to_dir
    from onnxc.targets import get_target
    from onnxc.verify import VerifyError, run_emulated
    lib = compile_to_dir(batch_model(), tmp_path / "lib", name="model", dims={"batch": (1, 4)})
    for n in (1, 3):
        x = np.random.default_rng(n).standard_normal((n, 16)).astype(np.float32)
        work = tmp_path / f"run{n}"
        work.mkdir()
        got = run_emulated(lib, "model", get_target("host"), [], [x], 2, work)
        for g, w in zip(got, reference(batch_model(), {"x": x})):
            np.testing.assert_allclose(g, w, rtol=RTOL, atol=ATOL)
    with pytest.raises(VerifyError, match="exit 3"):
        run_emulated(lib, "model", get_target("host"), [], [np.zeros((5, 16), np.float32)], 2,
                     tmp_path)


def test_bench_times_each_end_of_a_range(tmp_path, capsys):
    path = tmp_path / "two.onnx"
    onnx.save(two_dims_model(), path)
    assert main(["bench", str(path), "--runs", "2", "--threads", "1", "--dim", "batch=2",
                 "--dim", "seq=1..3"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| two")]
    assert [row.split("|")[1].strip() for row in rows] == ["two batch=2 seq=1",
                                                            "two batch=2 seq=3"]


def test_onnx_backend_prepare_takes_dims():
    import onnxc.backend
    rep = onnxc.backend.prepare(batch_model(batch=None), "CPU", dims={"x:0": (1, 3)})
    for n in (1, 3):
        x = np.random.default_rng(n).standard_normal((n, 16)).astype(np.float32)
        for got, want in zip(rep.run([x]), reference(batch_model(None), {"x": x})):
            np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)
