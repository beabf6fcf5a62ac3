"""The six benchmark models: compiled from the CLI, run from Python and from the C example on
random inputs, compared with onnxruntime."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import onnxc
import pytest

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("torch", reason="the benchmark models are exported with torch")

from benchmarks.models import ensure_models, make_feed  # noqa: E402
from tests.backends import CUDA_TEST_TARGET, gpu_available  # noqa: E402
from tests.test_examples import ROOT as REPO  # noqa: E402
from tests.test_examples import _missing_tools, _run, parse, sin_feed  # noqa: E402

# max |onnxc - ort| / max |ort| allowed, per the issue
TOLERANCE = {"mlp": 1e-4, "cnn": 1e-4, "gemm": 1e-4, "resnet18": 1e-3, "mobilenetv2": 1e-3,
             "bert4": 1e-3}


@pytest.fixture(scope="module")
def model_paths():
    return ensure_models()


def _relative_error(got, want) -> float:
    assert got.shape == want.shape and got.dtype == want.dtype
    assert np.isfinite(got).all()
    return float(np.abs(got - want).max() / np.abs(want).max())


def _cli(*args) -> None:
    proc = subprocess.run([sys.executable, "-m", "onnxc.cli", *map(str, args)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.fixture(scope="module", params=list(TOLERANCE))
def compiled(request, model_paths, tmp_path_factory, backend):
    """(name, onnx path, out dir) of a model compiled with the onnxc command. Under the cuda
    backend: built for the GPUs of two generations; without a GPU, the tests run the GPU
    program printed as C for this CPU (tests/backends.py)."""
    name, out = request.param, tmp_path_factory.mktemp(request.param)
    args = [model_paths[name], "--name", name]
    if backend == "cuda":
        for target in ("cuda-sm90", CUDA_TEST_TARGET):
            _cli(*args, "--target", target, "-o", out / target)
        if gpu_available():
            return name, model_paths[name], out / CUDA_TEST_TARGET
        args += ["--target", CUDA_TEST_TARGET, "--backend", "c"]
        out = out / "cpu"
    _cli(*args, "-o", out)
    return name, model_paths[name], out


def test_python_matches_onnxruntime(compiled):
    name, path, out = compiled
    model = onnxc.load(out / f"{name}.so")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for seed in (0, 1):
        feed = make_feed(name, seed=seed)
        for got, want in zip(model.run(None, feed), session.run(None, feed)):
            assert _relative_error(got, want) <= TOLERANCE[name], name


@pytest.mark.skipif(_missing_tools() is not None, reason=_missing_tools() or "")
def test_c_example_matches_onnxruntime(compiled, tmp_path):
    name, path, out = compiled
    _run(["cmake", "-S", REPO, "-B", tmp_path, f"-DONNXC_MODEL_DIR={out}",
          f"-DONNXC_MODEL_NAME={name}", "-DCMAKE_BUILD_TYPE=Release"])
    _run(["cmake", "--build", tmp_path, "-j", "2", "--target", "onnxc_example_c"])
    values, _ = parse(_run([tmp_path / "examples/c/onnxc_example_c"]).stdout)
    feed = sin_feed(onnxc.load(out / f"{name}.so"))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    want = np.concatenate([o.ravel() for o in session.run(None, feed)])
    got = np.asarray(values, np.float32)
    assert _relative_error(got, want) <= TOLERANCE[name], name
