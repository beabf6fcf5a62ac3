"""The fuzzers' regression corpus (tests/fuzz/corpus/cases.py), in the default tier: each
frontend case planned and described in one process of its own (with a memory limit), each run
case compiled and run next to onnxruntime in worker processes (a crash is an outcome)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.fuzz.corpus.cases import CASES
from tests.fuzz.differential import ROOT, Worker, environment, one_case


def _params(kinds: tuple[str, ...]) -> list:
    """The cases of kinds; an open bug's is a strict xfail (it fails the run once fixed)."""
    return [pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=c.open_bug))
            if c.open_bug else name for name, c in sorted(CASES.items()) if c.kind in kinds]


FRONTEND = _params(("frontend", "refuse"))
RUN = _params(("run",))
RUN_TIMEOUT_S = 120


@pytest.fixture(scope="module")
def frontend_results():
    proc = subprocess.run([sys.executable, "-m", "tests.fuzz.frontend", "--corpus"], cwd=ROOT,
                          env=environment(False), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def workers():
    env = environment(False)
    pair = {"onnxc": Worker(env), "ort": Worker(env)}
    yield pair
    for w in pair.values():
        w.stop()


@pytest.mark.parametrize("name", FRONTEND)
def test_frontend_case(name, frontend_results):
    assert frontend_results[name] is None, f"{CASES[name].what}:\n{frontend_results[name]}"


@pytest.mark.parametrize("name", RUN)
def test_run_case(name, workers, tmp_path):
    import onnx
    c = CASES[name]
    outcome, detail, _ = one_case(workers, onnx.load_from_string(c.build()), c.feed(),
                                  tmp_path, RUN_TIMEOUT_S)
    assert outcome in c.allowed, f"{c.what}: {outcome}: {detail[-2000:]}"
