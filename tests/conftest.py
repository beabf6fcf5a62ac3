"""Print the ONNX node suite's pass count at the end of a pytest session (here, at the top of
the tests, so that the pytest-xdist controller, which collects nothing, loads it too)."""
from __future__ import annotations

NODE_SUITE = "tests/backend/test_node_suite.py"


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
