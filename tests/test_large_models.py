"""Models whose weights live outside their protobuf: external data files, and large
initializers inside the .onnx file itself. Their weights are memory-mapped, never copied whole
(frontend/external.py, frontend/wire.py, loop/deferred.py, backend/weights.py); malformed
external data is a one-line ModelError."""
from __future__ import annotations

import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import onnx
import onnxc
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnxc import ModelError
from onnxc.build.library_cache import CACHE_ENV
from onnxc.cli import main
from onnxc.frontend.external import file_mapping
from onnxc.frontend.load import import_model

from tests.test_cli import assert_one_line_error

K, N = 256, 384


def chain(weights: list[np.ndarray], bias: bool = True) -> onnx.ModelProto:
    """x[2, K] -> MatMul w0 -> Gemm(transB) w1 + b1 -> Relu -> MatMul w2 ... (alternating)."""
    nodes, inits, x = [], [], "x"
    for i, w in enumerate(weights):
        if i % 2:
            inputs = [x, f"w{i}"] + ([f"b{i}"] if bias else [])
            nodes.append(helper.make_node("Gemm", inputs, [f"h{i}"], name=f"gemm{i}", transB=1))
            if bias:
                inits.append(numpy_helper.from_array(np.full(w.shape[0], 0.5, np.float32),
                                                     f"b{i}"))
        else:
            nodes.append(helper.make_node("MatMul", [x, f"w{i}"], [f"h{i}"], name=f"mm{i}"))
        nodes.append(helper.make_node("Relu", [f"h{i}"], [f"y{i}"], name=f"relu{i}"))
        inits.append(numpy_helper.from_array(w, f"w{i}"))
        x = f"y{i}"
    width = weights[-1].shape[0] if len(weights) % 2 == 0 else weights[-1].shape[1]
    graph = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [2, weights[0].shape[0]])], [helper.make_tensor_value_info(
            x, TensorProto.FLOAT, [2, width])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def reference(weights: list[np.ndarray], x: np.ndarray, bias: bool = True) -> np.ndarray:
    h = x.astype(np.float64)
    for i, w in enumerate(weights):
        h = h @ (w.T if i % 2 else w) + (0.5 if i % 2 and bias else 0.0)
        h = np.maximum(h, 0)
    return h


def random_weights(shapes, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal(s, dtype=np.float32) / np.float32(np.sqrt(s[0]))) for s in shapes]


SHAPES = [(K, N), (K, N), (K, N)]      # MatMul K->N, Gemm(transB) N->K, MatMul K->N


@pytest.fixture(scope="module")
def weights():
    return random_weights(SHAPES)


def save_external(model: onnx.ModelProto, folder: Path) -> Path:
    path = folder / "m.onnx"
    onnx.save_model(model, path, save_as_external_data=True, all_tensors_to_one_file=True,
                    location="m.weights", size_threshold=1024)
    return path


def test_external_data_compiles_from_memory_maps(tmp_path, weights):
    path = save_external(chain(weights), tmp_path)
    graph = import_model(path)
    assert file_mapping(graph.constants["w0"]) is not None
    x = np.random.default_rng(1).standard_normal((2, K), dtype=np.float32)
    got = onnxc.compile(path, out_dir=tmp_path / "out").run(None, {"x": x})[0]
    np.testing.assert_allclose(got, reference(weights, x), rtol=1e-4, atol=1e-4)


def test_large_initializers_in_the_model_file_are_mapped(tmp_path):
    weights = random_weights([(512, 640), (512, 640)])   # 1.25 MiB each: past wire.SCAN_BYTES
    path = tmp_path / "inline.onnx"
    onnx.save_model(chain(weights), path)
    graph = import_model(path)
    assert file_mapping(graph.constants["w0"]) is not None
    x = np.random.default_rng(2).standard_normal((2, 512), dtype=np.float32)
    got = onnxc.compile(path, out_dir=tmp_path / "out").run(None, {"x": x})[0]
    np.testing.assert_allclose(got, reference(weights, x), rtol=1e-4, atol=1e-4)


def _with_entries(tmp_path: Path, weights, **entries) -> Path:
    """The model saved with w0's external data entries changed (a value None drops one)."""
    path = save_external(chain(weights), tmp_path)
    model = onnx.load(path, load_external_data=False)
    tensor = next(t for t in model.graph.initializer if t.name == "w0")
    kept = {e.key: e.value for e in tensor.external_data}
    kept.update(entries)
    del tensor.external_data[:]
    for key, value in kept.items():
        if value is not None:
            tensor.external_data.add(key=key, value=value)
    onnx.save_model(model, path)
    return path


@pytest.mark.parametrize("entries, needle", [
    ({"location": "../m.weights"}, "inside the model's folder"),
    ({"location": "/etc/hostname"}, "inside the model's folder"),
    ({"location": "missing.bin"}, "is not a file"),
    ({"offset": str(10 ** 9)}, "past the end of the file"),
    ({"length": str(K * N * 4 - 4)}, f"call for {K * N * 4}"),
    ({"offset": "-4"}, "negative offset"),
    ({"length": "many"}, "not a number"),
])
def test_malformed_external_data(tmp_path, weights, capsys, entries, needle):
    path = _with_entries(tmp_path, weights, **entries)
    with pytest.raises(ModelError, match=needle):
        onnxc.compile(path, out_dir=tmp_path / "out")
    assert_one_line_error(main([str(path), "-o", str(tmp_path / "cli")]),
                          capsys.readouterr().err, needle)


def test_file_shorter_than_its_tensors(tmp_path, weights):
    path = save_external(chain(weights), tmp_path)
    with open(tmp_path / "m.weights", "r+b") as f:
        f.truncate(1000)
    with pytest.raises(ModelError, match="past the end of the file"):
        onnxc.compile(path, out_dir=tmp_path / "out")


def test_model_over_protobufs_limit_in_memory(monkeypatch, weights):
    """onnx's checker serializes a model given in memory: past 2 GiB it cannot (here faked)."""
    def too_large(model, *args, **kwargs):
        raise ValueError("This protobuf of onnx model is too large (>2GiB).")
    monkeypatch.setattr(onnx.checker, "check_model", too_large)
    with pytest.raises(ModelError, match="save it with its weights as external data"):
        import_model(chain(weights))


def _traced_peak(run) -> int:
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_weights_are_streamed_not_copied(tmp_path, monkeypatch):
    """Compiling ~200 MB of external weights allocates about one tensor's transform at a time
    (the packed copy of a weight as it is written), never the weights as a whole."""
    monkeypatch.delenv(CACHE_ENV, raising=False)    # a cached library would build nothing
    weights = random_weights([(2048, 3072)] * 8, seed=3)     # 8 x 25 MB
    total = sum(w.nbytes for w in weights)
    path = save_external(chain(weights, bias=False), tmp_path)
    x = np.random.default_rng(4).standard_normal((2, 2048), dtype=np.float32)
    want = reference(weights, x, bias=False)
    del weights
    peak = _traced_peak(lambda: onnxc.compile_to_dir(path, tmp_path / "out"))
    assert peak < 0.4 * total, f"{peak / 1e6:.0f} MB allocated for {total / 1e6:.0f} MB"
    got = onnxc.load(tmp_path / "out" / "m.so").run(None, {"x": x})[0]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.full
@pytest.mark.skipif(not Path("/usr/bin/time").exists(), reason="needs /usr/bin/time -v")
def test_model_over_two_gib():
    """benchmarks/large_model.py with 2.2 GB of weights (past protobuf's 2 GiB and the +-2 GiB
    of a PC-relative reference): it compiles with a peak RSS of at most 1.5x the weights, and
    the library links, loads and matches numpy (its exit status says all three)."""
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, str(root / "benchmarks" / "large_model.py"),
                           "--gb", "2.2", "--layers", "4"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
