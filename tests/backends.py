"""The per-op and model tests run once per backend, C, LLVM and CUDA: all must pass the same
suite (the aarch64 tests: C and LLVM). Each test module runs under one backend, then the next
(ONNXC_BACKEND is the compiler's default backend). ONNXC_TEST_BACKENDS=c (comma-separated
names) narrows the run.

Under "cuda", a test's onnxc.compile builds the model for CUDA_TEST_TARGET: nvcc compiles
its kernels and the library links (the build check). With a GPU the test then runs that
library; without one it runs the same GPU program printed as C on this CPU, its bound loops
one after another (a check of the GPU schedule's index math), and the test's numbers are
compared as usual. Without a GPU, nvcc builds one test in NVCC_SAMPLE (a stable hash of the
test's id; ONNXC_NVCC_SAMPLE=1: all of them): nvcc took about 45% of the CUDA tests' time,
and every op family still gets its CUDA C compiled."""
from __future__ import annotations

import functools
import os
import tempfile
import zlib
from pathlib import Path

import onnxc
import pytest
from onnxc.build.library_cache import cached_build
from onnxc.driver import build, build_key, plan
from onnxc.targets import local_gpu

BACKENDS = tuple(os.environ.get("ONNXC_TEST_BACKENDS", "c,llvm,cuda").split(","))
CPU_BACKENDS = tuple(b for b in BACKENDS if b != "cuda")
CUDA_TEST_TARGET = "cuda-sm80"
NVCC_SAMPLE = int(os.environ.get("ONNXC_NVCC_SAMPLE", "3"))


def nvcc_builds_this_test() -> bool:
    """Whether the running test is in the nvcc sample (pytest names it in the environment);
    salted so that it is not the LLVM backend's sample."""
    test = os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" (", 1)[0]
    return zlib.crc32(b"nvcc:" + test.replace("[cuda-", "[").encode()) % NVCC_SAMPLE == 0


@functools.cache
def gpu_available() -> bool:
    """A CUDA driver that sees a GPU onnxc has a record for."""
    return local_gpu() is not None


def cuda_compile(real_compile, model_or_path, target: str = "host", out_dir=None,
                 name: str | None = None, num_threads: int | None = None,
                 strict: bool = False, **options):
    """onnxc.compile as the "cuda" backend runs it (tests that pick a target or a backend
    keep it). The model is compiled once and printed twice: as CUDA and, without a GPU, as
    C for this CPU; both builds go through the library cache as one entry."""
    if target != "host" or "backend" in options:
        return real_compile(model_or_path, target, out_dir, name, num_threads, strict=strict,
                            **options)
    out = Path(out_dir) if out_dir else Path(tempfile.mkdtemp(prefix="onnxc_cuda_"))
    on_gpu = gpu_available()
    with_nvcc = on_gpu or nvcc_builds_this_test()

    def build_both(out: Path) -> Path:
        compiled = plan(model_or_path, CUDA_TEST_TARGET, name, **options)
        lib = build(compiled, out / "cuda", "cuda", strict) if with_nvcc else None
        return lib if on_gpu else build(compiled, out / "cpu", "c", strict)

    key, library = build_key(model_or_path, CUDA_TEST_TARGET, name, "cuda", dict(
        options, strict=strict, built_as="cuda, then c without a gpu", gpu=on_gpu,
        nvcc=with_nvcc)) \
        if not options.get("dump_ir") else (None, "")
    lib = cached_build(key, out, f"{'cuda' if on_gpu else 'cpu'}/{library}", build_both)
    model = onnxc.CompiledModel(lib)
    if num_threads is not None:
        model.set_num_threads(num_threads)
    return model


def _use(backend: str):
    with pytest.MonkeyPatch.context() as patch:
        if backend == "cuda":
            patch.setattr(onnxc, "compile", functools.partial(cuda_compile, onnxc.compile))
        else:
            patch.setenv("ONNXC_BACKEND", backend)
        yield backend


@pytest.fixture(scope="module", autouse=True, params=BACKENDS)
def backend(request):
    yield from _use(request.param)


@pytest.fixture(scope="module", autouse=True, params=CPU_BACKENDS)
def cpu_backend(request):
    """For tests whose target is a CPU's (the aarch64 ones)."""
    yield from _use(request.param)


def skip_on_gpu(backend: str, why: str) -> None:
    """Skip a test the cuda targets refuse by design (their own test checks the refusal)."""
    if backend == "cuda":
        pytest.skip(f"cuda targets {why}")
