"""The CUDA backend: the printed device and host code, the nvcc build and the library's
dependencies, what a GPU-less machine gets, the host side run against a fake driver
(tests/runtime/fake_libcuda.c), and the Python side's GPU arrays."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxc
import pytest
from onnxc.build.nvcc import find_nvcc
from onnxc.driver import compile_to_dir
from onnxc.errors import BuildError, OnnxcError, RuntimeFailure
from onnxc.loop.ir import Broadcast, For, Store, Var, as_expr, const_int
from onnxc.runtime.device import DeviceArray, device_array, from_dlpack, is_device_array

from tests.backends import gpu_available
from tests.ops.harness import node_model, rand

RUNTIME_TESTS = Path(__file__).resolve().parents[1] / "runtime"


def _nvcc_missing() -> bool:
    try:
        find_nvcc()
    except BuildError:
        return True
    return False


pytestmark = pytest.mark.skipif(_nvcc_missing(), reason="no nvcc (CUDA toolkit) installed")

RELU = node_model("Relu", [rand(3, 1000)])   # 3000 elements: 12 blocks of 256 threads


def _conv_relu() -> onnx.ModelProto:
    conv = node_model("Conv", [rand(1, 8, 13, 13), rand(16, 8, 3, 3), rand(16)],
                      {"pads": [1, 1, 1, 1]}, constant=(1, 2))
    relu = onnx.helper.make_node("Relu", ["y0"], ["z"], name="relu_after")
    conv.graph.node.append(relu)
    conv.graph.output[0].CopyFrom(onnx.helper.make_empty_tensor_value_info("z"))
    return onnx.shape_inference.infer_shapes(conv)


@pytest.mark.parametrize("target, arch", [("cuda-sm80", b"sm_80"), ("cuda-sm90", b"sm_90"),
                                          ("cuda", b"sm_80")])
def test_kernels_build_warning_free_for_each_gpu(tmp_path, target, arch):
    lib = compile_to_dir(_conv_relu(), tmp_path, target=target, name="net", strict=True)
    image = (tmp_path / "net_kernels.fatbin").read_bytes()
    assert lib.is_file() and arch in image and b"k_conv_node_0" in image


def test_bound_loops_print_as_launches(tmp_path):
    compile_to_dir(RELU, tmp_path, target="cuda", name="relu", strict=True)
    device = (tmp_path / "relu_kernels.cu").read_text()
    host = (tmp_path / "relu.c").read_text()
    assert 'extern "C" __global__ void __launch_bounds__(256) k_relu_node_0(' in device
    assert "const int64_t gpu0_block = (int64_t)blockIdx.x;" in device
    assert "if ((((gpu0_block * 256) + gpu0_thread) < 3000)) {" in device
    assert '/* Relu node "relu_node": grid [12, 1, 1], block [256, 1, 1] */' in device
    assert "static const unsigned grid[3] = { 12, 1, 1 }, block[3] = { 256, 1, 1 };" in host
    assert '{ "k_relu_node_0", NULL }' in host
    assert "int relu_device(void) { return ONNXC_DEVICE_CUDA; }" in host


def test_generated_cuda_is_deterministic(tmp_path):
    for out in ("a", "b"):
        compile_to_dir(_conv_relu(), tmp_path / out, target="cuda", name="net")
    for fname in ("net_kernels.cu", "net.c", "net_image.S"):
        assert (tmp_path / "a" / fname).read_text() == (tmp_path / "b" / fname).read_text()


def test_library_links_no_cuda_library(tmp_path):
    lib = compile_to_dir(RELU, tmp_path, target="cuda", name="relu")
    dynamic = subprocess.run(["readelf", "-d", str(lib)], capture_output=True, text=True,
                             check=True).stdout
    needed = {line.split("[")[1].split("]")[0] for line in dynamic.splitlines()
              if "(NEEDED)" in line}
    glibc = {"libc.so.6", "libm.so.6", "libdl.so.2", "libpthread.so.0", "ld-linux-x86-64.so.2"}
    assert needed <= glibc, needed


@pytest.mark.skipif(gpu_available(), reason="this machine has a GPU")
def test_without_a_gpu_creating_a_context_says_why(tmp_path):
    lib = compile_to_dir(RELU, tmp_path, target="cuda", name="relu")
    with pytest.raises(RuntimeFailure, match="relu: device error: (CUDA driver not found "
                                             r"\(libcuda.so.1|cuInit failed)"):
        onnxc.load(lib)


@pytest.mark.parametrize("target, backend, message", [
    ("cuda", "llvm", "the cuda targets take backend cuda"),
    ("x86_64", "cuda", "backend cuda needs a cuda target"),
    ("cuda", "opencl", "unknown backend"),
])
def test_backend_and_target_must_agree(tmp_path, target, backend, message):
    with pytest.raises(OnnxcError, match=message):
        compile_to_dir(RELU, tmp_path, target=target, backend=backend)


def test_cli_builds_for_a_gpu(tmp_path):
    model = tmp_path / "relu.onnx"
    onnx.save(RELU, model)
    res = subprocess.run([sys.executable, "-m", "onnxc.cli", str(model), "--target", "cuda-sm90",
                          "-o", str(tmp_path / "out")], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "out" / "relu.so").is_file()
    assert "sm_90" in (tmp_path / "out" / "relu_kernels.cu").read_text()


# -- the host side against a fake driver ---------------------------------------------------
FAKE_RUN = """
import json, sys, ctypes
import numpy as np, onnxc
lib, mode = sys.argv[1], sys.argv[2]
report = ctypes.CDLL("libcuda.so.1").fake_cuda_report
report.restype = ctypes.c_char_p
class Gpu:   # the fake driver's device memory is host memory: a numpy array stands in
    def __init__(self, a): self.a = a
    @property
    def __cuda_array_interface__(self):
        return {"shape": self.a.shape, "typestr": self.a.dtype.str, "version": 3,
                "data": (self.a.ctypes.data, False), "strides": None}
x, y = np.ones((3, 1000), np.float32), np.zeros((3, 1000), np.float32)
got = {"ok": True}
try:
    m = onnxc.load(lib)
    if mode == "host":
        (y,) = m.run(None, {"x0": x})
    else:
        m.run(None, {"x0": Gpu(x)}, outputs=[Gpu(y)])
except Exception as e:
    got = {"ok": False, "error": str(e)}
m = None   # destroys the context: the report then shows what it left behind
got.update(x0=float(x[0, 0]), y0=float(y[0, 0]), report=report().decode())
print(json.dumps(got))
"""


@pytest.fixture(scope="module")
def fake_driver(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fake_cuda")
    subprocess.run(["gcc", "-std=c11", "-O1", "-fPIC", "-shared", "-Wl,-soname,libcuda.so.1",
                    str(RUNTIME_TESTS / "fake_libcuda.c"), "-o", str(folder / "libcuda.so.1")],
                   check=True)
    return folder


def _fake_run(lib, folder, mode, **env) -> dict:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("FAKE_CUDA")}
    environ.update(env, LD_LIBRARY_PATH=os.pathsep.join(
        p for p in (str(folder), os.environ.get("LD_LIBRARY_PATH")) if p))
    res = subprocess.run([sys.executable, "-c", FAKE_RUN, str(lib), mode], capture_output=True,
                         text=True, env=environ, timeout=120)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def relu_lib(tmp_path_factory):
    return compile_to_dir(RELU, tmp_path_factory.mktemp("relu"), target="cuda", name="relu")


def test_host_pointers_run_every_launch(relu_lib, fake_driver):
    got = _fake_run(relu_lib, fake_driver, "host")
    assert got["ok"], got
    assert "launches=1 " in got["report"]
    assert "last_launch=k_relu_node_0:12,1,1/256,1,1/0" in got["report"]
    # the fake's launches write grid.x * block.x through the first parameter, the output:
    # copied back to the new numpy output; the caller's input was copied, never written
    assert (got["x0"], got["y0"]) == (1.0, 3072.0)
    assert "allocs=0 ctx_refs=0 modules=0 streams=0" in got["report"]


def test_device_pointers_are_used_in_place(relu_lib, fake_driver):
    """The fake's launch writes grid.x * block.x through the kernel's first parameter, the
    output: the caller's own array sees it, so nothing was copied in or out."""
    got = _fake_run(relu_lib, fake_driver, "device")
    assert got["ok"], got
    assert (got["x0"], got["y0"]) == (1.0, 3072.0) and "launches=1 " in got["report"]


def test_a_failed_launch_is_a_device_error(relu_lib, fake_driver):
    got = _fake_run(relu_lib, fake_driver, "host", FAKE_CUDA_FAIL="cuLaunchKernel:719")
    assert not got["ok"] and "device error" in got["error"]
    assert 'cuLaunchKernel("k_relu_node_0")' in got["error"]
    assert "allocs=0 " in got["report"]    # the context freed its device memory


# -- GPU arrays on the Python side ------------------------------------------------------------
class FakeGpuArray:
    def __init__(self, shape, typestr, pointer, strides=None):
        self.__cuda_array_interface__ = {"shape": shape, "typestr": typestr, "version": 3,
                                         "data": (pointer, False), "strides": strides}


def test_cuda_array_interface_is_read():
    arr = device_array(FakeGpuArray((2, 3), "<f4", 4096), "x")
    assert (arr.pointer, arr.shape, arr.dtype) == (4096, (2, 3), np.dtype(np.float32))
    assert is_device_array(FakeGpuArray((1,), "<f4", 8)) and not is_device_array(np.ones(2))


def test_strided_gpu_arrays_are_refused():
    with pytest.raises(ValueError, match="C-contiguous"):
        device_array(FakeGpuArray((2, 3), "<f4", 4096, strides=(4, 8)), "x")


def test_dlpack_tensors_are_read():
    a = np.arange(12, dtype=np.int32).reshape(3, 4)[1:]      # starts past the allocation
    got = from_dlpack(a, "x")
    assert isinstance(got, DeviceArray)
    assert (got.pointer, got.shape, got.dtype) == (a.ctypes.data, (2, 4), np.dtype(np.int32))


def test_cpu_libraries_refuse_gpu_arrays(tmp_path):
    model = onnxc.compile(RELU, target="host", out_dir=tmp_path)
    with pytest.raises(ValueError, match="runs on the CPU"):
        model.run(None, {"x0": FakeGpuArray((3, 1000), "<f4", 4096)})
    with pytest.raises(ValueError, match="cannot write GPU arrays"):
        model.run(None, {"x0": rand(3, 1000)}, outputs=[FakeGpuArray((3, 1000), "<f4", 64)])
    assert model.device == "cpu"
    # the C API refuses the device flags too
    ffi = model._ffi
    ins, outs = ffi.new("void *[]", [ffi.from_buffer(rand(3, 1000))]), \
        ffi.new("void *[]", [ffi.from_buffer(np.empty((3, 1000), np.float32))])
    assert model._run(model._ctx, ins, outs, 1) == 1


# -- error paths of the printer and the build -------------------------------------------------
def _store_kernel(body_fn, extent=4):
    from onnxc.loop.ir import Buffer, Kernel
    out = Buffer("out", "float32", (const_int(extent),))
    return Kernel("k", "node", "Fill", body_fn(out))


@pytest.mark.parametrize("make, message", [
    (lambda out: For(Var("i"), const_int(4), For(Var("j"), const_int(1), Store(
        out, (Var("i"),), as_expr(1.0, "float32")), "blockIdx.x")),
     "bound to blockIdx inside another loop"),
    (lambda out: For(Var("i"), const_int(2048), Store(out, (Var("i"),),
                                                     as_expr(1.0, "float32")), "threadIdx.x"),
     "more than the GPU's 1024"),
    (lambda out: Store(out, (const_int(0),), Broadcast(as_expr(1.0, "float32"), 4)),
     "no vector forms"),
    (lambda out: For(Var("i"), const_int(4), Store(out, (Var("i"),), as_expr(1.0, "float32")),
                     "parallel"),
     "thread-pool loop"),
])
def test_the_printer_refuses_what_a_gpu_cannot_run(make, message):
    from onnxc.backend.cuda import CudaModule, emit_kernel
    from onnxc.errors import IRError
    from onnxc.targets import get_target
    with pytest.raises(IRError, match=message):
        emit_kernel(CudaModule("m", get_target("cuda")), _store_kernel(make, 2048))


def test_nvcc_errors_are_build_errors(tmp_path):
    from onnxc.build.nvcc import build_image
    from onnxc.targets import get_target
    source = tmp_path / "bad.cu"
    source.write_text('extern "C" __global__ void k(float *p) { p[0] = undeclared; }\n')
    with pytest.raises(BuildError, match="nvcc failed on bad.cu(.|\n)*undeclared"):
        build_image(source, tmp_path / "bad.fatbin", get_target("cuda"), tmp_path)


def test_missing_nvcc_says_how_to_get_it(monkeypatch):
    import onnxc.build.nvcc as nvcc
    monkeypatch.setenv("ONNXC_NVCC", "/nonexistent/nvcc")
    monkeypatch.delenv("CUDA_HOME", raising=False)
    monkeypatch.setattr(nvcc.shutil, "which", lambda name: None)
    monkeypatch.setattr(nvcc.os, "access", lambda path, mode: False)
    with pytest.raises(BuildError, match="nvcc not found(.|\n)*pip install nvidia-cuda-nvcc"):
        nvcc.find_nvcc()
