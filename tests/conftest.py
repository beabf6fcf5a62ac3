"""Print the ONNX node suite's pass count at the end of a pytest session (here, at the top of
the tests, so that the pytest-xdist controller, which collects nothing, loads it too), and
leave out the tests a run does not need (see pytest_collection_modifyitems)."""
from __future__ import annotations

import os
import zlib

NODE_SUITE = "tests/backend/test_node_suite.py"
# The LLVM backend runs one op/model test in LLVM_SAMPLE (picked by a stable hash of the
# test's id): its kernels compute the C backend's bits (tests/unit/test_llvm_backend.py), and
# the full set would add ten minutes to every run. ONNXC_LLVM_SAMPLE=1 runs them all.
LLVM_SAMPLE = int(os.environ.get("ONNXC_LLVM_SAMPLE", "3"))


def _left_out(item) -> bool:
    """A node-suite case for onnx's CUDA device (onnxc's backend is the CPU one: each would
    be skipped), or an LLVM test outside the sample."""
    if item.nodeid.startswith(NODE_SUITE) and item.nodeid.endswith("_cuda"):
        return True
    params = getattr(getattr(item, "callspec", None), "params", {})
    return params.get("backend") == "llvm" and \
        zlib.crc32(item.nodeid.replace("[llvm-", "[").encode()) % LLVM_SAMPLE != 0


def pytest_collection_modifyitems(config, items):
    dropped = [item for item in items if _left_out(item)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        kept = set(map(id, items)) - set(map(id, dropped))
        items[:] = [item for item in items if id(item) in kept]


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
