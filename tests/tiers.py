"""The two test tiers. The default tier (`pytest -q -n auto`) is what a change needs before it
is shared: unit and pass tests, every op's numeric tests on the C backend, the ABI, CLI,
runtime, error-path and example tests, one model test, and a sample of the ONNX node suite that
runs every op type it has at least once. The full tier (ONNXC_TEST_TIER=full) adds the rest:
the LLVM and CUDA variants of the op and model tests, the nvcc builds, every model, aarch64
under qemu and the whole node suite. A test belongs to the full tier alone when a rule below
says so, or where the test carries the `full` marker itself (the sanitizer runs, the fuzzing
campaigns); such tests carry the `full` marker, so `-m full` selects just them."""
from __future__ import annotations

import os

TIER_ENV = "ONNXC_TEST_TIER"
TIERS = ("default", "full")
NODE_SUITE = "tests/backend/test_node_suite.py"
# The one model test of the default tier: the small conv net through Python and onnxruntime.
DEFAULT_MODEL_TEST = "tests/models/test_models.py::test_python_matches_onnxruntime[c-cnn]"
# Whole files of the full tier: aarch64 under qemu, nvcc builds, a lent GPU.
FULL_TIER_PATHS = ("tests/arm/", "tests/unit/test_cuda_backend.py", "tests/gpu/")
# Backends the default tier leaves to the full one (the op and model tests' parameter).
FULL_TIER_BACKENDS = frozenset({"llvm", "cuda"})


def tier() -> str:
    name = os.environ.get(TIER_ENV, "default")
    if name not in TIERS:
        raise ValueError(f"{TIER_ENV}={name!r}: expected one of {', '.join(TIERS)}")
    return name


def _backend(item) -> str | None:
    params = getattr(getattr(item, "callspec", None), "params", {})
    return params.get("backend") or params.get("cpu_backend")


def full_tier_only(item, node_sample: frozenset[str]) -> bool:
    """Whether a collected test runs in the full tier only."""
    nodeid = item.nodeid
    if nodeid.startswith(NODE_SUITE):
        return nodeid.rsplit("::", 1)[-1] not in node_sample
    if nodeid.startswith("tests/models/"):
        return nodeid != DEFAULT_MODEL_TEST
    return (nodeid.startswith(FULL_TIER_PATHS) or _backend(item) in FULL_TIER_BACKENDS
            or item.get_closest_marker("nvcc") is not None
            or item.get_closest_marker("full") is not None)
