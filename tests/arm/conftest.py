"""The aarch64 tests need the cross toolchain (the ziglang package) and qemu-user with the
arm64 libc (.ci/run installs both); without them they skip, naming what is missing."""
from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest
from onnxc.targets import get_target

from tests.backends import cpu_backend  # noqa: F401  (every test here runs once per CPU backend)

TARGET = "armv8"


def missing_tools() -> list[str]:
    target = get_target(TARGET)
    missing = [] if importlib.util.find_spec("ziglang") else ["pip package ziglang"]
    if shutil.which(target.emulator) is None:
        missing.append(f"{target.emulator} (apt-get install qemu-user)")
    if not Path(target.sysroot).is_dir():
        missing.append(f"{target.sysroot} (apt-get install libc6-arm64-cross)")
    return missing


@pytest.fixture(autouse=True)
def _cross_tools():
    missing = missing_tools()
    if missing:
        pytest.skip("needs " + ", ".join(missing))
