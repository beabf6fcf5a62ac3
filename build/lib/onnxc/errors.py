"""Typed errors. Each carries a message fit for a one-line CLI report."""
from __future__ import annotations


class OnnxcError(Exception):
    """Base of every error onnxc raises on purpose."""


class ModelError(OnnxcError):
    """The model file is malformed, fails onnx.checker, or uses something we cannot compile."""


class UnsupportedOps(ModelError):
    """The model has ops (or op versions) without a lowering; lists every one with its nodes."""

    def __init__(self, missing: dict[str, list[str]]):
        self.missing = {op: list(nodes) for op, nodes in sorted(missing.items())}
        lines = [f"  {op}: {', '.join(nodes)}" for op, nodes in self.missing.items()]
        super().__init__(
            f"unsupported op(s): {', '.join(self.missing)}\n" + "\n".join(lines))


class ScheduleError(OnnxcError):
    """A schedule directive cannot be applied to the loop nest it names."""


class IRError(OnnxcError):
    """The loop IR fails verification (a compiler bug, or a bad hand-written IR)."""


class BuildError(OnnxcError):
    """The toolchain failed to build the library."""


class RuntimeFailure(OnnxcError):
    """A compiled library returned a non-zero status."""
