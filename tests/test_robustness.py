"""Issue 16's defects, each reproduced: declared shapes never size a buffer, malformed models
are one-line ModelErrors (and onnxruntime's refusals are ours), library names cannot clash
with the C library or with kernels, the Python wrapper's thread calls are serialized."""
from __future__ import annotations

import subprocess
import sys
import threading
import warnings

import numpy as np
import onnx
import onnxc
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnxc.errors import ModelError, ModelWarning

F, I64 = TensorProto.FLOAT, TensorProto.INT64
vi = helper.make_tensor_value_info


def _model(nodes, inputs, outputs, inits=(), opset=17, name="g") -> onnx.ModelProto:
    graph = helper.make_graph(nodes, name, inputs, outputs, list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _ort(model, feed):
    return ort.InferenceSession(model.SerializeToString()).run(None, feed)


# ---- declared shapes are claims ---------------------------------------------------------------

DECLARED_WRONG = {
    # MatMul [4096,4]x[4,4] declared [1,4]: the kernel wrote 4096 rows into one (heap overflow)
    "matmul": (_model([helper.make_node("MatMul", ["x", "w"], ["y"])], [vi("x", F, [4096, 4])],
                      [vi("y", F, [1, 4])],
                      [numpy_helper.from_array(np.ones((4, 4), np.float32), "w")]), (4096, 4)),
    # Relu [2,3] declared [1000,1000]: a million values returned, most of them stale heap
    "relu": (_model([helper.make_node("Relu", ["x"], ["y"])], [vi("x", F, [2, 3])],
                    [vi("y", F, [1000, 1000])]), (2, 3)),
    # an intermediate declared wrong in value_info, and an output declared with dim -1
    "value_info": (helper.make_model(helper.make_graph(
        [helper.make_node("Relu", ["x"], ["a"]), helper.make_node("Neg", ["a"], ["y"])], "g",
        [vi("x", F, [5, 2])], [vi("y", F, [-1, 2])], value_info=[vi("a", F, [1, 2])]),
        opset_imports=[helper.make_opsetid("", 17)]), (5, 2)),
}


PLAN_IN_LITTLE_MEMORY = """
import resource, sys
from onnx import TensorProto, helper
import onnxc.driver
limit = 3 << 30      # address space: onnx, numpy and the compiler need about 1.5 GB of it
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
op, attrs, opset, out_type, out_rank = sys.argv[1], eval(sys.argv[2]), *map(int, sys.argv[3:])
vi = helper.make_tensor_value_info
graph = helper.make_graph([helper.make_node(op, ["x"], ["y"], **attrs)], "g",
                          [vi("x", TensorProto.FLOAT, [2**31 - 1])],
                          [vi("y", out_type, [f"d{i}" for i in range(out_rank)])])
onnxc.driver.plan(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]))
print("planned")
"""


@pytest.mark.parametrize("op, attrs, opset, out_type, out_rank", [
    ("Cast", "dict(to=6)", 17, TensorProto.INT32, 1),
    ("Unsqueeze", "dict(axes=[0])", 11, F, 2)])
def test_a_long_vector_is_planned_in_bounded_memory(op, attrs, opset, out_type, out_rank):
    """onnx's data propagation spent about 140 bytes per element of a 1-D tensor passed to
    Cast or Unsqueeze (an atheris find: 22.9 GB for a float32[2**31-1] input)."""
    proc = subprocess.run([sys.executable, "-c", PLAN_IN_LITTLE_MEMORY, op, attrs, str(opset),
                           str(out_type), str(out_rank)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == "planned", proc.stderr[-2000:]


@pytest.mark.parametrize("case", sorted(DECLARED_WRONG))
def test_declared_shape_is_replaced_by_the_computed_one(tmp_path, case):
    model, shape = DECLARED_WRONG[case]
    x = np.random.default_rng(0).standard_normal(
        [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]).astype(np.float32)
    with pytest.warns(ModelWarning, match="declared with shape"):
        lib = onnxc.compile(model, out_dir=tmp_path)
    assert lib.get_outputs()[0].shape == list(shape)
    (got,) = lib.run(None, {"x": x})
    assert got.shape == shape
    np.testing.assert_allclose(got, _ort(model, {"x": x})[0], rtol=1e-5, atol=1e-6)


def test_label_declared_for_one_row_comes_for_every_row(tmp_path):
    """onnxmltools declares a LightGBM classifier's label int64[1] whatever the batch."""
    x = vi("x", F, [16, 3])
    nodes = [helper.make_node("ArgMax", ["x"], ["am"], axis=1, keepdims=0),
             helper.make_node("Identity", ["am"], ["label"])]
    model = _model(nodes, [x], [vi("label", I64, [1])], opset=13)
    feed = {"x": np.random.default_rng(1).standard_normal((16, 3)).astype(np.float32)}
    with pytest.warns(ModelWarning):
        lib = onnxc.compile(model, out_dir=tmp_path)
    np.testing.assert_array_equal(lib.run(None, feed)[0], _ort(model, feed)[0])


def test_declared_dtype_that_contradicts_the_producer_is_refused(tmp_path):
    model = _model([helper.make_node("Shape", ["x"], ["y"])], [vi("x", F, [2, 3])],
                   [vi("y", F, [2])])
    with pytest.raises(ModelError, match="'y' is declared float32 but its producer makes int64"):
        onnxc.compile(model, out_dir=tmp_path)


def test_a_correct_declaration_gives_no_warning(tmp_path):
    model = _model([helper.make_node("Relu", ["x"], ["y"])], [vi("x", F, [2, 3])],
                   [vi("y", F, [2, 3])])
    with warnings.catch_warnings():
        warnings.simplefilter("error", ModelWarning)
        onnxc.compile(model, out_dir=tmp_path)


# ---- malformed models: one line, a ModelError -------------------------------------------------

def _bad_utf8_name() -> bytes:
    model = _model([helper.make_node("Relu", ["x"], ["y"], name="nodeQ")], [vi("x", F, [2])],
                   [vi("y", F, [2])])
    return model.SerializeToString().replace(b"nodeQ", b"node\xff")


def _initializer(values, dims, data_type=None) -> onnx.TensorProto:
    tensor = numpy_helper.from_array(np.asarray(values, np.float32), "w")
    del tensor.dims[:]
    tensor.dims.extend(dims)
    if data_type is not None:
        tensor.data_type = data_type
    return tensor


def _add_w(tensor) -> onnx.ModelProto:
    return _model([helper.make_node("Add", ["x", "w"], ["y"])], [vi("x", F, [2])],
                  [vi("y", F, [2])], [tensor])


W33 = numpy_helper.from_array(np.ones((1, 1, 3, 3), np.float32), "W")
MALFORMED = {
    "name not UTF-8": (_bad_utf8_name, "not valid UTF-8"),
    "NUL in a name": (lambda: _model([helper.make_node("Relu", ["a\0x"], ["y"])],
                                     [vi("a\0x", F, [2])], [vi("y", F, [2])]), "NUL"),
    "initializer data longer than its dims": (
        lambda: _add_w(_initializer(np.ones(6), [2])), "holds 6 elements but its dims"),
    "unknown initializer data type": (
        lambda: _add_w(_initializer(np.ones(2), [2], data_type=99)), "unsupported data type"),
    "huge input dimension": (
        lambda: _model([helper.make_node("Relu", ["x"], ["y"])], [vi("x", F, [1 << 30, 1 << 20])],
                       [vi("y", F, ["a", "b"])]), "TiB"),
    "huge Pad": (lambda: _model(
        [helper.make_node("Pad", ["x", "p"], ["y"])], [vi("x", F, [2])], [vi("y", F, ["n"])],
        [numpy_helper.from_array(np.array([1 << 40, 0], np.int64), "p")]), "TiB"),
    "output element type 120": (lambda: _model(
        [helper.make_node("Relu", ["x"], ["y"])], [vi("x", F, [2])], [vi("y", 120, [2])]),
        "element type code 120"),
    "opset 99": (lambda: _model([helper.make_node("Relu", ["x"], ["y"])], [vi("x", F, [2])],
                                [vi("y", F, [2])], opset=99), "opset 99"),
    "duplicate node names": (lambda: _model(
        [helper.make_node("Relu", ["x"], ["a"], name="n"),
         helper.make_node("Relu", ["a"], ["y"], name="n")], [vi("x", F, [2])],
        [vi("y", F, [2])]), "two nodes are named 'n'"),
    "no outputs": (lambda: _model([], [], []), "no outputs"),
    "Gemm of a rank-1 operand": (lambda: _model(
        [helper.make_node("Gemm", ["x", "w"], ["y"])], [vi("x", F, [4])], [vi("y", F, [3])],
        [numpy_helper.from_array(np.ones((4, 3), np.float32), "w")]), "must have rank 2"),
    "Conv kernel_shape not the weights'": (lambda: _model(
        [helper.make_node("Conv", ["x", "W"], ["y"], kernel_shape=[2, 2])],
        [vi("x", F, [1, 1, 5, 5])], [vi("y", F, ["a", "b", "c", "d"])], [W33]), "kernel_shape"),
    "Conv kernel larger than its input": (lambda: _model(
        [helper.make_node("Conv", ["x", "W"], ["y"])], [vi("x", F, [1, 1, 2, 2])],
        [vi("y", F, ["a", "b", "c", "d"])], [W33]), "cannot give the output"),
    "MaxPool pads as large as the kernel": (lambda: _model(
        [helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], pads=[2, 2, 2, 2])],
        [vi("x", F, [1, 1, 5, 5])], [vi("y", F, ["a", "b", "c", "d"])]), "smaller than"),
}


def _write(tmp_path, make) -> str:
    made = make()
    path = tmp_path / "m.onnx"
    path.write_bytes(made if isinstance(made, bytes) else made.SerializeToString())
    return str(path)


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_model_is_a_model_error(tmp_path, case):
    make, message = MALFORMED[case]
    with pytest.raises(ModelError, match=message):
        onnxc.compile(_write(tmp_path, make), out_dir=tmp_path / "out")


@pytest.mark.parametrize("case", ["name not UTF-8", "output element type 120", "opset 99"])
def test_cli_reports_malformed_model_in_one_line(tmp_path, case):
    path = _write(tmp_path, MALFORMED[case][0])
    for command in (["info", path], [path, "-o", str(tmp_path / "out")]):
        proc = subprocess.run([sys.executable, "-m", "onnxc.cli", *command], capture_output=True,
                              text=True)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.startswith("onnxc: error:") and "Traceback" not in proc.stderr


def test_unexpected_exception_is_an_internal_error(monkeypatch, tmp_path):
    """Whatever goes wrong inside, the API raises an OnnxcError subclass."""
    from onnxc import driver
    from onnxc.errors import InternalError

    def broken(*args, **kwargs):
        raise KeyError("boom")
    monkeypatch.setattr(driver, "check_supported", broken)
    with pytest.raises(InternalError, match="KeyError"):
        driver.plan(_model([helper.make_node("Relu", ["x"], ["y"])], [vi("x", F, [2])],
                           [vi("y", F, [2])]))


# ---- names --------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["pthread", "sem", "timer", "mtx", "pthread_pool"])
def test_library_name_that_defines_libc_functions_is_refused(tmp_path, name):
    path = tmp_path / f"{name}.onnx"
    path.write_bytes(_model([helper.make_node("Relu", ["x"], ["y"])], [vi("x", F, [2])],
                            [vi("y", F, [2])]).SerializeToString())
    with pytest.raises(ModelError, match="C library functions"):
        onnxc.compile(path, out_dir=tmp_path / "out")
    with pytest.raises(ModelError, match="--name"):
        onnxc.compile(path, out_dir=tmp_path / "out2", name=name)


def test_kernel_names_keep_clear_of_the_api(tmp_path):
    """k.onnx with a node named run: the kernel k_run would redefine the API's k_run."""
    nodes = [helper.make_node("Relu", ["x"], ["a"], name="run"),
             helper.make_node("Neg", ["a"], ["y"], name="create")]
    path = tmp_path / "k.onnx"
    model = _model(nodes, [vi("x", F, [3])], [vi("y", F, [3])])
    path.write_bytes(model.SerializeToString())
    lib = onnxc.compile(path, out_dir=tmp_path / "out", strict=True)
    x = np.array([-1, 0, 2], np.float32)
    np.testing.assert_array_equal(lib.run(None, {"x": x})[0], -np.maximum(x, 0))


def test_header_guards_differ_by_case(tmp_path):
    model = _model([helper.make_node("Relu", ["x"], ["y"])], [vi("x", F, [2])],
                   [vi("y", F, [2])])
    guards = []
    for name in ("demo", "DEMO"):
        onnxc.compile(model, out_dir=tmp_path / name, name=name)
        guards.append(next(line for line in (tmp_path / name / f"{name}.h").read_text()
                           .splitlines() if line.startswith("#ifndef")))
    assert guards[0] != guards[1]


def test_bundled_demo_model_compiles_from_a_model_proto(tmp_path):
    from onnxc.cli import DEMO_MODEL
    lib = onnxc.compile(onnx.load(DEMO_MODEL), out_dir=tmp_path)
    assert lib.name == "model"


def test_output_folder_with_a_comma(tmp_path):
    model = _model([helper.make_node("Relu", ["x"], ["y"])], [vi("x", F, [2])],
                   [vi("y", F, [2])], [])
    lib = onnxc.compile(model, out_dir=tmp_path / "a,b", name="comma")
    np.testing.assert_array_equal(lib.run(None, {"x": np.array([-1, 1], np.float32)})[0], [0, 1])


def test_compile_without_out_dir_removes_its_folder():
    import gc
    model = _model([helper.make_node("Relu", ["x"], ["y"])], [vi("x", F, [2])],
                   [vi("y", F, [2])])
    lib = onnxc.compile(model)
    folder = lib.path.parent
    assert folder.is_dir()
    del lib
    gc.collect()
    assert not folder.exists()


# ---- threads ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def relu_lib(tmp_path_factory):
    model = _model([helper.make_node("Relu", ["x"], ["y"])], [vi("x", F, [256, 256])],
                   [vi("y", F, [256, 256])])
    return onnxc.compile(model, out_dir=tmp_path_factory.mktemp("relu"))


@pytest.mark.parametrize("count", [0, -1, 1025, 2**31, 1.5, True, "2"])
def test_thread_count_is_validated(relu_lib, count):
    with pytest.raises(ValueError, match="from 1 to 1024"):
        relu_lib.set_num_threads(count)


def test_set_num_threads_while_running_on_other_threads(relu_lib):
    """set_num_threads replaced the pool a run was using: hangs and heap corruption."""
    x = np.random.default_rng(0).standard_normal((256, 256)).astype(np.float32)
    errors: list[BaseException] = []

    def runs():
        try:
            for _ in range(200):
                np.testing.assert_array_equal(relu_lib.run(None, {"x": x})[0], np.maximum(x, 0))
        except BaseException as exc:  # noqa: BLE001  reported by the main thread
            errors.append(exc)
    workers = [threading.Thread(target=runs) for _ in range(3)]
    for w in workers:
        w.start()
    for i in range(200):
        relu_lib.set_num_threads(1 + i % 4)
        assert 1 <= relu_lib.get_num_threads() <= 4
    for w in workers:
        w.join(timeout=120)
    assert not errors and not any(w.is_alive() for w in workers)


def test_c_api_refuses_more_threads_than_its_limit(relu_lib):
    lib, ctx = relu_lib._lib, relu_lib._ctx
    status = getattr(lib, f"{relu_lib.name}_set_num_threads")(ctx, 100000)
    assert status == 1   # ONNXC_ERR_ARGUMENT
    assert getattr(lib, f"{relu_lib.name}_get_num_threads")(ctx) <= 1024


def test_cli_prints_a_declared_shape_warning_in_one_line(tmp_path):
    path = tmp_path / "relu.onnx"
    path.write_bytes(DECLARED_WRONG["relu"][0].SerializeToString())
    proc = subprocess.run([sys.executable, "-m", "onnxc.cli", str(path), "-o",
                           str(tmp_path / "out")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == ("onnxc: warning: tensor 'y' is declared with shape "
                                   "[1000, 1000] but computes to [2, 3]: using the computed shape")


def test_a_tensor_type_without_a_shape_is_accepted(tmp_path):
    """onnx's checker refuses an output typed without a shape; onnxruntime runs the model,
    and so does onnxc (the shape is computed, the declaration claims nothing)."""
    model = _model([helper.make_node("Relu", ["x"], ["y"])], [vi("x", F, [2, 3])],
                   [helper.make_tensor_value_info("y", F, None)])
    with pytest.raises(onnx.checker.ValidationError):
        onnx.checker.check_model(model)
    x = np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (got,) = onnxc.compile(model, out_dir=tmp_path).run(None, {"x": x})
    np.testing.assert_array_equal(got, _ort(model, {"x": x})[0])


def test_an_input_dimension_of_minus_one_is_dynamic(tmp_path):
    """Exporters write -1 for "any"; onnxruntime runs such a model at any size, and onnxc
    binds the axis as INPUT:AXIS."""
    model = _model([helper.make_node("Relu", ["x"], ["y"])], [vi("x", F, [-1, 3])],
                   [vi("y", F, [-1, 3])])
    lib = onnxc.compile(model, out_dir=tmp_path, dims={"x:0": (1, 4)})
    assert lib.dims == {"x:0": (1, 4)}
    for n in (1, 4):
        x = np.linspace(-1, 1, 3 * n, dtype=np.float32).reshape(n, 3)
        np.testing.assert_array_equal(lib.run(None, {"x": x})[0], _ort(model, {"x": x})[0])
