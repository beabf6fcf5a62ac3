"""The per-op, model and aarch64 tests run once per backend, C and LLVM: both must pass the
same suite. Each test module runs under one backend, then the other (ONNXC_BACKEND is the
compiler's default backend). ONNXC_TEST_BACKENDS=c (comma-separated names) narrows the run."""
from __future__ import annotations

import os

import pytest

BACKENDS = tuple(os.environ.get("ONNXC_TEST_BACKENDS", "c,llvm").split(","))


@pytest.fixture(scope="module", autouse=True, params=BACKENDS)
def backend(request):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ONNXC_BACKEND", request.param)
        yield request.param
