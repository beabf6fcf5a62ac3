"""Where the installed package keeps its data (templates, C runtime, target descriptions)."""
from __future__ import annotations

from pathlib import Path

from .errors import OnnxcError

_HERE = Path(__file__).resolve().parent


def resource_dir(name: str) -> Path:
    """A data folder: inside the installed package, else at the source checkout's top level."""
    for candidate in (_HERE / name, _HERE.parent / name):
        if candidate.is_dir():
            return candidate
    raise OnnxcError(f"onnxc data folder {name!r} is missing from the installation")
