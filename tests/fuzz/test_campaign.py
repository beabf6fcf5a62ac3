"""Fuzzing campaigns: two seconds of the frontend harness in the default tier (it runs and
prints its table), and bounded campaigns with fixed seeds in the full tier, the frontend harness
and the differential one 45 s each, which fail on any failure found. Reduce each failure
to a case of tests/fuzz/corpus/cases.py."""
from __future__ import annotations

import subprocess
import sys

import pytest

from tests.fuzz.differential import ROOT, environment

SECONDS = 30
SEED = 0


def _campaign(module: str, out, seconds: float) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, "--seconds", str(seconds),
                           "--seed", str(SEED), "--out", str(out)], cwd=ROOT,
                          env=environment(False), capture_output=True, text=True,
                          timeout=seconds + 600)


def test_frontend_harness_runs(tmp_path):
    """(The corpus's run cases exercise the differential harness's workers and comparison.)"""
    proc = _campaign("tests.fuzz.frontend", tmp_path, 2)
    assert proc.returncode in (0, 1), proc.stderr[-4000:]
    assert "distinct failures" in proc.stdout, proc.stdout[-4000:] + proc.stderr[-4000:]


@pytest.mark.full
def test_frontend_campaign(tmp_path):
    proc = _campaign("tests.fuzz.frontend", tmp_path, SECONDS)
    assert proc.returncode == 0, proc.stdout[-8000:] + proc.stderr[-4000:]


@pytest.mark.full
def test_differential_campaign(tmp_path):
    proc = _campaign("tests.fuzz.differential", tmp_path, SECONDS)
    assert proc.returncode == 0, proc.stdout[-8000:] + proc.stderr[-4000:]
