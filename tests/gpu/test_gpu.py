"""On a machine with an NVIDIA GPU: the six benchmark models built for it run on it and agree
with onnxruntime, host arrays and GPU arrays (PyTorch's, through DLPack and
__cuda_array_interface__) alike. Skipped without a GPU (tests/gpu/run.sh runs the whole GPU
check)."""
from __future__ import annotations

import numpy as np
import onnxc
import pytest
from onnxc.targets import local_gpu

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("torch", reason="the benchmark models are exported with torch")
GPU = local_gpu()
pytestmark = pytest.mark.skipif(GPU is None, reason="no NVIDIA GPU and CUDA driver here")

from benchmarks.models import ensure_models, make_feed  # noqa: E402
from tests.models.test_models import TOLERANCE, _relative_error  # noqa: E402


@pytest.fixture(scope="module", params=list(TOLERANCE))
def model(request, tmp_path_factory):
    name = request.param
    path = ensure_models(names=[name])[name]
    compiled = onnxc.compile(path, target=GPU.tag, out_dir=tmp_path_factory.mktemp(name),
                             name=name, strict=True)
    return name, path, compiled


def test_gpu_matches_onnxruntime(model):
    name, path, compiled = model
    assert compiled.device == "cuda"
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for seed in (0, 1):
        feed = make_feed(name, seed=seed)
        for got, want in zip(compiled.run(None, feed), session.run(None, feed)):
            assert _relative_error(got, want) <= TOLERANCE[name], name


def test_gpu_arrays_in_and_out(model):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("this PyTorch has no CUDA")
    name, _, compiled = model
    feed = make_feed(name)
    (want,) = compiled.run(None, feed)
    x = torch.from_numpy(feed["input"]).cuda()
    out = torch.empty(want.shape, dtype=torch.float32, device="cuda")
    (got,) = compiled.run(None, {"input": x}, outputs=[out])     # __cuda_array_interface__
    torch.cuda.synchronize()
    np.testing.assert_array_equal(got.cpu().numpy(), want)

    class DLPackOnly:      # the DLPack path: no __cuda_array_interface__
        def __init__(self, t):
            self.t = t

        def __dlpack__(self, stream=None):
            return self.t.__dlpack__()

        def __dlpack_device__(self):
            return self.t.__dlpack_device__()

    (host_out,) = compiled.run(None, {"input": DLPackOnly(x)})
    np.testing.assert_array_equal(host_out, want)


def _tensor_core_cases():
    from tests.ops.harness import node_model, rand
    half = np.float16
    return {
        "matmul-tf32": (node_model("MatMul", [rand(3, 100, 72), rand(72, 90)], constant=(1,)),
                        True),
        "conv-f16": (node_model("Conv", [rand(2, 32, 14, 14).astype(half),
                                         rand(64, 32, 3, 3).astype(half),
                                         rand(64).astype(half)], {"pads": [1, 1, 1, 1]},
                                constant=(1, 2)), False),
    }


@pytest.mark.parametrize("case", ["matmul-tf32", "conv-f16"])
def test_tensor_cores_compute_what_the_cpu_side_check_computes(case, tmp_path):
    """The wmma calls against the scalar loops each Mma statement carries (run as C on the
    CPU): the same rounded operands, summed in another order; and near onnxruntime."""
    from onnxc.driver import build, plan
    model, tf32 = _tensor_core_cases()[case]
    compiled = plan(model, GPU.tag, tf32=tf32)
    gpu = onnxc.CompiledModel(build(compiled, tmp_path / "gpu", "cuda", strict=True))
    assert "wmma::mma_sync" in (tmp_path / "gpu" / f"{compiled.name}_kernels.cu").read_text()
    cpu = onnxc.CompiledModel(build(compiled, tmp_path / "cpu", "c", strict=True))
    x = model.graph.input[0]
    shape = [d.dim_value for d in x.type.tensor_type.shape.dim]
    feed = {x.name: np.random.default_rng(0).standard_normal(shape).astype(
        np.float16 if case.endswith("f16") else np.float32)}
    (got,), (emulated,) = gpu.run(None, feed), cpu.run(None, feed)
    (want,) = ort.InferenceSession(model.SerializeToString()).run(None, feed)
    scale = np.abs(want.astype(np.float64)).max()
    assert np.abs(got.astype(np.float64) - emulated).max() <= 1e-3 * scale
    assert np.abs(got.astype(np.float64) - want).max() <= 3e-3 * scale

