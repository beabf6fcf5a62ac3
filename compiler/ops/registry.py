"""The op registry: each ONNX op is one function registered with the opset versions it covers.

A lowering is called as fn(ctx, *inputs, **attributes): inputs are loop-IR Buffers (None for an
omitted optional input), attributes arrive as keyword arguments so that ONNX defaults are the
function's keyword defaults. It emits kernels through ctx.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import onnx.defs


@dataclass(frozen=True, slots=True)
class OpEntry:
    op_type: str
    domain: str
    since: int            # first ONNX schema version (since_version) this lowering handles
    until: int | None     # last one, None when open-ended
    fn: Callable
    # For an op whose output size depends on its input values: (input Values, attributes)
    # -> per output (dtype, upper-bound shape, the axes the data decides).
    bound: Callable | None = None
    # Where neither onnx's inference nor onnx.reference knows the op (Tile-1):
    # (input Values, their constant arrays or None, attributes) -> per output (dtype, shape),
    # or None where the rule has nothing to add.
    shape: Callable | None = None


_REGISTRY: dict[tuple[str, str], list[OpEntry]] = {}
# Ops that graph passes create (graph/patterns.py), with the semantics of the ONNX op of the
# same name at its newest version, whatever opset the model imports.
INTERNAL_DOMAIN = "onnxc"


def register(op_type: str, since: int = 1, until: int | None = None, domain: str = "",
             bound: Callable | None = None, shape: Callable | None = None):
    def wrap(fn):
        _REGISTRY.setdefault((domain, op_type), []).append(
            OpEntry(op_type, domain, since, until, fn, bound, shape))
        return fn
    return wrap


def schema_version(op_type: str, domain: str, opset: int) -> int | None:
    """The since_version of the schema that `opset` selects, None when ONNX has none."""
    if domain == INTERNAL_DOMAIN:
        return 1
    try:
        return onnx.defs.get_schema(op_type, opset, domain).since_version
    except onnx.defs.SchemaError:
        return None


def lookup(op_type: str, domain: str, opset: int) -> OpEntry | None:
    _load_families()
    entries = _REGISTRY.get((domain, op_type), ())
    version = schema_version(op_type, domain, opset)
    if version is None:
        return None
    for entry in entries:
        if entry.since <= version and (entry.until is None or version <= entry.until):
            return entry
    return None


def registered() -> dict[tuple[str, str], list[OpEntry]]:
    _load_families()
    return dict(_REGISTRY)


def _load_families() -> None:
    # Importing the family modules runs their @register decorators.
    from . import families  # noqa: F401
