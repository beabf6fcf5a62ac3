"""Session-wide test setup (here, at the top of the tests, so that the pytest-xdist controller,
which collects nothing, loads it too): the test tier (tests/tiers.py), the library cache every
test compiles through, and the ONNX node suite's pass count at the end of a session."""
from __future__ import annotations

import os
import zlib
from pathlib import Path

import pytest
from onnxc.build.library_cache import CACHE_ENV

from tests.tiers import NODE_SUITE, full_tier_only, tier

# The LLVM backend runs one op/model test in LLVM_SAMPLE (picked by a stable hash of the
# test's id): its kernels compute the C backend's bits (tests/unit/test_llvm_backend.py), and
# the full set would add ten minutes to every run. ONNXC_LLVM_SAMPLE=1 runs them all.
LLVM_SAMPLE = int(os.environ.get("ONNXC_LLVM_SAMPLE", "3"))
# Where the tests' libraries are cached; by default a folder of the pytest run (shared by its
# xdist workers). .ci/run points both tiers at one folder, so the full tier reuses the
# default tier's builds.
TEST_CACHE_ENV = "ONNXC_TEST_LIBRARY_CACHE"


def _left_out(item) -> bool:
    """A node-suite case for onnx's CUDA device (onnxc's backend is the CPU one: each would
    be skipped), or an LLVM test outside the sample."""
    if item.nodeid.startswith(NODE_SUITE) and item.nodeid.endswith("_cuda"):
        return True
    params = getattr(getattr(item, "callspec", None), "params", {})
    return params.get("backend") == "llvm" and \
        zlib.crc32(item.nodeid.replace("[llvm-", "[").encode()) % LLVM_SAMPLE != 0


def _node_sample(items) -> frozenset[str]:
    suite = next((item.module for item in items if item.nodeid.startswith(NODE_SUITE)), None)
    return suite.NODE_SAMPLE if suite is not None else frozenset()


def pytest_collection_modifyitems(config, items):
    sample, default_tier = _node_sample(items), tier() == "default"
    dropped = []
    for item in items:
        if _left_out(item):
            dropped.append(item)
        elif full_tier_only(item, sample):
            item.add_marker(pytest.mark.full)
            if default_tier:
                dropped.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        kept = set(map(id, items)) - set(map(id, dropped))
        items[:] = [item for item in items if id(item) in kept]


@pytest.fixture(scope="session", autouse=True)
def library_cache(tmp_path_factory):
    """Every compile goes through the library cache: a model is built once per run."""
    folder = os.environ.get(TEST_CACHE_ENV)
    if not folder:
        base = tmp_path_factory.getbasetemp()
        folder = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "libraries"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(CACHE_ENV, str(folder))
        yield Path(folder)


@pytest.fixture(autouse=True)
def _no_cache_under_patches(request):
    """A test that patches onnxc's internals builds without the cache: its key cannot see a
    patch."""
    if "monkeypatch" not in request.fixturenames:
        yield
        return
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv(CACHE_ENV, raising=False)
        yield


def pytest_terminal_summary(terminalreporter):
    counts = {}
    for outcome in ("passed", "failed", "skipped"):
        counts[outcome] = sum(1 for r in terminalreporter.stats.get(outcome, ())
                              if r.nodeid.startswith(NODE_SUITE) and r.nodeid.endswith("_cpu")
                              and r.when in ("call", "setup"))
    if any(counts.values()):
        total = sum(counts.values())
        terminalreporter.write_line(
            f"ONNX node suite (CPU): {counts['passed']} passed, {counts['failed']} failed, "
            f"{counts['skipped']} excluded, of {total} cases")
    terminalreporter.write_line(f"test tier: {tier()}")
