"""Typed errors. Each carries a message fit for a one-line CLI report."""
from __future__ import annotations

import functools


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


class NeedsStaticDims(ModelError):
    """A node's lowering (or a pass) handles static shapes only, and the node's shapes hold
    dimension symbols: the symbols must be bound to values (--dim), which compiles static
    programs."""

    def __init__(self, message: str, symbols: list[str] = ()):
        self.symbols = list(symbols)
        super().__init__(message)


class ScheduleError(OnnxcError):
    """A schedule directive cannot be applied to the loop nest it names."""


class IRError(OnnxcError):
    """The loop IR fails verification (a compiler bug, or a bad hand-written IR)."""


class BuildError(OnnxcError):
    """The toolchain failed to build the library."""


class RuntimeFailure(OnnxcError):
    """A compiled library returned a non-zero status."""


class ModelWarning(UserWarning):
    """Something in the model is wrong but has a safe reading (a declared shape that the
    computed one replaces); the CLI prints it as `onnxc: warning: ...`."""


class InternalError(OnnxcError):
    """An exception onnxc did not raise on purpose: a bug in onnxc, reported as one line by the
    API's entry points (the original exception is its __cause__)."""


def typed_errors(fn):
    """Let only OnnxcError subclasses leave fn: running out of memory or of stack on a model is
    a ModelError, anything else an InternalError."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except OnnxcError:
            raise
        except MemoryError:
            raise ModelError("out of memory while compiling the model") from None
        except RecursionError:
            raise ModelError("the model nests too deeply to compile") from None
        except Exception as exc:
            raise InternalError(f"{type(exc).__name__}: {str(exc)[:300]} (a bug in onnxc: "
                                "please report it with the model)") from exc
    return wrapper
