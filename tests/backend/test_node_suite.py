"""The official ONNX backend node suite (onnx's own cases, inputs and expected outputs, with
its tolerances) run through onnxc.backend: every case is compiled to a shared library and run.
Cases onnxc cannot pass yet are listed in exclusions.py, each with its reason; the pass count
is printed at the end of the session (conftest.py). ONNXC_NODE_SUITE_ALL=1 runs the excluded
cases too (to re-judge them: tests/backend/triage.py)."""
from __future__ import annotations

import os
from unittest import mock

import onnx.backend.test
import onnxc.backend
from onnx.backend.test import loader, runner

from .exclusions import EXCLUDED
from .sample import node_sample
from .spec_values import spec_sub_byte_casts

# onnx builds the node cases in memory (about 10 s): once here, for the suite and the sample
NODE_CASES = spec_sub_byte_casts(loader.load_model_tests(kind="node"))
with mock.patch.object(runner, "load_model_tests",
                       lambda kind: NODE_CASES if kind == "node" else loader.load_model_tests(
                           kind=kind)):
    _suite = onnx.backend.test.BackendTest(onnxc.backend, __name__)
# the default test tier's cases (tests/tiers.py)
NODE_SAMPLE = node_sample(NODE_CASES, EXCLUDED)
if os.environ.get("ONNXC_NODE_SUITE_ALL") != "1":
    for _pattern in EXCLUDED:
        _suite.exclude(_pattern)

# node cases only: the model categories need downloads, and CUDA cases skip themselves
OnnxBackendNodeModelTest = _suite.test_cases["OnnxBackendNodeModelTest"]
