"""The official ONNX backend node suite (onnx's own cases, inputs and expected outputs, with
its tolerances) run through onnxc.backend: every case is compiled to a shared library and run.
Cases onnxc cannot pass yet are listed in exclusions.py, each with its reason; the pass count
is printed at the end of the session (conftest.py). ONNXC_NODE_SUITE_ALL=1 runs the excluded
cases too (to re-judge them: tests/backend/triage.py)."""
from __future__ import annotations

import os

import onnx.backend.test
import onnxc.backend

from .exclusions import EXCLUDED

_suite = onnx.backend.test.BackendTest(onnxc.backend, __name__)
if os.environ.get("ONNXC_NODE_SUITE_ALL") != "1":
    for _pattern in EXCLUDED:
        _suite.exclude(_pattern)

# node cases only: the model categories need downloads, and CUDA cases skip themselves
OnnxBackendNodeModelTest = _suite.test_cases["OnnxBackendNodeModelTest"]
